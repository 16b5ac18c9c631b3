/* action.h - the action layer: what one action family does for one decoded event, behind
 * a small vtable the pipeline dispatches on (one module per family: action_sales.c for
 * invoice / estimate / sales receipt from deals and quotes; the payment family of a later
 * issue adds its own ops table).
 *
 * Owns: the interface only. An action run reads HubSpot, resolves QBO references and
 * creates the QBO document(s); it neither claims, retries, publishes nor logs outcomes
 * (the pipeline does). Every QBO write it makes must be idempotent for the event: a
 * deterministic requestid per (event id, step) and, for documents, the lookup of design
 * §4 step 8, so the pipeline may simply run the action again after any failure, in this
 * process or (after a crash) in another.
 *
 * Thread-safety: ops tables are constant; an action_ctx and its outcome belong to the
 * worker thread running the event.
 */
#ifndef HSQB_ACTION_H
#define HSQB_ACTION_H

#include <stddef.h>
#include <stdint.h>

#include "common/money.h"
#include "worker/apierr.h"
#include "worker/event.h"
#include "worker/hubspot.h"
#include "worker/ioctx.h"
#include "worker/qbo.h"
#include "worker/resolve.h"

#define ACTION_NAME_MAX 201 /* account names from the config, NUL included */

/* Process-wide action settings, immutable after start. */
struct action_settings {
    struct resolve_opts resolve;
    enum money_round rounding;             /* money.rounding */
    char deposit_account[ACTION_NAME_MAX]; /* sales_receipt.deposit_account; "" */
    int64_t dedup_window_ms;               /* TTL of the "create sent" markers */
    /* payments.default_item: the item of a payment without line items; never "" */
    char payment_default_item[RESOLVE_ITEM_NAME_MAX + 1];
};

/* Defaults (half_up, no deposit account, 7 days, "Services") + the configuration keys
 * above. 0, or -1 with errstr. */
int action_settings_from_config(struct action_settings *s, const struct config *cfg, char *errstr,
                                size_t errsz);

/* Everything an action run needs; all borrowed for the run. */
struct action_ctx {
    /* The worker thread's I/O for this event: its http_client and redis_conn, the
     * deadline bounding rate-limit waits (0 = the clients' default), and the claim-lost
     * flag the pipeline's lease keeper sets (then the run stops before its next QBO
     * write and fails API_TRANSIENT). Passed to every client call as &ctx->io. */
    struct ioctx io;
    const struct action_event *ev;
    const struct action_settings *settings;
    struct hubspot_api *hubspot;
    struct qbo_api *qbo;
    int64_t now_ms; /* wall clock at the start of the run (TxnDate fallback) */
};

struct action_created_item {
    char id[RESOLVE_ID_MAX];
    char name[RESOLVE_ITEM_NAME_MAX + 1];
};

/* What a run produced. On success the document; on failure, details for the result. */
struct action_outcome {
    char entity[24]; /* "Invoice", ... */
    char id[RESOLVE_ID_MAX];
    char doc_number[32]; /* "" -> null */
    int64_t total_cents;
    char currency[4];
    char customer_id[RESOLVE_ID_MAX]; /* "" -> null */
    int created_customer;
    struct action_created_item *created_items; /* malloc'd, ncreated entries */
    size_t ncreated;
    char payment_id[RESOLVE_ID_MAX]; /* "" -> null */
    char *details_json;              /* failure details (malloc'd) or NULL */
};

/* Free what the outcome owns and zero it; NULL-safe, idempotent. */
void action_outcome_release(struct action_outcome *o);

struct action_ops {
    const char *family; /* "sales", "payment": for logs */
    /* 1 when this family runs action a on an enrolled object of type t. */
    int (*handles)(enum hsqb_action a, enum hsqb_object_type t);
    /* Run the action for ctx->ev: 0 with *out filled, or -1 with *err (and maybe
     * out->details_json). *out starts zeroed; the caller releases it either way. */
    int (*run)(const struct action_ctx *ctx, struct action_outcome *out, struct api_error *err);
};

#endif
