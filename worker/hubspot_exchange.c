/* hubspot_exchange.c - one HubSpot request (see hubspot_internal.h): the client's
 * lifecycle, per-portal tokens, the rate limiter around each exchange, and the
 * classification of every failure into struct api_error. What the answers mean is
 * hubspot.c's.
 *
 * Every request: token (the in-process cache, else Redis, else the default when
 * hubspot.token_portals gives it to the portal, else PORTAL_NOT_CONNECTED) -> rate
 * limiter (ratelimit_acquire) -> one HTTP exchange -> hooks ->
 * rate-limit header feedback (a response that spent the window's last request holds the
 * portal back for the average spacing) -> 2xx, or classify(). A 429 penalizes the whole
 * portal and drops what was admitted ahead; a 401 drops the portal's cached token,
 * re-reads it from Redis and, when another replica has stored a new one meanwhile, sends
 * the request once more with it: only a 401 with the token Redis holds is HUBSPOT_AUTH.
 *
 * An OAuth install's token carries its expiry into the cache (read with the token, one
 * command), so "refresh now?" is a clock comparison: within the margin, or after a 401
 * with it, hubspot_refresh() (hubspot_refresh.c) replaces it before the request goes out.
 */
#include "worker/hubspot_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"

#define HS_API           "hubspot"
#define HS_JSON_DEPTH    64
#define HS_DAY_MS        86400000LL
#define HS_LOCKED_MIN_MS 2000 /* HubSpot's 423 locks last 2 seconds */

/* ---- lifecycle ------------------------------------------------------------------- */

/* hubspot.token_portals into api: "*" serves any portal, else decimal ids. 0, or -1
 * with errstr naming the bad item. */
