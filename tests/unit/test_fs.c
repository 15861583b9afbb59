/* Unit tests of ib_fs: atomic writes leave no temporary behind, confined reads and mkdir -p refuse escapes,
 * and the recursive remove never follows a symlink out of the tree. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ib_fs.h"
#include "ib_testutil.h"

typedef struct fixture {
    char tmp[64];
    char dir[128]; /* tmp/d: the folder under test */
    int dfd;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!tu_mkdtemp(f->tmp)) return -1;
    snprintf(f->dir, sizeof f->dir, "%s/d", f->tmp);
    if (mkdir(f->dir, 0755)) return -1;
    f->dfd = open(f->dir, O_RDONLY | O_DIRECTORY);
    tu_write_str(f->tmp, "outside/keep.txt", "keep");
    *state = f;
    return f->dfd < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    close(f->dfd);
    tu_rmtree(f->tmp);
    free(f);
    return 0;
}

static int count_entries(const char *path)
{
    DIR *d = opendir(path);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void test_write_atomic(void **state)
{
    fixture *f = *state;
    char path[256];
    struct stat st;
    snprintf(path, sizeof path, "%s/out.json", f->dir);
    mode_t old = umask(077);
    assert_int_equal(ib_write_atomic(f->dfd, "out.json", "{\"a\":1}", 7), 0);
    umask(old);
    char *got = tu_read(path, NULL);
    assert_string_equal(got, "{\"a\":1}");
    free(got);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);

    assert_int_equal(ib_write_atomic(f->dfd, "out.json", "new", 3), 0); /* replaces */
    got = tu_read(path, NULL);
    assert_string_equal(got, "new");
    free(got);
    assert_int_equal(ib_write_atomic(f->dfd, "empty", "", 0), 0);
    assert_int_equal(count_entries(f->dir), 2); /* no temporary left */

    assert_int_equal(ib_write_atomic(f->dfd, "a/b", "x", 1), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(ib_write_atomic(f->dfd, "", "x", 1), -1);
    assert_int_equal(errno, EINVAL);

    /* A folder in the way: the rename fails and the temporary is gone. */
    assert_int_equal(mkdirat(f->dfd, "sub", 0755), 0);
    tu_write_str(f->dir, "sub/inner", "x");
    assert_int_equal(ib_write_atomic(f->dfd, "sub", "x", 1), -1);
    assert_true(errno == EISDIR || errno == ENOTEMPTY);
    assert_int_equal(count_entries(f->dir), 3);

    /* A 255-byte name still gets a temporary name within NAME_MAX. */
    char longname[256];
    memset(longname, 'n', 255);
    longname[255] = '\0';
    assert_int_equal(ib_write_atomic(f->dfd, longname, "L", 1), 0);
    assert_true(tu_exists(f->dir, longname));

    /* Without fsync too: a new name (written unnamed, then linked) and a replacement, both 0644 whatever the
     * umask, the old bytes or the new ones, and nothing else left in the folder. */
    old = umask(077);
    assert_int_equal(ib_write_replace(f->dfd, "fresh", "one", 3), 0);
    assert_int_equal(ib_write_replace(f->dfd, "fresh", "two!", 4), 0);
    umask(old);
    snprintf(path, sizeof path, "%s/fresh", f->dir);
    got = tu_read(path, NULL);
    assert_string_equal(got, "two!");
    free(got);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(count_entries(f->dir), 5);

    /* Works on an O_PATH folder fd too (the fsync of the folder reopens it). */
    int pfd = open(f->dir, O_PATH | O_DIRECTORY);
    assert_int_equal(ib_write_atomic(pfd, "viapath", "p", 1), 0);
    close(pfd);
    assert_true(tu_exists(f->dir, "viapath"));
}

static void test_tmp_stream(void **state)
{
    fixture *f = *state;
    char tmp[300];
    int fd = ib_open_tmp(f->dfd, "big.bin", tmp, sizeof tmp);
    assert_true(fd >= 0);
    assert_int_equal(strncmp(tmp, ".big.bin.tmp-", 13), 0);
    assert_int_equal(strlen(tmp), 13 + 8);
    assert_int_equal(write(fd, "part1", 5), 5);
    assert_false(tu_exists(f->dir, "big.bin"));
    assert_true(tu_exists(f->dir, tmp));
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600); /* private until committed */
    assert_int_equal(ib_commit_tmp(f->dfd, fd, tmp, "big.bin"), 0);
    assert_true(tu_exists(f->dir, "big.bin"));
    assert_int_equal(fstatat(f->dfd, "big.bin", &st, 0), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_false(tu_exists(f->dir, tmp));

    fd = ib_open_tmp(f->dfd, "gone.bin", tmp, sizeof tmp);
    assert_true(fd >= 0);
    ib_discard_tmp(f->dfd, fd, tmp);
    assert_int_equal(count_entries(f->dir), 1);

    char small[8];
    assert_int_equal(ib_open_tmp(f->dfd, "x", small, sizeof small), -1);
    assert_int_equal(errno, ENAMETOOLONG);
}

static void test_read_file_at(void **state)
{
    fixture *f = *state;
    char p[256];
    size_t len = 99;
    tu_write_str(f->dir, "sub/ten.txt", "0123456789");
    char *buf = ib_read_file_at(f->dfd, "sub/ten.txt", 10, &len);
    assert_non_null(buf);
    assert_int_equal(len, 10);
    assert_string_equal(buf, "0123456789");
    free(buf);
    assert_null(ib_read_file_at(f->dfd, "sub/ten.txt", 9, &len));
    assert_int_equal(errno, EFBIG);
    tu_write_str(f->dir, "empty", "");
    buf = ib_read_file_at(f->dfd, "empty", 0, &len);
    assert_non_null(buf);
    assert_int_equal(len, 0);
    free(buf);

    assert_null(ib_read_file_at(f->dfd, "missing", 10, &len));
    assert_int_equal(errno, ENOENT);
    assert_null(ib_read_file_at(f->dfd, "sub", 10, &len));
    assert_int_equal(errno, EISDIR);
    assert_null(ib_read_file_at(f->dfd, "../outside/keep.txt", 10, &len));
    assert_int_equal(errno, EXDEV);
    assert_null(ib_read_file_at(f->dfd, "/etc/hostname", 100, &len));
    assert_int_equal(errno, EXDEV);
    snprintf(p, sizeof p, "%s/escape", f->dir);
    assert_int_equal(symlink("../outside", p), 0);
    assert_null(ib_read_file_at(f->dfd, "escape/keep.txt", 10, &len));
    assert_int_equal(errno, EXDEV);
    snprintf(p, sizeof p, "%s/inner", f->dir);
    assert_int_equal(symlink("sub/ten.txt", p), 0);
    buf = ib_read_file_at(f->dfd, "inner", 10, &len);
    assert_non_null(buf);
    free(buf);
}

static void test_mkdirs_at(void **state)
{
    fixture *f = *state;
    char p[256];
    assert_int_equal(ib_mkdirs_at(f->dfd, "a/b/c", 0755), 0);
    assert_true(tu_exists(f->dir, "a/b/c"));
    assert_int_equal(ib_mkdirs_at(f->dfd, "a/b/c", 0755), 0); /* exists: fine */
    assert_int_equal(ib_mkdirs_at(f->dfd, "a/b/d/", 0755), 0);
    assert_int_equal(ib_mkdirs_at(f->dfd, "", 0755), 0);
    snprintf(p, sizeof p, "%s/out", f->dir);
    assert_int_equal(symlink("../outside", p), 0);
    assert_int_equal(ib_mkdirs_at(f->dfd, "out/new", 0755), -1);
    assert_int_equal(errno, EXDEV);
    assert_false(tu_exists(f->tmp, "outside/new"));
    assert_int_equal(ib_mkdirs_at(f->dfd, "../escaped", 0755), -1);
    assert_false(tu_exists(f->tmp, "escaped"));
    tu_write_str(f->dir, "file", "x");
    assert_int_equal(ib_mkdirs_at(f->dfd, "file/sub", 0755), -1);
    assert_int_equal(errno, ENOTDIR);
}

static void test_remove_tree(void **state)
{
    fixture *f = *state;
    char p[256], q[256];
    tu_write_str(f->dir, "t/a.txt", "a");
    tu_write_str(f->dir, "t/sub/b.txt", "b");
    tu_write_str(f->dir, "t/sub/deeper/c.txt", "c");
    assert_int_equal(mkdirat(f->dfd, "t/emptydir", 0755), 0);
    snprintf(p, sizeof p, "%s/t/sub/link_out", f->dir);
    snprintf(q, sizeof q, "%s/outside", f->tmp);
    assert_int_equal(symlink(q, p), 0); /* a symlink to a folder outside: removed, never descended */
    for (int i = 0; i < 300; i++) {     /* more than one readdir buffer */
        char name[32];
        snprintf(name, sizeof name, "t/many/f%03d", i);
        tu_write_str(f->dir, name, "m");
    }
    assert_int_equal(ib_remove_tree_at(f->dfd, "t"), 0);
    assert_false(tu_exists(f->dir, "t"));
    assert_true(tu_exists(f->tmp, "outside/keep.txt"));

    assert_int_equal(ib_remove_tree_at(f->dfd, "missing"), 0);
    tu_write_str(f->dir, "single", "s");
    assert_int_equal(ib_remove_tree_at(f->dfd, "single"), 0);
    assert_false(tu_exists(f->dir, "single"));

    /* A symlink to a folder named directly: the link goes, the folder stays. */
    snprintf(p, sizeof p, "%s/lnk", f->dir);
    assert_int_equal(symlink(q, p), 0);
    assert_int_equal(ib_remove_tree_at(f->dfd, "lnk"), 0);
    assert_false(tu_exists(f->dir, "lnk"));
    assert_true(tu_exists(f->tmp, "outside/keep.txt"));
}

static void test_plain_paths(void **state)
{
    fixture *f = *state;
    char p[256];
    snprintf(p, sizeof p, "%s/x/y/z", f->tmp);
    assert_int_equal(ib_mkdirs(p, 0755), 0);
    assert_true(tu_exists(f->tmp, "x/y/z"));
    assert_int_equal(ib_mkdirs(p, 0755), 0);
    snprintf(p, sizeof p, "%s/outside/keep.txt/z", f->tmp);
    assert_int_equal(ib_mkdirs(p, 0755), -1);
    assert_int_equal(errno, ENOTDIR);

    char *j = ib_path_join("/data", "drive");
    assert_string_equal(j, "/data/drive");
    free(j);
    j = ib_path_join("/data/", "/drive");
    assert_string_equal(j, "/data/drive");
    free(j);
    j = ib_path_join("/", "x");
    assert_string_equal(j, "/x");
    free(j);
    j = ib_path_join("", "x");
    assert_string_equal(j, "x");
    free(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tmp_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_file_at, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mkdirs_at, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_paths, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
