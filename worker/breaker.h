/* breaker.h - per-tenant circuit breakers: head-of-line protection: a
 * failing tenant must not slow the others.
 *
 * Owns: one state machine per tenant (a QBO realm "realm:<id>" or a HubSpot portal
 * "portal:<id>"; any string up to BREAKER_TENANT_MAX bytes), in a table bounded by
 * BREAKER_MAX_TENANTS entries.
 *
 *           failures >= threshold (consecutive)
 *   CLOSED ------------------------------------> OPEN (until now + cooldown)
 *     ^                                            |  breaker_acquire() after the
 *     |  breaker_success()                         |  cooldown: the caller gets the
 *     |                                            v  probe (BREAKER_PROBE)
 *     +------------------------------------- HALF_OPEN (one probe in flight; every
 *                                                  |  other caller is denied)
 *         breaker_failure() of the probe or of     |
 *         anyone: OPEN again, cooldown doubled  <--+  (capped at max_cooldown)
 *
 * A success closes the circuit and forgets the failures; a failure while CLOSED counts
 * towards the threshold; a probe that never reports back (its event ended without
 * touching the tenant) is forgotten after one cooldown and another probe is allowed.
 * "Failure" means a transient upstream failure (5xx, timeout, dropped connection,
 * 429): the tenant did not answer usefully. A permanent failure (validation, not found)
 * proves the tenant answers: callers report it as a success.
 *
 * Denied events are the caller's to move (the pipeline sends them to the retry topic
 * without an API call), so a broken or throttled tenant costs the others nothing but
 * a few fast Kafka writes.
 *
 * State is local to the process (NEEDSWORK: sharing it through Redis would open a
 * tenant's circuit on every replica at once; each replica now learns on its own,
 * costing `threshold` failed calls per replica per cooldown).
 *
 * Bounded memory: at BREAKER_MAX_TENANTS entries a new tenant replaces the least
 * recently used CLOSED one; when every entry is open or half-open the new tenant is not
 * tracked (always allowed) until one closes.
 *
 * Thread-safety: every function may be called from any thread (one mutex). The change
 * hook runs with the mutex held: it must be quick and must not call back in.
 */
#ifndef HSQB_BREAKER_H
#define HSQB_BREAKER_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

#define BREAKER_TENANT_MAX  64    /* bytes of a tenant name */
#define BREAKER_MAX_TENANTS 10000 /* tenants tracked at once */

enum breaker_state { BREAKER_CLOSED = 0, BREAKER_HALF_OPEN = 1, BREAKER_OPEN = 2 };

enum breaker_verdict {
    BREAKER_ALLOW = 0, /* closed (or not tracked): go ahead */
    BREAKER_PROBE,     /* half-open and this caller is the probe: go ahead and report */
    BREAKER_DENY,      /* open, or half-open with a probe in flight: do not call */
};

struct breaker_opts {
    int threshold;           /* consecutive failures that open; 0 disables the breaker */
    int64_t cooldown_ms;     /* first open period, > 0 */
    int64_t max_cooldown_ms; /* cap of the doubling, >= cooldown_ms */
    /* Called on every state change (may be NULL): tenant, new state. For metrics. */
    void (*on_change)(void *opaque, const char *tenant, enum breaker_state st);
    void *opaque;
};

struct breaker;

/* Copies o. Returns NULL with errstr on bad options or out-of-memory. Free with
 * breaker_free(). */
struct breaker *breaker_new(const struct breaker_opts *o, char *errstr, size_t errsz);
/* Options from breaker.failures, breaker.cooldown, breaker.max_cooldown (no hook). */
void breaker_opts_from_config(struct breaker_opts *o, const struct config *cfg);
/* NULL-safe. */
void breaker_free(struct breaker *b);

/* May the caller use the tenant now (now_ms: CLOCK_MONOTONIC)? For BREAKER_DENY,
 * *retry_at_ms (may be NULL) is the monotonic time the circuit may let a probe through
 * (now + a short delay while a probe is in flight). b NULL or a disabled breaker:
 * always BREAKER_ALLOW. */
enum breaker_verdict breaker_acquire(struct breaker *b, const char *tenant, int64_t now_ms,
                                     int64_t *retry_at_ms);

/* The tenant answered (closes the circuit). */
void breaker_success(struct breaker *b, const char *tenant, int64_t now_ms);
/* The tenant failed transiently. Returns the state afterwards (BREAKER_OPEN when this
 * failure opened or re-opened the circuit, or it was open already). */
enum breaker_state breaker_failure(struct breaker *b, const char *tenant, int64_t now_ms);

/* Current state (BREAKER_CLOSED for an unknown tenant or a NULL breaker). An OPEN
 * circuit whose cooldown passed reads HALF_OPEN. */
enum breaker_state breaker_state(struct breaker *b, const char *tenant, int64_t now_ms);
/* Tenants whose circuit is not closed. */
size_t breaker_open_count(struct breaker *b);

/* "closed", "half_open", "open". */
const char *breaker_state_name(enum breaker_state st);

#endif
