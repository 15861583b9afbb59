/* eval: the tree walker, value conversions (to text, to field types, to JSON) and the per-program driver that
 * evaluates fields in dependency order and turns them into results. The functions themselves are in func.c.
 */
#include "eval_int.h"
#include "ib_parse.h"
#include "ib_table.h"
#include "ib_textfn.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One PCRE2 JIT stack per thread, kept for the thread's life (freed when it exits): one per document cost a
 * 1 MiB mmap and munmap each time, and an munmap in a threaded process interrupts every core. */
static pthread_key_t jit_key;
static pthread_once_t jit_once = PTHREAD_ONCE_INIT;
static _Thread_local pcre2_jit_stack *tl_jit;

static void jit_free(void *stack)
{
    pcre2_jit_stack_free(stack);
}

static void jit_key_make(void)
{
    pthread_key_create(&jit_key, jit_free);
}

static pcre2_jit_stack *thread_jit_stack(void)
{
    if (!tl_jit) {
        pthread_once(&jit_once, jit_key_make);
        tl_jit = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, NULL);
        if (tl_jit) pthread_setspecific(jit_key, tl_jit);
    }
    return tl_jit;
}

ib_eval *ib_eval_new(const ib_eval_env *env)
{
    ib_eval *ev = calloc(1, sizeof *ev);
    if (!ev) abort();
    ev->env = *env;
    ev->mctx = pcre2_match_context_create(NULL);
    if (!ev->mctx) abort();
    /* Bounds on every match, so a pathological pattern fails one field instead of stalling a worker. */
    pcre2_set_match_limit(ev->mctx, IB_REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(ev->mctx, IB_REGEX_DEPTH_LIMIT);
    pcre2_jit_stack *jit = thread_jit_stack();
    if (jit) pcre2_jit_stack_assign(ev->mctx, NULL, jit);
    ib_vbudget_init(&ev->budget, env->max_bytes);
    if (env->max_ms > 0) ev->deadline_ms = ib_eval_clock_ms() + env->max_ms;
    if (env->deadline_ms > 0 && (!ev->deadline_ms || env->deadline_ms < ev->deadline_ms)) {
        ev->deadline_ms = env->deadline_ms;
        ev->deadline_is_run = 1;
    }
    return ev;
}

long long ib_eval_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the record's budget ---- */

int ib_eval_spent(ib_eval *ev)
{
    if (ev->budget.over || ev->timed_out) return 1;
    if (ev->deadline_ms && ib_eval_clock_ms() >= ev->deadline_ms) {
        ev->timed_out = ev->timed_out_in = 1;
        return 1;
    }
    return 0;
}

void ib_size_text(size_t n, char *buf, size_t bufsz)
{
    if (n >= (1ull << 30) && n % (1ull << 30) == 0)
        snprintf(buf, bufsz, "%zu GiB", n >> 30);
    else if (n >= (1u << 20) && n % (1u << 20) == 0)
        snprintf(buf, bufsz, "%zu MiB", n >> 20);
    else if (n >= 1024 && n % 1024 == 0)
        snprintf(buf, bufsz, "%zu KiB", n >> 10);
    else
        snprintf(buf, bufsz, "%zu bytes", n);
}

static void note_limit(ib_eval *ev, const char *msg)
{
    if (!ev->limit_msg[0]) snprintf(ev->limit_msg, sizeof ev->limit_msg, "%s", msg);
}

ib_value *ib_eval_spent_error(ib_eval *ev)
{
    char msg[320], what[80], name[80];
    if (ev->field) {
        char q[64];
        ib_quote(ev->field, q, sizeof q);
        snprintf(name, sizeof name, "field '%s'", q);
    } else {
        snprintf(name, sizeof name, "the formula");
    }
    if (ev->timed_out && ev->deadline_is_run) {
        snprintf(msg, sizeof msg, "formula budget exceeded: %s %s the run's deadline", name,
                 ev->timed_out_in ? "was still running at" : "was not evaluated: it came after");
    } else if (ev->timed_out) {
        long long ms = ev->env.max_ms;
        if (ms % 1000 == 0)
            snprintf(what, sizeof what, "%lld s", ms / 1000);
        else
            snprintf(what, sizeof what, "%lld ms", ms);
        if (ev->timed_out_in)
            snprintf(msg, sizeof msg, "formula budget exceeded: %s ran longer than %s", name, what);
        else
            snprintf(msg, sizeof msg, "formula budget exceeded: %s was not evaluated: the record's formulas ran "
                     "longer than %s", name, what);
    } else {
        ib_size_text(ev->env.max_bytes, what, sizeof what);
        snprintf(msg, sizeof msg, "formula budget exceeded: %s built more than %s", name, what);
    }
    note_limit(ev, msg);
    return ib_v_error("%s", msg);
}

const char *ib_eval_limit_msg(const ib_eval *ev)
{
    return ev->limit_msg[0] ? ev->limit_msg : NULL;
}

void ib_eval_free(ib_eval *ev)
{
    if (!ev) return;
    if (ev->have_layout) ib_text_free(&ev->layout);
    if (ev->have_reading) ib_text_free(&ev->reading);
    for (size_t i = 0; i < ev->nrx; i++) {
        free(ev->rx[i].pattern);
        if (ev->rx[i].code) pcre2_code_free(ev->rx[i].code);
    }
    pcre2_match_context_free(ev->mctx);
    free(ev);
}

static void text_or_empty(int rv, ib_text *t)
{
    if (rv != 0 || !t->text) {
        ib_text_free(t);
        memset(t, 0, sizeof *t);
        t->text = strdup("");
        if (!t->text) abort();
    }
}

const ib_text *ib_eval_layout(ib_eval *ev)
{
    if (!ev->have_layout) {
        memset(&ev->layout, 0, sizeof ev->layout);
        text_or_empty(ev->env.doc ? ib_doc_layout_text(ev->env.doc, &ev->layout) : -1, &ev->layout);
        ev->have_layout = 1;
    }
    return &ev->layout;
}

const ib_text *ib_eval_reading(ib_eval *ev)
{
    if (!ev->have_reading) {
        memset(&ev->reading, 0, sizeof ev->reading);
        text_or_empty(ev->env.doc ? ib_doc_reading_text(ev->env.doc, &ev->reading) : -1, &ev->reading);
        ev->have_reading = 1;
    }
    return &ev->reading;
}

void ib_prov_from_map(ib_eval *ev, ib_value *v, const ib_text *map, size_t start, size_t end)
{
    const ib_doc *doc = ev->env.doc;
    if (!doc || !map || start >= end) return;
    /* spans are sorted by start and do not overlap: the first candidate is the first span ending after start
     */
    size_t lo = 0, hi = map->nspans;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (map->spans[mid].end <= start)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < map->nspans && map->spans[i].start < end; i++) {
        const ib_span *sp = &map->spans[i];
        if (sp->page >= doc->npages || sp->word >= doc->pages[sp->page].nwords) continue;
        ib_v_prov_add(v, sp->page, doc->pages[sp->page].words[sp->word].box);
    }
}

