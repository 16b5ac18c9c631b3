/* test_payment_pipeline.c - the payment actions from Kafka message to published outcome,
 * against a private redis-server, hsqb-sandbox (HubSpot + QuickBooks + Intuit OAuth) and
 * librdkafka's mock cluster, through pipeline_handle() exactly as `run` drives it.
 *
 * What an accountant would notice: a sales receipt, a paid invoice (Invoice + Payment at
 * Balance 0), an expense (Purchase of the fees, the net or the total) and a refund
 * receipt appear in QuickBooks with HubSpot's amounts to the cent and one result each;
 * every refusal (taxable paid invoice, payment not succeeded, not fully refunded, zero
 * expense, unknown account or vendor) creates nothing and lands in the DLQ; a worker
 * killed between the invoice and its payment leaves, after the retry, exactly one of
 * each; two concurrent expenses naming one new vendor create it once; events for two
 * QBO companies and two HubSpot portals each land in their own books.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>

#include "common/clock.h"
#include "common/log.h"
#include "worker/company.h"

#include "tests/unit/worker/sandbox_harness.h"
#include "tests/unit/worker/testutil_pipeline.h"

#define TOKEN1  "pat-na1-11111111-1111-4111-8111-111111111111"
#define TOKEN2  "pat-na1-22222222-2222-4222-8222-222222222222"
#define PORTAL1 102670506
#define PORTAL2 243987001
#define RESULTS TP_RESULTS
#define DLQ     TP_DLQ

static struct tp_env E;

/* Everything `run` would build, pointed at the sandbox; 0 or -1 (no cmocka asserts: a
 * forked child calls it too). */
static int env_build(struct tp_env *v)
{
    const char *extra[] = {"HSQB_HUBSPOT_TOKEN=" TOKEN1, TP_ENV_FLAGS, NULL};
    char e[512];

    if (tp_env_build(v, h_config(extra), e, sizeof e) < 0) {
        fprintf(stderr, "env: %s\n", e);
        return -1;
    }
    return 0;
}

/* Fresh sandbox and Redis, QBO tokens for both US realms (US1 and MC1 bound to portal 1,
 * US2 to portal 2), portal 2's own HubSpot token. */
static void reset_world(void)
{
    char e[512], key[128];
    redisReply *r;

    h_reset();
    assert_int_equal(oauth_store_refresh_token(H.redis, H_REALM_US1, H_RT_US1, 0, e, sizeof e), 0);
    assert_int_equal(oauth_store_refresh_token(H.redis, H_REALM_US2, H_RT_US2, 0, e, sizeof e), 0);
    assert_int_equal(oauth_store_refresh_token(H.redis, H_REALM_MC1, H_RT_MC1, 0, e, sizeof e), 0);
    h_bind(PORTAL1, (const char *const[]){H_REALM_US1, H_REALM_MC1, NULL});
    h_bind(PORTAL2, (const char *const[]){H_REALM_US2, NULL});
    assert_int_equal(hubspot_token_key(key, sizeof key, "hsqb:", PORTAL2), 0);
    r = redis_command(H.redis, e, sizeof e, "SET %s %s", key, TOKEN2);
    assert_non_null(r);
    freeReplyObject(r);
}

static int setup(void **state)
{
    (void)state;
    reset_world();
    assert_int_equal(env_build(&E), 0);
    return 0;
}

static int setup_bare(void **state)
{
    (void)state;
    reset_world();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tp_env_free(&E);
    return 0;
}

/* ---- inputs -------------------------------------------------------------------------- */

/* An action event on a payment (caller frees). inputs: extra inputFields members. */
static char *event_json(const char *id, const char *action, int64_t portal, int64_t payment,
                        const char *realm, const char *inputs)
{
    return tp_event_json(id, action, portal, "COMMERCE_PAYMENT", payment, realm, inputs);
}

static enum pipeline_disposition handle_on(struct tp_env *v, struct pipeline_thread *t,
                                           const char *value, int64_t offset, int64_t *delay)
{
    return tp_handle(v, t, value, strlen(value), NULL, offset, delay);
}

static enum pipeline_disposition handle(const char *value)
{
    return handle_on(&E, E.t, value, E.next_offset++, NULL);
}

/* Merge a HubSpot seed document for one portal (objects JSON) into the sandbox. */
static void seed_hubspot(int64_t portal, const char *objects)
{
    char *doc = NULL;
    assert_true(asprintf(&doc, "{\"hubspot\":{\"portals\":[{\"portalId\":%lld,\"objects\":%s}]}}",
                         (long long)portal, objects) > 0);
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/seed", doc, NULL), 200);
    free(doc);
}

/* ---- outputs ------------------------------------------------------------------------- */

static int64_t cents_at(struct json_object *o, const char *path)
{
    struct json_object *v = tp_at(o, path);
    if (!v)
        fail_msg("%s missing in %s", path, json_object_to_json_string(o));
    return (int64_t)(json_object_get_double(v) * 100 +
                     (json_object_get_double(v) < 0 ? -0.5 : 0.5));
}

/* The last result, parsed (caller puts); asserts how many there are. */
static struct json_object *last_result(size_t want_count)
{
    size_t n;
    struct json_object **m = tp_read_json(E.bootstrap, RESULTS, &n), *o;
    if (n != want_count)
        fail_msg("%zu results on %s, wanted %zu", n, RESULTS, want_count);
    o = json_object_get(m[n - 1]);
    tp_free_json(m, n);
    return o;
}

