/* keeper.h - the lease keeper: one thread that keeps the claims of events in progress
 * alive.
 *
 * Owns: its thread, its own Redis connection, and a list of the claims it renews (the
 * entries themselves belong to the deliveries that registered them).
 *
 * Why a thread rather than renewals inside the action: a single slow API call (a rate
 * limit wait, a 30 s timeout) can outlast a lease, and the keeper renews regardless.
 * Every claim.lease / 3 (at least 500 ms) it renews every registered claim; when a
 * renewal finds the claim gone (the process stalled past its lease and another worker
 * took over, or the event's key now holds its done marker), it sets the entry's lost
 * flag, which the action polls before each QBO write (struct ioctx's claim_lost).
 *
 * Invariants: an entry is on the list from keeper_add until keeper_remove, and must be
 * removed before its memory is reused or freed. The pipeline adds an entry right after
 * taking a claim and removes it in one place, when the delivery ends. So a claim stays
 * alive through the delivery's last sends (a dead letter or a retry-topic record may
 * take longer than a lease); once the delivery released it or recorded its outcome, a
 * renewal finds another value and only sets the lost flag, which nobody reads by then.
 *
 * Thread-safety: keeper_add / keeper_remove from any thread (the list is under a mutex;
 * renewals happen outside it); the lost flag is atomic.
 */
#ifndef HSQB_KEEPER_H
#define HSQB_KEEPER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/redis.h"

/* One claim being kept alive. Embed it in whatever owns the claim; zero it first. */
struct kept {
    struct redis_lease lease;
    atomic_int lost;          /* set by the keeper when a renewal finds the claim gone */
    struct kept *next, *prev; /* the keeper's list, under its mutex */
    int linked;               /* on the list */
};

struct keeper;

/* Connect (o is copied) and start the thread, renewing for lease_ms (> 0). NULL with
 * errstr (a bad Redis address fails here). Free with keeper_free(). */
struct keeper *keeper_new(const struct redis_opts *o, int64_t lease_ms, char *errstr, size_t errsz);
/* Stop and join the thread. NULL-safe. No entry may be registered any more. */
void keeper_free(struct keeper *k);

/* Start renewing e->lease (set by the caller); clears e->lost. */
void keeper_add(struct keeper *k, struct kept *e);
/* Stop renewing e. Idempotent (e need not be registered). */
void keeper_remove(struct keeper *k, struct kept *e);

#endif
