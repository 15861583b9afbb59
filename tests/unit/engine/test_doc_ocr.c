/* OCR documents: a generated PDF page rendered to PNG (with its resolution) must give the words of its text
 * layer at about the same boxes, in points; a PDF whose page is only an image is OCR'd when asked; JPEG and a
 * multi-page TIFF of generated text read as pages. Kept small: a few pages at 150-200 dpi. (Real-world
 * pages: test_fixtures_pdf.) */
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

#include "doc_check.h"
#include "ib_doc.h"

static void test_png_of_generated_page(void **state)
{
    double pw, ph;
    size_t plen;
    unsigned char *pdf = dt_form_pdf(1, &plen);
    cairo_surface_t *s = render_pdf(pdf, plen, 0, 200, &pw, &ph);
    ib_doc *ocr = ocr_png(s, 200, pw, ph);

    ib_doc *txt = load_bytes("form.pdf", pdf, plen, 0);
    free(pdf);
    double share = compare_words(&txt->pages[0], &ocr->pages[0], 4.0);
    print_message("  OCR found %.0f%% of the text layer's words within 4 pt (%u OCR words)\n", share * 100,
                  ocr->pages[0].nwords);
    assert_true(share >= 0.90);
    /* The layout rendering of OCR output still serves label/value regexes. */
    ib_text t;
    assert_int_equal(ib_doc_layout_text(ocr, &t), 0);
    assert_non_null(strstr(t.text, "150109-DSP-Milw-505-90D"));
    assert_non_null(strstr(t.text, "Case Tracking Number:"));
    ib_text_free(&t);
    ib_doc_free(txt);
    ib_doc_free(ocr);
}

static void test_scanned_pdf_page(void **state)
{
    double pw, ph;
    size_t plen;
    unsigned char *pdf = dt_table_pdf(&plen);
    cairo_surface_t *img = render_pdf(pdf, plen, 0, 150, &pw, &ph);
    ib_doc *ocr = ocr_image_pdf(img, 150, pw, ph);
    ib_doc *txt = load_bytes("table.pdf", pdf, plen, 0);
    free(pdf);
    double share = compare_words(&txt->pages[0], &ocr->pages[0], 5.0);
    print_message("  scanned PDF page: OCR found %.0f%% of the text layer's words within 5 pt\n",
                  share * 100);
    assert_true(share >= 0.80);
    /* Read from the scan's own 150 dpi pixels (pdf_ocr_scan), not from the page rendered at 300 dpi: every box
     * edge lies on the scan's pixel grid, 72/150 pt apart (a rendering's grid is half that). */
    uint32_t off_grid = 0;
    for (uint32_t i = 0; i < ocr->pages[0].nwords; i++) {
        double x = ocr->pages[0].words[i].box.x0 / (72.0 / 150), y = ocr->pages[0].words[i].box.y0 / (72.0 / 150);
        off_grid += fabs(x - round(x)) > 0.01 || fabs(y - round(y)) > 0.01;
    }
    assert_int_equal(off_grid, 0);
    ib_text t;
    assert_int_equal(ib_doc_layout_text(ocr, &t), 0);
    assert_non_null(strstr(t.text, "REGISTERED VOTERS"));
    assert_non_null(strstr(t.text, "KASHKARI"));
    ib_text_free(&t);
    ib_doc_free(txt);
    ib_doc_free(ocr);
}

/* A scan that covers only part of its page (here the right half of a page twice as wide) is not read from its
 * own pixels (pdf_ocr_scan takes only a page-sized image) but rendered whole: its words are found, on the right. */
static void test_scan_on_part_of_a_page(void **state)
{
    double pw, ph;
    size_t plen;
    unsigned char *pdf = dt_table_pdf(&plen);
    cairo_surface_t *img = render_pdf(pdf, plen, 0, 150, &pw, &ph);
    free(pdf);
    membuf m = image_pdf(img, 150, 2 * pw, ph, pw);
    ib_doc *ocr = load_bytes("half.pdf", m.p, m.len, 1);
    free(m.p);
    assert_non_null(ocr);
    char *text = layout_of(ocr);
    assert_non_null(strstr(text, "REGISTERED VOTERS"));
    free(text);
    uint32_t left = 0;
    for (uint32_t i = 0; i < ocr->pages[0].nwords; i++) left += ocr->pages[0].words[i].box.x0 < pw - 1;
    assert_true(ocr->pages[0].nwords > 20);
    assert_int_equal(left, 0); /* every word is on the half the image covers */
    ib_doc_free(ocr);
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
        cmocka_unit_test(test_png_of_generated_page),
        cmocka_unit_test(test_scanned_pdf_page),
        cmocka_unit_test(test_scan_on_part_of_a_page),
        cmocka_unit_test(test_jpeg_and_multipage_tiff),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    ib_doc_thread_cleanup();
    return rc;
}
