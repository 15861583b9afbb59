/* Unit tests of ib_base64_decode: RFC 4648 vectors, white space between groups (as run_sync bodies wrapped at 76
 * columns carry it), and refusals: bad characters, missing padding, data after the padding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ib_base64.h"
#include "ib_testutil.h"

static void expect(const char *b64, const char *want)
{
    size_t n = 99;
    unsigned char *out = ib_base64_decode(b64, strlen(b64), &n);
    assert_non_null(out);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n);
    assert_int_equal(out[n], 0);
    free(out);
}

static void refused(const char *b64)
{
    size_t n = 99;
    assert_null(ib_base64_decode(b64, strlen(b64), &n));
    assert_int_equal(n, 99);
}

static void test_vectors(void **state)
{
    (void)state;
    expect("", "");
    expect("Zg==", "f");
    expect("Zm8=", "fo");
    expect("Zm9v", "foo");
    expect("Zm9vYg==", "foob");
    expect("Zm9vYmE=", "fooba");
    expect("Zm9vYmFy", "foobar");
}

static void test_white_space_between_groups(void **state)
{
    (void)state;
    expect("Zm9v\nYmFy\n", "foobar");
    expect("Zm9vYmFy\r\nZm9v", "foobarfoo");
}

static void test_refusals(void **state)
{
    (void)state;
    refused("Zm9v!mFy");
    refused("Zm9vYg");     /* padding missing */
    refused("Zg==Zm9v");   /* data after the padding */
    refused("Zm9vYmFy=");  /* padding where none belongs */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_white_space_between_groups),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
