/* test_result.c - result CloudEvents and DLQ header sets, as a consumer of hsqb.results and
 * an operator reading the DLQ would see them.
 *
 * Each built result is parsed back and checked member by member, and also written to
 * $BUILD/test-results/<name>.json (BUILD defaults to "build") so that
 * tests/schema/test_worker_results.py validates the very same bytes against
 * schemas/result-event.schema.json with Python's jsonschema.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "worker/result.h"

#include "tests/unit/worker/testutil_pipeline.h"

#define T_ID    "ap-102670506-56776413549-7-0"
#define T_KEY   "102670506:DEAL:904"
#define T_REALM "9130347596296536"
#define T_WHEN  1714558831412LL /* 2024-05-01T10:20:31.412Z */

static struct result_info base_info(void)
{
    struct result_info in = {
        .worker_source = "hsqb-worker://hsqb-workers",
        .subject =
            {
                .known = 1,
                .input_id = T_ID,
                .action = ACTION_CREATE_INVOICE,
                .portal_id = 102670506,
                .object_type = OBJECT_DEAL,
                .object_id = 904,
                .key = T_KEY,
                .realm_id = T_REALM,
            },
        .topic = "hsqb.actions",
        .partition = 3,
        .offset = 1289,
        .attempts = 1,
        .duration_ms = 842,
        .completed_at_ms = T_WHEN,
    };
    return in;
}

static struct json_object *build_ok(const struct result_info *in, const char *save_as)
{
    struct jbuf jb;
    char err[256];
    struct json_object *o;

    jbuf_init(&jb, 0);
    if (result_build(in, &jb, err, sizeof err) != 0)
        fail_msg("result_build: %s", err);
    o = json_tokener_parse(jbuf_cstr(&jb));
    assert_non_null(o);
    if (save_as)
        assert_int_equal(tp_save_json(save_as, jbuf_cstr(&jb)), 0);
    jbuf_release(&jb);
    return o;
}

static void build_refused(const struct result_info *in, const char *want)
{
    struct jbuf jb;
    char err[256] = "";

    jbuf_init(&jb, 0);
    assert_int_equal(result_build(in, &jb, err, sizeof err), -1);
    if (!strstr(err, want))
        fail_msg("error \"%s\" does not mention \"%s\"", err, want);
    jbuf_release(&jb);
}

static int64_t int_at(struct json_object *o, const char *path)
{
    struct json_object *v = tp_at(o, path);
    assert_non_null(v);
    assert_true(json_object_is_type(v, json_type_int));
    return json_object_get_int64(v);
}

/* ---- success -------------------------------------------------------------------------- */

static void test_invoice_success(void **state)
{
    struct result_item items[] = {{"31", "Consulting hour"}};
    struct result_qbo q = {
        .entity = "Invoice",
        .id = "1841",
        .doc_number = "1037",
        .total_cents = 150000,
        .currency = "USD",
        .customer_id = "58",
        .created_customer = 1,
        .created_items = items,
        .ncreated_items = 1,
    };
    struct result_info in = base_info();
    struct json_object *o, *ci;

    (void)state;
    in.qbo = &q;
    o = build_ok(&in, "invoice_succeeded");
    assert_string_equal(tp_str_at(o, "specversion"), "1.0");
    assert_string_equal(tp_str_at(o, "id"), T_ID ":result");
    assert_string_equal(tp_str_at(o, "type"), "hsqb.result.succeeded");
    assert_string_equal(tp_str_at(o, "subject"), T_KEY);
    assert_string_equal(tp_str_at(o, "time"), "2024-05-01T10:20:31.412Z");
    assert_string_equal(tp_str_at(o, "datacontenttype"), "application/json");
    assert_string_equal(tp_str_at(o, "data.status"), "succeeded");
    assert_string_equal(tp_str_at(o, "data.action"), "create_invoice");
    assert_string_equal(tp_str_at(o, "data.input_id"), T_ID);
    assert_int_equal(int_at(o, "data.portal_id"), 102670506);
    assert_string_equal(tp_str_at(o, "data.object.type"), "DEAL");
    assert_int_equal(int_at(o, "data.object.id"), 904);
    assert_string_equal(tp_str_at(o, "data.realm_id"), T_REALM);
    assert_string_equal(tp_str_at(o, "data.qbo.entity"), "Invoice");
    assert_string_equal(tp_str_at(o, "data.qbo.id"), "1841");
    assert_string_equal(tp_str_at(o, "data.qbo.doc_number"), "1037");
    assert_int_equal(int_at(o, "data.qbo.total_cents"), 150000);
    assert_string_equal(tp_str_at(o, "data.qbo.currency"), "USD");
    assert_string_equal(tp_str_at(o, "data.qbo.customer_id"), "58");
    assert_true(json_object_get_boolean(tp_at(o, "data.qbo.created_customer")));
    ci = tp_at(o, "data.qbo.created_items");
    assert_int_equal(json_object_array_length(ci), 1);
    assert_string_equal(tp_str_at(json_object_array_get_idx(ci, 0), "name"), "Consulting hour");
    assert_true(json_object_object_get_ex(tp_at(o, "data.qbo"), "payment_id", &ci) && ci == NULL);
    assert_null(tp_at(o, "data.error"));
    assert_int_equal(int_at(o, "data.attempts"), 1);
    assert_string_equal(tp_str_at(o, "data.source.topic"), "hsqb.actions");
    assert_int_equal(int_at(o, "data.source.partition"), 3);
    assert_int_equal(int_at(o, "data.source.offset"), 1289);
    assert_int_equal(int_at(o, "data.duration_ms"), 842);
    assert_string_equal(tp_str_at(o, "data.completed_at"), "2024-05-01T10:20:31.412Z");
    json_object_put(o);
}

