/* steps: the run driver. One input file goes through the flow's steps in order (process_files, split,
 * classify, apply_refiner, validate), each step's records are written to its s<N>_<step> folder, and the
 * file's records come back in run_sync shape. A file that cannot be read becomes an error record; nothing
 * stops the run but a failure to write its outputs. */
#include "engine_int.h"
#include "eval_int.h"
#include "ib_parse.h"
#include "ib_textfn.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ib_run {
    const ib_flow *flow;
    json_t *config;
    uint32_t max_pages;
    int out_dirfd;
    char *out_prefix, *job_id, *binary_path;
    json_t *records; /* every record of the run */
    json_t *batch;   /* per file: {file_name, file_index, records} */
    json_t *names;   /* output names in use: two inputs of one name must not overwrite each other */
    pcre2_match_context *mctx;
    uint32_t next_file;
    char *forced_base; /* ib_run_set_file: the next file's output name */
    ib_run_stats stats;
    size_t formula_max_bytes, record_max_output; /* limits of one record (ib_engine_opts) */
    long long formula_max_ms, deadline_ms;
};

typedef struct rec {
    ib_doc *doc; /* owned */
    ib_text layout;
    int have_layout;
    const char *cls; /* points into the flow */
    json_t *results;
    json_t *validation;
    char *error; /* the limit the record ran into (ib_eval_limit_msg) */
    ib_out_body body; /* its .ibdoc's body as the first step wrote it (engine_int.h) */
} rec;

static char *xstrdup(const char *s)
{
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) abort();
    return d;
}

