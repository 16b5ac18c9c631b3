/* backoff.c - full-jitter backoff, retry budget and Retry-After parsing.
 *
 * Design: full jitter (uniform on [0, ceiling]) spreads the retries of many replicas
 * hit by the same 429 or outage instead of synchronising them, at the price of some
 * very short waits. Random numbers come from a per-struct xorshift64* (no rand(): it is
 * global state, not thread-safe and easily correlated between processes), reduced to a
 * range by rejection so no delay is more likely than another; a stuck injected source
 * cannot loop forever because rejection gives up after a bounded number of draws.
 *
 * Retry-After dates are parsed by hand against the three fixed RFC 9110 layouts:
 * strptime() depends on the locale and accepts more than the grammar, and timegm()
 * is not needed because days_from_civil() converts the date directly.
 */
#include "common/backoff.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"

#define MS_PER_DAY    86400000LL
#define MAX_REJECTION 64
/* Days from 0001-01-01 to 1970-01-01 in the proleptic Gregorian calendar. */
#define DAYS_0001_TO_EPOCH 719162LL
#define DAYS_PER_400_YEARS 146097LL

static uint64_t seed_counter;

/* ---- policy and sequence ------------------------------------------------------------ */

int backoff_policy_check(const struct backoff_policy *p, char *errstr, size_t errsz)
{
    const char *bad = NULL;

    if (p->base_ms <= 0)
        bad = "base_ms must be > 0";
    else if (p->cap_ms < p->base_ms)
        bad = "cap_ms must be >= base_ms";
    else if (p->max_attempts < 0)
        bad = "max_attempts must be >= 0 (0 = unlimited)";
    else if (p->max_elapsed_ms < 0)
        bad = "max_elapsed_ms must be >= 0 (0 = unlimited)";
    else if (p->max_retry_after_ms < 0)
        bad = "max_retry_after_ms must be >= 0";
    if (!bad)
        return 0;
    if (errstr && errsz > 0)
        snprintf(errstr, errsz, "backoff policy: %s", bad);
    return -1;
}

/* splitmix64 finaliser: spreads weak seeds (clock, addresses) over all 64 bits. */
static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int backoff_init(struct backoff *b, const struct backoff_policy *policy, uint64_t seed,
                 char *errstr, size_t errsz)
{
    if (backoff_policy_check(policy, errstr, errsz) != 0)
        return -1;
    memset(b, 0, sizeof(*b));
    b->policy = *policy;
    if (seed == 0) {
        seed = (uint64_t)clock_mono_us();
        seed ^= (uint64_t)(uintptr_t)b;
        seed ^= mix64(__atomic_fetch_add(&seed_counter, 1, __ATOMIC_RELAXED));
    }
    b->xs = mix64(seed);
    if (b->xs == 0) /* xorshift's one fixed point */
        b->xs = 0x9e3779b97f4a7c15ULL;
    return 0;
}

void backoff_set_rand(struct backoff *b, backoff_rand_fn fn, void *state)
{
    b->rand_fn = fn;
    b->rand_state = fn ? state : NULL;
}

void backoff_start(struct backoff *b, int64_t now_ms)
{
    b->attempts = 1;
    b->start_ms = now_ms;
}

/* The default source lives in b itself (not behind rand_state) so copying a
 * struct backoff keeps a working generator. */
static uint64_t next_random(struct backoff *b)
{
    if (b->rand_fn)
        return b->rand_fn(b->rand_state);
    b->xs ^= b->xs >> 12;
    b->xs ^= b->xs << 25;
    b->xs ^= b->xs >> 27;
    return b->xs * 0x2545f4914f6cdd1dULL;
}

/* Uniform on [0, n] for 0 <= n <= INT64_MAX. */
static int64_t uniform_0_n(struct backoff *b, int64_t n)
{
    uint64_t m = (uint64_t)n + 1, threshold = (0 - m) % m, r = 0;

    /* Values below threshold would make the low residues more likely; redraw them. */
    for (int i = 0; i < MAX_REJECTION; i++) {
        r = next_random(b);
        if (r >= threshold)
            break;
    }
    return (int64_t)(r % m);
}

int64_t backoff_ceiling_ms(const struct backoff_policy *policy, unsigned n)
{
    int64_t base = policy->base_ms, cap = policy->cap_ms;

    if (base <= 0 || cap <= 0)
        return 0;
    if (n >= 63 || base > (cap >> n))
        return cap;
    return base << n; /* <= cap, so no overflow */
}

int64_t backoff_jitter_ms(struct backoff *b, unsigned n)
{
    return uniform_0_n(b, backoff_ceiling_ms(&b->policy, n));
}

int64_t backoff_combine_ms(int64_t jitter_ms, int64_t retry_after_ms, int64_t max_retry_after_ms)
{
    if (retry_after_ms < 0)
        return jitter_ms;
    if (retry_after_ms > max_retry_after_ms)
        retry_after_ms = max_retry_after_ms < 0 ? 0 : max_retry_after_ms;
    return jitter_ms > retry_after_ms ? jitter_ms : retry_after_ms;
}

