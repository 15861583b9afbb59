/* PDF documents the tests generate (see doc_test_util.h): per-file errors (empty, encrypted, damaged beyond
 * use, damaged but readable, too many pages), pages and boxes, a page printed sideways, the layout rendering
 * against `pdftotext -layout` of the same file (regexes match the same way, with the values the generator
 * wrote; in-order line similarity), reading order on three-column pages, and memory on a 500-page PDF. The
 * real-world PDFs are test_fixtures_pdf's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <regex.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "doc_check.h"
#include "ib_doc.h"

static char tmpdir[64];

static int setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ibsol-docpdf-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char *argv[] = {"rm", "-rf", tmpdir, NULL};
    return dt_run(argv) == 0 ? 0 : -1;
}

static ib_doc *load(const char *name, const void *b, size_t len, uint32_t max_pages, char *err, size_t errsz)
{
    ib_doc_opts o = {0, NULL, max_pages};
    return ib_doc_load(name, b, len, &o, err, errsz);
}

/* Loads a generated document, failing the test with the engine's message if it does not load. */
static ib_doc *load_ok(const char *name, unsigned char *b, size_t len)
{
    char err[256] = "";
    ib_doc *d = load(name, b, len, 0, err, sizeof err);
    if (!d) fail_msg("%s: %s", name, err);
    free(b);
    return d;
}

/* Runs qpdf (a test package: deploy/install-deps.sh --test) on a generated PDF; the result's bytes. */
static char *qpdf(const unsigned char *pdf, size_t len, char *const *args, size_t *outlen)
{
    char in[128], out[128];
    snprintf(in, sizeof in, "%s/qpdf-in.pdf", tmpdir);
    snprintf(out, sizeof out, "%s/qpdf-out.pdf", tmpdir);
    assert_int_equal(dt_write(in, pdf, len), 0);
    char *argv[16] = {"qpdf"};
    int n = 1;
    for (; args[n - 1] && n < 12; n++)
        argv[n] = args[n - 1];
    argv[n++] = "--", argv[n++] = in, argv[n++] = out, argv[n] = NULL;
    int rc = dt_run(argv);
    if (rc < 0) fail_msg("qpdf did not start: install it (deploy/install-deps.sh --test)");
    if (rc != 0) fail_msg("qpdf %s exited with %d", args[0], rc);
    char *b = dt_read(out, outlen);
    assert_non_null(b);
    return b;
}

static void test_errors(void **state)
{
    char err[256] = "";
    assert_null(load("empty.pdf", "", 0, 0, err, sizeof err));
    assert_string_equal(err, "empty.pdf: empty file");

    size_t len, elen;
    unsigned char *form = dt_form_pdf(1, &len);
    char *const enc[] = {"--encrypt", "user-pw", "owner-pw", "256", NULL};
    char *secret = qpdf(form, len, enc, &elen);
    assert_null(load("secret.pdf", secret, elen, 0, err, sizeof err));
    assert_string_equal(err, "secret.pdf: encrypted PDF");
    free(secret);

    const char broken[] = "%PDF-1.4\n1 0 obj garbage";
    assert_null(load("invoice.pdf", broken, sizeof broken - 1, 0, err, sizeof err));
    assert_non_null(strstr(err, "invoice.pdf: damaged PDF"));

    /* Damaged but readable: the cross-reference table is garbled and startxref points nowhere. */
    assert_int_equal(dt_damage_pdf(form, len), 1);
    ib_doc *d = load("damaged.pdf", form, len, 0, err, sizeof err);
    if (!d) fail_msg("damaged.pdf: %s", err);
    assert_int_equal(d->npages, 1);
    char *text = layout_of(d);
    assert_non_null(strstr(text, "Case Tracking Number:"));
    free(text);
    ib_doc_free(d);
    free(form);

    /* Page limit. */
    form = dt_form_pdf(7, &len);
    assert_null(load("form.pdf", form, len, 3, err, sizeof err));
    assert_string_equal(err, "form.pdf: too many pages (7, limit 3)");
    d = load("form.pdf", form, len, 7, err, sizeof err);
    assert_non_null(d);
    assert_int_equal(d->npages, 7);
    ib_doc_free(d);
    free(form);
}

