/* Unit tests of the formula evaluator on the text invoice fixture: every function family, null and error
 * propagation, laziness, type conversion of field values, provenance, regex bounds, and whole programs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four headers above first */
#include <cmocka.h>

#include "ib_eval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ib_doc *doc;
static json_t *config;

static int setup(void **state)
{
    (void)state;
    const char *src = getenv("IBSOL_SOURCE");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/docs/invoice.txt", src ? src : ".");
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    char err[256];
    ib_doc_opts o = {0};
    doc = ib_doc_load("invoice.txt", buf, n, &o, err, sizeof err);
    config = json_pack("{s:s,s:s,s:s}", "currency", "USD", "pat", "b(c)", "bad", "b(");
    return doc ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    ib_doc_free(doc);
    json_decref(config);
    return 0;
}

/* Evaluates one formula on the fixture and returns {"value", "error"?, "page"?, "bbox"?} as compact JSON text
 * (malloc'd), using a one-field program so types and results go through the real path. */
#define RAW ((ib_ftype)-1) /* no conversion to a field type: the formula's own value */

static char *run(const char *formula, ib_ftype type)
{
    ib_formula_err fe;
    ib_node *root = ib_formula_parse(formula, strlen(formula), &fe);
    if (!root || ib_formula_check(root, NULL, NULL, &fe) != 0)
        fail_msg("%s: %u:%u %s", formula, fe.line, fe.col, fe.msg);
    ib_eval_env env = {.doc = doc, .file_name = "invoice.txt", .cls = "invoice", .config = config};
    ib_eval *ev = ib_eval_new(&env);
    json_t *r;
    if (type == RAW) {
        ib_value *v = ib_eval_node(ev, root, NULL, 0);
        r = json_pack("{s:o}", "value", ib_eval_json(ev, v, IB_FT_TEXT));
        if (v->kind == IB_V_ERROR) json_object_set_new(r, "error", json_string(v->str));
        ib_v_unref(v);
    } else {
        ib_flow_field field = {.name = "f", .type = type, .formula = (char *)formula, .root = root};
        uint32_t order = 0;
        ib_flow_program prog = {.path = "t", .fields = &field, .nfields = 1, .order = &order};
        json_t *res = ib_eval_program(ev, &prog, NULL);
        r = json_incref(json_array_get(res, 0));
        json_decref(res);
        json_object_del(r, "key");
        json_object_del(r, "field_type");
    }
    ib_eval_free(ev);
    char *s = json_dumps(r, JSON_ENCODE_ANY | JSON_REAL_PRECISION(10));
    json_decref(r);
    ib_node_free(root);
    return s;
}

/* Checks the value only (and that there is no error). */
static void check_value(const char *formula, ib_ftype type, const char *want_json)
{
    char *s = run(formula, type);
    json_t *r = json_loads(s, 0, NULL);
    char *v = json_dumps(json_object_get(r, "value"), JSON_ENCODE_ANY | JSON_REAL_PRECISION(10));
    if (json_object_get(r, "error") || strcmp(v, want_json) != 0)
        fail_msg("%s\n got:  %s\n want: %s", formula, s, want_json);
    free(v);
    json_decref(r);
    free(s);
}
#define V(formula, want) check_value(formula, RAW, want)

static void check_error(const char *formula, ib_ftype type, const char *want_msg)
{
    char *s = run(formula, type);
    json_t *r = json_loads(s, 0, NULL);
    const char *e = json_string_value(json_object_get(r, "error"));
    if (!e || !strstr(e, want_msg) || strcmp(json_string_value(json_object_get(r, "value")), "ERROR") != 0)
        fail_msg("%s\n got:  %s\n want error: %s", formula, s, want_msg);
    json_decref(r);
    free(s);
}