/* The realm's entities of one kind from the sandbox state (caller puts the array). */
static struct json_object *entities(const char *realm, const char *kind)
{
    char path[128];
    struct json_object *doc = NULL, *arr;
    snprintf(path, sizeof path, "/_sandbox/state?realm=%s", realm);
    assert_int_equal(h_admin(HTTP_GET, path, NULL, &doc), 200);
    arr = tp_at(json_object_object_get(json_object_object_get(doc, "qbo"), realm), kind);
    assert_non_null(arr);
    json_object_get(arr);
    json_object_put(doc);
    return arr;
}

static int count(const char *realm, const char *kind)
{
    struct json_object *a = entities(realm, kind);
    int n = (int)json_object_array_length(a);
    json_object_put(a);
    return n;
}

/* The entity of kind with Id id (caller puts), failing the test when absent. */
static struct json_object *entity(const char *realm, const char *kind, const char *id)
{
    struct json_object *a = entities(realm, kind), *found = NULL;
    for (size_t i = 0; i < json_object_array_length(a) && !found; i++) {
        struct json_object *e = json_object_array_get_idx(a, i);
        if (strcmp(tp_str_at(e, "Id"), id) == 0)
            found = json_object_get(e);
    }
    json_object_put(a);
    if (!found)
        fail_msg("%s %s not found in realm %s", kind, id, realm);
    return found;
}

static size_t dlq_count(void)
{
    size_t n;
    struct json_object **m = tp_read_json(E.bootstrap, DLQ, &n);
    tp_free_json(m, n);
    return n;
}

static int qbo_posts(void)
{
    return h_count("vendor=qbo&method=POST", NULL);
}

static void expect_failure(const char *id, const char *action, int64_t payment, const char *inputs,
                           const char *code, size_t nth)
{
    char *ev = event_json(id, action, PORTAL1, payment, H_REALM_US1, inputs);
    struct json_object *r;

    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(nth);
    if (strcmp(tp_str_at(r, "data.error.code"), code) != 0)
        fail_msg("%s: %s (%s), wanted %s", id, tp_str_at(r, "data.error.code"),
                 tp_str_at(r, "data.error.message"), code);
    assert_false(json_object_get_boolean(tp_at(r, "data.error.retryable")));
    json_object_put(r);
    free(ev);
}

#define EXPENSE_INPUTS(extra)                                                                      \
    "\"expense_account\":\"Bank Charges\",\"paid_from_account\":\"Checking\","                     \
    "\"payment_type\":\"Check\"" extra

/* ---- sales receipt ------------------------------------------------------------------- */

static void test_sales_receipt_from_payment(void **state)
{
    char *ev = event_json("pay-sr-1", "create_sales_receipt", PORTAL1, 8001, H_REALM_US1,
                          "\"create_missing_products\":\"true\"");
    struct json_object *r, *sr, *pm;
    const char *body;
    struct api_error err;
    struct http_client *http = h_http_new();
    int posts;
    (void)state;

    /* the company records card payments under "Credit Card" */
    body = "{\"Name\":\"Credit Card\",\"Type\":\"CREDIT_CARD\"}";
    assert_int_equal(
        qbo_create(H_IO(http, H.redis), E.q,
                   &(struct qbo_req){H_REALM_US1, "paymentmethod", NULL, body, strlen(body)}, &pm,
                   &err),
        0);

    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    assert_string_equal(tp_str_at(r, "data.qbo.entity"), "SalesReceipt");
    assert_string_equal(tp_str_at(r, "data.object.type"), "COMMERCE_PAYMENT");
    assert_int_equal(json_object_get_int64(tp_at(r, "data.qbo.total_cents")), 205397);
    assert_true(json_object_get_boolean(tp_at(r, "data.qbo.created_customer")));
    assert_null(tp_at(r, "data.qbo.payment_id"));
    sr = entity(H_REALM_US1, "SalesReceipt", tp_str_at(r, "data.qbo.id"));
    assert_int_equal(cents_at(sr, "TotalAmt"), 205397);
    assert_int_equal(cents_at(sr, "Balance"), 0);
    assert_string_equal(tp_str_at(sr, "TxnDate"), "2024-03-01"); /* the day the money moved */
    assert_string_equal(tp_str_at(sr, "DepositToAccountRef.value"), "4"); /* Undeposited Funds */
    assert_string_equal(tp_str_at(sr, "PaymentMethodRef.value"), tp_str_at(pm, "Id"));
    assert_string_equal(tp_str_at(sr, "PaymentRefNum"), "PAY-8001");
    assert_non_null(strstr(tp_str_at(sr, "PrivateNote"), "HubSpot payment 8001"));
    json_object_put(sr);
    json_object_put(r);
    /* a redelivery: the same result, nothing written */
    posts = qbo_posts();
    assert_int_equal(handle(ev), PIPELINE_DONE);
    assert_int_equal(qbo_posts(), posts);
    json_object_put(last_result(2));
    assert_int_equal(count(H_REALM_US1, "SalesReceipt"), 2); /* seeded 140 + ours */
    json_object_put(pm);
    http_client_free(http);
    free(ev);
}

/* The company's settings page (worker/company.h) says where received money goes: sales
 * receipts and paid invoices' payments deposit there unless the event names an account;
 * defaults saved by another portal never apply. */
