/* action_sales.c - invoices, estimates and sales receipts from deals and quotes: the
 * line money, the document bodies and the run; what the families share (create-once,
 * the US-company check, the item lookup, the 610 loop) is action.c's.
 *
 * The run is a straight line of steps (see action_sales.h for the order and why): every
 * check that can fail permanently without writing to QuickBooks comes first, so an event
 * that ends PRODUCT_NOT_FOUND, TERM_NOT_FOUND, NO_CONTACT or QBO_COMPANY_NOT_US leaves
 * nothing behind. Writes come last and each is idempotent on its own (resolve.c for
 * customers and items, action_create_once() for the document), so the pipeline re-runs
 * the whole action after any transient failure instead of tracking progress.
 *
 * A document create refused with fault 610 ("Object Not Found": a cached customer or item
 * was made inactive or deleted in QBO) goes through action_write_rematch(): the mappings
 * are dropped, matched afresh, and the document created once more under step "doc:r1".
 *
 * Bodies are written straight as JSON text into a jbuf (common/json.h) rather than built
 * as json-c trees and serialised: a tree per create (a hash table per nested object, every
 * key copied) cost a few percent of the worker's CPU for nothing, and amounts go out as
 * the exact decimal text money_format() gives, never through a double. Answers likewise:
 * of a created document only Id, DocNumber and currency are read, into a struct
 * qbo_created (qbo_create_doc() reads the answer with the tape parser, no tree).
 */
#include "worker/action_sales.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json.h"
#include "common/utf8.h"

#define NOTE_MAX 320
#define DESC_MAX 4000

/* ---- pure mapping -------------------------------------------------------------------- */

static int line_fail(char *errstr, size_t errsz, const struct hubspot_line_item *li,
                     const char *what, const char *value)
{
    snprintf(errstr, errsz, "line item %" PRId64 ": %s%s%.40s%s", li->id, what, value ? " \"" : "",
             value ? value : "", value ? "\"" : "");
    return -1;
}

int sales_line_money(const struct hubspot_line_item *li, enum money_round rounding,
                     struct sales_line *out, char *errstr, size_t errsz)
{
    int64_t qty = MONEY_QTY_SCALE, price, amount, unit;

    if (li->quantity && money_qty_parse(li->quantity, &qty, NULL, 0) != MONEY_OK)
        return line_fail(errstr, errsz, li, "quantity is not a decimal number", li->quantity);
    if (qty < 0)
        return line_fail(errstr, errsz, li, "negative quantity", li->quantity);
    if (li->amount) {
        if (money_parse(li->amount, rounding == MONEY_ROUND_NONE ? MONEY_ROUND_HALF_UP : rounding,
                        &amount, NULL, 0) != MONEY_OK)
            return line_fail(errstr, errsz, li, "amount is not a decimal number", li->amount);
    } else if (li->price) {
        if (li->discount || li->discount_percentage || li->total_discount)
            return line_fail(errstr, errsz, li, "has a discount but no amount", NULL);
        if (money_price_parse(li->price, &price, NULL, 0) != MONEY_OK)
            return line_fail(errstr, errsz, li, "price is not a decimal number", li->price);
        if (money_mul(qty, price, rounding == MONEY_ROUND_NONE ? MONEY_ROUND_HALF_UP : rounding,
                      &amount) != MONEY_OK)
            return line_fail(errstr, errsz, li, "quantity x price is out of range", NULL);
    } else {
        return line_fail(errstr, errsz, li, "has neither amount nor price", NULL);
    }
    if (amount < 0)
        return line_fail(errstr, errsz, li, "negative amount", li->amount);
    memset(out, 0, sizeof *out);
    out->amount_cents = amount;
    if (money_unit_price_for(qty, amount, MONEY_PRICE_DECIMALS, &unit) == MONEY_OK) {
        out->qty7 = qty;
        out->price7 = unit;
    } else {
        /* no exact pair: Qty 1 x Amount is always exact (QBO rule 6070) */
        out->qty7 = MONEY_QTY_SCALE;
        out->price7 = amount * (MONEY_PRICE_SCALE / 100);
        out->qty_folded = 1;
    }
    return 0;
}

