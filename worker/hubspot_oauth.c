/* hubspot_oauth.c - a portal's HubSpot OAuth install in Redis (see hubspot_oauth.h).
 *
 * The access token goes where the worker has always read a portal's token, so an
 * installed portal works with no change to the HubSpot client; the install's own facts
 * (refresh token, expiry, scopes) go into a hash beside it, in the same hash slot, and a
 * Lua script writes both at once.
 *
 * A refresh writes with a compare-and-set (lua_refreshed) on everything that says "this
 * is still the install we refreshed": the refresh token we sent, the install's time and
 * the access token we replace. `credentials hubspot` writes the private-app token and
 * then deletes the hash (two commands), so the last check covers the moment between.
 */
#include "worker/hubspot_oauth.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "worker/atrest.h"
#include "worker/hubspot.h"

#define HS_TOKEN_STORED_MAX   (ATREST_STORED_MAX(HUBSPOT_MAX_TOKEN) + 1)
#define HS_REFRESH_STORED_MAX (ATREST_STORED_MAX(HUBSPOT_OAUTH_REFRESH_MAX) + 1)

/* An install's two secrets as stored (sealed, or plain text without a key ring). */
struct stored_pair {
    char token[HS_TOKEN_STORED_MAX];
    char refresh[HS_REFRESH_STORED_MAX];
};

/* KEYS: token string, install hash; ARGV: access token, its expiry, refresh token (both
 * sealed), scopes, hub domain, now. */
static const char lua_store[] =
    "redis.call('SET', KEYS[1], ARGV[1])\n"
    "redis.call('DEL', KEYS[2])\n"
    "redis.call('HSET', KEYS[2], 'refresh_token', ARGV[3], 'access_expires_at_ms', ARGV[2],\n"
    "  'scopes', ARGV[4], 'hub_domain', ARGV[5], 'installed_at', ARGV[6], 'updated_at', ARGV[6])\n"
    "return 1\n";

/* KEYS: token string, install hash. The token, then the install's expiry, last write and
 * install time (nil when not installed). */
static const char lua_read[] =
    "local t = redis.call('GET', KEYS[1])\n"
    "local h = redis.call('HMGET', KEYS[2], 'access_expires_at_ms', 'updated_at', "
    "'installed_at')\n"
    "return {t, h[1], h[2], h[3], redis.call('EXISTS', KEYS[2])}\n";

/* KEYS: token string, install hash. The token and the install's refresh token, as stored. */
static const char lua_read_secrets[] =
    "return {redis.call('GET', KEYS[1]), redis.call('HGET', KEYS[2], 'refresh_token')}\n";

/* KEYS: token string, install hash; ARGV: refresh token sent, installed_at read, access
 * token replaced (both as stored: read back and opened first, since a token never seals
 * to the same text twice), new access token, its expiry, refresh token answered (both
 * sealed), now. */
static const char lua_refreshed[] =
    "if redis.call('HGET', KEYS[2], 'refresh_token') ~= ARGV[1] or\n"
    "   redis.call('HGET', KEYS[2], 'installed_at') ~= ARGV[2] or\n"
    "   redis.call('GET', KEYS[1]) ~= ARGV[3] then return 0 end\n"
    "redis.call('SET', KEYS[1], ARGV[4])\n"
    "redis.call('HSET', KEYS[2], 'access_expires_at_ms', ARGV[5], 'refresh_token', ARGV[6],\n"
    "  'updated_at', ARGV[7])\n"
    "return 1\n";

int hubspot_oauth_key(char *dst, size_t dstsz, const char *prefix, int64_t portal)
{
    int n =
        snprintf(dst, dstsz, "%s" HUBSPOT_OAUTH_KEY "{%" PRId64 "}", prefix ? prefix : "", portal);
    return n < 0 || (size_t)n >= dstsz ? -1 : 0;
}

static int keys_of(struct redis_conn *r, int64_t portal, char *tok, char *hash, size_t sz,
                   char *errstr, size_t errsz)
{
    if (portal <= 0 || hubspot_token_key(tok, sz, redis_conn_prefix(r), portal) < 0 ||
        hubspot_oauth_key(hash, sz, redis_conn_prefix(r), portal) < 0) {
        snprintf(errstr, errsz, "bad portal id or key prefix");
        return -1;
    }
    return 0;
}

