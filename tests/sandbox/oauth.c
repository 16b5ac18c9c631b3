/* oauth.c - Intuit's OAuth 2.0 token endpoint: POST /oauth2/v1/tokens/bearer.
 *
 * Tokens are realm-scoped: a seeded "connection" ties a realm to an app (client) and its
 * first refresh token. Refreshing gives a new access token (old access tokens stay valid
 * until they expire, as at Intuit) and, per reference §12 #17, the SAME refresh token
 * while it is younger than rotate_after, else a new one; the presented one then fails at
 * once with 400 invalid_grant (no grace period). A refresh token also dies when its
 * rolling lifetime (extended on every use) or the connection's hard cap runs out.
 *
 *   seeded/issued --refresh, age < rotate_after--> same token, expiry extended
 *        |
 *        +--refresh, age >= rotate_after--> new token issued; old one removed
 *                                            (-> invalid_grant)   [refresh_grant()]
 *
 * A connection is (realm, client): the authorization-code grant creates one (codes come
 * from the consent page, authorize.c, through oauth_az_code(), or from the seed), and
 * Intuit's revoke endpoint (POST /v2/oauth2/tokens/revoke, revoke_route()) ends one:
 * every refresh and access token of that realm and client is dropped, so a refresh
 * answers invalid_grant and the QBO API 401.
 *
 *   consent page --oauth_az_code()--> code (single use, expires, bound to client,
 *        redirect_uri, realm) --code_grant()--> refresh + access tokens
 *        --revoke_route()--> gone; a second use of the code also revokes what it issued
 *
 * State lives in json-c objects used as hash maps (token -> record): lookups are O(1)
 * and oauth_dump() is a deep copy. One mutex guards everything; no I/O under it.
 * Times are monotonic milliseconds except the hard cap, which is reported in seconds.
 */
#include "common/hash.h"
#include "common/clock.h"
#include "tests/sandbox/sandbox.h"
#include "tests/sandbox/intuit.h"
#include "tests/sandbox/authorize.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#define OAUTH_MAX_FORM    8192 /* token request body */
#define OAUTH_MAX_FIELD   4096 /* one decoded form value / credential */
#define OAUTH_PURGE_EVERY 1024
#define OAUTH_REVOKE_MAX  8192 /* revoke request body */

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static struct {
    int64_t access_ttl_ms;
    int64_t refresh_ttl_ms;
    int64_t rotate_after_ms; /* 0 = never rotate */
    int64_t hard_ttl_s;      /* connection hard cap from seeding */
    int access_token_len;
} g_cfg = {3600 * 1000LL, 8726400 * 1000LL, 86400 * 1000LL, 5LL * 365 * 86400, 900};

static struct json_object *g_clients; /* client_id -> {secret, name, redirect_uris: {uri: 1}} */
static struct json_object *g_refresh; /* refresh token -> {realm, client, issued, expires, hard} */
static struct json_object *g_access;  /* access token -> {realm, client, expires} */
/* auth code -> {realm, client, used, refresh} plus, for codes of the consent page,
 * {redirect_uri, expires}; seeded codes have neither (any redirect_uri, never expire). */
static struct json_object *g_codes;
static struct json_object *g_current; /* realm -> latest refresh token */
static int g_issued_since_purge;

/* ---- small helpers ------------------------------------------------------------------ */

void intuit_random_chars(char *buf, size_t bufsz, size_t n)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char rnd[256];
    size_t i = 0;

    if (n >= bufsz)
        n = bufsz - 1;
    while (i < n) {
        size_t chunk = n - i < sizeof(rnd) ? n - i : sizeof(rnd);
        if (getrandom(rnd, chunk, 0) != (ssize_t)chunk) {
            for (size_t k = 0; k < chunk; k++)
                rnd[k] = (unsigned char)rand();
        }
        for (size_t k = 0; k < chunk; k++)
            buf[i++] = al[rnd[k] % (sizeof(al) - 1)];
    }
    buf[n] = 0;
}

void intuit_tid(char *buf, size_t bufsz)
{
    /* sb_rand(): per-thread and lock-free; this runs for every response. */
    uint64_t a = sb_rand(), b = sb_rand();
    snprintf(buf, bufsz, "1-%08llx-%016llx%08llx", (unsigned long long)time(NULL),
             (unsigned long long)a, (unsigned long long)(b & 0xffffffffu));
}

