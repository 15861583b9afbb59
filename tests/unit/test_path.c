/* Unit tests of ib_path: parsing of drive paths (every refused form, with its exact message) and confined
 * resolution on a scratch drive with symlinks that try to leave a user folder. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ib_path.h"
#include "ib_testutil.h"

static const ib_caller JAY = {"jay", "user", "r1"};
static const ib_caller ADMIN = {"root.admin", "admin", "r2"};

static void expect_parse_fail(const char *path, const ib_caller *who, ib_code code, const char *msg)
{
    ib_reply r;
    ib_dpath p;
    ib_reply_init(&r);
    assert_int_equal(ib_dpath_parse(path, who, "content_folder", &p, &r), code);
    assert_int_equal(r.code, code);
    assert_string_equal(r.msg, msg);
    ib_reply_clear(&r);
}

static void expect_parse_ok(const char *path, const ib_caller *who, const char *rel, const char *user)
{
    ib_reply r;
    ib_dpath p;
    ib_reply_init(&r);
    assert_int_equal(ib_dpath_parse(path, who, "content_folder", &p, &r), IB_OK);
    assert_string_equal(p.rel, rel);
    assert_string_equal(p.user, user);
    ib_reply_clear(&r);
}

static void test_user_names(void **state)
{
    assert_true(ib_user_name_ok("jay.doe"));
    assert_true(ib_user_name_ok("a"));
    assert_true(ib_user_name_ok("J_9-x"));
    assert_true(ib_user_name_ok("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")); /* 64 */
    assert_false(
        ib_user_name_ok("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")); /* 65 */
    assert_false(ib_user_name_ok(""));
    assert_false(ib_user_name_ok(NULL));
    assert_false(ib_user_name_ok(".jay"));
    assert_false(ib_user_name_ok("-jay"));
    assert_false(ib_user_name_ok("jay doe"));
    assert_false(ib_user_name_ok("jay/doe"));
    assert_false(ib_user_name_ok("j\xc3\xa4y"));
}

static void test_parse_good(void **state)
{
    expect_parse_ok("/jay/my_repo/fs/Instabase Drive/in", &JAY, "jay/my_repo/fs/Instabase Drive/in", "jay");
    expect_parse_ok("jay/x", &JAY, "jay/x", "jay");
    expect_parse_ok("/jay/x/", &JAY, "jay/x", "jay");
    expect_parse_ok("/jay", &JAY, "jay", "jay");
    expect_parse_ok("/jay/", &JAY, "jay", "jay");
    expect_parse_ok("/jay/..x/x..", &JAY, "jay/..x/x..", "jay");
    expect_parse_ok("/bob/x", &ADMIN, "bob/x", "bob"); /* an admin may touch any user's path */

    ib_reply r;
    ib_dpath p;
    char buf[64];
    ib_reply_init(&r);
    assert_int_equal(ib_dpath_parse("jay/a b", &JAY, "f", &p, &r), IB_OK);
    assert_string_equal(ib_dpath_show(&p, buf, sizeof buf), "/jay/a b");
}

/* The original product's clients write drive paths without the leading '/': "jay/my_repo/fs/Instabase Drive/x"
 * is the same path as "/jay/my_repo/fs/Instabase Drive/x", for what it names, who owns it, and what is refused. */
