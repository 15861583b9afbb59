/* market: the marketplace daemon's internals. store.c owns the folders under the data root (marketplace/ with
 * the published versions, installed/ with the unpacked ones), their locks, temporaries and metadata; ops.c
 * answers the marketplace.* operations on top of it. Nothing here is used outside marketplace/. */
#ifndef MARKET_H
#define MARKET_H

#include "ib_daemon.h"

#include <jansson.h>
#include <stddef.h>

/* Settings (the daemon's own config table, in main.c). */
extern long long mk_max_archive, mk_max_entries;

/* Folder fds opened by mk_store_open: the drive root (O_PATH), marketplace/ and installed/ (O_RDONLY). */
extern int mk_drive_fd, mk_market_fd, mk_inst_fd;

int mk_store_open(char *err, size_t errsz);
void mk_store_close(void);

/* Opens base/name as a folder (O_RDONLY|O_DIRECTORY, never through a symlink), creating it when `create`.
 * -1 with errno (ENOENT when missing). */
int mk_open_dir(int basefd, const char *name, int create);

/* Takes the per-name lock marketplace/<name>/.lock (flock; exclusive for writers of the published versions,
 * shared for installs). Returns the lock's fd (mk_unlock releases it) or -1 with errno. */
int mk_lock(int namefd, int exclusive);
void mk_unlock(int lockfd);

/* The versions present in the folder fd (sub-folders whose name is a semantic version; temporaries, which
 * start with '.', are skipped), sorted by semver precedence. *out is malloc'd (mk_free_list); a missing
 * folder (fd < 0) gives none. 0 or -1 (out of memory / unreadable). */
int mk_versions(int dirfd, char ***out, size_t *n);
void mk_free_list(char **v, size_t n);
/* What "latest" means: the highest release, or the highest pre-release when there is no release. v sorted. */
const char *mk_latest(char *const *v, size_t n);

/* meta.json of a version folder, or NULL with errno. */
json_t *mk_read_meta(int verfd);

/* Creates a fresh temporary folder ".<kind>-<tag>-XXXXXXXX" in dirfd; its name goes to out. 0 or -1/errno. */
int mk_mktemp_dir(int dirfd, const char *kind, const char *tag, char *out, size_t outsz);
/* renameat2 RENAME_NOREPLACE, falling back to renameat where the file system lacks it. */
int mk_rename_noreplace(int olddirfd, const char *oldname, int newdirfd, const char *newname);
/* Takes dirfd/name out of sight by renaming it to a temporary name, then removes it: a reader sees it whole
 * or not at all. 0, or -1 with errno (ENOENT when it was not there). */
int mk_retire(int dirfd, const char *name);

/* Removes temporaries left by a crash: only those older than an hour, as a second daemon sharing the data
 * root may be working on younger ones. */
void mk_sweep(void);

/* The operations (ops.c). */
ib_code mk_publish(void *state, const ib_request *req, ib_reply *rep);
ib_code mk_install(void *state, const ib_request *req, ib_reply *rep);
ib_code mk_uninstall(void *state, const ib_request *req, ib_reply *rep);
ib_code mk_unpublish(void *state, const ib_request *req, ib_reply *rep);
ib_code mk_list(void *state, const ib_request *req, ib_reply *rep);
ib_code mk_info(void *state, const ib_request *req, ib_reply *rep);

#endif
