/* test_pricing.c - a quote's discounts, fees and taxes, and line taxes, in exact cents:
 * the order HubSpot documents, the bases we read it with, half cents both ways, and the
 * values that must refuse rather than book. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "worker/pricing.h"

#define T(k, id, type, value, sort)                                                            \
    ((struct hubspot_price_term){(k), (id), NULL, (char *)(type), (char *)(value), (char *)(sort)})

static int apply(int64_t subtotal, int64_t line_tax, struct hubspot_price_term *t, size_t n,
                 enum money_round mode, struct pricing_totals *p, struct pricing_applied *a)
{
    char e[256];
    pricing_sort(t, n);
    return pricing_apply(subtotal, line_tax, t, n, mode, p, a, e, sizeof e);
}

/* The model's worked example: discounts on the subtotal, fees on what is left, taxes on
 * that plus the fees, line taxes added at the end. */
static void test_order_and_bases(void **state)
{
    struct hubspot_price_term t[] = {
        T(HUBSPOT_TAX, 30, "PERCENT", "10", NULL),      T(HUBSPOT_FEE, 20, "PERCENT", "5", NULL),
        T(HUBSPOT_DISCOUNT, 11, "FIXED", "50", "2"),   T(HUBSPOT_FEE, 21, "FIXED", "15.00", NULL),
        T(HUBSPOT_DISCOUNT, 10, "PERCENT", "10", "1"),
    };
    struct pricing_applied a[5];
    struct pricing_totals p;
    (void)state;

    assert_int_equal(apply(100000, 1234, t, 5, MONEY_ROUND_HALF_UP, &p, a), 0);
    /* sorted: discounts (sort order 1, 2), fees (20, 21), tax (30) */
    assert_int_equal(t[0].id, 10);
    assert_int_equal(t[1].id, 11);
    assert_int_equal(t[2].id, 20);
    assert_int_equal(t[3].id, 21);
    assert_int_equal(t[4].id, 30);
    assert_int_equal(a[0].cents, 10000); /* 10% of 1000.00 */
    assert_true(a[0].percent);
    assert_int_equal(a[1].cents, 5000);  /* fixed 50 */
    assert_int_equal(a[2].cents, 4250);  /* 5% of 850.00 */
    assert_int_equal(a[3].cents, 1500);
    assert_int_equal(a[4].cents, 9075);  /* 10% of 850.00 + 57.50 */
    assert_int_equal(p.discount, 15000);
    assert_int_equal(p.fees, 5750);
    assert_int_equal(p.order_tax, 9075);
    assert_int_equal(p.line_tax, 1234);
    assert_int_equal(p.total, 100000 - 15000 + 5750 + 9075 + 1234);
}

/* Percent discounts all take the subtotal, whatever their order. */
static void test_discounts_do_not_compound(void **state)
{
    struct hubspot_price_term t[] = {T(HUBSPOT_DISCOUNT, 1, "PERCENT", "50", NULL),
                                     T(HUBSPOT_DISCOUNT, 2, "PERCENT", "50", NULL)};
    struct pricing_applied a[2];
    struct pricing_totals p;
    (void)state;

    assert_int_equal(apply(10000, 0, t, 2, MONEY_ROUND_HALF_UP, &p, a), 0);
    assert_int_equal(p.discount, 10000);
    assert_int_equal(p.total, 0);
}

/* hs_sort_order orders discounts; absent or unparsable sorts last, then by id. */
static void test_sort_order(void **state)
{
    struct hubspot_price_term t[] = {
        T(HUBSPOT_DISCOUNT, 1, "FIXED", "1", NULL), T(HUBSPOT_DISCOUNT, 2, "FIXED", "1", "x"),
        T(HUBSPOT_DISCOUNT, 3, "FIXED", "1", "7"),  T(HUBSPOT_DISCOUNT, 4, "FIXED", "1", "0"),
        T(HUBSPOT_FEE, 0, "FIXED", "1", "0"),
    };
    (void)state;

    pricing_sort(t, 5);
    assert_int_equal(t[0].id, 4);
    assert_int_equal(t[1].id, 3);
    assert_int_equal(t[2].id, 1);
    assert_int_equal(t[3].id, 2);
    assert_int_equal(t[4].kind, HUBSPOT_FEE);
}

