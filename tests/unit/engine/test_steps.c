/* Unit tests of the engine's steps and outputs with the fixture solution (tests/fixtures/solutions/invoice):
 * split by regex and by page, classify, per-class refiners, validate messages, unreadable files, the output
 * folder layout and its .ibdoc files, run statistics, and --once on a folder and on an .ibsolution. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four headers above first */
#include <cmocka.h>

#include "ib_engine.h"
#include "ib_zip.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char src[1024], tmp[256];

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    size_t got = fread(b, 1, (size_t)n, f);
    fclose(f);
    b[got] = '\0';
    if (len) *len = got;
    return b;
}

static char *doc_path(const char *name, char *buf, size_t bufsz)
{
    snprintf(buf, bufsz, "%s/tests/fixtures/docs/%s", src, name);
    return buf;
}

static int setup(void **state)
{
    (void)state;
    const char *s = getenv("IBSOL_SOURCE");
    snprintf(src, sizeof src, "%s", s ? s : ".");
    snprintf(tmp, sizeof tmp, "/tmp/ibsol-test-steps-XXXXXX");
    return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static ib_flow *fixture_flow(void)
{
    char path[1200], err[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/solutions/invoice", src);
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    ib_flow *f = ib_flow_compile_dir(fd, err, sizeof err);
    close(fd);
    if (!f) fail_msg("%s", err);
    return f;
}

/* Compiles a flow from a temp folder holding the fixture's refiners, an extra refiner (when extra_name is not
 * NULL) and the given flow.json. */
static ib_flow *custom_flow_with(const char *flow_json, const char *extra_name, const char *extra_text)
{
    char cmd[4096], dir[512], err[1024];
    snprintf(dir, sizeof dir, "%s/custom", tmp);
    snprintf(cmd, sizeof cmd,
             "rm -rf '%s' && mkdir -p '%s' && cp -r '%s/tests/fixtures/solutions/invoice/refiners' '%s/'",
             dir, dir, src, dir);
    assert_int_equal(system(cmd), 0);
    char fp[600];
    FILE *f;
    if (extra_name) {
        snprintf(fp, sizeof fp, "%s/refiners/%s", dir, extra_name);
        f = fopen(fp, "w");
        fputs(extra_text, f);
        fclose(f);
    }
    snprintf(fp, sizeof fp, "%s/flow.json", dir);
    f = fopen(fp, "w");
    fputs(flow_json, f);
    fclose(f);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    ib_flow *fl = ib_flow_compile_dir(fd, err, sizeof err);
    close(fd);
    if (!fl) fail_msg("%s", err);
    return fl;
}

static ib_flow *custom_flow(const char *flow_json)
{
    return custom_flow_with(flow_json, NULL, NULL);
}

static json_t *run_file(ib_run *run, const char *name)
{
    char path[1200], err[512];
    size_t len;
    char *bytes = slurp(doc_path(name, path, sizeof path), &len);
    json_t *recs = NULL;
    if (ib_run_file(run, name, bytes, len, &recs, err, sizeof err) != 0) fail_msg("%s", err);
    free(bytes);
    return recs;
}

static json_t *result(json_t *rec, const char *key)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(rec, "results"), i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "key")), key) == 0)
            return json_object_get(r, "value");
    }
    fail_msg("no result '%s'", key);
    return NULL;
}

static const char *str(json_t *v)
{
    if (!json_is_string(v)) fail_msg("not a string");
    return json_string_value(v);
}

