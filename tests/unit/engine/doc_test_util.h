/* doc_test_util: helpers the document-model tests share: reading files, the in-order line similarity of two
 * renderings (the share of a reference's non-blank lines, white space collapsed, found in ours in order: a
 * longest common subsequence of lines), and the documents the tests generate themselves with cairo (so a
 * clone with nothing beside it tests the engine). The real-world PDFs are test_fixtures_pdf's, only when
 * IBSOL_FIXTURES names them. Header-only: each program includes it once (tests/tools/make_test_pdf too). */
#ifndef DOC_TEST_UTIL_H
#define DOC_TEST_UTIL_H

#include <cairo-pdf.h>
#include <cairo.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static inline char *dt_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[n] = '\0';
        *len = (size_t)n;
    }
    return b;
}

/* Writes len bytes to path; 0 on success. */
static inline int dt_write(const char *path, const void *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int rc = fwrite(b, 1, len, f) == len ? 0 : -1;
    return fclose(f) == 0 ? rc : -1;
}

/* Runs a program (found on PATH) and waits for it; its exit status, or -1 when it could not start. */
static inline int dt_run(char *const argv[])
{
    extern char **environ;
    pid_t pid;
    if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0) return -1;
    int st;
    if (waitpid(pid, &st, 0) != pid) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Splits text into its non-blank lines, white space collapsed (form feeds count as white space). */
static inline char **dt_lines(const char *text, size_t *n)
{
    size_t cap = 64, k = 0;
    char **v = malloc(cap * sizeof *v);
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char *l = malloc(len + 1), *o = l;
        int sp = 0;
        for (size_t i = 0; i < len; i++) {
            char c = p[i];
            if (c == ' ' || c == '\t' || c == '\f' || c == '\r') {
                sp = o > l;
            } else {
                if (sp) *o++ = ' ';
                sp = 0;
                *o++ = c;
            }
        }
        *o = '\0';
        if (o > l) {
            if (k == cap) v = realloc(v, (cap *= 2) * sizeof *v);
            v[k++] = l;
        } else {
            free(l);
        }
        p = e ? e + 1 : p + len;
    }
    *n = k;
    return v;
}

