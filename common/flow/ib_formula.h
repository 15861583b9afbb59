/* ib_formula: the refiner formula language. One function table, one parser and one typed tree, shared by the
 * flow compiler (common/, packager) and the evaluator (runner/engine), so both agree on every name, argument
 * count and pattern argument. Positions are 1-based lines and columns (columns count UTF-8 characters). */
#ifndef IB_FORMULA_H
#define IB_FORMULA_H

#include <jansson.h>
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#define IB_FORMULA_MAX_LEN 16384  /* bytes of one formula */
#define IB_FORMULA_MAX_DEPTH 64   /* nested calls and lists: bounds every recursive walk of a tree */
#define IB_FORMULA_MAX_NODES 4096 /* nodes of one formula */
#define IB_FORMULA_MAX_ARGS 64    /* arguments of one call, items of one list literal */
#define IB_REGEX_MAX_LEN 4096     /* bytes of one regular expression */
#define IB_NAME_MAX 64            /* identifiers: field and function names */

/* ---- the function table ---- */

typedef enum ib_fn {
    IB_FN_SCAN_RIGHT,
    IB_FN_SCAN_BELOW,
    IB_FN_SCAN_BOX,
    IB_FN_REGEX,
    IB_FN_REGEX_ALL,
    IB_FN_REPLACE,
    IB_FN_MATCHES,
    IB_FN_CLEAN,
    IB_FN_TRIM,
    IB_FN_UPPER,
    IB_FN_LOWER,
    IB_FN_TITLE,
    IB_FN_CONCAT,
    IB_FN_SUBSTR,
    IB_FN_LEN,
    IB_FN_SPLIT,
    IB_FN_JOIN,
    IB_FN_NTH,
    IB_FN_LINES,
    IB_FN_LINE_CONTAINING,
    IB_FN_BETWEEN,
    IB_FN_READING_TEXT,
    IB_FN_NUMBER,
    IB_FN_INT,
    IB_FN_DATE,
    IB_FN_BOOL,
    IB_FN_IF,
    IB_FN_COALESCE,
    IB_FN_EQ,
    IB_FN_CONTAINS,
    IB_FN_NOT,
    IB_FN_AND,
    IB_FN_OR,
    IB_FN_CONFIG,
    IB_FN_TABLE,
    IB_FN_LINE_ITEMS,
    IB_FN_COLUMN,
    IB_FN_ROWS_WHERE,
    IB_FN_COUNT,
    IB_FN_SUM,
    IB_FN_TABLES,
    IB_FN_COUNT_
} ib_fn;

#define IB_ARGS_ANY 255

typedef struct ib_func_info {
    ib_fn id;
    const char *name;           /* canonical spelling; lookup ignores case */
    uint8_t min_args, max_args; /* max_args IB_ARGS_ANY: variadic */
    uint8_t regex_arg;          /* 1-based index of the argument that is a regular expression; 0: none */
    uint8_t group_arg;          /* 1-based index of the argument naming a group of that regex; 0: none */
    const char *signature;      /* for messages and documentation */
    const char *doc;            /* one line for the formula reference (docs/solution-format.md is made from it) */
} ib_func_info;

const ib_func_info *ib_func_lookup(const char *name, size_t len); /* NULL when unknown */
const ib_func_info *ib_func_get(ib_fn id);

/* ---- the tree ---- */

typedef enum ib_node_kind { IB_NODE_STR, IB_NODE_NUM, IB_NODE_LIST, IB_NODE_NAME, IB_NODE_CALL } ib_node_kind;

typedef enum ib_name_kind {
    IB_NAME_UNRESOLVED,
    IB_NAME_INPUT_COL,
    IB_NAME_FILENAME,
    IB_NAME_CLASS,
    IB_NAME_FIELD
} ib_name_kind;

typedef struct ib_node {
    ib_node_kind kind;
    uint32_t line, col;
    char *text; /* STR: the literal's value (may hold any byte but NUL); NAME, CALL: the identifier as written
                 */
    size_t len; /* bytes of text */
    double num; /* NUM */
    ib_fn fn;   /* CALL, after ib_formula_check */
    ib_name_kind name_kind; /* NAME, after ib_formula_check */
    uint32_t field;         /* NAME of kind IB_NAME_FIELD: index of the field in its program */
    struct ib_node **kids;  /* CALL: arguments; LIST: items */
    uint32_t nkids;
    /* STR in a pattern position of a call: the compiled (and, when possible, JIT-compiled) pattern, owned by
     * the node. Read-only once compiled, so threads share it (each uses its own match data). */
    pcre2_code *rx;
} ib_node;

