/* ibsol commands: login, package, publish, install, uninstall, unpublish, list, info, run, jobs. */
#include "ibsol.h"

#include "ib_package.h"
#include "ib_sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define RUN_SYNC_MAX (40u << 20) /* bytes of files for run_sync: base64 of them must fit the server's 64 MiB body */
#define LOCAL_ZIP_LEVEL 6        /* the packager's default IBSOL_ZIP_LEVEL, so the bytes are the server's */

/* ---- helpers ---- */

/* "NAME[@VERSION]": splits at the last '@' when a version (a digit or "latest") follows, since names may hold
 * '@' themselves. */
static void split_name(const char *arg, char *name, size_t namesz, char *version, size_t versz, const char *dflt)
{
    const char *at = strrchr(arg, '@');
    if (at && at != arg && (at[1] >= '0' && at[1] <= '9' ? 1 : strcmp(at + 1, "latest") == 0)) {
        snprintf(name, namesz, "%.*s", (int)(at - arg), arg);
        snprintf(version, versz, "%s", at + 1);
    } else {
        snprintf(name, namesz, "%s", arg);
        snprintf(version, versz, "%s", dflt ? dflt : "");
    }
}

static void print_json(const json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    if (s) puts(s);
    free(s);
}

static const char *str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

/* ---- login ---- */

static int read_token(char *out, size_t outsz)
{
    int tty = isatty(STDIN_FILENO);
    struct termios old, quiet;
    if (tty) {
        fprintf(stderr, "token: ");
        fflush(stderr);
        if (tcgetattr(STDIN_FILENO, &old) == 0) {
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        } else {
            tty = 0;
        }
    }
    char *got = fgets(out, (int)outsz, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    if (!got) return -1;
    out[strcspn(out, "\r\n")] = '\0';
    return out[0] ? 0 : -1;
}

int cmd_login(cli_args *a)
{
    if (args_positional(a, "login", 1, 1)) return EX_USAGE;
    const char *url = a->v[0];
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return cli_usage("login", "URL '%s' must start with http:// or https://", url);
    snprintf(cli.url, sizeof cli.url, "%s", url);
    size_t n = strlen(cli.url);
    while (n > 0 && cli.url[n - 1] == '/') cli.url[--n] = '\0';
    if (!cli.token[0]) {
        const char *et = getenv("IBSOL_TOKEN");
        if (et && *et)
            snprintf(cli.token, sizeof cli.token, "%s", et);
        else if (read_token(cli.token, sizeof cli.token) != 0)
            return cli_usage("login", "no token: pass --token TOKEN or type it on standard input");
    }
    /* the token is checked before it is stored: a typo is seen now, not at the next command */
    int rc = api_user();
    if (rc != EX_OK) return rc;
    char path[4096], err[1024];
    if (cfg_path(path, sizeof path) != 0) {
        cli_err("neither XDG_CONFIG_HOME nor HOME is set: no place for the config file");
        return EX_LOCAL;
    }
    if (cfg_write(path, cli.profile, cli.url, cli.token, err, sizeof err) != 0) {
        cli_err("%s", err);
        return EX_LOCAL;
    }
    if (!cli.quiet)
        printf("logged in to %s as %s (profile '%s', saved in %s)\n", cli.url, cli.user, cli.profile, path);
    return EX_OK;
}

/* ---- package ---- */

/* Opens the folder; -1 after a message. */
static int open_folder(const char *dir)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) cli_err("folder '%s': %s", dir, errno == ENOTDIR ? "not a folder" : strerror(errno));
    return dfd;
}

static int prepare_at(int dfd, const char *dir, ib_package *pkg)
{
    char shown[4200], err[2048];
    snprintf(shown, sizeof shown, "folder '%s'", dir);
    /* the server's IBSOL_MAX_FILES default bounds the search for a compiled flow */
    if (ib_package_prepare(dfd, shown, 100000, pkg, err, sizeof err) != 0) {
        cli_err("%s", err);
        return EX_LOCAL;
    }
    return EX_OK;
}

int pkg_prepare_local(const char *dir, ib_package *pkg)
{
    int dfd = open_folder(dir);
    if (dfd < 0) return EX_LOCAL;
    int rc = prepare_at(dfd, dir, pkg);
    close(dfd);
    return rc;
}

