/* Unit tests of the ibsol command's pure parts: the progress bar's text, tables cut to a width, CSV quoting,
 * sizes, and the profiles file (several profiles kept, mode 0600, a broken file named). Registered by
 * cli/CMakeLists.txt, against the library of those parts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../ib_testutil.h"
#include "ibsol.h"

/* What ibsol.c defines for the whole program. */
cli_state cli;
volatile sig_atomic_t cli_interrupted;
void cli_err(const char *fmt, ...)
{
    (void)fmt;
}

static void test_bar_text(void **state)
{
    ui_progress p = {.label = "job", .unit = "files", .total = 10, .done = 3, .start = 100.0};
    char out[256];
    /* 3 files in 1.5 s: 2 a second, 7 left: 0:04; the bar takes what the text leaves of 80 columns (38), 30%
     * of it filled */
    ui_bar_text(&p, 101.5, 80, out, sizeof out);
    assert_string_equal(out, "job [###########...........................] 3/10 files  2.0 files/s  0:04 left");
    assert_true(strlen(out) <= 80);
}

static void test_bar_bytes_and_resume(void **state)
{
    /* a resumed upload: the 1 MiB held before it counts as done but not in the rate */
    ui_progress p = {.label = "upload 1/2 files", .unit = "B", .total = 4u << 20, .done = 3u << 20,
                     .base = 1u << 20, .start = 10.0};
    char out[256];
    ui_bar_text(&p, 12.0, 100, out, sizeof out);
    assert_string_equal(out, "upload 1/2 files [##############################..........] 3.0 MiB/4.0 MiB  "
                             "1.0 MiB/s  0:01 left");
    /* too narrow for a bar: the numbers alone */
    ui_bar_text(&p, 12.0, 40, out, sizeof out);
    assert_string_equal(out, "upload 1/2 files 3.0 MiB/4.0 MiB  1.0 MiB/s  0:01 left");
    /* nothing moved yet: no rate and no guess */
    ui_progress q = {.label = "job", .unit = "files", .total = 5, .start = 1.0};
    ui_bar_text(&q, 5.0, 60, out, sizeof out);
    assert_string_equal(out, "job [........................................] 0/5 files"); /* a bar is 40 columns at most */
}

static char *print_table(const ui_table *t, int width)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ui_table_print(t, f, width, 0);
    fclose(f);
    return buf;
}

static void test_table(void **state)
{
    static const char *const head[] = {"FILE", "FIELD", "VALUE"};
    ui_table t;
    ui_table_init(&t, 3, head);
    const char *r1[] = {"a.pdf", "total", "224.98"};
    const char *r2[] = {"Überweisung.pdf", "notes", "line one\nline two, and a long tail of words"};
    ui_table_row(&t, r1);
    ui_table_row(&t, r2);
    char *s = print_table(&t, 0); /* piped: nothing cut, line breaks in values become spaces */
    assert_string_equal(s, "FILE             FIELD  VALUE\n"
                           "a.pdf            total  224.98\n"
                           "Überweisung.pdf  notes  line one line two, and a long tail of words\n");
    free(s);
    s = print_table(&t, 40); /* a terminal: the widest column gives way, cut with an ellipsis */
    assert_string_equal(s, "FILE             FIELD  VALUE\n"
                           "a.pdf            total  224.98\n"
                           "Überweisung.pdf  notes  line one line…\n");
    free(s);
    ui_table_free(&t);
}

static void test_csv_and_cells(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ui_csv_field(f, "plain");
    fputc(',', f);
    ui_csv_field(f, "a,b");
    fputc(',', f);
    ui_csv_field(f, "say \"hi\"\nthere");
    fclose(f);
    assert_string_equal(buf, "plain,\"a,b\",\"say \"\"hi\"\"\nthere\"");
    free(buf);
    json_t *v = json_pack("[s, n, f, b, [i, i]]", "x", 224.98, 1, 1, 2);
    const char *want[] = {"x", "", "224.98", "true", "[1,2]"};
    for (size_t i = 0; i < 5; i++) {
        char *c = ui_cell(json_array_get(v, i));
        assert_string_equal(c, want[i]);
        free(c);
    }
    json_decref(v);
    char sz[32];
    ui_size(512, sz, sizeof sz);
    assert_string_equal(sz, "512 B");
    ui_size(1536, sz, sizeof sz);
    assert_string_equal(sz, "1.5 KiB");
    ui_size(3u << 30, sz, sizeof sz);
    assert_string_equal(sz, "3.00 GiB");
}

static void test_profiles(void **state)
{
    char dir[64], path[128], url[256], token[256], err[512];
    assert_non_null(tu_mkdtemp(dir));
    snprintf(path, sizeof path, "%s/xdg/ibsol/config", dir);
    /* no file: empty values, no error */
    assert_int_equal(cfg_read(path, "default", url, sizeof url, token, sizeof token, err, sizeof err), 0);
    assert_string_equal(url, "");
    assert_int_equal(cfg_write(path, "default", "http://a:1", "tok-a", err, sizeof err), 0);
    assert_int_equal(cfg_write(path, "prod", "https://b", "tok-b", err, sizeof err), 0);
    assert_int_equal(cfg_write(path, "default", "http://a:2", "tok-a2", err, sizeof err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(cfg_read(path, "prod", url, sizeof url, token, sizeof token, err, sizeof err), 0);
    assert_string_equal(url, "https://b");
    assert_string_equal(token, "tok-b");
    assert_int_equal(cfg_read(path, "default", url, sizeof url, token, sizeof token, err, sizeof err), 0);
    assert_string_equal(url, "http://a:2");
    assert_string_equal(token, "tok-a2");
    /* a broken file is named, with the place of the fault, and never overwritten by a login */
    FILE *f = fopen(path, "w");
    fputs("{\"profiles\": {\"default\": {\"url\": 5}}}", f);
    fclose(f);
    assert_int_equal(cfg_read(path, "default", url, sizeof url, token, sizeof token, err, sizeof err), -1);
    char want[512];
    snprintf(want, sizeof want, "config file '%s': profile 'default' must be an object of strings url and token",
             path);
    assert_string_equal(err, want);
    f = fopen(path, "w");
    fputs("{\"profiles\": ", f);
    fclose(f);
    assert_int_equal(cfg_write(path, "x", "u", "t", err, sizeof err), -1);
    snprintf(want, sizeof want, "config file '%s' line 1 column 13: ", path);
    assert_memory_equal(err, want, strlen(want));
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bar_text),      cmocka_unit_test(test_bar_bytes_and_resume),
        cmocka_unit_test(test_table),         cmocka_unit_test(test_csv_and_cells),
        cmocka_unit_test(test_profiles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