static void test_parse_without_leading_slash(void **state)
{
    static const char *const paths[] = {"jay/my_repo/fs/Instabase Drive/flow/data/input", "jay", "jay/a b/",
                                        "bob/x",  "jay/../bob", "jay//x", "jay/./x", "j y/x", "jay/x\xc3\xa4"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        char slashed[256];
        snprintf(slashed, sizeof slashed, "/%s", paths[i]);
        ib_reply a, b;
        ib_dpath pa, pb;
        ib_reply_init(&a);
        ib_reply_init(&b);
        ib_code ca = ib_dpath_parse(paths[i], &JAY, "f", &pa, &a), cb = ib_dpath_parse(slashed, &JAY, "f", &pb, &b);
        assert_int_equal(ca, cb);
        if (ca == IB_OK) {
            assert_string_equal(pa.rel, pb.rel);
            assert_string_equal(pa.user, pb.user);
        } else if (ca == IB_FORBIDDEN) {
            assert_string_equal(a.msg, b.msg); /* both name the path with its '/' */
        }
        ib_reply_clear(&a);
        ib_reply_clear(&b);
    }
    expect_parse_fail("bob/x", &JAY, IB_FORBIDDEN, "content_folder: '/bob/x' belongs to another user");
    expect_parse_fail("jay/../bob", &JAY, IB_BAD_REQUEST, "content_folder: path 'jay/../bob' has a '..' segment");
    expect_parse_fail("//jay/x", &JAY, IB_BAD_REQUEST, "content_folder: path '//jay/x' has an empty segment");
}

static void test_parse_bad(void **state)
{
    expect_parse_fail("/jay/../x", &JAY, IB_BAD_REQUEST,
                      "content_folder: path '/jay/../x' has a '..' segment");
    expect_parse_fail("/jay/x/..", &JAY, IB_BAD_REQUEST,
                      "content_folder: path '/jay/x/..' has a '..' segment");
    expect_parse_fail("/../etc/passwd", &JAY, IB_BAD_REQUEST,
                      "content_folder: path '/../etc/passwd' has a '..' segment");
    expect_parse_fail("/jay/./x", &JAY, IB_BAD_REQUEST, "content_folder: path '/jay/./x' has a '.' segment");
    expect_parse_fail("/jay//x", &JAY, IB_BAD_REQUEST, "content_folder: path '/jay//x' has an empty segment");
    expect_parse_fail("//jay/x", &JAY, IB_BAD_REQUEST, "content_folder: path '//jay/x' has an empty segment");
    expect_parse_fail("/jay/x//", &JAY, IB_BAD_REQUEST,
                      "content_folder: path '/jay/x//' has an empty segment");
    expect_parse_fail("", &JAY, IB_BAD_REQUEST, "content_folder: path is empty");
    expect_parse_fail(NULL, &JAY, IB_BAD_REQUEST, "content_folder: path is empty");
    expect_parse_fail("/", &JAY, IB_BAD_REQUEST, "content_folder: path '/' is empty");
    expect_parse_fail("/-jay/x", &JAY, IB_BAD_REQUEST,
                      "content_folder: path '/-jay/x' does not start with a valid user name");
    expect_parse_fail("/bob/x", &JAY, IB_FORBIDDEN, "content_folder: '/bob/x' belongs to another user");
    expect_parse_fail("bob", &JAY, IB_FORBIDDEN, "content_folder: '/bob' belongs to another user");
    expect_parse_fail("/jay/x", NULL, IB_FORBIDDEN, "content_folder: '/jay/x' belongs to another user");

    /* An absolute host path is read as a drive path of user "etc", which is not the caller. */
    expect_parse_fail("/etc/passwd", &JAY, IB_FORBIDDEN,
                      "content_folder: '/etc/passwd' belongs to another user");

    /* A NUL byte (possible in an URL-decoded path) is refused, not cut. */
    ib_reply r;
    ib_dpath p;
    ib_reply_init(&r);
    assert_int_equal(ib_dpath_parsen("/jay/a\0/../../x", 15, &JAY, "input_folder", &p, &r), IB_BAD_REQUEST);
    assert_string_equal(r.msg, "input_folder: path '/jay/a' has a NUL byte");

    char longp[IB_PATH_MAX + 10];
    memset(longp, 'a', sizeof longp - 1);
    longp[0] = '/';
    memcpy(longp + 1, "jay/", 4);
    longp[sizeof longp - 1] = '\0';
    assert_int_equal(ib_dpath_parse(longp, &JAY, "f", &p, &r), IB_BAD_REQUEST);
    assert_string_equal(r.msg, "f: path is longer than 4095 bytes");

    char longseg[300] = "/jay/";
    memset(longseg + 5, 'b', 256);
    longseg[261] = '\0';
    assert_int_equal(ib_dpath_parse(longseg, &JAY, "f", &p, &r), IB_BAD_REQUEST);
    assert_non_null(strstr(r.msg, "has a segment longer than 255 bytes"));
}

