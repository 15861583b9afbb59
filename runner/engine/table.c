/* table: layout tables. The header line gives the columns (its words grouped at column gaps, and split at the
 * titles the formula names); every later line's words are grouped the same way and each group goes to the
 * column whose span it overlaps most. A line either starts a row or continues the row above (multi-line
 * cells). The rows of a page end at the end pattern, the page's end or a large vertical gap; on the next page
 * they go on after a repeated header (or from the top with "continues"). Works on every document kind: plain
 * text has character columns and line numbers as boxes. */
#include "ib_table.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Words further apart than this many character widths are in different columns (plain text: two spaces). */
#define TABLE_GAP_CHARS 1.5

typedef struct tcol {
    double x0, x1;   /* the column's region on the line: from the middle of the gap on its left to the one on
                      * its right (the first and last reach the page's edges) */
    double sx0, sx1; /* the header words' own span (what tables() aligns other lines with) */
    char title[256];
    int out; /* index of the output column, or -1 when the column is not returned */
} tcol;

typedef struct tctx {
    ib_eval *ev;
    const ib_doc *doc;
    const ib_table_spec *sp;
    tcol cols[IB_TABLE_MAX_COLS];
    size_t ncols;
    const char *names[IB_TABLE_MAX_COLS]; /* output column names (borrowed from cols, spec or opts) */
    size_t nout;
    int key; /* header column whose non-empty cell starts a row; -1 none */
    pcre2_code *row_start;
    double gap;       /* the column gap in box units */
    int any_line;     /* tables(): the header is the line asked about, whatever it says */
    uint32_t stop_at; /* tables(): the rows end before this line of the header's page (0: no such end) */
    char *buf;        /* line_text's buffer */
    size_t cap;
    pcre2_match_data *md; /* line_matches' */
} tctx;

static void tctx_free(tctx *t)
{
    free(t->buf);
    pcre2_match_data_free(t->md);
}

static const ib_line *line_at(const ib_doc *doc, uint32_t page, uint32_t line)
{
    return &doc->pages[page].lines[line];
}

static const ib_word *word_of(const ib_doc *doc, uint32_t page, const ib_line *ln, uint32_t i)
{
    return &doc->pages[page].words[ln->words[i]];
}

/* The words of a line joined by single spaces, in t->buf: what the header, end and row_start patterns see.
 * The buffer is kept for the next line (one allocation per table, not one per line). */
static const char *line_text(tctx *t, uint32_t page, const ib_line *ln, size_t *len)
{
    size_t n = 1;
    for (uint32_t i = 0; i < ln->nwords; i++)
        n += strlen(word_of(t->doc, page, ln, i)->text) + 1;
    if (n > t->cap) {
        char *nb = realloc(t->buf, n);
        if (!nb) abort();
        t->buf = nb, t->cap = n;
    }
    char *o = t->buf;
    for (uint32_t i = 0; i < ln->nwords; i++) {
        if (i) *o++ = ' ';
        size_t wl = strlen(word_of(t->doc, page, ln, i)->text);
        memcpy(o, word_of(t->doc, page, ln, i)->text, wl);
        o += wl;
    }
    *o = '\0';
    *len = (size_t)(o - t->buf);
    return t->buf;
}

/* 1 when re matches the line, 0 when not, -1 when matching failed (match limit): *err set. */
static int line_matches(tctx *t, const pcre2_code *re, uint32_t page, const ib_line *ln, const char *what,
                        ib_value **err)
{
    size_t len;
    const char *s = line_text(t, page, ln, &len);
    if (!t->md && !(t->md = pcre2_match_data_create(1, NULL))) abort(); /* match or not: one pair is enough */
    int rc = pcre2_match(re, (PCRE2_SPTR)s, len, 0, 0, t->md, t->ev->mctx);
    if (rc >= 0) return 1;
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    PCRE2_UCHAR buf[160];
    pcre2_get_error_message(rc, buf, sizeof buf);
    *err = ib_v_error("table: %s: %s", what, (const char *)buf);
    return -1;
}

