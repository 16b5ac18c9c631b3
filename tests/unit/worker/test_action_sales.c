/* test_action_sales.c - HubSpot line items and records mapped to QuickBooks document bodies
 * (pure: no network).
 *
 * What an accountant would notice: every line's Amount is HubSpot's net amount to the
 * cent, and QuickBooks' rule Amount == Qty x UnitPrice holds (discounts, fractional
 * quantities, amounts no unit price can reproduce); the body carries the term only on
 * invoices and the deposit account only on sales receipts; the PrivateNote names the
 * HubSpot record and the event; TxnDate is the event's date.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/action_sales.h"

static struct hubspot_line_item li(const char *qty, const char *price, const char *amount)
{
    struct hubspot_line_item l = {.id = 7001,
                                  .name = (char *)"Widget",
                                  .quantity = (char *)qty,
                                  .price = (char *)price,
                                  .amount = (char *)amount};
    return l;
}

static void check(const char *qty, const char *price, const char *amount, int64_t want_cents,
                  const char *want_qty, const char *want_price, int folded)
{
    struct hubspot_line_item l = li(qty, price, amount);
    struct sales_line out;
    char e[256], q[MONEY_FMT_SIZE], p[MONEY_FMT_SIZE];

    if (sales_line_money(&l, MONEY_ROUND_HALF_UP, &out, e, sizeof e) != 0)
        fail_msg("%s x %s = %s: %s", qty, price, amount, e);
    assert_int_equal(out.amount_cents, want_cents);
    money_qty_format(out.qty7, q, sizeof q);
    money_price_format(out.price7, p, sizeof p);
    assert_string_equal(q, want_qty);
    assert_string_equal(p, want_price);
    assert_int_equal(out.qty_folded, folded);
    /* QBO 6070: the pair reproduces the amount under any rounding of the product */
    assert_true(money_line_matches(out.qty7, out.price7, out.amount_cents, MONEY_ROUND_HALF_UP));
    assert_true(money_line_matches(out.qty7, out.price7, out.amount_cents, MONEY_ROUND_HALF_EVEN));
}

static void test_line_money_exact_pairs(void **state)
{
    (void)state;
    check("10", "150.00", "1500.00", 150000, "10", "150.00", 0);
    check("3", "19.99", "53.97", 5397, "3", "17.99", 0); /* 2.00 off per unit */
    check("2.5", "150.00", "375.00", 37500, "2.5", "150.00", 0);
    check("1", "1200.00", "1080.00", 108000, "1", "1080.00", 0); /* 10 % off */
    check("0.75", "40.00", "30.00", 3000, "0.75", "40.00", 0);
    check(NULL, "9.00", "9.00", 900, "1", "9.00", 0); /* no quantity: one */
    check("3", "3.34", "10.00", 1000, "3", "3.3333333", 0);
}

static void test_line_money_folds_when_no_price_fits(void **state)
{
    (void)state;
    /* no unit price with 7 decimals gives 0.01 for a million units */
    check("1000000", "0.00", "0.01", 1, "1", "0.01", 1);
}

static void test_line_money_without_amount(void **state)
{
    struct hubspot_line_item l = li("3", "19.99", NULL);
    struct sales_line out;
    char e[256];
    (void)state;

    assert_int_equal(sales_line_money(&l, MONEY_ROUND_HALF_UP, &out, e, sizeof e), 0);
    assert_int_equal(out.amount_cents, 5997);
    l.discount = (char *)"2.00"; /* a discount we would have to guess at: refuse */
    assert_int_equal(sales_line_money(&l, MONEY_ROUND_HALF_UP, &out, e, sizeof e), -1);
    assert_non_null(strstr(e, "line item 7001"));
    assert_non_null(strstr(e, "discount"));
    l = li("0.5", "0.01", NULL); /* half a cent: rounding mode decides */
    assert_int_equal(sales_line_money(&l, MONEY_ROUND_HALF_UP, &out, e, sizeof e), 0);
    assert_int_equal(out.amount_cents, 1);
    assert_int_equal(sales_line_money(&l, MONEY_ROUND_HALF_EVEN, &out, e, sizeof e), 0);
    assert_int_equal(out.amount_cents, 0);
}

