/* clock.c - see clock.h. Thin wrappers: the point is one definition of each rule. */
#include "common/clock.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

static int64_t read_ms(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_mono_ms(void)
{
    return read_ms(CLOCK_MONOTONIC);
}

int64_t clock_wall_ms(void)
{
    return read_ms(CLOCK_REALTIME);
}

int64_t clock_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void clock_sleep_ms(int64_t ms)
{
    struct timespec ts;

    if (ms <= 0)
        return;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int64_t clock_deadline_ms(int64_t ms)
{
    return clock_mono_ms() + (ms > 0 ? ms : 0);
}

int64_t clock_left_ms(int64_t deadline)
{
    int64_t left = deadline - clock_mono_ms();

    return left > 0 ? left : 0;
}

void clock_abstime(clockid_t id, int64_t ms, struct timespec *ts)
{
    clock_gettime(id, ts);
    if (ms < 0)
        ms = 0;
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

void clock_timespec(int64_t at_ms, struct timespec *ts)
{
    if (at_ms < 0)
        at_ms = 0;
    ts->tv_sec = (time_t)(at_ms / 1000);
    ts->tv_nsec = (long)(at_ms % 1000) * 1000000L;
}

int clock_cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);

    if (rc != 0)
        return rc;
    rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}

void clock_rfc3339_ms(int64_t ms, char out[CLOCK_RFC3339_MAX])
{
    char date[24];
    time_t t;
    struct tm tm;

    if (ms < 0)
        ms = 0;
    if (ms > 253402300799999LL) /* 9999-12-31T23:59:59.999Z: four-digit years only */
        ms = 253402300799999LL;
    t = (time_t)(ms / 1000);
    /* the clamp makes both succeed; checked all the same, so out is always a time */
    if (!gmtime_r(&t, &tm) || strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm) != 19) {
        snprintf(out, CLOCK_RFC3339_MAX, "1970-01-01T00:00:00.000Z");
        return;
    }
    snprintf(out, CLOCK_RFC3339_MAX, "%.19s.%03dZ", date, (int)(ms % 1000));
}
