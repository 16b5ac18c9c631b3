/* action_sales.c - invoices, estimates and sales receipts from deals and quotes.
 *
 * The run is a straight line of steps (see action_sales.h for the order and why): every
 * check that can fail permanently without writing to QuickBooks comes first, so an event
 * that ends PRODUCT_NOT_FOUND, TERM_NOT_FOUND, NO_CONTACT or QBO_COMPANY_NOT_US leaves
 * nothing behind. Writes come last and each is idempotent on its own (resolve.c for
 * customers and items, action_create_once() for the document), so the pipeline re-runs
 * the whole action after any transient failure instead of tracking progress.
 *
 * A document create refused with fault 610 ("Object Not Found": a cached customer or item
 * was made inactive or deleted in QBO) drops the mappings, resolves afresh and creates
 * once more under a new step ("doc:r1"), whose requestid differs because the body does.
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

#include "common/hash.h"
#include "common/json.h"
#include "common/log.h"
#include "common/utf8.h"

#define NOTE_MAX          320
#define DESC_MAX          4000
#define ACTION_LOOKUP_MAX 1000 /* documents of one customer and day read to find ours */

int action_settings_from_config(struct action_settings *s, const struct config *cfg, char *errstr,
                                size_t errsz)
{
    const char *dep = config_get_str(cfg, "sales_receipt.deposit_account");
    const char *rnd = config_get_str(cfg, "money.rounding");

    memset(s, 0, sizeof *s);
    if (resolve_opts_from_config(&s->resolve, cfg, errstr, errsz) < 0)
        return -1;
    if (money_round_parse(rnd, &s->rounding) != MONEY_OK) {
        snprintf(errstr, errsz, "money.rounding: unknown mode");
        return -1;
    }
    if (dep && strlen(dep) >= sizeof s->deposit_account) {
        snprintf(errstr, errsz, "sales_receipt.deposit_account: too long");
        return -1;
    }
    snprintf(s->deposit_account, sizeof s->deposit_account, "%s", dep ? dep : "");
    {
        const char *item = config_get_str(cfg, "payments.default_item");
        if (item && strlen(item) >= sizeof s->payment_default_item) {
            snprintf(errstr, errsz, "payments.default_item: longer than %d bytes",
                     RESOLVE_ITEM_NAME_MAX);
            return -1;
        }
        snprintf(s->payment_default_item, sizeof s->payment_default_item, "%s",
                 item && *item ? item : "Services");
    }
    s->dedup_window_ms = config_get_ms(cfg, "dedup.window");
    if (s->dedup_window_ms <= 0)
        s->dedup_window_ms = 7LL * 24 * 3600 * 1000;
    return 0;
}

void action_outcome_release(struct action_outcome *o)
{
    if (!o)
        return;
    free(o->created_items);
    free(o->details_json);
    memset(o, 0, sizeof *o);
}

int action_outcome_fill(struct action_outcome *out, enum hsqb_action a,
                        const struct qbo_created *doc, const struct resolve_item *items, size_t n,
                        struct api_error *err)
{
    size_t i, nc = 0;

    snprintf(out->entity, sizeof out->entity, "%s", event_action_qbo_entity(a));
    if (!doc->id[0]) { /* qbo_created's fills never leave it so */
        api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 200,
                      "QuickBooks returned a %s without an Id", out->entity);
        return -1;
    }
    snprintf(out->id, sizeof out->id, "%s", doc->id);
    snprintf(out->doc_number, sizeof out->doc_number, "%s", doc->doc_number);
    snprintf(out->currency, sizeof out->currency, "%s", doc->currency[0] ? doc->currency : "USD");
    for (i = 0; i < n && items; i++)
        nc += items[i].created;
    if (!nc)
        return 0;
    out->created_items = calloc(nc, sizeof *out->created_items);
    if (!out->created_items) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 0, "out of memory");
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (!items[i].created)
            continue;
        snprintf(out->created_items[out->ncreated].id, RESOLVE_ID_MAX, "%s", items[i].id);
        snprintf(out->created_items[out->ncreated].name, RESOLVE_ITEM_NAME_MAX + 1, "%s",
                 items[i].name);
        out->ncreated++;
    }
    return 0;
}

int action_check_us_company(const struct action_ctx *ctx, struct api_error *err)
{
    struct qbo_company co;

    if (qbo_company_info(&ctx->io, ctx->qbo, ctx->ev->in.realm_id, &co, err) < 0)
        return -1;
    if (!co.is_us) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_QBO_COMPANY_NOT_US, 0,
                      "QuickBooks company %s is not a US company (country \"%s\"); these actions "
                      "serve US companies only",
                      ctx->ev->in.realm_id, co.country);
        return -1;
    }
    return 0;
}

