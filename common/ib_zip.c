/* ib_zip: the reproducible .ibsolution writer and the verifying reader (libzip 1.7). The writer feeds libzip
 * its own source, which reopens each file confined at write time with no symlink followed, so the bytes
 * depend only on names and contents. The reader checks every name itself: libzip accepts "../x" and "/abs".
 */
#include "ib_zip.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <pthread.h>
#include <unistd.h>

#include "ib_fs.h"
#include "ib_path.h"

#define DOS_DATE_1980_01_01 0x21
/* Regular file rw-r--r--, in the upper half where Unix zip tools look. */
#define ENTRY_ATTRS (0100644u << 16)
#define FIXED_MTIME 315532800 /* 1980-01-01T00:00:00Z; only seen if libzip ever ignored the DOS time */
#define IO_BLOCK (64 * 1024)
#define SHOW_MAX 200

#include "ib_err.h"
#include "ib_utf8.h"

#define fail ib_errf /* fail(err, errsz, fmt, ...): message, then -1 */

/* A name fit for a message: bytes that are not UTF-8 as \xHH, control characters as '?', cut at SHOW_MAX bytes
 * (or where the buffer ends). */
static const char *show(const char *name, char *buf, size_t bufsz)
{
    char esc[4 * SHOW_MAX + 8];
    char cut[SHOW_MAX + 1];
    size_t n = strnlen(name, SHOW_MAX);
    memcpy(cut, name, n);
    cut[n] = '\0';
    ib_utf8_escape(cut, esc, sizeof esc);
    size_t i = 0;
    for (; esc[i] && i + 4 < bufsz && i < SHOW_MAX; i++)
        buf[i] = ((unsigned char)esc[i] < 0x20 || esc[i] == 0x7f) ? '?' : esc[i];
    if (esc[i] || name[n]) {
        /* a cut that fell inside a character would leave a broken one: back up to its first byte */
        while (i > 0 && ((unsigned char)esc[i] & 0xc0) == 0x80) i--;
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

static uint64_t lim_or_max(uint64_t v)
{
    return v ? v : UINT64_MAX;
}

const char *ib_zip_name_problem(const char *name)
{
    if (!name || !*name) return "has an empty name";
    if (name[0] == '/') return "escapes its folder";
    size_t n = strlen(name);
    if (n >= IB_PATH_MAX) return "has a name longer than 4095 bytes";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '\\') return "has a backslash in its name";
        if (c < 0x20 || c == 0x7f) return "has a control character in its name";
    }
    /* A name the API could not show in JSON (zips made elsewhere may use another code page): never created. */
    if (!ib_utf8_valid(name, n)) return "has a name that is not valid UTF-8";
    for (const char *seg = name;;) {
        size_t len = strcspn(seg, "/");
        if (len == 2 && seg[0] == '.' && seg[1] == '.') return "escapes its folder";
        if (len == 0) return "has an empty path segment";
        if (len == 1 && seg[0] == '.') return "has a '.' segment";
        if (len > 255) return "has a path segment longer than 255 bytes";
        if (!seg[len]) return NULL;
        seg += len + 1;
    }
}

int ib_zip_name_ok(const char *name)
{
    return ib_zip_name_problem(name) == NULL;
}

/* ---- writer ---- */

typedef struct wentry {
    char *name; /* owned for files; borrowed from the extra otherwise */
    uint64_t size;
    const ib_zip_extra *extra; /* NULL for a file of the folder */
} wentry;

typedef struct writer {
    wentry *v;
    size_t n, cap;
    uint64_t total, max_total, max_entries;
    const ib_zip_extra *extras;
    size_t nextras;
    const char *bad; /* the file that failed while libzip read it */
    char *err;
    size_t errsz;
    /* parallel compression: the part archives the output is copied from (open until it is closed) */
    struct zip *parts[8];
    char part_paths[8][IB_PATH_MAX + 64];
    int nparts;
    int sys; /* the errno of a failed write (ENOSPC...), for the caller to tell a full disk from a bad folder */
} writer;

/* The system errno behind libzip's last error on za, or 0. */
static int zip_sys_errno(zip_t *za)
{
    zip_error_t *ze = zip_get_error(za);
    return zip_error_system_type(ze) == ZIP_ET_SYS ? zip_error_code_system(ze) : 0;
}

static int skipped_name(const char *name)
{
    size_t n = strlen(name);
    if (n >= 11 && strcmp(name + n - 11, ".ibsolution") == 0) return 1;
    return name[0] == '.' && strstr(name, ".tmp-") != NULL;
}

static int add_entry(writer *w, char *name, uint64_t size, const ib_zip_extra *extra)
{
    char sb[SHOW_MAX + 4];
    if (w->n + 1 > w->max_entries) {
        fail(w->err, w->errsz, "content folder has more than %llu files (at '%s')",
             (unsigned long long)w->max_entries, show(name, sb, sizeof sb));
        return -1;
    }
    if (size > w->max_total - w->total) {
        fail(w->err, w->errsz, "content folder passes the size limit of %llu bytes at '%s'",
             (unsigned long long)w->max_total, show(name, sb, sizeof sb));
        return -1;
    }
    if (w->n == w->cap) {
        size_t ncap = w->cap ? w->cap * 2 : 64;
        wentry *nv = realloc(w->v, ncap * sizeof *nv);
        if (!nv) {
            fail(w->err, w->errsz, "out of memory");
            return -1;
        }
        w->v = nv;
        w->cap = ncap;
    }
    w->v[w->n++] = (wentry){name, size, extra};
    w->total += size;
    return 0;
}

static int replaced_by_extra(const writer *w, const char *rel)
{
    for (size_t i = 0; i < w->nextras; i++)
        if (strcmp(w->extras[i].name, rel) == 0) return 1;
    return 0;
}

