/* gw http: civetweb set-up and the plumbing every request goes through: request id, bearer auth (the tokens
 * file is re-read when it changes, so adding a token needs no restart), bounded body reading, and replies. */
#include "gw.h"

#include "ib_base64.h"
#include "ib_conv.h"
#include "ib_log.h"
#include "ib_utf8.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CONN_QUEUE 32 /* accepted connections waiting for a worker thread (civetweb's connection_queue) */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* --- replies -------------------------------------------------------------------------------------------- */

static void send_all(gw_req *r, int status, const char *ctype, const char *body, size_t len, const char *extra,
                     int body_follows)
{
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nX-Request-Id: %s\r\n"
                     "Cache-Control: no-store\r\n%s\r\n",
                     status, mg_get_response_code_text(r->conn, status), ctype, len, r->rid, extra ? extra : "");
    r->status = status;
    if (n < 0 || (size_t)n >= sizeof head) return;
    int is_head = r->ri && !strcmp(r->ri->request_method, "HEAD");
    if (!body || !len || is_head || body_follows) {
        mg_write(r->conn, head, (size_t)n);
        return;
    }
    /* One write for head and body: a reply in two segments stalls on delayed ACKs. */
    char *buf = malloc((size_t)n + len);
    if (!buf) return;
    memcpy(buf, head, (size_t)n);
    memcpy(buf + n, body, len);
    mg_write(r->conn, buf, (size_t)n + len);
    free(buf);
}

void gw_reply_json(gw_req *r, int http_status, json_t *body)
{
    char *text = ib_json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text) text = strdup("{\"status\":\"ERROR\",\"code\":\"internal\",\"msg\":\"reply could not be encoded\"}");
    send_all(r, http_status, "application/json", text, strlen(text), NULL, 0);
    free(text);
}

static void reply_error_msg(gw_req *r, ib_code code, const char *msg)
{
    gw_reply_error_http(r, ib_code_http(code), code, msg);
}

void gw_reply_error_extra(gw_req *r, int http_status, ib_code code, const char *msg, const char *extra)
{
    /* A message naming a path that is not UTF-8 would make no JSON, and no reply at all. */
    char fixed[IB_MSG_MAX];
    if (!ib_utf8_valid(msg, strlen(msg))) msg = ib_utf8_escape(msg, fixed, sizeof fixed);
    json_t *body = json_pack("{s:s, s:s, s:s}", "status", "ERROR", "code", ib_code_word(code), "msg", msg);
    char *text = ib_json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text) send_all(r, http_status, "application/json", text, strlen(text), extra, 0);
    free(text);
}

void gw_reply_error_http(gw_req *r, int http_status, ib_code code, const char *msg)
{
    gw_reply_error_extra(r, http_status, code, msg, code == IB_UNAUTHORIZED ? "WWW-Authenticate: Bearer\r\n" : NULL);
}

void gw_reply_error(gw_req *r, ib_code code, const char *fmt, ...)
{
    char msg[IB_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    reply_error_msg(r, code, msg);
}

/* A binary body ("$body_base64": the envelope carries JSON strings, which must be UTF-8), e.g. a page image, with
 * its "$content_type" and "$headers" (an object of header lines; a name or value that could break the header block
 * is dropped). */
static void reply_binary(gw_req *r, const json_t *data)
{
    const json_t *b64 = json_object_get(data, "$body_base64");
    size_t len = 0;
    unsigned char *bytes = ib_base64_decode(json_string_value(b64), json_string_length(b64), &len);
    if (!bytes) return gw_reply_error(r, IB_INTERNAL, "the service's binary reply is not valid base64");
    char extra[512] = ""; /* with the fixed headers, within send_all's header block */
    size_t used = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)json_object_get(data, "$headers"), key, v) {
        const char *val = json_string_value(v);
        if (!val || strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") != strlen(key) ||
            strpbrk(val, "\r\n"))
            continue;
        int w = snprintf(extra + used, sizeof extra - used, "%s: %s\r\n", key, val);
        if (w < 0 || (size_t)w >= sizeof extra - used) break;
        used += (size_t)w;
    }
    extra[used] = '\0';
    const char *ctype = json_string_value(json_object_get(data, "$content_type"));
    send_all(r, 200, ctype ? ctype : "application/octet-stream", (const char *)bytes, len, extra, 0);
    free(bytes);
}