void action_resolve_ctx(const struct action_ctx *ctx, struct resolve_ctx *rc)
{
    *rc = (struct resolve_ctx){
        .opts = &ctx->settings->resolve,
        .io = &ctx->io,
        .qbo = ctx->qbo,
        .realm = ctx->ev->in.realm_id,
        .portal_id = ctx->ev->portal_id,
        .event_id = ctx->ev->id,
    };
}

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

/* "<key>":<text>, text a money_*_format() result (st its status): always a JSON number,
 * so it goes out verbatim, exactly the decimal QBO is to book. */
static void kv_decimal(struct jbuf *jb, const char *key, enum money_err st, const char *text)
{
    jbuf_key(jb, key);
    if (st != MONEY_OK) {
        jbuf_fail(jb);
        return;
    }
    jbuf_raw(jb, text, strlen(text));
}

void action_json_money(struct jbuf *jb, const char *key, int64_t cents)
{
    char amt[MONEY_FMT_SIZE];
    kv_decimal(jb, key, money_format(cents, amt, sizeof amt), amt);
}

void action_json_ref(struct jbuf *jb, const char *key, const char *id)
{
    jbuf_key(jb, key);
    jbuf_obj_open(jb);
    jbuf_kv_str(jb, "value", id);
    jbuf_obj_close(jb);
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
    kv_decimal(jb, "Qty", money_qty_format(l->qty7, q, sizeof q), q);
    kv_decimal(jb, "UnitPrice", money_price_format(l->price7, p, sizeof p), p);
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

void sales_txn_date(const struct action_event *ev, int64_t now_ms, char out[11])
{
    time_t t = (time_t)((ev->time_ms > 0 ? ev->time_ms : now_ms) / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

/* ---- create once ------------------------------------------------------------------- */

/* 1 when the note is this event's: it ends with " hsqb event <id>" (ids hold no spaces,
 * so no other id can end the same way). */
static int note_is_ours(const char *note, const char *event_id)
{
    char want[EVENT_ID_MAX + 16];
    size_t n, w;

    if (!note)
        return 0;
    snprintf(want, sizeof want, " hsqb event %s", event_id);
    n = strlen(note);
    w = strlen(want);
    return n >= w && strcmp(note + n - w, want) == 0;
}

/* Set the "sent" marker; 1 when it was already there (or Redis could not say). */
static int sent_before(const struct action_ctx *ctx, const char *step, const char *entity)
{
    char key[REDIS_MAX_KEY + 1], ttl[24], e[256];
    redisReply *r;
    int before = 1;

    if (snprintf(key, sizeof key, "%sevt:{%s}:sent:%s", redis_conn_prefix(ctx->io.redis),
                 ctx->ev->id, step) >= (int)sizeof key)
        return 1;
    snprintf(ttl, sizeof ttl, "%" PRId64, ctx->settings->dedup_window_ms);
    r = redis_command(ctx->io.redis, e, sizeof e, "SET %s 1 NX PX %s", key, ttl);
    if (r && r->type == REDIS_REPLY_STATUS)
        before = 0; /* OK: we are the first to send this step */
    else if (!r)
        log_warn("event %s: marker for step %s not set (%s); looking the %s up first", ctx->ev->id,
                 step, e, entity);
    freeReplyObject(r);
    return before;
}

/* Our entity among those matching where: 1 with *found filled, 0 when there is none,
 * -1 with *err. Of several (two creates raced), the lowest Id, so every attempt settles
 * on the same one. */
static int find_ours(const struct action_ctx *ctx, const char *entity, const char *where,
                     size_t lookup_max, struct qbo_created *found, struct api_error *err)
{
    char sql[QBO_SQL_MAX];
    struct qbo_paging pg = {.max_rows = lookup_max};
    struct json_object *rows = NULL, *best = NULL;
    const char *bid = NULL;
    size_t i, n;
    int rc = 0;

    snprintf(sql, sizeof sql, "SELECT * FROM %s WHERE %s", entity, where);
    if (qbo_query_all(&ctx->io, ctx->qbo, ctx->ev->in.realm_id, sql, &pg, &rows, err) < 0)
        return -1;
    n = json_object_array_length(rows);
    for (i = 0; i < n; i++) {
        struct json_object *row = json_object_array_get_idx(rows, i);
        const char *note = NULL, *id = NULL;
        if (json_get_str(row, "Id", &id) != JGET_OK ||
            json_get_str(row, "PrivateNote", &note) != JGET_OK || !note_is_ours(note, ctx->ev->id))
            continue;
        if (!bid || strlen(id) < strlen(bid) ||
            (strlen(id) == strlen(bid) && strcmp(id, bid) < 0)) {
            bid = id;
            best = row;
        }
    }
    if (best)
        rc = qbo_created_from_json(best, entity, found, err) < 0 ? -1 : 1;
    json_object_put(rows);
    return rc;
}

int action_create_once_where(const struct action_ctx *ctx, const char *step, const char *entity,
                             const char *body, size_t body_len, const char *where,
                             size_t lookup_max, struct qbo_created *out, struct api_error *err)
{
    char rid[HASH_REQUEST_ID_MAX + 1];
    int found;

    api_error_clear(err);
    if (sent_before(ctx, step, entity) && where) {
        if ((found = find_ours(ctx, entity, where, lookup_max, out, err)) < 0)
            return -1;
        if (found) {
            log_info("event %s: %s already created by an earlier attempt; reusing it", ctx->ev->id,
                     entity);
            return 0;
        }
    }
    if (ioctx_claim_lost(&ctx->io)) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 0,
                      "the event's claim was lost before creating the %s", entity);
        return -1;
    }
    if (hash_request_id(ctx->ev->id, step, rid) < 0) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "requestid derivation failed");
        return -1;
    }
    return qbo_create_doc(&ctx->io, ctx->qbo,
                          &(struct qbo_req){ctx->ev->in.realm_id, entity, rid, body, body_len}, out,
                          err);
}

