/* Unit tests of ib_tokens: a good file, every malformed line with its exact message, lookup, the first-start
 * bootstrap (mode 0600, not replacing an existing file), and the store that follows the file and fails closed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ib_testutil.h"
#include "ib_tokens.h"

#define T1 "0123456789abcdef0123"
#define T2 "fedcba9876543210fedc"

typedef struct fixture {
    char tmp[64];
    char path[128];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!tu_mkdtemp(f->tmp)) return -1;
    snprintf(f->path, sizeof f->path, "%s/tokens", f->tmp);
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

static void test_load_good(void **state)
{
    fixture *f = *state;
    tu_write_str(f->tmp, "tokens",
                 "# comment\n\n   \n" T1 " jay.doe user\r\n"
                 "\t" T2 "\tadmin   admin  \n"
                 "  # indented comment\n"
                 "0123456789abcdef bob user"); /* exactly 16, no final newline */
    ib_tokens t;
    char err[256] = "";
    assert_int_equal(ib_tokens_load(f->path, &t, err, sizeof err), 0);
    assert_int_equal(t.count, 3);
    assert_string_equal(t.items[0].user, "jay.doe");
    assert_string_equal(t.items[0].role, "user");
    assert_string_equal(t.items[1].user, "admin");
    assert_string_equal(t.items[1].role, "admin");

    const ib_token *k = ib_tokens_find(&t, T2);
    assert_non_null(k);
    assert_string_equal(k->user, "admin");
    k = ib_tokens_find(&t, "0123456789abcdef");
    assert_non_null(k);
    assert_string_equal(k->user, "bob");
    assert_null(ib_tokens_find(&t, T1 "x"));
    assert_null(ib_tokens_find(&t, "0123456789abcde"));
    assert_null(ib_tokens_find(&t, ""));
    assert_null(ib_tokens_find(&t, NULL));
    ib_tokens_free(&t);
    assert_int_equal(t.count, 0);
}

static void expect_bad(fixture *f, const char *content, const char *want_tail)
{
    ib_tokens t;
    char err[256] = "", want[512];
    tu_write_str(f->tmp, "tokens", content);
    assert_int_equal(ib_tokens_load(f->path, &t, err, sizeof err), -1);
    snprintf(want, sizeof want, "tokens file %s %s", f->path, want_tail);
    assert_string_equal(err, want);
    assert_null(t.items);
    assert_int_equal(t.count, 0);
}

static void test_load_bad(void **state)
{
    fixture *f = *state;
    expect_bad(f, T1 " jay user\n" T2 " bob root\n", "line 2: role 'root' is not admin or user");
    expect_bad(f, T1 " jay\n", "line 1: expected 'TOKEN USER ROLE', found 2 fields");
    expect_bad(f, "\n" T1 "\n", "line 2: expected 'TOKEN USER ROLE', found 1 field");
    expect_bad(f, T1 " jay user extra\n", "line 1: expected 'TOKEN USER ROLE', found 4 fields");
    expect_bad(f, "short jay user\n", "line 1: token is shorter than 16 characters");
    expect_bad(f, T1 " -jay user\n",
               "line 1: user name '-jay' is not valid (1-64 of A-Za-z0-9._-, not starting with '.' or '-')");
    expect_bad(f, T1 " jay/x user\n",
               "line 1: user name 'jay/x' is not valid (1-64 of A-Za-z0-9._-, not starting with '.' or '-')");
    expect_bad(f, T1 " jay user\n# c\n" T1 " bob admin\n", "line 3: duplicate token");
    expect_bad(f, T1 "\x01xx jay user\n", "line 1: token has a character outside printable ASCII");
    expect_bad(f, T1 " jay Admin\n", "line 1: role 'Admin' is not admin or user");

    ib_tokens t;
    char err[256] = "", want[512];
    tu_write(f->tmp, "tokens", T1 " jay user\n" T2 "\0 bob user\n", 21 + 9 + 21 + 10);
    assert_int_equal(ib_tokens_load(f->path, &t, err, sizeof err), -1);
    snprintf(want, sizeof want, "tokens file %s line 2: has a NUL byte", f->path);
    assert_string_equal(err, want);

    snprintf(want, sizeof want, "%s/none", f->tmp);
    assert_int_equal(ib_tokens_load(want, &t, err, sizeof err), -1);
    char want2[600];
    snprintf(want2, sizeof want2, "tokens file %s cannot be opened: No such file or directory", want);
    assert_string_equal(err, want2);
}

