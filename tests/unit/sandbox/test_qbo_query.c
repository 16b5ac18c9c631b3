/* test_qbo_query.c - the sandbox's QBO query language and exact decimals.
 *
 * The HTTP-level behaviour is covered by tests/sandbox/test_sandbox_qbo.py; this program
 * pins the pieces a 6070 or a paging answer depends on: decimal parsing and rounding
 * without binary floating point, and the parser's edge cases.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "tests/sandbox/qbo_query.h"

static struct qbo_dec dec(const char *s)
{
    struct qbo_dec d = {0, 0};
    assert_int_equal(qbo_dec_parse(s, &d), 0);
    return d;
}

static void test_dec_parse_and_compare(void **state)
{
    struct qbo_dec d;
    (void)state;
    assert_int_equal(qbo_dec_cmp(dec("300"), dec("300.00")), 0);
    assert_int_equal(qbo_dec_cmp(dec("1e2"), dec("100")), 0);
    assert_int_equal(qbo_dec_cmp(dec("-0.5"), dec("0")), -1);
    assert_int_equal(qbo_dec_cmp(dec("12.5E-1"), dec("1.25")), 0);
    assert_int_equal(qbo_dec_parse("1.2.3", &d), -1);
    assert_int_equal(qbo_dec_parse("abc", &d), -1);
    assert_int_equal(qbo_dec_parse("", &d), -1);
    assert_int_equal(qbo_dec_parse("99999999999999999999", &d), -1); /* overflow */
    assert_int_equal(qbo_dec_parse("0.1234567891", &d), -1);         /* beyond scale 9 */
    assert_int_equal(qbo_dec_parse("0.1234567890000", &d), 0);       /* zeros are fine */
}

static void test_dec_multiply_rounds_half_away_from_zero(void **state)
{
    struct qbo_dec r;
    int64_t cents;
    (void)state;
    /* 3 x 0.1 is exactly 0.30 here (0.30000000000000004 with doubles) */
    assert_int_equal(qbo_dec_mul_round(dec("3"), dec("0.1"), 2, &r), 0);
    assert_int_equal(qbo_dec_cmp(r, dec("0.30")), 0);
    assert_int_equal(qbo_dec_mul_round(dec("1.5"), dec("33.33"), 2, &r), 0); /* 49.995 */
    assert_int_equal(qbo_dec_cmp(r, dec("50.00")), 0);
    assert_int_equal(qbo_dec_mul_round(dec("-1.5"), dec("33.33"), 2, &r), 0);
    assert_int_equal(qbo_dec_cmp(r, dec("-50.00")), 0);
    assert_int_equal(qbo_dec_mul_round(dec("2.5"), dec("19.99"), 2, &r), 0); /* 49.975 */
    assert_int_equal(qbo_dec_cents(r, &cents), 0);
    assert_int_equal(cents, 4998);
    assert_int_equal(qbo_dec_cents(dec("0.004"), &cents), 0);
    assert_int_equal(cents, 0);
    assert_int_equal(qbo_dec_cents(dec("0.005"), &cents), 0);
    assert_int_equal(cents, 1);
}

static void test_money_json_keeps_two_decimals(void **state)
{
    char buf[32];
    struct json_object *m = qbo_money_json(30000);
    (void)state;
    assert_string_equal(json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN), "300.00");
    json_object_put(m);
    qbo_cents_str(-5, buf, sizeof(buf));
    assert_string_equal(buf, "-0.05");
}

static void test_cents_str_as_printf(void **state)
{
    static const int64_t v[] = {0,      5,      -5,      99,        100,       -100,
                                12345,  -12345, 1000000, INT64_MAX, INT64_MIN, INT64_MIN + 1};
    char got[32], want[32];
    (void)state;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        uint64_t u = v[i] < 0 ? (uint64_t)0 - (uint64_t)v[i] : (uint64_t)v[i];
        for (size_t sz = 0; sz <= sizeof(got); sz += sz < 8 ? 1 : 24) {
            memset(got, 'x', sizeof(got));
            memset(want, 'x', sizeof(want));
            qbo_cents_str(v[i], got, sz);
            snprintf(want, sz, "%s%llu.%02llu", v[i] < 0 ? "-" : "",
                     (unsigned long long)(u / 100), (unsigned long long)(u % 100));
            assert_memory_equal(got, want, sizeof(got));
        }
    }
}

