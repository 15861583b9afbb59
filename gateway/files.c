/* gw files: the drive over HTTP (PUT, PATCH, GET, HEAD, POST, DELETE on /api/v2/files/<drive path>). Bytes
 * stream between the socket and the drive in bounded chunks, never whole in memory; every open goes through
 * ib_path, so a path never leaves its user folder, and every write lands whole (temp + rename) or not at all.
 */
#include "gw.h"

#include "ib_conv.h"
#include "ib_fs.h"
#include "ib_log.h"
#include "ib_mdrive.h"
#include "ib_path.h"
#include "ib_settings.h"
#include "ib_utf8.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define UPLOAD_CHUNK (64 * 1024)    /* one mg_read */
#define DOWNLOAD_CHUNK (256 * 1024) /* one pread + mg_write */
#define LIST_MAX 100000             /* entries in one folder listing */
#define FIELD "path"                /* how error messages name the URL's drive path */

/* --- helpers -------------------------------------------------------------------------------------------- */

static void reply_errno(gw_req *r, int err, const ib_dpath *p)
{
    ib_reply rep;
    ib_reply_init(&rep);
    ib_drive_errno_reply(err, FIELD, p, &rep);
    gw_reply_ib(r, &rep);
    ib_reply_clear(&rep);
}

static int is_method(const gw_req *r, const char *m)
{
    return !strcmp(r->ri->request_method, m);
}

/* The drive path exactly as the client sent it, decoded once. local_uri (what routes.c matched) has been
 * through civetweb's dot-segment cleaning, which would silently turn "a/../b" into "b"; local_uri_raw has
 * not. When civetweb is told not to decode (decode_url=no) we decode here, and only then can a "%00" be seen
 * and refused: civetweb's own decoding ends the string at it. */
static int request_path(gw_req *r, const char *routed, char *out, size_t outsz, size_t *len)
{
    static const char *const prefixes[] = {"/api/v2/files/", "/api/v1/files/", "/files/", "/api/v1/drives/",
                                           "/drives/"};
    const char *raw = r->ri->local_uri_raw, *rest = NULL;
    for (size_t i = 0; raw && i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t n = strlen(prefixes[i]);
        if (!strncmp(raw, prefixes[i], n)) {
            rest = raw + n;
            break;
        }
    }
    const char *opt = gw.http ? mg_get_option(gw.http, "decode_url") : NULL;
    int predecoded = !rest || !opt || strcmp(opt, "no") != 0;
    if (!rest) rest = routed;
    size_t n = strlen(rest);
    if (predecoded) {
        if (n >= outsz) return -1;
        memcpy(out, rest, n + 1);
        *len = n;
        return 0;
    }
    if (n >= outsz) return -1;
    int d = mg_url_decode(rest, (int)n, out, (int)outsz, 0);
    if (d < 0) return -1;
    *len = (size_t)d;
    return 0;
}

/* ib_open_tmp's names (".<name>.tmp-XXXXXXXX"): uploads in flight, not files yet, so listings leave them out.
 */
static int is_tmp_name(const char *name)
{
    size_t n = strlen(name);
    if (n < 15 || name[0] != '.' || memcmp(name + n - 13, ".tmp-", 5) != 0) return 0;
    for (size_t i = n - 8; i < n; i++) {
        char c = name[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) return 0;
    }
    return 1;
}

/* A path's final symlink may point anywhere inside its user folder; one that leaves it is refused for every
 * method, even where the operation would touch only the link itself. Returns 0, or -1 after replying. */
static int refuse_escaping_link(gw_req *r, const ib_dpath *p, int dirfd, const char *base, struct stat *st)
{
    if (fstatat(dirfd, base, st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) return 0;
        reply_errno(r, errno, p);
        return -1;
    }
    if (!S_ISLNK(st->st_mode)) return 0;
    int fd = ib_drive_openat(gw.drive_fd, p, O_PATH, 0);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    if (errno == EXDEV || errno == ELOOP) {
        reply_errno(r, errno, p);
        return -1;
    }
    return 0; /* dangling but confined: the link itself may be replaced or removed */
}

/* --- request bodies to files ---------------------------------------------------------------------------- */