/* A word equals a title's word ignoring case; the document's word may end in ':' ("Qty:"). */
static int word_eq(const char *w, const char *tw, size_t tl)
{
    size_t wl = strlen(w);
    if (wl == tl + 1 && w[tl] == ':') wl = tl;
    return wl == tl && strncasecmp(w, tw, tl) == 0;
}

/* Where title matches consecutive words of the line at or after word `from`: *first, *last (inclusive). */
static int find_title(const ib_doc *doc, uint32_t page, const ib_line *ln, uint32_t from, const char *title,
                      uint32_t *first, uint32_t *last)
{
    for (uint32_t s = from; s < ln->nwords; s++) {
        const char *p = title;
        uint32_t i = s;
        int ok = 1;
        for (;;) {
            while (*p == ' ' || *p == '\t')
                p++;
            if (!*p) break;
            size_t tl = strcspn(p, " \t");
            if (i >= ln->nwords || !word_eq(word_of(doc, page, ln, i)->text, p, tl)) {
                ok = 0;
                break;
            }
            p += tl, i++;
        }
        if (ok && i > s) {
            *first = s, *last = i - 1;
            return 1;
        }
    }
    return 0;
}

static void append_title(char *title, size_t sz, const char *w)
{
    size_t n = strlen(title);
    if (n && n + 1 < sz) title[n++] = ' ', title[n] = '\0';
    snprintf(title + n, sz - n, "%s", w);
}

/* Whether line `li` of page is the header; when it is, sets t->cols (the regions) and their titles. 1 yes, 0
 * no, -1 error (*err). */
static int header_at(tctx *t, uint32_t page, uint32_t li, ib_value **err)
{
    const ib_line *ln = line_at(t->doc, page, li);
    const ib_table_spec *sp = t->sp;
    if (ln->nwords == 0) return 0;
    uint32_t tfirst[IB_TABLE_MAX_COLS], tlast[IB_TABLE_MAX_COLS];
    if (sp->ntitles) {
        uint32_t from = 0;
        for (size_t k = 0; k < sp->ntitles; k++) {
            if (!find_title(t->doc, page, ln, from, sp->titles[k], &tfirst[k], &tlast[k])) return 0;
            from = tlast[k] + 1;
        }
    } else if (!t->any_line) {
        int m = line_matches(t, sp->header_rx, page, ln, "the header", err);
        if (m <= 0) return m;
    }
    /* the header's columns: word groups split at column gaps and around each named title */
    tcol cols[IB_TABLE_MAX_COLS];
    size_t nc = 0;
    const ib_table_opts *o = sp->opts;
    int col_of_word[4096];
    uint32_t nw = ln->nwords < 4096 ? ln->nwords : 4096;
    if (o && o->nbounds) { /* explicit boundaries: the regions are given, the titles are the words in them */
        nc = o->nbounds + 1;
        for (size_t j = 0; j < nc; j++) {
            cols[j].x0 = cols[j].sx0 = j ? o->bounds[j - 1] : -INFINITY;
            cols[j].x1 = cols[j].sx1 = j < o->nbounds ? o->bounds[j] : INFINITY;
            cols[j].title[0] = '\0';
        }
        for (uint32_t i = 0; i < nw; i++) {
            const ib_bbox *b = &word_of(t->doc, page, ln, i)->box;
            double cx = (b->x0 + b->x1) / 2;
            size_t j = 0;
            while (j + 1 < nc && cx > cols[j].x1)
                j++;
            col_of_word[i] = (int)j;
            append_title(cols[j].title, sizeof cols[j].title, word_of(t->doc, page, ln, i)->text);
        }
    } else {
        double spans[IB_TABLE_MAX_COLS][2];
        for (uint32_t i = 0; i < nw; i++) {
            const ib_word *w = word_of(t->doc, page, ln, i);
            int starts = i == 0 || w->box.x0 - word_of(t->doc, page, ln, i - 1)->box.x1 > t->gap;
            for (size_t k = 0; k < sp->ntitles && !starts; k++)
                starts = i == tfirst[k] || i == tlast[k] + 1;
            if (starts) {
                if (nc == IB_TABLE_MAX_COLS) {
                    *err = ib_v_error("table: the header line has more than %u columns", IB_TABLE_MAX_COLS);
                    return -1;
                }
                spans[nc][0] = w->box.x0;
                cols[nc].title[0] = '\0';
                nc++;
            }
            spans[nc - 1][1] = w->box.x1;
            col_of_word[i] = (int)nc - 1;
            append_title(cols[nc - 1].title, sizeof cols[nc - 1].title, w->text);
        }
        for (size_t j = 0; j < nc; j++) {
            cols[j].x0 = j ? (spans[j - 1][1] + spans[j][0]) / 2 : -INFINITY;
            cols[j].x1 = j + 1 < nc ? (spans[j][1] + spans[j + 1][0]) / 2 : INFINITY;
            cols[j].sx0 = spans[j][0], cols[j].sx1 = spans[j][1];
        }
    }
    /* a named title gives its column the formula's spelling */
    for (size_t k = 0; k < sp->ntitles; k++)
        if (tfirst[k] < nw)
            snprintf(cols[col_of_word[tfirst[k]]].title, sizeof cols[0].title, "%s", sp->titles[k]);
    if (t->ncols && t->ncols != nc) return 0; /* a repeated header must have the first one's columns */
    for (size_t j = 0; j < nc; j++) {
        int out = t->ncols ? t->cols[j].out : -1;
        t->cols[j] = cols[j];
        t->cols[j].out = out;
    }
    t->ncols = nc;
    return 1;
}

