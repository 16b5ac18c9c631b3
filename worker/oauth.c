/* oauth.c - QBO access tokens per realm (see oauth.h for the contract): the in-process
 * cache, the refresh at Intuit's token endpoint and its single flight. Storing tokens by
 * hand or from the connect flow, and reading their status, is oauth_credentials.c's; the
 * two share only what oauth_internal.h declares.
 *
 * Intuit rotates refresh tokens and kills the old one at once, so two
 * refreshes racing with one refresh token leave one of them holding a dead token: the
 * refresh must be single-flight across every replica. Three layers keep it so:
 *
 *   in-process cache hit ---------------------------------------------> token
 *   miss: one thread per realm in this process leads (entry.refreshing); the others
 *         sleep on the condition variable and take the leader's token or error
 *   leader: Redis hash fresh --------------------------------------------> token
 *           else redis_lock(<prefix>lock:{realm}:oauth)
 *             held:  re-read (the previous holder may just have refreshed), else POST
 *                    the token endpoint, store access + rotated refresh token with a Lua
 *                    compare-and-set on the refresh token we sent, unlock   [refresh()]
 *             busy:  poll the hash until it carries a token newer than the one we
 *                    judged stale, or the lock frees up (retake it), bounded  [lead()]
 *
 * The compare-and-set matters when our lock lapsed during a slow token call: whoever
 * refreshed after us stored a newer refresh token, and ours (already dead at Intuit)
 * must not overwrite it. Wall-clock epoch ms are stored (they are shared between hosts);
 * waits use the monotonic clock.
 */
#include "worker/oauth.h"
#include "worker/oauth_internal.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "worker/atrest.h"

#define OAUTH_CACHE_MAX_REALMS  4096 /* in-process cache entries */
#define OAUTH_POLL_MS           50   /* between two looks at another replica's refresh */
#define OAUTH_ERROR_HOLD_MS     1000 /* waiters reuse the leader's failure this long */
#define OAUTH_ENDPOINT          "POST /oauth2/v1/tokens/bearer"

struct cache_entry {
    char realm[OAUTH_REALM_MAX + 1];
    char *token;          /* malloc'd; wiped before free */
    int64_t use_until;    /* monotonic ms: cache hit while now < use_until */
    int refreshing;       /* a thread of this process leads a fetch for this realm */
    int waiters;          /* threads sleeping on it (entry must not be evicted) */
    unsigned gen;         /* bumped when a lead ends */
    struct api_error err; /* the last lead's failure, when it failed */
    int64_t err_until;    /* monotonic ms */
};

struct oauth {
    char *token_url, *client_id, *client_secret;
    int64_t margin_ms, lock_ttl_ms, wait_ms;
    struct oauth_hooks hooks;
    struct redis_script cas_store, cas_invalidate, cas_reauth, put_refresh;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct cache_entry *cache;
    size_t ncache, capcache;
};

/* KEYS[1] hash; ARGV: sent refresh token as stored, access, access exp, new refresh,
 * refresh exp, now (tokens sealed). Stores only while the hash still holds the refresh
 * token we sent, compared as the stored text we read (a sealed token never seals to the
 * same text twice, so re-sealing the sent token to compare would never match). */
static const char lua_cas_store[] =
    "if redis.call('HGET', KEYS[1], 'refresh_token') ~= ARGV[1] then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'access_token', ARGV[2], 'access_expires_at_ms', ARGV[3],\n"
    "  'refresh_token', ARGV[4], 'refresh_expires_at_ms', ARGV[5], 'updated_at', ARGV[6])\n"
    "redis.call('HDEL', KEYS[1], 'reauth_required')\n"
    "redis.call('PEXPIREAT', KEYS[1], ARGV[5])\n"
    "return 1\n";

/* KEYS[1] hash; ARGV: rejected access token as stored (read and opened first), now. */
static const char lua_cas_invalidate[] =
    "if redis.call('HGET', KEYS[1], 'access_token') ~= ARGV[1] then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'access_token', '', 'access_expires_at_ms', '0',\n"
    "  'updated_at', ARGV[2])\n"
    "return 1\n";

