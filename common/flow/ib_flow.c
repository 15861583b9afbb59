/* ib_flow: validates flow.json and the refiner programs it names, compiles formulas and regexes, orders
 * fields by dependency, and encodes/decodes the .ibflowbin. One builder serves both directions: compiling a
 * folder loads refiners from files, decoding loads them from the inlined "programs" object, so an archive is
 * held to exactly the rules a content folder is. */
#include "ib_flow.h"

#include "ib_conv.h"
#include "ib_path.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- names ---- */

static const char *const ftype_names[] = {"TEXT", "INT", "FLOAT", "DATE", "BOOL", "LIST", "TABLE"};
static const char *const step_names[IB_STEP_COUNT_] = {"process_files", "split", "classify", "apply_refiner",
                                                       "validate"};

const char *ib_ftype_name(ib_ftype t)
{
    return (t >= IB_FT_TEXT && t <= IB_FT_TABLE) ? ftype_names[t] : "TEXT";
}

int ib_ftype_parse(const char *s, ib_ftype *out)
{
    for (int i = 0; i <= IB_FT_TABLE; i++)
        if (strcmp(s, ftype_names[i]) == 0) {
            *out = (ib_ftype)i;
            return 0;
        }
    return -1;
}

const char *ib_step_name(ib_step_kind k)
{
    return (k >= 0 && k < IB_STEP_COUNT_) ? step_names[k] : "unknown";
}

/* ---- build context ---- */

typedef struct bctx bctx;
struct bctx {
    ib_flow *f;
    char *err;
    size_t errsz;
    const char *ffile; /* how messages name the flow: "flow.json" */
    json_t *(*load)(bctx *b, const char *path, const char *step);
    int dirfd;
    json_t *inline_progs; /* decode: path -> program object */
};

__attribute__((format(printf, 2, 3))) static int fail(bctx *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->err, b->errsz, fmt, ap);
    va_end(ap);
    return -1;
}

/* Strings from JSON may hold NUL (\u0000); we refuse them rather than truncate silently. */
static const char *jstr(const json_t *v, size_t max)
{
    if (!json_is_string(v)) return NULL;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n > max || strlen(s) != n) return NULL;
    return s;
}

static int ident_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > IB_NAME_MAX) return 0;
    if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_')) return 0;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '_'))
            return 0;
    return 1;
}

/* Program paths: relative, '/'-separated, no empty, "." or ".." segment, no backslash or control character.
 */
static int rel_path_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > IB_FLOW_MAX_PATH || s[0] == '/') return 0;
    const char *seg = s;
    for (size_t i = 0; i <= n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '/' || c == '\0') {
            size_t sl = (size_t)(s + i - seg);
            if (sl == 0 || (sl == 1 && seg[0] == '.') || (sl == 2 && seg[0] == '.' && seg[1] == '.'))
                return 0;
            seg = s + i + 1;
        } else if (c < 0x20 || c == 0x7f || c == '\\') {
            return 0;
        }
    }
    return 1;
}

/* Allowed keys of an object; any other key is a typo we report rather than ignore. */
static int check_keys(bctx *b, const json_t *o, const char *const *allowed, const char *where)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, k) == 0) ok = 1;
        if (!ok) {
            char list[512] = "";
            size_t o2 = 0;
            for (const char *const *a = allowed; *a && o2 < sizeof list - 40; a++)
                if (strcmp(*a, "comment") && strcmp(*a, "description"))
                    o2 += (size_t)snprintf(list + o2, sizeof list - o2, "%s'%s'", o2 ? ", " : "", *a);
            return fail(b, "%s: %s: unknown key '%.64s' (known: %s)", b->ffile, where, k, list);
        }
    }
    return 0;
}

static int regex_field(bctx *b, const json_t *v, ib_flow_regex *rx, const char *where, const char *key)
{
    const char *s = jstr(v, IB_REGEX_MAX_LEN);
    if (!s)
        return fail(b, "%s: %s: '%s' must be a string of at most %d bytes", b->ffile, where, key,
                    IB_REGEX_MAX_LEN);
    char msg[400];
    size_t off;
    rx->code = ib_regex_compile(s, strlen(s), msg, sizeof msg, &off);
    if (!rx->code) return fail(b, "%s: %s: '%s': %s", b->ffile, where, key, msg);
    rx->pattern = strdup(s);
    return 0;
}

static void regex_free(ib_flow_regex *rx)
{
    free(rx->pattern);
    if (rx->code) pcre2_code_free(rx->code);
}

/* ---- refiner programs ---- */

typedef struct dep {
    uint32_t to;
    uint32_t line, col; /* where the reference is */
} dep;

typedef struct resolve_ctx {
    ib_flow_program *p;
} resolve_ctx;

static int resolve_field(void *ctx, const char *name, size_t len)
{
    ib_flow_program *p = ((resolve_ctx *)ctx)->p;
    for (uint32_t i = 0; i < p->nfields; i++)
        if (strlen(p->fields[i].name) == len && memcmp(p->fields[i].name, name, len) == 0) return (int)i;
    return -1;
}

typedef struct deps_acc {
    dep *d;
    uint32_t n, cap;
    uint8_t *seen; /* per target field */
} deps_acc;

static int collect_dep(void *ctx, const ib_node *ref)
{
    deps_acc *a = ctx;
    if (a->seen[ref->field]) return 0;
    a->seen[ref->field] = 1;
    if (a->n == a->cap) {
        uint32_t nc = a->cap ? a->cap * 2 : 8;
        dep *nd = realloc(a->d, nc * sizeof *nd);
        if (!nd) return -1;
        a->d = nd;
        a->cap = nc;
    }
    a->d[a->n++] = (dep){ref->field, ref->line, ref->col};
    return 0;
}

/* Depth-first order over the dependency graph, iterative (a thousand chained fields must not exhaust the
 * stack), fields visited in declaration order so the evaluation order is stable. A reference back to a field
 * still on the stack is a cycle, reported at that reference with the whole path. */