/* Half a cent, each kind, up and down: rounded once per term with the configured mode. */
static void test_half_cents(void **state)
{
    struct hubspot_price_term d[] = {T(HUBSPOT_DISCOUNT, 1, "PERCENT", "10", NULL)};
    struct hubspot_price_term f[] = {T(HUBSPOT_FEE, 1, "PERCENT", "10", NULL)};
    struct hubspot_price_term x[] = {T(HUBSPOT_TAX, 1, "PERCENT", "7.25", NULL)};
    struct pricing_applied a[1];
    struct pricing_totals p;
    (void)state;

    /* 10% of 0.05 = 0.005: half up 0.01, half even 0.00 */
    assert_int_equal(apply(5, 0, d, 1, MONEY_ROUND_HALF_UP, &p, a), 0);
    assert_int_equal(p.discount, 1);
    assert_int_equal(p.total, 4);
    assert_int_equal(apply(5, 0, d, 1, MONEY_ROUND_HALF_EVEN, &p, a), 0);
    assert_int_equal(p.discount, 0);
    /* 10% of 0.15 = 0.015 -> 0.02 both ways; of 0.14 = 0.014 -> 0.01 */
    assert_int_equal(apply(15, 0, f, 1, MONEY_ROUND_HALF_EVEN, &p, a), 0);
    assert_int_equal(p.fees, 2);
    assert_int_equal(apply(14, 0, f, 1, MONEY_ROUND_HALF_UP, &p, a), 0);
    assert_int_equal(p.fees, 1);
    /* 7.25% of 2.00 = 0.145 -> 0.15 (half up), 0.14 (half even); of 2.01 = 0.145725 -> 0.15 */
    assert_int_equal(apply(200, 0, x, 1, MONEY_ROUND_HALF_UP, &p, a), 0);
    assert_int_equal(p.order_tax, 15);
    assert_int_equal(apply(200, 0, x, 1, MONEY_ROUND_HALF_EVEN, &p, a), 0);
    assert_int_equal(p.order_tax, 14);
    assert_int_equal(apply(201, 0, x, 1, MONEY_ROUND_HALF_EVEN, &p, a), 0);
    assert_int_equal(p.order_tax, 15);
    /* "none" is not a way to price a percentage: half up */
    assert_int_equal(apply(5, 0, d, 1, MONEY_ROUND_NONE, &p, a), 0);
    assert_int_equal(p.discount, 1);
}

/* What must refuse: nothing is booked on a guess. */
static void test_refusals(void **state)
{
    struct hubspot_price_term bad[][1] = {
        {T(HUBSPOT_DISCOUNT, 1, "PERCENTAGE", "10", NULL)}, /* unknown type */
        {T(HUBSPOT_DISCOUNT, 1, "PERCENT", "-5", NULL)},    /* negative */
        {T(HUBSPOT_FEE, 1, "FIXED", "1e3", NULL)},          /* not a plain decimal */
        {T(HUBSPOT_TAX, 1, "PERCENT", "0.00000001", NULL)}, /* more than 7 decimals */
        {T(HUBSPOT_FEE, 1, NULL, "1", NULL)},               /* no type */
        {T(HUBSPOT_FEE, 1, "FIXED", NULL, NULL)},           /* no value */
        {T(HUBSPOT_DISCOUNT, 1, "FIXED", "100.01", NULL)},  /* above the subtotal */
        {T(HUBSPOT_FEE, 1, "FIXED", "999999999999999.99", NULL)},
    };
    struct pricing_applied a[1];
    struct pricing_totals p;
    char e[256];
    (void)state;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        e[0] = '\0';
        assert_int_equal(pricing_apply(i == 7 ? MONEY_MAX_CENTS : 10000, 0, bad[i], 1,
                                       MONEY_ROUND_HALF_UP, &p, a, e, sizeof e),
                         -1);
        assert_true(e[0] != '\0');
    }
    assert_int_equal(pricing_apply(-1, 0, NULL, 0, MONEY_ROUND_HALF_UP, &p, a, e, sizeof e), -1);
    /* lower-case types are HubSpot's too */
    bad[0][0].type = "percent";
    assert_int_equal(pricing_apply(10000, 0, bad[0], 1, MONEY_ROUND_HALF_UP, &p, a, e, sizeof e),
                     0);
    assert_int_equal(p.discount, 1000);
}

