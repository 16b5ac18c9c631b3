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
 * replayed dead letter runs again; an event of a portal without credentials, or naming a
 * realm not bound to its portal, fails before any API call (and books once bound); an
 * event one line or one QBO write over its budget (budget.*) fails BUDGET_EXCEEDED having
 * created nothing, and one exactly at the budget books.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>

#include "common/clock.h"
#include "common/log.h"

#include "tests/unit/worker/sandbox_harness.h"
#include "worker/claim.h"
#include "worker/company.h"
#include "worker/scheduler.h"
#include "worker/tenancy.h"
#include "tests/unit/worker/testutil_pipeline.h"

#define TOKEN1    "pat-na1-11111111-1111-4111-8111-111111111111"
#define PORTAL    "102670506"
#define PORTAL_ID 102670506
#define RESULTS   TP_RESULTS
#define DLQ       TP_DLQ

static struct tp_env E;

static const char *extra_flag; /* one more setting for the next setup, or NULL */

static int setup(void **state)
{
    const char *extra[] = {"HSQB_HUBSPOT_TOKEN=" TOKEN1, TP_ENV_FLAGS, extra_flag, NULL};
    char e[512];
    (void)state;

    h_reset();
    assert_int_equal(oauth_store_refresh_token(H.redis, H_REALM_US1, H_RT_US1, 0, e, sizeof e), 0);
    assert_int_equal(oauth_store_refresh_token(H.redis, H_REALM_CA, H_RT_CA, 0, e, sizeof e), 0);
    assert_int_equal(oauth_store_refresh_token(H.redis, H_REALM_US2, H_RT_US2, 0, e, sizeof e), 0);
    assert_int_equal(oauth_store_refresh_token(H.redis, H_REALM_AST1, H_RT_AST1, 0, e, sizeof e),
                     0);
    assert_int_equal(oauth_store_refresh_token(H.redis, H_REALM_MC1, H_RT_MC1, 0, e, sizeof e), 0);
    h_bind(PORTAL_ID, (const char *const[]){H_REALM_US1, H_REALM_CA, H_REALM_US2, H_REALM_AST1,
                                            H_REALM_MC1, NULL});
    if (tp_env_build(&E, h_config(extra), e, sizeof e) < 0)
        fail_msg("env: %s", e);
    E.http = h_http_new();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tp_env_free(&E);
    extra_flag = NULL;
    return 0;
}

static int setup_callbacks(void **state)
{
    extra_flag = "--callbacks.complete=true";
    return setup(state);
}

/* ---- inputs -------------------------------------------------------------------------- */

static char *event_json(const char *id, const char *action, const char *type, int64_t obj,
                        const char *realm, const char *inputs)
{
    return tp_event_json(id, action, PORTAL_ID, type, obj, realm, inputs);
}

static enum pipeline_disposition handle_hdrs(const char *value, size_t len,
                                             rd_kafka_headers_t *hdrs, int64_t *delay)
{
    return tp_handle(&E, E.t, value, len, hdrs, E.next_offset++, delay);
}

static enum pipeline_disposition handle(const char *value)
{
    return handle_hdrs(value, strlen(value), NULL, NULL);
}

/* ---- outputs ------------------------------------------------------------------------- */

static struct tp_kmsg *read_topic(const char *topic, size_t *n)
{
    return tp_read_topic(E.bootstrap, topic, n);
}

/* Keep a published result for the schema test, named after its id. */
static void save_result(const char *json)
{
    char name[sizeof "pipeline_" + 95];
    struct json_object *o = json_tokener_parse(json), *id;
    size_t i;

    if (!o || !json_object_object_get_ex(o, "id", &id)) {
        json_object_put(o);
        return;
    }
    snprintf(name, sizeof name, "pipeline_%s", json_object_get_string(id));
    for (i = 0; name[i]; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '-')
            name[i] = '_';
    json_object_put(o);
    tp_save_json(name, json);
}

