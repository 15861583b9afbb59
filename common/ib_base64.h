/* ib_base64: base64 through OpenSSL's decoder, one place for every program that takes files inside JSON
 * (run_sync's file_content, binary replies between daemons, the run_sync benchmark's anchor). */
#ifndef IB_BASE64_H
#define IB_BASE64_H

#include <stddef.h>

/* Strict base64 (white space allowed between groups, padding required as OpenSSL reads it) of len bytes at s.
 * A malloc'ed buffer of *out_len bytes (with one spare NUL after them), or NULL when the text is not base64,
 * is longer than OpenSSL's int lengths allow, or memory runs out. */
unsigned char *ib_base64_decode(const char *s, size_t len, size_t *out_len);

#endif
