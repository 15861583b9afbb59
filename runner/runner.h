/* runner: the runner daemon's shared state and the pieces its files hand each other. ops.c answers the
 * requests, exec.c runs jobs on the worker pool, solutions.c loads and caches compiled flows, work.c calls
 * the engine for one file, events.c publishes progress and heartbeats and finds orphaned jobs. */
#ifndef RUNNER_H
#define RUNNER_H

#include "ib_err.h"
#include "ib_flow.h"
#include "ib_manifest.h"
#include "jobs.h"
#include "notify.h"

#include <jansson.h>
#include <sys/stat.h>
#include <pthread.h>
#include <stddef.h>

typedef struct runner_cfg {
    char *instance;
    long long pool;          /* file workers */
    long long max_jobs;      /* unfinished jobs this runner holds */
    long long max_files;     /* files in one job */
    long long max_file;      /* bytes of one input file */
    long long sync_timeout_ms;
    long long heartbeat_ms;
    int resume;              /* resume orphaned jobs (else fail them) */
    char *sendmail;
    char *mail_from;
    long long webhook_retries;
    long long webhook_backoff_ms;
    long long job_retention_s; /* ended jobs older than this are removed (0: kept) */
    /* what one solution may take (ib_engine_opts): per record, formula values held at once, formula time and
     * bytes of results; per job, bytes of results (then no file more is started and it ends FAILED) */
    long long formula_max_bytes;
    long long formula_max_ms;
    long long max_record_output;
    long long max_job_output;
} runner_cfg;

extern runner_cfg rcfg;
extern int runner_drive_fd; /* <data>/drive */
extern int runner_data_fd;  /* <data> */
extern notify_cfg runner_notify;

/* --- janitor.c: job retention (IBSOL_JOB_RETENTION_S) ---------------------------------------------------- */
int janitor_start(char *err, size_t errsz);
void janitor_stop(void);

/* --- solutions.c ------------------------------------------------------------------------------------ */
typedef struct solution {
    char digest[65];   /* sha256 of the .ibflowbin bytes: the cache key */
    char name[IB_SOLUTION_NAME_MAX + 1];
    char version[160]; /* a semantic version: 3 numbers of up to 20 digits and a pre-release of up to 63 bytes */
    char binary_path[4400]; /* shown in replies (drive form, or installed/<name>/<version>/<name>.ibflowbin) */
    ib_flow *flow;
    int refs;
    /* For an installed one: the .ibflowbin it was read from, as stat saw it (device, inode, size, change time),
     * so the next run finds it by one stat instead of reading and hashing the file again. */
    dev_t src_dev;
    ino_t src_ino;
    off_t src_size;
    struct timespec src_ctime;
} solution;

/* Resolves the solution a run names: `name`+`version` (installed) or `solution_path` (an .ibsolution on the
 * drive, verified like a publish). Exactly one of the two forms, else 400. NULL with rep filled. */
solution *solution_resolve(const json_t *args, const ib_caller *who, ib_reply *rep);
/* Loads the solution a job record names again (resume). */
solution *solution_from_record(const json_t *rec, char *err, size_t errsz);
/* The record form of a resolved solution. */
json_t *solution_record(const solution *s, const json_t *args);
void solution_release(solution *s);
void solutions_fini(void);

/* --- work.c: the engine on one file ------------------------------------------------------------------- */
/* Runs the flow on one file's bytes, writing its records' .ibdoc files below out_dirfd (whose drive form is
 * out_show). Returns the file's result {file_name, file_index, records:[...], error?}; *nrecords and *nerrors
 * count records and failed fields or unreadable files. Never NULL. */
json_t *work_run_file(const solution *sol, const char *file_name, const void *bytes, size_t len, size_t file_index,
                      int mark_name, const json_t *runtime_config, int out_dirfd, const char *out_show,
                      size_t *nrecords, size_t *nerrors);
/* mark_name: the job_input's, see there. The result of a file that could not even be had (bad base64,
 * unreadable): one record with `why`. */
