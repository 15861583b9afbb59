/* ib_utf8: names that are not UTF-8. The file system takes any bytes in a name (a zip made elsewhere, a file
 * copied into the data root), but JSON, and so every reply, needs UTF-8: such bytes are shown escaped. */
#ifndef IB_UTF8_H
#define IB_UTF8_H

#include <stddef.h>

/* Whether s[0..len) is valid UTF-8 as JSON needs it (RFC 3629: shortest forms, no surrogates, at most
 * U+10FFFF). */
int ib_utf8_valid(const char *s, size_t len);

/* s (NUL-terminated) made valid UTF-8: each byte that is not part of a valid sequence becomes the four characters
 * \xHH (lower-case hex); everything else is kept. Written to out (outsz > 0 bytes, always NUL-terminated, cut
 * before a character or escape that does not fit). Returns out. */
char *ib_utf8_escape(const char *s, char *out, size_t outsz);

#endif
