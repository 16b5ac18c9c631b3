/* hubspot_refresh.c - refreshing an OAuth-installed portal's access token (see
 * hubspot_internal.h, hubspot_refresh()), one refresh per portal across every replica,
 * as worker/oauth.c does for QuickBooks realms:
 *
 *   cache shows a token other than stale, still valid ------------------------> token
 *   one thread per portal in this process leads (struct hubspot_flight); the others
 *   sleep on refresh_cv and take the leader's token or share its failure   [follow()]
 *   leader: Redis holds another token, or no install any more ------------> that token
 *           else redis_lock(<prefix>lock:{<portal>}:hsoauth)
 *             held:  re-read (the previous holder may just have refreshed), else POST
 *                    the token endpoint (hubspot_oauth_token, grant refresh_token) and
 *                    store with hubspot_oauth_refreshed(), a compare-and-set, before
 *                    unlocking                                            [refresh()]
 *             busy:  poll the token until it changes or the lock frees, bounded
 *                                                                             [lead()]
 *
 * HubSpot does not rotate refresh tokens, so a lapsed lock costs at most a second
 * refresh, never a dead token; the compare-and-set is what keeps a private-app token or
 * a new install stored meanwhile. A proactive refresh that fails transiently while the
 * held token has more than a second left goes on with it and tries again a second later.
 */
#include "worker/hubspot_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"

#define HS_REFRESH_POLL_MS  50   /* between two looks at another replica's refresh */
#define HS_REFRESH_RETRY_MS 1000 /* a failed proactive refresh is tried again after this */
#define HS_REFRESH_ENDPOINT "oauth_refresh"

/* ---- failures -------------------------------------------------------------------------- */

static void refused(struct api_error *err, int64_t portal, const struct hubspot_token_reply *r)
{
    if (strncmp(r->error, "BAD_CLIENT", 10) == 0 || strcmp(r->error, "invalid_client") == 0)
        api_error_set(err, API_AUTH, HSQB_ERR_HUBSPOT_AUTH, (int)r->status,
                      "hubspot: refreshing portal %" PRId64 "'s access token: HubSpot refused "
                      "this worker's app credentials (%.32s); check hubspot.oauth.client_id and "
                      "hubspot.oauth.client_secret",
                      portal, r->error);
    else
        api_error_set(err, API_AUTH, HSQB_ERR_HUBSPOT_AUTH, (int)r->status,
                      "hubspot: HubSpot refused to refresh portal %" PRId64 "'s access token "
                      "(HTTP %ld %.32s): the app was uninstalled or its access revoked; install "
                      "it again (GET /hubspot/install) or store a private-app token with "
                      "`hsqb-worker credentials hubspot`",
                      portal, r->status, r->error[0] ? r->error : "refused");
}

static void down(struct api_error *err, int64_t portal, const struct hubspot_token_reply *r)
{
    if (r->he != HTTP_OK)
        api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 0,
                      "hubspot: refreshing portal %" PRId64 "'s access token: %s: %s", portal,
                      http_error_str(r->he), r->detail);
    else
        api_error_set(err, r->status == 429 ? API_THROTTLED : API_TRANSIENT,
                      HSQB_ERR_RETRIES_EXHAUSTED, (int)r->status,
                      "hubspot: refreshing portal %" PRId64 "'s access token: token endpoint "
                      "answered %ld%s",
                      portal, r->status, r->status == 200 ? " without usable tokens" : "");
    err->retry_after_ms = r->retry_after_ms;
}

static void redis_failed(struct api_error *err, const char *what, const char *e)
{
    api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 0, "hubspot: %s: %s", what, e);
}

/* ---- the Redis path (one thread per portal per process) ----------------------------- */

/* 1 when pt is what the caller should use instead of stale: another token (another
 * thread or replica refreshed, or a private-app token was stored), or no install any
 * more (whatever the portal holds now, maybe nothing). */
