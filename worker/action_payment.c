/* action_payment.c - sales receipts, paid invoices, expenses and refund receipts from a
 * HubSpot payment (rules and step order in action_payment.h).
 *
 * Built on the sales family rather than beside it: line money and document members are
 * action_sales.c's, customer/item resolution resolve.c's and resolve_items.c's, and
 * create-once, the item lookup and the 610 re-match loop action.c's (shared by every
 * family), so a payment's sales receipt is booked exactly like a deal's. What is new
 * here is the payment's own facts (status, amounts, date, method) and the two documents
 * the sales family has no use for: the Payment that settles a paid invoice and the
 * Purchase of an expense.
 *
 * A paid invoice is two creates, each idempotent on its own (steps "doc" and "payment",
 * each with its requestid and sent-marker), run in order by every attempt:
 *
 *   attempt --> invoice: marker new -> create | marker set -> look up, else create
 *           --> payment: marker new -> create | marker set -> look up, else create
 *
 * so a crash anywhere (before, inside or after either create) leaves the next attempt
 * to find what exists and create only what is missing: one invoice, one payment.
 *
 * The payment's facts, the rules and the bodies, which need no I/O, are in
 * action_payment_rules.c.
 */
#include "worker/action_payment.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/json.h"
#include "common/log.h"
#include "common/utf8.h"
#include "worker/action.h"
#include "worker/action_sales.h" /* line money, sales document members, TxnDate */

#define DESC_MAX            (PAYMENT_NOTE_MAX)
#define PURCHASE_LOOKUP_MAX 5000 /* Purchases of one day read to find ours after a crash */

/* ---- the Purchase's create-once ------------------------------------------------------ */

/* QBO cannot filter a Purchase on its payee: the lookup reads the day's Purchases. */
static int purchase_create_once(const struct action_ctx *ctx, const struct action_write *w,
                                const char *txn_date, struct qbo_created *out,
                                struct api_error *err)
{
    char where[32];

    snprintf(where, sizeof where, "TxnDate = '%s'", txn_date);
    return action_create_once_where(ctx, w, where, NULL, PURCHASE_LOOKUP_MAX, out, err);
}

/* ---- the run ------------------------------------------------------------------------ */

struct prun {
    const struct action_ctx *ctx;
    struct resolve_ctx rc;
    struct hubspot_object *obj;
    struct payment_facts f;
    struct hubspot_contact *contact;
    struct hubspot_line_items *lis;
    struct hubspot_line_item synth; /* the default-item line of a payment without lines */
    char synth_amount[MONEY_FMT_SIZE];
    char synth_desc[DESC_MAX];
    const struct hubspot_line_item *li;
    size_t n;
    struct sales_line *lines;
    struct resolve_item *items;
    struct action_items it; /* li resolved into items */
    const char **item_ids;
    unsigned char *taxable;
    int64_t tax_cents;
    char hubspot_currency[4];
    struct qbo_company co;
    struct action_currency cur;
    const struct tz_zone *zone; /* the documents' dates (action_time_zone); NULL = UTC */
    char date[11];
    char customer_id[RESOLVE_ID_MAX];
    char deposit_id[RESOLVE_ID_MAX];
    char method_id[RESOLVE_ID_MAX];
    int created_customer;
    int64_t total_cents;
    struct resolve_refs_used refs; /* what a 610 makes the run forget */
    char expense_id[RESOLVE_ID_MAX]; /* the expense's two accounts (run_expense) */
    char from_id[RESOLVE_ID_MAX];
};

static void prun_release(struct prun *r)
{
    hubspot_object_free(r->obj);
    hubspot_contact_free(r->contact);
    hubspot_line_items_free(r->lis);
    free(r->lines);
    free(r->items);
    free(r->item_ids);
    free(r->taxable);
}

static int oom(struct api_error *err)
{
    api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 0, "out of memory");
    return -1;
}

/* The payment, its facts and the status rule: nothing written anywhere yet. */
static int read_payment(struct prun *r, struct api_error *err)
{
    const struct action_ctx *ctx = r->ctx;
    const struct action_event *ev = ctx->ev;
    struct hubspot_ctx hc = {ev->portal_id};
    char e[256];

    if (hubspot_get_object(&ctx->io, ctx->hubspot, &hc, OBJECT_COMMERCE_PAYMENT, ev->object_id,
                           &r->obj, err) < 0)
        return -1;
    if (payment_facts_read(r->obj, ctx->settings->rounding, &r->f, e, sizeof e) < 0) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, 0, "%s", e);
        return -1;
    }
    if (payment_check_status(ev->action, &r->f, err) < 0 ||
        action_time_zone(ctx, &hc, &r->zone, err) < 0)
        return -1;
    /* the day the money moved, in the seller's zone (the refund: the event's day) */
    if (ev->action == ACTION_CREATE_REFUND_RECEIPT ||
        payment_date_in(hubspot_object_prop(r->obj, "hs_initiated_date"), r->zone, r->date) < 0)
        sales_txn_date(ev, ctx->now_ms, r->zone, r->date);
    return 0;
}

