/* outcome.h - private to the pipeline (worker/pipeline.c): how one delivery of an event
 * leaves the worker. Never included by another module.
 *
 * Owns the outcome side of design §4-§5: building the result JSON (with an INTERNAL
 * fallback when the result contract is violated), the dead-letter record (the input's
 * original key and value bytes), the done marker that records a claimed event's outcome
 * in Redis, publishing to the results topic, re-publishing a stored result, handing an
 * event to the retry topic, completing the HubSpot callback, and the one JSON log line
 * and the metrics of each outcome. pipeline.c decides which outcome an event gets;
 * these functions carry it out and say what the scheduler should do with the message.
 *
 * Every function returns PIPELINE_DONE (the outcome left the process: store the offset),
 * PIPELINE_RETRY_LATER with *delay set (Kafka or Redis was down: the next run finds the
 * claim free, or the outcome recorded and re-publishes it) or, for a result that cannot
 * be built at all, PIPELINE_STOP. All pointers are borrowed for the call; delay must not
 * be NULL.
 *
 * Thread-safety: called on a worker thread with that thread's struct pipeline_thread;
 * the shared struct pipeline is only read (and its keeper's list changed under its lock).
 */
#ifndef HSQB_OUTCOME_H
#define HSQB_OUTCOME_H

#include <stddef.h>
#include <stdint.h>

#include "common/redis.h"
#include "worker/event.h"
#include "worker/pipeline_internal.h"
#include "worker/result.h"

/* Everything one outcome needs to leave the process. Filled by pipeline.c; the strings
 * are borrowed from the message, the decoded event or the caller's frame. */
struct finish {
    const struct inbound_msg *msg;
    const char *key; /* result key: the event key, or the raw input key */
    size_t keylen;
    const char *event_id;    /* NULL when unknown */
    const char *action;      /* for metrics / logs; "unknown" when undecodable */
    struct result_info info; /* result content */
    int64_t first_failure_ms;
};

/* An event that did not decode (st, why from event_decode; m->value may be NULL): an
 * INVALID_EVENT or, when its subject can be named, UNSUPPORTED_OBJECT_TYPE failure,
 * published as a dead letter then a result. No claim is involved. attempts and
 * first_failure_ms come from the inbound headers; start is mono_ms() at receipt. */
enum pipeline_disposition outcome_invalid(struct pipeline *p, struct pipeline_thread *t,
                                          const struct inbound_msg *m, enum event_status st,
                                          const char *why, int attempts, int64_t first_failure_ms,
                                          int64_t start, int64_t *delay);

/* Publish the stored result (stored, len: the done marker's payload, may be empty) of an
 * event already processed, as a duplicate. No dead letter is sent again. */
enum pipeline_disposition outcome_republish(struct pipeline *p, struct pipeline_thread *t,
                                            struct finish *f, const char *stored, size_t len,
                                            int64_t start, int64_t *delay);

/* Record and publish the final outcome of a claimed event: f->info.qbo for a success or
 * f->info.error for a failure. Takes k off the keeper once the lease needs no renewal;
 * the caller still frees k. f->info.error may point into the caller's frame; no pointer
 * into this function's frame is left in f. */
enum pipeline_disposition outcome_finish_claimed(struct pipeline *p, struct pipeline_thread *t,
                                                 struct finish *f, struct redis_lease *lease,
                                                 struct kept *k, int64_t start, int64_t *delay);

/* Send f's input to the retry topic as delivery `deliveries` with not-before nb (wall
 * ms), then release the claim (not done: the retried event must be able to claim again).
 * The caller has taken the event off the keeper, if it was on it. PIPELINE_DONE only once
 * the broker acknowledged the record. last_error goes into the record's headers; reason
 * ("transient", "breaker") into the metrics and the log line. */
enum pipeline_disposition outcome_send_retry(struct pipeline *p, struct pipeline_thread *t,
                                             struct finish *f, struct redis_lease *lease,
                                             int deliveries, int64_t nb, const char *last_error,
                                             const char *reason, int64_t start, int64_t *delay);

#endif