/* Collects the regular files of the folder dfd (owned and closed here) whose path is `prefix`. Every step is
 * an openat(O_NOFOLLOW) from a folder already reached, and lstat-like fstatat decides, so no symlink is ever
 * followed. */
static int collect(writer *w, int dfd, const char *prefix)
{
    char sb[SHOW_MAX + 4];
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return fail(w->err, w->errsz, "content folder '%s' cannot be read: %s", *prefix ? prefix : ".",
                    strerror(errno));
    }
    int rc = 0;
    struct dirent *ent;
    for (errno = 0; rc == 0 && (ent = readdir(d)) != NULL; errno = 0) {
        const char *nm = ent->d_name;
        if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0) continue;
        size_t plen = strlen(prefix), nlen = strlen(nm);
        char *rel = malloc(plen + nlen + 2);
        if (!rel) {
            rc = fail(w->err, w->errsz, "out of memory");
            break;
        }
        if (plen) {
            memcpy(rel, prefix, plen);
            rel[plen] = '/';
            memcpy(rel + plen + 1, nm, nlen + 1);
        } else {
            memcpy(rel, nm, nlen + 1);
        }
        struct stat st;
        if (fstatat(dirfd(d), nm, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            rc = fail(w->err, w->errsz, "content folder entry '%s' cannot be read: %s",
                      show(rel, sb, sizeof sb), strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd(d), nm, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0)
                rc = fail(w->err, w->errsz, "content folder entry '%s' cannot be opened: %s",
                          show(rel, sb, sizeof sb), strerror(errno));
            else
                rc = collect(w, sub, rel);
        } else if (S_ISLNK(st.st_mode)) {
            rc = fail(w->err, w->errsz,
                      "content folder entry '%s' is a symlink; a package holds regular files only",
                      show(rel, sb, sizeof sb));
        } else if (!S_ISREG(st.st_mode)) {
            rc = fail(w->err, w->errsz, "content folder entry '%s' is not a regular file or folder",
                      show(rel, sb, sizeof sb));
        } else if (!skipped_name(nm) && !replaced_by_extra(w, rel)) {
            const char *why = ib_zip_name_problem(rel);
            if (why)
                rc = fail(w->err, w->errsz, "content folder file '%s' cannot be archived: it %s",
                          show(rel, sb, sizeof sb), why);
            else if ((rc = add_entry(w, rel, (uint64_t)st.st_size, NULL)) == 0)
                rel = NULL; /* now owned by the entry */
        }
        free(rel);
    }
    if (rc == 0 && errno != 0)
        rc = fail(w->err, w->errsz, "content folder '%s' cannot be read: %s", *prefix ? prefix : ".",
                  strerror(errno));
    closedir(d);
    return rc;
}

static int cmp_wentry(const void *a, const void *b)
{
    return strcmp(((const wentry *)a)->name, ((const wentry *)b)->name);
}

/* A zip source reading one file of the content folder. */
typedef struct fsrc {
    int rootfd;
    const char *name;
    uint64_t size, pos;
    int fd;
    const char **bad;
    zip_error_t error;
} fsrc;

static zip_int64_t fsrc_fail(fsrc *s, int ze, int se)
{
    zip_error_set(&s->error, ze, se);
    *s->bad = s->name;
    return -1;
}

static zip_int64_t fsrc_cb(void *ud, void *data, zip_uint64_t len, zip_source_cmd_t cmd)
{
    fsrc *s = ud;
    switch (cmd) {
    case ZIP_SOURCE_OPEN: {
        struct stat st;
        s->fd = ib_openat_strict(s->rootfd, s->name, O_RDONLY | O_NOFOLLOW, 0);
        if (s->fd < 0) return fsrc_fail(s, ZIP_ER_OPEN, errno);
        if (fstat(s->fd, &st) != 0) return fsrc_fail(s, ZIP_ER_READ, errno);
        /* The size was counted against the limits and declared to libzip: it must not have moved. */
        if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != s->size) return fsrc_fail(s, ZIP_ER_CHANGED, 0);
        s->pos = 0;
        return 0;
    }
    case ZIP_SOURCE_READ: {
        uint64_t left = s->size - s->pos;
        if (left == 0) return 0;
        if (len > left) len = left;
        ssize_t n;
        do
            n = read(s->fd, data, len);
        while (n < 0 && errno == EINTR);
        if (n < 0) return fsrc_fail(s, ZIP_ER_READ, errno);
        if (n == 0) return fsrc_fail(s, ZIP_ER_CHANGED, 0);
        s->pos += (uint64_t)n;
        return n;
    }
    case ZIP_SOURCE_CLOSE:
        if (s->fd >= 0) close(s->fd);
        s->fd = -1;
        return 0;
    case ZIP_SOURCE_STAT: {
        if (len < sizeof(zip_stat_t)) {
            zip_error_set(&s->error, ZIP_ER_INVAL, 0);
            return -1;
        }
        zip_stat_t *st = data;
        zip_stat_init(st);
        st->valid = ZIP_STAT_SIZE | ZIP_STAT_MTIME;
        st->size = s->size;
        st->mtime = FIXED_MTIME;
        return sizeof(zip_stat_t);
    }
    case ZIP_SOURCE_ERROR:
        return zip_error_to_data(&s->error, data, len);
    case ZIP_SOURCE_FREE:
        if (s->fd >= 0) close(s->fd);
        zip_error_fini(&s->error);
        free(s);
        return 0;
    case ZIP_SOURCE_SUPPORTS:
        return zip_source_make_command_bitmap(ZIP_SOURCE_OPEN, ZIP_SOURCE_READ, ZIP_SOURCE_CLOSE,
                                              ZIP_SOURCE_STAT, ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE, -1);
    default:
        zip_error_set(&s->error, ZIP_ER_OPNOTSUPP, 0);
        return -1;
    }
}

