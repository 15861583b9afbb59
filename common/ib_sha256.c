/* ib_sha256: SHA-256 through OpenSSL's EVP interface, as lower-case hex. Files are read with pread in 64 KiB
 * blocks so the caller's file offset stays where it was. */
#include "ib_sha256.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <unistd.h>

#define READ_BLOCK (64 * 1024)

static void to_hex(const unsigned char *md, unsigned n, char out[IB_SHA256_HEX])
{
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * n] = '\0';
}

void ib_sha256_hex(const void *data, size_t len, char out[IB_SHA256_HEX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    /* EVP_Digest fails only when out of memory; an empty string then marks "no digest". */
    if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL)) {
        out[0] = '\0';
        return;
    }
    to_hex(md, n, out);
}

int ib_sha256_fd(int fd, char out[IB_SHA256_HEX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    int rc = -1, err = EIO;
    unsigned char *buf = malloc(READ_BLOCK);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!buf || !ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        err = ENOMEM;
        goto out;
    }
    for (off_t off = 0;;) {
        ssize_t got = pread(fd, buf, READ_BLOCK, off);
        if (got < 0) {
            if (errno == EINTR) continue;
            err = errno;
            goto out;
        }
        if (got == 0) break;
        if (!EVP_DigestUpdate(ctx, buf, (size_t)got)) goto out;
        off += got;
    }
    if (!EVP_DigestFinal_ex(ctx, md, &n)) goto out;
    to_hex(md, n, out);
    rc = 0;
out:
    EVP_MD_CTX_free(ctx);
    free(buf);
    if (rc) errno = err;
    return rc;
}
