/* metrics.c - lock-free Prometheus counters with bounded label sets.
 *
 * Each labelled family is an open-addressing hash table of atomically published series
 * pointers plus an insertion-order array for rendering. An update hashes the (sanitised)
 * label values and probes the table with acquire loads; a hit is a relaxed atomic add,
 * so the hot path never takes a lock. A miss takes the family's mutex, probes again
 * (another thread may have won the race), and either appends a new series and publishes
 * it with a release store, or, when the family already holds max_series label sets,
 * folds the update into the family's "other" series. Once a family is full, a miss goes
 * straight to "other" without the mutex, so a cardinality bug degrades into a counted
 * overflow rather than lock contention. Series are only freed by metrics_free(), which is
 * what makes the unlocked readers safe.
 *
 * Values are int64 in the unit callers measure (ms for durations); families whose
 * Prometheus unit is seconds render ms/1000 exactly with three decimals, so no floating
 * point accumulates. A histogram keeps per-bucket (non-cumulative) counts; rendering
 * accumulates them and derives _count from the same reads, so +Inf == _count always.
 */
#include "worker/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/json.h"

#define MAX_LABELS      3
#define STATS_MAX_DEPTH 16

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
    F_COUNT
};

struct bucket_def {
    int64_t le_ms;
    const char *le; /* rendered bound in seconds */
};

static const struct bucket_def event_buckets[] = {
    {50, "0.05"}, {100, "0.1"},  {250, "0.25"}, {500, "0.5"},  {1000, "1"},   {2500, "2.5"},
    {5000, "5"},  {10000, "10"}, {20000, "20"}, {30000, "30"}, {60000, "60"},
};
static const struct bucket_def api_buckets[] = {
    {10, "0.01"}, {25, "0.025"}, {50, "0.05"}, {100, "0.1"},  {250, "0.25"}, {500, "0.5"},
    {1000, "1"},  {2500, "2.5"}, {5000, "5"},  {10000, "10"}, {30000, "30"},
};
#define NBUCKETS(a) (sizeof(a) / sizeof((a)[0]))

struct fam_def {
    const char *name, *help;
    enum fam_kind kind;
    int ms_to_s; /* value stored in ms, rendered in seconds */
    const char *labels[MAX_LABELS];
    size_t nlabels;
    const struct bucket_def *buckets;
    size_t nbuckets;
};

/* clang-format off */
static const struct fam_def fam_defs[F_COUNT] = {
    [F_EVENTS] = {"hsqb_events_total", "Events that reached an outcome, by action and "
        "outcome (succeeded, failed, duplicate, retried).", K_COUNTER, 0,
        {"action", "outcome"}, 2, NULL, 0},
    [F_EVENT_DURATION] = {"hsqb_event_duration_seconds", "Time from dispatch to outcome of "
        "one event, by action.", K_HISTOGRAM, 1, {"action"}, 1, event_buckets,
        NBUCKETS(event_buckets)},
    [F_API_CALLS] = {"hsqb_api_calls_total", "Upstream HTTP calls by api, endpoint "
        "template and status (HTTP code or error).", K_COUNTER, 0,
        {"api", "endpoint", "status"}, 3, NULL, 0},
    [F_API_DURATION] = {"hsqb_api_call_duration_seconds", "Duration of upstream HTTP "
        "calls, by api.", K_HISTOGRAM, 1, {"api"}, 1, api_buckets, NBUCKETS(api_buckets)},
    [F_RETRIES] = {"hsqb_retries_total", "Upstream calls retried in process, by api.",
        K_COUNTER, 0, {"api"}, 1, NULL, 0},
    [F_RL_WAIT_SECONDS] = {"hsqb_ratelimit_wait_seconds_total", "Time spent waiting for "
        "the shared rate limiter, by api.", K_COUNTER, 1, {"api"}, 1, NULL, 0},
    [F_RL_WAITS] = {"hsqb_ratelimit_waits_total", "Requests that had to wait for the "
        "shared rate limiter, by api.", K_COUNTER, 0, {"api"}, 1, NULL, 0},
    [F_429] = {"hsqb_429_total", "HTTP 429 (rate limited) responses received, by api.",
        K_COUNTER, 0, {"api"}, 1, NULL, 0},
    [F_DLQ] = {"hsqb_dlq_total", "Records written to the dead-letter topic, by error code.",
        K_COUNTER, 0, {"code"}, 1, NULL, 0},
    [F_RESULTS] = {"hsqb_results_total", "Results published, by status.", K_COUNTER, 0,
        {"status"}, 1, NULL, 0},
    [F_LAG] = {"hsqb_consumer_lag", "Messages between the committed offset and the high "
        "watermark of each assigned partition (librdkafka statistics).", K_GAUGE, 0,
        {"topic", "partition"}, 2, NULL, 0},
    [F_OAUTH_REFRESH] = {"hsqb_oauth_refresh_total", "OAuth access-token refresh attempts, "
        "by result.", K_COUNTER, 0, {"result"}, 1, NULL, 0},
    [F_RETRY_PUBLISH] = {"hsqb_retry_publishes_total", "Records written to the retry topic, "
        "by delivery number of the failed attempt (1..9, 10+) and reason (transient: the "
        "in-process budget ran out; breaker: the tenant's circuit is open; requeue: a "
        "wait longer than retry.hold_max).", K_COUNTER, 0, {"attempt", "reason"}, 2, NULL, 0},
    [F_REPLAYS] = {"hsqb_replays_total", "Replayed events (header hsqb-replay-of) "
        "received, by outcome (rerun: a stored failure runs again; duplicate: already "
        "succeeded, stored result re-published; new: no stored outcome).", K_COUNTER, 0,
        {"outcome"}, 1, NULL, 0},
    [F_BREAKER_STATE] = {"hsqb_breaker_state", "Circuit of each tenant that ever opened "
        "(realm:<id> or portal:<id>): 0 closed, 1 half-open, 2 open. Per process.",
        K_GAUGE, 0, {"tenant"}, 1, NULL, 0},
    [F_BREAKER_TRANSITIONS] = {"hsqb_breaker_transitions_total", "Circuit state changes, by "
        "new state.", K_COUNTER, 0, {"state"}, 1, NULL, 0},
};
/* clang-format on */

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
    pthread_mutex_t stats_lock; /* serialises metrics_kafka_stats() */
    uint64_t stats_gen;
    double start_time_s;
};

