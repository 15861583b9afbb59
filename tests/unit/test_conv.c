/* Unit tests of ib_conv and ib_env: round trips, and hostile msgpack that lies about sizes or nests deeply. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ib_conv.h"
#include "ib_env.h"
#include "ib_utf8.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int sbuf_write(void *data, const char *buf, size_t len)
{
    return msgpack_sbuffer_write((msgpack_sbuffer *)data, buf, len);
}

static json_t *round_trip(const json_t *in)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, sbuf_write);
    assert_int_equal(ib_json_pack(&pk, in, 64), 0);
    char err[256];
    json_t *out = ib_msgpack_decode_json(sb.data, sb.size, &ib_conv_default_limits, err, sizeof err);
    msgpack_sbuffer_destroy(&sb);
    return out;
}

static void test_round_trip(void **state)
{
    json_t *in = json_loads("{\"a\":[1,-2,3.5,\"x\",true,false,null,{}],\"b\":{\"c\":\"ünï\"},\"big\":9007199254740993}",
                            0, NULL);
    json_t *out = round_trip(in);
    assert_non_null(out);
    assert_true(json_equal(in, out));
    json_decref(in);
    json_decref(out);
}

static void expect_refused(const unsigned char *buf, size_t len, const char *fragment)
{
    char err[256] = "";
    json_t *j = ib_msgpack_decode_json((const char *)buf, len, &ib_conv_default_limits, err, sizeof err);
    assert_null(j);
    if (!strstr(err, fragment)) fail_msg("message '%s' lacks '%s'", err, fragment);
}

static void test_lying_counts(void **state)
{
    /* array32 declaring 4 billion elements in a 5-byte message */
    const unsigned char arr[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    expect_refused(arr, sizeof arr, "container declares");
    /* map16 of 1000 entries with 2 bytes left */
    const unsigned char map[] = {0xde, 0x03, 0xe8, 0xc0, 0xc0};
    expect_refused(map, sizeof map, "container declares");
    /* str32 of 2 GB */
    const unsigned char str[] = {0xdb, 0x7f, 0xff, 0xff, 0xff, 'a'};
    expect_refused(str, sizeof str, "passes the limit");
    const unsigned char str8[] = {0xd9, 0x10, 'a', 'b'};
    expect_refused(str8, sizeof str8, "declared size 16");
}

static void test_truncated_and_trailing(void **state)
{
    const unsigned char trunc[] = {0x92, 0x01};
    expect_refused(trunc, sizeof trunc, "container declares 2 elements but only 1 bytes are left");
    const unsigned char no_len[] = {0xd9};
    expect_refused(no_len, sizeof no_len, "message truncated: 1 bytes needed, 0 left");
    const unsigned char trail[] = {0x01, 0x02};
    expect_refused(trail, sizeof trail, "trailing");
    const unsigned char ext[] = {0xd4, 0x01, 0x00};
    expect_refused(ext, sizeof ext, "unsupported msgpack type 0xd4");
    expect_refused(NULL, 0, "truncated");
}

static void test_depth(void **state)
{
    unsigned char deep[200];
    memset(deep, 0x91, sizeof deep); /* [[[[...]]]] */
    deep[sizeof deep - 1] = 0xc0;
    expect_refused(deep, sizeof deep, "nesting deeper than 32");
    json_t *nest = json_array(), *cur = nest;
    for (int i = 0; i < 100; i++) {
        json_t *inner = json_array();
        json_array_append_new(cur, inner);
        cur = inner;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, sbuf_write);
    assert_int_equal(ib_json_pack(&pk, nest, 64), -1);
    msgpack_sbuffer_destroy(&sb);
    json_decref(nest);
}

/* n arrays, each holding the next, the innermost holding 1: msgpack bytes. */
static size_t nested_msgpack(unsigned char *out, size_t n)
{
    memset(out, 0x91, n);
    out[n] = 0x01;
    return n + 1;
}

/* The checker and msgpack-c agree: every depth the checker passes unpacks, the first one past it is refused
 * with the limit named (not "could not be unpacked"). */
static void test_depth_agrees_with_msgpack(void **state)
{
    unsigned char buf[80];
    for (size_t n = 1; n <= 64; n++) {
        size_t len = nested_msgpack(buf, n);
        char err[256] = "";
        json_t *j = ib_msgpack_decode_json((const char *)buf, len, &ib_conv_default_limits, err, sizeof err);
        if (n <= 32) {
            if (!j) fail_msg("depth %zu refused: %s", n, err);
        } else {
            assert_null(j);
            if (!strstr(err, "nesting deeper than 32")) fail_msg("depth %zu: '%s'", n, err);
        }
        json_decref(j);
    }
}

