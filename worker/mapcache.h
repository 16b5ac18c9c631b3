/* mapcache.h - the in-process layer in front of the Redis mapping caches (<prefix>map:*).
 *
 * Owns: a fixed-size table (MAPCACHE_ENTRIES, allocated once) of (realm, suffix) -> QBO
 * id, each entry valid for the configured TTL (cache.local_ttl). A warm worker resolves a
 * document's customer, term and every line item without a Redis round trip; a cold one
 * falls through to Redis, then QBO, exactly as before.
 *
 * Invariants: the table never holds more than MAPCACHE_ENTRIES entries (4-way sets,
 * the oldest entry of a full set is replaced), never returns an entry past its expiry,
 * and a key longer than MAPCACHE_KEY_MAX is simply not cached. It is only a cache: a
 * stale id (the entity was deleted in QBO, or another replica dropped the Redis
 * mapping) is caught by QBO's fault 610 on the create, after which the caller drops it
 * here and in Redis (resolve_forget_*) and matches afresh; the TTL bounds how long a
 * replica may keep an id another replica has dropped.
 *
 * Thread-safety: every function may be called from any thread (striped mutexes).
 */
#ifndef HSQB_MAPCACHE_H
#define HSQB_MAPCACHE_H

#include <stddef.h>
#include <stdint.h>

#define MAPCACHE_ENTRIES 16384 /* 4 MiB of entries */
#define MAPCACHE_KEY_MAX 207   /* bytes of "<realm>:<suffix>", NUL excluded */
#define MAPCACHE_VAL_MAX 64    /* bytes of a value (a QBO id), NUL included */

struct mapcache;

/* ttl_ms > 0. NULL with errstr when out of memory or ttl_ms is not positive. Caller frees
 * with mapcache_free. */
struct mapcache *mapcache_new(int64_t ttl_ms, char *errstr, size_t errsz);
/* NULL-safe. */
void mapcache_free(struct mapcache *mc);

/* 1 and the value copied into val (valsz >= MAPCACHE_VAL_MAX) when (realm, suffix) is
 * cached and fresh, else 0. mc may be NULL (always 0). */
int mapcache_get(struct mapcache *mc, const char *realm, const char *suffix, char *val,
                 size_t valsz);
/* Remember val for (realm, suffix) for the TTL from now. A value of MAPCACHE_VAL_MAX
 * bytes or more, or a key too long, is not cached. mc may be NULL (no-op). */
void mapcache_put(struct mapcache *mc, const char *realm, const char *suffix, const char *val);
/* Forget (realm, suffix). mc may be NULL (no-op). */
void mapcache_del(struct mapcache *mc, const char *realm, const char *suffix);

/* Counters since start, for metrics and tests. */
struct mapcache_stats {
    uint64_t hits, misses, puts, evictions;
};
void mapcache_stats(struct mapcache *mc, struct mapcache_stats *out);

#endif
