/* ib_path: parsing of drive paths and their kernel-confined resolution. Every open below a user folder goes
 * through openat2(RESOLVE_BENEATH) rooted at that folder, so `..` and symlinks (also into another user's
 * folder) cannot leave it; the user folder itself is opened with RESOLVE_NO_SYMLINKS. */
#include "ib_path.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ib_fs.h"

#define DIR_MODE 0755

int ib_user_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n < 1 || n > 64 || name[0] == '.' || name[0] == '-') return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

ib_code ib_dpath_parsen(const char *path, size_t len, const ib_caller *who, const char *field, ib_dpath *out,
                        ib_reply *rep)
{
    if (!path || len == 0) return ib_fail(rep, IB_BAD_REQUEST, "%s: path is empty", field);
    /* The message shows the path as given; a NUL ends what can be shown. */
    if (memchr(path, '\0', len))
        return ib_fail(rep, IB_BAD_REQUEST, "%s: path '%s' has a NUL byte", field, path);
    const char *s = path, *end = path + len;
    if (*s == '/') s++;
    if (end > s && end[-1] == '/') end--;
    if (end <= s) return ib_fail(rep, IB_BAD_REQUEST, "%s: path '%.*s' is empty", field, (int)len, path);
    if ((size_t)(end - s) >= sizeof out->rel)
        return ib_fail(rep, IB_BAD_REQUEST, "%s: path is longer than %d bytes", field, IB_PATH_MAX - 1);

    for (const char *seg = s; seg <= end;) {
        const char *slash = memchr(seg, '/', (size_t)(end - seg));
        const char *segend = slash ? slash : end;
        size_t n = (size_t)(segend - seg);
        if (n == 0)
            return ib_fail(rep, IB_BAD_REQUEST, "%s: path '%.*s' has an empty segment", field, (int)len,
                           path);
        if (n == 1 && seg[0] == '.')
            return ib_fail(rep, IB_BAD_REQUEST, "%s: path '%.*s' has a '.' segment", field, (int)len, path);
        if (n == 2 && seg[0] == '.' && seg[1] == '.')
            return ib_fail(rep, IB_BAD_REQUEST, "%s: path '%.*s' has a '..' segment", field, (int)len, path);
        if (n > 255)
            return ib_fail(rep, IB_BAD_REQUEST, "%s: path '%.*s' has a segment longer than 255 bytes", field,
                           (int)len, path);
        if (seg == s) {
            if (n >= sizeof out->user) n = sizeof out->user - 1;
            memcpy(out->user, seg, n);
            out->user[n] = '\0';
        }
        seg = segend + 1;
    }
    memcpy(out->rel, s, (size_t)(end - s));
    out->rel[end - s] = '\0';

    if (!ib_user_name_ok(out->user))
        return ib_fail(rep, IB_BAD_REQUEST, "%s: path '%.*s' does not start with a valid user name", field,
                       (int)len, path);
    if (!ib_caller_is_admin(who) && (!who || !who->user || strcmp(who->user, out->user) != 0))
        return ib_fail(rep, IB_FORBIDDEN, "%s: '/%s' belongs to another user", field, out->rel);
    return IB_OK;
}

ib_code ib_dpath_parse(const char *path, const ib_caller *who, const char *field, ib_dpath *out,
                       ib_reply *rep)
{
    return ib_dpath_parsen(path, path ? strlen(path) : 0, who, field, out, rep);
}

const char *ib_dpath_show(const ib_dpath *p, char *buf, size_t bufsz)
{
    snprintf(buf, bufsz, "/%s", p->rel);
    return buf;
}

/* openat2 with the mode only where the kernel accepts one (O_CREAT/O_TMPFILE), retried on EAGAIN, which
 * RESOLVE_BENEATH returns when a concurrent rename anywhere might have raced the lookup. */
static int openat2_retry(int dirfd, const char *rel, int flags, mode_t mode, unsigned long long resolve)
{
    struct open_how how = {0};
    how.flags = (unsigned long long)(flags | O_CLOEXEC);
    how.mode = (flags & (O_CREAT | __O_TMPFILE)) ? mode : 0;
    how.resolve = resolve;
    for (int i = 0; i < 32; i++) {
        long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
        if (fd >= 0) return (int)fd;
        if (errno != EAGAIN && errno != EINTR) return -1;
    }
    return -1;
}

