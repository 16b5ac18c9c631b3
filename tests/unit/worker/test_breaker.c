/* test_breaker.c - per-tenant circuit breakers.
 *
 * What an operator relies on: a tenant that keeps failing stops receiving calls after
 * breaker.failures consecutive failures, while every other tenant is untouched; after
 * the cooldown exactly one probe goes through; its success closes the circuit, its
 * failure re-opens it for twice as long (capped); a success in between resets the
 * count; a probe that never reports does not block the tenant forever; the number of
 * tenants tracked is bounded; 0 disables it; metrics see every state change.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "worker/breaker.h"

static struct {
    char tenant[BREAKER_TENANT_MAX + 1];
    enum breaker_state st;
    int changes;
} C;

static void on_change(void *opaque, const char *tenant, enum breaker_state st)
{
    (void)opaque;
    snprintf(C.tenant, sizeof C.tenant, "%s", tenant);
    C.st = st;
    C.changes++;
}

static struct breaker *mk(int threshold, int64_t cooldown, int64_t max_cooldown)
{
    struct breaker_opts o = {.threshold = threshold,
                             .cooldown_ms = cooldown,
                             .max_cooldown_ms = max_cooldown,
                             .on_change = on_change};
    char e[256];
    struct breaker *b = breaker_new(&o, e, sizeof e);

    assert_non_null(b);
    memset(&C, 0, sizeof C);
    return b;
}

static void fail_n(struct breaker *b, const char *t, int n, int64_t now)
{
    while (n-- > 0)
        breaker_failure(b, t, now);
}

static void test_opens_after_consecutive_failures_only_for_that_tenant(void **state)
{
    struct breaker *b = mk(3, 1000, 8000);
    int64_t at = 0;
    (void)state;

    assert_int_equal(breaker_acquire(b, "realm:1", 0, NULL), BREAKER_ALLOW);
    fail_n(b, "realm:1", 2, 10);
    assert_int_equal(breaker_acquire(b, "realm:1", 20, NULL), BREAKER_ALLOW);
    assert_int_equal(breaker_failure(b, "realm:1", 30), BREAKER_OPEN);
    assert_string_equal(C.tenant, "realm:1");
    assert_int_equal(C.st, BREAKER_OPEN);
    assert_int_equal(breaker_acquire(b, "realm:1", 40, &at), BREAKER_DENY);
    assert_int_equal(at, 1030); /* the end of the cooldown */
    /* every other tenant flows */
    assert_int_equal(breaker_acquire(b, "realm:2", 40, NULL), BREAKER_ALLOW);
    assert_int_equal(breaker_acquire(b, "portal:1", 40, NULL), BREAKER_ALLOW);
    assert_int_equal(breaker_open_count(b), 1);
    breaker_free(b);
}

static void test_success_resets_the_count(void **state)
{
    struct breaker *b = mk(3, 1000, 8000);
    (void)state;

    fail_n(b, "realm:1", 2, 0);
    breaker_success(b, "realm:1", 1);
    fail_n(b, "realm:1", 2, 2);
    assert_int_equal(breaker_acquire(b, "realm:1", 3, NULL), BREAKER_ALLOW);
    assert_int_equal(C.changes, 0);
    breaker_free(b);
}

static void test_half_open_probe_success_closes(void **state)
{
    struct breaker *b = mk(2, 1000, 8000);
    (void)state;

    fail_n(b, "realm:1", 2, 0);
    assert_int_equal(breaker_acquire(b, "realm:1", 999, NULL), BREAKER_DENY);
    assert_int_equal(breaker_state(b, "realm:1", 1000), BREAKER_HALF_OPEN);
    assert_int_equal(breaker_acquire(b, "realm:1", 1000, NULL), BREAKER_PROBE);
    /* one probe at a time */
    assert_int_equal(breaker_acquire(b, "realm:1", 1001, NULL), BREAKER_DENY);
    breaker_success(b, "realm:1", 1200);
    assert_int_equal(C.st, BREAKER_CLOSED);
    assert_int_equal(breaker_acquire(b, "realm:1", 1201, NULL), BREAKER_ALLOW);
    assert_int_equal(breaker_open_count(b), 0);
    breaker_free(b);
}

