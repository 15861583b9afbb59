/* func: the formula functions of the spec's table, dispatched by the shared function table's ids. Plain-C
 * primitives do the text work (ib_textfn, ib_parse, ib_spatial); this file adds value semantics (null and
 * error propagation, lists) and provenance, and owns the regex family (PCRE2 with JIT, bounded matching). */
#include "eval_int.h"
#include "ib_parse.h"
#include "ib_spatial.h"
#include "ib_table.h"
#include "ib_textfn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef ib_value *(*fn_impl)(ib_eval *ev, const ib_node *call, ib_value **a, uint32_t n);

/* ---- helpers ---- */

static const char *fname(const ib_node *call)
{
    return ib_func_get(call->fn)->name;
}

/* A string value built from malloc'd text with the provenance of `from` (NULL allowed). */
static ib_value *str_from(char *s, const ib_value *from)
{
    if (!s) abort();
    ib_value *v = ib_v_str_own(s);
    if (from) ib_v_prov_merge(v, from);
    return v;
}

/* A number argument: numbers as they are, text read with ib_parse_number. -1 when it is not a number. */
static int num_arg(ib_eval *ev, ib_value *v, double *out)
{
    if (v->kind == IB_V_NUM) {
        *out = v->num;
        return 0;
    }
    if (v->kind == IB_V_BOOL) {
        *out = v->b;
        return 0;
    }
    if (v->kind == IB_V_STR) return ib_parse_number(v->str, out);
    (void)ev;
    return -1;
}

/* Strict functions: an error argument is the result. */
static ib_value *first_error(ib_value **a, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (a[i]->kind == IB_V_ERROR) return ib_v_ref(a[i]);
    return NULL;
}


/* ---- regular expressions ---- */

/* The compiled pattern of argument i: the literal's, compiled with the flow, or one compiled now (cached per
 * record). NULL with *err set when it does not compile. */
static pcre2_code *pattern_arg(ib_eval *ev, const ib_node *call, uint32_t i, ib_value *pat, ib_value **err)
{
    if (call->kids[i]->kind == IB_NODE_STR && call->kids[i]->rx) return call->kids[i]->rx;
    ib_value *s = ib_to_str(ev, pat);
    if (s->kind != IB_V_STR) {
        ib_v_unref(s);
        *err = ib_v_error("%s: the pattern is empty (null)", fname(call));
        return NULL;
    }
    for (size_t k = 0; k < ev->nrx; k++)
        if (ev->rx[k].len == s->len && memcmp(ev->rx[k].pattern, s->str, s->len) == 0) {
            ib_v_unref(s);
            if (!ev->rx[k].code) *err = ib_v_error("%s: %s", fname(call), ev->rx[k].err);
            return ev->rx[k].code;
        }
    char msg[256];
    size_t off;
    pcre2_code *code = ib_regex_compile(s->str, s->len, msg, sizeof msg, &off);
    if (ev->nrx < IB_EVAL_RX_CACHE) {
        ib_rx_entry *e = &ev->rx[ev->nrx++];
        e->pattern = strndup(s->str, s->len);
        e->len = s->len;
        e->code = code;
        snprintf(e->err, sizeof e->err, "%s", msg);
    } else if (code) {
        /* cache full: keep it alive until the record ends by replacing the oldest entry would free a pattern
         * in use by a caller up the stack; refuse instead (64 distinct run-time patterns in one record) */
        pcre2_code_free(code);
        code = NULL;
        snprintf(msg, sizeof msg, "more than %d different run-time patterns", IB_EVAL_RX_CACHE);
    }
    ib_v_unref(s);
    if (!code) *err = ib_v_error("%s: %s", fname(call), msg);
    return code;
}

/* pcre2_match with the record's bounds; rc as pcre2_match. */
static int rx_match(ib_eval *ev, const pcre2_code *re, const ib_value *subj, size_t start,
                    pcre2_match_data *md)
{
    return pcre2_match(re, (PCRE2_SPTR)subj->str, subj->len, start, 0, md, ev->mctx);
}

static ib_value *rx_fail(const ib_node *call, int rc)
{
    PCRE2_UCHAR buf[160];
    pcre2_get_error_message(rc, buf, sizeof buf);
    return ib_v_error("%s: %s", fname(call), (const char *)buf);
}

/* The group to extract: the group argument (number or name), else 1 when the pattern has groups, else 0. */
static int pick_group(ib_eval *ev, const ib_node *call, const pcre2_code *re, ib_value *g, ib_value **err)
{
    uint32_t ngroups = 0;
    pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &ngroups);
    if (!g) return ngroups > 0 ? 1 : 0;
    double d;
    if (g->kind == IB_V_NUM || (g->kind == IB_V_STR && g->len > 0 && g->str[0] >= '0' && g->str[0] <= '9' &&
                                num_arg(ev, g, &d) == 0)) {
        if (g->kind == IB_V_NUM) d = g->num;
        if (d < 0 || d != floor(d) || d > ngroups) {
            *err =
                ib_v_error("%s: group %g does not exist: the pattern has %u groups", fname(call), d, ngroups);
            return -1;
        }
        return (int)d;
    }
    if (g->kind == IB_V_STR) {
        int num = pcre2_substring_number_from_name(re, (PCRE2_SPTR)g->str);
        if (num < 0) {
            char q[64];
            ib_quote(g->str, q, sizeof q);
            *err = ib_v_error("%s: the pattern has no group named '%s'", fname(call), q);
            return -1;
        }
        return num;
    }
    *err = ib_v_error("%s: the group must be a number or a name", fname(call));
    return -1;
}

/* The text of group g of the last match as a value with provenance, or null when the group did not take part.
 */
static ib_value *group_value(ib_eval *ev, const ib_value *subj, pcre2_match_data *md, int g)
{
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    if (ov[2 * g] == PCRE2_UNSET) return ib_v_null();
    size_t s = ov[2 * g], e = ov[2 * g + 1];
    if (e < s) e = s; /* \K can put the start after the end */
    ib_value *v = ib_v_str(subj->str + s, e - s);
    if (subj->map)
        ib_prov_from_map(ev, v, subj->map, s, e);
    else
        ib_v_prov_merge(v, subj);
    return v;
}

