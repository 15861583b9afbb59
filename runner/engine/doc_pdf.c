/* doc_pdf: PDF text layers through Poppler's GLib API, in process. Poppler's own text (reading order, with
 * its column analysis) and one rectangle per character give words; geometric gaps split what Poppler glued
 * (table cells); pages with rotated text are turned upright; pages without text go to OCR when asked. */
#include "doc_int.h"

#include <cairo.h>
#include <poppler.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IB_OCR_DPI 300
#define IB_OCR_MAX_PIXELS (12000.0 * 12000.0) /* a page larger than this renders at a lower resolution */

/* Font size per character (code point index) from Poppler's text attributes; 0 where unknown. */
static float *font_sizes(PopplerPage *page, size_t nchars)
{
    float *fs = calloc(nchars ? nchars : 1, sizeof *fs);
    if (!fs) return NULL;
    GList *attrs = poppler_page_get_text_attributes(page);
    for (GList *l = attrs; l; l = l->next) {
        const PopplerTextAttributes *a = l->data;
        for (int i = a->start_index; i >= 0 && i <= a->end_index && (size_t)i < nchars; i++)
            fs[i] = (float)a->font_size;
    }
    poppler_page_free_text_attributes(attrs);
    return fs;
}

/* The page's dominant text direction: 0 left to right, 1 top to bottom, 2 right to left, 3 bottom to top,
 * from the step between neighbouring characters of a word. */
static int text_rotation(const uint32_t *cps, const PopplerRectangle *r, size_t n)
{
    size_t votes[4] = {0};
    for (size_t i = 0; i + 1 < n; i++) {
        if (cps[i] <= ' ' || cps[i + 1] <= ' ') continue;
        double dx = (r[i + 1].x1 + r[i + 1].x2 - r[i].x1 - r[i].x2) / 2;
        double dy = (r[i + 1].y1 + r[i + 1].y2 - r[i].y1 - r[i].y2) / 2;
        if (fabs(dx) >= fabs(dy))
            votes[dx >= 0 ? 0 : 2]++;
        else
            votes[dy >= 0 ? 1 : 3]++;
    }
    int best = 0;
    for (int k = 1; k < 4; k++)
        if (votes[k] > votes[best]) best = k;
    return best;
}

static void rotate_pt(int rot, double w, double h, double x, double y, double *ox, double *oy)
{
    switch (rot) {
    case 1:
        *ox = y, *oy = w - x;
        break;
    case 2:
        *ox = w - x, *oy = h - y;
        break;
    case 3:
        *ox = h - y, *oy = x;
        break;
    default:
        *ox = x, *oy = y;
    }
}

static bool is_space(uint32_t cp)
{
    return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\f' || cp == '\v' || cp == 0xA0 ||
           cp == 0x2028 || cp == 0x2029 || (cp >= 0x2000 && cp <= 0x200B) || cp == 0x3000 || cp < 0x20;
}

typedef struct wcur {
    bool open;
    size_t start, end; /* byte range of the word in the page text */
    ib_bbox box;
    double last_x0, last_x1, last_y0, last_y1;
    float fs;
} wcur;