void gw_reply_ib(gw_req *r, ib_reply *rep)
{
    if (rep->code != IB_OK) {
        reply_error_msg(r, rep->code, rep->msg);
        return;
    }
    /* A job that ended inside its call with no event about it (a run_sync): its reply tells the end. */
    json_t *ended = json_object_get(rep->data, "$job_ended");
    if (ended) {
        gw_events_job_ended(json_string_value(json_object_get(ended, "job_id")),
                            json_string_value(json_object_get(ended, "status")));
        json_object_del(rep->data, "$job_ended");
    }
    /* A service may answer with a body of its own ("$body", e.g. run_sync's CSV) or another success status
     * ("$http_status", e.g. 202 for a job started): the only two ways a reply leaves the JSON shape. */
    const char *raw = json_string_value(json_object_get(rep->data, "$body"));
    if (raw) {
        const char *ctype = json_string_value(json_object_get(rep->data, "$content_type"));
        send_all(r, 200, ctype ? ctype : "application/octet-stream", raw, json_string_length(json_object_get(rep->data, "$body")),
                 NULL, 0);
        return;
    }
    if (json_object_get(rep->data, "$body_base64")) return reply_binary(r, rep->data);
    int http = 200;
    json_t *st = json_object_get(rep->data, "$http_status");
    if (json_is_integer(st) && json_integer_value(st) >= 200 && json_integer_value(st) < 300) {
        http = (int)json_integer_value(st);
        json_object_del(rep->data, "$http_status");
    }
    char *text = gw_ok_body(rep);
    if (!text) return gw_reply_error(r, IB_INTERNAL, "reply could not be encoded");
    send_all(r, http, "application/json", text, strlen(text), NULL, 0);
    free(text);
}

char *gw_ok_body(ib_reply *rep)
{
    json_t *body = json_object();
    json_object_set_new(body, "status", json_string("OK"));
    if (rep->data) json_object_update(body, rep->data);
    char *text = ib_json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return text;
}

void gw_reply_text(gw_req *r, int http_status, const char *body, size_t len)
{
    send_all(r, http_status, "application/json", body, len, NULL, 0);
}

void gw_reply_empty(gw_req *r, int http_status, const char *extra_headers)
{
    char head[1024];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nContent-Length: 0\r\nX-Request-Id: %s\r\n%s\r\n",
                     http_status, mg_get_response_code_text(r->conn, http_status), r->rid,
                     extra_headers ? extra_headers : "");
    r->status = http_status;
    if (n > 0 && (size_t)n < sizeof head) mg_write(r->conn, head, (size_t)n);
}

void gw_reply_begin(gw_req *r, int http_status, const char *content_type, long long content_length,
                    const char *extra_headers)
{
    send_all(r, http_status, content_type, NULL, (size_t)content_length, extra_headers, 1);
}

void gw_reply_json_error(gw_req *r, const char *what, const json_error_t *jerr)
{
    if (json_error_code(jerr) == json_error_stack_overflow)
        gw_reply_error(r, IB_BAD_REQUEST, "%s: %s (line %d, column %d)", what, jerr->text, jerr->line,
                       jerr->column);
    else
        gw_reply_error(r, IB_BAD_REQUEST, "%s is not valid JSON: %s (line %d, column %d)", what, jerr->text,
                       jerr->line, jerr->column);
}

/* --- body ----------------------------------------------------------------------------------------------- */

char *gw_read_body(gw_req *r, size_t *len)
{
    long long declared = r->ri->content_length;
    if (declared > gw.max_body) {
        gw_reply_error(r, IB_TOO_LARGE, "request body of %lld bytes passes the limit of %lld bytes", declared,
                       gw.max_body);
        return NULL;
    }
    size_t cap = declared > 0 ? (size_t)declared : 4096, used = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        if (used == cap) {
            if ((long long)cap >= gw.max_body + 1) break;
            size_t ncap = cap * 2 > (size_t)gw.max_body + 1 ? (size_t)gw.max_body + 1 : cap * 2;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) break;
            buf = nb;
            cap = ncap;
        }
        int n = mg_read(r->conn, buf + used, cap - used);
        if (n <= 0) break;
        used += (size_t)n;
        if ((long long)used > gw.max_body) {
            free(buf);
            gw_reply_error(r, IB_TOO_LARGE, "request body passes the limit of %lld bytes", gw.max_body);
            return NULL;
        }
    }
    if (!buf) {
        gw_reply_error(r, IB_INTERNAL, "out of memory reading the request body");
        return NULL;
    }
    buf[used] = '\0';
    *len = used;
    return buf;
}

