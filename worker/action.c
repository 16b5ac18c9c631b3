/* action.c - what every action family shares (see action.h): settings, the outcome, the
 * JSON members every body writes, the US-company check, the item lookup of a document's
 * lines, create-once, and the one "QBO 610 -> forget and match again" loop.
 *
 * The families (action_sales.c, action_payment.c) own the order of their steps and their
 * bodies; what they both need to be exactly-once lives here, once, so a fix to the
 * create-once lookup or to the 610 retry reaches every family.
 *
 * Create-once. A document's requestid is claim_request_id(event id, step); its
 * PrivateNote ends with " hsqb event <event id>"; a Redis marker
 * <prefix>evt:{<event id>}:sent:<step> is set (NX) before the first create is sent, and
 * when it already exists (a retry, a crash, a taken-over claim) the document is first
 * looked up (by the family's narrow WHERE and the PrivateNote suffix) and reused when
 * found: the requestid alone is not enough, since QBO forgets requestids after a while.
 *
 * The 610 loop. QBO answers fault 610 ("Object Not Found") when a record a cached mapping
 * points at was made inactive or deleted. The run then drops those mappings, matches
 * afresh and writes once more under new steps ("doc:r1"), whose requestids differ
 * because the bodies do:
 *
 *   write(round 0) --ok--> done
 *        |--fault 610--> forget customer / items / vendor, look the items up again
 *        |                  --> write(round 1) --ok--> done, else its failure
 *        `--other failure--> that failure
 */
#include "worker/action.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "worker/claim.h"
#include "worker/pricing.h"

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
    {
        const char *fee = config_get_str(cfg, "quotes.fee_item");
        const char *st = config_get_str(cfg, "quotes.allowed_statuses");
        if ((fee && strlen(fee) >= sizeof s->fee_item) ||
            (st && strlen(st) >= sizeof s->quote_statuses)) {
            snprintf(errstr, errsz, "quotes.fee_item or quotes.allowed_statuses: too long");
            return -1;
        }
        snprintf(s->fee_item, sizeof s->fee_item, "%s", fee && *fee ? fee : "Fees");
        snprintf(s->quote_statuses, sizeof s->quote_statuses, "%s",
                 st && *st ? st : "APPROVAL_NOT_NEEDED,APPROVED,ACCEPTED");
    }
    {
        struct settings_realm_pair z[ACTION_ZONES_MAX];
        char e[160];
        if (settings_realm_pairs("dates.time_zone_by_realm",
                                 config_get_str(cfg, "dates.time_zone_by_realm"), z,
                                 ACTION_ZONES_MAX, &s->nzones, errstr, errsz) < 0)
            return -1;
        for (size_t i = 0; i < s->nzones; i++) {
            memcpy(s->zones[i].realm, z[i].realm, sizeof z[i].realm);
            if (!(s->zones[i].zone = tz_zone_get(z[i].value, e, sizeof e))) {
                snprintf(errstr, errsz, "dates.time_zone_by_realm: %s", e);
                return -1;
            }
        }
    }
    s->dedup_window_ms = config_get_ms(cfg, "dedup.window");
    if (s->dedup_window_ms <= 0)
        s->dedup_window_ms = 7LL * 24 * 3600 * 1000;
    s->max_line_items = (size_t)config_get_int(cfg, "budget.max_line_items");
    s->max_qbo_writes = (size_t)config_get_int(cfg, "budget.max_qbo_writes");
    return 0;
}

void action_outcome_release(struct action_outcome *o)
{
    if (!o)
        return;
    free(o->created_items);
    free(o->details_json);
    *o = (struct action_outcome){0};
}

int action_outcome_fill(struct action_outcome *out, enum hsqb_action a,
                        const struct qbo_created *doc, const struct resolve_item *items, size_t n,
                        struct api_error *err)
{
    size_t i, nc = 0;

