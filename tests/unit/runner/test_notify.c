/* Unit tests of runner/notify: settings checks (exact messages), the webhook against a tiny HTTP server run
 * in a thread on 127.0.0.1 (delivery, retries with backoff, no retry on 4xx, refused connections), and emails
 * (the outbox file's headers and CRLF line ends, a sendmail script that succeeds and one that fails). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include <cmocka.h>

#include "../ib_testutil.h"
#include "notify.h"

/* --- settings ------------------------------------------------------------------------------------------- */

/* Webhook targets are checked as a runner with IBSOL_WEBHOOK_ALLOW_PRIVATE at its default (false) does. */
static const notify_cfg strict_cfg = {.outbox_dir = "/nonexistent", .sendmail = "", .mail_from = "ibsol@localhost"};

static void expect_settings_with(const notify_cfg *cfg, const char *json, const char *msg)
{
    json_error_t jerr;
    json_t *s = json_loads(json, 0, &jerr);
    assert_non_null(s);
    char err[1024] = "";
    int rc = notify_check_settings(cfg, s, err, sizeof err);
    json_decref(s);
    if (!msg) {
        if (rc != 0) fail_msg("%s: unexpected error '%s'", json, err);
        return;
    }
    assert_int_equal(rc, -1);
    assert_string_equal(err, msg);
}

static void expect_settings(const char *json, const char *msg)
{
    expect_settings_with(&strict_cfg, json, msg);
}

static void test_settings(void **state)
{
    (void)state;
    expect_settings("{}", NULL);
    expect_settings("{\"webhook_config\": null, \"notification_emails\": null}", NULL);
    expect_settings(
        "{\"webhook_config\": {\"url\": \"https://hooks.example.com/x?a=1\", \"headers\": {\"X-Token\": "
        "\"abc\"}},"
        " \"notification_emails\": [\"jay.doe@example.com\", \"\", \"ops+ibsol@mail.example.org\"]}",
        NULL);
    expect_settings("{\"notification_emails\": \"a@example.com, b@example.com,,\"}", NULL);
    expect_settings("{\"notification_emails\": \"\"}", NULL);

    expect_settings("{\"webhook_config\": \"https://x\"}", "settings.webhook_config must be an object");
    expect_settings("{\"webhook_config\": [1]}", "settings.webhook_config must be an object");
    expect_settings("{\"webhook_config\": {}}", "settings.webhook_config.url is required");
    expect_settings("{\"webhook_config\": {\"url\": 3}}",
                    "settings.webhook_config.url must be an http:// or https:// URL");
    expect_settings("{\"webhook_config\": {\"url\": \"ftp://example.com/x\"}}",
                    "settings.webhook_config.url must be an http:// or https:// URL");
    expect_settings("{\"webhook_config\": {\"url\": \"file:///etc/passwd\"}}",
                    "settings.webhook_config.url must be an http:// or https:// URL");
    expect_settings("{\"webhook_config\": {\"url\": \"http://ex ample.com/\"}}",
                    "settings.webhook_config.url must be an http:// or https:// URL");
    expect_settings("{\"webhook_config\": {\"url\": \"http://\"}}",
                    "settings.webhook_config.url must be an http:// or https:// URL");
    expect_settings("{\"webhook_config\": {\"url\": \"http://x/\", \"headers\": [\"a\"]}}",
                    "settings.webhook_config.headers must be an object of strings");
    expect_settings("{\"webhook_config\": {\"url\": \"http://x/\", \"headers\": {\"X-N\": 1}}}",
                    "settings.webhook_config.headers must be an object of strings");
    expect_settings(
        "{\"webhook_config\": {\"url\": \"http://x/\", \"headers\": {\"X-A\": \"v\\r\\nX-Evil: 1\"}}}",
        "settings.webhook_config.headers: header 'X-A' must not contain CR or LF");
    expect_settings("{\"webhook_config\": {\"url\": \"http://x/\", \"headers\": {\"X-A\\nB\": \"v\"}}}",
                    "settings.webhook_config.headers: header '(name)' must not contain CR or LF");
    expect_settings("{\"webhook_config\": {\"url\": \"http://x/\", \"headers\": {\"X A\": \"v\"}}}",
                    "settings.webhook_config.headers: 'X A' is not a valid header name");

    expect_settings("{\"notification_emails\": 5}",
                    "settings.notification_emails must be a list of addresses or a comma-separated string");
    expect_settings("{\"notification_emails\": [\"a@example.com\", 5]}",
                    "settings.notification_emails must be a list of addresses or a comma-separated string");
    expect_settings("{\"notification_emails\": [\"not-an-address\"]}",
                    "settings.notification_emails: 'not-an-address' is not an email address");
    expect_settings("{\"notification_emails\": \"a@example.com, b@@example.com\"}",
                    "settings.notification_emails: 'b@@example.com' is not an email address");
    expect_settings(
        "{\"notification_emails\": [\"a@example.com\\r\\nBcc: x@evil.com\"]}",
        "settings.notification_emails: 'a@example.com\r\nBcc: x@evil.com' is not an email address");
    expect_settings("{\"notification_emails\": [\".a@example.com\"]}",
                    "settings.notification_emails: '.a@example.com' is not an email address");
    expect_settings("{\"notification_emails\": [\"a@-example.com\"]}",
                    "settings.notification_emails: 'a@-example.com' is not an email address");
    expect_settings("{\"notification_emails\": [\"a@example..com\"]}",
                    "settings.notification_emails: 'a@example..com' is not an email address");
}