static void test_line_money_refusals(void **state)
{
    struct sales_line out;
    char e[256];
    struct hubspot_line_item l;
    (void)state;

    l = li("1", "5", "-5.00");
    assert_int_equal(sales_line_money(&l, MONEY_ROUND_HALF_UP, &out, e, sizeof e), -1);
    assert_non_null(strstr(e, "negative amount"));
    l = li("-1", "5", "5.00");
    assert_int_equal(sales_line_money(&l, MONEY_ROUND_HALF_UP, &out, e, sizeof e), -1);
    l = li("1", "5", "5,00");
    assert_int_equal(sales_line_money(&l, MONEY_ROUND_HALF_UP, &out, e, sizeof e), -1);
    assert_non_null(strstr(e, "5,00"));
    l = li("1", NULL, NULL);
    assert_int_equal(sales_line_money(&l, MONEY_ROUND_HALF_UP, &out, e, sizeof e), -1);
    l = li("1e3", "5", "5.00");
    assert_int_equal(sales_line_money(&l, MONEY_ROUND_HALF_UP, &out, e, sizeof e), -1);
    /* more than two decimals in an amount are rounded with the configured mode */
    l = li("1", "10.005", "10.005");
    assert_int_equal(sales_line_money(&l, MONEY_ROUND_HALF_UP, &out, e, sizeof e), 0);
    assert_int_equal(out.amount_cents, 1001);
}

/* The largest line QuickBooks can be sent: UnitPrice carries 7 decimals in an int64, so
 * Qty 1 x UnitPrice = Amount (the fallback every line may need) holds up to
 * 99,999,999,999.99. Beyond it the line is refused by name, never multiplied past int64
 * (a $922 billion amount overflowed the fallback) nor sent with a wrong UnitPrice. */
static void test_line_money_beyond_quickbooks(void **state)
{
    static const char *const huge[][3] = {
        {"1", NULL, "100000000000.00"},          /* one cent past the limit */
        {"1", NULL, "922337203685477.58"},       /* amount x 10^5 past INT64_MAX */
        {"1", NULL, "999999999999999.99"},       /* the parser's own maximum */
        {"1000000", NULL, "999999999999999.99"}, /* a unit price would fit: still too much */
        {"1000", "99999999999.99", NULL},        /* qty x price */
    };
    struct hubspot_line_item l;
    struct sales_line out;
    char e[256];
    (void)state;

    check("1", NULL, "99999999999.99", SALES_LINE_MAX_CENTS, "1", "99999999999.99", 0);
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        l = li(huge[i][0], huge[i][1], huge[i][2]);
        assert_int_equal(sales_line_money(&l, MONEY_ROUND_HALF_UP, &out, e, sizeof e), -1);
        assert_non_null(strstr(e, "line item 7001"));
        assert_non_null(strstr(e, "more than QuickBooks accepts"));
    }
}

static const char *jstr(struct json_object *o, const char *k)
{
    struct json_object *v;
    assert_true(json_object_object_get_ex(o, k, &v));
    return json_object_get_string(v);
}

/* d's body as QBO receives it: the text into text (textsz), parsed back strictly. */
static struct json_object *body_of(const struct sales_doc *d, char *text, size_t textsz)
{
    struct jbuf jb;
    struct json_object *b;
    char e[256];

    jbuf_init(&jb, 0);
    assert_int_equal(sales_doc_body(d, &jb), 0);
    assert_non_null(jbuf_cstr(&jb));
    assert_true(jb.len < textsz);
    memcpy(text, jb.buf, jb.len + 1);
    b = json_parse_strict(jb.buf, jb.len, 0, e, sizeof e);
    if (!b)
        fail_msg("body is not strict JSON: %s\n%s", e, text);
    jbuf_release(&jb);
    return b;
}

