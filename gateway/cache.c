/* gw cache: replies of ops declared cacheable (ib_op_spec.cached_by) kept as ready JSON bodies, keyed by op and
 * arguments, valid while the op's stamp file is the one seen before the reply was fetched. A lookup costs one
 * stat(2): marketplace/list then never leaves the gateway until the catalog changes. The stamp is read before
 * forwarding, so a change that lands while a reply is in flight makes that reply stale at once. */
#include "gw.h"

#include "ib_settings.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CACHE_SLOTS 64
#define CACHE_MAX_BODY (1u << 20)

typedef struct slot {
    char *key; /* "op\n" + canonical args */
    char *body;
    size_t len;
    gw_stamp stamp;
    unsigned long long used;
} slot;

static slot slots[CACHE_SLOTS];
static unsigned long long tick;
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;

void gw_stamp_read(const char *stamp, gw_stamp *out)
{
    char path[4096];
    struct stat st;
    memset(out, 0, sizeof *out);
    if (stat(ib_data_path(stamp, path, sizeof path), &st) == 0) {
        out->dev = st.st_dev;
        out->ino = st.st_ino;
        out->size = st.st_size;
        out->mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
        out->exists = 1;
    }
}

static int same_stamp(const gw_stamp *a, const gw_stamp *b)
{
    return a->exists && b->exists && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_ns == b->mtime_ns;
}

char *gw_cache_key(const char *op, const json_t *args)
{
    char *canon = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS);
    if (!canon) return NULL;
    size_t n = strlen(op) + strlen(canon) + 2;
    char *key = malloc(n);
    if (key) snprintf(key, n, "%s\n%s", op, canon);
    free(canon);
    return key;
}

char *gw_cache_get(const char *key, const gw_stamp *now, size_t *len)
{
    char *out = NULL;
    pthread_mutex_lock(&cache_mu);
    for (int i = 0; i < CACHE_SLOTS; i++)
        if (slots[i].key && !strcmp(slots[i].key, key)) {
            if (same_stamp(&slots[i].stamp, now) && (out = malloc(slots[i].len + 1))) {
                memcpy(out, slots[i].body, slots[i].len + 1);
                *len = slots[i].len;
                slots[i].used = ++tick;
            }
            break;
        }
    pthread_mutex_unlock(&cache_mu);
    return out;
}

void gw_cache_put(const char *key, const gw_stamp *seen, const char *body, size_t len)
{
    if (!seen->exists || len > CACHE_MAX_BODY) return;
    char *k = strdup(key), *b = malloc(len + 1);
    if (!k || !b) {
        free(k);
        free(b);
        return;
    }
    memcpy(b, body, len);
    b[len] = '\0';
    pthread_mutex_lock(&cache_mu);
    int pick = 0;
    for (int i = 0; i < CACHE_SLOTS; i++) {
        if (slots[i].key && !strcmp(slots[i].key, key)) {
            pick = i;
            break;
        }
        if (!slots[i].key || slots[i].used < slots[pick].used) pick = i;
    }
    free(slots[pick].key);
    free(slots[pick].body);
    slots[pick] = (slot){k, b, len, *seen, ++tick};
    pthread_mutex_unlock(&cache_mu);
}

void gw_cache_clear(void)
{
    pthread_mutex_lock(&cache_mu);
    for (int i = 0; i < CACHE_SLOTS; i++) {
        free(slots[i].key);
        free(slots[i].body);
        slots[i] = (slot){0};
    }
    pthread_mutex_unlock(&cache_mu);
}