/* --- webhook targets ------------------------------------------------------------------------------------- */

#define TARGET_TAIL                                                                                              \
    "; webhooks may not reach loopback, link-local, private, multicast or reserved addresses "                  \
    "(IBSOL_WEBHOOK_ALLOW_PRIVATE=true allows them)"

static void expect_target(const char *url, const char *address, const char *kind)
{
    char json[512], msg[1024];
    snprintf(json, sizeof json, "{\"webhook_config\": {\"url\": \"%s\"}}", url);
    snprintf(msg, sizeof msg, "settings.webhook_config.url '%s' resolves to %s, %s" TARGET_TAIL, url, address, kind);
    expect_settings(json, msg);
    /* the setting allows it */
    notify_cfg open_cfg = strict_cfg;
    open_cfg.allow_private = 1;
    expect_settings_with(&open_cfg, json, NULL);
}

static void test_webhook_targets(void **state)
{
    (void)state;
    expect_target("http://127.0.0.1/", "127.0.0.1", "a loopback address");
    expect_target("http://127.9.8.7:8080/x", "127.9.8.7", "a loopback address");
    expect_target("http://169.254.169.254/latest/meta-data/", "169.254.169.254", "a link-local address");
    expect_target("http://10.0.0.1/", "10.0.0.1", "a private address");
    expect_target("https://172.16.0.1/", "172.16.0.1", "a private address");
    expect_target("https://172.31.255.255/", "172.31.255.255", "a private address");
    expect_target("http://192.168.1.20/hook", "192.168.1.20", "a private address");
    expect_target("http://100.64.0.1/", "100.64.0.1", "a shared (carrier-grade NAT) address");
    expect_target("http://0.0.0.0:9/", "0.0.0.0", "the unspecified address");
    expect_target("http://224.0.0.1/", "224.0.0.1", "a multicast address");
    expect_target("http://255.255.255.255/", "255.255.255.255", "a reserved address");
    expect_target("http://[::1]/", "::1", "a loopback address");
    expect_target("http://[::]/", "::", "the unspecified address");
    expect_target("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1", "a loopback address");
    expect_target("http://[::ffff:169.254.169.254]/", "::ffff:169.254.169.254", "a link-local address");
    expect_target("http://[::ffff:10.1.2.3]:8443/", "::ffff:10.1.2.3", "a private address");
    expect_target("http://[fe80::1]/", "fe80::1", "a link-local address");
    expect_target("http://[fd12:3456::1]/", "fd12:3456::1", "a unique-local address");
    expect_target("http://[ff02::1]/", "ff02::1", "a multicast address");
    expect_target("http://[2002:7f00:1::1]/", "2002:7f00:1::1", "a loopback address"); /* 6to4 of 127.0.0.1 */
    expect_target("http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe", "a link-local address"); /* NAT64 */
    /* other spellings of a loopback address are the same address */
    expect_target("http://2130706433/", "127.0.0.1", "a loopback address");
    expect_target("http://0x7f.1/", "127.0.0.1", "a loopback address");

    /* public addresses pass */
    expect_settings("{\"webhook_config\": {\"url\": \"https://93.184.216.34/hook\"}}", NULL);
    expect_settings("{\"webhook_config\": {\"url\": \"http://172.32.0.1/\"}}", NULL);
    expect_settings("{\"webhook_config\": {\"url\": \"http://[2606:4700:4700::1111]/\"}}", NULL);
    expect_settings("{\"webhook_config\": {\"url\": \"http://[::ffff:8.8.8.8]/\"}}", NULL);
    /* a name that does not resolve now passes (delivery checks what it connects to) */
    expect_settings("{\"webhook_config\": {\"url\": \"http://no-such-host.invalid/\"}}", NULL);
}

