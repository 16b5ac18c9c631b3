/* result.c - result CloudEvents and DLQ header sets (see result.h).
 *
 * The builder checks the contract before it writes, rather than trusting every caller
 * to remember the schema's conditionals: a result that would fail
 * schemas/result-event.schema.json is an internal error here, never a message on the
 * topic that a consumer must reject. Free text (error messages, upstream ids) is the one
 * place untrusted bytes reach the result, so it is forced to one redacted line with a
 * byte cap that also bounds the code-point count the schema limits.
 *
 * DLQ headers are forwarded-message headers: the input's own headers travel along
 * (content-type, hsqb-replay-*), except the names this record sets, so that a message
 * that went input -> retry -> DLQ carries each name once and names its true origin.
 */
#include "worker/result.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/utf8.h"

void result_subject_from_event(struct result_subject *s, const struct action_event *ev)
{
    memset(s, 0, sizeof *s);
    s->known = 1;
    s->input_id = ev->id;
    s->action = ev->action;
    s->portal_id = ev->portal_id;
    s->object_type = ev->object_type;
    s->object_id = ev->object_id;
    s->key = ev->key;
    s->realm_id = ev->in.realm_id[0] ? ev->in.realm_id : NULL;
}

/* ---- small checks ---------------------------------------------------------------- */

static int all_digits(const char *s, size_t maxlen)
{
    size_t n = 0;

    if (!s || !*s)
        return 0;
    for (; s[n]; n++)
        if (s[n] < '0' || s[n] > '9')
            return 0;
    return n <= maxlen;
}

