/* layout: builds a page's visual lines, blocks and layout columns from raw words, and renders documents as
 * text: the layout-preserving rendering (as `pdftotext -layout` prints a page) and the reading-order text.
 * Columns follow Poppler's physical layout: a fragment sits right of everything left of it on the page. */
#include "doc_int.h"

#include <stdlib.h>
#include <string.h>

/* Poppler's TextOutputDev constants: fragments whose baselines differ by less than this many font sizes
 * print on one line; blocks entirely right of another start this many columns after its end. */
#define IB_INTRA_LINE_DELTA 0.5
#define IB_BLOCK_GAP_COLS 3
/* The baseline sits about this far (in font sizes) above the bottom of a PDF glyph box. */
#define IB_DESCENT 0.22
/* Pairwise column constraints are quadratic: past this many fragments a page uses x positions alone. */
#define IB_MAX_PAIRWISE_FRAGS 6000u

int ib_wordbuf_push(ib_wordbuf *b, const char *text, size_t len, ib_bbox box, float conf, float fs,
                    double base, uint32_t frag, uint32_t para)
{
    if (len == 0) return 0;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        ib_rawword *v = realloc(b->v, cap * sizeof *v);
        if (!v) return -1;
        b->v = v, b->cap = cap;
    }
    char *t = malloc(len + 1);
    if (!t) return -1;
    memcpy(t, text, len);
    t[len] = '\0';
    b->v[b->n++] = (ib_rawword){t, box, conf, fs, base, frag, para};
    return 0;
}

void ib_wordbuf_clear(ib_wordbuf *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->v[i].text);
    free(b->v);
    memset(b, 0, sizeof *b);
}

void ib_page_clear(ib_page *pg)
{
    for (uint32_t i = 0; i < pg->nwords; i++)
        free(pg->words[i].text);
    free(pg->words);
    for (uint32_t i = 0; i < pg->nlines; i++)
        free(pg->lines[i].words);
    free(pg->lines);
    free(pg->blocks);
    memset(pg, 0, sizeof *pg);
}

static void bbox_union(ib_bbox *a, const ib_bbox *b, bool first)
{
    if (first) {
        *a = *b;
        return;
    }
    a->x0 = fmin(a->x0, b->x0), a->y0 = fmin(a->y0, b->y0);
    a->x1 = fmax(a->x1, b->x1), a->y1 = fmax(a->y1, b->y1);
}

/* Moves the raw words into pg->words (reading order) and builds the blocks from the para ids. */
static int take_words(ib_page *pg, ib_wordbuf *b, double width, double height)
{
    memset(pg, 0, sizeof *pg);
    pg->width = width, pg->height = height;
    if (b->n > UINT32_MAX / 2) return -1;
    uint32_t n = (uint32_t)b->n;
    if (n == 0) {
        ib_wordbuf_clear(b);
        return 0;
    }
    pg->words = calloc(n, sizeof *pg->words);
    uint32_t nb = 1;
    for (uint32_t i = 1; i < n; i++)
        nb += b->v[i].para != b->v[i - 1].para;
    pg->blocks = calloc(nb, sizeof *pg->blocks);
    if (!pg->words || !pg->blocks) {
        free(pg->words), free(pg->blocks);
        pg->words = NULL, pg->blocks = NULL;
        ib_wordbuf_clear(b);
        return -1;
    }
    uint32_t blk = 0;
    for (uint32_t i = 0; i < n; i++) {
        const ib_rawword *r = &b->v[i];
        if (i > 0 && r->para != b->v[i - 1].para) pg->blocks[++blk].first_word = i;
        pg->words[i] = (ib_word){r->text, r->box, r->conf, 0, blk, 0};
        ib_block *bk = &pg->blocks[blk];
        bbox_union(&bk->box, &r->box, bk->nwords == 0);
        bk->nwords++;
        b->v[i].text = NULL; /* moved */
    }
    pg->nwords = n, pg->nblocks = nb;
    b->n = 0; /* the texts moved; keep the capacity for the next page */
    return 0;
}

/* One line fragment: consecutive words printed single-spaced. */
typedef struct frag {
    uint32_t first, n; /* word range */
    double x0, x1, top, base, fs;
    uint32_t len; /* printed width in columns */
    uint32_t col;
} frag;

static int cmp_frag_x(const void *a, const void *b)
{
    const frag *p = *(frag *const *)a, *q = *(frag *const *)b;
    return (p->x0 > q->x0) - (p->x0 < q->x0);
}

