/* ib_client: REQ side of the envelopes. */
#include "ib_client.h"

#include "ib_log.h"
#include "ib_pipes.h"
#include "ib_settings.h"
#include "ib_tls.h"

#include <ctype.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each calling thread keeps one context (and aio) per service socket: opening and closing a context per call
 * took the socket's lock twice per request, on which a busy gateway's threads queued. A thread makes one call
 * at a time, so its context carries one request at a time; a request that timed out is abandoned by the next
 * send on the same context (REQ semantics). The socket's close closes its contexts; the aio goes with the
 * thread (key destructor). */
typedef struct thread_ctx {
    int sock_id; /* 0: none yet */
    nng_ctx ctx;
    nng_aio *aio;
} thread_ctx;

static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;

static void thread_ctx_free(void *p)
{
    thread_ctx *t = p;
    for (int i = 0; t && i < IB_SVC_COUNT; i++)
        if (t[i].aio) nng_aio_free(t[i].aio);
    free(t);
}

static void ctx_key_make(void)
{
    pthread_key_create(&ctx_key, thread_ctx_free);
}

/* This thread's context on c's socket, opened on first use (or again after the socket changed). */
static thread_ctx *thread_ctx_for(ib_client *c, int *rv)
{
    pthread_once(&ctx_once, ctx_key_make);
    thread_ctx *all = pthread_getspecific(ctx_key);
    if (!all) {
        if (!(all = calloc(IB_SVC_COUNT, sizeof *all))) return *rv = NNG_ENOMEM, NULL;
        pthread_setspecific(ctx_key, all);
    }
    thread_ctx *t = &all[c->service];
    int id = nng_socket_id(c->sock);
    if (t->sock_id == id && t->aio) return t;
    if (t->sock_id) nng_ctx_close(t->ctx); /* a socket closed and reopened since: ECLOSED, harmless */
    t->sock_id = 0;
    if (!t->aio && (*rv = nng_aio_alloc(&t->aio, NULL, NULL)) != 0) return NULL;
    if ((*rv = nng_ctx_open(&t->ctx, c->sock)) != 0) return NULL;
    t->sock_id = id;
    return t;
}

int ib_client_open(ib_client *c, ib_service svc, const char *url, int listen, char *err, size_t errsz)
{
    memset(c, 0, sizeof *c);
    c->service = svc;
    snprintf(c->url, sizeof c->url, "%s", url);
    int rv = nng_req0_open(&c->sock);
    if (rv == 0) rv = nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, (size_t)ib_set.max_msg);
    /* A slow request (a 100 MB package) must never run twice: no timed resend. (A peer lost mid-request
     * fails the request, which the caller sees as unavailable.) */
    if (rv == 0) rv = nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    if (rv == 0) rv = nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, 50);
    if (rv == 0) rv = nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, 1000);
    if (rv == 0) rv = ib_pipes_watch(c->sock, 0); /* before any pipe exists: none is missed */
    /* Named by its setting, as a daemon's own socket is (ib_daemon.c): IBSOL_RUNNER_URL etc. */
    char setting[32];
    int n = snprintf(setting, sizeof setting, "IBSOL_%s_URL", ib_service_name(svc));
    for (int i = 6; i < n - 4; i++) setting[i] = (char)toupper((unsigned char)setting[i]);
    if (rv != 0)
        snprintf(err, errsz, "%s: cannot open a socket for '%s': %s", setting, url, nng_strerror(rv));
    if (rv != 0 || ib_endpoint_start(c->sock, url, listen, setting, err, errsz) < 0) {
        nng_close(c->sock);
        return -1;
    }
    c->open = 1;
    return 0;
}

void ib_client_close(ib_client *c)
{
    if (!c->open) return;
    /* The closing thread's own context goes first. Its aio would otherwise live until the thread exits, which
     * for a process's main thread is never: libnng 1.5.2's nng_fini() then waits forever on the aio's expiry
     * queue (seen as `ibsol-op ... ping` hanging in a futex after a failed call). */
    pthread_once(&ctx_once, ctx_key_make);
    thread_ctx *all = pthread_getspecific(ctx_key);
    if (all) {
        thread_ctx *t = &all[c->service];
        if (t->sock_id == nng_socket_id(c->sock)) nng_ctx_close(t->ctx);
        if (t->aio) nng_aio_free(t->aio);
        *t = (thread_ctx){0};
    }
    nng_close(c->sock);
    c->open = 0;
}

static ib_code call_once(ib_client *c, const char *op, const ib_caller *who, const json_t *args, int timeout_ms,
                         ib_reply *rep, int *lost);

ib_code ib_client_call(ib_client *c, const char *op, const ib_caller *who, const json_t *args, int timeout_ms,
                       ib_reply *rep)
{
    /* A read that lost its connection (the peer died or was dropped mid-request) is sent again: another peer,
     * or the same one back, answers it. Anything that changes state is never sent twice. */
    int tries = ib_op_retry_safe(op) ? 3 : 1;
    /* An instance that was full did nothing: any request may go again, most likely to another instance (the
     * REQ socket sends to its peers in turn). A few times, then the caller hears that all are full. */
    int full_tries = IB_CLIENT_FULL_TRIES;
    for (;;) {
        int lost = 0;
        ib_code code = call_once(c, op, who, args, timeout_ms, rep, &lost);
        if (ib_reply_is_full(rep) && --full_tries > 0) continue;
        if (!lost || --tries == 0) return code;
        ib_warn(who ? who->rid : NULL, "%s %s: connection lost; sending it again", ib_service_name(c->service), op);
    }
}

