/* Unit tests of the table functions: table() on plain text (character columns) and on generated PDFs (ruled
 * and unruled tables, multi-line cells, a table across two pages), line_items(), and the row functions
 * (column, number/date over a column, rows_where, count, sum), asserting every cell and its box, and the
 * run-time errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four headers above first */
#include <cmocka.h>

#include "doc_test_util.h"
#include "engine_int.h"
#include "ib_eval.h"
#include "ib_table.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ib_doc *load(const char *name, const void *bytes, size_t len)
{
    char err[256];
    ib_doc_opts o = {0};
    ib_doc *d = ib_doc_load(name, bytes, len, &o, err, sizeof err);
    if (!d) fail_msg("%s: %s", name, err);
    return d;
}

/* Evaluates a checked formula on doc; the value (caller unrefs) and its JSON text in *json (malloc'd). */
static ib_value *eval(ib_doc *doc, const char *formula, char **json)
{
    ib_formula_err fe;
    ib_node *root = ib_formula_parse(formula, strlen(formula), &fe);
    if (!root || ib_formula_check(root, NULL, NULL, &fe) != 0)
        fail_msg("%s: %u:%u %s", formula, fe.line, fe.col, fe.msg);
    ib_eval_env env = {.doc = doc, .file_name = "t"};
    ib_eval *ev = ib_eval_new(&env);
    ib_value *v = ib_eval_node(ev, root, NULL, 0);
    if (json) {
        json_t *j = ib_eval_json(ev, v, IB_FT_TEXT);
        *json = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(10));
        json_decref(j);
    }
    ib_eval_free(ev);
    ib_node_free(root);
    return v;
}

static void expect_json(ib_doc *doc, const char *formula, const char *want)
{
    char *got;
    ib_value *v = eval(doc, formula, &got);
    if (v->kind == IB_V_ERROR) fail_msg("%s: error %s", formula, v->str);
    if (strcmp(got, want) != 0) fail_msg("%s:\n got  %s\n want %s", formula, got, want);
    free(got);
    ib_v_unref(v);
}

static void expect_error(ib_doc *doc, const char *formula, const char *want)
{
    ib_value *v = eval(doc, formula, NULL);
    if (v->kind != IB_V_ERROR) fail_msg("%s: no error, expected '%s'", formula, want);
    if (strcmp(v->str, want) != 0) fail_msg("%s:\n got  %s\n want %s", formula, v->str, want);
    ib_v_unref(v);
}

/* The cell at row r, column c has one box, on page (0-based), within tol of box. */
static void expect_box(const ib_value *t, size_t r, size_t c, uint32_t page, ib_bbox box, double tol)
{
    assert_true(t->kind == IB_V_TABLE && r < t->nitems && c < t->items[r]->nitems);
    const ib_value *cell = t->items[r]->items[c];
    if (cell->nprov != 1) fail_msg("row %zu col %zu: %zu boxes", r, c, cell->nprov);
    const ib_pbox *p = &cell->prov[0];
    if (p->page != page || fabs(p->box.x0 - box.x0) > tol || fabs(p->box.y0 - box.y0) > tol ||
        fabs(p->box.x1 - box.x1) > tol || fabs(p->box.y1 - box.y1) > tol)
        fail_msg("row %zu col %zu '%s': page %u [%.2f %.2f %.2f %.2f], want page %u [%.2f %.2f %.2f %.2f]", r,
                 c, cell->kind == IB_V_STR ? cell->str : "?", p->page, p->box.x0, p->box.y0, p->box.x1,
                 p->box.y1, page, box.x0, box.y0, box.x1, box.y1);
}

/* ---- plain text ---- */

static const char invoice_txt[] = "ACME Corp                                 Invoice INV-7\n" /* line 0 */
                                  "\n"
                                  "Description            Qty   Unit Price     Amount\n" /* line 2 */
                                  "Widget, large            2        10.00      20.00\n" /* line 3 */
                                  "Gadget with a very       1         5.50       5.50\n" /* line 4 */
                                  "  long name\n"                                        /* line 5 */
                                  "Service fee                                   3.00\n" /* line 6 */
                                  "\n"
                                  "Subtotal                                     28.50\n" /* line 8 */
                                  "Notes: thank you\n";