/* The only / last result, parsed (caller puts); asserts how many there are. */
static struct json_object *last_result(size_t want_count)
{
    size_t n;
    struct tp_kmsg *m = read_topic(RESULTS, &n);
    struct json_object *o;
    char ct[64];
    if (n != want_count)
        fail_msg("%zu results on %s, wanted %zu", n, RESULTS, want_count);
    o = json_tokener_parse(m[n - 1].value);
    assert_non_null(o);
    save_result(m[n - 1].value);
    assert_non_null(tp_hdr(&m[n - 1], "content-type", ct, sizeof ct));
    assert_string_equal(ct, "application/cloudevents+json");
    tp_free_msgs(m, n);
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
    assert_int_equal(qbo_query(H_IO(E.http, H.redis), E.q, realm, sql, &r, &err), 0);
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
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    assert_string_equal(tp_str_at(r, "id"), "evt-inv-1:result");
    assert_string_equal(tp_str_at(r, "subject"), PORTAL ":DEAL:1001");
    assert_string_equal(tp_str_at(r, "data.qbo.entity"), "Invoice");
    /* the lines (2053.97) plus the CA 7.25% tax of the line in tax rate group 1001 (36.25):
     * QBO's TotalAmt, checked against HubSpot's before the result says succeeded */
    assert_int_equal(json_object_get_int64(tp_at(r, "data.qbo.total_cents")), 209022);
    assert_string_equal(tp_str_at(r, "data.qbo.currency"), "USD");
    /* Ada Lovelace (ada@example.com) is not QBO's Ada Lovelace: a new customer */
    assert_true(json_object_get_boolean(tp_at(r, "data.qbo.created_customer")));
    assert_int_equal(json_object_array_length(tp_at(r, "data.qbo.created_items")), 1);
    assert_string_equal(
        tp_str_at(json_object_array_get_idx(tp_at(r, "data.qbo.created_items"), 0), "name"),
        "Setup fee");
    /* the document in QBO: HubSpot's amounts to the cent, the term, our note */
    assert_int_equal(qbo_read(H_IO(E.http, H.redis), E.q, H_REALM_US1, "invoice",
                              tp_str_at(r, "data.qbo.id"), &inv, &err),
                     0);
    assert_string_equal(tp_str_at(inv, "SalesTermRef.value"), "3");
    assert_string_equal(tp_str_at(inv, "TxnDate"), "2026-03-01");
    /* US1 uses sales tax: HubSpot's tax goes as TotalTax, so QBO cannot compute another */
    assert_string_equal(json_object_get_string(tp_at(inv, "TxnTaxDetail.TotalTax")), "36.25");
    assert_non_null(strstr(tp_str_at(inv, "PrivateNote"), "hsqb event evt-inv-1"));
    lines = tp_at(inv, "Line");
    for (size_t i = 0; i < json_object_array_length(lines); i++) {
        struct json_object *l = json_object_array_get_idx(lines, i);
        if (strcmp(tp_str_at(l, "DetailType"), "SalesItemLineDetail") == 0)
            sum += (int64_t)(json_object_get_double(tp_at(l, "Amount")) * 100 + 0.5);
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

/* Under the scheduler the result is handed to the producer without blocking the thread
 * (HANDLER_PENDING): the message stays in flight, holding its offset, until the broker
 * acknowledged the result; then its offset is committable and the outcome is the same. */
static void test_scheduled_result_completes_on_its_delivery_report(void **state)
{
    char *ev = event_json("evt-async-1", "create_invoice", "DEAL", 1001, H_REALM_US1,
                          "\"payment_terms\":\"Net 30\",\"create_missing_products\":\"true\"");
    struct scheduler_options so = {
        .threads = 1,
        .max_in_flight = 10,
        .max_in_flight_per_partition = 10,
        .handler = pipeline_sched_handler,
        .opaque = E.p,
        .thread_new = pipeline_sched_thread_new,
        .thread_free = pipeline_sched_thread_free,
    };
    struct inbound_msg m = {
        .topic = "hsqb.actions",
        .partition = 0,
        .offset = 42,
        .timestamp_ms = 1772359200000LL,
        .key = "k",
        .key_len = 1,
        .value = ev,
        .value_len = strlen(ev),
    };
    char err[256];
    struct scheduler *s = scheduler_new(&so, err, sizeof err);
    struct sched_partition *part;
    struct json_object *r;
    int64_t commit = -1;
    int invoices = qbo_rows(H_REALM_US1, "SELECT * FROM Invoice");
    (void)state;

    assert_non_null(s);
    part = scheduler_partition_add(s, "hsqb.actions", 0);
    assert_int_equal(scheduler_submit(s, part, &m, NULL, NULL, err, sizeof err), SCHED_ACCEPTED);
    assert_int_equal(scheduler_wait_idle(s, part, 20000), 0);
    scheduler_partition_state(s, part, NULL, &commit);
    assert_int_equal(commit, 43); /* completed: the report came */
    r = last_result(1);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    assert_string_equal(tp_str_at(r, "id"), "evt-async-1:result");
    assert_int_equal(qbo_rows(H_REALM_US1, "SELECT * FROM Invoice"), invoices + 1);
    json_object_put(r);
    scheduler_free(s);
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
    assert_string_equal(tp_str_at(r, "data.qbo.entity"), "Estimate");
    assert_string_equal(tp_str_at(r, "data.object.type"), "QUOTE");
    assert_int_equal(json_object_get_int64(tp_at(r, "data.qbo.total_cents")), 205397);
    json_object_put(r);
    /* contact without email, fractional quantity, percentage discount */
    assert_int_equal(handle(ev2), PIPELINE_DONE);
    r = last_result(2);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    assert_string_equal(tp_str_at(r, "data.qbo.entity"), "SalesReceipt");
    assert_int_equal(json_object_get_int64(tp_at(r, "data.qbo.total_cents")), 145500);
    json_object_put(r);
    free(ev);
    free(ev2);
}

static void test_product_not_found_creates_nothing(void **state)
{
    char *ev = event_json("evt-pnf-1", "create_invoice", "DEAL", 1001, H_REALM_US1,
                          "\"create_missing_products\":\"false\"");
    struct json_object *r;
    struct tp_kmsg *d;
    size_t n;
    char b[256];
    (void)state;

    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.failed");
    assert_string_equal(tp_str_at(r, "data.error.code"), "PRODUCT_NOT_FOUND");
    assert_non_null(strstr(tp_str_at(r, "data.error.message"), "Setup fee"));
    assert_int_equal(json_object_array_length(tp_at(r, "data.error.details.line_items")), 1);
    assert_int_equal(qbo_posts(), 0); /* not even the customer */
    json_object_put(r);
    d = read_topic(DLQ, &n);
    assert_int_equal(n, 1);
    assert_string_equal(d[0].value, ev); /* the original bytes */
    assert_string_equal(tp_hdr(&d[0], "hsqb-error-code", b, sizeof b), "PRODUCT_NOT_FOUND");
    assert_string_equal(tp_hdr(&d[0], "hsqb-event-id", b, sizeof b), "evt-pnf-1");
    assert_string_equal(tp_hdr(&d[0], "hsqb-original-topic", b, sizeof b), "hsqb.actions");
    assert_string_equal(tp_hdr(&d[0], "hsqb-attempts", b, sizeof b), "1");
    assert_string_equal(tp_hdr(&d[0], "hsqb-consumer-group", b, sizeof b), "hsqb-test");
    tp_free_msgs(d, n);
    free(ev);
}

static void expect_failure(const char *id, const char *action, const char *type, int64_t obj,
                           const char *realm, const char *inputs, const char *code, size_t nth)
{
    char *ev = event_json(id, action, type, obj, realm, inputs);
    struct json_object *r;

    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(nth);
    assert_string_equal(tp_str_at(r, "data.error.code"), code);
    assert_false(json_object_get_boolean(tp_at(r, "data.error.retryable")));
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
    /* quote 2003 is a DRAFT: refused before its (missing) contact matters */
    expect_failure("evt-nli", "create_estimate", "QUOTE", 2003, H_REALM_US1, NULL,
                   "QUOTE_STATUS_NOT_ALLOWED", 5);
    /* an approved quote without a contact */
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/seed",
                             "{\"hubspot\":{\"portals\":[{\"portalId\":" PORTAL ",\"objects\":{"
                             "\"line_items\":[{\"id\":\"7990\",\"properties\":{\"name\":\"Widget\","
                             "\"quantity\":\"1\",\"price\":\"5\",\"amount\":\"5.00\"}}],"
                             "\"quotes\":[{\"id\":\"2099\",\"properties\":{\"hs_status\":"
                             "\"APPROVED\"},\"associations\":{\"line_items\":[\"7990\"]}}]}}]}}",
                             NULL),
                     200);
    expect_failure("evt-qnc", "create_estimate", "QUOTE", 2099, H_REALM_US1, NULL, "NO_CONTACT",
                   6);
    assert_int_equal(qbo_posts(), 0);
}

