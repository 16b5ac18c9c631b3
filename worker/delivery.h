/* delivery.h - one delivery of one Kafka message through the pipeline, and what every
 * delivery shares.
 *
 * Owns the two structs the pipeline's files (pipeline.c: the story of one delivery,
 * retry.c: coming back later, outcome.c: leaving the worker) pass between them:
 *   struct pipeline_env  the process-wide settings and clients a delivery's steps use;
 *                        filled by pipeline_new, immutable afterwards;
 *   struct delivery      one message in progress: the message and its headers' meaning,
 *                        the decoded event, the claim and its lease-keeper entry, what
 *                        the result will name, timings, and the retry delay. It lives on
 *                        the stack of handle_one (pipeline.c), which creates it, adds its
 *                        keeper entry once the claim is taken, and removes that entry in
 *                        its one exit path.
 *
 * Every step takes the delivery and returns an enum pipeline_disposition:
 * PIPELINE_NEXT (go on with the next step) or how the delivery ends (DONE, RETRY_LATER
 * with dl->delay_ms set by delivery_retry_later, STOP).
 *
 * Thread-safety: a delivery belongs to the worker thread handling it; the env is shared
 * and read-only (its breaker, producer and metrics are thread-safe themselves).
 */
#ifndef HSQB_DELIVERY_H
#define HSQB_DELIVERY_H

#include <stddef.h>
#include <stdint.h>

#include "common/redis.h"
#include "worker/breaker.h"
#include "worker/delay.h"
#include "worker/event.h"
#include "worker/hubspot.h"
#include "worker/ioctx.h"
#include "worker/keeper.h"
#include "worker/metrics.h"
#include "worker/pipeline.h"
#include "worker/producer.h"
#include "worker/result.h"

/* How long to wait before a message runs again after a dependency failed (each is the
 * base of a jittered base..2*base delay, so parked events do not return in lockstep). */
#define DELIVERY_BUSY_DELAY_MS       1000 /* claim held by another owner */
#define DELIVERY_REDIS_DOWN_DELAY_MS 2000
#define DELIVERY_KAFKA_DOWN_DELAY_MS 5000
#define DELIVERY_SEND_TIMEOUT_MS     30000 /* one Kafka delivery (result, DLQ or retry) */
#define DELIVERY_ERRSZ               512

struct pipeline_env {
    struct producer *producer;
    struct metrics *metrics;     /* may be NULL */
    const char *group;           /* kafka.group.id */
    const char *source;          /* the result's CloudEvent source */
    const char *topic_results, *topic_dlq;
    int64_t lease_ms, dedup_ms;
    enum result_callbacks callbacks; /* callbacks.complete: which results are marked */
    const struct delay_policy *delay;
    struct breaker *breaker;
};

struct delivery {
    const struct pipeline_env *env;
    struct ioctx io; /* the thread's HTTP client and Redis; claim_lost -> &kept.lost */
    uint64_t *rnd;   /* the thread's jitter state */
    const struct inbound_msg *msg;
    struct result_inbound_meta meta; /* what the inbound headers say */
    int64_t start_ms;                /* clock_mono_ms() at receipt */
    struct action_event ev;          /* decoded (all zero until then) */
    /* What the outcome names; borrowed from msg, ev or the caller's frame. */
    const char *key; /* result key: the event key, or the raw input key */
    size_t keylen;
    const char *event_id; /* NULL when unknown */
    const char *action;   /* for metrics and logs; "unknown" when undecodable */
    struct result_info info;
    int64_t first_failure_ms;
    struct redis_lease lease; /* the claim, once claimed */
    struct kept kept;         /* its lease-keeper entry */
    int64_t delay_ms;         /* for PIPELINE_RETRY_LATER */
};

/* End the delivery with PIPELINE_RETRY_LATER after a jittered base_ms..2*base_ms; count
 * it as a retried event in the metrics when count is set. */
enum pipeline_disposition delivery_retry_later(struct delivery *dl, int64_t base_ms, int count);

#endif
