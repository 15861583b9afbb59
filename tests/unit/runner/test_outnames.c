/* Unit tests of the output names of a job's inputs (engine/output.c, used by runner/ops.c and work.c): the
 * readable base of a path, what counts as an already marked base, and the mark itself, cut on a UTF-8 character
 * boundary when the buffer is short. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "engine_int.h"

static void expect_base(const char *rel, const char *want)
{
    char out[256];
    ib_out_job_base(rel, out, sizeof out);
    assert_string_equal(out, want);
}

static void test_base(void **state)
{
    (void)state;
    expect_base("invoice-1001.txt", "invoice-1001.txt");
    expect_base("a/x.txt", "a__x.txt");
    expect_base("a__x.txt", "a__x.txt");
    expect_base(".x.txt", "_x.txt");
    expect_base("sub/.hidden", "sub__.hidden");
    expect_base("tab\there", "tab_here");
    expect_base("", "file");
    char longname[260], want[201];
    memset(longname, 'p', 250);
    strcpy(longname + 250, ".txt");
    memset(want, 'p', 200);
    want[200] = '\0';
    expect_base(longname, want); /* 200 bytes are kept */
}

static void test_marked(void **state)
{
    (void)state;
    assert_true(ib_out_base_marked("r~5"));
    assert_true(ib_out_base_marked("a__x.txt~12"));
    assert_true(ib_out_base_marked("~0"));
    assert_false(ib_out_base_marked("r~"));
    assert_false(ib_out_base_marked("r~5a"));
    assert_false(ib_out_base_marked("r~5.txt"));
    assert_false(ib_out_base_marked("plain.txt"));
}

static void test_mark(void **state)
{
    (void)state;
    char b[256] = "a__x.txt";
    ib_out_base_mark(b, sizeof b, 7);
    assert_string_equal(b, "a__x.txt~7");
    assert_true(ib_out_base_marked(b));
    /* a short buffer: the base is cut, never the mark, and never inside a character ("é" is 2 bytes) */
    char s[12] = "ab\xc3\xa9\xc3\xa9xyz";
    ib_out_base_mark(s, sizeof s, 123); /* room for 11 bytes: base 7 at most, "ab" "é" "é" is 6 + 'x' = 7 */
    assert_string_equal(s, "ab\xc3\xa9\xc3\xa9x~123");
    char t[10] = "ab\xc3\xa9\xc3\xa9";
    ib_out_base_mark(t, sizeof t, 123); /* room for 5 bytes of base: "ab" "é" (4); half an "é" is dropped */
    assert_string_equal(t, "ab\xc3\xa9~123");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base),
        cmocka_unit_test(test_marked),
        cmocka_unit_test(test_mark),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
