/* company.c - a connected company's facts and defaults (see company.h).
 *
 * Writes go through one Lua script each, on the company's key alone (one slot), so a save
 * racing a connect by another portal cannot leave one portal's defaults under the other:
 * the save names its portal and is refused (nothing written) when the hash names another.
 * The epoch bump follows in a second command (another slot): a failure between the two
 * leaves workers on the old defaults until tenancy.cache_ttl, never on a mix.
 *
 * The cache is direct-mapped (a realm's slot is its hash modulo COMPANY_CACHE_SLOTS): a
 * collision only costs the evicted company one HMGET later.
 */
#include "worker/company.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jtape.h"
#include "common/tz.h"
#include "common/utf8.h"
#include "worker/tenancy.h"

#define F_DEPOSIT "deposit_account"
#define F_INCOME  "income_account"
#define F_FEE     "fee_item"
#define F_ZONE    "time_zone"

/* ---- checks ------------------------------------------------------------------------ */

/* 1 when s is valid UTF-8 without C0/C1 controls or DEL. */
static int printable(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), k;

    for (size_t i = 0; i < n; i += k) {
        if (!(k = jtape_utf8_len(p + i, n - i)))
            return 0;
        if (k == 1 && (p[i] < 0x20 || p[i] == 0x7f))
            return 0;
        if (k == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0) /* U+0080..U+009F */
            return 0;
    }
    return 1;
}

int company_defaults_check(const struct company_defaults *d, char *msg, size_t msgsz)
{
    const struct {
        const char *v, *what;
    } f[] = {{d->deposit_account, "The deposit account"},
             {d->income_account, "The income account"},
             {d->fee_item, "The fee item"},
             {d->time_zone, "The time zone"}};
    char e[160];

    for (size_t i = 0; i < sizeof f / sizeof *f; i++)
        if (!printable(f[i].v)) {
            snprintf(msg, msgsz, "%s contains characters QuickBooks does not take.", f[i].what);
            return -1;
        }
    if (d->time_zone[0] && !tz_zone_get(d->time_zone, e, sizeof e)) {
        snprintf(msg, msgsz,
                 "The time zone must be an IANA name this server knows, such as "
                 "America/New_York (%s).",
                 e);
        return -1;
    }
    return 0;
}

/* ---- Redis -------------------------------------------------------------------------- */

/* KEYS company key; ARGV portal, name, country, connected_at. A hash of another portal
 * is replaced (its defaults were that portal's); of the same portal, the facts updated. */
static const char CONNECTED_SRC[] =
    "local cur = redis.call('HGET', KEYS[1], 'portal')\n"
    "if cur and cur ~= ARGV[1] then redis.call('DEL', KEYS[1]) end\n"
    "redis.call('HSET', KEYS[1], 'portal', ARGV[1], 'name', ARGV[2], 'country', ARGV[3],\n"
    "           'connected_at', ARGV[4])\n"
    "return 1\n";

/* KEYS company key; ARGV portal, updated_at, then field, value pairs ("" deletes). 0 when
 * the hash names another portal (nothing written), else 1. */
static const char SAVE_SRC[] =
    "local cur = redis.call('HGET', KEYS[1], 'portal')\n"
    "if cur and cur ~= ARGV[1] then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'portal', ARGV[1], 'updated_at', ARGV[2])\n"
    "for i = 3, #ARGV, 2 do\n"
    "  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i])\n"
    "  else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end\n"
    "end\n"
    "return 1\n";

static struct redis_script s_connected, s_save;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static int s_init_rc = -1;

static void scripts_init_once(void)
{
    char e[64];

    s_init_rc = redis_script_init(&s_connected, CONNECTED_SRC, e, sizeof e) == 0 &&
                        redis_script_init(&s_save, SAVE_SRC, e, sizeof e) == 0
                    ? 0
                    : -1;
}

static int key_of(struct redis_conn *r, const char *realm, char *key, size_t keysz, char *errstr,
                  size_t errsz)
{
    size_t n = strlen(realm);

    if (n == 0 || n > TENANCY_REALM_MAX || strspn(realm, "0123456789") != n) {
        snprintf(errstr, errsz, "not a realm id");
        return -1;
    }
    if (snprintf(key, keysz, "%s" COMPANY_KEY "{%s}", redis_conn_prefix(r), realm) >= (int)keysz) {
        snprintf(errstr, errsz, "key too long");
        return -1;
    }
    return 0;
}

