/* ops: the runner's operations. solution.run and files.copy/extract create a job and return at once;
 * solution.run_sync runs its files on the same pool and waits; jobs.* read the shared job records, so any
 * runner instance answers for any job. Every input is checked here, before anything is created. */
#include "ops.h"

#include "fileops.h"

#include "engine_int.h"

#include "ib_fs.h"
#include "ib_base64.h"
#include "ib_conv.h"
#include "ib_log.h"
#include "ib_path.h"
#include "ib_settings.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* --- settings ------------------------------------------------------------------------------------------ */

static int is_string_list(const json_t *v)
{
    size_t i;
    json_t *x;
    if (!json_is_array(v)) return 0;
    json_array_foreach(v, i, x) if (!json_is_string(x)) return 0;
    return 1;
}

static ib_code check_settings(const json_t *s, ib_reply *rep)
{
    if (!s) return IB_OK;
    static const struct {
        const char *key;
        int (*ok)(const json_t *);
        const char *what;
    } rules[] = {
        {"output_folder", NULL, "a string"},
        {"output_has_run_id", NULL, "true or false"},
        {"delete_out_dir", NULL, "true or false"},
        {"runtime_config", NULL, "an object of strings"},
        {"tags", is_string_list, "a list of strings"},
    };
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        const json_t *v = json_object_get(s, rules[i].key);
        if (!v || json_is_null(v)) continue;
        int ok;
        switch (i) {
        case 0: ok = json_is_string(v); break;
        case 1:
        case 2: ok = json_is_boolean(v); break;
        case 3: {
            ok = json_is_object(v);
            const char *k;
            json_t *x;
            if (ok) json_object_foreach((json_t *)v, k, x) if (!json_is_string(x)) ok = 0;
            break;
        }
        default: ok = rules[i].ok(v);
        }
        if (!ok) return ib_fail(rep, IB_BAD_REQUEST, "settings.%s must be %s", rules[i].key, rules[i].what);
    }
    char err[IB_MSG_MAX];
    if (notify_check_settings(&runner_notify, s, err, sizeof err) < 0)
        return ib_fail(rep, IB_BAD_REQUEST, "%s", err);
    return IB_OK;
}

/* --- input listing ------------------------------------------------------------------------------------- */

typedef struct name_list {
    char **items;
    size_t n, cap;
} name_list;

static int name_push(name_list *l, const char *name)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **items = realloc(l->items, cap * sizeof *items);
        if (!items) return -1;
        l->items = items;
        l->cap = cap;
    }
    return (l->items[l->n] = strdup(name)) ? (int)l->n++ : -1;
}

static void names_free(name_list *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->items[i]);
    free(l->items);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Regular files below dirfd, recursively, hidden ones and symlinks left out. -1 when more than max. */
static int list_files(int dirfd, const char *prefix, name_list *out, size_t max, int depth)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0) close(fd);
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        struct stat st;
        if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
        char rel[IB_PATH_MAX];
        int n = snprintf(rel, sizeof rel, "%s%s%s", prefix, prefix[0] ? "/" : "", e->d_name);
        if (n < 0 || (size_t)n >= sizeof rel) continue;
        if (S_ISREG(st.st_mode)) {
            if (out->n >= max || name_push(out, rel) < 0) rc = -1;
        } else if (S_ISDIR(st.st_mode) && depth < 32) {
            int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) {
                rc = list_files(sub, rel, out, max, depth + 1);
                close(sub);
            }
        }
    }
    closedir(d);
    return rc;
}

/* --- shared pieces of job creation --------------------------------------------------------------------- */

/* Which inputs' output names get "~<file index>" (the rule is in engine/output.c): those whose readable name
 * another input of the job shares (a/x.txt and a__x.txt, .x.txt and _x.txt, names alike in their first 200
 * bytes, a run_sync file_name given twice), and those whose readable name ends like a marked one. It depends
 * on the list of inputs only, so a resumed or helped job names its outputs as its first runner did. */
static int mark_output_names(job_input *inputs, size_t n)
{
    json_t *count = json_object(); /* readable name -> inputs having it (names need not be UTF-8: nocheck) */
    char base[256];
    for (int pass = 0; count && pass < 2; pass++)
        for (size_t i = 0; i < n; i++) {
            ib_out_job_base(inputs[i].name, base, sizeof base);
            size_t len = strlen(base);
            json_int_t seen = json_integer_value(json_object_getn(count, base, len));
            if (pass == 0 && json_object_setn_new_nocheck(count, base, len, json_integer(seen + 1)) < 0) {
                json_decref(count);
                return -1;
            }
            if (pass == 1) inputs[i].mark_name = seen > 1 || ib_out_base_marked(base);
        }
    json_decref(count);
    return count ? 0 : -1;
}

static json_t *new_record(const char *id, const char *kind, const ib_request *req)
{
    json_t *rec = json_object();
    json_object_set_new(rec, "job_id", json_string(id));
    json_object_set_new(rec, "kind", json_string(kind));
    json_object_set_new(rec, "user", json_string(req->who.user));
    json_object_set_new(rec, "status", json_string("QUEUED"));
    json_object_set_new(rec, "created", json_real(job_now()));
    json_object_set_new(rec, "runner", json_string(rcfg.instance));
    json_object_set_new(rec, "index", json_integer(0));
    json_object_set_new(rec, "curMsg", json_string("Queued"));
    return rec;
}

/* This runner has no room for another job. `nothing_done`: the request left no trace here, so the gateway may
 * send it to another runner (ib_reply_full); else (a job was recorded and ended FAILED before the queue turned
 * out full) the caller is told as it is. */