static void test_estimate_and_receipt_from_quote(void **state)
{
    struct result_qbo q = {
        .entity = "Estimate", .id = "7", .total_cents = 0, .currency = "USD", .customer_id = "3"};
    struct result_info in = base_info();
    struct json_object *o, *v;

    (void)state;
    in.subject.action = ACTION_CREATE_ESTIMATE;
    in.subject.object_type = OBJECT_QUOTE;
    in.subject.key = "102670506:QUOTE:904";
    in.qbo = &q;
    o = build_ok(&in, "estimate_from_quote");
    assert_string_equal(tp_str_at(o, "data.object.type"), "QUOTE");
    assert_true(json_object_object_get_ex(tp_at(o, "data.qbo"), "doc_number", &v) && v == NULL);
    assert_int_equal(json_object_array_length(tp_at(o, "data.qbo.created_items")), 0);
    json_object_put(o);

    q.entity = "SalesReceipt";
    q.doc_number = "1234567890123456789012"; /* 22 > 21: not representable, written null */
    in.subject.action = ACTION_CREATE_SALES_RECEIPT;
    o = build_ok(&in, "sales_receipt_long_doc_number");
    assert_string_equal(tp_str_at(o, "data.qbo.entity"), "SalesReceipt");
    assert_true(json_object_object_get_ex(tp_at(o, "data.qbo"), "doc_number", &v) && v == NULL);
    json_object_put(o);
}

static void test_paid_invoice_needs_payment_id(void **state)
{
    struct result_qbo q = {
        .entity = "Invoice", .id = "9", .total_cents = 100, .currency = "USD", .customer_id = "3"};
    struct result_info in = base_info();
    struct json_object *o;

    (void)state;
    in.subject.action = ACTION_CREATE_PAID_INVOICE;
    in.subject.object_type = OBJECT_COMMERCE_PAYMENT;
    in.subject.key = "102670506:COMMERCE_PAYMENT:904";
    in.qbo = &q;
    build_refused(&in, "payment_id");
    q.payment_id = "10";
    o = build_ok(&in, "paid_invoice");
    assert_string_equal(tp_str_at(o, "data.qbo.payment_id"), "10");
    json_object_put(o);
    /* and never on other actions */
    in.subject.action = ACTION_CREATE_INVOICE;
    build_refused(&in, "payment_id");
}

static void test_contract_refusals(void **state)
{
    struct result_qbo q = {.entity = "Invoice", .id = "1841", .total_cents = 1, .currency = "USD"};
    struct result_error e = {.code = HSQB_ERR_NO_CONTACT, .message = "x"};
    struct result_info in = base_info();

    (void)state;
    in.qbo = &q;
    q.entity = "Estimate";
    build_refused(&in, "entity");
    q.entity = "Invoice";
    q.id = "18a1";
    build_refused(&in, "qbo.id");
    q.id = "1841";
    q.currency = "usd";
    build_refused(&in, "currency");
    q.currency = "USD";
    q.total_cents = -1;
    build_refused(&in, "negative");
    q.total_cents = 1;
    in.error = &e;
    build_refused(&in, "exactly one");
    in.qbo = NULL;
    in.subject.known = 0;
    build_refused(&in, "subject"); /* NO_CONTACT must say which event */
    in = base_info();
    in.error = &e;
    in.attempts = 0;
    build_refused(&in, "attempts");
    in.attempts = 1;
    e.details_json = "[1]";
    build_refused(&in, "details");
}