/* KEYS[1] hash; ARGV: refresh token Intuit refused, as stored, now. */
static const char lua_cas_reauth[] =
    "if redis.call('HGET', KEYS[1], 'refresh_token') ~= ARGV[1] then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'reauth_required', '1', 'access_token', '',\n"
    "  'access_expires_at_ms', '0', 'updated_at', ARGV[2])\n"
    "return 1\n";

/* ---- small helpers ---------------------------------------------------------------- */

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

int oauth_realm_valid(const char *s)
{
    size_t n = 0;
    if (!s)
        return 0;
    for (; s[n]; n++)
        if (!isdigit((unsigned char)s[n]))
            return 0;
    return n >= 1 && n <= OAUTH_REALM_MAX;
}

int oauth_key(const struct redis_conn *redis, const char *realm, char *buf, size_t bufsz)
{
    int n;
    if (!oauth_realm_valid(realm))
        return -1;
    n = snprintf(buf, bufsz, "%soauth:{%s}", redis_conn_prefix(redis), realm);
    return n < 0 || (size_t)n >= bufsz ? -1 : 0;
}

static void transient(struct api_error *err, const char *what, const char *detail)
{
    api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 0, "oauth: %s: %s", what, detail);
}

/* The margin before expiry at which a token counts as stale: the configured one, but
 * never more than half the token's lifetime (short-lived tokens would otherwise be
 * refreshed on every call). */
static int64_t effective_margin(const struct oauth *o, const struct oauth_stored *s)
{
    int64_t life = s->access_exp - s->updated;
    int64_t m = o->margin_ms;
    if (life > 0 && m > life / 2)
        m = life / 2;
    return m;
}

static int usable(const struct oauth *o, const struct oauth_stored *s, int64_t now)
{
    return s->access[0] && s->access_exp - effective_margin(o, s) > now;
}

int64_t oauth_parse_i64(const redisReply *r)
{
    char *end;
    long long v;
    if (!r || r->type != REDIS_REPLY_STRING || r->len == 0)
        return 0;
    errno = 0;
    v = strtoll(r->str, &end, 10);
    return errno || *end ? 0 : (int64_t)v;
}

static void copy_reply(const redisReply *r, char *dst, size_t dstsz)
{
    dst[0] = 0;
    if (r && r->type == REDIS_REPLY_STRING && r->len < dstsz) {
        memcpy(dst, r->str, r->len);
        dst[r->len] = 0;
    }
}

void oauth_stored_wipe(struct oauth_stored *s)
{
    explicit_bzero(s, sizeof *s);
}

static void reauth_error(struct api_error *err, const char *realm, const char *why)
{
    api_error_set(err, API_AUTH, HSQB_ERR_QBO_REAUTH_REQUIRED, 0,
                  "QuickBooks company %s must be reconnected (%s); store a new refresh token "
                  "with `hsqb-worker credentials qbo`",
                  realm, why);
    snprintf(err->qbo_fault_code, sizeof err->qbo_fault_code, "invalid_grant");
}

/* One stored token opened into dst; a plain-text one from an older version re-written
 * sealed (raw then holds the new text). 1 when it changed under us (read again), 0, or
 * -1 with *err: a missing key is a configuration error (transient: retried while the
 * operator adds it), a value that does not open means the company must be reconnected. */
static int open_token(struct redis_conn *redis, const char *realm, const char *key,
                      const char *field, char *raw, size_t rawsz, char *dst, size_t dstsz,
                      struct api_error *err)
{
    char e[256];

    switch (atrest_open(redis, key, field, raw, strlen(raw), dst, dstsz, e, sizeof e)) {
    case ATREST_OK:
        return 0;
    case ATREST_UNSEALED:
        switch (atrest_migrate(redis, key, field, dst, raw, rawsz, e, sizeof e)) {
        case 1:
            log_info("oauth: re-wrote realm %s's %s encrypted", realm, field);
            return 0;
        case 0:
            return redis_conn_keyring(redis) ? 1 : 0;
        default:
            log_warn("oauth: re-writing realm %s's %s encrypted failed: %s", realm, field, e);
            return 0;
        }
    case ATREST_ENOKEY:
        api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 0,
                      "oauth: the stored %s of realm %s: %s", field, realm, e);
        return -1;
    default:
        reauth_error(err, realm, "its stored tokens do not open");
        log_error("oauth: the stored %s of realm %s does not open: %s", field, realm, e);
        return -1;
    }
}