/* ---- resolution on a scratch drive ---- */

typedef struct fixture {
    char tmp[64];
    char drive[128];
    int dfd;
} fixture;

static int setup_drive(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!tu_mkdtemp(f->tmp)) return -1;
    snprintf(f->drive, sizeof f->drive, "%s/drive", f->tmp);
    f->dfd = ib_drive_open_root(f->drive);
    if (f->dfd < 0) return -1;
    char p[512], q[512];
    tu_write_str(f->drive, "jay/docs/a.txt", "hello");
    tu_write_str(f->drive, "bob/secret.txt", "bob's");
    tu_write_str(f->tmp, "outside/host.txt", "host");
    snprintf(p, sizeof p, "%s/jay/etc", f->drive);
    if (symlink("/etc", p)) return -1; /* absolute, out of the drive */
    snprintf(p, sizeof p, "%s/jay/bobs", f->drive);
    if (symlink("../bob", p)) return -1; /* into another user's folder */
    snprintf(p, sizeof p, "%s/jay/out", f->drive);
    if (symlink("../../outside", p)) return -1; /* out of the drive, relative */
    snprintf(p, sizeof p, "%s/jay/internal", f->drive);
    if (symlink("docs", p)) return -1; /* stays inside: allowed */
    snprintf(p, sizeof p, "%s/jay/up", f->drive);
    if (symlink("docs/..", p)) return -1; /* back to the user folder itself: allowed */
    snprintf(p, sizeof p, "%s/jay/dangling", f->drive);
    if (symlink("../../outside/missing", p)) return -1;
    snprintf(p, sizeof p, "%s/jay/docs", f->drive);
    snprintf(q, sizeof q, "%s/jay/abs_internal", f->drive);
    if (symlink(p, q)) return -1; /* absolute, even if it lands inside: refused */
    snprintf(p, sizeof p, "%s/eve", f->drive);
    if (symlink("jay", p)) return -1; /* a user folder that is a symlink */
    *state = f;
    return 0;
}

static int teardown_drive(void **state)
{
    fixture *f = *state;
    close(f->dfd);
    tu_rmtree(f->tmp);
    free(f);
    return 0;
}

static ib_dpath dp(const char *path)
{
    ib_dpath p;
    ib_reply r;
    ib_reply_init(&r);
    assert_int_equal(ib_dpath_parse(path, &ADMIN, "f", &p, &r), IB_OK);
    return p;
}

static int open_read(fixture *f, const char *path, char *buf, size_t bufsz)
{
    ib_dpath p = dp(path);
    int fd = ib_drive_openat(f->dfd, &p, O_RDONLY, 0);
    if (fd < 0) return -errno;
    ssize_t n = read(fd, buf, bufsz - 1);
    buf[n < 0 ? 0 : n] = '\0';
    close(fd);
    return 0;
}

static void test_open_confined(void **state)
{
    fixture *f = *state;
    char buf[64];
    assert_int_equal(open_read(f, "/jay/docs/a.txt", buf, sizeof buf), 0);
    assert_string_equal(buf, "hello");
    assert_int_equal(open_read(f, "/jay/internal/a.txt", buf, sizeof buf), 0);
    assert_string_equal(buf, "hello");
    assert_int_equal(open_read(f, "/jay/up/docs/a.txt", buf, sizeof buf), 0);
    assert_string_equal(buf, "hello");

    assert_int_equal(open_read(f, "/jay/etc/passwd", buf, sizeof buf), -EXDEV);
    assert_int_equal(open_read(f, "/jay/bobs/secret.txt", buf, sizeof buf), -EXDEV);
    assert_int_equal(open_read(f, "/jay/out/host.txt", buf, sizeof buf), -EXDEV);
    assert_int_equal(open_read(f, "/jay/abs_internal/a.txt", buf, sizeof buf), -EXDEV);
    assert_int_equal(open_read(f, "/eve/docs/a.txt", buf, sizeof buf), -ELOOP);
    assert_int_equal(open_read(f, "/jay/docs/missing", buf, sizeof buf), -ENOENT);
    assert_int_equal(open_read(f, "/nobody/x", buf, sizeof buf), -ENOENT);
    assert_int_equal(open_read(f, "/jay/docs/a.txt/x", buf, sizeof buf), -ENOTDIR);

    /* The user folder itself, as a directory. */
    ib_dpath p = dp("/jay");
    int fd = ib_drive_openat(f->dfd, &p, O_RDONLY | O_DIRECTORY, 0);
    assert_true(fd >= 0);
    close(fd);
}

