/* outcome.c - carrying out an event's outcome: what leaves the worker, in which order.
 *
 * pipeline.c decides what happens to an event (claim, run) and retry.c what comes back
 * later; this file makes an ending so against Kafka and Redis, from the delivery
 * (worker/delivery.h) alone. The split follows the one place where order is the design:
 * the last steps of a claimed event (outcome_finish),
 *
 *   build the result --contract violated--> INTERNAL failure instead --even that--> STOP
 *   failure only: DLQ record ------Kafka down--> claim released -----------> RETRY_LATER
 *   done marker + result in Redis --another owner's first--> re-publish that one
 *        |                        --Redis down--> claim released --------> RETRY_LATER
 *   result to the results topic --Kafka down--> (marker kept) -----------> RETRY_LATER
 *        |
 *        +-------------------------------------------------------------------> DONE
 *
 * Under the scheduler (msg->sched set) the last step does not block the thread: the
 * result is handed to the producer and the delivery ends PIPELINE_PENDING; the producer's
 * delivery report then says DONE or RETRY_LATER through scheduler_complete(), with the
 * same log line and metrics (publish_async, on_result_delivered). Until then the message
 * holds its key and its offset, as a running one does.
 *
 * Nothing here calls HubSpot. A result whose execution must be completed carries
 * data.complete_callback: true (from callbacks.complete and the event's source: set in
 * pipeline.c's decode step, or by outcome_invalid for an UNSUPPORTED_OBJECT_TYPE, whose
 * execution HubSpot is waiting on too; a stored result re-published keeps it), and
 * the callback completer (worker/callbacks.h) reads the results topic back and completes
 * it, batched, retried until HubSpot accepts or refuses it: the outcome is final once the
 * result is on the topic, whatever HubSpot's availability.
 *
 * Why this order: for a failure the DLQ record goes out first, then the done marker, then
 * the result; for a success the done marker, then the result. The done marker (its layout:
 * worker/claim.h) is what turns a redelivery into a re-publish (outcome_republish), so it
 * is written as soon as
 * the outcome is final: a crash after it costs one re-publish, never a re-run. The DLQ
 * record of a failure precedes the marker because a re-publish does not re-send it; a
 * crash between the two costs a duplicate dead letter, never a missing one. The lease
 * keeper renews the claim until the delivery ends, since one DLQ send may take
 * DELIVERY_SEND_TIMEOUT_MS, longer than a lease.
 *
 * An undecodable event ends here too (outcome_invalid: no side effects to protect, so
 * no claim and no marker).
 */
#include "worker/outcome.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "worker/claim.h"

/* ---- publishing ------------------------------------------------------------------ */

static int send_dlq(struct delivery *dl, enum hsqb_error code, const char *message, char *errstr,
                    size_t errsz)
{
    const struct pipeline_env *env = dl->env;
    const struct inbound_msg *m = dl->msg;
    struct kafka_header_set h;
    struct result_dlq_info di = {
        .topic = m->topic,
        .partition = m->partition,
        .offset = m->offset,
        .timestamp_ms = m->timestamp_ms,
        .in_hdrs = m->headers,
        .code = code,
        .message = message,
        .attempts = dl->info.attempts,
        .first_failure_ms = dl->first_failure_ms,
        .now_ms = clock_wall_ms(),
        .group = env->group,
        .event_id = dl->event_id,
    };
    struct producer_msg pm;
    int rc;

    if (result_dlq_headers_build(&di, &h, errstr, errsz) < 0)
        return -1;
    /* the original key and value bytes, never re-serialised (schemas/headers.md) */
    pm = (struct producer_msg){
        .topic = env->topic_dlq,
        .key = m->key,
        .keylen = m->key_len,
        .value = m->value,
        .vallen = m->value_len,
        .hdrs = h.h,
        .nhdrs = h.n,
    };
    rc = producer_send_sync(env->producer, &pm, DELIVERY_SEND_TIMEOUT_MS, errstr, errsz);
    kafka_header_set_release(&h);
    if (rc == 0)
        metrics_dlq(env->metrics, hsqb_error_name(code));
    return rc;
}

