/* Unit tests for common/tz: TZif parsing, offsets, POSIX TZ footers and local dates.
 *
 * Expected offsets come from Python's zoneinfo reading the same /usr/share/zoneinfo
 * (Debian 12, tzdata 2025b), computed when these tests were written:
 *     off = lambda zone, t: int((datetime(1970, 1, 1, tzinfo=timezone.utc)
 *                                + timedelta(seconds=t)).astimezone(zone)
 *                               .utcoffset().total_seconds())
 * Transition tables list every instant t in a range where off(t - 1) != off(t), found
 * by an hourly (footers: half-hourly) scan and bisection. The bare footers were checked
 * with glibc (os.environ["TZ"] = footer; time.tzset(); time.localtime(t).tm_gmtoff) and
 * with ZoneInfo.from_file() on the bytes tzif_build() writes; the two agree except on the
 * zero-based day form "n", where CPython 3.11's zoneinfo is one day early (day 59 of 2024
 * must be Feb 29, as POSIX and glibc say), so the table holds glibc's answers. A tzdata
 * update that changes a rule shows up here first: regenerate with the same recipe.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/tz.h"

#define ZONEINFO "/usr/share/zoneinfo"

static const struct tz_zone *zone(const char *name)
{
    char err[256] = "";
    const struct tz_zone *z = tz_zone_get(name, err, sizeof(err));

    if (!z)
        fail_msg("tz_zone_get(%s): %s", name, err);
    return z;
}

/* The local date of utc_s (seconds) as a string; "-" when out of range. */
static const char *date_of(const struct tz_zone *z, int64_t utc_s)
{
    static char out[TZ_DATE_SIZE];

    if (tz_local_date(z, utc_s * 1000, out) != 0)
        return "-";
    return out;
}

static unsigned char *file_bytes(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = malloc(TZ_FILE_MAX);

    assert_non_null(f);
    assert_non_null(buf);
    *len = fread(buf, 1, TZ_FILE_MAX, f);
    fclose(f);
    return buf;
}

/* ---- synthetic TZif ---------------------------------------------------------------- */

struct ttype {
    int32_t off;
    int isdst;
};

struct tzif_spec {
    int version; /* 1..4 */
    const int64_t *times;
    const unsigned char *idx;
    size_t timecnt;
    const struct ttype *types;
    size_t typecnt;
    size_t leapcnt;     /* dummy leap-second records */
    int indicators;     /* write isstd and isut arrays (all 1) */
    const char *footer; /* version 2+; NULL = empty */
};

struct obuf {
    unsigned char b[8192];
    size_t n;
};

static void put(struct obuf *o, const void *p, size_t len)
{
    assert_true(o->n + len <= sizeof(o->b));
    if (len == 0)
        return; /* p may be NULL */
    memcpy(o->b + o->n, p, len);
    o->n += len;
}

static void put_be(struct obuf *o, uint64_t v, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        unsigned char c = (unsigned char)(v >> (8 * (size - 1 - i)));
        put(o, &c, 1);
    }
}

static void put_header(struct obuf *o, const struct tzif_spec *s)
{
    static const unsigned char zeros[15];
    unsigned char ver = s->version == 1 ? 0 : (unsigned char)('0' + s->version);
    size_t ind = s->indicators ? s->typecnt : 0;

    put(o, "TZif", 4);
    put(o, &ver, 1);
    put(o, zeros, sizeof(zeros));
    put_be(o, ind, 4);
    put_be(o, ind, 4);
    put_be(o, s->leapcnt, 4);
    put_be(o, s->timecnt, 4);
    put_be(o, s->typecnt, 4);
    put_be(o, 4, 4); /* "ABC\0" */
}

static void put_block(struct obuf *o, const struct tzif_spec *s, size_t tsize)
{
    static const unsigned char one = 1;

    for (size_t i = 0; i < s->timecnt; i++)
        put_be(o, (uint64_t)s->times[i], tsize);
    put(o, s->idx, s->timecnt);
    for (size_t i = 0; i < s->typecnt; i++) {
        put_be(o, (uint32_t)s->types[i].off, 4);
        put_be(o, (uint64_t)s->types[i].isdst, 1);
        put_be(o, 0, 1);
    }
    put(o, "ABC", 4);
    for (size_t i = 0; i < s->leapcnt; i++) {
        put_be(o, 78796800 + 15552000 * (uint64_t)i, tsize);
        put_be(o, i + 1, 4);
    }
    for (size_t i = 0; s->indicators && i < 2 * s->typecnt; i++)
        put(o, &one, 1);
}

static void tzif_build(struct obuf *o, const struct tzif_spec *s)
{
    o->n = 0;
    put_header(o, s);
    put_block(o, s, 4);
    if (s->version == 1)
        return;
    put_header(o, s);
    put_block(o, s, 8);
    put(o, "\n", 1);
    put(o, s->footer ? s->footer : "", s->footer ? strlen(s->footer) : 0);
    put(o, "\n", 1);
}

static struct tz_zone *parse_ok(const struct obuf *o)
{
    char err[256] = "";
    struct tz_zone *z = tz_zone_parse(o->b, o->n, err, sizeof(err));

    if (!z)
        fail_msg("tz_zone_parse: %s", err);
    return z;
}

static void parse_fails(const unsigned char *b, size_t n, const char *want)
{
    char err[256] = "";
    struct tz_zone *z = tz_zone_parse(b, n, err, sizeof(err));

    if (z) {
        tz_zone_free(z);
        fail_msg("parse of %zu bytes succeeded, expected \"%s\"", n, want);
    }
    if (!strstr(err, want))
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

/* A version 2 zone with no transition and only this footer. */
static struct tz_zone *footer_zone(const char *footer)
{
    static const struct ttype t0 = {0, 0};
    struct tzif_spec s = {.version = 2, .types = &t0, .typecnt = 1, .footer = footer};
    struct obuf o;

    tzif_build(&o, &s);
    return parse_ok(&o);
}

/* Offsets alternate at t[]: `before` until t[0], `after` from t[0], `before` from t[1]...
 * checked on both sides of every transition and half-way to the next one. */
static void check_transitions(const struct tz_zone *z, const char *label, int32_t before,
                              int32_t after, const int64_t *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int32_t was = i % 2 ? after : before, now = i % 2 ? before : after;
        int64_t next = i + 1 < n ? t[i + 1] : t[i] + 86400;

        if (tz_offset(z, t[i] - 1) != was || tz_offset(z, t[i]) != now ||
            tz_offset(z, t[i] + (next - t[i]) / 2) != now)
            fail_msg("%s: transition %zu at %lld: %d/%d, expected %d/%d", label, i, (long long)t[i],
                     tz_offset(z, t[i] - 1), tz_offset(z, t[i]), was, now);
    }
}

/* ---- real zones ------------------------------------------------------------------------ */

/* The issue: 23:30 on Jan 31 in California is Feb 1 07:30 UTC, booked on Jan 31. */
static void test_issue_case(void **state)
{
    const struct tz_zone *la = zone("America/Los_Angeles");
    char out[TZ_DATE_SIZE];
    (void)state;

    assert_int_equal(tz_offset(la, 1769931000), -28800); /* 2026-02-01T07:30:00Z */
    assert_int_equal(tz_local_date(la, INT64_C(1769931000000), out), 0);
    assert_string_equal(out, "2026-01-31");
    assert_int_equal(tz_local_date(NULL, INT64_C(1769931000000), out), 0);
    assert_string_equal(out, "2026-02-01");
    assert_int_equal(tz_local_date(zone("UTC"), INT64_C(1769931000000), out), 0);
    assert_string_equal(out, "2026-02-01");
    /* Last and first millisecond of the local day. */
    assert_string_equal(date_of(la, 1769932799), "2026-01-31"); /* 07:59:59Z = 23:59:59 */
    assert_string_equal(date_of(la, 1769932800), "2026-02-01");
}