static void test_doc_body(void **state)
{
    struct hubspot_line_item items[2] = {li("3", "19.99", "53.97"), li("1000000", "0", "0.01")};
    struct sales_line lines[2];
    const char *ids[2] = {"4", "19"};
    char e[128], text[4096];
    struct sales_doc d = {
        .action = ACTION_CREATE_INVOICE,
        .customer_id = "58",
        .txn_date = "2026-03-01",
        .term_id = "3",
        .deposit_account_id = "35",
        .private_note = "HubSpot deal 9001 hsqb event e-1",
        .li = items,
        .lines = lines,
        .item_ids = ids,
        .n = 2,
    };
    struct json_object *b, *v, *line, *det;
    (void)state;

    items[0].description = (char *)"Blue widgets";
    assert_int_equal(sales_line_money(&items[0], MONEY_ROUND_HALF_UP, &lines[0], e, sizeof e), 0);
    assert_int_equal(sales_line_money(&items[1], MONEY_ROUND_HALF_UP, &lines[1], e, sizeof e), 0);
    b = body_of(&d, text, sizeof text);
    /* money goes out as the exact decimal text, never a binary float's digits */
    assert_non_null(strstr(text, "\"Amount\":53.97"));
    assert_non_null(strstr(text, "\"Qty\":3"));
    assert_non_null(strstr(text, "\"UnitPrice\":17.99"));
    assert_non_null(strstr(text, "\"Amount\":0.01"));
    assert_string_equal(jstr(json_object_object_get(b, "CustomerRef"), "value"), "58");
    assert_string_equal(jstr(b, "TxnDate"), "2026-03-01");
    assert_string_equal(jstr(json_object_object_get(b, "SalesTermRef"), "value"), "3");
    assert_false(json_object_object_get_ex(b, "DepositToAccountRef", &v));
    assert_string_equal(jstr(b, "PrivateNote"), "HubSpot deal 9001 hsqb event e-1");
    assert_true(json_object_object_get_ex(b, "Line", &v));
    assert_int_equal(json_object_array_length(v), 2);
    line = json_object_array_get_idx(v, 0);
    assert_string_equal(jstr(line, "DetailType"), "SalesItemLineDetail");
    assert_string_equal(jstr(line, "Description"), "Blue widgets");
    det = json_object_object_get(line, "SalesItemLineDetail");
    assert_string_equal(jstr(json_object_object_get(det, "ItemRef"), "value"), "4");
    /* the folded line keeps HubSpot's quantity in its description */
    line = json_object_array_get_idx(v, 1);
    assert_non_null(strstr(jstr(line, "Description"), "quantity 1000000 at 0"));
    json_object_put(b);
    /* the exact text QBO receives, members in this order */
    assert_string_equal(
        text,
        "{\"CustomerRef\":{\"value\":\"58\"},\"TxnDate\":\"2026-03-01\","
        "\"SalesTermRef\":{\"value\":\"3\"},\"PrivateNote\":\"HubSpot deal 9001 hsqb event e-1\","
        "\"Line\":[{\"DetailType\":\"SalesItemLineDetail\",\"Amount\":53.97,"
        "\"Description\":\"Blue widgets\",\"SalesItemLineDetail\":{\"ItemRef\":{\"value\":\"4\"},"
        "\"Qty\":3,\"UnitPrice\":17.99}},{\"DetailType\":\"SalesItemLineDetail\",\"Amount\":0.01,"
        "\"Description\":\"Widget - quantity 1000000 at 0\",\"SalesItemLineDetail\":{\"ItemRef\":"
        "{\"value\":\"19\"},\"Qty\":1,\"UnitPrice\":0.01}}]}");

    d.action = ACTION_CREATE_SALES_RECEIPT;
    b = body_of(&d, text, sizeof text);
    assert_false(json_object_object_get_ex(b, "SalesTermRef", &v));
    assert_string_equal(jstr(json_object_object_get(b, "DepositToAccountRef"), "value"), "35");
    json_object_put(b);

    d.action = ACTION_CREATE_ESTIMATE;
    b = body_of(&d, text, sizeof text);
    assert_false(json_object_object_get_ex(b, "SalesTermRef", &v));
    assert_false(json_object_object_get_ex(b, "DepositToAccountRef", &v));
    json_object_put(b);
}

/* Tax, discount, currency, addresses and the estimate's expiry: what makes the QBO total
 * HubSpot's. */
