/* Unit tests for common/money: exact parsing, rounding, formatting and line arithmetic. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/money.h"

#define SENTINEL ((int64_t)0x5a5a5a5a5a5a5a5aLL)
#define U        MONEY_QTY_SCALE /* one whole quantity or price unit */

static int64_t cents_of(const char *s, enum money_round mode)
{
    int64_t v = SENTINEL;
    char err[256];

    if (money_parse(s, mode, &v, err, sizeof(err)) != MONEY_OK)
        fail_msg("parse of \"%s\" failed: %s", s, err);
    return v;
}

static enum money_err parse_err(const char *s, enum money_round mode)
{
    int64_t v = SENTINEL;
    enum money_err e = money_parse(s, mode, &v, NULL, 0);

    if (e != MONEY_OK)
        assert_int_equal(v, SENTINEL); /* out-param untouched on failure */
    return e;
}

static int64_t qty_of(const char *s)
{
    int64_t v = SENTINEL;

    assert_int_equal(money_qty_parse(s, &v, NULL, 0), MONEY_OK);
    return v;
}

static int64_t price_of(const char *s)
{
    int64_t v = SENTINEL;

    assert_int_equal(money_price_parse(s, &v, NULL, 0), MONEY_OK);
    return v;
}

/* The exact cases from the issue. */
static void test_issue_cases(void **state)
{
    int64_t sum = 0, c = 0;
    (void)state;

    assert_int_equal(
        money_add(cents_of("0.1", MONEY_ROUND_NONE), cents_of("0.2", MONEY_ROUND_NONE), &sum),
        MONEY_OK);
    assert_int_equal(sum, 30);

    assert_int_equal(parse_err("19.999", MONEY_ROUND_NONE), MONEY_EPRECISION);
    assert_int_equal(cents_of("19.999", MONEY_ROUND_HALF_UP), 2000);
    assert_int_equal(cents_of("19.999", MONEY_ROUND_HALF_EVEN), 2000);
    assert_int_equal(cents_of("0.125", MONEY_ROUND_HALF_EVEN), 12);
    assert_int_equal(cents_of("0.125", MONEY_ROUND_HALF_UP), 13);
    assert_int_equal(cents_of("0.135", MONEY_ROUND_HALF_EVEN), 14);
    assert_int_equal(cents_of("0.135", MONEY_ROUND_HALF_UP), 14);
    assert_int_equal(cents_of("-0.50", MONEY_ROUND_NONE), -50);
    assert_int_equal(cents_of(".5", MONEY_ROUND_NONE), 50);
    assert_int_equal(parse_err("1e3", MONEY_ROUND_NONE), MONEY_ESYNTAX);
    assert_int_equal(parse_err("92233720368547758.07", MONEY_ROUND_NONE), MONEY_EOVERFLOW);
    assert_int_equal(parse_err("92233720368547758.07", MONEY_ROUND_HALF_UP), MONEY_EOVERFLOW);

    assert_int_equal(money_mul(qty_of("3"), price_of("33.33"), MONEY_ROUND_NONE, &c), MONEY_OK);
    assert_int_equal(c, 9999);
    /* 0.5 x 0.01 = 0.005: a tie; half_even goes to the even 0, half_up away from zero. */
    assert_int_equal(money_mul(qty_of("0.5"), price_of("0.01"), MONEY_ROUND_HALF_EVEN, &c),
                     MONEY_OK);
    assert_int_equal(c, 0);
    assert_int_equal(money_mul(qty_of("0.5"), price_of("0.01"), MONEY_ROUND_HALF_UP, &c), MONEY_OK);
    assert_int_equal(c, 1);
    c = SENTINEL;
    assert_int_equal(money_mul(qty_of("0.5"), price_of("0.01"), MONEY_ROUND_NONE, &c),
                     MONEY_EPRECISION);
    assert_int_equal(c, SENTINEL);
}