static void test_pages_and_boxes(void **state)
{
    struct {
        const char *name;
        unsigned char *pdf;
        size_t len;
        uint32_t pages;
    } files[] = {{"columns.pdf", NULL, 0, 15}, {"form.pdf", NULL, 0, 7},  {"prose.pdf", NULL, 0, 2},
                 {"transcript.pdf", NULL, 0, 1}, {"table.pdf", NULL, 0, 1}};
    files[0].pdf = dt_columns_pdf(15, 3, &files[0].len);
    files[1].pdf = dt_form_pdf(7, &files[1].len);
    files[2].pdf = dt_prose_pdf(&files[2].len);
    files[3].pdf = dt_transcript_pdf(&files[3].len);
    files[4].pdf = dt_table_pdf(&files[4].len);
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        ib_doc *d = load_ok(files[i].name, files[i].pdf, files[i].len);
        check_pdf_doc(d, files[i].pages);
        ib_doc_free(d);
    }
    /* A word's box where the generator drew it: "47698" at x 48, baseline 40, 8 pt, on a letter page. */
    size_t len;
    unsigned char *pdf = dt_columns_pdf(1, 3, &len);
    ib_doc *d = load_ok("columns.pdf", pdf, len);
    const ib_page *p = &d->pages[0];
    assert_true(fabs(p->width - 612) < 0.5 && fabs(p->height - 792) < 0.5);
    assert_string_equal(p->words[0].text, "47698");
    const ib_bbox *b = &p->words[0].box;
    print_message("  '47698' box %.1f %.1f %.1f %.1f\n", b->x0, b->y0, b->x1, b->y1);
    assert_true(fabs(b->x0 - 48) < 1.5);
    assert_true(b->x1 > 66 && b->x1 < 77); /* five digits of 4.4 to 5.1 pt, by font */
    assert_true(b->y0 > 30 && b->y0 < 40 && b->y1 > 38 && b->y1 < 43);
    ib_doc_free(d);
}

/* The sideways table's page, turned upright: landscape, each state and its figures on one line in order. */
static void check_sideways(const ib_doc *d)
{
    const ib_page *p = &d->pages[0];
    print_message("  page %.0f x %.0f\n", p->width, p->height);
    assert_true(fabs(p->width - 792) < 0.5 && fabs(p->height - 612) < 0.5);
    check_invariants(d);
    for (size_t s = 0; s < sizeof dt_states / sizeof *dt_states; s++) {
        int found = 0;
        for (uint32_t w = 0; w < p->nwords; w++) {
            if (strcmp(p->words[w].text, dt_states[s][0]) != 0) continue;
            const ib_line *ln = &p->lines[p->words[w].line];
            assert_int_equal(ln->nwords, 4);
            assert_int_equal(ln->words[0], w);
            for (int k = 1; k < 4; k++)
                assert_string_equal(p->words[ln->words[k]].text, dt_states[s][k]);
            found++;
        }
        assert_int_equal(found, 1);
    }
}

static void test_sideways_page(void **state)
{
    /* Text drawn bottom to top on a portrait page. */
    size_t len, rlen;
    unsigned char *pdf = dt_sideways_pdf(&len);
    char *const rot[] = {"--rotate=+90", NULL};
    char *rotated = qpdf(pdf, len, rot, &rlen);
    ib_doc *d = load_ok("sideways.pdf", pdf, len);
    check_sideways(d);
    ib_doc_free(d);
    /* The same page with /Rotate 90, as viewers show it (upright): what the real rotated fixture is. */
    d = load_ok("rotated.pdf", (unsigned char *)rotated, rlen);
    check_sideways(d);
    ib_doc_free(d);
}

