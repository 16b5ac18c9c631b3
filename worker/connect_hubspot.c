/* connect_hubspot.c - installing the HubSpot app into a portal (see connect.h).
 *
 *   GET /hubspot/install        state(hubspot-install, no portal yet, 10 min)
 *                               --> 302 hubspot.oauth.authorize_url
 *   (HubSpot: the user picks an account and grants the scopes, or cancels)
 *   GET /hubspot/oauth-callback error=…? --> page saying what HubSpot said
 *                               state redeemed? --no--> 400 page     [connect_redeem_state]
 *                               code exchanged at <hubspot.base_url>/oauth/v1/token
 *                               portal = the answer's hub_id, else the access token's
 *                                        metadata (GET /oauth/v1/access-tokens/{token})
 *                               tokens stored (hubspot_oauth_store) --> page with a connect
 *                               link for that portal
 *
 * The portal comes from HubSpot, never from the browser: the state carries none, and the
 * token is only valid for the account the user installed into. The install proves the
 * user is an admin of that portal, so its page may hand out the portal's connect link.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "worker/connect_internal.h"
#include "worker/hubspot.h"
#include "worker/hubspot_oauth.h"

#define CODE_MAX CONNECT_FIELD_MAX

/* What the code exchange brought. Secrets: wiped by install_wipe(). */
struct install {
    char access[HUBSPOT_MAX_TOKEN + 1];
    char refresh[HUBSPOT_OAUTH_REFRESH_MAX + 1];
    char scopes[HUBSPOT_OAUTH_SCOPES_MAX + 1];
    char hub_domain[HUBSPOT_OAUTH_DOMAIN_MAX + 1];
    int64_t access_expires_at_ms;
    int64_t portal; /* 0 until known */
};

static void install_wipe(struct install *in)
{
    explicit_bzero(in, sizeof *in);
}

static void redirect_uri(const struct connect *c, char *buf, size_t bufsz)
{
    snprintf(buf, bufsz, "%s/hubspot/oauth-callback", c->public_url);
}

/* ---- GET /hubspot/install ---------------------------------------------------------------- */

/* 302 to HubSpot's consent with a state of purpose (an install or a sign-in). */
static void consent(struct connect_call *k, const char *purpose)
{
    char state[CONNECT_TOKEN_MAX + 1], cb[CONNECT_URL_MAX];

    if (connect_token_mint(&k->c->key, purpose, 0, clock_wall_ms() + CONNECT_STATE_TTL_MS, state,
                           sizeof state) < 0 ||
        connect_flow_bind(k, state, purpose, 0) < 0) {
        connect_fail(k, 500, "Something went wrong", "The sign-in could not be started.");
        return;
    }
    redirect_uri(k->c, cb, sizeof cb);
    const struct http_param params[] = {
        {"client_id", k->c->hs_client_id},
        {"redirect_uri", cb},
        {"scope", k->c->hs_scopes},
        {"optional_scope", *k->c->hs_optional_scopes ? k->c->hs_optional_scopes : NULL},
        {"state", state},
    };
    connect_redirect(k, k->c->hs_authorize_url, params, sizeof params / sizeof *params);
}

void connect_hubspot_install(struct connect_call *k)
{
    consent(k, CONNECT_PURPOSE_HUBSPOT);
}

void connect_hubspot_signin(struct connect_call *k)
{
    consent(k, CONNECT_PURPOSE_SIGNIN);
}

/* The purpose the request's state claims (v1.<purpose>.…), unverified: which redemption
 * to attempt. The redemption checks it with the MAC. */
static const char *claimed_purpose(struct connect_call *k)
{
    static const char signin[] = "v1." CONNECT_PURPOSE_SIGNIN ".";
    char state[CONNECT_TOKEN_MAX + 1];

    if (connect_param(k, "state", state, sizeof state) == 1 &&
        strncmp(state, signin, sizeof signin - 1) == 0)
        return CONNECT_PURPOSE_SIGNIN;
    return CONNECT_PURPOSE_HUBSPOT;
}

