/* test_qbo.c - component tests of worker/qbo against a private redis-server and
 * hsqb-sandbox (QuickBooks Online + Intuit OAuth), plus the pure fault classifier.
 *
 * What a user would notice: a create sent twice with one requestid makes one document;
 * a 401 in the middle of a create refreshes the token once and resends the same
 * requestid (still one document); a token rejected again after another replica's refresh
 * forces a real refresh instead of failing the event, and a 401 that outlives that is
 * retried, never "reconnect QuickBooks" (only invalid_grant is); names with apostrophes
 * are found; QBO's faults come
 * back classified with their codes (6240, 6070, throttling, 5xx); a non-US company is
 * recognised and CompanyInfo is not fetched twice; paging returns every row; an
 * oversized answer is refused. qbo_create_doc() (the create the actions use, read
 * without a json-c tree) keeps the Id, DocNumber and currency of the created document,
 * refuses one without an Id so the event is retried, and fails exactly as qbo_create().
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/log.h"
#include "worker/oauth.h"
#include "worker/qbo.h"
#include "worker/ratelimit.h"

#include "tests/unit/worker/sandbox_harness.h"

struct env {
    struct config *cfg;
    struct oauth *oauth;
    struct ratelimit *rl;
    struct qbo_api *q;
    struct http_client *http;
};

static struct env E;

static void env_open(const char *const *extra, int with_rl)
{
    char e[256];
    E.cfg = h_config(extra);
    assert_non_null(E.oauth = oauth_new(E.cfg, e, sizeof e));
    if (with_rl)
        assert_non_null(E.rl = ratelimit_new(E.cfg, e, sizeof e));
    assert_non_null(E.q = qbo_api_new(E.cfg, E.oauth, E.rl, NULL, e, sizeof e));
    E.http = h_http_new();
}

static void env_close(void)
{
    qbo_api_free(E.q);
    ratelimit_free(E.rl);
    oauth_free(E.oauth);
    config_free(E.cfg);
    http_client_free(E.http);
    memset(&E, 0, sizeof E);
}

static int setup(void **state)
{
    char e[256];
    (void)state;
    h_reset();
    assert_int_equal(oauth_store_refresh_token(H.redis, H_REALM_US1, H_RT_US1, 0, e, sizeof e), 0);
    assert_int_equal(oauth_store_refresh_token(H.redis, H_REALM_CA, H_RT_CA, 0, e, sizeof e), 0);
    assert_int_equal(oauth_store_refresh_token(H.redis, H_REALM_AST1, H_RT_AST1, 0, e, sizeof e),
                     0);
    assert_int_equal(oauth_store_refresh_token(H.redis, H_REALM_MC1, H_RT_MC1, 0, e, sizeof e), 0);
    env_open(NULL, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    env_close();
    return 0;
}

static const char *str_of(struct json_object *o, const char *key)
{
    const char *s = NULL;
    assert_int_equal(json_get_str(o, key, &s), JGET_OK);
    return s;
}

static int rows_where(const char *realm, const char *sql)
{
    struct json_object *rows;
    struct api_error err;
    int n;
    assert_int_equal(qbo_query(H_IO(E.http, H.redis), E.q, realm, sql, &rows, &err), 0);
    n = (int)json_object_array_length(rows);
    json_object_put(rows);
    return n;
}

static void add_fault(const char *json)
{
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults", json, NULL), 201);
}

#define INVOICE(doc)                                                                               \
    "{\"CustomerRef\":{\"value\":\"1\"},\"DocNumber\":\"" doc "\",\"Line\":[{\"DetailType\":"      \
    "\"SalesItemLineDetail\",\"Amount\":300.00,\"SalesItemLineDetail\":{\"ItemRef\":{"             \
    "\"value\":\"1\"},\"Qty\":2,\"UnitPrice\":150.00}}]}"

/* A customer named like one the seed holds (fault 6240), and an invoice whose Amount is
 * not Qty x UnitPrice (fault 6070). */
#define DUP_CUSTOMER "{\"DisplayName\":\"Amy's Bird Sanctuary\"}"
#define BAD_INVOICE                                                                                \
    "{\"CustomerRef\":{\"value\":\"1\"},\"Line\":[{\"DetailType\":\"SalesItemLineDetail\","        \
    "\"Amount\":301.00,\"SalesItemLineDetail\":{\"ItemRef\":{\"value\":\"1\"},\"Qty\":2,"          \
    "\"UnitPrice\":150.00}}]}"

/* ---- tests ------------------------------------------------------------------------- */

static void test_create_same_requestid_once(void **state)
{
    const char *body = INVOICE("HS-T-1");
    struct json_object *a, *b, *reqs;
    struct api_error err;
    (void)state;

    assert_int_equal(qbo_create(H_IO(E.http, H.redis), E.q,
                                &(struct qbo_req){H_REALM_US1, "invoice",
                                                  "hsqb-test-requestid-0001", body, strlen(body)},
                                &a, &err),
                     0);
    assert_int_equal(qbo_create(H_IO(E.http, H.redis), E.q,
                                &(struct qbo_req){H_REALM_US1, "Invoice",
                                                  "hsqb-test-requestid-0001", body, strlen(body)},
                                &b, &err),
                     0);
    assert_string_equal(str_of(a, "Id"), str_of(b, "Id"));
    assert_string_equal(str_of(a, "DocNumber"), "HS-T-1");
    assert_int_equal(rows_where(H_REALM_US1, "SELECT * FROM Invoice WHERE DocNumber = 'HS-T-1'"),
                     1);
    /* Every request carried minorversion and the requestid as query parameters. */
    assert_int_equal(h_count("vendor=qbo&method=POST", &reqs), 2);
    for (size_t i = 0; i < 2; i++) {
        const char *q = str_of(json_object_array_get_idx(reqs, i), "query");
        assert_non_null(strstr(q, "minorversion=75"));
        assert_non_null(strstr(q, "requestid=hsqb-test-requestid-0001"));
    }
    json_object_put(reqs);
    json_object_put(a);
    json_object_put(b);
}

