/* ib_value: constructors, reference counting and provenance merging of formula values. Allocation failure
 * aborts: a half-built value would only turn into a wrong result later. */
#include "ib_value.h"

#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz);
    if (!p) abort();
    return p;
}

/* ---- budgets ---- */

/* One record is evaluated by one thread: the budget in force is the thread's, so constructors need no context. */
static _Thread_local ib_vbudget *tl_budget;
static atomic_uint budget_gen;

void ib_vbudget_init(ib_vbudget *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max;
    do
        b->gen = atomic_fetch_add(&budget_gen, 1) + 1;
    while (b->gen == 0); /* 0 marks values of no budget */
}

ib_vbudget *ib_vbudget_use(ib_vbudget *b)
{
    ib_vbudget *prev = tl_budget;
    tl_budget = b;
    return prev;
}

int ib_vbudget_room(size_t more)
{
    const ib_vbudget *b = tl_budget;
    return !b || !b->max || (b->live <= b->max && more <= b->max - b->live);
}

void ib_vbudget_exceed(void)
{
    if (tl_budget) tl_budget->over = 1;
}

int ib_vbudget_over(void)
{
    return tl_budget && tl_budget->over;
}

void ib_vbudget_hold(size_t bytes)
{
    ib_vbudget *b = tl_budget;
    if (!b) return;
    b->live += bytes;
    if (b->max && b->live > b->max) b->over = 1;
}

void ib_vbudget_release(size_t bytes)
{
    ib_vbudget *b = tl_budget;
    if (b) b->live -= bytes <= b->live ? bytes : b->live;
}

/* Charges `bytes` more of v to the current budget (a value built before any budget joins the first one it grows
 * under, for what it grows by). */
static void charge(ib_value *v, size_t bytes)
{
    ib_vbudget *b = tl_budget;
    if (!b) return;
    if (v->gen == 0 && v->charged == 0) v->gen = b->gen;
    if (v->gen != b->gen) return;
    v->charged += bytes;
    b->live += bytes;
    if (b->max && b->live > b->max) b->over = 1;
}

static void credit(const ib_value *v)
{
    ib_vbudget *b = tl_budget;
    if (!b || v->gen != b->gen) return;
    b->live -= v->charged <= b->live ? v->charged : b->live;
}

static ib_value *new_value(ib_vkind kind)
{
    ib_value *v = xcalloc(1, sizeof *v);
    v->kind = kind;
    v->refs = 1;
    charge(v, sizeof *v);
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
    charge(v, len + 1);
    return v;
}

ib_value *ib_v_str_take(char *s, size_t len)
{
    if (!s) abort();
    ib_value *v = new_value(IB_V_STR);
    v->str = s;
    v->len = len;
    v->own = 1;
    charge(v, len + 1);
    return v;
}

ib_value *ib_v_str_own(char *s)
{
    if (!s) abort();
    return ib_v_str_take(s, strlen(s));
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
        charge(list, (cap - list->nitems) * sizeof *ni);
    }
    list->items[list->nitems++] = item;
    if ((item->kind == IB_V_LIST || item->kind == IB_V_TABLE) && item->nest + 1 > list->nest)
        list->nest = item->nest + 1;
    return 0;
}

ib_value *ib_v_table(ib_value *names)
{
    ib_value *v = new_value(IB_V_TABLE);
    v->names = names;
    v->nest = 1; /* its rows are lists, even before it has any: a table is never a flat list */
    return v;
}

int ib_v_table_col(const ib_value *table, const char *name, size_t len)
{
    const ib_value *nm = table->names;
    for (size_t i = 0; nm && i < nm->nitems; i++)
        if (nm->items[i]->len == len && memcmp(nm->items[i]->str, name, len) == 0) return (int)i;
    return -1;
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
    charge(v, v->len + 1);
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
    credit(v);
    for (size_t i = 0; i < v->nitems; i++)
        ib_v_unref(v->items[i]);
    free(v->items);
    ib_v_unref(v->names);
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
    charge(v, sizeof *np);
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
    case IB_V_TABLE:
        return v->nitems == 0;
    default:
        return 0;
    }
}