/* ---- GET /hubspot/oauth-callback ----------------------------------------------------------- */

/* A HubSpot error answer as a page: the app's own credentials refused (tell the
 * operator) or the code refused (start again). */
static void hubspot_refused(struct connect_call *k, long status, const char *code,
                            const char *msg)
{
    if (strcmp(code, "BAD_CLIENT_ID") == 0 || strcmp(code, "BAD_CLIENT_SECRET") == 0 ||
        status == 401) {
        log_error("connect: HubSpot refused this server's app credentials (%.32s): check "
                  "hubspot.oauth.client_id and hubspot.oauth.client_secret",
                  code);
        connect_fail(k, 502, "The app was not installed",
                     "HubSpot refused this server's app credentials (%.32s). Nothing was "
                     "changed; tell this server's operator.",
                     code);
        return;
    }
    log_info("connect: HubSpot refused an install code: HTTP %ld %.32s", status, code);
    connect_fail(k, 400, "The app was not installed",
                 "HubSpot did not accept the authorization (%.32s%s%.200s). Codes work once "
                 "and only for a few minutes; nothing was changed, please install again.",
                 *code ? code : "refused", *msg ? ": " : "", msg);
}

/* One JSON exchange with HubSpot's OAuth routes: the parsed 200 answer into *doc (caller
 * puts it), or -1 with the page answered. */
static int hubspot_call(struct connect_call *k, const struct http_request *rq, const char *doing,
                        struct json_object **doc)
{
    struct http_response resp;
    char e[256];
    enum http_error he;
    int rc = -1;

    http_response_init(&resp);
    he = http_client_do(k->io.http, rq, &resp, e, sizeof e);
    *doc = NULL;
    if (he != HTTP_OK || resp.status >= 500 || resp.status == 429) {
        connect_vendor_down(k, "HubSpot", doing, he, resp.status);
        goto out;
    }
    *doc = json_parse_strict(resp.body, resp.body_len, 8, e, sizeof e);
    if (resp.status != 200) {
        const char *code = "", *msg = "";

        if (*doc) {
            json_get_str(*doc, "status", &code);
            json_get_str(*doc, "message", &msg);
        }
        hubspot_refused(k, resp.status, code, msg);
        goto out;
    }
    if (!*doc || !json_object_is_type(*doc, json_type_object)) {
        connect_vendor_down(k, "HubSpot", doing, HTTP_OK, 502);
        goto out;
    }
    rc = 0;
out:
    if (rc < 0 && *doc) {
        json_object_put(*doc);
        *doc = NULL;
    }
    if (resp.body)
        explicit_bzero(resp.body, resp.body_len);
    http_response_release(&resp);
    return rc;
}

/* Exchanges code at the token endpoint (hubspot_oauth_token, shared with the refresh):
 * 0 with *in (the portal when the answer names it), or -1 with the page answered. */
static int exchange(struct connect_call *k, const char *code, struct install *in)
{
    char cb[CONNECT_URL_MAX];
    const struct hubspot_oauth_app app = {k->c->hs_base_url, k->c->hs_client_id,
                                          k->c->hs_client_secret};
    const struct http_param grant[] = {
        {"grant_type", "authorization_code"}, {"redirect_uri", cb}, {"code", code}};
    struct hubspot_token_reply *r = calloc(1, sizeof *r);
    int rc = -1;

    if (!r) {
        connect_fail(k, 503, "Try again in a moment", "This server ran out of memory.");
        return -1;
    }
    redirect_uri(k->c, cb, sizeof cb);
    switch (hubspot_oauth_token(k->io.http, &app, grant, 3, r)) {
    case HUBSPOT_TOKEN_DOWN:
        connect_vendor_down(k, "HubSpot", "exchanging the authorization code", r->he,
                            r->status == 200 ? 502 : r->status);
        break;
    case HUBSPOT_TOKEN_REFUSED:
        hubspot_refused(k, r->status, r->error, r->message);
        break;
    case HUBSPOT_TOKEN_BAD_ANSWER:
        log_warn("connect: HubSpot's token answer lacks usable tokens");
        connect_fail(k, 502, "The app was not installed",
                     "HubSpot's answer carried no usable tokens. Nothing was changed; please "
                     "install again.");
        break;
    case HUBSPOT_TOKEN_OK:
        memcpy(in->access, r->access, sizeof in->access);
        memcpy(in->refresh, r->refresh, sizeof in->refresh);
        memcpy(in->scopes, r->scopes, sizeof in->scopes);
        in->access_expires_at_ms = clock_wall_ms() + r->expires_in_s * 1000;
        in->portal = r->portal;
        rc = 0;
        break;
    }
    explicit_bzero(r, sizeof *r);
    free(r);
    return rc;
}

