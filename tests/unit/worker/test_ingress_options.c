/* test_ingress_options.c - component tests of worker/ingress_options (HubSpot's optionsUrl)
 * against a private redis-server and hsqb-sandbox (QuickBooks Online + Intuit OAuth).
 *
 * What a user building a workflow would notice: the QuickBooks company dropdown lists the
 * connected companies by name, flagging one that must be reconnected; every other
 * dropdown lists that company's active terms, accounts of the right types, vendors or
 * payment methods, alphabetically, with values the action will find again (the name, or
 * the Id when the name would read as something else); typing filters without regard to
 * case; scrolling pages by 50 and stops at 1,000; a second look within the cache lifetime
 * costs QuickBooks nothing; without a company chosen, for an unknown field or a body
 * that is not an options fetch, the answer is a 400 saying why; QuickBooks down is a 503
 * (HubSpot asks again), a revoked connection a 400 naming the company, and no token ever
 * reaches the log.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/log.h"
#include "worker/ingress_options.h"
#include "worker/tenancy.h"
#include "worker/oauth.h"
#include "worker/options_fetch.h"

#include "tests/unit/worker/sandbox_harness.h"

#define PORTAL "102670506"

static struct config *cfg;
static struct ingress_options *opts;

/* A connected company of PORTAL: its refresh token stored and the realm bound. */
static void store(const char *realm, const char *rt)
{
    char e[256];
    assert_int_equal(oauth_store_refresh_token(H.redis, realm, rt, 0, e, sizeof e), 0);
    if (tenancy_bind(H.redis, strtoll(PORTAL, NULL, 10), realm, e, sizeof e) < 0)
        fail_msg("bind %s: %s", realm, e);
}

static void open_with(const char *const *extra)
{
    char e[256];
    cfg = h_config(extra);
    opts = ingress_options_new(cfg, NULL, e, sizeof e);
    if (!opts)
        fail_msg("ingress_options_new: %s", e);
}

