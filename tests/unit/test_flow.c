/* Unit tests of the flow compiler: a full valid flow, every compile error with its exact message (file, step
 * or field, position), confinement of refiner paths, bounds, and the .ibflowbin round trip and tamper checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four headers above first */
#include <cmocka.h>

#include "ib_flow.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

static void put(const char *rel, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
    for (char *p = path + strlen(tmpdir) + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ibsol-test-flow-XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static ib_flow *compile(char *err, size_t errsz)
{
    int fd = open(tmpdir, O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    ib_flow *f = ib_flow_compile_dir(fd, err, errsz);
    close(fd);
    return f;
}

static const char *const GOOD_FLOW =
    "{\"steps\": [\n"
    " {\"type\": \"process_files\", \"ocr\": {\"enabled\": true, \"languages\": [\"eng\", \"deu\"]}},\n"
    " {\"type\": \"split\", \"by\": \"regex\", \"pattern\": \"^INVOICE\\\\b\"},\n"
    " {\"type\": \"classify\", \"classes\": [\n"
    "   {\"name\": \"invoice\", \"keywords\": [\"invoice\", \"amount due\"]},\n"
    "   {\"name\": \"receipt\", \"regex\": \"(?i)\\\\breceipt\\\\b\"}], \"default\": \"other\"},\n"
    " {\"type\": \"apply_refiner\", \"programs\": {\"invoice\": \"refiners/invoice.ibrefiner\", \"*\": "
    "\"refiners/generic.ibrefiner\"}},\n"
    " {\"type\": \"validate\", \"rules\": [\n"
    "   {\"field\": \"total\", \"required\": true, \"type\": \"FLOAT\", \"min\": 0},\n"
    "   {\"field\": \"invoice_no\", \"regex\": \"^[A-Z0-9-]+$\", \"one_of\": [\"A\", 1]}]}\n"
    "]}\n";

static const char *const GOOD_INVOICE =
    "{\"fields\": [\n"
    " {\"name\": \"customer\", \"formula\": \"concat(first_name, ' ', last_name)\"},\n"
    " {\"name\": \"first_name\", \"formula\": \"clean(scan_right(INPUT_COL, 'First Name:'))\"},\n"
    " {\"name\": \"last_name\", \"formula\": \"clean(scan_right(INPUT_COL, 'Last Name:'))\"},\n"
    " {\"name\": \"total\", \"formula\": \"number(regex(INPUT_COL, 'Total:\\\\s*\\\\$?([0-9.,]+)'))\", "
    "\"type\": "
    "\"FLOAT\"},\n"
    " {\"name\": \"due\", \"formula\": \"date(scan_below(INPUT_COL, 'Due Date'))\", \"type\": \"DATE\"},\n"
    " {\"name\": \"invoice_no\", \"formula\": \"regex(INPUT_COL, 'Invoice\\\\s+#?(?<no>[A-Z0-9-]+)', "
    "'no')\"}\n"
    "]}\n";

static const char *const GOOD_GENERIC =
    "{\"fields\": [{\"name\": \"text\", \"formula\": \"reading_text(INPUT_COL)\"},\n"
    " {\"name\": \"total\", \"formula\": \"CONFIG('x')\"}]}";

static void write_good(void)
{
    put("flow.json", GOOD_FLOW);
    put("refiners/invoice.ibrefiner", GOOD_INVOICE);
    put("refiners/generic.ibrefiner", GOOD_GENERIC);
}

static void test_valid_flow(void **state)
{
    (void)state;
    write_good();
    char err[1024] = "";
    ib_flow *f = compile(err, sizeof err);
    if (!f) fail_msg("%s", err);
    assert_int_equal(f->nsteps, 5);
    assert_int_equal(f->steps[1], IB_STEP_SPLIT);
    assert_true(f->ocr_enabled);
    assert_string_equal(f->ocr_langs, "eng+deu");
    assert_int_equal(f->split_by, IB_SPLIT_REGEX);
    assert_non_null(f->split_regex.code);
    assert_int_equal(f->nclasses, 2);
    assert_int_equal(f->classes[0].nkeywords, 2);
    assert_non_null(f->classes[1].regex.code);
    assert_string_equal(f->default_class, "other");
    assert_int_equal(f->nprograms, 2);
    const ib_flow_program *inv = ib_flow_program_for(f, "invoice");
    assert_string_equal(inv->path, "refiners/invoice.ibrefiner");
    assert_string_equal(ib_flow_program_for(f, "receipt")->path, "refiners/generic.ibrefiner");
    assert_string_equal(ib_flow_program_for(f, NULL)->path, "refiners/generic.ibrefiner");
    /* results keep the declared order; evaluation puts customer after the fields it uses */
    assert_int_equal(inv->nfields, 6);
    assert_string_equal(inv->fields[0].name, "customer");
    assert_int_equal(inv->fields[3].type, IB_FT_FLOAT);
    assert_int_equal(inv->fields[4].type, IB_FT_DATE);
    assert_int_equal(inv->order[0], 1);
    assert_int_equal(inv->order[1], 2);
    assert_int_equal(inv->order[2], 0);
    assert_int_equal(inv->order[3], 3);
    assert_int_equal(f->nrules, 2);
    assert_true(f->rules[0].required && f->rules[0].has_min && f->rules[0].min == 0 && !f->rules[0].has_max);
    assert_int_equal(json_array_size(f->rules[1].one_of), 2);
    ib_flow_free(f);

    /* the smallest flow: defaults */
    put("flow.json", "{\"steps\": [{\"type\": \"process_files\"}, {\"type\": \"apply_refiner\", \"program\": "
                     "\"refiners/generic.ibrefiner\"}]}");
    f = compile(err, sizeof err);
    if (!f) fail_msg("%s", err);
    assert_false(f->ocr_enabled);
    assert_string_equal(f->ocr_langs, "eng");
    assert_int_equal(f->split_by, IB_SPLIT_NONE);
    assert_false(f->has_classify);
    assert_string_equal(ib_flow_program_for(f, "anything")->path, "refiners/generic.ibrefiner");
    ib_flow_free(f);
}

/* Writes flow.json (and the good refiners), compiles, expects failure with exactly `want`. */
static void expect_flow_err(const char *flow, const char *want)
{
    write_good();
    put("flow.json", flow);
    char err[1024] = "";
    ib_flow *f = compile(err, sizeof err);
    if (f) {
        ib_flow_free(f);
        fail_msg("flow %.200s: compiled, expected '%s'", flow, want);
    }
    if (strncmp(err, want, strlen(want)) != 0) fail_msg("got '%s'\nexpected '%s'", err, want);
}

#define PF "{\"type\": \"process_files\"}"
#define AR "{\"type\": \"apply_refiner\", \"program\": \"refiners/invoice.ibrefiner\"}"

static void test_flow_errors(void **state)
{
    (void)state;
    expect_flow_err("{\"steps\": [" PF ", {\"type\": \"spilt\", \"by\": \"page\"}, " AR "]}",
                    "flow.json: steps[1]: unknown step type 'spilt'");
    expect_flow_err("{\"steps\": [" AR ", " PF "]}",
                    "flow.json: steps[0]: the first step must be 'process_files', not 'apply_refiner'");
    expect_flow_err("{\"steps\": [" PF ", " AR ", " AR "]}",
                    "flow.json: steps[2]: step 'apply_refiner' appears twice (also steps[1])");
    expect_flow_err("{\"steps\": [" PF ", " AR ", {\"type\": \"split\", \"by\": \"page\"}]}",
                    "flow.json: steps[2]: step 'split' must come before 'apply_refiner'");
    expect_flow_err("{\"steps\": [" PF ", {\"type\": \"split\", \"by\": \"page\"}]}",
                    "flow.json: missing the required step 'apply_refiner'");
    expect_flow_err("{\"steps\": []}", "flow.json: 'steps' must be a non-empty list");
    expect_flow_err("[1]", "flow.json: must be a JSON object with 'steps'");
    expect_flow_err("{\"steps\": [1]}", "flow.json: steps[0]: must be an object with a 'type'");
    expect_flow_err("{\"steps\": [{\"typ\": 1}]}", "flow.json: steps[0]: 'type' must be a string");
    expect_flow_err("{\"steps\": [\n" PF ",\n  {\"type\": }]}",
                    "flow.json: invalid JSON at line 3 column 12:");
    expect_flow_err("{\"steps\": [], \"steps\": []}",
                    "flow.json: invalid JSON at line 1 column 21: duplicate object key");
    /* process_files */
    expect_flow_err("{\"steps\": [{\"type\": \"process_files\", \"ocr\": true}, " AR "]}",
                    "flow.json: process_files: 'ocr' must be an object");
    expect_flow_err("{\"steps\": [{\"type\": \"process_files\", \"ocr\": {\"enabled\": 1}}, " AR "]}",
                    "flow.json: process_files: ocr: 'enabled' must be true or false");
    expect_flow_err("{\"steps\": [{\"type\": \"process_files\", \"ocr\": {\"languages\": [\"e ng\"]}}, " AR
                    "]}",
                    "flow.json: process_files: ocr: languages[0] must be a tesseract language code");
    expect_flow_err("{\"steps\": [{\"type\": \"process_files\", \"ocr\": {\"enable\": true}}, " AR "]}",
                    "flow.json: process_files: ocr: unknown key 'enable' (known: 'enabled', 'languages')");
    expect_flow_err("{\"steps\": [{\"type\": \"process_files\", \"orc\": {}}, " AR "]}",
                    "flow.json: process_files: unknown key 'orc'");
    /* split */
    expect_flow_err("{\"steps\": [" PF ", {\"type\": \"split\", \"by\": \"line\"}, " AR "]}",
                    "flow.json: split: 'by' must be \"page\" or \"regex\"");
    expect_flow_err("{\"steps\": [" PF ", {\"type\": \"split\", \"by\": \"regex\"}, " AR "]}",
                    "flow.json: split: \"by\": \"regex\" needs a 'pattern'");
    expect_flow_err(
        "{\"steps\": [" PF ", {\"type\": \"split\", \"by\": \"regex\", \"pattern\": \"(INVOICE\"}, " AR "]}",
        "flow.json: split: 'pattern': invalid regular expression: missing closing parenthesis at offset 8");
    expect_flow_err("{\"steps\": [" PF ", {\"type\": \"split\", \"by\": \"page\", \"pattern\": \"x\"}, " AR
                    "]}",
                    "flow.json: split: 'pattern' is only for \"by\": \"regex\"");
    /* classify */
    expect_flow_err("{\"steps\": [" PF ", {\"type\": \"classify\", \"classes\": []}, " AR "]}",
                    "flow.json: classify: 'classes' must be a list of 1 to 256 classes");
    expect_flow_err("{\"steps\": [" PF ", {\"type\": \"classify\", \"classes\": [{\"name\": \"a\"}]}, " AR
                    "]}",
                    "flow.json: classify: classes[0] ('a'): needs 'keywords' or 'regex'");
    expect_flow_err("{\"steps\": [" PF
                    ", {\"type\": \"classify\", \"classes\": [{\"name\": \"a\", \"regex\": \"x\"}, "
                    "{\"name\": \"a\", \"regex\": \"y\"}]}, " AR "]}",
                    "flow.json: classify: classes[1]: duplicate class name 'a'");
    expect_flow_err(
        "{\"steps\": [" PF
        ", {\"type\": \"classify\", \"classes\": [{\"name\": \"a\", \"regex\": \"[\"}]}, " AR "]}",
        "flow.json: classify: classes[0]: 'regex': invalid regular expression: missing terminating ]");
    expect_flow_err("{\"steps\": [" PF
                    ", {\"type\": \"classify\", \"classes\": [{\"name\": \"a\", \"keywords\": []}]}, " AR
                    "]}",
                    "flow.json: classify: classes[0] ('a'): 'keywords' must be a list of 1 to 64 strings");
    /* apply_refiner */
    expect_flow_err("{\"steps\": [" PF
                    ", {\"type\": \"apply_refiner\", \"program\": \"refiners/x.ibrefiner\"}]}",
                    "flow.json: apply_refiner: refiner file 'refiners/x.ibrefiner' does not exist");
    expect_flow_err(
        "{\"steps\": [" PF ", {\"type\": \"apply_refiner\"}]}",
        "flow.json: apply_refiner: needs either 'program' (one refiner file) or 'programs' (by class)");
    expect_flow_err(
        "{\"steps\": [" PF ", {\"type\": \"apply_refiner\", \"program\": \"../x.ibrefiner\"}]}",
        "flow.json: apply_refiner: refiner path '../x.ibrefiner' must be relative inside the content folder");
    expect_flow_err("{\"steps\": [" PF ", {\"type\": \"apply_refiner\", \"program\": \"/etc/passwd\"}]}",
                    "flow.json: apply_refiner: refiner path '/etc/passwd' must be relative");
    expect_flow_err("{\"steps\": [" PF ", {\"type\": \"apply_refiner\", \"program\": \"refiners\"}]}",
                    "flow.json: apply_refiner: refiner file 'refiners' is not a regular file");
    expect_flow_err(
        "{\"steps\": [" PF ", {\"type\": \"apply_refiner\", \"programs\": {\"invoice\": "
        "\"refiners/invoice.ibrefiner\"}}]}",
        "flow.json: apply_refiner: programs: class 'invoice' needs a classify step before apply_refiner");
    expect_flow_err("{\"steps\": [" PF
                    ", {\"type\": \"classify\", \"classes\": [{\"name\": \"a\", \"regex\": \"x\"}]}, "
                    "{\"type\": \"apply_refiner\", \"programs\": {\"b\": \"refiners/invoice.ibrefiner\"}}]}",
                    "flow.json: apply_refiner: programs: 'b' is not a class of the classify step");
    /* validate */
    expect_flow_err("{\"steps\": [" PF ", " AR
                    ", {\"type\": \"validate\", \"rules\": [{\"field\": \"totl\"}]}]}",
                    "flow.json: validate: rules[0]: field 'totl' is not a field of any refiner program");
    expect_flow_err(
        "{\"steps\": [" PF ", " AR ", {\"type\": \"validate\", \"rules\": [{\"field\": \"total\", \"type\": "
        "\"REAL\"}]}]}",
        "flow.json: validate: rules[0]: 'type' must be one of TEXT, INT, FLOAT, DATE, BOOL, LIST, TABLE");
    /* rules over rows */
#define VR(rule)                                                                                             \
    "{\"steps\": [" PF ", " AR ", {\"type\": \"validate\", \"rules\": [{\"field\": \"total\", " rule "}]}]}"
    expect_flow_err(
        VR("\"sum_equals\": {\"column\": \"amount\", \"field\": \"totl\"}"),
        "flow.json: validate: rules[0]: sum_equals: field 'totl' is not a field of any refiner program");
    expect_flow_err(VR("\"sum_equals\": {\"column\": \"amount\", \"field\": \"total\", \"tolerance\": -1}"),
                    "flow.json: validate: rules[0]: sum_equals: 'tolerance' must be a number of 0 or more");
    expect_flow_err(VR("\"sum_equals\": {\"column\": \"amount\", \"feld\": \"total\"}"),
                    "flow.json: validate: rules[0]: sum_equals: unknown key 'feld'");
    expect_flow_err(VR("\"min_rows\": -1"),
                    "flow.json: validate: rules[0]: 'min_rows' must be a whole number from 0 to 100000");
    expect_flow_err(
        VR("\"columns\": {\"qty\": {\"type\": \"LIST\"}}"),
        "flow.json: validate: rules[0]: columns: 'qty': 'type' must be one of TEXT, INT, FLOAT, DATE, BOOL");
    expect_flow_err(VR("\"columns\": {\"qty\": {\"regex\": \"(\"}}"),
                    "flow.json: validate: rules[0]: columns: 'qty': 'regex': invalid regular expression");
#undef VR
    expect_flow_err(
        "{\"steps\": [" PF ", " AR ", {\"type\": \"validate\", \"rules\": [{\"field\": \"total\", \"regex\": "
        "\"a{2,1}\"}]}]}",
        "flow.json: validate: rules[0]: 'regex': invalid regular expression: numbers out of order");
    expect_flow_err("{\"steps\": [" PF ", " AR
                    ", {\"type\": \"validate\", \"rules\": [{\"field\": \"total\", \"min\": "
                    "\"0\"}]}]}",
                    "flow.json: validate: rules[0]: 'min' must be a number");
    expect_flow_err("{\"steps\": [" PF ", " AR
                    ", {\"type\": \"validate\", \"rules\": [{\"field\": \"total\", "
                    "\"requird\": true}]}]}",
                    "flow.json: validate: rules[0]: unknown key 'requird'");
    expect_flow_err("{\"steps\": [" PF ", " AR
                    ", {\"type\": \"validate\", \"rules\": [{\"field\": \"total\", "
                    "\"one_of\": [[1]]}]}]}",
                    "flow.json: validate: rules[0]: 'one_of' must be a list of 1 to 1000 strings or numbers");
}

static void test_missing_flow(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/flow.json", tmpdir);
    unlink(path);
    char err[512];
    assert_null(compile(err, sizeof err));
    assert_string_equal(err, "flow.json: missing from the content folder");
}

static void test_confinement(void **state)
{
    (void)state;
    write_good();
    char path[512];
    snprintf(path, sizeof path, "%s/refiners/escape.ibrefiner", tmpdir);
    unlink(path);
    assert_int_equal(symlink("/etc/passwd", path), 0);
    expect_flow_err(
        "{\"steps\": [" PF ", {\"type\": \"apply_refiner\", \"program\": \"refiners/escape.ibrefiner\"}]}",
        "flow.json: apply_refiner: refiner file 'refiners/escape.ibrefiner' leaves the content folder");
    unlink(path);
    /* a symlink inside the folder is fine */
    assert_int_equal(symlink("invoice.ibrefiner", path), 0);
    put("flow.json",
        "{\"steps\": [" PF ", {\"type\": \"apply_refiner\", \"program\": \"refiners/escape.ibrefiner\"}]}");
    char err[512];
    ib_flow *f = compile(err, sizeof err);
    if (!f) fail_msg("%s", err);
    ib_flow_free(f);
    unlink(path);
}

/* Writes a refiner and a flow using it; expects failure with exactly `want`. */
static void expect_refiner_err(const char *refiner, const char *want)
{
    write_good();
    put("refiners/invoice.ibrefiner", refiner);
    put("flow.json", "{\"steps\": [" PF ", " AR "]}");
    char err[1024] = "";
    ib_flow *f = compile(err, sizeof err);
    if (f) {
        ib_flow_free(f);
        fail_msg("refiner %.200s: compiled, expected '%s'", refiner, want);
    }
    if (strncmp(err, want, strlen(want)) != 0) fail_msg("got '%s'\nexpected '%s'", err, want);
}

#define RF(name, formula) "{\"name\": \"" name "\", \"formula\": \"" formula "\"}"

static void test_refiner_errors(void **state)
{
    (void)state;
    const char *R = "refiners/invoice.ibrefiner";
    (void)R;
    expect_refiner_err(
        "{\"fields\": [" RF("total", "number(nubmer(INPUT_COL))") "]}",
        "refiners/invoice.ibrefiner: field 'total': line 1 column 8: unknown function 'nubmer'");
    expect_refiner_err(
        "{\"fields\": [" RF("total", "regex(INPUT_COL)") "]}",
        "refiners/invoice.ibrefiner: field 'total': line 1 column 1: regex takes 2 to 3 arguments, got 1");
    expect_refiner_err("{\"fields\": [" RF("a", "clean(INPUT_COL)") ", " RF("b", "concat(a,\\n  totl)") "]}",
                       "refiners/invoice.ibrefiner: field 'b': line 2 column 3: unknown name 'totl'");
    expect_refiner_err(
        "{\"fields\": [" RF("total", "regex(INPUT_COL, 'Total: ([0-9]+')") "]}",
        "refiners/invoice.ibrefiner: field 'total': line 1 column 18: invalid regular expression: "
        "missing closing parenthesis at offset 14");
    expect_refiner_err("{\"fields\": [" RF("total", "clean(INPUT_COL") "]}",
                       "refiners/invoice.ibrefiner: field 'total': line 1 column 16: expected ',' or ')'");
    expect_refiner_err(
        "{\"fields\": [" RF("a", "b") ", " RF("b", "concat(FILENAME, c)") ", " RF("c", "clean(a)") "]}",
        "refiners/invoice.ibrefiner: field 'a': line 1 column 1: circular reference: a -> b -> c -> a");
    expect_refiner_err("{\"fields\": [" RF("x", "clean(INPUT_COL)") ", " RF("a", "concat(x, a)") "]}",
                       "refiners/invoice.ibrefiner: field 'a': line 1 column 11: circular reference: a -> a");
    expect_refiner_err("{\"fields\": [" RF("a", "x") ", " RF("a", "x") "]}",
                       "refiners/invoice.ibrefiner: fields[1]: duplicate field name 'a' (also fields[0])");
    expect_refiner_err("{\"fields\": [" RF("1a", "x") "]}",
                       "refiners/invoice.ibrefiner: fields[0]: field name '1a' is not an identifier");
    expect_refiner_err("{\"fields\": [" RF("first name", "x") "]}",
                       "refiners/invoice.ibrefiner: fields[0]: field name 'first name' is not an identifier");
    expect_refiner_err("{\"fields\": [" RF("CLASS", "x") "]}",
                       "refiners/invoice.ibrefiner: fields[0]: field name 'CLASS' is reserved");
    expect_refiner_err("{\"fields\": [{\"name\": \"a\", \"formula\": \"FILENAME\", \"type\": \"FLAOT\"}]}",
                       "refiners/invoice.ibrefiner: field 'a': type must be one of TEXT, INT, FLOAT, DATE, "
                       "BOOL, LIST, TABLE");
    /* a TABLE field's column types */
    expect_refiner_err(
        "{\"fields\": [{\"name\": \"a\", \"formula\": \"FILENAME\", \"columns\": {\"q\": \"INT\"}}]}",
        "refiners/invoice.ibrefiner: field 'a': 'columns' is only for fields of type TABLE");
    expect_refiner_err(
        "{\"fields\": [{\"name\": \"a\", \"formula\": \"FILENAME\", \"type\": \"TABLE\", \"columns\": []}]}",
        "refiners/invoice.ibrefiner: field 'a': 'columns' must be an object of 1 to 64 column names to "
        "types");
    expect_refiner_err(
        "{\"fields\": [{\"name\": \"a\", \"formula\": \"FILENAME\", \"type\": \"TABLE\", "
        "\"columns\": {\"q\": \"INT\", \"items\": \"LIST\"}}]}",
        "refiners/invoice.ibrefiner: field 'a': columns: 'items': type must be one of TEXT, INT, "
        "FLOAT, DATE, BOOL");
    expect_refiner_err("{\"fields\": [{\"name\": \"a\"}]}",
                       "refiners/invoice.ibrefiner: field 'a': 'formula' must be a string");
    expect_refiner_err("{\"fields\": [{\"formula\": \"x\"}]}",
                       "refiners/invoice.ibrefiner: fields[0]: 'name' must be a string");
    expect_refiner_err("{\"fields\": []}", "refiners/invoice.ibrefiner: 'fields' is empty");
    expect_refiner_err("{\"field\": []}", "refiners/invoice.ibrefiner: 'fields' must be a list");
    expect_refiner_err("{\"fields\": [", "refiners/invoice.ibrefiner: invalid JSON at line 1 column 12:");
    expect_refiner_err(
        "{\"fields\": [{\"name\": \"a\", \"formula\": \"concat('x\\u0000y')\"}]}",
        "refiners/invoice.ibrefiner: invalid JSON at line 1 column 57: \\u0000 is not allowed");

    /* bounds: a file over 1 MiB, a formula nested a thousand deep */
    size_t n = (1u << 20) + 10;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    big[n] = '\0';
    big[0] = '{';
    big[n - 1] = '}';
    expect_refiner_err(
        big,
        "flow.json: apply_refiner: refiner file 'refiners/invoice.ibrefiner' is larger than 1048576 bytes");
    char *deep = big;
    strcpy(deep, "{\"fields\": [{\"name\": \"a\", \"formula\": \"");
    for (int i = 0; i < 1000; i++)
        strcat(deep, "[");
    strcat(deep, "\"}]}");
    expect_refiner_err(
        deep, "refiners/invoice.ibrefiner: field 'a': line 1 column 65: nesting deeper than 64 levels");
    /* too many fields */
    strcpy(big, "{\"fields\": [");
    for (int i = 0; i < 1001; i++)
        sprintf(big + strlen(big), "%s{\"name\": \"f%d\", \"formula\": \"FILENAME\"}", i ? "," : "", i);
    strcat(big, "]}");
    expect_refiner_err(big, "refiners/invoice.ibrefiner: more than 1000 fields");
    /* a long chain of dependencies orders without deep recursion */
    strcpy(big, "{\"fields\": [");
    for (int i = 0; i < 1000; i++)
        sprintf(big + strlen(big), "%s{\"name\": \"f%d\", \"formula\": \"%s%d\"}", i ? "," : "", i,
                i < 999 ? "f" : "FILENAME", i + 1);
    strcat(big, "]}");
    put("refiners/invoice.ibrefiner", big);
    char *fx = strstr(big, "FILENAME1000");
    memcpy(fx, "FILENAME    ", 12);
    put("refiners/invoice.ibrefiner", big);
    put("flow.json", "{\"steps\": [" PF ", " AR "]}");
    char err[512];
    ib_flow *f = compile(err, sizeof err);
    if (!f) fail_msg("%s", err);
    assert_int_equal(f->programs[0].order[0], 999);
    assert_int_equal(f->programs[0].order[999], 0);
    ib_flow_free(f);
    free(big);
}

/* A TABLE field's column types survive the .ibflowbin, in their order. */
static void test_table_columns_kept(void **state)
{
    (void)state;
    write_good();
    put("refiners/invoice.ibrefiner",
        "{\"fields\": [{\"name\": \"items\", \"type\": \"TABLE\", \"formula\": \"table(INPUT_COL, ['Qty', "
        "'Amount'])\", \"columns\": {\"Qty\": \"INT\", \"Amount\": \"FLOAT\"}}]}");
    put("flow.json", "{\"steps\": [" PF ", " AR "]}");
    char err[1024];
    ib_flow *f = compile(err, sizeof err);
    if (!f) fail_msg("%s", err);
    char *bin = NULL;
    size_t len = 0;
    assert_int_equal(ib_flow_encode(f, "invoice", "1.2.3", &bin, &len), 0);
    ib_flow *g = ib_flow_decode(bin, len, err, sizeof err);
    if (!g) fail_msg("%s", err);
    const ib_flow_field *fl = &g->programs[0].fields[0];
    assert_int_equal(fl->type, IB_FT_TABLE);
    char *cols = json_dumps(fl->columns, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_string_equal(cols, "{\"Qty\":\"INT\",\"Amount\":\"FLOAT\"}");
    free(cols);
    free(bin);
    ib_flow_free(g);
    ib_flow_free(f);
}

static json_t *prog_field(json_t *bin, const char *prog, size_t i)
{
    json_t *p = json_object_get(json_object_get(bin, "programs"), prog);
    return json_array_get(json_object_get(p, "fields"), i);
}

static void test_encode_decode(void **state)
{
    (void)state;
    write_good();
    char err[1024];
    ib_flow *f = compile(err, sizeof err);
    if (!f) fail_msg("%s", err);
    char *bin = NULL, *bin2 = NULL;
    size_t len = 0, len2 = 0;
    assert_int_equal(ib_flow_encode(f, "invoice", "1.2.3", &bin, &len), 0);
    ib_flow *g = ib_flow_decode(bin, len, err, sizeof err);
    if (!g) fail_msg("%s", err);
    assert_string_equal(g->name, "invoice");
    assert_string_equal(g->version, "1.2.3");
    assert_int_equal(g->nsteps, f->nsteps);
    assert_int_equal(g->nprograms, 2);
    assert_string_equal(g->ocr_langs, "eng+deu");
    assert_int_equal(g->nclasses, 2);
    assert_int_equal(g->nrules, 2);
    const ib_flow_program *p = ib_flow_program_for(g, "invoice");
    assert_int_equal(p->order[2], 0);
    assert_non_null(p->fields[5].root->kids[1]->rx);
    /* decode then encode gives the same bytes: the compiled form is stable */
    assert_int_equal(ib_flow_encode(g, "invoice", "1.2.3", &bin2, &len2), 0);
    assert_int_equal(len, len2);
    assert_memory_equal(bin, bin2, len);
    /* and so does compiling the same folder again */
    ib_flow *h = compile(err, sizeof err);
    free(bin2);
    assert_int_equal(ib_flow_encode(h, "invoice", "1.2.3", &bin2, &len2), 0);
    assert_memory_equal(bin, bin2, len);
    free(bin2);
    ib_flow_free(h);
    ib_flow_free(g);

    /* tampering */
    json_t *doc = json_loadb(bin, len, 0, NULL);
    json_t *t = json_deep_copy(doc);
    json_object_set_new(prog_field(t, "refiners/invoice.ibrefiner", 0), "formula", json_string("nubmer(x)"));
    char *s = json_dumps(t, 0);
    assert_null(ib_flow_decode(s, strlen(s), err, sizeof err));
    assert_string_equal(
        err, "compiled flow (.ibflowbin): refiners/invoice.ibrefiner: field 'customer': line 1 column 1: "
             "unknown function 'nubmer' (did you mean 'number'?)");
    free(s);
    json_decref(t);

    t = json_deep_copy(doc);
    json_t *tree = json_object_get(prog_field(t, "refiners/generic.ibrefiner", 0), "tree");
    json_object_set_new(tree, "call", json_string("scan_right"));
    s = json_dumps(t, 0);
    assert_null(ib_flow_decode(s, strlen(s), err, sizeof err));
    assert_string_equal(
        err, "compiled flow (.ibflowbin): refiners/generic.ibrefiner: field 'text': stored tree does not "
             "match its formula");
    free(s);
    json_decref(t);

    t = json_deep_copy(doc);
    json_object_set_new(json_object_get(t, "programs"), "refiners/extra", json_pack("{s:[]}", "fields"));
    s = json_dumps(t, 0);
    assert_null(ib_flow_decode(s, strlen(s), err, sizeof err));
    assert_non_null(strstr(err, "'programs' holds programs the flow does not use"));
    free(s);
    json_decref(t);

    t = json_deep_copy(doc);
    json_object_del(json_object_get(t, "programs"), "refiners/generic.ibrefiner");
    s = json_dumps(t, 0);
    assert_null(ib_flow_decode(s, strlen(s), err, sizeof err));
    assert_non_null(strstr(err, "refiner program 'refiners/generic.ibrefiner' is not in the compiled flow"));
    free(s);
    json_decref(t);

    t = json_deep_copy(doc);
    json_object_set_new(t, "format_version", json_integer(2));
    s = json_dumps(t, 0);
    assert_null(ib_flow_decode(s, strlen(s), err, sizeof err));
    assert_non_null(strstr(err, "unsupported format_version"));
    free(s);
    json_decref(t);

    t = json_deep_copy(doc);
    json_array_remove(json_object_get(json_object_get(t, "flow"), "steps"), 0);
    s = json_dumps(t, 0);
    assert_null(ib_flow_decode(s, strlen(s), err, sizeof err));
    assert_string_equal(
        err, "compiled flow (.ibflowbin): flow: steps[0]: the first step must be 'process_files', not "
             "'split'");
    free(s);
    json_decref(t);
    json_decref(doc);

    /* every truncation of the bytes is refused cleanly */
    for (size_t cut = 0; cut < len; cut += 97)
        assert_null(ib_flow_decode(bin, cut, err, sizeof err));
    assert_null(ib_flow_decode("{\"format\":\"zip\"}", 16, err, sizeof err));
    assert_string_equal(err, "compiled flow (.ibflowbin): not an ibflowbin document");
    free(bin);
    ib_flow_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_flow),         cmocka_unit_test(test_flow_errors),
        cmocka_unit_test(test_missing_flow),       cmocka_unit_test(test_confinement),
        cmocka_unit_test(test_refiner_errors),     cmocka_unit_test(test_encode_decode),
        cmocka_unit_test(test_table_columns_kept),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