/* ---- failures ------------------------------------------------------------------------- */

static void test_product_not_found_failure(void **state)
{
    struct result_error e = {
        .code = HSQB_ERR_PRODUCT_NOT_FOUND,
        .message = "2 line items have no QuickBooks product: Gold plan (sku GOLD-1), Setup fee",
        .details_json = "{\"line_items\":[{\"id\":\"7001\",\"name\":\"Gold plan\",\"sku\":"
                        "\"GOLD-1\"},{\"id\":\"7002\",\"name\":\"Setup fee\",\"sku\":null}]}",
    };
    struct result_info in = base_info();
    struct json_object *o, *v;

    (void)state;
    in.error = &e;
    o = build_ok(&in, "failed_product_not_found");
    assert_string_equal(tp_str_at(o, "type"), "hsqb.result.failed");
    assert_string_equal(tp_str_at(o, "data.status"), "failed");
    assert_string_equal(tp_str_at(o, "data.error.code"), "PRODUCT_NOT_FOUND");
    assert_false(json_object_get_boolean(tp_at(o, "data.error.retryable")));
    assert_true(json_object_object_get_ex(tp_at(o, "data.error"), "http_status", &v) && v == NULL);
    assert_true(json_object_object_get_ex(tp_at(o, "data.error"), "upstream_id", &v) && v == NULL);
    assert_int_equal(json_object_array_length(tp_at(o, "data.error.details.line_items")), 2);
    assert_null(tp_at(o, "data.qbo"));
    assert_string_equal(tp_str_at(o, "data.realm_id"), T_REALM);
    json_object_put(o);
}

static void test_retries_exhausted_failure(void **state)
{
    struct result_error e = {
        .code = HSQB_ERR_RETRIES_EXHAUSTED,
        .message = "gave up after 4 attempts: QBO 503",
        .http_status = 503,
        .upstream_id = "1-6632ab12-5f1c2e9d",
    };
    struct result_info in = base_info();
    struct json_object *o;

    (void)state;
    in.error = &e;
    in.attempts = 4;
    o = build_ok(&in, "failed_retries_exhausted");
    assert_true(json_object_get_boolean(tp_at(o, "data.error.retryable")));
    assert_int_equal(int_at(o, "data.error.http_status"), 503);
    assert_string_equal(tp_str_at(o, "data.error.upstream_id"), "1-6632ab12-5f1c2e9d");
    assert_int_equal(int_at(o, "data.attempts"), 4);
    json_object_put(o);
    e.http_status = 42; /* not an HTTP status: null rather than a schema violation */
    o = build_ok(&in, "failed_bad_status");
    assert_true(json_object_object_get_ex(tp_at(o, "data.error"), "http_status", NULL));
    assert_null(tp_at(o, "data.error.http_status"));
    json_object_put(o);
}

static void test_undecodable_input(void **state)
{
    struct result_error e = {.code = HSQB_ERR_INVALID_EVENT,
                             .message =
                                 "(message): not valid JSON: unexpected character at byte 0"};
    struct result_info in = base_info();
    struct json_object *o;

    (void)state;
    memset(&in.subject, 0, sizeof in.subject);
    in.offset = 1290;
    in.error = &e;
    o = build_ok(&in, "failed_invalid_undecodable");
    assert_string_equal(tp_str_at(o, "id"), "hsqb.actions:3:1290:result");
    assert_null(tp_at(o, "subject"));
    assert_null(tp_at(o, "data.action"));
    assert_null(tp_at(o, "data.input_id"));
    assert_null(tp_at(o, "data.object"));
    assert_null(tp_at(o, "data.realm_id"));
    assert_string_equal(tp_str_at(o, "data.error.code"), "INVALID_EVENT");
    json_object_put(o);

    /* an invalid event whose id could be read is named by it */
    in.subject.input_id = "evt-7";
    o = build_ok(&in, "failed_invalid_with_id");
    assert_string_equal(tp_str_at(o, "id"), "evt-7:result");
    assert_string_equal(tp_str_at(o, "data.input_id"), "evt-7");
    json_object_put(o);

    /* an id that is not a valid input id is never echoed */
    in.subject.input_id = "bad id";
    o = build_ok(&in, NULL);
    assert_string_equal(tp_str_at(o, "id"), "hsqb.actions:3:1290:result");
    json_object_put(o);
}