int hubspot_oauth_store(struct redis_conn *r, int64_t portal, const struct hubspot_install *in,
                        char *errstr, size_t errsz)
{
    char tk[REDIS_MAX_KEY + 1], hk[REDIS_MAX_KEY + 1], exp[24], now[24];
    const char *keys[2] = {tk, hk};
    const char *args[6] = {NULL,
                           exp,
                           NULL,
                           in->scopes ? in->scopes : "",
                           in->hub_domain ? in->hub_domain : "",
                           now};
    struct redis_script s;
    struct stored_pair *sp = NULL;
    redisReply *rep = NULL;

    if (keys_of(r, portal, tk, hk, sizeof tk, errstr, errsz) < 0)
        return -1;
    if (!in->access_token || !*in->access_token || strlen(in->access_token) > HUBSPOT_MAX_TOKEN ||
        !in->refresh_token || !*in->refresh_token ||
        strlen(in->refresh_token) > HUBSPOT_OAUTH_REFRESH_MAX ||
        strlen(args[3]) > HUBSPOT_OAUTH_SCOPES_MAX || strlen(args[4]) > HUBSPOT_OAUTH_DOMAIN_MAX) {
        snprintf(errstr, errsz, "an install's token, scopes or domain is empty or too long");
        return -1;
    }
    snprintf(exp, sizeof exp, "%lld", (long long)in->access_expires_at_ms);
    snprintf(now, sizeof now, "%lld", (long long)clock_wall_ms());
    if (!(sp = malloc(sizeof *sp))) {
        snprintf(errstr, errsz, "out of memory");
        return -1;
    }
    if (atrest_seal(r, tk, "", in->access_token, sp->token, sizeof sp->token, errstr, errsz) ==
            0 &&
        atrest_seal(r, hk, "refresh_token", in->refresh_token, sp->refresh, sizeof sp->refresh,
                    errstr, errsz) == 0 &&
        redis_script_init(&s, lua_store, errstr, errsz) == 0) {
        args[0] = sp->token;
        args[2] = sp->refresh;
        rep = redis_eval(r, &s, 2, keys, 6, args, NULL, errstr, errsz);
    }
    explicit_bzero(sp, sizeof *sp);
    free(sp);
    if (!rep)
        return -1;
    freeReplyObject(rep);
    return 0;
}

static int64_t int_of(const redisReply *e)
{
    return e && e->type == REDIS_REPLY_STRING ? strtoll(e->str, NULL, 10) : 0;
}

int hubspot_oauth_status_get(struct redis_conn *r, int64_t portal, struct hubspot_oauth_status *st,
                             char *errstr, size_t errsz)
{
    char tk[REDIS_MAX_KEY + 1], hk[REDIS_MAX_KEY + 1];
    redisReply *rep, *len = NULL;
    int rc = -1;

    if (keys_of(r, portal, tk, hk, sizeof tk, errstr, errsz) < 0 ||
        !(rep = redis_command(r, errstr, errsz,
                              "HMGET %s access_expires_at_ms installed_at hub_domain", hk)))
        return -1;
    if (!(len = redis_command(r, errstr, errsz, "HSTRLEN %s refresh_token", hk)))
        goto out;
    memset(st, 0, sizeof *st);
    rc = 0;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3) {
        st->access_expires_at_ms = int_of(rep->element[0]);
        st->installed_at_ms = int_of(rep->element[1]);
        if (rep->element[2]->type == REDIS_REPLY_STRING)
            snprintf(st->hub_domain, sizeof st->hub_domain, "%s", rep->element[2]->str);
        for (size_t i = 0; i < 3; i++)
            rc |= rep->element[i]->type != REDIS_REPLY_NIL;
    }
    st->has_refresh_token = len->type == REDIS_REPLY_INTEGER && len->integer > 0;
    rc |= st->has_refresh_token;
out:
    freeReplyObject(rep);
    if (len)
        freeReplyObject(len);
    return rc;
}