static int64_t pct(int64_t base_cents, const char *percent)
{
    int64_t c = -12345;
    assert_int_equal(qbo_pct_of(base_cents, dec(percent), &c), 0);
    return c;
}

/* Issue 15's pct_of: one rounding, half away from zero, on exact decimals. */
static void test_pct_of_rounds_half_cents_both_ways(void **state)
{
    int64_t c;
    (void)state;
    assert_int_equal(pct(1005, "10"), 101);   /* 100.5 -> up */
    assert_int_equal(pct(1004, "10"), 100);   /* 100.4 -> down */
    assert_int_equal(pct(-1005, "10"), -101); /* -100.5 -> away from zero */
    assert_int_equal(pct(-1004, "10"), -100);
    assert_int_equal(pct(200, "7.25"), 15);  /* 14.5 */
    assert_int_equal(pct(34, "7.25"), 2);    /* 2.465 */
    assert_int_equal(pct(400, "8.875"), 36); /* 35.5 */
    assert_int_equal(pct(28, "8.875"), 2);   /* 2.485 */
    assert_int_equal(pct(5, "9.999"), 0);    /* 0.49995: no rounding to 0.5 first */
    assert_int_equal(pct(10000, "0"), 0);
    assert_int_equal(pct(INT64_MAX, "100"), INT64_MAX);
    assert_int_equal(qbo_pct_of(INT64_MAX, dec("101"), &c), -1); /* overflow, not wrap */
}

static void test_prorate_rounds_half_away_from_zero(void **state)
{
    int64_t c = 0;
    (void)state;
    assert_int_equal(qbo_prorate(2, 100, 400, &c), 0); /* 0.5 */
    assert_int_equal(c, 1);
    assert_int_equal(qbo_prorate(1, 100, 400, &c), 0); /* 0.25 */
    assert_int_equal(c, 0);
    assert_int_equal(qbo_prorate(-2, 100, 400, &c), 0);
    assert_int_equal(c, -1);
    assert_int_equal(qbo_prorate(2, 100, -400, &c), 0);
    assert_int_equal(c, -1);
    assert_int_equal(qbo_prorate(400, 3000, 4000, &c), 0);
    assert_int_equal(c, 300);
    assert_int_equal(qbo_prorate(1, 1, 0, &c), -1);
    assert_int_equal(qbo_prorate(INT64_MAX, 2, 1, &c), -1);
}

static void test_dec_json_is_the_exact_text(void **state)
{
    static const char *const cases[][2] = {
        {"7.25", "7.25"},  {"8.875", "8.875"}, {"10", "10"},         {"10.00", "10"},
        {"1.080", "1.08"}, {"-0.5", "-0.5"},   {"0.0067", "0.0067"}, {"0", "0"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct json_object *j = qbo_dec_json(dec(cases[i][0]));
        assert_string_equal(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN), cases[i][1]);
        json_object_put(j);
    }
}

static struct qbo_query *parse_ok(const char *text)
{
    struct qbo_query *q = NULL;
    struct qbo_qerr err;
    assert_int_equal(qbo_query_parse(text, &q, &err), 0);
    return q;
}

static void test_parse_paging_in_either_order_and_escapes(void **state)
{
    (void)state;
    struct qbo_query *q = parse_ok("select * from Customer where DisplayName = 'Amy\\'s Bird' "
                                   "MAXRESULTS 5 STARTPOSITION 11");
    assert_int_equal(q->start, 11);
    assert_int_equal(q->max, 5);
    assert_int_equal(q->nconds, 1);
    assert_string_equal(q->conds[0].vals[0].s, "Amy's Bird");
    qbo_query_free(q);
    q = parse_ok("SELECT COUNT(*) FROM Item WHERE Sku IN ('a', 'b\\\\c') AND Active = true");
    assert_true(q->is_count);
    assert_int_equal(q->conds[0].op, QOP_IN);
    assert_int_equal(q->conds[0].nvals, 2);
    assert_string_equal(q->conds[0].vals[1].s, "b\\c");
    assert_int_equal(q->conds[1].vals[0].kind, QVAL_BOOL);
    assert_int_equal(q->start, 1);
    assert_int_equal(q->max, QBO_QUERY_DEFAULT_MAX);
    qbo_query_free(q);
}

