/* pipeline.c - one event, start to finish (see pipeline.h for the state machine).
 *
 * This file decides what happens to an event: the early retry record, decoding, the
 * claim, the tenant's circuit, the run with its in-process retries and the routing of a
 * failure that outlived them. Carrying out the outcome (the result, the dead letter, the
 * done marker, a re-publish, the hop to the retry topic) lives in worker/outcome.c, whose
 * design comment explains the order of those last steps: the done marker is written as
 * soon as the outcome is final, so a crash after it costs a re-publish, never a re-run.
 *
 * The claim is kept alive by one lease-keeper thread for the whole process rather than
 * by checkpoints in the action: a single slow API call (rate-limit wait, 30 s timeout)
 * can outlast a lease, and the keeper renews regardless. If a renewal finds the claim
 * gone (the process stalled past its lease and another worker took over), the event is
 * flagged and the action stops before its next QBO write; the new owner finishes it,
 * protected by the requestids and the document lookup.
 */
#include "worker/pipeline.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/backoff.h"
#include "common/log.h"
#include "common/redis.h"
#include "worker/action.h"
#include "worker/action_payment.h"
#include "worker/action_sales.h"
#include "worker/breaker.h"
#include "worker/delay.h"
#include "worker/outcome.h"
#include "worker/pipeline_internal.h"
#include "worker/result.h"

#define KEEPER_MIN_PERIOD_MS 500

/* The action families, tried in order (their handles() never overlap). */
static const struct action_ops *const families[] = {&action_sales_ops, &action_payment_ops};

/* Replace a stored FAILED outcome (done marker) by our claim token; a stored success or
 * a live claim is left alone. 1 = claimed, 0 = not. */
