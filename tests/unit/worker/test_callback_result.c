/* test_callback_result.c - a result read back as the completion HubSpot receives: which
 * results the completer acts on, the output fields of a success and of a failure, and
 * every way a marked result can be unusable (skipped with a reason, never a crash).
 *
 * The schema's result examples are read too: the completer and the contract agree on
 * which results are marked. And the tape reader is checked against the json-c reader it
 * replaced (callback_result_dom.c) on valid and hostile results alike.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "tests/unit/worker/callback_result_dom.h"
#include "worker/callback_result.h"

#define APP "https://app.sandbox.qbo.intuit.com"

static const char base_json[] =
    "{\"specversion\":\"1.0\",\"id\":\"ap-1:result\",\"type\":\"hsqb.result.succeeded\","
    "\"source\":\"hsqb-worker://g\",\"subject\":\"102670506:DEAL:904\","
    "\"time\":\"2024-05-01T10:20:31.412Z\",\"datacontenttype\":\"application/json\","
    "\"data\":{\"status\":\"succeeded\",\"action\":\"create_invoice\",\"input_id\":\"ap-1\","
    "\"portal_id\":102670506,\"object\":{\"type\":\"DEAL\",\"id\":904},\"realm_id\":\"9130\","
    "\"qbo\":{\"entity\":\"Invoice\",\"id\":\"1841\",\"doc_number\":\"1037\","
    "\"total_cents\":125000,\"currency\":\"USD\",\"customer_id\":\"58\","
    "\"created_customer\":false,\"created_items\":[],\"payment_id\":null},\"attempts\":1,"
    "\"source\":{\"topic\":\"hsqb.actions\",\"partition\":0,\"offset\":7},\"duration_ms\":5,"
    "\"completed_at\":\"2024-05-01T10:20:31.412Z\",\"complete_callback\":true}}";

/* base_json with member path of data ("qbo.entity") set to the JSON text value, or
 * removed when value is NULL; caller frees. */
static char *with(const char *path, const char *value)
{
    struct json_object *root = json_tokener_parse(base_json), *cur, *next;
    char buf[128], *key, *dot;
    char *out;

    assert_non_null(root);
    assert_true(json_object_object_get_ex(root, "data", &cur));
    snprintf(buf, sizeof buf, "%s", path);
    for (key = buf; (dot = strchr(key, '.')) != NULL; key = dot + 1) {
        *dot = '\0';
        assert_true(json_object_object_get_ex(cur, key, &next));
        cur = next;
    }
    if (value)
        json_object_object_add(cur, key, json_tokener_parse(value));
    else
        json_object_object_del(cur, key);
    out = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
    json_object_put(root);
    return out;
}

static enum callback_read read_text(const char *text, struct callback_completion *c, char *why)
{
    return callback_result_read(text, strlen(text), APP "/", c, why, 200);
}

/* A mutation of the base that must be skipped, with a reason naming the member. */
static void assert_invalid(const char *path, const char *value)
{
    struct callback_completion c;
    char why[200], named[80], *text = with(path, value);

    snprintf(named, sizeof named, "data.%s", path);
    assert_int_equal(read_text(text, &c, why), CALLBACK_READ_INVALID);
    if (!strstr(why, named))
        fail_msg("%s=%s: reason \"%s\" does not name %s", path, value ? value : "(none)", why,
                 named);
    assert_null(c.url);
    free(text);
}

static void test_success_fields(void **state)
{
    struct callback_completion c;
    struct hubspot_output_field f[CALLBACK_FIELDS_MAX];
    char why[200];

    (void)state;
    assert_int_equal(read_text(base_json, &c, why), CALLBACK_READ_COMPLETE);
    assert_string_equal(c.callback_id, "ap-1");
    assert_int_equal(c.portal_id, 102670506);
    assert_true(c.success);
    assert_int_equal(callback_completion_fields(&c, f), 5);
    assert_string_equal(f[0].name, "qbo_document_id");
    assert_string_equal(f[0].value, "1841");
    assert_string_equal(f[1].name, "qbo_doc_number");
    assert_string_equal(f[1].value, "1037");
    assert_string_equal(f[2].name, "qbo_total");
    assert_string_equal(f[2].value, "1250.00");
    assert_string_equal(f[3].name, "qbo_document_url");
    assert_string_equal(f[3].value, APP "/app/invoice?txnId=1841");
    assert_string_equal(f[4].name, "status");
    assert_string_equal(f[4].value, "succeeded");
    callback_completion_release(&c);
    callback_completion_release(&c); /* idempotent */
}