static int parse_token_portals(struct hubspot_api *api, const char *const *items, char *errstr,
                               size_t errsz)
{
    size_t n = 0;

    for (const char *const *it = items; it && *it; it++)
        n++;
    if (n && !(api->token_portals = calloc(n, sizeof *api->token_portals))) {
        snprintf(errstr, errsz, "hubspot: out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *v = items[i];
        char *end;
        long long id;

        if (strcmp(v, "*") == 0) {
            api->token_all = 1;
            continue;
        }
        errno = 0;
        id = strtoll(v, &end, 10);
        if (!*v || *end || errno || id <= 0 || strspn(v, "0123456789") != strlen(v)) {
            snprintf(errstr, errsz,
                     "hubspot: hubspot.token_portals: \"%.40s\" is not a portal id or *", v);
            return -1;
        }
        api->token_portals[api->ntoken_portals++] = id;
    }
    return 0;
}

struct hubspot_api *hubspot_api_new_opts(const struct hubspot_opts *o, struct ratelimit *rl,
                                         const struct hubspot_hooks *hooks, char *errstr,
                                         size_t errsz)
{
    struct hubspot_api *api;
    size_t n;

    if (!o || !o->base_url ||
        (strncmp(o->base_url, "http://", 7) != 0 && strncmp(o->base_url, "https://", 8) != 0)) {
        snprintf(errstr, errsz, "hubspot: base URL must start with http:// or https://");
        return NULL;
    }
    if (!rl) {
        snprintf(errstr, errsz, "hubspot: a rate limiter is required");
        return NULL;
    }
    if (o->token && strlen(o->token) > HUBSPOT_MAX_TOKEN) {
        snprintf(errstr, errsz, "hubspot: hubspot.token longer than %d bytes", HUBSPOT_MAX_TOKEN);
        return NULL;
    }
    api = calloc(1, sizeof *api);
    if (!api)
        goto oom;
    api->base_url = strdup(o->base_url);
    if (!api->base_url)
        goto oom;
    n = strlen(api->base_url);
    while (n > 0 && api->base_url[n - 1] == '/')
        api->base_url[--n] = '\0';
    if (o->token && o->token[0] && !(api->token = strdup(o->token)))
        goto oom;
    if (parse_token_portals(api, o->token_portals, errstr, errsz) < 0)
        goto fail;
    api->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 0;
    api->app.base_url = api->base_url;
    if (!(api->app.client_id = strdup(o->oauth_client_id ? o->oauth_client_id : "")) ||
        !(api->app.client_secret = strdup(o->oauth_client_secret ? o->oauth_client_secret : "")))
        goto oom;
    api->refresh_margin_ms = o->refresh_margin_ms > 0 ? o->refresh_margin_ms : 0;
    /* the lock outlives one token call; a waiter gives up a little after it lapses */
    api->refresh_lock_ms = (api->timeout_ms > 0 ? api->timeout_ms : 30000) + 5000;
    api->refresh_wait_ms = api->refresh_lock_ms + 2000;
    api->rl = rl;
    if (hooks)
        api->hooks = *hooks;
    pthread_mutex_init(&api->mu, NULL);
    pthread_cond_init(&api->refresh_cv, NULL);
    if (api->app.client_secret[0])
        log_register_secret(api->app.client_secret);
    return api;
oom:
    snprintf(errstr, errsz, "hubspot: out of memory");
fail:
    if (api) {
        if (api->token) {
            explicit_bzero(api->token, strlen(api->token));
            free(api->token);
        }
        free(api->token_portals);
        free(api->base_url);
        free((char *)api->app.client_id);
        free((char *)api->app.client_secret);
        free(api);
    }
    return NULL;
}

struct hubspot_api *hubspot_api_new(const struct config *cfg, struct ratelimit *rl,
                                    const struct hubspot_hooks *hooks, char *errstr, size_t errsz)
{
    struct hubspot_opts o = {
        .base_url = config_get_str(cfg, "hubspot.base_url"),
        .token = config_get_str(cfg, "hubspot.token"),
        .token_portals = config_get_list(cfg, "hubspot.token_portals", NULL),
        .oauth_client_id = config_get_str(cfg, "hubspot.oauth.client_id"),
        .oauth_client_secret = config_get_str(cfg, "hubspot.oauth.client_secret"),
        .refresh_margin_ms = config_get_ms(cfg, "hubspot.oauth.refresh_margin"),
    };
    struct hubspot_api *api = hubspot_api_new_opts(&o, rl, hooks, errstr, errsz);

    if (api) { /* requests time out after http.timeout (the http_client's default) */
        api->refresh_lock_ms = config_get_ms(cfg, "http.timeout") + 5000;
        api->refresh_wait_ms = api->refresh_lock_ms + 2000;
    }
    return api;
}

void hubspot_api_free(struct hubspot_api *api)
{
    if (!api)
        return;
    for (size_t i = 0; i < api->ncache; i++) {
        if (api->cache[i].token) {
            explicit_bzero(api->cache[i].token, strlen(api->cache[i].token));
            free(api->cache[i].token);
        }
    }
    if (api->token) {
        explicit_bzero(api->token, strlen(api->token));
        free(api->token);
    }
    if (api->app.client_secret) {
        explicit_bzero((char *)api->app.client_secret, strlen(api->app.client_secret));
        free((char *)api->app.client_secret);
    }
    free((char *)api->app.client_id);
    pthread_cond_destroy(&api->refresh_cv);
    pthread_mutex_destroy(&api->mu);
    free(api->token_portals);
    free(api->base_url);
    free(api);
}

int hubspot_token_key(char *dst, size_t dstsz, const char *prefix, int64_t portal_id)
{
    int n = snprintf(dst, dstsz, "%shstoken:{%" PRId64 "}", prefix ? prefix : "", portal_id);
    return n < 0 || (size_t)n >= dstsz ? -1 : 0;
}

/* ---- tokens ---------------------------------------------------------------------- */

void hubspot_cache_put(struct hubspot_api *api, int64_t portal,
                       const struct hubspot_portal_token *pt, int64_t refresh_at_ms)
{
    struct hubspot_token_entry *e = NULL;
    char *copy = pt->token[0] ? strdup(pt->token) : NULL;

    if (pt->token[0] && !copy)
        return; /* not cached; read again next time */
    if (pt->oauth && !refresh_at_ms)
        refresh_at_ms = pt->expires_at_ms - hubspot_refresh_margin(api, pt);
    pthread_mutex_lock(&api->mu);
    for (size_t i = 0; i < api->ncache; i++)
        if (api->cache[i].portal == portal)
            e = &api->cache[i];
    if (!e && api->ncache < HS_TOKEN_CACHE_MAX)
        e = &api->cache[api->ncache++];
    if (!e) { /* full: replace the oldest */
        e = &api->cache[0];
        for (size_t i = 1; i < api->ncache; i++)
            if (api->cache[i].fetched_ms < e->fetched_ms)
                e = &api->cache[i];
    }
    if (e->token) {
        explicit_bzero(e->token, strlen(e->token));
        free(e->token);
    }
    e->portal = portal;
    e->token = copy;
    e->fetched_ms = clock_mono_ms();
    e->refresh_at_ms = pt->oauth && copy ? refresh_at_ms : 0;
    e->expires_at_ms = pt->oauth && copy ? pt->expires_at_ms : 0;
    pthread_mutex_unlock(&api->mu);
}

int64_t hubspot_refresh_margin(const struct hubspot_api *api, const struct hubspot_portal_token *pt)
{
    int64_t m = api->refresh_margin_ms, life = pt->expires_at_ms - pt->updated_at_ms;

    if (pt->updated_at_ms > 0 && life > 0 && m > life / 2)
        m = life / 2;
    return m;
}

static void cache_drop(struct hubspot_api *api, int64_t portal)
{
    pthread_mutex_lock(&api->mu);
    for (size_t i = 0; i < api->ncache; i++)
        if (api->cache[i].portal == portal)
            api->cache[i].fetched_ms = INT64_MIN / 2; /* stale: re-read next time */
    pthread_mutex_unlock(&api->mu);
}

int hubspot_default_serves(const struct hubspot_api *api, int64_t portal)
{
    if (!api || !api->token)
        return 0;
    if (api->token_all)
        return 1;
    for (size_t i = 0; i < api->ntoken_portals; i++)
        if (api->token_portals[i] == portal)
            return 1;
    return 0;
}

/* The portal's fresh cache entry: 1 with its own token copied into tok (own = 1), or
 * with the default token when it has none and the default serves it (own = 0), or with
 * "" (neither); 0 when there is no fresh entry (read Redis). tok, own and ex may be NULL;
 * *ex gets the entry's refresh_at_ms and expires_at_ms (0, 0: not an install's). */
static int cache_get(struct hubspot_api *api, int64_t portal, char *tok, size_t toksz, int *own,
                     int64_t ex[2])
{
    int found = 0;
    int64_t now = clock_mono_ms();

    pthread_mutex_lock(&api->mu);
    for (size_t i = 0; i < api->ncache; i++) {
        struct hubspot_token_entry *e = &api->cache[i];
        if (e->portal != portal || now - e->fetched_ms >= HUBSPOT_TOKEN_CACHE_MS)
            continue;
        if (tok)
            snprintf(tok, toksz, "%s",
                     e->token                              ? e->token
                     : hubspot_default_serves(api, portal) ? api->token
                                                           : "");
        if (own)
            *own = e->token != NULL;
        if (ex) {
            ex[0] = e->refresh_at_ms;
            ex[1] = e->expires_at_ms;
        }
        found = 1;
    }
    pthread_mutex_unlock(&api->mu);
    return found;
}

/* Read the portal's own token (and an install's expiry) from Redis in one command and
 * cache what was found: 1 with it in tok and ex as cache_get() says, 0 when it has none
 * (tok ""), -1 with *err. */
static int fetch_token(const struct ioctx *io, struct hubspot_api *api, int64_t portal, char *tok,
                       size_t toksz, int64_t ex[2], struct api_error *err)
{
    struct hubspot_portal_token *pt = malloc(sizeof *pt);
    char rerr[256];
    int rc;

    if (!pt) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 0, "hubspot: out of memory");
        return -1;
    }
    rc = hubspot_oauth_token_get(io->redis, portal, pt, rerr, sizeof rerr);
    if (rc < 0) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 0,
                      "hubspot: reading the portal's token from redis: %s", rerr);
    } else if (rc == 1) {
        api_error_set(err, API_AUTH, HSQB_ERR_HUBSPOT_AUTH, 0,
                      "hubspot: the token stored for portal %" PRId64 " is unusable", portal);
        rc = -1;
    } else {
        hubspot_cache_put(api, portal, pt, 0);
        snprintf(tok, toksz, "%s", pt->token);
        rc = pt->token[0] != 0;
        cache_get(api, portal, NULL, 0, NULL, ex);
        if (!rc)
            ex[0] = ex[1] = 0;
    }
    explicit_bzero(pt, sizeof *pt);
    free(pt);
    return rc;
}

