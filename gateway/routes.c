/* gw routes: the route table (HTTP method + path -> op), body and query handling for forwarded ops, healthz and
 * metrics. Every endpoint answers at /<path>, /api/v1/<path> and /api/v2/<path>; the files API at /api/v2/files/
 * and /files/. */
#include "gw.h"

#include "ib_conv.h"
#include "ib_jobrec.h"
#include "ib_log.h"
#include "ib_path.h"
#include "ib_settings.h"
#include "ib_utf8.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum route_kind {
    R_OP, R_STATUS, R_HEALTHZ, R_METRICS, R_FILES, R_EVENTS, R_NOT_BUILT, R_WHOAMI, R_OPENAPI, R_VERSION
} route_kind;

typedef struct route {
    const char *method;
    const char *path; /* without prefix */
    route_kind kind;
    const char *op;
} route;

static const route routes[] = {
    {"POST", "solution/create", R_OP, IB_OP_SOLUTION_CREATE},
    {"POST", "marketplace/publish", R_OP, IB_OP_MARKET_PUBLISH},
    {"POST", "marketplace/install", R_OP, IB_OP_MARKET_INSTALL},
    {"POST", "marketplace/uninstall", R_OP, IB_OP_MARKET_UNINSTALL},
    {"POST", "marketplace/unpublish", R_OP, IB_OP_MARKET_UNPUBLISH},
    {"GET", "marketplace/list", R_OP, IB_OP_MARKET_LIST},
    {"GET", "marketplace/info", R_OP, IB_OP_MARKET_INFO},
    {"POST", "solution/run", R_OP, IB_OP_SOLUTION_RUN},
    {"POST", "solution/run_sync", R_OP, IB_OP_SOLUTION_RUN_SYNC},
    {"GET", "jobs/status", R_STATUS, IB_OP_JOBS_STATUS}, /* read here from the job record: serve_status */
    {"GET", "jobs/results", R_OP, IB_OP_JOBS_RESULTS},
    {"POST", "jobs/cancel", R_OP, IB_OP_JOBS_CANCEL},
    {"GET", "jobs/list", R_OP, IB_OP_JOBS_LIST},
    {"GET", "jobs/events", R_EVENTS, "jobs/events"},
    {"POST", "files/copy", R_OP, IB_OP_FILES_COPY},
    {"POST", "files/extract", R_OP, IB_OP_FILES_EXTRACT},
    {"POST", "flow_binary/compile", R_OP, IB_OP_FLOW_COMPILE}, /* + "/<solution path>", see forward_compile */
    {"POST", "solutions/deployed", R_OP, IB_OP_SOLUTION_DEPLOY},    /* the original's /api/v2/solutions/deployed */
    {"GET", "solutions/deployed", R_OP, IB_OP_SOLUTION_DEPLOYED},
    {"POST", "flow/run_binary_async", R_OP, IB_OP_FLOW_RUN_BINARY},
    {"POST", "flow_binary/results", R_OP, IB_OP_FLOW_RESULTS},
    {"GET", "pages", R_OP, IB_OP_PAGES_RENDER},
    {"GET", "whoami", R_WHOAMI, NULL},
    {"GET", "openapi.json", R_OPENAPI, NULL}, /* meta.c: no token, see gw_meta_public */
    {"GET", "version", R_VERSION, NULL},
    {"GET", "healthz", R_HEALTHZ, NULL},
    {"GET", "metrics", R_METRICS, NULL},
    {"*", "files", R_FILES, NULL}, /* metrics slot for the files API */
};
#define NROUTES (int)(sizeof routes / sizeof routes[0])
#define ROUTE_FILES (NROUTES - 1)
#define ROUTE_OTHER NROUTES

/* --- metrics -------------------------------------------------------------------------------------------- */

static const double buckets_ms[] = {1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000};
#define NBUCKETS (int)(sizeof buckets_ms / sizeof buckets_ms[0])
static const int statuses[] = {200, 201, 202, 204, 206, 400, 401, 403, 404, 405, 409, 411, 413, 416,
                               500, 501, 503, 504, 507};
#define NSTATUS (int)(sizeof statuses / sizeof statuses[0])

static struct {
    atomic_ullong count[NSTATUS + 1];
    atomic_ullong bucket[NBUCKETS + 1];
    atomic_ullong sum_us;
} metrics[NROUTES + 1];

int gw_route_count(void)
{
    return NROUTES;
}

int gw_route_at(int i, const char **method, const char **path, const char **op)
{
    if (i < 0 || i >= NROUTES) return 0;
    *method = routes[i].method;
    *path = routes[i].path;
    *op = routes[i].kind == R_OP ? routes[i].op : NULL;
    return 1;
}

