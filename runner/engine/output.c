/* output: the engine's files: .ibdoc documents (pages, lines, words with boxes), safe output names for user
 * file names, and atomic JSON writes confined below the run's output folder. */
#include "engine_int.h"
#include "eval_int.h"
#include "ib_fs.h"
#include "ib_path.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void ib_out_safe_name(const char *file_name, char *out, size_t outsz)
{
    /* the last path segment only; separators, control characters and a leading dot become '_' */
    const char *base = file_name ? file_name : "";
    for (const char *p = base; *p; p++)
        if (*p == '/' || *p == '\\') base = p + 1;
    size_t o = 0, max = outsz - 1 < 200 ? outsz - 1 : 200;
    const char *p = base;
    for (; *p && o < max; p++) {
        unsigned char c = (unsigned char)*p;
        out[o] = (c < 0x20 || c == 0x7f || (o == 0 && c == '.')) ? '_' : (char)c;
        o++;
    }
    if (*p) { /* cut: drop a UTF-8 sequence the limit split (and the whole last character with it) */
        while (o > 0 && ((unsigned char)out[o - 1] & 0xC0) == 0x80)
            o--;
        if (o > 0 && (unsigned char)out[o - 1] >= 0xC0) o--;
    }
    if (o == 0) {
        snprintf(out, outsz, "file");
        return;
    }
    out[o] = '\0';
}

/* ---- output names of a job's inputs ----
 * A job's inputs are processed concurrently, each by its own run, so each one's output name is decided from
 * what the job knows up front (runner/ops.c), the same way on every runner: the readable name when no other
 * input of the job has the same one, else the readable name and "~<file index>". A readable name that ends
 * in "~<digits>" itself is marked too, so it can never be the marked name of another input. */

void ib_out_job_base(const char *rel, char *out, size_t outsz)
{
    char flat[1024];
    size_t n = 0;
    const char *p = rel ? rel : "";
    for (; *p && n + 3 < sizeof flat; p++) {
        if (*p == '/') {
            flat[n++] = '_';
            flat[n++] = '_';
        } else {
            flat[n++] = *p;
        }
    }
    flat[n] = '\0';
    /* a name longer than flat is cut by ib_out_safe_name's 200 bytes anyway: equal prefixes are counted as the
     * same name by the caller, and marked */
    ib_out_safe_name(flat, out, outsz);
}

