/* OCR documents: a fixture page rendered to PNG (with its resolution) must give the words of its text layer
 * at about the same boxes, in points; a PDF whose page is only an image is OCR'd when asked; JPEG and a
 * multi-page TIFF of generated text read as pages. Kept small: a few pages at 150-200 dpi. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cairo-pdf.h>
#include <cairo.h>
#include <ctype.h>
#include <leptonica/allheaders.h>
#include <math.h>
#include <poppler.h>
#include <stdbool.h>
#include <unistd.h>

#include "doc_test_util.h"
#include "ib_doc.h"

/* Grey PIX from a cairo RGB24 surface, with its resolution recorded. */
static PIX *pix_from_surface(cairo_surface_t *s, int dpi)
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

/* Renders page `page` of a fixture PDF at dpi onto white. */
static cairo_surface_t *render_fixture(const char *name, int page, int dpi, double *pw, double *ph)
{
    size_t len;
    char *b = dt_fixture(name, &len);
    assert_non_null(b);
    GBytes *gb = g_bytes_new_take(b, len);
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

static ib_doc *load_bytes(const char *name, const void *b, size_t len, int ocr)
{
    char err[256] = "";
    ib_doc_opts o = {ocr, "eng", 0};
    ib_doc *d = ib_doc_load(name, b, len, &o, err, sizeof err);
    if (!d) print_message("  %s\n", err);
    return d;
}

static bool wordy(const char *s)
{
    size_t n = 0;
    for (; *s; s++, n++)
        if (!isalnum((unsigned char)*s)) return false;
    return n >= 4;
}

/* Share of the text layer's plain words (4+ letters or digits) that OCR found with a box within tol points;
 * also checks confidences. */
static double compare_words(const ib_page *text, const ib_page *ocr, double tol)
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

static void test_png_of_fixture_page(void **state)
{
    double pw, ph;
    cairo_surface_t *s = render_fixture("150109DSP-Milw-505-90D.pdf", 0, 200, &pw, &ph);
    PIX *pix = pix_from_surface(s, 200);
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
    double pw, ph;
    cairo_surface_t *img = render_fixture("san-jose-pd-firearm-sample.pdf", 0, 150, &pw, &ph);
    /* A PDF whose only page is that image, drawn over the whole page. */
    membuf m = {0};
    cairo_surface_t *ps = cairo_pdf_surface_create_for_stream(write_mem, &m, pw, ph);
    cairo_t *cr = cairo_create(ps);
    cairo_scale(cr, 72.0 / 150, 72.0 / 150);
    cairo_set_source_surface(cr, img, 0, 0);
    cairo_paint(cr);
    cairo_show_page(cr);
    cairo_destroy(cr);
    cairo_surface_destroy(ps);
    cairo_surface_destroy(img);

    ib_doc *none = load_bytes("scan.pdf", m.p, m.len, 0);
    assert_non_null(none);
    assert_int_equal(none->npages, 1);
    assert_int_equal(none->pages[0].nwords, 0); /* no text layer, no OCR asked */
    ib_doc_free(none);

    ib_doc *ocr = load_bytes("scan.pdf", m.p, m.len, 1);
    assert_non_null(ocr);
    assert_int_equal(ocr->kind, IB_DOC_PDF);
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
    free(m.p);
}

/* A white page with big known words, as a PIX at dpi. */
static PIX *generated(const char *a, const char *b, int dpi)
{
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1200, 400);
    cairo_t *cr = cairo_create(s);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 60);
    cairo_move_to(cr, 80, 150);
    cairo_show_text(cr, a);
    cairo_move_to(cr, 80, 300);
    cairo_show_text(cr, b);
    cairo_destroy(cr);
    PIX *pix = pix_from_surface(s, dpi);
    cairo_surface_destroy(s);
    return pix;
}

static bool has_word(const ib_page *p, const char *w)
{
    for (uint32_t i = 0; i < p->nwords; i++)
        if (strcmp(p->words[i].text, w) == 0) return true;
    return false;
}

static void test_jpeg_and_multipage_tiff(void **state)
{
    PIX *p1 = generated("INVOICE 4711", "Total 1234.50", 0); /* no resolution: 72 dpi assumed */
    l_uint8 *jpg = NULL;
    size_t len = 0;
    assert_int_equal(pixWriteMemJpeg(&jpg, &len, p1, 90, 0), 0);
    ib_doc *d = load_bytes("photo.jpg", jpg, len, 1);
    lept_free(jpg);
    assert_non_null(d);
    assert_true(has_word(&d->pages[0], "INVOICE") && has_word(&d->pages[0], "4711"));
    assert_true(fabs(d->pages[0].width - 1200) < 1); /* pixels are points at 72 dpi */
    ib_doc_free(d);

    PIX *p2 = generated("Second Page", "Amount 99.00", 300);
    PIXA *pixa = pixaCreate(2);
    pixaAddPix(pixa, p1, L_INSERT);
    pixaAddPix(pixa, p2, L_INSERT);
    char path[] = "/tmp/ibsol-ocr-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(pixaWriteMultipageTiff(path, pixa), 0);
    pixaDestroy(&pixa);
    size_t tlen;
    char *tif = dt_read(path, &tlen);
    unlink(path);
    d = load_bytes("pages.tif", tif, tlen, 1);
    free(tif);
    assert_non_null(d);
    assert_int_equal(d->npages, 2);
    assert_true(has_word(&d->pages[0], "4711"));
    assert_true(has_word(&d->pages[1], "Amount"));
    assert_true(fabs(d->pages[1].width - 1200 * 72.0 / 300) < 1); /* 300 dpi: scaled to points */
    ib_text t;
    assert_int_equal(ib_doc_reading_text(d, &t), 0);
    assert_non_null(strstr(t.text, "\f"));
    ib_text_free(&t);
    ib_doc_free(d);

    /* Garbage after a PNG signature. */
    char err[256];
    ib_doc_opts o = {1, NULL, 0};
    assert_null(ib_doc_load("scan.png", "\x89PNG\r\n\x1a\n\0\0\0\0", 12, &o, err, sizeof err));
    assert_string_equal(err, "scan.png: cannot decode image");
    o.ocr_langs = "xxx";
    PIX *p3 = generated("x", "y", 0);
    l_uint8 *png = NULL;
    pixWriteMemPng(&png, &len, p3, 0);
    pixDestroy(&p3);
    assert_null(ib_doc_load("a.png", png, len, &o, err, sizeof err));
    assert_non_null(strstr(err, "a.png: OCR languages 'xxx'"));
    lept_free(png);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_of_fixture_page),
        cmocka_unit_test(test_scanned_pdf_page),
        cmocka_unit_test(test_jpeg_and_multipage_tiff),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    ib_doc_thread_cleanup();
    return rc;
}