/* Copy a label value: at most METRICS_MAX_LABEL_LEN bytes, cut on a UTF-8 boundary,
 * bytes that do not form valid UTF-8 replaced by '?', so the exposition stays valid. */
static void label_sanitize(char *dst, const char *src)
{
    const unsigned char *s = (const unsigned char *)(src != NULL ? src : "");
    size_t o = 0, i = 0, need, k;

    while (s[i] != '\0') {
        unsigned char c = s[i];
        if (c < 0x80)
            need = 1;
        else if (c >= 0xc2 && c <= 0xdf)
            need = 2;
        else if (c >= 0xe0 && c <= 0xef)
            need = 3;
        else if (c >= 0xf0 && c <= 0xf4)
            need = 4;
        else
            need = 0;
        for (k = 1; k < need; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                break;
        if (need > 1 && k == need) {
            /* reject overlongs and surrogates the lead byte alone does not exclude */
            if ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] > 0x9f) ||
                (c == 0xf0 && s[i + 1] < 0x90) || (c == 0xf4 && s[i + 1] > 0x8f))
                need = 0;
        } else if (need > 1) {
            need = 0;
        }
        if (o + (need ? need : 1) > METRICS_MAX_LABEL_LEN)
            break;
        if (need == 0) {
            dst[o++] = '?';
            i++;
        } else {
            memcpy(dst + o, s + i, need);
            o += need;
            i += need;
        }
    }
    dst[o] = '\0';
}

static uint64_t labels_hash(char vals[][METRICS_MAX_LABEL_LEN + 1], size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    size_t i;
    const unsigned char *p;

    for (i = 0; i < n; i++) {
        for (p = (const unsigned char *)vals[i]; *p != '\0'; p++)
            h = (h ^ *p) * 1099511628211ULL;
        h = (h ^ 0xffu) * 1099511628211ULL; /* separator: ("ab","") != ("a","b") */
    }
    return h;
}

static int series_match(const struct series *s, uint64_t h, char vals[][METRICS_MAX_LABEL_LEN + 1],
                        size_t n)
{
    size_t i;

    if (s->hash != h)
        return 0;
    for (i = 0; i < n; i++)
        if (strcmp(s->vals[i], vals[i]) != 0)
            return 0;
    return 1;
}

static struct series *table_find(struct family *f, uint64_t h,
                                 char vals[][METRICS_MAX_LABEL_LEN + 1])
{
    size_t mask = f->cap - 1, i = h & mask, probes;
    struct series *s;

    for (probes = 0; probes < f->cap; probes++, i = (i + 1) & mask) {
        s = atomic_load_explicit(&f->slots[i], memory_order_acquire);
        if (s == NULL)
            return NULL;
        if (series_match(s, h, vals, f->def->nlabels))
            return s;
    }
    return NULL;
}

