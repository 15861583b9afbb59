/* ib_tokens: loading, lookup and first-start creation of the tokens file. Lookups compare SHA-256 digests of
 * every stored token in constant time, so neither a token's bytes nor its length leak through timing. */
#include "ib_tokens.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ib_fs.h"
#include "ib_log.h"
#include "ib_path.h"

#define TOKEN_MIN 16
#define TOKEN_RANDOM_BYTES 32 /* 64 hex characters */

#include "ib_err.h"

#define fail ib_errf /* fail(err, errsz, fmt, ...): message, then -1 */

static int token_chars_ok(const char *t)
{
    for (; *t; t++)
        if ((unsigned char)*t <= 0x20 || (unsigned char)*t >= 0x7f) return 0;
    return 1;
}

static void free_items(ib_token *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(items[i].token);
        free(items[i].user);
        free(items[i].role);
    }
    free(items);
}

/* Checks one split line; returns NULL when good or the reason. */
static const char *line_problem(char **f, int nf, const ib_token *items, size_t n, char *why, size_t whysz)
{
    if (nf != 3) {
        snprintf(why, whysz, "expected 'TOKEN USER ROLE', found %d field%s", nf, nf == 1 ? "" : "s");
        return why;
    }
    if (strlen(f[0]) < TOKEN_MIN) {
        snprintf(why, whysz, "token is shorter than %d characters", TOKEN_MIN);
        return why;
    }
    if (!token_chars_ok(f[0])) return "token has a character outside printable ASCII";
    if (!ib_user_name_ok(f[1])) {
        snprintf(why, whysz,
                 "user name '%.64s' is not valid (1-64 of A-Za-z0-9._-, not starting with '.' or '-')", f[1]);
        return why;
    }
    if (strcmp(f[2], "admin") != 0 && strcmp(f[2], "user") != 0) {
        snprintf(why, whysz, "role '%.32s' is not admin or user", f[2]);
        return why;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(items[i].token, f[0]) == 0) return "duplicate token";
    return NULL;
}

/* Parses the lines of fp (the file named path, for messages). */
static int parse(FILE *fp, const char *path, ib_tokens *out, char *err, size_t errsz)
{
    out->items = NULL;
    out->count = 0;
    ib_token *items = NULL;
    size_t n = 0, cap = 0, lineno = 0;
    char *line = NULL;
    size_t linecap = 0;
    ssize_t len;
    int rc = 0;
    while ((len = getline(&line, &linecap, fp)) >= 0) {
        lineno++;
        if (memchr(line, '\0', (size_t)len)) {
            rc = fail(err, errsz, "tokens file %s line %zu: has a NUL byte", path, lineno);
            break;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        char *f[4];
        int nf = 0;
        for (char *save = NULL, *tok = strtok_r(line, " \t", &save); tok;
             tok = strtok_r(NULL, " \t", &save)) {
            if (nf == 0 && tok[0] == '#') break;
            if (nf < 4) f[nf] = tok;
            nf++;
        }
        if (nf == 0) continue; /* blank or comment */
        char why[160];
        const char *problem = line_problem(f, nf, items, n, why, sizeof why);
        if (problem) {
            rc = fail(err, errsz, "tokens file %s line %zu: %s", path, lineno, problem);
            break;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            ib_token *ni = realloc(items, ncap * sizeof *ni);
            if (!ni) {
                rc = fail(err, errsz, "tokens file %s: out of memory", path);
                break;
            }
            items = ni;
            cap = ncap;
        }
        items[n].token = strdup(f[0]);
        items[n].user = strdup(f[1]);
        items[n].role = strdup(f[2]);
        n++;
        if (!items[n - 1].token || !items[n - 1].user || !items[n - 1].role) {
            rc = fail(err, errsz, "tokens file %s: out of memory", path);
            break;
        }
    }
    if (rc == 0 && ferror(fp))
        rc = fail(err, errsz, "tokens file %s cannot be read: %s", path, strerror(errno));
    free(line);
    if (rc != 0) {
        free_items(items, n);
        return -1;
    }
    out->items = items;
    out->count = n;
    return 0;
}

int ib_tokens_load(const char *path, ib_tokens *out, char *err, size_t errsz)
{
    out->items = NULL;
    out->count = 0;
    FILE *fp = fopen(path, "re");
    if (!fp) return fail(err, errsz, "tokens file %s cannot be opened: %s", path, strerror(errno));
    int rc = parse(fp, path, out, err, errsz);
    fclose(fp);
    return rc;
}

void ib_tokens_free(ib_tokens *t)
{
    if (!t) return;
    free_items(t->items, t->count);
    t->items = NULL;
    t->count = 0;
}

const ib_token *ib_tokens_find(const ib_tokens *t, const char *token)
{
    if (!t || !token) return NULL;
    unsigned char want[SHA256_DIGEST_LENGTH], have[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)token, strlen(token), want);
    const ib_token *found = NULL;
    /* Every entry is compared, found or not, so the time does not tell which one matched. */
    for (size_t i = 0; i < t->count; i++) {
        SHA256((const unsigned char *)t->items[i].token, strlen(t->items[i].token), have);
        if (CRYPTO_memcmp(want, have, sizeof want) == 0) found = &t->items[i];
    }
    return found;
}