static void test_401_mid_call_resends_same_requestid(void **state)
{
    const char *body = INVOICE("HS-T-401");
    struct json_object *inv, *reqs;
    struct api_error err;
    (void)state;

    /* Warm the token, then: QBO creates the invoice but the answer is a 401. */
    assert_int_equal(rows_where(H_REALM_US1, "SELECT * FROM Term"), 3);
    assert_int_equal(h_count("vendor=oauth", NULL), 1);
    add_fault("{\"method\":\"POST\",\"path\":\"/v3/company/*/invoice\",\"phase\":\"after\","
              "\"status\":401,\"times\":1,\"body\":{\"fault\":{\"error\":[{\"code\":\"3200\","
              "\"message\":\"message=AuthenticationFailed\"}],\"type\":\"AUTHENTICATION\"}}}");
    assert_int_equal(qbo_create(H_IO(E.http, H.redis), E.q,
                                &(struct qbo_req){H_REALM_US1, "invoice", "hsqb-test-requestid-401",
                                                  body, strlen(body)},
                                &inv, &err),
                     0);
    assert_string_equal(str_of(inv, "DocNumber"), "HS-T-401");
    assert_int_equal(h_count("vendor=oauth", NULL), 2); /* exactly one refresh */
    assert_int_equal(h_count("vendor=qbo&method=POST", &reqs), 2);
    for (size_t i = 0; i < 2; i++)
        assert_non_null(strstr(str_of(json_object_array_get_idx(reqs, i), "query"),
                               "requestid=hsqb-test-requestid-401"));
    assert_int_equal(rows_where(H_REALM_US1, "SELECT * FROM Invoice WHERE DocNumber = 'HS-T-401'"),
                     1);
    json_object_put(reqs);
    json_object_put(inv);
}

static void test_401_expired_token_refreshes(void **state)
{
    struct json_object *c;
    struct api_error err;
    char e[256];
    redisReply *r;
    (void)state;

    /* Redis holds a token Intuit no longer knows, with a far expiry: a real 401. */
    r = redis_command(H.redis, e, sizeof e,
                      "HSET hsqb:oauth:{" H_REALM_US1 "} access_token stale-token-value-0001 "
                      "access_expires_at_ms 99999999999999 updated_at 1");
    assert_non_null(r);
    freeReplyObject(r);
    assert_int_equal(qbo_read(H_IO(E.http, H.redis), E.q, H_REALM_US1, "customer", "1", &c, &err),
                     0);
    assert_string_equal(str_of(c, "DisplayName"), "Amy's Bird Sanctuary");
    assert_int_equal(h_count("vendor=oauth", NULL), 1);
    assert_int_equal(h_count("vendor=qbo&status=401", NULL), 1);
    json_object_put(c);

    /* A 401 that survives a forced refresh ends the call, not in a loop and not as
     * "reconnect": the refresh token still works, so the pipeline retries the event. */
    add_fault("{\"path\":\"/v3/company/*/customer/*\",\"status\":401,\"body\":{}}");
    assert_int_equal(qbo_read(H_IO(E.http, H.redis), E.q, H_REALM_US1, "customer", "1", &c, &err),
                     -1);
    assert_int_equal(api_error_retryable(&err), 1);
    assert_int_equal(err.code, HSQB_ERR_RETRIES_EXHAUSTED);
    assert_int_equal(err.http_status, 401);
    assert_non_null(strstr(err.message, "rejected the access token twice"));
    assert_int_equal(err.source, API_SOURCE_QBO); /* QBO's 401, not the token endpoint */
    assert_int_equal(h_count("vendor=qbo&status=401", NULL), 4); /* 3 sends, no more */
    assert_int_equal(h_count("vendor=oauth", NULL), 3);          /* 2 refreshes, both fine */
    assert_null(h_hget(H_REALM_US1, "reauth_required"));

    /* invalid_grant during the refresh: permanent QBO_REAUTH_REQUIRED. */
    assert_int_equal(oauth_store_refresh_token(H.redis, H_REALM_US1, "RT1-dead", 0, e, sizeof e),
                     0);
    env_close();
    env_open(NULL, 0);
    assert_int_equal(qbo_read(H_IO(E.http, H.redis), E.q, H_REALM_US1, "customer", "1", &c, &err),
                     -1);
    assert_int_equal(err.cls, API_AUTH);
    assert_int_equal(err.code, HSQB_ERR_QBO_REAUTH_REQUIRED);
    assert_int_equal(err.source, API_SOURCE_OAUTH); /* passed through from the refresh */
}

/* Replica B (E.q) holds access token T1 in its process cache while replica A has
 * already replaced it in Redis with T2 (one refresh each). *t1 and *t2 are malloc'd. */
static void b_holds_t1_while_a_stored_t2(char **t1, char **t2)
{
    struct oauth *a;
    struct http_client *ahttp = h_http_new();
    struct api_error err;
    char e[256], *tok = malloc(OAUTH_TOKEN_MAX);

    assert_int_equal(rows_where(H_REALM_US1, "SELECT * FROM Term"), 3);
    assert_non_null(*t1 = h_hget(H_REALM_US1, "access_token"));
    assert_non_null(a = oauth_new(E.cfg, e, sizeof e));
    assert_int_equal(oauth_invalidate(H_IO(NULL, H.redis), a, H_REALM_US1, *t1, &err), 0);
    assert_int_equal(
        oauth_get_access(H_IO(ahttp, H.redis), a, H_REALM_US1, tok, OAUTH_TOKEN_MAX, &err), 0);
    assert_non_null(*t2 = h_hget(H_REALM_US1, "access_token"));
    assert_string_equal(tok, *t2);
    assert_string_not_equal(*t1, *t2);
    assert_int_equal(h_count("vendor=oauth", NULL), 2);
    explicit_bzero(tok, OAUTH_TOKEN_MAX);
    free(tok);
    oauth_free(a);
    http_client_free(ahttp);
}

static void test_401_twice_forces_refresh_same_requestid(void **state)
{
    const char *body = INVOICE("HS-T-401x2");
    struct json_object *inv, *reqs;
    struct api_error err;
    char *t1, *t2, *t3;
    (void)state;

    /* Access tokens revoked twice: B's T1 is rejected, B reloads A's T2 (no refresh:
     * Redis already holds a newer token) and that is rejected too. B must force a real
     * refresh and resend the same requestid, not fail with QBO_REAUTH_REQUIRED. The
     * first 401 comes after QBO created the invoice, so a second invoice would show. */
    b_holds_t1_while_a_stored_t2(&t1, &t2);
    add_fault("{\"method\":\"POST\",\"path\":\"/v3/company/*/invoice\",\"phase\":\"after\","
              "\"status\":401,\"times\":2,\"body\":{\"fault\":{\"error\":[{\"code\":\"3200\","
              "\"message\":\"message=AuthenticationFailed\"}],\"type\":\"AUTHENTICATION\"}}}");
    assert_int_equal(qbo_create(H_IO(E.http, H.redis), E.q,
                                &(struct qbo_req){H_REALM_US1, "invoice",
                                                  "hsqb-test-requestid-401x2", body, strlen(body)},
                                &inv, &err),
                     0);
    assert_string_equal(str_of(inv, "DocNumber"), "HS-T-401x2");
    assert_int_equal(h_count("vendor=oauth", NULL), 3); /* exactly one forced refresh */
    assert_non_null(t3 = h_hget(H_REALM_US1, "access_token"));
    assert_string_not_equal(t3, t1);
    assert_string_not_equal(t3, t2);
    assert_int_equal(h_count("vendor=qbo&method=POST", &reqs), 3);
    for (size_t i = 0; i < 3; i++)
        assert_non_null(strstr(str_of(json_object_array_get_idx(reqs, i), "query"),
                               "requestid=hsqb-test-requestid-401x2"));
    assert_int_equal(
        rows_where(H_REALM_US1, "SELECT * FROM Invoice WHERE DocNumber = 'HS-T-401x2'"), 1);
    json_object_put(reqs);
    json_object_put(inv);
    free(t1);
    free(t2);
    free(t3);
}