int pkg_local(const char *dir, const char *out_path, char *file_name, size_t fnsz, int quiet)
{
    int dfd = open_folder(dir);
    if (dfd < 0) return EX_LOCAL;
    ib_package pkg;
    if (prepare_at(dfd, dir, &pkg) != EX_OK) {
        close(dfd);
        return EX_LOCAL;
    }
    char err[2048];
    char name[300], target[4400];
    ib_package_file_name(&pkg, name, sizeof name);
    if (file_name) snprintf(file_name, fnsz, "%s", name);
    if (!out_path) {
        snprintf(target, sizeof target, "%s", name);
    } else {
        struct stat st;
        if (stat(out_path, &st) == 0 && S_ISDIR(st.st_mode))
            snprintf(target, sizeof target, "%s/%s", out_path, name);
        else
            snprintf(target, sizeof target, "%s", out_path);
    }
    /* the server's limits (IBSOL_MAX_PACKAGE, IBSOL_MAX_FILES defaults) */
    ib_zip_limits limits = {1ull << 30, 100000};
    int rc = EX_OK;
    if (ib_package_write(dfd, &pkg, target, LOCAL_ZIP_LEVEL, &limits, err, sizeof err) < 0) {
        cli_err("%s: %s", target, err);
        rc = EX_LOCAL;
    } else if (!quiet && !cli.quiet) {
        int fd = open(target, O_RDONLY | O_CLOEXEC);
        char digest[IB_SHA256_HEX] = "";
        struct stat st = {0};
        if (fd >= 0) {
            fstat(fd, &st);
            ib_sha256_fd(fd, digest);
            close(fd);
        }
        printf("%s %s -> %s (%lld bytes, sha256 %s)\n", pkg.name, pkg.version, target, (long long)st.st_size,
               digest);
    }
    ib_package_clear(&pkg);
    close(dfd);
    return rc;
}

int cmd_package(cli_args *a)
{
    const char *out;
    if (args_value(a, "--output", "-o", &out) || args_positional(a, "package", 1, 1)) return EX_USAGE;
    return pkg_local(a->v[0], out, NULL, 0, 0);
}

/* ---- marketplace ---- */

int cmd_publish(cli_args *a)
{
    if (args_positional(a, "publish", 1, 1)) return EX_USAGE;
    const char *src = a->v[0];
    struct stat st;
    if (stat(src, &st) != 0) {
        cli_err("'%s': %s", src, strerror(errno));
        return EX_LOCAL;
    }
    char tmpdir[] = "/tmp/ibsol-publish-XXXXXX", archive[4400], base[300];
    int made = 0, rc;
    if (S_ISDIR(st.st_mode)) {
        if (!mkdtemp(tmpdir)) {
            cli_err("cannot make a temporary folder: %s", strerror(errno));
            return EX_LOCAL;
        }
        made = 1;
        rc = pkg_local(src, tmpdir, base, sizeof base, 1);
        snprintf(archive, sizeof archive, "%s/%s", tmpdir, base);
        if (rc != EX_OK) goto done;
    } else {
        snprintf(archive, sizeof archive, "%s", src);
        const char *b = strrchr(src, '/');
        snprintf(base, sizeof base, "%s", b ? b + 1 : src);
    }
    rc = api_user();
    if (rc != EX_OK) goto done;
    char drive[600];
    snprintf(drive, sizeof drive, "/%s/.ibsol/publish/%s", cli.user, base);
    rc = files_upload(archive, drive, NULL);
    if (rc != EX_OK) goto done;
    json_t *body = json_pack("{s:s}", "ibsolution_path", drive), *ans = NULL;
    rc = api_json("POST", "/marketplace/publish", body, &ans);
    json_decref(body);
    if (rc == EX_OK && !cli.quiet)
        printf("published %s %s (sha256 %s, %lld bytes)\n", str(ans, "name"), str(ans, "version"),
               str(ans, "sha256"), (long long)json_integer_value(json_object_get(ans, "size")));
    json_decref(ans);
done:
    if (made) {
        unlink(archive);
        rmdir(tmpdir);
    }
    return rc;
}

