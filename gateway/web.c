/* gw web: the static files of the web page (catalog, playground, jobs) at / and /web/<file>, with no token: the
 * page itself holds no data, and every API call it makes carries the token its user pasted. Files come from one
 * folder (IBSOL_WEB_ROOT), opened once at start; a request names a file by a plain relative path of
 * [A-Za-z0-9._-] segments, none starting with '.', taken from the raw URI (civetweb's cleaned one would have
 * dropped "a/../" before it could be refused) and opened below that folder with no symlink followed. Only the
 * kinds of files a page is made of are served, each with its content type; folders are never listed. */
#include "gw.h"

#include "ib_log.h"
#include "ib_path.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WEB_MAX_FILE (8 << 20) /* the largest file of the page: the page is small, this only bounds a mistake */
#define WEB_MAX_PATH 200

#ifndef IBSOL_WEB_SOURCE_DIR
#define IBSOL_WEB_SOURCE_DIR ""
#endif

static int web_fd = -1;
static char web_dir[PATH_MAX];

static const struct {
    const char *ext, *type;
} types[] = {
    {"html", "text/html; charset=utf-8"},   {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"}, {"svg", "image/svg+xml"},
    {"png", "image/png"},                    {"ico", "image/x-icon"},
    {"json", "application/json"},            {"txt", "text/plain; charset=utf-8"},
};

/* The page may reach this server only: no script, style, font or image from anywhere else, no framing. */
#define WEB_HEADERS                                                                                              \
    "X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n"               \
    "Content-Security-Policy: default-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "             \
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'\r\n"

/* The default folder: share/ibsol/web beside an installed binary's bin/, else the source tree's web/ (a build
 * tree's binary). */
static const char *default_root(char *buf, size_t bufsz)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            struct stat st;
            int w = snprintf(buf, bufsz, "%.3800s/../share/ibsol/web", exe);
            if (w > 0 && (size_t)w < bufsz && stat(buf, &st) == 0 && S_ISDIR(st.st_mode)) return buf;
        }
    }
    snprintf(buf, bufsz, "%s", IBSOL_WEB_SOURCE_DIR);
    return buf;
}

int gw_web_open(const char *setting, char *err, size_t errsz)
{
    char buf[PATH_MAX];
    const char *dir = setting && *setting ? setting : default_root(buf, sizeof buf);
    web_fd = dir[0] ? open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
    if (web_fd < 0 && setting && *setting) {
        snprintf(err, errsz, "IBSOL_WEB_ROOT: cannot open the web page's folder '%s': %s", dir, strerror(errno));
        return -1;
    }
    if (web_fd < 0) /* the default is missing (a partial install): the API works, / says what is wrong */
        ib_warn(NULL, "web page folder '%s' not found: / answers 404 until IBSOL_WEB_ROOT names one", dir);
    snprintf(web_dir, sizeof web_dir, "%s", dir);
    return 0;
}

void gw_web_close(void)
{
    if (web_fd >= 0) close(web_fd);
    web_fd = -1;
}

/* "" for "/" and "/index.html"-like names after "/web/"; NULL when uri is not the page's. */
static const char *web_rel(const char *raw)
{
    if (!strcmp(raw, "/") || !strcmp(raw, "/web") || !strcmp(raw, "/web/")) return "";
    if (!strncmp(raw, "/web/", 5)) return raw + 5;
    return NULL;
}

int gw_web_is_page(const char *raw_uri)
{
    return raw_uri && web_rel(raw_uri) != NULL;
}

/* 0 when rel is a plain relative path of [A-Za-z0-9._-] segments, none empty or starting with '.'. */
static int rel_ok(const char *rel)
{
    size_t n = strlen(rel);
    if (n == 0 || n > WEB_MAX_PATH) return -1;
    if (strspn(rel, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-/") != n) return -1;
    for (const char *seg = rel; seg;) {
        if (*seg == '.' || *seg == '/' || *seg == '\0') return -1;
        const char *next = strchr(seg, '/');
        seg = next ? next + 1 : NULL;
    }
    return 0;
}

static const char *type_of(const char *rel)
{
    const char *dot = strrchr(rel, '.'), *slash = strrchr(rel, '/');
    if (!dot || (slash && dot < slash)) return NULL;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(dot + 1, types[i].ext)) return types[i].type;
    return NULL;
}

void gw_web_serve(gw_req *r, const char *raw_uri)
{
    const char *rel = web_rel(raw_uri);
    if (!rel) rel = "";
    if (!*rel) rel = "index.html";
    const char *method = r->ri->request_method;
    if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
        char msg[128];
        snprintf(msg, sizeof msg, "method %.16s is not allowed on the web page (GET or HEAD)", method);
        return gw_reply_error_http(r, 405, IB_BAD_REQUEST, msg);
    }
    const char *type = rel_ok(rel) == 0 ? type_of(rel) : NULL;
    if (!type)
        return gw_reply_error(r, IB_NOT_FOUND, "web: '/web/%.*s' is not a file of the web page", WEB_MAX_PATH,
                              rel);
    if (web_fd < 0)
        return gw_reply_error(r, IB_NOT_FOUND, "the web page is not installed: no folder at '%s' (IBSOL_WEB_ROOT)",
                              web_dir);
    int fd = ib_openat_strict(web_fd, rel, O_RDONLY | O_NOCTTY | O_NONBLOCK, 0);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0) close(fd);
        return gw_reply_error(r, IB_NOT_FOUND, "web: '/web/%s' is not a file of the web page", rel);
    }
    if (st.st_size > WEB_MAX_FILE) {
        close(fd);
        ib_error(r->rid, "web: %s/%s is %lld bytes, past the limit of %d", web_dir, rel, (long long)st.st_size,
                 WEB_MAX_FILE);
        return gw_reply_error(r, IB_INTERNAL, "web: '/web/%s' is larger than a web file may be", rel);
    }
    size_t len = (size_t)st.st_size, got = 0;
    char *buf = malloc(len ? len : 1);
    ssize_t n = 1;
    while (buf && got < len && (n = read(fd, buf + got, len - got)) > 0) got += (size_t)n;
    close(fd);
    if (!buf || got != len) {
        free(buf);
        return gw_reply_error(r, IB_INTERNAL, "web: '/web/%s' could not be read", rel);
    }
    gw_reply_begin(r, 200, type, (long long)len, WEB_HEADERS);
    if (strcmp(method, "HEAD") && len) mg_write(r->conn, buf, len);
    free(buf);
}

void gw_web_whoami(gw_req *r)
{
    gw_reply_json(r, 200, json_pack("{s:s, s:s, s:s}", "status", "OK", "user", r->user, "role", r->role));
}
