/* callbacks.h - the callback completer: HubSpot workflow executions completed in batches,
 * from the results topic (issue 17 item 2).
 *
 * Owns: one thread with its own Kafka consumer (group callbacks.group, default
 * <kafka.group.id>-callbacks) on kafka.topic.results, its own HTTP handle and Redis
 * connection. It reads each result; one whose data.complete_callback is true becomes a
 * completion of execution data.input_id in portal data.portal_id:
 *   succeeded -> hs_execution_state SUCCESS, output fields qbo_document_id,
 *                qbo_doc_number, qbo_total (decimal, e.g. "1250.00"), qbo_document_url
 *                (qbo.app_url + the entity's page), status "succeeded";
 *   failed    -> FAIL_CONTINUE, error_code, error_message, status "failed".
 * Completions are grouped per portal and sent through
 * POST /automation/v4/actions/callbacks/complete (callbacks.batch_size per call, sent when
 * a portal's batch is full or its oldest completion waited callbacks.linger), one
 * admission of the portal's shared HubSpot rate limit per call. A transient failure (5xx,
 * 429, transport) is retried with capped backoff (callbacks.retry_cap) until it succeeds;
 * a batch HubSpot refuses (4xx) is split into single completions so one expired or
 * already-completed callback cannot sink the others; a single refusal is permanent:
 * logged, counted (hsqb_callback_completions_total{outcome="refused"}), and the result on
 * the topic stands. Offsets are stored only for results whose completion was accepted or
 * refused for good, so a crash re-reads (at least once; HubSpot refuses a second
 * completion, counted as refused).
 *
 * Thread-safety: callbacks_start()/callbacks_stop() from the main thread only.
 */
#ifndef HSQB_CALLBACKS_H
#define HSQB_CALLBACKS_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

struct callbacks;
struct hubspot_api;
struct metrics;

/* Starts the completer when callbacks.complete is not "off" (returns NULL with errstr ""
 * when it is off). hubspot and metrics are borrowed and must outlive callbacks_stop()
 * (hubspot_api is thread-safe; its rate limiter is shared with the pipeline). NULL with
 * errstr filled on failure. */
struct callbacks *callbacks_start(const struct config *cfg, struct hubspot_api *hubspot,
                                  struct metrics *metrics, char *errstr, size_t errsz);

/* Sends what is pending (within drain_ms, retrying transient failures until then), stores
 * the offsets of what was sent, closes the consumer and joins the thread. NULL-safe. */
void callbacks_stop(struct callbacks *cb, int64_t drain_ms);

#endif
