/* ib_env: the msgpack envelopes between the gateway and the services.
 * Request: map {op, rid, user, role, args} (args: the JSON body, converted 1:1).
 * Reply:   map {status "OK"|"ERROR", code, msg, data} (data: object merged into the HTTP response).
 * Encoders append to an nng message (no intermediate buffer); decoders check bounds first (ib_conv). */
#ifndef IB_ENV_H
#define IB_ENV_H

#include "ib_err.h"

#include <jansson.h>
#include <nng/nng.h>

typedef struct ib_request {
    char op[64];
    char rid[64];
    char user[256];
    char role[16];
    json_t *args; /* owned; always an object */
    ib_caller who; /* points into the fields above */
} ib_request;

/* Appends the encoded request to msg. 0 or -1 (args nest too deep / out of memory). */
int ib_request_encode(nng_msg *msg, const char *op, const ib_caller *who, const json_t *args);
/* Decodes a request; -1 with a message on malformed input. Release with ib_request_clear. */
int ib_request_decode(const void *buf, size_t len, ib_request *out, char *err, size_t errsz);
void ib_request_clear(ib_request *r);

int ib_reply_encode(nng_msg *msg, const ib_reply *rep);
/* Decodes a reply into rep (which takes ownership of the data); -1 with rep set to internal on malformed input. */
int ib_reply_decode(const void *buf, size_t len, ib_reply *rep);

#endif
