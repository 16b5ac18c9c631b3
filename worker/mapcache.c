/* mapcache.c - in-process mapping cache (see mapcache.h).
 *
 * Why this shape: a warm event needs its customer, its term and one item per distinct
 * line (5.5 on the benchmark's workload) — each a Redis GET before this layer, about a
 * third of the worker's Redis round trips. The set of hot mappings is small (tenants x
 * products + contacts), so a fixed, set-associative table is enough: no allocation
 * after start, no unbounded growth, O(1) under a striped lock. An entry stores the full
 * key, so a hash collision can only cost a miss, never a wrong id.
 */
#include "worker/mapcache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"

#define WAYS    4
#define SETS    (MAPCACHE_ENTRIES / WAYS)
#define STRIPES 64

struct entry {
    uint64_t hash; /* 0 = empty */
    int64_t expires_ms;
    char key[MAPCACHE_KEY_MAX + 1];
    char val[MAPCACHE_VAL_MAX];
};

struct mapcache {
    int64_t ttl_ms;
    pthread_mutex_t mu[STRIPES];
    struct mapcache_stats st[STRIPES]; /* under the stripe's mutex */
    struct entry e[SETS][WAYS];
};

/* "<realm>:<suffix>" into key and its FNV-1a hash (never 0); -1 when too long. */
static int make_key(const char *realm, const char *suffix, char *key, uint64_t *hash)
{
    int n = snprintf(key, MAPCACHE_KEY_MAX + 1, "%s:%s", realm ? realm : "", suffix ? suffix : "");
    uint64_t h = 14695981039346656037ULL;

    if (n < 0 || n > MAPCACHE_KEY_MAX)
        return -1;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    *hash = h ? h : 1;
    return 0;
}

struct mapcache *mapcache_new(int64_t ttl_ms, char *errstr, size_t errsz)
{
    struct mapcache *mc;

    if (ttl_ms <= 0) {
        snprintf(errstr, errsz, "mapcache: the TTL must be positive");
        return NULL;
    }
    mc = calloc(1, sizeof *mc);
    if (!mc) {
        snprintf(errstr, errsz, "mapcache: out of memory");
        return NULL;
    }
    mc->ttl_ms = ttl_ms;
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&mc->mu[i], NULL);
    return mc;
}

void mapcache_free(struct mapcache *mc)
{
    if (!mc)
        return;
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_destroy(&mc->mu[i]);
    free(mc);
}

int mapcache_get(struct mapcache *mc, const char *realm, const char *suffix, char *val,
                 size_t valsz)
{
    char key[MAPCACHE_KEY_MAX + 1];
    uint64_t h;
    size_t set;
    int hit = 0, stripe;

    if (!mc || valsz < MAPCACHE_VAL_MAX || make_key(realm, suffix, key, &h) < 0)
        return 0;
    set = (size_t)(h % SETS);
    stripe = (int)(set % STRIPES);
    pthread_mutex_lock(&mc->mu[stripe]);
    for (int w = 0; w < WAYS; w++) {
        struct entry *e = &mc->e[set][w];
        if (e->hash == h && strcmp(e->key, key) == 0) {
            if (e->expires_ms > clock_mono_ms()) {
                memcpy(val, e->val, MAPCACHE_VAL_MAX);
                hit = 1;
            } else {
                e->hash = 0;
            }
            break;
        }
    }
    if (hit)
        mc->st[stripe].hits++;
    else
        mc->st[stripe].misses++;
    pthread_mutex_unlock(&mc->mu[stripe]);
    return hit;
}

void mapcache_put(struct mapcache *mc, const char *realm, const char *suffix, const char *val)
{
    char key[MAPCACHE_KEY_MAX + 1];
    struct entry *slot = NULL;
    uint64_t h;
    size_t set;
    int64_t now;
    int stripe;

    if (!mc || !val || strlen(val) >= MAPCACHE_VAL_MAX || make_key(realm, suffix, key, &h) < 0)
        return;
    set = (size_t)(h % SETS);
    stripe = (int)(set % STRIPES);
    now = clock_mono_ms();
    pthread_mutex_lock(&mc->mu[stripe]);
    for (int w = 0; w < WAYS && !slot; w++) {
        struct entry *e = &mc->e[set][w];
        if (e->hash == h && strcmp(e->key, key) == 0)
            slot = e;
    }
    for (int w = 0; w < WAYS && !slot; w++)
        if (mc->e[set][w].hash == 0 || mc->e[set][w].expires_ms <= now)
            slot = &mc->e[set][w];
    if (!slot) { /* full set: the entry that expires first goes */
        slot = &mc->e[set][0];
        for (int w = 1; w < WAYS; w++)
            if (mc->e[set][w].expires_ms < slot->expires_ms)
                slot = &mc->e[set][w];
        mc->st[stripe].evictions++;
    }
    slot->hash = h;
    slot->expires_ms = now + mc->ttl_ms;
    memcpy(slot->key, key, strlen(key) + 1);
    snprintf(slot->val, sizeof slot->val, "%s", val);
    mc->st[stripe].puts++;
    pthread_mutex_unlock(&mc->mu[stripe]);
}

void mapcache_del(struct mapcache *mc, const char *realm, const char *suffix)
{
    char key[MAPCACHE_KEY_MAX + 1];
    uint64_t h;
    size_t set;
    int stripe;

    if (!mc || make_key(realm, suffix, key, &h) < 0)
        return;
    set = (size_t)(h % SETS);
    stripe = (int)(set % STRIPES);
    pthread_mutex_lock(&mc->mu[stripe]);
    for (int w = 0; w < WAYS; w++)
        if (mc->e[set][w].hash == h && strcmp(mc->e[set][w].key, key) == 0)
            mc->e[set][w].hash = 0;
    pthread_mutex_unlock(&mc->mu[stripe]);
}

void mapcache_stats(struct mapcache *mc, struct mapcache_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!mc)
        return;
    for (int i = 0; i < STRIPES; i++) {
        pthread_mutex_lock(&mc->mu[i]);
        out->hits += mc->st[i].hits;
        out->misses += mc->st[i].misses;
        out->puts += mc->st[i].puts;
        out->evictions += mc->st[i].evictions;
        pthread_mutex_unlock(&mc->mu[i]);
    }
}
