/* events: the runner's PUB socket (dialing the gateway's SUB), one event per job change and a heartbeat every
 * heartbeat_ms; the same beat looks for orphaned jobs: unfinished jobs whose owner lock is free because their
 * runner died. Those are resumed here (finished files kept) or, when that is not possible, ended FAILED with
 * a message naming the lost runner.
 *
 * Between beats, a tick (TICK_MS) looks for helpers' results of this runner's jobs and for other runners' jobs
 * to help with. On one host the kernel says both at once (inotify): a helper's saved result of one of our jobs
 * (jobs/<id>.d/<i>.json, watched while the job has files on other runners) and a job offered for help
 * (jobs/shared/). So a job shared by runners ends as soon as its last file does, and an idle runner joins a job
 * as it starts, where a tick made a small job several times slower on two runners than on one. inotify sees
 * only this host's writes: across hosts (NFS) the tick is how both are found. */
#include "runner.h"

#include "ib_daemon.h"
#include "ib_events.h"
#include "ib_log.h"
#include "ib_settings.h"
#include "ib_tls.h"

#include <errno.h>
#include <limits.h>
#include <nng/protocol/pubsub0/pub.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

/* ops.c: rebuilds a job's inputs and folders and resumes it (lock_fd held) or helps with it; takes rec. */
int ops_resume(json_t *rec, int lock_fd, char *err, size_t errsz);
int ops_help(json_t *rec, char *err, size_t errsz);
/* exec.c: the owner's side of one helper's result (jobs/<id>.d/<index>.json just appeared). */
void exec_foreign_result(const char *id, size_t index);

static nng_socket pub;
static int pub_open;
static pthread_t beat_thread;
static int beat_stop, beat_started; /* beat_stop: atomic */

/* The beat thread sleeps in poll() on wake_fd (an eventfd: stop, or look now) and ino_fd (inotify; -1 when the
 * kernel gives none: ticks only). Each watched jobs/<id>.d/ is listed in `watches` (its wd and job id, under
 * watch_mu), since an event names only the watch. */