static void test_la_dst_2026(void **state)
{
    const struct tz_zone *la = zone("America/Los_Angeles");
    (void)state;

    assert_int_equal(tz_offset(la, 1772963999), -28800); /* 2026-03-08T09:59:59Z */
    assert_int_equal(tz_offset(la, 1772964000), -25200); /* 2026-03-08T10:00:00Z */
    assert_int_equal(tz_offset(la, 1793523599), -25200); /* 2026-11-01T08:59:59Z */
    assert_int_equal(tz_offset(la, 1793523600), -28800); /* 2026-11-01T09:00:00Z */
    assert_string_equal(date_of(la, 1772964000), "2026-03-08");
    assert_string_equal(date_of(la, 1793523600), "2026-11-01");
}

static void test_other_zones_2026(void **state)
{
    const struct tz_zone *kol = zone("Asia/Kolkata"), *ber = zone("Europe/Berlin");
    const struct tz_zone *lh = zone("Australia/Lord_Howe"), *cha = zone("Pacific/Chatham");
    const struct tz_zone *sp = zone("America/Sao_Paulo");
    (void)state;

    assert_int_equal(tz_offset(kol, 1769884199), 19800);
    assert_string_equal(date_of(kol, 1769884199), "2026-01-31"); /* 23:59:59 IST */
    assert_string_equal(date_of(kol, 1769884200), "2026-02-01");
    assert_int_equal(tz_offset(kol, -2208988800), 19270); /* 1900: Madras time, +5:21:10 */
    assert_int_equal(tz_offset(ber, 1774745999), 3600);   /* 2026-03-29T00:59:59Z */
    assert_int_equal(tz_offset(ber, 1774746000), 7200);
    assert_int_equal(tz_offset(ber, 1792889999), 7200); /* 2026-10-25T00:59:59Z */
    assert_int_equal(tz_offset(ber, 1792890000), 3600);
    assert_int_equal(tz_offset(lh, 1775314799), 39600); /* +11 until 2026-04-04T15:00Z */
    assert_int_equal(tz_offset(lh, 1775314800), 37800); /* +10:30 */
    assert_int_equal(tz_offset(lh, 1791041399), 37800); /* until 2026-10-03T15:30Z */
    assert_int_equal(tz_offset(lh, 1791041400), 39600);
    assert_int_equal(tz_offset(cha, 1775311199), 49500); /* +13:45 until 2026-04-04T14:00Z */
    assert_int_equal(tz_offset(cha, 1775311200), 45900); /* +12:45 */
    assert_int_equal(tz_offset(cha, 1790431199), 45900);
    assert_int_equal(tz_offset(cha, 1790431200), 49500);
    assert_string_equal(date_of(cha, 1790431200), "2026-09-27");
    assert_int_equal(tz_offset(sp, 1768478400), -10800); /* no DST since 2019 */
    assert_int_equal(tz_offset(sp, 1516017600), -7200);  /* 2018-01-15: summer time */
}

/* Debian's files list transitions up to 2037; later instants follow the footers. */
static const int64_t la_2038_2057[] = {
    2152173600, 2172733200, 2183623200, 2204182800, 2215072800, 2235632400, 2246522400, 2267082000,
    2277972000, 2298531600, 2309421600, 2329981200, 2341476000, 2362035600, 2372925600, 2393485200,
    2404375200, 2424934800, 2435824800, 2456384400, 2467274400, 2487834000, 2499328800, 2519888400,
    2530778400, 2551338000, 2562228000, 2582787600, 2593677600, 2614237200, 2625127200, 2645686800,
    2656576800, 2677136400, 2688631200, 2709190800, 2720080800, 2740640400, 2751530400, 2772090000};
/* Berlin (CET-1CEST,M3.5.0,M10.5.0/3), Dublin (negative DST: IST-1GMT0,M10.5.0,M3.5.0/1)
 * and Nuuk (<-02>2<-01>,M3.5.0/-1,M10.5.0/0) all switch at 01:00 UTC. */
static const int64_t eu_2038_2057[] = {
    2153350800, 2172099600, 2184800400, 2203549200, 2216250000, 2234998800, 2248304400, 2266448400,
    2279754000, 2297898000, 2311203600, 2329347600, 2342653200, 2361402000, 2374102800, 2392851600,
    2405552400, 2424301200, 2437606800, 2455750800, 2469056400, 2487200400, 2500506000, 2519254800,
    2531955600, 2550704400, 2563405200, 2582154000, 2595459600, 2613603600, 2626909200, 2645053200,
    2658358800, 2676502800, 2689808400, 2708557200, 2721258000, 2740006800, 2752707600, 2771456400};
static const int64_t lord_howe_2038_2057[] = {
    2153919600, 2169646200, 2185369200, 2201095800, 2216818800, 2233150200, 2248873200, 2264599800,
    2280322800, 2296049400, 2311772400, 2327499000, 2343222000, 2358948600, 2374671600, 2390398200,
    2406121200, 2422452600, 2438175600, 2453902200, 2469625200, 2485351800, 2501074800, 2516801400,
    2532524400, 2548251000, 2563974000, 2579700600, 2596028400, 2611755000, 2627478000, 2643204600,
    2658927600, 2674654200, 2690377200, 2706103800, 2721826800, 2737553400, 2753276400, 2769607800};
static const int64_t chatham_2038_2057[] = {
    2153916000, 2169036000, 2185365600, 2200485600, 2216815200, 2232540000, 2248869600, 2263989600,
    2280319200, 2295439200, 2311768800, 2326888800, 2343218400, 2358338400, 2374668000, 2389788000,
    2406117600, 2421842400, 2438172000, 2453292000, 2469621600, 2484741600, 2501071200, 2516191200,
    2532520800, 2547640800, 2563970400, 2579090400, 2596024800, 2611144800, 2627474400, 2642594400,
    2658924000, 2674044000, 2690373600, 2705493600, 2721823200, 2736943200, 2753272800, 2768997600};
/* IST-2IDT,M3.4.4/26,M10.5.0: a transition time beyond 24 hours. */
static const int64_t jerusalem_2038_2057[] = {
    2153174400, 2172092400, 2184624000, 2203542000, 2216073600, 2234991600, 2248128000, 2266441200,
    2279577600, 2297890800, 2311027200, 2329340400, 2342476800, 2361394800, 2373926400, 2392844400,
    2405376000, 2424294000, 2437430400, 2455743600, 2468880000, 2487193200, 2500329600, 2519247600,
    2531779200, 2550697200, 2563228800, 2582146800, 2595283200, 2613596400, 2626732800, 2645046000,
    2658182400, 2676495600, 2689632000, 2708550000, 2721081600, 2739999600, 2752531200, 2771449200};

#define TABLE(a) a, sizeof(a) / sizeof(a[0])

static void test_footer_era(void **state)
{
    static const struct {
        const char *zone;
        int32_t before, after;
        const int64_t *t;
        size_t n;
    } cases[] = {
        {"America/Los_Angeles", -28800, -25200, TABLE(la_2038_2057)},
        {"Europe/Berlin", 3600, 7200, TABLE(eu_2038_2057)},
        {"Europe/Dublin", 0, 3600, TABLE(eu_2038_2057)},
        {"America/Nuuk", -7200, -3600, TABLE(eu_2038_2057)},
        {"Australia/Lord_Howe", 39600, 37800, TABLE(lord_howe_2038_2057)},
        {"Pacific/Chatham", 49500, 45900, TABLE(chatham_2038_2057)},
        {"Asia/Jerusalem", 7200, 10800, TABLE(jerusalem_2038_2057)},
    };
    const struct tz_zone *la = zone("America/Los_Angeles"), *ber = zone("Europe/Berlin");
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_transitions(zone(cases[i].zone), cases[i].zone, cases[i].before, cases[i].after,
                          cases[i].t, cases[i].n);
    /* 2050-07-01T05:00Z is still June 30 in Los Angeles; 2050-12-31T23:30Z is 2051 in
     * Berlin. */
    assert_int_equal(tz_offset(la, 2540264400), -25200);
    assert_string_equal(date_of(la, 2540264400), "2050-06-30");
    assert_int_equal(tz_offset(ber, 2556142200), 3600);
    assert_string_equal(date_of(ber, 2556142200), "2051-01-01");
}

/* 2000 instants drawn uniformly from [1900-01-01, 2100-01-01) by splitmix64 seeded with
 * 20260131 (instant = -2208988800 + r % 6311433600), and for each of six zones the offset
 * Python gave, one letter per instant: offs[letter - 'a']. */
