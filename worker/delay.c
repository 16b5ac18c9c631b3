/* delay.c - the retry topic's schedule, records and holds (see delay.h).
 *
 * Why hold in memory and re-queue rather than sleep or seek: a consumer cannot skip a
 * record and come back to it without giving up the offsets after it, and a worker thread
 * sleeping until not-before is exactly the head-of-line blocking the retry topic exists
 * to avoid. So a record that is not due yet is copied off its fetch buffer and parked in
 * the scheduler's timer heap (cheap: a few hundred bytes plus the value), and a record
 * whose wait is longer than retry.hold_max goes back to the tail of the retry topic after
 * one hold, which keeps every partition's commit offset moving. A retry record's life:
 *
 *   pipeline: transient failure, budget spent --delay_route: RETRY--> delay_send_retry()
 *       --acknowledged--> input offset stored, claim released
 *   consumer: polled --delay_hold_ms() > 0--> delay_msg_new() + scheduler_submit_delayed()
 *       (held) --due--> pipeline_handle()
 *   pipeline: still early by more than DELAY_EARLY_SLACK_MS --> delay_send_requeue()
 *       --acknowledged--> offset stored (the copy starts another hold)
 *             early by less --> PIPELINE_RETRY_LATER (scheduler timer)
 *             due --> processed like any event (hsqb-attempts = deliveries before this one)
 */
#include "worker/delay.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "worker/result.h"

/* Names a retry record sets itself; the input's own occurrences are not copied. */
static const char *const retry_names[] = {
    "hsqb-attempts",        "hsqb-not-before",         "hsqb-last-error",
    "hsqb-first-failure",   "hsqb-original-topic",     "hsqb-original-partition",
    "hsqb-original-offset", "hsqb-original-timestamp",
};
#define NRETRY (sizeof retry_names / sizeof retry_names[0])

static int fail(char *errstr, size_t errsz, const char *msg)
{
    snprintf(errstr, errsz, "%s", msg);
    return -1;
}

int delay_policy_from_config(struct delay_policy *pol, const struct config *cfg, char *errstr,
                             size_t errsz)
{
    const char *const *items;
    size_t n, i;

    memset(pol, 0, sizeof *pol);
    snprintf(pol->retry_topic, sizeof pol->retry_topic, "%s",
             config_get_str(cfg, "kafka.topic.retry"));
    items = config_get_list(cfg, "retry.schedule", &n);
    for (i = 0; i < n && i < DELAY_SCHEDULE_MAX; i++) {
        if (config_parse_duration(items[i], &pol->schedule_ms[i]) < 0 || pol->schedule_ms[i] <= 0) {
            snprintf(errstr, errsz, "retry.schedule: \"%.64s\" is not a duration", items[i]);
            return -1;
        }
    }
    pol->nschedule = i;
    if (pol->nschedule == 0)
        return fail(errstr, errsz, "retry.schedule: empty");
    pol->max_attempts = (int)config_get_int(cfg, "retry.max_attempts");
    pol->max_age_ms = config_get_ms(cfg, "retry.max_age");
    pol->hold_max_ms = config_get_ms(cfg, "retry.hold_max");
    pol->max_held = (size_t)config_get_int(cfg, "retry.max_held");
    pol->max_held_per_partition = (size_t)config_get_int(cfg, "retry.max_held_per_partition");
    pol->max_held_bytes = (size_t)config_get_bytes(cfg, "retry.max_held_bytes");
    return 0;
}

int64_t delay_schedule_ms(const struct delay_policy *pol, int deliveries)
{
    size_t i = deliveries < 1 ? 0 : (size_t)(deliveries - 1);

    if (i >= pol->nschedule)
        i = pol->nschedule - 1;
    return pol->schedule_ms[i];
}

enum delay_route delay_route(const struct delay_policy *pol, int deliveries,
                             int64_t first_failure_ms, int64_t now_ms, int64_t *not_before_ms)
{
    if (deliveries >= pol->max_attempts)
        return DELAY_EXHAUSTED;
    if (first_failure_ms > 0 && now_ms - first_failure_ms >= pol->max_age_ms)
        return DELAY_EXHAUSTED;
    if (not_before_ms)
        *not_before_ms = now_ms + delay_schedule_ms(pol, deliveries);
    return DELAY_RETRY;
}