/* One line for the whole amount against the default item (a payment without lines). */
static void synth_line(struct prun *r, int64_t cents)
{
    char cut[65];

    money_format(cents, r->synth_amount, sizeof r->synth_amount);
    if (r->f.reference) {
        utf8_copy(cut, sizeof cut, r->f.reference, 64);
        snprintf(r->synth_desc, sizeof r->synth_desc, "HubSpot payment %" PRId64 " (%s)",
                 r->ctx->ev->object_id, cut);
    } else {
        snprintf(r->synth_desc, sizeof r->synth_desc, "HubSpot payment %" PRId64,
                 r->ctx->ev->object_id);
    }
    r->synth = (struct hubspot_line_item){
        .id = r->ctx->ev->object_id,
        .name = (char *)r->ctx->settings->payment_default_item,
        .description = r->synth_desc,
        .quantity = (char *)"1",
        .price = r->synth_amount,
        .amount = r->synth_amount,
    };
    r->li = &r->synth;
    r->n = 1;
}

/* Contact, line items and their money, the document rules: still nothing written. */
static int read_lines(struct prun *r, struct action_outcome *out, struct api_error *err)
{
    const struct action_ctx *ctx = r->ctx;
    const struct action_event *ev = ctx->ev;
    struct hubspot_ctx hc = {ev->portal_id};
    char e[256], a[MONEY_FMT_SIZE], b[MONEY_FMT_SIZE];
    int64_t contact_id;
    size_t i;

    if (ev->in.customer_source == CUSTOMER_CONTACT_ID) {
        contact_id = ev->in.customer_contact_id;
    } else if (r->obj->ncontacts > 0) {
        contact_id = r->obj->contact_ids[0]; /* lowest id: the documented "first" */
    } else {
        api_error_set(err, API_PERMANENT, HSQB_ERR_NO_CONTACT, 0,
                      "payment %" PRId64 " has no associated contact", ev->object_id);
        return -1;
    }
    if (r->obj->nline_items > 0) {
        snprintf(e, sizeof e, "payment %" PRId64, ev->object_id);
        if (action_budget_lines(ctx, r->obj->nline_items, e, err) < 0)
            return -1; /* before reading a thousand line items */
        if (hubspot_get_line_items(&ctx->io, ctx->hubspot, &hc, r->obj->line_item_ids,
                                   r->obj->nline_items, &r->lis, err) < 0)
            return -1;
        hubspot_line_items_order(r->lis->items, r->lis->n);
        r->li = r->lis->items;
        r->n = r->lis->n;
    } else {
        synth_line(r, ev->action == ACTION_CREATE_REFUND_RECEIPT ? r->f.refunds_cents
                                                                 : r->f.initial_cents);
    }
    if (ev->action == ACTION_CREATE_PAID_INVOICE &&
        payment_taxable_failure(r->li, r->n, err, &out->details_json))
        return -1;
    r->lines = calloc(r->n, sizeof *r->lines);
    r->items = calloc(r->n, sizeof *r->items);
    r->item_ids = calloc(r->n, sizeof *r->item_ids);
    r->taxable = calloc(r->n, 1);
    if (!r->lines || !r->items || !r->item_ids || !r->taxable)
        return oom(err);
    r->it = (struct action_items){.li = r->li, .n = r->n, .items = r->items};
    for (i = 0; i < r->n; i++) {
        if (sales_line_money(&r->li[i], ctx->settings->rounding, &r->lines[i], e, sizeof e) < 0) {
            api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, 0, "%s", e);
            return -1;
        }
        r->taxable[i] = (unsigned char)pricing_line_taxable(&r->li[i]);
        if (money_add(r->total_cents, r->lines[i].amount_cents, &r->total_cents) != MONEY_OK) {
            api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, 0,
                          "the document total is out of range");
            return -1;
        }
    }
    if (ev->action == ACTION_CREATE_PAID_INVOICE && r->total_cents != r->f.initial_cents) {
        money_format(r->f.initial_cents, a, sizeof a);
        money_format(r->total_cents, b, sizeof b);
        api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, 0,
                      "payment %" PRId64 " received %s but its line items total %s (an "
                      "order-level discount, fee or tax?); a paid invoice must settle to a zero "
                      "balance, record a sales receipt instead",
                      ev->object_id, a, b);
        return -1;
    }
    if (ev->action != ACTION_CREATE_PAID_INVOICE &&
        action_line_taxes(ctx, &hc, r->li, r->lines, r->n, &r->tax_cents, err) < 0)
        return -1;
    if (money_add(r->total_cents, r->tax_cents, &r->total_cents) != MONEY_OK) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, 0,
                      "the document total is out of range");
        return -1;
    }
    if (ev->action != ACTION_CREATE_PAID_INVOICE && r->lis) {
        /* the receipt deposits (or refunds) exactly the money that moved */
        int64_t moved = ev->action == ACTION_CREATE_REFUND_RECEIPT ? r->f.refunds_cents
                                                                   : r->f.initial_cents;
        if (r->total_cents != moved) {
            money_format(moved, a, sizeof a);
            money_format(r->total_cents, b, sizeof b);
            api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, 0,
                          "payment %" PRId64 " %s %s but its line items and their tax total %s "
                          "(an order-level discount or fee?); the %s would not match the money",
                          ev->object_id,
                          ev->action == ACTION_CREATE_REFUND_RECEIPT ? "refunded" : "received", a,
                          b, ev->action == ACTION_CREATE_REFUND_RECEIPT ? "refund" : "deposit");
            return -1;
        }
    }
    if (action_hubspot_currency(r->f.currency, r->li, r->n, "payment", ev->object_id,
                                r->hubspot_currency, err) < 0)
        return -1;
    return hubspot_get_contact(&ctx->io, ctx->hubspot, &hc, contact_id, &r->contact, err);
}

