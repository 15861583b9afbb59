/* ib_flow: the flow compiler, shared by the packager (compile a content folder) and the runner (load the
 * compiled form). Validates flow.json (known step types in a valid order, required keys), reads every refiner
 * program it names (confined to the content folder), checks field names (unique, identifier-like), types, and
 * parses every formula and regular expression, reporting file, field and position. The compiled form is the
 * `<name>.ibflowbin` stored in the package: the runner never re-reads sources.
 *
 * .ibflowbin format (JSON, UTF-8, deterministic bytes for one input):
 *   {"format": "ibflowbin", "format_version": 1,
 *    "solution": {"name": N, "version": V},
 *    "flow": {"steps": [...]},                       the validated steps, only known keys, in order
 *    "programs": {"refiners/x.ibrefiner": {"fields": [{"name", "type", "formula", "tree"}], "order":
 * [names]}}} "tree" is the parsed formula (ib_node_to_json). Decoding trusts nothing: it re-validates the
 * flow, re-parses and re-checks every formula and requires the stored tree to equal the re-parsed one.
 *
 * A compiled flow is immutable and may be shared by threads. */
#ifndef IB_FLOW_H
#define IB_FLOW_H

#include "ib_formula.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ib_flow ib_flow;

/* Compiles the flow of the content folder open at dirfd (flow.json and the refiners it names). NULL with a
 * message in err naming the file, the field and the problem ("flow.json: steps[1]: unknown step type
 * 'spilt'", "refiners/invoice.ibrefiner: field 'total': line 1 column 12: unknown function 'nubmer'"). */
ib_flow *ib_flow_compile_dir(int content_dirfd, char *err, size_t errsz);

/* Compiles flow text (ibsol's flow format) read from a file of any name, e.g. "w2.ibflow": refiner paths are
 * relative to the folder open at flow_dirfd (the flow file's folder) and confined to it; messages name the
 * flow as flow_name ("w2.ibflow: steps[1]: ..."). NULL with a message in err. */
ib_flow *ib_flow_compile_text(int flow_dirfd, const char *flow_name, const char *text, size_t len, char *err,
                              size_t errsz);

/* Encodes a compiled flow as .ibflowbin bytes (malloc'd, caller frees). 0 or -1. */
int ib_flow_encode(const ib_flow *flow, const char *solution_name, const char *solution_version, char **bytes,
                   size_t *len);

/* Decodes and re-checks .ibflowbin bytes (never trusted: they come from an uploaded archive). NULL with a
 * message on error. */
ib_flow *ib_flow_decode(const void *bytes, size_t len, char *err, size_t errsz);

void ib_flow_free(ib_flow *flow);

/* ---- limits ---- */
#define IB_FLOW_MAX_FILE (1u << 20) /* flow.json, one refiner file */
#define IB_FLOW_MAX_BIN (32u << 20) /* one .ibflowbin */
#define IB_FLOW_MAX_PROGRAMS 64
#define IB_FLOW_MAX_FIELDS 1000 /* per program */
#define IB_FLOW_MAX_CLASSES 256
#define IB_FLOW_MAX_KEYWORDS 64 /* per class */
#define IB_FLOW_MAX_RULES 1000
#define IB_FLOW_MAX_LANGS 8
#define IB_FLOW_MAX_PATH 1024 /* bytes of a program path */
#define IB_FLOW_MAX_STR 4096  /* bytes of a class name, keyword, one_of value */

/* ---- the compiled flow, read by the engine ---- */

/* TABLE: rows (from table() or line_items()), whose cells a field's "columns" may give types. */
typedef enum ib_ftype {
    IB_FT_TEXT,
    IB_FT_INT,
    IB_FT_FLOAT,
    IB_FT_DATE,
    IB_FT_BOOL,
    IB_FT_LIST,
    IB_FT_TABLE
} ib_ftype;
const char *ib_ftype_name(ib_ftype t);            /* "TEXT", ... */
int ib_ftype_parse(const char *s, ib_ftype *out); /* 0 or -1 */

