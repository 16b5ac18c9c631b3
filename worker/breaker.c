/* breaker.c - per-tenant circuit breakers (see breaker.h for the state machine).
 *
 * A chained hash table of tenant entries under one mutex: every call is a hash lookup and
 * a few assignments, far cheaper than the HTTP call it guards, so one lock is enough.
 * OPEN turns into HALF_OPEN lazily, when someone asks after the cooldown; there is no
 * timer thread. Entries are only ever created by a failure (a tenant that never failed
 * costs nothing), and a CLOSED entry with no failures left is what eviction takes first.
 */
#include "worker/breaker.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS         16384 /* power of two, > BREAKER_MAX_TENANTS */
#define PROBE_BUSY_DELAY 1000  /* a denied caller behind an in-flight probe looks again */

struct entry {
    struct entry *next; /* bucket chain */
    enum breaker_state state;
    int failures;        /* consecutive, while CLOSED */
    int64_t open_until;  /* OPEN: monotonic end of the cooldown */
    int64_t cooldown;    /* the current open period (doubles on a failed probe) */
    int64_t probe_since; /* HALF_OPEN: when the probe was handed out, 0 = none */
    int64_t last_used;
    char tenant[BREAKER_TENANT_MAX + 1];
};

struct breaker {
    struct breaker_opts o;
    pthread_mutex_t mu;
    struct entry *buckets[NBUCKETS];
    size_t n, nopen;
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h ^ (h >> 31);
}

const char *breaker_state_name(enum breaker_state st)
{
    switch (st) {
    case BREAKER_HALF_OPEN:
        return "half_open";
    case BREAKER_OPEN:
        return "open";
    default:
        return "closed";
    }
}

void breaker_opts_from_config(struct breaker_opts *o, const struct config *cfg)
{
    memset(o, 0, sizeof *o);
    o->threshold = (int)config_get_int(cfg, "breaker.failures");
    o->cooldown_ms = config_get_ms(cfg, "breaker.cooldown");
    o->max_cooldown_ms = config_get_ms(cfg, "breaker.max_cooldown");
}

struct breaker *breaker_new(const struct breaker_opts *o, char *errstr, size_t errsz)
{
    struct breaker *b;

    if (o->threshold < 0 ||
        (o->threshold > 0 && (o->cooldown_ms <= 0 || o->max_cooldown_ms < o->cooldown_ms))) {
        snprintf(errstr, errsz,
                 "breaker: threshold >= 0, cooldown > 0 and max_cooldown >= "
                 "cooldown are required");
        return NULL;
    }
    if (!(b = calloc(1, sizeof *b))) {
        snprintf(errstr, errsz, "breaker: out of memory");
        return NULL;
    }
    b->o = *o;
    pthread_mutex_init(&b->mu, NULL);
    return b;
}

void breaker_free(struct breaker *b)
{
    size_t i;

    if (!b)
        return;
    for (i = 0; i < NBUCKETS; i++)
        while (b->buckets[i]) {
            struct entry *e = b->buckets[i];

            b->buckets[i] = e->next;
            free(e);
        }
    pthread_mutex_destroy(&b->mu);
    free(b);
}

static struct entry *find(struct breaker *b, const char *tenant)
{
    struct entry *e;

    for (e = b->buckets[hash(tenant) & (NBUCKETS - 1)]; e; e = e->next)
        if (strcmp(e->tenant, tenant) == 0)
            return e;
    return NULL;
}

static void set_state(struct breaker *b, struct entry *e, enum breaker_state st)
{
    if (e->state == st)
        return;
    b->nopen += (st != BREAKER_CLOSED) - (e->state != BREAKER_CLOSED);
    e->state = st;
    if (b->o.on_change)
        b->o.on_change(b->o.opaque, e->tenant, st);
}

/* Drop the least recently used CLOSED entry; 0, or -1 when every entry is open. */
static int evict(struct breaker *b)
{
    struct entry **pp, **victim = NULL;
    size_t i;

    for (i = 0; i < NBUCKETS; i++)
        for (pp = &b->buckets[i]; *pp; pp = &(*pp)->next)
            if ((*pp)->state == BREAKER_CLOSED &&
                (!victim || (*pp)->last_used < (*victim)->last_used))
                victim = pp;
    if (!victim)
        return -1;
    {
        struct entry *e = *victim;

        *victim = e->next;
        free(e);
    }
    b->n--;
    return 0;
}

/* The tenant's entry, created when absent; NULL when it cannot be tracked. */
static struct entry *get(struct breaker *b, const char *tenant)
{
    struct entry *e = find(b, tenant);
    size_t h;

