/* Unit tests of runner/fileops against a scratch drive: a source that is not a regular file or a folder (a FIFO)
 * is refused at once, at request time and when the job runs (it may be swapped in between), instead of hanging
 * a worker in open(2) waiting for a writer. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

#include "../ib_testutil.h"
#include "fileops.h"
#include "ib_path.h"

/* What the runner's main.c defines; fileops reads the drive only. */
runner_cfg rcfg;
notify_cfg runner_notify;
int runner_drive_fd = -1, runner_data_fd = -1;

typedef struct fx {
    char tmp[64];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    if (!f || !tu_mkdtemp(f->tmp)) return -1;
    char drive[128];
    snprintf(drive, sizeof drive, "%s/drive", f->tmp);
    runner_drive_fd = ib_drive_open_root(drive);
    if (runner_drive_fd < 0 || tu_write_str(drive, "jay/plain.txt", "hello") != 0) return -1;
    char fifo[160];
    snprintf(fifo, sizeof fifo, "%s/jay/fifo", drive);
    if (mkfifo(fifo, 0644) != 0) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    close(runner_drive_fd);
    runner_drive_fd = -1;
    tu_rmtree(f->tmp);
    free(f);
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static json_t *job_rec(const char *kind, const char *src, const char *dst)
{
    return json_pack("{s:s, s:s, s:{s:s, s:s}}", "kind", kind, "user", "jay", "args", "src_path", src, "dst_path",
                     dst);
}

static void test_check_refuses_fifo(void **state)
{
    (void)state;
    ib_caller jay = {"jay", "user", "t"};
    static const char *const kinds[] = {"copy", "extract"};
    for (int k = 0; k < 2; k++) {
        ib_reply rep;
        ib_reply_init(&rep);
        json_t *args = json_pack("{s:s, s:s}", "src_path", "/jay/fifo", "dst_path", "/jay/out");
        assert_int_equal(fileops_check(kinds[k], args, &jay, &rep), IB_BAD_REQUEST);
        assert_string_equal(rep.msg, "src_path: '/jay/fifo' is not a regular file");
        json_decref(args);
        ib_reply_clear(&rep);
    }
    /* a regular file passes */
    ib_reply rep;
    ib_reply_init(&rep);
    json_t *args = json_pack("{s:s, s:s}", "src_path", "/jay/plain.txt", "dst_path", "/jay/copy.txt");
    assert_int_equal(fileops_check("copy", args, &jay, &rep), IB_OK);
    json_decref(args);
    ib_reply_clear(&rep);
}

static void test_run_refuses_fifo_promptly(void **state)
{
    fx *f = *state;
    alarm(20); /* a regression hangs in open(2): end the program (a failure) instead of waiting for ever */
    static const char *const kinds[] = {"copy", "extract"};
    for (int k = 0; k < 2; k++) {
        json_t *rec = job_rec(kinds[k], "/jay/fifo", "/jay/out/x");
        char err[512] = "";
        double t0 = now_s();
        assert_int_equal(fileops_run(rec, err, sizeof err), -1);
        assert_true(now_s() - t0 < 2.0);
        assert_string_equal(err, "src_path: '/jay/fifo' is not a regular file");
        json_decref(rec);
    }
    char drive[128];
    snprintf(drive, sizeof drive, "%s/drive", f->tmp);
    assert_false(tu_exists(drive, "jay/out")); /* nothing made for a refused source */
    /* a regular file copies */
    json_t *rec = job_rec("copy", "/jay/plain.txt", "/jay/out/copy.txt");
    char err[512] = "";
    assert_int_equal(fileops_run(rec, err, sizeof err), 0);
    json_decref(rec);
    char path[256];
    snprintf(path, sizeof path, "%s/jay/out/copy.txt", drive);
    size_t len;
    char *got = tu_read(path, &len);
    assert_non_null(got);
    assert_memory_equal(got, "hello", 5);
    free(got);
    alarm(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_check_refuses_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_refuses_fifo_promptly, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
