/* action_sales.c - invoices, estimates and sales receipts from deals and quotes: the
 * line money, the document bodies and the run; what the families share (create-once,
 * the US-company check, the item lookup, the 610 loop) is action.c's.
 *
 * The run is a straight line of steps (see action_sales.h for the order and why): every
 * check that can fail permanently without writing to QuickBooks comes first, so an event
 * that ends PRODUCT_NOT_FOUND, TERM_NOT_FOUND, NO_CONTACT or QBO_COMPANY_NOT_US leaves
 * nothing behind. Writes come last and each is idempotent on its own (resolve.c and
 * resolve_items.c for customers and items, action_create_once() for the document), so
 * the pipeline re-runs the whole action after any transient failure instead of tracking
 * progress.
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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/json.h"
#include "common/log.h"
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
    if (amount > SALES_LINE_MAX_CENTS) /* checked first: the fallback below must fit */
        return line_fail(errstr, errsz, li,
                         "amount is more than QuickBooks accepts on a line (99999999999.99)",
                         li->amount);
    memset(out, 0, sizeof *out);
    out->amount_cents = amount;
    if (money_unit_price_for(qty, amount, MONEY_PRICE_DECIMALS, &unit) == MONEY_OK) {
        out->qty7 = qty;
        out->price7 = unit;
    } else {
        /* no exact pair: Qty 1 x Amount is always exact (QBO rule 6070); amount is at
         * most SALES_LINE_MAX_CENTS, so the price stays within MONEY_PRICE_MAX */
        out->qty7 = MONEY_QTY_SCALE;
        out->price7 = amount * (MONEY_PRICE_SCALE / 100);
        out->qty_folded = 1;
    }
    return 0;
}

static void line_json(struct jbuf *jb, const struct hubspot_line_item *li,
                      const struct sales_line *l, const char *item_id, const char *tax_code)
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
    if (tax_code)
        action_json_ref(jb, "TaxCodeRef", tax_code);
    jbuf_obj_close(jb);
    jbuf_obj_close(jb);
}

/* The document's one discount: amount-based, so QBO books HubSpot's cents exactly (a
 * PercentBased line would have QBO round the percentage itself). */
static void discount_json(struct jbuf *jb, int64_t cents, const char *desc)
{
    jbuf_obj_open(jb);
    jbuf_kv_str(jb, "DetailType", "DiscountLineDetail");
    action_json_money(jb, "Amount", cents);
    if (desc && *desc)
        jbuf_kv_str(jb, "Description", desc);
    jbuf_key(jb, "DiscountLineDetail");
    jbuf_obj_open(jb);
    jbuf_kv_bool(jb, "PercentBased", 0);
    jbuf_obj_close(jb);
    jbuf_obj_close(jb);
}