static int replaced(const struct hubspot_portal_token *pt, const char *stale)
{
    return !pt->oauth || (pt->token[0] && strcmp(pt->token, stale) != 0 &&
                          pt->expires_at_ms > clock_wall_ms() + 1000);
}

static int read_token(const struct hubspot_call *c, struct hubspot_portal_token *pt,
                      struct api_error *err)
{
    char e[256];
    int rc = hubspot_oauth_token_get(c->io->redis, c->hc->portal_id, pt, e, sizeof e);

    if (rc < 0)
        redis_failed(err, "reading the portal's token from redis", e);
    else if (rc == 1)
        api_error_set(err, API_AUTH, HSQB_ERR_HUBSPOT_AUTH, 0,
                      "hubspot: the token stored for portal %" PRId64 " is unusable",
                      c->hc->portal_id);
    return rc == 0 ? 0 : -1;
}

/* With the lock held and pt the install as read under it: refresh at HubSpot and store
 * the result. 0 with *pt the token to use (ours, or what was stored meanwhile), or -1. */
static int refresh(const struct hubspot_call *c, struct hubspot_portal_token *pt,
                   struct api_error *err)
{
    struct hubspot_api *api = c->api;
    int64_t portal = c->hc->portal_id, t0 = clock_mono_ms(), exp;
    char rt[HUBSPOT_OAUTH_REFRESH_MAX + 1], e[256];
    const struct http_param grant[] = {{"grant_type", "refresh_token"}, {"refresh_token", rt}};
    struct hubspot_token_reply *r = NULL;
    int rc = -1, got;

    if (!api->app.client_id[0] || !api->app.client_secret[0]) {
        api_error_set(err, API_AUTH, HSQB_ERR_HUBSPOT_AUTH, 0,
                      "hubspot: portal %" PRId64 "'s access token expires and cannot be "
                      "refreshed: hubspot.oauth.client_id and hubspot.oauth.client_secret are "
                      "not set",
                      portal);
        return -1;
    }
    if ((got = hubspot_oauth_refresh_token_get(c->io->redis, portal, rt, sizeof rt, e,
                                               sizeof e)) <= 0) {
        if (got < 0)
            redis_failed(err, "reading the install's refresh token", e);
        else
            rc = read_token(c, pt, err); /* uninstalled meanwhile: whatever is there now */
        goto out;
    }
    if (!(r = malloc(sizeof *r))) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 0, "hubspot: out of memory");
        goto out;
    }
    switch (hubspot_oauth_token(c->io->http, &api->app, grant, 2, r)) {
    case HUBSPOT_TOKEN_OK:
        break;
    case HUBSPOT_TOKEN_REFUSED:
        refused(err, portal, r);
        log_warn("hubspot: HubSpot refused the refresh of portal %" PRId64 "'s access token "
                 "(HTTP %ld %.32s)",
                 portal, r->status, r->error);
        goto hook;
    default:
        down(err, portal, r);
        goto hook;
    }
    exp = clock_wall_ms() + r->expires_in_s * 1000;
    got = hubspot_oauth_refreshed(c->io->redis, portal, pt, rt, r, exp, e, sizeof e);
    if (got == 1) {
        snprintf(pt->token, sizeof pt->token, "%s", r->access);
        pt->expires_at_ms = exp;
        pt->updated_at_ms = clock_wall_ms();
        rc = 0;
    } else if (got == 0) {
        log_info("hubspot: portal %" PRId64 "'s token changed during its refresh; keeping the "
                 "stored one",
                 portal);
        rc = read_token(c, pt, err);
    } else {
        redis_failed(err, "storing the refreshed token", e);
    }
hook:
    if (api->hooks.on_api_call)
        api->hooks.on_api_call(api->hooks.opaque, "hubspot", HS_REFRESH_ENDPOINT, (int)r->status,
                               clock_mono_ms() - t0);
out:
    explicit_bzero(rt, sizeof rt);
    if (r) {
        explicit_bzero(r, sizeof *r);
        free(r);
    }
    return rc;
}

