/* pages: pages.render, one page of a document on the caller's drive as an image, for the web playground, which
 * draws each field's box over it. PDF pages are rendered with Poppler and cairo at the asked resolution; PNG and
 * JPEG scans go back as they are (browsers show them), TIFF pages converted to PNG; plain text is drawn cell by
 * cell from the engine's own reading of it, so a text field's box (in character cells) falls on its characters.
 * The reply carries the image's bytes in base64 (the envelope holds JSON strings, which must be UTF-8) with its
 * content type, and headers giving the page count and the page's size in the units of the records' boxes, so a
 * client scales boxes by image width / X-Page-Width. Every size is bounded before anything is drawn. */
#include "ops.h"

#include "engine_int.h"

#include "ib_fs.h"
#include "ib_log.h"
#include "ib_path.h"

#include <cairo.h>
#include <errno.h>
#include <fcntl.h>
#include <leptonica/allheaders.h>
#include <math.h>
#include <openssl/evp.h>
#include <poppler.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGES_DPI_MIN 36
#define PAGES_DPI_MAX 300
#define PAGES_DPI_DEFAULT 100
#define PAGES_MAX_SIDE 10000         /* pixels on either side of a drawn page */
#define PAGES_MAX_PIXELS 25000000.0  /* pixels of a drawn page (an A4 page at 300 dpi is 8.7 million) */
/* Plain text: one character cell is 6 x 12 points and the font 10 points, so text reads at the same size as a
 * PDF page rendered at the same dpi. */
#define TEXT_CELL_W 6.0
#define TEXT_CELL_H 12.0
#define TEXT_FONT_PT 10.0

/* Drawing text (Poppler's substitutes for fonts a PDF does not embed, and the monospace font of text pages) has
 * fontconfig build its configuration and pattern cache, which it keeps for the process's life and which cannot be
 * released at exit (FcFini aborts while Poppler's and cairo's font caches still hold patterns). In a sanitizer
 * build the leak checker is told so, as tests/lsan.supp tells it for the unit tests; nothing else is hidden. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libfontconfig.so\n";
}

/* A whole number from lo to hi in a query value; def when absent. -1 when the text is not such a number. */
static long parse_bounded(const char *s, long lo, long hi, long def)
{
    if (!s) return def;
    if (!*s || strlen(s) > 9) return -1;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9') return -1;
    long v = strtol(s, NULL, 10);
    return v < lo || v > hi ? -1 : v;
}

typedef struct membuf {
    unsigned char *p;
    size_t len, cap;
    int failed;
} membuf;

static cairo_status_t membuf_write(void *closure, const unsigned char *data, unsigned int length)
{
    membuf *b = closure;
    if (b->len + length > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + length) cap *= 2;
        unsigned char *np = realloc(b->p, cap);
        if (!np) {
            b->failed = 1;
            return CAIRO_STATUS_NO_MEMORY;
        }
        b->p = np, b->cap = cap;
    }
    memcpy(b->p + b->len, data, length);
    b->len += length;
    return CAIRO_STATUS_SUCCESS;
}

/* Sets the reply: the image in base64, its type and the page headers. Takes nothing. */
static ib_code reply_image(ib_reply *rep, const unsigned char *img, size_t len, const char *ctype, long npages,
                           double width, double height, const char *unit)
{
    size_t cap = 4 * ((len + 2) / 3) + 1;
    char *b64 = malloc(cap);
    if (!b64) return ib_fail(rep, IB_INTERNAL, "out of memory for a page image of %zu bytes", len);
    int n = EVP_EncodeBlock((unsigned char *)b64, img, (int)len);
    json_t *d = ib_reply_data(rep);
    json_object_set_new(d, "$body_base64", json_stringn(b64, (size_t)n));
    free(b64);
    json_object_set_new(d, "$content_type", json_string(ctype));
    char count[32], w[32], h[32];
    snprintf(count, sizeof count, "%ld", npages);
    snprintf(w, sizeof w, "%.3f", width);
    snprintf(h, sizeof h, "%.3f", height);
    json_object_set_new(d, "$headers", json_pack("{s:s, s:s, s:s, s:s}", "X-Page-Count", count, "X-Page-Width", w,
                                                 "X-Page-Height", h, "X-Page-Unit", unit));
    return IB_OK;
}

