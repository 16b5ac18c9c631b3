/* test_action_payment.c - a HubSpot payment's facts, the payment rules, and the Payment
 * and Purchase bodies (pure: no network).
 *
 * What an accountant would notice: a refund receipt only for a payment refunded in full;
 * a paid invoice or sales receipt only for a succeeded payment; a paid invoice refused
 * when a line carries a tax rate (and told which); the expense amount is the fees, the
 * net or the total to the cent, and zero is refused; the document date is the day the
 * money moved (UTC); the Payment settles exactly the invoice it links; the Purchase books
 * the right accounts and payee.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/action_payment.h"

/* ---- helpers ------------------------------------------------------------------------ */

/* A payment object with the given name/value pairs (NULL-terminated; a NULL value is an
 * absent property). Everything is borrowed from static strings: free only o->props. */
static struct hubspot_object payment(const char *const *kv)
{
    struct hubspot_object o = {.type = OBJECT_COMMERCE_PAYMENT, .id = 8001};
    size_t n = 0;

    while (kv[2 * n])
        n++;
    o.props = calloc(n ? n : 1, sizeof *o.props);
    for (size_t i = 0; i < n; i++)
        o.props[i] = (struct hubspot_prop){(char *)kv[2 * i], (char *)kv[2 * i + 1]};
    o.nprops = n;
    return o;
}

static struct payment_facts facts(const char *initial, const char *fees, const char *refunds,
                                  const char *net, const char *status)
{
    const char *kv[] = {"hs_initial_amount",
                        initial,
                        "hs_fees_amount",
                        fees,
                        "hs_refunds_amount",
                        refunds,
                        "hs_net_amount",
                        net,
                        "hs_latest_status",
                        status,
                        "hs_initiated_date",
                        "2024-03-01T10:00:00.000Z",
                        NULL};
    struct hubspot_object o = payment(kv);
    struct payment_facts f;
    char e[256];

    if (payment_facts_read(&o, MONEY_ROUND_HALF_UP, &f, e, sizeof e) != 0)
        fail_msg("%s", e);
    free(o.props);
    return f;
}

static struct action_event event(int64_t object_id, const char *id)
{
    struct action_event ev = {.object_id = object_id, .object_type = OBJECT_COMMERCE_PAYMENT};
    snprintf(ev.id, sizeof ev.id, "%s", id);
    return ev;
}

static const char *str_at(struct json_object *o, const char *a, const char *b)
{
    struct json_object *v = NULL;
    if (!json_object_object_get_ex(o, a, &v))
        return NULL;
    if (b && !json_object_object_get_ex(v, b, &v))
        return NULL;
    return json_object_get_string(v);
}

/* A body as QBO receives it: its text into text (textsz), parsed back strictly. */
static struct json_object *parsed(struct jbuf *jb, int rc, char *text, size_t textsz)
{
    struct json_object *o;
    char e[256];

    assert_int_equal(rc, 0);
    assert_non_null(jbuf_cstr(jb));
    assert_true(jb->len < textsz);
    memcpy(text, jb->buf, jb->len + 1);
    o = json_parse_strict(jb->buf, jb->len, 0, e, sizeof e);
    if (!o)
        fail_msg("body is not strict JSON: %s\n%s", e, text);
    jbuf_release(jb);
    return o;
}

/* ---- facts ------------------------------------------------------------------------- */

