/* ib_daemon: config -> socket -> worker contexts -> dispatch -> clean shutdown. Signals are blocked in every
 * thread and taken by the main thread with sigwait, so handlers never run inside library code. */
#include "ib_daemon.h"

#include "ib_log.h"
#include "ib_pipes.h"
#include "ib_tls.h"

#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct server {
    const ib_daemon_def *def;
    void *state;
    nng_socket sock;
} server;

static nng_socket daemon_sock = NNG_SOCKET_INITIALIZER;
static char control_name[64];  /* ib_daemon_control_name */
static char control_url[256];  /* where a dialing daemon also listens, "" when it does not */

size_t ib_daemon_addrs(char (*out)[64], size_t max)
{
    return nng_socket_id(daemon_sock) > 0 ? ib_pipes_addrs(daemon_sock, out, max) : 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static ib_code dispatch(server *s, const ib_request *req, ib_reply *rep)
{
    const ib_daemon_def *def = s->def;
    if (!strcmp(req->op, IB_OP_PING)) {
        json_t *d = ib_reply_data(rep);
        json_object_set_new(d, "service", json_string(def->name));
        json_object_set_new(d, "version", json_string(IBSOL_VERSION));
        json_object_set_new(d, "pid", json_integer(getpid()));
        return IB_OK;
    }
    const ib_op_spec *spec = ib_op_find(req->op);
    for (size_t i = 0; i < def->nops; i++) {
        if (strcmp(def->ops[i].name, req->op) != 0) continue;
        if (spec && ib_args_check(spec, req->args, rep) != IB_OK) return rep->code;
        ib_code code = def->ops[i].fn(s->state, req, rep);
        /* A change readers may have cached: move the stamp they compare against. */
        if (code == IB_OK && spec && spec->touches && ib_stamp_touch(spec->touches) < 0)
            ib_warn(req->rid, "stamp %s cannot be written: cached replies may be stale", spec->touches);
        return code;
    }
    if (spec && spec->service == def->service)
        return ib_fail(rep, IB_NOT_IMPLEMENTED, "'%s' is not implemented yet", req->op);
    ib_warn(req->rid, "unknown op '%s'", req->op);
    return ib_fail(rep, IB_BAD_REQUEST, "the %s has no operation '%s'", def->name, req->op);
}

static void *worker(void *arg)
{
    server *s = arg;
    nng_ctx ctx;
    nng_aio *aio;
    if (nng_ctx_open(&ctx, s->sock) != 0 || nng_aio_alloc(&aio, NULL, NULL) != 0) {
        ib_error(NULL, "cannot open a socket context");
        return NULL;
    }
    for (;;) {
        nng_ctx_recv(ctx, aio);
        nng_aio_wait(aio);
        int rv = nng_aio_result(aio);
        if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) break;
        if (rv != 0) continue;
        nng_msg *msg = nng_aio_get_msg(aio);
        double t0 = now_ms();
        ib_request req;
        ib_reply rep;
        ib_reply_init(&rep);
        char err[256];
        int decoded = ib_request_decode(nng_msg_body(msg), nng_msg_len(msg), &req, err, sizeof err);
        /* The request's bytes are not needed once decoded: a 64 MB run_sync must not be held twice. */
        nng_msg_free(msg);
        msg = NULL;
        if (decoded < 0) {
            ib_warn(NULL, "malformed request: %s", err);
            ib_fail(&rep, IB_BAD_REQUEST, "malformed request: %s", err);
            req.rid[0] = '\0';
            req.op[0] = '\0';
        } else {
            ib_debug(req.rid, "op=%s user=%s start", req.op, req.user);
            dispatch(s, &req, &rep);
            ib_request_clear(&req);
        }
        ib_log(rep.code == IB_OK ? IB_LOG_INFO : IB_LOG_WARN, req.rid, "op=%s user=%s code=%s %.1fms%s%s", req.op,
               req.user, ib_code_word(rep.code), now_ms() - t0, rep.code == IB_OK ? "" : " msg=", rep.msg);
        if (nng_msg_alloc(&msg, 0) != 0) {
            ib_reply_clear(&rep);
            continue; /* no memory for a reply: the requester times out */
        }
        if (ib_reply_encode(msg, &rep) < 0) {
            nng_msg_clear(msg);
            ib_reply_clear(&rep);
            ib_fail(&rep, IB_INTERNAL, "reply could not be encoded");
            ib_reply_encode(msg, &rep);
        } else if (nng_msg_len(msg) > (size_t)ib_set.max_msg) {
            /* the requester would drop it unread and wait until its time-out: tell it why instead */
            size_t len = nng_msg_len(msg);
            nng_msg_clear(msg);
            ib_reply_clear(&rep);
            ib_fail(&rep, IB_TOO_LARGE, "the answer is %zu bytes, more than IBSOL_MAX_MSG (%lld bytes)", len,
                    ib_set.max_msg);
            ib_reply_encode(msg, &rep);
        }
        ib_reply_clear(&rep);
        nng_aio_set_msg(aio, msg);
        nng_ctx_send(ctx, aio);
        nng_aio_wait(aio);
        if (nng_aio_result(aio) != 0) nng_msg_free(msg); /* requester gone: the reply is dropped */
    }
    nng_aio_free(aio);
    nng_ctx_close(ctx);
    return NULL;
}