static void test_regex(void **state)
{
    (void)state;
    V("regex(INPUT_COL, 'Total:\\s*\\$?([0-9.,]+)')", "\"1,344.06\"");
    V("regex(INPUT_COL, 'INV-\\d+-\\d+')", "\"INV-2024-001\"");         /* no group: whole match */
    V("regex(INPUT_COL, 'Date: (\\d+)/(\\d+)/(\\d+)', 3)", "\"2024\""); /* numbered group */
    V("regex(INPUT_COL, 'Date: (\\d+)/(\\d+)/(\\d+)', '2')", "\"15\"");
    V("regex(INPUT_COL, 'Invoice # (?<no>[A-Z0-9-]+)', 'no')", "\"INV-2024-001\""); /* named group */
    V("regex(INPUT_COL, 'Date: (\\d+)', 0)", "\"Date: 03\"");
    V("regex(INPUT_COL, 'Refund: (\\d+)')", "null"); /* no match: null */
    V("regex(INPUT_COL, '(x)?Total')", "null");      /* unset group: null */
    V("regex(INPUT_COL, '(?m)^Paid: (\\w+)$')", "\"yes\"");
    V("regex(INPUT_COL, '^Paid')", "null"); /* no implicit multiline */
    V("regex_all(INPUT_COL, '\\$([0-9.,]+)')",
      "[\"10.00\", \"1,234.50\", \"1,244.50\", \"99.56\", \"1,344.06\"]");
    V("regex_all('a1b22c', '\\d*')", "[\"\", \"1\", \"\", \"22\", \"\", \"\"]");
    V("regex_all('xyz', 'q')", "[]");
    V("replace('2024-03-15', '(\\d+)-(\\d+)-(\\d+)', '$3/$2/$1')", "\"15/03/2024\"");
    V("replace('a.b.c', '\\.', '')", "\"abc\"");
    V("replace('aXbX', '(?<c>X)', '[${c}]')", "\"a[X]b[X]\"");
    V("replace(concat('ab', 'cd'), '(z)?c', '<$1>')", "\"ab<>d\"");
    V("matches(INPUT_COL, 'Subtotal')", "true");
    V("matches('abc', '^b')", "false");
    V("regex('abc', CONFIG('pat'))", "\"c\""); /* a pattern known only at run time */
    check_error("regex('abc', CONFIG('bad'))", IB_FT_TEXT,
                "regex: invalid regular expression: missing closing parenthesis");
    check_error("regex('abc', CONFIG('pat'), 'nope')", IB_FT_TEXT,
                "regex: the pattern has no group named 'nope'");
    check_error("regex('abc', CONFIG('pat'), 5)", IB_FT_TEXT, "regex: group 5 does not exist");
    check_error("replace('abc', 'b', '$9')", IB_FT_TEXT, "replace: unknown substring");
    /* catastrophic backtracking ends with an error, not a stalled worker */
    check_error("regex(concat('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'b'), '^(a+)+$')", IB_FT_TEXT,
                "regex: match limit exceeded");
}

static void test_provenance(void **state)
{
    (void)state;
    char *s = run("regex(INPUT_COL, 'Total:\\s*\\$?([0-9.,]+)')", IB_FT_TEXT);
    /* the word "$1,344.06" of line 18 (0-based 17), columns 7..16 */
    assert_string_equal(s, "{\"value\": \"1,344.06\", \"page\": 1, \"bbox\": [7.0, 17.0, 16.0, 18.0]}");
    free(s);
    s = run("scan_right(INPUT_COL, 'Last Name:')", IB_FT_TEXT);
    assert_string_equal(s, "{\"value\": \"Smith\", \"page\": 1, \"bbox\": [37.0, 4.0, 42.0, 5.0]}");
    free(s);
    s = run("number(clean(scan_right(INPUT_COL, 'Total:')))", IB_FT_FLOAT);
    assert_string_equal(s, "{\"value\": 1344.06, \"page\": 1, \"bbox\": [7.0, 17.0, 16.0, 18.0]}");
    free(s);
    s = run("line_containing(INPUT_COL, 'Subtotal')", IB_FT_TEXT);
    assert_string_equal(
        s, "{\"value\": \"Subtotal: $1,244.50\", \"page\": 1, \"bbox\": [0.0, 15.0, 19.0, 16.0]}");
    free(s);
    s = run("concat('x', 'y')", IB_FT_TEXT); /* literals come from nowhere */
    assert_string_equal(s, "{\"value\": \"xy\"}");
    free(s);
}

