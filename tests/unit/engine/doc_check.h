/* doc_check: what the document tests check, shared by the generated-document tests (test_doc_pdf,
 * test_doc_ocr) and the real-world suite (test_fixtures_pdf): the structural invariants of a built document,
 * regex captures, white space collapsing, rendering a PDF page to an image, and how many of a text layer's
 * words OCR finds at the same place. Header-only, for cmocka programs linked with the engine. */
#ifndef DOC_CHECK_H
#define DOC_CHECK_H

#include <ctype.h>
#include <leptonica/allheaders.h>
#include <poppler.h>
#include <regex.h>
#include <stdbool.h>

#include "doc_test_util.h"
#include "ib_doc.h"

/* Structural invariants every builder must keep. */
static inline void check_invariants(const ib_doc *d)
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

/* The first capture group (or the whole match) of pattern in text, or NULL. */
static inline char *match(const char *text, const char *pattern)
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

/* Collapses runs of white space to one space. */
static inline char *collapse(const char *s)
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

/* Grey PIX from a cairo RGB24 surface, with its resolution recorded. */
static inline PIX *pix_from_surface(cairo_surface_t *s, int dpi)
{
    cairo_surface_flush(s);
    int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s);
    int stride = cairo_image_surface_get_stride(s);
    const unsigned char *d = cairo_image_surface_get_data(s);
    PIX *pix = pixCreate(w, h, 8);
    l_uint32 *data = pixGetData(pix);
    int wpl = pixGetWpl(pix);
    for (int y = 0; y < h; y++) {
        const uint32_t *row = (const uint32_t *)(d + (size_t)y * stride);
        for (int x = 0; x < w; x++)
            SET_DATA_BYTE(data + y * wpl, x, ((row[x] >> 8) & 0xFF));
    }
    pixSetResolution(pix, dpi, dpi);
    return pix;
}

/* Renders page `page` of a PDF at dpi onto white. */
static inline cairo_surface_t *render_pdf(const unsigned char *pdf, size_t len, int page, int dpi, double *pw, double *ph)
{
    GBytes *gb = g_bytes_new_static(pdf, len);
    PopplerDocument *pd = poppler_document_new_from_bytes(gb, NULL, NULL);
    assert_non_null(pd);
    PopplerPage *pg = poppler_document_get_page(pd, page);
    poppler_page_get_size(pg, pw, ph);
    cairo_surface_t *s =
        cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)(*pw * dpi / 72), (int)(*ph * dpi / 72));
    cairo_t *cr = cairo_create(s);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_scale(cr, dpi / 72.0, dpi / 72.0);
    poppler_page_render_for_printing(pg, cr);
    cairo_destroy(cr);
    g_object_unref(pg);
    g_object_unref(pd);
    g_bytes_unref(gb);
    return s;
}

static inline ib_doc *load_bytes(const char *name, const void *b, size_t len, int ocr)
{
    char err[256] = "";
    ib_doc_opts o = {ocr, "eng", 0};
    ib_doc *d = ib_doc_load(name, b, len, &o, err, sizeof err);
    if (!d) print_message("  %s\n", err);
    return d;
}

static inline bool wordy(const char *s)
{
    size_t n = 0;
    for (; *s; s++, n++)
        if (!isalnum((unsigned char)*s)) return false;
    return n >= 4;
}

/* Share of the text layer's plain words (4+ letters or digits) that OCR found with a box within tol points;
 * also checks confidences. */
static inline double compare_words(const ib_page *text, const ib_page *ocr, double tol)
{
    size_t want = 0, found = 0;
    bool *used = calloc(ocr->nwords + 1, sizeof *used);
    for (uint32_t i = 0; i < text->nwords; i++) {
        const ib_word *w = &text->words[i];
        if (!wordy(w->text)) continue;
        want++;
        for (uint32_t k = 0; k < ocr->nwords; k++) {
            const ib_word *o = &ocr->words[k];
            if (used[k] || strcmp(o->text, w->text) != 0) continue;
            if (fabs(o->box.x0 - w->box.x0) < tol && fabs(o->box.x1 - w->box.x1) < tol &&
                fabs((o->box.y0 + o->box.y1) / 2 - (w->box.y0 + w->box.y1) / 2) < tol) {
                assert_true(o->conf > 0 && o->conf <= 100);
                used[k] = true;
                found++;
                break;
            }
        }
    }
    free(used);
    return want ? (double)found / want : 0;
}

