/* Unit tests of the formula language: every syntax error with its exact line and column, raw string literals,
 * the checks (functions, argument counts, names, literal regexes and groups) and the function table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four headers above first */
#include <cmocka.h>

#include "ib_formula.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses (and checks, with fields "a" and "b" known) and expects an error at line:col whose message contains
 * want. */
static int resolve_ab(void *ctx, const char *name, size_t len)
{
    (void)ctx;
    if (len == 1 && name[0] == 'a') return 0;
    if (len == 1 && name[0] == 'b') return 1;
    return -1;
}

static void expect_err(const char *src, size_t len, uint32_t line, uint32_t col, const char *want)
{
    ib_formula_err e;
    ib_node *n = ib_formula_parse(src, len, &e);
    if (n) {
        int rv = ib_formula_check(n, resolve_ab, NULL, &e);
        ib_node_free(n);
        if (rv == 0) fail_msg("formula %.80s: no error, expected '%s'", src, want);
    }
    if (!strstr(e.msg, want) || e.line != line || e.col != col)
        fail_msg("formula %.80s: got %u:%u '%s', expected %u:%u '%s'", src, e.line, e.col, e.msg, line, col,
                 want);
}
#define EXPECT_ERR(src, line, col, want) expect_err(src, strlen(src), line, col, want)

static ib_node *parse_ok(const char *src)
{
    ib_formula_err e;
    ib_node *n = ib_formula_parse(src, strlen(src), &e);
    if (!n) fail_msg("formula %s: %u:%u %s", src, e.line, e.col, e.msg);
    if (ib_formula_check(n, resolve_ab, NULL, &e) != 0)
        fail_msg("formula %s: %u:%u %s", src, e.line, e.col, e.msg);
    return n;
}

static void test_syntax_errors(void **state)
{
    (void)state;
    EXPECT_ERR("", 1, 1, "empty formula");
    EXPECT_ERR("  \n  ", 2, 3, "empty formula");
    EXPECT_ERR("clean(INPUT_COL", 1, 16, "expected ',' or ')', found the end of the formula");
    EXPECT_ERR("clean(INPUT_COL]", 1, 16, "expected ',' or ')', found ']'");
    EXPECT_ERR("regex(INPUT_COL, 'abc)", 1, 18, "unterminated string literal");
    EXPECT_ERR("regex(INPUT_COL, \"abc')", 1, 18, "unterminated string literal");
    EXPECT_ERR("clean(INPUT_COL))", 1, 17, "unexpected ')' after the end of the expression");
    EXPECT_ERR("clean(a) b", 1, 10, "unexpected 'b' after the end of the expression");
    EXPECT_ERR("clean(%)", 1, 7, "unexpected character '%'");
    EXPECT_ERR("clean(a;)", 1, 8, "unexpected character ';'");
    EXPECT_ERR("[1, 2", 1, 6, "expected ',' or ']', found the end of the formula");
    EXPECT_ERR("[1, 2)", 1, 6, "expected ',' or ']', found ')'");
    EXPECT_ERR("concat(a,)", 1, 10, "expected an expression, found ')'");
    EXPECT_ERR("concat(,a)", 1, 8, "expected an expression, found ','");
    EXPECT_ERR(")", 1, 1, "expected an expression, found ')'");
    EXPECT_ERR("12abc", 1, 1, "invalid number '12abc'");
    EXPECT_ERR("concat(a, 1.)", 1, 11, "invalid number '1.'");
    EXPECT_ERR("concat(a, 1.2.3)", 1, 11, "invalid number '1.2.3'");
    EXPECT_ERR("concat(\n  a,\n  %)", 3, 3, "unexpected character '%'");
    /* columns count characters, not bytes: 'é' is two bytes and one column */
    EXPECT_ERR("concat('\xc3\xa9', %)", 1, 13, "unexpected character '%'");
    EXPECT_ERR("concat(a, \xe2\x82\xac)", 1, 11, "unexpected character '\xe2\x82\xac'");
    EXPECT_ERR("concat(a, \x01)", 1, 11, "unexpected character '\\x01'");
    expect_err("concat(a, 'x\0y')", 16, 0, 0, "NUL byte");
}