static int order_fields(bctx *b, ib_flow_program *p, deps_acc *deps)
{
    uint32_t n = p->nfields;
    uint8_t *state = calloc(n, 1);
    uint32_t *stack = malloc(n * sizeof *stack), *next = calloc(n, sizeof *next);
    p->order = malloc(n * sizeof *p->order);
    int rv = -1;
    if (!state || !stack || !next || !p->order) {
        fail(b, "out of memory");
        goto out;
    }
    uint32_t nord = 0;
    for (uint32_t root = 0; root < n; root++) {
        if (state[root]) continue;
        uint32_t sp = 0;
        stack[sp++] = root;
        state[root] = 1;
        while (sp) {
            uint32_t v = stack[sp - 1];
            if (next[v] < deps[v].n) {
                const dep *d = &deps[v].d[next[v]++];
                if (state[d->to] == 0) {
                    state[d->to] = 1;
                    stack[sp++] = d->to;
                } else if (state[d->to] == 1) {
                    uint32_t k = 0;
                    while (stack[k] != d->to)
                        k++;
                    char path[1024];
                    size_t o = 0;
                    for (uint32_t i = k; i < sp && o < sizeof path - 80; i++)
                        o += (size_t)snprintf(path + o, sizeof path - o, "%s -> ", p->fields[stack[i]].name);
                    snprintf(path + o, sizeof path - o, "%s", p->fields[d->to].name);
                    /* report in the cycle's first field, at its reference to the next one */
                    uint32_t first = stack[k], second = k + 1 < sp ? stack[k + 1] : d->to;
                    const dep *at = d;
                    for (uint32_t j = 0; j < deps[first].n; j++)
                        if (deps[first].d[j].to == second) at = &deps[first].d[j];
                    fail(b, "%s: field '%s': line %u column %u: circular reference: %s", p->path,
                         p->fields[first].name, at->line, at->col, path);
                    goto out;
                }
            } else {
                state[v] = 2;
                p->order[nord++] = v;
                sp--;
            }
        }
    }
    rv = 0;
out:
    free(state);
    free(stack);
    free(next);
    return rv;
}

static int compile_program(bctx *b, const char *path, const json_t *doc, ib_flow_program *p)
{
    static const char *const reserved[] = {"INPUT_COL", "FILENAME", "CLASS", NULL};
    p->path = strdup(path);
    if (!json_is_object(doc)) return fail(b, "%s: must be a JSON object with 'fields'", path);
    json_t *fields = json_object_get(doc, "fields");
    if (!json_is_array(fields)) return fail(b, "%s: 'fields' must be a list", path);
    size_t n = json_array_size(fields);
    if (n == 0) return fail(b, "%s: 'fields' is empty", path);
    if (n > IB_FLOW_MAX_FIELDS) return fail(b, "%s: more than %u fields", path, IB_FLOW_MAX_FIELDS);
    p->fields = calloc(n, sizeof *p->fields);
    if (!p->fields) return fail(b, "out of memory");

    /* First pass: names and types, so formulas may use fields declared after them. */
    for (size_t i = 0; i < n; i++) {
        json_t *fo = json_array_get(fields, i);
        if (!json_is_object(fo)) return fail(b, "%s: fields[%zu]: must be an object", path, i);
        const char *name = jstr(json_object_get(fo, "name"), IB_NAME_MAX + 1);
        if (!name) return fail(b, "%s: fields[%zu]: 'name' must be a string", path, i);
        if (!ident_ok(name))
            return fail(b,
                        "%s: fields[%zu]: field name '%.80s' is not an identifier (letters, digits and '_', "
                        "not starting with a digit, at most %d characters)",
                        path, i, name, IB_NAME_MAX);
        for (const char *const *r = reserved; *r; r++)
            if (strcmp(*r, name) == 0)
                return fail(b, "%s: fields[%zu]: field name '%s' is reserved", path, i, name);
        for (uint32_t j = 0; j < p->nfields; j++)
            if (strcmp(p->fields[j].name, name) == 0)
                return fail(b, "%s: fields[%zu]: duplicate field name '%s' (also fields[%u])", path, i, name,
                            j);
        ib_flow_field *f = &p->fields[p->nfields++];
        f->name = strdup(name);
        json_t *t = json_object_get(fo, "type");
        if (t && !json_is_null(t)) {
            const char *ts = jstr(t, 16);
            if (!ts || ib_ftype_parse(ts, &f->type) < 0)
                return fail(b,
                            "%s: field '%s': type must be one of TEXT, INT, FLOAT, DATE, BOOL, LIST, TABLE",
                            path, name);
        }
        json_t *cols = json_object_get(fo, "columns");
        if (cols && !json_is_null(cols)) { /* the types of a TABLE field's cells, by column */
            if (f->type != IB_FT_TABLE)
                return fail(b, "%s: field '%s': 'columns' is only for fields of type TABLE", path, name);
            if (!json_is_object(cols) || json_object_size(cols) == 0 || json_object_size(cols) > 64)
                return fail(b, "%s: field '%s': 'columns' must be an object of 1 to 64 column names to types",
                            path, name);
            const char *cn;
            json_t *ct;
            json_object_foreach(cols, cn, ct)
            {
                const char *ts = jstr(ct, 16);
                ib_ftype cty;
                if (!ts || ib_ftype_parse(ts, &cty) < 0 || cty == IB_FT_LIST || cty == IB_FT_TABLE)
                    return fail(
                        b,
                        "%s: field '%s': columns: '%.80s': type must be one of TEXT, INT, FLOAT, DATE, "
                        "BOOL",
                        path, name, cn);
            }
            f->columns = json_incref(cols);
        }
        json_t *fv = json_object_get(fo, "formula");
        if (!json_is_string(fv)) return fail(b, "%s: field '%s': 'formula' must be a string", path, name);
        f->formula = malloc(json_string_length(fv) + 1);
        memcpy(f->formula, json_string_value(fv), json_string_length(fv) + 1);
    }

    /* Second pass: parse and check every formula, collect references. */
    deps_acc *deps = calloc(n, sizeof *deps);
    uint8_t *seen = malloc(n);
    int rv = -1;
    if (!deps || !seen) {
        fail(b, "out of memory");
        goto out;
    }
    resolve_ctx rc = {p};
    for (uint32_t i = 0; i < n; i++) {
        ib_flow_field *f = &p->fields[i];
        json_t *fv = json_object_get(json_array_get(fields, i), "formula");
        ib_formula_err fe;
        f->root = ib_formula_parse(json_string_value(fv), json_string_length(fv), &fe);
        if (f->root && ib_formula_check(f->root, resolve_field, &rc, &fe) < 0) {
            ib_node_free(f->root);
            f->root = NULL;
        }
        if (!f->root) {
            if (fe.line)
                fail(b, "%s: field '%s': line %u column %u: %s", path, f->name, fe.line, fe.col, fe.msg);
            else
                fail(b, "%s: field '%s': %s", path, f->name, fe.msg);
            goto out;
        }
        memset(seen, 0, n);
        deps[i].seen = seen;
        if (ib_node_each_field_ref(f->root, collect_dep, &deps[i])) {
            fail(b, "out of memory");
            goto out;
        }
        deps[i].seen = NULL;
    }
    rv = order_fields(b, p, deps);
out:
    for (size_t i = 0; deps && i < n; i++)
        free(deps[i].d);
    free(deps);
    free(seen);
    return rv;
}

