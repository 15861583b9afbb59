/* ib_err: the stable error codes of the API, their wire words and HTTP statuses (one table), and the reply
 * every operation fills in. Handlers return ib_fail(...) on a bad request: a message that names the field,
 * path or value, never a crash. */
#ifndef IB_ERR_H
#define IB_ERR_H

#include <jansson.h>
#include <stdarg.h>

typedef enum ib_code {
    IB_OK = 0,
    IB_BAD_REQUEST,
    IB_UNAUTHORIZED,
    IB_FORBIDDEN,
    IB_NOT_FOUND,
    IB_CONFLICT,
    IB_TOO_LARGE,
    IB_UNAVAILABLE,
    IB_TIMEOUT,
    IB_INTERNAL,
    IB_NOT_IMPLEMENTED,
    IB_NO_SPACE, /* a write failed for space on the data root (ENOSPC, EDQUOT): 507 */
    IB_CODE_COUNT
} ib_code;

/* "bad_request", "not_found", ...; "ok" for IB_OK. */
const char *ib_code_word(ib_code code);
/* 200, 400, 401, 403, 404, 409, 413, 503, 504, 500, 501, 507. */
int ib_code_http(ib_code code);
/* The code for a word; IB_INTERNAL for an unknown word. */
ib_code ib_code_from_word(const char *word);

#define IB_MSG_MAX 1024

/* What an operation answers. data (owned by the reply, may be NULL) is a JSON object whose keys the gateway
 * merges into the top level of the HTTP response next to "status". */
typedef struct ib_reply {
    ib_code code;
    char msg[IB_MSG_MAX];
    json_t *data;
} ib_reply;

void ib_reply_init(ib_reply *r);
void ib_reply_clear(ib_reply *r);
/* Sets code and message; returns code so a handler can `return ib_fail(rep, IB_NOT_FOUND, "...")`. */
ib_code ib_fail(ib_reply *r, ib_code code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
ib_code ib_vfail(ib_reply *r, ib_code code, const char *fmt, va_list ap);
/* The reply's data object, created on first use. */
json_t *ib_reply_data(ib_reply *r);

/* For an instance of a scaled service (a runner) that is full: it did nothing with the request, and says so, so
 * that the caller may send it again (nng hands it to another instance). ib_reply_full sets the code (503) and the
 * message like ib_fail; ib_reply_is_full tells a caller. */
ib_code ib_reply_full(ib_reply *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ib_reply_is_full(const ib_reply *r);

/* One wording for a full data root, whichever write met it. */
#define IB_NO_SPACE_MSG "no space left on the data root"
/* Whether errno value err means the file system is out of space (ENOSPC) or the owner's quota is (EDQUOT). */
int ib_errno_no_space(int err);
/* For a write that failed with errno err: IB_NO_SPACE with "<what>: no space left on the data root" when it
 * failed for space, else IB_INTERNAL with "<what>: <strerror>". what names the file or the step (printf format).
 * So a call site that writes is one line: return ib_fail_write(rep, errno, "writing '%s'", name); */
ib_code ib_fail_write(ib_reply *r, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Who is calling: set by the gateway from the bearer token, carried in every envelope. */
typedef struct ib_caller {
    const char *user;
    const char *role; /* "admin" or "user" */
    const char *rid;  /* request id, logged by every hop */
} ib_caller;

int ib_caller_is_admin(const ib_caller *c);

/* For modules that report with (err, errsz): formats the message (when err is not NULL) and returns -1. */
int ib_errf(char *err, size_t errsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