static void test_parse_accepts(void **state)
{
    static const struct {
        const char *in;
        int64_t cents;
    } ok[] = {
        {"0", 0},
        {"-0", 0},
        {"+0", 0},
        {"-0.00", 0},
        {"+1", 100},
        {"1.", 100},
        {"-1.", -100},
        {"-.5", -50},
        {"+.05", 5},
        {"007.50", 750},
        {"1234.56", 123456},
        {"1.500", 150},
        {"1.5000000000000000000000000000000000000000", 150},
        {"0.01", 1},
        {"-0.01", -1},
        {"1500.00", 150000},
        {"999999999999999.99", MONEY_MAX_CENTS},
        {"-999999999999999.99", -MONEY_MAX_CENTS},
        {"999999999999999.990000", MONEY_MAX_CENTS},
    };
    char zeros[512];
    (void)state;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(cents_of(ok[i].in, MONEY_ROUND_NONE), ok[i].cents);
        assert_int_equal(cents_of(ok[i].in, MONEY_ROUND_HALF_EVEN), ok[i].cents);
        assert_int_equal(cents_of(ok[i].in, MONEY_ROUND_HALF_UP), ok[i].cents);
    }
    /* Leading zeros never count towards overflow. */
    memset(zeros, '0', sizeof(zeros));
    memcpy(zeros + sizeof(zeros) - 6, "123.45", 6);
    int64_t v = 0;
    assert_int_equal(money_parsen(zeros, sizeof(zeros), MONEY_ROUND_NONE, &v, NULL, 0), MONEY_OK);
    assert_int_equal(v, 12345);
}

static void test_parse_rejects_syntax(void **state)
{
    static const char *bad[] = {
        "",         ".",     "-",     "+",    "--1", "+-1",  "-+1",  " 1",  "1 ",    "\t1",
        "1\n",      "1,000", "1,5",   "1e3",  "1E3", "1e-2", "NaN",  "nan", "inf",   "-inf",
        "0x10",     "1..2",  "1.2.3", "$5",   "5$",  "..5",  "-.",   "+.",  "1_000", "1'000",
        "\xd9\xa1", "12a",   "a12",   "0.5.", "1-",  "(1)",  "1.-5", "١",   "--",    "+.e",
    };
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse_err(bad[i], MONEY_ROUND_NONE), MONEY_ESYNTAX);
        assert_int_equal(parse_err(bad[i], MONEY_ROUND_HALF_UP), MONEY_ESYNTAX);
    }
}

