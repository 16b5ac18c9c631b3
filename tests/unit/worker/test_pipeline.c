/* test_pipeline.c - one event from Kafka message to published outcome, against a private
 * redis-server, hsqb-sandbox (HubSpot + QuickBooks + Intuit OAuth) and librdkafka's mock
 * cluster (created in-process by the producer through test.mock.num.brokers).
 *
 * What a user would notice: an invoice, estimate or sales receipt appears in QuickBooks
 * with HubSpot's amounts to the cent and one result on hsqb.results; a duplicate delivery
 * re-publishes the same result without touching QuickBooks; PRODUCT_NOT_FOUND and the
 * other business failures create nothing and land in the DLQ with their headers and the
 * original bytes; an undecodable message still gets a result; a transient QBO failure is
 * retried; an answer lost after QBO created the invoice never yields a second invoice; a
 * replayed dead letter runs again.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "common/log.h"
#include "worker/hubspot.h"
#include "worker/oauth.h"
#include "worker/pipeline.h"
#include "worker/producer.h"
#include "worker/qbo.h"
#include "worker/ratelimit.h"

#include "tests/unit/worker/sandbox_harness.h"

#define TOKEN1  "pat-na1-11111111-1111-4111-8111-111111111111"
#define PORTAL  "102670506"
#define RESULTS "hsqb.results"
#define DLQ     "hsqb.actions.dlq"

struct env {
    struct config *cfg;
    struct oauth *oauth;
    struct ratelimit *rl;
    struct qbo_api *q;
    struct hubspot_api *hs;
    struct producer *pr;
    struct pipeline *p;
    struct pipeline_thread *t;
    struct http_client *http;
    char bootstrap[256];
    int64_t next_offset;
};

static struct env E;

static const char *extra_flag; /* one more setting for the next setup, or NULL */

