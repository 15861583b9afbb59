/* janitor: job retention. With IBSOL_JOB_RETENTION_S set, jobs that ended and were created longer ago than
 * that are removed from the data root (record, per-file results, markers, index entry), and so is a
 * run_sync's default output folder (/<user>/.ibsol/run_sync/<job_id>, which the server chose), and so are
 * notification emails in the outbox as old. Output folders a user named stay: they are the user's files. One
 * runner at a time does it (jobs_expire takes a lock), in its own thread, so heartbeats never wait for it. */
#include "runner.h"

#include "ib_fs.h"
#include "ib_log.h"
#include "ib_path.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BATCH 10000 /* jobs removed per pass; another pass follows at once when there were more */

static pthread_t thread;
static int started, stopping;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

/* The retention as of this pass (Unix time): jobs created and ended before it go. */
static double cutoff;

/* A run_sync's default output folder (/<user>/.ibsol/run_sync/<id>) was chosen by the server: it goes with
 * the job. An output_dir the caller named is the caller's. */
static void drop_output(const json_t *rec)
{
    if (!json_is_true(json_object_get(rec, "sync"))) return;
    const char *user = json_string_value(json_object_get(rec, "user"));
    const char *id = json_string_value(json_object_get(rec, "job_id"));
    const char *out = json_string_value(json_object_get(rec, "output_folder"));
    char own[IB_PATH_MAX + IB_JOB_ID_LEN + 2], parent[IB_PATH_MAX];
    if (!user || !id || !out || !ib_job_id_valid(id)) return;
    snprintf(parent, sizeof parent, "/%s/.ibsol/run_sync", user);
    snprintf(own, sizeof own, "%s/%s", parent, id);
    if (strcmp(out, own) != 0) return;
    ib_caller who = {.user = user, .role = "user"};
    ib_dpath p;
    ib_reply rep;
    ib_reply_init(&rep);
    if (ib_dpath_parse(parent, &who, "output_folder", &p, &rep) == IB_OK) {
        int fd = ib_drive_open_dir(runner_drive_fd, &p, 0);
        if (fd >= 0) {
            ib_remove_tree_at(fd, id);
            close(fd);
        }
    }
    ib_reply_clear(&rep);
}

/* Whether an old ended job may go now. It must have ended before the cutoff too, and a job whose webhook or
 * emails are still being sent (the notifier adds their outcome to the record when done, and would write the
 * record again) waits for that, for up to an hour past the cutoff (a runner that died meanwhile never adds
 * it). */
static int take(const json_t *rec)
{
    double ended = json_number_value(json_object_get(rec, "finish_timestamp"));
    if (ended >= cutoff) return 0;
    const json_t *settings = json_object_get(rec, "settings");
    int wants_notice =
        json_object_get(settings, "webhook_config") || json_object_get(settings, "notification_emails");
    if (wants_notice && !json_object_get(rec, "notifications") && ended >= cutoff - 3600) return 0;
    drop_output(rec);
    return 1;
}

/* Emails written to the outbox before `before` (a message being written has a temporary, dotted name). */
static size_t expire_outbox(double before)
{
    DIR *d = runner_notify.outbox_dir ? opendir(runner_notify.outbox_dir) : NULL;
    if (!d) return 0;
    size_t removed = 0;
    struct dirent *e;
    struct stat st;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode) && (double)st.st_mtime < before && unlinkat(dirfd(d), e->d_name, 0) == 0)
            removed++;
    closedir(d);
    return removed;
}

static void *janitor_main(void *arg)
{
    (void)arg;
    long long every_ms = rcfg.job_retention_s * 1000 / 10; /* a tenth of the retention, 1 s to 1 min */
    if (every_ms < 1000) every_ms = 1000;
    if (every_ms > 60000) every_ms = 60000;
    pthread_mutex_lock(&mu);
    while (!stopping) {
        pthread_mutex_unlock(&mu);
        cutoff = job_now() - (double)rcfg.job_retention_s;
        size_t n = jobs_expire(cutoff, BATCH, take), mails = expire_outbox(cutoff);
        if (n || mails)
            ib_info(NULL, "retention: removed %zu jobs that ended and %zu emails, older than %lld s", n,
                    mails, rcfg.job_retention_s);
        pthread_mutex_lock(&mu);
        if (n == BATCH) continue;
        struct timespec until = job_deadline(every_ms);
        if (!stopping) pthread_cond_timedwait(&cv, &mu, &until);
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

int janitor_start(char *err, size_t errsz)
{
    if (rcfg.job_retention_s <= 0) return 0; /* jobs are kept */
    if (pthread_create(&thread, NULL, janitor_main, NULL) != 0) {
        snprintf(err, errsz, "cannot start the retention thread");
        return -1;
    }
    started = 1;
    return 0;
}

void janitor_stop(void)
{
    if (!started) return;
    pthread_mutex_lock(&mu);
    stopping = 1;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(thread, NULL);
    started = 0;
}