/* Finds the header on page from line `from`: its line index, or -1 when absent, -2 on error (*err). */
static long find_header(tctx *t, uint32_t page, uint32_t from, ib_value **err)
{
    for (uint32_t li = from; li < t->doc->pages[page].nlines; li++) {
        int h = header_at(t, page, li, err);
        if (h < 0) return -2;
        if (h) return li;
    }
    return -1;
}

/* Which columns are returned, under which names, and the key column. NULL, or an error value. */
static ib_value *choose_columns(tctx *t, const char *where)
{
    const ib_table_opts *o = t->sp->opts;
    char hdr[300] = "";
    for (size_t j = 0; j < t->ncols; j++) {
        char q[64];
        ib_quote(t->cols[j].title, q, sizeof q);
        size_t n = strlen(hdr);
        snprintf(hdr + n, sizeof hdr - n, "%s'%s'", j ? ", " : "", q);
    }
    for (size_t j = 0; j < t->ncols; j++)
        t->cols[j].out = -1;
    t->nout = 0;
    if (o && o->ncolumns) {
        for (size_t i = 0; i < o->ncolumns; i++) {
            size_t j = 0;
            while (j < t->ncols &&
                   (t->cols[j].out >= 0 || !ib_table_title_eq(t->cols[j].title, o->titles[i])))
                j++;
            if (j == t->ncols) {
                char q[64];
                ib_quote(o->titles[i], q, sizeof q);
                return ib_v_error(
                    "table: options: 'columns' names '%s', which the header %s lacks (its columns: "
                    "%s)",
                    q, where, hdr);
            }
            t->cols[j].out = (int)i;
            t->names[t->nout++] = o->names[i];
        }
    } else if (t->sp->ntitles) {
        for (size_t k = 0; k < t->sp->ntitles; k++)
            for (size_t j = 0; j < t->ncols; j++)
                if (t->cols[j].out < 0 && strcmp(t->cols[j].title, t->sp->titles[k]) == 0) {
                    t->cols[j].out = (int)t->nout;
                    t->names[t->nout++] = t->sp->titles[k];
                    break;
                }
    } else {
        for (size_t j = 0; j < t->ncols; j++) {
            t->cols[j].out = (int)t->nout;
            t->names[t->nout++] = t->cols[j].title;
        }
    }
    t->key = -1;
    if (o && o->key) {
        for (size_t j = 0; j < t->ncols && t->key < 0; j++)
            if (ib_table_title_eq(t->cols[j].title, o->key) ||
                (t->cols[j].out >= 0 && strcmp(t->names[t->cols[j].out], o->key) == 0))
                t->key = (int)j;
        if (t->key < 0) {
            char q[64];
            ib_quote(o->key, q, sizeof q);
            return ib_v_error("table: options: 'key' names '%s', which is not a column of the header %s (its "
                              "columns: %s)",
                              q, where, hdr);
        }
    }
    return NULL;
}