static void test_message_one_line_redacted_capped(void **state)
{
    char big[5000], out[64];
    struct result_error e = {.code = HSQB_ERR_QBO_VALIDATION, .message = big};
    struct result_info in = base_info();
    struct json_object *o;
    const char *m;
    size_t i;

    (void)state;
    /* 2-byte characters so that the cap falls inside one */
    for (i = 0; i + 2 < sizeof big; i += 2)
        memcpy(big + i, "\xc3\xa9", 2);
    big[i] = '\0';
    in.error = &e;
    o = build_ok(&in, "failed_long_message");
    m = tp_str_at(o, "data.error.message");
    assert_true(strlen(m) <= RESULT_MESSAGE_MAX);
    assert_true(strlen(m) >= RESULT_MESSAGE_MAX - 1);
    assert_int_equal(strlen(m) % 2, 0); /* no half character */
    json_object_put(o);

    e.message = "QBO said:\nline two\r\tAuthorization: Bearer abcdef123456";
    o = build_ok(&in, "failed_multiline_message");
    m = tp_str_at(o, "data.error.message");
    assert_null(strchr(m, '\n'));
    assert_null(strchr(m, '\r'));
    assert_null(strstr(m, "abcdef123456"));
    json_object_put(o);

    e.message = "";
    o = build_ok(&in, NULL);
    assert_string_equal(tp_str_at(o, "data.error.message"), "QBO_VALIDATION");
    json_object_put(o);

    assert_string_equal(result_one_line("a\nb", out, sizeof out), "a b");
}

/* ---- DLQ headers ---------------------------------------------------------------------- */

static const char *hv(const struct kafka_header_set *h, const char *name)
{
    const char *v = NULL;
    int count = 0;
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->h[i].name, name) == 0) {
            v = h->h[i].value;
            count++;
        }
    assert_true(count <= 1); /* each name once */
    return v;
}

static void test_dlq_headers_first_failure(void **state)
{
    struct kafka_header_set h;
    struct result_dlq_info di = {
        .topic = "hsqb.actions",
        .partition = 3,
        .offset = 1289,
        .timestamp_ms = 1714558800000LL,
        .code = HSQB_ERR_PRODUCT_NOT_FOUND,
        .message = "2 line items have no QuickBooks product:\nGold plan",
        .attempts = 1,
        .now_ms = 1714558800912LL,
        .group = "hsqb-workers",
        .event_id = T_ID,
    };
    char err[128];

    (void)state;
    assert_int_equal(result_dlq_headers_build(&di, &h, err, sizeof err), 0);
    assert_string_equal(hv(&h, "hsqb-original-topic"), "hsqb.actions");
    assert_string_equal(hv(&h, "hsqb-original-partition"), "3");
    assert_string_equal(hv(&h, "hsqb-original-offset"), "1289");
    assert_string_equal(hv(&h, "hsqb-original-timestamp"), "1714558800000");
    assert_string_equal(hv(&h, "hsqb-error-code"), "PRODUCT_NOT_FOUND");
    assert_string_equal(hv(&h, "hsqb-error-message"),
                        "2 line items have no QuickBooks product: Gold plan");
    assert_string_equal(hv(&h, "hsqb-attempts"), "1");
    assert_string_equal(hv(&h, "hsqb-first-failure"), "1714558800912");
    assert_string_equal(hv(&h, "hsqb-last-failure"), "1714558800912");
    assert_string_equal(hv(&h, "hsqb-consumer-group"), "hsqb-workers");
    assert_string_equal(hv(&h, "hsqb-event-id"), T_ID);
    kafka_header_set_release(&h);
    kafka_header_set_release(&h); /* idempotent */

    di.event_id = NULL; /* undecodable: no event id header */
    di.timestamp_ms = -1;
    assert_int_equal(result_dlq_headers_build(&di, &h, err, sizeof err), 0);
    assert_null(hv(&h, "hsqb-event-id"));
    assert_string_equal(hv(&h, "hsqb-original-timestamp"), "0");
    kafka_header_set_release(&h);
}

