/* ibsol: the client command. Shared declarations of its parts: arguments (ibsol.c), profiles (ibsol_cfg.c),
 * HTTP (ibsol_http.c), terminal output (ibsol_ui.c), and the commands (ibsol_cmds.c, ibsol_files.c,
 * ibsol_test.c). */
#ifndef IBSOL_CLI_H
#define IBSOL_CLI_H

#include "ib_package.h"

#include <jansson.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

/* Exit codes, one per failure class (documented in docs/cli.md and ibsol(1)). */
enum {
    EX_OK = 0,
    EX_USAGE = 2,        /* bad command line, or no server configured */
    EX_UNREACHABLE = 3,  /* the server cannot be reached */
    EX_AUTH = 4,         /* the token is refused (401) or the call is not allowed (403) */
    EX_NOT_FOUND = 5,    /* no such solution, version, job or drive path (404) */
    EX_SERVER = 6,       /* the server refused the request or failed (400, 409, 413, 5xx, a bad answer) */
    EX_LOCAL = 7,        /* a local file or folder is missing or wrong (including one that does not package) */
    EX_DIFF = 8,         /* ibsol test: a document's fields differ from the expected ones, or it failed */
    EX_JOB_FAILED = 9,   /* a followed job ended FAILED or CANCELLED, or a file of `ibsol run` failed */
    EX_INTERRUPTED = 130 /* Ctrl-C (SIGINT) or SIGTERM */
};

/* ---- arguments: a command's words, options taken out as the command asks for them ---- */
typedef struct cli_args {
    int n;
    char **v; /* borrowed from argv */
} cli_args;

/* Removes a flag ("--json") wherever it is; 1 when it was there. */
int args_flag(cli_args *a, const char *name, const char *alt);
/* Removes an option with a value ("-o FILE", "--out=FILE"); *val is NULL when absent. -1 (after a usage
 * message) when the value is missing. */
int args_value(cli_args *a, const char *name, const char *alt, const char **val);
/* The positional words left; -1 (after a usage message) when an unknown option remains or their count is
 * outside [min, max]. */
int args_positional(cli_args *a, const char *cmd, int min, int max);

/* ---- global state ---- */
typedef struct cli_state {
    const char *profile;    /* --profile, IBSOL_PROFILE, or "default" */
    char url[2048];         /* without trailing '/' */
    char token[1024];
    char user[256];         /* the token's user, asked once (whoami) when a command needs a drive folder */
    int out_tty, err_tty;   /* stdout / stderr are terminals */
    int color;              /* colour on stdout (a terminal, no NO_COLOR, no --no-color) */
    int err_color;
    int quiet;
    int http_quiet;      /* api_raw/api_json print no error line (the caller handles the code) */
    int said;            /* error lines printed (main adds "interrupted" to an interruption nothing explained) */
    uint64_t chunk;      /* upload chunk size (--chunk-size) */
    uint64_t limit_rate; /* upload bytes per second, 0: no limit (--limit-rate) */
} cli_state;

extern cli_state cli;
extern volatile sig_atomic_t cli_interrupted;

void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints the command's help ("ibsol CMD --help") and returns EX_OK. */
int cli_help(const char *cmd);
/* Prints "ibsol: CMD: <msg>; see 'ibsol CMD --help'" and returns EX_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- profiles (~/.config/ibsol/config, JSON) ---- */
/* The config file's path: $XDG_CONFIG_HOME/ibsol/config or ~/.config/ibsol/config. -1 when neither is set. */
int cfg_path(char *out, size_t outsz);
/* Reads profile `name` of the file at path: url and token (empty when unset). 0 (also when the file or the
 * profile does not exist), or -1 with a message naming the file (unreadable, not JSON, wrong shape). */
int cfg_read(const char *path, const char *name, char *url, size_t urlsz, char *token, size_t tokensz, char *err,
             size_t errsz);
/* Sets profile `name` in the file at path (created mode 0600 with its folder 0700, replaced atomically, other
 * profiles kept). 0, or -1 with a message. */
int cfg_write(const char *path, const char *name, const char *url, const char *token, char *err, size_t errsz);
/* Loads the server of the profile into cli, with IBSOL_URL / IBSOL_TOKEN over it. EX_OK or an exit code. */
int cfg_load(void);

/* ---- HTTP ---- */
typedef struct http_reply {
    long status;
    char *body; /* NUL-terminated */
    size_t len;
    char ctype[128];
    long long length; /* Content-Length of a HEAD, -1 when absent */
    char node_type[16]; /* IB-Node-Type of the files API: "file" or "folder" */
} http_reply;

void http_init(void);
void http_cleanup(void);
/* Percent-encodes a drive path for a URL (segments encoded, '/' kept, a leading '/' dropped). malloc'd. */
char *http_drive_url(const char *drive_path);
char *http_escape(const char *s);
/* A JSON API call: method on path (e.g. "/marketplace/list?x=y"), body a JSON object or NULL. On success EX_OK
 * and *out the answer's JSON object (new reference; NULL when no JSON came). On failure prints one line
 * ("ibsol: <what the server said> (HTTP 404 not_found)") and returns the exit code of its class. */