static void test_text_table(void **state)
{
    (void)state;
    ib_doc *d = load("inv.txt", invoice_txt, strlen(invoice_txt));
    const char *f = "table(INPUT_COL, ['Description', 'Qty', 'Amount'], '^Subtotal')";
    expect_json(d, f,
                "[{\"Description\":\"Widget, large\",\"Qty\":\"2\",\"Amount\":\"20.00\"},"
                "{\"Description\":\"Gadget with a very long name\",\"Qty\":\"1\",\"Amount\":\"5.50\"},"
                "{\"Description\":\"Service fee\",\"Qty\":null,\"Amount\":\"3.00\"}]");
    ib_value *t = eval(d, f, NULL);
    assert_int_equal(t->nitems, 3);
    expect_box(t, 0, 0, 0, (ib_bbox){0, 3, 13, 4}, 0);
    expect_box(t, 0, 1, 0, (ib_bbox){25, 3, 26, 4}, 0);
    expect_box(t, 0, 2, 0, (ib_bbox){45, 3, 50, 4}, 0);
    expect_box(t, 1, 0, 0, (ib_bbox){0, 4, 18, 6}, 0); /* two lines: the union of both */
    expect_box(t, 1, 1, 0, (ib_bbox){25, 4, 26, 5}, 0);
    expect_box(t, 1, 2, 0, (ib_bbox){46, 4, 50, 5}, 0);
    expect_box(t, 2, 0, 0, (ib_bbox){0, 6, 11, 7}, 0);
    expect_box(t, 2, 2, 0, (ib_bbox){46, 6, 50, 7}, 0);
    assert_int_equal(t->items[2]->items[1]->kind, IB_V_NULL);
    ib_v_unref(t);

    /* a regex header: every column, under the document's titles; no end: one blank line ends nothing, the
     * Subtotal line is a row too, and the line under it (one cell) continues it */
    expect_json(
        d, "table(INPUT_COL, '^Description')",
        "[{\"Description\":\"Widget, large\",\"Qty\":\"2\",\"Unit Price\":\"10.00\",\"Amount\":\"20.00\"},"
        "{\"Description\":\"Gadget with a very long name\",\"Qty\":\"1\",\"Unit Price\":\"5.50\","
        "\"Amount\":\"5.50\"},"
        "{\"Description\":\"Service fee\",\"Qty\":null,\"Unit Price\":null,\"Amount\":\"3.00\"},"
        "{\"Description\":\"Subtotal Notes: thank you\",\"Qty\":null,\"Unit Price\":null,"
        "\"Amount\":\"28.50\"}]");
    /* options: columns picked and renamed; a key column: lines without a quantity continue the row */
    expect_json(d,
                "table(INPUT_COL, '^Description', 'Subtotal', '{\"columns\": {\"amount\": \"total\", "
                "\"description\": \"item\"}, \"key\": \"Qty\"}')",
                "[{\"total\":\"20.00\",\"item\":\"Widget, large\"},"
                "{\"total\":\"5.50 3.00\",\"item\":\"Gadget with a very long name Service fee\"}]");
    /* row_start: only lines it matches start a row */
    expect_json(
        d,
        "table(INPUT_COL, ['Description', 'Amount'], 'Subtotal', '{\"row_start\": \"^(Widget|Service)\"}')",
        "[{\"Description\":\"Widget, large Gadget with a very long name\",\"Amount\":\"20.00 5.50\"},"
        "{\"Description\":\"Service fee\",\"Amount\":\"3.00\"}]");
    /* explicit boundaries: two columns split at x = 30 */
    expect_json(
        d, "table(INPUT_COL, '^Description', 'Subtotal', '{\"bounds\": [30]}')",
        "[{\"Description Qty\":\"Widget, large 2\",\"Unit Price Amount\":\"10.00 20.00\"},"
        "{\"Description Qty\":\"Gadget with a very 1 long name\",\"Unit Price Amount\":\"5.50 5.50\"},"
        "{\"Description Qty\":\"Service fee\",\"Unit Price Amount\":\"3.00\"}]");
    /* no header: no rows */
    expect_json(d, "table(INPUT_COL, ['Item', 'Price'])", "[]");
    expect_json(d, "count(table(INPUT_COL, ['Item', 'Price']))", "0");
    ib_doc_free(d);
}

static const char two_pages_txt[] = "Statement\n"
                                    "Date        Text                 Amount\n"
                                    "2024-01-02  Coffee                 3.50\n"
                                    "2024-01-03  Books                 12.00\n"
                                    "\n"
                                    "\n"
                                    "\n"
                                    "page 1 of 2\n"
                                    "\f"
                                    "Date        Text                 Amount\n"
                                    "2024-01-05  Train                 41.20\n"
                                    "            return trip\n"
                                    "2024-01-09  Lunch                  9.80\n"
                                    "Closing balance                  101.00\n";

static void test_text_two_pages(void **state)
{
    (void)state;
    ib_doc *d = load("st.txt", two_pages_txt, strlen(two_pages_txt));
    /* the gap before the footer ends page 1's rows; page 2 repeats the header */
    const char *f = "table(INPUT_COL, ['Date', 'Text', 'Amount'], 'Closing balance')";
    expect_json(d, f,
                "[{\"Date\":\"2024-01-02\",\"Text\":\"Coffee\",\"Amount\":\"3.50\"},"
                "{\"Date\":\"2024-01-03\",\"Text\":\"Books\",\"Amount\":\"12.00\"},"
                "{\"Date\":\"2024-01-05\",\"Text\":\"Train return trip\",\"Amount\":\"41.20\"},"
                "{\"Date\":\"2024-01-09\",\"Text\":\"Lunch\",\"Amount\":\"9.80\"}]");
    ib_value *t = eval(d, f, NULL);
    expect_box(t, 1, 2, 0, (ib_bbox){34, 3, 39, 4}, 0);
    expect_box(t, 2, 0, 1, (ib_bbox){0, 1, 10, 2}, 0);
    expect_box(t, 2, 1, 1, (ib_bbox){12, 1, 23, 3}, 0);
    ib_v_unref(t);
    /* the row functions */
    expect_json(d, "number(column(table(INPUT_COL, ['Date', 'Text', 'Amount'], 'Closing'), 'Amount'))",
                "[3.5,12,41.2,9.8]");
    expect_json(d, "sum(column(table(INPUT_COL, ['Date', 'Text', 'Amount'], 'Closing'), 'Amount'))", "66.5");
    expect_json(d, "date(column(table(INPUT_COL, ['Date', 'Text', 'Amount'], 'Closing'), 'Date'))",
                "[\"2024-01-02\",\"2024-01-03\",\"2024-01-05\",\"2024-01-09\"]");
    expect_json(
        d, "count(rows_where(table(INPUT_COL, ['Date', 'Text', 'Amount'], 'Closing'), 'Text', '(?i)^[bt]'))",
        "2");
    expect_json(d, "rows_where(table(INPUT_COL, ['Date', 'Text', 'Amount'], 'Closing'), 'Amount', '^1')",
                "[{\"Date\":\"2024-01-03\",\"Text\":\"Books\",\"Amount\":\"12.00\"}]");
    /* number over a column keeps each cell's box */
    ib_value *nums =
        eval(d, "number(column(table(INPUT_COL, ['Date', 'Text', 'Amount'], 'Closing'), 'Amount'))", NULL);
    assert_int_equal(nums->kind, IB_V_LIST);
    assert_int_equal(nums->items[3]->nprov, 1);
    assert_int_equal(nums->items[3]->prov[0].page, 1);
    assert_true(nums->items[3]->prov[0].box.x0 == 35 && nums->items[3]->prov[0].box.y0 == 3);
    ib_v_unref(nums);
    /* a header page 2 does not repeat: page 1's rows only (one column: every line is a row), unless the rows
     * continue at the top of the next page */
    expect_json(d, "count(table(INPUT_COL, '^Statement$', 'Closing'))", "3");
    expect_json(d, "column(table(INPUT_COL, '^Statement$', 'Closing', '{\"continues\": true}'), 'Statement')",
                "[\"Date Text Amount\",\"2024-01-02 Coffee 3.50\",\"2024-01-03 Books 12.00\","
                "\"Date Text Amount\",\"2024-01-05 Train 41.20\",\"return trip\",\"2024-01-09 Lunch 9.80\"]");
    ib_doc_free(d);
}