    if (e || strlen(tenant) > BREAKER_TENANT_MAX)
        return e;
    if (b->n >= BREAKER_MAX_TENANTS && evict(b) < 0)
        return NULL;
    if (!(e = calloc(1, sizeof *e)))
        return NULL;
    snprintf(e->tenant, sizeof e->tenant, "%s", tenant);
    e->cooldown = b->o.cooldown_ms;
    h = hash(tenant) & (NBUCKETS - 1);
    e->next = b->buckets[h];
    b->buckets[h] = e;
    b->n++;
    return e;
}

/* OPEN past its cooldown reads as HALF_OPEN (no probe yet). */
static void age(struct breaker *b, struct entry *e, int64_t now)
{
    if (e->state == BREAKER_OPEN && now >= e->open_until) {
        e->probe_since = 0;
        set_state(b, e, BREAKER_HALF_OPEN);
    }
}

enum breaker_verdict breaker_acquire(struct breaker *b, const char *tenant, int64_t now_ms,
                                     int64_t *retry_at_ms)
{
    enum breaker_verdict v = BREAKER_ALLOW;
    struct entry *e;

    if (!b || b->o.threshold == 0 || !tenant)
        return BREAKER_ALLOW;
    pthread_mutex_lock(&b->mu);
    e = find(b, tenant);
    if (e) {
        e->last_used = now_ms;
        age(b, e, now_ms);
        if (e->state == BREAKER_OPEN) {
            v = BREAKER_DENY;
            if (retry_at_ms)
                *retry_at_ms = e->open_until;
        } else if (e->state == BREAKER_HALF_OPEN) {
            /* a probe that never reported back is given up after one cooldown */
            if (e->probe_since == 0 || now_ms - e->probe_since >= e->cooldown) {
                e->probe_since = now_ms;
                v = BREAKER_PROBE;
            } else {
                v = BREAKER_DENY;
                if (retry_at_ms)
                    *retry_at_ms = now_ms + PROBE_BUSY_DELAY;
            }
        }
    }
    pthread_mutex_unlock(&b->mu);
    return v;
}

void breaker_success(struct breaker *b, const char *tenant, int64_t now_ms)
{
    struct entry *e;

    if (!b || b->o.threshold == 0 || !tenant)
        return;
    pthread_mutex_lock(&b->mu);
    if ((e = find(b, tenant)) != NULL) {
        e->last_used = now_ms;
        e->failures = 0;
        e->probe_since = 0;
        e->cooldown = b->o.cooldown_ms;
        set_state(b, e, BREAKER_CLOSED);
    }
    pthread_mutex_unlock(&b->mu);
}

enum breaker_state breaker_failure(struct breaker *b, const char *tenant, int64_t now_ms)
{
    enum breaker_state st = BREAKER_CLOSED;
    struct entry *e;

    if (!b || b->o.threshold == 0 || !tenant)
        return BREAKER_CLOSED;
    pthread_mutex_lock(&b->mu);
    if ((e = get(b, tenant)) != NULL) {
        e->last_used = now_ms;
        age(b, e, now_ms);
        switch (e->state) {
        case BREAKER_CLOSED:
            if (++e->failures >= b->o.threshold) {
                e->open_until = now_ms + e->cooldown;
                set_state(b, e, BREAKER_OPEN);
            }
            break;
        case BREAKER_HALF_OPEN: /* the probe (or a caller let in before) failed */
            e->cooldown =
                e->cooldown * 2 > b->o.max_cooldown_ms ? b->o.max_cooldown_ms : e->cooldown * 2;
            e->open_until = now_ms + e->cooldown;
            e->probe_since = 0;
            set_state(b, e, BREAKER_OPEN);
            break;
        case BREAKER_OPEN:
            break;
        }
        st = e->state;
    }
    pthread_mutex_unlock(&b->mu);
    return st;
}

enum breaker_state breaker_state(struct breaker *b, const char *tenant, int64_t now_ms)
{
    enum breaker_state st = BREAKER_CLOSED;
    struct entry *e;

    if (!b || !tenant)
        return BREAKER_CLOSED;
    pthread_mutex_lock(&b->mu);
    if ((e = find(b, tenant)) != NULL) {
        age(b, e, now_ms);
        st = e->state;
    }
    pthread_mutex_unlock(&b->mu);
    return st;
}

size_t breaker_open_count(struct breaker *b)
{
    size_t n;

    if (!b)
        return 0;
    pthread_mutex_lock(&b->mu);
    n = b->nopen;
    pthread_mutex_unlock(&b->mu);
    return n;
}
