/* connect.c - the connect flows' object, routing and shared answers (see connect.h).
 *
 * One request, in connect_handle():
 *
 *   route known? --no--> 404 page        method allowed? --no--> 405 page (Allow)
 *   ingress.session_secret set? --no--> 503 "not configured"
 *   handler (connect_qbo.c, connect_hubspot.c): reads its parameters, checks the link
 *   or redeems the state, talks to Redis and the vendor through one borrowed slot
 *   (HTTP client + Redis connection), and answers a page or a redirect
 *   slot back to the pool
 *
 * Why a pool of slots: a libcurl handle and a Redis connection belong to one thread at a
 * time, and the ingress's job threads take turns with these requests; connect flows are
 * rare (a person clicking), so idle slots are kept (at most CONNECT_SLOTS_IDLE_MAX) and
 * made on demand, never waited for.
 *
 * A state's nonce is spent with SET <prefix>connect:state:{<nonce>} 1 NX PX <until its
 * expiry + a minute>: the first redemption wins on every replica, later ones see the key.
 */
#include "worker/connect.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/hash.h"
#include "common/log.h"
#include "worker/connect_internal.h"
#include "worker/metrics.h"
#include "worker/oauth.h"
#include "worker/qbo.h"
#include "worker/ratelimit.h"
#include "worker/settings.h"
#include "worker/tenancy.h"

#define STATE_KEY_SLACK_MS 60000 /* a spent nonce outlives its state by this (clock skew) */

/* ---- lifecycle ------------------------------------------------------------------------ */

static char *dup_setting(const struct config *cfg, const char *key, int *oom)
{
    char *s = strdup(config_get_str(cfg, key));

    *oom |= s == NULL;
    return s;
}

/* A list setting's items joined by spaces (scopes), or NULL when out of memory. */
static char *joined(const struct config *cfg, const char *key)
{
    size_t n, len = 1, k = 0;
    const char *const *items = config_get_list(cfg, key, &n);
    char *s;

    for (size_t i = 0; i < n; i++)
        len += strlen(items[i]) + 1;
    if (!(s = calloc(1, len)))
        return NULL;
    for (size_t i = 0; i < n; i++)
        k += (size_t)snprintf(s + k, len - k, "%s%s", i ? " " : "", items[i]);
    return s;
}

static void wipe_free(char *s)
{
    if (!s)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}