static zip_source_t *file_source(zip_t *za, int rootfd, const wentry *e, const char **bad)
{
    fsrc *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->rootfd = rootfd;
    s->name = e->name;
    s->size = e->size;
    s->fd = -1;
    s->bad = bad;
    zip_error_init(&s->error);
    zip_source_t *src = zip_source_function(za, fsrc_cb, s);
    if (!src) {
        zip_error_fini(&s->error);
        free(s);
    }
    return src;
}

/* Adds entry e as index-fixed bytes: deflate at `level`, DOS time 1980-01-01 00:00, Unix 0644, no extra
 * field. */
static int add_to_zip(zip_t *za, int rootfd, const wentry *e, int level, const char **bad, char *err,
                      size_t errsz)
{
    char sb[SHOW_MAX + 4];
    zip_source_t *src =
        e->extra ? zip_source_buffer(za, e->extra->data, e->extra->len, 0) : file_source(za, rootfd, e, bad);
    if (!src)
        return fail(err, errsz, "archive entry '%s' cannot be added: %s", show(e->name, sb, sizeof sb),
                    zip_strerror(za));
    zip_int64_t idx = zip_file_add(za, e->name, src, ZIP_FL_ENC_GUESS);
    if (idx < 0) {
        zip_source_free(src);
        return fail(err, errsz, "archive entry '%s' cannot be added: %s", show(e->name, sb, sizeof sb),
                    zip_strerror(za));
    }
    zip_uint64_t i = (zip_uint64_t)idx;
    if (zip_set_file_compression(za, i, ZIP_CM_DEFLATE, (zip_uint32_t)level) != 0 ||
        zip_file_set_dostime(za, i, 0, DOS_DATE_1980_01_01, 0) != 0 ||
        zip_file_set_external_attributes(za, i, 0, ZIP_OPSYS_UNIX, ENTRY_ATTRS) != 0 ||
        zip_file_extra_field_delete(za, i, ZIP_EXTRA_FIELD_ALL, ZIP_FL_CENTRAL | ZIP_FL_LOCAL) != 0)
        return fail(err, errsz, "archive entry '%s' cannot be set up: %s", show(e->name, sb, sizeof sb),
                    zip_strerror(za));
    return 0;
}


/* ---- parallel compression ----
 * Deflate is the cost of packaging. Entries are compressed on several threads into part archives beside the
 * output, then copied into the output in sorted order without recompressing (zip_source_zip of a whole entry
 * copies its compressed bytes). An entry's compressed bytes do not depend on which part held it, so the output
 * is the same whatever the number of threads. */

#ifndef PARALLEL_MIN_BYTES /* below this the threads cost more than they save */
#define PARALLEL_MIN_BYTES (4u << 20)
#endif
#define MAX_PARTS 8

typedef struct part_job {
    const writer *w;
    int rootfd, level;
    char path[IB_PATH_MAX + 64];
    const unsigned char *owner; /* owner[i]: the part entry i goes to */
    int me;
    const char *bad;
    char err[IB_MSG_MAX];
    int rc, sys;
} part_job;