static void series_free(struct series *s)
{
    size_t i;

    if (s == NULL)
        return;
    for (i = 0; i < MAX_LABELS; i++)
        free(s->vals[i]);
    free((void *)s->buckets);
    free(s);
}

static struct series *series_new(const struct fam_def *d, uint64_t h,
                                 char vals[][METRICS_MAX_LABEL_LEN + 1])
{
    struct series *s = calloc(1, sizeof(*s));
    size_t i;

    if (s == NULL)
        return NULL;
    s->hash = h;
    atomic_init(&s->visible, 1);
    for (i = 0; i < d->nlabels; i++)
        if ((s->vals[i] = strdup(vals[i])) == NULL)
            goto fail;
    if (d->kind == K_HISTOGRAM) {
        s->buckets = calloc(d->nbuckets + 1, sizeof(*s->buckets));
        if (s->buckets == NULL)
            goto fail;
    }
    return s;
fail:
    series_free(s);
    return NULL;
}

/* Under f->lock: insert s (its slot must be free) and publish it. */
static void table_insert(struct family *f, struct series *s)
{
    size_t mask = f->cap - 1, i = s->hash & mask;

    while (atomic_load_explicit(&f->slots[i], memory_order_relaxed) != NULL)
        i = (i + 1) & mask;
    f->order[atomic_load_explicit(&f->n, memory_order_relaxed)] = s;
    atomic_store_explicit(&f->slots[i], s, memory_order_release);
    atomic_fetch_add_explicit(&f->n, 1, memory_order_release);
}

/* Under f->lock: the "other" series, created on first use in the reserved last entry. */
static struct series *other_locked(struct family *f)
{
    char vals[MAX_LABELS][METRICS_MAX_LABEL_LEN + 1];
    struct series *s = atomic_load_explicit(&f->other, memory_order_acquire);
    size_t i;
    uint64_t h;

    if (s != NULL)
        return s;
    for (i = 0; i < f->def->nlabels; i++)
        snprintf(vals[i], sizeof vals[i], "other");
    h = labels_hash(vals, f->def->nlabels);
    if ((s = table_find(f, h, vals)) == NULL) {
        if ((s = series_new(f->def, h, vals)) == NULL)
            return NULL;
        table_insert(f, s);
    }
    atomic_store_explicit(&f->other, s, memory_order_release);
    return s;
}

/* The series for these label values, or NULL (allocation failure: the update is lost,
 * never the process). */
static struct series *family_get(struct family *f, const char *const *raw)
{
    char vals[MAX_LABELS][METRICS_MAX_LABEL_LEN + 1];
    size_t i, n = f->def->nlabels;
    struct series *s;
    uint64_t h;

