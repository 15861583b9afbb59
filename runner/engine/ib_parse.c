/* ib_parse: number, int, date and bool recognition in extracted text (see ib_parse.h for the rules).
 * Everything scans the text once, left to right, and takes the first candidate that reads as a whole;
 * nothing allocates on the heap and nothing depends on the process locale. */
#include "ib_parse.h"
#include "ib_textfn.h"

#include <glib.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* ---------- shared character helpers ---------- */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int uni_isalpha(uint32_t cp)
{
    return cp < 0xD800 || cp > 0xDFFF ? g_unichar_isalpha(cp) : 0;
}

static int uni_isalnum(uint32_t cp)
{
    return cp < 0xD800 || cp > 0xDFFF ? g_unichar_isalnum(cp) : 0;
}

/* The code point ending right before p (p > s), and where it starts. Invalid bytes come back one at a time.
 */
static const char *prev_cp(const char *s, const char *p, uint32_t *cp)
{
    const char *q = p - 1;
    while (q > s && p - q < 4 && ((unsigned char)*q & 0xC0) == 0x80)
        q--;
    if (q + ib_utf8_next(q, cp) != p) { /* not a whole sequence ending at p: step back one byte */
        q = p - 1;
        *cp = 0xDC00 | (unsigned char)*q;
    }
    return q;
}

/* ---------- number ---------- */

static const uint32_t CURRENCY_SIGNS[] = {'$',    0x20AC, 0x00A3, 0x00A5, 0x20B9, 0x20BD, 0x20A9,
                                          0x20AA, 0x20BA, 0x00A2, 0x20B1, 0x20A6, 0x20AB, 0x20B4};
/* Case-sensitive: "usd" in running text is less likely a currency than a word. */
static const char *const CURRENCY_WORDS[] = {
    "USD", "EUR", "GBP", "JPY", "CNY", "RMB", "INR", "CHF", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK", "PLN",
    "CZK", "HUF", "RON", "BGN", "HRK", "RUB", "UAH", "TRY", "BRL", "MXN", "ARS", "CLP", "COP", "PEN", "ZAR",
    "SGD", "HKD", "TWD", "KRW", "THB", "MYR", "IDR", "PHP", "VND", "AED", "SAR", "QAR", "KWD", "ILS", "EGP",
    "NGN", "KES", "MAD", "Fr",  "SFr", "Rs",  "R",   "kr",  "Kr",  "zł",  "Kč",  "Ft",  "lei"};

static int is_currency_sign(uint32_t cp)
{
    for (size_t i = 0; i < sizeof CURRENCY_SIGNS / sizeof *CURRENCY_SIGNS; i++)
        if (CURRENCY_SIGNS[i] == cp) return 1;
    return 0;
}

static int is_currency_word(const char *w, size_t n)
{
    for (size_t i = 0; i < sizeof CURRENCY_WORDS / sizeof *CURRENCY_WORDS; i++)
        if (strlen(CURRENCY_WORDS[i]) == n && !memcmp(CURRENCY_WORDS[i], w, n)) return 1;
    return 0;
}

/* A currency token ending right before p: a sign, or a code (a letter run, optionally with a dot as in
 * "Fr." or "Rs.") not glued to a letter before it. Returns its start, or NULL. */
static const char *currency_before(const char *s, const char *p)
{
    if (p <= s) return NULL;
    uint32_t cp;
    const char *q = prev_cp(s, p, &cp);
    if (is_currency_sign(cp)) return q;
    const char *end = p;
    if (cp == '.') end = q;
    const char *a = end;
    while (a > s) {
        const char *b = prev_cp(s, a, &cp);
        if (!uni_isalpha(cp)) break;
        a = b;
    }
    return a < end && is_currency_word(a, (size_t)(end - a)) ? a : NULL;
}

/* A currency token starting at p; returns its end, or NULL. The code must not run on into more letters. */
static const char *currency_after(const char *p)
{
    uint32_t cp;
    if (!*p) return NULL;
    size_t l = ib_utf8_next(p, &cp);
    if (is_currency_sign(cp)) return p + l;
    const char *e = p;
    while (*e) {
        l = ib_utf8_next(e, &cp);
        if (!uni_isalpha(cp)) break;
        e += l;
    }
    if (e == p || !is_currency_word(p, (size_t)(e - p))) return NULL;
    return *e == '.' && (e - p == 2) ? e + 1 : e; /* "Fr." "Rs." */
}