static void test_invalid_event_keeps_raw_bytes(void **state)
{
    static const char junk[] = "not json at all \x01";
    struct json_object *r;
    struct tp_kmsg *d;
    size_t n;
    (void)state;

    assert_int_equal(handle_hdrs(junk, sizeof junk - 1, NULL, NULL), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(tp_str_at(r, "data.error.code"), "INVALID_EVENT");
    assert_string_equal(tp_str_at(r, "id"), "hsqb.actions:0:100:result");
    assert_null(tp_at(r, "subject"));
    json_object_put(r);
    d = read_topic(DLQ, &n);
    assert_int_equal(n, 1);
    assert_int_equal(d[0].len, sizeof junk - 1);
    assert_memory_equal(d[0].value, junk, sizeof junk - 1);
    tp_free_msgs(d, n);
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
    assert_string_equal(tp_str_at(r, "data.error.code"), "UNSUPPORTED_OBJECT_TYPE");
    assert_string_equal(tp_str_at(r, "data.object.type"), "COMMERCE_PAYMENT");
    assert_string_equal(tp_str_at(r, "subject"), PORTAL ":COMMERCE_PAYMENT:8001");
    json_object_put(r);
    /* CONTACT is outside the result contract's vocabulary: reported as INVALID_EVENT */
    assert_int_equal(handle(ev2), PIPELINE_DONE);
    r = last_result(2);
    assert_string_equal(tp_str_at(r, "data.error.code"), "INVALID_EVENT");
    assert_string_equal(tp_str_at(r, "data.input_id"), "evt-contact");
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
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    assert_int_equal(json_object_get_int(tp_at(r, "data.attempts")), 2);
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
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
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
    struct json_object *r, *item;
    const char *body;
    struct api_error err;
    (void)state;

    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(tp_str_at(r, "data.error.code"), "PRODUCT_NOT_FOUND");
    json_object_put(r);
    /* a plain redelivery re-publishes the stored failure */
    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(2);
    assert_string_equal(tp_str_at(r, "data.error.code"), "PRODUCT_NOT_FOUND");
    json_object_put(r);
    /* the operator fixes the cause (creates the product) and replays the dead letter */
    body = "{\"Name\":\"Setup fee\",\"Type\":\"Service\","
           "\"IncomeAccountRef\":{\"value\":\"79\"}}";
    assert_int_equal(qbo_create(H_IO(E.http, H.redis), E.q,
                                &(struct qbo_req){H_REALM_US1, "item", NULL, body, strlen(body)},
                                &item, &err),
                     0);
    json_object_put(item);
    rd_kafka_header_add(h, "hsqb-replay-of", -1, "hsqb.actions.dlq:0:0", -1);
    rd_kafka_header_add(h, "hsqb-replay-count", -1, "1", -1);
    assert_int_equal(handle_hdrs(ev, strlen(ev), h, NULL), PIPELINE_DONE);
    r = last_result(3);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    json_object_put(r);
    /* replaying a success again only re-publishes it */
    assert_int_equal(handle_hdrs(ev, strlen(ev), h, NULL), PIPELINE_DONE);
    r = last_result(4);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    json_object_put(r);
    assert_int_equal(qbo_rows(H_REALM_US1, "SELECT * FROM Invoice WHERE TxnDate = '2026-03-01'"),
                     1);
    rd_kafka_headers_destroy(h);
    free(ev);
}

/* ---- tenants (worker/tenancy.h) ------------------------------------------------------- */

#define OTHER_PORTAL 243987001

/* Requests the sandbox saw, of every API (HubSpot, QBO, Intuit's token endpoint). */
static int api_requests(void)
{
    return h_count("vendor=hubspot", NULL) + h_count("vendor=qbo", NULL) +
           h_count("vendor=oauth", NULL);
}

static void rebind(const char *realm, int64_t from, int64_t to)
{
    char e[256];

    assert_int_equal(tenancy_unbind(H.redis, from, realm, e, sizeof e), 0);
    if (to)
        h_bind(to, (const char *const[]){realm, NULL});
}

/* The nth result is a refusal with code, naming the realm, not retryable. */
static void expect_refusal(size_t nth, const char *code, const char *realm)
{
    struct json_object *r = last_result(nth);

    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.failed");
    assert_string_equal(tp_str_at(r, "data.error.code"), code);
    assert_false(json_object_get_boolean(tp_at(r, "data.error.retryable")));
    assert_string_equal(tp_str_at(r, "data.realm_id"), realm);
    assert_int_equal(json_object_get_int(tp_at(r, "data.attempts")), 1);
    assert_null(strstr(tp_str_at(r, "data.error.message"), "243987001"));
    json_object_put(r);
}

/* A realm bound to another portal, a realm bound to none, a portal without credentials:
 * each event fails at once with its code and a dead letter, and the sandbox saw no
 * request at all. Once bound, a replay of the refused event books it. */
static void test_tenant_refusals_make_no_call(void **state)
{
    char *other = event_json("evt-ten-other", "create_invoice", "DEAL", 1005, H_REALM_CA, NULL);
    char *unbound =
        event_json("evt-ten-unbound", "create_invoice", "DEAL", 1005, H_REALM_US2, NULL);
    char *stranger =
        tp_event_json("evt-ten-portal", "create_invoice", 555, "DEAL", 1005, H_REALM_US1, NULL);
    rd_kafka_headers_t *h = rd_kafka_headers_new(2);
    struct tp_kmsg *d;
    char code[64];
    size_t n;
    struct json_object *r;
    (void)state;

    rebind(H_REALM_CA, PORTAL_ID, OTHER_PORTAL);
    rebind(H_REALM_US2, PORTAL_ID, 0);
    assert_int_equal(handle(other), PIPELINE_DONE);
    expect_refusal(1, "REALM_NOT_ALLOWED", H_REALM_CA);
    assert_int_equal(handle(unbound), PIPELINE_DONE);
    expect_refusal(2, "REALM_NOT_ALLOWED", H_REALM_US2);
    assert_int_equal(handle(stranger), PIPELINE_DONE);
    expect_refusal(3, "PORTAL_NOT_CONNECTED", H_REALM_US1);
    assert_int_equal(api_requests(), 0);
    d = read_topic(DLQ, &n);
    assert_int_equal(n, 3);
    assert_string_equal(tp_hdr(&d[0], "hsqb-error-code", code, sizeof code), "REALM_NOT_ALLOWED");
    assert_string_equal(tp_hdr(&d[2], "hsqb-error-code", code, sizeof code),
                        "PORTAL_NOT_CONNECTED");
    tp_free_msgs(d, n);
    /* a redelivery re-publishes the refusal, still without a call */
    assert_int_equal(handle(unbound), PIPELINE_DONE);
    expect_refusal(4, "REALM_NOT_ALLOWED", H_REALM_US2);
    assert_int_equal(api_requests(), 0);

    /* the operator binds the realm and replays the dead letter: booked */
    h_bind(PORTAL_ID, (const char *const[]){H_REALM_US2, NULL});
    rd_kafka_header_add(h, "hsqb-replay-of", -1, "hsqb.actions.dlq:0:1", -1);
    rd_kafka_header_add(h, "hsqb-replay-count", -1, "1", -1);
    assert_int_equal(handle_hdrs(unbound, strlen(unbound), h, NULL), PIPELINE_DONE);
    r = last_result(5);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    assert_string_equal(tp_str_at(r, "data.realm_id"), H_REALM_US2);
    json_object_put(r);
    rd_kafka_headers_destroy(h);
    free(other);
    free(unbound);
    free(stranger);
}

/* The upgrade setting tenancy.allow_unbound: an unbound realm is booked as before, a
 * realm bound to another portal is refused all the same. */
static void test_allow_unbound_upgrade(void **state)
{
    char *unbound = event_json("evt-up-unbound", "create_invoice", "DEAL", 1005, H_REALM_US2, NULL);
    char *other = event_json("evt-up-other", "create_invoice", "DEAL", 1005, H_REALM_CA, NULL);
    struct json_object *r;
    int before;
    (void)state;

    rebind(H_REALM_US2, PORTAL_ID, 0);
    rebind(H_REALM_CA, PORTAL_ID, OTHER_PORTAL);
    assert_int_equal(handle(unbound), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    json_object_put(r);
    before = api_requests();
    assert_int_equal(handle(other), PIPELINE_DONE);
    expect_refusal(2, "REALM_NOT_ALLOWED", H_REALM_CA);
    assert_int_equal(api_requests(), before);
    free(unbound);
    free(other);
}

static int setup_allow_unbound(void **state)
{
    extra_flag = "--tenancy.allow_unbound=true";
    return setup(state);
}

/* An event of the ingress: the same event with its source rewritten (caller frees). */
static char *ingress_event(const char *id, int64_t obj)
{
    char *ev = event_json(id, "create_invoice", "DEAL", obj, H_REALM_US1, NULL), *out = NULL;
    char *at = strstr(ev, "hubspot://");

    assert_non_null(at);
    assert_true(asprintf(&out, "%.*shsqb-ingress://ingress.example%s", (int)(at - ev), ev,
                         at + strlen("hubspot:/")) > 0);
    free(ev);
    return out;
}

/* Handle ev (which frees it), expect the nth result and say whether it carries the
 * completer's marker; *code (may be NULL) receives its error code, "" for a success. */
static int marked(char *ev, size_t nth, char code[32])
{
    struct json_object *r, *v;
    int m;

    assert_int_equal(handle(ev), PIPELINE_DONE);
    free(ev);
    r = last_result(nth);
    v = tp_at(r, "data.complete_callback");
    m = v != NULL;
    if (m)
        assert_true(json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v));
    if (code)
        snprintf(code, 32, "%s", tp_at(r, "data.error") ? tp_str_at(r, "data.error.code") : "");
    json_object_put(r);
    return m;
}

/* callbacks.complete=true (all): every result is marked for the completer
 * (worker/callbacks.c); the pipeline itself never calls HubSpot's callback routes, and a
 * duplicate delivery re-publishes the marked result as it was. */
static void test_callback_marker_all(void **state)
{
    char code[32];
    (void)state;

    assert_true(
        marked(event_json("evt-cb", "create_invoice", "DEAL", 1005, H_REALM_US1, NULL), 1, NULL));
    assert_true(
        marked(event_json("evt-cb", "create_invoice", "DEAL", 1005, H_REALM_US1, NULL), 2, NULL));
    /* an UNSUPPORTED_OBJECT_TYPE names its execution: HubSpot waits on it too */
    assert_true(marked(
        event_json("evt-cb-pay", "create_invoice", "COMMERCE_PAYMENT", 8001, H_REALM_US1, NULL), 3,
        code));
    assert_string_equal(code, "UNSUPPORTED_OBJECT_TYPE");
    /* an INVALID_EVENT names no portal, so no execution to complete */
    assert_false(
        marked(event_json("evt-cb-contact", "create_invoice", "CONTACT", 301, H_REALM_US1, NULL), 4,
               code));
    assert_string_equal(code, "INVALID_EVENT");
    assert_int_equal(h_count("vendor=hubspot&path=/automation", NULL), 0);
}

/* The default, callbacks.complete=ingress: only events the ingress produced are marked. */
static void test_callback_marker_ingress_only(void **state)
{
    (void)state;
    assert_false(marked(event_json("evt-direct", "create_invoice", "DEAL", 1005, H_REALM_US1, NULL),
                        1, NULL));
    assert_true(marked(ingress_event("evt-ingress", 1005), 2, NULL));
}

static int setup_callbacks_off(void **state)
{
    extra_flag = "--callbacks.complete=off";
    return setup(state);
}

static void test_callback_marker_off(void **state)
{
    (void)state;
    assert_false(marked(ingress_event("evt-ingress-off", 1005), 1, NULL));
}

/* ---- books that match HubSpot to the cent ----------------------------------------- */

/* The document the result names, read back from QBO (caller puts). */
static struct json_object *doc_of(struct json_object *r, const char *realm, const char *entity)
{
    struct json_object *doc;
    struct api_error err;
    assert_int_equal(
        qbo_read(H_IO(E.http, H.redis), E.q, realm, entity, tp_str_at(r, "data.qbo.id"), &doc, &err),
        0);
    return doc;
}

/* The customer a document names, read back from QBO (caller puts). */
static struct json_object *customer_of(struct json_object *doc, const char *realm)
{
    struct json_object *cust;
    struct api_error err;
    assert_int_equal(qbo_read(H_IO(E.http, H.redis), E.q, realm, "customer",
                              tp_str_at(doc, "CustomerRef.value"), &cust, &err),
                     0);
    return cust;
}

/* The text of a JSON number or string at path (the exact decimal QBO stored). */
static const char *num_at(struct json_object *o, const char *path)
{
    struct json_object *v = tp_at(o, path);
    assert_non_null(v);
    return json_object_get_string(v);
}

/* Quote 2004: 10% discount, a 3% fee and a 15.00 fee, on the Automated Sales Tax realm.
 * QBO's total is HubSpot's hs_quote_amount (663.85), the discount one amount-based line,
 * the fees lines on the fee item, and an explicit zero tax so AST adds none. */
static void test_quote_discount_and_fees(void **state)
{
    char *ev = event_json("evt-q2004", "create_estimate", "QUOTE", 2004, H_REALM_AST1,
                          "\"create_missing_products\":\"true\"");
    struct json_object *r, *doc, *lines;
    int discounts = 0, fees = 0;
    (void)state;

    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    assert_int_equal(json_object_get_int64(tp_at(r, "data.qbo.total_cents")), 66385);
    doc = doc_of(r, H_REALM_AST1, "estimate");
    assert_string_equal(num_at(doc, "TotalAmt"), "663.85");
    assert_string_equal(num_at(doc, "TxnTaxDetail.TotalTax"), "0.00");
    assert_string_equal(tp_str_at(doc, "ExpirationDate"), "2024-07-31"); /* hs_expiration_date */
    lines = tp_at(doc, "Line");
    for (size_t i = 0; i < json_object_array_length(lines); i++) {
        struct json_object *l = json_object_array_get_idx(lines, i);
        const char *dt = tp_str_at(l, "DetailType");
        if (strcmp(dt, "DiscountLineDetail") == 0) {
            discounts++;
            assert_string_equal(num_at(l, "Amount"), "70.00");
            assert_non_null(strstr(tp_str_at(l, "Description"), "(10%)"));
        } else if (strcmp(dt, "SalesItemLineDetail") == 0) {
            fees += strcmp(tp_str_at(l, "SalesItemLineDetail.ItemRef.name"), "Fees") == 0;
        }
    }
    if (discounts != 1 || fees != 2)
        fail_msg("%d discount lines, %d fee lines: %s", discounts, fees,
                 json_object_to_json_string(lines));
    json_object_put(doc);
    json_object_put(r);
    free(ev);
}

/* Quote 2005: two discounts, a 1.5% quote tax and a taxable line: HubSpot's tax (quote
 * 6.94 + line 44.38) goes as TotalTax, which AST honours instead of computing its own. */
static void test_quote_taxes_are_hubspots(void **state)
{
    char *ev = event_json("evt-q2005", "create_invoice", "QUOTE", 2005, H_REALM_AST1,
                          "\"create_missing_products\":\"true\"");
    struct json_object *r, *doc, *lines;
    (void)state;

    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    assert_int_equal(json_object_get_int64(tp_at(r, "data.qbo.total_cents")), 51430);
    doc = doc_of(r, H_REALM_AST1, "invoice");
    assert_string_equal(num_at(doc, "TotalAmt"), "514.30");
    assert_string_equal(num_at(doc, "Balance"), "514.30");
    assert_string_equal(num_at(doc, "TxnTaxDetail.TotalTax"), "51.32");
    json_object_put(doc);
    /* the body sent: the quote has a tax of its own, so every line went as TAX (AST then
     * sets its own codes from the items; the TotalTax it honours is what counts) */
    assert_int_equal(h_count("vendor=qbo&method=POST&path=/v3/company/" H_REALM_AST1 "/invoice",
                             &lines),
                     1);
    assert_null(strstr(tp_str_at(json_object_array_get_idx(lines, 0), "body"), "\"NON\""));
    assert_non_null(strstr(tp_str_at(json_object_array_get_idx(lines, 0), "body"), "\"TAX\""));
    json_object_put(lines);
    json_object_put(r);
    free(ev);
}

/* A quote whose parts do not come to its total (175.00 against 175.01), a EUR deal on a
 * company without multicurrency, and tax on a company without sales tax: refused before
 * any write, each with its code. */
static void test_refusals_before_any_write(void **state)
{
    (void)state;

    expect_failure("evt-q2006", "create_invoice", "QUOTE", 2006, H_REALM_US1,
                   "\"create_missing_products\":\"true\"", "QUOTE_TOTAL_MISMATCH", 1);
    expect_failure("evt-eur-us1", "create_invoice", "DEAL", 1007, H_REALM_US1,
                   "\"create_missing_products\":\"true\"", "CURRENCY_NOT_SUPPORTED", 2);
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/seed",
                             "{\"qbo\":{\"realms\":[{\"realm_id\":\"" H_REALM_US2
                             "\",\"Preferences\":{\"TaxPrefs\":{\"UsingSalesTax\":false}}}]}}",
                             NULL),
                     200);
    expect_failure("evt-notax", "create_invoice", "DEAL", 1010, H_REALM_US2,
                   "\"create_missing_products\":\"true\"", "QBO_SALES_TAX_OFF", 3);
    assert_int_equal(qbo_posts(), 0);
}