static const char reclaim_failed_lua[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if (not v) or (string.sub(v, 1, 5) == '" REDIS_DONE_MARKER "' and\n"
    "    string.find(v, '\"type\":\"hsqb.result.failed\"', 1, true)) then\n"
    "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "  return 1\n"
    "end\n"
    "return 0\n";

/* ---- lease keeper ----------------------------------------------------------------- */

static void keeper_add(struct keeper *k, struct kept *e)
{
    pthread_mutex_lock(&k->mu);
    e->prev = NULL;
    e->next = k->head;
    if (k->head)
        k->head->prev = e;
    k->head = e;
    e->linked = 1;
    pthread_mutex_unlock(&k->mu);
}

void keeper_remove(struct keeper *k, struct kept *e)
{
    pthread_mutex_lock(&k->mu);
    if (e->linked) {
        if (e->prev)
            e->prev->next = e->next;
        else
            k->head = e->next;
        if (e->next)
            e->next->prev = e->prev;
        e->next = e->prev = NULL;
        e->linked = 0;
    }
    pthread_mutex_unlock(&k->mu);
}

/* One sweep: copy the leases under the lock, renew them without it (Redis I/O), then
 * flag the entries that are still registered and were found lost. */
static void keeper_sweep(struct keeper *k)
{
    struct {
        struct kept *e;
        struct redis_lease l;
        enum redis_owner_status st;
    } *snap = NULL;
    size_t n = 0, i, cap = 0;
    struct kept *e;
    char err[256];

    pthread_mutex_lock(&k->mu);
    for (e = k->head; e; e = e->next)
        cap++;
    if (cap)
        snap = calloc(cap, sizeof *snap);
    for (e = k->head; e && snap; e = e->next, n++) {
        snap[n].e = e;
        snap[n].l = e->lease;
    }
    pthread_mutex_unlock(&k->mu);
    for (i = 0; i < n; i++) {
        snap[i].st = redis_lease_renew(k->redis, &snap[i].l, k->lease_ms, err, sizeof err);
        if (snap[i].st == REDIS_OWNER_ERROR)
            log_warn("lease keeper: renewing %s failed: %s", snap[i].l.key, err);
    }
    pthread_mutex_lock(&k->mu);
    for (i = 0; i < n; i++) {
        if (snap[i].st != REDIS_OWNER_LOST)
            continue;
        for (e = k->head; e; e = e->next) /* still registered, same claim (token) */
            if (e == snap[i].e && strcmp(e->lease.token, snap[i].l.token) == 0) {
                atomic_store(&e->lost, 1);
                break;
            }
    }
    pthread_mutex_unlock(&k->mu);
    free(snap);
}

static void *keeper_main(void *arg)
{
    struct keeper *k = arg;
    int64_t period = k->lease_ms / 3;
    struct timespec until;

    if (period < KEEPER_MIN_PERIOD_MS)
        period = KEEPER_MIN_PERIOD_MS;
    pthread_mutex_lock(&k->mu);
    while (!k->stop) {
        clock_abstime(CLOCK_MONOTONIC, period, &until);
        while (!k->stop && pthread_cond_timedwait(&k->cv, &k->mu, &until) == 0)
            ;
        if (k->stop)
            break;
        pthread_mutex_unlock(&k->mu);
        keeper_sweep(k);
        pthread_mutex_lock(&k->mu);
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

/* ---- the pipeline ------------------------------------------------------------------- */

static void copy_str(char *dst, size_t dstsz, const char *src)
{
    snprintf(dst, dstsz, "%s", src ? src : "");
}

static void on_breaker_change(void *arg, const char *tenant, enum breaker_state st)
{
    metrics_breaker_state(arg, tenant, (int)st, breaker_state_name(st));
    if (st == BREAKER_OPEN)
        log_warn("circuit of %s open: its events go to the retry topic without API calls", tenant);
    else
        log_info("circuit of %s %s", tenant, breaker_state_name(st));
}

static struct breaker *new_breaker(const struct config *cfg, struct metrics *m, char *errstr,
                                   size_t errsz)
{
    struct breaker_opts o;

    breaker_opts_from_config(&o, cfg);
    o.on_change = on_breaker_change;
    o.arg = m;
    return breaker_new(&o, errstr, errsz);
}

struct pipeline *pipeline_new(const struct config *cfg, const struct pipeline_deps *deps,
                              char *errstr, size_t errsz)
{
    struct pipeline *p;
    pthread_condattr_t ca;

    if (!deps || !deps->hubspot || !deps->qbo || !deps->producer) {
        snprintf(errstr, errsz, "pipeline: hubspot, qbo and producer are required");
        return NULL;
    }
    p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(errstr, errsz, "pipeline: out of memory");
        return NULL;
    }
    p->deps = *deps;
    if (action_settings_from_config(&p->settings, cfg, errstr, errsz) < 0)
        goto fail;
    if (config_get_ms(cfg, "cache.local_ttl") > 0) {
        p->mapcache = mapcache_new(config_get_ms(cfg, "cache.local_ttl"), errstr, errsz);
        if (!p->mapcache)
            goto fail;
        p->settings.resolve.local = p->mapcache;
    }
    copy_str(p->group, sizeof p->group, config_get_str(cfg, "kafka.group.id"));
    snprintf(p->source, sizeof p->source, "hsqb-worker://%s", p->group);
    copy_str(p->topic_results, sizeof p->topic_results, config_get_str(cfg, "kafka.topic.results"));
    copy_str(p->topic_dlq, sizeof p->topic_dlq, config_get_str(cfg, "kafka.topic.dlq"));

    redis_opts_default(&p->ropts);
    copy_str(p->r_host, sizeof p->r_host, config_get_str(cfg, "redis.host"));
    copy_str(p->r_user, sizeof p->r_user, config_get_str(cfg, "redis.username"));
    copy_str(p->r_pass, sizeof p->r_pass, config_get_str(cfg, "redis.password"));
    copy_str(p->r_prefix, sizeof p->r_prefix, config_get_str(cfg, "redis.key_prefix"));
    p->ropts.host = p->r_host;
    p->ropts.port = (int)config_get_int(cfg, "redis.port");
    p->ropts.username = p->r_user[0] ? p->r_user : NULL;
    p->ropts.password = p->r_pass[0] ? p->r_pass : NULL;
    p->ropts.db = (int)config_get_int(cfg, "redis.db");
    p->ropts.connect_timeout_ms = (int)config_get_ms(cfg, "redis.connect_timeout");
    p->ropts.command_timeout_ms = (int)config_get_ms(cfg, "redis.command_timeout");
    p->ropts.prefix = p->r_prefix;

    http_client_opts_default(&p->hopts);
    p->hopts.connect_timeout_ms = (long)config_get_ms(cfg, "http.connect_timeout");
    p->hopts.timeout_ms = (long)config_get_ms(cfg, "http.timeout");
    p->hopts.max_body = (size_t)config_get_bytes(cfg, "http.max_response_bytes");
    copy_str(p->user_agent, sizeof p->user_agent, config_get_str(cfg, "http.user_agent"));
    p->hopts.user_agent = p->user_agent;

    p->lease_ms = config_get_ms(cfg, "claim.lease");
    p->dedup_ms = config_get_ms(cfg, "dedup.window");
    p->max_event_bytes = (size_t)config_get_bytes(cfg, "event.max_bytes");
    p->complete_callbacks = config_get_bool(cfg, "callbacks.complete");
    p->retry = (struct backoff_policy){
        .base_ms = config_get_ms(cfg, "retry.base"),
        .cap_ms = config_get_ms(cfg, "retry.cap"),
        .max_attempts = (int)config_get_int(cfg, "retry.attempts"),
        .max_elapsed_ms = config_get_ms(cfg, "retry.budget"),
        .max_retry_after_ms = config_get_ms(cfg, "retry.budget"),
    };
    if (p->retry.cap_ms < p->retry.base_ms)
        p->retry.cap_ms = p->retry.base_ms;
    if (backoff_policy_check(&p->retry, errstr, errsz) < 0 ||
        redis_script_init(&p->reclaim, reclaim_failed_lua, errstr, errsz) < 0 ||
        delay_policy_from_config(&p->delay, cfg, errstr, errsz) < 0 ||
        !(p->breaker = new_breaker(cfg, p->deps.metrics, errstr, errsz)))
        goto fail;

    p->keeper.lease_ms = p->lease_ms;
    p->keeper.redis = redis_conn_new(&p->ropts, errstr, errsz);
    if (!p->keeper.redis)
        goto fail;
    pthread_mutex_init(&p->keeper.mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->keeper.cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&p->keeper.th, NULL, keeper_main, &p->keeper) != 0) {
        snprintf(errstr, errsz, "pipeline: cannot start the lease keeper thread");
        pthread_cond_destroy(&p->keeper.cv);
        pthread_mutex_destroy(&p->keeper.mu);
        goto fail;
    }
    p->keeper.started = 1;
    return p;
fail:
    redis_conn_free(p->keeper.redis);
    breaker_free(p->breaker);
    mapcache_free(p->mapcache);
    free(p);
    return NULL;
}

void pipeline_free(struct pipeline *p)
{
    if (!p)
        return;
    if (p->keeper.started) {
        pthread_mutex_lock(&p->keeper.mu);
        p->keeper.stop = 1;
        pthread_cond_broadcast(&p->keeper.cv);
        pthread_mutex_unlock(&p->keeper.mu);
        pthread_join(p->keeper.th, NULL);
        pthread_cond_destroy(&p->keeper.cv);
        pthread_mutex_destroy(&p->keeper.mu);
    }
    redis_conn_free(p->keeper.redis);
    breaker_free(p->breaker);
    mapcache_free(p->mapcache);
    free(p);
}

struct pipeline_thread *pipeline_thread_new(struct pipeline *p, char *errstr, size_t errsz)
{
    struct pipeline_thread *t = calloc(1, sizeof *t);

    if (!t) {
        snprintf(errstr, errsz, "pipeline: out of memory");
        return NULL;
    }
    t->p = p;
    t->rnd = (uint64_t)clock_wall_ms() ^ ((uint64_t)(uintptr_t)t << 17) ^ 0x9E3779B97F4A7C15ULL;
    t->http = http_client_new(&p->hopts, errstr, errsz);
    if (!t->http)
        goto fail;
    t->redis = redis_conn_new(&p->ropts, errstr, errsz);
    if (!t->redis)
        goto fail;
    return t;
fail:
    http_client_free(t->http);
    free(t);
    return NULL;
}

void pipeline_thread_free(struct pipeline_thread *t)
{
    if (!t)
        return;
    http_client_free(t->http);
    redis_conn_free(t->redis);
    free(t);
}

/* ---- head-of-line protection (worker/breaker.h) ------------------------------------ */

#define TENANT_SZ (BREAKER_TENANT_MAX + 1)

static void tenant_realm(const struct action_event *ev, char *buf)
{
    snprintf(buf, TENANT_SZ, "realm:%s", ev->in.realm_id);
}

static void tenant_portal(const struct action_event *ev, char *buf)
{
    snprintf(buf, TENANT_SZ, "portal:%" PRId64, ev->portal_id);
}

/* The tenant a failure belongs to. NEEDSWORK: struct api_error does not name the API;
 * the HubSpot client's messages start with "hubspot", QBO's and OAuth's never do. */
static void tenant_of(const struct action_event *ev, const struct api_error *err, char *buf)
{
    if (strncasecmp(err->message, "hubspot", 7) == 0)
        tenant_portal(ev, buf);
    else
        tenant_realm(ev, buf);
}

/* The run answered (success, or a permanent failure from the tenant err names). */
static void note_answer(struct pipeline *p, const struct action_event *ev,
                        const struct api_error *err)
{
    char t[TENANT_SZ];

    if (err) {
        tenant_of(ev, err, t);
        breaker_success(p->breaker, t, clock_mono_ms());
        return;
    }
    tenant_realm(ev, t);
    breaker_success(p->breaker, t, clock_mono_ms());
    tenant_portal(ev, t);
    breaker_success(p->breaker, t, clock_mono_ms());
}

/* A transient failure; 1 when the tenant's circuit is open now (stop retrying here). */
static int note_failure(struct pipeline *p, const struct action_event *ev,
                        const struct api_error *err)
{
    char t[TENANT_SZ];

    tenant_of(ev, err, t);
    return breaker_failure(p->breaker, t, clock_mono_ms()) == BREAKER_OPEN;
}

/* 1 when the circuit of the tenant err belongs to is not closed. */
static int tenant_open(struct pipeline *p, const struct action_event *ev,
                       const struct api_error *err)
{
    char t[TENANT_SZ];

    tenant_of(ev, err, t);
    return breaker_state(p->breaker, t, clock_mono_ms()) != BREAKER_CLOSED;
}

/* ---- the run with in-process retries ---------------------------------------------- */

enum run_end { RUN_OK, RUN_FAILED, RUN_EXHAUSTED, RUN_LOST };

static enum run_end run_action(struct pipeline *p, struct pipeline_thread *t,
                               const struct action_event *ev, struct kept *k,
                               struct action_outcome *out, struct api_error *err, int *runs)
{
    const struct action_ops *ops = NULL;
    struct backoff b;
    struct action_ctx ctx;
    int64_t delay, start = clock_mono_ms(), slept;
    size_t i;
    char e[256];

    for (i = 0; i < sizeof families / sizeof families[0]; i++)
        if (families[i]->handles(ev->action, ev->object_type))
            ops = families[i];
    *runs = 1;
    if (!ops) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0,
                      "%s on a %s is not implemented by this worker version",
                      event_action_name(ev->action), object_type_name(ev->object_type));
        return RUN_FAILED;
    }
    if (backoff_init(&b, &p->retry, 0, e, sizeof e) < 0) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "%s", e);
        return RUN_FAILED;
    }
    backoff_start(&b, start);
    for (;;) {
        ctx = (struct action_ctx){
            .io = {t->http, t->redis, start + p->retry.max_elapsed_ms, &k->lost},
            .ev = ev,
            .settings = &p->settings,
            .hubspot = p->deps.hubspot,
            .qbo = p->deps.qbo,
            .now_ms = clock_wall_ms(),
        };
        action_outcome_release(out);
        api_error_clear(err);
        if (ops->run(&ctx, out, err) == 0) {
            note_answer(p, ev, NULL);
            return RUN_OK;
        }
        if (atomic_load(&k->lost))
            return RUN_LOST;
        if (!api_error_retryable(err)) {
            note_answer(p, ev, err);
            return RUN_FAILED;
        }
        if (note_failure(p, ev, err)) {
            log_info("event %s: %s; tenant circuit open, leaving it to the retry topic", ev->id,
                     err->message);
            return RUN_EXHAUSTED;
        }
        if (backoff_next(&b, clock_mono_ms(), err->retry_after_ms > 0 ? err->retry_after_ms : -1,
                         &delay) == BACKOFF_GIVE_UP)
            return RUN_EXHAUSTED;
        metrics_retry(p->deps.metrics, "event");
        log_info("event %s: %s failure (%s); retry %d in %" PRId64 " ms", ev->id,
                 api_class_name(err->cls), err->message, *runs, delay);
        if (redis_flush(t->redis, e, sizeof e) < 0) /* no release waits out the sleep */
            log_warn("redis: deferred releases not sent: %s", e);
        for (slept = 0; slept < delay && !atomic_load(&k->lost) && !tenant_open(p, ev, err);
             slept += 100)
            clock_sleep_ms(delay - slept < 100 ? delay - slept : 100);
        if (atomic_load(&k->lost))
            return RUN_LOST;
        if (tenant_open(p, ev, err)) /* opened meanwhile: free the thread, no stray probe */
            return RUN_EXHAUSTED;
        (*runs)++;
    }
}