/* The token for c's portal into tok, refreshed first when it is an install's within the
 * margin; *expires_at_ms (may be NULL) gets its expiry, 0 when not an install's. */
static int get_token(const struct hubspot_call *c, char *tok, size_t toksz, int64_t *expires_at_ms,
                     struct api_error *err)
{
    struct hubspot_api *api = c->api;
    int64_t portal = c->hc->portal_id, ex[2] = {0, 0};
    int rc;

    if (!cache_get(api, portal, tok, toksz, NULL, ex)) {
        if ((rc = fetch_token(c->io, api, portal, tok, toksz, ex, err)) < 0)
            return -1;
        if (rc == 0 && hubspot_default_serves(api, portal))
            snprintf(tok, toksz, "%s", api->token);
    }
    if (ex[1] > 0 && clock_wall_ms() >= ex[0] &&
        hubspot_refresh(c, tok, ex[1], tok, toksz, &ex[1], err) < 0)
        return -1;
    if (expires_at_ms)
        *expires_at_ms = ex[1];
    if (!tok[0]) {
        /* API_AUTH as a refused token is: permanent for an event, but the callback
         * completer holds the portal's completions until it is connected */
        api_error_set(err, API_AUTH, HSQB_ERR_PORTAL_NOT_CONNECTED, 0,
                      "hubspot: portal %" PRId64
                      " has no token of its own, and hubspot.token_portals does not give it "
                      "the default hubspot.token",
                      portal);
        return -1;
    }
    return 0;
}