static void test_bounds(void **state)
{
    (void)state;
    /* depth 65 is refused where it starts: each "clean(" is 6 columns */
    char deep[1024] = "";
    for (int i = 0; i < 65; i++)
        strcat(deep, "clean(");
    strcat(deep, "a");
    for (int i = 0; i < 65; i++)
        strcat(deep, ")");
    EXPECT_ERR(deep, 1, 6 * 64 + 1, "nesting deeper than 64 levels");
    /* exactly 64 levels is fine */
    char ok[1024] = "";
    for (int i = 0; i < 63; i++)
        strcat(ok, "clean(");
    strcat(ok, "a");
    for (int i = 0; i < 63; i++)
        strcat(ok, ")");
    ib_node_free(parse_ok(ok));

    /* very deep input must not recurse without bound: 100000 brackets */
    size_t n = 200001;
    char *big = malloc(n + 1);
    memset(big, '[', 100000);
    memset(big + 100000, ']', 100000);
    big[200000] = 'x';
    big[n] = '\0';
    ib_formula_err e;
    assert_null(ib_formula_parse(big, n, &e));
    assert_non_null(strstr(e.msg, "longer than 16384 bytes"));
    assert_null(ib_formula_parse(big, 10000, &e));
    assert_non_null(strstr(e.msg, "nesting deeper than 64"));
    free(big);

    /* more than 4096 parts in a formula, each list at most 64 items */
    char *wide = malloc(16384);
    size_t o = 0;
    o += (size_t)sprintf(wide + o, "[");
    for (int i = 0; i < 64 && o < 16000; i++) {
        o += (size_t)sprintf(wide + o, "%s[", i ? "," : "");
        for (int k = 0; k < 64; k++)
            o += (size_t)sprintf(wide + o, "%s1", k ? "," : "");
        o += (size_t)sprintf(wide + o, "]");
    }
    o += (size_t)sprintf(wide + o, "]");
    assert_null(ib_formula_parse(wide, o, &e));
    assert_non_null(strstr(e.msg, "more than 4096 parts"));
    free(wide);

    char many[1024] = "concat(";
    for (int i = 0; i < 65; i++)
        strcat(many, i ? ",1" : "1");
    strcat(many, ")");
    EXPECT_ERR(many, 1, 8 + 64 * 2, "more than 64 arguments");

    char longname[128];
    memset(longname, 'x', 65);
    longname[65] = '\0';
    EXPECT_ERR(longname, 1, 1, "name longer than 64");
}

static void test_raw_strings(void **state)
{
    (void)state;
    ib_node *n = parse_ok("concat('It\\'s', \"say \\\"hi\\\"\", 'a\\d\\s*', \"x'y\", 'q\"', '')");
    assert_int_equal(n->kind, IB_NODE_CALL);
    assert_int_equal(n->nkids, 6);
    assert_string_equal(n->kids[0]->text, "It's");
    assert_string_equal(n->kids[1]->text, "say \"hi\"");
    assert_string_equal(n->kids[2]->text, "a\\d\\s*"); /* backslashes stay: raw */
    assert_string_equal(n->kids[3]->text, "x'y");
    assert_string_equal(n->kids[4]->text, "q\"");
    assert_int_equal(n->kids[5]->len, 0);
    assert_int_equal(n->kids[1]->col, 17);
    ib_node_free(n);
    /* a backslash right before the closing quote escapes it: the literal goes on */
    EXPECT_ERR("concat('a\\')", 1, 8, "unterminated string literal");
    /* a backslash before the other quote character stays */
    n = parse_ok("concat(\"a\\'\")");
    assert_string_equal(n->kids[0]->text, "a\\'");
    ib_node_free(n);
}

