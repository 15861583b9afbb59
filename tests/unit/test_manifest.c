/* Unit tests of ib_manifest: a full package.json passes and keeps unknown keys; each broken field is refused
 * with a message naming the file and the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ib_manifest.h"

#define BASE                                                                                                 \
    "\"name\":\"invoice_solution\",\"version\":\"1.2.0-rc.1\",\"short_description\":\"Reads invoices\","     \
    "\"authors\":[\"Jay Doe\"]"

static void test_names(void **state)
{
    /* names as the original product has them */
    assert_true(ib_solution_name_ok("invoice_solution"));
    assert_true(ib_solution_name_ok("9lives.v2-x"));
    assert_true(ib_solution_name_ok("a"));
    assert_true(ib_solution_name_ok("Demo Solution"));
    assert_true(ib_solution_name_ok("Smith & Sons (EU) 'W-2'"));
    assert_true(ib_solution_name_ok("M\xc3\xbcller Rechnungen \xe8\xab\x8b\xe6\xb1\x82\xe6\x9b\xb8"));
    assert_true(ib_solution_name_ok("_x"));
    assert_true(ib_solution_name_ok(".x"));
    assert_true(ib_solution_name_ok("..."));
    char max[IB_SOLUTION_NAME_MAX + 2];
    memset(max, 'a', IB_SOLUTION_NAME_MAX);
    max[IB_SOLUTION_NAME_MAX] = '\0';
    assert_true(ib_solution_name_ok(max));
    max[IB_SOLUTION_NAME_MAX] = 'a';
    max[IB_SOLUTION_NAME_MAX + 1] = '\0';
    assert_string_equal(ib_solution_name_problem(max), "it is longer than 128 bytes");

    assert_string_equal(ib_solution_name_problem(""), "it is empty");
    assert_string_equal(ib_solution_name_problem(NULL), "it is empty");
    assert_string_equal(ib_solution_name_problem("a/b"), "it holds a '/'");
    assert_string_equal(ib_solution_name_problem("a\\b"), "it holds a '\\'");
    assert_string_equal(ib_solution_name_problem("."), "it is '.' or '..'");
    assert_string_equal(ib_solution_name_problem(".."), "it is '.' or '..'");
    assert_string_equal(ib_solution_name_problem("../x"), "it holds a '/'");
    assert_string_equal(ib_solution_name_problem("a\x01z"), "it holds a control character");
    assert_string_equal(ib_solution_name_problem("a\tz"), "it holds a control character");
    assert_string_equal(ib_solution_name_problem("a\x7fz"), "it holds a control character");
    assert_string_equal(ib_solution_name_problem("a\xc2\x85z"), "it holds a control character"); /* U+0085 */
    assert_null(ib_solution_name_problem("a\xc2\xa0z"));                                         /* U+00A0 */
    assert_string_equal(ib_solution_name_problem(" a"), "it starts with a space");
    assert_string_equal(ib_solution_name_problem("a "), "it ends with a space");
    assert_string_equal(ib_solution_name_problem("a\xff"), "it is not valid UTF-8");
    assert_string_equal(ib_solution_name_problem("a\xc3"), "it is not valid UTF-8"); /* cut character */

    char msg[1024];
    ib_solution_name_error("name", "a/b", msg, sizeof msg);
    assert_string_equal(msg, "'name' 'a/b' is not a solution name: it holds a '/' (names are 1-128 bytes of "
                             "printable UTF-8 without '/' or '\\', not starting or ending with a space, not "
                             "'.' or '..')");
    /* a very long name is shown cut, never inside a character */
    char longname[400];
    memset(longname, 'a', 159);
    strcpy(longname + 159, "\xc3\xbc");
    memset(longname + 161, 'b', 100);
    longname[261] = '\0';
    ib_solution_name_error("name", longname, msg, sizeof msg);
    assert_non_null(strstr(msg, "aaaa...' is not a solution name: it is longer than 128 bytes"));
}

static void test_dirs(void **state)
{
    char d[200], n[200];
    assert_string_equal(ib_solution_dir("Demo Solution", d, sizeof d), "Demo Solution");
    /* a dot name never looks like the marketplace's temporaries, and maps back */
    assert_string_equal(ib_solution_dir(".tmp-x", d, sizeof d), " .tmp-x");
    assert_string_equal(ib_solution_from_dir(" .tmp-x", n, sizeof n), ".tmp-x");
    assert_string_equal(ib_solution_from_dir("Demo Solution", n, sizeof n), "Demo Solution");
    assert_null(ib_solution_from_dir(".tmp-x", n, sizeof n));
    assert_null(ib_solution_from_dir(".lock", n, sizeof n));
    assert_null(ib_solution_from_dir(" x", n, sizeof n)); /* only dot names get the space */
    assert_null(ib_solution_from_dir(" ..", n, sizeof n));
    assert_null(ib_solution_from_dir("a\x01", n, sizeof n));
}