static void test_doc_body_tax_discount_currency(void **state)
{
    struct hubspot_line_item items[2] = {li("2", "50", "100.00"), li("1", "15", "15.00")};
    struct sales_line lines[2];
    const char *ids[2] = {"4", "9"};
    const unsigned char taxable[2] = {1, 0};
    struct qbo_company co = {.sales_tax = 1, .ast = 1, .home_currency = "USD"};
    struct action_currency eur = {.code = "EUR", .foreign = 1, .rate = "1.0812"};
    struct action_currency usd = {.code = "USD"};
    struct hubspot_address bill = {.line1 = "1 Main St", .city = "Austin", .state = "TX",
                                   .zip = "78701", .country = "US"};
    struct hubspot_address ship = {.city = "New York", .state = "NY"};
    char e[128], text[4096];
    struct sales_doc d = {
        .action = ACTION_CREATE_ESTIMATE,
        .customer_id = "58",
        .txn_date = "2026-03-01",
        .private_note = "n",
        .li = items,
        .lines = lines,
        .item_ids = ids,
        .n = 2,
        .co = &co,
        .taxable = taxable,
        .tax_cents = 725,
        .cur = &eur,
        .discount_cents = 1150,
        .discount_desc = "Spring (10%)",
        .bill_addr = &bill,
        .ship_addr = &ship,
        .expiration_date = "2026-04-30",
    };
    struct json_object *b, *v;
    (void)state;

    assert_int_equal(sales_line_money(&items[0], MONEY_ROUND_HALF_UP, &lines[0], e, sizeof e), 0);
    assert_int_equal(sales_line_money(&items[1], MONEY_ROUND_HALF_UP, &lines[1], e, sizeof e), 0);
    b = body_of(&d, text, sizeof text);
    json_object_put(b);
    assert_string_equal(
        text,
        "{\"CustomerRef\":{\"value\":\"58\"},\"TxnDate\":\"2026-03-01\","
        "\"ExpirationDate\":\"2026-04-30\","
        "\"BillAddr\":{\"Line1\":\"1 Main St\",\"City\":\"Austin\",\"CountrySubDivisionCode\":"
        "\"TX\",\"PostalCode\":\"78701\",\"Country\":\"US\"},"
        "\"ShipAddr\":{\"City\":\"New York\",\"CountrySubDivisionCode\":\"NY\"},"
        "\"TxnTaxDetail\":{\"TotalTax\":7.25},\"CurrencyRef\":{\"value\":\"EUR\"},"
        "\"ExchangeRate\":1.0812,"
        "\"PrivateNote\":\"n\",\"Line\":["
        "{\"DetailType\":\"SalesItemLineDetail\",\"Amount\":100.00,\"Description\":\"Widget\","
        "\"SalesItemLineDetail\":{\"ItemRef\":{\"value\":\"4\"},\"Qty\":2,\"UnitPrice\":50.00,"
        "\"TaxCodeRef\":{\"value\":\"TAX\"}}},"
        "{\"DetailType\":\"SalesItemLineDetail\",\"Amount\":15.00,\"Description\":\"Widget\","
        "\"SalesItemLineDetail\":{\"ItemRef\":{\"value\":\"9\"},\"Qty\":1,\"UnitPrice\":15.00,"
        "\"TaxCodeRef\":{\"value\":\"NON\"}}},"
        "{\"DetailType\":\"DiscountLineDetail\",\"Amount\":11.50,\"Description\":"
        "\"Spring (10%)\",\"DiscountLineDetail\":{\"PercentBased\":false}}]}");

    /* with AST an explicit zero stops QBO adding tax; home currency: no CurrencyRef; no
     * discount line without a discount; an invoice has no ExpirationDate */
    d.tax_cents = 0;
    d.cur = &usd;
    d.discount_cents = 0;
    d.action = ACTION_CREATE_INVOICE;
    d.taxable = NULL;
    b = body_of(&d, text, sizeof text);
    assert_non_null(strstr(text, "\"TxnTaxDetail\":{\"TotalTax\":0.00}"));
    assert_null(strstr(text, "CurrencyRef"));
    assert_null(strstr(text, "DiscountLineDetail"));
    assert_null(strstr(text, "ExpirationDate"));
    assert_null(strstr(text, "\"TAX\"")); /* taxable NULL: every line NON */
    json_object_put(b);

    /* a company without sales tax: no tax codes, no TxnTaxDetail (QBO would refuse them) */
    co.sales_tax = 0;
    b = body_of(&d, text, sizeof text);
    assert_false(json_object_object_get_ex(b, "TxnTaxDetail", &v));
    assert_null(strstr(text, "TaxCodeRef"));
    json_object_put(b);

    /* empty addresses are left out */
    memset(&bill, 0, sizeof bill);
    d.ship_addr = NULL;
    b = body_of(&d, text, sizeof text);
    assert_false(json_object_object_get_ex(b, "BillAddr", &v));
    assert_false(json_object_object_get_ex(b, "ShipAddr", &v));
    json_object_put(b);
}

