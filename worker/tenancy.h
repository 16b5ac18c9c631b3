/* tenancy.h - which HubSpot portal may write to which QuickBooks company (realm), and
 * the check every event passes before its first API call.
 *
 * Owns: the bindings in Redis, and one process's view of them (struct tenancy: the
 * settings of the check and an in-process cache of the answers that let events through).
 *
 *   <prefix>tenancy:realm:{<realm>}    string: the portal the realm is bound to (decimal).
 *                                      The truth; no TTL.
 *   <prefix>tenancy:portal:{<portal>}  set of the realms bound to the portal: an index for
 *                                      listing (tenancy_realms), never for deciding.
 *   <prefix>tenancy:{epoch}            integer bumped by every bind and unbind: the signal
 *                                      that makes every worker drop its cached bindings.
 *
 * Invariants:
 *  - A realm is bound to at most one portal: tenancy_bind() is a Lua compare-and-set on
 *    the realm's key alone (one key, one hash slot: it works on Redis Cluster too), and
 *    rebinding a realm to another portal takes an unbind first. A portal may have any
 *    number of realms.
 *  - The portal's set lives in another slot, so it is written after the realm's key, not
 *    atomically with it. A failure between the two leaves an index entry missing or
 *    stale: tenancy_realms() checks every entry against the realm keys (dropping stale
 *    ones), and repeating the bind or unbind (idempotent) repairs it.
 *
 * The check (tenancy_admit), in the pipeline after the claim and before any HubSpot or
 * QBO call: the portal must have HubSpot credentials (hubspot_portal_connected: a token
 * of its own, or hubspot.token_portals gives it the default token), else
 * PORTAL_NOT_CONNECTED; the realm must be bound to the portal, else REALM_NOT_ALLOWED
 * (bound to another portal, or unbound while tenancy.allow_unbound is off).
 *
 * Cache and invalidation: only answers that let an event through are cached, for
 * tenancy.cache_ttl, tagged with a local generation. Every bind and unbind bumps the
 * epoch; the first event after TENANCY_EPOCH_POLL_MS reads it (one GET per second per
 * process, not per event) and, when it moved, bumps the generation, which invalidates
 * every cached answer at once. So a bind or unbind made anywhere (`hsqb-worker
 * credentials`, the ingress's OAuth callback) reaches every worker within about a
 * second; the TTL only bounds how long a worker may miss one whose epoch bump was lost.
 * A refusal is never cached (and a cached binding to another portal is re-read, not
 * trusted), so a realm bound a moment ago is seen at once and a replayed refused event
 * runs. In steady state an event's check costs no Redis command.
 *
 * Thread-safety: the bind/unbind/realms calls use the caller's connection only; struct
 * tenancy is shared by all worker threads (the cache locks itself, the epoch state is
 * atomic), each tenancy_admit() uses the calling thread's ioctx.
 */
#ifndef HSQB_TENANCY_H
#define HSQB_TENANCY_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/redis.h"
#include "worker/apierr.h"
#include "worker/hubspot.h"
#include "worker/ioctx.h"

#define TENANCY_REALM_MAX     32   /* digits of a realm id */
#define TENANCY_EPOCH_POLL_MS 1000 /* how often a process reads the epoch */
/* What a realm's key starts with after the prefix (`credentials list` scans for it). */
#define TENANCY_REALM_KEY "tenancy:realm:"

/* ---- the bindings (the ingress's OAuth callback and `hsqb-worker credentials`) ----
 * realm: 1..TENANCY_REALM_MAX digits; portal: > 0. r is the caller's connection. Each
 * call returns 0, or -1 with errstr (a bad argument, a Redis failure, or as said). */

/* Bind realm to portal. Idempotent. -1 with errstr "realm R is bound to portal P" when
 * it is bound to another portal (nothing changed). */
int tenancy_bind(struct redis_conn *r, int64_t portal, const char *realm, char *errstr,
                 size_t errsz);
/* Unbind realm from portal. Idempotent: a realm bound to nothing is fine. -1 with errstr
 * "realm R is bound to portal P" when it is bound to another portal (nothing changed). */
int tenancy_unbind(struct redis_conn *r, int64_t portal, const char *realm, char *errstr,
                   size_t errsz);
/* The realms bound to portal, ascending, into out[0..max-1] (NUL-terminated digits);
 * *n = how many are bound, which may exceed max (only the first max are written).
 * Index entries that no longer match their realm's key are dropped on the way. */
int tenancy_realms(struct redis_conn *r, int64_t portal, char (*out)[TENANCY_REALM_MAX + 1],
                   size_t max, size_t *n, char *errstr, size_t errsz);
/* The portal realm is bound to, read from Redis (no cache): 1 with *portal, 0 when
 * unbound, -1 with errstr. */
int tenancy_portal_of(struct redis_conn *r, const char *realm, int64_t *portal, char *errstr,
                      size_t errsz);

/* Bumps the epoch: every process drops its cached answers (and the company defaults
 * cached under them, worker/company.h) within about TENANCY_EPOCH_POLL_MS. */
int tenancy_touch(struct redis_conn *r, char *errstr, size_t errsz);

/* ---- the check ------------------------------------------------------------------- */

struct tenancy_opts {
    struct hubspot_api *hubspot; /* borrowed; answers whether a portal is connected */
    int allow_unbound;           /* tenancy.allow_unbound */
    int64_t cache_ttl_ms;        /* tenancy.cache_ttl; 0 = no cache */
};

struct tenancy;

/* tenancy.allow_unbound and tenancy.cache_ttl into o (o->hubspot left as it is). */
void tenancy_opts_from_config(struct tenancy_opts *o, const struct config *cfg);
/* NULL with errstr (no hubspot client, out of memory). Caller frees with tenancy_free. */
struct tenancy *tenancy_new(const struct tenancy_opts *o, char *errstr, size_t errsz);
/* NULL-safe. */
void tenancy_free(struct tenancy *t);

/* May portal's event write to realm? 0 yes; -1 with *err: API_PERMANENT with
 * PORTAL_NOT_CONNECTED or REALM_NOT_ALLOWED (one message whether the realm is bound to
 * another portal or to none, so a portal cannot probe for other customers' companies;
 * an info log line tells the operator which), or API_TRANSIENT when Redis could not
 * answer. Makes no HubSpot or QBO call. Uses io->redis only. */
int tenancy_admit(struct tenancy *t, const struct ioctx *io, int64_t portal, const char *realm,
                  struct api_error *err);
/* The generation cached answers are valid under, after polling the epoch when due (as
 * tenancy_admit does): what other caches tied to the bindings key their entries with
 * (worker/company.h). 0 without a cache (tenancy.cache_ttl 0): such caches then read
 * afresh every time. */
uint64_t tenancy_generation(struct tenancy *t, struct redis_conn *r);
/* Drop this process's cached answer for realm (a bind or unbind made through this
 * process, or a test). t may be NULL. */
void tenancy_forget(struct tenancy *t, const char *realm);

#endif