/* Appends text (with the provenance of `from`) to a cell, a space between: continuation lines and the words
 * of one column on one line. */
static ib_value *cell_add(ib_value *cell, const char *text, size_t len, const ib_value *from, uint32_t page,
                          const ib_bbox *box)
{
    ib_value *out;
    if (!cell) {
        out = ib_v_str(text, len);
    } else {
        char *s = malloc(cell->len + len + 2);
        if (!s) abort();
        memcpy(s, cell->str, cell->len);
        s[cell->len] = ' ';
        memcpy(s + cell->len + 1, text, len);
        s[cell->len + 1 + len] = '\0';
        out = ib_v_str_take(s, cell->len + 1 + len);
        ib_v_prov_merge(out, cell);
        ib_v_unref(cell);
    }
    if (from) ib_v_prov_merge(out, from);
    if (box) ib_v_prov_add(out, page, *box);
    return out;
}

/* The end (exclusive) of the word group of a line that starts at word i: the words up to a column gap. */
static uint32_t group_end(const tctx *t, uint32_t page, const ib_line *ln, uint32_t i)
{
    uint32_t e = i + 1;
    while (e < ln->nwords &&
           word_of(t->doc, page, ln, e)->box.x0 - word_of(t->doc, page, ln, e - 1)->box.x1 <= t->gap)
        e++;
    return e;
}

/* The cells of one line: its word groups (split at column gaps), each in the column it overlaps most. */
static void line_cells(tctx *t, uint32_t page, const ib_line *ln, ib_value **cells)
{
    uint32_t i = 0;
    while (i < ln->nwords) {
        uint32_t e = group_end(t, page, ln, i);
        double x0 = word_of(t->doc, page, ln, i)->box.x0, x1 = word_of(t->doc, page, ln, e - 1)->box.x1;
        size_t best = 0;
        double best_ov = -1;
        for (size_t j = 0; j < t->ncols; j++) {
            double lo = x0 > t->cols[j].x0 ? x0 : t->cols[j].x0, hi = x1 < t->cols[j].x1 ? x1 : t->cols[j].x1;
            double ov = hi - lo;
            if (x1 <= x0)
                ov = (x0 >= t->cols[j].x0 && x0 <= t->cols[j].x1) ? 0 : -1; /* no width: where it is */
            if (ov > best_ov) best_ov = ov, best = j;
        }
        /* the group's words as one piece (one value, not one per word), with their union box */
        size_t len = 0;
        for (uint32_t k = i; k < e; k++)
            len += strlen(word_of(t->doc, page, ln, k)->text) + (k > i);
        char *txt = malloc(len + 1), *o = txt;
        if (!txt) abort();
        ib_bbox box = word_of(t->doc, page, ln, i)->box;
        for (uint32_t k = i; k < e; k++) {
            const ib_word *w = word_of(t->doc, page, ln, k);
            size_t wl = strlen(w->text);
            if (k > i) *o++ = ' ';
            memcpy(o, w->text, wl);
            o += wl;
            if (w->box.x0 < box.x0) box.x0 = w->box.x0;
            if (w->box.y0 < box.y0) box.y0 = w->box.y0;
            if (w->box.x1 > box.x1) box.x1 = w->box.x1;
            if (w->box.y1 > box.y1) box.y1 = w->box.y1;
        }
        *o = '\0';
        if (!cells[best]) {
            cells[best] = ib_v_str_take(txt, len);
            ib_v_prov_add(cells[best], page, box);
        } else {
            cells[best] = cell_add(cells[best], txt, len, NULL, page, &box);
            free(txt);
        }
        i = e;
    }
}

/* Adds the row being built to the table (when it has a returned cell) and empties it. 0, or -1 when the table
 * is full. */