/* ---- the retry topic (worker/delay.h) ---------------------------------------------- */

/* A transient failure outlived the in-process budget (or the tenant's circuit opened):
 * 1 with *d set when it went (or tries to go) to the retry topic, 0 when the attempt or
 * age limit says RETRIES_EXHAUSTED. */
static int route_retry(struct pipeline *p, struct pipeline_thread *t, struct finish *f,
                       const struct result_inbound_meta *meta, const struct api_error *err,
                       struct redis_lease *lease, struct kept *k, int64_t start, int64_t *delay,
                       enum pipeline_disposition *d)
{
    char last[DELAY_LAST_ERROR_MAX + 1];
    int deliveries = meta->attempts_before + 1;
    int64_t nb;

    if (delay_route(&p->delay, deliveries, f->first_failure_ms, clock_wall_ms(), &nb) ==
        DELAY_EXHAUSTED)
        return 0;
    keeper_remove(&p->keeper, k);
    delay_last_error(err, last, sizeof last);
    *d = outcome_send_retry(p, t, f, lease, deliveries, nb, last, "transient", start, delay);
    return 1;
}

/* Head-of-line protection: when the realm's or the portal's circuit is open the event
 * makes no API call and goes straight to the retry topic, not before the circuit may
 * let a probe through. 1 with *d set when deferred; 0 to run it (also when the attempt
 * or age limit is reached: the last delivery runs regardless, so it can end). */