static int find_program(const ib_flow *f, const char *path)
{
    for (uint32_t i = 0; i < f->nprograms; i++)
        if (strcmp(f->programs[i].path, path) == 0) return (int)i;
    return -1;
}

/* The index of the program at path, loading and compiling it on first use. */
static int use_program(bctx *b, const char *path, const char *where)
{
    if (!rel_path_ok(path))
        return fail(
            b,
            "%s: %s: refiner path '%.200s' must be relative inside the content folder (no '..', '.' or "
            "empty segments)",
            b->ffile, where, path);
    int i = find_program(b->f, path);
    if (i >= 0) return i;
    if (b->f->nprograms >= IB_FLOW_MAX_PROGRAMS)
        return fail(b, "%s: %s: more than %u refiner programs", b->ffile, where, IB_FLOW_MAX_PROGRAMS);
    json_t *doc = b->load(b, path, where);
    if (!doc) return -1;
    ib_flow_program *np = realloc(b->f->programs, (b->f->nprograms + 1) * sizeof *np);
    if (!np) {
        json_decref(doc);
        return fail(b, "out of memory");
    }
    b->f->programs = np;
    ib_flow_program *p = &np[b->f->nprograms++];
    memset(p, 0, sizeof *p);
    int rv = compile_program(b, path, doc, p);
    json_decref(doc);
    return rv < 0 ? -1 : (int)(b->f->nprograms - 1);
}

/* ---- steps ---- */

static int step_process_files(bctx *b, const json_t *s, json_t *out)
{
    static const char *const keys[] = {"type", "ocr", "name", "comment", "description", NULL};
    static const char *const ocr_keys[] = {"enabled", "languages", NULL};
    if (check_keys(b, s, keys, "process_files") < 0) return -1;
    ib_flow *f = b->f;
    snprintf(f->ocr_langs, sizeof f->ocr_langs, "eng");
    json_t *ocr = json_object_get(s, "ocr");
    json_t *langs_out = json_pack("[s]", "eng");
    if (ocr) {
        if (!json_is_object(ocr)) goto bad_ocr;
        if (check_keys(b, ocr, ocr_keys, "process_files: ocr") < 0) goto fail;
        json_t *en = json_object_get(ocr, "enabled");
        if (en && !json_is_boolean(en)) {
            fail(b, "%s: process_files: ocr: 'enabled' must be true or false", b->ffile);
            goto fail;
        }
        f->ocr_enabled = en && json_is_true(en);
        json_t *langs = json_object_get(ocr, "languages");
        if (langs) {
            if (!json_is_array(langs) || json_array_size(langs) == 0 ||
                json_array_size(langs) > IB_FLOW_MAX_LANGS) {
                fail(b, "%s: process_files: ocr: 'languages' must be a list of 1 to %d language codes",
                     b->ffile, IB_FLOW_MAX_LANGS);
                goto fail;
            }
            json_array_clear(langs_out);
            size_t o = 0;
            for (size_t i = 0; i < json_array_size(langs); i++) {
                const char *l = jstr(json_array_get(langs, i), 32);
                int ok = l && *l;
                for (const char *c = l; ok && *c; c++)
                    ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                         *c == '_';
                if (!ok) {
                    fail(
                        b,
                        "%s: process_files: ocr: languages[%zu] must be a tesseract language code like 'eng'",
                        b->ffile, i);
                    goto fail;
                }
                o += (size_t)snprintf(f->ocr_langs + o, sizeof f->ocr_langs - o, "%s%s", i ? "+" : "", l);
                json_array_append_new(langs_out, json_string(l));
            }
        }
    }
    json_object_set_new(out, "ocr",
                        json_pack("{s:b,s:o}", "enabled", f->ocr_enabled, "languages", langs_out));
    return 0;
bad_ocr:
    fail(b, "%s: process_files: 'ocr' must be an object {\"enabled\": bool, \"languages\": [...]}", b->ffile);
fail:
    json_decref(langs_out);
    return -1;
}

static int step_split(bctx *b, const json_t *s, json_t *out)
{
    static const char *const keys[] = {"type", "by", "pattern", "name", "comment", "description", NULL};
    if (check_keys(b, s, keys, "split") < 0) return -1;
    const char *by = jstr(json_object_get(s, "by"), 16);
    json_t *pat = json_object_get(s, "pattern");
    if (by && strcmp(by, "page") == 0) {
        if (pat) return fail(b, "%s: split: 'pattern' is only for \"by\": \"regex\"", b->ffile);
        b->f->split_by = IB_SPLIT_PAGE;
    } else if (by && strcmp(by, "regex") == 0) {
        if (!pat) return fail(b, "%s: split: \"by\": \"regex\" needs a 'pattern'", b->ffile);
        if (regex_field(b, pat, &b->f->split_regex, "split", "pattern") < 0) return -1;
        b->f->split_by = IB_SPLIT_REGEX;
        json_object_set_new(out, "pattern", json_string(b->f->split_regex.pattern));
    } else {
        return fail(b, "%s: split: 'by' must be \"page\" or \"regex\"", b->ffile);
    }
    json_object_set_new(out, "by", json_string(by));
    return 0;
}