static ib_code call_once(ib_client *c, const char *op, const ib_caller *who, const json_t *args, int timeout_ms,
                         ib_reply *rep, int *lost)
{
    ib_reply_clear(rep);
    const char *svc = ib_service_name(c->service);
    const char *rid = who ? who->rid : NULL;
    nng_msg *msg = NULL;
    int rv = 0;
    thread_ctx *t = thread_ctx_for(c, &rv);
    if (!t) return ib_fail(rep, IB_UNAVAILABLE, "the %s is not reachable: %s", svc, nng_strerror(rv));
    nng_ctx ctx = t->ctx;
    nng_aio *aio = t->aio;
    if ((rv = nng_msg_alloc(&msg, 0)) != 0) {
        ib_fail(rep, IB_INTERNAL, "out of memory");
        goto done;
    }
    if (ib_request_encode(msg, op, who, args) < 0) {
        ib_fail(rep, IB_BAD_REQUEST, "the request nests too deeply");
        goto done;
    }
    nng_aio_set_msg(aio, msg);
    long long connect_ms = ib_set.connect_timeout_ms;
    if (timeout_ms > 0 && timeout_ms < connect_ms) connect_ms = timeout_ms;
    nng_aio_set_timeout(aio, (nng_duration)connect_ms);
    nng_ctx_send(ctx, aio);
    nng_aio_wait(aio);
    if ((rv = nng_aio_result(aio)) != 0) {
        /* The message still belongs to us when the send failed. */
        ib_warn(rid, "%s %s: send failed: %s", svc, op, nng_strerror(rv));
        ib_fail(rep, IB_UNAVAILABLE, "the %s is not reachable (no connection within %lld ms)", svc, connect_ms);
        goto done;
    }
    msg = NULL;
    nng_aio_set_timeout(aio, (nng_duration)(timeout_ms > 0 ? timeout_ms : ib_set.request_timeout_ms));
    nng_ctx_recv(ctx, aio);
    nng_aio_wait(aio);
    if ((rv = nng_aio_result(aio)) != 0) {
        ib_warn(rid, "%s %s: no reply: %s", svc, op, nng_strerror(rv));
        *lost = rv == NNG_ECONNRESET || rv == NNG_ECONNSHUT || rv == NNG_ECLOSED;
        if (rv == NNG_ETIMEDOUT)
            ib_fail(rep, IB_TIMEOUT, "the %s did not answer %s within %lld ms", svc, op,
                    (long long)(timeout_ms > 0 ? timeout_ms : ib_set.request_timeout_ms));
        else
            ib_fail(rep, IB_UNAVAILABLE, "the %s is not reachable: %s", svc, nng_strerror(rv));
        goto done;
    }
    msg = nng_aio_get_msg(aio);
    ib_reply_decode(nng_msg_body(msg), nng_msg_len(msg), rep);
done:
    nng_aio_set_msg(aio, NULL); /* the aio is kept: no pointer to a freed message in it */
    if (msg) nng_msg_free(msg);
    return rep->code;
}

ib_code ib_clnt_ping(ib_client *c, const ib_caller *who, int timeout_ms, ib_reply *rep)
{
    return ib_client_call(c, IB_OP_PING, who, NULL, timeout_ms, rep);
}

static ib_code call_with(ib_client *c, const char *op, const ib_caller *who, ib_reply *rep, const char *k1,
                         const char *v1, const char *k2, const char *v2)
{
    json_t *args = json_object();
    if (k1) json_object_set_new(args, k1, json_string(v1));
    if (k2) json_object_set_new(args, k2, json_string(v2));
    ib_code code = ib_client_call(c, op, who, args, 0, rep);
    json_decref(args);
    return code;
}

ib_code ib_clnt_solution_create(ib_client *c, const ib_caller *who, const char *content_folder,
                                const char *output_folder, ib_reply *rep)
{
    return call_with(c, IB_OP_SOLUTION_CREATE, who, rep, "content_folder", content_folder, "output_folder",
                     output_folder);
}

ib_code ib_clnt_market_publish(ib_client *c, const ib_caller *who, const char *ibsolution_path, ib_reply *rep)
{
    return call_with(c, IB_OP_MARKET_PUBLISH, who, rep, "ibsolution_path", ibsolution_path, NULL, NULL);
}

ib_code ib_clnt_market_install(ib_client *c, const ib_caller *who, const char *name, const char *version,
                               ib_reply *rep)
{
    return call_with(c, IB_OP_MARKET_INSTALL, who, rep, "name", name, "version", version);
}

ib_code ib_clnt_market_list(ib_client *c, const ib_caller *who, ib_reply *rep)
{
    return call_with(c, IB_OP_MARKET_LIST, who, rep, NULL, NULL, NULL, NULL);
}