/* The results-topic record of dl with value json (len bytes): every buffer borrowed. */
static struct producer_msg result_msg(const struct delivery *dl, const char *json, size_t len)
{
    static const struct kafka_header ct = {"content-type", RESULT_CONTENT_TYPE};

    return (struct producer_msg){
        .topic = dl->env->topic_results,
        .key = dl->key,
        .keylen = dl->keylen,
        .value = json,
        .vallen = len,
        .hdrs = &ct,
        .nhdrs = 1,
    };
}

static int send_result(struct delivery *dl, const char *json, size_t len, int succeeded,
                       char *errstr, size_t errsz)
{
    struct producer_msg pm = result_msg(dl, json, len);

    if (producer_send_sync(dl->env->producer, &pm, DELIVERY_SEND_TIMEOUT_MS, errstr, errsz) < 0)
        return -1;
    metrics_result(dl->env->metrics, succeeded ? "succeeded" : "failed");
    return 0;
}

void outcome_log(const struct delivery *dl, const char *outcome, const char *code,
                 const char *qbo_id, int64_t duration_ms, const char *message)
{
    struct log_field fl[] = {
        LF_STR("event_id", dl->event_id),   LF_STR("key", dl->key),
        LF_STR("topic", dl->msg->topic),    LF_INT("partition", dl->msg->partition),
        LF_INT("offset", dl->msg->offset),  LF_STR("action", dl->action),
        LF_STR("outcome", outcome),         LF_STR("code", code),
        LF_STR("qbo_id", qbo_id),           LF_INT("attempts", dl->info.attempts),
        LF_INT("duration_ms", duration_ms), LF_STR("message", message),
    };
    enum log_level lvl = strcmp(outcome, METRICS_OUTCOME_SUCCEEDED) == 0 ||
                                 strcmp(outcome, METRICS_OUTCOME_DUPLICATE) == 0
                             ? LOG_INFO
                             : LOG_WARN;
    if (log_enabled(lvl))
        log_fields(lvl, "event outcome", fl, sizeof fl / sizeof fl[0]);
}

/* Build the result JSON of dl into jb; on a contract violation fall back to an INTERNAL
 * failure naming it (in *fallback, the caller's). 0, or -1 when even that fails. */
static int build_result(struct delivery *dl, struct jbuf *jb, struct result_error *fallback,
                        char *msgbuf, size_t msgsz)
{
    char e[DELIVERY_ERRSZ];

    if (result_build(&dl->info, jb, e, sizeof e) == 0)
        return 0;
    log_error("event %s: %s", dl->event_id ? dl->event_id : "?", e);
    snprintf(msgbuf, msgsz, "internal error building the result: %s", e);
    *fallback = (struct result_error){.code = HSQB_ERR_INTERNAL, .message = msgbuf};
    dl->info.qbo = NULL;
    dl->info.error = fallback;
    return result_build(&dl->info, jb, e, sizeof e);
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
    int complete_callback; /* the result is marked (mode: callbacks.complete) */
};

static int peek_subject(const struct inbound_msg *m, enum result_callbacks mode, struct peeked *pk)
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
    pk->complete_callback =
        result_callback_wanted(mode, json_get_str(root, "source", &s) == JGET_OK ? s : NULL);
    rc = 0;
out:
    json_object_put(root);
    return rc;
}

