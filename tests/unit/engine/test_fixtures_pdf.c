/* The real-world PDFs (IBSOL_FIXTURES/pdfs: public documents with `pdftotext -layout` references, see that
 * folder's README): per-file errors, pages and boxes, a rotated page, the layout rendering against the
 * references (regexes match the same way; in-order line similarity), reading order on three-column pages,
 * and OCR of rendered pages against their text layers. The generated documents of test_doc_pdf and
 * test_doc_ocr cover the same code in every run; this suite adds the variety of real files when
 * IBSOL_FIXTURES names them (set by whoever runs tests/run.sh or .ci/run), and is skipped,
 * saying why, otherwise (exit status 77: ctest shows it as skipped). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <leptonica/allheaders.h>
#include <poppler.h>
#include <regex.h>
#include <stdbool.h>

#include "doc_check.h"
#include "ib_doc.h"

/* Every test starts here: without IBSOL_FIXTURES it is skipped; a folder that is named but unreadable fails. */
#define NEED_FIXTURES()                                                                                        \
    do {                                                                                                       \
        if (!fixtures_root()) skip();                                                                          \
    } while (0)

static const char *fixtures_root(void)
{
    const char *root = getenv("IBSOL_FIXTURES");
    return root && *root ? root : NULL;
}

static char *dt_fixture(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/pdfs/%s", fixtures_root(), name);
    char *b = dt_read(path, len);
    if (!b) fail_msg("cannot read %s: IBSOL_FIXTURES must name the folder holding pdfs/", path);
    return b;
}

static ib_doc *load_fixture(const char *name, char *err, size_t errsz)
{
    size_t len = 0;
    char *b = dt_fixture(name, &len);
    assert_non_null(b);
    ib_doc_opts o = {0, NULL, 0};
    ib_doc *d = ib_doc_load(name, b, len, &o, err, errsz);
    free(b);
    return d;
}

static void test_errors(void **state)
{
    NEED_FIXTURES();
    char err[256] = "";
    assert_null(load_fixture("empty.pdf", err, sizeof err));
    assert_string_equal(err, "empty.pdf: empty file");
    assert_null(load_fixture("password-example.pdf", err, sizeof err));
    assert_string_equal(err, "password-example.pdf: encrypted PDF");
    const char broken[] = "%PDF-1.4\n1 0 obj garbage";
    ib_doc_opts o = {0, NULL, 0};
    assert_null(ib_doc_load("invoice.pdf", broken, sizeof broken - 1, &o, err, sizeof err));
    assert_non_null(strstr(err, "invoice.pdf: damaged PDF"));
    /* Damaged but readable. */
    ib_doc *d = load_fixture("malformed-from-issue-932.pdf", err, sizeof err);
    assert_non_null(d);
    assert_int_equal(d->npages, 1);
    assert_true(d->pages[0].nwords > 0);
    ib_doc_free(d);
    /* Page limit. */
    size_t len;
    char *b = dt_fixture("pdffill-demo.pdf", &len);
    o.max_pages = 3;
    assert_null(ib_doc_load("pdffill-demo.pdf", b, len, &o, err, sizeof err));
    assert_non_null(strstr(err, "too many pages"));
    free(b);
}

static void test_pages_and_boxes(void **state)
{
    NEED_FIXTURES();
    char err[256] = "";
    static const struct {
        const char *name;
        uint32_t pages;
    } files[] = {{"federal-register-2020-17221.pdf", 15}, {"pdffill-demo.pdf", 7},
                 {"150109DSP-Milw-505-90D.pdf", 2},       {"issue-33-lorem-ipsum.pdf", 2},
                 {"scotus-transcript-p1.pdf", 1},         {"la-precinct-bulletin-2014-p1.pdf", 1}};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        ib_doc *d = load_fixture(files[i].name, err, sizeof err);
        assert_non_null(d);
        check_pdf_doc(d, files[i].pages);
        ib_doc_free(d);
    }
    /* A word's box on a known page: "47698" (the page number) sits top left on a letter-sized page. */
    ib_doc *d = load_fixture("federal-register-2020-17221.pdf", err, sizeof err);
    const ib_page *p = &d->pages[0];
    assert_true(p->width > 600 && p->width < 620 && p->height > 780 && p->height < 800);
    assert_string_equal(p->words[0].text, "47698");
    assert_true(p->words[0].box.y1 < 80 && p->words[0].box.x0 < 100);
    ib_doc_free(d);
}

static void test_rotated_page(void **state)
{
    NEED_FIXTURES();
    char err[256] = "";
    ib_doc *d = load_fixture("nics-background-checks-2015-11-rotated.pdf", err, sizeof err);
    assert_non_null(d);
    const ib_page *p = &d->pages[0];
    assert_true(p->width > p->height); /* turned upright: a landscape table */
    check_invariants(d);
    /* "Alabama" and its first figure share a visual line, left to right. */
    int found = 0;
    for (uint32_t w = 0; w < p->nwords; w++) {
        if (strcmp(p->words[w].text, "Alabama") != 0) continue;
        const ib_line *ln = &p->lines[p->words[w].line];
        assert_int_equal(ln->words[0], w);
        assert_string_equal(p->words[ln->words[1]].text, "18,870");
        found = 1;
    }
    assert_true(found);
    ib_doc_free(d);
}

