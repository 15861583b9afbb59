/* ib_config: typed configuration tables. Each entry is read from the environment (IBSOL_<NAME>) and then from
 * command-line flags (--name=value or --name value, '_' written '-'), checked against its bounds, and printed by
 * --help with its default and help text. One table per daemon: the settings are declared once. */
#ifndef IB_CONFIG_H
#define IB_CONFIG_H

#include <stddef.h>

typedef enum ib_cfg_type { IB_CFG_STR, IB_CFG_INT, IB_CFG_BOOL } ib_cfg_type;

typedef struct ib_cfg {
    const char *name; /* "http_port": env IBSOL_HTTP_PORT, flag --http-port */
    ib_cfg_type type;
    const char *def;  /* default as text; NULL or "" = empty / 0 */
    long long min, max; /* bounds of an int */
    void *var; /* char ** (malloc'd, freed by ib_config_free), long long *, or int * */
    const char *help;
} ib_cfg;

/* Returns 0 when loaded, 1 when --help or --version was printed (the program should exit 0), -1 with a message
 * in err naming the setting ("IBSOL_HTTP_PORT: '80a' is not a whole number", "--workers: 0 is below the minimum
 * 1", "unknown option --prot"). Arguments that are not flags are left in place: *argc_out counts them (argv is
 * reordered). */
int ib_config_load(const ib_cfg *const *tables, const size_t *counts, size_t ntables, int argc, char **argv,
                   const char *prog, const char *about, int *argc_out, char *err, size_t errsz);
/* Prints "<prog> <version> (git <commit>)" (without the parenthesis when not built from git) on stdout: what
 * --version prints for every program. */
void ib_config_print_version(const char *prog);
void ib_config_free(const ib_cfg *const *tables, const size_t *counts, size_t ntables);

#endif
