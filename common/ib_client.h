/* ib_client: calls to a service over one nng REQ socket. Thread-safe: each calling thread has its own context
 * on the socket (kept between its calls), so any number of callers share one socket. A service that is not reachable within connect_timeout_ms is
 * IB_UNAVAILABLE ("the packager is not reachable"), one that does not answer within the call's timeout is
 * IB_TIMEOUT; neither ever hangs the caller. nng reconnects by itself, so a restarted service is used again
 * without any action here. */
#ifndef IB_CLIENT_H
#define IB_CLIENT_H

#include "ib_env.h"
#include "ib_ops.h"

#include <nng/nng.h>

typedef struct ib_client {
    nng_socket sock;
    ib_service service;
    char url[256];
    int open;
} ib_client;

/* Opens a REQ socket for the service: listens on url when `listen` is set (the service dials in, as runners
 * do), else dials it in the background. -1 with a message naming the URL. */
int ib_client_open(ib_client *c, ib_service svc, const char *url, int listen, char *err, size_t errsz);
/* Closes the socket, and the calling thread's context on it (other threads' go when they exit). Every aio must
 * be gone before nng_fini(), so a program closes its clients on the thread that called them. */
void ib_client_close(ib_client *c);

/* How many times a request answered "full" (ib_reply_full) is sent in all before that answer stands. */
#define IB_CLIENT_FULL_TRIES 4

/* Sends op with args (may be NULL) for `who` and waits for the reply. timeout_ms <= 0 uses the configured
 * request timeout. rep receives the service's reply, or an unavailable/timeout/internal error. A read that
 * lost its connection, and any request an instance answered "full", are sent again. */
ib_code ib_client_call(ib_client *c, const char *op, const ib_caller *who, const json_t *args, int timeout_ms,
                       ib_reply *rep);

/* Typed stubs: the op names and fields live in ib_ops; these keep callers from hand-building messages. */
ib_code ib_clnt_ping(ib_client *c, const ib_caller *who, int timeout_ms, ib_reply *rep);
ib_code ib_clnt_solution_create(ib_client *c, const ib_caller *who, const char *content_folder,
                                const char *output_folder, ib_reply *rep);
ib_code ib_clnt_market_publish(ib_client *c, const ib_caller *who, const char *ibsolution_path, ib_reply *rep);
ib_code ib_clnt_market_install(ib_client *c, const ib_caller *who, const char *name, const char *version,
                               ib_reply *rep);
ib_code ib_clnt_market_list(ib_client *c, const ib_caller *who, ib_reply *rep);

#endif