int hubspot_portal_connected(const struct ioctx *io, struct hubspot_api *api, int64_t portal,
                             struct api_error *err)
{
    char tok[HUBSPOT_MAX_TOKEN + 1];
    int64_t ex[2];
    int own = 0, rc;

    if (hubspot_default_serves(api, portal) ||
        (cache_get(api, portal, NULL, 0, &own, NULL) && own))
        return 1;
    rc = fetch_token(io, api, portal, tok, sizeof tok, ex, err);
    explicit_bzero(tok, sizeof tok);
    if (rc < 0 && err->cls == API_AUTH) /* a token is stored, a bad one: the call says so */
        return 1;
    return api_error_tag(err, API_SOURCE_HUBSPOT, rc);
}

/* ---- one exchange ------------------------------------------------------------------ */

static int64_t header_int(const struct http_response *resp, const char *name, int64_t dflt)
{
    const char *v = http_response_header(resp, name);
    char *end;
    long long n;

    if (!v || !*v)
        return dflt;
    n = strtoll(v, &end, 10);
    return *end == '\0' && n >= 0 ? n : dflt;
}

static void penalize(const struct hubspot_call *c, int64_t ms)
{
    char tenant[24], perr[256];

    snprintf(tenant, sizeof tenant, "%" PRId64, c->hc->portal_id);
    if (ms > 0 &&
        ratelimit_penalize(c->api->rl, c->io->redis, RL_HUBSPOT, tenant, ms, perr, sizeof perr) < 0)
        log_warn("hubspot: could not back off portal %s: %s", tenant, perr);
}

