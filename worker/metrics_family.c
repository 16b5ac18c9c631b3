/* metrics_family.c - the lock-free series store behind every labelled family.
 *
 * Each family is an open-addressing hash table of atomically published series pointers
 * plus an insertion-order array for rendering. An update hashes the (sanitised) label
 * values and probes the table with acquire loads; a hit is returned without a lock, so
 * the caller's relaxed atomic add is the whole hot path. A miss takes the family's
 * mutex, probes again (another thread may have won the race), and either appends a new
 * series and publishes it with a release store, or, when the family already holds
 * max_series label sets, folds the update into the family's "other" series. Once a
 * family is full, a miss goes straight to "other" without the mutex, so a cardinality
 * bug degrades into a counted overflow rather than lock contention. Series are only
 * freed by metrics_family_release(), which is what makes the unlocked readers safe.
 *
 * This file knows no metric name: what a family is called and how it renders comes from
 * its struct fam_def (metrics.c), so the store can be read and tested on its own terms.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/metrics_internal.h"

/* Copy a label value: at most METRICS_MAX_LABEL_LEN bytes, cut on a UTF-8 boundary,
 * bytes that do not form valid UTF-8 replaced by '?', so the exposition stays valid. */
static void label_sanitize(char *dst, const char *src)
{
    const unsigned char *s = (const unsigned char *)(src ? src : "");
    size_t o = 0, i = 0, need, k;

    while (s[i] != '\0') {
        unsigned char c = s[i];
        if (c < 0x80)
            need = 1;
        else if (c >= 0xc2 && c <= 0xdf)
            need = 2;
        else if (c >= 0xe0 && c <= 0xef)
            need = 3;
        else if (c >= 0xf0 && c <= 0xf4)
            need = 4;
        else
            need = 0;
        for (k = 1; k < need; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                break;
        if (need > 1 && k == need) {
            /* reject overlongs and surrogates the lead byte alone does not exclude */
            if ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] > 0x9f) ||
                (c == 0xf0 && s[i + 1] < 0x90) || (c == 0xf4 && s[i + 1] > 0x8f))
                need = 0;
        } else if (need > 1) {
            need = 0;
        }
        if (o + (need ? need : 1) > METRICS_MAX_LABEL_LEN)
            break;
        if (need == 0) {
            dst[o++] = '?';
            i++;
        } else {
            memcpy(dst + o, s + i, need);
            o += need;
            i += need;
        }
    }
    dst[o] = '\0';
}

static uint64_t labels_hash(char vals[][METRICS_MAX_LABEL_LEN + 1], size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    size_t i;
    const unsigned char *p;

    for (i = 0; i < n; i++) {
        for (p = (const unsigned char *)vals[i]; *p != '\0'; p++)
            h = (h ^ *p) * 1099511628211ULL;
        h = (h ^ 0xffu) * 1099511628211ULL; /* separator: ("ab","") != ("a","b") */
    }
    return h;
}

static int series_match(const struct series *s, uint64_t h, char vals[][METRICS_MAX_LABEL_LEN + 1],
                        size_t n)
{
    size_t i;

    if (s->hash != h)
        return 0;
    for (i = 0; i < n; i++)
        if (strcmp(s->vals[i], vals[i]) != 0)
            return 0;
    return 1;
}

static struct series *table_find(struct family *f, uint64_t h,
                                 char vals[][METRICS_MAX_LABEL_LEN + 1])
{
    size_t mask = f->cap - 1, i = h & mask, probes;
    struct series *s;

    for (probes = 0; probes < f->cap; probes++, i = (i + 1) & mask) {
        s = atomic_load_explicit(&f->slots[i], memory_order_acquire);
        if (!s)
            return NULL;
        if (series_match(s, h, vals, f->def->nlabels))
            return s;
    }
    return NULL;
}

static void series_free(struct series *s)
{
    size_t i;

    if (!s)
        return;
    for (i = 0; i < MAX_LABELS; i++)
        free(s->vals[i]);
    free((void *)s->buckets);
    free(s);
}