static void test_run_time_errors(void **state)
{
    (void)state;
    ib_doc *d = load("inv.txt", invoice_txt, strlen(invoice_txt));
    expect_error(d, "column(table(INPUT_COL, ['Description', 'Qty']), 'Price')",
                 "column: the rows have no column 'Price' (their columns: 'Description', 'Qty')");
    expect_error(d, "column('text', 'Price')",
                 "column: the first argument must be rows (from table or line_items), not a single value");
    expect_error(d, "sum(table(INPUT_COL, ['Description', 'Qty']))",
                 "sum: give it one column of the rows, as in sum(column(rows, 'amount'))");
    expect_error(d, "sum(column(table(INPUT_COL, ['Description', 'Qty']), 'Description'))",
                 "sum: item 1 ('Widget, large') is not a number");
    expect_error(d, "number(column(table(INPUT_COL, '^Description', 'Subtotal'), 'Description'))",
                 "number: no number in 'Widget, large' (item 1 of the list)");
    expect_error(d, "table(INPUT_COL, '^Description', 'Subtotal', '{\"columns\": [\"Price\"]}')",
                 "table: options: 'columns' names 'Price', which the header on page 1 lacks (its columns: "
                 "'Description', 'Qty', 'Unit Price', 'Amount')");
    expect_error(d, "table(INPUT_COL, '^Description', 'Subtotal', CONFIG('x', '{\"key\": 1}'))",
                 "table: options: 'key' must be non-empty text");
    expect_error(d, "table(INPUT_COL, '^Description', 'Subtotal', '{\"key\": \"Price\"}')",
                 "table: options: 'key' names 'Price', which is not a column of the header on page 1 (its "
                 "columns: 'Description', 'Qty', 'Unit Price', 'Amount')");
    expect_error(d, "table('text', ['A'])", "table: the first argument must be the document (INPUT_COL)");
    expect_error(d, "table(INPUT_COL, CONFIG('x', 3))",
                 "table: the header must be a regular expression or a list of column titles");
    expect_error(d, "line_items(INPUT_COL, 'Description', 'Subtotal', CONFIG('x', '(\\d+)'))",
                 "line_items: the line pattern has no named group: the cells are its named groups");
    ib_doc_free(d);
}

/* A one-field program of type TABLE with the declared column types (JSON text, NULL: none), its record's
 * results limited to max_output bytes (0: no limit); the field's result as compact JSON text (malloc'd). */
static char *run_field_limited(ib_doc *doc, const char *formula, const char *columns, size_t max_output)
{
    ib_formula_err fe;
    ib_node *root = ib_formula_parse(formula, strlen(formula), &fe);
    if (!root || ib_formula_check(root, NULL, NULL, &fe) != 0)
        fail_msg("%s: %u:%u %s", formula, fe.line, fe.col, fe.msg);
    json_t *cols = columns ? json_loads(columns, 0, NULL) : NULL;
    ib_flow_field field = {
        .name = "items", .type = IB_FT_TABLE, .formula = (char *)formula, .root = root, .columns = cols};
    uint32_t order = 0;
    ib_flow_program prog = {.path = "t", .fields = &field, .nfields = 1, .order = &order};
    ib_eval_env env = {.doc = doc, .file_name = "t", .max_output = max_output};
    ib_eval *ev = ib_eval_new(&env);
    json_t *res = ib_eval_program(ev, &prog, NULL);
    char *s = json_dumps(json_array_get(res, 0), JSON_COMPACT | JSON_REAL_PRECISION(10));
    json_decref(res);
    ib_eval_free(ev);
    json_decref(cols);
    ib_node_free(root);
    return s;
}

static char *run_field(ib_doc *doc, const char *formula, const char *columns)
{
    return run_field_limited(doc, formula, columns, 0);
}

