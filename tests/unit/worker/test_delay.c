/* test_delay.c - the retry topic's rules and the hold that keeps early records off the
 * worker threads.
 *
 * What an operator relies on: delays follow retry.schedule (the last item repeating) and
 * an event gives up after retry.max_attempts deliveries or retry.max_age; a retry record
 * carries hsqb-attempts, -not-before, -last-error (one line, <= 1024 bytes),
 * -first-failure and the true original coordinates, with the input's other headers kept
 * and none duplicated; a record is never run before its not-before time, and while it
 * waits it holds no worker thread and does not slow the main topic; a full retry
 * partition is paused (the main topic is not) and resumed as it drains; a revoke drops
 * held records without leaking them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "worker/delay.h"
#include "worker/scheduler.h"
#include "worker/settings.h"

static struct config *cfg_with(const char *const *extra)
{
    char *argv[16], e[512];
    struct config *cfg = NULL;
    int n = 0;

    argv[n++] = (char *)"test";
    argv[n++] = (char *)"--kafka.brokers=127.0.0.1:9";
    for (; extra && *extra; extra++)
        argv[n++] = (char *)*extra;
    argv[n] = NULL;
    if (settings_load_flags(&cfg, n, argv, NULL, SETTINGS_SKIP_REQUIRED, e, sizeof e) < 0)
        fail_msg("settings: %s", e);
    return cfg;
}

static void policy(struct delay_policy *pol, const char *const *extra)
{
    struct config *cfg = cfg_with(extra);
    char e[256];

    assert_int_equal(delay_policy_from_config(pol, cfg, e, sizeof e), 0);
    config_free(cfg);
}

static const char *hdr(const struct kafka_header_set *h, const char *name, int *count)
{
    const char *v = NULL;
    size_t i;

    *count = 0;
    for (i = 0; i < h->n; i++)
        if (strcmp(h->h[i].name, name) == 0) {
            v = h->h[i].value;
            (*count)++;
        }
    return v;
}

/* ---- the rules -------------------------------------------------------------------- */

static void test_schedule_and_limits(void **state)
{
    static const char *const flags[] = {"--retry.schedule=30s,2m,10m", "--retry.max_attempts=5",
                                        "--retry.max_age=1h", NULL};
    struct delay_policy pol;
    int64_t nb = 0, t0 = 1714558800000LL;
    (void)state;

    policy(&pol, flags);
    assert_string_equal(pol.retry_topic, "hsqb.actions.retry");
    assert_int_equal(delay_schedule_ms(&pol, 1), 30000);
    assert_int_equal(delay_schedule_ms(&pol, 2), 120000);
    assert_int_equal(delay_schedule_ms(&pol, 3), 600000);
    assert_int_equal(delay_schedule_ms(&pol, 4), 600000); /* the last repeats */
    assert_int_equal(delay_schedule_ms(&pol, 0), 30000);

    assert_int_equal(delay_route(&pol, 1, 0, t0, &nb), DELAY_RETRY);
    assert_int_equal(nb, t0 + 30000);
    assert_int_equal(delay_route(&pol, 4, t0 - 60000, t0, &nb), DELAY_RETRY);
    assert_int_equal(nb, t0 + 600000);
    /* the 5th delivery was the last one allowed */
    assert_int_equal(delay_route(&pol, 5, t0, t0, &nb), DELAY_EXHAUSTED);
    /* first failure an hour ago: too old, whatever the count */
    assert_int_equal(delay_route(&pol, 2, t0 - 3600000, t0, &nb), DELAY_EXHAUSTED);
}

static void test_defaults_match_the_design(void **state)
{
    struct delay_policy pol;
    (void)state;

    policy(&pol, NULL);
    assert_int_equal(pol.nschedule, 5); /* 30 s, 2 min, 10 min, 30 min, 1 h */
    assert_int_equal(pol.schedule_ms[0], 30000);
    assert_int_equal(pol.schedule_ms[4], 3600000);
    assert_int_equal(pol.hold_max_ms, 120000);
}