enum backoff_verdict backoff_next(struct backoff *b, int64_t now_ms, int64_t retry_after_ms,
                                  int64_t *delay_ms)
{
    const struct backoff_policy *p = &b->policy;
    unsigned n = b->attempts > 0 ? (unsigned)b->attempts - 1 : 0;
    int64_t d, elapsed;

    if (p->max_attempts > 0 && b->attempts >= p->max_attempts)
        return BACKOFF_GIVE_UP;
    d = backoff_combine_ms(backoff_jitter_ms(b, n), retry_after_ms, p->max_retry_after_ms);
    if (p->max_elapsed_ms > 0) {
        if (now_ms <= b->start_ms) /* no time passed, or the caller's clock went back */
            elapsed = 0;
        else if (__builtin_sub_overflow(now_ms, b->start_ms, &elapsed))
            elapsed = INT64_MAX;
        if (elapsed > p->max_elapsed_ms || d > p->max_elapsed_ms - elapsed)
            return BACKOFF_GIVE_UP;
    }
    if (b->attempts < INT32_MAX)
        b->attempts++;
    *delay_ms = d;
    return BACKOFF_RETRY;
}

/* ---- Retry-After -------------------------------------------------------------------- */

static const char *const wkday_short[7] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const char *const wkday_long[7] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                          "Friday", "Saturday", "Sunday"};
static const char *const month_name[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
/* Days before the first of each month in a common year. */
static const int month_start[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};

struct cursor {
    const char *p;
    size_t n;
};

struct civil {
    int year, month, day, hour, min, sec; /* month 1..12 */
};

static int take_lit(struct cursor *c, const char *lit)
{
    size_t l = strlen(lit);

    if (c->n < l || memcmp(c->p, lit, l) != 0)
        return 0;
    c->p += l;
    c->n -= l;
    return 1;
}

/* Exactly `ndig` ASCII digits. */
static int take_num(struct cursor *c, int ndig, int *out)
{
    int v = 0;

    if (c->n < (size_t)ndig)
        return 0;
    for (int i = 0; i < ndig; i++) {
        if (c->p[i] < '0' || c->p[i] > '9')
            return 0;
        v = v * 10 + (c->p[i] - '0');
    }
    c->p += ndig;
    c->n -= (size_t)ndig;
    *out = v;
    return 1;
}

/* Index+1 of the table entry the cursor starts with, 0 if none. */
static int take_name(struct cursor *c, const char *const *names, int count)
{
    for (int i = 0; i < count; i++)
        if (take_lit(c, names[i]))
            return i + 1;
    return 0;
}

/* hh:mm:ss */
static int take_time(struct cursor *c, struct civil *t)
{
    return take_num(c, 2, &t->hour) && take_lit(c, ":") && take_num(c, 2, &t->min) &&
           take_lit(c, ":") && take_num(c, 2, &t->sec);
}

/* Sun, 06 Nov 1994 08:49:37 GMT */
static int parse_imf_fixdate(struct cursor c, struct civil *t)
{
    return take_name(&c, wkday_short, 7) && take_lit(&c, ", ") && take_num(&c, 2, &t->day) &&
           take_lit(&c, " ") && (t->month = take_name(&c, month_name, 12)) != 0 &&
           take_lit(&c, " ") && take_num(&c, 4, &t->year) && take_lit(&c, " ") &&
           take_time(&c, t) && take_lit(&c, " GMT") && c.n == 0;
}

/* Sunday, 06-Nov-94 08:49:37 GMT; the year is two digits until resolved by the caller. */
static int parse_rfc850(struct cursor c, struct civil *t)
{
    return take_name(&c, wkday_long, 7) && take_lit(&c, ", ") && take_num(&c, 2, &t->day) &&
           take_lit(&c, "-") && (t->month = take_name(&c, month_name, 12)) != 0 &&
           take_lit(&c, "-") && take_num(&c, 2, &t->year) && take_lit(&c, " ") &&
           take_time(&c, t) && take_lit(&c, " GMT") && c.n == 0;
}

/* Sun Nov  6 08:49:37 1994 (day as 2DIGIT or SP 1DIGIT) */
static int parse_asctime(struct cursor c, struct civil *t)
{
    if (!(take_name(&c, wkday_short, 7) && take_lit(&c, " ") &&
          (t->month = take_name(&c, month_name, 12)) != 0 && take_lit(&c, " ")))
        return 0;
    if (!(take_lit(&c, " ") ? take_num(&c, 1, &t->day) : take_num(&c, 2, &t->day)))
        return 0;
    return take_lit(&c, " ") && take_time(&c, t) && take_lit(&c, " ") &&
           take_num(&c, 4, &t->year) && c.n == 0;
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). The year is moved up 400 years
 * (one full cycle, same calendar) so the count from year 1 works for year 0 too. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t yy = y + 400, prev = yy - 1;
    int64_t days = 365 * prev + prev / 4 - prev / 100 + prev / 400;

    days += month_start[m - 1] + (m > 2 && is_leap(yy)) + d - 1;
    return days - DAYS_PER_400_YEARS - DAYS_0001_TO_EPOCH;
}