    for (i = 0; i < n; i++)
        label_sanitize(vals[i], raw[i]);
    h = labels_hash(vals, n);
    if ((s = table_find(f, h, vals)) != NULL)
        return s;
    if (atomic_load_explicit(&f->full, memory_order_acquire) &&
        (s = atomic_load_explicit(&f->other, memory_order_acquire)) != NULL) {
        atomic_fetch_add_explicit(&f->overflow, 1, memory_order_relaxed);
        return s;
    }
    pthread_mutex_lock(&f->lock);
    if ((s = table_find(f, h, vals)) == NULL) {
        if (atomic_load_explicit(&f->n, memory_order_relaxed) < f->max) {
            if ((s = series_new(f->def, h, vals)) != NULL)
                table_insert(f, s);
        } else {
            s = other_locked(f);
            atomic_store_explicit(&f->full, 1, memory_order_release);
            atomic_fetch_add_explicit(&f->overflow, 1, memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&f->lock);
    return s;
}

static int family_init(struct family *f, const struct fam_def *d, size_t max)
{
    size_t cap = 8;

    memset(f, 0, sizeof(*f));
    f->def = d;
    f->max = max;
    while (cap < 2 * (max + 1))
        cap *= 2;
    f->cap = cap;
    f->slots = calloc(cap, sizeof(*f->slots));
    f->order = calloc(max + 1, sizeof(struct series *));
    if (f->slots == NULL || f->order == NULL) {
        free((void *)f->slots);
        free(f->order);
        return -1;
    }
    pthread_mutex_init(&f->lock, NULL);
    return 0;
}

static void family_release(struct family *f)
{
    size_t i, n;

    if (f->slots == NULL)
        return;
    n = atomic_load(&f->n);
    for (i = 0; i < n; i++)
        series_free(f->order[i]);
    free((void *)f->slots);
    free(f->order);
    pthread_mutex_destroy(&f->lock);
}

/* Wall-clock start of this process from /proc (boot time + start ticks); falls back to
 * "now" when /proc is unavailable. */
static double process_start_time(void)
{
    char buf[4096], *p;
    FILE *fp;
    unsigned long long btime = 0, start = 0;
    long tck = sysconf(_SC_CLK_TCK);
    size_t n;
    int field;

    fp = fopen("/proc/stat", "r");
    if (fp != NULL) {
        while (fgets(buf, sizeof(buf), fp) != NULL)
            if (strncmp(buf, "btime ", 6) == 0) {
                btime = strtoull(buf + 6, NULL, 10);
                break;
            }
        fclose(fp);
    }
    fp = fopen("/proc/self/stat", "r");
    if (fp != NULL) {
        n = fread(buf, 1, sizeof(buf) - 1, fp);
        buf[n] = '\0';
        fclose(fp);
        /* after the last ')' comes field 3 (state); starttime is field 22 */
        if ((p = strrchr(buf, ')')) != NULL) {
            for (field = 2, p++; *p != '\0' && field < 21; p++)
                if (*p == ' ')
                    field++;
            start = strtoull(p, NULL, 10);
        }
    }
    if (btime == 0 || start == 0 || tck <= 0)
        return (double)time(NULL);
    return (double)btime + (double)start / (double)tck;
}

struct metrics *metrics_new(const char *version, size_t max_series, char *errstr, size_t errsz)
{
    struct metrics *m = calloc(1, sizeof(*m));
    size_t i;

    if (m == NULL)
        goto fail;
    m->max_series = max_series != 0 ? max_series : METRICS_DEFAULT_MAX_SERIES;
    if ((m->version = strdup(version != NULL ? version : "unknown")) == NULL)
        goto fail;
    for (i = 0; i < F_COUNT; i++)
        if (family_init(&m->fam[i], &fam_defs[i], m->max_series) < 0)
            goto fail;
    pthread_mutex_init(&m->stats_lock, NULL);
    atomic_init(&m->heartbeat_ms, clock_mono_ms());
    atomic_init(&m->assigned, -1);
    m->start_time_s = process_start_time();
    return m;
fail:
    snprintf(errstr, errsz, "metrics: out of memory");
    if (m != NULL) {
        for (i = 0; i < F_COUNT; i++)
            family_release(&m->fam[i]);
        free(m->version);
        free(m);
    }
    return NULL;
}

void metrics_free(struct metrics *m)
{
    size_t i;

    if (m == NULL)
        return;
    for (i = 0; i < F_COUNT; i++)
        family_release(&m->fam[i]);
    pthread_mutex_destroy(&m->stats_lock);
    free(m->version);
    free(m);
}

/* ---- updates ------------------------------------------------------------------------ */

static void counter_add(struct metrics *m, enum fam_id id, const char *const *labels, int64_t v)
{
    struct series *s = family_get(&m->fam[id], labels);

    if (s != NULL)
        atomic_fetch_add_explicit(&s->value, v, memory_order_relaxed);
}

static void hist_observe(struct metrics *m, enum fam_id id, const char *const *labels, int64_t ms)
{
    const struct fam_def *d = &fam_defs[id];
    struct series *s = family_get(&m->fam[id], labels);
    size_t i;

    if (s == NULL)
        return;
    for (i = 0; i < d->nbuckets && ms > d->buckets[i].le_ms; i++)
        ;
    atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sum, ms, memory_order_relaxed);
}

void metrics_event(struct metrics *m, const char *action, const char *outcome, int64_t duration_ms)
{
    const char *l[] = {action, outcome};

    if (m == NULL)
        return;
    counter_add(m, F_EVENTS, l, 1);
    if (duration_ms >= 0)
        hist_observe(m, F_EVENT_DURATION, l, duration_ms);
}

void metrics_api_call(struct metrics *m, const char *api, const char *endpoint, int status,
                      int64_t duration_ms)
{
    char st[16];
    const char *l[] = {api, endpoint, st};

    if (m == NULL)
        return;
    if (status > 0)
        snprintf(st, sizeof(st), "%d", status);
    else
        snprintf(st, sizeof(st), "error");
    counter_add(m, F_API_CALLS, l, 1);
    if (status == 429)
        counter_add(m, F_429, l, 1);
    if (duration_ms >= 0)
        hist_observe(m, F_API_DURATION, l, duration_ms);
}

void metrics_retry(struct metrics *m, const char *api)
{
    if (m != NULL)
        counter_add(m, F_RETRIES, &api, 1);
}

void metrics_ratelimit_wait(struct metrics *m, const char *api, int64_t ms)
{
    if (m == NULL)
        return;
    counter_add(m, F_RL_WAITS, &api, 1);
    if (ms > 0)
        counter_add(m, F_RL_WAIT_SECONDS, &api, ms);
}

void metrics_dlq(struct metrics *m, const char *code)
{
    if (m != NULL)
        counter_add(m, F_DLQ, &code, 1);
}

void metrics_result(struct metrics *m, const char *status)
{
    if (m != NULL)
        counter_add(m, F_RESULTS, &status, 1);
}

void metrics_oauth_refresh(struct metrics *m, const char *result)
{
    if (m != NULL)
        counter_add(m, F_OAUTH_REFRESH, &result, 1);
}

void metrics_retry_publish(struct metrics *m, int deliveries, const char *reason)
{
    char a[16];
    const char *l[] = {a, reason};

    if (m == NULL)
        return;
    if (deliveries >= 10)
        snprintf(a, sizeof(a), "10+");
    else
        snprintf(a, sizeof(a), "%d", deliveries < 1 ? 1 : deliveries);
    counter_add(m, F_RETRY_PUBLISH, l, 1);
}

void metrics_replay(struct metrics *m, const char *outcome)
{
    if (m != NULL)
        counter_add(m, F_REPLAYS, &outcome, 1);
}

void metrics_breaker_state(struct metrics *m, const char *tenant, int state, const char *state_name)
{
    struct series *s;

    if (m == NULL)
        return;
    if ((s = family_get(&m->fam[F_BREAKER_STATE], &tenant)) != NULL)
        atomic_store_explicit(&s->value, state, memory_order_relaxed);
    counter_add(m, F_BREAKER_TRANSITIONS, &state_name, 1);
}

void metrics_set_held(struct metrics *m, int64_t n)
{
    if (m != NULL)
        atomic_store_explicit(&m->held, n, memory_order_relaxed);
}

void metrics_on_held(void *arg, int64_t n)
{
    metrics_set_held(arg, n);
}

void metrics_set_mapping_cache(struct metrics *m, int64_t hits, int64_t misses)
{
    if (m == NULL)
        return;
    atomic_store_explicit(&m->map_hits, hits, memory_order_relaxed);
    atomic_store_explicit(&m->map_misses, misses, memory_order_relaxed);
}

void metrics_inflight_add(struct metrics *m, int64_t delta)
{
    if (m != NULL)
        atomic_fetch_add_explicit(&m->in_flight, delta, memory_order_relaxed);
}

void metrics_set_partitions_paused(struct metrics *m, int64_t n)
{
    if (m != NULL)
        atomic_store_explicit(&m->paused, n, memory_order_relaxed);
}

void metrics_set_inflight(struct metrics *m, int64_t n)
{
    if (m != NULL)
        atomic_store_explicit(&m->in_flight, n, memory_order_relaxed);
}

void metrics_set_partitions_assigned(struct metrics *m, int64_t n)
{
    if (m != NULL)
        atomic_store_explicit(&m->assigned, n, memory_order_relaxed);
}

int64_t metrics_partitions_assigned(const struct metrics *m)
{
    if (m == NULL)
        return -1;
    return atomic_load_explicit(&((struct metrics *)m)->assigned, memory_order_relaxed);
}

static struct series *lag_series(struct metrics *m, const char *topic, int32_t partition)
{
    char p[16];
    const char *l[] = {topic, p};

