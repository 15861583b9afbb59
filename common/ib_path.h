/* ib_path: drive paths. Every path a user names ("/jay.doe/my_repo/fs/Instabase Drive/in") resolves here and
 * nowhere else. A path's first segment is its owning user; a user may touch only their own, an admin any.
 * Resolution is confined by the kernel (openat2 RESOLVE_BENEATH) below the owner's folder, so neither `..`
 * nor a symlink can leave it, and neither can a symlink into another user's folder. */
#ifndef IB_PATH_H
#define IB_PATH_H

#include "ib_err.h"

#include <stddef.h>
#include <sys/types.h>

#define IB_PATH_MAX 4096

/* A parsed drive path: `rel` is "user/a/b" (no leading or trailing '/', no empty, "." or ".." segment). */
typedef struct ib_dpath {
    char rel[IB_PATH_MAX];
    char user[256]; /* the first segment */
} ib_dpath;

/* User names: 1-64 of [A-Za-z0-9._-], not starting with '.' or '-'. */
int ib_user_name_ok(const char *name);

/* Parses and checks a drive path named by request field `field` for `who`. A leading '/' is optional; a
 * trailing '/' is ignored. Errors (return != IB_OK, message in rep naming the field and the path):
 * empty path, NUL byte, empty segment ("a//b"), "." or ".." segment, bad user name -> IB_BAD_REQUEST;
 * a first segment other than the caller's user (caller not admin) -> IB_FORBIDDEN. */
ib_code ib_dpath_parse(const char *path, const ib_caller *who, const char *field, ib_dpath *out, ib_reply *rep);
/* The same for a counted string (an URL-decoded path may hold a NUL byte, which is refused). */
ib_code ib_dpath_parsen(const char *path, size_t len, const ib_caller *who, const char *field, ib_dpath *out,
                        ib_reply *rep);

/* Drive-form string for responses: "/" + rel. Writes into buf. */
const char *ib_dpath_show(const ib_dpath *p, char *buf, size_t bufsz);

/* Opens the drive root (creating it if missing). Returns an O_PATH|O_DIRECTORY fd or -1 with errno. */
int ib_drive_open_root(const char *drive_root);

/* Opens an existing node below the drive root with open(2) flags (O_RDONLY, O_DIRECTORY, O_PATH, ...),
 * confined below the path's user folder (RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS). Returns fd, or -1 with errno
 * (ENOENT missing, EXDEV/ELOOP escape attempt, ENOTDIR ...). */
int ib_drive_openat(int drive_fd, const ib_dpath *p, int flags, mode_t mode);

/* Opens the parent folder of p (O_RDONLY|O_DIRECTORY), creating missing folders on the way when `create` is set,
 * confined like ib_drive_openat. *base points into p->rel at the last segment. Returns fd or -1 with errno;
 * EPERM when p is a bare user folder, whose parent is the drive root. */
int ib_drive_open_parent(int drive_fd, const ib_dpath *p, int create, const char **base);

/* Opens (creating when `create`) the folder p itself, confined. Returns an O_RDONLY|O_DIRECTORY fd (usable with
 * fdopendir and fsync) or -1 with errno. */
int ib_drive_open_dir(int drive_fd, const ib_dpath *p, int create);

/* Maps an errno from the functions above to a reply naming the field and path: ENOENT -> not_found,
 * EXDEV/ELOOP -> forbidden ("leaves the drive"), ENOTDIR/EISDIR/EPERM/ENAMETOOLONG -> bad_request,
 * EEXIST/ENOTEMPTY -> conflict, EACCES -> forbidden, EFBIG -> too_large, ENOSPC/EDQUOT -> insufficient_storage,
 * else internal. */
ib_code ib_drive_errno_reply(int err, const char *field, const ib_dpath *p, ib_reply *rep);

/* Opens `rel` (a relative path inside the folder dirfd, e.g. an archive entry or a refiner file named by a
 * flow) confined below dirfd. Returns fd or -1 with errno. */
int ib_openat_beneath(int dirfd, const char *rel, int flags, mode_t mode);
/* The same, refusing any symlink on the way (ELOOP): for trees the server writes itself (extraction). */
int ib_openat_strict(int dirfd, const char *rel, int flags, mode_t mode);

#endif
