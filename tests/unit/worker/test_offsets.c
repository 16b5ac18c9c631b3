/* test_offsets.c - the commit offset of a partition is the end of the contiguous
 * completed prefix: never past an unfinished message (no event lost after a crash),
 * across gaps librdkafka leaves in the offsets, whatever the completion order, within a
 * bounded window, and fresh after a reassignment. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>

#include "worker/offsets.h"

static void dispatch_range(struct offsets *t, int64_t from, int64_t to)
{
    for (int64_t o = from; o <= to; o++)
        assert_int_equal(offsets_dispatch(t, o), OFFSETS_OK);
}

static void test_nothing_completed_commits_nothing(void **state)
{
    struct offsets t;

    (void)state;
    offsets_init(&t, 100);
    assert_int_equal(offsets_committable(&t), OFFSETS_NONE);
    dispatch_range(&t, 40, 45);
    assert_int_equal(offsets_committable(&t), OFFSETS_NONE);
    assert_int_equal(offsets_pending(&t), 6);
    offsets_release(&t);
}

static void test_in_order_completion_commits_next_offset(void **state)
{
    struct offsets t;

    (void)state;
    offsets_init(&t, 100);
    dispatch_range(&t, 0, 2);
    assert_int_equal(offsets_complete(&t, 0), OFFSETS_OK);
    assert_int_equal(offsets_committable(&t), 1);
    assert_int_equal(offsets_complete(&t, 1), OFFSETS_OK);
    assert_int_equal(offsets_complete(&t, 2), OFFSETS_OK);
    assert_int_equal(offsets_committable(&t), 3);
    assert_int_equal(offsets_window(&t), 0);
    assert_int_equal(offsets_pending(&t), 0);
    offsets_release(&t);
}

static void test_out_of_order_completion_waits_for_the_oldest(void **state)
{
    struct offsets t;

    (void)state;
    offsets_init(&t, 100);
    dispatch_range(&t, 10, 14);
    assert_int_equal(offsets_complete(&t, 12), OFFSETS_OK);
    assert_int_equal(offsets_complete(&t, 14), OFFSETS_OK);
    assert_int_equal(offsets_complete(&t, 11), OFFSETS_OK);
    assert_int_equal(offsets_committable(&t), OFFSETS_NONE); /* 10 still running */
    assert_int_equal(offsets_window(&t), 5);
    assert_int_equal(offsets_complete(&t, 10), OFFSETS_OK);
    assert_int_equal(offsets_committable(&t), 13); /* 13 still running */
    assert_int_equal(offsets_window(&t), 2);
    assert_int_equal(offsets_complete(&t, 13), OFFSETS_OK);
    assert_int_equal(offsets_committable(&t), 15);
    offsets_release(&t);
}

/* Transaction markers and compacted records are never dispatched: not waited for. */
static void test_gaps_are_not_waited_for(void **state)
{
    struct offsets t;

    (void)state;
    offsets_init(&t, 100);
    assert_int_equal(offsets_dispatch(&t, 5), OFFSETS_OK);
    assert_int_equal(offsets_dispatch(&t, 6), OFFSETS_OK);
    assert_int_equal(offsets_dispatch(&t, 8), OFFSETS_OK);  /* 7 was a marker */
    assert_int_equal(offsets_dispatch(&t, 20), OFFSETS_OK); /* 9..19 compacted */
    assert_int_equal(offsets_complete(&t, 5), OFFSETS_OK);
    assert_int_equal(offsets_complete(&t, 6), OFFSETS_OK);
    assert_int_equal(offsets_committable(&t), 7);
    assert_int_equal(offsets_complete(&t, 20), OFFSETS_OK);
    assert_int_equal(offsets_committable(&t), 7); /* 8 still running */
    assert_int_equal(offsets_complete(&t, 8), OFFSETS_OK);
    assert_int_equal(offsets_committable(&t), 21);
    /* An offset inside a gap was never dispatched: completing it is refused. */
    assert_int_equal(offsets_complete(&t, 7), OFFSETS_UNKNOWN);
    offsets_release(&t);
}

static void test_double_or_unknown_completion_is_refused(void **state)
{
    struct offsets t;

    (void)state;
    offsets_init(&t, 100);
    dispatch_range(&t, 0, 3);
    assert_int_equal(offsets_complete(&t, 2), OFFSETS_OK);
    assert_int_equal(offsets_complete(&t, 2), OFFSETS_UNKNOWN);
    assert_int_equal(offsets_complete(&t, 99), OFFSETS_UNKNOWN);
    assert_int_equal(offsets_complete(&t, 0), OFFSETS_OK);
    assert_int_equal(offsets_complete(&t, 0), OFFSETS_UNKNOWN); /* already committed */
    assert_int_equal(offsets_pending(&t), 2);
    assert_int_equal(offsets_committable(&t), 1);
    offsets_release(&t);
}