static inline void dt_free_lines(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Fraction of ref's non-blank lines that appear, in order, in ours. */
static inline double dt_line_similarity(const char *ref, const char *ours)
{
    size_t nr, no;
    char **r = dt_lines(ref, &nr), **o = dt_lines(ours, &no);
    unsigned *prev = calloc(no + 1, sizeof *prev), *cur = calloc(no + 1, sizeof *cur);
    for (size_t i = 1; i <= nr; i++) {
        for (size_t j = 1; j <= no; j++)
            cur[j] = strcmp(r[i - 1], o[j - 1]) == 0 ? prev[j - 1] + 1
                                                     : (prev[j] > cur[j - 1] ? prev[j] : cur[j - 1]);
        unsigned *t = prev;
        prev = cur, cur = t;
    }
    double s = nr ? (double)prev[no] / nr : 1.0;
    free(prev), free(cur);
    dt_free_lines(r, nr), dt_free_lines(o, no);
    return s;
}

/* A cairo write function collecting a surface's output (PNG or PDF) in memory. */
typedef struct membuf {
    unsigned char *p;
    size_t len, cap;
} membuf;

static inline cairo_status_t write_mem(void *closure, const unsigned char *data, unsigned int length)
{
    membuf *m = closure;
    if (m->len + length > m->cap) {
        m->cap = (m->len + length) * 2;
        m->p = realloc(m->p, m->cap);
    }
    memcpy(m->p + m->len, data, length);
    m->len += length;
    return CAIRO_STATUS_SUCCESS;
}

/* ---- generated PDFs: shaped like the real-world fixtures (columns, tables, forms, a transcript, a page
 * printed sideways), with text the tests know, so every layout assertion has an exact expected answer ---- */

typedef struct dt_pdf {
    membuf m;
    cairo_surface_t *s;
    cairo_t *cr;
} dt_pdf;

static inline void dt_pdf_begin(dt_pdf *p, double w, double h)
{
    memset(p, 0, sizeof *p);
    p->s = cairo_pdf_surface_create_for_stream(write_mem, &p->m, w, h);
    p->cr = cairo_create(p->s);
    cairo_select_font_face(p->cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(p->cr, 10);
}

/* Text with its baseline at (x, y), in points from the top left. */
static inline void dt_text(dt_pdf *p, double x, double y, double size, const char *s)
{
    cairo_set_font_size(p->cr, size);
    cairo_move_to(p->cr, x, y);
    cairo_show_text(p->cr, s);
}

/* Ends the document; the caller frees the bytes. */
static inline unsigned char *dt_pdf_end(dt_pdf *p, size_t *len)
{
    cairo_destroy(p->cr);
    cairo_surface_finish(p->s);
    cairo_surface_destroy(p->s);
    *len = p->m.len;
    return p->m.p;
}

/* Words for filler prose: none of them is in the marker sentences the tests look for. */
static const char *const dt_vocab[] = {
    "airplane", "inspection", "wing",      "panel",    "crack",    "repair",   "operator",  "model",
    "serial",   "number",     "the",       "of",       "and",      "to",       "a",         "in",
    "for",      "is",         "that",      "with",     "by",       "be",       "are",       "as",
    "each",     "may",        "must",      "within",   "hours",    "after",    "effective", "service",
    "bulletin", "procedures", "accomplish", "actions", "required", "paragraph", "fuselage", "skin",
    "lap",      "joint",      "doubler",   "flight",   "cycles",   "since",    "new",       "replace"};

static inline const char *dt_word(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u; /* a fixed sequence: every run draws the same pages */
    return dt_vocab[(*seed >> 16) % (sizeof dt_vocab / sizeof *dt_vocab)];
}

/* Text set in a column: words fill lines no wider than w, lines go down by lh until bottom. */
typedef struct dt_flow {
    dt_pdf *p;
    double x, y, w, lh, bottom, size;
    char line[512];
    size_t len;
} dt_flow;

static inline void dt_flow_line(dt_flow *f)
{
    if (f->len) dt_text(f->p, f->x, f->y, f->size, f->line);
    f->y += f->lh;
    f->len = 0;
    f->line[0] = '\0';
}

/* Adds a word; -1 when the column is full (the word is not placed). */
static inline int dt_flow_word(dt_flow *f, const char *word)
{
    if (f->y > f->bottom) return -1;
    char cand[512];
    snprintf(cand, sizeof cand, "%s%s%s", f->line, f->len ? " " : "", word);
    cairo_text_extents_t e;
    cairo_set_font_size(f->p->cr, f->size);
    cairo_text_extents(f->p->cr, cand, &e);
    if (f->len && e.x_advance > f->w) {
        dt_flow_line(f);
        if (f->y > f->bottom) return -1;
        snprintf(cand, sizeof cand, "%s", word);
    }
    snprintf(f->line, sizeof f->line, "%s", cand);
    f->len = strlen(f->line);
    return 0;
}

static inline int dt_flow_text(dt_flow *f, const char *text)
{
    char buf[1024], *save = NULL;
    snprintf(buf, sizeof buf, "%s", text);
    for (char *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save))
        if (dt_flow_word(f, w) < 0) return -1;
    return 0;
}

/* The sentences that open the three columns of the first page of dt_columns_pdf. */
static const char *const dt_col_marker[3] = {
    "This section of the register contains notices to the public of proposed issuance of rules so that "
    "interested persons may take part before the final rules are adopted.",
    "Mail: Department of Transportation, Docket Operations, West Building Ground Floor, Room 140, "
    "1200 New Jersey Avenue SE, Washington, DC 20590.",
    "Before acting on this proposal, the agency will consider all comments received by the closing date "
    "for comments."};

/* A letter-sized document of `pages` pages of `ncols` columns of 9 pt prose, lines of neighbouring columns
 * side by side; page 1 starts with the page number 47698 at the top left, then a title across the page. */
static inline unsigned char *dt_columns_pdf(int pages, int ncols, size_t *len)
{
    dt_pdf p;
    dt_pdf_begin(&p, 612, 792);
    unsigned seed = 17;
    const double left = 48, gap = 16, width = (612 - 2 * left - (ncols - 1) * gap) / ncols;
    for (int pg = 0; pg < pages; pg++) {
        double top = 60;
        if (pg == 0) {
            dt_text(&p, left, 40, 8, "47698");
            dt_text(&p, 200, 40, 8, "Federal Register / Vol. 85, No. 158 / Proposed Rules");
            dt_text(&p, left, 72, 14, "Airworthiness Directives; Transport Category Airplanes");
            top = 100;
        } else {
            char head[64];
            snprintf(head, sizeof head, "%d", 47698 + pg);
            dt_text(&p, left, 40, 8, head);
        }
        for (int c = 0; c < ncols; c++) {
            dt_flow f = {&p, left + c * (width + gap), top, width, 11, 750, 9, "", 0};
            if (pg == 0 && c < 3) {
                dt_flow_text(&f, dt_col_marker[c]);
                dt_flow_line(&f);
                f.y += 5;
            }
            for (int para = 0; f.y <= f.bottom; para++) {
                int n = 25 + (int)(seed % 40);
                for (int k = 0; k < n; k++)
                    if (dt_flow_word(&f, dt_word(&seed)) < 0) break;
                if (f.y <= f.bottom) dt_flow_line(&f), f.y += 5;
            }
        }
        cairo_show_page(p.cr);
    }
    return dt_pdf_end(&p, len);
}

/* A dense one-page election table: a header block, then candidate rows of name, party and votes in columns. */
static inline unsigned char *dt_table_pdf(size_t *len)
{
    static const char *const rows[][3] = {
        {"GAVIN NEWSOM", "DEM", "412"},    {"NEEL KASHKARI", "REP", "387"},   {"KAMALA D. HARRIS", "DEM", "455"},
        {"RONALD GOLD", "REP", "301"},     {"BETTY T. YEE", "DEM", "398"},    {"ASHLEY SWEARENGIN", "REP", "344"},
        {"JOHN CHIANG", "DEM", "420"},     {"GREG CONLON", "REP", "319"},     {"DAVE JONES", "DEM", "401"},
        {"TED GAINES", "REP", "352"},      {"TOM TORLAKSON", "NP", "276"},    {"MARSHALL TUCK", "NP", "290"}};
    dt_pdf p;
    dt_pdf_begin(&p, 612, 792);
    dt_text(&p, 50, 50, 10, "OFFICIAL ELECTION RESULTS - GENERAL ELECTION - NOVEMBER 4, 2014");
    dt_text(&p, 50, 66, 10, "PRECINCT 0850001A ACTON");
    dt_text(&p, 350, 66, 10, "1532 REGISTERED VOTERS");
    dt_text(&p, 50, 90, 9, "CANDIDATE");
    dt_text(&p, 250, 90, 9, "PARTY");
    dt_text(&p, 350, 90, 9, "VOTES");
    dt_text(&p, 430, 90, 9, "PERCENT");
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        double y = 106 + 14 * (double)i;
        char pct[16];
        snprintf(pct, sizeof pct, "%d.%d%%", 20 + (int)i * 3, (int)i % 10);
        dt_text(&p, 50, y, 9, rows[i][0]);
        dt_text(&p, 250, y, 9, rows[i][1]);
        dt_text(&p, 350, y, 9, rows[i][2]);
        dt_text(&p, 430, y, 9, pct);
    }
    dt_text(&p, 50, 300, 9, "PROPOSITION 1 - WATER BOND");
    dt_text(&p, 50, 314, 9, "VOTER NOMINATED");
    dt_text(&p, 250, 314, 9, "YES");
    dt_text(&p, 350, 314, 9, "611");
    dt_text(&p, 250, 328, 9, "NO");
    dt_text(&p, 350, 328, 9, "298");
    cairo_show_page(p.cr);
    return dt_pdf_end(&p, len);
}