ib_run *ib_run_new(const ib_flow *flow, const ib_engine_opts *opts)
{
    ib_run *r = calloc(1, sizeof *r);
    if (!r) abort();
    r->flow = flow;
    r->config = opts && opts->runtime_config ? json_incref((json_t *)opts->runtime_config) : NULL;
    r->max_pages = opts ? opts->max_pages : 0;
    r->out_dirfd = opts ? opts->out_dirfd : -1;
    r->out_prefix = xstrdup(opts ? opts->out_prefix : NULL);
    r->job_id = xstrdup(opts ? opts->job_id : NULL);
    r->binary_path = xstrdup(opts ? opts->binary_path : NULL);
    r->formula_max_bytes = opts && opts->formula_max_bytes ? opts->formula_max_bytes : IB_ENGINE_FORMULA_MAX_BYTES;
    r->formula_max_ms = opts && opts->formula_max_ms ? opts->formula_max_ms : IB_ENGINE_FORMULA_MAX_MS;
    r->record_max_output = opts && opts->record_max_output ? opts->record_max_output : IB_ENGINE_RECORD_MAX_OUTPUT;
    r->deadline_ms = opts ? opts->deadline_ms : 0;
    r->records = json_array();
    r->batch = json_array();
    r->names = json_object();
    r->mctx = pcre2_match_context_create(NULL);
    if (!r->mctx) abort();
    pcre2_set_match_limit(r->mctx, IB_REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(r->mctx, IB_REGEX_DEPTH_LIMIT);
    return r;
}

void ib_run_free(ib_run *r)
{
    if (!r) return;
    json_decref(r->config);
    free(r->out_prefix);
    free(r->job_id);
    free(r->binary_path);
    free(r->forced_base);
    json_decref(r->records);
    json_decref(r->batch);
    json_decref(r->names);
    pcre2_match_context_free(r->mctx);
    free(r);
}

json_t *ib_run_records(const ib_run *r)
{
    return r->records;
}

void ib_run_get_stats(const ib_run *r, ib_run_stats *st)
{
    *st = r->stats;
}

static const ib_text *rec_layout(rec *rc)
{
    if (!rc->have_layout) {
        memset(&rc->layout, 0, sizeof rc->layout);
        if (ib_doc_layout_text(rc->doc, &rc->layout) != 0 || !rc->layout.text) {
            ib_text_free(&rc->layout);
            memset(&rc->layout, 0, sizeof rc->layout);
            rc->layout.text = xstrdup("");
        }
        rc->have_layout = 1;
    }
    return &rc->layout;
}

static void rec_clear(rec *rc)
{
    ib_doc_free(rc->doc);
    if (rc->have_layout) ib_text_free(&rc->layout);
    ib_out_body_free(&rc->body);
    json_decref(rc->results);
    json_decref(rc->validation);
    free(rc->error);
    memset(rc, 0, sizeof *rc);
}

/* ---- split ---- */

typedef struct cut {
    uint32_t page, line;
} cut;

/* The layout text of visual line l of page p: from the start of its text line to the end of its last word. */
static int line_range(const ib_doc *doc, const ib_text *t, uint32_t **span_of, uint32_t p, uint32_t l,
                      size_t *s, size_t *e)
{
    const ib_line *ln = &doc->pages[p].lines[l];
    size_t lo = SIZE_MAX, hi = 0;
    for (uint32_t k = 0; k < ln->nwords; k++) {
        uint32_t w = ln->words[k];
        if (w >= doc->pages[p].nwords || span_of[p][w] == UINT32_MAX) continue;
        const ib_span *sp = &t->spans[span_of[p][w]];
        if (sp->start < lo) lo = sp->start;
        if (sp->end > hi) hi = sp->end;
    }
    if (lo == SIZE_MAX) return -1;
    while (lo > 0 && t->text[lo - 1] != '\n' && t->text[lo - 1] != '\f')
        lo--;
    *s = lo;
    *e = hi;
    return 0;
}

/* Where records start: each visual line the split pattern matches. */
static cut *find_cuts(ib_run *run, const ib_doc *doc, const ib_text *t, size_t *ncuts)
{
    uint32_t **span_of = calloc(doc->npages ? doc->npages : 1, sizeof *span_of);
    if (!span_of) abort();
    for (uint32_t p = 0; p < doc->npages; p++) {
        span_of[p] = malloc((doc->pages[p].nwords ? doc->pages[p].nwords : 1) * sizeof **span_of);
        if (!span_of[p]) abort();
        memset(span_of[p], 0xff, (doc->pages[p].nwords ? doc->pages[p].nwords : 1) * sizeof **span_of);
    }
    for (size_t i = 0; i < t->nspans; i++)
        if (t->spans[i].page < doc->npages && t->spans[i].word < doc->pages[t->spans[i].page].nwords)
            span_of[t->spans[i].page][t->spans[i].word] = (uint32_t)i;
    const pcre2_code *re = run->flow->split_regex.code;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) abort();
    cut *cuts = NULL;
    size_t n = 0;
    for (uint32_t p = 0; p < doc->npages; p++)
        for (uint32_t l = 0; l < doc->pages[p].nlines; l++) {
            size_t s, e;
            if (line_range(doc, t, span_of, p, l, &s, &e) < 0) continue;
            if (pcre2_match(re, (PCRE2_SPTR)t->text + s, e - s, 0, 0, md, run->mctx) < 0) continue;
            cut *nc = realloc(cuts, (n + 1) * sizeof *nc);
            if (!nc) abort();
            cuts = nc;
            cuts[n++] = (cut){p, l};
        }
    pcre2_match_data_free(md);
    for (uint32_t p = 0; p < doc->npages; p++)
        free(span_of[p]);
    free(span_of);
    *ncuts = n;
    return cuts;
}

static int first_line(const ib_doc *doc, cut *c)
{
    for (uint32_t p = 0; p < doc->npages; p++)
        if (doc->pages[p].nlines) {
            *c = (cut){p, 0};
            return 0;
        }
    return -1;
}

static ib_doc *slice_before(const ib_doc *doc, cut from, cut next)
{
    if (next.line > 0) return ib_doc_slice(doc, from.page, from.line, next.page, next.line - 1);
    return ib_doc_slice(doc, from.page, from.line, next.page - 1, UINT32_MAX);
}