void sales_doc_members(const struct sales_doc *d, struct jbuf *out)
{
    size_t i;

    action_json_ref(out, "CustomerRef", d->customer_id);
    jbuf_kv_str(out, "TxnDate", d->txn_date);
    if (d->doc_number)
        jbuf_kv_str(out, "DocNumber", d->doc_number);
    if (d->action == ACTION_CREATE_INVOICE && d->term_id)
        action_json_ref(out, "SalesTermRef", d->term_id);
    if (d->action == ACTION_CREATE_ESTIMATE && d->expiration_date)
        jbuf_kv_str(out, "ExpirationDate", d->expiration_date);
    if (d->action == ACTION_CREATE_SALES_RECEIPT && d->deposit_account_id)
        action_json_ref(out, "DepositToAccountRef", d->deposit_account_id);
    if (d->bill_email && d->action != ACTION_CREATE_SALES_RECEIPT) {
        jbuf_key(out, "BillEmail");
        jbuf_obj_open(out);
        jbuf_kv_str(out, "Address", d->bill_email);
        jbuf_obj_close(out);
    }
    if (d->bill_addr)
        resolve_address_json(out, "BillAddr", d->bill_addr);
    if (d->ship_addr)
        resolve_address_json(out, "ShipAddr", d->ship_addr);
    action_json_tax_currency(out, d->co, d->tax_cents, d->cur);
    jbuf_kv_str(out, "PrivateNote", d->private_note);
    jbuf_key(out, "Line");
    jbuf_arr_open(out);
    for (i = 0; i < d->n; i++)
        line_json(out, &d->li[i], &d->lines[i], d->item_ids[i],
                  !d->co || !d->co->sales_tax  ? NULL
                  : d->taxable && d->taxable[i] ? "TAX"
                                                : "NON");
    if (d->discount_cents > 0)
        discount_json(out, d->discount_cents, d->discount_desc);
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

void sales_txn_date(const struct action_event *ev, int64_t now_ms, const struct tz_zone *zone,
                    char out[11])
{
    if ((ev->time_ms > 0 && tz_local_date(zone, ev->time_ms, out) == 0) ||
        tz_local_date(zone, now_ms, out) == 0)
        return;
    memcpy(out, "1970-01-01", 11); /* neither is a date: the epoch, never garbage */
}

/* ---- the run ------------------------------------------------------------------------ */

#define FEE_DESC_MAX 300

struct run {
    const struct action_ctx *ctx;
    struct resolve_ctx rc;
    struct hubspot_object *obj;
    struct hubspot_contact *contact;
    struct hubspot_company *company; /* the deal's or quote's (lowest id); NULL = none */
    struct hubspot_line_items *lis;
    struct hubspot_price_terms *terms; /* quotes: discounts, fees, taxes (sorted) */
    struct pricing_applied *applied;   /* parallel to terms */
    struct pricing_totals totals;
    /* The document's lines: the line items, then one per quote fee (fee_li entries point
     * into fee_text). n of them; lines, items, item_ids and taxable are parallel. */
    struct hubspot_line_item *all;
    size_t n, nfees;
    char (*fee_text)[2][FEE_DESC_MAX];
    struct sales_line *lines;
    struct resolve_item *items;
    struct action_items it; /* all resolved into items */
    const char **item_ids;
    unsigned char *taxable;
    char discount_desc[FEE_DESC_MAX];
    char hubspot_currency[4];
    struct qbo_company co;
    struct action_currency cur;
    const struct tz_zone *zone; /* the documents' dates (action_time_zone); NULL = UTC */
    char term_id[RESOLVE_ID_MAX];
    char deposit_id[RESOLVE_ID_MAX];
    char customer_id[RESOLVE_ID_MAX];
    int created_customer;
    struct resolve_refs_used refs; /* what a 610 makes the run forget */
};

static void run_release(struct run *r)
{
    hubspot_object_free(r->obj);
    hubspot_contact_free(r->contact);
    hubspot_company_free(r->company);
    hubspot_line_items_free(r->lis);
    hubspot_price_terms_free(r->terms);
    free(r->applied);
    free(r->all); /* and the arrays alloc_lines() laid out after it */
}

static int run_oom(struct api_error *err)
{
    api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 0, "out of memory");
    return -1;
}

