/* connect_qbo.c - connecting and disconnecting QuickBooks companies (see connect.h).
 *
 * Connect, one browser round trip through Intuit:
 *
 *   GET /qbo/connect  link ok? --no--> 403 page
 *                     state(qbo-connect, P, 10 min) --> 302 oauth.authorize_url
 *   (Intuit: the admin picks a company, or cancels)
 *   GET /qbo/callback error=…? --> page saying what Intuit said
 *                     state redeemed (single use)? --no--> 400 page      [connect_redeem_state]
 *                     code exchanged at oauth.token_url? --no--> page     [exchange]
 *                     realm bound to P (tenancy_bind)? --another portal--> 409 page, nothing
 *                                                       stored, that binding untouched
 *                     tokens stored (oauth_store_tokens, as `credentials qbo`)
 *                     CompanyInfo (through the stored tokens) --> "Connected <name>" page
 *
 * Bind before store: a realm bound to another portal must keep that portal's tokens, so
 * nothing is stored until the binding is ours. The fresh tokens of a refused connect are
 * dropped unstored, not revoked: Intuit's revocation ends the app's whole connection to
 * the company (the sandbox models it so: every token of the realm and client), which
 * would disconnect the portal that holds the company legitimately.
 *
 * Disconnect: POST /qbo/disconnect with the portal's link and the link's CSRF token; the
 * realm must be bound to that portal; its refresh token is revoked at oauth.revoke_url
 * (a failure there changes nothing), then the tokens deleted and the realm unbound.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "worker/company.h"
#include "worker/connect_internal.h"
#include "worker/ingress_options.h"
#include "worker/oauth.h"
#include "worker/qbo.h"
#include "worker/tenancy.h"

#define QBO_SCOPE     "com.intuit.quickbooks.accounting"
#define CODE_MAX      CONNECT_FIELD_MAX
#define MANAGE_REALMS 100 /* companies listed on the disconnect page */

/* What the code exchange brought. Secrets: wiped by grant_wipe(). */
struct grant {
    char access[OAUTH_TOKEN_MAX];
    char refresh[OAUTH_REFRESH_TOKEN_MAX];
    int64_t access_expires_at_ms, refresh_expires_at_ms;
};

static void grant_wipe(struct grant *g)
{
    explicit_bzero(g, sizeof *g);
}

static void redirect_uri(const struct connect *c, char *buf, size_t bufsz)
{
    snprintf(buf, bufsz, "%s/qbo/callback", c->public_url);
}

/* ---- GET /qbo/connect ----------------------------------------------------------------- */

void connect_qbo_start(struct connect_call *k)
{
    char link[CONNECT_TOKEN_MAX + 1], state[CONNECT_TOKEN_MAX + 1], cb[CONNECT_URL_MAX];
    int64_t portal;

    if (connect_check_link(k, &portal, link) < 0)
        return;
    if (connect_token_mint(&k->c->key, CONNECT_PURPOSE_QBO, portal,
                           clock_wall_ms() + CONNECT_STATE_TTL_MS, state, sizeof state) < 0 ||
        connect_flow_bind(k, state, CONNECT_PURPOSE_QBO, portal) < 0) {
        connect_fail(k, 500, "Something went wrong", "The sign-in could not be started.");
        return;
    }
    redirect_uri(k->c, cb, sizeof cb);
    const struct http_param params[] = {
        {"client_id", k->c->qbo_client_id},
        {"response_type", "code"},
        {"scope", QBO_SCOPE},
        {"redirect_uri", cb},
        {"state", state},
    };
    connect_redirect(k, k->c->qbo_authorize_url, params, sizeof params / sizeof *params);
}

/* ---- GET /qbo/callback ------------------------------------------------------------------ */

/* Intuit's error on the redirect as a page. */
static void intuit_refused(struct connect_call *k, const char *error)
{
    char desc[256] = "";

    connect_param(k, "error_description", desc, sizeof desc);
    if (strcmp(error, "access_denied") == 0) {
        connect_fail(k, 200, "QuickBooks was not connected",
                     "You chose not to connect a QuickBooks company (Intuit answered "
                     "access_denied). Nothing was changed; start again from HubSpot whenever "
                     "you like.");
        return;
    }
    log_debug("connect: Intuit answered the consent with error=%.64s", error);
    connect_fail(k,
                 strcmp(error, "server_error") == 0 || strcmp(error, "temporarily_unavailable") == 0
                     ? 502
                     : 400,
                 "QuickBooks was not connected",
                 "Intuit refused the request (%.64s%s%.200s). Nothing was changed; please start "
                 "again, and tell this server's operator if it happens again.",
                 error, desc[0] ? ": " : "", desc);
}