/* Read the realm's hash into *s, opening (and, when stored by an older version in plain
 * text, re-writing) its tokens. 0, or -1 with *err. */
static int load(struct redis_conn *redis, const char *realm, const char *key,
                struct oauth_stored *s, struct api_error *err)
{
    char e[256];

    for (int attempt = 0;; attempt++) {
        int changed = 0, a, b;
        redisReply *r = redis_command(redis, e, sizeof e,
                                      "HMGET %s access_token access_expires_at_ms refresh_token "
                                      "refresh_expires_at_ms updated_at reauth_required",
                                      key);
        if (!r) {
            transient(err, "reading stored tokens from Redis failed", e);
            return -1;
        }
        oauth_stored_wipe(s);
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 6) {
            copy_reply(r->element[0], s->access_raw, sizeof s->access_raw);
            s->access_exp = oauth_parse_i64(r->element[1]);
            copy_reply(r->element[2], s->refresh_raw, sizeof s->refresh_raw);
            s->refresh_exp = oauth_parse_i64(r->element[3]);
            s->updated = oauth_parse_i64(r->element[4]);
            s->reauth = r->element[5] && r->element[5]->type == REDIS_REPLY_STRING;
        }
        freeReplyObject(r);
        a = open_token(redis, realm, key, "access_token", s->access_raw, sizeof s->access_raw,
                       s->access, sizeof s->access, err);
        b = a < 0 ? -1
                  : open_token(redis, realm, key, "refresh_token", s->refresh_raw,
                               sizeof s->refresh_raw, s->refresh, sizeof s->refresh, err);
        if (a < 0 || b < 0)
            return -1;
        changed = a || b;
        if (!changed || attempt == 2)
            return 0; /* after two races the value we hold is still a valid read */
    }
}

/* p sealed for field of key into dst, or -1 with *err. */
static int seal_token(struct redis_conn *redis, const char *key, const char *field,
                      const char *p, char *dst, size_t dstsz, struct api_error *err)
{
    char e[256];

    if (atrest_seal(redis, key, field, p, dst, dstsz, e, sizeof e) == 0)
        return 0;
    api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "oauth: encrypting a token: %s", e);
    return -1;
}

static void hook_refresh(struct oauth *o, const char *result)
{
    if (o->hooks.refresh)
        o->hooks.refresh(o->hooks.opaque, result);
}

/* ---- lifecycle ------------------------------------------------------------------- */

struct oauth *oauth_new(const struct config *cfg, char *errstr, size_t errsz)
{
    struct oauth *o = calloc(1, sizeof *o);
    const char *id = config_get_str(cfg, "oauth.client_id");
    const char *secret = config_get_str(cfg, "oauth.client_secret");
    int64_t timeout = config_get_ms(cfg, "http.timeout");

    if (!o) {
        snprintf(errstr, errsz, "oauth: out of memory");
        return NULL;
    }
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    if (!*id || !*secret) {
        snprintf(errstr, errsz, "oauth: oauth.client_id and oauth.client_secret must be set");
        goto fail;
    }
    o->token_url = strdup(config_get_str(cfg, "oauth.token_url"));
    o->client_id = strdup(id);
    o->client_secret = strdup(secret);
    if (!o->token_url || !o->client_id || !o->client_secret) {
        snprintf(errstr, errsz, "oauth: out of memory");
        goto fail;
    }
    o->margin_ms = config_get_ms(cfg, "oauth.refresh_margin");
    /* The lock outlives one token call; a waiter gives up a little after it lapses. */
    o->lock_ttl_ms = timeout + 5000;
    o->wait_ms = o->lock_ttl_ms + 2000;
    if (redis_script_init(&o->cas_store, lua_cas_store, errstr, errsz) < 0 ||
        redis_script_init(&o->cas_invalidate, lua_cas_invalidate, errstr, errsz) < 0 ||
        redis_script_init(&o->cas_reauth, lua_cas_reauth, errstr, errsz) < 0 ||
        redis_script_init(&o->put_refresh, oauth_lua_put_refresh, errstr, errsz) < 0)
        goto fail;
    log_register_secret(secret);
    return o;
fail:
    oauth_free(o);
    return NULL;
}