static int wake_fd = -1, ino_fd = -1, shared_wd = -1;
static int poll_due; /* atomic: every job's foreign files are to be looked at now (a watch was just added) */
typedef struct job_watch {
    int wd;
    char id[IB_JOB_ID_LEN + 1];
} job_watch;
static pthread_mutex_t watch_mu = PTHREAD_MUTEX_INITIALIZER;
static job_watch *watches;
static size_t nwatches, watches_cap;

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
    json_t *body = ib_job_cur_status(rec);
    ib_job_status st = IB_JOB_QUEUED;
    ib_job_status_parse(json_string_value(json_object_get(rec, "status")), &st);
    json_object_set_new(body, "job_id", json_string(id));
    json_object_set(body, "user", json_object_get(rec, "user"));
    json_object_set_new(body, "state", json_string(ib_job_status_final(st) ? "DONE" : "PENDING"));
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
        ib_job_status st = IB_JOB_FAILED;
        if (rec) ib_job_status_parse(json_string_value(json_object_get(rec, "status")), &st);
        if (!rec || ib_job_status_final(st)) {
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
        ib_job_status st;
        if (!rec || ib_job_status_parse(json_string_value(json_object_get(rec, "status")), &st) < 0) {
            json_decref(rec);
            continue;
        }
        if (ib_job_status_final(st)) job_mark_inactive(id); /* ended by a runner that died before unindexing it */
        if (st != IB_JOB_RUNNING || !kind || strcmp(kind, "flow") || json_is_true(json_object_get(rec, "sync")) ||
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

static void wake_beat(void)
{
    uint64_t one = 1;
    if (wake_fd >= 0 && write(wake_fd, &one, sizeof one) < 0) { /* EAGAIN: a wake-up is pending already */
    }
}

/* Workers call these; every use of ino_fd and wake_fd outside the beat thread is under watch_mu, so events_stop
 * can close them while workers still run (they stop after this thread). */
int events_watch_files(const char *id)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/jobs/%s.d", ib_set.data, id) >= (int)sizeof path) return -1;
    /* Listed before the beat thread can read an event of it (it takes watch_mu to look a wd up). */
    pthread_mutex_lock(&watch_mu);
    if (ino_fd < 0) {
        pthread_mutex_unlock(&watch_mu);
        return -1;
    }
    int wd = inotify_add_watch(ino_fd, path, IN_CREATE | IN_MOVED_TO | IN_ONLYDIR);
    int e = errno;
    if (wd >= 0 && nwatches == watches_cap) {
        size_t cap = watches_cap ? 2 * watches_cap : 16;
        job_watch *bigger = realloc(watches, cap * sizeof *watches);
        if (bigger) {
            watches = bigger;
            watches_cap = cap;
        } else {
            inotify_rm_watch(ino_fd, wd);
            wd = -1;
            e = ENOMEM;
        }
    }
    if (wd >= 0) {
        /* The same folder watched again (a job owned once more by this runner) gives the same wd: one entry. */
        size_t k = 0;
        while (k < nwatches && watches[k].wd != wd) k++;
        if (k == nwatches) nwatches++;
        watches[k].wd = wd;
        snprintf(watches[k].id, sizeof watches[k].id, "%s", id);
    }
    /* A result saved before the watch existed gave no event: look at every foreign file once, now. */
    __atomic_store_n(&poll_due, 1, __ATOMIC_RELEASE);
    wake_beat();
    pthread_mutex_unlock(&watch_mu);
    if (wd < 0) ib_debug(id, "cannot watch its results (%s): helpers' files are seen at the tick", strerror(e));
    return wd;
}

void events_unwatch(int wd)
{
    if (wd < 0) return;
    pthread_mutex_lock(&watch_mu);
    for (size_t k = 0; k < nwatches; k++)
        if (watches[k].wd == wd) {
            watches[k] = watches[--nwatches];
            /* EINVAL when the kernel dropped it already (its folder was removed): nothing to do then */
            inotify_rm_watch(ino_fd, wd);
            break;
        }
    pthread_mutex_unlock(&watch_mu);
}

/* Reads every pending inotify event: a helper's result goes to its job's owner side at once; a change of the
 * shared index (or a lost event) asks for share_work / a full look at foreign files. */
static void read_watches(int *share, int *poll_all)
{
    _Alignas(struct inotify_event) char buf[8192];
    for (;;) {
        ssize_t len = read(ino_fd, buf, sizeof buf);
        if (len <= 0) return; /* EAGAIN: drained */
        for (char *p = buf; p < buf + len;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
            p += sizeof *ev + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) { /* events were lost: look at everything */
                *share = *poll_all = 1;
                continue;
            }
            if (ev->wd == shared_wd) {
                *share = 1;
                continue;
            }
            char id[IB_JOB_ID_LEN + 1] = "";
            pthread_mutex_lock(&watch_mu);
            for (size_t k = 0; k < nwatches; k++)
                if (watches[k].wd == ev->wd) {
                    snprintf(id, sizeof id, "%s", watches[k].id);
                    if (ev->mask & IN_IGNORED) watches[k] = watches[--nwatches]; /* its folder is gone */
                    break;
                }
            pthread_mutex_unlock(&watch_mu);
            size_t index;
            if (id[0] && ev->len && !(ev->mask & IN_IGNORED) && job_result_index(ev->name, &index))
                exec_foreign_result(id, index);
        }
    }
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *beat_main(void *arg)
{
    long long last_beat = 0, next_tick = 0, tick = rcfg.heartbeat_ms < TICK_MS ? rcfg.heartbeat_ms : TICK_MS;
    while (!__atomic_load_n(&beat_stop, __ATOMIC_ACQUIRE)) {
        long long now = mono_ms();
        if (now >= next_tick) {
            next_tick = now + tick;
            exec_poll_foreign();
            share_work(); /* every tick: an idle runner should join a big job at once, not at its next beat */
            if (last_beat == 0 || now - last_beat >= rcfg.heartbeat_ms) {
                last_beat = now;
                heartbeat();
                adopt_orphans();
                exec_sweep_cancels();
            }
            continue;
        }
        struct pollfd pf[2] = {{.fd = wake_fd, .events = POLLIN}, {.fd = ino_fd, .events = POLLIN}};
        if (poll(pf, ino_fd >= 0 ? 2 : 1, (int)(next_tick - now)) <= 0) continue; /* the tick, or EINTR */
        uint64_t n;
        if ((pf[0].revents & POLLIN) && read(wake_fd, &n, sizeof n) < 0) { /* EAGAIN: read by a racing wake */
        }
        int share = 0, poll_all = __atomic_exchange_n(&poll_due, 0, __ATOMIC_ACQ_REL);
        if (ino_fd >= 0 && (pf[1].revents & POLLIN)) read_watches(&share, &poll_all);
        if (poll_all) exec_poll_foreign();
        if (share) share_work();
    }
    return NULL;
}

/* The inotify instance and its watch of jobs/shared/. Without them the runner works on ticks alone (a full
 * per-user inotify limit, say): slower to notice, never wrong, so that is a warning, not a start error. */
static void watch_start(void)
{
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
        ib_warn(NULL, "inotify: %s; helpers' results and shared jobs are looked for every %d ms only",
                strerror(errno), TICK_MS);
        return;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/jobs/shared", ib_set.data);
    shared_wd = inotify_add_watch(fd, path, IN_CREATE | IN_MOVED_TO | IN_ONLYDIR);
    if (shared_wd < 0)
        ib_warn(NULL, "inotify on '%s': %s; jobs to help with are looked for every %d ms only", path, strerror(errno),
                TICK_MS);
    pthread_mutex_lock(&watch_mu);
    ino_fd = fd; /* workers may add watches from now on */
    pthread_mutex_unlock(&watch_mu);
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
    int wfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wfd < 0) {
        snprintf(err, errsz, "cannot create the heartbeat thread's eventfd: %s", strerror(errno));
        return -1;
    }
    pthread_mutex_lock(&watch_mu);
    wake_fd = wfd;
    pthread_mutex_unlock(&watch_mu);
    watch_start();
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
        __atomic_store_n(&beat_stop, 1, __ATOMIC_RELEASE);
        wake_beat();
        pthread_join(beat_thread, NULL);
        beat_started = 0;
    }
    pthread_mutex_lock(&watch_mu);
    if (ino_fd >= 0) close(ino_fd); /* and every watch with it */
    if (wake_fd >= 0) close(wake_fd);
    ino_fd = wake_fd = shared_wd = -1;
    free(watches);
    watches = NULL;
    nwatches = watches_cap = 0;
    pthread_mutex_unlock(&watch_mu);
    if (pub_open) nng_close(pub);
    pub_open = 0;
}