/* --- auth ----------------------------------------------------------------------------------------------- */

static int authenticate(gw_req *r)
{
    const char *h = mg_get_header(r->conn, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
        gw_reply_error(r, IB_UNAUTHORIZED, "missing 'Authorization: Bearer <token>' header");
        return -1;
    }
    const char *tok = h + 7;
    while (*tok == ' ') tok++;
    /* The same answer whether the token is unknown or the file is missing or invalid (the log says which). */
    if (!ib_token_store_check(&gw.tokens, tok, r->user, sizeof r->user, r->role, sizeof r->role)) {
        gw_reply_error(r, IB_UNAUTHORIZED, "unknown token");
        return -1;
    }
    r->who.user = r->user;
    r->who.role = r->role;
    return 0;
}

/* --- entry ---------------------------------------------------------------------------------------------- */

static void make_rid(gw_req *r)
{
    const char *given = mg_get_header(r->conn, "X-Request-Id");
    size_t n = 0;
    if (given)
        for (; given[n] && n < sizeof r->rid - 1; n++) {
            char c = given[n];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_'))
                break;
        }
    if (given && n > 0 && !given[n]) {
        memcpy(r->rid, given, n);
        r->rid[n] = '\0';
        return;
    }
    unsigned char raw[8];
    if (RAND_bytes(raw, sizeof raw) != 1) memset(raw, 0, sizeof raw);
    for (size_t i = 0; i < sizeof raw; i++) snprintf(r->rid + 2 * i, 3, "%02x", raw[i]);
}

static void close_after_reply(gw_req *r);

/* A body framed two ways (two Content-Lengths, or Content-Length beside Transfer-Encoding) is where a proxy and
 * the gateway can disagree on where the request ends, and smuggle a second one (RFC 9112 6.3): refused, and the
 * connection closed, since what follows on it cannot be trusted. civetweb alone would take one length and go
 * on. Returns 0, or -1 after replying. */
static int framing_ok(gw_req *r)
{
    int lengths = 0, encodings = 0;
    for (int i = 0; i < r->ri->num_headers; i++) {
        lengths += !strcasecmp(r->ri->http_headers[i].name, "Content-Length");
        encodings += !strcasecmp(r->ri->http_headers[i].name, "Transfer-Encoding");
    }
    const char *why = NULL;
    if (lengths > 1)
        why = "more than one Content-Length header";
    else if (lengths && encodings)
        why = "both Content-Length and Transfer-Encoding headers";
    else if (encodings > 1)
        why = "more than one Transfer-Encoding header";
    if (!why) return 0;
    char msg[160];
    snprintf(msg, sizeof msg, "the request has %s: its body's length is ambiguous", why);
    gw_reply_error_extra(r, 400, IB_BAD_REQUEST, msg, "Connection: close\r\n");
    close_after_reply(r);
    return -1;
}

static int handle(struct mg_connection *conn, void *cbdata)
{
    gw_req r = {.conn = conn, .ri = mg_get_request_info(conn), .route = -1};
    double t0 = now_ms();
    make_rid(&r);
    r.who.rid = r.rid;
    const char *uri = r.ri->local_uri ? r.ri->local_uri : "/";
    int public_route = gw_meta_public(uri);
    const char *raw = r.ri->local_uri_raw ? r.ri->local_uri_raw : uri; /* the web page decides on the raw URI */
    if (framing_ok(&r) == 0 && gw_web_is_page(raw))
        gw_web_serve(&r, raw); /* no token: the page holds no data */
    else if (r.status == 0 && (public_route || authenticate(&r) == 0))
        gw_route_request(&r, uri);
    if (!r.status) gw_reply_error(&r, IB_INTERNAL, "no reply was produced");
    double ms = now_ms() - t0;
    gw_metrics_observe(r.route, r.status, ms);
    ib_log(r.status >= 500 ? IB_LOG_WARN : IB_LOG_INFO, r.rid, "%s %s user=%s -> %d %.1fms", r.ri->request_method,
           uri, r.user[0] ? r.user : "-", r.status, ms);
    return r.status;
}

