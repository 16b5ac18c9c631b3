/* hubspot_oauth.c - HubSpot's authorization server: the token endpoint (POST
 * /oauth/v1|v3/token: refresh_token and authorization_code grants), token metadata (GET
 * /oauth/v1/access-tokens/{token}, GET|DELETE /oauth/v1/refresh-tokens/{token}), and the
 * half of the consent page (authorize.c, through authorize.h) that checks an app's
 * client_id, redirect URI and scopes and mints codes.
 *
 * An installation is an hs_app record in one portal (hubspot_internal.h). Seeded records
 * are also the app's definition; the consent flow adds records of its own, one per (app,
 * portal), so that a grant never changes what the seed declared:
 *
 *   consent page --hubspot_az_code()--> code {client_id, redirect_uri, portal, granted
 *     scopes, expires}, single use
 *   token endpoint, code + same client + same redirect_uri --install_for()--> the
 *     (app, portal) installation, created or re-scoped, with its refresh token --> an
 *     access token (access_ttl_s, default 30 min) valid on that portal's CRM routes
 *   DELETE /oauth/v1/refresh-tokens/{t} --> the refresh token is gone; access tokens
 *     already issued keep working until they expire (HubSpot's documented behaviour)
 *
 * Everything runs under hs.lock: the write lock for anything that issues, consumes or
 * deletes, the read lock for checks and metadata.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "tests/sandbox/authorize.h"
#include "tests/sandbox/hubspot_internal.h"

#define HS_FORM_MAX     512                         /* one OAuth form/query parameter value */
#define HS_SCOPE_WORD   128                         /* one scope name */
#define HS_INSTALL_USER "sandbox.admin@example.com" /* the installing user, everywhere */
#define HS_INSTALL_UID  6000001

/* ---- apps and installations (hs.lock held) ------------------------------------------ */

/* The app's definition: the newest seeded record of client_id, or NULL. */
static struct hs_app *app_find(const char *client_id)
{
    for (struct hs_app *a = hs.apps; a && client_id; a = a->next)
        if (!a->from_flow && strcmp(a->client_id, client_id) == 0)
            return a;
    return NULL;
}

static int strings_have(const struct json_object *arr, const char *s, size_t n)
{
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        const char *x = json_object_get_string(json_object_array_get_idx(arr, i));
        if (strlen(x) == n && memcmp(x, s, n) == 0)
            return 1;
    }
    return 0;
}

static struct json_object *copy_or_null(struct json_object *o)
{
    struct json_object *c = NULL;
    if (o && json_object_deep_copy(o, &c, NULL) != 0)
        c = NULL;
    return c;
}

static char *new_refresh_token(void)
{
    char uuid[37], out[48];
    hs_uuid4(uuid);
    snprintf(out, sizeof(out), "na1-%s", uuid);
    return strdup(out);
}

/* The consent flow's installation of def's app in portal p, created on first use; its
 * scopes become `granted` (borrowed) and a deleted refresh token is replaced. NULL when
 * out of memory. Write lock. */
static struct hs_app *install_for(const struct hs_app *def, struct hs_portal *p,
                                  struct json_object *granted)
{
    struct hs_app *a = hs.apps;
    while (a && !(a->from_flow && a->portal == p && strcmp(a->client_id, def->client_id) == 0))
        a = a->next;
    if (!a) {
        if (!(a = calloc(1, sizeof(*a))))
            return NULL;
        a->client_id = strdup(def->client_id);
        a->client_secret = strdup(def->client_secret);
        a->name = def->name ? strdup(def->name) : NULL;
        if (!a->client_id || !a->client_secret || (def->name && !a->name)) {
            hs_app_free(a);
            return NULL;
        }
        a->app_id = def->app_id;
        a->from_flow = 1;
        a->portal = p;
        a->next = hs.apps;
        hs.apps = a;
    }
    json_object_put(a->scopes);
    a->scopes = copy_or_null(granted);
    if (!a->refresh_token)
        a->refresh_token = new_refresh_token();
    return a->refresh_token ? a : NULL;
}

/* A token's or installation's scopes as answered: NULL (every scope) shows the two every
 * OAuth app holds. Caller puts. */