int hubspot_oauth_forget(struct redis_conn *r, int64_t portal, char *errstr, size_t errsz)
{
    char tk[REDIS_MAX_KEY + 1], hk[REDIS_MAX_KEY + 1];
    redisReply *rep;

    if (keys_of(r, portal, tk, hk, sizeof tk, errstr, errsz) < 0 ||
        !(rep = redis_command(r, errstr, errsz, "DEL %s", hk)))
        return -1;
    freeReplyObject(rep);
    return 0;
}

/* ---- HubSpot's token endpoint ------------------------------------------------------ */

static void copy_str(struct json_object *doc, const char *key, char *dst, size_t dstsz)
{
    const char *v;

    if (doc && json_get_str(doc, key, &v) == JGET_OK && strlen(v) < dstsz)
        memcpy(dst, v, strlen(v) + 1);
}

void hubspot_oauth_join_scopes(struct json_object *doc, char *dst, size_t dstsz)
{
    struct json_object *arr;
    size_t n = 0;

    if (json_get_array(doc, "scopes", &arr) != JGET_OK)
        return;
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        const char *s;
        size_t l;

        if (json_val_str(json_object_array_get_idx(arr, i), &s) != JGET_OK ||
            (l = strlen(s)) == 0 || n + l + 2 > dstsz)
            continue;
        n += (size_t)snprintf(dst + n, dstsz - n, "%s%s", n ? " " : "", s);
    }
}

enum hubspot_token_result hubspot_oauth_token(struct http_client *http,
                                              const struct hubspot_oauth_app *app,
                                              const struct http_param *grant, size_t ngrant,
                                              struct hubspot_token_reply *out)
{
    struct http_param form[8];
    char url[2048 + 32], e[128];
    const struct http_header accept[] = {{"Accept", "application/json"}};
    struct http_request rq = {.method = HTTP_POST,
                              .url = url,
                              .headers = accept,
                              .nheaders = 1,
                              .form = form,
                              .nform = ngrant + 2};
    struct http_response resp;
    struct json_object *doc = NULL;
    enum hubspot_token_result res = HUBSPOT_TOKEN_DOWN;
    const char *at, *rt;

    memset(out, 0, sizeof *out);
    if (ngrant + 2 > sizeof form / sizeof *form ||
        snprintf(url, sizeof url, "%s/oauth/v1/token", app->base_url) >= (int)sizeof url) {
        out->he = HTTP_EOTHER;
        snprintf(out->detail, sizeof out->detail, "bad token endpoint call");
        return HUBSPOT_TOKEN_DOWN;
    }
    memcpy(form, grant, ngrant * sizeof *grant);
    form[ngrant] = (struct http_param){"client_id", app->client_id};
    form[ngrant + 1] = (struct http_param){"client_secret", app->client_secret};
    http_response_init(&resp);
    out->he = http_client_do(http, &rq, &resp, out->detail, sizeof out->detail);
    out->status = out->he == HTTP_OK ? resp.status : 0;
    out->retry_after_ms = resp.retry_after_ms > 0 ? resp.retry_after_ms : 0;
    if (out->he != HTTP_OK)
        goto out;
    if (resp.body_len <= HUBSPOT_OAUTH_ANSWER_MAX)
        doc = json_parse_strict(resp.body, resp.body_len, 8, e, sizeof e);
    if (doc && !json_object_is_type(doc, json_type_object)) {
        json_object_put(doc);
        doc = NULL;
    }
    copy_str(doc, "status", out->error, sizeof out->error);
    if (!out->error[0] || strcmp(out->error, "error") == 0)
        copy_str(doc, "error", out->error, sizeof out->error);
    copy_str(doc, "message", out->message, sizeof out->message);
    if (out->status >= 500 || out->status == 429 || (out->status == 200 && !doc))
        goto out;
    res = HUBSPOT_TOKEN_REFUSED;
    if (out->status != 200)
        goto out;
    out->error[0] = out->message[0] = '\0';
    res = HUBSPOT_TOKEN_BAD_ANSWER;
    if (json_get_str(doc, "access_token", &at) != JGET_OK || !*at ||
        strlen(at) >= sizeof out->access || json_get_str(doc, "refresh_token", &rt) != JGET_OK ||
        !*rt || strlen(rt) >= sizeof out->refresh)
        goto out;
    memcpy(out->access, at, strlen(at) + 1);
    memcpy(out->refresh, rt, strlen(rt) + 1);
    if (json_get_int64(doc, "expires_in", 1, 86400 * 365, &out->expires_in_s) != JGET_OK)
        out->expires_in_s = 1800;
    if (json_get_int64_lenient(doc, "hub_id", 1, INT64_MAX, &out->portal) != JGET_OK)
        out->portal = 0;
    hubspot_oauth_join_scopes(doc, out->scopes, sizeof out->scopes);
    res = HUBSPOT_TOKEN_OK;
out:
    json_object_put(doc); /* NULL-safe */
    if (resp.body)
        explicit_bzero(resp.body, resp.body_len);
    http_response_release(&resp);
    return res;
}

