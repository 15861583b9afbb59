/* ibsol-packager: solution.create and flow.compile. solution.create validates a content folder (manifest, and
 * either flow.json with its refiners or one compiled .ibflowbin anywhere in it, the original product's layout)
 * and writes the reproducible <name>-<version>.ibsolution into the output folder. flow.compile (the original
 * product's flow_binary/compile) compiles a flow file of any name into an .ibflowbin on the drive. */
#include "ib_daemon.h"
#include "ib_flow.h"
#include "ib_fs.h"
#include "ib_manifest.h"
#include "ib_package.h"
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

#define FLOWBIN_EXT ".ibflowbin"

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static ib_code create_op(void *state, const ib_request *req, ib_reply *rep)
{
    ib_dpath content, out;
    char err[IB_MSG_MAX], shown[IB_PATH_MAX + 2], what[IB_PATH_MAX + 32];
    if (ib_dpath_parse(ib_arg_str(req->args, "content_folder"), &req->who, "content_folder", &content, rep) ||
        ib_dpath_parse(ib_arg_str(req->args, "output_folder"), &req->who, "output_folder", &out, rep))
        return rep->code;

    int dirfd = ib_drive_openat(drive_fd, &content, O_RDONLY | O_DIRECTORY, 0);
    if (dirfd < 0) return ib_drive_errno_reply(errno, "content_folder", &content, rep);
    int outfd = -1;
    ib_package pkg = {0};
    /* The checks and the archive are ib_package's, which `ibsol package` shares: same bytes, same errors. */
    snprintf(what, sizeof what, "content_folder '%s'", ib_dpath_show(&content, shown, sizeof shown));
    int prc = ib_package_prepare(dirfd, what, (uint64_t)max_files, &pkg, err, sizeof err);
    if (prc != 0) {
        ib_fail(rep, prc == IB_PACKAGE_INTERNAL ? IB_INTERNAL : IB_BAD_REQUEST, "%s", err);
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
    char file[256], target[64 + sizeof file];
    ib_package_file_name(&pkg, file, sizeof file);
    snprintf(target, sizeof target, "/proc/self/fd/%d/%s", outfd, file);
    ib_zip_limits limits = {(uint64_t)max_package, (uint64_t)max_files};
    if (ib_package_write(dirfd, &pkg, target, (int)zip_level, &limits, err, sizeof err) < 0) {
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
    json_object_set_new(d, "name", json_string(pkg.name));
    json_object_set_new(d, "version", json_string(pkg.version));
done:
    ib_package_clear(&pkg);
    if (outfd >= 0) close(outfd);
    close(dirfd);
    return rep->code;
}

/* ---- flow.compile ---- */

/* A drive-path field; the URL's solution path arrives decoded, so a NUL byte is refused here, not cut off. */
static ib_code path_arg(const ib_request *req, const char *field, ib_dpath *out, ib_reply *rep)
{
    const json_t *v = json_object_get(req->args, field);
    return ib_dpath_parsen(json_string_value(v), json_string_length(v), &req->who, field, out, rep);
}

/* predefined_binary_path when the request leaves it out: the flow file's path with its extension replaced, as
 * the original product's clients name it ("w2.ibflow" -> "w2.ibflowbin"). */
static void default_binary_path(const ib_dpath *root, const char *flow_file, char *out, size_t outsz)
{
    const char *base = strrchr(flow_file, '/');
    base = base ? base + 1 : flow_file;
    const char *dot = strrchr(base, '.');
    size_t stem = dot && dot != base ? (size_t)(dot - flow_file) : strlen(flow_file);
    snprintf(out, outsz, "/%s/%.*s" FLOWBIN_EXT, root->rel, (int)stem, flow_file);
}

/* Maps a failed read of the flow file to its reply; `shown` is its drive path. */
static ib_code flow_file_errno(int err, const char *shown, ib_reply *rep)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR: return ib_fail(rep, IB_NOT_FOUND, "settings.flow_file: '%s' does not exist", shown);
    case EXDEV:
    case ELOOP: return ib_fail(rep, IB_FORBIDDEN, "settings.flow_file: '%s' leaves flow_project_root", shown);
    case EFBIG:
        return ib_fail(rep, IB_BAD_REQUEST, "settings.flow_file: '%s' is larger than %u bytes", shown,
                       IB_FLOW_MAX_FILE);
    case EISDIR:
    case EINVAL: return ib_fail(rep, IB_BAD_REQUEST, "settings.flow_file: '%s' is not a regular file", shown);
    case EACCES: return ib_fail(rep, IB_FORBIDDEN, "settings.flow_file: '%s': permission denied", shown);
    default: return ib_fail(rep, IB_INTERNAL, "settings.flow_file: '%s': %s", shown, strerror(err));
    }
}

/* The original product's flow_binary/compile: compiles settings.flow_file below flow_project_root (refiners
 * relative to the flow's own folder) and writes the .ibflowbin at predefined_binary_path, atomically. The
 * answer is synchronous: the binary is in place when the call returns. */