/* Fill err from a non-2xx answer (the table in hubspot.h). */
static void classify(const struct hubspot_call *c, const char *endpoint,
                     const struct http_response *resp, struct api_error *err)
{
    struct jtape t = {0};
    const char *msg = NULL, *category = NULL, *policy = NULL, *cid = NULL;
    char perr[128];
    int status = (int)resp->status;
    int64_t ra = resp->retry_after_ms >= 0 ? resp->retry_after_ms : 0;

    if (jtape_parse(&t, resp->body, resp->body_len, HS_JSON_DEPTH, perr, sizeof perr) == 0) {
        (void)jtape_get_str(&t, JTAPE_ROOT, "message", &msg);
        (void)jtape_get_str(&t, JTAPE_ROOT, "category", &category);
        (void)jtape_get_str(&t, JTAPE_ROOT, "policyName", &policy);
        (void)jtape_get_str(&t, JTAPE_ROOT, "correlationId", &cid);
    }
    if (!category && policy)
        category = policy;
#define HS_SET(cls, code)                                                                          \
    api_error_set(err, cls, code, status, "hubspot %s: HTTP %d %s: %.200s", endpoint, status,      \
                  category ? category : "", msg ? msg : "(no message)")
    if (status == 429) {
        if (policy && strcmp(policy, "DAILY") == 0) {
            int64_t now = (int64_t)time(NULL) * 1000;
            ra = HS_DAY_MS - now % HS_DAY_MS;
        } else if (ra <= 0) {
            if (msg && strstr(msg, "secondly limit") && !strstr(msg, "ten_secondly"))
                ra = 1000;
            else
                ra = header_int(resp, "X-HubSpot-RateLimit-Interval-Milliseconds", 10000);
        }
        HS_SET(API_THROTTLED, HSQB_ERR_RETRIES_EXHAUSTED);
        penalize(c, ra);
    } else if (status == 401 || status == 403) {
        if (status == 401)
            cache_drop(c->api, c->hc->portal_id);
        HS_SET(API_AUTH, HSQB_ERR_HUBSPOT_AUTH);
    } else if (status == 404) {
        HS_SET(API_NOT_FOUND, HSQB_ERR_OBJECT_NOT_FOUND);
    } else if (status == 423) {
        if (ra < HS_LOCKED_MIN_MS)
            ra = HS_LOCKED_MIN_MS;
        HS_SET(API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED);
    } else if (status >= 500 || status == 477 || status == 408) {
        HS_SET(API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED);
    } else {
        HS_SET(API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION);
    }
#undef HS_SET
    err->retry_after_ms = ra;
    if (cid)
        snprintf(err->upstream_id, sizeof err->upstream_id, "%s", cid);
    jtape_release(&t);
}

/* One send of rq with token tok: a rate-limiter slot around the exchange. 0 with *resp
 * (any status), or -1 with *err (no slot, transport failure). */
static int send_once(const struct hubspot_call *c, const struct hubspot_req *rq, const char *tok,
                     struct http_response *resp, struct api_error *err)
{
    struct hubspot_api *api = c->api;
    const struct hubspot_ctx *ctx = c->hc;
    const char *endpoint = rq->endpoint;
    char tenant[24], rerr[256];
    struct ratelimit_slot slot;
    struct http_header hdrs[1] = {{"Accept", "application/json"}};
    struct http_request req = {.method = rq->method,
                               .url = rq->url,
                               .headers = hdrs,
                               .nheaders = 1,
                               .body = rq->body,
                               .body_len = rq->body_len,
                               .content_type = rq->body ? "application/json" : NULL,
                               .timeout_ms = api->timeout_ms,
                               .bearer = tok};
    int64_t deadline;
    enum ratelimit_status rs;
    enum http_error he;

    snprintf(tenant, sizeof tenant, "%" PRId64, ctx->portal_id);
    deadline =
        c->io->deadline_ms > 0 ? c->io->deadline_ms : clock_mono_ms() + HUBSPOT_DEFAULT_WAIT_MS;
    rs = ratelimit_acquire(api->rl, c->io->redis,
                           &(struct ratelimit_req){RL_HUBSPOT, tenant, deadline},
                           &slot, rerr, sizeof rerr);
    if (slot.waited_ms > 0 && api->hooks.on_ratelimit_wait)
        api->hooks.on_ratelimit_wait(api->hooks.opaque, HS_API, slot.waited_ms);
    if (rs == RL_ERROR) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 0, "hubspot %s: %s", endpoint,
                      rerr);
        return -1;
    }
    if (rs == RL_TIMEOUT) {
        api_error_set(err, API_THROTTLED, HSQB_ERR_RETRIES_EXHAUSTED, 0, "hubspot %s: %s", endpoint,
                      rerr);
        err->retry_after_ms = slot.retry_after_ms;
        return -1;
    }
    he = http_client_do(c->io->http, &req, resp, rerr, sizeof rerr);
    ratelimit_release(api->rl, c->io->redis, &slot);
    if (api->hooks.on_api_call)
        api->hooks.on_api_call(api->hooks.opaque, HS_API, endpoint, (int)resp->status,
                               resp->total_ms);
    if (he != HTTP_OK) {
        api_error_set(err, he == HTTP_ETOOBIG ? API_PERMANENT : API_TRANSIENT,
                      he == HTTP_ETOOBIG ? HSQB_ERR_HUBSPOT_VALIDATION : HSQB_ERR_RETRIES_EXHAUSTED,
                      0, "hubspot %s: %s: %s", endpoint, http_error_str(he), rerr);
        return -1;
    }
    return 0;
}

