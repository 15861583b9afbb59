/* ib_ops: every operation of every service, declared once: its wire name, the service that answers it, and the
 * fields of its arguments. The gateway validates bodies against these tables (naming the bad field), the
 * services validate again (they can be called directly with ibsol-op), and the client stubs use the names. */
#ifndef IB_OPS_H
#define IB_OPS_H

#include "ib_err.h"

#include <jansson.h>

/* IB_SVC_NONE: a daemon with no service socket of its own (the gateway). */
typedef enum ib_service { IB_SVC_NONE = -1, IB_SVC_PACKAGER, IB_SVC_MARKETPLACE, IB_SVC_RUNNER, IB_SVC_COUNT } ib_service;

const char *ib_service_name(ib_service svc); /* "packager", "marketplace", "runner" */

#define IB_OP_PING "ping"
#define IB_OP_SOLUTION_CREATE "solution.create"
#define IB_OP_MARKET_PUBLISH "marketplace.publish"
#define IB_OP_MARKET_INSTALL "marketplace.install"
#define IB_OP_MARKET_UNINSTALL "marketplace.uninstall"
#define IB_OP_MARKET_UNPUBLISH "marketplace.unpublish"
#define IB_OP_MARKET_LIST "marketplace.list"
#define IB_OP_MARKET_INFO "marketplace.info"
#define IB_OP_SOLUTION_RUN "solution.run"
#define IB_OP_SOLUTION_RUN_SYNC "solution.run_sync"
#define IB_OP_JOBS_STATUS "jobs.status"
#define IB_OP_JOBS_RESULTS "jobs.results"
#define IB_OP_JOBS_CANCEL "jobs.cancel"
#define IB_OP_JOBS_LIST "jobs.list"
#define IB_OP_FILES_COPY "files.copy"
#define IB_OP_FILES_EXTRACT "files.extract"
#define IB_OP_FLOW_COMPILE "flow.compile"
#define IB_OP_PAGES_RENDER "pages.render"
#define IB_OP_SOLUTION_DEPLOY "solution.deploy"     /* POST /api/v2/solutions/deployed: a job */
#define IB_OP_SOLUTION_DEPLOYED "solution.deployed" /* GET /api/v2/solutions/deployed */
#define IB_OP_FLOW_RUN_BINARY "flow.run_binary"     /* POST flow/run_binary_async */
#define IB_OP_FLOW_RESULTS "flow.results"           /* POST flow_binary/results */

typedef enum ib_arg_type {
    IB_A_STRING = 1,
    IB_A_OBJECT,
    IB_A_ARRAY,
    IB_A_BOOL,
    IB_A_INT,
    IB_A_STRING_OR_ARRAY,
} ib_arg_type;

typedef struct ib_field_spec {
    const char *name;
    ib_arg_type type;
    int required;
} ib_field_spec;

typedef struct ib_op_spec {
    const char *op;
    ib_service service;
    const ib_field_spec *fields; /* terminated by {NULL} */
    /* Reply caching, declared here so both ends agree. `cached_by`: a data-root-relative stamp file; the
     * op's reply depends only on its arguments and the state that file stands for, so the gateway may keep
     * it until the file changes. `touches`: a successful call of this op rewrites that stamp file (done by
     * the daemon skeleton). */
    const char *cached_by;
    const char *touches;
    /* Reads only: when the service's connection is lost mid-request, the client may send it again. */
    int retry_safe;
} ib_op_spec;

/* Whether op may be sent again after a lost connection (ping and the read-only ops). */
int ib_op_retry_safe(const char *op);

/* Rewrites a stamp file (atomically: a new inode each time). 0 or -1. */
int ib_stamp_touch(const char *stamp);

/* The spec of an op, or NULL when no service has it. */
const ib_op_spec *ib_op_find(const char *op);

/* Checks args (a JSON object) against the op's fields: required present, types right; unknown fields are
 * ignored. Messages name the field: "'content_folder' is required", "'settings' must be an object". */
ib_code ib_args_check(const ib_op_spec *spec, const json_t *args, ib_reply *rep);

/* Small accessors for handlers after ib_args_check: the string value or NULL. */
const char *ib_arg_str(const json_t *args, const char *name);

#endif
