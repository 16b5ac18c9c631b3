/* test_event.c - the action-event decoder: every schema rule, every action, the edge cases
 * of a real stream, and error messages that name the JSON path.
 *
 * Events are built from one base event (an invoice on deal 904) plus edits at dotted
 * paths, so each test states only what differs. The schema examples themselves are run
 * through the decoder by tests/schema/test_examples.py.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/jtape.h"
#include "worker/event.h"

static const char base_event[] =
    "{\"specversion\":\"1.0\",\"id\":\"ap-102670506-56776413549-7-0\","
    "\"type\":\"hsqb.action.create_invoice\","
    "\"source\":\"hubspot://portal/102670506/workflow/192814114\","
    "\"data\":{\"callbackId\":\"ap-102670506-56776413549-7-0\","
    "\"origin\":{\"portalId\":102670506,\"actionDefinitionId\":10646377},"
    "\"context\":{\"source\":\"WORKFLOWS\",\"workflowId\":192814114},"
    "\"object\":{\"objectId\":904,\"objectType\":\"DEAL\"},"
    "\"inputFields\":{\"qbo_realm_id\":\"9130347596296536\"}}}";

struct edit {
    const char *path; /* dotted; "" = the whole document */
    const char *json; /* new value as JSON text; NULL deletes the member */
};

/* Apply edits to the base event and return its text (caller frees). */
static char *build(const struct edit *edits, size_t n)
{
    struct json_object *root = json_tokener_parse(base_event);
    char *text;

    assert_non_null(root);
    for (size_t i = 0; i < n; i++) {
        char path[256], *key, *dot;
        struct json_object *parent = root, *child;

        snprintf(path, sizeof path, "%s", edits[i].path);
        key = path;
        while ((dot = strchr(key, '.'))) {
            *dot = '\0';
            assert_true(json_object_object_get_ex(parent, key, &child));
            parent = child;
            key = dot + 1;
        }
        if (!edits[i].json) {
            json_object_object_del(parent, key);
        } else {
            struct json_object *v = json_tokener_parse(edits[i].json);
            assert_true(v || strcmp(edits[i].json, "null") == 0);
            json_object_object_add(parent, key, v);
        }
    }
    text = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
    json_object_put(root);
    return text;
}

static enum event_status decode_edits(const struct edit *edits, size_t n, struct action_event *ev,
                                      char *err, size_t errsz)
{
    char *text = build(edits, n);
    enum event_status st = event_decode(text, strlen(text), ev, err, errsz);
    free(text);
    return st;
}

#define DECODE(ev, err, ...)                                                                       \
    decode_edits((const struct edit[]){__VA_ARGS__},                                               \
                 sizeof((const struct edit[]){__VA_ARGS__}) / sizeof(struct edit), ev, err,        \
                 sizeof err)

/* Expect an invalid event whose message is exactly msg. */
#define EXPECT_INVALID(msg, ...)                                                                   \
    do {                                                                                           \
        struct action_event ev_ = {0};                                                             \
        char err_[EVENT_ERRSTR_SIZE];                                                              \
        assert_int_equal(DECODE(&ev_, err_, __VA_ARGS__), EVENT_INVALID);                          \
        assert_string_equal(err_, msg);                                                            \
    } while (0)

static const char expense_inputs[] =
    "{\"qbo_realm_id\":\"123145\",\"expense_account\":\"Bank Charges\","
    "\"paid_from_account\":\"35\",\"payment_type\":\"CreditCard\"}";

/* ---- valid events, every action ---------------------------------------------------- */

static void test_invoice_base(void **state)
{
    struct action_event ev;
    char err[EVENT_ERRSTR_SIZE];
    (void)state;

    assert_int_equal(event_decode(base_event, strlen(base_event), &ev, err, sizeof err), EVENT_OK);
    assert_string_equal(ev.id, "ap-102670506-56776413549-7-0");
    assert_int_equal(ev.action, ACTION_CREATE_INVOICE);
    assert_int_equal(ev.portal_id, 102670506);
    assert_int_equal(ev.object_type, OBJECT_DEAL);
    assert_int_equal(ev.object_id, 904);
    assert_int_equal(ev.workflow_id, 192814114);
    assert_string_equal(ev.source, "hubspot://portal/102670506/workflow/192814114");
    assert_string_equal(ev.time, "");
    assert_string_equal(ev.key, "102670506:DEAL:904");
    assert_string_equal(ev.in.realm_id, "9130347596296536");
    assert_int_equal(ev.in.customer_source, CUSTOMER_FIRST_ASSOCIATED_CONTACT);
    assert_int_equal(ev.in.create_missing_products, 0);
    assert_null(ev.in.payment_terms);
    assert_int_equal(ev.inputs_from_fields, 0);
    event_release(&ev);
    event_release(&ev); /* twice is fine */
    assert_null(ev.source);
}

static void test_invoice_all_inputs(void **state)
{
    struct action_event ev;
    char err[EVENT_ERRSTR_SIZE];
    (void)state;

    assert_int_equal(
        DECODE(&ev, err,
               {"data.inputFields", "{\"qbo_realm_id\":\"1\",\"payment_terms\":\"Net 30\","
                                    "\"customer_source\":\"contact:301\","
                                    "\"create_missing_products\":\"true\"}"},
               {"time", "\"2024-05-01T10:20:30.123+02:00\""},
               {"datacontenttype", "\"application/json\""}),
        EVENT_OK);
    assert_string_equal(ev.in.payment_terms, "Net 30");
    assert_int_equal(ev.in.customer_source, CUSTOMER_CONTACT_ID);
    assert_int_equal(ev.in.customer_contact_id, 301);
    assert_int_equal(ev.in.create_missing_products, 1);
    assert_string_equal(ev.time, "2024-05-01T10:20:30.123+02:00");
    assert_int_equal(ev.time_ms, 1714551630123LL); /* 08:20:30.123Z */
    event_release(&ev);
}

