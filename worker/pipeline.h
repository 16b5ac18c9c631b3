/* pipeline.h - one action event from Kafka message to published outcome.
 *
 * Owns: the process-wide struct pipeline (settings copied from the config, borrowed
 * clients, the action families' dispatch table, the tenant circuits and the lease keeper
 * of worker/keeper.h), and per worker thread a struct pipeline_thread (its http_client
 * and redis_conn, lent to each delivery as its struct ioctx).
 *
 * pipeline_handle() does everything for one message; the step behind each line is named
 * (pipeline.c, retry.c, outcome.c, claim.c):
 *   retry record not due yet (retry_early) --> nearly due: RETRY_LATER; else re-queued
 *      |                to the retry topic                                   -> DONE
 *   decode --invalid--> INVALID_EVENT / UNSUPPORTED_OBJECT_TYPE result + DLQ (raw bytes
 *      |                kept), no claim (no side effects to protect)       -> DONE
 *   claim (claim_take) --done--> re-publish the stored result, no API call  -> DONE
 *      |   --busy-----> another owner is working on it                       -> RETRY_LATER
 *      |   --error----> Redis unavailable: never proceed without the claim    -> RETRY_LATER
 *   tenant check (admit, worker/tenancy.h) --refused--> PORTAL_NOT_CONNECTED or
 *      |                REALM_NOT_ALLOWED failure (outcome_finish below), no API call
 *      |   --error----> Redis unavailable: claim released                     -> RETRY_LATER
 *   tenant circuit open (retry_defer_if_open) --> retry topic, no API call, claim released
 *      |                                                                     -> DONE
 *   run the action (retry_run, action.h), retrying transient / throttled failures
 *      in-process with full-jitter backoff honouring Retry-After within retry.attempts /
 *      retry.budget
 *      |   success ---> succeeded result
 *      |   permanent -> failed result + DLQ
 *      |   budget spent (or the tenant's circuit opened meanwhile) -> the retry topic
 *      |                with hsqb-attempts / -not-before / -last-error, claim released
 *      |                (not done), offset stored once the record is acknowledged -> DONE;
 *      |                past retry.max_attempts deliveries or retry.max_age -> failed
 *      |                RETRIES_EXHAUSTED result + DLQ
 *      |   claim lost -> RETRY_LATER (the new owner finishes it)
 *   outcome_finish: store done + result in Redis (first, so a crash after it
 *      re-publishes instead of re-running), then publish (DLQ record first for
 *      failures); the result carries data.complete_callback when callbacks.complete
 *      says the execution must be completed (worker/callbacks.h does that)   -> DONE
 *      Kafka or Redis down at this point -> claim released -> RETRY_LATER
 * Failures are stored as done too (every event has exactly one recorded outcome); a
 * REPLAYED message (header hsqb-replay-of) whose stored outcome is a failure is run
 * again: that is what replaying a dead letter is for. A redelivered success or a
 * redelivered failure without the replay header is re-published only.
 *
 * One JSON log line per outcome (event id, key, partition, offset, action, outcome,
 * code, attempts, duration_ms) and metrics (events by action/outcome, results, DLQ,
 * retries, in-flight).
 *
 * Thread-safety: struct pipeline is shared by all worker threads (immutable after
 * pipeline_new; the keeper, breaker and mapping cache lock themselves); struct
 * pipeline_thread belongs to one worker thread.
 */
#ifndef HSQB_PIPELINE_H
#define HSQB_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "worker/hubspot.h"
#include "worker/metrics.h"
#include "worker/producer.h"
#include "worker/qbo.h"
#include "worker/scheduler.h"

/* What happens next, the one vocabulary of the pipeline's steps (worker/delivery.h). */
enum pipeline_disposition {
    PIPELINE_DONE = 0,    /* outcome published (or a duplicate re-published): store offset */
    PIPELINE_RETRY_LATER, /* run the same message again after *retry_delay_ms */
    PIPELINE_STOP,        /* unrecoverable: shut down without storing the offset */
    PIPELINE_NEXT,        /* a step finished: go on with the next (never returned by
                           * pipeline_handle) */
    PIPELINE_PENDING,     /* the result is on its way (only when msg->sched is set): the
                           * scheduler hears how it ended from scheduler_complete() */
};

/* The clients the pipeline borrows; all must outlive it. metrics may be NULL. */
struct pipeline_deps {
    struct hubspot_api *hubspot;
    struct qbo_api *qbo;
    struct producer *producer;
    struct metrics *metrics;
};

struct pipeline;
struct pipeline_thread;

/* Reads (at start-up only) kafka.group.id, kafka.topic.results, kafka.topic.dlq,
 * kafka.topic.retry, retry.schedule/max_attempts/max_age/hold_max, breaker.*,
 * redis.*, claim.lease, dedup.window, retry.attempts/base/cap/budget, http.*,
 * money.rounding, items.income_account, sales_receipt.deposit_account, event.max_bytes,
 * callbacks.complete, tenancy.*.
 * Starts the lease keeper (which connects to Redis: a bad address fails here).
 * Returns NULL with errstr. Caller frees with pipeline_free() after every thread's
 * context is freed. */
struct pipeline *pipeline_new(const struct config *cfg, const struct pipeline_deps *deps,
                              char *errstr, size_t errsz);
/* Stops the lease keeper. NULL-safe. */
void pipeline_free(struct pipeline *p);

/* A worker thread's context: a new http_client and redis_conn (connects to Redis).
 * Returns NULL with errstr. Free with pipeline_thread_free() on the same thread. */
struct pipeline_thread *pipeline_thread_new(struct pipeline *p, char *errstr, size_t errsz);
void pipeline_thread_free(struct pipeline_thread *t);

/* Process one message (see the top of this file). *retry_delay_ms is set for
 * PIPELINE_RETRY_LATER. msg and everything it points to are borrowed. */
enum pipeline_disposition pipeline_handle(struct pipeline *p, struct pipeline_thread *t,
                                          const struct inbound_msg *msg, int64_t *retry_delay_ms);

/* Adapters with the scheduler's / consumer's callback shapes (opaque = the pipeline):
 *   .handler = pipeline_sched_handler, .opaque = p,
 *   .thread_new = pipeline_sched_thread_new, .thread_free = pipeline_sched_thread_free */
enum handler_disposition pipeline_sched_handler(void *opaque, void *thread_ctx,
                                                const struct inbound_msg *msg,
                                                int64_t *retry_delay_ms);
int pipeline_sched_thread_new(void *opaque, unsigned index, void **ctx, char *errstr, size_t errsz);
void pipeline_sched_thread_free(void *opaque, void *ctx);

#endif
