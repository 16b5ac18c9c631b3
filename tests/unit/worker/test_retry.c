/* test_retry.c - failures at scale, end to end inside one process: the consumer (both
 * topics), the scheduler, the pipeline and `replay`, against a private redis-server,
 * hsqb-sandbox and librdkafka's mock cluster (hosted by the producer through
 * test.mock.num.brokers; the consumer and `replay` connect to it like any client).
 *
 * What an operator relies on:
 *  - a QBO 503 storm that outlives the in-process budget sends the event to the retry
 *    topic with hsqb-attempts / -not-before / -last-error / -first-failure / -original-*,
 *    the event is not run again before its not-before time, the main topic keeps
 *    flowing meanwhile, and it succeeds once the storm ends (one invoice);
 *  - after retry.max_attempts deliveries it fails RETRIES_EXHAUSTED into the DLQ with the
 *    design §3.3 headers; once the cause is fixed `replay` re-publishes it and it
 *    succeeds; replaying again (even with --force) creates nothing twice;
 *  - one realm whose QBO company is broken opens its circuit after breaker.failures
 *    failures and its events go to the retry topic without API calls, while another
 *    realm's events keep flowing.
 * Timing: retry.schedule is "1s,2s"; the mock's first group join takes ~3 s per test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "common/clock.h"
#include "common/log.h"
#include "worker/cmd_replay.h"
#include "worker/consumer.h"
#include "worker/exitcode.h"
#include "worker/hubspot.h"
#include "worker/metrics.h"
#include "worker/oauth.h"
#include "worker/pipeline.h"
#include "worker/producer.h"
#include "worker/qbo.h"
#include "worker/ratelimit.h"

#include "tests/unit/worker/sandbox_harness.h"
#include "tests/unit/worker/testutil_pipeline.h"

#define TOKEN1  "pat-na1-11111111-1111-4111-8111-111111111111"
#define PORTAL  "102670506"
#define ACTIONS "hsqb.actions"
#define RETRY   "hsqb.actions.retry"
#define DLQ     "hsqb.actions.dlq"
#define RESULTS "hsqb.results"
#define MAXMSG  256

struct kmsg {
    char *value;
    size_t len;
    int64_t offset, timestamp;
    rd_kafka_headers_t *hdrs;
};

/* Everything of one topic (partition 0) read so far, by a consumer kept open. */
struct reader {
    rd_kafka_t *c;
    struct kmsg m[MAXMSG];
    size_t n;
};

struct env {
    struct config *pcfg, *cfg;
    struct metrics *metrics;
    struct oauth *oauth;
    struct ratelimit *rl;
    struct qbo_api *q;
    struct hubspot_api *hs;
    struct producer *pr;
    struct pipeline *p;
    struct consumer *cons;
    pthread_t th;
    int running;
    struct http_client *http;
    char bootstrap[256], brokers_flag[300], redis_flag[64];
    struct reader results, retry, dlq;
};

static struct env E;
static int group_seq;

/* ---- Kafka helpers ------------------------------------------------------------------ */

static void reader_open(struct reader *r, const char *topic)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(1);
    char e[256];

    memset(r, 0, sizeof *r);
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", E.bootstrap, e, sizeof e), 0);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", "test-reader", e, sizeof e), 0);
    assert_int_equal(rd_kafka_conf_set(conf, "enable.auto.commit", "false", e, sizeof e), 0);
    assert_int_equal(rd_kafka_conf_set(conf, "fetch.wait.max.ms", "10", e, sizeof e), 0);
    r->c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
    assert_non_null(r->c);
    rd_kafka_topic_partition_list_add(tp, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(r->c, tp), 0);
    rd_kafka_topic_partition_list_destroy(tp);
}

static void reader_poll(struct reader *r, int timeout_ms)
{
    rd_kafka_message_t *m = rd_kafka_consumer_poll(r->c, timeout_ms);
    rd_kafka_headers_t *h = NULL;

    if (!m)
        return;
    if (!m->err && r->n < MAXMSG) {
        r->m[r->n].value = strndup(m->payload ? m->payload : "", m->len);
        r->m[r->n].len = m->len;
        r->m[r->n].offset = m->offset;
        r->m[r->n].timestamp = rd_kafka_message_timestamp(m, NULL);
        if (rd_kafka_message_headers(m, &h) == 0)
            r->m[r->n].hdrs = rd_kafka_headers_copy(h);
        r->n++;
    }
    rd_kafka_message_destroy(m);
}