int hubspot_exchange(const struct hubspot_call *c, const struct hubspot_req *rq,
                     struct http_response *resp, struct api_error *err)
{
    char tok[HUBSPOT_MAX_TOKEN + 1] = "", fresh[HUBSPOT_MAX_TOKEN + 1] = "";
    int64_t exp = 0;
    int rc = -1, got;

    if (get_token(c, tok, sizeof tok, &exp, err) < 0)
        return -1;
    if (send_once(c, rq, tok, resp, err) < 0)
        goto out;
    if (resp->status == 401) {
        /* Another replica (or `credentials hubspot`) may have stored a new token since
         * this one was cached: re-read it once and resend with it. An install's token is
         * refreshed instead, unless someone did already. Only a 401 with the token Redis
         * holds now (or just refreshed) means the portal's credentials are bad. */
        cache_drop(c->api, c->hc->portal_id);
        got = exp > 0 ? hubspot_refresh(c, tok, 0, fresh, sizeof fresh, NULL, err)
                      : get_token(c, fresh, sizeof fresh, NULL, err);
        if (got < 0 && exp > 0)
            goto out; /* the refresh's verdict: HubSpot refused it, or try again later */
        if (got == 0 && fresh[0] && strcmp(fresh, tok) != 0) {
            http_response_release(resp);
            http_response_init(resp);
            if (send_once(c, rq, fresh, resp, err) < 0)
                goto out;
        }
    }
    /* The answer that spent the window's last request: hold everyone back for the
     * average spacing rather than earn a 429 with the next one. */
    if (resp->status != 429 && header_int(resp, "X-HubSpot-RateLimit-Remaining", -1) == 0) {
        int64_t iv = header_int(resp, "X-HubSpot-RateLimit-Interval-Milliseconds", 10000);
        int64_t max = header_int(resp, "X-HubSpot-RateLimit-Max", 0);
        penalize(c, max > 0 ? iv / max : iv);
    }
    if (resp->status >= 200 && resp->status < 300)
        rc = 0;
    else
        classify(c, rq->endpoint, resp, err);
out:
    explicit_bzero(tok, sizeof tok);
    explicit_bzero(fresh, sizeof fresh);
    return rc;
}

/* ---- parsing helpers ---------------------------------------------------------------- */

int hubspot_parse_answer(const struct http_response *resp, const char *endpoint, struct jtape *t,
                         struct api_error *err)
{
    char perr[160];
    int rc = jtape_parse(t, resp->body, resp->body_len, HS_JSON_DEPTH, perr, sizeof perr);
    int ok = rc == 0;

    if (rc == JTAPE_ETOOMANY) { /* refused like an oversized answer: retrying cannot help */
        api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, (int)resp->status,
                      "hubspot %s: answer refused: %s (http.max_response_bytes / %d)", endpoint,
                      perr, JTAPE_BYTES_PER_VALUE);
        jtape_release(t);
        return -1;
    }
    if (!ok || t->n[JTAPE_ROOT].type != JT_OBJECT) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, (int)resp->status,
                      "hubspot %s: unreadable answer: %s", endpoint,
                      ok ? "not a JSON object" : perr);
        jtape_release(t);
        return -1;
    }
    return 0;
}

void hubspot_bad_answer(struct api_error *err, const char *endpoint, const char *what)
{
    api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 200,
                  "hubspot %s: unexpected answer: %s", endpoint, what);
}
