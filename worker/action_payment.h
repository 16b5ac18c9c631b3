/* action_payment.h - the payment family: create_sales_receipt,
 * create_paid_invoice, create_expense and create_refund_receipt from a HubSpot
 * COMMERCE_PAYMENT (commerce_payments, 0-101).
 *
 * Owns: the payment's facts (amounts in exact cents, status, method, reference, date),
 * the business rules on them, the bodies of the Payment and Purchase it sends (the sales
 * documents are action_sales.h's sales_doc_members() plus the payment's fields), and the
 * order of the steps. As in the sales family every permanent failure that can be known
 * before a QBO write is found before the first one:
 *   payment (404 -> OBJECT_NOT_FOUND) -> amounts parse (HUBSPOT_VALIDATION) -> status rule
 *   -> currency -> [expense] amount (ZERO_AMOUNT) | [others] contact id (NO_CONTACT) ->
 *   line items -> taxable rule (paid invoice) -> money of every line -> balance check
 *   (paid invoice) -> contact -> company US check -> accounts (ACCOUNT_NOT_FOUND) ->
 *   payment method (optional) -> items (PRODUCT_NOT_FOUND) -> [first write] customer /
 *   vendor -> missing items -> document(s).
 *
 * The rules (documented in the README's action table):
 *  - Succeeded: sales receipt and paid invoice need hs_latest_status == "succeeded"; an
 *    expense needs a payment that was collected (any status but "processing" and
 *    "failed"; fees stay charged after refunds and disputes). Else PAYMENT_NOT_SUCCEEDED.
 *  - Fully refunded (refund receipt): hs_latest_status == "refunded" AND
 *    hs_refunds_amount == hs_initial_amount (exact cents); else NOT_FULLY_REFUNDED
 *    (processing_refund, partially_refunded and disputed_lost included).
 *  - Taxable (paid invoice): a line item is taxable when its hs_tax_rate_group_id is set
 *    (non-empty). HubSpot has no "taxable" flag on a line item; the tax rate
 *    group is the only tax datum a line item carries. A paid invoice with any taxable
 *    line fails TAXABLE_ITEMS_NOT_ALLOWED listing them in details.line_items, and
 *    nothing is created. Sales receipts and refund receipts take any line.
 *  - Balance (paid invoice): the invoice is the line items, the Payment is the amount
 *    received (hs_initial_amount); the two must be equal so the invoice ends at Balance
 *    0. A payment whose amount differs from its line items' total (an order-level
 *    discount, fee or tax HubSpot does not show on the lines) fails HUBSPOT_VALIDATION
 *    before anything is written.
 *  - No line items: one line for the payment amount (the refunded amount for a refund
 *    receipt) against the item named by payments.default_item, matched like a product
 *    (created only with create_missing_products).
 *  - Currency: hs_currency_code (else the line items'), else the company's home
 *    currency; another currency needs multicurrency on in QBO (CURRENCY_NOT_SUPPORTED),
 *    and then every document and the Payment carry CurrencyRef (action_currency_for()).
 *  - Tax: a sales or refund receipt books each line's HubSpot tax (hs_tax_amount, else
 *    its hs_tax_rate) as TxnTaxDetail.TotalTax with TaxCodeRef TAX/NON per line, and the
 *    line items plus their tax must come to the money that moved (the amount received,
 *    or refunded), else HUBSPOT_VALIDATION before any write: the deposit equals the
 *    payment. A paid invoice is all NON with TotalTax 0.
 *  - Totals: every document's TotalAmt is checked against that figure after the create,
 *    and the paid invoice is read back after its Payment: Balance must be 0
 *    (QBO_TOTAL_MISMATCH otherwise, naming the document).
 *  - Expense amount: amount_source fees = hs_fees_amount (absent = 0), net =
 *    hs_net_amount (absent: initial - fees - refunds), total = hs_initial_amount. Zero
 *    is ZERO_AMOUNT, negative HUBSPOT_VALIDATION; both before any QBO call.
 *  - TxnDate: the UTC date of hs_initiated_date for the sales receipt, the paid invoice
 *    and its Payment, and the expense (the day the money moved); the event's date for the
 *    refund receipt (HubSpot records no refund date). The paid invoice's DueDate is its
 *    TxnDate: it is paid on the day it is issued.
 *  - Method and reference: hs_payment_method_type is matched to an existing QBO
 *    PaymentMethod by name (payment_method_names(); none found = no PaymentMethodRef,
 *    never created); hs_reference_number becomes PaymentRefNum (cut to 21 bytes).
 *
 * Exactly once: documents go through action_create_once() (steps "doc", then "payment"
 * for the paid invoice's Payment), so after a crash between the invoice and the payment
 * the re-run finds the invoice by its lookup and creates (or finds) the one payment. The
 * Purchase cannot be looked up by customer (QBO cannot filter Purchase on its payee), so
 * it goes through action_create_once_where() with a lookup by TxnDate + PrivateNote.
 *
 * Thread-safety: pure functions and a constant ops table.
 */
#ifndef HSQB_ACTION_PAYMENT_H
#define HSQB_ACTION_PAYMENT_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "common/json.h"
#include "worker/action.h"
#include "worker/action_sales.h"

#define PAYMENT_REF_MAX      21 /* bytes of QBO PaymentRefNum */
#define PAYMENT_NOTE_MAX     (EVENT_ID_MAX + 160)
#define PAYMENT_METHOD_NAMES 4 /* candidates per HubSpot method, NULL-terminated */

extern const struct action_ops action_payment_ops;

