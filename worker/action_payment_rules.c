/* action_payment_rules.c - what a payment action knows without I/O (see action_payment.h):
 * a HubSpot payment's facts (amounts, status, date in the company's zone, method), the
 * rules that refuse an action (status, full refund, taxable lines on a paid invoice), the
 * expense's amount, and the request bodies of the payment family's QuickBooks documents
 * (the sales receipt's or invoice's extras, the Payment linked to an invoice, the
 * Purchase). Pure: unit-tested on their own (test_action_payment) and used by the run in
 * action_payment.c.
 */
#include "worker/action_payment.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json.h"
#include "common/utf8.h"
#include "worker/action_sales.h" /* sales document members */

/* ---- facts and rules (pure) ---------------------------------------------------------- */

/* n ASCII digits at p into *v; 0 or -1. */
static int digits_at(const char *p, int n, int *v)
{
    int i, x = 0;
    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        x = x * 10 + (p[i] - '0');
    }
    *v = x;
    return 0;
}

int payment_date_utc(const char *s, char out[11])
{
    return payment_date_in(s, NULL, out);
}

int payment_date_in(const char *s, const struct tz_zone *zone, char out[11])
{
    struct tm tm = {0};
    int y = 0, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0, sign = 0, date_only = 0;
    const char *p;
    time_t t;
    size_t len;

    out[0] = '\0';
    if (!s || !*s)
        return -1;
    len = strlen(s);
    if (strspn(s, "0123456789") == len) { /* epoch milliseconds */
        if (len > 15)
            return -1;
        t = (time_t)(strtoll(s, NULL, 10) / 1000);
    } else {
        if (len < 10 || digits_at(s, 4, &y) < 0 || s[4] != '-' || digits_at(s + 5, 2, &mo) < 0 ||
            s[7] != '-' || digits_at(s + 8, 2, &d) < 0 || mo < 1 || mo > 12 || d < 1 || d > 31)
            return -1;
        p = s + 10;
        date_only = !*p;
        if (*p) {
            if ((*p != 'T' && *p != 't' && *p != ' ') || digits_at(p + 1, 2, &h) < 0 ||
                p[3] != ':' || digits_at(p + 4, 2, &mi) < 0 || p[6] != ':' ||
                digits_at(p + 7, 2, &sec) < 0 || h > 23 || mi > 59 || sec > 60)
                return -1;
            p += 9;
            if (*p == '.')
                for (p++; isdigit((unsigned char)*p); p++)
                    ;
            if (*p == 'Z' || *p == 'z') {
                p++;
            } else if (*p == '+' || *p == '-') {
                sign = *p == '-' ? -1 : 1;
                if (digits_at(p + 1, 2, &oh) < 0 || p[3] != ':' || digits_at(p + 4, 2, &om) < 0 ||
                    oh > 23 || om > 59)
                    return -1;
                p += 6;
            } else {
                return -1;
            }
            if (*p)
                return -1;
        }
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = sec;
        t = timegm(&tm) - (time_t)sign * (oh * 3600 + om * 60);
    }
    if (date_only) { /* a date without a time: that calendar day, in any zone */
        if (y < 1900)
            return -1;
        memcpy(out, s, 10);
        out[10] = '\0';
        return 0;
    }
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 1900 || tm.tm_year + 1900 > 9999)
        return -1;
    return tz_local_date(zone, (int64_t)t * 1000, out);
}

static int amount_prop(const struct hubspot_object *o, const char *name, enum money_round m,
                       int64_t *out, int *present, char *errstr, size_t errsz)
{
    const char *v = hubspot_object_prop(o, name);
    char e[128];

    *present = v != NULL;
    *out = 0;
    if (!v)
        return 0;
    if (money_parse(v, m, out, e, sizeof e) != MONEY_OK) {
        snprintf(errstr, errsz, "payment %" PRId64 ": %s is not an amount (%s)", o->id, name, e);
        return -1;
    }
    return 0;
}