/* civetweb serves from mg_start on, but a request handler can only be set once it has returned: a request in
 * between would get civetweb's own answer (a PUT: "405 Method Not Allowed"). Until the handler is set, this
 * callback, which civetweb calls before looking for handlers, serves requests itself. */
static atomic_int handler_set;

static int begin_request(struct mg_connection *conn)
{
    return atomic_load(&handler_set) ? 0 : handle(conn, NULL);
}

static int log_civetweb(const struct mg_connection *conn, const char *message)
{
    ib_warn(NULL, "http: %s", message);
    return 1;
}

/* --- idle and greedy clients ---------------------------------------------------------------------------- */

/* civetweb (1.15) gives every accepted connection a worker thread, which then waits for the request headers,
 * so connections that send nothing, or half a header, would hold every thread. Three things keep them from
 * starving everyone else:
 *  - the listening socket has TCP_DEFER_ACCEPT: the kernel hands over a connection only once bytes arrive, so
 *    a client that connects and says nothing never reaches a thread (until the kernel gives up deferring);
 *  - civetweb's request timeout is short (IBSOL_HTTP_READ_TIMEOUT_MS): the headers must arrive within it, and a
 *    body read or a reply write that makes no progress for that long ends the request;
 *  - one client address has at most IBSOL_HTTP_MAX_PER_CLIENT connections open: one past that is answered 503
 *    and closed as it is accepted, before it reaches a thread. */

typedef struct client_slot {
    char addr[INET6_ADDRSTRLEN];
    long long conns; /* open connections from addr: in a worker thread or in civetweb's queue */
} client_slot;

static pthread_mutex_t clients_mu = PTHREAD_MUTEX_INITIALIZER;
static client_slot *clients; /* open connections are at most threads + queue, so are their addresses */
static size_t nclients;
static long long max_per_client;
static atomic_int http_listen_fd = -1;

/* Calls match(fd) for each open stream socket of this process until it returns 1; that fd, or -1. civetweb
 * keeps its sockets to itself; this is how the gateway finds one it must tune or close. */
static int find_socket(int (*match)(int fd, const void *arg), const void *arg)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int found = -1;
    struct dirent *e;
    while (found < 0 && (e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end || fd == dirfd(d)) continue;
        int type;
        socklen_t tl = sizeof type;
        if (getsockopt((int)fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_STREAM) continue;
        if (match((int)fd, arg)) found = (int)fd;
    }
    closedir(d);
    return found;
}

static int port_of(const struct sockaddr_storage *sa)
{
    if (sa->ss_family == AF_INET) return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->ss_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return -1;
}

/* The address as civetweb writes it in request_info.remote_addr (inet_ntop); "" for other families. */
static void addr_text(const struct sockaddr_storage *sa, char *out, size_t outsz)
{
    const void *a = sa->ss_family == AF_INET    ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
                    : sa->ss_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                                                : NULL;
    if (!a || !inet_ntop(sa->ss_family, a, out, (socklen_t)outsz)) out[0] = '\0';
}

static int is_listener_on(int fd, const void *arg)
{
    int on = 0;
    socklen_t ol = sizeof on;
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &ol) == 0 && on &&
           getsockname(fd, (struct sockaddr *)&sa, &sl) == 0 && port_of(&sa) == *(const int *)arg;
}

/* The connection a request_info describes: same local port, peer port and peer address. */
static int is_connection_of(int fd, const void *arg)
{
    const struct mg_request_info *ri = arg;
    struct sockaddr_storage local, peer;
    socklen_t ll = sizeof local, pl = sizeof peer;
    if (getsockname(fd, (struct sockaddr *)&local, &ll) != 0 || port_of(&local) != ri->server_port ||
        getpeername(fd, (struct sockaddr *)&peer, &pl) != 0 || port_of(&peer) != ri->remote_port)
        return 0;
    char text[INET6_ADDRSTRLEN];
    addr_text(&peer, text, sizeof text);
    return !strcmp(text, ri->remote_addr);
}