#define RANDOM_COUNT 2000
static const struct {
    const char *zone;
    int32_t offs[4];
    const char *idx;
} py_random[] = {
    {"America/Los_Angeles",
     {-28800, -25200},
     "abaaaabaabbbaababbaaaaaabbaabbbbabbabbbabaabbbabbababbababaaabababbaabababbbaabaaaababaa"
     "ababbaaaababbbabbbbabbaaabababbaaababbaababbbabbbaaaaaabaababaabbabaaaabbabbaaaaabbbbbaa"
     "aabbbabbaaaaaabbabaabaaaaabaaaabaabaabaaabbbbaaaaababbaabbbabaaaaabbbbaaabaaababaabaaabb"
     "babaabbaabbaaaaaabbbaaabbbbbbaaabaaaaababbbbbaabbaaaaaaabaaaaaaaabaaaaaaabbbbbbbbababaab"
     "aaabaaaabaaabbbbbbbbbabbbabbbbbabaaabbaaabbabababbaabaababaaaaaabbaaababaaabaaabbaaaaaba"
     "babbabbabbbbaabbabbabaaabaaaaabaababbbabbbaaabbabaaaababbabaabaaabbabbaaaaabbbbbaabaaaab"
     "ababbaaabababbaabbaabbabaabaaaaaabbabaabaaabbbbbaabbaaaabbabaabbbbbbbbaabbabaaabbbbbaabb"
     "baaabbabaabbaabababbaaaaaaaaabbaaabaaaaaaaaaabbbaaababbbbbabababbbabaaababbbbbbbababaabb"
     "babbabaabbbabbaababbbbabababbabaaaaaababbabaabbaabbbaabaaabbaaaaaaaaaabababbbaabbaababbb"
     "bbabaaaabbaaabaababbaaaaabaaaaabbababbbbabbaabaaaababababaabaaaaaabbbabaaabbababbaaaaaab"
     "aaabaabbabaaaaaabbabaaaaaaaabbaaaabbababaaabaabbbaabbabbbbbbbbaabababbaabbbabbaaaaaaaaba"
     "aaabaabbbabbbbabbabbbbbaababbbbabaaabbbaaabbbabbabaaabbbbbbaabbabbbaaabababaabbbbbbbaaab"
     "aabbbaaabaaabbabaababbbbababbababaaabaabababaaabbbbabbbbaabababaabbbbbaabbabbbbbabaabbba"
     "aabababababbabbabababaaabaaaaababbbbabbabbbabaaabbabbbabaabaabbaabbbbabaabbbbaabaaaaaaba"
     "abbbabaaabbabbaaaaaaabaabaabbabababbaaabbbaabababaaaabaaabaabbbbbabaaaabbaaabbaaaababaab"
     "abbbbabbaabbbaaabbbabbababaabbbabaaaaaaababbbaabbaaabbababbaabbbaabbaabbbabababbaaabbbab"
     "aaabaaaababbaaaaaaaaabbbbbabbbabbabaaaabaaababbaabbababaaabaabaaabbbbaaaabbabbaaaabbbaaa"
     "bbabaaababababaaabbbbabababbbbaaaababaabaaaababbbabbaaabbbbabaaabababaaababbaabababbabbb"
     "baaabbbbabababbbbbbbaaabaabbaaaabbbbaaabbbaaabbbbbabbabaabababaaaababaaaaabbaaaababbbaba"
     "aaabbbbaabaabaabaabaaaaaabbaabbbababbabbabbbbaaababbaaaaaabbbbbabaaabbbabbababbaaabbbbaa"
     "aaaabbaaaaabaaaabbbbabbbaaabaaabaaabbaaaabbbbbbbbaabaabbbbababbaaabbaaaaabaaaaaaabbaabba"
     "bbaabaabaaababaaaababbbbbabaabbbabbaaabaabaabbaababaabbabbbbaaaabbaaabbbbbaaababababaaab"
     "babbbbbbababaaaababaabbbbaaabaaaaaabbabbbbababaabbaaaaaaaaabaaba"},
    {"Europe/Berlin",
     {3600, 7200, 10800},
     "abaaaabaababaababbaaabaabbaabbbbabbaabbabaabbbabbaaaaaababaaaaaaabbaabaaaabbaaaaaabbabaa"
     "ababbaaaaaaabbababbabbaaababaabaaaaabaaabababbbbbaaaaaaaaabaaaabbabaababbabbaaaaabaabbaa"
     "aabbaabbaaaaaabbaaaabaaaaabaaaabaabaabaaaaabbaaaaababaaabbbabaaaaabbbbaaabaaaaabaabaaaab"
     "aabbaacaaaabaaaaababaaabaabbaaaabaaaaabaaabbaaabaaaaaaaabaaaaaaaabaaaaaaabbabbbbbaaabaab"
     "aaabaaaabaaaabbabbbbbaabbaababbabaaabbaaabbaaababbaabaababaaaaaabbaaabbaaabbaaaabaaaaaba"
     "bacbabaababbaaababbabaaaaaabaaaaabbbbbabaabaabaabaaabaaabbbaaaaaabaabaaaaaabaabbaabaaaab"
     "abaabaaabababaaabbaabbabaabaabaaabaabaabaaaabbabaabbaabbbbaaaababbababaaababaaabbbbbabab"
     "aaaabbabaabbaabbaabbaaaaaaaaaabaaabaaaaaaaaaabbbaaabaabbbaabababababaaabacbbabbaababaaab"
     "babbabaaaababbaababbabbaababbabaaabaabaaaabaabbaaabbaabaaaabaabaaaaaaabababbbaaabaaaabbb"
     "baabaaaaabaaabcabaabaaaaabaaaaabbaaaabababbaabaaaababaaabaabaaaaaabbbbbacabbababaaaabaab"
     "aaaaaaaaabaaaaaaababaaaaaaaaabaabaabababbaaaaaaabaaababbbbbabbabaababbaabbaabbaaaabbaaba"
     "aaabaabbaababaabbabbbbbaabaaabbabaaabbbaaabbbaababaaabababbbabbabaaaaaaabababbbbbbaaaaaa"
     "aaabbaaabaaabbabaaaabbbaababbbbaaaaabbabababaaababbabbabaaaababaabbbbbaabaaabbbbabaabbba"
     "baaababbbbbbabbababaaaaaaaaaaabbbbababaabbaabaaaabaabaabaabaabbaaabbbaaaabbaaaababaaaaba"
     "aabbabaaaabaabaaaaaabaaabaaaaabaaabbaaaabbaabababaababaaaaaabbabbabaaaaaaaaabaaaaababaab"
     "abbaaaabaaabbaaabbbaaaaaabaabaaabaaaaaaababbbaabbaaaabaaabbaaabbaaabaabababababbaaabbaab"
     "aaabaaaaaabbaaaaaaaaabbbbbabababbabaaaaaaaabaabaabbbbabaaabaabaaabbbaabaabbabbaaaaabaaaa"
     "bbaaaaababaaabaaabbabaaababbbbaaaabbaaabaaaababbbabbaabbbbaabaaabbbabaaabaabaabababbaabb"
     "baaaabbbaaababbbabbaaabbaaabaaabbbbbaaabbaaaaaababbaaaaaabababaaaababaaaaabbaaaaaabbaaaa"
     "aaaabbaabbaabaaaaabaaaaaabbaabbaaaabbbbbaabbbaaaaabbaaaaaabaabbabaaabbbabbababbaaabbbbaa"
     "abaabbaaaaabaaaaabbbaabaaaabaaabaaabaaaaaabbabbbaaabaabbbbbbabbaabbbaaaaaaaaaaaaabaaabba"
     "bbbabaabaaababaaabbabbbaaaaaabbbabbaaabaabaaabbababaaabababbaaaabaaaaababbaaababababaaab"
     "aaabbbbaabaaaaaababbaaabaaaabaaabaabbabbabababaabaaaaaaaaabbabaa"},
    {"Asia/Kolkata",
     {19270, 19800, 23400},
     "bbabbbbbabbbbbbbbbbbbbbbbbbbbbbbbbbbbbbabbbbbbbbbbbbbbababbbabbbbbbbbbbbbbbbbabbbbbbbbbb"
     "bbbbbbbbbbbbbcbbbbbbbbbbbbbbbbbbbbbabcbbbbbbbbbbbbbbbbbbabbbbbbbbbbbabbbbbbbbbbbbbbbbbbb"
     "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbccbbbbbbbbbbbabbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
     "bbbbbccbbbbbbbabbbbbabbbbbbbbbbbbbbbbbbbbbbbbbbcbbbbbbbbbbbbbbbbbbbbbbabbbbbbbbbbbbbbbbb"
     "bbbbbbabbbbbbbbbbcbbbbbbbbbbbbbbbbbbbbabbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
     "bbcbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbabbbbbabbbbbbbbbbbbbbbbbbbbbbbbbbc"
     "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbabbbbbbbbbbbbbbbbbbbbbbbbbabbbbbbbbcbbbbbbbbbbbbbbbbbbbb"
     "cbbbbbbbbbbbbbbbbbbbbbbbbbbbbcbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbcbbbbbbbbbbbabb"
     "bbbbbbbbbbbbbbbbbbbbbcbbabbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
     "cbbbbbbbbbbbbbbbbbbbabbbbbabbbbbbbbabbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
     "bbbbbbbbbbbbbbbbbbbbbbbbbbabbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbcbbbbbbbbbbbbb"
     "bbbbbbbbbbbbbbabbbbbbbbbbbbbbbbbbbbbbbbbabbbbabbbbabbbbcbbbbbcbbbbcbbbcbbbbbbbbbbbbcbbbb"
     "bbbbbbbbbbbbbbbbbbcbbbbbbbabbbbbbbbbbbbbbbbcbbbbbbbbcbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
     "bbbbbbbbbbbbbbbbbbbabbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbabbbbbbbbbbbbbbbbbbbbbbbbbbbb"
     "bbbbbbabbbbbbbbbbabbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbabbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
     "abbbbbbbabbbbbbbbbbbbbbcbbbbbcbbbbbbbbbbbabbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbabbbabbbbabbbbb"
     "bbbbbbbabbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbabbbbbbbbbbbacbbbbbbbbbbbbbcbbb"
     "bbbbabbbabbbbbbbabbbbbbbbbbbbbbbbbbbbbbbbbabbbbbbbbbbbbbbcbbbbbbbbbbbabbbbbbbbbbbbbbbbbb"
     "babbbbbbabbbbbbbbbbbbbbcabbbbbbbbbbbbbbbbbbbbbbbbbbbbbbabbbbabbbbbbbbbbbbbbbbbbbbbcbbbbb"
     "bbbbbbbbbbbbbbbbbabbabbbbbbbbbbbbbbbbbbbbbcbbbbbbbbbbabbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
     "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbcbbbbb"
     "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbcbbbbbbbbbbabbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
     "bbbbbbbbbbabbbbbbbbbbbbbbbbababbbbbbbbbbcbbbbbbbbbbbbbbbbbbbbbbb"},
    {"Australia/Lord_Howe",
     {36000, 37800, 39600, 41400},
     "abaaccbcaccbacbdbbaccaaabbcabbbbcbacabbacaabbbabbaacaaababaaacaacbbaccacaabbcaaacdababca"
     "cbcbbcaaaaaabaababbcbbcacbabaaacaaaabacababcbabcaccacadaadbacaacbabcaaabbabbcccaacaabbab"
     "aabbacbbcaacdccbcaadbcaccabaaccbccccabaaccaabacaccbabacabbbabaabccbbbbaacbaacaabadbcccab"
     "acbaaaaaaaabcaaaababacabaabbaccacacadacaaabbcacaacabcaaabcccacacabaaccaaabbabbbbccaabaab"
     "cccbabacbaccabcababbbcabbcababbabaaaccaccbbaaababaaabadbcbcccaaabbccabbcaaabcaaabccaacbc"
     "baabacbccccbacababbcbacabaaaacbccbabbbababacabacbacaaaaababcacacabcabadacacbacbbaababaca"
     "abacbcacbababbcabbaabbabacbcaacaabaacaabdaaacbcbaacbacaabbaaaabcbbcaabaaaaabcacbbbbbaaac"
     "adcabbabaabbacbaaabbaaacacccaabaaabacaaccacccbcbaaabaabbbaacabababcbcacbaabbcbbbabcbcacb"
     "bacbcbaaaccabbacbabbaaaaabcbbcbaaaaccbcaaabacbbaacbbaabaaaacaaaccaaacabcbcbcbacabcababbb"
     "aaabcaadbbcaabaabcacaadaccacaaacbcaaababacccabcaccbccaccbacbacaccabbbabcaabbababccaaaacb"
     "caaaaabacbaaaaaaababcaacacacabacacacababaaaaaccabcccbcbabbbabbcaacbabbaabbaabbacacbbcaca"
     "accbccbbaababcacbabbbbbabbacabbabcccbbbcacbbbacccbaaabaabbbaaabcacaacaacbabaabbcbbaacaac"
     "ccabbcacbcaabbcbaaaacbbcababbbbcaccabacbdbcaccabcbbaababacacacbccbbbbbaabaccbccbabcacbca"
     "accabcbabbbbabbdbcbaacaacaacccbabbabcbaabbaacccaabcabaabaabacbaacabbccacabbaaccbaacaaaac"
     "aabcccaaacbaabcacaccaccabccaacccacbbacaabbaabababccaabcaacacbbabbcbacaaaaaaabaccacbabccb"
     "abbaacabacabbaaabbbaacaacbcabaaabcaacaccbabbbaccbaccabcaaabaccbbcacbabbababcbabbccabbcab"
     "ccaccaaacabbcaaacaaaabbbbbababcbbcbaaacaacabaabacbcbbabaaabaaaaccbbbaaaacbbcbbcacacbacac"
     "bbaaacabaaaaabacabbabaccbcbbbbacdacbaacbacaababbbabbccbbbaaabacababcbacabacbacbabcbbaabc"
     "baaccbbcaacbabbbabbaacaaaabaacaabbbbaaabbbcaacacabaaacaaabcbabcccabcccacaaccaaacaaabaaac"
     "caacbbcaabdcbcbacabaaaadcbbcabbacaabbacbaaabbaaaaabbaaacaabcabbcbaacbbbabbacabbcccbbbbca"
     "aacabbcaaacbcaababbbcabacacbaccbaacbcacaccbbabbbacbbcabbbbabcbbacabccccacaaacccaabaaacba"
     "bbaabacbaaababaacabdcbbaacaacbbcacbcaabacadaacaabcbaaabcccacacccbacaacbabbccababcbabcacb"
     "caabbcbacbaaaacababaacabaacabaacbaabbcbbabababdcbbaacacacaababac"},
    {"Pacific/Chatham",
     {44100, 45900, 49500},
     "bbaaccbcaccbbcbcbbaccbaabbccbbbbcbacbbbabbcbbbabbabcbbabababacabccbaccacbbbbcabaccabcbca"
     "cbcbbcaabbabbaabbbbcbbcacbabaabcbababacababcbbbcaccacacbacbacabcbbbcaaabbbcbcccbbcbbbbbc"
     "abbbbcbbcaaccccbcbbcbcaccababccbccccababccaabacaccbabbcabbbabbbbccbbbbcacbbacbabacbcccbb"
     "bcbbaaaabbbbcbaabbbbacabbbbbbccacacbcacababbcababcbbbababcccacbcabbaccaacbbabbbbccbbbabb"
     "cccbabacbbccbccbbabbbcbbccbbbbbacaabccaccbbababbbbcbbbcbcbcccaaabbccbbbcababcaabbccabcbc"
     "baabaccccccbacbbabbcbbcbbaabbccccbabcbabbbacabbcbacaababbbbcacacbbcbbbcacacbbcbbaabbbaca"
     "bbacbcacbababbcabbaabbabbcbcaacaabbacbaccbbbcbcbabcbacabbbababccbbcabbbbbbabcacbcbcbaabc"
     "acbabbabaabcacbababbbaacbcccaabaaabacbaccbccbccbaaabbbbbbbacabacbbcbcacbaabbcbbbabcbcacb"
     "bbcbcbaabccabcccbabbbaababcbbcbbbaaccbcbbabbccbaacbbaabbaabcbabccaaacbbcbcbcbacbbcababbb"
     "ababcaacbbccbbbabcbcabcbccacaaacbcbabbbcbcccaccbccbccacccbcbacaccbbbbabcbbbbabbbccabaacb"
     "cbabacbbcbbbbaababbbcbbcacacabacacbcababbbabaccbbcccbcbabbbbbbcbbcbabbacbbabbbacacbbcaca"
     "accbccbbbabbbcacbabbbbbabbbcbbbabcccbbbcacbbcacccbaaabbabbbaaabcbcaacbacbabaabbcbbbacbcc"
     "cbbbbcacbcbabbcbababcbbcababbbbcbccabacbcbcaccbbcbbaabbbbcacacbccbbbcbabbbccbccbabcbcbca"
     "bccbbcbabbbbbbbcbcbabcaacbacccbbbbbbcbbabbbacccbbbcacbbbaabacbabcbbbccbcbbbbbccbaacaaabc"
     "bbbcccabccbabbcbbaccaccbbccbbcccbcbbacabbbbabababccbabcbbcacbbbbbcbacaabbcbabbccbcbbbccb"
     "abbbbcbbacbbbcaacbbabcaacbcababbbcabcaccbabcbaccbaccbbcbcbbaccbbbacbaccbbabcbabbccabbcab"
     "ccaccaaacabbcacacaaaabbbbbbbbbcbbcbabbcbacababbacbcbbabaaabbabaccbbbbaaacbbcbbcacacbaccc"
     "bbcbacabababbbbcabbbbaccbcbbbbbccacbbacbacabbbbbbabbccbcbabbbaccbabcbacabacbacbabcbbabbc"
     "baaccbbcabcbbbbbbbbbacaaaabbbcabbbbbaaabbccabcbcbbbbbcbabbcbabcccbbcccacaaccabacbaabbabc"
     "cbacbbcaabccbccbcabaabaccbbccbbacbbbbacbababbababbbbcaacbcbcbbbcbabcbbbabbacabbcccbbbbca"
     "bacabbcaaacbcbabbbbbcbbbcbcbaccbabcbcbcaccbbbbbbbcbbcabbbbbbcbbacbbccbcacbbacccaababacba"
     "bbaabacbababbbabcbbccbbbbcbbcbbcbcbcaababacbbcaabcbbabbcccbcacccbbcaacbbbbccabbbcbbbcccb"
     "cabbbcbacbabaacababbacbbbacabaacbabbbcbbabababccbbbacacacabbabbc"},
    {"America/Sao_Paulo",
     {-11188, -10800, -7200},
     "cbabcbbbabbbcbbbbbabcbbbbbcbbbbbbbbbbbbabbbbbbbbbbbcbbababbcababbbbbcbbbbbbbbabbbbbbbbba"
     "bbbbbbbabbbbbbbbbbbcbbbbbbabbbbbbbbabbbbbabcbbbbbccababbabbabcbbbbbbababbbcbbbbbbbbbbbbb"
     "bbbbbcbbbabbbbbbcbbbbbbbcbbbbbbbccbbbbbbcbbbbabbbbbabbbabbbbbbbbbcbbbbbbbbbbbbbbbbbbbcbb"
     "bbbbbbbabbbbbbabbbbbacbbbbbbbbbbbabbbbbbbbbbbabbbbcbbbbcbcbbabbbbbbbccabbbbbbbbbbcbbbbbb"
     "bbcbbbabbbbbbbbbbbbbbbbbbbbbbbbbbaacbbabcbbbbabbbbbcbbbbcbbbcbaabbbbbbbcbbbbbbbbbcbbbbbb"
     "bbbbbbbbbbbbbbbbbbbbbccbbbbbcbbbbbbbbbbbbbbbabbbbbbbbbabbbbbabbbbbbcbbbababbbbbbbbbbbbbb"
     "bbbcbbbcbbbbbbbbbbaabbbbbcbbabcaabbbbbbbbcbbbbbbbbbbabbbbbababbbbbbbbbbbbbbbbbbbbbbbbbbb"
     "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbaccbbbbbbbaabbcbbbbbbbbbbbbbcbbbbbabbbbbbbbbbbcabb"
     "bbbbbbabbbbbbbbbbabbbbbbabcbbcbbbabbcbcbbbbbbbbbbbbbbbbcbbbbbbbbbbbbcbbbbbbbbbbbbbbbabbb"
     "bbbbbabbbbcbbbbbbbbbabbbbbabbbbbbcbabbbbbbbbbcbbbbbbbbbbbbcbbbabbcbbbbbbbbbbbbbbbbbbbbbb"
     "bbbbbbbbbbcbbbbbbbbbcbbcbbabbbbcbbbbbbbbbcbbbbbbbbbbbbbbbbbbbbcbbbbbbbbbbbbbbbbbbbbbbabb"
     "abcbbbbbbbbbbbacbabbbbbabbbbbbbbbbbbbbbbabbbbabbcbabbbbbcbbbbbbbbbbccbbbbabbbbbbbbbbbbbb"
     "bbbbbbabbbbbbbbbbcbbbbbbbbabbbbbbcbabbbbbbbbcbbbbbbabbbbbcbcbbbbbbbbcbbbbbbbbbbbabcbbbba"
     "bbcbbbbbbbbbbbbbbcbabcbbbbbccbbbbbbbbbbbbbbbbbbcbbbbbbbbbababbbbcbbbbbbbbbbbbbbbbbcbbbbb"
     "bbbbbbabbbbabbbbbacbbbbbbcbbbbbbbbbbbbbbbbbbbbbabbbbabbbbbabbbbbbbbbbbabbbbabbbbbbbcbbbb"
     "abbbbcbbacbbbbacbbbbbbbbbbbbbbbbbbbbbbbbbabbbbbbbbbbbbbbbbbbbbbbbbbbbbcbbabcbabbbbabbbbb"
     "bbbbbbbabbbbbbbbbbaabbbbbbbbbbcbbbbbbbbbabbbabbbbbbbbbbbbabbbbabcbbbbabbbbbcbbbbbabbbcbc"
     "bbbbacbbabbbcbbbabbbbbbcbbbbbbbcbbbbbbbbbbacbcbbbbbbbbbcbbbbbbbbbbbcbabbbbbbbbbbbbbbabbb"
     "babbbbbbabbbcbbbbbbbbbbbaabbbbabbbbbabbbbbbbbbbbbbbbbbbacbbbabbbbbbbbcbcbbbbcbbbbabbbbbb"
     "bbbbbbbbbbbbbbbbbabbabbbbbbbbbbbbbcbbbbbabbbbbbbbbbbbabbbbbbbbbcbbbbbbbabbbbabbbcbbbbbca"
     "bbcbbbbbabbbbbbbbbbbbbbbcbbbabcbbcbbbcbbbbbbbbbbbbbbbbbbbbbbcbbbcbbbbbcbcbbbbbbbbbbbbbbb"
     "bbbbbbcbababcbabbbbbbbbbbcbbbbbbbbbbbbbabbbbbbbbbbbbabbbbbbbbccbbbbbbbbbbbbcbbcbbbbbbbbb"
     "bcbbbbbbbbababcbbbbbbbbbbbbababbbbbbbbbbbbbbbbbcbbbbbbbbbbbbabbc"},
};

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void test_python_random_instants(void **state)
{
    int64_t inst[RANDOM_COUNT];
    uint64_t seed = 20260131;
    (void)state;

    for (size_t i = 0; i < RANDOM_COUNT; i++)
        inst[i] = -2208988800LL + (int64_t)(splitmix64(&seed) % 6311433600ULL);
    assert_int_equal(inst[0], -123405289); /* the generator is Python's */
    for (size_t k = 0; k < sizeof(py_random) / sizeof(py_random[0]); k++) {
        const struct tz_zone *z = zone(py_random[k].zone);

        assert_int_equal(strlen(py_random[k].idx), RANDOM_COUNT);
        for (size_t i = 0; i < RANDOM_COUNT; i++) {
            int32_t want = py_random[k].offs[py_random[k].idx[i] - 'a'];
            if (tz_offset(z, inst[i]) != want)
                fail_msg("%s at %lld: %d, Python says %d", py_random[k].zone, (long long)inst[i],
                         tz_offset(z, inst[i]), want);
        }
    }
}

