/* ibsol files: the drive through the files API. Uploads past the chunk size go in chunks (PATCH with IB-Cursor 0,
 * then -1), and are resumable: a state file under $XDG_STATE_HOME/ibsol/uploads/ (default
 * ~/.local/state/ibsol/uploads/) remembers which local file goes where; when the same upload runs again, the
 * server's copy (HEAD) tells how far it got, and the upload goes on from there. The server cuts a failed append
 * back, so its copy always ends at a chunk boundary of what was sent. */
#include "ibsol.h"

#include "ib_sha256.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TREE_MAX_FILES 100000 /* files of one folder upload (the runner's IBSOL_MAX_FILES default) */
#define TREE_MAX_DEPTH 64

static char *files_path(const char *drive)
{
    char *u = http_drive_url(drive);
    if (!u) return NULL;
    size_t n = strlen(u) + 32;
    char *p = malloc(n);
    if (p) snprintf(p, n, "/api/v2/files/%s", u);
    free(u);
    return p;
}

/* HEAD of a drive path: EX_OK with its type and size, or the error class (quietly: 404 is an answer here). */
static int drive_head(const char *drive, char type[16], long long *size)
{
    char *path = files_path(drive);
    if (!path) return EX_LOCAL;
    http_reply rep;
    cli.http_quiet = 1;
    int rc = api_raw("HEAD", path, NULL, 0, NULL, NULL, NULL, &rep);
    cli.http_quiet = 0;
    free(path);
    if (rc == EX_OK) {
        snprintf(type, 16, "%s", rep.node_type);
        *size = rep.length;
        http_reply_free(&rep);
    }
    return rc;
}

/* ---- resumable uploads ---- */

static int state_file(const char *drive, char *out, size_t outsz)
{
    const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    char dir[4096];
    if (xdg && xdg[0] == '/')
        snprintf(dir, sizeof dir, "%s/ibsol/uploads", xdg);
    else if (home && home[0])
        snprintf(dir, sizeof dir, "%s/.local/state/ibsol/uploads", home);
    else
        return -1;
    /* one state per server and drive path */
    char key[8192], digest[IB_SHA256_HEX];
    snprintf(key, sizeof key, "%s\n%s", cli.url, drive);
    ib_sha256_hex(key, strlen(key), digest);
    int n = snprintf(out, outsz, "%s/%s.json", dir, digest);
    if (n < 0 || (size_t)n >= outsz) return -1;
    for (char *s = strchr(out + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        int bad = mkdir(out, 0700) != 0 && errno != EEXIST;
        *s = '/';
        if (bad) return -1;
    }
    return 0;
}

/* What identifies the local side of an upload: its real path, size and modification time. */
static json_t *upload_identity(const char *path, const struct stat *st, const char *drive)
{
    char real[PATH_MAX];
    if (!realpath(path, real)) snprintf(real, sizeof real, "%s", path);
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "url", cli.url, "drive", drive, "local", real, "size",
                     (json_int_t)st->st_size, "mtime_s", (json_int_t)st->st_mtim.tv_sec, "mtime_ns",
                     (json_int_t)st->st_mtim.tv_nsec);
}

static int read_at(int fd, char *buf, size_t len, off_t off)
{
    size_t have = 0;
    while (have < len) {
        ssize_t r = pread(fd, buf + have, len - have, off + (off_t)have);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        have += (size_t)r;
    }
    return 0;
}

/* Sends bytes [off, off+len) of fd as one request. */
static int send_part(const char *method, const char *path, const char *cursor, int fd, off_t off, size_t len,
                     ui_progress *prog, const char *local)
{
    char *buf = malloc(len ? len : 1);
    if (!buf) {
        cli_err("out of memory for a chunk of %zu bytes (use a smaller --chunk-size)", len);
        return EX_LOCAL;
    }
    if (read_at(fd, buf, len, off) != 0) {
        cli_err("'%s' cannot be read: %s", local, errno ? strerror(errno) : "it got shorter");
        free(buf);
        return EX_LOCAL;
    }
    char hdr[64];
    snprintf(hdr, sizeof hdr, "IB-Cursor: %s", cursor);
    const char *headers[] = {"Content-Type: application/octet-stream", cursor ? hdr : NULL, NULL};
    http_reply rep;
    int rc = api_raw(method, path, buf, len, headers, NULL, prog, &rep);
    free(buf);
    if (rc == EX_OK) http_reply_free(&rep);
    return rc;
}