static void test_parse_errors_are_4000(void **state)
{
    static const char *const bad[] = {
        "select * from Customer where Id = '1' or Id = '2'",
        "select Id from Customer",
        "select * from Customer where DisplayName = 'open",
        "select * from Customer startposition 1 startposition 2",
        "select * from Customer where",
        "select * from",
        "update Customer",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct qbo_query *q = NULL;
        struct qbo_qerr err;
        assert_int_equal(qbo_query_parse(bad[i], &q, &err), -1);
        assert_string_equal(err.code, "4000");
        assert_non_null(strstr(err.detail, "QueryParserError"));
    }
}

static void test_check_validates_fields_and_limits(void **state)
{
    struct qbo_qerr err;
    struct qbo_query *q;
    (void)state;
    q = parse_ok("select * from Customer where PrimaryEmailAddr = 'a@b.c'");
    assert_int_equal(qbo_query_check(q, "Customer", &err), -1);
    assert_string_equal(err.code, "4001");
    qbo_query_free(q);
    q = parse_ok("select * from Customer maxresults 1001");
    assert_int_equal(qbo_query_check(q, "Customer", &err), -1);
    assert_string_equal(err.detail,
                        "QueryValidationError: value 1001 is too large. Max allowed value is 1000");
    qbo_query_free(q);
    q = parse_ok("select * from customer");
    assert_null(qbo_query_entity(q, 0, &err));
    assert_string_equal(qbo_query_entity(q, 1, &err), "Customer");
    qbo_query_free(q);
    q = parse_ok("select * from Invoice where Metadata.LastUpdatedTime > '2020-01-01'");
    assert_int_equal(qbo_query_check(q, "Invoice", &err), 0);
    qbo_query_free(q);
}

/* The pre-filter of a scan over stored text: it may say "maybe" wrongly, never "no". */
static void test_text_prefilter_never_drops_a_match(void **state)
{
    struct qbo_qctx ctx = {1, -420};
    struct qbo_qerr err;
    const char *text = "{\"DocNumber\":\"Ab-1001\",\"PrivateNote\":\"say \\\"hi\\\"\","
                       "\"CustomerRef\":{\"value\":\"3\"},\"TotalAmt\":300.0}";
    struct json_object *row = json_tokener_parse(text);
    static const struct {
        const char *stmt;
        int may, match;
    } cases[] = {
        {"select * from Invoice where DocNumber = 'aB-1001'", 1, 1}, /* ASCII case ignored */
        {"select * from Invoice where DocNumber = 'Ab-1002'", 0, 0},
        {"select * from Invoice where CustomerRef = '3'", 1, 1},
        {"select * from Invoice where CustomerRef = '4'", 0, 0},
        {"select * from Invoice where TotalAmt = '300.00'", 1, 1},   /* money: not filtered */
        {"select * from Invoice where DocNumber like 'Zz%'", 1, 0},  /* only = is filtered */
    };
    (void)state;
    assert_non_null(row);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct qbo_query *q = parse_ok(cases[i].stmt);
        assert_int_equal(qbo_query_text_may_match(q, text), 1); /* unchecked: no filter */
        assert_int_equal(qbo_query_check(q, "Invoice", &err), 0);
        assert_int_equal(qbo_query_text_may_match(q, text), cases[i].may);
        assert_int_equal(qbo_query_match(q, &ctx, row), cases[i].match);
        qbo_query_free(q);
    }
    json_object_put(row);
    /* A literal that JSON text escapes is not looked for. */
    text = "{\"DocNumber\":\"A\\\"1\"}";
    row = json_tokener_parse(text);
    struct qbo_query *q = parse_ok("select * from Invoice where DocNumber = 'A\"1'");
    assert_int_equal(qbo_query_check(q, "Invoice", &err), 0);
    assert_int_equal(qbo_query_text_may_match(q, text), 1);
    assert_int_equal(qbo_query_match(q, &ctx, row), 1);
    qbo_query_free(q);
    json_object_put(row);
}

