/* Unit tests of ib_zip: the writer gives byte-identical archives whatever the mtimes, modes, creation order
 * or time zone, refuses symlinks and special files and enforces its limits; the reader refuses non-zips,
 * truncation, unsafe and duplicate names, bombs, lying sizes and CRC errors, and extracts without following
 * symlinks. Hostile archives are built with libzip itself (it accepts any name) and patched byte by byte. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "ib_testutil.h"
#include "ib_zip.h"

typedef struct fixture {
    char tmp[64];
    char src[128], out[128], dst[128];
    char err[1024];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!tu_mkdtemp(f->tmp)) return -1;
    snprintf(f->src, sizeof f->src, "%s/src", f->tmp);
    snprintf(f->out, sizeof f->out, "%s/out", f->tmp);
    snprintf(f->dst, sizeof f->dst, "%s/dst", f->tmp);
    if (mkdir(f->src, 0755) || mkdir(f->out, 0755) || mkdir(f->dst, 0755)) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    tu_rmtree(f->tmp);
    free(f);
    return 0;
}

static void fill_content(const char *root, int reverse)
{
    static const char *files[][2] = {
        {"package.json", "{\"name\":\"inv\",\"version\":\"1.0.0\"}"},
        {"flow.json", "{\"steps\":[]}"},
        {"refiners/total.ibrefiner", "total = sum(amounts)"},
        {"refiners/a b.ibrefiner", "x = 1"},
        {"demo_data/inv1.txt", "Invoice 1 total 10.00\n"},
        {"README.md", "# Invoices\n"},
        {"Z-upper.txt", "capital sorts first"},
        {"empty.txt", ""},
    };
    size_t n = sizeof files / sizeof *files;
    for (size_t k = 0; k < n; k++) {
        size_t i = reverse ? n - 1 - k : k;
        assert_int_equal(tu_write_str(root, files[i][0], files[i][1]), 0);
    }
}

static int write_dir(fixture *f, const char *src, const char *out, const ib_zip_extra *ex, size_t nex,
                     const ib_zip_limits *lim)
{
    int dfd = open(src, O_RDONLY | O_DIRECTORY);
    assert_true(dfd >= 0);
    f->err[0] = '\0';
    int rc = ib_zip_write_dir(dfd, ex, nex, out, 6, lim, f->err, sizeof f->err);
    close(dfd);
    return rc;
}

static zip_t *open_verified(fixture *f, const char *path, const ib_zip_limits *lim)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    f->err[0] = '\0';
    zip_t *za = ib_zip_open_verified(fd, lim, f->err, sizeof f->err);
    close(fd); /* the archive holds its own dup */
    return za;
}

static void test_names(void **state)
{
    assert_true(ib_zip_name_ok("package.json"));
    assert_true(ib_zip_name_ok("a/b/c.txt"));
    assert_true(ib_zip_name_ok("a b/..c/c.."));
    assert_false(ib_zip_name_ok(""));
    assert_false(ib_zip_name_ok(NULL));
    assert_string_equal(ib_zip_name_problem("../x"), "escapes its folder");
    assert_string_equal(ib_zip_name_problem("a/../../x"), "escapes its folder");
    assert_string_equal(ib_zip_name_problem("a/.."), "escapes its folder");
    assert_string_equal(ib_zip_name_problem("/abs"), "escapes its folder");
    assert_string_equal(ib_zip_name_problem("a\\b"), "has a backslash in its name");
    assert_string_equal(ib_zip_name_problem("..\\x"), "has a backslash in its name");
    assert_string_equal(ib_zip_name_problem("a//b"), "has an empty path segment");
    assert_string_equal(ib_zip_name_problem("a/"), "has an empty path segment");
    assert_string_equal(ib_zip_name_problem("./a"), "has a '.' segment");
    assert_string_equal(ib_zip_name_problem("a\nb"), "has a control character in its name");
    assert_string_equal(ib_zip_name_problem("a\x7f"), "has a control character in its name");
}

