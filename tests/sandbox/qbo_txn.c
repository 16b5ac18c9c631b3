/* qbo_txn.c - the rules of QBO transactions: the sales documents (Invoice, Estimate,
 * SalesReceipt, RefundReceipt: one builder), Payment and Purchase.
 *
 * Each builder fills what QBO fills (DocNumber, TxnDate, DueDate from the terms,
 * DepositToAccountRef, CurrencyRef, the customer's addresses, line Ids, the trailing
 * subtotal line), computes every amount in exact decimals (qbo_query.h, never doubles)
 * and answers the faults QBO answers: 6070 amount != Qty x UnitPrice, 6140 duplicate
 * DocNumber, 2500 unknown reference, 6000 business rules (payment over the open balance,
 * refund from a non-cash account, ...). Builders change only the entity being built (and
 * the DocNumber counter); the one effect on other entities, a payment moving invoice
 * balances and links (design choice #18), is qbo_apply_payment(), which the write
 * pipeline (qbo_rules.c) calls at commit, on delete and on void. Runs under qbo.c's lock.
 */
#include "common/clock.h"
#include "tests/sandbox/qbo_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Writable top-level properties per kind (strict_fields), as space-separated words. */
#define TXN_FIELDS                                                                                 \
    "DocNumber TxnDate PrivateNote TxnStatus LinkedTxn Line TxnTaxDetail CurrencyRef "             \
    "ExchangeRate DepartmentRef TxnSource GlobalTaxCalculation ProjectRef HomeTotalAmt "           \
    "TotalAmt CustomField ClassRef RecurDataRef TransactionLocationType TaxExemptionRef "          \
    "AttachableRef "

const char qbo_fields_sales[] =
    TXN_FIELDS "CustomerRef CustomerMemo BillAddr ShipAddr ShipFromAddr FreeFormAddress "
               "SalesTermRef DueDate ShipMethodRef ShipDate TrackingNum PrintStatus EmailStatus "
               "BillEmail BillEmailCc BillEmailBcc Balance HomeBalance ApplyTaxAfterDiscount "
               "DepositToAccountRef AllowIPNPayment AllowOnlinePayment "
               "AllowOnlineCreditCardPayment AllowOnlineACHPayment Deposit DeliveryInfo "
               "InvoiceLink PaymentMethodRef PaymentRefNum PaymentType CreditCardPayment "
               "CheckPayment ExpirationDate AcceptedBy AcceptedDate RemainingCredit";
const char qbo_fields_payment[] =
    TXN_FIELDS "CustomerRef DepositToAccountRef PaymentMethodRef PaymentRefNum PaymentType "
               "CreditCardPayment UnappliedAmt ProcessPayment ARAccountRef";
const char qbo_fields_purchase[] =
    TXN_FIELDS "AccountRef PaymentType EntityRef Credit RemitToAddr PrintStatus "
               "PaymentMethodRef PurchaseEx IncludeInAnnualTPAR";

/* ---- dates ---------------------------------------------------------------------------- */