static void test_pages_totals_and_doc_numbers(void **state)
{
    static const struct {
        const char *entity, *cents, *url, *total;
    } cases[] = {
        {"\"Estimate\"", "0", APP "/app/estimate?txnId=1841", "0.00"},
        {"\"SalesReceipt\"", "5", APP "/app/salesreceipt?txnId=1841", "0.05"},
        {"\"Purchase\"", "99999999999999999", APP "/app/expense?txnId=1841", "999999999999999.99"},
        {"\"RefundReceipt\"", "123456", APP "/app/refundreceipt?txnId=1841", "1234.56"},
    };
    struct callback_completion c;
    char *a, *b;
    (void)state;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        a = with("qbo.entity", cases[i].entity);
        assert_int_equal(read_text(a, &c, NULL), CALLBACK_READ_COMPLETE);
        assert_string_equal(c.url, cases[i].url);
        callback_completion_release(&c);
        free(a);
        b = with("qbo.total_cents", cases[i].cents);
        assert_int_equal(read_text(b, &c, NULL), CALLBACK_READ_COMPLETE);
        assert_string_equal(c.total, cases[i].total);
        callback_completion_release(&c);
        free(b);
    }
    a = with("qbo.entity", "\"Purchase\"");
    assert_int_equal(callback_result_read(a, strlen(a), APP "///", &c, NULL, 0),
                     CALLBACK_READ_COMPLETE);
    assert_string_equal(c.url, APP "/app/expense?txnId=1841");
    callback_completion_release(&c);
    free(a);
    /* a document without a number: an empty output field */
    a = with("qbo.doc_number", "null");
    assert_int_equal(read_text(a, &c, NULL), CALLBACK_READ_COMPLETE);
    assert_string_equal(c.doc_number, "");
    callback_completion_release(&c);
    free(a);
    a = with("qbo.doc_number", NULL);
    assert_int_equal(read_text(a, &c, NULL), CALLBACK_READ_COMPLETE);
    callback_completion_release(&c);
    free(a);
}

/* The base as a failure with error = the JSON text error (NULL: none); caller frees. */
static char *failed(const char *error)
{
    struct json_object *root = json_tokener_parse(base_json), *data;
    char *out;

    assert_true(json_object_object_get_ex(root, "data", &data));
    json_object_object_del(data, "qbo");
    json_object_object_add(data, "status", json_object_new_string("failed"));
    if (error)
        json_object_object_add(data, "error", json_tokener_parse(error));
    out = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
    json_object_put(root);
    return out;
}

static void test_failure_fields(void **state)
{
    struct callback_completion c;
    struct hubspot_output_field f[CALLBACK_FIELDS_MAX];
    char *a = failed("{\"code\":\"PRODUCT_NOT_FOUND\",\"message\":\"2 line items\\n"
                     "have no product\",\"retryable\":false}");
    (void)state;

    assert_int_equal(read_text(a, &c, NULL), CALLBACK_READ_COMPLETE);
    assert_false(c.success);
    assert_int_equal(callback_completion_fields(&c, f), 3);
    assert_string_equal(f[0].name, "error_code");
    assert_string_equal(f[0].value, "PRODUCT_NOT_FOUND");
    assert_string_equal(f[1].name, "error_message");
    assert_string_equal(f[1].value, "2 line items have no product"); /* one line */
    assert_string_equal(f[2].name, "status");
    assert_string_equal(f[2].value, "failed");
    callback_completion_release(&c);
    free(a);
}