static void test_dates_are_utc_days(void **state)
{
    char d[11];
    (void)state;

    assert_int_equal(payment_date_utc("2024-03-01T10:00:00.000Z", d), 0);
    assert_string_equal(d, "2024-03-01");
    assert_int_equal(payment_date_utc("2024-02-29T23:30:00-05:00", d), 0); /* 04:30 UTC */
    assert_string_equal(d, "2024-03-01");
    assert_int_equal(payment_date_utc("2024-03-01T01:00:00+02:00", d), 0);
    assert_string_equal(d, "2024-02-29");
    assert_int_equal(payment_date_utc("1709287200000", d), 0); /* epoch ms */
    assert_string_equal(d, "2024-03-01");
    assert_int_equal(payment_date_utc("2024-03-01", d), 0);
    assert_string_equal(d, "2024-03-01");
    assert_int_equal(payment_date_utc(NULL, d), -1);
    assert_string_equal(d, "");
    assert_int_equal(payment_date_utc("yesterday", d), -1);
    assert_int_equal(payment_date_utc("2024-13-01T00:00:00Z", d), -1);
    assert_int_equal(payment_date_utc("2024-03-01T10:00:00", d), -1); /* no zone: ambiguous */
    assert_int_equal(payment_date_utc("2024-03-01T10:00:00Zjunk", d), -1);
}

/* In the seller's zone: the day the money moved there; a bare date stays that date. */
static void test_dates_in_a_zone(void **state)
{
    char d[11], e[160];
    const struct tz_zone *la = tz_zone_get("America/Los_Angeles", e, sizeof e);
    (void)state;

    assert_non_null(la);
    assert_int_equal(payment_date_in("2024-03-01T06:00:00Z", la, d), 0); /* 22:00 the day before */
    assert_string_equal(d, "2024-02-29");
    assert_int_equal(payment_date_in("2024-03-01T09:00:00Z", la, d), 0);
    assert_string_equal(d, "2024-03-01");
    assert_int_equal(payment_date_in("1709272800000", la, d), 0); /* 2024-03-01T06:00Z */
    assert_string_equal(d, "2024-02-29");
    assert_int_equal(payment_date_in("2024-03-01", la, d), 0);
    assert_string_equal(d, "2024-03-01");
    assert_int_equal(payment_date_in("1709272800", la, d), 0); /* ten digits: ms of 1970 */
    assert_string_equal(d, "1970-01-20");
}

static void test_facts_read_exact_cents(void **state)
{
    struct payment_facts f = facts("2053.97", "59.87", "0.00", "1994.10", "succeeded");
    (void)state;

    assert_int_equal(f.initial_cents, 205397);
    assert_int_equal(f.fees_cents, 5987);
    assert_int_equal(f.refunds_cents, 0);
    assert_int_equal(f.net_cents, 199410);
    assert_string_equal(f.status, "succeeded");
    assert_string_equal(f.date, "2024-03-01");
    /* no net amount from HubSpot: initial - fees - refunds */
    f = facts("500.00", "14.80", "100.00", NULL, "partially_refunded");
    assert_int_equal(f.net_cents, 38520);
    /* no fees at all */
    f = facts("100.00", NULL, NULL, NULL, "succeeded");
    assert_int_equal(f.fees_cents, 0);
    assert_int_equal(f.net_cents, 10000);
}

static void test_facts_refuse_bad_amounts(void **state)
{
    const char *no_initial[] = {"hs_fees_amount", "1.00", NULL};
    const char *junk[] = {"hs_initial_amount", "1,000.00", NULL};
    const char *neg[] = {"hs_initial_amount", "10.00", "hs_fees_amount", "-1.00", NULL};
    struct hubspot_object o;
    struct payment_facts f;
    char e[256];
    (void)state;

    o = payment(no_initial);
    assert_int_equal(payment_facts_read(&o, MONEY_ROUND_HALF_UP, &f, e, sizeof e), -1);
    assert_non_null(strstr(e, "hs_initial_amount"));
    free(o.props);
    o = payment(junk);
    assert_int_equal(payment_facts_read(&o, MONEY_ROUND_HALF_UP, &f, e, sizeof e), -1);
    assert_non_null(strstr(e, "hs_initial_amount"));
    free(o.props);
    o = payment(neg);
    assert_int_equal(payment_facts_read(&o, MONEY_ROUND_HALF_UP, &f, e, sizeof e), -1);
    free(o.props);
}

/* ---- rules ------------------------------------------------------------------------- */

