/* solutions: the compiled flows runs use. An installed solution is read from installed/<name>/<version>/, an
 * unpublished one from its .ibsolution on the drive, verified like a publish. Either way the flow is decoded
 * once per content digest and kept in a small cache, so repeated runs cost one hash of the file. */
#include "runner.h"

#include "ib_fs.h"
#include "ib_manifest.h"
#include "ib_path.h"
#include "ib_semver.h"
#include "ib_settings.h"
#include "ib_sha256.h"
#include "ib_zip.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CACHE_SIZE 32
#define MAX_FLOWBIN (32u << 20)

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static solution *cache[CACHE_SIZE];
static unsigned long long cache_tick[CACHE_SIZE], tick;

void solution_release(solution *s)
{
    if (!s) return;
    pthread_mutex_lock(&cache_mu);
    int last = --s->refs == 0;
    pthread_mutex_unlock(&cache_mu);
    if (last) {
        ib_flow_free(s->flow);
        free(s);
    }
}

void solutions_fini(void)
{
    for (int i = 0; i < CACHE_SIZE; i++) {
        solution *s = cache[i];
        cache[i] = NULL;
        solution_release(s);
    }
}

static solution *cache_get(const char *digest)
{
    solution *found = NULL;
    pthread_mutex_lock(&cache_mu);
    for (int i = 0; i < CACHE_SIZE && !found; i++)
        if (cache[i] && !strcmp(cache[i]->digest, digest)) {
            found = cache[i];
            found->refs++;
            cache_tick[i] = ++tick;
        }
    pthread_mutex_unlock(&cache_mu);
    return found;
}

/* The cached solution read from the file `st` describes (an installed .ibflowbin not changed since), with a
 * new reference, or NULL. Installs write a new folder and rename it in, so new content is a new inode. */
static solution *cache_get_file(const struct stat *st)
{
    solution *found = NULL;
    pthread_mutex_lock(&cache_mu);
    for (int i = 0; i < CACHE_SIZE && !found; i++) {
        solution *c = cache[i];
        if (c && c->src_ino == st->st_ino && c->src_dev == st->st_dev && c->src_size == st->st_size &&
            c->src_ctime.tv_sec == st->st_ctim.tv_sec && c->src_ctime.tv_nsec == st->st_ctim.tv_nsec) {
            found = c;
            found->refs++;
            cache_tick[i] = ++tick;
        }
    }
    pthread_mutex_unlock(&cache_mu);
    return found;
}

/* Puts s into the cache (taking one reference for it) and returns s with the caller's reference. */
static solution *cache_put(solution *s)
{
    pthread_mutex_lock(&cache_mu);
    int slot = 0;
    for (int i = 0; i < CACHE_SIZE; i++) {
        if (cache[i] && !strcmp(cache[i]->digest, s->digest)) { /* raced with another loader: keep theirs */
            solution *theirs = cache[i];
            theirs->refs++;
            pthread_mutex_unlock(&cache_mu);
            ib_flow_free(s->flow);
            free(s);
            return theirs;
        }
        if (!cache[i] || cache_tick[i] < cache_tick[slot]) slot = i;
        if (!cache[i]) break;
    }
    solution *evicted = cache[slot];
    cache[slot] = s;
    cache_tick[slot] = ++tick;
    s->refs = 2;
    pthread_mutex_unlock(&cache_mu);
    solution_release(evicted);
    return s;
}

static solution *from_flowbin(const char *digest, const char *bytes, size_t len, const char *name,
                              const char *version, const char *binary_path, char *err, size_t errsz)
{
    solution *s = cache_get(digest);
    if (s) return s;
    ib_flow *flow = ib_flow_decode(bytes, len, err, errsz);
    if (!flow) return NULL;
    s = calloc(1, sizeof *s);
    if (!s) {
        ib_flow_free(flow);
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    snprintf(s->digest, sizeof s->digest, "%s", digest);
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->version, sizeof s->version, "%s", version);
    snprintf(s->binary_path, sizeof s->binary_path, "%s", binary_path);
    s->flow = flow;
    return cache_put(s);
}

/* The folder installed/<name> (see ib_solution_dir), opened step by step without following a symlink: a name
 * can only ever be one folder below installed/. -1 with errno. */
