/* Unit tests of ib_config (environment, flags, bounds, help) and ib_ops argument checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ib_config.h"
#include "ib_ops.h"
#include "ib_settings.h"

#include <stdlib.h>
#include <string.h>

static char *s_name;
static long long s_port;
static int s_flag;
static const ib_cfg table[] = {
    {"test_name", IB_CFG_STR, "dflt", 0, 0, &s_name, "a name"},
    {"test_port", IB_CFG_INT, "8080", 1, 65535, &s_port, "a port"},
    {"test_flag", IB_CFG_BOOL, "false", 0, 0, &s_flag, "a flag"},
};

static int load(int argc, char **argv, char *err, int *rest)
{
    const ib_cfg *tables[1] = {table};
    size_t counts[1] = {3};
    return ib_config_load(tables, counts, 1, argc, argv, "t", "test", rest, err, 256);
}

static void release(void)
{
    const ib_cfg *tables[1] = {table};
    size_t counts[1] = {3};
    ib_config_free(tables, counts, 1);
}

static void test_defaults_env_flags(void **state)
{
    char err[256];
    int rest;
    unsetenv("IBSOL_TEST_NAME");
    setenv("IBSOL_TEST_PORT", "9000", 1);
    char *argv[] = {"t", "--test-name=x y", "--test-flag", "positional", NULL};
    assert_int_equal(load(4, argv, err, &rest), 0);
    assert_string_equal(s_name, "x y");
    assert_int_equal(s_port, 9000);
    assert_int_equal(s_flag, 1);
    assert_int_equal(rest, 2);
    assert_string_equal(argv[1], "positional");
    release();
    char *argv2[] = {"t", "--test-port", "70", NULL};
    assert_int_equal(load(3, argv2, err, &rest), 0);
    assert_int_equal(s_port, 70); /* the flag wins over the environment */
    release();
    unsetenv("IBSOL_TEST_PORT");
}

static void test_bad_values(void **state)
{
    char err[256];
    int rest;
    setenv("IBSOL_TEST_PORT", "80a", 1);
    char *argv[] = {"t", NULL};
    assert_int_equal(load(1, argv, err, &rest), -1);
    assert_string_equal(err, "IBSOL_TEST_PORT: '80a' is not a whole number");
    release();
    unsetenv("IBSOL_TEST_PORT");
    char *argv2[] = {"t", "--test-port=0", NULL};
    assert_int_equal(load(2, argv2, err, &rest), -1);
    assert_string_equal(err, "--test-port: 0 is outside 1..65535");
    release();
    char *argv3[] = {"t", "--test-flag=maybe", NULL};
    assert_int_equal(load(2, argv3, err, &rest), -1);
    assert_string_equal(err, "--test-flag: 'maybe' is not a boolean (true/false)");
    release();
    char *argv4[] = {"t", "--test-name", NULL};
    assert_int_equal(load(2, argv4, err, &rest), -1);
    assert_string_equal(err, "--test-name needs a value");
    release();
}

static void test_url_check(void **state)
{
    char err[256];
    assert_int_equal(ib_url_check("X", "tcp://gateway:5555", err, sizeof err), 0);
    assert_int_equal(ib_url_check("X", "ipc:///tmp/a.ipc", err, sizeof err), 0);
    assert_int_equal(ib_url_check("X", "http://x", err, sizeof err), -1);
    assert_string_equal(err, "X: 'http://x' is not a URL this server speaks (ipc://PATH, tcp://HOST:PORT, "
                             "tls+tcp://HOST:PORT, inproc://NAME)");
    assert_int_equal(ib_url_check("X", "tcp://host", err, sizeof err), -1);
    assert_string_equal(err, "X: 'tcp://host' is not tcp://HOST:PORT");
    assert_int_equal(ib_url_check("X", "tcp://host:99999", err, sizeof err), -1);
    /* the TLS transport: the same HOST:PORT rules */
    assert_int_equal(ib_url_check("X", "tls+tcp://gateway:7003", err, sizeof err), 0);
    assert_int_equal(ib_url_check("X", "tls+tcp6://[::1]:7003", err, sizeof err), 0);
    assert_int_equal(ib_url_check("X", "tls+tcp://gateway", err, sizeof err), -1);
    assert_string_equal(err, "X: 'tls+tcp://gateway' is not tls+tcp://HOST:PORT");
    assert_int_equal(ib_url_check("X", "tls://gateway:7003", err, sizeof err), -1);
}

static void test_args_check(void **state)
{
    const ib_op_spec *spec = ib_op_find(IB_OP_SOLUTION_CREATE);
    assert_non_null(spec);
    assert_int_equal(spec->service, IB_SVC_PACKAGER);
    assert_null(ib_op_find("nope"));
    ib_reply rep;
    ib_reply_init(&rep);
    json_t *args = json_pack("{s:s}", "content_folder", "/a/b");
    assert_int_equal(ib_args_check(spec, args, &rep), IB_BAD_REQUEST);
    assert_string_equal(rep.msg, "'output_folder' is required");
    json_object_set_new(args, "output_folder", json_integer(3));
    assert_int_equal(ib_args_check(spec, args, &rep), IB_BAD_REQUEST);
    assert_string_equal(rep.msg, "'output_folder' must be a string");
    json_object_set_new(args, "output_folder", json_string(""));
    assert_int_equal(ib_args_check(spec, args, &rep), IB_BAD_REQUEST);
    assert_string_equal(rep.msg, "'output_folder' must not be empty");
    json_object_set_new(args, "output_folder", json_string("/a/out"));
    json_object_set_new(args, "unknown", json_true());
    rep.code = IB_OK;
    assert_int_equal(ib_args_check(spec, args, &rep), IB_OK);
    json_decref(args);
    json_t *arr = json_array();
    assert_int_equal(ib_args_check(spec, arr, &rep), IB_BAD_REQUEST);
    assert_string_equal(rep.msg, "the request body must be a JSON object");
    json_decref(arr);
    const ib_op_spec *run = ib_op_find(IB_OP_SOLUTION_RUN);
    json_t *bad = json_pack("{s:s, s:[]}", "input_folder", "/a/in", "settings");
    assert_int_equal(ib_args_check(run, bad, &rep), IB_BAD_REQUEST);
    assert_string_equal(rep.msg, "'settings' must be an object");
    json_decref(bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_env_flags),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_url_check),
        cmocka_unit_test(test_args_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