static void test_estimate_on_quote_spellings(void **state)
{
    static const char *const spellings[] = {"\"QUOTE\"", "\"0-14\"", "\"quotes\""};
    (void)state;

    for (size_t i = 0; i < 3; i++) {
        struct action_event ev;
        char err[EVENT_ERRSTR_SIZE];
        assert_int_equal(DECODE(&ev, err, {"type", "\"hsqb.action.create_estimate\""},
                                {"data.object.objectType", spellings[i]}),
                         EVENT_OK);
        assert_int_equal(ev.action, ACTION_CREATE_ESTIMATE);
        assert_int_equal(ev.object_type, OBJECT_QUOTE);
        assert_string_equal(ev.key, "102670506:QUOTE:904"); /* canonical, always */
        event_release(&ev);
    }
}

static void test_sales_receipt_on_every_object(void **state)
{
    static const char *const spellings[] = {"\"deals\"", "\"0-14\"", "\"0-101\""};
    static const char *const keys[] = {"1:DEAL:2", "1:QUOTE:2", "1:COMMERCE_PAYMENT:2"};
    (void)state;

    for (size_t i = 0; i < 3; i++) {
        struct action_event ev;
        char err[EVENT_ERRSTR_SIZE];
        assert_int_equal(DECODE(&ev, err, {"type", "\"hsqb.action.create_sales_receipt\""},
                                {"data.object.objectType", spellings[i]},
                                {"data.object.objectId", "2"}, {"data.origin.portalId", "1"},
                                {"data.inputFields",
                                 "{\"qbo_realm_id\":\"7\",\"deposit_to_account\":\"Checking\","
                                 "\"income_account\":\"Services\"}"}),
                         EVENT_OK);
        assert_string_equal(ev.key, keys[i]);
        assert_string_equal(ev.in.deposit_to_account, "Checking");
        assert_string_equal(ev.in.income_account, "Services");
        event_release(&ev);
    }
}

static void test_paid_invoice(void **state)
{
    struct action_event ev;
    char err[EVENT_ERRSTR_SIZE];
    (void)state;

    assert_int_equal(DECODE(&ev, err, {"type", "\"hsqb.action.create_paid_invoice\""},
                            {"data.object.objectType", "\"COMMERCE_PAYMENT\""}),
                     EVENT_OK);
    assert_int_equal(ev.action, ACTION_CREATE_PAID_INVOICE);
    assert_null(ev.in.deposit_to_account);
    event_release(&ev);
}

static void test_expense_inputs(void **state)
{
    struct action_event ev;
    char err[EVENT_ERRSTR_SIZE];
    (void)state;

    assert_int_equal(DECODE(&ev, err, {"type", "\"hsqb.action.create_expense\""},
                            {"data.object.objectType", "\"commerce_payments\""},
                            {"data.inputFields", expense_inputs}),
                     EVENT_OK);
    assert_string_equal(ev.in.expense_account, "Bank Charges");
    assert_string_equal(ev.in.paid_from_account, "35");
    assert_int_equal(ev.in.payment_type, PAYMENT_TYPE_CREDIT_CARD);
    assert_null(ev.in.vendor);
    assert_int_equal(ev.in.amount_source, AMOUNT_SOURCE_FEES);
    event_release(&ev);

    assert_int_equal(DECODE(&ev, err, {"type", "\"hsqb.action.create_expense\""},
                            {"data.object.objectType", "\"0-101\""},
                            {"data.inputFields", expense_inputs},
                            {"data.inputFields.payment_type", "\"Check\""},
                            {"data.inputFields.vendor", "\"Stripe, Inc.\""},
                            {"data.inputFields.amount_source", "\"net\""}),
                     EVENT_OK);
    assert_int_equal(ev.in.payment_type, PAYMENT_TYPE_CHECK);
    assert_string_equal(ev.in.vendor, "Stripe, Inc.");
    assert_int_equal(ev.in.amount_source, AMOUNT_SOURCE_NET);
    assert_string_equal(payment_type_name(ev.in.payment_type), "Check");
    assert_string_equal(amount_source_name(ev.in.amount_source), "net");
    event_release(&ev);
}

static void test_refund_receipt(void **state)
{
    struct action_event ev;
    char err[EVENT_ERRSTR_SIZE];
    (void)state;

    assert_int_equal(DECODE(&ev, err, {"type", "\"hsqb.action.create_refund_receipt\""},
                            {"data.object.objectType", "\"COMMERCE_PAYMENT\""},
                            {"data.inputFields.refund_from_account", "\"Checking\""}),
                     EVENT_OK);
    assert_string_equal(ev.in.refund_from_account, "Checking");
    event_release(&ev);
    EXPECT_INVALID("data.inputFields.refund_from_account: missing",
                   {"type", "\"hsqb.action.create_refund_receipt\""},
                   {"data.object.objectType", "\"COMMERCE_PAYMENT\""});
}

/* ---- inputFields / fields ---------------------------------------------------------- */

