/* callbacks.c - the callback completer (see callbacks.h): marked results on the results
 * topic become completions of their HubSpot workflow executions, batched per portal.
 *
 * One thread does everything, in a loop that never stops polling (so the group keeps the
 * member through a long HubSpot outage): poll a message, send what is due, store the
 * offsets that became safe, pause or resume partitions. Only a request itself blocks
 * the loop: http.timeout at most, plus CB_ADMIT_WAIT_MS for the portal's rate-limit
 * admission (a longer wait is a throttle and backs off like a 429).
 *
 * A result's life in the completer:
 *
 *   polled --on_message: read (worker/callback_result.h)
 *      |     not marked, or unusable (logged) --------------------------------> settled
 *      v
 *   queued in its portal's batch (enqueue)
 *      |  due when the batch is full (callbacks.batch_size), its oldest completion
 *      |  waited callbacks.linger, or we are draining; never while backing off
 *      v
 *   send_batch: one request, one rate-limit admission, up to batch_size completions
 *      |  2xx ------------------------------------------------> settled (completed)
 *      |  5xx, 429, transport, admission timeout --> sent_transient: the portal backs
 *      |       off (full jitter, capped at callbacks.retry_cap, at least Retry-After
 *      |       up to the cap), then the same completions go again: never dropped
 *      |  4xx --> the batch is split: its completions go one per request (send_one)
 *      v
 *   send_one: 2xx -> settled (completed); 4xx -> settled (refused: logged, counted, the
 *             result on the topic stands); transient -> backoff, the split goes on after
 *
 *   partition revoked first --> dropped unsent (on_revoke): its new owner re-reads it
 *
 * Offsets: each assigned partition has an offsets tracker (worker/offsets.h) that takes
 * every polled message; a message completes there once settled, and only the contiguous
 * settled prefix is stored (enable.auto.offset.store=false; auto-commit sends what was
 * stored, a revoke and the shutdown commit synchronously). A crash re-reads whatever was
 * not settled: at least once (HubSpot refuses a second completion: counted as refused).
 *
 * Flow control: a partition holding CB_WINDOW_PAUSE unsettled results (its portals
 * backing off for long) is paused and resumed below CB_WINDOW_RESUME, so memory stays
 * bounded while the loop keeps polling. Other portals' completions still go meanwhile.
 *
 * What counts as transient is the HubSpot client's classification (api_error_retryable:
 * 5xx, 423, 429, transport, a rate-limit admission not granted in time); everything else
 * HubSpot answered, 4xx, is a refusal (reference/hubspot-api.md section 7: "callback
 * completion 4xx: permanent, do not loop") -- except 401/403 (API_AUTH). Those say our
 * token for the portal is wrong, not that the execution is: refusing would drop every
 * completion of the portal until someone fixed the token, and the executions would hang
 * in HubSpot for a week. They are held instead, retried like transient failures (backoff
 * up to callbacks.retry_cap), logged as errors, and go out once the token is fixed (an
 * execution that expired meanwhile is then refused by HubSpot, counted as refused).
 *
 * Shutdown (callbacks_stop): the partitions are paused, everything pending is sent
 * without waiting for its linger, transient failures retried until drain_ms runs out;
 * what is left unsent is not committed past, so the next start completes it.
 */
#include "worker/callbacks.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "common/backoff.h"
#include "common/clock.h"
#include "common/http.h"
#include "common/log.h"
#include "common/redis.h"
#include "worker/callback_result.h"
#include "worker/consumer.h"
#include "worker/hubspot.h"
#include "worker/metrics.h"
#include "worker/offsets.h"
#include "worker/result.h"
#include "worker/settings.h"

#define CB_POLL_MAX_MS   100  /* longest poll while nothing is due */
#define CB_SEND_PASS_MS  5000 /* a sending pass yields to polling after this long */
#define CB_ADMIT_WAIT_MS 2000 /* longest wait for a rate-limit admission per request */
#define CB_RETRY_BASE_MS 200  /* ceiling of the first retry's jittered delay */
#define CB_WINDOW_PAUSE  2000 /* unsettled results of a partition that pause it */
#define CB_WINDOW_RESUME 1000 /* ...and resume it */
/* The offsets tracker's hard limit; with pauses at CB_WINDOW_PAUSE only a prefetch queue
 * larger than librdkafka's queued.min.messages could reach it. */