static void test_failure_message_defaults_and_cap(void **state)
{
    struct callback_completion c;
    char big[RESULT_MESSAGE_MAX * 2], why[200], *a, *e;
    (void)state;

    a = failed("{\"code\":\"INTERNAL\"}");
    assert_int_equal(read_text(a, &c, NULL), CALLBACK_READ_COMPLETE);
    assert_string_equal(c.error_message, "INTERNAL"); /* no message: the code */
    callback_completion_release(&c);
    free(a);

    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_true(asprintf(&e, "{\"code\":\"INTERNAL\",\"message\":\"%s\"}", big) > 0);
    a = failed(e);
    assert_int_equal(read_text(a, &c, NULL), CALLBACK_READ_COMPLETE);
    assert_int_equal(strlen(c.error_message), RESULT_MESSAGE_MAX);
    callback_completion_release(&c);
    free(a);
    free(e);

    static const char *const bad[] = {NULL,
                                      "[]",
                                      "{\"message\":\"m\"}",
                                      "{\"code\":\"no_contact\"}",
                                      "{\"code\":\"\"}",
                                      "{\"code\":7}",
                                      "{\"code\":\"INTERNAL\",\"message\":7}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        a = failed(bad[i]);
        assert_int_equal(read_text(a, &c, why), CALLBACK_READ_INVALID);
        assert_non_null(strstr(why, "data.error"));
        free(a);
    }
}

static void test_unmarked(void **state)
{
    struct callback_completion c;
    char *a;
    (void)state;

    a = with("complete_callback", NULL);
    assert_int_equal(read_text(a, &c, NULL), CALLBACK_READ_UNMARKED);
    free(a);
    a = with("complete_callback", "false");
    assert_int_equal(read_text(a, &c, NULL), CALLBACK_READ_UNMARKED);
    free(a);
    a = with("complete_callback", "\"true\"");
    assert_int_equal(read_text(a, &c, NULL), CALLBACK_READ_UNMARKED);
    free(a);
    a = with("complete_callback", "1");
    assert_int_equal(read_text(a, &c, NULL), CALLBACK_READ_UNMARKED);
    free(a);
}