static void test_extreme_instants(void **state)
{
    static const char *names[] = {"America/Los_Angeles", "Asia/Kolkata", "Pacific/Chatham",
                                  "America/Sao_Paulo", "UTC"};
    static const int64_t t[] = {INT64_MIN, INT64_MIN + 1, -(INT64_C(1) << 59), INT64_MAX - 1,
                                INT64_MAX};
    char out[TZ_DATE_SIZE];
    (void)state;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const struct tz_zone *z = zone(names[i]);
        for (size_t j = 0; j < sizeof(t) / sizeof(t[0]); j++) {
            int32_t off = tz_offset(z, t[j]);
            assert_true(off > -93600 && off < 93600);
            memcpy(out, "untouched!", TZ_DATE_SIZE);
            assert_int_equal(tz_local_date(z, t[j], out), -1);
            assert_string_equal(out, "untouched!");
        }
    }
    /* Far future in LA still follows the rule: July is PDT, January PST. 400 years
     * later the calendar repeats exactly. */
    assert_int_equal(tz_offset(zone("America/Los_Angeles"), 2540264400 + 100 * 12622780800),
                     -25200);
    assert_int_equal(tz_offset(zone("America/Los_Angeles"), 1769931000 + 1000 * 12622780800),
                     -28800);
    assert_int_equal(tz_offset(NULL, 1769931000), 0);
    assert_int_equal(tz_offset(NULL, INT64_MIN), 0);
}

