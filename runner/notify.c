/* notify: webhook (libcurl, retried with exponential backoff) and email (RFC 5322 file in the outbox, then an
 * optional sendmail-compatible command) when a job ends. Outcomes are data for the job record, never a job
 * failure; every input that reaches a header (URL, header values, addresses, ids) is checked for CR/LF. */
#include "notify.h"

#include "ib_fs.h"
#include "ib_log.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_URL 2048
#define MAX_HEADERS 32
#define MAX_HEADER_LEN 1024 /* name + value */
#define MAX_ADDRESSES 20
#define MAX_ADDR_LEN 254
#define MAX_FIELD 900     /* any one value in a mail line: stays under RFC 5322's 998 octets */
#define MAX_MESSAGE 16384 /* one email */
#define MAX_BACKOFF_MS 60000
#define SENDMAIL_TIMEOUT_MS 60000
#define MAX_ARGV 16

/* --- process-wide state --------------------------------------------------------------------------------- */

static pthread_mutex_t global_mu = PTHREAD_MUTEX_INITIALIZER;
static int global_refs;
/* Set by notify_abort: backoff sleeps end at once, transfers in flight stop, nothing is retried. */
static atomic_int aborting;
static pthread_mutex_t sleep_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sleep_cv = PTHREAD_COND_INITIALIZER;

void notify_global_init(void)
{
    pthread_mutex_lock(&global_mu);
    if (global_refs++ == 0) curl_global_init(CURL_GLOBAL_DEFAULT);
    atomic_store(&aborting, 0);
    pthread_mutex_unlock(&global_mu);
}

void notify_global_cleanup(void)
{
    pthread_mutex_lock(&global_mu);
    if (global_refs > 0 && --global_refs == 0) curl_global_cleanup();
    pthread_mutex_unlock(&global_mu);
}

void notify_abort(void)
{
    pthread_mutex_lock(&sleep_mu);
    atomic_store(&aborting, 1);
    pthread_cond_broadcast(&sleep_cv);
    pthread_mutex_unlock(&sleep_mu);
}

/* Sleeps ms unless notify_abort is called meanwhile. */
static void backoff_sleep(long ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&sleep_mu);
    while (!atomic_load(&aborting))
        if (pthread_cond_timedwait(&sleep_cv, &sleep_mu, &until) == ETIMEDOUT) break;
    pthread_mutex_unlock(&sleep_mu);
}

/* --- checks --------------------------------------------------------------------------------------------- */

static int has_crlf(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

static int is_http_url(const char *s)
{
    size_t n = strlen(s);
    if (n > MAX_URL || has_crlf(s)) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f) return 0;
    const char *host = !strncasecmp(s, "http://", 7) ? s + 7 : !strncasecmp(s, "https://", 8) ? s + 8 : NULL;
    return host && *host && *host != '/';
}

/* RFC 7230 token characters: a header name is one token. */
static int is_token(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              strchr("!#$%&'*+-.^_`|~", *s)))
            return 0;
    return 1;
}

/* A simple addr-spec: dot-atom local part @ hostname of letters, digits and hyphens. Quoted local parts and
 * address literals are refused: nobody needs them for job notifications, and they are where injection hides.
 */
static int addr_ok(const char *a)
{
    size_t n = strlen(a);
    const char *at = strrchr(a, '@');
    if (n == 0 || n > MAX_ADDR_LEN || !at || at == a || at - a > 64 || !at[1]) return 0;
    char prev = '.';
    for (const char *p = a; p < at; prev = *p++) {
        if (*p == '.') {
            if (prev == '.') return 0; /* leading or doubled dot */
            continue;
        }
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              strchr("!#$%&'*+-/=?^_`{|}~", *p)))
            return 0;
    }
    if (prev == '.') return 0;
    size_t label = 0;
    prev = '.';
    for (const char *p = at + 1; *p; prev = *p++) {
        if (*p == '.') {
            if (label == 0 || prev == '-') return 0;
            label = 0;
            continue;
        }
        if (*p == '-' && label == 0) return 0;
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '-'))
            return 0;
        if (++label > 63) return 0;
    }
    return label > 0 && prev != '-';
}