int files_upload(const char *local, const char *drive, ui_progress *shared)
{
    int fd = open(local, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        cli_err("'%s': %s", local, strerror(errno));
        if (fd >= 0) close(fd);
        return EX_LOCAL;
    }
    if (!S_ISREG(st.st_mode)) {
        cli_err("'%s' is not a regular file", local);
        close(fd);
        return EX_LOCAL;
    }
    char *path = files_path(drive);
    if (!path) {
        close(fd);
        return EX_LOCAL;
    }
    uint64_t size = (uint64_t)st.st_size, folder_base = shared ? shared->call_base : 0;
    ui_progress own, *prog = shared;
    int rc = EX_OK;
    if (size <= cli.chunk) { /* one PUT: atomic on the server, nothing to resume */
        if (!shared && size > (1u << 20)) {
            ui_progress_start(&own, drive, "B", size);
            prog = &own;
        }
        if (prog) prog->call_base = folder_base;
        rc = send_part("PUT", path, NULL, fd, 0, (size_t)size, prog, local);
        if (rc == EX_OK && prog == &own) ui_progress_end(&own);
        if (rc == EX_OK && shared) shared->call_base = folder_base + size;
        goto out;
    }
    char state[4400];
    int have_state = state_file(drive, state, sizeof state) == 0;
    json_t *id = upload_identity(local, &st, drive);
    uint64_t start = 0;
    if (have_state) {
        json_t *old = json_load_file(state, 0, NULL);
        char type[16] = "";
        long long remote = -1;
        if (old && json_equal(old, id) && drive_head(drive, type, &remote) == EX_OK && strcmp(type, "file") == 0 &&
            remote > 0 && (uint64_t)remote <= size) {
            start = (uint64_t)remote;
            if (!cli.quiet) {
                char a[32], b[32];
                ui_size(start, a, sizeof a);
                ui_size(size, b, sizeof b);
                fprintf(stderr, "resuming the upload of '%s' to '%s' at %s of %s\n", local, drive, a, b);
            }
        }
        json_decref(old);
        if (json_dump_file(id, state, 0) != 0) have_state = 0;
    }
    json_decref(id);
    if (!shared) {
        ui_progress_start(&own, drive, "B", size);
        own.base = start;
        own.done = start;
        prog = &own;
    }
    for (uint64_t off = start; off < size && rc == EX_OK;) {
        size_t len = (size_t)(size - off < cli.chunk ? size - off : cli.chunk);
        prog->call_base = folder_base + off;
        rc = send_part("PATCH", path, off == 0 ? "0" : "-1", fd, (off_t)off, len, prog, local);
        if (rc == EX_OK) off += len;
        if (rc == EX_OK && cli_interrupted) rc = EX_INTERRUPTED;
        if (rc != EX_OK && rc != EX_INTERRUPTED) break;
        if (rc == EX_INTERRUPTED && !shared) { /* a folder's upload says it for the whole folder */
            if (cli.err_tty && !cli.quiet) fputc('\n', stderr);
            char a[32], b[32];
            ui_size(off, a, sizeof a);
            ui_size(size, b, sizeof b);
            cli_err("interrupted: '%s' holds %s of %s; run the same command again to resume", drive, a, b);
        }
    }
    if (rc == EX_OK) {
        if (prog == &own) ui_progress_end(&own);
        if (shared) shared->call_base = folder_base + size;
        if (have_state) unlink(state);
    }
out:
    free(path);
    close(fd);
    return rc;
}

/* ---- folders ---- */

typedef struct walk_ctx {
    cli_tree *t;
    const char *root;
    int (*skip)(const char *name);
    size_t max_files;
} walk_ctx;

