/* test_mapcache.c - the in-process mapping cache: hits, expiry, invalidation, bounded
 * size, and concurrent use. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "worker/mapcache.h"

static struct mapcache *mk(int64_t ttl)
{
    char err[128];
    struct mapcache *mc = mapcache_new(ttl, err, sizeof err);
    if (!mc)
        fail_msg("mapcache_new: %s", err);
    return mc;
}

static void test_get_put_del(void **state)
{
    struct mapcache *mc = mk(60000);
    char v[MAPCACHE_VAL_MAX];
    struct mapcache_stats st;
    (void)state;

    assert_false(mapcache_get(mc, "123", "sku:abc", v, sizeof v));
    mapcache_put(mc, "123", "sku:abc", "42");
    assert_true(mapcache_get(mc, "123", "sku:abc", v, sizeof v));
    assert_string_equal(v, "42");
    /* the realm is part of the key: another company does not see it */
    assert_false(mapcache_get(mc, "124", "sku:abc", v, sizeof v));
    /* "12" + "3:sku:abc" must not alias "123" + "sku:abc" in a way that returns a value
     * put for a different suffix */
    mapcache_put(mc, "123", "sku:abc", "43"); /* overwrite */
    assert_true(mapcache_get(mc, "123", "sku:abc", v, sizeof v));
    assert_string_equal(v, "43");
    mapcache_del(mc, "123", "sku:abc");
    assert_false(mapcache_get(mc, "123", "sku:abc", v, sizeof v));
    mapcache_stats(mc, &st);
    assert_int_equal(st.hits, 2);
    assert_int_equal(st.misses, 3);
    assert_int_equal(st.puts, 2);
    mapcache_free(mc);
}

static void test_expiry(void **state)
{
    struct mapcache *mc = mk(50);
    char v[MAPCACHE_VAL_MAX];
    (void)state;

    mapcache_put(mc, "1", "term:net30", "3");
    assert_true(mapcache_get(mc, "1", "term:net30", v, sizeof v));
    clock_sleep_ms(80);
    assert_false(mapcache_get(mc, "1", "term:net30", v, sizeof v));
    mapcache_free(mc);
}

static void test_bounds_and_null(void **state)
{
    struct mapcache *mc = mk(60000);
    char v[MAPCACHE_VAL_MAX], longsfx[MAPCACHE_KEY_MAX + 8], longval[MAPCACHE_VAL_MAX + 4];
    struct mapcache_stats st;
    char err[64];
    (void)state;

    assert_null(mapcache_new(0, err, sizeof err));
    /* NULL cache: every call is harmless */
    assert_false(mapcache_get(NULL, "1", "x", v, sizeof v));
    mapcache_put(NULL, "1", "x", "1");
    mapcache_del(NULL, "1", "x");
    mapcache_free(NULL);
    /* too long a key or value is not cached */
    memset(longsfx, 'k', sizeof longsfx - 1);
    longsfx[sizeof longsfx - 1] = '\0';
    mapcache_put(mc, "1", longsfx, "5");
    assert_false(mapcache_get(mc, "1", longsfx, v, sizeof v));
    memset(longval, '7', sizeof longval - 1);
    longval[sizeof longval - 1] = '\0';
    mapcache_put(mc, "1", "x", longval);
    assert_false(mapcache_get(mc, "1", "x", v, sizeof v));
    /* a too small destination is refused rather than overrun */
    mapcache_put(mc, "1", "y", "9");
    assert_false(mapcache_get(mc, "1", "y", v, 8));
    /* far more keys than entries: the table stays bounded and recent keys are found */
    for (int i = 0; i < 4 * MAPCACHE_ENTRIES; i++) {
        char sfx[32], id[16];
        snprintf(sfx, sizeof sfx, "cust:%d", i);
        snprintf(id, sizeof id, "%d", i);
        mapcache_put(mc, "9", sfx, id);
    }
    mapcache_stats(mc, &st);
    assert_true(st.evictions >= 3 * MAPCACHE_ENTRIES - 2);
    {
        int found = 0;
        for (int i = 4 * MAPCACHE_ENTRIES - 100; i < 4 * MAPCACHE_ENTRIES; i++) {
            char sfx[32], id[16];
            snprintf(sfx, sizeof sfx, "cust:%d", i);
            snprintf(id, sizeof id, "%d", i);
            if (mapcache_get(mc, "9", sfx, v, sizeof v)) {
                assert_string_equal(v, id); /* never a wrong id */
                found++;
            }
        }
        assert_true(found >= 90);
    }
    mapcache_free(mc);
}

#define THREADS 4
#define ROUNDS  20000

static void *hammer(void *opaque)
{
    struct mapcache *mc = opaque;
    char v[MAPCACHE_VAL_MAX];

    for (int i = 0; i < ROUNDS; i++) {
        char sfx[32], id[16];
        snprintf(sfx, sizeof sfx, "item:%d", i % 500);
        snprintf(id, sizeof id, "%d", i % 500);
        if (mapcache_get(mc, "7", sfx, v, sizeof v) && strcmp(v, id) != 0)
            return (void *)1;
        if (i % 3 == 0)
            mapcache_put(mc, "7", sfx, id);
        if (i % 97 == 0)
            mapcache_del(mc, "7", sfx);
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    struct mapcache *mc = mk(60000);
    pthread_t th[THREADS];
    (void)state;

    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer, mc), 0);
    for (int i = 0; i < THREADS; i++) {
        void *rv;
        pthread_join(th[i], &rv);
        assert_null(rv);
    }
    mapcache_free(mc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_put_del),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_bounds_and_null),
        cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
