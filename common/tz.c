/* tz.c - TZif (RFC 8536) reader, POSIX TZ footer rules and the process's zone cache.
 *
 * Design: a zone keeps only what offsets need: the ascending transition times with the
 * UTC offset each one starts, the offset before the first one, and the footer's rule.
 * tz_offset() is a binary search, or for later instants the rule evaluated over the four
 * years around the instant (a rule's transition times may lie up to 167 hours outside
 * their own day, so neighbouring years' transitions can be the latest one). Instants
 * beyond the last transition are first folded into [1970, 2370): the Gregorian calendar,
 * weekdays included, repeats every 400 years (146097 days, a whole number of weeks), so
 * the result is the same and no computation near INT64_MIN/MAX can overflow. Calendar
 * arithmetic is integer-only (H. Hinnant's days_from_civil / civil_from_days), valid for
 * any day count an int64 of seconds produces.
 *
 * Parsing reads the header's counts, checks them against the TZ_*_MAX limits before any
 * size is computed (so no size can overflow), skips the version 1 block of a version 2+
 * file and reads the 64-bit block and footer; every byte is consumed through take(),
 * which is the one bounds check.
 */
#include "common/tz.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TZ_DEFAULT_DIR   "/usr/share/zoneinfo"
#define SECS_PER_DAY     86400
#define SECS_PER_400Y    (146097LL * SECS_PER_DAY)
#define TZIF_HEADER_SIZE 44
#define TZIF_TYPE_SIZE   6
/* RFC 8536 section 3.2: utoff SHOULD be in [-89999, 93599]; we require it, so every
 * offset is within 26 hours. A footer's offsets are at most 24:59:59 (+1 h for DST). */
#define UTOFF_MIN        (-89999)
#define UTOFF_MAX        93599
#define RULE_HOURS_MAX   167 /* RFC 8536 section 3.3.1: transition times -167..167 h */
#define OFFSET_HOURS_MAX 24  /* POSIX: a TZ offset's hours are 0..24 */
#define STR_(x)          #x
#define STR(x)           STR_(x) /* a macro's value as a string literal */

enum date_kind {
    DATE_JULIAN1, /* Jn: 1..365, February 29 never counted */
    DATE_ZERO,    /* n: 0..365, February 29 counted */
    DATE_MONTH,   /* Mm.w.d: day d (0 = Sunday) of week w (5 = last) of month m */
};

struct rule_date {
    enum date_kind kind;
    int n, m, w, d;
    int32_t secs; /* local time of day of the transition, -167 h .. 167 h */
};

/* A POSIX TZ string: std_off all year, or dst_off from start (local standard time) to end
 * (local daylight time). Offsets are seconds east of UTC. */
struct rule {
    int32_t std_off, dst_off;
    int has_dst;
    struct rule_date start, end;
};

struct tz_zone {
    size_t timecnt;
    int64_t *trans;     /* ascending transition instants */
    int32_t *trans_off; /* offset in effect from trans[i] */
    int32_t before_off; /* before trans[0]; always, with neither transitions nor rule */
    int has_rule;
    struct rule rule;
};

static const struct tz_zone utc_zone = {0};

/* ---- calendar ----------------------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b < 0);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    return mdays[m - 1] + (m == 2 && is_leap(y));
}

/* Days from 1970-01-01 to y-m-d, proleptic Gregorian; |y| < 2^40. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy;

    y -= m <= 2;
    era = floor_div(y, 400);
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

/* The date of day `days` after 1970-01-01; |days| < 2^50. */
static void civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    int64_t z = days + 719468, era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;

    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* 0 = Sunday; 1970-01-01 was a Thursday. */
static int weekday(int64_t days)
{
    return (int)((days % 7 + 11) % 7);
}

/* ---- POSIX TZ rules ------------------------------------------------------------------ */

