/* ib_conv: the one generic converter between JSON values (jansson) and msgpack, used for every envelope.
 * Decoding untrusted bytes is bounded: the whole message is walked first and its depth, string sizes and
 * declared container counts are checked against limits and against the bytes actually left, before msgpack-c
 * (which allocates a container's declared size up front) or jansson allocate anything. */
#ifndef IB_CONV_H
#define IB_CONV_H

#include <jansson.h>
#include <msgpack.h>
#include <stddef.h>

typedef struct ib_conv_limits {
    size_t max_depth; /* nesting of arrays/maps */
    size_t max_items; /* all array elements and map entries together */
    size_t max_str;   /* bytes in one string */
} ib_conv_limits;

extern const ib_conv_limits ib_conv_default_limits;

/* Packs a JSON value. 0, or -1 when it nests deeper than max_depth. */
int ib_json_pack(msgpack_packer *pk, const json_t *value, size_t max_depth);

/* Checks that buf[0..len) holds exactly one msgpack value within limits. 0, or -1 with a message. */
int ib_msgpack_check(const char *buf, size_t len, const ib_conv_limits *lim, char *err, size_t errsz);

/* Converts an unpacked object (from checked bytes) into a new JSON value. Map keys must be strings; binary
 * becomes a string; ext types and non-finite floats are refused. NULL with a message on error. */
json_t *ib_msgpack_to_json(const msgpack_object *o, char *err, size_t errsz);

/* Check + unpack + convert in one call. NULL with a message on error. */
json_t *ib_msgpack_decode_json(const char *buf, size_t len, const ib_conv_limits *lim, char *err, size_t errsz);

#endif