static int setup(void **state)
{
    const char *extra[] = {
        "--hubspot.token=" TOKEN1,
        "--kafka.brokers=127.0.0.1:9",
        "--kafka.test.mock.num.brokers=1",
        "--kafka.group.id=hsqb-test",
        "--retry.base=20ms",
        "--retry.cap=200ms",
        "--retry.budget=5s",
        "--claim.lease=5s",
        extra_flag,
        NULL,
    };
    char e[512];
    rd_kafka_mock_cluster_t *mc;
    (void)state;

    h_reset();
    assert_int_equal(oauth_store_refresh_token(H.redis, H_REALM_US1, H_RT_US1, 0, e, sizeof e), 0);
    assert_int_equal(oauth_store_refresh_token(H.redis, H_REALM_CA, H_RT_CA, 0, e, sizeof e), 0);
    E.cfg = h_config(extra);
    assert_non_null(E.oauth = oauth_new(E.cfg, e, sizeof e));
    assert_non_null(E.rl = ratelimit_new(E.cfg, e, sizeof e));
    assert_non_null(E.q = qbo_api_new(E.cfg, E.oauth, E.rl, NULL, e, sizeof e));
    assert_non_null(E.hs = hubspot_api_new(E.cfg, E.rl, NULL, e, sizeof e));
    if (!(E.pr = producer_new(E.cfg, e, sizeof e)))
        fail_msg("producer: %s", e);
    mc = rd_kafka_handle_mock_cluster(producer_handle(E.pr));
    assert_non_null(mc);
    assert_int_equal(rd_kafka_mock_topic_create(mc, RESULTS, 1, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_mock_topic_create(mc, DLQ, 1, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    snprintf(E.bootstrap, sizeof E.bootstrap, "%s", rd_kafka_mock_cluster_bootstraps(mc));
    struct pipeline_deps deps = {.hubspot = E.hs, .qbo = E.q, .producer = E.pr};
    if (!(E.p = pipeline_new(E.cfg, &deps, e, sizeof e)))
        fail_msg("pipeline: %s", e);
    if (!(E.t = pipeline_thread_new(E.p, e, sizeof e)))
        fail_msg("pipeline thread: %s", e);
    E.http = h_http_new();
    E.next_offset = 100;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pipeline_thread_free(E.t);
    pipeline_free(E.p);
    producer_free(E.pr);
    hubspot_api_free(E.hs);
    qbo_api_free(E.q);
    ratelimit_free(E.rl);
    oauth_free(E.oauth);
    config_free(E.cfg);
    http_client_free(E.http);
    memset(&E, 0, sizeof E);
    extra_flag = NULL;
    return 0;
}

static int setup_callbacks(void **state)
{
    extra_flag = "--callbacks.complete=true";
    return setup(state);
}

/* ---- inputs -------------------------------------------------------------------------- */

/* An action event (caller frees). inputs: extra "key":"value" members of inputFields. */
static char *event_json(const char *id, const char *action, const char *type, int64_t obj,
                        const char *realm, const char *inputs)
{
    char *s = NULL;
    int n = asprintf(&s,
                     "{\"specversion\":\"1.0\",\"id\":\"%s\",\"type\":\"hsqb.action.%s\","
                     "\"source\":\"hubspot://portal/" PORTAL "/workflow/1\","
                     "\"time\":\"2026-03-01T10:00:00Z\",\"data\":{\"callbackId\":\"%s\","
                     "\"origin\":{\"portalId\":" PORTAL "},\"object\":{\"objectId\":%lld,"
                     "\"objectType\":\"%s\"},\"inputFields\":{\"qbo_realm_id\":\"%s\"%s%s}}}",
                     id, action, id, (long long)obj, type, realm, inputs ? "," : "",
                     inputs ? inputs : "");
    assert_true(n > 0);
    return s;
}

static enum pipeline_disposition handle_hdrs(const char *value, size_t len,
                                             rd_kafka_headers_t *hdrs, int64_t *delay)
{
    struct inbound_msg m = {
        .topic = "hsqb.actions",
        .partition = 0,
        .offset = E.next_offset++,
        .timestamp_ms = 1772359200000LL,
        .key = "k",
        .key_len = 1,
        .value = value,
        .value_len = len,
        .headers = hdrs,
        .dispatch_count = 1,
    };
    int64_t d = -1;
    enum pipeline_disposition r = pipeline_handle(E.p, E.t, &m, &d);
    if (delay)
        *delay = d;
    return r;
}

static enum pipeline_disposition handle(const char *value)
{
    return handle_hdrs(value, strlen(value), NULL, NULL);
}

/* ---- outputs ------------------------------------------------------------------------- */

struct kmsg {
    char *value;
    size_t len;
    rd_kafka_headers_t *hdrs;
};

/* Every message of topic (partition 0) from the beginning; *n of them (caller frees). */
static struct kmsg *read_topic(const char *topic, size_t *n)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(1);
    struct kmsg *out = NULL;
    int64_t lo = 0, hi = 0, deadline;
    char e[256];
    rd_kafka_t *c;

    *n = 0;
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", E.bootstrap, e, sizeof e), 0);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", "test-reader", e, sizeof e), 0);
    assert_int_equal(rd_kafka_conf_set(conf, "enable.auto.commit", "false", e, sizeof e), 0);
    assert_int_equal(rd_kafka_conf_set(conf, "fetch.wait.max.ms", "10", e, sizeof e), 0);
    assert_int_equal(
        rd_kafka_conf_set(conf, "topic.metadata.refresh.interval.ms", "100", e, sizeof e), 0);
    c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
    assert_non_null(c);
    assert_int_equal(rd_kafka_query_watermark_offsets(c, topic, 0, &lo, &hi, 5000), 0);
    if (hi > lo) {
        out = calloc((size_t)(hi - lo), sizeof *out);
        rd_kafka_topic_partition_list_add(tp, topic, 0)->offset = lo;
        assert_int_equal(rd_kafka_assign(c, tp), 0);
        deadline = h_now_ms() + 10000;
        while (*n < (size_t)(hi - lo) && h_now_ms() < deadline) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
            rd_kafka_headers_t *h = NULL;
            if (!m)
                continue;
            if (!m->err) {
                out[*n].value = strndup(m->payload ? m->payload : "", m->len);
                out[*n].len = m->len;
                if (rd_kafka_message_headers(m, &h) == 0)
                    out[*n].hdrs = rd_kafka_headers_copy(h);
                (*n)++;
            }
            rd_kafka_message_destroy(m);
        }
    }
    rd_kafka_topic_partition_list_destroy(tp);
    rd_kafka_destroy_flags(c, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    return out;
}

static void free_msgs(struct kmsg *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(m[i].value);
        if (m[i].hdrs)
            rd_kafka_headers_destroy(m[i].hdrs);
    }
    free(m);
}

static const char *hdr(const struct kmsg *m, const char *name, char *buf, size_t bufsz)
{
    const void *v;
    size_t n;
    if (!m->hdrs || rd_kafka_header_get_last(m->hdrs, name, &v, &n) != 0)
        return NULL;
    snprintf(buf, bufsz, "%.*s", (int)n, (const char *)v);
    return buf;
}

