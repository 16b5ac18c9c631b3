/* pipeline.c - one delivery of one event, start to finish (see pipeline.h for the state
 * machine, and the README's "How an event flows").
 *
 * handle_one() reads as the story of a delivery: every step takes the delivery
 * (worker/delivery.h) and says what happens next in one vocabulary (PIPELINE_NEXT, or
 * how the delivery ends):
 *
 *   retry_early --> decode --> claim --> admit --> retry_defer_if_open --> [keeper_add]
 *     --> retry_run (the action, with in-process retries) --> finish (outcome_finish)
 *
 * This file owns the steps that decide (decoding, the claim, the tenant check, turning a
 * run into a result); retry.c owns coming back later (in-process retries, circuits, the retry
 * topic); outcome.c owns leaving the worker (results, dead letters, the done marker);
 * claim.c the event's Redis keys; keeper.c the thread that keeps claims alive. The
 * keeper entry of a delivery is added once its claim is taken and removed in one place,
 * when handle_one ends.
 */
#include "worker/pipeline.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/backoff.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/redis.h"
#include "worker/action.h"
#include "worker/action_payment.h"
#include "worker/action_sales.h"
#include "worker/claim.h"
#include "worker/delivery.h"
#include "worker/keeper.h"
#include "worker/mapcache.h"
#include "worker/outcome.h"
#include "worker/retry.h"
#include "worker/settings.h"
#include "worker/company.h"
#include "worker/tenancy.h"

/* The action families, tried in order (their handles() never overlap). */
static const struct action_ops *const families[] = {&action_sales_ops, &action_payment_ops};

struct pipeline {
    struct pipeline_deps deps;
    struct pipeline_env env; /* what every delivery's steps share */
    struct action_settings settings;
    struct mapcache *mapcache; /* settings.resolve.local; NULL when cache.local_ttl is 0 */
    _Atomic int64_t mapcache_metrics_ms; /* when its counters were last copied to metrics */
    char group[256];
    char source[300];
    char topic_results[256];
    char topic_dlq[256];
    /* Redis options with owned strings (redis_opts borrows) */
    struct redis_opts ropts;
    char r_host[256], r_user[256], r_pass[512], r_prefix[REDIS_MAX_PREFIX + 1];
    struct http_client_opts hopts;
    char user_agent[257];
    size_t max_event_bytes;
    struct backoff_policy retry;
    struct delay_policy delay; /* the retry topic (worker/delay.h) */
    struct breaker *breaker;   /* per-tenant circuits (worker/breaker.h) */
    struct tenancy *tenancy;   /* which portal may write to which realm (worker/tenancy.h) */
    struct company_cache *companies; /* their settings pages' defaults (worker/company.h) */
    struct keeper *keeper;
};

/* A worker thread's context. */
struct pipeline_thread {
    struct pipeline *p;
    struct http_client *http;
    struct redis_conn *redis;
    uint64_t rnd; /* jitter state */
};

enum pipeline_disposition delivery_retry_later(struct delivery *dl, int64_t base_ms, int count)
{
    uint64_t *r = dl->rnd;

    *r ^= *r >> 12;
    *r ^= *r << 25;
    *r ^= *r >> 27;
    dl->delay_ms = base_ms + (int64_t)((*r * 2685821657736338717ULL) % (uint64_t)(base_ms + 1));
    if (count)
        metrics_event(dl->env->metrics, dl->action, METRICS_OUTCOME_RETRIED, -1);
    return PIPELINE_RETRY_LATER;
}

/* ---- the pipeline ------------------------------------------------------------------- */

static void copy_str(char *dst, size_t dstsz, const char *src)
{
    snprintf(dst, dstsz, "%s", src ? src : "");
}

static void on_breaker_change(void *opaque, const char *tenant, enum breaker_state st)
{
    metrics_breaker_state(opaque, tenant, (int)st, breaker_state_name(st));
    if (st == BREAKER_OPEN)
        log_warn("circuit of %s open: its events go to the retry topic without API calls", tenant);
    else
        log_info("circuit of %s %s", tenant, breaker_state_name(st));
}

static struct company_cache *new_companies(char *errstr, size_t errsz)
{
    struct company_cache *cc = company_cache_new();

    if (!cc)
        snprintf(errstr, errsz, "company cache: out of memory");
    return cc;
}

static struct breaker *new_breaker(const struct config *cfg, struct metrics *m, char *errstr,
                                   size_t errsz)
{
    struct breaker_opts o;

    breaker_opts_from_config(&o, cfg);
    o.on_change = on_breaker_change;
    o.opaque = m;
    return breaker_new(&o, errstr, errsz);
}

