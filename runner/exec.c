/* exec: the worker pool. Jobs wait in one FIFO list; each worker takes the next unclaimed file of the oldest
 * run_sync job, else of the oldest job, so a waiting caller is served first and one large job uses every
 * worker; a run_sync's caller also works on its own job while the pool has a free slot (caller_runs). A
 * file's result is saved as soon as it is done (jobs.h), the record at most every PROGRESS_SAVE_MS and at every
 * state change, a progress event at most every PROGRESS_EVENT_MS and at every state change. The worker that
 * finishes a job's last file ends the job; when another runner did that file (a helper, jobs.h), whoever here
 * sees its result first: the worker whose claim of the file failed, the helper's notice (exec_foreign_result),
 * or the tick (exec_poll_foreign).
 *
 * A run_sync job is written to disk only once it has something to show another caller: after its first file
 * when more remain (then it is locked and indexed like any job, so a lost runner's job still ends FAILED naming
 * it), else once, final, when it ends, with its files' results inside. Until then nobody knows its id (the
 * reply brings it). A one-file run_sync so creates each of its files once and replaces none: on ext4 a replaced
 * file (a freed inode) costs several times a new one, and run_sync is the call that must be fast. */
#include "runner.h"

#include "fileops.h"
#include "ib_doc.h"
#include "ib_eval.h"

#include "ib_fs.h"
#include "ib_log.h"
#include "ib_settings.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* events.c: an inotify watch on jobs/<id>.d/ while a job of ours has files on other runners, so each helper's
 * result reaches exec_foreign_result as it is saved (not at the next tick); -1 when there is none. */
int events_watch_files(const char *id);
void events_unwatch(int wd);

#define PROGRESS_SAVE_MS 250
/* Progress events of one job at most this often (its first and last always go out): a follower sees a live
 * count either way, and an event per file of a fast batch costs the runner and the gateway a few thread
 * wake-ups each, which on a virtual machine cost more than a small document's run. */
#define PROGRESS_EVENT_MS 50
/* A run_sync job's final record holds its files' results up to this size (one file to write, read by
 * jobs/results at once); larger ones go to the per-file results under jobs/<id>.d/ like a batch job's, so a
 * record stays small enough for every reader (jobs/status reads the whole record). */
#define SYNC_RESULTS_INLINE_MAX (256u * 1024)

/* FOREIGN: another runner claimed the file (a helper, see jobs.h); the owner polls for its result. */
enum { TODO = 0, INFLIGHT = 1, DONE = 2, FOREIGN = 3 };

struct job {
    char id[IB_JOB_ID_LEN + 1];
    pthread_mutex_t mu; /* rec, file_results and counters below it */
    json_t *rec;
    json_t *file_results;
    size_t nrecords, nerrors;
    double last_save, last_event;
    solution *sol;
    job_input *inputs;
    size_t n;
    int lock_fd, in_dirfd, out_dirfd;
    int sync;
    int recorded; /* its record, lock and index entries are on disk (a run_sync's only from its first save) */
    /* scheduling state, under pool.mu */
    unsigned char *state;
    size_t ndone, inflight, next_scan;
    int cancelled, timed_out, finished, holders, started;
    int helper;      /* this runner only helps with another runner's job: files and results, nothing else */
    size_t nforeign; /* files claimed by other runners, result not seen yet */
    int watch, watch_tried; /* events_watch_files of its folder of results, once it has foreign files */
    int limited;     /* its results passed IBSOL_MAX_JOB_OUTPUT: no more files are started (under pool.mu) */
    size_t out_bytes;     /* bytes of its files' results as JSON (under mu) */
    long long deadline_ms; /* a run_sync's end (ib_eval_clock_ms time): its formulas stop there too; 0: none */
    double finish_ts;     /* when it ended, as first told to anyone (under mu; 0: not yet) */
    pthread_cond_t cv; /* sync waiters, with pool.mu */
    job *next;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t work;
    job *head, *tail;
    size_t njobs, busy;
    size_t nhelping; /* of njobs: other runners' jobs this one helps with (not held against IBSOL_MAX_JOBS) */
    pthread_t *threads;
    size_t nthreads;
    int stopping;
    /* the notifier: webhooks and emails of ended jobs, off the workers' path */
    pthread_t notifier;
    pthread_cond_t notify_cv;
    json_t *notify_queue;
    /* the flusher: a running batch job's outputs on their way to the disk (flusher_main) */
    pthread_t flusher;
    pthread_cond_t flush_cv;
    int flusher_started;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER, .notify_cv = PTHREAD_COND_INITIALIZER,
          .flush_cv = PTHREAD_COND_INITIALIZER};

void job_inputs_free(job_input *inputs, size_t n)
{
    for (size_t i = 0; inputs && i < n; i++) {
        free(inputs[i].name);
        free(inputs[i].bytes);
        free(inputs[i].error);
    }
    free(inputs);
}

static void job_free(job *j)
{
    json_decref(j->rec);
    json_decref(j->file_results);
    solution_release(j->sol);
    job_inputs_free(j->inputs, j->n);
    free(j->state);
    events_unwatch(j->watch);
    job_unlock(j->lock_fd);
    if (j->in_dirfd >= 0) close(j->in_dirfd);
    if (j->out_dirfd >= 0) close(j->out_dirfd);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

int exec_has_room(void)
{
    pthread_mutex_lock(&pool.mu);
    int room = !pool.stopping && pool.njobs - pool.nhelping < (size_t)rcfg.max_jobs;
    pthread_mutex_unlock(&pool.mu);
    return room;
}

void exec_load(exec_load_t *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&pool.mu);
    out->busy = pool.busy;
    out->jobs = pool.njobs;
    for (job *j = pool.head; j; j = j->next) {
        out->queued += j->n - j->ndone - j->inflight;
        if (j->helper) continue;
        if (j->started)
            out->jobs_running++;
        else
            out->jobs_queued++;
    }
    pthread_mutex_unlock(&pool.mu);
}

/* --- records ------------------------------------------------------------------------------------------- */