/* Exchanges code at oauth.token_url: 0 with *g, or -1 with the page answered. */
static int exchange(struct connect_call *k, const char *code, struct grant *g)
{
    const struct ioctx *io = connect_io(k);
    char cb[CONNECT_URL_MAX], e[256], err[64] = "";
    const char *at = NULL, *rt = NULL, *s = NULL;
    struct http_response resp;
    struct json_object *doc = NULL;
    int64_t ain = 0, rin = 0, now = clock_wall_ms();
    enum http_error he;
    int rc = -1;

    if (!io)
        return -1;
    redirect_uri(k->c, cb, sizeof cb);
    const struct http_header accept[] = {{"Accept", "application/json"}};
    const struct http_param form[] = {
        {"grant_type", "authorization_code"}, {"code", code}, {"redirect_uri", cb}};
    struct http_request rq = {.method = HTTP_POST,
                              .url = k->c->qbo_token_url,
                              .headers = accept,
                              .nheaders = 1,
                              .form = form,
                              .nform = 3,
                              .basic_user = k->c->qbo_client_id,
                              .basic_pass = k->c->qbo_client_secret};

    http_response_init(&resp);
    he = http_client_do(io->http, &rq, &resp, e, sizeof e);
    if (he != HTTP_OK || resp.status >= 500 || resp.status == 429) {
        connect_vendor_down(k, "Intuit", "exchanging the authorization code", he, resp.status);
        goto out;
    }
    doc = json_parse_strict(resp.body, resp.body_len, 8, e, sizeof e);
    if (resp.status != 200) {
        if (doc && json_get_str(doc, "error", &s) == JGET_OK)
            snprintf(err, sizeof err, "%s", s);
        if (resp.status == 401 || strcmp(err, "invalid_client") == 0) {
            log_error("connect: Intuit refused this server's client id/secret (invalid_client): "
                      "check oauth.client_id and oauth.client_secret");
            connect_fail(k, 502, "QuickBooks was not connected",
                         "Intuit refused this server's app credentials (invalid_client). "
                         "Nothing was changed; tell this server's operator.");
        } else {
            log_info("connect: Intuit refused an authorization code: HTTP %ld %s", resp.status,
                     err);
            connect_fail(k, 400, "QuickBooks was not connected",
                         "Intuit did not accept the authorization (%s). Codes work once and "
                         "only for a few minutes; nothing was changed, please start again.",
                         err[0] ? err : "refused");
        }
        goto out;
    }
    if (!doc || json_get_str(doc, "access_token", &at) != JGET_OK ||
        json_get_str(doc, "refresh_token", &rt) != JGET_OK || !*rt ||
        strlen(at) >= sizeof g->access || strlen(rt) >= sizeof g->refresh) {
        log_warn("connect: Intuit's token answer lacks usable tokens");
        connect_fail(k, 502, "QuickBooks was not connected",
                     "Intuit's answer carried no usable tokens. Nothing was changed; please "
                     "start again.");
        goto out;
    }
    json_get_int64(doc, "expires_in", 1, 86400 * 365, &ain);
    json_get_int64(doc, "x_refresh_token_expires_in", 1, 86400LL * 3650, &rin);
    memcpy(g->access, at, strlen(at) + 1);
    memcpy(g->refresh, rt, strlen(rt) + 1);
    g->access_expires_at_ms = ain ? now + ain * 1000 : 0;
    g->refresh_expires_at_ms = rin ? now + rin * 1000 : 0;
    rc = 0;
out:
    if (doc)
        json_object_put(doc);
    if (resp.body)
        explicit_bzero(resp.body, resp.body_len);
    http_response_release(&resp);
    return rc;
}

/* Binds realm to portal: 0; 1 when another portal holds it (nothing changed); -1 when
 * the store failed. The pages are the caller's. */
static int bind_realm(const struct ioctx *io, int64_t portal, const char *realm)
{
    char e[256];
    int64_t owner = 0;

    if (tenancy_bind(io->redis, portal, realm, e, sizeof e) == 0)
        return 0;
    if (tenancy_portal_of(io->redis, realm, &owner, e, sizeof e) == 1 && owner != portal) {
        log_warn("connect: realm %s is bound to portal %lld; portal %lld's connect refused", realm,
                 (long long)owner, (long long)portal);
        return 1;
    }
    log_warn("connect: binding realm %s to portal %lld: %s", realm, (long long)portal, e);
    return -1;
}