/* Company, accounts, payment method, items (lookup only): still nothing written. */
/* The deposit (or refund) account and the payment method the document uses (their
 * inputs in r->refs, for a 610's forgetting); looked up again after a 610. */
static int resolve_refs(struct prun *r, struct api_error *err)
{
    const struct action_ctx *ctx = r->ctx;
    const struct action_event *ev = ctx->ev;
    const char *dep = NULL;
    int found = 0;

    if (ev->action == ACTION_CREATE_REFUND_RECEIPT)
        dep = ev->in.refund_from_account;
    else if (ev->in.deposit_to_account)
        dep = ev->in.deposit_to_account;
    else if ((ev->action == ACTION_CREATE_SALES_RECEIPT ||
              ev->action == ACTION_CREATE_PAID_INVOICE) &&
             ctx->company && ctx->company->deposit_account[0])
        dep = ctx->company->deposit_account; /* the company's settings page */
    else if (ev->action == ACTION_CREATE_SALES_RECEIPT && ctx->settings->deposit_account[0])
        dep = ctx->settings->deposit_account;
    r->refs.accounts[0] = dep;
    r->refs.paymethods = payment_method_names(r->f.method);
    r->deposit_id[0] = r->method_id[0] = '\0';
    if (dep && resolve_account(&r->rc, dep, r->deposit_id, err) < 0)
        return -1;
    return resolve_payment_method(&r->rc, r->refs.paymethods, r->method_id, &found, err);
}

static int check_qbo(struct prun *r, struct action_outcome *out, struct api_error *err)
{
    const struct action_ctx *ctx = r->ctx;
    const struct action_event *ev = ctx->ev;

    if (action_company(r->ctx, &r->co, err) < 0 ||
        action_currency_for(&r->co, r->hubspot_currency, &r->cur, &r->rc, err) < 0 ||
        action_tax_check(&r->co, r->tax_cents, err) < 0 ||
        action_exchange_rate(r->ctx, &r->cur, r->date, err) < 0 || resolve_refs(r, err) < 0)
        return -1;
    if (action_items_check(&r->rc, ev->in.create_missing_products, &r->it, out, err) < 0)
        return -1;
    r->refs.income = r->it.nmissing > 0;
    /* the event's budget (action.h): the last check before the first write */
    return action_budget_check(
        ctx,
        &(struct action_plan){.lines = r->n,
                              .customers = 1,
                              .items = resolve_items_writes(r->li, r->n, r->items),
                              .documents = ev->action == ACTION_CREATE_PAID_INVOICE ? 2 : 1},
        err);
}

