/* clock.h - the process's one clock: monotonic and wall milliseconds, sleeping, deadlines.
 *
 * Owns: nothing (no state). Every other file asks this header for the time instead of
 * calling clock_gettime(2) itself, so there is one rule for each question:
 *   - timeouts, budgets, rate-limit windows and deadlines use the monotonic clock
 *     (clock_mono_ms), which never jumps when an operator or NTP sets the date;
 *   - timestamps written out (results, Kafka headers, Redis expiry dates compared with
 *     other hosts) use the wall clock (clock_wall_ms, epoch milliseconds);
 *   - a sleep lasts its whole duration: clock_sleep_ms resumes after a signal (EINTR)
 *     and stops early only on any other error, which nanosleep(2) returns only for a
 *     bad argument.
 * A deadline is a clock_mono_ms() value; 0 never means "none" here (callers that want
 * "no deadline" say so themselves).
 *
 * Thread-safety: every function may be called from any thread.
 */
#ifndef HSQB_CLOCK_H
#define HSQB_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in milliseconds (arbitrary origin; only differences mean anything). */
int64_t clock_mono_ms(void);
/* CLOCK_MONOTONIC in microseconds. */
int64_t clock_mono_us(void);
/* CLOCK_REALTIME in milliseconds since the Unix epoch. */
int64_t clock_wall_ms(void);
/* Epoch ms as RFC 3339 UTC with milliseconds ("2026-12-07T03:04:05.678Z") into out;
 * clamped to 1970-01-01 .. 9999-12-31T23:59:59.999Z (four-digit years only). */
#define CLOCK_RFC3339_MAX 32
void clock_rfc3339_ms(int64_t ms, char out[CLOCK_RFC3339_MAX]);

/* Sleep ms milliseconds (<= 0: return at once), resuming after EINTR. */
void clock_sleep_ms(int64_t ms);

/* The monotonic deadline ms milliseconds from now (ms < 0 counts as 0). */
int64_t clock_deadline_ms(int64_t ms);
/* Milliseconds left before deadline (a clock_mono_ms() value), never below 0. */
int64_t clock_left_ms(int64_t deadline);

/* *ts = the time of clock id (CLOCK_MONOTONIC or CLOCK_REALTIME) ms milliseconds from
 * now, normalised: the absolute time pthread_cond_timedwait() takes (the condition
 * variable's clock attribute must be id). */
void clock_abstime(clockid_t id, int64_t ms, struct timespec *ts);
/* Initialise cv so that its timed waits measure CLOCK_MONOTONIC (the clock of every
 * deadline here): a wall-clock jump can then neither cut a wait short nor stretch it.
 * 0, or the pthread error. */
int clock_cond_init(pthread_cond_t *cv);
/* *ts = the absolute time at_ms (milliseconds on whichever clock at_ms was read from:
 * a deadline from clock_deadline_ms() for a CLOCK_MONOTONIC condition variable). */
void clock_timespec(int64_t at_ms, struct timespec *ts);

#endif