static void expect_status(enum hsqb_action a, const char *status, const char *initial,
                          const char *refunds, enum hsqb_error want /* HSQB_ERR_COUNT = ok */)
{
    struct payment_facts f = facts(initial, "1.00", refunds, NULL, status);
    struct api_error err;

    api_error_clear(&err);
    if (want == HSQB_ERR_COUNT) {
        if (payment_check_status(a, &f, &err) != 0)
            fail_msg("%s on %s: %s", event_action_name(a), status ? status : "(none)", err.message);
        return;
    }
    assert_int_equal(payment_check_status(a, &f, &err), -1);
    assert_int_equal(err.cls, API_PERMANENT);
    if (err.code != want)
        fail_msg("%s on %s: %s, wanted %s", event_action_name(a), status ? status : "(none)",
                 hsqb_error_name(err.code), hsqb_error_name(want));
}

static void test_status_rules(void **state)
{
    static const char *const others[] = {"processing",
                                         "failed",
                                         "partially_refunded",
                                         "refunded",
                                         "processing_refund",
                                         "disputed_won",
                                         "disputed_lost",
                                         "disputed_action_required",
                                         "disputed_awaiting_decision",
                                         NULL};
    enum hsqb_action sales[] = {ACTION_CREATE_SALES_RECEIPT, ACTION_CREATE_PAID_INVOICE};
    (void)state;

    for (size_t a = 0; a < 2; a++) {
        expect_status(sales[a], "succeeded", "100.00", "0.00", HSQB_ERR_COUNT);
        for (size_t i = 0; others[i]; i++)
            expect_status(sales[a], others[i], "100.00", "0.00", HSQB_ERR_PAYMENT_NOT_SUCCEEDED);
        expect_status(sales[a], NULL, "100.00", "0.00", HSQB_ERR_PAYMENT_NOT_SUCCEEDED);
    }
    /* fees are charged once the money was collected, refunds and disputes or not */
    expect_status(ACTION_CREATE_EXPENSE, "succeeded", "100.00", "0.00", HSQB_ERR_COUNT);
    expect_status(ACTION_CREATE_EXPENSE, "refunded", "100.00", "100.00", HSQB_ERR_COUNT);
    expect_status(ACTION_CREATE_EXPENSE, "disputed_lost", "100.00", "100.00", HSQB_ERR_COUNT);
    expect_status(ACTION_CREATE_EXPENSE, "processing", "100.00", "0.00",
                  HSQB_ERR_PAYMENT_NOT_SUCCEEDED);
    expect_status(ACTION_CREATE_EXPENSE, "failed", "100.00", "0.00",
                  HSQB_ERR_PAYMENT_NOT_SUCCEEDED);
    /* refund receipts: status refunded AND the whole amount, to the cent */
    expect_status(ACTION_CREATE_REFUND_RECEIPT, "refunded", "375.00", "375.00", HSQB_ERR_COUNT);
    expect_status(ACTION_CREATE_REFUND_RECEIPT, "refunded", "375.00", "374.99",
                  HSQB_ERR_NOT_FULLY_REFUNDED);
    expect_status(ACTION_CREATE_REFUND_RECEIPT, "partially_refunded", "500.00", "100.00",
                  HSQB_ERR_NOT_FULLY_REFUNDED);
    expect_status(ACTION_CREATE_REFUND_RECEIPT, "processing_refund", "250.00", "250.00",
                  HSQB_ERR_NOT_FULLY_REFUNDED);
    expect_status(ACTION_CREATE_REFUND_RECEIPT, "disputed_lost", "80.00", "80.00",
                  HSQB_ERR_NOT_FULLY_REFUNDED);
    expect_status(ACTION_CREATE_REFUND_RECEIPT, "succeeded", "80.00", "0.00",
                  HSQB_ERR_NOT_FULLY_REFUNDED);
}