/* --- a tiny HTTP server --------------------------------------------------------------------------------- */

typedef struct server {
    int fd, port;
    pthread_t thread;
    volatile int stop;
    pthread_mutex_t mu;
    int statuses[8]; /* answers in order; 200 once they run out */
    int nstatuses;
    int requests;
    char last[8192]; /* the last request, head and body */
} server;

static void serve_one(server *s, int c)
{
    char buf[8192];
    size_t used = 0;
    long body_len = -1;
    char *head_end = NULL;
    struct pollfd p = {.fd = c, .events = POLLIN};
    while (used < sizeof buf - 1 && poll(&p, 1, 2000) > 0) {
        ssize_t n = read(c, buf + used, sizeof buf - 1 - used);
        if (n <= 0) break;
        used += (size_t)n;
        buf[used] = '\0';
        if (!head_end && (head_end = strstr(buf, "\r\n\r\n"))) {
            const char *cl = strcasestr(buf, "\r\nContent-Length:");
            body_len = cl ? strtol(cl + 17, NULL, 10) : 0;
        }
        if (head_end && (size_t)(head_end + 4 - buf) + (size_t)body_len <= used) break;
    }
    pthread_mutex_lock(&s->mu);
    int status = s->requests < s->nstatuses ? s->statuses[s->requests] : 200;
    s->requests++;
    memcpy(s->last, buf, used + 1);
    pthread_mutex_unlock(&s->mu);
    char reply[256];
    int n = snprintf(reply, sizeof reply,
                     "HTTP/1.1 %d Test\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", status);
    if (write(c, reply, (size_t)n) < 0) { /* the client gave up: nothing to do */
    }
    close(c);
}

static void *server_main(void *arg)
{
    server *s = arg;
    while (!s->stop) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0) continue;
        int c = accept(s->fd, NULL, NULL);
        if (c >= 0) serve_one(s, c);
    }
    return NULL;
}

static int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 16) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