/* Splits notification_emails (a list, or one comma-separated string) into trimmed entries, "" entries
 * skipped. Returns the count, or -1 when the value has the wrong shape (message in err). Entries are copied
 * into out[i] (MAX_ADDR_LEN + 2 bytes each); an overlong entry is kept truncated-but-marked so it fails the
 * address check instead of passing as a prefix. */
typedef char addr_buf[MAX_ADDR_LEN + 2];

static int add_entry(addr_buf *out, int n, const char *s, size_t len, char *err, size_t errsz)
{
    while (len && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (!len) return n;
    if (n >= MAX_ADDRESSES) {
        snprintf(err, errsz, "settings.notification_emails: at most %d addresses", MAX_ADDRESSES);
        return -1;
    }
    if (len > MAX_ADDR_LEN) len = MAX_ADDR_LEN + 1; /* fails addr_ok on length */
    memcpy(out[n], s, len);
    out[n][len] = '\0';
    if (memchr(s, '\0', len)) out[n][0] = '\0'; /* cannot happen with jansson strings, refused anyway */
    return n + 1;
}

static int split_addresses(const json_t *v, addr_buf *out, char *err, size_t errsz)
{
    static const char shape[] =
        "settings.notification_emails must be a list of addresses or a comma-separated string";
    int n = 0;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        for (;;) {
            const char *comma = strchr(s, ',');
            size_t len = comma ? (size_t)(comma - s) : strlen(s);
            if ((n = add_entry(out, n, s, len, err, errsz)) < 0) return -1;
            if (!comma) break;
            s = comma + 1;
        }
        return n;
    }
    if (!json_is_array(v)) {
        snprintf(err, errsz, "%s", shape);
        return -1;
    }
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e)) {
            snprintf(err, errsz, "%s", shape);
            return -1;
        }
        const char *s = json_string_value(e);
        if ((n = add_entry(out, n, s, strlen(s), err, errsz)) < 0) return -1;
    }
    return n;
}

/* --- webhook targets ----------------------------------------------------------------------------------- */

/* What an IPv4 address (host byte order) is when webhooks may not reach it, else NULL. */
static const char *v4_kind(uint32_t a)
{
    if (a == 0) return "the unspecified address";
    if ((a >> 24) == 0) return "a reserved address"; /* 0.0.0.0/8: "this network" */
    if ((a >> 24) == 127) return "a loopback address";
    if ((a >> 24) == 10 || (a >> 20) == 0xAC1 || (a >> 16) == 0xC0A8) return "a private address";
    if ((a >> 22) == (100u << 2 | 1)) return "a shared (carrier-grade NAT) address"; /* 100.64.0.0/10 */
    if ((a >> 16) == 0xA9FE) return "a link-local address";
    if ((a >> 28) == 0xE) return "a multicast address";
    if ((a >> 28) == 0xF) return "a reserved address"; /* 240.0.0.0/4 and the broadcast address */
    return NULL;
}

/* What an address is when webhooks may not reach it (IPv4-mapped, -compatible, NAT64 and 6to4 forms are
 * judged by the IPv4 address inside), else NULL. */
