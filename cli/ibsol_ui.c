/* ibsol terminal output: progress bars on a terminal (stderr), plain lines when piped; aligned tables; CSV. */
#include "ibsol.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define DRAW_INTERVAL 0.1 /* seconds between redraws of a bar */

double ui_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int ui_width(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
    return 80;
}

const char *ui_red(void) { return cli.color ? "\033[31m" : ""; }
const char *ui_green(void) { return cli.color ? "\033[32m" : ""; }
const char *ui_bold(void) { return cli.color ? "\033[1m" : ""; }
const char *ui_reset(void) { return cli.color ? "\033[0m" : ""; }

void ui_size(uint64_t bytes, char *out, size_t outsz)
{
    if (bytes < 1024)
        snprintf(out, outsz, "%llu B", (unsigned long long)bytes);
    else if (bytes < 1024 * 1024)
        snprintf(out, outsz, "%.1f KiB", (double)bytes / 1024);
    else if (bytes < 1024ull * 1024 * 1024)
        snprintf(out, outsz, "%.1f MiB", (double)bytes / (1024 * 1024));
    else
        snprintf(out, outsz, "%.2f GiB", (double)bytes / (1024.0 * 1024 * 1024));
}

static void amount(const ui_progress *p, uint64_t v, char *out, size_t outsz)
{
    if (p->unit[0] == 'B')
        ui_size(v, out, outsz);
    else
        snprintf(out, outsz, "%llu", (unsigned long long)v);
}

static void duration(double s, char *out, size_t outsz)
{
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, outsz, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(out, outsz, "%ld:%02ld", t / 60, t % 60);
}

void ui_bar_text(const ui_progress *p, double now, int width, char *out, size_t outsz)
{
    char done[32], total[32], rate[48] = "", left[48] = "";
    amount(p, p->done, done, sizeof done);
    amount(p, p->total, total, sizeof total);
    double el = now - p->start;
    uint64_t moved = p->done > p->base ? p->done - p->base : 0;
    if (el > 0.2 && moved > 0) {
        double r = (double)moved / el;
        if (p->unit[0] == 'B') {
            char sz[32];
            ui_size((uint64_t)r, sz, sizeof sz);
            snprintf(rate, sizeof rate, "  %s/s", sz);
        } else {
            snprintf(rate, sizeof rate, "  %.1f %s/s", r, p->unit);
        }
        if (p->total > p->done) {
            char d[24];
            duration((double)(p->total - p->done) / r, d, sizeof d);
            snprintf(left, sizeof left, "  %s left", d);
        }
    }
    char tail[160];
    snprintf(tail, sizeof tail, " %s/%s%s%s%s%s", done, total, p->unit[0] == 'B' ? "" : " ",
             p->unit[0] == 'B' ? "" : p->unit, rate, left);
    int label_len = (int)strlen(p->label);
    if (label_len > 30) label_len = 30;
    int bar = width - label_len - (int)strlen(tail) - 4;
    if (bar > 40) bar = 40;
    if (bar < 5) { /* too narrow for a bar: the numbers alone */
        snprintf(out, outsz, "%.*s%s", label_len, p->label, tail);
        return;
    }
    int fill = p->total ? (int)((double)p->done / (double)p->total * bar) : 0;
    if (fill > bar) fill = bar;
    char b[48];
    for (int i = 0; i < bar; i++) b[i] = i < fill ? '#' : '.';
    b[bar] = '\0';
    snprintf(out, outsz, "%.*s [%s]%s", label_len, p->label, b, tail);
}

static void draw(ui_progress *p, int force)
{
    double now = ui_now();
    if (!force && now - p->last_draw < DRAW_INTERVAL) return;
    p->last_draw = now;
    char line[512];
    ui_bar_text(p, now, ui_width() - 1, line, sizeof line);
    fprintf(stderr, "\r\033[K%s%s%s", cli.err_color ? "\033[36m" : "", line, cli.err_color ? "\033[0m" : "");
    fflush(stderr);
    p->drawn = 1;
}

void ui_progress_start(ui_progress *p, const char *label, const char *unit, uint64_t total)
{
    memset(p, 0, sizeof *p);
    p->label = label;
    p->unit = unit;
    p->total = total;
    p->start = ui_now();
    p->plain_last = -1;
    if (cli.err_tty && !cli.quiet) draw(p, 1);
}

void ui_progress_update(ui_progress *p, uint64_t done)
{
    p->done = done;
    if (cli.quiet) return;
    if (cli.err_tty) {
        draw(p, 0);
    } else if (p->plain_every > 0 && p->total) {
        int pct = (int)(done * 100 / p->total);
        if (pct / p->plain_every != p->plain_last) {
            p->plain_last = pct / p->plain_every;
            char d[32], t[32];
            amount(p, done, d, sizeof d);
            amount(p, p->total, t, sizeof t);
            fprintf(stderr, "%s: %s/%s%s%s\n", p->label, d, t, p->unit[0] == 'B' ? "" : " ",
                    p->unit[0] == 'B' ? "" : p->unit);
        }
    }
}