static void test_marked_but_unusable(void **state)
{
    struct callback_completion c;
    char why[200], big[64];
    (void)state;

    static const struct {
        const char *path, *value; /* value NULL: the member removed */
    } bad[] = {
        {"input_id", NULL},
        {"input_id", "\"ap 1\""},
        {"input_id", "\"\""},
        {"input_id", "7"},
        {"portal_id", "\"102670506\""},
        {"portal_id", "0"},
        {"portal_id", "1.5"},
        {"portal_id", "99999999999999999999"},
        {"status", "\"done\""},
        {"status", NULL},
        {"qbo", NULL},
        {"qbo", "[]"},
        {"qbo.entity", "\"Bill\""},
        {"qbo.entity", NULL},
        {"qbo.id", "\"18a1\""},
        {"qbo.id", "1841"},
        {"qbo.id", "\"123456789012345678901234567890123\""},
        {"qbo.doc_number", "\"1234567890123456789012\""},
        {"qbo.doc_number", "12"},
        {"qbo.total_cents", "-1"},
        {"qbo.total_cents", "\"1250\""},
        {"qbo.total_cents", "12.5"},
        {"qbo.total_cents", "100000000000000000"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_invalid(bad[i].path, bad[i].value);

    /* not a result at all */
    assert_int_equal(read_text("{not json", &c, why), CALLBACK_READ_INVALID);
    assert_non_null(strstr(why, "(message)"));
    assert_int_equal(read_text("[]", &c, why), CALLBACK_READ_INVALID);
    assert_int_equal(read_text("{\"data\":7}", &c, why), CALLBACK_READ_INVALID);
    assert_non_null(strstr(why, "data"));
    assert_int_equal(
        read_text("{\"data\":{\"complete_callback\":true,\"complete_callback\":true}}", &c, why),
        CALLBACK_READ_INVALID);
    assert_int_equal(callback_result_read(NULL, 0, APP, &c, why, sizeof why),
                     CALLBACK_READ_INVALID);
    assert_int_equal(
        callback_result_read(base_json, CALLBACK_RESULT_MAX_BYTES + 1, APP, &c, why, sizeof why),
        CALLBACK_READ_INVALID);
    assert_non_null(strstr(why, "too large"));
    /* a bad qbo.app_url is refused, whatever the result */
    assert_int_equal(callback_result_read(base_json, strlen(base_json), NULL, &c, why, sizeof why),
                     CALLBACK_READ_INVALID);
    {
        char *url = malloc(CALLBACK_APP_URL_MAX + 2);
        memset(url, 'h', CALLBACK_APP_URL_MAX + 1);
        url[CALLBACK_APP_URL_MAX + 1] = '\0';
        assert_int_equal(
            callback_result_read(base_json, strlen(base_json), url, &c, why, sizeof why),
            CALLBACK_READ_INVALID);
        free(url);
    }
    /* a short reason buffer is fine */
    assert_int_equal(callback_result_read("x", 1, APP, &c, big, 4), CALLBACK_READ_INVALID);
    assert_int_equal(strlen(big), 3);
}

/* Both readers on len bytes: the same verdict, completion and reason. */
static void assert_same_as_dom(const char *buf, size_t len)
{
    struct callback_completion a, b;
    char wa[200], wb[200];
    enum callback_read ra, rb;

    memset(&a, 0x5A, sizeof a);
    memset(&b, 0xA5, sizeof b);
    ra = callback_result_read(buf, len, APP "/", &a, wa, sizeof wa);
    rb = callback_result_read_dom(buf, len, APP "/", &b, wb, sizeof wb);
    if (ra != rb || strcmp(wa, wb) != 0)
        fail_msg("tape %d \"%s\", json-c %d \"%s\" on %.*s", ra, wa, rb, wb, (int)len, buf);
    assert_string_equal(a.callback_id, b.callback_id);
    assert_int_equal(a.portal_id, b.portal_id);
    assert_int_equal(a.success, b.success);
    assert_string_equal(a.doc_id, b.doc_id);
    assert_string_equal(a.doc_number, b.doc_number);
    assert_string_equal(a.total, b.total);
    assert_string_equal(a.error_code, b.error_code);
    assert_true((a.url == NULL) == (b.url == NULL));
    if (a.url)
        assert_string_equal(a.url, b.url);
    assert_true((a.error_message == NULL) == (b.error_message == NULL));
    if (a.error_message)
        assert_string_equal(a.error_message, b.error_message);
    callback_completion_release(&a);
    callback_completion_release(&b);
}

static void assert_text_same_as_dom(const char *text)
{
    assert_same_as_dom(text, strlen(text));
}

static const char failed_json[] =
    "{\"type\":\"hsqb.result.failed\",\"data\":{\"status\":\"failed\",\"input_id\":\"ap-2\","
    "\"portal_id\":7,\"complete_callback\":true,\"error\":{\"code\":\"NO_CONTACT\","
    "\"message\":\"no contact \\u00e9\\n\\t\\\"x\\\"\",\"retryable\":false}}}";

/* Every member a completion reads, set to every kind of wrong, and the raw bytes broken
 * in every way the strict parser refuses: both readers agree on each. */
static void test_same_as_json_c_reader(void **state)
{
    static const char *const paths[] = {
        "status", "input_id", "portal_id", "complete_callback", "qbo", "qbo.entity", "qbo.id",
        "qbo.doc_number", "qbo.total_cents", "error",
    };
    static const char *const values[] = {
        NULL, "null", "true", "false", "0", "1", "-1", "1.5", "1e2", "-0",
        "9223372036854775807", "9223372036854775808", "99999999999999999999999999",
        "99999999999", "1E400", "\"\"", "\"x\"", "\"1841\"", "\"succeeded\"", "\"failed\"",
        "\"Invoice\"", "\"Estimate\"", "\"Purchase\"", "\"\\u0000\"", "\"a\\u0000b\"",
        "\"caf\\u00e9\"", "\"\\ud83d\\ude00\"", "\"a b\"", "\"\\n\"", "\"123456789012345678901\"",
        "{}", "[]", "[1]", "{\"code\":\"X\"}", "{\"code\":\"lower\"}", "{\"code\":null}",
        "{\"entity\":\"Invoice\",\"id\":\"1\",\"total_cents\":1}",
    };
    static const char *const raw[] = {
        "", " ", "null", "[]", "{}", "1", "\"x\"", "{\"data\":null}", "{\"data\":[]}",
        "{\"data\":{}}", "{\"data\":{\"complete_callback\":true}}",
        "{\"data\":{\"complete_callback\":true,\"complete_callback\":true}}",
        "{\"data\":{\"complete_callback\":1}}", "{\"data\":{\"complete_callback\":\"true\"}}",
        "{\"data\":{\"input_id\":\"\xff\",\"complete_callback\":true}}",
        "{\"data\":{\"input_id\":\"\xc0\xaf\",\"complete_callback\":true}}",
        "{\"data\":{\"input_id\":\"\\ud800\",\"complete_callback\":true}}",
        "{\"data\":{\"a\\u0000\":1,\"complete_callback\":true}}",
        "{\"data\":{\"complete_callback\":true}} x", "{\"data\":{\"complete_callback\":true}",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]"
        "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    };
    size_t n = 0;
    (void)state;

    for (size_t b = 0; b < 2; b++) {
        const char *base = b ? failed_json : base_json;
        assert_text_same_as_dom(base);
        for (size_t k = 0; k < strlen(base); k++) /* every truncation */
            assert_same_as_dom(base, k), n++;
    }
    for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++)
        for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
            char *text = with(paths[p], values[v]);
            assert_text_same_as_dom(text);
            free(text);
            n++;
        }
    for (size_t r = 0; r < sizeof raw / sizeof raw[0]; r++, n++)
        assert_text_same_as_dom(raw[r]);
    {
        /* invalid UTF-8 and a NUL byte inside the base, at every string's first byte */
        size_t len = strlen(base_json);
        char *buf = malloc(len + 1);
        for (size_t k = 0; k < len; k++) {
            if (base_json[k] != '"')
                continue;
            for (int bad = 0; bad < 3; bad++, n++) {
                memcpy(buf, base_json, len + 1);
                if (k + 1 < len)
                    buf[k + 1] = bad == 0 ? '\xff' : bad == 1 ? '\0' : '\x01';
                assert_same_as_dom(buf, len);
            }
        }
        free(buf);
    }
    assert_true(n > 600);
}