/* A form: labels and values in two pairs of columns, `pages` pages (each page's case number differs). */
static inline unsigned char *dt_form_pdf(int pages, size_t *len)
{
    dt_pdf p;
    dt_pdf_begin(&p, 612, 792);
    for (int pg = 0; pg < pages; pg++) {
        char v[64];
        dt_text(&p, 50, 50, 14, "CITY POLICE DEPARTMENT");
        dt_text(&p, 50, 70, 11, "Child Safety Report");
        snprintf(v, sizeof v, "150109-DSP-Milw-%03d-90D", 505 + pg);
        dt_text(&p, 50, 110, 11, "Case Tracking Number:");
        dt_text(&p, 200, 110, 11, v);
        dt_text(&p, 360, 110, 11, "Date of Incident:");
        dt_text(&p, 460, 110, 11, "01/09/2015");
        dt_text(&p, 50, 130, 11, "Agency:");
        dt_text(&p, 200, 130, 11, "Bureau of Child Welfare");
        dt_text(&p, 360, 130, 11, "Age:");
        dt_text(&p, 460, 130, 11, "3 Year 2 Months");
        dt_text(&p, 50, 150, 11, "Special Needs:");
        dt_text(&p, 200, 150, 11, "None Reported");
        dt_text(&p, 360, 150, 11, "County:");
        dt_text(&p, 460, 150, 11, "Milwaukee");
        dt_text(&p, 50, 190, 11, "Summary of the incident and the actions taken by the agency:");
        unsigned seed = 99u + (unsigned)pg;
        dt_flow f = {&p, 50, 210, 500, 15, 700, 11, "", 0};
        for (int k = 0; k < 120; k++)
            if (dt_flow_word(&f, dt_word(&seed)) < 0) break;
        dt_flow_line(&f);
        snprintf(v, sizeof v, "Page %d of %d", pg + 1, pages);
        dt_text(&p, 270, 760, 9, v);
        cairo_show_page(p.cr);
    }
    return dt_pdf_end(&p, len);
}