/* Replace stale through Redis (the lock, or another replica's refresh): 0 with *pt the
 * token to use, or -1 with *err. */
static int lead(const struct hubspot_call *c, const char *stale, struct hubspot_portal_token *pt,
                struct api_error *err)
{
    struct redis_conn *redis = c->io->redis;
    struct redis_lease lease;
    char tag[24], e[256];
    int64_t deadline = clock_mono_ms() + c->api->refresh_wait_ms;
    int rc = -1;

    if (read_token(c, pt, err) < 0)
        return -1;
    if (replaced(pt, stale))
        return 0;
    snprintf(tag, sizeof tag, "%" PRId64, c->hc->portal_id);
    if (redis_lock_prepare(redis, &lease, tag, "hsoauth", e, sizeof e) < 0) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "hubspot: %s", e);
        return -1;
    }
    for (;;) {
        enum redis_lock_status st = redis_lock(redis, &lease, c->api->refresh_lock_ms, e, sizeof e);

        if (st == REDIS_LOCK_ERROR) {
            redis_failed(err, "taking the refresh lock", e);
            return -1;
        }
        if (st == REDIS_LOCKED) {
            if ((rc = read_token(c, pt, err)) == 0 && !replaced(pt, stale))
                rc = refresh(c, pt, err);
            if (redis_lease_release(redis, &lease, e, sizeof e) == REDIS_OWNER_ERROR)
                log_warn("hubspot: releasing portal %s's refresh lock: %s", tag, e);
            return rc;
        }
        /* Busy: another replica refreshes. Wait for its token, or for the lock. */
        clock_sleep_ms(HS_REFRESH_POLL_MS);
        if (read_token(c, pt, err) < 0)
            return -1;
        if (replaced(pt, stale))
            return 0;
        if (clock_mono_ms() > deadline) {
            api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 0,
                          "hubspot: timed out waiting for another replica to refresh portal %s's "
                          "access token",
                          tag);
            return -1;
        }
    }
}

/* ---- one thread per portal in this process (api->mu held) ---------------------------- */

static struct hubspot_flight *flight_find(struct hubspot_api *api, int64_t portal)
{
    for (size_t i = 0; i < HS_FLIGHTS_MAX; i++)
        if (api->flights[i].portal == portal)
            return &api->flights[i];
    return NULL;
}

/* portal's flight, taking a free one (no lead, no waiter) when it has none; NULL when all
 * are in use: the caller leads without one (the Redis lock still serialises). */
static struct hubspot_flight *flight_get(struct hubspot_api *api, int64_t portal)
{
    struct hubspot_flight *f = flight_find(api, portal);

    for (size_t i = 0; !f && i < HS_FLIGHTS_MAX; i++)
        if (!api->flights[i].busy && !api->flights[i].waiters) {
            f = &api->flights[i];
            memset(f, 0, sizeof *f);
            f->portal = portal;
        }
    return f;
}

/* The cache's token for portal into tok when it is not stale (any: stale will do) and
 * not expiring within a second: 1, else 0. */
static int cached_other(struct hubspot_api *api, int64_t portal, const char *stale, int any,
                        char *tok, size_t toksz, int64_t *exp)
{
    int64_t now_mono = clock_mono_ms(), now = clock_wall_ms();

    for (size_t i = 0; i < api->ncache; i++) {
        const struct hubspot_token_entry *e = &api->cache[i];

        if (e->portal != portal || !e->token || now_mono - e->fetched_ms >= HUBSPOT_TOKEN_CACHE_MS ||
            (!any && strcmp(e->token, stale) == 0) || (e->expires_at_ms && e->expires_at_ms <= now + 1000))
            continue;
        snprintf(tok, toksz, "%s", e->token);
        *exp = e->expires_at_ms;
        return 1;
    }
    return 0;
}

/* Wait (mu held) while another thread leads portal's refresh: 1 when its token is in tok,
 * -1 with its failure in *err, 0 when this thread must lead (*f the flight, maybe NULL). */