typedef struct ib_formula_err {
    uint32_t line, col; /* 0 when the error has no position */
    char msg[512];
} ib_formula_err;

/* Parses a formula of len bytes. Returns the tree (free with ib_node_free) or NULL with err set: syntax
 * errors, and the bounds above. Names and calls are not checked yet. */
ib_node *ib_formula_parse(const char *text, size_t len, ib_formula_err *err);

/* Resolves a name that is not INPUT_COL, FILENAME or CLASS: the index of a field, or -1 when unknown. */
typedef int (*ib_name_resolver)(void *ctx, const char *name, size_t len);

/* Checks a parsed tree: known functions and their argument counts, known names (through resolve), literal
 * patterns compile (they are compiled into node->rx), literal groups exist in their literal pattern, literal
 * date orders. 0, or -1 with err set at the offending node. */
int ib_formula_check(ib_node *root, ib_name_resolver resolve, void *ctx, ib_formula_err *err);

void ib_node_free(ib_node *n);

/* Calls fn(ctx, node) for each NAME node of kind IB_NAME_FIELD, in source order. Stops at and returns the
 * first non-zero result. */
int ib_node_each_field_ref(const ib_node *n, int (*fn)(void *ctx, const ib_node *ref), void *ctx);

/* The tree as JSON (for the .ibflowbin and for debugging): {"at":[line,col], "str"|"num"|"name": v} or
 * {"at":..., "call": name, "args": [...]} or {"at":..., "list": [...]}. New reference. */
json_t *ib_node_to_json(const ib_node *n);

/* ---- table() options ---- */

/* The options of table(doc, header, end, options): a JSON object, checked the same way when the flow is
 * compiled (a literal) and when a formula computes it at run time: "columns":   ["Title", ...] the header
 * columns to return, in this order; or {"Title": "name", ...} the same, renamed. A title is compared with the
 * header's titles ignoring case and repeated spaces. "key":       the column (a title or its new name) whose
 * non-empty cell starts a row; lines with it empty continue the row above (multi-line cells). "row_start": a
 * regular expression: a line it matches starts a row, others continue the row above. "bounds":    [x, ...]
 * explicit column boundaries, ascending, in the document's box units (points for PDF and OCR, character
 * columns for text): n boundaries make n + 1 columns. "continues": true: on the next page the rows go on from
 * the top when the header is not repeated there. "max_gap":   the white space between two lines, in line
 * heights, that ends the rows on a page (default 2.5).
 */
#define IB_TABLE_MAX_TITLES 64

typedef struct ib_table_opts {
    char *titles[IB_TABLE_MAX_TITLES]; /* "columns": the header titles taken, in output order (malloc'd) */
    char *names[IB_TABLE_MAX_TITLES];  /* their output names (malloc'd; the title when not renamed) */
    size_t ncolumns;                   /* 0: every header column, under its own title */
    char *key;                         /* NULL: none */
    char *row_start;                   /* NULL: none */
    double bounds[IB_TABLE_MAX_TITLES];
    size_t nbounds;
    int continues;
    double max_gap; /* line heights */
} ib_table_opts;

/* Parses options text (len bytes). 0, or -1 with a message naming the option at fault in msg. row_start is
 * compiled to check it, not kept compiled. */
int ib_table_opts_parse(const char *text, size_t len, ib_table_opts *o, char *msg, size_t msgsz);
void ib_table_opts_free(ib_table_opts *o);
/* Whether two column titles are the same: case ignored, runs of white space equal to one space, ends trimmed.
 */
int ib_table_title_eq(const char *a, const char *b);

/* ---- regular expressions ---- */

/* Compiles a pattern the way every regex of a flow is compiled (UTF-8, invalid UTF-8 in subjects allowed,
 * PCRE syntax, no implicit multiline: `^` is the start of the text unless the pattern says (?m)), and
 * JIT-compiles it when the platform allows. NULL with "invalid regular expression: <PCRE2 message> at offset
 * N" in msg (and the byte offset in *erroffset) on error. */
pcre2_code *ib_regex_compile(const char *pattern, size_t len, char *msg, size_t msgsz, size_t *erroffset);

/* Bounds of one match, set in every match context the engine uses: no catastrophic pattern stalls a runner.
 */
#define IB_REGEX_MATCH_LIMIT 1000000u
#define IB_REGEX_DEPTH_LIMIT 10000u

#endif