static server *server_start(const int *statuses, int n)
{
    server *s = calloc(1, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    if (n) memcpy(s->statuses, statuses, (size_t)n * sizeof *statuses);
    s->nstatuses = n;
    s->fd = listen_any(&s->port);
    assert_true(s->fd >= 0);
    assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
    return s;
}

static void server_stop(server *s)
{
    s->stop = 1;
    pthread_join(s->thread, NULL);
    close(s->fd);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The test server listens on 127.0.0.1: these webhooks are allowed to reach it. */
static const notify_cfg webhook_cfg = {
    .outbox_dir = "/nonexistent",
    .sendmail = "",
    .mail_from = "ibsol@localhost",
    .webhook_retries = 3,
    .webhook_backoff_ms = 20,
    .webhook_timeout_ms = 3000,
    .allow_private = 1,
};

static json_t *hook(int port, const char *path)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    return json_pack("{s:s, s:{s:s, s:s}}", "url", url, "headers", "Authorization", "Bearer s3cret",
                     "X-Empty", "");
}

static json_t *event(void)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "status", "OK", "job_id", "j-1", "input_folder", "/jay/in",
                     "output_folder", "/jay/out");
}

static void test_webhook_delivered(void **state)
{
    (void)state;
    server *s = server_start(NULL, 0);
    json_t *wh = hook(s->port, "/hook?x=1"), *ev = event();
    json_t *res = notify_webhook(&webhook_cfg, wh, ev);
    assert_true(json_is_true(json_object_get(res, "delivered")));
    assert_int_equal(json_integer_value(json_object_get(res, "attempts")), 1);
    assert_int_equal(json_integer_value(json_object_get(res, "http_status")), 200);
    assert_null(json_object_get(res, "error"));
    assert_int_equal(s->requests, 1);
    assert_non_null(strstr(s->last, "POST /hook?x=1 HTTP/1.1\r\n"));
    assert_non_null(strcasestr(s->last, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strstr(s->last, "\r\nAuthorization: Bearer s3cret\r\n"));
    assert_non_null(strstr(s->last, "\r\nX-Empty:"));
    const char *body = strstr(s->last, "\r\n\r\n") + 4;
    json_t *got = json_loads(body, 0, NULL);
    assert_non_null(got);
    assert_true(json_equal(got, ev));
    json_decref(got);
    json_decref(res);
    json_decref(wh);
    json_decref(ev);
    server_stop(s);
}

static void test_webhook_retried_then_delivered(void **state)
{
    (void)state;
    static const int script[] = {500, 503};
    server *s = server_start(script, 2);
    json_t *wh = hook(s->port, "/"), *ev = event();
    double t0 = now_s();
    json_t *res = notify_webhook(&webhook_cfg, wh, ev);
    double took = now_s() - t0;
    assert_true(json_is_true(json_object_get(res, "delivered")));
    assert_int_equal(json_integer_value(json_object_get(res, "attempts")), 3);
    assert_int_equal(s->requests, 3);
    assert_true(took >= 0.055); /* backoff 20 + 40 ms */
    json_decref(res);

    /* 429 counts as "try again"; with no retries left the last status is reported */
    static const int busy[] = {429, 429, 429, 429, 429};
    server *s2 = server_start(busy, 5);
    json_t *wh2 = hook(s2->port, "/");
    res = notify_webhook(&webhook_cfg, wh2, ev);
    assert_true(json_is_false(json_object_get(res, "delivered")));
    assert_int_equal(json_integer_value(json_object_get(res, "attempts")), 4);
    assert_int_equal(json_integer_value(json_object_get(res, "http_status")), 429);
    assert_string_equal(json_string_value(json_object_get(res, "error")), "HTTP 429");
    json_decref(res);
    json_decref(wh2);
    server_stop(s2);
    json_decref(wh);
    json_decref(ev);
    server_stop(s);
}

static void test_webhook_not_retried_on_4xx(void **state)
{
    (void)state;
    static const int script[] = {404};
    server *s = server_start(script, 1);
    json_t *wh = hook(s->port, "/missing"), *ev = event();
    json_t *res = notify_webhook(&webhook_cfg, wh, ev);
    assert_true(json_is_false(json_object_get(res, "delivered")));
    assert_int_equal(json_integer_value(json_object_get(res, "attempts")), 1);
    assert_int_equal(json_integer_value(json_object_get(res, "http_status")), 404);
    assert_string_equal(json_string_value(json_object_get(res, "error")), "HTTP 404");
    assert_int_equal(s->requests, 1);
    json_decref(res);

    /* a redirect is not followed (and not retried) */
    static const int moved[] = {302};
    server *s2 = server_start(moved, 1);
    json_t *wh2 = hook(s2->port, "/");
    res = notify_webhook(&webhook_cfg, wh2, ev);
    assert_true(json_is_false(json_object_get(res, "delivered")));
    assert_int_equal(json_integer_value(json_object_get(res, "attempts")), 1);
    assert_string_equal(json_string_value(json_object_get(res, "error")),
                        "HTTP 302 (redirects are not followed)");
    json_decref(res);
    json_decref(wh2);
    server_stop(s2);
    json_decref(wh);
    json_decref(ev);
    server_stop(s);
}

static void test_webhook_refused(void **state)
{
    (void)state;
    int port, fd = listen_any(&port);
    assert_true(fd >= 0);
    close(fd); /* nothing listens there now: connections are refused */
    json_t *wh = hook(port, "/"), *ev = event();
    double t0 = now_s();
    json_t *res = notify_webhook(&webhook_cfg, wh, ev);
    double took = now_s() - t0;
    assert_true(json_is_false(json_object_get(res, "delivered")));
    assert_int_equal(json_integer_value(json_object_get(res, "attempts")), 1 + webhook_cfg.webhook_retries);
    assert_null(json_object_get(res, "http_status"));
    assert_non_null(json_string_value(json_object_get(res, "error")));
    assert_true(took < 2.0);
    json_decref(res);

    /* a URL that is not http(s) is refused without any attempt */
    json_t *bad = json_pack("{s:s}", "url", "gopher://127.0.0.1/");
    res = notify_webhook(&webhook_cfg, bad, ev);
    assert_int_equal(json_integer_value(json_object_get(res, "attempts")), 0);
    assert_true(json_is_false(json_object_get(res, "delivered")));
    json_decref(res);
    json_decref(bad);
    json_decref(wh);
    json_decref(ev);
}

/* Without the setting, delivery checks the address it connects to: the server on 127.0.0.1 is never reached,
 * and the refusal is not retried. */
static void test_webhook_private_refused_at_delivery(void **state)
{
    (void)state;
    server *s = server_start(NULL, 0);
    notify_cfg cfg = webhook_cfg;
    cfg.allow_private = 0;
    json_t *wh = hook(s->port, "/hook"), *ev = event();
    json_t *res = notify_webhook(&cfg, wh, ev);
    assert_true(json_is_false(json_object_get(res, "delivered")));
    assert_int_equal(json_integer_value(json_object_get(res, "attempts")), 1);
    char want[1024];
    snprintf(want, sizeof want,
             "settings.webhook_config.url 'http://127.0.0.1:%d/hook' resolves to 127.0.0.1, a loopback address"
             TARGET_TAIL, s->port);
    assert_string_equal(json_string_value(json_object_get(res, "error")), want);
    pthread_mutex_lock(&s->mu);
    assert_int_equal(s->requests, 0);
    pthread_mutex_unlock(&s->mu);
    json_decref(res);
    json_decref(wh);
    json_decref(ev);
    server_stop(s);
}

/* --- email ---------------------------------------------------------------------------------------------- */

typedef struct mail_fx {
    char tmp[64];
    char outbox[128];
} mail_fx;

static int mail_setup(void **state)
{
    mail_fx *f = calloc(1, sizeof *f);
    if (!tu_mkdtemp(f->tmp)) return -1;
    snprintf(f->outbox, sizeof f->outbox, "%s/outbox", f->tmp);
    *state = f;
    return 0;
}

static int mail_teardown(void **state)
{
    mail_fx *f = *state;
    tu_rmtree(f->tmp);
    free(f);
    return 0;
}

static json_t *finished_job(void)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:{s:i, s:i, s:i}, s:s}", "job_id", "j-42", "status", "COMPLETE",
                     "curMsg", "Completed 3/3 files\nwith a newline", "output_folder", "/jay/out",
                     "run_summary", "numFiles", 3, "numRecords", 4, "numRuntimeErrors", 1, "input_folder",
                     "/jay/in");
}