/* A job's end time, to the millisecond: it is stored once and every reply shows it, some with 15 significant
 * digits (events) and some with 17, which read back as the same number only when there is nothing past ms. */
static double end_time(void)
{
    return round(job_now() * 1000.0) / 1000.0;
}

/* The size of a job's results as bytes of compact JSON (what every output of them repeats). */
static size_t json_size(const json_t *j)
{
    return json_dumpb(j, NULL, 0, JSON_COMPACT);
}

/* A run_sync record's results (j->mu held): inside rec when small, else saved per file under jobs/<id>.d/ and
 * rec says so (jobs/results reads them there, as a batch job's). 1 when they are inside. */
static int attach_results(job *j, json_t *rec)
{
    if (json_size(j->file_results) <= SYNC_RESULTS_INLINE_MAX) {
        json_object_set(rec, "file_results", j->file_results);
        return 1;
    }
    size_t i;
    json_t *r;
    json_array_foreach(j->file_results, i, r) if (!json_is_null(r) && job_file_save(j->id, i, r) < 0)
        ib_error(j->id, "file result cannot be saved: %s", strerror(errno));
    json_object_del(rec, "file_results");
    json_object_set_new(rec, "results_in", json_string("per_file"));
    return 0;
}

static void set_progress(job *j, size_t done, const char *msg)
{
    json_object_set_new(j->rec, "index", json_integer((json_int_t)done));
    json_object_set_new(j->rec, "total", json_integer((json_int_t)j->n));
    json_object_set_new(j->rec, "curMsg", json_string(msg));
    json_object_set_new(j->rec, "curProgress", json_real(j->n ? (double)done / (double)j->n : 1.0));
    json_object_set_new(j->rec, "run_summary", json_pack("{s:I, s:I, s:I}", "numFiles", (json_int_t)j->n,
                                                          "numRecords", (json_int_t)j->nrecords, "numRuntimeErrors",
                                                          (json_int_t)j->nerrors));
}

/* Makes a run_sync job visible like any other (j->mu held): owner lock, index of unfinished jobs, user index. */
static void record_sync(job *j)
{
    if (j->recorded) return;
    j->recorded = 1;
    if ((j->lock_fd = job_lock(j->id)) < 0 || job_mark_active(j->rec) < 0)
        ib_error(j->id, "job cannot be indexed: %s", strerror(errno));
}

static void save_record(job *j, int force)
{
    if (!j->recorded) return; /* a run_sync job before its first progress: see the top of this file */
    double now = job_now();
    if (!force && (now - j->last_save) * 1000 < PROGRESS_SAVE_MS) return;
    j->last_save = now;
    if (job_save(j->rec) < 0) ib_error(j->id, "job record cannot be saved: %s", strerror(errno));
}

void exec_fail_record(json_t *rec, const char *msg)
{
    json_object_set_new(rec, "status", json_string("FAILED"));
    json_object_set_new(rec, "msg", json_string(msg));
    json_object_set_new(rec, "curMsg", json_string(msg));
    json_object_set_new(rec, "finish_timestamp", json_real(end_time()));
    if (job_save(rec) < 0) ib_error(NULL, "job record cannot be saved: %s", strerror(errno));
    events_job(rec);
    const char *id = json_string_value(json_object_get(rec, "job_id"));
    if (id) {
        job_mark_inactive(id);
        job_markers_remove(id);
    }
    json_decref(rec);
}

/* --- the notifier ------------------------------------------------------------------------------------- */

static void notify_one(json_t *rec)
{
    const json_t *settings = json_object_get(rec, "settings");
    const json_t *hook = json_object_get(settings, "webhook_config");
    const json_t *emails = json_object_get(settings, "notification_emails");
    json_t *out = json_object();
    if (json_is_object(hook)) {
        const char *st = json_string_value(json_object_get(rec, "status"));
        json_t *event = json_object();
        json_object_set_new(event, "status", json_string(st && !strcmp(st, "COMPLETE") ? "OK" : "ERROR"));
        if (json_object_get(rec, "msg")) json_object_set(event, "msg", json_object_get(rec, "msg"));
        json_object_set(event, "job_id", json_object_get(rec, "job_id"));
        json_object_set(event, "input_folder", json_object_get(rec, "input_folder"));
        json_object_set(event, "output_folder", json_object_get(rec, "output_folder"));
        json_t *res = notify_webhook(&runner_notify, hook, event);
        if (!json_is_true(json_object_get(res, "delivered")))
            ib_warn(json_string_value(json_object_get(rec, "job_id")), "webhook not delivered: %s",
                    json_string_value(json_object_get(res, "error")) ?: "?");
        json_object_set_new(out, "webhook", res);
        json_decref(event);
    }
    if (emails && !json_is_null(emails)) {
        json_t *status = ib_job_cur_status(rec);
        json_object_set(status, "job_id", json_object_get(rec, "job_id"));
        json_object_set(status, "output_folder", json_object_get(rec, "output_folder"));
        json_object_set(status, "msg", json_object_get(rec, "msg"));
        json_object_set_new(out, "emails", notify_emails(&runner_notify, emails, status));
        json_decref(status);
    }
    /* The record is final and no runner writes it any more; add the outcome to the latest version. */
    json_t *latest = job_load(json_string_value(json_object_get(rec, "job_id")));
    if (latest) {
        json_object_set(latest, "notifications", out);
        job_save(latest);
        json_decref(latest);
    }
    json_decref(out);
}

static void *notifier_main(void *arg)
{
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (!pool.stopping && json_array_size(pool.notify_queue) == 0) pthread_cond_wait(&pool.notify_cv, &pool.mu);
        if (json_array_size(pool.notify_queue) == 0) break; /* stopping with nothing left */
        json_t *rec = json_incref(json_array_get(pool.notify_queue, 0));
        json_array_remove(pool.notify_queue, 0);
        pthread_mutex_unlock(&pool.mu);
        notify_one(rec);
        json_decref(rec);
        pthread_mutex_lock(&pool.mu);
    }
    pthread_mutex_unlock(&pool.mu);
    return NULL;
}