static int flush_row(tctx *t, ib_value *table, ib_value **cur)
{
    ib_value *cell[IB_TABLE_MAX_COLS] = {0}; /* the returned cells, by output column */
    int any = 0;
    for (size_t j = 0; j < t->ncols; j++)
        if (cur[j] && t->cols[j].out >= 0) cell[t->cols[j].out] = cur[j], any = 1;
    ib_value *row = any ? ib_v_list() : NULL;
    for (size_t k = 0; row && k < t->nout; k++) { /* a null only for an empty cell */
        ib_v_list_push(row, cell[k] ? ib_v_ref(cell[k]) : ib_v_null());
        if (cell[k]) ib_v_prov_merge(row, cell[k]);
    }
    for (size_t j = 0; j < t->ncols; j++) {
        ib_v_unref(cur[j]);
        cur[j] = NULL;
    }
    if (!row) return 0;
    ib_v_prov_merge(table, row);
    return ib_v_list_push(table, row);
}

static ib_value *read_rows(tctx *t, ib_value *table, uint32_t page, long hline)
{
    const ib_doc *doc = t->doc;
    const ib_table_opts *o = t->sp->opts;
    double max_gap = (o ? o->max_gap : 2.5) * (doc->line_h > 0 ? doc->line_h : 1);
    ib_value *cur[IB_TABLE_MAX_COLS] = {0}, *err = NULL;
    int have_row = 0, done = 0;
    uint32_t li = (uint32_t)hline + 1;
    double prev_y1 = line_at(doc, page, (uint32_t)hline)->box.y1;
    while (!done && !err) {
        if (ib_eval_spent(t->ev)) {
            done = -1;
            break;
        }
        const ib_line *ln = li < doc->pages[page].nlines ? line_at(doc, page, li) : NULL;
        if (t->stop_at && li >= t->stop_at) break;   /* tables(): the aligned lines end here */
        if (!ln || ln->box.y0 - prev_y1 > max_gap) { /* the rows of this page end: look at the next page */
            if (page + 1 >= doc->npages) break;
            page++;
            long h = find_header(t, page, 0, &err);
            if (h == -2) break;
            if (h >= 0) {
                li = (uint32_t)h + 1;
                prev_y1 = line_at(doc, page, (uint32_t)h)->box.y1;
            } else if (o && o->continues && doc->pages[page].nlines) {
                li = 0;
                prev_y1 = line_at(doc, page, 0)->box.y0;
            } else {
                break;
            }
            continue;
        }
        li++;
        prev_y1 = ln->box.y1;
        if (ln->nwords == 0) continue;
        if (t->sp->end_rx) {
            int m = line_matches(t, t->sp->end_rx, page, ln, "end", &err);
            if (m != 0) break;
        }
        ib_value *cells[IB_TABLE_MAX_COLS] = {0};
        line_cells(t, page, ln, cells);
        int starts;
        if (t->row_start) {
            starts = line_matches(t, t->row_start, page, ln, "row_start", &err);
            if (starts < 0) starts = 0;
        } else if (t->key >= 0) {
            starts = cells[t->key] != NULL;
        } else { /* without a rule: a line with one cell only continues the row above (a wrapped text) */
            size_t filled = 0;
            for (size_t j = 0; j < t->ncols; j++)
                filled += cells[j] != NULL;
            starts = filled >= 2 || t->ncols == 1;
        }
        if (starts || !have_row) {
            if (have_row && flush_row(t, table, cur) < 0)
                err = ib_v_error("table: more than %u rows", IB_VALUE_MAX_ITEMS);
            memcpy(cur, cells, sizeof cells);
            have_row = 1;
        } else {
            for (size_t j = 0; j < t->ncols; j++)
                if (cells[j]) {
                    cur[j] = cur[j] ? cell_add(cur[j], cells[j]->str, cells[j]->len, cells[j], 0, NULL)
                                    : ib_v_ref(cells[j]);
                    ib_v_unref(cells[j]);
                }
        }
    }
    if (!err && done == 0 && have_row && flush_row(t, table, cur) < 0)
        err = ib_v_error("table: more than %u rows", IB_VALUE_MAX_ITEMS);
    for (size_t j = 0; j < IB_TABLE_MAX_COLS; j++)
        ib_v_unref(cur[j]);
    if (err || done < 0) {
        ib_v_unref(table);
        return err;
    }
    return table;
}

/* The rows under the header at line h of page, in a table of the chosen columns. */
static ib_value *read_table(tctx *t, uint32_t page, long h)
{
    ib_value *names = ib_v_list();
    for (size_t i = 0; i < t->nout; i++)
        ib_v_list_push(names, ib_v_str(t->names[i], strlen(t->names[i])));
    return read_rows(t, ib_v_table(names), page, h);
}