static int defer_if_open(struct pipeline *p, struct pipeline_thread *t, struct finish *f,
                         const struct action_event *ev, const struct result_inbound_meta *meta,
                         struct redis_lease *lease, int64_t start, int64_t *delay,
                         enum pipeline_disposition *d)
{
    char realm[TENANT_SZ], portal[TENANT_SZ], last[DELAY_LAST_ERROR_MAX + 1];
    const char *who = realm;
    int64_t now = clock_mono_ms(), wall = clock_wall_ms(), at = now, nb;
    int deliveries = meta->attempts_before + 1;

    tenant_realm(ev, realm);
    tenant_portal(ev, portal);
    if (breaker_acquire(p->breaker, realm, now, &at) != BREAKER_DENY) {
        if (breaker_acquire(p->breaker, portal, now, &at) != BREAKER_DENY)
            return 0;
        who = portal;
    }
    if (delay_route(&p->delay, deliveries, f->first_failure_ms, wall, &nb) == DELAY_EXHAUSTED)
        return 0;
    if (nb < wall + (at - now))
        nb = wall + (at - now);
    snprintf(last, sizeof last, "CIRCUIT_OPEN: %s keeps failing; no call made", who);
    *d = outcome_send_retry(p, t, f, lease, deliveries, nb, last, "breaker", start, delay);
    return 1;
}