static int step_classify(bctx *b, const json_t *s, json_t *out)
{
    static const char *const keys[] = {"type", "classes", "default", "name", "comment", "description", NULL};
    static const char *const class_keys[] = {"name", "keywords", "regex", "comment", "description", NULL};
    if (check_keys(b, s, keys, "classify") < 0) return -1;
    ib_flow *f = b->f;
    f->has_classify = 1;
    json_t *classes = json_object_get(s, "classes");
    if (!json_is_array(classes) || json_array_size(classes) == 0 ||
        json_array_size(classes) > IB_FLOW_MAX_CLASSES)
        return fail(b, "%s: classify: 'classes' must be a list of 1 to %d classes", b->ffile,
                    IB_FLOW_MAX_CLASSES);
    size_t n = json_array_size(classes);
    f->classes = calloc(n, sizeof *f->classes);
    if (!f->classes) return fail(b, "out of memory");
    json_t *cout = json_array();
    json_object_set_new(out, "classes", cout);
    for (size_t i = 0; i < n; i++) {
        char where[64];
        snprintf(where, sizeof where, "classify: classes[%zu]", i);
        json_t *c = json_array_get(classes, i);
        if (!json_is_object(c)) return fail(b, "%s: %s: must be an object", b->ffile, where);
        if (check_keys(b, c, class_keys, where) < 0) return -1;
        const char *name = jstr(json_object_get(c, "name"), 256);
        if (!name || !*name || strcmp(name, "*") == 0)
            return fail(b, "%s: %s: 'name' must be a non-empty string of at most 256 bytes, not \"*\"",
                        b->ffile, where);
        for (uint32_t j = 0; j < f->nclasses; j++)
            if (strcmp(f->classes[j].name, name) == 0)
                return fail(b, "%s: %s: duplicate class name '%s'", b->ffile, where, name);
        ib_flow_class *cl = &f->classes[f->nclasses++];
        cl->name = strdup(name);
        json_t *co = json_pack("{s:s}", "name", name);
        json_array_append_new(cout, co);
        json_t *kw = json_object_get(c, "keywords"), *rx = json_object_get(c, "regex");
        if (!kw && !rx) return fail(b, "%s: %s ('%s'): needs 'keywords' or 'regex'", b->ffile, where, name);
        if (kw) {
            size_t nk = json_array_size(kw);
            if (!json_is_array(kw) || nk == 0 || nk > IB_FLOW_MAX_KEYWORDS)
                return fail(b, "%s: %s ('%s'): 'keywords' must be a list of 1 to %d strings", b->ffile, where,
                            name, IB_FLOW_MAX_KEYWORDS);
            cl->keywords = calloc(nk, sizeof *cl->keywords);
            json_t *ko = json_array();
            json_object_set_new(co, "keywords", ko);
            for (size_t k = 0; k < nk; k++) {
                const char *w = jstr(json_array_get(kw, k), IB_FLOW_MAX_STR);
                if (!w || !*w)
                    return fail(b, "%s: %s ('%s'): keywords[%zu] must be a non-empty string", b->ffile, where,
                                name, k);
                cl->keywords[cl->nkeywords++] = strdup(w);
                json_array_append_new(ko, json_string(w));
            }
        }
        if (rx) {
            if (regex_field(b, rx, &cl->regex, where, "regex") < 0) return -1;
            json_object_set_new(co, "regex", json_string(cl->regex.pattern));
        }
    }
    json_t *def = json_object_get(s, "default");
    const char *d = def ? jstr(def, 256) : "other";
    if (!d || !*d || strcmp(d, "*") == 0)
        return fail(b, "%s: classify: 'default' must be a non-empty string of at most 256 bytes", b->ffile);
    f->default_class = strdup(d);
    json_object_set_new(out, "default", json_string(d));
    return 0;
}

static int class_known(const ib_flow *f, const char *cls)
{
    if (f->default_class && strcmp(f->default_class, cls) == 0) return 1;
    for (uint32_t i = 0; i < f->nclasses; i++)
        if (strcmp(f->classes[i].name, cls) == 0) return 1;
    return 0;
}

static int add_route(bctx *b, const char *cls, const char *path, const char *where)
{
    int idx = use_program(b, path, where);
    if (idx < 0) return -1;
    ib_flow *f = b->f;
    ib_flow_route *nr = realloc(f->routes, (f->nroutes + 1) * sizeof *nr);
    if (!nr) return fail(b, "out of memory");
    f->routes = nr;
    f->routes[f->nroutes].cls = strdup(cls);
    f->routes[f->nroutes].program = (uint32_t)idx;
    f->nroutes++;
    return 0;
}

static int step_apply_refiner(bctx *b, const json_t *s, json_t *out)
{
    static const char *const keys[] = {"type", "program", "programs", "name", "comment", "description", NULL};
    if (check_keys(b, s, keys, "apply_refiner") < 0) return -1;
    json_t *prog = json_object_get(s, "program"), *progs = json_object_get(s, "programs");
    if ((prog != NULL) == (progs != NULL))
        return fail(b,
                    "%s: apply_refiner: needs either 'program' (one refiner file) or 'programs' (by class)",
                    b->ffile);
    if (prog) {
        const char *p = jstr(prog, IB_FLOW_MAX_PATH);
        if (!p) return fail(b, "%s: apply_refiner: 'program' must be a path string", b->ffile);
        if (add_route(b, "*", p, "apply_refiner") < 0) return -1;
        json_object_set_new(out, "program", json_string(p));
        return 0;
    }
    if (!json_is_object(progs) || json_object_size(progs) == 0 ||
        json_object_size(progs) > IB_FLOW_MAX_CLASSES + 2)
        return fail(b, "%s: apply_refiner: 'programs' must be an object {class: refiner path, \"*\": path}",
                    b->ffile);
    json_t *po = json_object();
    json_object_set_new(out, "programs", po);
    const char *k;
    json_t *v;
    json_object_foreach(progs, k, v)
    {
        if (strcmp(k, "*") != 0) {
            if (!b->f->has_classify)
                return fail(
                    b,
                    "%s: apply_refiner: programs: class '%.64s' needs a classify step before apply_refiner "
                    "(without one, use \"*\")",
                    b->ffile, k);
            if (!class_known(b->f, k))
                return fail(b, "%s: apply_refiner: programs: '%.64s' is not a class of the classify step",
                            b->ffile, k);
        }
        const char *p = jstr(v, IB_FLOW_MAX_PATH);
        if (!p) return fail(b, "%s: apply_refiner: programs['%.64s'] must be a path string", b->ffile, k);
        if (add_route(b, k, p, "apply_refiner") < 0) return -1;
        json_object_set_new(po, k, json_string(p));
    }
    return 0;
}