static void test_reproducible(void **state)
{
    fixture *f = *state;
    char src2[160], a[160], b[160], c[160];
    fill_content(f->src, 0);
    snprintf(a, sizeof a, "%s/a.ibsolution", f->out);
    snprintf(b, sizeof b, "%s/b.ibsolution", f->out);
    snprintf(c, sizeof c, "%s/c.ibsolution", f->out);
    setenv("TZ", "UTC", 1);
    tzset();
    assert_int_equal(write_dir(f, f->src, a, NULL, 0, NULL), 0);

    /* Same folder, other mtimes, other modes, other time zone. */
    char p[256];
    struct timespec ts[2] = {{1000000000, 0}, {1000000000, 0}};
    snprintf(p, sizeof p, "%s/flow.json", f->src);
    assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
    assert_int_equal(chmod(p, 0600), 0);
    snprintf(p, sizeof p, "%s/refiners/total.ibrefiner", f->src);
    ts[0].tv_sec = ts[1].tv_sec = 1700000000;
    assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
    assert_int_equal(chmod(p, 0755), 0);
    setenv("TZ", "Asia/Kolkata", 1);
    tzset();
    assert_int_equal(write_dir(f, f->src, b, NULL, 0, NULL), 0);

    /* Another folder, same content created in the reverse order a while later. */
    snprintf(src2, sizeof src2, "%s/src2", f->tmp);
    assert_int_equal(mkdir(src2, 0700), 0);
    fill_content(src2, 1);
    assert_int_equal(write_dir(f, src2, c, NULL, 0, NULL), 0);
    unsetenv("TZ");
    tzset();

    size_t la, lb, lc;
    char *ba = tu_read(a, &la), *bb = tu_read(b, &lb), *bc = tu_read(c, &lc);
    assert_true(la > 100);
    assert_int_equal(la, lb);
    assert_int_equal(la, lc);
    assert_memory_equal(ba, bb, la);
    assert_memory_equal(ba, bc, la);

    /* Local header of the first entry: DOS time 00:00, date 1980-01-01, deflate. */
    assert_memory_equal(ba, "PK\3\4", 4);
    assert_int_equal((unsigned char)ba[8], 8);
    assert_memory_equal(ba + 10, "\0\0\x21\0", 4);
    free(ba);
    free(bb);
    free(bc);

    /* Sorted bytewise, files only, Unix 0644. */
    zip_t *za = open_verified(f, a, NULL);
    assert_non_null(za);
    static const char *want[] = {
        "README.md", "Z-upper.txt",  "demo_data/inv1.txt",     "empty.txt",
        "flow.json", "package.json", "refiners/a b.ibrefiner", "refiners/total.ibrefiner"};
    assert_int_equal(zip_get_num_entries(za, 0), 8);
    for (zip_uint64_t i = 0; i < 8; i++) {
        assert_string_equal(zip_get_name(za, i, 0), want[i]);
        zip_uint8_t opsys;
        zip_uint32_t attr;
        assert_int_equal(zip_file_get_external_attributes(za, i, 0, &opsys, &attr), 0);
        assert_int_equal(opsys, ZIP_OPSYS_UNIX);
        assert_int_equal(attr, 0100644u << 16);
        assert_int_equal(zip_file_extra_fields_count(za, i, ZIP_FL_CENTRAL | ZIP_FL_LOCAL), 0);
    }
    zip_discard(za);
}

