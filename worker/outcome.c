/* outcome.c - carrying out an event's outcome: what leaves the worker, in which order.
 *
 * pipeline.c decides what happens to an event (claim, circuit, run, retry routing); this
 * file makes it so against Kafka and Redis. The split follows the one place where order
 * is the design: the last steps of a claimed event (outcome_finish_claimed),
 *
 *   build the result --contract violated--> INTERNAL failure instead --even that--> STOP
 *   failure only: DLQ record ------Kafka down--> claim released -----------> RETRY_LATER
 *   done marker + result in Redis --another owner's first--> re-publish that one
 *        |                        --Redis down--> claim released --------> RETRY_LATER
 *   result to the results topic --Kafka down--> (marker kept) -----------> RETRY_LATER
 *   HubSpot callback, with callbacks.complete (best effort) --------------> DONE
 *
 * Why this order: for a failure the DLQ record goes out first, then the done marker, then
 * the result; for a success the done marker, then the result. The done marker is what
 * turns a redelivery into a re-publish (outcome_republish), so it is written as soon as
 * the outcome is final: a crash after it costs one re-publish, never a re-run. The DLQ
 * record of a failure precedes the marker because a re-publish does not re-send it; a
 * crash between the two costs a duplicate dead letter, never a missing one. The lease
 * keeper renews the claim until the marker is written, since one DLQ send may take
 * SEND_TIMEOUT_MS, longer than a lease.
 *
 * Events that never get a claim end here too: an undecodable one (outcome_invalid: no
 * side effects to protect, so no claim and no marker) and one handed to the retry topic
 * (outcome_send_retry: its claim is released, not marked done).
 */
#include "worker/outcome.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"

/* ---- publishing ------------------------------------------------------------------ */

static int send_dlq(struct pipeline *p, const struct finish *f, enum hsqb_error code,
                    const char *message, char *errstr, size_t errsz)
{
    struct kafka_header_set h;
    struct result_dlq_info di = {
        .topic = f->msg->topic,
        .partition = f->msg->partition,
        .offset = f->msg->offset,
        .timestamp_ms = f->msg->timestamp_ms,
        .in_hdrs = f->msg->headers,
        .code = code,
        .message = message,
        .attempts = f->info.attempts,
        .first_failure_ms = f->first_failure_ms,
        .now_ms = clock_wall_ms(),
        .group = p->group,
        .event_id = f->event_id,
    };
    int rc;

    if (result_dlq_headers_build(&di, &h, errstr, errsz) < 0)
        return -1;
    /* the original key and value bytes, never re-serialised (headers.md) */
    rc = producer_send_sync(p->deps.producer, p->topic_dlq, f->msg->key, f->msg->key_len,
                            f->msg->value, f->msg->value_len, h.h, h.n, SEND_TIMEOUT_MS, errstr,
                            errsz);
    kafka_header_set_release(&h);
    if (rc == 0)
        metrics_dlq(p->deps.metrics, hsqb_error_name(code));
    return rc;
}

static int send_result(struct pipeline *p, const struct finish *f, const char *json, size_t len,
                       int succeeded, char *errstr, size_t errsz)
{
    static const struct kafka_header ct = {"content-type", RESULT_CONTENT_TYPE};

    if (producer_send_sync(p->deps.producer, p->topic_results, f->key, f->keylen, json, len, &ct, 1,
                           SEND_TIMEOUT_MS, errstr, errsz) < 0)
        return -1;
    metrics_result(p->deps.metrics, succeeded ? "succeeded" : "failed");
    return 0;
}