static struct json_object *scopes_out(struct json_object *scopes)
{
    struct json_object *sc = json_object_new_array();
    for (size_t i = 0; scopes && i < json_object_array_length(scopes); i++)
        json_object_array_add(sc,
                              jstr(json_object_get_string(json_object_array_get_idx(scopes, i))));
    if (!scopes) {
        json_object_array_add(sc, jstr("oauth"));
        json_object_array_add(sc, jstr("automation"));
    }
    return sc;
}

/* ---- token endpoint ------------------------------------------------------------------ */

static const char *oauth_param(const struct sb_request *req, const char *key, char *buf,
                               size_t bufsz)
{
    if (sb_form_get(req->body, key, buf, bufsz) == 0)
        return buf;
    const char *q = sb_req_query(req, key); /* v1 also takes parameters in the query */
    if (!q || strlen(q) >= bufsz)
        return NULL;
    snprintf(buf, bufsz, "%s", q);
    return buf;
}

static void oauth_error(struct sb_response *resp, const char *status, const char *msg)
{
    char cid[37];
    struct json_object *o = json_object_new_object();
    hs_uuid4(cid);
    jadd(o, "status", jstr(status));
    jadd(o, "message", jstr(msg));
    jadd(o, "correlationId", jstr(cid));
    sb_resp_json(resp, 400, o);
}

/* Access token and answer for installation a (§1: tokens of 150–300 characters). */
static void issue(struct hs_app *a, struct sb_response *resp)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char tok[301];
    size_t len = 150 + (size_t)(sb_rand() % 151);
    memcpy(tok, "CN", 2);
    for (size_t i = 2; i < len; i++)
        tok[i] = alphabet[sb_rand() % 64];
    tok[len] = '\0';
    if (hs_token_add(a->portal, tok, TOK_OAUTH,
                     clock_wall_ms() + (int64_t)hs_opt.access_ttl_s * 1000, copy_or_null(a->scopes),
                     a)) {
        hs_error(resp, 500, "INTERNAL_ERROR", "out of memory", NULL);
        return;
    }
    struct json_object *o = json_object_new_object();
    jadd(o, "token_type", jstr("bearer"));
    jadd(o, "refresh_token", jstr(a->refresh_token)); /* same token back (§9 #17) */
    jadd(o, "access_token", jstr(tok));
    jadd(o, "hub_id", json_object_new_int64(a->portal->id));
    jadd(o, "scopes", scopes_out(a->scopes));
    jadd(o, "expires_in", json_object_new_int(hs_opt.access_ttl_s));
    snprintf(resp->tenant, sizeof(resp->tenant), "%lld", (long long)a->portal->id);
    sb_resp_json(resp, 200, o);
}

/* A seeded auth code (no redirect binding, no expiry) of any seeded record of the app:
 * consumed, its installation returned; NULL when there is none. */
static struct hs_app *seeded_code(const char *client_id, const char *code)
{
    for (struct hs_app *a = hs.apps; a; a = a->next) {
        size_t n = a->codes ? json_object_array_length(a->codes) : 0;
        if (a->from_flow || strcmp(a->client_id, client_id) != 0)
            continue;
        for (size_t i = 0; i < n; i++)
            if (strcmp(json_object_get_string(json_object_array_get_idx(a->codes, i)), code) == 0) {
                json_object_array_del_idx(a->codes, i, 1); /* codes are single use */
                return a->refresh_token ? a : NULL;
            }
    }
    return NULL;
}

/* authorization_code: a code of the consent page needs the client and exact redirect_uri
 * it was issued for, and works once before it expires; a seeded code works once. */