struct doc_and_extras {
    struct sales_doc *d;
    const struct payment_extras *x;
};

static int doc_body(void *opaque, const char *doc_number, struct jbuf *jb)
{
    struct doc_and_extras *dx = opaque;
    dx->d->doc_number = doc_number;
    return payment_doc_body(dx->d, dx->x, jb);
}

/* Customer, missing items and the sales document (round 1: after a 610). */
static int write_doc(struct prun *r, int round, struct qbo_created *doc, struct api_error *err)
{
    const struct action_ctx *ctx = r->ctx;
    const struct action_event *ev = ctx->ev;
    int invoice = ev->action == ACTION_CREATE_PAID_INVOICE;
    char note[PAYMENT_NOTE_MAX];
    struct payment_extras x = {0};
    struct doc_and_extras dx;
    struct action_numbered n;
    struct sales_doc d;
    size_t i;

    if (resolve_customer(&r->rc, r->contact, r->customer_id, &r->created_customer, err) < 0)
        return -1;
    if (resolve_items_reactivate(&r->rc, r->items, r->n, err) < 0 ||
        (r->it.nmissing && resolve_items_create(&r->rc, r->li, r->n, r->items, err) < 0))
        return -1;
    for (i = 0; i < r->n; i++)
        r->item_ids[i] = r->items[i].id;
    payment_private_note(ev, ev->action == ACTION_CREATE_REFUND_RECEIPT ? "refund" : NULL,
                         r->f.reference, note, sizeof note);
    d = (struct sales_doc){
        .action = ev->action,
        .customer_id = r->customer_id,
        .txn_date = r->date,
        .private_note = note,
        .li = r->li,
        .lines = r->lines,
        .item_ids = r->item_ids,
        .n = r->n,
        .co = &r->co,
        .taxable = invoice ? NULL : r->taxable, /* a paid invoice: every line NON */
        .tax_cents = invoice ? 0 : r->tax_cents,
        .cur = &r->cur,
        .bill_addr = &r->contact->addr,
    };
    if (invoice) {
        x.due_date = r->date; /* paid the day it is issued */
    } else {
        x.deposit_account_id = r->deposit_id[0] ? r->deposit_id : NULL;
        x.method_id = r->method_id[0] ? r->method_id : NULL;
        x.reference = r->f.reference;
    }
    dx = (struct doc_and_extras){&d, &x};
    n = (struct action_numbered){
        .entity = event_action_qbo_entity(ev->action),
        .customer_id = r->customer_id,
        .txn_date = r->date,
        .co = &r->co,
        .prefix = 'P',
        .object_id = ev->object_id,
        .round = round,
        .body = doc_body,
        .opaque = &dx,
    };
    return action_create_numbered(ctx, &n, doc, err);
}

/* The Payment settling invoice inv in full: its id into payment_id. */
static int write_payment(struct prun *r, const struct qbo_created *inv, char *payment_id,
                         struct action_outcome *out, struct api_error *err)
{
    const struct action_ctx *ctx = r->ctx;
    char note[PAYMENT_NOTE_MAX];
    struct qbo_created pay;
    struct payment_body b;
    struct jbuf body;
    int rc;

    payment_private_note(ctx->ev, NULL, r->f.reference, note, sizeof note);
    b = (struct payment_body){
        .customer_id = r->customer_id,
        .invoice_id = inv->id, /* never "": qbo_created's rules */
        .amount_cents = r->total_cents,
        .txn_date = r->date,
        .private_note = note,
        .x = {.deposit_account_id = r->deposit_id[0] ? r->deposit_id : NULL,
              .method_id = r->method_id[0] ? r->method_id : NULL,
              .reference = r->f.reference},
        .cur = &r->cur,
    };
    jbuf_init(&body, QBO_BODY_MAX);
    if (payment_payment_body(&b, &body) < 0) {
        rc = oom(err);
    } else {
        struct action_write w = {"payment", "Payment", jbuf_cstr(&body), body.len};
        rc = action_create_once(ctx, &w, r->customer_id, r->date, &pay, err);
    }
    jbuf_release(&body);
    if (rc < 0 || action_verify_total(&pay, "Payment", r->total_cents, -1, out, err) < 0)
        return -1;
    snprintf(payment_id, RESOLVE_ID_MAX, "%s", pay.id);
    return 0;
}

