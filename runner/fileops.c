/* fileops: files/copy and files/extract, run as jobs (202 + job_id; polled with jobs/status), and the deploy of
 * an .ibsolution (solutions/deployed). Copy and extract build the result under a temporary name beside the
 * destination and rename it into place, so a failure or a crash never leaves half a copy; an existing
 * destination is replaced whole in that same rename (the original product's clients copy and unpack to the
 * same paths on every run and read what they just wrote). Extract checks every archive entry as publishing
 * does. A copy may read the marketplace drive (ib_mdrive); nothing writes below system/global. */
#include "fileops.h"

#include "ib_fs.h"
#include "ib_log.h"
#include "ib_manifest.h"
#include "ib_mdrive.h"
#include "ib_package.h"
#include "ib_path.h"
#include "ib_semver.h"
#include "ib_sha256.h"
#include "ib_zip.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARCHIVE (1ull << 30) /* bytes of an archive extracted or deployed, as the marketplace's default */

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

/* --- deploy (solutions/deployed) -------------------------------------------------------------------------- */

/* A deployed solution is installed without the marketplace: <data>/deployed/<name>/<version>/ keeps the archive
 * and meta.json (digest, owner, visibility, who deployed it, when), installed/<name>/<version>/ the unpacked
 * copy every run reads, as for a marketplace install. Both are built under temporary names and renamed in. */

static ib_code deploy_check(json_t *args, const ib_caller *who, ib_reply *rep)
{
    if (!ib_caller_is_admin(who))
        return ib_fail(rep, IB_FORBIDDEN, "only an admin may deploy solutions (user '%s' is not one)", who->user);
    ib_dpath p;
    if (ib_dpath_parse(json_string_value(json_object_get(args, "solution_path")), who, "solution_path", &p, rep))
        return rep->code;
    int fd = ib_drive_openat(runner_drive_fd, &p, O_PATH, 0);
    if (fd < 0) return ib_drive_errno_reply(errno, "solution_path", &p, rep);
    struct stat st;
    int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    close(fd);
    if (!ok) return ib_fail(rep, IB_BAD_REQUEST, "solution_path: '/%s' is not a file", p.rel);
    return IB_OK;
}

