/* ibsol-gateway: the only HTTP listener. main() declares the gateway's settings and hands them to the daemon
 * skeleton; start() opens the service sockets, the drive and civetweb. */
#include "gw.h"

#include "ib_daemon.h"
#include "ib_log.h"
#include "ib_path.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

gw_state gw;

static char *http_host, *web_root;
static long long http_port, http_threads, http_read_timeout_ms, http_max_per_client;

static const ib_cfg gateway_cfg[] = {
    {"http_host", IB_CFG_STR, "127.0.0.1", 0, 0, &http_host, "address the HTTP server listens on"},
    {"http_port", IB_CFG_INT, "8080", 1, 65535, &http_port, "HTTP port"},
    {"http_threads", IB_CFG_INT, "32", 2, 1024, &http_threads, "HTTP worker threads (requests in flight)"},
    {"http_read_timeout_ms", IB_CFG_INT, "10000", 100, 600000, &http_read_timeout_ms,
     "request headers must arrive within this; a body read or reply write stalled this long ends the request"},
    {"http_max_per_client", IB_CFG_INT, "16", 0, 1024, &http_max_per_client,
     "connections one client address may have open at once, past it 503 (keep below http_threads; 0: no cap, "
     "for a proxy in front, whose connections all come from one address)"},
    {"max_body", IB_CFG_INT, "67108864", 1024, 1LL << 34, &gw.max_body, "largest request body, bytes (else 413)"},
    {"max_upload", IB_CFG_INT, "4294967296", 1, 1LL << 44, &gw.max_upload,
     "largest file a files-API PUT or PATCH may write, bytes (else 413)"},
    {"event_streams", IB_CFG_INT, "16", 0, 1024, &gw.event_streams,
     "jobs/events streams open at once (each holds one HTTP thread: keep below http_threads)"},
    {"events_max_seconds", IB_CFG_INT, "3600", 1, 604800, &gw.events_max_s, "longest jobs/events stream, seconds"},
    {"events_keepalive_ms", IB_CFG_INT, "15000", 100, 3600000, &gw.events_keepalive_ms,
     "keep-alive comment interval on a quiet jobs/events stream"},
    {"web_root", IB_CFG_STR, "", 0, 0, &web_root,
     "folder of the web page served at / (default: share/ibsol/web beside the installed bin/, else the source web/)"},
    {"tokens", IB_CFG_STR, "", 0, 0, &gw.tokens_path, "tokens file: TOKEN USER ROLE per line (default DATA/tokens, created on first start)"},
};

/* A tokens-file error names its setting first, as every start error does. */
static int tokens_error(char *err, size_t errsz)
{
    char why[1024];
    snprintf(why, sizeof why, "%s", err);
    snprintf(err, errsz, "IBSOL_TOKENS: %s", why);
    return -1;
}

/* The HTTP port is tried before any service socket opens: a port in use is the usual reason a gateway cannot
 * start, and failing then leaves no nng dial in flight (nng 1.5.2 sockets closed while their dials were still
 * connecting left nng's own objects behind, reported as leaks, once in a CI run). civetweb still reports a port
 * taken in between. 1 after filling err. */
static int http_port_taken(char *err, size_t errsz)
{
    char port[16];
    snprintf(port, sizeof port, "%lld", http_port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    if (getaddrinfo(http_host, port, &hints, &ai) != 0 || !ai) return 0; /* civetweb says what is wrong */
    int taken = 0, one = 1;
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); /* as civetweb binds */
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno == EADDRINUSE) {
            snprintf(err, errsz, "IBSOL_HTTP_PORT: cannot listen on %s:%lld: %s", http_host, http_port,
                     strerror(errno));
            taken = 1;
        }
        close(fd);
    }
    freeaddrinfo(ai);
    return taken;
}

static int gateway_start(void **state, char *err, size_t errsz)
{
    char path[4096];
    /* Only the default tokens file is created on first start; one named in the settings must exist. */
    if (!gw.tokens_path[0]) {
        free(gw.tokens_path);
        gw.tokens_path = strdup(ib_data_path("tokens", path, sizeof path));
        char token[128];
        int made = ib_tokens_bootstrap(gw.tokens_path, token, sizeof token, err, errsz);
        if (made < 0) return tokens_error(err, errsz);
        if (made == 1) ib_info(NULL, "created %s with an admin token for user 'admin'", gw.tokens_path);
    }
    if (ib_token_store_open(&gw.tokens, gw.tokens_path, err, errsz) < 0) return tokens_error(err, errsz);
    gw.drive_fd = ib_drive_open_root(ib_data_path("drive", path, sizeof path));
    if (gw.drive_fd < 0) {
        snprintf(err, errsz, "IBSOL_DATA: cannot open drive folder '%s'", path);
        return -1;
    }
    if (http_port_taken(err, errsz)) return -1;
    for (int s = 0; s < IB_SVC_COUNT; s++)
        if (ib_client_open(&gw.svc[s], (ib_service)s, ib_set.url[s], ib_set.dials[s], err, errsz) < 0) return -1;
    if (gw_web_open(web_root, err, errsz) < 0) return -1;
    if (gw_events_start(err, errsz) < 0) return -1;
    gw_http_opts o = {http_host, http_port, http_threads, http_read_timeout_ms, http_max_per_client};
    return gw_http_start(&o, err, errsz);
}

static void gateway_stop(void *state)
{
    gw_events_stop(); /* first: it ends the jobs/events streams that mg_stop would wait for */
    gw_http_stop();
    gw_cache_clear();
    gw_web_close();
    for (int s = 0; s < IB_SVC_COUNT; s++) ib_client_close(&gw.svc[s]);
    ib_token_store_close(&gw.tokens);
    if (gw.drive_fd >= 0) close(gw.drive_fd);
    if (gw.jobs_fd >= 0) close(gw.jobs_fd);
}

int main(int argc, char **argv)
{
    static const ib_daemon_def def = {
        .name = "gateway",
        .about = "HTTP/JSON front of ibsol: auth, validation, routing to the services, the files API",
        .service = IB_SVC_NONE,
        .cfg = gateway_cfg,
        .ncfg = sizeof gateway_cfg / sizeof gateway_cfg[0],
        .start = gateway_start,
        .stop = gateway_stop,
        .alt_main = gw_meta_main, /* --print-routes */
    };
    gw.drive_fd = -1;
    gw.jobs_fd = -1;
    return ib_daemon_main(&def, argc, argv);
}