/* The pixel size of a page of w x h units drawn at sx x sy pixels per unit; 400 naming the page and the dpi when
 * it passes the bounds. */
static ib_code page_pixels(double w, double h, double sx, double sy, long page, long dpi, const char *shown,
                           int *pw, int *ph, ib_reply *rep)
{
    double fw = ceil(w * sx - 1e-6), fh = ceil(h * sy - 1e-6); /* 792 pt at 300 dpi is 3300 px, not 3301 */
    if (fw < 1) fw = 1;
    if (fh < 1) fh = 1;
    if (fw > PAGES_MAX_SIDE || fh > PAGES_MAX_SIDE || fw * fh > PAGES_MAX_PIXELS)
        return ib_fail(rep, IB_BAD_REQUEST,
                       "dpi: page %ld of '%s' at %ld dpi would be %.0f x %.0f pixels, past the limit of %d pixels on "
                       "a side and %.0f in all; ask for a lower dpi",
                       page, shown, dpi, fw, fh, PAGES_MAX_SIDE, PAGES_MAX_PIXELS);
    *pw = (int)fw, *ph = (int)fh;
    return IB_OK;
}

static ib_code reply_surface(ib_reply *rep, cairo_surface_t *surf, long npages, double w, double h,
                             const char *unit)
{
    membuf png = {0};
    cairo_status_t st = cairo_surface_write_to_png_stream(surf, membuf_write, &png);
    ib_code rc = st == CAIRO_STATUS_SUCCESS && !png.failed
                     ? reply_image(rep, png.p, png.len, "image/png", npages, w, h, unit)
                     : ib_fail(rep, IB_INTERNAL, "the page image could not be encoded: %s", cairo_status_to_string(st));
    free(png.p);
    return rc;
}

static cairo_surface_t *white_surface(int pw, int ph, cairo_t **cr)
{
    cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, pw, ph);
    if (cairo_surface_status(surf) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(surf);
        return NULL;
    }
    *cr = cairo_create(surf);
    cairo_set_source_rgb(*cr, 1, 1, 1);
    cairo_paint(*cr);
    return surf;
}

static ib_code render_pdf(const unsigned char *bytes, size_t len, long page, long dpi, const char *shown,
                          ib_reply *rep)
{
    GError *gerr = NULL;
    GBytes *gb = g_bytes_new_static(bytes, len);
    PopplerDocument *pd = poppler_document_new_from_bytes(gb, NULL, &gerr);
    g_bytes_unref(gb);
    if (!pd) {
        ib_fail(rep, IB_BAD_REQUEST, "path: '%s' cannot be read: %s", shown,
                gerr && g_error_matches(gerr, POPPLER_ERROR, POPPLER_ERROR_ENCRYPTED)
                    ? "encrypted PDF"
                    : (gerr ? gerr->message : "damaged PDF"));
        g_clear_error(&gerr);
        return rep->code;
    }
    int np = poppler_document_get_n_pages(pd);
    PopplerPage *pg = page <= np ? poppler_document_get_page(pd, (int)page - 1) : NULL;
    if (!pg) {
        ib_fail(rep, IB_NOT_FOUND, "page: '%s' has %d page%s, there is no page %ld", shown, np, np == 1 ? "" : "s",
                page);
        g_object_unref(pd);
        return rep->code;
    }
    double w = 0, h = 0;
    poppler_page_get_size(pg, &w, &h);
    int pw = 0, ph = 0; /* set by page_pixels; -O3 cannot see that */
    cairo_t *cr = NULL;
    cairo_surface_t *surf = NULL;
    if (page_pixels(w, h, dpi / 72.0, dpi / 72.0, page, dpi, shown, &pw, &ph, rep) == IB_OK) {
        if ((surf = white_surface(pw, ph, &cr))) {
            cairo_scale(cr, dpi / 72.0, dpi / 72.0);
            poppler_page_render_for_printing(pg, cr); /* as printed: no form-field highlights or annotation UI */
            cairo_destroy(cr);
            reply_surface(rep, surf, np, w, h, "pt");
            cairo_surface_destroy(surf);
        } else {
            ib_fail(rep, IB_INTERNAL, "no memory to draw a page of %d x %d pixels", pw, ph);
        }
    }
    g_object_unref(pg);
    g_object_unref(pd);
    return rep->code;
}