char *delay_last_error(const struct api_error *e, char *buf, size_t bufsz)
{
    char cls[24], text[DELAY_LAST_ERROR_MAX + 64];

    if (e->cls == API_THROTTLED || e->http_status == 429)
        snprintf(cls, sizeof cls, "RATE_LIMITED");
    else if (e->http_status == 423)
        snprintf(cls, sizeof cls, "LOCKED");
    else if (e->http_status >= 100 && e->http_status <= 599)
        snprintf(cls, sizeof cls, "HTTP_%d", e->http_status);
    else if (strstr(e->message, "timed out") || strstr(e->message, "timeout"))
        snprintf(cls, sizeof cls, "TIMEOUT");
    else
        snprintf(cls, sizeof cls, "NETWORK");
    snprintf(text, sizeof text, "%s: %s", cls, e->message[0] ? e->message : "no detail");
    return result_one_line(text, buf,
                           bufsz < DELAY_LAST_ERROR_MAX + 1 ? bufsz : DELAY_LAST_ERROR_MAX + 1);
}

/* Last value of name as digits without sign or leading zeros; 0 or -1. */
static int hdr_u64(const rd_kafka_headers_t *h, const char *name, int64_t *out)
{
    const void *v = NULL;
    const char *s;
    size_t n = 0, i;
    int64_t x = 0;

    if (!h || rd_kafka_header_get_last(h, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR || !v ||
        n == 0 || n > 19)
        return -1;
    s = v;
    if (s[0] == '0' && n > 1)
        return -1;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || x > (INT64_MAX - (s[i] - '0')) / 10)
            return -1; /* not a digit, or past INT64_MAX (19 digits can be) */
        x = x * 10 + (s[i] - '0');
    }
    *out = x;
    return 0;
}

int delay_not_before(const rd_kafka_headers_t *hdrs, int64_t *ms)
{
    return hdr_u64(hdrs, "hsqb-not-before", ms);
}

int delay_is_retry_topic(const struct delay_policy *pol, const char *topic)
{
    return topic && pol->retry_topic[0] && strcmp(topic, pol->retry_topic) == 0;
}

int64_t delay_hold_ms(const struct delay_policy *pol, const char *topic,
                      const rd_kafka_headers_t *hdrs, int64_t now_ms)
{
    int64_t nb;

    if (!delay_is_retry_topic(pol, topic) || delay_not_before(hdrs, &nb) < 0 || nb <= now_ms)
        return 0;
    return nb - now_ms < pol->hold_max_ms ? nb - now_ms : pol->hold_max_ms;
}

/* ---- header sets ------------------------------------------------------------------- */

int delay_headers_copy(const rd_kafka_headers_t *hdrs, struct kafka_header_set *out, char *errstr,
                       size_t errsz)
{
    struct kafka_header_ref p[KAFKA_HEADER_SET_MAX];

    return kafka_header_set_build(p, kafka_headers_gather(hdrs, NULL, 0, p, KAFKA_HEADER_SET_MAX),
                                  out, errstr, errsz);
}

/* Eight parameters: two header vectors with their counts, the output and the error. */
int delay_headers_forward(const rd_kafka_headers_t *hdrs, const char *const *skip, size_t nskip,
                          const struct kafka_header *add, size_t nadd, struct kafka_header_set *out,
                          char *errstr, size_t errsz)
{
    struct kafka_header_ref p[KAFKA_HEADER_SET_MAX];
    const char *names[KAFKA_HEADER_SET_MAX * 2];
    size_t np, i, n = 0;

    if (nadd > KAFKA_HEADER_SET_MAX || nskip > KAFKA_HEADER_SET_MAX)
        return fail(errstr, errsz, "too many headers");
    for (i = 0; i < nskip; i++)
        names[n++] = skip[i];
    for (i = 0; i < nadd; i++)
        names[n++] = add[i].name;
    np = kafka_headers_gather(hdrs, names, n, p, KAFKA_HEADER_SET_MAX - nadd);
    for (i = 0; i < nadd; i++)
        p[np++] = (struct kafka_header_ref){add[i].name, add[i].value, strlen(add[i].value)};
    return kafka_header_set_build(p, np, out, errstr, errsz);
}

int delay_retry_headers_build(const struct inbound_msg *m, const struct delay_retry_info *info,
                              struct kafka_header_set *out, char *errstr, size_t errsz)
{
    struct kafka_header_ref p[KAFKA_HEADER_SET_MAX];
    struct result_inbound_meta meta;
    struct result_original o;
    char attempts[16], nb[24], first[24];
    char last[DELAY_LAST_ERROR_MAX + 1];
    size_t np;