/* DocNumbers for companies that type their own: HubSpot's number when QBO can take it,
 * else the pattern; duplicates get -2, -3, ... within 21 characters. */
static void test_doc_numbers(void **state)
{
    struct qbo_company on = {.custom_txn_numbers = 1}, off = {0};
    char n[QBO_DOCNUMBER_MAX], s[32];
    (void)state;

    assert_int_equal(action_doc_number(&off, "Q-2001", 'Q', 2001, 0, n), 0);
    assert_string_equal(n, ""); /* QBO numbers it */
    assert_int_equal(action_doc_number(&on, "Q-2001", 'Q', 2001, 0, n), 0);
    assert_string_equal(n, "Q-2001");
    assert_int_equal(action_doc_number(&on, "Q-2001", 'Q', 2001, 1, n), 0);
    assert_string_equal(n, "Q-2001-2");
    assert_int_equal(action_doc_number(&on, NULL, 'D', 1001, 0, n), 0);
    assert_string_equal(n, "D1001");
    assert_int_equal(action_doc_number(&on, NULL, 'P', 8001, 9, n), 0);
    assert_string_equal(n, "P8001-10");
    /* HubSpot's number unusable (too long, spaces, control bytes): the pattern */
    assert_int_equal(action_doc_number(&on, "QUOTE-2026-000000001234", 'Q', 7, 0, n), 0);
    assert_string_equal(n, "Q7");
    assert_int_equal(action_doc_number(&on, "Q 1", 'Q', 7, 0, n), 0);
    assert_string_equal(n, "Q7");
    /* a long base keeps its distinct tail and the suffix */
    assert_int_equal(action_doc_number(&on, "ABCDEFGHIJKLMNOPQRSTU", 'Q', 7, 3, n), 0);
    assert_string_equal(n, "CDEFGHIJKLMNOPQRSTU-4");
    assert_int_equal(strlen(n), ACTION_DOCNUM_MAX);
    assert_int_equal(action_doc_number(&on, NULL, 'D', INT64_MAX, 9, n), 0);
    assert_true(strlen(n) <= ACTION_DOCNUM_MAX);
    assert_int_equal(action_doc_number(&on, NULL, 'D', 1, ACTION_DOCNUM_VARIANTS, n), -1);
    assert_true(action_email_ok("ada@example.com"));
    assert_false(action_email_ok("ada@example"));
    assert_false(action_email_ok("a b@example.com"));
    assert_false(action_email_ok("@example.com"));
    assert_false(action_email_ok("a@b@example.com"));
    assert_false(action_email_ok("ada@example.com."));
    assert_false(action_email_ok(NULL));
    action_doc_step(0, 0, s, sizeof s);
    assert_string_equal(s, "doc");
    action_doc_step(1, 0, s, sizeof s);
    assert_string_equal(s, "doc:r1");
    action_doc_step(1, 2, s, sizeof s);
    assert_string_equal(s, "doc:r1:n3");
}