/* PNG and JPEG as they are; a TIFF page as PNG. The page's size in points is its pixels at the image's own
 * resolution, 72 dpi when it has none: what the OCR reading of it assumes, so the boxes match. */
static ib_code render_image(const unsigned char *bytes, size_t len, ib_file_format format, long page,
                            const char *shown, ib_reply *rep)
{
    ib_image img;
    long np = ib_image_open(bytes, len, &img);
    PIX *pix = page <= np ? ib_image_page(&img, (int)page - 1) : NULL;
    if (!pix) {
        if (np > 0 && page > np)
            ib_fail(rep, IB_NOT_FOUND, "page: '%s' has %ld page%s, there is no page %ld", shown, np,
                    np == 1 ? "" : "s", page);
        else
            ib_fail(rep, IB_BAD_REQUEST, "path: '%s' cannot be read: cannot decode image", shown);
        ib_image_close(&img);
        return rep->code;
    }
    int res = pixGetXRes(pix), yres = pixGetYRes(pix);
    double w = pixGetWidth(pix) * 72.0 / (res > 0 ? res : 72), h = pixGetHeight(pix) * 72.0 / (yres > 0 ? yres : res > 0 ? res : 72);
    if (format != IB_FORMAT_TIFF) {
        reply_image(rep, bytes, len, format == IB_FORMAT_PNG ? "image/png" : "image/jpeg", np, w, h, "pt");
    } else {
        l_uint8 *out = NULL;
        size_t outlen = 0;
        if (pixWriteMemPng(&out, &outlen, pix, 0) == 0 && out)
            reply_image(rep, out, outlen, "image/png", np, w, h, "pt");
        else
            ib_fail(rep, IB_INTERNAL, "page %ld of '%s' could not be converted to PNG", page, shown);
        lept_free(out);
    }
    pixDestroy(&pix);
    ib_image_close(&img);
    return rep->code;
}

/* Plain text, drawn from the engine's reading of it: each word's characters in its cells, so the boxes of text
 * records (character columns and lines) land on them. */
