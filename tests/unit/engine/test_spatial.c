/* Unit tests of ib_spatial: anchors and scan_right / scan_below / scan_box on hand-built documents (a plain
 * text form laid out in character cells, and a PDF-like page in points), plus one through ib_doc_load. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ib_spatial.h"

/* ---------- hand-built documents ---------- */

static void add_word(ib_page *pg, const char *text, size_t len, ib_bbox box, uint32_t line)
{
    pg->words = realloc(pg->words, (pg->nwords + 1) * sizeof *pg->words);
    ib_word *w = &pg->words[pg->nwords];
    w->text = strndup(text, len);
    w->box = box, w->conf = -1, w->line = line, w->block = 0;
    ib_line *ln = &pg->lines[line];
    ln->words = realloc(ln->words, (ln->nwords + 1) * sizeof *ln->words);
    ln->words[ln->nwords++] = pg->nwords++;
    if (ln->nwords == 1) {
        ln->box = box;
    } else {
        if (box.x0 < ln->box.x0) ln->box.x0 = box.x0;
        if (box.x1 > ln->box.x1) ln->box.x1 = box.x1;
        if (box.y0 < ln->box.y0) ln->box.y0 = box.y0;
        if (box.y1 > ln->box.y1) ln->box.y1 = box.y1;
    }
}

static uint32_t new_line(ib_page *pg)
{
    pg->lines = realloc(pg->lines, (pg->nlines + 1) * sizeof *pg->lines);
    memset(&pg->lines[pg->nlines], 0, sizeof *pg->lines);
    return pg->nlines++;
}

/* A plain-text page as the text builder lays it out: column = x, text line number = y, words = runs of
 * non-spaces (ASCII here), visual lines only for text lines with words. */
static void text_page(ib_page *pg, const char *const *rows, size_t n)
{
    memset(pg, 0, sizeof *pg);
    pg->width = 80, pg->height = (double)n;
    for (size_t r = 0; r < n; r++) {
        const char *s = rows[r];
        uint32_t line = UINT32_MAX;
        for (size_t c = 0; s[c];) {
            if (s[c] == ' ') {
                c++;
                continue;
            }
            size_t e = c;
            while (s[e] && s[e] != ' ')
                e++;
            if (line == UINT32_MAX) line = new_line(pg);
            add_word(pg, s + c, e - c, (ib_bbox){(double)c, (double)r, (double)e, (double)r + 1}, line);
            c = e;
        }
    }
}

static ib_doc *new_doc(ib_doc_kind kind, uint32_t npages)
{
    ib_doc *d = calloc(1, sizeof *d);
    d->kind = kind, d->npages = npages;
    d->pages = calloc(npages, sizeof *d->pages);
    d->char_w = d->line_h = 1;
    return d;
}

static void free_doc(ib_doc *d)
{
    for (uint32_t p = 0; p < d->npages; p++) {
        ib_page *pg = &d->pages[p];
        for (uint32_t w = 0; w < pg->nwords; w++)
            free(pg->words[w].text);
        for (uint32_t l = 0; l < pg->nlines; l++)
            free(pg->lines[l].words);
        free(pg->words);
        free(pg->lines);
        free(pg->blocks);
    }
    free(d->pages);
    free(d);
}

static const char *const FORM[] = {
    "INVOICE",
    "First Name: John Smith          Invoice No: 12345",
    "Last Name:  Doe                 Date: 03/15/2024",
    "",
    "Due Date          Amount Due        Terms",
    "March 15, 2024    $1,234.56         Net 30",
    "",
    "Notes",
    "Thank you for your business",
    "Total: 99",
};

static int setup_form(void **state)
{
    ib_doc *d = new_doc(IB_DOC_TEXT, 1);
    text_page(&d->pages[0], FORM, sizeof FORM / sizeof *FORM);
    *state = d;
    return 0;
}

static int teardown(void **state)
{
    free_doc(*state);
    return 0;
}

/* ---------- checks ---------- */

typedef int (*scan_fn)(const ib_doc *, const char *, ib_wlist *);