static void test_errno_reply(void **state)
{
    ib_reply r;
    ib_reply_init(&r);
    ib_dpath p = dp("/jay/out/host.txt");
    assert_int_equal(ib_drive_errno_reply(EXDEV, "input_folder", &p, &r), IB_FORBIDDEN);
    assert_string_equal(r.msg, "input_folder: '/jay/out/host.txt' leaves the drive (a symlink or '..' points "
                               "outside its user folder)");
    assert_int_equal(ib_drive_errno_reply(ELOOP, "f", &p, &r), IB_FORBIDDEN);
    assert_int_equal(ib_drive_errno_reply(ENOENT, "input_folder", &p, &r), IB_NOT_FOUND);
    assert_string_equal(r.msg, "input_folder: '/jay/out/host.txt' does not exist");
    assert_int_equal(ib_drive_errno_reply(ENOTDIR, "f", &p, &r), IB_BAD_REQUEST);
    assert_int_equal(ib_drive_errno_reply(EISDIR, "f", &p, &r), IB_BAD_REQUEST);
    assert_string_equal(r.msg, "f: '/jay/out/host.txt' is a folder");
    assert_int_equal(ib_drive_errno_reply(EIO, "f", &p, &r), IB_INTERNAL);
    assert_string_equal(r.msg, "f: '/jay/out/host.txt': Input/output error");
}

static void test_open_parent_create(void **state)
{
    fixture *f = *state;
    const char *base = NULL;
    ib_dpath p = dp("/jay/new/deep er/file.txt");
    int fd = ib_drive_open_parent(f->dfd, &p, 0, &base);
    assert_int_equal(fd, -1);
    assert_int_equal(errno, ENOENT);
    fd = ib_drive_open_parent(f->dfd, &p, 1, &base);
    assert_true(fd >= 0);
    assert_string_equal(base, "file.txt");
    int w = openat(fd, base, O_WRONLY | O_CREAT | O_EXCL, 0644);
    assert_true(w >= 0);
    close(w);
    close(fd);
    assert_true(tu_exists(f->drive, "jay/new/deep er/file.txt"));

    /* Through an internal symlink: created inside the target. */
    p = dp("/jay/internal/sub/x");
    fd = ib_drive_open_parent(f->dfd, &p, 1, &base);
    assert_true(fd >= 0);
    close(fd);
    assert_true(tu_exists(f->drive, "jay/docs/sub"));

    /* Through symlinks leaving the folder: refused, nothing created outside. */
    p = dp("/jay/out/sub/x");
    assert_int_equal(ib_drive_open_parent(f->dfd, &p, 1, &base), -1);
    assert_int_equal(errno, EXDEV);
    assert_false(tu_exists(f->tmp, "outside/sub"));
    p = dp("/jay/dangling/sub/x");
    assert_int_equal(ib_drive_open_parent(f->dfd, &p, 1, &base), -1);
    assert_int_equal(errno, EXDEV);
    assert_false(tu_exists(f->tmp, "outside/missing"));
    p = dp("/jay/bobs/sub/x");
    assert_int_equal(ib_drive_open_parent(f->dfd, &p, 1, &base), -1);
    assert_int_equal(errno, EXDEV);
    assert_false(tu_exists(f->drive, "bob/sub"));
    p = dp("/eve/sub/x");
    assert_int_equal(ib_drive_open_parent(f->dfd, &p, 1, &base), -1);
    assert_int_equal(errno, ELOOP);

    /* The parent of a user folder is the drive root: refused. */
    p = dp("/jay");
    assert_int_equal(ib_drive_open_parent(f->dfd, &p, 1, &base), -1);
    assert_int_equal(errno, EPERM);
    ib_reply r;
    ib_reply_init(&r);
    assert_int_equal(ib_drive_errno_reply(EPERM, "output_folder", &p, &r), IB_BAD_REQUEST);
    assert_string_equal(r.msg, "output_folder: '/jay' is a user's root folder; name a path inside it");

    /* A user's first upload creates the user folder. */
    p = dp("/newbie/x.txt");
    fd = ib_drive_open_parent(f->dfd, &p, 1, &base);
    assert_true(fd >= 0);
    close(fd);
    assert_true(tu_exists(f->drive, "newbie"));

    /* A file in the way. */
    p = dp("/jay/docs/a.txt/x/y");
    assert_int_equal(ib_drive_open_parent(f->dfd, &p, 1, &base), -1);
    assert_int_equal(errno, ENOTDIR);
}