static ib_value *fn_regex(ib_eval *ev, const ib_node *call, ib_value **a, uint32_t n)
{
    ib_value *err = first_error(a, n);
    if (err) return err;
    if (a[0]->kind == IB_V_NULL) return ib_v_null();
    pcre2_code *re = pattern_arg(ev, call, 1, a[1], &err);
    if (!re) return err;
    int g = pick_group(ev, call, re, n > 2 ? a[2] : NULL, &err);
    if (g < 0) return err;
    ib_value *subj = ib_to_str(ev, a[0]);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) abort();
    ib_value *out;
    if (call->fn == IB_FN_REGEX) {
        int rc = rx_match(ev, re, subj, 0, md);
        out = rc >= 0                     ? group_value(ev, subj, md, g)
              : rc == PCRE2_ERROR_NOMATCH ? ib_v_null()
                                          : rx_fail(call, rc);
    } else { /* regex_all: every match, left to right; an empty match moves on by one character */
        out = ib_v_list();
        size_t off = 0;
        while (off <= subj->len) {
            if (ib_eval_spent(ev)) { /* up to 100000 matches: the budget is looked at on the way */
                ib_v_unref(out);
                out = NULL;
                break;
            }
            int rc = rx_match(ev, re, subj, off, md);
            if (rc == PCRE2_ERROR_NOMATCH) break;
            if (rc < 0) {
                ib_v_unref(out);
                out = rx_fail(call, rc);
                break;
            }
            ib_value *item = group_value(ev, subj, md, g);
            ib_v_prov_merge(out, item);
            if (ib_v_list_push(out, item) < 0) {
                ib_v_unref(out);
                out = ib_v_error("regex_all: more than %u matches", IB_VALUE_MAX_ITEMS);
                break;
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            if (ov[1] > off)
                off = ov[1];
            else if (off < subj->len) {
                uint32_t cp;
                off += ib_utf8_next(subj->str + off, &cp);
            } else
                break;
        }
    }
    pcre2_match_data_free(md);
    ib_v_unref(subj);
    return out;
}

static ib_value *fn_matches(ib_eval *ev, const ib_node *call, ib_value **a, uint32_t n)
{
    ib_value *err = first_error(a, n);
    if (err) return err;
    if (a[0]->kind == IB_V_NULL) return ib_v_bool(0);
    pcre2_code *re = pattern_arg(ev, call, 1, a[1], &err);
    if (!re) return err;
    ib_value *subj = ib_to_str(ev, a[0]);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) abort();
    int rc = rx_match(ev, re, subj, 0, md);
    ib_value *out = rc >= 0 ? ib_v_bool(1) : rc == PCRE2_ERROR_NOMATCH ? ib_v_bool(0) : rx_fail(call, rc);
    pcre2_match_data_free(md);
    ib_v_unref(subj);
    return out;
}

static ib_value *fn_replace(ib_eval *ev, const ib_node *call, ib_value **a, uint32_t n)
{
    ib_value *err = first_error(a, n);
    if (err) return err;
    if (a[0]->kind == IB_V_NULL) return ib_v_null();
    pcre2_code *re = pattern_arg(ev, call, 1, a[1], &err);
    if (!re) return err;
    ib_value *subj = ib_to_str(ev, a[0]);
    char *with = a[2]->kind == IB_V_NULL ? strdup("") : ib_eval_text(ev, a[2]);
    size_t cap = subj->len + subj->len / 2 + 256;
    ib_value *out = NULL;
    for (int attempt = 0; attempt < 2 && !out; attempt++) {
        if (cap > IB_VALUE_MAX_STR) {
            out = ib_v_error("replace: the result is larger than %u bytes", IB_VALUE_MAX_STR);
            break;
        }
        if (!ib_vbudget_room(cap)) {
            ib_vbudget_exceed();
            break;
        }
        PCRE2_UCHAR *buf = malloc(cap);
        if (!buf) abort();
        PCRE2_SIZE outlen = cap;
        /* $1, ${name} in `with` refer to groups; an unset group gives "" rather than an error */
        int rc = pcre2_substitute(re, (PCRE2_SPTR)subj->str, subj->len, 0,
                                  PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH |
                                      PCRE2_SUBSTITUTE_UNSET_EMPTY,
                                  NULL, ev->mctx, (PCRE2_SPTR)with, strlen(with), buf, &outlen);
        if (rc >= 0) {
            out = ib_v_str((const char *)buf, outlen);
            ib_v_prov_merge(out, subj);
        } else if (rc == PCRE2_ERROR_NOMEMORY && attempt == 0) {
            cap = outlen; /* the length it needs, terminator included */
        } else {
            out = rx_fail(call, rc);
        }
        free(buf);
    }
    free(with);
    ib_v_unref(subj);
    return out;
}

/* ---- text ---- */

typedef char *(*str_fn)(const char *);

static ib_value *text1(ib_eval *ev, ib_value **a, uint32_t n, str_fn f)
{
    ib_value *err = first_error(a, n);
    if (err) return err;
    if (a[0]->kind == IB_V_NULL) return ib_v_null();
    ib_value *s = ib_to_str(ev, a[0]);
    ib_value *out = str_from(f(s->str), s);
    ib_v_unref(s);
    return out;
}

static ib_value *fn_clean(ib_eval *ev, const ib_node *c, ib_value **a, uint32_t n)
{
    (void)c;
    return text1(ev, a, n, ib_str_clean);
}
static ib_value *fn_trim(ib_eval *ev, const ib_node *c, ib_value **a, uint32_t n)
{
    (void)c;
    return text1(ev, a, n, ib_str_trim);
}
static ib_value *fn_upper(ib_eval *ev, const ib_node *c, ib_value **a, uint32_t n)
{
    (void)c;
    return text1(ev, a, n, ib_str_upper);
}
static ib_value *fn_lower(ib_eval *ev, const ib_node *c, ib_value **a, uint32_t n)
{
    (void)c;
    return text1(ev, a, n, ib_str_lower);
}
static ib_value *fn_title(ib_eval *ev, const ib_node *c, ib_value **a, uint32_t n)
{
    (void)c;
    return text1(ev, a, n, ib_str_title);
}

/* The text of a value for concat and join, borrowed when the value already is text (no copy of a large string
 * per use); else made into *tmp, which the caller frees. */
static const char *text_of(ib_eval *ev, const ib_value *v, char **tmp, size_t *len)
{
    *tmp = NULL;
    if (v->kind == IB_V_STR) {
        *len = v->len;
        return v->str;
    }
    if (v->kind == IB_V_DOC) {
        const ib_text *t = ib_eval_layout(ev);
        *len = t->len;
        return t->text;
    }
    *tmp = ib_eval_text(ev, v);
    *len = strlen(*tmp);
    return *tmp;
}

/* Appends len bytes to the text being built in *buf (*n used, *cap allocated). -1 when the result would pass
 * IB_VALUE_MAX_STR (*too_long set) or the record's budget (marked exceeded): nothing is allocated then. */
static int append(char **buf, size_t *n, size_t *cap, const char *s, size_t len, int *too_long)
{
    if (*n + len + 1 > IB_VALUE_MAX_STR) {
        *too_long = 1;
        return -1;
    }
    if (*n + len + 1 > *cap) {
        size_t ncap = *cap ? *cap : 64;
        while (*n + len + 1 > ncap)
            ncap *= 2;
        if (!ib_vbudget_room(ncap)) {
            ib_vbudget_exceed();
            return -1;
        }
        char *nb = realloc(*buf, ncap);
        if (!nb) abort();
        *buf = nb;
        *cap = ncap;
    }
    if (len) memcpy(*buf + *n, s, len);
    *n += len;
    (*buf)[*n] = '\0';
    return 0;
}

