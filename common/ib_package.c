/* ib_package: making and checking solution packages (see ib_package.h). */
#include "ib_package.h"

#include "ib_flow.h"
#include "ib_fs.h"
#include "ib_manifest.h"
#include "ib_path.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MANIFEST_MAX (1u << 20)
#define FLOWBIN_EXT ".ibflowbin"
#define SEARCH_MAX_DEPTH 128 /* folder levels searched for a compiled flow (each holds one open folder) */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* ---- a content folder holding a compiled flow ---- */

typedef struct bin_search {
    char first[IB_PATH_MAX], second[IB_PATH_MAX]; /* the two smallest names found, so messages are stable */
    unsigned long long found, files, max_files;
    char *err;
    size_t errsz;
} bin_search;

static void note_binary(bin_search *bs, const char *rel)
{
    bs->found++;
    if (bs->found == 1 || strcmp(rel, bs->first) < 0) {
        if (bs->found > 1) snprintf(bs->second, sizeof bs->second, "%s", bs->first);
        snprintf(bs->first, sizeof bs->first, "%s", rel);
    } else if (bs->found == 2 || strcmp(rel, bs->second) < 0) {
        snprintf(bs->second, sizeof bs->second, "%s", rel);
    }
}

/* Looks for *.ibflowbin files below the folder dfd (owned and closed here) whose path is rel[0..rlen). Like the
 * archive writer: no symlink is followed (one named *.ibflowbin is an error, a package holds regular files
 * only), and the files counted are bounded by max_files. 0, or -1 with a message in bs->err. */
static int find_binaries(bin_search *bs, int dfd, char *rel, size_t rlen, int depth)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        snprintf(bs->err, bs->errsz, "folder '%s' cannot be read: %s", rlen ? rel : ".", strerror(errno));
        return -1;
    }
    int rc = 0;
    struct dirent *ent;
    for (errno = 0; rc == 0 && (ent = readdir(d)) != NULL; errno = 0) {
        const char *nm = ent->d_name;
        if (!strcmp(nm, ".") || !strcmp(nm, "..")) continue;
        size_t nlen = strlen(nm);
        if (rlen + 1 + nlen >= IB_PATH_MAX) {
            snprintf(bs->err, bs->errsz, "a path below '%s' is longer than %d bytes", rlen ? rel : ".",
                     IB_PATH_MAX - 1);
            rc = -1;
            break;
        }
        size_t sub = rlen ? rlen + 1 : 0;
        if (rlen) rel[rlen] = '/';
        memcpy(rel + sub, nm, nlen + 1);
        struct stat st;
        if (fstatat(dirfd(d), nm, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            snprintf(bs->err, bs->errsz, "'%s' cannot be read: %s", rel, strerror(errno));
            rc = -1;
        } else if (S_ISDIR(st.st_mode)) {
            if (depth >= SEARCH_MAX_DEPTH) {
                snprintf(bs->err, bs->errsz, "folders are nested deeper than %d levels at '%s'", SEARCH_MAX_DEPTH,
                         rel);
                rc = -1;
            } else {
                int fd = openat(dirfd(d), nm, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0) {
                    snprintf(bs->err, bs->errsz, "folder '%s' cannot be opened: %s", rel, strerror(errno));
                    rc = -1;
                } else {
                    rc = find_binaries(bs, fd, rel, sub + nlen, depth + 1);
                }
            }
        } else if (ends_with(nm, FLOWBIN_EXT)) {
            if (!S_ISREG(st.st_mode)) {
                snprintf(bs->err, bs->errsz, "'%s' is not a regular file; a package holds regular files only", rel);
                rc = -1;
            } else {
                note_binary(bs, rel);
            }
        }
        if (rc == 0 && S_ISREG(st.st_mode) && ++bs->files > bs->max_files) {
            snprintf(bs->err, bs->errsz, "it has more than %llu files", bs->max_files);
            rc = -1;
        }
        rel[rlen] = '\0';
    }
    if (rc == 0 && errno != 0) {
        snprintf(bs->err, bs->errsz, "folder '%s' cannot be read: %s", rlen ? rel : ".", strerror(errno));
        rc = -1;
    }
    closedir(d);
    return rc;
}

/* The compiled flow of a content folder without flow.json: exactly one .ibflowbin anywhere in it, decoded and
 * checked like one in a published archive. NULL with a message in err (what names the folder). */
static ib_flow *flow_from_binary(int dirfd, const char *what, uint64_t max_files, char *err, size_t errsz)
{
    char e[IB_MSG_MAX], rel[IB_PATH_MAX] = "";
    bin_search *bs = calloc(1, sizeof *bs);
    if (!bs) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    bs->err = e;
    bs->errsz = sizeof e;
    bs->max_files = max_files;
    ib_flow *flow = NULL;
    char *bytes = NULL;
    size_t len = 0;
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || find_binaries(bs, fd, rel, 0, 0) < 0) {
        if (fd < 0) snprintf(e, sizeof e, "it cannot be read: %s", strerror(errno));
        snprintf(err, errsz, "%s: %s", what, e);
    } else if (bs->found == 0) {
        snprintf(err, errsz, "%s has neither flow.json nor a compiled flow (" FLOWBIN_EXT " file)", what);
    } else if (bs->found > 1) {
        snprintf(err, errsz,
                 "%s holds %llu compiled flows (%s'%s' and '%s'%s); a package takes exactly one (or a flow.json)",
                 what, bs->found, bs->found > 2 ? "among them " : "", bs->first, bs->second,
                 bs->found > 2 ? ", ..." : "");
    } else if (!(bytes = ib_read_file_at(dirfd, bs->first, IB_FLOW_MAX_BIN, &len))) {
        if (errno == EFBIG)
            snprintf(err, errsz, "%s: '%s' is larger than %u bytes", what, bs->first, IB_FLOW_MAX_BIN);
        else
            snprintf(err, errsz, "%s: '%s' cannot be read: %s", what, bs->first, strerror(errno));
    } else if (!(flow = ib_flow_decode(bytes, len, e, sizeof e))) {
        snprintf(err, errsz, "%s: '%s' is not a valid compiled flow: %s", what, bs->first, e);
    }
    free(bytes);
    free(bs);
    return flow;
}