    snprintf(out->entity, sizeof out->entity, "%s", event_action_qbo_entity(a));
    if (!doc->id[0]) /* qbo_created's fills never leave it so */
        return qbo_error_no_id(err, "a", out->entity);
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

int action_company(const struct action_ctx *ctx, struct qbo_company *co, struct api_error *err)
{
    if (qbo_company_info(&ctx->io, ctx->qbo, ctx->ev->in.realm_id, co, err) < 0)
        return -1;
    if (!co->is_us) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_QBO_COMPANY_NOT_US, 0,
                      "QuickBooks company %s is not a US company (country \"%s\"); these actions "
                      "serve US companies only",
                      ctx->ev->in.realm_id, co->country);
        return -1;
    }
    return 0;
}

int action_time_zone(const struct action_ctx *ctx, const struct hubspot_ctx *hc,
                     const struct tz_zone **out, struct api_error *err)
{
    char name[HUBSPOT_TZ_MAX], e[160];

    *out = NULL;
    if (ctx->company && ctx->company->time_zone[0]) {
        /* the company's settings page; checked when saved, but this machine's zone
         * database may differ from the ingress's */
        if ((*out = tz_zone_get(ctx->company->time_zone, e, sizeof e)))
            return 0;
        log_warn("event %s: the company's time zone %s: %s; using the next default",
                 ctx->ev->id, ctx->company->time_zone, e);
    }
    for (size_t i = 0; i < ctx->settings->nzones; i++)
        if (strcmp(ctx->settings->zones[i].realm, ctx->ev->in.realm_id) == 0) {
            *out = ctx->settings->zones[i].zone;
            return 0;
        }
    if (hubspot_account_time_zone(&ctx->io, ctx->hubspot, hc, name, err) < 0) {
        if (err->cls == API_TRANSIENT || err->cls == API_THROTTLED)
            return -1;
        log_warn("event %s: the HubSpot portal's time zone is unavailable (%s); dating its "
                 "documents in UTC",
                 ctx->ev->id, err->message);
        api_error_clear(err);
        return 0;
    }
    if (name[0] && !(*out = tz_zone_get(name, e, sizeof e)))
        log_warn("event %s: time zone %s: %s; dating its documents in UTC", ctx->ev->id, name, e);
    return 0;
}

/* s as a currency code (three ASCII letters) upper-cased into out: 1, else 0. */
static int currency_code(const char *s, char out[4])
{
    if (!s || strlen(s) != 3)
        return 0;
    for (int i = 0; i < 3; i++) {
        if (!isalpha((unsigned char)s[i]))
            return 0;
        out[i] = (char)toupper((unsigned char)s[i]);
    }
    out[3] = '\0';
    return 1;
}

int action_hubspot_currency(const char *object_cur, const struct hubspot_line_item *li, size_t n,
                            const char *what, int64_t id, char out[4], struct api_error *err)
{
    char c[4];

    out[0] = '\0';
    if (object_cur && !currency_code(object_cur, out)) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, 0,
                      "%s %" PRId64 ": currency \"%.16s\" is not a three-letter code", what, id,
                      object_cur);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!li[i].currency)
            continue;
        if (!currency_code(li[i].currency, c)) {
            api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, 0,
                          "line item %" PRId64 ": currency \"%.16s\" is not a three-letter code",
                          li[i].id, li[i].currency);
            return -1;
        }
        if (!out[0]) {
            memcpy(out, c, 4);
        } else if (strcmp(out, c) != 0) {
            api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, 0,
                          "line item %" PRId64 " is in %s but %s %" PRId64 " is in %s: one "
                          "document has one currency",
                          li[i].id, c, what, id, out);
            return -1;
        }
    }
    return 0;
}

int action_currency_for(const struct qbo_company *co, const char *hubspot_cur,
                        struct action_currency *out, struct resolve_ctx *rc,
                        struct api_error *err)
{
    const char *home = co->home_currency[0] ? co->home_currency : "USD";

    memset(out, 0, sizeof *out);
    snprintf(out->code, sizeof out->code, "%s", hubspot_cur && *hubspot_cur ? hubspot_cur : home);
    out->foreign = strcmp(out->code, home) != 0;
    if (out->foreign && !co->multicurrency) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_CURRENCY_NOT_SUPPORTED, 0,
                      "the document is in %s but QuickBooks company \"%.80s\" keeps its books in "
                      "%s with multicurrency off; turn multicurrency on in QuickBooks to book it",
                      out->code, co->name, home);
        return -1;
    }
    if (rc && co->multicurrency) {
        rc->currency = out->code;
        rc->home_currency = co->home_currency[0] ? co->home_currency : "USD";
    }
    return 0;
}