static void test_invalid_grant_on_forced_refresh_is_reauth(void **state)
{
    struct json_object *c = NULL;
    struct api_error err;
    char *t1, *t2, *mark;
    (void)state;

    /* The same double rejection, but Intuit refuses the refresh token: that, and only
     * that, means the company must be reconnected. */
    b_holds_t1_while_a_stored_t2(&t1, &t2);
    add_fault("{\"path\":\"/v3/company/*/customer/*\",\"status\":401,\"body\":{}}");
    add_fault("{\"path\":\"/oauth2/v1/tokens/bearer\",\"vendor\":\"oauth\",\"status\":400,"
              "\"body\":{\"error\":\"invalid_grant\"}}");
    assert_int_equal(qbo_read(H_IO(E.http, H.redis), E.q, H_REALM_US1, "customer", "1", &c, &err),
                     -1);
    assert_null(c);
    assert_int_equal(err.cls, API_AUTH);
    assert_int_equal(err.code, HSQB_ERR_QBO_REAUTH_REQUIRED);
    assert_string_equal(err.qbo_fault_code, "invalid_grant");
    assert_int_equal(err.source, API_SOURCE_OAUTH);
    assert_int_equal(api_error_retryable(&err), 0);
    assert_int_equal(h_count("vendor=qbo&status=401", NULL), 2);
    assert_int_equal(h_count("vendor=oauth&status=400", NULL), 1);
    assert_non_null(mark = h_hget(H_REALM_US1, "reauth_required"));
    assert_string_equal(mark, "1");
    free(mark);
    free(t1);
    free(t2);
}

/* The body goes out byte for byte as given, exactly body_len bytes of it (no NUL needed):
 * what the builders wrote is what QBO parses. */
static void test_create_sends_body_as_given(void **state)
{
    static const char text[] = "{\"DisplayName\":\"Len \\\"Test\\\" caf\xc3\xa9 a/b\"}"
                               "GARBAGE THAT MUST NOT BE SENT";
    size_t len = strlen(text) - strlen("GARBAGE THAT MUST NOT BE SENT");
    struct json_object *cust, *reqs;
    struct api_error err;
    const char *sent;
    (void)state;

    assert_int_equal(
        qbo_create(H_IO(E.http, H.redis), E.q,
                   &(struct qbo_req){H_REALM_US1, "customer", "hsqb-test-requestid-len", text, len},
                   &cust, &err),
        0);
    assert_string_equal(str_of(cust, "DisplayName"), "Len \"Test\" caf\xc3\xa9 a/b");
    assert_int_equal(h_count("vendor=qbo&method=POST", &reqs), 1);
    sent = str_of(json_object_array_get_idx(reqs, 0), "body");
    assert_int_equal(strlen(sent), len);
    assert_memory_equal(sent, text, len);
    json_object_put(reqs);
    json_object_put(cust);
}

static void test_sql_quote(void **state)
{
    char buf[64];
    (void)state;
    assert_int_equal(qbo_sql_quote("O'Brien", buf, sizeof buf), 10);
    assert_string_equal(buf, "'O\\'Brien'");
    assert_int_equal(qbo_sql_quote("a\\b", buf, sizeof buf), 6);
    assert_string_equal(buf, "'a\\\\b'");
    assert_int_equal(qbo_sql_quote("", buf, sizeof buf), 2);
    assert_string_equal(buf, "''");
    assert_int_equal(qbo_sql_quote("O'Brien", buf, 10), -1); /* needs 11 */
    assert_string_equal(buf, "");
    assert_int_equal(qbo_sql_quote("O'Brien", buf, 11), 10);
}

static void test_query_with_apostrophes(void **state)
{
    const char *body = "{\"GivenName\":\"Conan\",\"FamilyName\":\"O'Brien\","
                       "\"DisplayName\":\"Conan O'Brien\"}";
    struct json_object *cust, *rows;
    struct api_error err;
    char lit[128], sql[256];
    (void)state;

    assert_int_equal(
        qbo_create(H_IO(E.http, H.redis), E.q,
                   &(struct qbo_req){H_REALM_US1, "customer", NULL, body, strlen(body)}, &cust,
                   &err),
        0);
    qbo_sql_quote("Conan O'Brien", lit, sizeof lit);
    snprintf(sql, sizeof sql, "SELECT * FROM Customer WHERE DisplayName = %s", lit);
    assert_int_equal(qbo_query(H_IO(E.http, H.redis), E.q, H_REALM_US1, sql, &rows, &err), 0);
    assert_int_equal(json_object_array_length(rows), 1);
    assert_string_equal(str_of(json_object_array_get_idx(rows, 0), "Id"), str_of(cust, "Id"));
    json_object_put(rows);
    qbo_sql_quote("O'Brien", lit, sizeof lit);
    snprintf(sql, sizeof sql, "SELECT * FROM Customer WHERE FamilyName = %s", lit);
    assert_int_equal(rows_where(H_REALM_US1, sql), 1);
    qbo_sql_quote("Amy's Bird Sanctuary", lit, sizeof lit);
    snprintf(sql, sizeof sql, "select * from Customer where DisplayName = %s", lit);
    assert_int_equal(rows_where(H_REALM_US1, sql), 1);
    qbo_sql_quote("Robertson & Associates", lit, sizeof lit);
    snprintf(sql, sizeof sql, "SELECT * FROM Customer WHERE DisplayName = %s", lit);
    assert_int_equal(rows_where(H_REALM_US1, sql), 1);
    /* No match: an empty array, not an error. */
    assert_int_equal(rows_where(H_REALM_US1, "SELECT * FROM Customer WHERE GivenName = 'Nobody'"),
                     0);
    json_object_put(cust);
}

