/* ib_textfn: the value-independent string primitives behind the text formula functions (clean, trim, upper,
 * lower, title, substr, len, split, lines, between, line_containing). Plain C strings in, malloc'd strings
 * and string lists out; the evaluator wraps them in values and provenance.
 *
 * Conventions for every function here:
 * - Input is UTF-8. Invalid bytes never crash anything: functions that return text replace each byte of an
 *   invalid or truncated sequence with U+FFFD, and len/substr count each as one character; searching treats
 *   such a byte as a character that only matches the same byte.
 * - A returned char * or ib_strlist is malloc'd and owned by the caller (free / ib_strlist_free).
 * - Return codes: 0 done, 1 no match (nothing allocated, *out set to NULL / empty), -1 out of memory or a
 *   NULL argument. Functions returning char * return NULL only on out of memory or NULL input. */
#ifndef IB_TEXTFN_H
#define IB_TEXTFN_H

#include <stddef.h>
#include <stdint.h>

typedef struct ib_strlist {
    char **items; /* n malloc'd strings; items itself malloc'd (NULL when n == 0) */
    size_t n;
} ib_strlist;

void ib_strlist_free(ib_strlist *l); /* frees the items and the array, leaves an empty list; NULL is fine */

/* Decodes one code point at s (s[0] != 0) and returns its length in bytes (1-4). An invalid or truncated
 * sequence yields 1 byte and *cp = 0xDC00 | byte (a lone surrogate, so it equals only the same bad byte). */
size_t ib_utf8_next(const char *s, uint32_t *cp);
/* Unicode white space: \t \n \v \f \r, the Zs/Zl/Zp categories (space, NBSP U+00A0, U+2009, U+202F, ...)
 * and NEL U+0085. Zero-width characters (U+200B, U+FEFF) are not white space. */
int ib_uni_isspace(uint32_t cp);

/* Case-insensitive search uses simple one-to-one lower-casing per code point (so "STRASSE" does not match
 * "straße"), which keeps match offsets exact. Returns a pointer into hay at the first match, or NULL; the
 * match spans *match_len bytes of hay (may differ from strlen(needle) when icase). An empty needle matches
 * at hay. */
const char *ib_str_find(const char *hay, const char *needle, int icase, size_t *match_len);

/* trim: leading and trailing white space removed. clean: trim, and every run of white space inside
 * (including newlines, tabs, NBSP, thin spaces) becomes one ASCII space. */
char *ib_str_trim(const char *s);
char *ib_str_clean(const char *s);

/* Full Unicode case mapping via GLib ("ß" upper-cases to "SS"). title: the first letter of each word in
 * title case, the other letters lower case; a word starts at a letter that follows a non-letter, except
 * after an apostrophe (' or U+2019) or a digit, so "o'neil 1st jean-pierre" gives "O'neil 1st Jean-Pierre".
 */
char *ib_str_upper(const char *s);
char *ib_str_lower(const char *s);
char *ib_str_title(const char *s);

/* Length in characters: code points of the NFC-normalised text (a decomposed "é" counts as one, a
 * multi-code-point emoji as several). */
size_t ib_str_len(const char *s);
/* Characters [start, start+len) of the NFC-normalised text. start is 0-based; a negative start counts from
 * the end (-3 = the last three characters) and is clamped to 0; len < 0 means to the end. Out of range gives
 * "" (not an error). */
char *ib_str_substr(const char *s, long long start, long long len);

/* split: pieces between occurrences of sep (case-sensitive, exact); adjacent separators give empty pieces,
 * pieces are not trimmed. An empty sep splits on runs of white space and drops empty pieces (like Python's
 * str.split()). An empty text gives an empty list. Returns 0 or -1. */
int ib_str_split(const char *s, const char *sep, ib_strlist *out);
/* lines: the text's lines without their terminators; \n, \r\n, \r and \f (the page separator) end a line.
 * Blank lines are kept (they carry vertical layout); a final terminator does not open an extra empty line.
 * Returns 0 or -1. */
int ib_str_lines(const char *s, ib_strlist *out);
/* line_containing: the whole first line (as ib_str_lines cuts them) that contains needle; case-sensitive
 * first, and only when no line matches, case-insensitive. An empty needle matches nothing. 0 / 1 / -1. */
int ib_str_line_containing(const char *s, const char *needle, char **out);
/* between: the text after the first occurrence of start up to the next occurrence of end after it, not
 * trimmed. An empty start means from the beginning; an empty or absent end means to the end of the text.
 * start is searched case-sensitive first then case-insensitive, and so is end (after start). Returns 1 when
 * start does not occur. 0 / 1 / -1. */
int ib_str_between(const char *s, const char *start, const char *end, char **out);

#endif