static const char *addr_kind(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return v4_kind(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
    if (sa->sa_family != AF_INET6) return "an address of an unknown family";
    const unsigned char *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    static const unsigned char zero[16], mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff},
                                         nat64[12] = {0, 0x64, 0xff, 0x9b};
    uint32_t tail = (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15];
    if (!memcmp(b, zero, 16)) return "the unspecified address";
    if (!memcmp(b, zero, 15) && b[15] == 1) return "a loopback address";
    if (!memcmp(b, mapped, 12) || !memcmp(b, zero, 12) || !memcmp(b, nat64, 12))
        return v4_kind(tail) ? v4_kind(tail) : NULL;
    if (b[0] == 0x20 && b[1] == 0x02) /* 6to4: 2002:AABB:CCDD::/48 carries AA.BB.CC.DD */
        return v4_kind((uint32_t)b[2] << 24 | (uint32_t)b[3] << 16 | (uint32_t)b[4] << 8 | b[5]);
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return "a link-local address";
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return "a private address"; /* site-local, deprecated */
    if ((b[0] & 0xfe) == 0xfc) return "a unique-local address";
    if (b[0] == 0xff) return "a multicast address";
    return NULL;
}

static const char *addr_show(const struct sockaddr *sa, char *buf, size_t bufsz)
{
    const void *a = sa->sa_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                                               : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
    if (!inet_ntop(sa->sa_family, a, buf, (socklen_t)bufsz)) snprintf(buf, bufsz, "?");
    return buf;
}

/* The message for a refused target (into err): names the URL, the address and what it is. */
static void refused_target(const char *url, const struct sockaddr *sa, const char *kind, char *err, size_t errsz)
{
    char shown[INET6_ADDRSTRLEN];
    snprintf(err, errsz,
             "settings.webhook_config.url '%.300s' resolves to %s, %s; webhooks may not reach loopback, "
             "link-local, private, multicast or reserved addresses (IBSOL_WEBHOOK_ALLOW_PRIVATE=true allows them)",
             url, addr_show(sa, shown, sizeof shown), kind);
}

/* Resolves the URL's host now and refuses it when an address it has is one webhooks may not reach. 0 also when
 * the host does not resolve now: delivery resolves it again and checks what it connects to. */
static int check_target(const notify_cfg *cfg, const char *url, char *err, size_t errsz)
{
    if (cfg && cfg->allow_private) return 0;
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL;
    int rc = 0;
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        snprintf(err, errsz, "settings.webhook_config.url '%.300s' is not a valid URL", url);
        rc = -1;
        goto out;
    }
    char name[256];
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') /* an IPv6 literal: getaddrinfo takes it bare */
        snprintf(name, sizeof name, "%.*s", (int)(n - 2), host + 1);
    else
        snprintf(name, sizeof name, "%s", host);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(name, port, &hints, &res) != 0) goto out;
    for (struct addrinfo *ai = res; ai && rc == 0; ai = ai->ai_next) {
        const char *kind = addr_kind(ai->ai_addr);
        if (kind) {
            refused_target(url, ai->ai_addr, kind, err, errsz);
            rc = -1;
        }
    }
    freeaddrinfo(res);
out:
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

static int check_webhook(const notify_cfg *cfg, const json_t *wh, char *err, size_t errsz)
{
    if (!json_is_object(wh)) {
        snprintf(err, errsz, "settings.webhook_config must be an object");
        return -1;
    }
    const json_t *url = json_object_get(wh, "url");
    if (!url) {
        snprintf(err, errsz, "settings.webhook_config.url is required");
        return -1;
    }
    if (!json_is_string(url) || !is_http_url(json_string_value(url))) {
        snprintf(err, errsz, "settings.webhook_config.url must be an http:// or https:// URL");
        return -1;
    }
    if (check_target(cfg, json_string_value(url), err, errsz) < 0) return -1;
    const json_t *headers = json_object_get(wh, "headers");
    if (!headers || json_is_null(headers)) return 0;
    if (!json_is_object(headers)) {
        snprintf(err, errsz, "settings.webhook_config.headers must be an object of strings");
        return -1;
    }
    if (json_object_size(headers) > MAX_HEADERS) {
        snprintf(err, errsz, "settings.webhook_config.headers: at most %d headers", MAX_HEADERS);
        return -1;
    }
    const char *name;
    const json_t *value;
    json_object_foreach((json_t *)headers, name, value)
    {
        if (!json_is_string(value)) {
            snprintf(err, errsz, "settings.webhook_config.headers must be an object of strings");
            return -1;
        }
        const char *v = json_string_value(value);
        if (has_crlf(name) || has_crlf(v) || strlen(v) != json_string_length(value)) {
            snprintf(err, errsz, "settings.webhook_config.headers: header '%.64s' must not contain CR or LF",
                     has_crlf(name) ? "(name)" : name);
            return -1;
        }
        if (!is_token(name)) {
            snprintf(err, errsz, "settings.webhook_config.headers: '%.64s' is not a valid header name", name);
            return -1;
        }
        if (strlen(name) + strlen(v) > MAX_HEADER_LEN) {
            snprintf(err, errsz, "settings.webhook_config.headers: header '%.64s' is longer than %d bytes",
                     name, MAX_HEADER_LEN);
            return -1;
        }
    }
    return 0;
}

