/* eval_int: what eval.c (tree walking, conversions, field results) and func*.c (the formula functions) share.
 * Internal to the engine. */
#ifndef IB_EVAL_INT_H
#define IB_EVAL_INT_H

#include "ib_eval.h"

#include <pcre2.h>

#define IB_EVAL_RX_CACHE 64 /* run-time patterns (not literals) compiled per record */

typedef struct ib_rx_entry {
    char *pattern;
    size_t len;
    pcre2_code *code; /* NULL: the pattern does not compile; err says why */
    char err[256];
} ib_rx_entry;

struct ib_eval {
    ib_eval_env env;
    ib_text layout, reading;
    int have_layout, have_reading;
    pcre2_match_context *mctx;
    ib_rx_entry rx[IB_EVAL_RX_CACHE];
    size_t nrx;
    ib_value *const *fields; /* of the program being evaluated */
    size_t nfields;
    /* The record's budget (ib_eval_env): bytes of values held at once, and a deadline on CLOCK_MONOTONIC. */
    ib_vbudget budget;
    long long deadline_ms;    /* 0: none */
    int deadline_is_run;      /* the deadline is the run's own (env.deadline_ms), not max_ms's */
    int timed_out;            /* the deadline has passed: nothing more is evaluated in this record */
    int timed_out_in;         /* ... and it passed while this field was being evaluated (not before it) */
    const char *field;        /* the field being evaluated (ib_eval_program), for messages; may be NULL */
    char limit_msg[320];      /* the first limit the record ran into ("" none) */
};

/* Whether the record's budget is spent: its values went past env.max_bytes during this field, or its time is
 * up. Cheap enough for every function call and loop turn (the clock is read every few calls). */
int ib_eval_spent(ib_eval *ev);
/* The error value of a spent budget, naming the field and the limit (and noting the record's first). */
ib_value *ib_eval_spent_error(ib_eval *ev);

/* A value as a string value: STR as is (new reference), DOC as its layout text, numbers and booleans
 * formatted, lists one item a line; NULL and ERROR returned as they are (new reference). */
ib_value *ib_to_str(ib_eval *ev, ib_value *v);
/* Truthiness: null, false, 0, "", a string reading as false, an empty list are false. */
int ib_truthy(const ib_value *v);
/* The reading-order text of the record's document (borrowed). */
const ib_text *ib_eval_reading(ib_eval *ev);

/* Calls a function node: evaluates its arguments (lazily for if/coalesce/and/or) and applies it. */
ib_value *ib_call(ib_eval *ev, const ib_node *call);

/* A JSON string of text that may hold invalid UTF-8 (replaced by U+FFFD). New reference. */
json_t *ib_json_text(const char *s, size_t len);
/* s for an error message: at most 40 bytes ("..." after), control characters as spaces. */
void ib_quote(const char *s, char *buf, size_t bufsz);

/* Adds to v the boxes of the words that the bytes [start, end) of a mapped text cover. */
void ib_prov_from_map(ib_eval *ev, ib_value *v, const ib_text *map, size_t start, size_t end);

#endif
