/* ratelimit.c - per-tenant rate and concurrency limits (see ratelimit.h).
 *
 * Two layers, taken in this order and given back in reverse:
 *
 *   local slot  (mutex + condvar per active tenant; bounded by local_concurrency)
 *      |
 *   Redis admission (ACQUIRE_LUA, one atomic script on the tenant's keys):
 *      blocked-until in the future?           -> {1, ms until it ends}
 *      limit entries in the last window_ms?    -> {2, ms until the oldest leaves}
 *      global leases all taken (QBO)?          -> {3, ms until the first lease expires}
 *      else add a lease (when capped) and a log entry, -> {0, 0}
 *
 * The caller sleeps what the script said (a concurrency wait is polled every poll_ms,
 * because another replica's release cannot be observed) and asks again, until admitted
 * or until the next wait would end past its deadline: then RL_TIMEOUT at once, so a
 * pipeline with a short budget parks the event instead of sleeping in vain.
 *
 * Why a sliding log rather than GCRA: the upstreams count requests in rolling windows
 * (HubSpot's TEN_SECONDLY_ROLLING, the sandbox's exact 60 s window for QBO). The log is
 * exact for that rule at a cost of one sorted-set member per request in the window
 * (<= limit, at most 10,000 by the settings' bounds). The script reads Redis's clock, so
 * replica clock skew does not matter; Redis 7 replicates script effects, so TIME before
 * writes is allowed.
 */
#include "worker/ratelimit.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"

#define RL_MAX_PENALTY_MS (3600LL * 1000)
#define RL_LOCAL_BUCKETS  64