int notify_check_settings(const notify_cfg *cfg, const json_t *settings, char *err, size_t errsz)
{
    if (!json_is_object(settings)) return 0;
    const json_t *wh = json_object_get(settings, "webhook_config");
    if (wh && !json_is_null(wh) && check_webhook(cfg, wh, err, errsz) < 0) return -1;
    const json_t *emails = json_object_get(settings, "notification_emails");
    if (!emails || json_is_null(emails)) return 0;
    addr_buf addrs[MAX_ADDRESSES];
    int n = split_addresses(emails, addrs, err, errsz);
    if (n < 0) return -1;
    for (int i = 0; i < n; i++)
        if (!addr_ok(addrs[i])) {
            snprintf(err, errsz, "settings.notification_emails: '%.80s' is not an email address", addrs[i]);
            return -1;
        }
    return 0;
}

/* --- webhook -------------------------------------------------------------------------------------------- */

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    (void)userdata;
    return size * nmemb; /* the answer's body is not kept: only its status matters */
}

static int abort_check(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)clientp;
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return atomic_load(&aborting) ? 1 : 0;
}

/* The connection guard: curl asks it for every socket it connects, so the address checked is the address used,
 * whatever the name resolves to by then. */
typedef struct target_guard {
    const char *url;
    int allow_private;
    char refused[768]; /* set when an address was refused */
} target_guard;