/* 1 when status is one of the comma-separated list ("*" = any). */
static int status_allowed(const char *list, const char *status)
{
    size_t n = status ? strlen(status) : 0;

    if (!list || !*list)
        list = "APPROVAL_NOT_NEEDED,APPROVED,ACCEPTED";
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        while (len && *p == ' ')
            p++, len--;
        while (len && p[len - 1] == ' ')
            len--;
        if ((len == 1 && *p == '*') || (n && len == n && strncasecmp(p, status, n) == 0))
            return 1;
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

static int check_quote_status(const struct run *r, struct api_error *err)
{
    const struct action_ctx *ctx = r->ctx;
    const char *st = hubspot_object_prop(r->obj, "hs_status");

    if (ctx->ev->object_type != OBJECT_QUOTE || status_allowed(ctx->settings->quote_statuses, st))
        return 0;
    api_error_set(err, API_PERMANENT, HSQB_ERR_QUOTE_STATUS_NOT_ALLOWED, 0,
                  "quote %" PRId64 " has status %.40s; only quotes with status %s are booked "
                  "(setting quotes.allowed_statuses)",
                  ctx->ev->object_id, st ? st : "(none)",
                  ctx->settings->quote_statuses[0] ? ctx->settings->quote_statuses
                                                   : "APPROVAL_NOT_NEEDED,APPROVED,ACCEPTED");
    return -1;
}

/* n bytes rounded up so that what follows them in one block is aligned for any type. */
static size_t align_up(size_t n)
{
    size_t a = _Alignof(max_align_t);
    return (n + a - 1) / a * a;
}

/* Room for the lines of the document: the line items, then one per quote fee. The
 * parallel arrays share one zeroed block (r->all first, freed with it): one allocation
 * per event instead of six. */
static int alloc_lines(struct run *r, struct api_error *err)
{
    size_t nli = r->lis->n, i, cap, o_fee, o_lines, o_items, o_ids, o_tax;
    char *b;

    r->nfees = 0;
    for (i = 0; r->terms && i < r->terms->n; i++)
        r->nfees += r->terms->items[i].kind == HUBSPOT_FEE;
    r->n = nli + r->nfees;
    cap = r->n ? r->n : 1; /* at most HUBSPOT_MAX_LINE_ITEMS + HUBSPOT_MAX_TERMS */
    o_fee = align_up(cap * sizeof *r->all);
    o_lines = o_fee + align_up((r->nfees ? r->nfees : 1) * sizeof *r->fee_text);
    o_items = o_lines + align_up(cap * sizeof *r->lines);
    o_ids = o_items + align_up(cap * sizeof *r->items);
    o_tax = o_ids + align_up(cap * sizeof *r->item_ids);
    if (!(b = calloc(1, o_tax + cap)))
        return run_oom(err);
    r->all = (struct hubspot_line_item *)(void *)b;
    r->fee_text = (char(*)[2][FEE_DESC_MAX])(void *)(b + o_fee);
    r->lines = (struct sales_line *)(void *)(b + o_lines);
    r->items = (struct resolve_item *)(void *)(b + o_items);
    r->item_ids = (const char **)(void *)(b + o_ids);
    r->taxable = (unsigned char *)(b + o_tax);
    memcpy(r->all, r->lis->items, nli * sizeof *r->all);
    r->it = (struct action_items){.li = r->all, .n = r->n, .items = r->items};
    return 0;
}

/* The fee lines, on the fee item, once the fees are priced. */
static void fee_lines(struct run *r)
{
    const struct action_ctx *ctx = r->ctx;
    const char *fee_item = ctx->company && ctx->company->fee_item[0] ? ctx->company->fee_item
                           : ctx->settings->fee_item[0]              ? ctx->settings->fee_item
                                                                     : "Fees";
    size_t nli = r->lis->n, i, k = 0;

    for (i = 0; r->terms && i < r->terms->n; i++) {
        const struct hubspot_price_term *t = &r->terms->items[i];
        char *amt = r->fee_text[k][0], *desc = r->fee_text[k][1], pct[MONEY_FMT_SIZE] = "";
        struct hubspot_line_item *li = &r->all[nli + k];
        if (t->kind != HUBSPOT_FEE)
            continue;
        money_format(r->applied[i].cents, amt, FEE_DESC_MAX);
        if (r->applied[i].percent)
            money_qty_format(r->applied[i].pct7, pct, sizeof pct);
        snprintf(desc, FEE_DESC_MAX, "%.200s%s%s%s", t->label ? t->label : "Fee",
                 pct[0] ? " (" : "", pct, pct[0] ? "%)" : "");
        *li = (struct hubspot_line_item){.id = t->id, .name = (char *)fee_item,
                                         .description = desc, .quantity = (char *)"1",
                                         .price = amt, .amount = amt};
        k++;
    }
}

/* The discount line's description: each discount's label and rate, in order. */
static void discount_text(struct run *r)
{
    size_t len = 0, i;

    r->discount_desc[0] = '\0';
    for (i = 0; r->terms && i < r->terms->n; i++) {
        const struct hubspot_price_term *t = &r->terms->items[i];
        char pct[MONEY_FMT_SIZE] = "";
        int w;
        if (t->kind != HUBSPOT_DISCOUNT)
            continue;
        if (r->applied[i].percent)
            money_qty_format(r->applied[i].pct7, pct, sizeof pct);
        w = snprintf(r->discount_desc + len, sizeof r->discount_desc - len, "%s%.100s%s%s%s",
                     len ? "; " : "", t->label ? t->label : "Discount", pct[0] ? " (" : "", pct,
                     pct[0] ? "%)" : "");
        if (w < 0 || (size_t)w >= sizeof r->discount_desc - len) {
            /* cut on a character boundary: the body must stay valid UTF-8 */
            r->discount_desc[utf8_cut_len(r->discount_desc, strlen(r->discount_desc),
                                          sizeof r->discount_desc - 1)] = '\0';
            break;
        }
        len += (size_t)w;
    }
}

/* Money: each line, the line taxes, the quote's discounts, fees and taxes, and the
 * quote's own total checked against them. Nothing read or written. */
static int compute_money(struct run *r, const struct hubspot_ctx *hc, struct action_outcome *out,
                         struct api_error *err)
{
    const struct action_ctx *ctx = r->ctx;
    const struct action_event *ev = ctx->ev;
    enum money_round rnd = ctx->settings->rounding;
    int64_t subtotal = 0, line_tax = 0, hs_total;
    int order_tax = r->obj->nterms[HUBSPOT_TAX] > 0;
    const char *qa;
    char e[256];
    size_t i, nli = r->lis->n;

    if (alloc_lines(r, err) < 0)
        return -1;
    for (i = 0; i < nli; i++) {
        const struct hubspot_line_item *li = &r->lis->items[i];
        if (sales_line_money(li, rnd, &r->lines[i], e, sizeof e) < 0) {
            api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, 0, "%s", e);
            return -1;
        }
        if (money_add(subtotal, r->lines[i].amount_cents, &subtotal) != MONEY_OK) {
            api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, 0,
                          "the document total is out of range");
            return -1;
        }
        /* HubSpot marks a taxable line by its tax rate; a quote's own taxes apply to the
         * whole quote (the reference's taxable rule) */
        r->taxable[i] = (unsigned char)(pricing_line_taxable(li) || order_tax);
    }
    if (action_line_taxes(ctx, hc, r->lis->items, r->lines, nli, &line_tax, err) < 0)
        return -1;
    if (r->terms)
        pricing_sort(r->terms->items, r->terms->n);
    if (pricing_apply(subtotal, line_tax, r->terms ? r->terms->items : NULL,
                      r->terms ? r->terms->n : 0, rnd, &r->totals, r->applied, e, sizeof e) < 0) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, 0, "%s", e);
        return -1;
    }
    fee_lines(r);
    for (i = nli; i < r->n; i++) {
        if (sales_line_money(&r->all[i], rnd, &r->lines[i], e, sizeof e) < 0) {
            api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, 0, "%s", e);
            return -1;
        }
        r->taxable[i] = (unsigned char)order_tax; /* fees come before the quote's taxes */
    }
    discount_text(r);
    if (ev->object_type != OBJECT_QUOTE || !(qa = hubspot_object_prop(r->obj, "hs_quote_amount")))
        return 0;
    if (money_parse(qa, rnd == MONEY_ROUND_NONE ? MONEY_ROUND_HALF_UP : rnd, &hs_total, NULL, 0) !=
        MONEY_OK) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, 0,
                      "quote %" PRId64 ": hs_quote_amount \"%.40s\" is not a decimal amount",
                      ev->object_id, qa);
        return -1;
    }
    if (hs_total != r->totals.total) {
        const struct pricing_totals *p = &r->totals;
        char a[6][MONEY_FMT_SIZE];
        struct jbuf jb;
        int64_t v[6] = {hs_total, p->total, p->subtotal, p->discount, p->fees,
                        p->order_tax + p->line_tax};
        static const char *const k[6] = {"hubspot_total", "computed_total", "line_items",
                                         "discounts", "fees", "taxes"};
        jbuf_init(&jb, 4096);
        jbuf_obj_open(&jb);
        for (int j = 0; j < 6; j++) {
            money_format(v[j], a[j], sizeof a[j]);
            jbuf_kv_str(&jb, k[j], a[j]);
        }
        jbuf_obj_close(&jb);
        free(out->details_json);
        out->details_json = jbuf_cstr(&jb) ? strdup(jbuf_cstr(&jb)) : NULL;
        jbuf_release(&jb);
        api_error_set(err, API_PERMANENT, HSQB_ERR_QUOTE_TOTAL_MISMATCH, 0,
                      "quote %" PRId64 " totals %s in HubSpot but its line items (%s), discounts "
                      "(%s), fees (%s) and taxes (%s) come to %s; nothing was booked",
                      ev->object_id, a[0], a[2], a[3], a[4], a[5], a[1]);
        return -1;
    }
    return 0;
}