static int eval(struct redis_conn *r, const struct redis_script *s, const char *key, int argc,
                const char **argv, long long *out, char *errstr, size_t errsz)
{
    const char *keys[1] = {key};
    redisReply *rep;

    pthread_once(&s_once, scripts_init_once);
    if (s_init_rc < 0) {
        snprintf(errstr, errsz, "company: scripts failed to load");
        return -1;
    }
    if (!(rep = redis_eval(r, s, 1, keys, argc, argv, NULL, errstr, errsz)))
        return -1;
    *out = rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;
    freeReplyObject(rep);
    return 0;
}

int company_connected(struct redis_conn *r, const char *realm, int64_t portal, const char *name,
                      const char *country, int64_t now_ms, char *errstr, size_t errsz)
{
    char key[REDIS_MAX_KEY + 1], p[24], at[24], nm[COMPANY_NAME_MAX + 1], co[8];
    long long rc;

    if (key_of(r, realm, key, sizeof key, errstr, errsz) < 0)
        return -1;
    snprintf(p, sizeof p, "%" PRId64, portal);
    snprintf(at, sizeof at, "%" PRId64, now_ms);
    utf8_copy(nm, sizeof nm, name, COMPANY_NAME_MAX);
    snprintf(co, sizeof co, "%s", country ? country : "");
    const char *argv[] = {p, nm, co, at};
    if (eval(r, &s_connected, key, 4, argv, &rc, errstr, errsz) < 0)
        return -1;
    return tenancy_touch(r, errstr, errsz);
}

int company_defaults_save(struct redis_conn *r, const char *realm, int64_t portal,
                          const struct company_defaults *d, int64_t now_ms, char *errstr,
                          size_t errsz)
{
    char key[REDIS_MAX_KEY + 1], p[24], at[24];
    long long rc;

    if (key_of(r, realm, key, sizeof key, errstr, errsz) < 0)
        return -1;
    snprintf(p, sizeof p, "%" PRId64, portal);
    snprintf(at, sizeof at, "%" PRId64, now_ms);
    const char *argv[] = {p,       at,         F_DEPOSIT,   d->deposit_account,
                          F_INCOME, d->income_account, F_FEE, d->fee_item,
                          F_ZONE,  d->time_zone};
    if (eval(r, &s_save, key, (int)(sizeof argv / sizeof *argv), argv, &rc, errstr, errsz) < 0)
        return -1;
    if (rc != 1) {
        snprintf(errstr, errsz, "realm %s is held by another portal", realm);
        return -1;
    }
    return tenancy_touch(r, errstr, errsz);
}

static int64_t dec(const char *s)
{
    return s ? strtoll(s, NULL, 10) : 0;
}

static void copy_field(char *dst, size_t dstsz, const char *src)
{
    snprintf(dst, dstsz, "%s", src ? src : "");
}

int company_get(struct redis_conn *r, const char *realm, struct company *out, char *errstr,
                size_t errsz)
{
    char key[REDIS_MAX_KEY + 1];
    redisReply *rep;
    int found = 0;

    memset(out, 0, sizeof *out);
    if (key_of(r, realm, key, sizeof key, errstr, errsz) < 0 ||
        !(rep = redis_command(r, errstr, errsz, "HGETALL %s", key)))
        return -1;
    if (rep->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(rep);
        snprintf(errstr, errsz, "company: unexpected reply");
        return -1;
    }
    for (size_t i = 0; i + 1 < rep->elements; i += 2) {
        const char *f = rep->element[i]->str, *v = rep->element[i + 1]->str;

        if (!f || !v)
            continue;
        found = 1;
        if (strcmp(f, "portal") == 0)
            out->portal = dec(v);
        else if (strcmp(f, "name") == 0)
            copy_field(out->name, sizeof out->name, v);
        else if (strcmp(f, "country") == 0)
            copy_field(out->country, sizeof out->country, v);
        else if (strcmp(f, "connected_at") == 0)
            out->connected_at_ms = dec(v);
        else if (strcmp(f, "updated_at") == 0)
            out->updated_at_ms = dec(v);
        else if (strcmp(f, F_DEPOSIT) == 0)
            copy_field(out->d.deposit_account, sizeof out->d.deposit_account, v);
        else if (strcmp(f, F_INCOME) == 0)
            copy_field(out->d.income_account, sizeof out->d.income_account, v);
        else if (strcmp(f, F_FEE) == 0)
            copy_field(out->d.fee_item, sizeof out->d.fee_item, v);
        else if (strcmp(f, F_ZONE) == 0)
            copy_field(out->d.time_zone, sizeof out->d.time_zone, v);
    }
    freeReplyObject(rep);
    return found;
}

