/* ib_tokens: the tokens file, one token per line: `TOKEN USER ROLE` (ROLE admin or user); blank lines and lines
 * starting with '#' are ignored. Loaded once at start by the gateway; a malformed file is refused with the line
 * number and the reason. */
#ifndef IB_TOKENS_H
#define IB_TOKENS_H

#include <stddef.h>

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

#endif
