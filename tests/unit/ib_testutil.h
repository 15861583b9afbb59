/* Helpers shared by the unit tests of common/: scratch folders under /tmp, removed afterwards with nftw (not
 * with the code under test), and small file writers. Header-only: every test program includes it once. */
#ifndef IB_TESTUTIL_H
#define IB_TESTUTIL_H

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int tu_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* A new scratch folder; its path is written into buf (at least 64 bytes). */
static inline char *tu_mkdtemp(char *buf)
{
    strcpy(buf, "/tmp/ibsol-unit-XXXXXX");
    return mkdtemp(buf);
}

static inline void tu_rmtree(const char *path)
{
    nftw(path, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes a file below root ("a/b/c" creates a and a/b); returns 0 or -1. */
static inline int tu_write(const char *root, const char *rel, const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        mkdir(path, 0755);
        *p = '/';
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    int rc = write(fd, data, len) == (ssize_t)len ? 0 : -1;
    close(fd);
    return rc;
}

static inline int tu_write_str(const char *root, const char *rel, const char *s)
{
    return tu_write(root, rel, s, strlen(s));
}

/* Whole file into a malloc'd buffer (NUL-terminated); NULL when missing. */
static inline char *tu_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) n = 0;
    buf[n] = '\0';
    fclose(f);
    if (len) *len = (size_t)n;
    return buf;
}

static inline int tu_exists(const char *root, const char *rel)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", root, rel);
    return lstat(path, &st) == 0;
}

#endif
