/* libFuzzer target: the formula parser and checker on arbitrary bytes. Invariants: no crash, no leak, and a
 * formula that checks has a JSON tree. */
#include "ib_formula.h"

#include <stdlib.h>
#include <string.h>

static int resolve(void *ctx, const char *name, size_t len)
{
    (void)ctx;
    return (len == 1 && (name[0] == 'a' || name[0] == 'b')) ? (int)(name[0] - 'a') : -1;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    ib_formula_err err;
    ib_node *n = ib_formula_parse((const char *)data, size, &err);
    if (!n) {
        if (!err.msg[0]) abort(); /* every failure explains itself */
        return 0;
    }
    if (ib_formula_check(n, resolve, NULL, &err) == 0) {
        json_t *j = ib_node_to_json(n);
        if (!j) abort();
        json_decref(j);
    } else if (!err.msg[0]) {
        abort();
    }
    ib_node_free(n);
    return 0;
}