static void test_table_field(void **state)
{
    (void)state;
    ib_doc *d = load("inv.txt", invoice_txt, strlen(invoice_txt));
    const char *f = "table(INPUT_COL, ['Description', 'Qty', 'Amount'], '^Subtotal')";
    char *got = run_field(d, f, "{\"Qty\": \"INT\", \"Amount\": \"FLOAT\"}");
    assert_string_equal(
        got, "{\"key\":\"items\",\"value\":[{\"Description\":\"Widget, large\",\"Qty\":2,\"Amount\":20},"
             "{\"Description\":\"Gadget with a very long name\",\"Qty\":1,\"Amount\":5.5},"
             "{\"Description\":\"Service fee\",\"Qty\":null,\"Amount\":3}],\"field_type\":\"TABLE\","
             "\"cells\":[[{\"page\":1,\"bbox\":[0.0,3.0,13.0,4.0]},{\"page\":1,\"bbox\":[25.0,3.0,26.0,4.0]},"
             "{\"page\":1,\"bbox\":[45.0,3.0,50.0,4.0]}],"
             "[{\"page\":1,\"bbox\":[0.0,4.0,18.0,6.0]},{\"page\":1,\"bbox\":[25.0,4.0,26.0,5.0]},"
             "{\"page\":1,\"bbox\":[46.0,4.0,50.0,5.0]}],"
             "[{\"page\":1,\"bbox\":[0.0,6.0,11.0,7.0]},null,{\"page\":1,\"bbox\":[46.0,6.0,50.0,7.0]}]],"
             "\"page\":1,\"bbox\":[0.0,3.0,50.0,7.0]}");
    free(got);
    /* a cell that does not convert fails the field, naming row and column; so does a column the rows lack */
    got = run_field(d, f, "{\"Description\": \"FLOAT\"}");
    assert_string_equal(
        got, "{\"key\":\"items\",\"value\":\"ERROR\",\"field_type\":\"TABLE\",\"error\":\"TABLE: row 1, "
             "column 'Description': FLOAT: cannot read a number from 'Widget, large'\"}");
    free(got);
    got = run_field(d, f, "{\"Price\": \"FLOAT\"}");
    assert_string_equal(got,
                        "{\"key\":\"items\",\"value\":\"ERROR\",\"field_type\":\"TABLE\",\"error\":\"TABLE: "
                        "'columns' declares the column 'Price', which the rows lack (their columns: "
                        "'Description', 'Qty', 'Amount')\"}");
    free(got);
    got = run_field(d, "lines(INPUT_COL)", NULL);
    assert_string_equal(
        got, "{\"key\":\"items\",\"value\":\"ERROR\",\"field_type\":\"TABLE\",\"error\":\"TABLE: the "
             "formula gives a list, not rows (from table or line_items)\"}");
    free(got);
    ib_doc_free(d);
}

/* The record output limit counts a TABLE field's JSON exactly, boxes included: a limit of exactly its size (and
 * the separator after it) keeps the rows, one byte less fails the field. The cheap bound the engine takes first
 * counts every box number at its longest, far more than these boxes' short reals. */
static void test_table_field_output_limit(void **state)
{
    (void)state;
    ib_doc *d = load("inv.txt", invoice_txt, strlen(invoice_txt));
    const char *f = "table(INPUT_COL, ['Description', 'Qty', 'Amount'], '^Subtotal')";
    char *whole = run_field(d, f, "{\"Qty\": \"INT\", \"Amount\": \"FLOAT\"}");
    size_t exact = strlen(whole) + 1;
    char *got = run_field_limited(d, f, "{\"Qty\": \"INT\", \"Amount\": \"FLOAT\"}", exact);
    assert_string_equal(got, whole);
    free(got);
    got = run_field_limited(d, f, "{\"Qty\": \"INT\", \"Amount\": \"FLOAT\"}", exact - 1);
    char want[256];
    snprintf(want, sizeof want,
             "{\"key\":\"items\",\"value\":\"ERROR\",\"field_type\":\"TABLE\",\"error\":\"record output "
             "limit exceeded: field 'items' would make the record's results larger than %zu bytes\"}",
             exact - 1);
    assert_string_equal(got, want);
    free(got);
    free(whole);
    ib_doc_free(d);
}

/* ---- line_items ---- */

static const char items_txt[] = "Order 55\n"
                                "Pos Article\n"
                                "1 Screws M4 x 20 qty 100 at 0.05\n"
                                "2 Nuts M4 qty 100 at 0.02\n"
                                "3 Washers\n"
                                "  stainless, bag\n"
                                "  qty 2 at 1.50\n"
                                "Total 8.00\n";