static void assert_crlf_only(const char *s)
{
    for (const char *p = s; (p = strchr(p, '\n')); p++)
        assert_true(p > s && p[-1] == '\r');
}

static void test_email_outbox(void **state)
{
    mail_fx *f = *state;
    notify_cfg cfg = {.outbox_dir = f->outbox, .sendmail = "", .mail_from = "ibsol@example.com"};
    json_t *to = json_pack("[s, s]", "jay@example.com", "ops@example.org");
    json_t *job = finished_job();
    json_t *res = notify_emails(&cfg, to, job);
    assert_int_equal(json_array_size(res), 2);
    json_t *e = json_array_get(res, 0);
    assert_string_equal(json_string_value(json_object_get(e, "to")), "jay@example.com");
    assert_string_equal(json_string_value(json_object_get(e, "file")), "j-42-1.eml");
    assert_true(json_is_false(json_object_get(e, "sent")));
    assert_null(json_object_get(e, "error"));
    assert_string_equal(json_string_value(json_object_get(json_array_get(res, 1), "file")), "j-42-2.eml");

    char path[256];
    snprintf(path, sizeof path, "%s/j-42-1.eml", f->outbox);
    char *msg = tu_read(path, NULL);
    assert_non_null(msg);
    assert_crlf_only(msg);
    assert_true(!strncmp(msg, "From: ibsol@example.com\r\nTo: jay@example.com\r\n", 45));
    assert_non_null(strstr(msg, "\r\nSubject: ibsol job j-42 COMPLETE\r\n"));
    assert_non_null(strstr(msg, "\r\nMIME-Version: 1.0\r\n"));
    assert_non_null(strstr(msg, "\r\nContent-Type: text/plain; charset=utf-8\r\n"));
    assert_non_null(strstr(msg, "\r\nContent-Transfer-Encoding: 8bit\r\n"));
    const char *mid = strstr(msg, "\r\nMessage-ID: <j-42.1.");
    assert_non_null(mid);
    assert_non_null(strstr(mid, "@example.com>\r\n"));
    /* Date: "Tue, 01 Jul 2025 12:00:00 +0000" */
    const char *date = strstr(msg, "\r\nDate: ");
    assert_non_null(date);
    char wday[4], mon[4], zone[6];
    int day, year, hh, mm, ss;
    assert_int_equal(
        sscanf(date + 8, "%3[A-Za-z], %d %3s %d %d:%d:%d %5s", wday, &day, mon, &year, &hh, &mm, &ss, zone),
        8);
    assert_non_null(strstr("SunMonTueWedThuFriSat", wday));
    assert_string_equal(zone, "+0000");
    assert_non_null(strstr("JanFebMarAprMayJunJulAugSepOctNovDec", mon));
    const char *body = strstr(msg, "\r\n\r\n");
    assert_non_null(body);
    assert_non_null(strstr(body, "Status: COMPLETE\r\n"));
    assert_non_null(
        strstr(body, "Message: Completed 3/3 files with a newline\r\n")); /* no header/line injection */
    assert_non_null(strstr(body, "Files: 3\r\nRecords: 4\r\nErrors: 1\r\n"));
    assert_non_null(strstr(body, "Output folder: /jay/out\r\n"));
    free(msg);
    json_decref(res);
    json_decref(to);

    /* a comma-separated string, an invalid entry reported, not written */
    to = json_string("a@example.com, bad address");
    res = notify_emails(&cfg, to, job);
    assert_int_equal(json_array_size(res), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(res, 1), "error")),
                        "not an email address");
    assert_null(json_object_get(json_array_get(res, 1), "file"));
    json_decref(res);
    json_decref(to);
    json_decref(job);
}

