/* ib_value: the values formulas compute: null, string, number, boolean, list, the record's document, error,
 * and table (rows of cells under named columns: what table() and line_items() return). Every value carries
 * its provenance: the page and the bounding box (per page) of the words it came from, so a field result can
 * point at its place in the document. Values are reference counted and immutable once built; one record is
 * evaluated by one thread, so counts are not atomic. */
#ifndef IB_VALUE_H
#define IB_VALUE_H

#include "ib_doc.h"
#include "ib_spatial.h"

#include <stddef.h>
#include <stdint.h>

typedef enum ib_vkind {
    IB_V_NULL,
    IB_V_STR,
    IB_V_NUM,
    IB_V_BOOL,
    IB_V_LIST,
    IB_V_DOC,
    IB_V_ERROR,
    /* items: the rows, each a LIST of one cell per column (null: an empty cell); names: the columns */
    IB_V_TABLE
} ib_vkind;

#define IB_TABLE_MAX_COLS 64u /* columns of one table (a formula's literals cannot name more anyway) */

#define IB_VALUE_MAX_ITEMS 100000u   /* items of one list */
#define IB_VALUE_MAX_STR (64u << 20) /* bytes of one string */
/* Lists within lists: bounds every recursive walk of a value, and keeps every value packable on the wire. A
 * field's value sits about 8 levels down in a reply or a job record (envelope, data, records, record, results,
 * field, ...), and msgpack-c unpacks at most 32 (ib_conv.c): 16 leaves room for both. */
#define IB_VALUE_MAX_NEST 16u

typedef struct ib_value ib_value;
struct ib_value {
    ib_vkind kind;
    uint32_t refs;
    char *str;        /* STR: text (NUL-terminated, may be borrowed, see own); ERROR: message */
    size_t len;       /* bytes of str */
    int own;          /* str is owned by the value */
    double num;       /* NUM */
    int b;            /* BOOL */
    ib_value **items; /* LIST, TABLE: owned references */
    size_t nitems;
    uint32_t nest;    /* LIST, TABLE: how deep lists nest in it (a list of strings: 0; a table: 1) */
    /* TABLE: the column names, a LIST of STR shared by the tables made from it (an owned reference) */
    ib_value *names;
    const ib_doc *doc;  /* DOC: borrowed from the record */
    const ib_text *map; /* STR that is exactly a rendering of the record's document: its spans map byte
                         * offsets back to words (borrowed from the evaluation context) */
    ib_pbox *prov;      /* where the value came from, one box per page, pages ascending */
    size_t nprov;
    uint32_t gen;   /* the budget (ib_vbudget) this value's bytes are charged to; 0: none */
    size_t charged; /* bytes charged to it: the value, its owned text, items and boxes */
};

/* A budget on the bytes of formula values alive at once (the value, its owned text, its list of items, its
 * boxes), so one record's formulas cannot take a runner's memory. The calling thread's current budget is charged
 * as values are built and credited as they are freed; a value built under another budget, or under none, is
 * never charged to this one (values may outlive their budget: they are then credited to nothing). Going past
 * `max` does not stop anything by itself: it sets `over`, which the evaluator looks at after each function. */
typedef struct ib_vbudget {
    size_t live;  /* bytes of this budget's values alive now */
    size_t max;   /* 0: no limit */
    uint32_t gen; /* this budget's mark on its values */
    int over;     /* live went past max (or a builder stopped short: ib_vbudget_exceed) since last cleared */
} ib_vbudget;

void ib_vbudget_init(ib_vbudget *b, size_t max);
/* Makes b (NULL: none) the calling thread's current budget; returns the previous one, to put back. */
ib_vbudget *ib_vbudget_use(ib_vbudget *b);
/* 1 when the current budget can take `more` bytes on top of what is alive (always, without a budget): code that
 * builds a large text asks before it allocates. */
int ib_vbudget_room(size_t more);
/* Marks the current budget exceeded: a builder refused by ib_vbudget_room returns a short result instead. */
void ib_vbudget_exceed(void);
/* 1 when the current budget has been exceeded (since last cleared). */
int ib_vbudget_over(void);
/* Counts bytes that are not values (a text being built) in the current budget while they exist. */
void ib_vbudget_hold(size_t bytes);
void ib_vbudget_release(size_t bytes);

ib_value *ib_v_null(void);
ib_value *ib_v_str(const char *s, size_t len); /* copies */
ib_value *ib_v_str_own(char *s);               /* takes a malloc'd NUL-terminated string */
ib_value *ib_v_str_take(char *s, size_t len);  /* takes a malloc'd string of len bytes (s[len] == '\0') */
ib_value *ib_v_str_borrow(const char *s, size_t len, const ib_text *map); /* s must outlive the value */
ib_value *ib_v_num(double n);
ib_value *ib_v_bool(int b);
ib_value *ib_v_list(void);
int ib_v_list_push(ib_value *list, ib_value *item); /* takes item; -1 when the list is full (item released) */
/* A table without rows over the column names `names` (a LIST of STR; takes the reference). Rows are added
 * with ib_v_list_push, each a LIST of exactly names->nitems cells. */
ib_value *ib_v_table(ib_value *names);
/* The index of the column called name (len bytes) in a table, or -1. */
int ib_v_table_col(const ib_value *table, const char *name, size_t len);
ib_value *ib_v_doc(const ib_doc *doc);
ib_value *ib_v_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

ib_value *ib_v_ref(ib_value *v);
void ib_v_unref(ib_value *v); /* NULL is fine */

/* Provenance: adds a box (merged into the union box of its page), or every box of src. 0 or -1. */
int ib_v_prov_add(ib_value *v, uint32_t page, ib_bbox box);
int ib_v_prov_merge(ib_value *v, const ib_value *src);

/* Numbers as text: integers without a fraction ("1234"), others with up to 15 significant digits. */
void ib_num_format(double n, char *buf, size_t bufsz);

/* Empty: null, an empty or all-white-space string, an empty list or table, an error. */
int ib_v_is_empty(const ib_value *v);

#endif
