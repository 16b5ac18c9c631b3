/* qbo_tax.c - sales tax of QBO sales documents (Invoice, Estimate, SalesReceipt,
 * RefundReceipt) under the four tax setups a company can have (Preferences.TaxPrefs):
 *
 *   setup                              line TaxCodeRef               TxnTaxDetail.TotalTax
 *   non-US company                     required (a tax code id)      as given, else 0
 *   US, UsingSalesTax false            refused (400/6000)            as given, else 0
 *   US, UsingSalesTax (manual tax)     TAX or NON, default NON       as given, else 0
 *   US, UsingSalesTax + PartnerTaxEnabled = Automated Sales Tax (AST):
 *                                      overridden: the Item's        as given, else computed
 *                                      Taxable flag (TAX / NON)
 *
 * AST, as Intuit describes it (README "Evidence"): the engine assigns the tax code of every
 * line itself (a TaxCodeRef sent is overridden), computes the tax from the destination
 * address, and honours an explicit TxnTaxDetail.TotalTax. The sandbox computes
 *   base = sum of TAX lines - round(discount x TAX lines / subtotal)   (discount share,
 *          unless ApplyTaxAfterDiscount is sent false)
 *   tax  = qbo_pct_of(base, rate)  (0 for a customer with Taxable false)
 * with rate = ast_rates[state], state = ShipAddr, else BillAddr (option
 * ast_bill_addr_fallback), else the company address, else the "*" entry, else 0. It
 * stores TxnTaxDetail {TxnTaxCodeRef, TotalTax, TaxLine[1]}. Runs under qbo.c's lock.
 */
#include "tests/sandbox/qbo_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static int sales_tax_on(const struct realm *r)
{
    return jbool(jobj(r->prefs, "TaxPrefs"), "UsingSalesTax", 0);
}

static int ast_on(const struct realm *r)
{
    return qbo_is_us(r) && sales_tax_on(r) &&
           jbool(jobj(r->prefs, "TaxPrefs"), "PartnerTaxEnabled", 0);
}

int qbo_tax_line(struct wctx *w, struct json_object *detail, struct json_object *item,
                 int64_t amount, struct qbo_sums *s)
{
    struct json_object *v;
    int has = json_object_object_get_ex(detail, "TaxCodeRef", &v) &&
              !json_object_is_type(v, json_type_null);
    const char *sent = has ? jstr(v, "value") : NULL, *code;

    if (has && (!sent || !*sent))
        return qbo_invalid_prop(w, "TaxCodeRef");
    if (!qbo_is_us(w->r))
        return has ? 0
                   : qbo_business(w, "TaxCodeRef",
                                  "Make sure all your transactions have a GST/HST rate before "
                                  "you save.");
    if (!sales_tax_on(w->r))
        return has ? qbo_business(w, "TaxCodeRef",
                                  "Sales tax is not set up for this company "
                                  "(Preferences.TaxPrefs.UsingSalesTax is false): a line cannot "
                                  "carry a TaxCodeRef.")
                   : 0;
    if (ast_on(w->r))
        code = jbool(item, "Taxable", 0) ? "TAX" : "NON";
    else if (!sent || strcmp(sent, "NON") == 0)
        code = "NON";
    else if (strcmp(sent, "TAX") == 0)
        code = "TAX";
    else
        return qbo_fault_set(&w->f, "2500", "TaxCodeRef", "Invalid Reference Id",
                             "Invalid Reference Id : a line of a US company takes the tax code "
                             "TAX or NON, not %.40s",
                             sent);
    json_object_object_add(detail, "TaxCodeRef", ref_new(code, NULL));
    return code[0] == 'T' ? qbo_sum_add(w, &s->taxable, amount) : 0;
}

/* The state of an address member, or NULL when it has none. */
static const char *addr_state(struct json_object *holder, const char *key)
{
    const char *st = jstr(jobj(holder, key), "CountrySubDivisionCode");
    return st && *st ? st : NULL;
}

/* The AST rate for the document's destination: key = the ast_rates entry used ("CA",
 * "*", or "" when the company has none), *rate its percent (0 when none). */
