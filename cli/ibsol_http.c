/* ibsol HTTP: libcurl calls to the gateway, with the profile's token, and one mapping from what went wrong to
 * a one-line message and an exit code. */
#include "ibsol.h"

#include "ib_version.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLY_MAX (512u << 20) /* JSON answers larger than this are refused (results of huge jobs: use files) */
#define CONNECT_TIMEOUT_MS 10000L

static CURL *curl;

void http_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    curl = curl_easy_init();
}

void http_cleanup(void)
{
    if (curl) curl_easy_cleanup(curl);
    curl = NULL;
    curl_global_cleanup();
}

char *http_escape(const char *s)
{
    char *e = curl_easy_escape(curl, s, 0);
    char *out = e ? strdup(e) : NULL;
    curl_free(e);
    return out;
}

char *http_drive_url(const char *drive_path)
{
    while (*drive_path == '/') drive_path++;
    size_t cap = strlen(drive_path) * 3 + 1, n = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)drive_path; *p; p++) {
        /* RFC 3986 unreserved characters and the segment separator stay; everything else is encoded */
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
            *p == '.' || *p == '_' || *p == '~' || *p == '/') {
            out[n++] = (char)*p;
        } else {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    out[n] = '\0';
    return out;
}

typedef struct sink_buf {
    char *data;
    size_t len, cap;
    FILE *file;
    int too_large, write_failed;
} sink_buf;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    sink_buf *b = userdata;
    size_t n = size * nmemb;
    if (cli_interrupted) return 0;
    if (b->file) {
        if (fwrite(ptr, 1, n, b->file) != n) {
            b->write_failed = errno ? errno : EIO;
            return 0;
        }
        return n;
    }
    if (b->len + n > REPLY_MAX) {
        b->too_large = 1;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->too_large = 1;
            return 0;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

typedef struct upload_src {
    const char *data;
    size_t len, off;
} upload_src;

static size_t on_read(char *buf, size_t size, size_t nitems, void *userdata)
{
    upload_src *u = userdata;
    if (cli_interrupted) return CURL_READFUNC_ABORT;
    size_t n = size * nitems;
    if (n > u->len - u->off) n = u->len - u->off;
    memcpy(buf, u->data + u->off, n);
    u->off += n;
    return n;
}

/* libcurl rewinds the body when it must send it again (a reused connection the server had closed). */
static int on_seek(void *userdata, curl_off_t offset, int origin)
{
    upload_src *u = userdata;
    if (origin != SEEK_SET || offset < 0 || (size_t)offset > u->len) return CURL_SEEKFUNC_CANTSEEK;
    u->off = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

static int on_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    ui_progress *p = clientp;
    if (cli_interrupted) return 1;
    if (p && p->unit[0] == 'B') {
        if (p->total == 0 && dltotal > 0) p->total = (uint64_t)dltotal;
        uint64_t base = p->call_base;
        ui_progress_update(p, base + (uint64_t)(ultotal > 0 ? ulnow : dlnow));
    }
    (void)dltotal;
    return 0;
}

void http_reply_free(http_reply *rep)
{
    free(rep->body);
    rep->body = NULL;
}

/* The message of an error answer: the JSON's msg and code when there are, else the body's first line. */
static int report_http_error(long status, const char *body, const char *method, const char *path)
{
    json_t *j = body ? json_loads(body, 0, NULL) : NULL;
    const char *msg = json_string_value(json_object_get(j, "msg"));
    const char *code = json_string_value(json_object_get(j, "code"));
    char first[300] = "";
    if (!msg && body) {
        snprintf(first, sizeof first, "%.*s", (int)strcspn(body, "\r\n"), body);
        msg = first[0] ? first : NULL;
    }
    int rc;
    if (status == 401) {
        cli_err("the server at %s refused the token (HTTP 401%s%s): %s; run 'ibsol login %s --token TOKEN'",
                cli.url, code ? " " : "", code ? code : "", msg ? msg : "unauthorized", cli.url);
        rc = EX_AUTH;
    } else {
        cli_err("%s (HTTP %ld%s%s, %s /%s)", msg ? msg : "the server gave no message", status, code ? " " : "",
                code ? code : "", method, path[0] == '/' ? path + 1 : path);
        rc = status == 403 ? EX_AUTH : status == 404 ? EX_NOT_FOUND : EX_SERVER;
    }
    json_decref(j);
    return rc;
}

static int report_curl_error(CURLcode cc, const char *errbuf, const sink_buf *b)
{
    if (cc == CURLE_ABORTED_BY_CALLBACK || cli_interrupted) return EX_INTERRUPTED;
    if (b->write_failed) {
        cli_err("cannot write the download: %s", strerror(b->write_failed));
        return EX_LOCAL;
    }
    if (b->too_large) {
        cli_err("the server's answer passes %u MiB; fetch it with 'ibsol files get' instead", REPLY_MAX >> 20);
        return EX_SERVER;
    }
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
    switch (cc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
        /* libcurl's own wording, without the timings of its error buffer: the same line every time */
        cli_err("cannot reach the server at %s: %s", cli.url, curl_easy_strerror(cc));
        return EX_UNREACHABLE;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        cli_err("the server URL '%s' is not usable: %s", cli.url, why);
        return EX_USAGE;
    default: cli_err("request to %s failed: %s", cli.url, why); return EX_UNREACHABLE;
    }
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *userdata)
{
    http_reply *rep = userdata;
    size_t n = size * nitems;
    if (n > 13 && strncasecmp(buf, "content-type:", 13) == 0) {
        const char *v = buf + 13;
        while (*v == ' ') v++;
        snprintf(rep->ctype, sizeof rep->ctype, "%.*s", (int)strcspn(v, "\r\n"), v);
    } else if (n > 15 && strncasecmp(buf, "content-length:", 15) == 0) {
        rep->length = strtoll(buf + 15, NULL, 10);
    } else if (n > 13 && strncasecmp(buf, "ib-node-type:", 13) == 0) {
        const char *v = buf + 13;
        while (*v == ' ') v++;
        snprintf(rep->node_type, sizeof rep->node_type, "%.*s", (int)strcspn(v, "\r\n"), v);
    }
    return n;
}

/* Sets up the common parts of a request. */
static struct curl_slist *prepare(const char *method, const char *path, const char *const *headers, char *errbuf)
{
    curl_easy_reset(curl);
    size_t ulen = strlen(cli.url) + strlen(path) + 2;
    char *url = malloc(ulen);
    if (!url) return NULL;
    snprintf(url, ulen, "%s%s%s", cli.url, path[0] == '/' ? "" : "/", path);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    free(url);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "ibsol/" IB_VERSION);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    /* an idle stream (jobs/events) sends keep-alive comments; a transfer that makes no progress for a minute
     * is a dead server */
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
    if (strcmp(method, "GET") == 0)
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    else if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    else
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    struct curl_slist *h = NULL;
    char auth[1100];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", cli.token);
    h = curl_slist_append(h, auth);
    h = curl_slist_append(h, "Expect:");
    for (size_t i = 0; headers && headers[i]; i++) h = curl_slist_append(h, headers[i]);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    return h;
}