/* Words of one page with a text layer, in Poppler's reading order. */
static int pdf_text_words(PopplerPage *page, const char *text, ib_wordbuf *b, double *pw, double *ph)
{
    PopplerRectangle *rects = NULL;
    guint nrects = 0;
    size_t tlen = strlen(text), n = 0;
    uint32_t *cps = malloc((tlen + 1) * sizeof *cps);
    size_t *offs = malloc((tlen + 1) * sizeof *offs);
    float *fs = NULL;
    int rc = -1;
    if (!cps || !offs) goto out;
    for (size_t i = 0; i < tlen;) { /* Poppler's text is UTF-8; one rectangle per code point */
        size_t k = ib_utf8_next((const unsigned char *)text + i, tlen - i, &cps[n]);
        if (k == 0) k = 1, cps[n] = 0xFFFD;
        offs[n++] = i, i += k;
    }
    offs[n] = tlen;
    if (!poppler_page_get_text_layout(page, &rects, &nrects)) nrects = 0;
    /* The rectangles match the text one to one; if a Poppler quirk breaks that, use what aligns. */
    if (nrects < n) n = nrects;
    if (!(fs = font_sizes(page, n))) goto out;
    int rot = text_rotation(cps, rects, n);
    double w = *pw, h = *ph;
    if (rot == 1 || rot == 3) *pw = h, *ph = w;

    uint32_t frag = 0, para = 0;
    bool new_frag = true;
    wcur c = {0};
    ib_bbox pfrag = {0}, cfrag = {0}; /* previous and current fragment boxes, for block breaks */
    float pfs = 0, cfs = 0;
    bool have_frag = false;
    for (size_t i = 0; i <= n; i++) {
        bool space = i == n || is_space(cps[i]);
        ib_bbox r = {0};
        float f = 0;
        if (!space) {
            double ax, ay, bx, by;
            rotate_pt(rot, w, h, rects[i].x1, rects[i].y1, &ax, &ay);
            rotate_pt(rot, w, h, rects[i].x2, rects[i].y2, &bx, &by);
            r = (ib_bbox){fmin(ax, bx), fmin(ay, by), fmax(ax, bx), fmax(ay, by)};
            f = fs[i] > 0 ? fs[i] : (float)fmax(r.y1 - r.y0, 1.0);
            /* Poppler glues table cells of one row without a space: split where the glyphs jump. */
            bool along_x = r.x0 >= c.last_x0 - 0.1 * c.fs && r.x0 - c.last_x1 <= 0.15 * c.fs &&
                           fabs(r.y1 - c.last_y1) <= 0.3 * c.fs;
            bool along_y = fabs(r.x0 - c.last_x0) <= 0.1 * c.fs && /* vertical text in a margin */
                           (fabs(r.y0 - c.last_y1) <= 0.15 * c.fs || fabs(c.last_y0 - r.y1) <= 0.15 * c.fs);
            if (c.open && !along_x && !along_y) {
                space = true;
                new_frag = true;
            }
        }
        if (space && c.open) {
            if (ib_wordbuf_push(b, text + c.start, c.end - c.start, c.box, -1.0f, c.fs, NAN, frag, para) != 0)
                goto out;
            c.open = false;
        }
        if (i == n) break;
        if (cps[i] == '\n') new_frag = true;
        if (is_space(cps[i])) continue;
        if (!c.open) {
            if (new_frag) {
                /* A new fragment starts a block when it is not the next line of the same column: it sits on
                 * the previous fragment's line, above it, far below it, beside it, or in another size. */
                if (have_frag) {
                    pfrag = cfrag, pfs = cfs;
                    double lh = fmax(pfs, 1.0);
                    bool same_line = fabs(r.y1 - pfrag.y1) < 0.5 * lh;
                    bool up = r.y0 < pfrag.y0 - 0.1 * lh;
                    bool far = r.y0 - pfrag.y1 > 0.7 * lh;
                    bool beside = r.x0 > pfrag.x1 + lh || r.x1 < pfrag.x0 - 2 * lh;
                    bool resized = fabs(f - pfs) > 0.2 * fmax(f, pfs);
                    if (same_line || up || far || beside || resized) para++;
                    frag++;
                }
                have_frag = true, new_frag = false;
                cfrag = r, cfs = f;
            }
            c = (wcur){true, offs[i], offs[i + 1], r, r.x0, r.x1, r.y0, r.y1, f};
        } else {
            c.end = offs[i + 1];
            c.box.x0 = fmin(c.box.x0, r.x0), c.box.y0 = fmin(c.box.y0, r.y0);
            c.box.x1 = fmax(c.box.x1, r.x1), c.box.y1 = fmax(c.box.y1, r.y1);
            c.last_x0 = r.x0, c.last_x1 = r.x1, c.last_y0 = r.y0, c.last_y1 = r.y1;
        }
        cfrag.x0 = fmin(cfrag.x0, r.x0), cfrag.y0 = fmin(cfrag.y0, r.y0);
        cfrag.x1 = fmax(cfrag.x1, r.x1), cfrag.y1 = fmax(cfrag.y1, r.y1);
    }
    rc = 0;
out:
    free(cps), free(offs), free(fs);
    g_free(rects);
    return rc;
}

/* Cairo pixels (RGB24 or ARGB32, premultiplied) to 8-bit grey over white: what Tesseract reads. */
static unsigned char *grey_of(cairo_surface_t *surf, int pw, int ph)
{
    const unsigned char *data = cairo_image_surface_get_data(surf);
    int stride = cairo_image_surface_get_stride(surf);
    int alpha = cairo_image_surface_get_format(surf) == CAIRO_FORMAT_ARGB32;
    unsigned char *grey = data ? malloc((size_t)pw * ph) : NULL;
    for (int y = 0; grey && y < ph; y++) {
        const uint32_t *row = (const uint32_t *)(data + (size_t)y * stride);
        unsigned char *o = grey + (size_t)y * pw;
        for (int x = 0; x < pw; x++) {
            uint32_t p = row[x];
            unsigned v = (((p >> 16) & 0xFF) * 77 + ((p >> 8) & 0xFF) * 150 + (p & 0xFF) * 29) >> 8;
            if (alpha) v += 255 - (p >> 24); /* premultiplied: what is transparent shows the white page */
            o[x] = (unsigned char)(v > 255 ? 255 : v);
        }
    }
    return grey;
}

