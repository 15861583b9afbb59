/* store: the marketplace's folders. Every name a reader may list appears whole or not at all: versions are
 * built in dot-named temporaries and renamed into place, and removed by renaming them away first. Readers
 * skip every dot name, so temporaries (and the per-name .lock and .retired/) are never taken for versions. */
#include "market.h"

#include "ib_fs.h"
#include "ib_log.h"
#include "ib_path.h"
#include "ib_semver.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int mk_drive_fd = -1, mk_market_fd = -1, mk_inst_fd = -1;

/* Crash leftovers younger than this may be another daemon's work in progress on a shared data root. */
#define SWEEP_AGE_S 3600
#define META_MAX (4u << 20)

static int open_root_dir(const char *sub, char *err, size_t errsz)
{
    char path[4096];
    ib_data_path(sub, path, sizeof path);
    if (ib_mkdirs(path, 0755) < 0) {
        snprintf(err, errsz, "IBSOL_DATA: cannot create '%s': %s", path, strerror(errno));
        return -1;
    }
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) snprintf(err, errsz, "IBSOL_DATA: cannot open '%s': %s", path, strerror(errno));
    return fd;
}

int mk_store_open(char *err, size_t errsz)
{
    char path[4096];
    mk_drive_fd = ib_drive_open_root(ib_data_path("drive", path, sizeof path));
    if (mk_drive_fd < 0) {
        snprintf(err, errsz, "IBSOL_DATA: cannot open drive folder '%s': %s", path, strerror(errno));
        return -1;
    }
    if ((mk_market_fd = open_root_dir("marketplace", err, errsz)) < 0 ||
        (mk_inst_fd = open_root_dir("installed", err, errsz)) < 0) {
        mk_store_close();
        return -1;
    }
    return 0;
}

void mk_store_close(void)
{
    int *fds[] = {&mk_drive_fd, &mk_market_fd, &mk_inst_fd};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
        if (*fds[i] >= 0) close(*fds[i]);
        *fds[i] = -1;
    }
}

