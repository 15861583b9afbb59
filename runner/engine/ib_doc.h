/* ib_doc: the one document model of the engine. Every input (plain text, PDF text layer, OCR of images or
 * scanned pages) becomes pages of words with boxes, grouped into visual lines and reading-order blocks, so the
 * spatial formula functions work the same on every kind of input.
 *
 * Ownership: an ib_doc owns everything it points to; ib_doc_free releases it all. Strings are UTF-8, NUL-terminated.
 * Coordinates: origin at the page's top-left, x to the right, y downwards. Units are PDF points for PDF and OCR
 * input (OCR pixels are scaled to points at the image's resolution, 72 dpi assumed when unknown), and character
 * columns / line numbers for plain text (a character cell is 1 wide and 1 high). */
#ifndef IB_DOC_H
#define IB_DOC_H

#include <stddef.h>
#include <stdint.h>

typedef struct ib_bbox {
    double x0, y0, x1, y1; /* x0 <= x1, y0 <= y1 */
} ib_bbox;

typedef enum ib_doc_kind { IB_DOC_TEXT = 1, IB_DOC_PDF, IB_DOC_IMAGE } ib_doc_kind;

typedef struct ib_word {
    char *text;     /* never empty, no white space inside */
    ib_bbox box;
    float conf;     /* OCR confidence 0..100; -1 when the word did not come from OCR */
    uint32_t line;  /* index into the page's lines */
    uint32_t block; /* index into the page's blocks */
    uint32_t col;   /* added: column where the layout rendering prints the word (0 for hand-built docs) */
} ib_word;

/* A visual line: words sharing a baseline, left to right, across columns. */
typedef struct ib_line {
    uint32_t *words; /* indices into the page's words, sorted by x */
    uint32_t nwords;
    ib_bbox box;
    uint32_t blank_before; /* added: blank lines the layout rendering prints before this line (0..4) */
} ib_line;

/* A text block (a paragraph or a column chunk). page->words is stored in reading order, so a block is a
 * contiguous range of it; blocks are in reading order too (a three-column page: column 1's blocks, then 2, 3). */
typedef struct ib_block {
    uint32_t first_word, nwords;
    ib_bbox box;
} ib_block;

typedef struct ib_page {
    double width, height;
    ib_word *words; /* reading order */
    uint32_t nwords;
    ib_line *lines; /* top to bottom */
    uint32_t nlines;
    ib_block *blocks; /* reading order */
    uint32_t nblocks;
} ib_page;

typedef struct ib_doc {
    ib_doc_kind kind;
    ib_page *pages;
    uint32_t npages;
    /* The width of one character column and the height of one text line in box units: 1/1 for plain text;
     * for PDF and OCR estimated from the glyphs (used by the layout rendering and by scan_box on text). */
    double char_w, line_h;
} ib_doc;

typedef struct ib_doc_opts {
    int ocr;                 /* run OCR on images and on PDF pages without a text layer */
    const char *ocr_langs;   /* tesseract language string, e.g. "eng" or "eng+deu"; NULL = "eng" */
    uint32_t max_pages;      /* refuse documents with more pages (0 = no limit) */
} ib_doc_opts;

/* What a file holds, by its content: the magic bytes of PDF, PNG, JPEG and TIFF; a PDF header within the first
 * kilobyte counts too for a name ending in .pdf (Poppler, like Acrobat, accepts junk before it; a text file of
 * another name quoting "%PDF-" stays text). IB_FORMAT_OTHER: text or nothing the engine reads. */
typedef enum ib_file_format {
    IB_FORMAT_OTHER = 0,
    IB_FORMAT_PDF,
    IB_FORMAT_PNG,
    IB_FORMAT_JPEG,
    IB_FORMAT_TIFF
} ib_file_format;
ib_file_format ib_file_format_of(const char *file_name, const void *bytes, size_t len);

/* The pages of an image file decoded with Leptonica: one for PNG and JPEG, every page of a TIFF. */
struct Pix;
struct Pixa;
typedef struct ib_image {
    struct Pixa *pixa; /* a TIFF's pages */
    struct Pix *one;   /* any other image */
    int npages;        /* 0: the bytes could not be decoded */
} ib_image;
int ib_image_open(const void *bytes, size_t len, ib_image *img); /* returns img->npages */
struct Pix *ib_image_page(const ib_image *img, int i);           /* page i from 0, a clone: pixDestroy it */
void ib_image_close(ib_image *img);

/* Builds a document from a file's bytes. The type is detected by content (magic bytes: %PDF, PNG, JPEG, TIFF),
 * falling back to the name's extension for text. Returns NULL and a message in err (naming the file and the
 * reason: "encrypted PDF", "empty file", "unsupported format", ...) when the file cannot be read. */
ib_doc *ib_doc_load(const char *file_name, const void *bytes, size_t len, const ib_doc_opts *opts, char *err,
                    size_t errsz);
void ib_doc_free(ib_doc *doc);
/* Added: releases the calling thread's cached OCR engine (worker threads release theirs when they exit). */
void ib_doc_thread_cleanup(void);

/* A new document holding pages [first_page, last_page] and, on the first and last of those, only the lines
 * from first_line (on first_page) up to last_line inclusive (on last_page); UINT32_MAX = to the page's end.
 * Used by split. The caller owns the result. */
ib_doc *ib_doc_slice(const ib_doc *doc, uint32_t first_page, uint32_t first_line, uint32_t last_page,
                     uint32_t last_line);

/* Where a word landed in a rendered text, so a regex match on the text can be traced back to its words. */
typedef struct ib_span {
    size_t start, end; /* byte offsets in text, end exclusive */
    uint32_t page, word;
} ib_span;

typedef struct ib_text {
    char *text; /* NUL-terminated */
    size_t len;
    ib_span *spans; /* sorted by start */
    size_t nspans;
} ib_text;

/* The layout-preserving rendering (INPUT_COL as text): each visual line's words placed at their x positions in
 * character columns, one text line per visual line (blank lines kept for vertical gaps), pages separated by a
 * form feed, as `pdftotext -layout` prints them. */
int ib_doc_layout_text(const ib_doc *doc, ib_text *out);
/* The text in reading order: blocks one after another, words of a block joined by spaces and its lines by
 * newlines, blocks separated by a blank line, pages by a form feed. */
int ib_doc_reading_text(const ib_doc *doc, ib_text *out);
void ib_text_free(ib_text *t);

/* JSON-ready description of the document for .ibdoc output lives with the engine's output code. */

#endif