/* The value at a dotted path of the last result; NULL when absent. */
static struct json_object *at(struct json_object *o, const char *path)
{
    char buf[256], *key, *dot;
    struct json_object *cur = o, *child;
    snprintf(buf, sizeof buf, "%s", path);
    for (key = buf; key; key = dot ? dot + 1 : NULL) {
        dot = strchr(key, '.');
        if (dot)
            *dot = '\0';
        if (!json_object_is_type(cur, json_type_object) ||
            !json_object_object_get_ex(cur, key, &child))
            return NULL;
        cur = child;
    }
    return cur;
}

static const char *s_at(struct json_object *o, const char *path)
{
    struct json_object *v = at(o, path);
    if (!v || !json_object_is_type(v, json_type_string))
        fail_msg("%s is not a string in %s", path, json_object_to_json_string(o));
    return json_object_get_string(v);
}

/* Keep a published result for tests/schema/test_worker_results.py, which validates every
 * file of $BUILD/test-results against the result schema. */
static void save_result(const char *json)
{
    const char *build = getenv("BUILD");
    char path[600], name[96];
    struct json_object *o = json_tokener_parse(json), *id;
    size_t i;
    FILE *f;

    if (!o || !json_object_object_get_ex(o, "id", &id)) {
        json_object_put(o);
        return;
    }
    snprintf(name, sizeof name, "%s", json_object_get_string(id));
    for (i = 0; name[i]; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '-')
            name[i] = '_';
    json_object_put(o);
    snprintf(path, sizeof path, "%s/test-results", build && *build ? build : "build");
    mkdir(path, 0755);
    snprintf(path + strlen(path), sizeof path - strlen(path), "/pipeline_%s.json", name);
    if ((f = fopen(path, "w")) != NULL) {
        fputs(json, f);
        fclose(f);
    }
}

/* The only / last result, parsed (caller puts); asserts how many there are. */
static struct json_object *last_result(size_t want_count)
{
    size_t n;
    struct kmsg *m = read_topic(RESULTS, &n);
    struct json_object *o;
    char ct[64];
    if (n != want_count)
        fail_msg("%zu results on %s, wanted %zu", n, RESULTS, want_count);
    o = json_tokener_parse(m[n - 1].value);
    assert_non_null(o);
    save_result(m[n - 1].value);
    assert_non_null(hdr(&m[n - 1], "content-type", ct, sizeof ct));
    assert_string_equal(ct, "application/cloudevents+json");
    free_msgs(m, n);
    return o;
}

static int qbo_posts(void)
{
    return h_count("vendor=qbo&method=POST", NULL);
}

static int qbo_rows(const char *realm, const char *sql)
{
    struct json_object *r;
    struct api_error err;
    int n;
    assert_int_equal(qbo_query(E.q, E.http, H.redis, realm, sql, &r, &err), 0);
    n = (int)json_object_array_length(r);
    json_object_put(r);
    return n;
}

/* ---- tests --------------------------------------------------------------------------- */

static void test_invoice_from_deal_then_duplicate(void **state)
{
    char *ev = event_json("evt-inv-1", "create_invoice", "DEAL", 1001, H_REALM_US1,
                          "\"payment_terms\":\"Net 30\",\"create_missing_products\":\"true\"");
    struct json_object *r, *r2, *inv, *lines;
    struct api_error err;
    int posts;
    int64_t sum = 0;
    (void)state;

    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(s_at(r, "type"), "hsqb.result.succeeded");
    assert_string_equal(s_at(r, "id"), "evt-inv-1:result");
    assert_string_equal(s_at(r, "subject"), PORTAL ":DEAL:1001");
    assert_string_equal(s_at(r, "data.qbo.entity"), "Invoice");
    assert_int_equal(json_object_get_int64(at(r, "data.qbo.total_cents")), 205397);
    assert_string_equal(s_at(r, "data.qbo.currency"), "USD");
    /* Ada Lovelace (ada@example.com) is not QBO's Ada Lovelace: a new customer */
    assert_true(json_object_get_boolean(at(r, "data.qbo.created_customer")));
    assert_int_equal(json_object_array_length(at(r, "data.qbo.created_items")), 1);
    assert_string_equal(s_at(json_object_array_get_idx(at(r, "data.qbo.created_items"), 0), "name"),
                        "Setup fee");
    /* the document in QBO: HubSpot's amounts to the cent, the term, our note */
    assert_int_equal(
        qbo_read(E.q, E.http, H.redis, H_REALM_US1, "invoice", s_at(r, "data.qbo.id"), &inv, &err),
        0);
    assert_string_equal(s_at(inv, "SalesTermRef.value"), "3");
    assert_string_equal(s_at(inv, "TxnDate"), "2026-03-01");
    assert_non_null(strstr(s_at(inv, "PrivateNote"), "hsqb event evt-inv-1"));
    lines = at(inv, "Line");
    for (size_t i = 0; i < json_object_array_length(lines); i++) {
        struct json_object *l = json_object_array_get_idx(lines, i);
        if (strcmp(s_at(l, "DetailType"), "SalesItemLineDetail") == 0)
            sum += (int64_t)(json_object_get_double(at(l, "Amount")) * 100 + 0.5);
    }
    assert_int_equal(sum, 205397);
    json_object_put(inv);

    /* a duplicate delivery: the same result again, no QuickBooks write */
    posts = qbo_posts();
    assert_int_equal(handle(ev), PIPELINE_DONE);
    assert_int_equal(qbo_posts(), posts);
    r2 = last_result(2);
    assert_string_equal(json_object_to_json_string(r), json_object_to_json_string(r2));
    json_object_put(r);
    json_object_put(r2);
    free(ev);
}

