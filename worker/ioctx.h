/* ioctx.h - one worker thread's I/O context: what every upstream call needs besides its
 * client object, passed first, the way hiredis passes redisContext *c.
 *
 * Owns: nothing. The HTTP client and the Redis connection belong to the worker thread
 * (created with it, freed with it); the claim-lost flag belongs to the event in
 * progress (the pipeline's lease keeper sets it). An ioctx is a small value the thread
 * fills for each event: it is never shared between threads.
 *
 * Rules every client (HubSpot, QBO, OAuth, resolve) follows with it:
 *   - http and redis are used only on the calling thread;
 *   - deadline_ms (a clock_mono_ms() value, common/clock.h) bounds how long a call may
 *     wait for a rate-limit slot or a token refresh; 0 lets the client pick its default;
 *   - a QBO write is not sent once *claim_lost is set: another worker owns the event now
 *     (the call fails API_TRANSIENT). NULL means the claim cannot be lost (tools, tests).
 */
#ifndef HSQB_IOCTX_H
#define HSQB_IOCTX_H

#include <stdatomic.h>
#include <stdint.h>

#include "common/http.h"
#include "common/redis.h"

struct ioctx {
    struct http_client *http;     /* the thread's; never NULL */
    struct redis_conn *redis;     /* the thread's; NULL only where a client says so */
    int64_t deadline_ms;          /* CLOCK_MONOTONIC ms; 0 = the client's default */
    const atomic_int *claim_lost; /* set when the event's claim is lost; may be NULL */
};

/* 1 when the event's claim was lost (stop before the next write), else 0. */
static inline int ioctx_claim_lost(const struct ioctx *io)
{
    return io->claim_lost && atomic_load(io->claim_lost);
}

#endif