static const char *skip_spaces(const char *p)
{
    uint32_t cp;
    while (*p) {
        size_t l = ib_utf8_next(p, &cp);
        if (!ib_uni_isspace(cp)) break;
        p += l;
    }
    return p;
}

static const char *skip_spaces_back(const char *s, const char *p)
{
    uint32_t cp;
    while (p > s) {
        const char *q = prev_cp(s, p, &cp);
        if (!ib_uni_isspace(cp)) break;
        p = q;
    }
    return p;
}

/* One space of a digit group ("1 234"), as typeset: ASCII, no-break, thin, narrow no-break. */
static size_t group_space(const char *p)
{
    uint32_t cp;
    size_t l = ib_utf8_next(p, &cp);
    return cp == ' ' || cp == 0xA0 || cp == 0x2009 || cp == 0x202F ? l : 0;
}

enum { SEP_COMMA = ',', SEP_DOT = '.', SEP_APOS = '\'', SEP_SPACE = ' ' };
#define MAX_GROUPS 48

typedef struct numtok {
    const char *g[MAX_GROUPS]; /* digit groups */
    size_t gl[MAX_GROUPS];
    char sep[MAX_GROUPS]; /* sep[i] joins g[i] and g[i+1] */
    size_t n;             /* groups */
    const char *end;      /* just past the last group */
    int dec;              /* index of the decimal separator in sep, -1 none */
    int lead_dot;         /* ".5": the only group is the fraction */
} numtok;

static size_t digits(const char *p)
{
    size_t n = 0;
    while (is_digit(p[n]))
        n++;
    return n;
}

static int all_zero(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != '0') return 0;
    return 1;
}

/* Reads the digit groups from p (a digit) and decides which separator, if any, is the decimal one. */
static void read_groups(const char *p, numtok *t)
{
    t->n = 0;
    t->g[0] = p, t->gl[0] = digits(p), t->n = 1;
    const char *q = p + t->gl[0];
    while (t->n < MAX_GROUPS) {
        char kind;
        size_t sl;
        uint32_t cp;
        size_t l = ib_utf8_next(q, &cp);
        if (cp == ',' || cp == '.') {
            kind = (char)cp, sl = 1;
        } else if (cp == '\'' || cp == 0x2019) {
            kind = SEP_APOS, sl = l;
        } else if ((sl = group_space(q))) {
            kind = SEP_SPACE;
        } else {
            break;
        }
        size_t nd = digits(q + sl);
        if (!nd) break;
        if (kind == SEP_APOS || kind == SEP_SPACE) { /* only ever thousands: demand the pattern */
            size_t prev = t->gl[t->n - 1];
            if (nd != 3 || (t->n == 1 ? prev > 3 : prev != 3)) break;
        }
        t->sep[t->n - 1] = kind;
        t->g[t->n] = q + sl, t->gl[t->n] = nd, t->n++;
        q += sl + nd;
    }
    for (;;) {               /* decide, shortening the token when its separators make no sense together */
        size_t k = t->n - 1; /* separators */
        t->dec = -1;
        t->end = t->g[t->n - 1] + t->gl[t->n - 1];
        if (!k) return;
        char last = t->sep[k - 1];
        if (last == SEP_APOS || last == SEP_SPACE) return;
        size_t count = 0, other = 0;
        for (size_t i = 0; i < k; i++)
            t->sep[i] == last ? count++ : other++;
        if (count == 1 && other) {
            t->dec = (int)k - 1;
            return;
        }
        if (count == 1) {
            int thousands = t->gl[1] == 3 && t->gl[0] <= 3 && !all_zero(t->g[0], t->gl[0]);
            t->dec = thousands ? -1 : 0;
            return;
        }
        if (!other) {
            int ok = 1; /* 1.234.567, or Indian 1,23,45,678 */
            for (size_t i = 1; i < t->n; i++) {
                size_t want = i == t->n - 1 ? 3 : t->gl[1];
                if (t->gl[i] != want || (want != 3 && !(want == 2 && last == SEP_COMMA))) ok = 0;
            }
            if (ok && t->gl[0] <= 3) return;
            t->n = 2; /* "1.2.3" reads as "1.2" */
            continue;
        }
        t->n--; /* mixed with the last kind repeated: drop the last group and look again */
    }
}