int ib_out_base_marked(const char *base)
{
    const char *tilde = strrchr(base, '~');
    if (!tilde || !tilde[1]) return 0;
    for (const char *p = tilde + 1; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    return 1;
}

void ib_out_base_mark(char *base, size_t outsz, size_t index)
{
    char tail[32];
    int t = snprintf(tail, sizeof tail, "~%zu", index);
    size_t room = outsz - 1 - (size_t)t, len = strlen(base);
    if (len > room) { /* cut on a character boundary (never happens with a 200-byte base in 256 bytes) */
        len = room;
        while (len > 0 && ((unsigned char)base[len] & 0xC0) == 0x80)
            len--;
    }
    memcpy(base + len, tail, (size_t)t + 1);
}

/* ---- writing an output file ---- */

typedef struct out_buf {
    int fd;
    int failed; /* a write failed: errno is kept, the rest is skipped */
    json_dump_callback_t sink; /* when set, the bytes go to it instead of fd */
    void *sink_data;
    ib_out_body *keep; /* when set, what goes out from data + keep_from on is kept there too (out_keep_*) */
    size_t keep_from;
    size_t used;
    char data[64 * 1024];
} out_buf;

void ib_out_body_free(ib_out_body *body)
{
    free(body->bytes);
    memset(body, 0, sizeof *body);
}

/* Appends to the body being kept; past IB_OUT_BODY_MAX it gives up (too_big) and keeps nothing. */
static void keep_bytes(out_buf *b, const char *s, size_t n)
{
    ib_out_body *k = b->keep;
    if (k->too_big || n == 0) return;
    if (k->len + n > IB_OUT_BODY_MAX) {
        ib_out_body_free(k);
        k->too_big = 1;
        return;
    }
    if (k->len + n > k->cap) {
        size_t cap = k->cap ? k->cap : 64 * 1024;
        while (cap < k->len + n) cap *= 2;
        char *bigger = realloc(k->bytes, cap);
        if (!bigger) {
            ib_out_body_free(k);
            k->too_big = 1;
            return;
        }
        k->bytes = bigger, k->cap = cap;
    }
    memcpy(k->bytes + k->len, s, n);
    k->len += n;
}

static int out_write(out_buf *b, const char *s, size_t n)
{
    return b->sink ? b->sink(s, n, b->sink_data) : ib_write_all(b->fd, s, n);
}

static int out_flush(out_buf *b)
{
    if (b->keep) keep_bytes(b, b->data + b->keep_from, b->used - b->keep_from);
    b->keep_from = 0;
    int rc = b->used ? out_write(b, b->data, b->used) : 0;
    b->used = 0;
    return rc;
}

static void put(out_buf *b, const char *s, size_t n)
{
    if (b->failed) return;
    if (b->used + n > sizeof b->data) {
        if (out_flush(b) != 0 || (n > sizeof b->data && out_write(b, s, n) != 0)) {
            b->failed = 1;
            return;
        }
        if (n > sizeof b->data) {
            if (b->keep) keep_bytes(b, s, n);
            return;
        }
    }
    memcpy(b->data + b->used, s, n);
    b->used += n;
}

/* Keeps what is put between these two in body (from a fresh one): ready when whole and nothing failed. */
static void out_keep_start(out_buf *b, ib_out_body *body)
{
    ib_out_body_free(body);
    b->keep = body;
    b->keep_from = b->used;
}

static void out_keep_end(out_buf *b)
{
    ib_out_body *k = b->keep;
    keep_bytes(b, b->data + b->keep_from, b->used - b->keep_from);
    b->keep = NULL;
    if (k->too_big) return; /* freed already, and not tried again */
    if (b->failed)
        ib_out_body_free(k); /* tried again by the next step */
    else
        k->ready = 1;
}

#define PUT_LIT(b, lit) put((b), "" lit, sizeof(lit) - 1) /* "" lit: a string literal only */

/* Writes out_dirfd/folder/name (folder created, confined below out_dirfd) with what emit puts into the buffer.
 * Streamed to a new (unnamed or temporary) file through a 64 KiB buffer: never held whole as text (an .ibdoc
 * of a long document is tens of MB), and not one write(2) per JSON token either. Not fsync'ed here: the runner
 * syncs the output folder once, before it declares the job done. */
static int write_out(int out_dirfd, const char *folder, const char *name, void (*emit)(out_buf *, const void *),
                     const void *arg, char *err, size_t errsz)
{
    int dfd = out_dirfd;
    if (folder) {
        /* The step's folder exists for every file of a job but its first: opened straight away that is one
         * call, where making sure of it first is five (a batch writes two .ibdoc files per input). */
        dfd = ib_openat_beneath(out_dirfd, folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
        if (dfd < 0 && errno == ENOENT && ib_mkdirs_at(out_dirfd, folder, 0755) == 0)
            dfd = ib_openat_beneath(out_dirfd, folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
        if (dfd < 0) {
            snprintf(err, errsz, "output folder %s: %s", folder, strerror(errno));
            return -1;
        }
    }
    char tmp[320];
    out_buf ob; /* 64 KiB on the worker's stack, not zeroed: only `used` bytes are ever read */
    ob.fd = ib_open_new(dfd, name, tmp, sizeof tmp);
    ob.used = 0;
    ob.failed = 0;
    ob.sink = NULL;
    ob.keep = NULL;
    ob.keep_from = 0;
    int rv = -1;
    if (ob.fd < 0) {
        snprintf(err, errsz, "%s%s%s: %s", folder ? folder : "", folder ? "/" : "", name, strerror(errno));
    } else {
        emit(&ob, arg);
        if (ob.failed || out_flush(&ob) != 0) {
            snprintf(err, errsz, "%s: cannot be written: %s", name, strerror(errno));
            ib_discard_tmp(dfd, ob.fd, tmp);
        } else if (ib_replace_tmp(dfd, ob.fd, tmp, name) < 0) {
            snprintf(err, errsz, "%s%s%s: %s", folder ? folder : "", folder ? "/" : "", name, strerror(errno));
        } else {
            rv = 0;
        }
    }
    if (dfd != out_dirfd) close(dfd);
    return rv;
}

static int put_json(out_buf *b, const json_t *j, size_t flags, unsigned depth);

static void emit_json(out_buf *b, const void *j)
{
    if (put_json(b, j, IB_OUT_JSON_FLAGS, 0) != 0) b->failed = 1;
}

int ib_out_write_json(int out_dirfd, const char *folder, const char *name, const json_t *j, char *err,
                      size_t errsz)
{
    return write_out(out_dirfd, folder, name, emit_json, j, err, errsz);
}

/* ---- the .ibdoc writer ----
 * An .ibdoc is most of what a run writes, one per record and step. It is written straight from the document,
 * not built as a jansson tree and dumped: that cost an allocation per word, box and number and a snprintf per
 * number, more than the rest of the run. The bytes are the ones jansson writes with IB_OUT_JSON_FLAGS (tests/
 * unit/engine/test_output.c compares them with jansson's on real documents). */

static void put_int(out_buf *b, long long v)
{
    char tmp[24], *p = tmp + sizeof tmp;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--p = '-';
    put(b, p, (size_t)(tmp + sizeof tmp - p));
}

/* A real as jansson writes it with `prec` significant digits (1 to 17): "%.<prec>g", ".0" added when it would
 * read as an integer, the exponent without '+' or leading zeros. Boxes and amounts have at most two decimals:
 * they print without snprintf (most of a line-item record's output is such numbers, and snprintf of a double
 * cost more than the rest of writing it). The shortcut is exact: when v is the double nearest to a decimal D
 * of at most two decimals and at most `prec` (<= DBL_DIG, 15) significant digits, "%.<prec>g" of v prints D,
 * without trailing zeros and in plain notation (its exponent is between -2 and prec - 3). */
static void put_real_p(out_buf *b, double v, int prec)
{
    if (!isfinite(v)) { /* jansson has no such reals (json_real refuses them) */
        PUT_LIT(b, "null");
        return;
    }
    static const double pow10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    double cents = round(v * 100.0);
    if (prec >= 3 && prec <= 15 && fabs(cents) < pow10[prec] && cents / 100.0 == v) {
        long long c = (long long)cents;
        unsigned long long u = c < 0 ? 0ull - (unsigned long long)c : (unsigned long long)c;
        if (c < 0 || (c == 0 && signbit(v))) PUT_LIT(b, "-");
        put_int(b, (long long)(u / 100));
        unsigned frac = (unsigned)(u % 100);
        char f[3] = {'.', (char)('0' + frac / 10), (char)('0' + frac % 10)};
        put(b, f, frac == 0 ? 1 : frac % 10 == 0 ? 2 : 3);
        if (frac == 0) PUT_LIT(b, "0");
        return;
    }
    char tmp[40];
    int n = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
    if (n <= 0 || (size_t)n >= sizeof tmp - 3) {
        PUT_LIT(b, "null");
        return;
    }
    char *e = strchr(tmp, 'e');
    if (!e && !strchr(tmp, '.')) {
        memcpy(tmp + n, ".0", 3);
        n += 2;
    } else if (e) {
        char *from = e + 1, *to = e + 1;
        if (*from == '+') from++;
        else if (*from == '-') from++, to++;
        while (*from == '0' && from[1]) from++;
        memmove(to, from, strlen(from) + 1);
        n = (int)strlen(tmp);
    }
    put(b, tmp, (size_t)n);
}

/* Valid UTF-8 as jansson accepts it (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF). */
static int utf8_valid(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) n = 2, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF) n = 3, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4) n = 4, cp = c & 0x07;
        else return 0;
        if (len - i < n) return 0;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
        i += n;
    }
    return 1;
}

