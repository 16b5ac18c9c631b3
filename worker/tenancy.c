/* tenancy.c - tenant bindings in Redis and the pre-flight check (see tenancy.h).
 *
 * Why this shape: the decision must hold across replicas and processes (the ingress binds,
 * every worker checks), so Redis holds it; but the check runs for every event, and issue
 * 20 counts Redis commands per event, so a worker answers from memory almost always. The
 * cache keeps only "yes" answers and ties each to a generation that the epoch bumps, which
 * gives binds and unbinds one explicit way to reach every process:
 *
 *   tenancy_bind / tenancy_unbind:  realm key (Lua CAS) -> portal index -> INCR epoch
 *   tenancy_admit:  portal connected? (hubspot_portal_connected)
 *                   -> poll the epoch (at most once a TENANCY_EPOCH_POLL_MS per process;
 *                      moved -> generation + 1: every cached answer is stale)
 *                   -> cached "realm R lets portal P in" of this generation? -> yes
 *                   -> else GET the realm's key -> yes (cached) / REALM_NOT_ALLOWED
 *
 * The generation is read before the Redis GET whose answer is cached under it, so an
 * answer read before an unbind but cached after the epoch moved is already stale.
 */
#include "worker/tenancy.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "worker/mapcache.h"

#define UNBOUND    "-" /* cached value: an unbound realm let through (allow_unbound) */
#define CACHE_NAME "tenancy"

struct tenancy {
    struct tenancy_opts o;
    struct mapcache *cache; /* realm -> "<portal or UNBOUND>/<generation>"; NULL: none */
    _Atomic uint64_t gen;
    _Atomic int64_t epoch;     /* last value read; INT64_MIN before the first read */
    _Atomic int64_t polled_ms; /* when the epoch was last read (clock_mono_ms) */
};

/* ---- scripts and keys ---------------------------------------------------------------- */

/* KEYS realm key; ARGV portal. Returns the portal the realm is bound to afterwards. */
static const char BIND_SRC[] = "local cur = redis.call('GET', KEYS[1])\n"
                               "if cur then return cur end\n"
                               "redis.call('SET', KEYS[1], ARGV[1])\n"
                               "return ARGV[1]\n";

/* KEYS realm key; ARGV portal. "" when unbound, ARGV[1] when unbound now, else the
 * other portal (nothing changed). */
static const char UNBIND_SRC[] = "local cur = redis.call('GET', KEYS[1])\n"
                                 "if not cur then return '' end\n"
                                 "if cur ~= ARGV[1] then return cur end\n"
                                 "redis.call('DEL', KEYS[1])\n"
                                 "return cur\n";

static struct redis_script s_bind, s_unbind;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static int s_init_rc = -1;

static void scripts_init_once(void)
{
    char e[128];

    s_init_rc = redis_script_init(&s_bind, BIND_SRC, e, sizeof e) < 0 ||
                        redis_script_init(&s_unbind, UNBIND_SRC, e, sizeof e) < 0
                    ? -1
                    : 0;
}

static int valid_realm(const char *realm)
{
    size_t n = realm ? strspn(realm, "0123456789") : 0;
    return n >= 1 && n <= TENANCY_REALM_MAX && realm[n] == 0;
}

/* Check the arguments and make the realm's and the portal's keys (either may be NULL). */
static int keys_for(struct redis_conn *r, int64_t portal, const char *realm, char *rkey, char *pkey,
                    char *errstr, size_t errsz)
{
    const char *prefix = redis_conn_prefix(r);

    if (rkey && !valid_realm(realm)) {
        snprintf(errstr, errsz, "tenancy: a realm id is 1 to %d digits", TENANCY_REALM_MAX);
        return -1;
    }
    if (pkey && portal <= 0) {
        snprintf(errstr, errsz, "tenancy: a portal id is a positive number");
        return -1;
    }
    if (rkey)
        snprintf(rkey, REDIS_MAX_KEY + 1, "%s" TENANCY_REALM_KEY "{%s}", prefix, realm);
    if (pkey)
        snprintf(pkey, REDIS_MAX_KEY + 1, "%stenancy:portal:{%" PRId64 "}", prefix, portal);
    return 0;
}

