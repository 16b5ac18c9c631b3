/* metrics.c - the registry: its families, lifecycle and every update the worker makes.
 *
 * The family table (fam_defs) is the one place a metric's name, help, type, labels and
 * buckets are written; the update functions below only pick a family and label values
 * and add or store an int64, so adding a metric is one table row and one short
 * function. The series store (metrics_family.c) makes those updates lock-free; the
 * text exposition lives in metrics_render.c, so this file never formats output.
 * librdkafka's statistics are parsed here because they only feed the lag gauge.
 */
#include "worker/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/json.h"
#include "worker/metrics_internal.h"

#define STATS_MAX_DEPTH 16

static const struct bucket_def event_buckets[] = {
    {50, "0.05"}, {100, "0.1"},  {250, "0.25"}, {500, "0.5"},  {1000, "1"},   {2500, "2.5"},
    {5000, "5"},  {10000, "10"}, {20000, "20"}, {30000, "30"}, {60000, "60"},
};
static const struct bucket_def api_buckets[] = {
    {10, "0.01"}, {25, "0.025"}, {50, "0.05"}, {100, "0.1"},  {250, "0.25"}, {500, "0.5"},
    {1000, "1"},  {2500, "2.5"}, {5000, "5"},  {10000, "10"}, {30000, "30"},
};
static const struct bucket_def ingress_buckets[] = {
    {1, "0.001"}, {2, "0.002"}, {5, "0.005"}, {10, "0.01"}, {20, "0.02"}, {50, "0.05"},
    {100, "0.1"}, {250, "0.25"}, {1000, "1"}, {5000, "5"},
};
#define NBUCKETS(a) (sizeof(a) / sizeof((a)[0]))

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
    [F_INGRESS_REQUESTS] = {"hsqb_ingress_requests_total", "Requests the ingress answered, by "
        "route (actions, options, other) and HTTP status.", K_COUNTER, 0, {"route", "status"},
        2, NULL, 0},
    [F_INGRESS_DURATION] = {"hsqb_ingress_request_duration_seconds", "Time from a request's "
        "last body byte to its answer (for actions: including the broker's acknowledgement), "
        "by route.", K_HISTOGRAM, 1, {"route"}, 1, ingress_buckets, NBUCKETS(ingress_buckets)},
    [F_INGRESS_SIGNATURE] = {"hsqb_ingress_signature_failures_total", "Requests refused 401 "
        "for their signature, by reason (missing, mismatch, expired, bad_timestamp).",
        K_COUNTER, 0, {"reason"}, 1, NULL, 0},
    [F_CALLBACKS] = {"hsqb_callback_completions_total", "HubSpot workflow callbacks, by "
        "outcome (completed; refused: HubSpot refused it for good, e.g. expired or already "
        "completed; retried: a transient failure, tried again).", K_COUNTER, 0, {"outcome"}, 1,
        NULL, 0},
    [F_CALLBACKS_PENDING] = {"hsqb_callback_pending", "Callback completions read from the "
        "results topic and not yet accepted or refused by HubSpot.", K_GAUGE, 0, {NULL}, 0,
        NULL, 0},
};
/* clang-format on */

struct metrics *metrics_new(const char *version, size_t max_series, char *errstr, size_t errsz)
{
    struct metrics *m = calloc(1, sizeof(*m));
    size_t i;

    if (!m)
        goto fail;
    m->max_series = max_series != 0 ? max_series : METRICS_DEFAULT_MAX_SERIES;
    if ((m->version = strdup(version ? version : "unknown")) == NULL)
        goto fail;
    for (i = 0; i < F_COUNT; i++)
        if (metrics_family_init(&m->fam[i], &fam_defs[i], m->max_series) < 0)
            goto fail;
    pthread_mutex_init(&m->stats_lock, NULL);
    atomic_init(&m->heartbeat_ms, clock_mono_ms());
    atomic_init(&m->assigned, -1);
    m->start_time_s = metrics_process_start_time();
    return m;
fail:
    snprintf(errstr, errsz, "metrics: out of memory");
    if (m) {
        for (i = 0; i < F_COUNT; i++)
            metrics_family_release(&m->fam[i]);
        free(m->version);
        free(m);
    }
    return NULL;
}

void metrics_free(struct metrics *m)
{
    size_t i;

    if (!m)
        return;
    for (i = 0; i < F_COUNT; i++)
        metrics_family_release(&m->fam[i]);
    pthread_mutex_destroy(&m->stats_lock);
    free(m->version);
    free(m);
}

/* ---- updates ------------------------------------------------------------------------ */

static void counter_add(struct metrics *m, enum fam_id id, const char *const *labels, int64_t v)
{
    struct series *s = metrics_family_get(&m->fam[id], labels);

    if (s)
        atomic_fetch_add_explicit(&s->value, v, memory_order_relaxed);
}

static void hist_observe(struct metrics *m, enum fam_id id, const char *const *labels, int64_t ms)
{
    const struct fam_def *d = &fam_defs[id];
    struct series *s = metrics_family_get(&m->fam[id], labels);
    size_t i;

    if (!s)
        return;
    for (i = 0; i < d->nbuckets && ms > d->buckets[i].le_ms; i++)
        ;
    atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sum, ms, memory_order_relaxed);
}

void metrics_event(struct metrics *m, const char *action, const char *outcome, int64_t duration_ms)
{
    const char *l[] = {action, outcome};

    if (!m)
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

    if (!m)
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
    if (m)
        counter_add(m, F_RETRIES, &api, 1);
}