static curl_socket_t open_checked(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
    target_guard *g = clientp;
    const char *kind = g->allow_private ? NULL : addr_kind(&address->addr);
    if (purpose == CURLSOCKTYPE_IPCXN && kind) {
        refused_target(g->url, &address->addr, kind, g->refused, sizeof g->refused);
        return CURL_SOCKET_BAD;
    }
    return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

/* Errors that another attempt cannot fix. */
static int curl_permanent(CURLcode rc)
{
    return rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_OUT_OF_MEMORY ||
           rc == CURLE_BAD_FUNCTION_ARGUMENT || rc == CURLE_ABORTED_BY_CALLBACK || rc == CURLE_NOT_BUILT_IN ||
           rc == CURLE_UNKNOWN_OPTION;
}

static struct curl_slist *build_headers(const json_t *webhook_config)
{
    struct curl_slist *list = NULL, *next;
    /* "Expect:" off: a body over 1 KiB would otherwise wait for a 100-continue that many receivers never
     * send. */
    static const char *const fixed[] = {"Content-Type: application/json", "Expect:"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        if (!(next = curl_slist_append(list, fixed[i]))) goto fail;
        list = next;
    }
    const json_t *headers = json_object_get(webhook_config, "headers");
    const char *name;
    const json_t *value;
    char line[MAX_HEADER_LEN + 8];
    json_object_foreach((json_t *)headers, name, value)
    {
        const char *v = json_string_value(value);
        /* Checked at submit time; checked again because a job record may come from an older version. */
        if (!v || !is_token(name) || has_crlf(v) || strlen(name) + strlen(v) > MAX_HEADER_LEN) continue;
        if (!strcasecmp(name, "Content-Type") || !strcasecmp(name, "Content-Length") ||
            !strcasecmp(name, "Expect") || !strcasecmp(name, "Host") ||
            !strcasecmp(name, "Transfer-Encoding"))
            continue; /* framing is ours */
        /* "Name;" is curl's way of sending a header with an empty value ("Name:" would remove it). */
        int k =
            *v ? snprintf(line, sizeof line, "%s: %s", name, v) : snprintf(line, sizeof line, "%s;", name);
        if (k < 0 || (size_t)k >= sizeof line) continue; /* cannot happen: lengths were checked */
        if (!(next = curl_slist_append(list, line))) goto fail;
        list = next;
    }
    return list;
fail:
    curl_slist_free_all(list);
    return NULL;
}

json_t *notify_webhook(const notify_cfg *cfg, const json_t *webhook_config, const json_t *event)
{
    const char *url = json_string_value(json_object_get(webhook_config, "url"));
    json_t *out = json_object();
    json_object_set_new(out, "url", json_string(url && strlen(url) <= MAX_URL ? url : ""));
    json_object_set_new(out, "delivered", json_false());
    json_object_set_new(out, "attempts", json_integer(0));
    if (!url || !is_http_url(url)) {
        json_object_set_new(out, "error", json_string("the webhook URL is not an http:// or https:// URL"));
        return out;
    }
    char *body = json_dumps(event, JSON_COMPACT);
    struct curl_slist *headers = build_headers(webhook_config);
    CURL *curl = curl_easy_init();
    if (!body || !headers || !curl) {
        json_object_set_new(out, "error", json_string("out of memory preparing the webhook"));
        goto done;
    }
    char errbuf[CURL_ERROR_SIZE];
    long timeout = cfg->webhook_timeout_ms > 0 ? cfg->webhook_timeout_ms : 10000;
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "ibsol/" IBSOL_VERSION);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM-based resolver timeouts */
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, abort_check);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    target_guard guard = {.url = url, .allow_private = cfg->allow_private};
    curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, open_checked);
    curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, &guard);
    curl_easy_setopt(curl, CURLOPT_PROXY, ""); /* no proxy from the environment: the guard checks the target */

    int retries = cfg->webhook_retries > 0 ? cfg->webhook_retries : 0;
    long delay = cfg->webhook_backoff_ms > 0 ? cfg->webhook_backoff_ms : 0;
    char error[CURL_ERROR_SIZE + 640] = "";
    long status = 0;
    int attempts = 0, delivered = 0;
    for (;;) {
        attempts++;
        errbuf[0] = '\0';
        guard.refused[0] = '\0';
        CURLcode rc = curl_easy_perform(curl);
        int retry;
        if (guard.refused[0] && rc != CURLE_OK) { /* no address it has may be reached: another try cannot help */
            retry = 0;
            snprintf(error, sizeof error, "%s", guard.refused);
        } else if (rc == CURLE_OK) {
            curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
            delivered = status >= 200 && status < 300;
            retry = status == 429 || status >= 500;
            if (!delivered)
                snprintf(error, sizeof error, "HTTP %ld%s", status,
                         status >= 300 && status < 400 ? " (redirects are not followed)" : "");
        } else {
            retry = !curl_permanent(rc);
            snprintf(error, sizeof error, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
        }
        if (delivered || !retry || attempts > retries || atomic_load(&aborting)) break;
        ib_debug(NULL, "webhook %s: attempt %d failed (%s), next in %ld ms", url, attempts, error, delay);
        backoff_sleep(delay);
        if (atomic_load(&aborting)) break;
        delay = delay * 2 > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : delay * 2;
    }
    json_object_set_new(out, "delivered", json_boolean(delivered));
    json_object_set_new(out, "attempts", json_integer(attempts));
    if (status) json_object_set_new(out, "http_status", json_integer(status));
    if (!delivered && atomic_load(&aborting))
        snprintf(error, sizeof error, "aborted: the runner is shutting down");
    if (!delivered) json_object_set_new(out, "error", json_string(error[0] ? error : "not delivered"));
done:
    curl_easy_cleanup(curl);
    curl_slist_free_all(headers);
    free(body);
    return out;
}