int action_create_once(const struct action_ctx *ctx, const char *step, const char *entity,
                       const char *body, size_t body_len, const char *customer_id,
                       const char *txn_date, struct qbo_created *out, struct api_error *err)
{
    char where[QBO_SQL_MAX], q[RESOLVE_ID_MAX + 8];
    int quoted = qbo_sql_quote(customer_id, q, sizeof q) >= 0;

    /* an unquotable id cannot be looked up: create (the requestid still dedups) */
    if (quoted)
        snprintf(where, sizeof where, "CustomerRef = %s AND TxnDate = '%s'", q, txn_date);
    return action_create_once_where(ctx, step, entity, body, body_len, quoted ? where : NULL,
                                    ACTION_LOOKUP_MAX, out, err);
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
static int check_qbo(struct run *r, size_t *nmissing, struct action_outcome *out,
                     struct api_error *err)
{
    const struct action_ctx *ctx = r->ctx;
    const struct action_event *ev = ctx->ev;
    const char *dep;
    char income[RESOLVE_ID_MAX];

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
    if (resolve_items_lookup(&r->rc, r->lis->items, r->lis->n, r->items, nmissing, err) < 0)
        return -1;
    if (*nmissing && !ev->in.create_missing_products) {
        resolve_items_missing(r->lis->items, r->lis->n, r->items, err, &out->details_json);
        return -1;
    }
    if (*nmissing && resolve_income_account(&r->rc, income, err) < 0)
        return -1;
    return 0;
}

static int fill_outcome(struct run *r, const struct qbo_created *doc, struct action_outcome *out,
                        struct api_error *err)
{
    out->total_cents = r->total_cents;
    snprintf(out->customer_id, sizeof out->customer_id, "%s", r->customer_id);
    out->created_customer = r->created_customer;
    return action_outcome_fill(out, r->ctx->ev->action, doc, r->items, r->lis->n, err);
}

/* Customer, missing items and the document: the writes. */
static int write_qbo(struct run *r, size_t nmissing, int round, struct qbo_created *doc,
                     struct api_error *err)
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
    if (nmissing && resolve_items_create(&r->rc, r->lis->items, r->lis->n, r->items, err) < 0)
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
        rc = action_create_once(ctx, round ? "doc:r1" : "doc", event_action_qbo_entity(ev->action),
                                jbuf_cstr(&body), body.len, r->customer_id, date, doc, err);
    }
    jbuf_release(&body);
    return rc;
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
    size_t nmissing = 0;
    int rc = -1, round;

    api_error_clear(err);
    action_resolve_ctx(ctx, &r.rc);
    if (read_hubspot(&r, err) < 0 || check_qbo(&r, &nmissing, out, err) < 0)
        goto out;
    for (round = 0; round < 2; round++) {
        if (write_qbo(&r, nmissing, round, &doc, err) == 0)
            break;
        if (round > 0 || strcmp(err->qbo_fault_code, "610") != 0)
            goto out;
        /* a cached customer or item is gone (inactive or deleted): match afresh */
        log_warn("event %s: QuickBooks says a referenced record is gone (%s); re-resolving",
                 ctx->ev->id, err->message);
        resolve_forget_customer(&r.rc, r.contact->id);
        resolve_forget_items(&r.rc, r.lis->items, r.lis->n);
        if (resolve_items_lookup(&r.rc, r.lis->items, r.lis->n, r.items, &nmissing, err) < 0)
            goto out;
        if (nmissing && !ctx->ev->in.create_missing_products) {
            resolve_items_missing(r.lis->items, r.lis->n, r.items, err, &out->details_json);
            goto out;
        }
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