void metrics_ratelimit_wait(struct metrics *m, const char *api, int64_t ms)
{
    if (!m)
        return;
    counter_add(m, F_RL_WAITS, &api, 1);
    if (ms > 0)
        counter_add(m, F_RL_WAIT_SECONDS, &api, ms);
}

void metrics_dlq(struct metrics *m, const char *code)
{
    if (m)
        counter_add(m, F_DLQ, &code, 1);
}

void metrics_result(struct metrics *m, const char *status)
{
    if (m)
        counter_add(m, F_RESULTS, &status, 1);
}

void metrics_oauth_refresh(struct metrics *m, const char *result)
{
    if (m)
        counter_add(m, F_OAUTH_REFRESH, &result, 1);
}

void metrics_retry_publish(struct metrics *m, int deliveries, const char *reason)
{
    char a[16];
    const char *l[] = {a, reason};

    if (!m)
        return;
    if (deliveries >= 10)
        snprintf(a, sizeof(a), "10+");
    else
        snprintf(a, sizeof(a), "%d", deliveries < 1 ? 1 : deliveries);
    counter_add(m, F_RETRY_PUBLISH, l, 1);
}

void metrics_ingress_request(struct metrics *m, const char *route, int status, int64_t duration_ms)
{
    char st[16];
    const char *l[] = {route, st};

    if (!m)
        return;
    snprintf(st, sizeof(st), "%d", status);
    counter_add(m, F_INGRESS_REQUESTS, l, 1);
    if (duration_ms >= 0)
        hist_observe(m, F_INGRESS_DURATION, l, duration_ms);
}

void metrics_ingress_signature_failure(struct metrics *m, const char *reason)
{
    if (m)
        counter_add(m, F_INGRESS_SIGNATURE, &reason, 1);
}

void metrics_callback(struct metrics *m, const char *outcome, int64_t n)
{
    if (m && n > 0)
        counter_add(m, F_CALLBACKS, &outcome, n);
}

void metrics_set_callbacks_pending(struct metrics *m, int64_t n)
{
    struct series *s;

    if (m && (s = metrics_family_get(&m->fam[F_CALLBACKS_PENDING], NULL)) != NULL)
        atomic_store_explicit(&s->value, n, memory_order_relaxed);
}

void metrics_replay(struct metrics *m, const char *outcome)
{
    if (m)
        counter_add(m, F_REPLAYS, &outcome, 1);
}

void metrics_breaker_state(struct metrics *m, const char *tenant, int state, const char *state_name)
{
    struct series *s;

    if (!m)
        return;
    if ((s = metrics_family_get(&m->fam[F_BREAKER_STATE], &tenant)) != NULL)
        atomic_store_explicit(&s->value, state, memory_order_relaxed);
    counter_add(m, F_BREAKER_TRANSITIONS, &state_name, 1);
}

void metrics_set_held(struct metrics *m, int64_t n)
{
    if (m)
        atomic_store_explicit(&m->held, n, memory_order_relaxed);
}

void metrics_on_held(void *opaque, int64_t n)
{
    metrics_set_held(opaque, n);
}

void metrics_set_mapping_cache(struct metrics *m, int64_t hits, int64_t misses)
{
    if (!m)
        return;
    atomic_store_explicit(&m->map_hits, hits, memory_order_relaxed);
    atomic_store_explicit(&m->map_misses, misses, memory_order_relaxed);
}

void metrics_inflight_add(struct metrics *m, int64_t delta)
{
    if (m)
        atomic_fetch_add_explicit(&m->in_flight, delta, memory_order_relaxed);
}

void metrics_set_partitions_paused(struct metrics *m, int64_t n)
{
    if (m)
        atomic_store_explicit(&m->paused, n, memory_order_relaxed);
}

void metrics_set_inflight(struct metrics *m, int64_t n)
{
    if (m)
        atomic_store_explicit(&m->in_flight, n, memory_order_relaxed);
}

void metrics_set_partitions_assigned(struct metrics *m, int64_t n)
{
    if (m)
        atomic_store_explicit(&m->assigned, n, memory_order_relaxed);
}

int64_t metrics_partitions_assigned(const struct metrics *m)
{
    if (!m)
        return -1;
    return atomic_load_explicit(&((struct metrics *)m)->assigned, memory_order_relaxed);
}

static struct series *lag_series(struct metrics *m, const char *topic, int32_t partition)
{
    char p[16];
    const char *l[] = {topic, p};

    snprintf(p, sizeof(p), "%" PRId32, partition);
    return metrics_family_get(&m->fam[F_LAG], l);
}

void metrics_set_lag(struct metrics *m, const char *topic, int32_t partition, int64_t lag)
{
    struct series *s;

    if (!m || (s = lag_series(m, topic, partition)) == NULL)
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

    if (!m)
        return 0;
    root = json_parse_strict(json, len, STATS_MAX_DEPTH, err, sizeof(err));
    if (!root)
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
    if (m)
        atomic_store_explicit(&m->heartbeat_ms, clock_mono_ms(), memory_order_relaxed);
}

int64_t metrics_last_heartbeat_ms(const struct metrics *m)
{
    if (!m)
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

void metrics_on_in_flight(void *opaque, int64_t n)
{
    metrics_set_inflight(opaque, n);
}

void metrics_on_paused(void *opaque, int64_t n)
{
    metrics_set_partitions_paused(opaque, n);
}

void metrics_on_assigned(void *opaque, int64_t n)
{
    metrics_set_partitions_assigned(opaque, n);
}

void metrics_on_lag(void *opaque, const char *topic, int32_t partition, int64_t lag)
{
    metrics_set_lag(opaque, topic, partition, lag);
}

void metrics_on_heartbeat(void *opaque)
{
    metrics_heartbeat(opaque);
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