#define CB_WINDOW_MAX ((size_t)1 << 22)
#define CB_ERRSZ      512

/* One completion waiting to be sent. */
struct cb_item {
    struct callback_completion c;
    int32_t partition;
    int64_t offset;
    int64_t queued_ms;
};

/* A portal's completions, oldest first, and its backoff. */
struct cb_portal {
    int64_t id;
    struct cb_item **q;
    size_t n, cap;
    size_t split; /* the first split items go one per request (their batch was refused) */
    int failing;  /* backing off: b holds the retry sequence */
    int64_t auth_since_ms; /* first 401/403 of the current run of them; 0 = none */
    struct backoff b;
    int64_t not_before_ms;
};

struct cb_part {
    int32_t partition;
    struct offsets off;
    int64_t stored; /* last offset stored, -1 none */
    int paused;     /* as applied to librdkafka */
    int fetching;   /* a message arrived since the assignment */
};

struct callbacks {
    int64_t auth_hold_ms; /* callbacks.auth_hold */
    size_t next_portal; /* where the next sending pass starts (a cut pass resumes there) */
    rd_kafka_t *rk;
    struct hubspot_api *hs; /* borrowed */
    struct metrics *m;      /* borrowed, may be NULL */
    struct http_client *http;
    struct redis_conn *redis;
    char app_url[CALLBACK_APP_URL_MAX + 1];
    char topic[256];
    char group[300];
    size_t batch_size;
    int64_t linger_ms;
    struct backoff_policy retry;
    struct cb_part *parts;
    size_t nparts, capparts;
    struct cb_portal *portals;
    size_t nportals, capportals;
    size_t pending; /* queued completions, all portals */
    int draining, fatal;
    int64_t drain_deadline;
    atomic_int stop;
    _Atomic int64_t drain_ms;
    pthread_t tid;
    int running;
};

/* ---- partitions and portals ----------------------------------------------------------- */

static struct cb_part *part_find(struct callbacks *cb, int32_t partition)
{
    for (size_t i = 0; i < cb->nparts; i++)
        if (cb->parts[i].partition == partition)
            return &cb->parts[i];
    return NULL;
}

static struct cb_portal *portal_get(struct callbacks *cb, int64_t id)
{
    struct cb_portal *p;

    for (size_t i = 0; i < cb->nportals; i++)
        if (cb->portals[i].id == id)
            return &cb->portals[i];
    if (cb->nportals == cb->capportals) {
        size_t n = cb->capportals ? 2 * cb->capportals : 8;
        struct cb_portal *np = realloc(cb->portals, n * sizeof *np);
        if (!np)
            return NULL;
        cb->portals = np;
        cb->capportals = n;
    }
    p = &cb->portals[cb->nportals++];
    memset(p, 0, sizeof *p);
    p->id = id;
    return p;
}

static void item_free(struct cb_item *it)
{
    callback_completion_release(&it->c);
    free(it);
}

/* The first k completions of p were settled (sent or refused for good): their offsets
 * complete, they leave the queue. */
static void settle_first(struct callbacks *cb, struct cb_portal *p, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        struct cb_part *part = part_find(cb, p->q[i]->partition);

        if (part)
            offsets_complete(&part->off, p->q[i]->offset);
        item_free(p->q[i]);
    }
    memmove(p->q, p->q + k, (p->n - k) * sizeof *p->q);
    p->n -= k;
    p->split = p->split > k ? p->split - k : 0;
    cb->pending -= k;
}

/* Forget the unsent completions of a revoked partition (all partitions: -1). */
static void drop_partition(struct callbacks *cb, int32_t partition)
{
    for (size_t i = 0; i < cb->nportals; i++) {
        struct cb_portal *p = &cb->portals[i];
        size_t keep = 0;

        for (size_t j = 0; j < p->n; j++) {
            if (partition < 0 || p->q[j]->partition == partition) {
                item_free(p->q[j]);
                cb->pending--;
            } else {
                p->q[keep++] = p->q[j];
            }
        }
        p->n = keep;
        if (p->split > keep)
            p->split = keep;
    }
}

/* Portals with nothing queued are forgotten (a backoff has nothing left to hold back:
 * the portal's next completion starts afresh). */
