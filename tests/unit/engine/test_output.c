/* Unit tests of the .ibdoc writer: it writes documents straight to the file, so each test compares its bytes with
 * what jansson writes for the same document built as a tree (the writer's former way, kept here as the reference):
 * a text document, real PDFs, OCR confidences, odd numbers (negative zero, exponents, more than hundredths), and
 * strings that need escaping or are not valid UTF-8; each also as a later step writes it, from the body the first
 * step kept, and a body too long to keep. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four headers above first */
#include <cmocka.h>

#include "doc_test_util.h"
#include "engine_int.h"
#include "eval_int.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the reference: the document as a jansson tree ---- */

static json_t *box_json(const ib_bbox *b)
{
    return json_pack("[ffff]", round(b->x0 * 100) / 100, round(b->y0 * 100) / 100, round(b->x1 * 100) / 100,
                     round(b->y1 * 100) / 100);
}

static json_t *reference(const ib_out_ibdoc *d)
{
    json_t *pages = json_array();
    for (uint32_t p = 0; d->doc && p < d->doc->npages; p++) {
        const ib_page *pg = &d->doc->pages[p];
        json_t *words = json_array(), *lines = json_array();
        for (uint32_t w = 0; w < pg->nwords; w++) {
            const ib_word *wd = &pg->words[w];
            json_t *jw =
                json_pack("{s:o,s:o,s:i,s:i}", "text", ib_json_text(wd->text, strlen(wd->text)), "bbox",
                          box_json(&wd->box), "line", (json_int_t)wd->line, "block", (json_int_t)wd->block);
            if (wd->conf >= 0) json_object_set_new(jw, "conf", json_real(round(wd->conf * 10) / 10));
            json_array_append_new(words, jw);
        }
        for (uint32_t l = 0; l < pg->nlines; l++) {
            const ib_line *ln = &pg->lines[l];
            json_t *idx = json_array();
            char *text = calloc(1, 1);
            size_t n = 0;
            for (uint32_t k = 0; k < ln->nwords; k++) {
                if (ln->words[k] >= pg->nwords) continue;
                json_array_append_new(idx, json_integer(ln->words[k]));
                const char *t = pg->words[ln->words[k]].text;
                size_t tl = strlen(t);
                text = realloc(text, n + tl + 2);
                if (n) text[n++] = ' ';
                memcpy(text + n, t, tl);
                n += tl;
            }
            json_array_append_new(lines, json_pack("{s:o,s:o,s:o}", "text", ib_json_text(text, n), "bbox",
                                                   box_json(&ln->box), "words", idx));
            free(text);
        }
        json_array_append_new(pages, json_pack("{s:i,s:f,s:f,s:o,s:o}", "page", (json_int_t)p + 1, "width",
                                               pg->width, "height", pg->height, "lines", lines, "words", words));
    }
    json_t *j = json_pack("{s:o,s:i,s:i,s:s}", "file_name", ib_json_text(d->file_name, strlen(d->file_name)),
                          "file_index", (json_int_t)d->file_index, "record_index", (json_int_t)d->record_index,
                          "step", d->step);
    json_object_set_new(j, "text", d->layout ? ib_json_text(d->layout->text, d->layout->len) : json_string(""));
    json_object_set_new(j, "pages", pages);
    if (d->cls) json_object_set_new(j, "class", json_string(d->cls));
    if (d->results) json_object_set(j, "results", (json_t *)d->results);
    if (d->validation) json_object_set(j, "validation", (json_t *)d->validation);
    return j;
}

/* ---- the comparison ---- */

static char dir[64];

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/ibsol-test-output-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes d with the writer and checks its bytes against jansson's dump of the reference tree. */
static void check_same(const ib_out_ibdoc *d, const char *what)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    assert_true(dfd >= 0);
    char err[256] = "";
    assert_int_equal(ib_out_write_ibdoc(dfd, "s1_process_files", "doc.ibdoc", d, err, sizeof err), 0);
    close(dfd);
    char path[128];
    snprintf(path, sizeof path, "%s/s1_process_files/doc.ibdoc", dir);
    size_t len = 0;
    char *ours = dt_read(path, &len);
    assert_non_null(ours);
    json_t *ref = reference(d);
    char *want = json_dumps(ref, IB_OUT_JSON_FLAGS);
    assert_non_null(want);
    if (strcmp(ours, want) != 0) {
        size_t i = 0;
        while (ours[i] && ours[i] == want[i]) i++;
        fail_msg("%s: the .ibdoc differs from jansson's at byte %zu:\n ours: %.120s\n want: %.120s", what, i,
                 ours + (i > 40 ? i - 40 : 0), want + (i > 40 ? i - 40 : 0));
    }
    assert_int_equal(len, strlen(want));
    free(want);
    json_decref(ref);
    free(ours);
}