/* HubSpot reads and the money: nothing written anywhere yet. */
static int read_hubspot_with(struct run *r, const struct hubspot_ctx *hc,
                             struct action_outcome *out, struct api_error *err)
{
    const struct action_ctx *ctx = r->ctx;
    const struct action_event *ev = ctx->ev;
    char what[48];
    int64_t contact_id;
    size_t nterms;

    if (hubspot_get_object(&ctx->io, ctx->hubspot, hc, ev->object_type, ev->object_id, &r->obj,
                           err) < 0)
        return -1;
    if (check_quote_status(r, err) < 0 || action_time_zone(ctx, hc, &r->zone, err) < 0)
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
    snprintf(what, sizeof what, "%s %" PRId64, object_type_name(ev->object_type), ev->object_id);
    if (action_budget_lines(ctx, r->obj->nline_items, what, err) < 0)
        return -1; /* before reading a thousand line items */
    if (hubspot_get_line_items(&ctx->io, ctx->hubspot, hc, r->obj->line_item_ids,
                               r->obj->nline_items, &r->lis, err) < 0)
        return -1;
    hubspot_line_items_order(r->lis->items, r->lis->n);
    if (hubspot_get_contact(&ctx->io, ctx->hubspot, hc, contact_id, &r->contact, err) < 0)
        return -1;
    if (r->obj->ncompanies > 0 &&
        hubspot_get_company(&ctx->io, ctx->hubspot, hc, r->obj->company_ids[0], &r->company,
                            err) < 0)
        return -1;
    nterms = r->obj->nterms[0] + r->obj->nterms[1] + r->obj->nterms[2];
    if (nterms) {
        if (hubspot_get_price_terms(&ctx->io, ctx->hubspot, hc, r->obj, &r->terms, err) < 0)
            return -1;
        if (!(r->applied = calloc(r->terms->n ? r->terms->n : 1, sizeof *r->applied)))
            return run_oom(err);
    }
    if (action_hubspot_currency(hubspot_object_prop(r->obj, ev->object_type == OBJECT_QUOTE
                                                                ? "hs_currency"
                                                                : "deal_currency_code"),
                                r->lis->items, r->lis->n, object_type_name(ev->object_type),
                                ev->object_id, r->hubspot_currency, err) < 0)
        return -1;
    return compute_money(r, hc, out, err);
}