static void test_company_defaults_from_the_settings_page(void **state)
{
    struct company_defaults d = {.deposit_account = "Checking"};
    struct json_object *r, *doc;
    char e[256], *ev;
    (void)state;

    assert_int_equal(company_connected(H.redis, H_REALM_US1, PORTAL1, "Sandbox Company US 1", "US",
                                       clock_wall_ms(), e, sizeof e),
                     0);
    assert_int_equal(
        company_defaults_save(H.redis, H_REALM_US1, PORTAL1, &d, clock_wall_ms(), e, sizeof e), 0);
    /* another portal's defaults on its own company: saved, and refused on PORTAL1's */
    assert_int_equal(
        company_defaults_save(H.redis, H_REALM_US1, PORTAL2, &d, clock_wall_ms(), e, sizeof e), -1);
    assert_non_null(strstr(e, "another portal"));

    ev = event_json("pay-cd-1", "create_sales_receipt", PORTAL1, 8001, H_REALM_US1,
                    "\"create_missing_products\":\"true\"");
    assert_int_equal(handle(ev), PIPELINE_DONE);
    free(ev);
    r = last_result(1);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    doc = entity(H_REALM_US1, "SalesReceipt", tp_str_at(r, "data.qbo.id"));
    assert_string_equal(tp_str_at(doc, "DepositToAccountRef.value"), "35"); /* Checking */
    json_object_put(doc);
    json_object_put(r);

    ev = event_json("pay-cd-2", "create_paid_invoice", PORTAL1, 8001, H_REALM_US1,
                    "\"create_missing_products\":\"true\"");
    assert_int_equal(handle(ev), PIPELINE_DONE);
    free(ev);
    r = last_result(2);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    doc = entity(H_REALM_US1, "Payment", tp_str_at(r, "data.qbo.payment_id"));
    assert_string_equal(tp_str_at(doc, "DepositToAccountRef.value"), "35");
    json_object_put(doc);
    json_object_put(r);

    /* the event's own account wins */
    ev = event_json("pay-cd-3", "create_sales_receipt", PORTAL1, 8001, H_REALM_US1,
                    "\"create_missing_products\":\"true\","
                    "\"deposit_to_account\":\"Undeposited Funds\"");
    assert_int_equal(handle(ev), PIPELINE_DONE);
    free(ev);
    r = last_result(3);
    doc = entity(H_REALM_US1, "SalesReceipt", tp_str_at(r, "data.qbo.id"));
    assert_string_equal(tp_str_at(doc, "DepositToAccountRef.value"), "4");
    json_object_put(doc);
    json_object_put(r);
}

/* payments.default_item names the item of that single line. */
static void test_default_item_is_a_setting(void **state)
{
    const char *extra[] = {"HSQB_HUBSPOT_TOKEN=" TOKEN1, TP_ENV_FLAGS, "--payments.default_item=Hours",
                           NULL};
    char *ev = event_json("pay-sr-di", "create_sales_receipt", PORTAL1, 8012, H_REALM_US1, NULL);
    struct json_object *r, *sr, *line;
    char e[512];
    (void)state;

    if (tp_env_build(&E, h_config(extra), e, sizeof e) < 0)
        fail_msg("env: %s", e);
    seed_hubspot(PORTAL1, "{\"commerce_payments\":[{\"id\":\"8012\",\"properties\":{"
                          "\"hs_initial_amount\":\"80.00\",\"hs_latest_status\":\"succeeded\"},"
                          "\"associations\":{\"contacts\":[\"306\"]}}]}");
    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    sr = entity(H_REALM_US1, "SalesReceipt", tp_str_at(r, "data.qbo.id"));
    line = json_object_array_get_idx(tp_at(sr, "Line"), 0);
    assert_string_equal(tp_str_at(line, "SalesItemLineDetail.ItemRef.value"), "2"); /* Hours */
    json_object_put(sr);
    json_object_put(r);
    free(ev);
}

static void test_sales_receipt_without_lines_uses_default_item(void **state)
{
    char *ev = event_json("pay-sr-2", "create_sales_receipt", PORTAL1, 8011, H_REALM_US1,
                          "\"deposit_to_account\":\"Checking\"");
    struct json_object *r, *sr, *line;
    (void)state;

    seed_hubspot(PORTAL1,
                 "{\"commerce_payments\":[{\"id\":\"8011\",\"properties\":{"
                 "\"hs_initial_amount\":\"120.00\",\"hs_fees_amount\":\"0.00\","
                 "\"hs_latest_status\":\"succeeded\",\"hs_payment_method_type\":"
                 "\"check\",\"hs_reference_number\":\"CHK-1042\",\"hs_initiated_date\":"
                 "\"2024-04-02T23:30:00-05:00\"},\"associations\":{\"contacts\":[\"306\"]}}]}");
    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    assert_int_equal(json_object_get_int64(tp_at(r, "data.qbo.total_cents")), 12000);
    sr = entity(H_REALM_US1, "SalesReceipt", tp_str_at(r, "data.qbo.id"));
    line = json_object_array_get_idx(tp_at(sr, "Line"), 0);
    assert_string_equal(tp_str_at(line, "SalesItemLineDetail.ItemRef.value"), "1"); /* Services */
    assert_int_equal(cents_at(line, "Amount"), 12000);
    assert_string_equal(tp_str_at(sr, "DepositToAccountRef.value"), "35"); /* Checking */
    assert_string_equal(tp_str_at(sr, "PaymentMethodRef.value"), "2");     /* Check */
    /* 04:30 UTC on the 3rd is 21:30 on the 2nd in the portal's zone (Los Angeles) */
    assert_string_equal(tp_str_at(sr, "TxnDate"), "2024-04-02");
    json_object_put(sr);
    json_object_put(r);
    free(ev);
}

/* ---- paid invoice -------------------------------------------------------------------- */

