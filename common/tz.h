/* tz.h - IANA time zones read from TZif files: UTC offsets and local calendar dates.
 *
 * Why: QuickBooks' TxnDate is a calendar date in the company's time zone, so an event at
 * 23:30 on Jan 31 in California belongs to Jan 31 although it is Feb 1 in UTC. libc's
 * localtime_r() only knows the zone of the TZ variable, and changing TZ (setenv + tzset)
 * is process-wide and not thread-safe, so this module reads the compiled tz database
 * (RFC 8536 TZif files, /usr/share/zoneinfo) itself and answers from memory.
 *
 * Owns: the process-wide zone cache (at most TZ_CACHE_MAX zones, filled by tz_zone_get,
 * never emptied: a cached zone lives until the process ends) and its mutex; zones made by
 * tz_zone_parse belong to their caller.
 *
 * Rules (those of glibc and Python's zoneinfo unless said otherwise):
 *   - an instant before the first transition takes the first non-DST time type (type 0
 *     when every type is DST; RFC 8536 specifies type 0, which zic makes the same);
 *   - an instant after the last transition (or any instant when there is none) follows
 *     the footer's POSIX TZ string (RFC 8536 section 3.3, version 3 extensions included),
 *     else keeps the last transition's type (in a file without transitions, the type an
 *     instant before the first transition would get). Under a rule, the latest
 *     transition at or before the instant wins even when it belongs to another year, so
 *     RFC 8536's "DST all year" (3.3.1) holds; glibc and Python look at one year's pair
 *     only and differ at such year edges, which no real zone has;
 *   - leap-second records are skipped: offsets are civil (POSIX) time, as everywhere else
 *     in the worker, so the "right/" zones are not meant for this module.
 * Every offset this module returns is strictly within 26 hours of UTC (the parser refuses
 * anything else), so adding one to an epoch time never overflows a calendar computation.
 *
 * Thread-safety: every function may be called from any thread. A struct tz_zone is
 * immutable once made; tz_zone_get serialises loads with one mutex and hands out the same
 * pointer for the same name.
 */
#ifndef HSQB_TZ_H
#define HSQB_TZ_H

#include <stddef.h>
#include <stdint.h>

#define TZ_NAME_MAX    64      /* longest zone name tz_zone_get accepts, in bytes */
#define TZ_CACHE_MAX   256     /* zones tz_zone_get keeps; beyond it, NULL */
#define TZ_FILE_MAX    1048576 /* a larger TZif file is refused (real ones are < 4 KiB) */
#define TZ_TIMECNT_MAX 100000  /* transitions per data block */
#define TZ_TYPECNT_MAX 256     /* local time types */
#define TZ_CHARCNT_MAX 4096    /* bytes of time zone designations */
#define TZ_LEAPCNT_MAX 10000   /* leap-second records (skipped) */
#define TZ_FOOTER_MAX  256     /* bytes of the footer's TZ string */
#define TZ_DATE_SIZE   11      /* "YYYY-MM-DD" and its NUL */

struct tz_zone; /* opaque */

/* The zone named `name` (an IANA name such as "America/Los_Angeles"; legacy links such as
 * "US/Pacific" work as the files do): loaded once from <dir>/<name>, dir
 * "/usr/share/zoneinfo" unless the environment variable TZDIR names another, and cached
 * for the life of the process (a mutex guards the cache; at most TZ_CACHE_MAX zones, then
 * NULL). Names are 1..TZ_NAME_MAX bytes of [A-Za-z0-9._+-/], no leading or trailing '/',
 * no empty, "." or ".." component. "UTC" and "Etc/UTC" work without a file. NULL with
 * errstr (may be NULL / errsz 0) on an invalid name, an unknown zone, an unreadable or
 * malformed file or a full cache; failures are not cached, so a later call tries again.
 * Thread-safe; the zone is borrowed and stays valid until the process ends. */
const struct tz_zone *tz_zone_get(const char *name, char *errstr, size_t errsz);

/* Parse len bytes of TZif data (versions 1 to 4; the 64-bit block when there is one) into
 * a new zone the caller frees with tz_zone_free(). buf is borrowed (NULL only with len 0).
 * NULL with errstr on anything malformed: bad magic or version, counts beyond the TZ_*_MAX
 * limits or inconsistent with each other, truncated or trailing data, unsorted
 * transitions, a type index, designation index or offset out of range, isstd/isut values
 * other than 0/1, a footer that is not a valid POSIX TZ string. Never crashes (fuzzed). */
struct tz_zone *tz_zone_parse(const unsigned char *buf, size_t len, char *errstr, size_t errsz);

/* Frees a zone from tz_zone_parse(); z may be NULL. Never pass a tz_zone_get() zone. */
void tz_zone_free(struct tz_zone *z);

/* UTC offset in seconds east of UTC at instant utc_s (seconds since the epoch, any int64),
 * following the rules at the top: e.g. -28800 for Los Angeles in January, +19800 for
 * Kolkata. z NULL means UTC (0). Always in (-93600, 93600). Pure. */
int32_t tz_offset(const struct tz_zone *z, int64_t utc_s);

/* The local calendar date "YYYY-MM-DD" of instant utc_ms (milliseconds since the epoch,
 * any int64; a negative value's millisecond part belongs to the second before) in zone z
 * (NULL = UTC), NUL-terminated into out. 0, or -1 with out untouched when the local date
 * falls outside years 1..9999. Pure. */
int tz_local_date(const struct tz_zone *z, int64_t utc_ms, char out[TZ_DATE_SIZE]);

#endif /* HSQB_TZ_H */
