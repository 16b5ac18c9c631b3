/* ratelimit.c - per-tenant rate and concurrency limits (see ratelimit.h).
 *
 * One sorted set per tenant holds an entry per request sent or about to be sent (the
 * "log"). An entry's score is the time until which it holds the tenant:
 *
 *   admitted (ADMIT_LUA)      score = Redis now + hold (hold = lease_ms, longer than any
 *                             request): it counts in the rate window AND as in flight
 *   completed (stamp)         score = its completion time (an upper bound of Redis's
 *                             clock then): it counts in the window until score + window
 *   returned unused (drop)    removed
 *
 * so, at Redis time now, the rate count is the entries with score > now - window, and the
 * concurrency count (QBO) the entries with score > now. Rules checked by one script:
 *
 *   blocked-until in the future?             -> {1, ms until it ends}
 *   fewer than `least` free in the window?   -> {2, ms until enough leave}
 *   (capped) limit entries in flight?        -> {3, poll}
 *   else admit k = min(want, room) entries   -> {0, k, Redis now}
 *
 * Leases of a few: a process admits up to `want` entries in one script (its "pool", per
 * tenant, shared by its threads) and its requests take them without a round trip; the
 * completions' stamps wait in the process (pending) and ride on the tenant's next
 * admission, or go with the sweeper (ratelimit_start) once a second; unused entries go
 * back after RATELIMIT_POOL_TTL_MS. A kind with a global cap stamps at once (deferred onto
 * the caller's connection), because a completed request must stop counting as in flight.
 * Without a sweeper every kind does so and the pool holds one entry: the old behaviour.
 *
 * Why this is never more than the limit, over all replicas (the proof, also in the
 * README): (1) scores only go down (stamp) or entries leave (drop, trim), and an entry
 * counted at time t was counted at every moment since it was added (its score then was
 * at least its score at t); so the entries counted at t were all present when the latest
 * of them was admitted, which the script allowed only with room for all of them: count(t)
 * <= limit. (2) Every request sent is covered: until stamped its entry holds until
 * admission + hold, past its completion; once stamped, until completion + window, past
 * its arrival + window (the upstream counts at arrival, between sending and completion).
 * So the upstream's count in any window is at most the log's. The same argument with
 * "score > now" gives the concurrency cap. A lost stamp only keeps an entry longer.
 *
 * The script reads Redis's clock, so replica clock skew does not matter; a stamp is
 * Redis's time at admission plus the local monotonic time since the script was sent,
 * an upper bound of Redis's time at completion (only the clocks' rates must agree).
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

/* KEYS rate log, the earlier release's lease set (<rate>:conc, read only: its live leases
 * count as in flight while a replica of that release runs beside this one).
 * ARGV limit, window, cap (0: none), hold, want, least, token, stamps ("member score ..."),
 * drops ("member ..."). Stamps and drops first: they are this process's own entries. */