int api_json(const char *method, const char *path, const json_t *body, json_t **out);
/* Any request: raw body (or NULL) of len bytes, extra headers (NULL-terminated, may be NULL), reply into rep
 * (free with http_reply_free). Writes the body into `sink` instead when not NULL (downloads). Progress callback
 * as ui_progress (may be NULL). Errors printed as for api_json; HTTP status >= 400 is an error. */
typedef struct ui_progress ui_progress;
int api_raw(const char *method, const char *path, const void *body, size_t len, const char *const *headers,
            FILE *sink, ui_progress *prog, http_reply *rep);
void http_reply_free(http_reply *rep);
/* Follows jobs/events of a job: calls on_event(name, data JSON) per event until the "end" event, the stream
 * ends or cli_interrupted. EX_OK at the end event, EX_INTERRUPTED, or an error class. */
int api_events(const char *job_id, int (*on_event)(const char *name, json_t *data, void *ctx), void *ctx);
/* The token's user (whoami), into cli.user. EX_OK or an error class. */
int api_user(void);

/* ---- terminal output ---- */
struct ui_progress {
    const char *label;
    const char *unit; /* "B" (bytes, shown in KiB/MiB) or "files" */
    uint64_t total, done;
    uint64_t base;        /* counted as done before this run (a resumed upload): left out of the rate */
    uint64_t call_base;   /* bytes done before the request in flight (chunks, files of a folder) */
    double start, last_draw;
    int drawn;            /* a bar is on the screen (cleared before other output) */
    int plain_every;      /* piped: print a plain line every this many percent (0: only at the end) */
    int plain_last;
};
void ui_progress_start(ui_progress *p, const char *label, const char *unit, uint64_t total);
void ui_progress_update(ui_progress *p, uint64_t done);
void ui_progress_end(ui_progress *p);
/* "12.3 MiB" */
void ui_size(uint64_t bytes, char *out, size_t outsz);
double ui_now(void);
/* The bar line itself (no escape codes), for width columns: "label [#####.....] 3/10 files  2.0 files/s  0:04
 * left". Pure, for unit tests. */
void ui_bar_text(const ui_progress *p, double now, int width, char *out, size_t outsz);

/* A table: header cells, then rows; printed aligned, on a terminal cut to its width (the last column first). */
typedef struct ui_table {
    size_t cols, rows, cap;
    char **cells; /* rows+1 lines of cols cells, malloc'd */
} ui_table;
void ui_table_init(ui_table *t, size_t cols, const char *const *header);
void ui_table_row(ui_table *t, const char *const *cells);
/* Writes the table to f; width 0: no limit. colour: the header bold. */
void ui_table_print(const ui_table *t, FILE *f, int width, int colour);
void ui_table_free(ui_table *t);
int ui_width(void);
/* Writes one CSV field (RFC 4180 quoting). */
void ui_csv_field(FILE *f, const char *s);
/* A JSON value as a table cell: strings as they are, null empty, others as compact JSON. malloc'd. */
char *ui_cell(const json_t *v);
const char *ui_red(void);
const char *ui_green(void);
const char *ui_bold(void);
const char *ui_reset(void);

/* ---- commands ---- */
int cmd_login(cli_args *a);
int cmd_package(cli_args *a);
int cmd_publish(cli_args *a);
int cmd_install(cli_args *a);
int cmd_uninstall(cli_args *a);
int cmd_unpublish(cli_args *a);
int cmd_list(cli_args *a);
int cmd_info(cli_args *a);
int cmd_run(cli_args *a);
int cmd_jobs(cli_args *a);
int cmd_files(cli_args *a);
int cmd_test(cli_args *a);

/* Shared by the commands. */
/* Packages the local content folder dir to out_path ("folder 'DIR'" in messages). EX_OK or EX_LOCAL after a
 * message; name/version/sha256 of the result are printed unless quiet. */
int pkg_local(const char *dir, const char *out_path, char *file_name, size_t fnsz, int quiet);
/* Opens the local content folder dir and prepares its package ("folder 'DIR'" in messages), as the server's
 * solution/create does. EX_OK (free pkg with ib_package_clear) or EX_LOCAL after a message. */
int pkg_prepare_local(const char *dir, ib_package *pkg);
/* Every regular file below a local folder (symlinks followed, at most max_files), sorted, paths relative to it;
 * names for which skip() is true are left out (files and folders). EX_OK or EX_LOCAL after a message. */
typedef struct cli_tree {
    char **rel;
    size_t n, cap;
    uint64_t bytes;
} cli_tree;
int tree_collect(const char *root, int (*skip)(const char *name), size_t max_files, cli_tree *t);
void tree_free(cli_tree *t);
/* Uploads local file `path` to drive path `drive` (chunked and resumable past the chunk size). */
int files_upload(const char *path, const char *drive, ui_progress *shared);
/* Uploads a local folder below drive folder `drive` with one progress bar. */
int files_upload_tree(const char *dir, const char *drive);
/* Prints records (run_sync's shape) as a table, JSON or CSV. */
void print_records(json_t *records, int json, int csv);
/* Follows a job to its end with a progress bar; EX_OK when it ended COMPLETE. */
int job_follow(const char *job_id);

#endif