static void test_split_classify_refine(void **state)
{
    (void)state;
    ib_flow *f = fixture_flow();
    json_t *config = json_pack("{s:s}", "currency", "EUR");
    ib_engine_opts o = {.runtime_config = config, .out_dirfd = -1};
    ib_run *run = ib_run_new(f, &o);
    json_t *recs = run_file(run, "batch.txt");
    assert_int_equal(json_array_size(recs), 3);
    json_t *r0 = json_array_get(recs, 0), *r1 = json_array_get(recs, 1), *r2 = json_array_get(recs, 2);
    assert_string_equal(str(json_object_get(r0, "class")), "invoice");
    assert_string_equal(str(json_object_get(r1, "class")), "receipt");
    assert_string_equal(str(json_object_get(r2, "class")), "invoice");
    assert_int_equal(json_integer_value(json_object_get(r2, "record_index")), 2);
    assert_int_equal(json_integer_value(json_object_get(r2, "file_index")), 0);
    assert_string_equal(str(json_object_get(r2, "file_name")), "batch.txt");
    assert_string_equal(str(result(r0, "invoice_no")), "A-100");
    assert_string_equal(str(result(r0, "customer")), "Ann Lee");
    assert_true(json_number_value(result(r0, "total")) == 10);
    assert_true(json_is_true(result(r0, "paid")));
    assert_string_equal(str(result(r0, "currency")), "EUR");
    assert_string_equal(str(result(r0, "source")), "batch.txt:invoice");
    /* the receipt went to the "*" program */
    assert_int_equal(json_array_size(json_object_get(r1, "results")), 3);
    assert_string_equal(str(result(r1, "title")), "RECEIPT");
    assert_string_equal(str(result(r1, "invoice_no")), "R-7");
    assert_true(json_number_value(result(r1, "total")) == 5);
    assert_string_equal(str(result(r2, "invoice_no")), "B-200");
    assert_true(json_number_value(result(r2, "total")) == 1234.5);
    assert_true(json_is_false(result(r2, "paid")));
    assert_true(json_is_null(result(r2, "first_name")));
    assert_int_equal(json_array_size(json_object_get(r2, "validation")), 0);
    assert_string_equal(str(json_object_get(r2, "output_file_path")), "s5_validate/batch.txt_2.ibdoc");
    json_decref(recs);

    /* the text invoice: one record (its INVOICE is not at a line start), every field */
    recs = run_file(run, "invoice.txt");
    assert_int_equal(json_array_size(recs), 1);
    r0 = json_array_get(recs, 0);
    assert_int_equal(json_integer_value(json_object_get(r0, "file_index")), 1);
    assert_string_equal(str(result(r0, "vendor")), "ACME Corporation");
    assert_string_equal(str(result(r0, "invoice_date")), "2024-03-15");
    assert_string_equal(str(result(r0, "due_date")), "2024-03-30");
    assert_string_equal(str(result(r0, "bill_to")), "Jane Doe");
    assert_true(json_number_value(result(r0, "subtotal")) == 1244.5);
    assert_int_equal(json_array_size(result(r0, "items")), 2);
    json_decref(recs);

    ib_run_stats st;
    ib_run_get_stats(run, &st);
    assert_int_equal(st.files, 2);
    assert_int_equal(st.records, 4);
    assert_int_equal(st.runtime_errors, 0);
    assert_int_equal(json_array_size(ib_run_records(run)), 4);
    ib_run_free(run);
    json_decref(config);
    ib_flow_free(f);
}

static void test_pdf(void **state)
{
    (void)state;
    ib_flow *f = fixture_flow();
    ib_run *run = ib_run_new(f, &(ib_engine_opts){.out_dirfd = -1});
    json_t *recs = run_file(run, "invoice.pdf");
    assert_int_equal(json_array_size(recs), 1);
    json_t *r = json_array_get(recs, 0);
    assert_string_equal(str(result(r, "vendor")), "Globex Industries");
    assert_string_equal(str(result(r, "invoice_no")), "GX-7731");
    assert_string_equal(str(result(r, "invoice_date")), "2024-04-15");
    assert_string_equal(str(result(r, "customer")), "Marge Bouvier");
    assert_string_equal(str(result(r, "bill_to")), "Springfield Nuclear Plant");
    assert_string_equal(str(result(r, "due_date")), "2024-05-15");
    assert_true(json_number_value(result(r, "subtotal")) == 3001);
    assert_true(json_number_value(result(r, "total")) == 3241.08);
    assert_true(json_is_false(result(r, "paid")));
    /* provenance in PDF points: the total's word sits at x=140 */
    json_t *tot = json_array_get(json_object_get(r, "results"), 9);
    assert_string_equal(str(json_object_get(tot, "key")), "total");
    assert_int_equal(json_integer_value(json_object_get(tot, "page")), 1);
    assert_true(json_number_value(json_array_get(json_object_get(tot, "bbox"), 0)) == 140);
    json_decref(recs);
    ib_run_free(run);
    ib_flow_free(f);
}