void gw_metrics_observe(int route, int http_status, double ms)
{
    int rt = route < 0 ? ROUTE_OTHER : route;
    int s = 0;
    while (s < NSTATUS && statuses[s] != http_status) s++;
    atomic_fetch_add(&metrics[rt].count[s], 1);
    int b = 0;
    while (b < NBUCKETS && ms > buckets_ms[b]) b++;
    atomic_fetch_add(&metrics[rt].bucket[b], 1);
    atomic_fetch_add(&metrics[rt].sum_us, (unsigned long long)(ms * 1000));
}

static void serve_metrics(gw_req *r)
{
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    if (!out) return gw_reply_error(r, IB_INTERNAL, "out of memory");
#define EMIT(...) (len += (size_t)snprintf(out + len, len < cap ? cap - len : 0, __VA_ARGS__))
    EMIT("# HELP ibsol_http_requests_total HTTP requests by route and status.\n"
         "# TYPE ibsol_http_requests_total counter\n");
    for (int rt = 0; rt <= NROUTES; rt++)
        for (int s = 0; s <= NSTATUS; s++) {
            unsigned long long n = atomic_load(&metrics[rt].count[s]);
            if (!n) continue;
            const char *name = rt < NROUTES ? routes[rt].path : "other";
            if (s < NSTATUS)
                EMIT("ibsol_http_requests_total{route=\"%s\",code=\"%d\"} %llu\n", name, statuses[s], n);
            else
                EMIT("ibsol_http_requests_total{route=\"%s\",code=\"other\"} %llu\n", name, n);
        }
    EMIT("# HELP ibsol_http_request_duration_ms HTTP request latency.\n"
         "# TYPE ibsol_http_request_duration_ms histogram\n");
    for (int rt = 0; rt <= NROUTES; rt++) {
        unsigned long long total = 0;
        for (int b = 0; b <= NBUCKETS; b++) total += atomic_load(&metrics[rt].bucket[b]);
        if (!total) continue;
        const char *name = rt < NROUTES ? routes[rt].path : "other";
        unsigned long long cum = 0;
        for (int b = 0; b < NBUCKETS; b++) {
            cum += atomic_load(&metrics[rt].bucket[b]);
            EMIT("ibsol_http_request_duration_ms_bucket{route=\"%s\",le=\"%g\"} %llu\n", name, buckets_ms[b], cum);
        }
        EMIT("ibsol_http_request_duration_ms_bucket{route=\"%s\",le=\"+Inf\"} %llu\n", name, total);
        EMIT("ibsol_http_request_duration_ms_sum{route=\"%s\"} %.3f\n", name,
             atomic_load(&metrics[rt].sum_us) / 1000.0);
        EMIT("ibsol_http_request_duration_ms_count{route=\"%s\"} %llu\n", name, total);
    }
#undef EMIT
    if (len >= cap) len = cap - 1; /* bounded: routes x statuses fit easily */
    len += gw_events_metrics(out + len, cap - len);
    r->route = NROUTES - 2;
    gw_reply_begin(r, 200, "text/plain; version=0.0.4", (long long)len, NULL);
    mg_write(r->conn, out, len);
    free(out);
}

/* --- healthz -------------------------------------------------------------------------------------------- */

static void serve_healthz(gw_req *r)
{
    json_t *services = json_object();
    char missing[256] = "";
    for (int s = 0; s < IB_SVC_COUNT; s++) {
        ib_reply rep;
        ib_reply_init(&rep);
        ib_clnt_ping(&gw.svc[s], &r->who, 1000, &rep);
        json_object_set_new(services, ib_service_name((ib_service)s), json_string(rep.code == IB_OK ? "up" : "down"));
        if (rep.code != IB_OK)
            snprintf(missing + strlen(missing), sizeof missing - strlen(missing), "%s%s", missing[0] ? ", " : "",
                     ib_service_name((ib_service)s));
        ib_reply_clear(&rep);
    }
    json_t *body = json_object();
    json_object_set_new(body, "status", json_string(missing[0] ? "ERROR" : "OK"));
    json_object_set_new(body, "services", services);
    json_object_set_new(body, "runners", json_integer(gw_events_runners_attached()));
    if (missing[0]) {
        char msg[300];
        snprintf(msg, sizeof msg, "not reachable: %s", missing);
        json_object_set_new(body, "code", json_string("unavailable"));
        json_object_set_new(body, "msg", json_string(msg));
    }
    gw_reply_json(r, missing[0] ? 503 : 200, body);
}

/* --- forwarded ops -------------------------------------------------------------------------------------- */