/* Turns the file's document into records (takes doc). */
static rec *split_doc(ib_run *run, ib_doc *doc, size_t *nrecs)
{
    const ib_flow *f = run->flow;
    rec *recs = NULL;
    size_t n = 0;
#define PUSH(d)                                                                                              \
    do {                                                                                                     \
        rec *nr = realloc(recs, (n + 1) * sizeof *nr);                                                       \
        if (!nr) abort();                                                                                    \
        recs = nr;                                                                                           \
        memset(&recs[n], 0, sizeof recs[n]);                                                                 \
        recs[n++].doc = (d);                                                                                 \
    } while (0)
    if (f->split_by == IB_SPLIT_PAGE && doc->npages > 1) {
        for (uint32_t p = 0; p < doc->npages; p++)
            PUSH(ib_doc_slice(doc, p, 0, p, UINT32_MAX));
        ib_doc_free(doc);
    } else if (f->split_by == IB_SPLIT_REGEX) {
        ib_text t = {0};
        size_t ncuts = 0;
        cut *cuts = NULL, start;
        if (ib_doc_layout_text(doc, &t) == 0) cuts = find_cuts(run, doc, &t, &ncuts);
        ib_text_free(&t);
        if (ncuts == 0 || first_line(doc, &start) < 0) {
            PUSH(doc);
        } else {
            /* the lines before the first match are a record of their own: nothing is dropped */
            if (cuts[0].page != start.page || cuts[0].line != start.line)
                PUSH(slice_before(doc, start, cuts[0]));
            for (size_t i = 0; i < ncuts; i++) {
                if (i + 1 < ncuts)
                    PUSH(slice_before(doc, cuts[i], cuts[i + 1]));
                else
                    PUSH(ib_doc_slice(doc, cuts[i].page, cuts[i].line, doc->npages - 1, UINT32_MAX));
            }
            ib_doc_free(doc);
        }
        free(cuts);
    } else {
        PUSH(doc);
    }
#undef PUSH
    for (size_t i = 0; i < n; i++)
        if (!recs[i].doc) abort(); /* ib_doc_slice fails only when out of memory */
    *nrecs = n;
    return recs;
}

/* ---- classify ---- */

static const char *classify(ib_run *run, rec *rc)
{
    const ib_flow *f = run->flow;
    const ib_text *t = rec_layout(rc);
    for (uint32_t i = 0; i < f->nclasses; i++) {
        const ib_flow_class *c = &f->classes[i];
        int all = c->nkeywords > 0;
        for (uint32_t k = 0; all && k < c->nkeywords; k++) {
            size_t ml;
            all = ib_str_find(t->text, c->keywords[k], 1, &ml) != NULL;
        }
        if (all) return c->name;
        if (c->regex.code) {
            pcre2_match_data *md = pcre2_match_data_create_from_pattern(c->regex.code, NULL);
            if (!md) abort();
            int m = pcre2_match(c->regex.code, (PCRE2_SPTR)t->text, t->len, 0, 0, md, run->mctx);
            pcre2_match_data_free(md);
            if (m >= 0) return c->name;
        }
    }
    return f->default_class;
}

/* ---- validate ---- */

static json_t *find_result(json_t *results, const char *key)
{
    size_t i;
    json_t *r;
    json_array_foreach(results, i, r)
    {
        const char *k = json_string_value(json_object_get(r, "key"));
        if (k && strcmp(k, key) == 0) return r;
    }
    return NULL;
}

/* A result value as text for rules and messages (malloc'd). */
static char *value_text(const json_t *v)
{
    if (json_is_string(v)) return xstrdup(json_string_value(v));
    if (json_is_number(v)) {
        char buf[64];
        ib_num_format(json_number_value(v), buf, sizeof buf);
        return xstrdup(buf);
    }
    if (json_is_boolean(v)) return xstrdup(json_is_true(v) ? "true" : "false");
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    return s ? s : xstrdup("");
}

static int value_number(const json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 0;
    }
    return json_is_string(v) ? ib_parse_number(json_string_value(v), out) : -1;
}

static int type_ok(const json_t *v, ib_ftype t)
{
    double d;
    long long ll;
    int b;
    char iso[11];
    switch (t) {
    case IB_FT_TEXT:
        return json_is_string(v);
    case IB_FT_INT:
        return json_is_integer(v) || (json_is_real(v) && json_real_value(v) == trunc(json_real_value(v))) ||
               (json_is_string(v) && ib_parse_int(json_string_value(v), &ll) == 0);
    case IB_FT_FLOAT:
        return value_number(v, &d) == 0;
    case IB_FT_DATE:
        return json_is_string(v) && ib_parse_date(json_string_value(v), NULL, iso) == 0;
    case IB_FT_BOOL:
        return json_is_boolean(v) || (json_is_string(v) && ib_parse_bool(json_string_value(v), &b) == 0);
    case IB_FT_LIST:
    case IB_FT_TABLE:
        return json_is_array(v);
    }
    return 0;
}

