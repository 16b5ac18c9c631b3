/* Unit tests for common/backoff: jitter bounds, budgets, Retry-After parsing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "common/backoff.h"

#define SENTINEL ((int64_t)-424242)
/* Sun, 06 Nov 1994 08:49:37 GMT */
#define NOV94_MS 784111777000LL
#define DAY_MS   86400000LL

static const struct backoff_policy pol_default = {
    .base_ms = 100,
    .cap_ms = 10000,
    .max_attempts = 0,
    .max_elapsed_ms = 0,
    .max_retry_after_ms = 5000,
};

/* Injected random source: returns *state. The draw is r mod (ceiling + 1), so
 * r = 2 * e + 1 yields e exactly when the ceiling is e, and r = 0 yields 0. */
static uint64_t stub_fixed(void *state)
{
    return *(uint64_t *)state;
}

struct seq {
    const uint64_t *v;
    size_t n, calls;
};

static uint64_t stub_seq(void *state)
{
    struct seq *s = state;
    return s->v[s->calls++ % s->n];
}

static void init_with(struct backoff *b, const struct backoff_policy *p, uint64_t *r)
{
    assert_int_equal(backoff_init(b, p, 1, NULL, 0), 0);
    if (r != NULL)
        backoff_set_rand(b, stub_fixed, r);
    backoff_start(b, 0);
}