/* Whether other runners may take files of j: batch flow jobs (a run_sync's bytes are only here). */
static int shared(const job *j)
{
    const char *kind = json_string_value(json_object_get(j->rec, "kind"));
    return !j->sync && kind && !strcmp(kind, "flow");
}

/* --- the flusher -------------------------------------------------------------------------------------
 * A batch job's outputs and per-file results are written without fsync, and made durable by one syncfs before
 * its record says it is done (finish). Left to the kernel, they would all still be dirty then (writeback starts
 * after half a minute), and a large job would wait at its end while they all go to the disk at once (about a
 * tenth of a 1,000-file job here). While a batch job runs, this thread hands what is dirty to the disk every
 * FLUSH_MS, beside the work, so the end's syncfs finds only the last moments' bytes. Its own errors are left to
 * that syncfs, which reports them. */
#define FLUSH_MS 250

static void *flusher_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&pool.mu);
    while (!pool.stopping) {
        struct timespec until = job_deadline(FLUSH_MS);
        pthread_cond_timedwait(&pool.flush_cv, &pool.mu, &until);
        int batch = 0;
        for (job *j = pool.head; j && !batch; j = j->next) batch = !j->sync && j->started;
        if (!batch || pool.stopping) continue;
        pthread_mutex_unlock(&pool.mu);
        (void)syncfs(runner_data_fd);
        pthread_mutex_lock(&pool.mu);
    }
    pthread_mutex_unlock(&pool.mu);
    return NULL;
}

/* --- ending a job ------------------------------------------------------------------------------------- */

/* Called with pool.mu held, which it releases: wakes a run_sync caller waiting for j, and frees j unless someone
 * still holds it (the last holder frees it then). */
static void mark_finished(job *j)
{
    j->finished = 1;
    pthread_cond_broadcast(&j->cv);
    int free_now = j->holders == 0;
    pthread_mutex_unlock(&pool.mu);
    if (free_now) job_free(j);
}

/* Drops a UTF-8 sequence that snprintf cut at the end of s (a long file name or message): the record must stay
 * valid JSON text. */
static void cut_utf8(char *s)
{
    size_t n = strlen(s), lead = n;
    while (lead > 0 && ((unsigned char)s[lead - 1] & 0xC0) == 0x80) lead--;
    if (lead == 0 || (unsigned char)s[lead - 1] < 0xC0) return;
    unsigned char c = (unsigned char)s[lead - 1];
    size_t want = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    if (n - (lead - 1) < want) s[lead - 1] = '\0';
}

static void finish(job *j)
{
    /* Its files are all taken: an idle runner is not to rebuild it to help while the end below runs (the batch
     * file, syncfs). */
    if (shared(j) && j->recorded) job_unmark_shared(j->id);
    pthread_mutex_lock(&j->mu);
    /* A run_sync that ends at its deadline timed out, even when its last file (whose formulas that deadline
     * stopped) beat exec_wait's wake-up by a hair: its caller gets the 504 either way. */
    if (j->sync && j->deadline_ms && ib_eval_clock_ms() >= j->deadline_ms) j->timed_out = 1;
    ib_job_status st = j->timed_out || j->limited ? IB_JOB_FAILED : j->cancelled ? IB_JOB_CANCELLED : IB_JOB_COMPLETE;
    size_t done = 0, failed = 0;
    const char *first_error = NULL, *first_name = NULL;
    json_t *finished = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(j->file_results, i, r) if (!json_is_null(r))
    {
        json_array_append(finished, r);
        done++;
        const char *e = json_string_value(json_object_get(r, "error"));
        if (e && !failed++) {
            first_error = e;
            first_name = json_string_value(json_object_get(r, "file_name"));
        }
    }
    char msg[IB_MSG_MAX], lim[40];
    ib_size_text((size_t)rcfg.max_job_output, lim, sizeof lim);
    if (st == IB_JOB_COMPLETE && failed) /* the job ran, but not every file gave its records: say so */
        snprintf(msg, sizeof msg, "Completed %zu/%zu files; %zu failed, the first: %s%s%s", done, j->n, failed,
                 first_name && strncmp(first_error, first_name, strlen(first_name)) ? first_name : "",
                 first_name && strncmp(first_error, first_name, strlen(first_name)) ? ": " : "", first_error);
    else if (st == IB_JOB_COMPLETE)
        snprintf(msg, sizeof msg, "Completed %zu/%zu files", done, j->n);
    else if (j->limited && !j->timed_out)
        snprintf(msg, sizeof msg,
                 "Stopped after %zu/%zu files: the job's results passed the limit of %s (IBSOL_MAX_JOB_OUTPUT)", done,
                 j->n, lim);
    else if (st == IB_JOB_CANCELLED)
        snprintf(msg, sizeof msg, "Cancelled after %zu/%zu files", done, j->n);
    else
        snprintf(msg, sizeof msg, "Timed out after %zu/%zu files (limit %lld ms)", done, j->n, rcfg.sync_timeout_ms);
    cut_utf8(msg);
    const char *kind = json_string_value(json_object_get(j->rec, "kind"));
    json_t *first = json_array_get(finished, 0);
    if (kind && strcmp(kind, "flow") != 0) {
        /* copy/extract: one piece of work, and its failure is the job's */
        const char *e = json_string_value(json_object_get(first, "error"));
        if (e && st == IB_JOB_COMPLETE) {
            st = IB_JOB_FAILED;
            snprintf(msg, sizeof msg, "%s", e);
        } else if (st == IB_JOB_COMPLETE) {
            snprintf(msg, sizeof msg, "Completed %s", kind);
        }
    } else if (work_write_batch(j->out_dirfd, j->id, j->sol->binary_path, finished) < 0 && st == IB_JOB_COMPLETE) {
        st = IB_JOB_FAILED;
        snprintf(msg, sizeof msg, "the results cannot be written to the output folder: %s", strerror(errno));
    }
    json_decref(finished);
    /* Outputs and per-file results were written without fsync; make them durable once, before the record
     * says the job is done (not for run_sync: its caller gets the results in the reply). */
    if (!j->sync && syncfs(j->out_dirfd >= 0 ? j->out_dirfd : runner_data_fd) != 0 && st == IB_JOB_COMPLETE)
        ib_warn(j->id, "syncfs: %s", strerror(errno));
    set_progress(j, done, msg);
    json_object_set_new(j->rec, "status", json_string(ib_job_status_word(st)));
    if (st != IB_JOB_COMPLETE) json_object_set_new(j->rec, "msg", json_string(msg));
    if (j->limited && !j->timed_out) json_object_set_new(j->rec, "limit", json_string("max_job_output"));
    /* stored once: a run_sync that timed out told its caller (and saved) its end already */
    if (j->finish_ts == 0) j->finish_ts = end_time();
    json_object_set_new(j->rec, "finish_timestamp", json_real(j->finish_ts));
    int results_inside = j->sync && attach_results(j, j->rec); /* a run_sync's results live in its record */
    int was_recorded = j->recorded;
    j->recorded = 1;
    save_record(j, 1);
    if (!was_recorded) job_index_user(j->rec);
    /* A run_sync that nobody could see before (no record, no event: its id is in its reply only) and whose
     * reply brings its end: the gateway counts the end from that reply, and an event now would only wake the
     * runner's and the gateway's nng threads for nothing (a tenth of a one-page run_sync's cost). A time-out
     * or a stop at the output limit answers with an error instead, so those publish their end as ever. */
    int end_in_reply = j->sync && !was_recorded && st == IB_JOB_COMPLETE && !j->limited && !j->timed_out;
    if (!end_in_reply) events_job(j->rec);
    if (was_recorded) {
        job_mark_inactive(j->id);
        job_markers_remove(j->id);
    }
    const json_t *settings = json_object_get(j->rec, "settings");
    int wants_notice = json_object_get(settings, "webhook_config") || json_object_get(settings, "notification_emails");
    json_t *rec_copy = wants_notice ? json_deep_copy(j->rec) : NULL;
    /* the waiting run_sync caller reads them from the final record in memory, saved beside it or not */
    if (j->sync && !results_inside) json_object_set(j->rec, "file_results", j->file_results);
    if (end_in_reply) json_object_set_new(j->rec, "$end_in_reply", json_true()); /* in memory only: saved above */
    pthread_mutex_unlock(&j->mu);
    ib_info(j->id, "job %s: %s", ib_job_status_word(st), msg);

    pthread_mutex_lock(&pool.mu);
    if (rec_copy) {
        json_array_append_new(pool.notify_queue, rec_copy);
        pthread_cond_signal(&pool.notify_cv);
    }
    mark_finished(j);
}

