/* hubspot_internal.h - private to the HubSpot client's files (hubspot.c,
 * hubspot_account.c, hubspot_callbacks.c, hubspot_exchange.c): the client object and the
 * one-request layer the calls are built on.
 *
 * Owns nothing of its own: struct hubspot_api is defined here so those files see its
 * members (hubspot_exchange.c creates, frees and guards it; the others read base_url).
 * No other file may include it: the rest of the program sees only worker/hubspot.h.
 *
 * Thread-safety: as hubspot.h says; the token cache is guarded by mu, everything else
 * in struct hubspot_api is immutable after hubspot_api_new_opts().
 */
#ifndef HSQB_HUBSPOT_INTERNAL_H
#define HSQB_HUBSPOT_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "common/http.h"
#include "common/jtape.h"
#include "worker/hubspot.h"

#define HS_TOKEN_CACHE_MAX 256 /* portals cached at once */

struct hubspot_token_entry {
    int64_t portal;
    int64_t fetched_ms;
    char *token; /* NULL: no token of its own (use the default); owned, wiped on free */
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

/* A 2xx answer's body as a tape (jtape.h: two allocations whatever the answer's size,
 * where a json-c tree costs one per value). 0 with *t (zeroed by the caller, released by
 * the caller), or -1 with *err (API_TRANSIENT: not a JSON object) and *t released. */
int hubspot_parse_answer(const struct http_response *resp, const char *endpoint, struct jtape *t,
                         struct api_error *err);

/* A 2xx answer that does not say what it should: API_TRANSIENT naming what. */
void hubspot_bad_answer(struct api_error *err, const char *endpoint, const char *what);

#endif