/* Reads until at least n messages arrived; fails after timeout_ms. */
static void reader_wait(struct reader *r, size_t n, int timeout_ms, const char *what)
{
    int64_t end = clock_mono_ms() + timeout_ms;

    while (r->n < n && clock_mono_ms() < end)
        reader_poll(r, 50);
    if (r->n < n)
        fail_msg("%s: %zu message(s) after %d ms, wanted %zu", what, r->n, timeout_ms, n);
}

/* Reads for ms more (to see that nothing else arrives). */
static void reader_drain(struct reader *r, int ms)
{
    int64_t end = clock_mono_ms() + ms;

    while (clock_mono_ms() < end)
        reader_poll(r, 50);
}

static void reader_close(struct reader *r)
{
    size_t i;

    for (i = 0; i < r->n; i++) {
        free(r->m[i].value);
        if (r->m[i].hdrs)
            rd_kafka_headers_destroy(r->m[i].hdrs);
    }
    if (r->c)
        rd_kafka_destroy_flags(r->c, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    memset(r, 0, sizeof *r);
}

static const char *hdr(const struct kmsg *m, const char *name, char *buf, size_t bufsz)
{
    return tp_header(m->hdrs, name, buf, bufsz);
}

static int64_t hdr_int(const struct kmsg *m, const char *name)
{
    char b[64];

    if (!hdr(m, name, b, sizeof b))
        fail_msg("header %s missing", name);
    return strtoll(b, NULL, 10);
}

/* The index of the n-th (0-based) message whose value mentions "id":"<id>", or -1. */
static long find(const struct reader *r, const char *id, int nth)
{
    char pat[256];
    size_t i;

    snprintf(pat, sizeof pat, "\"%s", id);
    for (i = 0; i < r->n; i++)
        if (strstr(r->m[i].value, pat) && nth-- == 0)
            return (long)i;
    return -1;
}

static size_t count(const struct reader *r, const char *needle)
{
    size_t i, n = 0;

    for (i = 0; i < r->n; i++)
        n += strstr(r->m[i].value, needle) != NULL;
    return n;
}

/* Waits for the result of event id; returns its index in E.results. */
static long wait_result(const char *id, int nth, int timeout_ms)
{
    int64_t end = clock_mono_ms() + timeout_ms;
    long i;

    while ((i = find(&E.results, id, nth)) < 0 && clock_mono_ms() < end)
        reader_poll(&E.results, 50);
    if (i < 0)
        fail_msg("no result #%d for %s within %d ms", nth + 1, id, timeout_ms);
    return i;
}

static char *event_json(const char *id, int64_t deal, const char *realm)
{
    char *s = NULL;
    int n =
        asprintf(&s,
                 "{\"specversion\":\"1.0\",\"id\":\"%s\",\"type\":\"hsqb.action.create_invoice\","
                 "\"source\":\"hubspot://portal/" PORTAL "/workflow/1\","
                 "\"time\":\"2026-03-01T10:00:00Z\",\"data\":{\"callbackId\":\"%s\","
                 "\"origin\":{\"portalId\":" PORTAL "},\"object\":{\"objectId\":%lld,"
                 "\"objectType\":\"DEAL\"},\"inputFields\":{\"qbo_realm_id\":\"%s\","
                 "\"create_missing_products\":\"true\"}}}",
                 id, id, (long long)deal, realm);
    assert_true(n > 0);
    return s;
}

/* Produces an event under key (NULL: the deal's own key, "<portal>:DEAL:<deal>"). */
static void produce_keyed(const char *id, int64_t deal, const char *realm, const char *k)
{
    char *v = event_json(id, deal, realm), key[64], e[256];
    struct kafka_header ct = {"content-type", "application/cloudevents+json"};

    if (k)
        snprintf(key, sizeof key, "%s", k);
    else
        snprintf(key, sizeof key, PORTAL ":DEAL:%lld", (long long)deal);
    struct producer_msg pm = {ACTIONS, key, strlen(key), v, strlen(v), &ct, 1};

    if (producer_send_sync(E.pr, &pm, 10000, e, sizeof e) < 0)
        fail_msg("produce: %s", e);
    free(v);
}

static void produce(const char *id, int64_t deal, const char *realm)
{
    produce_keyed(id, deal, realm, NULL);
}

/* ---- the worker --------------------------------------------------------------------- */

static void *run_consumer(void *opaque)
{
    char e[512];

    (void)opaque;
    if (consumer_run(E.cons, e, sizeof e) < 0)
        fprintf(stderr, "consumer_run: %s\n", e);
    return NULL;
}

static void start(const char *const *flags)
{
    const char *pflags[] = {"HSQB_HUBSPOT_TOKEN=" TOKEN1, "--kafka.brokers=127.0.0.1:9",
                            "--kafka.test.mock.num.brokers=1", NULL};
    const char *cflags[24];
    char group[64], e[512];
    rd_kafka_mock_cluster_t *mc;
    int n = 0;

    h_reset();
    assert_int_equal(oauth_store_refresh_token(H.redis, H_REALM_US1, H_RT_US1, 0, e, sizeof e), 0);
    assert_int_equal(oauth_store_refresh_token(H.redis, H_REALM_US2, H_RT_US2, 0, e, sizeof e), 0);
    h_bind(102670506, (const char *const[]){H_REALM_US1, H_REALM_US2, NULL}); /* PORTAL */
    E.pcfg = h_config(pflags);
    if (!(E.pr = producer_new(E.pcfg, e, sizeof e)))
        fail_msg("producer: %s", e);
    mc = rd_kafka_handle_mock_cluster(producer_handle(E.pr));
    assert_non_null(mc);
    assert_int_equal(rd_kafka_mock_topic_create(mc, ACTIONS, 1, 1), 0);
    assert_int_equal(rd_kafka_mock_topic_create(mc, RETRY, 1, 1), 0);
    assert_int_equal(rd_kafka_mock_topic_create(mc, DLQ, 1, 1), 0);
    assert_int_equal(rd_kafka_mock_topic_create(mc, RESULTS, 1, 1), 0);
    /* as `hsqb-worker run` does: its output topics known before the first send */
    if (producer_warm(E.pr, (const char *const[]){RESULTS, RETRY, DLQ}, 3, 5000, e, sizeof e) < 0)
        fail_msg("producer_warm: %s", e);
    snprintf(E.bootstrap, sizeof E.bootstrap, "%s", rd_kafka_mock_cluster_bootstraps(mc));
    snprintf(E.brokers_flag, sizeof E.brokers_flag, "--kafka.brokers=%s", E.bootstrap);
    snprintf(E.redis_flag, sizeof E.redis_flag, "--redis.port=%d", H.redis_port);
    snprintf(group, sizeof group, "--kafka.group.id=hsqb-retry-%d", ++group_seq);

    cflags[n++] = "HSQB_HUBSPOT_TOKEN=" TOKEN1;
    cflags[n++] = "--hubspot.token_portals=" PORTAL;
    cflags[n++] = E.brokers_flag;
    cflags[n++] = group;
    cflags[n++] = "--worker.threads=4";
    cflags[n++] = "--claim.lease=5s";
    cflags[n++] = "--retry.schedule=1s,2s";
    cflags[n++] = "--retry.attempts=2";
    cflags[n++] = "--retry.base=20ms";
    cflags[n++] = "--retry.cap=100ms";
    cflags[n++] = "--retry.budget=1s";
    cflags[n++] = "--kafka.session.timeout.ms=6000";
    cflags[n++] = "--kafka.fetch.wait.max.ms=20";
    for (; flags && *flags; flags++)
        cflags[n++] = *flags;
    cflags[n] = NULL;
    E.cfg = h_config(cflags);

    assert_non_null(E.metrics = metrics_new("test", 0, e, sizeof e));
    assert_non_null(E.oauth = oauth_new(E.cfg, e, sizeof e));
    assert_non_null(E.rl = ratelimit_new(E.cfg, e, sizeof e));
    assert_non_null(E.q = qbo_api_new(E.cfg, E.oauth, E.rl, NULL, e, sizeof e));
    assert_non_null(E.hs = hubspot_api_new(E.cfg, E.rl, NULL, e, sizeof e));
    struct pipeline_deps deps = {
        .hubspot = E.hs, .qbo = E.q, .producer = E.pr, .metrics = E.metrics};
    if (!(E.p = pipeline_new(E.cfg, &deps, e, sizeof e)))
        fail_msg("pipeline: %s", e);
    const char *topics[] = {ACTIONS, RETRY, NULL};
    struct consumer_hooks ch = {.opaque = E.metrics, .held = metrics_on_held};
    struct consumer_params cp = {.cfg = E.cfg,
                                 .topics = topics,
                                 .handler = pipeline_sched_handler,
                                 .opaque = E.p,
                                 .thread_new = pipeline_sched_thread_new,
                                 .thread_free = pipeline_sched_thread_free,
                                 .producer = E.pr,
                                 .hooks = &ch};
    if (!(E.cons = consumer_new(&cp, e, sizeof e)))
        fail_msg("consumer: %s", e);
    assert_int_equal(pthread_create(&E.th, NULL, run_consumer, NULL), 0);
    E.running = 1;
    E.http = h_http_new();
    reader_open(&E.results, RESULTS);
    reader_open(&E.retry, RETRY);
    reader_open(&E.dlq, DLQ);
}

static int teardown(void **state)
{
    (void)state;
    if (E.running) {
        consumer_stop(E.cons);
        pthread_join(E.th, NULL);
    }
    consumer_free(E.cons);
    reader_close(&E.results);
    reader_close(&E.retry);
    reader_close(&E.dlq);
    pipeline_free(E.p);
    producer_free(E.pr);
    hubspot_api_free(E.hs);
    qbo_api_free(E.q);
    ratelimit_free(E.rl);
    oauth_free(E.oauth);
    metrics_free(E.metrics);
    config_free(E.cfg);
    config_free(E.pcfg);
    http_client_free(E.http);
    memset(&E, 0, sizeof E);
    return 0;
}

static void add_fault(const char *json)
{
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults", json, NULL), 201);
}

/* QBO invoices of a realm carrying our note for event id. */
static int invoices_for(const char *realm, const char *id)
{
    struct json_object *r, *o, *note;
    struct api_error err;
    size_t i;
    int n = 0;

    assert_int_equal(
        qbo_query(H_IO(E.http, H.redis), E.q, realm, "SELECT * FROM Invoice", &r, &err), 0);
    for (i = 0; i < json_object_array_length(r); i++) {
        o = json_object_array_get_idx(r, i);
        if (json_object_object_get_ex(o, "PrivateNote", &note) &&
            strstr(json_object_get_string(note), id))
            n++;
    }
    json_object_put(r);
    return n;
}

/* time_ms of every logged QBO invoice POST of the realm, oldest first (max 32). */
static int invoice_posts(const char *realm, int64_t *at, int max)
{
    struct json_object *reqs, *tm;
    char f[200];
    int n, i, k = 0;

    snprintf(f, sizeof f, "vendor=qbo&method=POST&path=/v3/company/%s/invoice", realm);
    n = h_count(f, &reqs);
    for (i = 0; i < n && k < max; i++)
        if (json_object_object_get_ex(json_object_array_get_idx(reqs, i), "time_ms", &tm))
            at[k++] = json_object_get_int64(tm);
    json_object_put(reqs);
    return k;
}

static int run_replay(const char *const *extra, char *out, size_t outsz)
{
    char *argv[16], *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len), *err = fopen("/dev/null", "w");
    int argc = 0, rc;

    argv[argc++] = (char *)"replay";
    argv[argc++] = E.brokers_flag;
    argv[argc++] = E.redis_flag;
    argv[argc++] = (char *)"--wait=10s";
    for (; extra && *extra; extra++)
        argv[argc++] = (char *)*extra;
    argv[argc] = NULL;
    rc = cmd_replay_run(argc, argv, NULL, o, err);
    fclose(o);
    fclose(err);
    snprintf(out, outsz, "%s", buf ? buf : "");
    free(buf);
    return rc;
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_storm_goes_to_retry_then_succeeds(void **state)
{
    const char *flags[] = {"--breaker.failures=0", NULL};
    int64_t posts[32], nb1, nb2;
    char b[512], *orig;
    long i, j;
    int n;
    (void)state;

    start(flags);
    /* four 503s: the first delivery (2 tries) and the second (2 tries) fail */
    add_fault("{\"method\":\"POST\",\"path\":\"/v3/company/" H_REALM_US1 "/invoice\","
              "\"status\":503,\"times\":4}");
    produce("evt-storm", 1005, H_REALM_US1);
    produce("evt-calm", 1002, H_REALM_US2);

    /* the other realm is not held up by the storm */
    i = wait_result("evt-calm", 0, 20000);
    assert_non_null(strstr(E.results.m[i].value, "hsqb.result.succeeded"));
    reader_wait(&E.retry, 1, 10000, "first retry record");
    assert_int_equal(find(&E.results, "evt-storm", 0), -1);

    /* the retry record: original bytes and the header contract */
    orig = event_json("evt-storm", 1005, H_REALM_US1);
    assert_string_equal(E.retry.m[0].value, orig);
    assert_string_equal(hdr(&E.retry.m[0], "hsqb-attempts", b, sizeof b), "1");
    assert_non_null(hdr(&E.retry.m[0], "hsqb-last-error", b, sizeof b));
    assert_memory_equal(b, "HTTP_503: ", 10);
    assert_string_equal(hdr(&E.retry.m[0], "hsqb-original-topic", b, sizeof b), ACTIONS);
    assert_string_equal(hdr(&E.retry.m[0], "hsqb-original-offset", b, sizeof b), "0");
    assert_string_equal(hdr(&E.retry.m[0], "content-type", b, sizeof b),
                        "application/cloudevents+json");
    nb1 = hdr_int(&E.retry.m[0], "hsqb-not-before");
    assert_in_range(nb1 - E.retry.m[0].timestamp, 900, 1100); /* schedule[0] = 1 s */

    i = wait_result("evt-storm", 0, 20000);
    assert_non_null(strstr(E.results.m[i].value, "hsqb.result.succeeded"));
    /* the result names the original input, not the retry hop */
    assert_non_null(
        strstr(E.results.m[i].value, "\"topic\":\"" ACTIONS "\",\"partition\":0,\"offset\":0"));
    reader_wait(&E.retry, 2, 1000, "second retry record");
    assert_string_equal(hdr(&E.retry.m[1], "hsqb-attempts", b, sizeof b), "2");
    assert_int_equal(hdr_int(&E.retry.m[1], "hsqb-first-failure"),
                     hdr_int(&E.retry.m[0], "hsqb-first-failure"));
    assert_string_equal(hdr(&E.retry.m[1], "hsqb-original-offset", b, sizeof b), "0");
    nb2 = hdr_int(&E.retry.m[1], "hsqb-not-before");
    assert_in_range(nb2 - E.retry.m[1].timestamp, 1900, 2100); /* schedule[1] = 2 s */

    /* never run before its not-before time: 2 tries, 2 tries after nb1, 1 after nb2 */
    n = invoice_posts(H_REALM_US1, posts, 32);
    assert_int_equal(n, 5);
    for (j = 2; j < 4; j++)
        assert_true(posts[j] >= nb1);
    assert_true(posts[4] >= nb2);
    assert_int_equal(invoices_for(H_REALM_US1, "evt-storm"), 1);
    /* exactly one result for it, and nothing else was sent to the retry topic */
    reader_drain(&E.results, 300);
    assert_int_equal(find(&E.results, "evt-storm", 1), -1);
    assert_int_equal(E.retry.n, 2);
    free(orig);
}

static void test_exhausted_to_dlq_then_replay_once(void **state)
{
    const char *flags[] = {"--breaker.failures=0", "--retry.max_attempts=2", NULL};
    const char *replay_id[] = {"--event-id=evt-exh", NULL};
    const char *dry[] = {"--event-id=evt-exh", "--dry-run", NULL};
    const char *force[] = {"--code=RETRIES_EXHAUSTED", "--force", NULL};
    char b[256], out[8192];
    int64_t posts[32];
    long i;
    int nposts;
    (void)state;

    start(flags);
    add_fault("{\"method\":\"POST\",\"path\":\"/v3/company/*/invoice\",\"status\":503}");
    produce("evt-exh", 1005, H_REALM_US1);
    i = wait_result("evt-exh", 0, 20000);
    assert_non_null(strstr(E.results.m[i].value, "\"code\":\"RETRIES_EXHAUSTED\""));
    assert_non_null(strstr(E.results.m[i].value, "\"retryable\":true"));
    reader_wait(&E.dlq, 1, 5000, "dead letter");
    reader_wait(&E.retry, 1, 1000, "retry record");
    reader_drain(&E.retry, 200);
    assert_int_equal(E.retry.n, 1); /* delivery 1 retried, delivery 2 was the last */
    /* the dead letter names the true original and carries every design §3.3 header */
    assert_string_equal(hdr(&E.dlq.m[0], "hsqb-error-code", b, sizeof b), "RETRIES_EXHAUSTED");
    assert_string_equal(hdr(&E.dlq.m[0], "hsqb-original-topic", b, sizeof b), ACTIONS);
    assert_string_equal(hdr(&E.dlq.m[0], "hsqb-original-offset", b, sizeof b), "0");
    assert_string_equal(hdr(&E.dlq.m[0], "hsqb-event-id", b, sizeof b), "evt-exh");
    assert_non_null(hdr(&E.dlq.m[0], "hsqb-error-message", b, sizeof b));
    assert_non_null(hdr(&E.dlq.m[0], "hsqb-last-failure", b, sizeof b));
    assert_non_null(hdr(&E.dlq.m[0], "hsqb-original-timestamp", b, sizeof b));
    assert_non_null(hdr(&E.dlq.m[0], "hsqb-consumer-group", b, sizeof b));
    assert_int_equal(hdr_int(&E.dlq.m[0], "hsqb-first-failure"),
                     hdr_int(&E.retry.m[0], "hsqb-first-failure"));
    assert_null(hdr(&E.dlq.m[0], "hsqb-not-before", b, sizeof b));
    assert_int_equal(invoices_for(H_REALM_US1, "evt-exh"), 0);

    /* a dry run only lists it */
    assert_int_equal(run_replay(dry, out, sizeof out), EXIT_OK);
    assert_non_null(strstr(out, "would replay to " ACTIONS));
    assert_non_null(strstr(out, "1 chosen, 0 replayed"));

    /* the storm is over: replaying the dead letter succeeds */
    assert_int_equal(h_admin(HTTP_DELETE, "/_sandbox/faults", NULL, NULL), 204);
    assert_int_equal(run_replay(replay_id, out, sizeof out), EXIT_OK);
    assert_non_null(strstr(out, "replayed to " ACTIONS));
    i = wait_result("evt-exh", 1, 20000);
    assert_non_null(strstr(E.results.m[i].value, "hsqb.result.succeeded"));
    assert_int_equal(invoices_for(H_REALM_US1, "evt-exh"), 1);
    nposts = invoice_posts(H_REALM_US1, posts, 32);

    /* twice: skipped, Redis says it succeeded */
    assert_int_equal(run_replay(replay_id, out, sizeof out), EXIT_OK);
    assert_non_null(strstr(out, "skipped: already succeeded"));
    assert_non_null(strstr(out, "0 replayed"));
    /* forced: re-published, and the worker only re-publishes the stored success */
    assert_int_equal(run_replay(force, out, sizeof out), EXIT_OK);
    assert_non_null(strstr(out, "1 replayed"));
    i = wait_result("evt-exh", 2, 20000);
    assert_non_null(strstr(E.results.m[i].value, "hsqb.result.succeeded"));
    reader_drain(&E.results, 300);
    assert_int_equal(invoice_posts(H_REALM_US1, posts, 32), nposts);
    assert_int_equal(invoices_for(H_REALM_US1, "evt-exh"), 1);
    assert_int_equal(E.dlq.n, 1);
}

/* Dead letters keep hostile input byte for byte: what `replay` prints of them reaches the
 * operator's terminal as printable ASCII only (escape sequences shown as \xNN). */
static void test_replay_prints_hostile_dead_letters_printable(void **state)
{
    const char *dry[] = {"--dry-run", NULL};
    const struct kafka_header h[] = {
        {"hsqb-event-id", "evt-\x1b[2J\x1b]0;pwned\x07-1"},
        {"hsqb-error-code", "CODE\x9b"
                            "31m"},
        {"hsqb-original-topic", ACTIONS "\x1b[1m"},
        {"hsqb-attempts", "1\r"},
    };
    const char *key = "1\x1b[0m:DEAL:1";
    const char *val = "{\"id\":\"x\\u001b[31m\",\"type\":\"hsqb.action.\\u001b[5mblink\","
                      "\"data\":{\"inputFields\":{\"qbo_realm_id\":\"9\\u009b1m\"}}}";
    struct producer_msg pm = {DLQ, key, strlen(key), val, strlen(val), h, 4};
    char out[16384], e[256];
    size_t i;
    (void)state;

    start(NULL);
    if (producer_send_sync(E.pr, &pm, 10000, e, sizeof e) < 0)
        fail_msg("produce: %s", e);
    assert_int_equal(run_replay(dry, out, sizeof out), EXIT_OK);
    for (i = 0; out[i]; i++)
        if (out[i] != '\n' && (out[i] < 0x20 || out[i] > 0x7e))
            fail_msg("byte 0x%02x at %zu of the replay output:\n%s", (unsigned char)out[i], i,
                     out);
    assert_non_null(strstr(out, "evt-\\x1b[2J\\x1b]0;pwned\\x07-1"));
    assert_non_null(strstr(out, "CODE\\x9b31m"));
}

/* hsqb-replay-count comes from the dead letter: a count past what the worker reads
 * (999999) is no count, never an int overflow (2147483647 + 1 was undefined behaviour,
 * and the header then said -2147483648). */
static void test_replay_count_from_hostile_header(void **state)
{
    static const char *const sent[] = {"2147483647", "99999999999999999999", "41"};
    static const char *const want[] = {"1", "1", "42"};
    char out[16384], e[256], b[64], id[32], only[48];
    const char *args[] = {only, "--to=" RETRY, "--force", NULL};
    size_t i;
    (void)state;

    start(NULL);
    for (i = 0; i < 3; i++) {
        const struct kafka_header h[] = {{"hsqb-event-id", id}, {"hsqb-replay-count", sent[i]}};
        struct producer_msg pm = {DLQ, "1:DEAL:1", 8, "{}", 2, h, 2};

        snprintf(id, sizeof id, "evt-count-%zu", i);
        snprintf(only, sizeof only, "--event-id=%s", id);
        if (producer_send_sync(E.pr, &pm, 10000, e, sizeof e) < 0)
            fail_msg("produce: %s", e);
        assert_int_equal(run_replay(args, out, sizeof out), EXIT_OK);
        reader_wait(&E.retry, i + 1, 10000, "replayed record");
        assert_string_equal(hdr(&E.retry.m[i], "hsqb-replay-count", b, sizeof b), want[i]);
    }
}

static void test_breaker_isolates_a_broken_realm(void **state)
{
    const char *flags[] = {"--breaker.failures=3",      "--breaker.cooldown=30s",
                           "--breaker.max_cooldown=1m", "--retry.attempts=1",
                           "--retry.max_attempts=10",   NULL};
    char id[32], b[512], *metrics_text = NULL, e[256], want[128];
    int k, breaker_records = 0, calls;
    size_t i;
    int64_t t0;
    (void)state;

    start(flags);
    /* US1's QuickBooks company is broken: every request answers 500 */
    add_fault("{\"path\":\"/v3/company/" H_REALM_US1 "/*\",\"status\":500}");
    t0 = clock_mono_ms();
    for (k = 0; k < 8; k++) {
        snprintf(id, sizeof id, "evt-bad-%d", k);
        produce(id, 1005, H_REALM_US1);
        snprintf(id, sizeof id, "evt-good-%d", k);
        produce(id, 1002, H_REALM_US2);
    }
    /* the healthy realm flows: all 8 succeed */
    for (k = 0; k < 8; k++) {
        long r;

        snprintf(id, sizeof id, "evt-good-%d", k);
        r = wait_result(id, 0, 30000);
        assert_non_null(strstr(E.results.m[r].value, "hsqb.result.succeeded"));
    }
    assert_true(clock_mono_ms() - t0 < 30000);
    /* every broken-realm event went to the retry topic, the last five without a call */
    reader_wait(&E.retry, 8, 10000, "retry records of the broken realm");
    for (i = 0; i < 8; i++) {
        assert_non_null(hdr(&E.retry.m[i], "hsqb-last-error", b, sizeof b));
        if (strncmp(b, "CIRCUIT_OPEN: realm:" H_REALM_US1, 20 + strlen(H_REALM_US1)) == 0) {
            breaker_records++;
            /* not before the circuit may let a probe through */
            assert_true(hdr_int(&E.retry.m[i], "hsqb-not-before") - E.retry.m[i].timestamp >=
                        25000);
        }
    }
    assert_int_equal(breaker_records, 5);
    calls = h_count("vendor=qbo&tenant=" H_REALM_US1, NULL);
    assert_in_range(calls, 3, 3);
    assert_int_equal(find(&E.results, "evt-bad-", 0), -1); /* no outcome yet: retried */
    /* the state is visible in the metrics */
    assert_int_equal(metrics_render(E.metrics, &metrics_text, NULL, e, sizeof e), 0);
    snprintf(want, sizeof want, "hsqb_breaker_state{tenant=\"realm:%s\"} 2", H_REALM_US1);
    assert_non_null(strstr(metrics_text, want));
    assert_non_null(
        strstr(metrics_text, "hsqb_retry_publishes_total{attempt=\"1\",reason=\"breaker\"} 5"));
    assert_non_null(
        strstr(metrics_text, "hsqb_retry_publishes_total{attempt=\"1\",reason=\"transient\"} 3"));
    free(metrics_text);
    assert_int_equal(count(&E.results, "evt-good-"), 8);
}

/* A HubSpot failure is charged to the portal's circuit, never to the realm's: the
 * breaker reads the failing API from the error (api_error.source), not from its text. */
static void test_breaker_charges_hubspot_failures_to_the_portal(void **state)
{
    const char *flags[] = {"--breaker.failures=3",      "--breaker.cooldown=30s",
                           "--breaker.max_cooldown=1m", "--retry.attempts=1",
                           "--retry.max_attempts=10",   NULL};
    char id[32], b[512], *metrics_text = NULL, e[256], want[128];
    int k, portal_records = 0;
    size_t i;
    (void)state;

    start(flags);
    /* the portal's HubSpot answers 500 to everything; QuickBooks is healthy */
    add_fault("{\"path\":\"/crm/*\",\"vendor\":\"hubspot\",\"status\":500}");
    for (k = 0; k < 6; k++) {
        snprintf(id, sizeof id, "evt-hs-%d", k);
        produce(id, 1002, H_REALM_US1);
    }
    reader_wait(&E.retry, 6, 20000, "retry records of the broken portal");
    for (i = 0; i < 6; i++) {
        assert_non_null(hdr(&E.retry.m[i], "hsqb-last-error", b, sizeof b));
        if (strncmp(b, "CIRCUIT_OPEN: portal:" PORTAL, 21 + strlen(PORTAL)) == 0)
            portal_records++;
        assert_null(strstr(b, "CIRCUIT_OPEN: realm:"));
    }
    assert_int_equal(portal_records, 3);
    assert_int_equal(h_count("vendor=qbo&method=POST", NULL), 0); /* nothing written */
    assert_int_equal(metrics_render(E.metrics, &metrics_text, NULL, e, sizeof e), 0);
    assert_non_null(strstr(metrics_text, "hsqb_breaker_state{tenant=\"portal:" PORTAL "\"} 2"));
    snprintf(want, sizeof want, "hsqb_breaker_state{tenant=\"realm:%s\"} 2", H_REALM_US1);
    assert_null(strstr(metrics_text, want));
    free(metrics_text);
}

/* A creation lock held by another worker is not the tenant's failure. Four events of one
 * contact wait for the lock a fifth holds while its customer create hangs in QuickBooks
 * (13 s, longer than resolve's 10-s lock wait); they give up and go to the retry topic,
 * but the realm's circuit stays closed, so the realm's next event is run at once and all
 * five succeed in the end. Regression: a replica SIGSTOPped mid-create (the broker tier's
 * stalled-replica scenario) opened its realm's circuit on every other replica, and the
 * whole realm waited out the cooldowns on the retry topic. */
static void test_busy_creation_lock_leaves_the_circuit_closed(void **state)
{
    const char *flags[] = {"--breaker.failures=3",      "--breaker.cooldown=30s",
                           "--breaker.max_cooldown=1m", "--retry.attempts=1",
                           "--retry.max_attempts=10",   "--worker.threads=8",
                           "--http.timeout=30s",        NULL};
    char id[32], key[64], b[512], *metrics_text = NULL, e[256], want[128];
    int k, lock_records = 0;
    size_t i;
    long r;
    (void)state;

    start(flags);
    add_fault("{\"method\":\"POST\",\"path\":\"/v3/company/" H_REALM_US1 "/customer\","
              "\"vendor\":\"qbo\",\"delay_ms\":13000,\"times\":1}");
    /* distinct keys: the scheduler runs them side by side, as replicas would */
    for (k = 0; k < 5; k++) {
        snprintf(id, sizeof id, "evt-lock-%d", k);
        snprintf(key, sizeof key, PORTAL ":DEAL:1002:%d", k);
        produce_keyed(id, 1002, H_REALM_US1, key);
    }
    reader_wait(&E.retry, 4, 30000, "retry records of the events that waited for the lock");
    for (i = 0; i < E.retry.n; i++) {
        assert_non_null(hdr(&E.retry.m[i], "hsqb-last-error", b, sizeof b));
        assert_null(strstr(b, "CIRCUIT_OPEN"));
        lock_records += strstr(b, "creation lock") != NULL;
    }
    assert_true(lock_records >= 3); /* at least breaker.failures of them */
    /* the realm's next event (another contact) is run, not deferred */
    produce("evt-after-lock", 1004, H_REALM_US1);
    r = wait_result("evt-after-lock", 0, 20000);
    assert_non_null(strstr(E.results.m[r].value, "hsqb.result.succeeded"));
    assert_int_equal(find(&E.retry, "evt-after-lock", 0), -1);
    assert_int_equal(metrics_render(E.metrics, &metrics_text, NULL, e, sizeof e), 0);
    snprintf(want, sizeof want, "hsqb_breaker_state{tenant=\"realm:%s\"} 2", H_REALM_US1);
    assert_null(strstr(metrics_text, want));
    assert_null(strstr(metrics_text, "reason=\"breaker\""));
    free(metrics_text);
    /* nothing lost: the holder finishes, the four come back from the retry topic */
    for (k = 0; k < 5; k++) {
        snprintf(id, sizeof id, "evt-lock-%d", k);
        r = wait_result(id, 0, 30000);
        assert_non_null(strstr(E.results.m[r].value, "hsqb.result.succeeded"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_storm_goes_to_retry_then_succeeds, teardown),
        cmocka_unit_test_teardown(test_exhausted_to_dlq_then_replay_once, teardown),
        cmocka_unit_test_teardown(test_replay_prints_hostile_dead_letters_printable, teardown),
        cmocka_unit_test_teardown(test_replay_count_from_hostile_header, teardown),
        cmocka_unit_test_teardown(test_breaker_isolates_a_broken_realm, teardown),
        cmocka_unit_test_teardown(test_breaker_charges_hubspot_failures_to_the_portal, teardown),
        cmocka_unit_test_teardown(test_busy_creation_lock_leaves_the_circuit_closed, teardown),
    };
    int rc;

    log_set_level(LOG_ERROR);
    h_start();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    h_stop();
    return rc;
}