/* A retry record consumed before its not-before time (the consumer holds records at
 * most retry.hold_max): wait in the scheduler when it is nearly due, else put it back
 * on the retry topic. 1 with *d set when handled. */
static int early_retry(struct pipeline *p, struct pipeline_thread *t, const struct inbound_msg *m,
                       const struct result_inbound_meta *meta, int64_t *delay,
                       enum pipeline_disposition *d)
{
    int64_t nb, now = clock_wall_ms();
    char e[ERRSZ];

    if (!delay_is_retry_topic(&p->delay, m->topic) || delay_not_before(m->headers, &nb) < 0 ||
        nb <= now)
        return 0;
    if (nb - now <= DELAY_EARLY_SLACK_MS) {
        *delay = nb - now;
        *d = PIPELINE_RETRY_LATER;
        return 1;
    }
    if (delay_send_requeue(&p->delay, p->deps.producer, m, SEND_TIMEOUT_MS, e, sizeof e) < 0) {
        log_warn("retry record %s/%d/%" PRId64 ": re-queueing failed (%s); retrying later",
                 m->topic, (int)m->partition, m->offset, e);
        *delay = jitter(t, KAFKA_DOWN_DELAY_MS);
        *d = PIPELINE_RETRY_LATER;
        return 1;
    }
    metrics_retry_publish(p->deps.metrics, meta->attempts_before, "requeue");
    log_debug("retry record %s/%d/%" PRId64 " re-queued: due in %" PRId64 " ms", m->topic,
              (int)m->partition, m->offset, nb - now);
    *d = PIPELINE_DONE;
    return 1;
}