int ib_package_prepare(int dirfd, const char *what, uint64_t max_files, ib_package *pkg, char *err, size_t errsz)
{
    memset(pkg, 0, sizeof *pkg);
    size_t len;
    char *text = ib_read_file_at(dirfd, "package.json", MANIFEST_MAX, &len);
    if (!text) {
        if (errno == ENOENT)
            snprintf(err, errsz, "%s has no package.json", what);
        else
            snprintf(err, errsz, "package.json cannot be read: %s", strerror(errno));
        return -1;
    }
    pkg->manifest = ib_manifest_parse(text, len, "package.json", err, errsz);
    free(text);
    if (!pkg->manifest) return -1;
    pkg->name = json_string_value(json_object_get(pkg->manifest, "name"));
    pkg->version = json_string_value(json_object_get(pkg->manifest, "version"));
    /* flow.json, when there is one, is compiled (also beside a stale .ibflowbin); otherwise the folder must hold
     * one compiled flow, which is re-encoded for this name and version like a freshly compiled one, so the
     * package verifies, installs and runs exactly as one built from flow.json. */
    ib_flow *flow;
    struct stat fst;
    if (fstatat(dirfd, "flow.json", &fst, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
        flow = ib_flow_compile_dir(dirfd, err, errsz);
    else
        flow = flow_from_binary(dirfd, what, max_files, err, errsz);
    if (!flow) {
        ib_package_clear(pkg);
        return -1;
    }
    int rc = ib_flow_encode(flow, pkg->name, pkg->version, &pkg->flowbin, &pkg->flowbin_len);
    ib_flow_free(flow);
    if (rc < 0) {
        snprintf(err, errsz, "the compiled flow could not be encoded");
        ib_package_clear(pkg);
        return IB_PACKAGE_INTERNAL;
    }
    return 0;
}

void ib_package_file_name(const ib_package *pkg, char *out, size_t outsz)
{
    /* the manifest check keeps <name>-<version>.ibsolution within 255 bytes */
    snprintf(out, outsz, "%s-%s.ibsolution", pkg->name, pkg->version);
}

int ib_package_write(int dirfd, const ib_package *pkg, const char *path, int level, const ib_zip_limits *limits,
                     char *err, size_t errsz)
{
    char entry[IB_SOLUTION_NAME_MAX + 16];
    snprintf(entry, sizeof entry, "%s.ibflowbin", pkg->name);
    ib_zip_extra extra = {entry, pkg->flowbin, pkg->flowbin_len};
    return ib_zip_write_dir(dirfd, &extra, 1, path, level, limits, err, errsz);
}

void ib_package_clear(ib_package *pkg)
{
    json_decref(pkg->manifest);
    free(pkg->flowbin);
    memset(pkg, 0, sizeof *pkg);
}

/* ---- checks of an archive ---- */

json_t *ib_package_verify(int fd, const ib_zip_limits *lim, char *err, size_t errsz)
{
    char e[768], entry[IB_SOLUTION_NAME_MAX + 16];
    json_t *manifest = NULL;
    char *text = NULL, *bin = NULL;
    ib_flow *flow = NULL;
    size_t len;
    zip_t *za = ib_zip_open_verified(fd, lim, err, errsz);
    if (!za) return NULL;
    if (zip_name_locate(za, "package.json", ZIP_FL_ENC_RAW) < 0) {
        snprintf(err, errsz, "archive has no 'package.json'");
        goto out;
    }
    if (!(text = ib_zip_read_entry(za, "package.json", MANIFEST_MAX, &len, err, errsz)) ||
        !(manifest = ib_manifest_parse(text, len, "package.json", err, errsz)))
        goto out;
    const char *name = json_string_value(json_object_get(manifest, "name"));
    const char *version = json_string_value(json_object_get(manifest, "version"));
    snprintf(entry, sizeof entry, "%s.ibflowbin", name);
    if (zip_name_locate(za, entry, ZIP_FL_ENC_RAW) < 0) {
        snprintf(err, errsz, "archive has no '%s'", entry);
        goto fail;
    }
    if (!(bin = ib_zip_read_entry(za, entry, IB_FLOW_MAX_BIN, &len, err, errsz))) goto fail;
    if (!(flow = ib_flow_decode(bin, len, e, sizeof e))) {
        snprintf(err, errsz, "'%s' is not a valid compiled flow: %s", entry, e);
        goto fail;
    }
    /* A compiled flow copied in from another solution would run under the wrong name. */
    if (!flow->name || !flow->version || strcmp(flow->name, name) != 0 || strcmp(flow->version, version) != 0) {
        snprintf(err, errsz,
                 "'%s' was compiled for solution '%.64s' version '%.64s', not for '%s' version '%s' of package.json",
                 entry, flow->name ? flow->name : "?", flow->version ? flow->version : "?", name, version);
        goto fail;
    }
    goto out;
fail:
    json_decref(manifest);
    manifest = NULL;
out:
    ib_flow_free(flow);
    free(bin);
    free(text);
    zip_discard(za);
    return manifest;
}