/* s escaped for a JSON string (without its quotes); text that is not valid UTF-8 is repaired as ib_json_text
 * does (U+FFFD per bad byte). */
static void put_escaped_valid(out_buf *b, const char *s, size_t len)
{
    size_t from = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        put(b, s + from, i - from);
        from = i + 1;
        switch (c) {
        case '"': PUT_LIT(b, "\\\""); break;
        case '\\': PUT_LIT(b, "\\\\"); break;
        case '\b': PUT_LIT(b, "\\b"); break;
        case '\f': PUT_LIT(b, "\\f"); break;
        case '\n': PUT_LIT(b, "\\n"); break;
        case '\r': PUT_LIT(b, "\\r"); break;
        case '\t': PUT_LIT(b, "\\t"); break;
        default: {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04X", c);
            put(b, esc, 6);
        }
        }
    }
    put(b, s + from, len - from);
}

static void put_escaped(out_buf *b, const char *s, size_t len)
{
    json_t *repaired = NULL;
    if (!utf8_valid((const unsigned char *)s, len)) {
        repaired = ib_json_text(s, len);
        s = json_string_value(repaired);
        len = json_string_length(repaired);
    }
    put_escaped_valid(b, s, len);
    json_decref(repaired);
}

static void put_string(out_buf *b, const char *s, size_t len)
{
    PUT_LIT(b, "\"");
    put_escaped(b, s, len);
    PUT_LIT(b, "\"");
}