static ib_code busy(ib_reply *rep, int nothing_done)
{
    if (nothing_done)
        return ib_reply_full(rep, "runner '%s' is at its limit of %lld unfinished jobs; try again shortly",
                             rcfg.instance, rcfg.max_jobs);
    return ib_fail(rep, IB_UNAVAILABLE, "runner '%s' is at its limit of %lld unfinished jobs; try again shortly",
                   rcfg.instance, rcfg.max_jobs);
}

/* Opens (creating) an output folder for `who`: a drive path named by `field`. */
static int open_output(const char *path, const ib_caller *who, const char *field, int wipe, ib_dpath *p,
                       ib_reply *rep)
{
    if (ib_dpath_parse(path, who, field, p, rep) != IB_OK) return -1;
    /* Resolved as the files API does, before anything is removed: a folder that is, or passes through, a symlink
     * leaving the user's folder is refused (wiping it would remove the link, and the job would then write a
     * folder of its own where the user's link was). */
    int probe = ib_drive_openat(runner_drive_fd, p, O_PATH, 0);
    if (probe >= 0)
        close(probe);
    else if (errno == EXDEV || errno == ELOOP) {
        ib_drive_errno_reply(errno, field, p, rep);
        return -1;
    }
    if (wipe) {
        const char *base;
        int parent = ib_drive_open_parent(runner_drive_fd, p, 0, &base);
        if (parent >= 0) {
            ib_remove_tree_at(parent, base);
            close(parent);
        }
    }
    int fd = ib_drive_open_dir(runner_drive_fd, p, 1);
    if (fd < 0) {
        char shown[IB_PATH_MAX + 2];
        if (errno == ENOTDIR || errno == EEXIST)
            ib_fail(rep, IB_BAD_REQUEST, "%s: '%s' is a file, not a folder", field, ib_dpath_show(p, shown, sizeof shown));
        else
            ib_drive_errno_reply(errno, field, p, rep);
    }
    return fd;
}

/* --- solution.run -------------------------------------------------------------------------------------- */

static ib_code run_op(void *state, const ib_request *req, ib_reply *rep)
{
    const json_t *settings = json_object_get(req->args, "settings");
    if (check_settings(settings, rep) != IB_OK) return rep->code;
    ib_dpath in, out;
    char shown[IB_PATH_MAX + 2], out_shown[IB_PATH_MAX + 64];
    if (ib_dpath_parse(ib_arg_str(req->args, "input_folder"), &req->who, "input_folder", &in, rep) != IB_OK)
        return rep->code;
    int in_fd = ib_drive_openat(runner_drive_fd, &in, O_RDONLY | O_DIRECTORY, 0);
    if (in_fd < 0) return ib_drive_errno_reply(errno, "input_folder", &in, rep);
    name_list names = {0};
    if (list_files(in_fd, "", &names, (size_t)rcfg.max_files, 0) < 0) {
        ib_fail(rep, names.n >= (size_t)rcfg.max_files ? IB_TOO_LARGE : IB_INTERNAL,
                "input_folder '%s' has more than %lld files (or cannot be listed)",
                ib_dpath_show(&in, shown, sizeof shown), rcfg.max_files);
        goto fail;
    }
    if (names.n == 0) {
        ib_fail(rep, IB_BAD_REQUEST, "input_folder '%s' has no files", ib_dpath_show(&in, shown, sizeof shown));
        goto fail;
    }
    qsort(names.items, names.n, sizeof *names.items, cmp_str);
    solution *sol = solution_resolve(req->args, &req->who, rep);
    if (!sol) goto fail;
    if (!exec_has_room()) { /* before the output folder is made (or emptied): another runner may take it */
        solution_release(sol);
        busy(rep, 1);
        goto fail;
    }

    char id[IB_JOB_ID_LEN + 1];
    job_id_new(id);
    /* default output: the folder "out" beside the input folder */
    const char *out_path = json_string_value(json_object_get(settings, "output_folder"));
    char def[IB_PATH_MAX + 8];
    if (!out_path) {
        char *slash = strrchr(in.rel, '/');
        if (slash)
            snprintf(def, sizeof def, "/%.*s/out", (int)(slash - in.rel), in.rel);
        else
            snprintf(def, sizeof def, "/%s/out", in.rel);
        out_path = def;
    }
    char with_id[IB_PATH_MAX + 64];
    if (json_is_true(json_object_get(settings, "output_has_run_id"))) {
        snprintf(with_id, sizeof with_id, "%s/%s", out_path, id);
        out_path = with_id;
    }
    int out_fd = open_output(out_path, &req->who, "settings.output_folder",
                             json_is_true(json_object_get(settings, "delete_out_dir")), &out, rep);
    if (out_fd < 0) {
        solution_release(sol);
        goto fail;
    }
    ib_dpath_show(&out, out_shown, sizeof out_shown);

    int lock_fd = job_lock(id);
    json_t *rec = new_record(id, "flow", req);
    json_object_set_new(rec, "total", json_integer((json_int_t)names.n));
    json_object_set_new(rec, "solution", solution_record(sol, req->args));
    json_object_set_new(rec, "input_folder", json_string(ib_dpath_show(&in, shown, sizeof shown)));
    json_object_set_new(rec, "output_folder", json_string(out_shown));
    json_object_set_new(rec, "settings", settings ? json_deep_copy(settings) : json_object());
    json_t *tags = json_object_get(settings, "tags");
    json_object_set_new(rec, "tags", tags ? json_deep_copy(tags) : json_array());
    json_t *inputs_doc = json_array();
    job_input *inputs = calloc(names.n, sizeof *inputs);
    for (size_t i = 0; inputs && i < names.n; i++) {
        inputs[i].name = names.items[i];
        json_array_append_new(inputs_doc, json_string(names.items[i]));
    }
    if (!inputs || mark_output_names(inputs, names.n) < 0 || lock_fd < 0 ||
        job_doc_save(id, "inputs", inputs_doc) < 0 || job_save(rec) < 0 || job_mark_active(rec) < 0) {
        json_decref(inputs_doc);
        json_decref(rec);
        free(inputs);
        job_unlock(lock_fd);
        close(out_fd);
        solution_release(sol);
        ib_fail_write(rep, errno, "the job could not be recorded");
        job_discard(id);
        goto fail;
    }
    json_decref(inputs_doc);
    free(names.items); /* the names now belong to inputs */
    names.items = NULL;
    size_t n = names.n;
    names.n = 0;
    char name[sizeof sol->name], version[sizeof sol->version];
    snprintf(name, sizeof name, "%s", sol->name);
    snprintf(version, sizeof version, "%s", sol->version);
    if (!exec_submit(rec, sol, inputs, n, lock_fd, in_fd, out_fd, 0)) {
        job_mark_inactive(id);
        exec_fail_record(rec, "the runner was at its job limit");
        job_inputs_free(inputs, n);
        job_unlock(lock_fd);
        close(in_fd);
        close(out_fd);
        solution_release(sol);
        return busy(rep, 0);
    }
    ib_info(req->rid, "job %s: %zu files of %s by %s", id, n, shown, req->who.user);
    json_t *d = ib_reply_data(rep);
    json_object_set_new(d, "job_id", json_string(id));
    json_object_set_new(d, "solution", json_pack("{s:s, s:s}", "name", name, "version", version));
    json_object_set_new(d, "data", json_pack("{s:s, s:s}", "job_id", id, "output_folder", out_shown));
    json_object_set_new(d, "output_folder", json_string(out_shown));
    return IB_OK;
fail:
    names_free(&names);
    close(in_fd);
    return rep->code;
}