static void add_msg(json_t *out, const char *field, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add_msg(json_t *out, const char *field, const char *rule, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    json_array_append_new(
        out, json_pack("{s:s,s:s,s:o}", "field", field, "rule", rule, "msg", ib_json_text(buf, strlen(buf))));
}

/* Whether a rule's pattern matches text (a match that fails, as on the match limit, does not). */
static int rx_ok(ib_run *run, const pcre2_code *re, const char *text)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) abort();
    int m = pcre2_match(re, (PCRE2_SPTR)text, strlen(text), 0, 0, md, run->mctx);
    pcre2_match_data_free(md);
    return m >= 0;
}

/* The rules over a TABLE field's rows (v: its value, an array of objects): min_rows, each column's required,
 * type and regex (rows counted from 1 in messages), sum_equals. */
static void validate_rows(ib_run *run, rec *rc, const ib_flow_rule *ru, const json_t *v, json_t *out)
{
    if (!json_is_array(v)) {
        add_msg(out, ru->field,
                ru->has_min_rows ? "min_rows"
                : ru->sum_field  ? "sum_equals"
                                 : "columns",
                "%s: not rows (the rules over rows are for TABLE fields)", ru->field);
        return;
    }
    size_t n = json_array_size(v), r;
    if (ru->has_min_rows && n < ru->min_rows)
        add_msg(out, ru->field, "min_rows", "%s: %zu row%s, fewer than the minimum %u", ru->field, n,
                n == 1 ? "" : "s", ru->min_rows);
    const json_t *row;
    json_array_foreach(v, r, row) for (uint32_t k = 0; k < ru->ncols; k++)
    {
        const ib_flow_col_rule *c = &ru->cols[k];
        const json_t *cell = json_object_get(row, c->column);
        char *text = cell && !json_is_null(cell) ? value_text(cell) : NULL;
        if (!text || ib_v_is_empty(&(ib_value){.kind = IB_V_STR, .str = text, .len = strlen(text)})) {
            if (c->required)
                add_msg(out, ru->field, "required", "%s: row %zu, column '%s': required, but it is empty",
                        ru->field, r + 1, c->column);
            free(text);
            continue;
        }
        char q[80];
        snprintf(q, sizeof q, "%.60s%s", text, strlen(text) > 60 ? "..." : "");
        if (c->has_type && !type_ok(cell, c->type))
            add_msg(out, ru->field, "type", "%s: row %zu, column '%s': '%s' is not %s", ru->field, r + 1,
                    c->column, q, ib_ftype_name(c->type));
        if (c->regex.code && !rx_ok(run, c->regex.code, text))
            add_msg(out, ru->field, "regex", "%s: row %zu, column '%s': '%s' does not match %s", ru->field,
                    r + 1, c->column, q, c->regex.pattern);
        free(text);
    }
    if (!ru->sum_field) return;
    double sum = 0, d, want;
    json_array_foreach(v, r, row)
    {
        const json_t *cell = json_object_get(row, ru->sum_column);
        if (!cell || json_is_null(cell) || (json_is_string(cell) && json_string_length(cell) == 0)) continue;
        if (value_number(cell, &d) < 0) {
            char *text = value_text(cell);
            add_msg(out, ru->field, "sum_equals", "%s: row %zu, column '%s': '%.60s' is not a number",
                    ru->field, r + 1, ru->sum_column, text);
            free(text);
            return;
        }
        sum += d;
    }
    json_t *target = find_result(rc->results, ru->sum_field);
    if (!target || json_object_get(target, "error") ||
        value_number(json_object_get(target, "value"), &want) < 0) {
        add_msg(out, ru->field, "sum_equals",
                "%s: the sum of column '%s' cannot be checked: field '%s' has no "
                "number",
                ru->field, ru->sum_column, ru->sum_field);
        return;
    }
    if (fabs(sum - want) > ru->sum_tol) {
        char a[64], bnum[64];
        ib_num_format(round(sum * 1e6) / 1e6, a, sizeof a); /* no float noise: 224.98, not 224.97999999 */
        ib_num_format(want, bnum, sizeof bnum);
        add_msg(out, ru->field, "sum_equals", "%s: the sum of column '%s' is %s, but %s is %s", ru->field,
                ru->sum_column, a, ru->sum_field, bnum);
    }
}