static const struct layout_case {
    const char *name;
    double min_similarity; /* measured: see the report; bars leave a little room */
    const char *patterns[5];
} layout_cases[] = {
    {"la-precinct-bulletin-2014-p1",
     0.95,
     {"NEEL KASHKARI +REP +([0-9]+)", "([0-9]+) REGISTERED VOTERS", "VOTER NOMINATED +YES +([0-9]+)",
      "GAVIN NEWSOM +DEM +([0-9]+)", "PRECINCT +([0-9A-Z]+) +ACTON"}},
    {"150109DSP-Milw-505-90D",
     0.95,
     {"Case Tracking Number: +([^ ]+)", "Date of Incident: +([0-9/]+)", "Age: +([0-9]+ Year [0-9]+ Months)",
      "Agency: +([A-Za-z ]+Welfare)", "Special Needs: +([A-Za-z ]+)"}},
    {"san-jose-pd-firearm-sample",
     0.95,
     {"NUMBER OF RECORDS RETURNED: ([0-9]+)", "Date Report Run : ([A-Za-z]+, [A-Za-z0-9-]+)",
      "UNKWN/UNPUBLSHD MAKE +([A-Z]+)", "^SHOTGUN +DOUBLE BARREL +([A-Z/]+ [A-Z]+ [A-Z]+)", "Page ([0-9]+)"}},
    {"nics-background-checks-2015-11-rotated",
     0.95,
     {"Totals +([0-9,]+)", "Alabama +([0-9,]+)", "Wyoming +([0-9,]+) +([0-9,]+)", "(November - 2015)", NULL}},
    {"cupertino_usd_4-6-16",
     0.95,
     {"([A-Z][a-z]+ [0-9]+, 2016)", "Sunnyvale, CA ([0-9]+)", "([0-9]+:[0-9]+ a\\.m\\.)",
      "(Board of Education)", NULL}},
    {"scotus-transcript-p1",
     0.95,
     {"No\\. ([0-9-]+)", "^ *1 +(IN THE SUPREME COURT[A-Z ]*)", "Washington, (D\\.C\\.)", NULL, NULL}},
    {"issue-33-lorem-ipsum", 0.95, {"^ *(Tempora co) +Neque labo", NULL, NULL, NULL, NULL}},
    {"malformed-from-issue-932", 0.95, {"^ *([0-9]{4}) +[0-9]+ +[0-9]+", "([0-9]+) *$", NULL, NULL, NULL}},
    {"pdffill-demo", 0.82, {"PDFill: (PDF Drawing)", "(Previous Page) +Next Page", NULL, NULL, NULL}},
    {"federal-register-2020-17221",
     0.88,
     {"Docket No\\. (FAA[^0-9]+[0-9]+[^0-9]+[0-9]+);", "RIN ([0-9]+[^0-9A]+AA[0-9]+)",
      "(Vol\\. [0-9]+, No\\. [0-9]+)", "(Federal Aviation Administration) +address", NULL}},
};

static void test_layout_matches_pdftotext(void **state)
{
    NEED_FIXTURES();
    char err[256] = "";
    for (size_t i = 0; i < sizeof layout_cases / sizeof *layout_cases; i++) {
        const struct layout_case *c = &layout_cases[i];
        char name[256], refname[256];
        snprintf(name, sizeof name, "%s.pdf", c->name);
        snprintf(refname, sizeof refname, "%s.layout.txt", c->name);
        size_t rl;
        char *ref = dt_fixture(refname, &rl);
        assert_non_null(ref);
        ib_doc *d = load_fixture(name, err, sizeof err);
        assert_non_null(d);
        char *ours = layout_of(d);
        double sim = dt_line_similarity(ref, ours);
        print_message("  layout similarity %-45s %.3f (bar %.2f)\n", c->name, sim, c->min_similarity);
        assert_true(sim >= c->min_similarity);
        for (int k = 0; k < 5 && c->patterns[k]; k++) {
            char *a = match(ref, c->patterns[k]), *b = match(ours, c->patterns[k]);
            if (!a || !b || strcmp(a, b) != 0)
                print_message("  %s: /%s/ reference '%s', ours '%s'\n", c->name, c->patterns[k],
                              a ? a : "(none)", b ? b : "(none)");
            assert_non_null(a);
            assert_non_null(b);
            assert_string_equal(a, b);
            free(a), free(b);
        }
        free(ours), free(ref);
        ib_doc_free(d);
    }
}

