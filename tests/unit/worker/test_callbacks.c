/* test_callbacks.c - the callback completer against librdkafka's mock cluster (created in
 * this process by a producer through test.mock.num.brokers), a private redis-server and
 * hsqb-sandbox playing HubSpot.
 *
 * What a user would notice: the executions behind marked results are completed in HubSpot
 * with the document's output fields, many per request (the sandbox's request log shows
 * one POST /automation/v4/actions/callbacks/complete naming them all), per portal, sent
 * when a batch is full or has waited its linger; unmarked results are left alone; a 503
 * is retried until HubSpot takes the batch (nothing dropped); an expired or unknown
 * callback is refused alone while the others of its batch complete; each request is one
 * admission of the portal's rate limit; a long outage pauses the partition at the backlog
 * bound instead of reading on, and everything completes once HubSpot is back. Offsets: results are
 * committed only once their completion was accepted or refused, so a completer killed (SIGKILL, a
 * child process) before completing re-sends after a restart, and one killed after its commit
 * re-sends nothing.
 *
 * Each test has a topic and a consumer group of its own on the one mock cluster; a
 * group's first join takes the mock's 3 s rebalance delay, most of this test's time.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/prctl.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "common/log.h"
#include "tests/unit/worker/sandbox_harness.h"
#include "worker/callbacks.h"
#include "worker/hubspot.h"
#include "worker/metrics.h"
#include "worker/producer.h"
#include "worker/ratelimit.h"
#include "worker/result.h"

#define TOKEN1  "pat-na1-11111111-1111-4111-8111-111111111111"
#define TOKEN2  "pat-na1-22222222-2222-4222-8222-222222222222"
#define PORTAL1 102670506
#define PORTAL2 243987001
#define APP_URL "https://app.sandbox.qbo.intuit.com"
#define ROUTE   "/automation/v4/actions/callbacks/complete"
#define WAIT_MS 20000

static struct producer *prod;
static rd_kafka_mock_cluster_t *mc;
static char bootstrap[256];
static char self_exe[PATH_MAX];

/* What one test runs against: its topic and group, and a completer's parts. */
struct rig {
    char topic[64], group[64];
    const char *extra[12]; /* completer settings beyond the common ones */
    struct config *cfg;
    struct ratelimit *rl;
    struct hubspot_api *hs;
    struct metrics *m;
    struct callbacks *cb;
};

static struct rig R;
static int serial;

/* ---- settings ---------------------------------------------------------------------- */

/* The completer's config: the sandbox, Redis, the mock cluster, R's topic and group. */
static struct config *rig_config(const struct rig *r)
{
    static char flags[4][300];
    const char *all[24];
    size_t n = 0;

    snprintf(flags[0], sizeof flags[0], "--kafka.brokers=%s", bootstrap);
    snprintf(flags[1], sizeof flags[1], "--kafka.topic.results=%s", r->topic);
    snprintf(flags[2], sizeof flags[2], "--kafka.group.id=%s", r->group);
    all[n++] = flags[0];
    all[n++] = flags[1];
    all[n++] = flags[2];
    all[n++] = "HSQB_HUBSPOT_TOKEN=" TOKEN1;
    all[n++] = "--hubspot.token_portals=102670506"; /* PORTAL1; PORTAL2 has its own */
    all[n++] = "--callbacks.complete=all";
    all[n++] = "--qbo.app_url=" APP_URL "/";
    all[n++] = "--kafka.session.timeout.ms=3200";
    all[n++] = "--kafka.heartbeat.interval.ms=300";
    all[n++] = "--kafka.topic.metadata.refresh.interval.ms=500";
    all[n++] = "--kafka.auto.commit.interval.ms=200";
    for (size_t i = 0; r->extra[i] && n < 23; i++)
        all[n++] = r->extra[i];
    all[n] = NULL;
    return h_config(all);
}

static void rig_start(struct rig *r)
{
    char e[512];

    r->cfg = rig_config(r);
    if (!r->rl && !(r->rl = ratelimit_new(r->cfg, e, sizeof e)))
        fail_msg("ratelimit: %s", e);
    if (!r->m && !(r->m = metrics_new("test", 0, e, sizeof e)))
        fail_msg("metrics: %s", e);
    if (!r->hs) {
        struct hubspot_hooks hh = {.opaque = r->m,
                                   .on_api_call = metrics_on_api_call,
                                   .on_ratelimit_wait = metrics_on_ratelimit_wait};
        if (!(r->hs = hubspot_api_new(r->cfg, r->rl, &hh, e, sizeof e)))
            fail_msg("hubspot: %s", e);
    }
    r->cb = callbacks_start(r->cfg, r->hs, r->m, e, sizeof e);
    if (!r->cb)
        fail_msg("callbacks_start: %s", e);
}