/* ---- the portal's token and its refresh ------------------------------------------------ */

/* A stored secret (reply v) opened into dst; one stored in plain text by an older version
 * re-written sealed. 0, 1 when it is stored but unusable (does not open, too long), -1
 * with errstr when the key ring lacks its key (configuration: retried) or Redis failed. */
static int open_secret(struct redis_conn *r, int64_t portal, const char *key, const char *field,
                       const redisReply *v, char *dst, size_t dstsz, char *errstr, size_t errsz)
{
    char raw[HS_TOKEN_STORED_MAX], e[256];
    int rc = 0;

    if (v->len >= sizeof raw || strlen(v->str) != v->len) {
        snprintf(errstr, errsz, "stored value too long or not text");
        return 1;
    }
    memcpy(raw, v->str, v->len + 1);
    switch (atrest_open(r, key, field, raw, v->len, dst, dstsz, errstr, errsz)) {
    case ATREST_OK:
        break;
    case ATREST_UNSEALED:
        if (atrest_migrate(r, key, field, dst, raw, sizeof raw, e, sizeof e) == 1)
            log_info("hubspot: re-wrote portal %" PRId64 "'s %s encrypted", portal,
                     *field ? field : "token");
        break;
    case ATREST_ENOKEY:
        rc = -1;
        break;
    default:
        log_error("hubspot: the stored %s of portal %" PRId64 " does not open: %s",
                  *field ? field : "token", portal, errstr);
        rc = 1;
        break;
    }
    explicit_bzero(raw, sizeof raw);
    return rc;
}

int hubspot_oauth_token_get(struct redis_conn *r, int64_t portal, struct hubspot_portal_token *out,
                            char *errstr, size_t errsz)
{
    char tk[REDIS_MAX_KEY + 1], hk[REDIS_MAX_KEY + 1];
    const char *keys[2] = {tk, hk};
    struct redis_script s;
    redisReply *rep, *t;
    int rc = 0;

    memset(out, 0, sizeof *out);
    if (keys_of(r, portal, tk, hk, sizeof tk, errstr, errsz) < 0 ||
        redis_script_init(&s, lua_read, errstr, errsz) < 0 ||
        !(rep = redis_eval(r, &s, 2, keys, 0, NULL, NULL, errstr, errsz)))
        return -1;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 5) {
        snprintf(errstr, errsz, "unexpected reply reading the portal's token");
        freeReplyObject(rep);
        return -1;
    }
    t = rep->element[0];
    if (t->type == REDIS_REPLY_STRING && t->len > 0)
        rc = open_secret(r, portal, tk, "", t, out->token, sizeof out->token, errstr, errsz);
    out->expires_at_ms = int_of(rep->element[1]);
    out->updated_at_ms = int_of(rep->element[2]);
    out->installed_at_ms = int_of(rep->element[3]);
    out->oauth = rep->element[4]->type == REDIS_REPLY_INTEGER && rep->element[4]->integer == 1;
    freeReplyObject(rep);
    return rc;
}

int hubspot_oauth_refresh_token_get(struct redis_conn *r, int64_t portal, char *buf, size_t bufsz,
                                    char *errstr, size_t errsz)
{
    char tk[REDIS_MAX_KEY + 1], hk[REDIS_MAX_KEY + 1], e[256];
    redisReply *rep;
    int rc;

    buf[0] = '\0';
    if (keys_of(r, portal, tk, hk, sizeof tk, errstr, errsz) < 0 ||
        !(rep = redis_command(r, errstr, errsz, "HGET %s refresh_token", hk)))
        return -1;
    rc = rep->type == REDIS_REPLY_STRING && rep->len > 0
             ? open_secret(r, portal, hk, "refresh_token", rep, buf, bufsz, e, sizeof e)
             : 0;
    if (rc != 0) {
        snprintf(errstr, errsz, "the stored refresh token of portal %lld is unusable: %s",
                 (long long)portal, e);
        buf[0] = '\0';
        rc = -1;
    } else {
        rc = buf[0] != '\0';
    }
    freeReplyObject(rep);
    return rc;
}