/* Removes j from the list; pool.mu held. 0 when it was not there any more: whoever removed it ends it. */
static int unlink_job(job *j)
{
    job **pp = &pool.head;
    job *prev = NULL;
    while (*pp && *pp != j) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp) return 0;
    *pp = j->next;
    if (pool.tail == j) pool.tail = prev;
    pool.njobs--;
    if (j->helper) pool.nhelping--;
    return 1;
}

/* --- one file ----------------------------------------------------------------------------------------- */

/* Runs file i of j and keeps its result (saved into its claim when claim_fd is one: job_file_save_claimed).
 * 1 when the job's results have passed IBSOL_MAX_JOB_OUTPUT with it. */
static int run_file(job *j, size_t i, int claim_fd)
{
    job_input *in = &j->inputs[i];
    unsigned char *owned = NULL;
    const void *bytes = in->bytes;
    size_t len = in->len;
    json_t *result;
    size_t nrec = 0, nerr = 0;
    const char *kind = json_string_value(json_object_get(j->rec, "kind"));
    if (kind && strcmp(kind, "flow") != 0) {
        char e[IB_MSG_MAX] = "";
        int rc = fileops_run(j->rec, e, sizeof e);
        result = json_pack("{s:s, s:I, s:[]}", "file_name", in->name, "file_index", (json_int_t)i, "records");
        if (rc < 0) {
            json_object_set_new(result, "error", json_string(e));
            nerr = 1;
        }
    } else {
        const char *out_show = json_string_value(json_object_get(j->rec, "output_folder"));
        work_deadline_ms = j->deadline_ms; /* a run_sync's formulas stop at its end */
        char why[512] = "";
        if (in->error) {
            snprintf(why, sizeof why, "%s", in->error);
        } else if (!bytes) {
            owned = (unsigned char *)ib_read_file_at(j->in_dirfd, in->name, (size_t)rcfg.max_file, &len);
            bytes = owned;
            if (!bytes)
                snprintf(why, sizeof why, "%s: cannot be read: %s", in->name,
                         errno == EFBIG ? "larger than the input file limit" : strerror(errno));
        }
        if (why[0])
            result = work_file_error(j->sol, in->name, why, i, in->mark_name, j->out_dirfd, out_show ? out_show : "",
                                     &nrec, &nerr);
        else
            result = work_run_file(j->sol, in->name, bytes, len, i, in->mark_name,
                                   json_object_get(json_object_get(j->rec, "settings"), "runtime_config"),
                                   j->out_dirfd, out_show ? out_show : "", &nrec, &nerr);
    }
    if (j->out_dirfd < 0 && (!kind || !strcmp(kind, "flow"))) {
        /* a run_sync with write_to_cache false: no output folder, so no file for a record to name */
        size_t k;
        json_t *r;
        json_array_foreach(json_object_get(result, "records"), k, r)
            json_object_set_new(r, "output_file_path", json_null());
    }
    free(owned);
    free(in->bytes); /* a run_sync input: its memory is not needed any more */
    in->bytes = NULL;
    if (!j->sync && (claim_fd >= 0 ? job_file_save_claimed(j->id, i, result, claim_fd)
                                   : job_file_save(j->id, i, result)) < 0)
        ib_error(j->id, "file result cannot be saved: %s", strerror(errno));
    size_t size = json_size(result);
    pthread_mutex_lock(&j->mu);
    json_array_set_new(j->file_results, i, result);
    j->nrecords += nrec;
    j->nerrors += nerr;
    j->out_bytes += size;
    int over = j->out_bytes > (size_t)rcfg.max_job_output;
    pthread_mutex_unlock(&j->mu);
    return over;
}

