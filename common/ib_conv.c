/* ib_conv: JSON <-> msgpack. The checker walks the raw bytes (sizes per the msgpack spec) so that nothing is
 * allocated for a message that lies about its sizes; msgpack-c then unpacks the checked bytes. */
#include "ib_conv.h"

#include <math.h>
#include <msgpack/unpack_define.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

const ib_conv_limits ib_conv_default_limits = {
    .max_depth = MSGPACK_EMBED_STACK_SIZE, .max_items = 1u << 20, .max_str = 128u << 20};

/* The envelope (1 level), a reply's data and a job record around a user's value (a few more): 8 to spare. */
_Static_assert(IB_JSON_MAX_DEPTH + 8 <= MSGPACK_EMBED_STACK_SIZE,
               "JSON accepted from outside must stay unpackable by msgpack-c once wrapped");

/* --- JSON text in --------------------------------------------------------------------------------------- */

int ib_json_depth_check(const char *buf, size_t len, size_t max_depth, size_t *at)
{
    size_t depth = 0;
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (in_str) {
            if (c == '\\')
                i++; /* the escaped byte cannot end the string; \uXXXX's digits need no care */
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth) {
                if (at) *at = i;
                return -1;
            }
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return 0;
}

json_t *ib_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *err)
{
    return ib_json_loadb_depth(buf, len, flags, IB_JSON_MAX_DEPTH, err);
}

json_t *ib_json_loadb_depth(const char *buf, size_t len, size_t flags, size_t max_depth, json_error_t *err)
{
    size_t at;
    if (ib_json_depth_check(buf, len, max_depth, &at) == 0) return json_loadb(buf, len, flags, err);
    if (err) {
        int line = 1, column = 1; /* jansson counts both from 1 */
        for (size_t i = 0; i < at; i++) {
            if (buf[i] == '\n') {
                line++;
                column = 1;
            } else {
                column++;
            }
        }
        memset(err, 0, sizeof *err);
        err->line = line;
        err->column = column;
        err->position = (int)at;
        snprintf(err->source, sizeof err->source, "<buffer>");
        snprintf(err->text, sizeof err->text - 1, "JSON nested deeper than %zu levels", max_depth);
        err->text[sizeof err->text - 1] = (char)json_error_stack_overflow;
    }
    return NULL;
}

/* --- JSON text out ------------------------------------------------------------------------------------- */

/* The least precision (15..17) at which every real below v prints as a number that reads back the same. */
static int real_digits(const json_t *v, int digits)
{
    if (json_is_real(v)) {
        double d = json_real_value(v);
        char text[40];
        for (; digits < 17; digits++) {
            snprintf(text, sizeof text, "%.*g", digits, d);
            if (strtod(text, NULL) == d) break;
        }
        return digits;
    }
    size_t i;
    const char *key;
    json_t *item;
    if (json_is_array(v)) {
        json_array_foreach((json_t *)v, i, item) if ((digits = real_digits(item, digits)) == 17) break;
    } else if (json_is_object(v)) {
        json_object_foreach((json_t *)v, key, item) if ((digits = real_digits(item, digits)) == 17) break;
    }
    return digits;
}

char *ib_json_dumps(const json_t *value, size_t flags)
{
    return json_dumps(value, flags | JSON_REAL_PRECISION(real_digits(value, 15)));
}

int ib_json_pack(msgpack_packer *pk, const json_t *v, size_t max_depth)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (max_depth == 0) return -1;
        const char *key;
        json_t *item;
        msgpack_pack_map(pk, json_object_size(v));
        json_object_foreach((json_t *)v, key, item)
        {
            size_t klen = strlen(key);
            msgpack_pack_str(pk, klen);
            msgpack_pack_str_body(pk, key, klen);
            if (ib_json_pack(pk, item, max_depth - 1) < 0) return -1;
        }
        return 0;
    }
    case JSON_ARRAY: {
        if (max_depth == 0) return -1;
        size_t i;
        json_t *item;
        msgpack_pack_array(pk, json_array_size(v));
        json_array_foreach(v, i, item) if (ib_json_pack(pk, item, max_depth - 1) < 0) return -1;
        return 0;
    }
    case JSON_STRING: {
        size_t len = json_string_length(v);
        msgpack_pack_str(pk, len);
        return msgpack_pack_str_body(pk, json_string_value(v), len);
    }
    case JSON_INTEGER:
        return msgpack_pack_int64(pk, json_integer_value(v));
    case JSON_REAL:
        return msgpack_pack_double(pk, json_real_value(v));
    case JSON_TRUE:
        return msgpack_pack_true(pk);
    case JSON_FALSE:
        return msgpack_pack_false(pk);
    case JSON_NULL:
        return msgpack_pack_nil(pk);
    }
    return -1;
}