/* The same EUR deal on the multicurrency realm: CurrencyRef EUR, and a customer of its own
 * in EUR (the realm's EUR "Ada Lovelace" is someone else: another email). */
static void test_foreign_currency_on_multicurrency(void **state)
{
    char *ev = event_json("evt-eur-mc1", "create_invoice", "DEAL", 1007, H_REALM_MC1,
                          "\"create_missing_products\":\"true\"");
    struct json_object *r, *doc, *cust;
    (void)state;

    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    assert_string_equal(tp_str_at(r, "data.qbo.currency"), "EUR");
    assert_int_equal(json_object_get_int64(tp_at(r, "data.qbo.total_cents")), 33550);
    doc = doc_of(r, H_REALM_MC1, "invoice");
    assert_string_equal(tp_str_at(doc, "CurrencyRef.value"), "EUR");
    assert_string_equal(num_at(doc, "TotalAmt"), "335.50");
    /* QBO's own rate for the day, sent: without it QBO would book 1:1 */
    assert_string_equal(num_at(doc, "ExchangeRate"), "1.08");
    assert_string_equal(num_at(doc, "HomeTotalAmt"), "362.34");
    cust = customer_of(doc, H_REALM_MC1);
    assert_string_equal(tp_str_at(cust, "CurrencyRef.value"), "EUR");
    assert_string_equal(tp_str_at(cust, "DisplayName"), "Ada Lovelace (EUR)");
    json_object_put(cust);
    json_object_put(doc);
    json_object_put(r);
    free(ev);
}

