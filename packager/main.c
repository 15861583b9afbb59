/* ibsol-packager: solution.create. Validates and compiles a content folder (manifest, flow, refiners) and writes
 * the reproducible <name>-<version>.ibsolution into the output folder. */
#include "ib_daemon.h"
#include "ib_flow.h"
#include "ib_fs.h"
#include "ib_manifest.h"
#include "ib_path.h"
#include "ib_sha256.h"
#include "ib_zip.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static long long zip_level, max_package, max_files;
static int drive_fd = -1;

static const ib_cfg packager_cfg[] = {
    {"zip_level", IB_CFG_INT, "6", 1, 9, &zip_level, "deflate level of .ibsolution archives"},
    {"max_package", IB_CFG_INT, "1073741824", 1024, 1LL << 40, &max_package,
     "largest content folder to package, bytes (uncompressed)"},
    {"max_files", IB_CFG_INT, "100000", 1, 10000000, &max_files, "most files in one package"},
};

static ib_code create_op(void *state, const ib_request *req, ib_reply *rep)
{
    ib_dpath content, out;
    char err[IB_MSG_MAX], shown[IB_PATH_MAX + 2];
    if (ib_dpath_parse(ib_arg_str(req->args, "content_folder"), &req->who, "content_folder", &content, rep) ||
        ib_dpath_parse(ib_arg_str(req->args, "output_folder"), &req->who, "output_folder", &out, rep))
        return rep->code;

    int dirfd = ib_drive_openat(drive_fd, &content, O_RDONLY | O_DIRECTORY, 0);
    if (dirfd < 0) return ib_drive_errno_reply(errno, "content_folder", &content, rep);
    int outfd = -1;
    ib_flow *flow = NULL;
    json_t *manifest = NULL;
    char *flowbin = NULL;
    size_t len;

    char *text = ib_read_file_at(dirfd, "package.json", 1 << 20, &len);
    if (!text) {
        if (errno == ENOENT)
            ib_fail(rep, IB_BAD_REQUEST, "content_folder '%s' has no package.json",
                    ib_dpath_show(&content, shown, sizeof shown));
        else
            ib_fail(rep, IB_BAD_REQUEST, "package.json cannot be read: %s", strerror(errno));
        goto done;
    }
    manifest = ib_manifest_parse(text, len, "package.json", err, sizeof err);
    free(text);
    if (!manifest) {
        ib_fail(rep, IB_BAD_REQUEST, "%s", err);
        goto done;
    }
    const char *name = json_string_value(json_object_get(manifest, "name"));
    const char *version = json_string_value(json_object_get(manifest, "version"));
    if (!(flow = ib_flow_compile_dir(dirfd, err, sizeof err))) {
        ib_fail(rep, IB_BAD_REQUEST, "%s", err);
        goto done;
    }
    if (ib_flow_encode(flow, name, version, &flowbin, &len) < 0) {
        ib_fail(rep, IB_INTERNAL, "the compiled flow could not be encoded");
        goto done;
    }
    outfd = ib_drive_open_dir(drive_fd, &out, 1);
    if (outfd < 0) {
        if (errno == ENOTDIR || errno == EEXIST)
            ib_fail(rep, IB_BAD_REQUEST, "output_folder '%s' is a file, not a folder",
                    ib_dpath_show(&out, shown, sizeof shown));
        else
            ib_drive_errno_reply(errno, "output_folder", &out, rep);
        goto done;
    }
    /* the manifest check keeps <name>-<version>.ibsolution within 255 bytes */
    char entry[IB_SOLUTION_NAME_MAX + 16], file[256], target[64 + sizeof file];
    snprintf(entry, sizeof entry, "%s.ibflowbin", name);
    snprintf(file, sizeof file, "%s-%s.ibsolution", name, version);
    snprintf(target, sizeof target, "/proc/self/fd/%d/%s", outfd, file);
    ib_zip_extra extra = {entry, flowbin, len};
    ib_zip_limits limits = {(uint64_t)max_package, (uint64_t)max_files};
    if (ib_zip_write_dir(dirfd, &extra, 1, target, (int)zip_level, &limits, err, sizeof err) < 0) {
        if (ib_errno_no_space(errno))
            ib_fail_write(rep, errno, "output_folder '%s'", ib_dpath_show(&out, shown, sizeof shown));
        else
            ib_fail(rep, IB_BAD_REQUEST, "%s", err);
        goto done;
    }
    int fd = openat(outfd, file, O_RDONLY | O_NOFOLLOW);
    char digest[IB_SHA256_HEX];
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || ib_sha256_fd(fd, digest) < 0) {
        if (fd >= 0) close(fd);
        ib_fail(rep, IB_INTERNAL, "the package was written but cannot be read back: %s", strerror(errno));
        goto done;
    }
    close(fd);
    char rel[IB_PATH_MAX + 260];
    snprintf(rel, sizeof rel, "/%s/%s", out.rel, file);
    json_t *d = ib_reply_data(rep);
    json_object_set_new(d, "ibsolution_path", json_string(rel));
    json_object_set_new(d, "sha256", json_string(digest));
    json_object_set_new(d, "size", json_integer(st.st_size));
    json_object_set_new(d, "name", json_string(name));
    json_object_set_new(d, "version", json_string(version));
done:
    free(flowbin);
    ib_flow_free(flow);
    json_decref(manifest);
    if (outfd >= 0) close(outfd);
    close(dirfd);
    return rep->code;
}

static int packager_start(void **state, char *err, size_t errsz)
{
    char path[4096];
    drive_fd = ib_drive_open_root(ib_data_path("drive", path, sizeof path));
    if (drive_fd < 0) {
        snprintf(err, errsz, "IBSOL_DATA: cannot open drive folder '%s': %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void packager_stop(void *state)
{
    if (drive_fd >= 0) close(drive_fd);
}

int main(int argc, char **argv)
{
    static const ib_op ops[] = {{IB_OP_SOLUTION_CREATE, create_op}};
    static const ib_daemon_def def = {
        .name = "packager",
        .about = "validates, compiles and packages solutions (solution.create)",
        .service = IB_SVC_PACKAGER,
        .ops = ops,
        .nops = sizeof ops / sizeof ops[0],
        .cfg = packager_cfg,
        .ncfg = sizeof packager_cfg / sizeof packager_cfg[0],
        .start = packager_start,
        .stop = packager_stop,
    };
    return ib_daemon_main(&def, argc, argv);
}