static void *part_main(void *arg)
{
    part_job *pj = arg;
    int zerr = 0;
    pj->rc = -1;
    zip_t *za = zip_open(pj->path, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
    if (!za) {
        fail(pj->err, sizeof pj->err, "a part of the archive cannot be created (libzip error %d)", zerr);
        return NULL;
    }
    for (size_t i = 0; i < pj->w->n; i++)
        if (pj->owner[i] == pj->me &&
            add_to_zip(za, pj->rootfd, &pj->w->v[i], pj->level, &pj->bad, pj->err, sizeof pj->err) != 0) {
            zip_discard(za);
            return NULL;
        }
    if (zip_close(za) != 0) {
        if (pj->bad)
            fail(pj->err, sizeof pj->err, "content folder file '%s' cannot be archived: %s (was it changed meanwhile?)",
                 pj->bad, zip_strerror(za));
        else
            fail(pj->err, sizeof pj->err, "a part of the archive cannot be written: %s", zip_strerror(za));
        pj->sys = zip_sys_errno(za);
        zip_discard(za);
        return NULL;
    }
    pj->rc = 0;
    return NULL;
}

/* Compresses w's entries on nparts threads and adds them, in order, to za. 0 or -1 with a message. */
static int add_parallel(zip_t *za, writer *w, int rootfd, int level, const char *out_path, int nparts, char *err,
                        size_t errsz)
{
    part_job pj[MAX_PARTS];
    zip_t *parts[MAX_PARTS] = {0};
    pthread_t th[MAX_PARTS];
    unsigned char *owner = malloc(w->n);
    zip_uint64_t *index = malloc(w->n * sizeof *index);
    uint64_t load[MAX_PARTS] = {0};
    int rc = -1, started = 0;
    if (!owner || !index) {
        free(owner);
        free(index);
        return fail(err, errsz, "out of memory");
    }
    /* Largest first to the least loaded part balances the threads; ties go to the lowest part. */
    size_t *order = malloc(w->n * sizeof *order);
    if (!order) {
        free(owner);
        free(index);
        return fail(err, errsz, "out of memory");
    }
    for (size_t i = 0; i < w->n; i++) order[i] = i;
    for (size_t i = 1; i < w->n; i++) /* insertion sort by size, descending: n is bounded by max_entries */
        for (size_t j = i; j > 0 && w->v[order[j]].size > w->v[order[j - 1]].size; j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (size_t k = 0; k < w->n; k++) {
        int best = 0;
        for (int p = 1; p < nparts; p++)
            if (load[p] < load[best]) best = p;
        owner[order[k]] = (unsigned char)best;
        load[best] += w->v[order[k]].size + 1;
    }
    free(order);
    for (int p = 0; p < nparts; p++) {
        pj[p] = (part_job){.w = w, .rootfd = rootfd, .level = level, .owner = owner, .me = p};
        snprintf(pj[p].path, sizeof pj[p].path, "%s.part%d.tmp-%d", out_path, p, (int)getpid());
    }
    for (; started < nparts; started++)
        if (pthread_create(&th[started], NULL, part_main, &pj[started]) != 0) break;
    for (int p = started; p < nparts; p++) part_main(&pj[p]); /* no thread to be had: do it here */
    for (int p = 0; p < started; p++) pthread_join(th[p], NULL);
    for (int p = 0; p < nparts; p++)
        if (pj[p].rc != 0) {
            fail(err, errsz, "%s", pj[p].err);
            w->bad = NULL;
            w->sys = pj[p].sys;
            goto out;
        }
    int zerr = 0;
    for (int p = 0; p < nparts; p++)
        if (!(parts[p] = zip_open(pj[p].path, ZIP_RDONLY, &zerr))) {
            fail(err, errsz, "a part of the archive cannot be read back (libzip error %d)", zerr);
            goto out;
        }
    /* part p holds its entries in the writer's (sorted) order */
    zip_uint64_t next[MAX_PARTS] = {0};
    for (size_t i = 0; i < w->n; i++) index[i] = next[owner[i]]++;
    char sb[SHOW_MAX + 4];
    for (size_t i = 0; i < w->n; i++) {
        zip_source_t *src = zip_source_zip(za, parts[owner[i]], index[i], 0, 0, -1);
        zip_int64_t idx = src ? zip_file_add(za, w->v[i].name, src, ZIP_FL_ENC_GUESS) : -1;
        if (idx < 0) {
            if (src) zip_source_free(src);
            fail(err, errsz, "archive entry '%s' cannot be added: %s", show(w->v[i].name, sb, sizeof sb),
                 zip_strerror(za));
            goto out;
        }
        zip_uint64_t e = (zip_uint64_t)idx;
        if (zip_file_set_dostime(za, e, 0, DOS_DATE_1980_01_01, 0) != 0 ||
            zip_file_set_external_attributes(za, e, 0, ZIP_OPSYS_UNIX, ENTRY_ATTRS) != 0 ||
            zip_file_extra_field_delete(za, e, ZIP_EXTRA_FIELD_ALL, ZIP_FL_CENTRAL | ZIP_FL_LOCAL) != 0) {
            fail(err, errsz, "archive entry '%s' cannot be set up: %s", show(w->v[i].name, sb, sizeof sb),
                 zip_strerror(za));
            goto out;
        }
    }
    /* the output is written from the parts at zip_close: they must stay open until then */
    rc = 0;
out:
    free(owner);
    free(index);
    if (rc != 0)
        for (int p = 0; p < nparts; p++) {
            if (parts[p]) zip_discard(parts[p]);
            unlink(pj[p].path);
        }
    else
        for (int p = 0; p < nparts; p++) w->parts[p] = parts[p], snprintf(w->part_paths[p], sizeof w->part_paths[p], "%s", pj[p].path);
    w->nparts = rc == 0 ? nparts : 0;
    return rc;
}

static void drop_parts(writer *w)
{
    for (int p = 0; p < w->nparts; p++) {
        zip_discard(w->parts[p]);
        unlink(w->part_paths[p]);
    }
    w->nparts = 0;
}

/* libzip renames its temporary file into place but does not fsync; do it so a crash leaves old or new bytes.
 */
static void sync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    char *copy = strdup(path);
    if (!copy) return;
    fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

int ib_zip_write_dir(int src_dirfd, const ib_zip_extra *extras, size_t nextras, const char *out_path,
                     int level, const ib_zip_limits *limits, char *err, size_t errsz)
{
    char sb[SHOW_MAX + 4];
    writer w = {0};
    w.max_total = lim_or_max(limits ? limits->max_total : 0);
    w.max_entries = lim_or_max(limits ? limits->max_entries : 0);
    w.extras = extras;
    w.nextras = nextras;
    w.err = err;
    w.errsz = errsz;
    if (level < 1) level = 1;
    if (level > 9) level = 9;

    int rc = -1, rootfd = -1;
    zip_t *za = NULL;
    for (size_t i = 0; i < nextras; i++) {
        const char *why = ib_zip_name_problem(extras[i].name);
        if (why) {
            fail(err, errsz, "archive entry '%s' %s",
                 show(extras[i].name ? extras[i].name : "", sb, sizeof sb), why);
            goto out;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(extras[i].name, extras[j].name) == 0) {
                fail(err, errsz, "archive entry '%s' is given twice", show(extras[i].name, sb, sizeof sb));
                goto out;
            }
        if (add_entry(&w, (char *)extras[i].name, extras[i].len, &extras[i]) != 0) goto out;
    }
    /* O_PATH keeps the folder reachable for the source callbacks whatever the caller opened it with. */
    rootfd = openat(src_dirfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    int dfd = rootfd < 0 ? -1 : openat(src_dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        fail(err, errsz, "content folder cannot be opened: %s", strerror(errno));
        goto out;
    }
    if (collect(&w, dfd, "") != 0) goto out;
    if (w.n == 0) {
        fail(err, errsz, "content folder has no files to archive");
        goto out;
    }
    qsort(w.v, w.n, sizeof *w.v, cmp_wentry);

    int zerr = 0;
    za = zip_open(out_path, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
    if (!za) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, zerr);
        fail(err, errsz, "archive '%s' cannot be created: %s", out_path, zip_error_strerror(&ze));
        zip_error_fini(&ze);
        goto out;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int nparts = cores > MAX_PARTS ? MAX_PARTS : cores < 1 ? 1 : (int)cores;
    if (nparts > 1 && w.n > 1 && w.total >= PARALLEL_MIN_BYTES) {
        if (add_parallel(za, &w, rootfd, level, out_path, nparts, err, errsz) != 0) goto out;
    } else {
        for (size_t i = 0; i < w.n; i++)
            if (add_to_zip(za, rootfd, &w.v[i], level, &w.bad, err, errsz) != 0) goto out;
    }
    if (zip_close(za) != 0) {
        if (w.bad)
            fail(err, errsz, "content folder file '%s' cannot be archived: %s (was it changed meanwhile?)",
                 show(w.bad, sb, sizeof sb), zip_strerror(za));
        else
            fail(err, errsz, "archive '%s' cannot be written: %s", out_path, zip_strerror(za));
        w.sys = zip_sys_errno(za);
        goto out;
    }
    za = NULL;
    sync_path(out_path);
    rc = 0;
out:
    if (za) zip_discard(za);
    drop_parts(&w);
    if (rootfd >= 0) close(rootfd);
    for (size_t i = 0; i < w.n; i++)
        if (!w.v[i].extra) free(w.v[i].name);
    free(w.v);
    if (rc != 0) errno = w.sys;
    return rc;
}

/* ---- reader ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_dir_name(const char *name)
{
    size_t n = strlen(name);
    return n > 0 && name[n - 1] == '/';
}

/* The name's problem, a directory entry "a/b/" judged as "a/b". */
static const char *entry_problem(const char *name, char *tmp, size_t tmpsz)
{
    if (!is_dir_name(name)) return ib_zip_name_problem(name);
    size_t n = strlen(name) - 1;
    if (n == 0) return "escapes its folder";
    if (n >= tmpsz) return "has a name longer than 4095 bytes";
    memcpy(tmp, name, n);
    tmp[n] = '\0';
    return ib_zip_name_problem(tmp);
}

/* Why zip_fdopen refused the file, in the reader's words. */
static void open_failure(int fd, int zerr, char *err, size_t errsz)
{
    char sb[SHOW_MAX + 4];
    if (zerr == ZIP_ER_NOZIP) {
        /* A zip that lost its end (the central directory) still starts with a local header. */
        unsigned char sig[4];
        if (pread(fd, sig, 4, 0) == 4 && memcmp(sig, "PK\3\4", 4) == 0)
            fail(err, errsz, "archive is truncated or damaged: its central directory is missing");
        else
            fail(err, errsz, "archive is not a zip file");
        return;
    }
    if (zerr == ZIP_ER_EXISTS) {
        /* libzip refuses duplicate names under ZIP_CHECKCONS without saying which: find it. */
        int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0), e2 = 0;
        zip_t *za = dfd < 0 ? NULL : zip_fdopen(dfd, ZIP_RDONLY, &e2);
        if (!za && dfd >= 0) close(dfd);
        zip_int64_t n = za ? zip_get_num_entries(za, 0) : 0;
        for (zip_int64_t i = 0; i < n; i++) {
            const char *nm = zip_get_name(za, (zip_uint64_t)i, ZIP_FL_ENC_RAW);
            if (nm && zip_name_locate(za, nm, ZIP_FL_ENC_RAW) != i) {
                fail(err, errsz, "archive entry '%s' appears twice", show(nm, sb, sizeof sb));
                zip_discard(za);
                return;
            }
        }
        if (za) zip_discard(za);
        fail(err, errsz, "archive has an entry that appears twice");
        return;
    }
    zip_error_t ze;
    zip_error_init_with_code(&ze, zerr);
    if (zerr == ZIP_ER_MEMORY || zerr == ZIP_ER_OPEN || zerr == ZIP_ER_INVAL)
        fail(err, errsz, "archive cannot be opened: %s", zip_error_strerror(&ze));
    else
        fail(err, errsz, "archive is truncated or damaged: %s", zip_error_strerror(&ze));
    zip_error_fini(&ze);
}

/* Reads entry i to its end, at most want+1 bytes, passing each block to sink (when given). Returns the bytes
 * read or -1 with a message; a count other than `want` is reported by the caller. */
static int64_t read_entry(zip_t *za, zip_uint64_t i, const char *name, uint64_t want, unsigned char *buf,
                          int (*sink)(void *, const void *, size_t), void *arg, char *err, size_t errsz)
{
    char sb[SHOW_MAX + 4];
    zip_file_t *zf = zip_fopen_index(za, i, 0);
    if (!zf) {
        fail(err, errsz, "archive entry '%s' cannot be read: %s", show(name, sb, sizeof sb),
             zip_strerror(za));
        return -1;
    }
    uint64_t got = 0;
    for (;;) {
        uint64_t room = want + 1 - got; /* one byte past the declared size reveals a lying size */
        if (room == 0) break;
        zip_int64_t n = zip_fread(zf, buf, room < IO_BLOCK ? room : IO_BLOCK);
        if (n < 0) {
            fail(err, errsz, "archive entry '%s' is damaged: %s", show(name, sb, sizeof sb),
                 zip_file_strerror(zf));
            zip_fclose(zf);
            return -1;
        }
        if (n == 0) break;
        if (sink && got + (uint64_t)n <= want && sink(arg, buf, (size_t)n) != 0) {
            fail(err, errsz, "archive entry '%s' cannot be written: %s", show(name, sb, sizeof sb),
                 strerror(errno));
            zip_fclose(zf);
            return -1;
        }
        got += (uint64_t)n;
    }
    int zc = zip_fclose(zf);
    if (got > want) {
        fail(err, errsz, "archive entry '%s' is larger than its declared size of %llu bytes",
             show(name, sb, sizeof sb), (unsigned long long)want);
        return -1;
    }
    if (got < want) {
        fail(err, errsz, "archive entry '%s' is shorter than its declared size of %llu bytes",
             show(name, sb, sizeof sb), (unsigned long long)want);
        return -1;
    }
    if (zc != 0) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, zc);
        fail(err, errsz, "archive entry '%s' is damaged: %s", show(name, sb, sizeof sb),
             zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return -1;
    }
    return (int64_t)got;
}

static int verify(zip_t *za, const ib_zip_limits *limits, char *err, size_t errsz)
{
    char sb[SHOW_MAX + 4], tmp[IB_PATH_MAX];
    uint64_t max_total = lim_or_max(limits ? limits->max_total : 0);
    uint64_t max_entries = lim_or_max(limits ? limits->max_entries : 0);
    zip_int64_t n = zip_get_num_entries(za, 0);
    if (n < 0) return fail(err, errsz, "archive cannot be read: %s", zip_strerror(za));
    if ((uint64_t)n > max_entries)
        return fail(err, errsz, "archive has %lld entries, more than the limit of %llu", (long long)n,
                    (unsigned long long)max_entries);

    int rc = -1;
    const char **names = calloc((size_t)n + 1, sizeof *names);
    uint64_t *sizes = calloc((size_t)n + 1, sizeof *sizes);
    unsigned char *buf = malloc(IO_BLOCK);
    if (!names || !sizes || !buf) {
        fail(err, errsz, "out of memory");
        goto out;
    }
    uint64_t total = 0;
    for (zip_int64_t i = 0; i < n; i++) {
        const char *nm = zip_get_name(za, (zip_uint64_t)i, ZIP_FL_ENC_RAW);
        if (!nm) {
            fail(err, errsz, "archive entry %lld has no readable name: %s", (long long)i, zip_strerror(za));
            goto out;
        }
        const char *why = entry_problem(nm, tmp, sizeof tmp);
        if (why) {
            fail(err, errsz, "archive entry '%s' %s", show(nm, sb, sizeof sb), why);
            goto out;
        }
        zip_stat_t st;
        if (zip_stat_index(za, (zip_uint64_t)i, ZIP_FL_ENC_RAW, &st) != 0 || !(st.valid & ZIP_STAT_SIZE)) {
            fail(err, errsz, "archive entry '%s' has no size: %s", show(nm, sb, sizeof sb), zip_strerror(za));
            goto out;
        }
        if (is_dir_name(nm) && st.size != 0) {
            fail(err, errsz, "archive entry '%s' is a folder entry with data", show(nm, sb, sizeof sb));
            goto out;
        }
        names[i] = nm;
        sizes[i] = st.size;
        total = st.size > UINT64_MAX - total ? UINT64_MAX : total + st.size;
    }
    /* Sizes are summed before anything is inflated: a bomb is refused unread. */
    if (total > max_total) {
        fail(err, errsz, "archive uncompressed size %llu bytes passes the limit of %llu bytes",
             (unsigned long long)total, (unsigned long long)max_total);
        goto out;
    }
    /* Duplicates, with "a/" and "a" counting as one name (a file and a folder cannot share it). */
    char **sorted = calloc((size_t)n + 1, sizeof *sorted);
    if (!sorted) {
        fail(err, errsz, "out of memory");
        goto out;
    }
    size_t ns = 0;
    for (zip_int64_t i = 0; i < n && ns == (size_t)i; i++) {
        size_t len = strlen(names[i]) - (size_t)is_dir_name(names[i]);
        if ((sorted[ns] = strndup(names[i], len)) != NULL) ns++;
    }
    int dup = ns != (size_t)n;
    if (dup) fail(err, errsz, "out of memory");
    qsort(sorted, ns, sizeof *sorted, cmp_str);
    for (size_t i = 1; !dup && i < ns; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0) {
            fail(err, errsz, "archive entry '%s' appears twice", show(sorted[i], sb, sizeof sb));
            dup = 1;
        }
    for (size_t i = 0; i < ns; i++)
        free(sorted[i]);
    free(sorted);
    if (dup) goto out;

    for (zip_int64_t i = 0; i < n; i++)
        if (read_entry(za, (zip_uint64_t)i, names[i], sizes[i], buf, NULL, NULL, err, errsz) < 0) goto out;
    rc = 0;
out:
    free(names);
    free(sizes);
    free(buf);
    return rc;
}

zip_t *ib_zip_open_verified(int fd, const ib_zip_limits *limits, char *err, size_t errsz)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        fail(err, errsz, "archive cannot be read: %s", strerror(errno));
        return NULL;
    }
    /* libzip treats an empty file as an empty archive. */
    if (!S_ISREG(st.st_mode) || st.st_size == 0) {
        fail(err, errsz, "archive is not a zip file");
        return NULL;
    }
    int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dfd < 0) {
        fail(err, errsz, "archive cannot be read: %s", strerror(errno));
        return NULL;
    }
    int zerr = 0;
    zip_t *za = zip_fdopen(dfd, ZIP_CHECKCONS | ZIP_RDONLY, &zerr);
    if (!za) {
        close(dfd); /* zip_fdopen leaves the fd to us when it fails */
        open_failure(fd, zerr, err, errsz);
        return NULL;
    }
    if (verify(za, limits, err, errsz) != 0) {
        zip_discard(za);
        return NULL;
    }
    return za;
}