static const char ADMIT_LUA[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local cap, hold = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local want, least = tonumber(ARGV[5]), tonumber(ARGV[6])\n"
    "local z = {}\n"
    "for m, sc in string.gmatch(ARGV[8], '(%S+) (%d+)') do\n"
    "  z[#z + 1] = math.min(tonumber(sc), now); z[#z + 1] = m\n"
    "end\n"
    "if #z > 0 then redis.call('ZADD', KEYS[1], 'XX', 'LT', unpack(z)) end\n"
    "local d = {}\n"
    "for m in string.gmatch(ARGV[9], '%S+') do d[#d + 1] = m end\n"
    "if #d > 0 then redis.call('ZREM', KEYS[1], unpack(d)) end\n"
    "local b = redis.call('ZSCORE', KEYS[1], 'blocked')\n"
    "if b then\n"
    "  b = tonumber(b)\n"
    "  if b > now then return {1, b - now} end\n"
    "  redis.call('ZREM', KEYS[1], 'blocked')\n"
    "end\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)\n"
    "local room = limit - redis.call('ZCARD', KEYS[1])\n"
    "if room < least then\n"
    "  local i = least - math.max(room, 0) - 1\n"
    "  local o = redis.call('ZRANGE', KEYS[1], i, i, 'WITHSCORES')\n"
    "  if o[2] and tonumber(o[2]) - now < window then\n"
    "    return {2, math.max(1, tonumber(o[2]) + window - now)}\n"
    "  end\n"
    "  if room < 1 then return {3, 0} end\n"
    "end\n"
    "if cap > 0 then\n"
    "  local busy = redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf') +\n"
    "               redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf')\n"
    "  if busy >= cap then return {3, 0} end\n"
    "  room = math.min(room, cap - busy)\n"
    "end\n"
    "local k = math.min(want, room)\n"
    "local a = {}\n"
    "for i = 1, k do a[#a + 1] = now + hold; a[#a + 1] = ARGV[7] .. ':' .. i end\n"
    "redis.call('ZADD', KEYS[1], unpack(a))\n"
    "redis.call('PEXPIRE', KEYS[1], hold + window)\n"
    "return {0, k, now}\n";

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

#define RL_POOL_MAX      16   /* entries one admission takes at most */
#define RL_PENDING_MAX   32   /* stamps or drops waiting per tenant; more are sent at once */
#define RL_MEMBER_MAX    (RATELIMIT_TOKEN_MAX + 8)
#define RL_SWEEP_MS      250  /* the sweeper's period */
#define RL_STAMP_DELAY_MS 1000 /* stamps older than this go with the sweeper */
#define RL_REFILL_WAIT_MS 100  /* the longest nap while another thread's script runs */

/* A log entry of this process whose completion stamp (or return) is still to be sent. */
struct pending {
    char member[RL_MEMBER_MAX];
    int64_t score; /* Redis ms; -1: a drop */
};

/* One tenant with requests in flight, waiting, admitted ahead or stamps to send, in this
 * process. Under rl->mu. */
struct local_entry {
    struct local_entry *next;
    enum ratelimit_kind kind;
    int inflight;
    int waiters;
    pthread_cond_t cond;
    char tenant[RATELIMIT_TENANT_MAX + 1];
    /* the pool: entries <base>:<first> .. <base>:<n> admitted and not taken yet */
    char base[RATELIMIT_TOKEN_MAX];
    int first, n;
    int64_t base_redis_ms, base_mono_ms; /* Redis's clock in the script, ours when sent */
    int64_t got_ms;                      /* clock_mono_ms() of the admission's answer */
    int refilling;                       /* a thread runs the script for this tenant */
    int64_t next_try_ms;                 /* no script before (the last one said wait) */
    struct pending pend[RL_PENDING_MAX];
    int npend;
    int64_t pend_since_ms;
};

/* The script arguments that depend only on the kind, formatted once at start-up. */
struct kind_args {
    char limit[24], window[24], cap[24], hold[24], want[16];
};

struct ratelimit {
    struct ratelimit_opts o;
    struct kind_args args[RL_KIND_COUNT];
    int want[RL_KIND_COUNT]; /* entries one admission asks for (1 without a sweeper) */
    struct redis_script admit, penalize;
    pthread_mutex_t mu;
    struct local_entry *buckets[RL_LOCAL_BUCKETS];
    /* the sweeper (ratelimit_start), NULL until started */
    struct redis_conn *sweep_redis;
    pthread_t sweep_th;
    pthread_cond_t sweep_cv;
    int sweeping, stop;
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

/* Entries one admission asks for once a sweeper runs: a sixteenth of the limit (at most
 * RL_POOL_MAX), and with a global cap a third of it, since entries admitted ahead count
 * as in flight for every replica until taken or returned. */
static int batch_of(const struct ratelimit_limits *l)
{
    int64_t w = l->limit / 16;

    if (l->global_concurrency > 0 && w > l->global_concurrency / 3)
        w = l->global_concurrency / 3;
    return w < 1 ? 1 : w > RL_POOL_MAX ? RL_POOL_MAX : (int)w;
}

struct ratelimit *ratelimit_new_opts(const struct ratelimit_opts *o, char *errstr, size_t errsz)
{
    struct ratelimit *rl = NULL;

    for (int k = 0; k < RL_KIND_COUNT; k++) {
        const struct ratelimit_limits *l = &o->kind[k];
        if (l->limit < 1 || l->window_ms < 1 || l->local_concurrency < 1 ||
            l->global_concurrency < 0 || l->lease_ms < 1) {
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
        snprintf(a->hold, sizeof a->hold, "%lld", (long long)l->lease_ms);
        snprintf(a->want, sizeof a->want, "1");
        rl->want[k] = 1;
    }
    if (redis_script_init(&rl->admit, ADMIT_LUA, errstr, errsz) < 0 ||
        redis_script_init(&rl->penalize, PENALIZE_LUA, errstr, errsz) < 0) {
        free(rl);
        return NULL;
    }
    pthread_mutex_init(&rl->mu, NULL);
    clock_cond_init(&rl->sweep_cv);
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

/* ---- the local table ---------------------------------------------------------------- */

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
    e->first = 1; /* an empty pool: n = 0 */
    snprintf(e->tenant, sizeof e->tenant, "%s", tenant);
    clock_cond_init(&e->cond);
    e->next = rl->buckets[b];
    rl->buckets[b] = e;
    return e;
}

static int pool_left(const struct local_entry *e)
{
    return e->n - e->first + 1;
}

/* Under rl->mu: drop an entry that holds nothing any more, so the table holds only
 * active tenants. */
static void local_maybe_drop(struct ratelimit *rl, struct local_entry *e)
{
    struct local_entry **pp;

    if (e->inflight > 0 || e->waiters > 0 || e->refilling || pool_left(e) > 0 || e->npend > 0)
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

/* Under rl->mu: remember a stamp (score >= 0) or a drop (-1). 0, or -1 when full. */
static int pend_add(struct local_entry *e, const char *member, int64_t score)
{
    if (e->npend >= RL_PENDING_MAX)
        return -1;
    if (e->npend == 0)
        e->pend_since_ms = clock_mono_ms();
    snprintf(e->pend[e->npend].member, RL_MEMBER_MAX, "%s", member);
    e->pend[e->npend++].score = score;
    return 0;
}

/* Under rl->mu: the pool's unused entries become drops (as many as fit). */
static void pool_return(struct local_entry *e)
{
    char m[RL_MEMBER_MAX];

    for (; e->first <= e->n; e->first++) {
        snprintf(m, sizeof m, "%.32s:%d", e->base, e->first);
        if (pend_add(e, m, -1) < 0)
            break; /* the rest count until they expire: conservative */
    }
    e->first = e->n + 1;
}

/* The pending stamps and drops of a tenant as script arguments (malloc'd, caller frees
 * both; "" when none), emptying its list. Under rl->mu. -1 when out of memory (the list
 * is kept). */
static int pend_take(struct local_entry *e, char **stamps, char **drops)
{
    size_t cap = (size_t)e->npend * (RL_MEMBER_MAX + 24) + 1, ls = 0, ld = 0;

    *stamps = malloc(cap);
    *drops = malloc(cap);
    if (!*stamps || !*drops) {
        free(*stamps);
        free(*drops);
        return -1;
    }
    for (int i = 0; i < e->npend; i++) {
        const struct pending *p = &e->pend[i];
        if (p->score >= 0)
            ls += (size_t)snprintf(*stamps + ls, cap - ls, "%s%s %lld", ls ? " " : "", p->member,
                                   (long long)p->score);
        else
            ld += (size_t)snprintf(*drops + ld, cap - ld, "%s%s", ld ? " " : "", p->member);
    }
    (*stamps)[ls] = '\0';
    (*drops)[ld] = '\0';
    e->npend = 0;
    return 0;
}

/* Split s ("a b c ...", owned, cut in place) into words after argv[n0]; the number of
 * arguments in argv then. */
static int split_words(char *s, const char **argv, int n0, int max)
{
    int n = n0;

    for (char *w = strtok_r(s, " ", &s); w && n < max; w = strtok_r(NULL, " ", &s))
        argv[n++] = w;
    return n;
}

/* Send stamps and drops of one tenant, deferred on redis (they ride on its next command
 * or redis_flush): the stamps as one ZADD XX LT (a stamp never raises a score, and an
 * entry already gone stays gone), the drops as one ZREM. Plain commands, not a script:
 * each is atomic on its own and they touch different members, so nothing orders them;
 * one command per stamp batch instead of EVAL + ZADD. Takes ownership of both strings. */
static void send_stamps(struct redis_conn *redis, enum ratelimit_kind kind, const char *tenant,
                        char *stamps, char *drops)
{
    enum { MAXV = 3 + 2 * RL_PENDING_MAX + 1 };
    struct rl_keys k = {.rate = ""};
    const char *argv[MAXV];
    char err[256];
    int rc = 0, n;

    if (!redis) {
        snprintf(err, sizeof err, "no redis connection");
        rc = -1;
    } else if (build_keys(redis, kind, tenant, &k, err, sizeof err) < 0) {
        rc = -1;
    }
    if (rc == 0 && *stamps) {
        const char *pairs[2 * RL_PENDING_MAX];
        int np = split_words(stamps, pairs, 0, 2 * RL_PENDING_MAX);

        argv[0] = "ZADD";
        argv[1] = k.rate;
        argv[2] = "XX";
        argv[3] = "LT";
        n = 4;
        for (int i = 0; i + 1 < np; i += 2) { /* "member score" -> score member */
            argv[n++] = pairs[i + 1];
            argv[n++] = pairs[i];
        }
        rc = redis_command_argv_deferred(redis, n, argv, NULL, err, sizeof err);
    }
    if (rc == 0 && *drops) {
        argv[0] = "ZREM";
        argv[1] = k.rate;
        n = split_words(drops, argv, 2, MAXV);
        rc = redis_command_argv_deferred(redis, n, argv, NULL, err, sizeof err);
    }
    if (rc < 0)
        log_warn("ratelimit: stamping %s:%s failed (its requests stay counted until their "
                 "hold ends): %s",
                 kind_names[kind], tenant, err);
    free(stamps);
    free(drops);
}

/* ---- admission --------------------------------------------------------------------- */

/* What one ADMIT_LUA call said. */
struct admit_reply {
    long long code, wait, k, redis_now;
};

/* Run ADMIT_LUA for e's tenant (its pending list goes with it; on an error it is lost:
 * its entries then count until their hold ends). 0 with *ar, or -1 with errstr. */
static int admit_call(struct ratelimit *rl, struct redis_conn *redis, struct local_entry *e,
                      int least, char *stamps, char *drops, const char *token,
                      struct admit_reply *ar, char *errstr, size_t errsz)
{
    const struct kind_args *ka = &rl->args[e->kind];
    struct rl_keys k = {.rate = ""};
    char a_least[16];
    const char *keys[2] = {k.rate, k.conc};
    const char *args[9] = {ka->limit, ka->window, ka->cap, ka->hold, ka->want, a_least,
                           token,     stamps,     drops};
    redisReply *r;

    snprintf(a_least, sizeof a_least, "%d", least);
    if (build_keys(redis, e->kind, e->tenant, &k, errstr, errsz) < 0)
        return -1;
    r = redis_eval(redis, &rl->admit, 2, keys, 9, args, NULL, errstr, errsz);
    if (!r)
        return -1;
    memset(ar, 0, sizeof *ar);
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->elements > 3)
        goto bad;
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type != REDIS_REPLY_INTEGER)
            goto bad;
    ar->code = r->element[0]->integer;
    if (ar->code == 0 && r->elements == 3) {
        ar->k = r->element[1]->integer;
        ar->redis_now = r->element[2]->integer;
    } else {
        ar->wait = r->element[1]->integer;
    }
    freeReplyObject(r);
    if (ar->code == 0 && (ar->k < 1 || ar->k > RL_POOL_MAX))
        goto bad_noreply;
    return 0;
bad:
    freeReplyObject(r);
bad_noreply:
    snprintf(errstr, errsz, "ratelimit: unexpected script reply");
    return -1;
}

/* Under rl->mu, the local slot held: take an entry of e's pool into slot. */
static void take_entry(struct ratelimit *rl, struct local_entry *e, struct ratelimit_slot *slot)
{
    slot->held = 1;
    slot->kind = e->kind;
    snprintf(slot->tenant, sizeof slot->tenant, "%s", e->tenant);
    snprintf(slot->token, sizeof slot->token, "%.32s:%d", e->base, e->first++);
    slot->leased = rl->o.kind[e->kind].global_concurrency > 0;
    slot->base_redis_ms = e->base_redis_ms;
    slot->base_mono_ms = e->base_mono_ms;
}

/* Under rl->mu: wait on e's condition until at_ms at the latest. */
static void wait_until(struct ratelimit *rl, struct local_entry *e, int64_t at_ms)
{
    struct timespec ts;

    clock_timespec(at_ms, &ts);
    pthread_cond_timedwait(&e->cond, &rl->mu, &ts);
}

/* Under rl->mu, e's local slot held: an entry of the pool into slot, refilling it from
 * Redis when empty (one thread at a time; the others wait for it). RL_OK, RL_TIMEOUT
 * (slot->retry_after_ms set) or RL_ERROR. *redis_us accumulates the time spent in Redis
 * calls (not a wait). */
static enum ratelimit_status pool_take(struct ratelimit *rl, struct redis_conn *redis,
                                       struct local_entry *e, int64_t deadline_ms,
                                       struct ratelimit_slot *slot, int64_t *redis_us,
                                       char *errstr, size_t errsz)
{
    const struct ratelimit_limits *l = &rl->o.kind[e->kind];
    int want = rl->want[e->kind];

    for (;;) {
        int64_t now = clock_mono_ms(), t0;
        char token[RATELIMIT_TOKEN_MAX], *stamps = NULL, *drops = NULL;
        struct admit_reply ar;
        int least, rc;

        if (pool_left(e) > 0 && now - e->got_ms > RATELIMIT_POOL_TTL_MS)
            pool_return(e); /* too old: a block set meanwhile must not be outrun */
        if (pool_left(e) > 0) {
            take_entry(rl, e, slot);
            return RL_OK;
        }
        if (e->refilling) { /* a round trip, not a wait: whatever the deadline */
            wait_until(rl, e, now + RL_REFILL_WAIT_MS);
            continue;
        }
        if (now < e->next_try_ms) {
            if (e->next_try_ms > deadline_ms) {
                slot->retry_after_ms = e->next_try_ms - now;
                snprintf(errstr, errsz, "ratelimit: %s:%s: no admission before the deadline",
                         kind_names[e->kind], e->tenant);
                return RL_TIMEOUT;
            }
            wait_until(rl, e, e->next_try_ms);
            continue;
        }
        if (make_token(token, sizeof token) < 0 || pend_take(e, &stamps, &drops) < 0) {
            snprintf(errstr, errsz, "ratelimit: out of memory or getrandom failed");
            return RL_ERROR;
        }
        /* wait for half a batch when the deadline leaves time for it to free up */
        least = (want + 1) / 2;
        if (least > 1 && deadline_ms - now < l->window_ms * least / l->limit + 100)
            least = 1;
        e->refilling = 1;
        pthread_mutex_unlock(&rl->mu);
        t0 = clock_mono_us();
        rc = admit_call(rl, redis, e, least, stamps, drops, token, &ar, errstr, errsz);
        *redis_us += clock_mono_us() - t0;
        free(stamps);
        free(drops);
        pthread_mutex_lock(&rl->mu);
        e->refilling = 0;
        pthread_cond_broadcast(&e->cond);
        if (rc < 0)
            return RL_ERROR;
        if (ar.code == 0) {
            memcpy(e->base, token, sizeof e->base);
            e->first = 1;
            e->n = (int)ar.k;
            e->base_redis_ms = ar.redis_now;
            e->base_mono_ms = t0 / 1000; /* before sending: stamps are upper bounds */
            e->got_ms = clock_mono_ms();
            continue;
        }
        if (ar.wait < 1 || ar.code == 3)
            ar.wait = ar.wait < 1 || ar.wait > rl->o.poll_ms ? rl->o.poll_ms : ar.wait;
        now = clock_mono_ms();
        e->next_try_ms = now + ar.wait;
        if (e->next_try_ms > deadline_ms) {
            snprintf(errstr, errsz, "ratelimit: %s:%s %s for %lld ms more", kind_names[e->kind],
                     e->tenant,
                     ar.code == 1   ? "blocked after a 429"
                     : ar.code == 2 ? "request rate limit reached"
                                    : "concurrency cap reached",
                     ar.wait);
            slot->retry_after_ms = ar.wait;
            return RL_TIMEOUT;
        }
    }
}

enum ratelimit_status ratelimit_acquire(struct ratelimit *rl, struct redis_conn *redis,
                                        const struct ratelimit_req *rq, struct ratelimit_slot *slot,
                                        char *errstr, size_t errsz)
{
    enum ratelimit_kind kind = rq->kind;
    const char *tenant = rq->tenant;
    int64_t t0 = clock_mono_us(), redis_us = 0;
    enum ratelimit_status st = RL_ERROR;
    struct local_entry *e;
    int cap;

    memset(slot, 0, sizeof *slot);
    if (check_tenant(kind, tenant, errstr, errsz) < 0)
        return RL_ERROR;
    if (!redis) {
        snprintf(errstr, errsz, "ratelimit: no redis connection");
        return RL_ERROR;
    }
    cap = rl->o.kind[kind].local_concurrency;
    pthread_mutex_lock(&rl->mu);
    e = local_get(rl, kind, tenant);
    if (!e) {
        pthread_mutex_unlock(&rl->mu);
        snprintf(errstr, errsz, "ratelimit: out of memory");
        return RL_ERROR;
    }
    e->waiters++;
    while (e->inflight >= cap) { /* the local slot first */
        if (clock_mono_ms() >= rq->deadline_ms) {
            snprintf(errstr, errsz, "ratelimit: %s:%s concurrency cap %d reached until deadline",
                     kind_names[kind], tenant, cap);
            slot->retry_after_ms = rl->o.poll_ms;
            st = RL_TIMEOUT;
            goto out;
        }
        wait_until(rl, e, rq->deadline_ms);
    }
    e->inflight++;
    st = pool_take(rl, redis, e, rq->deadline_ms, slot, &redis_us, errstr, errsz);
    if (st != RL_OK) {
        e->inflight--;
        pthread_cond_broadcast(&e->cond);
    }
out:
    e->waiters--;
    local_maybe_drop(rl, e);
    pthread_mutex_unlock(&rl->mu);
    /* only time spent held back, not the Redis round trips: a fast admission is no wait */
    slot->waited_ms = (clock_mono_us() - t0 - redis_us) / 1000;
    return st;
}

void ratelimit_release(struct ratelimit *rl, struct redis_conn *redis, struct ratelimit_slot *slot)
{
    unsigned b;
    struct local_entry *e;
    char *stamps = NULL, *drops = NULL;
    int send_later = 0;
    /* Redis's clock at completion, at the latest: the admission's reading plus the time
     * since its script was sent; +1 for the millisecond truncations */
    int64_t score;

    if (!slot || !slot->held)
        return;
    score = slot->base_redis_ms + (clock_mono_ms() - slot->base_mono_ms) + 1;
    b = bucket_of(slot->kind, slot->tenant);
    pthread_mutex_lock(&rl->mu);
    for (e = rl->buckets[b]; e; e = e->next)
        if (e->kind == slot->kind && strcmp(e->tenant, slot->tenant) == 0)
            break;
    if (e) {
        /* a capped kind stamps now: the request must stop counting as in flight; so does
         * every kind without a sweeper, and a full list */
        if (e->npend >= RL_PENDING_MAX && pend_take(e, &stamps, &drops) == 0) {
            send_later = 1;
        }
        if (pend_add(e, slot->token, score) == 0 && !send_later &&
            (slot->leased || !rl->sweeping) && pend_take(e, &stamps, &drops) == 0)
            send_later = 1;
        if (e->inflight > 0)
            e->inflight--;
        pthread_cond_broadcast(&e->cond);
        local_maybe_drop(rl, e);
    }
    pthread_mutex_unlock(&rl->mu);
    if (send_later)
        send_stamps(redis, slot->kind, slot->tenant, stamps, drops);
    slot->token[0] = '\0';
    slot->leased = 0;
    slot->held = 0;
}

int ratelimit_penalize(struct ratelimit *rl, struct redis_conn *redis, enum ratelimit_kind kind,
                       const char *tenant, int64_t retry_after_ms, char *errstr, size_t errsz)
{
    struct rl_keys k = {.rate = ""};
    char err[256], a_ms[24], a_win[24];
    const char *keys[1] = {k.rate}, *args[2] = {a_ms, a_win};
    struct local_entry *e;
    redisReply *r;

    if (check_tenant(kind, tenant, errstr, errsz) < 0)
        return -1;
    if (!redis || retry_after_ms <= 0) {
        snprintf(errstr, errsz, "ratelimit: penalize needs redis and a positive delay");
        return -1;
    }
    if (build_keys(redis, kind, tenant, &k, errstr, errsz) < 0)
        return -1;
    /* what this process admitted ahead must not go out now */
    pthread_mutex_lock(&rl->mu);
    for (e = rl->buckets[bucket_of(kind, tenant)]; e; e = e->next)
        if (e->kind == kind && strcmp(e->tenant, tenant) == 0)
            pool_return(e);
    pthread_mutex_unlock(&rl->mu);
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

/* ---- the sweeper ------------------------------------------------------------------- */

/* What one sweep sends for one tenant. */
struct sweep_item {
    enum ratelimit_kind kind;
    char tenant[RATELIMIT_TENANT_MAX + 1];
    char *stamps, *drops;
};

int ratelimit_sweep(struct ratelimit *rl, struct redis_conn *redis, int all, char *errstr,
                    size_t errsz)
{
    struct sweep_item *items = NULL;
    size_t n = 0, cap = 0;
    int64_t now = clock_mono_ms();

    pthread_mutex_lock(&rl->mu);
    for (int b = 0; b < RL_LOCAL_BUCKETS; b++) {
        struct local_entry *e, *next;
        for (e = rl->buckets[b]; e; e = next) {
            next = e->next;
            int returned = pool_left(e) > 0 && (all || now - e->got_ms > RATELIMIT_POOL_TTL_MS);
            if (returned) /* returns go at once, with whatever stamps wait */
                pool_return(e);
            if (e->npend > 0 && (all || returned || now - e->pend_since_ms >= RL_STAMP_DELAY_MS)) {
                if (n == cap) {
                    size_t nc = cap ? 2 * cap : 16;
                    struct sweep_item *ni = realloc(items, nc * sizeof *ni);
                    if (!ni)
                        break;
                    items = ni;
                    cap = nc;
                }
                if (pend_take(e, &items[n].stamps, &items[n].drops) < 0)
                    break;
                items[n].kind = e->kind;
                snprintf(items[n].tenant, sizeof items[n].tenant, "%s", e->tenant);
                n++;
            }
            local_maybe_drop(rl, e);
        }
    }
    pthread_mutex_unlock(&rl->mu);
    for (size_t i = 0; i < n; i++)
        send_stamps(redis, items[i].kind, items[i].tenant, items[i].stamps, items[i].drops);
    free(items);
    return redis_flush(redis, errstr, errsz);
}

static void *sweeper_main(void *opaque)
{
    struct ratelimit *rl = opaque;
    struct timespec until;
    char err[256];

    pthread_mutex_lock(&rl->mu);
    while (!rl->stop) {
        clock_abstime(CLOCK_MONOTONIC, RL_SWEEP_MS, &until);
        while (!rl->stop && pthread_cond_timedwait(&rl->sweep_cv, &rl->mu, &until) == 0)
            ;
        if (rl->stop)
            break;
        pthread_mutex_unlock(&rl->mu);
        if (ratelimit_sweep(rl, rl->sweep_redis, 0, err, sizeof err) < 0)
            log_warn("ratelimit: sweep: %s", err);
        pthread_mutex_lock(&rl->mu);
    }
    pthread_mutex_unlock(&rl->mu);
    return NULL;
}

int ratelimit_start(struct ratelimit *rl, const struct redis_opts *o, char *errstr, size_t errsz)
{
    if (rl->sweep_redis) {
        snprintf(errstr, errsz, "ratelimit: the sweeper runs already");
        return -1;
    }
    if (!(rl->sweep_redis = redis_conn_new(o, errstr, errsz)))
        return -1;
    pthread_mutex_lock(&rl->mu);
    rl->sweeping = 1;
    for (int k = 0; k < RL_KIND_COUNT; k++) {
        rl->want[k] = batch_of(&rl->o.kind[k]);
        snprintf(rl->args[k].want, sizeof rl->args[k].want, "%d", rl->want[k]);
    }
    pthread_mutex_unlock(&rl->mu);
    if (pthread_create(&rl->sweep_th, NULL, sweeper_main, rl) != 0) {
        snprintf(errstr, errsz, "ratelimit: cannot start the sweeper thread");
        pthread_mutex_lock(&rl->mu);
        rl->sweeping = 0;
        for (int k = 0; k < RL_KIND_COUNT; k++) {
            rl->want[k] = 1;
            snprintf(rl->args[k].want, sizeof rl->args[k].want, "1");
        }
        pthread_mutex_unlock(&rl->mu);
        redis_conn_free(rl->sweep_redis);
        rl->sweep_redis = NULL;
        return -1;
    }
    return 0;
}

void ratelimit_free(struct ratelimit *rl)
{
    char err[256];

    if (!rl)
        return;
    if (rl->sweep_redis) {
        pthread_mutex_lock(&rl->mu);
        rl->stop = 1;
        pthread_cond_broadcast(&rl->sweep_cv);
        pthread_mutex_unlock(&rl->mu);
        pthread_join(rl->sweep_th, NULL);
        /* what is left goes back: unused entries and the last stamps */
        if (ratelimit_sweep(rl, rl->sweep_redis, 1, err, sizeof err) < 0)
            log_warn("ratelimit: last sweep: %s", err);
        redis_conn_free(rl->sweep_redis);
    }
    for (int i = 0; i < RL_LOCAL_BUCKETS; i++) {
        struct local_entry *e = rl->buckets[i], *next;
        for (; e; e = next) {
            next = e->next;
            pthread_cond_destroy(&e->cond);
            free(e);
        }
    }
    pthread_cond_destroy(&rl->sweep_cv);
    pthread_mutex_destroy(&rl->mu);
    free(rl);
}