/* Counts one more connection from addr: 0, or -1 when addr has max_per_client open already. */
static int client_acquire(const char *addr)
{
    client_slot *slot = NULL, *empty = NULL;
    pthread_mutex_lock(&clients_mu);
    for (size_t i = 0; i < nclients && !slot; i++) {
        if (clients[i].conns > 0 && !strcmp(clients[i].addr, addr)) slot = &clients[i];
        if (!empty && clients[i].conns == 0) empty = &clients[i];
    }
    int over = slot && slot->conns >= max_per_client;
    if (!slot && empty) {
        slot = empty;
        snprintf(slot->addr, sizeof slot->addr, "%s", addr);
    }
    if (slot && !over) slot->conns++; /* no slot at all cannot happen: there are more slots than connections */
    pthread_mutex_unlock(&clients_mu);
    return over ? -1 : 0;
}

static void client_release(const char *addr)
{
    pthread_mutex_lock(&clients_mu);
    for (size_t i = 0; i < nclients; i++)
        if (clients[i].conns > 0 && !strcmp(clients[i].addr, addr)) {
            clients[i].conns--;
            break;
        }
    pthread_mutex_unlock(&clients_mu);
}

static void on_connection_close(const struct mg_connection *conn)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (max_per_client > 0 && ri) client_release(ri->remote_addr);
}

/* A connection past its client's cap: a 503 saying why, then closed. Nothing of it has been read, so nothing
 * it asked for happens. Never blocks: the socket's buffer takes a reply this small. */
static void refuse_connection(int fd, const char *addr)
{
    char body[300], reply[600];
    int bl = snprintf(body, sizeof body,
                      "{\"status\":\"ERROR\",\"code\":\"unavailable\",\"msg\":\"too many connections from %s: "
                      "at most %lld at once (IBSOL_HTTP_MAX_PER_CLIENT)\"}",
                      addr, max_per_client);
    int n = snprintf(reply, sizeof reply,
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                     "Connection: close\r\nRetry-After: 1\r\n\r\n%s",
                     bl, body);
    if (n > 0 && (size_t)n < sizeof reply) (void)!send(fd, reply, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
    /* What the client sent already is read and dropped first: closing with unread bytes would reset the
     * connection, and the reset can destroy the 503 before the client reads it. */
    char sink[4096];
    for (int i = 0; i < 16 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++)
        ;
    shutdown(fd, SHUT_WR);
    close(fd);
}

/* civetweb has no hook at accept time (its init_connection callback runs in the worker, with no address yet),
 * so the gateway defines accept() itself: the program's own definition comes before the C library's for every
 * library in the process, as an LD_PRELOAD shim's would. Only the HTTP listening socket is looked at; every other
 * caller (nng's listeners) gets the plain system call. civetweb ignores a failed accept and polls again. */
int accept(int fd, __SOCKADDR_ARG addr, socklen_t *__restrict len)
{
    if (fd != atomic_load(&http_listen_fd) || max_per_client <= 0)
        return (int)syscall(SYS_accept4, fd, addr.__sockaddr__, len, 0);
    struct sockaddr_storage peer;
    socklen_t pl = sizeof peer;
    int c = (int)syscall(SYS_accept4, fd, &peer, &pl, 0);
    if (c < 0) return c;
    if (addr.__sockaddr__ && len) {
        memcpy(addr.__sockaddr__, &peer, *len < pl ? *len : pl);
        *len = pl;
    }
    char text[INET6_ADDRSTRLEN];
    addr_text(&peer, text, sizeof text);
    if (client_acquire(text) == 0) return c;
    /* One line a second at most: a client hammering the cap must not flood the log. */
    static atomic_llong refused, last_logged_s;
    long long n = atomic_fetch_add(&refused, 1) + 1, now_s = (long long)time(NULL);
    if (atomic_exchange(&last_logged_s, now_s) != now_s)
        ib_warn(NULL, "http: refused a connection from %s: it has %lld open already (IBSOL_HTTP_MAX_PER_CLIENT); "
                "%lld refused since start", text, max_per_client, n);
    refuse_connection(c, text);
    errno = EAGAIN;
    return -1;
}

/* TCP_DEFER_ACCEPT on civetweb's listening socket (Linux), and the socket remembered for accept(). Without it
 * the gateway still works (idle connections then meet the read timeout and the cap), so a failure only logs. */
static void guard_listener(long long port, long long read_timeout_ms)
{
    int p = (int)port;
    int fd = find_socket(is_listener_on, &p);
    int secs = (int)((read_timeout_ms + 999) / 1000);
    if (fd < 0 || setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof secs) != 0)
        ib_warn(NULL, "http: could not set TCP_DEFER_ACCEPT on port %lld: %s", port,
                fd < 0 ? "listening socket not found" : strerror(errno));
    atomic_store(&http_listen_fd, fd);
}