/* Parses s, which must pass with no message; the caller owns the manifest. */
static json_t *expect_good(const char *s)
{
    char err[512] = "";
    json_t *m = ib_manifest_parse(s, strlen(s), "package.json", err, sizeof err);
    if (!m) fail_msg("refused: %s", err);
    assert_string_equal(err, "");
    return m;
}

static void test_good(void **state)
{
    const char *s =
        "{" BASE ",\"long_description\":\"More\",\"solution_type\":\"ibflowbin\",\"accelerator_type\":\"x\","
        "\"industry\":\"Finance\",\"business_vertical\":\"b\",\"use_case\":\"u\",\"icon_file\":\"icon.png\","
        "\"visibility\":\"public\",\"beta\":true,\"dependencies\":{\"x\":\"1.0.0\"},\"owner\":\"jaydoe\","
        "\"custom\":{\"kept\":[1,2]}}";
    json_t *m = expect_good(s);
    assert_string_equal(json_string_value(json_object_get(m, "name")), "invoice_solution");
    json_t *custom = json_object_get(m, "custom");
    assert_non_null(custom);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(custom, "kept"), 1)), 2);
    json_decref(m);

    /* Not NUL-terminated input: only len bytes count. */
    char err[512] = "", buf[256];
    int n = snprintf(buf, sizeof buf, "{" BASE "}garbage");
    m = ib_manifest_parse(buf, (size_t)n - 7, "package.json", err, sizeof err);
    assert_non_null(m);
    json_decref(m);
}

/* package.json as the original product writes it: lists, encryption_config, owner, dependencies; kept whole. */
static void test_original_product(void **state)
{
    const char *s = "{\"name\":\"Demo Solution\",\"version\":\"1.0.0\",\"short_description\":\"d\","
                    "\"authors\":[\"Jay Doe\"],\"accelerator_type\":[\"solution\"],"
                    "\"industry\":[\"Financial Services\",\"Insurance\"],\"business_vertical\":[],"
                    "\"use_case\":[\"W-2\"],\"encryption_config\":{\"encryption_type\":\"none\"},"
                    "\"owner\":\"jaydoe\",\"visibility\":\"PRIVATE\",\"icon_file\":\"icon.png\",\"beta\":false,"
                    "\"dependencies\":{\"models\":[\"my_model==0.0.5\"],"
                    "\"dev_exchange_packages\":[\"my_pkg==1.0.6\",\"other==0.0.2\"],\"later\":{}}}";
    json_t *m = expect_good(s);
    assert_string_equal(json_string_value(json_array_get(json_object_get(m, "industry"), 1)), "Insurance");
    assert_string_equal(json_string_value(json_object_get(json_object_get(m, "encryption_config"), "encryption_type")),
                        "none");
    json_t *deps = json_object_get(m, "dependencies");
    assert_string_equal(json_string_value(json_array_get(json_object_get(deps, "models"), 0)), "my_model==0.0.5");
    assert_non_null(json_object_get(deps, "later"));
    json_decref(m);
}

static void expect_bad(const char *json, const char *want)
{
    char err[512] = "";
    json_t *m = ib_manifest_parse(json, strlen(json), "package.json", err, sizeof err);
    if (m) {
        json_decref(m);
        fail_msg("accepted: %s", json);
    }
    assert_string_equal(err, want);
}