int company_forget(struct redis_conn *r, const char *realm, char *errstr, size_t errsz)
{
    char key[REDIS_MAX_KEY + 1];
    redisReply *rep;

    if (key_of(r, realm, key, sizeof key, errstr, errsz) < 0 ||
        !(rep = redis_command(r, errstr, errsz, "DEL %s", key)))
        return -1;
    freeReplyObject(rep);
    return tenancy_touch(r, errstr, errsz);
}

/* ---- the cache ----------------------------------------------------------------------- */

struct slot {
    char realm[TENANCY_REALM_MAX + 1]; /* "" = empty */
    uint64_t gen;
    int64_t portal; /* whose defaults d are; 0 = nobody's (none kept) */
    struct company_defaults d;
};

struct company_cache {
    pthread_mutex_t mu;
    struct slot slots[COMPANY_CACHE_SLOTS];
};

struct company_cache *company_cache_new(void)
{
    struct company_cache *cc = calloc(1, sizeof *cc);

    if (cc)
        pthread_mutex_init(&cc->mu, NULL);
    return cc;
}

void company_cache_free(struct company_cache *cc)
{
    if (!cc)
        return;
    pthread_mutex_destroy(&cc->mu);
    free(cc);
}

static size_t slot_of(const char *realm)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    for (const unsigned char *p = (const unsigned char *)realm; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (size_t)(h % COMPANY_CACHE_SLOTS);
}

/* 1 with *out when the cache holds realm under gen. */
static int cache_get(struct company_cache *cc, const char *realm, int64_t portal, uint64_t gen,
                     struct company_defaults *out)
{
    struct slot *s;
    int hit = 0;

    if (!cc)
        return 0;
    s = &cc->slots[slot_of(realm)];
    pthread_mutex_lock(&cc->mu);
    if (s->gen == gen && strcmp(s->realm, realm) == 0) {
        hit = 1;
        if (s->portal == portal)
            *out = s->d;
    }
    pthread_mutex_unlock(&cc->mu);
    return hit;
}

static void cache_put(struct company_cache *cc, const char *realm, int64_t portal, uint64_t gen,
                      const struct company_defaults *d)
{
    struct slot *s;

    if (!cc)
        return;
    s = &cc->slots[slot_of(realm)];
    pthread_mutex_lock(&cc->mu);
    snprintf(s->realm, sizeof s->realm, "%s", realm);
    s->gen = gen;
    s->portal = portal;
    s->d = *d;
    pthread_mutex_unlock(&cc->mu);
}

int company_defaults_for(struct company_cache *cc, struct redis_conn *r, const char *realm,
                         int64_t portal, uint64_t gen, struct company_defaults *out, char *errstr,
                         size_t errsz)
{
    char key[REDIS_MAX_KEY + 1];
    struct company_defaults d;
    redisReply *rep;
    int64_t owner;

    memset(out, 0, sizeof *out);
    if (gen == 0)
        cc = NULL; /* no generation to tie an entry to: always read */
    if (cache_get(cc, realm, portal, gen, out))
        return 0;
    if (key_of(r, realm, key, sizeof key, errstr, errsz) < 0 ||
        !(rep = redis_command(r, errstr, errsz, "HMGET %s portal " F_DEPOSIT " " F_INCOME " " F_FEE
                                                " " F_ZONE,
                              key)))
        return -1;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 5) {
        freeReplyObject(rep);
        snprintf(errstr, errsz, "company: unexpected reply");
        return -1;
    }
    memset(&d, 0, sizeof d);
    owner = dec(rep->element[0]->str);
    copy_field(d.deposit_account, sizeof d.deposit_account, rep->element[1]->str);
    copy_field(d.income_account, sizeof d.income_account, rep->element[2]->str);
    copy_field(d.fee_item, sizeof d.fee_item, rep->element[3]->str);
    copy_field(d.time_zone, sizeof d.time_zone, rep->element[4]->str);
    freeReplyObject(rep);
    cache_put(cc, realm, owner, gen, &d);
    if (owner == portal)
        *out = d;
    return 0;
}