static void test_three_columns_reading_order(void **state)
{
    NEED_FIXTURES();
    char err[256] = "";
    ib_doc *d = load_fixture("federal-register-2020-17221.pdf", err, sizeof err);
    assert_non_null(d);
    ib_text t;
    assert_int_equal(ib_doc_reading_text(d, &t), 0);
    char *c = collapse(t.text);
    /* Sentences running down one column, each beside other columns' lines on the page. */
    assert_non_null(
        strstr(c, "This section of the FEDERAL REGISTER contains notices to the public of the proposed "
                  "issuance of rules and regulations. The purpose of these notices is to give interested "
                  "persons an opportunity to participate in the rule making prior to the adoption of the "
                  "final rules."));
    assert_non_null(strstr(c,
                           "Mail: U.S. Department of Transportation, Docket Operations, M– 30, West Building "
                           "Ground Floor, Room W12–140, 1200 New Jersey Avenue SE, Washington, DC 20590."));
    assert_non_null(
        strstr(c, "Before acting on this proposal, the FAA will consider all comments received by the "
                  "closing date for comments."));
    /* Column 1 is read before column 2, and column 2 before column 3. */
    const char *c1 = strstr(c, "Airworthiness Directives; The Boeing"),
               *c2 = strstr(c, "Federal eRulemaking Portal"),
               *c3 = strstr(c, "recommended change, and include");
    assert_true(c1 && c2 && c3 && c1 < c2 && c2 < c3);
    free(c);
    /* Blocks: the first column's opening paragraph is one block that holds nothing from column 2. */
    const ib_page *p = &d->pages[0];
    for (uint32_t b = 0; b < p->nblocks; b++) {
        const ib_block *bk = &p->blocks[b];
        int has_section = 0, has_portal = 0;
        for (uint32_t w = bk->first_word; w < bk->first_word + bk->nwords; w++) {
            has_section |= strcmp(p->words[w].text, "FEDERAL") == 0;
            has_portal |= strcmp(p->words[w].text, "eRulemaking") == 0;
        }
        assert_false(has_section && has_portal);
    }
    ib_text_free(&t);
    ib_doc_free(d);
}

/* ---- OCR of rendered fixture pages ---- */

/* Renders page `page` of a fixture PDF at dpi onto white. */
static cairo_surface_t *render_fixture(const char *name, int page, int dpi, double *pw, double *ph)
{
    size_t len;
    char *b = dt_fixture(name, &len);
    cairo_surface_t *s = render_pdf((const unsigned char *)b, len, page, dpi, pw, ph);
    free(b);
    return s;
}

static void test_png_of_fixture_page(void **state)
{
    NEED_FIXTURES();
    double pw, ph;
    cairo_surface_t *s = render_fixture("150109DSP-Milw-505-90D.pdf", 0, 200, &pw, &ph);
    ib_doc *ocr = ocr_png(s, 200, pw, ph);

    size_t plen;
    char *pdf = dt_fixture("150109DSP-Milw-505-90D.pdf", &plen);
    ib_doc *txt = load_bytes("150109DSP-Milw-505-90D.pdf", pdf, plen, 0);
    free(pdf);
    double share = compare_words(&txt->pages[0], &ocr->pages[0], 4.0);
    print_message("  OCR found %.0f%% of the text layer's words within 4 pt (%u OCR words)\n", share * 100,
                  ocr->pages[0].nwords);
    assert_true(share >= 0.80);
    /* The layout rendering of OCR output still serves label/value regexes. */
    ib_text t;
    assert_int_equal(ib_doc_layout_text(ocr, &t), 0);
    assert_non_null(strstr(t.text, "150109-DSP-Milw-505"));
    ib_text_free(&t);
    ib_doc_free(txt);
    ib_doc_free(ocr);
}


static void test_scanned_pdf_page(void **state)
{
    NEED_FIXTURES();
    double pw, ph;
    cairo_surface_t *img = render_fixture("san-jose-pd-firearm-sample.pdf", 0, 150, &pw, &ph);
    ib_doc *ocr = ocr_image_pdf(img, 150, pw, ph);
    size_t plen;
    char *pdf = dt_fixture("san-jose-pd-firearm-sample.pdf", &plen);
    ib_doc *txt = load_bytes("san-jose-pd-firearm-sample.pdf", pdf, plen, 0);
    free(pdf);
    double share = compare_words(&txt->pages[0], &ocr->pages[0], 5.0);
    print_message("  scanned PDF page: OCR found %.0f%% of the text layer's words within 5 pt\n",
                  share * 100);
    assert_true(share >= 0.70);
    ib_text t;
    assert_int_equal(ib_doc_layout_text(ocr, &t), 0);
    assert_non_null(strstr(t.text, "SAN JOSE POLICE"));
    ib_text_free(&t);
    ib_doc_free(txt);
    ib_doc_free(ocr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_pages_and_boxes),
        cmocka_unit_test(test_rotated_page),
        cmocka_unit_test(test_layout_matches_pdftotext),
        cmocka_unit_test(test_three_columns_reading_order),
        cmocka_unit_test(test_png_of_fixture_page),
        cmocka_unit_test(test_scanned_pdf_page),
    };
    if (!fixtures_root())
        printf("test_fixtures_pdf: skipped: IBSOL_FIXTURES is not set (it names the folder holding the "
               "real-world pdfs/, e.g. IBSOL_FIXTURES=/path/to/fixtures)\n");
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    ib_doc_thread_cleanup();
    return rc == 0 && !fixtures_root() ? 77 : rc;
}
