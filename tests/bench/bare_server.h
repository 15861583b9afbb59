/* bare_server.h: what the benchmarks' bare civetweb anchors (bare_civetweb.c, bare_engine.c) share: listen on
 * 127.0.0.1:PORT with the gateway's civetweb settings that matter for speed (32 threads, keep-alive, no Nagle),
 * hand every request to one handler, and stop cleanly on SIGTERM or SIGINT. */
#ifndef BARE_SERVER_H
#define BARE_SERVER_H

#include <civetweb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

/* Serves until SIGTERM/SIGINT; exit_thread (may be NULL) runs as each civetweb thread ends. `what` goes in the
 * "listening" line. Returns 0 once stopped, 1 when it cannot listen. */
static int bare_serve(const char *prog, const char *port, mg_request_handler handle,
                      void (*exit_thread)(const struct mg_context *, int, void *), const char *what)
{
    char ports[64];
    snprintf(ports, sizeof ports, "127.0.0.1:%s", port);
    const char *options[] = {"listening_ports", ports, "num_threads", "32", "tcp_nodelay", "1",
                             "enable_keep_alive", "yes", "keep_alive_timeout_ms", "30000", NULL};
    /* Blocked before civetweb starts its threads (they inherit the mask), then waited for here. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.exit_thread = exit_thread;
    mg_init_library(0);
    struct mg_context *ctx = mg_start(&cb, NULL, options);
    if (!ctx) {
        fprintf(stderr, "%s: cannot listen on %s\n", prog, ports);
        mg_exit_library();
        return 1;
    }
    mg_set_request_handler(ctx, "/", handle, NULL);
    fprintf(stderr, "%s: listening on http://%s (%s)\n", prog, ports, what);
    int sig;
    sigwait(&sigs, &sig);
    mg_stop(ctx);
    mg_exit_library();
    return 0;
}

#endif
