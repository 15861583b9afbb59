/* ib_value: the values formulas compute: null, string, number, boolean, list, the record's document, and
 * error. Every value carries its provenance: the page and the bounding box (per page) of the words it came
 * from, so a field result can point at its place in the document. Values are reference counted and immutable
 * once built; one record is evaluated by one thread, so counts are not atomic. */
#ifndef IB_VALUE_H
#define IB_VALUE_H

#include "ib_doc.h"
#include "ib_spatial.h"

#include <stddef.h>
#include <stdint.h>

typedef enum ib_vkind { IB_V_NULL, IB_V_STR, IB_V_NUM, IB_V_BOOL, IB_V_LIST, IB_V_DOC, IB_V_ERROR } ib_vkind;

#define IB_VALUE_MAX_ITEMS 100000u   /* items of one list */
#define IB_VALUE_MAX_STR (64u << 20) /* bytes of one string */

typedef struct ib_value ib_value;
struct ib_value {
    ib_vkind kind;
    uint32_t refs;
    char *str;        /* STR: text (NUL-terminated, may be borrowed, see own); ERROR: message */
    size_t len;       /* bytes of str */
    int own;          /* str is owned by the value */
    double num;       /* NUM */
    int b;            /* BOOL */
    ib_value **items; /* LIST: owned references */
    size_t nitems;
    const ib_doc *doc;  /* DOC: borrowed from the record */
    const ib_text *map; /* STR that is exactly a rendering of the record's document: its spans map byte
                         * offsets back to words (borrowed from the evaluation context) */
    ib_pbox *prov;      /* where the value came from, one box per page, pages ascending */
    size_t nprov;
};

ib_value *ib_v_null(void);
ib_value *ib_v_str(const char *s, size_t len); /* copies */
ib_value *ib_v_str_own(char *s);               /* takes a malloc'd NUL-terminated string */
ib_value *ib_v_str_borrow(const char *s, size_t len, const ib_text *map); /* s must outlive the value */
ib_value *ib_v_num(double n);
ib_value *ib_v_bool(int b);
ib_value *ib_v_list(void);
int ib_v_list_push(ib_value *list, ib_value *item); /* takes item; -1 when the list is full (item released) */
ib_value *ib_v_doc(const ib_doc *doc);
ib_value *ib_v_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

ib_value *ib_v_ref(ib_value *v);
void ib_v_unref(ib_value *v); /* NULL is fine */

/* Provenance: adds a box (merged into the union box of its page), or every box of src. 0 or -1. */
int ib_v_prov_add(ib_value *v, uint32_t page, ib_bbox box);
int ib_v_prov_merge(ib_value *v, const ib_value *src);

/* Numbers as text: integers without a fraction ("1234"), others with up to 15 significant digits. */
void ib_num_format(double n, char *buf, size_t bufsz);

/* Empty: null, an empty or all-white-space string, an empty list, an error. */
int ib_v_is_empty(const ib_value *v);

#endif