static void test_tree(void **state)
{
    (void)state;
    ib_node *n = parse_ok("if(eq(CLASS, 'x'), [1, -2.5, FILENAME], coalesce(a, CONFIG('k')))");
    assert_int_equal(n->fn, IB_FN_IF);
    assert_int_equal(n->kids[0]->fn, IB_FN_EQ);
    assert_int_equal(n->kids[0]->kids[0]->name_kind, IB_NAME_CLASS);
    ib_node *list = n->kids[1];
    assert_int_equal(list->kind, IB_NODE_LIST);
    assert_int_equal(list->line, 1);
    assert_int_equal(list->col, 20);
    assert_true(list->kids[0]->num == 1.0);
    assert_true(list->kids[1]->num == -2.5);
    assert_int_equal(list->kids[2]->name_kind, IB_NAME_FILENAME);
    assert_int_equal(n->kids[2]->kids[0]->name_kind, IB_NAME_FIELD);
    assert_int_equal(n->kids[2]->kids[0]->field, 0);
    assert_int_equal(n->kids[2]->kids[1]->fn, IB_FN_CONFIG);

    json_t *j = ib_node_to_json(n);
    char *s = json_dumps(j, JSON_COMPACT);
    assert_non_null(strstr(s, "{\"at\":[1,1],\"call\":\"if\",\"args\":[{\"at\":[1,4],\"call\":\"eq\""));
    assert_non_null(strstr(s, "{\"at\":[1,24],\"num\":-2.5}"));
    free(s);
    json_decref(j);
    ib_node_free(n);

    /* function names ignore case; the canonical name is used in the tree */
    n = parse_ok("Upper(INPUT_COL)");
    assert_int_equal(n->fn, IB_FN_UPPER);
    assert_int_equal(n->kids[0]->name_kind, IB_NAME_INPUT_COL);
    ib_node_free(n);
}

static void test_check_errors(void **state)
{
    (void)state;
    EXPECT_ERR("nubmer(a)", 1, 1, "unknown function 'nubmer' (did you mean 'number'?)");
    EXPECT_ERR("clean(frobnicate(a))", 1, 7, "unknown function 'frobnicate'");
    EXPECT_ERR("clean(c)", 1, 7, "unknown name 'c'");
    EXPECT_ERR("clean(input_col)", 1, 7, "unknown name 'input_col'");
    EXPECT_ERR("concat(a, clean)", 1, 11, "unknown name 'clean' ('clean' is a function");
    EXPECT_ERR("regex(a)", 1, 1, "regex takes 2 to 3 arguments, got 1: regex(text, pattern[, group])");
    EXPECT_ERR("clean(a, b)", 1, 1, "clean takes 1 argument, got 2");
    EXPECT_ERR("scan_box(a, 'x', 1)", 1, 1, "scan_box takes 4 arguments, got 3");
    EXPECT_ERR("concat()", 1, 1, "concat takes at least 1 argument, got 0");
    EXPECT_ERR("regex(a, 'Total: (\\d+')", 1, 10,
               "invalid regular expression: missing closing parenthesis at offset 11");
    EXPECT_ERR("replace(a, '[a-', 'x')", 1, 12,
               "invalid regular expression: missing terminating ] for character class at offset 3");
    EXPECT_ERR("matches(a, '*x')", 1, 12,
               "invalid regular expression: quantifier does not follow a repeatable item at offset 0");
    EXPECT_ERR("regex(a, 'x(y)', 2)", 1, 18, "group 2 does not exist: the pattern has 1 group");
    EXPECT_ERR("regex(a, 'x(?<num>y)', 'nmu')", 1, 24, "the pattern has no group named 'nmu'");
    EXPECT_ERR("regex(a, 'xy', '1')", 1, 16, "group 1 does not exist: the pattern has 0 groups");
    /* Group numbers past uint32_t's range (once an undefined float-to-unsigned cast, found by fuzzing). */
    EXPECT_ERR("regex(a,'x', 7444444444444444444444)", 1, 14,
               "group 7.44444e+21 does not exist: the pattern has 0 groups");
    EXPECT_ERR("regex(a, 'x(y)', 4294967297)", 1, 18, "group 4.29497e+09 does not exist: the pattern has 1 group");
    EXPECT_ERR("regex(a, 'x(y)', 1.5)", 1, 18, "group 1.5 does not exist: the pattern has 1 group");
    EXPECT_ERR("regex(a, 'x(y)', '99999999999999999999999')", 1, 18,
               "group 99999999999999999999999 does not exist: the pattern has 1 group");
    EXPECT_ERR("date(a, 'DYM')", 1, 9, "date order 'DYM' is not one of 'DMY', 'MDY', 'YMD'");
    /* the error is in the innermost offending node */
    EXPECT_ERR("concat(a,\n  clean(regex(b, '(')))", 2, 18, "invalid regular expression");

    /* valid: named and numbered groups, patterns known only at run time */
    ib_node *n = parse_ok("regex(a, 'x(?<num>y)(z)', 'num')");
    assert_non_null(n->kids[1]->rx);
    ib_node_free(n);
    ib_node_free(parse_ok("regex(a, 'x(y)(z)', 2)"));
    ib_node_free(parse_ok("regex(a, CONFIG('pattern'), 'whatever')"));
    ib_node_free(parse_ok("date(a, 'dmy')"));
}

