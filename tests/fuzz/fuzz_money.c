/* libFuzzer target for common/money.
 *
 * Every input is parsed as money (all three rounding modes), as a quantity and as a unit
 * price; whatever parses must format and re-parse to the same value, and the modes must
 * agree with each other. An input "A*B" is also multiplied as quantity A times price B,
 * and a unit price is derived back from the product; raw input bytes additionally drive
 * money_mul with arbitrary int64 values. Any violated property aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/money.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static const enum money_round modes[] = {MONEY_ROUND_NONE, MONEY_ROUND_HALF_EVEN,
                                         MONEY_ROUND_HALF_UP};

static void check_errstr(const char *err, size_t size)
{
    CHECK(memchr(err, '\0', size) != NULL);
}

static void fuzz_money_parse(const char *s, size_t len)
{
    int64_t v[3] = {0}, back = 0;
    enum money_err e[3];
    char buf[MONEY_FMT_SIZE], err[128];

    for (int i = 0; i < 3; i++) {
        memset(err, 'z', sizeof(err));
        e[i] = money_parsen(s, len, modes[i], &v[i], err, sizeof(err));
        if (e[i] != MONEY_OK) {
            check_errstr(err, sizeof(err));
            continue;
        }
        CHECK(v[i] >= -MONEY_MAX_CENTS && v[i] <= MONEY_MAX_CENTS);
        CHECK(money_format(v[i], buf, sizeof(buf)) == MONEY_OK);
        CHECK(money_parse(buf, MONEY_ROUND_NONE, &back, NULL, 0) == MONEY_OK);
        CHECK(back == v[i]);
    }
    /* Syntax does not depend on the mode; an exact value is the same in every mode;
     * the two rounding modes differ by at most one cent. */
    CHECK((e[0] == MONEY_ESYNTAX) == (e[1] == MONEY_ESYNTAX));
    CHECK((e[1] == MONEY_ESYNTAX) == (e[2] == MONEY_ESYNTAX));
    if (e[0] == MONEY_OK)
        CHECK(e[1] == MONEY_OK && e[2] == MONEY_OK && v[0] == v[1] && v[0] == v[2]);
    if (e[1] == MONEY_OK && e[2] == MONEY_OK)
        CHECK(v[1] - v[2] <= 1 && v[2] - v[1] <= 1);
}

static int parse_qty(const char *s, size_t len, int64_t *q)
{
    char buf[MONEY_FMT_SIZE], err[64];
    int64_t back = 0;

    if (money_qty_parsen(s, len, q, err, sizeof(err)) != MONEY_OK) {
        check_errstr(err, sizeof(err));
        return -1;
    }
    CHECK(money_qty_format(*q, buf, sizeof(buf)) == MONEY_OK);
    CHECK(money_qty_parse(buf, &back, NULL, 0) == MONEY_OK && back == *q);
    return 0;
}

static int parse_price(const char *s, size_t len, int64_t *p)
{
    char buf[MONEY_FMT_SIZE], err[64];
    int64_t back = 0;

    if (money_price_parsen(s, len, p, err, sizeof(err)) != MONEY_OK) {
        check_errstr(err, sizeof(err));
        return -1;
    }
    CHECK(money_price_format(*p, buf, sizeof(buf)) == MONEY_OK);
    CHECK(money_price_parse(buf, &back, NULL, 0) == MONEY_OK && back == *p);
    return 0;
}

/* Number of decimals a price (units of 10^-7) needs. */
static int price_decimals(int64_t p)
{
    int d = MONEY_PRICE_DECIMALS;

    while (d > 0 && p % 10 == 0) {
        p /= 10;
        d--;
    }
    return d;
}

/* qty x price in every mode, then a unit price derived from the rounded product. */
static void fuzz_line(int64_t q, int64_t p, int maxd)
{
    int64_t c[3] = {0}, up = 0;
    enum money_err e[3];

    for (int i = 0; i < 3; i++) {
        e[i] = money_mul(q, p, modes[i], &c[i]);
        if (e[i] == MONEY_OK) {
            CHECK(c[i] >= -MONEY_MAX_CENTS && c[i] <= MONEY_MAX_CENTS);
            CHECK(money_line_matches(q, p, c[i], modes[i]));
        }
    }
    if (e[0] == MONEY_OK)
        CHECK(c[0] == c[1] && c[0] == c[2]);
    if (e[1] == MONEY_OK && e[2] == MONEY_OK)
        CHECK(c[1] - c[2] <= 1 && c[2] - c[1] <= 1);
    if (e[1] != MONEY_OK)
        return;
    if (money_unit_price_for(q, c[1], maxd, &up) == MONEY_OK) {
        CHECK(price_decimals(up) <= maxd);
        CHECK(money_line_matches(q, up, c[1], MONEY_ROUND_HALF_EVEN));
        CHECK(money_line_matches(q, up, c[1], MONEY_ROUND_HALF_UP));
    } else {
        /* When p itself is an exact answer short enough, one must be found. */
        CHECK(!(e[0] == MONEY_OK && q != 0 && price_decimals(p) <= maxd));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *star = memchr(data, '*', size);
    int64_t q = 0, p = 0, raw[2] = {0};

    fuzz_money_parse(s, size);
    (void)parse_qty(s, size, &q);
    (void)parse_price(s, size, &p);

    if (star != NULL) {
        size_t ql = (size_t)(star - s);
        if (parse_qty(s, ql, &q) == 0 && parse_price(star + 1, size - ql - 1, &p) == 0)
            fuzz_line(q, p, (int)(size % (MONEY_PRICE_DECIMALS + 1)));
    }

    /* Arbitrary int64 operands: out-of-range ones must be refused, never crash. */
    if (size >= sizeof(raw)) {
        memcpy(raw, data, sizeof(raw));
        fuzz_line(raw[0], raw[1], (int)(size % (MONEY_PRICE_DECIMALS + 1)));
        fuzz_line(raw[0] % (MONEY_QTY_MAX + 1), raw[1] % (MONEY_PRICE_MAX + 1),
                  (int)(size % (MONEY_PRICE_DECIMALS + 1)));
        (void)money_unit_price_for(raw[0], raw[1], (int)(data[0] % 9) - 1, &p);
        (void)money_add(raw[0], raw[1], &p);
    }
    return 0;
}