/* Deal 1009: the contact's address bills, the deal's company's ships (AST taxes by the
 * destination); the taxed line's 7.25% (32.63) is the document's tax, not AST's NY rate. */
static void test_addresses_and_line_tax(void **state)
{
    char *ev = event_json("evt-addr", "create_invoice", "DEAL", 1009, H_REALM_AST1,
                          "\"create_missing_products\":\"true\"");
    struct json_object *r, *doc, *cust;
    (void)state;

    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    assert_int_equal(json_object_get_int64(tp_at(r, "data.qbo.total_cents")), 56259);
    doc = doc_of(r, H_REALM_AST1, "invoice");
    assert_string_equal(tp_str_at(doc, "BillAddr.CountrySubDivisionCode"), "CA");
    assert_string_equal(tp_str_at(doc, "ShipAddr.CountrySubDivisionCode"), "NY");
    assert_string_equal(num_at(doc, "TxnTaxDetail.TotalTax"), "32.63");
    cust = customer_of(doc, H_REALM_AST1);
    assert_string_equal(tp_str_at(cust, "BillAddr.CountrySubDivisionCode"), "CA");
    /* the deal's company names the customer's company (not the contact's own property) */
    assert_string_equal(tp_str_at(cust, "CompanyName"), "Empire Widgets Holdings Inc");
    assert_string_equal(tp_str_at(doc, "BillEmail.Address"), "maria.garcia@example.com");
    json_object_put(cust);
    json_object_put(doc);
    json_object_put(r);
    free(ev);
}

/* A quote whose positions differ from its line items' id order: the document's lines are
 * in the seller's order. */
static void test_lines_in_quote_order(void **state)
{
    char *ev = event_json("evt-order", "create_estimate", "QUOTE", 2097, H_REALM_US1,
                          "\"create_missing_products\":\"true\"");
    static const char *const want[] = {"Third by id", "First by id", "Second by id"};
    struct json_object *r, *doc, *lines;
    size_t k = 0;
    (void)state;

    assert_int_equal(
        h_admin(HTTP_POST, "/_sandbox/seed",
                "{\"hubspot\":{\"portals\":[{\"portalId\":" PORTAL ",\"objects\":{"
                "\"line_items\":["
                "{\"id\":\"7981\",\"properties\":{\"name\":\"First by id\",\"quantity\":\"1\","
                "\"price\":\"1\",\"amount\":\"1.00\",\"hs_position_on_quote\":\"1\"}},"
                "{\"id\":\"7982\",\"properties\":{\"name\":\"Second by id\",\"quantity\":\"1\","
                "\"price\":\"2\",\"amount\":\"2.00\",\"hs_position_on_quote\":\"2\"}},"
                "{\"id\":\"7983\",\"properties\":{\"name\":\"Third by id\",\"quantity\":\"1\","
                "\"price\":\"3\",\"amount\":\"3.00\",\"hs_position_on_quote\":\"0\"}}],"
                "\"quotes\":[{\"id\":\"2097\",\"properties\":{\"hs_status\":\"APPROVED\"},"
                "\"associations\":{\"contacts\":[\"301\"],\"line_items\":[\"7981\",\"7982\","
                "\"7983\"]}}]}}]}}",
                NULL),
        200);
    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    doc = doc_of(r, H_REALM_US1, "estimate");
    lines = tp_at(doc, "Line");
    for (size_t i = 0; i < json_object_array_length(lines); i++) {
        struct json_object *l = json_object_array_get_idx(lines, i);
        if (strcmp(tp_str_at(l, "DetailType"), "SalesItemLineDetail") != 0)
            continue;
        assert_true(k < 3);
        assert_string_equal(tp_str_at(l, "Description"), want[k++]);
    }
    assert_int_equal(k, 3);
    json_object_put(doc);
    json_object_put(r);
    free(ev);
}

/* ---- budgets (budget.max_line_items, budget.max_qbo_writes) --------------------------- */

static int setup_writes_3(void **state)
{
    extra_flag = "--budget.max_qbo_writes=3";
    return setup(state);
}

static int setup_writes_4(void **state)
{
    extra_flag = "--budget.max_qbo_writes=4";
    return setup(state);
}

static int setup_lines_2(void **state)
{
    extra_flag = "--budget.max_line_items=2";
    return setup(state);
}

static int setup_lines_3(void **state)
{
    extra_flag = "--budget.max_line_items=3";
    return setup(state);
}

/* Quote 2096: three line items, each a product QBO does not have (two share one, "Budget
 * A"), and contact 301. With create_missing_products an estimate of it plans 1 customer +
 * 2 products + 1 estimate = 4 writes, and has 3 lines. */
static void seed_budget_quote(void)
{
    assert_int_equal(
        h_admin(HTTP_POST, "/_sandbox/seed",
                "{\"hubspot\":{\"portals\":[{\"portalId\":" PORTAL ",\"objects\":{"
                "\"line_items\":["
                "{\"id\":\"7971\",\"properties\":{\"name\":\"Budget A\",\"quantity\":\"1\","
                "\"price\":\"1\",\"amount\":\"1.00\"}},"
                "{\"id\":\"7972\",\"properties\":{\"name\":\"Budget A\",\"quantity\":\"2\","
                "\"price\":\"1\",\"amount\":\"2.00\"}},"
                "{\"id\":\"7973\",\"properties\":{\"name\":\"Budget B\",\"quantity\":\"1\","
                "\"price\":\"3\",\"amount\":\"3.00\"}}],"
                "\"quotes\":[{\"id\":\"2096\",\"properties\":{\"hs_status\":\"APPROVED\"},"
                "\"associations\":{\"contacts\":[\"301\"],\"line_items\":[\"7971\",\"7972\","
                "\"7973\"]}}]}}]}}",
                NULL),
        200);
}

/* The estimate of quote 2096: it succeeds (want NULL), or fails BUDGET_EXCEEDED with a
 * message containing want, having created nothing. */
static void budget_run(const char *id, const char *want)
{
    char *ev = event_json(id, "create_estimate", "QUOTE", 2096, H_REALM_US1,
                          "\"create_missing_products\":\"true\"");
    struct json_object *r;
    struct tp_kmsg *d;
    size_t n;

    seed_budget_quote();
    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    d = read_topic(DLQ, &n);
    if (!want) {
        assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
        assert_int_equal(json_object_array_length(tp_at(r, "data.qbo.created_items")), 2);
        assert_int_equal(n, 0);
    } else {
        assert_string_equal(tp_str_at(r, "type"), "hsqb.result.failed");
        assert_string_equal(tp_str_at(r, "data.error.code"), "BUDGET_EXCEEDED");
        assert_false(json_object_get_boolean(tp_at(r, "data.error.retryable")));
        if (!strstr(tp_str_at(r, "data.error.message"), want))
            fail_msg("message \"%s\" lacks \"%s\"", tp_str_at(r, "data.error.message"), want);
        assert_int_equal(n, 1); /* a dead letter like every permanent failure */
        assert_int_equal(qbo_posts(), 0); /* nothing created: not even the customer */
    }
    tp_free_msgs(d, n);
    json_object_put(r);
    free(ev);
}

