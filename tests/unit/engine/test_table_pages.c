/* Unit tests of table() on pages that are not plain upright text layers: an invoice table printed sideways on
 * a portrait page (as the PDF stands, and with /Rotate 90 set by qpdf so viewers show it upright), and an
 * OCR'd rendering of an invoice page (the generated PDF rendered to an image and read back through
 * tesseract). Each asserts every cell's text and that every box is plausible: on its page, where the text was
 * drawn (within the extraction's or the OCR's tolerance), rows top to bottom and columns left to right. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four headers above first */
#include <cmocka.h>

#include "doc_check.h"
#include "ib_eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The table every test draws: titles, then rows of cells, at these column lefts (points) and this font size.
 */
#define NCOLS 4
#define NROWS 4
static const double colx[NCOLS] = {40, 300, 400, 500};
static const char *const head[NCOLS] = {"Description", "Qty", "Price", "Amount"};
static const char *const cells[NROWS][NCOLS] = {{"Copy paper", "10", "4.00", "40.00"},
                                                {"Toner cartridge", "2", "55.00", "110.00"},
                                                {"Stapler", "1", "12.50", "12.50"},
                                                {"Envelopes", "500", "0.05", "25.00"}};
#define HEAD_Y 120.0
#define ROW_Y(r) (150.0 + 24.0 * (r))
#define FONT 12.0
static const char formula[] = "table(INPUT_COL, ['Description', 'Qty', 'Price', 'Amount'], '^Total')";

/* The expected value of the table as JSON: every row's cells under the titles. */
static char *expected_json(void)
{
    char *s = malloc(2048);
    size_t n = (size_t)snprintf(s, 2048, "[");
    for (int r = 0; r < NROWS; r++) {
        n += (size_t)snprintf(s + n, 2048 - n, "%s{", r ? "," : "");
        for (int c = 0; c < NCOLS; c++)
            n += (size_t)snprintf(s + n, 2048 - n, "%s\"%s\":\"%s\"", c ? "," : "", head[c], cells[r][c]);
        n += (size_t)snprintf(s + n, 2048 - n, "}");
    }
    snprintf(s + n, 2048 - n, "]");
    return s;
}

/* Draws the invoice in the current user space of p (whatever transformation it has). */
static void draw_invoice(dt_pdf *p)
{
    dt_text(p, 40, 60, 16, "INVOICE 2024-88");
    for (int c = 0; c < NCOLS; c++)
        dt_text(p, colx[c], HEAD_Y, FONT, head[c]);
    for (int r = 0; r < NROWS; r++)
        for (int c = 0; c < NCOLS; c++)
            dt_text(p, colx[c], ROW_Y(r), FONT, cells[r][c]);
    dt_text(p, 400, ROW_Y(NROWS) + 20, FONT, "Total 187.50");
}

/* Where a drawn text's box is, in the drawing's own (upright) coordinates. */
static ib_bbox drawn_box(double x, double y, const char *s)
{
    cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 8, 8);
    cairo_t *cr = cairo_create(sf);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, FONT);
    cairo_text_extents_t te;
    cairo_font_extents_t fe;
    cairo_text_extents(cr, s, &te);
    cairo_font_extents(cr, &fe);
    cairo_destroy(cr);
    cairo_surface_destroy(sf);
    return (ib_bbox){x, y - fe.ascent, x + te.x_advance, y + fe.descent};
}

/* The invoice on a portrait letter page, upright. */
static unsigned char *upright_pdf(size_t *len)
{
    dt_pdf p;
    dt_pdf_begin(&p, 612, 792);
    draw_invoice(&p);
    cairo_show_page(p.cr);
    return dt_pdf_end(&p, len);
}

/* The invoice printed sideways: drawn bottom to top on a portrait page, so the page read turned a quarter to
 * the left is a 792 x 612 landscape page with the invoice upright on it. */
static unsigned char *sideways_pdf(size_t *len)
{
    dt_pdf p;
    dt_pdf_begin(&p, 612, 792);
    cairo_translate(p.cr, 0, 792);
    cairo_rotate(p.cr, -M_PI / 2);
    draw_invoice(&p);
    cairo_show_page(p.cr);
    return dt_pdf_end(&p, len);
}

/* pdf with /Rotate 90 set on its pages by qpdf (malloc'd). */
static char *qpdf_rotate(const unsigned char *pdf, size_t len, size_t *outlen)
{
    char dir[] = "/tmp/ibsol-table-rot-XXXXXX", in[64], out[64];
    assert_non_null(mkdtemp(dir));
    snprintf(in, sizeof in, "%s/in.pdf", dir);
    snprintf(out, sizeof out, "%s/out.pdf", dir);
    assert_int_equal(dt_write(in, pdf, len), 0);
    char *argv[] = {"qpdf", "--rotate=+90", "--", in, out, NULL};
    int rc = dt_run(argv);
    if (rc < 0) fail_msg("qpdf did not start: install it (deploy/install-deps.sh --test)");
    if (rc != 0) fail_msg("qpdf --rotate=+90 exited with %d", rc);
    char *b = dt_read(out, outlen);
    assert_non_null(b);
    unlink(in);
    unlink(out);
    rmdir(dir);
    return b;
}

