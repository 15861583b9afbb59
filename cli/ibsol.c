/* ibsol: the client command for an ibsol server (package, publish, install and run solutions; jobs; the drive;
 * local tests of a solution). main(): global options, the profile, the command, and the exit code. */
#include "ibsol.h"

#include "ib_config.h"
#include "ib_version.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

cli_state cli;
volatile sig_atomic_t cli_interrupted;

typedef struct command {
    const char *name;
    int (*run)(cli_args *a);
    int needs_server;
    const char *usage; /* first line of --help */
    const char *help;  /* the rest */
} command;

static const command commands[] = {
    {"login", cmd_login, 0, "ibsol login URL [--token TOKEN] [--profile P]",
     "Stores the server URL and its token in the profile (~/.config/ibsol/config, mode 0600) after checking\n"
     "them with the server. Without --token the token is read from standard input (hidden on a terminal).\n"},
    {"package", cmd_package, 0, "ibsol package DIR [-o FILE]",
     "Packages the content folder DIR (package.json, flow.json and refiners, or one compiled .ibflowbin) into\n"
     "an .ibsolution, locally and byte-identical to the server's solution/create of the same folder.\n"
     "Default FILE: ./<name>-<version>.ibsolution.\n"},
    {"publish", cmd_publish, 1, "ibsol publish FILE.ibsolution|DIR",
     "Publishes an .ibsolution (admin). A folder is packaged first. The archive is uploaded to\n"
     "/<user>/.ibsol/publish/ on the drive, then marketplace/publish is called.\n"},
    {"install", cmd_install, 1, "ibsol install NAME[@VERSION]",
     "Installs a published solution (VERSION defaults to latest).\n"},
    {"uninstall", cmd_uninstall, 1, "ibsol uninstall NAME[@VERSION]",
     "Uninstalls a version, or every installed version when none is given.\n"},
    {"unpublish", cmd_unpublish, 1, "ibsol unpublish NAME@VERSION",
     "Retires a published version and uninstalls it (admin).\n"},
    {"list", cmd_list, 1, "ibsol list [--json]", "Lists the catalog: every solution, its versions and what is installed.\n"},
    {"info", cmd_info, 1, "ibsol info NAME[@VERSION] [--json]",
     "Shows a solution version: manifest, sha256, size, when and by whom it was published.\n"},
    {"run", cmd_run, 1,
     "ibsol run NAME[@VERSION] FILE... | --folder LOCAL_OR_DRIVE_DIR [--no-wait] [--json|--csv]",
     "Runs an installed solution. With FILEs: run_sync, the fields come back at once. With --folder: a local\n"
     "folder is uploaded to /<user>/.ibsol/cli/<id>/in first (a path that does not exist locally and starts\n"
     "with '/', or one written drive:/PATH, is a drive folder), solution/run starts a job and its progress is\n"
     "followed to the end. --no-wait prints the job id and returns. Ctrl-C stops following (the job goes on).\n"
     "Output: a table of fields, or --json (the records), or --csv (one line per record).\n"},
    {"jobs", cmd_jobs, 1,
     "ibsol jobs list [--limit N] | status JOB | results JOB [--json|--csv] | cancel JOB | watch JOB",
     "Lists your jobs, shows one, prints its results, cancels it, or follows its progress to the end.\n"},
    {"files", cmd_files, 1,
     "ibsol files ls DRIVE_PATH | put LOCAL DRIVE_PATH | get DRIVE_PATH [LOCAL] | rm DRIVE_PATH | cp SRC DST",
     "The drive. put uploads a file (a folder: every file in it); files larger than the chunk size\n"
     "(--chunk-size, default 8 MiB) go in chunks (PATCH with IB-Cursor) and an interrupted upload resumes where\n"
     "the server's copy ends when the same command runs again. --limit-rate BYTES caps the upload rate. get\n"
     "writes to LOCAL (default: the file's name; '-' for standard output). cp copies on the server.\n"},
    {"test", cmd_test, 0, "ibsol test DIR [--update]",
     "Runs the solution in DIR locally (no server) on every document under DIR/tests/ and compares each with\n"
     "the expected fields beside it (tests/x.pdf -> tests/x.pdf.expected.json: an object of field -> value, or\n"
     "a list of them, one per record). Prints a field-by-field diff; exits 8 on any difference or failed\n"
     "document. --update writes the expected files from this run instead.\n"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const char global_help[] =
    "Global options: --profile P (or IBSOL_PROFILE), --url URL (or IBSOL_URL), --token T (or IBSOL_TOKEN),\n"
    "--no-color (or NO_COLOR), --quiet, --help, --version.\n"
    "Exit codes: 0 ok, 2 usage, 3 server unreachable, 4 token refused or not allowed, 5 not found,\n"
    "6 server refused or failed, 7 local file error, 8 test differences, 9 a run's job or file failed,\n"
    "130 interrupted.\n";

static void main_help(FILE *f)
{
    fprintf(f, "ibsol %s: package, publish, install and run ibsol solutions.\n\nCommands:\n", IB_VERSION);
    for (size_t i = 0; i < NCOMMANDS; i++) fprintf(f, "  %s\n", commands[i].usage);
    fprintf(f, "\n%s\n'ibsol COMMAND --help' describes a command; 'man ibsol' all of them.\n", global_help);
}

int cli_help(const char *cmd)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i].name, cmd) == 0) {
            printf("usage: %s\n\n%s\n%s", commands[i].usage, commands[i].help, global_help);
            return EX_OK;
        }
    }
    main_help(stdout);
    return EX_OK;
}