static ib_value *fn_concat(ib_eval *ev, const ib_node *c, ib_value **a, uint32_t n)
{
    (void)c;
    ib_value *err = first_error(a, n);
    if (err) return err;
    size_t cap = 0, len = 0;
    char *buf = NULL;
    int too_long = 0, rc = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        if (a[i]->kind == IB_V_NULL) continue;
        char *tmp;
        size_t tl;
        const char *t = text_of(ev, a[i], &tmp, &tl);
        rc = append(&buf, &len, &cap, t, tl, &too_long);
        free(tmp);
    }
    if (rc < 0) {
        free(buf);
        return too_long ? ib_v_error("concat: the result is larger than %u bytes", IB_VALUE_MAX_STR) : NULL;
    }
    ib_value *out = buf ? ib_v_str_take(buf, len) : ib_v_str("", 0);
    for (uint32_t i = 0; i < n; i++)
        if (a[i]->kind != IB_V_NULL && a[i]->kind != IB_V_DOC) ib_v_prov_merge(out, a[i]);
    return out;
}

static ib_value *fn_substr(ib_eval *ev, const ib_node *call, ib_value **a, uint32_t n)
{
    ib_value *err = first_error(a, n);
    if (err) return err;
    if (a[0]->kind == IB_V_NULL) return ib_v_null();
    double start, len = -1;
    if (num_arg(ev, a[1], &start) < 0 || (n > 2 && a[2]->kind != IB_V_NULL && num_arg(ev, a[2], &len) < 0))
        return ib_v_error("%s: start and length must be numbers", fname(call));
    if (fabs(start) > 1e15 || fabs(len) > 1e15)
        return ib_v_error("%s: start or length out of range", fname(call));
    ib_value *s = ib_to_str(ev, a[0]);
    ib_value *out = str_from(ib_str_substr(s->str, (long long)start, (long long)len), s);
    ib_v_unref(s);
    return out;
}

static ib_value *fn_len(ib_eval *ev, const ib_node *c, ib_value **a, uint32_t n)
{
    (void)c;
    ib_value *err = first_error(a, n);
    if (err) return err;
    if (a[0]->kind == IB_V_NULL) return ib_v_num(0);
    if (a[0]->kind == IB_V_LIST) return ib_v_num((double)a[0]->nitems);
    ib_value *s = ib_to_str(ev, a[0]);
    ib_value *out = ib_v_num((double)ib_str_len(s->str));
    ib_v_unref(s);
    return out;
}

static ib_value *list_from_strlist(ib_strlist *l, const ib_value *from)
{
    ib_value *out = ib_v_list();
    for (size_t i = 0; i < l->n; i++) {
        ib_value *item = ib_v_str_own(l->items[i]);
        l->items[i] = NULL;
        if (from) ib_v_prov_merge(item, from);
        if (ib_v_list_push(out, item) < 0) break;
    }
    ib_strlist_free(l);
    if (from) ib_v_prov_merge(out, from);
    return out;
}

static ib_value *fn_split(ib_eval *ev, const ib_node *c, ib_value **a, uint32_t n)
{
    (void)c;
    ib_value *err = first_error(a, n);
    if (err) return err;
    if (a[0]->kind == IB_V_NULL) return ib_v_list();
    ib_value *s = ib_to_str(ev, a[0]);
    if (!ib_vbudget_room(s->len)) { /* the pieces are copies: as large as the text again */
        ib_vbudget_exceed();
        ib_v_unref(s);
        return NULL;
    }
    char *sep = a[1]->kind == IB_V_NULL ? strdup("") : ib_eval_text(ev, a[1]);
    ib_strlist l = {0};
    int rc = ib_str_split(s->str, sep, &l);
    free(sep);
    ib_value *out = rc == 0 ? list_from_strlist(&l, s) : ib_v_error("split: out of memory");
    ib_v_unref(s);
    return out;
}

static ib_value *fn_join(ib_eval *ev, const ib_node *c, ib_value **a, uint32_t n)
{
    (void)c;
    ib_value *err = first_error(a, n);
    if (err) return err;
    if (a[0]->kind == IB_V_NULL) return ib_v_null();
    if (a[0]->kind != IB_V_LIST) return ib_to_str(ev, a[0]);
    char *sep = a[1]->kind == IB_V_NULL ? strdup("") : ib_eval_text(ev, a[1]);
    size_t sl = strlen(sep), cap = 0, len = 0;
    char *buf = NULL;
    int too_long = 0, rc = 0;
    size_t i = 0;
    /* past IB_VALUE_MAX_STR the items that fit are kept (the join is cut short); past the budget it fails */
    for (; i < a[0]->nitems && rc == 0; i++) {
        char *tmp;
        size_t tl;
        const char *t = text_of(ev, a[0]->items[i], &tmp, &tl);
        if (len + tl + sl + 1 > IB_VALUE_MAX_STR) {
            free(tmp);
            break;
        }
        rc = (i ? append(&buf, &len, &cap, sep, sl, &too_long) : 0) ||
             append(&buf, &len, &cap, t, tl, &too_long) ? -1 : 0;
        free(tmp);
    }
    free(sep);
    if (rc < 0) {
        free(buf);
        return NULL;
    }
    ib_value *out = buf ? ib_v_str_take(buf, len) : ib_v_str("", 0);
    for (size_t k = 0; k < i; k++)
        ib_v_prov_merge(out, a[0]->items[k]);
    return out;
}

static ib_value *fn_nth(ib_eval *ev, const ib_node *call, ib_value **a, uint32_t n)
{
    ib_value *err = first_error(a, n);
    if (err) return err;
    if (a[0]->kind == IB_V_NULL) return ib_v_null();
    double d;
    if (num_arg(ev, a[1], &d) < 0 || d != floor(d))
        return ib_v_error("%s: the index must be a whole number", fname(call));
    if (a[0]->kind != IB_V_LIST) /* a single value is a list of one */
        return (d == 0 || d == -1) ? ib_v_ref(a[0]) : ib_v_null();
    double cnt = (double)a[0]->nitems;
    if (d < 0) d += cnt; /* -1 is the last item */
    if (d < 0 || d >= cnt) return ib_v_null();
    return ib_v_ref(a[0]->items[(size_t)d]);
}

/* Lines of a mapped text (the document's rendering) with their provenance: blank lines dropped, as a
 * document's lines are its visual lines. */
static ib_value *mapped_lines(ib_eval *ev, const ib_value *s, int keep_blank)
{
    ib_value *out = ib_v_list();
    size_t i = 0;
    while (i < s->len) {
        if (ib_eval_spent(ev)) break; /* ib_call turns a spent budget into the error */
        size_t e = i;
        while (e < s->len && s->str[e] != '\n' && s->str[e] != '\r' && s->str[e] != '\f')
            e++;
        ib_value *line = ib_v_str(s->str + i, e - i);
        ib_prov_from_map(ev, line, s->map, i, e);
        if (keep_blank || !ib_v_is_empty(line)) {
            ib_v_prov_merge(out, line);
            if (ib_v_list_push(out, line) < 0) break;
        } else {
            ib_v_unref(line);
        }
        if (e < s->len && s->str[e] == '\r' && e + 1 < s->len && s->str[e + 1] == '\n') e++;
        i = e + 1;
    }
    return out;
}

