/* outcome.h - how one delivery of an event leaves the worker: the result, the dead
 * letter, the done marker, a re-publish, the log line and the metrics of each outcome.
 * Used by pipeline.c and retry.c; works from the delivery (worker/delivery.h) alone.
 *
 * Every function returns PIPELINE_DONE (the outcome left the process: store the offset),
 * PIPELINE_RETRY_LATER with dl->delay_ms set (Kafka or Redis was down: the next run finds
 * the claim free, or the outcome recorded and re-publishes it) or, for a result that
 * cannot be built at all, PIPELINE_STOP. Nothing in the delivery is left pointing into
 * these functions' frames.
 *
 * Thread-safety: called on the delivery's worker thread.
 */
#ifndef HSQB_OUTCOME_H
#define HSQB_OUTCOME_H

#include <stdint.h>

#include "worker/claim.h"
#include "worker/delivery.h"

/* An event that did not decode (st, why from event_decode; dl->msg->value may be NULL):
 * an INVALID_EVENT or, when its subject can be named, UNSUPPORTED_OBJECT_TYPE failure,
 * published as a dead letter then a result. No claim is involved. */
enum pipeline_disposition outcome_invalid(struct delivery *dl, enum event_status st,
                                          const char *why);

/* Publish the stored outcome st (from the done marker) of an event already processed,
 * as a duplicate. No dead letter is sent again. */
enum pipeline_disposition outcome_republish(struct delivery *dl, const struct claim_stored *st);

/* Record and publish the final outcome of a claimed event: dl->info.qbo for a success or
 * dl->info.error for a failure (dl->info.error may point into the caller's frame). */
enum pipeline_disposition outcome_finish(struct delivery *dl);

/* The one JSON log line of an outcome (outcome: a METRICS_OUTCOME_* value; code, qbo_id
 * and message may be NULL). */
void outcome_log(const struct delivery *dl, const char *outcome, const char *code,
                 const char *qbo_id, int64_t duration_ms, const char *message);

#endif