static void mark_running(job *j)
{
    pthread_mutex_lock(&j->mu);
    json_object_set_new(j->rec, "status", json_string("RUNNING"));
    json_object_set_new(j->rec, "curMsg", json_string("Running"));
    json_object_set_new(j->rec, "runner", json_string(rcfg.instance));
    if (!json_object_get(j->rec, "started")) json_object_set_new(j->rec, "started", json_real(job_now()));
    save_record(j, 1);
    if (j->recorded) events_job(j->rec);
    if (shared(j)) job_mark_shared(j->id); /* idle runners may take its files from now on */
    pthread_mutex_unlock(&j->mu);
}

static void progress(job *j, size_t done)
{
    char msg[128];
    snprintf(msg, sizeof msg, "Completed %zu/%zu files", done, j->n);
    pthread_mutex_lock(&j->mu);
    /* With more than one worker, another worker may have ended the job since this one's file was counted: its
     * final record and event stand, an older count must not be published (or saved) after them. */
    ib_job_status st = IB_JOB_RUNNING;
    ib_job_status_parse(json_string_value(json_object_get(j->rec, "status")), &st);
    if (ib_job_status_final(st)) {
        pthread_mutex_unlock(&j->mu);
        return;
    }
    set_progress(j, done, msg);
    int first_save = !j->recorded;
    record_sync(j);
    save_record(j, first_save);
    double now = job_now();
    if (first_save || (now - j->last_event) * 1000 >= PROGRESS_EVENT_MS) {
        j->last_event = now;
        events_job(j->rec);
    }
    pthread_mutex_unlock(&j->mu);
}

/* A helper job with nothing left to take: out of the list and freed (nothing to report: its owner does that).
 * pool.mu held. */
static void drop_helper(job *j)
{
    if (unlink_job(j)) {
        ib_info(j->id, "helped with job: %zu of its files done here", j->ndone);
        j->finished = 1;
        job_free(j);
    }
}

/* Next todo index of j, or n. pool.mu held. */
static size_t claim(job *j)
{
    while (j->next_scan < j->n && j->state[j->next_scan] != TODO) j->next_scan++;
    return j->next_scan;
}

/* A file another runner claimed (FOREIGN) is done once its result is saved, and free again when its claimant is
 * gone. The owner learns of a saved result from the helper's notice on this host (exec_foreign_result, from
 * events.c's inotify watch), from the tick (exec_poll_foreign, across hosts too), or finds it saved already when
 * its own claim of the file fails. */

/* Counts r, the saved result of j's foreign file i (pool.mu held; takes r). */
static void take_foreign(job *j, size_t i, json_t *r)
{
    j->state[i] = DONE;
    j->ndone++;
    j->nforeign--;
    pthread_mutex_lock(&j->mu);
    j->nrecords += json_array_size(json_object_get(r, "records"));
    if (json_object_get(r, "error")) j->nerrors++;
    j->out_bytes += json_size(r);
    if (j->out_bytes > (size_t)rcfg.max_job_output) j->limited = j->cancelled = 1;
    json_array_set_new(j->file_results, i, r);
    pthread_mutex_unlock(&j->mu);
}

/* After foreign results were looked at (pool.mu held): END when j is to end now (taken off the list: the caller
 * finishes it); REPORT when `changed` and it goes on (held: the caller reports its progress, report_foreign). */
enum { SETTLE_NONE, SETTLE_END, SETTLE_REPORT };
static int settle_foreign(job *j, int changed)
{
    if ((j->ndone == j->n || j->limited) && j->inflight == 0) return unlink_job(j) ? SETTLE_END : SETTLE_NONE;
    if (!changed) return SETTLE_NONE;
    j->holders++;
    return SETTLE_REPORT;
}

/* Publishes j's progress after settle_foreign held it, and lets it go. pool.mu not held. */
static void report_foreign(job *j)
{
    pthread_mutex_lock(&pool.mu);
    size_t done = j->ndone;
    pthread_mutex_unlock(&pool.mu);
    progress(j, done);
    pthread_mutex_lock(&pool.mu);
    int free_now = --j->holders == 0 && j->finished;
    pthread_mutex_unlock(&pool.mu);
    if (free_now) job_free(j);
}

/* One foreign result seen on its own (pool.mu held, and released): counted, then j ends or reports progress. */
static void take_one_foreign(job *j, size_t i, json_t *r)
{
    take_foreign(j, i, r);
    int settle = settle_foreign(j, 1);
    pthread_mutex_unlock(&pool.mu);
    if (settle == SETTLE_END)
        finish(j);
    else if (settle == SETTLE_REPORT)
        report_foreign(j);
}

/* Watches j's folder of results from its first file on another runner (pool.mu held): each helper's result then
 * comes in by exec_foreign_result at once. Tried once per job; without it the tick finds them. */
static void watch_foreign(job *j)
{
    if (j->watch_tried) return;
    j->watch_tried = 1;
    j->watch = events_watch_files(j->id);
}

/* One turn of work on file i of j, which claim() gave (pool.mu held on entry and on return; released while the
 * file runs): a pool worker's turn, and a run_sync caller's on its own job (exec_wait). */
