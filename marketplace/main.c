/* ibsol-marketplace: stores published solutions (marketplace/<name>/<version>/), installs them for the runner
 * (installed/<name>/<version>/), lists and describes them. The operations live in ops.c, the folders in
 * store.c; this file is the daemon's tables. */
#include "market.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

long long mk_max_archive, mk_max_entries;

static const ib_cfg market_cfg[] = {
    {"max_archive", IB_CFG_INT, "1073741824", 1, 1LL << 40, &mk_max_archive,
     "largest total uncompressed size of a published archive, bytes"},
    {"max_entries", IB_CFG_INT, "100000", 1, 10000000, &mk_max_entries,
     "most entries in a published archive"},
};

static int market_start(void **state, char *err, size_t errsz)
{
    if (mk_store_open(err, errsz) < 0) return -1;
    mk_sweep();
    return 0;
}

static void market_stop(void *state)
{
    mk_store_close();
}

int main(int argc, char **argv)
{
    static const ib_op ops[] = {
        {IB_OP_MARKET_PUBLISH, mk_publish},     {IB_OP_MARKET_INSTALL, mk_install},
        {IB_OP_MARKET_UNINSTALL, mk_uninstall}, {IB_OP_MARKET_UNPUBLISH, mk_unpublish},
        {IB_OP_MARKET_LIST, mk_list},           {IB_OP_MARKET_INFO, mk_info},
    };
    static const ib_daemon_def def = {
        .name = "marketplace",
        .about = "stores, lists and installs published solutions (marketplace.*)",
        .service = IB_SVC_MARKETPLACE,
        .ops = ops,
        .nops = sizeof ops / sizeof ops[0],
        .cfg = market_cfg,
        .ncfg = sizeof market_cfg / sizeof market_cfg[0],
        .start = market_start,
        .stop = market_stop,
    };
    return ib_daemon_main(&def, argc, argv);
}
