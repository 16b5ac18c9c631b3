/* action.h - the action layer: what one action family does for one decoded event, behind
 * a small vtable the pipeline dispatches on (one module per family, each with its ops
 * table: action_sales.c for invoice / estimate / sales receipt from deals and quotes,
 * action_payment.c for sales receipt / paid invoice / expense / refund receipt from
 * commerce payments), and what every family shares (action.c).
 *
 * Owns: the interface, and the shared helpers below: settings, the outcome, the JSON
 * members every body writes, the US-company check, the item lookup of a document's
 * lines, create-once and the one 610 re-match loop. An action run reads HubSpot,
 * resolves QBO references and creates the QBO document(s); it neither claims, retries,
 * publishes nor logs outcomes (the pipeline does). Every QBO write it makes must be
 * idempotent for the event: a deterministic requestid per (event id, step) and, for
 * documents, a lookup of the document already created by an earlier attempt
 * (action_create_once()), so the pipeline may simply run the action again after any
 * failure, in this process or (after a crash) in another.
 *
 * Thread-safety: ops tables are constant; the helpers are pure or use only the
 * action_ctx's ioctx; an action_ctx and its outcome belong to the worker thread running
 * the event.
 */
#ifndef HSQB_ACTION_H
#define HSQB_ACTION_H

#include <stddef.h>
#include <stdint.h>

#include "common/json.h"
#include "common/money.h"
#include "common/tz.h"
#include "worker/apierr.h"
#include "worker/company.h"
#include "worker/event.h"
#include "worker/hubspot.h"
#include "worker/ioctx.h"
#include "worker/qbo.h"
#include "worker/resolve.h"

#define ACTION_NAME_MAX 201 /* account names from the config, NUL included */
#define ACTION_ZONES_MAX 32 /* entries of dates.time_zone_by_realm */

/* Process-wide action settings, immutable after start. */
struct action_settings {
    struct resolve_opts resolve;
    enum money_round rounding;             /* money.rounding */
    char deposit_account[ACTION_NAME_MAX]; /* sales_receipt.deposit_account; "" */
    int64_t dedup_window_ms;               /* TTL of the "create sent" markers */
    size_t max_line_items;                 /* budget.max_line_items */
    size_t max_qbo_writes;                 /* budget.max_qbo_writes */
    /* payments.default_item: the item of a payment without line items; never "" */
    char payment_default_item[RESOLVE_ITEM_NAME_MAX + 1];
    char fee_item[RESOLVE_ITEM_NAME_MAX + 1]; /* quotes.fee_item; never "" */
    char quote_statuses[201];                 /* quotes.allowed_statuses, "," joined */
    /* dates.time_zone_by_realm, parsed and loaded: a realm's documents are dated in zone */
    struct action_realm_zone {
        char realm[33];
        const struct tz_zone *zone;
    } zones[ACTION_ZONES_MAX];
    size_t nzones;
};

/* Defaults (half_up, no deposit account, 7 days, "Services", budgets 1000 lines and 200
 * writes) + the configuration keys above. 0, or -1 with errstr. */
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
    /* The realm's defaults from its settings page (worker/company.h), for this event's
     * portal; NULL or "" fields = none. They come after the event's own inputs and
     * before the settings. */
    const struct company_defaults *company;
    struct hubspot_api *hubspot;
    struct qbo_api *qbo;
    int64_t now_ms; /* wall clock at the start of the run (TxnDate fallback) */
    /* How many times the event was replayed (hsqb-replay-count; 0 otherwise): the
     * generation of every QBO requestid of the run (claim_request_id_gen()). */
    int replay_generation;
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

/* ---- shared by the families (action.c) ------------------------------------------- */

/* Members every family's bodies write into the object open in jb (errors latch in jb):
 * "<key>":{"value":"<id>"}; "<key>":<cents as the exact decimal money_format() gives, a
 * JSON number with two decimals: 1234.50>; and "<key>":<text>, text a money_*_format()
 * result whose status is st (not MONEY_OK latches an error), written verbatim. */
void action_json_ref(struct jbuf *jb, const char *key, const char *id);
void action_json_money(struct jbuf *jb, const char *key, int64_t cents);
void action_json_decimal(struct jbuf *jb, const char *key, enum money_err st, const char *text);

/* The resolve context of ctx's run (everything borrowed from ctx, rc->io = &ctx->io). */
void action_resolve_ctx(const struct action_ctx *ctx, struct resolve_ctx *rc);

/* The time zone the run's documents are dated in (TxnDate, DueDate, a payment's day): the
 * company's default (its settings page, ctx->company), else the realm's
 * dates.time_zone_by_realm entry, else the HubSpot portal's account time zone
 * (hubspot_account_time_zone(), cached), else UTC (*out NULL). QBO's TxnDate is a
 * calendar date of the company; HubSpot's zone is the seller's. A zone this machine does
 * not know, or a HubSpot refusal other than a transient one, dates in UTC with a warning
 * rather than fail the event. 0, or -1 with *err (transient HubSpot failures). */
