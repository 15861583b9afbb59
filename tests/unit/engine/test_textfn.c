/* Unit tests of ib_textfn: the UTF-8 string primitives (clean, trim, case mapping, substr/len in characters,
 * split, lines, line_containing, between), with Unicode spaces, accents, invalid bytes and empty input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ib_textfn.h"

/* Checks and frees a returned string. */
static void eq_free(char *got, const char *want)
{
    if (!got) fail_msg("NULL result, want \"%s\"", want);
    if (strcmp(got, want)) {
        print_error("got \"%s\", want \"%s\"\n", got, want);
        free(got);
        fail();
    }
    free(got);
}

static void test_trim_clean(void **state)
{
    eq_free(ib_str_trim("  a  b \n"), "a  b");
    eq_free(ib_str_trim("\xC2\xA0\xE2\x80\xAF x\t"), "x"); /* NBSP, U+202F */
    eq_free(ib_str_trim(""), "");
    eq_free(ib_str_trim(" \t\r\n "), "");
    eq_free(ib_str_clean("  John \t\n  Smith  "), "John Smith");
    eq_free(ib_str_clean("a\xC2\xA0\xC2\xA0"
                         "b\xE3\x80\x80"
                         "c\vd"),
            "a b c d"); /* NBSP, ideographic space */
    eq_free(ib_str_clean("caf\xC3\xA9  \xE2\x82\xAC"), "caf\xC3\xA9 \xE2\x82\xAC");
    eq_free(ib_str_clean("a\xE2\x80\x8B"
                         "b"),
            "a\xE2\x80\x8B"
            "b"); /* zero-width space is not white space */
    eq_free(ib_str_clean(""), "");
    eq_free(ib_str_clean("   "), "");
    assert_null(ib_str_clean(NULL));
}

static void test_case(void **state)
{
    eq_free(ib_str_upper("stra\xC3\x9F"
                         "e \xC3\xA9t\xC3\xA9 \xC5\x82\xC3\xB3"
                         "d\xC5\xBA"),
            "STRASSE \xC3\x89T\xC3\x89 \xC5\x81\xC3\x93"
            "D\xC5\xB9"); /* straße été łódź */
    eq_free(ib_str_lower("\xC3\x89T\xC3\x89 ABC \xC4\x8C"), "\xC3\xA9t\xC3\xA9 abc \xC4\x8D"); /* ÉTÉ ABC Č */
    eq_free(ib_str_title("JOHN o'neil jean-pierre 1st \xC3\xA9MILE"),
            "John O'neil Jean-Pierre 1st \xC3\x89mile");
    eq_free(ib_str_title("e\xCC\x81"
                         "cole"),
            "E\xCC\x81"
            "cole"); /* decomposed é keeps its word */
    eq_free(ib_str_title(""), "");
}

static void test_len_substr(void **state)
{
    assert_int_equal(ib_str_len(""), 0);
    assert_int_equal(ib_str_len("abc"), 3);
    assert_int_equal(ib_str_len("\xC3\xA9t\xC3\xA9"), 3);  /* été */
    assert_int_equal(ib_str_len("e\xCC\x81t\xC3\xA9"), 3); /* decomposed é: NFC counts one */
    assert_int_equal(ib_str_len("\xE2\x82\xAC"
                                "5"),
                     2); /* €5 */
    assert_int_equal(ib_str_len("a\xFF"
                                "b"),
                     3); /* an invalid byte is one character */
    eq_free(ib_str_substr("\xC3\xA9t\xC3\xA9 2024", 0, 3), "\xC3\xA9t\xC3\xA9");
    eq_free(ib_str_substr("\xC3\xA9t\xC3\xA9 2024", 4, -1), "2024");
    eq_free(ib_str_substr("INV-2024", -4, -1), "2024");
    eq_free(ib_str_substr("INV-2024", -4, 2), "20");
    eq_free(ib_str_substr("abc", -10, 2), "ab");
    eq_free(ib_str_substr("abc", 5, 2), "");
    eq_free(ib_str_substr("abc", 1, 100), "bc");
    eq_free(ib_str_substr("a\xFF"
                          "b",
                          1, 1),
            "\xEF\xBF\xBD"); /* replaced by U+FFFD */
}

static void list_is(const ib_strlist *l, const char *const *want, size_t n)
{
    if (l->n != n) fail_msg("list has %zu items, want %zu", l->n, n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(l->items[i], want[i]))
            fail_msg("item %zu is \"%s\", want \"%s\"", i, l->items[i], want[i]);
}

static void test_split(void **state)
{
    ib_strlist l;
    assert_int_equal(ib_str_split("a,b,,c", ",", &l), 0);
    list_is(&l, (const char *[]){"a", "b", "", "c"}, 4);
    ib_strlist_free(&l);
    assert_int_equal(ib_str_split("a, b", ", ", &l), 0);
    list_is(&l, (const char *[]){"a", "b"}, 2);
    ib_strlist_free(&l);
    assert_int_equal(ib_str_split("x\xE2\x80\x94y\xE2\x80\x94", "\xE2\x80\x94", &l), 0); /* em dash */
    list_is(&l, (const char *[]){"x", "y", ""}, 3);
    ib_strlist_free(&l);
    assert_int_equal(ib_str_split("  one \xC2\xA0two\n three ", "", &l), 0);
    list_is(&l, (const char *[]){"one", "two", "three"}, 3);
    ib_strlist_free(&l);
    assert_int_equal(ib_str_split("no separator", ";", &l), 0);
    list_is(&l, (const char *[]){"no separator"}, 1);
    ib_strlist_free(&l);
    assert_int_equal(ib_str_split("", ",", &l), 0);
    assert_int_equal(l.n, 0);
    ib_strlist_free(&l);
    assert_int_equal(ib_str_split(NULL, ",", &l), -1);
}