static int field_in_any_program(const ib_flow *f, const char *name)
{
    for (uint32_t i = 0; i < f->nprograms; i++)
        if (ib_flow_field_index(&f->programs[i], name) >= 0) return 1;
    return 0;
}

/* The rules of a rule over a TABLE field's rows: "min_rows": n, "sum_equals": {"column", "field"[,
 * "tolerance"]}, "columns": {"name": {"required", "type", "regex"}}. Each kept in ro as it is checked. */
static int rows_rules(bctx *b, const json_t *r, ib_flow_rule *ru, json_t *ro, const char *where)
{
    json_t *v;
    if ((v = json_object_get(r, "min_rows"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 100000)
            return fail(b, "%s: %s: 'min_rows' must be a whole number from 0 to %d", b->ffile, where, 100000);
        ru->has_min_rows = 1;
        ru->min_rows = (uint32_t)json_integer_value(v);
        json_object_set(ro, "min_rows", v);
    }
    if ((v = json_object_get(r, "sum_equals"))) {
        static const char *const keys[] = {"column", "field", "tolerance", NULL};
        char w[96];
        snprintf(w, sizeof w, "%s: sum_equals", where);
        if (!json_is_object(v))
            return fail(b, "%s: %s: must be an object {\"column\", \"field\"[, \"tolerance\"]}", b->ffile, w);
        if (check_keys(b, v, keys, w) < 0) return -1;
        const char *col = jstr(json_object_get(v, "column"), IB_FLOW_MAX_STR);
        const char *fld = jstr(json_object_get(v, "field"), IB_NAME_MAX);
        json_t *tol = json_object_get(v, "tolerance");
        if (!col || !*col) return fail(b, "%s: %s: 'column' must be a column name", b->ffile, w);
        if (!fld) return fail(b, "%s: %s: 'field' must be a field name", b->ffile, w);
        if (!field_in_any_program(b->f, fld))
            return fail(b, "%s: %s: field '%s' is not a field of any refiner program", b->ffile, w, fld);
        if (tol && (!json_is_number(tol) || !(json_number_value(tol) >= 0)))
            return fail(b, "%s: %s: 'tolerance' must be a number of 0 or more", b->ffile, w);
        ru->sum_column = strdup(col);
        ru->sum_field = strdup(fld);
        ru->sum_tol = tol ? json_number_value(tol) : 0.005; /* half a cent: amounts printed to the cent */
        json_object_set(ro, "sum_equals", v);
    }
    if ((v = json_object_get(r, "columns"))) {
        static const char *const keys[] = {"required", "type", "regex", NULL};
        if (!json_is_object(v) || json_object_size(v) == 0 || json_object_size(v) > 64)
            return fail(b, "%s: %s: 'columns' must be an object of 1 to 64 column names to rules", b->ffile,
                        where);
        ru->cols = calloc(json_object_size(v), sizeof *ru->cols);
        if (!ru->cols) return fail(b, "out of memory");
        const char *name;
        json_t *cr;
        json_object_foreach(v, name, cr)
        {
            char w[160];
            snprintf(w, sizeof w, "%s: columns: '%.60s'", where, name);
            if (!json_is_object(cr)) return fail(b, "%s: %s: must be an object", b->ffile, w);
            if (check_keys(b, cr, keys, w) < 0) return -1;
            ib_flow_col_rule *c = &ru->cols[ru->ncols++];
            c->column = strdup(name);
            json_t *x;
            if ((x = json_object_get(cr, "required"))) {
                if (!json_is_boolean(x))
                    return fail(b, "%s: %s: 'required' must be true or false", b->ffile, w);
                c->required = json_is_true(x);
            }
            if ((x = json_object_get(cr, "type"))) {
                const char *ts = jstr(x, 16);
                if (!ts || ib_ftype_parse(ts, &c->type) < 0 || c->type == IB_FT_LIST ||
                    c->type == IB_FT_TABLE)
                    return fail(b, "%s: %s: 'type' must be one of TEXT, INT, FLOAT, DATE, BOOL", b->ffile, w);
                c->has_type = 1;
            }
            if ((x = json_object_get(cr, "regex")) && regex_field(b, x, &c->regex, w, "regex") < 0) return -1;
        }
        json_object_set(ro, "columns", v);
    }
    return 0;
}

static int step_validate(bctx *b, const json_t *s, json_t *out)
{
    static const char *const keys[] = {"type", "rules", "name", "comment", "description", NULL};
    static const char *const rule_keys[] = {"field",   "required",    "type",     "regex",   "min",
                                            "max",     "one_of",      "min_rows", "columns", "sum_equals",
                                            "comment", "description", NULL};
    if (check_keys(b, s, keys, "validate") < 0) return -1;
    ib_flow *f = b->f;
    json_t *rules = json_object_get(s, "rules");
    if (!json_is_array(rules) || json_array_size(rules) > IB_FLOW_MAX_RULES)
        return fail(b, "%s: validate: 'rules' must be a list of at most %d rules", b->ffile,
                    IB_FLOW_MAX_RULES);
    size_t n = json_array_size(rules);
    f->rules = calloc(n ? n : 1, sizeof *f->rules);
    if (!f->rules) return fail(b, "out of memory");
    json_t *rout = json_array();
    json_object_set_new(out, "rules", rout);
    for (size_t i = 0; i < n; i++) {
        char where[64];
        snprintf(where, sizeof where, "validate: rules[%zu]", i);
        json_t *r = json_array_get(rules, i);
        if (!json_is_object(r)) return fail(b, "%s: %s: must be an object", b->ffile, where);
        if (check_keys(b, r, rule_keys, where) < 0) return -1;
        ib_flow_rule *ru = &f->rules[f->nrules++];
        const char *field = jstr(json_object_get(r, "field"), IB_NAME_MAX);
        if (!field) return fail(b, "%s: %s: 'field' must be a field name", b->ffile, where);
        if (!field_in_any_program(f, field))
            return fail(b, "%s: %s: field '%s' is not a field of any refiner program", b->ffile, where,
                        field);
        ru->field = strdup(field);
        json_t *ro = json_pack("{s:s}", "field", field);
        json_array_append_new(rout, ro);
        json_t *v;
        if ((v = json_object_get(r, "required"))) {
            if (!json_is_boolean(v))
                return fail(b, "%s: %s: 'required' must be true or false", b->ffile, where);
            ru->required = json_is_true(v);
            json_object_set(ro, "required", v);
        }
        if ((v = json_object_get(r, "type"))) {
            const char *ts = jstr(v, 16);
            if (!ts || ib_ftype_parse(ts, &ru->type) < 0)
                return fail(b, "%s: %s: 'type' must be one of TEXT, INT, FLOAT, DATE, BOOL, LIST, TABLE",
                            b->ffile, where);
            ru->has_type = 1;
            json_object_set(ro, "type", v);
        }
        if ((v = json_object_get(r, "regex"))) {
            if (regex_field(b, v, &ru->regex, where, "regex") < 0) return -1;
            json_object_set_new(ro, "regex", json_string(ru->regex.pattern));
        }
        static const char *const bounds[] = {"min", "max"};
        for (int k = 0; k < 2; k++)
            if ((v = json_object_get(r, bounds[k]))) {
                if (!json_is_number(v))
                    return fail(b, "%s: %s: '%s' must be a number", b->ffile, where, bounds[k]);
                *(k ? &ru->max : &ru->min) = json_number_value(v);
                *(k ? &ru->has_max : &ru->has_min) = 1;
                json_object_set(ro, bounds[k], v);
            }
        if ((v = json_object_get(r, "one_of"))) {
            int ok = json_is_array(v) && json_array_size(v) > 0 && json_array_size(v) <= 1000;
            for (size_t k = 0; ok && k < json_array_size(v); k++) {
                json_t *e = json_array_get(v, k);
                ok = json_is_number(e) || jstr(e, IB_FLOW_MAX_STR);
            }
            if (!ok)
                return fail(b, "%s: %s: 'one_of' must be a list of 1 to 1000 strings or numbers", b->ffile,
                            where);
            ru->one_of = json_deep_copy(v);
            json_object_set(ro, "one_of", v);
        }
        if (rows_rules(b, r, ru, ro, where) < 0) return -1;
    }
    return 0;
}

typedef int (*step_fn)(bctx *b, const json_t *s, json_t *out);
static const step_fn step_fns[IB_STEP_COUNT_] = {step_process_files, step_split, step_classify,
                                                 step_apply_refiner, step_validate};

/* Validates the flow object `root` and everything it names into a new ib_flow. */
static ib_flow *build(bctx *b, const json_t *root)
{
    ib_flow *f = calloc(1, sizeof *f);
    if (!f) {
        fail(b, "out of memory");
        return NULL;
    }
    b->f = f;
    f->steps_json = json_array();
    if (!json_is_object(root)) {
        fail(b, "%s: must be a JSON object with 'steps'", b->ffile);
        goto bad;
    }
    json_t *steps = json_object_get(root, "steps");
    if (!json_is_array(steps) || json_array_size(steps) == 0) {
        fail(b, "%s: 'steps' must be a non-empty list", b->ffile);
        goto bad;
    }
    int seen_at[IB_STEP_COUNT_];
    for (int k = 0; k < IB_STEP_COUNT_; k++)
        seen_at[k] = -1;
    int last = -1;
    for (size_t i = 0; i < json_array_size(steps); i++) {
        json_t *s = json_array_get(steps, i);
        if (!json_is_object(s)) {
            fail(b, "%s: steps[%zu]: must be an object with a 'type'", b->ffile, i);
            goto bad;
        }
        const char *type = jstr(json_object_get(s, "type"), 64);
        if (!type) {
            fail(b, "%s: steps[%zu]: 'type' must be a string", b->ffile, i);
            goto bad;
        }
        int kind = -1;
        for (int k = 0; k < IB_STEP_COUNT_; k++)
            if (strcmp(step_names[k], type) == 0) kind = k;
        if (kind < 0) {
            fail(b,
                 "%s: steps[%zu]: unknown step type '%s' (known: process_files, split, classify, "
                 "apply_refiner, "
                 "validate)",
                 b->ffile, i, type);
            goto bad;
        }
        if (i == 0 && kind != IB_STEP_PROCESS_FILES) {
            fail(b, "%s: steps[0]: the first step must be 'process_files', not '%s'", b->ffile, type);
            goto bad;
        }
        if (seen_at[kind] >= 0) {
            fail(b, "%s: steps[%zu]: step '%s' appears twice (also steps[%d])", b->ffile, i, type,
                 seen_at[kind]);
            goto bad;
        }
        if (kind < last) {
            fail(b,
                 "%s: steps[%zu]: step '%s' must come before '%s' (order: process_files, split, classify, "
                 "apply_refiner, validate)",
                 b->ffile, i, type, step_names[last]);
            goto bad;
        }
        seen_at[kind] = (int)i;
        last = kind;
        json_t *out = json_pack("{s:s}", "type", type);
        json_array_append_new(f->steps_json, out);
        if (step_fns[kind](b, s, out) < 0) goto bad;
        f->steps[f->nsteps++] = (ib_step_kind)kind;
    }
    if (seen_at[IB_STEP_APPLY_REFINER] < 0) {
        fail(b, "%s: missing the required step 'apply_refiner'", b->ffile);
        goto bad;
    }
    return f;
bad:
    ib_flow_free(f);
    b->f = NULL;
    return NULL;
}

/* ---- loading from a content folder ---- */

/* Reads rel below dirfd, confined; NULL with errno (EFBIG when larger than max, EISDIR for a non-regular
 * file). */
static char *read_beneath(int dirfd, const char *rel, size_t max, size_t *len)
{
    int fd = ib_openat_beneath(dirfd, rel, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return NULL;
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) < 0) goto out;
    if (!S_ISREG(st.st_mode)) {
        errno = EISDIR;
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        errno = EFBIG;
        goto out;
    }
    buf = malloc(max + 1 < (size_t)st.st_size + 1 ? max + 1 : (size_t)st.st_size + 1);
    if (!buf) goto out;
    size_t have = 0, cap = (size_t)st.st_size;
    for (;;) { /* the file may grow while we read: never past max */
        if (have == cap) {
            if (cap >= max) {
                char c;
                ssize_t r = read(fd, &c, 1);
                if (r > 0) {
                    free(buf);
                    buf = NULL;
                    errno = EFBIG;
                }
                break;
            }
            size_t nc = cap ? cap * 2 : 4096;
            if (nc > max) nc = max;
            char *nb = realloc(buf, nc + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                goto out;
            }
            buf = nb;
            cap = nc;
        }
        ssize_t r = read(fd, buf + have, cap - have);
        if (r < 0) {
            if (errno == EINTR) continue;
            free(buf);
            buf = NULL;
            goto out;
        }
        if (r == 0) break;
        have += (size_t)r;
    }
    if (buf) {
        buf[have] = '\0';
        *len = have;
    }
out:;
    int e = errno;
    close(fd);
    errno = e;
    return buf;
}

