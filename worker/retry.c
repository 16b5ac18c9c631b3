/* retry.c - see retry.h for the story. One rule runs through it: an event that cannot
 * finish now is never held by a worker thread for long. It waits in-process only for
 * the short backoff of retry.budget; anything longer is a record on the retry topic
 * (its claim released, its offset stored once the broker acknowledged the record), so
 * a slow tenant costs the others nothing.
 *
 * Tenants: a failure is charged to the circuit of the API that failed (struct
 * api_error's source): HubSpot's to the portal, QBO's and Intuit OAuth's to the realm.
 * A permanent answer (validation, not found) proves the tenant answers and counts as a
 * success for its circuit; a success closes both.
 */
#include "worker/retry.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "worker/outcome.h"

#define TENANT_SZ (BREAKER_TENANT_MAX + 1)

/* ---- tenants ------------------------------------------------------------------------ */

static void tenant_realm(const struct action_event *ev, char *buf)
{
    snprintf(buf, TENANT_SZ, "realm:%s", ev->in.realm_id);
}

static void tenant_portal(const struct action_event *ev, char *buf)
{
    snprintf(buf, TENANT_SZ, "portal:%" PRId64, ev->portal_id);
}

static void tenant_of(const struct action_event *ev, const struct api_error *err, char *buf)
{
    if (err->source == API_SOURCE_HUBSPOT)
        tenant_portal(ev, buf);
    else
        tenant_realm(ev, buf);
}

/* The run answered: a success (err NULL) closes both circuits, a permanent failure the
 * circuit of the API that answered. */
static void note_answer(struct breaker *b, const struct action_event *ev,
                        const struct api_error *err)
{
    char t[TENANT_SZ];

    if (err) {
        tenant_of(ev, err, t);
        breaker_success(b, t, clock_mono_ms());
        return;
    }
    tenant_realm(ev, t);
    breaker_success(b, t, clock_mono_ms());
    tenant_portal(ev, t);
    breaker_success(b, t, clock_mono_ms());
}

/* A transient failure; 1 when the tenant's circuit is open now (stop retrying here).
 * Only a failure an API client reported is charged (api_error.source): one of ours
 * outside the clients (source NONE, such as a creation lock still held by a stalled
 * replica) says nothing about the tenant, and opening its circuit would defer all of the
 * realm's events for one busy lock. */
static int note_failure(struct breaker *b, const struct action_event *ev,
                        const struct api_error *err)
{
    char t[TENANT_SZ];

    if (err->source == API_SOURCE_NONE)
        return 0;
    tenant_of(ev, err, t);
    return breaker_failure(b, t, clock_mono_ms()) == BREAKER_OPEN;
}

/* 1 when the circuit of the tenant err belongs to is not closed. */
static int tenant_open(struct breaker *b, const struct action_event *ev,
                       const struct api_error *err)
{
    char t[TENANT_SZ];

    tenant_of(ev, err, t);
    return breaker_state(b, t, clock_mono_ms()) != BREAKER_CLOSED;
}

/* ---- the hop to the retry topic ----------------------------------------------------- */

/* Send the delivery's input to the retry topic as delivery `deliveries` with not-before
 * nb (wall ms), then release the claim (not done: the retried event must be able to
 * claim again). DONE only once the broker acknowledged the record. */
static enum pipeline_disposition retry_send(struct delivery *dl, int deliveries, int64_t nb,
                                            const char *last_error, const char *reason)
{
    const struct pipeline_env *env = dl->env;
    struct delay_retry_info info = {
        .deliveries = deliveries,
        .not_before_ms = nb,
        .first_failure_ms = dl->first_failure_ms,
        .now_ms = clock_wall_ms(),
        .last_error = last_error,
    };
    char e[DELIVERY_ERRSZ], e2[DELIVERY_ERRSZ], why[DELAY_LAST_ERROR_MAX + 64];
    int rc = delay_send_retry(env->delay, env->producer, dl->msg, &info, DELIVERY_SEND_TIMEOUT_MS,
                              e, sizeof e);

    if (redis_lease_release(dl->io.redis, &dl->lease, e2, sizeof e2) == REDIS_OWNER_ERROR)
        log_warn("event %s: releasing the claim failed (%s); it lapses after claim.lease",
                 dl->event_id, e2);
    metrics_event(env->metrics, dl->action, METRICS_OUTCOME_RETRIED,
                  rc < 0 ? -1 : clock_mono_ms() - dl->start_ms);
    if (rc < 0) {
        log_warn("event %s: sending it to the retry topic failed (%s); retrying later",
                 dl->event_id, e);
        return delivery_retry_later(dl, DELIVERY_KAFKA_DOWN_DELAY_MS, 0);
    }
    metrics_retry_publish(env->metrics, deliveries, reason);
    snprintf(why, sizeof why,
             "to the retry topic (%s), delivery %d, not before +%" PRId64 " ms: %s", reason,
             deliveries + 1, nb - info.now_ms, last_error);
    outcome_log(dl, METRICS_OUTCOME_RETRIED, "RETRY", NULL, clock_mono_ms() - dl->start_ms, why);
    return PIPELINE_DONE;
}