static void portals_prune(struct callbacks *cb)
{
    for (size_t i = cb->nportals; i > 0; i--) {
        struct cb_portal *p = &cb->portals[i - 1];

        if (p->n == 0) {
            free(p->q);
            *p = cb->portals[--cb->nportals];
        }
    }
}

/* ---- reading the topic ---------------------------------------------------------------- */

static int enqueue(struct callbacks *cb, struct cb_item *it)
{
    struct cb_portal *p = portal_get(cb, it->c.portal_id);

    if (!p)
        return -1;
    if (p->n == p->cap) {
        size_t n = p->cap ? 2 * p->cap : 16;
        struct cb_item **nq = realloc(p->q, n * sizeof *nq);
        if (!nq)
            return -1;
        p->q = nq;
        p->cap = n;
    }
    p->q[p->n++] = it;
    cb->pending++;
    return 0;
}

/* NEEDSWORK: only the completer stops; `run` goes on processing events, whose marked
 * results wait (uncommitted) for the next start. Nothing reports it but this log line. */
static void fatal(struct callbacks *cb, const char *what)
{
    log_error("callback completer: %s; it stops (completions resume at the next start)", what);
    cb->fatal = 1;
}

/* One polled message: settled at once unless it is a completion to send. */
static void on_message(struct callbacks *cb, rd_kafka_message_t *rkm)
{
    struct cb_part *part;
    struct cb_item *it = NULL;
    enum offsets_result orr;
    enum callback_read r;
    char why[256];

    if (rkm->err) {
        if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            log_warn("callback completer: consume error on %s/%d: %s", cb->topic,
                     (int)rkm->partition, rd_kafka_message_errstr(rkm));
        goto out;
    }
    /* not dispatched while draining or unassigned: never committed past */
    part = part_find(cb, rkm->partition);
    if (!part || cb->draining)
        goto out;
    orr = offsets_dispatch(&part->off, rkm->offset);
    if (orr == OFFSETS_STALE)
        goto out; /* at or below one already taken: a re-fetch */
    if (orr != OFFSETS_OK) {
        fatal(cb, orr == OFFSETS_FULL ? "offsets window full" : "out of memory");
        goto out;
    }
    part->fetching = 1;
    if (!(it = calloc(1, sizeof *it))) {
        fatal(cb, "out of memory");
        goto out;
    }
    r = callback_result_read(rkm->payload, rkm->payload ? rkm->len : 0, cb->app_url, &it->c, why,
                             sizeof why);
    if (r == CALLBACK_READ_INVALID)
        log_warn("callback completer: skipping %s/%d offset %" PRId64 ": %s", cb->topic,
                 (int)rkm->partition, rkm->offset, why);
    if (r != CALLBACK_READ_COMPLETE) {
        offsets_complete(&part->off, rkm->offset);
        goto out;
    }
    it->partition = rkm->partition;
    it->offset = rkm->offset;
    it->queued_ms = clock_mono_ms();
    if (enqueue(cb, it) < 0) {
        fatal(cb, "out of memory");
        goto out;
    }
    it = NULL;
out:
    if (it)
        item_free(it);
    rd_kafka_message_destroy(rkm);
}

/* ---- sending ---------------------------------------------------------------------------- */

static void sent_ok(struct callbacks *cb, struct cb_portal *p, size_t k)
{
    settle_first(cb, p, k);
    p->failing = 0;
    p->auth_since_ms = 0;
    p->not_before_ms = 0;
    metrics_callback(cb->m, "completed", (int64_t)k);
}

/* Whether a failed completion of p is tried again: transient failures, and our token for
 * the portal refused (401/403: the portal's completions wait for a fixed token) for up to
 * callbacks.auth_hold. Held longer, the portal's unsettled results would pause their
 * partition (CB_WINDOW_PAUSE) and stall every other portal's completions there, so after
 * that they are refused (logged as errors, counted) and the offsets move on. */
static int held(const struct callbacks *cb, struct cb_portal *p, const struct api_error *err)
{
    int64_t now = clock_mono_ms();

    if (api_error_retryable(err))
        return 1;
    if (err->cls != API_AUTH)
        return 0;
    if (p->auth_since_ms == 0)
        p->auth_since_ms = now;
    return now - p->auth_since_ms < cb->auth_hold_ms;
}

