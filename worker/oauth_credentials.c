/* oauth_credentials.c - a realm's QBO tokens as the operator and the connect pages write
 * and read them (see oauth.h, "credentials"): storing a refresh token, with the access
 * token issued alongside when there is one; the stored status without the secrets; the
 * refresh token for revoking it. The access-token path the workers use (cache, refresh,
 * single flight) is oauth.c's; the two share only what oauth_internal.h declares.
 *
 * Why apart: none of this needs a struct oauth or the in-process cache; each call is a
 * few commands on the realm's hash. Storing replaces the hash whole in one Lua script
 * (oauth_lua_put_refresh), which also drops reauth_required: a token stored by hand or by
 * a new connection is the operator's answer to QBO_REAUTH_REQUIRED. Tokens are sealed at
 * rest (worker/atrest.h) and the scratch copies wiped before they are freed.
 *
 * Thread-safety: no state of its own; each call uses the caller's Redis connection.
 */
#include "worker/oauth.h"
#include "worker/oauth_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "worker/atrest.h"

/* KEYS[1] hash; ARGV: refresh token (sealed), its expiry, now, access token ("" none;
 * sealed), its expiry. */
const char oauth_lua_put_refresh[] =
    "redis.call('DEL', KEYS[1])\n"
    "redis.call('HSET', KEYS[1], 'access_token', ARGV[4], 'access_expires_at_ms', ARGV[5],\n"
    "  'refresh_token', ARGV[1], 'refresh_expires_at_ms', ARGV[2], 'updated_at', ARGV[3])\n"
    "redis.call('PEXPIREAT', KEYS[1], ARGV[2])\n"
    "return 1\n";

int oauth_store_refresh_token(struct redis_conn *redis, const char *realm,
                              const char *refresh_token, int64_t refresh_expires_at_ms,
                              char *errstr, size_t errsz)
{
    struct oauth_tokens t = {NULL, 0, refresh_token, refresh_expires_at_ms};

    return oauth_store_tokens(redis, realm, &t, errstr, errsz);
}

int oauth_store_tokens(struct redis_conn *redis, const char *realm, const struct oauth_tokens *t,
                       char *errstr, size_t errsz)
{
    struct redis_script put;
    char key[REDIS_MAX_KEY + 1], exp[24], nowbuf[24], aexp[24];
    const char *refresh_token = t->refresh_token;
    int64_t refresh_expires_at_ms = t->refresh_expires_at_ms, now = clock_wall_ms();
    const char *access = t->access_token && t->access_expires_at_ms > now ? t->access_token : "";
    struct oauth_stored *s = NULL;
    const char *keys[1] = {key}, *args[5] = {NULL, exp, nowbuf, NULL, aexp};
    redisReply *r = NULL;

    if (oauth_key(redis, realm, key, sizeof key) < 0) {
        snprintf(errstr, errsz, "realm id must be 1..%d digits", OAUTH_REALM_MAX);
        return -1;
    }
    if (!refresh_token || !*refresh_token || strlen(refresh_token) >= OAUTH_REFRESH_TOKEN_MAX) {
        snprintf(errstr, errsz, "refresh token must be 1..%d bytes", OAUTH_REFRESH_TOKEN_MAX - 1);
        return -1;
    }
    if (strlen(access) >= OAUTH_TOKEN_MAX) {
        snprintf(errstr, errsz, "access token must be at most %d bytes", OAUTH_TOKEN_MAX - 1);
        return -1;
    }
    if (refresh_expires_at_ms <= now)
        refresh_expires_at_ms = now + OAUTH_DEFAULT_RT_TTL_MS;
    snprintf(exp, sizeof exp, "%lld", (long long)refresh_expires_at_ms);
    snprintf(nowbuf, sizeof nowbuf, "%lld", (long long)now);
    snprintf(aexp, sizeof aexp, "%lld", *access ? (long long)t->access_expires_at_ms : 0LL);
    if (!(s = malloc(sizeof *s))) {
        snprintf(errstr, errsz, "out of memory");
        return -1;
    }
    if (atrest_seal(redis, key, "refresh_token", refresh_token, s->refresh_raw,
                    sizeof s->refresh_raw, errstr, errsz) == 0 &&
        atrest_seal(redis, key, "access_token", access, s->access_raw, sizeof s->access_raw,
                    errstr, errsz) == 0 &&
        redis_script_init(&put, oauth_lua_put_refresh, errstr, errsz) == 0) {
        args[0] = s->refresh_raw;
        args[3] = s->access_raw;
        r = redis_eval(redis, &put, 1, keys, 5, args, NULL, errstr, errsz);
    }
    oauth_stored_wipe(s);
    free(s);
    if (!r)
        return -1;
    freeReplyObject(r);
    return 0;
}

int oauth_status_get(struct redis_conn *redis, const char *realm, struct oauth_status *st,
                     char *errstr, size_t errsz)
{
    char key[REDIS_MAX_KEY + 1];
    redisReply *r, *l1 = NULL, *l2 = NULL;
    int rc = -1;

    if (oauth_key(redis, realm, key, sizeof key) < 0) {
        snprintf(errstr, errsz, "realm id must be 1..%d digits", OAUTH_REALM_MAX);
        return -1;
    }
    r = redis_command(redis, errstr, errsz,
                      "HMGET %s access_expires_at_ms refresh_expires_at_ms updated_at "
                      "reauth_required",
                      key);
    if (!r)
        return -1;
    if (!(l1 = redis_command(redis, errstr, errsz, "HSTRLEN %s access_token", key)) ||
        !(l2 = redis_command(redis, errstr, errsz, "HSTRLEN %s refresh_token", key)))
        goto out;
    memset(st, 0, sizeof *st);
    rc = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 4) {
        st->access_expires_at_ms = oauth_parse_i64(r->element[0]);
        st->refresh_expires_at_ms = oauth_parse_i64(r->element[1]);
        st->updated_at_ms = oauth_parse_i64(r->element[2]);
        st->reauth_required = r->element[3]->type == REDIS_REPLY_STRING;
        for (size_t i = 0; i < 4; i++)
            rc |= r->element[i]->type != REDIS_REPLY_NIL;
    }
    st->has_access_token = l1->type == REDIS_REPLY_INTEGER && l1->integer > 0;
    st->has_refresh_token = l2->type == REDIS_REPLY_INTEGER && l2->integer > 0;
    rc |= st->has_access_token | st->has_refresh_token;
out:
    freeReplyObject(r);
    if (l1)
        freeReplyObject(l1);
    if (l2)
        freeReplyObject(l2);
    return rc;
}

int oauth_refresh_token_get(struct redis_conn *redis, const char *realm, char *buf, size_t bufsz,
                            char *errstr, size_t errsz)
{
    char key[REDIS_MAX_KEY + 1], e[256];
    redisReply *r;
    int rc = 0;

    buf[0] = '\0';
    if (oauth_key(redis, realm, key, sizeof key) < 0) {
        snprintf(errstr, errsz, "realm id must be 1..%d digits", OAUTH_REALM_MAX);
        return -1;
    }
    if (!(r = redis_command(redis, errstr, errsz, "HGET %s refresh_token", key)))
        return -1;
    if (r->type == REDIS_REPLY_STRING &&
        atrest_open(redis, key, "refresh_token", r->str, r->len, buf, bufsz, e, sizeof e) < 0) {
        snprintf(errstr, errsz, "the stored refresh token of realm %s is unusable: %s", realm, e);
        rc = -1;
    } else {
        rc = buf[0] != '\0';
    }
    freeReplyObject(r);
    return rc;
}