void oauth_free(struct oauth *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->ncache; i++)
        wipe_free(o->cache[i].token);
    free(o->cache);
    free(o->token_url);
    free(o->client_id);
    wipe_free(o->client_secret);
    pthread_mutex_destroy(&o->mu);
    pthread_cond_destroy(&o->cv);
    free(o);
}

void oauth_set_hooks(struct oauth *o, const struct oauth_hooks *h)
{
    if (h)
        o->hooks = *h;
    else
        memset(&o->hooks, 0, sizeof o->hooks);
}

/* ---- the in-process cache (o->mu held) --------------------------------------------- */

static struct cache_entry *cache_find(struct oauth *o, const char *realm)
{
    for (size_t i = 0; i < o->ncache; i++)
        if (strcmp(o->cache[i].realm, realm) == 0)
            return &o->cache[i];
    return NULL;
}

/* Find or add; NULL when out of memory. Evicts an idle entry when full. */
static struct cache_entry *cache_get(struct oauth *o, const char *realm)
{
    struct cache_entry *e = cache_find(o, realm);
    if (e)
        return e;
    if (o->ncache == OAUTH_CACHE_MAX_REALMS) {
        size_t victim = o->ncache;
        for (size_t i = 0; i < o->ncache; i++)
            if (!o->cache[i].refreshing && !o->cache[i].waiters &&
                (victim == o->ncache || o->cache[i].use_until < o->cache[victim].use_until))
                victim = i;
        if (victim == o->ncache)
            return NULL;
        wipe_free(o->cache[victim].token);
        o->cache[victim] = o->cache[--o->ncache];
    }
    if (o->ncache == o->capcache) {
        size_t cap = o->capcache ? o->capcache * 2 : 16;
        struct cache_entry *n = realloc(o->cache, cap * sizeof *n);
        if (!n)
            return NULL;
        o->cache = n;
        o->capcache = cap;
    }
    size_t n = strnlen(realm, OAUTH_REALM_MAX); /* validated by the caller */
    e = &o->cache[o->ncache++];
    memset(e, 0, sizeof *e);
    memcpy(e->realm, realm, n);
    return e;
}

static void cache_put(struct oauth *o, struct cache_entry *e, const struct oauth_stored *s)
{
    int64_t refresh_at = s->access_exp - effective_margin(o, s);
    int64_t left = refresh_at - clock_wall_ms();
    char *dup;

    if (left > OAUTH_CACHE_MS)
        left = OAUTH_CACHE_MS;
    if (left <= 0) {
        /* Already inside the margin (another replica's clock, or a token the lead took
         * while waiting): hold it briefly anyway, so this process's waiters do not each
         * start a refresh of their own. */
        left = s->access_exp - clock_wall_ms() - 1000;
        if (left > 1000)
            left = 1000;
    }
    if (left <= 0 || !(dup = strdup(s->access)))
        return;
    wipe_free(e->token);
    e->token = dup;
    e->use_until = clock_mono_ms() + left;
}

/* ---- the token endpoint -------------------------------------------------------------- */

/* The error code of a token endpoint answer, when it is a short identifier. */
static void endpoint_error(const struct http_response *resp, char *code, size_t codesz)
{
    char e[128];
    struct json_object *doc;
    const char *s;

    code[0] = 0;
    if (resp->body_len == 0 || resp->body_len > OAUTH_MAX_RESPONSE ||
        !(doc = json_parse_strict(resp->body, resp->body_len, 8, e, sizeof e)))
        return;
    if (json_get_str(doc, "error", &s) == JGET_OK && strlen(s) < codesz &&
        strspn(s, "abcdefghijklmnopqrstuvwxyz_") == strlen(s))
        snprintf(code, codesz, "%s", s);
    json_object_put(doc);
}

/* Parse a 200 answer into *fresh (access, expiries; refresh token defaults to sent). */
static int parse_tokens(const struct http_response *resp, const char *sent,
                        struct oauth_stored *fresh, int64_t now)
{
    char e[128];
    struct json_object *doc;
    const char *at, *rt;
    int64_t exp_in, rt_in;
    int rc = -1;

