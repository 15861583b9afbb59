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
    assert_true(ib_solution_name_ok("invoice_solution"));
    assert_true(ib_solution_name_ok("9lives.v2-x"));
    assert_true(ib_solution_name_ok("a"));
    assert_false(ib_solution_name_ok(""));
    assert_false(ib_solution_name_ok(NULL));
    assert_false(ib_solution_name_ok("_x"));
    assert_false(ib_solution_name_ok(".x"));
    assert_false(ib_solution_name_ok("-x"));
    assert_false(ib_solution_name_ok("a b"));
    assert_false(ib_solution_name_ok("a/b"));
    assert_false(
        ib_solution_name_ok("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")); /* 65 */
}

static void test_good(void **state)
{
    const char *s =
        "{" BASE ",\"long_description\":\"More\",\"solution_type\":\"ibflowbin\",\"accelerator_type\":\"x\","
        "\"industry\":\"Finance\",\"business_vertical\":\"b\",\"use_case\":\"u\",\"icon_file\":\"icon.png\","
        "\"visibility\":\"public\",\"beta\":true,\"dependencies\":{\"x\":\"1.0.0\"},"
        "\"custom\":{\"kept\":[1,2]}}";
    char err[512] = "";
    json_t *m = ib_manifest_parse(s, strlen(s), "package.json", err, sizeof err);
    assert_non_null(m);
    assert_string_equal(err, "");
    assert_string_equal(json_string_value(json_object_get(m, "name")), "invoice_solution");
    json_t *custom = json_object_get(m, "custom");
    assert_non_null(custom);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(custom, "kept"), 1)), 2);
    json_decref(m);

    /* Not NUL-terminated input: only len bytes count. */
    char buf[256];
    int n = snprintf(buf, sizeof buf, "{" BASE "}garbage");
    m = ib_manifest_parse(buf, (size_t)n - 7, "package.json", err, sizeof err);
    assert_non_null(m);
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
    expect_bad("{\"name\":\"bad name\"}", "package.json: 'name' \"bad name\" is not a valid solution name "
                                          "(1-64 of A-Za-z0-9._-, starting with a "
                                          "letter or digit)");
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
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_bad_fields),
        cmocka_unit_test(test_bad_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