static int walk(walk_ctx *w, const char *rel, int depth)
{
    char dir[8192];
    int n = snprintf(dir, sizeof dir, "%s%s%s", w->root, rel[0] ? "/" : "", rel);
    if (n < 0 || (size_t)n >= sizeof dir) {
        cli_err("a path below '%s' is longer than %zu bytes", w->root, sizeof dir - 1);
        return EX_LOCAL;
    }
    DIR *d = opendir(dir);
    if (!d) {
        cli_err("folder '%s': %s", dir, strerror(errno));
        return EX_LOCAL;
    }
    cli_tree *t = w->t;
    int rc = EX_OK;
    struct dirent *e;
    while (rc == EX_OK && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || (w->skip && w->skip(e->d_name))) continue;
        char sub[8192], full[8192];
        int n1 = snprintf(sub, sizeof sub, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
        int n2 = snprintf(full, sizeof full, "%s/%s", w->root, sub);
        if (n1 < 0 || (size_t)n1 >= sizeof sub || n2 < 0 || (size_t)n2 >= sizeof full) {
            cli_err("a path below '%s' is longer than %zu bytes", w->root, sizeof full - 1);
            rc = EX_LOCAL;
            break;
        }
        struct stat st;
        if (stat(full, &st) != 0) {
            cli_err("'%s': %s", full, strerror(errno));
            rc = EX_LOCAL;
        } else if (S_ISDIR(st.st_mode)) {
            if (depth >= TREE_MAX_DEPTH) {
                cli_err("'%s': folders nested deeper than %d levels", full, TREE_MAX_DEPTH);
                rc = EX_LOCAL;
            } else {
                rc = walk(w, sub, depth + 1);
            }
        } else if (S_ISREG(st.st_mode)) {
            char *copy = NULL;
            if (t->n >= w->max_files) {
                cli_err("folder '%s' holds more than %zu files", w->root, w->max_files);
                rc = EX_LOCAL;
            } else if (t->n == t->cap) {
                size_t cap = t->cap ? t->cap * 2 : 64;
                char **r = realloc(t->rel, cap * sizeof *r);
                if (r) {
                    t->rel = r;
                    t->cap = cap;
                }
            }
            if (rc == EX_OK && (t->n == t->cap || !(copy = strdup(sub)))) {
                cli_err("out of memory listing folder '%s'", w->root);
                rc = EX_LOCAL;
            }
            if (rc == EX_OK) {
                t->rel[t->n++] = copy;
                t->bytes += (uint64_t)st.st_size;
            }
        }
    }
    closedir(d);
    return rc;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int tree_collect(const char *root, int (*skip)(const char *name), size_t max_files, cli_tree *t)
{
    memset(t, 0, sizeof *t);
    walk_ctx w = {t, root, skip, max_files};
    int rc = walk(&w, "", 0);
    if (rc == EX_OK && t->n) qsort(t->rel, t->n, sizeof *t->rel, by_name);
    return rc;
}

void tree_free(cli_tree *t)
{
    for (size_t i = 0; i < t->n; i++) free(t->rel[i]);
    free(t->rel);
    memset(t, 0, sizeof *t);
}

int files_upload_tree(const char *dir, const char *drive)
{
    cli_tree t;
    int rc = tree_collect(dir, NULL, TREE_MAX_FILES, &t);
    if (rc == EX_OK && t.n == 0) {
        cli_err("folder '%s' holds no files", dir);
        rc = EX_LOCAL;
    }
    if (rc == EX_OK) {
        char label[64];
        ui_progress bar;
        snprintf(label, sizeof label, "upload 0/%zu files", t.n);
        ui_progress_start(&bar, label, "B", t.bytes);
        for (size_t i = 0; i < t.n && rc == EX_OK; i++) {
            char local[8192], dst[8192];
            snprintf(local, sizeof local, "%s/%s", dir, t.rel[i]);
            snprintf(dst, sizeof dst, "%s/%s", drive, t.rel[i]);
            rc = files_upload(local, dst, &bar);
            snprintf(label, sizeof label, "upload %zu/%zu files", i + 1, t.n);
            ui_progress_update(&bar, bar.call_base);
            if (rc == EX_OK && cli_interrupted) rc = EX_INTERRUPTED;
        }
        if (rc == EX_OK) {
            ui_progress_end(&bar);
        } else if (rc == EX_INTERRUPTED) {
            if (cli.err_tty && !cli.quiet) fputc('\n', stderr);
            cli_err("interrupted during the upload of '%s' to '%s'", dir, drive);
        }
    }
    tree_free(&t);
    return rc;
}

/* ---- the sub-commands ---- */

/* drive_head, saying so when the path does not exist. */
static int drive_node(const char *drive, char type[16], long long *size)
{
    int rc = drive_head(drive, type, size);
    if (rc == EX_NOT_FOUND) cli_err("'%s' does not exist on the drive", drive);
    return rc;
}

static int files_ls(const char *drive)
{
    char type[16] = "";
    long long size = -1;
    int rc = drive_node(drive, type, &size);
    if (rc == EX_NOT_FOUND) return rc;
    if (rc != EX_OK) { /* again, with the server's message */
        char *path = files_path(drive);
        json_t *ans = NULL;
        rc = path ? api_json("GET", path, NULL, &ans) : EX_LOCAL;
        json_decref(ans);
        free(path);
        return rc;
    }
    if (strcmp(type, "folder") != 0) {
        printf("%s  file  %lld\n", drive, size);
        return EX_OK;
    }
    char *path = files_path(drive);
    json_t *ans = NULL;
    rc = path ? api_json("GET", path, NULL, &ans) : EX_LOCAL;
    free(path);
    if (rc != EX_OK) return rc;
    static const char *const head[] = {"NAME", "TYPE", "SIZE", "MODIFIED"};
    ui_table t;
    ui_table_init(&t, 4, head);
    size_t i;
    json_t *node;
    json_array_foreach(json_object_get(ans, "nodes"), i, node)
    {
        char *sz = ui_cell(json_object_get(node, "size")), *mod = ui_cell(json_object_get(node, "modified"));
        const char *nm = json_string_value(json_object_get(node, "name"));
        const char *ty = json_string_value(json_object_get(node, "type"));
        char shown[1100];
        snprintf(shown, sizeof shown, "%s%s", nm ? nm : "", ty && !strcmp(ty, "folder") ? "/" : "");
        const char *row[] = {shown, ty, ty && !strcmp(ty, "folder") ? "" : sz, mod};
        ui_table_row(&t, row);
        free(sz);
        free(mod);
    }
    ui_table_print(&t, stdout, cli.out_tty ? ui_width() : 0, cli.color);
    ui_table_free(&t);
    json_decref(ans);
    return EX_OK;
}

static int files_get(const char *drive, const char *local)
{
    char type[16] = "";
    long long size = -1;
    int rc = drive_node(drive, type, &size);
    if (rc == EX_NOT_FOUND) return rc;
    if (rc == EX_OK && strcmp(type, "folder") == 0) {
        cli_err("'%s' is a folder; 'ibsol files get' fetches files ('ibsol files ls' lists it)", drive);
        return EX_USAGE;
    }
    const char *base = strrchr(drive, '/');
    base = base ? base + 1 : drive;
    if (!local) local = base;
    int to_stdout = strcmp(local, "-") == 0;
    char target[8192], tmp[8300];
    struct stat st;
    if (!to_stdout && stat(local, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(target, sizeof target, "%s/%s", local, base);
    else
        snprintf(target, sizeof target, "%s", local);
    /* written beside the target under a temporary name and renamed: never a half file under its name */
    snprintf(tmp, sizeof tmp, "%s.ibsol-part-%d", target, (int)getpid());
    FILE *f = to_stdout ? stdout : fopen(tmp, "wbx");
    if (!f) {
        cli_err("'%s': %s", target, strerror(errno));
        return EX_LOCAL;
    }
    char *path = files_path(drive);
    ui_progress bar, *prog = NULL;
    if (!to_stdout && size > (1 << 20)) {
        ui_progress_start(&bar, drive, "B", (uint64_t)size);
        prog = &bar;
    }
    http_reply rep;
    rc = path ? api_raw("GET", path, NULL, 0, NULL, f, prog, &rep) : EX_LOCAL;
    free(path);
    if (rc == EX_OK) http_reply_free(&rep);
    if (to_stdout) return rc;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        if (rc == EX_OK) cli_err("'%s': %s", target, strerror(errno));
        if (rc == EX_OK) rc = EX_LOCAL;
    }
    fclose(f);
    if (rc == EX_OK && rename(tmp, target) != 0) {
        cli_err("'%s': %s", target, strerror(errno));
        rc = EX_LOCAL;
    }
    if (rc != EX_OK) unlink(tmp);
    if (rc == EX_OK && prog) ui_progress_end(prog);
    return rc;
}

/* Waits for a copy job by its status (copy jobs end fast and send no file progress). */
static int wait_job(const char *job)
{
    char *id = http_escape(job);
    char path[512];
    snprintf(path, sizeof path, "/jobs/status?job_id=%s", id ? id : "");
    free(id);
    for (;;) {
        json_t *ans;
        int rc = api_json("GET", path, NULL, &ans);
        if (rc != EX_OK) return rc;
        const char *state = json_string_value(json_object_get(ans, "state"));
        if (state && strcmp(state, "DONE") == 0) {
            json_t *r0 = json_array_get(json_object_get(ans, "results"), 0);
            const char *st = json_string_value(json_object_get(r0, "status"));
            if (st && strcmp(st, "OK") == 0) {
                json_decref(ans);
                return EX_OK;
            }
            const char *msg = json_string_value(json_object_get(r0, "msg"));
            cli_err("job %s failed: %s", job, msg ? msg : "no message");
            json_decref(ans);
            return EX_JOB_FAILED;
        }
        json_decref(ans);
        if (cli_interrupted) {
            cli_err("interrupted; job %s goes on: see 'ibsol jobs status %s'", job, job);
            return EX_INTERRUPTED;
        }
        usleep(200000);
    }
}

int cmd_files(cli_args *a)
{
    if (a->n == 0) return cli_usage("files", "missing sub-command (ls, put, get, rm, cp)");
    const char *sub = a->v[0];
    a->n--, a->v++;
    if (strcmp(sub, "ls") == 0) {
        if (args_positional(a, "files", 1, 1)) return EX_USAGE;
        return files_ls(a->v[0]);
    }
    if (strcmp(sub, "put") == 0) {
        if (args_positional(a, "files", 2, 2)) return EX_USAGE;
        struct stat st;
        if (stat(a->v[0], &st) != 0) {
            cli_err("'%s': %s", a->v[0], strerror(errno));
            return EX_LOCAL;
        }
        char dst[8192];
        const char *b = strrchr(a->v[0], '/');
        size_t dl = strlen(a->v[1]);
        if (dl && a->v[1][dl - 1] == '/') /* into a folder: keep the name */
            snprintf(dst, sizeof dst, "%s%s", a->v[1], b ? b + 1 : a->v[0]);
        else
            snprintf(dst, sizeof dst, "%s", a->v[1]);
        int rc = S_ISDIR(st.st_mode) ? files_upload_tree(a->v[0], dst) : files_upload(a->v[0], dst, NULL);
        if (rc == EX_OK && !cli.quiet) printf("uploaded %s -> %s\n", a->v[0], dst);
        return rc;
    }
    if (strcmp(sub, "get") == 0) {
        if (args_positional(a, "files", 1, 2)) return EX_USAGE;
        return files_get(a->v[0], a->n > 1 ? a->v[1] : NULL);
    }
    if (strcmp(sub, "rm") == 0) {
        if (args_positional(a, "files", 1, 1)) return EX_USAGE;
        char *path = files_path(a->v[0]);
        http_reply rep;
        int rc = path ? api_raw("DELETE", path, NULL, 0, NULL, NULL, NULL, &rep) : EX_LOCAL;
        free(path);
        if (rc == EX_OK) http_reply_free(&rep);
        if (rc == EX_OK && !cli.quiet) printf("removed %s\n", a->v[0]);
        return rc;
    }
    if (strcmp(sub, "cp") == 0) {
        if (args_positional(a, "files", 2, 2)) return EX_USAGE;
        json_t *body = json_pack("{s:s, s:s}", "src_path", a->v[0], "dst_path", a->v[1]), *ans = NULL;
        int rc = api_json("POST", "/files/copy", body, &ans);
        json_decref(body);
        const char *job = json_string_value(json_object_get(ans, "job_id"));
        if (rc == EX_OK) rc = wait_job(job ? job : "");
        json_decref(ans);
        if (rc == EX_OK && !cli.quiet) printf("copied %s -> %s\n", a->v[0], a->v[1]);
        return rc;
    }
    return cli_usage("files", "'%s' is not a files sub-command (ls, put, get, rm, cp)", sub);
}