static struct hs_app *code_grant(const struct sb_request *req, struct sb_response *resp,
                                 const struct hs_app *def)
{
    char code[HS_FORM_MAX], uri[AZ_URI_MAX + 1];
    struct json_object *rec, *v;
    const char *c = oauth_param(req, "code", code, sizeof(code));
    const char *u = oauth_param(req, "redirect_uri", uri, sizeof(uri));

    if (c && hs.az_codes && json_object_object_get_ex(hs.az_codes, c, &rec)) {
        json_object_object_get_ex(rec, "client_id", &v);
        if (strcmp(json_object_get_string(v), def->client_id) != 0) {
            oauth_error(resp, "BAD_AUTH_CODE", "missing or unknown auth code");
            return NULL;
        }
        json_object_object_get_ex(rec, "redirect_uri", &v);
        if (!u || strcmp(u, json_object_get_string(v)) != 0) {
            oauth_error(resp, "BAD_REDIRECT_URI",
                        "redirect_uri does not match the one the auth code was issued for");
            return NULL;
        }
        json_object_object_get_ex(rec, "expires", &v);
        if (json_object_get_int64(v) <= clock_mono_ms()) {
            json_object_object_del(hs.az_codes, c);
            oauth_error(resp, "EXPIRED_AUTH_CODE", "auth code is expired");
            return NULL;
        }
        json_object_object_get_ex(rec, "portal", &v);
        struct hs_portal *p = hs_portal_find(json_object_get_int64(v));
        json_object_object_get_ex(rec, "scopes", &v);
        struct hs_app *a = p ? install_for(def, p, v) : NULL;
        json_object_object_del(hs.az_codes, c); /* single use, even when it failed */
        if (!a)
            hs_error(resp, 500, "INTERNAL_ERROR", "the portal is gone or out of memory", NULL);
        return a;
    }
    struct hs_app *a = c ? seeded_code(def->client_id, c) : NULL;
    if (!a)
        oauth_error(resp, "BAD_AUTH_CODE", "missing or unknown auth code");
    return a;
}

static void h_token(const struct sb_request *req, struct sb_response *resp)
{
    char grant[64], cid[HS_FORM_MAX], secret[HS_FORM_MAX], rt[HS_FORM_MAX];
    const char *g = oauth_param(req, "grant_type", grant, sizeof(grant));
    const char *ci = oauth_param(req, "client_id", cid, sizeof(cid));
    const char *cs = oauth_param(req, "client_secret", secret, sizeof(secret));
    if (!g || (strcmp(g, "refresh_token") != 0 && strcmp(g, "authorization_code") != 0)) {
        oauth_error(resp, "BAD_GRANT_TYPE", "missing or unknown grant type");
        return;
    }
    pthread_rwlock_wrlock(&hs.lock);
    struct hs_app *def = app_find(ci), *a = NULL;
    if (!def) {
        oauth_error(resp, "BAD_CLIENT_ID", "missing or invalid client_id");
        goto out;
    }
    if (!cs || strcmp(def->client_secret, cs) != 0) {
        oauth_error(resp, "BAD_CLIENT_SECRET", "missing or invalid client_secret");
        goto out;
    }
    if (strcmp(g, "refresh_token") == 0) {
        const char *r = oauth_param(req, "refresh_token", rt, sizeof(rt));
        /* the refresh token identifies the installation; it must belong to this app */
        for (a = hs.apps; a; a = a->next)
            if (r && a->refresh_token && strcmp(a->refresh_token, r) == 0 &&
                strcmp(a->client_id, def->client_id) == 0)
                break;
        if (!a)
            oauth_error(resp, "BAD_REFRESH_TOKEN", "missing or unknown refresh token");
    } else {
        a = code_grant(req, resp, def);
    }
    if (a) {
        if (strcmp(g, "refresh_token") == 0)
            a->refreshes++;
        else
            a->code_grants++;
        issue(a, resp);
    }
out:
    pthread_rwlock_unlock(&hs.lock);
}

/* ---- token metadata ------------------------------------------------------------------ */

static void add_identity(struct json_object *o, const char *token, const struct hs_app *a,
                         struct json_object *scopes)
{
    char domain[64];
    snprintf(domain, sizeof(domain), "portal-%lld.example.com", (long long)a->portal->id);
    jadd(o, "token", jstr(token));
    jadd(o, "user", jstr(HS_INSTALL_USER));
    jadd(o, "hub_domain", jstr(domain));
    jadd(o, "scopes", scopes_out(scopes));
    jadd(o, "hub_id", json_object_new_int64(a->portal->id));
}

