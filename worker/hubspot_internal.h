/* hubspot_internal.h - private to the HubSpot client's files (hubspot.c,
 * hubspot_account.c, hubspot_callbacks.c, hubspot_exchange.c, hubspot_refresh.c): the
 * client object, the one-request layer the calls are built on, and the refresh of
 * OAuth-installed portals' access tokens.
 *
 * Owns nothing of its own: struct hubspot_api is defined here so those files see its
 * members (hubspot_exchange.c creates, frees and guards it; the others read base_url).
 * No other file may include it: the rest of the program sees only worker/hubspot.h.
 *
 * Thread-safety: as hubspot.h says; the token cache and the refreshes in flight are
 * guarded by mu (refresh_cv signals a refresh's end), everything else in struct
 * hubspot_api is immutable after hubspot_api_new_opts().
 */
#ifndef HSQB_HUBSPOT_INTERNAL_H
#define HSQB_HUBSPOT_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "common/http.h"
#include "common/jtape.h"
#include "worker/hubspot.h"
#include "worker/hubspot_oauth.h"

#define HS_TOKEN_CACHE_MAX 256 /* portals cached at once */
#define HS_FLIGHTS_MAX     64  /* portals refreshing at once in this process */

struct hubspot_token_entry {
    int64_t portal;
    int64_t fetched_ms;
    char *token; /* NULL: no token of its own (use the default); owned, wiped on free */
    /* An OAuth install's token: refresh it from this epoch ms on (its expiry less the
     * margin); 0 for any other token (never refreshed). */
    int64_t refresh_at_ms;
    int64_t expires_at_ms; /* epoch ms; 0 when not an install's */
};

/* One portal's refresh led by a thread of this process (hubspot_refresh.c). */
struct hubspot_flight {
    int64_t portal; /* 0: free */
    int busy;       /* a thread leads it */
    int waiters;    /* threads sleeping on refresh_cv for it */
    unsigned gen;   /* bumped when a lead ends */
    int failed;     /* the last lead failed with err */
    struct api_error err;
};

struct hubspot_api {
    char *base_url; /* owned; no trailing '/' */
    char *token;    /* the default token, owned (secret); NULL when none */
    /* the portals it serves (hubspot.token_portals): any when token_all, else these */
    int token_all;
    int64_t *token_portals; /* owned, ntoken_portals entries */
    size_t ntoken_portals;
    long timeout_ms;
    struct ratelimit *rl; /* borrowed */
    struct hubspot_hooks hooks;
    pthread_mutex_t mu; /* guards cache and ncache */
    struct hubspot_token_entry cache[HS_TOKEN_CACHE_MAX];
    size_t ncache;
    /* OAuth refresh (hubspot.oauth.*): app.base_url is base_url; client id and secret
     * owned (the secret wiped on free); "" when not configured (no refresh: the token's
     * expiry fails the portal's calls HUBSPOT_AUTH) */
    struct hubspot_oauth_app app;
    int64_t refresh_margin_ms; /* refresh when fewer than this remain */
    int64_t refresh_lock_ms;   /* lease of the cross-replica refresh lock */
    int64_t refresh_wait_ms;   /* how long a thread waits for another's refresh */
    pthread_cond_t refresh_cv;
    struct hubspot_flight flights[HS_FLIGHTS_MAX];
    /* portals' time zones (hubspot_account_time_zone), guarded by mu too */
    struct hubspot_tz_entry {
        int64_t portal, fetched_ms;
        char tz[HUBSPOT_TZ_MAX];
    } tzs[HS_TOKEN_CACHE_MAX];
    size_t ntzs;
};

/* One call: the thread's I/O, the client and the event's portal (all borrowed). */
struct hubspot_call {
    const struct ioctx *io;
    struct hubspot_api *api;
    const struct hubspot_ctx *hc;
};

/* One request of a call; all borrowed. */
struct hubspot_req {
    const char *endpoint; /* metrics name: "get_object", ... */
    enum http_method method;
    const char *url;
    const char *body; /* JSON, or NULL */
    size_t body_len;
};

/* Send rq for c's portal (token, rate limiter, exchange, hooks, rate-limit feedback) and
 * leave a 2xx answer in resp (initialised by the caller, who releases it): 0, or -1 with
 * *err classified as hubspot.h's table says (source not yet named: the public call
 * tags it). */
int hubspot_exchange(const struct hubspot_call *c, const struct hubspot_req *rq,
                     struct http_response *resp, struct api_error *err);

/* ---- tokens (hubspot_exchange.c's cache, hubspot_refresh.c's refresh) ---------------- */

/* Caches pt->token ("": none of its own) as portal's, refreshed from refresh_at_ms on
 * when pt->oauth (0: the expiry less the effective margin); takes api->mu. */
void hubspot_cache_put(struct hubspot_api *api, int64_t portal,
                       const struct hubspot_portal_token *pt, int64_t refresh_at_ms);

/* When fewer than this remain of pt's access token, refresh it: refresh_margin_ms, but
 * at most half the token's lifetime (updated_at to expiry), so short-lived tokens
 * (tests) are not refreshed on every call. */
int64_t hubspot_refresh_margin(const struct hubspot_api *api, const struct hubspot_portal_token *pt);

/* The portal's token after stale (the token the caller holds: near its expiry, or
 * refused with a 401) was replaced: by another thread or replica (the cache, then Redis,
 * show a different token), else by a refresh at HubSpot's token endpoint that this call
 * leads: one per portal in this process (the others wait on refresh_cv) and across
 * replicas (the Redis lock <prefix>lock:{<portal>}:hsoauth; the others poll the token).
 * 0 with the token in tok (toksz > HUBSPOT_MAX_TOKEN; "" when the portal holds no token
 * of its own any more) and *expires_at_ms (0: not an install's token any more), or -1
 * with *err: API_AUTH HUBSPOT_AUTH when HubSpot refused the refresh (400/401: the app
 * was uninstalled or its access revoked) or the app's credentials are not configured;
 * API_TRANSIENT / API_THROTTLED for a failure worth retrying (token endpoint 5xx, 429,
 * transport, Redis, waiting too long for another replica). A proactive refresh that
 * fails transiently while stale still has over a second left returns stale. */
int hubspot_refresh(const struct hubspot_call *c, const char *stale, int64_t stale_expires_at_ms,
                    char *tok, size_t toksz, int64_t *expires_at_ms, struct api_error *err);

/* A 2xx answer's body as a tape (jtape.h: two allocations whatever the answer's size,
 * where a json-c tree costs one per value). 0 with *t (zeroed by the caller, released by
 * the caller), or -1 with *err (API_TRANSIENT: not a JSON object) and *t released. */
int hubspot_parse_answer(const struct http_response *resp, const char *endpoint, struct jtape *t,
                         struct api_error *err);

/* A 2xx answer that does not say what it should: API_TRANSIENT naming what. */
void hubspot_bad_answer(struct api_error *err, const char *endpoint, const char *what);

/* ---- the results' string pools and properties (hubspot.c; the batch reads use them) ---- */

/* Frees a pool's blocks (NULL-safe). */
void hubspot_strpool_free(struct hubspot_strpool *b);
/* Copies properties.<name> of the tape's object props into *out, in *pool (NULL when
 * absent, null or ""). 0, or -1 with *err on a non-string or oversized value (API
 * errors naming endpoint) or out of memory. */
int hubspot_copy_prop(const struct jtape *t, size_t props, const char *name,
                      struct hubspot_strpool **pool, char **out, const char *endpoint,
                      struct api_error *err);

#endif
