/* doc_text: plain text as a document. A form feed starts a page, each text line is a line, words are runs
 * without white space; x is the character column (code points, tabs to the next multiple of 8), y the line
 * number on the page. Blocks are paragraphs separated by blank lines. Bytes that are not UTF-8 are read as
 * Latin-1 (legacy .txt and .csv files), so every word is valid UTF-8. */
#include "doc_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tpage {
    ib_wordbuf words;
    char *wbuf; /* the current word, re-encoded as UTF-8 */
    size_t wlen, wcap;
    uint32_t wcol, col, line, para, width;
    bool line_has_words, blank_seen;
} tpage;

static int flush_word(tpage *t)
{
    if (t->wlen == 0) return 0;
    uint32_t line = t->line;
    ib_bbox box = {t->wcol, line, t->col, line + 1.0};
    if (!t->line_has_words && t->blank_seen && t->words.n > 0) t->para++;
    t->line_has_words = true, t->blank_seen = false;
    int rc = ib_wordbuf_push(&t->words, t->wbuf, t->wlen, box, -1.0f, 1.0f, NAN, line, t->para);
    t->wlen = 0;
    return rc;
}

static int add_cp(tpage *t, uint32_t cp)
{
    if (t->wlen + 4 > t->wcap) {
        size_t cap = t->wcap ? t->wcap * 2 : 64;
        char *w = realloc(t->wbuf, cap);
        if (!w) return -1;
        t->wbuf = w, t->wcap = cap;
    }
    if (t->wlen == 0) t->wcol = t->col;
    char *o = t->wbuf + t->wlen;
    if (cp < 0x80) {
        o[0] = (char)cp, t->wlen += 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6), o[1] = (char)(0x80 | (cp & 0x3F)), t->wlen += 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12), o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F)), t->wlen += 3;
    } else {
        o[0] = (char)(0xF0 | cp >> 18), o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), o[3] = (char)(0x80 | (cp & 0x3F)), t->wlen += 4;
    }
    t->col++;
    if (t->wlen >= IB_DOC_MAX_WORD_BYTES) return flush_word(t);
    return 0;
}

static int end_page(ib_doc *doc, tpage *t)
{
    if (flush_word(t) != 0) return -1;
    ib_page *pg = &doc->pages[doc->npages];
    double h = t->line + (t->col > 0 || t->line_has_words ? 1 : 0);
    if (ib_page_build_text(pg, &t->words, t->width > 0 ? t->width : 1, h > 0 ? h : 1) != 0) return -1;
    doc->npages++;
    t->col = t->line = t->para = t->width = 0;
    t->line_has_words = t->blank_seen = false;
    return 0;
}

ib_doc *ib_doc_from_text(const unsigned char *s, size_t len, const ib_doc_opts *opts, char *err, size_t errsz)
{
    uint32_t limit = ib_doc_page_limit(opts), npages = 1;
    if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) s += 3, len -= 3;
    for (size_t i = 0; i < len; i++)
        npages += s[i] == '\f';
    if (npages > 1 && len > 0 && s[len - 1] == '\f')
        npages--; /* a trailing form feed ends the last page; it starts no new one */
    if (npages > limit) {
        snprintf(err, errsz, "too many pages (%u, limit %u)", npages, limit);
        return NULL;
    }
    ib_doc *doc = calloc(1, sizeof *doc);
    tpage t = {0};
    if (!doc || !(doc->pages = calloc(npages, sizeof *doc->pages))) goto oom;
    doc->kind = IB_DOC_TEXT, doc->char_w = 1, doc->line_h = 1;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = ib_utf8_next(s + i, len - i, &cp);
        if (n == 0) n = 1, cp = s[i]; /* Latin-1 */
        i += n;
        if (cp == '\f') {
            if (i == len) break;
            if (end_page(doc, &t) != 0) goto oom;
        } else if (cp == '\n') {
            if (flush_word(&t) != 0) goto oom;
            if (!t.line_has_words) t.blank_seen = true;
            t.line++, t.col = 0, t.line_has_words = false;
        } else if (cp == '\t') {
            if (flush_word(&t) != 0) goto oom;
            t.col = (t.col / 8 + 1) * 8;
        } else if (cp == ' ' || cp == '\r' || cp == '\v') {
            if (flush_word(&t) != 0) goto oom;
            if (cp == ' ') t.col++;
        } else if (add_cp(&t, cp) != 0) {
            goto oom;
        }
        if (t.col > t.width) t.width = t.col;
    }
    if (end_page(doc, &t) != 0) goto oom;
    ib_wordbuf_clear(&t.words);
    free(t.wbuf);
    return doc;
oom:
    ib_wordbuf_clear(&t.words);
    free(t.wbuf);
    ib_doc_free(doc);
    snprintf(err, errsz, "out of memory");
    return NULL;
}