/* Take the claim; 1 = ours, 0 = disposition set (done / busy / Redis down). */
static int claim(struct pipeline *p, struct pipeline_thread *t, struct finish *f,
                 const struct result_inbound_meta *meta, struct redis_lease *lease, int64_t start,
                 int64_t *delay, enum pipeline_disposition *d)
{
    char e[ERRSZ], *stored = NULL, ttl[24];
    size_t stored_len = 0;
    redisReply *r;
    const char *keys[1], *args[2];
    int ours = 0;

    if (redis_claim_prepare(t->redis, lease, f->event_id, e, sizeof e) < 0)
        goto redis_down;
    switch (redis_claim(t->redis, lease, p->lease_ms, &stored, &stored_len, e, sizeof e)) {
    case REDIS_CLAIMED:
        if (meta->replayed)
            metrics_replay(p->deps.metrics, "new");
        return 1;
    case REDIS_CLAIM_BUSY:
        log_debug("event %s: claimed by another worker; retrying later", f->event_id);
        metrics_event(p->deps.metrics, f->action, METRICS_OUTCOME_RETRIED, -1);
        *delay = jitter(t, BUSY_DELAY_MS);
        *d = PIPELINE_RETRY_LATER;
        return 0;
    case REDIS_CLAIM_DONE:
        break;
    default:
        goto redis_down;
    }
    if (meta->replayed && stored && strstr(stored, "\"type\":\"hsqb.result.failed\"")) {
        /* a replayed dead letter: its stored failure is what the replay is meant to fix */
        snprintf(ttl, sizeof ttl, "%" PRId64, p->lease_ms);
        keys[0] = lease->key;
        args[0] = lease->token;
        args[1] = ttl;
        r = redis_eval(t->redis, &p->reclaim, 1, keys, 2, args, NULL, e, sizeof e);
        if (!r) {
            free(stored);
            goto redis_down;
        }
        ours = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
        freeReplyObject(r);
        if (ours) {
            log_info("event %s: replay of a failed event; running it again", f->event_id);
            metrics_replay(p->deps.metrics, "rerun");
            free(stored);
            return 1;
        }
        free(stored);
        metrics_event(p->deps.metrics, f->action, METRICS_OUTCOME_RETRIED, -1);
        *delay = jitter(t, BUSY_DELAY_MS);
        *d = PIPELINE_RETRY_LATER;
        return 0;
    }
    if (meta->replayed)
        metrics_replay(p->deps.metrics, "duplicate");
    *d = outcome_republish(p, t, f, stored ? stored : "", stored ? stored_len : 0, start, delay);
    free(stored);
    return 0;
redis_down:
    log_warn("event %s: Redis unavailable for the claim (%s); retrying later", f->event_id, e);
    metrics_event(p->deps.metrics, f->action, METRICS_OUTCOME_RETRIED, -1);
    *delay = jitter(t, REDIS_DOWN_DELAY_MS);
    *d = PIPELINE_RETRY_LATER;
    return 0;
}