static void test_spatial(void **state)
{
    (void)state;
    V("scan_right(INPUT_COL, 'First Name:')", "\"John\"");
    V("scan_right(INPUT_COL, 'Invoice #')", "\"INV-2024-001\"");
    V("scan_below(INPUT_COL, 'Due Date')", "\"March 30, 2024\"");
    V("scan_below(INPUT_COL, 'Ship To:')", "\"Warehouse 7\"");
    V("scan_box(INPUT_COL, 'Bill To:', 2, 1)", "\"Jane Doe\"");
    V("scan_right(INPUT_COL, 'Nonexistent Label')", "null");
    V("scan_right(INPUT_COL, 'Paid:')", "\"yes\"");
    check_error("scan_right(FILENAME, 'x')", IB_FT_TEXT,
                "scan_right: the first argument must be the document (INPUT_COL)");
    check_error("scan_box(INPUT_COL, 'Bill To:', 'wide', 1)", IB_FT_TEXT,
                "scan_box: right and below must be numbers");
}

static void test_text(void **state)
{
    (void)state;
    V("clean('  a \\t b\\n c  ')", "\"a \\\\t b\\\\n c\""); /* raw literal: backslash-t is two characters */
    V("clean(concat('  a   b', '  '))", "\"a b\"");
    V("trim('  x y  ')", "\"x y\"");
    V("upper('straße')", "\"STRASSE\"");
    V("lower('ÉCOLE')", "\"école\"");
    V("title(\"o'neil jean-pierre\")", "\"O'neil Jean-Pierre\"");
    V("concat('a', 1, ' ', 2.5, ' ', eq(1, 1), CONFIG('missing'))", "\"a1 2.5 true\"");
    V("substr('héllo', 1, 3)", "\"éll\"");
    V("substr('hello', -3)", "\"llo\"");
    V("len('héllo')", "5");
    V("len(split('a,b,c', ','))", "3");
    V("split('a, b,,c', ',')", "[\"a\", \" b\", \"\", \"c\"]");
    V("join(split('a b  c', ''), '-')", "\"a-b-c\"");
    V("nth(split('a,b,c', ','), 1)", "\"b\"");
    V("nth(split('a,b,c', ','), -1)", "\"c\"");
    V("nth(split('a,b,c', ','), 7)", "null");
    V("nth(lines(INPUT_COL), 0)", "\"ACME Corporation                          INVOICE\"");
    V("len(lines(INPUT_COL))", "15"); /* visual lines: blank layout lines are not lines */
    V("nth(lines(reading_text(INPUT_COL)), 3)", "\"\"");
    V("line_containing(INPUT_COL, 'warehouse')", "\"Jane Doe                                  Warehouse 7\"");
    V("line_containing('ab\\ncd', 'c')", "\"ab\\\\ncd\"");
    V("line_containing(INPUT_COL, 'zzz')", "null");
    V("between('Order [A-7] shipped', '[', ']')", "\"A-7\"");
    V("between('abc', 'x', 'c')", "null");
    V("clean(between(INPUT_COL, 'Bill To:', 'Ship To:'))", "\"\"");
    V("nth(lines(reading_text(INPUT_COL)), 0)", "\"ACME Corporation INVOICE\"");
    V("upper(CONFIG('missing'))", "null");
}