static ib_value *lines_of(ib_eval *ev, ib_value *v)
{
    ib_value *s = ib_to_str(ev, v);
    ib_value *out;
    if (s->kind == IB_V_STR && !ib_vbudget_room(s->len)) { /* the lines are copies: as large as the text again */
        ib_vbudget_exceed();
        ib_v_unref(s);
        return ib_v_error("lines: over the record's budget");
    }
    if (s->map) {
        out = mapped_lines(ev, s, v->kind != IB_V_DOC);
    } else {
        ib_strlist l = {0};
        out = ib_str_lines(s->str, &l) == 0 ? list_from_strlist(&l, s) : ib_v_error("lines: out of memory");
    }
    ib_v_unref(s);
    return out;
}

static ib_value *fn_lines(ib_eval *ev, const ib_node *c, ib_value **a, uint32_t n)
{
    (void)c;
    ib_value *err = first_error(a, n);
    if (err) return err;
    if (a[0]->kind == IB_V_NULL) return ib_v_list();
    return lines_of(ev, a[0]);
}

static ib_value *fn_line_containing(ib_eval *ev, const ib_node *c, ib_value **a, uint32_t n)
{
    (void)c;
    ib_value *err = first_error(a, n);
    if (err) return err;
    if (a[0]->kind == IB_V_NULL || a[1]->kind == IB_V_NULL) return ib_v_null();
    char *needle = ib_eval_text(ev, a[1]);
    ib_value *out = NULL;
    if (!*needle) {
        out = ib_v_null();
    } else if (a[0]->kind == IB_V_STR && !a[0]->map) {
        char *line = NULL;
        int rc = ib_str_line_containing(a[0]->str, needle, &line);
        out = rc == 0   ? str_from(line, a[0])
              : rc == 1 ? ib_v_null()
                        : ib_v_error("line_containing: out of memory");
    } else {
        /* the document's lines, each with its own provenance; case-sensitive first, as ib_str_line_containing
         */
        ib_value *lines = lines_of(ev, a[0]);
        for (int icase = 0; icase < 2 && !out && lines->kind == IB_V_LIST; icase++)
            for (size_t i = 0; i < lines->nitems && !out; i++) {
                size_t ml;
                if (ib_str_find(lines->items[i]->str, needle, icase, &ml)) out = ib_v_ref(lines->items[i]);
            }
        if (!out) out = lines->kind == IB_V_ERROR ? ib_v_ref(lines) : ib_v_null();
        ib_v_unref(lines);
    }
    free(needle);
    return out;
}

static ib_value *fn_between(ib_eval *ev, const ib_node *c, ib_value **a, uint32_t n)
{
    (void)c;
    ib_value *err = first_error(a, n);
    if (err) return err;
    if (a[0]->kind == IB_V_NULL) return ib_v_null();
    ib_value *s = ib_to_str(ev, a[0]);
    char *start = a[1]->kind == IB_V_NULL ? strdup("") : ib_eval_text(ev, a[1]);
    char *end = a[2]->kind == IB_V_NULL ? strdup("") : ib_eval_text(ev, a[2]);
    char *res = NULL;
    int rc = ib_str_between(s->str, start, end, &res);
    ib_value *out;
    if (rc == 0) {
        out = ib_v_str_own(res);
        /* the piece is a substring of the text: find it again (after start) to point at its words */
        const char *at = s->map ? strstr(s->str, out->str) : NULL;
        if (at && out->len)
            ib_prov_from_map(ev, out, s->map, (size_t)(at - s->str), (size_t)(at - s->str) + out->len);
        else
            ib_v_prov_merge(out, s);
    } else {
        out = rc == 1 ? ib_v_null() : ib_v_error("between: out of memory");
    }
    free(start);
    free(end);
    ib_v_unref(s);
    return out;
}

static ib_value *fn_reading_text(ib_eval *ev, const ib_node *c, ib_value **a, uint32_t n)
{
    (void)c;
    ib_value *err = first_error(a, n);
    if (err) return err;
    if (a[0]->kind != IB_V_DOC) return ib_to_str(ev, a[0]);
    const ib_text *t = ib_eval_reading(ev);
    return ib_v_str_borrow(t->text, t->len, t);
}

/* ---- parsing ---- */

/* number, int and date of a list (a column): the function applied to every item, each keeping its own
 * provenance; an item it cannot read fails the whole, naming the item. */
static ib_value *map_items(ib_eval *ev, const ib_node *call, ib_value **a, uint32_t n, fn_impl f)
{
    ib_value *out = ib_v_list(), *args[IB_FORMULA_MAX_ARGS];
    memcpy(args, a, n * sizeof *a);
    for (size_t i = 0; i < a[0]->nitems; i++) {
        args[0] = a[0]->items[i];
        ib_value *r = ib_eval_spent(ev) ? NULL : f(ev, call, args, n);
        if (!r || r->kind == IB_V_ERROR) {
            ib_value *e = r ? ib_v_error("%s (item %zu of the list)", r->str, i + 1) : NULL;
            ib_v_unref(r);
            ib_v_unref(out);
            return e;
        }
        ib_v_prov_merge(out, r);
        ib_v_list_push(out, r);
    }
    return out;
}

static ib_value *fn_number(ib_eval *ev, const ib_node *call, ib_value **a, uint32_t n)
{
    ib_value *err = first_error(a, n);
    if (err) return err;
    if (a[0]->kind == IB_V_LIST) return map_items(ev, call, a, n, fn_number);
    ib_value *v = a[0];
    if (v->kind == IB_V_NULL) return ib_v_null();
    if (v->kind == IB_V_NUM) {
        if (call->fn == IB_FN_NUMBER || v->num == trunc(v->num)) return ib_v_ref(v);
        ib_value *o = ib_v_num(trunc(v->num));
        ib_v_prov_merge(o, v);
        return o;
    }
    if (v->kind == IB_V_BOOL) return ib_v_num(v->b);
    ib_value *s = ib_to_str(ev, v);
    ib_value *out;
    double d;
    long long ll;
    if (call->fn == IB_FN_NUMBER ? ib_parse_number(s->str, &d) == 0
                                 : (ib_parse_int(s->str, &ll) == 0 && ((d = (double)ll), 1))) {
        out = ib_v_num(d);
        ib_v_prov_merge(out, s);
    } else {
        char q[64];
        ib_quote(s->str, q, sizeof q);
        out =
            ib_v_error("%s: no %s in '%s'", fname(call), call->fn == IB_FN_NUMBER ? "number" : "integer", q);
    }
    ib_v_unref(s);
    return out;
}

static ib_value *fn_date(ib_eval *ev, const ib_node *call, ib_value **a, uint32_t n)
{
    ib_value *err = first_error(a, n);
    if (err) return err;
    if (a[0]->kind == IB_V_LIST) return map_items(ev, call, a, n, fn_date);
    if (a[0]->kind == IB_V_NULL) return ib_v_null();
    ib_value *s = ib_to_str(ev, a[0]);
    char *order = n > 1 && a[1]->kind != IB_V_NULL ? ib_eval_text(ev, a[1]) : NULL;
    char iso[11];
    int rc = ib_parse_date(s->str, order, iso);
    ib_value *out;
    if (rc == 0) {
        out = ib_v_str(iso, 10);
        ib_v_prov_merge(out, s);
    } else if (rc == -2) {
        out = ib_v_error("%s: order must be 'DMY', 'MDY' or 'YMD'", fname(call));
    } else {
        char q[64];
        ib_quote(s->str, q, sizeof q);
        out = ib_v_error("%s: no date in '%s'", fname(call), q);
    }
    free(order);
    ib_v_unref(s);
    return out;
}