/* One write over budget.max_qbo_writes: refused before the first write. */
static void test_budget_writes_over(void **state)
{
    (void)state;
    budget_run("evt-budget-w3", "up to 4 QuickBooks writes (2 products to create or "
                                "reactivate, 1 customer, 0 vendor, 1 documents, 0 email), "
                                "more than the 3 one event may make (budget.max_qbo_writes)");
}

/* Exactly at the cap: booked, within the cap. */
static void test_budget_writes_at_cap(void **state)
{
    struct json_object *reqs;
    int n, made = 0;
    (void)state;

    budget_run("evt-budget-w4", NULL);
    /* records made: a refused attempt (a DisplayName taken, 6240) creates nothing */
    n = h_count("vendor=qbo&method=POST", &reqs);
    for (int i = 0; i < n; i++) {
        int st = json_object_get_int(tp_at(json_object_array_get_idx(reqs, i), "status"));
        made += st >= 200 && st < 300;
    }
    json_object_put(reqs);
    assert_int_equal(made, 4); /* the customer, two products, the estimate */
}

/* One line over budget.max_line_items: refused on HubSpot's association list, before the
 * line items are read (and before any QBO call). */
static void test_budget_lines_over(void **state)
{
    (void)state;
    budget_run("evt-budget-l2", "QUOTE 2096 has 3 lines, more than the 2 one document may have "
                                "(budget.max_line_items)");
    assert_int_equal(h_count("vendor=hubspot&path=/crm/v3/objects/line_items/batch/read", NULL), 0);
    assert_int_equal(h_count("vendor=qbo", NULL), 0);
}

static void test_budget_lines_at_cap(void **state)
{
    (void)state;
    budget_run("evt-budget-l3", NULL);
}

/* A deal with one line item more than the worker ever reads (HUBSPOT_MAX_LINE_ITEMS), at
 * the default budget: BUDGET_EXCEEDED naming the setting (it was HUBSPOT_VALIDATION, and
 * "more than 8000 association entries" for very long lists, contradicting the setting's
 * documentation), before any line item is read and any QBO call. Found by the hostile
 * campaign (tests/integration/test_hostile.py: 10,000 line items). */
static void test_budget_lines_past_the_reading_cap(void **state)
{
    size_t cap = 64 * (HUBSPOT_MAX_LINE_ITEMS + 1) + 512, len = 0;
    char *seed = malloc(cap), *ev;
    struct json_object *r;
    struct tp_kmsg *d;
    size_t n;
    (void)state;

    assert_non_null(seed);
    len += (size_t)snprintf(seed + len, cap - len,
                            "{\"hubspot\":{\"portals\":[{\"portalId\":" PORTAL
                            ",\"objects\":{\"line_items\":[");
    for (int i = 0; i <= HUBSPOT_MAX_LINE_ITEMS; i++)
        len += (size_t)snprintf(seed + len, cap - len,
                                "%s{\"id\":\"%d\",\"properties\":{\"name\":\"Hours\"}}",
                                i ? "," : "", 990000 + i);
    len += (size_t)snprintf(seed + len, cap - len,
                            "],\"deals\":[{\"id\":\"2098\",\"properties\":{},"
                            "\"associations\":{\"contacts\":[\"301\"],\"line_items\":[");
    for (int i = 0; i <= HUBSPOT_MAX_LINE_ITEMS; i++)
        len += (size_t)snprintf(seed + len, cap - len, "%s\"%d\"", i ? "," : "", 990000 + i);
    len += (size_t)snprintf(seed + len, cap - len, "]}}]}}]}}");
    assert_true(len < cap);
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/seed", seed, NULL), 200);
    free(seed);

    ev = event_json("evt-budget-hard", "create_invoice", "DEAL", 2098, H_REALM_US1, NULL);
    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    d = read_topic(DLQ, &n);
    assert_string_equal(tp_str_at(r, "data.error.code"), "BUDGET_EXCEEDED");
    if (!strstr(tp_str_at(r, "data.error.message"), "DEAL 2098 has") ||
        !strstr(tp_str_at(r, "data.error.message"), "more than 1000 line items") ||
        !strstr(tp_str_at(r, "data.error.message"), "budget.max_line_items"))
        fail_msg("message \"%s\"", tp_str_at(r, "data.error.message"));
    assert_int_equal(n, 1);
    assert_int_equal(h_count("vendor=hubspot&path=/crm/v3/objects/line_items/batch/read", NULL), 0);
    assert_int_equal(h_count("vendor=qbo", NULL), 0);
    tp_free_msgs(d, n);
    json_object_put(r);
    free(ev);
}

/* The requestid of the n-th invoice POST to US1 (from the sandbox's request log). */
static char *invoice_requestid(size_t n)
{
    struct json_object *reqs;
    const char *q, *p;
    char *out;
    int k = h_count("vendor=qbo&method=POST&path=/v3/company/" H_REALM_US1 "/invoice", &reqs);

    assert_true((size_t)k > n);
    q = tp_str_at(json_object_array_get_idx(reqs, n), "query");
    p = strstr(q, "requestid=");
    assert_non_null(p);
    out = strndup(p + 10, strcspn(p + 10, "&"));
    json_object_put(reqs);
    return out;
}

/* A dead letter replayed after its data was fixed gets a fresh requestid generation: QBO
 * may have cached the refusal under the first one. Redeliveries keep theirs. */
static void test_replay_uses_a_fresh_requestid(void **state)
{
    char *ev = event_json("evt-rid", "create_invoice", "DEAL", 1005, H_REALM_US1, NULL);
    rd_kafka_headers_t *h = rd_kafka_headers_new(2);
    struct json_object *r;
    char *first, *replayed;
    (void)state;

    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults",
                             "{\"method\":\"POST\",\"path\":\"/v3/company/*/invoice\","
                             "\"vendor\":\"qbo\",\"times\":1,\"status\":400,\"body\":"
                             "{\"Fault\":{\"Error\":[{\"Message\":\"A business validation "
                             "error has occurred\",\"Detail\":\"Business Validation Error: the "
                             "customer is on hold\",\"code\":\"6000\"}],\"type\":\"ValidationFault\"}}}",
                             NULL),
                     201);
    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(tp_str_at(r, "data.error.code"), "QBO_VALIDATION");
    json_object_put(r);
    rd_kafka_header_add(h, "hsqb-replay-of", -1, "hsqb.actions.dlq:0:0", -1);
    rd_kafka_header_add(h, "hsqb-replay-count", -1, "1", -1);
    assert_int_equal(handle_hdrs(ev, strlen(ev), h, NULL), PIPELINE_DONE);
    r = last_result(2);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    json_object_put(r);
    first = invoice_requestid(0);
    replayed = invoice_requestid(1);
    assert_string_not_equal(first, replayed);
    assert_int_equal(strlen(replayed), 45); /* "hsqb-" and 40 hex */
    assert_int_equal(qbo_rows(H_REALM_US1, "SELECT * FROM Invoice WHERE TxnDate = '2026-03-01'"),
                     1);
    free(first);
    free(replayed);
    rd_kafka_headers_destroy(h);
    free(ev);
}

/* Custom transaction numbers: off, QBO numbers the document; on, the worker sends the
 * quote's number or the deal's pattern, and a duplicate (6140) takes the next variant
 * with no second document. The result carries the number QBO stored. */