/* GET ops take their arguments from the query string, named by the op's field table. */
static json_t *query_args(gw_req *r, const ib_op_spec *spec)
{
    json_t *args = json_object();
    const char *q = r->ri->query_string;
    if (!q) return args;
    char value[4096];
    for (const ib_field_spec *f = spec->fields; f->name; f++) {
        int n = mg_get_var(q, strlen(q), f->name, value, sizeof value);
        if (n == -1) continue;
        /* Decoded values are checked here, where their length is known: a NUL would cut a name short later
         * ("a%00b" would be looked up as "a"), and a value that is not UTF-8 cannot become a JSON string. */
        const char *why = n < 0                        ? "is longer than 4095 bytes"
                          : memchr(value, '\0', (size_t)n) ? "holds a NUL byte (%00)"
                          : !ib_utf8_valid(value, (size_t)n) ? "is not valid UTF-8"
                                                            : NULL;
        if (why) {
            json_decref(args);
            gw_reply_error(r, IB_BAD_REQUEST, "'%s' in the query string %s", f->name, why);
            return NULL;
        }
        json_object_set_new(args, f->name, json_stringn(value, (size_t)n));
    }
    return args;
}

static json_t *body_args(gw_req *r)
{
    size_t len;
    char *body = gw_read_body(r, &len);
    if (!body) return NULL;
    json_error_t jerr;
    json_t *args = ib_json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    free(body);
    if (!args) {
        gw_reply_json_error(r, "request body", &jerr);
        return NULL;
    }
    if (!json_is_object(args)) {
        json_decref(args);
        gw_reply_error(r, IB_BAD_REQUEST, "request body must be a JSON object");
        return NULL;
    }
    return args;
}