static void test_fields_fallback(void **state)
{
    struct action_event ev;
    char err[EVENT_ERRSTR_SIZE];
    (void)state;

    assert_int_equal(
        DECODE(&ev, err, {"data.inputFields", NULL}, {"data.fields", "{\"qbo_realm_id\":\"42\"}"}),
        EVENT_OK);
    assert_string_equal(ev.in.realm_id, "42");
    assert_int_equal(ev.inputs_from_fields, 1);
    event_release(&ev);

    assert_int_equal(DECODE(&ev, err, {"data.inputFields", "null"},
                            {"data.fields", "{\"qbo_realm_id\":\"43\"}"}),
                     EVENT_OK);
    assert_string_equal(ev.in.realm_id, "43");
    event_release(&ev);

    /* inputFields wins; fields is then ignored whatever it holds */
    assert_int_equal(DECODE(&ev, err, {"data.fields", "[1,2]"}), EVENT_OK);
    assert_string_equal(ev.in.realm_id, "9130347596296536");
    event_release(&ev);

    EXPECT_INVALID("data.inputFields: missing (and no data.fields to fall back on)",
                   {"data.inputFields", NULL});
    EXPECT_INVALID("data.fields.qbo_realm_id: missing", {"data.inputFields", NULL},
                   {"data.fields", "{}"});
    EXPECT_INVALID("data.fields: wrong type (string), expected object",
                   {"data.inputFields", "null"}, {"data.fields", "\"x\""});
    EXPECT_INVALID("data.inputFields: wrong type (array), expected object or null",
                   {"data.inputFields", "[]"}, {"data.fields", "{\"qbo_realm_id\":\"1\"}"});
}

static void test_optional_inputs_empty_or_null(void **state)
{
    struct action_event ev;
    char err[EVENT_ERRSTR_SIZE];
    (void)state;

    assert_int_equal(
        DECODE(&ev, err,
               {"data.inputFields", "{\"qbo_realm_id\":\"1\",\"payment_terms\":\"\","
                                    "\"customer_source\":null,\"create_missing_products\":\"\"}"},
               {"time", "null"}, {"datacontenttype", "null"}, {"data.context", "null"}),
        EVENT_OK);
    assert_null(ev.in.payment_terms);
    assert_int_equal(ev.in.customer_source, CUSTOMER_FIRST_ASSOCIATED_CONTACT);
    assert_int_equal(ev.in.create_missing_products, 0);
    assert_int_equal(ev.workflow_id, 0);
    event_release(&ev);
}

static void test_input_faults(void **state)
{
    (void)state;
    EXPECT_INVALID("data.inputFields.qbo_realm_id: missing", {"data.inputFields", "{}"});
    EXPECT_INVALID("data.inputFields.qbo_realm_id: wrong type (number), expected string",
                   {"data.inputFields.qbo_realm_id", "9130347596296536"});
    EXPECT_INVALID("data.inputFields.qbo_realm_id: must be 1..32 decimal digits",
                   {"data.inputFields.qbo_realm_id", "\"12 3\""});
    EXPECT_INVALID("data.inputFields.qbo_realm_id: must be 1..32 decimal digits",
                   {"data.inputFields.qbo_realm_id", "\"123456789012345678901234567890123\""});
    EXPECT_INVALID("data.inputFields.create_missing_products: \"yes\" is not one of the "
                   "allowed values",
                   {"data.inputFields.create_missing_products", "\"yes\""});
    EXPECT_INVALID("data.inputFields.create_missing_products: wrong type (boolean), expected "
                   "string",
                   {"data.inputFields.create_missing_products", "true"});
    EXPECT_INVALID("data.inputFields.customer_source: \"contact:0\": expected "
                   "first_associated_contact or contact:<id>",
                   {"data.inputFields.customer_source", "\"contact:0\""});
    EXPECT_INVALID("data.inputFields.customer_source: \"contact:\": expected "
                   "first_associated_contact or contact:<id>",
                   {"data.inputFields.customer_source", "\"contact:\""});
    EXPECT_INVALID("data.inputFields.payment_terms: control character 0x0a at offset 6",
                   {"data.inputFields.payment_terms", "\"Net 30\\n\""});
    EXPECT_INVALID("data.inputFields.payment_type: missing",
                   {"type", "\"hsqb.action.create_expense\""},
                   {"data.object.objectType", "\"COMMERCE_PAYMENT\""},
                   {"data.inputFields", expense_inputs}, {"data.inputFields.payment_type", NULL});
    EXPECT_INVALID("data.inputFields.payment_type: \"\" is not one of the allowed values",
                   {"type", "\"hsqb.action.create_expense\""},
                   {"data.object.objectType", "\"COMMERCE_PAYMENT\""},
                   {"data.inputFields", expense_inputs}, {"data.inputFields.payment_type", "\"\""});
    EXPECT_INVALID(
        "data.inputFields.expense_account: empty", {"type", "\"hsqb.action.create_expense\""},
        {"data.object.objectType", "\"COMMERCE_PAYMENT\""}, {"data.inputFields", expense_inputs},
        {"data.inputFields.expense_account", "\"\""});
}

static void test_name_length_counts_code_points(void **state)
{
    struct action_event ev;
    char err[EVENT_ERRSTR_SIZE];
    char val[2 * 501 + 3];
    (void)state;

    /* 500 x U+00E9 is 1,000 bytes but 500 characters: allowed */
    val[0] = '"';
    for (int i = 0; i < 500; i++)
        memcpy(val + 1 + 2 * i, "\xc3\xa9", 2);
    memcpy(val + 1001, "\"", 2);
    assert_int_equal(DECODE(&ev, err, {"data.inputFields.payment_terms", val}), EVENT_OK);
    assert_int_equal(strlen(ev.in.payment_terms), 1000);
    event_release(&ev);

    memcpy(val + 1001, "\xc3\xa9\"", 4);
    EXPECT_INVALID("data.inputFields.payment_terms: too long (501 characters, max 500)",
                   {"data.inputFields.payment_terms", val});
}

/* ---- envelope ---------------------------------------------------------------------- */

