/* ib_package: the checks an .ibsolution passes before it is published or deployed, in one place: a verified zip
 * (ib_zip limits, names, sizes, CRCs), a valid package.json, and a <name>.ibflowbin that decodes and was compiled
 * for that name and version. */
#ifndef IB_PACKAGE_H
#define IB_PACKAGE_H

#include "ib_zip.h"

#include <jansson.h>
#include <stddef.h>

/* The archive's manifest (new reference) when the archive at fd passes every check; NULL with why in err (no
 * path in it: "archive has no 'package.json'", "'x.ibflowbin' is not a valid compiled flow: ..."). */
json_t *ib_package_verify(int fd, const ib_zip_limits *lim, char *err, size_t errsz);

#endif
