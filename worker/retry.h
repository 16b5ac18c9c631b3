/* retry.h - everything about an event that must come back later, from the pipeline's
 * side: the in-process retries of a run, the tenant circuits that stop a run before it
 * starts, and the hops to the retry topic. (The retry topic's records and schedule are
 * worker/delay.h's; holding an early record without a worker thread is the consumer's.)
 *
 * The story, in the order a delivery meets it (pipeline.c calls these in turn):
 *   retry_early          a retry record consumed before its not-before time: nearly due
 *                        -> RETRY_LATER in the scheduler; else re-queued -> DONE
 *   retry_defer_if_open  the realm's or the portal's circuit is open: no API call, the
 *                        retry topic at once (claim released) -> DONE
 *   retry_run            run the action, retrying transient and throttled failures with
 *                        full-jitter backoff honouring Retry-After within retry.attempts
 *                        and retry.budget; a failure that outlives them (or whose tenant
 *                        circuit opens meanwhile) goes to the retry topic -> DONE, unless
 *                        retry.max_attempts deliveries or retry.max_age are reached: then
 *                        it ends as a RETRIES_EXHAUSTED failure -> NEXT (the outcome);
 *                        a lost claim -> RETRY_LATER (the new owner finishes it)
 * Every function returns PIPELINE_NEXT (go on) or how the delivery ends.
 *
 * Thread-safety: called on the delivery's worker thread; the breaker is thread-safe.
 */
#ifndef HSQB_RETRY_H
#define HSQB_RETRY_H

#include "common/backoff.h"
#include "worker/action.h"
#include "worker/delivery.h"

/* What a run of the action produced: a success (ok, out) or a failure (err, and maybe
 * out.details_json); exhausted when that failure is the end of its retries. */
struct run {
    struct action_outcome out;
    struct api_error err;
    int ok;
    int exhausted;
    int runs; /* attempts made in this delivery */
};

/* The action layer a run needs (borrowed from the pipeline for the run). */
struct run_env {
    const struct action_ops *ops;
    const struct action_settings *settings;
    /* the company's defaults from its settings page (worker/company.h); never NULL */
    const struct company_defaults *company;
    struct hubspot_api *hubspot;
    struct qbo_api *qbo;
    const struct backoff_policy *policy; /* retry.attempts / base / cap / budget */
};

enum pipeline_disposition retry_early(struct delivery *dl);
enum pipeline_disposition retry_defer_if_open(struct delivery *dl);
/* r starts zeroed; the caller releases r->out. */
enum pipeline_disposition retry_run(struct delivery *dl, const struct run_env *re, struct run *r);

#endif
