/* pricing.c - a quote's discounts, fees and taxes and the line items' taxes, in exact
 * cents (see pricing.h for the model and why a wrong reading can only refuse). */
#include "worker/pricing.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *kind_name(enum hubspot_term_kind k)
{
    return k == HUBSPOT_DISCOUNT ? "discount" : k == HUBSPOT_FEE ? "fee" : "tax";
}

/* hs_sort_order orders discounts only; absent or unparsable sorts last. */
static int64_t sort_key(const struct hubspot_price_term *t)
{
    return t->kind == HUBSPOT_DISCOUNT ? hubspot_order_key(t->sort_order) : INT64_MAX;
}

static int cmp_term(const void *pa, const void *pb)
{
    const struct hubspot_price_term *a = pa, *b = pb;
    int64_t ka = sort_key(a), kb = sort_key(b);

    if (a->kind != b->kind)
        return (int)a->kind - (int)b->kind;
    if (ka != kb)
        return ka < kb ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

void pricing_sort(struct hubspot_price_term *terms, size_t n)
{
    if (n > 1)
        qsort(terms, n, sizeof *terms, cmp_term);
}

static int term_fail(char *errstr, size_t errsz, const struct hubspot_price_term *t,
                     const char *what)
{
    snprintf(errstr, errsz, "quote %s %" PRId64 "%s%.60s%s: %s", kind_name(t->kind), t->id,
             t->label ? " \"" : "", t->label ? t->label : "", t->label ? "\"" : "", what);
    return -1;
}

/* One term's amount on base. */
static int term_amount(const struct hubspot_price_term *t, int64_t base, enum money_round mode,
                       struct pricing_applied *a, char *errstr, size_t errsz)
{
    enum money_round m = mode == MONEY_ROUND_NONE ? MONEY_ROUND_HALF_UP : mode;

    memset(a, 0, sizeof *a);
    if (!t->type || !t->value)
        return term_fail(errstr, errsz, t, "hs_type or hs_value missing");
    if (strcasecmp(t->type, "PERCENT") == 0) {
        a->percent = 1;
        if (money_qty_parse(t->value, &a->pct7, NULL, 0) != MONEY_OK || a->pct7 < 0)
            return term_fail(errstr, errsz, t, "hs_value is not a non-negative percentage");
        if (money_percent(base, a->pct7, m, &a->cents) != MONEY_OK)
            return term_fail(errstr, errsz, t, "amount out of range");
    } else if (strcasecmp(t->type, "FIXED") == 0) {
        if (money_parse(t->value, m, &a->cents, NULL, 0) != MONEY_OK || a->cents < 0)
            return term_fail(errstr, errsz, t, "hs_value is not a non-negative amount");
    } else {
        return term_fail(errstr, errsz, t, "hs_type is neither PERCENT nor FIXED");
    }
    return 0;
}

int pricing_apply(int64_t subtotal, int64_t line_tax, const struct hubspot_price_term *terms,
                  size_t n, enum money_round mode, struct pricing_totals *out,
                  struct pricing_applied *applied, char *errstr, size_t errsz)
{
    struct pricing_totals p = {.subtotal = subtotal, .line_tax = line_tax};
    int64_t *sum[] = {&p.discount, &p.fees, &p.order_tax};
    int64_t base, after_discounts = 0, after_fees = 0;
    size_t i;

    if (subtotal < 0 || line_tax < 0 || (n && (!terms || !applied))) {
        snprintf(errstr, errsz, "pricing: bad arguments");
        return -1;
    }
    for (i = 0; i < n; i++) {
        const struct hubspot_price_term *t = &terms[i];
        /* the base of a term is fixed by its kind: the totals of the kinds before it */
        if (t->kind == HUBSPOT_DISCOUNT) {
            base = subtotal;
        } else {
            if (money_add(subtotal, -p.discount, &after_discounts) != MONEY_OK ||
                after_discounts < 0) {
                snprintf(errstr, errsz, "quote discounts (%" PRId64 " cents) exceed its line "
                         "items (%" PRId64 " cents)", p.discount, subtotal);
                return -1;
            }
            base = after_discounts;
            if (t->kind == HUBSPOT_TAX) {
                if (money_add(after_discounts, p.fees, &after_fees) != MONEY_OK)
                    return term_fail(errstr, errsz, t, "amount out of range");
                base = after_fees;
            }
        }
        if (term_amount(t, base, mode, &applied[i], errstr, errsz) < 0)
            return -1;
        if (money_add(*sum[t->kind], applied[i].cents, sum[t->kind]) != MONEY_OK)
            return term_fail(errstr, errsz, t, "amount out of range");
    }
    if (p.discount > subtotal) {
        snprintf(errstr, errsz, "quote discounts (%" PRId64 " cents) exceed its line items (%" PRId64
                 " cents)", p.discount, subtotal);
        return -1;
    }
    if (money_add(subtotal, -p.discount, &p.total) != MONEY_OK ||
        money_add(p.total, p.fees, &p.total) != MONEY_OK ||
        money_add(p.total, p.order_tax, &p.total) != MONEY_OK ||
        money_add(p.total, p.line_tax, &p.total) != MONEY_OK) {
        snprintf(errstr, errsz, "the quote total is out of range");
        return -1;
    }
    *out = p;
    return 0;
}

int pricing_line_taxable(const struct hubspot_line_item *li)
{
    return li->tax_rate_group_id && li->tax_rate_group_id[0];
}

int pricing_line_needs_rate(const struct hubspot_line_item *li)
{
    return pricing_line_taxable(li) && !li->tax_amount && !li->tax_rate;
}

int pricing_line_tax(const struct hubspot_line_item *li, int64_t amount_cents, int64_t group_pct7,
                     enum money_round mode, int64_t *tax, char *errstr, size_t errsz)
{
    enum money_round m = mode == MONEY_ROUND_NONE ? MONEY_ROUND_HALF_UP : mode;
    int64_t pct7;

    *tax = 0;
    if (li->tax_amount) {
        if (money_parse(li->tax_amount, m, tax, NULL, 0) != MONEY_OK || *tax < 0) {
            snprintf(errstr, errsz, "line item %" PRId64 ": hs_tax_amount \"%.40s\" is not a "
                     "non-negative amount", li->id, li->tax_amount);
            return -1;
        }
        return 0;
    }
    if (!pricing_line_taxable(li))
        return 0;
    if (!li->tax_rate) {
        if (group_pct7 < 0 || money_percent(amount_cents, group_pct7, m, tax) != MONEY_OK) {
            *tax = 0;
            if (group_pct7 < 0)
                return 0;
            snprintf(errstr, errsz, "line item %" PRId64 ": tax out of range", li->id);
            return -1;
        }
        return 0;
    }
    if (money_qty_parse(li->tax_rate, &pct7, NULL, 0) != MONEY_OK || pct7 < 0 ||
        money_percent(amount_cents, pct7, m, tax) != MONEY_OK) {
        snprintf(errstr, errsz, "line item %" PRId64 ": hs_tax_rate \"%.40s\" is not a "
                 "non-negative percentage", li->id, li->tax_rate);
        return -1;
    }
    return 0;
}
