/* make_test_pdf: writes the tests' generated multi-column PDF (tests/unit/engine/doc_test_util.h) to a file,
 * for the black-box tests that need a real, slow-enough document (tests/blackbox/gen_docs.py).
 * Usage: make_test_pdf OUT.pdf PAGES */
#include "../unit/engine/doc_test_util.h"

#include <errno.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: make_test_pdf OUT.pdf PAGES\n");
        return 2;
    }
    char *end;
    errno = 0;
    long pages = strtol(argv[2], &end, 10);
    if (errno || *end || end == argv[2] || pages < 1 || pages > 1000) {
        fprintf(stderr, "make_test_pdf: PAGES '%s' is not a whole number from 1 to 1000\n", argv[2]);
        return 2;
    }
    size_t len;
    unsigned char *pdf = dt_columns_pdf((int)pages, 3, &len);
    int rc = dt_write(argv[1], pdf, len);
    free(pdf);
    if (rc != 0) {
        fprintf(stderr, "make_test_pdf: cannot write %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    return 0;
}