/* ---- conversions ---- */

char *ib_eval_text(ib_eval *ev, const ib_value *v)
{
    char buf[64];
    switch (v->kind) {
    case IB_V_STR:
        return strndup(v->str, v->len);
    case IB_V_NUM:
        ib_num_format(v->num, buf, sizeof buf);
        return strdup(buf);
    case IB_V_BOOL:
        return strdup(v->b ? "true" : "false");
    case IB_V_DOC:
        return strdup(ib_eval_layout(ev)->text);
    case IB_V_LIST:
    case IB_V_TABLE: {
        /* A table is its rows one a line, a row its cells separated by tabs.
         * The text being built counts in the record's budget while it grows (lists of lists each build one),
         * and a spent budget stops every level: a list that holds one list many times is small as a value and
         * exponentially large as text. */
        size_t cap = 64, n = 0;
        char *out = malloc(cap);
        if (!out) abort();
        ib_vbudget_hold(cap);
        for (size_t i = 0; i < v->nitems && !ib_vbudget_over(); i++) {
            char *t =
                v->kind == IB_V_TABLE ? ib_eval_row_text(ev, v->items[i]) : ib_eval_text(ev, v->items[i]);
            size_t tl = strlen(t);
            if (n + tl + 2 > cap) {
                size_t ncap = cap;
                while (n + tl + 2 > ncap)
                    ncap *= 2;
                if (!ib_vbudget_room(ncap - cap)) { /* the text would pass the record's budget: stop here */
                    ib_vbudget_exceed();
                    free(t);
                    break;
                }
                out = realloc(out, ncap);
                if (!out) abort();
                ib_vbudget_hold(ncap - cap);
                cap = ncap;
            }
            if (i) out[n++] = '\n';
            memcpy(out + n, t, tl);
            n += tl;
            free(t);
        }
        ib_vbudget_release(cap);
        out[n] = '\0';
        return out;
    }
    case IB_V_NULL:
    case IB_V_ERROR:
        break;
    }
    return strdup("");
}