/* 1..200 visible ASCII characters: the input id rule (result id, input_id). */
static int valid_input_id(const char *s)
{
    size_t n = 0;

    if (!s)
        return 0;
    for (; s[n]; n++)
        if ((unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7e)
            return 0;
    return n >= 1 && n <= EVENT_ID_MAX;
}

static int valid_currency(const char *s)
{
    return s && strlen(s) == 3 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z' &&
           s[2] >= 'A' && s[2] <= 'Z';
}

char *result_one_line(const char *text, char *out, size_t outsz)
{
    char *tmp;
    size_t n, i;

    if (!out || outsz == 0)
        return out;
    out[0] = '\0';
    if (!text)
        return out;
    n = strlen(text);
    tmp = malloc(n + 1);
    if (!tmp)
        return out;
    for (i = 0; i < n; i++)
        tmp[i] = (text[i] == '\r' || text[i] == '\n' || text[i] == '\t') ? ' ' : text[i];
    tmp[n] = '\0';
    /* log_redact truncates to outsz - 1 bytes; a cut in a UTF-8 sequence is repaired */
    log_redact(tmp, out, outsz);
    free(tmp);
    n = strlen(out);
    out[utf8_trim_partial(out, n)] = '\0';
    return out;
}

/* ---- result ------------------------------------------------------------------------ */

static int fail(char *errstr, size_t errsz, const char *msg)
{
    if (errstr && errsz)
        snprintf(errstr, errsz, "result: %s", msg);
    return -1;
}

static int check_qbo(const struct result_info *in, char *errstr, size_t errsz)
{
    const struct result_qbo *q = in->qbo;
    const char *want;
    size_t i;

    if (!in->subject.known || !valid_input_id(in->subject.input_id) || !in->subject.realm_id ||
        !all_digits(in->subject.realm_id, EVENT_REALM_MAX))
        return fail(errstr, errsz, "a success must name its event, object and realm");
    want = event_action_qbo_entity(in->subject.action);
    if (!q->entity || !want || strcmp(q->entity, want) != 0)
        return fail(errstr, errsz, "qbo.entity does not match the action");
    if (!all_digits(q->id, RESULT_QBO_ID_MAX))
        return fail(errstr, errsz, "qbo.id is not a QBO id");
    if (q->total_cents < 0)
        return fail(errstr, errsz, "qbo.total_cents is negative");
    if (!valid_currency(q->currency))
        return fail(errstr, errsz, "qbo.currency is not a currency code");
    if (q->customer_id && !all_digits(q->customer_id, RESULT_QBO_ID_MAX))
        return fail(errstr, errsz, "qbo.customer_id is not a QBO id");
    if (q->ncreated_items && !q->created_items)
        return fail(errstr, errsz, "qbo.created_items missing");
    for (i = 0; i < q->ncreated_items; i++)
        if (!all_digits(q->created_items[i].id, RESULT_QBO_ID_MAX) || !q->created_items[i].name ||
            !q->created_items[i].name[0])
            return fail(errstr, errsz, "qbo.created_items holds a bad item");
    if (in->subject.action == ACTION_CREATE_PAID_INVOICE) {
        if (!all_digits(q->payment_id, RESULT_QBO_ID_MAX))
            return fail(errstr, errsz, "a paid invoice needs qbo.payment_id");
    } else if (q->payment_id) {
        return fail(errstr, errsz, "qbo.payment_id is for paid invoices only");
    }
    return 0;
}

static int check_info(const struct result_info *in, char *errstr, size_t errsz)
{
    if (!in->worker_source || !*in->worker_source)
        return fail(errstr, errsz, "no worker source");
    if (!in->topic || !*in->topic || strlen(in->topic) > 249)
        return fail(errstr, errsz, "bad source topic");
    if (in->partition < 0 || in->offset < 0)
        return fail(errstr, errsz, "bad source partition or offset");
    if (in->attempts < 1 || in->attempts > 1000000)
        return fail(errstr, errsz, "attempts out of range");
    if (in->duration_ms < 0)
        return fail(errstr, errsz, "negative duration");
    if (!in->qbo == !in->error)
        return fail(errstr, errsz, "exactly one of qbo and error must be given");
    if (in->subject.known) {
        if (!event_action_name(in->subject.action) || !object_type_name(in->subject.object_type) ||
            in->subject.portal_id < 1 || in->subject.object_id < 1 || !in->subject.key ||
            !valid_input_id(in->subject.input_id))
            return fail(errstr, errsz, "bad subject");
    }
    if (in->qbo)
        return check_qbo(in, errstr, errsz);
    if (!hsqb_error_name(in->error->code))
        return fail(errstr, errsz, "unknown error code");
    if (in->error->code != HSQB_ERR_INVALID_EVENT && !in->subject.known)
        return fail(errstr, errsz, "a failure other than INVALID_EVENT must name its subject");
    return 0;
}

static void write_error(struct jbuf *jb, const struct result_error *e, int *bad)
{
    char msg[RESULT_MESSAGE_MAX + 1], up[RESULT_UPSTREAM_ID_MAX + 1];
    struct json_object *details = NULL;

    result_one_line(e->message, msg, sizeof msg);
    if (!msg[0])
        snprintf(msg, sizeof msg, "%s", hsqb_error_name(e->code));
    jbuf_key(jb, "error");
    jbuf_obj_open(jb);
    jbuf_kv_str(jb, "code", hsqb_error_name(e->code));
    jbuf_kv_str(jb, "message", msg);
    jbuf_kv_bool(jb, "retryable", hsqb_error_retryable(e->code));
    jbuf_key(jb, "http_status");
    if (e->http_status >= 100 && e->http_status <= 599)
        jbuf_int(jb, e->http_status);
    else
        jbuf_null(jb);
    jbuf_key(jb, "upstream_id");
    if (e->upstream_id && e->upstream_id[0]) {
        result_one_line(e->upstream_id, up, sizeof up);
        jbuf_str(jb, up);
    } else {
        jbuf_null(jb);
    }
    if (e->details_json) {
        size_t n = strlen(e->details_json);
        details = json_parse_strict(e->details_json, n, 32, NULL, 0);
        if (!details || !json_object_is_type(details, json_type_object)) {
            *bad = 1;
        } else {
            jbuf_key(jb, "details");
            jbuf_raw(jb, e->details_json, n);
        }
        json_object_put(details);
    }
    jbuf_obj_close(jb);
}

static void write_qbo(struct jbuf *jb, const struct result_qbo *q)
{
    size_t i;

    jbuf_key(jb, "qbo");
    jbuf_obj_open(jb);
    jbuf_kv_str(jb, "entity", q->entity);
    jbuf_kv_str(jb, "id", q->id);
    jbuf_key(jb, "doc_number");
    if (q->doc_number && strlen(q->doc_number) <= RESULT_DOC_NUMBER_MAX)
        jbuf_str(jb, q->doc_number);
    else
        jbuf_null(jb);
    jbuf_kv_int(jb, "total_cents", q->total_cents);
    jbuf_kv_str(jb, "currency", q->currency);
    jbuf_kv_str(jb, "customer_id", q->customer_id); /* NULL -> null */
    jbuf_kv_bool(jb, "created_customer", q->created_customer);
    jbuf_key(jb, "created_items");
    jbuf_arr_open(jb);
    for (i = 0; i < q->ncreated_items; i++) {
        jbuf_obj_open(jb);
        jbuf_kv_str(jb, "id", q->created_items[i].id);
        jbuf_kv_str(jb, "name", q->created_items[i].name);
        jbuf_obj_close(jb);
    }
    jbuf_arr_close(jb);
    jbuf_kv_str(jb, "payment_id", q->payment_id);
    jbuf_obj_close(jb);
}

int result_build(const struct result_info *in, struct jbuf *jb, char *errstr, size_t errsz)
{
    const struct result_subject *s = &in->subject;
    char id[RESULT_ID_MAX + 1], when[32];
    int bad = 0;

    if (check_info(in, errstr, errsz) < 0)
        return -1;
    if (valid_input_id(s->input_id))
        snprintf(id, sizeof id, "%s:result", s->input_id);
    else
        snprintf(id, sizeof id, "%s:%" PRId32 ":%" PRId64 ":result", in->topic, in->partition,
                 in->offset);
    clock_rfc3339_ms(in->completed_at_ms, when);

    jbuf_reset(jb);
    jbuf_obj_open(jb);
    jbuf_kv_str(jb, "specversion", "1.0");
    jbuf_kv_str(jb, "id", id);
    jbuf_kv_str(jb, "type", in->qbo ? "hsqb.result.succeeded" : "hsqb.result.failed");
    jbuf_kv_str(jb, "source", in->worker_source);
    if (s->known)
        jbuf_kv_str(jb, "subject", s->key);
    jbuf_kv_str(jb, "time", when);
    jbuf_kv_str(jb, "datacontenttype", "application/json");
    jbuf_key(jb, "data");
    jbuf_obj_open(jb);
    jbuf_kv_str(jb, "status", in->qbo ? "succeeded" : "failed");
    if (s->known)
        jbuf_kv_str(jb, "action", event_action_name(s->action));
    if (valid_input_id(s->input_id))
        jbuf_kv_str(jb, "input_id", s->input_id);
    if (s->known) {
        jbuf_kv_int(jb, "portal_id", s->portal_id);
        jbuf_key(jb, "object");
        jbuf_obj_open(jb);
        jbuf_kv_str(jb, "type", object_type_name(s->object_type));
        jbuf_kv_int(jb, "id", s->object_id);
        jbuf_obj_close(jb);
    }
    if (s->realm_id && all_digits(s->realm_id, EVENT_REALM_MAX))
        jbuf_kv_str(jb, "realm_id", s->realm_id);
    if (in->qbo)
        write_qbo(jb, in->qbo);
    else
        write_error(jb, in->error, &bad);
    jbuf_kv_int(jb, "attempts", in->attempts);
    jbuf_key(jb, "source");
    jbuf_obj_open(jb);
    jbuf_kv_str(jb, "topic", in->topic);
    jbuf_kv_int(jb, "partition", in->partition);
    jbuf_kv_int(jb, "offset", in->offset);
    jbuf_obj_close(jb);
    jbuf_kv_int(jb, "duration_ms", in->duration_ms);
    jbuf_kv_str(jb, "completed_at", when);
    if (in->complete_callback && s->known && valid_input_id(s->input_id))
        jbuf_kv_bool(jb, "complete_callback", 1);
    jbuf_obj_close(jb);
    jbuf_obj_close(jb);
    if (bad)
        return fail(errstr, errsz, "error.details is not a JSON object");
    if (jb->err || jb->depth != 0)
        return fail(errstr, errsz, "result too large or malformed");
    return 0;
}

/* ---- the callback marker ------------------------------------------------------------- */

enum result_callbacks result_callbacks_mode(const char *s)
{
    if (s && strcmp(s, "ingress") == 0)
        return RESULT_CALLBACKS_INGRESS;
    if (s && (strcmp(s, "all") == 0 || strcmp(s, "true") == 0))
        return RESULT_CALLBACKS_ALL;
    return RESULT_CALLBACKS_OFF;
}

int result_callback_wanted(enum result_callbacks m, const char *source)
{
    static const char prefix[] = RESULT_INGRESS_SOURCE_PREFIX;

    switch (m) {
    case RESULT_CALLBACKS_ALL:
        return 1;
    case RESULT_CALLBACKS_INGRESS:
        return source && strncmp(source, prefix, sizeof prefix - 1) == 0;
    default:
        return 0;
    }
}

/* ---- inbound headers --------------------------------------------------------------- */

/* Last value of header name as a NUL-terminated copy in buf; 0, or -1 when absent, empty,
 * too long or holding a NUL. */
static int hdr_get(const rd_kafka_headers_t *h, const char *name, char *buf, size_t bufsz)
{
    const void *v = NULL;
    size_t n = 0;

    if (!h || rd_kafka_header_get_last(h, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR || !v ||
        n == 0 || n >= bufsz || memchr(v, '\0', n))
        return -1;
    memcpy(buf, v, n);
    buf[n] = '\0';
    return 0;
}

/* Base-10 digits without sign or leading zeros (headers.md), 0..max. */
static int hdr_get_u64(const rd_kafka_headers_t *h, const char *name, int64_t max, int64_t *out)
{
    char buf[32];
    int64_t v = 0;
    size_t i;

    if (hdr_get(h, name, buf, sizeof buf) < 0)
        return -1;
    if (buf[0] == '0' && buf[1] != '\0')
        return -1;
    for (i = 0; buf[i]; i++) {
        if (buf[i] < '0' || buf[i] > '9' || v > (max - (buf[i] - '0')) / 10)
            return -1;
        v = v * 10 + (buf[i] - '0');
    }
    *out = v;
    return 0;
}

void result_inbound_meta_read(const rd_kafka_headers_t *h, struct result_inbound_meta *m)
{
    const void *val = NULL;
    size_t n = 0;
    int64_t v;

    memset(m, 0, sizeof *m);
    if (!h)
        return;
    if (hdr_get_u64(h, "hsqb-attempts", 999999, &v) == 0)
        m->attempts_before = (int)v;
    if (hdr_get_u64(h, "hsqb-first-failure", INT64_MAX, &v) == 0)
        m->first_failure_ms = v;
    if (hdr_get(h, "hsqb-original-topic", m->original_topic, sizeof m->original_topic) == 0) {
        if (hdr_get_u64(h, "hsqb-original-partition", INT32_MAX, &v) == 0)
            m->original_partition = (int32_t)v;
        else
            m->original_topic[0] = '\0'; /* a topic without its partition names nothing */
        if (hdr_get_u64(h, "hsqb-original-offset", INT64_MAX, &v) == 0)
            m->original_offset = v;
        if (hdr_get_u64(h, "hsqb-original-timestamp", INT64_MAX, &v) == 0)
            m->original_timestamp_ms = v;
    }
    m->replayed =
        rd_kafka_header_get_last(h, "hsqb-replay-of", &val, &n) == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (hdr_get_u64(h, "hsqb-replay-count", RESULT_REPLAY_COUNT_MAX, &v) == 0)
        m->replay_count = (int)v;
}

void result_original_fill(const struct result_inbound_meta *meta, const char *topic,
                          int32_t partition, int64_t offset, int64_t timestamp_ms,
                          struct result_original *out)
{
    if (meta->original_topic[0]) {
        snprintf(out->topic, sizeof out->topic, "%s", meta->original_topic);
        snprintf(out->partition, sizeof out->partition, "%" PRId32, meta->original_partition);
        snprintf(out->offset, sizeof out->offset, "%" PRId64, meta->original_offset);
        snprintf(out->timestamp, sizeof out->timestamp, "%" PRId64, meta->original_timestamp_ms);
    } else {
        snprintf(out->topic, sizeof out->topic, "%s", topic ? topic : "");
        snprintf(out->partition, sizeof out->partition, "%" PRId32, partition < 0 ? 0 : partition);
        snprintf(out->offset, sizeof out->offset, "%" PRId64, offset < 0 ? 0 : offset);
        snprintf(out->timestamp, sizeof out->timestamp, "%" PRId64,
                 timestamp_ms < 0 ? 0 : timestamp_ms);
    }
}

/* ---- DLQ headers --------------------------------------------------------------------- */

static const char *const dlq_names[] = {
    "hsqb-original-topic",
    "hsqb-original-partition",
    "hsqb-original-offset",
    "hsqb-original-timestamp",
    "hsqb-error-code",
    "hsqb-error-message",
    "hsqb-attempts",
    "hsqb-first-failure",
    "hsqb-last-failure",
    "hsqb-consumer-group",
    "hsqb-event-id",
    /* retry-hop headers that mean nothing on the DLQ */
    "hsqb-not-before",
    "hsqb-last-error",
};
#define NOURS (sizeof dlq_names / sizeof dlq_names[0])

int result_dlq_headers_build(const struct result_dlq_info *in, struct kafka_header_set *out,
                             char *errstr, size_t errsz)
{
    struct kafka_header_ref p[KAFKA_HEADER_SET_MAX];
    struct result_inbound_meta meta;
    struct result_original o;
    char attempts[16], first[24], last[24];
    char msg[RESULT_DLQ_MESSAGE_MAX + 1];
    size_t np;

    result_inbound_meta_read(in->in_hdrs, &meta);
    /* the input's own headers first, minus the ones we set; copied headers beyond our
     * room are dropped (headers.md allows nothing that needs them) */
    np = kafka_headers_gather(in->in_hdrs, dlq_names, NOURS, p, KAFKA_HEADER_SET_MAX - NOURS);
    result_original_fill(&meta, in->topic, in->partition, in->offset, in->timestamp_ms, &o);
    snprintf(attempts, sizeof attempts, "%d", in->attempts < 1 ? 1 : in->attempts);
    snprintf(first, sizeof first, "%" PRId64,
             in->first_failure_ms > 0    ? in->first_failure_ms
             : meta.first_failure_ms > 0 ? meta.first_failure_ms
                                         : in->now_ms);
    snprintf(last, sizeof last, "%" PRId64, in->now_ms);
    result_one_line(in->message, msg, sizeof msg);
    if (!msg[0])
        snprintf(msg, sizeof msg, "%s",
                 hsqb_error_name(in->code) ? hsqb_error_name(in->code) : "?");

#define ADD(n, v) (p[np++] = (struct kafka_header_ref){(n), (v), strlen(v)})
    ADD("hsqb-original-topic", o.topic);
    ADD("hsqb-original-partition", o.partition);
    ADD("hsqb-original-offset", o.offset);
    ADD("hsqb-original-timestamp", o.timestamp);
    ADD("hsqb-error-code", hsqb_error_name(in->code) ? hsqb_error_name(in->code) : "INTERNAL");
    ADD("hsqb-error-message", msg);
    ADD("hsqb-attempts", attempts);
    ADD("hsqb-first-failure", first);
    ADD("hsqb-last-failure", last);
    ADD("hsqb-consumer-group", in->group ? in->group : "");
    if (in->event_id && valid_input_id(in->event_id))
        ADD("hsqb-event-id", in->event_id);
#undef ADD

    return kafka_header_set_build(p, np, out, errstr, errsz);
}
