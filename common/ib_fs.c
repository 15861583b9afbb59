/* ib_fs: atomic writes (temporary name in the same folder, fsync, rename, fsync of the folder), confined
 * reads and folder creation, and a recursive remove that never follows a symlink. Failures keep errno from
 * the call that failed; the clean-up after it never overwrites it. */
#include "ib_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ib_path.h"

/* Keeps temporary names within NAME_MAX whatever the final name's length. */
#define TMP_NAME_KEEP 200

int ib_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* fsync of a folder needs a readable fd; callers may hold an O_PATH one. */
int ib_fsync_dir(int dirfd)
{
    if (fsync(dirfd) == 0) return 0;
    if (errno != EBADF) return -1;
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* A fresh temporary name for name in tmpname: "." + name + ".tmp-" + 8 random characters. */
static int tmp_name(const char *name, char *tmpname, size_t tmpsz)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    unsigned char rnd[8];
    char suffix[sizeof rnd + 1];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) return -1;
    for (size_t i = 0; i < sizeof rnd; i++)
        suffix[i] = alnum[rnd[i] % (sizeof alnum - 1)];
    suffix[sizeof rnd] = '\0';
    int n = snprintf(tmpname, tmpsz, ".%.*s.tmp-%s", TMP_NAME_KEEP, name, suffix);
    if (n < 0 || (size_t)n >= tmpsz) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

static int name_ok(const char *name)
{
    if (name && *name && !strchr(name, '/')) return 1;
    errno = EINVAL;
    return 0;
}