static int64_t year_of_epoch_ms(int64_t ms)
{
    int64_t days = ms / MS_PER_DAY - (ms % MS_PER_DAY < 0);
    int64_t q = days * 400; /* |days| < 2^47, no overflow */
    /* 400 years have DAYS_PER_400_YEARS days: a guess within a year, then corrected. */
    int64_t y = 1970 + (q >= 0 ? q / DAYS_PER_400_YEARS
                               : -((-q + DAYS_PER_400_YEARS - 1) / DAYS_PER_400_YEARS));

    while (days_from_civil(y + 1, 1, 1) <= days)
        y++;
    while (days_from_civil(y, 1, 1) > days)
        y--;
    return y;
}

static int civil_valid(const struct civil *t)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int dim;

    if (t->month < 1 || t->month > 12)
        return 0;
    dim = mdays[t->month - 1] + (t->month == 2 && is_leap(t->year));
    return t->day >= 1 && t->day <= dim && t->hour <= 23 && t->min <= 59 && t->sec <= 60;
}

static int is_ows(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static void retry_after_err(char *errstr, size_t errsz, const char *s, size_t len, const char *why)
{
    char q[4 * BACKOFF_RETRY_AFTER_MAX_LEN + 8];
    size_t o = 0, n = len < BACKOFF_RETRY_AFTER_MAX_LEN ? len : BACKOFF_RETRY_AFTER_MAX_LEN;

    if (!errstr || errsz == 0)
        return;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
            q[o++] = (char)ch;
        else
            o += (size_t)snprintf(q + o, sizeof(q) - o, "\\x%02x", ch);
    }
    q[o] = '\0';
    snprintf(errstr, errsz, "Retry-After \"%s\"%s: %s", q, n < len ? "..." : "", why);
}

int backoff_retry_after_parse(const char *s, size_t len, int64_t now_ms, int64_t *delay_ms,
                              char *errstr, size_t errsz)
{
    struct cursor c = {s, len};
    struct civil t = {0};
    int64_t when, d;

    if (!s || !delay_ms) {
        retry_after_err(errstr, errsz, "", 0, "missing value");
        return -1;
    }
    if (len > BACKOFF_RETRY_AFTER_MAX_LEN) {
        retry_after_err(errstr, errsz, s, len, "longer than any valid value");
        return -1;
    }
    while (c.n > 0 && is_ows(c.p[0])) {
        c.p++;
        c.n--;
    }
    while (c.n > 0 && is_ows(c.p[c.n - 1]))
        c.n--;
    if (c.n == 0) {
        retry_after_err(errstr, errsz, s, len, "empty");
        return -1;
    }

    if (c.p[0] >= '0' && c.p[0] <= '9') {
        int64_t secs = 0;
        for (size_t i = 0; i < c.n; i++) {
            if (c.p[i] < '0' || c.p[i] > '9') {
                retry_after_err(errstr, errsz, s, len, "not a whole number of seconds");
                return -1;
            }
            if (secs <= BACKOFF_RETRY_AFTER_MAX_MS / 1000) /* saturate, keep validating */
                secs = secs * 10 + (c.p[i] - '0');
        }
        *delay_ms =
            secs > BACKOFF_RETRY_AFTER_MAX_MS / 1000 ? BACKOFF_RETRY_AFTER_MAX_MS : secs * 1000;
        return 0;
    }

    if (parse_rfc850(c, &t)) {
        int64_t now_year = year_of_epoch_ms(now_ms);
        int64_t y = now_year - now_year % 100 + t.year;
        /* RFC 9110: the year is never more than 50 years ahead; otherwise it is the
         * nearest year with these two digits, so the window is (now-50, now+50]. */
        if (y > now_year + 50)
            y -= 100;
        else if (y <= now_year - 50)
            y += 100;
        t.year = (int)y;
    } else if (!parse_imf_fixdate(c, &t) && !parse_asctime(c, &t)) {
        retry_after_err(errstr, errsz, s, len, "neither delay-seconds nor an HTTP-date");
        return -1;
    }
    if (!civil_valid(&t)) {
        retry_after_err(errstr, errsz, s, len, "no such date or time");
        return -1;
    }
    when = days_from_civil(t.year, t.month, t.day) * MS_PER_DAY +
           ((int64_t)t.hour * 3600 + t.min * 60 + t.sec) * 1000;
    if (__builtin_sub_overflow(when, now_ms, &d))
        d = now_ms < 0 ? BACKOFF_RETRY_AFTER_MAX_MS : 0;
    *delay_ms = d <= 0 ? 0 : d > BACKOFF_RETRY_AFTER_MAX_MS ? BACKOFF_RETRY_AFTER_MAX_MS : d;
    return 0;
}