/* --- email ---------------------------------------------------------------------------------------------- */

typedef struct sbuf {
    char data[MAX_MESSAGE];
    size_t len;
    int overflow;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = sizeof b->data - b->len;
    int n = vsnprintf(b->data + b->len, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room) {
        b->overflow = 1;
        return;
    }
    b->len += (size_t)n;
}

/* A value for one line of the message: control characters become spaces, cut at MAX_FIELD bytes on a UTF-8
 * character boundary. */
static const char *clean(const char *s, char *out, size_t outsz)
{
    const unsigned char *src = (const unsigned char *)(s ? s : "");
    size_t len = strlen((const char *)src), cap = outsz - 1 < MAX_FIELD ? outsz - 1 : MAX_FIELD;
    size_t n = len < cap ? len : cap;
    if (n < len)
        while (n > 0 && (src[n] & 0xC0) == 0x80)
            n--; /* do not leave half a character */
    for (size_t i = 0; i < n; i++)
        out[i] = (src[i] < 0x20 || src[i] == 0x7f) ? ' ' : (char)src[i];
    out[n] = '\0';
    return out;
}

/* A job id fit for a file name and a header: letters, digits, '-', '_'. */
static int id_ok(const char *id)
{
    if (!id || !*id || strlen(id) > 128) return 0;
    for (; *id; id++)
        if (!((*id >= '0' && *id <= '9') || (*id >= 'a' && *id <= 'z') || (*id >= 'A' && *id <= 'Z') ||
              *id == '-' || *id == '_'))
            return 0;
    return 1;
}

static const char *status_word(const json_t *job, char *buf, size_t bufsz)
{
    const char *s = json_string_value(json_object_get(job, "status"));
    if (!s) {
        /* the public status object may carry it inside cur_status (a JSON string) */
        const char *text = json_string_value(json_object_get(job, "cur_status"));
        json_t *cur = text ? json_loads(text, 0, NULL) : NULL;
        const char *in = json_string_value(json_object_get(cur, "status"));
        snprintf(buf, bufsz, "%s", in ? in : "");
        json_decref(cur);
        s = buf;
    } else {
        snprintf(buf, bufsz, "%s", s);
    }
    size_t n = 0;
    for (const char *p = buf; *p && n < bufsz - 1; p++)
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '_') buf[n++] = *p;
    buf[n] = '\0';
    if (!n) snprintf(buf, bufsz, "ENDED");
    return buf;
}