static void test_envelope_faults(void **state)
{
    (void)state;
    EXPECT_INVALID("specversion: \"0.3\", expected \"1.0\"", {"specversion", "\"0.3\""});
    EXPECT_INVALID("specversion: wrong type (number), expected string", {"specversion", "1.0"});
    EXPECT_INVALID("id: missing", {"id", NULL});
    EXPECT_INVALID("id: missing", {"id", "null"});
    EXPECT_INVALID("id: empty", {"id", "\"\""});
    EXPECT_INVALID("id: byte 0x20 at offset 2: must be visible ASCII (no space)",
                   {"id", "\"ap 1\""});
    EXPECT_INVALID("type: \"hsqb.action.create_bill\" is not an hsqb.action.* type",
                   {"type", "\"hsqb.action.create_bill\""});
    EXPECT_INVALID("source: missing", {"source", NULL});
    EXPECT_INVALID("source: empty", {"source", "\"\""});
    EXPECT_INVALID("time: \"2024-13-01T00:00:00Z\" is not an RFC 3339 date-time",
                   {"time", "\"2024-13-01T00:00:00Z\""});
    EXPECT_INVALID("time: \"2024-05-01T10:20:30Z?\" is not an RFC 3339 date-time",
                   {"time", "\"2024-05-01T10:20:30Z\\n\""});
    EXPECT_INVALID("datacontenttype: \"text/plain\": data must be application/json",
                   {"datacontenttype", "\"text/plain\""});
    EXPECT_INVALID("data: missing", {"data", NULL});
    EXPECT_INVALID("data: wrong type (string), expected object", {"data", "\"{}\""});
    EXPECT_INVALID("data.callbackId: differs from id",
                   {"data.callbackId", "\"ap-102670506-56776413549-7-1\""});
    EXPECT_INVALID("data.origin: missing", {"data.origin", "null"});
    EXPECT_INVALID("data.context: wrong type (array), expected object or null",
                   {"data.context", "[]"});
    EXPECT_INVALID("data.object.objectType: wrong type (number), expected string",
                   {"data.object.objectType", "3"});
}

static void test_id_length_and_time_forms(void **state)
{
    struct action_event ev;
    char err[EVENT_ERRSTR_SIZE], id[EVENT_ID_MAX + 4];
    (void)state;

    id[0] = '"';
    memset(id + 1, 'x', EVENT_ID_MAX);
    memcpy(id + 1 + EVENT_ID_MAX, "\"", 2);
    assert_int_equal(DECODE(&ev, err, {"id", id}, {"data.callbackId", id}), EVENT_OK);
    assert_int_equal(strlen(ev.id), EVENT_ID_MAX);
    event_release(&ev);
    memcpy(id + 1 + EVENT_ID_MAX, "x\"", 3);
    EXPECT_INVALID("id: too long (201 characters, max 200)", {"id", id}, {"data.callbackId", id});

    assert_int_equal(DECODE(&ev, err, {"time", "\"2024-02-29t23:59:60.123456789z\""}), EVENT_OK);
    event_release(&ev);
    /* a leap second is the first second after it (POSIX time has none): the day of the
     * real one, 2016-12-31T23:59:60Z, is 2017-01-01T00:00:00Z, and so is the same
     * instant written in another zone */
    assert_int_equal(DECODE(&ev, err, {"time", "\"2016-12-31T23:59:60Z\""}), EVENT_OK);
    assert_int_equal(ev.time_ms, 1483228800000LL);
    event_release(&ev);
    assert_int_equal(DECODE(&ev, err, {"time", "\"2016-12-31T15:59:60.500-08:00\""}), EVENT_OK);
    assert_int_equal(ev.time_ms, 1483228800500LL);
    event_release(&ev);
    assert_int_equal(DECODE(&ev, err, {"time", "\"1970-01-01T00:00:01-00:30\""}), EVENT_OK);
    assert_int_equal(ev.time_ms, 1000 + 1800 * 1000);
    event_release(&ev);
    EXPECT_INVALID("time: \"2024-05-01T10:20:30.1234567890Z\" is not an RFC 3339 date-time",
                   {"time", "\"2024-05-01T10:20:30.1234567890Z\""});
    EXPECT_INVALID("time: \"2024-05-01T10:20:30+0200\" is not an RFC 3339 date-time",
                   {"time", "\"2024-05-01T10:20:30+0200\""});
    /* the edges of four-digit years: an offset or a leap second may not leave them */
    assert_int_equal(DECODE(&ev, err, {"time", "\"9999-12-31T23:59:59.999Z\""}), EVENT_OK);
    assert_int_equal(ev.time_ms, EVENT_TIME_MAX_MS);
    event_release(&ev);
    assert_int_equal(DECODE(&ev, err, {"time", "\"0001-01-01T00:00:00Z\""}), EVENT_OK);
    assert_int_equal(ev.time_ms, EVENT_TIME_MIN_MS);
    event_release(&ev);
    EXPECT_INVALID("time: \"9999-12-31T23:59:59-23:59\" is not an RFC 3339 date-time",
                   {"time", "\"9999-12-31T23:59:59-23:59\""});
    EXPECT_INVALID("time: \"9999-12-31T23:59:60Z\" is not an RFC 3339 date-time",
                   {"time", "\"9999-12-31T23:59:60Z\""});
    EXPECT_INVALID("time: \"0001-01-01T00:00:00+00:01\" is not an RFC 3339 date-time",
                   {"time", "\"0001-01-01T00:00:00+00:01\""});
    EXPECT_INVALID("time: \"0000-06-01T00:00:00Z\" is not an RFC 3339 date-time",
                   {"time", "\"0000-06-01T00:00:00Z\""});
}

/* ---- numbers and ids --------------------------------------------------------------- */

