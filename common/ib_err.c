/* ib_err: error code table and reply helpers. */
#include "ib_err.h"

#include "ib_utf8.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *word;
    int http;
} code_table[IB_CODE_COUNT] = {
    [IB_OK] = {"ok", 200},
    [IB_BAD_REQUEST] = {"bad_request", 400},
    [IB_UNAUTHORIZED] = {"unauthorized", 401},
    [IB_FORBIDDEN] = {"forbidden", 403},
    [IB_NOT_FOUND] = {"not_found", 404},
    [IB_CONFLICT] = {"conflict", 409},
    [IB_TOO_LARGE] = {"too_large", 413},
    [IB_UNAVAILABLE] = {"unavailable", 503},
    [IB_TIMEOUT] = {"timeout", 504},
    [IB_INTERNAL] = {"internal", 500},
    [IB_NOT_IMPLEMENTED] = {"not_implemented", 501},
    [IB_NO_SPACE] = {"insufficient_storage", 507}, /* RFC 4918's status for "cannot store" */
};

const char *ib_code_word(ib_code code)
{
    return (code >= 0 && code < IB_CODE_COUNT) ? code_table[code].word : "internal";
}

int ib_code_http(ib_code code)
{
    return (code >= 0 && code < IB_CODE_COUNT) ? code_table[code].http : 500;
}

ib_code ib_code_from_word(const char *word)
{
    for (int i = 0; word && i < IB_CODE_COUNT; i++)
        if (strcmp(code_table[i].word, word) == 0) return (ib_code)i;
    return IB_INTERNAL;
}

void ib_reply_init(ib_reply *r)
{
    r->code = IB_OK;
    r->msg[0] = '\0';
    r->data = NULL;
}

void ib_reply_clear(ib_reply *r)
{
    json_decref(r->data);
    ib_reply_init(r);
}

ib_code ib_vfail(ib_reply *r, ib_code code, const char *fmt, va_list ap)
{
    r->code = code;
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    /* A message names paths, and a path may hold bytes that are not UTF-8: escaped here, once for every
     * handler, the message stays encodable in the reply (JSON, and the envelope's check of it). */
    if (!ib_utf8_valid(r->msg, strlen(r->msg))) {
        char fixed[IB_MSG_MAX];
        ib_utf8_escape(r->msg, fixed, sizeof fixed);
        memcpy(r->msg, fixed, strlen(fixed) + 1);
    }
    return code;
}

ib_code ib_fail(ib_reply *r, ib_code code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ib_vfail(r, code, fmt, ap);
    va_end(ap);
    return code;
}

int ib_errno_no_space(int err)
{
    return err == ENOSPC || err == EDQUOT;
}

ib_code ib_fail_write(ib_reply *r, int err, const char *fmt, ...)
{
    char what[IB_MSG_MAX / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (ib_errno_no_space(err)) return ib_fail(r, IB_NO_SPACE, "%s: " IB_NO_SPACE_MSG, what);
    return ib_fail(r, IB_INTERNAL, "%s: %s", what, strerror(err));
}

json_t *ib_reply_data(ib_reply *r)
{
    if (!r->data) r->data = json_object();
    return r->data;
}

#define FULL_KEY "$full" /* in an error reply's data, which the gateway never shows */

ib_code ib_reply_full(ib_reply *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ib_vfail(r, IB_UNAVAILABLE, fmt, ap);
    va_end(ap);
    json_object_set_new(ib_reply_data(r), FULL_KEY, json_true());
    return r->code;
}

int ib_reply_is_full(const ib_reply *r)
{
    return r->code == IB_UNAVAILABLE && json_is_true(json_object_get(r->data, FULL_KEY));
}

int ib_caller_is_admin(const ib_caller *c)
{
    return c && c->role && strcmp(c->role, "admin") == 0;
}

int ib_errf(char *err, size_t errsz, const char *fmt, ...)
{
    if (err && errsz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
    }
    return -1;
}