/* The object, its line items and its contact (and company, and a quote's discounts,
 * fees and taxes). */
static int read_hubspot(struct run *r, struct action_outcome *out, struct api_error *err)
{
    struct hubspot_ctx hc = {r->ctx->ev->portal_id};

    return read_hubspot_with(r, &hc, out, err);
}

/* Company (US, currency, sales tax), term, deposit account, items (lookup only): still
 * nothing written. */
/* The term and deposit account the document uses (their inputs, for a 610's forgetting,
 * in r->refs); looked up again after a 610. */
static int resolve_refs(struct run *r, struct api_error *err)
{
    const struct action_ctx *ctx = r->ctx;
    const struct action_event *ev = ctx->ev;
    const char *dep = ev->in.deposit_to_account ? ev->in.deposit_to_account
                      : ctx->company && ctx->company->deposit_account[0]
                          ? ctx->company->deposit_account /* the company's settings page */
                      : ctx->settings->deposit_account[0] ? ctx->settings->deposit_account
                                                          : NULL;

    if (ev->action == ACTION_CREATE_INVOICE && ev->in.payment_terms) {
        r->refs.term = ev->in.payment_terms;
        if (resolve_term(&r->rc, ev->in.payment_terms, r->term_id, err) < 0)
            return -1;
    }
    if (ev->action == ACTION_CREATE_SALES_RECEIPT && dep) {
        r->refs.accounts[0] = dep;
        if (resolve_account(&r->rc, dep, r->deposit_id, err) < 0)
            return -1;
    }
    return 0;
}