ib_value *ib_to_str(ib_eval *ev, ib_value *v)
{
    if (v->kind == IB_V_STR || v->kind == IB_V_NULL || v->kind == IB_V_ERROR) return ib_v_ref(v);
    if (v->kind == IB_V_DOC) {
        const ib_text *t = ib_eval_layout(ev);
        return ib_v_str_borrow(t->text, t->len, t);
    }
    ib_value *s = ib_v_str_own(ib_eval_text(ev, v));
    if (v->kind == IB_V_LIST)
        for (size_t i = 0; i < v->nitems; i++)
            ib_v_prov_merge(s, v->items[i]);
    ib_v_prov_merge(s, v);
    return s;
}

int ib_truthy(const ib_value *v)
{
    switch (v->kind) {
    case IB_V_BOOL:
        return v->b;
    case IB_V_NUM:
        return v->num != 0;
    case IB_V_STR: {
        int b;
        if (ib_parse_bool(v->str, &b) == 0) return b;
        return !ib_v_is_empty(v);
    }
    case IB_V_LIST:
    case IB_V_TABLE:
        return v->nitems > 0;
    case IB_V_DOC:
        return 1;
    default:
        return 0;
    }
}

void ib_quote(const char *s, char *buf, size_t bufsz)
{
    if (strlen(s) > 40)
        snprintf(buf, bufsz, "%.40s...", s);
    else
        snprintf(buf, bufsz, "%s", s);
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20) *p = ' ';
}

/* A short quote of a value's text for messages. */
static void quote(ib_eval *ev, const ib_value *v, char *buf, size_t bufsz)
{
    char *t = ib_eval_text(ev, v);
    ib_quote(t, buf, bufsz);
    free(t);
}

static ib_value *with_prov(ib_value *nv, const ib_value *from)
{
    ib_v_prov_merge(nv, from);
    return nv;
}

static ib_value *coerce(ib_eval *ev, ib_value *v, ib_ftype type)
{
    if (v->kind == IB_V_NULL || v->kind == IB_V_ERROR) return v;
    char q[64];
    ib_value *out = NULL;
    switch (type) {
    case IB_FT_TEXT:
        out = ib_to_str(ev, v);
        break;
    case IB_FT_INT:
    case IB_FT_FLOAT:
        if (v->kind == IB_V_NUM) {
            out = type == IB_FT_FLOAT || v->num == trunc(v->num) ? ib_v_ref(v)
                                                                 : with_prov(ib_v_num(trunc(v->num)), v);
        } else if (v->kind == IB_V_BOOL) {
            out = with_prov(ib_v_num(v->b), v);
        } else if (v->kind == IB_V_STR || v->kind == IB_V_DOC) {
            ib_value *s = ib_to_str(ev, v);
            double d;
            long long ll;
            if (type == IB_FT_FLOAT && ib_parse_number(s->str, &d) == 0)
                out = with_prov(ib_v_num(d), s);
            else if (type == IB_FT_INT && ib_parse_int(s->str, &ll) == 0)
                out = with_prov(ib_v_num((double)ll), s);
            ib_v_unref(s);
        }
        if (out && (isnan(out->num) || isinf(out->num))) {
            ib_v_unref(out);
            out = ib_v_error("%s: not a finite number", ib_ftype_name(type));
        }
        if (!out) {
            quote(ev, v, q, sizeof q);
            out = ib_v_error("%s: cannot read %s from '%s'", ib_ftype_name(type),
                             type == IB_FT_INT ? "an integer" : "a number", q);
        }
        break;
    case IB_FT_DATE:
        if (v->kind == IB_V_STR) {
            char iso[11];
            if (ib_parse_date(v->str, NULL, iso) == 0) out = with_prov(ib_v_str(iso, 10), v);
        }
        if (!out) {
            quote(ev, v, q, sizeof q);
            out = ib_v_error("DATE: cannot read a date from '%s'", q);
        }
        break;
    case IB_FT_BOOL:
        if (v->kind == IB_V_BOOL) {
            out = ib_v_ref(v);
        } else if (v->kind == IB_V_NUM) {
            out = with_prov(ib_v_bool(v->num != 0), v);
        } else if (v->kind == IB_V_STR) {
            int b;
            if (ib_parse_bool(v->str, &b) == 0)
                out = with_prov(ib_v_bool(b), v);
            else if (ib_v_is_empty(v))
                out = ib_v_null();
        }
        if (!out) {
            quote(ev, v, q, sizeof q);
            out = ib_v_error("BOOL: cannot read '%s' as true or false", q);
        }
        break;
    case IB_FT_TABLE:
        out = v->kind == IB_V_TABLE
                  ? ib_v_ref(v)
                  : ib_v_error("TABLE: the formula gives %s, not rows (from table or line_items)",
                               v->kind == IB_V_LIST ? "a list" : "a single value");
        break;
    case IB_FT_LIST:
        if (v->kind == IB_V_LIST || v->kind == IB_V_TABLE) { /* a table stays one: its rows as objects */
            out = ib_v_ref(v);
        } else {
            out = ib_v_list();
            ib_v_list_push(out, v->kind == IB_V_DOC ? ib_to_str(ev, v) : ib_v_ref(v));
            ib_v_prov_merge(out, v);
        }
        break;
    }
    ib_v_unref(v);
    return out;
}