/* Evaluates the table formula on doc: the value (caller unrefs), its JSON in *json (malloc'd). */
static ib_value *eval_table(ib_doc *doc, char **json)
{
    ib_formula_err fe;
    ib_node *root = ib_formula_parse(formula, strlen(formula), &fe);
    if (!root || ib_formula_check(root, NULL, NULL, &fe) != 0) fail_msg("%u:%u %s", fe.line, fe.col, fe.msg);
    ib_eval_env env = {.doc = doc, .file_name = "t"};
    ib_eval *ev = ib_eval_new(&env);
    ib_value *v = ib_eval_node(ev, root, NULL, 0);
    json_t *j = ib_eval_json(ev, v, IB_FT_TEXT);
    *json = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(j);
    ib_eval_free(ev);
    ib_node_free(root);
    return v;
}

/* Every cell has one box, on page 0 and inside it, within tol of where it was drawn (to its x_advance: the
 * extraction's glyph boxes end up to 2 points short of it); rows go down the page and each row's cells go
 * left to right. */
static void check_boxes(const ib_doc *d, const ib_value *t, double tol, const char *what)
{
    const ib_page *pg = &d->pages[0];
    assert_int_equal(t->kind, IB_V_TABLE);
    assert_int_equal(t->nitems, NROWS);
    for (size_t r = 0; r < NROWS; r++) {
        const ib_value *row = t->items[r];
        assert_int_equal(row->nitems, NCOLS);
        for (size_t c = 0; c < NCOLS; c++) {
            const ib_value *cell = row->items[c];
            if (cell->nprov != 1) fail_msg("%s: row %zu col %zu: %zu boxes", what, r, c, cell->nprov);
            const ib_pbox *p = &cell->prov[0];
            const ib_bbox *b = &p->box, want = drawn_box(colx[c], ROW_Y(r), cells[r][c]);
            if (p->page != 0 || b->x0 < 0 || b->y0 < 0 || b->x1 > pg->width || b->y1 > pg->height ||
                b->x0 >= b->x1 || b->y0 >= b->y1)
                fail_msg(
                    "%s: row %zu col %zu: page %u [%.1f %.1f %.1f %.1f] is not a box on the %.0f x %.0f page",
                    what, r, c, p->page, b->x0, b->y0, b->x1, b->y1, pg->width, pg->height);
            if (fabs(b->x0 - want.x0) > tol || fabs(b->x1 - want.x1) > tol ||
                fabs((b->y0 + b->y1) / 2 - (want.y0 + want.y1) / 2) > tol)
                fail_msg("%s: row %zu col %zu '%s': [%.1f %.1f %.1f %.1f], drawn at [%.1f %.1f %.1f %.1f]",
                         what, r, c, cells[r][c], b->x0, b->y0, b->x1, b->y1, want.x0, want.y0, want.x1,
                         want.y1);
            if (c > 0) assert_true(b->x0 > row->items[c - 1]->prov[0].box.x1);
            if (r > 0) assert_true(b->y0 > t->items[r - 1]->items[c]->prov[0].box.y1);
        }
    }
}

static void check_table(ib_doc *d, double tol, const char *what)
{
    char *got, *want = expected_json();
    ib_value *t = eval_table(d, &got);
    if (t->kind == IB_V_ERROR) fail_msg("%s: %s", what, t->str);
    if (strcmp(got, want) != 0) fail_msg("%s:\n got  %s\n want %s", what, got, want);
    check_boxes(d, t, tol, what);
    ib_v_unref(t);
    free(got);
    free(want);
}

static ib_doc *load(const char *name, const void *bytes, size_t len, int ocr)
{
    ib_doc *d = load_bytes(name, bytes, len, ocr);
    if (!d) fail_msg("%s did not load", name);
    return d;
}

static void test_rotated_page(void **state)
{
    (void)state;
    /* drawn sideways: the page is read turned upright, a landscape page with the table where it was drawn */
    size_t len, rlen;
    unsigned char *pdf = sideways_pdf(&len);
    ib_doc *d = load("sideways.pdf", pdf, len, 0);
    assert_true(fabs(d->pages[0].width - 792) < 0.5 && fabs(d->pages[0].height - 612) < 0.5);
    check_table(d, 3.0, "sideways");
    ib_doc_free(d);
    /* the same page with /Rotate 90: viewers show it upright, and so does the engine */
    char *rotated = qpdf_rotate(pdf, len, &rlen);
    d = load("rotated.pdf", rotated, rlen, 0);
    assert_true(fabs(d->pages[0].width - 792) < 0.5 && fabs(d->pages[0].height - 612) < 0.5);
    check_table(d, 3.0, "/Rotate 90");
    ib_doc_free(d);
    free(rotated);
    free(pdf);
}

static void test_ocr_page(void **state)
{
    (void)state;
    size_t len;
    unsigned char *pdf = upright_pdf(&len);
    ib_doc *d = load("upright.pdf", pdf, len, 0);
    check_table(d, 3.0, "text layer"); /* the reference: the same page read from its text layer */
    ib_doc_free(d);
    /* a 200 dpi scan of it, read by OCR: the same cells, boxes within a few points of the drawn text */
    double pw, ph;
    cairo_surface_t *img = render_pdf(pdf, len, 0, 200, &pw, &ph);
    d = ocr_png(img, 200, pw, ph);
    check_table(d, 4.0, "OCR");
    ib_doc_free(d);
    free(pdf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotated_page),
        cmocka_unit_test(test_ocr_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