static void test_failed_probe_reopens_for_longer_up_to_the_cap(void **state)
{
    struct breaker *b = mk(1, 1000, 3000);
    int64_t at = 0, t = 0;
    (void)state;

    breaker_failure(b, "portal:7", t);
    t = 1000;
    assert_int_equal(breaker_acquire(b, "portal:7", t, NULL), BREAKER_PROBE);
    assert_int_equal(breaker_failure(b, "portal:7", t), BREAKER_OPEN);
    assert_int_equal(breaker_acquire(b, "portal:7", t + 1999, &at), BREAKER_DENY);
    assert_int_equal(at, t + 2000); /* doubled */
    t += 2000;
    assert_int_equal(breaker_acquire(b, "portal:7", t, NULL), BREAKER_PROBE);
    breaker_failure(b, "portal:7", t);
    assert_int_equal(breaker_acquire(b, "portal:7", t + 2999, &at), BREAKER_DENY);
    assert_int_equal(at, t + 3000); /* capped at max_cooldown */
    t += 3000;
    assert_int_equal(breaker_acquire(b, "portal:7", t, NULL), BREAKER_PROBE);
    breaker_success(b, "portal:7", t);
    /* closed again, and the next opening starts from the base cooldown */
    breaker_failure(b, "portal:7", t + 1);
    assert_int_equal(breaker_acquire(b, "portal:7", t + 2, &at), BREAKER_DENY);
    assert_int_equal(at, t + 1 + 1000);
    breaker_free(b);
}

static void test_lost_probe_is_given_up_after_a_cooldown(void **state)
{
    struct breaker *b = mk(1, 1000, 8000);
    (void)state;

    breaker_failure(b, "realm:9", 0);
    assert_int_equal(breaker_acquire(b, "realm:9", 1000, NULL), BREAKER_PROBE);
    /* the probe's event ended without a verdict (e.g. its claim was lost) */
    assert_int_equal(breaker_acquire(b, "realm:9", 1500, NULL), BREAKER_DENY);
    assert_int_equal(breaker_acquire(b, "realm:9", 2000, NULL), BREAKER_PROBE);
    breaker_free(b);
}

static void test_disabled_and_null(void **state)
{
    struct breaker *b = mk(0, 0, 0);
    (void)state;

    fail_n(b, "realm:1", 100, 0);
    assert_int_equal(breaker_acquire(b, "realm:1", 1, NULL), BREAKER_ALLOW);
    assert_int_equal(breaker_state(b, "realm:1", 1), BREAKER_CLOSED);
    breaker_free(b);
    assert_int_equal(breaker_acquire(NULL, "realm:1", 1, NULL), BREAKER_ALLOW);
    assert_int_equal(breaker_failure(NULL, "realm:1", 1), BREAKER_CLOSED);
    breaker_free(NULL);
}

static void test_bad_options_refused(void **state)
{
    struct breaker_opts o = {.threshold = 3, .cooldown_ms = 1000, .max_cooldown_ms = 10};
    char e[256];
    (void)state;

    assert_null(breaker_new(&o, e, sizeof e));
    assert_non_null(strstr(e, "max_cooldown"));
    assert_string_equal(breaker_state_name(BREAKER_HALF_OPEN), "half_open");
}

static void test_tenant_table_is_bounded(void **state)
{
    struct breaker *b = mk(2, 1000000, 1000000);
    char t[32];
    int i;
    (void)state;

    /* one open tenant, then more failing-once tenants than the table holds */
    fail_n(b, "realm:open", 2, 0);
    for (i = 0; i < BREAKER_MAX_TENANTS + 50; i++) {
        snprintf(t, sizeof t, "portal:%d", i);
        breaker_failure(b, t, 1 + i);
    }
    /* the open circuit survived the churn (closed ones were evicted first) */
    assert_int_equal(breaker_acquire(b, "realm:open", 100000, NULL), BREAKER_DENY);
    /* an over-long tenant name is simply not tracked */
    {
        char longname[BREAKER_TENANT_MAX + 10];

        memset(longname, 'y', sizeof longname - 1);
        longname[sizeof longname - 1] = '\0';
        fail_n(b, longname, 5, 0);
        assert_int_equal(breaker_acquire(b, longname, 1, NULL), BREAKER_ALLOW);
    }
    breaker_free(b);
}

static struct breaker *shared;

static void *hammer(void *opaque)
{
    char t[32];
    int i;

    for (i = 0; i < 2000; i++) {
        snprintf(t, sizeof t, "realm:%d", (int)(intptr_t)opaque + i % 7);
        if (breaker_acquire(shared, t, i, NULL) != BREAKER_DENY) {
            if (i % 3)
                breaker_failure(shared, t, i);
            else
                breaker_success(shared, t, i);
        }
    }
    return NULL;
}

static void test_threads(void **state)
{
    pthread_t th[4];
    int i;
    (void)state;

    shared = mk(3, 50, 400);
    for (i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, hammer, (void *)(intptr_t)i);
    for (i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_true(breaker_open_count(shared) <= 10);
    breaker_free(shared);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opens_after_consecutive_failures_only_for_that_tenant),
        cmocka_unit_test(test_success_resets_the_count),
        cmocka_unit_test(test_half_open_probe_success_closes),
        cmocka_unit_test(test_failed_probe_reopens_for_longer_up_to_the_cap),
        cmocka_unit_test(test_lost_probe_is_given_up_after_a_cooldown),
        cmocka_unit_test(test_disabled_and_null),
        cmocka_unit_test(test_bad_options_refused),
        cmocka_unit_test(test_tenant_table_is_bounded),
        cmocka_unit_test(test_threads),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