/* --- solution.run_sync --------------------------------------------------------------------------------- */

static ib_code check_file_name(const char *name, size_t i, ib_reply *rep)
{
    if (!name) return ib_fail(rep, IB_BAD_REQUEST, "files[%zu].file_name is required (a string)", i);
    if (!*name || !strcmp(name, ".") || !strcmp(name, "..") || strchr(name, '/') || strchr(name, '\\') ||
        strlen(name) > 255)
        return ib_fail(rep, IB_BAD_REQUEST,
                       "files[%zu].file_name '%.80s' must be a plain file name (no '/', not '.' or '..', 1-255 bytes)",
                       i, name);
    return IB_OK;
}

static char *csv_field(const char *s)
{
    size_t n = strlen(s), extra = 2;
    for (size_t i = 0; i < n; i++) extra += s[i] == '"';
    char *out = malloc(n + extra + 1), *p = out;
    if (!out) return NULL;
    *p++ = '"';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') *p++ = '"';
        *p++ = s[i];
    }
    *p++ = '"';
    *p = '\0';
    return out;
}

static void csv_append(char **buf, size_t *len, size_t *cap, const char *s, int quote)
{
    char *q = quote ? csv_field(s) : NULL;
    const char *t = q ? q : s;
    size_t n = strlen(t);
    if (*len + n + 1 > *cap) {
        size_t ncap = (*cap + n + 1) * 2;
        char *nb = realloc(*buf, ncap);
        if (!nb) {
            free(q);
            return;
        }
        *buf = nb;
        *cap = ncap;
    }
    memcpy(*buf + *len, t, n + 1);
    *len += n;
    free(q);
}

/* A result value as CSV text: strings as they are, null as nothing, others as compact JSON. *dumped is what
 * the caller frees. */