/* A decimal portal id (a stored binding): 0 with *out, or -1. */
static int parse_portal(const char *s, size_t len, int64_t *out)
{
    char buf[24], *end;
    long long v;

    if (len == 0 || len >= sizeof buf || strspn(s, "0123456789") < len)
        return -1;
    memcpy(buf, s, len);
    buf[len] = 0;
    errno = 0;
    v = strtoll(buf, &end, 10);
    if (errno || *end || v <= 0)
        return -1;
    *out = v;
    return 0;
}

/* One command whose reply only matters as success. */
static int run(struct redis_conn *r, char *errstr, size_t errsz, const char *fmt, const char *a,
               const char *b)
{
    redisReply *rep =
        b ? redis_command(r, errstr, errsz, fmt, a, b) : redis_command(r, errstr, errsz, fmt, a);

    if (!rep)
        return -1;
    freeReplyObject(rep);
    return 0;
}

/* The realm key CAS (script), then the index (fmt: SADD or SREM), then the epoch. */
static int change(struct redis_conn *r, const struct redis_script *s, const char *idx_fmt,
                  int64_t portal, const char *realm, char *errstr, size_t errsz)
{
    char rkey[REDIS_MAX_KEY + 1], pkey[REDIS_MAX_KEY + 1], ekey[REDIS_MAX_KEY + 1], p[24];
    const char *keys[1] = {rkey}, *args[1] = {p};
    int64_t other = 0;
    redisReply *rep;

    pthread_once(&s_once, scripts_init_once);
    if (s_init_rc < 0) {
        snprintf(errstr, errsz, "tenancy: cannot hash the binding scripts");
        return -1;
    }
    if (keys_for(r, portal, realm, rkey, pkey, errstr, errsz) < 0)
        return -1;
    snprintf(p, sizeof p, "%" PRId64, portal);
    snprintf(ekey, sizeof ekey, "%stenancy:{epoch}", redis_conn_prefix(r));
    if (!(rep = redis_eval(r, s, 1, keys, 1, args, NULL, errstr, errsz)))
        return -1;
    if (rep->type != REDIS_REPLY_STRING || (rep->len > 0 && strcmp(rep->str, p) != 0 &&
                                            parse_portal(rep->str, rep->len, &other) < 0)) {
        snprintf(errstr, errsz, "tenancy: unexpected answer binding realm %s", realm);
        freeReplyObject(rep);
        return -1;
    }
    freeReplyObject(rep);
    if (other) {
        snprintf(errstr, errsz, "realm %s is bound to portal %" PRId64, realm, other);
        return -1;
    }
    if (run(r, errstr, errsz, idx_fmt, pkey, realm) < 0 ||
        run(r, errstr, errsz, "INCR %s", ekey, NULL) < 0)
        return -1;
    return 0;
}

int tenancy_touch(struct redis_conn *r, char *errstr, size_t errsz)
{
    char ekey[REDIS_MAX_KEY + 1];

    snprintf(ekey, sizeof ekey, "%stenancy:{epoch}", redis_conn_prefix(r));
    return run(r, errstr, errsz, "INCR %s", ekey, NULL);
}

int tenancy_bind(struct redis_conn *r, int64_t portal, const char *realm, char *errstr,
                 size_t errsz)
{
    return change(r, &s_bind, "SADD %s %s", portal, realm, errstr, errsz);
}

int tenancy_unbind(struct redis_conn *r, int64_t portal, const char *realm, char *errstr,
                   size_t errsz)
{
    return change(r, &s_unbind, "SREM %s %s", portal, realm, errstr, errsz);
}

int tenancy_portal_of(struct redis_conn *r, const char *realm, int64_t *portal, char *errstr,
                      size_t errsz)
{
    char rkey[REDIS_MAX_KEY + 1];
    redisReply *rep;
    int rc = 0;

    if (keys_for(r, 0, realm, rkey, NULL, errstr, errsz) < 0 ||
        !(rep = redis_command(r, errstr, errsz, "GET %s", rkey)))
        return -1;
    if (rep->type == REDIS_REPLY_STRING && parse_portal(rep->str, rep->len, portal) == 0) {
        rc = 1;
    } else if (rep->type != REDIS_REPLY_NIL) {
        snprintf(errstr, errsz, "tenancy: the binding of realm %s is not a portal id", realm);
        rc = -1;
    }
    freeReplyObject(rep);
    return rc;
}