static void test_bad_fields(void **state)
{
    expect_bad("[1]", "package.json: must be a JSON object");
    expect_bad("{\"version\":\"1.0.0\",\"short_description\":\"d\",\"authors\":[\"a\"]}",
               "package.json: 'name' is missing");
    expect_bad("{\"name\":5}", "package.json: 'name' must be a string, not a number");
    expect_bad("{\"name\":\"bad/name\"}",
               "package.json: 'name' 'bad/name' is not a solution name: it holds a '/' (names are 1-128 bytes of "
               "printable UTF-8 without '/' or '\\', not starting or ending with a space, not '.' or '..')");
    expect_bad("{\"name\":\"x \"}", "package.json: 'name' 'x ' is not a solution name: it ends with a space "
                                    "(names are 1-128 bytes of printable UTF-8 without '/' or '\\', not "
                                    "starting or ending with a space, not '.' or '..')");
    expect_bad("{\"name\":\"ok\"}", "package.json: 'version' is missing");
    expect_bad("{\"name\":\"ok\",\"version\":\"1.0\"}",
               "package.json: 'version' \"1.0\" is not a semantic version (MAJOR.MINOR.PATCH[-prerelease])");
    expect_bad(
        "{\"name\":\"ok\",\"version\":\"1.0.0+b1\"}",
        "package.json: 'version' \"1.0.0+b1\" is not a semantic version (MAJOR.MINOR.PATCH[-prerelease])");
    expect_bad("{\"name\":\"ok\",\"version\":\"1.0.0\"}", "package.json: 'short_description' is missing");
    expect_bad("{\"name\":\"ok\",\"version\":\"1.0.0\",\"short_description\":null}",
               "package.json: 'short_description' must be a string, not null");
    expect_bad("{\"name\":\"ok\",\"version\":\"1.0.0\",\"short_description\":\"d\"}",
               "package.json: 'authors' is missing");
    expect_bad("{\"name\":\"ok\",\"version\":\"1.0.0\",\"short_description\":\"d\",\"authors\":[]}",
               "package.json: 'authors' must be a non-empty list of strings");
    expect_bad("{\"name\":\"ok\",\"version\":\"1.0.0\",\"short_description\":\"d\",\"authors\":\"me\"}",
               "package.json: 'authors' must be a non-empty list of strings");
    expect_bad("{\"name\":\"ok\",\"version\":\"1.0.0\",\"short_description\":\"d\",\"authors\":[\"a\",{}]}",
               "package.json: 'authors'[1] must be a string, not an object");
    expect_bad("{" BASE ",\"beta\":\"yes\"}", "package.json: 'beta' must be a boolean, not a string");
    expect_bad("{" BASE ",\"dependencies\":[]}",
               "package.json: 'dependencies' must be an object, not a list");
    expect_bad("{" BASE ",\"icon_file\":1.5}", "package.json: 'icon_file' must be a string, not a number");
    expect_bad("{" BASE ",\"visibility\":true}",
               "package.json: 'visibility' must be a string, not a boolean");
    expect_bad("{" BASE ",\"owner\":[]}", "package.json: 'owner' must be a string, not a list");
    expect_bad("{" BASE ",\"industry\":[\"Finance\",7]}", "package.json: 'industry'[1] must be a string, not a number");
    expect_bad("{" BASE ",\"accelerator_type\":{}}",
               "package.json: 'accelerator_type' must be a list of strings, not an object");
    expect_bad("{" BASE ",\"use_case\":[null]}", "package.json: 'use_case'[0] must be a string, not null");
    expect_bad("{" BASE ",\"encryption_config\":\"aes\"}",
               "package.json: 'encryption_config' must be an object, not a string");
    expect_bad("{" BASE ",\"dependencies\":{\"models\":\"m==1\"}}",
               "package.json: 'dependencies.models' must be a list of strings, not a string");
    expect_bad("{" BASE ",\"dependencies\":{\"models\":[\"m==1.0.0\",\"other\"]}}",
               "package.json: 'dependencies.models'[1] \"other\" must be \"name==version\" (e.g. "
               "\"my_model==0.0.1\")");
    expect_bad("{" BASE ",\"dependencies\":{\"dev_exchange_packages\":[\"==1.0\"]}}",
               "package.json: 'dependencies.dev_exchange_packages'[0] \"==1.0\" must be \"name==version\" (e.g. "
               "\"my_model==0.0.1\")");
    expect_bad("{" BASE ",\"dependencies\":{\"dev_exchange_packages\":[\"p==\"]}}",
               "package.json: 'dependencies.dev_exchange_packages'[0] \"p==\" must be \"name==version\" (e.g. "
               "\"my_model==0.0.1\")");
    {
        /* the longest name and version cannot make a file name: refused before any archive is written */
        char big[600];
        snprintf(big, sizeof big,
                 "{\"name\":\"%0128d\",\"version\":\"18446744073709551615.18446744073709551615.18446744073709551615-"
                 "%s\",\"short_description\":\"d\",\"authors\":[\"a\"]}",
                 0, "rc" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"); /* 63 bytes */
        expect_bad(big, "package.json: 'name' and 'version' are 254 bytes together; the archive's file name "
                        "<name>-<version>.ibsolution allows at most 243");
    }
    expect_bad("{" BASE ",\"dependencies\":{\"models\":[3]}}",
               "package.json: 'dependencies.models'[0] must be a string, not a number");
}

static void test_bad_json(void **state)
{
    expect_bad("{" BASE ",\"name\":\"again\"}",
               "package.json: invalid JSON at line 1 column 115: duplicate object key near '\"name\"'");
    expect_bad("{\n  \"name\": \"x\",\n  oops\n}",
               "package.json: invalid JSON at line 3 column 6: string or '}' expected near 'oops'");
    expect_bad("", "package.json: invalid JSON at line 1 column 0: '[' or '{' expected near end of file");
    expect_bad("{\"name\":\"a\\u0000b\"}", "package.json: invalid JSON at line 1 column 18: \\u0000 is not "
                                           "allowed without JSON_ALLOW_NUL near '\"a\\u0000b\"'");

    char err[64];
    assert_int_equal(ib_manifest_check(json_null(), "x.json", err, sizeof err), -1);
    assert_string_equal(err, "x.json: must be a JSON object");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_dirs),
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_original_product),
        cmocka_unit_test(test_bad_fields),
        cmocka_unit_test(test_bad_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