/* The paid invoice, read back after its Payment: it must be settled (Balance 0). */
static int check_settled(struct prun *r, const struct qbo_created *inv,
                         struct action_outcome *out, struct api_error *err)
{
    const struct action_ctx *ctx = r->ctx;
    struct json_object *ent = NULL;
    struct qbo_created now;
    int rc;

    if (qbo_read(&ctx->io, ctx->qbo, ctx->ev->in.realm_id, "Invoice", inv->id, &ent, err) < 0)
        return -1;
    rc = qbo_created_from_json(ent, "Invoice", &now, err);
    json_object_put(ent);
    if (rc < 0)
        return -1;
    return action_verify_total(&now, "Invoice", r->total_cents, 0, out, err);
}

static int fill_outcome(const struct prun *r, const struct qbo_created *doc,
                        struct action_outcome *out, struct api_error *err)
{
    /* the total QuickBooks booked (checked equal to HubSpot's by action_verify_total) */
    out->total_cents = doc->has_total ? doc->total_cents : r->total_cents;
    snprintf(out->customer_id, sizeof out->customer_id, "%s", r->customer_id);
    out->created_customer = r->created_customer;
    if (action_outcome_fill(out, r->ctx->ev->action, doc, r->items, r->n, err) < 0)
        return -1;
    if (!doc->currency[0] && r->cur.code[0])
        snprintf(out->currency, sizeof out->currency, "%s", r->cur.code);
    return 0;
}

/* A created document whose total is not HubSpot's fails, naming it. */
static int verify(struct prun *r, const struct qbo_created *doc, const char *entity,
                  int64_t expected, struct action_outcome *out, struct api_error *err)
{
    if (action_verify_total(doc, entity, expected, -1, out, err) == 0)
        return 0;
    (void)r;
    snprintf(out->entity, sizeof out->entity, "%s", entity);
    snprintf(out->id, sizeof out->id, "%s", doc->id);
    return -1;
}

/* The writes of one round, for action_write_rematch(). */
struct round_arg {
    struct prun *r;
    struct qbo_created *doc;
    /* the expense's Purchase (NULL for a document): everything but the vendor is known;
     * its vendor_id points at vendor_id, filled by each round */
    struct purchase_body *pb;
    char *vendor_id;
};

static int doc_round(void *opaque, int round, struct api_error *err)
{
    struct round_arg *a = opaque;
    return write_doc(a->r, round, a->doc, err);
}

static int refresh_document_refs(void *opaque, struct api_error *err)
{
    return resolve_refs(((struct round_arg *)opaque)->r, err);
}

/* The expense's two accounts, into r->expense_id and r->from_id. */
static int expense_accounts(struct prun *r, struct api_error *err)
{
    const struct action_event *ev = r->ctx->ev;
    return resolve_account(&r->rc, ev->in.expense_account, r->expense_id, err) < 0 ||
                   resolve_account(&r->rc, ev->in.paid_from_account, r->from_id, err) < 0
               ? -1
               : 0;
}

static int refresh_expense_refs(void *opaque, struct api_error *err)
{
    return expense_accounts(((struct round_arg *)opaque)->r, err);
}

/* Sales receipt, paid invoice, refund receipt. */
static int run_document(struct prun *r, struct action_outcome *out, struct api_error *err)
{
    const struct action_ctx *ctx = r->ctx;
    struct qbo_created doc;
    struct round_arg a = {r, &doc, NULL, NULL};
    struct action_rematch m = {.write = doc_round, .opaque = &a, .out = out};

    if (read_lines(r, out, err) < 0 || check_qbo(r, out, err) < 0)
        return -1;
    m.contact = r->contact;
    m.items = &r->it;
    m.refs = r->refs;
    m.refresh = refresh_document_refs;
    if (action_write_rematch(ctx, &r->rc, &m, err) < 0 ||
        verify(r, &doc, event_action_qbo_entity(ctx->ev->action), r->total_cents, out, err) < 0)
        return -1;
    /* a paid invoice whose total is not the payment's gets no Payment (verify above) */
    if (ctx->ev->action == ACTION_CREATE_PAID_INVOICE &&
        (write_payment(r, &doc, out->payment_id, out, err) < 0 ||
         check_settled(r, &doc, out, err) < 0))
        return -1;
    return fill_outcome(r, &doc, out, err);
}