static ib_value *fn_bool(ib_eval *ev, const ib_node *call, ib_value **a, uint32_t n)
{
    ib_value *err = first_error(a, n);
    if (err) return err;
    ib_value *v = a[0];
    if (v->kind == IB_V_NULL) return ib_v_null();
    if (v->kind == IB_V_BOOL) return ib_v_ref(v);
    if (v->kind == IB_V_NUM) return ib_v_bool(v->num != 0);
    ib_value *s = ib_to_str(ev, v);
    int b;
    ib_value *out;
    if (ib_parse_bool(s->str, &b) == 0) {
        out = ib_v_bool(b);
        ib_v_prov_merge(out, s);
    } else if (ib_v_is_empty(s)) {
        out = ib_v_null();
    } else {
        char q[64];
        ib_quote(s->str, q, sizeof q);
        out = ib_v_error("%s: cannot read '%s' as true or false", fname(call), q);
    }
    ib_v_unref(s);
    return out;
}

/* ---- logic ---- */

static int values_equal(ib_eval *ev, const ib_value *x, const ib_value *y)
{
    if (x->kind == IB_V_NULL || y->kind == IB_V_NULL) /* null equals null and "" */
        return (x->kind == IB_V_NULL || (x->kind == IB_V_STR && x->len == 0)) &&
               (y->kind == IB_V_NULL || (y->kind == IB_V_STR && y->len == 0));
    if (x->kind == IB_V_NUM && y->kind == IB_V_NUM) return x->num == y->num;
    if (x->kind == IB_V_BOOL && y->kind == IB_V_BOOL) return x->b == y->b;
    char *a = ib_eval_text(ev, x), *b = ib_eval_text(ev, y);
    int eq = strcmp(a, b) == 0;
    free(a);
    free(b);
    return eq;
}

static ib_value *fn_eq(ib_eval *ev, const ib_node *c, ib_value **a, uint32_t n)
{
    (void)c;
    ib_value *err = first_error(a, n);
    if (err) return err;
    return ib_v_bool(values_equal(ev, a[0], a[1]));
}

static ib_value *fn_contains(ib_eval *ev, const ib_node *c, ib_value **a, uint32_t n)
{
    (void)c;
    ib_value *err = first_error(a, n);
    if (err) return err;
    if (a[0]->kind == IB_V_NULL) return ib_v_bool(0);
    if (a[0]->kind == IB_V_LIST) {
        for (size_t i = 0; i < a[0]->nitems; i++)
            if (values_equal(ev, a[0]->items[i], a[1])) return ib_v_bool(1);
        return ib_v_bool(0);
    }
    if (a[1]->kind == IB_V_NULL) return ib_v_bool(0);
    ib_value *s = ib_to_str(ev, a[0]);
    char *needle = ib_eval_text(ev, a[1]);
    size_t ml;
    int found = ib_str_find(s->str, needle, 0, &ml) != NULL;
    free(needle);
    ib_v_unref(s);
    return ib_v_bool(found);
}

static ib_value *fn_not(ib_eval *ev, const ib_node *c, ib_value **a, uint32_t n)
{
    (void)ev, (void)c;
    ib_value *err = first_error(a, n);
    if (err) return err;
    return ib_v_bool(!ib_truthy(a[0]));
}

static ib_value *eval_kid(ib_eval *ev, const ib_node *call, uint32_t i)
{
    ib_value *const *fields = ev->fields;
    size_t nfields = ev->nfields;
    return ib_eval_node(ev, call->kids[i], fields, nfields);
}

/* if, coalesce, and, or: their arguments are evaluated only as far as needed. */
static ib_value *lazy_call(ib_eval *ev, const ib_node *call)
{
    switch (call->fn) {
    case IB_FN_IF: {
        ib_value *c = eval_kid(ev, call, 0);
        if (c->kind == IB_V_ERROR) return c;
        int t = ib_truthy(c);
        ib_v_unref(c);
        if (t) return eval_kid(ev, call, 1);
        return call->nkids > 2 ? eval_kid(ev, call, 2) : ib_v_null();
    }
    case IB_FN_COALESCE:
        for (uint32_t i = 0; i < call->nkids; i++) {
            ib_value *v = eval_kid(ev, call, i);
            if (!ib_v_is_empty(v)) return v;
            ib_v_unref(v);
        }
        return ib_v_null();
    case IB_FN_AND:
    case IB_FN_OR: {
        int want = call->fn == IB_FN_OR; /* the value that decides early */
        for (uint32_t i = 0; i < call->nkids; i++) {
            ib_value *v = eval_kid(ev, call, i);
            if (v->kind == IB_V_ERROR) return v;
            int t = ib_truthy(v);
            ib_v_unref(v);
            if (t == want) return ib_v_bool(want);
        }
        return ib_v_bool(!want);
    }
    default:
        return ib_v_error("internal: %s is not lazy", fname(call));
    }
}

/* ---- CONFIG ---- */

static ib_value *fn_config(ib_eval *ev, const ib_node *call, ib_value **a, uint32_t n)
{
    ib_value *err = first_error(a, n);
    if (err) return err;
    if (a[0]->kind == IB_V_NULL) return ib_v_error("%s: the key is null", fname(call));
    char *key = ib_eval_text(ev, a[0]);
    json_t *v = ev->env.config ? json_object_get(ev->env.config, key) : NULL;
    free(key);
    if (json_is_string(v)) return ib_v_str(json_string_value(v), json_string_length(v));
    if (json_is_number(v)) return ib_v_num(json_number_value(v));
    if (json_is_boolean(v)) return ib_v_bool(json_is_true(v));
    return n > 1 ? ib_v_ref(a[1]) : ib_v_null();
}

/* ---- spatial ---- */

static ib_value *fn_spatial(ib_eval *ev, const ib_node *call, ib_value **a, uint32_t n)
{
    ib_value *err = first_error(a, n);
    if (err) return err;
    if (a[0]->kind == IB_V_NULL) return ib_v_null();
    if (a[0]->kind != IB_V_DOC)
        return ib_v_error("%s: the first argument must be the document (INPUT_COL)", fname(call));
    if (a[1]->kind == IB_V_NULL) return ib_v_null();
    const ib_doc *doc = a[0]->doc;
    char *anchor = ib_eval_text(ev, a[1]);
    ib_wlist wl = {0};
    int rc;
    if (call->fn == IB_FN_SCAN_RIGHT) {
        rc = ib_scan_right(doc, anchor, &wl);
    } else if (call->fn == IB_FN_SCAN_BELOW) {
        rc = ib_scan_below(doc, anchor, &wl);
    } else {
        double right, below;
        if (num_arg(ev, a[2], &right) < 0 || num_arg(ev, a[3], &below) < 0) {
            free(anchor);
            return ib_v_error("%s: right and below must be numbers", fname(call));
        }
        rc = ib_scan_box(doc, anchor, right, below, &wl);
    }
    free(anchor);
    if (rc < 0) return ib_v_error("%s: out of memory", fname(call));
    if (rc == 1 || wl.n == 0) { /* no anchor, or nothing where we looked: no value */
        ib_wlist_free(&wl);
        return ib_v_null();
    }
    ib_value *out = str_from(ib_wlist_text(doc, &wl), NULL);
    ib_pbox *boxes = NULL;
    size_t nb = 0;
    if (ib_wlist_bboxes(doc, &wl, &boxes, &nb) == 0)
        for (size_t i = 0; i < nb; i++)
            ib_v_prov_add(out, boxes[i].page, boxes[i].box);
    free(boxes);
    ib_wlist_free(&wl);
    return out;
}

