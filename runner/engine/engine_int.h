/* engine_int: what the run driver (steps.c) and the output writer (output.c) share. Internal to the engine.
 */
#ifndef IB_ENGINE_INT_H
#define IB_ENGINE_INT_H

#include "ib_doc.h"
#include "ib_engine.h"

#include <jansson.h>

/* {"text": layout text, "pages": [...]} of a document (see ib_engine.h). New reference. */
json_t *ib_out_doc_json(const ib_doc *doc, const ib_text *layout);
/* A file name fit for the output folder: its last segment, no control characters, no leading dot, at most
 * 200 bytes; "file" when nothing is left. */
void ib_out_safe_name(const char *file_name, char *out, size_t outsz);
/* Writes j as out_dirfd/folder/name (folder created, confined below out_dirfd; NULL folder: the top).
 * 0 or -1 with a message. */
int ib_out_write_json(int out_dirfd, const char *folder, const char *name, const json_t *j, char *err,
                      size_t errsz);

#endif
