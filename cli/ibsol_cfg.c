/* ibsol profiles: $XDG_CONFIG_HOME/ibsol/config (default ~/.config/ibsol/config), a JSON object
 * {"profiles": {"default": {"url": "...", "token": "..."}, "staging": {...}}}, mode 0600 since it holds tokens.
 * JSON because jansson reads and writes it already; the file is rewritten whole, atomically, by login. */
#include "ibsol.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CFG_MAX (1 << 20) /* a config file larger than this is refused, not read */

int cfg_path(char *out, size_t outsz)
{
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    int n;
    if (xdg && xdg[0] == '/')
        n = snprintf(out, outsz, "%s/ibsol/config", xdg);
    else if (home && home[0])
        n = snprintf(out, outsz, "%s/.config/ibsol/config", home);
    else
        return -1;
    return n > 0 && (size_t)n < outsz ? 0 : -1;
}

/* The whole file as JSON: a new empty object when it does not exist. NULL with a message. */
static json_t *cfg_load_file(const char *path, char *err, size_t errsz)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return json_object();
        snprintf(err, errsz, "config file '%s' cannot be read: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > CFG_MAX) {
        snprintf(err, errsz, "config file '%s' is not a regular file of at most %d bytes", path, CFG_MAX);
        close(fd);
        return NULL;
    }
    json_error_t je;
    json_t *root = json_loadfd(fd, JSON_REJECT_DUPLICATES, &je);
    close(fd);
    if (!root) {
        snprintf(err, errsz, "config file '%s' line %d column %d: %s", path, je.line, je.column, je.text);
        return NULL;
    }
    json_t *profiles = json_object_get(root, "profiles");
    if (!json_is_object(root) || (profiles && !json_is_object(profiles))) {
        snprintf(err, errsz, "config file '%s' must be an object {\"profiles\": {NAME: {\"url\", \"token\"}}}", path);
        json_decref(root);
        return NULL;
    }
    return root;
}

int cfg_read(const char *path, const char *name, char *url, size_t urlsz, char *token, size_t tokensz, char *err,
             size_t errsz)
{
    url[0] = token[0] = '\0';
    json_t *root = cfg_load_file(path, err, errsz);
    if (!root) return -1;
    json_t *prof = json_object_get(json_object_get(root, "profiles"), name);
    int rc = 0;
    if (prof) {
        json_t *u = json_object_get(prof, "url"), *t = json_object_get(prof, "token");
        if (!json_is_object(prof) || (u && !json_is_string(u)) || (t && !json_is_string(t))) {
            snprintf(err, errsz, "config file '%s': profile '%s' must be an object of strings url and token", path,
                     name);
            rc = -1;
        } else if ((u && json_string_length(u) >= urlsz) || (t && json_string_length(t) >= tokensz)) {
            snprintf(err, errsz, "config file '%s': profile '%s' has a url or token that is too long", path, name);
            rc = -1;
        } else {
            if (u) snprintf(url, urlsz, "%s", json_string_value(u));
            if (t) snprintf(token, tokensz, "%s", json_string_value(t));
        }
    }
    json_decref(root);
    return rc;
}

/* mkdir -p of path's parent folders, mode 0700 (they hold tokens). */
static int make_parents(const char *path, char *err, size_t errsz)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    for (char *s = strchr(dir + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            snprintf(err, errsz, "cannot create folder '%s': %s", dir, strerror(errno));
            return -1;
        }
        *s = '/';
    }
    return 0;
}

int cfg_write(const char *path, const char *name, const char *url, const char *token, char *err, size_t errsz)
{
    json_t *root = cfg_load_file(path, err, errsz);
    if (!root) return -1;
    json_t *profiles = json_object_get(root, "profiles");
    if (!profiles) {
        profiles = json_object();
        json_object_set_new(root, "profiles", profiles);
    }
    json_object_set_new(profiles, name, json_pack("{s:s, s:s}", "url", url, "token", token));
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
    int rc = -1;
    if (make_parents(path, err, errsz) == 0) {
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            snprintf(err, errsz, "cannot write config file '%s': %s", tmp, strerror(errno));
        } else {
            char *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
            size_t len = text ? strlen(text) : 0, off = 0;
            while (text && off < len) {
                ssize_t w = write(fd, text + off, len - off);
                if (w < 0 && errno == EINTR) continue;
                if (w <= 0) break;
                off += (size_t)w;
            }
            int ok = text && off == len && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
            int e = errno;
            free(text);
            if (close(fd) != 0) ok = 0;
            if (ok && rename(tmp, path) == 0) {
                rc = 0;
            } else {
                snprintf(err, errsz, "cannot write config file '%s': %s", path, strerror(ok ? errno : e));
                unlink(tmp);
            }
        }
    }
    json_decref(root);
    return rc;
}

int cfg_load(void)
{
    char path[4096], err[1024];
    const char *eu = getenv("IBSOL_URL"), *et = getenv("IBSOL_TOKEN");
    if (cfg_path(path, sizeof path) == 0 &&
        cfg_read(path, cli.profile, cli.url, sizeof cli.url, cli.token, sizeof cli.token, err, sizeof err) != 0) {
        /* the environment alone is enough: a broken file only matters when it is needed */
        if (!(eu && *eu && et && *et)) {
            cli_err("%s", err);
            return EX_LOCAL;
        }
    }
    if (eu && *eu) snprintf(cli.url, sizeof cli.url, "%s", eu);
    if (et && *et) snprintf(cli.token, sizeof cli.token, "%s", et);
    return EX_OK;
}