static void test_validation_faults(void **state)
{
    const char *dup = DUP_CUSTOMER, *bad = BAD_INVOICE;
    struct json_object *out = NULL;
    struct api_error err;
    (void)state;

    err.source = API_SOURCE_HUBSPOT; /* a struct reused across calls: no stale source */
    assert_int_equal(
        qbo_create(H_IO(E.http, H.redis), E.q,
                   &(struct qbo_req){H_REALM_US1, "customer", "rid-6240", dup, strlen(dup)}, &out,
                   &err),
        -1);
    assert_null(out);
    assert_int_equal(err.source, API_SOURCE_QBO);
    assert_int_equal(err.cls, API_PERMANENT);
    assert_int_equal(err.code, HSQB_ERR_QBO_VALIDATION);
    assert_int_equal(err.http_status, 400);
    assert_string_equal(err.qbo_fault_code, "6240");
    assert_non_null(strstr(err.message, "Duplicate Name Exists Error"));
    assert_true(err.upstream_id[0] != 0); /* intuit_tid */
    assert_int_equal(api_error_retryable(&err), 0);

    assert_int_equal(qbo_create(H_IO(E.http, H.redis), E.q,
                                &(struct qbo_req){H_REALM_US1, "invoice", NULL, bad, strlen(bad)},
                                &out, &err),
                     -1);
    assert_int_equal(err.cls, API_PERMANENT);
    assert_string_equal(err.qbo_fault_code, "6070");
    assert_non_null(strstr(err.message, "ValidationFault"));

    /* A bad query is a 4001 validation fault. */
    assert_int_equal(
        qbo_query(H_IO(E.http, H.redis), E.q, H_REALM_US1, "SELECT * FROM Custmoer", &out, &err),
        -1);
    assert_string_equal(err.qbo_fault_code, "4001");
    /* An unknown entity never leaves the process. */
    assert_int_equal(qbo_create(H_IO(E.http, H.redis), E.q,
                                &(struct qbo_req){H_REALM_US1, "widget", NULL, dup, strlen(dup)},
                                &out, &err),
                     -1);
    assert_int_equal(err.code, HSQB_ERR_INTERNAL);
    /* Nor does a missing body (a builder that failed) or one over QBO_BODY_MAX. */
    assert_int_equal(qbo_create(H_IO(E.http, H.redis), E.q,
                                &(struct qbo_req){H_REALM_US1, "customer", NULL, NULL, 0}, &out,
                                &err),
                     -1);
    assert_int_equal(err.cls, API_PERMANENT);
    assert_int_equal(err.code, HSQB_ERR_INTERNAL);
    assert_int_equal(
        qbo_create(H_IO(E.http, H.redis), E.q,
                   &(struct qbo_req){H_REALM_US1, "customer", NULL, dup, (size_t)QBO_BODY_MAX + 1},
                   &out, &err),
        -1);
    assert_int_equal(err.code, HSQB_ERR_INTERNAL);
    assert_null(out);
}

/* ---- qbo_create_doc: the created document without a json-c tree -------------------- */

/* The POST /invoice answers of the next `times` creates: status 200 and this body. */
static void answer_invoice_with(const char *body_json, int times)
{
    char rule[1024];
    snprintf(rule, sizeof rule,
             "{\"method\":\"POST\",\"path\":\"/v3/company/*/invoice\",\"status\":200,"
             "\"times\":%d,\"body\":%s}",
             times, body_json);
    add_fault(rule);
}

/* qbo_create_doc() of entity fails with *err and leaves *out as it was. */
static void create_doc_fails(const char *entity, const char *body, struct api_error *err)
{
    struct qbo_created out, before;

    memset(&out, 'z', sizeof out);
    before = out;
    assert_int_equal(
        qbo_create_doc(H_IO(E.http, H.redis), E.q,
                       &(struct qbo_req){H_REALM_US1, entity, NULL, body, body ? strlen(body) : 0},
                       &out, err),
        -1);
    assert_memory_equal(&out, &before, sizeof out);
}

/* qbo_create() and then qbo_create_doc() of the same body fail, and say the same; *err
 * is qbo_create_doc()'s. */
static void both_fail(const char *entity, const char *body, struct api_error *err)
{
    struct json_object *obj = NULL;
    struct api_error want;

    assert_int_equal(
        qbo_create(H_IO(E.http, H.redis), E.q,
                   &(struct qbo_req){H_REALM_US1, entity, NULL, body, body ? strlen(body) : 0},
                   &obj, &want),
        -1);
    assert_null(obj);
    create_doc_fails(entity, body, err);
    assert_int_equal(err->cls, want.cls);
    assert_int_equal(err->code, want.code);
    assert_int_equal(err->http_status, want.http_status);
    assert_int_equal(err->retry_after_ms, want.retry_after_ms);
    assert_string_equal(err->qbo_fault_code, want.qbo_fault_code);
    assert_string_equal(err->message, want.message);
    assert_int_equal(err->upstream_id[0] != 0, want.upstream_id[0] != 0);
}

static void test_create_doc_reads_id_docnumber_currency(void **state)
{
    const char *body = INVOICE("HS-T-DOC");
    struct qbo_created doc, again, row;
    struct json_object *inv, *rows;
    struct qbo_req w = {H_REALM_US1, "invoice", "hsqb-test-requestid-doc", body, strlen(body)};
    struct api_error err;
    (void)state;

    assert_int_equal(qbo_create_doc(H_IO(E.http, H.redis), E.q, &w, &doc, &err), 0);
    assert_true(doc.id[0] != 0);
    assert_string_equal(doc.doc_number, "HS-T-DOC");
    assert_string_equal(doc.currency, "USD");
    /* The same request as qbo_create(): a replay of the requestid is the same invoice,
     * and both read the same Id. */
    w.entity = "Invoice";
    assert_int_equal(qbo_create_doc(H_IO(E.http, H.redis), E.q, &w, &again, &err), 0);
    assert_memory_equal(&again, &doc, sizeof doc);
    w.entity = "invoice";
    assert_int_equal(qbo_create(H_IO(E.http, H.redis), E.q, &w, &inv, &err), 0);
    assert_string_equal(str_of(inv, "Id"), doc.id);
    json_object_put(inv);
    assert_int_equal(rows_where(H_REALM_US1, "SELECT * FROM Invoice WHERE DocNumber = 'HS-T-DOC'"),
                     1);
    /* A row found by a query fills the same value (action_create_once's look-up). */
    assert_int_equal(qbo_query(H_IO(E.http, H.redis), E.q, H_REALM_US1,
                               "SELECT * FROM Invoice WHERE DocNumber = 'HS-T-DOC'", &rows, &err),
                     0);
    assert_int_equal(
        qbo_created_from_json(json_object_array_get_idx(rows, 0), "Invoice", &row, &err), 0);
    assert_memory_equal(&row, &doc, sizeof doc);
    json_object_put(rows);

    /* A 401 after QBO created it: one refresh, the same requestid, still one invoice. */
    add_fault("{\"method\":\"POST\",\"path\":\"/v3/company/*/invoice\",\"phase\":\"after\","
              "\"status\":401,\"times\":1,\"body\":{\"fault\":{\"error\":[{\"code\":\"3200\"}],"
              "\"type\":\"AUTHENTICATION\"}}}");
    body = INVOICE("HS-T-DOC401");
    assert_int_equal(
        qbo_create_doc(H_IO(E.http, H.redis), E.q,
                       &(struct qbo_req){H_REALM_US1, "invoice", "hsqb-test-requestid-doc401", body,
                                         strlen(body)},
                       &doc, &err),
        0);
    assert_string_equal(doc.doc_number, "HS-T-DOC401");
    assert_int_equal(
        rows_where(H_REALM_US1, "SELECT * FROM Invoice WHERE DocNumber = 'HS-T-DOC401'"), 1);
}