/* Opens (creating) base/name as a folder, never through a symlink. */
static int open_dir_at(int base, const char *name, int create)
{
    if (create && mkdirat(base, name, 0755) != 0 && errno != EEXIST) return -1;
    return openat(base, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* The sha256 in folder/<version>/meta.json of the name folder namefd, "" when there is none. */
static void meta_digest(int namefd, const char *version, char out[IB_SHA256_HEX])
{
    char rel[256];
    size_t len;
    out[0] = '\0';
    snprintf(rel, sizeof rel, "%s/meta.json", version);
    char *text = namefd < 0 ? NULL : ib_read_file_at(namefd, rel, 1 << 20, &len);
    json_t *meta = text ? json_loadb(text, len, 0, NULL) : NULL;
    const char *d = json_string_value(json_object_get(meta, "sha256"));
    if (d && strlen(d) == IB_SHA256_HEX - 1) memcpy(out, d, IB_SHA256_HEX);
    json_decref(meta);
    free(text);
}

static int copy_to_new(int src, int dirfd, const char *name)
{
    int t = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (t < 0) return -1;
    int rc = copy_file_fd(src, t) == 0 && fsync(t) == 0 ? 0 : -1;
    int e = errno;
    close(t);
    errno = e;
    return rc;
}

static int deploy_run(const json_t *rec, const ib_caller *owner_in, char *err, size_t errsz)
{
    /* deploy_check let only an admin create the job */
    ib_caller owner = {owner_in->user, "admin", NULL};
    const char *path = json_string_value(json_object_get(json_object_get(rec, "args"), "solution_path"));
    ib_reply rep;
    ib_reply_init(&rep);
    ib_dpath p;
    char shown[IB_PATH_MAX + 2], stage[300], digest[IB_SHA256_HEX], have[IB_SHA256_HEX], dir[IB_SOLUTION_NAME_MAX + 2];
    char tmp_inst[300] = "", tmp_dep[300] = "", file[IB_SOLUTION_NAME_MAX + 200], e[IB_MSG_MAX - 200];
    int src = -1, dep = -1, inst = -1, dep_name = -1, inst_name = -1, staged = -1, t = -1, rc = -1;
    json_t *manifest = NULL;
    if (ib_dpath_parse(path, &owner, "solution_path", &p, &rep) ||
        (src = ib_drive_openat(runner_drive_fd, &p, O_RDONLY | O_NONBLOCK, 0)) < 0) {
        if (!rep.msg[0]) ib_drive_errno_reply(errno, "solution_path", &p, &rep);
        snprintf(err, errsz, "%s", rep.msg);
        ib_reply_clear(&rep);
        return -1;
    }
    ib_reply_clear(&rep);
    ib_dpath_show(&p, shown, sizeof shown);
    struct stat st;
    if (fstat(src, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errsz, "solution_path: '%s' is not a file", shown);
        goto out;
    }
    fcntl(src, F_SETFL, fcntl(src, F_GETFL) & ~O_NONBLOCK);
    if ((unsigned long long)st.st_size > MAX_ARCHIVE) {
        snprintf(err, errsz, "solution_path: '%s' has %lld bytes, more than the %llu an archive may have", shown,
                 (long long)st.st_size, MAX_ARCHIVE);
        goto out;
    }
    /* What is checked is a private copy, so what is installed is what was checked. */
    if ((dep = open_dir_at(runner_data_fd, "deployed", 1)) < 0 || (tmp_name("incoming", stage, sizeof stage),
                                                                    copy_to_new(src, dep, stage) != 0)) {
        snprintf(err, errsz, "solution_path: '%s' cannot be copied for deploying: %s", shown, strerror(errno));
        stage[0] = '\0';
        goto out;
    }
    if ((staged = openat(dep, stage, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 || ib_sha256_fd(staged, digest) != 0) {
        snprintf(err, errsz, "the copy of '%s' cannot be read: %s", shown, strerror(errno));
        goto out;
    }
    ib_zip_limits lim = {MAX_ARCHIVE, 100000};
    if (!(manifest = ib_package_verify(staged, &lim, e, sizeof e))) {
        snprintf(err, errsz, "solution_path '%s': %s; nothing was deployed", shown, e);
        goto out;
    }
    const char *name = json_string_value(json_object_get(manifest, "name"));
    const char *version = json_string_value(json_object_get(manifest, "version"));
    ib_solution_dir(name, dir, sizeof dir);
    if ((dep_name = open_dir_at(dep, dir, 1)) < 0 || (inst = open_dir_at(runner_data_fd, "installed", 1)) < 0 ||
        (inst_name = open_dir_at(inst, dir, 1)) < 0) {
        snprintf(err, errsz, "the folders of solution '%s' cannot be made: %s", name, strerror(errno));
        goto out;
    }
    /* a version is immutable, as in the marketplace: deployed again with the same archive it is left as it is */
    meta_digest(dep_name, version, have);
    if (have[0]) {
        if (strcmp(have, digest) != 0) {
            snprintf(err, errsz,
                     "solution '%s' version %s is already deployed with other content (sha256 %s; this archive has "
                     "sha256 %s): deploy a new version",
                     name, version, have, digest);
            goto out;
        }
        if (fstatat(inst_name, version, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            rc = 0;
            goto out;
        }
    } else if (fstatat(inst_name, version, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        /* installed from the marketplace: the same archive is fine, another one would change what runs */
        int mk = openat(runner_data_fd, "marketplace", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int mk_name = mk < 0 ? -1 : openat(mk, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        char published[IB_SHA256_HEX];
        meta_digest(mk_name, version, published);
        if (mk_name >= 0) close(mk_name);
        if (mk >= 0) close(mk);
        if (strcmp(published, digest) != 0) {
            snprintf(err, errsz,
                     "solution '%s' version %s is already installed with other content: deploy a new version",
                     name, version);
            goto out;
        }
    }
    /* the unpacked copy, under a temporary name the marketplace's sweep knows (".tmp-<version>-...") */
    if (fstatat(inst_name, version, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        char tag[200];
        snprintf(tag, sizeof tag, "tmp-%.150s", version);
        tmp_name(tag, tmp_inst, sizeof tmp_inst);
        if (mkdirat(inst_name, tmp_inst, 0755) != 0 ||
            (t = openat(inst_name, tmp_inst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
            snprintf(err, errsz, "the install folder of '%s' cannot be made: %s", name, strerror(errno));
            tmp_inst[0] = '\0';
            goto out;
        }
        if (ib_zip_extract_parallel(staged, t, 2, e, sizeof e) != 0 || syncfs(t) != 0) {
            snprintf(err, errsz, "solution_path '%s' cannot be unpacked: %s; nothing was deployed", shown, e);
            goto out;
        }
        close(t);
        t = -1;
    }
    /* the deployed record: the archive and meta.json */
    char tag[200];
    snprintf(tag, sizeof tag, "tmp-%.150s", version);
    tmp_name(tag, tmp_dep, sizeof tmp_dep);
    snprintf(file, sizeof file, "%s-%s.ibsolution", name, version);
    time_t now = time(NULL);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    json_t *owner_v = json_object_get(manifest, "owner"), *vis = json_object_get(manifest, "visibility");
    json_t *meta = json_pack("{s:s, s:s, s:s, s:I, s:O?, s:O?, s:s, s:I, s:s, s:s, s:O}", "name", name, "version",
                             version, "sha256", digest, "size", (json_int_t)lseek(staged, 0, SEEK_END), "owner",
                             owner_v, "visibility", vis, "deployed", when, "deployed_unix", (json_int_t)now,
                             "deployer", owner.user, "solution_path", shown, "manifest", manifest);
    char *text = meta ? json_dumps(meta, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(meta);
    int recorded = 0;
    if (!have[0]) {
        if (mkdirat(dep_name, tmp_dep, 0755) != 0 ||
            (t = openat(dep_name, tmp_dep, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 || !text ||
            renameat(dep, stage, t, file) != 0 || ib_write_atomic(t, "meta.json", text, strlen(text)) != 0 ||
            renameat2(dep_name, tmp_dep, dep_name, version, RENAME_NOREPLACE) != 0) {
            snprintf(err, errsz, "solution '%s' version %s cannot be recorded as deployed: %s", name, version,
                     strerror(errno ? errno : ENOMEM));
            free(text);
            goto out;
        }
        stage[0] = '\0';
        tmp_dep[0] = '\0';
        recorded = 1;
    }
    free(text);
    if (tmp_inst[0]) {
        if (renameat2(inst_name, tmp_inst, inst_name, version, RENAME_NOREPLACE) == 0) {
            tmp_inst[0] = '\0';
        } else if (errno != EEXIST && errno != ENOTEMPTY) { /* else a concurrent install of it came first */
            snprintf(err, errsz, "solution '%s' version %s cannot be installed: %s", name, version, strerror(errno));
            if (recorded) ib_remove_tree_at(dep_name, version); /* no record of what is not installed */
            goto out;
        }
    }
    ib_fsync_dir(inst_name);
    ib_fsync_dir(dep_name);
    ib_info(NULL, "deployed %s %s sha256 %s from %s by %s", name, version, digest, shown, owner.user);
    rc = 0;
out:
    if (t >= 0) close(t);
    if (tmp_inst[0] && inst_name >= 0) ib_remove_tree_at(inst_name, tmp_inst);
    if (tmp_dep[0] && dep_name >= 0) ib_remove_tree_at(dep_name, tmp_dep);
    if (stage[0] && dep >= 0) unlinkat(dep, stage, 0);
    if (staged >= 0) close(staged);
    if (src >= 0) close(src);
    if (dep >= 0) close(dep);
    if (dep_name >= 0) close(dep_name);
    if (inst >= 0) close(inst);
    if (inst_name >= 0) close(inst_name);
    json_decref(manifest);
    return rc;
}

/* Who may see a deployed solution in the list: admins all; users the PUBLIC ones (or without a visibility) and
 * those they deployed. */
static int deployed_visible(const json_t *meta, const ib_caller *who)
{
    if (ib_caller_is_admin(who)) return 1;
    const char *vis = json_string_value(json_object_get(meta, "visibility"));
    const char *by = json_string_value(json_object_get(meta, "deployer"));
    return !vis || !strcasecmp(vis, "PUBLIC") || (by && !strcmp(by, who->user));
}

json_t *fileops_deployed(const ib_caller *who)
{
    json_t *out = json_array();
    int dep = openat(runner_data_fd, "deployed", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = dep < 0 ? NULL : fdopendir(dep);
    if (!d) {
        if (dep >= 0) close(dep);
        return out;
    }
    struct dirent *e;
    while ((e = readdir(d)) && json_array_size(out) < 100000) {
        char name[IB_SOLUTION_NAME_MAX + 1];
        if (!ib_solution_from_dir(e->d_name, name, sizeof name)) continue;
        int nfd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        DIR *vd = nfd < 0 ? NULL : fdopendir(nfd);
        if (!vd) {
            if (nfd >= 0) close(nfd);
            continue;
        }
        struct dirent *v;
        ib_semver sv;
        while ((v = readdir(vd))) {
            if (v->d_name[0] == '.' || ib_semver_parse(v->d_name, &sv) != 0) continue;
            char rel[300];
            size_t len;
            snprintf(rel, sizeof rel, "%s/meta.json", v->d_name);
            char *text = ib_read_file_at(dirfd(vd), rel, 1 << 20, &len);
            json_t *meta = text ? json_loadb(text, len, 0, NULL) : NULL;
            free(text);
            if (meta && deployed_visible(meta, who)) {
                json_t *item = json_pack("{s:O, s:O, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?}", "name",
                                         json_object_get(meta, "name"), "version", json_object_get(meta, "version"),
                                         "owner", json_object_get(meta, "owner"), "visibility",
                                         json_object_get(meta, "visibility"), "deployed",
                                         json_object_get(meta, "deployed"), "deployer",
                                         json_object_get(meta, "deployer"), "sha256", json_object_get(meta, "sha256"),
                                         "solution_path", json_object_get(meta, "solution_path"));
                if (item) json_array_append_new(out, item);
            }
            json_decref(meta);
        }
        closedir(vd);
    }
    closedir(d);
    return out;
}

/* Opens the source of a copy: the caller's drive path, or a published archive of the marketplace drive, which
 * every caller may read. fd (flags as for ib_drive_openat) or -1 with the reply filled. `shown` gets the path. */
static int open_source(const char *path, const ib_caller *who, const char *kind, int flags, char *shown,
                       size_t shownsz, ib_reply *rep)
{
    if (path && !strcmp(kind, "copy") && ib_mdrive_reserved(path, strlen(path))) {
        ib_mdrive_node n;
        int mfd = openat(runner_data_fd, "marketplace", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int rc = mfd < 0 ? -1 : ib_mdrive_open(mfd, path, strlen(path), &n);
        int e = errno;
        if (mfd >= 0) close(mfd);
        snprintf(shown, shownsz, "/%s", path + (path[0] == '/'));
        if (rc == 0 && n.level == 3) return n.fd;
        if (rc == 0) close(n.fd);
        if (rc == 0 || mfd < 0 || e == ENOENT)
            ib_fail(rep, IB_NOT_FOUND,
                    "src_path: '%.1000s' is not a published archive (the marketplace drive holds '/" IB_MDRIVE_ALL
                    "/<name>/<version>/<name>-<version>.ibsolution')",
                    shown);
        else
            ib_fail(rep, IB_INTERNAL, "src_path: '%.1000s' cannot be read: %s", shown, strerror(e));
        return -1;
    }
    ib_dpath src;
    if (ib_dpath_parse(path, who, "src_path", &src, rep)) return -1;
    ib_dpath_show(&src, shown, shownsz);
    int fd = ib_drive_openat(runner_drive_fd, &src, flags, 0);
    if (fd < 0) ib_drive_errno_reply(errno, "src_path", &src, rep);
    return fd;
}

/* The destination of a copy or extract: the caller's, inside a folder of theirs, never below system/global. */
static ib_code parse_dest(const char *path, const ib_caller *who, ib_dpath *dst, ib_reply *rep)
{
    if (path && ib_mdrive_reserved(path, strlen(path)))
        return ib_fail(rep, IB_FORBIDDEN, "dst_path: '/%.1000s' is the marketplace, which is read-only", path + (path[0] == '/'));
    if (ib_dpath_parse(path, who, "dst_path", dst, rep)) return rep->code;
    if (!strchr(dst->rel, '/'))
        return ib_fail(rep, IB_BAD_REQUEST, "dst_path: '/%s' is a user's root folder; name a path inside it", dst->rel);
    return IB_OK;
}

ib_code fileops_check(const char *kind, json_t *args, const ib_caller *who, ib_reply *rep)
{
    if (!strcmp(kind, "deploy")) return deploy_check(args, who, rep);
    ib_dpath src, dst;
    char shown[IB_PATH_MAX + 2];
    int fd = open_source(json_string_value(json_object_get(args, "src_path")), who, kind, O_PATH, shown,
                         sizeof shown, rep);
    if (fd < 0) return rep->code;
    struct stat st;
    int stat_ok = fstat(fd, &st) == 0, isdir = stat_ok && S_ISDIR(st.st_mode);
    close(fd);
    if (!strcmp(kind, "extract") && isdir)
        return ib_fail(rep, IB_BAD_REQUEST, "src_path: '%s' is a folder, not an archive", shown);
    if (stat_ok && !isdir && !S_ISREG(st.st_mode))
        return ib_fail(rep, IB_BAD_REQUEST, "src_path: '%s' is not a regular file", shown);
    /* the source is known to be an archive file before its name gives the default destination */
    const char *given = json_string_value(json_object_get(args, "dst_path"));
    if (!strcmp(kind, "extract") && (!given || !given[0])) {
        if (ib_dpath_parse(json_string_value(json_object_get(args, "src_path")), who, "src_path", &src, rep) ||
            default_dst(args, &src, rep) != IB_OK)
            return rep->code;
    }
    if (parse_dest(json_string_value(json_object_get(args, "dst_path")), who, &dst, rep)) return rep->code;
    size_t sl = strlen(shown + 1);
    if (!strcmp(dst.rel, shown + 1))
        return ib_fail(rep, IB_CONFLICT, "dst_path: '/%s' already exists: it is src_path itself", dst.rel);
    if (!strncmp(dst.rel, shown + 1, sl) && dst.rel[sl] == '/')
        return ib_fail(rep, IB_BAD_REQUEST, "dst_path: '/%s' is inside src_path '%s'", dst.rel, shown);
    /* An existing destination is replaced, but only by its own kind: a file by a file, a folder by a folder. */
    fd = ib_drive_openat(runner_drive_fd, &dst, O_PATH, 0);
    struct stat dst_st;
    if (fd >= 0) {
        int ok = fstat(fd, &dst_st) == 0;
        close(fd);
        int dst_dir = ok && S_ISDIR(dst_st.st_mode), makes_dir = isdir || !strcmp(kind, "extract");
        if (ok && dst_dir != makes_dir)
            return ib_fail(rep, IB_CONFLICT, "dst_path: '/%s' already exists and is a %s; the %s makes a %s", dst.rel,
                           dst_dir ? "folder" : "file", kind, makes_dir ? "folder" : "file");
        return IB_OK;
    }
    if (errno != ENOENT) return ib_drive_errno_reply(errno, "dst_path", &dst, rep);
    return IB_OK;
}

/* Puts the finished temporary in place of base: a new name, or the old node swapped out (one rename, so a reader
 * sees the old or the new whole) and then removed. 0, or -1 with the message. */
static int put_in_place(int parent, const char *tmp, const char *base, int makes_dir, const ib_dpath *dst, char *err,
                        size_t errsz)
{
    if (renameat2(parent, tmp, parent, base, RENAME_NOREPLACE) == 0) return 0;
    struct stat st;
    if (errno != EEXIST || fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return snprintf(err, errsz, "dst_path: '/%s': %s", dst->rel, strerror(errno)), -1;
    if (S_ISDIR(st.st_mode) != makes_dir)
        return snprintf(err, errsz, "dst_path: '/%s' already exists and is a %s", dst->rel,
                        S_ISDIR(st.st_mode) ? "folder" : "file"),
               -1;
    if (renameat2(parent, tmp, parent, base, RENAME_EXCHANGE) != 0)
        return snprintf(err, errsz, "dst_path: '/%s' cannot be replaced: %s", dst->rel, strerror(errno)), -1;
    if (ib_remove_tree_at(parent, tmp) != 0) /* the old node, now under the temporary name */
        ib_warn(NULL, "the replaced '/%s' cannot be removed (kept as '%s'): %s", dst->rel, tmp, strerror(errno));
    return 0;
}

int fileops_run(const json_t *rec, char *err, size_t errsz)
{
    const char *kind = json_string_value(json_object_get(rec, "kind"));
    const json_t *args = json_object_get(rec, "args");
    ib_caller owner = {json_string_value(json_object_get(rec, "user")), "user", NULL};
    if (kind && !strcmp(kind, "deploy")) return deploy_run(rec, &owner, err, errsz);
    ib_reply rep;
    ib_reply_init(&rep);
    ib_dpath dst;
    char src_shown[IB_PATH_MAX + 2];
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, for ever and deaf to cancel;
     * what is not a regular file or a folder is refused right after fstat. */
    int src_fd = parse_dest(json_string_value(json_object_get(args, "dst_path")), &owner, &dst, &rep)
                     ? -1
                     : open_source(json_string_value(json_object_get(args, "src_path")), &owner, kind,
                                   O_RDONLY | O_NONBLOCK, src_shown, sizeof src_shown, &rep);
    if (src_fd < 0) {
        snprintf(err, errsz, "%s", rep.msg);
        ib_reply_clear(&rep);
        return -1;
    }
    struct stat st;
    if (fstat(src_fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
        snprintf(err, errsz, "src_path: '%s' is not a regular file", src_shown);
        close(src_fd);
        return -1;
    }
    const char *base;
    int parent = ib_drive_open_parent(runner_drive_fd, &dst, 1, &base);
    if (parent < 0) {
        ib_drive_errno_reply(errno, "dst_path", &dst, &rep);
        snprintf(err, errsz, "%s", rep.msg);
        ib_reply_clear(&rep);
        close(src_fd);
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
        if (rc < 0) snprintf(err, errsz, "cannot copy '%s': %s", src_shown, strerror(errno));
        if (t >= 0) close(t);
    } else if (mkdirat(parent, tmp, 0755) == 0) {
        int t = openat(parent, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (t >= 0 && !strcmp(kind, "copy")) {
            rc = copy_tree(src_fd, t, 0, err, errsz);
        } else if (t >= 0) {
            ib_zip_limits limits = {MAX_ARCHIVE, 100000};
            char zerr[IB_MSG_MAX];
            zip_t *za = ib_zip_open_verified(src_fd, &limits, zerr, sizeof zerr);
            if (!za)
                snprintf(err, errsz, "src_path: '%s' cannot be extracted: %s", src_shown, zerr);
            else if ((rc = ib_zip_extract(za, t, zerr, sizeof zerr)) < 0)
                snprintf(err, errsz, "src_path: '%s' cannot be extracted: %s", src_shown, zerr);
            if (za) zip_discard(za);
        }
        if (t >= 0) close(t);
    } else {
        snprintf(err, errsz, "cannot create a folder beside '/%s': %s", dst.rel, strerror(errno));
    }
    if (rc == 0) rc = put_in_place(parent, tmp, base, !(S_ISREG(st.st_mode) && !strcmp(kind, "copy")), &dst, err, errsz);
    if (rc < 0) ib_remove_tree_at(parent, tmp);
    close(src_fd);
    close(parent);
    return rc;
}
