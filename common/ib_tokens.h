/* ib_tokens: the tokens file, one token per line: `TOKEN USER ROLE` (ROLE admin or user); blank lines and lines
 * starting with '#' are ignored. A malformed file is refused with the line number and the reason. The gateway
 * holds it in an ib_token_store, which follows the file as it changes and fails closed: while the file is
 * missing or does not parse, no token is valid. */
#ifndef IB_TOKENS_H
#define IB_TOKENS_H

#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct ib_token {
    char *token, *user, *role;
} ib_token;

typedef struct ib_tokens {
    ib_token *items;
    size_t count;
} ib_tokens;

/* 0 on success; -1 with a message in err ("tokens file PATH line 3: role 'root' is not admin or user", "...
 * cannot be opened: ..."). Tokens must be at least 16 characters, user names valid (ib_user_name_ok), no
 * duplicate tokens. */
int ib_tokens_load(const char *path, ib_tokens *out, char *err, size_t errsz);
void ib_tokens_free(ib_tokens *t);
/* The entry for a token (compared in constant time), or NULL. */
const ib_token *ib_tokens_find(const ib_tokens *t, const char *token);
/* Creates the file (mode 0600, atomically) with one random admin token for user "admin" when it does not exist.
 * Returns 1 and the token in tok_out when it created it, 0 when it already existed, -1 on error. */
int ib_tokens_bootstrap(const char *path, char *tok_out, size_t toksz, char *err, size_t errsz);

/* The tokens in force, following the file. Every check stats the file and re-reads it when its device, inode,
 * size, mtime or ctime changed, so an edit in place and a replace by rename are both seen at the next request;
 * a file changed within the last two seconds is also compared by content (SHA-256), since two edits in one
 * timestamp tick leave the same times. Fail closed: while the file is missing, unreadable or malformed, no
 * token is valid (the log says why, once per change, with the line at fault); a valid file puts its tokens in
 * force again. */
typedef struct ib_token_store {
    char *path;
    pthread_rwlock_t lock;
    ib_tokens tokens;            /* empty while refused */
    int exists;                  /* the last stat found a file */
    dev_t dev;                   /* what the last read saw */
    ino_t ino;
    off_t size;
    long long mtime_ns, ctime_ns;
    int racy;                    /* changed so recently that a same-tick edit would keep these times */
    unsigned char digest[32];    /* SHA-256 of the content the tokens (or the refusal) came from */
    int refused;                 /* 1 while no token is valid */
} ib_token_store;

/* Loads the file for the first time: 0, or -1 with the reason (missing, unreadable, the bad line). */
int ib_token_store_open(ib_token_store *s, const char *path, char *err, size_t errsz);
/* Follows the file (see above), then looks the token up: 1 with its user and role copied, 0 when it is not
 * valid now. Thread-safe. */
int ib_token_store_check(ib_token_store *s, const char *token, char *user, size_t usersz, char *role,
                         size_t rolesz);
/* Safe on a store never opened (all zero). */
void ib_token_store_close(ib_token_store *s);

#endif