/* --- checker ------------------------------------------------------------------------------------------- */

typedef struct walker {
    const unsigned char *p, *end;
    const ib_conv_limits *lim;
    size_t items;
    char *err;
    size_t errsz;
} walker;

static int need(walker *w, size_t n)
{
    if ((size_t)(w->end - w->p) < n) {
        snprintf(w->err, w->errsz, "message truncated: %zu bytes needed, %zu left", n, (size_t)(w->end - w->p));
        return -1;
    }
    return 0;
}

static uint64_t be(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

/* Reads an n-byte big-endian length after the type byte. */
static int length(walker *w, size_t n, uint64_t *out)
{
    if (need(w, n) < 0) return -1;
    *out = be(w->p, n);
    w->p += n;
    return 0;
}

static int skip_bytes(walker *w, uint64_t n, int is_str)
{
    if (is_str && n > w->lim->max_str) {
        snprintf(w->err, w->errsz, "string of %llu bytes passes the limit of %zu", (unsigned long long)n,
                 w->lim->max_str);
        return -1;
    }
    if ((uint64_t)(w->end - w->p) < n) {
        snprintf(w->err, w->errsz, "declared size %llu passes the %zu bytes left", (unsigned long long)n,
                 (size_t)(w->end - w->p));
        return -1;
    }
    w->p += n;
    return 0;
}

static int walk(walker *w, size_t depth);

static int container(walker *w, uint64_t count, int is_map, size_t depth)
{
    if (depth >= w->lim->max_depth) {
        snprintf(w->err, w->errsz, "nesting deeper than %zu", w->lim->max_depth);
        return -1;
    }
    /* Every element takes at least one byte: a count larger than the bytes left is a lie. */
    uint64_t elems = is_map ? count * 2 : count;
    if (count > UINT32_MAX || elems > (uint64_t)(w->end - w->p)) {
        snprintf(w->err, w->errsz, "container declares %llu elements but only %zu bytes are left",
                 (unsigned long long)count, (size_t)(w->end - w->p));
        return -1;
    }
    w->items += count;
    if (w->items > w->lim->max_items) {
        snprintf(w->err, w->errsz, "more than %zu items", w->lim->max_items);
        return -1;
    }
    for (uint64_t i = 0; i < elems; i++)
        if (walk(w, depth + 1) < 0) return -1;
    return 0;
}

static int walk(walker *w, size_t depth)
{
    if (need(w, 1) < 0) return -1;
    unsigned t = *w->p++;
    uint64_t n;
    if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) return 0; /* fixint, nil, bool */
    if ((t & 0xe0) == 0xa0) return skip_bytes(w, t & 0x1f, 1);                   /* fixstr */
    if ((t & 0xf0) == 0x90) return container(w, t & 0x0f, 0, depth);             /* fixarray */
    if ((t & 0xf0) == 0x80) return container(w, t & 0x0f, 1, depth);             /* fixmap */
    switch (t) {
    case 0xcc: case 0xd0: return skip_bytes(w, 1, 0);
    case 0xcd: case 0xd1: return skip_bytes(w, 2, 0);
    case 0xce: case 0xd2: case 0xca: return skip_bytes(w, 4, 0);
    case 0xcf: case 0xd3: case 0xcb: return skip_bytes(w, 8, 0);
    case 0xd9: case 0xc4: return length(w, 1, &n) < 0 ? -1 : skip_bytes(w, n, 1);
    case 0xda: case 0xc5: return length(w, 2, &n) < 0 ? -1 : skip_bytes(w, n, 1);
    case 0xdb: case 0xc6: return length(w, 4, &n) < 0 ? -1 : skip_bytes(w, n, 1);
    case 0xdc: return length(w, 2, &n) < 0 ? -1 : container(w, n, 0, depth);
    case 0xdd: return length(w, 4, &n) < 0 ? -1 : container(w, n, 0, depth);
    case 0xde: return length(w, 2, &n) < 0 ? -1 : container(w, n, 1, depth);
    case 0xdf: return length(w, 4, &n) < 0 ? -1 : container(w, n, 1, depth);
    default:
        snprintf(w->err, w->errsz, "unsupported msgpack type 0x%02x", t); /* ext types, 0xc1 */
        return -1;
    }
}

