/* doc_ocr: images (PNG, JPEG, TIFF; a multi-page TIFF is several pages) and rendered PDF pages through
 * Tesseract's C API. One engine per thread, initialised on first use and kept (init loads the language
 * models: far slower than a page). Pixel boxes are scaled to points at the image's resolution (72 dpi when
 * unknown). Words within a Tesseract line are split into fragments at wide gaps (table columns). */
#include "doc_int.h"

#include <dlfcn.h>
#include <leptonica/allheaders.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tesseract/capi.h>

typedef struct ocr_engine {
    TessBaseAPI *api;
    char langs[128];
} ocr_engine;

static pthread_key_t engine_key;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static _Thread_local ocr_engine *tl_engine;

static void engine_free(void *p)
{
    ocr_engine *e = p;
    if (!e) return;
    if (e->api) {
        TessBaseAPIEnd(e->api);
        TessBaseAPIDelete(e->api);
    }
    free(e);
}

static void engine_init_once(void)
{
    pthread_key_create(&engine_key, engine_free); /* releases a worker thread's engine when it exits */
    setMsgSeverity(L_SEVERITY_NONE);              /* leptonica: decode failures are our error messages */
}

void ib_doc_thread_cleanup(void)
{
    pthread_once(&engine_once, engine_init_once);
    engine_free(tl_engine);
    tl_engine = NULL;
    pthread_setspecific(engine_key, NULL);
}

/* Debian's Tesseract runs parts of recognition in OpenMP teams of its own size (its pragmas name the thread
 * count, so omp_set_num_threads does not reach them). Our workers already use every core: the extra threads only
 * fight them and spin (6x slower per page here). max-active-levels 0 makes every OpenMP region run on the
 * calling thread alone, whatever OMP_* the environment holds. The runtime is looked up, not linked: it is
 * Tesseract's dependency, and a Tesseract built without OpenMP has none. */
static void ocr_single_threaded(void)
{
    static _Thread_local int done;
    if (done) return;
    done = 1;
    void (*set_levels)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "omp_set_max_active_levels");
    if (set_levels) set_levels(0);
}

