/* ib_formula: function table, lexer, recursive-descent parser (depth-bounded), name and call checks, and the
 * JSON form of the tree. String literals are raw: only a backslash before the literal's own quote escapes, so
 * regular expressions are written exactly as in a regex tester. */
#include "ib_formula.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- function table: the one place that declares names, arities and pattern arguments ---- */

static const ib_func_info func_table[IB_FN_COUNT_] = {
    {IB_FN_SCAN_RIGHT, "scan_right", 2, 2, 0, 0, "scan_right(doc, anchor)",
     "The words right of the anchor text on its visual line, up to the next column gap; null when the "
     "anchor is not found."},
    {IB_FN_SCAN_BELOW, "scan_below", 2, 2, 0, 0, "scan_below(doc, anchor)",
     "The words under the anchor (overlapping it horizontally) on the next non-empty line; null when the "
     "anchor is not found."},
    {IB_FN_SCAN_BOX, "scan_box", 4, 4, 0, 0, "scan_box(doc, anchor, right, below)",
     "The words in the box that starts at the anchor and reaches `right` across and `below` down (points; "
     "character widths and lines for plain text)."},
    {IB_FN_REGEX, "regex", 2, 3, 2, 3, "regex(text, pattern[, group])",
     "The first match: group `group` (a number or a name) when given, else group 1 when the pattern has "
     "groups, else the whole match; null when nothing matches."},
    {IB_FN_REGEX_ALL, "regex_all", 2, 3, 2, 3, "regex_all(text, pattern[, group])",
     "Every match, as a list (with `group` chosen as in regex()); an empty list when nothing matches."},
    {IB_FN_REPLACE, "replace", 3, 3, 2, 0, "replace(text, pattern, with)",
     "The text with every match of the pattern replaced by `with`, where `$1` or `${name}` stand for "
     "groups."},
    {IB_FN_MATCHES, "matches", 2, 2, 2, 0, "matches(text, pattern)",
     "true when the pattern matches the text anywhere, else false."},
    {IB_FN_CLEAN, "clean", 1, 1, 0, 0, "clean(text)",
     "The text trimmed, with every run of white space made one space."},
    {IB_FN_TRIM, "trim", 1, 1, 0, 0, "trim(text)",
     "The text without white space at its start and end."},
    {IB_FN_UPPER, "upper", 1, 1, 0, 0, "upper(text)",
     "The text in capitals."},
    {IB_FN_LOWER, "lower", 1, 1, 0, 0, "lower(text)",
     "The text in small letters."},
    {IB_FN_TITLE, "title", 1, 1, 0, 0, "title(text)",
     "The text with each word capitalised."},
    {IB_FN_CONCAT, "concat", 1, IB_ARGS_ANY, 0, 0, "concat(a, ...)",
     "Its arguments as text, one after another (null adds nothing)."},
    {IB_FN_SUBSTR, "substr", 2, 3, 0, 0, "substr(text, start[, len])",
     "`len` characters (all the rest without it) from character `start`, counted from 0 (negative: from "
     "the end)."},
    {IB_FN_LEN, "len", 1, 1, 0, 0, "len(text_or_list)",
     "The number of characters of a text, or of items of a list; 0 for null."},
    {IB_FN_SPLIT, "split", 2, 2, 0, 0, "split(text, sep)",
     "The text cut at each occurrence of `sep` (plain text, not a pattern), as a list."},
    {IB_FN_JOIN, "join", 2, 2, 0, 0, "join(list, sep)",
     "The items of a list as text, `sep` between them."},
    {IB_FN_NTH, "nth", 2, 2, 0, 0, "nth(list, i)",
     "Item `i` of a list, counted from 0 (-1 is the last); null past the end."},
    {IB_FN_LINES, "lines", 1, 1, 0, 0, "lines(doc)",
     "The document's (or a text's) lines as a list, each with its place on the page; blank lines left out."},
    {IB_FN_LINE_CONTAINING, "line_containing", 2, 2, 0, 0, "line_containing(doc, needle)",
     "The first line holding `needle` (exact case first, then ignoring case); null when none does."},
    {IB_FN_BETWEEN, "between", 3, 3, 0, 0, "between(text, start, end)",
     "The text after the first `start` up to the next `end` (plain text, not patterns; the rest of the "
     "text when `end` is not found); null when `start` is not found."},
    {IB_FN_READING_TEXT, "reading_text", 1, 1, 0, 0, "reading_text(doc)",
     "The document's text in reading order: columns one after another rather than side by side."},
    {IB_FN_NUMBER, "number", 1, 1, 0, 0, "number(text)",
     "A number read from text: currency signs and codes, thousands separators, decimal comma, parentheses "
     "or a trailing minus for negatives; over a list, every item."},
    {IB_FN_INT, "int", 1, 1, 0, 0, "int(text)",
     "A whole number read from text; over a list, every item."},
    {IB_FN_DATE, "date", 1, 2, 0, 0, "date(text[, order])",
     "A date as YYYY-MM-DD from numeric or month-name forms in seven languages; `order` ('DMY', 'MDY' or "
     "'YMD') settles numeric dates; over a list, every item."},
    {IB_FN_BOOL, "bool", 1, 1, 0, 0, "bool(text)",
     "true or false read from text (yes/no, true/false, 1/0 and the like); null for empty text."},
    {IB_FN_IF, "if", 2, 3, 0, 0, "if(cond, then[, else])",
     "`then` when `cond` holds (true, a non-empty text or list, a number other than 0), else `else` (null "
     "without it); only the branch taken is evaluated."},
    {IB_FN_COALESCE, "coalesce", 1, IB_ARGS_ANY, 0, 0, "coalesce(a, b, ...)",
     "The first argument that is neither null, empty nor an error."},
    {IB_FN_EQ, "eq", 2, 2, 0, 0, "eq(a, b)",
     "true when both are equal: numbers as numbers, anything else as text; null equals empty text."},
    {IB_FN_CONTAINS, "contains", 2, 2, 0, 0, "contains(text_or_list, needle)",
     "true when the text holds `needle`, or when the list holds an item equal to it."},
    {IB_FN_NOT, "not", 1, 1, 0, 0, "not(a)",
     "true when `a` does not hold (null, false, 0, empty)."},
    {IB_FN_AND, "and", 1, IB_ARGS_ANY, 0, 0, "and(a, b, ...)",
     "true when every argument holds; stops at the first that does not."},
    {IB_FN_OR, "or", 1, IB_ARGS_ANY, 0, 0, "or(a, b, ...)",
     "true when one argument holds; stops at the first that does."},
    {IB_FN_CONFIG, "CONFIG", 1, 2, 0, 0, "CONFIG(key[, default])",
     "The value of `key` in the run's settings.runtime_config, else `default`, else null."},
    /* the regular expressions of table and line_items (several per call) are checked by check_table_call */
    {IB_FN_TABLE, "table", 2, 4, 0, 0, "table(doc, header[, end[, options]])",
     "The rows of the layout table under the header (a list of column titles, or a pattern matching the "
     "header line) up to `end`, across pages; `options` is a JSON object (columns, key, row_start, bounds,"
     " continues, max_gap)."},
    {IB_FN_LINE_ITEMS, "line_items", 4, 6, 0, 0,
     "line_items(text, start, end, line[, first_line, last_line])",
     "Rows from lines between `start` and `end`: each match of `line` is a row whose named groups are its "
     "cells; `first_line` and `last_line` build items of several lines."},
    {IB_FN_COLUMN, "column", 2, 2, 0, 0, "column(rows, name)",
     "The cells of one column of rows, as a list, each keeping its place on the page."},
    {IB_FN_ROWS_WHERE, "rows_where", 3, 3, 3, 0, "rows_where(rows, column, pattern)",
     "The rows whose cell in `column` matches the pattern."},
    {IB_FN_COUNT, "count", 1, 1, 0, 0, "count(rows_or_list)",
     "The number of rows or list items; 0 for null, 1 for a single value."},
    {IB_FN_SUM, "sum", 1, 1, 0, 0, "sum(list)",
     "The sum of a list of numbers (empty cells add nothing); an item that is not a number is an error."},
    {IB_FN_TABLES, "tables", 1, 1, 0, 0, "tables(doc)",
     "Every table the layout shows (a header line of two or more columns with rows aligned under it), each"
     " as rows under its header's titles."},
};

