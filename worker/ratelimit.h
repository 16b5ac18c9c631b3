/* ratelimit.h - per-tenant request rate and concurrency limits shared by all replicas.
 *
 * Owns: the limits of each tenant kind (copied from the config at start-up) and the
 * in-process concurrency table (one counter per active tenant, removed when idle).
 * The shared state lives in Redis, one tenant's keys in one cluster slot (hash tag):
 *   <prefix>rate:{<kind>:<id>}        sorted set, the request log: a member per request
 *                                     admitted (score = admission time + lease_ms while
 *                                     it may be in flight, then its completion time),
 *                                     plus the member "blocked" whose score is the
 *                                     "blocked until" time set by ratelimit_penalize()
 *   <prefix>rate:{<kind>:<id>}:conc   only read (QBO): the concurrency leases of the
 *                                     release before this one (member = lease token,
 *                                     score = expiry), which count while such a replica
 *                                     runs beside this one during a rolling update
 * with <kind> "qbo" (id = realm) or "hs" (id = portal). All times in those keys are the
 * Redis server's clock (TIME), so replicas with skewed clocks agree. ratelimit.c's
 * opening comment has the proof that the sum over replicas keeps the limits.
 *
 * Rules, per tenant:
 *  - Rate: at most `limit` requests admitted in any rolling window of `window_ms`
 *    (an exact sliding log, not GCRA: HubSpot enforces a rolling 10 s window and a
 *    GCRA/token bucket allowing a full burst admits up to 2*limit-1 requests in one such
 *    window). A request counts from its admission until a window after its completion.
 *  - Blocked: after ratelimit_penalize(), nobody (any replica) is admitted before the
 *    blocked-until time (a replica's entries admitted ahead are used for at most
 *    RATELIMIT_POOL_TTL_MS, so a block set by another replica is outrun that long at most).
 *  - Concurrency: at most `local_concurrency` requests in flight per tenant in this
 *    process (condition variable, no Redis); for QBO also at most
 *    `global_concurrency` across all replicas (Intuit's 10 concurrent per realm): a
 *    request counts as in flight from its admission until its completion is stamped, or
 *    lease_ms after admission when a replica crashed first.
 *
 * Redis round trips: with the sweeper running (ratelimit_start, the worker), one
 * admission script takes a few entries at once (up to a sixteenth of the limit, 16 at
 * most; with a global cap a third of it) into the process, and the next requests to that
 * tenant take them without Redis; completions are stamped in the process and sent with
 * the tenant's next admission or by the sweeper within about a second (a capped kind's
 * at once, deferred onto the caller's connection). Without a sweeper (tests, the connect
 * pages) each request is admitted alone and stamped at once.
 *
 * Redis down: ratelimit_acquire() fails (RL_ERROR), it never proceeds unlimited. The
 * pipeline treats that as transient (Redis unavailable is always transient); without
 * Redis it could not claim events either, so no local fallback limiter exists.
 *
 * Thread-safety: a struct ratelimit is shared by every worker thread (the local table
 * has its own mutex); each call takes the calling thread's own redis_conn.
 */
#ifndef HSQB_RATELIMIT_H
#define HSQB_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/redis.h"

#define RATELIMIT_TENANT_MAX 64 /* bytes of a tenant id (realm or portal), NUL excluded */
#define RATELIMIT_TOKEN_MAX  40 /* bytes of a lease token, NUL included */

enum ratelimit_kind { RL_QBO = 0, RL_HUBSPOT = 1, RL_KIND_COUNT };

/* "qbo", "hs" (the key component); NULL when out of range. */
const char *ratelimit_kind_name(enum ratelimit_kind k);

struct ratelimit_limits {
    int64_t limit;          /* requests per window, >= 1 */
    int64_t window_ms;      /* >= 1 */
    int local_concurrency;  /* per tenant in this process, >= 1 */
    int global_concurrency; /* per tenant across replicas; 0 = no global cap */
    int64_t lease_ms;       /* how long an admitted request may hold the tenant before its
                               completion is stamped (> the longest request), >= 1 */
};

struct ratelimit_opts {
    struct ratelimit_limits kind[RL_KIND_COUNT];
    /* Longest single sleep between two script calls while waiting for a concurrency
     * slot held by another replica (whose release we cannot observe). Default 50. */
    int64_t poll_ms;
};

/* Defaults: QBO 500 per 60 s, 10 local, 10 global, lease 2 min; HubSpot 100 per 10 s,
 * 6 local, no global cap, lease 2 min; poll 50 ms. */
void ratelimit_opts_default(struct ratelimit_opts *o);

/* From the settings: qbo.rate_limit_per_min, qbo.max_concurrent_per_realm (local; the
 * global QBO cap stays at Intuit's 10), hubspot.rate_limit_per_10s,
 * hubspot.max_concurrent_per_portal, http.timeout (lease = 2 x timeout + 10 s).
 * Returns NULL with errstr on bad values. Caller frees with ratelimit_free. */