/* GET /oauth/v1/access-tokens/{token}: a live OAuth access token, else 404. Read lock. */
static void h_access_info(const char *token, struct sb_response *resp)
{
    const struct hs_token *t = strlen(token) <= HS_TOKEN_MAX ? hs_token_find(token) : NULL;
    int64_t left = t ? t->expires_ms - clock_wall_ms() : 0;
    if (!t || t->kind != TOK_OAUTH || !t->app || left <= 0) {
        hs_error(resp, 404, "OBJECT_NOT_FOUND", "The access token does not exist or has expired",
                 NULL);
        return;
    }
    struct json_object *o = json_object_new_object();
    add_identity(o, token, t->app, t->scopes);
    jadd(o, "app_id", json_object_new_int64(t->app->app_id));
    jadd(o, "expires_in", json_object_new_int64(left / 1000));
    jadd(o, "user_id", json_object_new_int(HS_INSTALL_UID));
    jadd(o, "token_type", jstr("access"));
    snprintf(resp->tenant, sizeof(resp->tenant), "%lld", (long long)t->portal->id);
    sb_resp_json(resp, 200, o);
}

/* GET|DELETE /oauth/v1/refresh-tokens/{token}. Write lock. */
static void h_refresh(const struct sb_request *req, const char *token, struct sb_response *resp)
{
    struct hs_app *a = hs.apps;
    while (a && !(a->refresh_token && strcmp(a->refresh_token, token) == 0))
        a = a->next;
    if (!a) {
        hs_error(resp, 404, "OBJECT_NOT_FOUND", "The refresh token does not exist", NULL);
        return;
    }
    snprintf(resp->tenant, sizeof(resp->tenant), "%lld", (long long)a->portal->id);
    if (strcmp(req->method, "DELETE") == 0) {
        free(a->refresh_token);
        a->refresh_token = NULL;
        sb_resp_json(resp, 204, NULL);
        return;
    }
    struct json_object *o = json_object_new_object();
    add_identity(o, token, a, a->scopes);
    jadd(o, "client_id", jstr(a->client_id));
    jadd(o, "user_id", json_object_new_int(HS_INSTALL_UID));
    jadd(o, "token_type", jstr("refresh"));
    sb_resp_json(resp, 200, o);
}

void hs_oauth_handle(const struct sb_request *req, struct sb_response *resp,
                     enum hs_oauth_route route, const char *token)
{
    switch (route) {
    case HS_OAUTH_TOKEN:
        h_token(req, resp);
        break;
    case HS_OAUTH_ACCESS:
        pthread_rwlock_rdlock(&hs.lock);
        h_access_info(token, resp);
        pthread_rwlock_unlock(&hs.lock);
        break;
    case HS_OAUTH_REFRESH:
        pthread_rwlock_wrlock(&hs.lock);
        h_refresh(req, token, resp);
        pthread_rwlock_unlock(&hs.lock);
        break;
    }
}

/* ---- the consent page's side (authorize.h) ------------------------------------------- */

/* Add each space-separated word of list to *granted (no repeats); every word must be in
 * one of the allowed arrays unless both are NULL (an app seeded without scopes takes any).
 * -1 with errstr naming the first word that is not. */
static int grant_words(const char *list, const struct hs_app *def, struct json_object *granted,
                       char *errstr, size_t errsz)
{
    int any = !def->scopes && !def->optional_scopes;
    for (const char *p = list ? list : ""; *p;) {
        size_t n = strcspn(p, " ");
        if (n >= HS_SCOPE_WORD) {
            snprintf(errstr, errsz, "A scope name is longer than %d characters", HS_SCOPE_WORD);
            return -1;
        }
        if (n && !any && !strings_have(def->scopes, p, n) &&
            !strings_have(def->optional_scopes, p, n)) {
            snprintf(errstr, errsz, "The app is not configured for the scope '%.*s'", (int)n, p);
            return -1;
        }
        if (n && !strings_have(granted, p, n)) {
            char word[HS_SCOPE_WORD];
            memcpy(word, p, n);
            word[n] = '\0';
            json_object_array_add(granted, jstr(word));
        }
        p += n + (p[n] == ' ');
    }
    return 0;
}

