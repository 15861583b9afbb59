/* ib_config: environment + flags + --help from one table (the Postfix way: {name, default, &var, min, max}). */
#include "ib_config.h"

#include "ib_version.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void env_name(const char *name, char *out, size_t outsz)
{
    size_t n = (size_t)snprintf(out, outsz, "IBSOL_");
    for (const char *p = name; *p && n + 1 < outsz; p++) out[n++] = (char)toupper((unsigned char)*p);
    out[n] = '\0';
}

static void flag_name(const char *name, char *out, size_t outsz)
{
    size_t n = (size_t)snprintf(out, outsz, "--");
    for (const char *p = name; *p && n + 1 < outsz; p++) out[n++] = *p == '_' ? '-' : *p;
    out[n] = '\0';
}

static int set_value(const ib_cfg *c, const char *value, const char *source, char *err, size_t errsz)
{
    if (!value) value = "";
    switch (c->type) {
    case IB_CFG_STR: {
        char **var = c->var;
        char *copy = strdup(value);
        if (!copy) return snprintf(err, errsz, "out of memory"), -1;
        free(*var);
        *var = copy;
        return 0;
    }
    case IB_CFG_INT: {
        errno = 0;
        char *end;
        long long v = strtoll(value, &end, 10);
        if (!*value || *end || errno) {
            snprintf(err, errsz, "%s: '%s' is not a whole number", source, value);
            return -1;
        }
        if (v < c->min || v > c->max) {
            snprintf(err, errsz, "%s: %lld is outside %lld..%lld", source, v, c->min, c->max);
            return -1;
        }
        *(long long *)c->var = v;
        return 0;
    }
    case IB_CFG_BOOL:
        if (!*value || !strcmp(value, "0") || !strcasecmp(value, "false") || !strcasecmp(value, "no") ||
            !strcasecmp(value, "off"))
            *(int *)c->var = 0;
        else if (!strcmp(value, "1") || !strcasecmp(value, "true") || !strcasecmp(value, "yes") ||
                 !strcasecmp(value, "on"))
            *(int *)c->var = 1;
        else {
            snprintf(err, errsz, "%s: '%s' is not a boolean (true/false)", source, value);
            return -1;
        }
        return 0;
    }
    return -1;
}

static void print_help(const ib_cfg *const *tables, const size_t *counts, size_t ntables, const char *prog,
                       const char *about)
{
    printf("%s: %s\n\nUsage: %s [options]\n\nEvery option can also be set in the environment "
           "(shown in brackets); flags win.\n\n",
           prog, about, prog);
    for (size_t t = 0; t < ntables; t++)
        for (size_t i = 0; i < counts[t]; i++) {
            const ib_cfg *c = &tables[t][i];
            char env[96], flag[96];
            env_name(c->name, env, sizeof env);
            flag_name(c->name, flag, sizeof flag);
            printf("  %-24s %s [%s", flag, c->help, env);
            if (c->type == IB_CFG_INT)
                printf(", %lld..%lld", c->min, c->max);
            if (c->def && *c->def) printf(", default %s", c->def);
            printf("]\n");
        }
    printf("  %-24s %s\n", "--help", "print this help and exit");
    printf("  %-24s %s\n", "--version", "print the version and exit");
}

void ib_config_print_version(const char *prog)
{
    if (IB_GIT_COMMIT[0])
        printf("%s %s (git %s)\n", prog, IB_VERSION, IB_GIT_COMMIT);
    else
        printf("%s %s\n", prog, IB_VERSION);
}

int ib_config_load(const ib_cfg *const *tables, const size_t *counts, size_t ntables, int argc, char **argv,
                   const char *prog, const char *about, int *argc_out, char *err, size_t errsz)
{
    char name[96];
    /* --help and --version answer before any value is read: they must work while a setting in the environment
     * is wrong, which is when someone reaches for them. */
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h")) {
            print_help(tables, counts, ntables, prog, about);
            return 1;
        }
        if (!strcmp(argv[a], "--version")) {
            ib_config_print_version(prog);
            return 1;
        }
    }
    for (size_t t = 0; t < ntables; t++)
        for (size_t i = 0; i < counts[t]; i++) {
            const ib_cfg *c = &tables[t][i];
            if (set_value(c, c->def, c->name, err, errsz) < 0) return -1;
            env_name(c->name, name, sizeof name);
            const char *env = getenv(name);
            if (env && set_value(c, env, name, err, errsz) < 0) return -1;
        }
    int kept = 1;
    for (int a = 1; a < argc; a++) {
        char *arg = argv[a];
        if (strncmp(arg, "--", 2) != 0 || !strcmp(arg, "--")) {
            argv[kept++] = arg;
            continue;
        }
        const char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        const ib_cfg *found = NULL;
        for (size_t t = 0; t < ntables && !found; t++)
            for (size_t i = 0; i < counts[t] && !found; i++) {
                flag_name(tables[t][i].name, name, sizeof name);
                if (strlen(name) == len && !strncmp(name, arg, len)) found = &tables[t][i];
            }
        if (!found) {
            /* Flags we do not know are left for the program (e.g. --once); it decides. */
            argv[kept++] = arg;
            continue;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value && found->type == IB_CFG_BOOL)
            value = "true";
        else if (!value) {
            if (a + 1 >= argc) {
                snprintf(err, errsz, "%.*s needs a value", (int)len, arg);
                return -1;
            }
            value = argv[++a];
        }
        snprintf(name, sizeof name, "%.*s", (int)len, arg);
        if (set_value(found, value, name, err, errsz) < 0) return -1;
    }
    argv[kept] = NULL;
    if (argc_out) *argc_out = kept;
    return 0;
}

void ib_config_free(const ib_cfg *const *tables, const size_t *counts, size_t ntables)
{
    for (size_t t = 0; t < ntables; t++)
        for (size_t i = 0; i < counts[t]; i++)
            if (tables[t][i].type == IB_CFG_STR) {
                char **var = tables[t][i].var;
                free(*var);
                *var = NULL;
            }
}
