/* ib_zip: the .ibsolution archive. A reproducible writer (file entries only, sorted by name, fixed DOS time
 * and attributes, so one content folder always gives the same bytes) and a verifying reader that refuses
 * entries escaping their folder, duplicates, and archives whose uncompressed size passes a limit. libzip accepts
 * names like "../x" and "/abs": every name is checked here. */
#ifndef IB_ZIP_H
#define IB_ZIP_H

#include <stddef.h>
#include <stdint.h>
#include <zip.h>

typedef struct ib_zip_extra {
    const char *name; /* entry name, replaces a file of the same name found in the folder */
    const void *data; /* borrowed until ib_zip_write_dir returns */
    size_t len;
} ib_zip_extra;

typedef struct ib_zip_limits {
    uint64_t max_total;   /* bytes, uncompressed, all entries together; 0: no limit */
    uint64_t max_entries; /* entries; 0: no limit */
} ib_zip_limits;

/* Archives every regular file below src_dirfd (recursively; entry names relative with '/') plus `extras` into a
 * new zip at out_path (written by libzip to a temporary name and renamed into place). Files whose name ends in
 * ".ibsolution" and hidden temporary files (".*.tmp-*") are skipped. A symlink or special file in the folder is an
 * error naming it. `level` is the deflate level (1-9). Returns 0, or -1 with a message in err and errno the
 * system error of a failed write (ENOSPC when the disk is full; 0 for every other failure). */
int ib_zip_write_dir(int src_dirfd, const ib_zip_extra *extras, size_t nextras, const char *out_path, int level,
                     const ib_zip_limits *limits, char *err, size_t errsz);

/* An entry name is safe when it is non-empty, relative, uses '/', has no empty, "." or ".." segment, no
 * backslash and no NUL or control character. */
int ib_zip_name_ok(const char *name);
/* NULL when the name is safe, else why not, worded to follow "archive entry 'NAME' ": "escapes its folder",
 * "has a backslash in its name", "has an empty path segment", ... */
const char *ib_zip_name_problem(const char *name);

/* Opens the archive in fd (dup'ed; the caller keeps fd) and verifies it whole: zip consistency, every entry
 * name safe (directory entries "a/" are allowed, but nothing else ending in '/'), no duplicates, at most
 * max_entries, declared total under max_total, and every entry read to its end so CRC errors and lying sizes
 * are caught. Returns the open archive (close with zip_discard), or NULL with a message naming the entry. */
zip_t *ib_zip_open_verified(int fd, const ib_zip_limits *limits, char *err, size_t errsz);

/* Reads entry `name` of a verified archive into a NUL-terminated malloc'd buffer of at most max bytes.
 * NULL with a message when missing or larger. */
char *ib_zip_read_entry(zip_t *za, const char *name, size_t max, size_t *len, char *err, size_t errsz);

/* Extracts every entry of a verified archive below the folder dst_dirfd (which should be new and empty),
 * creating subfolders, files mode 0644, each opened confined below dst_dirfd. 0 or -1 with a message; on failure
 * the folder holds a partial extraction, which the caller removes. On failure errno is that of the failed call
 * (ENOSPC when the disk is full). */
int ib_zip_extract(zip_t *za, int dst_dirfd, char *err, size_t errsz);

/* Extracts every entry of the archive in fd (the caller keeps fd) below dst_dirfd with `nthreads` threads, each
 * with its own libzip handle. For archives that passed ib_zip_open_verified before and are known by digest (an
 * install of a published version): names are checked again and CRCs and sizes as the entries are read, but
 * nothing is read twice, and nothing is fsync'ed: the caller makes the folder durable once (syncfs) before
 * renaming it into place. 0 or -1 with a message; the folder then holds partial output, and errno is that of the
 * first failed call (ENOSPC when the disk is full). */
int ib_zip_extract_parallel(int fd, int dst_dirfd, int nthreads, char *err, size_t errsz);

#endif