static int setup(void **state)
{
    (void)state;
    h_reset();
    store(H_REALM_US1, H_RT_US1);
    open_with(NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ingress_options_free(opts);
    config_free(cfg);
    opts = NULL;
    cfg = NULL;
    return 0;
}

/* ---- helpers ----------------------------------------------------------------------- */

/* Ask with body; the status, and the answer parsed into *doc (caller puts it). */
static int ask_raw(const char *body, size_t len, struct json_object **doc)
{
    struct jbuf out;
    char e[256];
    int status;

    jbuf_init(&out, 1u << 20);
    status = ingress_options_answer(opts, body, len, &out);
    assert_int_equal(out.err, 0);
    *doc = json_parse_strict(out.buf, out.len, 0, e, sizeof e);
    if (!*doc)
        fail_msg("answer is not JSON (%s): %s", e, out.buf);
    jbuf_release(&out);
    return status;
}

/* An options fetch for field; realm: the inputFields member's JSON value (NULL: no
 * inputFields); fetch: the fetchOptions members (NULL: none). */
static int ask(const char *field, const char *realm, const char *fetch, struct json_object **doc)
{
    char body[4096];
    int n = snprintf(body, sizeof body,
                     "{\"origin\":{\"portalId\":" PORTAL ",\"actionDefinitionId\":10646377,"
                     "\"actionDefinitionVersion\":1},\"objectTypeId\":\"0-3\","
                     "\"inputFieldName\":\"%s\"%s%s%s%s%s%s}",
                     field, realm ? ",\"inputFields\":{\"qbo_realm_id\":" : "", realm ? realm : "",
                     realm ? "}" : "", fetch ? ",\"fetchOptions\":{" : "", fetch ? fetch : "",
                     fetch ? "}" : "");
    assert_true(n > 0 && (size_t)n < sizeof body);
    return ask_raw(body, (size_t)n, doc);
}

#define STATIC(realm) "{\"type\":\"STATIC_VALUE\",\"value\":\"" realm "\"}"

static struct json_object *options_of(struct json_object *doc)
{
    struct json_object *a = NULL;
    int s = 0;
    assert_int_equal(json_get_array(doc, "options", &a), JGET_OK);
    assert_int_equal(json_get_bool(doc, "searchable", &s), JGET_OK);
    assert_true(s);
    return a;
}

/* The options' member key joined by '|' (static buffer: one use per expression). */
static const char *joined(struct json_object *doc, const char *key)
{
    static char buf[2][8192];
    static int k;
    struct json_object *a = options_of(doc);
    char *b = buf[k++ & 1];
    size_t n = 0;

    b[0] = 0;
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        const char *s = "";
        if (json_get_str(json_object_array_get_idx(a, i), key, &s) == JGET_MISSING)
            s = "-";
        n += (size_t)snprintf(b + n, sizeof buf[0] - n, "%s%s", i ? "|" : "", s);
    }
    return b;
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static size_t count_of(struct json_object *doc)
{
    return json_object_array_length(options_of(doc));
}

static const char *after_of(struct json_object *doc)
{
    const char *s = NULL;
    return json_get_str(doc, "after", &s) == JGET_OK ? s : NULL;
}

static const char *message_of(struct json_object *doc)
{
    const char *s = "";
    assert_int_equal(json_get_str(doc, "message", &s), JGET_OK);
    return s;
}

static int queries(const char *realm)
{
    char f[128];
    snprintf(f, sizeof f, "vendor=qbo&path=/v3/company/%s/query", realm);
    return h_count(f, NULL);
}

/* ok: 200 with these labels (and values, when given). */
static void expect_list(const char *field, const char *realm, const char *labels,
                        const char *values)
{
    struct json_object *doc;
    assert_int_equal(ask(field, realm, NULL, &doc), 200);
    assert_string_equal(joined(doc, "label"), labels);
    if (values)
        assert_string_equal(joined(doc, "value"), values);
    assert_null(after_of(doc));
    json_object_put(doc);
}

/* ok: 200, US1's options for field and fetch members are these labels, on one page. */
static void expect_found(const char *field, const char *fetch, const char *labels)
{
    struct json_object *doc;
    assert_int_equal(ask(field, STATIC(H_REALM_US1), fetch, &doc), 200);
    assert_string_equal(joined(doc, "label"), labels);
    assert_null(after_of(doc));
    json_object_put(doc);
}

static void expect_400(const char *body, const char *why)
{
    struct json_object *doc;
    assert_int_equal(ask_raw(body, strlen(body), &doc), 400);
    if (!strstr(message_of(doc), why))
        fail_msg("message \"%s\" lacks \"%s\" (body %s)", message_of(doc), why, body);
    json_object_put(doc);
}

static void seed(const char *json)
{
    struct json_object *doc = NULL;
    long st = h_admin(HTTP_POST, "/_sandbox/seed", json, &doc);
    if (st != 200)
        fail_msg("seed: %ld %s", st, doc ? json_object_to_json_string(doc) : "");
    json_object_put(doc);
}

/* Vendors "Vendor 0001".."Vendor <n>" (Ids 1001..) in US1. */
static void seed_vendors(int n)
{
    struct jbuf jb;
    char name[32], id[16];

    jbuf_init(&jb, 0);
    jbuf_obj_open(&jb);
    jbuf_key(&jb, "qbo");
    jbuf_obj_open(&jb);
    jbuf_key(&jb, "realms");
    jbuf_arr_open(&jb);
    jbuf_obj_open(&jb);
    jbuf_kv_str(&jb, "realm_id", H_REALM_US1);
    jbuf_key(&jb, "Vendor");
    jbuf_arr_open(&jb);
    for (int i = 1; i <= n; i++) {
        snprintf(name, sizeof name, "Vendor %04d", i);
        snprintf(id, sizeof id, "%d", 1000 + i);
        jbuf_obj_open(&jb);
        jbuf_kv_str(&jb, "Id", id);
        jbuf_kv_str(&jb, "DisplayName", name);
        jbuf_obj_close(&jb);
    }
    jbuf_arr_close(&jb);
    jbuf_obj_close(&jb);
    jbuf_arr_close(&jb);
    jbuf_obj_close(&jb);
    jbuf_obj_close(&jb);
    assert_int_equal(jb.err, 0);
    seed(jbuf_cstr(&jb));
    jbuf_release(&jb);
}

/* Log lines go to a temporary file from here; log_text() reads them back. */
static int log_fd = -1;

static void log_capture(void)
{
    char path[] = "/tmp/hsqb-test-log-XXXXXX";
    log_fd = mkstemp(path);
    assert_true(log_fd >= 0);
    unlink(path);
    log_set_fd(log_fd);
}

static char *log_text(void)
{
    static char buf[1 << 16];
    ssize_t n = pread(log_fd, buf, sizeof buf - 1, 0);
    log_set_fd(2);
    close(log_fd);
    log_fd = -1;
    buf[n > 0 ? n : 0] = 0;
    return buf;
}

/* ---- the company field ------------------------------------------------------------- */

/* Another customer's company is never offered, and its lists are refused in the words the
 * worker uses for REALM_NOT_ALLOWED; with tenancy.allow_unbound (the upgrade path) an
 * unbound company with credentials is offered, another customer's still not. */
static void test_only_the_portals_own_companies(void **state)
{
    struct json_object *doc;
    char e[256];
    (void)state;

    assert_int_equal(oauth_store_refresh_token(H.redis, H_REALM_CA, H_RT_CA, 0, e, sizeof e), 0);
    assert_int_equal(tenancy_bind(H.redis, 999, H_REALM_CA, e, sizeof e), 0); /* another's */
    assert_int_equal(oauth_store_refresh_token(H.redis, H_REALM_US2, H_RT_US2, 0, e, sizeof e), 0);
    assert_int_equal(ask("qbo_realm_id", NULL, NULL, &doc), 200);
    assert_string_equal(joined(doc, "value"), H_REALM_US1); /* US2 is bound to nobody */
    json_object_put(doc);
    assert_int_equal(ask("payment_terms", STATIC(H_REALM_CA), NULL, &doc), 400);
    assert_string_equal(message_of(doc),
                        "this QuickBooks company is not connected to this HubSpot account");
    json_object_put(doc);
    assert_int_equal(ask("payment_terms", STATIC(H_REALM_US2), NULL, &doc), 400);
    json_object_put(doc);

    ingress_options_free(opts);
    config_free(cfg);
    open_with((const char *const[]){"--tenancy.allow_unbound=true", "--options.cache_ttl=0",
                                    NULL});
    assert_int_equal(ask("qbo_realm_id", NULL, NULL, &doc), 200);
    assert_string_equal(joined(doc, "value"), H_REALM_US1 "|" H_REALM_US2); /* by label */
    json_object_put(doc);
    assert_int_equal(ask("payment_terms", STATIC(H_REALM_US2), NULL, &doc), 200);
    json_object_put(doc);
    assert_int_equal(ask("payment_terms", STATIC(H_REALM_CA), NULL, &doc), 400);
    json_object_put(doc);
}

static void test_companies_by_name(void **state)
{
    struct json_object *doc;
    char e[256];
    redisReply *r;
    (void)state;

    store(H_REALM_CA, H_RT_CA);
    store(H_REALM_US2, H_RT_US2);
    /* US2's refresh token was refused by Intuit: offered, flagged */
    r = redis_command(H.redis, e, sizeof e, "HSET hsqb:oauth:{" H_REALM_US2 "} reauth_required 1");
    assert_non_null(r);
    freeReplyObject(r);
    /* a realm with only a lock or another key is no connected company */
    r = redis_command(H.redis, e, sizeof e, "SET hsqb:lock:{" H_REALM_AST1 "}:oauth x");
    freeReplyObject(r);

    assert_int_equal(ask("qbo_realm_id", NULL, NULL, &doc), 200);
    assert_string_equal(joined(doc, "label"),
                        "Maple Leaf Books|QuickBooks company " H_REALM_US2 "|Sandbox Company US 1");
    assert_string_equal(joined(doc, "value"), H_REALM_CA "|" H_REALM_US2 "|" H_REALM_US1);
    assert_string_equal(joined(doc, "description"), H_REALM_CA
                        ", CA|" H_REALM_US2 ", needs to be reconnected|" H_REALM_US1 ", US");
    assert_null(after_of(doc));
    json_object_put(doc);
    /* within options.cache_ttl: no QuickBooks or Intuit call, whatever the field's inputs */
    int before = h_count("vendor=qbo", NULL) + h_count("vendor=oauth", NULL);
    assert_int_equal(ask("qbo_realm_id", STATIC(H_REALM_CA), "\"q\":\"sandbox\"", &doc), 200);
    assert_string_equal(joined(doc, "label"), "Sandbox Company US 1");
    assert_int_equal(h_count("vendor=qbo", NULL) + h_count("vendor=oauth", NULL), before);
    json_object_put(doc);
}

static void test_companies_none_connected(void **state)
{
    struct json_object *doc;
    (void)state;

    testutil_redis_flush(&H.rs);
    assert_int_equal(ask("qbo_realm_id", NULL, NULL, &doc), 200);
    assert_int_equal(count_of(doc), 0);
    json_object_put(doc);
}

/* ---- the lists of one company ------------------------------------------------------ */

static void test_payment_terms(void **state)
{
    struct json_object *doc;
    (void)state;

    assert_int_equal(ask("payment_terms", STATIC(H_REALM_US1), NULL, &doc), 200);
    assert_string_equal(joined(doc, "label"), "Due on receipt|Net 15|Net 30");
    assert_string_equal(joined(doc, "value"), "Due on receipt|Net 15|Net 30");
    assert_string_equal(joined(doc, "description"), "due on receipt|due in 15 days|due in 30 days");
    json_object_put(doc);
    assert_int_equal(queries(H_REALM_US1), 1);
}

static void test_account_fields(void **state)
{
    (void)state;

    expect_list("deposit_to_account", STATIC(H_REALM_US1),
                "Checking|Inventory Asset|Undeposited Funds", NULL);
    /* the inactive "Old Promotions" expense account is not offered */
    expect_list("expense_account", STATIC(H_REALM_US1),
                "Advertising|Bank Charges|Cost of Goods Sold", NULL);
    expect_list("paid_from_account", STATIC(H_REALM_US1), "Checking|Mastercard",
                "Checking|Mastercard");
    expect_list("income_account", "\"" H_REALM_US1 "\"", "Sales|Services", NULL);
    assert_int_equal(queries(H_REALM_US1), 4);
    /* refund_from_account offers the same list as paid_from_account: one cache entry */
    expect_list("refund_from_account", STATIC(H_REALM_US1), "Checking|Mastercard", NULL);
    assert_int_equal(queries(H_REALM_US1), 4);

    struct json_object *doc;
    assert_int_equal(ask("paid_from_account", STATIC(H_REALM_US1), NULL, &doc), 200);
    assert_string_equal(joined(doc, "description"), "Bank, no. 1010|Credit Card");
    json_object_put(doc);
}

static void test_vendors_and_payment_methods(void **state)
{
    struct json_object *doc;
    (void)state;

    assert_int_equal(ask("vendor", "\"" H_REALM_US1 "\"", NULL, &doc), 200);
    assert_string_equal(joined(doc, "label"), "Books by Bessie|Stripe");
    assert_string_equal(joined(doc, "description"), "-|Stripe, Inc.");
    json_object_put(doc);
    assert_int_equal(ask("payment_method", STATIC(H_REALM_US1), NULL, &doc), 200);
    assert_string_equal(joined(doc, "label"), "Cash|Check|Visa");
    assert_string_equal(joined(doc, "value"), "Cash|Check|Visa");
    assert_string_equal(joined(doc, "description"), "-|-|credit card");
    json_object_put(doc);
}

/* A value is what the action will look the record up by. */
static void test_values_read_back(void **state)
{
    struct json_object *doc;
    char body[2048], longname[OPTIONS_VALUE_MAX + 1];
    (void)state;

    /* "\xc3\xa9" x 250: 500 bytes, a value whole but a label cut */
    for (int i = 0; i < 250; i++)
        memcpy(longname + 2 * i, "\xc3\xa9", 2);
    longname[OPTIONS_VALUE_MAX] = 0;
    snprintf(body, sizeof body,
             "{\"qbo\":{\"realms\":[{\"realm_id\":\"" H_REALM_US1 "\","
             "\"Account\":[{\"Id\":\"500\",\"Name\":\"1200\",\"AccountType\":\"Expense\"}],"
             "\"Vendor\":[{\"Id\":\"600\",\"DisplayName\":\"%s\"}],"
             "\"PaymentMethod\":[{\"Id\":\"9\",\"Name\":\"77\"}]}]}}",
             longname);
    seed(body);

    /* digits would be read as an Id: the Id. (Sub-accounts, offered by FullyQualifiedName,
     * are not modelled by the sandbox: it sets FullyQualifiedName to Name.) */
    assert_int_equal(ask("expense_account", STATIC(H_REALM_US1), NULL, &doc), 200);
    assert_string_equal(joined(doc, "label"), "1200|Advertising|Bank Charges|Cost of Goods Sold");
    assert_string_equal(joined(doc, "value"), "500|Advertising|Bank Charges|Cost of Goods Sold");
    json_object_put(doc);
    /* a long name: the whole name as the value, the label cut on a character boundary */
    assert_int_equal(ask("vendor", STATIC(H_REALM_US1), "\"q\":\"\xc3\xa9\"", &doc), 200);
    assert_string_equal(joined(doc, "value"), longname);
    assert_int_equal(strlen(joined(doc, "label")), OPTIONS_LABEL_MAX);
    json_object_put(doc);
    /* payment methods are matched by name only: a digits-only one cannot be offered */
    expect_list("payment_method", STATIC(H_REALM_US1), "Cash|Check|Visa", NULL);
}

/* ---- search and paging ------------------------------------------------------------- */

static void test_search(void **state)
{
    (void)state;

    seed("{\"qbo\":{\"realms\":[{\"realm_id\":\"" H_REALM_US1 "\",\"Vendor\":["
         "{\"Id\":\"700\",\"DisplayName\":\"Caf\xc3\xa9 United\"}]}]}}");
    expect_found("payment_terms", "\"q\":\"NET\"", "Net 15|Net 30");
    expect_found("payment_terms", "\"q\":\"t 3\"", "Net 30");
    expect_found("payment_terms", "\"q\":\"zzz\"", "");
    /* ASCII letters fold; the rest of a UTF-8 label compares as is */
    expect_found("vendor", "\"q\":\"CAF\xc3\xa9 u\"", "Caf\xc3\xa9 United");
    expect_found("vendor", "\"q\":\"caf\xc3\x89\"", "");
    /* search ran on the cached lists: one query per list */
    assert_int_equal(queries(H_REALM_US1), 2);
}

static void test_paging(void **state)
{
    struct json_object *doc;
    (void)state;

    seed_vendors(120); /* + the seed's two: 122 */
    assert_int_equal(ask("vendor", STATIC(H_REALM_US1), NULL, &doc), 200);
    assert_int_equal(count_of(doc), OPTIONS_PAGE);
    assert_string_equal(after_of(doc), "50");
    assert_true(starts_with(joined(doc, "label"), "Books by Bessie|Stripe|Vendor 0001|"));
    json_object_put(doc);
    assert_int_equal(ask("vendor", STATIC(H_REALM_US1), "\"after\":\"50\"", &doc), 200);
    assert_int_equal(count_of(doc), OPTIONS_PAGE);
    assert_string_equal(after_of(doc), "100");
    assert_true(starts_with(joined(doc, "label"), "Vendor 0049|Vendor 0050|"));
    json_object_put(doc);
    /* the last page names no next offset; a JSON integer works as well as a string */
    assert_int_equal(ask("vendor", STATIC(H_REALM_US1), "\"after\":100", &doc), 200);
    assert_int_equal(count_of(doc), 22);
    assert_null(after_of(doc));
    assert_true(starts_with(joined(doc, "label"), "Vendor 0099|Vendor 0100|"));
    json_object_put(doc);
    assert_int_equal(ask("vendor", STATIC(H_REALM_US1), "\"after\":\"122\"", &doc), 200);
    assert_int_equal(count_of(doc), 0);
    assert_null(after_of(doc));
    json_object_put(doc);
    /* paging within a search: "vendor 0" matches the 120 seeded */
    assert_int_equal(ask("vendor", STATIC(H_REALM_US1), "\"q\":\"vendor 0\",\"after\":\"\"", &doc),
                     200);
    assert_int_equal(count_of(doc), OPTIONS_PAGE);
    assert_string_equal(after_of(doc), "50");
    assert_true(starts_with(joined(doc, "label"), "Vendor 0001|"));
    json_object_put(doc);
    assert_int_equal(
        ask("vendor", STATIC(H_REALM_US1), "\"q\":\"vendor 0\",\"after\":\"100\"", &doc), 200);
    assert_int_equal(count_of(doc), 20);
    assert_true(starts_with(joined(doc, "label"), "Vendor 0101|"));
    assert_null(after_of(doc));
    json_object_put(doc);
    /* exactly a page left: no next offset */
    assert_int_equal(ask("vendor", STATIC(H_REALM_US1), "\"after\":\"72\"", &doc), 200);
    assert_int_equal(count_of(doc), OPTIONS_PAGE);
    assert_null(after_of(doc));
    json_object_put(doc);
    assert_int_equal(queries(H_REALM_US1), 1);
}

static void test_at_most_1000(void **state)
{
    struct json_object *doc;
    (void)state;

    seed_vendors(1100);
    assert_int_equal(ask("vendor", STATIC(H_REALM_US1), "\"after\":\"950\"", &doc), 200);
    assert_int_equal(count_of(doc), OPTIONS_PAGE);
    assert_null(after_of(doc));
    json_object_put(doc);
    /* beyond the list: a cursor that is not ours */
    expect_400("{\"origin\":{\"portalId\":1},\"inputFieldName\":\"vendor\",\"inputFields\":{"
               "\"qbo_realm_id\":\"" H_REALM_US1 "\"},\"fetchOptions\":{\"after\":\"1001\"}}",
               "fetchOptions.after");
    assert_int_equal(queries(H_REALM_US1), 1); /* one page of 1,000 rows */
}

/* ---- the cache --------------------------------------------------------------------- */

static void test_cache(void **state)
{
    struct json_object *doc;
    char e[256];
    redisReply *r;
    (void)state;

    expect_list("payment_terms", STATIC(H_REALM_US1), "Due on receipt|Net 15|Net 30", NULL);
    expect_list("payment_terms", STATIC(H_REALM_US1), "Due on receipt|Net 15|Net 30", NULL);
    assert_int_equal(queries(H_REALM_US1), 1);
    r = redis_command(H.redis, e, sizeof e, "PTTL hsqb:options:{" H_REALM_US1 "}:terms");
    assert_non_null(r);
    assert_true(r->integer > 55000 && r->integer <= 60000); /* options.cache_ttl 60s */
    freeReplyObject(r);
    /* a damaged entry is fetched again, not served */
    r = redis_command(H.redis, e, sizeof e, "SET hsqb:options:{" H_REALM_US1 "}:terms [[1]]");
    freeReplyObject(r);
    expect_list("payment_terms", STATIC(H_REALM_US1), "Due on receipt|Net 15|Net 30", NULL);
    assert_int_equal(queries(H_REALM_US1), 2);
    /* the cache is per company */
    store(H_REALM_CA, H_RT_CA);
    assert_int_equal(ask("payment_terms", STATIC(H_REALM_CA), NULL, &doc), 200);
    assert_int_equal(queries(H_REALM_CA), 1);
    json_object_put(doc);
}

static void test_cache_off(void **state)
{
    const char *extra[] = {"--options.cache_ttl=0", NULL};
    (void)state;

    teardown(NULL);
    open_with(extra);
    expect_list("payment_terms", STATIC(H_REALM_US1), "Due on receipt|Net 15|Net 30", NULL);
    expect_list("payment_terms", STATIC(H_REALM_US1), "Due on receipt|Net 15|Net 30", NULL);
    assert_int_equal(queries(H_REALM_US1), 2);
}

/* ---- refusals ---------------------------------------------------------------------- */

static void test_company_not_chosen(void **state)
{
    static const char *const realms[] = {
        NULL,
        "null",
        "\"\"",
        "{\"type\":\"STATIC_VALUE\",\"value\":\"\"}",
        "{\"type\":\"STATIC_VALUE\",\"value\":null}",
        "{\"type\":\"STATIC_VALUE\"}",
        "{\"type\":\"OBJECT_PROPERTY\",\"propertyName\":\"qbo_realm\"}",
    };
    struct json_object *doc;
    (void)state;

    for (size_t i = 0; i < sizeof realms / sizeof realms[0]; i++) {
        assert_int_equal(ask("payment_terms", realms[i], NULL, &doc), 400);
        assert_string_equal(message_of(doc), "choose the QuickBooks company first");
        json_object_put(doc);
    }
    /* no inputFields member at all, and other inputs but no company */
    expect_400("{\"origin\":{\"portalId\":1},\"inputFieldName\":\"vendor\",\"inputFields\":{"
               "\"payment_type\":\"Cash\"}}",
               "choose the QuickBooks company first");
    assert_int_equal(ask("vendor", "\"46208x\"", NULL, &doc), 400);
    assert_string_equal(message_of(doc), "qbo_realm_id is not a QuickBooks company id (digits)");
    json_object_put(doc);
    assert_int_equal(ask("vendor", "{\"type\":\"STATIC_VALUE\",\"value\":12}", NULL, &doc), 400);
    json_object_put(doc);
    assert_int_equal(ask("vendor", "\"123456789012345678901234567890123\"", NULL, &doc), 400);
    json_object_put(doc);
    assert_int_equal(h_count("vendor=qbo", NULL), 0);
}

static void test_unknown_field(void **state)
{
    struct json_object *doc;
    (void)state;

    assert_int_equal(ask("customer_source", STATIC(H_REALM_US1), NULL, &doc), 400);
    assert_string_equal(message_of(doc), "no options for the input field \"customer_source\"");
    json_object_put(doc);
    /* event.c's name is deposit_to_account */
    assert_int_equal(ask("deposit_account", STATIC(H_REALM_US1), NULL, &doc), 400);
    json_object_put(doc);
    assert_int_equal(h_count("vendor=qbo", NULL), 0);
}

static void test_not_an_options_fetch(void **state)
{
    static const struct {
        const char *body, *why;
    } cases[] = {
        {"", "the body is empty"},
        {"payment_terms", "not JSON"},
        {"{\"inputFieldName\":\"vendor\"", "not JSON"},
        {"{\"a\":1,\"a\":2}", "not JSON"},
        {"[]", "not a JSON object"},
        {"{}", "inputFieldName is missing"},
        {"{\"inputFieldName\":5,\"origin\":{\"portalId\":1}}", "inputFieldName is wrong type"},
        {"{\"inputFieldName\":\"\",\"origin\":{\"portalId\":1}}", "inputFieldName must be"},
        {"{\"inputFieldName\":\"vendor\"}", "origin is missing"},
        {"{\"inputFieldName\":\"vendor\",\"origin\":[]}", "origin is wrong type"},
        {"{\"inputFieldName\":\"vendor\",\"origin\":{}}", "origin.portalId is missing"},
        {"{\"inputFieldName\":\"vendor\",\"origin\":{\"portalId\":\"x\"}}", "origin.portalId"},
        {"{\"inputFieldName\":\"vendor\",\"origin\":{\"portalId\":0}}", "origin.portalId"},
        {"{\"inputFieldName\":\"vendor\",\"origin\":{\"portalId\":1},\"inputFields\":[]}",
         "inputFields is wrong type"},
        {"{\"inputFieldName\":\"vendor\",\"origin\":{\"portalId\":1},\"fetchOptions\":\"q\"}",
         "fetchOptions is wrong type"},
        {"{\"inputFieldName\":\"vendor\",\"origin\":{\"portalId\":1},\"fetchOptions\":{\"q\":1}}",
         "fetchOptions.q is wrong type"},
        {"{\"inputFieldName\":\"vendor\",\"origin\":{\"portalId\":1},\"fetchOptions\":{\"after\":"
         "\"-1\"}}",
         "fetchOptions.after"},
        {"{\"inputFieldName\":\"vendor\",\"origin\":{\"portalId\":1},\"fetchOptions\":{\"after\":"
         "\"abc\"}}",
         "fetchOptions.after"},
        {"{\"inputFieldName\":\"vendor\",\"origin\":{\"portalId\":1},\"fetchOptions\":{\"after\":"
         "1.5}}",
         "fetchOptions.after"},
        {"{\"inputFieldName\":\"vendor\",\"origin\":{\"portalId\":1},\"fetchOptions\":{\"after\":"
         "true}}",
         "fetchOptions.after"},
    };
    char body[1024], q[OPTIONS_Q_MAX + 2];
    (void)state;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_400(cases[i].body, cases[i].why);
    memset(q, 'a', sizeof q - 1);
    q[sizeof q - 1] = 0;
    snprintf(body, sizeof body,
             "{\"inputFieldName\":\"vendor\",\"origin\":{\"portalId\":1},\"fetchOptions\":{"
             "\"q\":\"%s\"}}",
             q);
    expect_400(body, "fetchOptions.q is longer than");
    snprintf(body, sizeof body, "{\"inputFieldName\":\"%065d\",\"origin\":{\"portalId\":1}}", 0);
    expect_400(body, "inputFieldName must be 1..64 bytes");
    assert_int_equal(h_count("vendor=qbo", NULL), 0);
}

/* ---- QuickBooks failures ----------------------------------------------------------- */

static void test_quickbooks_down(void **state)
{
    struct json_object *doc;
    char *log;
    (void)state;

    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults",
                             "{\"vendor\":\"qbo\",\"path\":\"/v3/company/*/query\",\"status\":503,"
                             "\"times\":1}",
                             NULL),
                     201);
    log_capture();
    assert_int_equal(ask("payment_terms", STATIC(H_REALM_US1), NULL, &doc), 503);
    log = log_text();
    assert_string_equal(message_of(doc),
                        "QuickBooks did not answer for company " H_REALM_US1 "; try again");
    json_object_put(doc);
    assert_non_null(strstr(log, "listing the payment terms of realm " H_REALM_US1));
    assert_null(strstr(log, "static-access-token"));
    assert_null(strstr(log, H_RT_US1));
    /* nothing was cached: the next look asks QuickBooks again and succeeds */
    expect_list("payment_terms", STATIC(H_REALM_US1), "Due on receipt|Net 15|Net 30", NULL);
    assert_int_equal(queries(H_REALM_US1), 2);
}