static int cmp_frag_top(const void *a, const void *b)
{
    const frag *p = *(frag *const *)a, *q = *(frag *const *)b;
    if (fabs(p->top - q->top) >= 0.01) return (p->top > q->top) - (p->top < q->top);
    return (p->x0 > q->x0) - (p->x0 < q->x0);
}

static int cmp_frag_col(const void *a, const void *b)
{
    const frag *p = *(frag *const *)a, *q = *(frag *const *)b;
    if (p->col != q->col) return (p->col > q->col) - (p->col < q->col);
    return (p->x0 > q->x0) - (p->x0 < q->x0);
}

/* Columns as Poppler's physical layout assigns them: a fragment starts after the end (+3) of every fragment
 * entirely left of it anywhere on the page, and proportionally inside one it overlaps horizontally; never
 * left of its x position in average character widths (which places lone fragments). */
static void assign_columns(frag **byx, uint32_t nf, double minx, double cw)
{
    qsort(byx, nf, sizeof *byx, cmp_frag_x);
    bool pairwise = nf <= IB_MAX_PAIRWISE_FRAGS;
    for (uint32_t i = 0; i < nf; i++) {
        frag *f = byx[i];
        double c = floor((f->x0 - minx) / cw + 0.5);
        uint32_t col = c > 0 ? (c < 1e6 ? (uint32_t)c : 1000000u) : 0;
        for (uint32_t j = 0; pairwise && j < i; j++) {
            const frag *g = byx[j];
            uint32_t c2;
            if (g->x1 <= f->x0)
                c2 = g->col + g->len + IB_BLOCK_GAP_COLS;
            else if (g->x1 > g->x0)
                c2 = g->col + (uint32_t)((f->x0 - g->x0) / (g->x1 - g->x0) * g->len);
            else
                c2 = g->col;
            if (c2 > col) col = c2;
        }
        if (!pairwise && i > 0 && byx[i - 1]->x1 <= f->x0 && col < byx[i - 1]->col + byx[i - 1]->len + 1)
            col = byx[i - 1]->col + byx[i - 1]->len + 1;
        f->col = col;
    }
}