/* A transient failure of the first k: back the portal off; they go again after it. */
static void sent_transient(struct callbacks *cb, struct cb_portal *p, size_t k,
                           const struct api_error *err)
{
    int64_t now = clock_mono_ms(), delay = 0;

    if (!p->failing) {
        (void)backoff_init(&p->b, &cb->retry, 0, NULL, 0); /* checked at start */
        backoff_start(&p->b, now);
        p->failing = 1;
    }
    (void)backoff_next(&p->b, now, err->retry_after_ms > 0 ? err->retry_after_ms : -1, &delay);
    p->not_before_ms = now + delay;
    metrics_callback(cb->m, "retried", (int64_t)k);
    if (err->cls == API_AUTH) {
        log_error("callback completer: HubSpot refuses our token for portal %" PRId64
                  " (HTTP %d: %s); its %zu completions wait until the token is fixed "
                  "(hsqb-worker credentials hubspot), retrying in %" PRId64 " ms",
                  p->id, err->http_status, err->message, k, delay);
    } else if (log_enabled(LOG_WARN)) {
        struct log_field f[] = {
            LF_INT("portal", p->id),
            LF_INT("completions", (int64_t)k),
            LF_INT("attempt", p->b.attempts),
            LF_INT("retry_in_ms", delay),
            LF_INT("http_status", err->http_status),
            LF_STR("message", err->message),
        };
        log_fields(LOG_WARN, "callback completion failed transiently; retrying", f,
                   sizeof f / sizeof f[0]);
    }
}

/* HubSpot refused the first completion for good (expired, already completed, unknown):
 * logged and counted; the result on the topic stands. */
static void refused(struct callbacks *cb, struct cb_portal *p, const struct api_error *err)
{
    if (log_enabled(LOG_WARN)) {
        struct log_field f[] = {
            LF_STR("callback_id", p->q[0]->c.callback_id),
            LF_INT("portal", p->id),
            LF_INT("http_status", err->http_status),
            LF_STR("message", err->message),
        };
        log_fields(LOG_WARN, "callback completion refused by HubSpot", f, sizeof f / sizeof f[0]);
    }
    settle_first(cb, p, 1);
    p->failing = 0;
    metrics_callback(cb->m, "refused", 1);
}

static struct ioctx io_of(struct callbacks *cb)
{
    return (struct ioctx){cb->http, cb->redis, clock_mono_ms() + CB_ADMIT_WAIT_MS, NULL};
}

/* One request for the oldest completions of p, up to the batch size (a repeated callback
 * id ends the batch early: HubSpot refuses a batch that names one twice). */
static void send_batch(struct callbacks *cb, struct cb_portal *p)
{
    struct hubspot_completion done[HUBSPOT_CALLBACK_BATCH_MAX];
    struct hubspot_output_field f[HUBSPOT_CALLBACK_BATCH_MAX][CALLBACK_FIELDS_MAX];
    struct hubspot_ctx hc = {p->id};
    struct ioctx io = io_of(cb);
    struct api_error err;
    size_t k = 0;

    while (k < p->n && k < cb->batch_size) {
        const struct callback_completion *c = &p->q[k]->c;
        size_t j = 0, nf;

        while (j < k && strcmp(done[j].callback_id, c->callback_id) != 0)
            j++;
        if (j < k)
            break;
        nf = callback_completion_fields(c, f[k]); /* fills f[k] */
        done[k] = (struct hubspot_completion){c->callback_id, c->success, f[k], nf};
        k++;
    }
    if (hubspot_complete_callbacks_batch(&io, cb->hs, &hc, done, k, &err) == 0)
        sent_ok(cb, p, k);
    else if (held(cb, p, &err))
        sent_transient(cb, p, k, &err);
    else if (k == 1)
        refused(cb, p, &err);
    else {
        log_info("callback completer: portal %" PRId64 " refused a batch of %zu (%s); completing "
                 "them one by one",
                 p->id, k, err.message);
        p->split = k;
    }
}