    snprintf(p, sizeof(p), "%" PRId32, partition);
    return family_get(&m->fam[F_LAG], l);
}

void metrics_set_lag(struct metrics *m, const char *topic, int32_t partition, int64_t lag)
{
    struct series *s;

    if (m == NULL || (s = lag_series(m, topic, partition)) == NULL)
        return;
    if (lag >= 0)
        atomic_store_explicit(&s->value, lag, memory_order_relaxed);
    atomic_store_explicit(&s->visible, lag >= 0, memory_order_relaxed);
}

/* One topic of a consumer statistics document: set the lag of each listed partition and
 * mark it with the current generation. */
static void stats_topic(struct metrics *m, const char *topic, struct json_object *tobj)
{
    struct json_object *parts;
    struct series *s;
    int64_t p, v;
    char *end;

    if (!json_object_is_type(tobj, json_type_object) ||
        json_get_obj(tobj, "partitions", &parts) != JGET_OK)
        return;
    json_object_object_foreach(parts, pname, pobj)
    {
        errno = 0;
        p = strtoll(pname, &end, 10);
        if (errno != 0 || *end != '\0' || end == pname || p < 0 || p > INT32_MAX)
            continue; /* -1 is librdkafka's internal "unassigned" partition */
        if (json_get_int64(pobj, "consumer_lag", 0, INT64_MAX, &v) != JGET_OK)
            continue; /* -1: unknown (no committed offset or no watermark yet) */
        if ((s = lag_series(m, topic, (int32_t)p)) == NULL)
            continue;
        atomic_store_explicit(&s->value, v, memory_order_relaxed);
        s->stats_mark = m->stats_gen;
    }
}

int metrics_kafka_stats(struct metrics *m, const char *json, size_t len)
{
    struct json_object *root, *topics;
    const char *type;
    struct family *f;
    size_t i, n;
    char err[128];

    if (m == NULL)
        return 0;
    root = json_parse_strict(json, len, STATS_MAX_DEPTH, err, sizeof(err));
    if (root == NULL)
        return -1;
    /* a producer's statistics carry no consumer lag: they must not hide the series */
    if (json_get_str(root, "type", &type) == JGET_OK && strcmp(type, "consumer") != 0) {
        json_object_put(root);
        return 0;
    }
    pthread_mutex_lock(&m->stats_lock);
    m->stats_gen++;
    if (json_get_obj(root, "topics", &topics) == JGET_OK) {
        json_object_object_foreach(topics, tname, tobj)
        {
            stats_topic(m, tname, tobj);
        }
    }
    f = &m->fam[F_LAG];
    n = atomic_load_explicit(&f->n, memory_order_acquire);
    for (i = 0; i < n; i++)
        atomic_store_explicit(&f->order[i]->visible, f->order[i]->stats_mark == m->stats_gen,
                              memory_order_relaxed);
    pthread_mutex_unlock(&m->stats_lock);
    json_object_put(root);
    return 0;
}

void metrics_heartbeat(struct metrics *m)
{
    if (m != NULL)
        atomic_store_explicit(&m->heartbeat_ms, clock_mono_ms(), memory_order_relaxed);
}

int64_t metrics_last_heartbeat_ms(const struct metrics *m)
{
    if (m == NULL)
        return -1;
    return atomic_load_explicit(&((struct metrics *)m)->heartbeat_ms, memory_order_relaxed);
}

void metrics_on_api_call(void *opaque, const char *api, const char *endpoint, int status,
                         int64_t duration_ms)
{
    metrics_api_call(opaque, api, endpoint, status, duration_ms);
}

void metrics_on_ratelimit_wait(void *opaque, const char *api, int64_t ms)
{
    metrics_ratelimit_wait(opaque, api, ms);
}

void metrics_on_retry(void *opaque, const char *api)
{
    metrics_retry(opaque, api);
}

void metrics_on_in_flight(void *arg, int64_t n)
{
    metrics_set_inflight(arg, n);
}

void metrics_on_paused(void *arg, int64_t n)
{
    metrics_set_partitions_paused(arg, n);
}

void metrics_on_assigned(void *arg, int64_t n)
{
    metrics_set_partitions_assigned(arg, n);
}

void metrics_on_lag(void *arg, const char *topic, int32_t partition, int64_t lag)
{
    metrics_set_lag(arg, topic, partition, lag);
}

void metrics_on_heartbeat(void *arg)
{
    metrics_heartbeat(arg);
}

void metrics_on_oauth_refresh(void *opaque, const char *result)
{
    metrics_oauth_refresh(opaque, result);
}

struct metrics_hooks metrics_hooks(struct metrics *m)
{
    struct metrics_hooks h = {metrics_on_api_call, metrics_on_ratelimit_wait, metrics_on_retry, m};
    return h;
}

/* ---- rendering ---------------------------------------------------------------------- */

struct sbuf {
    char *p;
    size_t len, cap;
    int err;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int sb_reserve(struct sbuf *b, size_t more)
{
    size_t ncap;
    char *np;

    if (b->err)
        return -1;
    if (b->len + more + 1 <= b->cap)
        return 0;
    if (b->len + more + 1 > METRICS_MAX_RENDER + 1) {
        b->err = E2BIG;
        return -1;
    }
    ncap = b->cap != 0 ? b->cap : 16384;
    while (ncap < b->len + more + 1)
        ncap *= 2;
    if ((np = realloc(b->p, ncap)) == NULL) {
        b->err = ENOMEM;
        return -1;
    }
    b->p = np;
    b->cap = ncap;
    return 0;
}

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    char small[512];

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0 || sb_reserve(b, (size_t)n) < 0) {
        if (n < 0)
            b->err = EINVAL;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        memcpy(b->p + b->len, small, (size_t)n + 1);
    } else {
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

/* A label value in the exposition format: \ " and newline escaped. */
static void sb_label_value(struct sbuf *b, const char *v)
{
    size_t n = strlen(v), i;

    if (sb_reserve(b, 2 * n) < 0)
        return;
    for (i = 0; i < n; i++) {
        if (v[i] == '\\' || v[i] == '"') {
            b->p[b->len++] = '\\';
            b->p[b->len++] = v[i];
        } else if (v[i] == '\n') {
            b->p[b->len++] = '\\';
            b->p[b->len++] = 'n';
        } else {
            b->p[b->len++] = v[i];
        }
    }
    b->p[b->len] = '\0';
}

/* name{l1="v1",...[,le="x"]} */
static void sb_series_name(struct sbuf *b, const char *name, const char *suffix,
                           const struct fam_def *d, const struct series *s, const char *le)
{
    size_t i;
    int any = 0;

    sb_printf(b, "%s%s", name, suffix);
    for (i = 0; i < d->nlabels; i++) {
        sb_printf(b, "%s%s=\"", any++ ? "," : "{", d->labels[i]);
        sb_label_value(b, s->vals[i]);
        sb_printf(b, "\"");
    }
    if (le != NULL)
        sb_printf(b, "%sle=\"%s\"", any++ ? "," : "{", le);
    if (any)
        sb_printf(b, "}");
}

/* An int64 number of ms as seconds with three decimals, exactly. */
static void sb_ms_as_s(struct sbuf *b, int64_t ms)
{
    uint64_t a = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;

    sb_printf(b, "%s%" PRIu64 ".%03u", ms < 0 ? "-" : "", a / 1000, (unsigned)(a % 1000));
}

static void render_family(struct sbuf *b, struct family *f)
{
    const struct fam_def *d = f->def;
    size_t i, k, n = atomic_load_explicit(&f->n, memory_order_acquire);
    struct series *s;
    uint64_t cum;

    sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", d->name, d->help, d->name,
              d->kind == K_COUNTER ? "counter"
              : d->kind == K_GAUGE ? "gauge"
                                   : "histogram");
    for (i = 0; i < n; i++) {
        s = f->order[i];
        if (d->kind != K_HISTOGRAM) {
            if (!atomic_load_explicit(&s->visible, memory_order_relaxed))
                continue;
            sb_series_name(b, d->name, "", d, s, NULL);
            sb_printf(b, " ");
            if (d->ms_to_s)
                sb_ms_as_s(b, atomic_load_explicit(&s->value, memory_order_relaxed));
            else
                sb_printf(b, "%" PRId64, atomic_load_explicit(&s->value, memory_order_relaxed));
            sb_printf(b, "\n");
            continue;
        }
        for (k = 0, cum = 0; k <= d->nbuckets; k++) {
            cum += atomic_load_explicit(&s->buckets[k], memory_order_relaxed);
            sb_series_name(b, d->name, "_bucket", d, s,
                           k < d->nbuckets ? d->buckets[k].le : "+Inf");
            sb_printf(b, " %" PRIu64 "\n", cum);
        }
        sb_series_name(b, d->name, "_sum", d, s, NULL);
        sb_printf(b, " ");
        sb_ms_as_s(b, atomic_load_explicit(&s->sum, memory_order_relaxed));
        sb_printf(b, "\n");
        sb_series_name(b, d->name, "_count", d, s, NULL);
        sb_printf(b, " %" PRIu64 "\n", cum);
    }
}

static void render_process(struct sbuf *b, const struct metrics *m)
{
    char buf[4096], *p;
    FILE *fp;
    size_t n;
    int field;
    unsigned long long ut = 0, st = 0;
    long long rss = -1;
    long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);