static void test_dlq_headers_after_retry_hops(void **state)
{
    rd_kafka_headers_t *in = rd_kafka_headers_new(8);
    struct kafka_header_set h;
    struct result_inbound_meta meta;
    struct result_dlq_info di = {
        .topic = "hsqb.actions.retry",
        .partition = 0,
        .offset = 77,
        .timestamp_ms = 1714558900000LL,
        .code = HSQB_ERR_RETRIES_EXHAUSTED,
        .message = "QBO 503",
        .attempts = 8,
        .now_ms = 1714580400117LL,
        .group = "g",
        .event_id = T_ID,
    };
    char err[128];

    (void)state;
    rd_kafka_header_add(in, "content-type", -1, RESULT_CONTENT_TYPE, -1);
    rd_kafka_header_add(in, "hsqb-attempts", -1, "7", -1);
    rd_kafka_header_add(in, "hsqb-not-before", -1, "1714570000000", -1);
    rd_kafka_header_add(in, "hsqb-last-error", -1, "HTTP_503: x", -1);
    rd_kafka_header_add(in, "hsqb-first-failure", -1, "1714558800000", -1);
    rd_kafka_header_add(in, "hsqb-original-topic", -1, "hsqb.actions", -1);
    rd_kafka_header_add(in, "hsqb-original-partition", -1, "3", -1);
    rd_kafka_header_add(in, "hsqb-original-offset", -1, "1289", -1);
    rd_kafka_header_add(in, "hsqb-original-timestamp", -1, "1714558790000", -1);
    rd_kafka_header_add(in, "hsqb-replay-of", -1, "hsqb.actions.dlq:0:57", -1);
    rd_kafka_header_add(in, "hsqb-replay-count", -1, "1", -1);
    rd_kafka_header_add(in, "x-trace", -1, "a", -1);
    rd_kafka_header_add(in, "x-trace", -1, "b", -1); /* repeated: the last one travels */

    result_inbound_meta_read(in, &meta);
    assert_int_equal(meta.attempts_before, 7);
    assert_int_equal(meta.first_failure_ms, 1714558800000LL);
    assert_string_equal(meta.original_topic, "hsqb.actions");
    assert_int_equal(meta.original_partition, 3);
    assert_int_equal(meta.original_offset, 1289);
    assert_true(meta.replayed);
    assert_int_equal(meta.replay_count, 1);

    di.in_hdrs = in;
    assert_int_equal(result_dlq_headers_build(&di, &h, err, sizeof err), 0);
    /* the true origin, not the retry hop */
    assert_string_equal(hv(&h, "hsqb-original-topic"), "hsqb.actions");
    assert_string_equal(hv(&h, "hsqb-original-partition"), "3");
    assert_string_equal(hv(&h, "hsqb-original-offset"), "1289");
    assert_string_equal(hv(&h, "hsqb-original-timestamp"), "1714558790000");
    assert_string_equal(hv(&h, "hsqb-first-failure"), "1714558800000");
    assert_string_equal(hv(&h, "hsqb-last-failure"), "1714580400117");
    assert_string_equal(hv(&h, "hsqb-attempts"), "8");
    assert_null(hv(&h, "hsqb-not-before"));
    assert_null(hv(&h, "hsqb-last-error"));
    assert_string_equal(hv(&h, "content-type"), RESULT_CONTENT_TYPE);
    assert_string_equal(hv(&h, "hsqb-replay-of"), "hsqb.actions.dlq:0:57");
    assert_string_equal(hv(&h, "hsqb-replay-count"), "1");
    assert_string_equal(hv(&h, "x-trace"), "b");
    kafka_header_set_release(&h);
    rd_kafka_headers_destroy(in);
}