/* A scanned page is one image covering the page. Its own pixels, at their own resolution, are what OCR should
 * read: rendering the page at IB_OCR_DPI resamples them (a 200 dpi scan rendered at 300 dpi is interpolated, and
 * lost 5 % of the fields the same scan gave as a PNG). 1 after OCR of the image, 0 when the page is not such a
 * page (then it is rendered), -1 on an error. An image turned on the page (its pixels' shape is not the area's),
 * offset from the page's corner, or too large, is rendered instead. */
static int pdf_ocr_scan(PopplerPage *page, double w, double h, const ib_doc_opts *opts, ib_wordbuf *b, char *err,
                        size_t errsz)
{
    GList *maps = poppler_page_get_image_mapping(page);
    int rc = 0;
    if (!maps || maps->next) goto out;
    const PopplerImageMapping *m = maps->data;
    double aw = m->area.x2 - m->area.x1, ah = m->area.y2 - m->area.y1;
    if (fabs(m->area.x1) > 2 || fabs(m->area.y1) > 2 || aw < w - 4 || ah < h - 4) goto out;
    cairo_surface_t *img = poppler_page_get_image(page, m->image_id);
    if (!img) goto out;
    int pw = cairo_image_surface_get_width(img), ph = cairo_image_surface_get_height(img);
    double dpi = pw * 72.0 / aw;
    int fmt = cairo_image_surface_get_format(img);
    if (cairo_surface_status(img) == CAIRO_STATUS_SUCCESS && (fmt == CAIRO_FORMAT_RGB24 || fmt == CAIRO_FORMAT_ARGB32) &&
        pw > 0 && ph > 0 && (double)pw * ph <= IB_OCR_MAX_PIXELS && fabs((double)pw / ph - aw / ah) < 0.02 * aw / ah &&
        dpi >= 100) {
        cairo_surface_flush(img);
        unsigned char *grey = grey_of(img, pw, ph);
        if (grey) {
            rc = ib_ocr_gray(grey, pw, ph, pw, (int)lround(dpi), aw / pw, opts->ocr_langs, b, err, errsz) < 0 ? -1 : 1;
            free(grey);
        } else {
            snprintf(err, errsz, "out of memory");
            rc = -1;
        }
    }
    cairo_surface_destroy(img);
out:
    poppler_page_free_image_mapping(maps);
    return rc;
}

/* OCRs a page: a scan's own image (pdf_ocr_scan), else the page rendered at IB_OCR_DPI onto white; boxes come
 * back in points. */
static int pdf_ocr_page(PopplerPage *page, double w, double h, const ib_doc_opts *opts, ib_wordbuf *b,
                        char *err, size_t errsz)
{
    int scan = pdf_ocr_scan(page, w, h, opts, b, err, errsz);
    if (scan != 0) return scan < 0 ? -1 : 0;
    double dpi = IB_OCR_DPI;
    if ((w * dpi / 72) * (h * dpi / 72) > IB_OCR_MAX_PIXELS) dpi = 72 * sqrt(IB_OCR_MAX_PIXELS / (w * h));
    int pw = (int)ceil(w * dpi / 72), ph = (int)ceil(h * dpi / 72);
    if (pw <= 0 || ph <= 0) return 0;
    cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, pw, ph);
    if (cairo_surface_status(surf) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(surf);
        snprintf(err, errsz, "cannot render page for OCR");
        return -1;
    }
    cairo_t *cr = cairo_create(surf);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_scale(cr, dpi / 72, dpi / 72);
    poppler_page_render_for_printing(page, cr); /* for printing: no form-field highlights or annotation UI */
    cairo_destroy(cr);
    cairo_surface_flush(surf);
    unsigned char *grey = grey_of(surf, pw, ph);
    int rc = -1;
    if (grey) {
        rc = ib_ocr_gray(grey, pw, ph, pw, (int)dpi, 72.0 / dpi, opts->ocr_langs, b, err, errsz);
        free(grey);
    } else {
        snprintf(err, errsz, "out of memory");
    }
    cairo_surface_destroy(surf);
    return rc;
}

