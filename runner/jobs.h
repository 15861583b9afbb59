/* jobs: the job records under <data>/jobs, shared by every runner instance, so any runner answers for any job
 * and a restart loses nothing. One JSON record per job (<id>.json), replaced atomically at each change;
 * per-file results in <id>.d/<index>.json as each file finishes, so a resumed job never redoes or loses a
 * finished file (a run_sync job, never resumed, keeps them in its final record as "file_results"); a cancel
 * marker <id>.cancel; an index of unfinished jobs (active/<id>), of running batch jobs other runners may help
 * with (shared/<id>), and one per user (users/<user>/<created>.<id>). The runner that owns a job holds flock on
 * <id>.lock from creation to the end: the kernel drops it when that runner dies, which is how the others find
 * orphaned jobs. */
#ifndef RUNNER_JOBS_H
#define RUNNER_JOBS_H

#include "ib_err.h"
#include "ib_jobrec.h"

#include <jansson.h>
#include <time.h>


/* Opens (creating) the jobs folder. 0 or -1 with errno. */
int jobs_init(const char *jobs_dir);
void jobs_fini(void);
/* The jobs folder (for the readers in ib_jobrec). */
int jobs_dir_fd(void);

/* A new random (v4) UUID, lower case. */
void job_id_new(char out[IB_JOB_ID_LEN + 1]);

/* Writes the record atomically (its "job_id" names it). 0 or -1 with errno. */
int job_save(const json_t *rec);
/* Loads a record; NULL with errno (ENOENT unknown). */
json_t *job_load(const char *id);

/* Loads the record for `who`, answering the API's errors: malformed id -> 400, unknown -> 404, another
 * user's job (caller not admin) -> 403. NULL then, with rep filled. */
json_t *job_load_for(const char *id, const ib_caller *who, ib_reply *rep);

/* Takes the job's owner lock: returns the fd holding it, or -1 (errno EWOULDBLOCK: someone owns it). */
int job_lock(const char *id);
void job_unlock(int fd);

/* Index of unfinished jobs and per-user index (of the record's job_id, user and created): job_mark_active adds
 * to both; job_index_user, for a job whose record is saved and final, to the user's only. */
int job_mark_active(const json_t *rec);
int job_index_user(const json_t *rec);
void job_mark_inactive(const char *id);
/* Ids of unfinished jobs (a new list of strings). */
json_t *jobs_active(void);
/* Index of running batch jobs whose files other runners may take (shared/<id>), so an idle runner looks at
 * those only, not at every unfinished job. job_mark_inactive removes a job from it too. */
void job_mark_shared(const char *id);
/* Out of the shared index only, at the start of the job's end: its files are all taken, and an idle runner that
 * looked at it now would rebuild it for nothing while the end runs. */
void job_unmark_shared(const char *id);
json_t *jobs_shared(void);
int job_is_shared(const char *id);
/* The user's jobs (records, newest first, at most `limit`; only those records are read). `after`: a cursor from
 * an earlier page (NULL: from the newest); the page holds only jobs older than it, so jobs created meanwhile
 * never shift a page. `next` gets the cursor of the following page, or "" when this one is the last. */
#define JOB_CURSOR_MAX (16 + 1 + IB_JOB_ID_LEN + 1)
json_t *jobs_of_user(const char *user, size_t limit, const char *after, char next[JOB_CURSOR_MAX]);
/* 1 when cursor has the shape of a jobs_of_user cursor (16 hex digits, '.', a job id). */
int job_list_cursor_ok(const char *cursor);

/* Per-file results. */
int job_file_save(const char *id, size_t index, const json_t *file_result);
/* A list of `total` items: each finished file's result or null. */
json_t *job_files_load(const char *id, size_t total);
/* Which of `total` files have a saved result (1 each), from one listing of the folder, no result read (a helper
 * needs no more); NULL when out of memory. Free with free(). */
unsigned char *job_files_done(const char *id, size_t total);
/* The index of a per-file result's name ("<index>.json"): 1 and *index set, or 0 for any other name. */
int job_result_index(const char *name, size_t *index);

/* Files of one job may be processed by several runners (the owner and idle helpers). A file is taken by creating
 * <id>.d/<index>.claim exclusively and holding flock on it until its result is saved. job_claim returns the fd
 * for job_file_save_claimed, or -1 (EEXIST: someone has claimed it). */
int job_claim(const char *id, size_t index);
/* Saves file index's result into its claim and renames the claim to the result's name (<index>.json): the
 * result appears whole, and a claim costs no file of its own to make and later remove. Closes claim_fd (the
 * claim is released either way: a claim left unlocked by a failed save is stale, and the file is done again). */
int job_file_save_claimed(const char *id, size_t index, const json_t *file_result, int claim_fd);
/* For a claimed file with no result yet: 1 while its claimant holds the claim, 0 when the claimant is gone (the
 * stale claim is then removed, so the file can be claimed again). */
int job_claim_alive(const char *id, size_t index);
/* One file's saved result, or NULL. */
json_t *job_file_load(const char *id, size_t index);

/* Other per-job documents written once (e.g. "inputs": the list of input names, kept out of the record so
 * progress saves stay small). */
int job_doc_save(const char *id, const char *what, const json_t *doc);
json_t *job_doc_load(const char *id, const char *what);

/* After the job's final save: removes its lock and cancel marker (the lock is still held by the caller until it
 * closes it; a janitor only looks at unfinished jobs, and this one no longer is). */
void job_markers_remove(const char *id);
/* A job whose creation failed (e.g. the disk is full): removes whatever of it was written (record, per-file
 * folder, markers, active entry), so nothing half-made is left. The caller still holds and closes its lock. */
void job_discard(const char *id);

/* Retention: removes jobs that ended and were created before `before` (Unix time), at most `max`: the record,
 * per-file results, markers and index entry. take(rec) is asked first for each: 0 keeps the job for now, else
 * it has removed what the caller owns (outputs) and the rest goes. Unfinished jobs are never touched; one runner
 * at a time does this (a lock under jobs/). Returns how many were removed. */
size_t jobs_expire(double before, size_t max, int (*take)(const json_t *rec));

int job_cancel_request(const char *id);
int job_cancel_requested(const char *id);


double job_now(void); /* Unix time, seconds with fraction */
/* The CLOCK_REALTIME time ms milliseconds from now, for pthread_cond_timedwait. */
struct timespec job_deadline(long long ms);

#endif