/* Finds the first number; fills t and the sign. Returns 0 or -1. */
static int find_number(const char *s, numtok *t, int *neg)
{
    const char *p = s;
    for (;;) {
        while (*p && !is_digit(*p))
            p++;
        if (!*p) return -1;
        uint32_t cp = 0, cp2 = 0;
        if (p > s) prev_cp(s, p, &cp);
        /* "ABC-12", "INV/2024": a code joined to its letters by - / _ is not an amount either */
        int joined = (cp == '-' || cp == '/' || cp == '_') && p - 1 > s && (prev_cp(s, p - 1, &cp2), 1) &&
                     uni_isalpha(cp2) && !currency_before(s, p - 1);
        if ((uni_isalpha(cp) && !currency_before(s, p)) || joined) {
            /* glued to a word ("INV123", "A4"): skip the whole token, separators and all */
            while (*p && (is_digit(*p) || strchr(",.'-/", *p)))
                p++;
            continue;
        }
        break;
    }
    const char *start = p;
    t->lead_dot = 0;
    if (p > s && p[-1] == '.') { /* "$.50", but not "No.5" nor the tail of "1.5" */
        uint32_t before = 0;
        if (p - 1 > s) prev_cp(s, p - 1, &before);
        if (!uni_isalnum(before)) t->lead_dot = 1, start = p - 1;
    }
    read_groups(p, t);
    if (t->lead_dot) t->n = 1, t->end = p + t->gl[0];

    /* Backwards from the digits: currency, sign, parenthesis, in any order. Spaces are crossed only next
     * to a currency token or a parenthesis, so "Qty - 5" stays positive but "- $ 5" and "( 5" do not. */
    int sign = 0, paren = 0, cur = 0;
    const char *b = start;
    for (int step = 0; step < 6 && b > s; step++) {
        const char *sb = skip_spaces_back(s, b);
        uint32_t cp;
        const char *q;
        if (sb != b) {
            if (sb == s) break;
            prev_cp(s, sb, &cp);
            if (!cur && !currency_before(s, sb) && cp != '(') break;
            b = sb;
        }
        cur = 0;
        if ((q = currency_before(s, b))) {
            b = q, cur = 1;
            continue;
        }
        q = prev_cp(s, b, &cp);
        if (!sign && (cp == '-' || cp == '+' || cp == 0x2212)) {
            uint32_t pc = 0;
            if (q > s) prev_cp(s, q, &pc);
            if (uni_isalnum(pc) && !currency_before(s, q)) break; /* "ABC-12" is a code, "EUR-5" is not */
            sign = cp == '+' ? 1 : -1, b = q;
            continue;
        }
        if (!paren && cp == '(') {
            paren = 1, b = q;
            continue;
        }
        break;
    }
    /* Forwards: ",-" whole amounts, currency, %, closing parenthesis, trailing minus. */
    int closed = 0, trail = 0;
    const char *e = t->end;
    if ((e[0] == ',' || e[0] == '.') && e[1] == '-' && !is_digit(e[2])) e += e[2] == '-' ? 3 : 2;
    cur = 0;
    for (int step = 0; step < 6 && *e; step++) {
        const char *se = skip_spaces(e), *q;
        if (se != e) {
            if (!cur && !currency_after(se) && !(paren && *se == ')')) break;
            e = se;
        }
        cur = 0;
        if ((q = currency_after(e))) {
            e = q, cur = 1;
            continue;
        }
        uint32_t cp;
        size_t l = ib_utf8_next(e, &cp);
        if (cp == '%') {
            e += l;
            continue;
        }
        if (paren && !closed && cp == ')') {
            closed = 1, e += l;
            continue;
        }
        if (!trail && (cp == '-' || cp == 0x2212) && !is_digit(e[l])) {
            trail = 1, e += l;
            continue;
        }
        break;
    }
    *neg = sign < 0 || (paren && closed) || trail;
    return 0;
}

