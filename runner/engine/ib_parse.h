/* ib_parse: reading numbers, integers, dates and booleans out of extracted document text, the way a person
 * reads an invoice, for the number(), int(), date() and bool() formula functions. Pure functions, no
 * caller-visible allocation, locale-independent; input is UTF-8 (invalid bytes are just non-matching
 * characters). */
#ifndef IB_PARSE_H
#define IB_PARSE_H

/* number(text): the FIRST number in the text, so "Total: $1,234.56 USD" gives 1234.56. Returns 0 and sets
 * *out, or -1 when the text holds no number.
 * - Digits glued to a preceding letter are skipped ("INV123 total 5" gives 5), unless the letters are a
 *   currency code ("EUR45" gives 45).
 * - Separators between digit groups: , . ' U+2019 and single spaces (ASCII, U+00A0, U+2009, U+202F).
 *   Spaces and apostrophes are always thousands separators and only join a group of exactly 3 digits.
 *   When both , and . occur, the last one is the decimal separator if it occurs once ("1,234.56",
 *   "1.234,56", "1'234.56", "1 234,56"); other separators are thousands separators, whatever the group
 *   sizes (so Indian "1,23,456.78" works). A single , or . is a thousands separator when it is followed by
 *   exactly 3 digits and preceded by 1-3 digits not "0" ("1,234" and "1.234" are 1234; "0,125" and
 *   "1234.567" are decimals); otherwise it is the decimal separator ("12,5" and "12.50"). A repeated , or .
 *   is a thousands separator only if every group after the first has 3 digits ("1.234.567"); otherwise the
 *   number ends before the second one ("1.2.3" gives 1.2).
 * - Negatives: a leading - + or U+2212 (not glued to a preceding letter or digit), parentheses "(12.00)",
 *   and a trailing minus "12.00-" (not followed by a digit). Currency signs ($ € £ ¥ ₹ ₽ ₩ ₪ ₺ R$ Fr.
 * Rs.) and ISO codes (USD, EUR, CHF, ...) before or after the number are skipped, also between the sign or
 *   parenthesis and the digits ("-$12", "($ 12.00)", "(12.00 EUR)").
 * - "12,-" / "12.-" (Swiss/German whole amounts) is 12, not negative. A leading ".5" is 0.5.
 * - A trailing % is ignored: "12.5%" gives 12.5, not 0.125 (a tax rate field holds the written figure). */
int ib_parse_number(const char *s, double *out);

/* int(text): the same number recognition, truncated toward zero ("12.99" gives 12, "(1.234,56)" gives -1234),
 * without going through a double, so all 19 digits are exact. -1 when there is no number or it does not fit
 * a long long. */
int ib_parse_int(const char *s, long long *out);

/* date(text[, order]): the first date in the text, written to out as "YYYY-MM-DD" (NUL-terminated).
 * Returns 0, -1 when there is no valid date, -2 when order is not NULL/"DMY"/"MDY"/"YMD" (any case).
 * - Numeric: three numbers joined by the same separator / - or . ("15-3-2024", "2024/03/15"). A 4-digit first
 *   number is always year-month-day. Otherwise the year is last, and day and month follow order; without
 *   order, / dates are month first unless the first number passes 12, and - and . dates are day first
 *   unless the second number passes 12. order "YMD" also reads "24/03/15" as 2024-03-15.
 * - Month names and abbreviations (with or without a dot, any case, accents optional) in English, French,
 *   German, Dutch, Spanish, Italian and Portuguese: "15 Mar 2024", "March 15, 2024", "Mar. 15th, 2024",
 *   "7. Mai 2014", "1er janvier 2020", "15 de marzo de 2024", "the 1st of March, 2024", "15-Mar-24",
 *   "2024-Mar-15". Day suffixes st/nd/rd/th/er/e/o/º are allowed. order does not apply to them.
 * - Two-digit years follow POSIX strptime: 00-68 are 2000-2068, 69-99 are 1969-1999. Four-digit years must
 *   be 1000-9999. Day and month are validated (leap years included): "2024-02-30" is not a date, and the
 *   search goes on to the next candidate in the text. Text around the date ("Due Date: 03/15/2024",
 *   "Friday, March 15, 2024") is ignored. A time after the date is ignored. No year, no date; compact
 *   "20240315" is not read (too easily an invoice number). */
int ib_parse_date(const char *s, const char *order, char out[11]);

/* bool(text): the whole text (trimmed, any case, optionally wrapped in [ ] or ( )) must be one word:
 *   true:  true t yes y 1 on checked x ☑ ☒ ✓ ✔ ja oui si sí sim vrai wahr
 *   false: false f no n 0 off unchecked ☐ nein non não nao nee faux falsch, and an empty box "[ ]" / "( )"
 * ☒ (ballot box with X) counts as ticked, as on paper forms. Returns 0 and sets *out to 1/0, or -1 for
 * anything else, including empty text (the evaluator decides whether that is null or false). */
int ib_parse_bool(const char *s, int *out);

#endif