    result_inbound_meta_read(m->headers, &meta);
    np = kafka_headers_gather(m->headers, retry_names, NRETRY, p, KAFKA_HEADER_SET_MAX - NRETRY);
    result_original_fill(&meta, m->topic, m->partition, m->offset, m->timestamp_ms, &o);
    snprintf(attempts, sizeof attempts, "%d", info->deliveries < 1 ? 1 : info->deliveries);
    snprintf(nb, sizeof nb, "%" PRId64, info->not_before_ms < 0 ? 0 : info->not_before_ms);
    snprintf(first, sizeof first, "%" PRId64,
             info->first_failure_ms > 0  ? info->first_failure_ms
             : meta.first_failure_ms > 0 ? meta.first_failure_ms
                                         : info->now_ms);
    result_one_line(info->last_error ? info->last_error : "UNKNOWN", last, sizeof last);
    if (!last[0])
        snprintf(last, sizeof last, "UNKNOWN");
#define ADD(n, v) (p[np++] = (struct kafka_header_ref){(n), (v), strlen(v)})
    ADD("hsqb-attempts", attempts);
    ADD("hsqb-not-before", nb);
    ADD("hsqb-last-error", last);
    ADD("hsqb-first-failure", first);
    ADD("hsqb-original-topic", o.topic);
    ADD("hsqb-original-partition", o.partition);
    ADD("hsqb-original-offset", o.offset);
    ADD("hsqb-original-timestamp", o.timestamp);
#undef ADD
    return kafka_header_set_build(p, np, out, errstr, errsz);
}

static int publish(const struct delay_policy *pol, struct producer *pr, const struct inbound_msg *m,
                   const struct kafka_header_set *h, int64_t timeout_ms, char *errstr, size_t errsz)
{
    /* the original key and value bytes, never re-serialised (headers.md) */
    struct producer_msg pm = {
        pol->retry_topic, m->key, m->key ? m->key_len : 0, m->value, m->value_len, h->h, h->n};

    return producer_send_sync(pr, &pm, timeout_ms, errstr, errsz);
}

int delay_send_retry(const struct delay_policy *pol, struct producer *pr,
                     const struct inbound_msg *m, const struct delay_retry_info *info,
                     int64_t timeout_ms, char *errstr, size_t errsz)
{
    struct kafka_header_set h;
    int rc;

    if (delay_retry_headers_build(m, info, &h, errstr, errsz) < 0)
        return -1;
    rc = publish(pol, pr, m, &h, timeout_ms, errstr, errsz);
    kafka_header_set_release(&h);
    return rc;
}

int delay_send_requeue(const struct delay_policy *pol, struct producer *pr,
                       const struct inbound_msg *m, int64_t timeout_ms, char *errstr, size_t errsz)
{
    struct kafka_header_set h;
    int rc;

    if (delay_headers_copy(m->headers, &h, errstr, errsz) < 0)
        return -1;
    rc = publish(pol, pr, m, &h, timeout_ms, errstr, errsz);
    kafka_header_set_release(&h);
    return rc;
}

/* ---- held copies ------------------------------------------------------------------- */

struct delay_msg *delay_msg_new(const struct inbound_msg *m)
{
    size_t tl = m->topic ? strlen(m->topic) : 0, kl = m->key ? m->key_len : 0;
    size_t vl = m->value ? m->value_len : 0;
    struct delay_msg *d = malloc(sizeof *d + tl + 1 + kl + 1 + vl + 1);
    char *w;

    if (!d)
        return NULL;
    memset(d, 0, sizeof *d);
    d->msg = *m;
    w = (char *)(d + 1);
    memcpy(w, m->topic ? m->topic : "", tl + 1);
    d->msg.topic = w;
    w += tl + 1;
    if (m->key) {
        memcpy(w, m->key, kl);
        w[kl] = '\0';
        d->msg.key = w;
    }
    w += kl + 1;
    if (m->value) {
        memcpy(w, m->value, vl);
        w[vl] = '\0';
        d->msg.value = w;
    }
    if (m->headers) {
        if (!(d->hdrs = rd_kafka_headers_copy(m->headers))) {
            free(d);
            return NULL;
        }
    }
    d->msg.headers = d->hdrs;
    /* the copy, the headers (about their bytes again) and the scheduler's job */
    d->bytes = sizeof *d + tl + kl + vl + 3 + 256;
    if (m->headers) {
        const char *name;
        const void *val;
        size_t idx, vlen;

        for (idx = 0; rd_kafka_header_get_all(m->headers, idx, &name, &val, &vlen) ==
                      RD_KAFKA_RESP_ERR_NO_ERROR;
             idx++)
            d->bytes += strlen(name) + vlen + 32;
    }
    return d;
}

void delay_msg_free(void *dm)
{
    struct delay_msg *d = dm;

    if (!d)
        return;
    if (d->hdrs)
        rd_kafka_headers_destroy(d->hdrs);
    free(d);
}
