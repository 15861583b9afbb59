/* Unit tests of ib_parse: number, int, date and bool recognition on the formats invoices and forms use,
 * including the ambiguous ones, text around the value, Unicode spaces and signs, and what must fail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ib_parse.h"

static void num_is(const char *s, double want)
{
    double v = NAN;
    int rc = ib_parse_number(s, &v);
    if (rc != 0 || fabs(v - want) > 1e-9 * (1 + fabs(want)))
        fail_msg("number(\"%s\"): rc %d value %.10g, want %.10g", s, rc, v, want);
}

static void num_none(const char *s)
{
    double v = 0;
    int rc = ib_parse_number(s, &v);
    if (rc != -1) fail_msg("number(\"%s\"): want no number, got %.10g", s, v);
}

static void test_number_plain(void **state)
{
    num_is("0", 0);
    num_is("42", 42);
    num_is("12.50", 12.5);
    num_is("12,5", 12.5);
    num_is("-7", -7);
    num_is("+7", 7);
    num_is(".50", 0.5);
    num_is("$.99", 0.99);
    num_is("007", 7);
}

static void test_number_separators(void **state)
{
    num_is("1,234.56", 1234.56);
    num_is("1.234,56", 1234.56);
    num_is("1'234.56", 1234.56);
    num_is("1\xE2\x80\x99"
           "234.56",
           1234.56); /* U+2019 as apostrophe */
    num_is("1 234,56", 1234.56);
    num_is("1\xC2\xA0"
           "234,56",
           1234.56); /* NBSP */
    num_is("1\xE2\x80\xAF"
           "234,56",
           1234.56); /* U+202F */
    num_is("1\xE2\x80\x89"
           "234 567,5",
           1234567.5);
    num_is("1,234,567.89", 1234567.89);
    num_is("1.234.567,89", 1234567.89);
    num_is("1.234.567", 1234567);
    num_is("1'234'567", 1234567);
    num_is("1,23,456.78", 123456.78); /* Indian grouping */
    num_is("12,34,56,789", 123456789);
    num_is("1234.5678", 1234.5678);
}

static void test_number_ambiguous(void **state)
{
    num_is("1,234", 1234); /* one separator + 3 digits after 1-3 digits: thousands */
    num_is("1.234", 1234);
    num_is("123.456", 123456);
    num_is("0,125", 0.125); /* a leading zero group cannot have thousands */
    num_is("0.125", 0.125);
    num_is("1234,567", 1234.567); /* 4 digits before: cannot be a thousands group */
    num_is("1,2345", 1.2345);
    num_is("12,50", 12.5);
    num_is("1.2.3", 1.2); /* not a thousands pattern: stops at the second separator */
    num_is("12 5", 12);   /* a space joins only a 3-digit group */
    num_is("1 2345", 1);
}

static void test_number_signs_currency(void **state)
{
    num_is("(12.00)", -12);
    num_is("($1,234.56)", -1234.56);
    num_is("( 12.00 EUR )", -12);
    num_is("12.00-", -12);
    num_is("12.00 -", 12); /* a detached dash is not a trailing minus */
    num_is("-$12.00", -12);
    num_is("$-12.00", -12);
    num_is("- $ 12.00", -12);
    num_is("\xE2\x88\x92"
           "5",
           -5); /* U+2212 minus */
    num_is("$1,234.56", 1234.56);
    num_is("\xE2\x82\xAC 1.234,56", 1234.56); /* € */
    num_is("1.234,56 \xE2\x82\xAC", 1234.56);
    num_is("\xC2\xA3"
           "99",
           99); /* £ */
    num_is("\xC2\xA5"
           "1,000",
           1000); /* ¥ */
    num_is("\xE2\x82\xB9"
           "1,23,456",
           123456); /* ₹ */
    num_is("CHF 1'234.50", 1234.5);
    num_is("USD1,000", 1000);
    num_is("EUR45", 45);
    num_is("1,000 USD", 1000);
    num_is("12,- \xE2\x82\xAC", 12); /* whole amount, not negative */
    num_is("12.5%", 12.5);
    num_is("(5%)", -5);
}

