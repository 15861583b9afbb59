/* bare_engine: the anchor for run_sync (issue 12, item 3). One process, no daemons, no disk: a civetweb handler
 * that checks "Authorization: Bearer <token>", reads a run_sync-shaped body ({"files": [{"file_name",
 * "file_content" (base64)}], ...}), decodes each file, runs it through the same compiled solution with the same
 * engine library the runner links (ib_run_new / ib_run_file, the same per-record limits, no output folder), and
 * answers the records as run_sync does: {"status":"OK","records":[...],"binary_path","job_id"}. civetweb is
 * configured like the gateway (tcp_nodelay, keep-alive, 32 threads); the handler threads run the engine themselves,
 * at most as many at once as the machine has cores (as the runner's pool, IBSOL_POOL, defaults to: sixteen
 * Poppler runs at once on two cores are slower than two), so all it adds to the engine is HTTP, JSON and base64:
 * what run_sync cannot do without.
 *
 *   tests/bench/run.sh builds it against build-bench's engine library (see there);
 *   ./bare_engine PORT TOKEN FLOWBIN BINARY_PATH      (serves until SIGTERM/SIGINT)
 * FLOWBIN is the installed solution's .ibflowbin file; BINARY_PATH is what replies name it (run_sync's
 * binary_path), so a reply is byte for byte run_sync's apart from job_id and output_file_path's job folder. */
#include "engine_int.h"
#include "ib_base64.h"

#include "bare_server.h"
#include "ib_doc.h"
#include "ib_engine.h"
#include "ib_flow.h"

#include <civetweb.h>
#include <jansson.h>
#include <openssl/rand.h>

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_BODY (64LL << 20) /* the gateway's default IBSOL_MAX_BODY */

static const char *token, *binary_path;
static ib_flow *flow;
static sem_t engine_slots; /* engine runs at once: the cores */

static void reply(struct mg_connection *conn, int status, const char *text, const char *body, size_t blen)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n\r\n",
                     status, text, blen);
    /* one write for head and body, as the gateway does (two segments stall on delayed ACKs) */
    char *buf = malloc((size_t)n + blen);
    if (!buf) return;
    memcpy(buf, head, (size_t)n);
    memcpy(buf + n, body, blen);
    mg_write(conn, buf, (size_t)n + blen);
    free(buf);
}

static int fail(struct mg_connection *conn, int status, const char *text, const char *msg)
{
    json_t *b = json_pack("{s:s, s:s}", "status", "ERROR", "msg", msg);
    char *s = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    if (s) reply(conn, status, text, s, strlen(s));
    free(s);
    return status;
}

static char *read_body(struct mg_connection *conn, size_t *len)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (ri->content_length > MAX_BODY) return NULL;
    size_t cap = ri->content_length > 0 ? (size_t)ri->content_length : 4096, used = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        if (used == cap) {
            if ((long long)cap > MAX_BODY) break;
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
        int n = mg_read(conn, buf + used, cap - used);
        if (n <= 0) {
            buf[used] = '\0';
            *len = used;
            return buf;
        }
        used += (size_t)n;
    }
    free(buf);
    return NULL;
}

static int handle(struct mg_connection *conn, void *cbdata)
{
    (void)cbdata;
    size_t blen = 0;
    char *body = read_body(conn, &blen);
    const char *h = mg_get_header(conn, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0 || strcmp(h + 7, token) != 0) {
        free(body);
        return fail(conn, 401, "Unauthorized", "unknown token");
    }
    if (!body) return fail(conn, 413, "Payload Too Large", "request body too large or unreadable");
    json_error_t jerr;
    json_t *args = json_loadb(body, blen, JSON_REJECT_DUPLICATES, &jerr);
    free(body);
    json_t *files = json_object_get(args, "files");
    if (!json_is_array(files) || json_array_size(files) == 0) {
        json_decref(args);
        return fail(conn, 400, "Bad Request", "'files' must be a non-empty list");
    }
    unsigned char raw[16];
    char job_id[33], prefix[128];
    if (RAND_bytes(raw, sizeof raw) != 1) memset(raw, 0, sizeof raw);
    for (size_t i = 0; i < sizeof raw; i++) snprintf(job_id + 2 * i, 3, "%02x", raw[i]);
    snprintf(prefix, sizeof prefix, "/admin/.ibsol/run_sync/%s", job_id);
    /* the runner's options (runner/work.c) with its default limits, and no output folder */
    ib_engine_opts opts = {.out_dirfd = -1,
                           .out_prefix = prefix,
                           .binary_path = binary_path,
                           .formula_max_bytes = IB_ENGINE_FORMULA_MAX_BYTES,
                           .formula_max_ms = IB_ENGINE_FORMULA_MAX_MS,
                           .record_max_output = IB_ENGINE_RECORD_MAX_OUTPUT};
    json_t *records = json_array();
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f)
    {
        const char *name = json_string_value(json_object_get(f, "file_name"));
        json_t *content = json_object_get(f, "file_content");
        if (!name || !json_is_string(content)) {
            json_decref(records);
            json_decref(args);
            return fail(conn, 400, "Bad Request", "each file needs file_name and file_content");
        }
        size_t len = 0;
        unsigned char *bytes = ib_base64_decode(json_string_value(content), json_string_length(content), &len);
        sem_wait(&engine_slots);
        ib_run *run = ib_run_new(flow, &opts);
        char base[256]; /* the output name the runner gives file i (runner/work.c) */
        ib_out_job_base(name, base, sizeof base);
        ib_run_set_file(run, (uint32_t)i, base);
        json_t *recs = NULL;
        char err[512];
        if (bytes && len)
            ib_run_file(run, name, bytes, len, &recs, err, sizeof err);
        else
            ib_run_file_error(run, name, bytes ? "empty file" : "file_content is not valid base64", &recs, err,
                              sizeof err);
        ib_run_free(run);
        sem_post(&engine_slots);
        free(bytes);
        json_array_extend(records, recs);
        json_decref(recs);
    }
    json_decref(args);
    json_t *out = json_pack("{s:s, s:o, s:s, s:s}", "status", "OK", "records", records, "binary_path", binary_path,
                            "job_id", job_id);
    char *text = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    if (!text) return fail(conn, 500, "Internal Server Error", "reply could not be encoded");
    reply(conn, 200, "OK", text, strlen(text));
    free(text);
    return 200;
}

/* civetweb's threads run the engine: each releases its cached OCR engine when it ends. */
static void thread_exit(const struct mg_context *ctx, int thread_type, void *thread_pointer)
{
    (void)ctx, (void)thread_type, (void)thread_pointer;
    ib_doc_thread_cleanup();
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s PORT TOKEN FLOWBIN BINARY_PATH\n", argv[0]);
        return 2;
    }
    token = argv[2];
    binary_path = argv[4];
    FILE *fp = fopen(argv[3], "rb");
    if (!fp) {
        perror(argv[3]);
        return 1;
    }
    static char bin[16 << 20];
    size_t len = fread(bin, 1, sizeof bin, fp);
    fclose(fp);
    char err[512];
    if (!(flow = ib_flow_decode(bin, len, err, sizeof err))) {
        fprintf(stderr, "bare_engine: %s: %s\n", argv[3], err);
        return 1;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    sem_init(&engine_slots, 0, cores > 0 ? (unsigned)cores : 1);
    char what[600];
    snprintf(what, sizeof what, "%.500s, %ld engine runs at once", argv[3], cores);
    int rc = bare_serve("bare_engine", argv[1], handle, thread_exit, what);
    ib_flow_free(flow);
    sem_destroy(&engine_slots);
    return rc;
}
