/* Unit tests of ib_semver: the validity rules and the precedence list of semver.org section 11. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ib_semver.h"

static void test_parse_valid(void **state)
{
    ib_semver v;
    assert_int_equal(ib_semver_parse("1.2.3", &v), 0);
    assert_int_equal(v.major, 1);
    assert_int_equal(v.minor, 2);
    assert_int_equal(v.patch, 3);
    assert_string_equal(v.pre, "");
    assert_int_equal(ib_semver_parse("0.0.0", &v), 0);
    assert_int_equal(ib_semver_parse("10.20.30-rc.1.x-y.0", &v), 0);
    assert_string_equal(v.pre, "rc.1.x-y.0");
    assert_int_equal(ib_semver_parse("1.0.0-0A.is.legal", &v), 0);
    assert_int_equal(ib_semver_parse("1.0.0--", &v), 0);
    assert_int_equal(ib_semver_parse("18446744073709551615.0.0", &v), 0);
    assert_true(v.major == UINT64_MAX);
}

static void test_parse_invalid(void **state)
{
    static const char *bad[] = {
        "",
        "1",
        "1.0",
        "1.0.0.0",
        "01.0.0",
        "1.02.0",
        "1.0.00",
        "1.0.0-",
        "1.0.0-01",
        "1.0.0-a..b",
        "1.0.0-a.",
        "1.0.0-.a",
        "1.0.0+build",
        "1.0.0-rc+b",
        "v1.0.0",
        " 1.0.0",
        "1.0.0 ",
        "1.0.0-a_b",
        "1.0.0-\xc3\xa4",
        "-1.0.0",
        "1.-0.0",
        "18446744073709551616.0.0",
        "1..0",
        "a.b.c",
        "1.0.0-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 64: no room for the NUL
                                                                                   */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ib_semver v;
        if (ib_semver_parse(bad[i], &v) == 0) fail_msg("'%s' parsed as valid", bad[i]);
    }
    assert_int_equal(ib_semver_parse(NULL, NULL), -1);
    assert_int_equal(
        ib_semver_parse("1.0.0-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL), 0);
}

/* semver.org: 1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-alpha.beta < 1.0.0-beta < 1.0.0-beta.2 < 1.0.0-beta.11
 * < 1.0.0-rc.1 < 1.0.0, and 1.0.0 < 2.0.0 < 2.1.0 < 2.1.1. */
static const char *ordered[] = {"0.9.99",     "1.0.0-alpha",  "1.0.0-alpha.1", "1.0.0-alpha.beta",
                                "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1",
                                "1.0.0",      "1.0.1-0",      "1.0.1-9",       "1.0.1-10",
                                "1.0.1-A",    "1.0.1-a",      "1.0.1",         "2.0.0",
                                "2.1.0",      "2.1.1",        "2.10.0",        "10.0.0"};

static void test_precedence(void **state)
{
    size_t n = sizeof ordered / sizeof *ordered;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            ib_semver a, b;
            assert_int_equal(ib_semver_parse(ordered[i], &a), 0);
            assert_int_equal(ib_semver_parse(ordered[j], &b), 0);
            int c = ib_semver_cmp(&a, &b), want = i < j ? -1 : i > j;
            if ((c > 0) - (c < 0) != want)
                fail_msg("cmp(%s, %s) = %d, want %d", ordered[i], ordered[j], c, want);
        }
}

static int qcmp(const void *a, const void *b)
{
    return ib_semver_cmp_str(*(char *const *)a, *(char *const *)b);
}

static void test_cmp_str_sort(void **state)
{
    const char *v[] = {"2.0.0",         "garbage",      "1.0.0-rc.1", "1.0.0",
                       "1.0.0-beta.11", "1.0.0-beta.2", "01.0.0",     "1.0.0-alpha"};
    const char *want[] = {"01.0.0",        "garbage",    "1.0.0-alpha", "1.0.0-beta.2",
                          "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0",       "2.0.0"};
    qsort(v, 8, sizeof *v, qcmp);
    for (int i = 0; i < 8; i++)
        assert_string_equal(v[i], want[i]);
    assert_int_equal(ib_semver_cmp_str("1.0.0", "1.0.0"), 0);
    assert_true(ib_semver_cmp_str("x", "1.0.0") < 0);
    assert_true(ib_semver_cmp_str("1.0.0", "x") > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_cmp_str_sort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
