/* events: the runner's PUB socket (dialing the gateway's SUB), one event per job change and a heartbeat every
 * heartbeat_ms; the same beat looks for orphaned jobs: unfinished jobs whose owner lock is free because their
 * runner died. Those are resumed here (finished files kept) or, when that is not possible, ended FAILED with
 * a message naming the lost runner. */
#include "runner.h"

#include "ib_daemon.h"
#include "ib_events.h"
#include "ib_log.h"
#include "ib_settings.h"
#include "ib_tls.h"

#include <errno.h>
#include <nng/protocol/pubsub0/pub.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ops.c: rebuilds a job's inputs and folders and resumes it (lock_fd held) or helps with it; takes rec. */
int ops_resume(json_t *rec, int lock_fd, char *err, size_t errsz);
int ops_help(json_t *rec, char *err, size_t errsz);

static nng_socket pub;
static int pub_open;
static pthread_t beat_thread;
static pthread_mutex_t beat_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t beat_cv = PTHREAD_COND_INITIALIZER;
static int beat_stop, beat_started;

static void publish(const char *topic, const json_t *body)
{
    if (!pub_open) return;
    nng_msg *msg;
    if (nng_msg_alloc(&msg, 0) != 0) return;
    if (ib_event_encode(msg, topic, body) < 0 || nng_sendmsg(pub, msg, NNG_FLAG_NONBLOCK) != 0) nng_msg_free(msg);
}

void events_job(const json_t *rec)
{
    const char *id = json_string_value(json_object_get(rec, "job_id"));
    if (!id) return;
    json_t *body = job_cur_status(rec);
    job_status st = JOB_QUEUED;
    job_status_parse(json_string_value(json_object_get(rec, "status")), &st);
    json_object_set_new(body, "job_id", json_string(id));
    json_object_set(body, "user", json_object_get(rec, "user"));
    json_object_set_new(body, "state", json_string(job_status_final(st) ? "DONE" : "PENDING"));
    char topic[64];
    snprintf(topic, sizeof topic, "%s%s", IB_TOPIC_JOB, id);
    publish(topic, body);
    json_decref(body);
}

static void heartbeat(void)
{
    exec_load_t load;
    exec_load(&load);
    json_t *body = json_pack("{s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "instance", rcfg.instance, "pid",
                             (int)getpid(), "pool", (json_int_t)rcfg.pool, "busy", (json_int_t)load.busy, "queued",
                             (json_int_t)load.queued, "jobs", (json_int_t)load.jobs, "jobs_queued",
                             (json_int_t)load.jobs_queued, "jobs_running", (json_int_t)load.jobs_running,
                             "heartbeat_ms", (json_int_t)rcfg.heartbeat_ms);
    char addrs[8][64];
    size_t naddrs = ib_daemon_addrs(addrs, 8);
    json_t *list = json_array();
    for (size_t i = 0; i < naddrs; i++) json_array_append_new(list, json_string(addrs[i]));
    json_object_set_new(body, "addrs", list);
    char topic[300];
    snprintf(topic, sizeof topic, "%s%s", IB_TOPIC_RUNNER, rcfg.instance);
    publish(topic, body);
    json_decref(body);
}

static void adopt_orphans(void)
{
    json_t *ids = jobs_active();
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        const char *id = json_string_value(v);
        int fd = job_lock(id);
        if (fd < 0) continue; /* owned by a live runner (maybe this one) */
        json_t *rec = job_load(id);
        job_status st = JOB_FAILED;
        if (rec) job_status_parse(json_string_value(json_object_get(rec, "status")), &st);
        if (!rec || job_status_final(st)) {
            job_mark_inactive(id);
            json_decref(rec);
            job_unlock(fd);
            continue;
        }
        const char *lost = json_string_value(json_object_get(rec, "runner"));
        char lost_name[256];
        snprintf(lost_name, sizeof lost_name, "%s", lost ? lost : "unknown");
        const char *kind = json_string_value(json_object_get(rec, "kind"));
        int can_resume = rcfg.resume && kind && !strcmp(kind, "flow") && !json_is_true(json_object_get(rec, "sync"));
        char err[IB_MSG_MAX] = "";
        if (can_resume && !exec_has_room()) {
            /* This runner is at its job limit: leave the orphan as it is, for a later beat here or another
             * runner with room. Taking it now could only end it FAILED, losing the files still to do. */
            ib_debug(id, "runner '%s' was lost; no room to resume its job here yet", lost_name);
            json_decref(rec);
            job_unlock(fd);
            continue;
        }
        if (can_resume) {
            ib_warn(id, "runner '%s' was lost; resuming its job here", lost_name);
            if (ops_resume(rec, fd, err, sizeof err) == 0) continue;
            ib_warn(id, "cannot resume: %s", err);
            rec = job_load(id);
            if (!rec) {
                job_unlock(fd);
                continue;
            }
        }
        char msg[IB_MSG_MAX + 300];
        snprintf(msg, sizeof msg, "runner '%s' was lost while running this job%s%s", lost_name, err[0] ? ": " : "",
                 err);
        ib_warn(id, "%s", msg);
        exec_fail_record(rec, msg);
        job_unlock(fd);
    }
    json_decref(ids);
}