static void work_on(job *j, size_t i)
{
    /* A cancel (from any runner) takes effect at the next file boundary. A helper also stops once the job
     * is no longer offered (its owner ended it: the cancel marker goes with the end, and a cancelled job's
     * files have no results, so they could still be claimed). */
    if (j->recorded && (job_cancel_requested(j->id) || (j->helper && !job_is_shared(j->id)))) {
        j->cancelled = 1;
        if (j->helper) {
            if (j->inflight == 0) drop_helper(j);
            return;
        }
        if (j->inflight == 0) {
            unlink_job(j);
            pthread_mutex_unlock(&pool.mu);
            finish(j);
            pthread_mutex_lock(&pool.mu);
        }
        return;
    }
    /* A batch job's files may be taken by other runners too: claim this one first. */
    int claim_fd = -1;
    if (shared(j) && (claim_fd = job_claim(j->id, i)) < 0) {
        j->state[i] = FOREIGN;
        if (j->helper) {
            if (claim(j) == j->n && j->inflight == 0) drop_helper(j);
            return;
        }
        j->nforeign++;
        watch_foreign(j);
        /* A helper may have saved its result already: no event is coming for that one. */
        json_t *r = job_file_load(j->id, i);
        if (!r) return;
        take_one_foreign(j, i, r);
        pthread_mutex_lock(&pool.mu);
        return;
    }
    j->state[i] = INFLIGHT;
    j->inflight++;
    pool.busy++;
    int first = !j->started && !j->helper;
    j->started = 1;
    pthread_mutex_unlock(&pool.mu);

    if (first) mark_running(j);
    int over = run_file(j, i, claim_fd); /* closes claim_fd */

    pthread_mutex_lock(&pool.mu);
    if (over && !j->helper) j->limited = j->cancelled = 1; /* no file more: it ends FAILED (finish) */
    j->state[i] = DONE;
    j->ndone++;
    j->inflight--;
    pool.busy--;
    if (j->helper) {
        if ((j->cancelled || claim(j) == j->n) && j->inflight == 0) drop_helper(j);
        return;
    }
    size_t done = j->ndone;
    int ended = j->ndone == j->n || ((j->cancelled || j->timed_out) && j->inflight == 0);
    if (ended)
        unlink_job(j);
    else
        j->holders++; /* another worker may end (and free) j while this one reports progress: hold it */
    pthread_mutex_unlock(&pool.mu);
    if (ended) {
        finish(j);
        pthread_mutex_lock(&pool.mu);
    } else {
        progress(j, done);
        pthread_mutex_lock(&pool.mu);
        if (--j->holders == 0 && j->finished) {
            pthread_mutex_unlock(&pool.mu);
            job_free(j);
            pthread_mutex_lock(&pool.mu);
        }
    }
}

/* Whether a run_sync's caller works on its own job's files itself (pool.mu held), so that a one-page document
 * is not handed to a pool worker and back: two thread wake-ups, which on a virtual machine cost more than the
 * run of a small document. Only while the pool has a free slot (the caller takes it, so no more files run at
 * once than the pool allows), before the job's deadline, and not for a flow with OCR (a thread that OCRs keeps
 * a Tesseract instance of its own, and a page of OCR dwarfs a wake-up). */
static int caller_runs(const job *j)
{
    return j->sync && !pool.stopping && pool.busy < pool.nthreads && !j->cancelled && !j->timed_out &&
           !j->sol->flow->ocr_enabled && ib_eval_clock_ms() < j->deadline_ms;
}

static void *worker_main(void *arg)
{
    pthread_mutex_lock(&pool.mu);
    while (!pool.stopping) {
        /* run_sync first: someone is waiting on the line for it, while batch jobs are polled. Then the
         * oldest job with a file left. A run_sync's caller may hold a slot of the pool itself (exec_wait):
         * then one worker fewer runs. */
        job *j = NULL;
        size_t i = 0;
        for (int pass = 0; pass < 2 && !j && pool.busy < pool.nthreads; pass++)
            for (j = pool.head; j; j = j->next) {
                if (j->cancelled || (pass == 0 && !j->sync)) continue;
                if ((i = claim(j)) < j->n) break;
            }
        if (!j) {
            pthread_cond_wait(&pool.work, &pool.mu);
            continue;
        }
        work_on(j, i);
    }
    pthread_mutex_unlock(&pool.mu);
    ib_doc_thread_cleanup();
    return NULL;
}

/* Workers look for a cancel only in the job they take their next file from, so a cancelled job waiting behind
 * a long one would stay QUEUED until its turn. The heartbeat calls this to end such jobs (any job with no file
 * in flight) at once. */
void exec_sweep_cancels(void)
{
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        job *j = pool.head;
        while (j && (j->cancelled || j->inflight > 0 || !j->recorded || !job_cancel_requested(j->id))) j = j->next;
        if (!j) break;
        j->cancelled = 1;
        unlink_job(j);
        pthread_mutex_unlock(&pool.mu);
        finish(j);
        pthread_mutex_lock(&pool.mu);
    }
    pthread_mutex_unlock(&pool.mu);
}

/* --- submitting and waiting ---------------------------------------------------------------------------- */

static job *make_job(json_t *rec, solution *sol, job_input *inputs, size_t n, int lock_fd, int in_dirfd,
                     int out_dirfd, int sync)
{
    job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->state = calloc(n ? n : 1, 1);
    j->file_results = json_array();
    if (!j->state || !j->file_results) {
        free(j->state);
        json_decref(j->file_results);
        free(j);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) json_array_append_new(j->file_results, json_null());
    snprintf(j->id, sizeof j->id, "%s", json_string_value(json_object_get(rec, "job_id")));
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->rec = rec;
    j->sol = sol;
    j->inputs = inputs;
    j->n = n;
    j->lock_fd = lock_fd;
    j->watch = -1;
    j->in_dirfd = in_dirfd;
    j->out_dirfd = out_dirfd;
    j->sync = sync;
    if (sync) j->deadline_ms = ib_eval_clock_ms() + rcfg.sync_timeout_ms;
    j->recorded = !sync; /* the caller saved a batch job's record; a run_sync's waits (top of this file) */
    j->holders = sync ? 1 : 0;
    return j;
}

static job *enqueue(job *j)
{
    pthread_mutex_lock(&pool.mu);
    if (pool.stopping || pool.njobs - pool.nhelping >= (size_t)rcfg.max_jobs) {
        pthread_mutex_unlock(&pool.mu);
        return NULL;
    }
    if (pool.tail)
        pool.tail->next = j;
    else
        pool.head = j;
    pool.tail = j;
    pool.njobs++;
    int empty = j->n == 0 || j->ndone == j->n;
    if (empty) unlink_job(j);
    if (!(j->n == 1 && caller_runs(j))) pthread_cond_broadcast(&pool.work); /* else its caller runs it */
    pthread_mutex_unlock(&pool.mu);
    if (empty) finish(j); /* nothing (left) to do: end it now */
    return j;
}