int payment_facts_read(const struct hubspot_object *o, enum money_round rounding,
                       struct payment_facts *f, char *errstr, size_t errsz)
{
    enum money_round m = rounding == MONEY_ROUND_NONE ? MONEY_ROUND_HALF_UP : rounding;
    int has_initial, has_fees, has_refunds, has_net;

    memset(f, 0, sizeof *f);
    if (amount_prop(o, "hs_initial_amount", m, &f->initial_cents, &has_initial, errstr, errsz) <
            0 ||
        amount_prop(o, "hs_fees_amount", m, &f->fees_cents, &has_fees, errstr, errsz) < 0 ||
        amount_prop(o, "hs_refunds_amount", m, &f->refunds_cents, &has_refunds, errstr, errsz) <
            0 ||
        amount_prop(o, "hs_net_amount", m, &f->net_cents, &has_net, errstr, errsz) < 0)
        return -1;
    if (!has_initial) {
        snprintf(errstr, errsz, "payment %" PRId64 " has no hs_initial_amount", o->id);
        return -1;
    }
    if (f->initial_cents < 0 || f->fees_cents < 0 || f->refunds_cents < 0) {
        snprintf(errstr, errsz, "payment %" PRId64 " has a negative amount, fee or refund", o->id);
        return -1;
    }
    if (!has_net)
        f->net_cents = f->initial_cents - f->fees_cents - f->refunds_cents; /* all < 10^17 */
    f->status = hubspot_object_prop(o, "hs_latest_status");
    f->method = hubspot_object_prop(o, "hs_payment_method_type");
    f->reference = hubspot_object_prop(o, "hs_reference_number");
    f->currency = hubspot_object_prop(o, "hs_currency_code");
    payment_date_utc(hubspot_object_prop(o, "hs_initiated_date"), f->date);
    return 0;
}

int payment_check_status(enum hsqb_action a, const struct payment_facts *f, struct api_error *err)
{
    const char *st = f->status ? f->status : "";
    char ini[MONEY_FMT_SIZE], ref[MONEY_FMT_SIZE];

    switch (a) {
    case ACTION_CREATE_SALES_RECEIPT:
    case ACTION_CREATE_PAID_INVOICE:
        if (strcmp(st, "succeeded") == 0)
            return 0;
        api_error_set(err, API_PERMANENT, HSQB_ERR_PAYMENT_NOT_SUCCEEDED, 0,
                      "the payment's status is \"%.40s\"; a %s is recorded only for a "
                      "succeeded payment",
                      st, a == ACTION_CREATE_PAID_INVOICE ? "paid invoice" : "sales receipt");
        return -1;
    case ACTION_CREATE_EXPENSE:
        if (*st && strcmp(st, "processing") != 0 && strcmp(st, "failed") != 0)
            return 0;
        api_error_set(err, API_PERMANENT, HSQB_ERR_PAYMENT_NOT_SUCCEEDED, 0,
                      "the payment's status is \"%.40s\"; nothing was collected, so there is "
                      "no expense to record",
                      st);
        return -1;
    case ACTION_CREATE_REFUND_RECEIPT:
        if (strcmp(st, "refunded") == 0 && f->refunds_cents == f->initial_cents)
            return 0;
        money_format(f->initial_cents, ini, sizeof ini);
        money_format(f->refunds_cents, ref, sizeof ref);
        api_error_set(err, API_PERMANENT, HSQB_ERR_NOT_FULLY_REFUNDED, 0,
                      "the payment is not fully refunded (status \"%.40s\", %s of %s refunded); "
                      "a refund receipt needs status refunded and the whole amount refunded",
                      st, ref, ini);
        return -1;
    default:
        return 0;
    }
}

int payment_line_taxable(const struct hubspot_line_item *li)
{
    return li->tax_rate_group_id != NULL && li->tax_rate_group_id[0] != '\0';
}