static int refresh_refs(void *opaque, struct api_error *err);

/* The event's budget (action.h), from what the reads found: the last check before the
 * first write. */
static int check_budget(const struct run *r, struct api_error *err)
{
    const struct action_event *ev = r->ctx->ev;
    struct action_plan p = {
        .lines = r->n,
        .customers = 1,
        .items = resolve_items_writes(r->all, r->n, r->items),
        .documents = 1,
        .sends = ev->in.email_document &&
                 (ev->action == ACTION_CREATE_INVOICE || ev->action == ACTION_CREATE_ESTIMATE),
    };
    return action_budget_check(r->ctx, &p, err);
}

static int check_qbo(struct run *r, struct action_outcome *out, struct api_error *err)
{
    const struct action_ctx *ctx = r->ctx;
    const struct action_event *ev = ctx->ev;
    char date[11];

    sales_txn_date(ev, ctx->now_ms, r->zone, date);
    if (ev->in.email_document && !action_email_ok(r->contact->email)) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, 0,
                      "email_document: contact %" PRId64 " has no usable email address to send "
                      "the %s to; nothing was booked",
                      r->contact->id, event_action_qbo_entity(ev->action));
        return -1;
    }
    if (action_company(ctx, &r->co, err) < 0 ||
        action_currency_for(&r->co, r->hubspot_currency, &r->cur, &r->rc, err) < 0 ||
        action_tax_check(&r->co, r->totals.order_tax + r->totals.line_tax, err) < 0 ||
        action_exchange_rate(ctx, &r->cur, date, err) < 0 || resolve_refs(r, err) < 0)
        return -1;
    if (action_items_check(&r->rc, ev->in.create_missing_products, &r->it, out, err) < 0)
        return -1;
    r->refs.income = r->it.nmissing > 0;
    return check_budget(r, err);
}

/* The estimate's ExpirationDate: the date part of the quote's hs_expiration_date (an ISO
 * date or date-time), else none. */
static int expiration_date(const struct run *r, char out[11])
{
    const char *x = hubspot_object_prop(r->obj, "hs_expiration_date");

    if (r->ctx->ev->object_type != OBJECT_QUOTE || !x || strlen(x) < 10)
        return 0;
    for (int i = 0; i < 10; i++) {
        if ((i == 4 || i == 7) ? x[i] != '-' : (x[i] < '0' || x[i] > '9'))
            return 0;
    }
    if (x[10] != '\0' && x[10] != 'T')
        return 0;
    memcpy(out, x, 10);
    out[10] = '\0';
    return 1;
}

static int fill_outcome(struct run *r, const struct qbo_created *doc, struct action_outcome *out,
                        struct api_error *err)
{
    /* the total QuickBooks booked (checked equal to HubSpot's by verify_total) */
    out->total_cents = doc->has_total ? doc->total_cents : r->totals.total;
    snprintf(out->customer_id, sizeof out->customer_id, "%s", r->customer_id);
    out->created_customer = r->created_customer;
    if (action_outcome_fill(out, r->ctx->ev->action, doc, r->items, r->n, err) < 0)
        return -1;
    if (!doc->currency[0])
        snprintf(out->currency, sizeof out->currency, "%s", r->cur.code);
    return 0;
}

static int doc_body(void *opaque, const char *doc_number, struct jbuf *jb)
{
    struct sales_doc *d = opaque;
    d->doc_number = doc_number;
    return sales_doc_body(d, jb);
}