static void test_company_names_unavailable(void **state)
{
    struct json_object *doc;
    (void)state;

    /* CompanyInfo fails: the company is still offered, by id, and the list is not cached */
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults",
                             "{\"vendor\":\"qbo\",\"path\":\"/v3/company/*/companyinfo/*\","
                             "\"status\":500,\"times\":1}",
                             NULL),
                     201);
    log_capture();
    assert_int_equal(ask("qbo_realm_id", NULL, NULL, &doc), 200);
    (void)log_text();
    assert_string_equal(joined(doc, "label"), "QuickBooks company " H_REALM_US1);
    assert_string_equal(joined(doc, "description"), H_REALM_US1);
    json_object_put(doc);
    assert_int_equal(ask("qbo_realm_id", NULL, NULL, &doc), 200);
    assert_string_equal(joined(doc, "label"), "Sandbox Company US 1");
    json_object_put(doc);
}

static void test_revoked_refresh_token(void **state)
{
    struct json_object *doc;
    char *log;
    (void)state;

    store(H_REALM_US1, "RT1-99-H0-1900000000notarealrefreshtoken");
    log_capture();
    assert_int_equal(ask("vendor", STATIC(H_REALM_US1), NULL, &doc), 400);
    assert_string_equal(message_of(doc),
                        "QuickBooks company " H_REALM_US1 " needs to be reconnected");
    json_object_put(doc);
    /* a company never connected to this portal */
    assert_int_equal(ask("vendor", STATIC(H_REALM_CA), NULL, &doc), 400);
    assert_string_equal(message_of(doc),
                        "this QuickBooks company is not connected to this HubSpot account");
    json_object_put(doc);
    /* and the company dropdown says so */
    assert_int_equal(ask("qbo_realm_id", NULL, NULL, &doc), 200);
    assert_string_equal(joined(doc, "description"), H_REALM_US1 ", needs to be reconnected");
    json_object_put(doc);
    log = log_text();
    assert_null(strstr(log, "notarealrefreshtoken"));
    assert_int_equal(h_count("vendor=qbo", NULL), 0);
}

