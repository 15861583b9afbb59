/* Plain text documents: pages, lines, words and columns, blocks, the layout rendering's round trip, reading
 * text, spans, slicing, and type detection errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "doc_test_util.h"
#include "ib_doc.h"

static ib_doc *load(const char *name, const char *s, char *err)
{
    ib_doc_opts o = {0, NULL, 0};
    return ib_doc_load(name, s, strlen(s), &o, err, 256);
}

/* Each line without trailing white space, \r\n as \n, trailing newlines dropped. */
static char *norm(const char *s)
{
    char *o = malloc(strlen(s) + 1), *w = o;
    while (*s) {
        const char *e = s + strcspn(s, "\n");
        const char *t = e;
        while (t > s && (t[-1] == ' ' || t[-1] == '\r' || t[-1] == '\t'))
            t--;
        memcpy(w, s, (size_t)(t - s));
        w += t - s;
        if (*e) *w++ = '\n', e++;
        s = e;
    }
    while (w > o && w[-1] == '\n')
        w--;
    *w = '\0';
    return o;
}

static void test_words_lines_pages(void **state)
{
    char err[256] = "";
    ib_doc *d = load("a.txt", "Invoice  No: 42\r\n\n  Total:\tEUR 1.234,50\n\fPage two\n", err);
    assert_non_null(d);
    assert_int_equal(d->kind, IB_DOC_TEXT);
    assert_int_equal(d->npages, 2);
    assert_true(d->char_w == 1 && d->line_h == 1);
    const ib_page *p = &d->pages[0];
    assert_int_equal(p->nwords, 6);
    assert_int_equal(p->nlines, 2);
    assert_string_equal(p->words[0].text, "Invoice");
    assert_string_equal(p->words[1].text, "No:");
    assert_true(p->words[1].box.x0 == 9 && p->words[1].box.x1 == 12 && p->words[1].box.y0 == 0);
    assert_string_equal(p->words[3].text, "Total:");
    assert_true(p->words[3].box.x0 == 2 && p->words[3].box.y0 == 2 && p->words[3].box.y1 == 3);
    assert_true(p->words[4].box.x0 == 16); /* the tab runs to column 16 */
    assert_int_equal(p->words[4].line, 1);
    assert_true(p->words[0].conf < 0);
    assert_int_equal(p->nblocks, 2); /* the blank line separates two paragraphs */
    assert_int_equal(p->blocks[1].first_word, 3);
    assert_int_equal(p->lines[1].nwords, 3);
    assert_int_equal(d->pages[1].nwords, 2);
    ib_doc_free(d);
}

static void test_utf8_columns(void **state)
{
    char err[256] = "";
    ib_doc *d = load("u.txt", "Straße  café ok\nnaïve\n", err);
    assert_non_null(d);
    const ib_page *p = &d->pages[0];
    assert_string_equal(p->words[1].text, "café");
    assert_true(p->words[1].box.x0 == 8 && p->words[1].box.x1 == 12);
    assert_true(p->words[2].box.x0 == 13);
    ib_doc_free(d);
    /* Not UTF-8 in a .csv: read as Latin-1, stored as UTF-8. */
    d = load("l.csv", "caf\xe9;1\n", err);
    assert_non_null(d);
    assert_string_equal(d->pages[0].words[0].text, "caf\xc3\xa9;1");
    ib_doc_free(d);
}

static void test_layout_round_trip(void **state)
{
    const char *in = "INVOICE                      No. 2024-001\r\n"
                     "\n"
                     "  Bill to:  ACME GmbH      Date: 15.03.2024   \n"
                     "     Widget      3 x 10,00 =    30,00\n"
                     "\n\n"
                     "Total                          30,00\n"
                     "\fSecond page   after a form feed\n"
                     "  Grüße, naïve café\n";
    char err[256] = "";
    ib_doc *d = load("inv.txt", in, err);
    assert_non_null(d);
    ib_text t;
    assert_int_equal(ib_doc_layout_text(d, &t), 0);
    char *a = norm(in), *b = norm(t.text);
    assert_string_equal(a, b);
    free(a), free(b);
    /* Every span points at its word's bytes; spans are sorted. */
    for (size_t i = 0; i < t.nspans; i++) {
        const ib_span *s = &t.spans[i];
        const char *w = d->pages[s->page].words[s->word].text;
        assert_int_equal(s->end - s->start, strlen(w));
        assert_memory_equal(t.text + s->start, w, strlen(w));
        if (i > 0) assert_true(s->start >= t.spans[i - 1].end);
    }
    ib_text_free(&t);
    assert_int_equal(ib_doc_reading_text(d, &t), 0);
    assert_non_null(strstr(t.text, "INVOICE No. 2024-001\n\nBill to: ACME GmbH Date: 15.03.2024\nWidget"));
    assert_non_null(strstr(t.text, "\fSecond page"));
    ib_text_free(&t);
    ib_doc_free(d);
}