static struct series *series_new(const struct fam_def *d, uint64_t h,
                                 char vals[][METRICS_MAX_LABEL_LEN + 1])
{
    struct series *s = calloc(1, sizeof(*s));
    size_t i;

    if (!s)
        return NULL;
    s->hash = h;
    atomic_init(&s->visible, 1);
    for (i = 0; i < d->nlabels; i++)
        if ((s->vals[i] = strdup(vals[i])) == NULL)
            goto fail;
    if (d->kind == K_HISTOGRAM) {
        s->buckets = calloc(d->nbuckets + 1, sizeof(*s->buckets));
        if (!s->buckets)
            goto fail;
    }
    return s;
fail:
    series_free(s);
    return NULL;
}

/* Under f->lock: insert s (its slot must be free) and publish it. */
static void table_insert(struct family *f, struct series *s)
{
    size_t mask = f->cap - 1, i = s->hash & mask;

    while (atomic_load_explicit(&f->slots[i], memory_order_relaxed))
        i = (i + 1) & mask;
    f->order[atomic_load_explicit(&f->n, memory_order_relaxed)] = s;
    atomic_store_explicit(&f->slots[i], s, memory_order_release);
    atomic_fetch_add_explicit(&f->n, 1, memory_order_release);
}

/* Under f->lock: the "other" series, created on first use in the reserved last entry. */
static struct series *other_locked(struct family *f)
{
    char vals[MAX_LABELS][METRICS_MAX_LABEL_LEN + 1];
    struct series *s = atomic_load_explicit(&f->other, memory_order_acquire);
    size_t i;
    uint64_t h;

    if (s)
        return s;
    for (i = 0; i < f->def->nlabels; i++)
        snprintf(vals[i], sizeof vals[i], "other");
    h = labels_hash(vals, f->def->nlabels);
    if ((s = table_find(f, h, vals)) == NULL) {
        if ((s = series_new(f->def, h, vals)) == NULL)
            return NULL;
        table_insert(f, s);
    }
    atomic_store_explicit(&f->other, s, memory_order_release);
    return s;
}

/* The series for these label values, or NULL (allocation failure: the update is lost,
 * never the process). */
struct series *metrics_family_get(struct family *f, const char *const *raw)
{
    char vals[MAX_LABELS][METRICS_MAX_LABEL_LEN + 1];
    size_t i, n = f->def->nlabels;
    struct series *s;
    uint64_t h;

    for (i = 0; i < n; i++)
        label_sanitize(vals[i], raw[i]);
    h = labels_hash(vals, n);
    if ((s = table_find(f, h, vals)) != NULL)
        return s;
    if (atomic_load_explicit(&f->full, memory_order_acquire) &&
        (s = atomic_load_explicit(&f->other, memory_order_acquire)) != NULL) {
        atomic_fetch_add_explicit(&f->overflow, 1, memory_order_relaxed);
        return s;
    }
    pthread_mutex_lock(&f->lock);
    if ((s = table_find(f, h, vals)) == NULL) {
        if (atomic_load_explicit(&f->n, memory_order_relaxed) < f->max) {
            if ((s = series_new(f->def, h, vals)) != NULL)
                table_insert(f, s);
        } else {
            s = other_locked(f);
            atomic_store_explicit(&f->full, 1, memory_order_release);
            atomic_fetch_add_explicit(&f->overflow, 1, memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&f->lock);
    return s;
}

int metrics_family_init(struct family *f, const struct fam_def *d, size_t max)
{
    size_t cap = 8;

    memset(f, 0, sizeof(*f));
    f->def = d;
    f->max = max;
    while (cap < 2 * (max + 1))
        cap *= 2;
    f->cap = cap;
    f->slots = calloc(cap, sizeof(*f->slots));
    f->order = calloc(max + 1, sizeof(struct series *));
    if (!f->slots || !f->order) {
        free((void *)f->slots);
        free(f->order);
        return -1;
    }
    pthread_mutex_init(&f->lock, NULL);
    return 0;
}

void metrics_family_release(struct family *f)
{
    size_t i, n;

    if (!f->slots)
        return;
    n = atomic_load(&f->n);
    for (i = 0; i < n; i++)
        series_free(f->order[i]);
    free((void *)f->slots);
    free(f->order);
    pthread_mutex_destroy(&f->lock);
}
