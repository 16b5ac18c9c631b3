/* hubspot_oauth.c - a portal's HubSpot OAuth install in Redis (see hubspot_oauth.h).
 *
 * The access token goes where the worker has always read a portal's token, so an
 * installed portal works with no change to the HubSpot client; the install's own facts
 * (refresh token, expiry, scopes) go into a hash beside it, in the same hash slot, and a
 * Lua script writes both at once.
 */
#include "worker/hubspot_oauth.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "worker/hubspot.h"

/* KEYS: token string, install hash; ARGV: access token, its expiry, refresh token,
 * scopes, hub domain, now. */
static const char lua_store[] =
    "redis.call('SET', KEYS[1], ARGV[1])\n"
    "redis.call('DEL', KEYS[2])\n"
    "redis.call('HSET', KEYS[2], 'refresh_token', ARGV[3], 'access_expires_at_ms', ARGV[2],\n"
    "  'scopes', ARGV[4], 'hub_domain', ARGV[5], 'installed_at', ARGV[6], 'updated_at', ARGV[6])\n"
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
    const char *args[6] = {in->access_token,
                           exp,
                           in->refresh_token,
                           in->scopes ? in->scopes : "",
                           in->hub_domain ? in->hub_domain : "",
                           now};
    struct redis_script s;
    redisReply *rep;

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
    if (redis_script_init(&s, lua_store, errstr, errsz) < 0 ||
        !(rep = redis_eval(r, &s, 2, keys, 6, args, NULL, errstr, errsz)))
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