ib_value *ib_table_read(ib_eval *ev, const ib_doc *doc, const ib_table_spec *spec)
{
    tctx t = {.ev = ev, .doc = doc, .sp = spec, .key = -1};
    double cw = doc->char_w > 0 ? doc->char_w : (doc->line_h > 0 ? doc->line_h / 2 : 1);
    t.gap = TABLE_GAP_CHARS * cw;
    ib_value *err = NULL;
    if (spec->opts && spec->opts->row_start) {
        char msg[400];
        size_t off;
        t.row_start =
            ib_regex_compile(spec->opts->row_start, strlen(spec->opts->row_start), msg, sizeof msg, &off);
        if (!t.row_start) return ib_v_error("table: options: 'row_start': %s", msg);
    }
    long h = -1;
    uint32_t page = 0;
    for (; page < doc->npages && h == -1; page++)
        h = find_header(&t, page, 0, &err);
    ib_value *out = NULL;
    if (h == -2) {
        out = err;
    } else if (h == -1) { /* no header: no rows, under the columns the formula names */
        ib_value *names = ib_v_list();
        const ib_table_opts *o = spec->opts;
        size_t n = o && o->ncolumns ? o->ncolumns : spec->ntitles;
        for (size_t i = 0; i < n; i++) {
            const char *nm = o && o->ncolumns ? o->names[i] : spec->titles[i];
            ib_v_list_push(names, ib_v_str(nm, strlen(nm)));
        }
        out = ib_v_table(names);
    } else {
        page--;
        char where[64];
        snprintf(where, sizeof where, "on page %u", page + 1);
        out = choose_columns(&t, where);
        if (!out) out = read_table(&t, page, h);
    }
    if (t.row_start) pcre2_code_free(t.row_start);
    tctx_free(&t);
    return out;
}

char *ib_eval_row_text(ib_eval *ev, const ib_value *row)
{
    if (row->kind != IB_V_LIST) return ib_eval_text(ev, row);
    size_t len = 1;
    char **parts = calloc(row->nitems ? row->nitems : 1, sizeof *parts);
    if (!parts) abort();
    for (size_t i = 0; i < row->nitems; i++) {
        parts[i] = ib_eval_text(ev, row->items[i]);
        len += strlen(parts[i]) + 1;
    }
    char *s = malloc(len), *o = s;
    if (!s) abort();
    for (size_t i = 0; i < row->nitems; i++) {
        if (i) *o++ = '\t';
        size_t pl = strlen(parts[i]);
        memcpy(o, parts[i], pl);
        o += pl;
        free(parts[i]);
    }
    *o = '\0';
    free(parts);
    return s;
}

json_t *ib_table_json(ib_eval *ev, const ib_value *table)
{
    json_t *a = json_array();
    for (size_t r = 0; r < table->nitems; r++) {
        const ib_value *row = table->items[r];
        json_t *o = json_object();
        for (size_t c = 0; table->names && c < table->names->nitems && c < row->nitems; c++)
            json_object_set_new(o, table->names->items[c]->str, ib_eval_json(ev, row->items[c], IB_FT_TEXT));
        json_array_append_new(a, o);
    }
    return a;
}

void ib_table_names_text(const ib_value *t, char *buf, size_t bufsz)
{
    buf[0] = '\0';
    for (size_t i = 0; t->names && i < t->names->nitems; i++) {
        char q[64];
        size_t l = strlen(buf);
        ib_quote(t->names->items[i]->str, q, sizeof q);
        snprintf(buf + l, bufsz - l, "%s'%s'", i ? ", " : "", q);
    }
    if (!buf[0]) snprintf(buf, bufsz, "none");
}

/* The JSON numbers of a table's boxes, shared: a row's cells have the same top and bottom, a column's cells
 * the same left or right edge, every cell of a page the same page number. A table of 100 rows would otherwise
 * make 500 cells x 5 numbers, each its own allocation (most of a line-item record's memory, and of its time);
 * the JSON text is the same, as jansson writes a shared value wherever it appears. Coordinates are rounded to
 * hundredths, so they are keyed by their hundredths. */