/* Listens on an ipc URL that only this daemon's user may connect to: what arrives there is trusted as any
 * user or role. */
static int listen_private(nng_socket sock, const char *url)
{
    nng_listener l = NNG_LISTENER_INITIALIZER;
    int rv = nng_listener_create(&l, sock, url);
    if (rv == 0) rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, 0600);
    if (rv == 0) rv = nng_listener_start(l, 0);
    if (rv != 0 && nng_listener_id(l) > 0) nng_listener_close(l);
    return rv;
}

static int open_socket(server *s, char *err, size_t errsz)
{
    ib_service svc = s->def->service;
    const char *url = ib_set.url[svc];
    int rv = nng_rep0_open(&s->sock);
    if (rv == 0) rv = nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, (size_t)ib_set.max_msg);
    if (rv == 0) rv = nng_socket_set_ms(s->sock, NNG_OPT_RECONNMINT, 50);
    if (rv == 0) rv = nng_socket_set_ms(s->sock, NNG_OPT_RECONNMAXT, 1000);
    if (rv == 0 && ib_set.dials[svc]) rv = ib_pipes_watch(s->sock, 1);
    char setting[64];
    snprintf(setting, sizeof setting, "IBSOL_%s_URL", svc == IB_SVC_PACKAGER      ? "PACKAGER"
                                                      : svc == IB_SVC_MARKETPLACE ? "MARKETPLACE"
                                                                                  : "RUNNER");
    if (rv != 0) {
        snprintf(err, errsz, "%s: cannot open a socket for '%s': %s", setting, url, nng_strerror(rv));
        return -1;
    }
    if (ib_endpoint_start(s->sock, url, !ib_set.dials[svc], setting, err, errsz) < 0) return -1;
    daemon_sock = s->sock;
    if (!ib_set.dials[svc]) return 0;
    /* A dialing daemon cannot be reached at its URL (the gateway listens there): it also listens on a socket
     * of its own in the data root, for ibsol-op on this host. Not being able to is no reason to stop serving. */
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    const char *ctl = ib_control_url(svc, control_name[0] ? control_name : pid, control_url, sizeof control_url);
    if (!ctl) {
        ib_warn(NULL, "no control socket: its path under %s/run is longer than an ipc path may be", ib_set.data);
    } else if ((rv = listen_private(s->sock, ctl)) != 0) {
        ib_warn(NULL, "no control socket: cannot listen on '%s' (%s): ibsol-op cannot reach this %s", ctl,
                nng_strerror(rv), ib_service_name(svc));
        control_url[0] = '\0';
    }
    return 0;
}

void ib_daemon_control_name(const char *name)
{
    snprintf(control_name, sizeof control_name, "%s", name);
}

const char *ib_control_url(ib_service svc, const char *name, char *buf, size_t bufsz)
{
    char safe[64];
    size_t n = 0;
    for (; name[n] && n < sizeof safe - 1; n++) {
        char c = name[n];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                 c == '_' || c == '-';
        safe[n] = ok ? c : '_'; /* an instance name is free text; a path component is not */
    }
    safe[n] = '\0';
    int len = snprintf(buf, bufsz, "ipc://%s/run/%s-%s.ipc", ib_set.data, ib_service_name(svc), safe);
    /* the same limit ib_url_check puts on ipc paths: a Unix socket path holds about 100 bytes */
    if (len < 0 || (size_t)len >= bufsz || len - 6 > 100) return NULL;
    return buf;
}