static json_t *validate(ib_run *run, rec *rc)
{
    const ib_flow *f = run->flow;
    json_t *out = json_array();
    for (uint32_t i = 0; i < f->nrules; i++) {
        const ib_flow_rule *ru = &f->rules[i];
        json_t *r = rc->results ? find_result(rc->results, ru->field) : NULL;
        json_t *v = json_object_get(r, "value");
        int failed = json_object_get(r, "error") != NULL;
        char *text = v && !failed ? value_text(v) : NULL;
        int empty = !r || !v || json_is_null(v) || failed ||
                    (json_is_string(v) && ib_v_is_empty(&(ib_value){.kind = IB_V_STR,
                                                                    .str = (char *)json_string_value(v),
                                                                    .len = json_string_length(v)}));
        if (ru->required && empty) {
            if (!r)
                add_msg(out, ru->field, "required", "%s: required, but the record has no such field",
                        ru->field);
            else if (failed)
                add_msg(out, ru->field, "required", "%s: required, but it failed: %s", ru->field,
                        json_string_value(json_object_get(r, "error")));
            else
                add_msg(out, ru->field, "required", "%s: required, but it has no value", ru->field);
        }
        if (empty) { /* the other rules judge values, not their absence */
            free(text);
            continue;
        }
        if (ru->has_min_rows || ru->sum_field || ru->ncols) validate_rows(run, rc, ru, v, out);
        char q[80];
        snprintf(q, sizeof q, "%.60s%s", text, strlen(text) > 60 ? "..." : "");
        if (ru->has_type && !type_ok(v, ru->type))
            add_msg(out, ru->field, "type", "%s: '%s' is not %s", ru->field, q, ib_ftype_name(ru->type));
        if (ru->regex.code && !rx_ok(run, ru->regex.code, text))
            add_msg(out, ru->field, "regex", "%s: '%s' does not match %s", ru->field, q, ru->regex.pattern);
        if (ru->has_min || ru->has_max) {
            double d;
            char lim[64];
            if (value_number(v, &d) < 0) {
                add_msg(out, ru->field, ru->has_min ? "min" : "max", "%s: '%s' is not a number", ru->field,
                        q);
            } else if (ru->has_min && d < ru->min) {
                ib_num_format(ru->min, lim, sizeof lim);
                add_msg(out, ru->field, "min", "%s: %s is less than the minimum %s", ru->field, q, lim);
            } else if (ru->has_max && d > ru->max) {
                ib_num_format(ru->max, lim, sizeof lim);
                add_msg(out, ru->field, "max", "%s: %s is more than the maximum %s", ru->field, q, lim);
            }
        }
        if (ru->one_of) {
            int ok = 0;
            size_t k;
            json_t *o;
            double d;
            json_array_foreach(ru->one_of, k, o)
            {
                if (json_is_number(o) ? (value_number(v, &d) == 0 && d == json_number_value(o))
                                      : strcmp(json_string_value(o), text) == 0)
                    ok = 1;
            }
            if (!ok)
                add_msg(out, ru->field, "one_of", "%s: '%s' is not one of the allowed values", ru->field, q);
        }
        free(text);
    }
    return out;
}

/* ---- outputs ---- */

/* The record's .ibdoc after `step`, as folder/name below the output folder. `later`: a later step writes this
 * record's .ibdoc again, so its body is kept for it (a body kept already is copied either way). */
static int write_ibdoc(ib_run *run, rec *rc, const char *file_name, uint32_t file_index, size_t ri,
                       ib_step_kind step, int later, const char *folder, const char *name, char *err, size_t errsz)
{
    ib_out_ibdoc d = {.file_name = file_name,
                      .file_index = file_index,
                      .record_index = ri,
                      .step = ib_step_name(step),
                      .doc = rc->doc,
                      .layout = rec_layout(rc),
                      .cls = rc->cls,
                      .results = rc->results,
                      .validation = rc->validation,
                      .body = later || rc->body.ready ? &rc->body : NULL};
    return ib_out_write_ibdoc(run->out_dirfd, folder, name, &d, err, errsz);
}

static void out_path(ib_run *run, const char *folder, const char *name, char *buf, size_t bufsz)
{
    if (run->out_prefix && *run->out_prefix)
        snprintf(buf, bufsz, "%s%s%s/%s", run->out_prefix,
                 run->out_prefix[strlen(run->out_prefix) - 1] == '/' ? "" : "/", folder, name);
    else
        snprintf(buf, bufsz, "%s/%s", folder, name);
}

/* A unique output base name for this input file within the run. */
void ib_run_set_file(ib_run *run, uint32_t file_index, const char *out_base)
{
    run->next_file = file_index;
    free(run->forced_base);
    run->forced_base = xstrdup(out_base);
}