static void test_number_rules(void **state)
{
    struct action_event ev;
    char err[EVENT_ERRSTR_SIZE];
    (void)state;

    EXPECT_INVALID("data.origin.portalId: wrong type (string), expected integer",
                   {"data.origin.portalId", "\"102670506\""});
    EXPECT_INVALID("data.origin.portalId: missing", {"data.origin.portalId", NULL});
    EXPECT_INVALID("data.origin.portalId: not an integer", {"data.origin.portalId", "1.5"});
    EXPECT_INVALID("data.origin.portalId: out of range (must be 1..9223372036854775807)",
                   {"data.origin.portalId", "0"});
    EXPECT_INVALID("data.object.objectId: out of range (must be 1..9223372036854775807)",
                   {"data.object.objectId", "-904"});
    EXPECT_INVALID("data.context.workflowId: wrong type (string), expected integer",
                   {"data.context.workflowId", "\"1\""});

    assert_int_equal(DECODE(&ev, err, {"data.object.objectId", "\"9223372036854775807\""},
                            {"data.origin.portalId", "9223372036854775807"}),
                     EVENT_OK);
    assert_int_equal(ev.object_id, INT64_MAX);
    assert_string_equal(ev.key, "9223372036854775807:DEAL:9223372036854775807");
    event_release(&ev);

    /* JSON Schema calls an integral 904.0 or 9.04e2 an integer; so do we */
    assert_int_equal(DECODE(&ev, err, {"data.object.objectId", "9.04e2"},
                            {"data.origin.portalId", "102670506.0"}),
                     EVENT_OK);
    assert_int_equal(ev.object_id, 904);
    assert_int_equal(ev.portal_id, 102670506);
    event_release(&ev);
    EXPECT_INVALID("data.origin.portalId: out of range (must be 1..9223372036854775807)",
                   {"data.origin.portalId", "9.3e18"});
    EXPECT_INVALID("data.origin.portalId: not an integer", {"data.origin.portalId", "1e400"});
}

static void test_huge_and_malformed_ids(void **state)
{
    static const char *const bad_strings[] = {"\"9223372036854775808\"",
                                              "\"0904\"",
                                              "\" 904\"",
                                              "\"+904\"",
                                              "\"-904\"",
                                              "\"\"",
                                              "\"904 \""};
    static const char huge[] = "{\"specversion\":\"1.0\",\"id\":\"a\",\"type\":"
                               "\"hsqb.action.create_invoice\",\"source\":\"s\",\"data\":{"
                               "\"callbackId\":\"a\",\"origin\":{\"portalId\":"
                               "123456789012345678901234567890},\"object\":{\"objectId\":"
                               "9223372036854775808,\"objectType\":\"DEAL\"},"
                               "\"inputFields\":{\"qbo_realm_id\":\"1\"}}}";
    struct action_event ev;
    char err[EVENT_ERRSTR_SIZE];
    (void)state;

    for (size_t i = 0; i < sizeof bad_strings / sizeof *bad_strings; i++) {
        assert_int_equal(DECODE(&ev, err, {"data.object.objectId", bad_strings[i]}), EVENT_INVALID);
        assert_non_null(strstr(err, "data.object.objectId: \""));
    }
    assert_int_equal(event_decode(huge, strlen(huge), &ev, err, sizeof err), EVENT_INVALID);
    assert_string_equal(err, "data.origin.portalId: out of range (must be 1..9223372036854775807)");
}

/* The decoder's values cap is its own: a worker with a small http.max_response_bytes (the
 * process-wide jtape cap for vendors' answers) still takes a valid event of many values,
 * up to the most EVENT_MAX_BYTES can hold. Found by the hostile campaign
 * (tests/integration/test_hostile.py, 2MiB answers: a 200,000-element array refused). */
static void test_values_cap_is_the_decoders_own(void **state)
{
    size_t n = EVENT_MAX_BYTES - 4096, len = strlen(base_event) - 1, at;
    char *text = malloc(EVENT_MAX_BYTES), err[EVENT_ERRSTR_SIZE], id[EVENT_ID_MAX + 1];
    struct action_event ev;
    (void)state;

    assert_non_null(text);
    memcpy(text, base_event, len); /* without its closing brace */
    at = len + (size_t)sprintf(text + len, ",\"pad\":[0");
    while (at + 3 < n) {
        memcpy(text + at, ",0", 2);
        at += 2;
    }
    memcpy(text + at, "]}", 2);
    at += 2;
    jtape_set_max_values(4096); /* what http.max_response_bytes=64KiB sets */
    assert_int_equal(event_decode(text, at, &ev, err, sizeof err), EVENT_OK);
    event_release(&ev);
    assert_int_equal(event_peek_id(text, at, id, sizeof id), 0);
    jtape_set_max_values(0);
    free(text);
}

/* The base event with the literal of data.context.workflowId replaced verbatim: build()
 * would pass numbers through json-c, which rounds fractions and saturates big integers. */
static enum event_status decode_workflow_id(const char *lit, struct action_event *ev, char *err,
                                            size_t errsz)
{
    static const char member[] = "\"workflowId\":192814114";
    const char *at = strstr(base_event, member);
    char text[1024];
    int n;

    assert_non_null(at);
    at += sizeof member - 1 - strlen("192814114");
    n = snprintf(text, sizeof text, "%.*s%s%s", (int)(at - base_event), base_event, lit,
                 at + strlen("192814114"));
    assert_true(n > 0 && (size_t)n < sizeof text);
    return event_decode(text, (size_t)n, ev, err, errsz);
}