static void test_local_date_bounds(void **state)
{
    const struct tz_zone *la = zone("America/Los_Angeles"), *kol = zone("Asia/Kolkata");
    char out[TZ_DATE_SIZE];
    (void)state;

    assert_int_equal(tz_local_date(NULL, INT64_C(-62135596800000), out), 0);
    assert_string_equal(out, "0001-01-01");
    memcpy(out, "untouched!", TZ_DATE_SIZE);
    assert_int_equal(tz_local_date(NULL, INT64_C(-62135596800001), out), -1);
    assert_string_equal(out, "untouched!");
    assert_int_equal(tz_local_date(NULL, INT64_C(253402300799999), out), 0);
    assert_string_equal(out, "9999-12-31");
    assert_int_equal(tz_local_date(NULL, INT64_C(253402300800000), out), -1);
    /* Los Angeles before 1883 is local mean time, -7:52:58. */
    assert_int_equal(tz_local_date(la, INT64_C(-62135568422000), out), 0);
    assert_string_equal(out, "0001-01-01");
    assert_int_equal(tz_local_date(la, INT64_C(-62135568422001), out), -1);
    /* Kolkata reaches year 10000 at 9999-12-31T18:30Z. */
    assert_int_equal(tz_local_date(kol, INT64_C(253402280999999), out), 0);
    assert_string_equal(out, "9999-12-31");
    assert_int_equal(tz_local_date(kol, INT64_C(253402281000000), out), -1);
    /* A negative millisecond belongs to the second before the epoch. */
    assert_int_equal(tz_local_date(NULL, -1, out), 0);
    assert_string_equal(out, "1969-12-31");
    assert_int_equal(tz_local_date(NULL, 0, out), 0);
    assert_string_equal(out, "1970-01-01");
    assert_int_equal(tz_local_date(NULL, INT64_C(951782400000), out), 0); /* leap day */
    assert_string_equal(out, "2000-02-29");
}