char *ib_zip_read_entry(zip_t *za, const char *name, size_t max, size_t *len, char *err, size_t errsz)
{
    char sb[SHOW_MAX + 4];
    zip_int64_t idx = zip_name_locate(za, name, ZIP_FL_ENC_RAW);
    if (idx < 0) {
        fail(err, errsz, "archive has no entry '%s'", show(name, sb, sizeof sb));
        return NULL;
    }
    zip_stat_t st;
    if (zip_stat_index(za, (zip_uint64_t)idx, ZIP_FL_ENC_RAW, &st) != 0 || !(st.valid & ZIP_STAT_SIZE)) {
        fail(err, errsz, "archive entry '%s' has no size: %s", show(name, sb, sizeof sb), zip_strerror(za));
        return NULL;
    }
    if (st.size > max) {
        fail(err, errsz, "archive entry '%s' is larger than %zu bytes", show(name, sb, sizeof sb), max);
        return NULL;
    }
    /* One spare byte for the NUL and one for read_entry's probe past the declared size. */
    char *out = malloc((size_t)st.size + 2);
    zip_file_t *zf = out ? zip_fopen_index(za, (zip_uint64_t)idx, 0) : NULL;
    if (!zf) {
        fail(err, errsz, "archive entry '%s' cannot be read: %s", show(name, sb, sizeof sb),
             out ? zip_strerror(za) : "out of memory");
        free(out);
        return NULL;
    }
    uint64_t got = 0;
    while (got <= st.size) {
        zip_int64_t n = zip_fread(zf, out + got, st.size + 1 - got);
        if (n < 0) {
            fail(err, errsz, "archive entry '%s' is damaged: %s", show(name, sb, sizeof sb),
                 zip_file_strerror(zf));
            got = UINT64_MAX;
            break;
        }
        if (n == 0) break;
        got += (uint64_t)n;
    }
    zip_fclose(zf);
    if (got != st.size) {
        if (got != UINT64_MAX)
            fail(err, errsz, "archive entry '%s' does not match its declared size",
                 show(name, sb, sizeof sb));
        free(out);
        return NULL;
    }
    out[got] = '\0';
    if (len) *len = (size_t)got;
    return out;
}