void cli_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli.said++;
    fprintf(stderr, "%sibsol:%s ", cli.err_color ? "\033[1;31m" : "", cli.err_color ? "\033[0m" : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (cmd)
        cli_err("%s: %s; see 'ibsol %s --help'", cmd, msg, cmd);
    else
        cli_err("%s; see 'ibsol --help'", msg);
    return EX_USAGE;
}

/* ---- arguments ---- */

static void args_remove(cli_args *a, int i, int count)
{
    memmove(a->v + i, a->v + i + count, (size_t)(a->n - i - count) * sizeof *a->v);
    a->n -= count;
}

int args_flag(cli_args *a, const char *name, const char *alt)
{
    int found = 0;
    for (int i = 0; i < a->n; i++) {
        if (strcmp(a->v[i], "--") == 0) break;
        if (strcmp(a->v[i], name) == 0 || (alt && strcmp(a->v[i], alt) == 0)) {
            args_remove(a, i--, 1);
            found = 1;
        }
    }
    return found;
}

int args_value(cli_args *a, const char *name, const char *alt, const char **val)
{
    size_t nlen = strlen(name);
    for (int i = 0; i < a->n; i++) {
        if (strcmp(a->v[i], "--") == 0) break;
        if (strncmp(a->v[i], name, nlen) == 0 && a->v[i][nlen] == '=') {
            *val = a->v[i] + nlen + 1;
            args_remove(a, i, 1);
            return 0;
        }
        if (strcmp(a->v[i], name) == 0 || (alt && strcmp(a->v[i], alt) == 0)) {
            if (i + 1 >= a->n) {
                cli_err("option %s needs a value", a->v[i]);
                return -1;
            }
            *val = a->v[i + 1];
            args_remove(a, i, 2);
            return 0;
        }
    }
    *val = NULL;
    return 0;
}

int args_positional(cli_args *a, const char *cmd, int min, int max)
{
    for (int i = 0; i < a->n; i++) {
        if (strcmp(a->v[i], "--") == 0) {
            args_remove(a, i, 1);
            break;
        }
        if (a->v[i][0] == '-' && a->v[i][1] != '\0') {
            cli_usage(cmd, "unknown option '%s'", a->v[i]);
            return -1;
        }
    }
    if (a->n < min || (max >= 0 && a->n > max)) {
        const char *usage = "";
        for (size_t i = 0; i < NCOMMANDS; i++)
            if (strcmp(commands[i].name, cmd) == 0) usage = commands[i].usage;
        if (a->n < min)
            cli_usage(cmd, "missing argument (usage: %s)", usage);
        else
            cli_usage(cmd, "unexpected argument '%s'", a->v[max]);
        return -1;
    }
    return 0;
}

