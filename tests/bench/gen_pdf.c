/* gen_pdf: renders the benchmarks' PDFs with cairo. The documents themselves (and the values they hold) are
 * drawn by tests/bench/invoices.py from a fixed seed; this program only lays the text out, so the bytes depend
 * on the spec alone (fixed creation date, embedded subset of DejaVu Sans, a real text layer with ToUnicode).
 *
 *   gcc -O2 tests/bench/gen_pdf.c $(pkg-config --cflags --libs cairo) -o gen_pdf
 *   gen_pdf < SPEC
 *
 * SPEC, one command a line (fields separated by one space; TEXT runs to the end of the line):
 *   F PATH                    start a new PDF (ends the previous one)
 *   P W H                     start a new page of W x H points
 *   T X Y SIZE BOLD ALIGN TEXT  text at baseline Y (from the top); ALIGN L (starts at X) or R (ends at X)
 *   L X1 Y1 X2 Y2             a 0.5 pt rule
 */
#include <cairo-pdf.h>
#include <cairo.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cairo_surface_t *surf;
static cairo_t *cr;
static int pages;

static void end_doc(void)
{
    if (!cr) return;
    cairo_show_page(cr);
    cairo_destroy(cr);
    cairo_surface_finish(surf);
    if (cairo_surface_status(surf) != CAIRO_STATUS_SUCCESS) {
        fprintf(stderr, "gen_pdf: %s\n", cairo_status_to_string(cairo_surface_status(surf)));
        exit(1);
    }
    cairo_surface_destroy(surf);
    cr = NULL;
    surf = NULL;
}

int main(void)
{
    static char line[1 << 16];
    unsigned long lineno = 0, docs = 0;
    while (fgets(line, sizeof line, stdin)) {
        lineno++;
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == 'F' && line[1] == ' ') {
            end_doc();
            surf = cairo_pdf_surface_create(line + 2, 612, 792);
            cairo_pdf_surface_set_metadata(surf, CAIRO_PDF_METADATA_CREATE_DATE, "2024-01-01T00:00:00Z");
            cairo_pdf_surface_set_metadata(surf, CAIRO_PDF_METADATA_CREATOR, "ibsol bench gen_pdf");
            cr = cairo_create(surf);
            if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
                fprintf(stderr, "gen_pdf: %s: %s\n", line + 2, cairo_status_to_string(cairo_status(cr)));
                return 1;
            }
            pages = 0;
            docs++;
            continue;
        }
        if (!cr) {
            fprintf(stderr, "gen_pdf: line %lu: no F line yet\n", lineno);
            return 1;
        }
        if (line[0] == 'P') {
            double w, h;
            if (sscanf(line + 1, "%lf %lf", &w, &h) != 2) goto bad;
            if (pages++) cairo_show_page(cr);
            cairo_pdf_surface_set_size(surf, w, h);
            cairo_set_source_rgb(cr, 0, 0, 0);
        } else if (line[0] == 'T') {
            double x, y, size;
            int bold, off = 0;
            char align;
            if (sscanf(line + 1, " %lf %lf %lf %d %c %n", &x, &y, &size, &bold, &align, &off) != 5 || !off)
                goto bad;
            const char *text = line + 1 + off;
            cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                                   bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
            cairo_set_font_size(cr, size);
            if (align == 'R') {
                cairo_text_extents_t ext;
                cairo_text_extents(cr, text, &ext);
                x -= ext.x_advance;
            }
            cairo_move_to(cr, x, y);
            cairo_show_text(cr, text);
        } else if (line[0] == 'L') {
            double x1, y1, x2, y2;
            if (sscanf(line + 1, "%lf %lf %lf %lf", &x1, &y1, &x2, &y2) != 4) goto bad;
            cairo_set_line_width(cr, 0.5);
            cairo_move_to(cr, x1, y1);
            cairo_line_to(cr, x2, y2);
            cairo_stroke(cr);
        } else if (line[0]) {
            goto bad;
        }
    }
    end_doc();
    fprintf(stderr, "gen_pdf: %lu documents\n", docs);
    return 0;
bad:
    fprintf(stderr, "gen_pdf: line %lu: cannot read '%.80s'\n", lineno, line);
    return 1;
}
