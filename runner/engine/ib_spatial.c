/* ib_spatial: anchor search and the scan_right / scan_below / scan_box word selections over an ib_doc (rules
 * in ib_spatial.h). Everything works on the visual lines the document builders produce, in box units, so
 * plain text (character cells) and PDF/OCR (points) go through the same code. */
#include "ib_spatial.h"
#include "ib_textfn.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

static uint32_t fold(uint32_t cp, int icase)
{
    return icase && (cp < 0xD800 || cp > 0xDFFF) ? g_unichar_tolower(cp) : cp;
}

/* Letters and digits decide word boundaries; an invalid byte counts as one so it is never skipped over. */
static int is_alnum(uint32_t cp)
{
    return (cp >= 0xD800 && cp <= 0xDFFF) || g_unichar_isalnum(cp);
}

/* A line's characters flattened, with the line position of the word each came from. */
typedef struct flat {
    uint32_t *cp, *pos;
    size_t n, cap;
} flat;

static int flat_push(flat *f, uint32_t cp, uint32_t pos)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 64;
        uint32_t *a = realloc(f->cp, cap * sizeof *a);
        if (!a) return -1;
        f->cp = a;
        uint32_t *b = realloc(f->pos, cap * sizeof *b);
        if (!b) return -1;
        f->pos = b;
        f->cap = cap;
    }
    f->cp[f->n] = cp, f->pos[f->n] = pos, f->n++;
    return 0;
}

static int flatten_line(const ib_page *pg, const ib_line *ln, flat *f)
{
    f->n = 0;
    for (uint32_t k = 0; k < ln->nwords; k++) {
        if (ln->words[k] >= pg->nwords) continue;
        for (const char *p = pg->words[ln->words[k]].text; p && *p;) {
            uint32_t cp;
            p += ib_utf8_next(p, &cp);
            if (!ib_uni_isspace(cp) && flat_push(f, cp, k)) return -1;
        }
    }
    return 0;
}

/* Does the anchor (m code points) match the line's characters starting at s, on word-ish boundaries? */
static int match_here(const flat *f, size_t s, const uint32_t *anc, size_t m, int icase)
{
    if (s + m > f->n) return 0;
    for (size_t i = 0; i < m; i++)
        if (fold(f->cp[s + i], icase) != fold(anc[i], icase)) return 0;
    /* what is left of the first word before s, and of the last word after the match, must be punctuation */
    for (size_t i = s; i > 0 && f->pos[i - 1] == f->pos[s]; i--)
        if (is_alnum(f->cp[i - 1])) return 0;
    size_t e = s + m - 1;
    for (size_t i = e + 1; i < f->n && f->pos[i] == f->pos[e]; i++)
        if (is_alnum(f->cp[i])) return 0;
    return 1;
}

static int find_pass(const ib_doc *doc, const uint32_t *anc, size_t m, int icase, flat *f, ib_anchor *out)
{
    for (uint32_t p = 0; p < doc->npages; p++) {
        const ib_page *pg = &doc->pages[p];
        for (uint32_t l = 0; l < pg->nlines; l++) {
            const ib_line *ln = &pg->lines[l];
            if (flatten_line(pg, ln, f)) return -1;
            for (size_t s = 0; s + m <= f->n; s++) {
                if (!match_here(f, s, anc, m, icase)) continue;
                out->page = p, out->line = l;
                out->first = f->pos[s], out->last = f->pos[s + m - 1];
                out->box = pg->words[ln->words[out->first]].box;
                for (uint32_t k = out->first + 1; k <= out->last; k++) {
                    const ib_bbox *b = &pg->words[ln->words[k]].box;
                    if (b->x0 < out->box.x0) out->box.x0 = b->x0;
                    if (b->y0 < out->box.y0) out->box.y0 = b->y0;
                    if (b->x1 > out->box.x1) out->box.x1 = b->x1;
                    if (b->y1 > out->box.y1) out->box.y1 = b->y1;
                }
                return 0;
            }
        }
    }
    return 1;
}

int ib_anchor_find(const ib_doc *doc, const char *anchor, ib_anchor *out)
{
    if (!doc || !anchor || !out) return -1;
    size_t m = 0, cap = strlen(anchor) + 1;
    uint32_t *anc = malloc(cap * sizeof *anc);
    if (!anc) return -1;
    for (const char *p = anchor; *p;) {
        uint32_t cp;
        p += ib_utf8_next(p, &cp);
        if (!ib_uni_isspace(cp)) anc[m++] = cp;
    }
    int rc = 1;
    flat f = {0};
    if (m) {
        rc = find_pass(doc, anc, m, 0, &f, out);
        if (rc == 1) rc = find_pass(doc, anc, m, 1, &f, out);
    }
    free(f.cp);
    free(f.pos);
    free(anc);
    return rc;
}