static int64_t jint(struct json_object *o, const char *key)
{
    struct json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static const char *jstr(struct json_object *o, const char *key)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static void ensure_maps(void)
{
    if (!g_clients) {
        g_clients = json_object_new_object();
        g_refresh = json_object_new_object();
        g_access = json_object_new_object();
        g_codes = json_object_new_object();
        g_current = json_object_new_object();
    }
}

/* Delete every key of map whose record `dead` says so (keys are collected first: json-c
 * maps must not change while iterated). */
static void drop_where(struct json_object *map,
                       int (*dead)(struct json_object *rec, const void *arg), const void *arg)
{
    struct json_object *keys = json_object_new_array();
    json_object_object_foreach(map, k, v)
    {
        if (dead(v, arg))
            json_object_array_add(keys, json_object_new_string(k));
    }
    for (size_t i = 0; i < json_object_array_length(keys); i++)
        json_object_object_del(map, json_object_get_string(json_object_array_get_idx(keys, i)));
    json_object_put(keys);
}

/* A record with an "expires" (monotonic ms) not after *arg: access tokens, codes of the
 * consent page. */
static int expired(struct json_object *rec, const void *arg)
{
    return json_object_object_get_ex(rec, "expires", NULL) &&
           jint(rec, "expires") <= *(const int64_t *)arg;
}

static void new_access_token(const char *realm, const char *client, int64_t ttl_ms,
                             const char *fixed, char *out, size_t outsz)
{
    static const char hdr[] = "eyJlbmMiOiJBMTI4Q0JDLUhTMjU2IiwiYWxnIjoiZGlyIn0..";
    int64_t now = clock_mono_ms();
    struct json_object *rec = json_object_new_object();

    if (fixed) {
        snprintf(out, outsz, "%s", fixed);
    } else {
        size_t n = (size_t)g_cfg.access_token_len;
        if (n < sizeof(hdr) + 16)
            n = sizeof(hdr) + 16;
        if (n >= outsz)
            n = outsz - 1;
        memcpy(out, hdr, sizeof(hdr) - 1);
        intuit_random_chars(out + sizeof(hdr) - 1, outsz - (sizeof(hdr) - 1),
                            n - (sizeof(hdr) - 1));
    }
    json_object_object_add(rec, "realm", json_object_new_string(realm));
    json_object_object_add(rec, "client", json_object_new_string(client));
    json_object_object_add(rec, "expires", json_object_new_int64(now + ttl_ms));
    json_object_object_add(g_access, out, rec);
    if (++g_issued_since_purge >= OAUTH_PURGE_EVERY) {
        g_issued_since_purge = 0;
        drop_where(g_access, expired, &now); /* now and then, so the map stays bounded */
    }
}

static void new_refresh_token(const char *realm, const char *client, int64_t hard_epoch_s,
                              const char *fixed, char *out, size_t outsz)
{
    int64_t now = clock_mono_ms();
    struct json_object *rec = json_object_new_object();
    char rnd[24];

    if (fixed) {
        snprintf(out, outsz, "%s", fixed);
    } else {
        /* Shape of Intuit's tokens: RT1-<nn>-H0-<10 digits><20 lower-case alnum>. */
        intuit_random_chars(rnd, sizeof(rnd), 20);
        for (char *p = rnd; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        snprintf(out, outsz, "RT1-%02d-H0-%lld%s", (int)(now % 90) + 10,
                 (long long)(time(NULL) + g_cfg.refresh_ttl_ms / 1000), rnd);
    }
    json_object_object_add(rec, "realm", json_object_new_string(realm));
    json_object_object_add(rec, "client", json_object_new_string(client));
    json_object_object_add(rec, "issued", json_object_new_int64(now));
    json_object_object_add(rec, "expires", json_object_new_int64(now + g_cfg.refresh_ttl_ms));
    json_object_object_add(rec, "hard", json_object_new_int64(hard_epoch_s));
    json_object_object_add(g_refresh, out, rec);
    json_object_object_add(g_current, realm, json_object_new_string(out));
}

/* ---- request parsing ---------------------------------------------------------------- */

/* Base64 (either alphabet) into a NUL-terminated buffer: common/hash's strict decoder. */
static int b64_decode(const char *in, char *out, size_t outsz)
{
    size_t n = 0;

    if (outsz == 0 || hash_base64_decode(in, strlen(in), (unsigned char *)out, outsz - 1, &n) < 0)
        return -1;
    out[n] = 0;
    return 0;
}

/* Client credentials from HTTP Basic or client_secret_post; 1 when they match a client. */
static int client_auth(const struct sb_request *req, char *client, size_t clientsz)
{
    const char *auth = sb_req_header(req, "Authorization");
    char dec[OAUTH_MAX_FIELD], secret[OAUTH_MAX_FIELD];
    const char *want;

    if (auth && strncasecmp(auth, "Basic ", 6) == 0) {
        const char *b = auth + 6;
        while (*b == ' ')
            b++;
        char *colon;
        if (strlen(b) >= sizeof(dec) || b64_decode(b, dec, sizeof(dec)) < 0 ||
            !(colon = strchr(dec, ':')))
            return 0;
        *colon = 0;
        snprintf(client, clientsz, "%s", dec);
        snprintf(secret, sizeof(secret), "%s", colon + 1);
    } else if (sb_form_get(req->body, "client_id", client, clientsz) < 0 ||
               sb_form_get(req->body, "client_secret", secret, sizeof(secret)) < 0) {
        return 0;
    }
    struct json_object *rec;
    want = json_object_object_get_ex(g_clients, client, &rec) ? jstr(rec, "secret") : NULL;
    return want && strcmp(want, secret) == 0;
}

/* ---- responses -------------------------------------------------------------------- */

static void reply_error(struct sb_response *resp, int status, const char *error)
{
    char body[128];
    snprintf(body, sizeof(body), "{\"error\":\"%s\"}", error);
    sb_resp_text(resp, status, "application/json;charset=utf-8", body);
}

static void reply_tokens(const struct sb_request *req, struct sb_response *resp, const char *access,
                         const char *refresh)
{
    struct json_object *rec, *o = json_object_new_object();
    int64_t now = clock_mono_ms();
    const char *hard_hdr = sb_req_header(req, "x-include-refresh-token-hard-expires-in");

    json_object_object_get_ex(g_refresh, refresh, &rec);
    json_object_object_add(o, "token_type", json_object_new_string("bearer"));
    json_object_object_add(o, "access_token", json_object_new_string(access));
    json_object_object_add(o, "expires_in", json_object_new_int64(g_cfg.access_ttl_ms / 1000));
    json_object_object_add(o, "refresh_token", json_object_new_string(refresh));
    json_object_object_add(o, "x_refresh_token_expires_in",
                           json_object_new_int64((jint(rec, "expires") - now + 999) / 1000));
    if (hard_hdr && strcasecmp(hard_hdr, "true") == 0) {
        int64_t left = jint(rec, "hard") - (int64_t)time(NULL);
        json_object_object_add(o, "x_refresh_token_hard_expires_in",
                               json_object_new_int64(left > 0 ? left : 0));
    }
    sb_resp_text(resp, 200, "application/json;charset=utf-8",
                 json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
}

static void refresh_grant(const struct sb_request *req, struct sb_response *resp,
                          const char *client)
{
    char token[OAUTH_MAX_FIELD], fresh[OAUTH_MAX_FIELD], access[2048];
    struct json_object *rec;
    int64_t now = clock_mono_ms();

    if (sb_form_get(req->body, "refresh_token", token, sizeof(token)) < 0 || !token[0]) {
        reply_error(resp, 400, "invalid_request");
        return;
    }
    if (!json_object_object_get_ex(g_refresh, token, &rec) ||
        strcmp(jstr(rec, "client"), client) != 0 || jint(rec, "expires") <= now ||
        jint(rec, "hard") <= (int64_t)time(NULL)) {
        reply_error(resp, 400, "invalid_grant");
        return;
    }
    char *realm = strdup(jstr(rec, "realm"));
    if (!realm) {
        reply_error(resp, 500, "server_error");
        return;
    }
    if (g_cfg.rotate_after_ms > 0 && now - jint(rec, "issued") >= g_cfg.rotate_after_ms) {
        int64_t hard = jint(rec, "hard");
        json_object_object_del(g_refresh, token); /* the old value dies at once */
        new_refresh_token(realm, client, hard, NULL, fresh, sizeof(fresh));
    } else {
        json_object_object_add(rec, "expires", json_object_new_int64(now + g_cfg.refresh_ttl_ms));
        snprintf(fresh, sizeof(fresh), "%s", token);
    }
    new_access_token(realm, client, g_cfg.access_ttl_ms, NULL, access, sizeof(access));
    reply_tokens(req, resp, access, fresh);
    free(realm);
}

/* authorization_code: a code works once; re-using it revokes what it issued. A code of
 * the consent page also needs the exact redirect_uri it was issued for, and expires. */
static void code_grant(const struct sb_request *req, struct sb_response *resp, const char *client)
{
    char code[OAUTH_MAX_FIELD], uri[OAUTH_MAX_FIELD], fresh[256], access[2048];
    struct json_object *rec;
    const char *bound;

    if (sb_form_get(req->body, "code", code, sizeof(code)) < 0 || !code[0]) {
        reply_error(resp, 400, "invalid_request");
        return;
    }
    if (!json_object_object_get_ex(g_codes, code, &rec) ||
        strcmp(jstr(rec, "client"), client) != 0) {
        reply_error(resp, 400, "invalid_grant");
        return;
    }
    if ((bound = jstr(rec, "redirect_uri")) &&
        (sb_form_get(req->body, "redirect_uri", uri, sizeof(uri)) < 0 || strcmp(uri, bound) != 0)) {
        reply_error(resp, 400, "invalid_grant");
        return;
    }
    if (json_object_object_get_ex(rec, "expires", NULL) &&
        jint(rec, "expires") <= clock_mono_ms()) {
        reply_error(resp, 400, "invalid_grant");
        return;
    }
    if (jint(rec, "used")) {
        const char *issued = jstr(rec, "refresh");
        if (issued)
            json_object_object_del(g_refresh, issued);
        reply_error(resp, 400, "invalid_grant");
        return;
    }
    const char *realm = jstr(rec, "realm");
    new_refresh_token(realm, client, (int64_t)time(NULL) + g_cfg.hard_ttl_s, NULL, fresh,
                      sizeof(fresh));
    json_object_object_add(rec, "used", json_object_new_int(1));
    json_object_object_add(rec, "refresh", json_object_new_string(fresh));
    new_access_token(realm, client, g_cfg.access_ttl_ms, NULL, access, sizeof(access));
    reply_tokens(req, resp, access, fresh);
}

struct connection {
    const char *realm, *client;
};

/* A token record of the connection *arg. */
static int of_connection(struct json_object *rec, const void *arg)
{
    const struct connection *c = arg;
    const char *r = jstr(rec, "realm"), *cl = jstr(rec, "client");
    return r && cl && strcmp(r, c->realm) == 0 && strcmp(cl, c->client) == 0;
}

/* The token of a revoke request: JSON {"token": "..."} (what intuit-oauth and Intuit's
 * Python client send) or a form field token=. NULL when there is none. */
static const char *revoke_token(const struct sb_request *req, char *buf, size_t bufsz)
{
    struct json_object *doc = json_tokener_parse(req->body), *v;
    const char *out = NULL;

    if (doc && json_object_object_get_ex(doc, "token", &v) &&
        json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 0 &&
        (size_t)json_object_get_string_len(v) < bufsz) {
        snprintf(buf, bufsz, "%s", json_object_get_string(v));
        out = buf;
    } else if (!doc && sb_form_get(req->body, "token", buf, bufsz) == 0 && buf[0]) {
        out = buf;
    }
    json_object_put(doc);
    return out;
}

/* POST /v2/oauth2/tokens/revoke: a refresh or access token of the authenticated client
 * ends its whole connection (realm, client). An unknown token is a 200 too (RFC 7009
 * §2.2: nothing left to revoke); another client's token is refused. Caller holds g_lock. */
static void revoke_route(const struct sb_request *req, struct sb_response *resp, const char *client)
{
    char token[OAUTH_MAX_FIELD], realm[SB_TENANT_MAX];
    struct json_object *rec = NULL, *cur;

    if (!revoke_token(req, token, sizeof(token))) {
        reply_error(resp, 400, "invalid_request");
        return;
    }
    if (!json_object_object_get_ex(g_refresh, token, &rec))
        json_object_object_get_ex(g_access, token, &rec);
    if (!rec) {
        sb_resp_text(resp, 200, NULL, NULL);
        return;
    }
    if (!jstr(rec, "client") || strcmp(jstr(rec, "client"), client) != 0) {
        reply_error(resp, 400, "invalid_request");
        return;
    }
    snprintf(realm, sizeof(realm), "%s", jstr(rec, "realm"));
    snprintf(resp->tenant, sizeof(resp->tenant), "%s", realm);
    struct connection conn = {realm, client};
    drop_where(g_refresh, of_connection, &conn);
    drop_where(g_access, of_connection, &conn);
    if (json_object_object_get_ex(g_current, realm, &cur) &&
        !json_object_object_get_ex(g_refresh, json_object_get_string(cur), NULL))
        json_object_object_del(g_current, realm);
    sb_resp_text(resp, 200, NULL, NULL);
}

void oauth_handle(const struct sb_request *req, struct sb_response *resp)
{
    char tid[INTUIT_TID_LEN], client[OAUTH_MAX_FIELD], grant[64];
    int revoke = strcmp(req->path, "/v2/oauth2/tokens/revoke") == 0;

    intuit_tid(tid, sizeof(tid));
    sb_resp_header(resp, "intuit_tid", "%s", tid);
    if (!revoke && strcmp(req->path, "/oauth2/v1/tokens/bearer") != 0) {
        reply_error(resp, 404, "not_found");
        return;
    }
    if (strcmp(req->method, "POST") != 0) {
        sb_resp_header(resp, "Allow", "POST");
        reply_error(resp, 405, "invalid_request");
        return;
    }
    if (req->body_len > (revoke ? OAUTH_REVOKE_MAX : OAUTH_MAX_FORM)) {
        reply_error(resp, 400, "invalid_request");
        return;
    }
    pthread_mutex_lock(&g_lock);
    ensure_maps();
    if (!client_auth(req, client, sizeof(client))) {
        reply_error(resp, 401, "invalid_client");
    } else if (revoke) {
        revoke_route(req, resp, client);
    } else if (sb_form_get(req->body, "grant_type", grant, sizeof(grant)) < 0) {
        reply_error(resp, 400, "invalid_request");
    } else if (strcmp(grant, "refresh_token") == 0) {
        refresh_grant(req, resp, client);
    } else if (strcmp(grant, "authorization_code") == 0) {
        code_grant(req, resp, client);
    } else {
        reply_error(resp, 400, "unsupported_grant_type");
    }
    pthread_mutex_unlock(&g_lock);
}

/* ---- the consent page's side (authorize.h) ----------------------------------------- */

enum az_verdict oauth_az_check(const char *client_id, const char *redirect_uri, char *name,
                               size_t namesz)
{
    struct json_object *rec, *set;
    enum az_verdict v = AZ_BAD_CLIENT;

    pthread_mutex_lock(&g_lock);
    ensure_maps();
    if (client_id && json_object_object_get_ex(g_clients, client_id, &rec)) {
        json_object_object_get_ex(rec, "redirect_uris", &set);
        v = redirect_uri && json_object_object_get_ex(set, redirect_uri, NULL) ? AZ_OK
                                                                               : AZ_BAD_REDIRECT;
        snprintf(name, namesz, "%s", jstr(rec, "name") ? jstr(rec, "name") : client_id);
    }
    pthread_mutex_unlock(&g_lock);
    return v;
}

int oauth_az_code(const char *client_id, const char *redirect_uri, const char *realm_id, int ttl_s,
                  char *code, size_t codesz)
{
    struct json_object *rec = json_object_new_object();
    char rnd[40];
    int64_t now = clock_mono_ms();

    if (codesz < AZ_CODE_MAX) {
        json_object_put(rec);
        return -1;
    }
    /* Shape of Intuit's codes: "AB11" + epoch seconds + random letters and digits. */
    intuit_random_chars(rnd, sizeof(rnd), 30);
    snprintf(code, codesz, "AB11%lld%s", (long long)time(NULL), rnd);
    json_object_object_add(rec, "realm", json_object_new_string(realm_id));
    json_object_object_add(rec, "client", json_object_new_string(client_id));
    json_object_object_add(rec, "redirect_uri", json_object_new_string(redirect_uri));
    json_object_object_add(rec, "expires", json_object_new_int64(now + ttl_s * 1000LL));
    pthread_mutex_lock(&g_lock);
    ensure_maps();
    drop_where(g_codes, expired, &now); /* bounded by the issue rate times the lifetime */
    json_object_object_add(g_codes, code, rec);
    pthread_mutex_unlock(&g_lock);
    return 0;
}

/* ---- access-token checks (qbo.c) -------------------------------------------------- */

enum oauth_token_state oauth_access_token_state(const char *realm_id, const char *token)
{
    struct json_object *rec;
    enum oauth_token_state st = OAUTH_TOKEN_UNKNOWN;

    if (!realm_id || !token)
        return st;
    pthread_mutex_lock(&g_lock);
    if (g_access && json_object_object_get_ex(g_access, token, &rec) &&
        strcmp(jstr(rec, "realm"), realm_id) == 0)
        st = jint(rec, "expires") > clock_mono_ms() ? OAUTH_TOKEN_VALID : OAUTH_TOKEN_EXPIRED;
    pthread_mutex_unlock(&g_lock);
    return st;
}

int oauth_access_token_valid(const char *realm_id, const char *bearer_token)
{
    return oauth_access_token_state(realm_id, bearer_token) == OAUTH_TOKEN_VALID;
}

/* ---- lifecycle / admin ------------------------------------------------------------ */

void oauth_reset(void)
{
    pthread_mutex_lock(&g_lock);
    json_object_put(g_clients);
    json_object_put(g_refresh);
    json_object_put(g_access);
    json_object_put(g_codes);
    json_object_put(g_current);
    g_clients = g_refresh = g_access = g_codes = g_current = NULL;
    ensure_maps();
    /* TTLs and the rotation period belong to the admin settings (oauth_set_config). */
    g_cfg.hard_ttl_s = 5LL * 365 * 86400;
    g_cfg.access_token_len = 900;
    pthread_mutex_unlock(&g_lock);
}

void oauth_set_config(int access_ttl_s, int refresh_ttl_s, int rotate_after_s)
{
    pthread_mutex_lock(&g_lock);
    if (access_ttl_s > 0)
        g_cfg.access_ttl_ms = access_ttl_s * 1000LL;
    if (refresh_ttl_s > 0)
        g_cfg.refresh_ttl_ms = refresh_ttl_s * 1000LL;
    if (rotate_after_s >= 0)
        g_cfg.rotate_after_ms = rotate_after_s * 1000LL;
    pthread_mutex_unlock(&g_lock);
}

static int cfg_int(struct json_object *opts, const char *key, int64_t min, int64_t max,
                   int64_t *out, char *errstr, size_t errsz)
{
    struct json_object *v;
    if (!json_object_object_get_ex(opts, key, &v))
        return 0;
    if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < min ||
        json_object_get_int64(v) > max) {
        snprintf(errstr, errsz, "oauth option %s: integer %lld..%lld expected", key, (long long)min,
                 (long long)max);
        return -1;
    }
    *out = json_object_get_int64(v);
    return 1;
}

int oauth_configure(struct json_object *opts, char *errstr, size_t errsz)
{
    static const char *const known[] = {"access_ttl_s",
                                        "refresh_ttl_s",
                                        "rotate_after_s",
                                        "rotate_after_ms",
                                        "hard_ttl_s",
                                        "access_token_len",
                                        NULL};
    int64_t v;
    int rc = 0;

    if (!json_object_is_type(opts, json_type_object)) {
        snprintf(errstr, errsz, "oauth options: object expected");
        return -1;
    }
    json_object_object_foreach(opts, key, val)
    {
        (void)val;
        int ok = 0;
        for (int i = 0; known[i]; i++)
            ok |= strcmp(known[i], key) == 0;
        if (!ok) {
            snprintf(errstr, errsz, "oauth options: unknown key \"%s\"", key);
            return -1;
        }
    }
    pthread_mutex_lock(&g_lock);
    if ((rc = cfg_int(opts, "access_ttl_s", 1, 100000000, &v, errstr, errsz)) > 0)
        g_cfg.access_ttl_ms = v * 1000;
    if (rc >= 0 && (rc = cfg_int(opts, "refresh_ttl_s", 1, 1000000000, &v, errstr, errsz)) > 0)
        g_cfg.refresh_ttl_ms = v * 1000;
    if (rc >= 0 && (rc = cfg_int(opts, "rotate_after_s", 0, 1000000000, &v, errstr, errsz)) > 0)
        g_cfg.rotate_after_ms = v * 1000;
    if (rc >= 0 &&
        (rc = cfg_int(opts, "rotate_after_ms", 0, 1000000000000LL, &v, errstr, errsz)) > 0)
        g_cfg.rotate_after_ms = v;
    if (rc >= 0 && (rc = cfg_int(opts, "hard_ttl_s", 1, 1000000000, &v, errstr, errsz)) > 0)
        g_cfg.hard_ttl_s = v;
    if (rc >= 0 && (rc = cfg_int(opts, "access_token_len", 64, 1800, &v, errstr, errsz)) > 0)
        g_cfg.access_token_len = (int)v;
    pthread_mutex_unlock(&g_lock);
    return rc < 0 ? -1 : 0;
}

/* The Intuit OAuth part of a seed document: doc.intuit_oauth ("oauth" alone would be
 * ambiguous next to HubSpot's OAuth). */
static struct json_object *seed_part(struct json_object *doc)
{
    struct json_object *part;
    return json_object_object_get_ex(doc, "intuit_oauth", &part) ? part : NULL;
}

/* One entry of intuit_oauth.clients: a new client needs client_secret; seeding a known
 * client_id replaces what is given (secret, name) and adds its redirect_uris. */
static int seed_client(struct json_object *c, size_t i, char *errstr, size_t errsz)
{
    const char *id = jstr(c, "client_id"), *secret = jstr(c, "client_secret");
    struct json_object *rec, *uris, *set, *name;

    if (!id || !id[0] || (!secret && !json_object_object_get_ex(g_clients, id, NULL))) {
        snprintf(errstr, errsz, "oauth.clients[%zu]: client_id and client_secret", i);
        return -1;
    }
    if (json_object_object_get_ex(c, "redirect_uris", &uris)) {
        int ok = json_object_is_type(uris, json_type_array);
        for (size_t k = 0; ok && k < json_object_array_length(uris); k++) {
            struct json_object *u = json_object_array_get_idx(uris, k);
            ok = json_object_is_type(u, json_type_string) && json_object_get_string_len(u) > 0 &&
                 json_object_get_string_len(u) <= AZ_URI_MAX;
        }
        if (!ok) {
            snprintf(errstr, errsz,
                     "oauth.clients[%zu]: redirect_uris must be an array of URIs (1..%d bytes)", i,
                     AZ_URI_MAX);
            return -1;
        }
    }
    if (json_object_object_get_ex(c, "name", &name) &&
        !json_object_is_type(name, json_type_string)) {
        snprintf(errstr, errsz, "oauth.clients[%zu]: name must be a string", i);
        return -1;
    }
    if (!json_object_object_get_ex(g_clients, id, &rec)) {
        rec = json_object_new_object();
        json_object_object_add(rec, "redirect_uris", json_object_new_object());
        json_object_object_add(g_clients, id, rec);
    }
    if (secret)
        json_object_object_add(rec, "secret", json_object_new_string(secret));
    if (name)
        json_object_object_add(rec, "name", json_object_new_string(json_object_get_string(name)));
    json_object_object_get_ex(rec, "redirect_uris", &set);
    for (size_t k = 0; uris && k < json_object_array_length(uris); k++)
        json_object_object_add(set, json_object_get_string(json_object_array_get_idx(uris, k)),
                               json_object_new_int(1));
    return 0;
}

int oauth_seed(struct json_object *doc, char *errstr, size_t errsz)
{
    struct json_object *part = seed_part(doc), *arr, *opts;
    char tok[2048];
    int rc = -1;

    if (!part)
        return 0;
    if (!json_object_is_type(part, json_type_object)) {
        snprintf(errstr, errsz, "oauth: object expected");
        return -1;
    }
    if (json_object_object_get_ex(part, "options", &opts) &&
        oauth_configure(opts, errstr, errsz) < 0)
        return -1;
    pthread_mutex_lock(&g_lock);
    ensure_maps();
    if (json_object_object_get_ex(part, "clients", &arr)) {
        for (size_t i = 0; i < json_object_array_length(arr); i++)
            if (seed_client(json_object_array_get_idx(arr, i), i, errstr, errsz) < 0)
                goto out;
    }
    if (json_object_object_get_ex(part, "connections", &arr)) {
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
            struct json_object *c = json_object_array_get_idx(arr, i);
            const char *realm = jstr(c, "realm_id"), *client = jstr(c, "client_id");
            const char *rt = jstr(c, "refresh_token"), *at = jstr(c, "access_token");
            const char *code = jstr(c, "auth_code");
            int64_t at_ttl = jint(c, "access_expires_in");
            if (!realm || !client || !json_object_object_get_ex(g_clients, client, NULL)) {
                snprintf(errstr, errsz,
                         "oauth.connections[%zu]: realm_id and a known client_id required", i);
                goto out;
            }
            if (rt)
                new_refresh_token(realm, client, (int64_t)time(NULL) + g_cfg.hard_ttl_s, rt, tok,
                                  sizeof(tok));
            if (at)
                new_access_token(realm, client, at_ttl > 0 ? at_ttl * 1000 : g_cfg.access_ttl_ms,
                                 at, tok, sizeof(tok));
            if (code) {
                struct json_object *rec = json_object_new_object();
                json_object_object_add(rec, "realm", json_object_new_string(realm));
                json_object_object_add(rec, "client", json_object_new_string(client));
                json_object_object_add(g_codes, code, rec);
            }
        }
    }
    rc = 0;
out:
    pthread_mutex_unlock(&g_lock);
    return rc;
}

struct json_object *oauth_dump(void)
{
    struct json_object *o = json_object_new_object(), *realms = json_object_new_object();
    struct json_object *clients = json_object_new_array(), *uris = json_object_new_object();
    int64_t now;

    pthread_mutex_lock(&g_lock);
    ensure_maps();
    now = clock_mono_ms();
    json_object_object_foreach(g_clients, id, crec)
    {
        struct json_object *set, *list = json_object_new_array();
        json_object_array_add(clients, json_object_new_string(id));
        json_object_object_get_ex(crec, "redirect_uris", &set);
        json_object_object_foreach(set, uri, one)
        {
            (void)one;
            json_object_array_add(list, json_object_new_string(uri));
        }
        json_object_object_add(uris, id, list);
    }
    json_object_object_foreach(g_current, realm, cur)
    {
        struct json_object *r = json_object_new_object(), *rec;
        int live_access = 0;
        const char *rt = json_object_get_string(cur);
        json_object_object_add(r, "refresh_token", json_object_new_string(rt));
        json_object_object_add(
            r, "refresh_token_valid",
            json_object_new_boolean(json_object_object_get_ex(g_refresh, rt, &rec) &&
                                    jint(rec, "expires") > now));
        json_object_object_foreach(g_access, at, arec)
        {
            (void)at;
            live_access += strcmp(jstr(arec, "realm"), realm) == 0 && jint(arec, "expires") > now;
        }
        json_object_object_add(r, "live_access_tokens", json_object_new_int(live_access));
        json_object_object_add(realms, realm, r);
    }
    json_object_object_add(o, "clients", clients);
    json_object_object_add(o, "redirect_uris", uris);
    json_object_object_add(o, "realms", realms);
    json_object_object_add(o, "access_ttl_s", json_object_new_int64(g_cfg.access_ttl_ms / 1000));
    json_object_object_add(o, "rotate_after_ms", json_object_new_int64(g_cfg.rotate_after_ms));
    pthread_mutex_unlock(&g_lock);
    return o;
}