static void put_real(out_buf *b, double v)
{
    put_real_p(b, v, 7);
}

/* ---- JSON as json_dump_callback writes it ----
 * The same bytes as jansson 2.14 for the flags below (tests/unit/engine/test_table.c compares them on varied
 * trees), without a callback per token and without snprintf for the reals of boxes and amounts: a line-item
 * record is thousands of such numbers. */

#define JSON_OWN_FLAGS (JSON_MAX_INDENT | JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(31))
#define JSON_OWN_MAX_DEPTH 2048 /* jansson's own nesting limit for a dump */

/* A comma (when `comma`), then the line break and indent of depth or, without indent, the space jansson puts
 * between items; one put for what is most of an indented dump's tokens. */
static void put_indent(out_buf *b, size_t flags, unsigned depth, int comma)
{
    /* ",\n" and 64 spaces */
    static const char sep[] = ",\n                                                                ";
    size_t n = (size_t)(flags & JSON_MAX_INDENT) * depth;
    if (flags & JSON_MAX_INDENT) {
        size_t k = n < sizeof sep - 3 ? n : sizeof sep - 3;
        put(b, comma ? sep : sep + 1, (comma ? 2 : 1) + k);
        for (n -= k; n > 0; n -= k) {
            k = n < sizeof sep - 3 ? n : sizeof sep - 3;
            put(b, sep + 2, k);
        }
    } else if (comma) {
        put(b, ", ", flags & JSON_COMPACT ? 1 : 2);
    }
}

/* After an item of a container at depth: a comma and the next item's indent, or the closing bracket's. */
static void put_after_item(out_buf *b, size_t flags, unsigned depth, int more)
{
    if (more)
        put_indent(b, flags, depth + 1, 1);
    else
        put_indent(b, flags, depth, 0);
}

