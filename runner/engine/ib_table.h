/* ib_table: layout tables (table(doc, header[, end[, options]])) read from the visual lines of a document,
 * and the text and JSON forms of table values. Internal to the engine. */
#ifndef IB_TABLE_H
#define IB_TABLE_H

#include "eval_int.h"

typedef struct ib_table_spec {
    const char *const *titles; /* a header given as column titles (ntitles > 0), else by header_rx */
    size_t ntitles;
    const pcre2_code *header_rx;
    const pcre2_code *end_rx;  /* NULL: none */
    const ib_table_opts *opts; /* NULL: defaults */
} ib_table_spec;

/* The rows of the table under the first header line of doc matching spec: a TABLE value (no rows when the
 * header is not found), an error value naming the option at fault, or NULL when the record's budget is spent.
 */
ib_value *ib_table_read(ib_eval *ev, const ib_doc *doc, const ib_table_spec *spec);

/* Every table the layout shows (tables(doc)): a LIST of TABLE values, each under the titles of its header
 * line, a line of two or more column groups with at least two lines under it whose groups all fall under its
 * columns. NULL when the record's budget is spent. */
ib_value *ib_tables_read(ib_eval *ev, const ib_doc *doc);

/* A row's cells as text, separated by tabs (malloc'd). */
char *ib_eval_row_text(ib_eval *ev, const ib_value *row);
/* A table as JSON: [{"column": cell, ...}, ...], empty cells null. New reference. */
json_t *ib_table_json(ib_eval *ev, const ib_value *table);

/* A table's column names for messages: 'a', 'b', ... ("none" when it has none). */
void ib_table_names_text(const ib_value *t, char *buf, size_t bufsz);

/* Each cell's place: [[{"page", "bbox"} or null for a cell without one, ...], ...] by row. New reference. */
json_t *ib_table_cells_json(const ib_value *table);

/* A TABLE field's declared column types ({"column": "TYPE"}): every cell of those columns converted with
 * convert (the field conversion), keeping its provenance. Takes t; returns the typed table, or an error
 * naming the row and column of the first cell that does not convert, or a declared column the rows lack. */
typedef ib_value *(*ib_convert_fn)(ib_eval *ev, ib_value *v, ib_ftype type);
ib_value *ib_table_types(ib_eval *ev, ib_value *t, const json_t *columns, ib_convert_fn convert);

#endif