static long long count_of(const json_t *summary, const char *key)
{
    const json_t *v = json_object_get(summary, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

static void rfc5322_date(char *buf, size_t bufsz)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm); /* by hand: strftime's names follow the locale */
    snprintf(buf, bufsz, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int build_message(sbuf *b, const char *from, const char *to, const char *job_id, const json_t *job,
                         int n)
{
    char status[32], date[64], msg[MAX_FIELD + 1], folder[MAX_FIELD + 1], input[MAX_FIELD + 1], fin[64];
    status_word(job, status, sizeof status);
    rfc5322_date(date, sizeof date);
    const char *domain = strrchr(from, '@') + 1;
    static atomic_uint seq;
    b->len = 0;
    b->overflow = 0;
    put(b, "From: %s\r\n", from);
    put(b, "To: %s\r\n", to);
    put(b, "Subject: ibsol job %s %s\r\n", job_id, status);
    put(b, "Date: %s\r\n", date);
    put(b, "Message-ID: <%s.%d.%ld.%d.%u@%s>\r\n", job_id, n, (long)time(NULL), (int)getpid(),
        atomic_fetch_add(&seq, 1), domain);
    put(b, "MIME-Version: 1.0\r\n");
    put(b, "Content-Type: text/plain; charset=utf-8\r\n");
    put(b, "Content-Transfer-Encoding: 8bit\r\n");
    put(b, "Auto-Submitted: auto-generated\r\n"); /* RFC 3834: no vacation auto-replies to a robot */
    put(b, "\r\n");
    const json_t *summary = json_object_get(job, "run_summary");
    put(b, "Job %s ended: %s\r\n\r\n", job_id, status);
    put(b, "Status: %s\r\n", status);
    put(b, "Message: %s\r\n", clean(json_string_value(json_object_get(job, "curMsg")), msg, sizeof msg));
    put(b, "Files: %lld\r\n", count_of(summary, "numFiles"));
    put(b, "Records: %lld\r\n", count_of(summary, "numRecords"));
    put(b, "Errors: %lld\r\n", count_of(summary, "numRuntimeErrors"));
    const char *in = json_string_value(json_object_get(job, "input_folder"));
    if (in) put(b, "Input folder: %s\r\n", clean(in, input, sizeof input));
    put(b, "Output folder: %s\r\n",
        clean(json_string_value(json_object_get(job, "output_folder")), folder, sizeof folder));
    const json_t *ts = json_object_get(job, "finish_timestamp");
    if (json_is_number(ts)) {
        time_t t = (time_t)json_number_value(ts);
        struct tm tm;
        if (gmtime_r(&t, &tm) && strftime(fin, sizeof fin, "%Y-%m-%dT%H:%M:%SZ", &tm))
            put(b, "Finished: %s\r\n", fin);
    }
    return b->overflow ? -1 : 0;
}

/* Runs `<cmd words...> -t -i` with the message on stdin; no shell, so nothing in the message or the settings
 * is ever interpreted. 0, or -1 with the reason in err. */
static int run_sendmail(const char *cmd, const char *msg, size_t len, char *err, size_t errsz)
{
    char copy[1024];
    if (strlen(cmd) >= sizeof copy) {
        snprintf(err, errsz, "the sendmail command is longer than %zu bytes", sizeof copy - 1);
        return -1;
    }
    snprintf(copy, sizeof copy, "%s", cmd);
    char *argv[MAX_ARGV + 3];
    int argc = 0;
    for (char *save = NULL, *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
        if (argc == MAX_ARGV) {
            snprintf(err, errsz, "the sendmail command has more than %d words", MAX_ARGV);
            return -1;
        }
        argv[argc++] = w;
    }
    if (!argc) {
        snprintf(err, errsz, "the sendmail command is empty");
        return -1;
    }
    argv[argc++] = "-t";
    argv[argc++] = "-i";
    argv[argc] = NULL;
    /* A socket, not a pipe, for stdin: send(MSG_NOSIGNAL) cannot raise SIGPIPE when the command exits early,
     * whatever the calling process does with that signal. */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        snprintf(err, errsz, "cannot run '%s': %s", argv[0], strerror(errno));
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, sv[1], 0);
    posix_spawn_file_actions_adddup2(&fa, 2, 1); /* its chatter goes to our log, not our stdout */
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    /* Daemons block SIGTERM for sigwait: the child must start with no signal blocked and default actions. */
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(sv[1]);
    if (rc != 0) {
        close(sv[0]);
        snprintf(err, errsz, "cannot run '%s': %s", argv[0], strerror(rc));
        return -1;
    }
    struct timeval tv = {.tv_sec = 10};
    setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(sv[0], msg + off, len - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break; /* it stopped reading: its exit status tells why */
        off += (size_t)w;
    }
    close(sv[0]);
    int wstatus = 0;
    for (int waited = 0;; waited += 10) {
        pid_t r = waitpid(pid, &wstatus, WNOHANG);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) {
            snprintf(err, errsz, "'%s': cannot wait for it: %s", argv[0], strerror(errno));
            return -1;
        }
        if (waited >= SENDMAIL_TIMEOUT_MS) {
            kill(pid, SIGKILL);
            waitpid(pid, &wstatus, 0);
            snprintf(err, errsz, "'%s' did not finish within %d s and was killed", argv[0],
                     SENDMAIL_TIMEOUT_MS / 1000);
            return -1;
        }
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) {
        if (off < len) {
            snprintf(err, errsz, "'%s' exited before reading the whole message", argv[0]);
            return -1;
        }
        return 0;
    }
    if (WIFEXITED(wstatus))
        snprintf(err, errsz, "'%s' exited with status %d", argv[0], WEXITSTATUS(wstatus));
    else
        snprintf(err, errsz, "'%s' was killed by signal %d", argv[0], WTERMSIG(wstatus));
    return -1;
}