static int put_json(out_buf *b, const json_t *j, size_t flags, unsigned depth)
{
    if (depth > JSON_OWN_MAX_DEPTH) return -1;
    switch (json_typeof(j)) {
    case JSON_NULL: PUT_LIT(b, "null"); return 0;
    case JSON_TRUE: PUT_LIT(b, "true"); return 0;
    case JSON_FALSE: PUT_LIT(b, "false"); return 0;
    case JSON_INTEGER: put_int(b, (long long)json_integer_value(j)); return 0;
    case JSON_REAL: {
        int prec = (int)((flags >> 11) & 0x1F);
        put_real_p(b, json_real_value(j), prec ? prec : 17);
        return 0;
    }
    case JSON_STRING:
        if (!utf8_valid((const unsigned char *)json_string_value(j), json_string_length(j)))
            return -1; /* jansson refuses to write it */
        PUT_LIT(b, "\"");
        put_escaped_valid(b, json_string_value(j), json_string_length(j));
        PUT_LIT(b, "\"");
        return 0;
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        if (n == 0) {
            PUT_LIT(b, "[]");
            return 0;
        }
        PUT_LIT(b, "[");
        put_indent(b, flags, depth + 1, 0);
        for (size_t i = 0; i < n; i++) {
            if (put_json(b, json_array_get(j, i), flags, depth + 1) != 0) return -1;
            put_after_item(b, flags, depth, i + 1 < n);
        }
        PUT_LIT(b, "]");
        return 0;
    }
    case JSON_OBJECT: {
        void *it = json_object_iter((json_t *)j);
        if (!it) {
            PUT_LIT(b, "{}");
            return 0;
        }
        PUT_LIT(b, "{");
        put_indent(b, flags, depth + 1, 0);
        while (it) {
            const char *key = json_object_iter_key(it);
            size_t klen = json_object_iter_key_len(it);
            if (!utf8_valid((const unsigned char *)key, klen)) return -1;
            PUT_LIT(b, "\"");
            put_escaped_valid(b, key, klen);
            PUT_LIT(b, "\"");
            if (flags & JSON_COMPACT)
                PUT_LIT(b, ":");
            else
                PUT_LIT(b, ": ");
            if (put_json(b, json_object_iter_value(it), flags, depth + 1) != 0) return -1;
            it = json_object_iter_next((json_t *)j, it);
            put_after_item(b, flags, depth, it != NULL);
        }
        PUT_LIT(b, "}");
        return 0;
    }
    }
    return -1;
}

int ib_out_json_dump(const json_t *j, size_t flags, unsigned depth, json_dump_callback_t cb, void *data)
{
    if ((flags & ~(size_t)JSON_OWN_FLAGS) || !j) return depth ? -1 : json_dump_callback(j, cb, data, flags);
    if (!json_is_object(j) && !json_is_array(j)) return -1; /* as jansson without JSON_ENCODE_ANY */
    out_buf b; /* 64 KiB on the stack, as write_out's, not zeroed: only `used` bytes are read */
    b.fd = -1, b.failed = 0, b.sink = cb, b.sink_data = data, b.used = 0, b.keep = NULL, b.keep_from = 0;
    int rc = put_json(&b, j, flags, depth);
    if (rc == 0 && (b.failed || out_flush(&b) != 0)) rc = -1;
    return rc;
}

static void put_box(out_buf *b, const ib_bbox *box)
{
    /* two decimals: points to 1/100, and plain-text cells stay integers */
    const double v[4] = {box->x0, box->y0, box->x1, box->y1};
    for (int k = 0; k < 4; k++) {
        put(b, k ? "," : "[", 1);
        put_real(b, round(v[k] * 100) / 100);
    }
    PUT_LIT(b, "]");
}