void ui_progress_end(ui_progress *p)
{
    if (cli.quiet) return;
    if (cli.err_tty) {
        draw(p, 1);
        fputc('\n', stderr);
        p->drawn = 0;
    } else {
        char d[32], t[32];
        amount(p, p->done, d, sizeof d);
        amount(p, p->total, t, sizeof t);
        fprintf(stderr, "%s: %s/%s%s%s in %.1f s\n", p->label, d, t, p->unit[0] == 'B' ? "" : " ",
                p->unit[0] == 'B' ? "" : p->unit, ui_now() - p->start);
    }
}

/* ---- tables ---- */

void ui_table_init(ui_table *t, size_t cols, const char *const *header)
{
    memset(t, 0, sizeof *t);
    t->cols = cols;
    ui_table_row(t, header);
    t->rows = 0; /* the header is line 0, not a row */
}

void ui_table_row(ui_table *t, const char *const *cells)
{
    size_t line = t->cells ? t->rows + 1 : 0;
    if ((line + 1) * t->cols > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : t->cols * 16;
        char **c = realloc(t->cells, cap * sizeof *c);
        if (!c) return; /* out of memory: the row is left out */
        t->cells = c;
        t->cap = cap;
    }
    for (size_t i = 0; i < t->cols; i++) {
        const char *s = cells[i] ? cells[i] : "";
        /* one line per row: line breaks and tabs in values are shown as spaces */
        char *d = strdup(s);
        for (char *q = d; q && *q; q++)
            if (*q == '\n' || *q == '\r' || *q == '\t') *q = ' ';
        t->cells[line * t->cols + i] = d;
    }
    if (line > 0) t->rows++;
}

/* Display width of UTF-8 text (each code point one column; continuation bytes count nothing). */
static size_t text_width(const char *s)
{
    size_t w = 0;
    for (; s && *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) w++;
    return w;
}

/* Writes s cut to at most w columns (on a code point boundary), padded to w when pad. */
static void put_cell(FILE *f, const char *s, size_t w, int pad)
{
    size_t cols = 0;
    const char *p = s ? s : "";
    size_t full = text_width(p);
    int cut = full > w;
    size_t limit = cut && w > 0 ? w - 1 : w; /* room for the ellipsis */
    for (; *p; p++) {
        if (((unsigned char)*p & 0xC0) != 0x80) {
            if (cols == limit) break;
            cols++;
        }
        fputc(*p, f);
    }
    if (cut && w > 0) {
        fputs("\u2026", f);
        cols++;
    }
    while (pad && cols++ < w) fputc(' ', f);
}

void ui_table_print(const ui_table *t, FILE *f, int width, int colour)
{
    if (!t->cells) return;
    size_t *w = calloc(t->cols, sizeof *w);
    if (!w) return;
    for (size_t r = 0; r <= t->rows; r++)
        for (size_t c = 0; c < t->cols; c++) {
            size_t n = text_width(t->cells[r * t->cols + c]);
            if (n > w[c]) w[c] = n;
        }
    if (width > 0) { /* narrow the widest columns, from the last, until the line fits */
        size_t total = 0;
        for (size_t c = 0; c < t->cols; c++) total += w[c] + 2;
        while (total > (size_t)width) {
            size_t widest = t->cols - 1;
            for (size_t c = t->cols; c-- > 0;)
                if (w[c] > w[widest]) widest = c;
            if (w[widest] <= 8) break;
            w[widest]--;
            total--;
        }
    }
    for (size_t r = 0; r <= t->rows; r++) {
        if (r == 0 && colour) fputs("\033[1m", f);
        for (size_t c = 0; c < t->cols; c++) {
            put_cell(f, t->cells[r * t->cols + c], w[c], c + 1 < t->cols);
            if (c + 1 < t->cols) fputs("  ", f);
        }
        if (r == 0 && colour) fputs("\033[0m", f);
        fputc('\n', f);
    }
    free(w);
}

void ui_table_free(ui_table *t)
{
    size_t n = t->cells ? (t->rows + 1) * t->cols : 0;
    for (size_t i = 0; i < n; i++) free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

void ui_csv_field(FILE *f, const char *s)
{
    if (!s) return;
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

char *ui_cell(const json_t *v)
{
    if (!v || json_is_null(v)) return strdup("");
    if (json_is_string(v)) return strdup(json_string_value(v));
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    return s ? s : strdup("");
}