/* A number is judged from its literal: an integer beyond int64 is out of range (never
 * "not an integer"), and one with a fraction or exponent by its double value, as a JSON
 * Schema validator does (so 1.00000000000000000001 is 1 and 9223372036854775807.0 is
 * 2^63). A null optional member is absent. */
static void test_number_literals(void **state)
{
#define RANGE "data.context.workflowId: out of range (must be 1..9223372036854775807)"
    static const struct {
        const char *lit;
        int64_t want; /* when err is NULL */
        const char *err;
    } cases[] = {
        {"1.00000000000000000001", 1, NULL},
        {"0.99999999999999999999", 1, NULL},
        {"4.2e1", 42, NULL},
        {"9223372036854774784.0", 9223372036854774784, NULL},
        {"null", 0, NULL},
        {"9223372036854775808", 0, RANGE},
        {"-9223372036854775809", 0, RANGE},
        {"123456789012345678901234567890", 0, RANGE},
        {"9223372036854775807.0", 0, RANGE},
        {"-0", 0, RANGE},
        {"1e-400", 0, RANGE},
        {"0.5", 0, "data.context.workflowId: not an integer"},
        {"-1e400", 0, "data.context.workflowId: not an integer"},
        {"true", 0, "data.context.workflowId: wrong type (boolean), expected integer"},
        {"{}", 0, "data.context.workflowId: wrong type (object), expected integer"},
    };
#undef RANGE
    struct action_event ev;
    char err[EVENT_ERRSTR_SIZE];
    (void)state;

    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        enum event_status st = decode_workflow_id(cases[i].lit, &ev, err, sizeof err);
        if (cases[i].err) {
            assert_int_equal(st, EVENT_INVALID);
            assert_string_equal(err, cases[i].err);
            continue;
        }
        assert_int_equal(st, EVENT_OK);
        assert_int_equal(ev.workflow_id, cases[i].want);
        event_release(&ev);
    }
}

/* A string is all of its bytes: one holding U+0000 never passes for the value before it. */
static void test_strings_holding_nul(void **state)
{
    struct action_event ev;
    char err[EVENT_ERRSTR_SIZE], id[EVENT_ID_MAX + 1];
    static const char nul_id[] = "{\"id\":\"a\\u0000\"}";
    (void)state;

    EXPECT_INVALID("specversion: \"1.0?\", expected \"1.0\"", {"specversion", "\"1.0\\u0000\""});
    EXPECT_INVALID("type: \"hsqb.action.create_invoice?\" is not an hsqb.action.* type",
                   {"type", "\"hsqb.action.create_invoice\\u0000\""});
    EXPECT_INVALID("id: byte 0x00 at offset 1: must be visible ASCII (no space)",
                   {"id", "\"a\\u0000\""}, {"data.callbackId", "\"a\\u0000\""});
    EXPECT_INVALID("data.inputFields.payment_terms: control character 0x00 at offset 3",
                   {"data.inputFields.payment_terms", "\"Net\\u0000 30\""});
    assert_int_equal(DECODE(&ev, err, {"data.object.objectType", "\"DEAL\\u0000\""}),
                     EVENT_UNSUPPORTED_OBJECT);
    assert_string_equal(err, "data.object.objectType: \"DEAL?\" is not accepted by "
                             "create_invoice (takes DEAL QUOTE)");
    assert_int_equal(event_peek_id(nul_id, strlen(nul_id), id, sizeof id), -1);
}

/* ---- object types ------------------------------------------------------------------ */

static void test_unsupported_object_type(void **state)
{
    struct action_event ev;
    char err[EVENT_ERRSTR_SIZE];
    (void)state;

    assert_int_equal(DECODE(&ev, err, {"data.object.objectType", "\"CONTACT\""}),
                     EVENT_UNSUPPORTED_OBJECT);
    assert_string_equal(err, "data.object.objectType: \"CONTACT\" is not accepted by "
                             "create_invoice (takes DEAL QUOTE)");
    assert_int_equal(event_status_error(EVENT_UNSUPPORTED_OBJECT),
                     HSQB_ERR_UNSUPPORTED_OBJECT_TYPE);
    assert_int_equal(event_status_error(EVENT_INVALID), HSQB_ERR_INVALID_EVENT);

    assert_int_equal(DECODE(&ev, err, {"type", "\"hsqb.action.create_refund_receipt\""},
                            {"data.inputFields.refund_from_account", "\"x\""}),
                     EVENT_UNSUPPORTED_OBJECT);
    assert_string_equal(err, "data.object.objectType: \"DEAL\" is not accepted by "
                             "create_refund_receipt (takes COMMERCE_PAYMENT)");
    /* case matters: "deal" is no spelling of DEAL */
    assert_int_equal(DECODE(&ev, err, {"data.object.objectType", "\"deal\""}),
                     EVENT_UNSUPPORTED_OBJECT);
    /* any other fault wins, so UNSUPPORTED_OBJECT_TYPE means "a good event, wrong workflow" */
    EXPECT_INVALID("data.inputFields.qbo_realm_id: missing",
                   {"data.object.objectType", "\"CONTACT\""}, {"data.inputFields", "{}"});
}