/* The queue was full: frees the job but none of what the caller handed over (it still owns all of it). */
static job *hand_back(job *j)
{
    j->rec = NULL;
    j->sol = NULL;
    j->inputs = NULL;
    j->lock_fd = j->in_dirfd = j->out_dirfd = -1;
    job_free(j);
    return NULL;
}

job *exec_submit(json_t *rec, solution *sol, job_input *inputs, size_t n, int lock_fd, int in_dirfd, int out_dirfd,
                 int sync)
{
    job *j = make_job(rec, sol, inputs, n, lock_fd, in_dirfd, out_dirfd, sync);
    if (!j) return NULL;
    set_progress(j, 0, "Queued");
    save_record(j, 1);
    if (j->recorded) events_job(j->rec);
    return enqueue(j) ? j : hand_back(j);
}

job *exec_resume(json_t *rec, solution *sol, job_input *inputs, size_t n, int lock_fd, int in_dirfd, int out_dirfd,
                 const json_t *done_results)
{
    job *j = make_job(rec, sol, inputs, n, lock_fd, in_dirfd, out_dirfd, 0);
    if (!j) return NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(done_results, i);
        if (!r || json_is_null(r)) {
            /* a helper may still be working on it: then its result arrives by exec_poll_foreign */
            if (job_claim_alive(j->id, i)) {
                j->state[i] = FOREIGN;
                j->nforeign++;
            }
            continue;
        }
        json_array_set(j->file_results, i, r);
        j->state[i] = DONE;
        j->ndone++;
        j->nrecords += json_array_size(json_object_get(r, "records"));
        if (json_object_get(r, "error")) j->nerrors++;
        j->out_bytes += json_size(r);
    }
    if (j->nforeign) watch_foreign(j); /* j is not in the pool yet: nobody else looks at it */
    j->started = 1;
    json_object_set_new(rec, "runner", json_string(rcfg.instance));
    json_object_set_new(rec, "resumed", json_integer(json_integer_value(json_object_get(rec, "resumed")) + 1));
    char msg[128];
    snprintf(msg, sizeof msg, "Resumed by %s at %zu/%zu files", rcfg.instance, j->ndone, n);
    set_progress(j, j->ndone, msg);
    json_object_set_new(rec, "status", json_string("RUNNING"));
    save_record(j, 1);
    events_job(rec);
    if (shared(j)) job_mark_shared(j->id);
    return enqueue(j) ? j : hand_back(j);
}

json_t *exec_wait(job *j, long long timeout_ms)
{
    struct timespec deadline = job_deadline(timeout_ms);
    pthread_mutex_lock(&pool.mu);
    while (!j->finished) {
        size_t i;
        if (caller_runs(j) && (i = claim(j)) < j->n) {
            work_on(j, i);
            pthread_cond_signal(&pool.work); /* the slot it held is free again */
            continue;
        }
        if (claim(j) < j->n) pthread_cond_signal(&pool.work); /* files left for the workers */
        if (pthread_cond_timedwait(&j->cv, &pool.mu, &deadline) == ETIMEDOUT) break;
    }
    json_t *out = NULL;
    if (j->finished) {
        /* final: nobody changes it any more, and it holds file_results; one that ended at its deadline is a
         * time-out like any (finish) */
        if (!j->timed_out) out = json_incref(j->rec);
    } else {
        /* Stop at the next file boundary; the job ends FAILED ("timed out") by itself. */
        j->timed_out = 1;
        j->cancelled = 1;
        /* Only while it is still listed: a worker that took its last file off the list is ending it right now
         * (finish() has not set `finished` yet), and ending it twice would free it twice. */
        if (j->inflight == 0 && unlink_job(j)) {
            j->holders--;
            pthread_mutex_unlock(&pool.mu);
            finish(j);
            return NULL;
        }
        /* A file is still in flight: the job ends when it is done, but the caller is told now, and the job id
         * in the 504 must already name a final record. */
        pthread_mutex_lock(&j->mu); /* order: pool.mu, then j->mu (nothing takes them the other way) */
        ib_job_status st = IB_JOB_RUNNING;
        ib_job_status_parse(json_string_value(json_object_get(j->rec, "status")), &st);
        if (!ib_job_status_final(st)) { /* else finish() has saved it already, with every result */
            json_t *rec = json_deep_copy(j->rec);
            char msg[160];
            snprintf(msg, sizeof msg, "Timed out after %zu/%zu files (limit %lld ms)", j->ndone, j->n, timeout_ms);
            json_object_set_new(rec, "status", json_string("FAILED"));
            json_object_set_new(rec, "msg", json_string(msg));
            json_object_set_new(rec, "curMsg", json_string(msg));
            j->finish_ts = end_time(); /* the job's end for good: finish() keeps it */
            json_object_set_new(rec, "finish_timestamp", json_real(j->finish_ts));
            attach_results(j, rec);
            if (job_save(rec) < 0) ib_error(j->id, "job record cannot be saved: %s", strerror(errno));
            if (!j->recorded) job_index_user(rec);
            json_decref(rec);
        }
        pthread_mutex_unlock(&j->mu);
    }
    j->holders--;
    int free_now = j->finished && j->holders == 0;
    pthread_mutex_unlock(&pool.mu);
    if (free_now) job_free(j);
    return out;
}


/* --- sharing a job's files between runners ----------------------------------------------------------- */

/* The owner's side (see take_foreign). The heartbeat thread calls this every tick, and when a watch was just
 * added: every foreign file of every job. */