typedef enum ib_step_kind {
    IB_STEP_PROCESS_FILES,
    IB_STEP_SPLIT,
    IB_STEP_CLASSIFY,
    IB_STEP_APPLY_REFINER,
    IB_STEP_VALIDATE,
    IB_STEP_COUNT_
} ib_step_kind;
const char *ib_step_name(ib_step_kind k); /* "process_files", ... */

typedef struct ib_flow_regex {
    char *pattern; /* NULL when absent */
    pcre2_code *code;
} ib_flow_regex;

typedef struct ib_flow_field {
    char *name;
    ib_ftype type;
    char *formula;
    ib_node *root; /* checked tree; NAME nodes of kind IB_NAME_FIELD index this program's fields */
    json_t *columns; /* TABLE: {"column": "TYPE", ...} (TEXT, INT, FLOAT, DATE or BOOL), or NULL */
} ib_flow_field;

typedef struct ib_flow_program {
    char *path;            /* as named in flow.json, e.g. "refiners/invoice.ibrefiner" */
    ib_flow_field *fields; /* in declaration order: the order of results */
    uint32_t nfields;
    uint32_t *order; /* evaluation order: indices into fields, each after the fields it uses */
} ib_flow_program;

typedef struct ib_flow_class {
    char *name;
    char **keywords; /* all must occur (case-insensitive); nkeywords 0: not used */
    uint32_t nkeywords;
    ib_flow_regex regex; /* code NULL: not used */
} ib_flow_class;

/* A check of every cell of one column of a TABLE field's rows. */
typedef struct ib_flow_col_rule {
    char *column;
    int required;
    int has_type;
    ib_ftype type; /* TEXT, INT, FLOAT, DATE or BOOL */
    ib_flow_regex regex;
} ib_flow_col_rule;

typedef struct ib_flow_rule {
    char *field;
    int required;
    int has_type;
    ib_ftype type;
    ib_flow_regex regex;
    int has_min, has_max;
    double min, max;
    json_t *one_of; /* array of strings and numbers, or NULL */
    /* rules over a TABLE field's rows */
    int has_min_rows;
    uint32_t min_rows;
    char *sum_column, *sum_field; /* sum_equals: the column's numbers add up to the field's, within sum_tol */
    double sum_tol;
    ib_flow_col_rule *cols; /* "columns": {"name": {"required", "type", "regex"}} */
    uint32_t ncols;
} ib_flow_rule;

typedef enum ib_split_by { IB_SPLIT_NONE, IB_SPLIT_PAGE, IB_SPLIT_REGEX } ib_split_by;

typedef struct ib_flow_route {
    char *cls;        /* class name; "*" for the rest */
    uint32_t program; /* index into programs */
} ib_flow_route;

struct ib_flow {
    char *name, *version; /* the solution's, from a decoded .ibflowbin; NULL when compiled from a folder */
    ib_step_kind steps[IB_STEP_COUNT_]; /* in flow order: output folders are s<i+1>_<step name> */
    uint32_t nsteps;

    int ocr_enabled;
    char ocr_langs[IB_FLOW_MAX_LANGS * 33]; /* "eng+deu" (tesseract form); "eng" by default */

    ib_split_by split_by;
    ib_flow_regex split_regex; /* IB_SPLIT_REGEX: a record starts at each line this matches */

    int has_classify;
    ib_flow_class *classes;
    uint32_t nclasses;
    char *default_class;

    ib_flow_program *programs;
    uint32_t nprograms;
    ib_flow_route *routes; /* apply_refiner "programs"; for "program" one route "*" */
    uint32_t nroutes;

    ib_flow_rule *rules;
    uint32_t nrules;

    json_t *steps_json; /* the validated steps with known keys only (what encode writes) */
};

/* The program that applies to a record of class cls (NULL or "" when unclassified): its class's route, else
 * "*", else NULL (the record gets no results). */
const ib_flow_program *ib_flow_program_for(const ib_flow *flow, const char *cls);

/* The index of a field of a program by name, or -1. */
int ib_flow_field_index(const ib_flow_program *prog, const char *name);

#endif