    fp = fopen("/proc/self/stat", "r");
    if (fp != NULL) {
        n = fread(buf, 1, sizeof(buf) - 1, fp);
        buf[n] = '\0';
        fclose(fp);
        if ((p = strrchr(buf, ')')) != NULL) {
            /* fields after ')': 3 state ... 14 utime 15 stime ... 24 rss */
            for (field = 2, p++; *p != '\0'; p++) {
                if (*p != ' ')
                    continue;
                field++;
                if (field == 14)
                    ut = strtoull(p + 1, NULL, 10);
                else if (field == 15)
                    st = strtoull(p + 1, NULL, 10);
                else if (field == 24) {
                    rss = strtoll(p + 1, NULL, 10);
                    break;
                }
            }
        }
    }
    if (rss >= 0 && page > 0)
        sb_printf(b,
                  "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                  "# TYPE process_resident_memory_bytes gauge\n"
                  "process_resident_memory_bytes %lld\n",
                  rss * (long long)page);
    if (tck > 0)
        sb_printf(b,
                  "# HELP process_cpu_seconds_total Total user and system CPU time spent "
                  "in seconds.\n# TYPE process_cpu_seconds_total counter\n"
                  "process_cpu_seconds_total %.2f\n",
                  (double)(ut + st) / (double)tck);
    sb_printf(b,
              "# HELP process_start_time_seconds Start time of the process since unix "
              "epoch in seconds.\n# TYPE process_start_time_seconds gauge\n"
              "process_start_time_seconds %.2f\n",
              m->start_time_s);
}

