/* test_clock_utf8.c - the shared small helpers: common/clock.c and common/utf8.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>

#include "common/clock.h"
#include "common/utf8.h"

static void on_alarm(int sig)
{
    (void)sig;
}

/* A signal in the middle of a sleep does not shorten it (the one EINTR rule). */
static void test_sleep_survives_signals(void **state)
{
    struct sigaction sa = {.sa_handler = on_alarm}, old;
    struct itimerval it = {.it_interval = {0, 20000}, .it_value = {0, 20000}}, off = {0};
    int64_t t0;

    (void)state;
    sigaction(SIGALRM, &sa, &old);
    setitimer(ITIMER_REAL, &it, NULL);
    t0 = clock_mono_ms();
    clock_sleep_ms(150);
    assert_true(clock_mono_ms() - t0 >= 150);
    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &old, NULL);
    t0 = clock_mono_ms();
    clock_sleep_ms(-5); /* nothing to wait for */
    clock_sleep_ms(0);
    assert_true(clock_mono_ms() - t0 < 1000);
}

static void test_deadlines_and_timespecs(void **state)
{
    struct timespec ts;
    int64_t d;

    (void)state;
    d = clock_deadline_ms(60000);
    assert_true(clock_left_ms(d) > 59000 && clock_left_ms(d) <= 60000);
    assert_int_equal(clock_left_ms(clock_mono_ms() - 10), 0);
    assert_true(clock_deadline_ms(-100) <= clock_mono_ms());
    clock_timespec(INT64_C(12345), &ts);
    assert_int_equal(ts.tv_sec, 12);
    assert_int_equal(ts.tv_nsec, 345000000L);
    for (int i = 0; i < 50; i++) { /* always normalised, whatever the current nanoseconds */
        clock_abstime(CLOCK_MONOTONIC, 999 + i, &ts);
        assert_true(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000L);
    }
    assert_true(clock_wall_ms() > INT64_C(1600000000000)); /* an epoch clock, in ms */
}

/* A condition variable from clock_cond_init times out on a monotonic deadline. */
static void test_cond_waits_on_the_monotonic_clock(void **state)
{
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv;
    struct timespec ts;
    int64_t t0;
    int rc;

    (void)state;
    assert_int_equal(clock_cond_init(&cv), 0);
    pthread_mutex_lock(&mu);
    t0 = clock_mono_ms();
    clock_abstime(CLOCK_MONOTONIC, 60, &ts);
    do
        rc = pthread_cond_timedwait(&cv, &mu, &ts);
    while (rc == 0);
    pthread_mutex_unlock(&mu);
    assert_int_equal(rc, ETIMEDOUT);
    assert_true(clock_mono_ms() - t0 >= 59);
    clock_timespec(clock_deadline_ms(30), &ts); /* the same through a deadline */
    pthread_mutex_lock(&mu);
    do
        rc = pthread_cond_timedwait(&cv, &mu, &ts);
    while (rc == 0);
    pthread_mutex_unlock(&mu);
    assert_int_equal(rc, ETIMEDOUT);
    pthread_cond_destroy(&cv);
}

