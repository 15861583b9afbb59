/* ops: marketplace.publish/install/uninstall/unpublish/list/info. Publish verifies a private copy of the
 * archive (so what is checked is what is stored) before taking the per-name lock; the lock covers only the
 * check-and-rename that makes a version immutable. Installs hold the same lock shared, so an unpublish never
 * races an install into leaving an installed copy of a version that is gone. */
#include "market.h"

#include "ib_fs.h"
#include "ib_log.h"
#include "ib_manifest.h"
#include "ib_package.h"
#include "ib_path.h"
#include "ib_semver.h"
#include "ib_sha256.h"
#include "ib_utf8.h"
#include "ib_zip.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FILE_NAME_MAX 256

/* ---- argument checks (before any name reaches the file system: they also stop "../x") ---- */

static ib_code check_name(const char *name, ib_reply *rep)
{
    if (!name || !ib_solution_name_ok(name)) {
        char msg[IB_MSG_MAX];
        ib_solution_name_error("name", name, msg, sizeof msg);
        return ib_fail(rep, IB_BAD_REQUEST, "%s", msg);
    }
    return IB_OK;
}

/* The folder of name under marketplace/ or installed/ (basefd), never through a symlink; see
 * ib_solution_dir for why it may differ from the name. */
static int open_name_dir(int basefd, const char *name, int create)
{
    char dir[IB_SOLUTION_NAME_MAX + 2];
    return mk_open_dir(basefd, ib_solution_dir(name, dir, sizeof dir), create);
}

static ib_code check_version(const char *v, int allow_latest, ib_reply *rep)
{
    ib_semver sv;
    if (v && allow_latest && !strcmp(v, "latest")) return IB_OK;
    if (!v || ib_semver_parse(v, &sv) != 0)
        return ib_fail(rep, IB_BAD_REQUEST,
                       "'version' '%.100s' is not a semantic version (MAJOR.MINOR.PATCH[-prerelease])%s",
                       v ? v : "", allow_latest ? " or \"latest\"" : "");
    return IB_OK;
}

static ib_code check_admin(const ib_request *req, const char *what, ib_reply *rep)
{
    if (!ib_caller_is_admin(&req->who))
        return ib_fail(rep, IB_FORBIDDEN, "only an admin may %s (user '%s' is not one)", what, req->who.user);
    return IB_OK;
}

static ib_code internal(ib_reply *rep, const ib_request *req, const char *what, int err)
{
    ib_error(req->rid, "%s: %s", what, strerror(err));
    return ib_fail_write(rep, err, "%s", what);
}

static void archive_file_name(const char *name, const char *version, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s-%s.ibsolution", name, version);
}