static void rig_stop(struct rig *r, int64_t drain_ms)
{
    callbacks_stop(r->cb, drain_ms);
    r->cb = NULL;
    config_free(r->cfg);
    r->cfg = NULL;
}

/* ---- the topic --------------------------------------------------------------------- */

static int produce_async; /* 1: produce_raw queues the message (flush to send) */
static void produce_result(const char *id, int64_t portal, int ok, int mark);

static void produce_raw(const char *key, const char *value, size_t len)
{
    char e[256];

    if (produce_async) {
        assert_int_equal(rd_kafka_producev(
                             producer_handle(prod), RD_KAFKA_V_TOPIC(R.topic),
                             RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE((void *)value, len),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                         0);
        return;
    }
    if (producer_send_sync(prod,
                           &(struct producer_msg){R.topic, key, strlen(key), value, len, NULL, 0},
                           10000, e, sizeof e) != 0)
        fail_msg("produce: %s", e);
}

/* n marked results for "cb-<first>" .. "cb-<first + n - 1>" of PORTAL1, sent at once. */
static void produce_many(int first, int n)
{
    char id[32];

    produce_async = 1;
    for (int i = first; i < first + n; i++) {
        snprintf(id, sizeof id, "cb-%d", i);
        produce_result(id, PORTAL1, 1, 1);
    }
    produce_async = 0;
    assert_int_equal(producer_flush(prod, 20000), 0);
}

/* A result of the worker for execution id of portal: a succeeded invoice of 1250.00, or
 * a PRODUCT_NOT_FOUND failure; marked for the completer when mark is set. */
static void produce_result(const char *id, int64_t portal, int ok, int mark)
{
    struct result_qbo q = {.entity = "Invoice",
                           .id = "1841",
                           .doc_number = "1037",
                           .total_cents = 125000,
                           .currency = "USD",
                           .customer_id = "58"};
    struct result_error fe = {.code = HSQB_ERR_PRODUCT_NOT_FOUND,
                              .message = "1 line item has no QuickBooks product: Gold plan"};
    char key[64], e[256];
    struct jbuf jb;
    struct result_info in = {
        .complete_callback = mark,
        .worker_source = "hsqb-worker://test",
        .subject = {.known = 1,
                    .input_id = id,
                    .action = ACTION_CREATE_INVOICE,
                    .portal_id = portal,
                    .object_type = OBJECT_DEAL,
                    .object_id = 904,
                    .key = key,
                    .realm_id = H_REALM_US1},
        .topic = "hsqb.actions",
        .attempts = 1,
        .completed_at_ms = 1772359200000LL,
        .qbo = ok ? &q : NULL,
        .error = ok ? NULL : &fe,
    };

    snprintf(key, sizeof key, "%lld:DEAL:904", (long long)portal);
    jbuf_init(&jb, 0);
    if (result_build(&in, &jb, e, sizeof e) != 0)
        fail_msg("result_build: %s", e);
    produce_raw(key, jbuf_cstr(&jb), jb.len);
    jbuf_release(&jb);
}

/* The committed offset of the completer's group (callbacks.group unset:
 * <kafka.group.id>-callbacks) on partition 0 (-1001 when none). */
static int64_t committed(void)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    int64_t off;
    char e[256], group[96];
    rd_kafka_t *rk;

    snprintf(group, sizeof group, "%s-callbacks", R.group);
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, e, sizeof e), 0);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", group, e, sizeof e), 0);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
    assert_non_null(rk);
    rd_kafka_topic_partition_list_add(l, R.topic, 0);
    assert_int_equal(rd_kafka_committed(rk, l, 10000), 0);
    off = l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    return off;
}

static int64_t end_offset(void)
{
    int64_t lo = 0, hi = 0;

    assert_int_equal(
        rd_kafka_query_watermark_offsets(producer_handle(prod), R.topic, 0, &lo, &hi, 5000), 0);
    return hi;
}

static void wait_committed(int64_t want)
{
    int64_t end = clock_mono_ms() + WAIT_MS, got;

    while ((got = committed()) != want && clock_mono_ms() < end)
        usleep(100000);
    assert_int_equal(got, want);
}

/* ---- the sandbox ------------------------------------------------------------------- */