enum az_verdict hubspot_az_check(const char *client_id, const char *redirect_uri, const char *scope,
                                 const char *optional_scope, char *name, size_t namesz,
                                 struct json_object **granted, char *errstr, size_t errsz)
{
    enum az_verdict v = AZ_BAD_SCOPE;
    struct json_object *g = json_object_new_array();
    hs_init();
    pthread_rwlock_rdlock(&hs.lock);
    const struct hs_app *def = app_find(client_id);
    if (!def) {
        snprintf(errstr, errsz, "No app has the client_id '%s'", client_id ? client_id : "");
        v = AZ_BAD_CLIENT;
        goto out;
    }
    snprintf(name, namesz, "%s", def->name ? def->name : def->client_id);
    if (!redirect_uri || !strings_have(def->redirect_uris, redirect_uri, strlen(redirect_uri))) {
        /* HubSpot's words, as users report them */
        snprintf(errstr, errsz,
                 "Authorization failed as the redirect URL '%s' doesn't match the app's "
                 "registered redirect URL",
                 redirect_uri ? redirect_uri : "");
        v = AZ_BAD_REDIRECT;
        goto out;
    }
    if (!scope || !scope[0]) {
        snprintf(errstr, errsz, "The scope parameter is missing");
        goto out;
    }
    if (grant_words(scope, def, g, errstr, errsz) < 0)
        goto out;
    for (size_t i = 0; def->scopes && i < json_object_array_length(def->scopes); i++) {
        const char *req = json_object_get_string(json_object_array_get_idx(def->scopes, i));
        if (!strings_have(g, req, strlen(req))) {
            snprintf(errstr, errsz, "The scope parameter must include the app's scope '%s'", req);
            goto out;
        }
    }
    if (grant_words(optional_scope, def, g, errstr, errsz) < 0)
        goto out;
    v = AZ_OK;
out:
    pthread_rwlock_unlock(&hs.lock);
    if (v == AZ_OK)
        *granted = g;
    else
        json_object_put(g);
    return v;
}

static int portal_cmp(const void *a, const void *b)
{
    int64_t x = json_object_get_int64(*(struct json_object *const *)a);
    int64_t y = json_object_get_int64(*(struct json_object *const *)b);
    return x < y ? -1 : x > y;
}

struct json_object *hubspot_az_portals(int64_t only)
{
    struct json_object *ids = json_object_new_array(), *out = json_object_new_array();
    hs_init();
    pthread_rwlock_rdlock(&hs.lock);
    for (const struct hs_portal *p = hs.portals; p; p = p->next)
        if (!only || p->id == only)
            json_object_array_add(ids, json_object_new_int64(p->id));
    json_object_array_sort(ids, portal_cmp);
    for (size_t i = 0; i < json_object_array_length(ids); i++) {
        int64_t id = json_object_get_int64(json_object_array_get_idx(ids, i));
        struct json_object *e = json_object_new_object();
        jadd(e, "portalId", json_object_new_int64(id));
        jadd(e, "timeZone", jstr(hs_portal_find(id)->time_zone));
        json_object_array_add(out, e);
    }
    pthread_rwlock_unlock(&hs.lock);
    json_object_put(ids);
    return out;
}

/* Forget expired codes so the map stays bounded by the issue rate times their lifetime. */
static void purge_codes(int64_t now)
{
    struct json_object *dead = json_object_new_array(), *v;
    json_object_object_foreach(hs.az_codes, k, rec)
    {
        if (json_object_object_get_ex(rec, "expires", &v) && json_object_get_int64(v) <= now)
            json_object_array_add(dead, jstr(k));
    }
    for (size_t i = 0; i < json_object_array_length(dead); i++)
        json_object_object_del(hs.az_codes,
                               json_object_get_string(json_object_array_get_idx(dead, i)));
    json_object_put(dead);
}

int hubspot_az_code(const char *client_id, const char *redirect_uri, int64_t portal,
                    struct json_object *granted, int ttl_s, char *code, size_t codesz)
{
    int rc = -1;
    int64_t now = clock_mono_ms();
    if (codesz < AZ_CODE_MAX)
        return -1;
    hs_init();
    pthread_rwlock_wrlock(&hs.lock);
    if (hs_portal_find(portal) && app_find(client_id)) {
        struct json_object *rec = json_object_new_object();
        if (!hs.az_codes)
            hs.az_codes = json_object_new_object();
        purge_codes(now);
        hs_uuid4(code);
        jadd(rec, "client_id", jstr(client_id));
        jadd(rec, "redirect_uri", jstr(redirect_uri));
        jadd(rec, "portal", json_object_new_int64(portal));
        jadd(rec, "scopes", copy_or_null(granted));
        jadd(rec, "expires", json_object_new_int64(now + ttl_s * 1000LL));
        jadd(hs.az_codes, code, rec);
        rc = 0;
    }
    pthread_rwlock_unlock(&hs.lock);
    return rc;
}
