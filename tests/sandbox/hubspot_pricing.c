/* hubspot_pricing.c - the figures HubSpot derives from other records: a line item's
 * tax, a quote's `hs_quote_amount` and a deal's `amount`. The worker recomputes the quote
 * total and refuses QUOTE_TOTAL_MISMATCH when its figure differs, so this file is the
 * oracle it is checked against: it shares no arithmetic with the worker (only the money
 * text parser and formatter of common/money.h, and the sandbox's exact decimals in
 * qbo_query.h). The model is the lead's contract (spec15.md, "HubSpot quote pricing
 * model"); HubSpot publishes the order (discounts, then fees, then taxes) and the
 * PERCENT/FIXED types, not the percent bases or the rounding, which are our choices:
 *
 *   line tax   lt = hs_tax_amount, or pct(amount, rate) when the line has a tax rate
 *                   group and no hs_tax_amount; rate = hs_tax_rate, else the seeded
 *                   tax rate with the group's id (percentageRate, stored as hs_tax_rate)
 *   S = sum of line amounts             L = sum of line taxes (absent = 0)
 *   D = sum over discounts of  PERCENT: pct(S, v)   FIXED: v        A = S - D
 *   F = sum over fees      of  PERCENT: pct(A, v)   FIXED: v        B = A + F
 *   T = sum over taxes     of  PERCENT: pct(B, v)   FIXED: v
 *   hs_quote_amount = B + T + L          deal amount = S + L (deals with line items)
 *   pct(x, v) = x * v / 100 rounded half away from zero to the cent, computed exactly
 *
 * Every percent discount is taken of S (not of what earlier discounts left), so the
 * discounts' hs_sort_order does not change D; it only orders them for display.
 *
 * Inputs are strings a seed may get wrong. Money is a plain decimal with at most two
 * non-zero decimals (common/money.h grammar, |v| < 10^17 cents); hs_value is non-negative
 * and, for PERCENT, at most 100; hs_type is exactly PERCENT or FIXED. Any other input,
 * a missing line amount, or a sum out of range makes the figure null: the seed still
 * loads, and a test gets a "HubSpot has no usable total" case. A figure the seed gives
 * (even null) is kept as given, which is how a test makes HubSpot disagree.
 *
 * Every seed document ends here. A figure is recomputed from scratch (derived properties
 * dropped and written again) when one of its inputs was stored or linked by the
 * document: the record itself, one of its line items or pricing objects (which stamp
 * their quotes and deals), an association; a seeded tax rate reprices the whole portal.
 * The cost is then proportional to the document, not to the portal, apart from one
 * integer comparison per record. Archived line items and pricing objects count for
 * nothing (HubSpot removes a deleted record's associations).
 */
#include <stdio.h>
#include <string.h>

#include "common/money.h"
#include "tests/sandbox/hubspot_internal.h"
#include "tests/sandbox/qbo_query.h"

#define PCT_MAX 100 /* hs_value of a PERCENT item, and a line's tax rate */

/* Running sums of one quote or deal, in cents. */
struct totals {
    int64_t s, l; /* line amounts, line taxes */
    int nlines;
};

/* ---- property access ------------------------------------------------------------------ */

/* The string value of a property, or NULL when absent, null or empty. */
static const char *prop(const struct hs_obj *o, const char *name)
{
    const char *s;
    return hs_props_get(o->props, name, &s) && s && *s ? s : NULL;
}

/* A property the seed gave (any value, null included), as opposed to a derived one. */
static int seeded(const struct hs_obj *o, const char *name, unsigned bit)
{
    return !(o->derived & bit) && hs_props_get(o->props, name, NULL);
}

/* Store a derived property: text, or null when text is NULL. */
static void derive(struct hs_obj *o, const char *name, unsigned bit, const char *text)
{
    if (hs_props_set(&o->props, name, text) == 0)
        o->derived |= bit;
}

static void derive_cents(struct hs_obj *o, const char *name, unsigned bit, int ok, int64_t cents)
{
    char buf[MONEY_FMT_SIZE];
    derive(o, name, bit, ok && money_format(cents, buf, sizeof(buf)) == MONEY_OK ? buf : NULL);
}

/* Forget what an earlier hs_price_portal wrote on o. */
static void underive(struct hs_obj *o, const char *name, unsigned bit)
{
    if (o->derived & bit)
        hs_props_del(&o->props, name);
    o->derived &= ~bit;
}

/* ---- arithmetic ---------------------------------------------------------------------- */

/* Money text -> cents; absent (NULL) is an error too. */
static int cents_of(const char *s, int64_t *out)
{
    return s && money_parse(s, MONEY_ROUND_NONE, out, NULL, 0) == MONEY_OK ? 0 : -1;
}