static void log_outcome(const struct finish *f, const char *outcome, const char *code,
                        const char *qbo_id, int64_t duration_ms, const char *message)
{
    struct log_field fl[] = {
        LF_STR("event_id", f->event_id),    LF_STR("key", f->key),
        LF_STR("topic", f->msg->topic),     LF_INT("partition", f->msg->partition),
        LF_INT("offset", f->msg->offset),   LF_STR("action", f->action),
        LF_STR("outcome", outcome),         LF_STR("code", code),
        LF_STR("qbo_id", qbo_id),           LF_INT("attempts", f->info.attempts),
        LF_INT("duration_ms", duration_ms), LF_STR("message", message),
    };
    enum log_level lvl = strcmp(outcome, METRICS_OUTCOME_SUCCEEDED) == 0 ||
                                 strcmp(outcome, METRICS_OUTCOME_DUPLICATE) == 0
                             ? LOG_INFO
                             : LOG_WARN;
    if (log_enabled(lvl))
        log_fields(lvl, "event outcome", fl, sizeof fl / sizeof fl[0]);
}

/* Build the result JSON of f into jb; on a contract violation fall back to an INTERNAL
 * failure naming it. 0, or -1 when even that fails. */
static int build_result(struct finish *f, struct jbuf *jb, struct result_error *fallback,
                        char *msgbuf, size_t msgsz)
{
    char e[ERRSZ];

    if (result_build(&f->info, jb, e, sizeof e) == 0)
        return 0;
    log_error("event %s: %s", f->event_id ? f->event_id : "?", e);
    snprintf(msgbuf, msgsz, "internal error building the result: %s", e);
    *fallback = (struct result_error){.code = HSQB_ERR_INTERNAL, .message = msgbuf};
    f->info.qbo = NULL;
    f->info.error = fallback;
    return result_build(&f->info, jb, e, sizeof e);
}

/* ---- undecodable and unsupported events ------------------------------------------ */

/* For UNSUPPORTED_OBJECT_TYPE: read what the event was about, since the decoder does not
 * fill the event. 0 when action, portal, object type (one of ours) and id were read. */
struct peeked {
    enum hsqb_action action;
    int64_t portal_id, object_id;
    enum hsqb_object_type type;
    char key[EVENT_KEY_MAX];
    char realm[EVENT_REALM_MAX + 1];
};

static int peek_subject(const struct inbound_msg *m, struct peeked *pk)
{
    struct json_object *root, *data, *origin, *obj, *in;
    const char *s;
    int rc = -1;

    root = json_parse_strict(m->value, m->value_len, EVENT_MAX_DEPTH, NULL, 0);
    if (!root)
        return -1;
    memset(pk, 0, sizeof *pk);
    if (json_get_str(root, "type", &s) != JGET_OK || event_action_from_type(s, &pk->action) < 0 ||
        json_get_obj(root, "data", &data) != JGET_OK ||
        json_get_obj(data, "origin", &origin) != JGET_OK ||
        json_get_int64(origin, "portalId", 1, INT64_MAX, &pk->portal_id) != JGET_OK ||
        json_get_obj(data, "object", &obj) != JGET_OK ||
        json_get_int64_lenient(obj, "objectId", 1, INT64_MAX, &pk->object_id) != JGET_OK ||
        json_get_str(obj, "objectType", &s) != JGET_OK || object_type_parse(s, &pk->type) < 0 ||
        event_key(pk->portal_id, pk->type, pk->object_id, pk->key, sizeof pk->key) < 0)
        goto out;
    if ((json_get_obj(data, "inputFields", &in) == JGET_OK ||
         json_get_obj(data, "fields", &in) == JGET_OK) &&
        json_get_str(in, "qbo_realm_id", &s) == JGET_OK && strlen(s) <= EVENT_REALM_MAX &&
        strspn(s, "0123456789") == strlen(s) && *s)
        snprintf(pk->realm, sizeof pk->realm, "%s", s);
    rc = 0;
out:
    json_object_put(root);
    return rc;
}