static void test_line_items(void **state)
{
    (void)state;
    ib_doc *d = load("po.txt", items_txt, strlen(items_txt));
    const char *f = "line_items(INPUT_COL, '^Pos', '^Total', '^(?<pos>\\d+) (?<what>.+?) qty (?<qty>\\d+) at "
                    "(?<price>[\\d.]+)$')";
    expect_json(d, f,
                "[{\"pos\":\"1\",\"what\":\"Screws M4 x 20\",\"qty\":\"100\",\"price\":\"0.05\"},"
                "{\"pos\":\"2\",\"what\":\"Nuts M4\",\"qty\":\"100\",\"price\":\"0.02\"}]");
    ib_value *t = eval(d, f, NULL);
    expect_box(t, 0, 1, 0, (ib_bbox){2, 2, 16, 3}, 0);
    expect_box(t, 1, 3, 0, (ib_bbox){21, 3, 25, 4}, 0);
    ib_v_unref(t);
    /* multi-line items: first_line starts one, line adds to it, last_line ends it */
    expect_json(
        d,
        "line_items(INPUT_COL, '^Pos', '^Total', '^\\s+(?<what>[a-z].*)$', '^(?<pos>\\d+) (?<what>\\S+)', "
        "'qty (?<qty>\\d+) at (?<price>[\\d.]+)$')",
        "[{\"pos\":\"1\",\"what\":\"Screws\",\"qty\":\"100\",\"price\":\"0.05\"},"
        "{\"pos\":\"2\",\"what\":\"Nuts\",\"qty\":\"100\",\"price\":\"0.02\"},"
        "{\"pos\":\"3\",\"what\":\"Washers stainless, bag\",\"qty\":\"2\",\"price\":\"1.50\"}]");
    ib_value *m = eval(
        d,
        "line_items(INPUT_COL, '^Pos', '^Total', '^\\s+(?<what>[a-z].*)$', '^(?<pos>\\d+) (?<what>\\S+)', "
        "'qty (?<qty>\\d+) at (?<price>[\\d.]+)$')",
        NULL);
    expect_box(m, 2, 1, 0, (ib_bbox){2, 4, 16, 6}, 0);
    ib_v_unref(m);
    /* no start: no rows; a text argument (no document) works the same */
    expect_json(d, "count(line_items(INPUT_COL, '^Nothing', '^Total', '(?<a>x)'))", "0");
    expect_json(d, "line_items('items:\na 1\nb 2\nend', 'items:', 'end', '(?<k>\\w) (?<v>\\d)')",
                "[{\"k\":\"a\",\"v\":\"1\"},{\"k\":\"b\",\"v\":\"2\"}]");
    ib_doc_free(d);
}

/* ---- PDF ---- */

typedef struct pcell {
    double x, y;
    const char *s;
} pcell;

static ib_bbox text_box(dt_pdf *p, double x, double y, double size, const char *s)
{
    cairo_text_extents_t te;
    cairo_font_extents_t fe;
    cairo_set_font_size(p->cr, size);
    cairo_text_extents(p->cr, s, &te);
    cairo_font_extents(p->cr, &fe);
    return (ib_bbox){x, y - fe.ascent, x + te.x_advance, y + fe.descent};
}

/* The cells of the PDF invoice's first page: column x, and the rows' texts. */
static const double colx[] = {50, 300, 380, 470};
static const char *const head[] = {"Description", "Qty", "Price", "Amount"};
static const char *const rows[][4] = {{"Paper A4", "10", "4.00", "40.00"},
                                      {"Toner black", "2", "55.00", "110.00"},
                                      {"Stapler", "1", "12.50", "12.50"}};

/* An invoice over two pages: a ruled table on page 1 (cell borders drawn), the header repeated on page 2
 * without rules; the second row's description takes two lines. */
static unsigned char *invoice_pdf(size_t *len)
{
    dt_pdf p;
    dt_pdf_begin(&p, 612, 792);
    dt_text(&p, 50, 50, 14, "INVOICE 2024-17");
    for (int c = 0; c < 4; c++)
        dt_text(&p, colx[c], 100, 10, head[c]);
    double y = 120;
    for (int r = 0; r < 3; r++) {
        for (int c = 0; c < 4; c++)
            dt_text(&p, colx[c], y, 10, rows[r][c]);
        if (r == 1) dt_text(&p, 50, y + 12, 10, "for laser printers");
        y += r == 1 ? 32 : 20;
    }
    /* the rules: a grid around the cells */
    cairo_set_line_width(p.cr, 0.5);
    for (double ly = 88; ly <= 188; ly += 100)
        cairo_move_to(p.cr, 45, ly), cairo_line_to(p.cr, 560, ly);
    for (int c = 0; c < 4; c++)
        cairo_move_to(p.cr, colx[c] - 5, 88), cairo_line_to(p.cr, colx[c] - 5, 188);
    cairo_stroke(p.cr);
    dt_text(&p, 50, 700, 8, "Page 1 of 2");
    cairo_show_page(p.cr);
    for (int c = 0; c < 4; c++)
        dt_text(&p, colx[c], 60, 10, head[c]);
    dt_text(&p, 50, 80, 10, "Shipping");
    dt_text(&p, 470, 80, 10, "9.90");
    dt_text(&p, 50, 120, 10, "Total");
    dt_text(&p, 470, 120, 10, "172.40");
    cairo_show_page(p.cr);
    return dt_pdf_end(&p, len);
}