/* Day number (since 1970-01-01) of the rule date in year y. */
static int64_t rule_day(const struct rule_date *rd, int64_t y)
{
    int64_t first;
    int day;

    switch (rd->kind) {
    case DATE_JULIAN1:
        return days_from_civil(y, 1, 1) + rd->n - 1 + (rd->n >= 60 && is_leap(y));
    case DATE_ZERO:
        return days_from_civil(y, 1, 1) + rd->n;
    case DATE_MONTH:
        break;
    }
    first = days_from_civil(y, rd->m, 1);
    day = (rd->d - weekday(first) + 7) % 7 + 7 * (rd->w - 1);
    while (day >= month_days(y, rd->m))
        day -= 7; /* week 5: the last such weekday */
    return first + day;
}

/* Offset under the rule at t, 0 <= t < SECS_PER_400Y: the state set by the latest
 * transition at or before t among years Y-2..Y+1 (Y = t's UTC year). A tie goes to the
 * later-listed transition, so "DST all year" (RFC 8536 3.3.1: the end of one year equal
 * to the start of the next) stays DST. */
static int32_t rule_offset(const struct rule *r, int64_t t)
{
    int64_t y, best_t = INT64_MIN;
    int32_t off = r->std_off;
    int m, d;

    if (!r->has_dst)
        return r->std_off;
    civil_from_days(t / SECS_PER_DAY, &y, &m, &d);
    for (int64_t yy = y - 2; yy <= y + 1; yy++) {
        int64_t start = rule_day(&r->start, yy) * SECS_PER_DAY + r->start.secs - r->std_off;
        int64_t end = rule_day(&r->end, yy) * SECS_PER_DAY + r->end.secs - r->dst_off;

        if (start <= t && start >= best_t) {
            best_t = start;
            off = r->dst_off;
        }
        if (end <= t && end >= best_t) {
            best_t = end;
            off = r->std_off;
        }
    }
    return off;
}

struct cursor {
    const char *p;
    size_t n;
};

static int peek(const struct cursor *c)
{
    return c->n ? (unsigned char)*c->p : -1;
}

static int eat(struct cursor *c, int ch)
{
    if (peek(c) != ch)
        return 0;
    c->p++;
    c->n--;
    return 1;
}

static int is_digit(int ch)
{
    return ch >= '0' && ch <= '9';
}

/* mindig..maxdig ASCII digits (no more), value <= max. */
static int num(struct cursor *c, int mindig, int maxdig, int max, int *out)
{
    int v = 0, k = 0;

    while (k < maxdig && is_digit(peek(c))) {
        v = v * 10 + (peek(c) - '0');
        c->p++;
        c->n--;
        k++;
    }
    *out = v;
    return k >= mindig && v <= max && !is_digit(peek(c));
}

/* std or dst designation: 3+ letters, or '<' 3+ of [A-Za-z0-9+-] '>'. */
static int rule_name(struct cursor *c)
{
    size_t k = 0;
    int quoted = eat(c, '<');

    for (;; k++) {
        int ch = peek(c);
        int ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                 (quoted && (is_digit(ch) || ch == '+' || ch == '-'));
        if (!ok)
            break;
        c->p++;
        c->n--;
    }
    return k >= 3 && (!quoted || eat(c, '>'));
}

/* [+-]h[:mm[:ss]] in seconds, hours 0..max_hours in 1..hdig digits; sign applied. */
static int hms(struct cursor *c, int hdig, int max_hours, int32_t *out)
{
    int neg = 0, h = 0, mi = 0, s = 0;

    if (!eat(c, '+'))
        neg = eat(c, '-');
    if (!num(c, 1, hdig, max_hours, &h))
        return 0;
    if (eat(c, ':')) {
        if (!num(c, 2, 2, 59, &mi))
            return 0;
        if (eat(c, ':') && !num(c, 2, 2, 59, &s))
            return 0;
    }
    *out = (int32_t)(h * 3600 + mi * 60 + s) * (neg ? -1 : 1);
    return 1;
}

