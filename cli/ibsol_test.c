/* ibsol test DIR: the solution authors' CI gate. Compiles the content folder as `ibsol package` does, runs it
 * with the engine (the runner's library: no server) on every document under DIR/tests/, and compares each
 * document's records with the expected fields beside it: tests/x.pdf -> tests/x.pdf.expected.json, holding an
 * object {field: value} (a document of one record) or a list of them (one per record, in order). Every
 * difference is printed field by field; any difference or failed document exits EX_DIFF. --update writes the
 * expected files from the run. */
#include "ibsol.h"

#include "ib_engine.h"
#include "ib_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXPECTED_SUFFIX ".expected.json"
#define TEST_MAX_INPUT (256u << 20) /* bytes of one document, the runner's IBSOL_MAX_FILE default */
#define TEST_MAX_DOCS 10000

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Documents are every file under tests/ but hidden ones (editors' files) and the expected files. */
static int not_a_document(const char *name)
{
    return name[0] == '.' || ends_with(name, EXPECTED_SUFFIX);
}

/* The fields of a record as {key: value}, in order. */
static json_t *record_fields(const json_t *rec)
{
    json_t *o = json_object(), *f;
    size_t i;
    json_array_foreach(json_object_get(rec, "results"), i, f)
    {
        const char *key = json_string_value(json_object_get(f, "key"));
        if (key) json_object_set(o, key, json_object_get(f, "value"));
    }
    return o;
}

/* Values agree: numbers by value (an integer 10 is the float 10.0; floats within a relative 1e-9), the rest
 * exactly, recursively as JSON. */
static int same_value(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        double x = json_number_value(a), y = json_number_value(b);
        return x == y || fabs(x - y) <= 1e-9 * fmax(fabs(x), fabs(y));
    }
    if (json_is_array(a) && json_is_array(b)) {
        if (json_array_size(a) != json_array_size(b)) return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!same_value(json_array_get(a, i), json_array_get(b, i))) return 0;
        return 1;
    }
    return json_equal(a, b);
}

static char *shown(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    return s ? s : strdup("?");
}

/* Prints the differences of one record; returns how many. */
static int diff_record(FILE *f, const char *prefix, const json_t *expected, const json_t *rec)
{
    json_t *actual = record_fields(rec);
    int n = 0;
    const char *key;
    json_t *want;
    json_object_foreach((json_t *)expected, key, want)
    {
        json_t *got = json_object_get(actual, key);
        if (!got) {
            char *w = shown(want);
            fprintf(f, "    %s%s- %s: expected %s, but the solution has no such field%s\n", ui_red(), prefix, key, w,
                   ui_reset());
            free(w);
            n++;
        } else if (!same_value(want, got)) {
            char *w = shown(want), *g = shown(got), why[1200] = "";
            size_t i;
            json_t *res;
            json_array_foreach(json_object_get(rec, "results"), i, res)
            {
                const char *k = json_string_value(json_object_get(res, "key"));
                const char *err = json_string_value(json_object_get(res, "error"));
                if (k && err && strcmp(k, key) == 0) snprintf(why, sizeof why, " (%s)", err);
            }
            fprintf(f, "    %s%s~ %s: expected %s, got %s%s%s\n", ui_red(), prefix, key, w, g, why, ui_reset());
            free(w);
            free(g);
            n++;
        }
    }
    json_object_foreach(actual, key, want)
    {
        if (json_object_get(expected, key)) continue;
        char *g = shown(want);
        fprintf(f, "    %s%s+ %s: got %s, which the expected file does not list%s\n", ui_red(), prefix, key, g,
               ui_reset());
        free(g);
        n++;
    }
    json_decref(actual);
    return n;
}

/* Compares a document's records with its expected JSON; prints the differences and returns how many. */
static int diff_document(FILE *f, const json_t *expected, const json_t *records)
{
    size_t nrec = json_array_size(records);
    int n = 0;
    if (json_is_object(expected)) {
        if (nrec != 1) {
            fprintf(f, "    %srecords: expected 1, got %zu%s\n", ui_red(), nrec, ui_reset());
            return 1;
        }
        return diff_record(f, "", expected, json_array_get(records, 0));
    }
    size_t nexp = json_array_size(expected);
    if (nexp != nrec) {
        fprintf(f, "    %srecords: expected %zu, got %zu%s\n", ui_red(), nexp, nrec, ui_reset());
        n++;
    }
    for (size_t i = 0; i < nexp && i < nrec; i++) {
        char prefix[48];
        snprintf(prefix, sizeof prefix, "record %zu: ", i);
        n += diff_record(f, prefix, json_array_get(expected, i), json_array_get(records, i));
    }
    return n;
}

