/* gw: the gateway's internals shared by its files: the per-request context, replies (every reply goes through
 * here, so metrics and request ids are uniform), the service clients and the drive. The gateway knows no business
 * rules: it authenticates, validates bodies against ib_ops field tables, forwards, and maps codes to statuses.
 * Two kinds of reads it serves from the shared data root itself: the drive's files, and jobs/status from the
 * runners' job records (common/ib_jobrec, the code the runner answers it with). */
#ifndef GW_H
#define GW_H

#include "ib_client.h"
#include "ib_err.h"
#include "ib_tokens.h"

#include <civetweb.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

typedef struct gw_state {
    ib_client svc[IB_SVC_COUNT];
    int drive_fd;             /* O_PATH fd of <data>/drive */
    atomic_int jobs_fd;       /* <data>/jobs once a runner has made it (gw_jobs_fd), else -1 */
    long long max_body;       /* bytes */
    long long max_upload;     /* bytes: largest file a PUT or PATCH may leave on the drive */
    char *tokens_path;
    ib_token_store tokens;    /* follows the file; fails closed */
    struct mg_context *http;
    long long event_streams;       /* jobs/events streams open at once (each holds an HTTP thread) */
    long long events_max_s;        /* longest jobs/events stream */
    long long events_keepalive_ms; /* comment line sent on a quiet stream */
} gw_state;

extern gw_state gw;

typedef struct gw_req {
    struct mg_connection *conn;
    const struct mg_request_info *ri;
    ib_caller who;
    char rid[40];
    char user[256];
    char role[16];
    int route;  /* metrics slot */
    int status; /* HTTP status sent */
} gw_req;

/* civetweb and the connection guard (http.c): how long headers may take and how long a body read or a reply
 * write may make no progress (read_timeout_ms), and how many worker threads one client address may hold at once
 * (max_per_client, 0 = no cap). stop ends civetweb (waiting for every request in flight) and frees the rest. */
typedef struct gw_http_opts {
    const char *host;
    long long port, threads, read_timeout_ms, max_per_client;
} gw_http_opts;
int gw_http_start(const gw_http_opts *o, char *err, size_t errsz);
void gw_http_stop(void);

/* Replies. Each sends headers and body with Content-Length in one write and records the status. */
void gw_reply_json(gw_req *r, int http_status, json_t *body); /* body is stolen */
void gw_reply_error(gw_req *r, ib_code code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void gw_reply_ib(gw_req *r, ib_reply *rep); /* {"status":"OK", ...data} or the error */
/* An error reply with an HTTP status other than the code's own (405, 416, ...). */
void gw_reply_error_http(gw_req *r, int http_status, ib_code code, const char *msg);
/* The same with extra header lines ("Name: value\r\n" each), e.g. a 416's Content-Range. */
void gw_reply_error_extra(gw_req *r, int http_status, ib_code code, const char *msg, const char *extra);
/* Headers only (204, HEAD answers): extra_headers is "" or lines each ending in "\r\n". */
void gw_reply_empty(gw_req *r, int http_status, const char *extra_headers);
/* Sends a header block for a body the caller then writes itself with mg_write (file downloads). */
void gw_reply_begin(gw_req *r, int http_status, const char *content_type, long long content_length,
                    const char *extra_headers);

/* The 400 for JSON text that jansson or the depth check (ib_json_loadb) refused: "<what> is not valid JSON:
 * ..." or "<what>: JSON nested deeper than N levels ...", with line and column. */
void gw_reply_json_error(gw_req *r, const char *what, const json_error_t *jerr);

/* Reads the whole body (at most gw.max_body bytes) into a malloc'd buffer. Returns NULL after replying 413 or
 * 400 itself. */
char *gw_read_body(gw_req *r, size_t *len);

/* The folder of job records (<data>/jobs), opened at its first use since the runners create it; -1 while it
 * does not exist (every job id is then unknown). */
int gw_jobs_fd(void);

/* The files API (files.c): `path` is the URL-decoded drive path after the /files/ prefix. */
void gw_files(gw_req *r, const char *path);
/* The v1 drives API (files.c): GET/HEAD as the files API, POST <path>/copy {new_full_path} a copy job. */
void gw_drives(gw_req *r, const char *path);
/* POST /api/v2/files/copy and /extract, recognised by files.c: args (taken) go to the files/<which> op. */
void gw_files_op(gw_req *r, const char *which, json_t *args);

/* The web page's static files (web.c): open finds the folder (the setting, else the installed or source one);
 * is_page tells whether a raw URI is the page's ("/" or "/web/..."), served with no token by serve. */
int gw_web_open(const char *setting, char *err, size_t errsz);
void gw_web_close(void);
int gw_web_is_page(const char *raw_uri);
void gw_web_serve(gw_req *r, const char *raw_uri);
/* GET whoami: the caller's user and role, so the page knows its drive folder and whether to offer admin calls. */
void gw_web_whoami(gw_req *r);

/* Reply cache (cache.c). */
typedef struct gw_stamp {
    unsigned long long dev, ino;
    long long size, mtime_ns;
    int exists;
} gw_stamp;
void gw_stamp_read(const char *stamp, gw_stamp *out);
char *gw_cache_key(const char *op, const json_t *args); /* malloc'd */
/* A copy of the cached body (malloc'd) when it is still valid for stamp `now`; NULL otherwise. */
char *gw_cache_get(const char *key, const gw_stamp *now, size_t *len);
void gw_cache_put(const char *key, const gw_stamp *seen, const char *body, size_t len);
void gw_cache_clear(void);
/* The JSON text of a successful reply: {"status":"OK", ...data} (malloc'd). */
char *gw_ok_body(ib_reply *rep);
/* Sends a ready JSON body with a status. */
void gw_reply_text(gw_req *r, int http_status, const char *body, size_t len);

/* Routes and metrics (routes.c). */
int gw_route_request(gw_req *r, const char *path);
void gw_metrics_observe(int route, int http_status, double ms);
int gw_route_count(void);
/* The route table's entry i (0 past the end): method ("*" for the files API's metrics slot), path without prefix,
 * and the ib_ops op it forwards to (NULL for the gateway's own routes). */
int gw_route_at(int i, const char **method, const char **path, const char **op);

/* What the gateway says about itself (meta.c): GET openapi.json and version, whether a URI needs no token
 * (healthz, version, openapi.json under any prefix), and `--print-routes` (the daemon skeleton's alt_main). */
void gw_meta_openapi(gw_req *r);
void gw_meta_version(gw_req *r);
int gw_meta_public(const char *uri);
int gw_meta_main(int argc, char **argv);

/* Job progress and runner heartbeats from the runners' PUB sockets (events.c). start listens on
 * ib_set.events_url (-1 with a message naming IBSOL_EVENTS_URL); stop wakes every open jobs/events stream and
 * must run before mg_stop, which waits for them. */
int gw_events_start(char *err, size_t errsz);
void gw_events_stop(void);
/* GET jobs/events?job_id=J: text/event-stream of the job's status, then its progress until it ends. */
void gw_events_serve(gw_req *r);
/* Appends the runner and job gauges in Prometheus text to out (whole lines, NUL-terminated); returns the bytes
 * written. */
size_t gw_events_metrics(char *out, size_t cap);
/* A job's end told by a reply instead of an event (its final status word): counted once like a final event. */
void gw_events_job_ended(const char *job_id, const char *status);
int gw_events_runners_attached(void);

#endif