/* The success page: the company's name when CompanyInfo can be read. */
static void connected_page(struct connect_call *k, const struct ioctx *io, int64_t portal,
                           const char *realm)
{
    struct qbo_company co;
    struct api_error err;
    struct connect_page p;
    char e[256];
    int got = qbo_company_info(io, k->c->qbo, realm, &co, &err) == 0;

    if (company_connected(io->redis, realm, portal, got ? co.name : NULL, got ? co.country : NULL,
                          clock_wall_ms(), e, sizeof e) < 0)
        log_warn("connect: recording company %s: %s", realm, e);

    connect_page_open(&p, "QuickBooks connected");
    if (got && co.name[0]) {
        connect_page_html(&p, "<p id=\"result\">");
        connect_page_text(&p, "Connected %s (realm %s) to HubSpot account %lld.", co.name, realm,
                          (long long)portal);
        connect_page_html(&p, "</p>\n");
        if (!co.is_us)
            connect_page_para(&p,
                              "Note: the company's country is %s; the workflow actions book "
                              "only US companies (QBO_COMPANY_NOT_US).",
                              co.country[0] ? co.country : "unknown");
    } else {
        log_warn("connect: CompanyInfo of realm %s after connecting: %s", realm,
                 got ? "no CompanyName" : err.message);
        connect_page_html(&p, "<p id=\"result\">");
        connect_page_text(&p, "Connected QuickBooks company %s to HubSpot account %lld.", realm,
                          (long long)portal);
        connect_page_html(&p, "</p>\n");
        connect_page_para(&p, "Its name could not be read just now; the connection is made.");
    }
    connect_page_para(&p, "You can close this page and choose the company in the workflow "
                          "actions of your HubSpot account.");
    connect_page_html(&p, "<p><a id=\"settings\" href=\"/settings\">Back to the settings</a></p>\n");
    connect_page_close(&p);
    connect_answer_page(k, 200, &p);
}

void connect_qbo_callback(struct connect_call *k)
{
    char error[128], code[CODE_MAX + 1], realm[OAUTH_REALM_MAX + 2], e[256];
    const struct ioctx *io;
    struct connect_claims st;
    struct oauth_tokens t;
    struct grant *g = NULL;
    int r;

    if ((r = connect_param(k, "error", error, sizeof error)) != 0) {
        intuit_refused(k, r == 1 ? error : "malformed");
        return;
    }
    if (connect_redeem_state(k, CONNECT_PURPOSE_QBO, &st) != CONNECT_OK)
        return;
    if (connect_param(k, "code", code, sizeof code) != 1 || !*code ||
        connect_param(k, "realmId", realm, sizeof realm) != 1 || !oauth_realm_valid(realm)) {
        connect_fail(k, 400, "QuickBooks was not connected",
                     "Intuit's answer lacks the authorization code or the company id. Nothing "
                     "was changed; please start again.");
        return;
    }
    if (!(io = connect_io(k)) || !(g = calloc(1, sizeof *g))) {
        if (io)
            connect_fail(k, 503, "Try again in a moment", "This server ran out of memory.");
        return;
    }
    if (exchange(k, code, g) < 0)
        goto out;
    if ((r = bind_realm(io, st.portal, realm)) != 0) {
        if (r > 0)
            connect_fail(k, 409, "Already connected to another HubSpot account",
                         "QuickBooks company %s is connected to another HubSpot account, and a "
                         "company serves one account only. Nothing was changed: it stays "
                         "connected there. Disconnect it from that account first.",
                         realm);
        else
            connect_fail(k, 503, "Try again in a moment",
                         "This server cannot reach its store right now. The company was not "
                         "connected; please start again in a moment.");
        goto out;
    }
    t = (struct oauth_tokens){g->access, g->access_expires_at_ms, g->refresh,
                              g->refresh_expires_at_ms};
    if (oauth_store_tokens(io->redis, realm, &t, e, sizeof e) < 0) {
        log_warn("connect: storing the tokens of realm %s: %s", realm, e);
        connect_fail(k, 503, "Try again in a moment",
                     "The company's tokens could not be stored. Please start again in a "
                     "moment.");
        goto out;
    }
    if (ingress_options_forget_portal(io->redis, st.portal, e, sizeof e) < 0)
        log_warn("connect: dropping portal %lld's cached companies: %s", (long long)st.portal, e);
    log_info("connect: QuickBooks realm %s connected to HubSpot portal %lld", realm,
             (long long)st.portal);
    connected_page(k, io, st.portal, realm);
out:
    if (g) {
        grant_wipe(g);
        free(g);
    }
    explicit_bzero(code, sizeof code);
}

/* ---- GET /qbo/disconnect: the portal's companies ----------------------------------------- */

