/* ib_conv: the one generic converter between JSON values (jansson) and msgpack, used for every envelope.
 * Decoding untrusted bytes is bounded: the whole message is walked first and its depth, string sizes and
 * declared container counts are checked against limits and against the bytes actually left, before msgpack-c
 * (which allocates a container's declared size up front) or jansson allocate anything. */
#ifndef IB_CONV_H
#define IB_CONV_H

#include <jansson.h>
#include <msgpack.h>
#include <nng/nng.h>
#include <stddef.h>

typedef struct ib_conv_limits {
    size_t max_depth; /* nesting of arrays/maps */
    size_t max_items; /* all array elements and map entries together */
    size_t max_str;   /* bytes in one string */
} ib_conv_limits;

/* max_depth is msgpack-c's own limit: its unpacker keeps open containers on a fixed stack of
 * MSGPACK_EMBED_STACK_SIZE (32) entries and fails past it, so the checker refuses, with a message, what the
 * unpacker could not take. */
extern const ib_conv_limits ib_conv_default_limits;

/* Deepest nesting of arrays and objects accepted in JSON text from outside (HTTP bodies, package.json,
 * flow.json, refiner files). One number for every entry point, below msgpack-c's 32 with room for the envelope
 * and the replies that carry a value a few levels down, so whatever a daemon is handed crosses the wire and
 * back. It also bounds jansson's recursion (parse, dump, decref), which would overflow a small thread stack. */
#define IB_JSON_MAX_DEPTH 24

/* Scans JSON text for nesting, honouring strings and their escapes, without parsing it. 0 when no array or
 * object opens deeper than max_depth; -1 otherwise, with *at the offset of the bracket that goes too deep. Text
 * that is not JSON passes when shallow: the parser reports it. */
int ib_json_depth_check(const char *buf, size_t len, size_t max_depth, size_t *at);

/* json_loadb behind ib_json_depth_check(IB_JSON_MAX_DEPTH): text nested too deep is refused before jansson
 * sees it, with err->text "JSON nested deeper than 24 levels", line, column and position of the bracket, and
 * json_error_code(err) == json_error_stack_overflow (jansson's own code for the same fault). */
json_t *ib_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *err);
/* The same with another bound, for documents the server itself made deeper than any user's text (a compiled
 * flow holds formula trees) and that never cross the wire. */
json_t *ib_json_loadb_depth(const char *buf, size_t len, size_t flags, size_t max_depth, json_error_t *err);

/* json_dumps with every real as short as reads back the same number: 224.98, not jansson's default
 * 224.97999999999999, which is what a JSON client shows and what CSV writes. The precision is the least of 15,
 * 16 and 17 significant digits that round-trips every real in the value. flags must not set a precision. */
char *ib_json_dumps(const json_t *value, size_t flags);

/* Packs a JSON value. 0, or -1 when it nests deeper than max_depth. */
int ib_json_pack(msgpack_packer *pk, const json_t *value, size_t max_depth);

/* A msgpack_packer write callback that appends to the nng_msg given as its data. nng grows a message to exactly
 * the size an append asks for, so packing piece by piece copied the whole message at every piece: a reply of a
 * few MB (jobs/results of a 5,000-file job) took minutes. This grows it by doubling. 0, or -1 out of memory. */
int ib_msg_write(void *msg, const char *buf, size_t len);

/* Checks that buf[0..len) holds exactly one msgpack value within limits. 0, or -1 with a message. */
int ib_msgpack_check(const char *buf, size_t len, const ib_conv_limits *lim, char *err, size_t errsz);

/* Converts an unpacked object (from checked bytes) into a new JSON value. Map keys must be strings; binary
 * becomes a string; ext types and non-finite floats are refused. NULL with a message on error. */
json_t *ib_msgpack_to_json(const msgpack_object *o, char *err, size_t errsz);

/* Check + unpack + convert in one call. NULL with a message on error. */
json_t *ib_msgpack_decode_json(const char *buf, size_t len, const ib_conv_limits *lim, char *err, size_t errsz);

#endif