/* ---- names and the cache ---------------------------------------------------------------- */

static void test_names(void **state)
{
    static const char *bad[] = {"../etc/passwd",  "/abs",  "a/./b",  "",   "a/../b",
                                "America/",       "a//b",  "..",     ".",  "America/Los Angeles",
                                "Europe\\Berlin", "UTC\n", "Zone,1", "~/x"};
    char name65[66], err[256];
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_null(tz_zone_get(bad[i], err, sizeof(err)));
        if (!strstr(err, "not a valid IANA name"))
            fail_msg("\"%s\": %s", bad[i], err);
    }
    memset(name65, 'A', 65);
    name65[65] = '\0';
    assert_null(tz_zone_get(name65, err, sizeof(err)));
    assert_non_null(strstr(err, "not a valid IANA name"));
    assert_null(tz_zone_get(NULL, err, sizeof(err)));
    assert_null(tz_zone_get(name65 + 1, err, sizeof(err))); /* 64 bytes: valid, no such file */
    assert_non_null(strstr(err, "No such file"));
    assert_null(tz_zone_get("Nope/Zone", err, sizeof(err)));
    assert_non_null(strstr(err, "Nope/Zone"));
    assert_null(tz_zone_get("America", err, sizeof(err))); /* a directory */
    assert_non_null(strstr(err, "not a regular file"));
    assert_null(tz_zone_get("Nope/Zone", NULL, 0));
    /* Files that are not TZif are refused, not misread. */
    assert_null(tz_zone_get("zone.tab", err, sizeof(err)));
    assert_non_null(strstr(err, "bad magic"));
}

static void test_utc_links_and_cache(void **state)
{
    const struct tz_zone *la = zone("America/Los_Angeles"), *us = zone("US/Pacific");
    (void)state;

    assert_ptr_equal(zone("America/Los_Angeles"), la);          /* loaded once */
    for (int64_t t = 1735689600; t < 1767225600; t += 3600 * 7) /* 2025, every 7 hours */
        assert_int_equal(tz_offset(us, t), tz_offset(la, t));
    assert_non_null(zone("UTC"));
    assert_ptr_equal(zone("Etc/UTC"), zone("UTC"));
    assert_int_equal(tz_offset(zone("UTC"), 1769931000), 0);
    assert_int_equal(tz_offset(zone("Etc/GMT+5"), 1769931000), -18000); /* POSIX sign */
    assert_int_equal(tz_offset(zone("Asia/Kathmandu"), 1769931000), 20700);
}

static void test_tzdir(void **state)
{
    static const struct ttype t0 = {-16200, 0};
    struct tzif_spec s = {.version = 2, .types = &t0, .typecnt = 1, .footer = "<-0430>4:30"};
    char dir[] = "/tmp/test_tz.XXXXXX", path[128], err[256];
    struct obuf o;
    FILE *f;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/Test", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    tzif_build(&o, &s);
    snprintf(path, sizeof(path), "%s/Test/Fixed", dir);
    assert_non_null(f = fopen(path, "wb"));
    assert_int_equal(fwrite(o.b, 1, o.n, f), o.n);
    fclose(f);
    snprintf(path, sizeof(path), "%s/Test/Bad", dir);
    assert_non_null(f = fopen(path, "wb"));
    assert_int_equal(fwrite(o.b, 1, o.n - 1, f), o.n - 1); /* footer unterminated */
    fclose(f);

    assert_int_equal(setenv("TZDIR", dir, 1), 0);
    assert_int_equal(tz_offset(zone("Test/Fixed"), 0), -16200);
    assert_null(tz_zone_get("Test/Bad", err, sizeof(err)));
    assert_non_null(strstr(err, "footer"));
    assert_null(tz_zone_get("America/Los_Angeles_", err, sizeof(err)));
    assert_non_null(strstr(err, dir));
    assert_int_equal(unsetenv("TZDIR"), 0);
    /* Cached: the file is no longer needed. */
    snprintf(path, sizeof(path), "%s/Test/Fixed", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/Test/Bad", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/Test", dir);
    rmdir(path);
    rmdir(dir);
    assert_int_equal(tz_offset(zone("Test/Fixed"), 0), -16200);
}

struct thread_arg {
    const struct tz_zone *got[4];
    int bad;
};

static const char *thread_zones[4] = {"Europe/Paris", "Asia/Tokyo", "America/Chicago",
                                      "Africa/Nairobi"};