static void test_write_skips_and_extras(void **state)
{
    fixture *f = *state;
    char out[160];
    fill_content(f->src, 0);
    tu_write_str(f->src, "old-1.0.0.ibsolution", "previous package");
    tu_write_str(f->src, "sub/.flow.json.tmp-Ab12Cd34", "half written");
    tu_write_str(f->src, ".hidden", "kept");
    /* The output inside the content folder is not packed into itself. */
    snprintf(out, sizeof out, "%s/inv-1.0.0.ibsolution", f->src);
    ib_zip_extra ex[] = {{"inv.ibflowbin", "compiled", 8}, {"flow.json", "replaced", 8}};
    assert_int_equal(write_dir(f, f->src, out, ex, 2, NULL), 0);
    assert_string_equal(f->err, "");
    assert_int_equal(write_dir(f, f->src, out, ex, 2, NULL), 0); /* again, over the first */

    zip_t *za = open_verified(f, out, NULL);
    assert_non_null(za);
    assert_int_equal(zip_get_num_entries(za, 0), 10);
    assert_int_equal(zip_name_locate(za, "old-1.0.0.ibsolution", 0), -1);
    assert_int_equal(zip_name_locate(za, "inv-1.0.0.ibsolution", 0), -1);
    assert_int_equal(zip_name_locate(za, "sub/.flow.json.tmp-Ab12Cd34", 0), -1);
    assert_true(zip_name_locate(za, ".hidden", 0) >= 0);
    size_t len;
    char *s = ib_zip_read_entry(za, "flow.json", 100, &len, f->err, sizeof f->err);
    assert_string_equal(s, "replaced");
    free(s);
    s = ib_zip_read_entry(za, "inv.ibflowbin", 100, &len, f->err, sizeof f->err);
    assert_string_equal(s, "compiled");
    assert_int_equal(len, 8);
    free(s);
    s = ib_zip_read_entry(za, "empty.txt", 0, &len, f->err, sizeof f->err);
    assert_string_equal(s, "");
    assert_int_equal(len, 0);
    free(s);
    assert_null(ib_zip_read_entry(za, "README.md", 5, &len, f->err, sizeof f->err));
    assert_string_equal(f->err, "archive entry 'README.md' is larger than 5 bytes");
    assert_null(ib_zip_read_entry(za, "nope", 5, &len, f->err, sizeof f->err));
    assert_string_equal(f->err, "archive has no entry 'nope'");
    zip_discard(za);

    ib_zip_extra bad[] = {{"../evil", "x", 1}};
    assert_int_equal(write_dir(f, f->src, out, bad, 1, NULL), -1);
    assert_string_equal(f->err, "archive entry '../evil' escapes its folder");
    ib_zip_extra twice[] = {{"a", "x", 1}, {"a", "y", 1}};
    assert_int_equal(write_dir(f, f->src, out, twice, 2, NULL), -1);
    assert_string_equal(f->err, "archive entry 'a' is given twice");
}

static void test_write_refusals(void **state)
{
    fixture *f = *state;
    char out[160], p[256];
    snprintf(out, sizeof out, "%s/x.ibsolution", f->out);

    assert_int_equal(write_dir(f, f->src, out, NULL, 0, NULL), -1);
    assert_string_equal(f->err, "content folder has no files to archive");

    fill_content(f->src, 0);
    ib_zip_limits lim = {.max_total = 0, .max_entries = 7};
    assert_int_equal(write_dir(f, f->src, out, NULL, 0, &lim), -1);
    assert_non_null(strstr(f->err, "content folder has more than 7 files (at '"));
    lim = (ib_zip_limits){.max_total = 40, .max_entries = 0};
    assert_int_equal(write_dir(f, f->src, out, NULL, 0, &lim), -1);
    assert_non_null(strstr(f->err, "content folder passes the size limit of 40 bytes at '"));
    lim = (ib_zip_limits){.max_total = 121, .max_entries = 8}; /* exactly the content: fine */
    assert_int_equal(write_dir(f, f->src, out, NULL, 0, &lim), 0);
    assert_false(tu_exists(f->out, "x.ibsolution.tmp")); /* nothing but the archive */

    snprintf(p, sizeof p, "%s/refiners/link", f->src);
    assert_int_equal(symlink("/etc/passwd", p), 0);
    assert_int_equal(write_dir(f, f->src, out, NULL, 0, NULL), -1);
    assert_string_equal(
        f->err, "content folder entry 'refiners/link' is a symlink; a package holds regular files only");
    unlink(p);
    snprintf(p, sizeof p, "%s/dirlink", f->src);
    assert_int_equal(symlink("refiners", p), 0); /* even one that stays inside */
    assert_int_equal(write_dir(f, f->src, out, NULL, 0, NULL), -1);
    assert_string_equal(f->err,
                        "content folder entry 'dirlink' is a symlink; a package holds regular files only");
    unlink(p);
    snprintf(p, sizeof p, "%s/fifo", f->src);
    assert_int_equal(mkfifo(p, 0644), 0);
    assert_int_equal(write_dir(f, f->src, out, NULL, 0, NULL), -1);
    assert_string_equal(f->err, "content folder entry 'fifo' is not a regular file or folder");
    unlink(p);
    tu_write_str(f->src, "back\\slash", "x");
    assert_int_equal(write_dir(f, f->src, out, NULL, 0, NULL), -1);
    assert_string_equal(
        f->err, "content folder file 'back\\slash' cannot be archived: it has a backslash in its name");

    /* Failures leave the previous archive in place. */
    size_t len;
    char *prev = tu_read(out, &len);
    assert_non_null(prev);
    assert_true(len > 0);
    free(prev);
}