void connect_qbo_manage(struct connect_call *k)
{
    char link[CONNECT_TOKEN_MAX + 1], csrf[CONNECT_CSRF_LEN + 1], e[256], portal_s[24];
    char(*realms)[TENANCY_REALM_MAX + 1] = NULL;
    const struct ioctx *io;
    struct connect_page p;
    int64_t portal;
    size_t n = 0;

    if (connect_check_link(k, &portal, link) < 0 || !(io = connect_io(k)))
        return;
    if (!(realms = calloc(MANAGE_REALMS, sizeof *realms)) ||
        tenancy_realms(io->redis, portal, realms, MANAGE_REALMS, &n, e, sizeof e) < 0 ||
        connect_csrf(&k->c->key, link, csrf) < 0) {
        log_warn("connect: listing portal %lld's companies: %s", (long long)portal,
                 realms ? e : "out of memory");
        connect_fail(k, 503, "Try again in a moment",
                     "The list of companies cannot be read right now; please try again.");
        free(realms);
        return;
    }
    snprintf(portal_s, sizeof portal_s, "%lld", (long long)portal);
    connect_page_open(&p, "QuickBooks companies");
    connect_page_para(&p, "QuickBooks companies connected to HubSpot account %lld: %zu.",
                      (long long)portal, n);
    connect_page_html(&p, "<ul id=\"companies\">\n");
    for (size_t i = 0; i < n && i < MANAGE_REALMS; i++) {
        struct company co;

        connect_page_html(&p, "<li><form method=\"post\" action=\"/qbo/disconnect\" "
                              "class=\"disconnect\">");
        if (company_get(io->redis, realms[i], &co, e, sizeof e) == 1 && co.name[0])
            connect_page_text(&p, "%s (realm %s) ", co.name, realms[i]);
        else
            connect_page_text(&p, "Realm %s ", realms[i]);
        connect_page_hidden(&p, "portal", portal_s);
        connect_page_hidden(&p, "link", link);
        connect_page_hidden(&p, "csrf", csrf);
        connect_page_hidden(&p, "realm", realms[i]);
        connect_page_html(&p, "<button type=\"submit\" id=\"disconnect-");
        connect_page_text(&p, "%s", realms[i]);
        connect_page_html(&p, "\">Disconnect</button></form></li>\n");
    }
    connect_page_html(&p, "</ul>\n<p><a id=\"connect\" href=\"/qbo/connect?portal=");
    connect_page_text(&p, "%s&link=%s", portal_s, link);
    connect_page_html(&p, "\">Connect a QuickBooks company</a></p>\n");
    connect_page_close(&p);
    connect_answer_page(k, 200, &p);
    free(realms);
}

/* ---- POST /qbo/disconnect -------------------------------------------------------------- */

/* Revokes realm's refresh token (if one is stored) at oauth.revoke_url: 0, or -1 with the
 * page answered (nothing changed). */
static int revoke(struct connect_call *k, const struct ioctx *io, const char *realm)
{
    char rt[OAUTH_REFRESH_TOKEN_MAX], e[256];
    struct http_response resp;
    struct jbuf body;
    enum http_error he;
    int r = oauth_refresh_token_get(io->redis, realm, rt, sizeof rt, e, sizeof e), rc = -1;

    if (r <= 0) {
        if (r < 0) {
            log_warn("connect: reading realm %s's refresh token: %s", realm, e);
            connect_fail(k, 503, "Try again in a moment",
                         "This server cannot reach its store right now. Nothing was changed; "
                         "please try again in a moment.");
        }
        return r; /* none stored: nothing to revoke */
    }
    jbuf_init(&body, 4096);
    jbuf_obj_open(&body);
    jbuf_kv_str(&body, "token", rt);
    jbuf_obj_close(&body);
    explicit_bzero(rt, sizeof rt);
    const struct http_header accept[] = {{"Accept", "application/json"}};
    struct http_request rq = {.method = HTTP_POST,
                              .url = k->c->qbo_revoke_url,
                              .headers = accept,
                              .nheaders = 1,
                              .body = jbuf_cstr(&body),
                              .body_len = body.len,
                              .content_type = "application/json",
                              .basic_user = k->c->qbo_client_id,
                              .basic_pass = k->c->qbo_client_secret};
    http_response_init(&resp);
    he = body.err ? HTTP_EOTHER : http_client_do(io->http, &rq, &resp, e, sizeof e);
    if (he != HTTP_OK || resp.status >= 500 || resp.status == 429) {
        connect_vendor_down(k, "Intuit", "revoking the company's tokens", he, resp.status);
    } else if (resp.status == 401) {
        log_error("connect: Intuit refused this server's client id/secret revoking realm %s's "
                  "token (invalid_client)",
                  realm);
        connect_fail(k, 502, "Not disconnected",
                     "Intuit refused this server's app credentials (invalid_client). Nothing "
                     "was changed; tell this server's operator.");
    } else if (resp.status == 200 || resp.status == 400) {
        /* 400: a token Intuit no longer knows (the company disconnected the app on its
         * side) is as good as revoked */
        if (resp.status != 200)
            log_warn("connect: Intuit answered %ld revoking realm %s's token; deleting it",
                     resp.status, realm);
        rc = 0;
    } else {
        /* a redirect, 403, 404...: not Intuit's revoke endpoint answering (oauth.revoke_url
         * is wrong); deleting now would leave the app connected at Intuit, unrevoked */
        log_error("connect: oauth.revoke_url answered %ld revoking realm %s's token; is it "
                  "Intuit's revoke endpoint?",
                  resp.status, realm);
        connect_fail(k, 502, "Not disconnected",
                     "Intuit's revoke endpoint answered %ld. Nothing was changed; tell this "
                     "server's operator.",
                     resp.status);
    }
    if (body.buf)
        explicit_bzero(body.buf, body.len);
    jbuf_release(&body);
    http_response_release(&resp);
    return rc;
}