enum pipeline_disposition outcome_invalid(struct delivery *dl, enum event_status st,
                                          const char *why)
{
    const struct inbound_msg *m = dl->msg;
    char id[EVENT_ID_MAX + 1], e[DELIVERY_ERRSZ], msgbuf[RESULT_MESSAGE_MAX + 1];
    struct peeked pk;
    struct result_error rerr = {.code = HSQB_ERR_INVALID_EVENT, .message = why};
    struct result_error fb;
    struct jbuf jb;
    enum pipeline_disposition d = PIPELINE_DONE;

    dl->key = m->key;
    dl->keylen = m->key ? m->key_len : 0;
    if (m->value && event_peek_id(m->value, m->value_len, id, sizeof id) == 0)
        dl->event_id = id;
    dl->action = "unknown";
    dl->info.attempts = dl->meta.attempts_before + 1;
    dl->info.error = &rerr;
    dl->info.subject.input_id = dl->event_id;
    /* UNSUPPORTED_OBJECT_TYPE must name its subject in the contract's vocabulary; an
     * object type outside it (CONTACT) can only be reported as INVALID_EVENT. */
    if (st == EVENT_UNSUPPORTED_OBJECT && dl->event_id &&
        peek_subject(m, dl->env->callbacks, &pk) == 0) {
        rerr.code = HSQB_ERR_UNSUPPORTED_OBJECT_TYPE;
        dl->info.subject = (struct result_subject){
            .known = 1,
            .input_id = dl->event_id,
            .action = pk.action,
            .portal_id = pk.portal_id,
            .object_type = pk.type,
            .object_id = pk.object_id,
            .key = pk.key,
            .realm_id = pk.realm[0] ? pk.realm : NULL,
        };
        dl->info.complete_callback = pk.complete_callback;
        dl->key = pk.key;
        dl->keylen = strlen(pk.key);
        dl->action = event_action_name(pk.action);
    }
    dl->info.duration_ms = clock_mono_ms() - dl->start_ms;
    dl->info.completed_at_ms = clock_wall_ms();
    jbuf_init(&jb, RESULT_MAX_BYTES);
    if (build_result(dl, &jb, &fb, msgbuf, sizeof msgbuf) < 0) {
        d = PIPELINE_STOP;
        goto out;
    }
    if (send_dlq(dl, dl->info.error->code, why, e, sizeof e) < 0 ||
        send_result(dl, jbuf_cstr(&jb), jb.len, 0, e, sizeof e) < 0) {
        log_warn("event at %s/%d/%" PRId64 ": publishing its failure failed (%s); retrying later",
                 m->topic, (int)m->partition, m->offset, e);
        d = delivery_retry_later(dl, DELIVERY_KAFKA_DOWN_DELAY_MS, 1);
        goto out;
    }
    metrics_event(dl->env->metrics, dl->action, METRICS_OUTCOME_FAILED, dl->info.duration_ms);
    outcome_log(dl, METRICS_OUTCOME_FAILED, hsqb_error_name(dl->info.error->code), NULL,
                dl->info.duration_ms, why);
out:
    /* nothing in dl may point into this frame once it returns */
    dl->event_id = NULL;
    dl->key = NULL;
    dl->keylen = 0;
    dl->info.error = NULL;
    dl->info.subject = (struct result_subject){0};
    dl->info.complete_callback = 0;
    jbuf_release(&jb);
    return d;
}

/* ---- claimed events and duplicates ------------------------------------------------ */

enum pipeline_disposition outcome_republish(struct delivery *dl, const struct claim_stored *st)
{
    char e[DELIVERY_ERRSZ];
    const char *json = st->result ? st->result : "";

    if (send_result(dl, json, st->result ? st->len : 0, !st->failed, e, sizeof e) < 0) {
        log_warn("event %s: re-publishing the stored result failed (%s)", dl->event_id, e);
        return delivery_retry_later(dl, DELIVERY_KAFKA_DOWN_DELAY_MS, 0);
    }
    metrics_event(dl->env->metrics, dl->action, METRICS_OUTCOME_DUPLICATE,
                  clock_mono_ms() - dl->start_ms);
    outcome_log(dl, METRICS_OUTCOME_DUPLICATE, st->failed ? "stored failure" : NULL, NULL,
                clock_mono_ms() - dl->start_ms, "already processed: stored result re-published");
    return PIPELINE_DONE;
}