static json_t *email_entry(const char *to, const char *file, int sent, const char *error)
{
    json_t *e = json_object();
    json_object_set_new(e, "to", json_string(to));
    if (file) json_object_set_new(e, "file", json_string(file));
    json_object_set_new(e, "sent", json_boolean(sent));
    if (error) json_object_set_new(e, "error", json_string(error));
    return e;
}

json_t *notify_emails(const notify_cfg *cfg, const json_t *addresses, const json_t *job)
{
    json_t *out = json_array();
    addr_buf addrs[MAX_ADDRESSES];
    char err[512];
    int n = split_addresses(addresses, addrs, err, sizeof err);
    if (n <= 0) return out; /* settings are checked at submit time; a bad shape here sends nothing */
    const char *job_id = json_string_value(json_object_get(job, "job_id"));
    if (!id_ok(job_id)) job_id = "job";
    const char *from = cfg->mail_from && addr_ok(cfg->mail_from) ? cfg->mail_from : "ibsol@localhost";
    int dirfd = -1;
    if (cfg->outbox_dir && ib_mkdirs(cfg->outbox_dir, 0755) == 0)
        dirfd = open(cfg->outbox_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int outbox_errno = errno;
    sbuf *msg = malloc(sizeof *msg);
    for (int i = 0; i < n; i++) {
        char to[MAX_ADDR_LEN + 2], file[200];
        snprintf(to, sizeof to, "%s", addrs[i]);
        if (!addr_ok(to)) {
            json_array_append_new(out, email_entry(to, NULL, 0, "not an email address"));
            continue;
        }
        if (!msg || build_message(msg, from, to, job_id, job, i + 1) < 0) {
            json_array_append_new(out, email_entry(to, NULL, 0, "the message could not be built"));
            continue;
        }
        if (dirfd < 0) {
            snprintf(err, sizeof err, "cannot open the outbox '%s': %s",
                     cfg->outbox_dir ? cfg->outbox_dir : "", strerror(outbox_errno));
            json_array_append_new(out, email_entry(to, NULL, 0, err));
            continue;
        }
        snprintf(file, sizeof file, "%s-%d.eml", job_id, i + 1);
        if (ib_write_atomic(dirfd, file, msg->data, msg->len) < 0) {
            snprintf(err, sizeof err, "cannot write %s to the outbox: %s", file, strerror(errno));
            json_array_append_new(out, email_entry(to, NULL, 0, err));
            continue;
        }
        if (!cfg->sendmail || !cfg->sendmail[0]) {
            json_array_append_new(out, email_entry(to, file, 0, NULL));
            continue;
        }
        int ok = run_sendmail(cfg->sendmail, msg->data, msg->len, err, sizeof err) == 0;
        if (!ok) ib_warn(NULL, "job %s: email to %s not sent: %s", job_id, to, err);
        json_array_append_new(out, email_entry(to, file, ok, ok ? NULL : err));
    }
    free(msg);
    if (dirfd >= 0) close(dirfd);
    return out;
}
