/* atrest.c - tokens sealed at rest in Redis (see atrest.h for the policy).
 *
 * Why here and not in common/redis.c: the wrapper stays a transport (it only carries the
 * key ring as a connection option); deciding which values are secret, how a value from
 * an older version is recognised and re-written, and which failures are configuration
 * rather than a broken value, is the worker's business.
 *
 * A value from an older version is recognised by not starting with SEAL_PREFIX ("v1:"):
 * no QuickBooks or HubSpot token does (JWTs start "eyJ", HubSpot's "pat-", "CJ", "CO"...).
 */
#include "worker/atrest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ATREST_TEXT_MAX SEAL_TEXT_LEN(SEAL_MAX_PLAIN) /* a stored value, as read back */

/* KEYS[1]; ARGV: field ('' = a string key), the text we read, the text to store. A string
 * key keeps its time to live. */
static const char lua_replace[] =
    "local cur\n"
    "if ARGV[1] == '' then cur = redis.call('GET', KEYS[1])\n"
    "else cur = redis.call('HGET', KEYS[1], ARGV[1]) end\n"
    "if cur ~= ARGV[2] then return 0 end\n"
    "if ARGV[1] == '' then\n"
    "  local t = redis.call('PTTL', KEYS[1])\n"
    "  redis.call('SET', KEYS[1], ARGV[3])\n"
    "  if t > 0 then redis.call('PEXPIRE', KEYS[1], t) end\n"
    "else redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end\n"
    "return 1\n";

/* What a value is bound to: its key without the deployment's prefix. */
static const char *bound_name(struct redis_conn *r, const char *key)
{
    size_t n = strlen(redis_conn_prefix(r));
    return strncmp(key, redis_conn_prefix(r), n) == 0 ? key + n : key;
}

int atrest_seal(struct redis_conn *r, const char *key, const char *field, const char *plain,
                char *out, size_t outsz, char *errstr, size_t errsz)
{
    const struct seal_keyring *k = redis_conn_keyring(r);
    size_t n = strlen(plain);

    if (!k || n == 0) {
        if (n >= outsz) {
            snprintf(errstr, errsz, "value too long");
            return -1;
        }
        memcpy(out, plain, n + 1);
        return 0;
    }
    return seal_seal(k, bound_name(r, key), field, plain, n, out, outsz, errstr, errsz);
}

enum atrest_status atrest_open(struct redis_conn *r, const char *key, const char *field,
                               const char *stored, size_t len, char *out, size_t outsz,
                               char *errstr, size_t errsz)
{
    const struct seal_keyring *k = redis_conn_keyring(r);
    char id[SEAL_KEYID_MAX + 1], e[192];
    size_t plen = 0;

    if (outsz)
        out[0] = '\0';
    if (!stored || len == 0)
        return ATREST_OK;
    if (!seal_is_sealed(stored, len)) {
        if (redis_conn_seal_required(r)) {
            snprintf(errstr, errsz,
                     "stored in plain text, which redis.require_encryption refuses (run "
                     "`hsqb-worker credentials reencrypt`)");
            return ATREST_EBAD;
        }
        if (len >= outsz || memchr(stored, '\0', len)) {
            snprintf(errstr, errsz, "stored value too long or not text");
            return ATREST_EBAD;
        }
        memcpy(out, stored, len);
        out[len] = '\0';
        return ATREST_UNSEALED;
    }
    if (!k) {
        snprintf(errstr, errsz,
                 "stored encrypted (key %s) but redis.encryption_keys is not set",
                 seal_keyid_of(stored, len, id, sizeof id) == 0 ? id : "?");
        return ATREST_ENOKEY;
    }
    switch (seal_open(k, bound_name(r, key), field, stored, len, out, outsz, &plen, e, sizeof e)) {
    case SEAL_OK:
        if (strlen(out) == plen)
            return ATREST_OK;
        explicit_bzero(out, plen);
        snprintf(errstr, errsz, "stored value is not text");
        return ATREST_EBAD;
    case SEAL_EKEYID:
        snprintf(errstr, errsz, "%s: add that key to redis.encryption_keys", e);
        return ATREST_ENOKEY;
    default:
        snprintf(errstr, errsz, "%s", e);
        return ATREST_EBAD;
    }
}