/* "{"a":" + n arrays around 1 + closers: JSON text whose deepest bracket is at depth n + 1. */
static char *nested_json(size_t n)
{
    char *s = malloc(2 * n + 16);
    size_t k = (size_t)sprintf(s, "{\"a\":");
    memset(s + k, '[', n);
    k += n;
    s[k++] = '1';
    memset(s + k, ']', n);
    k += n;
    strcpy(s + k, "}");
    return s;
}

static void test_json_depth(void **state)
{
    size_t at = 99;
    /* brackets inside strings, escaped quotes and backslashes do not count */
    const char *tricky = "{\"k\":\"[[[[\\\"[[\\\\\",\"l\":[[\"]]]]\"]]}";
    assert_int_equal(ib_json_depth_check(tricky, strlen(tricky), 3, &at), 0);
    assert_int_equal(ib_json_depth_check(tricky, strlen(tricky), 2, &at), -1);
    assert_int_equal(at, strlen("{\"k\":\"[[[[\\\"[[\\\\\",\"l\":["));
    json_error_t je;
    json_t *j = ib_json_loadb(tricky, strlen(tricky), JSON_REJECT_DUPLICATES, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "k")), "[[[[\"[[\\");
    json_decref(j);

    /* the deepest accepted text becomes an envelope that a daemon decodes */
    char *ok = nested_json(IB_JSON_MAX_DEPTH - 1);
    j = ib_json_loadb(ok, strlen(ok), 0, &je);
    free(ok);
    assert_non_null(j);
    nng_msg *msg;
    assert_int_equal(nng_msg_alloc(&msg, 0), 0);
    ib_caller who = {"jay", "user", "rid"};
    assert_int_equal(ib_request_encode(msg, "x.y", &who, j), 0);
    ib_request req;
    char err[256];
    if (ib_request_decode(nng_msg_body(msg), nng_msg_len(msg), &req, err, sizeof err) != 0) fail_msg("%s", err);
    assert_true(json_equal(req.args, j));
    ib_request_clear(&req);
    nng_msg_free(msg);
    json_decref(j);

    /* one level more, and 1000 more: refused before jansson, with the limit and the place named */
    for (size_t n = IB_JSON_MAX_DEPTH; n <= 1000; n += 976) {
        char *deep = nested_json(n);
        j = ib_json_loadb(deep, strlen(deep), 0, &je);
        free(deep);
        assert_null(j);
        assert_string_equal(je.text, "JSON nested deeper than 24 levels");
        assert_int_equal(json_error_code(&je), json_error_stack_overflow);
        assert_int_equal(je.line, 1);
        assert_int_equal(je.column, 5 + IB_JSON_MAX_DEPTH); /* {"a": then the bracket at level 25 */
        assert_int_equal(je.position, 4 + IB_JSON_MAX_DEPTH);
    }
    /* documents the server made itself may be given a deeper bound */
    char *deeper = nested_json(100);
    j = ib_json_loadb_depth(deeper, strlen(deeper), 0, 101, &je);
    assert_non_null(j);
    json_decref(j);
    assert_null(ib_json_loadb_depth(deeper, strlen(deeper), 0, 100, &je));
    assert_string_equal(je.text, "JSON nested deeper than 100 levels");
    free(deeper);
    /* a value deeper than the wire allows is refused when packed, not sent to fail at the other end */
    char *deep = nested_json(40);
    j = json_loads(deep, 0, NULL);
    free(deep);
    assert_int_equal(nng_msg_alloc(&msg, 0), 0);
    assert_int_equal(ib_request_encode(msg, "x.y", &who, j), -1);
    nng_msg_free(msg);
    json_decref(j);
}

