/* gw events: the gateway's SUB socket. Runners' PUB sockets dial it and publish job progress ("job.<id>") and
 * heartbeats ("runner.<instance>"); from them the gateway keeps the table of attached runners and job counts
 * for /metrics, and feeds jobs/events, a Server-Sent Events stream of one job's progress until it ends. */
#include "gw.h"

#include "ib_pipes.h"

#include "ib_conv.h"
#include "ib_events.h"
#include "ib_jobrec.h"
#include "ib_log.h"
#include "ib_settings.h"
#include "ib_tls.h"

#include <errno.h>
#include <nng/protocol/pubsub0/sub.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ID_MAX 64        /* job ids, with the NUL */
#define INSTANCE_MAX 256 /* runner instance names, with the NUL */
#define MAX_RUNNERS 64
#define RUNNER_WINDOW_MS 6000.0 /* attached = heard within 3 heartbeat intervals (2 s unless the runner says) */
#define RECENT_ENDED 512       /* final ids remembered so a repeated final event is counted once */
#define QUEUE_LEN 64           /* events waiting for one stream; beyond, the oldest are dropped */
#define MAX_EVENT_JSON 65536   /* an event's JSON text; the SUB socket takes at most 64 KiB anyway */

enum { ST_QUEUED, ST_RUNNING, ST_COMPLETE, ST_FAILED, ST_CANCELLED, ST_OTHER, ST_COUNT };
static const char *const status_names[ST_COUNT] = {"QUEUED", "RUNNING",   "COMPLETE",
                                                   "FAILED", "CANCELLED", "OTHER"};

static int status_of(const char *s)
{
    for (int i = 0; s && i < ST_OTHER; i++)
        if (!strcmp(s, status_names[i])) return i;
    return ST_OTHER;
}

static int is_final(int st)
{
    return st == ST_COMPLETE || st == ST_FAILED || st == ST_CANCELLED;
}