static void test_slice(void **state)
{
    char err[256] = "";
    ib_doc *d = load("s.txt", "a1 a2\nb1\nc1 c2\n\fd1\ne1\nf1\n", err);
    assert_non_null(d);
    ib_doc *s = ib_doc_slice(d, 0, 1, 1, 1);
    assert_non_null(s);
    assert_int_equal(s->npages, 2);
    assert_int_equal(s->pages[0].nlines, 2);
    assert_string_equal(s->pages[0].words[0].text, "b1");
    assert_int_equal(s->pages[0].words[0].line, 0);
    assert_int_equal(s->pages[0].nwords, 3);
    assert_int_equal(s->pages[1].nlines, 2);
    assert_int_equal(s->pages[1].nwords, 2);
    ib_text t;
    assert_int_equal(ib_doc_layout_text(s, &t), 0);
    assert_string_equal(t.text, "b1\nc1 c2\n\fd1\ne1\n");
    ib_text_free(&t);
    ib_doc_free(s);
    s = ib_doc_slice(d, 1, 0, 1, UINT32_MAX);
    assert_int_equal(s->npages, 1);
    assert_int_equal(s->pages[0].nwords, 3);
    ib_doc_free(s);
    assert_null(ib_doc_slice(d, 2, 0, 2, 0));
    ib_doc_free(d);
}

static void test_detection_errors(void **state)
{
    char err[256] = "";
    ib_doc_opts o = {0, NULL, 0};
    assert_null(ib_doc_load("x.txt", "", 0, &o, err, sizeof err));
    assert_string_equal(err, "x.txt: empty file");
    const char junk[] = "\x01\x02\x00\x03\xff\xfe\x00binary";
    assert_null(ib_doc_load("blob.bin", junk, sizeof junk, &o, err, sizeof err));
    assert_string_equal(err, "blob.bin: unsupported format");
    assert_null(ib_doc_load("fake.pdf", "hello", 5, &o, err, sizeof err));
    assert_non_null(strstr(err, "fake.pdf: "));
    assert_null(ib_doc_load("scan.png", "\x89PNG\r\n\x1a\nxxxx", 12, &o, err, sizeof err));
    assert_non_null(strstr(err, "scan.png: "));
    o.ocr = 1;
    assert_null(ib_doc_load("scan.png", "\x89PNG\r\n\x1a\nxxxx", 12, &o, err, sizeof err));
    assert_string_equal(err, "scan.png: cannot decode image");
    /* Unknown extension but valid UTF-8 text: text. */
    ib_doc *d = ib_doc_load("notes", "hello world\n", 12, &o, err, sizeof err);
    assert_non_null(d);
    assert_int_equal(d->pages[0].nwords, 2);
    ib_doc_free(d);
    /* Page limit. */
    o.max_pages = 2;
    assert_null(ib_doc_load("p.txt", "a\fb\fc", 5, &o, err, sizeof err));
    assert_non_null(strstr(err, "too many pages"));
    ib_doc_thread_cleanup();
}

/* The one sniffing the loader and the page renderer share: magic bytes, and a PDF header after junk only for a
 * .pdf name. */
static void test_file_format(void **state)
{
    (void)state;
    static const char junk_pdf[] = "junk before the header\n%PDF-1.4\n";
    assert_int_equal(ib_file_format_of("a.bin", "%PDF-1.7\n", 9), IB_FORMAT_PDF);
    assert_int_equal(ib_file_format_of("a.PDF", junk_pdf, sizeof junk_pdf - 1), IB_FORMAT_PDF);
    assert_int_equal(ib_file_format_of("quote.txt", junk_pdf, sizeof junk_pdf - 1), IB_FORMAT_OTHER);
    assert_int_equal(ib_file_format_of(NULL, junk_pdf, sizeof junk_pdf - 1), IB_FORMAT_OTHER);
    assert_int_equal(ib_file_format_of("x", "\x89PNG\r\n\x1a\n", 8), IB_FORMAT_PNG);
    assert_int_equal(ib_file_format_of("x", "\x89PNG\r\n\x1a", 7), IB_FORMAT_OTHER); /* cut short */
    assert_int_equal(ib_file_format_of("x", "\xFF\xD8\xFF\xE0", 4), IB_FORMAT_JPEG);
    assert_int_equal(ib_file_format_of("x", "II*\0", 4), IB_FORMAT_TIFF);
    assert_int_equal(ib_file_format_of("x", "MM\0*", 4), IB_FORMAT_TIFF);
    assert_int_equal(ib_file_format_of("x", "plain text", 10), IB_FORMAT_OTHER);
    assert_int_equal(ib_file_format_of("x", NULL, 0), IB_FORMAT_OTHER);
}

static void test_hand_built_doc_renders(void **state)
{
    /* Other modules build documents by hand (no columns): words must still print apart. */
    ib_word w[2] = {{"left", {0, 0, 20, 10}, -1, 0, 0, 0}, {"right", {30, 0, 50, 10}, -1, 0, 0, 0}};
    uint32_t idx[2] = {0, 1};
    ib_line l = {idx, 2, {0, 0, 50, 10}, 0};
    ib_block b = {0, 2, {0, 0, 50, 10}};
    ib_page p = {100, 100, w, 2, &l, 1, &b, 1};
    ib_doc d = {IB_DOC_PDF, &p, 1, 5, 10};
    ib_text t;
    assert_int_equal(ib_doc_layout_text(&d, &t), 0);
    assert_string_equal(t.text, "left right\n");
    ib_text_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_words_lines_pages), cmocka_unit_test(test_utf8_columns),
        cmocka_unit_test(test_layout_round_trip), cmocka_unit_test(test_slice),
        cmocka_unit_test(test_detection_errors),  cmocka_unit_test(test_hand_built_doc_renders),
        cmocka_unit_test(test_file_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