static void line_json(struct jbuf *jb, const struct hubspot_line_item *li,
                      const struct sales_line *l, const char *item_id)
{
    char amt[MONEY_FMT_SIZE], q[MONEY_FMT_SIZE], p[MONEY_FMT_SIZE], desc[DESC_MAX + 1];
    const char *base = li->description ? li->description : li->name;
    size_t n;

    money_format(l->amount_cents, amt, sizeof amt);
    /* cut on a character boundary: the body must stay valid UTF-8 */
    n = base ? utf8_cut_len(base, strnlen(base, DESC_MAX + 1), DESC_MAX) : 0;
    if (n)
        memcpy(desc, base, n);
    desc[n] = '\0';
    if (l->qty_folded) {
        /* keep what HubSpot said, since Qty/UnitPrice had to be 1 x Amount */
        char tail[128];
        snprintf(tail, sizeof tail, "%squantity %.40s at %.40s", desc[0] ? " - " : "",
                 li->quantity ? li->quantity : "1", li->price ? li->price : amt);
        n = utf8_cut_len(desc, strlen(desc), DESC_MAX - strlen(tail));
        snprintf(desc + n, sizeof desc - n, "%s", tail);
    }
    jbuf_obj_open(jb);
    jbuf_kv_str(jb, "DetailType", "SalesItemLineDetail");
    action_json_money(jb, "Amount", l->amount_cents);
    if (desc[0])
        jbuf_kv_str(jb, "Description", desc);
    jbuf_key(jb, "SalesItemLineDetail");
    jbuf_obj_open(jb);
    action_json_ref(jb, "ItemRef", item_id);
    action_json_decimal(jb, "Qty", money_qty_format(l->qty7, q, sizeof q), q);
    action_json_decimal(jb, "UnitPrice", money_price_format(l->price7, p, sizeof p), p);
    jbuf_obj_close(jb);
    jbuf_obj_close(jb);
}

void sales_doc_members(const struct sales_doc *d, struct jbuf *out)
{
    size_t i;

    action_json_ref(out, "CustomerRef", d->customer_id);
    jbuf_kv_str(out, "TxnDate", d->txn_date);
    if (d->action == ACTION_CREATE_INVOICE && d->term_id)
        action_json_ref(out, "SalesTermRef", d->term_id);
    if (d->action == ACTION_CREATE_SALES_RECEIPT && d->deposit_account_id)
        action_json_ref(out, "DepositToAccountRef", d->deposit_account_id);
    if (d->bill_email && d->action != ACTION_CREATE_SALES_RECEIPT) {
        jbuf_key(out, "BillEmail");
        jbuf_obj_open(out);
        jbuf_kv_str(out, "Address", d->bill_email);
        jbuf_obj_close(out);
    }
    jbuf_kv_str(out, "PrivateNote", d->private_note);
    jbuf_key(out, "Line");
    jbuf_arr_open(out);
    for (i = 0; i < d->n; i++)
        line_json(out, &d->li[i], &d->lines[i], d->item_ids[i]);
    jbuf_arr_close(out);
}

int sales_doc_body(const struct sales_doc *d, struct jbuf *out)
{
    jbuf_obj_open(out);
    sales_doc_members(d, out);
    jbuf_obj_close(out);
    return out->err ? -1 : 0;
}

void sales_private_note(const struct action_event *ev, char *out, size_t outsz)
{
    snprintf(out, outsz, "HubSpot %s %" PRId64 " hsqb event %s",
             ev->object_type == OBJECT_QUOTE  ? "quote"
             : ev->object_type == OBJECT_DEAL ? "deal"
                                              : "payment",
             ev->object_id, ev->id);
}

/* "YYYY-MM-DD" (UTC) of ms into out: 1, or 0 (out untouched) outside years 1..9999. */
static int utc_date(int64_t ms, char out[11])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char buf[16];

    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999 ||
        strftime(buf, sizeof buf, "%Y-%m-%d", &tm) != 10)
        return 0;
    memcpy(out, buf, 11);
    return 1;
}

void sales_txn_date(const struct action_event *ev, int64_t now_ms, char out[11])
{
    if ((ev->time_ms > 0 && utc_date(ev->time_ms, out)) || utc_date(now_ms, out))
        return;
    memcpy(out, "1970-01-01", 11); /* neither is a date: the epoch, never garbage */
}

/* ---- the run ------------------------------------------------------------------------ */

