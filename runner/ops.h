/* ops: the runner's op table (see ops.c). */
#ifndef RUNNER_OPS_H
#define RUNNER_OPS_H

#include "ib_daemon.h"
#include "runner.h"

extern const ib_op runner_ops[];
extern const size_t runner_nops;

/* pages.render (pages.c): one page of a drive document as an image, for the web playground. */
ib_code pages_render_op(void *state, const ib_request *req, ib_reply *rep);

int ops_resume(json_t *rec, int lock_fd, char *err, size_t errsz);
/* Takes files of another (live) runner's batch job on this runner's idle workers. Takes rec. */
int ops_help(json_t *rec, char *err, size_t errsz);

#endif