/* Parses JSON text with duplicate keys refused; NULL with a message naming file, line and column. */
/* A compiled flow holds each formula's tree, two JSON levels per level of the formula, inside its document. */
#define FLOWBIN_MAX_DEPTH (2 * IB_FORMULA_MAX_DEPTH + 16)

static json_t *parse_json(bctx *b, const char *file, const char *text, size_t len, size_t max_depth)
{
    json_error_t je;
    json_t *j = ib_json_loadb_depth(text, len, JSON_REJECT_DUPLICATES, max_depth, &je); /* depth-bounded */
    if (!j) fail(b, "%s: invalid JSON at line %d column %d: %s", file, je.line, je.column, je.text);
    return j;
}

static json_t *load_file(bctx *b, const char *path, const char *step)
{
    size_t len = 0;
    char *text = read_beneath(b->dirfd, path, IB_FLOW_MAX_FILE, &len);
    if (!text) {
        if (errno == ENOENT || errno == ENOTDIR)
            fail(b, "%s: %s: refiner file '%s' does not exist", b->ffile, step, path);
        else if (errno == EXDEV || errno == ELOOP)
            fail(b, "%s: %s: refiner file '%s' leaves the content folder", b->ffile, step, path);
        else if (errno == EFBIG)
            fail(b, "%s: %s: refiner file '%s' is larger than %u bytes", b->ffile, step, path,
                 IB_FLOW_MAX_FILE);
        else if (errno == EISDIR)
            fail(b, "%s: %s: refiner file '%s' is not a regular file", b->ffile, step, path);
        else
            fail(b, "%s: %s: refiner file '%s': %s", b->ffile, step, path, strerror(errno));
        return NULL;
    }
    json_t *j = parse_json(b, path, text, len, IB_JSON_MAX_DEPTH);
    free(text);
    return j;
}