static ib_code compile_op(void *state, const ib_request *req, ib_reply *rep)
{
    ib_dpath sol, root, bin;
    char shown[IB_PATH_MAX + 2], flow_shown[2 * IB_PATH_MAX + 2], bin_text[2 * IB_PATH_MAX + 16];
    char err[IB_MSG_MAX];
    if (path_arg(req, "solution_path", &sol, rep) || path_arg(req, "flow_project_root", &root, rep))
        return rep->code;
    const char *btype = ib_arg_str(req->args, "binary_type");
    if (btype && strcmp(btype, "Single Flow") != 0)
        return ib_fail(rep, IB_BAD_REQUEST, "binary_type '%.64s' is not supported (ibsol compiles 'Single Flow')",
                       btype);
    const json_t *settings = json_object_get(req->args, "settings");
    const json_t *ff = json_object_get(settings, "flow_file"), *v3 = json_object_get(settings, "is_flow_v3");
    if (!ff || json_is_null(ff)) return ib_fail(rep, IB_BAD_REQUEST, "'settings.flow_file' is required");
    if (!json_is_string(ff)) return ib_fail(rep, IB_BAD_REQUEST, "'settings.flow_file' must be a string");
    if (v3 && !json_is_null(v3) && !json_is_boolean(v3))
        return ib_fail(rep, IB_BAD_REQUEST, "'settings.is_flow_v3' must be true or false");
    const char *flow_file = json_string_value(ff);
    const char *why = strlen(flow_file) != json_string_length(ff) ? "has a NUL byte" : ib_zip_name_problem(flow_file);
    if (why) return ib_fail(rep, IB_BAD_REQUEST, "settings.flow_file '%.200s' is refused: it %s", flow_file, why);
    snprintf(flow_shown, sizeof flow_shown, "/%s/%s", root.rel, flow_file);

    const json_t *bp = json_object_get(req->args, "predefined_binary_path");
    if (bp && !json_is_null(bp)) {
        if (path_arg(req, "predefined_binary_path", &bin, rep)) return rep->code;
    } else {
        default_binary_path(&root, flow_file, bin_text, sizeof bin_text); /* fits: both parts are bounded */
        if (ib_dpath_parse(bin_text, &req->who, "predefined_binary_path", &bin, rep)) return rep->code;
    }
    if (!ends_with(bin.rel, FLOWBIN_EXT))
        return ib_fail(rep, IB_BAD_REQUEST,
                       "predefined_binary_path '/%s' must end in " FLOWBIN_EXT " (solution/create looks for it)",
                       bin.rel);

    int solfd = ib_drive_openat(drive_fd, &sol, O_RDONLY | O_DIRECTORY, 0);
    if (solfd < 0) return ib_drive_errno_reply(errno, "solution_path", &sol, rep);
    close(solfd);
    int rootfd = ib_drive_openat(drive_fd, &root, O_RDONLY | O_DIRECTORY, 0);
    if (rootfd < 0) return ib_drive_errno_reply(errno, "flow_project_root", &root, rep);

    /* Refiner paths are relative to the folder of the flow file, and confined to it. */
    int flowdir = rootfd;
    const char *base = strrchr(flow_file, '/');
    if (base) {
        char dir[IB_PATH_MAX];
        snprintf(dir, sizeof dir, "%.*s", (int)(base - flow_file), flow_file);
        flowdir = ib_openat_beneath(rootfd, dir, O_RDONLY | O_DIRECTORY, 0);
        if (flowdir < 0) {
            int e = errno;
            close(rootfd);
            return flow_file_errno(e, flow_shown, rep);
        }
        base++;
    } else {
        base = flow_file;
    }
    ib_flow *flow = NULL;
    char *bytes = NULL;
    size_t len = 0;
    int outfd = -1;
    const char *outname;
    char *text = ib_read_file_at(flowdir, base, IB_FLOW_MAX_FILE, &len);
    if (!text) {
        flow_file_errno(errno, flow_shown, rep);
        goto done;
    }
    flow = ib_flow_compile_text(flowdir, flow_file, text, len, err, sizeof err);
    free(text);
    if (!flow) {
        ib_fail(rep, IB_BAD_REQUEST, "%s", err);
        goto done;
    }
    /* Not tied to a solution yet: solution/create stamps the package's name and version into it. */
    if (ib_flow_encode(flow, NULL, NULL, &bytes, &len) < 0) {
        ib_fail(rep, IB_INTERNAL, "the compiled flow could not be encoded");
        goto done;
    }
    ib_dpath_show(&bin, shown, sizeof shown);
    outfd = ib_drive_open_parent(drive_fd, &bin, 1, &outname);
    if (outfd < 0) {
        ib_drive_errno_reply(errno, "predefined_binary_path", &bin, rep);
        goto done;
    }
    if (ib_write_atomic(outfd, outname, bytes, len) < 0) {
        if (ib_errno_no_space(errno))
            ib_fail_write(rep, errno, "predefined_binary_path '%s'", shown);
        else
            ib_drive_errno_reply(errno, "predefined_binary_path", &bin, rep);
        goto done;
    }
    char digest[IB_SHA256_HEX];
    ib_sha256_hex(bytes, len, digest);
    json_t *d = ib_reply_data(rep);
    json_object_set_new(d, "binary_path", json_string(shown));
    json_object_set_new(d, "flow_path", json_string(flow_shown));
    json_object_set_new(d, "sha256", json_string(digest));
    json_object_set_new(d, "size", json_integer((json_int_t)len));
done:
    free(bytes);
    ib_flow_free(flow);
    if (outfd >= 0) close(outfd);
    if (flowdir != rootfd) close(flowdir);
    close(rootfd);
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
    static const ib_op ops[] = {{IB_OP_SOLUTION_CREATE, create_op}, {IB_OP_FLOW_COMPILE, compile_op}};
    static const ib_daemon_def def = {
        .name = "packager",
        .about = "validates, compiles and packages solutions (solution.create, flow.compile)",
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
