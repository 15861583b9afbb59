/* engine_int: what the run driver (steps.c) and the output writer (output.c) share. Internal to the engine.
 */
#ifndef IB_ENGINE_INT_H
#define IB_ENGINE_INT_H

#include "ib_doc.h"
#include "ib_engine.h"

#include <jansson.h>

/* A file name fit for the output folder: its last segment, no control characters, no leading dot, at most
 * 200 bytes; "file" when nothing is left. */
void ib_out_safe_name(const char *file_name, char *out, size_t outsz);
/* Output names of a job's inputs (rules in output.c): the readable base of an input path ('/' as "__", then
 * ib_out_safe_name); whether a base ends in "~<digits>"; appending "~<index>" to a base in a buffer of outsz. */
void ib_out_job_base(const char *rel, char *out, size_t outsz);
int ib_out_base_marked(const char *base);
void ib_out_base_mark(char *base, size_t outsz, size_t index);
/* Writes j as out_dirfd/folder/name (folder created, confined below out_dirfd; NULL folder: the top).
 * 0 or -1 with a message. */
int ib_out_write_json(int out_dirfd, const char *folder, const char *name, const json_t *j, char *err,
                      size_t errsz);

/* How output JSON is written (what ib_out_write_json passes to jansson, and what the .ibdoc writer matches). */
#define IB_OUT_JSON_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(7))

/* json_dump_callback(j, cb, data, flags)'s bytes, written faster (output.c), as if j were `depth` levels deep
 * in an indented tree. Flags other than JSON_INDENT, JSON_COMPACT, JSON_PRESERVE_ORDER and JSON_REAL_PRECISION
 * are handed to jansson (depth 0 only). 0 or -1. */
int ib_out_json_dump(const json_t *j, size_t flags, unsigned depth, json_dump_callback_t cb, void *data);

/* The body of a record's .ibdoc (its layout text and pages: most of its bytes, the same after every step) as
 * the first step wrote it, so the later steps copy it instead of writing it again. Kept only up to
 * IB_OUT_BODY_MAX (a long document's is tens of MB: that one is written again each time); `ready` once whole.
 * Zeroed to start; ib_out_body_free releases it. */
#define IB_OUT_BODY_MAX ((size_t)4 << 20)
typedef struct ib_out_body {
    char *bytes;
    size_t len, cap;
    int ready, too_big;
} ib_out_body;
void ib_out_body_free(ib_out_body *body);

/* One .ibdoc: the record's header, its document (pages of lines and words with boxes, see ib_engine.h) with its
 * layout text, and what the steps so far gave it (NULL when not yet). */
typedef struct ib_out_ibdoc {
    const char *file_name;
    uint32_t file_index;
    size_t record_index;
    const char *step;
    const ib_doc *doc;
    const ib_text *layout;
    const char *cls;
    const json_t *results, *validation;
    ib_out_body *body; /* NULL: not kept */
} ib_out_ibdoc;

/* Writes d as out_dirfd/folder/name, like ib_out_write_json. */
int ib_out_write_ibdoc(int out_dirfd, const char *folder, const char *name, const ib_out_ibdoc *d, char *err,
                       size_t errsz);

#endif