enum pipeline_disposition outcome_invalid(struct pipeline *p, struct pipeline_thread *t,
                                          const struct inbound_msg *m, enum event_status st,
                                          const char *why, int attempts, int64_t first_failure_ms,
                                          int64_t start, int64_t *delay)
{
    char id[EVENT_ID_MAX + 1], e[ERRSZ], msgbuf[RESULT_MESSAGE_MAX + 1];
    struct peeked pk;
    struct result_error rerr = {.code = HSQB_ERR_INVALID_EVENT, .message = why};
    struct result_error fb;
    struct finish f = {.msg = m, .key = m->key, .keylen = m->key ? m->key_len : 0};
    struct jbuf jb;
    enum pipeline_disposition d = PIPELINE_DONE;

    if (m->value && event_peek_id(m->value, m->value_len, id, sizeof id) == 0)
        f.event_id = id;
    f.action = "unknown";
    f.info = (struct result_info){
        .worker_source = p->source,
        .topic = m->topic,
        .partition = m->partition,
        .offset = m->offset,
        .attempts = attempts,
        .error = &rerr,
    };
    f.info.subject.input_id = f.event_id;
    f.first_failure_ms = first_failure_ms;
    /* UNSUPPORTED_OBJECT_TYPE must name its subject in the contract's vocabulary; an
     * object type outside it (CONTACT) can only be reported as INVALID_EVENT. */
    if (st == EVENT_UNSUPPORTED_OBJECT && f.event_id && peek_subject(m, &pk) == 0) {
        rerr.code = HSQB_ERR_UNSUPPORTED_OBJECT_TYPE;
        f.info.subject = (struct result_subject){
            .known = 1,
            .input_id = f.event_id,
            .action = pk.action,
            .portal_id = pk.portal_id,
            .object_type = pk.type,
            .object_id = pk.object_id,
            .key = pk.key,
            .realm_id = pk.realm[0] ? pk.realm : NULL,
        };
        f.key = pk.key;
        f.keylen = strlen(pk.key);
        f.action = event_action_name(pk.action);
    }
    f.info.duration_ms = clock_mono_ms() - start;
    f.info.completed_at_ms = clock_wall_ms();
    jbuf_init(&jb, RESULT_MAX_BYTES);
    if (build_result(&f, &jb, &fb, msgbuf, sizeof msgbuf) < 0) {
        d = PIPELINE_STOP;
        goto out;
    }
    if (send_dlq(p, &f, f.info.error->code, why, e, sizeof e) < 0 ||
        send_result(p, &f, jbuf_cstr(&jb), jb.len, 0, e, sizeof e) < 0) {
        log_warn("event at %s/%d/%" PRId64 ": publishing its failure failed (%s); retrying later",
                 m->topic, (int)m->partition, m->offset, e);
        metrics_event(p->deps.metrics, f.action, METRICS_OUTCOME_RETRIED, -1);
        *delay = jitter(t, KAFKA_DOWN_DELAY_MS);
        d = PIPELINE_RETRY_LATER;
        goto out;
    }
    metrics_event(p->deps.metrics, f.action, METRICS_OUTCOME_FAILED, f.info.duration_ms);
    log_outcome(&f, METRICS_OUTCOME_FAILED, hsqb_error_name(f.info.error->code), NULL,
                f.info.duration_ms, why);
out:
    jbuf_release(&jb);
    return d;
}

/* ---- claimed events and duplicates ------------------------------------------------ */

enum pipeline_disposition outcome_republish(struct pipeline *p, struct pipeline_thread *t,
                                            struct finish *f, const char *stored, size_t len,
                                            int64_t start, int64_t *delay)
{
    char e[ERRSZ];
    int ok = strstr(stored, "\"type\":\"hsqb.result.succeeded\"") != NULL;

    if (send_result(p, f, stored, len, ok, e, sizeof e) < 0) {
        log_warn("event %s: re-publishing the stored result failed (%s)", f->event_id, e);
        *delay = jitter(t, KAFKA_DOWN_DELAY_MS);
        return PIPELINE_RETRY_LATER;
    }
    metrics_event(p->deps.metrics, f->action, METRICS_OUTCOME_DUPLICATE, clock_mono_ms() - start);
    log_outcome(f, METRICS_OUTCOME_DUPLICATE, ok ? NULL : "stored failure", NULL,
                clock_mono_ms() - start, "already processed: stored result re-published");
    return PIPELINE_DONE;
}