const ib_func_info *ib_func_lookup(const char *name, size_t len)
{
    for (int i = 0; i < IB_FN_COUNT_; i++)
        if (strlen(func_table[i].name) == len && strncasecmp(func_table[i].name, name, len) == 0)
            return &func_table[i];
    return NULL;
}

const ib_func_info *ib_func_get(ib_fn id)
{
    return (id >= 0 && id < IB_FN_COUNT_) ? &func_table[id] : NULL;
}

/* ---- errors ---- */

__attribute__((format(printf, 4, 5))) static void set_err(ib_formula_err *err, uint32_t line, uint32_t col,
                                                          const char *fmt, ...)
{
    if (!err) return;
    err->line = line;
    err->col = col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}

/* A short printable rendering of bytes for messages: at most 32 characters, control bytes as \xNN. */
static void show(const char *s, size_t len, char *out, size_t outsz)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < outsz; i++) {
        if (i >= 32) {
            if (o + 4 < outsz) memcpy(out + o, "...", 3), o += 3;
            break;
        }
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            o += (size_t)snprintf(out + o, outsz - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    out[o] = '\0';
}

/* ---- lexer ---- */

typedef enum tok_kind {
    T_EOF,
    T_IDENT,
    T_NUM,
    T_STR,
    T_LPAREN,
    T_RPAREN,
    T_LBRACK,
    T_RBRACK,
    T_COMMA
} tok_kind;

typedef struct tok {
    tok_kind kind;
    size_t start, end; /* bytes in the source; T_STR: including the quotes */
    uint32_t line, col;
} tok;

typedef struct parser {
    const char *s;
    size_t len, pos;
    uint32_t line, col;
    tok cur;
    uint32_t nodes;
    ib_formula_err *err;
} parser;

static void advance_byte(parser *p)
{
    unsigned char c = (unsigned char)p->s[p->pos++];
    if (c == '\n') {
        p->line++;
        p->col = 1;
    } else if ((c & 0xC0) != 0x80) {
        p->col++;
    }
}

/* UTF-8 continuation bytes do not start a character: they do not advance the column. */
static uint32_t utf8_char_len(const char *s, size_t left)
{
    unsigned char c = (unsigned char)s[0];
    uint32_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    return n <= left ? n : (uint32_t)left;
}

static int is_ident_start(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int is_ident_char(int c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int next_token(parser *p)
{
    while (p->pos < p->len && p->s[p->pos] && strchr(" \t\r\n", p->s[p->pos]))
        advance_byte(p);
    tok *t = &p->cur;
    t->start = p->pos;
    t->line = p->line;
    t->col = p->col;
    if (p->pos >= p->len) {
        t->kind = T_EOF;
        t->end = p->pos;
        return 0;
    }
    char c = p->s[p->pos];
    static const char punct[] = "()[],";
    static const tok_kind punct_kind[] = {T_LPAREN, T_RPAREN, T_LBRACK, T_RBRACK, T_COMMA};
    const char *pc = c ? strchr(punct, c) : NULL;
    if (pc) {
        t->kind = punct_kind[pc - punct];
        advance_byte(p);
    } else if (is_ident_start((unsigned char)c)) {
        while (p->pos < p->len && is_ident_char((unsigned char)p->s[p->pos]))
            advance_byte(p);
        t->kind = T_IDENT;
        if (p->pos - t->start > IB_NAME_MAX) {
            set_err(p->err, t->line, t->col, "name longer than %d characters", IB_NAME_MAX);
            return -1;
        }
    } else if (is_digit((unsigned char)c) ||
               (c == '-' && p->pos + 1 < p->len && is_digit((unsigned char)p->s[p->pos + 1]))) {
        advance_byte(p);
        while (p->pos < p->len && is_digit((unsigned char)p->s[p->pos]))
            advance_byte(p);
        if (p->pos < p->len && p->s[p->pos] == '.') {
            advance_byte(p);
            size_t digits = p->pos;
            while (p->pos < p->len && is_digit((unsigned char)p->s[p->pos]))
                advance_byte(p);
            if (p->pos == digits) goto bad_number;
        }
        if (p->pos < p->len && (is_ident_char((unsigned char)p->s[p->pos]) || p->s[p->pos] == '.'))
            goto bad_number;
        if (p->pos - t->start > 64) goto bad_number;
        t->kind = T_NUM;
    } else if (c == '\'' || c == '"') {
        advance_byte(p);
        for (;;) {
            if (p->pos >= p->len) {
                set_err(p->err, t->line, t->col, "unterminated string literal");
                return -1;
            }
            if (p->s[p->pos] == '\0') {
                set_err(p->err, p->line, p->col, "NUL byte in string literal");
                return -1;
            }
            if (p->s[p->pos] == '\\' && p->pos + 1 < p->len && p->s[p->pos + 1] == c) {
                advance_byte(p);
                advance_byte(p);
                continue;
            }
            if (p->s[p->pos] == c) {
                advance_byte(p);
                break;
            }
            advance_byte(p);
        }
        t->kind = T_STR;
    } else {
        char shown[64];
        show(p->s + p->pos, utf8_char_len(p->s + p->pos, p->len - p->pos), shown, sizeof shown);
        set_err(p->err, t->line, t->col, "unexpected character '%s'", shown);
        return -1;
    }
    t->end = p->pos;
    return 0;

bad_number:
    while (p->pos < p->len && (is_ident_char((unsigned char)p->s[p->pos]) || p->s[p->pos] == '.'))
        advance_byte(p);
    {
        char shown[64];
        show(p->s + t->start, p->pos - t->start, shown, sizeof shown);
        set_err(p->err, t->line, t->col, "invalid number '%s'", shown);
    }
    return -1;
}

static void describe_token(const parser *p, char *out, size_t outsz)
{
    const tok *t = &p->cur;
    if (t->kind == T_EOF) {
        snprintf(out, outsz, "the end of the formula");
        return;
    }
    char shown[64];
    show(p->s + t->start, t->end - t->start, shown, sizeof shown);
    snprintf(out, outsz, "'%s'", shown);
}

/* ---- parser ---- */

static ib_node *new_node(parser *p, ib_node_kind kind, const tok *t)
{
    if (++p->nodes > IB_FORMULA_MAX_NODES) {
        set_err(p->err, t->line, t->col, "formula has more than %d parts", IB_FORMULA_MAX_NODES);
        return NULL;
    }
    ib_node *n = calloc(1, sizeof *n);
    if (!n) {
        set_err(p->err, t->line, t->col, "out of memory");
        return NULL;
    }
    n->kind = kind;
    n->line = t->line;
    n->col = t->col;
    return n;
}

static int add_kid(parser *p, ib_node *n, ib_node *kid, const tok *at)
{
    if (n->nkids >= IB_FORMULA_MAX_ARGS) {
        set_err(p->err, at->line, at->col, "more than %d arguments or list items", IB_FORMULA_MAX_ARGS);
        return -1;
    }
    ib_node **k = realloc(n->kids, (n->nkids + 1) * sizeof *k);
    if (!k) {
        set_err(p->err, at->line, at->col, "out of memory");
        return -1;
    }
    n->kids = k;
    n->kids[n->nkids++] = kid;
    return 0;
}

/* The literal's value: the text between the quotes with each backslash-quote pair replaced by the quote. */
static int take_string(parser *p, ib_node *n)
{
    const tok *t = &p->cur;
    char q = p->s[t->start];
    size_t inner = t->end - t->start - 2;
    n->text = malloc(inner + 1);
    if (!n->text) return -1;
    size_t o = 0;
    for (size_t i = t->start + 1; i < t->end - 1; i++) {
        if (p->s[i] == '\\' && i + 1 < t->end - 1 && p->s[i + 1] == q) i++;
        n->text[o++] = p->s[i];
    }
    n->text[o] = '\0';
    n->len = o;
    return 0;
}

static ib_node *parse_expr(parser *p, int depth);

/* items until `close`, separated by commas; the opening token has been consumed. */
static int parse_items(parser *p, ib_node *n, tok_kind close, const char *closech, int depth)
{
    if (p->cur.kind == close) return next_token(p);
    for (;;) {
        tok at = p->cur;
        ib_node *kid = parse_expr(p, depth + 1);
        if (!kid) return -1;
        if (add_kid(p, n, kid, &at) < 0) {
            ib_node_free(kid);
            return -1;
        }
        if (p->cur.kind == T_COMMA) {
            if (next_token(p) < 0) return -1;
            continue;
        }
        if (p->cur.kind == close) return next_token(p);
        char found[96];
        describe_token(p, found, sizeof found);
        set_err(p->err, p->cur.line, p->cur.col, "expected ',' or '%s', found %s", closech, found);
        return -1;
    }
}

static ib_node *parse_expr(parser *p, int depth)
{
    tok t = p->cur;
    if (depth > IB_FORMULA_MAX_DEPTH) {
        set_err(p->err, t.line, t.col, "nesting deeper than %d levels", IB_FORMULA_MAX_DEPTH);
        return NULL;
    }
    ib_node *n = NULL;
    switch (t.kind) {
    case T_STR:
        if (!(n = new_node(p, IB_NODE_STR, &t))) return NULL;
        if (take_string(p, n) < 0) goto fail_oom;
        if (next_token(p) < 0) goto fail;
        return n;
    case T_NUM: {
        if (!(n = new_node(p, IB_NODE_NUM, &t))) return NULL;
        char buf[80];
        memcpy(buf, p->s + t.start, t.end - t.start);
        buf[t.end - t.start] = '\0';
        n->num = strtod(buf, NULL);
        if (next_token(p) < 0) goto fail;
        return n;
    }
    case T_LBRACK:
        if (!(n = new_node(p, IB_NODE_LIST, &t))) return NULL;
        if (next_token(p) < 0 || parse_items(p, n, T_RBRACK, "]", depth) < 0) goto fail;
        return n;
    case T_IDENT:
        if (!(n = new_node(p, IB_NODE_NAME, &t))) return NULL;
        n->len = t.end - t.start;
        /* not strndup: the source need not be NUL-terminated (strict string checks read to the NUL) */
        if (!(n->text = malloc(n->len + 1))) goto fail_oom;
        memcpy(n->text, p->s + t.start, n->len);
        n->text[n->len] = '\0';
        if (next_token(p) < 0) goto fail;
        if (p->cur.kind == T_LPAREN) {
            n->kind = IB_NODE_CALL;
            if (next_token(p) < 0 || parse_items(p, n, T_RPAREN, ")", depth) < 0) goto fail;
        }
        return n;
    default: {
        char found[96];
        describe_token(p, found, sizeof found);
        set_err(p->err, t.line, t.col, "expected an expression, found %s", found);
        return NULL;
    }
    }
fail_oom:
    set_err(p->err, t.line, t.col, "out of memory");
fail:
    ib_node_free(n);
    return NULL;
}

ib_node *ib_formula_parse(const char *text, size_t len, ib_formula_err *err)
{
    parser p = {.s = text, .len = len, .line = 1, .col = 1, .err = err};
    if (err) memset(err, 0, sizeof *err);
    if (len > IB_FORMULA_MAX_LEN) {
        set_err(err, 1, 1, "formula longer than %d bytes", IB_FORMULA_MAX_LEN);
        return NULL;
    }
    if (memchr(text, '\0', len)) {
        set_err(err, 0, 0, "formula contains a NUL byte");
        return NULL;
    }
    if (next_token(&p) < 0) return NULL;
    if (p.cur.kind == T_EOF) {
        set_err(err, p.cur.line, p.cur.col, "empty formula");
        return NULL;
    }
    ib_node *root = parse_expr(&p, 1);
    if (!root) return NULL;
    if (p.cur.kind != T_EOF) {
        char found[96];
        describe_token(&p, found, sizeof found);
        set_err(err, p.cur.line, p.cur.col, "unexpected %s after the end of the expression", found);
        ib_node_free(root);
        return NULL;
    }
    return root;
}

void ib_node_free(ib_node *n)
{
    if (!n) return;
    for (uint32_t i = 0; i < n->nkids; i++)
        ib_node_free(n->kids[i]);
    free(n->kids);
    free(n->text);
    if (n->rx) pcre2_code_free(n->rx);
    free(n);
}

/* ---- checks ---- */

/* Levenshtein distance, capped: used only to suggest a spelling in messages. */
static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    if (la > IB_NAME_MAX || lb > IB_NAME_MAX) return 99;
    size_t row[IB_NAME_MAX + 1];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t sub = prev + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            size_t best = row[j] + 1 < row[j - 1] + 1 ? row[j] + 1 : row[j - 1] + 1;
            row[j] = sub < best ? sub : best;
            prev = cur;
        }
    }
    return row[lb];
}

