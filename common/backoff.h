/* backoff.h - full-jitter exponential backoff with a retry budget, and Retry-After.
 *
 * Owns: a struct backoff is one retry sequence (one request or one event's in-process
 * retries): its policy (copied in), the attempt counter, the start time and its random
 * source. Nothing global except an atomic counter used to seed default generators.
 *
 * Delay rule ("Exponential Backoff And Jitter", AWS Architecture Blog, full jitter):
 *     ceiling(n) = min(cap_ms, base_ms * 2^n)        n = 0 for the first retry
 *     delay      = uniform integer in [0, ceiling(n)]
 *     next delay = max(delay, min(Retry-After, max_retry_after_ms))
 * The shift saturates at cap_ms instead of overflowing. A sequence gives up when
 * max_attempts attempts (the first try included) have been made, or when waiting the
 * next delay would end past start + max_elapsed_ms (callers then park the event on the
 * retry topic rather than sleep to no purpose). Zero disables either limit.
 *
 * Times are int64 milliseconds; "now" is always passed in (monotonic for budgets, wall
 * clock epoch ms for Retry-After dates), so every function is deterministic in tests.
 *
 * Thread-safety: a struct backoff belongs to one thread at a time; separate structs,
 * the policy and the Retry-After parser need no locking.
 */
#ifndef HSQB_BACKOFF_H
#define HSQB_BACKOFF_H

#include <stddef.h>
#include <stdint.h>

/* A Retry-After header value longer than this is rejected (the longest valid form,
 * an RFC 850 date with a Wednesday, is 33 bytes). */
#define BACKOFF_RETRY_AFTER_MAX_LEN 64
/* Parsed Retry-After delays saturate here (7 days, the dedup window); the configurable
 * max_retry_after_ms then decides how much of it is honoured in-process. */
#define BACKOFF_RETRY_AFTER_MAX_MS (7LL * 24 * 3600 * 1000)

/* Returns 64 random bits. state is whatever was registered with it. */
typedef uint64_t (*backoff_rand_fn)(void *state);

struct backoff_policy {
    int64_t base_ms;            /* ceiling of the first retry; > 0 */
    int64_t cap_ms;             /* largest jittered delay; >= base_ms */
    int max_attempts;           /* attempts including the first; 0 = unlimited */
    int64_t max_elapsed_ms;     /* budget from backoff_start(); 0 = unlimited */
    int64_t max_retry_after_ms; /* most of a Retry-After honoured; >= 0 */
};

struct backoff {
    struct backoff_policy policy;
    int attempts;     /* attempts made so far, the one that just failed included */
    int64_t start_ms; /* set by backoff_start() */
    backoff_rand_fn rand_fn;
    void *rand_state;
    uint64_t xs; /* state of the default xorshift64* generator */
};

enum backoff_verdict {
    BACKOFF_RETRY = 0, /* wait *delay_ms, then try again */
    BACKOFF_GIVE_UP,   /* the budget is spent: hand the failure on */
};

/* 0 when the policy is usable, else -1 with a message naming the bad field. policy must
 * not be NULL; errstr may be NULL. Meant for start-up config checks. */
int backoff_policy_check(const struct backoff_policy *policy, char *errstr, size_t errsz);

/* Initialise b with a copy of policy and the default generator. seed != 0 makes the
 * delay sequence reproducible; seed == 0 derives a distinct seed per call (clock,
 * address and a process-wide atomic counter). Returns -1 (b untouched) when the policy
 * fails backoff_policy_check(). Then call backoff_start(). */
int backoff_init(struct backoff *b, const struct backoff_policy *policy, uint64_t seed,
                 char *errstr, size_t errsz);

/* Replace the random source (tests). fn NULL restores the default generator. state is
 * borrowed and must outlive b. */
void backoff_set_rand(struct backoff *b, backoff_rand_fn fn, void *state);

/* Begin (or restart) a sequence at now_ms: one attempt is considered in flight. */
void backoff_start(struct backoff *b, int64_t now_ms);

/* Called after an attempt failed, at now_ms. retry_after_ms is the server's request
 * (from backoff_retry_after_parse), or < 0 when there was none. On BACKOFF_RETRY,
 * *delay_ms is the wait and the attempt counter advances; on BACKOFF_GIVE_UP nothing
 * changes and *delay_ms is untouched. */
enum backoff_verdict backoff_next(struct backoff *b, int64_t now_ms, int64_t retry_after_ms,
                                  int64_t *delay_ms);

/* min(cap_ms, base_ms << n) without overflow, for any n. */
int64_t backoff_ceiling_ms(const struct backoff_policy *policy, unsigned n);

/* A full-jitter delay for retry number n (0-based), drawn from b's random source;
 * uniform on [0, backoff_ceiling_ms(n)]. Does not touch the budget. */
int64_t backoff_jitter_ms(struct backoff *b, unsigned n);

/* max(jitter_ms, min(retry_after_ms, max_retry_after_ms)); a negative retry_after_ms
 * means none. Callers wanting to park instead of waiting a long Retry-After compare it
 * with their cap themselves. */
int64_t backoff_combine_ms(int64_t jitter_ms, int64_t retry_after_ms, int64_t max_retry_after_ms);

/* Parse a Retry-After field value of len bytes (borrowed; need not be NUL-terminated)
 * into a delay from now_ms (Unix epoch ms, wall clock). Accepted (RFC 9110 10.2.3):
 *   delay-seconds  1*DIGIT, e.g. "120"; values beyond the cap saturate;
 *   HTTP-date      IMF-fixdate  "Sun, 06 Nov 1994 08:49:37 GMT"
 *                  RFC 850      "Sunday, 06-Nov-94 08:49:37 GMT" (the two-digit year is
 *                               the one in (now - 50, now + 50] years, per RFC 9110)
 *                  asctime      "Sun Nov  6 08:49:37 1994"
 * Surrounding spaces, tabs, CR and LF are ignored. Names are case-sensitive, as RFC 9110
 * specifies; the weekday must be a valid name but is not checked against the date; the
 * date must exist (no 31 Feb); second 60 (a leap second) is accepted. A date in the past
 * gives 0; every result is at most BACKOFF_RETRY_AFTER_MAX_MS. Rejected (-1, errstr
 * set, *delay_ms untouched): empty, signs, fractions, other date formats or zones,
 * anything longer than BACKOFF_RETRY_AFTER_MAX_LEN. s may be NULL only with len 0. */
int backoff_retry_after_parse(const char *s, size_t len, int64_t now_ms, int64_t *delay_ms,
                              char *errstr, size_t errsz);

#endif /* HSQB_BACKOFF_H */