static void test_lines(void **state)
{
    ib_strlist l;
    assert_int_equal(ib_str_lines("a\r\nb\n\nc\rd\fe\n", &l), 0);
    list_is(&l, (const char *[]){"a", "b", "", "c", "d", "e"}, 6);
    ib_strlist_free(&l);
    assert_int_equal(ib_str_lines("", &l), 0);
    assert_int_equal(l.n, 0);
    assert_int_equal(ib_str_lines("one", &l), 0);
    list_is(&l, (const char *[]){"one"}, 1);
    ib_strlist_free(&l);
}

static void test_line_containing(void **state)
{
    const char *doc = "INVOICE 42\nTotal due: 10.00\nTOTAL NET: 8.00\n  Stra\xC3\x9F"
                      "e 5  \n";
    char *out;
    assert_int_equal(ib_str_line_containing(doc, "TOTAL", &out),
                     0); /* exact case wins over an earlier line */
    eq_free(out, "TOTAL NET: 8.00");
    assert_int_equal(ib_str_line_containing(doc, "total due", &out), 0); /* then any case */
    eq_free(out, "Total due: 10.00");
    assert_int_equal(ib_str_line_containing(doc,
                                            "STRA\xC3\x9F"
                                            "E",
                                            &out),
                     0);
    eq_free(out, "  Stra\xC3\x9F"
                 "e 5  "); /* the whole line, untrimmed */
    assert_int_equal(ib_str_line_containing(doc, "missing", &out), 1);
    assert_null(out);
    assert_int_equal(ib_str_line_containing(doc, "", &out), 1);
    assert_int_equal(ib_str_line_containing("", "x", &out), 1);
}

static void test_between(void **state)
{
    char *out;
    assert_int_equal(ib_str_between("Name: John Smith; Age: 40; Name: X;", "Name:", ";", &out), 0);
    eq_free(out, " John Smith"); /* first start, next end after it */
    assert_int_equal(ib_str_between("from <a> to <b>", "<", ">", &out), 0);
    eq_free(out, "a");
    assert_int_equal(ib_str_between("Total EUR 12", "total", "", &out), 0); /* case fallback, no end */
    eq_free(out, " EUR 12");
    assert_int_equal(ib_str_between("Ref: 42", "Ref:", "END", &out), 0); /* missing end: to the end */
    eq_free(out, " 42");
    assert_int_equal(ib_str_between("abc", "", "b", &out), 0);
    eq_free(out, "a");
    assert_int_equal(ib_str_between("\xC3\xA9t\xC3\xA9 \xC2\xAB"
                                    "x\xC2\xBB",
                                    "\xC2\xAB", "\xC2\xBB", &out),
                     0);
    eq_free(out, "x"); /* « x » */
    assert_int_equal(ib_str_between("abc", "zzz", "c", &out), 1);
    assert_null(out);
    assert_int_equal(ib_str_between("", "a", "b", &out), 1);
}

static void test_find_and_invalid(void **state)
{
    size_t ml = 0;
    const char *h = "x \xC3\x89T\xC3\x89 y";
    const char *p = ib_str_find(h, "\xC3\xA9t\xC3\xA9", 1, &ml);
    assert_ptr_equal(p, h + 2);
    assert_int_equal(ml, 5);
    assert_null(ib_str_find(h, "\xC3\xA9t\xC3\xA9", 0, &ml));
    assert_null(ib_str_find("abc", "abcd", 1, &ml));
    /* invalid bytes never crash, and come back replaced */
    eq_free(ib_str_clean("\xFF  a \xC3"), "\xEF\xBF\xBD a \xEF\xBF\xBD");
    eq_free(ib_str_upper("a\xE2\x82"), "A\xEF\xBF\xBD\xEF\xBF\xBD"); /* one U+FFFD per bad byte */
    ib_strlist l;
    assert_int_equal(ib_str_split("a\xFF"
                                  "b\xFF",
                                  "\xFF", &l),
                     0);
    list_is(&l, (const char *[]){"a", "b", ""}, 3);
    ib_strlist_free(&l);
    uint32_t cp;
    assert_int_equal(ib_utf8_next("\xC0\x80", &cp), 1); /* overlong NUL */
    assert_int_equal(cp, 0xDC00 | 0xC0);
    assert_int_equal(ib_utf8_next("\xF0\x9F\x98\x80", &cp), 4);
    assert_int_equal(cp, 0x1F600);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trim_clean), cmocka_unit_test(test_case),
        cmocka_unit_test(test_len_substr), cmocka_unit_test(test_split),
        cmocka_unit_test(test_lines),      cmocka_unit_test(test_line_containing),
        cmocka_unit_test(test_between),    cmocka_unit_test(test_find_and_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