int ib_page_build(ib_page *pg, ib_wordbuf *b, double width, double height)
{
    ib_rawword *raw = b->v;
    size_t n = b->n;
    /* Fragments and per-page metrics need the raw fields; compute them before the words move. */
    uint32_t nf = 0;
    for (size_t i = 0; i < n; i++)
        nf += i == 0 || raw[i].frag != raw[i - 1].frag;
    frag *fr = nf ? calloc(nf, sizeof *fr) : NULL;
    frag **ord = nf ? calloc(nf, sizeof *ord) : NULL;
    if (nf && (!fr || !ord)) {
        free(fr), free(ord);
        ib_wordbuf_clear(b);
        memset(pg, 0, sizeof *pg);
        return -1;
    }
    double glyph_w = 0, glyph_n = 0, minx = INFINITY;
    uint32_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const ib_rawword *r = &raw[i];
        uint32_t cps = ib_utf8_count(r->text);
        glyph_w += r->box.x1 - r->box.x0, glyph_n += cps;
        minx = fmin(minx, r->box.x0);
        if (i == 0 || r->frag != raw[i - 1].frag) {
            frag *f = &fr[k++];
            f->first = (uint32_t)i, f->x0 = r->box.x0, f->x1 = r->box.x1, f->top = r->box.y0;
            f->fs = r->fs > 0 ? r->fs : fmax(r->box.y1 - r->box.y0, 1e-3);
            f->base = isnan(r->base) ? r->box.y1 - IB_DESCENT * f->fs : r->base;
            f->len = cps;
        } else {
            frag *f = &fr[k - 1];
            f->x0 = fmin(f->x0, r->box.x0), f->x1 = fmax(f->x1, r->box.x1), f->top = fmin(f->top, r->box.y0);
            f->len += 1 + cps;
        }
        fr[k - 1].n++;
    }
    double cw = glyph_n > 0 && glyph_w > 0 ? glyph_w / glyph_n : 1;

    if (take_words(pg, b, width, height) != 0) {
        free(fr), free(ord);
        return -1;
    }
    if (nf == 0) {
        free(fr), free(ord);
        return 0;
    }
    for (uint32_t i = 0; i < nf; i++)
        ord[i] = &fr[i];
    assign_columns(ord, nf, minx, cw);

    /* Visual lines: fragments sorted top-down, grouped by baseline, each group left to right by column; a
     * fragment that would start inside the text already printed starts a new line (as pdftotext does). */
    qsort(ord, nf, sizeof *ord, cmp_frag_top);
    uint32_t *line_of = malloc(nf * sizeof *line_of); /* by position in ord */
    ib_line *lines = calloc(nf, sizeof *lines);       /* at most one line per fragment */
    if (!line_of || !lines) {
        free(line_of), free(lines), free(fr), free(ord);
        ib_page_clear(pg);
        return -1;
    }
    uint32_t nl = 0;
    const frag *prev_last = NULL;
    for (uint32_t i = 0; i < nf;) {
        uint32_t j = i + 1;
        double delta = IB_INTRA_LINE_DELTA * ord[i]->fs;
        while (j < nf && fabs(ord[j]->base - ord[i]->base) < delta)
            j++;
        qsort(ord + i, j - i, sizeof *ord, cmp_frag_col);
        uint32_t end = 0;
        for (uint32_t q = i; q < j; q++) {
            const frag *f = ord[q];
            if (q == i || f->col < end) {
                ib_line *ln = &lines[nl++];
                if (prev_last) {
                    int d = (int)((f->base - prev_last->base) / prev_last->fs);
                    ln->blank_before = d <= 1 ? 0 : (d > 5 ? 4 : (uint32_t)d - 1);
                }
            }
            line_of[q] = nl - 1;
            lines[nl - 1].nwords += f->n;
            end = f->col + f->len;
            prev_last = f;
        }
        i = j;
    }
    for (uint32_t l = 0; l < nl; l++) {
        lines[l].words = malloc(lines[l].nwords * sizeof(uint32_t));
        if (!lines[l].words) {
            for (uint32_t m = 0; m < l; m++)
                free(lines[m].words);
            free(line_of), free(lines), free(fr), free(ord);
            ib_page_clear(pg);
            return -1;
        }
        lines[l].nwords = 0;
    }
    /* ord is in line order and, inside a line, in column order: fill each line's words left to right. */
    for (uint32_t q = 0; q < nf; q++) {
        const frag *f = ord[q];
        ib_line *ln = &lines[line_of[q]];
        uint32_t col = f->col;
        for (uint32_t w = f->first; w < f->first + f->n; w++) {
            ib_word *wd = &pg->words[w];
            wd->line = line_of[q], wd->col = col;
            col += ib_utf8_count(wd->text) + 1;
            bbox_union(&ln->box, &wd->box, ln->nwords == 0);
            ln->words[ln->nwords++] = w;
        }
    }
    pg->lines = lines, pg->nlines = nl;
    free(line_of), free(fr), free(ord);
    return 0;
}

int ib_page_build_text(ib_page *pg, ib_wordbuf *b, double width, double height)
{
    if (take_words(pg, b, width, height) != 0) return -1;
    uint32_t nl = 0;
    for (uint32_t i = 0; i < pg->nwords; i++)
        nl += i == 0 || pg->words[i].box.y0 != pg->words[i - 1].box.y0;
    if (nl == 0) return 0;
    pg->lines = calloc(nl, sizeof *pg->lines);
    if (!pg->lines) {
        ib_page_clear(pg);
        return -1;
    }
    uint32_t l = 0, start = 0;
    double prev_y = -1;
    for (uint32_t i = 0; i <= pg->nwords; i++) {
        if (i > 0 && (i == pg->nwords || pg->words[i].box.y0 != pg->words[i - 1].box.y0)) {
            ib_line *ln = &pg->lines[l];
            double y = pg->words[start].box.y0;
            ln->blank_before = (uint32_t)(y - prev_y - 1);
            prev_y = y;
            ln->nwords = i - start;
            ln->words = malloc(ln->nwords * sizeof(uint32_t));
            if (!ln->words) {
                pg->nlines = l;
                ib_page_clear(pg);
                return -1;
            }
            for (uint32_t w = start; w < i; w++) {
                ln->words[w - start] = w;
                pg->words[w].line = l;
                pg->words[w].col = (uint32_t)pg->words[w].box.x0;
                bbox_union(&ln->box, &pg->words[w].box, w == start);
            }
            l++, start = i;
        }
    }
    pg->nlines = nl;
    return 0;
}