/* Another owner recorded an outcome first: that one is the event's outcome. */
static enum pipeline_disposition republish_theirs(struct delivery *dl)
{
    struct claim_stored st = {0};
    enum pipeline_disposition d;
    char e[DELIVERY_ERRSZ];

    if (claim_peek(dl->io.redis, dl->event_id, &st, e, sizeof e) != 1)
        return delivery_retry_later(dl, DELIVERY_REDIS_DOWN_DELAY_MS, 0);
    d = outcome_republish(dl, &st);
    claim_stored_release(&st);
    return d;
}

/* Kafka or Redis failed before the outcome was recorded: free the claim for the next run. */
static enum pipeline_disposition release_and_retry(struct delivery *dl, int64_t base_ms)
{
    char e[DELIVERY_ERRSZ];

    redis_lease_release(dl->io.redis, &dl->lease, e, sizeof e);
    return delivery_retry_later(dl, base_ms, 1);
}

/* The result is on the topic: count and log the outcome. */
static void published(const struct delivery *dl, int failed)
{
    const struct result_info *info = &dl->info;

    metrics_event(dl->env->metrics, dl->action,
                  failed ? METRICS_OUTCOME_FAILED : METRICS_OUTCOME_SUCCEEDED, info->duration_ms);
    outcome_log(dl, failed ? METRICS_OUTCOME_FAILED : METRICS_OUTCOME_SUCCEEDED,
                failed ? hsqb_error_name(info->error->code) : NULL, failed ? NULL : info->qbo->id,
                info->duration_ms, failed ? info->error->message : NULL);
}

/* The result could not be published: the done marker holds it, the next run re-publishes. */
static enum pipeline_disposition result_not_sent(struct delivery *dl, const char *why)
{
    log_warn("event %s: publishing the result failed (%s); retrying later", dl->event_id, why);
    return delivery_retry_later(dl, DELIVERY_KAFKA_DOWN_DELAY_MS, 1);
}

/* A result on its way to the topic while the worker thread goes on with the next event:
 * a copy of what the delivery's outcome log and retry need (the delivery itself and the
 * strings it borrows from the event die with handle_one's frame). The message (dl.msg)
 * stays alive until scheduler_complete(). */
struct tail {
    struct delivery dl;
    struct result_error err;
    struct result_qbo qbo;
    uint64_t rnd;
    char strs[]; /* event id, key, QBO id, error message: NUL-terminated, in that order */
};

static void on_result_delivered(void *opaque, int ok, const char *why)
{
    struct tail *t = opaque;
    const struct inbound_msg *m = t->dl.msg;
    enum handler_disposition hd = HANDLER_DONE;

    if (ok == 0) {
        metrics_result(t->dl.env->metrics, t->dl.info.error ? "failed" : "succeeded");
        published(&t->dl, t->dl.info.error != NULL);
    } else {
        result_not_sent(&t->dl, why);
        hd = HANDLER_RETRY;
    }
    scheduler_complete(m->sched, m, hd, t->dl.delay_ms);
    free(t);
}

static char *put_str(char **at, const char *s, size_t len)
{
    char *r = *at;

    if (len)
        memcpy(r, s, len);
    r[len] = '\0';
    *at += len + 1;
    return r;
}

/* Hand the result (jb, after the done marker) to the producer and end the delivery
 * PIPELINE_PENDING: on_result_delivered completes it on the producer's thread. The worker
 * thread neither waits for the broker's acknowledgement (linger and a round trip) nor is
 * woken by it. Returns RETRY_LATER when the producer refuses it at once. */