static const char *suggest_function(const char *name, size_t len)
{
    const char *best = NULL;
    size_t bestd = 3;
    for (int i = 0; i < IB_FN_COUNT_; i++) {
        size_t d = edit_distance(name, len, func_table[i].name, strlen(func_table[i].name));
        if (d < bestd) bestd = d, best = func_table[i].name;
    }
    return best;
}

typedef struct checker {
    ib_name_resolver resolve;
    void *ctx;
    ib_formula_err *err;
} checker;

static int check_regex_literal(checker *c, ib_node *pat)
{
    char msg[400];
    size_t off = 0;
    pat->rx = ib_regex_compile(pat->text, pat->len, msg, sizeof msg, &off);
    if (!pat->rx) {
        set_err(c->err, pat->line, pat->col, "%s", msg);
        return -1;
    }
    return 0;
}

static int check_group_literal(checker *c, const ib_node *pat, const ib_node *grp)
{
    if (!pat->rx) return 0; /* pattern known only at run time */
    uint32_t ngroups = 0;
    pcre2_pattern_info(pat->rx, PCRE2_INFO_CAPTURECOUNT, &ngroups);
    if (grp->kind == IB_NODE_NUM) {
        /* The range test comes first: casting a double outside uint32_t's range is undefined. */
        if (!(grp->num >= 0 && grp->num <= ngroups) || grp->num != (double)(uint32_t)grp->num) {
            set_err(c->err, grp->line, grp->col, "group %g does not exist: the pattern has %u group%s",
                    grp->num, ngroups, ngroups == 1 ? "" : "s");
            return -1;
        }
    } else if (grp->kind == IB_NODE_STR) {
        char *end;
        unsigned long v = strtoul(grp->text, &end, 10);
        if (grp->len > 0 && *end == '\0' && isdigit((unsigned char)grp->text[0])) {
            if (v > ngroups) { /* shown as written: strtoul saturates at ULONG_MAX */
                char shown[64];
                show(grp->text, grp->len, shown, sizeof shown);
                set_err(c->err, grp->line, grp->col, "group %s does not exist: the pattern has %u group%s",
                        shown, ngroups, ngroups == 1 ? "" : "s");
                return -1;
            }
        } else if (pcre2_substring_number_from_name(pat->rx, (PCRE2_SPTR)grp->text) < 0) {
            char shown[64];
            show(grp->text, grp->len, shown, sizeof shown);
            set_err(c->err, grp->line, grp->col, "the pattern has no group named '%s'", shown);
            return -1;
        }
    }
    return 0;
}