/* The number as ASCII "[-]int[.frac]" for the converters. */
static int number_text(const char *s, char *buf, size_t bufsz, size_t *int_len)
{
    numtok t;
    int neg;
    if (!s || find_number(s, &t, &neg)) return -1;
    size_t o = 0;
    if (neg) buf[o++] = '-';
    size_t first_frac = t.lead_dot ? 0 : t.dec < 0 ? t.n : (size_t)t.dec + 1;
    if (t.lead_dot) buf[o++] = '0';
    for (size_t i = 0; i < t.n; i++) {
        if (o + t.gl[i] + 3 > bufsz) return -1; /* absurdly long digit strings are not amounts */
        if (i == first_frac) {
            *int_len = o;
            buf[o++] = '.';
        }
        memcpy(buf + o, t.g[i], t.gl[i]);
        o += t.gl[i];
    }
    if (first_frac >= t.n) *int_len = o;
    buf[o] = 0;
    return 0;
}

int ib_parse_number(const char *s, double *out)
{
    char buf[512], *end;
    size_t il;
    if (number_text(s, buf, sizeof buf, &il)) return -1;
    double v = g_ascii_strtod(buf, &end);
    if (*end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

int ib_parse_int(const char *s, long long *out)
{
    char buf[512];
    size_t il;
    if (number_text(s, buf, sizeof buf, &il)) return -1;
    int neg = buf[0] == '-';
    /* accumulate toward the sign so that LLONG_MIN fits */
    long long v = 0;
    for (size_t i = neg; i < il; i++) {
        int d = buf[i] - '0';
        if (neg ? v < (LLONG_MIN + d) / 10 : v > (LLONG_MAX - d) / 10) return -1;
        v = v * 10 + (neg ? -d : d);
    }
    *out = v;
    return 0;
}

/* ---------- date ---------- */

enum { T_NUM = 1, T_WORD, T_PUNCT };

typedef struct dtok {
    int kind;
    int sp;       /* white space right before it */
    int val, nd;  /* T_NUM: value (capped) and digit count */
    uint32_t cp;  /* T_PUNCT */
    int month;    /* T_WORD: 1-12 when it names a month */
    char key[16]; /* T_WORD: lower case, accents removed, "" when too long */
} dtok;

typedef struct month_name {
    const char *key;
    int month;
} month_name;

/* Keys are lower case without accents (the word is folded the same way), so "février", "fevrier", "FÉVR."
 * all match. Abbreviations shared between languages appear once. */
static const month_name MONTHS[] = {
    /* English */
    {"january", 1},
    {"jan", 1},
    {"february", 2},
    {"feb", 2},
    {"march", 3},
    {"mar", 3},
    {"april", 4},
    {"apr", 4},
    {"may", 5},
    {"june", 6},
    {"jun", 6},
    {"july", 7},
    {"jul", 7},
    {"august", 8},
    {"aug", 8},
    {"september", 9},
    {"sep", 9},
    {"sept", 9},
    {"october", 10},
    {"oct", 10},
    {"november", 11},
    {"nov", 11},
    {"december", 12},
    {"dec", 12},
    /* French */
    {"janvier", 1},
    {"janv", 1},
    {"fevrier", 2},
    {"fevr", 2},
    {"fev", 2},
    {"mars", 3},
    {"avril", 4},
    {"avr", 4},
    {"mai", 5},
    {"juin", 6},
    {"juillet", 7},
    {"juil", 7},
    {"aout", 8},
    {"septembre", 9},
    {"octobre", 10},
    {"novembre", 11},
    {"decembre", 12},
    /* German */
    {"januar", 1},
    {"janner", 1},
    {"februar", 2},
    {"marz", 3},
    {"maerz", 3},
    {"mrz", 3},
    {"juni", 6},
    {"juli", 7},
    {"oktober", 10},
    {"okt", 10},
    {"dezember", 12},
    {"dez", 12},
    /* Dutch */
    {"januari", 1},
    {"februari", 2},
    {"maart", 3},
    {"mrt", 3},
    {"mei", 5},
    {"augustus", 8},
    /* Spanish */
    {"enero", 1},
    {"ene", 1},
    {"febrero", 2},
    {"marzo", 3},
    {"abril", 4},
    {"abr", 4},
    {"mayo", 5},
    {"junio", 6},
    {"julio", 7},
    {"agosto", 8},
    {"ago", 8},
    {"septiembre", 9},
    {"setiembre", 9},
    {"set", 9},
    {"octubre", 10},
    {"noviembre", 11},
    {"diciembre", 12},
    {"dic", 12},
    /* Italian */
    {"gennaio", 1},
    {"gen", 1},
    {"febbraio", 2},
    {"aprile", 4},
    {"maggio", 5},
    {"mag", 5},
    {"giugno", 6},
    {"giu", 6},
    {"luglio", 7},
    {"lug", 7},
    {"settembre", 9},
    {"ottobre", 10},
    {"ott", 10},
    {"dicembre", 12},
    /* Portuguese */
    {"janeiro", 1},
    {"fevereiro", 2},
    {"marco", 3},
    {"maio", 5},
    {"junho", 6},
    {"julho", 7},
    {"setembro", 9},
    {"outubro", 10},
    {"out", 10},
    {"novembro", 11},
    {"dezembro", 12},
};

/* Lower case, compatibility-decomposed ("º" becomes "o"), combining marks dropped. */
static void fold_word(const char *w, size_t n, char key[16])
{
    key[0] = 0;
    if (n > 48) return;
    gchar *d = g_utf8_normalize(w, (gssize)n, G_NORMALIZE_NFKD);
    if (!d) return;
    size_t o = 0;
    for (const gchar *p = d; *p; p = g_utf8_next_char(p)) {
        gunichar c = g_unichar_tolower(g_utf8_get_char(p));
        if (g_unichar_ismark(c)) continue;
        char u[6];
        int l = g_unichar_to_utf8(c, u);
        if (o + (size_t)l >= 16) {
            o = 0;
            break;
        }
        memcpy(key + o, u, (size_t)l);
        o += (size_t)l;
    }
    key[o] = 0;
    g_free(d);
}

/* The next token of the text at *pp; 0 at the end. Letters run into words (combining marks included),
 * digits into numbers; any other character is a punctuation token of its own. */
static int next_tok(const char **pp, dtok *t)
{
    const char *p = *pp;
    uint32_t cp;
    memset(t, 0, sizeof *t);
    const char *q = skip_spaces(p);
    t->sp = q != p;
    p = q;
    if (!*p) return 0;
    if (is_digit(*p)) {
        t->kind = T_NUM;
        while (is_digit(*p)) {
            if (t->nd < 9) t->val = t->val * 10 + (*p - '0');
            t->nd++, p++;
        }
    } else {
        size_t l = ib_utf8_next(p, &cp);
        if (uni_isalpha(cp)) {
            t->kind = T_WORD;
            const char *w = p;
            while (*p) {
                l = ib_utf8_next(p, &cp);
                if (!uni_isalpha(cp) && !(cp < 0xD800 && g_unichar_ismark(cp))) break;
                p += l;
            }
            fold_word(w, (size_t)(p - w), t->key);
            for (size_t i = 0; i < sizeof MONTHS / sizeof *MONTHS; i++)
                if (!strcmp(MONTHS[i].key, t->key)) t->month = MONTHS[i].month;
        } else {
            t->kind = T_PUNCT, t->cp = cp;
            p += l;
        }
    }
    *pp = p;
    return 1;
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int ymd_ok(int y, int m, int d)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1000 || y > 9999 || m < 1 || m > 12 || d < 1) return 0;
    return d <= dim[m - 1] + (m == 2 && is_leap(y));
}

/* A year token: 4 digits as written, 2 digits pivoted like POSIX strptime %y. -1 otherwise. */
static int year_of(const dtok *t)
{
    if (t->kind != T_NUM) return -1;
    if (t->nd == 4) return t->val;
    if (t->nd == 2) return t->val < 69 ? 2000 + t->val : 1900 + t->val;
    return -1;
}

static int is_punct(const dtok *t, const char *set)
{
    return t->kind == T_PUNCT && t->cp < 128 && strchr(set, (int)t->cp);
}

static int is_day(const dtok *t)
{
    return t->kind == T_NUM && t->nd <= 2 && t->val >= 1;
}

static int is_word(const dtok *t, const char *const *set)
{
    if (t->kind != T_WORD) return 0;
    for (; *set; set++)
        if (!strcmp(*set, t->key)) return 1;
    return 0;
}

static const char *const ORDINALS[] = {"st", "nd", "rd", "th", "er", "re", "e", "eme", "o", "a", NULL};
static const char *const LINKS[] = {"de", "del", "of", NULL}; /* "15 de marzo", "1st of March" */

/* Ordinal suffix glued to the day ("15th", "1er", "1º", "1°") */
static size_t skip_ordinal(const dtok *t, size_t i, size_t n)
{
    if (i < n && !t[i].sp && (is_word(&t[i], ORDINALS) || (t[i].kind == T_PUNCT && t[i].cp == 0xB0))) i++;
    return i;
}

/* The date pattern starting at t[0] (n tokens available); 0 and y/m/d on a match. tail: t[0] continues a
 * dotted/dashed number run before it, so it cannot start a numeric date. */
static int match_at(const dtok *t, size_t n, int order, int tail, int *y, int *m, int *d)
{
    size_t i;
    /* numeric: a s b s c, no spaces inside, not part of a longer run like "1.2.3.4" or "1-15-03-2024" */
    if (!tail && n >= 5 && t[0].kind == T_NUM && is_punct(&t[1], "/-.") && t[2].kind == T_NUM &&
        t[3].kind == T_PUNCT && t[3].cp == t[1].cp && t[4].kind == T_NUM && !t[1].sp && !t[2].sp &&
        !t[3].sp && !t[4].sp) {
        int a = t[0].val, b = t[2].val, c = t[4].val;
        if (n >= 7 && t[5].kind == T_PUNCT && t[5].cp == t[1].cp && !t[5].sp && t[6].kind == T_NUM &&
            !t[6].sp)
            return -1;
        if (t[0].nd == 4 && t[2].nd <= 2 && t[4].nd <= 2) {
            *y = a, *m = b, *d = c;
            return 0;
        }
        if (order == 'Y' && t[0].nd == 2 && t[2].nd <= 2 && t[4].nd <= 2) {
            *y = year_of(&t[0]), *m = b, *d = c;
            return 0;
        }
        if (t[0].nd <= 2 && t[2].nd <= 2 && year_of(&t[4]) > 0) {
            int dmy;
            if (order == 'D' || order == 'M')
                dmy = order == 'D';
            else if (t[1].cp == '/')
                dmy = a > 12;
            else
                dmy = !(b > 12 && a <= 12);
            *y = year_of(&t[4]), *m = dmy ? b : a, *d = dmy ? a : b;
            return 0;
        }
        return -1;
    }
    /* day first: 15 Mar 2024, 7. Mai 2014, 1er janvier 2020, 15 de marzo de 2024, 15-Mar-24 */
    if (is_day(&t[0])) {
        i = skip_ordinal(t, 1, n);
        if (i < n && is_punct(&t[i], ".") && !t[i].sp) i++;
        if (i < n && is_punct(&t[i], "-/")) i++;
        if (i < n && is_word(&t[i], LINKS)) i++;
        if (i < n && t[i].month) {
            *m = t[i++].month;
            if (i < n && is_punct(&t[i], ".") && !t[i].sp) i++;
            if (i < n && is_punct(&t[i], "-/,")) i++;
            if (i < n && is_word(&t[i], LINKS)) i++;
            if (i < n && year_of(&t[i]) > 0) {
                *y = year_of(&t[i]), *d = t[0].val;
                return 0;
            }
        }
        return -1;
    }
    /* month first: March 15, 2024 / Mar. 15th, 2024 / Mar-15-2024 */
    if (t[0].month) {
        i = 1;
        if (i < n && is_punct(&t[i], ".") && !t[i].sp) i++;
        if (i < n && is_punct(&t[i], "-/")) i++;
        if (i < n && is_day(&t[i])) {
            *d = t[i].val;
            i = skip_ordinal(t, i + 1, n);
            if (i < n && is_punct(&t[i], ",-/")) i++;
            if (i < n && t[i].kind == T_NUM && t[i].nd == 4) {
                *y = t[i].val, *m = t[0].month;
                return 0;
            }
        }
        return -1;
    }
    /* year first with a month name: 2024-Mar-15, 2024 March 15 */
    if (t[0].kind == T_NUM && t[0].nd == 4) {
        i = 1;
        if (i < n && is_punct(&t[i], "-/.")) i++;
        if (i < n && t[i].month) {
            *m = t[i++].month;
            if (i < n && is_punct(&t[i], ".") && !t[i].sp) i++;
            if (i < n && is_punct(&t[i], "-/.")) i++;
            if (i < n && is_day(&t[i])) {
                *y = t[0].val, *d = t[i].val;
                return 0;
            }
        }
    }
    return -1;
}

#define DATE_WINDOW 12 /* the longest pattern ("15 de marzo de 2024" with punctuation) fits */

int ib_parse_date(const char *s, const char *order, char out[11])
{
    int ord = 0;
    if (order) {
        if (!g_ascii_strcasecmp(order, "DMY"))
            ord = 'D';
        else if (!g_ascii_strcasecmp(order, "MDY"))
            ord = 'M';
        else if (!g_ascii_strcasecmp(order, "YMD"))
            ord = 'Y';
        else
            return -2;
    }
    if (!s) return -1;
    dtok win[DATE_WINDOW];
    size_t n = 0;
    const char *p = s;
    while (n < DATE_WINDOW && next_tok(&p, &win[n]))
        n++;
    dtok prev[2] = {{0}, {0}}; /* the two tokens before win[0] */
    while (n) {
        int y, m, d;
        int tail = win[0].kind == T_NUM && !win[0].sp && prev[0].kind == T_PUNCT && !prev[0].sp &&
                   prev[1].kind == T_NUM && prev[0].cp < 128 && strchr("/-.", (int)prev[0].cp);
        if (!match_at(win, n, ord, tail, &y, &m, &d) && ymd_ok(y, m, d)) {
            int v[3] = {y, m, d}, w[3] = {4, 2, 2};
            char *o = out;
            for (int k = 0; k < 3; k++) {
                for (int j = w[k] - 1; j >= 0; j--) {
                    o[j] = (char)('0' + v[k] % 10);
                    v[k] /= 10;
                }
                o += w[k];
                if (k < 2) *o++ = '-';
            }
            *o = 0;
            return 0;
        }
        prev[1] = prev[0], prev[0] = win[0];
        memmove(win, win + 1, (n - 1) * sizeof *win);
        n--;
        if (next_tok(&p, &win[n])) n++;
    }
    return -1;
}

/* ---------- bool ---------- */

static const char *const TRUE_WORDS[] = {"true", "t",  "yes", "y",    "1",    "on", "checked",
                                         "x",    "☑",  "☒",   "✓",    "✔",    "ja", "oui",
                                         "si",   "sí", "sim", "vrai", "wahr", NULL};
static const char *const FALSE_WORDS[] = {"false", "f",   "no",  "n",   "0",   "off",  "unchecked", "☐",
                                          "nein",  "non", "não", "nao", "nee", "faux", "falsch",    NULL};

/* Case-insensitive equality of a (length n) and b, per code point. */
static int ieq(const char *a, size_t n, const char *b)
{
    const char *e = a + n;
    while (a < e && *b) {
        uint32_t ca, cb;
        a += ib_utf8_next(a, &ca);
        b += ib_utf8_next(b, &cb);
        if (ca == cb) continue;
        if ((ca >= 0xD800 && ca <= 0xDFFF) || (cb >= 0xD800 && cb <= 0xDFFF)) return 0;
        if (g_unichar_tolower(ca) != g_unichar_tolower(cb)) return 0;
    }
    return a == e && !*b;
}

int ib_parse_bool(const char *s, int *out)
{
    if (!s) return -1;
    const char *a = skip_spaces(s), *e = a + strlen(a);
    e = skip_spaces_back(a, e);
    if (e - a >= 2 && ((*a == '[' && e[-1] == ']') || (*a == '(' && e[-1] == ')'))) {
        a = skip_spaces(a + 1);
        e = skip_spaces_back(a, e - 1);
        if (a == e) {
            *out = 0; /* an empty box */
            return 0;
        }
    }
    if (a == e) return -1;
    for (const char *const *w = TRUE_WORDS; *w; w++)
        if (ieq(a, (size_t)(e - a), *w)) return *out = 1, 0;
    for (const char *const *w = FALSE_WORDS; *w; w++)
        if (ieq(a, (size_t)(e - a), *w)) return *out = 0, 0;
    return -1;
}