static void test_pdf_table(void **state)
{
    (void)state;
    size_t len;
    unsigned char *pdf = invoice_pdf(&len);
    ib_doc *d = load("inv.pdf", pdf, len);
    const char *f = "table(INPUT_COL, ['Description', 'Qty', 'Price', 'Amount'], '^Total')";
    expect_json(d, f,
                "[{\"Description\":\"Paper A4\",\"Qty\":\"10\",\"Price\":\"4.00\",\"Amount\":\"40.00\"},"
                "{\"Description\":\"Toner black for laser printers\",\"Qty\":\"2\",\"Price\":\"55.00\","
                "\"Amount\":\"110.00\"},"
                "{\"Description\":\"Stapler\",\"Qty\":\"1\",\"Price\":\"12.50\",\"Amount\":\"12.50\"},"
                "{\"Description\":\"Shipping\",\"Qty\":null,\"Price\":null,\"Amount\":\"9.90\"}]");
    ib_value *t = eval(d, f, NULL);
    /* every cell's box is where its text was drawn (within the extraction's rounding) */
    dt_pdf m;
    dt_pdf_begin(&m, 612, 792);
    static const double rowy[] = {120, 140, 172};
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++) {
            ib_bbox b = text_box(&m, colx[c], rowy[r], 10, rows[r][c]);
            if (r == 1 && c == 0) { /* two lines */
                ib_bbox b2 = text_box(&m, 50, 152, 10, "for laser printers");
                b.x1 = b2.x1 > b.x1 ? b2.x1 : b.x1;
                b.y1 = b2.y1;
            }
            expect_box(t, (size_t)r, (size_t)c, 0, b, 2.0);
        }
    expect_box(t, 3, 0, 1, text_box(&m, 50, 80, 10, "Shipping"), 2.0);
    expect_box(t, 3, 3, 1, text_box(&m, 470, 80, 10, "9.90"), 2.0);
    size_t ml;
    free(dt_pdf_end(&m, &ml));
    ib_v_unref(t);
    expect_json(d,
                "sum(number(column(table(INPUT_COL, ['Description', 'Qty', 'Price', 'Amount'], '^Total'), "
                "'Amount')))",
                "172.4");
    ib_doc_free(d);
    free(pdf);
}

static void test_tables(void **state)
{
    (void)state;
    ib_doc *d = load("inv.txt", invoice_txt, strlen(invoice_txt));
    char *got;
    ib_value *v = eval(d, "tables(INPUT_COL)", &got);
    assert_string_equal(
        got,
        "[[{\"Description\":\"Widget, large\",\"Qty\":\"2\",\"Unit Price\":\"10.00\",\"Amount\":\"20.00\"},"
        "{\"Description\":\"Gadget with a very long name\",\"Qty\":\"1\",\"Unit "
        "Price\":\"5.50\",\"Amount\":\"5.50\"},"
        "{\"Description\":\"Service fee\",\"Qty\":null,\"Unit Price\":null,\"Amount\":\"3.00\"},"
        "{\"Description\":\"Subtotal Notes: thank you\",\"Qty\":null,\"Unit "
        "Price\":null,\"Amount\":\"28.50\"}]]");
    free(got);
    assert_int_equal(v->items[0]->items[1]->items[0]->nprov, 1); /* cells keep their boxes */
    ib_v_unref(v);
    ib_doc_free(d);
    /* one table per page; the title line and the footer are no tables */
    d = load("st.txt", two_pages_txt, strlen(two_pages_txt));
    expect_json(d, "tables(INPUT_COL)",
                "[[{\"Date\":\"2024-01-02\",\"Text\":\"Coffee\",\"Amount\":\"3.50\"},"
                "{\"Date\":\"2024-01-03\",\"Text\":\"Books\",\"Amount\":\"12.00\"}],"
                "[{\"Date\":\"2024-01-05\",\"Text\":\"Train return trip\",\"Amount\":\"41.20\"},"
                "{\"Date\":\"2024-01-09\",\"Text\":\"Lunch\",\"Amount\":\"9.80\"},"
                "{\"Date\":\"Closing balance\",\"Text\":null,\"Amount\":\"101.00\"}]]");
    ib_doc_free(d);
    /* a PDF: the ruled invoice's two pages */
    size_t len;
    unsigned char *pdf = invoice_pdf(&len);
    d = load("inv.pdf", pdf, len);
    expect_json(d, "count(tables(INPUT_COL))", "2");
    expect_json(d, "nth(tables(INPUT_COL), 0)",
                "[{\"Description\":\"Paper A4\",\"Qty\":\"10\",\"Price\":\"4.00\",\"Amount\":\"40.00\"},"
                "{\"Description\":\"Toner black for laser printers\",\"Qty\":\"2\",\"Price\":\"55.00\","
                "\"Amount\":\"110.00\"},"
                "{\"Description\":\"Stapler\",\"Qty\":\"1\",\"Price\":\"12.50\",\"Amount\":\"12.50\"}]");
    ib_doc_free(d);
    free(pdf);
    expect_error(NULL, "tables('text')", "tables: the argument must be the document (INPUT_COL)");
}

/* The layout table agrees with `pdftotext -layout` of the same PDF: each row's cells (a multi-line cell's
 * first line) stand, in column order, on one line of its output, and that line holds nothing else. */