static void test_estimate_from_quote_and_receipt_from_deal(void **state)
{
    char *ev =
        event_json("evt-est-1", "create_estimate", "QUOTE", 2001, H_REALM_US1,
                   "\"create_missing_products\":\"true\",\"customer_source\":\"contact:303\"");
    char *ev2 = event_json("evt-sr-1", "create_sales_receipt", "0-3", 1002, H_REALM_US1,
                           "\"create_missing_products\":\"true\"");
    struct json_object *r;
    (void)state;

    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(s_at(r, "data.qbo.entity"), "Estimate");
    assert_string_equal(s_at(r, "data.object.type"), "QUOTE");
    assert_int_equal(json_object_get_int64(at(r, "data.qbo.total_cents")), 205397);
    json_object_put(r);
    /* contact without email, fractional quantity, percentage discount */
    assert_int_equal(handle(ev2), PIPELINE_DONE);
    r = last_result(2);
    assert_string_equal(s_at(r, "type"), "hsqb.result.succeeded");
    assert_string_equal(s_at(r, "data.qbo.entity"), "SalesReceipt");
    assert_int_equal(json_object_get_int64(at(r, "data.qbo.total_cents")), 145500);
    json_object_put(r);
    free(ev);
    free(ev2);
}

static void test_product_not_found_creates_nothing(void **state)
{
    char *ev = event_json("evt-pnf-1", "create_invoice", "DEAL", 1001, H_REALM_US1,
                          "\"create_missing_products\":\"false\"");
    struct json_object *r;
    struct kmsg *d;
    size_t n;
    char b[256];
    (void)state;

    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(s_at(r, "type"), "hsqb.result.failed");
    assert_string_equal(s_at(r, "data.error.code"), "PRODUCT_NOT_FOUND");
    assert_non_null(strstr(s_at(r, "data.error.message"), "Setup fee"));
    assert_int_equal(json_object_array_length(at(r, "data.error.details.line_items")), 1);
    assert_int_equal(qbo_posts(), 0); /* not even the customer */
    json_object_put(r);
    d = read_topic(DLQ, &n);
    assert_int_equal(n, 1);
    assert_string_equal(d[0].value, ev); /* the original bytes */
    assert_string_equal(hdr(&d[0], "hsqb-error-code", b, sizeof b), "PRODUCT_NOT_FOUND");
    assert_string_equal(hdr(&d[0], "hsqb-event-id", b, sizeof b), "evt-pnf-1");
    assert_string_equal(hdr(&d[0], "hsqb-original-topic", b, sizeof b), "hsqb.actions");
    assert_string_equal(hdr(&d[0], "hsqb-attempts", b, sizeof b), "1");
    assert_string_equal(hdr(&d[0], "hsqb-consumer-group", b, sizeof b), "hsqb-test");
    free_msgs(d, n);
    free(ev);
}

static void expect_failure(const char *id, const char *action, const char *type, int64_t obj,
                           const char *realm, const char *inputs, const char *code, size_t nth)
{
    char *ev = event_json(id, action, type, obj, realm, inputs);
    struct json_object *r;

    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(nth);
    assert_string_equal(s_at(r, "data.error.code"), code);
    assert_false(json_object_get_boolean(at(r, "data.error.retryable")));
    json_object_put(r);
    free(ev);
}