static void test_create_doc_member_rules(void **state)
{
    /* A DocNumber of 31 bytes is kept; one of 32 and a non-string are dropped, as are a
     * currency that is not 3 bytes and an absent CurrencyRef; 63 bytes is an Id. */
    static const struct {
        const char *answer, *id, *doc_number, *currency;
    } ok[] = {
        {"{\"Invoice\":{\"Id\":\"501\",\"DocNumber\":\"1234567890123456789012345678901\","
         "\"CurrencyRef\":{\"value\":\"EUR\",\"name\":\"Euro\"}},\"time\":\"x\"}",
         "501", "1234567890123456789012345678901", "EUR"},
        {"{\"Invoice\":{\"Id\":\"502\",\"DocNumber\":\"12345678901234567890123456789012\","
         "\"CurrencyRef\":{\"value\":\"EURO\"}}}",
         "502", "", ""},
        {"{\"Invoice\":{\"Id\":\"503\",\"DocNumber\":1036,\"CurrencyRef\":\"USD\"}}", "503", "",
         ""},
        {"{\"Invoice\":{\"Id\":\"504\"}}", "504", "", ""},
        {"{\"Invoice\":{\"Id\":"
         "\"123456789012345678901234567890123456789012345678901234567890123\"}}",
         "123456789012345678901234567890123456789012345678901234567890123", "", ""},
    };
    const char *body = INVOICE("HS-T-RULES");
    struct qbo_created doc;
    struct api_error err;
    (void)state;

    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        answer_invoice_with(ok[i].answer, 1);
        assert_int_equal(
            qbo_create_doc(H_IO(E.http, H.redis), E.q,
                           &(struct qbo_req){H_REALM_US1, "invoice", NULL, body, strlen(body)},
                           &doc, &err),
            0);
        assert_string_equal(doc.id, ok[i].id);
        assert_string_equal(doc.doc_number, ok[i].doc_number);
        assert_string_equal(doc.currency, ok[i].currency);
    }

    /* No usable Id: absent, "", a number, null, 64 bytes. The event is retried. */
    static const char *const no_id[] = {
        "{\"Invoice\":{\"DocNumber\":\"1037\"}}",
        "{\"Invoice\":{\"Id\":\"\",\"DocNumber\":\"1037\"}}",
        "{\"Invoice\":{\"Id\":130}}",
        "{\"Invoice\":{\"Id\":null}}",
        "{\"Invoice\":{\"Id\":\"1234567890123456789012345678901234567890123456789012345678901234\"}"
        "}",
    };
    for (size_t i = 0; i < sizeof no_id / sizeof no_id[0]; i++) {
        answer_invoice_with(no_id[i], 1);
        create_doc_fails("invoice", body, &err);
        assert_int_equal(err.cls, API_TRANSIENT);
        assert_int_equal(err.code, HSQB_ERR_RETRIES_EXHAUSTED);
        assert_int_equal(err.http_status, 200);
        assert_string_equal(err.message, "QuickBooks returned a Invoice without an Id");
        assert_int_equal(err.source, API_SOURCE_QBO); /* charged to the realm's circuit */
        assert_int_equal(api_error_retryable(&err), 1);
    }
}

static void test_create_doc_fails_like_create(void **state)
{
    const char *dup = DUP_CUSTOMER, *bad = BAD_INVOICE;
    const char *body = INVOICE("HS-T-FAIL");
    /* 2xx bodies that are not a JSON object holding "Invoice": an array, malformed JSON
     * (a string rule body goes out verbatim), an object without the key, the key
     * holding an array, and a body deeper than QBO_JSON_DEPTH. */
    static const char *const bad_2xx[] = {
        "[{\"Invoice\":{\"Id\":\"1\"}}]",
        "\"{\\\"Invoice\\\":{\\\"Id\\\":\\\"1\\\"}\"",
        "\"{\\\"Invoice\\\":{\\\"Id\\\":\\\"1\\\"}} trailing\"",
        "{\"Customer\":{\"Id\":\"1\"}}",
        "{\"Invoice\":[{\"Id\":\"1\"}]}",
        "\"{\\\"Invoice\\\":{\\\"Id\\\":\\\"1\\\",\\\"x\\\":"
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
        "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}\"",
    };
    struct api_error err;
    (void)state;

    for (size_t i = 0; i < sizeof bad_2xx / sizeof bad_2xx[0]; i++) {
        answer_invoice_with(bad_2xx[i], 2);
        both_fail("invoice", body, &err);
        assert_int_equal(err.cls, API_TRANSIENT);
        assert_int_equal(err.code, HSQB_ERR_RETRIES_EXHAUSTED);
    }
    /* QBO's faults: 6240 duplicate name, 6070 validation, a 503, a throttled answer. */
    both_fail("customer", dup, &err);
    assert_string_equal(err.qbo_fault_code, "6240");
    both_fail("invoice", bad, &err);
    assert_string_equal(err.qbo_fault_code, "6070");
    assert_int_equal(err.cls, API_PERMANENT);
    add_fault("{\"method\":\"POST\",\"path\":\"/v3/company/*/invoice\",\"status\":503,\"times\":2,"
              "\"body\":\"busy\"}");
    both_fail("invoice", body, &err);
    assert_int_equal(err.http_status, 503);
    add_fault("{\"method\":\"POST\",\"path\":\"/v3/company/*/invoice\",\"status\":429,\"times\":2,"
              "\"headers\":{\"Retry-After\":\"2\"},\"body\":{}}");
    both_fail("invoice", body, &err);
    assert_int_equal(err.cls, API_THROTTLED);
    assert_int_equal(err.retry_after_ms, 2000);
    assert_int_equal(rows_where(H_REALM_US1, "SELECT * FROM Invoice WHERE DocNumber = 'HS-T-FAIL'"),
                     0);

    /* Refused before sending, as qbo_create() does. */
    assert_int_equal(h_count("vendor=qbo&method=POST", NULL), 2 * 6 + 2 * 4);
    both_fail("customer", NULL, &err);
    assert_int_equal(err.code, HSQB_ERR_INTERNAL);
    both_fail("widget", dup, &err);
    assert_int_equal(err.cls, API_PERMANENT);
    assert_int_equal(err.code, HSQB_ERR_INTERNAL);
    assert_int_equal(h_count("vendor=qbo&method=POST", NULL), 2 * 6 + 2 * 4);
}

