/* formula_ref: the formula reference of docs/solution-format.md, made from the engine's function table
 * (common/flow/ib_formula.c: name, signature, arity and one-line doc of every function), so the document can
 * never describe functions the engine does not have, or miss one it has.
 *   formula_ref                 prints the reference (Markdown) to stdout
 *   formula_ref --check FILE    exit 0 when FILE holds exactly that reference between its markers, else 1
 *                               with the first difference and the command that regenerates it
 *   formula_ref --write FILE    replaces what is between the markers of FILE with it (atomically)
 * The markers are the lines BEGIN_MARK and END_MARK below; the test `formula_reference` runs --check. */
#include "ib_formula.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BEGIN_MARK "<!-- formula-reference:begin -->"
#define END_MARK "<!-- formula-reference:end -->"
#define MAX_DOC (1u << 20) /* the document is a few dozen KiB */

/* Appends to a growing buffer; aborts when memory runs out (a tool, not a daemon). */
typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* A table cell: '|' would end the cell early, so it is escaped as Markdown allows. */
static void sb_cell(sbuf *b, const char *s)
{
    for (; *s; s++)
        if (*s == '|')
            sb_str(b, "\\|");
        else
            sb_add(b, s, 1);
}

/* The reference: one table row per function, in the table's order (families together). */
static void reference(sbuf *b)
{
    sb_str(b, "| function | arguments | what it gives |\n|---|---|---|\n");
    for (int i = 0; i < IB_FN_COUNT_; i++) {
        const ib_func_info *f = ib_func_get((ib_fn)i);
        char arity[48];
        if (f->max_args == IB_ARGS_ANY)
            snprintf(arity, sizeof arity, "%u or more", f->min_args);
        else if (f->min_args == f->max_args)
            snprintf(arity, sizeof arity, "%u", f->min_args);
        else
            snprintf(arity, sizeof arity, "%u to %u", f->min_args, f->max_args);
        sb_str(b, "| `");
        sb_cell(b, f->signature);
        sb_str(b, "` | ");
        sb_str(b, arity);
        sb_str(b, " | ");
        sb_cell(b, f->doc ? f->doc : "");
        if (f->regex_arg) {
            char note[96];
            snprintf(note, sizeof note,
                     " Argument %u is a regular expression, checked when the flow compiles.", f->regex_arg);
            sb_str(b, note);
        }
        sb_str(b, " |\n");
    }
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "formula_ref: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(MAX_DOC + 1);
    if (!buf) abort();
    size_t n = fread(buf, 1, MAX_DOC + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > MAX_DOC) {
        fprintf(stderr, "formula_ref: %s: %s\n", path, bad ? "read error" : "larger than 1 MiB");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* The span between the marker lines of doc: [*from, *to) is what the reference replaces. -1 when a marker is
 * missing or out of order. */
static int find_block(const char *path, const char *doc, size_t *from, size_t *to)
{
    const char *b = strstr(doc, BEGIN_MARK "\n");
    const char *e = b ? strstr(b, "\n" END_MARK) : NULL;
    if (!b || !e) {
        fprintf(stderr, "formula_ref: %s: no '%s' line followed by a '%s' line\n", path, BEGIN_MARK,
                END_MARK);
        return -1;
    }
    *from = (size_t)(b - doc) + strlen(BEGIN_MARK "\n");
    *to = (size_t)(e - doc) + 1;
    return 0;
}

static int check(const char *path, const char *self)
{
    size_t len, from, to;
    char *doc = read_file(path, &len);
    if (!doc) return 2;
    int rc = 2;
    if (find_block(path, doc, &from, &to) == 0) {
        sbuf ref = {0};
        reference(&ref);
        if (to - from == ref.len && memcmp(doc + from, ref.p, ref.len) == 0) {
            rc = 0;
        } else {
            /* the first line that differs, so the message says what changed (a negative precision prints a
             * whole string: the note that one side ended) */
            const char *d = doc + from, *de = doc + to, *r = ref.p, *re = ref.p + ref.len;
            size_t line = 1;
            for (;;) {
                size_t dl = d < de ? strcspn(d, "\n") : 0, rl = r < re ? strcspn(r, "\n") : 0;
                if (d >= de || r >= re || dl != rl || memcmp(d, r, dl) != 0) {
                    fprintf(stderr,
                            "formula_ref: %s: the formula reference differs from the function table "
                            "(common/flow/ib_formula.c), at line %zu of the block:\n"
                            "  document: %.*s\n  table:    %.*s\n"
                            "regenerate it with: %s --write %s\n",
                            path, line, d < de ? (int)dl : -1, d < de ? d : "(the block ends)",
                            r < re ? (int)rl : -1, r < re ? r : "(the reference ends)", self, path);
                    break;
                }
                d += dl + 1, r += rl + 1, line++;
            }
            rc = 1;
        }
        free(ref.p);
    }
    free(doc);
    return rc;
}

static int write_back(const char *path)
{
    size_t len, from, to;
    char *doc = read_file(path, &len);
    if (!doc) return 2;
    int rc = 2;
    if (find_block(path, doc, &from, &to) == 0) {
        sbuf out = {0}, ref = {0};
        reference(&ref);
        sb_add(&out, doc, from);
        sb_add(&out, ref.p, ref.len);
        sb_add(&out, doc + to, len - to);
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.formula_ref.tmp", path);
        FILE *f = fopen(tmp, "wb");
        int ok = f && fwrite(out.p, 1, out.len, f) == out.len;
        if (f && fclose(f) != 0) ok = 0;
        if (ok && rename(tmp, path) == 0) {
            rc = 0;
        } else {
            fprintf(stderr, "formula_ref: %s: %s\n", path, strerror(errno));
            remove(tmp);
        }
        free(out.p);
        free(ref.p);
    }
    free(doc);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 1) {
        sbuf ref = {0};
        reference(&ref);
        fputs(ref.p, stdout);
        free(ref.p);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "--check") == 0) return check(argv[2], argv[0]);
    if (argc == 3 && strcmp(argv[1], "--write") == 0) return write_back(argv[2]);
    fprintf(stderr, "usage: formula_ref [--check FILE | --write FILE]\n");
    return 2;
}