int ib_msgpack_check(const char *buf, size_t len, const ib_conv_limits *lim, char *err, size_t errsz)
{
    walker w = {(const unsigned char *)buf, (const unsigned char *)buf + len, lim ? lim : &ib_conv_default_limits,
                0, err, errsz};
    if (walk(&w, 0) < 0) return -1;
    if (w.p != w.end) {
        snprintf(err, errsz, "%zu bytes of trailing data", (size_t)(w.end - w.p));
        return -1;
    }
    return 0;
}

/* --- msgpack object -> JSON ---------------------------------------------------------------------------- */

json_t *ib_msgpack_to_json(const msgpack_object *o, char *err, size_t errsz)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > INT64_MAX) return json_real((double)o->via.u64);
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (!isfinite(o->via.f64)) {
            snprintf(err, errsz, "non-finite number");
            return NULL;
        }
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR:
    case MSGPACK_OBJECT_BIN: {
        const char *ptr = o->type == MSGPACK_OBJECT_STR ? o->via.str.ptr : o->via.bin.ptr;
        size_t size = o->type == MSGPACK_OBJECT_STR ? o->via.str.size : o->via.bin.size;
        json_t *s = json_stringn(ptr, size); /* refuses invalid UTF-8: JSON out must stay valid */
        if (!s) snprintf(err, errsz, "string is not valid UTF-8");
        return s;
    }
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < o->via.array.size; i++) {
            json_t *item = ib_msgpack_to_json(&o->via.array.ptr[i], err, errsz);
            if (!item || json_array_append_new(a, item) < 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        char key[1024];
        for (uint32_t i = 0; m && i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR || kv->key.via.str.size >= sizeof key ||
                memchr(kv->key.via.str.ptr, 0, kv->key.via.str.size)) {
                snprintf(err, errsz, "map key is not a string of at most %zu bytes", sizeof key - 1);
                json_decref(m);
                return NULL;
            }
            memcpy(key, kv->key.via.str.ptr, kv->key.via.str.size);
            key[kv->key.via.str.size] = '\0';
            json_t *item = ib_msgpack_to_json(&kv->val, err, errsz);
            if (!item || json_object_set_new(m, key, item) < 0) {
                json_decref(m);
                return NULL;
            }
        }
        return m;
    }
    default:
        snprintf(err, errsz, "unsupported msgpack type");
        return NULL;
    }
}

json_t *ib_msgpack_decode_json(const char *buf, size_t len, const ib_conv_limits *lim, char *err, size_t errsz)
{
    if (ib_msgpack_check(buf, len, lim, err, errsz) < 0) return NULL;
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    msgpack_object obj;
    size_t off = 0;
    json_t *out = NULL;
    if (msgpack_unpack(buf, len, &off, &zone, &obj) == MSGPACK_UNPACK_SUCCESS)
        out = ib_msgpack_to_json(&obj, err, errsz);
    else
        snprintf(err, errsz, "msgpack could not be unpacked");
    msgpack_zone_destroy(&zone);
    return out;
}

int ib_msg_write(void *data, const char *buf, size_t len)
{
    nng_msg *msg = data;
    size_t need = nng_msg_len(msg) + len, cap = nng_msg_capacity(msg);
    if (need > cap && nng_msg_reserve(msg, need > 2 * cap ? need : 2 * cap) != 0) return -1;
    return nng_msg_append(msg, buf, len) == 0 ? 0 : -1;
}
