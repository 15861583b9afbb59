/* once: `ibsol-runner --once SOLUTION FILE... [--out DIR] [--config KEY=VALUE]...` runs a solution on local
 * files without any daemon and prints {"records": [...]} exactly as run_sync returns them. For authors trying
 * a content folder, and for black-box tests of the engine. */
#include "engine_int.h"
#include "ib_engine.h"
#include "ib_manifest.h"
#include "ib_package.h"
#include "ib_zip.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ONCE_MAX_INPUT (256u << 20) /* bytes of one input file */

static int usage(void)
{
    fprintf(stderr,
            "usage: ibsol-runner --once SOLUTION FILE... [--out DIR] [--config KEY=VALUE]...\n"
            "  SOLUTION  a content folder (flow.json, refiners/; or package.json and one compiled .ibflowbin) or an\n"
            "            .ibsolution file\n"
            "  --out DIR write the output folder (s<N>_<step>/, *.ibdoc, batch.ibflowresults) to DIR\n"
            "  --config  a settings.runtime_config entry for CONFIG('KEY')\n");
    return 2;
}

static char *read_all(const char *path, size_t max, size_t *len, char *err, size_t errsz)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, errsz, "%s: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
        snprintf(err, errsz, "%s: %s", path, S_ISREG(st.st_mode) ? "too large" : "not a regular file");
        close(fd);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t have = 0;
    while (buf && have < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + have, (size_t)st.st_size - have);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        have += (size_t)r;
    }
    close(fd);
    if (!buf) {
        snprintf(err, errsz, "%s: out of memory", path);
        return NULL;
    }
    buf[have] = '\0';
    *len = have;
    return buf;
}

/* Loads the compiled flow of an .ibsolution: package.json names it <name>.ibflowbin. */
static ib_flow *load_archive(const char *path, char *err, size_t errsz)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errsz, "%s: %s", path, strerror(errno));
        return NULL;
    }
    ib_zip_limits lim = {.max_total = 1ull << 30, .max_entries = 10000};
    zip_t *za = ib_zip_open_verified(fd, &lim, err, errsz);
    close(fd);
    if (!za) return NULL;
    ib_flow *flow = NULL;
    size_t len = 0;
    char *man = ib_zip_read_entry(za, "package.json", 1u << 20, &len, err, errsz);
    json_t *m = man ? ib_manifest_parse(man, len, "package.json", err, errsz) : NULL;
    if (m) {
        char entry[300];
        snprintf(entry, sizeof entry, "%s.ibflowbin", json_string_value(json_object_get(m, "name")));
        char *bin = ib_zip_read_entry(za, entry, IB_FLOW_MAX_BIN, &len, err, errsz);
        if (bin) flow = ib_flow_decode(bin, len, err, errsz);
        free(bin);
    }
    json_decref(m);
    free(man);
    zip_discard(za);
    return flow;
}

/* ib_out_json_dump's output (it buffers 64 KiB itself) to stdout */
static int to_stdout(const char *s, size_t len, void *data)
{
    (void)data;
    return fwrite(s, 1, len, stdout) == len ? 0 : -1;
}