ib_value *ib_eval_coerce(ib_eval *ev, ib_value *v, ib_ftype type)
{
    ib_vbudget *prev = ib_vbudget_use(&ev->budget);
    ib_value *out = coerce(ev, v, type);
    ib_vbudget_use(prev);
    return out;
}

/* ---- the tree walker ---- */

static ib_value *walk(ib_eval *ev, const ib_node *n, ib_value *const *fields, size_t nfields)
{
    ev->fields = fields;
    ev->nfields = nfields;
    switch (n->kind) {
    case IB_NODE_STR:
        return ib_v_str(n->text, n->len);
    case IB_NODE_NUM:
        return ib_v_num(n->num);
    case IB_NODE_LIST: {
        ib_value *l = ib_v_list();
        for (uint32_t i = 0; i < n->nkids; i++) {
            ib_value *item = ib_eval_node(ev, n->kids[i], fields, nfields);
            if (item->kind == IB_V_ERROR) {
                ib_v_unref(l);
                return item;
            }
            ib_v_prov_merge(l, item);
            ib_v_list_push(l, item);
            if (l->nest > IB_VALUE_MAX_NEST) {
                ib_v_unref(l);
                return ib_v_error("lists may hold lists at most %u deep", IB_VALUE_MAX_NEST);
            }
        }
        return l;
    }
    case IB_NODE_NAME:
        switch (n->name_kind) {
        case IB_NAME_INPUT_COL:
            return ev->env.doc ? ib_v_doc(ev->env.doc) : ib_v_null();
        case IB_NAME_FILENAME:
            return ev->env.file_name ? ib_v_str(ev->env.file_name, strlen(ev->env.file_name)) : ib_v_null();
        case IB_NAME_CLASS:
            return ev->env.cls ? ib_v_str(ev->env.cls, strlen(ev->env.cls)) : ib_v_null();
        case IB_NAME_FIELD:
            if (n->field >= nfields || !fields[n->field]) /* ruled out by dependency order */
                return ib_v_error("field '%s' has no value yet", n->text);
            if (fields[n->field]->kind == IB_V_ERROR)
                return ib_v_error("uses field '%s', which failed", n->text);
            return ib_v_ref(fields[n->field]);
        case IB_NAME_UNRESOLVED:
            break;
        }
        return ib_v_error("unknown name '%s'", n->text);
    case IB_NODE_CALL: {
        ib_value *v = ib_call(ev, n);
        ev->fields = fields;
        ev->nfields = nfields;
        return v;
    }
    }
    return ib_v_error("invalid formula node");
}

ib_value *ib_eval_node(ib_eval *ev, const ib_node *n, ib_value *const *fields, size_t nfields)
{
    /* every value built below is charged to the record's budget (the walk is recursive: cheap to redo) */
    ib_vbudget *prev = ib_vbudget_use(&ev->budget);
    ib_value *v = walk(ev, n, fields, nfields);
    ib_vbudget_use(prev);
    return v;
}

/* ---- results ---- */

json_t *ib_json_text(const char *s, size_t len)
{
    json_t *j = json_stringn(s, len);
    if (j) return j;
    /* not valid UTF-8 (a mis-encoded text file): each bad byte becomes U+FFFD, as the text functions do */
    char *out = malloc(len * 3 + 1);
    if (!out) abort();
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = s[i] ? ib_utf8_next(s + i, &cp) : 1;
        if (n > len - i) n = 1, cp = 0xDC00;
        if (s[i] && cp >= 0xDC00 && cp <= 0xDCFF && n == 1 && (unsigned char)s[i] >= 0x80) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
        } else {
            memcpy(out + o, s + i, n);
            o += n;
        }
        i += n;
    }
    j = json_stringn(out, o);
    free(out);
    return j ? j : json_string("");
}