static void test_utf8(void **state)
{
    assert_true(ib_utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
    assert_true(ib_utf8_valid("", 0));
    assert_false(ib_utf8_valid("caf\xe9", 4));         /* latin-1 */
    assert_false(ib_utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
    assert_false(ib_utf8_valid("\xed\xa0\x80", 3));     /* a surrogate */
    assert_false(ib_utf8_valid("\xf4\x90\x80\x80", 4)); /* past U+10FFFF */
    assert_false(ib_utf8_valid("\xe2\x82", 2));         /* cut short */
    char out[64];
    assert_string_equal(ib_utf8_escape("caf\xe9.txt", out, sizeof out), "caf\\xe9.txt");
    assert_string_equal(ib_utf8_escape("\xc3\xa9\xff\xc3", out, sizeof out), "\xc3\xa9\\xff\\xc3");
    /* cut before an escape that does not fit, never inside one */
    assert_string_equal(ib_utf8_escape("ab\xff", out, 6), "ab");
    /* every reply message is made valid, whatever a handler put in it */
    ib_reply rep;
    ib_reply_init(&rep);
    ib_fail(&rep, IB_NOT_FOUND, "path: '/%s' does not exist", "jay/caf\xe9");
    assert_string_equal(rep.msg, "path: '/jay/caf\\xe9' does not exist");
    json_t *j = json_string(rep.msg);
    assert_non_null(j);
    json_decref(j);
}

static void test_bad_strings(void **state)
{
    const unsigned char bad_utf8[] = {0xa2, 0xc3, 0x28};
    expect_refused(bad_utf8, sizeof bad_utf8, "not valid UTF-8");
    const unsigned char int_key[] = {0x81, 0x01, 0x02};
    expect_refused(int_key, sizeof int_key, "map key is not a string");
}

static void test_envelopes(void **state)
{
    nng_msg *msg;
    assert_int_equal(nng_msg_alloc(&msg, 0), 0);
    json_t *args = json_pack("{s:s}", "content_folder", "/jay/x");
    ib_caller who = {"jay", "user", "rid1"};
    assert_int_equal(ib_request_encode(msg, "solution.create", &who, args), 0);
    ib_request req;
    char err[256];
    assert_int_equal(ib_request_decode(nng_msg_body(msg), nng_msg_len(msg), &req, err, sizeof err), 0);
    assert_string_equal(req.op, "solution.create");
    assert_string_equal(req.who.user, "jay");
    assert_string_equal(req.who.role, "user");
    assert_string_equal(req.who.rid, "rid1");
    assert_true(json_equal(req.args, args));
    ib_request_clear(&req);
    json_decref(args);

    nng_msg_clear(msg);
    ib_reply rep, back;
    ib_reply_init(&rep);
    ib_reply_init(&back);
    ib_fail(&rep, IB_CONFLICT, "version %s taken", "1.0.0");
    json_object_set_new(ib_reply_data(&rep), "sha256", json_string("ab"));
    assert_int_equal(ib_reply_encode(msg, &rep), 0);
    assert_int_equal(ib_reply_decode(nng_msg_body(msg), nng_msg_len(msg), &back), 0);
    assert_int_equal(back.code, IB_CONFLICT);
    assert_string_equal(back.msg, "version 1.0.0 taken");
    assert_string_equal(json_string_value(json_object_get(back.data, "sha256")), "ab");
    ib_reply_clear(&rep);
    ib_reply_clear(&back);
    assert_false(ib_reply_is_full(&back));

    /* "full" (nothing done, send it elsewhere) crosses the wire; a plain unavailable is not "full" */
    nng_msg_clear(msg);
    assert_int_equal(ib_reply_full(&rep, "runner '%s' is full", "r1"), IB_UNAVAILABLE);
    assert_int_equal(ib_reply_encode(msg, &rep), 0);
    assert_int_equal(ib_reply_decode(nng_msg_body(msg), nng_msg_len(msg), &back), 0);
    assert_true(ib_reply_is_full(&back));
    assert_string_equal(back.msg, "runner 'r1' is full");
    ib_reply_clear(&rep);
    ib_reply_clear(&back);
    ib_fail(&rep, IB_UNAVAILABLE, "down");
    assert_false(ib_reply_is_full(&rep));
    ib_reply_clear(&rep);

    /* a request without op, and one whose args are not a map */
    const unsigned char no_op[] = {0x81, 0xa3, 'r', 'i', 'd', 0xa1, 'x'};
    assert_int_equal(ib_request_decode(no_op, sizeof no_op, &req, err, sizeof err), -1);
    assert_string_equal(err, "envelope has no 'op'");
    const unsigned char bad_args[] = {0x82, 0xa2, 'o', 'p', 0xa1, 'x', 0xa4, 'a', 'r', 'g', 's', 0x01};
    assert_int_equal(ib_request_decode(bad_args, sizeof bad_args, &req, err, sizeof err), -1);
    assert_string_equal(err, "envelope 'args' is not a map");
    /* a reply that is garbage */
    assert_int_equal(ib_reply_decode("\xc1", 1, &back), -1);
    assert_int_equal(back.code, IB_INTERNAL);
    ib_reply_clear(&back);
    nng_msg_free(msg);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A reply of a few MB packed piece by piece (jobs/results of a 5,000-file job is about 6 MB) once took minutes,
 * because every piece copied the whole message so far; it must take a moment, and round-trip whole. */
static void test_large_reply_encodes_in_linear_time(void **state)
{
    (void)state;
    ib_reply rep, back;
    ib_reply_init(&rep);
    ib_reply_init(&back);
    json_t *records = json_array();
    for (int i = 0; i < 100000; i++)
        json_array_append_new(records, json_pack("{s:s, s:i, s:[f,f]}", "key", "invoice_no", "page", i, "bbox", 1.5,
                                                 2.25));
    json_object_set_new(ib_reply_data(&rep), "records", records);
    nng_msg *msg;
    assert_int_equal(nng_msg_alloc(&msg, 0), 0);
    double t0 = now_s();
    assert_int_equal(ib_reply_encode(msg, &rep), 0);
    double took = now_s() - t0;
    assert_true(nng_msg_len(msg) > (size_t)3 << 20);
    assert_true(took < 20.0); /* linear: well under a second even under the sanitizers; quadratic: hours */
    assert_int_equal(ib_reply_decode(nng_msg_body(msg), nng_msg_len(msg), &back), 0);
    assert_int_equal(json_array_size(json_object_get(back.data, "records")), 100000);
    assert_true(json_equal(json_object_get(back.data, "records"), records));
    nng_msg_free(msg);
    ib_reply_clear(&rep);
    ib_reply_clear(&back);
}

static void test_codes(void **state)
{
    assert_int_equal(ib_code_http(IB_BAD_REQUEST), 400);
    assert_int_equal(ib_code_http(IB_UNAUTHORIZED), 401);
    assert_int_equal(ib_code_http(IB_FORBIDDEN), 403);
    assert_int_equal(ib_code_http(IB_NOT_FOUND), 404);
    assert_int_equal(ib_code_http(IB_CONFLICT), 409);
    assert_int_equal(ib_code_http(IB_TOO_LARGE), 413);
    assert_int_equal(ib_code_http(IB_UNAVAILABLE), 503);
    assert_int_equal(ib_code_http(IB_TIMEOUT), 504);
    assert_int_equal(ib_code_http(IB_INTERNAL), 500);
    assert_int_equal(ib_code_http(IB_NOT_IMPLEMENTED), 501);
    assert_int_equal(ib_code_http(IB_NO_SPACE), 507);
    assert_string_equal(ib_code_word(IB_NO_SPACE), "insufficient_storage");
    ib_reply rep;
    ib_reply_init(&rep);
    assert_int_equal(ib_fail_write(&rep, ENOSPC, "writing '%s'", "a.txt"), IB_NO_SPACE);
    assert_string_equal(rep.msg, "writing 'a.txt': no space left on the data root");
    assert_int_equal(ib_fail_write(&rep, EDQUOT, "x"), IB_NO_SPACE);
    assert_int_equal(ib_fail_write(&rep, EIO, "writing '%s'", "a.txt"), IB_INTERNAL);
    assert_string_equal(rep.msg, "writing 'a.txt': Input/output error");
    for (int c = 0; c < IB_CODE_COUNT; c++) assert_int_equal(ib_code_from_word(ib_code_word((ib_code)c)), c);
    assert_int_equal(ib_code_from_word("nonsense"), IB_INTERNAL);
}

/* Reals print as short as reads back the same number: whole replies at the least precision that round-trips
 * every real in them, so 224.98 stays 224.98 and 0.1 + 0.2 keeps its 17 digits. */
static void test_json_dumps_short_reals(void **state)
{
    (void)state;
    json_t *v = json_pack("{s:f, s:[f, i, s]}", "total", 224.98, "more", 1e-7, 3, "x");
    char *text = ib_json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text, "{\"more\":[1e-7,3,\"x\"],\"total\":224.98}");
    free(text);
    json_object_set_new(v, "sum", json_real(0.1 + 0.2));
    text = ib_json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    json_t *back = json_loads(text, 0, NULL);
    assert_true(json_equal(back, v)); /* every real reads back the same */
    assert_non_null(strstr(text, "0.30000000000000004"));
    json_decref(back);
    free(text);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_dumps_short_reals),
        cmocka_unit_test(test_round_trip),      cmocka_unit_test(test_lying_counts),
        cmocka_unit_test(test_truncated_and_trailing), cmocka_unit_test(test_depth),
        cmocka_unit_test(test_depth_agrees_with_msgpack), cmocka_unit_test(test_json_depth),
        cmocka_unit_test(test_bad_strings),     cmocka_unit_test(test_utf8),     cmocka_unit_test(test_envelopes),
        cmocka_unit_test(test_codes),           cmocka_unit_test(test_large_reply_encodes_in_linear_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