static void test_pdf_matches_pdftotext(void **state)
{
    (void)state;
    size_t len;
    unsigned char *pdf = invoice_pdf(&len);
    char dir[] = "/tmp/ibsol-table-XXXXXX", path[64], ref[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/inv.pdf", dir);
    snprintf(ref, sizeof ref, "%s/inv.txt", dir);
    assert_int_equal(dt_write(path, pdf, len), 0);
    char *argv[] = {"pdftotext", "-layout", path, ref, NULL};
    int rc = dt_run(argv);
    if (rc != 0)
        fail_msg("pdftotext -layout %s: exit %d (poppler-utils: deploy/install-deps.sh --test)", path, rc);
    size_t tl;
    char *text = dt_read(ref, &tl);
    assert_non_null(text);
    ib_doc *d = load("inv.pdf", pdf, len);
    ib_value *t = eval(d, "table(INPUT_COL, ['Description', 'Qty', 'Price', 'Amount'], '^Total')", NULL);
    assert_int_equal(t->nitems, 4);
    for (size_t r = 0; r < t->nitems; r++) {
        /* the line of pdftotext's output with the row's first word */
        const ib_value *row = t->items[r];
        char first[64];
        snprintf(first, sizeof first, "%.*s", (int)strcspn(row->items[0]->str, " "), row->items[0]->str);
        const char *at = strstr(text, first);
        if (!at) fail_msg("row %zu: '%s' is not in pdftotext's output", r, first);
        const char *ls = at;
        while (ls > text && ls[-1] != '\n' && ls[-1] != '\f')
            ls--;
        size_t ll = strcspn(ls, "\n\f");
        char line[256];
        snprintf(line, sizeof line, "%.*s", (int)ll, ls);
        /* the cells in order, each cell's first line; the rest of the line blank */
        char *pos = line;
        for (size_t c = 0; c < row->nitems; c++) {
            if (row->items[c]->kind != IB_V_STR) continue;
            const char *cell = row->items[c]->str;
            size_t cl = r == 1 && c == 0 ? strlen("Toner black") : strlen(cell);
            char *hit = NULL;
            for (char *p = pos; *p; p++)
                if (strncmp(p, cell, cl) == 0) {
                    hit = p;
                    break;
                }
            if (!hit)
                fail_msg("row %zu: cell '%.*s' not after column %zu in pdftotext's line '%s'", r, (int)cl,
                         cell, c, line);
            memset(hit, ' ', cl);
            pos = hit + cl;
        }
        for (char *p = line; *p; p++)
            if (*p != ' ') fail_msg("row %zu: pdftotext's line holds more than the row: '%s'", r, line);
    }
    ib_v_unref(t);
    ib_doc_free(d);
    free(text);
    unlink(path);
    unlink(ref);
    rmdir(dir);
    free(pdf);
}

/* Column types convert a table the formula just made in place, and never change a table or row that something
 * else holds too (a field's table used by another field): those are copied. */
static void test_table_types_shared(void **state)
{
    (void)state;
    ib_doc *d = load("inv.txt", invoice_txt, strlen(invoice_txt));
    const char *f = "table(INPUT_COL, ['Description', 'Qty', 'Amount'], '^Subtotal')";
    json_t *cols = json_pack("{s:s,s:s}", "Qty", "INT", "Amount", "FLOAT");
    ib_eval_env env = {.doc = d, .file_name = "t"};
    ib_eval *ev = ib_eval_new(&env);

    /* the whole table held elsewhere: a typed copy, the held table as it was */
    ib_value *t = eval(d, f, NULL), *held = ib_v_ref(t);
    ib_value *typed = ib_table_types(ev, t, cols, ib_eval_coerce);
    assert_true(typed != held && typed->kind == IB_V_TABLE && typed->nitems == 3 && held->nitems == 3);
    assert_int_equal(typed->items[0]->items[1]->kind, IB_V_NUM);
    assert_true(typed->items[0]->items[2]->num == 20.0);
    assert_int_equal(held->items[0]->items[1]->kind, IB_V_STR);
    assert_string_equal(held->items[0]->items[1]->str, "2");
    assert_string_equal(held->items[1]->items[2]->str, "5.50");
    expect_box(typed, 1, 2, 0, (ib_bbox){46, 4, 50, 5}, 0);
    ib_v_unref(typed);
    ib_v_unref(held);

    /* the table held only here, one of its rows elsewhere: converted in place, that row copied */
    t = eval(d, f, NULL);
    ib_value *row0 = ib_v_ref(t->items[0]), *row1 = t->items[1];
    typed = ib_table_types(ev, t, cols, ib_eval_coerce);
    assert_true(typed == t && typed->items[0] != row0 && typed->items[1] == row1);
    assert_int_equal(typed->items[0]->items[1]->kind, IB_V_NUM);
    assert_int_equal(row0->items[1]->kind, IB_V_STR);
    assert_string_equal(row0->items[1]->str, "2");
    assert_true(row1->items[2]->kind == IB_V_NUM && row1->items[2]->num == 5.5);
    assert_int_equal(typed->items[0]->nprov, 1);
    assert_true(typed->items[0]->prov[0].box.x0 == 0 && typed->items[0]->prov[0].box.x1 == 50);
    ib_v_unref(typed);
    ib_v_unref(row0);

    /* a cell that does not convert: the error, and a held table untouched */
    t = eval(d, f, NULL);
    held = ib_v_ref(t);
    json_t *bad = json_pack("{s:s}", "Description", "FLOAT");
    ib_value *e = ib_table_types(ev, t, bad, ib_eval_coerce);
    assert_int_equal(e->kind, IB_V_ERROR);
    assert_string_equal(e->str, "TABLE: row 1, column 'Description': FLOAT: cannot read a number from "
                                "'Widget, large'");
    assert_string_equal(held->items[0]->items[0]->str, "Widget, large");
    ib_v_unref(e);
    ib_v_unref(held);
    json_decref(bad);
    json_decref(cols);
    ib_eval_free(ev);
    ib_doc_free(d);
}

/* ---- the output writer's JSON: jansson's bytes ---- */

typedef struct text_sink {
    char *s;
    size_t n, cap;
} text_sink;

static int sink_put(const char *buf, size_t len, void *data)
{
    text_sink *t = data;
    if (t->n + len + 1 > t->cap) {
        t->cap = (t->n + len + 1) * 2;
        t->s = realloc(t->s, t->cap);
        assert_non_null(t->s);
    }
    memcpy(t->s + t->n, buf, len);
    t->n += len;
    t->s[t->n] = '\0';
    return 0;
}

/* What ib_out_json_dump writes (at depth) */
static char *own_dump(const json_t *j, size_t flags, unsigned depth)
{
    text_sink t = {0};
    assert_int_equal(ib_out_json_dump(j, flags, depth, sink_put, &t), 0);
    if (!t.s) t.s = calloc(1, 1);
    return t.s;
}

/* A tree with what records hold (texts needing escapes, non-ASCII, keys with escapes, empty containers,
 * integers at their limits) and reals of every kind: boxes and amounts with two decimals (written without
 * snprintf), and reals whose decimals, size or smallness need "%.<p>g" with its exponent rules. */
static json_t *varied_tree(unsigned seed)
{
    static const double reals[] = {
        0.0, -0.0, 1.5, 425.55, -86.72, 0.01, -0.01, 0.1,
        100.0, 99999.99, 100000.01, 12345.67, 1234567.0, 431627.51, 0.05, 9.99, 1e-5, -3.25e-7, 1e20,
        1e300, 5e-324, 1.0 / 3, 0.1 + 0.2, 123456789.12, 1e13, 9999999999999.99, 99999999999999.99,
        12345678901234.5, 2.5e15, -1e-300, 6.02214076e23, 0.0001, 0.00001234};
    json_t *root = json_object();
    json_t *a = json_array();
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++)
        json_array_append_new(a, json_real(reals[i]));
    srand(seed);
    for (int i = 0; i < 3000; i++) { /* hundredths as cell boxes are, of every size, and arbitrary doubles */
        long long c = ((long long)rand() << 20 ^ rand()) % (i < 1500 ? 10000000LL : 100000000000000000LL);
        json_array_append_new(a, json_real((i % 2 ? -(double)c : (double)c) / 100.0));
        json_array_append_new(a, json_real((double)rand() / RAND_MAX * pow(10, rand() % 40 - 20)));
    }
    json_object_set_new(root, "reals", a);
    json_object_set_new(root, "text",
                        json_string("quote \" backslash \\ slash / \b\f\n\r\t \x01\x1f\x7f é € 😀"));
    json_object_set_new(root, "key \"with\"\n escapes", json_string(""));
    json_object_set_new(root, "ints", json_pack("[I,I,I,I]", (json_int_t)0, (json_int_t)-1,
                                                (json_int_t)INT64_MAX, (json_int_t)INT64_MIN));
    json_object_set_new(root, "empty", json_pack("{s:[],s:{},s:[{}],s:[[]]}", "a", "o", "ao", "aa"));
    json_object_set_new(root, "lits", json_pack("[b,b,n]", 1, 0));
    json_object_set_new(root, "cells", json_pack("[[{s:i,s:[f,f,f,f]},n]]", "page", 1, "bbox", 425.55, 86.72,
                                                 507.25, 98.35));
    return root;
}

