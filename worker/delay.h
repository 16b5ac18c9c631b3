/* delay.h - the retry topic (schemas/headers.md): its schedule, the records
 * written to it, and holding a record consumed from it until its not-before time.
 *
 * Owns: struct delay_policy (settings copied at start-up; immutable afterwards, share it
 * freely between threads), the header sets it builds (struct kafka_header_set owns its
 * strings until released) and held message copies (struct delay_msg, one allocation
 * each plus a copy of the Kafka headers).
 *
 * Writing (pipeline, on worker threads):
 *   delay_route()        after a transient failure outlived the in-process budget:
 *                        RETRY with not-before = now + schedule[deliveries - 1] (the last
 *                        item repeats), or EXHAUSTED once deliveries >= retry.max_attempts
 *                        or the first failure is older than retry.max_age.
 *   delay_send_retry()   the original key and value, the input's own headers minus every
 *                        name it sets, then hsqb-attempts (deliveries so far),
 *                        hsqb-not-before, hsqb-last-error ("<CLASS>: <message>", one line,
 *                        <= 1024 bytes), hsqb-first-failure and hsqb-original-topic /
 *                        -partition / -offset / -timestamp (copied from the input when it
 *                        came through the retry topic already, else where it was
 *                        consumed). Blocks until the broker acknowledged it.
 *   delay_send_requeue() the same record again, byte for byte and header for header
 *                        (a record whose wait is longer than retry.hold_max, see below).
 *
 * Reading (consumer poll thread, then the scheduler):
 *   delay_hold_ms()      how long a record of the retry topic must wait before it may
 *                        run: min(not-before - now, retry.hold_max), 0 when due (or not a
 *                        retry record). The consumer copies such a record
 *                        (delay_msg_new(), so the fetch buffer it arrived in is freed at
 *                        once) and hands it to the scheduler's timer heap
 *                        (scheduler_submit_delayed()): it holds no worker thread and does
 *                        not count against worker.max_in_flight, so a full retry topic
 *                        never slows the main topic.
 *   Bounded memory: the scheduler pauses a retry partition holding
 *                        retry.max_held_per_partition records, and every partition that
 *                        holds records while the process holds retry.max_held records or
 *                        retry.max_held_bytes; they resume at half.
 *   Bounded commit lag: a record still early when its hold ends (its not-before was
 *                        further than retry.hold_max) is re-queued by the pipeline
 *                        (delay_send_requeue(), then its offset is stored), so no retry
 *                        partition's commit offset waits longer than about hold_max, at
 *                        the price of one Kafka write per hold_max of waiting.
 *
 * Thread-safety: every function is reentrant; a delay_msg belongs to whoever holds it.
 */
#ifndef HSQB_DELAY_H
#define HSQB_DELAY_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "common/config.h"
#include "worker/apierr.h"
#include "worker/producer.h"
#include "worker/scheduler.h"

#define DELAY_SCHEDULE_MAX   32   /* items of retry.schedule */
#define DELAY_LAST_ERROR_MAX 1024 /* bytes of hsqb-last-error */
#define DELAY_TOPIC_MAX      249  /* Kafka's limit on a topic name */
#define DELAY_EARLY_SLACK_MS                                                                       \
    1000 /* early by at most this: wait in the scheduler instead of                                \
          * re-queueing (clock steps, timer granularity) */

struct delay_policy {
    char retry_topic[DELAY_TOPIC_MAX + 1]; /* kafka.topic.retry */
    int64_t schedule_ms[DELAY_SCHEDULE_MAX];
    size_t nschedule;              /* >= 1 */
    int max_attempts;              /* retry.max_attempts (deliveries) */
    int64_t max_age_ms;            /* retry.max_age */
    int64_t hold_max_ms;           /* retry.hold_max */
    size_t max_held;               /* retry.max_held */
    size_t max_held_per_partition; /* retry.max_held_per_partition */
    size_t max_held_bytes;         /* retry.max_held_bytes */
};

/* Reads kafka.topic.retry, retry.schedule, retry.max_attempts, retry.max_age,
 * retry.hold_max, retry.max_held, retry.max_held_per_partition, retry.max_held_bytes.
 * Returns 0, or -1 with errstr (a schedule item that is not a duration). */
int delay_policy_from_config(struct delay_policy *pol, const struct config *cfg, char *errstr,
                             size_t errsz);

/* The wait before re-delivery number `deliveries` + 1, i.e. after `deliveries` (>= 1)
 * deliveries failed: schedule[deliveries - 1], the last item for any later one. */
int64_t delay_schedule_ms(const struct delay_policy *pol, int deliveries);

enum delay_route { DELAY_RETRY, DELAY_EXHAUSTED };