/* ---- table() options and the checks of table and line_items ---- */

int ib_table_title_eq(const char *a, const char *b)
{
    for (;;) {
        while (*a == ' ' || *a == '\t')
            a++;
        while (*b == ' ' || *b == '\t')
            b++;
        if (!*a || !*b) return !*a && !*b;
        /* inside: a run of white space on one side must be a run on the other */
        while (*a && *b && *a != ' ' && *a != '\t' && *b != ' ' && *b != '\t') {
            if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return 0;
            a++, b++;
        }
        int wa = *a == ' ' || *a == '\t', wb = *b == ' ' || *b == '\t';
        if ((*a && !wa) || (*b && !wb)) return 0;
    }
}

void ib_table_opts_free(ib_table_opts *o)
{
    for (size_t i = 0; i < o->ncolumns; i++) {
        free(o->titles[i]);
        free(o->names[i]);
    }
    free(o->key);
    free(o->row_start);
    memset(o, 0, sizeof *o);
}

static char *dup_text(const char *s)
{
    char *d = strdup(s);
    if (!d) abort();
    return d;
}

/* One "columns" entry: title (and new name) must be non-empty text, at most IB_TABLE_MAX_TITLES of them. */
static int opts_add_column(ib_table_opts *o, const char *title, const json_t *name, char *msg, size_t msgsz)
{
    if (o->ncolumns >= IB_TABLE_MAX_TITLES) {
        snprintf(msg, msgsz, "'columns' names more than %d columns", IB_TABLE_MAX_TITLES);
        return -1;
    }
    if (!title || !*title || (name && (!json_is_string(name) || !*json_string_value(name)))) {
        snprintf(msg, msgsz, "'columns' entry %zu must be a non-empty title%s", o->ncolumns + 1,
                 name ? " and a non-empty new name" : "");
        return -1;
    }
    o->titles[o->ncolumns] = dup_text(title);
    o->names[o->ncolumns] = dup_text(name ? json_string_value(name) : title);
    o->ncolumns++;
    return 0;
}