#define CELL_CACHE 512 /* slots, a power of two; a collision only makes a new value */

typedef struct num_cache {
    long long key[CELL_CACHE];
    json_t *val[CELL_CACHE]; /* borrowed from the cells that hold them */
    json_t *pages[64];       /* page numbers 1..64 */
} num_cache;

static json_t *cached_real(num_cache *c, double v)
{
    double cents = round(v * 100.0);
    if (!isfinite(cents)) return json_null(); /* jansson has no such reals */
    if (!(fabs(cents) < 1e15)) return json_real(cents / 100.0); /* huge: never shared */
    long long k = (long long)cents;
    size_t h = (size_t)((unsigned long long)k * 0x9E3779B97F4A7C15ull >> 55) & (CELL_CACHE - 1);
    if (c->val[h] && c->key[h] == k) return json_incref(c->val[h]);
    /* the cell holds it; the cache borrows it while the table is made */
    json_t *j = json_real(cents / 100.0);
    c->key[h] = k, c->val[h] = j;
    return j;
}

static json_t *cached_page(num_cache *c, uint32_t page)
{
    if (page >= 64) return json_integer((json_int_t)page + 1);
    if (!c->pages[page]) c->pages[page] = json_integer((json_int_t)page + 1);
    return json_incref(c->pages[page]);
}

json_t *ib_table_cells_json(const ib_value *table)
{
    num_cache *c = calloc(1, sizeof *c);
    if (!c) abort();
    json_t *rows = json_array();
    for (size_t r = 0; r < table->nitems; r++) {
        json_t *row = json_array();
        for (size_t k = 0; k < table->items[r]->nitems; k++) {
            const ib_value *cell = table->items[r]->items[k];
            if (cell->nprov == 0) {
                json_array_append_new(row, json_null());
                continue;
            }
            const ib_bbox *b = &cell->prov[0].box; /* a cell's first page, as a field's page and bbox */
            json_t *box = json_array(), *o = json_object();
            json_array_append_new(box, cached_real(c, b->x0));
            json_array_append_new(box, cached_real(c, b->y0));
            json_array_append_new(box, cached_real(c, b->x1));
            json_array_append_new(box, cached_real(c, b->y1));
            json_object_set_new_nocheck(o, "page", cached_page(c, cell->prov[0].page));
            json_object_set_new_nocheck(o, "bbox", box);
            json_array_append_new(row, o);
        }
        json_array_append_new(rows, row);
    }
    for (size_t p = 0; p < 64; p++)
        json_decref(c->pages[p]);
    free(c);
    return rows;
}

ib_value *ib_table_types(ib_eval *ev, ib_value *t, const json_t *columns, ib_convert_fn convert)
{
    int col[IB_TABLE_MAX_COLS];
    ib_ftype type[IB_TABLE_MAX_COLS];
    size_t n = 0;
    const char *name;
    json_t *ty;
    json_object_foreach((json_t *)columns, name, ty)
    {
        if (n == IB_TABLE_MAX_COLS) break;
        int c = ib_v_table_col(t, name, strlen(name));
        if (c < 0) {
            char q[64], have[300];
            ib_quote(name, q, sizeof q);
            ib_table_names_text(t, have, sizeof have);
            ib_v_unref(t);
            return ib_v_error(
                "TABLE: 'columns' declares the column '%s', which the rows lack (their columns: %s)", q,
                have);
        }
        col[n] = c;
        if (ib_ftype_parse(json_string_value(ty), &type[n]) < 0)
            type[n] = IB_FT_TEXT; /* checked by the flow */
        n++;
    }
    /* A table held only here (what a formula just made) is converted in place, and so is each row held only
     * by it: no second table of copied rows (a line-item record has thousands of cells). A shared table or
     * row is copied first, as values never change under another holder. */
    ib_value *out = t->refs == 1 ? t : ib_v_table(ib_v_ref(t->names));
    for (size_t r = 0; r < t->nitems; r++) {
        ib_value *row = t->items[r], *nr = row;
        if (out != t || row->refs != 1) {
            nr = ib_v_list();
            for (size_t c = 0; c < row->nitems; c++)
                ib_v_list_push(nr, ib_v_ref(row->items[c]));
            ib_v_prov_merge(nr, row);
        }
        for (size_t k = 0; k < n; k++) {
            ib_value *cell = convert(ev, ib_v_ref(nr->items[col[k]]), type[k]);
            if (cell->kind == IB_V_ERROR) {
                ib_value *e = ib_v_error("TABLE: row %zu, column '%s': %s", r + 1,
                                         t->names->items[col[k]]->str, cell->str);
                ib_v_unref(cell);
                if (nr != row) ib_v_unref(nr);
                if (out != t) ib_v_unref(out);
                ib_v_unref(t);
                return e;
            }
            ib_v_unref(nr->items[col[k]]);
            nr->items[col[k]] = cell;
        }
        if (out == t && nr != row) { /* the copy of a shared row takes its place (the same cells and boxes) */
            ib_v_unref(row);
            t->items[r] = nr;
        } else if (out != t) {
            ib_v_prov_merge(out, nr);
            ib_v_list_push(out, nr);
        }
    }
    if (out != t) ib_v_unref(t);
    return out;
}