enum pipeline_disposition retry_early(struct delivery *dl)
{
    const struct pipeline_env *env = dl->env;
    const struct inbound_msg *m = dl->msg;
    int64_t nb, now = clock_wall_ms();
    char e[DELIVERY_ERRSZ];

    if (!delay_is_retry_topic(env->delay, m->topic) || delay_not_before(m->headers, &nb) < 0 ||
        nb <= now)
        return PIPELINE_NEXT;
    if (nb - now <= DELAY_EARLY_SLACK_MS) { /* nearly due: wait in the scheduler */
        dl->delay_ms = nb - now;
        return PIPELINE_RETRY_LATER;
    }
    if (delay_send_requeue(env->delay, env->producer, m, DELIVERY_SEND_TIMEOUT_MS, e, sizeof e) <
        0) {
        log_warn("retry record %s/%d/%" PRId64 ": re-queueing failed (%s); retrying later",
                 m->topic, (int)m->partition, m->offset, e);
        return delivery_retry_later(dl, DELIVERY_KAFKA_DOWN_DELAY_MS, 0);
    }
    metrics_retry_publish(env->metrics, dl->meta.attempts_before, "requeue");
    log_debug("retry record %s/%d/%" PRId64 " re-queued: due in %" PRId64 " ms", m->topic,
              (int)m->partition, m->offset, nb - now);
    return PIPELINE_DONE;
}

enum pipeline_disposition retry_defer_if_open(struct delivery *dl)
{
    const struct pipeline_env *env = dl->env;
    char realm[TENANT_SZ], portal[TENANT_SZ], last[DELAY_LAST_ERROR_MAX + 1];
    const char *who = realm;
    int64_t now = clock_mono_ms(), wall = clock_wall_ms(), at = now, nb;
    int deliveries = dl->meta.attempts_before + 1;

    tenant_realm(&dl->ev, realm);
    tenant_portal(&dl->ev, portal);
    if (breaker_acquire(env->breaker, realm, now, &at) != BREAKER_DENY) {
        if (breaker_acquire(env->breaker, portal, now, &at) != BREAKER_DENY)
            return PIPELINE_NEXT;
        who = portal;
    }
    /* the last delivery runs regardless, so it can end */
    if (delay_route(env->delay, deliveries, dl->first_failure_ms, wall, &nb) == DELAY_EXHAUSTED)
        return PIPELINE_NEXT;
    if (nb < wall + (at - now)) /* not before the circuit may let a probe through */
        nb = wall + (at - now);
    snprintf(last, sizeof last, "CIRCUIT_OPEN: %s keeps failing; no call made", who);
    return retry_send(dl, deliveries, nb, last, "breaker");
}

/* The result's attempts: those of earlier deliveries plus this one's runs. */
static void count_attempts(struct delivery *dl, const struct run *r)
{
    int64_t n = (int64_t)dl->meta.attempts_before + r->runs;

    dl->info.attempts = n > 1000000 ? 1000000 : (int)n;
}

/* The failure in r outlived the in-process budget (or its tenant's circuit opened): the
 * retry topic, or, past the attempt or age limit, a RETRIES_EXHAUSTED failure (NEXT). */
static enum pipeline_disposition route_exhausted(struct delivery *dl, struct run *r)
{
    char last[DELAY_LAST_ERROR_MAX + 1];
    int deliveries = dl->meta.attempts_before + 1;
    int64_t nb;