int action_time_zone(const struct action_ctx *ctx, const struct hubspot_ctx *hc,
                     const struct tz_zone **out, struct api_error *err);

/* The US-company rule every family checks before its first write, keeping the company's
 * facts (Preferences included) in *co: 0, or -1 with *err (QBO_COMPANY_NOT_US, or the
 * company lookup's error). */
int action_company(const struct action_ctx *ctx, struct qbo_company *co, struct api_error *err);

/* The currency HubSpot gives a document: object_cur (the deal's deal_currency_code, the
 * quote's hs_currency, the payment's hs_currency_code), else the line items' common
 * hs_line_item_currency_code; upper-cased into out ("" when HubSpot names none). Three
 * ASCII letters; line items in another currency than the object (or than each other)
 * fail HUBSPOT_VALIDATION, naming them: one document has one currency. what/id name the
 * object in messages. 0, or -1 with *err. */
int action_hubspot_currency(const char *object_cur, const struct hubspot_line_item *li, size_t n,
                            const char *what, int64_t id, char out[4], struct api_error *err);

/* The document's currency in the company co: hubspot_cur ("" = the home currency) must
 * be the home currency unless multicurrency is on (else CURRENCY_NOT_SUPPORTED, before
 * any write). On 0: code = the currency, foreign = 1 when it is not the home currency
 * (the document then carries CurrencyRef), and, on a multicurrency company, rc's
 * customers are matched per currency (rc->currency/home_currency point into co and
 * code, which must outlive rc's use). */
struct action_currency {
    char code[4];
    int foreign;
    char rate[QBO_RATE_MAX]; /* foreign: QBO's rate for the date (action_exchange_rate) */
};
int action_currency_for(const struct qbo_company *co, const char *hubspot_cur,
                        struct action_currency *out, struct resolve_ctx *rc,
                        struct api_error *err);

/* One document line computed from a HubSpot line item (action_sales.h's
 * sales_line_money()); both families book lines. */
struct sales_line {
    int64_t amount_cents; /* QBO Amount */
    int64_t qty7;         /* QBO Qty, units of 10^-7 */
    int64_t price7;       /* QBO UnitPrice, units of 10^-7; qty7 x price7 == amount */
    int qty_folded;       /* 1 when Qty 1 / UnitPrice = Amount replaced the real pair */
};

/* The sum of the n line items' taxes into *sum: pricing_line_tax() of each on its line's
 * amount (lines[i].amount_cents), the rate of a taxable line without hs_tax_amount and
 * hs_tax_rate read from HubSpot's tax rates (hubspot_get_tax_rate(), once per distinct
 * rate id of the call). 0, or -1 with *err (HUBSPOT_VALIDATION for unusable values, or
 * the read's failure). */
int action_line_taxes(const struct action_ctx *ctx, const struct hubspot_ctx *hc,
                      const struct hubspot_line_item *li, const struct sales_line *lines,
                      size_t n, int64_t *sum, struct api_error *err);

/* For a foreign currency, the company's exchange rate on date (YYYY-MM-DD) into
 * cur->rate (qbo_exchange_rate()): QBO books a foreign document without one at 1:1, so
 * every foreign document carries it. Nothing for the home currency. Before any write.
 * 0, or -1 with *err. */
int action_exchange_rate(const struct action_ctx *ctx, struct action_currency *cur,
                         const char *date, struct api_error *err);

/* 1 when s can go as a document's BillEmail: at most 100 bytes, one '@' with text on
 * both sides, a '.' after it, no whitespace or control characters (QBO refuses a
 * malformed address, and a bad one must not cost the whole document). */
int action_email_ok(const char *s);

/* Document numbers. A company with "custom transaction numbers" on (Preferences
 * SalesFormsPrefs.CustomTxnNumbers) leaves DocNumber empty unless it is sent (Intuit's
 * Transaction.DocNumber docs), so the worker sends one there, and none elsewhere (QBO
 * numbers the document itself). Variant 0 is preferred (a quote's own hs_quote_number)
 * when it is 1..21 printable ASCII bytes, else "<prefix><object id>" ("D1001", "Q2001",
 * "P8001"); variant k (1..ACTION_DOCNUM_VARIANTS-1), used after QBO refuses the previous
 * one as a duplicate (6140), appends "-<k+1>" (the base cut to fit 21 characters). out
 * (QBO_DOCNUMBER_MAX bytes) gets "" when the company numbers documents itself. 0, or -1
 * when variant is out of range. Pure. */