/* The expense's Purchase for round (1: after a 610), its vendor resolved first. */
static int expense_round(void *opaque, int round, struct api_error *err)
{
    struct round_arg *a = opaque;
    const struct action_ctx *ctx = a->r->ctx;
    const struct action_event *ev = ctx->ev;
    struct jbuf body;
    int created = 0, rc;

    if (ev->in.vendor && resolve_vendor(&a->r->rc, ev->in.vendor, a->vendor_id, &created, err) < 0)
        return -1;
    if (created)
        log_info("event %s: created vendor %s in realm %s", ev->id, a->vendor_id, ev->in.realm_id);
    jbuf_init(&body, QBO_BODY_MAX);
    if (payment_purchase_body(a->pb, &body) < 0) {
        jbuf_release(&body);
        return oom(err);
    }
    struct action_write w = {round ? "doc:r1" : "doc", "Purchase", jbuf_cstr(&body), body.len};
    rc = purchase_create_once(ctx, &w, a->r->date, a->doc, err);
    jbuf_release(&body);
    return rc;
}

static int run_expense(struct prun *r, struct action_outcome *out, struct api_error *err)
{
    const struct action_ctx *ctx = r->ctx;
    const struct action_event *ev = ctx->ev;
    static const char *const what[] = {"processing fees", "net amount", "amount"};
    char vendor_id[RESOLVE_ID_MAX] = "";
    char note[PAYMENT_NOTE_MAX], desc[DESC_MAX], cut[65];
    struct qbo_created doc;
    struct purchase_body pb;
    struct round_arg a = {r, &doc, &pb, vendor_id};
    /* a 610: the vendor's or an account's mapping is stale */
    struct action_rematch m = {.write = expense_round,
                               .opaque = &a,
                               .vendor = ev->in.vendor,
                               .refs = {.accounts = {ev->in.expense_account,
                                                     ev->in.paid_from_account}},
                               .refresh = refresh_expense_refs};
    int64_t amount;

    if (payment_expense_amount(&r->f, ev->in.amount_source, &amount, err) < 0 ||
        action_company(r->ctx, &r->co, err) < 0 ||
        action_hubspot_currency(r->f.currency, NULL, 0, "payment", ev->object_id,
                                r->hubspot_currency, err) < 0 ||
        action_currency_for(&r->co, r->hubspot_currency, &r->cur, &r->rc, err) < 0 ||
        action_exchange_rate(r->ctx, &r->cur, r->date, err) < 0 || expense_accounts(r, err) < 0)
        return -1;
    payment_private_note(ev, what[ev->in.amount_source], r->f.reference, note, sizeof note);
    utf8_copy(cut, sizeof cut, r->f.reference ? r->f.reference : "", 64);
    snprintf(desc, sizeof desc, "HubSpot payment %" PRId64 "%s%s%s %s", ev->object_id,
             cut[0] ? " (" : "", cut, cut[0] ? ")" : "", what[ev->in.amount_source]);
    pb = (struct purchase_body){
        .payment_type = ev->in.payment_type,
        .paid_from_id = r->from_id,
        .expense_id = r->expense_id,
        .vendor_id = ev->in.vendor ? vendor_id : NULL,
        .amount_cents = amount,
        .description = desc,
        .txn_date = r->date,
        .private_note = note,
        .cur = &r->cur,
    };
    if (action_budget_check(ctx,
                            &(struct action_plan){.lines = 1,
                                                  .vendors = ev->in.vendor != NULL,
                                                  .documents = 1},
                            err) < 0 ||
        action_write_rematch(ctx, &r->rc, &m, err) < 0 ||
        verify(r, &doc, "Purchase", amount, out, err) < 0)
        return -1;
    r->total_cents = amount;
    return fill_outcome(r, &doc, out, err);
}

static int payment_handles(enum hsqb_action a, enum hsqb_object_type t)
{
    return t == OBJECT_COMMERCE_PAYMENT &&
           (a == ACTION_CREATE_SALES_RECEIPT || a == ACTION_CREATE_PAID_INVOICE ||
            a == ACTION_CREATE_EXPENSE || a == ACTION_CREATE_REFUND_RECEIPT);
}

static int payment_run(const struct action_ctx *ctx, struct action_outcome *out,
                       struct api_error *err)
{
    struct prun r = {.ctx = ctx};
    int rc;

    api_error_clear(err);
    action_resolve_ctx(ctx, &r.rc);
    rc = read_payment(&r, err);
    if (rc == 0)
        rc = ctx->ev->action == ACTION_CREATE_EXPENSE ? run_expense(&r, out, err)
                                                      : run_document(&r, out, err);
    prun_release(&r);
    return rc;
}

const struct action_ops action_payment_ops = {
    .family = "payment",
    .handles = payment_handles,
    .run = payment_run,
};