static int open_installed(const char *name)
{
    char dir[IB_SOLUTION_NAME_MAX + 2];
    int inst = openat(runner_data_fd, "installed", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (inst < 0) return -1;
    int fd = openat(inst, ib_solution_dir(name, dir, sizeof dir), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int e = errno;
    close(inst);
    errno = e;
    return fd;
}

/* The highest installed version in the folder namefd, for version "latest". */
static int latest_installed(int namefd, char *out, size_t outsz)
{
    int fd = openat(namefd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        if (fd >= 0) close(fd);
        return -1;
    }
    struct dirent *e;
    out[0] = '\0';
    ib_semver best, v;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || ib_semver_parse(e->d_name, &v) < 0) continue;
        if (!out[0] || ib_semver_cmp(&v, &best) > 0) {
            best = v;
            snprintf(out, outsz, "%.*s", (int)outsz - 1, e->d_name); /* a version is at most 126 bytes */
        }
    }
    closedir(d);
    return out[0] ? 0 : -1;
}

static solution *installed(const char *name, const char *version_in, ib_reply *rep)
{
    if (!ib_solution_name_ok(name)) {
        char msg[IB_MSG_MAX];
        ib_solution_name_error("name", name, msg, sizeof msg);
        ib_fail(rep, IB_BAD_REQUEST, "%s", msg);
        return NULL;
    }
    char version[sizeof ((solution *)0)->version];
    ib_semver sv;
    if (strcmp(version_in, "latest") != 0 && ib_semver_parse(version_in, &sv) < 0) {
        ib_fail(rep, IB_BAD_REQUEST, "'version' '%.80s' is not a semantic version (or \"latest\")", version_in);
        return NULL;
    }
    int namefd = open_installed(name);
    if (namefd < 0 && errno != ENOENT && errno != ENOTDIR) {
        ib_fail(rep, IB_INTERNAL, "installed solution '%s' cannot be read: %s", name, strerror(errno));
        return NULL;
    }
    if (!strcmp(version_in, "latest")) {
        if (namefd < 0 || latest_installed(namefd, version, sizeof version) < 0) {
            if (namefd >= 0) close(namefd);
            ib_fail(rep, IB_NOT_FOUND, "solution '%s' is not installed", name);
            return NULL;
        }
    } else {
        snprintf(version, sizeof version, "%s", version_in);
    }
    /* Name and version are checked: each is one folder, opened without following a symlink. */
    int verfd = namefd < 0 ? -1 : openat(namefd, version, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int e = errno;
    if (namefd >= 0) close(namefd);
    if (verfd < 0) {
        if (namefd < 0 || e == ENOENT || e == ENOTDIR)
            ib_fail(rep, IB_NOT_FOUND, "solution '%s' version '%s' is not installed", name, version);
        else
            ib_fail(rep, IB_INTERNAL, "installed solution '%s' %s cannot be read: %s", name, version, strerror(e));
        return NULL;
    }
    char file[IB_SOLUTION_NAME_MAX + 16], shown[600];
    snprintf(file, sizeof file, "%s.ibflowbin", name);
    struct stat st;
    int have_st = fstatat(verfd, file, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
    solution *known = have_st ? cache_get_file(&st) : NULL;
    if (known) {
        close(verfd);
        return known;
    }
    size_t len;
    char *bytes = have_st ? ib_read_file_at(verfd, file, MAX_FLOWBIN, &len) : NULL;
    e = have_st ? errno : ENOENT;
    close(verfd);
    if (!bytes) {
        if (e == ENOENT || e == ENOTDIR)
            ib_fail(rep, IB_NOT_FOUND, "solution '%s' version '%s' is not installed", name, version);
        else
            ib_fail(rep, IB_INTERNAL, "installed solution '%s' %s cannot be read: %s", name, version, strerror(e));
        return NULL;
    }
    char digest[IB_SHA256_HEX], err[IB_MSG_MAX];
    ib_sha256_hex(bytes, len, digest);
    /* shown with the name itself, as the original product shows binary paths */
    snprintf(shown, sizeof shown, "/installed/%s/%s/%s", name, version, file);
    solution *s = from_flowbin(digest, bytes, len, name, version, shown, err, sizeof err);
    free(bytes);
    if (!s) {
        ib_fail(rep, IB_INTERNAL, "installed solution '%s' %s is damaged: %s", name, version, err);
        return NULL;
    }
    if (have_st && !strcmp(s->binary_path, shown)) { /* this file's solution (not another with the same bytes) */
        pthread_mutex_lock(&cache_mu);
        s->src_dev = st.st_dev;
        s->src_ino = st.st_ino;
        s->src_size = st.st_size;
        s->src_ctime = st.st_ctim;
        pthread_mutex_unlock(&cache_mu);
    }
    return s;
}

static solution *from_archive(const char *path, const ib_caller *who, ib_reply *rep)
{
    ib_dpath p;
    char shown[IB_PATH_MAX + 2], err[IB_MSG_MAX];
    if (ib_dpath_parse(path, who, "solution_path", &p, rep) != IB_OK) return NULL;
    /* O_NONBLOCK: a FIFO on the drive must not hold the worker in open(2) for ever; only a file is read */
    int fd = ib_drive_openat(runner_drive_fd, &p, O_RDONLY | O_NONBLOCK, 0);
    if (fd < 0) {
        ib_drive_errno_reply(errno, "solution_path", &p, rep);
        return NULL;
    }
    struct stat fst;
    if (fstat(fd, &fst) != 0 || !S_ISREG(fst.st_mode)) {
        close(fd);
        ib_fail(rep, IB_BAD_REQUEST, "solution_path: '%s' is not a regular file",
                ib_dpath_show(&p, shown, sizeof shown));
        return NULL;
    }
    char digest[IB_SHA256_HEX];
    if (ib_sha256_fd(fd, digest) < 0) {
        close(fd);
        ib_fail(rep, IB_BAD_REQUEST, "solution_path: '%s' cannot be read: %s", ib_dpath_show(&p, shown, sizeof shown),
                strerror(errno));
        return NULL;
    }
    solution *s = cache_get(digest);
    if (s) {
        close(fd);
        return s;
    }
    ib_zip_limits limits = {1ull << 30, 100000};
    zip_t *za = ib_zip_open_verified(fd, &limits, err, sizeof err);
    close(fd);
    ib_dpath_show(&p, shown, sizeof shown);
    if (!za) {
        ib_fail(rep, IB_BAD_REQUEST, "solution_path: '%s' is not a valid .ibsolution: %s", shown, err);
        return NULL;
    }
    size_t len;
    json_t *manifest = NULL;
    char *bytes = ib_zip_read_entry(za, "package.json", 1 << 20, &len, err, sizeof err);
    if (bytes) manifest = ib_manifest_parse(bytes, len, "package.json", err, sizeof err);
    free(bytes);
    bytes = NULL;
    if (manifest) {
        const char *name = json_string_value(json_object_get(manifest, "name"));
        char entry[IB_SOLUTION_NAME_MAX + 16], bpath[4400];
        snprintf(entry, sizeof entry, "%s.ibflowbin", name);
        bytes = ib_zip_read_entry(za, entry, MAX_FLOWBIN, &len, err, sizeof err);
        snprintf(bpath, sizeof bpath, "%s/%s", shown, entry);
        if (bytes) {
            /* keyed by the archive's digest: the hash we already paid for */
            ib_flow *flow = ib_flow_decode(bytes, len, err, sizeof err);
            if (flow) {
                s = calloc(1, sizeof *s);
                if (s) {
                    snprintf(s->digest, sizeof s->digest, "%s", digest);
                    snprintf(s->name, sizeof s->name, "%s", name);
                    snprintf(s->version, sizeof s->version, "%s",
                             json_string_value(json_object_get(manifest, "version")));
                    snprintf(s->binary_path, sizeof s->binary_path, "%s", bpath);
                    s->flow = flow;
                    s = cache_put(s);
                } else {
                    ib_flow_free(flow);
                }
            }
        }
    }
    free(bytes);
    json_decref(manifest);
    zip_discard(za);
    if (!s) ib_fail(rep, IB_BAD_REQUEST, "solution_path: '%s' is not a valid .ibsolution: %s", shown, err);
    return s;
}

/* A compiled .ibflowbin on the drive (flow/run_binary_async's binary_path): its name and version are those it
 * was compiled for. */
static solution *from_binary(const char *path, const ib_caller *who, ib_reply *rep)
{
    ib_dpath p;
    char shown[IB_PATH_MAX + 2], err[IB_MSG_MAX - 256];
    if (ib_dpath_parse(path, who, "binary_path", &p, rep) != IB_OK) return NULL;
    ib_dpath_show(&p, shown, sizeof shown);
    int fd = ib_drive_openat(runner_drive_fd, &p, O_RDONLY | O_NONBLOCK, 0);
    if (fd < 0) {
        ib_drive_errno_reply(errno, "binary_path", &p, rep);
        return NULL;
    }
    struct stat st;
    char *bytes = NULL;
    size_t len = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        ib_fail(rep, IB_BAD_REQUEST, "binary_path: '%s' is not a file", shown);
        return NULL;
    }
    if (st.st_size > MAX_FLOWBIN) {
        close(fd);
        ib_fail(rep, IB_BAD_REQUEST, "binary_path: '%s' has %lld bytes, more than a compiled flow may have (%u)",
                shown, (long long)st.st_size, MAX_FLOWBIN);
        return NULL;
    }
    bytes = malloc((size_t)st.st_size + 1);
    ssize_t n = 1;
    while (bytes && len < (size_t)st.st_size && (n = pread(fd, bytes + len, (size_t)st.st_size - len, (off_t)len)) > 0)
        len += (size_t)n;
    close(fd);
    if (!bytes || n <= 0) {
        free(bytes);
        ib_fail(rep, IB_BAD_REQUEST, "binary_path: '%s' cannot be read", shown);
        return NULL;
    }
    char digest[IB_SHA256_HEX];
    ib_sha256_hex(bytes, len, digest);
    solution *s = cache_get(digest);
    if (s) {
        free(bytes);
        return s;
    }
    ib_flow *flow = ib_flow_decode(bytes, len, err, sizeof err);
    free(bytes);
    if (!flow) {
        ib_fail(rep, IB_BAD_REQUEST, "binary_path: '%s' is not a valid compiled flow: %s", shown, err);
        return NULL;
    }
    if (!(s = calloc(1, sizeof *s))) {
        ib_flow_free(flow);
        ib_fail(rep, IB_INTERNAL, "out of memory");
        return NULL;
    }
    snprintf(s->digest, sizeof s->digest, "%s", digest);
    snprintf(s->name, sizeof s->name, "%s", flow->name ? flow->name : "");
    snprintf(s->version, sizeof s->version, "%s", flow->version ? flow->version : "");
    snprintf(s->binary_path, sizeof s->binary_path, "%s", shown);
    s->flow = flow;
    return cache_put(s);
}

solution *solution_resolve(const json_t *args, const ib_caller *who, ib_reply *rep)
{
    const char *name = json_string_value(json_object_get(args, "name"));
    const char *version = json_string_value(json_object_get(args, "version"));
    const char *path = json_string_value(json_object_get(args, "solution_path"));
    const char *bin = json_string_value(json_object_get(args, "binary_path"));
    if (bin && !name && !version && !path) return from_binary(bin, who, rep);
    if ((name || version) && path) {
        ib_fail(rep, IB_BAD_REQUEST,
                "give either 'name' and 'version' (an installed solution) or 'solution_path', not both");
        return NULL;
    }
    if (path) return from_archive(path, who, rep);
    if (name && !version) {
        ib_fail(rep, IB_BAD_REQUEST, "'version' is required with 'name'");
        return NULL;
    }
    if (version && !name) {
        ib_fail(rep, IB_BAD_REQUEST, "'name' is required with 'version'");
        return NULL;
    }
    if (!name) {
        ib_fail(rep, IB_BAD_REQUEST,
                "give either 'name' and 'version' (an installed solution) or 'solution_path' (an .ibsolution file)");
        return NULL;
    }
    return installed(name, version, rep);
}

json_t *solution_record(const solution *s, const json_t *args)
{
    json_t *r = json_pack("{s:s, s:s, s:s, s:s}", "name", s->name, "version", s->version, "digest", s->digest,
                          "binary_path", s->binary_path);
    const char *path = json_string_value(json_object_get(args, "solution_path"));
    if (path) json_object_set_new(r, "solution_path", json_string(path));
    const char *bin = json_string_value(json_object_get(args, "binary_path"));
    if (bin && !path) json_object_set_new(r, "flowbin_path", json_string(bin)); /* flow/run_binary_async's */
    return r;
}

solution *solution_from_record(const json_t *rec, char *err, size_t errsz)
{
    const json_t *sr = json_object_get(rec, "solution");
    ib_reply rep;
    ib_reply_init(&rep);
    /* The path was checked for its owner when the job was created; resolve it for that owner again. */
    ib_caller who = {json_string_value(json_object_get(rec, "user")), "user", NULL};
    json_t *args = json_object();
    if (json_object_get(sr, "solution_path")) {
        json_object_set(args, "solution_path", json_object_get(sr, "solution_path"));
    } else if (json_object_get(sr, "flowbin_path")) {
        json_object_set(args, "binary_path", json_object_get(sr, "flowbin_path"));
    } else {
        json_object_set(args, "name", json_object_get(sr, "name"));
        json_object_set(args, "version", json_object_get(sr, "version"));
    }
    solution *s = solution_resolve(args, &who, &rep);
    json_decref(args);
    if (!s) snprintf(err, errsz, "%s", rep.msg);
    ib_reply_clear(&rep);
    return s;
}
