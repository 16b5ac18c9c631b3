/* metrics_internal.h - private to metrics.c, metrics_family.c and metrics_render.c.
 *
 * Owns: the registry's representation. A family (one metric name) is a table of series
 * (one label set each) built from a static struct fam_def; struct metrics holds one
 * family per enum fam_id plus the unlabelled gauges. metrics.c defines the family table
 * and the update API, metrics_family.c the lock-free series store, metrics_render.c the
 * Prometheus text. See metrics.h for the public contract and its invariants.
 *
 * Thread-safety: as metrics.h. Series are published with release stores and read with
 * acquire loads; they are freed only by metrics_family_release() (from metrics_free()),
 * which is what makes the unlocked readers safe.
 */
#ifndef HSQB_METRICS_INTERNAL_H
#define HSQB_METRICS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "worker/metrics.h"

#define MAX_LABELS 3

enum fam_kind { K_COUNTER, K_GAUGE, K_HISTOGRAM };

/* Labelled families, in render order. */
enum fam_id {
    F_EVENTS,
    F_EVENT_DURATION,
    F_API_CALLS,
    F_API_DURATION,
    F_RETRIES,
    F_RL_WAIT_SECONDS,
    F_RL_WAITS,
    F_429,
    F_DLQ,
    F_RESULTS,
    F_LAG,
    F_OAUTH_REFRESH,
    F_RETRY_PUBLISH,
    F_REPLAYS,
    F_BREAKER_STATE,
    F_BREAKER_TRANSITIONS,
    F_INGRESS_REQUESTS,
    F_INGRESS_DURATION,
    F_INGRESS_SIGNATURE,
    F_CALLBACKS,
    F_CALLBACKS_PENDING,
    F_COUNT
};

struct bucket_def {
    int64_t le_ms;
    const char *le; /* rendered bound in seconds */
};

struct fam_def {
    const char *name, *help;
    enum fam_kind kind;
    int ms_to_s; /* value stored in ms, rendered in seconds */
    const char *labels[MAX_LABELS];
    size_t nlabels;
    const struct bucket_def *buckets;
    size_t nbuckets;
};

struct series {
    char *vals[MAX_LABELS];
    uint64_t hash;
    _Atomic int64_t value;     /* counter / gauge */
    _Atomic int64_t sum;       /* histogram: sum of observations (ms) */
    _Atomic uint64_t *buckets; /* histogram: nbuckets + 1 (last is +Inf only) */
    _Atomic int visible;       /* lag series hidden after a revoke */
    uint64_t stats_mark;       /* last stats generation listing it (stats_lock) */
};

struct family {
    const struct fam_def *def;
    pthread_mutex_t lock;
    size_t cap; /* table slots, power of two > 2 * (max + 1) */
    _Atomic(struct series *) *slots;
    struct series **order; /* max + 1 entries ("other" may take the last) */
    _Atomic size_t n;      /* published entries of order */
    _Atomic(struct series *) other;
    size_t max; /* label sets before folding into "other" */
    _Atomic int full;
    _Atomic int64_t overflow; /* updates folded into "other" */
};

struct metrics {
    size_t max_series;
    char *version;
    struct family fam[F_COUNT];
    _Atomic int64_t in_flight;
    _Atomic int64_t paused;
    _Atomic int64_t assigned;
    _Atomic int64_t heartbeat_ms;
    _Atomic int64_t held;
    _Atomic int64_t map_hits, map_misses; /* copied from the mapping cache's counters */
    pthread_mutex_t stats_lock;           /* serialises metrics_kafka_stats() */
    uint64_t stats_gen;
    double start_time_s;
};

/* ---- metrics_family.c: the series store ------------------------------------------------ */

/* Sets up f for family d with at most max label sets before folding into "other".
 * 0, or -1 on allocation failure (f then holds nothing to release). */
int metrics_family_init(struct family *f, const struct fam_def *d, size_t max);
/* Frees every series of f. Safe on a zeroed f (a metrics_new() that failed part way). */
void metrics_family_release(struct family *f);
/* The series for these label values (raw: d->nlabels strings, borrowed, NULL as ""),
 * created on first use or folded into "other" when f is full. NULL only on allocation
 * failure: the update is lost, never the process. Lock-free for an existing series. */
struct series *metrics_family_get(struct family *f, const char *const *raw);

/* ---- metrics_render.c: the exposition ------------------------------------------------- */

/* Wall-clock start of this process in epoch seconds, from /proc (boot time + start
 * ticks); "now" when /proc is unavailable. Read once by metrics_new(). */
double metrics_process_start_time(void);

#endif