static int follow(struct hubspot_api *api, int64_t portal, const char *stale, char *tok,
                  size_t toksz, int64_t *exp, struct hubspot_flight **f, struct api_error *err)
{
    int64_t deadline = clock_mono_ms() + api->refresh_wait_ms + api->refresh_lock_ms;
    int waited = 0;
    unsigned gen = 0;

    for (;;) {
        struct timespec ts;

        int ended;

        *f = flight_get(api, portal);
        ended = waited && *f && (*f)->gen != gen;
        /* the lead we waited for ended well: its token, even the held one kept after a
         * transient failure (it is tried again shortly, by one thread) */
        if (cached_other(api, portal, stale, ended && !(*f)->failed, tok, toksz, exp))
            return 1;
        if (!*f || !(*f)->busy) {
            if (ended && (*f)->failed) {
                *err = (*f)->err; /* the lead we waited for failed: share its verdict */
                return -1;
            }
            return 0;
        }
        if (clock_mono_ms() >= deadline) {
            api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 0,
                          "hubspot: timed out waiting for the refresh of portal %" PRId64
                          "'s access token",
                          portal);
            return -1;
        }
        if (!waited) {
            waited = 1;
            gen = (*f)->gen;
        }
        (*f)->waiters++;
        clock_abstime(CLOCK_REALTIME, 100, &ts);
        pthread_cond_timedwait(&api->refresh_cv, &api->mu, &ts);
        (*f)->waiters--; /* not reused while it had waiters */
    }
}

int hubspot_refresh(const struct hubspot_call *c, const char *stale, int64_t stale_expires_at_ms,
                    char *tok, size_t toksz, int64_t *expires_at_ms, struct api_error *err)
{
    struct hubspot_api *api = c->api;
    int64_t portal = c->hc->portal_id, exp = 0, retry_at = 0;
    struct hubspot_portal_token *pt = NULL;
    struct hubspot_flight *f = NULL;
    char held[HUBSPOT_MAX_TOKEN + 1];
    int rc;

    snprintf(held, sizeof held, "%s", stale);
    pthread_mutex_lock(&api->mu);
    rc = follow(api, portal, held, tok, toksz, &exp, &f, err);
    if (rc == 0 && f)
        f->busy = 1;
    pthread_mutex_unlock(&api->mu);
    if (rc != 0)
        goto out;

    if (!(pt = malloc(sizeof *pt))) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 0, "hubspot: out of memory");
        rc = -1;
    } else {
        rc = lead(c, held, pt, err);
    }
    if (rc < 0 && api_error_retryable(err) && pt && stale_expires_at_ms > clock_wall_ms() + 1000) {
        /* The held token still works: go on with it, try the refresh again shortly. */
        log_warn("hubspot: refreshing portal %" PRId64 "'s access token failed (%s); using the "
                 "current one meanwhile",
                 portal, err->message);
        memset(pt, 0, sizeof *pt);
        snprintf(pt->token, sizeof pt->token, "%s", held);
        pt->oauth = 1;
        pt->expires_at_ms = stale_expires_at_ms;
        retry_at = clock_wall_ms() + HS_REFRESH_RETRY_MS;
        api_error_clear(err);
        rc = 0;
    }
    if (rc == 0) {
        hubspot_cache_put(api, portal, pt, retry_at);
        snprintf(tok, toksz, "%s", pt->token);
        exp = pt->oauth ? pt->expires_at_ms : 0;
    }
    pthread_mutex_lock(&api->mu);
    if (f) {
        f->busy = 0;
        f->gen++;
        f->failed = rc < 0;
        if (rc < 0)
            f->err = *err;
    }
    pthread_cond_broadcast(&api->refresh_cv);
    pthread_mutex_unlock(&api->mu);
out:
    if (rc > 0)
        rc = 0;
    if (rc == 0 && expires_at_ms)
        *expires_at_ms = exp;
    if (pt) {
        explicit_bzero(pt, sizeof *pt);
        free(pt);
    }
    explicit_bzero(held, sizeof held);
    return rc;
}