typedef enum body_fail { BODY_OK, BODY_TOO_LARGE, BODY_SHORT, BODY_IO } body_fail;

/* Copies the request body to fd from offset `off`, refusing more than `room` bytes. errno is kept for
 * BODY_IO. */
static body_fail copy_body(gw_req *r, int fd, off_t off, long long room, long long *copied)
{
    char *buf = malloc(UPLOAD_CHUNK);
    if (!buf) {
        errno = ENOMEM;
        return BODY_IO;
    }
    long long declared = r->ri->content_length, total = 0;
    body_fail res = BODY_OK;
    /* civetweb leaves "Expect: 100-continue" to handlers; unanswered, curl waits a second before each upload.
     * Answered only here, once the request has passed every check, so a refused upload is never sent. */
    const char *expect = mg_get_header(r->conn, "Expect");
    if (expect && !strcasecmp(expect, "100-continue") && !strcmp(r->ri->http_version, "1.1"))
        mg_write(r->conn, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    for (;;) {
        int n = mg_read(r->conn, buf, UPLOAD_CHUNK);
        if (n < 0) {
            res = BODY_SHORT;
            break;
        }
        if (n == 0) {
            if (declared >= 0 && total < declared) res = BODY_SHORT;
            break;
        }
        if (total + n > room) {
            res = BODY_TOO_LARGE;
            break;
        }
        for (int done = 0; done < n;) {
            ssize_t w = pwrite(fd, buf + done, (size_t)(n - done), off + total + done);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                if (w == 0) errno = EIO;
                res = BODY_IO;
                break;
            }
            done += (int)w;
        }
        if (res != BODY_OK) break;
        total += n;
    }
    int e = errno;
    free(buf);
    errno = e;
    *copied = total;
    return res;
}

static void reply_body_fail(gw_req *r, body_fail why, int err, const ib_dpath *p, long long limit)
{
    if (why == BODY_TOO_LARGE)
        gw_reply_error(r, IB_TOO_LARGE, "%s: '/%s': the upload passes the limit of %lld bytes", FIELD, p->rel,
                       limit);
    else if (why == BODY_SHORT)
        gw_reply_error(r, IB_BAD_REQUEST,
                       "%s: '/%s': the request body ended before its Content-Length; nothing was written",
                       FIELD, p->rel);
    else
        reply_errno(r, err, p);
}

/* A body with neither Content-Length nor chunking has no known end: civetweb takes it as empty (on HTTP/1.0
 * too, where the end would be the connection's), which would write an empty file, so it is refused. */
static int body_length_ok(gw_req *r)
{
    if (r->ri->content_length >= 0) return 1;
    const char *te = mg_get_header(r->conn, "Transfer-Encoding");
    if (te && !strcasecmp(te, "chunked")) return 1;
    gw_reply_error_http(r, 411, IB_BAD_REQUEST,
                        "a Content-Length header (or chunked Transfer-Encoding) is required");
    return 0;
}

/* PUT, and PATCH with IB-Cursor 0: the whole file anew, atomically. */
static void put_file(gw_req *r, const ib_dpath *p)
{
    if (!body_length_ok(r)) return;
    if (r->ri->content_length > gw.max_upload)
        return gw_reply_error(r, IB_TOO_LARGE, "%s: '/%s': %lld bytes pass the upload limit of %lld bytes",
                              FIELD, p->rel, r->ri->content_length, gw.max_upload);
    const char *base;
    int dirfd = ib_drive_open_parent(gw.drive_fd, p, 1, &base);
    if (dirfd < 0) return reply_errno(r, errno, p);
    struct stat st;
    if (refuse_escaping_link(r, p, dirfd, base, &st) != 0) goto out;
    int exists =
        fstatat(dirfd, base, &st, 0) == 0; /* follows a confined link: a folder behind it counts too */
    if (exists && S_ISDIR(st.st_mode)) {
        gw_reply_error(r, IB_BAD_REQUEST, "%s: '/%s' is a folder; PUT writes a file", FIELD, p->rel);
        goto out;
    }
    char tmp[512];
    int fd = ib_open_tmp(dirfd, base, tmp, sizeof tmp);
    if (fd < 0) {
        reply_errno(r, errno, p);
        goto out;
    }
    long long copied;
    body_fail why = copy_body(r, fd, 0, gw.max_upload, &copied);
    if (why != BODY_OK) {
        int e = errno;
        ib_discard_tmp(dirfd, fd, tmp);
        reply_body_fail(r, why, e, p, gw.max_upload);
        goto out;
    }
    if (fchmod(fd, 0644) != 0) {
        int e = errno;
        ib_discard_tmp(dirfd, fd, tmp);
        reply_errno(r, e, p);
        goto out;
    }
    if (ib_commit_tmp(dirfd, fd, tmp, base) != 0) {
        reply_errno(r, errno, p);
        goto out;
    }
    gw_reply_empty(r, 204, NULL);
out:
    close(dirfd);
}

