/* doc_test_util: helpers the document-model tests share: reading fixtures, and the in-order line similarity
 * of two renderings (the share of a reference's non-blank lines, white space collapsed, found in ours in
 * order: a longest common subsequence of lines). Header-only: each test program includes it once. */
#ifndef DOC_TEST_UTIL_H
#define DOC_TEST_UTIL_H

#include <cairo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static inline char *dt_fixture(const char *name, size_t *len)
{
    const char *root = getenv("IBSOL_FIXTURES");
    char path[1024];
    snprintf(path, sizeof path, "%s/pdfs/%s", root ? root : "../shared/fixtures", name);
    return dt_read(path, len);
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

#endif