/* table and line_items: every pattern literal compiled, the header, end and options checked, each error at
 * the argument at fault. */
static void test_table_checks(void **state)
{
    (void)state;
    EXPECT_ERR("table(INPUT_COL, '^Description(', 'Total')", 1, 18,
               "table: the header: invalid regular expression: missing closing parenthesis at offset 13");
    EXPECT_ERR("table(INPUT_COL, 12)", 1, 18,
               "table: the header must be a regular expression or a list of column titles, not a number");
    EXPECT_ERR("table(INPUT_COL, [])", 1, 18, "table: the header list is empty: give the column titles");
    EXPECT_ERR("table(INPUT_COL, ['Qty', a])", 1, 26, "table: header title 2 must be non-empty text");
    EXPECT_ERR("table(INPUT_COL, ['Qty', '  '])", 1, 26, "table: header title 2 must be non-empty text");
    EXPECT_ERR("table(INPUT_COL, ['Qty'], 5)", 1, 27,
               "table: end must be a regular expression (text), not a number");
    EXPECT_ERR("table(INPUT_COL, ['Qty'], ['Total'])", 1, 27,
               "table: end must be a regular expression (text), not a list");
    EXPECT_ERR(
        "table(INPUT_COL, ['Qty'], 'Total[')", 1, 27,
        "table: end: invalid regular expression: missing terminating ] for character class at offset 6");
    EXPECT_ERR("table(INPUT_COL, ['Qty', 'Amount'], 'Total', '{\"columns\": [\"Qty\", \"Price\"]}')", 1, 46,
               "table: options: 'columns' names 'Price', which the header lacks");
    EXPECT_ERR("table(INPUT_COL, ['Qty'], 'Total', '{\"key\": \"Price\"}')", 1, 36,
               "table: options: 'key' names 'Price', which is not a column");
    EXPECT_ERR("table(INPUT_COL, ['Qty'], 'Total', '{\"colums\": []}')", 1, 36,
               "table: options: unknown option 'colums' (known: columns, key, row_start, bounds, continues, "
               "max_gap)");
    EXPECT_ERR(
        "table(INPUT_COL, '^Item', 'Total', '{\"row_start\": \"(\"}')", 1, 36,
        "table: options: 'row_start': invalid regular expression: missing closing parenthesis at offset 1");
    EXPECT_ERR("table(INPUT_COL, '^Item', 'Total', '{\"bounds\": [100, 50]}')", 1, 36,
               "table: options: 'bounds' must be numbers in ascending order (entry 2 is not)");
    EXPECT_ERR("table(INPUT_COL, '^Item', 'Total', '{\"continues\": 1}')", 1, 36,
               "table: options: 'continues' must be true or false");
    EXPECT_ERR("table(INPUT_COL, '^Item', 'Total', '{\"max_gap\": 0}')", 1, 36,
               "table: options: 'max_gap' must be a number of line heights above 0 (at most 1000)");
    EXPECT_ERR("table(INPUT_COL, '^Item', 'Total', '{\"columns\": {\"A\": \"x\", \"B\": \"x\"}}')", 1, 36,
               "table: options: 'columns' names the column 'x' twice");
    EXPECT_ERR("table(INPUT_COL, '^Item', 'Total', '[1]')", 1, 36,
               "table: options: options must be a JSON object, as in '{\"key\": \"Qty\"}'");
    EXPECT_ERR("table(INPUT_COL, '^Item', 'Total', '{key')", 1, 36,
               "table: options: options are not valid JSON: ");
    EXPECT_ERR("table(INPUT_COL, '^Item', 'Total', 3)", 1, 36,
               "table: options must be a JSON object in text");
    EXPECT_ERR("table(INPUT_COL)", 1, 1,
               "table takes 2 to 4 arguments, got 1: table(doc, header[, end[, options]])");
    EXPECT_ERR("line_items(INPUT_COL, 'Pos', 'Total', '^(\\d+) (.*)$')", 1, 39,
               "line_items: the line pattern has no named group: the cells are its named groups, as in "
               "'(?<qty>\\d+)'");
    EXPECT_ERR("line_items(INPUT_COL, 'Pos(', 'Total', '(?<a>x)')", 1, 23,
               "line_items: start: invalid regular expression: missing closing parenthesis at offset 4");
    EXPECT_ERR("line_items(INPUT_COL, 'Pos', 7, '(?<a>x)')", 1, 30,
               "line_items: end must be a regular expression (text), not a number");
    EXPECT_ERR("line_items(INPUT_COL, 'Pos', 'End', '(?<a>x)', '(?<b>', 'y')", 1, 48,
               "line_items: first_line: invalid regular expression");
    EXPECT_ERR("line_items(INPUT_COL, 'Pos', 'End', '(?<a>x)', '(?<b>y)', ['y'])", 1, 59,
               "line_items: last_line must be a regular expression (text), not a list");
    EXPECT_ERR("rows_where(a, 'qty', '[')", 1, 22, "invalid regular expression");
    EXPECT_ERR("sum(a, b)", 1, 1, "sum takes 1 argument, got 2: sum(list)");

    /* valid: every literal pattern compiled with the flow; run-time header, end and options */
    ib_node *n = parse_ok("line_items(INPUT_COL, 'Pos', 'Total', '(?<a>x)', '(?<b>y)', 'z')");
    for (uint32_t i = 1; i < 6; i++)
        assert_non_null(n->kids[i]->rx);
    ib_node_free(n);
    n = parse_ok("table(INPUT_COL, ['Item  no', 'Qty'], 'Total', '{\"columns\": {\"item NO\": \"item\"}, "
                 "\"key\": \"item\", \"bounds\": [10, 20.5], \"continues\": true, \"max_gap\": 4}')");
    assert_non_null(n->kids[2]->rx);
    assert_null(n->kids[1]->rx);
    ib_node_free(n);
    n = parse_ok("table(INPUT_COL, '^Item', CONFIG('end'), CONFIG('options'))");
    assert_non_null(n->kids[1]->rx);
    ib_node_free(n);
    ib_node_free(parse_ok("sum(number(column(rows_where(a, 'qty', '^\\d'), 'qty')))"));
    ib_node_free(parse_ok("count(a)"));
}