/* PATCH with IB-Cursor -1: appends. The lock serialises appenders, so a failed one can cut the file back to
 * the size it found without losing another's chunk. */
static void append_file(gw_req *r, const ib_dpath *p)
{
    if (!body_length_ok(r)) return;
    if (r->ri->content_length > gw.max_upload)
        return gw_reply_error(r, IB_TOO_LARGE, "%s: '/%s': %lld bytes pass the upload limit of %lld bytes",
                              FIELD, p->rel, r->ri->content_length, gw.max_upload);
    /* O_NONBLOCK: opening a FIFO someone placed in the drive must not hang the thread. */
    int fd = ib_drive_openat(gw.drive_fd, p, O_WRONLY | O_NONBLOCK, 0);
    if (fd < 0 && errno == ENXIO)
        return gw_reply_error(r, IB_BAD_REQUEST, "%s: '/%s' is not a regular file", FIELD, p->rel);
    if (fd < 0) return reply_errno(r, errno, p);
    struct stat st;
    if (flock(fd, LOCK_EX) != 0 || fstat(fd, &st) != 0) {
        reply_errno(r, errno, p);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        gw_reply_error(r, IB_BAD_REQUEST, "%s: '/%s' is not a regular file", FIELD, p->rel);
        goto out;
    }
    long long room = gw.max_upload - (long long)st.st_size;
    if (room < 0) room = 0;
    if (r->ri->content_length > room) {
        gw_reply_error(r, IB_TOO_LARGE,
                       "%s: '/%s': appending %lld bytes to %lld passes the upload limit of %lld bytes", FIELD,
                       p->rel, r->ri->content_length, (long long)st.st_size, gw.max_upload);
        goto out;
    }
    long long copied;
    body_fail why = copy_body(r, fd, st.st_size, room, &copied);
    int e = errno;
    if (why == BODY_OK && fdatasync(fd) != 0) {
        why = BODY_IO;
        e = errno;
    }
    if (why != BODY_OK) {
        if (ftruncate(fd, st.st_size) != 0)
            ib_error(r->rid, "files: could not cut '/%s' back to %lld bytes: %s", p->rel,
                     (long long)st.st_size, strerror(errno));
        reply_body_fail(r, why, e, p, gw.max_upload);
        goto out;
    }
    gw_reply_empty(r, 204, NULL);
out:
    close(fd);
}

static void patch_file(gw_req *r, const ib_dpath *p)
{
    const char *c = mg_get_header(r->conn, "IB-Cursor");
    if (c && !strcmp(c, "0")) return put_file(r, p);
    if (c && !strcmp(c, "-1")) return append_file(r, p);
    gw_reply_error(r, IB_BAD_REQUEST,
                   "header IB-Cursor must be 0 (start the file anew) or -1 (append), not '%.64s'",
                   c ? c : "(missing)");
}

/* --- reading -------------------------------------------------------------------------------------------- */

/* One "bytes=a-b", "bytes=a-" or "bytes=-n" range. 1: [*a, *b] is satisfiable; 0: no usable header (send
 * all); -1: unsatisfiable (416). Several ranges are answered with the whole file, which RFC 9110 allows. */
