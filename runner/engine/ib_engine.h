/* ib_engine: runs a compiled flow on input files, for the runner daemon (and `ibsol-runner --once`). No
 * messaging here: the daemon owns jobs, progress and the worker pool; the engine turns one input file into
 * records and writes the output folder.
 *
 * Usage: decode the .ibflowbin once per solution (ib_flow_decode, common/flow/ib_flow.h) and share it between
 * threads; per job: ib_run_new, ib_run_file for each input file (in order; the run numbers them), then
 * ib_run_finish (writes batch.ibflowresults), ib_run_free. One ib_run is used by one thread at a time.
 *
 * A record (what run_sync returns, one per document after split):
 *   {"output_file_path", "results": [{"key", "value", "field_type"[, "error"][, "page", "bbox"]}],
 *    "file_name", "file_index", "record_index"[, "class"][, "validation": [{"field", "rule", "msg"}]]}
 * A file that cannot be read gives one record with "error" and no "results"; the run goes on.
 *
 * Output folder (when opts.out_dirfd >= 0): s<N>_<step>/ per flow step holding each record's .ibdoc as of
 * that step (s1_process_files/<file>.ibdoc is the whole file's document; later steps <file>.ibdoc, or
 * <file>_<record_index>.ibdoc when the flow splits), and batch.ibflowresults:
 *   {"job_id", "binary_path", "results": [{"file_name", "file_index"[, "error"], "records": [...]}]}.
 * An .ibdoc is {"file_name", "file_index", "record_index", "step", "text" (layout), "pages": [{"page",
 * "width", "height", "words": [{"text", "bbox", "line", "block"[, "conf"]}], "lines": [{"text", "bbox",
 * "words": [word indices]}]}][, "class"][, "results"][, "validation"][, "error"]}. Every file is written to a
 * temporary name and renamed. */
#ifndef IB_ENGINE_H
#define IB_ENGINE_H

#include "ib_flow.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ib_engine_opts {
    const json_t *runtime_config; /* settings.runtime_config (object), borrowed for the run; NULL: none */
    uint32_t max_pages;           /* per input file; 0: the document model's ceiling */
    int out_dirfd;                /* the output folder (O_DIRECTORY), borrowed; -1: write nothing */
    const char *out_prefix;  /* how output_file_path names that folder ("/jay.doe/out/J"); NULL: relative */
    const char *job_id;      /* for batch.ibflowresults; may be NULL */
    const char *binary_path; /* the solution's path as the user named it; may be NULL */
    /* Limits of one record, so that a solution cannot take the runner's memory, disk or time (0: the default
     * below). A field that passes one fails with a message naming it and the limit, and the record gets that
     * message as its "error" (its other fields keep their values). */
    size_t formula_max_bytes;  /* bytes of formula values held at once while its fields are evaluated */
    long long formula_max_ms;  /* wall time of its formulas */
    size_t record_max_output;  /* bytes of its field results as JSON (what every output of it repeats) */
    long long deadline_ms;     /* ib_eval_clock_ms() time past which no formula runs (the run's own end); 0: none */
} ib_engine_opts;

#define IB_ENGINE_FORMULA_MAX_BYTES 67108864 /* 64 MiB */
#define IB_ENGINE_FORMULA_MAX_MS 30000
#define IB_ENGINE_RECORD_MAX_OUTPUT 33554432 /* 32 MiB */

typedef struct ib_run ib_run;

/* opts is copied (strings duplicated, runtime_config referenced). flow must outlive the run. */
ib_run *ib_run_new(const ib_flow *flow, const ib_engine_opts *opts);

/* Runs the flow on one file. *records (new reference) gets the file's records. Returns 0, or -1 when its
 * outputs could not be written (message in err; *records is still set). */
int ib_run_file(ib_run *run, const char *file_name, const void *bytes, size_t len, json_t **records,
                char *err, size_t errsz);

/* For runs whose files are processed concurrently, each by its own ib_run: the next file is file
 * `file_index` of the job and its outputs are named `out_base` (already unique within the job). */
void ib_run_set_file(ib_run *run, uint32_t file_index, const char *out_base);

/* Records a file the caller could not even hand over (bad base64, unreadable upload): one record with
 * "error". Same return convention as ib_run_file. */
int ib_run_file_error(ib_run *run, const char *file_name, const char *msg, json_t **records, char *err,
                      size_t errsz);

/* Writes batch.ibflowresults (when there is an output folder). 0 or -1 with a message. */
int ib_run_finish(ib_run *run, char *err, size_t errsz);

/* Every record so far, in order (borrowed). A record that ran into a limit of ib_engine_opts has "error" beside
 * its "results". */
json_t *ib_run_records(const ib_run *run);

typedef struct ib_run_stats {
    size_t files, records;
    size_t runtime_errors; /* unreadable files + failed fields */
} ib_run_stats;
void ib_run_get_stats(const ib_run *run, ib_run_stats *st);

void ib_run_free(ib_run *run);

/* `ibsol-runner --once SOLUTION FILE... [--out DIR] [--config KEY=VALUE]...`: SOLUTION is a content folder
 * (compiled on the spot) or an .ibsolution; prints {"records": [...]} as run_sync returns them. Exit status 0
 * when every file ran, 1 when the solution cannot be loaded or a file failed (its record has an "error"; the
 * records are still printed), 2 on bad usage.
 * argv[0] is "--once" or the program name followed by "--once". */
int ib_once_main(int argc, char **argv);

#endif