/* The oldest completion of p alone (a refused batch being split). */
static void send_one(struct callbacks *cb, struct cb_portal *p)
{
    struct hubspot_output_field f[CALLBACK_FIELDS_MAX];
    const struct callback_completion *c = &p->q[0]->c;
    struct hubspot_completion done = {c->callback_id, c->success, f,
                                      callback_completion_fields(c, f)};
    struct hubspot_ctx hc = {p->id};
    struct ioctx io = io_of(cb);
    struct api_error err;

    if (hubspot_complete_callback(&io, cb->hs, &hc, &done, &err) == 0)
        sent_ok(cb, p, 1);
    else if (held(cb, p, &err))
        sent_transient(cb, p, 1, &err);
    else
        refused(cb, p, &err);
}

/* When p's next request may go (monotonic ms), or INT64_MAX when it has nothing. */
static int64_t due_at(const struct callbacks *cb, const struct cb_portal *p)
{
    int64_t at;

    if (p->n == 0)
        return INT64_MAX;
    at = p->q[0]->queued_ms + cb->linger_ms;
    if (p->split || p->n >= cb->batch_size || cb->draining)
        at = 0;
    return at > p->not_before_ms ? at : p->not_before_ms;
}

/* One request for every portal that is due (a portal with a backlog sends its next
 * batch at the next turn of the loop, so polling goes on between requests). */
static void send_due(struct callbacks *cb)
{
    char e[CB_ERRSZ];
    int sent = 0;
    size_t n = cb->nportals, start = n ? cb->next_portal % n : 0;
    int64_t t0 = clock_mono_ms();

    /* one request per due portal; when HubSpot is slow (each request up to http.timeout)
     * the pass is cut after CB_SEND_PASS_MS so the loop polls again (the group keeps the
     * member within max.poll.interval.ms), and the next pass starts where this one left */
    cb->next_portal = start;
    for (size_t k = 0; k < n; k++) {
        size_t i = (start + k) % n;
        struct cb_portal *p = &cb->portals[i];

        if (due_at(cb, p) > clock_mono_ms())
            continue;
        if (p->split)
            send_one(cb, p);
        else
            send_batch(cb, p);
        sent = 1;
        if (clock_mono_ms() - t0 >= CB_SEND_PASS_MS) {
            cb->next_portal = i + 1;
            break;
        }
    }
    /* the rate limiter's releases ride on the connection's next command */
    if (sent && redis_flush(cb->redis, e, sizeof e) < 0)
        log_warn("callback completer: redis: %s", e);
    portals_prune(cb);
}

static int poll_timeout(const struct callbacks *cb)
{
    int64_t now = clock_mono_ms(), t = CB_POLL_MAX_MS;

    for (size_t i = 0; i < cb->nportals; i++) {
        int64_t at = due_at(cb, &cb->portals[i]);

        if (at != INT64_MAX && at - now < t)
            t = at - now;
    }
    return t < 0 ? 0 : (int)t;
}

/* ---- offsets and flow control ------------------------------------------------------------ */

static void set_paused(struct callbacks *cb, struct cb_part *part, int pause)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t err;

    rd_kafka_topic_partition_list_add(l, cb->topic, part->partition);
    err = pause ? rd_kafka_pause_partitions(cb->rk, l) : rd_kafka_resume_partitions(cb->rk, l);
    if (!err && !l->elems[0].err)
        part->paused = pause;
    else
        log_warn("callback completer: %s %s/%d: %s", pause ? "pause" : "resume", cb->topic,
                 (int)part->partition, rd_kafka_err2str(err ? err : l->elems[0].err));
    rd_kafka_topic_partition_list_destroy(l);
}

/* Store each partition's settled prefix; pause a partition over its bound, resume it
 * under the low mark (not while draining: nothing more is read then). */