static const struct layout_case {
    const char *name;
    double min_similarity; /* measured: see the printed values; bars leave a little room */
    const char *patterns[5];
    const char *values[5]; /* what the generator wrote: both renderings must give it */
} layout_cases[] = {
    {"table",
     0.95,
     {"NEEL KASHKARI +REP +([0-9]+)", "([0-9]+) REGISTERED VOTERS", "VOTER NOMINATED +YES +([0-9]+)",
      "GAVIN NEWSOM +DEM +([0-9]+)", "PRECINCT +([0-9A-Z]+) +ACTON"},
     {"387", "1532", "611", "412", "0850001A"}},
    {"form",
     0.95,
     {"Case Tracking Number: +([^ ]+)", "Date of Incident: +([0-9/]+)", "Age: +([0-9]+ Year [0-9]+ Months)",
      "Agency: +([A-Za-z ]+Welfare)", "Special Needs: +([A-Za-z]+ [A-Za-z]+)"},
     {"150109-DSP-Milw-505-90D", "01/09/2015", "3 Year 2 Months", "Bureau of Child Welfare", "None Reported"}},
    {"sideways",
     0.95,
     {"Totals +([0-9,]+)", "Alabama +([0-9,]+)", "Wyoming +([0-9,]+) +([0-9,]+)", "(November - 2015)", NULL},
     {"203,473", "18,870", "3,871", "November - 2015", NULL}},
    {"transcript",
     0.95,
     {"No\\. ([0-9-]+)", "^ *1 +(IN THE SUPREME COURT[A-Z ]*)", "Washington, (D\\.C\\.)", "^ *25 +([A-Za-z ]+)",
      NULL},
     {"18-1234", "IN THE SUPREME COURT OF THE UNITED STATES", "D.C.", "Alderson Reporting Company", NULL}},
    {"prose", 0.95, {"^ *(Tempora consequuntur) neque", NULL, NULL, NULL, NULL}, {"Tempora consequuntur"}},
    {"columns",
     0.88,
     {"(Vol\\. [0-9]+, No\\. [0-9]+)", "^ *([0-9]+) +Federal Register", "Directives; ([A-Za-z ]+Airplanes)",
      NULL, NULL},
     {"Vol. 85, No. 158", "47698", "Transport Category Airplanes", NULL, NULL}},
};

static unsigned char *layout_case_pdf(const char *name, size_t *len)
{
    if (strcmp(name, "table") == 0) return dt_table_pdf(len);
    if (strcmp(name, "form") == 0) return dt_form_pdf(2, len);
    if (strcmp(name, "sideways") == 0) return dt_sideways_pdf(len);
    if (strcmp(name, "transcript") == 0) return dt_transcript_pdf(len);
    if (strcmp(name, "prose") == 0) return dt_prose_pdf(len);
    return dt_columns_pdf(2, 3, len);
}

static void test_layout_matches_pdftotext(void **state)
{
    for (size_t i = 0; i < sizeof layout_cases / sizeof *layout_cases; i++) {
        const struct layout_case *c = &layout_cases[i];
        size_t len, rl;
        unsigned char *pdf = layout_case_pdf(c->name, &len);
        char path[128], refpath[128];
        snprintf(path, sizeof path, "%s/%s.pdf", tmpdir, c->name);
        snprintf(refpath, sizeof refpath, "%s/%s.layout.txt", tmpdir, c->name);
        assert_int_equal(dt_write(path, pdf, len), 0);
        char *argv[] = {"pdftotext", "-layout", path, refpath, NULL};
        int rc = dt_run(argv);
        if (rc != 0) fail_msg("pdftotext -layout %s: exit %d (poppler-utils: deploy/install-deps.sh --test)", path, rc);
        char *ref = dt_read(refpath, &rl);
        assert_non_null(ref);
        ib_doc *d = load_ok(path, pdf, len);
        char *ours = layout_of(d);
        double sim = dt_line_similarity(ref, ours);
        print_message("  layout similarity %-12s %.3f (bar %.2f)\n", c->name, sim, c->min_similarity);
        assert_true(sim >= c->min_similarity);
        for (int k = 0; k < 5 && c->patterns[k]; k++) {
            char *a = match(ref, c->patterns[k]), *b = match(ours, c->patterns[k]);
            if (!a || !b || strcmp(a, b) != 0 || strcmp(b, c->values[k]) != 0)
                print_message("  %s: /%s/ pdftotext '%s', ours '%s', written '%s'\n", c->name, c->patterns[k],
                              a ? a : "(none)", b ? b : "(none)", c->values[k]);
            assert_non_null(a);
            assert_non_null(b);
            assert_string_equal(a, b);
            assert_string_equal(b, c->values[k]);
            free(a), free(b);
        }
        free(ours), free(ref);
        ib_doc_free(d);
    }
}