/* Whether the value stored at key/field (reply v) opens to want; its stored text into
 * raw (rawsz). 1 yes, 0 no (or does not open). */
static int holds(struct redis_conn *r, const char *key, const char *field, const redisReply *v,
                 const char *want, char *raw, size_t rawsz)
{
    char *plain = malloc(HUBSPOT_MAX_TOKEN + 1), e[256];
    int yes = 0;

    if (plain && v->type == REDIS_REPLY_STRING && v->len < rawsz &&
        strlen(v->str) == v->len) {
        memcpy(raw, v->str, v->len + 1);
        yes = atrest_open(r, key, field, raw, v->len, plain, HUBSPOT_MAX_TOKEN + 1, e,
                          sizeof e) >= 0 &&
              strcmp(plain, want) == 0;
    }
    if (plain)
        explicit_bzero(plain, HUBSPOT_MAX_TOKEN + 1);
    free(plain);
    return yes;
}

int hubspot_oauth_refreshed(struct redis_conn *r, int64_t portal,
                            const struct hubspot_portal_token *was, const char *sent_refresh,
                            const struct hubspot_token_reply *fresh, int64_t expires_at_ms,
                            char *errstr, size_t errsz)
{
    char tk[REDIS_MAX_KEY + 1], hk[REDIS_MAX_KEY + 1], inst[24], exp[24], now[24];
    struct stored_pair *old = NULL, *neu = NULL;
    const char *keys[2] = {tk, hk};
    struct redis_script s;
    redisReply *rep = NULL, *cur = NULL;
    int rc = -1;

    if (keys_of(r, portal, tk, hk, sizeof tk, errstr, errsz) < 0)
        return -1;
    if (!(old = malloc(sizeof *old)) || !(neu = malloc(sizeof *neu))) {
        snprintf(errstr, errsz, "out of memory");
        goto out;
    }
    /* The script compares stored text: read it, and give up at once when it does not
     * open to the token and refresh token we replace. */
    if (redis_script_init(&s, lua_read_secrets, errstr, errsz) < 0 ||
        !(cur = redis_eval(r, &s, 2, keys, 0, NULL, NULL, errstr, errsz)))
        goto out;
    rc = 0;
    if (cur->type != REDIS_REPLY_ARRAY || cur->elements != 2 ||
        !holds(r, tk, "", cur->element[0], was->token, old->token, sizeof old->token) ||
        !holds(r, hk, "refresh_token", cur->element[1], sent_refresh, old->refresh,
               sizeof old->refresh))
        goto out;
    rc = -1;
    snprintf(inst, sizeof inst, "%lld", (long long)was->installed_at_ms);
    snprintf(exp, sizeof exp, "%lld", (long long)expires_at_ms);
    snprintf(now, sizeof now, "%lld", (long long)clock_wall_ms());
    if (atrest_seal(r, tk, "", fresh->access, neu->token, sizeof neu->token, errstr, errsz) < 0 ||
        atrest_seal(r, hk, "refresh_token", fresh->refresh, neu->refresh, sizeof neu->refresh,
                    errstr, errsz) < 0 ||
        redis_script_init(&s, lua_refreshed, errstr, errsz) < 0)
        goto out;
    const char *args[7] = {old->refresh, inst, old->token, neu->token, exp, neu->refresh, now};
    if (!(rep = redis_eval(r, &s, 2, keys, 7, args, NULL, errstr, errsz)))
        goto out;
    rc = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
    freeReplyObject(rep);
out:
    if (cur)
        freeReplyObject(cur);
    if (old)
        explicit_bzero(old, sizeof *old);
    if (neu)
        explicit_bzero(neu, sizeof *neu);
    free(old);
    free(neu);
    return rc;
}