/* Closes the request's connection once the reply is out, so nothing more is read from it: bytes already
 * buffered behind this request are not taken for another. civetweb has no call for that; its own error reply
 * marks the connection to be closed, and with the socket shut first it sends nothing after ours. */
static void close_after_reply(gw_req *r)
{
    int fd = find_socket(is_connection_of, r->ri);
    if (fd >= 0) shutdown(fd, SHUT_RDWR);
    else ib_error(r->rid, "http: cannot find the socket of %s:%d to close it", r->ri->remote_addr, r->ri->remote_port);
    mg_send_http_error(r->conn, r->status, "%s", "closed");
}

int gw_http_start(const gw_http_opts *o, char *err, size_t errsz)
{
    char ports[300], nthreads[16], maxreq[32], timeout[32], queue[16];
    snprintf(queue, sizeof queue, "%d", CONN_QUEUE);
    snprintf(ports, sizeof ports, "%s:%lld", o->host, o->port);
    snprintf(nthreads, sizeof nthreads, "%lld", o->threads);
    snprintf(maxreq, sizeof maxreq, "%d", 64 * 1024);
    snprintf(timeout, sizeof timeout, "%lld", o->read_timeout_ms);
    const char *options[] = {"listening_ports", ports, "num_threads", nthreads, "tcp_nodelay", "1",
                             "enable_keep_alive", "yes",
                             /* headers within the timeout; a kept-alive connection idle for as long is closed,
                              * so a client's pool does not sit on threads either */
                             "request_timeout_ms", timeout, "keep_alive_timeout_ms", timeout,
                             /* connections the kernel holds while all threads are busy */
                             "listen_backlog", "4096", "connection_queue", queue, "max_request_size", maxreq,
                             /* the files API decodes paths itself, exactly once, so "%00" can be refused */
                             "decode_url", "no", NULL};
    max_per_client = o->max_per_client;
    nclients = (size_t)o->threads + CONN_QUEUE + 1;
    clients = calloc(nclients, sizeof *clients);
    if (!clients) return ib_errf(err, errsz, "out of memory");
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.log_message = log_civetweb;
    cb.connection_close = on_connection_close;
    cb.begin_request = begin_request;
    atomic_store(&handler_set, 0);
    mg_init_library(0);
    struct mg_init_data init = {.callbacks = &cb, .user_data = NULL, .configuration_options = options};
    char text[256] = "";
    unsigned code = 0;
    struct mg_error_data error = {.code = &code, .text = text, .text_buffer_size = sizeof text};
    gw.http = mg_start2(&init, &error);
    if (!gw.http) {
        snprintf(err, errsz, "IBSOL_HTTP_PORT: cannot listen on %s: %s", ports, text[0] ? text : "unknown error");
        free(clients);
        clients = NULL;
        return -1;
    }
    guard_listener(o->port, o->read_timeout_ms);
    mg_set_request_handler(gw.http, "/", handle, NULL);
    atomic_store(&handler_set, 1);
    ib_info(NULL, "listening on http://%s", ports);
    return 0;
}

void gw_http_stop(void)
{
    atomic_store(&http_listen_fd, -1); /* first: once civetweb closes it, the number may name another socket */
    if (gw.http) mg_stop(gw.http);
    gw.http = NULL;
    free(clients);
    clients = NULL;
    nclients = 0;
}