static void test_policy_check(void **state)
{
    struct backoff_policy p;
    struct backoff b;
    char err[128];
    (void)state;

    assert_int_equal(backoff_policy_check(&pol_default, err, sizeof(err)), 0);
    p = pol_default;
    p.base_ms = 0;
    assert_int_equal(backoff_policy_check(&p, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "base_ms"));
    p = pol_default;
    p.cap_ms = 99;
    assert_int_equal(backoff_policy_check(&p, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cap_ms"));
    p = pol_default;
    p.max_attempts = -1;
    assert_int_equal(backoff_policy_check(&p, NULL, 0), -1);
    p = pol_default;
    p.max_elapsed_ms = -1;
    assert_int_equal(backoff_policy_check(&p, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "max_elapsed_ms"));
    p = pol_default;
    p.max_retry_after_ms = -5;
    assert_int_equal(backoff_policy_check(&p, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "max_retry_after_ms"));

    memset(&b, 0x77, sizeof(b));
    assert_int_equal(backoff_init(&b, &p, 0, err, sizeof(err)), -1);
    assert_int_equal(b.attempts, 0x77777777); /* untouched */
}

static void test_ceiling(void **state)
{
    struct backoff_policy p = pol_default;
    (void)state;

    assert_int_equal(backoff_ceiling_ms(&p, 0), 100);
    assert_int_equal(backoff_ceiling_ms(&p, 1), 200);
    assert_int_equal(backoff_ceiling_ms(&p, 6), 6400);
    assert_int_equal(backoff_ceiling_ms(&p, 7), 10000);
    assert_int_equal(backoff_ceiling_ms(&p, 62), 10000);
    assert_int_equal(backoff_ceiling_ms(&p, 63), 10000);
    assert_int_equal(backoff_ceiling_ms(&p, 64), 10000);
    assert_int_equal(backoff_ceiling_ms(&p, UINT32_MAX), 10000);

    /* Shifts that would overflow int64 saturate at the cap. */
    p.base_ms = INT64_C(1) << 62;
    p.cap_ms = INT64_MAX;
    assert_int_equal(backoff_ceiling_ms(&p, 0), INT64_C(1) << 62);
    assert_int_equal(backoff_ceiling_ms(&p, 1), INT64_MAX);
    assert_int_equal(backoff_ceiling_ms(&p, 2), INT64_MAX);
    p.base_ms = 3;
    assert_int_equal(backoff_ceiling_ms(&p, 61), INT64_C(3) << 61);
    assert_int_equal(backoff_ceiling_ms(&p, 62), INT64_MAX);
    p.base_ms = p.cap_ms = 500;
    assert_int_equal(backoff_ceiling_ms(&p, 0), 500);
    assert_int_equal(backoff_ceiling_ms(&p, 5), 500);
}

static void test_jitter_stubbed(void **state)
{
    struct backoff b;
    uint64_t r;
    const uint64_t vals[] = {0, 205};
    struct seq s = {vals, 2, 0};
    (void)state;

    init_with(&b, &pol_default, &r);
    /* r = 2e + 1 draws e exactly when the range is [0, e], pinning the ceiling. */
    r = 201;
    assert_int_equal(backoff_jitter_ms(&b, 0), 100);
    r = 12801;
    assert_int_equal(backoff_jitter_ms(&b, 6), 6400);
    r = 20001;
    assert_int_equal(backoff_jitter_ms(&b, 40), 10000);
    r = 10001; /* wraps to the bottom of [0, 10000] */
    assert_int_equal(backoff_jitter_ms(&b, 40), 0);
    /* A source stuck at a value that is always rejected still terminates. */
    r = 0;
    assert_int_equal(backoff_jitter_ms(&b, 0), 0);

    /* 2^64 mod 101 = 79: a draw below 79 is redrawn (it would bias low delays). */
    backoff_set_rand(&b, stub_seq, &s);
    assert_int_equal(backoff_jitter_ms(&b, 0), 205 % 101);
    assert_int_equal(s.calls, 2);

    /* NULL restores the default generator. */
    backoff_set_rand(&b, NULL, &s);
    for (int i = 0; i < 100; i++) {
        int64_t d = backoff_jitter_ms(&b, 3);
        assert_true(d >= 0 && d <= 800);
    }
    assert_int_equal(s.calls, 2);
}

static void test_jitter_distribution(void **state)
{
    struct backoff b;
    int buckets[10] = {0};
    int64_t sum = 0, lo = INT64_MAX, hi = -1;
    const int n = 20000;
    (void)state;

    assert_int_equal(backoff_init(&b, &pol_default, 0, NULL, 0), 0);
    backoff_start(&b, 0);
    for (int i = 0; i < n; i++) {
        int64_t d = backoff_jitter_ms(&b, 20); /* ceiling = cap = 10000 */
        assert_true(d >= 0 && d <= 10000);
        sum += d;
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
        buckets[d == 10000 ? 9 : d / 1000]++;
    }
    /* Uniform: mean 5000 (sd of the mean ~20), every tenth of the range used. */
    assert_true(sum / n > 4800 && sum / n < 5200);
    assert_true(lo < 50 && hi > 9950);
    for (int i = 0; i < 10; i++)
        assert_true(buckets[i] > 1600 && buckets[i] < 2400);
}

static void test_seeding(void **state)
{
    struct backoff a, b, c, copy;
    int same = 0;
    (void)state;

    assert_int_equal(backoff_init(&a, &pol_default, 1234, NULL, 0), 0);
    assert_int_equal(backoff_init(&b, &pol_default, 1234, NULL, 0), 0);
    assert_int_equal(backoff_init(&c, &pol_default, 0, NULL, 0), 0);
    for (int i = 0; i < 50; i++)
        assert_int_equal(backoff_jitter_ms(&a, 20), backoff_jitter_ms(&b, 20));

    /* A copied struct carries its generator along. */
    copy = a;
    for (int i = 0; i < 50; i++)
        assert_int_equal(backoff_jitter_ms(&copy, 20), backoff_jitter_ms(&a, 20));

    /* Seed 0 gives every struct its own sequence. */
    assert_int_equal(backoff_init(&a, &pol_default, 0, NULL, 0), 0);
    for (int i = 0; i < 50; i++)
        same += backoff_jitter_ms(&a, 20) == backoff_jitter_ms(&c, 20);
    assert_true(same < 5);
}

static void test_next_attempt_budget(void **state)
{
    struct backoff_policy p = pol_default;
    struct backoff b;
    uint64_t r;
    int64_t d = SENTINEL;
    (void)state;

    p.max_attempts = 3;
    init_with(&b, &p, &r);
    r = 201;
    assert_int_equal(backoff_next(&b, 0, -1, &d), BACKOFF_RETRY);
    assert_int_equal(d, 100);
    r = 401;
    assert_int_equal(backoff_next(&b, 0, -1, &d), BACKOFF_RETRY);
    assert_int_equal(d, 200);
    d = SENTINEL;
    assert_int_equal(backoff_next(&b, 0, -1, &d), BACKOFF_GIVE_UP);
    assert_int_equal(backoff_next(&b, 0, 10, &d), BACKOFF_GIVE_UP);
    assert_int_equal(d, SENTINEL);

    /* backoff_start begins a new sequence from the base again. */
    backoff_start(&b, 5000);
    r = 201;
    assert_int_equal(backoff_next(&b, 5000, -1, &d), BACKOFF_RETRY);
    assert_int_equal(d, 100);

    p.max_attempts = 1;
    init_with(&b, &p, &r);
    assert_int_equal(backoff_next(&b, 0, -1, &d), BACKOFF_GIVE_UP);

    /* Unlimited: the ceiling doubles up to the cap and stays there. */
    p.max_attempts = 0;
    init_with(&b, &p, &r);
    for (int i = 0; i < 200; i++) {
        r = 2 * (uint64_t)(i < 7 ? 100 << i : 10000) + 1;
        assert_int_equal(backoff_next(&b, 0, -1, &d), BACKOFF_RETRY);
        assert_int_equal(d, i < 7 ? 100 << i : 10000);
    }
}

static void test_next_elapsed_budget(void **state)
{
    struct backoff_policy p = pol_default;
    struct backoff b;
    uint64_t r = 0;
    int64_t d = SENTINEL;
    (void)state;

    p.max_elapsed_ms = 1000;
    init_with(&b, &p, &r);
    backoff_start(&b, 10000);
    r = 201;
    assert_int_equal(backoff_next(&b, 10000, -1, &d), BACKOFF_RETRY);
    assert_int_equal(d, 100);
    r = 401;
    assert_int_equal(backoff_next(&b, 10300, -1, &d), BACKOFF_RETRY);
    assert_int_equal(d, 200);
    r = 801; /* ends exactly at the deadline: allowed */
    assert_int_equal(backoff_next(&b, 10600, -1, &d), BACKOFF_RETRY);
    assert_int_equal(d, 400);
    r = 1601; /* would end past it: give up now instead of sleeping in vain */
    d = SENTINEL;
    assert_int_equal(backoff_next(&b, 11000, -1, &d), BACKOFF_GIVE_UP);
    assert_int_equal(d, SENTINEL);
    r = 0; /* a zero draw still fits */
    assert_int_equal(backoff_next(&b, 11000, -1, &d), BACKOFF_RETRY);
    assert_int_equal(d, 0);
    assert_int_equal(backoff_next(&b, 11001, -1, &d), BACKOFF_GIVE_UP);

    /* A clock that went backwards counts as no time elapsed; huge gaps do not wrap. */
    backoff_start(&b, 10000);
    assert_int_equal(backoff_next(&b, 5, -1, &d), BACKOFF_RETRY);
    backoff_start(&b, INT64_MIN);
    assert_int_equal(backoff_next(&b, INT64_MAX, -1, &d), BACKOFF_GIVE_UP);

    /* A Retry-After that does not fit the remaining budget gives up too. */
    backoff_start(&b, 0);
    assert_int_equal(backoff_next(&b, 0, 900, &d), BACKOFF_RETRY);
    assert_int_equal(d, 900);
    assert_int_equal(backoff_next(&b, 500, 900, &d), BACKOFF_GIVE_UP);
    assert_int_equal(backoff_next(&b, 500, 501, &d), BACKOFF_GIVE_UP);
    assert_int_equal(backoff_next(&b, 500, 500, &d), BACKOFF_RETRY);
    assert_int_equal(d, 500);
}

static void test_next_retry_after(void **state)
{
    struct backoff b;
    uint64_t r = 0;
    int64_t d = SENTINEL;
    (void)state;

    init_with(&b, &pol_default, &r);
    r = 0;
    assert_int_equal(backoff_next(&b, 0, 3000, &d), BACKOFF_RETRY);
    assert_int_equal(d, 3000);
    assert_int_equal(backoff_next(&b, 0, 60000, &d), BACKOFF_RETRY);
    assert_int_equal(d, 5000); /* capped by max_retry_after_ms */
    r = 801;                   /* third retry: ceiling 400, jitter wins over 50 */
    assert_int_equal(backoff_next(&b, 0, 50, &d), BACKOFF_RETRY);
    assert_int_equal(d, 400);
    r = 0;
    assert_int_equal(backoff_next(&b, 0, -1, &d), BACKOFF_RETRY);
    assert_int_equal(d, 0);
}

static void test_combine(void **state)
{
    (void)state;

    assert_int_equal(backoff_combine_ms(100, -1, 5000), 100);
    assert_int_equal(backoff_combine_ms(100, 3000, 5000), 3000);
    assert_int_equal(backoff_combine_ms(4000, 3000, 5000), 4000);
    assert_int_equal(backoff_combine_ms(100, 60000, 5000), 5000);
    assert_int_equal(backoff_combine_ms(100, 60000, 0), 100);
    assert_int_equal(backoff_combine_ms(0, 0, 0), 0);
    assert_int_equal(backoff_combine_ms(7, 60000, -3), 7);
}

static int64_t ra(const char *s, int64_t now)
{
    int64_t d = SENTINEL;
    char err[256];

    if (backoff_retry_after_parse(s, strlen(s), now, &d, err, sizeof(err)) != 0)
        fail_msg("Retry-After \"%s\" rejected: %s", s, err);
    return d;
}

static void assert_ra_rejected(const char *s, size_t len)
{
    int64_t d = SENTINEL;
    char err[512] = "";

    assert_int_equal(backoff_retry_after_parse(s, len, NOV94_MS, &d, err, sizeof(err)), -1);
    assert_int_equal(d, SENTINEL);
    assert_non_null(strstr(err, "Retry-After"));
}

static void test_retry_after_seconds(void **state)
{
    static const char *bad[] = {
        "",    "   ", "-1",  "+1",   "1.5", "1e3", "12a", "0x10",
        "1 2", "١",   "1,0", "\r\n", "∞",   "-0",  "1s",  "120 seconds",
    };
    char digits[BACKOFF_RETRY_AFTER_MAX_LEN + 2];
    (void)state;

    assert_int_equal(ra("120", 0), 120000);
    assert_int_equal(ra("0", 0), 0);
    assert_int_equal(ra("  120\r\n", 0), 120000);
    assert_int_equal(ra("\t7 ", 0), 7000);
    assert_int_equal(ra("0005", 0), 5000);
    assert_int_equal(ra("604800", 0), BACKOFF_RETRY_AFTER_MAX_MS);
    assert_int_equal(ra("604801", 0), BACKOFF_RETRY_AFTER_MAX_MS);
    assert_int_equal(ra("99999999999999999999999999999999", 0), BACKOFF_RETRY_AFTER_MAX_MS);

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_ra_rejected(bad[i], strlen(bad[i]));
    assert_ra_rejected("1\0", 2);

    /* The named maximum length: 64 bytes pass, 65 do not. */
    memset(digits, '0', sizeof(digits));
    digits[BACKOFF_RETRY_AFTER_MAX_LEN - 1] = '9';
    int64_t d = SENTINEL;
    assert_int_equal(backoff_retry_after_parse(digits, BACKOFF_RETRY_AFTER_MAX_LEN, 0, &d, NULL, 0),
                     0);
    assert_int_equal(d, 9000);
    assert_ra_rejected(digits, BACKOFF_RETRY_AFTER_MAX_LEN + 1);

    assert_int_equal(backoff_retry_after_parse(NULL, 0, 0, &d, NULL, 0), -1);
    assert_int_equal(backoff_retry_after_parse("1", 1, 0, NULL, NULL, 0), -1);
}

static void test_retry_after_dates(void **state)
{
    const int64_t now = NOV94_MS - 120000; /* two minutes before the date */
    (void)state;

    assert_int_equal(ra("Sun, 06 Nov 1994 08:49:37 GMT", now), 120000);
    assert_int_equal(ra("Sunday, 06-Nov-94 08:49:37 GMT", now), 120000);
    assert_int_equal(ra("Sun Nov  6 08:49:37 1994", now), 120000);
    assert_int_equal(ra("Wed Nov 16 08:49:37 1994", now + 10 * DAY_MS), 120000);
    assert_int_equal(ra("Sun, 06 Nov 1994 08:49:37 GMT\r\n", now), 120000);
    assert_int_equal(ra("  Sun, 06 Nov 1994 08:49:37 GMT", now), 120000);
    assert_int_equal(ra("Mon, 07 Nov 1994 08:49:37 GMT", now), 120000 + DAY_MS);
    /* The weekday is not cross-checked against the date. */
    assert_int_equal(ra("Fri, 06 Nov 1994 08:49:37 GMT", now), 120000);
    /* In the past -> retry now; far ahead -> saturated. */
    assert_int_equal(ra("Sun, 06 Nov 1994 08:49:37 GMT", NOV94_MS), 0);
    assert_int_equal(ra("Sun, 06 Nov 1994 08:49:37 GMT", NOV94_MS + 1000), 0);
    assert_int_equal(ra("Sat, 01 Jan 0000 00:00:00 GMT", now), 0);
    assert_int_equal(ra("Fri, 31 Dec 9999 23:59:59 GMT", now), BACKOFF_RETRY_AFTER_MAX_MS);
    assert_int_equal(ra("Fri, 31 Dec 9999 23:59:59 GMT", INT64_MIN), BACKOFF_RETRY_AFTER_MAX_MS);
    assert_int_equal(ra("Sat, 01 Jan 0000 00:00:00 GMT", INT64_MAX), 0);

    /* Calendar: leap days and a leap second. */
    const int64_t feb28_2024 = 1709078400000LL;
    assert_int_equal(ra("Thu, 29 Feb 2024 00:00:00 GMT", feb28_2024), DAY_MS);
    assert_int_equal(ra("Fri, 01 Mar 2024 00:00:00 GMT", feb28_2024), 2 * DAY_MS);
    assert_int_equal(ra("Tue, 29 Feb 2000 00:00:00 GMT", now), BACKOFF_RETRY_AFTER_MAX_MS);
    assert_int_equal(ra("Wed, 28 Feb 2024 23:59:60 GMT", feb28_2024), DAY_MS);
}

static void test_retry_after_bad_dates(void **state)
{
    static const char *bad[] = {
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 gmt",
        "sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 31 Nov 1994 08:49:37 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Wed, 29 Feb 2023 08:49:37 GMT",
        "Thu, 29 Feb 1900 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 06 Nov 1994 08:49 GMT",
        "Sun, 06 Nov 1994 08:49:37 +0000",
        "Sun, 06 Nov 1994 08:49:37 GMT extra",
        "Sun, 06 Nov 1994 08:49:37",
        "Sun,06 Nov 1994 08:49:37 GMT",
        "Sunday, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06-Nov-94 08:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37",
        "Sun Nov 6 08:49:37 1994",
        "Sun Nov  6 08:49:37 94",
        "Sun Nov 06 08:49:37 1994 GMT",
        "Sun Nov  6 8:49:37 1994",
        "2024-02-29T00:00:00Z",
        "Sun, 06 Nov 1994 08:49:37 GMT\x01",
        "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nox 1994 08:49:37 GMT",
    };
    char err[256];
    int64_t d = SENTINEL;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_ra_rejected(bad[i], strlen(bad[i]));

    /* Messages quote the value with control bytes escaped. */
    assert_int_equal(backoff_retry_after_parse("Sun, 31 Feb\x01", 12, 0, &d, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "\"Sun, 31 Feb\\x01\""));
    assert_int_equal(backoff_retry_after_parse("x", 1, 0, &d, NULL, 0), -1);
    assert_int_equal(d, SENTINEL);
}

static void test_retry_after_rfc850_century(void **state)
{
    const int64_t mar2026 = 1772323200000LL; /* Sun, 01 Mar 2026 00:00:00 GMT */
    const int64_t jun2099 = 4083955200000LL;
    const int64_t jun1960 = -302486400000LL;
    (void)state;

    assert_int_equal(ra("Sunday, 01-Mar-26 00:02:00 GMT", mar2026), 120000);
    /* 2030 is ahead (saturated); 1930 would be in the past (0). */
    assert_int_equal(ra("Friday, 01-Mar-30 00:00:00 GMT", mar2026), BACKOFF_RETRY_AFTER_MAX_MS);
    /* Up to 50 years ahead stays in this century, beyond that is the last one. */
    assert_int_equal(ra("Tuesday, 01-Mar-76 00:00:00 GMT", mar2026), BACKOFF_RETRY_AFTER_MAX_MS);
    assert_int_equal(ra("Monday, 01-Mar-77 00:00:00 GMT", mar2026), 0);
    assert_int_equal(ra("Sunday, 06-Nov-94 08:49:37 GMT", mar2026), 0);
    /* Near a century's end the nearest year can be in the next one: 05 is 2105. */
    assert_int_equal(ra("Thursday, 01-Jan-05 00:00:00 GMT", jun2099), BACKOFF_RETRY_AFTER_MAX_MS);
    /* Before 1970: 61 is 1961, seven months ahead (saturated). */
    assert_int_equal(ra("Sunday, 01-Jan-61 00:00:00 GMT", jun1960), BACKOFF_RETRY_AFTER_MAX_MS);
    assert_int_equal(ra("Sunday, 01-Jan-61 00:00:00 GMT", -283996800000LL - 5000), 5000);
    /* From 1960, 94 is 1994 (34 years ahead), 11 is 1911; 10 is exactly 50 years either
     * way and RFC 9110 only moves years MORE than 50 ahead, so it is 2010. */
    assert_int_equal(ra("Sunday, 06-Nov-94 08:49:37 GMT", jun1960), BACKOFF_RETRY_AFTER_MAX_MS);
    assert_int_equal(ra("Monday, 06-Nov-11 08:49:37 GMT", jun1960), 0);
    assert_int_equal(ra("Saturday, 06-Nov-10 08:49:37 GMT", jun1960), BACKOFF_RETRY_AFTER_MAX_MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_check),
        cmocka_unit_test(test_ceiling),
        cmocka_unit_test(test_jitter_stubbed),
        cmocka_unit_test(test_jitter_distribution),
        cmocka_unit_test(test_seeding),
        cmocka_unit_test(test_next_attempt_budget),
        cmocka_unit_test(test_next_elapsed_budget),
        cmocka_unit_test(test_next_retry_after),
        cmocka_unit_test(test_combine),
        cmocka_unit_test(test_retry_after_seconds),
        cmocka_unit_test(test_retry_after_dates),
        cmocka_unit_test(test_retry_after_bad_dates),
        cmocka_unit_test(test_retry_after_rfc850_century),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