/* The Redis and HTTP options of the worker threads, with strings of their own (the
 * config need not outlive the pipeline). */
static void copy_client_opts(struct pipeline *p, const struct config *cfg)
{
    struct redis_opts ro;
    struct http_client_opts ho;

    settings_redis_opts(cfg, &ro);
    p->ropts = ro;
    copy_str(p->r_host, sizeof p->r_host, ro.host);
    copy_str(p->r_user, sizeof p->r_user, ro.username);
    copy_str(p->r_pass, sizeof p->r_pass, ro.password);
    copy_str(p->r_prefix, sizeof p->r_prefix, ro.prefix);
    p->ropts.host = p->r_host;
    p->ropts.username = p->r_user[0] ? p->r_user : NULL;
    p->ropts.password = p->r_pass[0] ? p->r_pass : NULL;
    p->ropts.prefix = p->r_prefix;

    settings_http_opts(cfg, &ho);
    p->hopts = ho;
    copy_str(p->user_agent, sizeof p->user_agent, ho.user_agent);
    p->hopts.user_agent = p->user_agent;
}

struct pipeline *pipeline_new(const struct config *cfg, const struct pipeline_deps *deps,
                              char *errstr, size_t errsz)
{
    struct tenancy_opts to;
    struct pipeline *p;

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
    copy_client_opts(p, cfg);
    p->max_event_bytes = (size_t)config_get_bytes(cfg, "event.max_bytes");
    p->retry = (struct backoff_policy){
        .base_ms = config_get_ms(cfg, "retry.base"),
        .cap_ms = config_get_ms(cfg, "retry.cap"),
        .max_attempts = (int)config_get_int(cfg, "retry.attempts"),
        .max_elapsed_ms = config_get_ms(cfg, "retry.budget"),
        .max_retry_after_ms = config_get_ms(cfg, "retry.budget"),
    };
    if (p->retry.cap_ms < p->retry.base_ms)
        p->retry.cap_ms = p->retry.base_ms;
    tenancy_opts_from_config(&to, cfg);
    to.hubspot = deps->hubspot;
    if (backoff_policy_check(&p->retry, errstr, errsz) < 0 || claim_init(errstr, errsz) < 0 ||
        delay_policy_from_config(&p->delay, cfg, errstr, errsz) < 0 ||
        !(p->breaker = new_breaker(cfg, p->deps.metrics, errstr, errsz)) ||
        !(p->tenancy = tenancy_new(&to, errstr, errsz)) || !(p->companies = new_companies(errstr, errsz)) ||
        !(p->keeper = keeper_new(&p->ropts, config_get_ms(cfg, "claim.lease"), errstr, errsz)))
        goto fail;
    p->env = (struct pipeline_env){
        .producer = deps->producer,
        .metrics = deps->metrics,
        .group = p->group,
        .source = p->source,
        .topic_results = p->topic_results,
        .topic_dlq = p->topic_dlq,
        .lease_ms = config_get_ms(cfg, "claim.lease"),
        .dedup_ms = config_get_ms(cfg, "dedup.window"),
        .callbacks = result_callbacks_mode(config_get_str(cfg, "callbacks.complete")),
        .delay = &p->delay,
        .breaker = p->breaker,
    };
    return p;
fail:
    company_cache_free(p->companies);
    tenancy_free(p->tenancy);
    breaker_free(p->breaker);
    mapcache_free(p->mapcache);
    free(p);
    return NULL;
}