static void test_validate_and_errors(void **state)
{
    (void)state;
    ib_flow *f = custom_flow("{\"steps\": [{\"type\": \"process_files\"},"
                             " {\"type\": \"apply_refiner\", \"program\": \"refiners/invoice.ibrefiner\"},"
                             " {\"type\": \"validate\", \"rules\": ["
                             "  {\"field\": \"total\", \"max\": 1000},"
                             "  {\"field\": \"invoice_no\", \"regex\": \"^[0-9]+$\"},"
                             "  {\"field\": \"vendor\", \"one_of\": [\"Initech\", \"Hooli\"]},"
                             "  {\"field\": \"due_date\", \"required\": true},"
                             "  {\"field\": \"bill_to\", \"type\": \"INT\"},"
                             "  {\"field\": \"subtotal\", \"min\": 0, \"type\": \"FLOAT\"}]}]}");
    ib_run *run = ib_run_new(f, &(ib_engine_opts){.out_dirfd = -1});
    json_t *recs = run_file(run, "batch.txt"); /* no split step: one record */
    assert_int_equal(json_array_size(recs), 1);
    json_t *v = json_object_get(json_array_get(recs, 0), "validation");
    char *s = json_dumps(v, JSON_COMPACT);
    /* vendor is null here: rules other than required skip absent values */
    assert_int_equal(json_array_size(v), 2);
    assert_string_equal(str(json_object_get(json_array_get(v, 0), "msg")),
                        "invoice_no: 'A-100' does not match ^[0-9]+$");
    assert_string_equal(str(json_object_get(json_array_get(v, 0), "rule")), "regex");
    assert_string_equal(str(json_object_get(json_array_get(v, 1), "msg")),
                        "due_date: required, but it has no value");
    assert_string_equal(str(json_object_get(json_array_get(v, 1), "field")), "due_date");
    free(s);
    assert_null(json_object_get(json_array_get(recs, 0), "class")); /* no classify step */
    json_decref(recs);

    recs = run_file(run, "invoice.txt");
    v = json_object_get(json_array_get(recs, 0), "validation");
    assert_int_equal(json_array_size(v), 4);
    assert_string_equal(str(json_object_get(json_array_get(v, 0), "msg")),
                        "total: 1344.06 is more than the maximum 1000");
    assert_string_equal(str(json_object_get(json_array_get(v, 1), "msg")),
                        "invoice_no: 'INV-2024-001' does not match ^[0-9]+$");
    assert_string_equal(str(json_object_get(json_array_get(v, 2), "msg")),
                        "vendor: 'ACME Corporation' is not one of the allowed values");
    assert_string_equal(str(json_object_get(json_array_get(v, 3), "msg")), "bill_to: 'Jane Doe' is not INT");
    /* values are not changed by validation */
    assert_true(json_number_value(result(json_array_get(recs, 0), "total")) == 1344.06);
    json_decref(recs);

    /* an unreadable file is a record with an error; the run goes on */
    recs = run_file(run, "corrupt.png");
    assert_int_equal(json_array_size(recs), 1);
    json_t *e = json_array_get(recs, 0);
    assert_non_null(strstr(str(json_object_get(e, "error")), "corrupt.png"));
    assert_null(json_object_get(e, "results"));
    assert_int_equal(json_integer_value(json_object_get(e, "record_index")), 0);
    json_decref(recs);
    char err[256];
    assert_int_equal(ib_run_file_error(run, "x.bin", "bad base64", &recs, err, sizeof err), 0);
    assert_string_equal(str(json_object_get(json_array_get(recs, 0), "error")), "bad base64");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(recs, 0), "file_index")), 3);
    json_decref(recs);
    ib_run_stats st;
    ib_run_get_stats(run, &st);
    assert_int_equal(st.files, 4);
    assert_int_equal(st.runtime_errors, 2);
    ib_run_free(run);
    ib_flow_free(f);
}