static void test_not_fully_refunded_message_names_amounts(void **state)
{
    struct payment_facts f = facts("500.00", "14.80", "100.00", NULL, "partially_refunded");
    struct api_error err;
    (void)state;

    assert_int_equal(payment_check_status(ACTION_CREATE_REFUND_RECEIPT, &f, &err), -1);
    assert_non_null(strstr(err.message, "partially_refunded"));
    assert_non_null(strstr(err.message, "100.00 of 500.00"));
}

static void test_taxable_rule_lists_taxable_lines(void **state)
{
    struct hubspot_line_item li[3] = {
        {.id = 7201, .name = (char *)"Consulting hour"},
        {.id = 7203, .name = (char *)"Setup fee", .tax_rate_group_id = (char *)"1001"},
        {.id = 7204, .name = (char *)"Widget", .tax_rate_group_id = (char *)"1002"},
    };
    struct api_error err;
    char *details = NULL;
    (void)state;

    assert_false(payment_line_taxable(&li[0]));
    assert_true(payment_line_taxable(&li[1]));
    assert_int_equal(payment_taxable_failure(li, 1, &err, &details), 0);
    assert_null(details);
    assert_int_equal(payment_taxable_failure(li, 3, &err, &details), 1);
    assert_int_equal(err.code, HSQB_ERR_TAXABLE_ITEMS_NOT_ALLOWED);
    assert_int_equal(err.cls, API_PERMANENT);
    assert_non_null(strstr(err.message, "Setup fee, Widget"));
    assert_non_null(details);
    assert_string_equal(details, "{\"line_items\":[{\"id\":\"7203\",\"name\":\"Setup fee\","
                                 "\"tax_rate_group_id\":\"1001\"},{\"id\":\"7204\",\"name\":"
                                 "\"Widget\",\"tax_rate_group_id\":\"1002\"}]}");
    free(details);
}

static void test_expense_amounts(void **state)
{
    struct payment_facts f = facts("2053.97", "59.87", "0.00", "1994.10", "succeeded");
    struct api_error err;
    int64_t c = -1;
    (void)state;

    assert_int_equal(payment_expense_amount(&f, AMOUNT_SOURCE_FEES, &c, &err), 0);
    assert_int_equal(c, 5987);
    assert_int_equal(payment_expense_amount(&f, AMOUNT_SOURCE_NET, &c, &err), 0);
    assert_int_equal(c, 199410);
    assert_int_equal(payment_expense_amount(&f, AMOUNT_SOURCE_TOTAL, &c, &err), 0);
    assert_int_equal(c, 205397);
    /* a payment without fees: nothing to record */
    f = facts("100.00", "0.00", "0.00", "100.00", "succeeded");
    c = -1;
    assert_int_equal(payment_expense_amount(&f, AMOUNT_SOURCE_FEES, &c, &err), -1);
    assert_int_equal(err.code, HSQB_ERR_ZERO_AMOUNT);
    assert_int_equal(c, -1);
    /* fully refunded: the net is the lost fee, negative */
    f = facts("375.00", "11.18", "375.00", "-11.18", "refunded");
    assert_int_equal(payment_expense_amount(&f, AMOUNT_SOURCE_NET, &c, &err), -1);
    assert_int_equal(err.code, HSQB_ERR_HUBSPOT_VALIDATION);
    assert_non_null(strstr(err.message, "-11.18"));
}

static void test_method_names(void **state)
{
    (void)state;
    assert_string_equal(payment_method_names("cash")[0], "Cash");
    assert_string_equal(payment_method_names("check")[0], "Check");
    assert_string_equal(payment_method_names("card")[0], "Credit Card");
    assert_string_equal(payment_method_names("wire_transfer")[0], "Wire Transfer");
    assert_string_equal(payment_method_names("sepa")[0], "Direct Debit");
    assert_null(payment_method_names("other")[0]);
    assert_null(payment_method_names(NULL)[0]);
    assert_null(payment_method_names("Card")[0]); /* HubSpot's values are lower case */
}