int api_raw(const char *method, const char *path, const void *body, size_t len, const char *const *headers,
            FILE *sink, ui_progress *prog, http_reply *rep)
{
    memset(rep, 0, sizeof *rep);
    rep->length = -1;
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *h = prepare(method, path, headers, errbuf);
    if (!h) {
        cli_err("out of memory");
        return EX_LOCAL;
    }
    sink_buf b = {.file = sink};
    upload_src src = {body, len, 0};
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, rep);
    if (body) {
        curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(curl, CURLOPT_READDATA, &src);
        curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(curl, CURLOPT_SEEKDATA, &src);
        curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
        if (cli.limit_rate) curl_easy_setopt(curl, CURLOPT_MAX_SEND_SPEED_LARGE, (curl_off_t)cli.limit_rate);
        /* CURLOPT_UPLOAD makes it a PUT; keep the method asked for */
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    }
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, prog);
    CURLcode cc = curl_easy_perform(curl);
    curl_slist_free_all(h);
    int rc = EX_OK;
    if (cc != CURLE_OK) {
        if (cli.http_quiet)
            rc = cc == CURLE_ABORTED_BY_CALLBACK || cli_interrupted ? EX_INTERRUPTED : EX_UNREACHABLE;
        else
            rc = report_curl_error(cc, errbuf, &b);
        free(b.data);
        return rc;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &rep->status);
    rep->body = b.data;
    rep->len = b.len;
    if (rep->status >= 400) {
        if (cli.http_quiet)
            rc = rep->status == 404 ? EX_NOT_FOUND : rep->status == 401 || rep->status == 403 ? EX_AUTH : EX_SERVER;
        else
            rc = report_http_error(rep->status, rep->body, method, path);
        http_reply_free(rep);
    }
    return rc;
}