static void put_page(out_buf *b, const ib_page *pg, uint32_t number)
{
    PUT_LIT(b, "{\"page\":");
    put_int(b, number);
    PUT_LIT(b, ",\"width\":");
    put_real(b, pg->width);
    PUT_LIT(b, ",\"height\":");
    put_real(b, pg->height);
    PUT_LIT(b, ",\"lines\":[");
    for (uint32_t l = 0; l < pg->nlines; l++) {
        const ib_line *ln = &pg->lines[l];
        if (l) PUT_LIT(b, ",");
        PUT_LIT(b, "{\"text\":\"");
        /* the line's text: its words joined by one space (each word escaped on its own) */
        int first = 1;
        for (uint32_t k = 0; k < ln->nwords; k++) {
            if (ln->words[k] >= pg->nwords) continue;
            const char *t = pg->words[ln->words[k]].text;
            if (!first) PUT_LIT(b, " ");
            first = 0;
            put_escaped(b, t, strlen(t));
        }
        PUT_LIT(b, "\",\"bbox\":");
        put_box(b, &ln->box);
        PUT_LIT(b, ",\"words\":[");
        first = 1;
        for (uint32_t k = 0; k < ln->nwords; k++) {
            if (ln->words[k] >= pg->nwords) continue;
            if (!first) PUT_LIT(b, ",");
            first = 0;
            put_int(b, ln->words[k]);
        }
        PUT_LIT(b, "]}");
    }
    PUT_LIT(b, "],\"words\":[");
    for (uint32_t w = 0; w < pg->nwords; w++) {
        const ib_word *wd = &pg->words[w];
        if (w) PUT_LIT(b, ",");
        PUT_LIT(b, "{\"text\":");
        put_string(b, wd->text, strlen(wd->text));
        PUT_LIT(b, ",\"bbox\":");
        put_box(b, &wd->box);
        PUT_LIT(b, ",\"line\":");
        put_int(b, wd->line);
        PUT_LIT(b, ",\"block\":");
        put_int(b, wd->block);
        if (wd->conf >= 0) {
            PUT_LIT(b, ",\"conf\":");
            put_real(b, round(wd->conf * 10) / 10);
        }
        PUT_LIT(b, "}");
    }
    PUT_LIT(b, "]}");
}

static void put_member_json(out_buf *b, const char *key_lit, size_t key_len, const json_t *v)
{
    if (!v) return;
    put(b, key_lit, key_len);
    emit_json(b, v);
}

static void emit_ibdoc(out_buf *b, const void *arg)
{
    const ib_out_ibdoc *d = arg;
    PUT_LIT(b, "{\"file_name\":");
    put_string(b, d->file_name, strlen(d->file_name));
    PUT_LIT(b, ",\"file_index\":");
    put_int(b, d->file_index);
    PUT_LIT(b, ",\"record_index\":");
    put_int(b, (long long)d->record_index);
    PUT_LIT(b, ",\"step\":");
    put_string(b, d->step, strlen(d->step));
    if (d->body && d->body->ready) {
        put(b, d->body->bytes, d->body->len);
    } else {
        int keep = d->body && !d->body->too_big;
        if (keep) out_keep_start(b, d->body);
        PUT_LIT(b, ",\"text\":");
        if (d->layout && d->layout->text)
            put_string(b, d->layout->text, d->layout->len);
        else
            PUT_LIT(b, "\"\"");
        PUT_LIT(b, ",\"pages\":[");
        for (uint32_t p = 0; d->doc && p < d->doc->npages; p++) {
            if (p) PUT_LIT(b, ",");
            put_page(b, &d->doc->pages[p], p + 1);
        }
        PUT_LIT(b, "]");
        if (keep) out_keep_end(b);
    }
    if (d->cls) {
        PUT_LIT(b, ",\"class\":");
        put_string(b, d->cls, strlen(d->cls));
    }
    put_member_json(b, ",\"results\":", sizeof ",\"results\":" - 1, d->results);
    put_member_json(b, ",\"validation\":", sizeof ",\"validation\":" - 1, d->validation);
    PUT_LIT(b, "}");
}

int ib_out_write_ibdoc(int out_dirfd, const char *folder, const char *name, const ib_out_ibdoc *d, char *err,
                       size_t errsz)
{
    return write_out(out_dirfd, folder, name, emit_ibdoc, d, err, errsz);
}