static void test_business_failures(void **state)
{
    (void)state;
    expect_failure("evt-nc", "create_invoice", "DEAL", 1003, H_REALM_US1, NULL, "NO_CONTACT", 1);
    expect_failure("evt-gone", "create_invoice", "DEAL", 1006, H_REALM_US1, NULL,
                   "OBJECT_NOT_FOUND", 2);
    expect_failure("evt-ca", "create_invoice", "DEAL", 1005, H_REALM_CA, NULL, "QBO_COMPANY_NOT_US",
                   3);
    expect_failure("evt-term", "create_invoice", "DEAL", 1005, H_REALM_US1,
                   "\"payment_terms\":\"Net 99\"", "TERM_NOT_FOUND", 4);
    expect_failure("evt-nli", "create_estimate", "QUOTE", 2003, H_REALM_US1, NULL, "NO_CONTACT", 5);
    assert_int_equal(qbo_posts(), 0);
}

static void test_invalid_event_keeps_raw_bytes(void **state)
{
    static const char junk[] = "not json at all \x01";
    struct json_object *r;
    struct kmsg *d;
    size_t n;
    (void)state;

    assert_int_equal(handle_hdrs(junk, sizeof junk - 1, NULL, NULL), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(s_at(r, "data.error.code"), "INVALID_EVENT");
    assert_string_equal(s_at(r, "id"), "hsqb.actions:0:100:result");
    assert_null(at(r, "subject"));
    json_object_put(r);
    d = read_topic(DLQ, &n);
    assert_int_equal(n, 1);
    assert_int_equal(d[0].len, sizeof junk - 1);
    assert_memory_equal(d[0].value, junk, sizeof junk - 1);
    free_msgs(d, n);
}

static void test_unsupported_object_type(void **state)
{
    /* a sales receipt belongs on a payment too, an invoice never does */
    char *ev =
        event_json("evt-unsup", "create_invoice", "COMMERCE_PAYMENT", 8001, H_REALM_US1, NULL);
    char *ev2 = event_json("evt-contact", "create_invoice", "CONTACT", 301, H_REALM_US1, NULL);
    struct json_object *r;
    (void)state;

    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(s_at(r, "data.error.code"), "UNSUPPORTED_OBJECT_TYPE");
    assert_string_equal(s_at(r, "data.object.type"), "COMMERCE_PAYMENT");
    assert_string_equal(s_at(r, "subject"), PORTAL ":COMMERCE_PAYMENT:8001");
    json_object_put(r);
    /* CONTACT is outside the result contract's vocabulary: reported as INVALID_EVENT */
    assert_int_equal(handle(ev2), PIPELINE_DONE);
    r = last_result(2);
    assert_string_equal(s_at(r, "data.error.code"), "INVALID_EVENT");
    assert_string_equal(s_at(r, "data.input_id"), "evt-contact");
    json_object_put(r);
    free(ev);
    free(ev2);
}

static void test_transient_503_is_retried(void **state)
{
    char *ev = event_json("evt-503", "create_invoice", "DEAL", 1005, H_REALM_US1,
                          "\"create_missing_products\":\"true\"");
    struct json_object *r;
    (void)state;

    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults",
                             "{\"method\":\"POST\",\"path\":\"/v3/company/*/invoice\","
                             "\"status\":503,\"times\":1}",
                             NULL),
                     201);
    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(s_at(r, "type"), "hsqb.result.succeeded");
    assert_int_equal(json_object_get_int(at(r, "data.attempts")), 2);
    json_object_put(r);
    assert_int_equal(qbo_rows(H_REALM_US1, "SELECT * FROM Invoice WHERE TxnDate = '2026-03-01'"),
                     1);
    free(ev);
}

static void test_lost_answer_never_two_invoices(void **state)
{
    char *ev = event_json("evt-lost", "create_invoice", "DEAL", 1005, H_REALM_US1, NULL);
    struct json_object *r;
    (void)state;

    /* QBO creates the invoice but the answer never arrives (twice: libcurl resends once
     * by itself on a reused connection) */
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults",
                             "{\"method\":\"POST\",\"path\":\"/v3/company/*/invoice\","
                             "\"phase\":\"after\",\"drop\":true,\"times\":2}",
                             NULL),
                     201);
    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(s_at(r, "type"), "hsqb.result.succeeded");
    json_object_put(r);
    assert_int_equal(qbo_rows(H_REALM_US1, "SELECT * FROM Invoice WHERE TxnDate = '2026-03-01'"),
                     1);
    free(ev);
}