/* Checks the record's .ibdoc written alone, then as a run writes it: after a first step that keeps its body (the
 * layout text and pages), a later step that copies that body. */
static void check_doc(ib_doc *doc, const char *name, const char *cls, json_t *results, json_t *validation)
{
    ib_text layout = {0};
    assert_int_equal(ib_doc_layout_text(doc, &layout), 0);
    ib_out_ibdoc d = {.file_name = name, .file_index = 3, .record_index = 1, .step = "apply_refiner", .doc = doc,
                      .layout = &layout, .cls = cls, .results = results, .validation = validation};
    check_same(&d, name);
    ib_out_body body = {0};
    ib_out_ibdoc first = {.file_name = name, .file_index = 3, .record_index = 1, .step = "process_files",
                          .doc = doc, .layout = &layout, .body = &body};
    check_same(&first, name);
    assert_true(body.ready && body.len > 0);
    d.body = &body;
    check_same(&d, name);
    ib_out_body_free(&body);
    ib_text_free(&layout);
}

static void test_text_document(void **state)
{
    const char *text = "INVOICE  No. INV-1001\n\nVendor: ACME \"Supplies\" Ltd.  Total: 1,234.50 EUR\n"
                       "Path C:\\temp\\a.txt  caf\xC3\xA9  \xE6\x97\xA5\xE6\x9C\xAC  emoji \xF0\x9F\x98\x80\n";
    char err[256];
    ib_doc_opts opts = {0};
    ib_doc *doc = ib_doc_load("in.txt", text, strlen(text), &opts, err, sizeof err);
    assert_non_null(doc);
    json_t *results = json_pack("[{s:s,s:s,s:s,s:[ffff]}]", "key", "total", "value", "1234.5", "field_type",
                                "NUMBER", "bbox", 1.0, 2.5, 30.0, 3.0);
    json_t *validation = json_pack("{s:b}", "ok", 1);
    check_doc(doc, "in \"quoted\".txt", "invoice", results, validation);
    check_doc(doc, "plain.txt", NULL, NULL, NULL);
    json_decref(results);
    json_decref(validation);
    ib_doc_free(doc);
}

static void test_pdf_documents(void **state)
{
    /* Generated documents of every shape the engine meets: columns, a dense table, a multi-page form, a
     * transcript in a monospaced font, a page printed sideways. */
    static const char *const names[] = {"columns.pdf", "table.pdf", "form.pdf", "transcript.pdf", "sideways.pdf"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t len = 0;
        unsigned char *bytes = i == 0   ? dt_columns_pdf(2, 3, &len)
                               : i == 1 ? dt_table_pdf(&len)
                               : i == 2 ? dt_form_pdf(3, &len)
                               : i == 3 ? dt_transcript_pdf(&len)
                                        : dt_sideways_pdf(&len);
        char err[256];
        ib_doc_opts opts = {0};
        ib_doc *doc = ib_doc_load(names[i], bytes, len, &opts, err, sizeof err);
        free(bytes);
        if (!doc) fail_msg("%s: %s", names[i], err);
        assert_true(doc->npages >= 1 && doc->pages[0].nwords > 10);
        check_doc(doc, names[i], NULL, NULL, NULL);
        ib_doc_free(doc);
    }
}

static void set_text(ib_word *w, const char *text)
{
    free(w->text);
    w->text = strdup(text);
}

