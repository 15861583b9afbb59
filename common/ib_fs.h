/* ib_fs: file helpers that leave nothing half-written: every write that another reader may see is whole before
 * it gets its name (an unnamed O_TMPFILE file linked in, or a temporary name renamed into place), and fsync'ed
 * where asked. All functions work relative to a
 * directory fd so that callers stay inside folders they resolved with ib_path. */
#ifndef IB_FS_H
#define IB_FS_H

#include <stddef.h>
#include <sys/types.h>

/* Writes len bytes to dirfd/name atomically (unnamed or temporary file, fsync, link or rename, fsync of the
 * folder), mode 0644. name is one path
 * segment (EINVAL otherwise). 0 or -1/errno. */
int ib_write_atomic(int dirfd, const char *name, const void *data, size_t len);

/* For writers that stream: creates a temporary file in dirfd ("." + name + ".tmp-XXXXXX"), returns its fd and
 * writes its name into tmpname. ib_commit_tmp sets mode 0644, fsyncs, closes fd and renames it to name (and
 * unlinks the temporary when any step fails); ib_discard_tmp closes and unlinks it. The temporary is mode 0600
 * until committed. tmpname needs room for name + 16 bytes (at most 200 bytes of name are used). */
int ib_open_tmp(int dirfd, const char *name, char *tmpname, size_t tmpsz);
/* Like ib_open_tmp, for a writer nobody needs to see in progress: an unnamed (O_TMPFILE) file where the file
 * system has them (tmpname is then ""), named by the commit without a temporary name ever existing (cheaper
 * when many small files are written). Takes the same commit, replace and discard calls. */
int ib_open_new(int dirfd, const char *name, char *tmpname, size_t tmpsz);
int ib_commit_tmp(int dirfd, int fd, const char *tmpname, const char *name);
void ib_discard_tmp(int dirfd, int fd, const char *tmpname);

/* Like ib_write_atomic and ib_commit_tmp, but without fsync: readers still see the old or the new bytes,
 * never a mix, and the data reaches the disk with the next sync. For files a crash may lose and a later sync
 * (syncfs before a job is declared done) makes durable. */
int ib_write_replace(int dirfd, const char *name, const void *data, size_t len);
int ib_replace_tmp(int dirfd, int fd, const char *tmpname, const char *name);

/* Reads a whole file below dirfd (confined with ib_openat_beneath) into a NUL-terminated malloc'd buffer of at
 * most max bytes. Returns NULL with errno (EFBIG when larger than max). */
char *ib_read_file_at(int dirfd, const char *rel, size_t max, size_t *len);

/* mkdir -p of rel below dirfd, confined. 0 or -1/errno. */
int ib_mkdirs_at(int dirfd, const char *rel, mode_t mode);

/* Removes dirfd/name: a file, or a folder recursively (never following symlinks; a symlink itself is removed).
 * name should be one path segment: a symlink in an earlier segment would be followed. 0 (also when missing) or
 * -1. */
int ib_remove_tree_at(int dirfd, const char *name);

/* write(2) until all of data is written (EINTR retried). 0 or -1/errno. */
int ib_write_all(int fd, const void *data, size_t len);
/* fsync of a folder, also through an O_PATH fd. 0 or -1/errno. */
int ib_fsync_dir(int dirfd);

/* Plain-path conveniences for the data root (trusted, server-owned paths). */
int ib_mkdirs(const char *path, mode_t mode);
char *ib_path_join(const char *a, const char *b); /* malloc'd "a/b" */

#endif