static const char *csv_text(const json_t *v, char **dumped)
{
    *dumped = NULL;
    if (json_is_string(v)) return json_string_value(v);
    if (!v || json_is_null(v)) return "";
    return *dumped = ib_json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* The rows of a TABLE result (its value: an array of objects), or NULL when the result is not one. */
static const json_t *table_rows(const json_t *res)
{
    const char *t = json_string_value(json_object_get(res, "field_type"));
    const json_t *v = json_object_get(res, "value");
    return t && strcmp(t, "TABLE") == 0 && json_is_array(v) ? v : NULL;
}

/* RFC 4180: header file_name,file_index,record_index,<keys in first-seen order>; CRLF line ends. A TABLE
 * field (line items) gives one column per table column ("items.qty") and its record one line per row, the
 * other fields repeated and the row's number (from 0) in a row_index column after record_index; a record
 * without rows keeps one line with row_index empty. Without TABLE fields the format is the same as ever (no
 * row_index). */
static char *records_csv(const json_t *records)
{
    json_t *keys = json_array(), *tcols = json_object(); /* tcols: TABLE key -> its column names */
    size_t i, k;
    json_t *rec, *res;
    json_array_foreach(records, i, rec) json_array_foreach(json_object_get(rec, "results"), k, res)
    {
        const char *key = json_string_value(json_object_get(res, "key"));
        if (!key) continue;
        int seen = 0;
        for (size_t m = 0; m < json_array_size(keys); m++)
            seen |= !strcmp(json_string_value(json_array_get(keys, m)), key);
        if (!seen) json_array_append_new(keys, json_string(key));
        const json_t *rows = table_rows(res);
        if (!rows || json_array_size(rows) == 0) continue; /* no rows anywhere: one column, "[]" */
        json_t *cols = json_object_get(tcols, key);
        if (!cols) json_object_set_new(tcols, key, cols = json_array());
        size_t r;
        const json_t *row;
        json_array_foreach(rows, r, row)
        {
            const char *c;
            json_t *cell;
            json_object_foreach((json_t *)row, c, cell)
            {
                int have = 0;
                for (size_t m = 0; m < json_array_size(cols); m++)
                    have |= !strcmp(json_string_value(json_array_get(cols, m)), c);
                if (!have) json_array_append_new(cols, json_string(c));
            }
        }
    }
    int with_rows = json_object_size(tcols) > 0;
    size_t len = 0, cap = 1024;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    buf[0] = '\0';
    csv_append(
        &buf, &len, &cap,
        with_rows ? "file_name,file_index,record_index,row_index" : "file_name,file_index,record_index", 0);
    json_t *key;
    json_array_foreach(keys, k, key)
    {
        json_t *cols = json_object_get(tcols, json_string_value(key)), *c;
        size_t m;
        if (!cols) {
            csv_append(&buf, &len, &cap, ",", 0);
            csv_append(&buf, &len, &cap, json_string_value(key), 1);
        }
        json_array_foreach(cols, m, c)
        {
            size_t hl = strlen(json_string_value(key)) + strlen(json_string_value(c)) + 2;
            char *h = malloc(hl);
            if (!h) break;
            snprintf(h, hl, "%s.%s", json_string_value(key), json_string_value(c));
            csv_append(&buf, &len, &cap, ",", 0);
            csv_append(&buf, &len, &cap, h, 1);
            free(h);
        }
    }
    csv_append(&buf, &len, &cap, "\r\n", 0);
    json_array_foreach(records, i, rec)
    {
        const json_t *results = json_object_get(rec, "results");
        size_t nrows = 0, m;
        json_array_foreach(results, m, res) if (table_rows(res) && json_array_size(table_rows(res)) > nrows)
            nrows = json_array_size(table_rows(res));
        for (size_t r = 0; r < (nrows ? nrows : 1); r++) {
            char num[96];
            csv_append(&buf, &len, &cap, json_string_value(json_object_get(rec, "file_name")) ?: "", 1);
            snprintf(num, sizeof num, ",%lld,%lld",
                     (long long)json_integer_value(json_object_get(rec, "file_index")),
                     (long long)json_integer_value(json_object_get(rec, "record_index")));
            csv_append(&buf, &len, &cap, num, 0);
            if (with_rows) {
                if (nrows)
                    snprintf(num, sizeof num, ",%zu", r);
                else
                    snprintf(num, sizeof num, ",");
                csv_append(&buf, &len, &cap, num, 0);
            }
            json_array_foreach(keys, k, key)
            {
                const char *want = json_string_value(key);
                const json_t *found = NULL, *cols = json_object_get(tcols, want), *c;
                json_array_foreach(
                    results, m,
                    res) if (strcmp(json_string_value(json_object_get(res, "key")) ?: "", want) == 0)
                {
                    found = res;
                    break;
                }
                char *dumped;
                if (!cols) {
                    const char *text = csv_text(found ? json_object_get(found, "value") : NULL, &dumped);
                    csv_append(&buf, &len, &cap, ",", 0);
                    csv_append(&buf, &len, &cap, text, 1);
                    free(dumped);
                    continue;
                }
                const json_t *row = found && table_rows(found) ? json_array_get(table_rows(found), r) : NULL;
                json_array_foreach(cols, m, c)
                {
                    const char *text =
                        csv_text(row ? json_object_get(row, json_string_value(c)) : NULL, &dumped);
                    csv_append(&buf, &len, &cap, ",", 0);
                    csv_append(&buf, &len, &cap, text, 1);
                    free(dumped);
                }
            }
            csv_append(&buf, &len, &cap, "\r\n", 0);
        }
    }
    json_decref(keys);
    json_decref(tcols);
    return buf;
}

/* write_to_cache, where the original product's API has it (a top-level string, "true" or "false") or inside
 * options (where docs/api.md lists it); a JSON boolean is taken too. *out: 1 (the default) or 0. */
static ib_code write_to_cache_arg(const json_t *args, const json_t *options, int *out, ib_reply *rep)
{
    static const char *const where[] = {"write_to_cache", "options.write_to_cache"};
    const json_t *v[] = {json_object_get(args, "write_to_cache"), json_object_get(options, "write_to_cache")};
    int got[2] = {-1, -1};
    for (int k = 0; k < 2; k++) {
        if (!v[k]) continue;
        const char *s = json_string_value(v[k]);
        if (json_is_boolean(v[k]))
            got[k] = json_is_true(v[k]);
        else if (s && (!strcasecmp(s, "true") || !strcasecmp(s, "false")))
            got[k] = !strcasecmp(s, "true");
        else
            return ib_fail(rep, IB_BAD_REQUEST, "%s must be true or false (a boolean or the string \"true\" or "
                           "\"false\")", where[k]);
    }
    if (got[0] >= 0 && got[1] >= 0 && got[0] != got[1])
        return ib_fail(rep, IB_BAD_REQUEST, "write_to_cache and options.write_to_cache disagree");
    *out = got[0] >= 0 ? got[0] : got[1] >= 0 ? got[1] : 1;
    return IB_OK;
}

static ib_code run_sync_op(void *state, const ib_request *req, ib_reply *rep)
{
    json_t *files = json_object_get(req->args, "files");
    const json_t *options = json_object_get(req->args, "options");
    const char *format = json_string_value(json_object_get(options, "result_format"));
    if (json_object_get(options, "result_format") && !format)
        return ib_fail(rep, IB_BAD_REQUEST, "options.result_format must be \"json\" or \"csv\"");
    if (format && strcmp(format, "json") && strcmp(format, "csv"))
        return ib_fail(rep, IB_BAD_REQUEST, "options.result_format must be \"json\" or \"csv\", not \"%.40s\"", format);
    int write_out = 1;
    if (write_to_cache_arg(req->args, options, &write_out, rep) != IB_OK) return rep->code;
    size_t n = json_array_size(files);
    if (n == 0) return ib_fail(rep, IB_BAD_REQUEST, "'files' must not be empty");
    if (n > (size_t)rcfg.max_files)
        return ib_fail(rep, IB_TOO_LARGE, "'files' has %zu entries; the limit is %lld", n, rcfg.max_files);
    for (size_t i = 0; i < n; i++) {
        json_t *f = json_array_get(files, i);
        if (!json_is_object(f)) return ib_fail(rep, IB_BAD_REQUEST, "files[%zu] must be an object", i);
        if (check_file_name(json_string_value(json_object_get(f, "file_name")), i, rep) != IB_OK) return rep->code;
        if (!json_is_string(json_object_get(f, "file_content")))
            return ib_fail(rep, IB_BAD_REQUEST, "files[%zu].file_content is required (a base64 string)", i);
    }
    solution *sol = solution_resolve(req->args, &req->who, rep);
    if (!sol) return rep->code;
    if (!exec_has_room()) {
        solution_release(sol);
        return busy(rep, 1);
    }

    char id[IB_JOB_ID_LEN + 1], out_path[IB_PATH_MAX], out_shown[IB_PATH_MAX + 2];
    job_id_new(id);
    const char *given = ib_arg_str(req->args, "output_dir");
    if (given)
        snprintf(out_path, sizeof out_path, "%s", given);
    else
        snprintf(out_path, sizeof out_path, "/%s/.ibsol/run_sync/%s", req->who.user, id);
    /* write_to_cache false: the caller takes the records from the reply and will read no output folder, so
     * none is made (no .ibdoc per step, no batch.ibflowresults) unless it named one with output_dir. The job
     * record stays: jobs/status, jobs/results and jobs/list answer for the job id the reply brings. */
    int out_fd = -1;
    if (write_out || given) {
        ib_dpath out;
        if ((out_fd = open_output(out_path, &req->who, "output_dir", 0, &out, rep)) < 0) {
            solution_release(sol);
            return rep->code;
        }
        ib_dpath_show(&out, out_shown, sizeof out_shown);
    }

    /* Decode one file at a time and drop its base64 text right away: the request's memory stays ~1x. */
    job_input *inputs = calloc(n, sizeof *inputs);
    for (size_t i = 0; inputs && i < n; i++) {
        json_t *f = json_array_get(files, i);
        inputs[i].name = strdup(json_string_value(json_object_get(f, "file_name")));
        json_t *content = json_object_get(f, "file_content");
        size_t len = 0;
        unsigned char *bytes = ib_base64_decode(json_string_value(content), json_string_length(content), &len);
        char msg[400];
        if (!bytes) {
            snprintf(msg, sizeof msg, "%s: file_content is not valid base64", inputs[i].name);
            inputs[i].error = strdup(msg);
        } else if (len == 0) {
            free(bytes);
            snprintf(msg, sizeof msg, "%s: empty file", inputs[i].name);
            inputs[i].error = strdup(msg);
        } else {
            inputs[i].bytes = bytes;
            inputs[i].len = len;
        }
        json_object_del(f, "file_content");
    }
    if (!inputs || mark_output_names(inputs, n) < 0) {
        job_inputs_free(inputs, n);
        if (out_fd >= 0) close(out_fd);
        solution_release(sol);
        return ib_fail(rep, IB_INTERNAL, "out of memory for %zu files", n);
    }
    json_t *rec = new_record(id, "flow", req);
    json_object_set_new(rec, "sync", json_true());
    json_object_set_new(rec, "total", json_integer((json_int_t)n));
    json_object_set_new(rec, "solution", solution_record(sol, req->args));
    if (out_fd >= 0) json_object_set_new(rec, "output_folder", json_string(out_shown));
    json_object_set_new(rec, "settings", json_object());
    /* Nothing on disk yet (exec.c says when a run_sync job is recorded), and no list of inputs ever: a run_sync
     * is never resumed (its bytes were only in the request). */
    char binary_path[sizeof sol->binary_path];
    snprintf(binary_path, sizeof binary_path, "%s", sol->binary_path);
    job *j = exec_submit(rec, sol, inputs, n, -1, -1, out_fd, 1);
    if (!j) { /* filled up since the check above: nothing recorded, the request may go elsewhere */
        json_decref(rec);
        job_inputs_free(inputs, n);
        if (out_fd >= 0) close(out_fd);
        solution_release(sol);
        return busy(rep, 1);
    }
    json_t *done = exec_wait(j, rcfg.sync_timeout_ms);
    if (!done)
        return ib_fail(rep, IB_TIMEOUT, "run_sync did not finish within %lld ms; job %s was stopped",
                       rcfg.sync_timeout_ms, id);
    if (json_object_get(done, "limit")) { /* stopped: its results passed IBSOL_MAX_JOB_OUTPUT */
        ib_fail(rep, IB_TOO_LARGE, "%s; job %s", json_string_value(json_object_get(done, "msg")) ?: "", id);
        json_decref(done);
        return rep->code;
    }
    json_t *records = work_records(json_object_get(done, "file_results"));
    json_t *d = ib_reply_data(rep);
    json_object_set(d, "finish_timestamp", json_object_get(done, "finish_timestamp"));
    if (json_is_true(json_object_get(done, "$end_in_reply"))) /* no event told it (exec.c, finish) */
        json_object_set_new(d, "$job_ended", json_pack("{s:s, s:s}", "job_id", id, "status", "COMPLETE"));
    json_decref(done);
    if (format && !strcmp(format, "csv")) {
        char *csv = records_csv(records);
        json_object_set_new(d, "$body", json_string(csv ? csv : ""));
        json_object_set_new(d, "$content_type", json_string("text/csv; charset=utf-8"));
        free(csv);
    }
    json_object_set_new(d, "records", records);
    json_object_set_new(d, "binary_path", json_string(binary_path));
    json_object_set_new(d, "job_id", json_string(id));
    return IB_OK;
}

/* --- jobs.* -------------------------------------------------------------------------------------------- */

static ib_code status_op(void *state, const ib_request *req, ib_reply *rep)
{
    return ib_job_status_op(jobs_dir_fd(), req->args, &req->who, rep);
}

static ib_code results_op(void *state, const ib_request *req, ib_reply *rep)
{
    const char *id = ib_arg_str(req->args, "job_id");
    json_t *rec = job_load_for(id, &req->who, rep);
    if (!rec) return rep->code;
    ib_job_status st = IB_JOB_QUEUED;
    ib_job_status_parse(json_string_value(json_object_get(rec, "status")), &st);
    if (!ib_job_status_final(st)) {
        json_decref(rec);
        return ib_fail(rep, IB_CONFLICT, "job '%s' has not finished yet (%s)", id, ib_job_status_word(st));
    }
    json_t *files = json_object_get(rec, "file_results") /* a run_sync job's */
                        ? json_incref(json_object_get(rec, "file_results"))
                        : job_files_load(id, (size_t)json_integer_value(json_object_get(rec, "total")));
    json_t *d = ib_reply_data(rep);
    json_object_set_new(d, "job_id", json_string(id));
    json_object_set_new(d, "records", work_records(files));
    json_object_set(d, "binary_path", json_object_get(json_object_get(rec, "solution"), "binary_path"));
    json_object_set(d, "finish_timestamp", json_object_get(rec, "finish_timestamp"));
    json_decref(files);
    json_decref(rec);
    return IB_OK;
}

static ib_code cancel_op(void *state, const ib_request *req, ib_reply *rep)
{
    const char *id = ib_arg_str(req->args, "job_id");
    json_t *rec = job_load_for(id, &req->who, rep);
    if (!rec) return rep->code;
    ib_job_status st = IB_JOB_QUEUED;
    ib_job_status_parse(json_string_value(json_object_get(rec, "status")), &st);
    if (!ib_job_status_final(st) && job_cancel_request(id) < 0) {
        json_decref(rec);
        return ib_fail(rep, IB_INTERNAL, "job '%s' cannot be cancelled: %s", id, strerror(errno));
    }
    json_t *d = ib_job_status_reply(rec);
    json_object_set_new(d, "cancel_requested", json_boolean(!ib_job_status_final(st)));
    json_decref(rep->data);
    rep->data = d;
    json_decref(rec);
    return IB_OK;
}

#define LIST_DEFAULT 100
#define LIST_MAX 1000

static ib_code list_op(void *state, const ib_request *req, ib_reply *rep)
{
    const char *limit_arg = ib_arg_str(req->args, "limit"), *cursor = ib_arg_str(req->args, "cursor");
    long long limit = LIST_DEFAULT;
    if (limit_arg) {
        char *end;
        errno = 0;
        limit = strtoll(limit_arg, &end, 10);
        if (!*limit_arg || *end || errno || limit < 1 || limit > LIST_MAX || !strchr("0123456789", limit_arg[0]))
            return ib_fail(rep, IB_BAD_REQUEST, "limit '%.40s' must be a whole number from 1 to %d", limit_arg,
                           LIST_MAX);
    }
    if (cursor && !job_list_cursor_ok(cursor))
        return ib_fail(rep, IB_BAD_REQUEST, "cursor '%.80s' is not a cursor from jobs/list's next_cursor", cursor);
    char next[JOB_CURSOR_MAX];
    json_t *recs = jobs_of_user(req->who.user, (size_t)limit, cursor, next), *out = json_array();
    size_t i;
    json_t *rec;
    json_array_foreach(recs, i, rec)
    {
        json_t *item = ib_job_cur_status(rec);
        static const char *const keys[] = {"job_id", "kind", "created", "input_folder", "output_folder", "tags"};
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            if (json_object_get(rec, keys[k])) json_object_set(item, keys[k], json_object_get(rec, keys[k]));
        const json_t *sol = json_object_get(rec, "solution");
        if (sol)
            json_object_set_new(item, "solution", json_pack("{s:O, s:O}", "name", json_object_get(sol, "name"),
                                                            "version", json_object_get(sol, "version")));
        json_array_append_new(out, item);
    }
    json_decref(recs);
    json_object_set_new(ib_reply_data(rep), "jobs", out);
    json_object_set_new(ib_reply_data(rep), "next_cursor", next[0] ? json_string(next) : json_null());
    return IB_OK;
}

/* --- files.copy / files.extract ------------------------------------------------------------------------ */

static ib_code fileop(const char *kind, const ib_request *req, ib_reply *rep)
{
    if (fileops_check(kind, req->args, &req->who, rep) != IB_OK) return rep->code;
    if (!exec_has_room()) return busy(rep, 1);
    char id[IB_JOB_ID_LEN + 1];
    job_id_new(id);
    int lock_fd = job_lock(id);
    json_t *rec = new_record(id, kind, req);
    int deploy = !strcmp(kind, "deploy"); /* its one argument: the archive */
    const char *src = ib_arg_str(req->args, deploy ? "solution_path" : "src_path");
    const char *dst = deploy ? "/installed" : ib_arg_str(req->args, "dst_path");
    json_object_set_new(rec, "total", json_integer(1));
    json_object_set_new(rec, "args", deploy ? json_pack("{s:s}", "solution_path", src)
                                            : json_pack("{s:s, s:s}", "src_path", src, "dst_path", dst));
    json_object_set_new(rec, "input_folder", json_string(src));
    json_object_set_new(rec, "output_folder", json_string(dst));
    json_object_set_new(rec, "settings", json_object());
    job_input *inputs = calloc(1, sizeof *inputs);
    if (inputs) inputs[0].name = strdup(src);
    if (!inputs || !inputs[0].name || lock_fd < 0 || job_save(rec) < 0 || job_mark_active(rec) < 0) {
        json_decref(rec);
        job_inputs_free(inputs, 1);
        job_unlock(lock_fd);
        ib_fail_write(rep, errno, "the job could not be recorded");
        job_discard(id);
        return rep->code;
    }
    if (!exec_submit(rec, NULL, inputs, 1, lock_fd, -1, -1, 0)) {
        job_mark_inactive(id);
        exec_fail_record(rec, "the runner was at its job limit");
        job_inputs_free(inputs, 1);
        job_unlock(lock_fd);
        return busy(rep, 0);
    }
    json_t *d = ib_reply_data(rep);
    json_object_set_new(d, "job_id", json_string(id));
    json_object_set_new(d, "$http_status", json_integer(202));
    return IB_OK;
}

static ib_code copy_op(void *state, const ib_request *req, ib_reply *rep)
{
    return fileop("copy", req, rep);
}

static ib_code extract_op(void *state, const ib_request *req, ib_reply *rep)
{
    return fileop("extract", req, rep);
}

/* --- deployed solutions (the original product's /api/v2/solutions/deployed) ----------------------------- */

static ib_code deploy_op(void *state, const ib_request *req, ib_reply *rep)
{
    return fileop("deploy", req, rep);
}

static ib_code deployed_op(void *state, const ib_request *req, ib_reply *rep)
{
    json_object_set_new(ib_reply_data(rep), "solutions", fileops_deployed(&req->who));
    return IB_OK;
}

/* --- the Flow Binary API: flow/run_binary_async, flow_binary/results ----------------------------------- */

/* solution/run of a compiled .ibflowbin on the drive: the same job and output layout; input_dir and binary_path
 * are checked here so a refusal names the fields the caller sent. */
static ib_code run_binary_op(void *state, const ib_request *req, ib_reply *rep)
{
    ib_dpath in;
    if (ib_dpath_parse(ib_arg_str(req->args, "input_dir"), &req->who, "input_dir", &in, rep) != IB_OK)
        return rep->code;
    int fd = ib_drive_openat(runner_drive_fd, &in, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0) return ib_drive_errno_reply(errno, "input_dir", &in, rep);
    close(fd);
    ib_request run = *req;
    run.args = json_pack("{s:O, s:O, s:O?}", "input_folder", json_object_get(req->args, "input_dir"), "binary_path",
                         json_object_get(req->args, "binary_path"), "settings", json_object_get(req->args, "settings"));
    if (!run.args) return ib_fail(rep, IB_INTERNAL, "out of memory");
    ib_code rc = run_op(state, &run, rep);
    json_decref(run.args);
    return rc;
}

#define RESULTS_PAGE 20 /* input files per flow_binary/results page */

/* A finished run's batch.ibflowresults (ibresults_path names it, or the output folder holding it) read back as
 * records, RESULTS_PAGE input files a page from file_offset; next_file_offset asks for the next page (null on
 * the last). */
static ib_code flow_results_op(void *state, const ib_request *req, ib_reply *rep)
{
    json_t *off_v = json_object_get(req->args, "file_offset");
    json_int_t off = off_v ? json_integer_value(off_v) : 0;
    if (off < 0) return ib_fail(rep, IB_BAD_REQUEST, "'file_offset' must be 0 or more, not %lld", (long long)off);
    ib_dpath p;
    char shown[IB_PATH_MAX + 2];
    if (ib_dpath_parse(ib_arg_str(req->args, "ibresults_path"), &req->who, "ibresults_path", &p, rep) != IB_OK)
        return rep->code;
    ib_dpath_show(&p, shown, sizeof shown);
    int fd = ib_drive_openat(runner_drive_fd, &p, O_RDONLY | O_NONBLOCK, 0);
    if (fd < 0) return ib_drive_errno_reply(errno, "ibresults_path", &p, rep);
    struct stat st;
    if (fstat(fd, &st) != 0 || !(S_ISDIR(st.st_mode) || S_ISREG(st.st_mode))) {
        close(fd);
        return ib_fail(rep, IB_BAD_REQUEST, "ibresults_path: '%s' is not a file or folder", shown);
    }
    size_t len = 0;
    size_t max = (size_t)rcfg.max_job_output + (1u << 20); /* results and the batch's own few fields */
    char *text = NULL;
    if (S_ISDIR(st.st_mode)) {
        text = ib_read_file_at(fd, "batch.ibflowresults", max, &len);
    } else if ((size_t)st.st_size > max) {
        errno = EFBIG;
    } else if ((text = malloc((size_t)st.st_size + 1))) {
        ssize_t n = 1;
        while (len < (size_t)st.st_size && (n = pread(fd, text + len, (size_t)st.st_size - len, (off_t)len)) > 0)
            len += (size_t)n;
        if (n <= 0) {
            free(text);
            text = NULL;
            if (n == 0) errno = EIO; /* shrank while read */
        }
    }
    int e = errno;
    close(fd);
    if (!text) {
        if (e == ENOENT)
            return ib_fail(rep, IB_NOT_FOUND, "ibresults_path: '%s' holds no batch.ibflowresults", shown);
        return ib_fail(rep, e == EFBIG ? IB_TOO_LARGE : IB_BAD_REQUEST, "ibresults_path: '%s' cannot be read: %s",
                       shown, e == EFBIG ? "larger than a job's results may be" : strerror(e));
    }
    json_error_t jerr;
    json_t *batch = json_loadb(text, len, 0, &jerr);
    free(text);
    json_t *files = json_object_get(batch, "results");
    if (!json_is_array(files)) {
        json_decref(batch);
        return ib_fail(rep, IB_BAD_REQUEST, "ibresults_path: '%s' is not a batch.ibflowresults (no 'results' list)",
                       shown);
    }
    size_t total = json_array_size(files), from = (size_t)off < total ? (size_t)off : total;
    size_t to = total - from > RESULTS_PAGE ? from + RESULTS_PAGE : total;
    json_t *page = json_array();
    for (size_t i = from; i < to; i++) json_array_append(page, json_array_get(files, i));
    json_t *d = ib_reply_data(rep);
    json_object_set(d, "job_id", json_object_get(batch, "job_id"));
    json_object_set(d, "binary_path", json_object_get(batch, "binary_path"));
    json_object_set_new(d, "records", work_records(page));
    json_object_set_new(d, "file_offset", json_integer((json_int_t)from));
    json_object_set_new(d, "files", json_integer((json_int_t)(to - from)));
    json_object_set_new(d, "total_files", json_integer((json_int_t)total));
    json_object_set_new(d, "next_file_offset", to < total ? json_integer((json_int_t)to) : json_null());
    json_decref(page);
    json_decref(batch);
    return IB_OK;
}

/* --- resume (events.c finds orphans) ------------------------------------------------------------------- */

/* Rebuilds what a job needs from its record and documents (a lost runner's job to resume, or another runner's
 * job to help with): the solution, the inputs, the folders, the finished files. `help` set: hand it to the pool
 * as a helper (no lock), else resume it as its owner (lock_fd held). Takes rec. */
static int rebuild(json_t *rec, int lock_fd, int help, char *err, size_t errsz)
{
    const char *id = json_string_value(json_object_get(rec, "job_id"));
    ib_caller owner = {json_string_value(json_object_get(rec, "user")), "user", id};
    ib_reply rep;
    ib_reply_init(&rep);
    ib_dpath in, out;
    int in_fd = -1, out_fd = -1;
    json_t *names = job_doc_load(id, "inputs");
    solution *sol = solution_from_record(rec, err, errsz);
    if (!sol) goto fail;
    if (!json_is_array(names)) {
        snprintf(err, errsz, "its list of inputs is missing");
        goto fail;
    }
    if (ib_dpath_parse(json_string_value(json_object_get(rec, "input_folder")), &owner, "input_folder", &in, &rep) ||
        ib_dpath_parse(json_string_value(json_object_get(rec, "output_folder")), &owner, "output_folder", &out, &rep)) {
        snprintf(err, errsz, "%s", rep.msg);
        goto fail;
    }
    in_fd = ib_drive_openat(runner_drive_fd, &in, O_RDONLY | O_DIRECTORY, 0);
    out_fd = ib_drive_open_dir(runner_drive_fd, &out, 1);
    if (in_fd < 0 || out_fd < 0) {
        snprintf(err, errsz, "its input or output folder is gone: %s", strerror(errno));
        goto fail;
    }
    size_t n = json_array_size(names);
    job_input *inputs = calloc(n ? n : 1, sizeof *inputs);
    if (!inputs) goto fail;
    for (size_t i = 0; i < n; i++) inputs[i].name = strdup(json_string_value(json_array_get(names, i)) ?: "");
    int short_of_memory = mark_output_names(inputs, n) < 0;
    for (size_t i = 0; i < n; i++) short_of_memory |= !inputs[i].name;
    if (short_of_memory) {
        job_inputs_free(inputs, n);
        snprintf(err, errsz, "out of memory for its %zu inputs", n);
        goto fail;
    }
    /* An owner resuming needs the finished files' results (the job's end lists them); a helper only which files
     * are finished, and it may look at a long job near its end. */
    job *j = NULL;
    if (help) {
        unsigned char *done = job_files_done(id, n);
        if (done) j = exec_help(rec, sol, inputs, n, in_fd, out_fd, done);
        free(done);
    } else {
        json_t *done = job_files_load(id, n);
        j = exec_resume(rec, sol, inputs, n, lock_fd, in_fd, out_fd, done);
        json_decref(done);
    }
    json_decref(names);
    if (j) return 0;
    job_inputs_free(inputs, n);
    snprintf(err, errsz, help ? "nothing left to help with" : "this runner is at its job limit");
    json_decref(rec);
    close(in_fd);
    close(out_fd);
    solution_release(sol);
    return -1;
fail:
    json_decref(names);
    json_decref(rec);
    if (in_fd >= 0) close(in_fd);
    if (out_fd >= 0) close(out_fd);
    solution_release(sol);
    ib_reply_clear(&rep);
    return -1;
}

int ops_resume(json_t *rec, int lock_fd, char *err, size_t errsz)
{
    return rebuild(rec, lock_fd, 0, err, errsz);
}

int ops_help(json_t *rec, char *err, size_t errsz)
{
    return rebuild(rec, -1, 1, err, errsz);
}

const ib_op runner_ops[] = {
    {IB_OP_SOLUTION_RUN, run_op},   {IB_OP_SOLUTION_RUN_SYNC, run_sync_op}, {IB_OP_JOBS_STATUS, status_op},
    {IB_OP_JOBS_RESULTS, results_op}, {IB_OP_JOBS_CANCEL, cancel_op},     {IB_OP_JOBS_LIST, list_op},
    {IB_OP_FILES_COPY, copy_op},      {IB_OP_FILES_EXTRACT, extract_op},
    {IB_OP_SOLUTION_DEPLOY, deploy_op}, {IB_OP_SOLUTION_DEPLOYED, deployed_op}, {IB_OP_FLOW_RUN_BINARY, run_binary_op},
    {IB_OP_FLOW_RESULTS, flow_results_op},
    {IB_OP_PAGES_RENDER, pages_render_op},
};
const size_t runner_nops = sizeof runner_ops / sizeof runner_ops[0];