int gw_jobs_fd(void)
{
    int fd = atomic_load(&gw.jobs_fd);
    if (fd >= 0) return fd;
    char path[IB_PATH_MAX];
    fd = open(ib_data_path("jobs", path, sizeof path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int none = -1;
    if (!atomic_compare_exchange_strong(&gw.jobs_fd, &none, fd)) { /* another thread opened it meanwhile */
        close(fd);
        fd = none;
    }
    return fd;
}

/* Checks args (taken) against the op's field table and sends them to the op's service. */
static void forward_args(gw_req *r, const route *rt, json_t *args)
{
    const ib_op_spec *spec = ib_op_find(rt->op);
    ib_reply rep;
    ib_reply_init(&rep);
    char *key = NULL;
    gw_stamp seen;
    if (ib_args_check(spec, args, &rep) != IB_OK) goto reply;
    if (spec->cached_by && (key = gw_cache_key(spec->op, args))) {
        gw_stamp_read(spec->cached_by, &seen);
        size_t len;
        char *hit = gw_cache_get(key, &seen, &len);
        if (hit) {
            gw_reply_text(r, 200, hit, len);
            free(hit);
            goto out;
        }
    }
    ib_client_call(&gw.svc[spec->service], rt->op, &r->who, args, 0, &rep);
    if (key && rep.code == IB_OK) {
        char *text = gw_ok_body(&rep);
        if (text) {
            gw_cache_put(key, &seen, text, strlen(text));
            gw_reply_text(r, 200, text, strlen(text));
            free(text);
            goto out;
        }
    }
reply:
    gw_reply_ib(r, &rep);
out:
    free(key);
    json_decref(args);
    ib_reply_clear(&rep);
}

/* jobs/status, the call clients poll, is answered from the job record with the runner's own code: no runner is
 * interrupted for it, and the read costs a fraction of the round trip (ib_jobrec.h). */
static void serve_status(gw_req *r, const route *rt)
{
    const ib_op_spec *spec = ib_op_find(rt->op);
    json_t *args = query_args(r, spec);
    if (!args) return;
    ib_reply rep;
    ib_reply_init(&rep);
    if (ib_args_check(spec, args, &rep) == IB_OK) ib_job_status_op(gw_jobs_fd(), args, &r->who, &rep);
    gw_reply_ib(r, &rep);
    json_decref(args);
    ib_reply_clear(&rep);
}

static void forward(gw_req *r, const route *rt)
{
    json_t *args = !strcmp(rt->method, "GET") ? query_args(r, ib_op_find(rt->op)) : body_args(r);
    if (args) forward_args(r, rt, args);
}

void gw_files_op(gw_req *r, const char *which, json_t *args)
{
    char path[32];
    snprintf(path, sizeof path, "files/%s", which);
    for (int i = 0; i < NROUTES - 1; i++)
        if (routes[i].kind == R_OP && !strcmp(routes[i].path, path)) {
            r->route = i;
            return forward_args(r, &routes[i], args);
        }
    json_decref(args);
    gw_reply_error(r, IB_INTERNAL, "no route for %s", path); /* only reached if the table loses files/copy */
}

/* POST flow_binary/compile/<solution path>: the original product's clients put the solution path in the URL; it
 * becomes the op's solution_path field. It is taken from the raw URI and decoded once, as the files API does:
 * the routed URI has been through civetweb's dot-segment cleaning, which would turn "a/../b" into "b" before
 * the path rules could refuse it. A NUL byte survives decoding and is refused by the packager's path check. */
static void forward_compile(gw_req *r, const char *routed)
{
    static const char *const prefixes[] = {"/api/v1/flow_binary/compile/", "/flow_binary/compile/"};
    const char *raw = r->ri->local_uri_raw, *rest = NULL;
    for (size_t i = 0; raw && !rest && i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (!strncmp(raw, prefixes[i], strlen(prefixes[i]))) rest = raw + strlen(prefixes[i]);
    if (!rest) rest = routed;
    char sol[IB_PATH_MAX];
    int n = mg_url_decode(rest, (int)strlen(rest), sol, (int)sizeof sol, 0);
    if (n < 0)
        return gw_reply_error(r, IB_BAD_REQUEST, "solution_path: path is longer than %d bytes", IB_PATH_MAX - 1);
    json_t *args = body_args(r);
    if (!args) return;
    json_object_set_new(args, "solution_path", json_stringn(sol, (size_t)n));
    forward_args(r, &routes[r->route], args);
}

/* --- dispatch ------------------------------------------------------------------------------------------- */

static int strip_prefix(const char **path, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(*path, prefix, n) != 0) return 0;
    *path += n;
    return 1;
}

int gw_route_request(gw_req *r, const char *uri)
{
    const char *method = r->ri->request_method;
    const char *path = uri;
    int files_only = strip_prefix(&path, "/api/v2/files/");
    /* /api/v2/ too: where the original product has its newer endpoints (solutions/deployed) */
    if (!files_only && !strip_prefix(&path, "/api/v1/") && !strip_prefix(&path, "/api/v2/")) strip_prefix(&path, "/");
    if (!files_only) {
        const char *sol = path;
        if (strip_prefix(&sol, "flow_binary/compile/")) {
            for (int i = 0; i < NROUTES - 1; i++)
                if (!strcmp(routes[i].path, "flow_binary/compile")) r->route = i;
            if (strcmp(method, "POST") == 0) {
                forward_compile(r, sol);
            } else {
                char msg[128];
                snprintf(msg, sizeof msg, "method %.16s is not allowed on /flow_binary/compile/", method);
                gw_reply_error_http(r, 405, IB_BAD_REQUEST, msg);
            }
            return r->status;
        }
        int path_known = 0;
        for (int i = 0; i < NROUTES - 1; i++) {
            if (strcmp(routes[i].path, path) != 0) continue;
            path_known = 1;
            if (strcmp(routes[i].method, method) != 0 &&
                !(routes[i].kind == R_HEALTHZ && !strcmp(method, "HEAD")))
                continue;
            r->route = i;
            switch (routes[i].kind) {
            case R_OP: forward(r, &routes[i]); break;
            case R_STATUS: serve_status(r, &routes[i]); break;
            case R_HEALTHZ: serve_healthz(r); break;
            case R_METRICS: serve_metrics(r); break;
            case R_EVENTS: gw_events_serve(r); break;
            case R_WHOAMI: gw_web_whoami(r); break;
            case R_OPENAPI: gw_meta_openapi(r); break;
            case R_VERSION: gw_meta_version(r); break;
            case R_NOT_BUILT: gw_reply_error(r, IB_NOT_IMPLEMENTED, "'%s' is not implemented yet", routes[i].op); break;
            case R_FILES: break;
            }
            return r->status;
        }
        if (path_known) {
            char msg[512];
            snprintf(msg, sizeof msg, "method %s is not allowed on /%s", method, path);
            gw_reply_error_http(r, 405, IB_BAD_REQUEST, msg);
            return r->status;
        }
        if (strip_prefix(&path, "drives/")) { /* the original product's v1 drives API (files.c) */
            r->route = ROUTE_FILES;
            gw_drives(r, path);
            return r->status;
        }
        if (!strip_prefix(&path, "files/")) {
            gw_reply_error(r, IB_NOT_FOUND, "no such endpoint: %s %s", method, uri);
            return r->status;
        }
    }
    r->route = ROUTE_FILES;
    gw_files(r, path);
    return r->status;
}