static ib_code render_text(const unsigned char *bytes, size_t len, const char *file_name, long page, long dpi,
                           const char *shown, ib_reply *rep)
{
    char err[512];
    ib_doc_opts opts = {0, NULL, 0};
    ib_doc *doc = ib_doc_load(file_name, bytes, len, &opts, err, sizeof err);
    if (!doc) return ib_fail(rep, IB_BAD_REQUEST, "path: '%s' cannot be shown as a page: %s", shown, err);
    if (page > (long)doc->npages) {
        ib_fail(rep, IB_NOT_FOUND, "page: '%s' has %u page%s, there is no page %ld", shown, doc->npages,
                doc->npages == 1 ? "" : "s", page);
        ib_doc_free(doc);
        return rep->code;
    }
    const ib_page *pg = &doc->pages[page - 1];
    double cw = TEXT_CELL_W * dpi / 72.0, lh = TEXT_CELL_H * dpi / 72.0;
    int pw = 0, ph = 0; /* set by page_pixels; -O3 cannot see that */
    cairo_t *cr = NULL;
    cairo_surface_t *surf = NULL;
    if (page_pixels(pg->width, pg->height, cw, lh, page, dpi, shown, &pw, &ph, rep) == IB_OK) {
        if ((surf = white_surface(pw, ph, &cr))) {
            cairo_set_source_rgb(cr, 0, 0, 0);
            cairo_select_font_face(cr, "monospace", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
            cairo_set_font_size(cr, TEXT_FONT_PT * dpi / 72.0);
            for (uint32_t i = 0; i < pg->nwords; i++) {
                const ib_word *wd = &pg->words[i];
                const char *s = wd->text;
                double x = wd->box.x0 * cw, base = wd->box.y0 * lh + lh * 0.78;
                while (*s) { /* one code point per cell, as the engine counts columns */
                    char one[5] = {0};
                    size_t k = 1;
                    while (k < 4 && ((unsigned char)s[k] & 0xC0) == 0x80) k++;
                    memcpy(one, s, k);
                    cairo_move_to(cr, x, base);
                    cairo_show_text(cr, one);
                    s += k;
                    x += cw;
                }
            }
            cairo_destroy(cr);
            reply_surface(rep, surf, doc->npages, pg->width, pg->height, "char");
            cairo_surface_destroy(surf);
        } else {
            ib_fail(rep, IB_INTERNAL, "no memory to draw a page of %d x %d pixels", pw, ph);
        }
    }
    ib_doc_free(doc);
    return rep->code;
}

/* pages.render {path, page?, dpi?}: the caller's own drive paths only (an admin's any), as the files API. */
ib_code pages_render_op(void *state, const ib_request *req, ib_reply *rep)
{
    (void)state;
    const char *page_s = ib_arg_str(req->args, "page"), *dpi_s = ib_arg_str(req->args, "dpi");
    long page = parse_bounded(page_s, 1, 999999999, 1);
    if (page < 0) return ib_fail(rep, IB_BAD_REQUEST, "page: '%.40s' must be a whole number from 1", page_s);
    long dpi = parse_bounded(dpi_s, PAGES_DPI_MIN, PAGES_DPI_MAX, PAGES_DPI_DEFAULT);
    if (dpi < 0)
        return ib_fail(rep, IB_BAD_REQUEST, "dpi: '%.40s' must be a whole number from %d to %d", dpi_s,
                       PAGES_DPI_MIN, PAGES_DPI_MAX);
    ib_dpath p;
    char shown[IB_PATH_MAX + 2];
    if (ib_dpath_parse(ib_arg_str(req->args, "path"), &req->who, "path", &p, rep) != IB_OK) return rep->code;
    ib_dpath_show(&p, shown, sizeof shown);
    int fd = ib_drive_openat(runner_drive_fd, &p, O_RDONLY, 0);
    if (fd < 0) return ib_drive_errno_reply(errno, "path", &p, rep);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ib_fail(rep, IB_BAD_REQUEST, "path: '%s' is not a file", shown);
    }
    if (st.st_size > rcfg.max_file) {
        close(fd);
        return ib_fail(rep, IB_TOO_LARGE, "path: '%s' is %lld bytes, past the limit of %lld (IBSOL_MAX_FILE)", shown,
                       (long long)st.st_size, rcfg.max_file);
    }
    /* Read from the descriptor that was checked: the file cannot be swapped between the check and the read. */
    size_t len = 0, cap = (size_t)st.st_size;
    unsigned char *bytes = malloc(cap + 1);
    ssize_t got = 1;
    while (bytes && len < cap && (got = read(fd, bytes + len, cap - len)) > 0) len += (size_t)got;
    int read_errno = errno;
    close(fd);
    if (!bytes || got < 0) {
        free(bytes);
        return ib_fail(rep, IB_INTERNAL, "path: '%s' cannot be read: %s", shown,
                       bytes ? strerror(read_errno) : "out of memory");
    }
    const char *base = strrchr(p.rel, '/') ? strrchr(p.rel, '/') + 1 : p.rel;
    ib_file_format format = ib_file_format_of(base, bytes, len);
    if (len == 0)
        ib_fail(rep, IB_BAD_REQUEST, "path: '%s' is an empty file", shown);
    else if (format == IB_FORMAT_PDF)
        render_pdf(bytes, len, page, dpi, shown, rep);
    else if (format != IB_FORMAT_OTHER)
        render_image(bytes, len, format, page, shown, rep);
    else
        render_text(bytes, len, base, page, dpi, shown, rep);
    free(bytes);
    return rep->code;
}
