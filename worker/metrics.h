/* metrics.h - the worker's Prometheus registry (text exposition format 0.0.4).
 *
 * Owns: every hsqb_* counter, gauge and histogram of the process, their label sets, and
 * the liveness heartbeat that /healthz reads. The HTTP side (worker/httpd.h) only renders.
 * Inside: metrics.c (the family table and the updates), metrics_family.c (the lock-free
 * series store), metrics_render.c (the text), sharing worker/metrics_internal.h.
 *
 * Families (all names carry their unit; HELP and TYPE lines are always rendered):
 *   hsqb_events_total{action,outcome}              counter  (outcome: METRICS_OUTCOME_*)
 *   hsqb_event_duration_seconds{action}            histogram 0.05 .. 60 s
 *   hsqb_in_flight                                 gauge
 *   hsqb_partitions_paused                         gauge
 *   hsqb_partitions_assigned                       gauge
 *   hsqb_api_calls_total{api,endpoint,status}      counter  (status: HTTP code or "error")
 *   hsqb_api_call_duration_seconds{api}            histogram 0.01 .. 30 s
 *   hsqb_retries_total{api}                        counter
 *   hsqb_ratelimit_wait_seconds_total{api}         counter
 *   hsqb_ratelimit_waits_total{api}                counter
 *   hsqb_429_total{api}                            counter  (fed by metrics_api_call)
 *   hsqb_dlq_total{code}                           counter
 *   hsqb_results_total{status}                     counter
 *   hsqb_consumer_lag{topic,partition}             gauge    (librdkafka statistics)
 *   hsqb_oauth_refresh_total{result}               counter
 *   hsqb_retry_publishes_total{attempt,reason}     counter  (attempt 1..9, "10+")
 *   hsqb_retry_held                                gauge    (retry records held in memory)
 *   hsqb_replays_total{outcome}                    counter  (rerun, duplicate, new)
 *   hsqb_breaker_state{tenant}                     gauge    (0 closed, 1 half-open, 2 open)
 *   hsqb_breaker_transitions_total{state}          counter
 *   hsqb_ingress_requests_total{route,status}      counter  (ingress: actions, options, connect, other)
 *   hsqb_ingress_request_duration_seconds{route}   histogram 0.001 .. 5 s
 *   hsqb_ingress_signature_failures_total{reason}  counter
 *   hsqb_callback_completions_total{outcome}       counter  (completed, refused, retried)
 *   hsqb_callback_pending                          gauge
 *   hsqb_metrics_series_overflow_total{metric}     counter  (label sets folded into "other")
 *   hsqb_build_info{version}                       gauge, always 1
 *   process_resident_memory_bytes, process_cpu_seconds_total, process_start_time_seconds
 *
 * Invariants:
 *  - Bounded cardinality: each family holds at most max_series label sets (metrics_new).
 *    A new label set beyond that is folded into one series whose every label value is
 *    "other", and hsqb_metrics_series_overflow_total{metric="<family>"} counts each
 *    update that was folded. Label values are truncated to METRICS_MAX_LABEL_LEN bytes
 *    (on a UTF-8 boundary). Callers pass bounded vocabularies anyway: `endpoint` is a
 *    route template such as "GET /crm/v3/objects/{type}/{id}", never a raw path with
 *    ids; `code` is an enum hsqb_error name; `action` an action name.
 *  - Series are never removed, except consumer-lag series, which are hidden from the
 *    output when a later librdkafka statistics snapshot no longer lists the partition
 *    (revoked) and shown again when it reappears.
 *  - Histograms render cumulative buckets whose +Inf bucket equals _count, even while
 *    other threads observe (the count is derived from the buckets).
 *
 * Thread-safety: every update function may be called from any thread at any time
 * between metrics_new() and metrics_free(). Updates of an existing series are lock-free
 * (relaxed atomics); only the first use of a new label set takes the family's mutex.
 * metrics_render() may run concurrently with updates; it sees each value atomically but
 * not a single consistent snapshot across series. Every `m` argument may be NULL, which
 * makes the call a no-op (tests and tools that run without metrics). String arguments
 * are borrowed for the duration of the call; NULL strings render as "".
 */
#ifndef HSQB_METRICS_H
#define HSQB_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct metrics;

#define METRICS_DEFAULT_MAX_SERIES 256        /* label sets per family before folding */
#define METRICS_MAX_LABEL_LEN      128        /* bytes of one label value */
#define METRICS_MAX_RENDER         (8u << 20) /* cap on the rendered text */