/* ---- main ---- */

static void on_signal(int sig)
{
    cli_interrupted = sig;
}

static int parse_size(const char *opt, const char *s, uint64_t min, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    uint64_t mul = 1;
    if (*end == 'k' || *end == 'K') mul = 1024, end++;
    else if (*end == 'm' || *end == 'M') mul = 1024 * 1024, end++;
    else if (*end == 'g' || *end == 'G') mul = 1024ull * 1024 * 1024, end++;
    if (errno || end == s || *end || s[0] == '-' || v == 0 || v > (1ull << 40) / mul || v * mul < min) {
        cli_usage(NULL, "%s '%s' must be a number of bytes from %llu (K, M, G suffixes allowed)", opt, s,
                  (unsigned long long)min);
        return -1;
    }
    *out = v * mul;
    return 0;
}

int main(int argc, char **argv)
{
    cli_args a = {argc - 1, argv + 1};
    cli.out_tty = isatty(STDOUT_FILENO);
    cli.err_tty = isatty(STDERR_FILENO);
    int no_color = args_flag(&a, "--no-color", NULL) || (getenv("NO_COLOR") && *getenv("NO_COLOR"));
    cli.color = cli.out_tty && !no_color;
    cli.err_color = cli.err_tty && !no_color;
    cli.quiet = args_flag(&a, "--quiet", "-q");
    cli.chunk = 8u << 20;
    const char *profile, *url, *token, *chunk, *rate;
    if (args_value(&a, "--profile", NULL, &profile) || args_value(&a, "--url", NULL, &url) ||
        args_value(&a, "--token", NULL, &token) || args_value(&a, "--chunk-size", NULL, &chunk) ||
        args_value(&a, "--limit-rate", NULL, &rate))
        return EX_USAGE;
    if ((chunk && parse_size("--chunk-size", chunk, 4096, &cli.chunk)) ||
        (rate && parse_size("--limit-rate", rate, 1024, &cli.limit_rate)))
        return EX_USAGE;
    cli.profile = profile ? profile : getenv("IBSOL_PROFILE") && *getenv("IBSOL_PROFILE") ? getenv("IBSOL_PROFILE")
                                                                                        : "default";
    int help = args_flag(&a, "--help", "-h");
    if (a.n > 0 && strcmp(a.v[0], "help") == 0) {
        help = 1;
        a.n--, a.v++;
    }
    if (args_flag(&a, "--version", "-V")) {
        ib_config_print_version("ibsol"); /* the one line every ibsol program prints */
        return EX_OK;
    }
    if (a.n == 0) {
        if (help) {
            main_help(stdout);
            return EX_OK;
        }
        main_help(stderr);
        return EX_USAGE;
    }
    const command *c = NULL;
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, a.v[0]) == 0) c = &commands[i];
    if (!c) return cli_usage(NULL, "'%s' is not an ibsol command", a.v[0]);
    if (help) return cli_help(c->name);
    a.n--, a.v++;

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    http_init();
    int rc = EX_OK;
    if (c->needs_server || strcmp(c->name, "login") == 0) {
        /* login takes its URL as an argument; --url/--token still win over the stored profile */
        if (c->needs_server) rc = cfg_load();
        if (rc == EX_OK && url) snprintf(cli.url, sizeof cli.url, "%s", url);
        if (rc == EX_OK && token) snprintf(cli.token, sizeof cli.token, "%s", token);
        if (rc == EX_OK && c->needs_server && !cli.url[0])
            rc = cli_usage(c->name, "no server: run 'ibsol login URL' (profile '%s') or set IBSOL_URL",
                           cli.profile);
        size_t n = strlen(cli.url);
        while (n > 0 && cli.url[n - 1] == '/') cli.url[--n] = '\0';
    }
    if (rc == EX_OK) rc = c->run(&a);
    if (rc == EX_INTERRUPTED && !cli.said) cli_err("interrupted");
    http_cleanup();
    fflush(stdout);
    if (ferror(stdout) && rc == EX_OK) {
        cli_err("standard output: %s", strerror(errno));
        rc = EX_LOCAL;
    }
    return rc;
}