static void test_private_note(void **state)
{
    struct action_event ev = event(8001, "cb-123");
    char note[PAYMENT_NOTE_MAX], longref[200];
    const char *suffix;
    (void)state;

    payment_private_note(&ev, NULL, "PAY-8001", note, sizeof note);
    assert_string_equal(note, "HubSpot payment 8001 (PAY-8001) hsqb event cb-123");
    payment_private_note(&ev, "processing fees", NULL, note, sizeof note);
    assert_string_equal(note, "HubSpot payment 8001 processing fees hsqb event cb-123");
    /* a long reference is cut; the event suffix always ends the note */
    memset(longref, 'R', sizeof longref - 1);
    longref[sizeof longref - 1] = '\0';
    memset(ev.id, 'e', EVENT_ID_MAX);
    ev.id[EVENT_ID_MAX] = '\0';
    payment_private_note(&ev, "processing fees", longref, note, sizeof note);
    suffix = strstr(note, " hsqb event ");
    assert_non_null(suffix);
    assert_int_equal(strlen(suffix + 12), EVENT_ID_MAX);
}

/* ---- bodies ------------------------------------------------------------------------ */

static void test_payment_body_settles_the_invoice(void **state)
{
    struct payment_body b = {
        .customer_id = "58",
        .invoice_id = "266",
        .amount_cents = 205397,
        .txn_date = "2024-03-01",
        .private_note = "HubSpot payment 8001 hsqb event x",
        .x = {.deposit_account_id = "35",
              .method_id = "3",
              .reference = "PAY-8001-ABCDEFGHIJKLMNOPQRSTUVWXYZ",
              .due_date = "2024-03-01"},
    };
    struct json_object *p, *line, *lt;
    struct jbuf jb;
    char text[2048];
    (void)state;

    jbuf_init(&jb, 0);
    p = parsed(&jb, payment_payment_body(&b, &jb), text, sizeof text);
    assert_string_equal(str_at(p, "CustomerRef", "value"), "58");
    assert_string_equal(str_at(p, "TotalAmt", NULL), "2053.97");
    assert_string_equal(str_at(p, "DepositToAccountRef", "value"), "35");
    assert_string_equal(str_at(p, "PaymentMethodRef", "value"), "3");
    assert_string_equal(str_at(p, "PaymentRefNum", NULL), "PAY-8001-ABCDEFGHIJKL"); /* 21 */
    assert_null(str_at(p, "DueDate", NULL));
    line = json_object_array_get_idx(json_object_object_get(p, "Line"), 0);
    assert_string_equal(str_at(line, "Amount", NULL), "2053.97");
    lt = json_object_array_get_idx(json_object_object_get(line, "LinkedTxn"), 0);
    assert_string_equal(str_at(lt, "TxnId", NULL), "266");
    assert_string_equal(str_at(lt, "TxnType", NULL), "Invoice");
    json_object_put(p);
    /* the exact text: member order, amounts as exact two-decimal numbers */
    assert_string_equal(text,
                        "{\"CustomerRef\":{\"value\":\"58\"},\"TotalAmt\":2053.97,"
                        "\"TxnDate\":\"2024-03-01\","
                        "\"PrivateNote\":\"HubSpot payment 8001 hsqb event x\","
                        "\"DepositToAccountRef\":{\"value\":\"35\"},"
                        "\"PaymentMethodRef\":{\"value\":\"3\"},"
                        "\"PaymentRefNum\":\"PAY-8001-ABCDEFGHIJKL\",\"Line\":[{\"Amount\":"
                        "2053.97,\"LinkedTxn\":[{\"TxnId\":\"266\",\"TxnType\":\"Invoice\"}]}]}");
    /* five cents keeps both decimals */
    b.amount_cents = 5;
    b.x = (struct payment_extras){0};
    jbuf_init(&jb, 0);
    json_object_put(parsed(&jb, payment_payment_body(&b, &jb), text, sizeof text));
    assert_non_null(strstr(text, "\"TotalAmt\":0.05,"));
    assert_non_null(strstr(text, "\"Line\":[{\"Amount\":0.05,"));
    assert_null(strstr(text, "PaymentRefNum"));
}