static void *thread_main(void *p)
{
    struct thread_arg *a = p;
    char out[TZ_DATE_SIZE];

    for (int round = 0; round < 50; round++)
        for (int i = 0; i < 4; i++) {
            int k = (i + round) % 4;
            const struct tz_zone *z = tz_zone_get(thread_zones[k], NULL, 0);

            if (!z || (a->got[k] && a->got[k] != z) ||
                tz_local_date(z, INT64_C(1769931000000), out) != 0)
                a->bad++;
            a->got[k] = z;
        }
    return NULL;
}

/* Threads loading the same zones at once get the same zone, loaded once. */
static void test_threads(void **state)
{
    pthread_t th[8];
    struct thread_arg args[8];
    (void)state;

    memset(args, 0, sizeof(args));
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&th[i], NULL, thread_main, &args[i]), 0);
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(args[i].bad, 0);
        for (int k = 0; k < 4; k++)
            assert_ptr_equal(args[i].got[k], args[0].got[k]);
    }
    assert_int_equal(tz_offset(args[0].got[1], 1769931000), 32400); /* Tokyo */
}

/* Runs last: it fills the process's cache. */
static void test_cache_full(void **state)
{
    static const char *pool[] = {"Africa", "America", "Asia", "Europe", "Pacific"};
    const struct tz_zone *la = zone("America/Los_Angeles");
    char err[256] = "", name[TZ_NAME_MAX + 1], dir[64];
    int loaded = 0, full = 0;
    (void)state;

    /* Zones from the directories above, in readdir order, until the cache says no. */
    for (size_t p = 0; p < sizeof(pool) / sizeof(pool[0]) && !full; p++) {
        DIR *d;
        struct dirent *e;

        snprintf(dir, sizeof(dir), ZONEINFO "/%s", pool[p]);
        assert_non_null(d = opendir(dir));
        while (!full && (e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.' ||
                snprintf(name, sizeof(name), "%s/%s", pool[p], e->d_name) >= (int)sizeof(name))
                continue;
            if (tz_zone_get(name, err, sizeof(err)))
                loaded++;
            else if (strstr(err, "cache full"))
                full = 1;
        }
        closedir(d);
    }
    assert_true(full);
    assert_true(loaded >= TZ_CACHE_MAX - 30 && loaded <= TZ_CACHE_MAX);
    assert_ptr_equal(zone("America/Los_Angeles"), la); /* cached zones still answer */
    assert_non_null(zone("UTC"));                      /* built in, outside the cache */
}

/* ---- TZif parsing ------------------------------------------------------------------------ */

static void test_parse_versions(void **state)
{
    static const int64_t times[] = {-100000, 0, 1000};
    static const unsigned char idx[] = {1, 2, 1};
    static const struct ttype types[] = {{3600, 1}, {-3600, 0}, {7200, 1}};
    struct tzif_spec s = {
        .version = 1, .times = times, .idx = idx, .timecnt = 3, .types = types, .typecnt = 3};
    struct tz_zone *z;
    struct obuf o;
    (void)state;

    for (int v = 1; v <= 4; v++) {
        s.version = v;
        s.leapcnt = (size_t)v - 1;
        s.indicators = v % 2;
        tzif_build(&o, &s);
        z = parse_ok(&o);
        /* Before the first transition: the first non-DST type (type 1, not type 0). */
        assert_int_equal(tz_offset(z, INT64_MIN), -3600);
        assert_int_equal(tz_offset(z, -100001), -3600);
        assert_int_equal(tz_offset(z, -100000), -3600);
        assert_int_equal(tz_offset(z, -1), -3600);
        assert_int_equal(tz_offset(z, 0), 7200);
        assert_int_equal(tz_offset(z, 999), 7200);
        /* After the last one, without a footer: the last transition's type. */
        assert_int_equal(tz_offset(z, 1000), -3600);
        assert_int_equal(tz_offset(z, INT64_MAX), -3600);
        tz_zone_free(z);
    }
    /* Every type DST: type 0. */
    s.version = 2;
    s.types = (const struct ttype[]){{3600, 1}, {7200, 1}, {10800, 1}};
    tzif_build(&o, &s);
    z = parse_ok(&o);
    assert_int_equal(tz_offset(z, -200000), 3600);
    tz_zone_free(z);
    tz_zone_free(NULL);
}

/* Leap-second records (the "right/" zones) are skipped without shifting anything. */
static void test_parse_real_files(void **state)
{
    static const char *files[] = {"right/UTC",    "right/America/Los_Angeles", "UTC",
                                  "Asia/Kolkata", "America/Los_Angeles",       "Europe/London"};
    char path[128], err[256];
    (void)state;

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        size_t len;
        unsigned char *buf;
        struct tz_zone *z;

        snprintf(path, sizeof(path), ZONEINFO "/%s", files[i]);
        if (access(path, R_OK) != 0 && strncmp(files[i], "right/", 6) == 0)
            continue; /* tzdata-legacy may be absent */
        buf = file_bytes(path, &len);
        z = tz_zone_parse(buf, len, err, sizeof(err));
        if (!z)
            fail_msg("%s: %s", files[i], err);
        assert_int_equal(tz_offset(z, 1769931000) % 1800, 0);
        tz_zone_free(z);
        free(buf);
    }
}

/* Every strict prefix of a real file is refused, and so is every single-byte damage to a
 * header count or the footer; none may crash (ASan runs these too). */
static void test_parse_truncated(void **state)
{
    size_t len, v2h;
    unsigned char *buf = file_bytes(ZONEINFO "/America/Los_Angeles", &len);
    char err[128];
    (void)state;

    for (size_t n = 0; n < len; n++) {
        struct tz_zone *z = tz_zone_parse(buf, n, err, sizeof(err));
        if (z)
            fail_msg("prefix of %zu bytes accepted", n);
    }
    assert_null(tz_zone_parse(NULL, 0, err, sizeof(err)));
    assert_null(tz_zone_parse(NULL, 100, NULL, 0));
    /* The version 2 header follows the version 1 data: 186 transitions, 6 types. */
    v2h = 44 + 186 * 5 + 6 * 6 + 20 + 6 + 6;
    assert_memory_equal(buf + v2h, "TZif2", 5);
    for (size_t i = v2h + 20; i < v2h + 44; i++) {
        buf[i] ^= 0x80;
        parse_fails(buf, len, "TZif:");
        buf[i] ^= 0x80;
    }
    buf[len - 2] = 'X'; /* "...,M11.1.X\n" */
    parse_fails(buf, len, "footer");
    free(buf);
}

static void test_parse_refuses(void **state)
{
    static const int64_t times[] = {0, 1000};
    static const unsigned char idx[] = {0, 1};
    static const struct ttype types[] = {{-28800, 0}, {-25200, 1}};
    struct tzif_spec good = {.version = 2,
                             .times = times,
                             .idx = idx,
                             .timecnt = 2,
                             .types = types,
                             .typecnt = 2,
                             .footer = "PST8PDT,M3.2.0,M11.1.0"};
    struct tzif_spec s;
    struct obuf o;
    size_t v2h, isstd;
    (void)state;

    tzif_build(&o, &good);
    tz_zone_free(parse_ok(&o));
    v2h = 44 + 2 * 5 + 2 * 6 + 4;

    o.b[0] = 'X';
    parse_fails(o.b, o.n, "bad magic");
    tzif_build(&o, &good);
    o.b[4] = '5';
    parse_fails(o.b, o.n, "version");
    tzif_build(&o, &good);
    o.b[v2h + 4] = '3';
    parse_fails(o.b, o.n, "version differs");
    tzif_build(&o, &good);
    o.b[v2h + 32] = 0x7f; /* timecnt */
    parse_fails(o.b, o.n, "beyond limit");
    tzif_build(&o, &good);
    o.b[v2h + 36 + 2] = 1; /* typecnt 258 */
    parse_fails(o.b, o.n, "beyond limit");
    tzif_build(&o, &good);
    o.b[o.n] = '\n';
    parse_fails(o.b, o.n + 1, "trailing");

    s = good;
    s.times = (const int64_t[]){1000, 1000};
    tzif_build(&o, &s);
    parse_fails(o.b, o.n, "not ascending");
    s = good;
    s.idx = (const unsigned char[]){0, 2};
    tzif_build(&o, &s);
    parse_fails(o.b, o.n, "type index");
    s = good;
    s.types = (const struct ttype[]){{-28800, 0}, {93600, 1}};
    tzif_build(&o, &s);
    parse_fails(o.b, o.n, "offset out of range");
    s.types = (const struct ttype[]){{INT32_MIN, 0}, {0, 1}};
    tzif_build(&o, &s);
    parse_fails(o.b, o.n, "offset out of range");
    s.types = (const struct ttype[]){{0, 0}, {0, 2}};
    tzif_build(&o, &s);
    parse_fails(o.b, o.n, "isdst");
    s = good;
    s.typecnt = 0;
    s.timecnt = 0;
    tzif_build(&o, &s);
    parse_fails(o.b, o.n, "no time types");
    s = good;
    s.indicators = 1;
    tzif_build(&o, &s);
    tz_zone_free(parse_ok(&o));
    isstd = o.n - strlen(s.footer) - 2 - 4; /* 2 isstd and 2 isut bytes, then the footer */
    o.b[isstd + 2] = 2;
    parse_fails(o.b, o.n, "isut");
    tzif_build(&o, &s);
    o.b[isstd] = 0; /* isut 1 with isstd 0 */
    parse_fails(o.b, o.n, "isut");
    s = good;
    s.version = 1;
    tzif_build(&o, &s);
    o.b[44 + 2 * 5 + 2 * 6 + 3] = 'x'; /* designations not NUL-terminated */
    parse_fails(o.b, o.n, "NUL");
}

