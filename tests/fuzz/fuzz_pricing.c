/* libFuzzer target for worker/pricing: a quote's discounts, fees and taxes and the line
 * taxes, fed with whatever HubSpot (or an attacker holding a portal) could put in their
 * properties.
 *
 * The input is split on '\n' into fields: the subtotal and line tax in cents (first two
 * fields, as decimal money), then terms of four fields each: kind (d/f/t), hs_type,
 * hs_value, hs_sort_order (an empty field is absent). The terms are sorted and applied
 * in every rounding mode; on success the totals must add up exactly and stay in range,
 * every applied amount be non-negative, and sorting must be stable under a re-sort. Each
 * term's value is also priced as a line tax. Any violated property aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "worker/pricing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define MAX_FIELDS 66
#define MAX_TERMS  16

static const enum money_round modes[] = {MONEY_ROUND_NONE, MONEY_ROUND_HALF_EVEN,
                                         MONEY_ROUND_HALF_UP};

/* The value of s as money, or 0 when it is not (the fuzzer explores both). */
static int64_t money_or_zero(const char *s)
{
    int64_t v = 0;
    if (!s || money_parse(s, MONEY_ROUND_HALF_UP, &v, NULL, 0) != MONEY_OK || v < 0)
        return 0;
    return v;
}

static void check_apply(int64_t sub, int64_t ltax, struct hubspot_price_term *t, size_t n,
                        enum money_round mode)
{
    struct pricing_applied a[MAX_TERMS];
    struct pricing_totals p;
    char e[256];
    int64_t sums[3] = {0, 0, 0};

    memset(e, 'z', sizeof e);
    if (pricing_apply(sub, ltax, t, n, mode, &p, a, e, sizeof e) < 0) {
        CHECK(memchr(e, '\0', sizeof e) != NULL);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        CHECK(a[i].cents >= 0 && a[i].cents <= MONEY_MAX_CENTS);
        CHECK(a[i].percent == (t[i].type && (t[i].type[0] == 'P' || t[i].type[0] == 'p')));
        sums[t[i].kind] += a[i].cents;
    }
    CHECK(p.subtotal == sub && p.line_tax == ltax);
    CHECK(p.discount == sums[HUBSPOT_DISCOUNT] && p.fees == sums[HUBSPOT_FEE] &&
          p.order_tax == sums[HUBSPOT_TAX]);
    CHECK(p.discount <= sub);
    CHECK(p.total == sub - p.discount + p.fees + p.order_tax + p.line_tax);
    CHECK(p.total >= 0 && p.total <= MONEY_MAX_CENTS);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1), *f[MAX_FIELDS];
    struct hubspot_price_term t[MAX_TERMS], again[MAX_TERMS];
    size_t nf = 0, n = 0;
    int64_t sub, ltax;

    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    for (char *p = buf; nf < MAX_FIELDS;) {
        char *nl = strchr(p, '\n');
        f[nf++] = p;
        if (!nl)
            break;
        *nl = '\0';
        p = nl + 1;
    }
    sub = money_or_zero(nf > 0 ? f[0] : NULL);
    ltax = money_or_zero(nf > 1 ? f[1] : NULL);
    for (size_t i = 2; i + 3 < nf && n < MAX_TERMS; i += 4) {
        t[n] = (struct hubspot_price_term){
            .kind = f[i][0] == 'd' ? HUBSPOT_DISCOUNT : f[i][0] == 'f' ? HUBSPOT_FEE : HUBSPOT_TAX,
            .id = (int64_t)n + 1,
            .type = *f[i + 1] ? f[i + 1] : NULL,
            .value = *f[i + 2] ? f[i + 2] : NULL,
            .sort_order = *f[i + 3] ? f[i + 3] : NULL,
        };
        n++;
    }
    pricing_sort(t, n);
    memcpy(again, t, sizeof t[0] * n);
    pricing_sort(again, n);
    for (size_t i = 0; i < n; i++)
        CHECK(again[i].id == t[i].id);
    for (size_t i = 1; i < n; i++)
        CHECK(t[i - 1].kind <= t[i].kind);
    for (size_t m = 0; m < 3; m++)
        check_apply(sub, ltax, t, n, modes[m]);
    for (size_t i = 0; i < n; i++) {
        struct hubspot_line_item li = {.id = 1, .tax_rate_group_id = (char *)"1",
                                       .tax_rate = t[i].value, .tax_amount = t[i].sort_order};
        int64_t tax = -1;
        char e[256];
        if (pricing_line_tax(&li, sub, (int64_t)(i * 1000003), MONEY_ROUND_HALF_UP, &tax, e,
                             sizeof e) == 0)
            CHECK(tax >= 0 && tax <= MONEY_MAX_CENTS);
    }
    free(buf);
    return 0;
}
