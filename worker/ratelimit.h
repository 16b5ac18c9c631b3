/* ratelimit.h - per-tenant request rate and concurrency limits shared by all replicas.
 *
 * Owns: the limits of each tenant kind (copied from the config at start-up) and the
 * in-process concurrency table (one counter per active tenant, removed when idle).
 * The shared state lives in Redis, one tenant's keys in one cluster slot (hash tag):
 *   <prefix>rate:{<kind>:<id>}        sorted set: the request log of the last window
 *                                     (member per admitted request, score = admit time,
 *                                     moved to the completion time by the release)
 *                                     plus the member "blocked" whose score is the
 *                                     "blocked until" time set by ratelimit_penalize()
 *   <prefix>rate:{<kind>:<id>}:conc   sorted set: cross-replica concurrency leases
 *                                     (member = lease token, score = lease expiry);
 *                                     only for kinds with a global cap (QBO)
 * with <kind> "qbo" (id = realm) or "hs" (id = portal). All times in those keys are the
 * Redis server's clock (TIME), so replicas with skewed clocks agree.
 *
 * Rules, per tenant:
 *  - Rate: at most `limit` requests admitted in any rolling window of `window_ms`
 *    (an exact sliding log, not GCRA: HubSpot enforces a rolling 10 s window and a
 *    GCRA/token bucket allowing a full burst admits up to 2*limit-1 requests in one such
 *    window). A burst of `limit` requests after an idle window goes at once.
 *  - Blocked: after ratelimit_penalize(), nobody (any replica) is admitted before the
 *    blocked-until time.
 *  - Concurrency: at most `local_concurrency` requests in flight per tenant in this
 *    process (condition variable, no Redis); for QBO also at most
 *    `global_concurrency` across all replicas (Intuit's 10 concurrent per realm), with
 *    leases that expire after `lease_ms` so a crashed replica's slots come back.
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
    int64_t lease_ms;       /* lifetime of a global concurrency lease (> the longest
                               request); used only when global_concurrency > 0 */
};

struct ratelimit_opts {
    struct ratelimit_limits kind[RL_KIND_COUNT];
    /* Longest single sleep between two script calls while waiting for a concurrency
     * slot held by another replica (whose release we cannot observe). Default 50. */
    int64_t poll_ms;
};

/* Defaults: QBO 500 per 60 s, 10 local, 10 global, lease 2 min; HubSpot 100 per 10 s,
 * 6 local, no global cap; poll 50 ms. */
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
    char token[RATELIMIT_TOKEN_MAX]; /* the request's rate-log member (and lease token) */
    int leased;                      /* 1 when a global concurrency lease is held */
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

struct ratelimit_prefetch;

/* One request to admit. tenant is borrowed for the call. */
struct ratelimit_req {
    enum ratelimit_kind kind;
    const char *tenant;            /* realm or portal id as text, 1..RATELIMIT_TENANT_MAX bytes, no
                                    * '{' or '}' */
    int64_t deadline_ms;           /* CLOCK_MONOTONIC ms (clock_mono_ms(), common/clock.h) */
    struct ratelimit_prefetch *pf; /* admissions ahead (below); NULL: none */
};

/* Wait until rq's tenant may send one request, then count it: take a local concurrency
 * slot, then (one Lua call, possibly repeated after sleeping what the script says) the
 * blocked-until check, the global concurrency lease and the rate log entry, atomically.
 * When the wait the script asks for would end past rq->deadline_ms, returns RL_TIMEOUT
 * at once instead of sleeping in vain, with slot->retry_after_ms set to that wait. With
 * rq->pf, admissions ahead are used and refilled (below). On RL_OK, *slot is filled
 * (slot->waited_ms for metrics). On RL_ERROR and RL_TIMEOUT, slot->held is 0 and
 * slot->waited_ms is still set. Blocks the calling thread. */
enum ratelimit_status ratelimit_acquire(struct ratelimit *rl, struct redis_conn *redis,
                                        const struct ratelimit_req *rq, struct ratelimit_slot *slot,
                                        char *errstr, size_t errsz);

/* Call when the request has completed (answered or failed). One Lua call: the rate log
 * entry stays (the request was sent) but takes the completion time, because the
 * upstream counted it at its arrival, after admission: stamping admission alone let the
 * worker's window free a slot a few ms before the upstream's, one 429 per window edge.
 * Then the Redis lease goes (when there is one) and the local concurrency slot. The
 * Redis part is deferred (redis_eval_deferred): it rides on the connection's next
 * command — a later stamp only makes the log more conservative — so whoever owns the
 * connection calls redis_flush() before going idle (the pipeline does after each event).
 * A Redis failure is only logged (the entry keeps its admission time, the lease expires
 * by itself). No-op when slot is NULL or not held; slot->held becomes 0. */
void ratelimit_release(struct ratelimit *rl, struct redis_conn *redis, struct ratelimit_slot *slot);

/* Admissions ahead, for a caller that knows it will make several requests to one tenant
 * in a row (an event's HubSpot reads): the Lua call that admits the first request also
 * writes up to `expect - 1` more log entries (as many as the window has room for), and
 * the following requests take one of those instead of a Redis round trip each; the
 * local concurrency slot is still taken per request. Only kinds without a global
 * concurrency cap use it (a lease must be held only while its request runs). An entry
 * counts in the window from its admission, before its request is sent, which is
 * conservative; so that a block set meanwhile by another replica (ratelimit_penalize)
 * is not outrun for long, entries older than RATELIMIT_PREFETCH_TTL_MS are not used.
 * Plain data owned by the caller, zeroed before use, used by one thread. */
#define RATELIMIT_PREFETCH_MAX    4
#define RATELIMIT_PREFETCH_TTL_MS 1000

struct ratelimit_prefetch {
    int expect; /* requests the caller still expects to make, the next one included */
    int n;      /* entries admitted ahead and not used yet */
    enum ratelimit_kind kind;
    char tenant[RATELIMIT_TENANT_MAX + 1];
    int64_t admitted_ms; /* clock_mono_ms() of their admission */
    char token[RATELIMIT_PREFETCH_MAX][RATELIMIT_TOKEN_MAX];
};

/* ratelimit_acquire with rq->pf set uses and refills it (kinds with a global cap ignore
 * it): an unusable entry (other tenant, too old) is dropped first; each admission counts
 * one request off pf->expect. */

/* Remove pf's unused entries from the log (deferred like ratelimit_release; a failure is
 * only logged: they then count until the window passes) and empty pf. Call when the
 * requests expected will not come (the caller is done, or a 429 came back). NULL-safe. */
void ratelimit_prefetch_drop(struct ratelimit *rl, struct redis_conn *redis,
                             struct ratelimit_prefetch *pf);

/* Block the whole tenant, for every replica, for retry_after_ms (> 0; capped at 1 h)
 * from now (Redis time): a 429 answer or a rate-limit header saying the upstream
 * budget is spent. Never shortens an existing block. Returns 0, or -1 with errstr
 * (Redis failed: the caller's own retry still honours Retry-After). */
int ratelimit_penalize(struct ratelimit *rl, struct redis_conn *redis, enum ratelimit_kind kind,
                       const char *tenant, int64_t retry_after_ms, char *errstr, size_t errsz);

#endif
