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

static json_t *box_json(const ib_bbox *b)
{
    /* two decimals: points to 1/100, and plain-text cells stay integers */
    return json_pack("[ffff]", round(b->x0 * 100) / 100, round(b->y0 * 100) / 100, round(b->x1 * 100) / 100,
                     round(b->y1 * 100) / 100);
}

json_t *ib_out_doc_json(const ib_doc *doc, const ib_text *layout)
{
    json_t *pages = json_array();
    for (uint32_t p = 0; doc && p < doc->npages; p++) {
        const ib_page *pg = &doc->pages[p];
        json_t *words = json_array(), *lines = json_array();
        for (uint32_t w = 0; w < pg->nwords; w++) {
            const ib_word *wd = &pg->words[w];
            json_t *jw =
                json_pack("{s:o,s:o,s:i,s:i}", "text", ib_json_text(wd->text, strlen(wd->text)), "bbox",
                          box_json(&wd->box), "line", (json_int_t)wd->line, "block", (json_int_t)wd->block);
            if (wd->conf >= 0) json_object_set_new(jw, "conf", json_real(round(wd->conf * 10) / 10));
            json_array_append_new(words, jw);
        }
        for (uint32_t l = 0; l < pg->nlines; l++) {
            const ib_line *ln = &pg->lines[l];
            json_t *idx = json_array();
            size_t cap = 64, n = 0;
            char *text = malloc(cap);
            if (!text) abort();
            for (uint32_t k = 0; k < ln->nwords; k++) {
                if (ln->words[k] >= pg->nwords) continue;
                json_array_append_new(idx, json_integer(ln->words[k]));
                const char *t = pg->words[ln->words[k]].text;
                size_t tl = strlen(t);
                while (n + tl + 2 > cap)
                    cap *= 2;
                text = realloc(text, cap);
                if (!text) abort();
                if (n) text[n++] = ' ';
                memcpy(text + n, t, tl);
                n += tl;
            }
            json_array_append_new(lines, json_pack("{s:o,s:o,s:o}", "text", ib_json_text(text, n), "bbox",
                                                   box_json(&ln->box), "words", idx));
            free(text);
        }
        json_array_append_new(pages,
                              json_pack("{s:i,s:f,s:f,s:o,s:o}", "page", (json_int_t)p + 1, "width",
                                        pg->width, "height", pg->height, "lines", lines, "words", words));
    }
    json_t *j = json_object();
    json_object_set_new(j, "text", layout ? ib_json_text(layout->text, layout->len) : json_string(""));
    json_object_set_new(j, "pages", pages);
    return j;
}

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

typedef struct out_buf {
    int fd;
    size_t used;
    char data[64 * 1024];
} out_buf;

static int out_flush(out_buf *b)
{
    int rc = b->used ? ib_write_all(b->fd, b->data, b->used) : 0;
    b->used = 0;
    return rc;
}

static int buffered(const char *buffer, size_t size, void *data)
{
    out_buf *b = data;
    if (b->used + size > sizeof b->data && out_flush(b) != 0) return -1;
    if (size > sizeof b->data) return ib_write_all(b->fd, buffer, size);
    memcpy(b->data + b->used, buffer, size);
    b->used += size;
    return 0;
}

int ib_out_write_json(int out_dirfd, const char *folder, const char *name, const json_t *j, char *err,
                      size_t errsz)
{
    int dfd = out_dirfd;
    if (folder) {
        if (ib_mkdirs_at(out_dirfd, folder, 0755) < 0 ||
            (dfd = ib_openat_beneath(out_dirfd, folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0)) < 0) {
            snprintf(err, errsz, "output folder %s: %s", folder, strerror(errno));
            return -1;
        }
    }
    /* Streamed to a temporary file through a 64 KiB buffer: never held whole as text (an .ibdoc of a long
     * document is tens of MB), and not one write(2) per JSON token either. Not fsync'ed here: the runner syncs
     * the output folder once, before it declares the job done. */
    char tmp[320];
    out_buf ob = {.fd = ib_open_tmp(dfd, name, tmp, sizeof tmp)};
    int rv = -1;
    if (ob.fd < 0)
        snprintf(err, errsz, "%s%s%s: %s", folder ? folder : "", folder ? "/" : "", name, strerror(errno));
    else if (json_dump_callback(j, buffered, &ob, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(7)) != 0 ||
             out_flush(&ob) != 0) {
        snprintf(err, errsz, "%s: cannot be written: %s", name, strerror(errno));
        ib_discard_tmp(dfd, ob.fd, tmp);
    } else if (ib_replace_tmp(dfd, ob.fd, tmp, name) < 0)
        snprintf(err, errsz, "%s%s%s: %s", folder ? folder : "", folder ? "/" : "", name, strerror(errno));
    else
        rv = 0;
    if (dfd != out_dirfd) close(dfd);
    return rv;
}