static enum pipeline_disposition handle_one(struct pipeline *p, struct pipeline_thread *t,
                                            const struct inbound_msg *m, int64_t *delay)
{
    struct action_event ev = {0};
    struct result_inbound_meta meta;
    struct redis_lease lease;
    struct action_outcome out = {0};
    struct api_error err;
    struct result_item *items = NULL;
    struct result_qbo qbo;
    struct result_error rerr;
    struct finish f = {.msg = m};
    struct kept *k = NULL;
    char why[EVENT_ERRSTR_SIZE], msgbuf[RESULT_MESSAGE_MAX + 1];
    enum pipeline_disposition d = PIPELINE_DONE;
    enum event_status st;
    enum run_end end;
    int64_t start = clock_mono_ms(), dummy = 0;
    int runs = 0;
    size_t i;

    if (!delay)
        delay = &dummy;
    *delay = 0;
    result_inbound_meta_read(m->headers, &meta);
    if (early_retry(p, t, m, &meta, delay, &d))
        return d;
    if (m->value_len > p->max_event_bytes) {
        snprintf(why, sizeof why, "(message): too large (%zu bytes, max %zu)", m->value_len,
                 p->max_event_bytes);
        st = EVENT_INVALID;
    } else {
        st = event_decode(m->value, m->value_len, &ev, why, sizeof why);
    }
    if (st != EVENT_OK)
        return outcome_invalid(p, t, m, st, why, meta.attempts_before + 1, meta.first_failure_ms,
                               start, delay);

    f.key = ev.key;
    f.keylen = strlen(ev.key);
    f.event_id = ev.id;
    f.action = event_action_name(ev.action);
    f.first_failure_ms = meta.first_failure_ms;
    f.info = (struct result_info){
        .worker_source = p->source,
        .topic = m->topic,
        .partition = m->partition,
        .offset = m->offset,
    };
    if (meta.original_topic[0]) {
        /* a retry hop or a replay: the result names the true original, as the DLQ does */
        f.info.topic = meta.original_topic;
        f.info.partition = meta.original_partition;
        f.info.offset = meta.original_offset;
    }
    result_subject_from_event(&f.info.subject, &ev);

    if (!claim(p, t, &f, &meta, &lease, start, delay, &d) ||
        defer_if_open(p, t, &f, &ev, &meta, &lease, start, delay, &d))
        goto out;
    k = calloc(1, sizeof *k);
    if (!k) {
        redis_lease_release(t->redis, &lease, why, sizeof why);
        *delay = jitter(t, REDIS_DOWN_DELAY_MS);
        d = PIPELINE_RETRY_LATER;
        goto out;
    }
    k->lease = lease;
    keeper_add(&p->keeper, k);

    end = run_action(p, t, &ev, k, &out, &err, &runs);
    f.info.attempts = meta.attempts_before + runs;
    if (f.info.attempts > 1000000)
        f.info.attempts = 1000000;
    if (end == RUN_LOST) {
        log_warn("event %s: claim lost to another worker; leaving the event to it", ev.id);
        keeper_remove(&p->keeper, k);
        metrics_event(p->deps.metrics, f.action, METRICS_OUTCOME_RETRIED, -1);
        *delay = jitter(t, BUSY_DELAY_MS);
        d = PIPELINE_RETRY_LATER;
        goto out;
    }
    if (end == RUN_EXHAUSTED && route_retry(p, t, &f, &meta, &err, &lease, k, start, delay, &d))
        goto out;
    if (end == RUN_OK) {
        if (out.ncreated) {
            items = calloc(out.ncreated, sizeof *items);
            if (!items) {
                keeper_remove(&p->keeper, k);
                redis_lease_release(t->redis, &lease, why, sizeof why);
                *delay = jitter(t, REDIS_DOWN_DELAY_MS);
                d = PIPELINE_RETRY_LATER;
                goto out;
            }
        }
        for (i = 0; i < out.ncreated; i++)
            items[i] = (struct result_item){out.created_items[i].id, out.created_items[i].name};
        qbo = (struct result_qbo){
            .entity = out.entity,
            .id = out.id,
            .doc_number = out.doc_number[0] ? out.doc_number : NULL,
            .total_cents = out.total_cents,
            .currency = out.currency,
            .customer_id = out.customer_id[0] ? out.customer_id : NULL,
            .created_customer = out.created_customer,
            .created_items = items,
            .ncreated_items = out.ncreated,
            .payment_id = out.payment_id[0] ? out.payment_id : NULL,
        };
        f.info.qbo = &qbo;
    } else {
        rerr = (struct result_error){
            .code = err.code,
            .message = err.message,
            .http_status = err.http_status,
            .upstream_id = err.upstream_id,
            .details_json = out.details_json,
        };
        if (end == RUN_EXHAUSTED) {
            snprintf(msgbuf, sizeof msgbuf, "gave up after %d attempts in %d deliveries: %s",
                     f.info.attempts, meta.attempts_before + 1, err.message);
            rerr.code = HSQB_ERR_RETRIES_EXHAUSTED;
            rerr.message = msgbuf;
        }
        f.info.error = &rerr;
        if (!f.first_failure_ms)
            f.first_failure_ms = clock_wall_ms();
    }
    d = outcome_finish_claimed(p, t, &f, &lease, k, start, delay);
out:
    if (k)
        keeper_remove(&p->keeper, k); /* idempotent: never leave a freed entry registered */
    free(k);
    free(items);
    action_outcome_release(&out);
    event_release(&ev);
    return d;
}