/* Idle workers help with another runner's running batch job: one big job then uses every runner. */
static void share_work(void)
{
    if (!exec_can_help()) return;
    json_t *ids = jobs_shared();
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        const char *id = json_string_value(v);
        if (exec_has_job(id)) continue; /* ours, or helped already */
        json_t *rec = job_load(id);
        const char *kind = json_string_value(json_object_get(rec, "kind"));
        job_status st;
        if (!rec || job_status_parse(json_string_value(json_object_get(rec, "status")), &st) < 0) {
            json_decref(rec);
            continue;
        }
        if (job_status_final(st)) job_mark_inactive(id); /* ended by a runner that died before unindexing it */
        if (st != JOB_RUNNING || !kind || strcmp(kind, "flow") || json_is_true(json_object_get(rec, "sync")) ||
            job_cancel_requested(id)) {
            json_decref(rec);
            continue;
        }
        int fd = job_lock(id); /* after the status: an ended job's lock file is gone, and would be made again */
        if (fd >= 0) { /* nobody owns it: an orphan, adopt_orphans' business */
            job_unlock(fd);
            json_decref(rec);
            continue;
        }
        char err[IB_MSG_MAX];
        if (ops_help(rec, err, sizeof err) == 0) break; /* one at a time */
    }
    json_decref(ids);
}

#define TICK_MS 250 /* how often an owner looks for its helpers' results, and an idle runner for work */

static void *beat_main(void *arg)
{
    double last_beat = 0;
    pthread_mutex_lock(&beat_mu);
    while (!beat_stop) {
        pthread_mutex_unlock(&beat_mu);
        exec_poll_foreign();
        share_work(); /* every tick: an idle runner should join a big job at once, not at its next beat */
        double now = job_now() * 1000;
        if (now - last_beat >= (double)rcfg.heartbeat_ms) {
            last_beat = now;
            heartbeat();
            adopt_orphans();
            exec_sweep_cancels();
        }
        pthread_mutex_lock(&beat_mu);
        struct timespec until = job_deadline(rcfg.heartbeat_ms < TICK_MS ? rcfg.heartbeat_ms : TICK_MS);
        if (!beat_stop) pthread_cond_timedwait(&beat_cv, &beat_mu, &until);
    }
    pthread_mutex_unlock(&beat_mu);
    return NULL;
}

int events_start(char *err, size_t errsz)
{
    int rv = nng_pub0_open(&pub);
    if (rv == 0) rv = nng_socket_set_ms(pub, NNG_OPT_RECONNMINT, 50);
    if (rv == 0) rv = nng_socket_set_ms(pub, NNG_OPT_RECONNMAXT, 1000);
    if (rv != 0) {
        snprintf(err, errsz, "IBSOL_EVENTS_URL: cannot open the events socket: %s", nng_strerror(rv));
        return -1;
    }
    if (ib_endpoint_start(pub, ib_set.events_url, 0, "IBSOL_EVENTS_URL", err, errsz) < 0) return -1;
    pub_open = 1;
    if (pthread_create(&beat_thread, NULL, beat_main, NULL) != 0) {
        snprintf(err, errsz, "cannot start the heartbeat thread");
        return -1;
    }
    beat_started = 1;
    return 0;
}

void events_stop(void)
{
    if (beat_started) {
        pthread_mutex_lock(&beat_mu);
        beat_stop = 1;
        pthread_cond_signal(&beat_cv);
        pthread_mutex_unlock(&beat_mu);
        pthread_join(beat_thread, NULL);
        beat_started = 0;
    }
    if (pub_open) nng_close(pub);
    pub_open = 0;
}