static void test_inbound_meta_ignores_malformed(void **state)
{
    rd_kafka_headers_t *in = rd_kafka_headers_new(4);
    struct result_inbound_meta meta;

    (void)state;
    rd_kafka_header_add(in, "hsqb-attempts", -1, "007", -1);
    rd_kafka_header_add(in, "hsqb-first-failure", -1, "-5", -1);
    rd_kafka_header_add(in, "hsqb-original-topic", -1, "t", -1); /* without its partition */
    result_inbound_meta_read(in, &meta);
    assert_int_equal(meta.attempts_before, 0);
    assert_int_equal(meta.first_failure_ms, 0);
    assert_string_equal(meta.original_topic, "");
    assert_false(meta.replayed);
    rd_kafka_headers_destroy(in);
    result_inbound_meta_read(NULL, &meta);
    assert_int_equal(meta.attempts_before, 0);
}

/* ---- the callback marker ------------------------------------------------------------- */

static void test_callback_marker(void **state)
{
    struct result_qbo q = {
        .entity = "Invoice", .id = "1841", .total_cents = 125000, .currency = "USD"};
    struct result_error e = {.code = HSQB_ERR_PRODUCT_NOT_FOUND, .message = "no product"};
    struct result_info in = base_info();
    struct json_object *o;

    (void)state;
    in.qbo = &q;
    o = build_ok(&in, NULL);
    assert_false(json_object_object_get_ex(tp_at(o, "data"), "complete_callback", NULL));
    json_object_put(o);

    in.complete_callback = 1;
    o = build_ok(&in, "invoice_succeeded_complete_callback");
    assert_true(json_object_is_type(tp_at(o, "data.complete_callback"), json_type_boolean));
    assert_true(json_object_get_boolean(tp_at(o, "data.complete_callback")));
    json_object_put(o);

    in.qbo = NULL;
    in.error = &e;
    o = build_ok(&in, "failed_complete_callback");
    assert_true(json_object_get_boolean(tp_at(o, "data.complete_callback")));
    json_object_put(o);

    /* nothing to complete without the execution: the marker is left out */
    memset(&in.subject, 0, sizeof in.subject);
    e.code = HSQB_ERR_INVALID_EVENT;
    o = build_ok(&in, "failed_invalid_not_marked");
    assert_null(tp_at(o, "data.complete_callback"));
    json_object_put(o);
}

static void test_callback_modes(void **state)
{
    const char *ingress = "hsqb-ingress://hsqb.example.com/portal/102670506/workflow/7";
    const char *other = "hubspot://portal/102670506/workflow/7";

    (void)state;
    assert_int_equal(result_callbacks_mode("ingress"), RESULT_CALLBACKS_INGRESS);
    assert_int_equal(result_callbacks_mode("all"), RESULT_CALLBACKS_ALL);
    assert_int_equal(result_callbacks_mode("true"), RESULT_CALLBACKS_ALL);
    assert_int_equal(result_callbacks_mode("off"), RESULT_CALLBACKS_OFF);
    assert_int_equal(result_callbacks_mode("false"), RESULT_CALLBACKS_OFF);
    assert_int_equal(result_callbacks_mode(NULL), RESULT_CALLBACKS_OFF);
    assert_int_equal(result_callbacks_mode("Ingress"), RESULT_CALLBACKS_OFF);

    assert_true(result_callback_wanted(RESULT_CALLBACKS_INGRESS, ingress));
    assert_false(result_callback_wanted(RESULT_CALLBACKS_INGRESS, other));
    assert_false(result_callback_wanted(RESULT_CALLBACKS_INGRESS, "hsqb-ingress:/x"));
    assert_false(result_callback_wanted(RESULT_CALLBACKS_INGRESS, NULL));
    assert_true(result_callback_wanted(RESULT_CALLBACKS_ALL, other));
    assert_true(result_callback_wanted(RESULT_CALLBACKS_ALL, NULL));
    assert_false(result_callback_wanted(RESULT_CALLBACKS_OFF, ingress));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invoice_success),
        cmocka_unit_test(test_estimate_and_receipt_from_quote),
        cmocka_unit_test(test_paid_invoice_needs_payment_id),
        cmocka_unit_test(test_contract_refusals),
        cmocka_unit_test(test_product_not_found_failure),
        cmocka_unit_test(test_retries_exhausted_failure),
        cmocka_unit_test(test_undecodable_input),
        cmocka_unit_test(test_message_one_line_redacted_capped),
        cmocka_unit_test(test_dlq_headers_first_failure),
        cmocka_unit_test(test_dlq_headers_after_retry_hops),
        cmocka_unit_test(test_inbound_meta_ignores_malformed),
        cmocka_unit_test(test_callback_marker),
        cmocka_unit_test(test_callback_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