int metrics_render(struct metrics *m, char **out, size_t *len, char *errstr, size_t errsz)
{
    struct sbuf b = {0};
    size_t i;

    if (m == NULL) {
        snprintf(errstr, errsz, "metrics: no registry");
        return -1;
    }
    sb_printf(&b, "# HELP hsqb_build_info Build information; the value is always 1.\n"
                  "# TYPE hsqb_build_info gauge\nhsqb_build_info{version=\"");
    sb_label_value(&b, m->version);
    sb_printf(&b, "\"} 1\n");
    for (i = 0; i < F_COUNT; i++)
        render_family(&b, &m->fam[i]);
    sb_printf(&b,
              "# HELP hsqb_in_flight Events dispatched to workers and not finished.\n"
              "# TYPE hsqb_in_flight gauge\nhsqb_in_flight %" PRId64 "\n",
              atomic_load_explicit(&m->in_flight, memory_order_relaxed));
    sb_printf(&b,
              "# HELP hsqb_partitions_paused Partitions paused because their in-flight "
              "bound was reached.\n# TYPE hsqb_partitions_paused gauge\n"
              "hsqb_partitions_paused %" PRId64 "\n",
              atomic_load_explicit(&m->paused, memory_order_relaxed));
    sb_printf(&b,
              "# HELP hsqb_retry_held Retry-topic records held in memory waiting for their "
              "not-before time.\n# TYPE hsqb_retry_held gauge\nhsqb_retry_held %" PRId64 "\n",
              atomic_load_explicit(&m->held, memory_order_relaxed));
    sb_printf(&b,
              "# HELP hsqb_mapping_cache_lookups_total Customer, item, term and account "
              "mappings looked up in the worker's memory (cache.local_ttl) before Redis.\n"
              "# TYPE hsqb_mapping_cache_lookups_total counter\n"
              "hsqb_mapping_cache_lookups_total{result=\"hit\"} %" PRId64 "\n"
              "hsqb_mapping_cache_lookups_total{result=\"miss\"} %" PRId64 "\n",
              atomic_load_explicit(&m->map_hits, memory_order_relaxed),
              atomic_load_explicit(&m->map_misses, memory_order_relaxed));
    sb_printf(&b,
              "# HELP hsqb_partitions_assigned Partitions assigned to this consumer (-1 "
              "before the first assignment report).\n# TYPE hsqb_partitions_assigned gauge\n"
              "hsqb_partitions_assigned %" PRId64 "\n",
              atomic_load_explicit(&m->assigned, memory_order_relaxed));
    sb_printf(&b, "# HELP hsqb_metrics_series_overflow_total Updates folded into the "
                  "\"other\" series because a family reached its label-set cap.\n"
                  "# TYPE hsqb_metrics_series_overflow_total counter\n");
    for (i = 0; i < F_COUNT; i++)
        sb_printf(&b, "hsqb_metrics_series_overflow_total{metric=\"%s\"} %" PRId64 "\n",
                  fam_defs[i].name,
                  atomic_load_explicit(&m->fam[i].overflow, memory_order_relaxed));
    render_process(&b, m);
    if (b.err) {
        snprintf(errstr, errsz, "metrics: render failed: %s",
                 b.err == E2BIG ? "output over METRICS_MAX_RENDER" : strerror(b.err));
        free(b.p);
        return -1;
    }
    if (b.p == NULL && (b.p = strdup("")) == NULL) {
        snprintf(errstr, errsz, "metrics: out of memory");
        return -1;
    }
    *out = b.p;
    if (len != NULL)
        *len = b.len;
    return 0;
}