/* Compare-and-set of one value: 1 replaced, 0 changed meanwhile, -1 errstr. */
static int replace(struct redis_conn *r, const char *key, const char *field, const char *was,
                   const char *now, char *errstr, size_t errsz)
{
    struct redis_script s;
    const char *keys[1] = {key}, *args[3] = {field, was, now};
    redisReply *rep;
    int rc;

    if (redis_script_init(&s, lua_replace, errstr, errsz) < 0 ||
        !(rep = redis_eval(r, &s, 1, keys, 3, args, NULL, errstr, errsz)))
        return -1;
    rc = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
    freeReplyObject(rep);
    return rc;
}

int atrest_migrate(struct redis_conn *r, const char *key, const char *field, const char *plain,
                   char *was, size_t wassz, char *errstr, size_t errsz)
{
    char *sealed;
    int rc = -1;

    if (!redis_conn_keyring(r) || !*plain)
        return 0;
    if (!(sealed = malloc(wassz))) {
        snprintf(errstr, errsz, "out of memory");
        return -1;
    }
    if (atrest_seal(r, key, field, plain, sealed, wassz, errstr, errsz) == 0 &&
        (rc = replace(r, key, field, was, sealed, errstr, errsz)) == 1)
        memcpy(was, sealed, strlen(sealed) + 1); /* fits: sealed into wassz */
    explicit_bzero(sealed, wassz);
    free(sealed);
    return rc;
}

/* The value at key/field into buf (text, bufsz); 0 with "" when none, -1 errstr. */
static int read_raw(struct redis_conn *r, const char *key, const char *field, char *buf,
                    size_t bufsz, char *errstr, size_t errsz)
{
    redisReply *rep = *field ? redis_command(r, errstr, errsz, "HGET %s %s", key, field)
                             : redis_command(r, errstr, errsz, "GET %s", key);
    int rc;

    if (!rep)
        return -1;
    if ((rc = redis_reply_str(rep, buf, bufsz)) < 0)
        snprintf(errstr, errsz, "stored value too long or not text");
    freeReplyObject(rep);
    return rc < 0 ? -1 : 0;
}

enum atrest_reseal atrest_reseal(struct redis_conn *r, const char *key, const char *field,
                                 char *errstr, size_t errsz)
{
    const struct seal_keyring *k = redis_conn_keyring(r);
    char *raw = malloc(ATREST_TEXT_MAX + 1), *plain = malloc(SEAL_MAX_PLAIN + 1);
    char *now = malloc(ATREST_TEXT_MAX + 1), id[SEAL_KEYID_MAX + 1], e[192];
    enum atrest_reseal res = ATREST_RESEAL_ERROR;
    size_t len;

    if (!k) {
        snprintf(errstr, errsz, "redis.encryption_keys is not set: nothing to encrypt with");
        goto out;
    }
    if (!raw || !plain || !now) {
        snprintf(errstr, errsz, "out of memory");
        goto out;
    }
    if (read_raw(r, key, field, raw, ATREST_TEXT_MAX + 1, errstr, errsz) < 0)
        goto out;
    res = ATREST_RESEAL_CURRENT;
    if (!(len = strlen(raw)) || (seal_keyid_of(raw, len, id, sizeof id) == 0 &&
                                 strcmp(id, seal_keyring_current(k)) == 0))
        goto out;
    res = ATREST_RESEAL_ERROR;
    if (!seal_is_sealed(raw, len)) {
        if (len > SEAL_MAX_PLAIN) {
            snprintf(errstr, errsz, "stored value too long");
            goto out;
        }
        memcpy(plain, raw, len + 1);
    } else if (seal_open(k, bound_name(r, key), field, raw, len, plain, SEAL_MAX_PLAIN + 1, NULL,
                         e, sizeof e) != SEAL_OK) {
        snprintf(errstr, errsz, "%s", e);
        goto out;
    }
    if (atrest_seal(r, key, field, plain, now, ATREST_TEXT_MAX + 1, errstr, errsz) < 0)
        goto out;
    switch (replace(r, key, field, raw, now, errstr, errsz)) {
    case 1:
        res = ATREST_RESEAL_DONE;
        break;
    case 0:
        res = ATREST_RESEAL_RACE;
        break;
    default:
        break;
    }
out:
    if (plain)
        explicit_bzero(plain, SEAL_MAX_PLAIN + 1);
    free(raw);
    free(plain);
    free(now);
    return res;
}