static void iso_time(time_t t, char *out, size_t outsz)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *string_list(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

/* Resolves `version` ("latest" or exact) among the published versions of the name folder namefd into out.
 * 404 naming the solution when there is none. */
static ib_code resolve(int namefd, const char *name, const char *version, char *out, size_t outsz,
                       const ib_request *req, ib_reply *rep)
{
    if (strcmp(version, "latest") != 0) {
        struct stat st;
        if (fstatat(namefd, version, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
            return ib_fail(rep, IB_NOT_FOUND, "solution '%s' has no published version '%s'", name, version);
        snprintf(out, outsz, "%s", version);
        return IB_OK;
    }
    char **v;
    size_t n;
    if (mk_versions(namefd, &v, &n) != 0)
        return internal(rep, req, "the published versions cannot be listed", errno);
    const char *latest = mk_latest(v, n);
    if (latest) snprintf(out, outsz, "%s", latest);
    mk_free_list(v, n);
    if (!latest) return ib_fail(rep, IB_NOT_FOUND, "solution '%s' has no published version", name);
    return IB_OK;
}

/* Opens the published name folder; 404 when the name was never published. */
static int open_published(const char *name, const ib_request *req, ib_reply *rep)
{
    int fd = open_name_dir(mk_market_fd, name, 0);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            ib_fail(rep, IB_NOT_FOUND, "no solution '%s' is published", name);
        else
            internal(rep, req, "the marketplace folder cannot be read", errno);
    }
    return fd;
}

/* ---- publish ---- */

/* The staged copy of the caller's archive: a temporary file in marketplace/ until it is renamed into the new
 * version's folder. */
typedef struct staged {
    char tmp[300];
    int fd; /* O_RDONLY on the copy */
    int moved;
} staged;

static void staged_drop(staged *s)
{
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
    if (s->tmp[0] && !s->moved) unlinkat(mk_market_fd, s->tmp, 0);
    s->tmp[0] = '\0';
}

/* No archive within the limits can be much larger than max_archive: deflate grows incompressible data by well
 * under 1%, and each entry adds two headers (~100 bytes plus its name twice). Larger files are refused before
 * they are copied, so a huge upload cannot fill the marketplace's disk. */
static long long archive_file_cap(void)
{
    return mk_max_archive + mk_max_archive / 16 + mk_max_entries * 256 + (4 << 20);
}

static ib_code stage_copy(int sfd, const char *shown, staged *s, const ib_request *req, ib_reply *rep)
{
    struct stat st;
    if (fstat(sfd, &st) != 0) return internal(rep, req, "ibsolution_path cannot be read", errno);
    if (S_ISDIR(st.st_mode))
        return ib_fail(rep, IB_BAD_REQUEST, "ibsolution_path '%s' is a folder, not an .ibsolution file",
                       shown);
    if (!S_ISREG(st.st_mode))
        return ib_fail(rep, IB_BAD_REQUEST, "ibsolution_path '%s' is not a regular file", shown);
    long long cap = archive_file_cap();
    if (st.st_size > cap)
        return ib_fail(
            rep, IB_BAD_REQUEST,
            "ibsolution_path '%s' is %lld bytes, more than an archive within the limit of %lld bytes "
            "uncompressed can be",
            shown, (long long)st.st_size, mk_max_archive);
    int wfd = ib_open_tmp(mk_market_fd, "incoming", s->tmp, sizeof s->tmp);
    if (wfd < 0) {
        s->tmp[0] = '\0';
        return internal(rep, req, "a temporary file cannot be created in the marketplace", errno);
    }
    static __thread char buf[1 << 16];
    long long total = 0;
    int err = 0;
    for (;;) {
        ssize_t n = read(sfd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            err = errno;
            break;
        }
        if (n == 0) break;
        if ((total += n) > cap) { /* it grew while we read */
            err = EFBIG;
            break;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(wfd, buf + off, (size_t)(n - off));
            if (w < 0) {
                if (errno == EINTR) continue;
                err = errno;
                break;
            }
            off += w;
        }
        if (err) break;
    }
    if (!err && (fchmod(wfd, 0644) != 0 || fsync(wfd) != 0)) err = errno;
    close(wfd);
    if (err == EFBIG)
        return ib_fail(rep, IB_BAD_REQUEST, "ibsolution_path '%s' grew past %lld bytes while it was read",
                       shown, cap);
    if (err) return internal(rep, req, "the archive cannot be copied into the marketplace", err);
    s->fd = openat(mk_market_fd, s->tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (s->fd < 0) return internal(rep, req, "the archive copy cannot be reopened", errno);
    return IB_OK;
}

/* Verifies the staged archive whole and returns its manifest (owned by the caller). */
static json_t *verify_archive(int fd, const char *shown, ib_reply *rep)
{
    char err[IB_MSG_MAX - 128];
    ib_zip_limits lim = {(uint64_t)mk_max_archive, (uint64_t)mk_max_entries};
    json_t *manifest = ib_package_verify(fd, &lim, err, sizeof err);
    if (!manifest) ib_fail(rep, IB_BAD_REQUEST, "ibsolution_path '%s': %s", shown, err);
    return manifest;
}

/* The sha256 a version was published with, "" when unknown. */
static void stored_digest(int verfd, char out[IB_SHA256_HEX])
{
    out[0] = '\0';
    json_t *meta = mk_read_meta(verfd);
    const char *d = json_string_value(json_object_get(meta, "sha256"));
    if (d && strlen(d) == IB_SHA256_HEX - 1) memcpy(out, d, IB_SHA256_HEX);
    json_decref(meta);
}

/* The digest in .retired/<version>.sha256, "" when the version was never unpublished. */
static void retired_digest(int namefd, const char *version, char out[IB_SHA256_HEX])
{
    char rel[FILE_NAME_MAX];
    size_t len;
    out[0] = '\0';
    snprintf(rel, sizeof rel, ".retired/%s.sha256", version);
    char *text = ib_read_file_at(namefd, rel, 256, &len);
    if (!text) return;
    if (len >= IB_SHA256_HEX - 1) {
        memcpy(out, text, IB_SHA256_HEX - 1);
        out[IB_SHA256_HEX - 1] = '\0';
    }
    free(text);
}

/* Under the name's lock: the check that keeps versions immutable, then the new version folder built as a
 * temporary and renamed into place. *created tells a fresh store from an idempotent retry. */
static ib_code store_version(int namefd, staged *s, json_t *manifest, const char *digest, long long size,
                             const ib_request *req, ib_reply *rep)
{
    const char *name = json_string_value(json_object_get(manifest, "name"));
    const char *version = json_string_value(json_object_get(manifest, "version"));
    char have[IB_SHA256_HEX], tmp[256], file[FILE_NAME_MAX];
    int verfd = openat(namefd, version, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (verfd >= 0) {
        stored_digest(verfd, have);
        close(verfd);
        if (!have[0])
            return ib_fail(rep, IB_INTERNAL,
                           "solution '%s' version %s is published but its meta.json is unreadable", name,
                           version);
        if (strcmp(have, digest) == 0) return IB_OK;
        return ib_fail(
            rep, IB_CONFLICT,
            "solution '%s' version %s is already published with other content (sha256 %s; this archive "
            "has sha256 %s): published versions are immutable, publish a new version",
            name, version, have, digest);
    }
    if (errno != ENOENT) return internal(rep, req, "the published version cannot be read", errno);
    retired_digest(namefd, version, have);
    if (have[0] && strcmp(have, digest) != 0)
        return ib_fail(
            rep, IB_CONFLICT,
            "solution '%s' version %s was unpublished; it may be published again only with the same "
            "content (sha256 %s; this archive has sha256 %s)",
            name, version, have, digest);

    if (mk_mktemp_dir(namefd, "tmp", version, tmp, sizeof tmp) != 0)
        return internal(rep, req, "a temporary version folder cannot be created", errno);
    int tfd = openat(namefd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    archive_file_name(name, version, file, sizeof file);
    int err = 0;
    if (tfd < 0 || renameat(mk_market_fd, s->tmp, tfd, file) != 0)
        err = errno;
    else
        s->moved = 1;

    time_t now = time(NULL);
    char when[32];
    iso_time(now, when, sizeof when);
    json_t *meta = json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:s, s:O}", "name", name, "version", version,
                             "sha256", digest, "size", (json_int_t)size, "published", when, "published_unix",
                             (json_int_t)now, "publisher", req->who.user, "manifest", manifest);
    char *text = meta ? json_dumps(meta, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(meta);
    if (!err && !text) err = ENOMEM;
    if (!err && ib_write_atomic(tfd, "meta.json", text, strlen(text)) != 0) err = errno;
    free(text);
    /* No replace: even a daemon that ignored the lock could not replace a published version. */
    if (!err && mk_rename_noreplace(namefd, tmp, namefd, version) != 0) err = errno;
    if (tfd >= 0) close(tfd);
    if (err) {
        ib_remove_tree_at(namefd, tmp);
        return internal(rep, req, "the version cannot be stored", err);
    }
    ib_fsync_dir(namefd);
    ib_info(req->rid, "published %s %s sha256 %s (%lld bytes) by %s", name, version, digest, size,
            req->who.user);
    return IB_OK;
}

ib_code mk_publish(void *state, const ib_request *req, ib_reply *rep)
{
    if (check_admin(req, "publish solutions", rep)) return rep->code;
    ib_dpath src;
    char shown[IB_PATH_MAX + 2], digest[IB_SHA256_HEX];
    if (ib_dpath_parse(ib_arg_str(req->args, "ibsolution_path"), &req->who, "ibsolution_path", &src, rep))
        return rep->code;
    ib_dpath_show(&src, shown, sizeof shown);
    /* O_NONBLOCK: a FIFO planted on the drive must not hang a worker in open(). */
    int sfd = ib_drive_openat(mk_drive_fd, &src, O_RDONLY | O_NONBLOCK, 0);
    if (sfd < 0) return ib_drive_errno_reply(errno, "ibsolution_path", &src, rep);
    staged s = {.fd = -1};
    json_t *manifest = NULL;
    int namefd = -1, lockfd = -1;
    ib_code rc = stage_copy(sfd, shown, &s, req, rep);
    close(sfd);
    if (rc) goto out;
    if (!(manifest = verify_archive(s.fd, shown, rep))) goto out;
    struct stat st;
    if (fstat(s.fd, &st) != 0 || ib_sha256_fd(s.fd, digest) != 0) {
        internal(rep, req, "the archive copy cannot be read", errno);
        goto out;
    }
    const char *name = json_string_value(json_object_get(manifest, "name"));
    const char *version = json_string_value(json_object_get(manifest, "version"));
    if ((namefd = open_name_dir(mk_market_fd, name, 1)) < 0 || (lockfd = mk_lock(namefd, 1)) < 0) {
        internal(rep, req, "the solution's marketplace folder cannot be locked", errno);
        goto out;
    }
    if (store_version(namefd, &s, manifest, digest, (long long)st.st_size, req, rep)) goto out;
    json_t *d = ib_reply_data(rep);
    json_object_set_new(d, "name", json_string(name));
    json_object_set_new(d, "version", json_string(version));
    json_object_set_new(d, "sha256", json_string(digest));
    json_object_set_new(d, "size", json_integer(st.st_size));
out:
    mk_unlock(lockfd);
    if (namefd >= 0) close(namefd);
    staged_drop(&s);
    json_decref(manifest);
    return rep->code;
}

/* ---- install / uninstall ---- */

/* Unpacks the published version (verfd) into installed/<name>/<version>, digest first. */
static ib_code unpack(int verfd, const char *name, const char *version, const char *want,
                      const ib_request *req, ib_reply *rep)
{
    char file[FILE_NAME_MAX], digest[IB_SHA256_HEX], err[IB_MSG_MAX - 160], tmp[256];
    archive_file_name(name, version, file, sizeof file);
    int afd = openat(verfd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (afd < 0 || ib_sha256_fd(afd, digest) != 0) {
        int e = errno;
        if (afd >= 0) close(afd);
        ib_error(req->rid, "%s %s: stored archive cannot be read: %s", name, version, strerror(e));
        return ib_fail(rep, IB_INTERNAL,
                       "solution '%s' version %s: stored archive is corrupt (it cannot be read: %s); "
                       "it was not installed",
                       name, version, strerror(e));
    }
    if (strcmp(digest, want) != 0) {
        close(afd);
        ib_error(req->rid, "%s %s: stored archive has sha256 %s, meta.json says %s", name, version, digest,
                 want);
        return ib_fail(
            rep, IB_INTERNAL,
            "solution '%s' version %s: stored archive is corrupt (sha256 %s, published as %s); it was not "
            "installed",
            name, version, digest, want);
    }
    /* The archive passed every check when it was published and the digest says it is that one: extract it
     * in one pass on two threads (names, sizes and CRCs are still checked as it is read), and make the folder
     * durable once, before it is renamed into place. */
    ib_code rc = IB_OK;
    int instfd = open_name_dir(mk_inst_fd, name, 1), tfd = -1;
    if (instfd < 0 || mk_mktemp_dir(instfd, "tmp", version, tmp, sizeof tmp) != 0) {
        rc = internal(rep, req, "the install folder cannot be created", errno);
        goto out;
    }
    if ((tfd = openat(instfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        rc = internal(rep, req, "the install folder cannot be opened", errno);
        ib_remove_tree_at(instfd, tmp);
        goto out;
    }
    if (ib_zip_extract_parallel(afd, tfd, 2, err, sizeof err) != 0) {
        int e = errno;
        ib_error(req->rid, "%s %s: extraction failed: %s", name, version, err);
        if (ib_errno_no_space(e))
            rc = ib_fail_write(rep, e, "solution '%s' version %s was not installed", name, version);
        else
            rc = ib_fail(rep, IB_INTERNAL, "solution '%s' version %s: stored archive is corrupt (%s); it was not installed",
                         name, version, err);
        ib_remove_tree_at(instfd, tmp);
        goto out;
    }
    if (syncfs(tfd) != 0 || mk_rename_noreplace(instfd, tmp, instfd, version) != 0) {
        int e = errno;
        ib_remove_tree_at(instfd, tmp);
        /* A concurrent install of the same version renamed first: it is installed, which is what was asked.
         */
        if (e != EEXIST && e != ENOTEMPTY) rc = internal(rep, req, "the solution cannot be installed", e);
        goto out;
    }
    ib_fsync_dir(instfd);
    ib_info(req->rid, "installed %s %s for %s", name, version, req->who.user);
out:
    if (tfd >= 0) close(tfd);
    if (instfd >= 0) close(instfd);
    close(afd);
    return rc;
}

static int is_installed(const char *name, const char *version)
{
    int fd = open_name_dir(mk_inst_fd, name, 0);
    if (fd < 0) return 0;
    struct stat st;
    int yes = fstatat(fd, version, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    close(fd);
    return yes;
}

ib_code mk_install(void *state, const ib_request *req, ib_reply *rep)
{
    const char *name = ib_arg_str(req->args, "name"), *version = ib_arg_str(req->args, "version");
    if (check_name(name, rep) || check_version(version, 1, rep)) return rep->code;
    char ver[160], want[IB_SHA256_HEX];
    int namefd = open_published(name, req, rep), lockfd = -1, verfd = -1;
    if (namefd < 0) return rep->code;
    if ((lockfd = mk_lock(namefd, 0)) < 0) {
        internal(rep, req, "the solution's marketplace folder cannot be locked", errno);
        goto out;
    }
    if (resolve(namefd, name, version, ver, sizeof ver, req, rep)) goto out;
    if (!is_installed(name, ver)) {
        if ((verfd = openat(namefd, ver, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
            internal(rep, req, "the published version cannot be opened", errno);
            goto out;
        }
        stored_digest(verfd, want);
        if (!want[0]) {
            ib_fail(rep, IB_INTERNAL,
                    "solution '%s' version %s: stored archive is corrupt (meta.json is unreadable); "
                    "it was not installed",
                    name, ver);
            goto out;
        }
        if (unpack(verfd, name, ver, want, req, rep)) goto out;
    }
    json_t *d = ib_reply_data(rep);
    json_object_set_new(d, "name", json_string(name));
    json_object_set_new(d, "version", json_string(ver));
out:
    if (verfd >= 0) close(verfd);
    mk_unlock(lockfd);
    close(namefd);
    return rep->code;
}

/* Removes installed/<name>/<version>; 1 when it was there, 0 when not, -1 with errno. */
static int remove_installed(const char *name, const char *version)
{
    int instfd = open_name_dir(mk_inst_fd, name, 0);
    if (instfd < 0) return errno == ENOENT ? 0 : -1;
    int rc = mk_retire(instfd, version);
    int e = errno;
    close(instfd);
    if (rc != 0) {
        errno = e;
        return e == ENOENT ? 0 : -1;
    }
    return 1;
}

ib_code mk_uninstall(void *state, const ib_request *req, ib_reply *rep)
{
    /* Admin only: installed solutions are shared by every user of the server. */
    if (check_admin(req, "uninstall solutions", rep)) return rep->code;
    const char *name = ib_arg_str(req->args, "name"), *version = ib_arg_str(req->args, "version");
    if (check_name(name, rep) || check_version(version, 0, rep)) return rep->code;
    int r = remove_installed(name, version);
    if (r < 0) return internal(rep, req, "the installed version cannot be removed", errno);
    if (r == 0) return ib_fail(rep, IB_NOT_FOUND, "solution '%s' version %s is not installed", name, version);
    ib_info(req->rid, "uninstalled %s %s by %s", name, version, req->who.user);
    json_t *d = ib_reply_data(rep);
    json_object_set_new(d, "name", json_string(name));
    json_object_set_new(d, "version", json_string(version));
    return IB_OK;
}

ib_code mk_unpublish(void *state, const ib_request *req, ib_reply *rep)
{
    if (check_admin(req, "unpublish solutions", rep)) return rep->code;
    const char *name = ib_arg_str(req->args, "name"), *version = ib_arg_str(req->args, "version");
    if (check_name(name, rep) || check_version(version, 0, rep)) return rep->code;
    int namefd = open_published(name, req, rep), lockfd = -1, verfd = -1, retfd = -1;
    if (namefd < 0) return rep->code;
    char digest[IB_SHA256_HEX], file[FILE_NAME_MAX], tomb[FILE_NAME_MAX];
    if ((lockfd = mk_lock(namefd, 1)) < 0) {
        internal(rep, req, "the solution's marketplace folder cannot be locked", errno);
        goto out;
    }
    if ((verfd = openat(namefd, version, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            ib_fail(rep, IB_NOT_FOUND, "solution '%s' has no published version '%s'", name, version);
        else
            internal(rep, req, "the published version cannot be opened", errno);
        goto out;
    }
    /* The tombstone goes first: a crash after it leaves the version published and still guarded. The digest
     * is the archive's own when meta.json is lost, so the guard survives a damaged meta.json too. */
    stored_digest(verfd, digest);
    if (!digest[0]) {
        archive_file_name(name, version, file, sizeof file);
        int afd = openat(verfd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (afd < 0 || ib_sha256_fd(afd, digest) != 0) digest[0] = '\0';
        if (afd >= 0) close(afd);
    }
    if (digest[0]) {
        snprintf(tomb, sizeof tomb, "%s.sha256", version);
        char line[IB_SHA256_HEX + 1];
        snprintf(line, sizeof line, "%s\n", digest);
        if ((retfd = mk_open_dir(namefd, ".retired", 1)) < 0 ||
            ib_write_atomic(retfd, tomb, line, strlen(line)) != 0) {
            internal(rep, req, "the unpublished version's digest cannot be recorded", errno);
            goto out;
        }
    } else {
        ib_warn(req->rid, "%s %s: no digest to keep after unpublishing (meta.json and archive unreadable)",
                name, version);
    }
    close(verfd);
    verfd = -1;
    if (mk_retire(namefd, version) != 0) {
        internal(rep, req, "the published version cannot be removed", errno);
        goto out;
    }
    int r = remove_installed(name, version);
    if (r < 0)
        ib_error(req->rid, "%s %s unpublished but its installed copy cannot be removed: %s", name, version,
                 strerror(errno));
    ib_info(req->rid, "unpublished %s %s by %s", name, version, req->who.user);
    json_t *d = ib_reply_data(rep);
    json_object_set_new(d, "name", json_string(name));
    json_object_set_new(d, "version", json_string(version));
    json_object_set_new(d, "uninstalled", json_boolean(r > 0));
out:
    if (retfd >= 0) close(retfd);
    if (verfd >= 0) close(verfd);
    mk_unlock(lockfd);
    close(namefd);
    return rep->code;
}

/* ---- list / info ---- */

static int installed_versions(const char *name, char ***v, size_t *n)
{
    int fd = open_name_dir(mk_inst_fd, name, 0);
    int rc = mk_versions(fd, v, n);
    if (fd >= 0) close(fd);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One app of the list, or NULL when the name has nothing published or installed. */
static json_t *list_entry(const char *name)
{
    int namefd = open_name_dir(mk_market_fd, name, 0);
    if (namefd < 0) return NULL;
    char **av = NULL, **iv = NULL;
    size_t an = 0, in = 0;
    json_t *app = NULL;
    if (mk_versions(namefd, &av, &an) != 0 || installed_versions(name, &iv, &in) != 0 || (an == 0 && in == 0))
        goto out;
    const char *latest = mk_latest(av, an);
    json_t *meta = NULL;
    if (latest) {
        int verfd = openat(namefd, latest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (verfd >= 0) {
            meta = mk_read_meta(verfd);
            close(verfd);
        }
    }
    json_t *manifest = json_object_get(meta, "manifest");
    /* Every manifest key (short_description, authors, industry, ...) of the latest version, as the author
     * wrote it; the version keys below are the marketplace's. */
    app = json_is_object(manifest) ? json_deep_copy(manifest) : json_object();
    json_decref(meta);
    json_object_del(app, "version");
    json_object_set_new(app, "name", json_string(name));
    json_object_set_new(app, "latest_version", latest ? json_string(latest) : json_null());
    json_object_set_new(app, "available_versions", string_list(av, an));
    json_object_set_new(app, "installed_versions", string_list(iv, in));
out:
    mk_free_list(av, an);
    mk_free_list(iv, in);
    close(namefd);
    return app;
}

ib_code mk_list(void *state, const ib_request *req, ib_reply *rep)
{
    int fd = openat(mk_market_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        if (fd >= 0) close(fd);
        return internal(rep, req, "the marketplace folder cannot be read", errno);
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        char name[IB_SOLUTION_NAME_MAX + 1];
        if (!ib_solution_from_dir(ent->d_name, name, sizeof name)) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) break;
            names = nn;
        }
        if ((names[n] = strdup(name)) != NULL) n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    json_t *apps = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *app = list_entry(names[i]);
        if (app) json_array_append_new(apps, app);
    }
    mk_free_list(names, n);
    json_object_set_new(ib_reply_data(rep), "apps", apps);
    return IB_OK;
}

/* The web page's solution page and catalog show a version's README.md and its manifest's icon_file: read here from
 * the stored archive (verified whole when it was published), "readme" as UTF-8 text and "icon" as a data: URL of a
 * PNG, JPEG, GIF or SVG image; each at most INFO_ENTRY_MAX bytes. An archive without them, or with one too large or
 * of another kind, answers without that key: they are extras of the page, never a reason for info to fail. */
#define INFO_ENTRY_MAX (256 * 1024)

static char *archive_entry(zip_t *za, const char *entry, size_t *len)
{
    char err[256];
    if (!entry || !*entry || zip_name_locate(za, entry, ZIP_FL_ENC_UTF_8) < 0) return NULL;
    return ib_zip_read_entry(za, entry, INFO_ENTRY_MAX, len, err, sizeof err);
}

static void info_extras(int verfd, const char *name, const char *version, const json_t *manifest, json_t *d)
{
    char file[FILE_NAME_MAX];
    archive_file_name(name, version, file, sizeof file);
    int afd = openat(verfd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int zerr = 0;
    zip_t *za = afd >= 0 ? zip_fdopen(afd, ZIP_RDONLY, &zerr) : NULL; /* takes afd when it succeeds */
    if (!za) {
        if (afd >= 0) close(afd);
        return;
    }
    size_t len = 0;
    char *text = archive_entry(za, "README.md", &len);
    if (text && ib_utf8_valid(text, len)) json_object_set_new(d, "readme", json_stringn(text, len));
    free(text);
    unsigned char *img = (unsigned char *)archive_entry(za, json_string_value(json_object_get(manifest, "icon_file")), &len);
    const char *type = !img                                                    ? NULL
                       : len >= 8 && !memcmp(img, "\x89PNG\r\n\x1a\n", 8)         ? "image/png"
                       : len >= 3 && !memcmp(img, "\xFF\xD8\xFF", 3)             ? "image/jpeg"
                       : len >= 6 && !memcmp(img, "GIF8", 4)                    ? "image/gif"
                       : memmem(img, len < 1024 ? len : 1024, "<svg", 4) != NULL ? "image/svg+xml"
                                                                                : NULL;
    static const char prefix[] = "data:%s;base64,";
    size_t cap = sizeof prefix + 16 + 4 * ((len + 2) / 3);
    char *url = type ? malloc(cap) : NULL;
    if (url) {
        int n = snprintf(url, cap, prefix, type);
        EVP_EncodeBlock((unsigned char *)url + n, img, (int)len);
        json_object_set_new(d, "icon", json_string(url));
    }
    free(url);
    free(img);
    zip_discard(za);
}

ib_code mk_info(void *state, const ib_request *req, ib_reply *rep)
{
    const char *name = ib_arg_str(req->args, "name"), *version = ib_arg_str(req->args, "version");
    if (!version || !*version) version = "latest";
    if (check_name(name, rep) || check_version(version, 1, rep)) return rep->code;
    char ver[160];
    int namefd = open_published(name, req, rep), verfd = -1;
    char **av = NULL, **iv = NULL;
    size_t an = 0, in = 0;
    json_t *meta = NULL;
    if (namefd < 0) return rep->code;
    if (resolve(namefd, name, version, ver, sizeof ver, req, rep)) goto out;
    if ((verfd = openat(namefd, ver, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        /* unpublished between resolve and here */
        ib_fail(rep, IB_NOT_FOUND, "solution '%s' has no published version '%s'", name, ver);
        goto out;
    }
    if (!(meta = mk_read_meta(verfd))) {
        internal(rep, req, "the version's meta.json cannot be read", errno);
        goto out;
    }
    if (mk_versions(namefd, &av, &an) != 0 || installed_versions(name, &iv, &in) != 0) {
        internal(rep, req, "the versions cannot be listed", errno);
        goto out;
    }
    json_t *d = ib_reply_data(rep);
    json_object_set_new(d, "name", json_string(name));
    json_object_set_new(d, "version", json_string(ver));
    static const char *const keys[] = {"manifest",  "sha256",         "size",
                                       "published", "published_unix", "publisher"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *v = json_object_get(meta, keys[i]);
        json_object_set(d, keys[i], v ? v : json_null());
    }
    json_object_set_new(d, "installed", json_boolean(is_installed(name, ver)));
    info_extras(verfd, name, ver, json_object_get(meta, "manifest"), d);
    json_object_set_new(d, "latest_version", json_string(mk_latest(av, an) ? mk_latest(av, an) : ver));
    json_object_set_new(d, "available_versions", string_list(av, an));
    json_object_set_new(d, "installed_versions", string_list(iv, in));
out:
    json_decref(meta);
    mk_free_list(av, an);
    mk_free_list(iv, in);
    if (verfd >= 0) close(verfd);
    close(namefd);
    return rep->code;
}