static void sweep(struct callbacks *cb)
{
    rd_kafka_topic_partition_list_t *store = NULL;

    for (size_t i = 0; i < cb->nparts; i++) {
        struct cb_part *part = &cb->parts[i];
        int64_t off = offsets_committable(&part->off);
        size_t window = offsets_window(&part->off);

        if (off > part->stored) {
            if (!store)
                store = rd_kafka_topic_partition_list_new((int)cb->nparts);
            rd_kafka_topic_partition_list_add(store, cb->topic, part->partition)->offset = off;
        }
        if (!part->paused && part->fetching && window >= CB_WINDOW_PAUSE)
            set_paused(cb, part, 1);
        else if (part->paused && !cb->draining && window < CB_WINDOW_RESUME)
            set_paused(cb, part, 0);
    }
    if (store) {
        (void)rd_kafka_offsets_store(cb->rk, store);
        for (int j = 0; j < store->cnt; j++) {
            struct cb_part *part = part_find(cb, store->elems[j].partition);

            if (!store->elems[j].err && part)
                part->stored = store->elems[j].offset;
            else if (store->elems[j].err)
                log_warn("callback completer: storing offset %" PRId64 " of %s/%d: %s",
                         store->elems[j].offset, cb->topic, (int)store->elems[j].partition,
                         rd_kafka_err2str(store->elems[j].err));
        }
        rd_kafka_topic_partition_list_destroy(store);
    }
    metrics_set_callbacks_pending(cb->m, (int64_t)cb->pending);
}

/* ---- rebalances --------------------------------------------------------------------------- */

static void on_assign(struct callbacks *cb, const rd_kafka_topic_partition_list_t *list)
{
    for (int i = 0; i < list->cnt; i++) {
        struct cb_part *part = part_find(cb, list->elems[i].partition);

        if (!part) {
            if (cb->nparts == cb->capparts) {
                size_t n = cb->capparts ? 2 * cb->capparts : 8;
                struct cb_part *np = realloc(cb->parts, n * sizeof *np);
                if (!np) {
                    fatal(cb, "out of memory tracking an assignment");
                    return;
                }
                cb->parts = np;
                cb->capparts = n;
            }
            part = &cb->parts[cb->nparts++];
            part->partition = list->elems[i].partition;
        } else { /* assigned twice without a revoke: start it afresh */
            drop_partition(cb, part->partition);
            offsets_release(&part->off);
        }
        offsets_init(&part->off, CB_WINDOW_MAX);
        part->stored = -1;
        part->paused = 0;
        part->fetching = 0;
    }
}

/* The listed partitions (all when list is NULL) leave: their unsent completions are
 * dropped, their settled prefix committed (unless the assignment was lost). */
