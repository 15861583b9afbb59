/* ib_utf8: validation and \xHH escaping of byte strings that should be UTF-8. */
#include "ib_utf8.h"

#include <stdio.h>
#include <string.h>

/* Bytes of the valid UTF-8 sequence at s (at most n bytes available), or 0 when none starts there. */
static size_t seq_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned min;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0; /* a continuation byte, or a lead byte no valid sequence has */
    }
    if (n < len) return 0;
    unsigned cp = c & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

int ib_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t n = seq_len(p + i, len - i);
        if (!n) return 0;
        i += n;
    }
    return 1;
}

char *ib_utf8_escape(const char *s, char *out, size_t outsz)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s), o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = seq_len(p + i, len - i);
        if (n) {
            if (o + n >= outsz) break;
            memcpy(out + o, p + i, n);
            o += n;
            i += n;
        } else {
            if (o + 4 >= outsz) break;
            snprintf(out + o, 5, "\\x%02x", p[i]);
            o += 4;
            i++;
        }
    }
    out[o] = '\0';
    return out;
}