/* ---- tables(doc): every table the layout shows ---- */

/* The number of word groups of a line (split at column gaps) when each overlaps a header column's own span
 * (widened by a column gap): 0 when one does not, or when the line has more groups than the header has
 * columns. */
static size_t aligned_groups(const tctx *t, uint32_t page, const ib_line *ln)
{
    size_t groups = 0;
    uint32_t i = 0;
    while (i < ln->nwords) {
        uint32_t e = group_end(t, page, ln, i);
        double x0 = word_of(t->doc, page, ln, i)->box.x0, x1 = word_of(t->doc, page, ln, e - 1)->box.x1;
        int hit = 0;
        for (size_t j = 0; j < t->ncols && !hit; j++)
            hit = x0 <= t->cols[j].sx1 + t->gap && x1 >= t->cols[j].sx0 - t->gap;
        if (!hit) return 0;
        groups++;
        i = e;
    }
    return groups <= t->ncols ? groups : 0; /* more groups than columns: another table */
}

ib_value *ib_tables_read(ib_eval *ev, const ib_doc *doc)
{
    ib_table_spec sp = {0};
    ib_value *out = ib_v_list();
    double cw = doc->char_w > 0 ? doc->char_w : (doc->line_h > 0 ? doc->line_h / 2 : 1);
    double max_gap = 2.5 * (doc->line_h > 0 ? doc->line_h : 1);
    for (uint32_t page = 0; page < doc->npages; page++) {
        const ib_page *pg = &doc->pages[page];
        uint32_t li = 0;
        while (li < pg->nlines) {
            if (ib_eval_spent(ev)) {
                ib_v_unref(out);
                return NULL;
            }
            /* a header: a line of two or more column groups; its table: the lines below it, without a large
             * gap, whose groups all fall under its columns */
            /* no pattern is matched here (any_line, no end, no row_start): t.buf and t.md stay unallocated */
            tctx t = {.ev = ev, .doc = doc, .sp = &sp, .key = -1, .gap = TABLE_GAP_CHARS * cw, .any_line = 1};
            ib_value *err = NULL;
            if (header_at(&t, page, li, &err) <= 0 || t.ncols < 2) {
                ib_v_unref(err);
                li++;
                continue;
            }
            uint32_t e = li + 1, full = 0; /* full: lines of two or more groups (one group: a wrapped cell) */
            size_t g;
            while (e < pg->nlines &&
                   line_at(doc, page, e)->box.y0 - line_at(doc, page, e - 1)->box.y1 <= max_gap &&
                   (g = aligned_groups(&t, page, line_at(doc, page, e))) > 0)
                e++, full += g >= 2;
            if (full < 2) { /* fewer than two rows under it: not a table */
                li++;
                continue;
            }
            t.stop_at = e;
            ib_value *tb = choose_columns(&t, "");
            if (!tb) tb = read_table(&t, page, li);
            if (!tb || tb->kind == IB_V_ERROR) {
                ib_v_unref(out);
                return tb;
            }
            ib_v_prov_merge(out, tb);
            if (ib_v_list_push(out, tb) < 0) return out;
            li = e;
        }
    }
    return out;
}