static bool has_text(const char *s)
{
    for (; *s; s++)
        if (!strchr(" \t\r\n\f\v", *s)) return true;
    return false;
}

/* Poppler builds its global settings (fonts, encodings) when the first document opens and drops them when the
 * last one closes: a runner opening one PDF after another paid that every time. One tiny document held for the
 * process's life keeps them. */
static PopplerDocument *keeper;
static char keeper_pdf[512];

static void keep_globals(void)
{
    static const char *const objs[] = {"<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                                       "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 10 10] >>"};
    size_t n = (size_t)snprintf(keeper_pdf, sizeof keeper_pdf, "%%PDF-1.4\n"), off[3];
    for (int i = 0; i < 3; i++) {
        off[i] = n;
        n += (size_t)snprintf(keeper_pdf + n, sizeof keeper_pdf - n, "%d 0 obj\n%s\nendobj\n", i + 1, objs[i]);
    }
    size_t xref = n;
    n += (size_t)snprintf(keeper_pdf + n, sizeof keeper_pdf - n, "xref\n0 4\n0000000000 65535 f \n");
    for (int i = 0; i < 3; i++)
        n += (size_t)snprintf(keeper_pdf + n, sizeof keeper_pdf - n, "%010zu 00000 n \n", off[i]);
    n += (size_t)snprintf(keeper_pdf + n, sizeof keeper_pdf - n,
                          "trailer\n<< /Size 4 /Root 1 0 R >>\nstartxref\n%zu\n%%%%EOF\n", xref);
    GBytes *gb = g_bytes_new_static(keeper_pdf, n);
    keeper = poppler_document_new_from_bytes(gb, NULL, NULL);
    g_bytes_unref(gb);
}

ib_doc *ib_doc_from_pdf(const void *bytes, size_t len, const ib_doc_opts *opts, char *err, size_t errsz)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, keep_globals);
    GError *gerr = NULL;
    /* Poppler reads the caller's bytes in place: no copy; the document is gone before we return. */
    GBytes *gb = g_bytes_new_static(bytes, len);
    PopplerDocument *pd = poppler_document_new_from_bytes(gb, NULL, &gerr);
    g_bytes_unref(gb);
    if (!pd) {
        if (gerr && g_error_matches(gerr, POPPLER_ERROR, POPPLER_ERROR_ENCRYPTED))
            snprintf(err, errsz, "encrypted PDF");
        else
            snprintf(err, errsz, "damaged PDF (%s)", gerr ? gerr->message : "unreadable");
        g_clear_error(&gerr);
        return NULL;
    }
    int np = poppler_document_get_n_pages(pd);
    uint32_t limit = ib_doc_page_limit(opts);
    ib_doc *doc = NULL;
    ib_wordbuf b = {0};
    if (np < 0 || (uint32_t)np > limit) {
        snprintf(err, errsz, "too many pages (%d, limit %u)", np, limit);
        goto fail;
    }
    doc = calloc(1, sizeof *doc);
    if (!doc || !(doc->pages = calloc(np > 0 ? (size_t)np : 1, sizeof *doc->pages))) {
        snprintf(err, errsz, "out of memory");
        goto fail;
    }
    doc->kind = IB_DOC_PDF;
    for (int p = 0; p < np; p++) {
        PopplerPage *page = poppler_document_get_page(pd, p);
        double w = 612, h = 792;
        int rc = 0;
        if (page) {
            poppler_page_get_size(page, &w, &h);
            char *text = poppler_page_get_text(page);
            if (text && has_text(text))
                rc = pdf_text_words(page, text, &b, &w, &h);
            else if (opts->ocr)
                rc = pdf_ocr_page(page, w, h, opts, &b, err, errsz);
            g_free(text);
            g_object_unref(page);
        }
        if (rc == 0) rc = ib_page_build(&doc->pages[p], &b, w, h);
        ib_wordbuf_clear(&b);
        if (rc != 0) {
            char why[256];
            snprintf(why, sizeof why, "%s", err[0] ? err : "out of memory");
            snprintf(err, errsz, "page %d: %s", p + 1, why);
            goto fail;
        }
        doc->npages++;
    }
    ib_doc_set_metrics(doc);
    g_object_unref(pd);
    return doc;
fail:
    ib_wordbuf_clear(&b);
    ib_doc_free(doc);
    g_object_unref(pd);
    return NULL;
}