int ib_table_opts_parse(const char *text, size_t len, ib_table_opts *o, char *msg, size_t msgsz)
{
    memset(o, 0, sizeof *o);
    o->max_gap = 2.5;
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(j)) {
        if (j)
            snprintf(msg, msgsz, "options must be a JSON object, as in '{\"key\": \"Qty\"}'");
        else
            snprintf(msg, msgsz, "options are not valid JSON: %s (character %d)", je.text, je.position);
        json_decref(j);
        return -1;
    }
    const char *k;
    json_t *v;
    int rc = 0;
    json_object_foreach(j, k, v)
    {
        char shown[64];
        show(k, strlen(k), shown, sizeof shown);
        if (strcmp(k, "columns") == 0) {
            size_t i;
            json_t *it;
            if (json_is_array(v) && json_array_size(v) > 0) {
                json_array_foreach(v, i, it) if ((rc = opts_add_column(o, json_string_value(it), NULL, msg,
                                                                       msgsz)) < 0) break;
            } else if (json_is_object(v) && json_object_size(v) > 0) {
                const char *t;
                json_object_foreach(v, t, it) if ((rc = opts_add_column(o, t, it, msg, msgsz)) < 0) break;
            } else {
                snprintf(msg, msgsz,
                         "'columns' must be a list of titles or an object of titles to new names");
                rc = -1;
            }
            for (size_t a = 0; rc == 0 && a < o->ncolumns; a++)
                for (size_t b = a + 1; rc == 0 && b < o->ncolumns; b++)
                    if (strcmp(o->names[a], o->names[b]) == 0) {
                        show(o->names[a], strlen(o->names[a]), shown, sizeof shown);
                        snprintf(msg, msgsz, "'columns' names the column '%s' twice", shown);
                        rc = -1;
                    }
        } else if (strcmp(k, "key") == 0 || strcmp(k, "row_start") == 0) {
            if (!json_is_string(v) || json_string_length(v) == 0) {
                snprintf(msg, msgsz, "'%s' must be non-empty text", k);
                rc = -1;
            } else if (k[0] == 'k') {
                o->key = dup_text(json_string_value(v));
            } else {
                char rmsg[400];
                size_t off;
                pcre2_code *re =
                    ib_regex_compile(json_string_value(v), json_string_length(v), rmsg, sizeof rmsg, &off);
                if (!re) {
                    snprintf(msg, msgsz, "'row_start': %s", rmsg);
                    rc = -1;
                }
                pcre2_code_free(re);
                if (rc == 0) o->row_start = dup_text(json_string_value(v));
            }
        } else if (strcmp(k, "bounds") == 0) {
            size_t i;
            json_t *it;
            if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) >= IB_TABLE_MAX_TITLES) {
                snprintf(msg, msgsz, "'bounds' must be a list of 1 to %d numbers", IB_TABLE_MAX_TITLES - 1);
                rc = -1;
            }
            json_array_foreach(v, i, it)
            {
                if (rc < 0) break;
                if (!json_is_number(it) || (i > 0 && json_number_value(it) <= o->bounds[i - 1])) {
                    snprintf(msg, msgsz, "'bounds' must be numbers in ascending order (entry %zu is not)",
                             i + 1);
                    rc = -1;
                    break;
                }
                o->bounds[o->nbounds++] = json_number_value(it);
            }
        } else if (strcmp(k, "continues") == 0) {
            if (!json_is_boolean(v)) {
                snprintf(msg, msgsz, "'continues' must be true or false");
                rc = -1;
            }
            o->continues = json_is_true(v);
        } else if (strcmp(k, "max_gap") == 0) {
            if (!json_is_number(v) || !(json_number_value(v) > 0) || json_number_value(v) > 1000) {
                snprintf(msg, msgsz, "'max_gap' must be a number of line heights above 0 (at most 1000)");
                rc = -1;
            } else {
                o->max_gap = json_number_value(v);
            }
        } else {
            snprintf(msg, msgsz,
                     "unknown option '%s' (known: columns, key, row_start, bounds, continues, max_gap)",
                     shown);
            rc = -1;
        }
        if (rc < 0) break;
    }
    json_decref(j);
    if (rc < 0) ib_table_opts_free(o);
    return rc;
}