    if (resp->body_len > OAUTH_MAX_RESPONSE ||
        !(doc = json_parse_strict(resp->body, resp->body_len, 8, e, sizeof e)))
        return -1;
    memset(fresh, 0, sizeof *fresh);
    if (json_get_str(doc, "access_token", &at) != JGET_OK || !*at ||
        strlen(at) >= sizeof fresh->access ||
        json_get_int64(doc, "expires_in", 1, 10LL * 365 * 86400, &exp_in) != JGET_OK)
        goto out;
    switch (json_get_str(doc, "refresh_token", &rt)) {
    case JGET_OK:
        if (!*rt || strlen(rt) >= sizeof fresh->refresh)
            goto out;
        break;
    case JGET_MISSING:
        rt = sent;
        break;
    default:
        goto out;
    }
    if (json_get_int64(doc, "x_refresh_token_expires_in", 1, 10LL * 365 * 86400, &rt_in) != JGET_OK)
        rt_in = OAUTH_DEFAULT_RT_TTL_MS / 1000;
    snprintf(fresh->access, sizeof fresh->access, "%s", at);
    snprintf(fresh->refresh, sizeof fresh->refresh, "%s", rt);
    fresh->access_exp = now + exp_in * 1000;
    fresh->refresh_exp = now + rt_in * 1000;
    fresh->updated = now;
    rc = 0;
out:
    json_object_put(doc);
    return rc;
}

/* Run s on KEYS = {argv[0]}, ARGV = argv[1..argc), up to tries times. */
static redisReply *eval_retry(struct redis_conn *redis, const struct redis_script *s,
                              const char **argv, int argc, int tries, char *e, size_t esz)
{
    redisReply *r = NULL;
    for (int i = 0; i < tries && !r; i++) {
        if (i)
            clock_sleep_ms(100);
        r = redis_eval(redis, s, 1, argv, argc - 1, argv + 1, NULL, e, esz);
    }
    return r;
}

/* POST grant_type=refresh_token with s->refresh (we hold the lock). On success the new
 * tokens are stored (compare-and-set) and the access token copied into *out. */