/* The paid invoice of result r: one Invoice at Balance 0 linked to the one Payment. */
static void check_paid_invoice(struct json_object *r, int64_t cents)
{
    struct json_object *inv, *pay, *lt;
    int linked = 0;

    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    assert_string_equal(tp_str_at(r, "data.qbo.entity"), "Invoice");
    assert_int_equal(json_object_get_int64(tp_at(r, "data.qbo.total_cents")), cents);
    inv = entity(H_REALM_US1, "Invoice", tp_str_at(r, "data.qbo.id"));
    pay = entity(H_REALM_US1, "Payment", tp_str_at(r, "data.qbo.payment_id"));
    assert_int_equal(cents_at(inv, "TotalAmt"), cents);
    assert_int_equal(cents_at(inv, "Balance"), 0);
    assert_string_equal(tp_str_at(inv, "DueDate"), tp_str_at(inv, "TxnDate"));
    assert_int_equal(cents_at(pay, "TotalAmt"), cents);
    assert_int_equal(cents_at(pay, "UnappliedAmt"), 0);
    assert_string_equal(tp_str_at(pay, "CustomerRef.value"), tp_str_at(inv, "CustomerRef.value"));
    lt = tp_at(inv, "LinkedTxn");
    for (size_t i = 0; i < json_object_array_length(lt); i++)
        linked +=
            strcmp(tp_str_at(json_object_array_get_idx(lt, i), "TxnType"), "Payment") == 0 &&
            strcmp(tp_str_at(json_object_array_get_idx(lt, i), "TxnId"), tp_str_at(pay, "Id")) == 0;
    assert_int_equal(linked, 1);
    json_object_put(inv);
    json_object_put(pay);
    assert_int_equal(count(H_REALM_US1, "Invoice"), 2); /* seeded 130 + ours */
    assert_int_equal(count(H_REALM_US1, "Payment"), 1);
}

static void test_paid_invoice(void **state)
{
    char *ev = event_json("pay-pi-1", "create_paid_invoice", PORTAL1, 8001, H_REALM_US1,
                          "\"create_missing_products\":\"true\"");
    struct json_object *r;
    int posts;
    (void)state;

    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    check_paid_invoice(r, 205397);
    json_object_put(r);
    posts = qbo_posts();
    assert_int_equal(handle(ev), PIPELINE_DONE);
    assert_int_equal(qbo_posts(), posts);
    json_object_put(last_result(2));
    free(ev);
}

/* QBO books the invoice at another total than the payment's: the result is a failure
 * naming the invoice, and no Payment is recorded against it. */
static void test_paid_invoice_total_mismatch_records_no_payment(void **state)
{
    char *ev = event_json("pay-mm", "create_paid_invoice", PORTAL1, 8001, H_REALM_US1,
                          "\"create_missing_products\":\"true\"");
    struct json_object *r;
    (void)state;

    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults",
                             "{\"method\":\"POST\",\"path\":\"/v3/company/*/invoice\","
                             "\"vendor\":\"qbo\",\"phase\":\"after\",\"status\":200,\"body\":"
                             "{\"Invoice\":{\"Id\":\"9998\",\"TotalAmt\":2053.98,\"Balance\":2053.98}}}",
                             NULL),
                     201);
    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(tp_str_at(r, "data.error.code"), "QBO_TOTAL_MISMATCH");
    assert_string_equal(tp_str_at(r, "data.error.details.expected_total"), "2053.97");
    assert_string_equal(tp_str_at(r, "data.error.details.qbo_total"), "2053.98");
    assert_int_equal(count(H_REALM_US1, "Payment"), 0);
    json_object_put(r);
    free(ev);
}

/* A EUR payment: refused on a company without multicurrency before any write, booked
 * with CurrencyRef EUR (the receipt and its customer) on the multicurrency one. */
static void test_payment_in_euros(void **state)
{
    char *ev = event_json("pay-eur-us1", "create_sales_receipt", PORTAL1, 8013, H_REALM_US1,
                          "\"create_missing_products\":\"true\"");
    char *ev2 = event_json("pay-eur-mc1", "create_sales_receipt", PORTAL1, 8013, H_REALM_MC1,
                           "\"create_missing_products\":\"true\"");
    struct json_object *r, *doc;
    (void)state;

    seed_hubspot(PORTAL1,
                 "{\"commerce_payments\":[{\"id\":\"8013\",\"properties\":{\"hs_initial_amount\":"
                 "\"250.00\",\"hs_currency_code\":\"eur\",\"hs_latest_status\":\"succeeded\","
                 "\"hs_initiated_date\":\"2024-03-05T12:00:00Z\"},\"associations\":{\"contacts\":"
                 "[\"306\"]}}]}");
    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(tp_str_at(r, "data.error.code"), "CURRENCY_NOT_SUPPORTED");
    json_object_put(r);
    assert_int_equal(qbo_posts(), 0);
    assert_int_equal(handle(ev2), PIPELINE_DONE);
    r = last_result(2);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    assert_string_equal(tp_str_at(r, "data.qbo.currency"), "EUR");
    doc = entity(H_REALM_MC1, "SalesReceipt", tp_str_at(r, "data.qbo.id"));
    assert_string_equal(tp_str_at(doc, "CurrencyRef.value"), "EUR");
    assert_int_equal(cents_at(doc, "TotalAmt"), 25000);
    assert_int_equal(cents_at(doc, "HomeTotalAmt"), 27000); /* at QBO's 1.08, not 1:1 */
    json_object_put(doc);
    json_object_put(r);
    free(ev);
    free(ev2);
}