static int write_sink(void *arg, const void *data, size_t len)
{
    return ib_write_all(*(int *)arg, data, len);
}

/* First pass of an extraction: every name checked, every folder made (once per run of entries in one folder:
 * sorted archives name a folder many times in a row). is_file[i] says which entries are files. */
static int prepare_extract(zip_t *za, zip_int64_t n, int dst_dirfd, unsigned char *is_file, char *err,
                           size_t errsz)
{
    char sb[SHOW_MAX + 4], tmp[IB_PATH_MAX], made[IB_PATH_MAX] = "";
    for (zip_int64_t i = 0; i < n; i++) {
        const char *nm = zip_get_name(za, (zip_uint64_t)i, ZIP_FL_ENC_RAW);
        const char *why = nm ? entry_problem(nm, tmp, sizeof tmp) : "has no readable name";
        if (why) return fail(err, errsz, "archive entry '%s' %s", show(nm ? nm : "", sb, sizeof sb), why);
        /* Folders (a directory entry, or the path of a file) are made below dst only, none followed. */
        size_t dlen = is_dir_name(nm) ? strlen(nm) - 1 : (size_t)(strrchr(nm, '/') ? strrchr(nm, '/') - nm : 0);
        memcpy(tmp, nm, dlen);
        tmp[dlen] = '\0';
        if (dlen && strcmp(tmp, made) != 0) {
            if (ib_mkdirs_at(dst_dirfd, tmp, 0755) != 0)
                return fail(err, errsz, "archive entry '%s': folder '%s' cannot be created: %s",
                            show(nm, sb, sizeof sb), tmp, strerror(errno));
            snprintf(made, sizeof made, "%s", tmp);
        }
        is_file[i] = !is_dir_name(nm);
    }
    return 0;
}