/* Register callbacks ids[0..n) of portal; expired ones were created in 2020. */
static void register_callbacks(int64_t portal, const char *const *ids, size_t n, int expired)
{
    char body[4096];
    size_t at;

    at = (size_t)snprintf(body, sizeof body,
                          "{\"hubspot\":{\"portals\":[{\"portalId\":%lld,"
                          "\"callbacks\":[",
                          (long long)portal);
    for (size_t i = 0; i < n; i++)
        at += (size_t)snprintf(body + at, sizeof body - at, "%s{\"callbackId\":\"%s\"%s}",
                               i ? "," : "", ids[i],
                               expired ? ",\"createdAt\":\"2020-01-01T00:00:00Z\","
                                         "\"expiresAt\":\"2020-01-08T00:00:00Z\""
                                       : "");
    snprintf(body + at, sizeof body - at, "]}]}}");
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/seed", body, NULL), 200);
}

/* The member at dotted path of o (borrowed), or NULL. */
static struct json_object *at(struct json_object *o, const char *path)
{
    char buf[128], *key, *dot;

    snprintf(buf, sizeof buf, "%s", path);
    for (key = buf; key && o; key = dot ? dot + 1 : NULL) {
        if ((dot = strchr(key, '.')) != NULL)
            *dot = '\0';
        if (!json_object_object_get_ex(o, key, &o))
            return NULL;
    }
    return o;
}

static const char *str_at(struct json_object *o, const char *path)
{
    struct json_object *v = at(o, path);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* The sandbox's record of callback id of portal (a new reference; caller puts). */
static struct json_object *callback_state(int64_t portal, const char *id)
{
    struct json_object *doc = NULL, *arr, *out = NULL;
    char path[128];

    snprintf(path, sizeof path, "/_sandbox/state?portal=%lld", (long long)portal);
    assert_int_equal(h_admin(HTTP_GET, path, NULL, &doc), 200);
    snprintf(path, sizeof path, "hubspot.portals.%lld.callbacks", (long long)portal);
    arr = at(doc, path);
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        struct json_object *e = json_object_array_get_idx(arr, i);
        const char *cid = str_at(e, "callbackId");
        if (cid && strcmp(cid, id) == 0)
            out = json_object_get(e);
    }
    json_object_put(doc);
    if (!out)
        fail_msg("the sandbox has no callback %s", id);
    return out;
}

static char *callback_str(int64_t portal, const char *id, const char *path)
{
    struct json_object *c = callback_state(portal, id);
    const char *v = str_at(c, path);
    char *out = strdup(v ? v : "(none)");

    json_object_put(c);
    return out;
}

static int callback_int(int64_t portal, const char *id, const char *path)
{
    struct json_object *c = callback_state(portal, id);
    int v = (int)json_object_get_int(at(c, path));

    json_object_put(c);
    return v;
}

static void assert_callback(int64_t portal, const char *id, const char *path, const char *want)
{
    char *got = callback_str(portal, id, path);

    if (strcmp(got, want) != 0)
        fail_msg("callback %s: %s is \"%s\", not \"%s\"", id, path, got, want);
    free(got);
}

/* Wait until every callback ids[0..n) of portal is COMPLETED. */
static void wait_completed(int64_t portal, const char *const *ids, size_t n)
{
    int64_t end = clock_mono_ms() + WAIT_MS;

    for (size_t i = 0; i < n; i++) {
        char *st;
        while (strcmp(st = callback_str(portal, ids[i], "state"), "COMPLETED") != 0 &&
               clock_mono_ms() < end) {
            free(st);
            usleep(50000);
        }
        if (strcmp(st, "COMPLETED") != 0)
            fail_msg("callback %s still %s after %d ms", ids[i], st, WAIT_MS);
        free(st);
    }
}

/* Inputs in the body of a logged batch completion. */
static size_t inputs_of(struct json_object *req)
{
    const char *body = str_at(req, "body");
    struct json_object *b = body ? json_tokener_parse(body) : NULL;
    struct json_object *in = at(b, "inputs");
    size_t n = in ? json_object_array_length(in) : 0;

    json_object_put(b);
    return n;
}

/* The batch completions the sandbox logged (filter: more of the query; caller puts). */
static struct json_object *batch_requests(const char *more, int *n)
{
    struct json_object *reqs = NULL;
    char filter[256];

    snprintf(filter, sizeof filter, "vendor=hubspot&method=POST&path=%s%s", ROUTE, more);
    *n = h_count(filter, &reqs);
    return reqs;
}