static void today(const struct realm *r, char *buf, size_t bufsz)
{
    time_t t = (time_t)(clock_wall_ms() / 1000 + r->utc_offset_min * 60);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, bufsz, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

/* YYYY-MM-DD strictly (a real calendar day); 0 or -1. */
static int parse_date(const char *s, struct tm *out)
{
    struct tm tm = {0};
    int y, m, d;
    char tail;
    if (!s || strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    time_t t = timegm(&tm);
    gmtime_r(&t, &tm);
    if (tm.tm_year != y - 1900 || tm.tm_mon != m - 1 || tm.tm_mday != d)
        return -1;
    *out = tm;
    return 0;
}

static void date_add_days(const char *date, int days, char *buf, size_t bufsz)
{
    struct tm tm;
    if (parse_date(date, &tm) < 0) {
        snprintf(buf, bufsz, "%s", date);
        return;
    }
    time_t t = timegm(&tm) + (time_t)days * 86400;
    gmtime_r(&t, &tm);
    snprintf(buf, bufsz, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

/* ---- transactions ------------------------------------------------------------------ */

static int custom_txn_numbers(const struct realm *r)
{
    return jbool(jobj(r->prefs, "SalesFormsPrefs"), "CustomTxnNumbers", 0);
}

/* DocNumber: length, uniqueness per kind (6140 unless include=allowduplicatedocnum), and
 * the next free number when omitted (unless the company types its own numbers). */
static int doc_number(struct wctx *w)
{
    struct json_object *v;
    const char *doc, *owner;
    char buf[32];

    if (json_object_object_get_ex(w->ent, "DocNumber", &v) &&
        !json_object_is_type(v, json_type_null) && !json_object_is_type(v, json_type_string))
        return qbo_invalid_prop(w, "DocNumber");
    doc = jstr(w->ent, "DocNumber");
    if (doc && *doc) {
        if (g_qbo_opts.docnum_max_len > 0 && strlen(doc) > (size_t)g_qbo_opts.docnum_max_len)
            return qbo_fault_set(
                &w->f, "6000", "DocNumber",
                "A business validation error has occurred while processing your "
                "request",
                "Business Validation Error: String length is either shorter or "
                "longer than supported by specification. Min:0 Max:%d supplied:%zu",
                g_qbo_opts.docnum_max_len, strlen(doc));
        owner = (qbo_kinds[w->k].flags & KF_DOCUNIQ) ? jstr(w->r->docnums[w->k], doc) : NULL;
        if (owner && !w->allow_dup_doc && (!w->id || strcmp(owner, w->id) != 0))
            return qbo_fault_set(&w->f, "6140", "", "Duplicate Document Number Error",
                                 "Duplicate Document Number Error : You must specify a different "
                                 "number. This number has already been used. DocNumber=%s is "
                                 "assigned to TxnType=%s with TxnId=%s",
                                 doc, qbo_kinds[w->k].name, owner);
        return 0;
    }
    if (w->old && jstr(w->old, "DocNumber")) {
        set_str(w->ent, "DocNumber", jstr(w->old, "DocNumber"));
        return 0;
    }
    if (!(qbo_kinds[w->k].flags & KF_DOCAUTO) || custom_txn_numbers(w->r))
        return 0;
    do
        snprintf(buf, sizeof(buf), "%lld", (long long)w->r->next_doc[w->k]++);
    while (json_object_object_get_ex(w->r->docnums[w->k], buf, NULL));
    set_str(w->ent, "DocNumber", buf);
    return 0;
}

static int txn_date(struct wctx *w, const char *key, int dflt_today, char *out, size_t outsz)
{
    struct json_object *v;
    struct tm tm;
    const char *s;
    *out = 0;
    if (json_object_object_get_ex(w->ent, key, &v) && !json_object_is_type(v, json_type_null)) {
        if (!(s = jstr(w->ent, key)) || parse_date(s, &tm) < 0)
            return qbo_invalid_prop(w, key);
        snprintf(out, outsz, "%s", s);
        return 0;
    }
    if (dflt_today) {
        today(w->r, out, outsz);
        set_str(w->ent, key, out);
    }
    return 0;
}

/* Amount of a line, checked against Qty x UnitPrice (6070) when both are given. */
static int line_amount(struct wctx *w, struct json_object *l, struct json_object *d, int64_t *cents)
{
    struct qbo_dec amt, qty, price, prod;
    int has_a, has_q, has_p;
    char buf[40];

    if ((has_a = qbo_get_dec(w, l, "Amount", &amt)) < 0 ||
        (has_q = qbo_get_dec(w, d, "Qty", &qty)) < 0 ||
        (has_p = qbo_get_dec(w, d, "UnitPrice", &price)) < 0)
        return -1;
    if (has_q && has_p) {
        if (qbo_dec_mul_round(qty, price, 2, &prod) < 0)
            return qbo_invalid_prop(w, "Amount");
        if (has_a && qbo_dec_cmp(amt, prod) != 0) {
            int64_t c = 0;
            qbo_dec_cents(amt, &c);
            qbo_cents_str(c, buf, sizeof(buf));
            return qbo_fault_set(&w->f, "6070", "", "Amount is not equal to UnitPrice * Qty",
                                 "Amount is not equal to UnitPrice * Qty. Supplied value:%s", buf);
        }
        if (!has_a) {
            amt = prod;
            has_a = 1;
        }
    }
    if (!has_a)
        return qbo_missing(w, "Line.Amount");
    if (qbo_dec_cents(amt, cents) < 0)
        return qbo_invalid_prop(w, "Amount");
    set_money(l, "Amount", *cents);
    return 0;
}

static struct json_object *ensure_obj(struct json_object *o, const char *key)
{
    struct json_object *v = jobj(o, key);
    if (!v) {
        v = json_object_new_object();
        json_object_object_add(o, key, v);
    }
    return v;
}

/* A percent discount line: Amount = pct_of(subtotal of the sales lines, DiscountPercent),
 * the percentage between 0 and 100. */
static int percent_discount(struct wctx *w, struct json_object *l, struct qbo_sums *s)
{
    struct json_object *d = jobj(l, "DiscountLineDetail");
    struct qbo_dec p, zero = {0, 0}, hundred = {100, 0};
    int64_t c = 0;

    if (qbo_get_dec(w, d, "DiscountPercent", &p) < 0)
        return -1;
    if (qbo_dec_cmp(p, zero) < 0 || qbo_dec_cmp(p, hundred) > 0)
        return qbo_business(w, "DiscountPercent",
                            "The discount percentage must be between 0 and 100.");
    if (qbo_pct_of(s->subtotal, p, &c) < 0)
        return qbo_invalid_prop(w, "DiscountPercent");
    if (qbo_sum_add(w, &s->discount, c) < 0)
        return -1;
    set_money(l, "Amount", c);
    return 0;
}

/* Sales lines: ids, amounts, items, tax codes, discounts; a trailing SubTotalLineDetail. */
static int sales_lines(struct wctx *w, struct qbo_sums *s)
{
    struct json_object *lines, *out, *pct[64];
    int npct = 0, lineno = 0;
    char idbuf[16];

    memset(s, 0, sizeof(*s));
    if (!json_object_object_get_ex(w->ent, "Line", &lines) ||
        !json_object_is_type(lines, json_type_array) || json_object_array_length(lines) == 0)
        return qbo_missing(w, "Line");
    out = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(lines); i++) {
        struct json_object *l = json_object_array_get_idx(lines, i), *d, *item;
        const char *dt = jstr(l, "DetailType");
        int64_t c = 0;
        if (!json_object_is_type(l, json_type_object)) {
            json_object_put(out);
            return qbo_invalid_prop(w, "Line");
        }
        if (!dt) {
            json_object_put(out);
            return qbo_missing(w, "Line.DetailType");
        }
        if (strcmp(dt, "SubTotalLineDetail") == 0)
            continue; /* recomputed below */
        if (strcmp(dt, "SalesItemLineDetail") == 0) {
            d = ensure_obj(l, "SalesItemLineDetail");
            if (!json_object_object_get_ex(d, "ItemRef", NULL) && ent_get(w->r, K_ITEM, "1"))
                json_object_object_add(d, "ItemRef", ref_new("1", NULL));
            if (qbo_ref_check(w, d, "ItemRef", K_ITEM, 1, &item) < 0 ||
                line_amount(w, l, d, &c) < 0 || qbo_tax_line(w, d, item, c, s) < 0 ||
                qbo_sum_add(w, &s->subtotal, c) < 0) {
                json_object_put(out);
                return -1;
            }
        } else if (strcmp(dt, "GroupLineDetail") == 0 || strcmp(dt, "DescriptionOnly") == 0) {
            if (qbo_get_cents(w, l, "Amount", &c) < 0) {
                json_object_put(out);
                return -1;
            }
            if (json_object_object_get_ex(l, "Amount", NULL))
                set_money(l, "Amount", c);
            if (dt[0] == 'G' && qbo_sum_add(w, &s->subtotal, c) < 0) {
                json_object_put(out);
                return -1;
            }
        } else if (strcmp(dt, "DiscountLineDetail") == 0) {
            d = ensure_obj(l, "DiscountLineDetail");
            if (jbool(d, "PercentBased", 0) &&
                json_object_object_get_ex(d, "DiscountPercent", NULL)) {
                if (npct < (int)(sizeof(pct) / sizeof(pct[0])))
                    pct[npct++] = l;
            } else {
                int rc = qbo_get_cents(w, l, "Amount", &c);
                if (rc == 0)
                    rc = qbo_missing(w, "Line.Amount");
                if (rc < 0 || qbo_sum_add(w, &s->discount, c) < 0) {
                    json_object_put(out);
                    return -1;
                }
                set_money(l, "Amount", c);
            }
            json_object_array_add(out, json_object_get(l));
            continue; /* discount lines carry no Id / LineNum */
        } else {
            json_object_put(out);
            return qbo_fault_set(&w->f, "2170", "DetailType", "Invalid Enumeration",
                                 "Invalid Enumeration : %s", dt);
        }
        snprintf(idbuf, sizeof(idbuf), "%d", ++lineno);
        set_str(l, "Id", idbuf);
        json_object_object_add(l, "LineNum", json_object_new_int(lineno));
        json_object_array_add(out, json_object_get(l));
    }
    for (int i = 0; i < npct; i++) {
        if (percent_discount(w, pct[i], s) < 0) {
            json_object_put(out);
            return -1;
        }
    }
    struct json_object *st = json_object_new_object();
    set_money(st, "Amount", s->subtotal);
    set_str(st, "DetailType", "SubTotalLineDetail");
    json_object_object_add(st, "SubTotalLineDetail", json_object_new_object());
    json_object_array_add(out, st);
    json_object_object_add(w->ent, "Line", out);
    return 0;
}

/* The term that sets DueDate (design choice #19): SalesTermRef, the customer's term, the
 * company default (Preferences.SalesFormsPrefs.DefaultTerms), else "Net 30" by name. */
static int invoice_due(struct wctx *w, struct json_object *cust, const char *txn)
{
    struct json_object *e = w->ent, *term = NULL;
    char due[40];
    const char *tid = NULL;

    if (qbo_ref_check(w, e, "SalesTermRef", K_TERM, 0, &term) < 0)
        return -1;
    if (!term && (tid = ref_value(cust, "SalesTermRef")))
        term = ent_get(w->r, K_TERM, tid);
    if (!term && (tid = ref_value(jobj(w->r->prefs, "SalesFormsPrefs"), "DefaultTerms")))
        term = ent_get(w->r, K_TERM, tid);
    if (!term) {
        const char *owner = qbo_name_owner(w->r, K_TERM, "Net 30");
        if (owner && strncmp(owner, "Term/", 5) == 0)
            term = ent_get(w->r, K_TERM, owner + 5);
    }
    if (term && !json_object_object_get_ex(e, "SalesTermRef", NULL))
        json_object_object_add(e, "SalesTermRef", ref_new(jstr(term, "Id"), jstr(term, "Name")));
    if (txn_date(w, "DueDate", 0, due, sizeof(due)) < 0)
        return -1;
    if (*due)
        return 0;
    struct json_object *v;
    if (term && json_object_object_get_ex(term, "DayOfMonthDue", &v)) {
        struct tm tm;
        int dom = json_object_get_int(v);
        parse_date(txn, &tm);
        if (tm.tm_mday >= dom)
            tm.tm_mon++;
        tm.tm_mday = 1;
        time_t t = timegm(&tm);
        gmtime_r(&t, &tm);
        int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int y = tm.tm_year + 1900, last = mdays[tm.tm_mon];
        if (tm.tm_mon == 1 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
            last = 29;
        snprintf(due, sizeof(due), "%04d-%02d-%02d", y, tm.tm_mon + 1, dom < last ? dom : last);
    } else {
        int days = 30;
        if (term && json_object_object_get_ex(term, "DueDays", &v))
            days = json_object_get_int(v);
        date_add_days(txn, days, due, sizeof(due));
    }
    set_str(e, "DueDate", due);
    return 0;
}

static struct json_object *undeposited_funds(struct realm *r)
{
    json_object_object_foreach(r->ents[K_ACCOUNT], id, a)
    {
        const char *st = jstr(a, "AccountSubType");
        if (st && strcmp(st, "UndepositedFunds") == 0)
            return ref_new(id, jstr(a, "Name"));
    }
    return NULL;
}

static int deposit_account(struct wctx *w, int required, int cash_only)
{
    struct json_object *acct, *uf;
    if (!required && !json_object_object_get_ex(w->ent, "DepositToAccountRef", NULL) &&
        (uf = undeposited_funds(w->r)))
        json_object_object_add(w->ent, "DepositToAccountRef", uf);
    if (qbo_ref_check(w, w->ent, "DepositToAccountRef", K_ACCOUNT, required, &acct) < 0)
        return -1;
    if (acct && cash_only) {
        const char *t = jstr(acct, "AccountType");
        if (!t || (strcmp(t, "Bank") != 0 && strcmp(t, "Other Current Asset") != 0))
            return qbo_business(w, "DepositToAccountRef",
                                "A refund must come from a Bank or Other Current Asset account.");
    }
    return 0;
}

int qbo_build_sales(struct wctx *w)
{
    struct json_object *e = w->ent, *cust, *pm, *v;
    struct qbo_sums sums;
    int64_t taxc = 0, total;
    char txn[16];
    enum kind k = w->k;

    if (qbo_ref_check(w, e, "CustomerRef", K_CUSTOMER, k == K_INVOICE || k == K_ESTIMATE, &cust) <
            0 ||
        qbo_txn_currency(w, cust, K_CUSTOMER) < 0 || sales_lines(w, &sums) < 0 ||
        doc_number(w) < 0 || txn_date(w, "TxnDate", 1, txn, sizeof(txn)) < 0)
        return -1;
    /* The addresses first: Automated Sales Tax taxes by the destination. */
    if (cust && (v = jobj(cust, "BillAddr")))
        set_if_absent(e, "BillAddr", json_object_get(v));
    if (cust && (v = jobj(cust, "ShipAddr")))
        set_if_absent(e, "ShipAddr", json_object_get(v));
    total = sums.subtotal;
    if (qbo_tax_total(w, cust, &sums, &taxc) < 0)
        return -1;
    if (qbo_sum_add(w, &total, -sums.discount) < 0 || qbo_sum_add(w, &total, taxc) < 0)
        return -1;
    if (json_object_object_get_ex(e, "BillEmail", &v) &&
        (!json_object_is_type(v, json_type_object) || !jstr(v, "Address")))
        return qbo_invalid_prop(w, "BillEmail");
    if (qbo_ref_check(w, e, "PaymentMethodRef", K_PAYMENTMETHOD, 0, &pm) < 0)
        return -1;
    if (k == K_INVOICE) {
        int64_t applied = w->old ? cents_of(w->old, "TotalAmt") - cents_of(w->old, "Balance") : 0;
        if (invoice_due(w, cust, txn) < 0)
            return -1;
        set_money(e, "Balance", total - applied);
        if (w->old && json_object_object_get_ex(w->old, "LinkedTxn", &v))
            json_object_object_add(e, "LinkedTxn", json_object_get(v));
        set_if_absent(e, "LinkedTxn", json_object_new_array());
        set_if_absent(e, "AllowOnlinePayment", json_object_new_boolean(0));
        set_if_absent(e, "PrintStatus", json_object_new_string("NeedToPrint"));
        set_if_absent(e, "EmailStatus", json_object_new_string("NotSet"));
    } else if (k == K_ESTIMATE) {
        set_if_absent(e, "TxnStatus", json_object_new_string("Pending"));
        set_if_absent(e, "PrintStatus", json_object_new_string("NeedToPrint"));
        set_if_absent(e, "EmailStatus", json_object_new_string("NotSet"));
    } else {
        if (deposit_account(w, k == K_REFUNDRECEIPT, k == K_REFUNDRECEIPT) < 0)
            return -1;
        set_money(e, "Balance", 0);
        if (k == K_REFUNDRECEIPT)
            set_money(e, "RemainingCredit", 0);
        set_if_absent(e, "PrintStatus", json_object_new_string("NotSet"));
        set_if_absent(e, "EmailStatus", json_object_new_string("NotSet"));
    }
    set_money(e, "TotalAmt", total);
    set_if_absent(e, "ApplyTaxAfterDiscount", json_object_new_boolean(0));
    if (qbo_home_amount(w->r, e, "TotalAmt", "HomeTotalAmt") < 0 ||
        (k == K_INVOICE && qbo_home_amount(w->r, e, "Balance", "HomeBalance") < 0))
        return qbo_invalid_prop(w, "ExchangeRate");
    return 0;
}

/* Invoice id -> cents a payment applies to it (first Invoice LinkedTxn of each line). */
static struct json_object *applied_map(struct json_object *pay)
{
    struct json_object *m = json_object_new_object(), *lines, *lts;
    if (!pay || !json_object_object_get_ex(pay, "Line", &lines) ||
        !json_object_is_type(lines, json_type_array))
        return m;
    for (size_t i = 0; i < json_object_array_length(lines); i++) {
        struct json_object *l = json_object_array_get_idx(lines, i);
        if (!json_object_object_get_ex(l, "LinkedTxn", &lts) ||
            !json_object_is_type(lts, json_type_array))
            continue;
        for (size_t j = 0; j < json_object_array_length(lts); j++) {
            struct json_object *lt = json_object_array_get_idx(lts, j), *cur;
            const char *tid = jstr(lt, "TxnId"), *tt = jstr(lt, "TxnType");
            if (!tid || !tt || strcmp(tt, "Invoice") != 0)
                continue;
            int64_t sum = cents_of(l, "Amount");
            if (json_object_object_get_ex(m, tid, &cur))
                sum += json_object_get_int64(cur);
            json_object_object_add(m, tid, json_object_new_int64(sum));
            break;
        }
    }
    return m;
}

int qbo_build_payment(struct wctx *w)
{
    struct json_object *e = w->ent, *cust, *pm, *lines, *newm = NULL, *oldm = NULL;
    int64_t total, applied = 0;
    char txn[16];
    int rc = -1;

    if (qbo_ref_check(w, e, "CustomerRef", K_CUSTOMER, 1, &cust) < 0 ||
        qbo_ref_check(w, e, "PaymentMethodRef", K_PAYMENTMETHOD, 0, &pm) < 0 ||
        qbo_txn_currency(w, cust, K_CUSTOMER) < 0)
        return -1;
    int got = qbo_get_cents(w, e, "TotalAmt", &total);
    if (got <= 0)
        return got < 0 ? -1 : qbo_missing(w, "TotalAmt");
    if (total < 0)
        return qbo_business(w, "TotalAmt", "The payment amount cannot be negative.");
    if (total > QBO_CENTS_MAX)
        return qbo_invalid_prop(w, "TotalAmt");
    if (json_object_object_get_ex(e, "Line", &lines)) {
        if (!json_object_is_type(lines, json_type_array))
            return qbo_invalid_prop(w, "Line");
        for (size_t i = 0; i < json_object_array_length(lines); i++) {
            struct json_object *l = json_object_array_get_idx(lines, i), *lts;
            int64_t c;
            if (!json_object_is_type(l, json_type_object))
                return qbo_invalid_prop(w, "Line");
            int g = qbo_get_cents(w, l, "Amount", &c);
            if (g <= 0)
                return g < 0 ? -1 : qbo_missing(w, "Line.Amount");
            if (qbo_sum_add(w, &applied, c) < 0)
                return -1;
            set_money(l, "Amount", c);
            if (!json_object_object_get_ex(l, "LinkedTxn", &lts))
                continue;
            if (!json_object_is_type(lts, json_type_array))
                return qbo_invalid_prop(w, "LinkedTxn");
            for (size_t j = 0; j < json_object_array_length(lts); j++) {
                struct json_object *lt = json_object_array_get_idx(lts, j), *inv;
                const char *tid = jstr(lt, "TxnId"), *tt = jstr(lt, "TxnType");
                if (!tid || !tt)
                    return qbo_missing(w, "LinkedTxn.TxnId");
                if (strcmp(tt, "Invoice") != 0)
                    continue;
                if (!(inv = ent_get(w->r, K_INVOICE, tid)))
                    return qbo_fault_set(&w->f, "2500", "LinkedTxn", "Invalid Reference Id",
                                         "Invalid Reference Id : Invoice %s does not exist", tid);
                const char *ic = ref_value(inv, "CustomerRef"), *pc = ref_value(e, "CustomerRef");
                if (!ic || !pc || strcmp(ic, pc) != 0)
                    return qbo_business(
                        w, "LinkedTxn",
                        "The invoice belongs to another customer than the payment.");
            }
        }
    }
    if (applied > total)
        return qbo_business(w, "TotalAmt",
                            "The amount received must be at least the total applied to invoices.");
    newm = applied_map(e);
    oldm = applied_map(w->old);
    json_object_object_foreach(newm, invid, amt)
    {
        struct json_object *was;
        int64_t avail = cents_of(ent_get(w->r, K_INVOICE, invid), "Balance");
        if (json_object_object_get_ex(oldm, invid, &was))
            avail += json_object_get_int64(was);
        if (json_object_get_int64(amt) > avail) {
            char msg[160];
            snprintf(msg, sizeof(msg),
                     "The payment applied to invoice %s exceeds its open balance.", invid);
            qbo_business(w, "Line.Amount", msg);
            goto out;
        }
    }
    if (txn_date(w, "TxnDate", 1, txn, sizeof(txn)) < 0 || deposit_account(w, 0, 0) < 0)
        goto out;
    set_money(e, "TotalAmt", total);
    set_money(e, "UnappliedAmt", total - applied);
    set_if_absent(e, "ProcessPayment", json_object_new_boolean(0));
    rc = 0;
out:
    json_object_put(newm);
    json_object_put(oldm);
    return rc;
}

/* Design choice #18: Balance drops, a Payment LinkedTxn appears, SyncToken bumps. */
void qbo_apply_payment(struct realm *r, const char *pay_id, struct json_object *old,
                       struct json_object *neu)
{
    struct json_object *oldm = applied_map(old), *newm = applied_map(neu);
    struct json_object *all = json_object_new_object();

    json_object_object_foreach(oldm, k1, v1)
    {
        (void)v1;
        json_object_object_add(all, k1, NULL);
    }
    json_object_object_foreach(newm, k2, v2)
    {
        (void)v2;
        json_object_object_add(all, k2, NULL);
    }
    json_object_object_foreach(all, invid, unused)
    {
        (void)unused;
        struct json_object *inv = ent_get(r, K_INVOICE, invid), *o, *n, *links;
        if (!inv)
            continue;
        int64_t was = json_object_object_get_ex(oldm, invid, &o) ? json_object_get_int64(o) : 0;
        int64_t now = json_object_object_get_ex(newm, invid, &n) ? json_object_get_int64(n) : 0;
        links = json_object_object_get_ex(inv, "LinkedTxn", &links) &&
                        json_object_is_type(links, json_type_array)
                    ? links
                    : NULL;
        if (!links) {
            links = json_object_new_array();
            json_object_object_add(inv, "LinkedTxn", links);
        }
        int found = -1;
        for (size_t i = 0; i < json_object_array_length(links); i++) {
            struct json_object *lt = json_object_array_get_idx(links, i);
            const char *tid = jstr(lt, "TxnId"), *tt = jstr(lt, "TxnType");
            if (tid && tt && strcmp(tid, pay_id) == 0 && strcmp(tt, "Payment") == 0)
                found = (int)i;
        }
        if (was == now && (found >= 0) == (now > 0))
            continue;
        set_money(inv, "Balance", cents_of(inv, "Balance") - (now - was));
        (void)qbo_home_amount(r, inv, "Balance", "HomeBalance"); /* <= HomeTotalAmt: fits */
        if (now > 0 && found < 0) {
            struct json_object *lt = json_object_new_object();
            set_str(lt, "TxnId", pay_id);
            set_str(lt, "TxnType", "Payment");
            json_object_array_add(links, lt);
        } else if (now == 0 && found >= 0) {
            json_object_array_del_idx(links, (size_t)found, 1);
        }
        qbo_bump(r, inv);
    }
    json_object_put(all);
    json_object_put(oldm);
    json_object_put(newm);
}

int qbo_build_purchase(struct wctx *w)
{
    static const char *const ptypes[] = {"Cash", "Check", "CreditCard", NULL};
    struct json_object *e = w->ent, *acct, *lines, *ent = NULL, *out;
    const char *pt = jstr(e, "PaymentType"), *at;
    int64_t total = 0;
    int lineno = 0;
    char txn[16], idbuf[16];

    if (!pt)
        return qbo_missing(w, "PaymentType");
    if (!qbo_in_list(ptypes, pt))
        return qbo_fault_set(&w->f, "2170", "PaymentType", "Invalid Enumeration",
                             "Invalid Enumeration : %s", pt);
    if (qbo_ref_check(w, e, "AccountRef", K_ACCOUNT, 1, &acct) < 0)
        return -1;
    at = jstr(acct, "AccountType");
    if (!at || (strcmp(pt, "CreditCard") == 0
                    ? strcmp(at, "Credit Card") != 0
                    : strcmp(at, "Bank") != 0 && strcmp(at, "Other Current Asset") != 0))
        return qbo_business(
            w, "AccountRef",
            "The payment account does not match the PaymentType (Check/Cash: a Bank "
            "account, CreditCard: a Credit Card account).");
    struct json_object *er = jobj(e, "EntityRef");
    if (er) {
        const char *type = jstr(er, "type");
        int k = type ? qbo_kind_by_name(type) : K_VENDOR;
        if (k != K_VENDOR && k != K_CUSTOMER && k != K_EMPLOYEE)
            return qbo_invalid_prop(w, "EntityRef");
        if (qbo_ref_check(w, e, "EntityRef", (enum kind)k, 1, &ent) < 0 ||
            qbo_txn_currency(w, ent, (enum kind)k) < 0)
            return -1;
        set_str(er, "type", qbo_kinds[k].name);
    } else if (qbo_txn_currency(w, NULL, K_VENDOR) < 0) {
        return -1;
    }
    if (!json_object_object_get_ex(e, "Line", &lines) ||
        !json_object_is_type(lines, json_type_array) || json_object_array_length(lines) == 0)
        return qbo_missing(w, "Line");
    out = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(lines); i++) {
        struct json_object *l = json_object_array_get_idx(lines, i), *d, *ref;
        const char *dt = jstr(l, "DetailType");
        int64_t c = 0;
        int rc = 0;
        if (!dt) {
            rc = qbo_missing(w, "Line.DetailType");
        } else if (strcmp(dt, "AccountBasedExpenseLineDetail") == 0) {
            d = ensure_obj(l, dt);
            if (qbo_ref_check(w, d, "AccountRef", K_ACCOUNT, 1, &ref) < 0 ||
                qbo_get_cents(w, l, "Amount", &c) <= 0)
                rc = w->f.code ? -1 : qbo_missing(w, "Line.Amount");
            set_if_absent(d, "BillableStatus", json_object_new_string("NotBillable"));
            set_if_absent(d, "TaxCodeRef", ref_new("NON", NULL));
        } else if (strcmp(dt, "ItemBasedExpenseLineDetail") == 0) {
            d = ensure_obj(l, dt);
            if (qbo_ref_check(w, d, "ItemRef", K_ITEM, 1, &ref) < 0 || line_amount(w, l, d, &c) < 0)
                rc = -1;
            set_if_absent(d, "BillableStatus", json_object_new_string("NotBillable"));
            set_if_absent(d, "TaxCodeRef", ref_new("NON", NULL));
        } else {
            rc = qbo_fault_set(&w->f, "2170", "DetailType", "Invalid Enumeration",
                               "Invalid Enumeration : %s", dt);
        }
        if (rc == 0)
            rc = qbo_sum_add(w, &total, c);
        if (rc < 0) {
            json_object_put(out);
            return -1;
        }
        set_money(l, "Amount", c);
        snprintf(idbuf, sizeof(idbuf), "%d", ++lineno);
        set_str(l, "Id", idbuf);
        json_object_array_add(out, json_object_get(l));
    }
    json_object_object_add(e, "Line", out);
    if (doc_number(w) < 0 || txn_date(w, "TxnDate", 1, txn, sizeof(txn)) < 0)
        return -1;
    set_money(e, "TotalAmt", total);
    set_if_absent(e, "Credit", json_object_new_boolean(0));
    return 0;
}