static int refresh(const struct ioctx *io, struct oauth *o, const char *realm, const char *key,
                   const struct oauth_stored *s, struct oauth_stored *out, struct api_error *err)
{
    struct http_param form[2] = {{"grant_type", "refresh_token"}, {"refresh_token", s->refresh}};
    struct http_header hdrs[1] = {{"Accept", "application/json"}};
    struct http_request req = {.method = HTTP_POST,
                               .url = o->token_url,
                               .headers = hdrs,
                               .nheaders = 1,
                               .form = form,
                               .nform = 2,
                               .basic_user = o->client_id,
                               .basic_pass = o->client_secret};
    struct http_response resp;
    char e[256], code[48], nowbuf[24], atexp[24], rtexp[24];
    const char *tid;
    int64_t now = clock_wall_ms();
    redisReply *r;
    int rc = -1;

    http_response_init(&resp);
    enum http_error he = http_client_do(io->http, &req, &resp, e, sizeof e);
    if (o->hooks.api_call)
        o->hooks.api_call(o->hooks.opaque, "oauth", OAUTH_ENDPOINT,
                          he == HTTP_OK ? (int)resp.status : 0, resp.total_ms);
    if (he != HTTP_OK) {
        transient(err, "token endpoint unreachable", e);
        hook_refresh(o, "error");
        goto out;
    }
    tid = http_response_header(&resp, "intuit_tid");
    if (resp.status == 200) {
        if (parse_tokens(&resp, s->refresh, out, now) < 0) {
            api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 200,
                          "oauth: token endpoint answered 200 without usable tokens");
            hook_refresh(o, "error");
            goto set_tid;
        }
        snprintf(nowbuf, sizeof nowbuf, "%lld", (long long)now);
        snprintf(atexp, sizeof atexp, "%lld", (long long)out->access_exp);
        snprintf(rtexp, sizeof rtexp, "%lld", (long long)out->refresh_exp);
        if (seal_token(io->redis, key, "access_token", out->access, out->access_raw,
                       sizeof out->access_raw, err) < 0 ||
            seal_token(io->redis, key, "refresh_token", out->refresh, out->refresh_raw,
                       sizeof out->refresh_raw, err) < 0) {
            log_error("oauth: refreshed realm %s but could not encrypt the rotated tokens", realm);
            hook_refresh(o, "error");
            goto set_tid;
        }
        const char *argv[7] = {key,    s->refresh_raw, out->access_raw, atexp, out->refresh_raw,
                               rtexp, nowbuf};
        /* Intuit has already retired the old refresh token: try hard to keep the new one. */
        r = eval_retry(io->redis, &o->cas_store, argv, 7, 3, e, sizeof e);
        if (!r) {
            log_error("oauth: refreshed realm %s but could not store the rotated tokens: %s", realm,
                      e);
            transient(err, "storing refreshed tokens in Redis failed", e);
            hook_refresh(o, "error");
            goto set_tid;
        }
        if (r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
            hook_refresh(o, "ok");
            log_info("oauth: refreshed the access token of realm %s", realm);
        } else {
            /* Someone stored other credentials meanwhile (a reconnect, or a refresher
             * after our lock lapsed). Theirs stay; our access token is still valid. */
            hook_refresh(o, "lost");
            log_warn("oauth: realm %s credentials changed during our refresh; kept theirs", realm);
        }
        freeReplyObject(r);
        rc = 0;
        goto out;
    }
    endpoint_error(&resp, code, sizeof code);
    if (resp.status == 400 && strcmp(code, "invalid_grant") == 0) {
        snprintf(nowbuf, sizeof nowbuf, "%lld", (long long)now);
        const char *argv[3] = {key, s->refresh_raw, nowbuf};
        hook_refresh(o, "invalid_grant");
        r = eval_retry(io->redis, &o->cas_reauth, argv, 3, 1, e, sizeof e);
        if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
            /* The stored refresh token changed while we used the old one: not fatal. */
            api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 400,
                          "oauth: refresh token of realm %s changed during refresh; retry", realm);
        } else {
            reauth_error(err, realm, "Intuit answered invalid_grant");
            err->http_status = 400;
        }
        if (r)
            freeReplyObject(r);
        goto set_tid;
    }
    hook_refresh(o, "error");
    if (resp.status == 401 || strcmp(code, "invalid_client") == 0) {
        api_error_set(err, API_AUTH, HSQB_ERR_INTERNAL, (int)resp.status,
                      "oauth: Intuit rejected the app's client credentials (invalid_client); "
                      "check oauth.client_id and oauth.client_secret");
    } else if (resp.status == 429) {
        api_error_set(err, API_THROTTLED, HSQB_ERR_RETRIES_EXHAUSTED, 429,
                      "oauth: token endpoint throttled the refresh");
        err->retry_after_ms = resp.retry_after_ms > 0 ? resp.retry_after_ms : 0;
    } else if (resp.status >= 500) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, (int)resp.status,
                      "oauth: token endpoint answered %ld", resp.status);
    } else {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, (int)resp.status,
                      "oauth: token endpoint answered %ld %s", resp.status,
                      code[0] ? code : "(no error code)");
    }
set_tid:
    if (tid)
        snprintf(err->upstream_id, sizeof err->upstream_id, "%s", tid);
out:
    http_response_release(&resp);
    return rc;
}

/* ---- the Redis path (one thread per realm per process) ----------------------------- */

static int lead(const struct ioctx *io, struct oauth *o, const char *realm,
                struct oauth_stored *out, struct api_error *err)
{
    struct redis_conn *redis = io->redis;
    struct redis_lease lease;
    struct oauth_stored *s = malloc(sizeof *s);
    char key[REDIS_MAX_KEY + 1], e[256], stale[OAUTH_TOKEN_MAX] = "";
    int64_t deadline = clock_mono_ms() + o->wait_ms, stale_exp = 0, stale_updated = 0;
    int rc = -1;