static void test_paid_invoice_taxable_refused_creates_nothing(void **state)
{
    char *ev = event_json("pay-tax", "create_paid_invoice", PORTAL1, 8012, H_REALM_US1,
                          "\"create_missing_products\":\"true\"");
    struct json_object *r, *d;
    (void)state;

    seed_hubspot(PORTAL1,
                 "{\"line_items\":[{\"id\":\"7211\",\"properties\":{\"name\":\"Consulting hour\","
                 "\"quantity\":\"1\",\"price\":\"150.00\",\"amount\":\"150.00\",\"hs_sku\":"
                 "\"CONS-HR\"}},{\"id\":\"7212\",\"properties\":{\"name\":\"Widget\",\"quantity\":"
                 "\"1\",\"price\":\"19.99\",\"amount\":\"19.99\",\"hs_sku\":\"WID-001\","
                 "\"hs_tax_rate_group_id\":\"1001\",\"hs_tax_rate\":null,\"hs_tax_amount\":null}}],"
                 "\"commerce_payments\":[{\"id\":\"8012\","
                 "\"properties\":{\"hs_initial_amount\":\"171.44\",\"hs_latest_status\":"
                 "\"succeeded\",\"hs_initiated_date\":\"2024-03-05T12:00:00Z\"},\"associations\":"
                 "{\"contacts\":[\"301\"],\"line_items\":[\"7211\",\"7212\"]}}]}");
    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(tp_str_at(r, "data.error.code"), "TAXABLE_ITEMS_NOT_ALLOWED");
    assert_non_null(strstr(tp_str_at(r, "data.error.message"), "Widget"));
    d = tp_at(r, "data.error.details.line_items");
    assert_int_equal(json_object_array_length(d), 1);
    assert_string_equal(tp_str_at(json_object_array_get_idx(d, 0), "id"), "7212");
    json_object_put(r);
    assert_int_equal(h_count("vendor=qbo", NULL), 0); /* not even a read */
    assert_int_equal(dlq_count(), 1);
    /* the same payment as a sales receipt is fine: any item may be taxable */
    free(ev);
    ev = event_json("pay-tax-sr", "create_sales_receipt", PORTAL1, 8012, H_REALM_US1, NULL);
    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(2);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    /* 169.99 of lines and the Widget's 1.45 of CA tax (rate group 1001, 7.25%): the money
     * received, deposited to the cent; the line has no hs_tax_amount, so the rate is its
     * tax rate group's, read from HubSpot once */
    assert_int_equal(json_object_get_int64(tp_at(r, "data.qbo.total_cents")), 17144);
    assert_int_equal(h_count("vendor=hubspot&path=/tax-rates/v1/tax-rates/1001", NULL), 1);
    json_object_put(r);
    free(ev);
}

static void test_not_succeeded_and_unbalanced_create_nothing(void **state)
{
    (void)state;
    expect_failure("pay-ns-1", "create_paid_invoice", 8004, NULL, "PAYMENT_NOT_SUCCEEDED", 1);
    expect_failure("pay-ns-2", "create_sales_receipt", 8005, NULL, "PAYMENT_NOT_SUCCEEDED", 2);
    expect_failure("pay-ns-3", "create_paid_invoice", 8002, NULL, "PAYMENT_NOT_SUCCEEDED", 3);
    expect_failure("pay-ns-4", "create_expense", 8004, EXPENSE_INPUTS(""), "PAYMENT_NOT_SUCCEEDED",
                   4);
    /* received 171.44 for lines of 169.99 (tax): no invoice could settle to zero */
    seed_hubspot(PORTAL1,
                 "{\"line_items\":[{\"id\":\"7221\",\"properties\":{\"name\":\"Consulting hour\","
                 "\"quantity\":\"1\",\"price\":\"169.99\",\"amount\":\"169.99\"}}],"
                 "\"commerce_payments\":[{\"id\":\"8013\",\"properties\":{\"hs_initial_amount\":"
                 "\"171.44\",\"hs_latest_status\":\"succeeded\"},\"associations\":{\"contacts\":"
                 "[\"301\"],\"line_items\":[\"7221\"]}}]}");
    expect_failure("pay-unbal", "create_paid_invoice", 8013, NULL, "HUBSPOT_VALIDATION", 5);
    assert_int_equal(qbo_posts(), 0);
}

static void test_paid_invoice_payment_retried_after_failures(void **state)
{
    char *ev = event_json("pay-pi-retry", "create_paid_invoice", PORTAL1, 8001, H_REALM_US1,
                          "\"create_missing_products\":\"true\"");
    struct json_object *r;
    (void)state;

    /* the first payment attempt fails outright, the second is created but its answer is
     * lost (twice: curl resends once on a reused connection): the re-runs find the
     * invoice and then the payment instead of creating either again */
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults",
                             "{\"method\":\"POST\",\"path\":\"/v3/company/*/payment\","
                             "\"status\":503,\"times\":1}",
                             NULL),
                     201);
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults",
                             "{\"method\":\"POST\",\"path\":\"/v3/company/*/payment\","
                             "\"phase\":\"after\",\"drop\":true,\"times\":2}",
                             NULL),
                     201);
    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    check_paid_invoice(r, 205397);
    assert_true(json_object_get_int(tp_at(r, "data.attempts")) >= 3);
    json_object_put(r);
    free(ev);
}

/* The invoice is created, the Payment call stalls, the worker is killed (SIGKILL) in it;
 * after its lease lapses another worker runs the event: one invoice, one payment. */