static void test_parse_overflow(void **state)
{
    char big[300];
    (void)state;

    assert_int_equal(parse_err("1000000000000000", MONEY_ROUND_NONE), MONEY_EOVERFLOW);
    assert_int_equal(parse_err("-1000000000000000.00", MONEY_ROUND_NONE), MONEY_EOVERFLOW);
    assert_int_equal(parse_err("18446744073709551616", MONEY_ROUND_NONE), MONEY_EOVERFLOW);
    assert_int_equal(parse_err("-92233720368547758.08", MONEY_ROUND_NONE), MONEY_EOVERFLOW);
    /* Rounding up past the maximum is overflow; without a mode it is a precision error. */
    assert_int_equal(parse_err("999999999999999.995", MONEY_ROUND_HALF_UP), MONEY_EOVERFLOW);
    assert_int_equal(parse_err("999999999999999.995", MONEY_ROUND_HALF_EVEN), MONEY_EOVERFLOW);
    assert_int_equal(parse_err("999999999999999.995", MONEY_ROUND_NONE), MONEY_EPRECISION);
    assert_int_equal(cents_of("999999999999999.994", MONEY_ROUND_HALF_UP), MONEY_MAX_CENTS);
    /* Overflow is reported before precision. */
    assert_int_equal(parse_err("1000000000000000.001", MONEY_ROUND_NONE), MONEY_EOVERFLOW);

    memset(big, '9', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(parse_err(big, MONEY_ROUND_NONE), MONEY_EOVERFLOW);
    big[5] = 'x'; /* syntax wins over overflow */
    assert_int_equal(parse_err(big, MONEY_ROUND_NONE), MONEY_ESYNTAX);
}

static void test_parse_rounding(void **state)
{
    static const struct {
        const char *in;
        int64_t even, up;
    } t[] = {
        {"0.125", 12, 13},
        {"0.135", 14, 14},
        {"0.1251", 13, 13},
        {"0.1249999", 12, 12},
        {"-0.125", -12, -13},
        {"-0.135", -14, -14},
        {"2.675", 268, 268}, /* exact decimal: a double would give 2.67 */
        {"1.005", 100, 101},
        {"0.005", 0, 1},
        {"-0.005", 0, -1},
        {"0.0049999", 0, 0},
        {"0.015", 2, 2},
        {"0.0250", 2, 3},
        {"0.02500000000000000000000000001", 3, 3},
        {"19.9950", 2000, 2000},
        {"19.985", 1998, 1999},
        {"0.999", 100, 100},
        {"9.995", 1000, 1000},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        assert_int_equal(cents_of(t[i].in, MONEY_ROUND_HALF_EVEN), t[i].even);
        assert_int_equal(cents_of(t[i].in, MONEY_ROUND_HALF_UP), t[i].up);
        assert_int_equal(parse_err(t[i].in, MONEY_ROUND_NONE), MONEY_EPRECISION);
    }
}

static void test_parse_length_aware(void **state)
{
    int64_t v = SENTINEL;
    (void)state;

    /* An embedded NUL is a byte like any other, and not a digit. */
    assert_int_equal(money_parsen("1\0", 2, MONEY_ROUND_NONE, &v, NULL, 0), MONEY_ESYNTAX);
    assert_int_equal(money_parsen("1.0\0"
                                  "5",
                                  5, MONEY_ROUND_HALF_UP, &v, NULL, 0),
                     MONEY_ESYNTAX);
    assert_int_equal(v, SENTINEL);
    /* Only len bytes are read. */
    assert_int_equal(money_parsen("12.34xyz", 5, MONEY_ROUND_NONE, &v, NULL, 0), MONEY_OK);
    assert_int_equal(v, 1234);
    assert_int_equal(money_parsen("12.34", 0, MONEY_ROUND_NONE, &v, NULL, 0), MONEY_ESYNTAX);

    assert_int_equal(money_parse(NULL, MONEY_ROUND_NONE, &v, NULL, 0), MONEY_EINVAL);
    assert_int_equal(money_parse("1", MONEY_ROUND_NONE, NULL, NULL, 0), MONEY_EINVAL);
    assert_int_equal(money_parse("1", (enum money_round)42, &v, NULL, 0), MONEY_EINVAL);
    assert_int_equal(money_qty_parse(NULL, &v, NULL, 0), MONEY_EINVAL);
    assert_int_equal(money_price_parse("1", NULL, NULL, 0), MONEY_EINVAL);
}

static void test_errstr(void **state)
{
    char err[256], tiny[8];
    int64_t v;
    (void)state;

    assert_int_equal(money_parse("19.999", MONEY_ROUND_NONE, &v, err, sizeof(err)),
                     MONEY_EPRECISION);
    assert_non_null(strstr(err, "\"19.999\""));
    assert_non_null(strstr(err, "3 decimals"));

    /* Untrusted bytes are escaped, long inputs elided. */
    assert_int_equal(money_parsen("\x01\"\\\n\xff", 5, MONEY_ROUND_NONE, &v, err, sizeof(err)),
                     MONEY_ESYNTAX);
    assert_non_null(strstr(err, "\"\\x01\\\"\\\\\\x0a\\xff\""));
    assert_int_equal(money_parse("1111111111111111111111111111111111111111111111111111x",
                                 MONEY_ROUND_NONE, &v, err, sizeof(err)),
                     MONEY_ESYNTAX);
    assert_non_null(strstr(err, "\"..."));
    assert_null(strchr(err, 'x'));

    assert_int_equal(money_parse("1e3", MONEY_ROUND_NONE, &v, tiny, sizeof(tiny)), MONEY_ESYNTAX);
    assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
    assert_int_equal(money_qty_parse("1.12345678", &v, err, sizeof(err)), MONEY_EPRECISION);
    assert_non_null(strstr(err, "quantity"));
    assert_non_null(strstr(err, "8 decimals, at most 7"));

    for (int e = MONEY_OK; e <= MONEY_EINEXACT; e++)
        assert_true(strlen(money_err_str((enum money_err)e)) > 0);
    assert_non_null(money_err_str((enum money_err)99));
}

static void test_round_names(void **state)
{
    enum money_round m = MONEY_ROUND_NONE;
    (void)state;

    assert_int_equal(money_round_parse("half_even", &m), MONEY_OK);
    assert_int_equal(m, MONEY_ROUND_HALF_EVEN);
    assert_int_equal(money_round_parse("bankers", &m), MONEY_OK);
    assert_int_equal(m, MONEY_ROUND_HALF_EVEN);
    assert_int_equal(money_round_parse("half_up", &m), MONEY_OK);
    assert_int_equal(m, MONEY_ROUND_HALF_UP);
    assert_int_equal(money_round_parse("none", &m), MONEY_OK);
    assert_int_equal(m, MONEY_ROUND_NONE);

    m = MONEY_ROUND_HALF_UP;
    assert_int_equal(money_round_parse("HALF_UP", &m), MONEY_EINVAL);
    assert_int_equal(money_round_parse("half up", &m), MONEY_EINVAL);
    assert_int_equal(money_round_parse("", &m), MONEY_EINVAL);
    assert_int_equal(money_round_parse(NULL, &m), MONEY_EINVAL);
    assert_int_equal(money_round_parse("none", NULL), MONEY_EINVAL);
    assert_int_equal(m, MONEY_ROUND_HALF_UP);

    for (int i = MONEY_ROUND_NONE; i <= MONEY_ROUND_HALF_UP; i++) {
        assert_int_equal(money_round_parse(money_round_name((enum money_round)i), &m), MONEY_OK);
        assert_int_equal(m, i);
    }
    assert_string_equal(money_round_name((enum money_round)9), "?");
}

static void assert_fmt(int64_t cents, const char *want)
{
    char buf[MONEY_FMT_SIZE];

    assert_int_equal(money_format(cents, buf, sizeof(buf)), MONEY_OK);
    assert_string_equal(buf, want);
}

static void test_format(void **state)
{
    char buf[8];
    (void)state;

    assert_fmt(0, "0.00");
    assert_fmt(-50, "-0.50");
    assert_fmt(123456, "1234.56");
    assert_fmt(5, "0.05");
    assert_fmt(-5, "-0.05");
    assert_fmt(100, "1.00");
    assert_fmt(MONEY_MAX_CENTS, "999999999999999.99");
    assert_fmt(-MONEY_MAX_CENTS, "-999999999999999.99");
    assert_fmt(INT64_MAX, "92233720368547758.07");
    assert_fmt(INT64_MIN, "-92233720368547758.08");

    /* Exact fit, one short (buffer untouched), NULL. */
    assert_int_equal(money_format(0, buf, 5), MONEY_OK);
    assert_string_equal(buf, "0.00");
    memcpy(buf, "keep", 5);
    assert_int_equal(money_format(-50, buf, 5), MONEY_ENOSPACE);
    assert_string_equal(buf, "keep");
    assert_int_equal(money_format(1, buf, 0), MONEY_ENOSPACE);
    assert_int_equal(money_format(1, NULL, 8), MONEY_EINVAL);
}

static void test_format_round_trip(void **state)
{
    char buf[MONEY_FMT_SIZE];
    uint64_t x = 88172645463325252ULL;
    (void)state;

    for (int i = 0; i < 20000; i++) {
        int64_t v, back = SENTINEL;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v = (int64_t)(x % (2 * (uint64_t)MONEY_MAX_CENTS + 1)) - MONEY_MAX_CENTS;
        if (i % 3 == 0)
            v %= 100000; /* plenty of small values too */
        assert_int_equal(money_format(v, buf, sizeof(buf)), MONEY_OK);
        assert_int_equal(money_parse(buf, MONEY_ROUND_NONE, &back, NULL, 0), MONEY_OK);
        assert_int_equal(back, v);
    }
}

static void test_qty(void **state)
{
    char buf[MONEY_FMT_SIZE];
    int64_t v = SENTINEL;
    (void)state;

    assert_int_equal(qty_of("3"), 3 * U);
    assert_int_equal(qty_of("0.5"), U / 2);
    assert_int_equal(qty_of("2.25"), 9 * U / 4);
    assert_int_equal(qty_of("0.0000001"), 1);
    assert_int_equal(qty_of("0.000000100"), 1);
    assert_int_equal(qty_of("-1.5"), -3 * U / 2);
    assert_int_equal(qty_of("99999999999.9999999"), MONEY_QTY_MAX);
    assert_int_equal(money_qty_parse("0.00000001", &v, NULL, 0), MONEY_EPRECISION);
    assert_int_equal(money_qty_parse("100000000000", &v, NULL, 0), MONEY_EOVERFLOW);
    assert_int_equal(money_qty_parse("1e2", &v, NULL, 0), MONEY_ESYNTAX);
    assert_int_equal(money_qty_parsen("2.5", 1, &v, NULL, 0), MONEY_OK);
    assert_int_equal(v, 2 * U);

    assert_int_equal(money_qty_format(3 * U, buf, sizeof(buf)), MONEY_OK);
    assert_string_equal(buf, "3");
    assert_int_equal(money_qty_format(U / 2, buf, sizeof(buf)), MONEY_OK);
    assert_string_equal(buf, "0.5");
    assert_int_equal(money_qty_format(1, buf, sizeof(buf)), MONEY_OK);
    assert_string_equal(buf, "0.0000001");
    assert_int_equal(money_qty_format(-3 * U / 2, buf, sizeof(buf)), MONEY_OK);
    assert_string_equal(buf, "-1.5");
    assert_int_equal(money_qty_format(0, buf, sizeof(buf)), MONEY_OK);
    assert_string_equal(buf, "0");
}

static void test_price(void **state)
{
    char buf[MONEY_FMT_SIZE];
    int64_t v = SENTINEL;
    (void)state;

    assert_int_equal(price_of("33.333"), 333330000);
    assert_int_equal(price_of("24.4898829"), 244898829);
    assert_int_equal(money_price_parse("0.123456789", &v, NULL, 0), MONEY_EPRECISION);
    assert_int_equal(money_price_parse("1,5", &v, NULL, 0), MONEY_ESYNTAX);

    assert_int_equal(money_price_format(150 * U, buf, sizeof(buf)), MONEY_OK);
    assert_string_equal(buf, "150.00");
    assert_int_equal(money_price_format(price_of("33.333"), buf, sizeof(buf)), MONEY_OK);
    assert_string_equal(buf, "33.333");
    assert_int_equal(money_price_format(price_of("0.005"), buf, sizeof(buf)), MONEY_OK);
    assert_string_equal(buf, "0.005");
    assert_int_equal(money_price_format(price_of("-24.4898829"), buf, sizeof(buf)), MONEY_OK);
    assert_string_equal(buf, "-24.4898829");
    assert_int_equal(money_price_format(price_of("1.5"), buf, sizeof(buf)), MONEY_OK);
    assert_string_equal(buf, "1.50");
}

static void assert_mul(const char *q, const char *p, enum money_round mode, int64_t want)
{
    int64_t c = SENTINEL;

    assert_int_equal(money_mul(qty_of(q), price_of(p), mode, &c), MONEY_OK);
    assert_int_equal(c, want);
}

/* Percentages of amounts (quote discounts, fees and taxes; line taxes): exact, rounded
 * once, at half a cent both ways. */
static void assert_pct(int64_t cents, const char *pct, enum money_round mode, int64_t want)
{
    int64_t c = SENTINEL;
    assert_int_equal(money_percent(cents, qty_of(pct), mode, &c), MONEY_OK);
    assert_int_equal(c, want);
}

static void test_percent(void **state)
{
    int64_t c = SENTINEL;
    (void)state;

    assert_pct(10000, "10", MONEY_ROUND_NONE, 1000);
    assert_pct(5, "10", MONEY_ROUND_HALF_UP, 1);   /* 0.005 -> 0.01 */
    assert_pct(5, "10", MONEY_ROUND_HALF_EVEN, 0); /* 0.005 -> 0.00 */
    assert_pct(15, "10", MONEY_ROUND_HALF_EVEN, 2); /* 0.015 -> 0.02 */
    assert_pct(-15, "10", MONEY_ROUND_HALF_UP, -2); /* symmetric around zero */
    assert_pct(15, "-10", MONEY_ROUND_HALF_UP, -2);
    assert_pct(1999, "7.25", MONEY_ROUND_HALF_UP, 145);  /* 144.9275 */
    assert_pct(2000, "8.875", MONEY_ROUND_HALF_UP, 178); /* 177.5 -> up */
    assert_pct(2000, "8.875", MONEY_ROUND_HALF_EVEN, 178);
    assert_pct(1000, "8.875", MONEY_ROUND_HALF_UP, 89);   /* 88.75 */
    assert_pct(3333, "33.3333333", MONEY_ROUND_HALF_UP, 1111); /* 1110.99999889 */
    assert_pct(1, "49.9999999", MONEY_ROUND_HALF_UP, 0);  /* just under half a cent */
    assert_pct(1, "50", MONEY_ROUND_HALF_UP, 1);          /* exactly half */
    assert_pct(MONEY_MAX_CENTS, "100", MONEY_ROUND_NONE, MONEY_MAX_CENTS);
    assert_pct(0, "99", MONEY_ROUND_NONE, 0);

    assert_int_equal(money_percent(5, qty_of("10"), MONEY_ROUND_NONE, &c), MONEY_EPRECISION);
    assert_int_equal(money_percent(MONEY_MAX_CENTS, qty_of("100.0000001"), MONEY_ROUND_HALF_UP, &c),
                     MONEY_EOVERFLOW);
    assert_int_equal(c, SENTINEL);
    assert_int_equal(money_percent(MONEY_MAX_CENTS + 1, U, MONEY_ROUND_NONE, &c), MONEY_EINVAL);
    assert_int_equal(money_percent(1, MONEY_QTY_MAX + 1, MONEY_ROUND_NONE, &c), MONEY_EINVAL);
    assert_int_equal(money_percent(1, U, (enum money_round)7, &c), MONEY_EINVAL);
    assert_int_equal(money_percent(1, U, MONEY_ROUND_NONE, NULL), MONEY_EINVAL);
}

static void test_mul(void **state)
{
    int64_t c = SENTINEL;
    (void)state;

    assert_mul("2", "150", MONEY_ROUND_NONE, 30000);
    assert_mul("3", "33.333", MONEY_ROUND_HALF_EVEN, 10000);
    assert_mul("2.25", "19.99", MONEY_ROUND_HALF_EVEN, 4498); /* 44.9775 */
    assert_mul("2.25", "19.99", MONEY_ROUND_HALF_UP, 4498);
    assert_mul("-2", "10", MONEY_ROUND_NONE, -2000);
    assert_mul("-0.5", "0.01", MONEY_ROUND_HALF_UP, -1); /* symmetric around zero */
    assert_mul("-0.5", "0.01", MONEY_ROUND_HALF_EVEN, 0);
    assert_mul("0.5", "-0.03", MONEY_ROUND_HALF_EVEN, -2); /* -0.015 -> -0.02 */
    assert_mul("0.0000001", "0.0000001", MONEY_ROUND_HALF_UP, 0);
    assert_mul("1", "99999999999.99", MONEY_ROUND_NONE, 9999999999999);
    assert_mul("1000", "99999999999.99", MONEY_ROUND_NONE, 9999999999999000LL);

    assert_int_equal(money_mul(qty_of("3"), price_of("33.333"), MONEY_ROUND_NONE, &c),
                     MONEY_EPRECISION);
    assert_int_equal(money_mul(MONEY_QTY_MAX, MONEY_PRICE_MAX, MONEY_ROUND_HALF_UP, &c),
                     MONEY_EOVERFLOW);
    assert_int_equal(money_mul(-MONEY_QTY_MAX, MONEY_PRICE_MAX, MONEY_ROUND_HALF_UP, &c),
                     MONEY_EOVERFLOW);
    assert_int_equal(money_mul(qty_of("10000000000"), price_of("10000000"), MONEY_ROUND_NONE, &c),
                     MONEY_EOVERFLOW);
    assert_int_equal(c, SENTINEL);
    assert_int_equal(money_mul(INT64_MIN, U, MONEY_ROUND_NONE, &c), MONEY_EINVAL);
    assert_int_equal(money_mul(U, MONEY_PRICE_MAX + 1, MONEY_ROUND_NONE, &c), MONEY_EINVAL);
    assert_int_equal(money_mul(U, U, (enum money_round)7, &c), MONEY_EINVAL);
    assert_int_equal(money_mul(U, U, MONEY_ROUND_NONE, NULL), MONEY_EINVAL);
}

static void test_line_matches(void **state)
{
    (void)state;

    assert_true(money_line_matches(qty_of("3"), price_of("33.33"), 9999, MONEY_ROUND_NONE));
    assert_false(money_line_matches(qty_of("3"), price_of("33.33"), 10000, MONEY_ROUND_HALF_UP));
    assert_true(money_line_matches(qty_of("3"), price_of("33.333"), 10000, MONEY_ROUND_HALF_UP));
    assert_false(money_line_matches(qty_of("3"), price_of("33.333"), 10000, MONEY_ROUND_NONE));
    assert_false(money_line_matches(INT64_MAX, U, 0, MONEY_ROUND_HALF_UP));
}

static void test_add_sum(void **state)
{
    int64_t r = SENTINEL;
    const int64_t v[] = {MONEY_MAX_CENTS, 1, -1};
    const int64_t w[] = {10, 20, -5, 12345};
    (void)state;

    assert_int_equal(money_add(MONEY_MAX_CENTS, -MONEY_MAX_CENTS, &r), MONEY_OK);
    assert_int_equal(r, 0);
    r = SENTINEL;
    assert_int_equal(money_add(MONEY_MAX_CENTS, 1, &r), MONEY_EOVERFLOW);
    assert_int_equal(money_add(-MONEY_MAX_CENTS, -1, &r), MONEY_EOVERFLOW);
    assert_int_equal(money_add(INT64_MAX, INT64_MIN, &r), MONEY_EOVERFLOW);
    assert_int_equal(r, SENTINEL);
    assert_int_equal(money_add(1, 2, NULL), MONEY_EINVAL);

    assert_int_equal(money_sum(w, 4, &r), MONEY_OK);
    assert_int_equal(r, 12370);
    assert_int_equal(money_sum(NULL, 0, &r), MONEY_OK);
    assert_int_equal(r, 0);
    assert_int_equal(money_sum(NULL, 1, &r), MONEY_EINVAL);
    /* Every partial sum must stay in range, not only the total. */
    assert_int_equal(money_sum(v, 3, &r), MONEY_EOVERFLOW);
}

/* Number of decimals a price7 value needs. */
static int price_decimals(int64_t p)
{
    int d = MONEY_PRICE_DECIMALS;

    while (d > 0 && p % 10 == 0) {
        p /= 10;
        d--;
    }
    return d;
}

static void assert_unit_price(const char *q, int64_t amount, int maxd, const char *want)
{
    char buf[MONEY_FMT_SIZE];
    int64_t p = SENTINEL;

    assert_int_equal(money_unit_price_for(qty_of(q), amount, maxd, &p), MONEY_OK);
    assert_int_equal(money_price_format(p, buf, sizeof(buf)), MONEY_OK);
    assert_string_equal(buf, want);
    assert_true(money_line_matches(qty_of(q), p, amount, MONEY_ROUND_HALF_EVEN));
    assert_true(money_line_matches(qty_of(q), p, amount, MONEY_ROUND_HALF_UP));
}

static void test_unit_price_for(void **state)
{
    int64_t p = SENTINEL;
    (void)state;

    assert_unit_price("2", 30000, 7, "150.00");
    assert_unit_price("3", 9999, 2, "33.33");
    assert_unit_price("4", 1000, 7, "2.50");
    assert_unit_price("3", 5397, 7, "17.99"); /* 3 x 19.99 less 10% discount */
    assert_unit_price("3", 10000, 3, "33.333");
    assert_unit_price("3", 10000, 7, "33.3333333");
    assert_unit_price("7", 100, 5, "0.14286");
    assert_unit_price("9.39", 22996, 5, "24.48988");
    assert_unit_price("0.5", 1, 7, "0.02");
    assert_unit_price("2", -300, 7, "-1.50"); /* refund-style negative line */
    assert_unit_price("-2", -300, 7, "1.50");
    assert_unit_price("5", 0, 0, "0.00");
    assert_unit_price("0", 0, 7, "0.00");
    /* Exact products win over shorter approximations: 0.004 x 2 = 0.008 would round to
     * 0.01, but 2.5 is exact. */
    assert_unit_price("0.004", 1, 7, "2.50");

    assert_int_equal(money_unit_price_for(qty_of("3"), 10000, 2, &p), MONEY_EINEXACT);
    assert_int_equal(money_unit_price_for(0, 5, 7, &p), MONEY_EINEXACT);
    assert_int_equal(money_unit_price_for(qty_of("99999999999"), 1, 7, &p), MONEY_EINEXACT);
    assert_int_equal(money_unit_price_for(1, 10000000000LL, 7, &p), MONEY_EOVERFLOW);
    assert_int_equal(money_unit_price_for(3, 10000000000LL, 7, &p), MONEY_EOVERFLOW);
    assert_int_equal(money_unit_price_for(U, 1, -1, &p), MONEY_EINVAL);
    assert_int_equal(money_unit_price_for(U, 1, 8, &p), MONEY_EINVAL);
    assert_int_equal(money_unit_price_for(U, MONEY_MAX_CENTS + 1, 2, &p), MONEY_EINVAL);
    assert_int_equal(money_unit_price_for(U, 1, 2, NULL), MONEY_EINVAL);
    assert_int_equal(p, SENTINEL);
}

/* Whatever the inputs, a returned price reproduces the amount under both rounding
 * modes and respects max_decimals. */
static void test_unit_price_property(void **state)
{
    static const int64_t qty_scales[] = {U, U / 10, U / 100, U / 1000, 1};
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    int ok = 0;
    (void)state;

    for (int i = 0; i < 20000; i++) {
        int64_t q, amount, p;
        int maxd;
        enum money_err e;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        q = (int64_t)(x % 100000 + 1) * qty_scales[(x >> 20) % 5];
        amount = (int64_t)((x >> 24) % 100000000) - 10000000;
        maxd = (int)((x >> 60) % 8);
        e = money_unit_price_for(q, amount, maxd, &p);
        if (e == MONEY_EINEXACT || e == MONEY_EOVERFLOW)
            continue;
        assert_int_equal(e, MONEY_OK);
        assert_true(price_decimals(p) <= maxd);
        assert_true(money_line_matches(q, p, amount, MONEY_ROUND_HALF_EVEN));
        assert_true(money_line_matches(q, p, amount, MONEY_ROUND_HALF_UP));
        ok++;
    }
    assert_true(ok > 5000); /* the generator mostly produces solvable lines */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issue_cases),
        cmocka_unit_test(test_parse_accepts),
        cmocka_unit_test(test_parse_rejects_syntax),
        cmocka_unit_test(test_parse_overflow),
        cmocka_unit_test(test_parse_rounding),
        cmocka_unit_test(test_parse_length_aware),
        cmocka_unit_test(test_errstr),
        cmocka_unit_test(test_round_names),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_qty),
        cmocka_unit_test(test_price),
        cmocka_unit_test(test_mul),
        cmocka_unit_test(test_percent),
        cmocka_unit_test(test_line_matches),
        cmocka_unit_test(test_add_sum),
        cmocka_unit_test(test_unit_price_for),
        cmocka_unit_test(test_unit_price_property),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
