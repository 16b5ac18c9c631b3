/* oauth.h - QuickBooks Online access tokens per realm: cache, proactive refresh, rotation.
 *
 * Owns: the process-wide struct oauth (Intuit token endpoint settings copied from the
 * config, and a small in-process cache of access tokens per realm) and the Redis hash
 * that is the source of truth for every replica:
 *
 *   <prefix>oauth:{<realm>}  hash
 *     access_token          current access token ("" or absent: none; refresh first)
 *     access_expires_at_ms  epoch ms when Intuit stops accepting it
 *     refresh_token         the LATEST refresh token (Intuit rotates them on refresh)
 *     refresh_expires_at_ms epoch ms (rolling lifetime from x_refresh_token_expires_in)
 *     updated_at            epoch ms of the last write
 *     reauth_required       present ("1") once Intuit answered invalid_grant for the
 *                           stored refresh token; cleared only by storing a new one
 *   key TTL: the refresh token's lifetime.
 *   access_token and refresh_token are sealed at rest when redis.encryption_keys is set
 *   (worker/atrest.h): bound to this key and field; plain text from older versions is
 *   re-written sealed when read. The compare-and-set scripts compare the stored text
 *   read back, never a token sealed anew.
 *
 * Invariants:
 *  - At most one refresh per realm is in flight across ALL replicas: the refresher holds
 *    the Redis lock <prefix>lock:{<realm>}:oauth (common/redis.h lock primitives); every
 *    other caller, in this process or another, waits (bounded) for the hash to carry a
 *    newer access token instead of refreshing. Inside one process a single thread per
 *    realm even tries for the lock; the others wait on a condition variable.
 *  - The rotated refresh token is stored together with the new access token, in one Lua
 *    compare-and-set (only while the stored refresh token is still the one we sent),
 *    BEFORE the lock is released. A refresher that lost its lock (it expired during a
 *    slow token call) therefore never overwrites a newer token.
 *  - Tokens never appear in logs, errstr or api_error messages.
 *
 * Refresh decision for oauth_get_access():
 *   cache hit (fresh) ---------------------------------------------> token
 *   Redis hash: reauth_required ----------------------------------> API_AUTH REAUTH
 *               access token present, not within the margin -------> token (cached)
 *               else: lock ---held--> we refresh (re-read first: someone may have)
 *                          \--busy--> poll the hash for a newer token (bounded), retake
 *   The margin is min(oauth.refresh_margin, half the token's lifetime), so short-lived
 *   tokens (tests) do not refresh on every call. A proactive refresh that fails
 *   transiently while the current token has more than 1 s left returns that token (held
 *   in the cache for about a second, so the refresh is retried soon).
 *
 * Errors (struct api_error): invalid_grant -> API_AUTH, HSQB_ERR_QBO_REAUTH_REQUIRED,
 * qbo_fault_code "invalid_grant" (permanent: the company must be reconnected with
 * `hsqb-worker credentials qbo`); no refresh token stored -> the same; invalid_client ->
 * API_AUTH, HSQB_ERR_INTERNAL (the app's client id/secret are wrong: fix the config);
 * token endpoint 5xx / 429 / transport failure, Redis failure, waiting for another
 * replica's refresh timing out -> API_TRANSIENT (429: API_THROTTLED),
 * HSQB_ERR_RETRIES_EXHAUSTED.
 *
 * Thread-safety: struct oauth is shared by all worker threads (internal mutex); each
 * call takes the calling thread's struct ioctx (its http_client and redis_conn).
 */
#ifndef HSQB_OAUTH_H
#define HSQB_OAUTH_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/http.h"
#include "common/redis.h"
#include "worker/apierr.h"
#include "worker/ioctx.h"

#define OAUTH_TOKEN_MAX         4096        /* access token bytes + NUL (JWE, ~1 KB today) */
#define OAUTH_REFRESH_TOKEN_MAX 1024        /* refresh token bytes + NUL (~50 today) */
#define OAUTH_MAX_RESPONSE      (64 * 1024) /* token endpoint answer */
#define OAUTH_REALM_MAX         32          /* digits of a realm id */
#define OAUTH_CACHE_MS          30000       /* in-process cache lifetime of one token */

struct oauth;

/* Reads oauth.token_url, oauth.client_id, oauth.client_secret (both must be set),
 * oauth.refresh_margin and http.timeout (bounds the lock lease and the wait for another
 * replica's refresh). cfg is only read during the call. Registers the client secret
 * with log_register_secret(). Returns NULL with errstr on a missing setting.
 * Caller frees with oauth_free(). */
struct oauth *oauth_new(const struct config *cfg, char *errstr, size_t errsz);
/* NULL-safe. No other thread may be inside an oauth_* call. */
void oauth_free(struct oauth *o);