struct connect *connect_new(const struct config *cfg, struct metrics *metrics, char *errstr,
                            size_t errsz)
{
    struct connect *c = calloc(1, sizeof *c);
    struct oauth_hooks oh = {
        .opaque = metrics, .api_call = metrics_on_api_call, .refresh = metrics_on_oauth_refresh};
    struct qbo_hooks qh = {.opaque = metrics,
                           .api_call = metrics_on_api_call,
                           .ratelimit_wait = metrics_on_ratelimit_wait};
    int oom = 0;
    size_t n;

    if (!c) {
        snprintf(errstr, errsz, "connect: out of memory");
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    c->secret = dup_setting(cfg, "ingress.session_secret", &oom);
    c->public_url = dup_setting(cfg, "ingress.public_url", &oom);
    c->qbo_client_id = dup_setting(cfg, "oauth.client_id", &oom);
    c->qbo_client_secret = dup_setting(cfg, "oauth.client_secret", &oom);
    c->qbo_token_url = dup_setting(cfg, "oauth.token_url", &oom);
    c->qbo_authorize_url = dup_setting(cfg, "oauth.authorize_url", &oom);
    c->qbo_revoke_url = dup_setting(cfg, "oauth.revoke_url", &oom);
    c->hs_client_id = dup_setting(cfg, "hubspot.oauth.client_id", &oom);
    c->hs_client_secret = dup_setting(cfg, "hubspot.oauth.client_secret", &oom);
    c->hs_authorize_url = dup_setting(cfg, "hubspot.oauth.authorize_url", &oom);
    c->hs_base_url = dup_setting(cfg, "hubspot.base_url", &oom);
    oom |= !(c->hs_scopes = joined(cfg, "hubspot.oauth.scopes"));
    oom |= !(c->hs_optional_scopes = joined(cfg, "hubspot.oauth.optional_scopes"));
    if (oom) {
        snprintf(errstr, errsz, "connect: out of memory");
        goto fail;
    }
    if ((n = strlen(c->public_url)) > 0 && c->public_url[n - 1] == '/')
        c->public_url[n - 1] = '\0';
    if ((n = strlen(c->hs_base_url)) > 0 && c->hs_base_url[n - 1] == '/')
        c->hs_base_url[n - 1] = '\0';
    c->key = (struct connect_secret){c->secret, strlen(c->secret)};
    c->configured = c->key.len > 0;
    if (c->configured && c->key.len < CONNECT_SECRET_MIN) {
        snprintf(errstr, errsz, "ingress.session_secret: must be at least %d bytes",
                 CONNECT_SECRET_MIN);
        goto fail;
    }
    if (c->configured && !*c->public_url) {
        snprintf(errstr, errsz, "ingress.public_url: required by the connect pages");
        goto fail;
    }
    settings_redis_opts(cfg, &c->ro);
    settings_http_opts(cfg, &c->ho);
    if (!(c->rl = ratelimit_new(cfg, errstr, errsz)) || !(c->oauth = oauth_new(cfg, errstr, errsz)))
        goto fail;
    oauth_set_hooks(c->oauth, &oh);
    if (!(c->qbo = qbo_api_new(cfg, c->oauth, c->rl, &qh, errstr, errsz)))
        goto fail;
    return c;
fail:
    connect_free(c);
    return NULL;
}

static void slot_free(struct connect_slot *s)
{
    if (!s)
        return;
    redis_conn_free(s->redis);
    http_client_free(s->http);
    free(s);
}

void connect_free(struct connect *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nidle; i++)
        slot_free(c->idle[i]);
    qbo_api_free(c->qbo);
    oauth_free(c->oauth);
    ratelimit_free(c->rl);
    wipe_free(c->secret);
    wipe_free(c->qbo_client_secret);
    wipe_free(c->hs_client_secret);
    free(c->public_url);
    free(c->qbo_client_id);
    free(c->qbo_token_url);
    free(c->qbo_authorize_url);
    free(c->qbo_revoke_url);
    free(c->hs_client_id);
    free(c->hs_authorize_url);
    free(c->hs_base_url);
    free(c->hs_scopes);
    free(c->hs_optional_scopes);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* ---- slots ---------------------------------------------------------------------------- */

static struct connect_slot *slot_take(struct connect *c, char *errstr, size_t errsz)
{
    struct connect_slot *s = NULL;

    pthread_mutex_lock(&c->mu);
    if (c->nidle > 0)
        s = c->idle[--c->nidle];
    pthread_mutex_unlock(&c->mu);
    if (s)
        return s;
    if (!(s = calloc(1, sizeof *s))) {
        snprintf(errstr, errsz, "out of memory");
        return NULL;
    }
    if (!(s->http = http_client_new(&c->ho, errstr, errsz)) ||
        !(s->redis = redis_conn_new(&c->ro, errstr, errsz))) {
        slot_free(s);
        return NULL;
    }
    return s;
}

static void slot_give(struct connect *c, struct connect_slot *s)
{
    char e[256];

    if (!s)
        return;
    if (redis_flush(s->redis, e, sizeof e) < 0)
        log_warn("connect: redis: %s", e);
    pthread_mutex_lock(&c->mu);
    if (c->nidle < CONNECT_SLOTS_IDLE_MAX) {
        c->idle[c->nidle++] = s;
        s = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    slot_free(s);
}

const struct ioctx *connect_io(struct connect_call *k)
{
    char e[256];

    if (k->slot)
        return &k->io;
    if (!(k->slot = slot_take(k->c, e, sizeof e))) {
        log_warn("connect: no HTTP client or Redis connection: %s", e);
        connect_fail(k, 503, "Try again in a moment",
                     "This server cannot reach its store right now. Nothing was changed; "
                     "please try again in a moment.");
        return NULL;
    }
    k->io = (struct ioctx){.http = k->slot->http, .redis = k->slot->redis};
    return &k->io;
}

/* ---- answers --------------------------------------------------------------------------- */

void connect_answer_release(struct connect_answer *out)
{
    if (!out)
        return;
    free(out->body);
    free(out->location);
    free(out->set_cookie);
    memset(out, 0, sizeof *out);
}

static void set_page(struct connect_answer *out, int status, struct connect_page *p)
{
    static const char fallback[] = "<!doctype html>\n<title>Error</title>\n<p>The page could "
                                   "not be built.</p>\n";
    char *html = NULL;
    size_t len = 0;

    connect_answer_release(out);
    if (connect_page_take(p, &html, &len) < 0) {
        status = 500;
        html = strdup(fallback);
        len = html ? strlen(html) : 0;
    }
    out->status = status;
    out->body = html;
    out->len = len;
}

void connect_answer_page(struct connect_call *k, int status, struct connect_page *p)
{
    set_page(k->out, status, p);
}

void connect_error_page(int status, const char *title, const char *message,
                        struct connect_answer *out)
{
    struct connect_page p;

    connect_page_open(&p, title);
    connect_page_para(&p, "%s", message);
    connect_page_close(&p);
    memset(out, 0, sizeof *out);
    set_page(out, status, &p);
}

void connect_fail(struct connect_call *k, int status, const char *title, const char *fmt, ...)
{
    struct connect_page p;
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    connect_page_open(&p, title);
    connect_page_para(&p, "%s", msg);
    connect_page_close(&p);
    set_page(k->out, status, &p);
}

void connect_redirect(struct connect_call *k, const char *base, const struct http_param *params,
                      size_t nparams)
{
    char url[CONNECT_URL_MAX], e[128];

    if (http_url_build(url, sizeof url, base, params, nparams, e, sizeof e) < 0) {
        connect_fail(k, 500, "Something went wrong", "The address to continue at is too long.");
        return;
    }
    connect_answer_release(k->out);
    if (!(k->out->location = strdup(url))) {
        connect_fail(k, 503, "Try again in a moment", "This server ran out of memory.");
        return;
    }
    k->out->status = 302;
}

void connect_vendor_down(struct connect_call *k, const char *vendor, const char *doing,
                         enum http_error he, long status)
{
    if (he != HTTP_OK)
        log_warn("connect: %s %s: %s", vendor, doing, http_error_str(he));
    else
        log_warn("connect: %s %s: HTTP %ld", vendor, doing, status);
    connect_fail(k, 502, "Try again in a moment",
                 "%s did not answer while %s (%s). Nothing was changed; please start again in "
                 "a moment.",
                 vendor, doing,
                 he != HTTP_OK   ? http_error_str(he)
                 : status >= 500 ? "a server error"
                                 : "an error");
}

int connect_param(const struct connect_call *k, const char *key, char *buf, size_t bufsz)
{
    const struct connect_request *rq = k->rq;

    if (strcmp(rq->method, "POST") == 0)
        return connect_form_get(rq->body, rq->len, key, buf, bufsz);
    return connect_form_get(rq->query, strlen(rq->query), key, buf, bufsz);
}

/* ---- states and links ------------------------------------------------------------------- */

static int nonce_key(struct redis_conn *r, const char *nonce, char *key, size_t keysz,
                     char *errstr, size_t errsz)
{
    if (snprintf(key, keysz, "%sconnect:state:{%s}", redis_conn_prefix(r), nonce) >= (int)keysz) {
        snprintf(errstr, errsz, "key too long");
        return -1;
    }
    return 0;
}

/* 1 when nonce was spent before, 0 when not, -1 with errstr. */
static int nonce_spent(struct redis_conn *r, const char *nonce, char *errstr, size_t errsz)
{
    char key[REDIS_MAX_KEY + 1];
    redisReply *rep;
    int spent;

    if (nonce_key(r, nonce, key, sizeof key, errstr, errsz) < 0 ||
        !(rep = redis_command(r, errstr, errsz, "EXISTS %s", key)))
        return -1;
    spent = rep->type == REDIS_REPLY_INTEGER && rep->integer > 0;
    freeReplyObject(rep);
    return spent;
}

/* connect_spend hook: SET NX on the nonce's key. */
static int spend_nonce(void *opaque, const char *nonce, int64_t expires_ms, char *errstr,
                       size_t errsz)
{
    struct redis_conn *r = opaque;
    char key[REDIS_MAX_KEY + 1];
    int64_t ttl = expires_ms - clock_wall_ms() + STATE_KEY_SLACK_MS;
    redisReply *rep;
    int fresh;

    if (nonce_key(r, nonce, key, sizeof key, errstr, errsz) < 0)
        return -1;
    if (!(rep = redis_command(r, errstr, errsz, "SET %s 1 NX PX %lld", key,
                              (long long)(ttl > 0 ? ttl : 1))))
        return -1;
    fresh = rep->type == REDIS_REPLY_STATUS;
    freeReplyObject(rep);
    return fresh;
}

enum connect_verdict connect_redeem_state(struct connect_call *k, const char *purpose,
                                          struct connect_claims *claims)
{
    char state[CONNECT_TOKEN_MAX + 1], e[256] = "";
    const struct ioctx *io;
    struct connect_spend sp;
    enum connect_verdict v;
    int r = connect_param(k, "state", state, sizeof state);

    if (r != 1) {
        /* longer than any state, doubled or absent: not one of ours either way */
        connect_fail(k, 400, "This sign-in cannot be trusted",
                     "The answer came back without a valid state, so it may not be from a "
                     "sign-in this server started. Nothing was changed; please start again.");
        return CONNECT_MALFORMED;
    }
    if (!(io = connect_io(k)))
        return CONNECT_STORE_FAILED;
    /* the verdicts of the state itself first, then whether it was used, then whether this
     * browser started it: only then is it spent */
    v = connect_token_check(&k->c->key, state, strlen(state), purpose, -1, clock_wall_ms(),
                            claims);
    if (v == CONNECT_OK && (r = nonce_spent(io->redis, claims->nonce, e, sizeof e)) != 0)
        v = r > 0 ? CONNECT_REPLAYED : CONNECT_STORE_FAILED;
    if (v == CONNECT_OK && !(k->rq->flow && hash_ct_equal(k->rq->flow, strlen(k->rq->flow),
                                                          claims->nonce, strlen(claims->nonce)))) {
        log_info("connect: a %s callback from a browser that did not start it refused", purpose);
        connect_fail(k, 400, "Start again from this browser",
                     "This answer belongs to a sign-in started in another browser (or one "
                     "whose cookies were cleared), so it may not be yours. Nothing was "
                     "changed; please start again here.");
        return CONNECT_FORGED;
    }
    if (v == CONNECT_OK) {
        sp = (struct connect_spend){io->redis, spend_nonce};
        v = connect_token_redeem(&k->c->key, state, strlen(state), purpose, -1, clock_wall_ms(),
                                 &sp, claims, e, sizeof e);
    }
    switch (v) {
    case CONNECT_OK:
        return v;
    case CONNECT_EXPIRED:
        connect_fail(k, 400, "This sign-in expired",
                     "More than %lld minutes passed between starting and finishing the sign-in. "
                     "Nothing was changed; please start again.",
                     (long long)(CONNECT_STATE_TTL_MS / 60000));
        break;
    case CONNECT_REPLAYED:
        connect_fail(k, 400, "This sign-in was already used",
                     "This answer was already used once (a page reloaded, or the address "
                     "reused). Nothing was changed by this request; start again if the "
                     "account is not connected yet.");
        break;
    case CONNECT_STORE_FAILED:
        log_warn("connect: spending a state: redis: %s", e);
        connect_fail(k, 503, "Try again in a moment",
                     "This server cannot reach its store right now. Nothing was changed; "
                     "please start again in a moment.");
        break;
    default:
        log_debug("connect: a %s state refused: %s", purpose, connect_verdict_str(v));
        connect_fail(k, 400, "This sign-in cannot be trusted",
                     "The answer carries a state this server did not issue (%s), so it may "
                     "not come from a sign-in you started. Nothing was changed; please start "
                     "again.",
                     connect_verdict_str(v));
    }
    return v;
}

int connect_check_link(struct connect_call *k, int64_t *portal, char *link)
{
    char p[CONNECT_PORTAL_MAX + 2];
    enum connect_verdict v;
    size_t n;

    if (connect_param(k, "portal", p, sizeof p) != 1 || (n = strspn(p, "0123456789")) == 0 ||
        n > CONNECT_PORTAL_MAX || p[n] != '\0' || (*portal = strtoll(p, NULL, 10)) <= 0) {
        connect_fail(k, 400, "Which HubSpot account?",
                     "The address names no HubSpot account (portal=<id>). Open the link you "
                     "were given as it is.");
        return -1;
    }
    if (connect_param(k, "link", link, CONNECT_TOKEN_MAX + 1) != 1) {
        link[0] = '\0';
        v = CONNECT_MALFORMED;
    } else {
        v = connect_token_check(&k->c->key, link, strlen(link), CONNECT_PURPOSE_LINK, *portal,
                                clock_wall_ms(), NULL);
    }
    if (v == CONNECT_OK)
        return 0;
    log_debug("connect: a link for portal %lld refused: %s", (long long)*portal,
              connect_verdict_str(v));
    if (v == CONNECT_EXPIRED)
        connect_fail(k, 403, "This link expired",
                     "Links to connect QuickBooks are valid for %lld minutes. Ask for a new "
                     "one from the HubSpot app's settings.",
                     (long long)(CONNECT_LINK_TTL_MS / 60000));
    else
        connect_fail(k, 403, "This link is not valid",
                     "This link was not issued by this server for HubSpot account %lld (%s). "
                     "Ask for a new one from the HubSpot app's settings.",
                     (long long)*portal, connect_verdict_str(v));
    return -1;
}

int connect_realm_owned(struct connect_call *k, int64_t portal, const char *realm,
                        const char *title)
{
    char e[256];
    int64_t owner = 0;
    int r = tenancy_portal_of(k->io.redis, realm, &owner, e, sizeof e);

    if (r == 1 && owner == portal)
        return 0;
    if (r < 0)
        connect_fail(k, 503, "Try again in a moment",
                     "This server cannot reach its store right now. Nothing was changed; please "
                     "try again in a moment.");
    else
        connect_fail(k, 404, title, "QuickBooks company %s is not connected to HubSpot account %lld.",
                     realm, (long long)portal);
    return -1;
}

int connect_mint_link(const struct connect *c, int64_t portal, char *link)
{
    return connect_token_mint(&c->key, CONNECT_PURPOSE_LINK, portal,
                              clock_wall_ms() + CONNECT_LINK_TTL_MS, link, CONNECT_TOKEN_MAX + 1);
}

/* ---- sessions ---------------------------------------------------------------------------- */

int connect_hubspot_ready(const struct connect *c)
{
    return *c->hs_client_id && *c->hs_client_secret;
}

int connect_session(struct connect_call *k, int64_t *portal)
{
    const char *s = k->rq->session;
    struct connect_claims cl;
    enum connect_verdict v;

    k->session[0] = '\0';
    if (!s || !*s)
        return 0;
    v = connect_token_check(&k->c->key, s, strlen(s), CONNECT_PURPOSE_SESSION, -1, clock_wall_ms(),
                            &cl);
    if (v != CONNECT_OK || strlen(s) >= sizeof k->session) {
        log_debug("connect: a session cookie refused: %s", connect_verdict_str(v));
        return 0;
    }
    memcpy(k->session, s, strlen(s) + 1);
    *portal = cl.portal;
    return 1;
}

static void set_cookie(struct connect_call *k, const char *name, const char *value,
                       long long max_age_s)
{
    char buf[CONNECT_TOKEN_MAX + 128];
    int secure = strncmp(k->c->public_url, "https://", 8) == 0;

    snprintf(buf, sizeof buf, "%s=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Lax%s", name, value,
             max_age_s, secure ? "; Secure" : "");
    free(k->set_cookie);
    k->set_cookie = strdup(buf);
}

int connect_session_start(struct connect_call *k, int64_t portal)
{
    char tok[CONNECT_TOKEN_MAX + 1];

    if (connect_token_mint(&k->c->key, CONNECT_PURPOSE_SESSION, portal,
                           clock_wall_ms() + CONNECT_SESSION_TTL_MS, tok, sizeof tok) < 0)
        return -1;
    set_cookie(k, CONNECT_SESSION_COOKIE, tok, CONNECT_SESSION_TTL_MS / 1000);
    memcpy(k->session, tok, strlen(tok) + 1);
    return 0;
}

void connect_session_end(struct connect_call *k)
{
    set_cookie(k, CONNECT_SESSION_COOKIE, "", 0);
    k->session[0] = '\0';
}

int connect_flow_bind(struct connect_call *k, const char *state, const char *purpose,
                      int64_t portal)
{
    struct connect_claims cl;

    if (connect_token_check(&k->c->key, state, strlen(state), purpose, portal, clock_wall_ms(),
                            &cl) != CONNECT_OK)
        return -1;
    set_cookie(k, CONNECT_FLOW_COOKIE, cl.nonce, CONNECT_STATE_TTL_MS / 1000);
    return 0;
}

int connect_session_csrf_ok(struct connect_call *k)
{
    char csrf[CONNECT_CSRF_LEN + 2];

    return k->session[0] && connect_param(k, "csrf", csrf, sizeof csrf) == 1 &&
           connect_csrf_check(&k->c->key, k->session, csrf, strlen(csrf));
}

/* ---- routing --------------------------------------------------------------------------- */

static const struct {
    const char *path, *method, *allow;
    int hubspot; /* needs the HubSpot app's OAuth settings */
    void (*run)(struct connect_call *k);
} routes[] = {
    {"/qbo/connect", "GET", "GET", 0, connect_qbo_start},
    {"/qbo/callback", "GET", "GET", 0, connect_qbo_callback},
    {"/qbo/disconnect", "GET", "GET, POST", 0, connect_qbo_manage},
    {"/qbo/disconnect", "POST", "GET, POST", 0, connect_qbo_disconnect},
    {"/hubspot/install", "GET", "GET", 1, connect_hubspot_install},
    {"/hubspot/oauth-callback", "GET", "GET", 1, connect_hubspot_callback},
    {"/settings", "GET", "GET", 0, connect_settings_page},
    {"/settings/company", "POST", "POST", 0, connect_settings_save},
    {"/settings/disconnect", "POST", "POST", 0, connect_settings_disconnect},
    {"/settings/signout", "POST", "POST", 0, connect_settings_signout},
};

int connect_is_route(const char *path)
{
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++)
        if (strcmp(routes[i].path, path) == 0)
            return 1;
    return 0;
}

void connect_handle(struct connect *c, const struct connect_request *rq, struct connect_answer *out)
{
    struct connect_call k = {.c = c, .rq = rq, .out = out};
    const char *allow = NULL;
    size_t i, n = sizeof routes / sizeof *routes;

    memset(out, 0, sizeof *out);
    for (i = 0; i < n; i++) {
        if (strcmp(routes[i].path, rq->path) != 0)
            continue;
        allow = routes[i].allow;
        if (strcmp(routes[i].method, rq->method) == 0)
            break;
    }
    if (i == n) {
        if (allow)
            connect_fail(&k, 405, "Not here", "This page does not take %.16s requests.",
                         rq->method);
        else
            connect_fail(&k, 404, "Not found", "There is no such page.");
        out->allow = allow;
        return;
    }
    if (!c || !c->configured) {
        connect_fail(&k, 503, "Not configured",
                     "Connecting accounts is not configured on this server (it needs "
                     "ingress.session_secret). Ask its operator.");
        return;
    }
    if (routes[i].hubspot && (!*c->hs_client_id || !*c->hs_client_secret)) {
        connect_fail(&k, 503, "Not configured",
                     "Installing the HubSpot app is not configured on this server (it needs "
                     "hubspot.oauth.client_id and hubspot.oauth.client_secret). Ask its "
                     "operator.");
        return;
    }
    routes[i].run(&k);
    slot_give(c, k.slot);
    if (k.set_cookie) {
        free(out->set_cookie);
        out->set_cookie = k.set_cookie;
    }
    explicit_bzero(k.session, sizeof k.session);
}