static double round2(double x)
{
    return round(x * 100.0) / 100.0;
}

json_t *ib_eval_json(ib_eval *ev, const ib_value *v, ib_ftype type)
{
    switch (v->kind) {
    case IB_V_NULL:
        return json_null();
    case IB_V_STR:
        return ib_json_text(v->str, v->len);
    case IB_V_NUM:
        if (isnan(v->num) || isinf(v->num)) return json_null();
        /* whole numbers print as integers in any type ("total": 100, not 100.0) */
        if ((type == IB_FT_INT || v->num == trunc(v->num)) && fabs(v->num) < 9.0e15)
            return json_integer((json_int_t)v->num);
        return json_real(v->num);
    case IB_V_BOOL:
        return json_boolean(v->b);
    case IB_V_LIST: {
        json_t *a = json_array();
        for (size_t i = 0; i < v->nitems; i++)
            json_array_append_new(a, ib_eval_json(ev, v->items[i], IB_FT_TEXT));
        return a;
    }
    case IB_V_DOC: {
        const ib_text *t = ib_eval_layout(ev);
        return ib_json_text(t->text, t->len);
    }
    case IB_V_TABLE:
        return ib_table_json(ev, v);
    case IB_V_ERROR:
        return json_string("ERROR");
    }
    return json_null();
}

/* One field: evaluated and converted within the record's budget. A field that spends it fails with the reason,
 * whatever its formula made of the failure (coalesce skips errors), and its values are freed at once. */
static ib_value *eval_field(ib_eval *ev, const ib_flow_field *f, ib_value *const *vals, size_t n)
{
    ev->field = f->name;
    ev->budget.over = 0; /* bytes are the ones held now: an earlier field that failed freed its own */
    ev->timed_out_in = 0;
    ib_vbudget *prev = ib_vbudget_use(&ev->budget);
    ib_value *v = NULL;
    if (ib_eval_spent(ev))
        ev->timed_out_in = 0; /* the time was up before this field began */
    else
        v = coerce(ev, walk(ev, f->root, vals, n), f->type);
    if (v && f->columns && v->kind == IB_V_TABLE) v = ib_table_types(ev, v, f->columns, coerce);
    if (!v || ib_eval_spent(ev)) {
        ib_v_unref(v);
        v = ib_eval_spent_error(ev);
    }
    ib_vbudget_use(prev);
    ev->field = NULL;
    return v;
}

/* Whether v as JSON would take more than `room` bytes, counting its texts and items (a shared item each time it
 * appears, as the JSON repeats it) and stopping as soon as it does: a list holding one list many times is small
 * as a value and exponentially large as JSON, so it is measured before it is made. */
static int json_over(ib_eval *ev, const ib_value *v, size_t *used, size_t room)
{
    size_t add = 24; /* a number, a boolean, null: at most this */
    if (v->kind == IB_V_STR || v->kind == IB_V_ERROR)
        add = v->len + 3;
    else if (v->kind == IB_V_DOC)
        add = ib_eval_layout(ev)->len + 3;
    else if (v->kind == IB_V_LIST || v->kind == IB_V_TABLE)
        add = 2;
    *used += add;
    size_t names = 0; /* a table's rows are objects: each repeats the column names */
    for (size_t i = 0; v->kind == IB_V_TABLE && v->names && i < v->names->nitems; i++)
        names += v->names->items[i]->len + 4;
    for (size_t i = 0; (v->kind == IB_V_LIST || v->kind == IB_V_TABLE) && i < v->nitems && *used <= room;
         i++) {
        *used += 1 + names;
        json_over(ev, v->items[i], used, room);
    }
    return *used > room;
}

/* The result of field f, value v: {"key", "value", "field_type"[, "error"][, "page", "bbox"]}. */
static json_t *field_result(ib_eval *ev, const ib_flow_field *f, const ib_value *v)
{
    json_t *r = json_object();
    json_object_set_new(r, "key", json_string(f->name));
    json_object_set_new(r, "value", ib_eval_json(ev, v, f->type));
    json_object_set_new(r, "field_type", json_string(ib_ftype_name(f->type)));
    if (v->kind == IB_V_TABLE) json_object_set_new(r, "cells", ib_table_cells_json(v));
    if (v->kind == IB_V_ERROR) {
        json_object_set_new(r, "error", ib_json_text(v->str, v->len));
    } else if (v->nprov > 0) {
        const ib_bbox *b = &v->prov[0].box;
        json_object_set_new(r, "page", json_integer((json_int_t)v->prov[0].page + 1));
        json_object_set_new(r, "bbox",
                            json_pack("[ffff]", round2(b->x0), round2(b->y0), round2(b->x1), round2(b->y1)));
    }
    return r;
}