static void test_last_error_classes(void **state)
{
    struct api_error e;
    char buf[DELAY_LAST_ERROR_MAX + 1], huge[3000];
    (void)state;

    api_error_set(&e, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 503, "QBO 503 on POST /invoice");
    assert_string_equal(delay_last_error(&e, buf, sizeof buf),
                        "HTTP_503: QBO 503 on POST /invoice");
    api_error_set(&e, API_THROTTLED, HSQB_ERR_RETRIES_EXHAUSTED, 429, "slow down");
    assert_string_equal(delay_last_error(&e, buf, sizeof buf), "RATE_LIMITED: slow down");
    api_error_set(&e, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 423, "locked");
    assert_string_equal(delay_last_error(&e, buf, sizeof buf), "LOCKED: locked");
    api_error_set(&e, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 0, "QBO: Operation timed out");
    assert_string_equal(delay_last_error(&e, buf, sizeof buf), "TIMEOUT: QBO: Operation timed out");
    api_error_set(&e, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 0, "connection refused");
    assert_string_equal(delay_last_error(&e, buf, sizeof buf), "NETWORK: connection refused");
    /* one line, at most 1024 bytes */
    memset(huge, 'x', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    huge[10] = '\n';
    api_error_clear(&e);
    e.cls = API_TRANSIENT;
    e.http_status = 500;
    memcpy(e.message, huge, sizeof e.message - 1);
    e.message[sizeof e.message - 1] = '\0';
    delay_last_error(&e, buf, sizeof buf);
    assert_null(strchr(buf, '\n'));
    assert_true(strlen(buf) <= DELAY_LAST_ERROR_MAX);
}

static void test_retry_headers(void **state)
{
    rd_kafka_headers_t *in = rd_kafka_headers_new(8);
    struct kafka_header_set h;
    struct delay_retry_info info = {
        .deliveries = 2,
        .not_before_ms = 1714558900000LL,
        .first_failure_ms = 0,
        .now_ms = 1714558800000LL,
        .last_error = "HTTP_503: QBO 503\r\non POST /invoice",
    };
    struct inbound_msg m = {
        .topic = "hsqb.actions.retry",
        .partition = 2,
        .offset = 77,
        .timestamp_ms = 1714558000000LL,
        .key = "1:DEAL:2",
        .key_len = 8,
        .value = "{}",
        .value_len = 2,
        .headers = in,
    };
    char e[256];
    int n;
    (void)state;

    rd_kafka_header_add(in, "content-type", -1, "application/cloudevents+json", -1);
    rd_kafka_header_add(in, "traceparent", -1, "00-abc-def-01", -1);
    rd_kafka_header_add(in, "hsqb-attempts", -1, "1", -1);
    rd_kafka_header_add(in, "hsqb-not-before", -1, "1714558830000", -1);
    rd_kafka_header_add(in, "hsqb-first-failure", -1, "1714558700000", -1);
    rd_kafka_header_add(in, "hsqb-original-topic", -1, "hsqb.actions", -1);
    rd_kafka_header_add(in, "hsqb-original-partition", -1, "4", -1);
    rd_kafka_header_add(in, "hsqb-original-offset", -1, "1289", -1);
    rd_kafka_header_add(in, "hsqb-original-timestamp", -1, "1714558000001", -1);
    rd_kafka_header_add(in, "hsqb-replay-of", -1, "hsqb.actions.dlq:0:5", -1);

    assert_int_equal(delay_retry_headers_build(&m, &info, &h, e, sizeof e), 0);
    assert_string_equal(hdr(&h, "hsqb-attempts", &n), "2");
    assert_int_equal(n, 1);
    assert_string_equal(hdr(&h, "hsqb-not-before", &n), "1714558900000");
    assert_int_equal(n, 1);
    assert_string_equal(hdr(&h, "hsqb-last-error", &n), "HTTP_503: QBO 503  on POST /invoice");
    /* the first failure and the original coordinates travel from the earlier hop */
    assert_string_equal(hdr(&h, "hsqb-first-failure", &n), "1714558700000");
    assert_int_equal(n, 1);
    assert_string_equal(hdr(&h, "hsqb-original-topic", &n), "hsqb.actions");
    assert_string_equal(hdr(&h, "hsqb-original-partition", &n), "4");
    assert_string_equal(hdr(&h, "hsqb-original-offset", &n), "1289");
    assert_string_equal(hdr(&h, "hsqb-original-timestamp", &n), "1714558000001");
    assert_int_equal(n, 1);
    /* the input's other headers are kept */
    assert_string_equal(hdr(&h, "content-type", &n), "application/cloudevents+json");
    assert_string_equal(hdr(&h, "traceparent", &n), "00-abc-def-01");
    assert_string_equal(hdr(&h, "hsqb-replay-of", &n), "hsqb.actions.dlq:0:5");
    kafka_header_set_release(&h);
    rd_kafka_headers_destroy(in);

    /* a first hop: the original is where it was consumed, the first failure is now */
    m.topic = "hsqb.actions";
    m.headers = NULL;
    info.deliveries = 1;
    assert_int_equal(delay_retry_headers_build(&m, &info, &h, e, sizeof e), 0);
    assert_string_equal(hdr(&h, "hsqb-original-topic", &n), "hsqb.actions");
    assert_string_equal(hdr(&h, "hsqb-original-partition", &n), "2");
    assert_string_equal(hdr(&h, "hsqb-original-offset", &n), "77");
    assert_string_equal(hdr(&h, "hsqb-original-timestamp", &n), "1714558000000");
    assert_string_equal(hdr(&h, "hsqb-first-failure", &n), "1714558800000");
    assert_string_equal(hdr(&h, "hsqb-attempts", &n), "1");
    assert_int_equal(h.n, 8);
    kafka_header_set_release(&h);
    kafka_header_set_release(&h); /* idempotent */
}

static void test_hold_only_early_retry_records(void **state)
{
    static const char *const flags[] = {"--retry.hold_max=10s", NULL};
    rd_kafka_headers_t *h = rd_kafka_headers_new(2);
    struct delay_policy pol;
    int64_t now = 1714558800000LL, nb;
    (void)state;

    policy(&pol, flags);
    assert_int_equal(delay_hold_ms(&pol, "hsqb.actions.retry", NULL, now), 0);
    rd_kafka_header_add(h, "hsqb-not-before", -1, "1714558803000", -1);
    assert_int_equal(delay_hold_ms(&pol, "hsqb.actions.retry", h, now), 3000);
    assert_int_equal(delay_hold_ms(&pol, "hsqb.actions", h, now), 0);              /* main topic */
    assert_int_equal(delay_hold_ms(&pol, "hsqb.actions.retry", h, now + 3000), 0); /* due */
    assert_int_equal(delay_hold_ms(&pol, "hsqb.actions.retry", h, now - 60000), 10000); /* cap */
    assert_int_equal(delay_not_before(h, &nb), 0);
    assert_int_equal(nb, 1714558803000LL);
    /* the last occurrence counts; a malformed value makes the record due */
    rd_kafka_header_add(h, "hsqb-not-before", -1, "017", -1);
    assert_int_equal(delay_not_before(h, &nb), -1);
    assert_int_equal(delay_hold_ms(&pol, "hsqb.actions.retry", h, now), 0);
    /* 19 digits fit only up to INT64_MAX: past it the value is refused, never wrapped */
    rd_kafka_header_add(h, "hsqb-not-before", -1, "9223372036854775807", -1);
    assert_int_equal(delay_not_before(h, &nb), 0);
    assert_true(nb == INT64_MAX);
    rd_kafka_header_add(h, "hsqb-not-before", -1, "9223372036854775808", -1);
    assert_int_equal(delay_not_before(h, &nb), -1);
    rd_kafka_header_add(h, "hsqb-not-before", -1, "9999999999999999999", -1);
    assert_int_equal(delay_not_before(h, &nb), -1);
    assert_int_equal(delay_hold_ms(&pol, "hsqb.actions.retry", h, now), 0);
    rd_kafka_headers_destroy(h);
}

static void test_held_copy_is_self_contained(void **state)
{
    char *key = strdup("k1"), *val = strdup("payload"), *topic = strdup("hsqb.actions.retry");
    rd_kafka_headers_t *h = rd_kafka_headers_new(1);
    struct inbound_msg m = {.topic = topic,
                            .partition = 1,
                            .offset = 9,
                            .key = key,
                            .key_len = 2,
                            .value = val,
                            .value_len = 7,
                            .headers = h};
    struct delay_msg *d;
    struct kafka_header_set c;
    char e[128];
    int n;
    (void)state;

    rd_kafka_header_add(h, "hsqb-attempts", -1, "3", -1);
    d = delay_msg_new(&m);
    assert_non_null(d);
    free(key);
    free(val);
    free(topic);
    rd_kafka_headers_destroy(h);
    assert_string_equal(d->msg.topic, "hsqb.actions.retry");
    assert_memory_equal(d->msg.key, "k1", 2);
    assert_int_equal(d->msg.value_len, 7);
    assert_memory_equal(d->msg.value, "payload", 7);
    assert_int_equal(d->msg.offset, 9);
    assert_true(d->bytes > 7);
    assert_int_equal(delay_headers_copy(d->msg.headers, &c, e, sizeof e), 0);
    assert_string_equal(hdr(&c, "hsqb-attempts", &n), "3");
    kafka_header_set_release(&c);
    delay_msg_free(d);
    delay_msg_free(NULL);
}

/* ---- holding in the scheduler ------------------------------------------------------ */

static struct {
    pthread_mutex_t mu;
    int64_t ran_at[64];
    int64_t order[64];
    int n;
    atomic_int released;
} R = {.mu = PTHREAD_MUTEX_INITIALIZER};

static enum handler_disposition handler(void *opaque, void *ctx, const struct inbound_msg *m,
                                        int64_t *delay)
{
    (void)opaque, (void)ctx, (void)delay;
    pthread_mutex_lock(&R.mu);
    if (R.n < 64) {
        R.ran_at[m->offset % 64] = clock_mono_ms();
        R.order[R.n++] = m->offset;
    }
    pthread_mutex_unlock(&R.mu);
    return HANDLER_DONE;
}

static void release_held(void *owner)
{
    atomic_fetch_add(&R.released, 1);
    delay_msg_free(owner);
}

static struct scheduler *sched(unsigned threads, size_t max_held, size_t max_held_pp)
{
    struct scheduler_options o = {
        .threads = threads,
        .max_in_flight = 8,
        .max_in_flight_per_partition = 4,
        .handler = handler,
        .max_held = max_held,
        .max_held_per_partition = max_held_pp,
    };
    char e[256];
    struct scheduler *s = scheduler_new(&o, e, sizeof e);

    assert_non_null(s);
    pthread_mutex_lock(&R.mu);
    memset(R.ran_at, 0, sizeof R.ran_at);
    R.n = 0;
    atomic_store(&R.released, 0);
    pthread_mutex_unlock(&R.mu);
    return s;
}

static int ran(int64_t offset)
{
    int64_t v;

    pthread_mutex_lock(&R.mu);
    v = R.ran_at[offset % 64];
    pthread_mutex_unlock(&R.mu);
    return v != 0;
}

static void wait_ran(int64_t offset, int64_t timeout_ms)
{
    int64_t end = clock_mono_ms() + timeout_ms;

    while (!ran(offset) && clock_mono_ms() < end)
        usleep(5000);
    assert_true(ran(offset));
}

static enum sched_submit hold(struct scheduler *s, struct sched_partition *p, int64_t offset,
                              const char *key, int64_t ms, int *want)
{
    struct inbound_msg m = {.topic = "hsqb.actions.retry",
                            .offset = offset,
                            .key = key,
                            .key_len = key ? strlen(key) : 0,
                            .value = "v",
                            .value_len = 1};
    struct delay_msg *d = delay_msg_new(&m);
    char e[256];
    enum sched_submit r;

    assert_non_null(d);
    r = scheduler_submit_delayed(s, p, &d->msg, &(struct sched_held){d, release_held, ms, d->bytes},
                                 want, e, sizeof e);
    if (r != SCHED_ACCEPTED)
        delay_msg_free(d);
    return r;
}

static void submit_now(struct scheduler *s, struct sched_partition *p, int64_t offset,
                       const char *key, int *want)
{
    static const struct inbound_msg tmpl = {.topic = "hsqb.actions", .value = "v", .value_len = 1};
    struct inbound_msg m = tmpl;
    char e[256];

    m.offset = offset;
    m.key = key;
    m.key_len = key ? strlen(key) : 0;
    assert_int_equal(scheduler_submit(s, p, &m, NULL, want, e, sizeof e), SCHED_ACCEPTED);
}

static void test_held_record_waits_without_a_thread(void **state)
{
    struct scheduler *s = sched(1, 0, 0); /* ONE worker thread */
    struct sched_partition *rp = scheduler_partition_add(s, "hsqb.actions.retry", 0);
    struct sched_partition *mp = scheduler_partition_add(s, "hsqb.actions", 0);
    int64_t t0 = clock_mono_ms(), off;
    int want = 1;
    (void)state;

    assert_int_equal(hold(s, rp, 1, "a", 400, &want), SCHED_ACCEPTED);
    assert_false(want);
    assert_int_equal(scheduler_held(s), 1);
    /* the only thread is free: the main topic runs at once */
    submit_now(s, mp, 2, "b", &want);
    wait_ran(2, 300);
    assert_false(ran(1));
    assert_true(clock_mono_ms() - t0 < 350);
    /* the held record runs after its delay, not before */
    while (scheduler_held(s) > 0 && clock_mono_ms() - t0 < 2000)
        usleep(5000);
    assert_int_equal(scheduler_wait_idle(s, NULL, 2000), 0);
    pthread_mutex_lock(&R.mu);
    assert_int_equal(R.n, 2);
    pthread_mutex_unlock(&R.mu);
    assert_true(clock_mono_ms() - t0 >= 400);
    /* its offset completed, like any other */
    scheduler_partition_state(s, rp, NULL, &off);
    assert_int_equal(off, 2);
    /* released once; scheduler_wait_idle() may return before a worker thread's release
     * callback runs (scheduler.h), scheduler_free() waits for it */
    scheduler_free(s);
    assert_int_equal(atomic_load(&R.released), 1);
}

static void test_key_order_kept_behind_a_held_record(void **state)
{
    struct scheduler *s = sched(2, 0, 0);
    struct sched_partition *rp = scheduler_partition_add(s, "hsqb.actions.retry", 0);
    int want;
    (void)state;

    assert_int_equal(hold(s, rp, 10, "k", 200, &want), SCHED_ACCEPTED);
    assert_int_equal(hold(s, rp, 11, "k", 1, &want), SCHED_ACCEPTED); /* due first, waits */
    assert_int_equal(hold(s, rp, 12, "other", 1, &want), SCHED_ACCEPTED);
    assert_int_equal(scheduler_wait_idle(s, NULL, 3000), 0);
    pthread_mutex_lock(&R.mu);
    assert_int_equal(R.n, 3);
    assert_int_equal(R.order[0], 12);
    assert_int_equal(R.order[1], 10);
    assert_int_equal(R.order[2], 11);
    pthread_mutex_unlock(&R.mu);
    scheduler_free(s);
}

static void test_bounds_pause_only_retry_partitions(void **state)
{
    struct scheduler *s = sched(1, 6, 3);
    struct sched_partition *r0 = scheduler_partition_add(s, "hsqb.actions.retry", 0);
    struct sched_partition *r1 = scheduler_partition_add(s, "hsqb.actions.retry", 1);
    struct sched_partition *mp = scheduler_partition_add(s, "hsqb.actions", 0);
    int want, w0, w1, wm;
    int i;
    (void)state;

    /* per partition: the third held record pauses r0; r1 and the main topic flow */
    for (i = 0; i < 3; i++)
        assert_int_equal(hold(s, r0, i, NULL, 400, &want), SCHED_ACCEPTED);
    assert_true(want);
    scheduler_partition_state(s, r1, &w1, NULL);
    scheduler_partition_state(s, mp, &wm, NULL);
    assert_false(w1);
    assert_false(wm);
    /* in total: six held records pause every partition that holds, not the main one */
    for (i = 0; i < 3; i++)
        assert_int_equal(hold(s, r1, i, NULL, 400, &want), SCHED_ACCEPTED);
    scheduler_partition_state(s, r0, &w0, NULL);
    scheduler_partition_state(s, r1, &w1, NULL);
    scheduler_partition_state(s, mp, &wm, NULL);
    assert_true(w0);
    assert_true(w1);
    assert_false(wm);
    /* held records do not count against worker.max_in_flight (8) either */
    for (i = 0; i < 3; i++)
        submit_now(s, mp, i, NULL, &want);
    assert_false(want);
    /* they resume as the held records run */
    assert_int_equal(scheduler_wait_idle(s, NULL, 3000), 0);
    scheduler_partition_state(s, r0, &w0, NULL);
    scheduler_partition_state(s, r1, &w1, NULL);
    assert_false(w0);
    assert_false(w1);
    scheduler_free(s); /* waits for release callbacks still running (scheduler.h) */
    assert_int_equal(atomic_load(&R.released), 6);
}

static void test_revoke_drops_held_records(void **state)
{
    struct scheduler *s = sched(1, 0, 0);
    struct sched_partition *rp = scheduler_partition_add(s, "hsqb.actions.retry", 0);
    int want;
    int64_t off;
    (void)state;

    assert_int_equal(hold(s, rp, 5, "a", 60000, &want), SCHED_ACCEPTED);
    assert_int_equal(hold(s, rp, 6, "a", 60000, &want), SCHED_ACCEPTED);
    scheduler_partition_revoke(s, rp);
    assert_int_equal(atomic_load(&R.released), 2);
    assert_int_equal(scheduler_held(s), 0);
    assert_int_equal(scheduler_in_flight(s), 0);
    scheduler_partition_state(s, rp, NULL, &off);
    assert_int_equal(off, -1); /* never completed: redelivered to the next owner */
    assert_int_equal(hold(s, rp, 7, "a", 10, &want), SCHED_REFUSED);
    pthread_mutex_lock(&R.mu);
    assert_int_equal(R.n, 0);
    pthread_mutex_unlock(&R.mu);
    /* and scheduler_free() releases what is still held elsewhere */
    rp = scheduler_partition_add(s, "hsqb.actions.retry", 1);
    assert_int_equal(hold(s, rp, 1, NULL, 60000, &want), SCHED_ACCEPTED);
    scheduler_free(s);
    assert_int_equal(atomic_load(&R.released), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule_and_limits),
        cmocka_unit_test(test_defaults_match_the_design),
        cmocka_unit_test(test_last_error_classes),
        cmocka_unit_test(test_retry_headers),
        cmocka_unit_test(test_hold_only_early_retry_records),
        cmocka_unit_test(test_held_copy_is_self_contained),
        cmocka_unit_test(test_held_record_waits_without_a_thread),
        cmocka_unit_test(test_key_order_kept_behind_a_held_record),
        cmocka_unit_test(test_bounds_pause_only_retry_partitions),
        cmocka_unit_test(test_revoke_drops_held_records),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