static void test_open_dir(void **state)
{
    fixture *f = *state;
    ib_dpath p = dp("/jay/a/b/c");
    assert_int_equal(ib_drive_open_dir(f->dfd, &p, 0), -1);
    assert_int_equal(errno, ENOENT);
    int fd = ib_drive_open_dir(f->dfd, &p, 1);
    assert_true(fd >= 0);
    assert_int_equal(fsync(fd), 0); /* a real fd, not O_PATH */
    close(fd);
    assert_true(tu_exists(f->drive, "jay/a/b/c"));
    p = dp("/jay");
    fd = ib_drive_open_dir(f->dfd, &p, 0);
    assert_true(fd >= 0);
    close(fd);
    p = dp("/fresh");
    fd = ib_drive_open_dir(f->dfd, &p, 1);
    assert_true(fd >= 0);
    close(fd);
    p = dp("/jay/etc");
    assert_int_equal(ib_drive_open_dir(f->dfd, &p, 1), -1);
    assert_int_equal(errno, EXDEV);
    p = dp("/jay/out/new");
    assert_int_equal(ib_drive_open_dir(f->dfd, &p, 1), -1);
    assert_int_equal(errno, EXDEV);
    assert_false(tu_exists(f->tmp, "outside/new"));
}

static void test_openat_beneath(void **state)
{
    fixture *f = *state;
    char p[256];
    snprintf(p, sizeof p, "%s/jay", f->drive);
    int jfd = open(p, O_RDONLY | O_DIRECTORY);
    assert_true(jfd >= 0);
    int fd = ib_openat_beneath(jfd, "../bob/secret.txt", O_RDONLY, 0);
    assert_int_equal(fd, -1);
    assert_int_equal(errno, EXDEV);
    assert_int_equal(ib_openat_beneath(jfd, "/etc/passwd", O_RDONLY, 0), -1);
    assert_int_equal(errno, EXDEV);
    fd = ib_openat_beneath(jfd, "internal/a.txt", O_RDONLY, 0);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(ib_openat_strict(jfd, "internal/a.txt", O_RDONLY, 0), -1);
    assert_int_equal(errno, ELOOP);
    fd = ib_openat_strict(jfd, "docs/new.txt", O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    close(fd);
    close(jfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_names),
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_without_leading_slash),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test_setup_teardown(test_open_confined, setup_drive, teardown_drive),
        cmocka_unit_test_setup_teardown(test_errno_reply, setup_drive, teardown_drive),
        cmocka_unit_test_setup_teardown(test_open_parent_create, setup_drive, teardown_drive),
        cmocka_unit_test_setup_teardown(test_open_dir, setup_drive, teardown_drive),
        cmocka_unit_test_setup_teardown(test_openat_beneath, setup_drive, teardown_drive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