    if (!s) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 0, "oauth: out of memory");
        return -1;
    }
    if (oauth_key(redis, realm, key, sizeof key) < 0) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "oauth: bad realm id");
        goto out;
    }
    if (load(redis, realm, key, s, err) < 0)
        goto out;
    if (s->reauth) {
        reauth_error(err, realm, "its refresh token was refused");
        goto out;
    }
    if (usable(o, s, clock_wall_ms())) {
        *out = *s;
        rc = 0;
        goto out;
    }
    if (!s->refresh[0]) {
        reauth_error(err, realm, "no refresh token stored");
        goto out;
    }
    snprintf(stale, sizeof stale, "%s", s->access);
    stale_exp = s->access_exp;
    stale_updated = s->updated;
    if (redis_lock_prepare(redis, &lease, realm, "oauth", e, sizeof e) < 0) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "oauth: %s", e);
        goto out;
    }
    for (;;) {
        enum redis_lock_status st = redis_lock(redis, &lease, o->lock_ttl_ms, e, sizeof e);
        if (st == REDIS_LOCK_ERROR) {
            transient(err, "taking the refresh lock failed", e);
            goto out;
        }
        if (st == REDIS_LOCKED) {
            if (load(redis, realm, key, s, err) < 0) {
                rc = -1;
            } else if (s->reauth) {
                reauth_error(err, realm, "its refresh token was refused");
            } else if (s->access[0] && strcmp(s->access, stale) != 0 &&
                       s->access_exp > clock_wall_ms()) {
                *out = *s; /* refreshed by the previous lock holder */
                rc = 0;
            } else if (!s->refresh[0]) {
                reauth_error(err, realm, "no refresh token stored");
            } else {
                rc = refresh(io, o, realm, key, s, out, err);
            }
            if (redis_lease_release(redis, &lease, e, sizeof e) == REDIS_OWNER_ERROR)
                log_warn("oauth: releasing the refresh lock of realm %s failed: %s", realm, e);
            goto out;
        }
        /* Busy: another replica refreshes. Wait for its token, or for the lock. */
        clock_sleep_ms(OAUTH_POLL_MS);
        if (load(redis, realm, key, s, err) < 0)
            goto out;
        if (s->reauth) {
            reauth_error(err, realm, "its refresh token was refused");
            goto out;
        }
        if (s->access[0] && strcmp(s->access, stale) != 0 && s->access_exp > clock_wall_ms()) {
            *out = *s;
            rc = 0;
            goto out;
        }
        if (clock_mono_ms() > deadline) {
            api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 0,
                          "oauth: timed out waiting for another replica to refresh realm %s",
                          realm);
            goto out;
        }
    }
out:
    if (rc < 0 && api_error_retryable(err) && stale[0] && stale_exp > clock_wall_ms() + 1000) {
        /* A proactive refresh failed transiently, but the current token still works:
         * use it (cache_put holds it only briefly, so the refresh is retried soon). */
        log_warn("oauth: refreshing realm %s failed (%s); using the current token meanwhile", realm,
                 err->message);
        memset(out, 0, sizeof *out);
        memcpy(out->access, stale, sizeof out->access);
        out->access_exp = stale_exp;
        out->updated = stale_updated;
        api_error_clear(err);
        rc = 0;
    }
    oauth_stored_wipe(s);
    free(s);
    explicit_bzero(stale, sizeof stale);
    return rc;
}

static int get_access(const struct ioctx *io, struct oauth *o, const char *realm, char *tok,
                      size_t toksz, struct api_error *err);
static int invalidate(struct redis_conn *redis, struct oauth *o, const char *realm,
                      const char *rejected_token, struct api_error *err);

/* The public calls name their failures API_SOURCE_OAUTH (apierr.h). */
int oauth_get_access(const struct ioctx *io, struct oauth *o, const char *realm, char *tok,
                     size_t toksz, struct api_error *err)
{
    return api_error_tag(err, API_SOURCE_OAUTH, get_access(io, o, realm, tok, toksz, err));
}