/* Deletes realm's tokens and unbinds it from portal: 0, or -1 with errstr. */
static int forget(const struct ioctx *io, int64_t portal, const char *realm, char *e, size_t esz)
{
    char key[REDIS_MAX_KEY + 1];
    redisReply *r;

    if (oauth_key(io->redis, realm, key, sizeof key) < 0) {
        snprintf(e, esz, "bad realm");
        return -1;
    }
    if (!(r = redis_command(io->redis, e, esz, "DEL %s", key)))
        return -1;
    freeReplyObject(r);
    if (tenancy_unbind(io->redis, portal, realm, e, esz) < 0 ||
        company_forget(io->redis, realm, e, esz) < 0)
        return -1;
    if (ingress_options_forget_portal(io->redis, portal, e, esz) < 0)
        log_warn("connect: dropping portal %lld's cached companies: %s", (long long)portal, e);
    return 0;
}

int connect_qbo_drop(struct connect_call *k, const struct ioctx *io, int64_t portal,
                     const char *realm)
{
    char e[256];

    if (revoke(k, io, realm) < 0)
        return -1;
    if (forget(io, portal, realm, e, sizeof e) < 0) {
        log_warn("connect: forgetting realm %s of portal %lld: %s", realm, (long long)portal, e);
        connect_fail(k, 503, "Try again in a moment",
                     "Intuit revoked the company's access, but this server could not finish "
                     "(its store did not answer). Please try again in a moment.");
        return -1;
    }
    log_info("connect: QuickBooks realm %s disconnected from HubSpot portal %lld", realm,
             (long long)portal);
    return 0;
}

void connect_qbo_disconnect(struct connect_call *k)
{
    char link[CONNECT_TOKEN_MAX + 1], csrf[CONNECT_CSRF_LEN + 2], realm[OAUTH_REALM_MAX + 2];
    const struct ioctx *io;
    struct connect_page p;
    int64_t portal;

    if (connect_check_link(k, &portal, link) < 0)
        return;
    if (connect_param(k, "csrf", csrf, sizeof csrf) != 1 ||
        !connect_csrf_check(&k->c->key, link, csrf, strlen(csrf))) {
        log_info("connect: a disconnect for portal %lld without its CSRF token refused",
                 (long long)portal);
        connect_fail(k, 403, "Not disconnected",
                     "The form did not come from this server's page. Nothing was changed; "
                     "open the disconnect page again.");
        return;
    }
    if (connect_param(k, "realm", realm, sizeof realm) != 1 || !oauth_realm_valid(realm)) {
        connect_fail(k, 400, "Not disconnected", "The form names no QuickBooks company.");
        return;
    }
    if (!(io = connect_io(k)))
        return;
    if (connect_realm_owned(k, portal, realm, "Not disconnected") < 0 ||
        connect_qbo_drop(k, io, portal, realm) < 0)
        return;
    connect_page_open(&p, "QuickBooks disconnected");
    connect_page_html(&p, "<p id=\"result\">");
    connect_page_text(&p, "Disconnected QuickBooks company %s from HubSpot account %lld.", realm,
                      (long long)portal);
    connect_page_html(&p, "</p>\n");
    connect_page_para(&p, "Workflow actions that name this company now fail with "
                          "REALM_NOT_ALLOWED, and nothing more is written to its books.");
    connect_page_close(&p);
    connect_answer_page(k, 200, &p);
}