int api_json(const char *method, const char *path, const json_t *body, json_t **out)
{
    *out = NULL;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (body && !text) {
        cli_err("out of memory");
        return EX_LOCAL;
    }
    static const char *const json_headers[] = {"Content-Type: application/json", NULL};
    http_reply rep;
    int rc = api_raw(method, path, text, text ? strlen(text) : 0, body ? json_headers : NULL, NULL, NULL, &rep);
    free(text);
    if (rc != EX_OK) return rc;
    if (rep.body && rep.len) {
        json_error_t je;
        *out = json_loadb(rep.body, rep.len, 0, &je);
        if (!json_is_object(*out)) {
            cli_err("the server's answer to %s /%s is not a JSON object: %s", method, path[0] == '/' ? path + 1 : path,
                    je.text);
            json_decref(*out);
            *out = NULL;
            rc = EX_SERVER;
        }
    }
    http_reply_free(&rep);
    return rc;
}

/* ---- jobs/events (server-sent events) ---- */

typedef struct sse {
    char line[1 << 16];
    size_t len;
    char event[64];
    char *data; /* the data lines of the event so far */
    size_t dlen;
    int (*on_event)(const char *name, json_t *data, void *ctx);
    void *ctx;
    int ended, failed;
    http_reply head;
    sink_buf err_body; /* the body of an error answer */
} sse;

static int sse_line(sse *s)
{
    s->line[s->len] = '\0';
    if (s->len && s->line[s->len - 1] == '\r') s->line[--s->len] = '\0';
    if (s->len == 0) { /* the blank line ends an event */
        if (s->dlen) {
            json_t *d = json_loadb(s->data, s->dlen, 0, NULL);
            int stop = s->on_event(s->event[0] ? s->event : "message", d, s->ctx);
            json_decref(d);
            if (strcmp(s->event, "end") == 0 || stop) s->ended = 1;
        }
        s->event[0] = '\0';
        s->dlen = 0;
        return s->ended ? -1 : 0;
    }
    if (strncmp(s->line, "event:", 6) == 0) {
        const char *v = s->line + 6 + (s->line[6] == ' ');
        snprintf(s->event, sizeof s->event, "%s", v);
    } else if (strncmp(s->line, "data:", 5) == 0) {
        const char *v = s->line + 5 + (s->line[5] == ' ');
        size_t n = strlen(v);
        char *d = realloc(s->data, s->dlen + n + 2);
        if (!d) return -1;
        s->data = d;
        if (s->dlen) s->data[s->dlen++] = '\n';
        memcpy(s->data + s->dlen, v, n);
        s->dlen += n;
    }
    return 0;
}

static size_t on_sse(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    sse *s = userdata;
    size_t n = size * nmemb;
    if (cli_interrupted) return 0;
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 400) return on_body(ptr, size, nmemb, &s->err_body);
    for (size_t i = 0; i < n; i++) {
        if (ptr[i] == '\n') {
            if (sse_line(s) < 0) return 0; /* the end: stop reading */
            s->len = 0;
        } else if (s->len < sizeof s->line - 1) {
            s->line[s->len++] = ptr[i];
        }
    }
    return n;
}

int api_events(const char *job_id, int (*on_event)(const char *name, json_t *data, void *ctx), void *ctx)
{
    char *id = http_escape(job_id);
    char path[512];
    snprintf(path, sizeof path, "/jobs/events?job_id=%s", id ? id : "");
    free(id);
    sse *s = calloc(1, sizeof *s);
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *h = s ? prepare("GET", path, NULL, errbuf) : NULL;
    if (!h) {
        free(s);
        cli_err("out of memory");
        return EX_LOCAL;
    }
    s->on_event = on_event;
    s->ctx = ctx;
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_sse);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, NULL);
    CURLcode cc = curl_easy_perform(curl);
    curl_slist_free_all(h);
    int rc = EX_OK;
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (s->ended) {
        rc = EX_OK;
    } else if (cli_interrupted) {
        rc = EX_INTERRUPTED;
    } else if (status >= 400) {
        rc = report_http_error(status, s->err_body.data, "GET", path);
    } else if (cc != CURLE_OK) {
        rc = report_curl_error(cc, errbuf, &s->err_body);
    } else {
        cli_err("the event stream of job %s ended before the job did", job_id);
        rc = EX_SERVER;
    }
    free(s->err_body.data);
    free(s->data);
    free(s);
    return rc;
}

int api_user(void)
{
    if (cli.user[0]) return EX_OK;
    json_t *j;
    int rc = api_json("GET", "/whoami", NULL, &j);
    if (rc != EX_OK) return rc;
    const char *u = json_string_value(json_object_get(j, "user"));
    if (!u || !u[0] || strlen(u) >= sizeof cli.user) {
        cli_err("the server's whoami answer names no user");
        rc = EX_SERVER;
    } else {
        snprintf(cli.user, sizeof cli.user, "%s", u);
    }
    json_decref(j);
    return rc;
}