static void test_line_tax(void **state)
{
    struct hubspot_line_item li = {.id = 7, .tax_rate_group_id = "1001"};
    int64_t t = -1;
    char e[256];
    (void)state;

    /* no amount, no rate, no group rate: nothing to book */
    assert_int_equal(pricing_line_tax(&li, 1999, -1, MONEY_ROUND_HALF_UP, &t, e, sizeof e), 0);
    assert_int_equal(t, 0);
    assert_true(pricing_line_needs_rate(&li));
    /* the group's rate: 7.25% of 19.99 = 1.449275 -> 1.45 */
    assert_int_equal(pricing_line_tax(&li, 1999, 72500000, MONEY_ROUND_HALF_UP, &t, e, sizeof e), 0);
    assert_int_equal(t, 145);
    /* the line's own rate wins over the group's */
    li.tax_rate = "8.875";
    assert_false(pricing_line_needs_rate(&li));
    assert_int_equal(pricing_line_tax(&li, 2000, 72500000, MONEY_ROUND_HALF_UP, &t, e, sizeof e), 0);
    assert_int_equal(t, 178); /* 1.775 -> 1.78 */
    assert_int_equal(pricing_line_tax(&li, 2000, 72500000, MONEY_ROUND_HALF_EVEN, &t, e, sizeof e),
                     0);
    assert_int_equal(t, 178); /* 1.775 -> even neighbour 1.78 */
    assert_int_equal(pricing_line_tax(&li, 1000, -1, MONEY_ROUND_HALF_EVEN, &t, e, sizeof e), 0);
    assert_int_equal(t, 89); /* 0.8875 */
    /* HubSpot's own amount wins over any rate */
    li.tax_amount = "1.23";
    assert_int_equal(pricing_line_tax(&li, 2000, 72500000, MONEY_ROUND_HALF_UP, &t, e, sizeof e), 0);
    assert_int_equal(t, 123);
    /* an amount is booked even without a rate group: HubSpot computed it */
    li.tax_rate_group_id = NULL;
    assert_int_equal(pricing_line_tax(&li, 2000, -1, MONEY_ROUND_HALF_UP, &t, e, sizeof e), 0);
    assert_int_equal(t, 123);
    /* unusable values refuse */
    li.tax_amount = "-1";
    assert_int_equal(pricing_line_tax(&li, 2000, -1, MONEY_ROUND_HALF_UP, &t, e, sizeof e), -1);
    li.tax_amount = NULL;
    li.tax_rate_group_id = "1001";
    li.tax_rate = "abc";
    assert_int_equal(pricing_line_tax(&li, 2000, -1, MONEY_ROUND_HALF_UP, &t, e, sizeof e), -1);
    /* not taxable: a rate alone does not make a line taxable */
    li.tax_rate_group_id = "";
    li.tax_rate = "10";
    assert_false(pricing_line_taxable(&li));
    assert_int_equal(pricing_line_tax(&li, 2000, -1, MONEY_ROUND_HALF_UP, &t, e, sizeof e), 0);
    assert_int_equal(t, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_bases), cmocka_unit_test(test_discounts_do_not_compound),
        cmocka_unit_test(test_sort_order),      cmocka_unit_test(test_half_cents),
        cmocka_unit_test(test_refusals),        cmocka_unit_test(test_line_tax),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