#define ACTION_DOCNUM_VARIANTS 10
#define ACTION_DOCNUM_MAX      21
int action_doc_number(const struct qbo_company *co, const char *preferred, char prefix,
                      int64_t object_id, int variant, char out[QBO_DOCNUMBER_MAX]);

/* The create step of a document for the 610 round and the DocNumber variant: "doc",
 * "doc:r1", "doc:n2", "doc:r1:n2" (each variant's body differs, so must its requestid). */
void action_doc_step(int round, int variant, char *out, size_t outsz);

/* A sales document created once (action_create_once()) with its DocNumber: variant 0,
 * then, while QBO refuses the number as a duplicate (6140), the next variants. body()
 * writes the document with doc_number (NULL: none) into the empty jb, 0 or -1 (out of
 * memory). Everything borrowed. */
struct action_numbered {
    const char *entity;      /* "Invoice", ... */
    const char *customer_id; /* the create-once lookup */
    const char *txn_date;
    const struct qbo_company *co;
    const char *preferred; /* the number HubSpot has (a quote's), or NULL */
    char prefix;           /* of the pattern: 'D', 'Q', 'P' */
    int64_t object_id;
    int round; /* action_write_rematch()'s */
    int (*body)(void *opaque, const char *doc_number, struct jbuf *jb);
    void *opaque;
};
int action_create_numbered(const struct action_ctx *ctx, const struct action_numbered *n,
                           struct qbo_created *out, struct api_error *err);

/* Tax HubSpot charges (tax_cents > 0) can only be booked by a company that uses sales
 * tax: QBO_SALES_TAX_OFF otherwise. 0, or -1 with *err. */
int action_tax_check(const struct qbo_company *co, int64_t tax_cents, struct api_error *err);

/* Members of the document every sales-side body writes for tax and currency: on a
 * company with sales tax, "TxnTaxDetail":{"TotalTax":<tax>} (also 0: with Automated Sales
 * Tax an explicit amount is honoured, an absent one recomputed); CurrencyRef (and
 * ExchangeRate when known) when foreign. Errors latch in jb. */
void action_json_tax_currency(struct jbuf *jb, const struct qbo_company *co, int64_t tax_cents,
                              const struct action_currency *cur);

/* After a create: QBO's TotalAmt must equal expected (and, when balance_expected >= 0,
 * Balance must equal it), else QBO_TOTAL_MISMATCH naming the document and the figures,
 * with out->details_json {"qbo_id","entity","expected_total","qbo_total"[,
 * "expected_balance","qbo_balance"]} (amounts as decimal strings). A document whose
 * TotalAmt QBO did not send (or not as a plain decimal) fails the same way. 0, or -1. */
int action_verify_total(const struct qbo_created *doc, const char *entity, int64_t expected,
                        int64_t balance_expected, struct action_outcome *out,
                        struct api_error *err);

/* Fill out's document fields from doc (borrowed), the entity created for action a:
 * entity, Id (required: else -1, API_TRANSIENT), DocNumber, currency (USD when "") and
 * the created_items of the n items (may be NULL) whose .created is set (malloc'd into
 * out). The caller sets the total and customer fields. 0, or -1 with *err. */
int action_outcome_fill(struct action_outcome *out, enum hsqb_action a,
                        const struct qbo_created *doc, const struct resolve_item *items, size_t n,
                        struct api_error *err);

/* One create of a run: step names its sent-marker and requestid ("doc", "doc:r1",
 * "payment"); entity is the QBO entity name ("Invoice", "Purchase"); body the entity to
 * create as JSON text of body_len bytes (a body builder's jbuf, sent as is). Borrowed. */
struct action_write {
    const char *step, *entity;
    const char *body;
    size_t body_len;
};

/* Create an entity once per (event, step) (action.c's opening comment): set the step's
 * marker; when it was already set, look up "SELECT * FROM <entity> WHERE <where>" (at
 * most lookup_max rows) for the row whose PrivateNote ends " hsqb event <event id>" and
 * reuse it; else create with requestid claim_request_id_gen(event id, step, replay
 * generation). When QBO refuses the where as a query (400: a property it does not
 * filter on), `wide` (may be NULL) is tried instead, with ten times the rows; when
 * that is refused too, or where is NULL, the create is sent with its requestid, which
 * QBO dedups: a lookup fault never fails the event. Fails API_TRANSIENT without creating
 * once the event's claim is lost (ctx->io). *out (not NULL) receives the Id, DocNumber,
 * currency and totals of the created or found entity (qbo.h's struct qbo_created rules:
 * one without a usable Id is an error). 0, or -1 with *err (*out untouched). */
int action_create_once_where(const struct action_ctx *ctx, const struct action_write *w,
                             const char *where, const char *wide, size_t lookup_max,
                             struct qbo_created *out, struct api_error *err);