/* Realm ids ascending: shorter first, then by digits. */
static int cmp_realm(const void *a, const void *b)
{
    size_t la = strlen(a), lb = strlen(b);
    return la != lb ? (la < lb ? -1 : 1) : strcmp(a, b);
}

int tenancy_realms(struct redis_conn *r, int64_t portal, char (*out)[TENANCY_REALM_MAX + 1],
                   size_t max, size_t *n, char *errstr, size_t errsz)
{
    char pkey[REDIS_MAX_KEY + 1], (*all)[TENANCY_REALM_MAX + 1] = NULL;
    redisReply *rep = NULL;
    size_t k = 0;
    int64_t bound;
    int rc = -1;

    if (keys_for(r, portal, NULL, NULL, pkey, errstr, errsz) < 0 ||
        !(rep = redis_command(r, errstr, errsz, "SMEMBERS %s", pkey)))
        return -1;
    if (rep->type != REDIS_REPLY_ARRAY) {
        snprintf(errstr, errsz, "tenancy: unexpected answer listing portal %" PRId64, portal);
        goto out;
    }
    if (rep->elements && !(all = calloc(rep->elements, sizeof *all))) {
        snprintf(errstr, errsz, "tenancy: out of memory");
        goto out;
    }
    for (size_t i = 0; i < rep->elements; i++) {
        const redisReply *m = rep->element[i];
        int b;

        if (m->type != REDIS_REPLY_STRING || !valid_realm(m->str))
            continue;
        if ((b = tenancy_portal_of(r, m->str, &bound, errstr, errsz)) < 0)
            goto out;
        if (b == 1 && bound == portal) {
            memcpy(all[k++], m->str, m->len + 1);
        } else if (run(r, errstr, errsz, "SREM %s %s", pkey, m->str) < 0) { /* stale */
            goto out;
        }
    }
    if (k)
        qsort(all, k, sizeof *all, cmp_realm);
    for (size_t i = 0; i < k && i < max; i++)
        memcpy(out[i], all[i], sizeof *all);
    *n = k;
    rc = 0;
out:
    free(all);
    freeReplyObject(rep);
    return rc;
}

/* ---- the check ----------------------------------------------------------------------- */

void tenancy_opts_from_config(struct tenancy_opts *o, const struct config *cfg)
{
    o->allow_unbound = config_get_bool(cfg, "tenancy.allow_unbound");
    o->cache_ttl_ms = config_get_ms(cfg, "tenancy.cache_ttl");
}

struct tenancy *tenancy_new(const struct tenancy_opts *o, char *errstr, size_t errsz)
{
    struct tenancy *t;

    if (!o || !o->hubspot) {
        snprintf(errstr, errsz, "tenancy: a HubSpot client is required");
        return NULL;
    }
    if (!(t = calloc(1, sizeof *t))) {
        snprintf(errstr, errsz, "tenancy: out of memory");
        return NULL;
    }
    t->o = *o;
    atomic_init(&t->gen, 1);
    atomic_init(&t->epoch, INT64_MIN);
    atomic_init(&t->polled_ms, INT64_MIN / 2);
    if (o->cache_ttl_ms > 0 && !(t->cache = mapcache_new(o->cache_ttl_ms, errstr, errsz))) {
        free(t);
        return NULL;
    }
    return t;
}

void tenancy_free(struct tenancy *t)
{
    if (!t)
        return;
    mapcache_free(t->cache);
    free(t);
}

void tenancy_forget(struct tenancy *t, const char *realm)
{
    if (t)
        mapcache_del(t->cache, realm, CACHE_NAME);
}

/* Read the epoch when TENANCY_EPOCH_POLL_MS passed (one thread does): moved, or not
 * readable, and every cached answer is dropped (the generation moves on). */
