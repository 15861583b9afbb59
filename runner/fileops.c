/* fileops: files/copy and files/extract, run as jobs (202 + job_id; polled with jobs/status). Both build the
 * result under a temporary name beside the destination and rename it into place, so a failure or a crash
 * never leaves half a copy; extract checks every archive entry as publishing does. */
#include "fileops.h"

#include "ib_fs.h"
#include "ib_path.h"
#include "ib_zip.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int copy_file_fd(int src, int dst)
{
    char buf[1 << 16];
    ssize_t n;
    while ((n = read(src, buf, sizeof buf)) > 0)
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(dst, buf + off, (size_t)(n - off));
            if (w < 0) return -1;
            off += w;
        }
    return n < 0 ? -1 : 0;
}

/* Copies the folder src_dir into the (new, empty) folder dst_dir; symlinks and special files are skipped. */
static int copy_tree(int src_dir, int dst_dir, int depth, char *err, size_t errsz)
{
    if (depth > 64) return snprintf(err, errsz, "folders nest deeper than 64"), -1;
    int fd = openat(src_dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0) close(fd);
        return snprintf(err, errsz, "cannot list a folder: %s", strerror(errno)), -1;
    }
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        struct stat st;
        if (fstatat(src_dir, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
        if (S_ISDIR(st.st_mode)) {
            int s = openat(src_dir, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            int t = mkdirat(dst_dir, e->d_name, 0755) == 0
                        ? openat(dst_dir, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                        : -1;
            rc = (s < 0 || t < 0) ? (snprintf(err, errsz, "cannot copy folder '%s': %s", e->d_name, strerror(errno)), -1)
                                  : copy_tree(s, t, depth + 1, err, errsz);
            if (s >= 0) close(s);
            if (t >= 0) close(t);
        } else if (S_ISREG(st.st_mode)) {
            /* O_NONBLOCK and a second look once open: a FIFO swapped in since fstatat must not hang the worker */
            int s = openat(src_dir, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
            if (s >= 0 && (fstat(s, &st) != 0 || !S_ISREG(st.st_mode))) {
                close(s); /* skipped, as special files are */
                continue;
            }
            int t = openat(dst_dir, e->d_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
            if (s < 0 || t < 0 || copy_file_fd(s, t) < 0) {
                snprintf(err, errsz, "cannot copy file '%s': %s", e->d_name, strerror(errno));
                rc = -1;
            }
            if (s >= 0) close(s);
            if (t >= 0) close(t);
        }
    }
    closedir(d);
    return rc;
}

static void tmp_name(const char *base, char *out, size_t outsz)
{
    unsigned char r[6];
    if (RAND_bytes(r, sizeof r) != 1) memset(r, 7, sizeof r);
    snprintf(out, outsz, ".%.200s.tmp-%02x%02x%02x%02x%02x%02x", base, r[0], r[1], r[2], r[3], r[4], r[5]);
}

/* extract's dst_path when the client gives none (or "", as the original product's clients send for a name
 * without a dot): the archive's path without its extension, "/a/b/sol-1.0.0.ibsolution" -> "/a/b/sol-1.0.0".
 * Stored in args, so the job record names the folder it writes. */
static ib_code default_dst(json_t *args, const ib_dpath *src, ib_reply *rep)
{
    const char *last = strrchr(src->rel, '/');
    last = last ? last + 1 : src->rel;
    const char *dot = strrchr(last, '.');
    if (!dot || dot == last)
        return ib_fail(rep, IB_BAD_REQUEST,
                       "dst_path: required, as src_path '/%s' has no extension to drop for the default folder",
                       src->rel);
    char shown[IB_PATH_MAX + 1];
    snprintf(shown, sizeof shown, "/%.*s", (int)(dot - src->rel), src->rel);
    if (json_object_set_new(args, "dst_path", json_string(shown)) != 0)
        return ib_fail(rep, IB_INTERNAL, "out of memory");
    return IB_OK;
}

ib_code fileops_check(const char *kind, json_t *args, const ib_caller *who, ib_reply *rep)
{
    ib_dpath src, dst;
    if (ib_dpath_parse(json_string_value(json_object_get(args, "src_path")), who, "src_path", &src, rep))
        return rep->code;
    int fd = ib_drive_openat(runner_drive_fd, &src, O_PATH, 0);
    if (fd < 0) return ib_drive_errno_reply(errno, "src_path", &src, rep);
    struct stat st;
    int stat_ok = fstat(fd, &st) == 0, isdir = stat_ok && S_ISDIR(st.st_mode);
    close(fd);
    if (!strcmp(kind, "extract") && isdir)
        return ib_fail(rep, IB_BAD_REQUEST, "src_path: '/%s' is a folder, not an archive", src.rel);
    if (stat_ok && !isdir && !S_ISREG(st.st_mode))
        return ib_fail(rep, IB_BAD_REQUEST, "src_path: '/%s' is not a regular file", src.rel);
    /* the source is known to be an archive file before its name gives the default destination */
    const char *given = json_string_value(json_object_get(args, "dst_path"));
    if (!strcmp(kind, "extract") && (!given || !given[0]) && default_dst(args, &src, rep) != IB_OK)
        return rep->code;
    if (ib_dpath_parse(json_string_value(json_object_get(args, "dst_path")), who, "dst_path", &dst, rep))
        return rep->code;
    if (!strchr(dst.rel, '/'))
        return ib_fail(rep, IB_BAD_REQUEST, "dst_path: '/%s' is a user's root folder; name a path inside it", dst.rel);
    fd = ib_drive_openat(runner_drive_fd, &dst, O_PATH, 0);
    if (fd >= 0) {
        close(fd);
        return ib_fail(rep, IB_CONFLICT, "dst_path: '/%s' already exists", dst.rel);
    }
    if (errno != ENOENT) return ib_drive_errno_reply(errno, "dst_path", &dst, rep);
    return IB_OK;
}

int fileops_run(const json_t *rec, char *err, size_t errsz)
{
    const char *kind = json_string_value(json_object_get(rec, "kind"));
    const json_t *args = json_object_get(rec, "args");
    ib_caller owner = {json_string_value(json_object_get(rec, "user")), "user", NULL};
    ib_reply rep;
    ib_reply_init(&rep);
    ib_dpath src, dst;
    if (ib_dpath_parse(json_string_value(json_object_get(args, "src_path")), &owner, "src_path", &src, &rep) ||
        ib_dpath_parse(json_string_value(json_object_get(args, "dst_path")), &owner, "dst_path", &dst, &rep)) {
        snprintf(err, errsz, "%s", rep.msg);
        return -1;
    }
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, for ever and deaf to cancel;
     * what is not a regular file or a folder is refused right after fstat. */
    int src_fd = ib_drive_openat(runner_drive_fd, &src, O_RDONLY | O_NONBLOCK, 0);
    struct stat st;
    if (src_fd >= 0 && (fstat(src_fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)))) {
        snprintf(err, errsz, "src_path: '/%s' is not a regular file", src.rel);
        close(src_fd);
        return -1;
    }
    const char *base;
    int parent = src_fd < 0 ? -1 : ib_drive_open_parent(runner_drive_fd, &dst, 1, &base);
    if (src_fd < 0 || parent < 0) {
        ib_drive_errno_reply(errno, src_fd < 0 ? "src_path" : "dst_path", src_fd < 0 ? &src : &dst, &rep);
        snprintf(err, errsz, "%s", rep.msg);
        if (src_fd >= 0) close(src_fd);
        if (parent >= 0) close(parent);
        return -1;
    }
    /* back to blocking reads: for regular files and folders O_NONBLOCK changes nothing, but say what is meant */
    fcntl(src_fd, F_SETFL, fcntl(src_fd, F_GETFL) & ~O_NONBLOCK);
    char tmp[300];
    tmp_name(base, tmp, sizeof tmp);
    int rc = -1;
    if (!strcmp(kind, "copy") && S_ISREG(st.st_mode)) {
        int t = openat(parent, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        rc = t >= 0 && copy_file_fd(src_fd, t) == 0 && fsync(t) == 0 ? 0 : -1;
        if (rc < 0) snprintf(err, errsz, "cannot copy '/%s': %s", src.rel, strerror(errno));
        if (t >= 0) close(t);
    } else if (mkdirat(parent, tmp, 0755) == 0) {
        int t = openat(parent, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (t >= 0 && !strcmp(kind, "copy")) {
            rc = copy_tree(src_fd, t, 0, err, errsz);
        } else if (t >= 0) {
            ib_zip_limits limits = {1ull << 30, 100000};
            char zerr[IB_MSG_MAX];
            zip_t *za = ib_zip_open_verified(src_fd, &limits, zerr, sizeof zerr);
            if (!za)
                snprintf(err, errsz, "src_path: '/%s' cannot be extracted: %s", src.rel, zerr);
            else if ((rc = ib_zip_extract(za, t, zerr, sizeof zerr)) < 0)
                snprintf(err, errsz, "src_path: '/%s' cannot be extracted: %s", src.rel, zerr);
            if (za) zip_discard(za);
        }
        if (t >= 0) close(t);
    } else {
        snprintf(err, errsz, "cannot create a folder beside '/%s': %s", dst.rel, strerror(errno));
    }
    if (rc == 0 && renameat2(parent, tmp, parent, base, RENAME_NOREPLACE) < 0) {
        snprintf(err, errsz, errno == EEXIST ? "dst_path: '/%s' already exists" : "dst_path: '/%s': %s", dst.rel,
                 strerror(errno));
        rc = -1;
    }
    if (rc < 0) ib_remove_tree_at(parent, tmp);
    close(src_fd);
    close(parent);
    return rc;
}