/* Values for metrics_event()'s outcome. */
#define METRICS_OUTCOME_SUCCEEDED "succeeded" /* result published with status succeeded */
#define METRICS_OUTCOME_FAILED    "failed"    /* result published with status failed */
#define METRICS_OUTCOME_DUPLICATE "duplicate" /* done marker hit: stored result re-published */
#define METRICS_OUTCOME_RETRIED   "retried"   /* sent to the retry topic / re-dispatched */

/* Values for api labels (free text is accepted, these are the ones the worker uses). */
#define METRICS_API_HUBSPOT "hubspot"
#define METRICS_API_QBO     "qbo"
#define METRICS_API_OAUTH   "oauth"

/* Creates the registry. version is copied into hsqb_build_info (NULL -> "unknown").
 * max_series: label sets per family, 0 means METRICS_DEFAULT_MAX_SERIES.
 * Returns NULL (errstr filled) on allocation failure. Caller frees with metrics_free(). */
struct metrics *metrics_new(const char *version, size_t max_series, char *errstr, size_t errsz);
/* m may be NULL. No other thread may use m during or after the call. */
void metrics_free(struct metrics *m);

/* One event reached an outcome (METRICS_OUTCOME_*). duration_ms >= 0 is observed in
 * hsqb_event_duration_seconds{action} (time from dispatch to outcome); pass -1 to only
 * count (e.g. a re-dispatch that has no meaningful duration). */
void metrics_event(struct metrics *m, const char *action, const char *outcome, int64_t duration_ms);

/* One upstream HTTP exchange finished. endpoint: a route template (see invariants).
 * status: the HTTP status, or <= 0 for a transport failure (rendered "error"). A 429
 * also increments hsqb_429_total{api}. duration_ms is observed in
 * hsqb_api_call_duration_seconds{api} (negative is ignored). */
void metrics_api_call(struct metrics *m, const char *api, const char *endpoint, int status,
                      int64_t duration_ms);

/* An upstream call to api is being retried (one per retry, not per event). */
void metrics_retry(struct metrics *m, const char *api);

/* A caller waited ms for the rate limiter of api: adds one wait and ms/1000 seconds. */
void metrics_ratelimit_wait(struct metrics *m, const char *api, int64_t ms);

/* One record was written to the DLQ with this error code (enum hsqb_error name). */
void metrics_dlq(struct metrics *m, const char *code);

/* One result was published; status "succeeded" or "failed". */
void metrics_result(struct metrics *m, const char *status);

/* One OAuth token refresh attempt ended; result e.g. "ok", "invalid_grant", "error",
 * "skipped" (another replica refreshed). */
void metrics_oauth_refresh(struct metrics *m, const char *result);

/* One record was written to the retry topic after delivery number `deliveries` (>= 1;
 * rendered 1..9 or "10+") failed; reason "transient", "breaker" or "requeue". */
void metrics_retry_publish(struct metrics *m, int deliveries, const char *reason);

/* The ingress answered a request on route ("actions", "options", "connect", "other") with
 * status; duration_ms >= 0 (from the last body byte to the answer) is observed. */
void metrics_ingress_request(struct metrics *m, const char *route, int status, int64_t duration_ms);
/* The ingress refused a request's signature; reason "missing", "mismatch", "expired",
 * "bad_timestamp". */
void metrics_ingress_signature_failure(struct metrics *m, const char *reason);
/* n callback completions reached outcome "completed", "refused" or "retried". */
void metrics_callback(struct metrics *m, const char *outcome, int64_t n);
/* hsqb_callback_pending = n. */
void metrics_set_callbacks_pending(struct metrics *m, int64_t n);

/* A replayed event (hsqb-replay-of) was received; outcome "rerun", "duplicate", "new". */
void metrics_replay(struct metrics *m, const char *outcome);

/* The circuit of tenant ("realm:<id>", "portal:<id>") changed to state (0 closed,
 * 1 half-open, 2 open) named state_name. Tenants beyond max_series fold into "other"
 * (whose gauge then holds the last folded tenant's state). Also counts the transition.
 * Shape-compatible with worker/breaker.h's on_change through a small adapter. */
void metrics_breaker_state(struct metrics *m, const char *tenant, int state,
                           const char *state_name);

/* hsqb_retry_held = n; metrics_on_held() is the consumer_hooks.held shape. */
void metrics_set_held(struct metrics *m, int64_t n);
void metrics_on_held(void *opaque, int64_t n);

/* hsqb_mapping_cache_lookups_total{result="hit"|"miss"} = the in-process mapping cache's
 * own counters since start (worker/mapcache.h), copied periodically by the pipeline. */