struct run {
    const struct action_ctx *ctx;
    struct resolve_ctx rc;
    struct hubspot_object *obj;
    struct hubspot_contact *contact;
    struct hubspot_line_items *lis;
    struct sales_line *lines;
    struct resolve_item *items;
    struct action_items it; /* lis->items resolved into items */
    const char **item_ids;
    char term_id[RESOLVE_ID_MAX];
    char deposit_id[RESOLVE_ID_MAX];
    char customer_id[RESOLVE_ID_MAX];
    int created_customer;
    int64_t total_cents;
};

static void run_release(struct run *r)
{
    hubspot_object_free(r->obj);
    hubspot_contact_free(r->contact);
    hubspot_line_items_free(r->lis);
    free(r->lines);
    free(r->items);
    free(r->item_ids);
}

/* HubSpot reads and the money of every line: nothing written anywhere yet. */
static int read_hubspot_with(struct run *r, const struct hubspot_ctx *hc, struct api_error *err)
{
    const struct action_ctx *ctx = r->ctx;
    const struct action_event *ev = ctx->ev;
    int64_t contact_id;
    char e[256];
    size_t i, n;

    if (hubspot_get_object(&ctx->io, ctx->hubspot, hc, ev->object_type, ev->object_id, &r->obj,
                           err) < 0)
        return -1;
    if (ev->in.customer_source == CUSTOMER_CONTACT_ID) {
        contact_id = ev->in.customer_contact_id;
    } else if (r->obj->ncontacts > 0) {
        contact_id = r->obj->contact_ids[0]; /* lowest id: the documented "first" */
    } else {
        api_error_set(err, API_PERMANENT, HSQB_ERR_NO_CONTACT, 0,
                      "%s %" PRId64 " has no associated contact", object_type_name(ev->object_type),
                      ev->object_id);
        return -1;
    }
    if (r->obj->nline_items == 0) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_NO_LINE_ITEMS, 0,
                      "%s %" PRId64 " has no associated line items",
                      object_type_name(ev->object_type), ev->object_id);
        return -1;
    }
    if (hubspot_get_line_items(&ctx->io, ctx->hubspot, hc, r->obj->line_item_ids,
                               r->obj->nline_items, &r->lis, err) < 0)
        return -1;
    if (hubspot_get_contact(&ctx->io, ctx->hubspot, hc, contact_id, &r->contact, err) < 0)
        return -1;
    n = r->lis->n;
    r->lines = calloc(n ? n : 1, sizeof *r->lines);
    r->items = calloc(n ? n : 1, sizeof *r->items);
    r->item_ids = calloc(n ? n : 1, sizeof *r->item_ids);
    if (!r->lines || !r->items || !r->item_ids) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 0, "out of memory");
        return -1;
    }
    r->it = (struct action_items){.li = r->lis->items, .n = n, .items = r->items};
    r->total_cents = 0;
    for (i = 0; i < n; i++) {
        if (sales_line_money(&r->lis->items[i], ctx->settings->rounding, &r->lines[i], e,
                             sizeof e) < 0) {
            api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, 0, "%s", e);
            return -1;
        }
        if (money_add(r->total_cents, r->lines[i].amount_cents, &r->total_cents) != MONEY_OK) {
            api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, 0,
                          "the document total is out of range");
            return -1;
        }
    }
    return 0;
}

/* The object, its line items and its contact: three reads, admitted by the portal's rate
 * limiter in one round trip (hubspot_ctx.prefetch). */
static int read_hubspot(struct run *r, struct api_error *err)
{
    const struct action_ctx *ctx = r->ctx;
    struct ratelimit_prefetch pf = {.expect = 3};
    struct hubspot_ctx hc = {ctx->ev->portal_id, &pf};
    int rc = read_hubspot_with(r, &hc, err);

    hubspot_ctx_done(&ctx->io, ctx->hubspot, &hc);
    return rc;
}