static int write_expected(const char *path, const json_t *records)
{
    json_t *out;
    if (json_array_size(records) == 1) {
        out = record_fields(json_array_get(records, 0));
    } else {
        out = json_array();
        size_t i;
        json_t *r;
        json_array_foreach(records, i, r) json_array_append_new(out, record_fields(r));
    }
    char tmp[8500];
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
    int rc = json_dump_file(out, tmp, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    json_decref(out);
    if (rc != 0 || rename(tmp, path) != 0) {
        cli_err("'%s' cannot be written: %s", path, strerror(errno));
        unlink(tmp);
        return EX_LOCAL;
    }
    return EX_OK;
}

int cmd_test(cli_args *a)
{
    int update = args_flag(a, "--update", NULL);
    if (args_positional(a, "test", 1, 1)) return EX_USAGE;
    const char *dir = a->v[0];
    /* the flow as `ibsol package` (and the server) would package it: same checks, same compiled bytes */
    ib_package pkg;
    if (pkg_prepare_local(dir, &pkg) != EX_OK) return EX_LOCAL;
    char err[2048];
    ib_flow *flow = ib_flow_decode(pkg.flowbin, pkg.flowbin_len, err, sizeof err);
    ib_package_clear(&pkg);
    if (!flow) {
        cli_err("folder '%s': the compiled flow does not load: %s", dir, err);
        return EX_LOCAL;
    }
    char tests[8192];
    snprintf(tests, sizeof tests, "%s/tests", dir);
    struct stat st;
    if (stat(tests, &st) != 0 || !S_ISDIR(st.st_mode)) {
        cli_err("folder '%s' has no tests/ folder (documents to test, each with <document>" EXPECTED_SUFFIX
                " beside it)",
                dir);
        ib_flow_free(flow);
        return EX_LOCAL;
    }
    cli_tree d;
    int rc = tree_collect(tests, not_a_document, TEST_MAX_DOCS, &d);
    if (rc == EX_OK && d.n == 0) {
        cli_err("folder '%s' holds no documents to test", tests);
        rc = EX_LOCAL;
    }
    int passed = 0, failed = 0, local_errors = 0;
    if (rc == EX_OK) {
        ib_engine_opts opts = {.out_dirfd = -1, .job_id = "test", .binary_path = dir};
        ib_run *run = ib_run_new(flow, &opts);
        int tests_fd = open(tests, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        for (size_t i = 0; i < d.n && !cli_interrupted; i++) {
            char doc[8300], exp[8400];
            snprintf(doc, sizeof doc, "%s/%s", tests, d.rel[i]);
            snprintf(exp, sizeof exp, "%s" EXPECTED_SUFFIX, doc);
            const char *base = strrchr(d.rel[i], '/') ? strrchr(d.rel[i], '/') + 1 : d.rel[i];
            size_t len = 0;
            char *bytes = tests_fd >= 0 ? ib_read_file_at(tests_fd, d.rel[i], TEST_MAX_INPUT, &len) : NULL;
            if (!bytes) {
                printf("%sFAIL%s tests/%s\n    %s'%s' cannot be read: %s%s\n", ui_red(), ui_reset(), d.rel[i], ui_red(),
                       doc, strerror(errno), ui_reset());
                failed++;
                local_errors++;
                continue;
            }
            json_t *records = NULL;
            char rerr[1024];
            ib_run_file(run, base, bytes, len, &records, rerr, sizeof rerr);
            free(bytes);
            /* a document the engine could not read, or a record past a limit, fails whatever was expected */
            const char *doc_error = NULL;
            size_t k;
            json_t *r;
            json_array_foreach(records, k, r) if (!doc_error) doc_error = json_string_value(json_object_get(r, "error"));
            if (update && !doc_error) {
                if (write_expected(exp, records) == EX_OK) {
                    printf("wrote tests/%s" EXPECTED_SUFFIX "\n", d.rel[i]);
                    passed++;
                } else {
                    local_errors++;
                    failed++;
                }
                json_decref(records);
                continue;
            }
            json_error_t je;
            json_t *expected = NULL;
            int missing = 0;
            if (!doc_error) {
                if (access(exp, F_OK) != 0)
                    missing = 1;
                else
                    expected = json_load_file(exp, JSON_REJECT_DUPLICATES, &je);
            }
            int ok_shape = json_is_object(expected) || json_is_array(expected);
            if (!doc_error && !missing && ok_shape) {
                size_t j;
                json_t *e;
                json_array_foreach(expected, j, e) ok_shape &= json_is_object(e);
            }
            if (doc_error || missing || !ok_shape) {
                printf("%sFAIL%s tests/%s\n    %s", ui_red(), ui_reset(), d.rel[i], ui_red());
                if (doc_error)
                    printf("the document failed: %s", doc_error);
                else if (missing)
                    printf("no expected file tests/%s" EXPECTED_SUFFIX " ('ibsol test --update' writes it)",
                           d.rel[i]);
                else if (!expected)
                    printf("tests/%s" EXPECTED_SUFFIX ": line %d column %d: %s", d.rel[i], je.line, je.column,
                           je.text);
                else
                    printf("tests/%s" EXPECTED_SUFFIX ": must be an object of fields or a list of them",
                           d.rel[i]);
                printf("%s\n", ui_reset());
                if (!doc_error && !missing) local_errors++;
                failed++;
            } else {
                /* the header first, so the diff lines follow it */
                char *buf = NULL;
                size_t blen = 0;
                FILE *mem = open_memstream(&buf, &blen);
                int n = 1;
                if (mem) {
                    n = diff_document(mem, expected, records);
                    fclose(mem);
                }
                if (n == 0) {
                    printf("%sPASS%s tests/%s\n", ui_green(), ui_reset(), d.rel[i]);
                    passed++;
                } else {
                    printf("%sFAIL%s tests/%s (%d difference%s)\n%s", ui_red(), ui_reset(), d.rel[i], n,
                           n == 1 ? "" : "s", buf ? buf : "");
                    failed++;
                }
                free(buf);
            }
            json_decref(expected);
            json_decref(records);
        }
        ib_run_free(run);
        if (tests_fd >= 0) close(tests_fd);
        if (cli_interrupted) {
            cli_err("interrupted after %d of %zu documents", passed + failed, d.n);
            rc = EX_INTERRUPTED;
        } else {
            printf("%s%d passed, %d failed%s\n", failed ? ui_red() : ui_green(), passed, failed, ui_reset());
            rc = local_errors ? EX_LOCAL : failed ? EX_DIFF : EX_OK;
        }
    }
    tree_free(&d);
    ib_flow_free(flow);
    return rc;
}