#define RATES_MAX 16 /* distinct tax rate ids remembered within one call */

int action_line_taxes(const struct action_ctx *ctx, const struct hubspot_ctx *hc,
                      const struct hubspot_line_item *li, const struct sales_line *lines,
                      size_t n, int64_t *sum, struct api_error *err)
{
    struct rate_seen {
        const char *id;
        int64_t pct7;
    } seen[RATES_MAX];
    size_t nseen = 0;
    char e[256];

    *sum = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t pct7 = -1, t;
        if (pricing_line_needs_rate(&li[i])) {
            size_t k;
            for (k = 0; k < nseen && strcmp(seen[k].id, li[i].tax_rate_group_id) != 0; k++)
                ;
            if (k < nseen) {
                pct7 = seen[k].pct7;
            } else {
                if (hubspot_get_tax_rate(&ctx->io, ctx->hubspot, hc, li[i].tax_rate_group_id,
                                         &pct7, err) < 0)
                    return -1;
                if (nseen < RATES_MAX)
                    seen[nseen++] = (struct rate_seen){li[i].tax_rate_group_id, pct7};
            }
        }
        if (pricing_line_tax(&li[i], lines[i].amount_cents, pct7, ctx->settings->rounding, &t, e,
                             sizeof e) < 0) {
            api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, 0, "%s", e);
            return -1;
        }
        if (money_add(*sum, t, sum) != MONEY_OK) {
            api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, 0,
                          "the line items' tax is out of range");
            return -1;
        }
    }
    return 0;
}

int action_email_ok(const char *s)
{
    const char *at;
    size_t n = s ? strlen(s) : 0;

    if (n < 3 || n > 100 || !(at = strchr(s, '@')) || at == s || strchr(at + 1, '@') ||
        !strchr(at + 1, '.') || s[n - 1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f || s[i] == ',' || s[i] == ';')
            return 0;
    return 1;
}

int action_doc_number(const struct qbo_company *co, const char *preferred, char prefix,
                      int64_t object_id, int variant, char out[QBO_DOCNUMBER_MAX])
{
    char base[QBO_DOCNUMBER_MAX], suffix[8] = "";
    size_t n = preferred ? strlen(preferred) : 0, i, room;

    out[0] = '\0';
    if (variant < 0 || variant >= ACTION_DOCNUM_VARIANTS)
        return -1;
    if (!co || !co->custom_txn_numbers)
        return 0;
    for (i = 0; i < n && preferred[i] > ' ' && preferred[i] < 0x7f; i++)
        ;
    if (n && n <= ACTION_DOCNUM_MAX && i == n)
        memcpy(base, preferred, n + 1);
    else
        snprintf(base, sizeof base, "%c%" PRId64, prefix, object_id);
    if (variant > 0)
        snprintf(suffix, sizeof suffix, "-%d", variant + 1);
    room = ACTION_DOCNUM_MAX - strlen(suffix);
    if (strlen(base) > room)
        memmove(base, base + strlen(base) - room, room + 1); /* keep the distinct tail */
    /* base (<= room bytes) + suffix fits ACTION_DOCNUM_MAX < QBO_DOCNUMBER_MAX */
    n = strlen(base);
    memcpy(out, base, n);
    memcpy(out + n, suffix, strlen(suffix) + 1);
    return 0;
}

void action_doc_step(int round, int variant, char *out, size_t outsz)
{
    int n = snprintf(out, outsz, "%s", round ? "doc:r1" : "doc");
    if (variant > 0 && n >= 0 && (size_t)n < outsz)
        snprintf(out + n, outsz - (size_t)n, ":n%d", variant + 1);
}

int action_create_numbered(const struct action_ctx *ctx, const struct action_numbered *n,
                           struct qbo_created *out, struct api_error *err)
{
    struct jbuf body;
    int rc;

    for (int v = 0;; v++) {
        char num[QBO_DOCNUMBER_MAX], step[32];
        (void)action_doc_number(n->co, n->preferred, n->prefix, n->object_id, v, num);
        action_doc_step(n->round, v, step, sizeof step);
        jbuf_init(&body, QBO_BODY_MAX);
        if (n->body(n->opaque, num[0] ? num : NULL, &body) < 0) {
            api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 0, "out of memory");
            rc = -1;
        } else {
            struct action_write w = {step, n->entity, jbuf_cstr(&body), body.len};
            rc = action_create_once(ctx, &w, n->customer_id, n->txn_date, out, err);
        }
        jbuf_release(&body);
        if (rc == 0 || !num[0] || strcmp(err->qbo_fault_code, "6140") != 0 ||
            v + 1 >= ACTION_DOCNUM_VARIANTS)
            return rc;
        log_info("event %s: DocNumber %s is taken in QuickBooks; trying the next", ctx->ev->id,
                 num);
    }
}

