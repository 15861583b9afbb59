/* bare_civetweb: the anchor for the gateway benchmarks. The least a civetweb JSON endpoint can do: one handler
 * that checks "Authorization: Bearer <token>", reads the request body if there is one (POST benchmarks), and
 * answers a fixed JSON body (head and body in one mg_write, with Content-Length), civetweb configured like
 * the gateway (tcp_nodelay, keep-alive, 32 threads).
 *
 *   gcc -O2 tests/bench/bare_civetweb.c -lcivetweb -o bare_civetweb
 *   ./bare_civetweb PORT TOKEN BODY_FILE      (serves until SIGTERM/SIGINT)
 */
#include "bare_server.h"

#include <civetweb.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static char *reply_ok, *reply_401;
static size_t reply_ok_len, reply_401_len;
static const char *token;
static char *make_reply(int status, const char *text, const char *body, size_t blen, size_t *out_len)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n\r\n",
                     status, text, blen);
    char *buf = malloc((size_t)n + blen);
    if (!buf) exit(1);
    memcpy(buf, head, (size_t)n);
    memcpy(buf + n, body, blen);
    *out_len = (size_t)n + blen;
    return buf;
}

static int handle(struct mg_connection *conn, void *cbdata)
{
    (void)cbdata;
    char sink[16384];
    while (mg_read(conn, sink, sizeof sink) > 0) {
    }
    const char *h = mg_get_header(conn, "Authorization");
    if (h && strncasecmp(h, "Bearer ", 7) == 0 && strcmp(h + 7, token) == 0) {
        mg_write(conn, reply_ok, reply_ok_len);
        return 200;
    }
    mg_write(conn, reply_401, reply_401_len);
    return 401;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s PORT TOKEN BODY_FILE\n", argv[0]);
        return 2;
    }
    token = argv[2];
    FILE *f = fopen(argv[3], "rb");
    if (!f) {
        perror(argv[3]);
        return 1;
    }
    static char body[1 << 20];
    size_t blen = fread(body, 1, sizeof body, f);
    fclose(f);
    reply_ok = make_reply(200, "OK", body, blen, &reply_ok_len);
    static const char unauth[] = "{\"status\":\"ERROR\",\"code\":\"unauthorized\",\"msg\":\"unknown token\"}";
    reply_401 = make_reply(401, "Unauthorized", unauth, sizeof unauth - 1, &reply_401_len);

    char what[64];
    snprintf(what, sizeof what, "%zu-byte body", blen);
    int rc = bare_serve("bare_civetweb", argv[1], handle, NULL, what);
    free(reply_ok);
    free(reply_401);
    return rc;
}
