/* ib_eval: evaluates refiner formulas (the trees of common/flow/ib_formula.h) on one record. Semantics:
 * - INPUT_COL is the record's document; where text is needed it is the layout rendering (ib_doc_layout_text),
 *   and regex matches on it point back at the words they cover (provenance).
 * - null means "no value": regex without a match, a missing anchor, an absent CONFIG key. Most functions
 *   return null for a null first argument; concat treats null as "".
 * - An error value (a run-time failure: number() of text without a number, a regex hitting its match limit)
 *   propagates through every function except coalesce, which skips it.
 * - A field's value is converted to its declared type (TEXT string, INT/FLOAT number, DATE "YYYY-MM-DD",
 *   BOOL, LIST); a value that cannot be converted makes the field fail.
 * One ib_eval serves one record on one thread; the flow it reads is shared and never written. */
#ifndef IB_EVAL_H
#define IB_EVAL_H

#include "ib_flow.h"
#include "ib_value.h"

#include <jansson.h>

typedef struct ib_eval_env {
    const ib_doc *doc;     /* the record's document; NULL: INPUT_COL is null */
    const char *file_name; /* FILENAME */
    const char *cls;       /* CLASS; NULL when the flow has no classify step */
    const json_t *config;  /* settings.runtime_config (object of strings) for CONFIG(); may be NULL */
    /* Limits of one record (0: none). A field that passes one fails with an error saying which, and
     * ib_eval_limit_msg tells the record's first: */
    size_t max_bytes;      /* bytes of formula values held at once (texts, lists, their boxes) */
    long long max_ms;      /* wall time of the record's formulas, from ib_eval_new */
    long long deadline_ms; /* CLOCK_MONOTONIC time (ms) past which nothing is evaluated: the run's own end */
    size_t max_output;     /* bytes of the record's results as compact JSON */
} ib_eval_env;

typedef struct ib_eval ib_eval;

ib_eval *ib_eval_new(const ib_eval_env *env); /* env's pointers are borrowed for the context's life */
void ib_eval_free(ib_eval *ev);

/* Evaluates a checked tree. fields[i] is the value of field i of the tree's program (NULL: not evaluated,
 * which dependency order rules out). Returns a new reference, never NULL. */
ib_value *ib_eval_node(ib_eval *ev, const ib_node *n, ib_value *const *fields, size_t nfields);

/* Converts a value to a field type (takes v, returns a new reference; an error value when it cannot). */
ib_value *ib_eval_coerce(ib_eval *ev, ib_value *v, ib_ftype type);

/* Evaluates every field of prog in dependency order. Returns the results in declaration order:
 * [{"key", "value", "field_type"[, "error"][, "page", "bbox"]}] (value "ERROR" and an error message for a
 * failed field; page is 1-based, bbox [x0, y0, x1, y1] in the document's box units). *nerrors counts failed
 * fields. New reference. */
json_t *ib_eval_program(ib_eval *ev, const ib_flow_program *prog, size_t *nerrors);

/* The JSON form of a field's (already converted) value; JSON null for null. New reference. */
json_t *ib_eval_json(ib_eval *ev, const ib_value *v, ib_ftype type);

/* A value as text (malloc'd): documents in layout, numbers as ib_num_format, booleans "true"/"false", lists
 * one item a line, null "". */
char *ib_eval_text(ib_eval *ev, const ib_value *v);

/* The record's layout text, computed once (borrowed; never NULL: empty when there is no document). */
const ib_text *ib_eval_layout(ib_eval *ev);

/* The first limit of env the record ran into, as a message naming the field and the limit; NULL when none. */
const char *ib_eval_limit_msg(const ib_eval *ev);

/* A limit in bytes for messages, as it is set: "1 GiB", "64 MiB", "512 KiB" or "1000 bytes". */
void ib_size_text(size_t n, char *buf, size_t bufsz);

/* CLOCK_MONOTONIC now, in ms (what deadline_ms is compared with). */
long long ib_eval_clock_ms(void);

#endif