static void test_purchase_body(void **state)
{
    struct purchase_body b = {
        .payment_type = PAYMENT_TYPE_CREDIT_CARD,
        .paid_from_id = "41",
        .expense_id = "58",
        .vendor_id = "57",
        .amount_cents = 5987,
        .description = "HubSpot payment 8001 (PAY-8001) processing fees",
        .txn_date = "2024-03-01",
        .private_note = "note hsqb event x",
    };
    struct json_object *p, *line;
    struct jbuf jb;
    char text[2048];
    (void)state;

    jbuf_init(&jb, 0);
    p = parsed(&jb, payment_purchase_body(&b, &jb), text, sizeof text);
    assert_string_equal(str_at(p, "PaymentType", NULL), "CreditCard");
    assert_string_equal(str_at(p, "AccountRef", "value"), "41");
    assert_string_equal(str_at(p, "EntityRef", "value"), "57");
    assert_string_equal(str_at(p, "EntityRef", "type"), "Vendor");
    assert_string_equal(str_at(p, "TxnDate", NULL), "2024-03-01");
    line = json_object_array_get_idx(json_object_object_get(p, "Line"), 0);
    assert_string_equal(str_at(line, "DetailType", NULL), "AccountBasedExpenseLineDetail");
    assert_string_equal(str_at(line, "Amount", NULL), "59.87");
    assert_string_equal(str_at(json_object_object_get(line, "AccountBasedExpenseLineDetail"),
                               "AccountRef", "value"),
                        "58");
    json_object_put(p);
    assert_string_equal(text, "{\"PaymentType\":\"CreditCard\",\"AccountRef\":{\"value\":\"41\"},"
                              "\"EntityRef\":{\"value\":\"57\",\"type\":\"Vendor\"},"
                              "\"TxnDate\":\"2024-03-01\",\"PrivateNote\":\"note hsqb event x\","
                              "\"Line\":[{\"DetailType\":\"AccountBasedExpenseLineDetail\","
                              "\"Amount\":59.87,\"Description\":\"HubSpot payment 8001 (PAY-8001) "
                              "processing fees\",\"AccountBasedExpenseLineDetail\":{\"AccountRef\":"
                              "{\"value\":\"58\"}}}]}");
    /* no vendor: no payee at all */
    b.vendor_id = NULL;
    b.payment_type = PAYMENT_TYPE_CASH;
    b.amount_cents = 123456789;
    jbuf_init(&jb, 0);
    p = parsed(&jb, payment_purchase_body(&b, &jb), text, sizeof text);
    assert_null(str_at(p, "EntityRef", NULL));
    assert_string_equal(str_at(p, "PaymentType", NULL), "Cash");
    assert_non_null(strstr(text, "\"Amount\":1234567.89,"));
    json_object_put(p);
}