/* The portal (and its domain) from the access token's metadata: 0, or -1 with the page
 * answered. HubSpot's token answer does not always carry hub_id. */
static int learn_portal(struct connect_call *k, struct install *in)
{
    char url[CONNECT_URL_MAX], esc[HUBSPOT_MAX_TOKEN * 3 + 1];
    const char *dom = NULL;
    struct json_object *doc;
    int rc = -1;

    if (http_path_escape(esc, sizeof esc, in->access, strlen(in->access)) >= sizeof esc)
        return -1; /* not reached: esc holds any token's escape */
    snprintf(url, sizeof url, "%s/oauth/v1/access-tokens/%s", k->c->hs_base_url, esc);
    explicit_bzero(esc, sizeof esc);
    const struct http_header accept[] = {{"Accept", "application/json"}};
    struct http_request rq = {.method = HTTP_GET, .url = url, .headers = accept, .nheaders = 1};

    rc = hubspot_call(k, &rq, "reading which account the app was installed in", &doc);
    explicit_bzero(url, sizeof url);
    if (rc < 0)
        return -1;
    if (json_get_int64_lenient(doc, "hub_id", 1, INT64_MAX, &in->portal) != JGET_OK) {
        connect_fail(k, 502, "The app was not installed",
                     "HubSpot did not say which account the app was installed in. Please "
                     "install again.");
        rc = -1;
    } else {
        if (json_get_str(doc, "hub_domain", &dom) == JGET_OK)
            snprintf(in->hub_domain, sizeof in->hub_domain, "%s", dom);
        if (!in->scopes[0])
            hubspot_oauth_join_scopes(doc, in->scopes, sizeof in->scopes);
    }
    json_object_put(doc);
    return rc;
}

static void installed_page(struct connect_call *k, const struct install *in)
{
    char link[CONNECT_TOKEN_MAX + 1];
    struct connect_page p;

    connect_page_open(&p, "HubSpot app installed");
    connect_page_html(&p, "<p id=\"result\">");
    connect_page_text(&p, "Installed in HubSpot account %lld%s%s.", (long long)in->portal,
                      in->hub_domain[0] ? " · " : "", in->hub_domain);
    connect_page_html(&p, "</p>\n<p><a id=\"settings\" href=\"/settings\">Open the app's "
                          "settings</a> to connect QuickBooks companies and choose their "
                          "defaults.</p>\n");
    if (connect_mint_link(k->c, in->portal, link) == 0) {
        connect_page_html(&p, "<p><a id=\"connect\" href=\"/qbo/connect?portal=");
        connect_page_text(&p, "%lld&link=%s", (long long)in->portal, link);
        connect_page_html(&p, "\">Connect a QuickBooks company</a> (this link works for ");
        connect_page_text(&p, "%lld minutes).", (long long)(CONNECT_LINK_TTL_MS / 60000));
        connect_page_html(&p, "</p>\n");
    }
    connect_page_close(&p);
    connect_answer_page(k, 200, &p);
}

/* 1 when portal's HubSpot token is a private-app token (stored by `credentials hubspot`:
 * a token without an install hash), which a sign-in must leave alone; 0 when the portal
 * has no token or an install (a sign-in through the same app renews it); -1 when the
 * store did not answer. */
