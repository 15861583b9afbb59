/* doc: the document model's life cycle: type detection and ib_doc_load dispatch to the text, PDF and image
 * builders, ib_doc_free, and ib_doc_slice (used by split). Errors name the file, then the reason. */
#include "doc_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

uint32_t ib_doc_page_limit(const ib_doc_opts *opts)
{
    uint32_t m = opts ? opts->max_pages : 0;
    return m == 0 || m > IB_DOC_MAX_PAGES_HARD ? IB_DOC_MAX_PAGES_HARD : m;
}

static const char *ext_of(const char *name)
{
    const char *slash = strrchr(name, '/'), *dot = strrchr(name, '.');
    return dot && (!slash || dot > slash) ? dot + 1 : "";
}

static bool ext_is(const char *ext, const char *const *list)
{
    for (; *list; list++)
        if (strcasecmp(ext, *list) == 0) return true;
    return false;
}

/* Text unless it has NUL bytes or is mostly control characters (binary junk that happens to be UTF-8). */
static bool looks_like_text(const unsigned char *s, size_t len, bool need_utf8)
{
    size_t ctrl = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = ib_utf8_next(s + i, len - i, &cp);
        if (n == 0) {
            if (need_utf8) return false;
            n = 1, cp = s[i];
        }
        if (cp == 0) return false;
        if (cp < 0x20 && cp != '\n' && cp != '\r' && cp != '\t' && cp != '\f' && cp != '\v') ctrl++;
        i += n;
    }
    return ctrl * 20 <= len; /* under 5% */
}

ib_file_format ib_file_format_of(const char *file_name, const void *bytes, size_t len)
{
    const unsigned char *s = bytes;
    if (!s) return IB_FORMAT_OTHER;
    if ((len >= 5 && memcmp(s, "%PDF-", 5) == 0) ||
        (strcasecmp(ext_of(file_name ? file_name : ""), "pdf") == 0 &&
         memmem(s, len < 1024 ? len : 1024, "%PDF-", 5)))
        return IB_FORMAT_PDF;
    if (len >= 8 && memcmp(s, "\x89PNG\r\n\x1a\n", 8) == 0) return IB_FORMAT_PNG;
    if (len >= 3 && memcmp(s, "\xFF\xD8\xFF", 3) == 0) return IB_FORMAT_JPEG;
    if (len >= 4 && (memcmp(s, "II*\0", 4) == 0 || memcmp(s, "MM\0*", 4) == 0)) return IB_FORMAT_TIFF;
    return IB_FORMAT_OTHER;
}

ib_doc *ib_doc_load(const char *file_name, const void *bytes, size_t len, const ib_doc_opts *opts, char *err,
                    size_t errsz)
{
    static const char *const text_exts[] = {"txt", "text", "md",  "csv", "tsv", "json",
                                            "xml", "html", "htm", "log", NULL};
    static const ib_doc_opts defaults = {0, NULL, 0};
    const char *name = file_name && *file_name ? file_name : "(unnamed)";
    const unsigned char *s = bytes;
    char why[512] = "";
    ib_doc *doc = NULL;
    if (!opts) opts = &defaults;
    ib_file_format format = ib_file_format_of(name, bytes, len);
    if (!bytes || len == 0) {
        snprintf(why, sizeof why, "empty file");
    } else if (format == IB_FORMAT_PDF) {
        doc = ib_doc_from_pdf(bytes, len, opts, why, sizeof why);
    } else if (format != IB_FORMAT_OTHER) {
        if (!opts->ocr)
            snprintf(why, sizeof why, "image needs OCR, which is disabled");
        else
            doc = ib_doc_from_image(bytes, len, opts, why, sizeof why);
    } else if (strcasecmp(ext_of(name), "pdf") == 0) {
        snprintf(why, sizeof why, "not a PDF (no %%PDF header)");
    } else if (ext_is(ext_of(name), text_exts) ? looks_like_text(s, len, false)
                                               : looks_like_text(s, len, true)) {
        doc = ib_doc_from_text(s, len, opts, why, sizeof why);
    } else {
        snprintf(why, sizeof why, "unsupported format");
    }
    if (!doc && err && errsz) snprintf(err, errsz, "%s: %s", name, why[0] ? why : "cannot read");
    return doc;
}

void ib_doc_free(ib_doc *doc)
{
    if (!doc) return;
    for (uint32_t p = 0; p < doc->npages; p++)
        ib_page_clear(&doc->pages[p]);
    free(doc->pages);
    free(doc);
}