static void test_claim_held_elsewhere_is_retried_later(void **state)
{
    char *ev = event_json("evt-busy", "create_invoice", "DEAL", 1005, H_REALM_US1, NULL);
    char e[128];
    int64_t delay = 0;
    size_t n;
    redisReply *x;
    (void)state;

    x = redis_command(H.redis, e, sizeof e, "SET hsqb:evt:{evt-busy} %s PX 60000",
                      "0123456789abcdef0123456789abcdef");
    freeReplyObject(x);
    assert_int_equal(handle_hdrs(ev, strlen(ev), NULL, &delay), PIPELINE_RETRY_LATER);
    assert_true(delay > 0);
    free(read_topic(RESULTS, &n));
    assert_int_equal(n, 0);
    assert_int_equal(h_count("vendor=hubspot", NULL), 0);
    free(ev);
}

static void test_replay_runs_a_failed_event_again(void **state)
{
    char *ev = event_json("evt-replay", "create_invoice", "DEAL", 1001, H_REALM_US1, NULL);
    rd_kafka_headers_t *h = rd_kafka_headers_new(2);
    struct json_object *r, *body, *item;
    struct api_error err;
    (void)state;

    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(s_at(r, "data.error.code"), "PRODUCT_NOT_FOUND");
    json_object_put(r);
    /* a plain redelivery re-publishes the stored failure */
    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(2);
    assert_string_equal(s_at(r, "data.error.code"), "PRODUCT_NOT_FOUND");
    json_object_put(r);
    /* the operator fixes the cause (creates the product) and replays the dead letter */
    body = json_tokener_parse("{\"Name\":\"Setup fee\",\"Type\":\"Service\","
                              "\"IncomeAccountRef\":{\"value\":\"79\"}}");
    assert_int_equal(qbo_create(E.q, E.http, H.redis, H_REALM_US1, "item", body, NULL, &item, &err),
                     0);
    json_object_put(body);
    json_object_put(item);
    rd_kafka_header_add(h, "hsqb-replay-of", -1, "hsqb.actions.dlq:0:0", -1);
    rd_kafka_header_add(h, "hsqb-replay-count", -1, "1", -1);
    assert_int_equal(handle_hdrs(ev, strlen(ev), h, NULL), PIPELINE_DONE);
    r = last_result(3);
    assert_string_equal(s_at(r, "type"), "hsqb.result.succeeded");
    json_object_put(r);
    /* replaying a success again only re-publishes it */
    assert_int_equal(handle_hdrs(ev, strlen(ev), h, NULL), PIPELINE_DONE);
    r = last_result(4);
    assert_string_equal(s_at(r, "type"), "hsqb.result.succeeded");
    json_object_put(r);
    assert_int_equal(qbo_rows(H_REALM_US1, "SELECT * FROM Invoice WHERE TxnDate = '2026-03-01'"),
                     1);
    rd_kafka_headers_destroy(h);
    free(ev);
}

static void test_callback_completed_with_ids(void **state)
{
    char *ev = event_json("evt-cb", "create_invoice", "DEAL", 1005, H_REALM_US1, NULL);
    struct json_object *reqs, *r;
    const char *body;
    (void)state;

    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/config",
                             "{\"hubspot\":{\"callback_accept_unknown\":true}}", NULL),
                     200);
    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    assert_int_equal(
        h_count("vendor=hubspot&method=POST&path=/automation/v4/actions/callbacks/evt-cb/complete",
                &reqs),
        1);
    body = s_at(json_object_array_get_idx(reqs, 0), "body");
    assert_non_null(strstr(body, "SUCCESS"));
    assert_non_null(strstr(body, s_at(r, "data.qbo.id")));
    json_object_put(reqs);
    json_object_put(r);
    /* a duplicate delivery does not complete it again */
    assert_int_equal(handle(ev), PIPELINE_DONE);
    assert_int_equal(h_count("vendor=hubspot&method=POST&path=/automation", NULL), 1);
    free(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_invoice_from_deal_then_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_estimate_from_quote_and_receipt_from_deal, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_product_not_found_creates_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_business_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_event_keeps_raw_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsupported_object_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transient_503_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_answer_never_two_invoices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_held_elsewhere_is_retried_later, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_replay_runs_a_failed_event_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_completed_with_ids, setup_callbacks,
                                        teardown),
    };
    int rc;

    log_set_level(LOG_ERROR);
    h_start();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    h_stop();
    return rc;
}