/* A literal in a pattern position of table or line_items: compiled into node->rx, the error naming the
 * argument. A number or a list there is an error too (names and calls are known only at run time). */
static int check_pattern_kid(checker *c, const ib_node *call, uint32_t i, const char *what)
{
    if (i >= call->nkids) return 0;
    ib_node *k = call->kids[i];
    if (k->kind == IB_NODE_NUM || k->kind == IB_NODE_LIST) {
        set_err(c->err, k->line, k->col, "%s: %s must be a regular expression (text), not a %s",
                ib_func_get(call->fn)->name, what, k->kind == IB_NODE_NUM ? "number" : "list");
        return -1;
    }
    if (k->kind != IB_NODE_STR || k->rx) return 0;
    char msg[400];
    size_t off = 0;
    k->rx = ib_regex_compile(k->text, k->len, msg, sizeof msg, &off);
    if (!k->rx) {
        set_err(c->err, k->line, k->col, "%s: %s: %s", ib_func_get(call->fn)->name, what, msg);
        return -1;
    }
    return 0;
}

static int check_table_call(checker *c, ib_node *n)
{
    char shown[96];
    if (n->fn == IB_FN_LINE_ITEMS) {
        static const char *const what[] = {NULL, "start", "end", "line", "first_line", "last_line"};
        for (uint32_t i = 1; i < n->nkids; i++)
            if (check_pattern_kid(c, n, i, what[i]) < 0) return -1;
        const ib_node *line = n->kids[3];
        uint32_t names = 0;
        if (line->rx) pcre2_pattern_info(line->rx, PCRE2_INFO_NAMECOUNT, &names);
        if (line->rx && names == 0) {
            set_err(c->err, line->line, line->col,
                    "line_items: the line pattern has no named group: the cells are its named groups, as in "
                    "'(?<qty>\\d+)'");
            return -1;
        }
        return 0;
    }
    /* table(doc, header[, end[, options]]) */
    ib_node *h = n->kids[1];
    if (h->kind == IB_NODE_NUM) {
        set_err(c->err, h->line, h->col,
                "table: the header must be a regular expression or a list of column titles, not a number");
        return -1;
    }
    if (h->kind == IB_NODE_LIST) {
        if (h->nkids == 0) {
            set_err(c->err, h->line, h->col, "table: the header list is empty: give the column titles");
            return -1;
        }
        for (uint32_t i = 0; i < h->nkids; i++) {
            const ib_node *t = h->kids[i];
            int blank = t->kind == IB_NODE_STR;
            for (size_t b = 0; blank && b < t->len; b++)
                if (t->text[b] != ' ' && t->text[b] != '\t') blank = 0;
            if (t->kind != IB_NODE_STR || blank) {
                set_err(c->err, t->line, t->col, "table: header title %u must be non-empty text", i + 1);
                return -1;
            }
        }
    } else if (check_pattern_kid(c, n, 1, "the header") < 0) {
        return -1;
    }
    if (check_pattern_kid(c, n, 2, "end") < 0) return -1;
    if (n->nkids < 4) return 0;
    ib_node *o = n->kids[3];
    if (o->kind == IB_NODE_NUM || o->kind == IB_NODE_LIST) {
        set_err(c->err, o->line, o->col,
                "table: options must be a JSON object in text, as in '{\"key\": \"Qty\"}'");
        return -1;
    }
    if (o->kind != IB_NODE_STR) return 0;
    ib_table_opts opts;
    char msg[400];
    if (ib_table_opts_parse(o->text, o->len, &opts, msg, sizeof msg) < 0) {
        set_err(c->err, o->line, o->col, "table: options: %s", msg);
        return -1;
    }
    int rc = 0;
    if (h->kind == IB_NODE_LIST) { /* the titles are known: every column and the key must be one of them */
        for (size_t i = 0; i < opts.ncolumns && rc == 0; i++) {
            uint32_t k = 0;
            while (k < h->nkids && !ib_table_title_eq(h->kids[k]->text, opts.titles[i]))
                k++;
            if (k == h->nkids) {
                show(opts.titles[i], strlen(opts.titles[i]), shown, sizeof shown);
                set_err(c->err, o->line, o->col,
                        "table: options: 'columns' names '%s', which the header lacks", shown);
                rc = -1;
            }
        }
        if (rc == 0 && opts.key) {
            int found = 0;
            for (uint32_t k = 0; k < h->nkids && !found; k++)
                found = ib_table_title_eq(h->kids[k]->text, opts.key);
            for (size_t i = 0; i < opts.ncolumns && !found; i++)
                found = strcmp(opts.names[i], opts.key) == 0;
            if (!found) {
                show(opts.key, strlen(opts.key), shown, sizeof shown);
                set_err(c->err, o->line, o->col, "table: options: 'key' names '%s', which is not a column",
                        shown);
                rc = -1;
            }
        }
    }
    ib_table_opts_free(&opts);
    return rc;
}