int ib_zip_extract(zip_t *za, int dst_dirfd, char *err, size_t errsz)
{
    char sb[SHOW_MAX + 4];
    zip_int64_t n = zip_get_num_entries(za, 0);
    unsigned char *buf = malloc(IO_BLOCK), *is_file = calloc((size_t)(n > 0 ? n : 1), 1);
    int rc = -1;
    if (!buf || !is_file) {
        fail(err, errsz, "out of memory");
        goto out;
    }
    if (prepare_extract(za, n, dst_dirfd, is_file, err, errsz) < 0) goto out;
    for (zip_int64_t i = 0; i < n; i++) {
        if (!is_file[i]) continue;
        const char *nm = zip_get_name(za, (zip_uint64_t)i, ZIP_FL_ENC_RAW);
        zip_stat_t st;
        if (zip_stat_index(za, (zip_uint64_t)i, ZIP_FL_ENC_RAW, &st) != 0 || !(st.valid & ZIP_STAT_SIZE)) {
            fail(err, errsz, "archive entry '%s' has no size: %s", show(nm, sb, sizeof sb), zip_strerror(za));
            goto out;
        }
        int fd = ib_openat_strict(dst_dirfd, nm, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644);
        if (fd < 0) {
            fail(err, errsz, "archive entry '%s' cannot be created: %s", show(nm, sb, sizeof sb),
                 errno == EEXIST ? "it appears twice" : strerror(errno));
            goto out;
        }
        int ok = 1;
        if (fchmod(fd, 0644) != 0) { /* O_CREAT's mode passed through the umask */
            fail(err, errsz, "archive entry '%s' cannot be written: %s", show(nm, sb, sizeof sb),
                 strerror(errno));
            ok = 0;
        }
        if (ok) ok = read_entry(za, (zip_uint64_t)i, nm, st.size, buf, write_sink, &fd, err, errsz) >= 0;
        if (ok && fsync(fd) != 0) {
            fail(err, errsz, "archive entry '%s' cannot be written: %s", show(nm, sb, sizeof sb),
                 strerror(errno));
            ok = 0;
        }
        if (close(fd) != 0 && ok) {
            fail(err, errsz, "archive entry '%s' cannot be written: %s", show(nm, sb, sizeof sb),
                 strerror(errno));
            ok = 0;
        }
        if (!ok) goto out;
    }
    rc = 0;
out:;
    int e = errno; /* the failed call's: a full disk is told apart from a bad archive by it */
    free(buf);
    free(is_file);
    if (rc != 0) errno = e;
    return rc;
}