static void test_parsing(void **state)
{
    (void)state;
    V("number(regex(INPUT_COL, 'Total:\\s*(\\S+)'))", "1344.06");
    V("number('(1.234,50 EUR)')", "-1234.5");
    V("int('12.99')", "12");
    V("int(7.9)", "7");
    V("date(scan_below(INPUT_COL, 'Due Date'))", "\"2024-03-30\"");
    V("date('03/04/2024', 'DMY')", "\"2024-04-03\"");
    V("date('7. Mai 2014')", "\"2014-05-07\"");
    V("bool(scan_right(INPUT_COL, 'Paid:'))", "true");
    V("bool('nein')", "false");
    V("bool('')", "null");
    V("number(CONFIG('missing'))", "null");
    check_error("number('no digits here')", IB_FT_TEXT, "number: no number in 'no digits here'");
    check_error("int('abc')", IB_FT_TEXT, "int: no integer in 'abc'");
    check_error("date('someday')", IB_FT_TEXT, "date: no date in 'someday'");
    check_error("bool('perhaps')", IB_FT_TEXT, "bool: cannot read 'perhaps' as true or false");
}

static void test_logic(void **state)
{
    (void)state;
    V("if(eq(CLASS, 'invoice'), 'inv', 'other')", "\"inv\"");
    V("if(eq(CLASS, 'receipt'), 'r')", "null");
    V("if(1, 'a', number('x'))", "\"a\""); /* lazy: the failing branch is never evaluated */
    V("coalesce(regex(INPUT_COL, 'Nope: (\\d+)'), '', '  ', number('x'), scan_right(INPUT_COL, 'First "
      "Name:'))",
      "\"John\"");
    V("coalesce(CONFIG('missing'))", "null");
    V("eq(number('1,000'), 1000)", "true");
    V("eq('a', 'A')", "false");
    V("eq(CONFIG('missing'), '')", "true");
    V("contains(INPUT_COL, 'Springfield')", "true");
    V("contains(split('a,b', ','), 'b')", "true");
    V("contains(split('a,b', ','), 'c')", "false");
    V("not(regex(INPUT_COL, 'Nope'))", "true");
    V("and(1, 'yes', contains(FILENAME, '.txt'))", "true");
    V("and(1, 'no', number('x'))", "false");
    V("or(0, 'false', eq(1, 1))", "true");
    V("or(0, '')", "false");
    V("CONFIG('currency')", "\"USD\"");
    V("CONFIG('missing', 'dflt')", "\"dflt\"");
    V("FILENAME", "\"invoice.txt\"");
    V("CLASS", "\"invoice\"");
    V("[1, 'a', [2]]", "[1, \"a\", [2]]"); /* list items keep their own types */
    /* errors propagate through strict functions */
    check_error("concat('a', number('x'))", IB_FT_TEXT, "number: no number in 'x'");
    check_error("if(number('x'), 1, 2)", IB_FT_TEXT, "number: no number");
    check_error("upper([number('x')])", IB_FT_TEXT, "number: no number");
}

static void test_types(void **state)
{
    (void)state;
    check_value("'1,234.50'", IB_FT_FLOAT, "1234.5");
    check_value("'12.99'", IB_FT_INT, "12");
    check_value("number('-3')", IB_FT_INT, "-3");
    check_value("'15.03.2024'", IB_FT_DATE, "\"2024-03-15\"");
    check_value("'yes'", IB_FT_BOOL, "true");
    check_value("eq(1, 2)", IB_FT_BOOL, "false");
    check_value("split('a b', ' ')", IB_FT_LIST, "[\"a\", \"b\"]");
    check_value("'one'", IB_FT_LIST, "[\"one\"]");
    check_value("number('12')", IB_FT_TEXT, "\"12\"");
    check_value("eq(1, 1)", IB_FT_TEXT, "\"true\"");
    check_value("regex(INPUT_COL, 'Nope')", IB_FT_FLOAT, "null"); /* null stays null in every type */
    check_value("regex(INPUT_COL, 'Nope')", IB_FT_DATE, "null");
    check_error("'abc'", IB_FT_FLOAT, "FLOAT: cannot read a number from 'abc'");
    check_error("'abc'", IB_FT_INT, "INT: cannot read an integer from 'abc'");
    check_error("'next week'", IB_FT_DATE, "DATE: cannot read a date from 'next week'");
    check_error("'maybe'", IB_FT_BOOL, "BOOL: cannot read 'maybe' as true or false");
    char *s = run("INPUT_COL", IB_FT_TEXT);
    assert_non_null(strstr(s, "ACME Corporation"));
    free(s);
}

