/* fake_runner: a stand-in runner for the gateway's black-box tests of progress events. It answers ping on the
 * runner socket (the gateway reads jobs/status from the job records the test writes, as from a runner's), and
 * publishes heartbeats and, when a trigger file <trigger_dir>/<job_id> appears, that job's scripted events from
 * a JSON file of fake jobs, on a PUB socket dialing the gateway's SUB.
 * Its heartbeats count the played jobs whose last event left them QUEUED or RUNNING, as a runner counts its
 * own unfinished jobs. */
#include "ib_daemon.h"
#include "ib_events.h"
#include "ib_log.h"

#include <nng/protocol/pubsub0/pub.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Jobs file: {"<job_id>": {"script": [event body, ...], ...}} (other keys are the test's) */
static char *jobs_path, *trigger_dir, *instance;
static long long heartbeat_ms, event_gap_ms;

static const ib_cfg fake_cfg[] = {
    {"fake_jobs", IB_CFG_STR, "", 0, 0, &jobs_path, "JSON file of fake jobs"},
    {"fake_trigger_dir", IB_CFG_STR, "", 0, 0, &trigger_dir,
     "folder where a file named after a job plays its script"},
    {"fake_instance", IB_CFG_STR, "fake-1", 0, 0, &instance, "instance name in heartbeats"},
    {"fake_heartbeat_ms", IB_CFG_INT, "200", 10, 60000, &heartbeat_ms, "heartbeat interval"},
    {"fake_event_gap_ms", IB_CFG_INT, "30", 0, 60000, &event_gap_ms, "pause between scripted events"},
};

static nng_socket pub;
static pthread_t thread;
static atomic_int stop_flag;
static int thread_started;
static json_t *played; /* job id -> status of its last scripted event (pub thread only) */

static json_t *load_jobs(void)
{
    json_t *j = jobs_path[0] ? json_load_file(jobs_path, 0, NULL) : NULL;
    if (json_is_object(j)) return j;
    json_decref(j);
    return json_object();
}

static void publish(const char *topic, const json_t *body)
{
    nng_msg *msg;
    if (nng_msg_alloc(&msg, 0) != 0) return;
    if (ib_event_encode(msg, topic, body) != 0 || nng_sendmsg(pub, msg, 0) != 0) nng_msg_free(msg);
}

static void sleep_ms(long long ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void play_triggers(void)
{
    if (!trigger_dir[0]) return;
    json_t *all = load_jobs();
    const char *id;
    json_t *job;
    json_object_foreach(all, id, job)
    {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", trigger_dir, id);
        if (access(path, F_OK) != 0) continue;
        unlink(path);
        char topic[128];
        snprintf(topic, sizeof topic, "%s%s", IB_TOPIC_JOB, id);
        size_t i;
        json_t *ev;
        json_array_foreach(json_object_get(job, "script"), i, ev)
        {
            publish(topic, ev);
            if (json_object_get(ev, "status")) json_object_set(played, id, json_object_get(ev, "status"));
            sleep_ms(event_gap_ms);
        }
        ib_info(NULL, "played the script of %s", id);
    }
    json_decref(all);
}

static void *pub_main(void *arg)
{
    (void)arg;
    char topic[128];
    snprintf(topic, sizeof topic, "%s%s", IB_TOPIC_RUNNER, instance);
    played = json_object();
    while (!atomic_load(&stop_flag)) {
        int jobs_queued = 0, jobs_running = 0;
        const char *id;
        json_t *st;
        json_object_foreach(played, id, st)
        {
            jobs_queued += json_string_value(st) && !strcmp(json_string_value(st), "QUEUED");
            jobs_running += json_string_value(st) && !strcmp(json_string_value(st), "RUNNING");
        }
        json_t *hb = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i}", "instance", instance, "pid", (int)getpid(),
                               "pool", 2, "busy", 1, "queued", 3, "jobs_queued", jobs_queued, "jobs_running",
                               jobs_running);
        publish(topic, hb);
        json_decref(hb);
        play_triggers();
        sleep_ms(heartbeat_ms);
    }
    json_decref(played);
    return NULL;
}

static int fake_start(void **state, char *err, size_t errsz)
{
    (void)state;
    int rv = nng_pub0_open(&pub);
    if (rv == 0) rv = nng_socket_set_ms(pub, NNG_OPT_RECONNMINT, 50);
    if (rv == 0) rv = nng_socket_set_ms(pub, NNG_OPT_RECONNMAXT, 500);
    if (rv == 0) rv = nng_dial(pub, ib_set.events_url, NULL, NNG_FLAG_NONBLOCK);
    if (rv != 0) {
        snprintf(err, errsz, "IBSOL_EVENTS_URL: cannot dial '%s': %s", ib_set.events_url, nng_strerror(rv));
        return -1;
    }
    thread_started = pthread_create(&thread, NULL, pub_main, NULL) == 0;
    return 0;
}

static void fake_stop(void *state)
{
    (void)state;
    atomic_store(&stop_flag, 1);
    if (thread_started) pthread_join(thread, NULL);
    nng_close(pub);
}

int main(int argc, char **argv)
{
    static const ib_daemon_def def = {
        .name = "runner",
        .about = "fake runner for tests: heartbeats and scripted progress events",
        .service = IB_SVC_RUNNER,
        .cfg = fake_cfg,
        .ncfg = sizeof fake_cfg / sizeof fake_cfg[0],
        .start = fake_start,
        .stop = fake_stop,
    };
    return ib_daemon_main(&def, argc, argv);
}