int payment_taxable_failure(const struct hubspot_line_item *li, size_t n, struct api_error *err,
                            char **details_json)
{
    struct jbuf jb, msg;
    size_t i, ntax = 0;
    char idbuf[24];

    *details_json = NULL;
    for (i = 0; i < n; i++)
        ntax += payment_line_taxable(&li[i]) != 0;
    if (!ntax)
        return 0;
    jbuf_init(&jb, 64 * 1024);
    jbuf_init(&msg, 4096);
    jbuf_obj_open(&jb);
    jbuf_key(&jb, "line_items");
    jbuf_arr_open(&jb);
    for (i = 0, ntax = 0; i < n; i++) {
        char name[RESOLVE_ITEM_NAME_MAX + 1];
        if (!payment_line_taxable(&li[i]))
            continue;
        resolve_item_name(&li[i], name, sizeof name);
        snprintf(idbuf, sizeof idbuf, "%" PRId64, li[i].id);
        jbuf_obj_open(&jb);
        jbuf_kv_str(&jb, "id", idbuf);
        jbuf_kv_str(&jb, "name", name);
        jbuf_kv_str(&jb, "tax_rate_group_id", li[i].tax_rate_group_id);
        jbuf_obj_close(&jb);
        if (ntax++)
            jbuf_escape(&msg, ", ", 2);
        jbuf_escape(&msg, name, strlen(name));
    }
    jbuf_arr_close(&jb);
    jbuf_obj_close(&jb);
    api_error_set(err, API_PERMANENT, HSQB_ERR_TAXABLE_ITEMS_NOT_ALLOWED, 0,
                  "a paid invoice takes non-taxable line items only; %zu line item%s a tax rate: "
                  "%s (record the payment as a sales receipt instead)",
                  ntax, ntax == 1 ? " has" : "s have", jbuf_cstr(&msg) ? jbuf_cstr(&msg) : "");
    if (!jb.err && jbuf_cstr(&jb))
        *details_json = strdup(jbuf_cstr(&jb));
    jbuf_release(&jb);
    jbuf_release(&msg);
    return 1;
}

int payment_expense_amount(const struct payment_facts *f, enum expense_amount_source src,
                           int64_t *cents, struct api_error *err)
{
    int64_t v = src == AMOUNT_SOURCE_TOTAL ? f->initial_cents
                : src == AMOUNT_SOURCE_NET ? f->net_cents
                                           : f->fees_cents;
    char amt[MONEY_FMT_SIZE];

    if (v == 0) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_ZERO_AMOUNT, 0,
                      "the payment's %s amount is zero: there is no expense to record",
                      amount_source_name(src));
        return -1;
    }
    if (v < 0) {
        money_format(v, amt, sizeof amt);
        api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, 0,
                      "the payment's %s amount is %s; an expense cannot be negative",
                      amount_source_name(src), amt);
        return -1;
    }
    *cents = v;
    return 0;
}

const char *const *payment_method_names(const char *m)
{
    static const char *const cash[] = {"Cash", NULL};
    static const char *const check[] = {"Check", "Cheque", NULL};
    static const char *const card[] = {"Credit Card", "Card", NULL};
    static const char *const ach[] = {"ACH", "Bank Transfer", "EFT", NULL};
    static const char *const wire[] = {"Wire Transfer", "Wire", "Bank Transfer", NULL};
    static const char *const debit[] = {"Direct Debit", "Bank Transfer", NULL};
    static const char *const none[] = {NULL};

    if (!m)
        return none;
    if (strcmp(m, "cash") == 0)
        return cash;
    if (strcmp(m, "check") == 0)
        return check;
    if (strcmp(m, "card") == 0)
        return card;
    if (strcmp(m, "ach") == 0)
        return ach;
    if (strcmp(m, "wire_transfer") == 0)
        return wire;
    if (strcmp(m, "sepa") == 0 || strcmp(m, "bacs") == 0 || strcmp(m, "pads") == 0)
        return debit;
    return none;
}

void payment_private_note(const struct action_event *ev, const char *what, const char *reference,
                          char *out, size_t outsz)
{
    char ref[80], cut[65];

    ref[0] = '\0';
    if (reference) {
        utf8_copy(cut, sizeof cut, reference, 64);
        snprintf(ref, sizeof ref, " (%s)", cut);
    }
    snprintf(out, outsz, "HubSpot payment %" PRId64 "%s%s%s hsqb event %s", ev->object_id,
             what ? " " : "", what ? what : "", ref, ev->id);
}