static void scan_is(const ib_doc *d, scan_fn fn, const char *anchor, const char *want)
{
    ib_wlist l;
    int rc = fn(d, anchor, &l);
    if (rc != 0) fail_msg("anchor \"%s\": rc %d, want found", anchor, rc);
    char *t = ib_wlist_text(d, &l);
    int ok = t && !strcmp(t, want);
    if (!ok) print_error("anchor \"%s\": got \"%s\", want \"%s\"\n", anchor, t ? t : "(null)", want);
    free(t);
    ib_wlist_free(&l);
    if (!ok) fail();
}

static void box_is(const ib_doc *d, const char *anchor, double right, double below, const char *want)
{
    ib_wlist l;
    int rc = ib_scan_box(d, anchor, right, below, &l);
    if (rc != 0) fail_msg("box \"%s\": rc %d", anchor, rc);
    char *t = ib_wlist_text(d, &l);
    int ok = t && !strcmp(t, want);
    if (!ok) print_error("box \"%s\" %g x %g: got \"%s\", want \"%s\"\n", anchor, right, below, t, want);
    free(t);
    ib_wlist_free(&l);
    if (!ok) fail();
}

static void test_anchor(void **state)
{
    const ib_doc *d = *state;
    ib_anchor a;
    assert_int_equal(ib_anchor_find(d, "Name:", &a), 0); /* two occurrences: the first line wins */
    assert_int_equal(a.line, 1);
    assert_int_equal(a.first, 1);
    assert_int_equal(a.last, 1);
    assert_int_equal(ib_anchor_find(d, "Invoice No", &a), 0); /* "No" matches "No:" (punctuation left over) */
    assert_int_equal(a.line, 1);
    assert_int_equal(a.first, 4);
    assert_int_equal(a.last, 5);
    assert_true(a.box.x0 == 32 && a.box.x1 == 43 && a.box.y0 == 1 && a.box.y1 == 2);
    assert_int_equal(ib_anchor_find(d, "invoice", &a), 0); /* no exact match: any case, first in order */
    assert_int_equal(a.line, 0);
    assert_int_equal(ib_anchor_find(d, "Invoice", &a), 0); /* exact case beats an earlier other-case one */
    assert_int_equal(a.line, 1);
    assert_int_equal(ib_anchor_find(d, "  Due   Date ", &a), 0);
    assert_int_equal(a.line, 3);
    assert_int_equal(ib_anchor_find(d, "Tot", &a), 1); /* a word's letters cannot be left over */
    assert_int_equal(ib_anchor_find(d, "Totals", &a), 1);
    assert_int_equal(ib_anchor_find(d, "ame:", &a), 1); /* nor cut off at the front */
    assert_int_equal(ib_anchor_find(d, "", &a), 1);
    assert_int_equal(ib_anchor_find(d, " \t", &a), 1);
    assert_int_equal(ib_anchor_find(d, "Nowhere", &a), 1);
}

static void test_scan_right(void **state)
{
    const ib_doc *d = *state;
    scan_is(d, ib_scan_right, "First Name:", "John Smith"); /* stops at the column gap */
    scan_is(d, ib_scan_right, "Name:", "John Smith");
    scan_is(d, ib_scan_right, "Last Name", "Doe"); /* a 2-space gap right after the label is fine */
    scan_is(d, ib_scan_right, "Invoice No:", "12345");
    scan_is(d, ib_scan_right, "invoice no", "12345");
    scan_is(d, ib_scan_right, "Date:", "03/15/2024");
    scan_is(d, ib_scan_right, "Thank", "you for your business");
    scan_is(d, ib_scan_right, "Due Date", "Amount Due"); /* far first word, then up to the next gap */
    scan_is(d, ib_scan_right, "Total", "99");
    scan_is(d, ib_scan_right, "INVOICE", ""); /* found, nothing right of it */
    ib_wlist l = {(ib_wref *)1, 7};
    assert_int_equal(ib_scan_right(d, "Missing", &l), 1);
    assert_int_equal(l.n, 0);
    assert_null(l.refs);
}