/* Builds an archive with arbitrary names (libzip checks none). */
static void make_zip(const char *path, const char *const *names, const char *const *datas, size_t n,
                     int method)
{
    int zerr;
    zip_t *za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
    assert_non_null(za);
    for (size_t i = 0; i < n; i++) {
        zip_source_t *s = zip_source_buffer(za, datas[i], strlen(datas[i]), 0);
        zip_int64_t idx = zip_file_add(za, names[i], s, 0);
        assert_true(idx >= 0);
        zip_set_file_compression(za, (zip_uint64_t)idx, method, 0);
    }
    assert_int_equal(zip_close(za), 0);
}

static void expect_refused(fixture *f, const char *path, const ib_zip_limits *lim, const char *msg)
{
    zip_t *za = open_verified(f, path, lim);
    if (za) {
        zip_discard(za);
        fail_msg("archive accepted, wanted: %s", msg);
    }
    assert_string_equal(f->err, msg);
}

/* Replaces every occurrence of `from` by `to` (same length) in the file. */
static void patch_all(const char *path, const char *from, const char *to)
{
    size_t len, n = strlen(from);
    char *b = tu_read(path, &len);
    int hits = 0;
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(b + i, from, n) == 0) {
            memcpy(b + i, to, n);
            hits++;
        }
    assert_true(hits >= 2); /* local header and central directory */
    FILE *fp = fopen(path, "wb");
    fwrite(b, 1, len, fp);
    fclose(fp);
    free(b);
}

static void write_bytes(const char *path, const char *b, size_t len)
{
    FILE *fp = fopen(path, "wb");
    fwrite(b, 1, len, fp);
    fclose(fp);
}

static void test_reader_refusals(void **state)
{
    fixture *f = *state;
    char p[160];
    snprintf(p, sizeof p, "%s/t.zip", f->out);

    write_bytes(p, "this is not a zip file at all, just text\n", 41);
    expect_refused(f, p, NULL, "archive is not a zip file");
    write_bytes(p, "", 0);
    expect_refused(f, p, NULL, "archive is not a zip file");

    const char *n1[] = {"package.json", "../x"}, *d1[] = {"{}", "evil"};
    make_zip(p, n1, d1, 2, ZIP_CM_DEFLATE);
    expect_refused(f, p, NULL, "archive entry '../x' escapes its folder");
    const char *n2[] = {"/etc/cron.d/x"};
    make_zip(p, n2, d1, 1, ZIP_CM_DEFLATE);
    expect_refused(f, p, NULL, "archive entry '/etc/cron.d/x' escapes its folder");
    const char *n3[] = {"..\\..\\x"};
    make_zip(p, n3, d1, 1, ZIP_CM_DEFLATE);
    expect_refused(f, p, NULL, "archive entry '..\\..\\x' has a backslash in its name");
    const char *n4[] = {"a//b"};
    make_zip(p, n4, d1, 1, ZIP_CM_DEFLATE);
    expect_refused(f, p, NULL, "archive entry 'a//b' has an empty path segment");
    const char *n5[] = {"a/./b"};
    make_zip(p, n5, d1, 1, ZIP_CM_DEFLATE);
    expect_refused(f, p, NULL, "archive entry 'a/./b' has a '.' segment");
    const char *n6[] = {"a\x01"
                        "b"};
    make_zip(p, n6, d1, 1, ZIP_CM_DEFLATE);
    expect_refused(f, p, NULL, "archive entry 'a?b' has a control character in its name");
    const char *n7[] = {"../"};
    make_zip(p, n7, (const char *[]){""}, 1, ZIP_CM_STORE);
    expect_refused(f, p, NULL, "archive entry '../' escapes its folder");
    const char *n8[] = {"dir/", "dir"};
    make_zip(p, n8, (const char *[]){"", "file"}, 2, ZIP_CM_STORE);
    expect_refused(f, p, NULL, "archive entry 'dir' appears twice");
    const char *n9[] = {"dir/"};
    make_zip(p, n9, (const char *[]){"data"}, 1, ZIP_CM_STORE);
    expect_refused(f, p, NULL, "archive entry 'dir/' is a folder entry with data");

    /* Duplicate names: libzip's own check (ZIP_CHECKCONS) finds them; the message still names the entry. */
    const char *nd[] = {"docs/dup1", "docs/dup2"}, *dd[] = {"one", "two"};
    make_zip(p, nd, dd, 2, ZIP_CM_DEFLATE);
    patch_all(p, "docs/dup2", "docs/dup1");
    expect_refused(f, p, NULL, "archive entry 'docs/dup1' appears twice");
}