void ib_doc_set_metrics(ib_doc *doc)
{
    double w = 0, n = 0, h = 0, nh = 0;
    for (uint32_t p = 0; p < doc->npages; p++) {
        const ib_page *pg = &doc->pages[p];
        for (uint32_t i = 0; i < pg->nwords; i++) {
            w += pg->words[i].box.x1 - pg->words[i].box.x0;
            n += ib_utf8_count(pg->words[i].text);
        }
        for (uint32_t i = 0; i < pg->nlines; i++)
            h += pg->lines[i].box.y1 - pg->lines[i].box.y0, nh++;
    }
    doc->char_w = n > 0 && w > 0 ? w / n : 6.0; /* 6 pt: a 12 pt font's average glyph */
    doc->line_h = nh > 0 && h > 0 ? h / nh : 12.0;
}

/* ---- rendering ---- */

typedef struct sbuf {
    char *s;
    size_t len, cap;
    ib_span *sp;
    size_t nsp, spcap;
    bool oom;
} sbuf;

static bool sb_reserve(sbuf *b, size_t more)
{
    if (b->oom) return false;
    if (b->len + more + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + more + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = true;
            return false;
        }
        b->s = s, b->cap = cap;
    }
    return true;
}

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (n == 0 || !sb_reserve(b, n)) return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
}

static void sb_fill(sbuf *b, char c, size_t n)
{
    if (n == 0 || !sb_reserve(b, n)) return;
    memset(b->s + b->len, c, n);
    b->len += n;
}

static void sb_word(sbuf *b, const ib_word *w, uint32_t page, uint32_t idx)
{
    size_t start = b->len, n = strlen(w->text);
    sb_put(b, w->text, n);
    if (b->oom) return;
    if (b->nsp == b->spcap) {
        size_t cap = b->spcap ? b->spcap * 2 : 256;
        ib_span *sp = realloc(b->sp, cap * sizeof *sp);
        if (!sp) {
            b->oom = true;
            return;
        }
        b->sp = sp, b->spcap = cap;
    }
    b->sp[b->nsp++] = (ib_span){start, start + n, page, idx};
}

static int sb_finish(sbuf *b, ib_text *out)
{
    if (!sb_reserve(b, 0) || b->oom) {
        free(b->s), free(b->sp);
        memset(out, 0, sizeof *out);
        return -1;
    }
    b->s[b->len] = '\0';
    *out = (ib_text){b->s, b->len, b->sp, b->nsp};
    return 0;
}

int ib_doc_layout_text(const ib_doc *doc, ib_text *out)
{
    sbuf b = {0};
    for (uint32_t p = 0; doc && p < doc->npages; p++) {
        const ib_page *pg = &doc->pages[p];
        if (p > 0) sb_put(&b, "\f", 1);
        for (uint32_t l = 0; l < pg->nlines; l++) {
            const ib_line *ln = &pg->lines[l];
            sb_fill(&b, '\n', ln->blank_before);
            uint32_t col = 0;
            for (uint32_t k = 0; k < ln->nwords; k++) {
                const ib_word *w = &pg->words[ln->words[k]];
                /* Hand-built documents carry no columns: keep words apart by one space at least. */
                uint32_t at = k > 0 && w->col <= col ? col + 1 : w->col;
                sb_fill(&b, ' ', at - col);
                sb_word(&b, w, p, ln->words[k]);
                col = at + ib_utf8_count(w->text);
            }
            sb_put(&b, "\n", 1);
        }
    }
    return sb_finish(&b, out);
}

int ib_doc_reading_text(const ib_doc *doc, ib_text *out)
{
    sbuf b = {0};
    for (uint32_t p = 0; doc && p < doc->npages; p++) {
        const ib_page *pg = &doc->pages[p];
        if (p > 0) sb_put(&b, "\f", 1);
        for (uint32_t k = 0; k < pg->nblocks; k++) {
            const ib_block *bk = &pg->blocks[k];
            if (k > 0) sb_put(&b, "\n\n", 2);
            for (uint32_t i = bk->first_word; i < bk->first_word + bk->nwords && i < pg->nwords; i++) {
                if (i > bk->first_word)
                    sb_put(&b, pg->words[i].line != pg->words[i - 1].line ? "\n" : " ", 1);
                sb_word(&b, &pg->words[i], p, i);
            }
        }
        if (pg->nblocks > 0) sb_put(&b, "\n", 1);
    }
    return sb_finish(&b, out);
}

void ib_text_free(ib_text *t)
{
    if (!t) return;
    free(t->text);
    free(t->spans);
    memset(t, 0, sizeof *t);
}
