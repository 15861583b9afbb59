/* gw http: civetweb set-up and the plumbing every request goes through: request id, bearer auth (the tokens
 * file is re-read when it changes, so adding a token needs no restart), bounded body reading, and replies. */
#include "gw.h"

#include "ib_log.h"

#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

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
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text) text = strdup("{\"status\":\"ERROR\",\"code\":\"internal\",\"msg\":\"reply could not be encoded\"}");
    send_all(r, http_status, "application/json", text, strlen(text), NULL, 0);
    free(text);
}

static void reply_error_msg(gw_req *r, ib_code code, const char *msg)
{
    gw_reply_error_http(r, ib_code_http(code), code, msg);
}

void gw_reply_error_http(gw_req *r, int http_status, ib_code code, const char *msg)
{
    json_t *body = json_pack("{s:s, s:s, s:s}", "status", "ERROR", "code", ib_code_word(code), "msg", msg);
    const char *extra = code == IB_UNAUTHORIZED ? "WWW-Authenticate: Bearer\r\n" : NULL;
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text) send_all(r, http_status, "application/json", text, strlen(text), extra, 0);
    free(text);
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

void gw_reply_ib(gw_req *r, ib_reply *rep)
{
    if (rep->code != IB_OK) {
        reply_error_msg(r, rep->code, rep->msg);
        return;
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
    char *text = json_dumps(body, JSON_COMPACT);
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

static int handle(struct mg_connection *conn, void *cbdata)
{
    gw_req r = {.conn = conn, .ri = mg_get_request_info(conn), .route = -1};
    double t0 = now_ms();
    make_rid(&r);
    r.who.rid = r.rid;
    const char *uri = r.ri->local_uri ? r.ri->local_uri : "/";
    int public_route = !strcmp(uri, "/healthz") || !strcmp(uri, "/api/v1/healthz");
    if (public_route || authenticate(&r) == 0) gw_route_request(&r, uri);
    if (!r.status) gw_reply_error(&r, IB_INTERNAL, "no reply was produced");
    double ms = now_ms() - t0;
    gw_metrics_observe(r.route, r.status, ms);
    ib_log(r.status >= 500 ? IB_LOG_WARN : IB_LOG_INFO, r.rid, "%s %s user=%s -> %d %.1fms", r.ri->request_method,
           uri, r.user[0] ? r.user : "-", r.status, ms);
    return r.status;
}

static int log_civetweb(const struct mg_connection *conn, const char *message)
{
    ib_warn(NULL, "http: %s", message);
    return 1;
}

int gw_http_start(const char *host, long long port, long long threads, char *err, size_t errsz)
{
    char ports[300], nthreads[16], maxreq[32];
    snprintf(ports, sizeof ports, "%s:%lld", host, port);
    snprintf(nthreads, sizeof nthreads, "%lld", threads);
    snprintf(maxreq, sizeof maxreq, "%d", 64 * 1024);
    const char *options[] = {"listening_ports", ports,      "num_threads",           nthreads,
                             "tcp_nodelay",     "1",        "enable_keep_alive",     "yes",
                             "keep_alive_timeout_ms", "30000", "request_timeout_ms", "600000",
                             "max_request_size", maxreq,
                             /* the files API decodes paths itself, exactly once, so "%00" can be refused */
                             "decode_url", "no", NULL};
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.log_message = log_civetweb;
    mg_init_library(0);
    struct mg_init_data init = {.callbacks = &cb, .user_data = NULL, .configuration_options = options};
    char text[256] = "";
    unsigned code = 0;
    struct mg_error_data error = {.code = &code, .text = text, .text_buffer_size = sizeof text};
    gw.http = mg_start2(&init, &error);
    if (!gw.http) {
        snprintf(err, errsz, "IBSOL_HTTP_PORT: cannot listen on %s: %s", ports, text[0] ? text : "unknown error");
        return -1;
    }
    mg_set_request_handler(gw.http, "/", handle, NULL);
    ib_info(NULL, "listening on http://%s", ports);
    return 0;
}