void pipeline_free(struct pipeline *p)
{
    if (!p)
        return;
    keeper_free(p->keeper);
    company_cache_free(p->companies);
    tenancy_free(p->tenancy);
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

/* ---- the steps of one delivery ------------------------------------------------------- */

/* Decode the message; an invalid one ends here (outcome_invalid). */
static enum pipeline_disposition decode(struct pipeline *p, struct delivery *dl)
{
    const struct inbound_msg *m = dl->msg;
    char why[EVENT_ERRSTR_SIZE];
    enum event_status st;

    if (m->value_len > p->max_event_bytes) {
        snprintf(why, sizeof why, "(message): too large (%zu bytes, max %zu)", m->value_len,
                 p->max_event_bytes);
        st = EVENT_INVALID;
    } else {
        st = event_decode(m->value, m->value_len, &dl->ev, why, sizeof why);
    }
    if (st != EVENT_OK)
        return outcome_invalid(dl, st, why);
    dl->key = dl->ev.key;
    dl->keylen = strlen(dl->ev.key);
    dl->event_id = dl->ev.id;
    dl->action = event_action_name(dl->ev.action);
    if (dl->meta.original_topic[0]) {
        /* a retry hop or a replay: the result names the true original, as the DLQ does */
        dl->info.topic = dl->meta.original_topic;
        dl->info.partition = dl->meta.original_partition;
        dl->info.offset = dl->meta.original_offset;
    }
    result_subject_from_event(&dl->info.subject, &dl->ev);
    dl->info.complete_callback = result_callback_wanted(p->env.callbacks, dl->ev.source);
    return PIPELINE_NEXT;
}

/* A replayed dead letter whose stored outcome is a failure: take the event back (that
 * failure is what the replay is meant to fix) and run it again. */
static enum pipeline_disposition retake_failed(struct delivery *dl)
{
    char e[DELIVERY_ERRSZ];

    switch (claim_retake_failed(dl->io.redis, &dl->lease, dl->env->lease_ms, e, sizeof e)) {
    case CLAIM_OURS:
        log_info("event %s: replay of a failed event; running it again", dl->event_id);
        metrics_replay(dl->env->metrics, "rerun");
        return PIPELINE_NEXT;
    case CLAIM_BUSY:
        return delivery_retry_later(dl, DELIVERY_BUSY_DELAY_MS, 1);
    default:
        log_warn("event %s: Redis unavailable for the claim (%s); retrying later", dl->event_id, e);
        return delivery_retry_later(dl, DELIVERY_REDIS_DOWN_DELAY_MS, 1);
    }
}

/* Take the event's claim: NEXT when ours; a stored outcome is re-published (or, for a
 * replayed failure, the event taken back); busy or Redis down: later. */
static enum pipeline_disposition claim(struct delivery *dl)
{
    struct claim_stored stored = {0};
    enum pipeline_disposition d;
    char e[DELIVERY_ERRSZ];

    if (claim_prepare(dl->io.redis, &dl->lease, dl->event_id, e, sizeof e) < 0)
        goto redis_down;
    switch (claim_take(dl->io.redis, &dl->lease, dl->env->lease_ms, &stored, e, sizeof e)) {
    case CLAIM_OURS:
        if (dl->meta.replayed)
            metrics_replay(dl->env->metrics, "new");
        return PIPELINE_NEXT;
    case CLAIM_BUSY:
        log_debug("event %s: claimed by another worker; retrying later", dl->event_id);
        return delivery_retry_later(dl, DELIVERY_BUSY_DELAY_MS, 1);
    case CLAIM_DONE:
        break;
    default:
        goto redis_down;
    }
    if (dl->meta.replayed && stored.failed) {
        claim_stored_release(&stored);
        return retake_failed(dl);
    }
    if (dl->meta.replayed)
        metrics_replay(dl->env->metrics, "duplicate");
    d = outcome_republish(dl, &stored);
    claim_stored_release(&stored);
    return d;
redis_down:
    log_warn("event %s: Redis unavailable for the claim (%s); retrying later", dl->event_id, e);
    return delivery_retry_later(dl, DELIVERY_REDIS_DOWN_DELAY_MS, 1);
}

/* Turn what the run produced into the result, and carry it out. */
static enum pipeline_disposition finish(struct delivery *dl, struct run *r)
{
    const struct action_outcome *out = &r->out;
    struct result_item *items = NULL;
    struct result_qbo qbo;
    struct result_error rerr;
    char msgbuf[RESULT_MESSAGE_MAX + 1], e[DELIVERY_ERRSZ];
    enum pipeline_disposition d;
    size_t i;

    if (r->ok) {
        if (out->ncreated && !(items = calloc(out->ncreated, sizeof *items))) {
            redis_lease_release(dl->io.redis, &dl->lease, e, sizeof e);
            return delivery_retry_later(dl, DELIVERY_REDIS_DOWN_DELAY_MS, 0);
        }
        for (i = 0; i < out->ncreated; i++)
            items[i] = (struct result_item){out->created_items[i].id, out->created_items[i].name};
        qbo = (struct result_qbo){
            .entity = out->entity,
            .id = out->id,
            .doc_number = out->doc_number[0] ? out->doc_number : NULL,
            .total_cents = out->total_cents,
            .currency = out->currency,
            .customer_id = out->customer_id[0] ? out->customer_id : NULL,
            .created_customer = out->created_customer,
            .created_items = items,
            .ncreated_items = out->ncreated,
            .payment_id = out->payment_id[0] ? out->payment_id : NULL,
        };
        dl->info.qbo = &qbo;
    } else {
        rerr = (struct result_error){
            .code = r->err.code,
            .message = r->err.message,
            .http_status = r->err.http_status,
            .upstream_id = r->err.upstream_id,
            .details_json = out->details_json,
        };
        if (r->exhausted) {
            snprintf(msgbuf, sizeof msgbuf, "gave up after %d attempts in %d deliveries: %s",
                     dl->info.attempts, dl->meta.attempts_before + 1, r->err.message);
            rerr.code = HSQB_ERR_RETRIES_EXHAUSTED;
            rerr.message = msgbuf;
        }
        dl->info.error = &rerr;
        if (!dl->first_failure_ms)
            dl->first_failure_ms = clock_wall_ms();
    }
    d = outcome_finish(dl);
    dl->info.qbo = NULL; /* both lived in this frame */
    dl->info.error = NULL;
    free(items);
    return d;
}

/* The tenant check (worker/tenancy.h), before the event's first API call: NEXT when the
 * portal is connected and may write to the realm, with the company's defaults in *cd
 * (worker/company.h, cached under the tenancy generation); a refusal ends here as a
 * permanent failure (result + DLQ, no HubSpot or QBO request); Redis unavailable: later. */
static enum pipeline_disposition admit(struct pipeline *p, struct delivery *dl, struct run *r,
                                       struct company_defaults *cd)
{
    char e[DELIVERY_ERRSZ];

    if (tenancy_admit(p->tenancy, &dl->io, dl->ev.portal_id, dl->ev.in.realm_id, &r->err) == 0) {
        if (company_defaults_for(p->companies, dl->io.redis, dl->ev.in.realm_id, dl->ev.portal_id,
                                 tenancy_generation(p->tenancy, dl->io.redis), cd, e,
                                 sizeof e) == 0)
            return PIPELINE_NEXT;
        api_error_set(&r->err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 0,
                      "reading the defaults of realm %s: %s", dl->ev.in.realm_id, e);
    }
    if (api_error_retryable(&r->err)) {
        log_warn("event %s: tenant check: %s; retrying later", dl->event_id, r->err.message);
        if (redis_lease_release(dl->io.redis, &dl->lease, e, sizeof e) == REDIS_OWNER_ERROR)
            log_debug("event %s: releasing the claim failed (%s)", dl->event_id, e);
        return delivery_retry_later(dl, DELIVERY_REDIS_DOWN_DELAY_MS, 1);
    }
    dl->info.attempts = dl->meta.attempts_before + 1;
    return finish(dl, r);
}

static const struct action_ops *family_of(const struct action_event *ev)
{
    const struct action_ops *ops = NULL;
    size_t i;

    for (i = 0; i < sizeof families / sizeof families[0]; i++)
        if (families[i]->handles(ev->action, ev->object_type))
            ops = families[i];
    return ops;
}

static enum pipeline_disposition handle_one(struct pipeline *p, struct pipeline_thread *t,
                                            const struct inbound_msg *m, int64_t *delay)
{
    struct delivery dl = {
        .env = &p->env,
        .io = {.http = t->http, .redis = t->redis},
        .rnd = &t->rnd,
        .msg = m,
        .start_ms = clock_mono_ms(),
        .action = "unknown",
        .info = {.worker_source = p->source,
                 .topic = m->topic,
                 .partition = m->partition,
                 .offset = m->offset},
    };
    struct company_defaults cd = {0};
    struct run_env re = {
        .settings = &p->settings,
        .company = &cd,
        .hubspot = p->deps.hubspot,
        .qbo = p->deps.qbo,
        .policy = &p->retry,
    };
    struct run r = {0};
    enum pipeline_disposition d;

    result_inbound_meta_read(m->headers, &dl.meta);
    dl.first_failure_ms = dl.meta.first_failure_ms;
    dl.io.claim_lost = &dl.kept.lost;
    d = retry_early(&dl);
    if (d == PIPELINE_NEXT)
        d = decode(p, &dl);
    if (d == PIPELINE_NEXT)
        d = claim(&dl);
    if (d == PIPELINE_NEXT)
        d = admit(p, &dl, &r, &cd);
    if (d == PIPELINE_NEXT)
        d = retry_defer_if_open(&dl);
    if (d == PIPELINE_NEXT) {
        dl.kept.lease = dl.lease;
        keeper_add(p->keeper, &dl.kept);
        re.ops = family_of(&dl.ev);
        d = retry_run(&dl, &re, &r);
    }
    if (d == PIPELINE_NEXT)
        d = finish(&dl, &r);
    keeper_remove(p->keeper, &dl.kept); /* the one place: a no-op when never added */
    action_outcome_release(&r.out);
    event_release(&dl.ev);
    if (delay)
        *delay = d == PIPELINE_RETRY_LATER ? dl.delay_ms : 0;
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
    char e[DELIVERY_ERRSZ];

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
    case PIPELINE_PENDING:
        return HANDLER_PENDING;
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
