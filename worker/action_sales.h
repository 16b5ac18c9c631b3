/* action_sales.h - the sales family: create_invoice, create_estimate and
 * create_sales_receipt from a HubSpot DEAL or QUOTE (issue 4), plus the helpers every
 * family shares (settings, line mapping, create-once).
 *
 * Owns: the mapping from HubSpot records to QBO document bodies, and the order of the
 * steps, chosen so that every permanent failure that can be known before a QBO write is
 * found before the first one:
 *   HubSpot object (404 -> OBJECT_NOT_FOUND) -> contact id (none -> NO_CONTACT) ->
 *   line items (none -> NO_LINE_ITEMS) -> contact -> money of every line (exact) ->
 *   company US check (QBO_COMPANY_NOT_US) -> term (TERM_NOT_FOUND) / deposit account
 *   (ACCOUNT_NOT_FOUND) -> item lookup (PRODUCT_NOT_FOUND when creation is off; income
 *   account when on) -> [first write] customer -> missing items -> document.
 *
 * Money: each SalesItemLine's Amount is the line item's HubSpot `amount` (net of
 * discounts) in exact cents; Qty and UnitPrice satisfy Amount == Qty x UnitPrice
 * (money_unit_price_for with 7 decimals), else Qty 1 and UnitPrice = Amount with the
 * original quantity and unit price written into the Description. A line without
 * `amount` is quantity x price (rounded with money.rounding) when it has no discount;
 * with a discount and no amount the event fails rather than guess. The document total
 * reported is the sum of the line amounts.
 *
 * Exactly once: the document's requestid is hash_request_id(event id, "doc"); its
 * PrivateNote ends with " hsqb event <event id>"; a Redis marker
 * <prefix>evt:{<event id>}:sent:<step> is set (NX) before the first create is sent, and
 * when it already exists (a retry, a crash, a taken-over claim) the document is first
 * looked up (same customer, same TxnDate, PrivateNote suffix) and reused when found.
 *
 * Thread-safety: pure functions and a constant ops table.
 */
#ifndef HSQB_ACTION_SALES_H
#define HSQB_ACTION_SALES_H

#include <stddef.h>
#include <stdint.h>

#include "common/json.h"
#include "worker/action.h"
#include "worker/qbo.h"

extern const struct action_ops action_sales_ops;

/* One document line computed from a HubSpot line item. */
struct sales_line {
    int64_t amount_cents; /* QBO Amount */
    int64_t qty7;         /* QBO Qty, units of 10^-7 */
    int64_t price7;       /* QBO UnitPrice, units of 10^-7; qty7 x price7 == amount */
    int qty_folded;       /* 1 when Qty 1 / UnitPrice = Amount replaced the real pair */
};

/* Map one line item's money to a line (pure). 0, or -1 with errstr naming the line item
 * and the fault (bad decimal, negative amount, discount without amount). */
int sales_line_money(const struct hubspot_line_item *li, enum money_round rounding,
                     struct sales_line *out, char *errstr, size_t errsz);

/* The inputs of one document body, all borrowed. */
struct sales_doc {
    enum hsqb_action action;
    const char *customer_id;
    const char *txn_date;           /* YYYY-MM-DD */
    const char *term_id;            /* invoice; NULL = QBO default */
    const char *deposit_account_id; /* sales receipt; NULL = QBO default */
    const char *bill_email;         /* NULL = none */
    const char *private_note;
    const struct hubspot_line_item *li;
    const struct sales_line *lines;
    const char *const *item_ids; /* n entries */
    size_t n;
};

/* The QBO document body for d (pure), written as one JSON object into out: a jbuf the
 * caller initialised (size it with QBO_BODY_MAX) and has not written to; the caller
 * sends jbuf_cstr(out), out->len and releases it. Members, in this order:
 * CustomerRef, TxnDate, SalesTermRef (invoice with term_id), DepositToAccountRef (sales
 * receipt with deposit_account_id), BillEmail (bill_email, not on a sales receipt),
 * PrivateNote, Line. 0, or -1 when out latched an error (out of memory, its cap). */
int sales_doc_body(const struct sales_doc *d, struct jbuf *out);

/* sales_doc_body()'s members, without the braces, into the object open in out: for a
 * family that appends members of its own (action_payment.c). Errors latch in out. */
void sales_doc_members(const struct sales_doc *d, struct jbuf *out);

/* Members every family's bodies write into the object open in jb (errors latch in jb):
 * "<key>":{"value":"<id>"}, and "<key>":<cents as the exact decimal money_format()
 * gives, a JSON number with two decimals: 1234.50>. */
void action_json_ref(struct jbuf *jb, const char *key, const char *id);
void action_json_money(struct jbuf *jb, const char *key, int64_t cents);

/* The PrivateNote of the document of event ev: "HubSpot <type> <id> hsqb event <id>",
 * into out (at most outsz - 1 bytes; EVENT_ID_MAX + 64 is enough). The suffix
 * " hsqb event <id>" is what action_create_once() matches. */
void sales_private_note(const struct action_event *ev, char *out, size_t outsz);

/* The event's TxnDate: the UTC date of the event time, else of now_ms. */
void sales_txn_date(const struct action_event *ev, int64_t now_ms, char out[11]);

/* The resolve context of ctx's run (everything borrowed from ctx). */
void action_resolve_ctx(const struct action_ctx *ctx, struct resolve_ctx *rc);

/* The US-company rule every family checks before its first write: 0, or -1 with *err
 * (QBO_COMPANY_NOT_US, or the company lookup's error). */
int action_check_us_company(const struct action_ctx *ctx, struct api_error *err);

/* Fill out's document fields from doc (borrowed), the entity created for action a:
 * entity, Id (required: else -1, API_TRANSIENT), DocNumber, currency (USD when "") and
 * the created_items of the n items (may be NULL) whose .created is set (malloc'd into
 * out). The caller sets the total and customer fields. 0, or -1 with *err. */
int action_outcome_fill(struct action_outcome *out, enum hsqb_action a,
                        const struct qbo_created *doc, const struct resolve_item *items, size_t n,
                        struct api_error *err);

/* Create an entity once per (event, step) (see the top of this file): set the step's
 * marker; when it was already set, look up "SELECT * FROM <entity> WHERE <where>" (at
 * most lookup_max rows) for the row whose PrivateNote ends " hsqb event <event id>" and
 * reuse it; else create with requestid hash_request_id(event id, step). entity is the
 * QBO entity name ("Invoice", "Purchase"), body the entity to create as JSON text of
 * body_len bytes (borrowed, sent as is: a body builder's jbuf); where may be NULL (no
 * lookup possible: create). Fails API_TRANSIENT without creating when ctx->claim_lost
 * is set. *out (not NULL) receives the Id, DocNumber and currency of the created or
 * found entity (qbo.h's struct qbo_created rules: one without a usable Id is an error).
 * 0, or -1 with *err (*out untouched). */
int action_create_once_where(const struct action_ctx *ctx, const char *step, const char *entity,
                             const char *body, size_t body_len, const char *where,
                             size_t lookup_max, struct qbo_created *out, struct api_error *err);

/* action_create_once_where() for a document of customer_id on txn_date (the narrow
 * lookup every sales document and Payment allows). */
int action_create_once(const struct action_ctx *ctx, const char *step, const char *entity,
                       const char *body, size_t body_len, const char *customer_id,
                       const char *txn_date, struct qbo_created *out, struct api_error *err);

#endif