/* Copies the words of src on lines [l0, l1] into dst, renumbering lines, blocks and word indices. */
static int slice_page(ib_page *dst, const ib_page *src, uint32_t l0, uint32_t l1)
{
    memset(dst, 0, sizeof *dst);
    dst->width = src->width, dst->height = src->height;
    if (src->nlines == 0 || l0 >= src->nlines || l0 > l1) return 0;
    if (l1 >= src->nlines) l1 = src->nlines - 1;
    uint32_t *map =
        malloc((src->nwords ? src->nwords : 1) * sizeof *map); /* old word -> new, or UINT32_MAX */
    uint32_t *bmap = malloc((src->nblocks ? src->nblocks : 1) * sizeof *bmap);
    if (!map || !bmap) goto oom;
    uint32_t nw = 0;
    for (uint32_t i = 0; i < src->nwords; i++)
        map[i] = src->words[i].line >= l0 && src->words[i].line <= l1 ? nw++ : UINT32_MAX;
    dst->nlines = l1 - l0 + 1;
    dst->words = calloc(nw ? nw : 1, sizeof *dst->words);
    dst->lines = calloc(dst->nlines, sizeof *dst->lines);
    dst->blocks = calloc(src->nblocks ? src->nblocks : 1, sizeof *dst->blocks);
    if (!dst->words || !dst->lines || !dst->blocks) goto oom;
    for (uint32_t b = 0; b < src->nblocks; b++)
        bmap[b] = UINT32_MAX;
    for (uint32_t i = 0; i < src->nwords; i++) {
        if (map[i] == UINT32_MAX) continue;
        const ib_word *w = &src->words[i];
        ib_word *d = &dst->words[dst->nwords];
        *d = *w;
        d->text = strdup(w->text);
        if (!d->text) goto oom;
        dst->nwords++;
        d->line = w->line - l0;
        if (w->block < src->nblocks && bmap[w->block] == UINT32_MAX) {
            bmap[w->block] = dst->nblocks;
            dst->blocks[dst->nblocks++] = (ib_block){map[i], 0, w->box};
        }
        ib_block *bk = &dst->blocks[bmap[w->block]];
        d->block = bmap[w->block];
        bk->nwords++;
        bk->box.x0 = fmin(bk->box.x0, w->box.x0), bk->box.y0 = fmin(bk->box.y0, w->box.y0);
        bk->box.x1 = fmax(bk->box.x1, w->box.x1), bk->box.y1 = fmax(bk->box.y1, w->box.y1);
    }
    for (uint32_t l = 0; l < dst->nlines; l++) {
        const ib_line *s = &src->lines[l0 + l];
        ib_line *d = &dst->lines[l];
        *d = *s;
        d->words = malloc((s->nwords ? s->nwords : 1) * sizeof(uint32_t));
        if (!d->words) {
            d->nwords = 0;
            goto oom;
        }
        for (uint32_t k = 0; k < s->nwords; k++)
            d->words[k] = map[s->words[k]];
    }
    if (l0 > 0) dst->lines[0].blank_before = 0;
    free(map), free(bmap);
    return 0;
oom:
    free(map), free(bmap);
    ib_page_clear(dst);
    return -1;
}

ib_doc *ib_doc_slice(const ib_doc *doc, uint32_t first_page, uint32_t first_line, uint32_t last_page,
                     uint32_t last_line)
{
    if (!doc || doc->npages == 0 || first_page > last_page || first_page >= doc->npages) return NULL;
    if (last_page >= doc->npages) last_page = doc->npages - 1, last_line = UINT32_MAX;
    ib_doc *out = calloc(1, sizeof *out);
    if (!out) return NULL;
    *out = (ib_doc){doc->kind, NULL, 0, doc->char_w, doc->line_h};
    out->pages = calloc(last_page - first_page + 1, sizeof *out->pages);
    if (!out->pages) {
        free(out);
        return NULL;
    }
    for (uint32_t p = first_page; p <= last_page; p++) {
        uint32_t l0 = p == first_page ? first_line : 0, l1 = p == last_page ? last_line : UINT32_MAX;
        if (slice_page(&out->pages[out->npages], &doc->pages[p], l0, l1) != 0) {
            ib_doc_free(out);
            return NULL;
        }
        out->npages++;
    }
    return out;
}