static void test_number_in_text(void **state)
{
    num_is("Total: $1,234.56 USD", 1234.56);
    num_is("Amount due 2 items 30,00", 2); /* the first number wins */
    num_is("INV123 total 45.10", 45.1);    /* digits glued to a word are not a number */
    num_is("Ref ABC-12 amount 3", 3);
    num_is("Invoice INV-2024-001 total EUR-5,50", -5.5);
    num_is("Qty - 5", 5);
    num_is("Balance: 1.500,00- EUR", -1500);
    num_none("");
    num_none("   ");
    num_none("no digits here");
    num_none("A4 B5");
    double v;
    assert_int_equal(ib_parse_number(NULL, &v), -1);
}

static void int_is(const char *s, long long want)
{
    long long v = -999;
    int rc = ib_parse_int(s, &v);
    if (rc != 0 || v != want) fail_msg("int(\"%s\"): rc %d value %lld, want %lld", s, rc, v, want);
}

static void test_int(void **state)
{
    int_is("42", 42);
    int_is("1,234", 1234);
    int_is("12.99", 12);
    int_is("-12.99", -12);
    int_is("(1.234,56)", -1234);
    int_is("Invoice total: 9'999 CHF", 9999);
    int_is("9223372036854775807", 9223372036854775807LL);
    int_is("-9223372036854775808", -9223372036854775807LL - 1);
    long long v;
    assert_int_equal(ib_parse_int("9223372036854775808", &v), -1);
    assert_int_equal(ib_parse_int("none", &v), -1);
    assert_int_equal(ib_parse_int("", &v), -1);
}

static void date_is(const char *s, const char *order, const char *want)
{
    char out[11] = "";
    int rc = ib_parse_date(s, order, out);
    if (rc != 0 || strcmp(out, want))
        fail_msg("date(\"%s\", %s): rc %d \"%s\", want %s", s, order ? order : "-", rc, out, want);
}

static void date_none(const char *s, const char *order)
{
    char out[11] = "";
    int rc = ib_parse_date(s, order, out);
    if (rc != -1) fail_msg("date(\"%s\"): want no date, got rc %d \"%s\"", s, rc, out);
}

static void test_date_numeric(void **state)
{
    date_is("2024-03-15", NULL, "2024-03-15");
    date_is("2024/03/15", NULL, "2024-03-15");
    date_is("2024.3.5", NULL, "2024-03-05");
    date_is("03/15/2024", NULL, "2024-03-15");
    date_is("15/03/2024", NULL, "2024-03-15"); /* first number passes 12 */
    date_is("03/04/2024", NULL, "2024-03-04"); /* slash: month first */
    date_is("15.03.2024", NULL, "2024-03-15");
    date_is("04.03.2024", NULL, "2024-03-04"); /* dot: day first */
    date_is("15-3-2024", NULL, "2024-03-15");
    date_is("03-15-2024", NULL, "2024-03-15"); /* second passes 12: month first */
    date_is("2024-03-15T10:20:00Z", NULL, "2024-03-15");
    date_is("03/04/24", NULL, "2024-03-04");
    date_is("03/04/69", NULL, "1969-03-04");
    date_is("03/04/68", NULL, "2068-03-04");
}

static void test_date_order(void **state)
{
    date_is("03/04/2024", "DMY", "2024-04-03");
    date_is("03/04/2024", "dmy", "2024-04-03");
    date_is("04.03.2024", "MDY", "2024-04-03");
    date_is("24/03/15", "YMD", "2024-03-15");
    date_is("2024-03-15", "DMY", "2024-03-15"); /* a 4-digit first number is unambiguous */
    date_is("15 March 2024", "MDY", "2024-03-15");
    date_none("03/15/2024", "DMY"); /* the author said day first: month 15 is invalid */
    char out[11];
    assert_int_equal(ib_parse_date("2024-03-15", "XYZ", out), -2);
}