/* ---- footers ------------------------------------------------------------------------------ */

/* Synthetic zones with no transition and only a footer, against glibc over 2024-2025. */
static void test_footer_rules(void **state)
{
    static const struct {
        const char *footer;
        int32_t before, after;
        int64_t t[4];
        size_t n;
    } cases[] = {
        {"PST8PDT,M3.2.0,M11.1.0",
         -28800,
         -25200,
         {1710064800, 1730624400, 1741514400, 1762074000},
         4},
        {"CET-1CEST,M3.5.0,M10.5.0/3",
         3600,
         7200,
         {1711846800, 1729990800, 1743296400, 1761440400},
         4},
        {"IST-5:30", 19800, 19800, {0}, 0},
        {"<+0545>-5:45", 20700, 20700, {0}, 0},
        {"<-03>3", -10800, -10800, {0}, 0},
        {"<-03>3<-02>,J60,J300/1:30:15",
         -10800,
         -7200,
         {1709269200, 1729999815, 1740805200, 1761535815},
         4},
        {"<+03>-3<+04>,59/0,299/23:59:59",
         10800,
         14400,
         {1709154000, 1729972799, 1740776400, 1761595199},
         4},
        {"<-03>3<-02>,J59/0,J300",
         -10800,
         -7200,
         {1709089200, 1730001600, 1740711600, 1761537600},
         4},
        {"<+02>-2<+03>,M3.4.4/26,M10.5.0",
         7200,
         10800,
         {1711670400, 1729983600, 1743120000, 1761433200},
         4},
        {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0",
         -7200,
         -3600,
         {1711846800, 1729990800, 1743296400, 1761440400},
         4},
        {"IST-1GMT0,M10.5.0,M3.5.0/1",
         0,
         3600,
         {1711846800, 1729990800, 1743296400, 1761440400},
         4},
        {"<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45",
         49500,
         45900,
         {1712412000, 1727532000, 1743861600, 1758981600},
         4},
        {"<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",
         39600,
         37800,
         {1712415600, 1728142200, 1743865200, 1759591800},
         4},
        {"<-10>10<-09>,M4.1.0/-167,M9.5.6/167",
         -36000,
         -32400,
         {1711882800, 1728115200, 1743332400, 1759564800},
         4},
        {"<+05>-5<+04>4,M5.5.0/+1:00:01,M9.1.6/-1:00:01",
         18000,
         -14400,
         {1716667201, 1725677999, 1748116801, 1757127599},
         4},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tz_zone *z = footer_zone(cases[i].footer);
        assert_int_equal(tz_offset(z, 1704067200), cases[i].before); /* 2024-01-01 */
        check_transitions(z, cases[i].footer, cases[i].before, cases[i].after, cases[i].t,
                          cases[i].n);
        tz_zone_free(z);
    }
}

/* RFC 8536 3.3.1: DST all year when it ends (Dec 31 24:00 + 1 h, in DST) exactly when
 * the next year's starts. One hour earlier leaves a one-hour gap of standard time from
 * Dec 31 17:30Z (24:00 at +6:30) to 18:30Z (Jan 1 00:00 at +5:30). Python and glibc
 * look at one year's pair of transitions only and get these year edges wrong (glibc even
 * the RFC's own all-year example), so this is worked by hand. */
static void test_footer_year_edges(void **state)
{
    struct tz_zone *z = footer_zone("EST5EDT,0/0,J365/25");
    (void)state;

    for (int64_t t = 1704067200 - 86400; t < 1767225600; t += 1800) /* 2024-2025 */
        assert_int_equal(tz_offset(z, t), -14400);
    tz_zone_free(z);
    z = footer_zone("<+0530>-5:30<+0630>-6:30,J1/0,J365/24");
    assert_int_equal(tz_offset(z, 1735666199), 23400); /* 2024-12-31T17:29:59Z */
    assert_int_equal(tz_offset(z, 1735666200), 19800);
    assert_int_equal(tz_offset(z, 1735669799), 19800);
    assert_int_equal(tz_offset(z, 1735669800), 23400); /* 18:30Z */
    assert_int_equal(tz_offset(z, 1751328000), 23400); /* mid 2025 */
    tz_zone_free(z);
}

static void test_footer_refused(void **state)
{
    static const char *bad[] = {
        "PST8PDT",                    /* DST without a rule */
        "PS8",                        /* name too short */
        "PST",                        /* no offset */
        "PST25",                      /* offset hours beyond 24 */
        "PST8PDT,M13.1.0,M11.1.0",    /* month 13 */
        "PST8PDT,M3.6.0,M11.1.0",     /* week 6 */
        "PST8PDT,M3.2.7,M11.1.0",     /* weekday 7 */
        "PST8PDT,M3.2.0",             /* no end */
        "PST8PDT,J0,J365",            /* Julian day 0 */
        "PST8PDT,0,366",              /* zero-based day 366 */
        "PST8PDT,M3.2.0/168,M11.1.0", /* transition time beyond 167 h */
        "PST8PDT,M3.2.0/1:5,M11.1.0", /* one-digit minutes */
        "<AB>3",                      /* quoted name too short */
        "<ABC3",                      /* unterminated quote */
        "<A/C>3",                     /* bad character */
        "PST8 ",                      /* trailing byte */
        "IST-5:30:",                  /* dangling colon */
        "IST-5:60",                   /* minutes 60 */
        "PST+-8",                     /* two signs */
        "PST8PDT,M3.2.0,M11.1.0,",    /* trailing comma */
    };
    static const struct ttype t0 = {0, 0};
    struct tzif_spec s = {.version = 2, .types = &t0, .typecnt = 1};
    struct obuf o;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        s.footer = bad[i];
        tzif_build(&o, &s);
        parse_fails(o.b, o.n, "footer");
    }
    /* An empty footer is allowed: no rule, the last type stays. */
    s.footer = "";
    tzif_build(&o, &s);
    tz_zone_free(parse_ok(&o));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issue_case),
        cmocka_unit_test(test_la_dst_2026),
        cmocka_unit_test(test_other_zones_2026),
        cmocka_unit_test(test_footer_era),
        cmocka_unit_test(test_python_random_instants),
        cmocka_unit_test(test_extreme_instants),
        cmocka_unit_test(test_local_date_bounds),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_utc_links_and_cache),
        cmocka_unit_test(test_tzdir),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_parse_versions),
        cmocka_unit_test(test_parse_real_files),
        cmocka_unit_test(test_parse_truncated),
        cmocka_unit_test(test_parse_refuses),
        cmocka_unit_test(test_footer_rules),
        cmocka_unit_test(test_footer_year_edges),
        cmocka_unit_test(test_footer_refused),
        cmocka_unit_test(test_cache_full),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