/* Value of one sample of the metrics exposition (-1 when absent). */
static double metric(const char *series)
{
    char *text = NULL, e[256], *line;
    size_t len = 0, n = strlen(series);
    double v = -1;

    assert_int_equal(metrics_render(R.m, &text, &len, e, sizeof e), 0);
    for (line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            v = strtod(line + n + 1, NULL);
    free(text);
    return v;
}

#define COMPLETIONS(outcome) metric("hsqb_callback_completions_total{outcome=\"" outcome "\"}")

static void wait_metric(const char *series, double want)
{
    int64_t end = clock_mono_ms() + WAIT_MS;

    while (metric(series) != want && clock_mono_ms() < end)
        usleep(20000);
    if (metric(series) != want)
        fail_msg("%s is %g, wanted %g", series, metric(series), want);
}

/* Requests admitted by the shared rate limiter for portal (its Redis log). */
static long long admissions(int64_t portal)
{
    char key[96], e[256];
    long long n;
    redisReply *r;

    snprintf(key, sizeof key, "hsqb:rate:{hs:%lld}", (long long)portal);
    r = redis_command(H.redis, e, sizeof e, "ZCOUNT %s -inf +inf", key);
    assert_non_null(r);
    n = r->integer;
    freeReplyObject(r);
    return n;
}

/* ---- a completer in a child process (killed with SIGKILL) ----------------------------- */

static pid_t child_start(void)
{
    char port[16];
    pid_t pid;

    snprintf(port, sizeof port, "%d", H.redis_port);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* nothing but async-signal-safe calls until the exec */
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1); /* the parent's stdout is cmocka's report */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execl(self_exe, self_exe, "child", port, H.sb_url, bootstrap, R.topic, R.group,
              (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void child_kill(pid_t pid)
{
    int st;

    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
}

/* The child: a completer with the common settings, until it is killed. */
__attribute__((noreturn)) static void child_main(char **argv)
{
    static const char *const extra[] = {"--callbacks.linger=50ms", "--callbacks.retry_cap=200ms",
                                        NULL};

    log_set_fd(2);
    log_set_level(LOG_ERROR);
    H.redis_port = atoi(argv[2]);
    snprintf(H.sb_url, sizeof H.sb_url, "%s", argv[3]);
    snprintf(bootstrap, sizeof bootstrap, "%s", argv[4]);
    snprintf(R.topic, sizeof R.topic, "%s", argv[5]);
    snprintf(R.group, sizeof R.group, "%s", argv[6]);
    memcpy(R.extra, extra, sizeof extra);
    rig_start(&R);
    for (;;)
        pause();
}

/* ---- fixtures ------------------------------------------------------------------------- */

static int setup(void **state)
{
    static const char *const common[] = {"--callbacks.linger=100ms", "--callbacks.retry_cap=200ms",
                                         NULL};
    char key[96], e[256];
    redisReply *r;
    (void)state;

    h_reset();
    assert_int_equal(hubspot_token_key(key, sizeof key, "hsqb:", PORTAL2), 0);
    r = redis_command(H.redis, e, sizeof e, "SET %s %s", key, TOKEN2);
    assert_non_null(r);
    freeReplyObject(r);
    memset(&R, 0, sizeof R);
    memcpy(R.extra, common, sizeof common);
    serial++;
    snprintf(R.topic, sizeof R.topic, "results-%d", serial);
    snprintf(R.group, sizeof R.group, "completer-%d", serial);
    assert_int_equal(rd_kafka_mock_topic_create(mc, R.topic, 1, 1), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (R.cb)
        rig_stop(&R, 0);
    config_free(R.cfg);
    hubspot_api_free(R.hs);
    ratelimit_free(R.rl);
    metrics_free(R.m);
    memset(&R, 0, sizeof R);
    return 0;
}

/* ---- tests ------------------------------------------------------------------------------ */

/* callbacks.complete=off (or false): no completer, and no error. */
static void test_off_starts_nothing(void **state)
{
    static const char *const off[] = {"--callbacks.complete=off", NULL};
    struct config *cfg;
    char e[256] = "x";
    (void)state;

    cfg = h_config(off);
    assert_null(callbacks_start(cfg, NULL, NULL, e, sizeof e));
    assert_string_equal(e, "");
    config_free(cfg);
    callbacks_stop(NULL, 0);
}

static void test_marked_results_completed_in_one_batch(void **state)
{
    static const char *const ids[] = {"cb-1", "cb-2", "cb-3", "cb-4", "cb-5"};
    static const char *const unmarked[] = {"cb-u1", "cb-u2"};
    struct json_object *reqs;
    int n;
    (void)state;

    R.extra[0] = "--callbacks.linger=500ms";
    register_callbacks(PORTAL1, ids, 5, 0);
    register_callbacks(PORTAL1, unmarked, 2, 0);
    rig_start(&R);
    produce_result("cb-1", PORTAL1, 1, 1);
    produce_result("cb-2", PORTAL1, 0, 1);
    produce_result("cb-u1", PORTAL1, 1, 0);
    produce_result("cb-3", PORTAL1, 1, 1);
    produce_raw("x", "{not json", 9);
    produce_raw("x", "{\"data\":{\"complete_callback\":true}}", 35);
    produce_result("cb-4", PORTAL1, 1, 1);
    produce_result("cb-u2", PORTAL1, 0, 0);
    produce_result("cb-5", PORTAL1, 0, 1);
    wait_completed(PORTAL1, ids, 5);

    /* one request named them all */
    reqs = batch_requests("", &n);
    assert_int_equal(n, 1);
    assert_int_equal(inputs_of(json_object_array_get_idx(reqs, 0)), 5);
    json_object_put(reqs);
    assert_int_equal(h_count("vendor=hubspot&path=/automation", NULL), 1);
    assert_int_equal(admissions(PORTAL1), 1);

    assert_callback(PORTAL1, "cb-1", "via", "batch");
    assert_callback(PORTAL1, "cb-1", "outputFields.hs_execution_state", "SUCCESS");
    assert_callback(PORTAL1, "cb-1", "outputFields.qbo_document_id", "1841");
    assert_callback(PORTAL1, "cb-1", "outputFields.qbo_doc_number", "1037");
    assert_callback(PORTAL1, "cb-1", "outputFields.qbo_total", "1250.00");
    assert_callback(PORTAL1, "cb-1", "outputFields.qbo_document_url",
                    APP_URL "/app/invoice?txnId=1841");
    assert_callback(PORTAL1, "cb-1", "outputFields.status", "succeeded");
    assert_callback(PORTAL1, "cb-2", "outputFields.hs_execution_state", "FAIL_CONTINUE");
    assert_callback(PORTAL1, "cb-2", "outputFields.error_code", "PRODUCT_NOT_FOUND");
    assert_callback(PORTAL1, "cb-2", "outputFields.error_message",
                    "1 line item has no QuickBooks product: Gold plan");
    assert_callback(PORTAL1, "cb-2", "outputFields.status", "failed");
    /* unmarked results are not the completer's business */
    assert_callback(PORTAL1, "cb-u1", "state", "PENDING");
    assert_callback(PORTAL1, "cb-u2", "state", "PENDING");

    assert_true(COMPLETIONS("completed") == 5);
    wait_metric("hsqb_callback_pending", 0);
    /* every message settled, the garbage ones included */
    wait_committed(end_offset());
    assert_int_equal(end_offset(), 9);
}

/* A full batch goes at once; what is left waits callbacks.linger. */
static void test_batch_size_then_linger(void **state)
{
    static const char *const ids[] = {"cb-1", "cb-2", "cb-3", "cb-4"};
    struct json_object *reqs;
    int64_t t0, t1;
    int n;
    (void)state;

    R.extra[0] = "--callbacks.linger=1s";
    R.extra[2] = "--callbacks.batch_size=3";
    register_callbacks(PORTAL1, ids, 4, 0);
    rig_start(&R);
    for (size_t i = 0; i < 4; i++)
        produce_result(ids[i], PORTAL1, 1, 1);
    wait_completed(PORTAL1, ids, 4);
    reqs = batch_requests("", &n);
    assert_int_equal(n, 2);
    assert_int_equal(inputs_of(json_object_array_get_idx(reqs, 0)), 3);
    assert_int_equal(inputs_of(json_object_array_get_idx(reqs, 1)), 1);
    t0 = json_object_get_int64(at(json_object_array_get_idx(reqs, 0), "time_ms"));
    t1 = json_object_get_int64(at(json_object_array_get_idx(reqs, 1), "time_ms"));
    if (t1 - t0 < 900)
        fail_msg("the lone completion went %lld ms after the full batch, before its linger",
                 (long long)(t1 - t0));
    json_object_put(reqs);
    assert_int_equal(admissions(PORTAL1), 2);
}

/* A 503 is retried until HubSpot takes the batch: nothing dropped, each completed once. */
static void test_transient_failure_retried(void **state)
{
    static const char *const ids[] = {"cb-1", "cb-2", "cb-3"};
    struct json_object *reqs;
    int n;
    (void)state;

    register_callbacks(PORTAL1, ids, 3, 0);
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults",
                             "{\"method\":\"POST\",\"path\":\"" ROUTE "\",\"vendor\":\"hubspot\","
                             "\"status\":503,\"times\":2}",
                             NULL),
                     201);
    rig_start(&R);
    for (size_t i = 0; i < 3; i++)
        produce_result(ids[i], PORTAL1, i != 1, 1);
    wait_completed(PORTAL1, ids, 3);
    reqs = batch_requests("", &n);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++) {
        struct json_object *q = json_object_array_get_idx(reqs, (size_t)i);
        assert_int_equal(inputs_of(q), 3);
        assert_int_equal(json_object_get_int(at(q, "status")), i < 2 ? 503 : 204);
    }
    json_object_put(reqs);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(callback_int(PORTAL1, ids[i], "completions"), 1);
    assert_true(COMPLETIONS("retried") == 6);
    assert_true(COMPLETIONS("completed") == 3);
    assert_true(COMPLETIONS("refused") <= 0); /* never refused */
    wait_committed(end_offset());
}

/* Our token refused (401): the portal's completions are held and retried, never refused,
 * so a fixed token completes them all (regression: 401 used to drop them as refused). */
static void test_token_refused_holds_completions(void **state)
{
    static const char *const ids[] = {"cb-1", "cb-2"};
    (void)state;

    register_callbacks(PORTAL1, ids, 2, 0);
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults",
                             "{\"method\":\"POST\",\"path\":\"" ROUTE "\",\"vendor\":\"hubspot\","
                             "\"status\":401,\"times\":4,\"body\":{\"status\":\"error\","
                             "\"message\":\"Authentication credentials not found.\","
                             "\"category\":\"INVALID_AUTHENTICATION\"}}",
                             NULL),
                     201);
    rig_start(&R);
    for (size_t i = 0; i < 2; i++)
        produce_result(ids[i], PORTAL1, 1, 1);
    wait_completed(PORTAL1, ids, 2);
    assert_true(h_count("path=" ROUTE "&status=401", NULL) >= 2);
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(callback_int(PORTAL1, ids[i], "completions"), 1);
    assert_true(COMPLETIONS("retried") >= 2);
    assert_true(COMPLETIONS("completed") == 2);
    assert_true(COMPLETIONS("refused") <= 0);
    wait_committed(end_offset());
}

