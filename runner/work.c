/* work: the runner's use of the engine. Files of one job run concurrently on the pool, so each file gets its
 * own short-lived ib_run told which file of the job it is (its index and a unique output name); the batch file
 * is written once at the end from the per-file results the job kept. */
#include "runner.h"

#include "engine_int.h"
#include "ib_engine.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The output name of an input: its path below the input folder with '/' as "__" (so a/x.pdf and b/x.pdf never
 * write over each other), made safe, and "~<file index>" after it when ops.c found the name not unique in the
 * job (`mark`; rules in engine/output.c). */
static void out_base(const char *file_name, size_t file_index, int mark, char *out, size_t outsz)
{
    ib_out_job_base(file_name, out, outsz);
    if (mark) ib_out_base_mark(out, outsz, file_index);
}

_Thread_local long long work_deadline_ms;

/* One file through a short-lived run: the engine reads it (bytes) or records why it could not be had (why). */
static json_t *one_file(const solution *sol, const char *file_name, const void *bytes, size_t len, const char *why,
                        size_t file_index, int mark_name, const json_t *runtime_config, int out_dirfd,
                        const char *out_show, size_t *nrecords, size_t *nerrors)
{
    ib_engine_opts opts = {.runtime_config = runtime_config,
                           .out_dirfd = out_dirfd,
                           .out_prefix = out_show,
                           .binary_path = sol->binary_path,
                           .formula_max_bytes = (size_t)rcfg.formula_max_bytes,
                           .formula_max_ms = rcfg.formula_max_ms,
                           .record_max_output = (size_t)rcfg.max_record_output,
                           .deadline_ms = work_deadline_ms};
    ib_run *run = ib_run_new(sol->flow, &opts);
    char base[256], err[512] = "";
    out_base(file_name, file_index, mark_name, base, sizeof base);
    ib_run_set_file(run, (uint32_t)file_index, base);
    json_t *records = NULL;
    int rc = why ? ib_run_file_error(run, file_name, why, &records, err, sizeof err)
                 : ib_run_file(run, file_name, bytes, len, &records, err, sizeof err);
    ib_run_stats st;
    ib_run_get_stats(run, &st);
    *nrecords = st.records;
    *nerrors = st.runtime_errors;
    json_t *result = json_object();
    json_object_set_new(result, "file_name", json_string(file_name));
    json_object_set_new(result, "file_index", json_integer((json_int_t)file_index));
    json_object_set_new(result, "records", records ? records : json_array());
    /* an unreadable file is one record with an error: lift it to the file entry of the batch file too */
    json_t *first = json_array_get(records, 0);
    if (json_array_size(records) == 1 && json_object_get(first, "error") && !json_object_get(first, "results"))
        json_object_set(result, "error", json_object_get(first, "error"));
    /* and a record that ran into a limit fails its file as well (the job tells how many files failed) */
    size_t k;
    json_t *rec;
    json_array_foreach(records, k, rec) if (!json_object_get(result, "error") && json_object_get(rec, "error"))
        json_object_set(result, "error", json_object_get(rec, "error"));
    if (rc < 0) {
        json_object_set_new(result, "output_error", json_string(err));
        (*nerrors)++;
    }
    ib_run_free(run);
    return result;
}

json_t *work_run_file(const solution *sol, const char *file_name, const void *bytes, size_t len, size_t file_index,
                      int mark_name, const json_t *runtime_config, int out_dirfd, const char *out_show,
                      size_t *nrecords, size_t *nerrors)
{
    return one_file(sol, file_name, bytes, len, NULL, file_index, mark_name, runtime_config, out_dirfd, out_show,
                    nrecords, nerrors);
}

json_t *work_file_error(const solution *sol, const char *file_name, const char *why, size_t file_index,
                        int mark_name, int out_dirfd, const char *out_show, size_t *nrecords, size_t *nerrors)
{
    return one_file(sol, file_name, NULL, 0, why, file_index, mark_name, NULL, out_dirfd, out_show, nrecords,
                    nerrors);
}

int work_write_batch(int out_dirfd, const char *job_id, const char *binary_path, const json_t *file_results)
{
    if (out_dirfd < 0) return 0;
    json_t *batch = json_pack("{s:s, s:s, s:O}", "job_id", job_id, "binary_path", binary_path, "results",
                              (json_t *)file_results);
    char err[512];
    int rc = ib_out_write_json(out_dirfd, NULL, "batch.ibflowresults", batch, err, sizeof err);
    json_decref(batch);
    if (rc < 0) errno = EIO;
    return rc;
}

json_t *work_records(const json_t *file_results)
{
    json_t *out = json_array();
    size_t i;
    json_t *f;
    json_array_foreach(file_results, i, f) if (json_is_object(f)) json_array_extend(out, json_object_get(f, "records"));
    return out;
}