/* ---- tables ---- */

static ib_value *fn_table(ib_eval *ev, const ib_node *call, ib_value **a, uint32_t n)
{
    ib_value *err = first_error(a, n);
    if (err) return err;
    if (a[0]->kind == IB_V_NULL) return ib_v_null();
    if (a[0]->kind != IB_V_DOC)
        return ib_v_error("table: the first argument must be the document (INPUT_COL)");
    const char *titles[IB_TABLE_MAX_COLS];
    ib_table_spec sp = {.titles = titles};
    if (a[1]->kind == IB_V_LIST) {
        if (a[1]->nitems == 0 || a[1]->nitems > IB_TABLE_MAX_COLS)
            return ib_v_error("table: the header list must hold 1 to %u column titles", IB_TABLE_MAX_COLS);
        for (size_t i = 0; i < a[1]->nitems; i++) {
            if (a[1]->items[i]->kind != IB_V_STR || ib_v_is_empty(a[1]->items[i]))
                return ib_v_error("table: header title %zu must be non-empty text", i + 1);
            titles[sp.ntitles++] = a[1]->items[i]->str;
        }
    } else if (a[1]->kind == IB_V_STR) {
        if (!(sp.header_rx = pattern_arg(ev, call, 1, a[1], &err))) return err;
    } else {
        return ib_v_error("table: the header must be a regular expression or a list of column titles");
    }
    if (n > 2 && a[2]->kind != IB_V_NULL) {
        if (a[2]->kind != IB_V_STR) return ib_v_error("table: end must be a regular expression (text)");
        if (!(sp.end_rx = pattern_arg(ev, call, 2, a[2], &err))) return err;
    }
    ib_table_opts opts;
    if (n > 3 && a[3]->kind != IB_V_NULL) {
        char msg[400];
        if (a[3]->kind != IB_V_STR) return ib_v_error("table: options must be a JSON object in text");
        if (ib_table_opts_parse(a[3]->str, a[3]->len, &opts, msg, sizeof msg) < 0)
            return ib_v_error("table: options: %s", msg);
        sp.opts = &opts;
    }
    ib_value *out = ib_table_read(ev, a[0]->doc, &sp);
    if (sp.opts) ib_table_opts_free(&opts);
    return out;
}

static ib_value *fn_tables(ib_eval *ev, const ib_node *call, ib_value **a, uint32_t n)
{
    (void)call;
    ib_value *err = first_error(a, n);
    if (err) return err;
    if (a[0]->kind == IB_V_NULL) return ib_v_list();
    if (a[0]->kind != IB_V_DOC) return ib_v_error("tables: the argument must be the document (INPUT_COL)");
    return ib_tables_read(ev, a[0]->doc);
}

/* The named groups of a pattern as (group number, column index) pairs, adding new names to the columns. */
typedef struct li_group {
    uint32_t num, col;
} li_group;

static size_t li_groups(const pcre2_code *re, char **cols, size_t *ncols, li_group *out, size_t max)
{
    uint32_t count = 0, entry = 0;
    PCRE2_SPTR table;
    if (!re) return 0;
    pcre2_pattern_info(re, PCRE2_INFO_NAMECOUNT, &count);
    pcre2_pattern_info(re, PCRE2_INFO_NAMEENTRYSIZE, &entry);
    pcre2_pattern_info(re, PCRE2_INFO_NAMETABLE, &table);
    /* the name table is sorted by name: the columns come in the order of the groups in the pattern */
    const char *names[IB_TABLE_MAX_COLS];
    size_t n = 0;
    for (uint32_t i = 0; i < count && n < max; i++) {
        const unsigned char *e = table + (size_t)i * entry;
        uint32_t num = (uint32_t)(e[0] << 8 | e[1]);
        size_t k = n++;
        while (k > 0 && out[k - 1].num > num)
            out[k] = out[k - 1], names[k] = names[k - 1], k--;
        out[k].num = num;
        names[k] = (const char *)e + 2;
    }
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        size_t c = 0;
        while (c < *ncols && strcmp(cols[c], names[i]) != 0)
            c++;
        if (c == *ncols) {
            if (*ncols >= IB_TABLE_MAX_COLS) continue;
            cols[(*ncols)++] = (char *)names[i];
        }
        out[kept].num = out[i].num;
        out[kept++].col = (uint32_t)c;
    }
    return kept;
}

/* Matches re on the line [ls, le) of subj; the groups in gs add their text to the row's cells. 1 matched, 0
 * no, -1 error (*err). */
static int li_match(ib_eval *ev, const ib_node *call, const pcre2_code *re, const li_group *gs, size_t ng,
                    const ib_value *subj, size_t ls, size_t le, ib_value **cells, ib_value **err)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) abort();
    int rc = pcre2_match(re, (PCRE2_SPTR)subj->str + ls, le - ls, 0, 0, md, ev->mctx);
    if (rc < 0) {
        pcre2_match_data_free(md);
        if (rc == PCRE2_ERROR_NOMATCH) return 0;
        *err = rx_fail(call, rc);
        return -1;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    for (size_t i = 0; i < ng; i++) {
        size_t s = ov[2 * gs[i].num], e = ov[2 * gs[i].num + 1];
        if (s == PCRE2_UNSET || e <= s) continue;
        s += ls, e += ls;
        ib_value *piece = ib_v_str(subj->str + s, e - s);
        if (subj->map)
            ib_prov_from_map(ev, piece, subj->map, s, e);
        else
            ib_v_prov_merge(piece, subj);
        ib_value **c = &cells[gs[i].col];
        if (*c) { /* a multi-line item: the lines' pieces joined by a space */
            size_t l = (*c)->len + 1 + piece->len;
            char *t = malloc(l + 1);
            if (!t) abort();
            memcpy(t, (*c)->str, (*c)->len);
            t[(*c)->len] = ' ';
            memcpy(t + (*c)->len + 1, piece->str, piece->len + 1);
            ib_value *j = ib_v_str_take(t, l);
            ib_v_prov_merge(j, *c);
            ib_v_prov_merge(j, piece);
            ib_v_unref(*c);
            ib_v_unref(piece);
            *c = j;
        } else {
            *c = piece;
        }
    }
    pcre2_match_data_free(md);
    return 1;
}