/* The facts of one payment read from its properties. Strings are borrowed from the
 * hubspot_object they were read from (NULL when absent). */
struct payment_facts {
    int64_t initial_cents; /* hs_initial_amount (required) */
    int64_t fees_cents;    /* hs_fees_amount; 0 when absent */
    int64_t refunds_cents; /* hs_refunds_amount; 0 when absent */
    int64_t net_cents;     /* hs_net_amount, else initial - fees - refunds */
    const char *status;    /* hs_latest_status */
    const char *method;    /* hs_payment_method_type */
    const char *reference; /* hs_reference_number */
    const char *currency;  /* hs_currency_code */
    char date[11];         /* UTC date of hs_initiated_date; "" when absent or unreadable */
};

/* Read the facts of payment o (pure). rounding applies to amounts with more than two
 * decimals (NONE reads as half_up). 0, or -1 with errstr naming the property. */
int payment_facts_read(const struct hubspot_object *o, enum money_round rounding,
                       struct payment_facts *out, char *errstr, size_t errsz);

/* "YYYY-MM-DD" (UTC) of a HubSpot datetime: RFC 3339 with Z or an offset, a bare date,
 * or epoch milliseconds in digits. 0, or -1 (out "") when s is NULL or unreadable. */
int payment_date_utc(const char *s, char out[11]);
/* payment_date_utc() in zone (NULL = UTC): the local date of the instant s names; a
 * date-only s ("2024-03-01") is that date as it is. */
int payment_date_in(const char *s, const struct tz_zone *zone, char out[11]);

/* The status rules above for action a: 0 when the payment qualifies, else -1 with *err
 * (API_PERMANENT, PAYMENT_NOT_SUCCEEDED or NOT_FULLY_REFUNDED, a message with the
 * status and amounts). Actions outside the family qualify. */
int payment_check_status(enum hsqb_action a, const struct payment_facts *f, struct api_error *err);

/* The taxable rule: 1 when line item li is taxable. */
int payment_line_taxable(const struct hubspot_line_item *li);

/* The TAXABLE_ITEMS_NOT_ALLOWED failure when any of the n line items is taxable: 1 with
 * *err set and *details_json (malloc'd, caller frees; NULL on allocation failure) =
 * {"line_items":[{"id":"7003","name":"Setup fee","tax_rate_group_id":"1001"},...]};
 * 0 when none is. */
int payment_taxable_failure(const struct hubspot_line_item *li, size_t n, struct api_error *err,
                            char **details_json);

/* The expense amount for src (rules above): 0 with *cents > 0, or -1 with *err
 * (ZERO_AMOUNT, or HUBSPOT_VALIDATION when negative). */
int payment_expense_amount(const struct payment_facts *f, enum expense_amount_source src,
                           int64_t *cents, struct api_error *err);

/* QBO PaymentMethod names to try, in order, for a hs_payment_method_type (NULL-
 * terminated, static; empty for "other", unknown or NULL). */
const char *const *payment_method_names(const char *hs_method);

/* "HubSpot payment <id>[ <what>][ (<reference>)] hsqb event <event id>" into out
 * (outsz >= PAYMENT_NOTE_MAX); what and reference may be NULL; the reference is cut to
 * 64 bytes. Ends with the suffix action_create_once() matches. */
void payment_private_note(const struct action_event *ev, const char *what, const char *reference,
                          char *out, size_t outsz);

/* The payment's fields added to a sales document body (SalesReceipt, RefundReceipt,
 * paid Invoice) and, but for due_date, to a Payment. */
struct payment_extras {
    const char *deposit_account_id; /* DepositToAccountRef; NULL = QBO default */
    const char *method_id;          /* PaymentMethodRef; NULL = none */
    const char *reference;          /* PaymentRefNum (cut to PAYMENT_REF_MAX); NULL */
    const char *due_date;           /* DueDate (invoice); NULL */
};

/* Every body below is written as one JSON object into out, a jbuf the caller initialised
 * (size it with QBO_BODY_MAX) and has not written to (pure); the caller sends
 * jbuf_cstr(out), out->len and releases it. Each returns 0, or -1 when out latched an
 * error (out of memory, its cap, or the misuse named). */

/* A payment's sales document: sales_doc_members(d), then e's members, each when set, in
 * this order: DepositToAccountRef, PaymentMethodRef, PaymentRefNum, DueDate. d must not
 * set deposit_account_id when e does (the member would appear twice: -1). */
int payment_doc_body(const struct sales_doc *d, const struct payment_extras *e, struct jbuf *out);

/* A QBO Payment applying amount_cents to invoice invoice_id. */
struct payment_body {
    const char *customer_id;
    const char *invoice_id;
    int64_t amount_cents;
    const char *txn_date;
    const char *private_note;
    struct payment_extras x; /* due_date unused */
    const struct action_currency *cur; /* CurrencyRef when foreign; NULL = none */
};
int payment_payment_body(const struct payment_body *b, struct jbuf *out);

/* A QBO Purchase with one account-based expense line. */
struct purchase_body {
    enum expense_payment_type payment_type;
    const char *paid_from_id; /* AccountRef */
    const char *expense_id;   /* the line's AccountRef */
    const char *vendor_id;    /* EntityRef (type Vendor); NULL = no payee */
    int64_t amount_cents;
    const char *description;
    const char *txn_date;
    const char *private_note;
    const struct action_currency *cur; /* CurrencyRef when foreign; NULL = none */
};
int payment_purchase_body(const struct purchase_body *b, struct jbuf *out);

#endif