void ib_wlist_free(ib_wlist *l)
{
    if (!l) return;
    free(l->refs);
    l->refs = NULL;
    l->n = 0;
}

static int add_ref(ib_wlist *l, uint32_t page, uint32_t word)
{
    ib_wref *r = realloc(l->refs, (l->n + 1) * sizeof *r);
    if (!r) return -1;
    l->refs = r;
    r[l->n].page = page, r[l->n].word = word;
    l->n++;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The typical width of one character on the line: the median over its words of width / characters. The
 * median keeps one stretched or glued word from moving the column-gap threshold. */
static double char_width(const ib_doc *doc, const ib_page *pg, const ib_line *ln)
{
    double fallback = doc->char_w > 0 ? doc->char_w : 1.0;
    if (!ln->nwords) return fallback;
    double *w = malloc(ln->nwords * sizeof *w);
    if (!w) return fallback;
    size_t n = 0;
    for (uint32_t k = 0; k < ln->nwords; k++) {
        const ib_word *wd = &pg->words[ln->words[k]];
        glong chars = g_utf8_strlen(wd->text, -1);
        if (chars > 0 && wd->box.x1 > wd->box.x0) w[n++] = (wd->box.x1 - wd->box.x0) / (double)chars;
    }
    double cw = fallback;
    if (n) {
        qsort(w, n, sizeof *w, cmp_double);
        cw = n % 2 ? w[n / 2] : (w[n / 2 - 1] + w[n / 2]) / 2;
    }
    free(w);
    return cw;
}

static const ib_bbox *line_box(const ib_page *pg, const ib_line *ln, uint32_t k)
{
    return &pg->words[ln->words[k]].box;
}

/* Every scan starts alike: an empty result, then the anchor. 0, 1 (no anchor) or -1. */
static int scan_start(const ib_doc *doc, const char *anchor, ib_wlist *out, ib_anchor *a)
{
    if (!out) return -1;
    out->refs = NULL, out->n = 0;
    return ib_anchor_find(doc, anchor, a);
}

int ib_scan_right(const ib_doc *doc, const char *anchor, ib_wlist *out)
{
    ib_anchor a;
    int rc = scan_start(doc, anchor, out, &a);
    if (rc) return rc;
    const ib_page *pg = &doc->pages[a.page];
    const ib_line *ln = &pg->lines[a.line];
    double gap = IB_SPATIAL_GAP_CHARS * char_width(doc, pg, ln);
    for (uint32_t k = a.last + 1; k < ln->nwords; k++) {
        if (k > a.last + 1 && line_box(pg, ln, k)->x0 - line_box(pg, ln, k - 1)->x1 > gap) break;
        if (add_ref(out, a.page, ln->words[k])) {
            ib_wlist_free(out);
            return -1;
        }
    }
    return 0;
}

/* A word ending in ':' labels the value after it ("Date: 03/15/2024"), so widening a value stops there. */
static int is_label(const ib_page *pg, const ib_line *ln, uint32_t k)
{
    const char *t = pg->words[ln->words[k]].text;
    size_t n = strlen(t);
    return n && t[n - 1] == ':';
}

int ib_scan_below(const ib_doc *doc, const char *anchor, ib_wlist *out)
{
    ib_anchor a;
    int rc = scan_start(doc, anchor, out, &a);
    if (rc) return rc;
    const ib_page *pg = &doc->pages[a.page];
    for (uint32_t l = a.line + 1; l < pg->nlines; l++) {
        const ib_line *ln = &pg->lines[l];
        if ((ln->box.y0 + ln->box.y1) / 2 <= a.box.y1) continue; /* same row, e.g. a raised word */
        int64_t lo = -1, hi = -1;
        for (uint32_t k = 0; k < ln->nwords; k++) {
            const ib_bbox *b = line_box(pg, ln, k);
            if (b->x0 < a.box.x1 && b->x1 > a.box.x0) {
                if (lo < 0) lo = k;
                hi = k;
            }
        }
        if (lo < 0) continue;
        double gap = IB_SPATIAL_GAP_CHARS * char_width(doc, pg, ln);
        while (lo > 0 && line_box(pg, ln, (uint32_t)lo)->x0 - line_box(pg, ln, (uint32_t)lo - 1)->x1 <= gap &&
               !is_label(pg, ln, (uint32_t)lo - 1))
            lo--;
        while (hi + 1 < ln->nwords &&
               line_box(pg, ln, (uint32_t)hi + 1)->x0 - line_box(pg, ln, (uint32_t)hi)->x1 <= gap &&
               !is_label(pg, ln, (uint32_t)hi + 1))
            hi++;
        for (int64_t k = lo; k <= hi; k++) {
            if (add_ref(out, a.page, ln->words[k])) {
                ib_wlist_free(out);
                return -1;
            }
        }
        break;
    }
    return 0;
}

typedef struct keyed {
    uint32_t line;
    double x;
    ib_wref ref;
} keyed;

static int cmp_keyed(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->line != y->line) return x->line < y->line ? -1 : 1;
    return (x->x > y->x) - (x->x < y->x);
}