static void test_scan_below(void **state)
{
    const ib_doc *d = *state;
    scan_is(d, ib_scan_below, "Due Date", "March 15, 2024"); /* extended past the header's width */
    scan_is(d, ib_scan_below, "Amount Due", "$1,234.56");
    scan_is(d, ib_scan_below, "Terms", "Net 30");
    scan_is(d, ib_scan_below, "Notes", "Thank you for your business");
    scan_is(d, ib_scan_below, "Last Name:", "Due Date"); /* skips the empty line */
    scan_is(d, ib_scan_below, "Total:", "");             /* nothing below on the page */
    scan_is(d, ib_scan_below, "12345", "03/15/2024");    /* widened, but not over the label "Date:" */
    ib_wlist l;
    assert_int_equal(ib_scan_below(d, "Missing", &l), 1);
}

static void test_scan_box(void **state)
{
    const ib_doc *d = *state;
    box_is(d, "Due Date", 10, 1, "March 15, 2024");
    box_is(d, "Due Date", 28, 1, "Amount Due\nMarch 15, 2024 $1,234.56"); /* Net: centre at 37.5 */
    box_is(d, "Due Date", 0, 0, "");
    box_is(d, "Notes", 30, 2, "Thank you for your business\nTotal: 99");
    box_is(d, "Notes", -5, -5, "");
    box_is(d, "First Name:", 11, 1, "John Smith\nLast Name: Doe");
    ib_wlist l;
    assert_int_equal(ib_scan_box(d, "Missing", 10, 10, &l), 1);
}