static int parse_range(const char *h, long long size, long long *a, long long *b)
{
    if (!h || strncmp(h, "bytes=", 6) != 0 || strchr(h, ',')) return 0;
    const char *s = h + 6;
    char *end;
    if (*s == '-') {
        if (s[1] < '0' || s[1] > '9') return 0;
        errno = 0;
        long long n = strtoll(s + 1, &end, 10);
        if (errno || *end) return 0;
        if (n == 0 || size == 0) return -1;
        *a = n >= size ? 0 : size - n;
        *b = size - 1;
        return 1;
    }
    if (*s < '0' || *s > '9') return 0;
    errno = 0;
    long long first = strtoll(s, &end, 10);
    if (errno || *end != '-') return 0;
    long long last = size - 1;
    if (end[1]) {
        if (end[1] < '0' || end[1] > '9') return 0;
        last = strtoll(end + 1, &end, 10);
        if (errno || *end || last < first) return 0;
    }
    if (first >= size) return -1;
    *a = first;
    *b = last >= size ? size - 1 : last;
    return 1;
}

static void send_file(gw_req *r, const ib_dpath *p, int fd, const struct stat *st)
{
    long long size = st->st_size, a = 0, b = size - 1;
    int ranged = parse_range(mg_get_header(r->conn, "Range"), size, &a, &b);
    char extra[256];
    if (ranged < 0) {
        snprintf(extra, sizeof extra, "Content-Range: bytes */%lld\r\n", size);
        char msg[IB_MSG_MAX];
        snprintf(msg, sizeof msg, "%s: '/%.900s': the requested range is outside the file's %lld bytes",
                 FIELD, p->rel, size);
        /* RFC 9110 asks a 416 to say the file's size in Content-Range. */
        gw_reply_error_extra(r, 416, IB_BAD_REQUEST, msg, extra);
        return;
    }
    if (ranged > 0)
        snprintf(extra, sizeof extra,
                 "IB-Node-Type: file\r\nAccept-Ranges: bytes\r\nContent-Range: bytes %lld-%lld/%lld\r\n", a,
                 b, size);
    else
        snprintf(extra, sizeof extra, "IB-Node-Type: file\r\nAccept-Ranges: bytes\r\n");
    long long len = size ? b - a + 1 : 0;
    gw_reply_begin(r, ranged > 0 ? 206 : 200, "application/octet-stream", len, extra);
    if (is_method(r, "HEAD") || len == 0) return;
    char *buf = malloc(DOWNLOAD_CHUNK);
    if (!buf) return; /* headers are out: all that is left is to cut the connection short */
    for (long long off = a, left = len; left > 0;) {
        size_t want = left < DOWNLOAD_CHUNK ? (size_t)left : DOWNLOAD_CHUNK;
        ssize_t n = pread(fd, buf, want, off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            ib_warn(r->rid, "files: '/%s' shrank or failed while being sent: %s", p->rel,
                    n < 0 ? strerror(errno) : "end of file");
            break;
        }
        if (mg_write(r->conn, buf, (size_t)n) <= 0) break; /* the client went away */
        off += n;
        left -= n;
    }
    free(buf);
}

typedef struct node {
    char *name;
    int folder;
    long long size, mtime;
} node;

static int node_cmp(const void *x, const void *y)
{
    return strcmp(((const node *)x)->name, ((const node *)y)->name);
}

/* A folder's files and folders, sorted by name. Symlinks and other special files are left out: the API knows
 * only files and folders, and listing a link's target would follow it. fd is owned here. */