/* A rewind (offset reset, redelivery of something already dispatched) is not tracked. */
static void test_rewind_is_stale(void **state)
{
    struct offsets t;

    (void)state;
    offsets_init(&t, 100);
    dispatch_range(&t, 100, 101);
    assert_int_equal(offsets_dispatch(&t, 101), OFFSETS_STALE);
    assert_int_equal(offsets_dispatch(&t, 50), OFFSETS_STALE);
    assert_int_equal(offsets_dispatch(&t, -1), OFFSETS_STALE);
    assert_int_equal(offsets_complete(&t, 100), OFFSETS_OK);
    assert_int_equal(offsets_complete(&t, 101), OFFSETS_OK);
    assert_int_equal(offsets_dispatch(&t, 101), OFFSETS_STALE);
    assert_int_equal(offsets_committable(&t), 102);
    offsets_release(&t);
}

/* One stuck message holds the window; the bound stops it growing. */
static void test_window_is_bounded(void **state)
{
    struct offsets t;

    (void)state;
    offsets_init(&t, 8);
    dispatch_range(&t, 0, 7);
    for (int64_t o = 1; o <= 7; o++)
        assert_int_equal(offsets_complete(&t, o), OFFSETS_OK);
    assert_int_equal(offsets_window(&t), 8);
    assert_int_equal(offsets_dispatch(&t, 8), OFFSETS_FULL);
    assert_int_equal(offsets_committable(&t), OFFSETS_NONE);
    assert_int_equal(offsets_complete(&t, 0), OFFSETS_OK);
    assert_int_equal(offsets_committable(&t), 8);
    assert_int_equal(offsets_window(&t), 0);
    /* the refused offset may be dispatched once there is room */
    assert_int_equal(offsets_dispatch(&t, 8), OFFSETS_OK);
    offsets_release(&t);
}

static void test_reset_on_reassign_starts_fresh(void **state)
{
    struct offsets t;

    (void)state;
    offsets_init(&t, 100);
    dispatch_range(&t, 0, 9);
    assert_int_equal(offsets_complete(&t, 0), OFFSETS_OK);
    assert_int_equal(offsets_complete(&t, 5), OFFSETS_OK);
    offsets_reset(&t);
    assert_int_equal(offsets_committable(&t), OFFSETS_NONE);
    assert_int_equal(offsets_pending(&t), 0);
    assert_int_equal(offsets_window(&t), 0);
    /* the new owner resumes at the committed offset 1, below what we dispatched before */
    dispatch_range(&t, 1, 3);
    assert_int_equal(offsets_complete(&t, 2), OFFSETS_OK);
    assert_int_equal(offsets_committable(&t), OFFSETS_NONE); /* no stale "done" bit of 5 */
    assert_int_equal(offsets_complete(&t, 1), OFFSETS_OK);
    assert_int_equal(offsets_committable(&t), 3);
    offsets_release(&t);
}

/* Many messages streamed through a small window, completed in a shuffled order within
 * bursts, wrap the ring many times; the commit offset is exact at every step. */
static void test_ring_wraps_and_grows(void **state)
{
    struct offsets t;
    int64_t next = 1000, base = 1000;
    unsigned seed = 7;
    int burst, i, j;

    (void)state;
    offsets_init(&t, 1000);
    for (burst = 0; burst < 300; burst++) {
        int n = 1 + (int)(rand_r(&seed) % 50);
        int64_t offs[50];

        for (i = 0; i < n; i++) {
            next += 1 + (rand_r(&seed) % 3 == 0); /* some gaps */
            offs[i] = next;
            assert_int_equal(offsets_dispatch(&t, next), OFFSETS_OK);
        }
        for (i = n - 1; i > 0; i--) { /* shuffle */
            int64_t tmp;

            j = (int)(rand_r(&seed) % (unsigned)(i + 1));
            tmp = offs[i];
            offs[i] = offs[j];
            offs[j] = tmp;
        }
        for (i = 0; i < n; i++) {
            int64_t lowest = INT64_MAX; /* lowest offset still running */

            assert_int_equal(offsets_complete(&t, offs[i]), OFFSETS_OK);
            for (j = i + 1; j < n; j++)
                if (offs[j] < lowest)
                    lowest = offs[j];
            if (i == n - 1)
                assert_int_equal(offsets_committable(&t), next + 1);
            else if (offsets_committable(&t) != OFFSETS_NONE)
                assert_true(offsets_committable(&t) <= lowest);
        }
        assert_true(offsets_committable(&t) > base);
        base = offsets_committable(&t);
    }
    assert_int_equal(offsets_window(&t), 0);
    offsets_release(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_completed_commits_nothing),
        cmocka_unit_test(test_in_order_completion_commits_next_offset),
        cmocka_unit_test(test_out_of_order_completion_waits_for_the_oldest),
        cmocka_unit_test(test_gaps_are_not_waited_for),
        cmocka_unit_test(test_double_or_unknown_completion_is_refused),
        cmocka_unit_test(test_rewind_is_stale),
        cmocka_unit_test(test_window_is_bounded),
        cmocka_unit_test(test_reset_on_reassign_starts_fresh),
        cmocka_unit_test(test_ring_wraps_and_grows),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
