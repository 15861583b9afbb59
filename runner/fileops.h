/* fileops: the work of files/copy, files/extract and solutions/deployed jobs (see fileops.c). */
#ifndef RUNNER_FILEOPS_H
#define RUNNER_FILEOPS_H

#include "runner.h"

/* Checks a copy/extract request before its job is created: both paths the caller's, the source there, the
 * destination not. An extract without dst_path (or with "") gets its default written into args: the archive's
 * path without its extension. */
/* kind "deploy": args {solution_path}, an admin's, checked to be a file; the archive itself is checked by the job. */
ib_code fileops_check(const char *kind, json_t *args, const ib_caller *who, ib_reply *rep);
/* The deployed solutions `who` may see: [{name, version, owner, visibility, deployed, deployer, sha256,
 * solution_path}] (new reference). */
json_t *fileops_deployed(const ib_caller *who);
/* Does the work of a copy/extract/deploy job record ({kind, user, args}). 0, or -1 with a message. */
int fileops_run(const json_t *rec, char *err, size_t errsz);

#endif