static int name_version_call(cli_args *a, const char *cmd, const char *endpoint, const char *dflt)
{
    if (args_positional(a, cmd, 1, 1)) return EX_USAGE;
    char name[512], version[128];
    split_name(a->v[0], name, sizeof name, version, sizeof version, dflt);
    if (!version[0]) return cli_usage(cmd, "'%s' names no version (write NAME@VERSION)", a->v[0]);
    json_t *body = json_pack("{s:s, s:s}", "name", name, "version", version), *ans = NULL;
    int rc = api_json("POST", endpoint, body, &ans);
    json_decref(body);
    if (rc == EX_OK && !cli.quiet) {
        const char *v = str(ans, "version");
        if (strcmp(cmd, "install") == 0)
            printf("installed %s %s\n", name, v[0] ? v : version);
        else if (strcmp(cmd, "uninstall") == 0)
            printf("%s %s %s\n", json_is_false(json_object_get(ans, "uninstalled")) ? "was not installed:" : "uninstalled",
                   name, version);
        else
            printf("unpublished %s %s\n", name, version);
    }
    json_decref(ans);
    return rc;
}

int cmd_install(cli_args *a)
{
    return name_version_call(a, "install", "/marketplace/install", "latest");
}

static json_t *info_of(const char *name, const char *version, int *rc)
{
    char *n = http_escape(name), *v = version && version[0] ? http_escape(version) : NULL;
    char path[2048];
    snprintf(path, sizeof path, "/marketplace/info?name=%s%s%s", n ? n : "", v ? "&version=" : "", v ? v : "");
    free(n);
    free(v);
    json_t *ans = NULL;
    *rc = api_json("GET", path, NULL, &ans);
    return ans;
}

int cmd_uninstall(cli_args *a)
{
    if (a->n >= 1 && strchr(a->v[0], '@')) return name_version_call(a, "uninstall", "/marketplace/uninstall", NULL);
    if (args_positional(a, "uninstall", 1, 1)) return EX_USAGE;
    /* no version: every installed one */
    int rc;
    json_t *info = info_of(a->v[0], NULL, &rc);
    if (rc != EX_OK) return rc;
    json_t *inst = json_object_get(info, "installed_versions");
    if (json_array_size(inst) == 0 && !cli.quiet) printf("%s is not installed\n", a->v[0]);
    size_t i;
    json_t *v;
    json_array_foreach(inst, i, v)
    {
        char arg[700];
        snprintf(arg, sizeof arg, "%s@%s", a->v[0], json_string_value(v));
        char *words[] = {arg};
        cli_args one = {1, words};
        rc = name_version_call(&one, "uninstall", "/marketplace/uninstall", NULL);
        if (rc != EX_OK) break;
    }
    json_decref(info);
    return rc;
}

int cmd_unpublish(cli_args *a)
{
    return name_version_call(a, "unpublish", "/marketplace/unpublish", NULL);
}

static char *join_list(const json_t *arr)
{
    size_t cap = 1, i;
    json_t *v;
    json_array_foreach(arr, i, v) cap += json_string_length(v) + 2;
    char *s = calloc(1, cap);
    json_array_foreach(arr, i, v)
    {
        if (!s || !json_is_string(v)) continue;
        if (i) strcat(s, ", ");
        strcat(s, json_string_value(v));
    }
    return s;
}

int cmd_list(cli_args *a)
{
    int json = args_flag(a, "--json", NULL);
    if (args_positional(a, "list", 0, 0)) return EX_USAGE;
    json_t *ans;
    int rc = api_json("GET", "/marketplace/list", NULL, &ans);
    if (rc != EX_OK) return rc;
    json_t *apps = json_object_get(ans, "apps");
    if (json) {
        print_json(apps);
    } else {
        static const char *const head[] = {"NAME", "LATEST", "VERSIONS", "INSTALLED", "DESCRIPTION"};
        ui_table t;
        ui_table_init(&t, 5, head);
        size_t i;
        json_t *app;
        json_array_foreach(apps, i, app)
        {
            char *versions = join_list(json_object_get(app, "available_versions"));
            char *installed = join_list(json_object_get(app, "installed_versions"));
            const char *row[] = {str(app, "name"), str(app, "latest_version"), versions, installed,
                                 str(app, "short_description")};
            ui_table_row(&t, row);
            free(versions);
            free(installed);
        }
        if (json_array_size(apps) == 0)
            printf("no solution is published yet\n");
        else
            ui_table_print(&t, stdout, cli.out_tty ? ui_width() : 0, cli.color);
        ui_table_free(&t);
    }
    json_decref(ans);
    return EX_OK;
}

