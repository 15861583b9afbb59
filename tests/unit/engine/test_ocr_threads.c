/* test_ocr_threads: OCR runs on the calling worker's thread alone, whatever the environment says. Tesseract's
 * OpenMP teams would otherwise add threads of their own that fight the runner's workers for the cores. The test
 * runs itself again without OMP_THREAD_LIMIT (the test command sets it, and the OpenMP runtime reads it when it
 * loads, before main), OCRs a page it renders, and counts the process's threads: an OpenMP team that ran keeps
 * its threads, so any count above one means OCR ran on more than the caller's thread. */
#include "ib_doc.h"

#include <cairo.h>
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

typedef struct png_buf {
    unsigned char *data;
    size_t len, cap;
} png_buf;

static cairo_status_t png_write(void *closure, const unsigned char *data, unsigned int length)
{
    png_buf *b = closure;
    if (b->len + length > b->cap) {
        size_t cap = (b->len + length) * 2;
        unsigned char *n = realloc(b->data, cap);
        if (!n) return CAIRO_STATUS_NO_MEMORY;
        b->data = n;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, length);
    b->len += length;
    return CAIRO_STATUS_SUCCESS;
}

/* A scanned letter page at 200 dpi: a few lines of large black text on white, enough for Tesseract's line
 * recognizer to run its parallel sections. */
static png_buf render_page(void)
{
    const int dpi = 200;
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 85 * dpi / 10, 11 * dpi);
    cairo_t *cr = cairo_create(s);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 40);
    static const char *const lines[] = {"INVOICE INV-2041", "Date: 2024-03-15", "Bill to: Acme Tools Ltd",
                                        "Widget, large 3 x 19.99", "Total due: 224.98 USD"};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        cairo_move_to(cr, 150, 250 + 90 * (double)i);
        cairo_show_text(cr, lines[i]);
    }
    cairo_destroy(cr);
    png_buf b = {0};
    cairo_surface_write_to_png_stream(s, png_write, &b);
    cairo_surface_destroy(s);
    return b;
}

static int thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    if (d) closedir(d);
    return n;
}

static void ocr_adds_no_threads(void **state)
{
    (void)state;
    assert_null(getenv("OMP_THREAD_LIMIT"));
    png_buf png = render_page();
    assert_non_null(png.data);
    ib_doc_opts opts = {.ocr = 1};
    char err[256] = "";
    ib_doc *doc = ib_doc_load("scan.png", png.data, png.len, &opts, err, sizeof err);
    assert_non_null(doc);
    ib_text text;
    assert_int_equal(ib_doc_reading_text(doc, &text), 0);
    assert_non_null(strstr(text.text, "224.98")); /* the OCR really ran */
    assert_int_equal(thread_count(), 1);
    ib_text_free(&text);
    ib_doc_free(doc);
    ib_doc_thread_cleanup();
    free(png.data);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (getenv("OMP_THREAD_LIMIT") || getenv("OMP_NUM_THREADS")) {
        unsetenv("OMP_THREAD_LIMIT");
        unsetenv("OMP_NUM_THREADS");
        execv("/proc/self/exe", argv);
        perror("execv /proc/self/exe");
        return 1;
    }
    const struct CMUnitTest tests[] = {cmocka_unit_test(ocr_adds_no_threads)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
