/* libFuzzer target: the Kafka headers the worker reads from an input record.
 *
 * The input is a list of headers, one per line: "name=value" (the value may hold any
 * byte but a newline, NUL included), or "name" alone for a header with a null value;
 * at most 64. Every reader of inbound headers runs on them:
 *   - delay_not_before() (hsqb-not-before of a retry-topic record, worker/delay.c);
 *   - result_inbound_meta_read() (hsqb-attempts, -first-failure, -original-*, the replay
 *     headers, worker/result.c);
 *   - delay_headers_copy() and delay_headers_forward() (what a retry or dead letter
 *     carries on).
 * Each answer is checked against an oracle written here from schemas/headers.md: a
 * number header counts only as canonical digits (no sign, no leading zero, no
 * space) within its bound, the last occurrence wins, anything else reads as absent; the
 * copied and forwarded sets carry one header per name (the last value that can travel)
 * and never a skipped name or a second copy of an added one. Any
 * violated property aborts.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "worker/delay.h"
#include "worker/producer.h"
#include "worker/result.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define MAX_HEADERS 64

struct hdr {
    const char *name; /* NUL-terminated copy */
    const uint8_t *value;
    size_t vlen;
    int null_value;
};

/* The last header called name, or NULL. */
static const struct hdr *last_of(const struct hdr *h, size_t n, const char *name)
{
    const struct hdr *found = NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(h[i].name, name) == 0)
            found = &h[i];
    return found;
}