static void test_bootstrap(void **state)
{
    fixture *f = *state;
    char tok[128] = "", err[256] = "";
    assert_int_equal(ib_tokens_bootstrap(f->path, tok, sizeof tok, err, sizeof err), 1);
    assert_int_equal(strlen(tok), 64);
    for (const char *p = tok; *p; p++)
        assert_non_null(strchr("0123456789abcdef", *p));
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    ib_tokens t;
    assert_int_equal(ib_tokens_load(f->path, &t, err, sizeof err), 0);
    assert_int_equal(t.count, 1);
    const ib_token *k = ib_tokens_find(&t, tok);
    assert_non_null(k);
    assert_string_equal(k->user, "admin");
    assert_string_equal(k->role, "admin");
    ib_tokens_free(&t);

    /* Existing file: kept as it is. */
    char tok2[128] = "";
    assert_int_equal(ib_tokens_bootstrap(f->path, tok2, sizeof tok2, err, sizeof err), 0);
    assert_string_equal(tok2, "");
    assert_int_equal(ib_tokens_load(f->path, &t, err, sizeof err), 0);
    assert_non_null(ib_tokens_find(&t, tok));
    ib_tokens_free(&t);

    /* Two bootstraps give different tokens; only one file, no temporaries. */
    char other[128];
    snprintf(other, sizeof other, "%s/tokens2", f->tmp);
    assert_int_equal(ib_tokens_bootstrap(other, tok2, sizeof tok2, err, sizeof err), 1);
    assert_string_not_equal(tok, tok2);
    assert_int_equal(ib_tokens_bootstrap(other, tok2, 10, err, sizeof err), 0);

    snprintf(other, sizeof other, "%s/tokens3", f->tmp);
    assert_int_equal(ib_tokens_bootstrap(other, tok2, 10, err, sizeof err), -1);
    assert_false(tu_exists(f->tmp, "tokens3"));
    snprintf(other, sizeof other, "%s/nodir/tokens", f->tmp);
    assert_int_equal(ib_tokens_bootstrap(other, tok2, sizeof tok2, err, sizeof err), -1);
    assert_non_null(strstr(err, "its folder cannot be opened"));
}

static int valid(ib_token_store *st, const char *token, const char *want_user)
{
    char user[64] = "", role[16] = "";
    int ok = ib_token_store_check(st, token, user, sizeof user, role, sizeof role);
    if (ok && want_user) assert_string_equal(user, want_user);
    return ok;
}

/* Rewrites the file in place (same inode), as an editor that truncates does. */
static void edit_in_place(fixture *f, const char *content)
{
    int fd = open(f->path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
}

/* Replaces the file by rename, as most editors and `mv` do. */
static void replace_by_rename(fixture *f, const char *content)
{
    tu_write_str(f->tmp, "tokens.new", content);
    char from[160];
    snprintf(from, sizeof from, "%s/tokens.new", f->tmp);
    assert_int_equal(rename(from, f->path), 0);
}

static void test_store_fails_closed(void **state)
{
    fixture *f = *state;
    ib_token_store st;
    char err[256] = "", want[512];

    /* The first load must succeed: a missing or malformed file is an error with the reason. */
    assert_int_equal(ib_token_store_open(&st, f->path, err, sizeof err), -1);
    snprintf(want, sizeof want, "tokens file %s cannot be opened: No such file or directory", f->path);
    assert_string_equal(err, want);
    tu_write_str(f->tmp, "tokens", T1 " jay user\n" T2 " bob roo\n");
    assert_int_equal(ib_token_store_open(&st, f->path, err, sizeof err), -1);
    snprintf(want, sizeof want, "tokens file %s line 2: role 'roo' is not admin or user", f->path);
    assert_string_equal(err, want);

    tu_write_str(f->tmp, "tokens", T1 " jay user\n" T2 " bob admin\n");
    assert_int_equal(ib_token_store_open(&st, f->path, err, sizeof err), 0);
    assert_true(valid(&st, T1, "jay"));
    assert_true(valid(&st, T2, "bob"));
    assert_false(valid(&st, T1 "x", NULL));

    /* Revoking jay with a typo on the line left: the whole file is refused, jay's token included. */
    edit_in_place(f, T2 " bob admn\n");
    assert_false(valid(&st, T1, NULL));
    assert_false(valid(&st, T2, NULL));
    /* Fixed: the file's tokens, and only those. */
    edit_in_place(f, T2 " bob admin\n");
    assert_false(valid(&st, T1, NULL));
    assert_true(valid(&st, T2, "bob"));

    /* Deleted: nothing is valid until it is back (here by rename, with the same content as before). */
    assert_int_equal(unlink(f->path), 0);
    assert_false(valid(&st, T2, NULL));
    assert_false(valid(&st, T2, NULL));
    replace_by_rename(f, T2 " bob admin\n");
    assert_true(valid(&st, T2, "bob"));

    /* Replaced by rename with a file that does not parse, then with a good one. */
    replace_by_rename(f, T2 " bob admin\n" T1 "\n");
    assert_false(valid(&st, T2, NULL));
    replace_by_rename(f, T1 " jay user\n");
    assert_true(valid(&st, T1, "jay"));
    assert_false(valid(&st, T2, NULL));

    /* An edit of the same size right after a read, within one timestamp tick: seen by its content. */
    edit_in_place(f, T2 " bob user\n");
    assert_true(valid(&st, T2, "bob"));
    edit_in_place(f, T1 " jay user\n");
    assert_true(valid(&st, T1, "jay"));
    assert_false(valid(&st, T2, NULL));

    /* An empty file is a file with no tokens. */
    edit_in_place(f, "");
    assert_false(valid(&st, T1, NULL));
    edit_in_place(f, "# none yet\n");
    assert_false(valid(&st, T1, NULL));

    /* A folder in its place, or a file past the size limit: refused. */
    assert_int_equal(unlink(f->path), 0);
    assert_int_equal(mkdir(f->path, 0700), 0);
    assert_false(valid(&st, T1, NULL));
    assert_int_equal(rmdir(f->path), 0);
    tu_write_str(f->tmp, "tokens", T1 " jay user\n");
    assert_true(valid(&st, T1, "jay"));
    assert_int_equal(truncate(f->path, (16 << 20) + 1), 0);
    assert_false(valid(&st, T1, NULL));
    ib_token_store_close(&st);
    ib_token_store_close(&st); /* twice, and on a store never opened: harmless */
    ib_token_store never = {0};
    ib_token_store_close(&never);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_good, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bootstrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_fails_closed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