/* "é" is C3 A9, "€" E2 82 AC, "😀" F0 9F 98 80. */
static void test_utf8_cuts_on_boundaries(void **state)
{
    const char *s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"; /* a é € 😀 z: 11 bytes */
    char buf[32], small[4];

    (void)state;
    assert_int_equal(utf8_cut_len(s, 11, 20), 11);
    assert_int_equal(utf8_cut_len(s, 11, 11), 11);
    assert_int_equal(utf8_cut_len(s, 11, 1), 1);
    assert_int_equal(utf8_cut_len(s, 11, 2), 1); /* inside é */
    assert_int_equal(utf8_cut_len(s, 11, 3), 3);
    assert_int_equal(utf8_cut_len(s, 11, 5), 3); /* inside € */
    assert_int_equal(utf8_cut_len(s, 11, 9), 6); /* inside 😀 */
    assert_int_equal(utf8_cut_len(s, 11, 10), 10);
    assert_int_equal(utf8_cut_len(s, 11, 0), 0);

    strcpy(buf, s);
    utf8_truncate(buf, 8);
    assert_string_equal(buf, "a\xc3\xa9\xe2\x82\xac");
    strcpy(buf, "short");
    utf8_truncate(buf, 100);
    assert_string_equal(buf, "short");

    assert_int_equal(utf8_copy(buf, sizeof buf, s, 4), 3);
    assert_string_equal(buf, "a\xc3\xa9");
    /* the buffer is the tighter limit: 3 bytes of room, é would end at byte 3 */
    assert_int_equal(utf8_copy(small, sizeof small, s, 100), 3);
    assert_string_equal(small, "a\xc3\xa9");
    assert_int_equal(utf8_copy(small, sizeof small, NULL, 10), 0);
    assert_string_equal(small, "");
}

static void test_utf8_trim_partial(void **state)
{
    const char *s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";

    (void)state;
    assert_int_equal(utf8_trim_partial(s, 10), 10);
    assert_int_equal(utf8_trim_partial(s, 9), 6);
    assert_int_equal(utf8_trim_partial(s, 8), 6);
    assert_int_equal(utf8_trim_partial(s, 7), 6);
    assert_int_equal(utf8_trim_partial(s, 5), 3);
    assert_int_equal(utf8_trim_partial(s, 2), 1);
    assert_int_equal(utf8_trim_partial(s, 0), 0);
    assert_int_equal(utf8_trim_partial("\x80\x80", 2), 2); /* stray bytes: left alone */
}

/* What an operator's terminal gets of untrusted text: names readable, nothing that
 * moves the cursor, changes colours, reorders the line or is not UTF-8. */
static void test_utf8_printable(void **state)
{
    static const char *const cases[][2] = {
        {"Se\xc3\xa1n O'Brien \xf0\x9f\x98\x80", "Se\xc3\xa1n O'Brien \xf0\x9f\x98\x80"},
        {"a\x1b[2Jb\x07\r\n\x7f", "a\\x1b[2Jb\\x07\\x0d\\x0a\\x7f"},
        {"c1 \xc2\x9b"
         "31m",
         "c1 \\xc2\\x9b31m"},                                                 /* U+009B, CSI */
        {"x\xe2\x80\xaey\xe2\x81\xa6z", "x\\xe2\\x80\\xaey\\xe2\\x81\\xa6z"}, /* RLO, LRI */
        {"\xe2\x80\x8b\xef\xbb\xbf", "\\xe2\\x80\\x8b\\xef\\xbb\\xbf"},       /* ZWSP, BOM */
        {"bad \xff \xc3 \xc0\xaf \xed\xa0\x80", "bad \\xff \\xc3 \\xc0\\xaf \\xed\\xa0\\x80"},
        {"cut \xe2\x82", "cut \\xe2\\x82"}, /* a sequence the end cuts short */
        {"back\\slash", "back\\\\slash"},
        {"", ""},
    };
    char out[128];
    (void)state;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_string_equal(utf8_printable(cases[i][0], out, sizeof out), cases[i][1]);
    assert_string_equal(utf8_printable(NULL, out, sizeof out), "");
    /* what does not fit is left off whole: no half escape, no half character */
    assert_string_equal(utf8_printable("ab\x1b", out, 6), "ab");
    assert_string_equal(utf8_printable("ab\xc3\xa1", out, 4), "ab");
    assert_string_equal(utf8_printable("abc", out, 1), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sleep_survives_signals),
        cmocka_unit_test(test_deadlines_and_timespecs),
        cmocka_unit_test(test_cond_waits_on_the_monotonic_clock),
        cmocka_unit_test(test_utf8_cuts_on_boundaries),
        cmocka_unit_test(test_utf8_trim_partial),
        cmocka_unit_test(test_utf8_printable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