static int keeps_private_token(struct connect_call *k, int64_t portal)
{
    char key[REDIS_MAX_KEY + 1], e[256];
    struct hubspot_oauth_status st;
    redisReply *rep;
    int installed = hubspot_oauth_status_get(k->io.redis, portal, &st, e, sizeof e), has;

    if (installed != 0)
        return installed < 0 ? -1 : 0;
    if (hubspot_token_key(key, sizeof key, redis_conn_prefix(k->io.redis), portal) < 0 ||
        !(rep = redis_command(k->io.redis, e, sizeof e, "EXISTS %s", key)))
        return -1;
    has = rep->type == REDIS_REPLY_INTEGER && rep->integer > 0;
    freeReplyObject(rep);
    return has;
}

void connect_hubspot_callback(struct connect_call *k)
{
    char error[128], desc[256] = "", code[CODE_MAX + 1], e[256];
    struct connect_claims st;
    struct install *in = NULL;
    struct hubspot_install hi;
    const char *purpose;
    int r, signin;

    if ((r = connect_param(k, "error", error, sizeof error)) != 0) {
        connect_param(k, "error_description", desc, sizeof desc);
        if (r == 1 && strcmp(error, "access_denied") == 0)
            connect_fail(k, 200, "The app was not installed",
                         "You chose not to install the app (HubSpot answered access_denied). "
                         "Nothing was changed.");
        else
            connect_fail(k, 400, "The app was not installed",
                         "HubSpot refused the request (%.64s%s%.200s). Nothing was changed.",
                         r == 1 ? error : "malformed", desc[0] ? ": " : "", desc);
        return;
    }
    purpose = claimed_purpose(k);
    signin = strcmp(purpose, CONNECT_PURPOSE_SIGNIN) == 0;
    if (connect_redeem_state(k, purpose, &st) != CONNECT_OK)
        return;
    if (connect_param(k, "code", code, sizeof code) != 1 || !*code) {
        connect_fail(k, 400, "The app was not installed",
                     "HubSpot's answer lacks the authorization code. Nothing was changed; "
                     "please install again.");
        return;
    }
    if (!connect_io(k))
        return;
    if (!(in = calloc(1, sizeof *in))) {
        connect_fail(k, 503, "Try again in a moment", "This server ran out of memory.");
        return;
    }
    if (exchange(k, code, in) < 0 || (in->portal == 0 && learn_portal(k, in) < 0))
        goto out;
    hi = (struct hubspot_install){in->access, in->access_expires_at_ms, in->refresh, in->scopes,
                                  in->hub_domain};
    if (signin && (r = keeps_private_token(k, in->portal)) != 0) {
        if (r < 0) {
            connect_fail(k, 503, "Try again in a moment",
                         "This server cannot reach its store right now; please sign in again in "
                         "a moment.");
            goto out;
        }
        /* a sign-in only proves who is visiting: the operator's private-app token stays */
    } else if (hubspot_oauth_store(k->io.redis, in->portal, &hi, e, sizeof e) < 0) {
        log_warn("connect: storing portal %lld's install: %s", (long long)in->portal, e);
        connect_fail(k, 503, "Try again in a moment",
                     "The install's tokens could not be stored. Please install again in a "
                     "moment.");
        goto out;
    }
    log_info("connect: HubSpot app %s portal %lld (scopes: %s)",
             signin ? "signed in to by a user of" : "installed in",
             (long long)in->portal, in->scopes[0] ? in->scopes : "not reported");
    /* the consent proved the user may manage the app in this portal */
    if (connect_session_start(k, in->portal) < 0)
        log_warn("connect: no session for portal %lld (no randomness)", (long long)in->portal);
    if (signin)
        connect_redirect(k, "/settings", NULL, 0);
    else
        installed_page(k, in);
out:
    if (in) {
        install_wipe(in);
        free(in);
    }
    explicit_bzero(code, sizeof code);
}