int ib_scan_box(const ib_doc *doc, const char *anchor, double right, double below, ib_wlist *out)
{
    ib_anchor a;
    int rc = scan_start(doc, anchor, out, &a);
    if (rc) return rc;
    const ib_page *pg = &doc->pages[a.page];
    const ib_line *aln = &pg->lines[a.line];
    double x0 = a.box.x0, y0 = a.box.y0;
    double x1 = a.box.x1 + (right > 0 ? right : 0), y1 = a.box.y1 + (below > 0 ? below : 0);
    keyed *ks = malloc((pg->nwords ? pg->nwords : 1) * sizeof *ks);
    if (!ks) return -1;
    size_t n = 0;
    for (uint32_t w = 0; w < pg->nwords; w++) {
        const ib_bbox *b = &pg->words[w].box;
        double cx = (b->x0 + b->x1) / 2, cy = (b->y0 + b->y1) / 2;
        if (cx < x0 || cx > x1 || cy < y0 || cy > y1) continue;
        int in_anchor = 0;
        for (uint32_t k = a.first; k <= a.last; k++)
            in_anchor |= aln->words[k] == w;
        if (in_anchor) continue;
        ks[n].line = pg->words[w].line, ks[n].x = b->x0;
        ks[n].ref.page = a.page, ks[n].ref.word = w;
        n++;
    }
    qsort(ks, n, sizeof *ks, cmp_keyed);
    if (n) {
        out->refs = malloc(n * sizeof *out->refs);
        if (!out->refs) {
            free(ks);
            return -1;
        }
        for (size_t i = 0; i < n; i++)
            out->refs[i] = ks[i].ref;
        out->n = n;
    }
    free(ks);
    return 0;
}

static const ib_word *ref_word(const ib_doc *doc, const ib_wref *r)
{
    if (r->page >= doc->npages || r->word >= doc->pages[r->page].nwords) return NULL;
    return &doc->pages[r->page].words[r->word];
}

char *ib_wlist_text(const ib_doc *doc, const ib_wlist *l)
{
    if (!doc || !l) return NULL;
    size_t len = 1;
    for (size_t i = 0; i < l->n; i++) {
        const ib_word *w = ref_word(doc, &l->refs[i]);
        if (w) len += strlen(w->text) + 1;
    }
    char *r = malloc(len), *o = r;
    if (!r) return NULL;
    const ib_wref *prev = NULL;
    const ib_word *pw = NULL;
    for (size_t i = 0; i < l->n; i++) {
        const ib_word *w = ref_word(doc, &l->refs[i]);
        if (!w) continue;
        if (pw) *o++ = prev->page == l->refs[i].page && pw->line == w->line ? ' ' : '\n';
        size_t wl = strlen(w->text);
        memcpy(o, w->text, wl);
        o += wl;
        prev = &l->refs[i], pw = w;
    }
    *o = 0;
    return r;
}

static int cmp_pbox(const void *a, const void *b)
{
    const ib_pbox *x = a, *y = b;
    return (x->page > y->page) - (x->page < y->page);
}

int ib_wlist_bboxes(const ib_doc *doc, const ib_wlist *l, ib_pbox **out, size_t *n)
{
    if (!doc || !l || !out || !n) return -1;
    *out = NULL, *n = 0;
    ib_pbox *b = NULL;
    size_t nb = 0;
    for (size_t i = 0; i < l->n; i++) {
        const ib_word *w = ref_word(doc, &l->refs[i]);
        if (!w) continue;
        size_t j = 0;
        while (j < nb && b[j].page != l->refs[i].page)
            j++;
        if (j == nb) {
            ib_pbox *nbx = realloc(b, (nb + 1) * sizeof *nbx);
            if (!nbx) {
                free(b);
                return -1;
            }
            b = nbx;
            b[nb].page = l->refs[i].page, b[nb].box = w->box;
            nb++;
            continue;
        }
        ib_bbox *u = &b[j].box;
        if (w->box.x0 < u->x0) u->x0 = w->box.x0;
        if (w->box.y0 < u->y0) u->y0 = w->box.y0;
        if (w->box.x1 > u->x1) u->x1 = w->box.x1;
        if (w->box.y1 > u->y1) u->y1 = w->box.y1;
    }
    if (nb > 1) qsort(b, nb, sizeof *b, cmp_pbox);
    *out = b, *n = nb;
    return 0;
}