ib_flow *ib_flow_compile_text(int flow_dirfd, const char *flow_name, const char *text, size_t len, char *err,
                              size_t errsz)
{
    bctx b = {.err = err, .errsz = errsz, .ffile = flow_name, .load = load_file, .dirfd = flow_dirfd};
    json_t *root = parse_json(&b, flow_name, text, len, IB_JSON_MAX_DEPTH);
    if (!root) return NULL;
    ib_flow *f = build(&b, root);
    json_decref(root);
    return f;
}

ib_flow *ib_flow_compile_dir(int content_dirfd, char *err, size_t errsz)
{
    bctx b = {.err = err, .errsz = errsz, .ffile = "flow.json", .load = load_file, .dirfd = content_dirfd};
    size_t len = 0;
    char *text = read_beneath(content_dirfd, "flow.json", IB_FLOW_MAX_FILE, &len);
    if (!text) {
        if (errno == ENOENT)
            fail(&b, "flow.json: missing from the content folder");
        else if (errno == EFBIG)
            fail(&b, "flow.json: larger than %u bytes", IB_FLOW_MAX_FILE);
        else if (errno == EISDIR)
            fail(&b, "flow.json: not a regular file");
        else
            fail(&b, "flow.json: %s", strerror(errno));
        return NULL;
    }
    ib_flow *f = ib_flow_compile_text(content_dirfd, "flow.json", text, len, err, errsz);
    free(text);
    return f;
}

/* ---- encoding ---- */

int ib_flow_encode(const ib_flow *flow, const char *solution_name, const char *solution_version, char **bytes,
                   size_t *len)
{
    json_t *progs = json_object();
    for (uint32_t i = 0; i < flow->nprograms; i++) {
        const ib_flow_program *p = &flow->programs[i];
        json_t *fields = json_array(), *order = json_array();
        for (uint32_t k = 0; k < p->nfields; k++) {
            const ib_flow_field *fl = &p->fields[k];
            json_t *fo = json_pack("{s:s,s:s,s:s,s:o}", "name", fl->name, "type", ib_ftype_name(fl->type),
                                   "formula", fl->formula, "tree", ib_node_to_json(fl->root));
            if (fl->columns) json_object_set(fo, "columns", fl->columns);
            json_array_append_new(fields, fo);
            json_array_append_new(order, json_string(p->fields[p->order[k]].name));
        }
        json_object_set_new(progs, p->path, json_pack("{s:o,s:o}", "fields", fields, "order", order));
    }
    json_t *doc = json_pack("{s:s,s:i,s:{s:s?,s:s?},s:{s:O},s:o}", "format", "ibflowbin", "format_version", 1,
                            "solution", "name", solution_name, "version", solution_version, "flow", "steps",
                            flow->steps_json, "programs", progs);
    if (!doc) return -1;
    /* Indented for people reading an archive; insertion order is deterministic, so the bytes are too. */
    char *s = json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (!s) return -1;
    *bytes = s;
    *len = strlen(s);
    return 0;
}