/* ---- bodies (pure) ------------------------------------------------------------------- */

/* e's members into the object open in out. */
static void doc_extras(struct jbuf *out, const struct payment_extras *e)
{
    char r[PAYMENT_REF_MAX + 1];

    if (e->deposit_account_id)
        action_json_ref(out, "DepositToAccountRef", e->deposit_account_id);
    if (e->method_id)
        action_json_ref(out, "PaymentMethodRef", e->method_id);
    if (e->reference) {
        utf8_copy(r, sizeof r, e->reference, PAYMENT_REF_MAX);
        jbuf_kv_str(out, "PaymentRefNum", r);
    }
    if (e->due_date)
        jbuf_kv_str(out, "DueDate", e->due_date);
}

int payment_doc_body(const struct sales_doc *d, const struct payment_extras *e, struct jbuf *out)
{
    if (d->deposit_account_id && e->deposit_account_id) {
        jbuf_fail(out);
        return -1;
    }
    jbuf_obj_open(out);
    sales_doc_members(d, out);
    doc_extras(out, e);
    jbuf_obj_close(out);
    return out->err ? -1 : 0;
}

int payment_payment_body(const struct payment_body *b, struct jbuf *out)
{
    struct payment_extras x = b->x;

    x.due_date = NULL;
    jbuf_obj_open(out);
    action_json_ref(out, "CustomerRef", b->customer_id);
    action_json_money(out, "TotalAmt", b->amount_cents);
    jbuf_kv_str(out, "TxnDate", b->txn_date);
    jbuf_kv_str(out, "PrivateNote", b->private_note);
    action_json_tax_currency(out, NULL, 0, b->cur);
    doc_extras(out, &x);
    jbuf_key(out, "Line");
    jbuf_arr_open(out);
    jbuf_obj_open(out);
    action_json_money(out, "Amount", b->amount_cents);
    jbuf_key(out, "LinkedTxn");
    jbuf_arr_open(out);
    jbuf_obj_open(out);
    jbuf_kv_str(out, "TxnId", b->invoice_id);
    jbuf_kv_str(out, "TxnType", "Invoice");
    jbuf_obj_close(out);
    jbuf_arr_close(out);
    jbuf_obj_close(out);
    jbuf_arr_close(out);
    jbuf_obj_close(out);
    return out->err ? -1 : 0;
}

int payment_purchase_body(const struct purchase_body *b, struct jbuf *out)
{
    jbuf_obj_open(out);
    jbuf_kv_str(out, "PaymentType", payment_type_name(b->payment_type));
    action_json_ref(out, "AccountRef", b->paid_from_id);
    if (b->vendor_id) {
        jbuf_key(out, "EntityRef");
        jbuf_obj_open(out);
        jbuf_kv_str(out, "value", b->vendor_id);
        jbuf_kv_str(out, "type", "Vendor");
        jbuf_obj_close(out);
    }
    jbuf_kv_str(out, "TxnDate", b->txn_date);
    jbuf_kv_str(out, "PrivateNote", b->private_note);
    action_json_tax_currency(out, NULL, 0, b->cur);
    jbuf_key(out, "Line");
    jbuf_arr_open(out);
    jbuf_obj_open(out);
    jbuf_kv_str(out, "DetailType", "AccountBasedExpenseLineDetail");
    action_json_money(out, "Amount", b->amount_cents);
    if (b->description)
        jbuf_kv_str(out, "Description", b->description);
    jbuf_key(out, "AccountBasedExpenseLineDetail");
    jbuf_obj_open(out);
    action_json_ref(out, "AccountRef", b->expense_id);
    jbuf_obj_close(out);
    jbuf_obj_close(out);
    jbuf_arr_close(out);
    jbuf_obj_close(out);
    return out->err ? -1 : 0;
}