/* Optional observers (metrics), called from the worker threads; every member may be
 * NULL. api_call has the shape of metrics_on_api_call() (api "oauth", endpoint
 * "POST /oauth2/v1/tokens/bearer", status <= 0 for a transport failure). refresh is told
 * each refresh attempt's result: "ok", "invalid_grant", "error" (anything else failed),
 * "lost" (stored tokens changed under us: ours not stored). */
struct oauth_hooks {
    void *opaque;
    void (*api_call)(void *opaque, const char *api, const char *endpoint, int status,
                     int64_t duration_ms);
    void (*refresh)(void *opaque, const char *result);
};

/* Install hooks (copied) before the struct oauth is shared between threads. h may be
 * NULL (none). */
void oauth_set_hooks(struct oauth *o, const struct oauth_hooks *h);

/* In both calls below io is the calling thread's: oauth_get_access() uses io->http and
 * io->redis, oauth_invalidate() only io->redis (neither NULL where used); deadline_ms is
 * not used (the waits are bounded by http.timeout as said above) and claim_lost does
 * not apply (nothing here writes to QuickBooks). A failure names API_SOURCE_OAUTH, also
 * when QBO passes it through. */

/* A usable access token for realm (digits) into tok (toksz >= OAUTH_TOKEN_MAX is always
 * enough), refreshing it first when it is missing, expired or within the margin (see the
 * header comment for the whole decision). May block for up to about http.timeout plus
 * the refresh wait while another replica refreshes. Returns 0, or -1 with *err filled
 * (tok untouched). All pointers are borrowed for the call. */
int oauth_get_access(const struct ioctx *io, struct oauth *o, const char *realm, char *tok,
                     size_t toksz, struct api_error *err);

/* QBO answered 401 to rejected_token: forget it so the next oauth_get_access() refreshes.
 * Only when the stored access token is still rejected_token (compare-and-set in Lua):
 * another thread or replica may already have refreshed, and that newer token stays.
 * Returns 0, or -1 with *err (Redis failure: transient). */
int oauth_invalidate(const struct ioctx *io, struct oauth *o, const char *realm,
                     const char *rejected_token, struct api_error *err);

/* ---- credentials (hsqb-worker credentials) ------------------------------------------ */

/* Store refresh_token as realm's current refresh token, clearing the access token and
 * any reauth_required mark, so the next oauth_get_access() refreshes with it.
 * refresh_expires_at_ms 0 means unknown (the key then gets Intuit's documented ~100 day
 * rolling lifetime). Needs no struct oauth. Returns 0 or -1 with errstr. */
int oauth_store_refresh_token(struct redis_conn *redis, const char *realm,
                              const char *refresh_token, int64_t refresh_expires_at_ms,
                              char *errstr, size_t errsz);

/* Tokens Intuit issued for a realm (an authorization code's exchange); borrowed. */
struct oauth_tokens {
    const char *access_token;      /* NULL or "": none (the next use refreshes) */
    int64_t access_expires_at_ms;  /* epoch ms; an access token already expired is dropped */
    const char *refresh_token;     /* 1..OAUTH_REFRESH_TOKEN_MAX - 1 bytes */
    int64_t refresh_expires_at_ms; /* 0: unknown, as above */
};

/* oauth_store_refresh_token() with the access token issued alongside (the connect
 * flow's exchange), so the first API call needs no refresh. Same contract otherwise. */
int oauth_store_tokens(struct redis_conn *redis, const char *realm, const struct oauth_tokens *t,
                       char *errstr, size_t errsz);

/* The realm's stored refresh token into buf (bufsz >= OAUTH_REFRESH_TOKEN_MAX is always
 * enough), for revoking it: 1, 0 when none is stored (buf ""), -1 with errstr. A secret:
 * the caller wipes buf. */
int oauth_refresh_token_get(struct redis_conn *redis, const char *realm, char *buf, size_t bufsz,
                            char *errstr, size_t errsz);

/* What is stored for a realm, without the secrets (for `credentials list`). */
struct oauth_status {
    int has_refresh_token;
    int has_access_token;
    int reauth_required;
    int64_t access_expires_at_ms;  /* 0 when unknown */
    int64_t refresh_expires_at_ms; /* 0 when unknown */
    int64_t updated_at_ms;         /* 0 when unknown */
};

/* Returns 1 and fills *st when the realm has a hash, 0 when not, -1 with errstr. */
int oauth_status_get(struct redis_conn *redis, const char *realm, struct oauth_status *st,
                     char *errstr, size_t errsz);

/* Redis key <prefix>oauth:{<realm>} into buf. Returns 0, or -1 when it does not fit or
 * realm is not 1..OAUTH_REALM_MAX digits. */
int oauth_key(const struct redis_conn *redis, const char *realm, char *buf, size_t bufsz);

/* 1 when s is a plausible realm id: 1..OAUTH_REALM_MAX ASCII digits. */
int oauth_realm_valid(const char *s);

#endif