static int resolve(void *c, const char *name, size_t len)
{
    ib_flow_program *p = c;
    for (uint32_t i = 0; i < p->nfields; i++)
        if (strlen(p->fields[i].name) == len && memcmp(p->fields[i].name, name, len) == 0) return (int)i;
    return -1;
}

static void test_program(void **state)
{
    (void)state;
    static const char *src[][3] = {
        {"customer", "concat(first_name, ' ', last_name)", "TEXT"},
        {"first_name", "clean(scan_right(INPUT_COL, 'First Name:'))", "TEXT"},
        {"last_name", "clean(scan_right(INPUT_COL, 'Last Name:'))", "TEXT"},
        {"total", "regex(INPUT_COL, 'Total:\\s*(\\S+)')", "FLOAT"},
        {"bad", "number(regex(INPUT_COL, 'Item'))", "FLOAT"},
        {"uses_bad", "concat(bad, 'x')", "TEXT"},
        {"double_total", "concat(total, '/', total)", "TEXT"},
    };
    enum { N = sizeof src / sizeof src[0] };
    ib_flow_field fields[N];
    memset(fields, 0, sizeof fields);
    ib_flow_program prog = {.path = "p", .fields = fields, .nfields = N};
    for (int i = 0; i < N; i++) {
        fields[i].name = (char *)src[i][0];
        ib_ftype_parse(src[i][2], &fields[i].type);
    }
    uint32_t order[N] = {1, 2, 0, 3, 4, 5, 6};
    prog.order = order;
    for (int i = 0; i < N; i++) {
        ib_formula_err fe;
        fields[i].root = ib_formula_parse(src[i][1], strlen(src[i][1]), &fe);
        assert_non_null(fields[i].root);
    }
    /* resolve names the way the compiler does */
    for (int i = 0; i < N; i++)
        assert_int_equal(ib_formula_check(fields[i].root, resolve, &prog, NULL), 0);
    ib_eval_env env = {.doc = doc, .file_name = "invoice.txt"};
    ib_eval *ev = ib_eval_new(&env);
    size_t nerr = 0;
    json_t *res = ib_eval_program(ev, &prog, &nerr);
    ib_eval_free(ev);
    char *s = json_dumps(res, JSON_COMPACT | JSON_REAL_PRECISION(10));
    assert_int_equal(nerr, 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(res, 0), "value")), "John Smith");
    assert_string_equal(json_string_value(json_object_get(json_array_get(res, 0), "key")), "customer");
    assert_true(json_real_value(json_object_get(json_array_get(res, 3), "value")) == 1344.06);
    assert_string_equal(json_string_value(json_object_get(json_array_get(res, 3), "field_type")), "FLOAT");
    json_t *bad = json_array_get(res, 4);
    assert_string_equal(json_string_value(json_object_get(bad, "value")), "ERROR");
    assert_string_equal(json_string_value(json_object_get(bad, "error")), "number: no number in 'Item'");
    assert_string_equal(json_string_value(json_object_get(json_array_get(res, 5), "error")),
                        "uses field 'bad', which failed");
    assert_string_equal(json_string_value(json_object_get(json_array_get(res, 6), "value")),
                        "1344.06/1344.06");
    free(s);
    json_decref(res);
    for (int i = 0; i < N; i++)
        ib_node_free(fields[i].root);
}

/* ---- the record's limits ---- */

/* Evaluates fields (name, formula; each may use the ones before it) as one program under env's limits (doc and
 * names filled in here). Returns the results; *limit gets ib_eval_limit_msg (copied, "" when none). */