static void test_reader_limits_and_damage(void **state)
{
    fixture *f = *state;
    char p[160];
    snprintf(p, sizeof p, "%s/t.zip", f->out);
    char *big = malloc(100001);
    memset(big, 'a', 100000);
    big[100000] = '\0';
    const char *n[] = {"a.txt", "big.txt"}, *d[] = {"hello", big};
    make_zip(p, n, d, 2, ZIP_CM_DEFLATE);

    ib_zip_limits lim = {.max_total = 100004, .max_entries = 10};
    expect_refused(f, p, &lim, "archive uncompressed size 100005 bytes passes the limit of 100004 bytes");
    lim = (ib_zip_limits){.max_total = 100005, .max_entries = 1};
    expect_refused(f, p, &lim, "archive has 2 entries, more than the limit of 1");
    lim = (ib_zip_limits){.max_total = 100005, .max_entries = 2};
    zip_t *za = open_verified(f, p, &lim);
    assert_non_null(za);
    zip_discard(za);

    /* Truncated: the first half of the file. */
    size_t len;
    char *bytes = tu_read(p, &len);
    write_bytes(p, bytes, len / 2);
    expect_refused(f, p, NULL, "archive is truncated or damaged: its central directory is missing");
    write_bytes(p, bytes, len - 1);
    expect_refused(f, p, NULL, "archive is truncated or damaged: its central directory is missing");
    free(bytes);

    /* A lying size: 100000 bytes declared as 1000 (local header and central directory agree). */
    make_zip(p, n, d, 2, ZIP_CM_DEFLATE);
    bytes = tu_read(p, &len);
    int hits = 0;
    for (size_t i = 0; i + 46 <= len; i++) {
        uint32_t sig = (uint32_t)(unsigned char)bytes[i] | (uint32_t)(unsigned char)bytes[i + 1] << 8 |
                       (uint32_t)(unsigned char)bytes[i + 2] << 16 |
                       (uint32_t)(unsigned char)bytes[i + 3] << 24;
        size_t off = sig == 0x04034b50 ? 22 : sig == 0x02014b50 ? 24 : 0; /* uncompressed size field */
        if (off && (unsigned char)bytes[i + off] == 0xa0 && (unsigned char)bytes[i + off + 1] == 0x86) {
            memcpy(bytes + i + off, "\xe8\x03\0\0", 4); /* 100000 = 0x186a0 -> 1000 */
            hits++;
        }
    }
    assert_int_equal(hits, 2);
    write_bytes(p, bytes, len);
    free(bytes);
    lim = (ib_zip_limits){.max_total = 2000, .max_entries = 0};
    expect_refused(f, p, &lim, "archive entry 'big.txt' is larger than its declared size of 1000 bytes");
    free(big);

    /* CRC: flip a byte of a stored entry's data. */
    const char *ns[] = {"pkg/a.txt"}, *ds[] = {"some stored content"};
    make_zip(p, ns, ds, 1, ZIP_CM_STORE);
    bytes = tu_read(p, &len);
    size_t data = 30 + (size_t)(unsigned char)bytes[26] + (size_t)(unsigned char)bytes[28];
    assert_memory_equal(bytes + data, "some", 4);
    bytes[data + 3] ^= 0x20;
    write_bytes(p, bytes, len);
    free(bytes);
    expect_refused(f, p, NULL, "archive entry 'pkg/a.txt' is damaged: CRC error");

    /* And a flipped byte in deflated data: a CRC or an inflate error, named either way. */
    const char *nz[] = {"pkg/z.txt"},
               *dz[] = {"deflated content deflated content deflated content, some more text"};
    make_zip(p, nz, dz, 1, ZIP_CM_DEFLATE);
    bytes = tu_read(p, &len);
    data = 30 + (size_t)(unsigned char)bytes[26] + (size_t)(unsigned char)bytes[28];
    bytes[data + 5] ^= 0x55;
    write_bytes(p, bytes, len);
    free(bytes);
    za = open_verified(f, p, NULL);
    assert_null(za);
    const char *pre = "archive entry 'pkg/z.txt' is damaged: ";
    if (strncmp(f->err, pre, strlen(pre)) != 0) fail_msg("got: %s", f->err);
}