static void test_email_sendmail(void **state)
{
    mail_fx *f = *state;
    char script[256], got[256], sm[512], args[256];
    snprintf(script, sizeof script, "%s/sm.sh", f->tmp);
    snprintf(got, sizeof got, "%s/got.eml", f->tmp);
    snprintf(args, sizeof args, "%s/args", f->tmp);
    char text[1024];
    snprintf(text, sizeof text, "#!/bin/sh\necho \"$@\" > '%s'\ncat > '%s'\n", args, got);
    assert_int_equal(tu_write_str(f->tmp, "sm.sh", text), 0);
    chmod(script, 0755);
    snprintf(sm, sizeof sm, "%s --from-test", script);
    notify_cfg cfg = {.outbox_dir = f->outbox, .sendmail = sm, .mail_from = "ibsol@example.com"};
    json_t *to = json_pack("[s]", "jay@example.com"), *job = finished_job();
    json_t *res = notify_emails(&cfg, to, job);
    json_t *e = json_array_get(res, 0);
    if (!json_is_true(json_object_get(e, "sent")))
        fail_msg("not sent: %s", json_string_value(json_object_get(e, "error")));
    char outbox_file[256];
    snprintf(outbox_file, sizeof outbox_file, "%s/j-42-1.eml", f->outbox);
    char *a = tu_read(outbox_file, NULL), *b = tu_read(got, NULL), *argv = tu_read(args, NULL);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(a, b);
    assert_string_equal(argv, "--from-test -t -i\n");
    free(a);
    free(b);
    free(argv);
    json_decref(res);

    /* a failing command: not sent, its exit status in the error; the outbox file is still there */
    assert_int_equal(tu_write_str(f->tmp, "sm.sh", "#!/bin/sh\ncat > /dev/null\nexit 3\n"), 0);
    res = notify_emails(&cfg, to, job);
    e = json_array_get(res, 0);
    assert_true(json_is_false(json_object_get(e, "sent")));
    char want[512];
    snprintf(want, sizeof want, "'%s' exited with status 3", script);
    assert_string_equal(json_string_value(json_object_get(e, "error")), want);
    assert_string_equal(json_string_value(json_object_get(e, "file")), "j-42-1.eml");
    json_decref(res);

    /* one that exits without reading its input */
    assert_int_equal(tu_write_str(f->tmp, "sm.sh", "#!/bin/sh\nexit 0\n"), 0);
    res = notify_emails(&cfg, to, job);
    e = json_array_get(res, 0);
    (void)e; /* small messages fit the socket buffer: either outcome is fine, only no crash/SIGPIPE */
    json_decref(res);

    /* a command that does not exist */
    cfg.sendmail = "/nonexistent/sendmail";
    res = notify_emails(&cfg, to, job);
    e = json_array_get(res, 0);
    assert_true(json_is_false(json_object_get(e, "sent")));
    assert_non_null(strstr(json_string_value(json_object_get(e, "error")), "/nonexistent/sendmail"));
    json_decref(res);
    json_decref(to);
    json_decref(job);
}

int main(void)
{
    notify_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_webhook_delivered),
        cmocka_unit_test(test_webhook_retried_then_delivered),
        cmocka_unit_test(test_webhook_not_retried_on_4xx),
        cmocka_unit_test(test_webhook_refused),
        cmocka_unit_test(test_webhook_targets),
        cmocka_unit_test(test_webhook_private_refused_at_delivery),
        cmocka_unit_test_setup_teardown(test_email_outbox, mail_setup, mail_teardown),
        cmocka_unit_test_setup_teardown(test_email_sendmail, mail_setup, mail_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    notify_global_cleanup();
    return rc;
}