static int check_node(checker *c, ib_node *n, int depth)
{
    if (depth > IB_FORMULA_MAX_DEPTH) { /* only reachable for trees not built by the parser */
        set_err(c->err, n->line, n->col, "nesting deeper than %d levels", IB_FORMULA_MAX_DEPTH);
        return -1;
    }
    char shown[96];
    switch (n->kind) {
    case IB_NODE_STR:
    case IB_NODE_NUM:
        return 0;
    case IB_NODE_LIST:
        for (uint32_t i = 0; i < n->nkids; i++)
            if (check_node(c, n->kids[i], depth + 1) < 0) return -1;
        return 0;
    case IB_NODE_NAME: {
        show(n->text, n->len, shown, sizeof shown);
        if (strcmp(n->text, "INPUT_COL") == 0) {
            n->name_kind = IB_NAME_INPUT_COL;
            return 0;
        }
        if (strcmp(n->text, "FILENAME") == 0) {
            n->name_kind = IB_NAME_FILENAME;
            return 0;
        }
        if (strcmp(n->text, "CLASS") == 0) {
            n->name_kind = IB_NAME_CLASS;
            return 0;
        }
        int idx = c->resolve ? c->resolve(c->ctx, n->text, n->len) : -1;
        if (idx >= 0) {
            n->name_kind = IB_NAME_FIELD;
            n->field = (uint32_t)idx;
            return 0;
        }
        if (ib_func_lookup(n->text, n->len))
            set_err(c->err, n->line, n->col, "unknown name '%s' ('%s' is a function: call it as %s)", shown,
                    shown, ib_func_lookup(n->text, n->len)->signature);
        else
            set_err(c->err, n->line, n->col, "unknown name '%s'", shown);
        return -1;
    }
    case IB_NODE_CALL: {
        show(n->text, n->len, shown, sizeof shown);
        const ib_func_info *f = ib_func_lookup(n->text, n->len);
        if (!f) {
            const char *s = suggest_function(n->text, n->len);
            if (s)
                set_err(c->err, n->line, n->col, "unknown function '%s' (did you mean '%s'?)", shown, s);
            else
                set_err(c->err, n->line, n->col, "unknown function '%s'", shown);
            return -1;
        }
        n->fn = f->id;
        if (n->nkids < f->min_args || (f->max_args != IB_ARGS_ANY && n->nkids > f->max_args)) {
            if (f->max_args == IB_ARGS_ANY)
                set_err(c->err, n->line, n->col, "%s takes at least %u argument%s, got %u: %s", f->name,
                        f->min_args, f->min_args == 1 ? "" : "s", n->nkids, f->signature);
            else if (f->min_args == f->max_args)
                set_err(c->err, n->line, n->col, "%s takes %u argument%s, got %u: %s", f->name, f->min_args,
                        f->min_args == 1 ? "" : "s", n->nkids, f->signature);
            else
                set_err(c->err, n->line, n->col, "%s takes %u to %u arguments, got %u: %s", f->name,
                        f->min_args, f->max_args, n->nkids, f->signature);
            return -1;
        }
        for (uint32_t i = 0; i < n->nkids; i++)
            if (check_node(c, n->kids[i], depth + 1) < 0) return -1;
        if (f->regex_arg && n->kids[f->regex_arg - 1]->kind == IB_NODE_STR) {
            ib_node *pat = n->kids[f->regex_arg - 1];
            if (!pat->rx && check_regex_literal(c, pat) < 0) return -1;
            if (f->group_arg && n->nkids >= f->group_arg &&
                check_group_literal(c, pat, n->kids[f->group_arg - 1]) < 0)
                return -1;
        }
        if ((f->id == IB_FN_TABLE || f->id == IB_FN_LINE_ITEMS) && check_table_call(c, n) < 0) return -1;
        if (f->id == IB_FN_DATE && n->nkids == 2 && n->kids[1]->kind == IB_NODE_STR) {
            const char *o = n->kids[1]->text;
            if (strcasecmp(o, "DMY") && strcasecmp(o, "MDY") && strcasecmp(o, "YMD")) {
                show(o, n->kids[1]->len, shown, sizeof shown);
                set_err(c->err, n->kids[1]->line, n->kids[1]->col,
                        "date order '%s' is not one of 'DMY', 'MDY', 'YMD'", shown);
                return -1;
            }
        }
        return 0;
    }
    }
    return 0;
}