/* Company, term, deposit account, items (lookup only): still nothing written. */
static int check_qbo(struct run *r, struct action_outcome *out, struct api_error *err)
{
    const struct action_ctx *ctx = r->ctx;
    const struct action_event *ev = ctx->ev;
    const char *dep;

    if (action_check_us_company(ctx, err) < 0)
        return -1;
    if (ev->action == ACTION_CREATE_INVOICE && ev->in.payment_terms &&
        resolve_term(&r->rc, ev->in.payment_terms, r->term_id, err) < 0)
        return -1;
    dep = ev->in.deposit_to_account           ? ev->in.deposit_to_account
          : ctx->settings->deposit_account[0] ? ctx->settings->deposit_account
                                              : NULL;
    if (ev->action == ACTION_CREATE_SALES_RECEIPT && dep &&
        resolve_account(&r->rc, dep, r->deposit_id, err) < 0)
        return -1;
    return action_items_check(&r->rc, ev->in.create_missing_products, &r->it, out, err);
}

static int fill_outcome(struct run *r, const struct qbo_created *doc, struct action_outcome *out,
                        struct api_error *err)
{
    out->total_cents = r->total_cents;
    snprintf(out->customer_id, sizeof out->customer_id, "%s", r->customer_id);
    out->created_customer = r->created_customer;
    return action_outcome_fill(out, r->ctx->ev->action, doc, r->items, r->lis->n, err);
}

/* Customer, missing items and the document: the writes (round 1: after a 610). */
static int write_qbo(struct run *r, int round, struct qbo_created *doc, struct api_error *err)
{
    const struct action_ctx *ctx = r->ctx;
    const struct action_event *ev = ctx->ev;
    char note[NOTE_MAX], date[11];
    struct sales_doc d;
    struct jbuf body;
    size_t i;
    int rc;

    if (resolve_customer(&r->rc, r->contact, r->customer_id, &r->created_customer, err) < 0)
        return -1;
    if (r->it.nmissing && resolve_items_create(&r->rc, r->lis->items, r->lis->n, r->items, err) < 0)
        return -1;
    for (i = 0; i < r->lis->n; i++)
        r->item_ids[i] = r->items[i].id;
    sales_private_note(ev, note, sizeof note);
    sales_txn_date(ev, ctx->now_ms, date);
    d = (struct sales_doc){
        .action = ev->action,
        .customer_id = r->customer_id,
        .txn_date = date,
        .term_id = r->term_id[0] ? r->term_id : NULL,
        .deposit_account_id = r->deposit_id[0] ? r->deposit_id : NULL,
        .bill_email = NULL,
        .private_note = note,
        .li = r->lis->items,
        .lines = r->lines,
        .item_ids = r->item_ids,
        .n = r->lis->n,
    };
    jbuf_init(&body, QBO_BODY_MAX);
    if (sales_doc_body(&d, &body) < 0) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 0, "out of memory");
        rc = -1;
    } else {
        struct action_write w = {round ? "doc:r1" : "doc", event_action_qbo_entity(ev->action),
                                 jbuf_cstr(&body), body.len};
        rc = action_create_once(ctx, &w, r->customer_id, date, doc, err);
    }
    jbuf_release(&body);
    return rc;
}

struct write_arg {
    struct run *r;
    struct qbo_created *doc;
};

static int write_round(void *opaque, int round, struct api_error *err)
{
    struct write_arg *a = opaque;
    return write_qbo(a->r, round, a->doc, err);
}

static int sales_handles(enum hsqb_action a, enum hsqb_object_type t)
{
    return (a == ACTION_CREATE_INVOICE || a == ACTION_CREATE_ESTIMATE ||
            a == ACTION_CREATE_SALES_RECEIPT) &&
           (t == OBJECT_DEAL || t == OBJECT_QUOTE);
}

static int sales_run(const struct action_ctx *ctx, struct action_outcome *out,
                     struct api_error *err)
{
    struct run r = {.ctx = ctx};
    struct qbo_created doc;
    struct write_arg wa = {&r, &doc};
    struct action_rematch m = {.write = write_round, .opaque = &wa, .out = out};
    int rc = -1;

    api_error_clear(err);
    action_resolve_ctx(ctx, &r.rc);
    if (read_hubspot(&r, err) < 0 || check_qbo(&r, out, err) < 0)
        goto out;
    m.contact = r.contact;
    m.items = &r.it;
    if (action_write_rematch(ctx, &r.rc, &m, err) < 0)
        goto out;
    rc = fill_outcome(&r, &doc, out, err);
out:
    run_release(&r);
    return rc;
}

const struct action_ops action_sales_ops = {
    .family = "sales",
    .handles = sales_handles,
    .run = sales_run,
};
