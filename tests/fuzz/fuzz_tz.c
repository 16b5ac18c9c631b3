/* libFuzzer target for common/tz.
 *
 * An input that starts with "TZif" is parsed as it is; any other input becomes the footer
 * of a minimal version 2 file (no transitions, one type), so the POSIX TZ parser is
 * reached without the fuzzer having to rebuild a header first. Whatever parses must give
 * offsets strictly within 26 hours at the int64 extremes, around zero and at instants
 * read from the input (where its transition times are), and tz_local_date() must either
 * write a well-formed "YYYY-MM-DD" or return -1 and leave the buffer alone. Any violated
 * property aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts, naming the broken property, so a crash report says what went wrong. */
static void require(int ok, const char *property)
{
    if (ok)
        return;
    fprintf(stderr, "fuzz_tz: property violated: %s\n", property);
    abort();
}

#define DAY_26H    93600
#define MINI_BLOCK (44 + 6 + 4) /* header, one type, "UTC\0" */

/* Header and data block of a version 2 file with one type and no transitions. */
static size_t put_header(unsigned char *p)
{
    static const unsigned char counts[24] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                             0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 4};

    memcpy(p, "TZif2", 5);
    memset(p + 5, 0, 15);
    memcpy(p + 20, counts, sizeof(counts));
    /* The type: offset 0, not DST, designation 0; then "UTC\0". */
    memcpy(p + 44, "\0\0\0\0\0\0UTC\0", 10);
    return MINI_BLOCK;
}

static struct tz_zone *parse(const uint8_t *data, size_t size, char *err, size_t errsz)
{
    unsigned char *buf;
    struct tz_zone *z;
    size_t n;

    if (size >= 4 && memcmp(data, "TZif", 4) == 0)
        return tz_zone_parse(data, size, err, errsz);
    buf = malloc(2 * MINI_BLOCK + size + 2);
    require(buf != NULL, "malloc");
    n = put_header(buf);
    n += put_header(buf + n);
    buf[n++] = '\n';
    memcpy(buf + n, data, size);
    n += size;
    buf[n++] = '\n';
    z = tz_zone_parse(buf, n, err, errsz);
    free(buf);
    return z;
}

/* The date into out (0), or -1 with out left alone. */
static int check_date(const struct tz_zone *z, int64_t utc_ms, char out[TZ_DATE_SIZE])
{
    memcpy(out, "untouched!", TZ_DATE_SIZE);
    if (tz_local_date(z, utc_ms, out) != 0) {
        require(memcmp(out, "untouched!", TZ_DATE_SIZE) == 0, "date -1 leaves out alone");
        return -1;
    }
    for (int i = 0; i < 10; i++)
        require(i == 4 || i == 7 ? out[i] == '-' : (out[i] >= '0' && out[i] <= '9'),
                "date is YYYY-MM-DD");
    require(out[10] == '\0' && memcmp(out, "0000", 4) != 0, "date in years 1..9999");
    return 0;
}

static void check_instant(const struct tz_zone *z, int64_t t)
{
    int32_t off = tz_offset(z, t);
    char first[TZ_DATE_SIZE], last[TZ_DATE_SIZE];

    require(off > -DAY_26H && off < DAY_26H, "|offset| < 26 h");
    (void)check_date(z, t, first);
    if (t <= INT64_MIN / 1000 || t >= INT64_MAX / 1000)
        return;
    /* Every millisecond of one second has the same date. */
    if (check_date(z, t * 1000, first) == 0 && check_date(z, t * 1000 + 999, last) == 0)
        require(memcmp(first, last, TZ_DATE_SIZE) == 0, "one second, one date");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t fixed[] = {INT64_MIN,  INT64_MIN + 1, -1,       0, 1, 1769931000,
                                    2540264400, INT64_MAX - 1, INT64_MAX};
    char err[128];
    struct tz_zone *z;

    memset(err, 'z', sizeof(err));
    z = parse(data, size, err, sizeof(err));
    if (!z) {
        require(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0', "error message");
        return 0;
    }
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        check_instant(z, fixed[i]);
    /* Big-endian 8- and 4-byte values at up to ~512 offsets: the input's own transition
     * times, and the second before each. */
    for (size_t at = 0; at + 8 <= size; at += 1 + size / 512) {
        uint64_t v = 0;
        for (int k = 0; k < 8; k++)
            v = v << 8 | data[at + k];
        check_instant(z, (int64_t)v);
        check_instant(z, (int64_t)(v - 1));
        check_instant(z, (int32_t)(uint32_t)(v >> 32));
        check_instant(z, (int64_t)(int32_t)(uint32_t)(v >> 32) - 1);
    }
    tz_zone_free(z);
    return 0;
}