int cmd_info(cli_args *a)
{
    int json = args_flag(a, "--json", NULL);
    if (args_positional(a, "info", 1, 1)) return EX_USAGE;
    char name[512], version[128];
    split_name(a->v[0], name, sizeof name, version, sizeof version, NULL);
    int rc;
    json_t *ans = info_of(name, version, &rc);
    if (rc != EX_OK) return rc;
    if (json) {
        print_json(ans);
    } else {
        json_t *m = json_object_get(ans, "manifest");
        char *versions = join_list(json_object_get(ans, "available_versions"));
        char *installed = join_list(json_object_get(ans, "installed_versions"));
        char *authors = join_list(json_object_get(m, "authors"));
        printf("%s%s %s%s\n%s\n\n", ui_bold(), str(m, "name"), str(m, "version"), ui_reset(),
               str(m, "short_description"));
        printf("authors:     %s\nversions:    %s (latest %s)\ninstalled:   %s\n", authors ? authors : "",
               versions ? versions : "", str(ans, "latest_version"), installed && installed[0] ? installed : "no");
        printf("sha256:      %s\nsize:        %lld bytes\npublished:   %s by %s\n", str(ans, "sha256"),
               (long long)json_integer_value(json_object_get(ans, "size")), str(ans, "published"),
               str(ans, "publisher"));
        const char *key;
        json_t *v;
        json_object_foreach(m, key, v)
        {
            static const char *const shown[] = {"name", "version", "short_description", "authors"};
            int skip = 0;
            for (size_t k = 0; k < 4; k++) skip |= strcmp(key, shown[k]) == 0;
            if (skip) continue;
            char *c = ui_cell(v);
            int pad = 11 - (int)strlen(key); /* values in the column of the lines above */
            printf("%s:%*s %s\n", key, pad > 0 ? pad : 0, "", c ? c : "");
            free(c);
        }
        free(versions);
        free(installed);
        free(authors);
    }
    json_decref(ans);
    return EX_OK;
}

/* ---- records ---- */

void print_records(json_t *records, int json, int csv)
{
    size_t i, k;
    json_t *rec, *f;
    if (json) {
        json_t *o = json_pack("{s:O}", "records", records);
        print_json(o);
        json_decref(o);
        return;
    }
    if (csv) {
        /* one line per record; the columns are every field key in the order first seen */
        json_t *keys = json_array(), *seen = json_object();
        json_array_foreach(records, i, rec) json_array_foreach(json_object_get(rec, "results"), k, f)
        {
            const char *key = str(f, "key");
            if (!json_object_get(seen, key)) {
                json_object_set_new(seen, key, json_true());
                json_array_append_new(keys, json_string(key));
            }
        }
        fputs("file_name,file_index,record_index", stdout);
        json_t *key;
        json_array_foreach(keys, k, key)
        {
            fputc(',', stdout);
            ui_csv_field(stdout, json_string_value(key));
        }
        fputs(",error\r\n", stdout);
        json_array_foreach(records, i, rec)
        {
            ui_csv_field(stdout, str(rec, "file_name"));
            printf(",%lld,%lld", (long long)json_integer_value(json_object_get(rec, "file_index")),
                   (long long)json_integer_value(json_object_get(rec, "record_index")));
            json_array_foreach(keys, k, key)
            {
                const json_t *val = NULL;
                size_t j;
                json_array_foreach(json_object_get(rec, "results"), j, f) if (strcmp(str(f, "key"),
                                                                                     json_string_value(key)) == 0) val =
                    json_object_get(f, "value");
                char *c = ui_cell(val);
                fputc(',', stdout);
                ui_csv_field(stdout, c);
                free(c);
            }
            fputc(',', stdout);
            ui_csv_field(stdout, str(rec, "error"));
            fputs("\r\n", stdout);
        }
        json_decref(keys);
        json_decref(seen);
        return;
    }
    static const char *const head[] = {"FILE", "RECORD", "FIELD", "VALUE"};
    ui_table t;
    ui_table_init(&t, 4, head);
    json_array_foreach(records, i, rec)
    {
        char idx[32];
        snprintf(idx, sizeof idx, "%lld", (long long)json_integer_value(json_object_get(rec, "record_index")));
        if (json_object_get(rec, "error")) {
            char msg[2048];
            snprintf(msg, sizeof msg, "ERROR: %s", str(rec, "error"));
            const char *row[] = {str(rec, "file_name"), idx, "(file)", msg};
            ui_table_row(&t, row);
        }
        json_array_foreach(json_object_get(rec, "results"), k, f)
        {
            char *c = ui_cell(json_object_get(f, "value"));
            char msg[2048];
            if (json_object_get(f, "error")) snprintf(msg, sizeof msg, "ERROR: %s", str(f, "error"));
            const char *row[] = {str(rec, "file_name"), idx, str(f, "key"), json_object_get(f, "error") ? msg : c};
            ui_table_row(&t, row);
            free(c);
        }
    }
    if (json_array_size(records) == 0)
        printf("no records\n");
    else
        ui_table_print(&t, stdout, cli.out_tty ? ui_width() : 0, cli.color);
    ui_table_free(&t);
}

