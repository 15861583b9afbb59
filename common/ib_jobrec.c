/* ib_jobrec: reading job records (see ib_jobrec.h). */
#include "ib_jobrec.h"

#include "ib_fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

/* A record holds at most a run_sync's inline results and a batch job's progress, a per-file result one file's
 * records; this only bounds a damaged one. */
#define RECORD_MAX (64u << 20)

static const char *const status_words[] = {"QUEUED", "RUNNING", "COMPLETE", "FAILED", "CANCELLED"};

const char *ib_job_status_word(ib_job_status s)
{
    return (s >= IB_JOB_QUEUED && s <= IB_JOB_CANCELLED) ? status_words[s] : "FAILED";
}

int ib_job_status_parse(const char *word, ib_job_status *out)
{
    for (int i = 0; word && i <= IB_JOB_CANCELLED; i++)
        if (!strcmp(word, status_words[i])) {
            *out = (ib_job_status)i;
            return 0;
        }
    return -1;
}

int ib_job_status_final(ib_job_status s)
{
    return s == IB_JOB_COMPLETE || s == IB_JOB_FAILED || s == IB_JOB_CANCELLED;
}

int ib_job_id_valid(const char *id)
{
    uuid_t u;
    return id && strlen(id) == IB_JOB_ID_LEN && uuid_parse(id, u) == 0;
}

json_t *ib_job_json_at(int dirfd, const char *name)
{
    size_t len;
    char *text = ib_read_file_at(dirfd, name, RECORD_MAX, &len);
    if (!text) return NULL;
    json_t *j = json_loadb(text, len, 0, NULL);
    free(text);
    if (!j) errno = EINVAL;
    return j;
}

json_t *ib_job_load(int jobs_fd, const char *id)
{
    if (!ib_job_id_valid(id)) return errno = EINVAL, NULL;
    char name[64];
    snprintf(name, sizeof name, "%s.json", id);
    return ib_job_json_at(jobs_fd, name);
}

json_t *ib_job_load_for(int jobs_fd, const char *id, const ib_caller *who, ib_reply *rep)
{
    if (!ib_job_id_valid(id)) {
        ib_fail(rep, IB_BAD_REQUEST, "job_id '%.80s' is not a job id (a UUID like 5eb7df69-7506-41b3-bd3a-eb69d8b8a36d)",
                id ? id : "");
        return NULL;
    }
    json_t *rec = jobs_fd >= 0 ? ib_job_load(jobs_fd, id) : (errno = ENOENT, NULL);
    if (!rec) {
        if (errno == ENOENT)
            ib_fail(rep, IB_NOT_FOUND, "job_id '%s' is not a known job", id);
        else
            ib_fail(rep, IB_INTERNAL, "job '%s' cannot be read: %s", id, strerror(errno));
        return NULL;
    }
    const char *owner = json_string_value(json_object_get(rec, "user"));
    if (!ib_caller_is_admin(who) && (!owner || !who || !who->user || strcmp(owner, who->user) != 0)) {
        json_decref(rec);
        ib_fail(rep, IB_FORBIDDEN, "job '%s' belongs to another user", id);
        return NULL;
    }
    return rec;
}

json_t *ib_job_cur_status(const json_t *rec)
{
    json_t *s = json_object();
    static const char *const keys[] = {"index", "total", "curMsg", "status", "curProgress", "finish_timestamp",
                                       "run_summary"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *v = json_object_get(rec, keys[i]);
        if (v) json_object_set(s, keys[i], v);
    }
    return s;
}

json_t *ib_job_status_reply(const json_t *rec)
{
    ib_job_status st = IB_JOB_QUEUED;
    ib_job_status_parse(json_string_value(json_object_get(rec, "status")), &st);
    json_t *d = json_object();
    json_object_set(d, "job_id", json_object_get(rec, "job_id"));
    json_object_set_new(d, "state", json_string(ib_job_status_final(st) ? "DONE" : "PENDING"));
    json_t *cur = ib_job_cur_status(rec);
    char *text = json_dumps(cur, JSON_COMPACT);
    json_decref(cur);
    json_object_set_new(d, "cur_status", json_string(text ? text : "{}"));
    free(text);
    if (ib_job_status_final(st)) {
        json_t *res = json_object();
        if (st == IB_JOB_COMPLETE) {
            json_object_set_new(res, "status", json_string("OK"));
        } else {
            json_object_set_new(res, "status", json_string("ERROR"));
            const char *msg = json_string_value(json_object_get(rec, "msg"));
            json_object_set_new(res, "msg", json_string(msg ? msg : ib_job_status_word(st)));
        }
        json_t *out = json_object_get(rec, "output_folder");
        if (out) json_object_set(res, "output_folder", out);
        json_object_set_new(d, "results", json_pack("[o]", res));
    }
    return d;
}

/* The job types the original product's clients name when they poll (its job service kept them apart). Here one
 * record answers for every kind of job, so the type picks nothing; a word outside the list is still refused,
 * as it would be there, rather than silently answered. */
static const char *const job_types[] = {"flow", "refiner", "job", "async", "group"};

ib_code ib_job_status_op(int jobs_fd, const json_t *args, const ib_caller *who, ib_reply *rep)
{
    const char *type = json_string_value(json_object_get(args, "type"));
    size_t t = 0, ntypes = sizeof job_types / sizeof job_types[0];
    while (type && t < ntypes && strcmp(type, job_types[t]) != 0) t++;
    if (type && t == ntypes)
        return ib_fail(rep, IB_BAD_REQUEST, "type: '%.64s' is not a job type (flow, refiner, job, async or group)",
                       type);
    json_t *rec = ib_job_load_for(jobs_fd, json_string_value(json_object_get(args, "job_id")), who, rep);
    if (!rec) return rep->code;
    json_t *d = ib_job_status_reply(rec);
    json_decref(rep->data);
    rep->data = d;
    json_decref(rec);
    return IB_OK;
}