/* --- parallel extraction of a trusted archive ---------------------------------------------------------- */

typedef struct px_shared {
    int fd, dst;
    zip_int64_t n;
    const unsigned char *is_file;
    zip_int64_t next; /* next entry to take, under mu */
    int failed, sys; /* sys: the errno of the first failure */
    char *err;
    size_t errsz;
    pthread_mutex_t mu;
} px_shared;

static void *px_worker(void *arg)
{
    px_shared *sh = arg;
    char lerr[512], sb[SHOW_MAX + 4], self[64];
    /* a file description of its own: dup'ed fds share one offset, and libzip seeks */
    snprintf(self, sizeof self, "/proc/self/fd/%d", sh->fd);
    int zerr = 0, dfd = open(self, O_RDONLY | O_CLOEXEC);
    zip_t *za = dfd >= 0 ? zip_fdopen(dfd, ZIP_RDONLY, &zerr) : NULL;
    unsigned char *buf = malloc(IO_BLOCK);
    if (!za || !buf) {
        if (!za && dfd >= 0) close(dfd);
        pthread_mutex_lock(&sh->mu);
        if (!sh->failed++) fail(sh->err, sh->errsz, "archive cannot be opened for extraction");
        pthread_mutex_unlock(&sh->mu);
        free(buf);
        if (za) zip_discard(za);
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&sh->mu);
        while (sh->next < sh->n && !sh->is_file[sh->next]) sh->next++;
        zip_int64_t i = sh->failed ? sh->n : sh->next++;
        pthread_mutex_unlock(&sh->mu);
        if (i >= sh->n) break;
        const char *nm = zip_get_name(za, (zip_uint64_t)i, ZIP_FL_ENC_RAW);
        zip_stat_t st;
        int ok = nm && zip_stat_index(za, (zip_uint64_t)i, ZIP_FL_ENC_RAW, &st) == 0 && (st.valid & ZIP_STAT_SIZE);
        int fd = ok ? ib_openat_strict(sh->dst, nm, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644) : -1;
        if (fd < 0) {
            fail(lerr, sizeof lerr, "archive entry '%s' cannot be created: %s", show(nm ? nm : "", sb, sizeof sb),
                 errno == EEXIST ? "it appears twice" : strerror(errno));
            ok = 0;
        } else {
            ok = fchmod(fd, 0644) == 0 && read_entry(za, (zip_uint64_t)i, nm, st.size, buf, write_sink, &fd, lerr,
                                                     sizeof lerr) >= 0;
            if (close(fd) != 0 && ok) {
                fail(lerr, sizeof lerr, "archive entry '%s' cannot be written: %s", show(nm, sb, sizeof sb),
                     strerror(errno));
                ok = 0;
            }
        }
        if (!ok) {
            int e = errno;
            pthread_mutex_lock(&sh->mu);
            if (!sh->failed++) {
                snprintf(sh->err, sh->errsz, "%s", lerr);
                sh->sys = e;
            }
            pthread_mutex_unlock(&sh->mu);
            break;
        }
    }
    free(buf);
    zip_discard(za);
    return NULL;
}

int ib_zip_extract_parallel(int fd, int dst_dirfd, int nthreads, char *err, size_t errsz)
{
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    int zerr = 0, dfd = open(self, O_RDONLY | O_CLOEXEC);
    zip_t *za = dfd >= 0 ? zip_fdopen(dfd, ZIP_RDONLY, &zerr) : NULL;
    if (!za) {
        if (dfd >= 0) close(dfd);
        zip_error_t ze;
        zip_error_init_with_code(&ze, zerr);
        fail(err, errsz, "archive cannot be opened: %s", zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return -1;
    }
    zip_int64_t n = zip_get_num_entries(za, 0);
    unsigned char *is_file = calloc((size_t)(n > 0 ? n : 1), 1);
    int rc = -1, sys = 0;
    if (!is_file) {
        fail(err, errsz, "out of memory");
        goto out;
    }
    /* Names are checked and every folder made first, by one thread; then the files go to several. */
    if (prepare_extract(za, n, dst_dirfd, is_file, err, errsz) < 0) {
        sys = errno;
        goto out;
    }
    px_shared sh = {.fd = fd, .dst = dst_dirfd, .n = n, .is_file = is_file, .err = err, .errsz = errsz};
    pthread_mutex_init(&sh.mu, NULL);
    if (nthreads < 1) nthreads = 1;
    if (nthreads > 16) nthreads = 16;
    pthread_t th[16];
    int started = 0;
    for (; started < nthreads; started++)
        if (pthread_create(&th[started], NULL, px_worker, &sh) != 0) break;
    if (started == 0) px_worker(&sh);
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    pthread_mutex_destroy(&sh.mu);
    rc = sh.failed ? -1 : 0;
    sys = sh.sys;
out:
    free(is_file);
    zip_discard(za);
    if (rc != 0) errno = sys;
    return rc;
}