void metrics_set_mapping_cache(struct metrics *m, int64_t hits, int64_t misses);

/* hsqb_in_flight += delta (events dispatched and not finished). Use either this or
 * metrics_set_inflight() (the consumer's periodic total), not both. */
void metrics_inflight_add(struct metrics *m, int64_t delta);
/* hsqb_in_flight = n. */
void metrics_set_inflight(struct metrics *m, int64_t n);
/* hsqb_partitions_paused = n. */
void metrics_set_partitions_paused(struct metrics *m, int64_t n);
/* hsqb_partitions_assigned = n; metrics_partitions_assigned() reads it back (-1 before
 * the first report or when m is NULL), e.g. for a readiness callback. */
void metrics_set_partitions_assigned(struct metrics *m, int64_t n);
int64_t metrics_partitions_assigned(const struct metrics *m);

/* hsqb_consumer_lag{topic,partition} = lag (>= 0) and shows that series; lag < 0
 * (librdkafka does not know it, or the partition was revoked) hides the series until a
 * later lag >= 0. */
void metrics_set_lag(struct metrics *m, const char *topic, int32_t partition, int64_t lag);

/* Feeds a librdkafka statistics JSON document (the stats_cb payload; json is borrowed,
 * len bytes, no NUL needed). For each topics.<t>.partitions.<p> with p >= 0 and a
 * consumer_lag >= 0, sets hsqb_consumer_lag; partitions absent from the document (or
 * with an unknown lag) are hidden until they come back. Returns 0, or -1 when the
 * document is not parseable JSON (nothing changed). A producer's statistics ("type" not
 * "consumer") are ignored, so one stats callback may serve both handles. An alternative
 * to the consumer's lag hook (metrics_on_lag): use one of the two. */
int metrics_kafka_stats(struct metrics *m, const char *json, size_t len);

/* Liveness: records "the main loop made progress now" (monotonic clock). The consumer's
 * poll loop calls it every iteration; cheap (one relaxed atomic store). */
void metrics_heartbeat(struct metrics *m);
/* Monotonic ms of the last heartbeat, or of metrics_new() when none happened yet;
 * -1 when m is NULL. */
int64_t metrics_last_heartbeat_ms(const struct metrics *m);

/* Renders every family as Prometheus text (version 0.0.4) including the process
 * metrics read from /proc/self at this moment. On success returns 0 and sets *out (a
 * NUL-terminated string, caller frees with free()) and *len (bytes, without the NUL;
 * len may be NULL). Returns -1 with errstr on allocation failure or when the text would
 * exceed METRICS_MAX_RENDER. */
int metrics_render(struct metrics *m, char **out, size_t *len, char *errstr, size_t errsz);

/* ---- hooks for the API clients ------------------------------------------------------
 * The HubSpot and QBO clients report through function pointers with these exact shapes
 * so they never include this header; cmd_run.c wires them with opaque = the struct
 * metrics *. Same semantics as metrics_api_call() / metrics_ratelimit_wait(). */
void metrics_on_api_call(void *opaque, const char *api, const char *endpoint, int status,
                         int64_t duration_ms);
void metrics_on_ratelimit_wait(void *opaque, const char *api, int64_t ms);
void metrics_on_retry(void *opaque, const char *api);

/* Shapes of worker/consumer.h's struct consumer_hooks (opaque = the struct metrics *):
 * in_flight -> metrics_set_inflight, paused -> metrics_set_partitions_paused,
 * assigned -> metrics_set_partitions_assigned, lag -> metrics_set_lag,
 * heartbeat -> metrics_heartbeat. */
void metrics_on_in_flight(void *opaque, int64_t n);
void metrics_on_paused(void *opaque, int64_t n);
void metrics_on_assigned(void *opaque, int64_t n);
void metrics_on_lag(void *opaque, const char *topic, int32_t partition, int64_t lag);
void metrics_on_heartbeat(void *opaque);
/* Shape of worker/oauth.h's oauth_hooks.refresh -> metrics_oauth_refresh. */
void metrics_on_oauth_refresh(void *opaque, const char *result);

/* The same three pointers in one struct, for modules that take a hooks struct. */
struct metrics_hooks {
    void (*on_api_call)(void *opaque, const char *api, const char *endpoint, int status,
                        int64_t duration_ms);
    void (*on_ratelimit_wait)(void *opaque, const char *api, int64_t ms);
    void (*on_retry)(void *opaque, const char *api);
    void *opaque;
};

/* Returns the hooks bound to m (every pointer set; opaque = m, which may be NULL). */
struct metrics_hooks metrics_hooks(struct metrics *m);

#endif