/* qbo_created_from_json() of the entity in text. */
static int created_from_text(const char *text, const char *entity, struct qbo_created *c,
                             struct api_error *err)
{
    char e[128];
    struct json_object *o = json_parse_strict(text, strlen(text), 8, e, sizeof e);
    int rc;

    assert_non_null(o);
    rc = qbo_created_from_json(o, entity, c, err);
    json_object_put(o);
    return rc;
}

/* The json-c reader (query rows) follows the same rules. */
static void test_created_from_json(void **state)
{
    static const struct {
        const char *text, *entity, *id, *doc_number, *currency;
    } ok[] = {
        {"{\"Id\":\"7\",\"DocNumber\":\"1001\",\"CurrencyRef\":{\"value\":\"CAD\"}}",
         "salesreceipt", "7", "1001", "CAD"},
        {"{\"Id\":\"8\",\"DocNumber\":\"12345678901234567890123456789012\",\"CurrencyRef\":{"
         "\"value\":\"US\"}}",
         "Payment", "8", "", ""},
    };
    struct qbo_created c, before;
    struct api_error err;
    (void)state;

    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(created_from_text(ok[i].text, ok[i].entity, &c, &err), 0);
        assert_string_equal(c.id, ok[i].id);
        assert_string_equal(c.doc_number, ok[i].doc_number);
        assert_string_equal(c.currency, ok[i].currency);
    }

    /* An Id holding U+0000 is no Id; *out is left alone. */
    memset(&c, 'z', sizeof c);
    before = c;
    assert_int_equal(
        created_from_text("{\"Id\":\"\\u0000\",\"DocNumber\":\"1\"}", "salesreceipt", &c, &err),
        -1);
    assert_memory_equal(&c, &before, sizeof c);
    assert_int_equal(err.cls, API_TRANSIENT);
    assert_int_equal(err.code, HSQB_ERR_RETRIES_EXHAUSTED);
    assert_int_equal(err.http_status, 200);
    assert_string_equal(err.message, "QuickBooks returned a SalesReceipt without an Id");
    assert_int_equal(qbo_created_from_json(NULL, "Purchase", &c, &err), -1);
    assert_string_equal(err.message, "QuickBooks returned a Purchase without an Id");
}

#define THROTTLE_XML                                                                               \
    "<IntuitResponse time=\\\"2017-07-30T22:45:22.933-07:00\\\" "                                  \
    "xmlns=\\\"http://schema.intuit.com/finance/v3\\\"><Fault type=\\\"SERVICE\\\"><Error "        \
    "code=\\\"3001\\\"><Message>message=ThrottleExceeded; errorCode=003001; "                      \
    "statusCode=429</Message><Detail>The request limit was reached.  Try again "                   \
    "later</Detail></Error></Fault></IntuitResponse>"

static void test_throttle_and_server_errors(void **state)
{
    struct json_object *rows = NULL;
    struct api_error err;
    char e[256];
    redisReply *r;
    int64_t t0;
    (void)state;

    env_close();
    env_open(NULL, 1); /* with the shared rate limiter */
    add_fault("{\"path\":\"/v3/company/*/query\",\"status\":429,\"times\":1,\"content_type\":"
              "\"application/xml\",\"headers\":{\"Retry-After\":\"1\"},\"body\":\"" THROTTLE_XML
              "\"}");
    assert_int_equal(
        qbo_query(H_IO(E.http, H.redis), E.q, H_REALM_US1, "SELECT * FROM Term", &rows, &err), -1);
    assert_int_equal(err.cls, API_THROTTLED);
    assert_int_equal(err.http_status, 429);
    assert_int_equal(err.retry_after_ms, 1000);
    assert_string_equal(err.qbo_fault_code, "3001");
    assert_non_null(strstr(err.message, "ThrottleExceeded"));
    assert_int_equal(err.source, API_SOURCE_QBO);
    assert_int_equal(api_error_retryable(&err), 1);
    /* The whole realm backs off, for every replica. */
    r = redis_command(H.redis, e, sizeof e, "ZSCORE hsqb:rate:{qbo:" H_REALM_US1 "} blocked");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    t0 = clock_mono_ms();
    assert_int_equal(
        qbo_query(H_IO(E.http, H.redis), E.q, H_REALM_US1, "SELECT * FROM Term", &rows, &err), 0);
    assert_true(clock_mono_ms() - t0 >= 700);
    json_object_put(rows);

    /* 500 and 503: transient, with the intuit_tid. */
    add_fault("{\"path\":\"/v3/company/*/query\",\"status\":500,\"times\":1,\"body\":{\"Fault\":"
              "{\"Error\":[{\"Message\":\"Internal error\",\"code\":\"10000\"}],\"type\":"
              "\"SystemFault\"}}}");
    add_fault("{\"path\":\"/v3/company/*/query\",\"status\":503,\"times\":1,\"body\":\"busy\"}");
    assert_int_equal(
        qbo_query(H_IO(E.http, H.redis), E.q, H_REALM_US1, "SELECT * FROM Term", &rows, &err), -1);
    assert_int_equal(err.cls, API_TRANSIENT);
    assert_int_equal(err.http_status, 500);
    assert_string_equal(err.qbo_fault_code, "10000");
    assert_int_equal(err.code, HSQB_ERR_RETRIES_EXHAUSTED);
    assert_int_equal(
        qbo_query(H_IO(E.http, H.redis), E.q, H_REALM_US1, "SELECT * FROM Term", &rows, &err), -1);
    assert_int_equal(err.cls, API_TRANSIENT);
    assert_int_equal(err.http_status, 503);
    /* A dropped connection: transient too. (Twice: libcurl itself resends once when a
     * reused keep-alive connection dies before any answer.) */
    add_fault("{\"path\":\"/v3/company/*/query\",\"drop\":true,\"times\":2}");
    assert_int_equal(
        qbo_query(H_IO(E.http, H.redis), E.q, H_REALM_US1, "SELECT * FROM Term", &rows, &err), -1);
    assert_int_equal(err.cls, API_TRANSIENT);
    assert_int_equal(err.http_status, 0);
}