static void test_vocabulary_tables(void **state)
{
    enum hsqb_action a;
    enum hsqb_object_type t;
    enum hsqb_error e;
    int retryable = 0;
    (void)state;

    for (int i = 0; i < ACTION_COUNT; i++) {
        assert_int_equal(event_action_from_name(event_action_name((enum hsqb_action)i), &a), 0);
        assert_int_equal(a, i);
        assert_int_equal(event_action_from_type(event_action_type((enum hsqb_action)i), &a), 0);
        assert_int_equal(a, i);
        assert_non_null(event_action_qbo_entity((enum hsqb_action)i));
    }
    assert_int_equal(event_action_from_name("create_bill", &a), -1);
    assert_int_equal(event_action_from_name(NULL, &a), -1);
    assert_int_equal(event_action_from_type("create_invoice", &a), -1);
    assert_null(event_action_name(ACTION_COUNT));
    assert_string_equal(event_action_qbo_entity(ACTION_CREATE_EXPENSE), "Purchase");

    assert_int_equal(object_type_parse("0-101", &t), 0);
    assert_int_equal(t, OBJECT_COMMERCE_PAYMENT);
    assert_string_equal(object_type_path(t), "commerce_payments");
    assert_int_equal(object_type_parse("0-1", &t), -1);
    assert_true(event_action_accepts(ACTION_CREATE_SALES_RECEIPT, OBJECT_COMMERCE_PAYMENT));
    assert_false(event_action_accepts(ACTION_CREATE_ESTIMATE, OBJECT_COMMERCE_PAYMENT));
    assert_false(event_action_accepts(ACTION_CREATE_EXPENSE, OBJECT_DEAL));
    assert_false(event_action_accepts(ACTION_COUNT, OBJECT_DEAL));

    assert_int_equal(HSQB_ERR_COUNT, 29);
    for (int i = 0; i < HSQB_ERR_COUNT; i++) {
        assert_int_equal(hsqb_error_from_name(hsqb_error_name((enum hsqb_error)i), &e), 0);
        assert_int_equal(e, i);
        retryable += hsqb_error_retryable((enum hsqb_error)i);
    }
    assert_int_equal(retryable, 2);
    assert_true(hsqb_error_retryable(HSQB_ERR_RETRIES_EXHAUSTED));
    assert_false(hsqb_error_retryable(HSQB_ERR_QBO_REAUTH_REQUIRED));
    assert_false(hsqb_error_retryable(HSQB_ERR_REALM_NOT_ALLOWED));
    assert_false(hsqb_error_retryable(HSQB_ERR_PORTAL_NOT_CONNECTED));
    assert_false(hsqb_error_retryable(HSQB_ERR_BUDGET_EXCEEDED));
    assert_string_equal(hsqb_error_name(HSQB_ERR_BUDGET_EXCEEDED), "BUDGET_EXCEEDED");
    assert_string_equal(hsqb_error_name(HSQB_ERR_REALM_NOT_ALLOWED), "REALM_NOT_ALLOWED");
    assert_int_equal(hsqb_error_from_name("invalid_event", &e), -1);
}

static void test_event_key(void **state)
{
    char buf[EVENT_KEY_MAX];
    (void)state;

    assert_int_equal(event_key(1, OBJECT_QUOTE, 2, buf, sizeof buf), 9);
    assert_string_equal(buf, "1:QUOTE:2");
    assert_int_equal(event_key(INT64_MAX, OBJECT_COMMERCE_PAYMENT, INT64_MAX, buf, sizeof buf), 56);
    assert_int_equal(event_key(1, OBJECT_QUOTE, 2, buf, 9), -1); /* no room for the NUL */
    assert_int_equal(event_key(0, OBJECT_DEAL, 2, buf, sizeof buf), -1);
    assert_int_equal(event_key(1, OBJECT_TYPE_COUNT, 2, buf, sizeof buf), -1);
}

/* ---- the bytes of a real stream ----------------------------------------------------- */

static void test_unknown_members_ignored(void **state)
{
    struct action_event ev;
    char err[EVENT_ERRSTR_SIZE];
    (void)state;

    assert_int_equal(
        DECODE(&ev, err, {"hsqbtenant", "\"acme\""}, {"data.typedInputs", "{\"a\":{\"b\":1}}"},
               {"data.origin.extensionDefinitionId", "\"whatever\""},
               {"data.object.properties", "{\"email\":null}"},
               {"data.inputFields.unknown_input", "[1e999, 123456789012345678901234567890]"},
               {"data.somethingNew", "\"\\u0000 is fine here\""}),
        EVENT_OK);
    event_release(&ev);
}

static void test_parse_faults(void **state)
{
    static const char dup[] = "{\"id\":\"a\",\"id\":\"a\"}";
    static const char arr[] = "[{}]";
    static const char bad_utf8[] = "{\"x\":\"caf\xe9\"}";
    struct action_event ev;
    char err[EVENT_ERRSTR_SIZE];
    (void)state;

    memset(&ev, 0x5a, sizeof ev); /* untouched on failure */
    assert_int_equal(event_decode(dup, strlen(dup), &ev, err, sizeof err), EVENT_INVALID);
    assert_non_null(strstr(err, "duplicate key"));
    assert_int_equal(((unsigned char *)&ev)[0], 0x5a);
    assert_int_equal(event_decode(arr, strlen(arr), &ev, err, sizeof err), EVENT_INVALID);
    assert_string_equal(err, "(top level): wrong type (array), expected object");
    assert_int_equal(event_decode(bad_utf8, strlen(bad_utf8), &ev, err, sizeof err), EVENT_INVALID);
    assert_non_null(strstr(err, "UTF-8"));
    assert_int_equal(event_decode(NULL, 0, &ev, err, sizeof err), EVENT_INVALID);
    assert_int_equal(event_decode(base_event, strlen(base_event) - 1, &ev, err, sizeof err),
                     EVENT_INVALID);
    assert_int_equal(event_decode("{}", 2, &ev, NULL, 0), EVENT_INVALID);
    assert_int_equal(event_decode("{}", 2, &ev, err, 4), EVENT_INVALID); /* truncates */
    assert_string_equal(err, "spe");
    assert_int_equal(((unsigned char *)&ev)[0], 0x5a);
}