static json_t *run_limited(const char *const (*src)[2], size_t n, ib_eval_env env, size_t *nerr, char *limit,
                           size_t limitsz)
{
    ib_flow_field *fields = calloc(n, sizeof *fields);
    uint32_t *order = calloc(n, sizeof *order);
    assert_non_null(fields);
    assert_non_null(order);
    ib_flow_program prog = {.path = "p", .fields = fields, .nfields = (uint32_t)n, .order = order};
    for (size_t i = 0; i < n; i++) {
        fields[i].name = (char *)src[i][0];
        fields[i].type = src[i][0][0] == 'L' ? IB_FT_LIST : IB_FT_TEXT; /* "L...": a LIST field */
        order[i] = (uint32_t)i;
        ib_formula_err fe;
        fields[i].root = ib_formula_parse(src[i][1], strlen(src[i][1]), &fe);
        if (!fields[i].root) fail_msg("%s: %s", src[i][1], fe.msg);
    }
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ib_formula_check(fields[i].root, resolve, &prog, NULL), 0);
    env.doc = doc;
    env.file_name = "invoice.txt";
    ib_eval *ev = ib_eval_new(&env);
    json_t *res = ib_eval_program(ev, &prog, nerr);
    snprintf(limit, limitsz, "%s", ib_eval_limit_msg(ev) ? ib_eval_limit_msg(ev) : "");
    ib_eval_free(ev);
    for (size_t i = 0; i < n; i++)
        ib_node_free(fields[i].root);
    free(fields);
    free(order);
    return res;
}

static const char *field_error(const json_t *res, size_t i)
{
    const char *e = json_string_value(json_object_get(json_array_get(res, i), "error"));
    return e ? e : "";
}

/* A refiner whose fields double the text (the hostile solution): the first field past the bytes budget
 * fails with a message naming it and the limit, the ones using it fail, and the others keep their values. */
static void test_budget_bytes(void **state)
{
    (void)state;
    /* ~0.6 KB of words, then 2x each field: g10 (~0.6 MB) with the ~0.6 MB held before it passes 1 MiB */
    static const char *const src[][2] = {
        {"g0", "concat(regex_all(INPUT_COL, '\\w+'), regex_all(INPUT_COL, '\\w+'))"},
        {"g1", "concat(g0, g0)"},   {"g2", "concat(g1, g1)"},   {"g3", "concat(g2, g2)"},
        {"g4", "concat(g3, g3)"},   {"g5", "concat(g4, g4)"},   {"g6", "concat(g5, g5)"},
        {"g7", "concat(g6, g6)"},   {"g8", "concat(g7, g7)"},   {"g9", "concat(g8, g8)"},
        {"g10", "concat(g9, g9)"},  {"g11", "concat(g10, g10)"},
        {"hidden", "coalesce(join(split(concat(g9, g9, g9), ' '), '-'), 'swallowed')"},
        {"small", "regex(INPUT_COL, 'Invoice # (\\S+)')"},
    };
    size_t n = sizeof src / sizeof src[0], nerr = 0;
    char limit[400];
    json_t *res = run_limited(src, n, (ib_eval_env){.max_bytes = 1u << 20}, &nerr, limit, sizeof limit);
    for (size_t i = 0; i <= 9; i++)
        if (*field_error(res, i)) fail_msg("g%zu failed: %s", i, field_error(res, i));
    assert_string_equal(field_error(res, 10), "formula budget exceeded: field 'g10' built more than 1 MiB");
    assert_string_equal(json_string_value(json_object_get(json_array_get(res, 10), "value")), "ERROR");
    assert_string_equal(field_error(res, 11), "uses field 'g10', which failed");
    /* coalesce skips errors, but not a spent budget */
    assert_string_equal(field_error(res, 12), "formula budget exceeded: field 'hidden' built more than 1 MiB");
    assert_string_equal(json_string_value(json_object_get(json_array_get(res, 13), "value")), "INV-2024-001");
    assert_int_equal(nerr, 3);
    assert_string_equal(limit, "formula budget exceeded: field 'g10' built more than 1 MiB");
    json_decref(res);

    /* the same fields with room enough: every one has its value (the budget counts what is held, not a total) */
    res = run_limited(src, 10, (ib_eval_env){.max_bytes = 4u << 20}, &nerr, limit, sizeof limit);
    assert_int_equal(nerr, 0);
    assert_string_equal(limit, "");
    assert_int_equal(json_string_length(json_object_get(json_array_get(res, 9), "value")),
                     512 * json_string_length(json_object_get(json_array_get(res, 0), "value")));
    json_decref(res);
}