static void test_json_dump_as_jansson(void **state)
{
    (void)state;
    const size_t flags[] = {IB_OUT_JSON_FLAGS,
                            JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15),
                            JSON_INDENT(2) | JSON_PRESERVE_ORDER,
                            0,
                            JSON_INDENT(4) | JSON_COMPACT | JSON_REAL_PRECISION(3),
                            JSON_INDENT(31) | JSON_REAL_PRECISION(17),
                            JSON_COMPACT | JSON_ENSURE_ASCII | JSON_SORT_KEYS}; /* handed to jansson */
    for (unsigned seed = 1; seed <= 3; seed++) {
        json_t *tree = varied_tree(seed);
        for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++) {
            char *want = json_dumps(tree, flags[f]);
            char *got = own_dump(tree, flags[f], 0);
            assert_non_null(want);
            assert_string_equal(got, want);
            free(got);
            free(want);
        }
        /* two levels deep, as --once writes each record inside {"records": [...]} */
        json_t *whole = json_pack("{s:[O]}", "records", tree);
        size_t fl = JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15);
        char *want = json_dumps(whole, fl), *got = own_dump(tree, fl, 2);
        char *framed = malloc(strlen(got) + 64);
        assert_non_null(framed);
        sprintf(framed, "{\n  \"records\": [\n    %s\n  ]\n}", got);
        assert_string_equal(framed, want);
        free(framed);
        free(got);
        free(want);
        json_decref(whole);
        json_decref(tree);
    }
    /* what jansson refuses, refused: a text that is not UTF-8, a lone value */
    json_t *bad = json_pack("[o]", json_stringn_nocheck("\xff", 1));
    text_sink t = {0};
    assert_int_equal(ib_out_json_dump(bad, IB_OUT_JSON_FLAGS, 0, sink_put, &t), -1);
    assert_int_equal(json_dump_callback(bad, sink_put, &t, IB_OUT_JSON_FLAGS), -1);
    json_decref(bad);
    json_t *lone = json_integer(1);
    assert_int_equal(ib_out_json_dump(lone, IB_OUT_JSON_FLAGS, 0, sink_put, &t), -1);
    json_decref(lone);
    free(t.s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_table),      cmocka_unit_test(test_text_two_pages),
        cmocka_unit_test(test_run_time_errors), cmocka_unit_test(test_line_items),
        cmocka_unit_test(test_pdf_table),       cmocka_unit_test(test_table_field),
        cmocka_unit_test(test_tables),          cmocka_unit_test(test_pdf_matches_pdftotext),
        cmocka_unit_test(test_table_field_output_limit), cmocka_unit_test(test_json_dump_as_jansson),
        cmocka_unit_test(test_table_types_shared),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