int ib_once_main(int argc, char **argv)
{
    int i = 0;
    while (i < argc && strcmp(argv[i], "--once") != 0)
        i++;
    i++;
    const char *solution = NULL, *out = NULL;
    const char *files[4096];
    size_t nfiles = 0;
    json_t *config = json_object();
    int rc = 2;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            const char *eq = strchr(argv[++i], '=');
            if (!eq) goto bad_usage;
            char key[256];
            snprintf(key, sizeof key, "%.*s", (int)(eq - argv[i]), argv[i]);
            json_object_set_new(config, key, json_string(eq + 1));
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            goto bad_usage;
        } else if (!solution) {
            solution = argv[i];
        } else if (nfiles < sizeof files / sizeof files[0]) {
            files[nfiles++] = argv[i];
        } else {
            goto bad_usage;
        }
    }
    if (!solution || nfiles == 0) goto bad_usage;

    char err[2048] = "";
    ib_flow *flow = NULL;
    struct stat st;
    if (stat(solution, &st) == 0 && S_ISDIR(st.st_mode)) {
        int dfd = open(solution, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct stat fst;
        if (dfd >= 0 && fstatat(dfd, "flow.json", &fst, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT) {
            /* the original product's layout, one compiled .ibflowbin anywhere in it: read as solution/create does */
            char what[4200];
            ib_package pkg;
            snprintf(what, sizeof what, "content folder '%.4000s'", solution);
            if (ib_package_prepare(dfd, what, 100000, &pkg, err, sizeof err) == 0)
                flow = ib_flow_decode(pkg.flowbin, pkg.flowbin_len, err, sizeof err);
            ib_package_clear(&pkg);
        } else {
            flow = dfd >= 0 ? ib_flow_compile_dir(dfd, err, sizeof err) : NULL;
        }
        if (dfd < 0)
            snprintf(err, sizeof err, "%s: %s", solution, strerror(errno));
        else
            close(dfd);
    } else {
        flow = load_archive(solution, err, sizeof err);
    }
    if (!flow) {
        fprintf(stderr, "ibsol-runner: %s\n", err);
        json_decref(config);
        return 1;
    }

    int outfd = -1;
    if (out) {
        mkdir(out, 0755);
        outfd = open(out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (outfd < 0) {
            fprintf(stderr, "ibsol-runner: %s: %s\n", out, strerror(errno));
            ib_flow_free(flow);
            json_decref(config);
            return 1;
        }
    }
    ib_engine_opts opts = {.runtime_config = config,
                           .out_dirfd = outfd,
                           .out_prefix = out,
                           .job_id = "once",
                           .binary_path = solution};
    ib_run *run = ib_run_new(flow, &opts);
    rc = 0;
    /* Each file's records are printed as soon as they are made, and freed: the bytes {"records": [...]}
     * dumped whole would have, without holding a large run's records to the end (line items on 300 invoices:
     * 84 MiB of JSON trees; a heap that size costs page faults and slower allocations to the whole run) */
    size_t printed = 0;
    fputs("{\n  \"records\": [", stdout);
    for (size_t k = 0; k < nfiles; k++) {
        const char *base = strrchr(files[k], '/') ? strrchr(files[k], '/') + 1 : files[k];
        size_t len = 0;
        char rerr[512];
        char *bytes = read_all(files[k], ONCE_MAX_INPUT, &len, rerr, sizeof rerr);
        json_t *recs = NULL;
        int w = bytes ? ib_run_file(run, base, bytes, len, &recs, err, sizeof err)
                      : ib_run_file_error(run, base, rerr, &recs, err, sizeof err);
        if (w < 0) {
            fprintf(stderr, "ibsol-runner: %s\n", err);
            rc = 1;
        }
        /* a file that failed (unreadable, or a record past a limit) fails the run: scripts and CI see it */
        size_t r;
        json_t *rec;
        json_array_foreach(recs, r, rec)
        {
            const char *why = json_string_value(json_object_get(rec, "error"));
            if (why) {
                size_t bl = strlen(base); /* read errors already start with the file's name */
                int named = strncmp(why, base, bl) == 0 && why[bl] == ':';
                fprintf(stderr, "ibsol-runner: %s%s%s\n", named ? "" : base, named ? "" : ": ", why);
                rc = 1;
                break;
            }
        }
        json_array_foreach(recs, r, rec)
        {
            /* each record as it is in the whole {"records": [...]}: two levels deep */
            fputs(printed++ ? ",\n    " : "\n    ", stdout);
            ib_out_json_dump(rec, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15), 2,
                             to_stdout, NULL);
        }
        json_decref(recs);
        /* the run's list of every record is not needed here: emptied, so the file's records are freed now */
        json_array_clear(ib_run_records(run));
        free(bytes);
    }
    if (ib_run_finish(run, err, sizeof err) < 0) {
        fprintf(stderr, "ibsol-runner: %s\n", err);
        rc = 1;
    }
    fputs(printed ? "\n  ]\n}\n" : "]\n}\n", stdout);
    fflush(stdout);
    ib_run_free(run);
    ib_flow_free(flow);
    if (outfd >= 0) close(outfd);
    json_decref(config);
    return rc;

bad_usage:
    json_decref(config);
    return usage();
}