static void test_company_info(void **state)
{
    struct qbo_company c;
    struct api_error err;
    char e[256];
    redisReply *r;
    (void)state;

    assert_int_equal(qbo_company_info(H_IO(E.http, H.redis), E.q, H_REALM_CA, &c, &err), 0);
    assert_string_equal(c.country, "CA");
    assert_int_equal(c.is_us, 0);
    assert_true(c.name[0] != 0);
    assert_int_equal(qbo_company_info(H_IO(E.http, H.redis), E.q, H_REALM_US1, &c, &err), 0);
    assert_string_equal(c.country, "US");
    assert_int_equal(c.is_us, 1);
    assert_string_equal(c.name, "Sandbox Company US 1");
    /* Cached in this process, then in Redis for other replicas. */
    assert_int_equal(qbo_company_info(H_IO(E.http, H.redis), E.q, H_REALM_CA, &c, &err), 0);
    assert_int_equal(h_count("vendor=qbo&path=/v3/company/" H_REALM_CA "/companyinfo", NULL), 1);
    r = redis_command(H.redis, e, sizeof e, "PTTL hsqb:map:{" H_REALM_CA "}:company");
    assert_non_null(r);
    assert_true(r->integer > 3500 * 1000);
    freeReplyObject(r);
    env_close();
    env_open(NULL, 0);
    assert_int_equal(qbo_company_info(H_IO(E.http, H.redis), E.q, H_REALM_CA, &c, &err), 0);
    assert_string_equal(c.country, "CA");
    assert_int_equal(c.is_us, 0);
    assert_int_equal(h_count("vendor=qbo&path=/v3/company/" H_REALM_CA "/companyinfo", NULL), 1);
    assert_string_equal(c.home_currency, "CAD"); /* Preferences ride in the same cache */
    assert_int_equal(h_count("vendor=qbo&path=/v3/company/" H_REALM_CA "/preferences", NULL), 1);
}

/* Preferences: sales tax, Automated Sales Tax, currencies, numbering. */
static void test_company_preferences(void **state)
{
    struct qbo_company c;
    struct api_error err;
    (void)state;

    assert_int_equal(qbo_company_info(H_IO(E.http, H.redis), E.q, H_REALM_US1, &c, &err), 0);
    assert_true(c.sales_tax);
    assert_false(c.ast);
    assert_false(c.multicurrency);
    assert_string_equal(c.home_currency, "USD");
    assert_false(c.custom_txn_numbers);
    assert_int_equal(qbo_company_info(H_IO(E.http, H.redis), E.q, H_REALM_AST1, &c, &err), 0);
    assert_true(c.sales_tax && c.ast);
    assert_false(c.multicurrency);
    assert_int_equal(qbo_company_info(H_IO(E.http, H.redis), E.q, H_REALM_MC1, &c, &err), 0);
    assert_true(c.multicurrency && c.ast);
    assert_string_equal(c.home_currency, "USD");
    assert_int_equal(qbo_company_info(H_IO(E.http, H.redis), E.q, H_REALM_CA, &c, &err), 0);
    assert_true(c.custom_txn_numbers);
    /* another replica reads them from Redis (v2 entries), not from QBO */
    env_close();
    env_open(NULL, 0);
    assert_int_equal(qbo_company_info(H_IO(E.http, H.redis), E.q, H_REALM_MC1, &c, &err), 0);
    assert_true(c.multicurrency && c.ast && c.sales_tax);
    assert_int_equal(h_count("vendor=qbo&path=/v3/company/" H_REALM_MC1 "/preferences", NULL), 1);
}

/* The company's exchange rate, as QBO's decimal text; none is an error, never 1:1. */
static void test_exchange_rate(void **state)
{
    char rate[QBO_RATE_MAX];
    struct api_error err;
    (void)state;

    assert_int_equal(qbo_exchange_rate(H_IO(E.http, H.redis), E.q, H_REALM_MC1, "GBP",
                                       "2024-03-05", rate, &err),
                     0);
    assert_string_equal(rate, "1.27");
    assert_int_equal(qbo_exchange_rate(H_IO(E.http, H.redis), E.q, H_REALM_MC1, "JPY",
                                       "2024-03-05", rate, &err),
                     -1);
    assert_int_equal(err.code, HSQB_ERR_QBO_VALIDATION);
    assert_int_equal(qbo_exchange_rate(H_IO(E.http, H.redis), E.q, H_REALM_MC1, "EU",
                                       "2024-03-05", rate, &err),
                     -1);
    assert_int_equal(err.code, HSQB_ERR_INTERNAL);
    /* a Rate that is not a plain positive decimal is not sent on */
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults",
                             "{\"path\":\"/v3/company/*/exchangerate\",\"status\":200,\"body\":"
                             "{\"ExchangeRate\":{\"Rate\":\"1e3\"}},\"times\":1}",
                             NULL),
                     201);
    assert_int_equal(qbo_exchange_rate(H_IO(E.http, H.redis), E.q, H_REALM_MC1, "GBP",
                                       "2024-03-05", rate, &err),
                     -1);
    assert_int_equal(err.code, HSQB_ERR_QBO_VALIDATION);
}

static void test_paging(void **state)
{
    struct json_object *rows;
    struct api_error err;
    struct qbo_paging pg = {.page_size = 5, .max_rows = 1000, .more = -1};
    int all;
    (void)state;

    all = rows_where(H_REALM_US1, "SELECT * FROM Account MAXRESULTS 1000");
    assert_true(all > 5);
    assert_int_equal(qbo_query_all(H_IO(E.http, H.redis), E.q, H_REALM_US1, "SELECT * FROM Account",
                                   &pg, &rows, &err),
                     0);
    assert_int_equal((int)json_object_array_length(rows), all);
    assert_int_equal(pg.more, 0);
    json_object_put(rows);
    assert_int_equal(h_count("vendor=qbo&path=/v3/company/" H_REALM_US1 "/query", NULL),
                     1 + (all + 5) / 5);
    pg = (struct qbo_paging){.page_size = 5, .max_rows = 7, .more = -1};
    assert_int_equal(qbo_query_all(H_IO(E.http, H.redis), E.q, H_REALM_US1, "SELECT * FROM Account",
                                   &pg, &rows, &err),
                     0);
    assert_int_equal(json_object_array_length(rows), 7);
    assert_int_equal(pg.more, 1);
    json_object_put(rows);

    /* A long statement goes by POST application/text. */
    char sql[3000];
    int n = snprintf(sql, sizeof sql, "SELECT * FROM Item WHERE Name IN ('Services'");
    for (int i = 0; i < 150; i++)
        n += snprintf(sql + n, sizeof sql - (size_t)n, ",'no such item %d'", i);
    snprintf(sql + n, sizeof sql - (size_t)n, ")");
    assert_int_equal(rows_where(H_REALM_US1, sql), 1);
    assert_int_equal(h_count("vendor=qbo&method=POST&path=/v3/company/" H_REALM_US1 "/query", NULL),
                     1);
}