static const char ACQUIRE_LUA[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local limit = tonumber(ARGV[1])\n"
    "local window = tonumber(ARGV[2])\n"
    "local cap = tonumber(ARGV[3])\n"
    "local lease = tonumber(ARGV[4])\n"
    "local b = redis.call('ZSCORE', KEYS[1], 'blocked')\n"
    "if b then\n"
    "  b = tonumber(b)\n"
    "  if b > now then return {1, b - now} end\n"
    "  redis.call('ZREM', KEYS[1], 'blocked')\n"
    "end\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)\n"
    "if redis.call('ZCARD', KEYS[1]) >= limit then\n"
    "  local o = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')\n"
    "  local w = tonumber(o[2]) + window - now\n"
    "  if w < 1 then w = 1 end\n"
    "  return {2, w}\n"
    "end\n"
    "if cap > 0 then\n"
    "  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)\n"
    "  if redis.call('ZCARD', KEYS[2]) >= cap then\n"
    "    local f = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')\n"
    "    local w = tonumber(f[2]) - now\n"
    "    if w < 1 then w = 1 end\n"
    "    return {3, w}\n"
    "  end\n"
    "  redis.call('ZADD', KEYS[2], now + lease, ARGV[5])\n"
    "  redis.call('PEXPIRE', KEYS[2], lease)\n"
    "end\n"
    "redis.call('ZADD', KEYS[1], now, ARGV[5])\n"
    "local extra = 0\n"
    "local ahead = tonumber(ARGV[6])\n"
    "if ahead > 0 then\n"
    "  extra = math.min(ahead, limit - redis.call('ZCARD', KEYS[1]))\n"
    "  for i = 1, extra do redis.call('ZADD', KEYS[1], now, ARGV[5] .. ':' .. i) end\n"
    "end\n"
    "redis.call('PEXPIRE', KEYS[1], window)\n"
    "return {0, 0, extra}\n";

/* After the request: its log entry takes the completion time (only if it is still in the
 * log: XX), so the worker's window never frees a slot before the upstream's does (the
 * upstream counts a request when it arrives, which is between admission and completion);
 * the key lives a window past that stamp; the global lease, when there is one, goes. */
static const char RELEASE_LUA[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local window = tonumber(ARGV[2])\n"
    "if redis.call('ZADD', KEYS[1], 'XX', 'CH', now, ARGV[1]) == 1 and\n"
    "   redis.call('PTTL', KEYS[1]) < window then\n"
    "  redis.call('PEXPIRE', KEYS[1], window)\n"
    "end\n"
    "if ARGV[3] == '1' then redis.call('ZREM', KEYS[2], ARGV[1]) end\n"
    "return 0\n";

/* Unused entries admitted ahead (ratelimit_prefetch_drop): out of the log. */
static const char DROP_LUA[] = "for i = 1, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) end\n"
                               "return 0\n";

/* The block never shortens, and the key outlives both the block and the log. */
static const char PENALIZE_LUA[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local untl = now + tonumber(ARGV[1])\n"
    "local cur = redis.call('ZSCORE', KEYS[1], 'blocked')\n"
    "if (not cur) or tonumber(cur) < untl then\n"
    "  redis.call('ZADD', KEYS[1], untl, 'blocked')\n"
    "else\n"
    "  untl = tonumber(cur)\n"
    "end\n"
    "local need = untl - now + tonumber(ARGV[2])\n"
    "if redis.call('PTTL', KEYS[1]) < need then redis.call('PEXPIRE', KEYS[1], need) end\n"
    "return untl - now\n";

/* One tenant with requests in flight (or waiting) in this process. */
struct local_entry {
    struct local_entry *next;
    enum ratelimit_kind kind;
    int inflight;
    int waiters;
    pthread_cond_t cond;
    char tenant[RATELIMIT_TENANT_MAX + 1];
};

/* The script arguments that depend only on the kind, formatted once at start-up. */
struct kind_args {
    char limit[24], window[24], cap[24], lease[24];
};

struct ratelimit {
    struct ratelimit_opts o;
    struct kind_args args[RL_KIND_COUNT];
    struct redis_script acquire, release, penalize, drop;
    pthread_mutex_t mu;
    struct local_entry *buckets[RL_LOCAL_BUCKETS];
};

static const char *const kind_names[RL_KIND_COUNT] = {"qbo", "hs"};

const char *ratelimit_kind_name(enum ratelimit_kind k)
{
    return (unsigned)k < RL_KIND_COUNT ? kind_names[k] : NULL;
}

void ratelimit_opts_default(struct ratelimit_opts *o)
{
    memset(o, 0, sizeof *o);
    o->kind[RL_QBO] = (struct ratelimit_limits){.limit = 500,
                                                .window_ms = 60000,
                                                .local_concurrency = 10,
                                                .global_concurrency = 10,
                                                .lease_ms = 120000};
    o->kind[RL_HUBSPOT] = (struct ratelimit_limits){
        .limit = 100, .window_ms = 10000, .local_concurrency = 6, .lease_ms = 120000};
    o->poll_ms = 50;
}

struct ratelimit *ratelimit_new_opts(const struct ratelimit_opts *o, char *errstr, size_t errsz)
{
    struct ratelimit *rl = NULL;

    for (int k = 0; k < RL_KIND_COUNT; k++) {
        const struct ratelimit_limits *l = &o->kind[k];
        if (l->limit < 1 || l->window_ms < 1 || l->local_concurrency < 1 ||
            l->global_concurrency < 0 || (l->global_concurrency > 0 && l->lease_ms < 1)) {
            snprintf(errstr, errsz, "ratelimit: bad limits for %s", kind_names[k]);
            return NULL;
        }
    }
    if (o->poll_ms < 1) {
        snprintf(errstr, errsz, "ratelimit: poll_ms must be >= 1");
        return NULL;
    }
    rl = calloc(1, sizeof *rl);
    if (!rl) {
        snprintf(errstr, errsz, "ratelimit: out of memory");
        return NULL;
    }
    rl->o = *o;
    for (int k = 0; k < RL_KIND_COUNT; k++) {
        const struct ratelimit_limits *l = &o->kind[k];
        struct kind_args *a = &rl->args[k];
        snprintf(a->limit, sizeof a->limit, "%lld", (long long)l->limit);
        snprintf(a->window, sizeof a->window, "%lld", (long long)l->window_ms);
        snprintf(a->cap, sizeof a->cap, "%d", l->global_concurrency);
        snprintf(a->lease, sizeof a->lease, "%lld", (long long)l->lease_ms);
    }
    if (redis_script_init(&rl->acquire, ACQUIRE_LUA, errstr, errsz) < 0 ||
        redis_script_init(&rl->release, RELEASE_LUA, errstr, errsz) < 0 ||
        redis_script_init(&rl->penalize, PENALIZE_LUA, errstr, errsz) < 0 ||
        redis_script_init(&rl->drop, DROP_LUA, errstr, errsz) < 0) {
        free(rl);
        return NULL;
    }
    pthread_mutex_init(&rl->mu, NULL);
    return rl;
}

struct ratelimit *ratelimit_new(const struct config *cfg, char *errstr, size_t errsz)
{
    struct ratelimit_opts o;
    int64_t timeout = config_get_ms(cfg, "http.timeout");

    ratelimit_opts_default(&o);
    o.kind[RL_QBO].limit = config_get_int(cfg, "qbo.rate_limit_per_min");
    o.kind[RL_QBO].local_concurrency = (int)config_get_int(cfg, "qbo.max_concurrent_per_realm");
    o.kind[RL_QBO].lease_ms = 2 * timeout + 10000;
    o.kind[RL_HUBSPOT].limit = config_get_int(cfg, "hubspot.rate_limit_per_10s");
    o.kind[RL_HUBSPOT].local_concurrency =
        (int)config_get_int(cfg, "hubspot.max_concurrent_per_portal");
    o.kind[RL_HUBSPOT].lease_ms = 2 * timeout + 10000;
    return ratelimit_new_opts(&o, errstr, errsz);
}

void ratelimit_free(struct ratelimit *rl)
{
    if (!rl)
        return;
    for (int i = 0; i < RL_LOCAL_BUCKETS; i++) {
        struct local_entry *e = rl->buckets[i], *next;
        for (; e; e = next) {
            next = e->next;
            pthread_cond_destroy(&e->cond);
            free(e);
        }
    }
    pthread_mutex_destroy(&rl->mu);
    free(rl);
}

static int check_tenant(enum ratelimit_kind kind, const char *tenant, char *errstr, size_t errsz)
{
    size_t n;

    if ((unsigned)kind >= RL_KIND_COUNT) {
        snprintf(errstr, errsz, "ratelimit: bad tenant kind %d", (int)kind);
        return -1;
    }
    n = tenant ? strlen(tenant) : 0;
    if (n == 0 || n > RATELIMIT_TENANT_MAX || strpbrk(tenant, "{} \r\n")) {
        snprintf(errstr, errsz, "ratelimit: bad tenant id");
        return -1;
    }
    return 0;
}

/* A tenant's keys: <prefix>rate:{<kind>:<tenant>} and the same + ":conc". */
struct rl_keys {
    char rate[REDIS_MAX_KEY + 1];
    char conc[REDIS_MAX_KEY + 1];
};

static int build_keys(struct redis_conn *redis, enum ratelimit_kind kind, const char *tenant,
                      struct rl_keys *k, char *errstr, size_t errsz)
{
    const char *parts[] = {redis_conn_prefix(redis), "rate:{", kind_names[kind], ":", tenant, "}"};
    char *rate = k->rate, *conc = k->conc;
    size_t n = 0, sz = sizeof k->rate;

    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        size_t l = strlen(parts[i]);
        if (n + l + 5 >= sz) {
            snprintf(errstr, errsz, "ratelimit: key too long");
            return -1;
        }
        memcpy(rate + n, parts[i], l);
        n += l;
    }
    rate[n] = '\0';
    memcpy(conc, rate, n);
    memcpy(conc + n, ":conc", 6);
    return 0;
}

/* A lease token only has to be unique among the live leases of all replicas: 64 random
 * bits drawn once per thread, then a per-thread counter, so an admission costs no
 * getrandom() system call. */
static int make_token(char *dst, size_t dstsz)
{
    static __thread uint64_t seed, counter;
    static __thread int seeded;
    static const char hex[] = "0123456789abcdef";
    uint64_t w[2];

    if (dstsz < 33)
        return -1;
    if (!seeded) {
        if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
            return -1;
        seeded = 1;
    }
    w[0] = seed;
    w[1] = ++counter;
    for (int i = 0; i < 32; i++)
        dst[i] = hex[(w[i / 16] >> (60 - 4 * (i % 16))) & 15];
    dst[32] = '\0';
    return 0;
}

/* ---- local concurrency ------------------------------------------------------------ */

static unsigned bucket_of(enum ratelimit_kind kind, const char *tenant)
{
    uint32_t h = 2166136261u ^ (uint32_t)kind;
    for (const unsigned char *p = (const unsigned char *)tenant; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % RL_LOCAL_BUCKETS;
}

/* Under rl->mu. Creates the entry when absent; NULL only when out of memory. */
static struct local_entry *local_get(struct ratelimit *rl, enum ratelimit_kind kind,
                                     const char *tenant)
{
    unsigned b = bucket_of(kind, tenant);
    struct local_entry *e;

    for (e = rl->buckets[b]; e; e = e->next)
        if (e->kind == kind && strcmp(e->tenant, tenant) == 0)
            return e;
    e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->kind = kind;
    snprintf(e->tenant, sizeof e->tenant, "%s", tenant);
    clock_cond_init(&e->cond);
    e->next = rl->buckets[b];
    rl->buckets[b] = e;
    return e;
}

/* Under rl->mu: drop an idle entry so the table holds only active tenants. */
static void local_maybe_drop(struct ratelimit *rl, struct local_entry *e)
{
    struct local_entry **pp;

    if (e->inflight > 0 || e->waiters > 0)
        return;
    for (pp = &rl->buckets[bucket_of(e->kind, e->tenant)]; *pp; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            pthread_cond_destroy(&e->cond);
            free(e);
            return;
        }
    }
}

/* 0 = slot taken, 1 = deadline passed, -1 = out of memory. */
static int local_acquire(struct ratelimit *rl, enum ratelimit_kind kind, const char *tenant,
                         int64_t deadline_ms)
{
    struct local_entry *e;
    int cap = rl->o.kind[kind].local_concurrency, rc = 0;
    struct timespec ts;

    clock_timespec(deadline_ms, &ts);

    pthread_mutex_lock(&rl->mu);
    e = local_get(rl, kind, tenant);
    if (!e) {
        pthread_mutex_unlock(&rl->mu);
        return -1;
    }
    e->waiters++;
    while (e->inflight >= cap) {
        if (clock_mono_ms() >= deadline_ms ||
            pthread_cond_timedwait(&e->cond, &rl->mu, &ts) == ETIMEDOUT) {
            if (e->inflight >= cap)
                rc = 1;
            break;
        }
    }
    e->waiters--;
    if (rc == 0)
        e->inflight++;
    else
        local_maybe_drop(rl, e);
    pthread_mutex_unlock(&rl->mu);
    return rc;
}

static void local_release(struct ratelimit *rl, enum ratelimit_kind kind, const char *tenant)
{
    struct local_entry *e;

    pthread_mutex_lock(&rl->mu);
    for (e = rl->buckets[bucket_of(kind, tenant)]; e; e = e->next)
        if (e->kind == kind && strcmp(e->tenant, tenant) == 0)
            break;
    if (e && e->inflight > 0) {
        e->inflight--;
        if (e->waiters > 0)
            pthread_cond_broadcast(&e->cond);
        else
            local_maybe_drop(rl, e);
    }
    pthread_mutex_unlock(&rl->mu);
}

/* ---- public ------------------------------------------------------------------------ */

/* The tenant's local concurrency slot, with the status acquire reports when it cannot be
 * had: RL_OK (held), RL_TIMEOUT (the cap stayed full until the deadline) or RL_ERROR. */
static enum ratelimit_status take_local(struct ratelimit *rl, const struct ratelimit_req *rq,
                                        struct ratelimit_slot *slot, char *errstr, size_t errsz)
{
    enum ratelimit_kind kind = rq->kind;
    const char *tenant = rq->tenant;
    int rc = local_acquire(rl, kind, tenant, rq->deadline_ms);

    if (rc < 0) {
        snprintf(errstr, errsz, "ratelimit: out of memory");
        return RL_ERROR;
    }
    if (rc > 0) {
        snprintf(errstr, errsz, "ratelimit: %s:%s concurrency cap %d reached until deadline",
                 kind_names[kind], tenant, rl->o.kind[kind].local_concurrency);
        slot->retry_after_ms = rl->o.poll_ms;
        return RL_TIMEOUT;
    }
    return RL_OK;
}

/* An admitted request's slot (the local slot is taken, its log entry is token). */
static void slot_hold(struct ratelimit_slot *slot, enum ratelimit_kind kind, const char *tenant,
                      const char *token, int leased)
{
    slot->held = 1;
    slot->kind = kind;
    snprintf(slot->tenant, sizeof slot->tenant, "%s", tenant);
    snprintf(slot->token, sizeof slot->token, "%s", token);
    slot->leased = leased;
}

/* ratelimit_acquire, admitting up to `ahead` more log entries into pf when pf is given
 * (its tokens are the request's token + ":1", ":2", ...). */
static enum ratelimit_status acquire(struct ratelimit *rl, struct redis_conn *redis,
                                     const struct ratelimit_req *rq, int ahead,
                                     struct ratelimit_slot *slot, char *errstr, size_t errsz)
{
    static const char *const ahead_args[RATELIMIT_PREFETCH_MAX + 1] = {"0", "1", "2", "3", "4"};
    enum ratelimit_kind kind = rq->kind;
    const char *tenant = rq->tenant;
    int64_t deadline_ms = rq->deadline_ms;
    struct ratelimit_prefetch *pf = rq->pf;
    struct rl_keys k = {.rate = ""};
    char token[RATELIMIT_TOKEN_MAX];
    const char *keys[2] = {k.rate, k.conc}, *args[6] = {NULL, NULL, NULL, NULL, token, NULL};
    const struct ratelimit_limits *l;
    int64_t waited_us = 0, t0 = clock_mono_us();
    enum ratelimit_status st = RL_ERROR;

    memset(slot, 0, sizeof *slot);
    if (check_tenant(kind, tenant, errstr, errsz) < 0)
        goto out_nolocal;
    if (!redis) {
        snprintf(errstr, errsz, "ratelimit: no redis connection");
        goto out_nolocal;
    }
    l = &rl->o.kind[kind];
    if (build_keys(redis, kind, tenant, &k, errstr, errsz) < 0)
        goto out_nolocal;
    if (make_token(token, sizeof token) < 0) {
        snprintf(errstr, errsz, "ratelimit: getrandom failed");
        goto out_nolocal;
    }
    args[0] = rl->args[kind].limit;
    args[1] = rl->args[kind].window;
    args[2] = rl->args[kind].cap;
    args[3] = rl->args[kind].lease;
    args[5] = ahead_args[!pf || ahead < 1                 ? 0
                         : ahead > RATELIMIT_PREFETCH_MAX ? RATELIMIT_PREFETCH_MAX
                                                          : ahead];

    st = take_local(rl, rq, slot, errstr, errsz);
    waited_us += clock_mono_us() - t0; /* the local slot: ~0 unless the tenant's cap was full */
    if (st != RL_OK)
        goto out_nolocal;
    st = RL_ERROR;

    for (;;) {
        char err[256];
        redisReply *r = redis_eval(redis, &rl->acquire, 2, keys, 6, args, NULL, err, sizeof err);
        long long code, wait, sleep_for, extra = 0;
        int64_t now;

        if (!r) {
            snprintf(errstr, errsz, "ratelimit: redis: %s", err);
            goto out;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->elements > 3 ||
            r->element[0]->type != REDIS_REPLY_INTEGER ||
            r->element[1]->type != REDIS_REPLY_INTEGER ||
            (r->elements == 3 && r->element[2]->type != REDIS_REPLY_INTEGER)) {
            freeReplyObject(r);
            snprintf(errstr, errsz, "ratelimit: unexpected script reply");
            goto out;
        }
        code = r->element[0]->integer;
        wait = r->element[1]->integer;
        if (r->elements == 3)
            extra = r->element[2]->integer;
        freeReplyObject(r);
        if (code == 0) {
            if (pf && extra > 0) {
                pf->n = 0;
                pf->kind = kind;
                snprintf(pf->tenant, sizeof pf->tenant, "%s", tenant);
                pf->admitted_ms = clock_mono_ms();
                for (long long i = extra; i >= 1 && i <= RATELIMIT_PREFETCH_MAX; i--)
                    snprintf(pf->token[pf->n++], RATELIMIT_TOKEN_MAX, "%.32s:%lld", token, i);
            }
            slot_hold(slot, kind, tenant, token, l->global_concurrency > 0);
            st = RL_OK;
            goto out;
        }
        if (wait < 1)
            wait = 1;
        sleep_for = code == 3 && wait > rl->o.poll_ms ? rl->o.poll_ms : wait;
        now = clock_mono_ms();
        if (now + sleep_for > deadline_ms) {
            snprintf(errstr, errsz, "ratelimit: %s:%s %s for %lld ms more", kind_names[kind],
                     tenant,
                     code == 1   ? "blocked after a 429"
                     : code == 2 ? "request rate limit reached"
                                 : "concurrency cap reached",
                     wait);
            slot->retry_after_ms = sleep_for;
            st = RL_TIMEOUT;
            goto out;
        }
        clock_sleep_ms(sleep_for);
        waited_us += sleep_for * 1000;
    }
out:
    if (st != RL_OK)
        local_release(rl, kind, tenant);
out_nolocal:
    /* only time spent held back, not the Redis round trips: a fast admission is no wait */
    slot->waited_ms = waited_us / 1000;
    return st;
}

void ratelimit_prefetch_drop(struct ratelimit *rl, struct redis_conn *redis,
                             struct ratelimit_prefetch *pf)
{
    struct rl_keys k = {.rate = ""};
    char err[256];
    const char *keys[1] = {k.rate}, *args[RATELIMIT_PREFETCH_MAX];
    int rc = -1;

    if (!pf || pf->n <= 0 || !rl)
        return;
    for (int i = 0; i < pf->n; i++)
        args[i] = pf->token[i];
    if (!redis)
        snprintf(err, sizeof err, "no redis connection");
    else if (build_keys(redis, pf->kind, pf->tenant, &k, err, sizeof err) == 0)
        rc = redis_eval_deferred(redis, &rl->drop, 1, keys, (size_t)pf->n, args, err, sizeof err);
    if (rc < 0)
        log_warn("ratelimit: dropping %d unused %s:%s admissions failed (they count until the "
                 "window passes): %s",
                 pf->n, kind_names[pf->kind], pf->tenant, err);
    pf->n = 0;
}

enum ratelimit_status ratelimit_acquire(struct ratelimit *rl, struct redis_conn *redis,
                                        const struct ratelimit_req *rq, struct ratelimit_slot *slot,
                                        char *errstr, size_t errsz)
{
    struct ratelimit_prefetch *pf = rq->pf;
    struct ratelimit_req plain = *rq;
    enum ratelimit_kind kind = rq->kind;
    enum ratelimit_status st;
    int64_t t0;

    if (!pf || (unsigned)kind >= RL_KIND_COUNT || rl->o.kind[kind].global_concurrency > 0) {
        plain.pf = NULL;
        return acquire(rl, redis, &plain, 0, slot, errstr, errsz);
    }
    if (pf->n > 0 && (pf->kind != kind || !rq->tenant || strcmp(pf->tenant, rq->tenant) != 0 ||
                      clock_mono_ms() - pf->admitted_ms > RATELIMIT_PREFETCH_TTL_MS))
        ratelimit_prefetch_drop(rl, redis, pf);
    if (pf->n == 0) {
        st = acquire(rl, redis, rq, pf->expect > 1 ? pf->expect - 1 : 0, slot, errstr, errsz);
        if (st == RL_OK && pf->expect > 0)
            pf->expect--;
        return st;
    }
    /* An entry is already in the log: only the local concurrency slot to take. */
    memset(slot, 0, sizeof *slot);
    t0 = clock_mono_us();
    st = take_local(rl, rq, slot, errstr, errsz);
    slot->waited_ms = (clock_mono_us() - t0) / 1000;
    if (st != RL_OK)
        return st;
    slot_hold(slot, kind, rq->tenant, pf->token[--pf->n], 0);
    if (pf->expect > 0)
        pf->expect--;
    return RL_OK;
}

void ratelimit_release(struct ratelimit *rl, struct redis_conn *redis, struct ratelimit_slot *slot)
{
    struct rl_keys k = {.rate = ""};
    char err[256];
    const char *keys[2] = {k.rate, k.conc}, *args[3];
    int rc = -1;

    if (!slot || !slot->held)
        return;
    args[0] = slot->token;
    args[1] = rl->args[slot->kind].window;
    args[2] = slot->leased ? "1" : "0";
    if (!redis)
        snprintf(err, sizeof err, "no redis connection");
    else if (build_keys(redis, slot->kind, slot->tenant, &k, err, sizeof err) == 0)
        rc = redis_eval_deferred(redis, &rl->release, 2, keys, 3, args, err, sizeof err);
    if (rc < 0)
        log_warn("ratelimit: releasing %s:%s failed (the request stays counted from its "
                 "admission%s): %s",
                 kind_names[slot->kind], slot->tenant,
                 slot->leased ? "; the lease expires by itself" : "", err);
    slot->token[0] = '\0';
    slot->leased = 0;
    local_release(rl, slot->kind, slot->tenant);
    slot->held = 0;
}

int ratelimit_penalize(struct ratelimit *rl, struct redis_conn *redis, enum ratelimit_kind kind,
                       const char *tenant, int64_t retry_after_ms, char *errstr, size_t errsz)
{
    struct rl_keys k = {.rate = ""};
    char err[256], a_ms[24], a_win[24];
    const char *keys[1] = {k.rate}, *args[2] = {a_ms, a_win};
    redisReply *r;

    if (check_tenant(kind, tenant, errstr, errsz) < 0)
        return -1;
    if (!redis || retry_after_ms <= 0) {
        snprintf(errstr, errsz, "ratelimit: penalize needs redis and a positive delay");
        return -1;
    }
    if (build_keys(redis, kind, tenant, &k, errstr, errsz) < 0)
        return -1;
    if (retry_after_ms > RL_MAX_PENALTY_MS)
        retry_after_ms = RL_MAX_PENALTY_MS;
    snprintf(a_ms, sizeof a_ms, "%lld", (long long)retry_after_ms);
    snprintf(a_win, sizeof a_win, "%lld", (long long)rl->o.kind[kind].window_ms);
    r = redis_eval(redis, &rl->penalize, 1, keys, 2, args, NULL, err, sizeof err);
    if (!r) {
        snprintf(errstr, errsz, "ratelimit: redis: %s", err);
        return -1;
    }
    freeReplyObject(r);
    return 0;
}