/* The seller's order: hs_position_on_quote, then id; no or odd positions last. */
static void test_line_order(void **state)
{
    struct hubspot_line_item li[6] = {
        {.id = 10, .position = "2"}, {.id = 11, .position = NULL}, {.id = 12, .position = "0"},
        {.id = 13, .position = "x1"}, {.id = 9, .position = "2"}, {.id = 14, .position = "1"},
    };
    const int64_t want[6] = {12, 14, 9, 10, 11, 13};
    (void)state;

    hubspot_line_items_order(li, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(li[i].id, want[i]);
    assert_int_equal(hubspot_order_key("18446744073709551616"), INT64_MAX); /* past int64 */
    assert_int_equal(hubspot_order_key("-1"), INT64_MAX);
    assert_int_equal(hubspot_order_key("007"), 7);
}

/* A one-line estimate of item ("58", 2026-03-01, item "4"), its money into *line. */
static struct sales_doc one_line_doc(struct hubspot_line_item *item, struct sales_line *line)
{
    static const char *const ids[1] = {"4"};
    char e[128];

    assert_int_equal(sales_line_money(item, MONEY_ROUND_HALF_UP, line, e, sizeof e), 0);
    return (struct sales_doc){.action = ACTION_CREATE_ESTIMATE,
                              .customer_id = "58",
                              .txn_date = "2026-03-01",
                              .private_note = "n",
                              .li = item,
                              .lines = line,
                              .item_ids = ids,
                              .n = 1};
}

/* Amounts go out as the exact decimal money_format gives (two places, trailing zeros
 * kept), quantities trimmed, unit prices with 2 to 7 places. */
static void test_doc_body_exact_amounts(void **state)
{
    struct hubspot_line_item item = li("2.5", "150.00", "375.00");
    struct sales_line line;
    struct sales_doc d = one_line_doc(&item, &line);
    char text[4096];
    (void)state;

    json_object_put(body_of(&d, text, sizeof text));
    assert_non_null(strstr(text, "\"Amount\":375.00,\"Description\":\"Widget\","
                                 "\"SalesItemLineDetail\":{\"ItemRef\":{\"value\":\"4\"},"
                                 "\"Qty\":2.5,\"UnitPrice\":150.00}}]}"));
    item = li(NULL, "1234.5", NULL); /* no amount: quantity 1 x price */
    d = one_line_doc(&item, &line);
    json_object_put(body_of(&d, text, sizeof text));
    assert_non_null(strstr(text, "\"Amount\":1234.50,"));
    assert_non_null(strstr(text, "\"Qty\":1,\"UnitPrice\":1234.50}"));
    item = li("3", "3.34", "10.00");
    d = one_line_doc(&item, &line);
    json_object_put(body_of(&d, text, sizeof text));
    assert_non_null(strstr(text, "\"Amount\":10.00,"));
    assert_non_null(strstr(text, "\"Qty\":3,\"UnitPrice\":3.3333333}"));
}

/* Whatever a HubSpot description holds, the body stays valid JSON and QBO reads back the
 * very same text. */
static void test_doc_body_escapes_descriptions(void **state)
{
    static const char desc[] = "Say \"hi\" C:\\temp\\x\ttab\nline\r\b\f \x01\x1f\x7f / "
                               "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe4\xb8\xad";
    struct hubspot_line_item item = li("1", "10.00", "10.00");
    struct sales_line line;
    struct sales_doc d;
    struct json_object *b, *l;
    char text[4096];
    (void)state;

    item.description = (char *)desc;
    d = one_line_doc(&item, &line);
    d.customer_id = "5\"8";
    d.private_note = "HubSpot deal 9001 \\ \"x\" hsqb event e-1";
    b = body_of(&d, text, sizeof text);
    l = json_object_array_get_idx(json_object_object_get(b, "Line"), 0);
    assert_string_equal(jstr(l, "Description"), desc);
    assert_string_equal(jstr(b, "PrivateNote"), d.private_note);
    assert_string_equal(jstr(json_object_object_get(b, "CustomerRef"), "value"), "5\"8");
    /* escaped as json-c did (short forms, \u00XX), UTF-8 passed through as is */
    assert_non_null(strstr(text, "\"Description\":\"Say \\\"hi\\\" C:\\\\temp\\\\x\\ttab\\nline"
                                 "\\r\\b\\f \\u0001\\u001f\x7f / caf\xc3\xa9 \xe2\x82\xac"));
    json_object_put(b);
}

/* A description longer than QBO's 4000 bytes is cut on a character boundary, never
 * inside a UTF-8 sequence. */
static void test_doc_body_long_description(void **state)
{
    char *desc = malloc(4100), text[8192];
    struct hubspot_line_item item = li("1", "10.00", "10.00");
    struct sales_line line;
    struct sales_doc d;
    struct json_object *b;
    const char *got;
    (void)state;

    assert_non_null(desc);
    memset(desc, 'a', 3999);
    memcpy(desc + 3999, "\xe2\x82\xac tail", 9); /* a euro sign across byte 4000 */
    item.description = desc;
    d = one_line_doc(&item, &line);
    b = body_of(&d, text, sizeof text);
    got = jstr(json_object_array_get_idx(json_object_object_get(b, "Line"), 0), "Description");
    assert_int_equal(strlen(got), 3999);
    assert_int_equal(strspn(got, "a"), 3999);
    json_object_put(b);
    free(desc);
}

/* A body that does not fit the caller's cap fails instead of going out truncated. */
static void test_doc_body_cap(void **state)
{
    struct hubspot_line_item item = li("1", "10.00", "10.00");
    struct sales_line line;
    struct sales_doc d = one_line_doc(&item, &line);
    struct jbuf jb;
    (void)state;

    jbuf_init(&jb, 64);
    assert_int_equal(sales_doc_body(&d, &jb), -1);
    assert_null(jbuf_cstr(&jb));
    jbuf_release(&jb);
}

static void test_note_and_date(void **state)
{
    struct action_event ev = {.object_type = OBJECT_QUOTE, .object_id = 2001, .time_ms = 0};
    char note[320], date[11];
    (void)state;

    snprintf(ev.id, sizeof ev.id, "ap-1-2-3");
    sales_private_note(&ev, note, sizeof note);
    assert_string_equal(note, "HubSpot quote 2001 hsqb event ap-1-2-3");
    sales_txn_date(&ev, 1714558831412LL, NULL, date); /* no event time: now */
    assert_string_equal(date, "2024-05-01");
    ev.time_ms = 1709251200000LL; /* 2024-03-01T00:00:00Z */
    sales_txn_date(&ev, 1714558831412LL, NULL, date);
    assert_string_equal(date, "2024-03-01");
    /* a time past year 9999 (the decoder refuses them; the date never depends on it):
     * now's date, always terminated */
    memset(date, 'X', sizeof date);
    ev.time_ms = 253402300800000LL; /* 10000-01-01T00:00:00Z */
    sales_txn_date(&ev, 1714558831412LL, NULL, date);
    assert_string_equal(date, "2024-05-01");
    memset(date, 'X', sizeof date);
    ev.time_ms = 0;
    sales_txn_date(&ev, 400000000000000LL, NULL, date); /* now past 9999 too: the epoch */
    assert_string_equal(date, "1970-01-01");
    /* the company's day: 23:30 in Los Angeles on the last day of January is January's */
    {
        char e[160];
        const struct tz_zone *la = tz_zone_get("America/Los_Angeles", e, sizeof e);
        assert_non_null(la);
        ev.time_ms = 1769931000000LL; /* 2026-02-01T07:30:00Z = 2026-01-31T23:30:00-08:00 */
        sales_txn_date(&ev, 1714558831412LL, la, date);
        assert_string_equal(date, "2026-01-31");
        sales_txn_date(&ev, 1714558831412LL, NULL, date);
        assert_string_equal(date, "2026-02-01"); /* UTC: the next period */
    }
}

static void test_ops_table(void **state)
{
    (void)state;
    assert_true(action_sales_ops.handles(ACTION_CREATE_INVOICE, OBJECT_DEAL));
    assert_true(action_sales_ops.handles(ACTION_CREATE_ESTIMATE, OBJECT_QUOTE));
    assert_true(action_sales_ops.handles(ACTION_CREATE_SALES_RECEIPT, OBJECT_QUOTE));
    /* payment-based work belongs to the payment family */
    assert_false(action_sales_ops.handles(ACTION_CREATE_SALES_RECEIPT, OBJECT_COMMERCE_PAYMENT));
    assert_false(action_sales_ops.handles(ACTION_CREATE_PAID_INVOICE, OBJECT_COMMERCE_PAYMENT));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_money_exact_pairs),
        cmocka_unit_test(test_line_money_folds_when_no_price_fits),
        cmocka_unit_test(test_line_money_without_amount),
        cmocka_unit_test(test_line_money_refusals),
        cmocka_unit_test(test_line_money_beyond_quickbooks),
        cmocka_unit_test(test_doc_body),
        cmocka_unit_test(test_doc_body_tax_discount_currency),
        cmocka_unit_test(test_line_order),
        cmocka_unit_test(test_doc_numbers),
        cmocka_unit_test(test_doc_body_exact_amounts),
        cmocka_unit_test(test_doc_body_escapes_descriptions),
        cmocka_unit_test(test_doc_body_long_description),
        cmocka_unit_test(test_doc_body_cap),
        cmocka_unit_test(test_note_and_date),
        cmocka_unit_test(test_ops_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