static int get_access(const struct ioctx *io, struct oauth *o, const char *realm, char *tok,
                      size_t toksz, struct api_error *err)
{
    struct oauth_stored *got = NULL;
    struct cache_entry *e;
    int64_t deadline = clock_mono_ms() + o->wait_ms + o->lock_ttl_ms;
    int rc = -1;
    unsigned gen = 0;
    int waited = 0;

    api_error_clear(err);
    if (!oauth_realm_valid(realm)) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "oauth: bad realm id");
        return -1;
    }
    pthread_mutex_lock(&o->mu);
    for (;;) {
        int64_t now = clock_mono_ms();
        if (!(e = cache_get(o, realm))) {
            pthread_mutex_unlock(&o->mu);
            api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 0, "oauth: out of memory");
            return -1;
        }
        if (e->token && now < e->use_until) {
            if (strlen(e->token) >= toksz) {
                pthread_mutex_unlock(&o->mu);
                api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0,
                              "oauth: token buffer too small");
                return -1;
            }
            memcpy(tok, e->token, strlen(e->token) + 1); /* fits: checked above */
            pthread_mutex_unlock(&o->mu);
            return 0;
        }
        if (waited && e->gen != gen && now < e->err_until) {
            *err = e->err; /* the lead we waited for failed: share its verdict */
            pthread_mutex_unlock(&o->mu);
            return -1;
        }
        if (!e->refreshing)
            break;
        if (now >= deadline) {
            pthread_mutex_unlock(&o->mu);
            api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 0,
                          "oauth: timed out waiting for the token refresh of realm %s", realm);
            return -1;
        }
        struct timespec ts;
        clock_abstime(CLOCK_REALTIME, 100, &ts);
        if (!waited) {
            waited = 1;
            gen = e->gen;
        }
        e->waiters++;
        pthread_cond_timedwait(&o->cv, &o->mu, &ts);
        e = cache_find(o, realm);
        if (e)
            e->waiters--;
    }
    e->refreshing = 1;
    pthread_mutex_unlock(&o->mu);

    got = malloc(sizeof *got);
    if (!got) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 0, "oauth: out of memory");
    } else if ((rc = lead(io, o, realm, got, err)) == 0 && strlen(got->access) >= toksz) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "oauth: token buffer too small");
        rc = -1;
    } else if (rc == 0) {
        memcpy(tok, got->access, strlen(got->access) + 1); /* fits: checked above */
    }

    pthread_mutex_lock(&o->mu);
    e = cache_find(o, realm); /* the array may have moved */
    if (e) {
        e->refreshing = 0;
        e->gen++;
        if (rc == 0) {
            cache_put(o, e, got);
            e->err_until = 0;
        } else {
            e->err = *err;
            e->err_until = clock_mono_ms() + OAUTH_ERROR_HOLD_MS;
        }
    }
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
    if (got) {
        oauth_stored_wipe(got);
        free(got);
    }
    return rc;
}

int oauth_invalidate(const struct ioctx *io, struct oauth *o, const char *realm,
                     const char *rejected_token, struct api_error *err)
{
    return api_error_tag(err, API_SOURCE_OAUTH,
                         invalidate(io->redis, o, realm, rejected_token, err));
}

static int invalidate(struct redis_conn *redis, struct oauth *o, const char *realm,
                      const char *rejected_token, struct api_error *err)
{
    char key[REDIS_MAX_KEY + 1], e[256], nowbuf[24];
    struct oauth_stored *s = NULL;
    const char *keys[1] = {key}, *args[2] = {NULL, nowbuf};
    struct cache_entry *ce;
    redisReply *r;
    int rc = -1;

    api_error_clear(err);
    if (!rejected_token || !*rejected_token || oauth_key(redis, realm, key, sizeof key) < 0) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "oauth: bad invalidate call");
        return -1;
    }
    pthread_mutex_lock(&o->mu);
    if ((ce = cache_find(o, realm)) && ce->token && strcmp(ce->token, rejected_token) == 0) {
        wipe_free(ce->token);
        ce->token = NULL;
        ce->use_until = 0;
    }
    pthread_mutex_unlock(&o->mu);
    /* The script compares stored text: read it, and forget it only when it opens to the
     * token QuickBooks rejected (else someone refreshed meanwhile: theirs stays). */
    if (!(s = malloc(sizeof *s))) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 0, "oauth: out of memory");
        return -1;
    }
    if (load(redis, realm, key, s, err) < 0)
        goto out;
    rc = 0;
    if (strcmp(s->access, rejected_token) != 0)
        goto out;
    args[0] = s->access_raw;
    snprintf(nowbuf, sizeof nowbuf, "%lld", (long long)clock_wall_ms());
    r = redis_eval(redis, &o->cas_invalidate, 1, keys, 2, args, NULL, e, sizeof e);
    if (!r) {
        transient(err, "invalidating the access token in Redis failed", e);
        rc = -1;
        goto out;
    }
    freeReplyObject(r);
out:
    oauth_stored_wipe(s);
    free(s);
    return rc;
}