/* Decide the fate of an event whose delivery number `deliveries` (>= 1, this one
 * included) ended in a transient failure. first_failure_ms: epoch ms of its first
 * failure (0: this one). now_ms: wall clock. For DELAY_RETRY, *not_before_ms (may be
 * NULL) = now + delay_schedule_ms(deliveries). */
enum delay_route delay_route(const struct delay_policy *pol, int deliveries,
                             int64_t first_failure_ms, int64_t now_ms, int64_t *not_before_ms);

/* "<CLASS>: <message>" for hsqb-last-error from an upstream failure: CLASS is
 * RATE_LIMITED (throttled or 429), LOCKED (423), HTTP_<status> (any other status),
 * TIMEOUT or NETWORK (no response). Written into buf (one line, at most bufsz - 1 bytes,
 * redacted). Returns buf. */
char *delay_last_error(const struct api_error *e, char *buf, size_t bufsz);

/* The hsqb-not-before of a record (last occurrence), epoch ms. hdrs may be NULL.
 * Returns 0 and sets *ms, or -1 when absent or malformed (such a record is due). */
int delay_not_before(const rd_kafka_headers_t *hdrs, int64_t *ms);

/* 1 when topic is the retry topic (topic may be NULL). */
int delay_is_retry_topic(const struct delay_policy *pol, const char *topic);

/* For a record of `topic` with headers hdrs consumed at wall-clock now_ms: how long to
 * hold it before it may run, in ms: 0 unless it is a retry record whose not-before is in
 * the future; at most pol->hold_max_ms. */
int64_t delay_hold_ms(const struct delay_policy *pol, const char *topic,
                      const rd_kafka_headers_t *hdrs, int64_t now_ms);

/* ---- writing ------------------------------------------------------------------------ */

/* What a retry record says beyond the input it forwards. Strings borrowed. */
struct delay_retry_info {
    int deliveries;           /* hsqb-attempts: deliveries made so far, >= 1 */
    int64_t not_before_ms;    /* epoch ms */
    int64_t first_failure_ms; /* epoch ms; 0: the input's hsqb-first-failure, else now */
    int64_t now_ms;           /* wall clock */
    const char *last_error;   /* "<CLASS>: <message>"; sanitised to one line, cut to
                               * DELAY_LAST_ERROR_MAX bytes; NULL -> "UNKNOWN" */
};

/* Build the retry record's headers for input m (see the top of this file) into *out.
 * Returns 0, or -1 with errstr (out of memory). Release with kafka_header_set_release(). */
int delay_retry_headers_build(const struct inbound_msg *m, const struct delay_retry_info *info,
                              struct kafka_header_set *out, char *errstr, size_t errsz);
/* A copy of the headers of hdrs (may be NULL) in order, one per name: a repeated name
 * keeps its first place and its last value (the one every reader reads); headers with a
 * NUL byte in their value cannot travel as kafka_header and are dropped, a null value
 * travels as "". */
int delay_headers_copy(const rd_kafka_headers_t *hdrs, struct kafka_header_set *out, char *errstr,
                       size_t errsz);
/* Forwarded headers: those of hdrs (may be NULL) whose name is not in skip[0..nskip)
 * nor among add's names (the last occurrence of a repeated name), then add[0..nadd)
 * (values must not be NULL). At most KAFKA_HEADER_SET_MAX in all; input headers beyond the
 * room are dropped. For `replay`. 0, or -1 with errstr. */
int delay_headers_forward(const rd_kafka_headers_t *hdrs, const char *const *skip, size_t nskip,
                          const struct kafka_header *add, size_t nadd, struct kafka_header_set *out,
                          char *errstr, size_t errsz);

/* Publish the retry record of m to pol->retry_topic and wait for the broker (at most
 * timeout_ms). 0 when acknowledged, -1 with errstr. */
int delay_send_retry(const struct delay_policy *pol, struct producer *pr,
                     const struct inbound_msg *m, const struct delay_retry_info *info,
                     int64_t timeout_ms, char *errstr, size_t errsz);
/* Publish m unchanged (key, value, headers) to pol->retry_topic. 0 or -1 with errstr. */
int delay_send_requeue(const struct delay_policy *pol, struct producer *pr,
                       const struct inbound_msg *m, int64_t timeout_ms, char *errstr, size_t errsz);

/* ---- holding ------------------------------------------------------------------------ */

/* A self-contained copy of a consumed message: msg points into the copy (topic, key,
 * value) and at a copy of the headers. bytes is what it costs (for retry.max_held_bytes). */
struct delay_msg {
    struct inbound_msg msg;
    rd_kafka_headers_t *hdrs; /* NULL when the message had none */
    size_t bytes;
};

/* Copy m (everything it points to). Returns NULL on out-of-memory. Free with
 * delay_msg_free(), which has the scheduler's msg_release_fn shape. */
struct delay_msg *delay_msg_new(const struct inbound_msg *m);
void delay_msg_free(void *dm);

#endif