/* After a run's records: a file that failed (unreadable, or a record past a limit) fails the command, as it
 * fails `ibsol-runner --once`, so scripts see it; the records were printed all the same. */
static int run_outcome(const json_t *records)
{
    size_t i, failed = 0, files = 0;
    const char *first = NULL;
    json_t *r;
    json_array_foreach(records, i, r)
    {
        if (json_integer_value(json_object_get(r, "record_index")) == 0) files++;
        const char *e = json_string_value(json_object_get(r, "error"));
        if (e) {
            failed++;
            if (!first) first = e;
        }
    }
    if (!failed) return EX_OK;
    cli_err("%zu of %zu file%s failed; the first: %s", failed, files, files == 1 ? "" : "s", first);
    return EX_JOB_FAILED;
}

/* ---- following a job ---- */

typedef struct follow {
    const char *job_id;
    ui_progress bar;
    int started;
    long long last_index;
    char status[32], msg[1024];
} follow;

static int on_job_event(const char *name, json_t *d, void *ctx)
{
    follow *fo = ctx;
    long long index = json_integer_value(json_object_get(d, "index"));
    long long total = json_integer_value(json_object_get(d, "total"));
    snprintf(fo->status, sizeof fo->status, "%s", str(d, "status"));
    snprintf(fo->msg, sizeof fo->msg, "%s", str(d, "curMsg"));
    if (!fo->started) {
        ui_progress_start(&fo->bar, "job", "files", (uint64_t)(total > 0 ? total : 0));
        fo->bar.base = (uint64_t)(index > 0 ? index : 0);
        fo->started = 1;
        fo->last_index = -1;
    }
    if (total > 0) fo->bar.total = (uint64_t)total;
    ui_progress_update(&fo->bar, (uint64_t)(index > 0 ? index : 0));
    /* piped: one plain line whenever the count moves */
    if (!cli.err_tty && !cli.quiet && index != fo->last_index) {
        fprintf(stderr, "job %s: %lld/%lld files %s\n", fo->job_id, index, total, fo->status);
        fflush(stderr);
    }
    fo->last_index = index;
    (void)name;
    return 0;
}

int job_follow(const char *job_id)
{
    follow fo = {.job_id = job_id};
    int rc = api_events(job_id, on_job_event, &fo);
    if (fo.started && cli.err_tty && !cli.quiet) {
        if (rc == EX_INTERRUPTED) {
            fputc('\n', stderr);
        } else {
            ui_progress_end(&fo.bar);
        }
    }
    if (rc == EX_INTERRUPTED) {
        cli_err("interrupted; job %s goes on: follow it with 'ibsol jobs watch %s', stop it with 'ibsol jobs "
                "cancel %s'",
                job_id, job_id, job_id);
        return rc;
    }
    if (rc != EX_OK) return rc;
    if (strcmp(fo.status, "COMPLETE") != 0) {
        cli_err("job %s ended %s: %s", job_id, fo.status[0] ? fo.status : "without a status", fo.msg);
        return EX_JOB_FAILED;
    }
    if (!cli.quiet) fprintf(stderr, "job %s: %s\n", job_id, fo.msg);
    return EX_OK;
}

static int job_results(const char *job_id, int json, int csv, int judge)
{
    char *id = http_escape(job_id);
    char path[512];
    snprintf(path, sizeof path, "/jobs/results?job_id=%s", id ? id : "");
    free(id);
    json_t *ans;
    int rc = api_json("GET", path, NULL, &ans);
    if (rc != EX_OK) return rc;
    print_records(json_object_get(ans, "records"), json, csv);
    if (judge) rc = run_outcome(json_object_get(ans, "records"));
    json_decref(ans);
    return rc;
}