static void test_document_numbers(void **state)
{
    char *a = event_json("evt-num-a", "create_invoice", "DEAL", 1005, H_REALM_US2, NULL);
    char *b = event_json("evt-num-b", "create_invoice", "DEAL", 1005, H_REALM_US2, NULL);
    char *q = event_json("evt-num-q", "create_estimate", "QUOTE", 2004, H_REALM_US2,
                         "\"create_missing_products\":\"true\"");
    char *off = event_json("evt-num-off", "create_invoice", "DEAL", 1005, H_REALM_US1, NULL);
    struct json_object *r, *doc;
    (void)state;

    assert_int_equal(handle(off), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(tp_str_at(r, "data.qbo.doc_number"), "1037"); /* QBO's next */
    json_object_put(r);
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/seed",
                             "{\"qbo\":{\"realms\":[{\"realm_id\":\"" H_REALM_US2
                             "\",\"Preferences\":{\"TaxPrefs\":{\"UsingSalesTax\":true},"
                             "\"SalesFormsPrefs\":{\"CustomTxnNumbers\":true}}}]}}",
                             NULL),
                     200);
    assert_int_equal(handle(a), PIPELINE_DONE);
    r = last_result(2);
    assert_string_equal(tp_str_at(r, "data.qbo.doc_number"), "D1005");
    doc = doc_of(r, H_REALM_US2, "invoice");
    assert_string_equal(tp_str_at(doc, "DocNumber"), "D1005");
    json_object_put(doc);
    json_object_put(r);
    /* the same deal invoiced by another event: D1005 is taken, D1005-2 */
    assert_int_equal(handle(b), PIPELINE_DONE);
    r = last_result(3);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    assert_string_equal(tp_str_at(r, "data.qbo.doc_number"), "D1005-2");
    json_object_put(r);
    assert_int_equal(qbo_rows(H_REALM_US2, "SELECT * FROM Invoice WHERE DocNumber = 'D1005-2'"), 1);
    assert_int_equal(handle(q), PIPELINE_DONE);
    r = last_result(4);
    assert_string_equal(tp_str_at(r, "data.qbo.doc_number"), "Q-2004"); /* hs_quote_number */
    json_object_put(r);
    free(a);
    free(b);
    free(q);
    free(off);
}

/* A term the worker has cached is made inactive (and replaced) in QBO: the 610 makes it
 * forget the term too, find the new one and book; no stale id until the cache expires. */
static void test_610_forgets_the_term(void **state)
{
    char *a = event_json("evt-t610-a", "create_invoice", "DEAL", 1005, H_REALM_US1,
                         "\"payment_terms\":\"Net 15\"");
    char *b = event_json("evt-t610-b", "create_invoice", "DEAL", 1002, H_REALM_US1,
                         "\"payment_terms\":\"Net 15\",\"create_missing_products\":\"true\"");
    struct json_object *r, *t, *inv;
    struct api_error err;
    const char *old = "{\"Id\":\"2\",\"SyncToken\":\"0\",\"sparse\":true,\"Active\":false,"
                      "\"Name\":\"Net 15 (old)\"}";
    const char *fresh = "{\"Name\":\"Net 15\",\"DueDays\":15}";
    (void)state;

    assert_int_equal(handle(a), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    json_object_put(r);
    assert_int_equal(qbo_update(H_IO(E.http, H.redis), E.q,
                                &(struct qbo_req){H_REALM_US1, "term", NULL, old, strlen(old)},
                                NULL, &err),
                     0);
    assert_int_equal(qbo_create(H_IO(E.http, H.redis), E.q,
                                &(struct qbo_req){H_REALM_US1, "term", NULL, fresh, strlen(fresh)},
                                &t, &err),
                     0);
    assert_int_equal(handle(b), PIPELINE_DONE);
    r = last_result(2);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    inv = doc_of(r, H_REALM_US1, "invoice");
    assert_string_equal(tp_str_at(inv, "SalesTermRef.value"), tp_str_at(t, "Id"));
    json_object_put(inv);
    json_object_put(t);
    json_object_put(r);
    free(a);
    free(b);
}

/* Crash recovery when QBO refuses the narrow lookup (CustomerRef is tagged filterable
 * for desktop only): the wide one (TxnDate) finds the invoice; and when every lookup is
 * refused, the create goes out with its requestid, which QBO dedups. Never a second
 * invoice, never a permanent failure. */
static void test_recovery_lookup_falls_back(void **state)
{
    static const char refused[] =
        "{\"method\":\"GET\",\"path\":\"/v3/company/*/query\",\"vendor\":\"qbo\","
        "\"times\":%d,\"status\":400,\"body\":{\"Fault\":{\"Error\":[{\"Message\":"
        "\"Invalid query\",\"Detail\":\"QueryValidationError: property 'CustomerRef' is "
        "not queryable\",\"code\":\"4001\"}],\"type\":\"ValidationFault\"}}}";
    static const char lost[] = "{\"method\":\"POST\",\"path\":\"/v3/company/*/invoice\","
                               "\"phase\":\"after\",\"drop\":true,\"times\":2}";
    static const char *const realms[2] = {H_REALM_US1, H_REALM_US2};
    char rule[1024], id[32];
    struct json_object *r;
    (void)state;

    for (int k = 0; k < 2; k++) {
        /* a first invoice of the deal warms the caches: the recovery lookup is then the
         * only query of the second event */
        char *warm, *ev;
        snprintf(id, sizeof id, "evt-warm-%d", k);
        warm = event_json(id, "create_invoice", "DEAL", 1005, realms[k], NULL);
        snprintf(id, sizeof id, "evt-narrow-%d", k);
        ev = event_json(id, "create_invoice", "DEAL", 1005, realms[k], NULL);
        assert_int_equal(handle(warm), PIPELINE_DONE);
        json_object_put(last_result((size_t)(2 * k + 1)));
        assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults", lost, NULL), 201);
        /* k = 0: the narrow lookup is refused, the wide one finds the invoice; k = 1:
         * every lookup is refused, the requestid keeps it to one invoice */
        snprintf(rule, sizeof rule, refused, k == 0 ? 1 : 100);
        assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults", rule, NULL), 201);
        assert_int_equal(handle(ev), PIPELINE_DONE);
        r = last_result((size_t)(2 * k + 2));
        assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
        json_object_put(r);
        assert_int_equal(h_admin(HTTP_DELETE, "/_sandbox/faults", NULL, NULL), 204);
        assert_int_equal(qbo_rows(realms[k], "SELECT * FROM Invoice WHERE TxnDate = '2026-03-01'"),
                         2);
        free(warm);
        free(ev);
    }
}

/* The income account of the item a result reports created first. */
static char *created_item_income(struct json_object *r, const char *realm)
{
    struct json_object *item;
    struct api_error err;
    char *out;

    assert_int_equal(qbo_read(H_IO(E.http, H.redis), E.q, realm, "item",
                              tp_str_at(json_object_array_get_idx(
                                            tp_at(r, "data.qbo.created_items"), 0),
                                        "id"),
                              &item, &err),
                     0);
    out = strdup(tp_str_at(item, "IncomeAccountRef.value"));
    json_object_put(item);
    return out;
}

/* Created products: the event's income_account, else discovery prefers a sales income
 * account over a lower-Id Income account of another kind. */
static void test_income_account_of_created_items(void **state)
{
    char *a = event_json("evt-inc-a", "create_invoice", "DEAL", 1004, H_REALM_US1,
                         "\"create_missing_products\":\"true\"");
    char *b = event_json("evt-inc-b", "create_estimate", "DEAL", 1002, H_REALM_US1,
                         "\"create_missing_products\":\"true\",\"income_account\":\"Services\"");
    struct json_object *r;
    char *inc;
    (void)state;

    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/seed",
                             "{\"qbo\":{\"realms\":[{\"realm_id\":\"" H_REALM_US1
                             "\",\"Account\":[{\"Id\":\"70\",\"Name\":\"Other Income\","
                             "\"AccountType\":\"Income\",\"AccountSubType\":"
                             "\"OtherPrimaryIncome\"}]}]}}",
                             NULL),
                     200);
    assert_int_equal(handle(a), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    inc = created_item_income(r, H_REALM_US1);
    assert_string_equal(inc, "79"); /* Sales (SalesOfProductIncome), not 70 */
    free(inc);
    json_object_put(r);
    assert_int_equal(handle(b), PIPELINE_DONE);
    r = last_result(2);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    inc = created_item_income(r, H_REALM_US1);
    assert_string_equal(inc, "80"); /* the event's "Services" */
    free(inc);
    json_object_put(r);
    free(a);
    free(b);
}