static char *padded_event(size_t total)
{
    size_t base = strlen(base_event), pad = total - base - strlen(",\"p\":\"\"");
    char *buf = malloc(total + 1);

    assert_non_null(buf);
    memcpy(buf, base_event, base - 1); /* without the final '}' */
    size_t n = base - 1;
    memcpy(buf + n, ",\"p\":\"", 6);
    n += 6;
    memset(buf + n, 'x', pad);
    n += pad;
    memcpy(buf + n, "\"}", 3);
    assert_int_equal(n + 2, total);
    return buf;
}

static void test_size_cap(void **state)
{
    struct action_event ev;
    char err[EVENT_ERRSTR_SIZE];
    char *buf = padded_event(EVENT_MAX_BYTES);
    (void)state;

    assert_int_equal(event_decode(buf, EVENT_MAX_BYTES, &ev, err, sizeof err), EVENT_OK);
    event_release(&ev);
    free(buf);
    buf = padded_event(EVENT_MAX_BYTES + 1);
    assert_int_equal(event_decode(buf, EVENT_MAX_BYTES + 1, &ev, err, sizeof err), EVENT_INVALID);
    assert_string_equal(err, "(message): too large (1048577 bytes, max 1048576)");
    free(buf);
}

/* The base event with member "deep" holding `levels` nested arrays (caller frees). The
 * test helper build() cannot do it: json-c's own tokener stops at depth 32. */
static char *deep_event(int levels)
{
    size_t base = strlen(base_event), n = base - 1;
    char *buf = malloc(base + 2 * (size_t)levels + 16);

    assert_non_null(buf);
    memcpy(buf, base_event, n);
    memcpy(buf + n, ",\"deep\":", 8);
    n += 8;
    memset(buf + n, '[', (size_t)levels);
    memset(buf + n + levels, ']', (size_t)levels);
    n += 2 * (size_t)levels;
    memcpy(buf + n, "}", 2);
    return buf;
}

static void test_depth_cap(void **state)
{
    struct action_event ev;
    char err[EVENT_ERRSTR_SIZE];
    char *buf;
    (void)state;

    /* the event is depth 1, so EVENT_MAX_DEPTH - 1 arrays inside it is the deepest */
    buf = deep_event(EVENT_MAX_DEPTH - 1);
    assert_int_equal(event_decode(buf, strlen(buf), &ev, err, sizeof err), EVENT_OK);
    event_release(&ev);
    free(buf);
    buf = deep_event(EVENT_MAX_DEPTH);
    assert_int_equal(event_decode(buf, strlen(buf), &ev, err, sizeof err), EVENT_INVALID);
    assert_non_null(strstr(err, "nesting"));
    free(buf);
}

static void test_peek_id(void **state)
{
    char id[EVENT_ID_MAX + 1];
    static const char no_data[] = "{\"id\":\"ap-1-2-3-0\"}";
    static const char bad_id[] = "{\"id\":\"a b\"}";
    (void)state;

    assert_int_equal(event_peek_id(no_data, strlen(no_data), id, sizeof id), 0);
    assert_string_equal(id, "ap-1-2-3-0");
    assert_int_equal(event_peek_id(bad_id, strlen(bad_id), id, sizeof id), -1);
    assert_int_equal(event_peek_id("{", 1, id, sizeof id), -1);
    assert_int_equal(event_peek_id(no_data, strlen(no_data), id, 5), -1);
}

/* A document must be an object; null is refused by the parser, as it always was. */
static void test_top_level_values(void **state)
{
    static const struct {
        const char *text, *err;
    } cases[] = {
        {"null", "(message): not valid JSON: document is null"},
        {" null\n", "(message): not valid JSON: document is null"},
        {"5", "(top level): wrong type (number), expected object"},
        {"\"{}\"", "(top level): wrong type (string), expected object"},
        {"false", "(top level): wrong type (boolean), expected object"},
    };
    struct action_event ev;
    char err[EVENT_ERRSTR_SIZE], id[EVENT_ID_MAX + 1];
    (void)state;

    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *t = cases[i].text;
        assert_int_equal(event_decode(t, strlen(t), &ev, err, sizeof err), EVENT_INVALID);
        assert_string_equal(err, cases[i].err);
        assert_int_equal(event_peek_id(t, strlen(t), id, sizeof id), -1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invoice_base),
        cmocka_unit_test(test_invoice_all_inputs),
        cmocka_unit_test(test_estimate_on_quote_spellings),
        cmocka_unit_test(test_sales_receipt_on_every_object),
        cmocka_unit_test(test_paid_invoice),
        cmocka_unit_test(test_expense_inputs),
        cmocka_unit_test(test_refund_receipt),
        cmocka_unit_test(test_fields_fallback),
        cmocka_unit_test(test_optional_inputs_empty_or_null),
        cmocka_unit_test(test_input_faults),
        cmocka_unit_test(test_name_length_counts_code_points),
        cmocka_unit_test(test_envelope_faults),
        cmocka_unit_test(test_id_length_and_time_forms),
        cmocka_unit_test(test_number_rules),
        cmocka_unit_test(test_huge_and_malformed_ids),
        cmocka_unit_test(test_number_literals),
        cmocka_unit_test(test_strings_holding_nul),
        cmocka_unit_test(test_unsupported_object_type),
        cmocka_unit_test(test_vocabulary_tables),
        cmocka_unit_test(test_event_key),
        cmocka_unit_test(test_unknown_members_ignored),
        cmocka_unit_test(test_parse_faults),
        cmocka_unit_test(test_size_cap),
        cmocka_unit_test(test_depth_cap),
        cmocka_unit_test(test_peek_id),
        cmocka_unit_test(test_top_level_values),
        cmocka_unit_test(test_values_cap_is_the_decoders_own),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