static void unique_name(ib_run *run, const char *file_name, uint32_t file_index, char *out, size_t outsz)
{
    if (run->forced_base) {
        snprintf(out, outsz, "%s", run->forced_base);
        free(run->forced_base);
        run->forced_base = NULL;
        return;
    }
    char base[256];
    ib_out_safe_name(file_name, base, sizeof base);
    if (json_object_get(run->names, base))
        snprintf(out, outsz, "%s-%u", base, file_index);
    else
        snprintf(out, outsz, "%s", base);
    json_object_set_new(run->names, out, json_true());
}

static int finish_file(ib_run *run, const char *file_name, uint32_t file_index, json_t *recs,
                       const char *error, json_t **records)
{
    json_t *entry = json_pack("{s:o,s:i}", "file_name", ib_json_text(file_name, strlen(file_name)),
                              "file_index", (json_int_t)file_index);
    if (error) json_object_set_new(entry, "error", ib_json_text(error, strlen(error)));
    json_object_set(entry, "records", recs);
    if (run->out_dirfd >= 0) /* batch.ibflowresults; without an output folder the records are not kept twice */
        json_array_append_new(run->batch, entry);
    else
        json_decref(entry);
    json_array_extend(run->records, recs);
    run->stats.files++;
    run->stats.records += json_array_size(recs);
    *records = recs;
    return 0;
}

int ib_run_file_error(ib_run *run, const char *file_name, const char *msg, json_t **records, char *err,
                      size_t errsz)
{
    uint32_t fi = run->next_file++;
    char name[300], folder[64], path[4096];
    unique_name(run, file_name, fi, name, sizeof name);
    snprintf(folder, sizeof folder, "s1_%s", ib_step_name(IB_STEP_PROCESS_FILES));
    strncat(name, ".ibdoc", sizeof name - strlen(name) - 1);
    out_path(run, folder, name, path, sizeof path);
    json_t *rec = json_pack("{s:s,s:o,s:i,s:i,s:o}", "output_file_path", path, "file_name",
                            ib_json_text(file_name, strlen(file_name)), "file_index", (json_int_t)fi,
                            "record_index", 0, "error", ib_json_text(msg, strlen(msg)));
    json_t *recs = json_pack("[o]", rec);
    run->stats.runtime_errors++;
    int rv = 0;
    if (run->out_dirfd >= 0) {
        json_t *d = json_pack("{s:O,s:i,s:i,s:s,s:O}", "file_name", json_object_get(rec, "file_name"),
                              "file_index", (json_int_t)fi, "record_index", 0, "step",
                              ib_step_name(IB_STEP_PROCESS_FILES), "error", json_object_get(rec, "error"));
        rv = ib_out_write_json(run->out_dirfd, folder, name, d, err, errsz);
        json_decref(d);
    }
    finish_file(run, file_name, fi, recs, msg, records);
    return rv;
}