static enum pipeline_disposition publish_async(struct delivery *dl, struct jbuf *jb, int failed)
{
    const struct result_info *info = &dl->info;
    const char *qid = failed ? "" : info->qbo->id;
    const char *msg = failed && info->error->message ? info->error->message : "";
    size_t lid = strlen(dl->event_id), lq = strlen(qid), lm = strlen(msg);
    struct producer_msg pm = result_msg(dl, jbuf_cstr(jb), jb->len);
    char e[DELIVERY_ERRSZ], *at;
    struct tail *t = malloc(sizeof *t + lid + dl->keylen + lq + lm + 4);

    if (!t)
        return result_not_sent(dl, "out of memory");
    t->dl = *dl;
    t->dl.io = (struct ioctx){0}; /* the thread's clients are not the callback's */
    t->dl.ev = (struct action_event){0};
    t->rnd = *dl->rnd ^ (uint64_t)(uintptr_t)t;
    t->dl.rnd = &t->rnd;
    at = t->strs;
    t->dl.event_id = put_str(&at, dl->event_id, lid);
    t->dl.key = put_str(&at, dl->key, dl->keylen);
    if (failed) {
        t->err = (struct result_error){.code = info->error->code,
                                       .message = put_str(&at, msg, lm)};
        t->dl.info.error = &t->err;
        t->dl.info.qbo = NULL;
    } else {
        t->qbo = (struct result_qbo){.id = put_str(&at, qid, lq)};
        t->dl.info.qbo = &t->qbo;
        t->dl.info.error = NULL;
    }
    if (producer_send_async(dl->env->producer, &pm, on_result_delivered, t, e, sizeof e) < 0) {
        free(t);
        return result_not_sent(dl, e);
    }
    return PIPELINE_PENDING;
}

enum pipeline_disposition outcome_finish(struct delivery *dl)
{
    char e[DELIVERY_ERRSZ], msgbuf[RESULT_MESSAGE_MAX + 1];
    struct result_info *info = &dl->info;
    struct claim_record rec;
    struct result_error fb;
    struct jbuf jb;
    enum pipeline_disposition d = PIPELINE_DONE;
    int failed;

    info->duration_ms = clock_mono_ms() - dl->start_ms;
    info->completed_at_ms = clock_wall_ms();
    jbuf_init(&jb, RESULT_MAX_BYTES);
    if (build_result(dl, &jb, &fb, msgbuf, sizeof msgbuf) < 0) {
        redis_lease_release(dl->io.redis, &dl->lease, e, sizeof e);
        d = PIPELINE_STOP;
        goto out;
    }
    failed = info->error != NULL;
    if (failed && send_dlq(dl, info->error->code, info->error->message, e, sizeof e) < 0) {
        log_warn("event %s: sending the dead letter failed (%s); retrying later", dl->event_id, e);
        d = release_and_retry(dl, DELIVERY_KAFKA_DOWN_DELAY_MS);
        goto out;
    }
    rec = (struct claim_record){failed, jbuf_cstr(&jb), jb.len};
    switch (claim_done(dl->io.redis, &dl->lease, &rec, dl->env->dedup_ms, e, sizeof e)) {
    case CLAIM_DONE_WRITTEN:
    case CLAIM_DONE_TAKEN_OVER:
        break;
    case CLAIM_DONE_ALREADY:
        d = republish_theirs(dl);
        goto out;
    default:
        log_warn("event %s: recording the outcome in Redis failed (%s); retrying later",
                 dl->event_id, e);
        d = release_and_retry(dl, DELIVERY_REDIS_DOWN_DELAY_MS);
        goto out;
    }
    if (dl->msg->sched) {
        d = publish_async(dl, &jb, failed);
        goto out;
    }
    if (send_result(dl, jbuf_cstr(&jb), jb.len, !failed, e, sizeof e) < 0) {
        d = result_not_sent(dl, e);
        goto out;
    }
    published(dl, failed);
out:
    if (info->error == &fb) /* build_result's fallback lives in this frame */
        info->error = NULL;
    jbuf_release(&jb);
    return d;
}