/* email_document: QBO emails the invoice to the contact once, also when the answer of the
 * send was lost and the event runs again (the document then says EmailSent); a contact
 * without an address is refused before anything is written. */
static void test_email_document(void **state)
{
    char *ev = event_json("evt-mail", "create_invoice", "DEAL", 1005, H_REALM_US1,
                          "\"email_document\":\"true\"");
    char *noaddr = event_json("evt-mail-none", "create_estimate", "DEAL", 1002, H_REALM_US1,
                              "\"email_document\":\"true\",\"create_missing_products\":\"true\"");
    struct json_object *r, *doc, *sends;
    const char *q;
    (void)state;

    /* the first send's answer is lost: the event is retried and must not send again */
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults",
                             "{\"method\":\"POST\",\"path\":\"/v3/company/*/invoice/*/send\","
                             "\"phase\":\"after\",\"drop\":true,\"times\":2}",
                             NULL),
                     201);
    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    doc = doc_of(r, H_REALM_US1, "invoice");
    assert_string_equal(tp_str_at(doc, "EmailStatus"), "EmailSent");
    json_object_put(doc);
    json_object_put(r);
    assert_int_equal(h_count("vendor=qbo&method=POST&path=/v3/company/" H_REALM_US1 "/invoice/",
                             &sends),
                     1 + 1); /* the drop is retried once by libcurl on a reused connection */
    q = tp_str_at(json_object_array_get_idx(sends, 0), "query");
    assert_non_null(strstr(q, "sendTo="));
    json_object_put(sends);
    /* contact 1002's has no email: refused, nothing written */
    assert_int_equal(handle(noaddr), PIPELINE_DONE);
    r = last_result(2);
    assert_string_equal(tp_str_at(r, "data.error.code"), "HUBSPOT_VALIDATION");
    assert_non_null(strstr(tp_str_at(r, "data.error.message"), "email_document"));
    json_object_put(r);
    assert_int_equal(qbo_rows(H_REALM_US1, "SELECT * FROM Estimate WHERE TxnDate = '2026-03-01'"),
                     0);
    free(ev);
    free(noaddr);
}

/* An event at 23:30 in California on the last day of January is January's revenue: the
 * portal's time zone (HubSpot's account details: America/Los_Angeles) dates it; a realm
 * listed in dates.time_zone_by_realm uses that zone instead. */
/* The TxnDate of an invoice of deal 1005 on US1 for an event at 2026-02-01T07:30:00Z
 * (2026-01-31T23:30:00-08:00 in Los Angeles). */
static void expect_txn_date_at_month_end(const char *id, const char *want)
{
    char *ev = event_json(id, "create_invoice", "DEAL", 1005, H_REALM_US1, NULL);
    char *p = strstr(ev, "2026-03-01T10:00:00Z");
    struct json_object *r, *doc;

    assert_non_null(p);
    memcpy(p, "2026-02-01T07:30:00Z", 20);
    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    doc = doc_of(r, H_REALM_US1, "invoice");
    assert_string_equal(tp_str_at(doc, "TxnDate"), want);
    json_object_put(doc);
    json_object_put(r);
    free(ev);
}

static void test_local_dates(void **state)
{
    (void)state;
    expect_txn_date_at_month_end("evt-local", "2026-01-31");
    assert_int_equal(h_count("vendor=hubspot&path=/account-info/v3/details", NULL), 1);
}

static int setup_tokyo(void **state)
{
    extra_flag = "--dates.time_zone_by_realm=" H_REALM_US1 "=Asia/Tokyo";
    return setup(state);
}

/* The same instant for a realm the settings put in Tokyo: already 1 February there. */
static void test_local_dates_realm_override(void **state)
{
    (void)state;
    expect_txn_date_at_month_end("evt-tokyo", "2026-02-01");
    assert_int_equal(h_count("vendor=hubspot&path=/account-info", NULL), 0);
}

/* The company's settings page (worker/company.h) puts it in Honolulu: its zone comes
 * before the setting's Tokyo, so the same instant is still 31 January. */
static void test_local_dates_company_zone(void **state)
{
    struct company_defaults d = {.time_zone = "Pacific/Honolulu"};
    char e[256];
    (void)state;

    assert_int_equal(
        company_defaults_save(H.redis, H_REALM_US1, PORTAL_ID, &d, clock_wall_ms(), e, sizeof e), 0);
    expect_txn_date_at_month_end("evt-honolulu", "2026-01-31");
    assert_int_equal(h_count("vendor=hubspot&path=/account-info", NULL), 0);
}

/* QBO books a total other than HubSpot's (here: its answer says so): never succeeded. */
static void test_qbo_total_mismatch_is_a_failure(void **state)
{
    char *ev = event_json("evt-mm", "create_invoice", "DEAL", 1005, H_REALM_US1, NULL);
    struct json_object *r;
    (void)state;

    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults",
                             "{\"method\":\"POST\",\"path\":\"/v3/company/*/invoice\","
                             "\"vendor\":\"qbo\",\"phase\":\"after\",\"status\":200,\"body\":"
                             "{\"Invoice\":{\"Id\":\"9999\",\"TotalAmt\":1.00,\"Balance\":1.00}}}",
                             NULL),
                     201);
    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.failed");
    assert_string_equal(tp_str_at(r, "data.error.code"), "QBO_TOTAL_MISMATCH");
    assert_string_equal(tp_str_at(r, "data.error.details.qbo_id"), "9999");
    assert_string_equal(tp_str_at(r, "data.error.details.qbo_total"), "1.00");
    assert_non_null(strstr(tp_str_at(r, "data.error.message"), "9999"));
    json_object_put(r);
    free(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_invoice_from_deal_then_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scheduled_result_completes_on_its_delivery_report,
                                        setup, teardown),
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
        cmocka_unit_test_setup_teardown(test_tenant_refusals_make_no_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allow_unbound_upgrade, setup_allow_unbound,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_callback_marker_all, setup_callbacks, teardown),
        cmocka_unit_test_setup_teardown(test_callback_marker_ingress_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_marker_off, setup_callbacks_off, teardown),
        cmocka_unit_test_setup_teardown(test_quote_discount_and_fees, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quote_taxes_are_hubspots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals_before_any_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_currency_on_multicurrency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_qbo_total_mismatch_is_a_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_addresses_and_line_tax, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lines_in_quote_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_writes_over, setup_writes_3, teardown),
        cmocka_unit_test_setup_teardown(test_budget_writes_at_cap, setup_writes_4, teardown),
        cmocka_unit_test_setup_teardown(test_budget_lines_over, setup_lines_2, teardown),
        cmocka_unit_test_setup_teardown(test_budget_lines_at_cap, setup_lines_3, teardown),
        cmocka_unit_test_setup_teardown(test_budget_lines_past_the_reading_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_uses_a_fresh_requestid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_document_numbers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_610_forgets_the_term, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recovery_lookup_falls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_income_account_of_created_items, setup, teardown),
        cmocka_unit_test_setup_teardown(test_email_document, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_dates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_dates_company_zone, setup_tokyo, teardown),
        cmocka_unit_test_setup_teardown(test_local_dates_realm_override, setup_tokyo, teardown),
    };
    int rc;

    log_set_level(LOG_ERROR);
    h_start();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    h_stop();
    return rc;
}
