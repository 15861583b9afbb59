/* PDF documents from the real fixtures: per-file errors, pages and boxes, rotated pages, the layout rendering
 * against `pdftotext -layout` references (regexes match the same way; in-order line similarity), reading
 * order on three-column pages, and memory on a generated 500-page PDF. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cairo-pdf.h>
#include <cairo.h>
#include <ctype.h>
#include <regex.h>
#include <sys/resource.h>
#include <time.h>

#include "doc_test_util.h"
#include "ib_doc.h"

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

static char *layout_of(const ib_doc *d)
{
    ib_text t;
    assert_int_equal(ib_doc_layout_text(d, &t), 0);
    free(t.spans);
    return t.text;
}

static void test_errors(void **state)
{
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

/* Structural invariants every builder must keep. */
static void check_invariants(const ib_doc *d)
{
    for (uint32_t p = 0; p < d->npages; p++) {
        const ib_page *pg = &d->pages[p];
        uint32_t seen = 0;
        for (uint32_t w = 0; w < pg->nwords; w++) {
            const ib_word *wd = &pg->words[w];
            assert_true(wd->text[0] != '\0');
            for (const char *c = wd->text; *c; c++)
                assert_false(*c == ' ' || *c == '\n' || *c == '\t');
            assert_true(wd->box.x0 <= wd->box.x1 && wd->box.y0 <= wd->box.y1);
            assert_true(wd->box.x0 >= -1 && wd->box.x1 <= pg->width + 1);
            assert_true(wd->box.y0 >= -1 && wd->box.y1 <= pg->height + 1);
            assert_true(wd->line < pg->nlines && wd->block < pg->nblocks);
            const ib_block *b = &pg->blocks[wd->block];
            assert_true(w >= b->first_word && w < b->first_word + b->nwords);
        }
        for (uint32_t l = 0; l < pg->nlines; l++) {
            const ib_line *ln = &pg->lines[l];
            assert_true(ln->nwords > 0);
            for (uint32_t k = 0; k < ln->nwords; k++) {
                assert_int_equal(pg->words[ln->words[k]].line, l);
                if (k > 0) assert_true(pg->words[ln->words[k]].box.x0 >= pg->words[ln->words[k - 1]].box.x0);
            }
            seen += ln->nwords;
        }
        assert_int_equal(seen, pg->nwords);
        for (uint32_t b = 1; b < pg->nblocks; b++)
            assert_int_equal(pg->blocks[b].first_word,
                             pg->blocks[b - 1].first_word + pg->blocks[b - 1].nwords);
    }
}

static void test_pages_and_boxes(void **state)
{
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
        assert_int_equal(d->kind, IB_DOC_PDF);
        assert_int_equal(d->npages, files[i].pages);
        assert_true(d->char_w > 1 && d->char_w < 20 && d->line_h > 2 && d->line_h < 40);
        check_invariants(d);
        ib_text t;
        assert_int_equal(ib_doc_layout_text(d, &t), 0);
        size_t ff = 0;
        for (size_t k = 0; k < t.len; k++)
            ff += t.text[k] == '\f';
        assert_int_equal(ff, files[i].pages - 1);
        for (size_t k = 0; k < t.nspans; k++) {
            const char *w = d->pages[t.spans[k].page].words[t.spans[k].word].text;
            assert_memory_equal(t.text + t.spans[k].start, w, strlen(w));
        }
        ib_text_free(&t);
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

/* The first capture group (or the whole match) of pattern in text, or NULL. */
static char *match(const char *text, const char *pattern)
{
    regex_t re;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NEWLINE), 0);
    regmatch_t m[2];
    char *out = NULL;
    if (regexec(&re, text, 2, m, 0) == 0) {
        int g = m[1].rm_so >= 0 ? 1 : 0;
        out = strndup(text + m[g].rm_so, (size_t)(m[g].rm_eo - m[g].rm_so));
    }
    regfree(&re);
    return out;
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

/* Collapses runs of white space to one space. */
static char *collapse(const char *s)
{
    char *o = malloc(strlen(s) + 1), *w = o;
    for (; *s; s++) {
        if (isspace((unsigned char)*s)) {
            if (w > o && w[-1] != ' ') *w++ = ' ';
        } else {
            *w++ = *s;
        }
    }
    *w = '\0';
    return o;
}

static void test_three_columns_reading_order(void **state)
{
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
        cmocka_unit_test(test_rotated_page),
        cmocka_unit_test(test_layout_matches_pdftotext),
        cmocka_unit_test(test_three_columns_reading_order),
        cmocka_unit_test(test_large_pdf),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    return rc;
}