static void test_split_by_page_and_failed_fields(void **state)
{
    (void)state;
    ib_flow *f =
        custom_flow("{\"steps\": [{\"type\": \"process_files\"}, {\"type\": \"split\", \"by\": \"page\"},"
                    " {\"type\": \"apply_refiner\", \"program\": \"refiners/generic.ibrefiner\"}]}");
    char path[600];
    snprintf(path, sizeof path, "%s/pages.txt", tmp);
    FILE *fp = fopen(path, "w");
    fputs("Page one\nTotal: 1\n\fPage two\nTotal: x\n\fPage three\nTotal: 3\n", fp);
    fclose(fp);
    ib_run *run = ib_run_new(f, &(ib_engine_opts){.out_dirfd = -1});
    size_t len;
    char *bytes = slurp(path, &len);
    json_t *recs = NULL;
    char err[256];
    assert_int_equal(ib_run_file(run, "pages.txt", bytes, len, &recs, err, sizeof err), 0);
    free(bytes);
    assert_int_equal(json_array_size(recs), 3);
    assert_string_equal(str(result(json_array_get(recs, 1), "title")), "Page two");
    assert_true(json_number_value(result(json_array_get(recs, 2), "total")) == 3);
    /* "Total: x" does not match the pattern: null, not an error */
    assert_true(json_is_null(result(json_array_get(recs, 1), "total")));
    json_decref(recs);
    ib_run_free(run);
    ib_flow_free(f);

    /* a failing formula: value "ERROR", an error message, other fields still run */
    f = custom_flow_with(
        "{\"steps\": [{\"type\": \"process_files\"}, {\"type\": \"apply_refiner\", \"program\": "
        "\"refiners/bad.ibrefiner\"}]}",
        "bad.ibrefiner",
        "{\"fields\": [{\"name\": \"n\", \"formula\": \"number(scan_right(INPUT_COL, 'Paid:'))\"},"
        " {\"name\": \"ok\", \"formula\": \"upper(scan_right(INPUT_COL, 'Paid:'))\"}]}");
    run = ib_run_new(f, &(ib_engine_opts){.out_dirfd = -1});
    recs = run_file(run, "invoice.txt");
    json_t *n = json_array_get(json_object_get(json_array_get(recs, 0), "results"), 0);
    assert_string_equal(str(json_object_get(n, "value")), "ERROR");
    assert_string_equal(str(json_object_get(n, "error")), "number: no number in 'yes'");
    assert_string_equal(str(result(json_array_get(recs, 0), "ok")), "YES");
    json_decref(recs);
    ib_run_stats st;
    ib_run_get_stats(run, &st);
    assert_int_equal(st.runtime_errors, 1);
    ib_run_free(run);
    ib_flow_free(f);
}

static json_t *load_json(const char *path)
{
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) fail_msg("%s: %s", path, je.text);
    return j;
}

static void test_outputs(void **state)
{
    (void)state;
    ib_flow *f = fixture_flow();
    char out[512], p[1024], err[512];
    snprintf(out, sizeof out, "%s/out", tmp);
    mkdir(out, 0755);
    int ofd = open(out, O_RDONLY | O_DIRECTORY);
    ib_engine_opts o = {
        .out_dirfd = ofd, .out_prefix = "/jay/out", .job_id = "J1", .binary_path = "/jay/sol.ibsolution"};
    ib_run *run = ib_run_new(f, &o);
    json_t *recs = run_file(run, "batch.txt");
    assert_string_equal(str(json_object_get(json_array_get(recs, 1), "output_file_path")),
                        "/jay/out/s5_validate/batch.txt_1.ibdoc");
    json_decref(recs);
    json_decref(run_file(run, "batch.txt")); /* the same name again must not overwrite the first */
    json_decref(run_file(run, "corrupt.png"));
    assert_int_equal(ib_run_finish(run, err, sizeof err), 0);
    ib_run_free(run);
    close(ofd);

    static const char *const want[] = {"s1_process_files/batch.txt.ibdoc",
                                       "s2_split/batch.txt_0.ibdoc",
                                       "s2_split/batch.txt_2.ibdoc",
                                       "s3_classify/batch.txt_1.ibdoc",
                                       "s4_apply_refiner/batch.txt_1.ibdoc",
                                       "s5_validate/batch.txt_2.ibdoc",
                                       "s5_validate/batch.txt-1_0.ibdoc",
                                       "s1_process_files/corrupt.png.ibdoc",
                                       "batch.ibflowresults"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", out, want[i]);
        if (stat(p, &st) != 0) fail_msg("missing %s", want[i]);
    }
    snprintf(p, sizeof p, "%s/s1_process_files/batch.txt.ibdoc", out);
    json_t *d = load_json(p);
    assert_string_equal(str(json_object_get(d, "step")), "process_files");
    assert_non_null(strstr(str(json_object_get(d, "text")), "Invoice # B-200"));
    json_t *page = json_array_get(json_object_get(d, "pages"), 0);
    assert_int_equal(json_integer_value(json_object_get(page, "page")), 1);
    json_t *w0 = json_array_get(json_object_get(page, "words"), 0);
    assert_string_equal(str(json_object_get(w0, "text")), "INVOICE");
    assert_int_equal(json_array_size(json_object_get(w0, "bbox")), 4);
    json_t *l1 = json_array_get(json_object_get(page, "lines"), 1);
    assert_string_equal(str(json_object_get(l1, "text")), "Invoice # A-100");
    assert_int_equal(json_array_size(json_object_get(l1, "words")), 3);
    assert_null(json_object_get(d, "results"));
    json_decref(d);

    snprintf(p, sizeof p, "%s/s3_classify/batch.txt_1.ibdoc", out);
    d = load_json(p);
    assert_string_equal(str(json_object_get(d, "class")), "receipt");
    assert_null(json_object_get(d, "results"));
    assert_string_equal(str(json_object_get(d, "text")), "RECEIPT\nReceipt # R-7\nTotal: 5,00\n");
    json_decref(d);

    snprintf(p, sizeof p, "%s/s5_validate/batch.txt_0.ibdoc", out);
    d = load_json(p);
    assert_int_equal(json_integer_value(json_object_get(d, "record_index")), 0);
    assert_string_equal(str(result(d, "invoice_no")), "A-100");
    assert_true(json_is_array(json_object_get(d, "validation")));
    json_decref(d);

    snprintf(p, sizeof p, "%s/batch.ibflowresults", out);
    d = load_json(p);
    assert_string_equal(str(json_object_get(d, "job_id")), "J1");
    assert_string_equal(str(json_object_get(d, "binary_path")), "/jay/sol.ibsolution");
    json_t *res = json_object_get(d, "results");
    assert_int_equal(json_array_size(res), 3);
    assert_int_equal(json_array_size(json_object_get(json_array_get(res, 0), "records")), 3);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(res, 1), "file_index")), 1);
    assert_non_null(json_object_get(json_array_get(res, 2), "error"));
    json_decref(d);
    ib_flow_free(f);
}