static void test_extract(void **state)
{
    fixture *f = *state;
    char out[160], p[256];
    snprintf(out, sizeof out, "%s/x.ibsolution", f->out);
    fill_content(f->src, 0);
    assert_int_equal(write_dir(f, f->src, out, NULL, 0, NULL), 0);
    zip_t *za = open_verified(f, out, NULL);
    assert_non_null(za);
    int dfd = open(f->dst, O_RDONLY | O_DIRECTORY);
    mode_t old = umask(077);
    assert_int_equal(ib_zip_extract(za, dfd, f->err, sizeof f->err), 0);
    umask(old);
    snprintf(p, sizeof p, "%s/refiners/a b.ibrefiner", f->dst);
    char *s = tu_read(p, NULL);
    assert_string_equal(s, "x = 1");
    free(s);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_true(tu_exists(f->dst, "empty.txt"));

    /* Into a folder that is not empty: existing files are never overwritten. */
    assert_int_equal(ib_zip_extract(za, dfd, f->err, sizeof f->err), -1);
    assert_string_equal(f->err, "archive entry 'README.md' cannot be created: it appears twice");
    zip_discard(za);
    close(dfd);

    /* A symlink planted in the destination is not followed. */
    char dst2[160];
    snprintf(dst2, sizeof dst2, "%s/dst2", f->tmp);
    assert_int_equal(mkdir(dst2, 0755), 0);
    snprintf(p, sizeof p, "%s/refiners", dst2);
    char target[160];
    snprintf(target, sizeof target, "%s/out", f->tmp);
    assert_int_equal(symlink(target, p), 0);
    za = open_verified(f, out, NULL);
    dfd = open(dst2, O_RDONLY | O_DIRECTORY);
    assert_int_equal(ib_zip_extract(za, dfd, f->err, sizeof f->err), -1);
    assert_non_null(
        strstr(f->err, "archive entry 'refiners/a b.ibrefiner': folder 'refiners' cannot be created"));
    assert_false(tu_exists(f->out, "a b.ibrefiner"));
    zip_discard(za);
    close(dfd);

    /* Directory entries are created as folders. */
    char z[160];
    snprintf(z, sizeof z, "%s/dirs.zip", f->out);
    const char *n[] = {"d/", "d/e/", "d/e/f.txt"}, *d[] = {"", "", "f"};
    make_zip(z, n, d, 3, ZIP_CM_DEFLATE);
    za = open_verified(f, z, NULL);
    assert_non_null(za);
    char dst3[160];
    snprintf(dst3, sizeof dst3, "%s/dst3", f->tmp);
    assert_int_equal(mkdir(dst3, 0755), 0);
    dfd = open(dst3, O_RDONLY | O_DIRECTORY);
    assert_int_equal(ib_zip_extract(za, dfd, f->err, sizeof f->err), 0);
    assert_true(tu_exists(dst3, "d/e/f.txt"));
    zip_discard(za);
    close(dfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test_setup_teardown(test_reproducible, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_skips_and_extras, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_limits_and_damage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extract, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