static void test_odd_numbers_and_strings(void **state)
{
    const char *text = "a b c d e f g h\ni j k l m n o p\n";
    char err[256];
    ib_doc_opts opts = {0};
    ib_doc *doc = ib_doc_load("odd.txt", text, strlen(text), &opts, err, sizeof err);
    assert_non_null(doc);
    ib_page *pg = &doc->pages[0];
    assert_true(pg->nwords >= 16);
    /* reals on both of the writer's paths: hundredths below 1e5, and everything else through "%.7g" */
    static const double odd[][4] = {
        {-0.0, 0.004, 0.005, -0.01},           {99999.99, 100000.5, 123456.78, 1e7},
        {12345678.9, 1e-5, -2.5e-7, 3.14159},  {0.1, 0.2, 0.3, 1e21},
        {-99999.99, -100000.0, 65536.0, 7.0},  {1.005, 2.675, 1234.5678, 0.015},
        {9999999.0, 9999999.5, 1e15, -1e-300}, {595.2756, 841.8898, 0.07, 42.42}};
    for (size_t w = 0; w < sizeof odd / sizeof odd[0]; w++)
        pg->words[w].box = (ib_bbox){odd[w][0], odd[w][1], odd[w][2], odd[w][3]};
    pg->width = 595.2756;
    pg->height = 1e7;
    /* OCR confidences, on both paths too */
    static const float conf[] = {0.0f, 93.25f, 100.0f, 55.55f, 0.04f, -0.0f};
    for (size_t w = 0; w < sizeof conf / sizeof conf[0]; w++)
        pg->words[8 + w].conf = conf[w];
    /* strings: escapes, control characters, a slash, DEL, and bytes that are not UTF-8 */
    set_text(&pg->words[0], "q\"uote\\back/slash");
    set_text(&pg->words[1], "ctl\x01\x02\x1f\x7f\b\f\r\t\n");
    set_text(&pg->words[2], "bad\xff\xfe" "byte");
    set_text(&pg->words[3], "cut\xC3");
    set_text(&pg->words[4], "overlong\xC0\xAF" "and\xED\xA0\x80surrogate");
    set_text(&pg->words[5], "\xF4\x90\x80\x80" "past-max");
    check_doc(doc, "odd\x01name\xff.txt", "c\"ls", NULL, NULL);

    /* a layout text of our own, with the same troubles */
    ib_text layout = {.text = strdup("line\none\t\"two\"\\\x05\xe9\n"), .len = 0};
    layout.len = strlen(layout.text);
    ib_out_ibdoc d = {.file_name = "x", .step = "process_files", .doc = doc, .layout = &layout};
    check_same(&d, "own layout");
    free(layout.text);
    /* no document at all (an unreadable file's record) */
    ib_out_ibdoc none = {.file_name = "gone.pdf", .step = "process_files"};
    check_same(&none, "no document");
    ib_doc_free(doc);
}

/* A body past IB_OUT_BODY_MAX is not kept: each step writes it again, with the same bytes. */
static void test_long_document_body_not_kept(void **state)
{
    size_t n = IB_OUT_BODY_MAX / 6; /* words of 5 letters: the pages' JSON is ten times the text */
    char *text = malloc(n + 1);
    assert_non_null(text);
    for (size_t i = 0; i < n; i++) text[i] = i % 80 == 79 ? '\n' : i % 6 == 5 ? ' ' : (char)('a' + i % 26);
    text[n] = '\0';
    char err[256];
    ib_doc_opts opts = {0};
    ib_doc *doc = ib_doc_load("long.txt", text, n, &opts, err, sizeof err);
    free(text);
    if (!doc) fail_msg("long.txt: %s", err);
    ib_text layout = {0};
    assert_int_equal(ib_doc_layout_text(doc, &layout), 0);
    ib_out_body body = {0};
    ib_out_ibdoc d = {.file_name = "long.txt", .step = "process_files", .doc = doc, .layout = &layout,
                      .body = &body};
    check_same(&d, "long.txt");
    assert_true(body.too_big && !body.ready && !body.bytes);
    d.step = "apply_refiner";
    check_same(&d, "long.txt, second step");
    ib_text_free(&layout);
    ib_doc_free(doc);
}

static void test_write_errors(void **state)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    char err[256] = "";
    ib_out_ibdoc d = {.file_name = "a", .step = "process_files"};
    /* a file where the step folder should be */
    int fd = openat(dfd, "taken", O_WRONLY | O_CREAT, 0644);
    close(fd);
    assert_int_equal(ib_out_write_ibdoc(dfd, "taken", "doc.ibdoc", &d, err, sizeof err), -1);
    assert_non_null(strstr(err, "output folder taken"));
    close(dfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_text_document, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pdf_documents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_odd_numbers_and_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_document_body_not_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