/* Design §4 step 10, best effort: the outcome is already recorded and published, so a
 * failure here is logged, never retried (HubSpot answers 400 to a second completion). */
static void complete_callback(struct pipeline *p, struct pipeline_thread *t, const struct finish *f)
{
    struct ioctx io = {t->http, t->redis, 0, NULL};
    struct hubspot_ctx hc = {f->info.subject.portal_id, NULL};
    struct hubspot_output_field out[3];
    struct api_error err;
    size_t n = 0;
    int ok = f->info.qbo != NULL;

    if (ok) {
        out[n++] = (struct hubspot_output_field){"qbo_entity", f->info.qbo->entity};
        out[n++] = (struct hubspot_output_field){"qbo_id", f->info.qbo->id};
        if (f->info.qbo->doc_number)
            out[n++] = (struct hubspot_output_field){"qbo_doc_number", f->info.qbo->doc_number};
    } else if (f->info.error) {
        out[n++] =
            (struct hubspot_output_field){"error_code", hsqb_error_name(f->info.error->code)};
        out[n++] = (struct hubspot_output_field){"error_message", f->info.error->message};
    }
    if (hubspot_complete_callback(&io, p->deps.hubspot, &hc,
                                  &(struct hubspot_completion){f->event_id, ok, out, n}, &err) < 0)
        log_warn("event %s: completing the HubSpot callback failed: %s", f->event_id, err.message);
}

/* Record and publish the final outcome of a claimed event. */
enum pipeline_disposition outcome_finish_claimed(struct pipeline *p, struct pipeline_thread *t,
                                                 struct finish *f, struct redis_lease *lease,
                                                 struct kept *k, int64_t start, int64_t *delay)
{
    char e[ERRSZ], msgbuf[RESULT_MESSAGE_MAX + 1], *stored = NULL;
    struct result_error fb;
    struct jbuf jb;
    size_t stored_len = 0;
    enum pipeline_disposition d = PIPELINE_DONE;
    int failed;