static void test_date_names(void **state)
{
    date_is("March 15, 2024", NULL, "2024-03-15");
    date_is("15 Mar 2024", NULL, "2024-03-15");
    date_is("Mar. 15th, 2024", NULL, "2024-03-15");
    date_is("Friday, March 15, 2024", NULL, "2024-03-15");
    date_is("MARCH 1ST 2024", NULL, "2024-03-01");
    date_is("7. Mai 2014", NULL, "2014-05-07");
    date_is("3. M\xC3\xA4rz 2021", NULL, "2021-03-03"); /* März */
    date_is("3 Maerz 2021", NULL, "2021-03-03");        /* ASCII spelling of März */
    date_is("29 maart 2014", NULL, "2014-03-29");
    date_is("02 Juillet 2015", NULL, "2015-07-02");
    date_is("1er janvier 2020", NULL, "2020-01-01");
    date_is("15 f\xC3\xA9vr. 2024", NULL, "2024-02-15"); /* févr. */
    date_is("15 FEVRIER 2024", NULL, "2024-02-15");
    date_is("15 de marzo de 2024", NULL, "2024-03-15");
    date_is("15 de mar\xC3\xA7o de 2024", NULL, "2024-03-15"); /* março */
    date_is("3 dicembre 2023", NULL, "2023-12-03");
    date_is("1\xC2\xBA de setembro de 2022", NULL, "2022-09-01"); /* 1º */
    date_is("15-Mar-24", NULL, "2024-03-15");
    date_is("2024-Mar-15", NULL, "2024-03-15");
    date_is("31 okt 2023", NULL, "2023-10-31");
    date_is("the 1st of March, 2024", NULL, "2024-03-01");
}

static void test_date_in_text_and_invalid(void **state)
{
    date_is("Due Date: 03/15/2024", NULL, "2024-03-15");
    date_is("Invoice 4711 dated 2024-01-31, due 2024-02-29", NULL, "2024-01-31");
    date_is("bad 2024-02-30 then 2024-02-29", NULL, "2024-02-29"); /* invalid candidates are passed over */
    date_none("2024-02-30", NULL);
    date_none("2023-02-29", NULL); /* not a leap year */
    date_none("1900-02-29", NULL);
    date_is("2000-02-29", NULL, "2000-02-29");
    date_none("2024-13-01", NULL);
    date_none("31/31/2024", NULL);
    date_none("31 April 2024", NULL);
    date_none("March 2024", NULL);
    date_none("version 1.2.3.4", NULL);
    date_none("192.168.1.10", NULL);
    date_none("", NULL);
    date_none("no date here at all, sorry", NULL);
    char out[11];
    assert_int_equal(ib_parse_date(NULL, NULL, out), -1);
    date_is("\xFF\xFE garbage 15.03.2024 \xC3", NULL, "2024-03-15");
}

static void bool_is(const char *s, int want)
{
    int v = -1;
    int rc = ib_parse_bool(s, &v);
    if (rc != 0 || v != want) fail_msg("bool(\"%s\"): rc %d value %d, want %d", s, rc, v, want);
}

static void test_bool(void **state)
{
    const char *t[] = {"true",
                       "TRUE",
                       " Yes ",
                       "y",
                       "1",
                       "on",
                       "Checked",
                       "x",
                       "X",
                       "[x]",
                       "(X)",
                       "\xE2\x98\x91",
                       "\xE2\x98\x92",
                       "\xE2\x9C\x93",
                       "ja",
                       "Oui",
                       "S\xC3\x8D"};
    const char *f[] = {"false", "No",           "n",    "0",         "OFF", "unchecked", "[ ]", "[]",
                       "( )",   "\xE2\x98\x90", "nein", "N\xC3\x83O"};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        bool_is(t[i], 1);
    for (size_t i = 0; i < sizeof f / sizeof *f; i++)
        bool_is(f[i], 0);
    int v;
    assert_int_equal(ib_parse_bool("", &v), -1);
    assert_int_equal(ib_parse_bool("maybe", &v), -1);
    assert_int_equal(ib_parse_bool("yes please", &v), -1);
    assert_int_equal(ib_parse_bool("2", &v), -1);
    assert_int_equal(ib_parse_bool(NULL, &v), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_number_plain),
        cmocka_unit_test(test_number_separators),
        cmocka_unit_test(test_number_ambiguous),
        cmocka_unit_test(test_number_signs_currency),
        cmocka_unit_test(test_number_in_text),
        cmocka_unit_test(test_int),
        cmocka_unit_test(test_date_numeric),
        cmocka_unit_test(test_date_order),
        cmocka_unit_test(test_date_names),
        cmocka_unit_test(test_date_in_text_and_invalid),
        cmocka_unit_test(test_bool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