static int add(int64_t *acc, int64_t v)
{
    return money_add(*acc, v, acc) == MONEY_OK ? 0 : -1;
}

/* *out = pct% of base_cents, rounded half away from zero to the cent; pct must be a
 * plain decimal (digits and one '.', so no sign or exponent) in [0, PCT_MAX] with at
 * most QBO_DEC_MAX_SCALE non-zero decimals. */
static int pct_of(int64_t base_cents, const char *pct, int64_t *out)
{
    struct qbo_dec p, res;
    if (!pct || pct[strspn(pct, "0123456789.")] || qbo_dec_parse(pct, &p) != 0 ||
        qbo_dec_cmp(p, (struct qbo_dec){PCT_MAX, 0}) > 0)
        return -1;
    /* base/100 currency units times p/100: scales 2 and p.scale + 2, rounded to 2. */
    struct qbo_dec base = {base_cents, 2}, frac = {p.v, p.scale + 2};
    if (qbo_dec_mul_round(base, frac, 2, &res) != 0 || res.v > MONEY_MAX_CENTS ||
        res.v < -MONEY_MAX_CENTS)
        return -1;
    *out = res.v;
    return 0;
}

/* One discount, fee or tax applied to base: PERCENT -> pct_of(base), FIXED -> hs_value. */
static int component(const struct hs_obj *c, int64_t base, int64_t *out)
{
    const char *type = prop(c, "hs_type"), *value = prop(c, "hs_value");
    if (type && strcmp(type, "PERCENT") == 0)
        return pct_of(base, value, out);
    if (type && strcmp(type, "FIXED") == 0)
        return cents_of(value, out) == 0 && *out >= 0 ? 0 : -1;
    return -1;
}

/* ---- line items -------------------------------------------------------------------- */

/* The rate of a seeded tax rate (percentageRate, a number or a string) as text in buf;
 * NULL when the portal has no such rate or it is not a plain number. */
static const char *seeded_rate(const struct hs_portal *p, const char *group, char *buf,
                               size_t bufsz)
{
    struct json_object *rec, *rate;
    if (!json_object_object_get_ex(p->tax_rates, group, &rec) ||
        !json_object_object_get_ex(rec, "percentageRate", &rate))
        return NULL;
    if (!json_object_is_type(rate, json_type_string) &&
        !json_object_is_type(rate, json_type_double) && !json_object_is_type(rate, json_type_int))
        return NULL;
    /* a double prints its original text (json-c keeps it), so 8.875 stays 8.875 */
    int n = snprintf(buf, bufsz, "%s",
                     json_object_is_type(rate, json_type_string)
                         ? json_object_get_string(rate)
                         : json_object_to_json_string_ext(rate, JSON_C_TO_STRING_PLAIN));
    return n >= 0 && (size_t)n < bufsz ? buf : NULL; /* never a truncated number */
}

/* A taxable line's hs_tax_rate (from its tax rate group, when it has none) and
 * hs_tax_amount (when it has none). */
static void price_line(const struct hs_portal *p, struct hs_obj *li)
{
    char buf[64];
    underive(li, "hs_tax_rate", HS_DERIVED_TAX_RATE);
    underive(li, "hs_tax_amount", HS_DERIVED_TAX_AMOUNT);
    const char *group = prop(li, "hs_tax_rate_group_id");
    if (!group)
        return;
    const char *rate = prop(li, "hs_tax_rate");
    /* a seeded hs_tax_rate, null included, is kept: that is how a test has a client find
     * the rate through its group (GET /tax-rates/v1/tax-rates/{id}) */
    if (!rate && !seeded(li, "hs_tax_rate", HS_DERIVED_TAX_RATE) &&
        (rate = seeded_rate(p, group, buf, sizeof(buf))))
        derive(li, "hs_tax_rate", HS_DERIVED_TAX_RATE, rate);
    /* no rate known: no tax, as the spec's "absent = 0" */
    if (!rate || seeded(li, "hs_tax_amount", HS_DERIVED_TAX_AMOUNT))
        return;
    int64_t amount, tax;
    int ok = cents_of(prop(li, "amount"), &amount) == 0 && pct_of(amount, rate, &tax) == 0;
    derive_cents(li, "hs_tax_amount", HS_DERIVED_TAX_AMOUNT, ok, ok ? tax : 0);
}