static void test_bboxes(void **state)
{
    const ib_doc *d = *state;
    ib_wlist l;
    assert_int_equal(ib_scan_box(d, "Notes", 30, 2, &l), 0);
    ib_pbox *b;
    size_t n;
    assert_int_equal(ib_wlist_bboxes(d, &l, &b, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(b[0].page, 0);
    assert_true(b[0].box.x0 == 0 && b[0].box.y0 == 8 && b[0].box.x1 == 27 && b[0].box.y1 == 10);
    free(b);
    ib_wlist_free(&l);
    ib_wlist empty = {0};
    assert_int_equal(ib_wlist_bboxes(d, &empty, &b, &n), 0);
    assert_int_equal(n, 0);
    assert_null(b);
    char *t = ib_wlist_text(d, &empty);
    assert_string_equal(t, "");
    free(t);
}

/* A PDF-like page in points: proportional widths, a label split into "Name" ":", and a column gap that
 * only the width-based threshold can tell from a word space. */
static void test_points_and_pages(void **state)
{
    ib_doc *d = new_doc(IB_DOC_PDF, 2);
    d->char_w = 6, d->line_h = 12;
    ib_page *p0 = &d->pages[0], *p1 = &d->pages[1];
    p0->width = p1->width = 612, p0->height = p1->height = 792;
    uint32_t l = new_line(p0);
    add_word(p0, "Summary", 7, (ib_bbox){72, 72, 120, 84}, l);
    l = new_line(p1);
    add_word(p1, "Name", 4, (ib_bbox){72, 100, 100, 110}, l);
    add_word(p1, ":", 1, (ib_bbox){100, 100, 103, 110}, l);
    add_word(p1, "Jane", 4, (ib_bbox){110, 100, 130, 110}, l);
    add_word(p1, "Doe", 3, (ib_bbox){134, 100, 153, 110}, l); /* 4 pt: a word space */
    add_word(p1, "Phone", 5, (ib_bbox){300, 100, 330, 110}, l);
    add_word(p1, "555-1234", 8, (ib_bbox){335, 100, 380, 110}, l);
    l = new_line(p1);
    add_word(p1, "Mr.", 3, (ib_bbox){60, 120, 75, 130}, l); /* overlaps the anchor partially: taken whole */
    add_word(p1, "J.", 2, (ib_bbox){78, 120, 88, 130}, l);
    add_word(p1, "Doe", 3, (ib_bbox){91, 120, 110, 130}, l);
    add_word(p1, "elsewhere", 9, (ib_bbox){400, 120, 450, 130}, l);

    scan_is(d, ib_scan_right, "Name:", "Jane Doe");
    scan_is(d, ib_scan_right, "name :", "Jane Doe");
    scan_is(d, ib_scan_right, "Phone", "555-1234");
    scan_is(d, ib_scan_below, "Name:", "Mr. J. Doe");
    box_is(d, "Name:", 60, 0, "Jane Doe");
    box_is(d, "Name:", 60, 25, "Jane Doe\nJ. Doe"); /* the centre of "Mr." is left of the box */

    ib_wlist w;
    assert_int_equal(ib_scan_right(d, "Name:", &w), 0);
    assert_int_equal(w.n, 2);
    assert_int_equal(w.refs[0].page, 1);
    assert_int_equal(w.refs[0].word, 2);
    ib_pbox *b;
    size_t n;
    assert_int_equal(ib_wlist_bboxes(d, &w, &b, &n), 0);
    assert_int_equal(n, 1);
    assert_true(b[0].page == 1 && b[0].box.x0 == 110 && b[0].box.x1 == 153 && b[0].box.y0 == 100);
    free(b);
    ib_wlist_free(&w);

    /* words from two pages: lines and pages both become newlines, boxes come per page */
    ib_wlist two = {malloc(2 * sizeof(ib_wref)), 2};
    two.refs[0] = (ib_wref){1, 2};
    two.refs[1] = (ib_wref){0, 0};
    char *t = ib_wlist_text(d, &two);
    assert_string_equal(t, "Jane\nSummary");
    free(t);
    assert_int_equal(ib_wlist_bboxes(d, &two, &b, &n), 0);
    assert_int_equal(n, 2);
    assert_true(b[0].page == 0 && b[1].page == 1);
    free(b);
    ib_wlist_free(&two);

    assert_int_equal(ib_anchor_find(d, "Summary", &(ib_anchor){0}), 0);
    free_doc(d);
}

static void test_unicode_anchor(void **state)
{
    static const char *const rows[] = {"Stra\xC3\x9F"
                                       "e:  Hauptstra\xC3\x9F"
                                       "e 5",
                                       "\xC3\x89TAT: pay\xC3\xA9"};
    ib_doc *d = new_doc(IB_DOC_TEXT, 1);
    text_page(&d->pages[0], rows, 2);
    scan_is(d, ib_scan_right,
            "Stra\xC3\x9F"
            "e",
            "Hauptstra\xC3\x9F"
            "e 5");
    scan_is(d, ib_scan_right, "\xC3\xA9tat", "pay\xC3\xA9"); /* É vs é: the case-insensitive pass */
    free_doc(d);
}

static void test_doc_load_text(void **state)
{
    static const char txt[] = "Invoice No: 777          Date: 2024-01-31\n\nDescription      Amount\nWidgets"
                              "          12.00\n";
    char err[256] = "";
    ib_doc_opts o = {0};
    ib_doc *d = ib_doc_load("form.txt", txt, sizeof txt - 1, &o, err, sizeof err);
    if (!d) fail_msg("ib_doc_load: %s", err);
    scan_is(d, ib_scan_right, "Invoice No:", "777");
    scan_is(d, ib_scan_right, "Date:", "2024-01-31");
    scan_is(d, ib_scan_below, "Amount", "12.00");
    scan_is(d, ib_scan_below, "Description", "Widgets");
    ib_doc_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_anchor, setup_form, teardown),
        cmocka_unit_test_setup_teardown(test_scan_right, setup_form, teardown),
        cmocka_unit_test_setup_teardown(test_scan_below, setup_form, teardown),
        cmocka_unit_test_setup_teardown(test_scan_box, setup_form, teardown),
        cmocka_unit_test_setup_teardown(test_bboxes, setup_form, teardown),
        cmocka_unit_test(test_points_and_pages),
        cmocka_unit_test(test_unicode_anchor),
        cmocka_unit_test(test_doc_load_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