static void ast_rate(struct wctx *w, char *key, size_t keysz, struct qbo_dec *rate)
{
    const char *st = addr_state(w->ent, "ShipAddr"), *txt = NULL;
    char up[8];

    if (!st && g_qbo_opts.ast_bill_addr)
        st = addr_state(w->ent, "BillAddr");
    if (!st)
        st = addr_state(w->r->company, "CompanyAddr");
    if (st && strlen(st) < sizeof(up)) {
        size_t i;
        for (i = 0; st[i]; i++)
            up[i] = (char)toupper((unsigned char)st[i]);
        up[i] = 0;
        txt = jstr(w->r->ast_rates, up);
    }
    if (!txt)
        snprintf(up, sizeof(up), "*");
    if (!txt && !(txt = jstr(w->r->ast_rates, "*")))
        up[0] = 0;
    snprintf(key, keysz, "%s", up);
    if (!txt || qbo_dec_parse(txt, rate) < 0) {
        *key = 0;
        *rate = (struct qbo_dec){0, 0};
    }
}

static void ast_store(struct wctx *w, const char *key, struct qbo_dec rate, int64_t base,
                      int64_t tax)
{
    struct json_object *td = json_object_new_object(), *lines = json_object_new_array();
    struct json_object *line = json_object_new_object(), *d = json_object_new_object();
    char name[48];

    snprintf(name, sizeof(name), "Automated Sales Tax %s", *key ? key : "(no rate)");
    json_object_object_add(td, "TxnTaxCodeRef", ref_new(*key ? key : "0", name));
    set_money(td, "TotalTax", tax);
    set_money(line, "Amount", tax);
    set_str(line, "DetailType", "TaxLineDetail");
    json_object_object_add(d, "PercentBased", json_object_new_boolean(1));
    json_object_object_add(d, "TaxPercent", qbo_dec_json(rate));
    set_money(d, "NetAmountTaxable", base);
    json_object_object_add(line, "TaxLineDetail", d);
    json_object_array_add(lines, line);
    json_object_object_add(td, "TaxLine", lines);
    json_object_object_add(w->ent, "TxnTaxDetail", td);
}

static int ast_tax(struct wctx *w, struct json_object *cust, const struct qbo_sums *s,
                   const int64_t *given, int64_t *tax)
{
    struct json_object *v;
    struct qbo_dec rate;
    int64_t base = s->taxable, share = 0;
    char key[8];

    if (json_object_object_get_ex(w->ent, "ApplyTaxAfterDiscount", &v) &&
        !json_object_is_type(v, json_type_null) && !json_object_is_type(v, json_type_boolean))
        return qbo_invalid_prop(w, "ApplyTaxAfterDiscount");
    if (s->discount && jbool(w->ent, "ApplyTaxAfterDiscount", 1)) {
        json_object_object_add(w->ent, "ApplyTaxAfterDiscount", json_object_new_boolean(1));
        if (s->subtotal && qbo_prorate(s->discount, s->taxable, s->subtotal, &share) < 0)
            return qbo_invalid_prop(w, "Amount");
        if (qbo_sum_add(w, &base, -share) < 0)
            return -1;
    }
    ast_rate(w, key, sizeof(key), &rate);
    if (given)
        *tax = *given;
    else if (!jbool(cust, "Taxable", 1))
        *tax = 0;
    else if (qbo_pct_of(base, rate, tax) < 0)
        return qbo_invalid_prop(w, "Amount");
    ast_store(w, key, rate, base, *tax);
    return 0;
}

int qbo_tax_total(struct wctx *w, struct json_object *cust, const struct qbo_sums *s, int64_t *tax)
{
    struct json_object *v, *td;
    int64_t given = 0;
    int got;

    if (json_object_object_get_ex(w->ent, "TxnTaxDetail", &v) &&
        !json_object_is_type(v, json_type_null) && !json_object_is_type(v, json_type_object))
        return qbo_invalid_prop(w, "TxnTaxDetail");
    td = jobj(w->ent, "TxnTaxDetail");
    if ((got = qbo_get_cents(w, td, "TotalTax", &given)) < 0)
        return -1;
    if (given > QBO_CENTS_MAX || given < -QBO_CENTS_MAX)
        return qbo_invalid_prop(w, "TotalTax");
    if (ast_on(w->r))
        return ast_tax(w, cust, s, got ? &given : NULL, tax);
    if (!td) {
        td = json_object_new_object();
        json_object_object_add(w->ent, "TxnTaxDetail", td);
    }
    set_money(td, "TotalTax", given);
    *tax = given;
    return 0;
}