/* S and L over o's live line items; -1 when one has no usable amount or tax. */
static int line_totals(const struct hs_obj *o, struct totals *t)
{
    memset(t, 0, sizeof(*t));
    for (int i = 0; i < o->nlinks; i++) {
        const struct hs_link *l = &o->links[i];
        const struct hs_obj *li;
        int64_t amount, tax = 0;
        if (l->to_type != T_LINE_ITEMS || !(li = hs_obj_get(o->portal, T_LINE_ITEMS, l->to_id)) ||
            li->archived)
            continue;
        t->nlines++;
        if (cents_of(prop(li, "amount"), &amount) != 0 || add(&t->s, amount) != 0)
            return -1;
        const char *lt = prop(li, "hs_tax_amount");
        if (!lt && (li->derived & HS_DERIVED_TAX_AMOUNT))
            return -1; /* its tax could not be computed */
        if ((lt && cents_of(lt, &tax) != 0) || add(&t->l, tax) != 0)
            return -1;
    }
    return 0;
}

/* ---- quotes and deals ---------------------------------------------------------------- */

/* Sum of the quote's live components of one type, each applied to base. */
static int components(const struct hs_obj *q, int type, int64_t base, int64_t *sum)
{
    *sum = 0;
    for (int i = 0; i < q->nlinks; i++) {
        const struct hs_link *l = &q->links[i];
        const struct hs_obj *c;
        int64_t v;
        if (l->to_type != type || !(c = hs_obj_get(q->portal, type, l->to_id)) || c->archived)
            continue;
        if (component(c, base, &v) != 0 || add(sum, v) != 0)
            return -1;
    }
    return 0;
}

static int quote_amount(const struct hs_obj *q, int64_t *out)
{
    struct totals t;
    int64_t d, f, tax, a, b;
    if (line_totals(q, &t) != 0 || components(q, T_DISCOUNTS, t.s, &d) != 0)
        return -1;
    a = t.s;
    if (add(&a, -d) != 0 || components(q, T_FEES, a, &f) != 0)
        return -1;
    b = a;
    if (add(&b, f) != 0 || components(q, T_TAXES, b, &tax) != 0)
        return -1;
    *out = b;
    return add(out, tax) != 0 || add(out, t.l) != 0 ? -1 : 0;
}

static void price_quote(struct hs_obj *q)
{
    int64_t total = 0;
    underive(q, "hs_quote_amount", HS_DERIVED_TOTAL);
    if (seeded(q, "hs_quote_amount", HS_DERIVED_TOTAL))
        return;
    int ok = quote_amount(q, &total) == 0;
    derive_cents(q, "hs_quote_amount", HS_DERIVED_TOTAL, ok, total);
}

/* A deal's amount follows its line items only when it has some (else it is whatever the
 * seed says, as in HubSpot where the amount is typed in). */
static void price_deal(struct hs_obj *d)
{
    struct totals t;
    underive(d, "amount", HS_DERIVED_TOTAL);
    if (seeded(d, "amount", HS_DERIVED_TOTAL))
        return;
    int ok = line_totals(d, &t) == 0;
    if (ok && t.nlines == 0)
        return;
    ok = ok && add(&t.s, t.l) == 0;
    derive_cents(d, "amount", HS_DERIVED_TOTAL, ok, t.s);
}

/* ---- what to reprice ---------------------------------------------------------------- */

static int stale(const struct hs_obj *o, unsigned stamp)
{
    return !stamp || o->stamp == stamp;
}

/* A changed line item or pricing object changes the quotes and deals it belongs to. */
static void stamp_parents(const struct hs_obj *o, unsigned stamp)
{
    for (int i = 0; i < o->nlinks; i++) {
        int t = o->links[i].to_type;
        struct hs_obj *x;
        if ((t == T_QUOTES || t == T_DEALS) && (x = hs_obj_get(o->portal, t, o->links[i].to_id)))
            x->stamp = stamp;
    }
}

void hs_price_portal(struct hs_portal *p, unsigned stamp)
{
    static const int inputs[] = {T_LINE_ITEMS, T_DISCOUNTS, T_FEES, T_TAXES};
    for (size_t k = 0; k < sizeof(inputs) / sizeof(inputs[0]); k++) {
        for (size_t i = 0; i < p->nlist[inputs[k]]; i++) {
            struct hs_obj *o = p->list[inputs[k]][i];
            if (!stale(o, stamp))
                continue;
            if (o->type == T_LINE_ITEMS)
                price_line(p, o);
            if (stamp)
                stamp_parents(o, stamp);
        }
    }
    for (size_t i = 0; i < p->nlist[T_QUOTES]; i++)
        if (stale(p->list[T_QUOTES][i], stamp))
            price_quote(p->list[T_QUOTES][i]);
    for (size_t i = 0; i < p->nlist[T_DEALS]; i++)
        if (stale(p->list[T_DEALS][i], stamp))
            price_deal(p->list[T_DEALS][i]);
}