int action_tax_check(const struct qbo_company *co, int64_t tax_cents, struct api_error *err)
{
    char t[MONEY_FMT_SIZE];

    if (tax_cents <= 0 || co->sales_tax)
        return 0;
    money_format(tax_cents, t, sizeof t);
    api_error_set(err, API_PERMANENT, HSQB_ERR_QBO_SALES_TAX_OFF, 0,
                  "HubSpot charges %s of tax but QuickBooks company \"%.80s\" does not use sales "
                  "tax; turn sales tax on in QuickBooks, or remove the tax in HubSpot",
                  t, co->name);
    return -1;
}

void action_json_tax_currency(struct jbuf *jb, const struct qbo_company *co, int64_t tax_cents,
                              const struct action_currency *cur)
{
    if (co && co->sales_tax) {
        jbuf_key(jb, "TxnTaxDetail");
        jbuf_obj_open(jb);
        action_json_money(jb, "TotalTax", tax_cents);
        jbuf_obj_close(jb);
    }
    if (cur && cur->foreign) {
        jbuf_key(jb, "CurrencyRef");
        jbuf_obj_open(jb);
        jbuf_kv_str(jb, "value", cur->code);
        jbuf_obj_close(jb);
        if (cur->rate[0]) {
            /* QBO's own decimal text, checked by qbo_exchange_rate() */
            jbuf_key(jb, "ExchangeRate");
            jbuf_raw(jb, cur->rate, strlen(cur->rate));
        }
    }
}

int action_exchange_rate(const struct action_ctx *ctx, struct action_currency *cur,
                         const char *date, struct api_error *err)
{
    cur->rate[0] = '\0';
    if (!cur->foreign)
        return 0;
    return qbo_exchange_rate(&ctx->io, ctx->qbo, ctx->ev->in.realm_id, cur->code, date, cur->rate,
                             err);
}

int action_verify_total(const struct qbo_created *doc, const char *entity, int64_t expected,
                        int64_t balance_expected, struct action_outcome *out,
                        struct api_error *err)
{
    char e[MONEY_FMT_SIZE], g[MONEY_FMT_SIZE] = "?", be[MONEY_FMT_SIZE], bg[MONEY_FMT_SIZE] = "?";
    int bal = balance_expected >= 0;
    struct jbuf jb;

