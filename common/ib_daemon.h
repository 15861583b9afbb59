/* ib_daemon: the one server skeleton every daemon hands its tables to. It owns configuration (shared settings +
 * the daemon's own table, environment, flags, --help), logging, signals and clean shutdown, the nng REP socket
 * (listening or dialing per settings) with `workers` contexts each serving one request at a time, and dispatch
 * through the daemon's {op, handler} table. Built in: `ping`. An op that another service answers, or that is
 * declared but not built in this daemon, is an error reply; a bad request never takes the daemon down. */
#ifndef IB_DAEMON_H
#define IB_DAEMON_H

#include "ib_config.h"
#include "ib_env.h"
#include "ib_ops.h"
#include "ib_settings.h"

/* A handler fills rep (code, msg, data) and returns rep->code. state is what start() produced. */
typedef ib_code (*ib_op_fn)(void *state, const ib_request *req, ib_reply *rep);

typedef struct ib_op {
    const char *name;
    ib_op_fn fn;
} ib_op;

typedef struct ib_daemon_def {
    const char *name;  /* "packager" */
    const char *about; /* one line for --help */
    ib_service service;
    const ib_op *ops;
    size_t nops;
    const ib_cfg *cfg; /* the daemon's own settings (may be NULL) */
    size_t ncfg;
    /* Called after configuration, before serving. -1 with a message refuses to start. */
    int (*start)(void **state, char *err, size_t errsz);
    void (*stop)(void *state);
    /* Optional: called instead of serving when arguments that are not settings remain (e.g. --once). */
    int (*alt_main)(int argc, char **argv);
} ib_daemon_def;

/* Runs the daemon until SIGINT/SIGTERM. Returns the process exit code (0 after a clean shutdown, 1 when it
 * could not start, with the reason logged naming the setting). */
int ib_daemon_main(const ib_daemon_def *def, int argc, char **argv);

/* The local tcp addresses of this daemon's service connections (a dialing daemon's heartbeats carry them, so
 * the gateway can drop the connections of a daemon it no longer hears from; see ib_pipes.h). */
size_t ib_daemon_addrs(char (*out)[64], size_t max);

/* A daemon that dials (runners) cannot be reached at its URL, where the gateway listens; it also listens on
 * ipc://DATA/run/<service>-<name>.ipc, which ibsol-op on the same host dials. name is the runner's instance
 * (default: the pid); start() sets it. */
void ib_daemon_control_name(const char *name);
/* That control URL for a daemon of svc named name (characters outside A-Za-z0-9._- become '_'), in buf; NULL
 * when it is too long for an ipc path. */
const char *ib_control_url(ib_service svc, const char *name, char *buf, size_t bufsz);

#endif