static int li_flush(ib_value *table, ib_value **cells, size_t ncols, int *open)
{
    int rc = 0;
    if (*open) {
        ib_value *row = ib_v_list();
        for (size_t c = 0; c < ncols; c++) {
            ib_value *cell = cells[c] ? cells[c] : ib_v_null();
            ib_v_prov_merge(row, cell);
            ib_v_list_push(row, cell);
            cells[c] = NULL;
        }
        ib_v_prov_merge(table, row);
        rc = ib_v_list_push(table, row);
    }
    *open = 0;
    return rc;
}

static ib_value *fn_line_items(ib_eval *ev, const ib_node *call, ib_value **a, uint32_t n)
{
    ib_value *err = first_error(a, n);
    if (err) return err;
    pcre2_code *re[6] = {0};
    for (uint32_t i = 1; i < n; i++) {
        if (a[i]->kind == IB_V_NULL && i != 3) continue; /* no start, end, first or last line pattern */
        if (a[i]->kind != IB_V_STR && a[i]->kind != IB_V_NULL) {
            static const char *const what[] = {NULL, "start", "end", "line", "first_line", "last_line"};
            return ib_v_error("line_items: %s must be a regular expression (text)", what[i]);
        }
        if (!(re[i] = pattern_arg(ev, call, i, a[i], &err))) return err;
    }
    char *cols[IB_TABLE_MAX_COLS];
    size_t ncols = 0;
    li_group g_first[IB_TABLE_MAX_COLS], g_line[IB_TABLE_MAX_COLS], g_last[IB_TABLE_MAX_COLS];
    size_t n_first = li_groups(re[4], cols, &ncols, g_first, IB_TABLE_MAX_COLS);
    size_t n_line = li_groups(re[3], cols, &ncols, g_line, IB_TABLE_MAX_COLS);
    size_t n_last = li_groups(re[5], cols, &ncols, g_last, IB_TABLE_MAX_COLS);
    if (n_line == 0)
        return ib_v_error("line_items: the line pattern has no named group: the cells are its named groups");
    ib_value *names = ib_v_list();
    for (size_t c = 0; c < ncols; c++)
        ib_v_list_push(names, ib_v_str(cols[c], strlen(cols[c])));
    ib_value *table = ib_v_table(names);
    if (a[0]->kind == IB_V_NULL) return table;
    ib_value *subj = ib_to_str(ev, a[0]);
    /* the section: the lines after the first line the start pattern matches, up to the first line after it
     * that the end pattern matches. Every pattern sees one line at a time, so ^ and $ are a line's ends. */
    size_t from = re[1] ? subj->len : 0, to = subj->len;
    int rc = 0;
    ib_value *none[IB_TABLE_MAX_COLS] = {0};
    for (size_t ls = 0; ls < subj->len && rc == 0 && !ib_eval_spent(ev);) {
        size_t le = ls;
        while (le < subj->len && subj->str[le] != '\n' && subj->str[le] != '\f')
            le++;
        size_t lend = le > ls && subj->str[le - 1] == '\r' ? le - 1 : le;
        if (from == subj->len && re[1]) {
            rc = li_match(ev, call, re[1], NULL, 0, subj, ls, lend, none, &err);
            if (rc > 0) from = le < subj->len ? le + 1 : le, rc = 0;
        } else if (re[2]) {
            rc = li_match(ev, call, re[2], NULL, 0, subj, ls, lend, none, &err);
            if (rc > 0) to = ls;
        } else {
            break;
        }
        ls = le + 1;
    }
    if (rc < 0) {
        ib_v_unref(subj);
        ib_v_unref(table);
        return err;
    }
    ib_value *cells[IB_TABLE_MAX_COLS] = {0};
    int open = 0;
    for (size_t ls = from; ls < to && !err;) {
        if (ib_eval_spent(ev)) break; /* ib_call turns a spent budget into the error */
        size_t le = ls;
        while (le < to && subj->str[le] != '\n' && subj->str[le] != '\f')
            le++;
        size_t next = le + 1, lend = le > ls && subj->str[le - 1] == '\r' ? le - 1 : le;
        int m, full = 0;
        if (!re[4]) { /* every line the line pattern matches is a row */
            m = li_match(ev, call, re[3], g_line, n_line, subj, ls, lend, cells, &err);
            if (m > 0) open = 1, full = li_flush(table, cells, ncols, &open) < 0;
        } else {
            /* multi-line items: a first line starts one (ending the one before), line adds to it, last_line
             * adds and ends it; lines outside an item are skipped */
            ib_value *fresh[IB_TABLE_MAX_COLS] = {0};
            m = li_match(ev, call, re[4], g_first, n_first, subj, ls, lend, fresh, &err);
            if (m > 0) {
                full = li_flush(table, cells, ncols, &open) < 0;
                memcpy(cells, fresh, sizeof fresh);
                open = 1;
                /* an item on one line: its first line is its last too */
                if (re[5] && li_match(ev, call, re[5], g_last, n_last, subj, ls, lend, cells, &err) > 0)
                    full |= li_flush(table, cells, ncols, &open) < 0;
            } else if (m == 0 && open && re[5] &&
                       (m = li_match(ev, call, re[5], g_last, n_last, subj, ls, lend, cells, &err)) > 0) {
                full = li_flush(table, cells, ncols, &open) < 0;
            } else if (m == 0 && open) {
                li_match(ev, call, re[3], g_line, n_line, subj, ls, lend, cells, &err);
            }
        }
        if (full) err = ib_v_error("line_items: more than %u rows", IB_VALUE_MAX_ITEMS);
        ls = next;
    }
    if (!err && li_flush(table, cells, ncols, &open) < 0)
        err = ib_v_error("line_items: more than %u rows", IB_VALUE_MAX_ITEMS);
    for (size_t c = 0; c < IB_TABLE_MAX_COLS; c++)
        ib_v_unref(cells[c]);
    ib_v_unref(subj);
    if (err || ib_eval_spent(ev)) {
        ib_v_unref(table);
        return err;
    }
    return table;
}

/* ---- working with rows ---- */

static ib_value *rows_arg(const ib_node *call, ib_value *v)
{
    if (v->kind == IB_V_TABLE) return NULL;
    return ib_v_error("%s: the first argument must be rows (from table or line_items), not %s", fname(call),
                      v->kind == IB_V_LIST  ? "a list"
                      : v->kind == IB_V_DOC ? "the document"
                                            : "a single value");
}

/* The index of the column named by v in table t, or -1 with *err naming the column and the ones there are. */
static int column_arg(ib_eval *ev, const ib_node *call, const ib_value *t, const ib_value *v, ib_value **err)
{
    char *name = ib_eval_text(ev, v);
    int c = ib_v_table_col(t, name, strlen(name));
    if (c < 0) {
        char q[64], have[300];
        ib_quote(name, q, sizeof q);
        ib_table_names_text(t, have, sizeof have);
        *err = ib_v_error("%s: the rows have no column '%s' (their columns: %s)", fname(call), q, have);
    }
    free(name);
    return c;
}