/* Every result example: the marked ones complete, the others are left alone. */
static void test_schema_examples(void **state)
{
    static const char *const dirs[] = {"schemas/examples/results/valid",
                                       "schemas/examples/results/invalid"};
    struct callback_completion c;
    int marked = 0, seen = 0;
    (void)state;

    for (size_t d = 0; d < 2; d++) {
        DIR *dir = opendir(dirs[d]);
        struct dirent *e;

        assert_non_null(dir);
        while ((e = readdir(dir)) != NULL) {
            char path[512], *text = NULL;
            size_t n = 0;
            FILE *f;
            enum callback_read r;

            if (!strstr(e->d_name, ".json"))
                continue;
            snprintf(path, sizeof path, "%s/%s", dirs[d], e->d_name);
            f = fopen(path, "r");
            assert_non_null(f);
            assert_int_equal(getdelim(&text, &n, '\0', f) > 0, 1);
            fclose(f);
            r = read_text(text, &c, NULL);
            assert_text_same_as_dom(text);
            seen++;
            if (d == 0 && strstr(text, "\"complete_callback\"")) {
                assert_int_equal(r, CALLBACK_READ_COMPLETE);
                marked++;
            } else if (d == 0) {
                assert_int_equal(r, CALLBACK_READ_UNMARKED);
            } else if (strcmp(e->d_name, "complete_callback_without_execution.json") == 0) {
                assert_int_equal(r, CALLBACK_READ_INVALID);
            }
            callback_completion_release(&c);
            free(text);
        }
        closedir(dir);
    }
    assert_true(seen > 10);
    assert_true(marked >= 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_success_fields),
        cmocka_unit_test(test_pages_totals_and_doc_numbers),
        cmocka_unit_test(test_failure_fields),
        cmocka_unit_test(test_failure_message_defaults_and_cap),
        cmocka_unit_test(test_unmarked),
        cmocka_unit_test(test_marked_but_unusable),
        cmocka_unit_test(test_schema_examples),
        cmocka_unit_test(test_same_as_json_c_reader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