    if (delay_route(dl->env->delay, deliveries, dl->first_failure_ms, clock_wall_ms(), &nb) ==
        DELAY_EXHAUSTED) {
        r->exhausted = 1;
        return PIPELINE_NEXT;
    }
    delay_last_error(&r->err, last, sizeof last);
    return retry_send(dl, deliveries, nb, last, "transient");
}

/* Sleep delay ms in 100 ms steps, waking early when the claim is lost or the tenant's
 * circuit opens. */
static void backoff_sleep(struct delivery *dl, const struct api_error *err, int64_t delay)
{
    int64_t slept;

    for (slept = 0; slept < delay && !ioctx_claim_lost(&dl->io) &&
                    !tenant_open(dl->env->breaker, &dl->ev, err);
         slept += 100)
        clock_sleep_ms(delay - slept < 100 ? delay - slept : 100);
}

static enum pipeline_disposition lost(struct delivery *dl)
{
    log_warn("event %s: claim lost to another worker; leaving the event to it", dl->event_id);
    return delivery_retry_later(dl, DELIVERY_BUSY_DELAY_MS, 1);
}

enum pipeline_disposition retry_run(struct delivery *dl, const struct run_env *re, struct run *r)
{
    struct breaker *brk = dl->env->breaker;
    const struct action_event *ev = &dl->ev;
    struct action_ctx ctx;
    struct backoff b;
    int64_t delay, start = clock_mono_ms();
    char e[256];

    r->runs = 1;
    count_attempts(dl, r);
    if (!re->ops) {
        api_error_set(&r->err, API_PERMANENT, HSQB_ERR_INTERNAL, 0,
                      "%s on a %s is not implemented by this worker version",
                      event_action_name(ev->action), object_type_name(ev->object_type));
        return PIPELINE_NEXT;
    }
    if (backoff_init(&b, re->policy, 0, e, sizeof e) < 0) {
        api_error_set(&r->err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "%s", e);
        return PIPELINE_NEXT;
    }
    backoff_start(&b, start);
    for (;;) {
        ctx = (struct action_ctx){
            .io = dl->io,
            .ev = ev,
            .settings = re->settings,
            .company = re->company,
            .hubspot = re->hubspot,
            .qbo = re->qbo,
            .now_ms = clock_wall_ms(),
            .replay_generation = dl->meta.replayed ? dl->meta.replay_count : 0,
        };
        ctx.io.deadline_ms = start + re->policy->max_elapsed_ms;
        action_outcome_release(&r->out);
        api_error_clear(&r->err);
        if (re->ops->run(&ctx, &r->out, &r->err) == 0) {
            note_answer(brk, ev, NULL);
            r->ok = 1;
            return PIPELINE_NEXT;
        }
        if (ioctx_claim_lost(&dl->io))
            return lost(dl);
        if (!api_error_retryable(&r->err)) {
            note_answer(brk, ev, &r->err);
            return PIPELINE_NEXT;
        }
        if (note_failure(brk, ev, &r->err)) {
            log_info("event %s: %s; tenant circuit open, leaving it to the retry topic", ev->id,
                     r->err.message);
            return route_exhausted(dl, r);
        }
        if (backoff_next(&b, clock_mono_ms(),
                         r->err.retry_after_ms > 0 ? r->err.retry_after_ms : -1,
                         &delay) == BACKOFF_GIVE_UP)
            return route_exhausted(dl, r);
        metrics_retry(dl->env->metrics, "event");
        log_info("event %s: %s failure (%s); retry %d in %" PRId64 " ms", ev->id,
                 api_class_name(r->err.cls), r->err.message, r->runs, delay);
        if (redis_flush(dl->io.redis, e, sizeof e) < 0) /* no release waits out the sleep */
            log_warn("redis: deferred releases not sent: %s", e);
        backoff_sleep(dl, &r->err, delay);
        if (ioctx_claim_lost(&dl->io))
            return lost(dl);
        if (tenant_open(brk, ev, &r->err)) /* opened meanwhile: free the thread, no stray probe */
            return route_exhausted(dl, r);
        r->runs++;
        count_attempts(dl, r);
    }
}