    if (doc->has_total && doc->total_cents == expected &&
        (!bal || (doc->has_balance && doc->balance_cents == balance_expected)))
        return 0;
    money_format(expected, e, sizeof e);
    if (doc->has_total)
        money_format(doc->total_cents, g, sizeof g);
    if (bal) {
        money_format(balance_expected, be, sizeof be);
        if (doc->has_balance)
            money_format(doc->balance_cents, bg, sizeof bg);
    }
    jbuf_init(&jb, 4096);
    jbuf_obj_open(&jb);
    jbuf_kv_str(&jb, "qbo_id", doc->id);
    jbuf_kv_str(&jb, "entity", entity);
    jbuf_kv_str(&jb, "expected_total", e);
    jbuf_kv_str(&jb, "qbo_total", doc->has_total ? g : NULL);
    if (bal) {
        jbuf_kv_str(&jb, "expected_balance", be);
        jbuf_kv_str(&jb, "qbo_balance", doc->has_balance ? bg : NULL);
    }
    jbuf_obj_close(&jb);
    free(out->details_json);
    out->details_json = jbuf_cstr(&jb) ? strdup(jbuf_cstr(&jb)) : NULL;
    jbuf_release(&jb);
    if (bal && doc->has_total && doc->total_cents == expected)
        api_error_set(err, API_PERMANENT, HSQB_ERR_QBO_TOTAL_MISMATCH, 0,
                      "QuickBooks %s %s was created but its Balance is %s, not %s; fix or void it "
                      "in QuickBooks",
                      entity, doc->id, bg, be);
    else
        api_error_set(err, API_PERMANENT, HSQB_ERR_QBO_TOTAL_MISMATCH, 0,
                      "QuickBooks %s %s was created with TotalAmt %s but HubSpot's total is %s; "
                      "fix or void it in QuickBooks",
                      entity, doc->id, g, e);
    return -1;
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
        .generation = ctx->replay_generation,
        .income_account = ctx->ev->in.income_account,
        .company_income_account = ctx->company ? ctx->company->income_account : NULL,
    };
}

void action_json_decimal(struct jbuf *jb, const char *key, enum money_err st, const char *text)
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
    action_json_decimal(jb, key, money_format(cents, amt, sizeof amt), amt);
}

void action_json_ref(struct jbuf *jb, const char *key, const char *id)
{
    jbuf_key(jb, key);
    jbuf_obj_open(jb);
    jbuf_kv_str(jb, "value", id);
    jbuf_obj_close(jb);
}

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

/* Set the "sent" marker of the step (worker/claim.h); 1 when it was already there (or
 * Redis could not say: then look first, to be safe). */