/* action_create_once_where() for a document of customer_id on txn_date: the narrow
 * "CustomerRef = .. AND TxnDate = .." (Intuit's schema tags CustomerRef filterable for
 * desktop only, third-party guides use it with QBO), else "TxnDate = ..", which every
 * transaction filters on. */
int action_create_once(const struct action_ctx *ctx, const struct action_write *w,
                       const char *customer_id, const char *txn_date, struct qbo_created *out,
                       struct api_error *err);

/* ---- budgets ------------------------------------------------------------------------ */

/* What one event may spend (budget.* settings): a run counts its document's lines and
 * the QBO writes it would make from what it read, and checks both before its first
 * write, so an event over a budget fails BUDGET_EXCEEDED (permanent) having created
 * nothing. The write count is an upper bound of the plan: the customer counts when it
 * may have to be created (resolve_customer() decides only by writing), every distinct
 * product to create or reactivate counts once. A 610 re-match (action_write_rematch())
 * may create what round 0 found cached; it is not re-checked. Refused attempts create
 * nothing and are bounded on their own: DisplayName variants (resolve.h), DocNumber
 * variants (ACTION_DOCNUM_VARIANTS). */
struct action_plan {
    size_t lines;      /* the document's lines */
    size_t customers;  /* 1 when the run may create (or reactivate) its customer */
    size_t vendors;    /* an expense's vendor input: 1 */
    size_t items;      /* products to create or reactivate (distinct, resolve_items_writes) */
    size_t documents;  /* 1; 2 for a paid invoice (Invoice + Payment) */
    size_t sends;      /* 1 when the document is emailed (email_document) */
};

/* The number of lines n (what: "deal 1001", for the message) against
 * budget.max_line_items: 0, or -1 with *err BUDGET_EXCEEDED. Call it on HubSpot's
 * association count before reading the line items, and on the document's lines. */
int action_budget_lines(const struct action_ctx *ctx, size_t n, const char *what,
                        struct api_error *err);

/* The plan against both budgets: 0, or -1 with *err BUDGET_EXCEEDED naming the cap, the
 * count and what makes it up. */
int action_budget_check(const struct action_ctx *ctx, const struct action_plan *p,
                        struct api_error *err);

/* The line items of a document run and the QBO items they resolve to. */
struct action_items {
    const struct hubspot_line_item *li; /* n entries, borrowed */
    size_t n;
    struct resolve_item *items; /* n entries, the run's */
    size_t nmissing;            /* unmatched after the last lookup */
};

/* Match the line items of it (resolve_items_lookup()); when some stay unmatched and
 * create_missing is 0 (the event's create_missing_products), the PRODUCT_NOT_FOUND
 * failure with its details in out->details_json. 0, or -1 with *err. Reads only. */
int action_items_lookup(const struct resolve_ctx *rc, int create_missing, struct action_items *it,
                        struct action_outcome *out, struct api_error *err);

/* action_items_lookup(), then, when items will be created, the income account they are
 * created with (ACCOUNT_NOT_FOUND now rather than after the first write). */
int action_items_check(const struct resolve_ctx *rc, int create_missing, struct action_items *it,
                       struct action_outcome *out, struct api_error *err);

/* The writes of a run and what a 610 (a record a cached mapping points at is gone)
 * makes it forget. Every pointer borrowed; contact, items and vendor may be NULL. */
struct action_rematch {
    /* The run's writes: round 0, then round 1 after a 610 (write its document under
     * step "doc:r1": the body may differ, so the requestid must). 0, or -1 with *err. */
    int (*write)(void *opaque, int round, struct api_error *err);
    void *opaque;
    const struct hubspot_contact *contact; /* forget its customer mapping */
    struct action_items *items;            /* forget theirs, then action_items_lookup() */
    const char *vendor;                    /* forget the vendor input's mapping */
    struct resolve_refs_used refs;         /* forget these too (term, accounts, methods) */
    /* After forgetting: look the refs up again (the run's term, accounts and payment
     * method ids), so round 1 uses live ones or fails with their own not-found code.
     * May be NULL. 0, or -1 with *err. */
    int (*refresh)(void *opaque, struct api_error *err);
    struct action_outcome *out; /* PRODUCT_NOT_FOUND details of the re-match */
};

/* The one "QBO 610 -> forget the cached mappings and match again" loop: write; on fault
 * 610 forget every mapping the document used (customer, items, vendor, term, accounts,
 * payment methods, the income account), look them up again and write once more. Any
 * other failure, or a second one, is returned as is. 0, or -1 with *err. */
int action_write_rematch(const struct action_ctx *ctx, const struct resolve_ctx *rc,
                         const struct action_rematch *m, struct api_error *err);

#endif