static void send_listing(gw_req *r, const ib_dpath *p, int fd)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return reply_errno(r, e, p);
    }
    size_t n = 0, cap = 64;
    node *nodes = malloc(cap * sizeof *nodes);
    int truncated = 0, err = nodes ? 0 : ENOMEM;
    struct dirent *ent;
    while (!err && (errno = 0, ent = readdir(d)) != NULL) {
        const char *nm = ent->d_name;
        if (!strcmp(nm, ".") || !strcmp(nm, "..") || is_tmp_name(nm)) continue;
        struct stat st;
        if (fstatat(dirfd(d), nm, &st, AT_SYMLINK_NOFOLLOW) != 0) continue; /* removed meanwhile */
        if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) continue;
        if (n == LIST_MAX) {
            truncated = 1;
            break;
        }
        if (n == cap) {
            node *nn = realloc(nodes, 2 * cap * sizeof *nodes);
            if (!nn) {
                err = ENOMEM;
                break;
            }
            nodes = nn;
            cap *= 2;
        }
        nodes[n].name = strdup(nm);
        if (!nodes[n].name) {
            err = ENOMEM;
            break;
        }
        nodes[n].folder = S_ISDIR(st.st_mode);
        nodes[n].size = nodes[n].folder ? 0 : (long long)st.st_size;
        nodes[n].mtime = (long long)st.st_mtim.tv_sec;
        n++;
    }
    if (!err && !ent && errno) err = errno;
    closedir(d);
    char *text = NULL;
    if (!err) {
        qsort(nodes, n, sizeof *nodes, node_cmp);
        json_t *arr = json_array();
        for (size_t i = 0; i < n && arr && !err; i++) {
            /* A name that is not UTF-8 (made outside the API) is shown with its odd bytes as \xHH and
             * "escaped": true, rather than left out: the listing must show what the folder holds. */
            char shown[4 * 256 + 1], full[IB_PATH_MAX + sizeof shown + 1];
            int odd = !ib_utf8_valid(nodes[i].name, strlen(nodes[i].name));
            const char *nm = odd ? ib_utf8_escape(nodes[i].name, shown, sizeof shown) : nodes[i].name;
            /* full_path as the original product gives it, without a leading '/': its clients use it as is */
            snprintf(full, sizeof full, "%s/%s", p->rel, nm);
            json_t *node = json_pack("{s:s, s:s, s:s, s:I, s:I}", "name", nm, "full_path", full, "type",
                                     nodes[i].folder ? "folder" : "file", "size", (json_int_t)nodes[i].size,
                                     "modified", (json_int_t)nodes[i].mtime);
            if (node && odd) json_object_set_new(node, "escaped", json_true());
            if (!node || json_array_append_new(arr, node) != 0) err = ENOMEM;
        }
        json_t *body = json_pack("{s:s, s:o}", "status", "OK", "nodes", arr);
        if (truncated) json_object_set_new(body, "truncated", json_true());
        text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        if (!text) err = ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        free(nodes[i].name);
    free(nodes);
    if (err) {
        free(text);
        return reply_errno(r, err, p);
    }
    size_t len = strlen(text);
    gw_reply_begin(r, 200, "application/json", (long long)len, "IB-Node-Type: folder\r\n");
    if (!is_method(r, "HEAD")) mg_write(r->conn, text, len);
    free(text);
}

/* The query's expect-node-type into expect ("" when absent). -1 after replying 400 to another value. */
static int expect_node_type(gw_req *r, char expect[16])
{
    expect[0] = '\0';
    const char *q = r->ri->query_string;
    if (q && mg_get_var(q, strlen(q), "expect-node-type", expect, 16) != -1 && strcmp(expect, "file") != 0 &&
        strcmp(expect, "folder") != 0) {
        gw_reply_error(r, IB_BAD_REQUEST, "query parameter expect-node-type must be 'file' or 'folder'");
        return -1;
    }
    return 0;
}

/* GET and HEAD. */
static void get_node(gw_req *r, const ib_dpath *p)
{
    char expect[16];
    if (expect_node_type(r, expect) != 0) return;
    /* O_NONBLOCK: a FIFO in the drive must not hang the thread; it changes nothing for files and folders. */
    int fd = ib_drive_openat(gw.drive_fd, p, O_RDONLY | O_NONBLOCK, 0);
    if (fd < 0) return reply_errno(r, errno, p);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return reply_errno(r, e, p);
    }
    int folder = S_ISDIR(st.st_mode);
    if (!folder && !S_ISREG(st.st_mode)) {
        close(fd);
        return gw_reply_error(r, IB_BAD_REQUEST, "%s: '/%s' is neither a file nor a folder", FIELD, p->rel);
    }
    if (expect[0] && strcmp(expect, folder ? "folder" : "file") != 0) {
        close(fd);
        return gw_reply_error(r, IB_BAD_REQUEST, "%s: '/%s' is a %s, not a %s (expect-node-type)", FIELD,
                              p->rel, folder ? "folder" : "file", expect);
    }
    if (folder) return send_listing(r, p, fd);
    send_file(r, p, fd, &st);
    close(fd);
}