/* A token refused for longer than callbacks.auth_hold (batch and single routes alike): the
 * portal's completions are refused (counted) and their offsets committed, so they stop
 * holding the partition. */
static void test_token_refused_past_the_hold_is_refused(void **state)
{
    static const char *const ids[] = {"cb-1", "cb-2"};
    (void)state;

    register_callbacks(PORTAL1, ids, 2, 0);
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults",
                             "{\"method\":\"POST\",\"path\":\"/automation/v4/actions/callbacks/*\",\"vendor\":\"hubspot\","
                             "\"status\":401,\"body\":{\"status\":\"error\","
                             "\"message\":\"Authentication credentials not found.\","
                             "\"category\":\"INVALID_AUTHENTICATION\"}}",
                             NULL),
                     201);
    R.extra[2] = "--callbacks.auth_hold=1s";
    rig_start(&R);
    for (size_t i = 0; i < 2; i++)
        produce_result(ids[i], PORTAL1, 1, 1);
    wait_metric("hsqb_callback_completions_total{outcome=\"refused\"}", 2);
    assert_true(COMPLETIONS("retried") >= 2); /* held first */
    assert_true(COMPLETIONS("completed") <= 0);
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(callback_int(PORTAL1, ids[i], "completions"), 0);
    wait_committed(end_offset());
}