static int sent_before(const struct action_ctx *ctx, const char *step, const char *entity)
{
    char e[256];
    int rc = claim_mark_sent(ctx->io.redis, ctx->ev->id, step, ctx->settings->dedup_window_ms, e,
                             sizeof e);

    if (rc < 0)
        log_warn("event %s: marker for step %s not set (%s); looking the %s up first", ctx->ev->id,
                 step, e, entity);
    return rc != 0;
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

/* 1 when err is QBO refusing a query statement (400 QueryValidationError / parser). */
static int query_refused(const struct api_error *err)
{
    return err->source == API_SOURCE_QBO && err->cls == API_PERMANENT &&
           err->code == HSQB_ERR_QBO_VALIDATION && err->http_status == 400;
}

int action_create_once_where(const struct action_ctx *ctx, const struct action_write *w,
                             const char *where, const char *wide, size_t lookup_max,
                             struct qbo_created *out, struct api_error *err)
{
    const char *step = w->step, *entity = w->entity;
    const char *tries[2] = {where, wide};
    char rid[CLAIM_REQUEST_ID_MAX + 1];
    int found = 0;

    api_error_clear(err);
    if (where && sent_before(ctx, step, entity)) {
        for (size_t i = 0; i < 2 && tries[i]; i++) {
            found = find_ours(ctx, entity, tries[i], i ? 10 * lookup_max : lookup_max, out, err);
            if (found >= 0)
                break;
            if (!query_refused(err))
                return -1;
            log_warn("event %s: QuickBooks refused the %s lookup \"%s\" (%s)%s", ctx->ev->id,
                     entity, tries[i], err->message,
                     i == 0 && wide ? "; trying a wider one"
                                    : "; creating with the same requestid, which QBO dedups");
            api_error_clear(err);
            found = 0;
        }
        if (found > 0) {
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
    if (claim_request_id_gen(ctx->ev->id, step, ctx->replay_generation, rid) < 0) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "requestid derivation failed");
        return -1;
    }
    return qbo_create_doc(
        &ctx->io, ctx->qbo,
        &(struct qbo_req){ctx->ev->in.realm_id, entity, rid, w->body, w->body_len}, out, err);
}

int action_create_once(const struct action_ctx *ctx, const struct action_write *w,
                       const char *customer_id, const char *txn_date, struct qbo_created *out,
                       struct api_error *err)
{
    char where[QBO_SQL_MAX], q[RESOLVE_ID_MAX + 8];
    int quoted = qbo_sql_quote(customer_id, q, sizeof q) >= 0;

    char wide[32];

    /* an unquotable id cannot be looked up narrowly (the wide lookup still can) */
    if (quoted)
        snprintf(where, sizeof where, "CustomerRef = %s AND TxnDate = '%s'", q, txn_date);
    snprintf(wide, sizeof wide, "TxnDate = '%s'", txn_date);
    return action_create_once_where(ctx, w, quoted ? where : wide, quoted ? wide : NULL,
                                    ACTION_LOOKUP_MAX, out, err);
}

/* ---- budgets ---------------------------------------------------------------------- */

int action_budget_lines(const struct action_ctx *ctx, size_t n, const char *what,
                        struct api_error *err)
{
    size_t max = ctx->settings->max_line_items;

    if (!max || n <= max)
        return 0;
    api_error_set(err, API_PERMANENT, HSQB_ERR_BUDGET_EXCEEDED, 0,
                  "%s has %zu lines, more than the %zu one document may have "
                  "(budget.max_line_items); nothing was created",
                  what, n, max);
    return -1;
}

int action_budget_check(const struct action_ctx *ctx, const struct action_plan *p,
                        struct api_error *err)
{
    size_t max = ctx->settings->max_qbo_writes;
    size_t n = p->customers + p->vendors + p->items + p->documents + p->sends;

    if (action_budget_lines(ctx, p->lines, "the document", err) < 0)
        return -1;
    if (!max || n <= max)
        return 0;
    api_error_set(err, API_PERMANENT, HSQB_ERR_BUDGET_EXCEEDED, 0,
                  "the event would make up to %zu QuickBooks writes (%zu products to create or "
                  "reactivate, %zu customer, %zu vendor, %zu documents, %zu email), more than "
                  "the %zu one event may make (budget.max_qbo_writes); nothing was created",
                  n, p->items, p->customers, p->vendors, p->documents, p->sends, max);
    return -1;
}

/* ---- the lines of a document ---------------------------------------------------------- */

int action_items_lookup(const struct resolve_ctx *rc, int create_missing, struct action_items *it,
                        struct action_outcome *out, struct api_error *err)
{
    if (resolve_items_lookup(rc, it->li, it->n, it->items, &it->nmissing, err) < 0)
        return -1;
    if (it->nmissing && !create_missing) {
        resolve_items_missing(it->li, it->n, it->items, err, &out->details_json);
        return -1;
    }
    return 0;
}

int action_items_check(const struct resolve_ctx *rc, int create_missing, struct action_items *it,
                       struct action_outcome *out, struct api_error *err)
{
    char income[RESOLVE_ID_MAX];

    if (action_items_lookup(rc, create_missing, it, out, err) < 0)
        return -1;
    if (it->nmissing && resolve_income_account(rc, income, err) < 0)
        return -1;
    return 0;
}

/* ---- the 610 loop ------------------------------------------------------------------------ */

int action_write_rematch(const struct action_ctx *ctx, const struct resolve_ctx *rc,
                         const struct action_rematch *m, struct api_error *err)
{
    for (int round = 0;; round++) {
        if (m->write(m->opaque, round, err) == 0)
            return 0;
        if (round > 0 || strcmp(err->qbo_fault_code, "610") != 0)
            return -1;
        /* a cached record is gone (inactive or deleted): match afresh */
        log_warn("event %s: QuickBooks says a referenced record is gone (%s); re-resolving",
                 ctx->ev->id, err->message);
        if (m->contact)
            resolve_forget_customer(rc, m->contact->id);
        if (m->vendor)
            resolve_forget_vendor(rc, m->vendor);
        resolve_forget_refs(rc, &m->refs);
        if (m->refresh && m->refresh(m->opaque, err) < 0)
            return -1;
        if (m->items) {
            resolve_forget_items(rc, m->items->li, m->items->n);
            if (action_items_lookup(rc, ctx->ev->in.create_missing_products, m->items, m->out,
                                    err) < 0)
                return -1;
        }
    }
}