static int rule_date(struct cursor *c, struct rule_date *rd)
{
    rd->secs = 2 * 3600;
    if (eat(c, 'J')) {
        rd->kind = DATE_JULIAN1;
        if (!num(c, 1, 3, 365, &rd->n) || rd->n < 1)
            return 0;
    } else if (eat(c, 'M')) {
        rd->kind = DATE_MONTH;
        if (!(num(c, 1, 2, 12, &rd->m) && rd->m >= 1 && eat(c, '.') && num(c, 1, 1, 5, &rd->w) &&
              rd->w >= 1 && eat(c, '.') && num(c, 1, 1, 6, &rd->d)))
            return 0;
    } else {
        rd->kind = DATE_ZERO;
        if (!num(c, 1, 3, 365, &rd->n))
            return 0;
    }
    return !eat(c, '/') || hms(c, 3, RULE_HOURS_MAX, &rd->secs);
}

/* std offset [dst [offset] ,start[/time],end[/time]]. A POSIX offset counts west of UTC.
 * A DST name without a rule is refused: POSIX leaves its dates to the implementation
 * and zic never writes one. */
static int rule_parse(const char *s, size_t n, struct rule *r)
{
    struct cursor c = {s, n};
    int32_t off;

    memset(r, 0, sizeof(*r));
    if (!rule_name(&c) || !hms(&c, 2, OFFSET_HOURS_MAX, &off))
        return 0;
    r->std_off = -off;
    if (c.n == 0)
        return 1;
    if (!rule_name(&c))
        return 0;
    r->has_dst = 1;
    r->dst_off = r->std_off + 3600;
    if (peek(&c) != ',') {
        if (!hms(&c, 2, OFFSET_HOURS_MAX, &off))
            return 0;
        r->dst_off = -off;
    }
    return eat(&c, ',') && rule_date(&c, &r->start) && eat(&c, ',') && rule_date(&c, &r->end) &&
           c.n == 0;
}

/* ---- offsets and dates ----------------------------------------------------------------- */

int32_t tz_offset(const struct tz_zone *z, int64_t utc_s)
{
    size_t lo = 0, hi;

    if (!z)
        return 0;
    if (z->timecnt == 0 || utc_s > z->trans[z->timecnt - 1]) {
        if (z->has_rule) {
            int64_t t = utc_s % SECS_PER_400Y;
            return rule_offset(&z->rule, t < 0 ? t + SECS_PER_400Y : t);
        }
        return z->timecnt ? z->trans_off[z->timecnt - 1] : z->before_off;
    }
    if (utc_s < z->trans[0])
        return z->before_off;
    hi = z->timecnt; /* invariant: trans[lo] <= utc_s < trans[hi] (hi = end) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->trans[mid] <= utc_s)
            lo = mid;
        else
            hi = mid;
    }
    return z->trans_off[lo];
}

int tz_local_date(const struct tz_zone *z, int64_t utc_ms, char out[TZ_DATE_SIZE])
{
    int64_t s = floor_div(utc_ms, 1000), y;
    int m, d;

    s += tz_offset(z, s); /* |s| < 2^54: no overflow */
    civil_from_days(floor_div(s, SECS_PER_DAY), &y, &m, &d);
    if (y < 1 || y > 9999)
        return -1;
    snprintf(out, TZ_DATE_SIZE, "%04d-%02d-%02d", (int)y, m, d);
    return 0;
}

/* ---- TZif ----------------------------------------------------------------------------- */

struct bytes {
    const unsigned char *p;
    size_t n;
};

