/* ib_textfn: UTF-8 string primitives of the text formula functions. Every function first turns its input
 * into valid UTF-8 (GLib replaces bad sequences with U+FFFD), so the rest works on well-formed text; GLib
 * also supplies the Unicode case tables and NFC normalisation instead of hand-made tables. */
#include "ib_textfn.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

size_t ib_utf8_next(const char *s, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    uint32_t c = u[0], min;
    size_t n;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2, c &= 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3, c &= 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4, c &= 0x07, min = 0x10000;
    } else {
        goto bad;
    }
    for (size_t i = 1; i < n; i++) {
        if ((u[i] & 0xC0) != 0x80) goto bad; /* also stops at the terminating NUL */
        c = (c << 6) | (u[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) goto bad;
    *cp = c;
    return n;
bad:
    *cp = 0xDC00 | u[0];
    return 1;
}

int ib_uni_isspace(uint32_t cp)
{
    if (cp == '\v' || cp == 0x85) return 1;
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0; /* our stand-ins for invalid bytes */
    return g_unichar_isspace(cp);
}

/* A GLib string handed back as a plain malloc'd one, so callers need not know GLib allocated it. */
static char *own(gchar *g)
{
    if (!g) return NULL;
    char *r = strdup(g);
    g_free(g);
    return r;
}

static gchar *valid(const char *s)
{
    return g_utf8_make_valid(s, -1);
}

static uint32_t fold(uint32_t cp, int icase)
{
    if (!icase || (cp >= 0xD800 && cp <= 0xDFFF)) return cp;
    return g_unichar_tolower(cp);
}

const char *ib_str_find(const char *hay, const char *needle, int icase, size_t *match_len)
{
    if (!hay || !needle) return NULL;
    for (const char *h = hay;;) {
        const char *a = h, *b = needle;
        while (*b && *a) {
            uint32_t ca, cb;
            size_t la = ib_utf8_next(a, &ca), lb = ib_utf8_next(b, &cb);
            if (fold(ca, icase) != fold(cb, icase)) break;
            a += la, b += lb;
        }
        if (!*b) {
            if (match_len) *match_len = (size_t)(a - h);
            return h;
        }
        if (!*h) return NULL;
        uint32_t cp;
        h += ib_utf8_next(h, &cp);
    }
}

char *ib_str_trim(const char *s)
{
    if (!s) return NULL;
    gchar *v = valid(s);
    const char *p = v, *end = v, *q = v;
    uint32_t cp;
    while (*p) {
        size_t l = ib_utf8_next(p, &cp);
        if (!ib_uni_isspace(cp)) break;
        p += l;
    }
    for (q = p, end = p; *q;) {
        size_t l = ib_utf8_next(q, &cp);
        q += l;
        if (!ib_uni_isspace(cp)) end = q;
    }
    char *r = strndup(p, (size_t)(end - p));
    g_free(v);
    return r;
}

char *ib_str_clean(const char *s)
{
    if (!s) return NULL;
    gchar *v = valid(s);
    char *r = malloc(strlen(v) + 1), *o = r;
    if (!r) {
        g_free(v);
        return NULL;
    }
    int pending = 0; /* a space run seen after some text, written only if more text follows */
    for (const char *p = v; *p;) {
        uint32_t cp;
        size_t l = ib_utf8_next(p, &cp);
        if (ib_uni_isspace(cp)) {
            pending = o > r;
        } else {
            if (pending) *o++ = ' ';
            pending = 0;
            memcpy(o, p, l);
            o += l;
        }
        p += l;
    }
    *o = 0;
    g_free(v);
    return r;
}

char *ib_str_upper(const char *s)
{
    if (!s) return NULL;
    gchar *v = valid(s);
    char *r = own(g_utf8_strup(v, -1));
    g_free(v);
    return r;
}

char *ib_str_lower(const char *s)
{
    if (!s) return NULL;
    gchar *v = valid(s);
    char *r = own(g_utf8_strdown(v, -1));
    g_free(v);
    return r;
}

char *ib_str_title(const char *s)
{
    if (!s) return NULL;
    gchar *v = valid(s);
    GString *g = g_string_sized_new(strlen(v) + 8);
    int in_word = 0, after_glue = 0; /* glue: apostrophe or digit, after which a letter continues the word */
    for (const gchar *p = v; *p; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        if (g_unichar_ismark(c)) { /* combining accents belong to the letter before them */
            g_string_append_unichar(g, c);
            continue;
        }
        if (g_unichar_isalpha(c)) {
            g_string_append_unichar(g, (in_word || after_glue) ? g_unichar_tolower(c) : g_unichar_totitle(c));
            in_word = 1, after_glue = 0;
        } else {
            g_string_append_unichar(g, c);
            after_glue = c == '\'' || c == 0x2019 ? in_word : g_unichar_isdigit(c) ? 1 : 0;
            in_word = 0;
        }
    }
    g_free(v);
    return own(g_string_free(g, FALSE));
}

static gchar *nfc(const char *s)
{
    gchar *v = valid(s);
    gchar *n = g_utf8_normalize(v, -1, G_NORMALIZE_NFC);
    g_free(v);
    return n;
}

size_t ib_str_len(const char *s)
{
    if (!s) return 0;
    gchar *n = nfc(s);
    size_t len = n ? (size_t)g_utf8_strlen(n, -1) : 0;
    g_free(n);
    return len;
}

char *ib_str_substr(const char *s, long long start, long long len)
{
    if (!s) return NULL;
    gchar *n = nfc(s);
    if (!n) return NULL;
    long long total = g_utf8_strlen(n, -1);
    if (start < 0) start = start + total < 0 ? 0 : start + total;
    if (start > total) start = total;
    if (len < 0 || len > total - start) len = total - start;
    const gchar *a = g_utf8_offset_to_pointer(n, (glong)start);
    const gchar *b = g_utf8_offset_to_pointer(a, (glong)len);
    char *r = strndup(a, (size_t)(b - a));
    g_free(n);
    return r;
}

void ib_strlist_free(ib_strlist *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static int push(ib_strlist *l, const char *p, size_t len)
{
    char **it = realloc(l->items, (l->n + 1) * sizeof *it);
    if (!it) return -1;
    l->items = it;
    if (!(it[l->n] = strndup(p, len))) return -1;
    l->n++;
    return 0;
}

int ib_str_split(const char *s, const char *sep, ib_strlist *out)
{
    if (!out) return -1;
    out->items = NULL, out->n = 0;
    if (!s || !sep) return -1;
    gchar *v = valid(s), *vs = valid(sep);
    int rc = 0;
    if (!*v) goto done;
    if (!*vs) {
        const char *p = v, *w = NULL;
        for (;;) {
            uint32_t cp = 0;
            size_t l = *p ? ib_utf8_next(p, &cp) : 0;
            if (!*p || ib_uni_isspace(cp)) {
                if (w && (rc = push(out, w, (size_t)(p - w)))) break;
                w = NULL;
                if (!*p) break;
            } else if (!w) {
                w = p;
            }
            p += l;
        }
    } else {
        size_t sl = strlen(vs);
        const char *p = v, *q;
        while ((q = strstr(p, vs)) && !rc) {
            rc = push(out, p, (size_t)(q - p));
            p = q + sl;
        }
        if (!rc) rc = push(out, p, strlen(p));
    }
done:
    if (rc) ib_strlist_free(out);
    g_free(v);
    g_free(vs);
    return rc ? -1 : 0;
}

/* Line cutting on already valid text, shared by lines and line_containing. */
static int cut_lines(const char *v, ib_strlist *out)
{
    const char *p = v;
    while (*p) {
        size_t n = strcspn(p, "\n\r\f");
        if (push(out, p, n)) return -1;
        p += n;
        if (p[0] == '\r' && p[1] == '\n') p++;
        if (*p) p++;
    }
    return 0;
}

int ib_str_lines(const char *s, ib_strlist *out)
{
    if (!out) return -1;
    out->items = NULL, out->n = 0;
    if (!s) return -1;
    gchar *v = valid(s);
    int rc = cut_lines(v, out);
    if (rc) ib_strlist_free(out);
    g_free(v);
    return rc;
}

int ib_str_line_containing(const char *s, const char *needle, char **out)
{
    if (!out) return -1;
    *out = NULL;
    if (!s || !needle) return -1;
    if (!*needle) return 1;
    gchar *v = valid(s), *vn = valid(needle);
    ib_strlist l = {0};
    int rc = cut_lines(v, &l) ? -1 : 1;
    for (int icase = 0; icase < 2 && rc == 1; icase++) {
        for (size_t i = 0; i < l.n; i++) {
            if (ib_str_find(l.items[i], vn, icase, NULL)) {
                *out = l.items[i];
                l.items[i] = NULL; /* ownership moved to *out */
                rc = 0;
                break;
            }
        }
    }
    ib_strlist_free(&l);
    g_free(v);
    g_free(vn);
    return rc;
}

/* Case-sensitive first, then case-insensitive: labels in documents are often upper-cased or title-cased
 * differently from what the formula author typed. */
static const char *find2(const char *hay, const char *needle, size_t *ml)
{
    const char *p = ib_str_find(hay, needle, 0, ml);
    return p ? p : ib_str_find(hay, needle, 1, ml);
}

int ib_str_between(const char *s, const char *start, const char *end, char **out)
{
    if (!out) return -1;
    *out = NULL;
    if (!s || !start) return -1;
    gchar *v = valid(s), *vs = valid(start), *ve = end ? valid(end) : NULL;
    size_t ml = 0;
    int rc = 1;
    const char *a = find2(v, vs, &ml);
    if (a) {
        a += ml;
        const char *b = ve && *ve ? find2(a, ve, &ml) : NULL;
        *out = b ? strndup(a, (size_t)(b - a)) : strdup(a);
        rc = *out ? 0 : -1;
    }
    g_free(v);
    g_free(vs);
    g_free(ve);
    return rc;
}