/* Order of a job's life, to tell an event older than the status a stream started from. */
static int rank_of(int st)
{
    return st == ST_QUEUED ? 0 : st == ST_RUNNING ? 1 : is_final(st) ? 2 : -1;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* --- state (all under mu) ------------------------------------------------------------------------------- */

typedef struct runner_slot {
    char instance[INSTANCE_MAX];
    double seen;
    long long busy, queued;               /* files in flight and waiting (last heartbeat) */
    long long jobs_queued, jobs_running; /* its own unfinished jobs (last heartbeat) */
    char addrs[4][IB_ADDR_MAX]; /* its connections' local addresses, from its heartbeat */
    int naddrs;
    int dropped; /* its connections were closed after it fell silent */
    double window; /* 3 of its heartbeat intervals, ms */
} runner_slot;

typedef struct queued_event {
    char *json;
    int status;
    long long index;
} queued_event;

typedef struct listener {
    char job_id[ID_MAX];
    pthread_cond_t cv;
    queued_event q[QUEUE_LEN];
    int head, count;
    long long dropped;
    struct listener *next;
} listener;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t drained = PTHREAD_COND_INITIALIZER; /* signalled when the last stream leaves */
static runner_slot runners[MAX_RUNNERS];
static unsigned long long ended[ST_COUNT];
static char recent[RECENT_ENDED][ID_MAX];
static int recent_next;
static listener *listeners;
static int nlisteners, stopping, started;

static nng_socket sub;
static nng_aio *recv_aio; /* the receive thread's: gw_events_stop stops it (nng_aio_stop) to end that thread */
static pthread_t recv_thread;

/* --- ended jobs ---------------------------------------------------------------------------------------- */

/* Counts a job's end once (its final event may come again: a resumed job's owner and a helper both tell). The
 * gauges of unfinished jobs come from the runners' heartbeats instead: they hold those jobs, so the gauges are
 * right after a gateway restart and lose nothing to a dropped event. */
static void count_ended(const char *id, int st)
{
    if (!is_final(st)) return;
    for (int i = 0; i < RECENT_ENDED; i++)
        if (!strcmp(recent[i], id)) return; /* already counted */
    snprintf(recent[recent_next], ID_MAX, "%s", id);
    recent_next = (recent_next + 1) % RECENT_ENDED;
    ended[st]++;
}

void gw_events_job_ended(const char *job_id, const char *status)
{
    if (!job_id || !status) return;
    pthread_mutex_lock(&mu);
    count_ended(job_id, status_of(status));
    pthread_mutex_unlock(&mu);
}

/* --- runners -------------------------------------------------------------------------------------------- */

static long long int_field(const json_t *body, const char *key)
{
    const json_t *v = json_object_get(body, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

/* Instance names become Prometheus label values: written with the escapes the text format defines. */
static void label_value(const char *in, char *out, size_t outsz)
{
    size_t n = 0;
    for (; *in && n + 3 < outsz; in++) {
        if (*in == '\\' || *in == '"' || *in == '\n') {
            out[n++] = '\\';
            out[n++] = *in == '\n' ? 'n' : *in;
        } else {
            out[n++] = *in;
        }
    }
    out[n] = '\0';
}

static void on_heartbeat(const char *instance, const json_t *body, double now)
{
    runner_slot *slot = NULL, *oldest = &runners[0];
    for (int i = 0; i < MAX_RUNNERS && !slot; i++) {
        if (!strcmp(runners[i].instance, instance)) slot = &runners[i];
        if (runners[i].seen < oldest->seen) oldest = &runners[i];
    }
    if (!slot) { /* a new instance takes a free slot, or the one heard from longest ago */
        slot = oldest;
        snprintf(slot->instance, INSTANCE_MAX, "%s", instance);
    }
    slot->seen = now;
    slot->dropped = 0;
    long long beat = int_field(body, "heartbeat_ms");
    slot->window = beat > 0 ? (3.0 * (double)beat > 1000 ? 3.0 * (double)beat : 1000) : RUNNER_WINDOW_MS;
    slot->naddrs = 0;
    size_t k;
    const json_t *a;
    json_array_foreach(json_object_get(body, "addrs"), k, a) if (json_is_string(a) && slot->naddrs < 4 &&
                                                                 json_string_length(a) < IB_ADDR_MAX)
        snprintf(slot->addrs[slot->naddrs++], IB_ADDR_MAX, "%s", json_string_value(a));
    slot->busy = int_field(body, "busy");
    slot->queued = int_field(body, "queued");
    slot->jobs_queued = int_field(body, "jobs_queued");
    slot->jobs_running = int_field(body, "jobs_running");
}

static void drop_silent(double now);

/* Runners heard from within their window (mu held). The silent ones are dropped first, their connections
 * closed: a caller that sees a runner counted out (healthz, /metrics) must not then have a request sent to it,
 * which the drop's next tick (up to a second later) would cut mid-call. */
static int attached_count(double now)
{
    drop_silent(now);
    int n = 0;
    for (int i = 0; i < MAX_RUNNERS; i++)
        if (runners[i].instance[0] && now - runners[i].seen < runners[i].window) n++;
    return n;
}

/* --- job events ----------------------------------------------------------------------------------------- */

static void listener_push(listener *l, const char *json, int st, long long index)
{
    char *copy = strdup(json);
    if (!copy) return;
    if (l->count == QUEUE_LEN) { /* a slow client: lose the oldest progress, never the newest (the end) */
        free(l->q[l->head].json);
        l->head = (l->head + 1) % QUEUE_LEN;
        l->count--;
        l->dropped++;
    }
    queued_event *e = &l->q[(l->head + l->count) % QUEUE_LEN];
    e->json = copy;
    e->status = st;
    e->index = index;
    l->count++;
    pthread_cond_signal(&l->cv);
}

static void on_job_event(const char *id, const json_t *body)
{
    int st = status_of(json_string_value(json_object_get(body, "status")));
    const char *state = json_string_value(json_object_get(body, "state"));
    if (st == ST_OTHER && state && !strcmp(state, "DONE")) st = ST_COMPLETE;
    count_ended(id, st);
    char *json = NULL;
    for (listener *l = listeners; l; l = l->next) {
        if (strcmp(l->job_id, id) != 0) continue;
        if (!json && !(json = ib_json_dumps(body, JSON_COMPACT))) return;
        listener_push(l, json, st, int_field(body, "index"));
    }
    free(json);
}

/* A runner we no longer hear from may be cut off with its tcp connections still "up": requests sent there
 * would wait for their timeout. Close them, so the REQ socket sends to the runners that answer; a runner that
 * is alive redials and is used again. Called under mu. */
static void drop_silent(double now)
{
    for (int i = 0; i < MAX_RUNNERS; i++) {
        runner_slot *r = &runners[i];
        if (!r->instance[0] || r->dropped || now - r->seen < r->window) continue;
        r->dropped = 1;
        int closed = 0;
        for (int k = 0; k < r->naddrs; k++) closed += ib_pipes_close_addr(gw.svc[IB_SVC_RUNNER].sock, r->addrs[k]);
        if (closed)
            ib_warn(NULL, "runner '%s' silent for %.0f s: closed %d connection(s) to it", r->instance,
                    (now - r->seen) / 1000, closed);
    }
}

static void *recv_main(void *arg)
{
    (void)arg;
    for (;;) {
        nng_recv_aio(sub, recv_aio);
        nng_aio_wait(recv_aio);
        int rv = nng_aio_result(recv_aio);
        if (rv == NNG_ECANCELED || rv == NNG_ECLOSED) break; /* gw_events_stop */
        if (rv == NNG_ETIMEDOUT) { /* a quiet second: still look for silent runners */
            pthread_mutex_lock(&mu);
            drop_silent(now_ms());
            pthread_mutex_unlock(&mu);
            continue;
        }
        if (rv != 0) continue;
        nng_msg *msg = nng_aio_get_msg(recv_aio);
        char topic[INSTANCE_MAX + 16];
        json_t *body = NULL;
        if (ib_event_decode(nng_msg_body(msg), nng_msg_len(msg), topic, sizeof topic, &body) < 0) {
            ib_debug(NULL, "events: dropped a malformed message of %zu bytes", nng_msg_len(msg));
            nng_msg_free(msg);
            continue;
        }
        nng_msg_free(msg);
        double now = now_ms();
        pthread_mutex_lock(&mu);
        if (!strncmp(topic, IB_TOPIC_JOB, strlen(IB_TOPIC_JOB))) {
            const char *id = topic + strlen(IB_TOPIC_JOB);
            if (*id && strlen(id) < ID_MAX) on_job_event(id, body);
        } else if (!strncmp(topic, IB_TOPIC_RUNNER, strlen(IB_TOPIC_RUNNER))) {
            const char *inst = topic + strlen(IB_TOPIC_RUNNER);
            if (*inst && strlen(inst) < INSTANCE_MAX) on_heartbeat(inst, body, now);
        }
        drop_silent(now);
        pthread_mutex_unlock(&mu);
        json_decref(body);
    }
    return NULL;
}

/* --- start / stop --------------------------------------------------------------------------------------- */

int gw_events_start(char *err, size_t errsz)
{
    pthread_mutex_lock(&mu);
    stopping = 0;
    pthread_mutex_unlock(&mu);
    int rv = nng_sub0_open(&sub);
    if (rv == 0) rv = nng_socket_set_size(sub, NNG_OPT_RECVMAXSZ, 64 * 1024);
    if (rv == 0) rv = nng_aio_alloc(&recv_aio, NULL, NULL);
    if (rv == 0) nng_aio_set_timeout(recv_aio, 1000); /* drop_silent runs at least every second */
    if (rv == 0) rv = nng_socket_set(sub, NNG_OPT_SUB_SUBSCRIBE, IB_TOPIC_JOB, strlen(IB_TOPIC_JOB));
    if (rv == 0) rv = nng_socket_set(sub, NNG_OPT_SUB_SUBSCRIBE, IB_TOPIC_RUNNER, strlen(IB_TOPIC_RUNNER));
    if (rv != 0) {
        snprintf(err, errsz, "cannot open the events socket: %s", nng_strerror(rv));
        return -1;
    }
    started = 1; /* from here stop() closes the socket */
    if (ib_endpoint_start(sub, ib_set.events_url, 1, "IBSOL_EVENTS_URL", err, errsz) < 0) return -1;
    if (pthread_create(&recv_thread, NULL, recv_main, NULL) != 0) {
        snprintf(err, errsz, "cannot start the events thread");
        return -1;
    }
    started = 2;
    ib_info(NULL, "events: listening on %s", ib_set.events_url);
    return 0;
}

void gw_events_stop(void)
{
    /* Streams block in civetweb's threads: wake them first, so that mg_stop, which waits for them, returns.
     */
    pthread_mutex_lock(&mu);
    stopping = 1;
    for (listener *l = listeners; l; l = l->next)
        pthread_cond_signal(&l->cv);
    /* Let them write their last chunk: once mg_stop has begun civetweb writes nothing more, and a chunked
     * body cut short is an error to the client. Bounded: a stream still waiting for jobs.status does not hold
     * us. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 2;
    while (nlisteners > 0)
        if (pthread_cond_timedwait(&drained, &mu, &until) == ETIMEDOUT) break;
    pthread_mutex_unlock(&mu);
    /* The receive is stopped on its aio (every later receive on it fails at once) and its thread joined before
     * the socket is closed. Closing the socket under a blocking nng_recvmsg in another thread could leave
     * nng_close (nng 1.5.2) waiting forever: a gateway that never exited on SIGTERM, its main thread in
     * nng_close and the receive thread in nng_recvmsg. */
    if (started == 2) {
        nng_aio_stop(recv_aio);
        pthread_join(recv_thread, NULL);
    }
    if (started) nng_close(sub);
    if (recv_aio) nng_aio_free(recv_aio);
    recv_aio = NULL;
    started = 0;
}

/* --- metrics -------------------------------------------------------------------------------------------- */

int gw_events_runners_attached(void)
{
    pthread_mutex_lock(&mu);
    int n = attached_count(now_ms());
    pthread_mutex_unlock(&mu);
    return n;
}

size_t gw_events_metrics(char *out, size_t cap)
{
    if (!cap) return 0;
    size_t len = 0;
    out[0] = '\0';
    /* Whole lines only: a line that does not fit is left out with everything after it. */
#define EMIT(...)                                                                                            \
    do {                                                                                                     \
        int n_ = len < cap ? snprintf(out + len, cap - len, __VA_ARGS__) : -1;                               \
        if (n_ < 0 || (size_t)n_ >= cap - len) {                                                             \
            out[len] = '\0';                                                                                 \
            goto full;                                                                                       \
        }                                                                                                    \
        len += (size_t)n_;                                                                                   \
    } while (0)
    pthread_mutex_lock(&mu);
    double now = now_ms();
    long long jobs_queued = 0, jobs_running = 0;
    for (int i = 0; i < MAX_RUNNERS; i++)
        if (runners[i].instance[0] && now - runners[i].seen < runners[i].window) {
            jobs_queued += runners[i].jobs_queued;
            jobs_running += runners[i].jobs_running;
        }
    EMIT("# HELP ibsol_runners_attached Runner instances heard from within 3 of their heartbeat intervals.\n"
         "# TYPE ibsol_runners_attached gauge\n"
         "ibsol_runners_attached %d\n",
         attached_count(now));
    EMIT("# HELP ibsol_runner_busy Files being processed on a runner instance (last heartbeat).\n"
         "# TYPE ibsol_runner_busy gauge\n");
    char label[2 * INSTANCE_MAX];
    for (int i = 0; i < MAX_RUNNERS; i++)
        if (runners[i].instance[0] && now - runners[i].seen < runners[i].window) {
            label_value(runners[i].instance, label, sizeof label);
            EMIT("ibsol_runner_busy{instance=\"%s\"} %lld\n", label, runners[i].busy);
        }
    EMIT("# HELP ibsol_runner_queued Files waiting for a worker on a runner instance (last heartbeat).\n"
         "# TYPE ibsol_runner_queued gauge\n");
    for (int i = 0; i < MAX_RUNNERS; i++)
        if (runners[i].instance[0] && now - runners[i].seen < runners[i].window) {
            label_value(runners[i].instance, label, sizeof label);
            EMIT("ibsol_runner_queued{instance=\"%s\"} %lld\n", label, runners[i].queued);
        }
    EMIT("# HELP ibsol_jobs Jobs not yet ended, by status, summed over the attached runners (last heartbeats).\n"
         "# TYPE ibsol_jobs gauge\n"
         "ibsol_jobs{state=\"QUEUED\"} %lld\n"
         "ibsol_jobs{state=\"RUNNING\"} %lld\n",
         jobs_queued, jobs_running);
    EMIT("# HELP ibsol_jobs_ended_total Jobs ended since the gateway started, by final status.\n"
         "# TYPE ibsol_jobs_ended_total counter\n"
         "ibsol_jobs_ended_total{status=\"COMPLETE\"} %llu\n"
         "ibsol_jobs_ended_total{status=\"FAILED\"} %llu\n"
         "ibsol_jobs_ended_total{status=\"CANCELLED\"} %llu\n",
         ended[ST_COMPLETE], ended[ST_FAILED], ended[ST_CANCELLED]);
full:
    pthread_mutex_unlock(&mu);
#undef EMIT
    return len;
}

/* --- jobs/events ---------------------------------------------------------------------------------------- */

/* Registers a stream's listener; -1 when the gateway stops, -2 when too many streams are open. */
static int listener_add(listener *l, const char *job_id)
{
    memset(l, 0, sizeof *l);
    snprintf(l->job_id, ID_MAX, "%s", job_id);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_lock(&mu);
    int rc = stopping ? -1 : nlisteners >= gw.event_streams ? -2 : 0;
    if (rc == 0) {
        l->next = listeners;
        listeners = l;
        nlisteners++;
    }
    pthread_mutex_unlock(&mu);
    if (rc < 0) pthread_cond_destroy(&l->cv);
    return rc;
}

static void listener_remove(listener *l)
{
    pthread_mutex_lock(&mu);
    for (listener **p = &listeners; *p; p = &(*p)->next)
        if (*p == l) {
            *p = l->next;
            if (--nlisteners == 0) pthread_cond_broadcast(&drained);
            break;
        }
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < l->count; i++)
        free(l->q[(l->head + i) % QUEUE_LEN].json);
    pthread_cond_destroy(&l->cv);
}

/* The job's status object from the jobs.status reply: cur_status (a JSON string) unfolded, with job_id, state
 * and results beside it. A new reference. */
static json_t *status_object(const json_t *data, const char *job_id)
{
    const char *cur = json_string_value(json_object_get(data, "cur_status"));
    json_t *obj = cur ? json_loads(cur, 0, NULL) : NULL;
    if (!json_is_object(obj)) {
        json_decref(obj);
        obj = json_object();
    }
    json_object_set_new(obj, "job_id", json_string(job_id));
    const json_t *state = json_object_get(data, "state");
    if (state) json_object_set(obj, "state", (json_t *)state);
    const json_t *results = json_object_get(data, "results");
    if (results) json_object_set(obj, "results", (json_t *)results);
    return obj;
}

/* One chunk of the chunked body, framed and written in one mg_write (one TCP segment for a small event).
 * civetweb keeps an HTTP/1.1 connection open after a handler returns, so a body without a length could never
 * end: chunked encoding ends it with the zero-length chunk, and "Connection: close" asks the client to hang
 * up then. -1 when the client is gone. */
static int send_chunk(gw_req *r, const char *a, size_t alen, const char *b, size_t blen, const char *c,
                      size_t clen)
{
    size_t n = alen + blen + clen;
    char head[24];
    int h = snprintf(head, sizeof head, "%zx\r\n", n);
    char *buf = malloc((size_t)h + n + 2);
    if (!buf) return -1;
    memcpy(buf, head, (size_t)h);
    memcpy(buf + h, a, alen);
    if (blen) memcpy(buf + h + alen, b, blen);
    if (clen) memcpy(buf + h + alen + blen, c, clen);
    memcpy(buf + h + n, "\r\n", 2);
    int rc = mg_write(r->conn, buf, (size_t)h + n + 2);
    free(buf);
    return rc <= 0 ? -1 : 0;
}

/* One SSE event: compact JSON has no newline, so the data is one line. */
static int send_event(gw_req *r, const char *name, const char *json)
{
    char head[64];
    int h = snprintf(head, sizeof head, "event: %s\ndata: ", name);
    return send_chunk(r, head, (size_t)h, json, strlen(json), "\n\n", 2);
}

void gw_events_serve(gw_req *r)
{
    ib_reply rep;
    ib_reply_init(&rep);
    char job_id[4096] = "";
    const char *q = r->ri->query_string;
    json_t *args = json_object();
    if (q && mg_get_var(q, strlen(q), "job_id", job_id, sizeof job_id) >= 0)
        json_object_set_new(args, "job_id", json_string(job_id));
    if (ib_args_check(ib_op_find(IB_OP_JOBS_STATUS), args, &rep) != IB_OK) goto reply;
    if (strlen(job_id) >= ID_MAX) {
        ib_fail(&rep, IB_BAD_REQUEST, "'job_id' is not a job id: longer than %d bytes", ID_MAX - 1);
        goto reply;
    }
    /* Listen before asking for the status, so that no event falls between the two. */
    listener l;
    int added = listener_add(&l, job_id);
    if (added == -1) {
        ib_fail(&rep, IB_UNAVAILABLE, "the gateway is shutting down");
        goto reply;
    }
    if (added == -2) {
        ib_fail(&rep, IB_UNAVAILABLE, "too many event streams are open (%lld): try again later",
                gw.event_streams);
        goto reply;
    }
    if (ib_job_status_op(gw_jobs_fd(), args, &r->who, &rep) != IB_OK) {
        listener_remove(&l);
        goto reply;
    }
    json_decref(args);
    args = NULL;

    json_t *first = status_object(rep.data, job_id);
    int first_status = status_of(json_string_value(json_object_get(first, "status")));
    const char *state = json_string_value(json_object_get(first, "state"));
    if (state && !strcmp(state, "DONE") && !is_final(first_status)) first_status = ST_COMPLETE;
    long long first_index = int_field(first, "index");
    char *text = ib_json_dumps(first, JSON_COMPACT);
    json_decref(first);
    ib_reply_clear(&rep);

    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
                     "Transfer-Encoding: chunked\r\nConnection: close\r\nX-Accel-Buffering: no\r\n"
                     "X-Request-Id: %s\r\n\r\n",
                     r->rid);
    r->status = 200;
    int alive = mg_write(r->conn, head, (size_t)n) > 0 && text && send_event(r, "status", text) == 0;
    /* A job that has ended already ends its stream as a live one does, with "end": a client reads until that
     * event whenever it started watching. */
    if (alive && is_final(first_status)) alive = send_event(r, "end", text) == 0;
    free(text);

    double start = now_ms(), keepalive = (double)gw.events_keepalive_ms;
    double deadline = start + (double)gw.events_max_s * 1000.0, next_ping = start + keepalive;
    int done = is_final(first_status), events = 0;
    pthread_mutex_lock(&mu);
    while (alive && !done && !stopping) {
        if (l.count == 0) {
            double now = now_ms();
            if (now >= deadline) break;
            if (now >= next_ping) {
                pthread_mutex_unlock(&mu);
                alive = send_chunk(r, ": keep-alive\n\n", 14, NULL, 0, NULL, 0) == 0;
                pthread_mutex_lock(&mu);
                next_ping = now + keepalive;
                continue;
            }
            double until = next_ping < deadline ? next_ping : deadline;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            double wait_ms = until - now;
            ts.tv_sec += (time_t)(wait_ms / 1000);
            ts.tv_nsec += (long)((long long)wait_ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&l.cv, &mu, &ts);
            continue;
        }
        queued_event e = l.q[l.head];
        l.head = (l.head + 1) % QUEUE_LEN;
        l.count--;
        pthread_mutex_unlock(&mu);
        /* Published before the status was read: the stream already showed this (or later). */
        int stale =
            rank_of(e.status) >= 0 && rank_of(first_status) >= 0 &&
            (rank_of(e.status) < rank_of(first_status) ||
             (rank_of(e.status) == rank_of(first_status) && !is_final(e.status) && e.index < first_index));
        if (!stale) {
            done = is_final(e.status);
            alive = send_event(r, done ? "end" : "progress", e.json) == 0;
            events++;
            next_ping = now_ms() + keepalive;
        }
        free(e.json);
        pthread_mutex_lock(&mu);
    }
    long long dropped = l.dropped;
    int was_stopping = stopping;
    pthread_mutex_unlock(&mu);
    if (alive) mg_write(r->conn, "0\r\n\r\n", 5); /* the end of the body, before stop() may proceed */
    listener_remove(&l);
    ib_debug(r->rid, "events %s: %d sent, %lld dropped, %s", job_id, events, dropped,
             done           ? "ended"
             : !alive       ? "client gone"
             : was_stopping ? "gateway stopping"
                            : "time limit");
    return;
reply:
    json_decref(args);
    gw_reply_ib(r, &rep);
    ib_reply_clear(&rep);
}