/* ---- run ---- */

static char *base64_file(const char *path, size_t *total, int *rc)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        cli_err("'%s': %s", path, fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0) close(fd);
        *rc = EX_LOCAL;
        return NULL;
    }
    *total += (size_t)st.st_size;
    if (*total > RUN_SYNC_MAX) {
        cli_err("'%s': the files pass %u MiB together, too much for one run_sync; use --folder", path,
                RUN_SYNC_MAX >> 20);
        close(fd);
        *rc = EX_LOCAL;
        return NULL;
    }
    size_t len = (size_t)st.st_size, have = 0;
    unsigned char *raw = malloc(len + 1);
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    while (raw && out && have < len) {
        ssize_t r = read(fd, raw + have, len - have);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        have += (size_t)r;
    }
    close(fd);
    if (!raw || !out || have != len) {
        cli_err("'%s' cannot be read: %s", path, raw && out ? strerror(errno) : "out of memory");
        free(raw);
        free(out);
        *rc = EX_LOCAL;
        return NULL;
    }
    EVP_EncodeBlock((unsigned char *)out, raw, (int)len);
    free(raw);
    return out;
}

int cmd_run(cli_args *a)
{
    int json = args_flag(a, "--json", NULL), csv = args_flag(a, "--csv", NULL);
    int no_wait = args_flag(a, "--no-wait", NULL);
    const char *folder;
    if (args_value(a, "--folder", NULL, &folder) || args_positional(a, "run", folder ? 1 : 2, folder ? 1 : -1))
        return EX_USAGE;
    if (json && csv) return cli_usage("run", "--json and --csv exclude each other");
    if (no_wait && !folder) return cli_usage("run", "--no-wait needs --folder (run_sync always waits)");
    char name[512], version[128];
    split_name(a->v[0], name, sizeof name, version, sizeof version, "latest");
    int rc = EX_OK;
    if (!folder) {
        json_t *files = json_array();
        size_t total = 0;
        for (int i = 1; i < a->n && rc == EX_OK; i++) {
            char *b64 = base64_file(a->v[i], &total, &rc);
            if (!b64) break;
            const char *b = strrchr(a->v[i], '/');
            json_array_append_new(files, json_pack("{s:s, s:s}", "file_name", b ? b + 1 : a->v[i], "file_content", b64));
            free(b64);
        }
        if (rc != EX_OK) {
            json_decref(files);
            return rc;
        }
        json_t *body = json_pack("{s:s, s:s, s:o}", "name", name, "version", version, "files", files), *ans = NULL;
        rc = api_json("POST", "/solution/run_sync", body, &ans);
        json_decref(body);
        if (rc == EX_OK) {
            print_records(json_object_get(ans, "records"), json, csv);
            rc = run_outcome(json_object_get(ans, "records"));
        }
        json_decref(ans);
        return rc;
    }
    /* a folder: local (uploaded first) or already on the drive */
    char input[4200];
    struct stat st;
    int local = strncmp(folder, "drive:", 6) != 0 && (folder[0] != '/' || stat(folder, &st) == 0);
    if (local) {
        if (stat(folder, &st) != 0 || !S_ISDIR(st.st_mode)) {
            cli_err("folder '%s': %s", folder, errno && stat(folder, &st) != 0 ? strerror(errno) : "not a folder");
            return EX_LOCAL;
        }
        if ((rc = api_user()) != EX_OK) return rc;
        char stamp[64];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
        snprintf(input, sizeof input, "/%s/.ibsol/cli/%s-%d/in", cli.user, stamp, (int)getpid());
        if ((rc = files_upload_tree(folder, input)) != EX_OK) return rc;
    } else {
        snprintf(input, sizeof input, "%s", strncmp(folder, "drive:", 6) == 0 ? folder + 6 : folder);
    }
    json_t *body = json_pack("{s:s, s:s, s:s}", "name", name, "version", version, "input_folder", input), *ans = NULL;
    rc = api_json("POST", "/solution/run", body, &ans);
    json_decref(body);
    if (rc != EX_OK) return rc;
    char job[256];
    snprintf(job, sizeof job, "%s", str(ans, "job_id"));
    json_t *data = json_object_get(ans, "data");
    if (no_wait) {
        printf("%s\n", job);
    } else {
        if (!cli.quiet)
            fprintf(stderr, "job %s started (output in %s)\n", job, str(data, "output_folder"));
        fflush(stderr);
        rc = job_follow(job);
        if (rc == EX_OK || rc == EX_JOB_FAILED) {
            int r2 = job_results(job, json, csv, 1);
            if (rc == EX_OK) rc = r2;
        }
    }
    json_decref(ans);
    return rc;
}