static void test_paid_invoice_crash_between_invoice_and_payment(void **state)
{
    char *ev = event_json("pay-crash", "create_paid_invoice", PORTAL1, 8001, H_REALM_US1,
                          "\"create_missing_products\":\"true\"");
    struct json_object *rules, *r;
    char e[256];
    redisReply *x;
    int64_t deadline, delay;
    int matched = 0, st;
    pid_t child;
    (void)state;

    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults",
                             "{\"method\":\"POST\",\"path\":\"/v3/company/*/payment\","
                             "\"delay_ms\":15000,\"drop\":true,\"times\":1}",
                             NULL),
                     201);
    child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        struct tp_env v;
        if (env_build(&v) < 0)
            _exit(2);
        handle_on(&v, v.t, ev, 100, NULL);
        _exit(3); /* not reached: killed while the payment call stalls */
    }
    deadline = clock_mono_ms() + 20000;
    while (!matched && clock_mono_ms() < deadline) {
        assert_int_equal(waitpid(child, &st, WNOHANG), 0); /* the child is still working */
        assert_int_equal(h_admin(HTTP_GET, "/_sandbox/faults", NULL, &rules), 200);
        matched = json_object_get_int(
                      tp_at(json_object_array_get_idx(tp_at(rules, "faults"), 0), "matched")) > 0;
        json_object_put(rules);
        if (!matched)
            clock_sleep_ms(20);
    }
    assert_true(matched);
    kill(child, SIGKILL);
    assert_int_equal(waitpid(child, &st, 0), child);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(count(H_REALM_US1, "Invoice"), 2); /* seeded 130 + the child's */
    assert_int_equal(count(H_REALM_US1, "Payment"), 0);

    /* the dead worker's claim lapses (expired here instead of waiting claim.lease) */
    x = redis_command(H.redis, e, sizeof e, "PEXPIRE hsqb:evt:{pay-crash} 1");
    freeReplyObject(x);
    clock_sleep_ms(5);
    assert_int_equal(env_build(&E), 0);
    deadline = clock_mono_ms() + 10000;
    while (handle_on(&E, E.t, ev, E.next_offset++, &delay) == PIPELINE_RETRY_LATER &&
           clock_mono_ms() < deadline)
        clock_sleep_ms(50);
    r = last_result(1);
    check_paid_invoice(r, 205397);
    json_object_put(r);
    free(ev);
}

/* ---- expense ------------------------------------------------------------------------- */

static void test_expense_of_fees_with_new_vendor(void **state)
{
    char *ev = event_json("pay-exp-1", "create_expense", PORTAL1, 8001, H_REALM_US1,
                          EXPENSE_INPUTS(",\"vendor\":\"HubSpot Payments\""));
    char *ev2 = event_json("pay-exp-2", "create_expense", PORTAL1, 8002, H_REALM_US1,
                           "\"expense_account\":\"58\",\"paid_from_account\":\"Mastercard\","
                           "\"payment_type\":\"CreditCard\",\"amount_source\":\"net\","
                           "\"vendor\":\"HubSpot Payments\"");
    struct json_object *r, *pu, *vendors;
    const char *vid = NULL;
    (void)state;

    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    assert_string_equal(tp_str_at(r, "data.qbo.entity"), "Purchase");
    assert_int_equal(json_object_get_int64(tp_at(r, "data.qbo.total_cents")), 5987);
    assert_null(tp_at(r, "data.qbo.customer_id"));
    pu = entity(H_REALM_US1, "Purchase", tp_str_at(r, "data.qbo.id"));
    assert_string_equal(tp_str_at(pu, "PaymentType"), "Check");
    assert_string_equal(tp_str_at(pu, "AccountRef.value"), "35");
    assert_string_equal(tp_str_at(pu, "TxnDate"), "2024-03-01");
    assert_string_equal(tp_str_at(json_object_array_get_idx(tp_at(pu, "Line"), 0),
                                  "AccountBasedExpenseLineDetail.AccountRef.value"),
                        "58");
    assert_string_equal(tp_str_at(pu, "EntityRef.type"), "Vendor");
    vendors = entities(H_REALM_US1, "Vendor");
    for (size_t i = 0; i < json_object_array_length(vendors); i++)
        if (strcmp(tp_str_at(json_object_array_get_idx(vendors, i), "DisplayName"),
                   "HubSpot Payments") == 0)
            vid = tp_str_at(json_object_array_get_idx(vendors, i), "Id");
    assert_non_null(vid);
    assert_string_equal(tp_str_at(pu, "EntityRef.value"), vid);
    json_object_put(pu);
    json_object_put(r);
    /* the net of a partially refunded payment, by card, same vendor: no second vendor */
    assert_int_equal(handle(ev2), PIPELINE_DONE);
    r = last_result(2);
    assert_int_equal(json_object_get_int64(tp_at(r, "data.qbo.total_cents")), 38520);
    pu = entity(H_REALM_US1, "Purchase", tp_str_at(r, "data.qbo.id"));
    assert_string_equal(tp_str_at(pu, "PaymentType"), "CreditCard");
    assert_string_equal(tp_str_at(pu, "AccountRef.value"), "41");
    assert_string_equal(tp_str_at(pu, "EntityRef.value"), vid);
    json_object_put(pu);
    json_object_put(r);
    assert_int_equal(count(H_REALM_US1, "Vendor"), 3); /* 56, 57 and ours */
    json_object_put(vendors);
    free(ev);
    free(ev2);
}

