/* libFuzzer target: the flow loader on arbitrary .ibflowbin bytes (decoding runs the whole validator: steps,
 * classes, rules, refiner programs, formulas, regexes, field order). Invariant: what decodes re-encodes to
 * bytes that decode again to the same encoding. */
#include "ib_flow.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    char err[1024];
    ib_flow *f = ib_flow_decode(data, size, err, sizeof err);
    if (!f) {
        if (!err[0]) abort();
        return 0;
    }
    char *a = NULL, *b = NULL;
    size_t al = 0, bl = 0;
    if (ib_flow_encode(f, f->name, f->version, &a, &al) != 0) abort();
    ib_flow *g = ib_flow_decode(a, al, err, sizeof err);
    if (!g) abort();
    if (ib_flow_encode(g, g->name, g->version, &b, &bl) != 0) abort();
    if (al != bl || memcmp(a, b, al) != 0) abort();
    free(a);
    free(b);
    ib_flow_free(g);
    ib_flow_free(f);
    return 0;
}