json_t *work_file_error(const solution *sol, const char *file_name, const char *why, size_t file_index,
                        int mark_name, int out_dirfd, const char *out_show, size_t *nrecords, size_t *nerrors);
/* The end of the job the calling worker runs a file of (ib_eval_clock_ms time; 0: none): its formulas stop
 * there (a run_sync's deadline). Set by the worker around work_run_file. */
extern _Thread_local long long work_deadline_ms;
/* Writes batch.ibflowresults (job_id, binary_path, results per input file) into out_dirfd. 0 or -1. */
int work_write_batch(int out_dirfd, const char *job_id, const char *binary_path, const json_t *file_results);
/* Flattens file results into the run_sync "records" list (new reference). */
json_t *work_records(const json_t *file_results);

/* --- exec.c: jobs on the pool ------------------------------------------------------------------------- */
typedef struct job job;

/* An input: a file under the job's input folder (name relative to it), or bytes in memory (run_sync). */
typedef struct job_input {
    char *name;
    unsigned char *bytes; /* NULL: read name below the input folder; else owned */
    size_t len;
    char *error;          /* set: the file could not be decoded; becomes a record error */
    int mark_name;        /* its output name is not unique in the job: "~<index>" is added (ops.c decides) */
} job_input;

int exec_start(char *err, size_t errsz);
void exec_stop(void);
/* Hands a new or resumed job to the pool; takes ownership of rec, sol, inputs (array of n) and the lock fd,
 * and of the folder fds. Returns the job (borrowed; valid until it ends) or NULL when the queue is full
 * (nothing taken then). `sync`: the caller will exec_wait for it. */
job *exec_submit(json_t *rec, solution *sol, job_input *inputs, size_t n, int lock_fd, int in_dirfd, int out_dirfd,
                 int sync);
/* Resumes an orphaned job: like exec_submit, with the results of the files that were already finished (a list of
 * n items, null for a file still to do; borrowed). */
job *exec_resume(json_t *rec, solution *sol, job_input *inputs, size_t n, int lock_fd, int in_dirfd, int out_dirfd,
                 const json_t *done_results);
/* Sharing a batch job's files between runners (claims: jobs.h). exec_can_help: this runner has idle workers and
 * nothing of its own to give them. exec_has_job: the job is in this runner's pool (owned or helped).
 * exec_help: takes files of another runner's job (takes rec, sol, inputs, fds; done: n flags, 1 for a file with a
 * saved result, borrowed); non-NULL when taken, and then not to be used (the workers may have finished and freed
 * it already).
 * exec_poll_foreign: the owner's side, called by the heartbeat thread. */
int exec_can_help(void);
int exec_has_job(const char *id);
job *exec_help(json_t *rec, solution *sol, job_input *inputs, size_t n, int in_dirfd, int out_dirfd,
               const unsigned char *done);
void exec_poll_foreign(void);

/* Ends a job that cannot run (e.g. its runner was lost and it cannot be resumed): FAILED with msg, saved,
 * published, unindexed. Takes rec. */
void exec_fail_record(json_t *rec, const char *msg);
void job_inputs_free(job_input *inputs, size_t n);
/* Waits for a sync job to end or for timeout_ms; returns the final record with its file_results (a new
 * reference, shared: read it only), or NULL on timeout (the job is then cancelled and ends FAILED). Releases
 * the caller's hold on the job either way. */
json_t *exec_wait(job *j, long long timeout_ms);
/* Ends this runner's jobs that were cancelled while no file of theirs was in flight (e.g. still queued). */
void exec_sweep_cancels(void);
/* 1 when this runner can take one more job now (below max_jobs, not stopping). */
int exec_has_room(void);
/* Load of this runner, for heartbeats: files in flight and waiting, jobs held (helped ones too), and of its own
 * jobs those not started yet and those running. */
typedef struct exec_load_t {
    size_t busy, queued, jobs, jobs_queued, jobs_running;
} exec_load_t;
void exec_load(exec_load_t *out);
/* Publishes a job's status event (events.c implements). */
void events_job(const json_t *rec);
int events_start(char *err, size_t errsz);
void events_stop(void);

#endif