static void test_expense_refusals_create_nothing(void **state)
{
    (void)state;
    seed_hubspot(PORTAL1, "{\"commerce_payments\":[{\"id\":\"8014\",\"properties\":{"
                          "\"hs_initial_amount\":\"100.00\",\"hs_fees_amount\":\"0.00\","
                          "\"hs_latest_status\":\"succeeded\"},\"associations\":{\"contacts\":"
                          "[\"301\"]}}]}");
    expect_failure("exp-zero", "create_expense", 8014, EXPENSE_INPUTS(",\"vendor\":\"Zed\""),
                   "ZERO_AMOUNT", 1);
    expect_failure("exp-acct", "create_expense", 8001,
                   "\"expense_account\":\"Merchant Fees\",\"paid_from_account\":\"Checking\","
                   "\"payment_type\":\"Check\"",
                   "ACCOUNT_NOT_FOUND", 2);
    expect_failure("exp-vid", "create_expense", 8001, EXPENSE_INPUTS(",\"vendor\":\"9999\""),
                   "VENDOR_NOT_FOUND", 3);
    /* a vendor name held by a customer cannot become a vendor */
    expect_failure("exp-vname", "create_expense", 8001,
                   EXPENSE_INPUTS(",\"vendor\":\"Amy's Bird Sanctuary\""), "VENDOR_NOT_FOUND", 4);
    assert_int_equal(count(H_REALM_US1, "Purchase"), 0);
    assert_int_equal(count(H_REALM_US1, "Vendor"), 2);
}

struct worker_arg {
    const char *ev;
    int64_t offset;
    enum pipeline_disposition d;
};

static void *worker_main(void *opaque)
{
    struct worker_arg *a = opaque;
    char e[256];
    struct pipeline_thread *t = pipeline_thread_new(E.p, e, sizeof e);
    a->d = t ? handle_on(&E, t, a->ev, a->offset, NULL) : PIPELINE_STOP;
    pipeline_thread_free(t);
    return NULL;
}

static void test_expense_concurrent_events_create_one_vendor(void **state)
{
    char *ev1 = event_json("exp-race-1", "create_expense", PORTAL1, 8001, H_REALM_US1,
                           EXPENSE_INPUTS(",\"vendor\":\"Acme Processing\""));
    char *ev2 = event_json("exp-race-2", "create_expense", PORTAL1, 8002, H_REALM_US1,
                           EXPENSE_INPUTS(",\"vendor\":\"acme processing\""));
    struct worker_arg a[2] = {{ev1, 500, PIPELINE_STOP}, {ev2, 501, PIPELINE_STOP}};
    pthread_t th[2];
    struct json_object **res, *vendors;
    size_t n, ok = 0;
    int acme = 0;
    (void)state;

    /* widen the window: every vendor create takes 300 ms */
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults",
                             "{\"method\":\"POST\",\"path\":\"/v3/company/*/vendor\","
                             "\"delay_ms\":300}",
                             NULL),
                     201);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &a[i]), 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(a[i].d, PIPELINE_DONE);
    }
    res = tp_read_json(E.bootstrap, RESULTS, &n);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++)
        ok += strcmp(tp_str_at(res[i], "type"), "hsqb.result.succeeded") == 0;
    tp_free_json(res, n);
    assert_int_equal(ok, 2);
    vendors = entities(H_REALM_US1, "Vendor");
    for (size_t i = 0; i < json_object_array_length(vendors); i++)
        acme += strcasecmp(tp_str_at(json_object_array_get_idx(vendors, i), "DisplayName"),
                           "Acme Processing") == 0;
    json_object_put(vendors);
    assert_int_equal(acme, 1);
    assert_int_equal(
        h_count("vendor=qbo&method=POST&path=/v3/company/" H_REALM_US1 "/vendor", NULL), 1);
    assert_int_equal(count(H_REALM_US1, "Purchase"), 2);
    free(ev1);
    free(ev2);
}

/* ---- refund receipt ------------------------------------------------------------------ */

static void test_refund_receipt_full_refund(void **state)
{
    char *ev = event_json("pay-rr-1", "create_refund_receipt", PORTAL1, 8003, H_REALM_US1,
                          "\"refund_from_account\":\"Checking\"");
    struct json_object *r, *rr, *line;
    (void)state;

    assert_int_equal(handle(ev), PIPELINE_DONE);
    r = last_result(1);
    assert_string_equal(tp_str_at(r, "type"), "hsqb.result.succeeded");
    assert_string_equal(tp_str_at(r, "data.qbo.entity"), "RefundReceipt");
    assert_int_equal(json_object_get_int64(tp_at(r, "data.qbo.total_cents")), 37500);
    rr = entity(H_REALM_US1, "RefundReceipt", tp_str_at(r, "data.qbo.id"));
    assert_string_equal(tp_str_at(rr, "DepositToAccountRef.value"), "35");
    assert_int_equal(cents_at(rr, "TotalAmt"), 37500);
    assert_string_equal(tp_str_at(rr, "TxnDate"), "2026-03-01"); /* the event's day */
    assert_string_equal(tp_str_at(rr, "PaymentRefNum"), "PAY-8003");
    line = json_object_array_get_idx(tp_at(rr, "Line"), 0);
    assert_string_equal(tp_str_at(line, "SalesItemLineDetail.ItemRef.value"), "3"); /* CONS-HR */
    json_object_put(rr);
    json_object_put(r);
    free(ev);
}