static void test_function_table(void **state)
{
    (void)state;
    for (int i = 0; i < IB_FN_COUNT_; i++) {
        const ib_func_info *f = ib_func_get((ib_fn)i);
        assert_non_null(f);
        assert_int_equal(f->id, i);
        assert_ptr_equal(ib_func_lookup(f->name, strlen(f->name)), f);
        assert_true(f->min_args <= f->max_args);
        assert_true(f->regex_arg <= f->min_args);
        assert_non_null(strstr(f->signature, f->name));
    }
    assert_null(ib_func_lookup("nope", 4));
    assert_null(ib_func_get(IB_FN_COUNT_));
    const char *spec[] = {"scan_right", "scan_below",   "scan_box",   "regex",  "regex_all",
                          "replace",    "matches",      "clean",      "trim",   "upper",
                          "lower",      "title",        "concat",     "substr", "len",
                          "split",      "join",         "nth",        "lines",  "line_containing",
                          "between",    "reading_text", "number",     "int",    "date",
                          "bool",       "if",           "coalesce",   "eq",     "contains",
                          "not",        "and",          "or",         "CONFIG", "table",
                          "line_items", "column",       "rows_where", "count",  "sum",
                          "tables"};
    for (size_t i = 0; i < sizeof spec / sizeof spec[0]; i++)
        assert_non_null(ib_func_lookup(spec[i], strlen(spec[i])));
}

static void test_regex_compile(void **state)
{
    (void)state;
    char msg[256];
    size_t off = 99;
    pcre2_code *re = ib_regex_compile("(?i)total:\\s*(\\d+)", 18, msg, sizeof msg, &off);
    assert_non_null(re);
    pcre2_code_free(re);
    assert_null(ib_regex_compile("ab(", 3, msg, sizeof msg, &off));
    assert_int_equal(off, 3);
    assert_string_equal(msg, "invalid regular expression: missing closing parenthesis at offset 3");
    char *huge = malloc(IB_REGEX_MAX_LEN + 2);
    memset(huge, 'a', IB_REGEX_MAX_LEN + 1);
    assert_null(ib_regex_compile(huge, IB_REGEX_MAX_LEN + 1, msg, sizeof msg, &off));
    free(huge);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syntax_errors), cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_raw_strings),   cmocka_unit_test(test_tree),
        cmocka_unit_test(test_check_errors),  cmocka_unit_test(test_function_table),
        cmocka_unit_test(test_regex_compile), cmocka_unit_test(test_table_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