int ib_run_file(ib_run *run, const char *file_name, const void *bytes, size_t len, json_t **records,
                char *err, size_t errsz)
{
    const ib_flow *f = run->flow;
    char lerr[512];
    ib_doc_opts o = {.ocr = f->ocr_enabled, .ocr_langs = f->ocr_langs, .max_pages = run->max_pages};
    ib_doc *doc = ib_doc_load(file_name, bytes, len, &o, lerr, sizeof lerr);
    if (!doc) return ib_run_file_error(run, file_name, lerr, records, err, errsz);

    uint32_t fi = run->next_file++;
    char base[300];
    unique_name(run, file_name, fi, base, sizeof base);
    int has_split = 0;
    for (uint32_t k = 0; k < f->nsteps; k++)
        has_split |= f->steps[k] == IB_STEP_SPLIT;

    rec *recs = NULL;
    size_t nrecs = 0;
    int rv = 0;
    char folder[64], name[320];
    for (uint32_t k = 0; k < f->nsteps; k++) {
        ib_step_kind step = f->steps[k];
        snprintf(folder, sizeof folder, "s%u_%s", k + 1, ib_step_name(step));
        switch (step) {
        case IB_STEP_PROCESS_FILES: {
            rec whole = {.doc = doc};
            if (run->out_dirfd >= 0 && rv == 0) {
                snprintf(name, sizeof name, "%s.ibdoc", base);
                /* its records are this whole document unless a split step makes them */
                rv = write_ibdoc(run, &whole, file_name, fi, 0, step, k + 1 < f->nsteps && !has_split, folder, name,
                                 err, errsz);
            }
            if (!has_split) recs = split_doc(run, doc, &nrecs);
            /* A document that stays one record keeps its layout text (slices are made while doc is alive, so
             * none has its address). */
            if (nrecs == 1 && recs[0].doc == doc && whole.have_layout) {
                recs[0].layout = whole.layout;
                recs[0].have_layout = 1;
                whole.have_layout = 0;
                recs[0].body = whole.body; /* the same text and pages: written once, copied after */
                memset(&whole.body, 0, sizeof whole.body);
            }
            whole.doc = NULL;
            rec_clear(&whole);
            break;
        }
        case IB_STEP_SPLIT:
            recs = split_doc(run, doc, &nrecs);
            break;
        case IB_STEP_CLASSIFY:
            for (size_t i = 0; i < nrecs; i++)
                recs[i].cls = classify(run, &recs[i]);
            break;
        case IB_STEP_APPLY_REFINER:
            for (size_t i = 0; i < nrecs; i++) {
                const ib_flow_program *prog = ib_flow_program_for(f, recs[i].cls);
                if (!prog) {
                    recs[i].results = json_array();
                    continue;
                }
                ib_eval_env env = {.doc = recs[i].doc,
                                   .file_name = file_name,
                                   .cls = recs[i].cls,
                                   .config = run->config,
                                   .max_bytes = run->formula_max_bytes,
                                   .max_ms = run->formula_max_ms,
                                   .deadline_ms = run->deadline_ms,
                                   .max_output = run->record_max_output};
                ib_eval *ev = ib_eval_new(&env);
                size_t nerr = 0;
                recs[i].results = ib_eval_program(ev, prog, &nerr);
                recs[i].error = ib_eval_limit_msg(ev) ? xstrdup(ib_eval_limit_msg(ev)) : NULL;
                ib_eval_free(ev);
                run->stats.runtime_errors += nerr;
            }
            break;
        case IB_STEP_VALIDATE:
            for (size_t i = 0; i < nrecs; i++)
                recs[i].validation = validate(run, &recs[i]);
            break;
        case IB_STEP_COUNT_:
            break;
        }
        if (step != IB_STEP_PROCESS_FILES && run->out_dirfd >= 0 && rv == 0)
            for (size_t i = 0; i < nrecs && rv == 0; i++) {
                snprintf(name, sizeof name, has_split ? "%s_%zu.ibdoc" : "%s.ibdoc", base, i);
                rv = write_ibdoc(run, &recs[i], file_name, fi, i, step, k + 1 < f->nsteps, folder, name, err,
                                 errsz);
            }
    }

    /* the records as run_sync returns them: the last step's .ibdoc is the record's output file */
    json_t *out = json_array();
    for (size_t i = 0; i < nrecs; i++) {
        char path[4096];
        snprintf(name, sizeof name, has_split ? "%s_%zu.ibdoc" : "%s.ibdoc", base, i);
        out_path(run, folder, name, path, sizeof path);
        json_t *r = json_pack("{s:o,s:O,s:o,s:i,s:i}", "output_file_path", ib_json_text(path, strlen(path)),
                              "results", recs[i].results ? recs[i].results : json_array(), "file_name",
                              ib_json_text(file_name, strlen(file_name)), "file_index", (json_int_t)fi,
                              "record_index", (json_int_t)i);
        if (!recs[i].results) json_decref(json_object_get(r, "results")); /* the fresh [] above */
        if (f->has_classify)
            json_object_set_new(r, "class", recs[i].cls ? json_string(recs[i].cls) : json_null());
        if (recs[i].validation) json_object_set(r, "validation", recs[i].validation);
        if (recs[i].error) json_object_set_new(r, "error", ib_json_text(recs[i].error, strlen(recs[i].error)));
        json_array_append_new(out, r);
        rec_clear(&recs[i]);
    }
    free(recs);
    finish_file(run, file_name, fi, out, NULL, records);
    return rv;
}

int ib_run_finish(ib_run *run, char *err, size_t errsz)
{
    if (run->out_dirfd < 0) return 0;
    json_t *j = json_pack("{s:s?,s:s?,s:O}", "job_id", run->job_id, "binary_path", run->binary_path,
                          "results", run->batch);
    int rv = ib_out_write_json(run->out_dirfd, NULL, "batch.ibflowresults", j, err, errsz);
    json_decref(j);
    return rv;
}
