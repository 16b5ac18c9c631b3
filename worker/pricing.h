/* pricing.h - what HubSpot charges on top of the line items, in exact cents: a quote's
 * discounts, fees and taxes (separate CRM objects associated with the quote) and the
 * tax of each taxable line item.
 *
 * HubSpot documents the order only ("discounts are applied first, followed by fees,
 * and then taxes": the discounts, fees and taxes API guides); the bases and the rounding
 * below are our reading, modelled identically by the sandbox. It does not matter much
 * if the real service differs: the worker compares the total computed here with the
 * quote's own hs_quote_amount before writing anything and refuses the event
 * (QUOTE_TOTAL_MISMATCH) when they differ, so a wrong reading refuses, never books.
 *
 *   S = sum of the line amounts            L = sum of the line taxes
 *   discounts, by hs_sort_order then id:   PERCENT d = S x v%   FIXED d = v    A = S - D
 *   fees, by id:                           PERCENT f = A x v%   FIXED f = v    B = A + F
 *   taxes, by id:                          PERCENT t = B x v%   FIXED t = v    T
 *   total = B + T + L
 * Each percentage is rounded once, to the cent, with the configured mode (money.rounding,
 * half_up by default: HubSpot shows half cents rounded up).
 *
 * Owns nothing; pure functions, thread-safe.
 */
#ifndef HSQB_PRICING_H
#define HSQB_PRICING_H

#include <stddef.h>
#include <stdint.h>

#include "common/money.h"
#include "worker/hubspot.h"

/* The totals of one document, in cents. */
struct pricing_totals {
    int64_t subtotal;  /* S: the line amounts */
    int64_t discount;  /* D (>= 0) */
    int64_t fees;      /* F (>= 0) */
    int64_t order_tax; /* T: the quote's tax objects (>= 0) */
    int64_t line_tax;  /* L: the line items' own taxes (>= 0) */
    int64_t total;     /* S - D + F + T + L */
};

/* One term as applied, parallel to the sorted terms. */
struct pricing_applied {
    int64_t cents;   /* what it adds (fees, taxes) or takes off (discounts), >= 0 */
    int percent;     /* 1 for hs_type PERCENT */
    int64_t pct7;    /* the rate, units of 10^-7 percent, when percent */
};

/* Sort terms into the order they apply: discounts (hs_sort_order ascending, absent or
 * unparsable last, then id), fees (id), taxes (id). */
void pricing_sort(struct hubspot_price_term *terms, size_t n);

/* Apply the sorted terms to a subtotal and line tax (both >= 0): *out, and applied[i]
 * for each term (applied may be NULL when n == 0). 0, or -1 with errstr naming the term:
 * an unknown hs_type, a value that is not a non-negative decimal (money for FIXED, a
 * percentage with at most 7 decimals for PERCENT), discounts above the subtotal, or an
 * amount out of range. */
int pricing_apply(int64_t subtotal, int64_t line_tax, const struct hubspot_price_term *terms,
                  size_t n, enum money_round mode, struct pricing_totals *out,
                  struct pricing_applied *applied, char *errstr, size_t errsz);

/* The tax of one line item: hs_tax_amount when HubSpot gives one; else, for a taxable
 * line (hs_tax_rate_group_id set), hs_tax_rate percent of amount_cents, or without it
 * group_pct7 (the rate of the line's tax rate group, units of 10^-7 percent; < 0 when
 * unknown); else 0. 0 with *tax, or -1 with errstr (unparsable or negative values). */
int pricing_line_tax(const struct hubspot_line_item *li, int64_t amount_cents, int64_t group_pct7,
                     enum money_round mode, int64_t *tax, char *errstr, size_t errsz);

/* 1 when the line's tax needs its rate group's rate: taxable, without hs_tax_amount and
 * hs_tax_rate. */
int pricing_line_needs_rate(const struct hubspot_line_item *li);

/* 1 when the line item carries a tax rate (hs_tax_rate_group_id non-empty): HubSpot's
 * only mark of a taxable line. */
int pricing_line_taxable(const struct hubspot_line_item *li);

#endif