static json_t *load_inline(bctx *b, const char *path, const char *step)
{
    json_t *p = json_object_get(b->inline_progs, path);
    if (!p) {
        fail(b, "%s: %s: refiner program '%s' is not in the compiled flow", b->ffile, step, path);
        return NULL;
    }
    return json_incref(p);
}

/* The stored trees must be exactly what the stored formulas parse to: a tampered tree is refused rather than
 * silently ignored. */
static int check_trees(bctx *b, const ib_flow *f)
{
    for (uint32_t i = 0; i < f->nprograms; i++) {
        const ib_flow_program *p = &f->programs[i];
        json_t *fields = json_object_get(json_object_get(b->inline_progs, p->path), "fields");
        for (uint32_t k = 0; k < p->nfields; k++) {
            json_t *stored = json_object_get(json_array_get(fields, k), "tree");
            json_t *mine = ib_node_to_json(p->fields[k].root);
            int eq = stored && json_equal(stored, mine);
            json_decref(mine);
            if (!eq)
                return fail(b, "%s: field '%s': stored tree does not match its formula", p->path,
                            p->fields[k].name);
        }
    }
    return 0;
}

ib_flow *ib_flow_decode(const void *bytes, size_t len, char *err, size_t errsz)
{
    char msg[1024];
    bctx b = {.err = msg, .errsz = sizeof msg, .ffile = "flow", .load = load_inline, .dirfd = -1};
    ib_flow *f = NULL;
    json_t *doc = NULL;
    if (len > IB_FLOW_MAX_BIN) {
        fail(&b, "larger than %u bytes", IB_FLOW_MAX_BIN);
        goto out;
    }
    if (!(doc = parse_json(&b, "ibflowbin", bytes, len, FLOWBIN_MAX_DEPTH))) goto out;
    json_t *fv = json_object_get(doc, "format_version");
    if (!json_is_object(doc) || !json_is_string(json_object_get(doc, "format")) ||
        strcmp(json_string_value(json_object_get(doc, "format")), "ibflowbin") != 0) {
        fail(&b, "not an ibflowbin document");
        goto out;
    }
    if (!json_is_integer(fv) || json_integer_value(fv) != 1) {
        fail(&b, "unsupported format_version (this runner reads version 1)");
        goto out;
    }
    b.inline_progs = json_object_get(doc, "programs");
    if (!json_is_object(b.inline_progs)) {
        fail(&b, "'programs' must be an object");
        goto out;
    }
    if (!(f = build(&b, json_object_get(doc, "flow")))) goto out;
    if (json_object_size(b.inline_progs) != f->nprograms) {
        fail(&b, "'programs' holds programs the flow does not use");
        goto fail;
    }
    if (check_trees(&b, f) < 0) goto fail;
    json_t *sol = json_object_get(doc, "solution");
    const char *n = jstr(json_object_get(sol, "name"), 256), *v = jstr(json_object_get(sol, "version"), 256);
    f->name = n ? strdup(n) : NULL;
    f->version = v ? strdup(v) : NULL;
    goto out;
fail:
    ib_flow_free(f);
    f = NULL;
out:
    if (!f) snprintf(err, errsz, "compiled flow (.ibflowbin): %s", msg);
    json_decref(doc);
    return f;
}

/* ---- lookups and freeing ---- */

const ib_flow_program *ib_flow_program_for(const ib_flow *flow, const char *cls)
{
    const ib_flow_program *star = NULL;
    for (uint32_t i = 0; i < flow->nroutes; i++) {
        if (strcmp(flow->routes[i].cls, "*") == 0)
            star = &flow->programs[flow->routes[i].program];
        else if (cls && strcmp(flow->routes[i].cls, cls) == 0)
            return &flow->programs[flow->routes[i].program];
    }
    return star;
}

int ib_flow_field_index(const ib_flow_program *prog, const char *name)
{
    for (uint32_t i = 0; i < prog->nfields; i++)
        if (strcmp(prog->fields[i].name, name) == 0) return (int)i;
    return -1;
}

void ib_flow_free(ib_flow *f)
{
    if (!f) return;
    free(f->name);
    free(f->version);
    regex_free(&f->split_regex);
    for (uint32_t i = 0; i < f->nclasses; i++) {
        free(f->classes[i].name);
        for (uint32_t k = 0; k < f->classes[i].nkeywords; k++)
            free(f->classes[i].keywords[k]);
        free(f->classes[i].keywords);
        regex_free(&f->classes[i].regex);
    }
    free(f->classes);
    free(f->default_class);
    for (uint32_t i = 0; i < f->nprograms; i++) {
        ib_flow_program *p = &f->programs[i];
        free(p->path);
        for (uint32_t k = 0; k < p->nfields; k++) {
            free(p->fields[k].name);
            free(p->fields[k].formula);
            ib_node_free(p->fields[k].root);
            json_decref(p->fields[k].columns);
        }
        free(p->fields);
        free(p->order);
    }
    free(f->programs);
    for (uint32_t i = 0; i < f->nroutes; i++)
        free(f->routes[i].cls);
    free(f->routes);
    for (uint32_t i = 0; i < f->nrules; i++) {
        free(f->rules[i].field);
        regex_free(&f->rules[i].regex);
        free(f->rules[i].sum_column);
        free(f->rules[i].sum_field);
        for (uint32_t k = 0; k < f->rules[i].ncols; k++) {
            free(f->rules[i].cols[k].column);
            regex_free(&f->rules[i].cols[k].regex);
        }
        free(f->rules[i].cols);
        json_decref(f->rules[i].one_of);
    }
    free(f->rules);
    json_decref(f->steps_json);
    free(f);
}