/* A court transcript: numbered lines 1-25 in the margin, monospaced text. */
static inline unsigned char *dt_transcript_pdf(size_t *len)
{
    static const char *const lines[] = {
        "IN THE SUPREME COURT OF THE UNITED STATES", "", "STATE OF EXAMPLE,", "  Petitioner,",
        "v.                               No. 18-1234", "JOHN DOE,", "  Respondent.", "",
        "Washington, D.C.", "Tuesday, October 1, 2019", "",
        "The above-entitled matter came on for oral", "argument before the Supreme Court of the",
        "United States at 10:04 a.m.", "", "APPEARANCES:", "", "JANE ROE, ESQ., Solicitor General,",
        "  on behalf of the Petitioner.", "RICHARD MILES, ESQ., Washington, D.C.;",
        "  on behalf of the Respondent.", "", "", "", "Alderson Reporting Company"};
    dt_pdf p;
    dt_pdf_begin(&p, 612, 792);
    cairo_select_font_face(p.cr, "monospace", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    for (int i = 0; i < 25; i++) {
        char n[8];
        snprintf(n, sizeof n, "%2d", i + 1);
        dt_text(&p, 60, 90 + 25.0 * i, 12, n);
        if (lines[i][0]) dt_text(&p, 100, 90 + 25.0 * i, 12, lines[i]);
    }
    cairo_show_page(p.cr);
    return dt_pdf_end(&p, len);
}

/* A landscape table printed sideways on a portrait page (its text runs bottom to top), as scanners and
 * some report generators deliver it. */
static const char *const dt_states[][4] = {
    {"Alabama", "18,870", "11,234", "7,002"},   {"Alaska", "4,101", "2,322", "1,998"},
    {"Arizona", "21,455", "13,876", "6,981"},   {"Arkansas", "12,039", "6,110", "5,742"},
    {"California", "88,012", "51,204", "33,870"}, {"Colorado", "25,118", "14,203", "9,876"},
    {"Wisconsin", "30,007", "16,554", "12,899"}, {"Wyoming", "3,871", "1,902", "1,811"}};

static inline unsigned char *dt_sideways_pdf(size_t *len)
{
    dt_pdf p;
    dt_pdf_begin(&p, 612, 792);
    cairo_translate(p.cr, 0, 792);
    cairo_rotate(p.cr, -M_PI / 2); /* from here, a 792 x 612 landscape page */
    dt_text(&p, 40, 40, 12, "NICS Firearm Checks: November - 2015");
    dt_text(&p, 40, 70, 10, "State");
    dt_text(&p, 200, 70, 10, "Permit");
    dt_text(&p, 300, 70, 10, "Handgun");
    dt_text(&p, 400, 70, 10, "Long Gun");
    for (size_t i = 0; i < sizeof dt_states / sizeof *dt_states; i++) {
        double y = 90 + 16 * (double)i;
        dt_text(&p, 40, y, 10, dt_states[i][0]);
        for (int k = 1; k < 4; k++)
            dt_text(&p, 100 + 100.0 * k, y, 10, dt_states[i][k]);
    }
    dt_text(&p, 40, 90 + 16 * 9, 10, "Totals");
    dt_text(&p, 200, 90 + 16 * 9, 10, "203,473");
    cairo_show_page(p.cr);
    return dt_pdf_end(&p, len);
}

/* Paragraphs over two pages. */
static inline unsigned char *dt_prose_pdf(size_t *len)
{
    dt_pdf p;
    dt_pdf_begin(&p, 612, 792);
    unsigned seed = 5;
    for (int pg = 0; pg < 2; pg++) {
        dt_flow f = {&p, 72, 80, 468, 14, 700, 11, "", 0};
        if (pg == 0) dt_flow_text(&f, "Tempora consequuntur neque laborum quia dolorem."), dt_flow_line(&f);
        while (f.y <= f.bottom) {
            for (int k = 0; k < 60; k++)
                if (dt_flow_word(&f, dt_word(&seed)) < 0) break;
            if (f.y <= f.bottom) dt_flow_line(&f), f.y += 8;
        }
        cairo_show_page(p.cr);
    }
    return dt_pdf_end(&p, len);
}

/* Damages a PDF in place the way broken writers do: the cross-reference table's keyword is garbled and
 * startxref points elsewhere, so a reader must rebuild the table by scanning the objects (Poppler does).
 * 0 when the PDF has no table to damage. */
static inline int dt_damage_pdf(unsigned char *b, size_t len)
{
    size_t x = 0, s = 0;
    for (size_t i = len; i-- > 10 && (!x || !s);) {
        if (!x && memcmp(b + i - 1, "\nxref", 5) == 0) x = i;
        if (!s && memcmp(b + i - 10, "startxref\n", 10) == 0) s = i;
    }
    if (!x || !s || s >= len || b[s] < '0' || b[s] > '9') return 0;
    b[x + 3] = 'F';
    for (; s < len && b[s] >= '0' && b[s] <= '9'; s++)
        b[s] = '1';
    return 1;
}

#endif