void exec_poll_foreign(void)
{
    job *to_finish[64], *to_report[64];
    size_t nfinish = 0, nreport = 0;
    pthread_mutex_lock(&pool.mu);
    for (job *j = pool.head, *next; j && nfinish < 64 && nreport < 64; j = next) {
        next = j->next;
        if (j->helper || j->nforeign == 0) continue;
        int changed = 0;
        for (size_t i = 0; i < j->n && j->nforeign; i++) {
            if (j->state[i] != FOREIGN) continue;
            json_t *r = job_file_load(j->id, i);
            if (r) {
                take_foreign(j, i, r);
                changed = 1;
            } else if (!job_claim_alive(j->id, i)) {
                j->state[i] = TODO; /* its claimant died: take it back */
                j->nforeign--;
                if (i < j->next_scan) j->next_scan = i;
                pthread_cond_broadcast(&pool.work);
            }
        }
        int settle = settle_foreign(j, changed);
        if (settle == SETTLE_END)
            to_finish[nfinish++] = j;
        else if (settle == SETTLE_REPORT)
            to_report[nreport++] = j;
    }
    pthread_mutex_unlock(&pool.mu);
    for (size_t k = 0; k < nfinish; k++) finish(to_finish[k]);
    for (size_t k = 0; k < nreport; k++) report_foreign(to_report[k]);
}

/* The helper's notice, on this host (events.c's inotify): jobs/<id>.d/<index>.json was just saved. Only a
 * foreign file of a job this runner owns is taken; this runner's own results (same folder) are left alone. */
void exec_foreign_result(const char *id, size_t index)
{
    pthread_mutex_lock(&pool.mu);
    job *j = pool.head;
    while (j && (j->helper || strcmp(j->id, id) != 0)) j = j->next;
    json_t *r = j && index < j->n && j->state[index] == FOREIGN ? job_file_load(j->id, index) : NULL;
    if (!r) { /* not ours, not foreign, or gone again (the job ended and was removed) */
        pthread_mutex_unlock(&pool.mu);
        return;
    }
    take_one_foreign(j, index, r);
}

int exec_can_help(void)
{
    pthread_mutex_lock(&pool.mu);
    int idle = pool.busy < pool.nthreads && !pool.stopping, helpers = 0;
    for (job *j = pool.head; j && idle; j = j->next) {
        if (j->helper) helpers++;
        else if (!j->cancelled && claim(j) < j->n) idle = 0; /* work of its own waits */
    }
    pthread_mutex_unlock(&pool.mu);
    return idle && helpers < 2;
}

int exec_has_job(const char *id)
{
    pthread_mutex_lock(&pool.mu);
    job *j = pool.head;
    while (j && strcmp(j->id, id) != 0) j = j->next;
    pthread_mutex_unlock(&pool.mu);
    return j != NULL;
}

job *exec_help(json_t *rec, solution *sol, job_input *inputs, size_t n, int in_dirfd, int out_dirfd,
               const unsigned char *done)
{
    job *j = make_job(rec, sol, inputs, n, -1, in_dirfd, out_dirfd, 0);
    if (!j) return NULL;
    j->helper = 1;
    j->started = 1;
    for (size_t i = 0; i < n; i++)
        if (done[i]) j->state[i] = DONE;
    pthread_mutex_lock(&pool.mu);
    if (pool.stopping || claim(j) == n) {
        pthread_mutex_unlock(&pool.mu);
        return hand_back(j);
    }
    if (pool.tail)
        pool.tail->next = j;
    else
        pool.head = j;
    pool.tail = j;
    pool.njobs++;
    pool.nhelping++;
    /* Logged before the workers may take (and finish, and free) it: j and rec are theirs once unlocked. */
    ib_info(j->id, "helping with this job (owned by '%s')", json_string_value(json_object_get(rec, "runner")) ?: "?");
    pthread_cond_broadcast(&pool.work);
    pthread_mutex_unlock(&pool.mu);
    return j; /* only as "taken": it may be gone already */
}

/* --- start and stop ------------------------------------------------------------------------------------ */

int exec_start(char *err, size_t errsz)
{
    pool.notify_queue = json_array();
    pool.threads = calloc((size_t)rcfg.pool, sizeof *pool.threads);
    if (!pool.threads || !pool.notify_queue) return snprintf(err, errsz, "out of memory"), -1;
    for (; pool.nthreads < (size_t)rcfg.pool; pool.nthreads++)
        if (pthread_create(&pool.threads[pool.nthreads], NULL, worker_main, NULL) != 0) {
            snprintf(err, errsz, "cannot start worker threads");
            return -1;
        }
    if (pthread_create(&pool.notifier, NULL, notifier_main, NULL) != 0) {
        snprintf(err, errsz, "cannot start the notifier thread");
        return -1;
    }
    if (pthread_create(&pool.flusher, NULL, flusher_main, NULL) != 0) {
        snprintf(err, errsz, "cannot start the flusher thread");
        return -1;
    }
    pool.flusher_started = 1;
    return 0;
}

void exec_stop(void)
{
    pthread_mutex_lock(&pool.mu);
    pool.stopping = 1;
    pthread_cond_broadcast(&pool.work);
    pthread_cond_broadcast(&pool.notify_cv);
    pthread_cond_broadcast(&pool.flush_cv);
    pthread_mutex_unlock(&pool.mu);
    for (size_t i = 0; i < pool.nthreads; i++) pthread_join(pool.threads[i], NULL);
    if (pool.notify_queue) pthread_join(pool.notifier, NULL);
    if (pool.flusher_started) pthread_join(pool.flusher, NULL);
    pool.flusher_started = 0;
    free(pool.threads);
    pool.threads = NULL;
    /* Jobs still queued keep their records as they are: their locks close with them, and the next runner to
     * look (or this one, restarted) resumes them. */
    pthread_mutex_lock(&pool.mu);
    job *j = pool.head;
    pool.head = pool.tail = NULL;
    pool.njobs = pool.nhelping = 0;
    pthread_mutex_unlock(&pool.mu);
    while (j) {
        job *next = j->next;
        pthread_mutex_lock(&pool.mu);
        mark_finished(j);
        j = next;
    }
    json_decref(pool.notify_queue);
    pool.notify_queue = NULL;
}