/* An expired and an unknown callback sink their batch; split, each is refused alone and
 * the others complete. Refused completions are settled too (never retried). */
static void test_refused_callbacks_isolated(void **state)
{
    static const char *const good[] = {"cb-good-1", "cb-good-2"};
    static const char *const expired[] = {"cb-expired"};
    int n;
    (void)state;

    register_callbacks(PORTAL1, good, 2, 0);
    register_callbacks(PORTAL1, expired, 1, 1);
    rig_start(&R);
    produce_result("cb-good-1", PORTAL1, 1, 1);
    produce_result("cb-expired", PORTAL1, 1, 1);
    produce_result("cb-unknown", PORTAL1, 0, 1);
    produce_result("cb-good-2", PORTAL1, 0, 1);
    wait_completed(PORTAL1, good, 2);
    wait_metric("hsqb_callback_completions_total{outcome=\"refused\"}", 2);
    json_object_put(batch_requests("", &n));
    assert_int_equal(n, 1);
    json_object_put(batch_requests("&status=400", &n));
    assert_int_equal(n, 1);
    /* then one by one */
    assert_int_equal(
        h_count("vendor=hubspot&method=POST&path=/automation/v4/actions/callbacks/cb-", NULL), 4);
    assert_int_equal(
        h_count("vendor=hubspot&path=/automation/v4/actions/callbacks/cb-unknown&status=404", NULL),
        1);
    assert_callback(PORTAL1, "cb-good-1", "via", "single");
    assert_callback(PORTAL1, "cb-expired", "state", "EXPIRED");
    assert_true(COMPLETIONS("completed") == 2);
    assert_true(COMPLETIONS("retried") <= 0);
    assert_int_equal(admissions(PORTAL1), 5);
    wait_committed(end_offset());
}

