/* pipeline_internal.h - private to the pipeline: included by worker/pipeline.c and
 * worker/outcome.c only, never by another module (their API is worker/pipeline.h).
 *
 * Owns the definitions both halves of the pipeline need: struct pipeline (settings copied
 * from the config, borrowed clients, the lease keeper), struct pipeline_thread, the lease
 * keeper's entries, the delays used when a dependency is down, and the clock and jitter
 * helpers. pipeline.c creates and frees all of it; outcome.c only reads the settings,
 * uses the borrowed clients and takes entries off the keeper.
 *
 * Invariants: a struct kept is on its keeper's list from when its event's action starts
 * until the claim no longer needs renewing (released, recorded as done, or lost to
 * another owner), and is always off it (keeper_remove) before it is freed.
 *
 * Thread-safety: struct pipeline is shared by all worker threads and immutable after
 * pipeline_new, except the keeper's list (guarded by keeper.mu), the kept entries'
 * lost flags and mapcache_metrics_ms (atomics). struct pipeline_thread belongs to one worker
 * thread.
 */
#ifndef HSQB_PIPELINE_INTERNAL_H
#define HSQB_PIPELINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/clock.h"
#include "common/backoff.h"
#include "common/http.h"
#include "common/redis.h"
#include "worker/action.h"
#include "worker/breaker.h"
#include "worker/delay.h"
#include "worker/pipeline.h"

#define SEND_TIMEOUT_MS     30000 /* one Kafka delivery (result, DLQ or retry record) */
#define BUSY_DELAY_MS       1000  /* claim held by another owner: look again after ~1-2 s */
#define REDIS_DOWN_DELAY_MS 2000
#define KAFKA_DOWN_DELAY_MS 5000
#define ERRSZ               512

/* ---- lease keeper (its thread lives in pipeline.c) ------------------------------------ */

/* One claimed event in progress. lost is set by the keeper when a renewal finds the
 * claim gone; the action polls it. Owned by the thread handling the event. */
struct kept {
    struct redis_lease lease;
    atomic_int lost;
    struct kept *next, *prev; /* the keeper's list, under its mutex */
    int linked;               /* on the list (removal is O(1) and idempotent) */
};

struct keeper {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th;
    int started, stop;
    struct kept *head;
    struct redis_conn *redis; /* the keeper thread's own connection */
    int64_t lease_ms;
};

/* Stop renewing e's claim. Idempotent: e need not be registered. */
void keeper_remove(struct keeper *k, struct kept *e);

/* ---- the pipeline ------------------------------------------------------------------- */

struct pipeline {
    struct pipeline_deps deps;
    struct action_settings settings;
    struct mapcache *mapcache; /* settings.resolve.local; NULL when cache.local_ttl is 0 */
    _Atomic int64_t mapcache_metrics_ms; /* when its counters were last copied to metrics */
    char group[256];
    char source[300];
    char topic_results[256];
    char topic_dlq[256];
    /* Redis options with owned strings (redis_opts borrows) */
    struct redis_opts ropts;
    char r_host[256], r_user[256], r_pass[512], r_prefix[REDIS_MAX_PREFIX + 1];
    struct http_client_opts hopts;
    char user_agent[257];
    int64_t lease_ms, dedup_ms;
    int complete_callbacks; /* callbacks.complete */
    struct backoff_policy retry;
    size_t max_event_bytes;
    struct redis_script reclaim;
    struct keeper keeper;
    struct delay_policy delay; /* the retry topic (worker/delay.h) */
    struct breaker *breaker;   /* per-tenant circuits (worker/breaker.h) */
};

struct pipeline_thread {
    struct pipeline *p;
    struct http_client *http;
    struct redis_conn *redis;
    uint64_t rnd;
};

/* A delay of base..2*base ms, so parked events do not come back in lockstep. */
static inline int64_t jitter(struct pipeline_thread *t, int64_t base)
{
    t->rnd ^= t->rnd >> 12;
    t->rnd ^= t->rnd << 25;
    t->rnd ^= t->rnd >> 27;
    return base + (int64_t)((t->rnd * 2685821657736338717ULL) % (uint64_t)(base + 1));
}

#endif