int ib_tokens_bootstrap(const char *path, char *tok_out, size_t toksz, char *err, size_t errsz)
{
    if (access(path, F_OK) == 0) return 0;
    if (errno != ENOENT)
        return fail(err, errsz, "tokens file %s cannot be checked: %s", path, strerror(errno));
    if (!tok_out || toksz < 2 * TOKEN_RANDOM_BYTES + 1)
        return fail(err, errsz, "tokens file %s: token buffer too small", path);

    unsigned char rnd[TOKEN_RANDOM_BYTES];
    if (RAND_bytes(rnd, sizeof rnd) != 1) return fail(err, errsz, "tokens file %s: no random bytes", path);
    char tok[2 * TOKEN_RANDOM_BYTES + 1];
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(tok + 2 * i, 3, "%02x", rnd[i]);
    OPENSSL_cleanse(rnd, sizeof rnd);

    char body[256];
    int blen =
        snprintf(body, sizeof body,
                 "# ibsol tokens: one 'TOKEN USER ROLE' a line, ROLE admin or user\n%s admin admin\n", tok);

    char *dcopy = strdup(path), *bcopy = strdup(path);
    if (!dcopy || !bcopy) {
        free(dcopy);
        free(bcopy);
        return fail(err, errsz, "tokens file %s: out of memory", path);
    }
    int rc = -1, dfd = -1, fd = -1;
    char tmp[256 + 32];
    const char *base = basename(bcopy);
    if ((dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        fail(err, errsz, "tokens file %s: its folder cannot be opened: %s", path, strerror(errno));
        goto out;
    }
    if ((fd = ib_open_tmp(dfd, base, tmp, sizeof tmp)) < 0) {
        fail(err, errsz, "tokens file %s cannot be created: %s", path, strerror(errno));
        goto out;
    }
    if (write(fd, body, (size_t)blen) != blen || fsync(fd) != 0) {
        fail(err, errsz, "tokens file %s cannot be written: %s", path, strerror(errno));
        ib_discard_tmp(dfd, fd, tmp);
        goto out;
    }
    close(fd);
    /* RENAME_NOREPLACE: of two servers bootstrapping at once, the second keeps the first one's file. */
    if (renameat2(dfd, tmp, dfd, base, RENAME_NOREPLACE) != 0) {
        int e = errno;
        ib_discard_tmp(dfd, -1, tmp);
        if (e == EEXIST)
            rc = 0;
        else
            fail(err, errsz, "tokens file %s cannot be created: %s", path, strerror(e));
        goto out;
    }
    fsync(dfd);
    memcpy(tok_out, tok, sizeof tok);
    rc = 1;
out:
    OPENSSL_cleanse(tok, sizeof tok);
    OPENSSL_cleanse(body, sizeof body);
    if (dfd >= 0) close(dfd);
    free(dcopy);
    free(bcopy);
    return rc;
}

/* --- the store: the file as it is now, fail closed ------------------------------------------------------------ */

#define TOKENS_FILE_MAX (16 << 20) /* about 150,000 tokens */
#define RACY_NS 2000000000LL        /* well above any filesystem's timestamp tick */

static long long ts_ns(struct timespec t)
{
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Refuses every token from now on, logging why once per change. Called with the write lock held. */
static void refuse(ib_token_store *s, int log, const char *why)
{
    ib_tokens_free(&s->tokens);
    if (log) ib_error(NULL, "%s: every token is refused until the file is fixed", why);
    s->refused = 1;
}

/* Reads the file again; log is 0 on the first load (the caller reports). Write lock held. Returns 0 when the
 * tokens are in force, -1 with the reason in err when every token is refused. */
static int reload(ib_token_store *s, int log, char *err, size_t errsz)
{
    struct stat st;
    int fd = open(s->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        /* missing: nothing to compare with once it is back, so it is read again whatever it holds */
        int was = s->exists || !s->refused;
        s->exists = 0;
        s->racy = 0;
        memset(s->digest, 0, sizeof s->digest);
        fail(err, errsz, "tokens file %s cannot be opened: %s", s->path, strerror(e));
        refuse(s, log && was, err);
        return -1;
    }
    s->exists = 1;
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    s->size = st.st_size;
    s->mtime_ns = ts_ns(st.st_mtim);
    s->ctime_ns = ts_ns(st.st_ctim);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    s->racy = s->mtime_ns + RACY_NS > ts_ns(now) || s->ctime_ns + RACY_NS > ts_ns(now);

    char *buf = NULL;
    size_t len = 0;
    int rc = -1;
    if (!S_ISREG(st.st_mode)) {
        fail(err, errsz, "tokens file %s is not a regular file", s->path);
    } else if (st.st_size > TOKENS_FILE_MAX) {
        fail(err, errsz, "tokens file %s is larger than %d bytes", s->path, TOKENS_FILE_MAX);
    } else if (!(buf = malloc((size_t)st.st_size + 1))) {
        fail(err, errsz, "tokens file %s: out of memory", s->path);
    } else {
        /* read to the end: the file may have grown since fstat; a larger file is refused, not cut short */
        ssize_t n;
        while ((n = read(fd, buf + len, (size_t)st.st_size + 1 - len)) > 0 && len + (size_t)n <= (size_t)st.st_size)
            len += (size_t)n;
        if (n < 0)
            fail(err, errsz, "tokens file %s cannot be read: %s", s->path, strerror(errno));
        else if (n > 0)
            fail(err, errsz, "tokens file %s changed while it was read", s->path);
        else
            rc = 0;
    }
    close(fd);
    unsigned char digest[SHA256_DIGEST_LENGTH] = {0};
    if (rc == 0) SHA256((const unsigned char *)buf, len, digest);
    if (rc == 0 && !memcmp(digest, s->digest, sizeof digest)) {
        free(buf); /* the same content (touched, or confirmed after a recent change): nothing to do */
        return s->refused ? fail(err, errsz, "tokens file %s is still refused", s->path) : 0;
    }
    if (rc == 0) {
        memcpy(s->digest, digest, sizeof digest);
        ib_tokens fresh;
        FILE *fp = len ? fmemopen(buf, len, "r") : NULL;
        if (len && !fp) {
            rc = fail(err, errsz, "tokens file %s: out of memory", s->path);
        } else if (!len) {
            fresh = (ib_tokens){0}; /* an empty file: no tokens, as the file says */
        } else {
            rc = parse(fp, s->path, &fresh, err, errsz);
            fclose(fp);
        }
        if (rc == 0) {
            ib_tokens_free(&s->tokens);
            s->tokens = fresh;
            s->refused = 0;
            if (log) ib_info(NULL, "tokens file %s reloaded: %zu tokens", s->path, fresh.count);
        }
    } else {
        memset(s->digest, 0, sizeof s->digest); /* unreadable: read it again on the next change */
    }
    free(buf);
    if (rc != 0) refuse(s, log, err);
    return rc;
}

int ib_token_store_open(ib_token_store *s, const char *path, char *err, size_t errsz)
{
    memset(s, 0, sizeof *s);
    if (!(s->path = strdup(path))) return fail(err, errsz, "tokens file %s: out of memory", path);
    pthread_rwlock_init(&s->lock, NULL);
    if (reload(s, 0, err, errsz) == 0) return 0;
    ib_token_store_close(s);
    return -1;
}

/* Whether the file may differ from what was read: another file, other times, or a recent change. */
static int changed(ib_token_store *s)
{
    struct stat st;
    int exists = stat(s->path, &st) == 0;
    pthread_rwlock_rdlock(&s->lock);
    int same = exists == s->exists && !s->racy &&
               (!exists || (st.st_dev == s->dev && st.st_ino == s->ino && st.st_size == s->size &&
                            ts_ns(st.st_mtim) == s->mtime_ns && ts_ns(st.st_ctim) == s->ctime_ns));
    pthread_rwlock_unlock(&s->lock);
    return !same;
}

int ib_token_store_check(ib_token_store *s, const char *token, char *user, size_t usersz, char *role,
                         size_t rolesz)
{
    if (changed(s)) {
        char err[512];
        pthread_rwlock_wrlock(&s->lock);
        reload(s, 1, err, sizeof err);
        pthread_rwlock_unlock(&s->lock);
    }
    pthread_rwlock_rdlock(&s->lock);
    const ib_token *t = ib_tokens_find(&s->tokens, token);
    if (t) {
        snprintf(user, usersz, "%s", t->user);
        snprintf(role, rolesz, "%s", t->role);
    }
    pthread_rwlock_unlock(&s->lock);
    return t != NULL;
}

void ib_token_store_close(ib_token_store *s)
{
    if (!s->path) return;
    ib_tokens_free(&s->tokens);
    pthread_rwlock_destroy(&s->lock);
    free(s->path);
    memset(s, 0, sizeof *s);
}