int mk_open_dir(int basefd, const char *name, int create)
{
    if (create && mkdirat(basefd, name, 0755) != 0 && errno != EEXIST) return -1;
    return openat(basefd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

int mk_lock(int namefd, int exclusive)
{
    int fd = openat(namefd, ".lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    while (flock(fd, exclusive ? LOCK_EX : LOCK_SH) != 0) {
        if (errno == EINTR) continue;
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

void mk_unlock(int lockfd)
{
    if (lockfd >= 0) close(lockfd); /* closing the last fd of the open file releases the flock */
}

static int cmp_version(const void *a, const void *b)
{
    return ib_semver_cmp_str(*(char *const *)a, *(char *const *)b);
}

int mk_versions(int dirfd, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (dirfd < 0) return 0;
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        if (fd >= 0) close(fd);
        return -1;
    }
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        ib_semver sv;
        if (ent->d_name[0] == '.' || ib_semver_parse(ent->d_name, &sv) != 0) continue;
        struct stat st;
        if (fstatat(dirfd, ent->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) continue;
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            char **nv = realloc(v, ncap * sizeof *nv);
            if (!nv) {
                rc = -1;
                break;
            }
            v = nv;
            cap = ncap;
        }
        if (!(v[cnt] = strdup(ent->d_name))) {
            rc = -1;
            break;
        }
        cnt++;
    }
    closedir(d);
    if (rc != 0) {
        mk_free_list(v, cnt);
        return -1;
    }
    if (cnt) qsort(v, cnt, sizeof *v, cmp_version);
    *out = v;
    *n = cnt;
    return 0;
}

void mk_free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

const char *mk_latest(char *const *v, size_t n)
{
    /* Like npm, pip and cargo: a pre-release is "latest" only when nothing else is published. */
    for (size_t i = n; i-- > 0;) {
        ib_semver sv;
        if (ib_semver_parse(v[i], &sv) == 0 && sv.pre[0] == '\0') return v[i];
    }
    return n ? v[n - 1] : NULL;
}

json_t *mk_read_meta(int verfd)
{
    size_t len;
    char *text = ib_read_file_at(verfd, "meta.json", META_MAX, &len);
    if (!text) return NULL;
    json_t *m = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    free(text);
    if (!json_is_object(m)) {
        json_decref(m);
        errno = EINVAL;
        return NULL;
    }
    return m;
}

static void random_suffix(char out[9])
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char rnd[8];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        /* Never expected; a clock-based suffix still differs per attempt, and O_EXCL/mkdir catch clashes. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned long long x = (unsigned long long)ts.tv_nsec * 2654435761u ^ (unsigned long long)getpid();
        memcpy(rnd, &x, sizeof rnd);
    }
    for (size_t i = 0; i < 8; i++)
        out[i] = alnum[rnd[i] % (sizeof alnum - 1)];
    out[8] = '\0';
}

int mk_mktemp_dir(int dirfd, const char *kind, const char *tag, char *out, size_t outsz)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        char sfx[9];
        random_suffix(sfx);
        int n = snprintf(out, outsz, ".%s-%.150s-%s", kind, tag, sfx);
        if (n < 0 || (size_t)n >= outsz) {
            errno = ENAMETOOLONG;
            return -1;
        }
        if (mkdirat(dirfd, out, 0755) == 0) return 0;
        if (errno != EEXIST) return -1;
    }
    errno = EEXIST;
    return -1;
}

int mk_rename_noreplace(int olddirfd, const char *oldname, int newdirfd, const char *newname)
{
    if (renameat2(olddirfd, oldname, newdirfd, newname, RENAME_NOREPLACE) == 0) return 0;
    if (errno != EINVAL) return -1;
    /* A file system without RENAME_NOREPLACE (some network ones): plain rename still never replaces a
     * non-empty folder, and every folder renamed here holds at least one file. */
    return renameat(olddirfd, oldname, newdirfd, newname);
}

int mk_retire(int dirfd, const char *name)
{
    char tmp[256];
    for (int attempt = 0; attempt < 100; attempt++) {
        char sfx[9];
        random_suffix(sfx);
        snprintf(tmp, sizeof tmp, ".del-%.150s-%s", name, sfx);
        /* No replace: never swallow a temporary of the same (random) name. */
        if (mk_rename_noreplace(dirfd, name, dirfd, tmp) == 0) break;
        if (errno != EEXIST) return -1;
        if (attempt == 99) return -1;
    }
    ib_fsync_dir(dirfd);
    if (ib_remove_tree_at(dirfd, tmp) != 0)
        ib_warn(NULL, "'%s' was taken out of use but cannot be removed: %s", tmp, strerror(errno));
    return 0;
}


static int is_temp_name(const char *n)
{
    return !strncmp(n, ".tmp-", 5) || !strncmp(n, ".del-", 5) || !strncmp(n, ".incoming.tmp-", 14) ||
           (n[0] == '.' && strstr(n, ".tmp-") != NULL); /* ib_write_atomic's ".meta.json.tmp-..." */
}

/* Removes old temporaries directly in dirfd; with `recurse`, also in each (non-dot) sub-folder. */
static void sweep_dir(int dfd, int recurse, time_t now)
{
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        if (fd >= 0) close(fd);
        return;
    }
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        const char *n = ent->d_name;
        if (!strcmp(n, ".") || !strcmp(n, "..")) continue;
        struct stat st;
        if (fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (is_temp_name(n)) {
            if (now - st.st_mtime < SWEEP_AGE_S) continue;
            ib_info(NULL, "removing leftover temporary '%s'", n);
            ib_remove_tree_at(dirfd(d), n);
        } else if (recurse && n[0] != '.' && S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd(d), n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) {
                sweep_dir(sub, 0, now);
                close(sub);
            }
        }
    }
    closedir(d);
}

void mk_sweep(void)
{
    time_t now = time(NULL);
    sweep_dir(mk_market_fd, 1, now);
    sweep_dir(mk_inst_fd, 1, now);
}
