/* ib_mdrive: the marketplace seen as a read-only drive, where the original product's clients find published
 * archives: "system/global/fs/Instabase Drive/Applications/Marketplace/All/<name>/<version>/<name>-<version>
 * .ibsolution". The files API and the v1 drives API read it (the gateway), a copy job copies out of it (the
 * runner). Nothing under "system/global" is a user's folder: every write there is refused, for admins too. The
 * path is mapped, never joined: each segment is checked (a solution name, a semantic version, the one archive
 * name) and opened one folder at a time without following a symlink, so no path can reach anything else. */
#ifndef IB_MDRIVE_H
#define IB_MDRIVE_H

#include <jansson.h>
#include <stddef.h>

#define IB_MDRIVE_RESERVED "system/global"
#define IB_MDRIVE_ALL "system/global/fs/Instabase Drive/Applications/Marketplace/All"

/* 1 when path (leading '/' optional, len bytes) is "system/global" or below it. */
int ib_mdrive_reserved(const char *path, size_t len);

typedef struct ib_mdrive_node {
    int fd;    /* O_RDONLY: a folder for levels 0-2, the archive for level 3 */
    int level; /* 0: All, 1: a name's versions, 2: a version's folder, 3: the archive */
    char rel[4096]; /* the path without a leading '/' and without a trailing one */
} ib_mdrive_node;

/* Opens what path names in the marketplace folder market_fd (<data>/marketplace). 0, or -1 with errno: ENOENT
 * for anything that is not one of the four levels (ancestors of All, other names under system/global, a
 * version that is not published, a file other than the archive). */
int ib_mdrive_open(int market_fd, const char *path, size_t len, ib_mdrive_node *out);

/* The listing of a folder node (level 0-2): a new list of {name, full_path (no leading '/'), type, size,
 * modified}, sorted by name (versions by semver precedence). Closes nothing. NULL with errno. */
json_t *ib_mdrive_list(const ib_mdrive_node *n);

#endif