static void test_refund_receipt_refusals_are_permanent(void **state)
{
    struct json_object *r;
    (void)state;

    expect_failure("rr-partial", "create_refund_receipt", 8002,
                   "\"refund_from_account\":\"Checking\"", "NOT_FULLY_REFUNDED", 1);
    expect_failure("rr-pending", "create_refund_receipt", 8006,
                   "\"refund_from_account\":\"Checking\"", "NOT_FULLY_REFUNDED", 2);
    expect_failure("rr-acct", "create_refund_receipt", 8003,
                   "\"refund_from_account\":\"Petty Cash\"", "ACCOUNT_NOT_FOUND", 3);
    r = last_result(3);
    assert_non_null(strstr(tp_str_at(r, "data.error.message"), "Petty Cash"));
    json_object_put(r);
    assert_int_equal(qbo_posts(), 0);
    assert_int_equal(dlq_count(), 3);
    /* a redelivery of the partial refund re-publishes its failure, no HubSpot read */
    {
        int reads = h_count("vendor=hubspot", NULL);
        char *ev = event_json("rr-partial", "create_refund_receipt", PORTAL1, 8002, H_REALM_US1,
                              "\"refund_from_account\":\"Checking\"");
        assert_int_equal(handle(ev), PIPELINE_DONE);
        assert_int_equal(h_count("vendor=hubspot", NULL), reads);
        r = last_result(4);
        assert_string_equal(tp_str_at(r, "data.error.code"), "NOT_FULLY_REFUNDED");
        json_object_put(r);
        free(ev);
    }
}

/* ---- several companies and portals on one stream ------------------------------------- */

static void test_two_realms_and_two_portals(void **state)
{
    char *sr2 = event_json("mt-sr-2", "create_sales_receipt", PORTAL2, 8101, H_REALM_US2,
                           "\"create_missing_products\":\"true\"");
    char *ex1 = event_json("mt-ex-1", "create_expense", PORTAL1, 8001, H_REALM_US1,
                           EXPENSE_INPUTS(",\"vendor\":\"Shared Vendor\""));
    char *ex2 = event_json("mt-ex-2", "create_expense", PORTAL2, 8101, H_REALM_US2,
                           EXPENSE_INPUTS(",\"vendor\":\"Shared Vendor\""));
    struct json_object **res, *sr;
    size_t n;
    (void)state;

    seed_hubspot(PORTAL2,
                 "{\"line_items\":[{\"id\":\"7311\",\"properties\":{\"name\":\"Translation page\","
                 "\"quantity\":\"40\",\"price\":\"12.50\",\"amount\":\"500.00\",\"hs_sku\":"
                 "\"TR-PAGE\"}}],\"commerce_payments\":[{\"id\":\"8101\",\"properties\":{"
                 "\"hs_initial_amount\":\"500.00\",\"hs_fees_amount\":\"14.80\","
                 "\"hs_latest_status\":\"succeeded\",\"hs_currency_code\":\"USD\","
                 "\"hs_initiated_date\":\"2024-05-01T09:00:00Z\"},\"associations\":{\"contacts\":"
                 "[\"401\"],\"line_items\":[\"7311\"]}}]}");
    assert_int_equal(handle(sr2), PIPELINE_DONE);
    assert_int_equal(handle(ex1), PIPELINE_DONE);
    assert_int_equal(handle(ex2), PIPELINE_DONE);
    res = tp_read_json(E.bootstrap, RESULTS, &n);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++)
        if (strcmp(tp_str_at(res[i], "type"), "hsqb.result.succeeded") != 0)
            fail_msg("%s", json_object_to_json_string(res[i]));
    assert_string_equal(tp_str_at(res[0], "data.realm_id"), H_REALM_US2);
    assert_int_equal(json_object_get_int64(tp_at(res[0], "data.portal_id")), PORTAL2);
    sr = entity(H_REALM_US2, "SalesReceipt", tp_str_at(res[0], "data.qbo.id"));
    assert_int_equal(cents_at(sr, "TotalAmt"), 50000);
    json_object_put(sr);
    assert_int_equal(json_object_get_int64(tp_at(res[2], "data.qbo.total_cents")), 1480);
    tp_free_json(res, n);
    /* each company got its own customer, item and vendor; nothing crossed over */
    assert_int_equal(count(H_REALM_US2, "SalesReceipt"), 1);
    assert_int_equal(count(H_REALM_US1, "SalesReceipt"), 1); /* the seeded one */
    assert_int_equal(count(H_REALM_US1, "Purchase"), 1);
    assert_int_equal(count(H_REALM_US2, "Purchase"), 1);
    assert_int_equal(count(H_REALM_US1, "Vendor"), 3);
    assert_int_equal(count(H_REALM_US2, "Vendor"), 3);
    /* portal 2 was read with its own token (the sandbox hides other portals' records) */
    assert_true(h_count("vendor=hubspot&tenant=243987001", NULL) > 0);
    free(sr2);
    free(ex1);
    free(ex2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sales_receipt_from_payment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_item_is_a_setting, setup_bare, teardown),
        cmocka_unit_test_setup_teardown(test_sales_receipt_without_lines_uses_default_item, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_company_defaults_from_the_settings_page, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_paid_invoice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paid_invoice_total_mismatch_records_no_payment, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_payment_in_euros, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paid_invoice_taxable_refused_creates_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_not_succeeded_and_unbalanced_create_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_paid_invoice_payment_retried_after_failures, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_paid_invoice_crash_between_invoice_and_payment,
                                        setup_bare, teardown),
        cmocka_unit_test_setup_teardown(test_expense_of_fees_with_new_vendor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expense_refusals_create_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expense_concurrent_events_create_one_vendor, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_refund_receipt_full_refund, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refund_receipt_refusals_are_permanent, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_two_realms_and_two_portals, setup, teardown),
    };
    int rc;

    log_set_level(LOG_ERROR);
    h_start();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    h_stop();
    return rc;
}