    f->info.duration_ms = clock_mono_ms() - start;
    f->info.completed_at_ms = clock_wall_ms();
    jbuf_init(&jb, RESULT_MAX_BYTES);
    if (build_result(f, &jb, &fb, msgbuf, sizeof msgbuf) < 0) {
        keeper_remove(&p->keeper, k);
        redis_lease_release(t->redis, lease, e, sizeof e);
        d = PIPELINE_STOP;
        goto out;
    }
    failed = f->info.error != NULL;
    if (failed && send_dlq(p, f, f->info.error->code, f->info.error->message, e, sizeof e) < 0)
        goto kafka_down;
    switch (redis_claim_done(t->redis, lease, jbuf_cstr(&jb), jb.len, p->dedup_ms, e, sizeof e)) {
    case REDIS_DONE_WRITTEN:
    case REDIS_DONE_TAKEN_OVER:
        break;
    case REDIS_DONE_ALREADY:
        /* another owner recorded an outcome first: that one is the event's outcome */
        keeper_remove(&p->keeper, k);
        if (redis_claim(t->redis, lease, p->lease_ms, &stored, &stored_len, e, sizeof e) ==
                REDIS_CLAIM_DONE &&
            stored) {
            d = outcome_republish(p, t, f, stored, stored_len, start, delay);
        } else {
            *delay = jitter(t, REDIS_DOWN_DELAY_MS);
            d = PIPELINE_RETRY_LATER;
        }
        free(stored);
        goto out;
    default:
        log_warn("event %s: recording the outcome in Redis failed (%s); retrying later",
                 f->event_id, e);
        keeper_remove(&p->keeper, k);
        redis_lease_release(t->redis, lease, e, sizeof e);
        metrics_event(p->deps.metrics, f->action, METRICS_OUTCOME_RETRIED, -1);
        *delay = jitter(t, REDIS_DOWN_DELAY_MS);
        d = PIPELINE_RETRY_LATER;
        goto out;
    }
    keeper_remove(&p->keeper, k);
    if (send_result(p, f, jbuf_cstr(&jb), jb.len, !failed, e, sizeof e) < 0) {
        /* the done marker holds the result: the next run re-publishes it */
        log_warn("event %s: publishing the result failed (%s); retrying later", f->event_id, e);
        metrics_event(p->deps.metrics, f->action, METRICS_OUTCOME_RETRIED, -1);
        *delay = jitter(t, KAFKA_DOWN_DELAY_MS);
        d = PIPELINE_RETRY_LATER;
        goto out;
    }
    if (p->complete_callbacks)
        complete_callback(p, t, f);
    metrics_event(p->deps.metrics, f->action,
                  failed ? METRICS_OUTCOME_FAILED : METRICS_OUTCOME_SUCCEEDED, f->info.duration_ms);
    log_outcome(f, failed ? METRICS_OUTCOME_FAILED : METRICS_OUTCOME_SUCCEEDED,
                failed ? hsqb_error_name(f->info.error->code) : NULL,
                failed ? NULL : f->info.qbo->id, f->info.duration_ms,
                failed ? f->info.error->message : NULL);
    goto out;
kafka_down:
    log_warn("event %s: sending the dead letter failed (%s); retrying later", f->event_id, e);
    keeper_remove(&p->keeper, k);
    redis_lease_release(t->redis, lease, e, sizeof e);
    metrics_event(p->deps.metrics, f->action, METRICS_OUTCOME_RETRIED, -1);
    *delay = jitter(t, KAFKA_DOWN_DELAY_MS);
    d = PIPELINE_RETRY_LATER;
out:
    if (f->info.error == &fb) /* build_result's fallback lives in this frame */
        f->info.error = NULL;
    jbuf_release(&jb);
    return d;
}

/* ---- the retry topic (worker/delay.h) ---------------------------------------------- */

enum pipeline_disposition outcome_send_retry(struct pipeline *p, struct pipeline_thread *t,
                                             struct finish *f, struct redis_lease *lease,
                                             int deliveries, int64_t nb, const char *last_error,
                                             const char *reason, int64_t start, int64_t *delay)
{
    struct delay_retry_info info = {
        .deliveries = deliveries,
        .not_before_ms = nb,
        .first_failure_ms = f->first_failure_ms,
        .now_ms = clock_wall_ms(),
        .last_error = last_error,
    };
    char e[ERRSZ], e2[ERRSZ], why[DELAY_LAST_ERROR_MAX + 64];
    int rc =
        delay_send_retry(&p->delay, p->deps.producer, f->msg, &info, SEND_TIMEOUT_MS, e, sizeof e);

    if (redis_lease_release(t->redis, lease, e2, sizeof e2) == REDIS_OWNER_ERROR)
        log_warn("event %s: releasing the claim failed (%s); it lapses after claim.lease",
                 f->event_id, e2);
    metrics_event(p->deps.metrics, f->action, METRICS_OUTCOME_RETRIED,
                  rc < 0 ? -1 : clock_mono_ms() - start);
    if (rc < 0) {
        log_warn("event %s: sending it to the retry topic failed (%s); retrying later", f->event_id,
                 e);
        *delay = jitter(t, KAFKA_DOWN_DELAY_MS);
        return PIPELINE_RETRY_LATER;
    }
    metrics_retry_publish(p->deps.metrics, deliveries, reason);
    snprintf(why, sizeof why,
             "to the retry topic (%s), delivery %d, not before +%" PRId64 " ms: %s", reason,
             deliveries + 1, nb - info.now_ms, last_error);
    log_outcome(f, METRICS_OUTCOME_RETRIED, "RETRY", NULL, clock_mono_ms() - start, why);
    return PIPELINE_DONE;
}
