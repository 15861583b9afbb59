/* doc_int: what the document builders (text, PDF, OCR) share: a growable list of raw words in reading order,
 * and ib_page_build, which turns it into a page of words, visual lines, blocks and layout columns.
 * Internal to the engine's document code; nothing outside runner/engine/doc*.c and layout.c includes it. */
#ifndef IB_DOC_INT_H
#define IB_DOC_INT_H

#include "ib_doc.h"

#include <math.h>
#include <stdbool.h>

#define IB_DOC_MAX_PAGES_HARD 100000u /* a ceiling even when opts->max_pages is 0 */
#define IB_DOC_MAX_WORD_BYTES 4096u   /* longer runs without white space are cut into several words */

typedef struct ib_rawword {
    char *text; /* owned */
    ib_bbox box;
    float conf;
    float fs;      /* font size (PDF) or text height (OCR), box units */
    double base;   /* baseline y; NAN = estimated from the box */
    uint32_t frag; /* words of one source line fragment, printed single-spaced, share it */
    uint32_t para; /* a change starts a new block */
} ib_rawword;

typedef struct ib_wordbuf {
    ib_rawword *v;
    size_t n, cap;
} ib_wordbuf;

/* Copies text[0..len) as a new word; returns 0 or -1 on allocation failure. */
int ib_wordbuf_push(ib_wordbuf *b, const char *text, size_t len, ib_bbox box, float conf, float fs,
                    double base, uint32_t frag, uint32_t para);
void ib_wordbuf_clear(ib_wordbuf *b);

/* Moves b's words into pg (b is left empty) and computes visual lines, blocks and layout columns the way
 * `pdftotext -layout` does (see layout.c). Returns 0 or -1 on allocation failure (pg is then empty). */
int ib_page_build(ib_page *pg, ib_wordbuf *b, double width, double height);
/* Plain text: columns and line numbers are given by the boxes (x0 = column, y0 = line number). */
int ib_page_build_text(ib_page *pg, ib_wordbuf *b, double width, double height);
void ib_page_clear(ib_page *pg);

/* Builders; they return NULL with a reason (without the file name) in err. */
ib_doc *ib_doc_from_text(const unsigned char *s, size_t len, const ib_doc_opts *opts, char *err,
                         size_t errsz);
ib_doc *ib_doc_from_pdf(const void *bytes, size_t len, const ib_doc_opts *opts, char *err, size_t errsz);
ib_doc *ib_doc_from_image(const void *bytes, size_t len, const ib_doc_opts *opts, char *err, size_t errsz);

/* OCR of one 8-bit grey image (row-major, stride bytes a row) into b, box units = pixels * scale. */
int ib_ocr_gray(const unsigned char *px, int w, int h, int stride, int dpi, double scale, const char *langs,
                ib_wordbuf *b, char *err, size_t errsz);

/* Sets the doc-wide char_w / line_h from its pages' words (PDF and OCR). */
void ib_doc_set_metrics(ib_doc *doc);

uint32_t ib_doc_page_limit(const ib_doc_opts *opts);

/* Decodes one UTF-8 code point at s (n bytes left); returns its length, or 0 when the sequence is invalid. */
static inline size_t ib_utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (n == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if ((c & 0xE0) == 0xC0) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

/* Code points in a valid UTF-8 string (a display column each, as pdftotext counts them). */
static inline uint32_t ib_utf8_count(const char *s)
{
    uint32_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

#endif