/* Runs ib_once_main with stdout captured; returns the parsed output. */
static json_t *once(char **argv, int argc, int want_rc)
{
    char outp[600];
    snprintf(outp, sizeof outp, "%s/once.out", tmp);
    fflush(stdout);
    int saved = dup(1);
    int fd = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    close(fd);
    int rc = ib_once_main(argc, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    assert_int_equal(rc, want_rc);
    return want_rc == 0 ? load_json(outp) : NULL;
}

static void test_once(void **state)
{
    (void)state;
    char sol[1200], d1[1200], d2[1200];
    snprintf(sol, sizeof sol, "%s/tests/fixtures/solutions/invoice", src);
    char *argv[] = {"--once",
                    sol,
                    doc_path("invoice.txt", d1, sizeof d1),
                    doc_path("batch.txt", d2, sizeof d2),
                    "--config",
                    "currency=CHF"};
    json_t *j = once(argv, 6, 0);
    json_t *recs = json_object_get(j, "records");
    assert_int_equal(json_array_size(recs), 4);
    assert_string_equal(str(result(json_array_get(recs, 0), "currency")), "CHF");
    assert_string_equal(str(result(json_array_get(recs, 0), "invoice_no")), "INV-2024-001");
    json_decref(j);

    /* the same through an .ibsolution: package.json + <name>.ibflowbin, as the packager writes it */
    ib_flow *f = fixture_flow();
    char *bin;
    size_t len;
    assert_int_equal(ib_flow_encode(f, "invoice", "1.0.0", &bin, &len), 0);
    ib_flow_free(f);
    char zp[600], err[512];
    snprintf(zp, sizeof zp, "%s/invoice-1.0.0.ibsolution", tmp);
    int dfd = open(sol, O_RDONLY | O_DIRECTORY);
    ib_zip_extra extra = {"invoice.ibflowbin", bin, len};
    ib_zip_limits lim = {1u << 30, 10000};
    if (ib_zip_write_dir(dfd, &extra, 1, zp, 6, &lim, err, sizeof err) != 0) fail_msg("%s", err);
    close(dfd);
    free(bin);
    char *argv2[] = {"ibsol-runner", "--once", zp, d1};
    j = once(argv2, 4, 0);
    recs = json_object_get(j, "records");
    assert_int_equal(json_array_size(recs), 1);
    assert_string_equal(str(result(json_array_get(recs, 0), "customer")), "John Smith");
    assert_string_equal(str(result(json_array_get(recs, 0), "currency")), "USD");
    json_decref(j);

    char *argv3[] = {"--once", sol};
    once(argv3, 2, 2);
    char *argv4[] = {"--once", d1, d1}; /* a file is not a solution */
    once(argv4, 3, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_classify_refine),
        cmocka_unit_test(test_pdf),
        cmocka_unit_test(test_validate_and_errors),
        cmocka_unit_test(test_split_by_page_and_failed_fields),
        cmocka_unit_test(test_outputs),
        cmocka_unit_test(test_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