static void test_match_like_money_and_datetime(void **state)
{
    struct qbo_qctx ctx = {1, -420};
    struct qbo_qerr err;
    struct json_object *row = json_tokener_parse(
        "{\"Id\":\"7\",\"DisplayName\":\"Robertson & Associates\",\"Balance\":100.50,"
        "\"MetaData\":{\"LastUpdatedTime\":\"2024-02-01T09:00:00-08:00\"}}");
    struct qbo_query *q;
    (void)state;
    q = parse_ok("select * from Customer where DisplayName like '%son & a%' and Balance > '100'");
    assert_false(qbo_query_match(q, &ctx, row)); /* not checked yet */
    assert_int_equal(qbo_query_check(q, "Customer", &err), 0);
    assert_true(qbo_query_match(q, &ctx, row));
    qbo_query_free(q);
    q = parse_ok("select * from Customer where Balance >= 100.51");
    assert_int_equal(qbo_query_check(q, "Customer", &err), 0);
    assert_false(qbo_query_match(q, &ctx, row));
    qbo_query_free(q);
    /* 09:00-08:00 is 17:00Z, later than 09:30-07:00 (16:30Z) */
    q = parse_ok("select * from Customer where MetaData.LastUpdatedTime > "
                 "'2024-02-01T09:30:00-0700'");
    assert_int_equal(qbo_query_check(q, "Customer", &err), 0);
    assert_true(qbo_query_match(q, &ctx, row));
    qbo_query_free(q);
    json_object_put(row);
}

static int like(const char *value, const char *pattern)
{
    char text[256];
    struct qbo_qctx ctx = {1, 0};
    struct json_object *row = json_object_new_object();
    json_object_object_add(row, "Name", json_object_new_string(value));
    snprintf(text, sizeof(text), "select * from Item where Name like '%s'", pattern);
    struct qbo_query *q = parse_ok(text);
    struct qbo_qerr err;
    assert_int_equal(qbo_query_check(q, "Item", &err), 0);
    int m = qbo_query_match(q, &ctx, row);
    qbo_query_free(q);
    json_object_put(row);
    return m;
}

static void test_like_patterns(void **state)
{
    (void)state;
    assert_true(like("Widget", "widget"));
    assert_true(like("Widget", "Wid%"));
    assert_true(like("Widget", "%GET"));
    assert_true(like("Widget", "%dg%"));
    assert_true(like("aab", "%a%b"));
    assert_true(like("anything", "%"));
    assert_true(like("x_y", "x_y"));
    assert_false(like("xzy", "x_y")); /* only % is a wildcard */
    assert_false(like("Widget", "Wid"));
    assert_false(like("Widget", "%x%"));
    assert_false(like("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "%a%a%a%a%a%a%a%a%a%b"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dec_parse_and_compare),
        cmocka_unit_test(test_dec_multiply_rounds_half_away_from_zero),
        cmocka_unit_test(test_money_json_keeps_two_decimals),
        cmocka_unit_test(test_cents_str_as_printf),
        cmocka_unit_test(test_pct_of_rounds_half_cents_both_ways),
        cmocka_unit_test(test_prorate_rounds_half_away_from_zero),
        cmocka_unit_test(test_dec_json_is_the_exact_text),
        cmocka_unit_test(test_parse_paging_in_either_order_and_escapes),
        cmocka_unit_test(test_parse_errors_are_4000),
        cmocka_unit_test(test_check_validates_fields_and_limits),
        cmocka_unit_test(test_match_like_money_and_datetime),
        cmocka_unit_test(test_text_prefilter_never_drops_a_match),
        cmocka_unit_test(test_like_patterns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
