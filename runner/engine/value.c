/* ib_value: constructors, reference counting and provenance merging of formula values. Allocation failure
 * aborts: a half-built value would only turn into a wrong result later. */
#include "ib_value.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz);
    if (!p) abort();
    return p;
}

static ib_value *new_value(ib_vkind kind)
{
    ib_value *v = xcalloc(1, sizeof *v);
    v->kind = kind;
    v->refs = 1;
    return v;
}

ib_value *ib_v_null(void)
{
    return new_value(IB_V_NULL);
}

ib_value *ib_v_str(const char *s, size_t len)
{
    ib_value *v = new_value(IB_V_STR);
    v->str = malloc(len + 1);
    if (!v->str) abort();
    if (len) memcpy(v->str, s, len);
    v->str[len] = '\0';
    v->len = len;
    v->own = 1;
    return v;
}

ib_value *ib_v_str_own(char *s)
{
    if (!s) abort();
    ib_value *v = new_value(IB_V_STR);
    v->str = s;
    v->len = strlen(s);
    v->own = 1;
    return v;
}

ib_value *ib_v_str_borrow(const char *s, size_t len, const ib_text *map)
{
    ib_value *v = new_value(IB_V_STR);
    v->str = (char *)s;
    v->len = len;
    v->map = map;
    return v;
}

ib_value *ib_v_num(double n)
{
    ib_value *v = new_value(IB_V_NUM);
    v->num = n;
    return v;
}

ib_value *ib_v_bool(int b)
{
    ib_value *v = new_value(IB_V_BOOL);
    v->b = b != 0;
    return v;
}

ib_value *ib_v_list(void)
{
    return new_value(IB_V_LIST);
}

int ib_v_list_push(ib_value *list, ib_value *item)
{
    if (list->nitems >= IB_VALUE_MAX_ITEMS) {
        ib_v_unref(item);
        return -1;
    }
    if ((list->nitems & (list->nitems - 1)) == 0) { /* grow at powers of two */
        size_t cap = list->nitems ? list->nitems * 2 : 4;
        ib_value **ni = realloc(list->items, cap * sizeof *ni);
        if (!ni) abort();
        list->items = ni;
    }
    list->items[list->nitems++] = item;
    return 0;
}

ib_value *ib_v_doc(const ib_doc *doc)
{
    ib_value *v = new_value(IB_V_DOC);
    v->doc = doc;
    return v;
}

ib_value *ib_v_error(const char *fmt, ...)
{
    ib_value *v = new_value(IB_V_ERROR);
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    v->str = strdup(buf);
    if (!v->str) abort();
    v->len = strlen(buf);
    v->own = 1;
    return v;
}

ib_value *ib_v_ref(ib_value *v)
{
    if (v) v->refs++;
    return v;
}

void ib_v_unref(ib_value *v)
{
    if (!v || --v->refs > 0) return;
    for (size_t i = 0; i < v->nitems; i++)
        ib_v_unref(v->items[i]);
    free(v->items);
    if (v->own) free(v->str);
    free(v->prov);
    free(v);
}

int ib_v_prov_add(ib_value *v, uint32_t page, ib_bbox box)
{
    size_t i = 0;
    while (i < v->nprov && v->prov[i].page < page)
        i++;
    if (i < v->nprov && v->prov[i].page == page) {
        ib_bbox *b = &v->prov[i].box;
        if (box.x0 < b->x0) b->x0 = box.x0;
        if (box.y0 < b->y0) b->y0 = box.y0;
        if (box.x1 > b->x1) b->x1 = box.x1;
        if (box.y1 > b->y1) b->y1 = box.y1;
        return 0;
    }
    ib_pbox *np = realloc(v->prov, (v->nprov + 1) * sizeof *np);
    if (!np) return -1;
    v->prov = np;
    memmove(np + i + 1, np + i, (v->nprov - i) * sizeof *np);
    np[i].page = page;
    np[i].box = box;
    v->nprov++;
    return 0;
}

int ib_v_prov_merge(ib_value *v, const ib_value *src)
{
    for (size_t i = 0; src && i < src->nprov; i++)
        if (ib_v_prov_add(v, src->prov[i].page, src->prov[i].box) < 0) return -1;
    return 0;
}

void ib_num_format(double n, char *buf, size_t bufsz)
{
    if (isnan(n) || isinf(n))
        snprintf(buf, bufsz, "%s", isnan(n) ? "NaN" : (n > 0 ? "Infinity" : "-Infinity"));
    else if (n == floor(n) && fabs(n) < 1e15)
        snprintf(buf, bufsz, "%.0f", n == 0 ? 0.0 : n); /* no "-0" */
    else
        snprintf(buf, bufsz, "%.15g", n);
}

int ib_v_is_empty(const ib_value *v)
{
    if (!v) return 1;
    switch (v->kind) {
    case IB_V_NULL:
    case IB_V_ERROR:
        return 1;
    case IB_V_STR:
        for (size_t i = 0; i < v->len; i++)
            if (!strchr(" \t\r\n\f\v", v->str[i])) return 0;
        return 1;
    case IB_V_LIST:
        return v->nitems == 0;
    default:
        return 0;
    }
}