int ib_daemon_main(const ib_daemon_def *def, int argc, char **argv)
{
    size_t nshared;
    const ib_cfg *shared = ib_settings_table(&nshared);
    const ib_cfg *tables[2] = {shared, def->cfg};
    size_t counts[2] = {nshared, def->cfg ? def->ncfg : 0};
    char prog[64], err[1024];
    snprintf(prog, sizeof prog, "ibsol-%s", def->name);
    ib_log_init(def->name, 0);
    int rest = 0, code = 1;
    int rc = ib_config_load(tables, counts, 2, argc, argv, prog, def->about, &rest, err, sizeof err);
    if (rc == 1) {
        ib_config_free(tables, counts, 2);
        return 0;
    }
    if (rc < 0) {
        ib_error(NULL, "%s", err);
        ib_config_free(tables, counts, 2);
        return 1;
    }
    ib_log_init(def->name, ib_set.debug);
    if (rest > 1) {
        if (def->alt_main) {
            code = def->alt_main(rest, argv);
        } else {
            ib_error(NULL, "unknown argument '%s' (see --help)", argv[1]);
        }
        ib_config_free(tables, counts, 2);
        return code;
    }
    server s = {.def = def};
    if (ib_settings_finish(err, sizeof err) < 0) {
        ib_error(NULL, "%s", err);
        goto out;
    }
    /* Signals go to the main thread's sigwait only: block them before any thread exists. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (def->start && def->start(&s.state, err, sizeof err) < 0) {
        ib_error(NULL, "cannot start: %s", err);
        if (def->stop) def->stop(s.state); /* stop() copes with a half-done start */
        ib_tls_free();
        nng_fini();
        goto out;
    }
    if (def->service == IB_SVC_NONE) {
        /* A daemon without a service socket (the gateway) serves from its own threads until a signal. */
        ib_info(NULL, "%s %s started, data root %s", def->name, IBSOL_VERSION, ib_set.data);
        int sig = 0;
        sigwait(&sigs, &sig);
        ib_info(NULL, "signal %d: shutting down", sig);
        if (def->stop) def->stop(s.state);
        ib_info(NULL, "stopped");
        ib_tls_free();
        nng_fini();
        code = 0;
        goto out;
    }
    /* Whatever changed while this daemon was down must not be served from readers' caches. */
    for (size_t i = 0; i < def->nops; i++) {
        const ib_op_spec *spec = ib_op_find(def->ops[i].name);
        if (spec && spec->touches) ib_stamp_touch(spec->touches);
    }
    if (open_socket(&s, err, sizeof err) < 0) {
        ib_error(NULL, "%s", err);
        if (def->stop) def->stop(s.state);
        nng_close(s.sock);
        ib_tls_free();
        nng_fini();
        goto out;
    }
    size_t nworkers = (size_t)ib_set.workers;
    pthread_t *threads = calloc(nworkers, sizeof *threads);
    size_t started = 0;
    for (; threads && started < nworkers; started++)
        if (pthread_create(&threads[started], NULL, worker, &s) != 0) break;
    ib_info(NULL, "%s %s serving on %s (%s%s%s), %zu workers, data root %s", def->name, IBSOL_VERSION,
            ib_set.url[def->service], ib_set.dials[def->service] ? "dialing" : "listening",
            control_url[0] ? "; ibsol-op: " : "", control_url, started, ib_set.data);
    int sig = 0;
    sigwait(&sigs, &sig);
    ib_info(NULL, "signal %d: shutting down", sig);
    nng_close(s.sock); /* wakes every worker with NNG_ECLOSED */
    for (size_t i = 0; i < started; i++) pthread_join(threads[i], NULL);
    free(threads);
    if (def->stop) def->stop(s.state);
    ib_info(NULL, "stopped");
    ib_tls_free();
    nng_fini(); /* releases nng's threads and caches so leak checks see a clean exit */
    code = 0;
out:
    ib_config_free(tables, counts, 2);
    return code;
}