struct ratelimit *ratelimit_new(const struct config *cfg, char *errstr, size_t errsz);
/* Same from explicit options (copied). */
struct ratelimit *ratelimit_new_opts(const struct ratelimit_opts *o, char *errstr, size_t errsz);
/* NULL-safe. No slot may be held any more. */
void ratelimit_free(struct ratelimit *rl);

/* What ratelimit_acquire() gave the caller; pass it back to ratelimit_release().
 * Plain data, owned by the caller (normally on its stack). */
struct ratelimit_slot {
    int held; /* 1 between a successful acquire and its release */
    enum ratelimit_kind kind;
    char tenant[RATELIMIT_TENANT_MAX + 1];
    char token[RATELIMIT_TOKEN_MAX]; /* the request's rate-log member */
    int leased;                      /* 1 for a kind with a global cap: stamped at once */
    int64_t base_redis_ms, base_mono_ms; /* Redis's clock at admission, ours before it */
    int64_t waited_ms;               /* time held back in acquire: sleeps and a full local
                                      * cap, not Redis round trips (metrics) */
    int64_t retry_after_ms;          /* RL_TIMEOUT: the wait admission would have needed */
};

enum ratelimit_status {
    RL_ERROR = -1,  /* Redis failed or bad arguments (errstr): treat as transient */
    RL_OK = 0,      /* admitted: do the request, then ratelimit_release() */
    RL_TIMEOUT = 1, /* admission would come after the deadline: nothing held; the
                       caller treats it as throttled, slot->retry_after_ms says how long */
};

/* One request to admit. tenant is borrowed for the call. */
struct ratelimit_req {
    enum ratelimit_kind kind;
    const char *tenant;            /* realm or portal id as text, 1..RATELIMIT_TENANT_MAX bytes, no
                                    * '{' or '}' */
    int64_t deadline_ms; /* CLOCK_MONOTONIC ms (clock_mono_ms(), common/clock.h) */
};

/* Wait until rq's tenant may send one request, then count it: take a local concurrency
 * slot, then an entry admitted ahead for this process, or (one thread at a time, one Lua
 * call, possibly repeated after sleeping what the script says) admit a few at once:
 * blocked-until check, rate window, global concurrency and the log entries, atomically.
 * When the wait the script asks for would end past rq->deadline_ms, returns RL_TIMEOUT
 * at once instead of sleeping in vain, with slot->retry_after_ms set to that wait. On
 * RL_OK, *slot is filled (slot->waited_ms for metrics). On RL_ERROR and RL_TIMEOUT,
 * slot->held is 0 and slot->waited_ms is still set. Blocks the calling thread. */
enum ratelimit_status ratelimit_acquire(struct ratelimit *rl, struct redis_conn *redis,
                                        const struct ratelimit_req *rq, struct ratelimit_slot *slot,
                                        char *errstr, size_t errsz);

/* Call when the request has completed (answered or failed): its log entry is to take
 * the completion time (the upstream counted it at its arrival, after admission: counting
 * from admission let the worker's window free a slot a few ms before the upstream's, one
 * 429 per window edge); the stamp is kept in the process (sweeper running, no global
 * cap) or deferred onto redis (redis_eval_deferred: it rides on the connection's next
 * command, so whoever owns it calls redis_flush() before going idle; the pipeline does
 * after each event). A lost stamp only keeps the entry until admission + lease_ms +
 * window. Then the local concurrency slot comes back. No-op when slot is NULL or not
 * held; slot->held becomes 0. */
void ratelimit_release(struct ratelimit *rl, struct redis_conn *redis, struct ratelimit_slot *slot);

/* Entries admitted ahead are used for this long at most, then returned. */
#define RATELIMIT_POOL_TTL_MS 1000

/* Start the sweeper: a thread with its own connection (o is copied) that every 250 ms
 * sends the stamps older than a second and returns entries admitted ahead and unused for
 * RATELIMIT_POOL_TTL_MS. From then on admissions take several entries at once. Once per
 * struct ratelimit; ratelimit_free stops it after a last sweep of everything. 0, or -1
 * with errstr (a bad Redis address). */
int ratelimit_start(struct ratelimit *rl, const struct redis_opts *o, char *errstr, size_t errsz);

/* One sweep through redis (what the sweeper does; exposed for tests): due stamps and
 * stale entries, or with all everything pending and every unused entry, sent and
 * flushed. 0, or -1 with errstr when Redis failed (they are then lost: they count until
 * their hold ends). */
int ratelimit_sweep(struct ratelimit *rl, struct redis_conn *redis, int all, char *errstr,
                    size_t errsz);

/* Block the whole tenant, for every replica, for retry_after_ms (> 0; capped at 1 h)
 * from now (Redis time): a 429 answer or a rate-limit header saying the upstream
 * budget is spent. Never shortens an existing block. Returns 0, or -1 with errstr
 * (Redis failed: the caller's own retry still honours Retry-After). */
int ratelimit_penalize(struct ratelimit *rl, struct redis_conn *redis, enum ratelimit_kind kind,
                       const char *tenant, int64_t retry_after_ms, char *errstr, size_t errsz);

#endif