/* Time: the field running when the record's time is up fails saying so, the ones after it are not evaluated;
 * a deadline of the run that has already passed stops the record before its first field. */
static void test_budget_time(void **state)
{
    (void)state;
    static const char *const src[][2] = {
        {"slow", "len(regex_all(concat(INPUT_COL, INPUT_COL, INPUT_COL, INPUT_COL, INPUT_COL, INPUT_COL, INPUT_COL, "
                 "INPUT_COL, INPUT_COL, INPUT_COL, INPUT_COL, INPUT_COL, INPUT_COL, INPUT_COL, INPUT_COL, "
                 "INPUT_COL), '.'))"},
        {"after", "'x'"},
    };
    size_t nerr = 0;
    char limit[400];
    json_t *res = run_limited(src, 2, (ib_eval_env){.max_ms = 1}, &nerr, limit, sizeof limit);
    assert_string_equal(field_error(res, 0), "formula budget exceeded: field 'slow' ran longer than 1 ms");
    assert_string_equal(field_error(res, 1),
                        "formula budget exceeded: field 'after' was not evaluated: the record's formulas ran longer "
                        "than 1 ms");
    assert_string_equal(limit, "formula budget exceeded: field 'slow' ran longer than 1 ms");
    assert_int_equal(nerr, 2);
    json_decref(res);

    res = run_limited(src, 2, (ib_eval_env){.max_ms = 60000, .deadline_ms = ib_eval_clock_ms() - 1}, &nerr, limit,
                      sizeof limit);
    assert_string_equal(field_error(res, 0),
                        "formula budget exceeded: field 'slow' was not evaluated: it came after the run's deadline");
    assert_string_equal(limit, field_error(res, 0));
    json_decref(res);

    /* no limits: the same formula has its value */
    res = run_limited(src, 2, (ib_eval_env){0}, &nerr, limit, sizeof limit);
    assert_int_equal(nerr, 0);
    assert_true(json_integer_value(json_object_get(json_array_get(res, 0), "value")) > 1000 ||
                atoi(json_string_value(json_object_get(json_array_get(res, 0), "value")) ?: "0") > 1000);
    json_decref(res);
}

/* Output: a field that would take the record's results past max_output fails, and the fields after it that fit
 * keep their values. */
static void test_budget_output(void **state)
{
    (void)state;
    static const char *const src[][2] = {
        {"a", "'short'"},
        {"big", "concat(INPUT_COL, INPUT_COL)"},
        {"b", "'also short'"},
    };
    size_t nerr = 0;
    char limit[400];
    json_t *res = run_limited(src, 3, (ib_eval_env){.max_output = 512}, &nerr, limit, sizeof limit);
    assert_string_equal(json_string_value(json_object_get(json_array_get(res, 0), "value")), "short");
    assert_string_equal(field_error(res, 1),
                        "record output limit exceeded: field 'big' would make the record's results larger than 512 "
                        "bytes");
    assert_string_equal(json_string_value(json_object_get(json_array_get(res, 2), "value")), "also short");
    assert_string_equal(limit, field_error(res, 1));
    assert_int_equal(nerr, 1);
    char *text = json_dumps(res, JSON_COMPACT);
    assert_true(strlen(text) <= 512);
    free(text);
    json_decref(res);
}

/* A list that holds one list many times is small as a value and exponentially large as text or JSON: it fails
 * on the budget (as text) or the output limit (as JSON) before either is made. Lists nest at most 16 deep. */
