/* ib_base64: see ib_base64.h. */
#include "ib_base64.h"

#include <limits.h>
#include <openssl/evp.h>
#include <stdlib.h>

unsigned char *ib_base64_decode(const char *s, size_t len, size_t *out_len)
{
    if (len > INT_MAX) return NULL; /* EVP_DecodeUpdate counts in int */
    unsigned char *out = malloc(len / 4 * 3 + 4);
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    int n1 = 0, n2 = 0, ok = 0;
    if (out && ctx) {
        EVP_DecodeInit(ctx);
        ok = EVP_DecodeUpdate(ctx, out, &n1, (const unsigned char *)s, (int)len) >= 0 &&
             EVP_DecodeFinal(ctx, out + n1, &n2) == 1;
    }
    EVP_ENCODE_CTX_free(ctx);
    if (!ok) {
        free(out);
        return NULL;
    }
    *out_len = (size_t)(n1 + n2);
    out[*out_len] = 0;
    return out;
}