int ib_openat_beneath(int dirfd, const char *rel, int flags, mode_t mode)
{
    if (!rel || !*rel) rel = ".";
    return openat2_retry(dirfd, rel, flags, mode, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
}

int ib_openat_strict(int dirfd, const char *rel, int flags, mode_t mode)
{
    if (!rel || !*rel) rel = ".";
    return openat2_retry(dirfd, rel, flags, mode, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
}

int ib_drive_open_root(const char *drive_root)
{
    if (ib_mkdirs(drive_root, DIR_MODE) != 0) return -1;
    return open(drive_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

/* The user folder: a real directory right below the root, never a symlink. */
static int open_user(int drive_fd, const ib_dpath *p, int create)
{
    unsigned long long res = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
    int fd = openat2_retry(drive_fd, p->user, O_RDONLY | O_DIRECTORY, 0, res);
    if (fd >= 0 || errno != ENOENT || !create) return fd;
    if (mkdirat(drive_fd, p->user, DIR_MODE) != 0 && errno != EEXIST) return -1;
    return openat2_retry(drive_fd, p->user, O_RDONLY | O_DIRECTORY, 0, res);
}

/* The part of rel below the user folder: "" for the user folder itself. */
static const char *below_user(const ib_dpath *p)
{
    size_t n = strlen(p->user);
    return p->rel[n] == '/' ? p->rel + n + 1 : "";
}

/* Opens the folder made of the first `upto` bytes of `rest` below the user folder ufd, creating each missing
 * folder when asked. Each step is resolved from ufd again, so a symlink met on the way stays confined, and a
 * folder is created only with mkdirat relative to its already confined parent (mkdirat never follows the last
 * component). */
static int walk_dirs(int ufd, const char *rest, size_t upto, int create)
{
    char buf[IB_PATH_MAX];
    if (upto == 0) return openat2_retry(ufd, ".", O_RDONLY | O_DIRECTORY, 0, RESOLVE_BENEATH);
    memcpy(buf, rest, upto);
    buf[upto] = '\0';
    int fd = ib_openat_beneath(ufd, buf, O_RDONLY | O_DIRECTORY, 0);
    if (fd >= 0 || errno != ENOENT || !create) return fd;

    int cur = openat2_retry(ufd, ".", O_RDONLY | O_DIRECTORY, 0, RESOLVE_BENEATH);
    if (cur < 0) return -1;
    size_t pos = 0;
    while (pos < upto) {
        const char *slash = memchr(buf + pos, '/', upto - pos);
        size_t segend = slash ? (size_t)(slash - buf) : upto;
        buf[segend] = '\0';
        int next = ib_openat_beneath(ufd, buf, O_RDONLY | O_DIRECTORY, 0);
        if (next < 0 && errno == ENOENT) {
            if (mkdirat(cur, buf + pos, DIR_MODE) != 0 && errno != EEXIST) {
                int e = errno;
                close(cur);
                errno = e;
                return -1;
            }
            next = ib_openat_beneath(ufd, buf, O_RDONLY | O_DIRECTORY, 0);
        }
        int e = errno;
        close(cur);
        if (next < 0) {
            errno = e;
            return -1;
        }
        cur = next;
        if (segend < upto) buf[segend] = '/';
        pos = segend + 1;
    }
    return cur;
}

int ib_drive_openat(int drive_fd, const ib_dpath *p, int flags, mode_t mode)
{
    int ufd = open_user(drive_fd, p, 0);
    if (ufd < 0) return -1;
    const char *rest = below_user(p);
    int fd = *rest ? ib_openat_beneath(ufd, rest, flags, mode)
                   : openat2_retry(ufd, ".", flags, mode, RESOLVE_BENEATH);
    int e = errno;
    close(ufd);
    errno = e;
    return fd;
}

int ib_drive_open_parent(int drive_fd, const ib_dpath *p, int create, const char **base)
{
    const char *rest = below_user(p);
    /* The parent of a user folder is the drive root, which belongs to nobody. */
    if (!*rest) {
        errno = EPERM;
        return -1;
    }
    const char *last = strrchr(rest, '/');
    if (base) *base = last ? last + 1 : rest;
    int ufd = open_user(drive_fd, p, create);
    if (ufd < 0) return -1;
    int fd = walk_dirs(ufd, rest, last ? (size_t)(last - rest) : 0, create);
    int e = errno;
    close(ufd);
    errno = e;
    return fd;
}

int ib_drive_open_dir(int drive_fd, const ib_dpath *p, int create)
{
    int ufd = open_user(drive_fd, p, create);
    if (ufd < 0) return -1;
    const char *rest = below_user(p);
    int fd = walk_dirs(ufd, rest, strlen(rest), create);
    int e = errno;
    close(ufd);
    errno = e;
    return fd;
}

ib_code ib_drive_errno_reply(int err, const char *field, const ib_dpath *p, ib_reply *rep)
{
    const char *rel = p ? p->rel : "";
    switch (err) {
    case ENOENT:
        return ib_fail(rep, IB_NOT_FOUND, "%s: '/%s' does not exist", field, rel);
    case EXDEV:
    case ELOOP:
        return ib_fail(rep, IB_FORBIDDEN,
                       "%s: '/%s' leaves the drive (a symlink or '..' points outside its user folder)", field,
                       rel);
    case ENOTDIR:
        return ib_fail(rep, IB_BAD_REQUEST, "%s: '/%s': a part of the path is not a folder", field, rel);
    case EISDIR:
        return ib_fail(rep, IB_BAD_REQUEST, "%s: '/%s' is a folder", field, rel);
    case EEXIST:
        return ib_fail(rep, IB_CONFLICT, "%s: '/%s' already exists", field, rel);
    case ENOTEMPTY:
        return ib_fail(rep, IB_CONFLICT, "%s: '/%s' is a folder that is not empty", field, rel);
    case EPERM:
        return ib_fail(rep, IB_BAD_REQUEST, "%s: '/%s' is a user's root folder; name a path inside it", field,
                       rel);
    case EACCES:
        return ib_fail(rep, IB_FORBIDDEN, "%s: '/%s': permission denied", field, rel);
    case ENAMETOOLONG:
        return ib_fail(rep, IB_BAD_REQUEST, "%s: '/%s': name too long", field, rel);
    case EFBIG:
        return ib_fail(rep, IB_TOO_LARGE, "%s: '/%s' is too large", field, rel);
    case ENOSPC:
    case EDQUOT:
        return ib_fail(rep, IB_NO_SPACE, "%s: '/%s': " IB_NO_SPACE_MSG, field, rel);
    default:
        return ib_fail(rep, IB_INTERNAL, "%s: '/%s': %s", field, rel, strerror(err));
    }
}