/* A loaded PDF of `pages` pages: its kind, measures and invariants, one form feed between pages in the layout
 * rendering, and every span of that rendering holding its word's text. */
static inline void check_pdf_doc(const ib_doc *d, uint32_t pages)
{
    assert_int_equal(d->kind, IB_DOC_PDF);
    assert_int_equal(d->npages, pages);
    assert_true(d->char_w > 1 && d->char_w < 20 && d->line_h > 2 && d->line_h < 40);
    check_invariants(d);
    ib_text t;
    assert_int_equal(ib_doc_layout_text(d, &t), 0);
    size_t ff = 0;
    for (size_t k = 0; k < t.len; k++)
        ff += t.text[k] == '\f';
    assert_int_equal(ff, pages - 1);
    for (size_t k = 0; k < t.nspans; k++) {
        const char *w = d->pages[t.spans[k].page].words[t.spans[k].word].text;
        assert_memory_equal(t.text + t.spans[k].start, w, strlen(w));
    }
    ib_text_free(&t);
}

/* A PDF whose only page is img (rendered at dpi) drawn over the whole pw x ph page: without OCR it loads as
 * one page with no words; the document OCR gives is returned. Takes img. */
/* A PDF of one pw x ph page holding only img (taken) at dpi, its left edge x points from the page's. */
static inline membuf image_pdf(cairo_surface_t *img, int dpi, double pw, double ph, double x)
{
    membuf m = {0};
    cairo_surface_t *ps = cairo_pdf_surface_create_for_stream(write_mem, &m, pw, ph);
    cairo_t *cr = cairo_create(ps);
    cairo_translate(cr, x, 0);
    cairo_scale(cr, 72.0 / dpi, 72.0 / dpi);
    cairo_set_source_surface(cr, img, 0, 0);
    cairo_paint(cr);
    cairo_show_page(cr);
    cairo_destroy(cr);
    cairo_surface_destroy(ps);
    cairo_surface_destroy(img);
    return m;
}

static inline ib_doc *ocr_image_pdf(cairo_surface_t *img, int dpi, double pw, double ph)
{
    membuf m = image_pdf(img, dpi, pw, ph, 0);

    ib_doc *none = load_bytes("scan.pdf", m.p, m.len, 0);
    assert_non_null(none);
    assert_int_equal(none->npages, 1);
    assert_int_equal(none->pages[0].nwords, 0); /* no text layer, no OCR asked */
    ib_doc_free(none);

    ib_doc *ocr = load_bytes("scan.pdf", m.p, m.len, 1);
    free(m.p);
    assert_non_null(ocr);
    assert_int_equal(ocr->kind, IB_DOC_PDF);
    return ocr;
}

/* The layout rendering's text alone; the caller frees it. */
static inline char *layout_of(const ib_doc *d)
{
    ib_text t;
    assert_int_equal(ib_doc_layout_text(d, &t), 0);
    free(t.spans);
    return t.text;
}

/* A rendered page (at dpi, pw x ph points) saved as PNG with its resolution, then OCR'd: one image page of
 * the same size in points. Takes s. */
static inline ib_doc *ocr_png(cairo_surface_t *s, int dpi, double pw, double ph)
{
    PIX *pix = pix_from_surface(s, dpi);
    cairo_surface_destroy(s);
    l_uint8 *png = NULL;
    size_t len = 0;
    assert_int_equal(pixWriteMemPng(&png, &len, pix, 0), 0);
    pixDestroy(&pix);
    ib_doc *ocr = load_bytes("scan.png", png, len, 1);
    lept_free(png);
    assert_non_null(ocr);
    assert_int_equal(ocr->kind, IB_DOC_IMAGE);
    assert_int_equal(ocr->npages, 1);
    assert_true(fabs(ocr->pages[0].width - pw) < 1 && fabs(ocr->pages[0].height - ph) < 1); /* in points */
    return ocr;
}

#endif