/* ---- jobs ---- */

int cmd_jobs(cli_args *a)
{
    int json = args_flag(a, "--json", NULL), csv = args_flag(a, "--csv", NULL);
    const char *limit;
    if (args_value(a, "--limit", NULL, &limit)) return EX_USAGE;
    if (a->n == 0) return cli_usage("jobs", "missing sub-command (list, status, results, cancel, watch)");
    const char *sub = a->v[0];
    a->n--, a->v++;
    if (strcmp(sub, "list") == 0) {
        if (args_positional(a, "jobs", 0, 0)) return EX_USAGE;
        char *l = http_escape(limit ? limit : "50");
        char path[256];
        snprintf(path, sizeof path, "/jobs/list?limit=%s", l ? l : "50");
        free(l);
        json_t *ans;
        int rc = api_json("GET", path, NULL, &ans);
        if (rc != EX_OK) return rc;
        json_t *jobs = json_object_get(ans, "jobs");
        if (json) {
            print_json(jobs);
        } else {
            static const char *const head[] = {"JOB", "KIND", "STATUS", "FILES", "CREATED"};
            ui_table t;
            ui_table_init(&t, 5, head);
            size_t i;
            json_t *j;
            json_array_foreach(jobs, i, j)
            {
                char files[64], *created = ui_cell(json_object_get(j, "created"));
                snprintf(files, sizeof files, "%lld/%lld", (long long)json_integer_value(json_object_get(j, "index")),
                         (long long)json_integer_value(json_object_get(j, "total")));
                const char *row[] = {str(j, "job_id"), str(j, "kind"), str(j, "status"), files, created};
                ui_table_row(&t, row);
                free(created);
            }
            if (json_array_size(jobs) == 0)
                printf("no jobs\n");
            else
                ui_table_print(&t, stdout, cli.out_tty ? ui_width() : 0, cli.color);
            ui_table_free(&t);
        }
        json_decref(ans);
        return EX_OK;
    }
    if (strcmp(sub, "status") && strcmp(sub, "results") && strcmp(sub, "cancel") && strcmp(sub, "watch"))
        return cli_usage("jobs", "'%s' is not a jobs sub-command (list, status, results, cancel, watch)", sub);
    if (args_positional(a, "jobs", 1, 1)) return EX_USAGE;
    const char *job = a->v[0];
    if (strcmp(sub, "results") == 0) return job_results(job, json, csv, 0);
    if (strcmp(sub, "watch") == 0) return job_follow(job);
    char *id = http_escape(job);
    char path[512];
    snprintf(path, sizeof path, "/jobs/status?job_id=%s", id ? id : "");
    free(id);
    json_t *ans = NULL;
    int rc;
    if (strcmp(sub, "cancel") == 0) {
        json_t *body = json_pack("{s:s}", "job_id", job);
        rc = api_json("POST", "/jobs/cancel", body, &ans);
        json_decref(body);
        if (rc == EX_OK && !cli.quiet)
            printf("job %s: %s\n", job,
                   json_is_true(json_object_get(ans, "cancel_requested")) ? "cancel requested" : "already ended");
        json_decref(ans);
        return rc;
    }
    rc = api_json("GET", path, NULL, &ans);
    if (rc != EX_OK) return rc;
    json_t *cur = json_loads(str(ans, "cur_status"), 0, NULL);
    if (json) {
        json_t *o = json_deep_copy(ans);
        if (cur) json_object_set(o, "cur_status", cur);
        print_json(o);
        json_decref(o);
    } else {
        printf("job %s: %s %lld/%lld files: %s\n", job, str(cur, "status"),
               (long long)json_integer_value(json_object_get(cur, "index")),
               (long long)json_integer_value(json_object_get(cur, "total")), str(cur, "curMsg"));
    }
    json_decref(cur);
    json_decref(ans);
    return EX_OK;
}