/* Completions are grouped per portal: one request each, under each portal's token and
 * rate limit. */
static void test_portals_batched_apart(void **state)
{
    static const char *const p1[] = {"cb-p1-1", "cb-p1-2", "cb-p1-3"};
    static const char *const p2[] = {"cb-p2-1", "cb-p2-2", "cb-p2-3"};
    struct json_object *reqs;
    int n;
    (void)state;

    R.extra[0] = "--callbacks.linger=500ms";
    register_callbacks(PORTAL1, p1, 3, 0);
    register_callbacks(PORTAL2, p2, 3, 0);
    rig_start(&R);
    for (size_t i = 0; i < 3; i++) {
        produce_result(p1[i], PORTAL1, 1, 1);
        produce_result(p2[i], PORTAL2, 1, 1);
    }
    wait_completed(PORTAL1, p1, 3);
    wait_completed(PORTAL2, p2, 3);
    json_object_put(batch_requests("", &n));
    assert_int_equal(n, 2);
    reqs = batch_requests("&tenant=102670506", &n);
    assert_int_equal(n, 1);
    assert_int_equal(inputs_of(json_object_array_get_idx(reqs, 0)), 3);
    json_object_put(reqs);
    reqs = batch_requests("&tenant=243987001", &n);
    assert_int_equal(n, 1);
    assert_int_equal(inputs_of(json_object_array_get_idx(reqs, 0)), 3);
    json_object_put(reqs);
    assert_int_equal(admissions(PORTAL1), 1);
    assert_int_equal(admissions(PORTAL2), 1);
}

/* A stop sends what is pending without waiting for its linger, then commits. */
static void test_stop_sends_pending(void **state)
{
    static const char *const ids[] = {"cb-1", "cb-2"};
    int n;
    (void)state;

    R.extra[0] = "--callbacks.linger=10s";
    register_callbacks(PORTAL1, ids, 2, 0);
    rig_start(&R);
    produce_result("cb-1", PORTAL1, 1, 1);
    produce_result("cb-2", PORTAL1, 1, 1);
    wait_metric("hsqb_callback_pending", 2);
    json_object_put(batch_requests("", &n));
    assert_int_equal(n, 0);
    rig_stop(&R, 5000);
    assert_callback(PORTAL1, "cb-1", "state", "COMPLETED");
    assert_callback(PORTAL1, "cb-2", "state", "COMPLETED");
    assert_int_equal(committed(), 2);
}

/* A long outage: unsettled results pile up to the bound, where the partition pauses (the
 * loop still polls and retries); once HubSpot is back everything is completed and the
 * partition resumes. */
static void test_backlog_pauses_partition(void **state)
{
    char body[64 * 1024], doc[96];
    struct json_object *st = NULL;
    size_t len = 0;
    (void)state;

    R.extra[2] = "--hubspot.rate_limit_per_10s=1000";
    len += (size_t)snprintf(body, sizeof body,
                            "{\"hubspot\":{\"portals\":[{\"portalId\":%d,"
                            "\"callbacks\":[",
                            PORTAL1);
    for (int i = 0; i < 2300; i++)
        len += (size_t)snprintf(body + len, sizeof body - len, "%s\"cb-%d\"", i ? "," : "", i);
    snprintf(body + len, sizeof body - len, "]}]}}");
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/seed", body, NULL), 200);
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults",
                             "{\"method\":\"POST\",\"path\":\"" ROUTE "\",\"status\":503}", NULL),
                     201);
    rig_start(&R);
    produce_many(0, 2000);
    wait_metric("hsqb_callback_pending", 2000);
    /* paused: what comes now is not read while HubSpot still fails */
    produce_many(2000, 300);
    usleep(1500000);
    assert_true(metric("hsqb_callback_pending") == 2000);
    assert_true(h_count("path=" ROUTE "&status=503", NULL) >= 2);
    assert_int_equal(h_admin(HTTP_DELETE, "/_sandbox/faults", NULL, NULL), 204);
    wait_metric("hsqb_callback_completions_total{outcome=\"completed\"}", 2300);
    assert_int_equal(h_admin(HTTP_GET, "/_sandbox/state?portal=102670506", NULL, &st), 200);
    snprintf(doc, sizeof doc, "hubspot.portals.%d.completed_callbacks", PORTAL1);
    assert_int_equal(json_object_get_int(at(st, doc)), 2300);
    json_object_put(st);
    wait_committed(2300);
}