/* Bytes of a text in JSON, quotes and escapes included (a control character is at most \u00XX). */
static size_t text_bound(const char *s, size_t len)
{
    size_t n = len + 2;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        n += c < 0x20 ? 5 : (c == '"' || c == '\\');
    }
    return n;
}

/* At least as many bytes as json_dumpb(j, JSON_COMPACT) writes, with no number formatted: a number counts as
 * its longest form. Most of a line-item record is cell boxes, whose reals cost a snprintf each to write, so
 * the exact size is taken only when this bound does not fit. */
static size_t json_bound(const json_t *j)
{
    size_t n = 2;
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v) n += text_bound(k, strlen(k)) + 2 + json_bound(v);
        return n;
    }
    case JSON_ARRAY:
        for (size_t i = 0; i < json_array_size(j); i++)
            n += 1 + json_bound(json_array_get(j, i));
        return n;
    case JSON_STRING:
        return text_bound(json_string_value(j), json_string_length(j));
    case JSON_INTEGER:
        return 20; /* -9223372036854775808 */
    case JSON_REAL:
        return 32; /* "%.17g": sign, 17 digits, point, e-308 */
    default:
        return 5; /* false */
    }
}

/* The exact bytes of the results so far, as the loop below counts them. */
static size_t results_size(const json_t *results)
{
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(results); i++)
        n += json_dumpb(json_array_get(results, i), NULL, 0, JSON_COMPACT) + 1;
    return n;
}

json_t *ib_eval_program(ib_eval *ev, const ib_flow_program *prog, size_t *nerrors)
{
    size_t n = prog->nfields;
    ib_value **vals = calloc(n ? n : 1, sizeof *vals);
    if (!vals) abort();
    for (size_t k = 0; k < n; k++) {
        uint32_t i = prog->order[k];
        vals[i] = eval_field(ev, &prog->fields[i], vals, n);
    }
    json_t *results = json_array();
    size_t errs = 0, out_bytes = 0;
    int exact = 1; /* out_bytes is the exact size so far, not a bound */
    for (size_t i = 0; i < n; i++) {
        const ib_flow_field *f = &prog->fields[i];
        /* The record's results go into every output of the record (its .ibdoc, the batch file, the job's
         * results, the reply): a field that would take them past max_output fails instead. Measured before
         * the JSON is made, then by a bound, and exactly when the bound does not fit (so a field fails
         * exactly when the exact sizes say so). */
        size_t max = ev->env.max_output, guess = 0;
        int over = max && json_over(ev, vals[i], &guess, max - (out_bytes < max ? out_bytes : max));
        if (over && !exact) {
            out_bytes = results_size(results), exact = 1, guess = 0;
            over = json_over(ev, vals[i], &guess, max - (out_bytes < max ? out_bytes : max));
        }
        json_t *r = over ? NULL : field_result(ev, f, vals[i]);
        size_t sz = 0;
        if (r && max) {
            sz = json_bound(r) + 1;
            if (sz > max || out_bytes > max - sz) {
                if (!exact) out_bytes = results_size(results), exact = 1;
                sz = json_dumpb(r, NULL, 0, JSON_COMPACT) + 1;
            } else {
                exact = 0;
            }
        }
        if (max && (over || sz > max || out_bytes > max - sz)) {
            char lim[40], q[64];
            ib_size_text(ev->env.max_output, lim, sizeof lim);
            ib_quote(f->name, q, sizeof q);
            ib_value *e = ib_v_error("record output limit exceeded: field '%s' would make the record's results "
                                     "larger than %s", q, lim);
            note_limit(ev, e->str);
            json_decref(r);
            r = field_result(ev, f, e);
            ib_v_unref(e);
            sz = json_dumpb(r, NULL, 0, JSON_COMPACT) + 1;
        }
        out_bytes += sz;
        if (json_object_get(r, "error")) errs++;
        json_array_append_new(results, r);
    }
    for (size_t i = 0; i < n; i++)
        ib_v_unref(vals[i]);
    free(vals);
    if (nerrors) *nerrors = errs;
    return results;
}
