/* ib_package: solution packages. Making one from a content folder (the packager's solution/create and `ibsol
 * package` share it: same bytes, same errors), and the checks an .ibsolution passes before it is published or
 * deployed: a verified zip (ib_zip limits, names, sizes, CRCs), a valid package.json, and a <name>.ibflowbin that
 * decodes and was compiled for that name and version. */
#ifndef IB_PACKAGE_H
#define IB_PACKAGE_H

#include "ib_zip.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* A content folder checked and compiled, ready to be written. */
typedef struct ib_package {
    json_t *manifest;
    const char *name, *version; /* in manifest */
    char *flowbin;              /* <name>.ibflowbin, encoded for name and version */
    size_t flowbin_len;
} ib_package;

#define IB_PACKAGE_INTERNAL (-2)

/* Reads package.json and compiles the flow of the content folder dirfd: flow.json with its refiners, or else
 * exactly one compiled .ibflowbin anywhere in it (the original product's layout), re-encoded for the manifest's
 * name and version. `what` names the folder in messages ("content_folder '/a/b'"); at most max_files files are
 * looked at. 0, -1 (the folder's fault) or IB_PACKAGE_INTERNAL, with a message in err. */
int ib_package_prepare(int dirfd, const char *what, uint64_t max_files, ib_package *pkg, char *err, size_t errsz);
/* "<name>-<version>.ibsolution". */
void ib_package_file_name(const ib_package *pkg, char *out, size_t outsz);
/* Writes the archive of the folder with the compiled flow to path (ib_zip_write_dir). 0 or -1 (errno kept). */
int ib_package_write(int dirfd, const ib_package *pkg, const char *path, int level, const ib_zip_limits *limits,
                     char *err, size_t errsz);
void ib_package_clear(ib_package *pkg);

/* The archive's manifest (new reference) when the archive at fd passes every check; NULL with why in err (no
 * path in it: "archive has no 'package.json'", "'x.ibflowbin' is not a valid compiled flow: ..."). */
json_t *ib_package_verify(int fd, const ib_zip_limits *lim, char *err, size_t errsz);

#endif