/* ---- concurrency and start-up ------------------------------------------------------ */

#define THREADS 8

static void *asker(void *arg)
{
    static const char *const fields[] = {"payment_terms", "vendor", "expense_account",
                                         "qbo_realm_id"};
    struct jbuf out;
    char body[512];
    intptr_t i = (intptr_t)arg, bad = 0;

    for (int k = 0; k < 6; k++) {
        int n = snprintf(body, sizeof body,
                         "{\"origin\":{\"portalId\":" PORTAL "},\"inputFieldName\":\"%s\","
                         "\"inputFields\":{\"qbo_realm_id\":\"" H_REALM_US1 "\"}}",
                         fields[(i + k) % 4]);
        jbuf_init(&out, 1u << 20);
        bad += ingress_options_answer(opts, body, (size_t)n, &out) != 200;
        jbuf_release(&out);
    }
    return (void *)bad;
}

static void test_concurrent_callers(void **state)
{
    const char *extra[] = {"--ingress.threads=2", NULL};
    pthread_t t[THREADS];
    (void)state;

    teardown(NULL);
    open_with(extra);
    for (intptr_t i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, asker, (void *)i), 0);
    for (int i = 0; i < THREADS; i++) {
        void *bad;
        pthread_join(t[i], &bad);
        assert_int_equal((intptr_t)bad, 0);
    }
}

static void test_redis_unreachable_at_start(void **state)
{
    const char *extra[] = {"--redis.port=1", NULL};
    struct config *c;
    char e[256] = "";
    (void)state;

    c = h_config(extra);
    assert_null(ingress_options_new(c, NULL, e, sizeof e));
    assert_true(e[0] != 0);
    config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_only_the_portals_own_companies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_companies_by_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_companies_none_connected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_payment_terms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_account_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vendors_and_payment_methods, setup, teardown),
        cmocka_unit_test_setup_teardown(test_values_read_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_search, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_at_most_1000, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_company_not_chosen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_an_options_fetch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quickbooks_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_company_names_unavailable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoked_refresh_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_callers, setup, teardown),
        cmocka_unit_test(test_redis_unreachable_at_start),
    };
    int rc;

    log_set_level(LOG_WARN);
    h_start();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    h_stop();
    return rc;
}