static void poll_epoch(struct tenancy *t, struct redis_conn *r)
{
    int64_t now = clock_mono_ms(), last = atomic_load(&t->polled_ms), epoch = 0;
    char key[REDIS_MAX_KEY + 1], e[256];
    redisReply *rep;

    if (now - last < TENANCY_EPOCH_POLL_MS ||
        !atomic_compare_exchange_strong(&t->polled_ms, &last, now))
        return;
    snprintf(key, sizeof key, "%stenancy:{epoch}", redis_conn_prefix(r));
    if (!(rep = redis_command(r, e, sizeof e, "GET %s", key))) {
        log_debug("tenancy: reading the epoch failed (%s); cached bindings dropped", e);
        atomic_fetch_add(&t->gen, 1);
        return;
    }
    if (rep->type == REDIS_REPLY_STRING)
        epoch = strtoll(rep->str, NULL, 10);
    freeReplyObject(rep);
    if (atomic_exchange(&t->epoch, epoch) != epoch)
        atomic_fetch_add(&t->gen, 1);
}

/* 1 when the cache of generation gen lets portal's events into realm. */
static int cached_yes(struct tenancy *t, const char *realm, int64_t portal, uint64_t gen)
{
    char v[MAPCACHE_VAL_MAX], want[48];

    if (!mapcache_get(t->cache, realm, CACHE_NAME, v, sizeof v))
        return 0;
    snprintf(want, sizeof want, "%" PRId64 "/%" PRIu64, portal, gen);
    if (strcmp(v, want) == 0)
        return 1;
    snprintf(want, sizeof want, UNBOUND "/%" PRIu64, gen);
    return t->o.allow_unbound && strcmp(v, want) == 0;
}

static void cache_yes(struct tenancy *t, const char *realm, int64_t portal, uint64_t gen)
{
    char v[48];

    if (portal > 0)
        snprintf(v, sizeof v, "%" PRId64 "/%" PRIu64, portal, gen);
    else
        snprintf(v, sizeof v, UNBOUND "/%" PRIu64, gen);
    mapcache_put(t->cache, realm, CACHE_NAME, v);
}

uint64_t tenancy_generation(struct tenancy *t, struct redis_conn *r)
{
    if (!t->cache)
        return 0;
    poll_epoch(t, r);
    return atomic_load(&t->gen);
}

int tenancy_admit(struct tenancy *t, const struct ioctx *io, int64_t portal, const char *realm,
                  struct api_error *err)
{
    char e[256];
    int64_t bound = 0;
    uint64_t gen;
    int rc;

    api_error_clear(err);
    if ((rc = hubspot_portal_connected(io, t->o.hubspot, portal, err)) < 0)
        return -1;
    if (rc == 0) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_PORTAL_NOT_CONNECTED, 0,
                      "HubSpot portal %" PRId64
                      " is not connected: it has no token of its own (hsqb-worker credentials "
                      "hubspot) and hubspot.token_portals does not list it; no call was made",
                      portal);
        return -1;
    }
    if (t->cache)
        poll_epoch(t, io->redis);
    gen = atomic_load(&t->gen);
    if (cached_yes(t, realm, portal, gen))
        return 0;
    if ((rc = tenancy_portal_of(io->redis, realm, &bound, e, sizeof e)) < 0) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 0,
                      "reading the binding of realm %s: %s", realm, e);
        return -1;
    }
    if ((rc == 1 && bound == portal) || (rc == 0 && t->o.allow_unbound)) {
        cache_yes(t, realm, bound, gen);
        return 0;
    }
    /* One message for "bound elsewhere" and "unbound": the result goes back to the
     * event's portal, which must not learn whether another customer holds a company.
     * The operator's log says which. */
    if (rc == 1)
        log_info("tenancy: portal %" PRId64 " refused realm %s, which is bound to portal %" PRId64,
                 portal, realm, bound);
    else
        log_info("tenancy: portal %" PRId64 " refused realm %s, which is bound to no portal",
                 portal, realm);
    api_error_set(err, API_PERMANENT, HSQB_ERR_REALM_NOT_ALLOWED, 0,
                  "QuickBooks realm %s is not bound to HubSpot portal %" PRId64
                  ": connect the company to this portal (hsqb-worker credentials bind --realm %s "
                  "--portal %" PRId64 "); no call was made",
                  realm, portal, realm, portal);
    return -1;
}