/* At most once a second, by whichever thread gets there first: the counters cost a sweep
 * of the cache's stripe locks, too much for every event. */
static void copy_mapcache_metrics(struct pipeline *p)
{
    int64_t now = clock_mono_ms(), last = atomic_load(&p->mapcache_metrics_ms);
    struct mapcache_stats st;

    if (!p->mapcache || now - last < 1000 ||
        !atomic_compare_exchange_strong(&p->mapcache_metrics_ms, &last, now))
        return;
    mapcache_stats(p->mapcache, &st);
    metrics_set_mapping_cache(p->deps.metrics, (int64_t)st.hits, (int64_t)st.misses);
}

enum pipeline_disposition pipeline_handle(struct pipeline *p, struct pipeline_thread *t,
                                          const struct inbound_msg *m, int64_t *delay)
{
    enum pipeline_disposition d = handle_one(p, t, m, delay);
    char e[ERRSZ];

    /* Releases and re-stamps were deferred onto the next command (redis_eval_deferred);
     * the thread may now sit idle, so send them. A failure only delays them further:
     * rate-log entries keep their admission time, leases expire by themselves. */
    if (redis_flush(t->redis, e, sizeof e) < 0)
        log_warn("redis: deferred releases not sent: %s", e);
    copy_mapcache_metrics(p);
    return d;
}

/* ---- scheduler adapters ------------------------------------------------------------- */

enum handler_disposition pipeline_sched_handler(void *opaque, void *thread_ctx,
                                                const struct inbound_msg *msg,
                                                int64_t *retry_delay_ms)
{
    switch (pipeline_handle(opaque, thread_ctx, msg, retry_delay_ms)) {
    case PIPELINE_DONE:
        return HANDLER_DONE;
    case PIPELINE_RETRY_LATER:
        return HANDLER_RETRY;
    default:
        return HANDLER_STOP;
    }
}

int pipeline_sched_thread_new(void *opaque, unsigned index, void **ctx, char *errstr, size_t errsz)
{
    struct pipeline_thread *t = pipeline_thread_new(opaque, errstr, errsz);

    (void)index;
    if (!t)
        return -1;
    *ctx = t;
    return 0;
}

void pipeline_sched_thread_free(void *opaque, void *ctx)
{
    (void)opaque;
    pipeline_thread_free(ctx);
}
