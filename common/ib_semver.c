/* ib_semver: parsing and precedence of semantic versions (semver.org 2.0, section 11). Build metadata
 * ("+...") is refused: two texts of one precedence would otherwise name one marketplace version. */
#include "ib_semver.h"

#include <string.h>

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_ident_char(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

/* A numeric part: "0" or digits without a leading zero, fitting in 64 bits. Advances *s. */
static int parse_num(const char **s, uint64_t *out)
{
    const char *p = *s;
    if (!is_digit(*p) || (p[0] == '0' && is_digit(p[1]))) return -1;
    uint64_t v = 0;
    for (; is_digit(*p); p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    *s = p;
    return 0;
}

/* Dot-separated, non-empty identifiers of [0-9A-Za-z-]; numeric ones without a leading zero. */
static int pre_ok(const char *s)
{
    if (!*s) return 0;
    while (*s) {
        const char *start = s;
        int numeric = 1;
        for (; *s && *s != '.'; s++) {
            if (!is_ident_char(*s)) return 0;
            if (!is_digit(*s)) numeric = 0;
        }
        size_t n = (size_t)(s - start);
        if (n == 0) return 0;
        if (numeric && n > 1 && start[0] == '0') return 0;
        if (*s == '.') {
            s++;
            if (!*s) return 0;
        }
    }
    return 1;
}

int ib_semver_parse(const char *s, ib_semver *out)
{
    ib_semver v;
    if (!s) return -1;
    if (parse_num(&s, &v.major) || *s++ != '.' || parse_num(&s, &v.minor) || *s++ != '.' ||
        parse_num(&s, &v.patch))
        return -1;
    v.pre[0] = '\0';
    if (*s == '-') {
        s++;
        size_t n = strlen(s);
        if (n >= sizeof v.pre || !pre_ok(s)) return -1;
        memcpy(v.pre, s, n + 1);
    } else if (*s) {
        return -1;
    }
    if (out) *out = v;
    return 0;
}

static int cmp_u64(uint64_t a, uint64_t b)
{
    return a < b ? -1 : a > b;
}

/* Compares one identifier each ([a, a+na) and [b, b+nb)). Numeric identifiers have no leading zero, so the
 * longer is larger and equal lengths compare as text; numeric ones sort before alphanumeric ones. */
static int cmp_ident(const char *a, size_t na, const char *b, size_t nb)
{
    int an = 1, bn = 1;
    for (size_t i = 0; i < na; i++)
        an &= is_digit(a[i]);
    for (size_t i = 0; i < nb; i++)
        bn &= is_digit(b[i]);
    if (an && bn) {
        if (na != nb) return na < nb ? -1 : 1;
        int c = memcmp(a, b, na);
        return c < 0 ? -1 : c > 0;
    }
    if (an != bn) return an ? -1 : 1;
    size_t n = na < nb ? na : nb;
    int c = memcmp(a, b, n);
    if (c) return c < 0 ? -1 : 1;
    return na < nb ? -1 : na > nb;
}

int ib_semver_cmp(const ib_semver *a, const ib_semver *b)
{
    int c;
    if ((c = cmp_u64(a->major, b->major)) || (c = cmp_u64(a->minor, b->minor)) ||
        (c = cmp_u64(a->patch, b->patch)))
        return c;
    /* A version without pre-release is higher than one with. */
    if (!a->pre[0] || !b->pre[0]) return !a->pre[0] - !b->pre[0];
    const char *pa = a->pre, *pb = b->pre;
    for (;;) {
        size_t na = strcspn(pa, "."), nb = strcspn(pb, ".");
        if ((c = cmp_ident(pa, na, pb, nb))) return c;
        pa += na;
        pb += nb;
        if (!*pa || !*pb) return !*pb - !*pa; /* the shorter list is lower */
        pa++;
        pb++;
    }
}

int ib_semver_cmp_str(const char *a, const char *b)
{
    ib_semver va, vb;
    int oka = ib_semver_parse(a, &va) == 0, okb = ib_semver_parse(b, &vb) == 0;
    if (oka != okb) return oka ? 1 : -1;
    if (oka) {
        int c = ib_semver_cmp(&va, &vb);
        if (c) return c;
    }
    int c = strcmp(a ? a : "", b ? b : "");
    return c < 0 ? -1 : c > 0;
}