/* The oracle of every number header: canonical digits, value <= max. */
static int number_of(const struct hdr *h, int64_t max, int64_t *out)
{
    uint64_t v = 0;

    if (!h || h->null_value || h->vlen == 0 || h->vlen > 19 ||
        (h->value[0] == '0' && h->vlen > 1))
        return -1;
    for (size_t i = 0; i < h->vlen; i++) {
        if (h->value[i] < '0' || h->value[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(h->value[i] - '0'); /* 19 digits fit a uint64_t */
    }
    if (v > (uint64_t)max)
        return -1;
    *out = (int64_t)v;
    return 0;
}

static void check_not_before(const rd_kafka_headers_t *hs, const struct hdr *h, size_t n)
{
    int64_t ms = -7, want;
    int rc = delay_not_before(hs, &ms);
    int wrc = number_of(last_of(h, n, "hsqb-not-before"), INT64_MAX, &want);

    CHECK(rc == wrc);
    CHECK(rc < 0 ? ms == -7 : ms == want);
}

static void check_meta(const rd_kafka_headers_t *hs, const struct hdr *h, size_t n)
{
    struct result_inbound_meta m;
    const struct hdr *topic = last_of(h, n, "hsqb-original-topic");
    int64_t v;

    result_inbound_meta_read(hs, &m);
    CHECK(m.attempts_before ==
          (number_of(last_of(h, n, "hsqb-attempts"), 999999, &v) == 0 ? (int)v : 0));
    CHECK(m.first_failure_ms ==
          (number_of(last_of(h, n, "hsqb-first-failure"), INT64_MAX, &v) == 0 ? v : 0));
    CHECK(m.replay_count == (number_of(last_of(h, n, "hsqb-replay-count"),
                                       RESULT_REPLAY_COUNT_MAX, &v) == 0
                                 ? (int)v
                                 : 0));
    CHECK(m.replayed == (last_of(h, n, "hsqb-replay-of") != NULL));
    CHECK(memchr(m.original_topic, '\0', sizeof m.original_topic) != NULL);
    if (m.original_topic[0]) {
        /* a topic is kept only with its partition, byte for byte */
        CHECK(topic && !topic->null_value && topic->vlen == strlen(m.original_topic) &&
              memcmp(topic->value, m.original_topic, topic->vlen) == 0);
        CHECK(number_of(last_of(h, n, "hsqb-original-partition"), INT32_MAX, &v) == 0 &&
              m.original_partition == v);
        CHECK(m.original_offset >= 0 && m.original_timestamp_ms >= 0);
    }
}

/* out[0..nout) is what kafka_headers_gather() makes of h[0..nh): one header per name, in
 * the order of the names' first travelling occurrence, with the value of the last one
 * that can travel (no NUL byte; a null value travels as ""). */
static void check_gathered(const struct kafka_header_set *out, size_t nout,
                           const struct hdr *h, size_t nh)
{
    size_t prev_first = 0;

    for (size_t i = 0; i < nout; i++) {
        const struct kafka_header *k = &out->h[i];
        const struct hdr *last = NULL;
        size_t first = nh;
        for (size_t j = 0; j < nh; j++) {
            if (strcmp(h[j].name, k->name) != 0 || (h[j].vlen && memchr(h[j].value, 0, h[j].vlen)))
                continue;
            if (first == nh)
                first = j;
            last = &h[j];
        }
        CHECK(last && k->value && strlen(k->value) == last->vlen &&
              memcmp(k->value, last->vlen ? (const void *)last->value : "", last->vlen) == 0);
        CHECK(i == 0 || first > prev_first);
        prev_first = first;
    }
}

static void check_sets(const rd_kafka_headers_t *hs, const struct hdr *h, size_t n)
{
    static const char *const skip[] = {"hsqb-attempts", "hsqb-not-before"};
    static const struct kafka_header add[] = {{"hsqb-last-error", "HTTP_503: x"},
                                              {"hsqb-attempts", "2"}};
    struct kafka_header_set out = {0};
    char e[128];
    size_t i, seen = 0;

    if (delay_headers_copy(hs, &out, e, sizeof e) == 0) {
        CHECK(out.n <= KAFKA_HEADER_SET_MAX);
        check_gathered(&out, out.n, h, n);
    }
    kafka_header_set_release(&out);
    memset(&out, 0, sizeof out);
    if (delay_headers_forward(hs, skip, 2, add, 2, &out, e, sizeof e) == 0) {
        CHECK(out.n >= 2 && out.n <= KAFKA_HEADER_SET_MAX);
        check_gathered(&out, out.n - 2, h, n);
        for (i = 0; i < out.n; i++) {
            CHECK(strcmp(out.h[i].name, "hsqb-not-before") != 0);
            seen += strcmp(out.h[i].name, "hsqb-attempts") == 0;
            seen += strcmp(out.h[i].name, "hsqb-last-error") == 0;
        }
        CHECK(seen == 2); /* only the added ones */
        CHECK(strcmp(out.h[out.n - 1].value, "2") == 0);
    }
    kafka_header_set_release(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hdr h[MAX_HEADERS];
    char *names = malloc(size + 1); /* every name, NUL-terminated */
    rd_kafka_headers_t *hs = rd_kafka_headers_new(8);
    size_t n = 0, at = 0, pos = 0;

    if (!names || !hs)
        abort();
    while (pos < size && n < MAX_HEADERS) {
        const uint8_t *line = data + pos, *nl = memchr(line, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - line) : size - pos;
        const uint8_t *eq = memchr(line, '=', len);
        size_t nlen = eq ? (size_t)(eq - line) : len;

        pos += len + (nl != NULL);
        if (memchr(line, '\0', nlen))
            continue; /* librdkafka names are C strings */
        memcpy(names + at, line, nlen);
        names[at + nlen] = '\0';
        h[n] = (struct hdr){names + at, eq ? eq + 1 : NULL, eq ? len - nlen - 1 : 0, !eq};
        at += nlen + 1;
        CHECK(rd_kafka_header_add(hs, h[n].name, (ssize_t)nlen, h[n].value,
                                  eq ? (ssize_t)h[n].vlen : 0) == RD_KAFKA_RESP_ERR_NO_ERROR);
        n++;
    }
    check_not_before(hs, h, n);
    check_meta(hs, h, n);
    check_sets(hs, h, n);
    check_not_before(NULL, h, 0);
    rd_kafka_headers_destroy(hs);
    free(names);
    return 0;
}
