/* ib_sha256: SHA-256 digests (OpenSSL EVP), as lower-case hex. */
#ifndef IB_SHA256_H
#define IB_SHA256_H

#include <stddef.h>

#define IB_SHA256_HEX 65 /* 64 hex digits + NUL */

void ib_sha256_hex(const void *data, size_t len, char out[IB_SHA256_HEX]);
/* Digest of an open file read from offset 0 to its end. 0 or -1/errno. */
int ib_sha256_fd(int fd, char out[IB_SHA256_HEX]);

#endif