/* Customer, missing items and the document: the writes (round 1: after a 610). */
static int write_qbo(struct run *r, int round, struct qbo_created *doc, struct api_error *err)
{
    const struct action_ctx *ctx = r->ctx;
    const struct action_event *ev = ctx->ev;
    char note[NOTE_MAX], date[11], exp[11];
    struct action_numbered n;
    struct sales_doc d;
    size_t i;

    r->rc.company_name = r->company ? r->company->name : NULL;
    if (resolve_customer(&r->rc, r->contact, r->customer_id, &r->created_customer, err) < 0)
        return -1;
    if (resolve_items_reactivate(&r->rc, r->items, r->n, err) < 0 ||
        (r->it.nmissing && resolve_items_create(&r->rc, r->all, r->n, r->items, err) < 0))
        return -1;
    for (i = 0; i < r->n; i++)
        r->item_ids[i] = r->items[i].id;
    sales_private_note(ev, note, sizeof note);
    sales_txn_date(ev, ctx->now_ms, r->zone, date);
    d = (struct sales_doc){
        .action = ev->action,
        .customer_id = r->customer_id,
        .txn_date = date,
        .term_id = r->term_id[0] ? r->term_id : NULL,
        .deposit_account_id = r->deposit_id[0] ? r->deposit_id : NULL,
        /* invoices and estimates: where QBO sends them */
        .bill_email = action_email_ok(r->contact->email) ? r->contact->email : NULL,
        .private_note = note,
        .li = r->all,
        .lines = r->lines,
        .item_ids = r->item_ids,
        .n = r->n,
        .co = &r->co,
        .taxable = r->taxable,
        .tax_cents = r->totals.order_tax + r->totals.line_tax,
        .cur = &r->cur,
        .discount_cents = r->totals.discount,
        .discount_desc = r->discount_desc,
        .bill_addr = &r->contact->addr,
        .ship_addr = r->company ? &r->company->addr : NULL,
        .expiration_date = expiration_date(r, exp) ? exp : NULL,
    };
    /* with custom transaction numbers: the quote's own number, else the deal's */
    n = (struct action_numbered){
        .entity = event_action_qbo_entity(ev->action),
        .customer_id = r->customer_id,
        .txn_date = date,
        .co = &r->co,
        .preferred =
            ev->object_type == OBJECT_QUOTE ? hubspot_object_prop(r->obj, "hs_quote_number") : NULL,
        .prefix = ev->object_type == OBJECT_QUOTE ? 'Q' : 'D',
        .object_id = ev->object_id,
        .round = round,
        .body = doc_body,
        .opaque = &d,
    };
    return action_create_numbered(ctx, &n, doc, err);
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

static int refresh_refs(void *opaque, struct api_error *err)
{
    struct write_arg *a = opaque;
    return resolve_refs(a->r, err);
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
    if (read_hubspot(&r, out, err) < 0 || check_qbo(&r, out, err) < 0)
        goto out;
    m.contact = r.contact;
    m.items = &r.it;
    m.refs = r.refs;
    m.refresh = refresh_refs;
    if (action_write_rematch(ctx, &r.rc, &m, err) < 0)
        goto out;
    /* a document whose total is not HubSpot's is never reported as booked */
    if (action_verify_total(&doc, event_action_qbo_entity(ctx->ev->action), r.totals.total, -1,
                            out, err) < 0) {
        snprintf(out->entity, sizeof out->entity, "%s", event_action_qbo_entity(ctx->ev->action));
        snprintf(out->id, sizeof out->id, "%s", doc.id);
        goto out;
    }
    /* email_document: QBO sends it, unless an earlier attempt already had it sent (the
     * document QBO returns says so: EmailStatus) */
    if (ctx->ev->in.email_document && !doc.email_sent &&
        (ctx->ev->action == ACTION_CREATE_INVOICE || ctx->ev->action == ACTION_CREATE_ESTIMATE)) {
        if (qbo_send(&ctx->io, ctx->qbo, ctx->ev->in.realm_id,
                     event_action_qbo_entity(ctx->ev->action), doc.id, r.contact->email,
                     err) < 0)
            goto out;
    }
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