/* Killed while HubSpot was failing: nothing was committed past the results, so the next
 * completer sends them. */
static void test_killed_before_completion_resends(void **state)
{
    static const char *const ids[] = {"cb-1", "cb-2"};
    int64_t end;
    pid_t child;
    (void)state;

    register_callbacks(PORTAL1, ids, 2, 0);
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults",
                             "{\"method\":\"POST\",\"path\":\"" ROUTE "\",\"status\":503}", NULL),
                     201);
    child = child_start();
    produce_result("cb-1", PORTAL1, 1, 1);
    produce_result("cb-2", PORTAL1, 0, 1);
    for (end = clock_mono_ms() + WAIT_MS; h_count("path=" ROUTE "&status=503", NULL) < 2;)
        if (clock_mono_ms() > end)
            fail_msg("the child completer never tried");
        else
            usleep(50000);
    child_kill(child);
    assert_true(committed() < 0);
    assert_int_equal(h_admin(HTTP_DELETE, "/_sandbox/faults", NULL, NULL), 204);
    rig_start(&R);
    wait_completed(PORTAL1, ids, 2);
    assert_int_equal(callback_int(PORTAL1, "cb-1", "completions"), 1);
    assert_int_equal(callback_int(PORTAL1, "cb-2", "completions"), 1);
    wait_committed(2);
}

/* Killed after its commit: the next completer sends only what came after. */
static void test_killed_after_commit_resends_nothing(void **state)
{
    static const char *const ids[] = {"cb-1", "cb-2", "cb-3", "cb-4"};
    struct json_object *reqs;
    size_t inputs = 0;
    pid_t child;
    int n;
    (void)state;

    register_callbacks(PORTAL1, ids, 4, 0);
    child = child_start();
    for (size_t i = 0; i < 3; i++)
        produce_result(ids[i], PORTAL1, 1, 1);
    wait_completed(PORTAL1, ids, 3);
    wait_committed(3);
    child_kill(child);
    rig_start(&R);
    produce_result("cb-4", PORTAL1, 1, 1);
    wait_completed(PORTAL1, ids + 3, 1);
    reqs = batch_requests("", &n);
    for (int i = 0; i < n; i++)
        inputs += inputs_of(json_object_array_get_idx(reqs, (size_t)i));
    json_object_put(reqs);
    assert_int_equal(inputs, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(callback_int(PORTAL1, ids[i], "completions"), 1);
        assert_int_equal(callback_int(PORTAL1, ids[i], "rejected"), 0);
    }
    wait_committed(4);
}

/* ---- main ------------------------------------------------------------------------------ */

static int group_setup(void **state)
{
    static const char *const kafka[] = {"--kafka.brokers=127.0.0.1:9",
                                        "--kafka.test.mock.num.brokers=1", NULL};
    struct config *cfg;
    char e[512];
    (void)state;

    log_set_fd(2); /* stdout is cmocka's report */
    log_set_level(getenv("CB_TEST_LOG") ? LOG_DEBUG : LOG_ERROR);
    h_start();
    cfg = h_config(kafka);
    prod = producer_new(cfg, e, sizeof e);
    config_free(cfg);
    if (!prod) {
        fprintf(stderr, "producer: %s\n", e);
        return -1;
    }
    mc = rd_kafka_handle_mock_cluster(producer_handle(prod));
    if (!mc)
        return -1;
    snprintf(bootstrap, sizeof bootstrap, "%s", rd_kafka_mock_cluster_bootstraps(mc));
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    producer_free(prod);
    h_stop();
    return 0;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_off_starts_nothing),
        cmocka_unit_test_setup_teardown(test_marked_results_completed_in_one_batch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_batch_size_then_linger, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transient_failure_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_refused_holds_completions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_refused_past_the_hold_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_refused_callbacks_isolated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_portals_batched_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_sends_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backlog_pauses_partition, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_before_completion_resends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_after_commit_resends_nothing, setup, teardown),
    };
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);

    if (n <= 0)
        return 1;
    self_exe[n] = '\0';
    if (argc == 7 && strcmp(argv[1], "child") == 0)
        child_main(argv);
    if (getenv("CB_TEST_FILTER")) /* e.g. "test_stop*" while working on one test */
        cmocka_set_test_filter(getenv("CB_TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
