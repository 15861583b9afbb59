/* ib_mdrive: the marketplace as a read-only drive (see ib_mdrive.h). */
#include "ib_mdrive.h"

#include "ib_manifest.h"
#include "ib_semver.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LIST_MAX 100000 /* entries in one listing, as the files API */

int ib_mdrive_reserved(const char *path, size_t len)
{
    size_t n = strlen(IB_MDRIVE_RESERVED);
    while (len && *path == '/') path++, len--;
    return len >= n && !memcmp(path, IB_MDRIVE_RESERVED, n) && (len == n || path[n] == '/');
}

static int fail(int e)
{
    errno = e;
    return -1;
}

int ib_mdrive_open(int market_fd, const char *path, size_t len, ib_mdrive_node *out)
{
    out->fd = -1;
    while (len && *path == '/') path++, len--;
    while (len && path[len - 1] == '/') len--;
    if (len >= sizeof out->rel || memchr(path, '\0', len)) return fail(ENOENT);
    memcpy(out->rel, path, len);
    out->rel[len] = '\0';
    size_t n = strlen(IB_MDRIVE_ALL);
    if (len < n || memcmp(out->rel, IB_MDRIVE_ALL, n) != 0 || (len > n && out->rel[n] != '/')) return fail(ENOENT);
    /* the segments below All: name, version, archive; none may be empty, and nothing lies deeper */
    char rest[sizeof out->rel], *seg[4] = {0};
    snprintf(rest, sizeof rest, "%s", len > n ? out->rel + n + 1 : "");
    int nseg = 0;
    for (char *s = rest, *slash; *s && nseg < 4; s = slash ? slash + 1 : s + strlen(s)) {
        slash = strchr(s, '/');
        if (slash) *slash = '\0';
        if (!*s) return fail(ENOENT);
        seg[nseg++] = s;
        if (!slash) break;
    }
    if (nseg > 3) return fail(ENOENT);
    ib_semver sv;
    if (nseg >= 1 && !ib_solution_name_ok(seg[0])) return fail(ENOENT);
    if (nseg >= 2 && (seg[1][0] == '.' || ib_semver_parse(seg[1], &sv) != 0)) return fail(ENOENT);
    if (nseg == 3) {
        char want[IB_SOLUTION_NAME_MAX + 200];
        snprintf(want, sizeof want, "%s-%s.ibsolution", seg[0], seg[1]);
        if (strcmp(seg[2], want) != 0) return fail(ENOENT);
    }
    int fd = openat(market_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char dir[IB_SOLUTION_NAME_MAX + 2];
    for (int i = 0; i < nseg && fd >= 0; i++) {
        const char *name = i == 0 ? ib_solution_dir(seg[0], dir, sizeof dir) : seg[i];
        /* O_NONBLOCK: a FIFO where the archive should be must not hang the caller; fstat below refuses it */
        int flags = i < 2 ? O_RDONLY | O_DIRECTORY : O_RDONLY | O_NONBLOCK;
        int next = openat(fd, name, flags | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(fd);
        fd = next;
        errno = e;
    }
    if (fd < 0) return fail(errno == ELOOP || errno == ENOTDIR ? ENOENT : errno);
    struct stat st;
    if (fstat(fd, &st) != 0 || (nseg == 3 && !S_ISREG(st.st_mode))) {
        close(fd);
        return fail(ENOENT);
    }
    if (nseg == 3) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    out->fd = fd;
    out->level = nseg;
    return 0;
}

typedef struct entry {
    char *name;
    int folder;
    long long size, mtime;
} entry;

/* versions by precedence, names by bytes; arg: the listing's level (qsort_r: listings run on many threads) */
static int cmp_entry(const void *a, const void *b, void *arg)
{
    const entry *x = a, *y = b;
    return *(const int *)arg == 1 ? ib_semver_cmp_str(x->name, y->name) : strcmp(x->name, y->name);
}

json_t *ib_mdrive_list(const ib_mdrive_node *n)
{
    if (n->level > 2) return errno = ENOTDIR, NULL;
    int fd = openat(n->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        int e = errno;
        if (fd >= 0) close(fd);
        return errno = e, NULL;
    }
    entry *v = NULL;
    size_t cnt = 0, cap = 0;
    int err = 0;
    const char *last = strrchr(n->rel, '/'); /* at level 2: the version; its parent segment: the name */
    char want[IB_SOLUTION_NAME_MAX + 200] = "";
    if (n->level == 2) {
        const char *ver = last + 1, *nm = last - 1;
        while (nm > n->rel && nm[-1] != '/') nm--;
        snprintf(want, sizeof want, "%.*s-%s.ibsolution", (int)(last - nm), nm, ver);
    }
    struct dirent *ent;
    while (!err && cnt < LIST_MAX && (ent = readdir(d)) != NULL) {
        char shown[IB_SOLUTION_NAME_MAX + 200];
        ib_semver sv;
        const char *nm = NULL;
        if (n->level == 0)
            nm = ib_solution_from_dir(ent->d_name, shown, sizeof shown);
        else if (n->level == 1)
            nm = ent->d_name[0] != '.' && ib_semver_parse(ent->d_name, &sv) == 0 ? ent->d_name : NULL;
        else
            nm = !strcmp(ent->d_name, want) ? ent->d_name : NULL;
        struct stat st;
        if (!nm || fstatat(dirfd(d), ent->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (n->level < 2 ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) continue;
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            entry *nv = realloc(v, ncap * sizeof *nv);
            if (!nv) {
                err = ENOMEM;
                break;
            }
            v = nv;
            cap = ncap;
        }
        if (!(v[cnt].name = strdup(nm))) {
            err = ENOMEM;
            break;
        }
        v[cnt].folder = n->level < 2;
        v[cnt].size = v[cnt].folder ? 0 : (long long)st.st_size;
        v[cnt].mtime = (long long)st.st_mtim.tv_sec;
        cnt++;
    }
    closedir(d);
    json_t *arr = err ? NULL : json_array();
    if (arr && cnt) qsort_r(v, cnt, sizeof *v, cmp_entry, (void *)&n->level);
    for (size_t i = 0; arr && i < cnt; i++) {
        char full[sizeof n->rel + IB_SOLUTION_NAME_MAX + 200];
        snprintf(full, sizeof full, "%s/%s", n->rel, v[i].name);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:I, s:I}", "name", v[i].name, "full_path", full,
                                             "type", v[i].folder ? "folder" : "file", "size", (json_int_t)v[i].size,
                                             "modified", (json_int_t)v[i].mtime));
    }
    for (size_t i = 0; i < cnt; i++) free(v[i].name);
    free(v);
    if (!arr) errno = err ? err : ENOMEM;
    return arr;
}
