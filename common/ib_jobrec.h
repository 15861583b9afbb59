/* ib_jobrec: a job record as its readers see it. The runners write one JSON record per job under <data>/jobs
 * (runner/jobs.h has the layout); this is what reading one takes: the status words, the id's shape, the owner
 * check and the jobs/status reply. The runner answers with it, and so does the gateway, which serves
 * jobs/status from the shared data root itself: it is the call clients poll, and it needs no runner (a busy
 * runner is not interrupted by polls, and a round trip through nng cost more than the read). */
#ifndef IB_JOBREC_H
#define IB_JOBREC_H

#include "ib_err.h"

#include <jansson.h>

#define IB_JOB_ID_LEN 36

typedef enum ib_job_status { IB_JOB_QUEUED, IB_JOB_RUNNING, IB_JOB_COMPLETE, IB_JOB_FAILED, IB_JOB_CANCELLED } ib_job_status;

const char *ib_job_status_word(ib_job_status s);
int ib_job_status_parse(const char *word, ib_job_status *out);
int ib_job_status_final(ib_job_status s);

/* 1 when id has the UUID shape (so it can be used as a file name). */
int ib_job_id_valid(const char *id);

/* One JSON document of a job (its record, a file's result) from dirfd; NULL with errno (EINVAL: not JSON). */
json_t *ib_job_json_at(int dirfd, const char *name);
/* Loads <id>.json from the jobs folder; NULL with errno (ENOENT: unknown, EINVAL: not a record or a job id). */
json_t *ib_job_load(int jobs_fd, const char *id);
/* Loads <id>.json from the jobs folder for `who`, answering the API's errors: malformed id -> 400, unknown ->
 * 404, another user's job (caller not admin) -> 403. NULL then, with rep filled. */
json_t *ib_job_load_for(int jobs_fd, const char *id, const ib_caller *who, ib_reply *rep);

/* The public status object of a record (what cur_status holds): index, total, curMsg, status, curProgress,
 * finish_timestamp, run_summary. New reference. */
json_t *ib_job_cur_status(const json_t *rec);
/* The jobs/status reply data for a record: job_id, state, cur_status (as a JSON string), results once final. */
json_t *ib_job_status_reply(const json_t *rec);

/* The jobs.status op on already checked args (job_id, type): fills rep's data or its error. */
ib_code ib_job_status_op(int jobs_fd, const json_t *args, const ib_caller *who, ib_reply *rep);

#endif