/* --- folders and removal -------------------------------------------------------------------------------- */

/* A POST's body as a JSON object, or NULL after replying 400/413. */
static json_t *post_body(gw_req *r)
{
    size_t len;
    char *body = gw_read_body(r, &len);
    if (!body) return NULL;
    json_error_t jerr;
    json_t *args = ib_json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    free(body);
    if (!args) {
        gw_reply_json_error(r, "request body", &jerr);
        return NULL;
    }
    if (!json_is_object(args)) {
        json_decref(args);
        gw_reply_error(r, IB_BAD_REQUEST,
                       "request body must be a JSON object ({\"name\", \"node_type\"} to create a folder, "
                       "{\"src_path\", \"dst_path\"} at copy and extract)");
        return NULL;
    }
    return args;
}

/* POST <parent> {"name": N, "node_type": "folder"}: 201 when made, 200 when it was there already; missing
 * parents are made too. Takes args
 * (the body, already read when the URL was copy or extract), or reads it when NULL. */
static void create_folder(gw_req *r, const ib_dpath *p, json_t *args)
{
    if (!args && !(args = post_body(r))) return;
    const char *name = json_string_value(json_object_get(args, "name"));
    const char *type = json_string_value(json_object_get(args, "node_type"));
    ib_dpath child = *p;
    int bad_name = !name || !name[0] || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..") ||
                   strlen(name) != json_string_length(json_object_get(args, "name")) || strlen(name) > 255;
    int too_long =
        !bad_name && (size_t)snprintf(child.rel, sizeof child.rel, "%s/%s", p->rel, name) >= sizeof child.rel;
    if (bad_name || too_long) {
        gw_reply_error(r, IB_BAD_REQUEST,
                       "name: must be one folder name (1-255 bytes, no '/', not '.' or '..'), not '%.300s'",
                       name ? name : "(missing)");
    } else if (!type || strcmp(type, "folder") != 0) {
        gw_reply_error(r, IB_BAD_REQUEST, "node_type: must be \"folder\", not '%.64s'",
                       type ? type : "(missing)");
    }
    if (bad_name || too_long || !type || strcmp(type, "folder") != 0) return json_decref(args);

    /* Missing parents are made first, as the original product does (its CI/CD client makes "<path>/deps" in
     * folders that may not exist yet); a parent that is a file is a 400. */
    int dirfd = ib_drive_open_dir(gw.drive_fd, p, 1);
    if (dirfd < 0) {
        json_decref(args);
        return reply_errno(r, errno, p);
    }
    char shown[IB_PATH_MAX + 2];
    ib_dpath_show(&child, shown, sizeof shown);
    struct stat st;
    if (mkdirat(dirfd, name, 0755) == 0) {
        fsync(dirfd);
        gw_reply_json(r, 201, json_pack("{s:s, s:s}", "status", "OK", "path", shown));
    } else if (errno == EEXIST && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
               S_ISDIR(st.st_mode)) {
        gw_reply_json(r, 200, json_pack("{s:s, s:s}", "status", "OK", "path", shown));
    } else if (errno == EEXIST) {
        gw_reply_error(r, IB_CONFLICT, "%s: '%s' already exists and is not a folder", FIELD, shown);
    } else {
        reply_errno(r, errno, &child);
    }
    close(dirfd);
    json_decref(args);
}

/* DELETE: a file, or a folder with everything in it; symlinks inside are removed, never followed. A user's
 * root folder is refused (400, by ib_drive_open_parent's EPERM): emptying a whole account is not one request.
 */
static void delete_node(gw_req *r, const ib_dpath *p)
{
    const char *base;
    int dirfd = ib_drive_open_parent(gw.drive_fd, p, 0, &base);
    if (dirfd < 0) return reply_errno(r, errno, p);
    struct stat st;
    if (refuse_escaping_link(r, p, dirfd, base, &st) == 0) {
        if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) != 0)
            reply_errno(r, errno, p);
        else if (ib_remove_tree_at(dirfd, base) != 0)
            reply_errno(r, errno, p);
        else
            gw_reply_empty(r, 204, NULL);
    }
    close(dirfd);
}