int ib_open_tmp(int dirfd, const char *name, char *tmpname, size_t tmpsz)
{
    if (!name_ok(name)) return -1;
    for (int attempt = 0; attempt < 100; attempt++) {
        if (tmp_name(name, tmpname, tmpsz) < 0) return -1;
        /* 0600 until committed: a half-written file is nobody else's business. */
        int fd = openat(dirfd, tmpname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    errno = EEXIST;
    return -1;
}

void ib_discard_tmp(int dirfd, int fd, const char *tmpname)
{
    int e = errno;
    if (fd >= 0) close(fd);
    if (tmpname[0]) unlinkat(dirfd, tmpname, 0); /* an unnamed file goes away with its fd */
    errno = e;
}

static int commit_unnamed(int dirfd, int fd, const char *name, int durable);

int ib_commit_tmp(int dirfd, int fd, const char *tmpname, const char *name)
{
    if (!tmpname[0]) return commit_unnamed(dirfd, fd, name, 1);
    if (fchmod(fd, 0644) != 0 || fsync(fd) != 0) {
        ib_discard_tmp(dirfd, fd, tmpname);
        return -1;
    }
    if (close(fd) != 0) {
        ib_discard_tmp(dirfd, -1, tmpname);
        return -1;
    }
    if (renameat(dirfd, tmpname, dirfd, name) != 0) {
        ib_discard_tmp(dirfd, -1, tmpname);
        return -1;
    }
    return ib_fsync_dir(dirfd);
}

int ib_replace_tmp(int dirfd, int fd, const char *tmpname, const char *name)
{
    if (!tmpname[0]) return commit_unnamed(dirfd, fd, name, 0);
    if (fchmod(fd, 0644) != 0 || close(fd) != 0) {
        ib_discard_tmp(dirfd, -1, tmpname);
        return -1;
    }
    if (renameat(dirfd, tmpname, dirfd, name) != 0) {
        ib_discard_tmp(dirfd, -1, tmpname);
        return -1;
    }
    return 0;
}

/* Unnamed files are used while O_TMPFILE works here (cleared the first time the file system refuses one) and
 * /proc is mounted (linkat names the file through /proc/self/fd). */
static int unnamed_works = -1; /* -1: not checked yet */

static int unnamed_ok(void)
{
    int ok = __atomic_load_n(&unnamed_works, __ATOMIC_RELAXED);
    if (ok < 0) {
        ok = access("/proc/self/fd", F_OK) == 0;
        __atomic_store_n(&unnamed_works, ok, __ATOMIC_RELAXED);
    }
    return ok;
}

/* Gives the unnamed (O_TMPFILE) file fd the name `name`: linked in directly when the name is free, else
 * linked under a temporary name and renamed over the old file. 0 or -1/errno. */
static int link_unnamed(int dirfd, int fd, const char *name)
{
    char proc[40], tmp[256 + 32];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    if (linkat(AT_FDCWD, proc, dirfd, name, AT_SYMLINK_FOLLOW) == 0) return 0;
    if (errno != EEXIST) return -1;
    for (int attempt = 0;; attempt++) {
        if (tmp_name(name, tmp, sizeof tmp) < 0) return -1;
        if (linkat(AT_FDCWD, proc, dirfd, tmp, AT_SYMLINK_FOLLOW) == 0) break;
        if (errno != EEXIST || attempt == 99) return -1;
    }
    if (renameat(dirfd, tmp, dirfd, name) == 0) return 0;
    int e = errno;
    unlinkat(dirfd, tmp, 0);
    errno = e;
    return -1;
}

/* Names the unnamed file fd (from ib_open_new) and closes it. */
static int commit_unnamed(int dirfd, int fd, const char *name, int durable)
{
    if (fchmod(fd, 0644) != 0 || (durable && fsync(fd) != 0) || link_unnamed(dirfd, fd, name) != 0) {
        ib_discard_tmp(dirfd, fd, "");
        return -1;
    }
    if (close(fd) != 0) return -1;
    return durable ? ib_fsync_dir(dirfd) : 0;
}

/* A file that is new gets its name without a temporary name being created and removed: on ext4 a freed inode
 * is avoided for a while and searched past, which made many small writes several times slower. */
int ib_open_new(int dirfd, const char *name, char *tmpname, size_t tmpsz)
{
    if (!name_ok(name) || tmpsz == 0) return -1;
    if (unnamed_ok()) {
        int fd = openat(dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
        if (fd >= 0) {
            tmpname[0] = '\0';
            return fd;
        }
        if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)
            __atomic_store_n(&unnamed_works, 0, __ATOMIC_RELAXED);
    }
    return ib_open_tmp(dirfd, name, tmpname, tmpsz);
}

static int write_via_tmp(int dirfd, const char *name, const void *data, size_t len, int durable)
{
    char tmp[256 + 32];
    int fd = ib_open_new(dirfd, name, tmp, sizeof tmp);
    if (fd < 0) return -1;
    if (ib_write_all(fd, data, len) != 0) {
        ib_discard_tmp(dirfd, fd, tmp);
        return -1;
    }
    return durable ? ib_commit_tmp(dirfd, fd, tmp, name) : ib_replace_tmp(dirfd, fd, tmp, name);
}

int ib_write_replace(int dirfd, const char *name, const void *data, size_t len)
{
    return write_via_tmp(dirfd, name, data, len, 0);
}

int ib_write_atomic(int dirfd, const char *name, const void *data, size_t len)
{
    return write_via_tmp(dirfd, name, data, len, 1);
}

/* Reads the regular file fd to its end into a NUL-terminated buffer; at most max bytes. Reads up to max+1
 * bytes whatever fstat said, so a file growing meanwhile is caught too. */
static char *read_regular(int fd, size_t max, size_t *len)
{
    struct stat st;
    if (fstat(fd, &st) != 0) return NULL;
    if (!S_ISREG(st.st_mode)) {
        errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        return NULL;
    }
    if ((uint64_t)st.st_size > max) {
        errno = EFBIG;
        return NULL;
    }
    size_t have = 0, cap = (size_t)st.st_size + 1;
    char *buf = malloc(cap + 1);
    while (buf) {
        if (have == cap) {
            size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            char *nb = cap > max ? NULL : realloc(buf, ncap + 1);
            if (!nb) {
                if (cap > max) errno = EFBIG;
                break;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + have, cap - have);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        if (n == 0) {
            buf[have] = '\0';
            if (len) *len = have;
            return buf;
        }
        have += (size_t)n;
    }
    int e = errno;
    free(buf);
    errno = e;
    return NULL;
}

char *ib_read_file_at(int dirfd, const char *rel, size_t max, size_t *len)
{
    if (max > SIZE_MAX / 2) max = SIZE_MAX / 2;
    /* O_NONBLOCK: a FIFO must not hold the caller in open(2) waiting for a writer; read_regular refuses it */
    int fd = ib_openat_beneath(dirfd, rel, O_RDONLY | O_NONBLOCK, 0);
    if (fd < 0) return NULL;
    char *buf = read_regular(fd, max, len);
    int e = errno;
    close(fd);
    errno = e;
    return buf;
}

int ib_mkdirs_at(int dirfd, const char *rel, mode_t mode)
{
    size_t len = rel ? strlen(rel) : 0;
    if (len >= IB_PATH_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    char buf[IB_PATH_MAX];
    memcpy(buf, rel ? rel : "", len + 1);
    int cur = ib_openat_beneath(dirfd, ".", O_PATH | O_DIRECTORY, 0);
    if (cur < 0) return -1;
    size_t pos = 0;
    while (pos < len) {
        char *slash = memchr(buf + pos, '/', len - pos);
        size_t segend = slash ? (size_t)(slash - buf) : len;
        if (segend == pos) { /* tolerate "a//b" and a trailing '/' */
            pos++;
            continue;
        }
        buf[segend] = '\0';
        /* mkdirat never follows the last component; the parent cur is already confined. */
        if (mkdirat(cur, buf + pos, mode) != 0 && errno != EEXIST) break;
        int next = ib_openat_beneath(dirfd, buf, O_PATH | O_DIRECTORY, 0);
        if (next < 0) break;
        close(cur);
        cur = next;
        if (segend < len) buf[segend] = '/';
        pos = segend + 1;
    }
    int e = errno, done = pos >= len;
    close(cur);
    errno = e;
    return done ? 0 : -1;
}

/* Empties the folder fd (owned and closed here). Entries removed during readdir may or may not be listed
 * again, so the folder is read anew until a pass finds nothing. */
static int empty_dir(int fd)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    int rc = 0;
    for (int pass = 0; pass < 8; pass++) {
        int removed = 0;
        struct dirent *ent;
        errno = 0;
        while ((ent = readdir(d)) != NULL) {
            if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0) continue;
            if (ib_remove_tree_at(dirfd(d), ent->d_name) != 0) {
                rc = -1;
                break;
            }
            removed++;
            errno = 0;
        }
        if (rc != 0 || errno != 0) {
            rc = -1;
            break;
        }
        if (!removed) break;
        rewinddir(d);
    }
    int e = errno;
    closedir(d);
    errno = e;
    return rc;
}

int ib_remove_tree_at(int dirfd, const char *name)
{
    if (unlinkat(dirfd, name, 0) == 0) return 0;
    if (errno == ENOENT) return 0;
    if (errno != EISDIR && errno != EPERM) return -1;
    /* O_NOFOLLOW: a symlink swapped in meanwhile fails here instead of being descended into. */
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 0 : -1;
    if (empty_dir(fd) != 0) return -1;
    if (unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT) return -1;
    return 0;
}

int ib_mkdirs(const char *path, mode_t mode)
{
    size_t len = path ? strlen(path) : 0;
    if (len == 0) {
        errno = ENOENT;
        return -1;
    }
    char *buf = strdup(path);
    if (!buf) return -1;
    int rc = 0;
    for (size_t i = 1; i <= len && rc == 0; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        if (buf[i - 1] == '/') continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, mode) != 0) {
            struct stat st;
            if (errno != EEXIST)
                rc = -1;
            else if (stat(buf, &st) != 0)
                rc = -1;
            else if (!S_ISDIR(st.st_mode)) {
                errno = ENOTDIR;
                rc = -1;
            }
        }
        buf[i] = c;
    }
    int e = errno;
    free(buf);
    errno = e;
    return rc;
}

char *ib_path_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    while (la > 1 && a[la - 1] == '/')
        la--;
    while (lb > 0 && b[0] == '/')
        b++, lb--;
    int sep = la > 0 && a[la - 1] != '/';
    char *out = malloc(la + (size_t)sep + lb + 1);
    if (!out) return NULL;
    memcpy(out, a, la);
    if (sep) out[la] = '/';
    memcpy(out + la + (size_t)sep, b, lb);
    out[la + (size_t)sep + lb] = '\0';
    return out;
}
