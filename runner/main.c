/* ibsol-runner: executes solution flows (solution.run, solution.run_sync, jobs.*). main() declares the runner's
 * settings and hands its op table to the daemon skeleton; `--once SOLUTION FILE...` runs the engine with no
 * daemon at all. */
#include "ib_daemon.h"
#include "ib_engine.h"
#include "ib_fs.h"
#include "ib_path.h"
#include "ib_log.h"
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

runner_cfg rcfg;
notify_cfg runner_notify;
int runner_drive_fd = -1, runner_data_fd = -1;
static char outbox[PATH_MAX];
static int webhook_allow_private; /* runner_notify.allow_private */

#define DEFAULT_(n) #n
#define DEFAULT(n) DEFAULT_(n) /* an engine default as the setting's default text */

static const ib_cfg runner_cfg_table[] = {
    {"instance", IB_CFG_STR, "", 0, 0, &rcfg.instance, "this runner's name in job records and heartbeats (default host-pid)"},
    {"pool", IB_CFG_INT, "0", 0, 256, &rcfg.pool, "files processed at once (0 = number of cores)"},
    {"max_jobs", IB_CFG_INT, "256", 1, 100000, &rcfg.max_jobs, "unfinished jobs of its own (then another runner; 503 when all are full)"},
    {"max_files", IB_CFG_INT, "100000", 1, 10000000, &rcfg.max_files, "files in one job"},
    {"max_file", IB_CFG_INT, "268435456", 1, 1LL << 34, &rcfg.max_file, "bytes of one input file"},
    {"sync_timeout_ms", IB_CFG_INT, "100000", 100, 86400000, &rcfg.sync_timeout_ms,
     "run_sync answers 504 past this (keep below IBSOL_REQUEST_TIMEOUT_MS)"},
    {"heartbeat_ms", IB_CFG_INT, "2000", 50, 60000, &rcfg.heartbeat_ms,
     "heartbeat and orphaned-job check interval"},
    {"resume", IB_CFG_BOOL, "true", 0, 0, &rcfg.resume, "resume the jobs of a lost runner (else end them FAILED)"},
    {"sendmail", IB_CFG_STR, "", 0, 0, &rcfg.sendmail, "sendmail-compatible command for notification emails"},
    {"mail_from", IB_CFG_STR, "ibsol@localhost", 0, 0, &rcfg.mail_from, "From: address of notification emails"},
    {"job_retention_s", IB_CFG_INT, "0", 0, 315360000, &rcfg.job_retention_s,
     "remove jobs that ended and are older than this many seconds, with run_sync's default output folders and "
     "outbox emails as old (0: keep)"},
    {"formula_max_bytes", IB_CFG_INT, DEFAULT(IB_ENGINE_FORMULA_MAX_BYTES), 65536, 1LL << 40, &rcfg.formula_max_bytes,
     "bytes of formula values one record may hold at once (a field past it fails)"},
    {"formula_max_ms", IB_CFG_INT, DEFAULT(IB_ENGINE_FORMULA_MAX_MS), 1, 86400000, &rcfg.formula_max_ms,
     "milliseconds one record's formulas may run (the field running then, and those after it, fail)"},
    {"max_record_output", IB_CFG_INT, DEFAULT(IB_ENGINE_RECORD_MAX_OUTPUT), 4096, 1LL << 40, &rcfg.max_record_output,
     "bytes of one record's field results as JSON (a field that would pass it fails)"},
    {"max_job_output", IB_CFG_INT, "1073741824", 4096, 1LL << 50, &rcfg.max_job_output,
     "bytes of one job's results as JSON (past it no file more is started and the job ends FAILED)"},
    {"webhook_retries", IB_CFG_INT, "7", 0, 20, &rcfg.webhook_retries, "webhook retries after the first attempt"},
    {"webhook_backoff_ms", IB_CFG_INT, "500", 1, 600000, &rcfg.webhook_backoff_ms,
     "first webhook retry delay (doubles each time)"},
    {"webhook_allow_private", IB_CFG_BOOL, "false", 0, 0, &webhook_allow_private,
     "webhooks may reach loopback, link-local, private, multicast and reserved addresses"},
};

static int runner_start(void **state, char *err, size_t errsz)
{
    char path[PATH_MAX];
    if (!rcfg.instance[0]) {
        char host[200] = "runner";
        gethostname(host, sizeof host - 1);
        snprintf(path, sizeof path, "%s-%d", host, (int)getpid());
        free(rcfg.instance);
        rcfg.instance = strdup(path);
    }
    ib_daemon_control_name(rcfg.instance); /* ibsol-op --instance NAME runner ... */
    if (rcfg.pool == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        rcfg.pool = n > 0 ? n : 2;
    }
    /* run_sync holds a request context for its whole run: serve many at once unless told otherwise */
    if (!getenv("IBSOL_WORKERS")) ib_set.workers = 64;
    snprintf(path, sizeof path, "%s/jobs", ib_set.data);
    if (jobs_init(path) < 0) {
        snprintf(err, errsz, "IBSOL_DATA: cannot open jobs folder '%s': %s", path, strerror(errno));
        return -1;
    }
    runner_data_fd = open(ib_set.data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    runner_drive_fd = ib_drive_open_root(ib_data_path("drive", path, sizeof path));
    if (runner_drive_fd < 0 || runner_data_fd < 0) {
        snprintf(err, errsz, "IBSOL_DATA: cannot open '%s': %s", ib_set.data, strerror(errno));
        return -1;
    }
    ib_data_path("outbox", outbox, sizeof outbox);
    ib_mkdirs(outbox, 0755);
    runner_notify = (notify_cfg){.outbox_dir = outbox,
                                 .sendmail = rcfg.sendmail,
                                 .mail_from = rcfg.mail_from,
                                 .webhook_retries = (int)rcfg.webhook_retries,
                                 .webhook_backoff_ms = (int)rcfg.webhook_backoff_ms,
                                 .webhook_timeout_ms = 10000,
                                 .allow_private = webhook_allow_private};
    notify_global_init();
    if (exec_start(err, errsz) < 0) return -1;
    if (janitor_start(err, errsz) < 0) return -1;
    return events_start(err, errsz);
}

static void runner_stop(void *state)
{
    notify_abort(); /* a webhook in its backoff must not hold the shutdown for minutes */
    events_stop();
    janitor_stop();
    exec_stop();
    solutions_fini();
    notify_global_cleanup();
    jobs_fini();
    if (runner_drive_fd >= 0) close(runner_drive_fd);
    if (runner_data_fd >= 0) close(runner_data_fd);
}

static int runner_alt_main(int argc, char **argv)
{
    if (strcmp(argv[1], "--once") != 0) {
        ib_error(NULL, "unknown argument '%s' (see --help)", argv[1]);
        return 2;
    }
    return ib_once_main(argc - 1, argv + 1);
}

int main(int argc, char **argv)
{
    const ib_daemon_def def = {
        .name = "runner",
        .about = "executes solution flows on documents (solution.run, solution.run_sync, jobs.*); "
                 "--once SOLUTION FILE... runs one solution without daemons",
        .service = IB_SVC_RUNNER,
        .ops = runner_ops,
        .nops = runner_nops,
        .cfg = runner_cfg_table,
        .ncfg = sizeof runner_cfg_table / sizeof runner_cfg_table[0],
        .start = runner_start,
        .stop = runner_stop,
        .alt_main = runner_alt_main,
    };
    return ib_daemon_main(&def, argc, argv);
}