/* The next len bytes, or NULL when fewer remain. The one bounds check of the parser. */
static const unsigned char *take(struct bytes *b, size_t len)
{
    const unsigned char *p = b->p;

    if (len > b->n)
        return NULL;
    b->p += len;
    b->n -= len;
    return p;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be_time(const unsigned char *p, size_t size)
{
    uint64_t v;

    if (size == 4)
        return (int32_t)be32(p);
    v = (uint64_t)be32(p) << 32 | be32(p + 4);
    return (int64_t)v; /* two's complement (gcc, clang) */
}

struct tzif_header {
    int version; /* 1, 2, 3 or 4 */
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static const char *header_read(struct bytes *b, struct tzif_header *h)
{
    const unsigned char *p = take(b, TZIF_HEADER_SIZE);

    if (!p)
        return "truncated header";
    if (memcmp(p, "TZif", 4) != 0)
        return "not TZif data (bad magic)";
    if (p[4] == 0)
        h->version = 1;
    else if (p[4] >= '2' && p[4] <= '4')
        h->version = p[4] - '0';
    else
        return "unsupported TZif version";
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    if (h->timecnt > TZ_TIMECNT_MAX || h->typecnt > TZ_TYPECNT_MAX || h->charcnt > TZ_CHARCNT_MAX ||
        h->leapcnt > TZ_LEAPCNT_MAX || h->isutcnt > TZ_TYPECNT_MAX || h->isstdcnt > TZ_TYPECNT_MAX)
        return "count beyond limit";
    return NULL;
}

/* Bytes of the data block after the header (counts already bounded: no overflow). */
static size_t block_size(const struct tzif_header *h, size_t tsize)
{
    return (size_t)h->timecnt * (tsize + 1) + (size_t)h->typecnt * TZIF_TYPE_SIZE + h->charcnt +
           (size_t)h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

/* The transitions of a data block: ascending times, each with its type's offset. */
static const char *transitions_read(struct bytes *b, const struct tzif_header *h, size_t tsize,
                                    const int32_t *type_off, struct tz_zone *z)
{
    const unsigned char *times = take(b, (size_t)h->timecnt * tsize);
    const unsigned char *idx = take(b, h->timecnt);

    for (size_t i = 0; i < h->timecnt; i++) {
        z->trans[i] = be_time(times + i * tsize, tsize);
        if (i > 0 && z->trans[i] <= z->trans[i - 1])
            return "transition times not ascending";
        if (idx[i] >= h->typecnt)
            return "transition type index out of range";
        z->trans_off[i] = type_off[idx[i]];
    }
    z->timecnt = h->timecnt;
    return NULL;
}

/* Time types, designations, leap records (skipped) and the isstd/isut indicators. The
 * transitions come first in the file but need the types, so they are read afterwards
 * from a copy of the cursor. Sizes were checked by the caller. */
static const char *block_read(struct bytes *b, const struct tzif_header *h, size_t tsize,
                              struct tz_zone *z)
{
    struct bytes trans = *b;
    const unsigned char *types, *chars, *isstd, *isut;
    int32_t type_off[TZ_TYPECNT_MAX];
    int before = -1;

    if (h->typecnt == 0 || h->charcnt == 0)
        return "no time types or no designations";
    if ((h->isstdcnt != 0 && h->isstdcnt != h->typecnt) ||
        (h->isutcnt != 0 && h->isutcnt != h->typecnt))
        return "isstdcnt or isutcnt differs from typecnt";
    take(b, (size_t)h->timecnt * (tsize + 1));
    types = take(b, (size_t)h->typecnt * TZIF_TYPE_SIZE);
    chars = take(b, h->charcnt);
    take(b, (size_t)h->leapcnt * (tsize + 4));
    isstd = take(b, h->isstdcnt);
    isut = take(b, h->isutcnt);
    if (chars[h->charcnt - 1] != '\0')
        return "designations not NUL-terminated";
    for (size_t i = 0; i < h->typecnt; i++) {
        const unsigned char *t = types + i * TZIF_TYPE_SIZE;
        int32_t off = (int32_t)be32(t);
        int std = h->isstdcnt ? isstd[i] : 0, ut = h->isutcnt ? isut[i] : 0;

        if (off < UTOFF_MIN || off > UTOFF_MAX)
            return "UTC offset out of range";
        if (t[4] > 1 || t[5] >= h->charcnt)
            return "bad isdst or designation index";
        if (std > 1 || ut > 1 || (ut && !std))
            return "bad isstd or isut indicator";
        type_off[i] = off;
        if (before < 0 && t[4] == 0)
            before = (int)i;
    }
    z->before_off = type_off[before < 0 ? 0 : before];
    return transitions_read(&trans, h, tsize, type_off, z);
}

/* Version 2+: "\n" TZ string "\n", ending the data. */
static const char *footer_read(struct bytes *b, struct tz_zone *z)
{
    const unsigned char *nl;
    size_t len;

    if (!take(b, 1) || b->p[-1] != '\n')
        return "missing footer";
    nl = memchr(b->p, '\n', b->n);
    if (!nl)
        return "unterminated footer";
    len = (size_t)(nl - b->p);
    if (len > TZ_FOOTER_MAX)
        return "footer too long";
    if (len > 0 && !rule_parse((const char *)b->p, len, &z->rule))
        return "footer is not a valid POSIX TZ string";
    z->has_rule = len > 0;
    take(b, len + 1);
    return NULL;
}

static const char *zone_read(struct bytes *b, struct tz_zone *z)
{
    struct tzif_header h, h2;
    const char *why = header_read(b, &h);
    size_t tsize = 4;

    if (why)
        return why;
    if (h.version >= 2) {
        if (!take(b, block_size(&h, 4)))
            return "truncated version 1 data block";
        if ((why = header_read(b, &h2)) != NULL)
            return why;
        if (h2.version != h.version)
            return "second header's version differs";
        h = h2;
        tsize = 8;
    }
    if (b->n < block_size(&h, tsize))
        return "truncated data block";
    z->trans = malloc(h.timecnt ? h.timecnt * sizeof(*z->trans) : 1);
    z->trans_off = malloc(h.timecnt ? h.timecnt * sizeof(*z->trans_off) : 1);
    if (!z->trans || !z->trans_off)
        return "out of memory";
    if ((why = block_read(b, &h, tsize, z)) != NULL)
        return why;
    if (h.version >= 2 && (why = footer_read(b, z)) != NULL)
        return why;
    return b->n ? "trailing bytes after the data" : NULL;
}

struct tz_zone *tz_zone_parse(const unsigned char *buf, size_t len, char *errstr, size_t errsz)
{
    struct bytes b = {buf, buf ? len : 0};
    struct tz_zone *z = calloc(1, sizeof(*z));
    const char *why = z ? zone_read(&b, z) : "out of memory";

    if (why) {
        if (errstr && errsz)
            snprintf(errstr, errsz, "TZif: %s", why);
        tz_zone_free(z);
        return NULL;
    }
    return z;
}

void tz_zone_free(struct tz_zone *z)
{
    if (!z)
        return;
    free(z->trans);
    free(z->trans_off);
    free(z);
}

/* ---- names, files and the cache ----------------------------------------------------------- */

static struct {
    char name[TZ_NAME_MAX + 1];
    struct tz_zone *zone;
} cache[TZ_CACHE_MAX];
static size_t cache_len;
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;

/* 1..TZ_NAME_MAX bytes of [A-Za-z0-9._+-/], components neither empty nor "." nor "..". */
static int name_valid(const char *name)
{
    size_t len = strnlen(name, TZ_NAME_MAX + 1), start = 0;

    if (len == 0 || len > TZ_NAME_MAX)
        return 0;
    for (size_t i = 0; i <= len; i++) {
        char ch = name[i];
        if (ch == '/' || ch == '\0') {
            size_t clen = i - start;
            if (clen == 0 || (clen <= 2 && strncmp(name + start, "..", clen) == 0))
                return 0;
            start = i + 1;
        } else if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                     (ch >= '0' && ch <= '9') || strchr("._+-", ch))) {
            return 0;
        }
    }
    return 1;
}

/* errstr = 'time zone "name": detail' (errstr may be NULL). */
static void zone_err(char *errstr, size_t errsz, const char *name, const char *detail)
{
    if (errstr && errsz)
        snprintf(errstr, errsz, "time zone \"%.*s\": %s", TZ_NAME_MAX, name, detail);
}

/* The whole regular file at path, at most TZ_FILE_MAX bytes, into *out (caller frees);
 * NULL, or why not with *err the errno (0 when none applies). */
static const char *file_read(const char *path, unsigned char **out, size_t *len, int *err)
{
    struct stat st;
    unsigned char *buf = NULL;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    const char *why = NULL;

    *err = 0;
    if (fd < 0 || fstat(fd, &st) != 0) {
        *err = errno;
        why = "cannot open";
    } else if (!S_ISREG(st.st_mode) || st.st_size > TZ_FILE_MAX) {
        why = "not a regular file of at most " STR(TZ_FILE_MAX) " bytes";
    } else if (!(buf = malloc((size_t)st.st_size + 1))) {
        why = "out of memory";
    }
    /* Read one byte more than stat said, to notice a file that grew meanwhile. */
    while (!why && got <= (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size + 1 - got);
        if (r == 0)
            break;
        if (r > 0)
            got += (size_t)r;
        else if (errno != EINTR) {
            *err = errno;
            why = "cannot read";
        }
    }
    if (!why && got > (size_t)st.st_size)
        why = "changed while being read";
    if (fd >= 0)
        close(fd);
    if (why) {
        free(buf);
        return why;
    }
    *out = buf;
    *len = got;
    return NULL;
}

/* Reads and parses <TZDIR or default>/name. Called with cache_mu held. */
static struct tz_zone *zone_load(const char *name, char *errstr, size_t errsz)
{
    const char *dir = getenv("TZDIR"), *why;
    char path[PATH_MAX], detail[PATH_MAX + 256], ebuf[128];
    unsigned char *buf = NULL;
    size_t len = 0;
    struct tz_zone *z;
    int err;

    if (!dir || !*dir)
        dir = TZ_DEFAULT_DIR;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
        zone_err(errstr, errsz, name, "TZDIR path too long");
        return NULL;
    }
    why = file_read(path, &buf, &len, &err);
    if (why) {
        snprintf(detail, sizeof(detail), "%s: %s%s%s", path, why, err ? ": " : "",
                 err ? strerror_r(err, ebuf, sizeof(ebuf)) : "");
        zone_err(errstr, errsz, name, detail);
        return NULL;
    }
    z = tz_zone_parse(buf, len, ebuf, sizeof(ebuf));
    free(buf);
    if (!z) {
        snprintf(detail, sizeof(detail), "%s: %s", path, ebuf);
        zone_err(errstr, errsz, name, detail);
    }
    return z;
}

const struct tz_zone *tz_zone_get(const char *name, char *errstr, size_t errsz)
{
    struct tz_zone *z = NULL;

    if (!name || !name_valid(name)) {
        zone_err(errstr, errsz, name ? name : "(null)", "not a valid IANA name");
        return NULL;
    }
    if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0)
        return &utc_zone;
    pthread_mutex_lock(&cache_mu);
    for (size_t i = 0; i < cache_len && !z; i++)
        if (strcmp(cache[i].name, name) == 0)
            z = cache[i].zone;
    if (!z && cache_len == TZ_CACHE_MAX)
        zone_err(errstr, errsz, name, "cache full (" STR(TZ_CACHE_MAX) " zones)");
    else if (!z && (z = zone_load(name, errstr, errsz)) != NULL) {
        snprintf(cache[cache_len].name, sizeof(cache[cache_len].name), "%s", name);
        cache[cache_len++].zone = z;
    }
    pthread_mutex_unlock(&cache_mu);
    return z;
}