static TessBaseAPI *engine_get(const char *langs, char *err, size_t errsz)
{
    pthread_once(&engine_once, engine_init_once);
    if (!langs || !*langs) langs = "eng";
    if (strlen(langs) >= sizeof tl_engine->langs) {
        snprintf(err, errsz, "OCR language list too long");
        return NULL;
    }
    if (tl_engine && strcmp(tl_engine->langs, langs) == 0) return tl_engine->api;
    ocr_single_threaded();
    ib_doc_thread_cleanup();
    ocr_engine *e = calloc(1, sizeof *e);
    if (!e || !(e->api = TessBaseAPICreate())) {
        free(e);
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    TessBaseAPISetVariable(e->api, "debug_file", "/dev/null"); /* no chatter on the daemon's stderr */
    if (TessBaseAPIInit3(e->api, NULL, langs) != 0) {
        engine_free(e);
        snprintf(err, errsz, "OCR languages '%s' not installed", langs);
        return NULL;
    }
    snprintf(e->langs, sizeof e->langs, "%s", langs);
    tl_engine = e;
    pthread_setspecific(engine_key, e);
    return e->api;
}

/* Recognises the image already set on api and appends its words to b, boxes scaled by scale. */
static int ocr_words(TessBaseAPI *api, double scale, ib_wordbuf *b, char *err, size_t errsz)
{
    if (TessBaseAPIRecognize(api, NULL) != 0) {
        snprintf(err, errsz, "OCR failed");
        return -1;
    }
    TessResultIterator *ri = TessBaseAPIGetIterator(api);
    if (!ri) return 0; /* nothing found */
    TessPageIterator *pi = TessResultIteratorGetPageIterator(ri);
    uint32_t frag = 0, para = 0;
    double line_fs = 12, bl_x1 = 0, bl_y1 = 0, bl_x2 = 0, bl_y2 = 0, prev_x1 = 0;
    bool first = true, have_bl = false;
    int rc = 0;
    do {
        bool new_line = TessPageIteratorIsAtBeginningOf(pi, RIL_TEXTLINE);
        if (!first &&
            (TessPageIteratorIsAtBeginningOf(pi, RIL_BLOCK) || TessPageIteratorIsAtBeginningOf(pi, RIL_PARA)))
            para++;
        if (new_line) {
            int l, t, r, bt;
            if (TessPageIteratorBoundingBox(pi, RIL_TEXTLINE, &l, &t, &r, &bt))
                line_fs = fmax((bt - t) * scale, 1.0);
            int x1, y1, x2, y2;
            have_bl = TessPageIteratorBaseline(pi, RIL_TEXTLINE, &x1, &y1, &x2, &y2);
            bl_x1 = x1, bl_y1 = y1, bl_x2 = x2, bl_y2 = y2;
        }
        int l, t, r, bt;
        char *text = TessResultIteratorGetUTF8Text(ri, RIL_WORD);
        if (!text || !TessPageIteratorBoundingBox(pi, RIL_WORD, &l, &t, &r, &bt)) {
            TessDeleteText(text);
            continue;
        }
        float conf = TessResultIteratorConfidence(ri, RIL_WORD);
        ib_bbox box = {l * scale, t * scale, r * scale, bt * scale};
        double base = NAN;
        if (have_bl) { /* the line's baseline under the word's centre */
            double cx = (l + r) / 2.0, dx = bl_x2 - bl_x1;
            base = (dx != 0 ? bl_y1 + (bl_y2 - bl_y1) * (cx - bl_x1) / dx : bl_y1) * scale;
        }
        if (!first && (new_line || box.x0 - prev_x1 > 1.5 * line_fs)) frag++;
        /* A word never holds white space: split on it, should Tesseract ever put any there. */
        for (char *s = text; *s;) {
            size_t n = strcspn(s, " \t\r\n\f\v");
            if (n > 0 && ib_wordbuf_push(b, s, n, box, conf, (float)line_fs, base, frag, para) != 0) {
                rc = -1;
                break;
            }
            s += n;
            s += strspn(s, " \t\r\n\f\v");
        }
        TessDeleteText(text);
        prev_x1 = box.x1;
        first = false;
    } while (rc == 0 && TessResultIteratorNext(ri, RIL_WORD));
    TessResultIteratorDelete(ri);
    TessBaseAPIClear(api);
    if (rc != 0) snprintf(err, errsz, "out of memory");
    return rc;
}

int ib_ocr_gray(const unsigned char *px, int w, int h, int stride, int dpi, double scale, const char *langs,
                ib_wordbuf *b, char *err, size_t errsz)
{
    TessBaseAPI *api = engine_get(langs, err, errsz);
    if (!api) return -1;
    TessBaseAPISetImage(api, px, w, h, 1, stride);
    if (dpi > 0) TessBaseAPISetSourceResolution(api, dpi);
    return ocr_words(api, scale, b, err, errsz);
}

static int ocr_pix_page(PIX *pix, const ib_doc_opts *opts, ib_page *pg, char *err, size_t errsz)
{
    TessBaseAPI *api = engine_get(opts->ocr_langs, err, errsz);
    if (!api) return -1;
    int res = pixGetXRes(pix);
    double scale = res > 0 ? 72.0 / res : 1.0;
    ib_wordbuf b = {0};
    TessBaseAPISetImage2(api, pix);
    if (res > 0) TessBaseAPISetSourceResolution(api, res);
    int rc = ocr_words(api, scale, &b, err, errsz);
    if (rc == 0 && ib_page_build(pg, &b, pixGetWidth(pix) * scale, pixGetHeight(pix) * scale) != 0) {
        snprintf(err, errsz, "out of memory");
        rc = -1;
    }
    ib_wordbuf_clear(&b);
    return rc;
}

int ib_image_open(const void *bytes, size_t len, ib_image *img)
{
    pthread_once(&engine_once, engine_init_once); /* leptonica's messages off */
    *img = (ib_image){0};
    if (ib_file_format_of(NULL, bytes, len) == IB_FORMAT_TIFF) {
        img->pixa = pixaReadMemMultipageTiff(bytes, len);
        img->npages = img->pixa ? pixaGetCount(img->pixa) : 0;
    } else {
        img->one = pixReadMem(bytes, len);
        img->npages = img->one ? 1 : 0;
    }
    return img->npages;
}

struct Pix *ib_image_page(const ib_image *img, int i)
{
    if (i < 0 || i >= img->npages) return NULL;
    return img->one ? pixClone(img->one) : pixaGetPix(img->pixa, i, L_CLONE);
}

void ib_image_close(ib_image *img)
{
    pixDestroy(&img->one);
    pixaDestroy(&img->pixa);
    img->npages = 0;
}

ib_doc *ib_doc_from_image(const void *bytes, size_t len, const ib_doc_opts *opts, char *err, size_t errsz)
{
    ib_image img;
    int n = ib_image_open(bytes, len, &img);
    ib_doc *doc = NULL;
    uint32_t limit = ib_doc_page_limit(opts);
    if (n <= 0) {
        snprintf(err, errsz, "cannot decode image");
        goto out;
    }
    if ((uint32_t)n > limit) {
        snprintf(err, errsz, "too many pages (%d, limit %u)", n, limit);
        goto out;
    }
    doc = calloc(1, sizeof *doc);
    if (!doc || !(doc->pages = calloc((size_t)n, sizeof *doc->pages))) {
        snprintf(err, errsz, "out of memory");
        ib_doc_free(doc);
        doc = NULL;
        goto out;
    }
    doc->kind = IB_DOC_IMAGE;
    for (int i = 0; i < n; i++) {
        PIX *pix = ib_image_page(&img, i);
        int rc = pix ? ocr_pix_page(pix, opts, &doc->pages[i], err, errsz) : -1;
        if (!pix) snprintf(err, errsz, "cannot decode image page %d", i + 1);
        pixDestroy(&pix);
        if (rc != 0) {
            ib_doc_free(doc);
            doc = NULL;
            goto out;
        }
        doc->npages++;
    }
    ib_doc_set_metrics(doc);
out:
    ib_image_close(&img);
    return doc;
}