int ib_formula_check(ib_node *root, ib_name_resolver resolve, void *ctx, ib_formula_err *err)
{
    checker c = {resolve, ctx, err};
    if (err) memset(err, 0, sizeof *err);
    return check_node(&c, root, 1);
}

int ib_node_each_field_ref(const ib_node *n, int (*fn)(void *ctx, const ib_node *ref), void *ctx)
{
    if (n->kind == IB_NODE_NAME && n->name_kind == IB_NAME_FIELD) return fn(ctx, n);
    for (uint32_t i = 0; i < n->nkids; i++) {
        int rv = ib_node_each_field_ref(n->kids[i], fn, ctx);
        if (rv) return rv;
    }
    return 0;
}

/* ---- JSON form ---- */

json_t *ib_node_to_json(const ib_node *n)
{
    json_t *o = json_object();
    json_object_set_new(o, "at", json_pack("[II]", (json_int_t)n->line, (json_int_t)n->col));
    switch (n->kind) {
    case IB_NODE_STR:
        json_object_set_new(o, "str", json_stringn(n->text, n->len));
        break;
    case IB_NODE_NUM:
        json_object_set_new(o, "num", json_real(n->num));
        break;
    case IB_NODE_NAME:
        json_object_set_new(o, "name", json_stringn(n->text, n->len));
        break;
    case IB_NODE_CALL:
    case IB_NODE_LIST: {
        json_t *kids = json_array();
        for (uint32_t i = 0; i < n->nkids; i++)
            json_array_append_new(kids, ib_node_to_json(n->kids[i]));
        if (n->kind == IB_NODE_CALL) {
            const ib_func_info *f = ib_func_lookup(n->text, n->len);
            json_object_set_new(o, "call", json_string(f ? f->name : n->text));
            json_object_set_new(o, "args", kids);
        } else {
            json_object_set_new(o, "list", kids);
        }
        break;
    }
    }
    return o;
}

/* ---- regular expressions ---- */

pcre2_code *ib_regex_compile(const char *pattern, size_t len, char *msg, size_t msgsz, size_t *erroffset)
{
    if (erroffset) *erroffset = 0;
    if (len > IB_REGEX_MAX_LEN) {
        snprintf(msg, msgsz, "invalid regular expression: longer than %d bytes", IB_REGEX_MAX_LEN);
        return NULL;
    }
    int code = 0;
    PCRE2_SIZE off = 0;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)pattern, len, PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &code, &off, NULL);
    if (!re) {
        PCRE2_UCHAR buf[256];
        if (pcre2_get_error_message(code, buf, sizeof buf) < 0)
            snprintf((char *)buf, sizeof buf, "error %d", code);
        snprintf(msg, msgsz, "invalid regular expression: %s at offset %zu", (const char *)buf, (size_t)off);
        if (erroffset) *erroffset = off;
        return NULL;
    }
    /* PCRE2_MATCH_INVALID_UTF: document text may hold invalid UTF-8 (a mis-encoded text file); such bytes
     * then simply never match instead of failing every match. */
    /* JIT failure (no executable memory, unsupported platform) is not an error: the interpreter still
     * matches. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}