/* The payment's fields follow the sales document's members, in a fixed order. */
static void test_doc_body_with_extras(void **state)
{
    struct hubspot_line_item item = {.id = 7001,
                                     .name = (char *)"Widget",
                                     .quantity = (char *)"2",
                                     .price = (char *)"10.00",
                                     .amount = (char *)"20.00"};
    struct sales_line line;
    const char *ids[1] = {"4"};
    struct sales_doc d = {
        .action = ACTION_CREATE_SALES_RECEIPT,
        .customer_id = "58",
        .txn_date = "2024-03-01",
        .private_note = "HubSpot payment 8001 hsqb event p-1",
        .li = &item,
        .lines = &line,
        .item_ids = ids,
        .n = 1,
    };
    struct payment_extras x = {.deposit_account_id = "4", .reference = "PAY-8001 \"\xc3\xa9\""};
    struct json_object *b;
    struct jbuf jb;
    char text[2048], e[128];
    (void)state;

    assert_int_equal(sales_line_money(&item, MONEY_ROUND_HALF_UP, &line, e, sizeof e), 0);
    jbuf_init(&jb, 0);
    b = parsed(&jb, payment_doc_body(&d, &x, &jb), text, sizeof text);
    assert_string_equal(str_at(b, "DepositToAccountRef", "value"), "4");
    assert_string_equal(str_at(b, "PaymentRefNum", NULL), "PAY-8001 \"\xc3\xa9\"");
    assert_null(str_at(b, "PaymentMethodRef", NULL));
    assert_null(str_at(b, "DueDate", NULL));
    json_object_put(b);
    assert_string_equal(text, "{\"CustomerRef\":{\"value\":\"58\"},\"TxnDate\":\"2024-03-01\","
                              "\"PrivateNote\":\"HubSpot payment 8001 hsqb event p-1\",\"Line\":["
                              "{\"DetailType\":\"SalesItemLineDetail\",\"Amount\":20.00,"
                              "\"Description\":\"Widget\",\"SalesItemLineDetail\":{\"ItemRef\":"
                              "{\"value\":\"4\"},\"Qty\":2,\"UnitPrice\":10.00}}],"
                              "\"DepositToAccountRef\":{\"value\":\"4\"},"
                              "\"PaymentRefNum\":\"PAY-8001 \\\"\xc3\xa9\\\"\"}");
    /* a paid invoice: due the day it is issued */
    d.action = ACTION_CREATE_PAID_INVOICE;
    x = (struct payment_extras){.due_date = "2024-03-01"};
    jbuf_init(&jb, 0);
    json_object_put(parsed(&jb, payment_doc_body(&d, &x, &jb), text, sizeof text));
    assert_non_null(strstr(text, "}}],\"DueDate\":\"2024-03-01\"}"));
    /* a deposit account from both the document and the extras would be sent twice */
    d.deposit_account_id = "35";
    x = (struct payment_extras){.deposit_account_id = "4"};
    jbuf_init(&jb, 0);
    assert_int_equal(payment_doc_body(&d, &x, &jb), -1);
    jbuf_release(&jb);
}

static void test_family_takes_payments_only(void **state)
{
    (void)state;
    assert_true(action_payment_ops.handles(ACTION_CREATE_SALES_RECEIPT, OBJECT_COMMERCE_PAYMENT));
    assert_true(action_payment_ops.handles(ACTION_CREATE_PAID_INVOICE, OBJECT_COMMERCE_PAYMENT));
    assert_true(action_payment_ops.handles(ACTION_CREATE_EXPENSE, OBJECT_COMMERCE_PAYMENT));
    assert_true(action_payment_ops.handles(ACTION_CREATE_REFUND_RECEIPT, OBJECT_COMMERCE_PAYMENT));
    assert_false(action_payment_ops.handles(ACTION_CREATE_SALES_RECEIPT, OBJECT_DEAL));
    assert_false(action_payment_ops.handles(ACTION_CREATE_INVOICE, OBJECT_COMMERCE_PAYMENT));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dates_are_utc_days),
        cmocka_unit_test(test_dates_in_a_zone),
        cmocka_unit_test(test_facts_read_exact_cents),
        cmocka_unit_test(test_facts_refuse_bad_amounts),
        cmocka_unit_test(test_status_rules),
        cmocka_unit_test(test_not_fully_refunded_message_names_amounts),
        cmocka_unit_test(test_taxable_rule_lists_taxable_lines),
        cmocka_unit_test(test_expense_amounts),
        cmocka_unit_test(test_method_names),
        cmocka_unit_test(test_private_note),
        cmocka_unit_test(test_payment_body_settles_the_invoice),
        cmocka_unit_test(test_purchase_body),
        cmocka_unit_test(test_doc_body_with_extras),
        cmocka_unit_test(test_family_takes_payments_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