static ib_value *fn_column(ib_eval *ev, const ib_node *call, ib_value **a, uint32_t n)
{
    ib_value *err = first_error(a, n);
    if (err) return err;
    if (a[0]->kind == IB_V_NULL) return ib_v_list();
    if ((err = rows_arg(call, a[0]))) return err;
    int c = column_arg(ev, call, a[0], a[1], &err);
    if (c < 0) return err;
    ib_value *out = ib_v_list();
    for (size_t r = 0; r < a[0]->nitems; r++) {
        ib_value *cell = a[0]->items[r]->items[c];
        ib_v_prov_merge(out, cell);
        ib_v_list_push(out, ib_v_ref(cell));
    }
    return out;
}

static ib_value *fn_rows_where(ib_eval *ev, const ib_node *call, ib_value **a, uint32_t n)
{
    ib_value *err = first_error(a, n);
    if (err) return err;
    if (a[0]->kind == IB_V_NULL) return ib_v_null();
    if ((err = rows_arg(call, a[0]))) return err;
    int c = column_arg(ev, call, a[0], a[1], &err);
    if (c < 0) return err;
    pcre2_code *re = pattern_arg(ev, call, 2, a[2], &err);
    if (!re) return err;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) abort();
    ib_value *out = ib_v_table(ib_v_ref(a[0]->names));
    for (size_t r = 0; r < a[0]->nitems && out->kind == IB_V_TABLE; r++) {
        ib_value *cell = a[0]->items[r]->items[c];
        if (cell->kind == IB_V_NULL) continue;
        ib_value *s = ib_to_str(ev, cell);
        int rc = rx_match(ev, re, s, 0, md);
        ib_v_unref(s);
        if (rc >= 0) {
            ib_v_prov_merge(out, a[0]->items[r]);
            ib_v_list_push(out, ib_v_ref(a[0]->items[r]));
        } else if (rc != PCRE2_ERROR_NOMATCH) {
            ib_v_unref(out);
            out = rx_fail(call, rc);
        }
    }
    pcre2_match_data_free(md);
    return out;
}

static ib_value *fn_count(ib_eval *ev, const ib_node *call, ib_value **a, uint32_t n)
{
    (void)ev, (void)call;
    ib_value *err = first_error(a, n);
    if (err) return err;
    if (a[0]->kind == IB_V_LIST || a[0]->kind == IB_V_TABLE) return ib_v_num((double)a[0]->nitems);
    return ib_v_num(a[0]->kind == IB_V_NULL ? 0 : 1);
}

static ib_value *fn_sum(ib_eval *ev, const ib_node *call, ib_value **a, uint32_t n)
{
    ib_value *err = first_error(a, n);
    if (err) return err;
    if (a[0]->kind == IB_V_TABLE)
        return ib_v_error("sum: give it one column of the rows, as in sum(column(rows, 'amount'))");
    ib_value *const *items = a[0]->kind == IB_V_LIST ? a[0]->items : &a[0];
    size_t count = a[0]->kind == IB_V_LIST ? a[0]->nitems : 1;
    double total = 0;
    ib_value *out = ib_v_num(0);
    for (size_t i = 0; i < count; i++) {
        ib_value *v = items[i];
        double d;
        if (ib_v_is_empty(v) && v->kind != IB_V_ERROR) continue; /* an empty cell adds nothing */
        if (v->kind == IB_V_ERROR || v->kind == IB_V_LIST || v->kind == IB_V_TABLE ||
            num_arg(ev, v, &d) < 0) {
            char *t = ib_eval_text(ev, v), q[64];
            ib_quote(t, q, sizeof q);
            free(t);
            ib_v_unref(out);
            return ib_v_error("%s: item %zu ('%s') is not a number", fname(call), i + 1, q);
        }
        total += d;
        ib_v_prov_merge(out, v);
    }
    out->num = total;
    return out;
}

/* ---- dispatch ---- */

static const fn_impl impls[IB_FN_COUNT_] = {
    [IB_FN_SCAN_RIGHT] = fn_spatial,
    [IB_FN_SCAN_BELOW] = fn_spatial,
    [IB_FN_SCAN_BOX] = fn_spatial,
    [IB_FN_REGEX] = fn_regex,
    [IB_FN_REGEX_ALL] = fn_regex,
    [IB_FN_REPLACE] = fn_replace,
    [IB_FN_MATCHES] = fn_matches,
    [IB_FN_CLEAN] = fn_clean,
    [IB_FN_TRIM] = fn_trim,
    [IB_FN_UPPER] = fn_upper,
    [IB_FN_LOWER] = fn_lower,
    [IB_FN_TITLE] = fn_title,
    [IB_FN_CONCAT] = fn_concat,
    [IB_FN_SUBSTR] = fn_substr,
    [IB_FN_LEN] = fn_len,
    [IB_FN_SPLIT] = fn_split,
    [IB_FN_JOIN] = fn_join,
    [IB_FN_NTH] = fn_nth,
    [IB_FN_LINES] = fn_lines,
    [IB_FN_LINE_CONTAINING] = fn_line_containing,
    [IB_FN_BETWEEN] = fn_between,
    [IB_FN_READING_TEXT] = fn_reading_text,
    [IB_FN_NUMBER] = fn_number,
    [IB_FN_INT] = fn_number,
    [IB_FN_DATE] = fn_date,
    [IB_FN_BOOL] = fn_bool,
    [IB_FN_IF] = NULL,
    [IB_FN_COALESCE] = NULL,
    [IB_FN_EQ] = fn_eq,
    [IB_FN_CONTAINS] = fn_contains,
    [IB_FN_NOT] = fn_not,
    [IB_FN_AND] = NULL,
    [IB_FN_OR] = NULL,
    [IB_FN_CONFIG] = fn_config,
    [IB_FN_TABLE] = fn_table,
    [IB_FN_LINE_ITEMS] = fn_line_items,
    [IB_FN_COLUMN] = fn_column,
    [IB_FN_ROWS_WHERE] = fn_rows_where,
    [IB_FN_COUNT] = fn_count,
    [IB_FN_SUM] = fn_sum,
    [IB_FN_TABLES] = fn_tables,
};

ib_value *ib_call(ib_eval *ev, const ib_node *call)
{
    if (call->fn < 0 || call->fn >= IB_FN_COUNT_) return ib_v_error("unknown function '%s'", call->text);
    /* The record's budget is looked at around every call: a spent one ends the formula at the next call, and
     * the values built so far are freed on the way out. */
    if (ib_eval_spent(ev)) return ib_eval_spent_error(ev);
    fn_impl f = impls[call->fn];
    ib_value *out;
    if (!f) {
        out = lazy_call(ev, call);
    } else {
        ib_value *args[IB_FORMULA_MAX_ARGS];
        uint32_t n = call->nkids <= IB_FORMULA_MAX_ARGS ? call->nkids : IB_FORMULA_MAX_ARGS, got = 0;
        while (got < n && (got == 0 || !ib_eval_spent(ev)))
            args[got] = eval_kid(ev, call, got), got++;
        out = got == n && !ib_eval_spent(ev) ? f(ev, call, args, n) : NULL;
        for (uint32_t i = 0; i < got; i++)
            ib_v_unref(args[i]);
    }
    if (!out || ib_eval_spent(ev)) {
        ib_v_unref(out);
        out = ib_eval_spent_error(ev);
    }
    return out;
}
