/* Unit tests of ib_sha256: known digests (FIPS 180-2 vectors) for buffers and for files larger than the read
 * block, and an unchanged file offset. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ib_sha256.h"
#include "ib_testutil.h"

static void test_buffers(void **state)
{
    char out[IB_SHA256_HEX];
    ib_sha256_hex("", 0, out);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    ib_sha256_hex("abc", 3, out);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    ib_sha256_hex(two, strlen(two), out);
    assert_string_equal(out, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_fd(void **state)
{
    char tmp[64], out[IB_SHA256_HEX];
    assert_non_null(tu_mkdtemp(tmp));
    /* One million 'a' (FIPS 180-2 vector), about 15 read blocks. */
    size_t n = 1000000;
    char *a = malloc(n);
    memset(a, 'a', n);
    assert_int_equal(tu_write(tmp, "million", a, n), 0);
    free(a);
    char p[128];
    snprintf(p, sizeof p, "%s/million", tmp);
    int fd = open(p, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(lseek(fd, 12345, SEEK_SET), 12345); /* digest covers the whole file regardless */
    assert_int_equal(ib_sha256_fd(fd, out), 0);
    assert_string_equal(out, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 12345);
    close(fd);

    assert_int_equal(tu_write(tmp, "empty", "", 0), 0);
    snprintf(p, sizeof p, "%s/empty", tmp);
    fd = open(p, O_RDONLY);
    assert_int_equal(ib_sha256_fd(fd, out), 0);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    close(fd);

    assert_int_equal(ib_sha256_fd(-1, out), -1);
    assert_int_equal(errno, EBADF);
    tu_rmtree(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buffers),
        cmocka_unit_test(test_fd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