static void test_read_and_oversized(void **state)
{
    struct json_object *it = NULL;
    struct api_error err;
    (void)state;

    assert_int_equal(qbo_read(H_IO(E.http, H.redis), E.q, H_REALM_US1, "item", "3", &it, &err), 0);
    assert_string_equal(str_of(it, "Sku"), "CONS-HR");
    json_object_put(it);
    it = NULL;
    assert_int_equal(qbo_read(H_IO(E.http, H.redis), E.q, H_REALM_US1, "item", "99999", &it, &err),
                     -1);
    assert_null(it);
    assert_int_equal(api_error_retryable(&err), 0);

    /* An answer over http.max_response_bytes (64 KiB here) is refused. */
    env_close();
    const char *small[] = {"--http.max_response_bytes=64KiB", NULL};
    env_open(small, 0);
    char *fault = malloc(80000);
    int n = snprintf(fault, 80000, "{\"path\":\"/v3/company/*/item/*\",\"status\":200,\"body\":\"");
    memset(fault + n, 'x', 70000);
    snprintf(fault + n + 70000, 80000 - (size_t)n - 70000, "\"}");
    add_fault(fault);
    free(fault);
    assert_int_equal(qbo_read(H_IO(E.http, H.redis), E.q, H_REALM_US1, "item", "3", &it, &err), -1);
    assert_int_equal(err.cls, API_PERMANENT);
    assert_int_equal(err.code, HSQB_ERR_QBO_VALIDATION);

    /* So is one within the size but over the values cap (64 KiB / 16 = 4096 values):
     * 5,000 zeros in 10 KB, refused the same way, not retried as a malformed answer. */
    assert_int_equal(h_admin(HTTP_DELETE, "/_sandbox/faults", NULL, NULL), 204);
    fault = malloc(20000);
    n = snprintf(fault, 20000, "{\"path\":\"/v3/company/*/item/*\",\"status\":200,\"body\":"
                               "\"{\\\"Item\\\":{\\\"Id\\\":\\\"3\\\",\\\"z\\\":[0");
    for (int i = 1; i < 5000; i++)
        n += snprintf(fault + n, 20000 - (size_t)n, ",0");
    snprintf(fault + n, 20000 - (size_t)n, "]}}\"}");
    add_fault(fault);
    free(fault);
    assert_int_equal(qbo_read(H_IO(E.http, H.redis), E.q, H_REALM_US1, "item", "3", &it, &err), -1);
    assert_int_equal(err.cls, API_PERMANENT);
    assert_int_equal(err.code, HSQB_ERR_QBO_VALIDATION);
    assert_non_null(strstr(err.message, "more than 4096 JSON values"));
}

static void test_classifier(void **state)
{
    struct api_error err;
    static const char lower401[] =
        "{\"warnings\":null,\"fault\":{\"error\":[{\"message\":\"message=AuthenticationFailed; "
        "errorCode=003200; statusCode=401\",\"detail\":\"Token expired: "
        "AB01601390262kxzxOlnHYdhtEVRXISU7piPqQrCmmbDN35Yjd\",\"code\":\"3200\",\"element\":null}"
        "],\"type\":\"AUTHENTICATION\"},\"time\":1601391072830}";
    static const char stale[] =
        "{\"Fault\":{\"Error\":[{\"Message\":\"Stale Object Error\",\"Detail\":\"Stale Object "
        "Error : You and Bob were working on this at the same time.\",\"code\":\"5010\","
        "\"element\":\"\"}],\"type\":\"ValidationFault\"},\"time\":\"2020-09-29T06:58:50Z\"}";
    static const char throttle403[] =
        "<Fault type=\"SERVICE\"><Error code=\"3001\"><Message>message=ThrottleExceeded; "
        "errorCode=003001; statusCode=403</Message></Error></Fault>";
    (void)state;

    qbo_error_from_response(401, "application/json", lower401, strlen(lower401), "1-abc", &err);
    assert_int_equal(err.cls, API_TRANSIENT); /* a rejected token is no reason to reconnect */
    assert_int_equal(err.code, HSQB_ERR_RETRIES_EXHAUSTED);
    assert_string_equal(err.qbo_fault_code, "3200");
    assert_string_equal(err.upstream_id, "1-abc");
    assert_null(strstr(err.message, "AB0160139026")); /* the token echo is dropped */
    assert_int_equal(err.source, API_SOURCE_QBO);
    qbo_error_from_response(400, NULL, stale, strlen(stale), NULL, &err);
    assert_int_equal(err.cls, API_PERMANENT);
    assert_string_equal(err.qbo_fault_code, "5010");
    assert_non_null(strstr(err.message, "Stale Object Error"));
    qbo_error_from_response(403, "application/xml", throttle403, strlen(throttle403), NULL, &err);
    assert_int_equal(err.cls, API_THROTTLED);
    qbo_error_from_response(403, NULL, "{}", 2, NULL, &err);
    assert_int_equal(err.cls, API_AUTH);
    qbo_error_from_response(404, NULL, NULL, 0, NULL, &err);
    assert_int_equal(err.cls, API_NOT_FOUND);
    qbo_error_from_response(502, "text/html", "<html>bad gateway</html>", 24, NULL, &err);
    assert_int_equal(err.cls, API_TRANSIENT);
    qbo_error_from_response(400, NULL, "not json {", 10, NULL, &err);
    assert_int_equal(err.cls, API_PERMANENT);
    assert_string_equal(err.qbo_fault_code, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sql_quote),
        cmocka_unit_test(test_classifier),
        cmocka_unit_test_setup_teardown(test_create_same_requestid_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_401_mid_call_resends_same_requestid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_401_expired_token_refreshes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_401_twice_forces_refresh_same_requestid, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_invalid_grant_on_forced_refresh_is_reauth, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_create_sends_body_as_given, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_with_apostrophes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validation_faults, setup, teardown),
        cmocka_unit_test(test_created_from_json),
        cmocka_unit_test_setup_teardown(test_create_doc_reads_id_docnumber_currency, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_create_doc_member_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_doc_fails_like_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_and_server_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_company_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_company_preferences, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exchange_rate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_and_oversized, setup, teardown),
    };
    int rc;
    log_set_level(LOG_WARN);
    h_start();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    h_stop();
    return rc;
}
