/* jobs: job records on the shared data root (see jobs.h for the layout and why). */
#include "jobs.h"

#include "ib_fs.h"
#include "ib_path.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

static int jobs_fd = -1, active_fd = -1, shared_fd = -1, users_fd = -1;

double job_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct timespec job_deadline(long long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long ns = ts.tv_nsec + (ms % 1000) * 1000000LL;
    ts.tv_sec += (time_t)(ms / 1000 + ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    return ts;
}

static int open_sub(int parent, const char *name)
{
    if (mkdirat(parent, name, 0755) < 0 && errno != EEXIST) return -1;
    return openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

int jobs_init(const char *jobs_dir)
{
    if (ib_mkdirs(jobs_dir, 0755) < 0) return -1;
    jobs_fd = open(jobs_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (jobs_fd < 0) return -1;
    active_fd = open_sub(jobs_fd, "active");
    shared_fd = open_sub(jobs_fd, "shared");
    users_fd = open_sub(jobs_fd, "users");
    return active_fd < 0 || shared_fd < 0 || users_fd < 0 ? -1 : 0;
}

int jobs_dir_fd(void)
{
    return jobs_fd;
}

void jobs_fini(void)
{
    if (jobs_fd >= 0) close(jobs_fd);
    if (active_fd >= 0) close(active_fd);
    if (shared_fd >= 0) close(shared_fd);
    if (users_fd >= 0) close(users_fd);
    jobs_fd = active_fd = shared_fd = users_fd = -1;
}

void job_id_new(char out[IB_JOB_ID_LEN + 1])
{
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, out);
}

int job_save(const json_t *rec)
{
    const char *id = json_string_value(json_object_get(rec, "job_id"));
    if (!ib_job_id_valid(id)) return errno = EINVAL, -1;
    char *text = json_dumps(rec, JSON_COMPACT); /* fields in the order they were set: no sort per save */
    if (!text) return errno = ENOMEM, -1;
    char name[64];
    snprintf(name, sizeof name, "%s.json", id);
    /* Progress saves need not survive a machine crash (the job is redone from its saved files); the first save
     * and a final one must. A run_sync job is never resumed and its caller has the results: no fsync at all. */
    ib_job_status st = IB_JOB_QUEUED;
    ib_job_status_parse(json_string_value(json_object_get(rec, "status")), &st);
    int durable = !json_is_true(json_object_get(rec, "sync")) &&
                  (ib_job_status_final(st) || json_integer_value(json_object_get(rec, "index")) == 0);
    int rc = durable ? ib_write_atomic(jobs_fd, name, text, strlen(text)) : ib_write_replace(jobs_fd, name, text, strlen(text));
    free(text);
    return rc;
}

json_t *job_load(const char *id)
{
    return ib_job_load(jobs_fd, id);
}

json_t *job_load_for(const char *id, const ib_caller *who, ib_reply *rep)
{
    return ib_job_load_for(jobs_fd, id, who, rep);
}

int job_lock(const char *id)
{
    char name[64];
    snprintf(name, sizeof name, "%s.lock", id);
    int fd = openat(jobs_fd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

void job_unlock(int fd)
{
    if (fd >= 0) close(fd); /* closing drops the flock */
}

/* users/<user>/<created>.<id>: <created> is the job's creation time in microseconds, 16 hex digits, so the
 * names sort by age and jobs/list reads only the records it returns. Only the name is read. For a final record
 * the entry is a hard link to the record (a name with no inode of its own to allocate), else an empty file (a
 * link would keep the first version of a record that is replaced later). */
#define USER_ENTRY_MAX (16 + 1 + IB_JOB_ID_LEN + 1)

static void user_entry_name(const json_t *rec, char out[USER_ENTRY_MAX])
{
    double created = json_number_value(json_object_get(rec, "created"));
    unsigned long long us = created > 0 ? (unsigned long long)(created * 1e6) : 0;
    snprintf(out, USER_ENTRY_MAX, "%016llx.%s", us, json_string_value(json_object_get(rec, "job_id")));
}

static int index_user(const json_t *rec, int link_record)
{
    const char *id = json_string_value(json_object_get(rec, "job_id"));
    const char *user = json_string_value(json_object_get(rec, "user"));
    if (!ib_job_id_valid(id) || !ib_user_name_ok(user)) return 0;
    int ufd = open_sub(users_fd, user);
    if (ufd < 0) return -1;
    char name[USER_ENTRY_MAX], target[64];
    user_entry_name(rec, name);
    snprintf(target, sizeof target, "%s.json", id);
    /* errno is looked at only right after the call that failed: open_sub's mkdirat leaves EEXIST behind for
     * every user's second job, which once made this skip the entry of each job after a user's first. */
    int rc = -1, err = 0;
    if (link_record) {
        rc = linkat(jobs_fd, target, ufd, name, 0);
        err = rc < 0 ? errno : 0;
        if (err == EEXIST) rc = 0; /* already indexed (the empty entry of an unfinished job is kept) */
    }
    if (rc < 0) {
        int fd = openat(ufd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        err = fd < 0 ? errno : 0;
        if (fd >= 0) rc = 0, close(fd);
    }
    close(ufd);
    if (rc < 0) errno = err;
    return rc < 0 ? -1 : 0;
}

int job_index_user(const json_t *rec)
{
    return index_user(rec, 1);
}

int job_mark_active(const json_t *rec)
{
    const char *id = json_string_value(json_object_get(rec, "job_id"));
    if (!ib_job_id_valid(id)) return errno = EINVAL, -1;
    int fd = openat(active_fd, id, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    close(fd);
    return index_user(rec, 0);
}

void job_mark_inactive(const char *id)
{
    unlinkat(active_fd, id, 0);
    unlinkat(shared_fd, id, 0);
}

void job_mark_shared(const char *id)
{
    int fd = openat(shared_fd, id, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) close(fd);
}

void job_unmark_shared(const char *id)
{
    unlinkat(shared_fd, id, 0);
}

/* The job ids named in an index folder (a new list of strings). */
static json_t *ids_in(int index_fd)
{
    json_t *ids = json_array();
    int fd = dup(index_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0) close(fd);
        return ids;
    }
    rewinddir(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (ib_job_id_valid(e->d_name)) json_array_append_new(ids, json_string(e->d_name));
    closedir(d);
    return ids;
}

json_t *jobs_active(void)
{
    return ids_in(active_fd);
}

json_t *jobs_shared(void)
{
    return ids_in(shared_fd);
}

int job_is_shared(const char *id)
{
    return faccessat(shared_fd, id, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

typedef struct user_entry {
    char name[USER_ENTRY_MAX]; /* <created>.<id>: 16 hex digits of the creation time, '.', the job id */
} user_entry;

/* Newest first; two jobs created in the same microsecond are ordered by id, so every page boundary is exact. */
static int by_name_desc(const void *a, const void *b)
{
    return strcmp(((const user_entry *)b)->name, ((const user_entry *)a)->name);
}

int job_list_cursor_ok(const char *cursor)
{
    if (!cursor || strlen(cursor) != USER_ENTRY_MAX - 1 || cursor[16] != '.') return 0;
    for (int i = 0; i < 16; i++)
        if (!strchr("0123456789abcdef", cursor[i])) return 0;
    return ib_job_id_valid(cursor + 17);
}

json_t *jobs_of_user(const char *user, size_t limit, const char *after, char next[JOB_CURSOR_MAX])
{
    json_t *out = json_array();
    next[0] = '\0';
    if (!ib_user_name_ok(user)) return out;
    int ufd = openat(users_fd, user, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = ufd >= 0 ? fdopendir(ufd) : NULL;
    if (!d) {
        if (ufd >= 0) close(ufd);
        return out;
    }
    size_t n = 0, cap = 256;
    user_entry *all = malloc(cap * sizeof *all);
    struct dirent *e;
    while (all && (e = readdir(d))) {
        const char *name = e->d_name, *dot = strchr(name, '.');
        user_entry ent;
        if (dot && dot - name == 16 && ib_job_id_valid(dot + 1)) { /* so strlen(name) == USER_ENTRY_MAX - 1 */
            memcpy(ent.name, name, sizeof ent.name);
        } else if (ib_job_id_valid(name)) { /* an entry of an older version: the bare id; its record says when */
            json_t *rec = job_load(name);
            double created = json_number_value(json_object_get(rec, "created"));
            json_decref(rec);
            snprintf(ent.name, sizeof ent.name, "%016llx.%.36s", /* the id's length, as just checked */
                     created > 0 ? (unsigned long long)(created * 1e6) : 0ull, name);
        } else {
            continue;
        }
        /* a page after `after` holds only older entries: newer ones (also those created since) are not kept */
        if (after && strcmp(ent.name, after) >= 0) continue;
        if (n == cap) {
            user_entry *bigger = realloc(all, 2 * cap * sizeof *all);
            if (!bigger) break;
            all = bigger;
            cap *= 2;
        }
        all[n++] = ent;
    }
    closedir(d);
    if (!all) return out;
    qsort(all, n, sizeof *all, by_name_desc);
    size_t i = 0;
    for (; i < n && json_array_size(out) < limit; i++) {
        json_t *rec = job_load(all[i].name + 17);
        if (rec) json_array_append_new(out, rec); /* else removed meanwhile (retention): skipped */
    }
    /* The cursor is the last entry looked at, so the next page starts right after it whatever was skipped. */
    if (i < n && i > 0) snprintf(next, JOB_CURSOR_MAX, "%s", all[i - 1].name);
    free(all);
    return out;
}

static int files_dir(const char *id, int create)
{
    char name[64];
    snprintf(name, sizeof name, "%s.d", id);
    /* Opened first: the folder exists for every claim of a job but its first. */
    int fd = openat(jobs_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0 || !create || errno != ENOENT) return fd;
    if (mkdirat(jobs_fd, name, 0755) < 0 && errno != EEXIST) return -1;
    return openat(jobs_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* Writes <id>.d/<name> (durable: fsync'ed, else only renamed into place). */
static int save_in_files_dir(const char *id, const char *name, const json_t *doc, int durable)
{
    int dfd = files_dir(id, 1);
    if (dfd < 0) return -1;
    char *text = json_dumps(doc, JSON_COMPACT);
    int rc = !text ? -1
             : durable ? ib_write_atomic(dfd, name, text, strlen(text))
                       : ib_write_replace(dfd, name, text, strlen(text));
    free(text);
    close(dfd);
    return rc;
}

int job_file_save(const char *id, size_t index, const json_t *file_result)
{
    char name[32];
    snprintf(name, sizeof name, "%zu.json", index);
    /* a runner that dies leaves this in the page cache for the runner that resumes; the job's end syncs it */
    return save_in_files_dir(id, name, file_result, 0);
}

json_t *job_files_load(const char *id, size_t total)
{
    json_t *out = json_array();
    int dfd = files_dir(id, 0);
    for (size_t i = 0; i < total; i++) {
        char name[32];
        snprintf(name, sizeof name, "%zu.json", i);
        json_t *r = dfd >= 0 ? ib_job_json_at(dfd, name) : NULL;
        json_array_append_new(out, r ? r : json_null());
    }
    if (dfd >= 0) close(dfd);
    return out;
}

int job_result_index(const char *name, size_t *index)
{
    size_t v = 0, k = 0;
    for (; name[k] >= '0' && name[k] <= '9'; k++) {
        if (v > (SIZE_MAX - 9) / 10) return 0;
        v = v * 10 + (size_t)(name[k] - '0');
    }
    if (k == 0 || strcmp(name + k, ".json") != 0) return 0;
    *index = v;
    return 1;
}

unsigned char *job_files_done(const char *id, size_t total)
{
    unsigned char *done = calloc(total ? total : 1, 1);
    int dfd = done ? files_dir(id, 0) : -1;
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0) close(dfd);
        return done;
    }
    struct dirent *e;
    size_t index;
    while ((e = readdir(d)))
        if (job_result_index(e->d_name, &index) && index < total) done[index] = 1;
    closedir(d);
    return done;
}

int job_doc_save(const char *id, const char *what, const json_t *doc)
{
    char name[64];
    snprintf(name, sizeof name, "%s.json", what);
    return save_in_files_dir(id, name, doc, 1);
}

/* <id>.d/<name>, or NULL. */
static json_t *load_in_files_dir(const char *id, const char *name)
{
    int dfd = files_dir(id, 0);
    if (dfd < 0) return NULL;
    json_t *j = ib_job_json_at(dfd, name);
    close(dfd);
    return j;
}

json_t *job_doc_load(const char *id, const char *what)
{
    char name[64];
    snprintf(name, sizeof name, "%s.json", what);
    return load_in_files_dir(id, name);
}

int job_cancel_request(const char *id)
{
    char name[64];
    snprintf(name, sizeof name, "%s.cancel", id);
    return ib_write_atomic(jobs_fd, name, "cancel\n", 7);
}

int job_cancel_requested(const char *id)
{
    char name[64];
    snprintf(name, sizeof name, "%s.cancel", id);
    return faccessat(jobs_fd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

void job_markers_remove(const char *id)
{
    char name[64];
    snprintf(name, sizeof name, "%s.cancel", id);
    unlinkat(jobs_fd, name, 0);
    snprintf(name, sizeof name, "%s.lock", id);
    unlinkat(jobs_fd, name, 0);
    int dfd = files_dir(id, 0);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0) close(dfd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 6 && !strcmp(e->d_name + n - 6, ".claim")) unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

void job_discard(const char *id)
{
    char what[64];
    snprintf(what, sizeof what, "%s.json", id);
    unlinkat(jobs_fd, what, 0);
    snprintf(what, sizeof what, "%s.d", id);
    ib_remove_tree_at(jobs_fd, what);
    job_mark_inactive(id);
    job_markers_remove(id);
}

int job_claim(const char *id, size_t index)
{
    int dfd = files_dir(id, 1);
    if (dfd < 0) return -1;
    char name[32];
    /* Done already (its claim became its result): no claim to make and remove again. */
    snprintf(name, sizeof name, "%zu.json", index);
    if (faccessat(dfd, name, F_OK, 0) == 0) {
        close(dfd);
        errno = EEXIST;
        return -1;
    }
    snprintf(name, sizeof name, "%zu.claim", index);
    int fd = openat(dfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    int e = errno;
    if (fd >= 0) {
        flock(fd, LOCK_EX); /* just created by us: nobody else can hold it */
        /* Its claimant may have saved the result (renamed its claim) since the look above: done, then. */
        snprintf(name, sizeof name, "%zu.json", index);
        if (faccessat(dfd, name, F_OK, 0) == 0) {
            snprintf(name, sizeof name, "%zu.claim", index);
            unlinkat(dfd, name, 0);
            close(fd);
            fd = -1;
            e = EEXIST;
        }
    }
    close(dfd);
    if (fd < 0) {
        errno = e;
        return -1;
    }
    return fd;
}

int job_file_save_claimed(const char *id, size_t index, const json_t *file_result, int claim_fd)
{
    char claim[32], name[32];
    snprintf(claim, sizeof claim, "%zu.claim", index);
    snprintf(name, sizeof name, "%zu.json", index);
    int dfd = files_dir(id, 0);
    char *text = json_dumps(file_result, JSON_COMPACT);
    /* Not fsync'ed, as job_file_save: the job's end syncs it. */
    int rc = dfd >= 0 && text && ib_write_all(claim_fd, text, strlen(text)) == 0 &&
                     renameat(dfd, claim, dfd, name) == 0
                 ? 0
                 : -1;
    int e = errno;
    free(text);
    if (dfd >= 0) close(dfd);
    close(claim_fd);
    errno = e;
    return rc;
}

int job_claim_alive(const char *id, size_t index)
{
    int dfd = files_dir(id, 0);
    if (dfd < 0) return 0;
    char name[32];
    snprintf(name, sizeof name, "%zu.claim", index);
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    int alive = 1;
    struct stat st;
    if (fd < 0) {
        alive = 0; /* no claim at all */
    } else if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &st) == 0 && job_now() - (double)st.st_mtime > 2.0) {
        /* Unlocked and not brand new (a claimant locks right after creating it): its claimant is gone. */
        unlinkat(dfd, name, 0);
        alive = 0;
    }
    if (fd >= 0) close(fd);
    close(dfd);
    return alive;
}

json_t *job_file_load(const char *id, size_t index)
{
    char name[32];
    snprintf(name, sizeof name, "%zu.json", index);
    return load_in_files_dir(id, name);
}

/* --- retention ----------------------------------------------------------------------------------------- */

/* One user's index: removes the ended jobs created before `before_us`. Every name is looked at (readdir is in no
 * order); only the records of old enough entries are read. */
static size_t expire_user(int ufd, unsigned long long before_us, size_t max, int (*take)(const json_t *))
{
    int fd = dup(ufd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0) close(fd);
        return 0;
    }
    size_t removed = 0;
    struct dirent *e;
    while (removed < max && (e = readdir(d))) {
        const char *name = e->d_name, *dot = strchr(name, '.');
        if (!dot || dot - name != 16 || !ib_job_id_valid(dot + 1)) continue; /* "." and "..", and older entries */
        char key[17];
        memcpy(key, name, 16);
        key[16] = '\0';
        if (strtoull(key, NULL, 16) >= before_us) continue;
        const char *id = dot + 1;
        json_t *rec = job_load(id);
        ib_job_status st = IB_JOB_QUEUED;
        if (rec && (ib_job_status_parse(json_string_value(json_object_get(rec, "status")), &st) < 0 ||
                    !ib_job_status_final(st))) {
            json_decref(rec); /* still running (or unreadable): never removed */
            continue;
        }
        if (rec && take && !take(rec)) {
            json_decref(rec); /* the caller keeps it for now */
            continue;
        }
        char what[64];
        snprintf(what, sizeof what, "%s.json", id);
        unlinkat(jobs_fd, what, 0); /* first: from here on the job is unknown (404), whatever is left */
        snprintf(what, sizeof what, "%s.d", id);
        ib_remove_tree_at(jobs_fd, what);
        job_markers_remove(id);
        unlinkat(dirfd(d), name, 0);
        json_decref(rec);
        removed++;
    }
    closedir(d);
    return removed;
}

size_t jobs_expire(double before, size_t max, int (*take)(const json_t *rec))
{
    /* One janitor at a time over the shared data root, whichever runner it is in. */
    int lock = openat(jobs_fd, "janitor.lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (lock < 0) return 0;
    if (flock(lock, LOCK_EX | LOCK_NB) < 0) {
        close(lock);
        return 0;
    }
    unsigned long long before_us = before > 0 ? (unsigned long long)(before * 1e6) : 0;
    size_t removed = 0;
    int fd = dup(users_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d) rewinddir(d); /* a dup shares the offset the last pass left at the end */
    struct dirent *e;
    while (d && removed < max && (e = readdir(d))) {
        if (!ib_user_name_ok(e->d_name)) continue;
        int ufd = openat(users_fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (ufd < 0) continue;
        removed += expire_user(ufd, before_us, max - removed, take);
        close(ufd);
    }
    if (d)
        closedir(d);
    else if (fd >= 0)
        close(fd);
    close(lock);
    return removed;
}