static void on_revoke(struct callbacks *cb, const rd_kafka_topic_partition_list_t *list, int lost)
{
    rd_kafka_topic_partition_list_t *commit = rd_kafka_topic_partition_list_new(8);
    rd_kafka_resp_err_t err;

    for (size_t i = cb->nparts; i > 0; i--) {
        struct cb_part *part = &cb->parts[i - 1];
        int64_t off = offsets_committable(&part->off);
        int hit = !list;

        for (int j = 0; list && j < list->cnt && !hit; j++)
            hit = list->elems[j].partition == part->partition;
        if (!hit)
            continue;
        drop_partition(cb, part->partition);
        if (off >= 0 && !lost)
            rd_kafka_topic_partition_list_add(commit, cb->topic, part->partition)->offset = off;
        offsets_release(&part->off);
        *part = cb->parts[--cb->nparts];
    }
    if (commit->cnt > 0) {
        (void)rd_kafka_offsets_store(cb->rk, commit);
        err = rd_kafka_commit(cb->rk, commit, 0);
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
            log_warn("callback completer: commit of revoked partitions: %s", rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_destroy(commit);
    portals_prune(cb);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *list, void *opaque)
{
    struct callbacks *cb = opaque;
    int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_topic_partition_list_t *copy;
    rd_kafka_error_t *e = NULL;
    rd_kafka_resp_err_t r = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        on_assign(cb, list);
        /* no pause carried over, resumed before the assign, on a copy (worker/consumer.c,
         * rebalance_cb, says why) */
        if ((copy = rd_kafka_topic_partition_list_copy(list)) != NULL) {
            (void)rd_kafka_resume_partitions(rk, copy);
            rd_kafka_topic_partition_list_destroy(copy);
        }
        if (coop)
            e = rd_kafka_incremental_assign(rk, list);
        else
            r = rd_kafka_assign(rk, list);
        log_info("callback completer: assigned %d partition(s) of %s", list->cnt, cb->topic);
    } else {
        if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
            log_error("callback completer: rebalance error: %s", rd_kafka_err2str(err));
        on_revoke(cb, err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS ? list : NULL,
                  rd_kafka_assignment_lost(rk) == 1);
        if (coop && err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
            e = rd_kafka_incremental_unassign(rk, list);
        else
            r = rd_kafka_assign(rk, NULL);
    }
    if (e) {
        log_error("callback completer: incremental (un)assign: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    } else if (r) {
        log_error("callback completer: (un)assign: %s", rd_kafka_err2str(r));
    }
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    char fatal_msg[512];

    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, fatal_msg, sizeof fatal_msg);
        log_error("callback completer: kafka fatal error: %s", fatal_msg);
        return;
    }
    log_warn("callback completer: kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err),
             reason);
}

/* ---- the thread --------------------------------------------------------------------------- */

static void begin_drain(struct callbacks *cb)
{
    cb->draining = 1;
    cb->drain_deadline = clock_mono_ms() + atomic_load(&cb->drain_ms);
    for (size_t i = 0; i < cb->nparts; i++)
        if (!cb->parts[i].paused)
            set_paused(cb, &cb->parts[i], 1);
    log_info("callback completer: stopping; %zu completion(s) to send", cb->pending);
}

static void finish(struct callbacks *cb)
{
    rd_kafka_resp_err_t err;

    sweep(cb);
    if (cb->pending > 0)
        log_warn("callback completer: %zu completion(s) not sent by the shutdown deadline; "
                 "not committed, so the next start sends them",
                 cb->pending);
    err = rd_kafka_commit(cb->rk, NULL, 0);
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        log_warn("callback completer: final commit: %s", rd_kafka_err2str(err));
    err = rd_kafka_consumer_close(cb->rk); /* leaves the group; the revoke commits again */
    if (err)
        log_warn("callback completer: consumer close: %s", rd_kafka_err2str(err));
    on_revoke(cb, NULL, 1); /* only if close could not run the revoke: nothing to commit */
    metrics_set_callbacks_pending(cb->m, 0);
    log_info("callback completer: stopped");
}

static void *run(void *opaque)
{
    struct callbacks *cb = opaque;

    while (!cb->fatal) {
        rd_kafka_message_t *rkm;

        if (!cb->draining && atomic_load(&cb->stop))
            begin_drain(cb);
        if (cb->draining && (cb->pending == 0 || clock_mono_ms() >= cb->drain_deadline))
            break;
        rkm = rd_kafka_consumer_poll(cb->rk, poll_timeout(cb));
        if (rkm)
            on_message(cb, rkm);
        send_due(cb);
        sweep(cb);
    }
    finish(cb);
    return NULL;
}

/* ---- start and stop ----------------------------------------------------------------------- */

/* The main consumer's settings (worker/consumer.h) with this group and client id, and
 * fuller fetches: the completer batches completions per portal (callbacks.linger) anyway,
 * so a fetch may wait for 64 KB of results or half a second instead of answering each
 * result alone: at ~60 results/s per replica its consumer and poll thread woke about 1.3
 * times per event (issue 20, tests/bench/README.md). The kafka.* pass-through may still
 * override both. */
static rd_kafka_conf_t *make_conf(struct callbacks *cb, const struct config *cfg, char *errstr,
                                  size_t errsz)
{
    static const char *const fuller[] = {"fetch.wait.max.ms", "500", "fetch.min.bytes", "65536",
                                         NULL, NULL};
    rd_kafka_conf_t *conf =
        consumer_conf_new(cfg, "hsqb-worker-callbacks", cb->group, fuller, errstr, errsz);

    if (!conf)
        return NULL;
    rd_kafka_conf_set_opaque(conf, cb);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    return conf;
}

static int copy_settings(struct callbacks *cb, const struct config *cfg, char *errstr, size_t errsz)
{
    const char *group = config_get_str(cfg, "callbacks.group");
    const char *app = config_get_str(cfg, "qbo.app_url");

    if (group && *group)
        snprintf(cb->group, sizeof cb->group, "%s", group);
    else
        snprintf(cb->group, sizeof cb->group, "%s-callbacks",
                 config_get_str(cfg, "kafka.group.id"));
    snprintf(cb->topic, sizeof cb->topic, "%s", config_get_str(cfg, "kafka.topic.results"));
    if (!app || strlen(app) > CALLBACK_APP_URL_MAX) {
        snprintf(errstr, errsz, "callback completer: qbo.app_url missing or too long");
        return -1;
    }
    snprintf(cb->app_url, sizeof cb->app_url, "%s", app);
    cb->batch_size = (size_t)config_get_int(cfg, "callbacks.batch_size");
    if (cb->batch_size < 1 || cb->batch_size > HUBSPOT_CALLBACK_BATCH_MAX)
        cb->batch_size = HUBSPOT_CALLBACK_BATCH_MAX;
    cb->linger_ms = config_get_ms(cfg, "callbacks.linger");
    cb->auth_hold_ms = config_get_ms(cfg, "callbacks.auth_hold");
    cb->retry = (struct backoff_policy){
        .base_ms = CB_RETRY_BASE_MS,
        .cap_ms = config_get_ms(cfg, "callbacks.retry_cap"),
        .max_retry_after_ms = config_get_ms(cfg, "callbacks.retry_cap"),
    };
    if (cb->retry.cap_ms < cb->retry.base_ms)
        cb->retry.base_ms = cb->retry.cap_ms;
    return backoff_policy_check(&cb->retry, errstr, errsz);
}

static void callbacks_free(struct callbacks *cb)
{
    drop_partition(cb, -1);
    portals_prune(cb);
    for (size_t i = 0; i < cb->nportals; i++)
        free(cb->portals[i].q);
    free(cb->portals);
    for (size_t i = 0; i < cb->nparts; i++)
        offsets_release(&cb->parts[i].off);
    free(cb->parts);
    if (cb->rk)
        rd_kafka_destroy(cb->rk);
    http_client_free(cb->http);
    redis_conn_free(cb->redis);
    free(cb);
}

struct callbacks *callbacks_start(const struct config *cfg, struct hubspot_api *hubspot,
                                  struct metrics *metrics, char *errstr, size_t errsz)
{
    struct callbacks *cb;
    struct http_client_opts ho;
    struct redis_opts ro;
    rd_kafka_topic_partition_list_t *topics;
    rd_kafka_conf_t *conf;
    rd_kafka_resp_err_t err;
    char e[512];

    if (errsz)
        errstr[0] = '\0';
    if (result_callbacks_mode(config_get_str(cfg, "callbacks.complete")) == RESULT_CALLBACKS_OFF)
        return NULL;
    if (!hubspot) {
        snprintf(errstr, errsz, "callback completer: a HubSpot client is required");
        return NULL;
    }
    if (!(cb = calloc(1, sizeof *cb))) {
        snprintf(errstr, errsz, "callback completer: out of memory");
        return NULL;
    }
    cb->hs = hubspot;
    cb->m = metrics;
    if (copy_settings(cb, cfg, errstr, errsz) < 0)
        goto fail;
    settings_http_opts(cfg, &ho);
    settings_redis_opts(cfg, &ro);
    if (!(cb->http = http_client_new(&ho, errstr, errsz)) ||
        !(cb->redis = redis_conn_new(&ro, errstr, errsz)) ||
        !(conf = make_conf(cb, cfg, errstr, errsz)))
        goto fail;
    if (!(cb->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e))) {
        rd_kafka_conf_destroy(conf);
        snprintf(errstr, errsz, "callback completer: %s", e);
        goto fail;
    }
    rd_kafka_poll_set_consumer(cb->rk);
    topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, cb->topic, RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(cb->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) {
        snprintf(errstr, errsz, "callback completer: subscribe: %s", rd_kafka_err2str(err));
        goto fail;
    }
    if (pthread_create(&cb->tid, NULL, run, cb) != 0) {
        snprintf(errstr, errsz, "callback completer: cannot start its thread");
        rd_kafka_consumer_close(cb->rk);
        goto fail;
    }
    cb->running = 1;
    log_info("callback completer: group %s on %s, batches of %zu, linger %" PRId64 " ms", cb->group,
             cb->topic, cb->batch_size, cb->linger_ms);
    return cb;
fail:
    callbacks_free(cb);
    return NULL;
}

void callbacks_stop(struct callbacks *cb, int64_t drain_ms)
{
    if (!cb)
        return;
    atomic_store(&cb->drain_ms, drain_ms > 0 ? drain_ms : 0);
    atomic_store(&cb->stop, 1);
    if (cb->running)
        pthread_join(cb->tid, NULL);
    callbacks_free(cb);
}