/* --- the marketplace as a read-only drive (ib_mdrive) ---------------------------------------------------- */

/* <data>/marketplace, opened at first use: it appears with the first publish, which may come after startup. */
static pthread_mutex_t market_mu = PTHREAD_MUTEX_INITIALIZER;
static int market_fd = -1;

static int market_dir(void)
{
    pthread_mutex_lock(&market_mu);
    if (market_fd < 0) {
        char path[4096];
        market_fd = open(ib_data_path("marketplace", path, sizeof path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    int fd = market_fd;
    pthread_mutex_unlock(&market_mu);
    return fd;
}

/* Anything at or below system/global: GET and HEAD read the published archives and list their folders; every
 * other method is refused, for admins too: versions reach the marketplace only through marketplace/publish.
 * The paths live on the heap and the function is never inlined: civetweb's worker threads have small stacks,
 * which files_entry's other callees (the uploads) need. */
typedef struct market_req {
    char shown[IB_PATH_MAX + 2];
    ib_mdrive_node n;
    ib_dpath p;
} market_req;

static __attribute__((noinline)) void serve_market(gw_req *r, const char *raw, size_t len)
{
    market_req *m = malloc(sizeof *m);
    if (!m) return gw_reply_error(r, IB_INTERNAL, "out of memory");
    size_t skip = 0;
    while (skip < len && raw[skip] == '/') skip++;
    snprintf(m->shown, sizeof m->shown, "/%.*s", (int)(len - skip), raw + skip);
    const char *shown = m->shown;
    char expect[16];
    int mfd = -1;
    if (!is_method(r, "GET") && !is_method(r, "HEAD")) {
        gw_reply_error(r, IB_FORBIDDEN,
                       "%s: '%.1000s' is the marketplace, which is read-only: %s is not allowed there (publish with "
                       "marketplace/publish)",
                       FIELD, shown, r->ri->request_method);
        goto out;
    }
    if (expect_node_type(r, expect) != 0) goto out;
    mfd = market_dir();
    if (mfd < 0 || ib_mdrive_open(mfd, raw, len, &m->n) != 0) {
        if (mfd < 0 || errno == ENOENT)
            gw_reply_error(r, IB_NOT_FOUND,
                           "%s: '%.1000s' not found: the marketplace drive holds only '/" IB_MDRIVE_ALL
                           "/<name>/<version>/<name>-<version>.ibsolution' of published versions",
                           FIELD, shown);
        else
            gw_reply_error(r, IB_INTERNAL, "%s: '%.1000s' cannot be read: %s", FIELD, shown, strerror(errno));
        goto out;
    }
    int folder = m->n.level < 3;
    if (expect[0] && strcmp(expect, folder ? "folder" : "file") != 0) {
        gw_reply_error(r, IB_BAD_REQUEST, "%s: '%.1000s' is a %s, not a %s (expect-node-type)", FIELD, shown,
                       folder ? "folder" : "file", expect);
    } else if (!folder) {
        struct stat st;
        snprintf(m->p.rel, sizeof m->p.rel, "%s", m->n.rel);
        snprintf(m->p.user, sizeof m->p.user, "system");
        if (fstat(m->n.fd, &st) != 0)
            gw_reply_error(r, IB_INTERNAL, "%s: '%.1000s' cannot be read: %s", FIELD, shown, strerror(errno));
        else
            send_file(r, &m->p, m->n.fd, &st);
    } else {
        json_t *nodes = ib_mdrive_list(&m->n);
        json_t *body = nodes ? json_pack("{s:s, s:o}", "status", "OK", "nodes", nodes) : NULL;
        char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
        json_decref(body);
        if (!text) {
            gw_reply_error(r, IB_INTERNAL, "%s: '%.1000s' cannot be listed: %s", FIELD, shown, strerror(errno));
        } else {
            size_t tlen = strlen(text);
            gw_reply_begin(r, 200, "application/json", (long long)tlen, "IB-Node-Type: folder\r\n");
            if (!is_method(r, "HEAD")) mg_write(r->conn, text, tlen);
            free(text);
        }
    }
    close(m->n.fd);
out:
    free(m);
}

/* POST /api/v1/drives/<path>/copy?is_v2=true {"new_full_path"}: the v1 drives API's copy, as the original
 * product's clients copy an archive out of the marketplace: the files/copy job of <path> to new_full_path. */
static __attribute__((noinline)) void drives_copy(gw_req *r, const char *src, size_t len)
{
    json_t *body = post_body(r);
    if (!body) return;
    json_t *dst = json_object_get(body, "new_full_path");
    if (!json_is_string(dst) || !json_string_length(dst)) {
        json_decref(body);
        return gw_reply_error(r, IB_BAD_REQUEST, "'new_full_path' is required (a string): where the copy goes");
    }
    json_t *args = json_pack("{s:s%, s:O}", "src_path", src, len, "dst_path", dst);
    json_decref(body);
    if (!args) return gw_reply_error(r, IB_INTERNAL, "out of memory");
    gw_files_op(r, "copy", args);
}

/* --- entry ---------------------------------------------------------------------------------------------- */

static void files_entry(gw_req *r, const char *path, int drives);

void gw_files(gw_req *r, const char *path)
{
    files_entry(r, path, 0);
}

void gw_drives(gw_req *r, const char *path)
{
    files_entry(r, path, 1);
}

static void files_entry(gw_req *r, const char *path, int drives)
{
    static const char *const methods[] = {"GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"};
    int known = 0;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        known |= is_method(r, methods[i]);
    if (!known) {
        char msg[128];
        snprintf(msg, sizeof msg,
                 "method %.16s is not allowed on the files API (GET, HEAD, PUT, PATCH, POST, DELETE)",
                 r->ri->request_method);
        return gw_reply_error_http(r, 405, IB_BAD_REQUEST, msg);
    }
    char raw[IB_PATH_MAX + 1];
    size_t len;
    if (request_path(r, path, raw, sizeof raw, &len) != 0)
        return gw_reply_error(r, IB_BAD_REQUEST, "%s: longer than %d bytes", FIELD, IB_PATH_MAX - 1);
    if (drives && is_method(r, "POST") && len > 5 && !memcmp(raw + len - 5, "/copy", 5))
        return drives_copy(r, raw, len - 5);
    if (ib_mdrive_reserved(raw, len)) return serve_market(r, raw, len);
    if (drives && !is_method(r, "GET") && !is_method(r, "HEAD"))
        return gw_reply_error_http(r, 405, IB_BAD_REQUEST,
                                   "the v1 drives API answers GET, HEAD and POST <path>/copy; write files with PUT "
                                   "/api/v2/files/<path>");
    /* POST /api/v2/files/copy and /extract are where the original product's clients copy and unpack. The same
     * URL is also folder creation in the root folder of a user named "copy" or "extract"; the body tells them
     * apart: one with "src_path" is a copy or extract, anything else is folder creation as before. */
    json_t *posted = NULL;
    if (is_method(r, "POST") && (!strcmp(raw, "copy") || !strcmp(raw, "extract"))) {
        if (!(posted = post_body(r))) return;
        if (json_object_get(posted, "src_path")) return gw_files_op(r, raw, posted);
    }
    ib_dpath p;
    ib_reply rep;
    ib_reply_init(&rep);
    if (ib_dpath_parsen(raw, len, &r->who, FIELD, &p, &rep) != IB_OK) {
        json_decref(posted);
        gw_reply_ib(r, &rep);
        ib_reply_clear(&rep);
        return;
    }
    ib_reply_clear(&rep);
    if (is_method(r, "GET") || is_method(r, "HEAD"))
        get_node(r, &p);
    else if (is_method(r, "PUT"))
        put_file(r, &p);
    else if (is_method(r, "PATCH"))
        patch_file(r, &p);
    else if (is_method(r, "POST"))
        create_folder(r, &p, posted);
    else
        delete_node(r, &p);
}
