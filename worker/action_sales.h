/* action_sales.h - the sales family: create_invoice, create_estimate and
 * create_sales_receipt from a HubSpot DEAL or QUOTE, plus the line money and document
 * members the payment family books its sales documents with (what every family shares,
 * create-once included, is action.h's).
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
 * Exactly once: the document goes through action_create_once() (action.h) with step
 * "doc", looked up by the same customer and TxnDate; a 610 re-match writes step
 * "doc:r1" (action_write_rematch()).
 *
 * Thread-safety: pure functions and a constant ops table.
 */
#ifndef HSQB_ACTION_SALES_H
#define HSQB_ACTION_SALES_H

#include <stddef.h>
#include <stdint.h>

#include "common/json.h"
#include "worker/action.h"
#include "worker/pricing.h"
#include "worker/qbo.h"

extern const struct action_ops action_sales_ops;

/* The largest line amount booked, in cents (99,999,999,999.99): QuickBooks documents no
 * maximum, and UnitPrice carries 7 decimals (MONEY_PRICE_MAX), so this is the largest
 * amount for which Qty 1 x UnitPrice = Amount (the pair any line may fall back to) can
 * be written at all. */
#define SALES_LINE_MAX_CENTS (MONEY_PRICE_MAX / (MONEY_PRICE_SCALE / 100))

/* Map one line item's money to a line (pure). 0, or -1 with errstr naming the line item
 * and the fault (bad decimal, negative amount, discount without amount, an amount above
 * SALES_LINE_MAX_CENTS). */
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
    /* Tax: with co->sales_tax each line gets TaxCodeRef TAX (taxable[i]) or NON, and the
     * document TxnTaxDetail.TotalTax = tax_cents; co NULL: neither (as before). taxable
     * NULL = every line NON. */
    const struct qbo_company *co;
    const unsigned char *taxable;
    int64_t tax_cents;
    const struct action_currency *cur; /* CurrencyRef when foreign; NULL = none */
    /* > 0: one amount-based DiscountLineDetail line after the sales lines */
    int64_t discount_cents;
    const char *discount_desc;
    const struct hubspot_address *bill_addr, *ship_addr; /* NULL or empty = none */
    const char *expiration_date; /* estimate: YYYY-MM-DD; NULL = none */
    const char *doc_number;      /* DocNumber (action_doc_number()); NULL = QBO numbers it */
};

/* The QBO document body for d (pure), written as one JSON object into out: a jbuf the
 * caller initialised (size it with QBO_BODY_MAX) and has not written to; the caller
 * sends jbuf_cstr(out), out->len and releases it. Members, in this order:
 * CustomerRef, TxnDate, DocNumber (doc_number), SalesTermRef (invoice with term_id),
 * ExpirationDate (estimate
 * with expiration_date), DepositToAccountRef (sales receipt with deposit_account_id),
 * BillEmail (bill_email, not on a sales receipt), BillAddr, ShipAddr, TxnTaxDetail,
 * CurrencyRef, PrivateNote, Line (sales lines, then the discount line). 0, or -1 when out
 * latched an error (out of memory, its cap). */
int sales_doc_body(const struct sales_doc *d, struct jbuf *out);

/* sales_doc_body()'s members, without the braces, into the object open in out: for a
 * family that appends members of its own (action_payment.c). Errors latch in out. */
void sales_doc_members(const struct sales_doc *d, struct jbuf *out);

/* The PrivateNote of the document of event ev: "HubSpot <type> <id> hsqb event <id>",
 * into out (at most outsz - 1 bytes; EVENT_ID_MAX + 64 is enough). The suffix
 * " hsqb event <id>" is what action_create_once() (action.h) matches. */
void sales_private_note(const struct action_event *ev, char *out, size_t outsz);

/* The event's TxnDate: the date in zone (NULL = UTC) of the event time, else of now_ms
 * (also when the event time is outside years 1..9999); out is always a NUL-terminated
 * YYYY-MM-DD. */
void sales_txn_date(const struct action_event *ev, int64_t now_ms, const struct tz_zone *zone,
                    char out[11]);

#endif