static void test_budget_shared_lists(void **state)
{
    (void)state;
    static const char *const src[][2] = {
        {"L1", "['xxxxxxxx', 'xxxxxxxx', 'xxxxxxxx', 'xxxxxxxx', 'xxxxxxxx', 'xxxxxxxx', 'xxxxxxxx', 'xxxxxxxx']"},
        {"L2", "[L1, L1, L1, L1, L1, L1, L1, L1]"}, {"L3", "[L2, L2, L2, L2, L2, L2, L2, L2]"},
        {"L4", "[L3, L3, L3, L3, L3, L3, L3, L3]"}, {"L5", "[L4, L4, L4, L4, L4, L4, L4, L4]"},
        {"L6", "[L5, L5, L5, L5, L5, L5, L5, L5]"}, {"L7", "[L6, L6, L6, L6, L6, L6, L6, L6]"},
        {"L8", "[L7, L7, L7, L7, L7, L7, L7, L7]"}, /* 16.7 M strings: ~190 MB as JSON */
        {"text", "concat(L8)"},
        {"L9", "nth(L2, 0)"},
    };
    size_t nerr = 0;
    char limit[400];
    json_t *res = run_limited(src, sizeof src / sizeof src[0],
                              (ib_eval_env){.max_bytes = 1u << 20, .max_output = 1u << 20}, &nerr, limit, sizeof limit);
    for (size_t i = 0; i < 5; i++) /* L5: 32 K strings, ~0.4 MB as JSON */
        if (*field_error(res, i)) fail_msg("L%zu failed: %s", i + 1, field_error(res, i));
    assert_string_equal(field_error(res, 5), "record output limit exceeded: field 'L6' would make the record's "
                                             "results larger than 1 MiB");
    assert_string_equal(field_error(res, 7), "record output limit exceeded: field 'L8' would make the record's "
                                             "results larger than 1 MiB");
    assert_string_equal(field_error(res, 8), "formula budget exceeded: field 'text' built more than 1 MiB");
    assert_int_equal(json_array_size(json_object_get(json_array_get(res, 9), "value")), 8);
    assert_string_equal(limit, field_error(res, 8)); /* the first met while evaluating (outputs come after) */
    json_decref(res);

    /* lists in lists, over several fields: 3 x 8 deep */
    char deep[3][256];
    const char *names[3] = {"Ln1", "Ln2", "Ln3"}, *inner[3] = {"'x'", "Ln1", "Ln2"}; /* LIST fields */
    const char *dsrc[3][2];
    for (int k = 0; k < 3; k++) {
        snprintf(deep[k], sizeof deep[k], "%.8s%s%.8s", "[[[[[[[[", inner[k], "]]]]]]]]");
        dsrc[k][0] = names[k];
        dsrc[k][1] = deep[k];
    }
    res = run_limited((const char *const(*)[2])dsrc, 3, (ib_eval_env){0}, &nerr, limit, sizeof limit);
    assert_string_equal(field_error(res, 0), "");
    assert_string_equal(field_error(res, 1), "");
    assert_string_equal(field_error(res, 2), "lists may hold lists at most 16 deep");
    json_decref(res);
}

/* Values may outlive the context that built them (and its budget): freeing one later touches nothing freed. */
static void test_budget_value_outlives(void **state)
{
    (void)state;
    ib_formula_err fe;
    const char *f = "concat(INPUT_COL, 'x')";
    ib_node *root = ib_formula_parse(f, strlen(f), &fe);
    assert_int_equal(ib_formula_check(root, NULL, NULL, &fe), 0);
    ib_eval_env env = {.doc = doc, .max_bytes = 1u << 20};
    ib_eval *ev = ib_eval_new(&env);
    ib_value *v = ib_eval_node(ev, root, NULL, 0);
    assert_int_equal(v->kind, IB_V_STR);
    ib_eval_free(ev);
    ib_v_unref(v);
    ib_node_free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regex), cmocka_unit_test(test_provenance), cmocka_unit_test(test_spatial),
        cmocka_unit_test(test_text),  cmocka_unit_test(test_parsing),    cmocka_unit_test(test_logic),
        cmocka_unit_test(test_types), cmocka_unit_test(test_program),
        cmocka_unit_test(test_budget_bytes), cmocka_unit_test(test_budget_time),
        cmocka_unit_test(test_budget_output), cmocka_unit_test(test_budget_shared_lists),
        cmocka_unit_test(test_budget_value_outlives),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