static void test_three_columns_reading_order(void **state)
{
    size_t len;
    unsigned char *pdf = dt_columns_pdf(2, 3, &len);
    ib_doc *d = load_ok("columns.pdf", pdf, len);
    ib_text t;
    assert_int_equal(ib_doc_reading_text(d, &t), 0);
    char *c = collapse(t.text);
    /* Each column's opening sentence runs down several lines, each beside other columns' lines. */
    const char *at[3];
    for (int k = 0; k < 3; k++) {
        at[k] = strstr(c, dt_col_marker[k]);
        if (!at[k]) fail_msg("column %d's opening sentence is not whole in the reading text:\n%.600s", k + 1, c);
    }
    /* Column 1 is read before column 2, and column 2 before column 3. */
    assert_true(at[0] < at[1] && at[1] < at[2]);
    free(c);
    /* Blocks: no block holds words of two columns' opening sentences. */
    const ib_page *p = &d->pages[0];
    for (uint32_t b = 0; b < p->nblocks; b++) {
        const ib_block *bk = &p->blocks[b];
        int col1 = 0, col2 = 0, col3 = 0;
        for (uint32_t w = bk->first_word; w < bk->first_word + bk->nwords; w++) {
            col1 |= strcmp(p->words[w].text, "register") == 0;
            col2 |= strcmp(p->words[w].text, "Docket") == 0;
            col3 |= strcmp(p->words[w].text, "proposal,") == 0;
        }
        assert_true(col1 + col2 + col3 <= 1);
    }
    ib_text_free(&t);
    ib_doc_free(d);
}

/* ---- a generated 500-page PDF: load + layout time and peak memory ---- */


static long max_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void test_large_pdf(void **state)
{
    enum { PAGES = 500, LINES = 50 };
    membuf m = {0};
    cairo_surface_t *s = cairo_pdf_surface_create_for_stream(write_mem, &m, 612, 792);
    cairo_t *cr = cairo_create(s);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 10);
    char line[128];
    for (int p = 0; p < PAGES; p++) {
        for (int l = 0; l < LINES; l++) {
            snprintf(line, sizeof line, "Item %d.%d   Widget model %d    quantity %d    price %d.%02d EUR", p,
                     l, l * 7, l + 1, p + l, l);
            cairo_move_to(cr, 50, 60 + l * 14);
            cairo_show_text(cr, line);
        }
        cairo_show_page(cr);
    }
    cairo_destroy(cr);
    cairo_surface_destroy(s);
    long before = max_rss_kb();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char err[256] = "";
    ib_doc_opts o = {0, NULL, 0};
    ib_doc *d = ib_doc_load("big.pdf", m.p, m.len, &o, err, sizeof err);
    assert_non_null(d);
    assert_int_equal(d->npages, PAGES);
    ib_text t;
    assert_int_equal(ib_doc_layout_text(d, &t), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_non_null(strstr(t.text, "Item 499.49"));
    assert_int_equal(d->pages[123].nlines, LINES);
    print_message("  500-page PDF (%zu KB): load + layout %.2f s, peak RSS %ld MB (before %ld MB)\n",
                  m.len / 1024, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
                  max_rss_kb() / 1024, before / 1024);
#if !defined(__SANITIZE_ADDRESS__)
    assert_true(max_rss_kb() < 200 * 1024);
#endif
    ib_text_free(&t);
    ib_doc_free(d);
    free(m.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_pages_and_boxes),
        cmocka_unit_test(test_sideways_page),
        cmocka_unit_test(test_layout_matches_pdftotext),
        cmocka_unit_test(test_three_columns_reading_order),
        cmocka_unit_test(test_large_pdf),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
