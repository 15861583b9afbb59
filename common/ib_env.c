/* ib_env: request and reply envelopes. */
#include "ib_env.h"

#include "ib_conv.h"

#include <stdio.h>
#include <string.h>

static void pack_cstr(msgpack_packer *pk, const char *s)
{
    size_t len = strlen(s ? s : "");
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, s ? s : "", len);
}

static void pack_kv(msgpack_packer *pk, const char *key, const char *value)
{
    pack_cstr(pk, key);
    pack_cstr(pk, value);
}

int ib_request_encode(nng_msg *msg, const char *op, const ib_caller *who, const json_t *args)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, msg, ib_msg_write);
    msgpack_pack_map(&pk, 5);
    pack_kv(&pk, "op", op);
    pack_kv(&pk, "rid", who ? who->rid : "");
    pack_kv(&pk, "user", who ? who->user : "");
    pack_kv(&pk, "role", who ? who->role : "");
    pack_cstr(&pk, "args");
    if (args) return ib_json_pack(&pk, args, ib_conv_default_limits.max_depth - 1); /* the envelope is one level */
    return msgpack_pack_map(&pk, 0);
}

static int copy_str(const json_t *obj, const char *key, char *out, size_t outsz, int required, char *err,
                    size_t errsz)
{
    const json_t *v = json_object_get(obj, key);
    if (!v) {
        out[0] = '\0';
        if (!required) return 0;
        snprintf(err, errsz, "envelope has no '%s'", key);
        return -1;
    }
    if (!json_is_string(v) || json_string_length(v) >= outsz) {
        snprintf(err, errsz, "envelope '%s' is not a string of at most %zu bytes", key, outsz - 1);
        return -1;
    }
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

int ib_request_decode(const void *buf, size_t len, ib_request *out, char *err, size_t errsz)
{
    memset(out, 0, sizeof *out);
    json_t *env = ib_msgpack_decode_json(buf, len, &ib_conv_default_limits, err, errsz);
    if (!env) return -1;
    int rc = -1;
    if (!json_is_object(env)) {
        snprintf(err, errsz, "envelope is not a map");
        goto done;
    }
    if (copy_str(env, "op", out->op, sizeof out->op, 1, err, errsz) < 0 ||
        copy_str(env, "rid", out->rid, sizeof out->rid, 0, err, errsz) < 0 ||
        copy_str(env, "user", out->user, sizeof out->user, 0, err, errsz) < 0 ||
        copy_str(env, "role", out->role, sizeof out->role, 0, err, errsz) < 0)
        goto done;
    json_t *args = json_object_get(env, "args");
    if (args && !json_is_object(args)) {
        snprintf(err, errsz, "envelope 'args' is not a map");
        goto done;
    }
    out->args = args ? json_incref(args) : json_object();
    out->who.user = out->user;
    out->who.role = out->role;
    out->who.rid = out->rid;
    rc = 0;
done:
    json_decref(env);
    return rc;
}

void ib_request_clear(ib_request *r)
{
    json_decref(r->args);
    r->args = NULL;
}

int ib_reply_encode(nng_msg *msg, const ib_reply *rep)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, msg, ib_msg_write);
    msgpack_pack_map(&pk, 4);
    pack_kv(&pk, "status", rep->code == IB_OK ? "OK" : "ERROR");
    pack_kv(&pk, "code", ib_code_word(rep->code));
    pack_kv(&pk, "msg", rep->msg);
    pack_cstr(&pk, "data");
    if (rep->data) return ib_json_pack(&pk, rep->data, ib_conv_default_limits.max_depth - 1); /* envelope */
    return msgpack_pack_nil(&pk);
}

int ib_reply_decode(const void *buf, size_t len, ib_reply *rep)
{
    char err[256];
    ib_reply_clear(rep);
    json_t *env = ib_msgpack_decode_json(buf, len, &ib_conv_default_limits, err, sizeof err);
    if (!env || !json_is_object(env)) {
        json_decref(env);
        ib_fail(rep, IB_INTERNAL, "malformed reply from service: %s", env ? "not a map" : err);
        return -1;
    }
    const char *status = json_string_value(json_object_get(env, "status"));
    const char *code = json_string_value(json_object_get(env, "code"));
    const char *msg = json_string_value(json_object_get(env, "msg"));
    rep->code = (status && !strcmp(status, "OK")) ? IB_OK : ib_code_from_word(code);
    if (rep->code == IB_OK && !(status && !strcmp(status, "OK"))) rep->code = IB_INTERNAL;
    snprintf(rep->msg, sizeof rep->msg, "%s", msg ? msg : "");
    json_t *data = json_object_get(env, "data");
    if (json_is_object(data)) rep->data = json_incref(data);
    json_decref(env);
    return 0;
}
