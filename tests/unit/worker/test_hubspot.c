/* test_hubspot.c - component test of the HubSpot client against build/hsqb-sandbox (the
 * HubSpot emulator, seeded from tests/sandbox/seed) and a private redis-server.
 *
 * Each test starts from the seed (POST /_sandbox/reset) and an empty Redis, and checks
 * what the pipeline will see: parsed records, association rules, error classes with
 * their retry hints, and what reached the sandbox (its request log and state).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/http.h"
#include "common/json.h"
#include "common/jtape.h"
#include "tests/unit/testutil_redis.h"
#include "worker/hubspot.h"
#include "worker/settings.h"

#define PORTAL1 102670506
#define PORTAL2 243987001
#define TOKEN1  "pat-na1-11111111-1111-4111-8111-111111111111"
#define TOKEN2  "pat-na1-22222222-2222-4222-8222-222222222222"

static struct testutil_redis g_redis;
static pid_t g_sb_pid;
static char g_sb_dir[64];
static char g_base[64];
static struct http_client *g_http;
static struct redis_conn *g_rc;
static struct ioctx g_io; /* the test thread's: g_http, g_rc, default deadline */
static struct ratelimit *g_rl;
static struct hubspot_api *g_api;
static int g_calls, g_waits, g_last_status;
static int64_t g_last_wait;
static char g_last_endpoint[64];

/* ---- sandbox --------------------------------------------------------------------- */

static int sb_start(void)
{
    const char *build = getenv("BUILD");
    char bin[256], portfile[128], buf[32] = "";
    long long deadline;
    FILE *f;

    snprintf(bin, sizeof bin, "%s/hsqb-sandbox", build && *build ? build : "build");
    if (access(bin, X_OK) != 0)
        snprintf(bin, sizeof bin, "build/hsqb-sandbox");
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "%s not built (make build/hsqb-sandbox)\n", bin);
        return -1;
    }
    snprintf(g_sb_dir, sizeof g_sb_dir, "/tmp/hsqb-test-sb-XXXXXX");
    if (!mkdtemp(g_sb_dir))
        return -1;
    snprintf(portfile, sizeof portfile, "%s/port", g_sb_dir);
    g_sb_pid = fork();
    if (g_sb_pid < 0)
        return -1;
    if (g_sb_pid == 0) {
        int fd = open("/dev/null", O_RDWR);
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(bin, "hsqb-sandbox", "--listen", "127.0.0.1:0", "--port-file", portfile, "--seed",
              "tests/sandbox/seed", "--threads", "2", (char *)NULL);
        _exit(127);
    }
    deadline = clock_mono_ms() + 10000;
    while ((f = fopen(portfile, "r")) == NULL) {
        if (waitpid(g_sb_pid, NULL, WNOHANG) != 0 || clock_mono_ms() > deadline) {
            fprintf(stderr, "hsqb-sandbox did not start\n");
            return -1;
        }
        clock_sleep_ms(10);
    }
    if (!fgets(buf, sizeof buf, f))
        buf[0] = '\0';
    fclose(f);
    snprintf(g_base, sizeof g_base, "http://127.0.0.1:%d", atoi(buf));
    return 0;
}

static void sb_stop(void)
{
    char portfile[128];
    if (g_sb_pid > 0) {
        kill(g_sb_pid, SIGTERM);
        waitpid(g_sb_pid, NULL, 0);
        g_sb_pid = 0;
    }
    snprintf(portfile, sizeof portfile, "%s/port", g_sb_dir);
    unlink(portfile);
    rmdir(g_sb_dir);
}

/* Admin call; returns the status, the body (malloc'd) in *out when out != NULL. */
static int sb_admin(enum http_method m, const char *path, const char *body, char **out)
{
    char url[512], err[256];
    struct http_request req = {.method = m,
                               .url = url,
                               .body = body,
                               .body_len = body ? strlen(body) : 0,
                               .content_type = body ? "application/json" : NULL};
    struct http_response resp;
    int status;

    snprintf(url, sizeof url, "%s%s", g_base, path);
    http_response_init(&resp);
    if (http_client_do(g_http, &req, &resp, err, sizeof err) != HTTP_OK)
        fail_msg("sandbox admin %s: %s", path, err);
    status = (int)resp.status;
    if (out)
        *out = strdup(resp.body);
    http_response_release(&resp);
    return status;
}

static void sb_fault(const char *rule)
{
    assert_int_equal(sb_admin(HTTP_POST, "/_sandbox/faults", rule, NULL), 201);
}

static void sb_config(const char *cfg)
{
    assert_int_equal(sb_admin(HTTP_POST, "/_sandbox/config", cfg, NULL), 200);
}

/* Number of logged requests whose path starts with prefix. */
static size_t sb_count(const char *prefix)
{
    char path[512], *body = NULL, perr[128];
    struct json_object *root, *reqs;
    size_t n;

    snprintf(path, sizeof path, "/_sandbox/requests?path=%s", prefix);
    assert_int_equal(sb_admin(HTTP_GET, path, NULL, &body), 200);
    root = json_parse_strict(body, strlen(body), 0, perr, sizeof perr);
    assert_non_null(root);
    assert_int_equal(json_get_array(root, "requests", &reqs), JGET_OK);
    n = json_object_array_length(reqs);
    json_object_put(root);
    free(body);
    return n;
}

/* ---- helpers ------------------------------------------------------------------------ */

static void on_call(void *opaque, const char *api, const char *endpoint, int status, int64_t ms)
{
    (void)opaque;
    (void)ms;
    assert_string_equal(api, "hubspot");
    snprintf(g_last_endpoint, sizeof g_last_endpoint, "%s", endpoint);
    g_last_status = status;
    g_calls++;
}

static void on_wait(void *opaque, const char *api, int64_t ms)
{
    (void)opaque;
    (void)api;
    assert_true(ms > 0);
    g_last_wait = ms;
    g_waits++;
}

static struct hubspot_ctx ctx_for(int64_t portal)
{
    return (struct hubspot_ctx){.portal_id = portal};
}

static void redis_set(const char *key, const char *val)
{
    char err[256];
    redisReply *r = redis_command(g_rc, err, sizeof err, "SET %s %s", key, val);
    assert_non_null(r);
    freeReplyObject(r);
}

static void set_portal_token(int64_t portal, const char *token)
{
    char key[128];
    assert_int_equal(hubspot_token_key(key, sizeof key, "hsqb:", portal), 0);
    redis_set(key, token);
}

static struct hubspot_object *get_obj(enum hsqb_object_type t, int64_t id)
{
    struct hubspot_ctx c = ctx_for(PORTAL1);
    struct hubspot_object *o = NULL;
    struct api_error e;

    if (hubspot_get_object(&g_io, g_api, &c, t, id, &o, &e) != 0)
        fail_msg("get_object %lld: %s %s", (long long)id, api_class_name(e.cls), e.message);
    assert_int_equal(o->id, id);
    assert_int_equal(o->type, t);
    return o;
}

static int get_obj_err_at(enum hsqb_object_type t, int64_t id, struct api_error *e, int line)
{
    struct hubspot_ctx c = ctx_for(PORTAL1);
    struct hubspot_object *o = NULL;
    int rc = hubspot_get_object(&g_io, g_api, &c, t, id, &o, e);
    if (o)
        fail_msg("line %d: object %lld read although an error was expected", line, (long long)id);
    return rc;
}
#define get_obj_err(t, id, e) get_obj_err_at((t), (id), (e), __LINE__)

static void assert_ids(const int64_t *got, size_t n, const int64_t *want, size_t nwant)
{
    assert_int_equal(n, nwant);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got[i], want[i]);
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_deal_with_three_contacts_and_spaced_key(void **state)
{
    static const int64_t contacts[] = {301, 302, 303}, items[] = {7001, 7002, 7003};
    struct hubspot_object *o;
    (void)state;

    /* The sandbox answers with the real API's "line items" key by default. */
    o = get_obj(OBJECT_DEAL, 1001);
    assert_ids(o->contact_ids, o->ncontacts, contacts, 3);
    assert_ids(o->line_item_ids, o->nline_items, items, 3);
    assert_string_equal(hubspot_object_prop(o, "dealname"), "Engines rollout");
    assert_string_equal(hubspot_object_prop(o, "amount"), "2053.97");
    assert_string_equal(hubspot_object_prop(o, "deal_currency_code"), "USD");
    assert_null(hubspot_object_prop(o, "no_such_property"));
    hubspot_object_free(o);

    /* Same result with the documented key, reversed order and duplicated entries:
     * ids come out unique and ascending whatever the answer's order. */
    sb_config("{\"hubspot\":{\"line_items_key\":\"line_items\",\"association_order\":"
              "\"reverse\",\"contact_unlabeled_duplicates\":true}}");
    o = get_obj(OBJECT_DEAL, 1001);
    assert_ids(o->contact_ids, o->ncontacts, contacts, 3);
    assert_ids(o->line_item_ids, o->nline_items, items, 3);
    hubspot_object_free(o);
}

static void test_zero_and_one_contact_quotes_payments(void **state)
{
    static const int64_t c305[] = {305}, li1002[] = {7004, 7005}, li1003[] = {7006};
    static const int64_t c301[] = {301}, li8001[] = {7201, 7202, 7203};
    static const int64_t q2001[] = {301, 302, 303};
    struct hubspot_object *o;
    (void)state;

    o = get_obj(OBJECT_DEAL, 1002);
    assert_ids(o->contact_ids, o->ncontacts, c305, 1);
    assert_ids(o->line_item_ids, o->nline_items, li1002, 2);
    assert_null(hubspot_object_prop(o, "closedate")); /* absent reads as NULL */
    hubspot_object_free(o);

    o = get_obj(OBJECT_DEAL, 1003);
    assert_int_equal(o->ncontacts, 0);
    assert_null(o->contact_ids);
    assert_ids(o->line_item_ids, o->nline_items, li1003, 1);
    hubspot_object_free(o);

    o = get_obj(OBJECT_QUOTE, 2001);
    assert_ids(o->contact_ids, o->ncontacts, q2001, 3);
    assert_int_equal(o->nline_items, 3);
    assert_string_equal(hubspot_object_prop(o, "hs_title"), "Engines rollout quote");
    assert_string_equal(hubspot_object_prop(o, "hs_esign_num_signers_completed"), "2");
    assert_string_equal(hubspot_object_prop(o, "hs_status"), "APPROVED");
    hubspot_object_free(o);

    o = get_obj(OBJECT_QUOTE, 2003);
    assert_int_equal(o->ncontacts, 0);
    assert_int_equal(o->nline_items, 1);
    hubspot_object_free(o);

    o = get_obj(OBJECT_COMMERCE_PAYMENT, 8001);
    assert_ids(o->contact_ids, o->ncontacts, c301, 1);
    assert_ids(o->line_item_ids, o->nline_items, li8001, 3);
    assert_string_equal(hubspot_object_prop(o, "hs_initial_amount"), "2053.97");
    assert_string_equal(hubspot_object_prop(o, "hs_fees_amount"), "59.87");
    assert_string_equal(hubspot_object_prop(o, "hs_latest_status"), "succeeded");
    assert_string_equal(hubspot_object_prop(o, "hs_reference_number"), "PAY-8001");
    hubspot_object_free(o);

    o = get_obj(OBJECT_COMMERCE_PAYMENT, 8003);
    assert_string_equal(hubspot_object_prop(o, "hs_latest_status"), "refunded");
    assert_string_equal(hubspot_object_prop(o, "hs_refunds_amount"), "375.00");
    hubspot_object_free(o);
}

static void test_contacts(void **state)
{
    struct hubspot_ctx c = ctx_for(PORTAL1);
    struct hubspot_contact *ct = NULL;
    struct api_error e;
    (void)state;

    assert_int_equal(hubspot_get_contact(&g_io, g_api, &c, 301, &ct, &e), 0);
    assert_int_equal(ct->id, 301);
    assert_string_equal(ct->firstname, "Ada");
    assert_string_equal(ct->lastname, "Lovelace");
    assert_string_equal(ct->email, "ada@example.com");
    hubspot_contact_free(ct);

    assert_int_equal(hubspot_get_contact(&g_io, g_api, &c, 305, &ct, &e), 0);
    assert_string_equal(ct->lastname, "D'Souza");
    assert_null(ct->email);
    hubspot_contact_free(ct);

    assert_int_equal(hubspot_get_contact(&g_io, g_api, &c, 304, &ct, &e), 0);
    assert_string_equal(ct->firstname, "\xC5\x81ukasz \xF0\x9F\x9A\x80"); /* Łukasz 🚀 */
    hubspot_contact_free(ct);

    ct = NULL;
    assert_int_equal(hubspot_get_contact(&g_io, g_api, &c, 999999, &ct, &e), -1);
    assert_null(ct);
    assert_int_equal(e.cls, API_NOT_FOUND);
    assert_int_equal(e.code, HSQB_ERR_OBJECT_NOT_FOUND);
    assert_int_equal(e.http_status, 404);
    assert_int_equal(e.source, API_SOURCE_HUBSPOT);
}

static void test_line_items_and_missing_ones(void **state)
{
    static const int64_t ids[] = {7003, 7001, 7002}, bad[] = {7001, 999999, 7002};
    struct hubspot_ctx c = ctx_for(PORTAL1);
    struct hubspot_line_items *l = NULL;
    struct api_error e;
    (void)state;

    assert_int_equal(hubspot_get_line_items(&g_io, g_api, &c, ids, 3, &l, &e), 0);
    assert_int_equal(l->n, 3);
    /* In the order asked for. */
    assert_int_equal(l->items[0].id, 7003);
    assert_string_equal(l->items[0].tax_rate_group_id, "1001");
    assert_null(l->items[0].sku);
    assert_int_equal(l->items[1].id, 7001);
    assert_string_equal(l->items[1].name, "Consulting hour");
    assert_string_equal(l->items[1].sku, "CONS-HR");
    assert_string_equal(l->items[1].product_id, "5001");
    assert_string_equal(l->items[1].quantity, "10");
    assert_string_equal(l->items[1].price, "150.00");
    assert_string_equal(l->items[1].amount, "1500.00");
    assert_string_equal(l->items[1].description, "Discovery workshop");
    assert_string_equal(l->items[1].currency, "USD");
    assert_null(l->items[1].tax_rate_group_id);
    assert_string_equal(l->items[2].discount, "2.00");
    assert_string_equal(l->items[2].total_discount, "6.00");
    hubspot_line_items_free(l);

    /* A deleted line item (207) fails the read and names it. */
    l = NULL;
    assert_int_equal(hubspot_get_line_items(&g_io, g_api, &c, bad, 3, &l, &e), -1);
    assert_null(l);
    assert_int_equal(e.cls, API_NOT_FOUND);
    assert_int_equal(e.code, HSQB_ERR_OBJECT_NOT_FOUND);
    assert_non_null(strstr(e.message, "999999"));
    assert_null(strstr(e.message, "7001"));

    /* Nothing to read: no request. */
    g_calls = 0;
    assert_int_equal(hubspot_get_line_items(&g_io, g_api, &c, NULL, 0, &l, &e), 0);
    assert_int_equal(l->n, 0);
    hubspot_line_items_free(l);
    assert_int_equal(g_calls, 0);
}

static void test_more_than_100_line_items(void **state)
{
    struct hubspot_object *o;
    struct hubspot_line_items *l = NULL;
    struct hubspot_ctx c = ctx_for(PORTAL1);
    struct api_error e;
    int64_t *many;
    char id[16];
    (void)state;

    /* Deal 1900 with 150 line items, seeded through the admin API. */
    {
        char *doc = NULL;
        size_t cap = 64 * 1024, len = 0;
        doc = malloc(cap);
        assert_non_null(doc);
        len += (size_t)snprintf(doc + len, cap - len,
                                "{\"hubspot\":{\"portals\":[{\"portalId\":%d,\"objects\":{"
                                "\"line_items\":[",
                                PORTAL1);
        for (int i = 0; i < 150; i++)
            len += (size_t)snprintf(doc + len, cap - len,
                                    "%s{\"id\":\"%d\",\"properties\":{\"name\":\"Bulk %d\","
                                    "\"quantity\":\"1\",\"price\":\"1.00\",\"amount\":\"1.00\"}}",
                                    i ? "," : "", 9001 + i, i);
        len += (size_t)snprintf(doc + len, cap - len,
                                "],\"deals\":[{\"id\":\"1900\",\"properties\":{\"dealname\":"
                                "\"Bulk\"},\"associations\":{\"contacts\":[\"301\"],"
                                "\"line_items\":[");
        for (int i = 0; i < 150; i++)
            len += (size_t)snprintf(doc + len, cap - len, "%s\"%d\"", i ? "," : "", 9001 + i);
        snprintf(doc + len, cap - len, "]}}]}}]}}");
        assert_int_equal(sb_admin(HTTP_POST, "/_sandbox/seed", doc, NULL), 200);
        free(doc);
    }

    o = get_obj(OBJECT_DEAL, 1900);
    assert_int_equal(o->nline_items, 150);
    assert_int_equal(o->line_item_ids[0], 9001);
    assert_int_equal(o->line_item_ids[149], 9150);
    assert_int_equal(sb_admin(HTTP_DELETE, "/_sandbox/requests", NULL, NULL) / 100, 2);
    assert_int_equal(
        hubspot_get_line_items(&g_io, g_api, &c, o->line_item_ids, o->nline_items, &l, &e), 0);
    assert_int_equal(l->n, 150);
    for (size_t i = 0; i < 150; i++) {
        snprintf(id, sizeof id, "Bulk %zu", i);
        assert_int_equal(l->items[i].id, 9001 + (int64_t)i);
        assert_string_equal(l->items[i].name, id);
    }
    /* Two batches: 100 + 50. */
    assert_int_equal(sb_count("/crm/v3/objects/line_items/batch/read"), 2);
    hubspot_line_items_free(l);
    hubspot_object_free(o);

    /* Beyond the per-event limit: refused before any request. */
    many = calloc(HUBSPOT_MAX_LINE_ITEMS + 1, sizeof *many);
    assert_non_null(many);
    for (int i = 0; i <= HUBSPOT_MAX_LINE_ITEMS; i++)
        many[i] = i + 1;
    g_calls = 0;
    l = NULL;
    assert_int_equal(
        hubspot_get_line_items(&g_io, g_api, &c, many, HUBSPOT_MAX_LINE_ITEMS + 1, &l, &e), -1);
    assert_int_equal(e.cls, API_PERMANENT);
    assert_int_equal(e.code, HSQB_ERR_HUBSPOT_VALIDATION);
    assert_int_equal(g_calls, 0);
    /* Duplicated ids are a caller bug, refused too. */
    many[1] = many[0];
    assert_int_equal(hubspot_get_line_items(&g_io, g_api, &c, many, 2, &l, &e), -1);
    free(many);
}

/* Property values of every size up to HUBSPOT_MAX_PROP, escapes included, land intact:
 * they are copied into a pool of blocks, several per block and the large ones alone. */
static void test_property_values_of_every_size(void **state)
{
    static const size_t lens[] = {1, 2, 100, 4000, 4060, 4080, 4100, 9000, 3, HUBSPOT_MAX_PROP,
                                  1, 70, 4090};
    enum { N = sizeof lens / sizeof lens[0] };
    struct hubspot_ctx c = ctx_for(PORTAL1);
    struct hubspot_line_items *l = NULL;
    struct api_error e;
    int64_t ids[N];
    size_t cap = 200 * 1024, len = 0;
    char *doc = malloc(cap), *want = malloc(HUBSPOT_MAX_PROP + 1);
    (void)state;

    assert_non_null(doc);
    assert_non_null(want);
    len += (size_t)snprintf(doc + len, cap - len,
                            "{\"hubspot\":{\"portals\":[{\"portalId\":%d,\"objects\":{"
                            "\"line_items\":[",
                            PORTAL1);
    for (size_t i = 0; i < N; i++) {
        ids[i] = 9501 + (int64_t)i;
        len += (size_t)snprintf(doc + len, cap - len,
                                "%s{\"id\":\"%lld\",\"properties\":{\"name\":\"caf\\u00e9 %zu\\n\","
                                "\"quantity\":\"1\",\"price\":\"1.00\",\"amount\":\"1.00\","
                                "\"description\":\"",
                                i ? "," : "", (long long)ids[i], i);
        for (size_t k = 0; k < lens[i]; k++)
            doc[len++] = (char)('a' + (k + i) % 26);
        len += (size_t)snprintf(doc + len, cap - len, "\"}}");
    }
    snprintf(doc + len, cap - len, "]}}]}}");
    assert_int_equal(sb_admin(HTTP_POST, "/_sandbox/seed", doc, NULL), 200);
    free(doc);

    assert_int_equal(hubspot_get_line_items(&g_io, g_api, &c, ids, N, &l, &e), 0);
    assert_int_equal(l->n, N);
    for (size_t i = 0; i < N; i++) {
        char name[32];
        for (size_t k = 0; k < lens[i]; k++)
            want[k] = (char)('a' + (k + i) % 26);
        want[lens[i]] = '\0';
        snprintf(name, sizeof name, "caf\xc3\xa9 %zu\n", i);
        assert_int_equal(l->items[i].id, ids[i]);
        assert_string_equal(l->items[i].name, name);
        assert_string_equal(l->items[i].quantity, "1");
        assert_string_equal(l->items[i].description, want);
        assert_null(l->items[i].sku);
    }
    hubspot_line_items_free(l);
    free(want);
}

static void test_truncated_associations_use_v4(void **state)
{
    static const int64_t contacts[] = {301, 302, 303};
    struct hubspot_object *o;
    (void)state;

    /* An answer whose embedded contacts announce another page. */
    sb_fault("{\"path\":\"/crm/v3/objects/deals/1001\",\"times\":1,\"status\":200,\"body\":"
             "{\"id\":\"1001\",\"properties\":{\"dealname\":\"Engines rollout\"},"
             "\"createdAt\":\"2024-01-01T00:00:00Z\",\"updatedAt\":\"2024-01-01T00:00:00Z\","
             "\"archived\":false,\"associations\":{\"contacts\":{\"results\":[{\"id\":\"302\","
             "\"type\":\"deal_to_contact\"}],\"paging\":{\"next\":{\"after\":\"1\"}}},"
             "\"line items\":{\"results\":[{\"id\":\"7001\",\"type\":\"deal_to_line_item\"}]}}}}");
    o = get_obj(OBJECT_DEAL, 1001);
    assert_ids(o->contact_ids, o->ncontacts, contacts, 3);
    assert_int_equal(o->nline_items, 1); /* not truncated: taken as embedded */
    assert_int_equal(sb_count("/crm/v4/objects/deals/1001/associations/contacts"), 1);
    hubspot_object_free(o);
}

static void test_not_found_and_archived(void **state)
{
    struct api_error e;
    (void)state;

    assert_int_equal(get_obj_err(OBJECT_DEAL, 999999, &e), -1);
    assert_int_equal(e.cls, API_NOT_FOUND);
    assert_int_equal(e.code, HSQB_ERR_OBJECT_NOT_FOUND);
    assert_int_equal(e.http_status, 404);
    assert_int_equal(strlen(e.upstream_id), 36); /* the correlationId, a UUID */
    assert_false(api_error_retryable(&e));

    assert_int_equal(get_obj_err(OBJECT_DEAL, 1006, &e), -1); /* archived */
    assert_int_equal(e.cls, API_NOT_FOUND);

    /* Another portal's record is invisible to this portal's token. */
    assert_int_equal(get_obj_err(OBJECT_DEAL, 1101, &e), -1);
    assert_int_equal(e.cls, API_NOT_FOUND);
}

static void test_tokens_and_auth_errors(void **state)
{
    struct hubspot_ctx c2 = ctx_for(PORTAL2);
    struct hubspot_object *o = NULL;
    struct hubspot_api *bare;
    struct hubspot_opts opts = {.base_url = g_base};
    struct api_error e;
    char err[256];
    (void)state;

    /* A portal's own token from Redis wins over hubspot.token. */
    set_portal_token(PORTAL2, TOKEN2);
    assert_int_equal(hubspot_get_object(&g_io, g_api, &c2, OBJECT_DEAL, 1101, &o, &e), 0);
    hubspot_object_free(o);

    /* A bad stored token: 401, HUBSPOT_AUTH, and the token is nowhere in the message. */
    set_portal_token(PORTAL1, "pat-na1-revoked-token-9999");
    assert_int_equal(get_obj_err(OBJECT_DEAL, 1001, &e), -1);
    assert_int_equal(e.cls, API_AUTH);
    assert_int_equal(e.code, HSQB_ERR_HUBSPOT_AUTH);
    assert_int_equal(e.source, API_SOURCE_HUBSPOT);
    assert_int_equal(e.http_status, 401);
    assert_null(strstr(e.message, "revoked"));
    assert_non_null(strstr(e.message, "INVALID_AUTHENTICATION"));
    /* Fixed in Redis: the 401 dropped the cached token, the next attempt works. */
    set_portal_token(PORTAL1, TOKEN1);
    o = get_obj(OBJECT_DEAL, 1001);
    hubspot_object_free(o);

    /* Rotated by another replica while this one still caches the old token: the 401 makes
     * it re-read Redis and send again with the new one, within the same call. */
    bare = hubspot_api_new_opts(&opts, g_rl, NULL, err, sizeof err);
    assert_non_null(bare);
    set_portal_token(PORTAL1, "pat-na1-revoked-token-9999");
    {
        struct hubspot_ctx c1 = ctx_for(PORTAL1);
        assert_int_equal(hubspot_get_object(&g_io, bare, &c1, OBJECT_DEAL, 1001, &o, &e), -1);
        assert_int_equal(e.cls, API_AUTH); /* the token Redis holds is bad: permanent */
        set_portal_token(PORTAL1, TOKEN1); /* the other replica's new token */
        assert_int_equal(hubspot_get_object(&g_io, bare, &c1, OBJECT_DEAL, 1001, &o, &e), 0);
        hubspot_object_free(o);
    }
    hubspot_api_free(bare);

    /* A token lacking the scope: 403 is HUBSPOT_AUTH too (a fresh client, since the
     * good token stays cached for HUBSPOT_TOKEN_CACHE_MS). */
    bare = hubspot_api_new_opts(&opts, g_rl, NULL, err, sizeof err);
    assert_non_null(bare);
    set_portal_token(PORTAL1, "pat-na1-contacts-only-0000-000000000000");
    {
        struct hubspot_ctx c1 = ctx_for(PORTAL1);
        assert_int_equal(hubspot_get_object(&g_io, bare, &c1, OBJECT_DEAL, 1002, &o, &e), -1);
        assert_int_equal(e.cls, API_AUTH);
        assert_int_equal(e.http_status, 403);
    }

    /* No token anywhere: refused without a request. */
    assert_int_equal(hubspot_get_object(&g_io, bare, &c2, OBJECT_DEAL, 1101, &o, &e), 0);
    hubspot_object_free(o); /* portal 2 has its Redis token */
    {
        struct hubspot_ctx c3 = ctx_for(555);
        assert_int_equal(hubspot_get_object(&g_io, bare, &c3, OBJECT_DEAL, 1, &o, &e), -1);
        assert_int_equal(e.cls, API_AUTH);
        assert_int_equal(e.code, HSQB_ERR_PORTAL_NOT_CONNECTED);
        assert_int_equal(e.http_status, 0);
    }
    hubspot_api_free(bare);

    /* From the settings: hubspot.base_url, hubspot.token and the portals it serves. */
    {
        char url[128], *envp[] = {url, "HSQB_HUBSPOT_TOKEN=" TOKEN1,
                                  "HSQB_HUBSPOT_TOKEN_PORTALS=1,"
                                  "102670506",
                                  "HSQB_HTTP_ALLOW_INSECURE=true", NULL};
        struct config *cfg = NULL;
        struct hubspot_ctx c1 = ctx_for(PORTAL1);
        snprintf(url, sizeof url, "HSQB_HUBSPOT_BASE_URL=%s/", g_base);
        assert_int_equal(
            settings_load_flags(&cfg, 0, NULL, envp, SETTINGS_SKIP_REQUIRED, err, sizeof err), 0);
        bare = hubspot_api_new(cfg, g_rl, NULL, err, sizeof err);
        config_free(cfg);
        assert_non_null(bare);
        assert_int_equal(testutil_redis_flush(&g_redis), 0); /* no per-portal tokens */
        assert_int_equal(hubspot_get_object(&g_io, bare, &c1, OBJECT_DEAL, 1001, &o, &e), 0);
        hubspot_object_free(o);
        hubspot_api_free(bare);
    }
    opts.base_url = "ftp://x";
    assert_null(hubspot_api_new_opts(&opts, g_rl, NULL, err, sizeof err));
}

/* The default token serves only the portals hubspot.token_portals lists: another portal
 * without a token of its own is refused before any request, whatever the default. */
static void test_default_token_serves_listed_portals(void **state)
{
    static const char *const any[] = {"*", NULL}, *const bad[] = {"102670506", "p2", NULL};
    struct hubspot_opts opts = {.base_url = g_base, .token = TOKEN1, .token_portals = any};
    struct hubspot_ctx c2 = ctx_for(PORTAL2);
    struct hubspot_object *o = NULL;
    struct hubspot_api *all;
    struct api_error e;
    char err[256];
    size_t calls;
    (void)state;

    assert_true(hubspot_default_serves(g_api, PORTAL1));
    assert_false(hubspot_default_serves(g_api, PORTAL2));
    assert_int_equal(hubspot_portal_connected(&g_io, g_api, PORTAL1, &e), 1);
    assert_int_equal(hubspot_portal_connected(&g_io, g_api, PORTAL2, &e), 0);
    calls = sb_count("/crm/v3/objects/deals/1101");
    assert_int_equal(hubspot_get_object(&g_io, g_api, &c2, OBJECT_DEAL, 1101, &o, &e), -1);
    assert_int_equal(e.cls, API_AUTH);
    assert_int_equal(e.code, HSQB_ERR_PORTAL_NOT_CONNECTED);
    assert_int_equal(e.source, API_SOURCE_HUBSPOT);
    assert_non_null(strstr(e.message, "243987001"));
    assert_int_equal(sb_count("/crm/v3/objects/deals/1101"), calls);
    /* Connected a moment later: seen at once, although "no token" was just read. */
    set_portal_token(PORTAL2, TOKEN2);
    assert_int_equal(hubspot_portal_connected(&g_io, g_api, PORTAL2, &e), 1);
    assert_int_equal(hubspot_get_object(&g_io, g_api, &c2, OBJECT_DEAL, 1101, &o, &e), 0);
    hubspot_object_free(o);

    /* "*": the behaviour before tenant checks, the default serves every portal. */
    all = hubspot_api_new_opts(&opts, g_rl, NULL, err, sizeof err);
    assert_non_null(all);
    assert_true(hubspot_default_serves(all, 555));
    hubspot_api_free(all);
    /* No default token: a list serves nobody. */
    opts.token = NULL;
    all = hubspot_api_new_opts(&opts, g_rl, NULL, err, sizeof err);
    assert_non_null(all);
    assert_false(hubspot_default_serves(all, 555));
    hubspot_api_free(all);
    opts.token_portals = bad;
    assert_null(hubspot_api_new_opts(&opts, g_rl, NULL, err, sizeof err));
    assert_non_null(strstr(err, "\"p2\" is not a portal id"));

    /* Redis down: the question cannot be answered (transient), not "not connected". */
    testutil_redis_kill(&g_redis);
    assert_int_equal(hubspot_portal_connected(&g_io, g_api, 777, &e), -1);
    assert_int_equal(e.cls, API_TRANSIENT);
    assert_int_equal(e.source, API_SOURCE_HUBSPOT);
    assert_int_equal(testutil_redis_restart(&g_redis, err, sizeof err), 0);
    clock_sleep_ms(150);
}

static void test_rate_limits(void **state)
{
    struct ioctx io = g_io;
    struct hubspot_ctx c = ctx_for(PORTAL1);
    struct hubspot_object *o = NULL;
    struct api_error e;
    (void)state;

    /* The sandbox allows 3 per 10 s. The third answer says Remaining 0: the client
     * holds the portal back itself instead of earning a 429. */
    sb_config("{\"hubspot_rate_10s\":3}");
    for (int i = 0; i < 3; i++) {
        o = get_obj(OBJECT_DEAL, 1001);
        hubspot_object_free(o);
    }
    io.deadline_ms = clock_mono_ms() + 100;
    assert_int_equal(hubspot_get_object(&io, g_api, &c, OBJECT_DEAL, 1001, &o, &e), -1);
    assert_int_equal(e.cls, API_THROTTLED);
    assert_int_equal(e.http_status, 0);
    assert_true(e.retry_after_ms > 100 && e.retry_after_ms <= 3334);
    assert_true(api_error_retryable(&e));
    assert_int_equal(sb_count("/crm/v3/objects/deals/1001"), 3);

    /* Without that hint (another replica's limiter state lost), the sandbox's 429 is
     * THROTTLED with the window as the wait, and it blocks the portal for everyone. */
    assert_int_equal(testutil_redis_flush(&g_redis), 0);
    assert_int_equal(get_obj_err(OBJECT_DEAL, 1001, &e), -1);
    assert_int_equal(e.cls, API_THROTTLED);
    assert_int_equal(e.http_status, 429);
    assert_int_equal(e.source, API_SOURCE_HUBSPOT);
    assert_int_equal(e.retry_after_ms, 10000);
    assert_int_equal(strlen(e.upstream_id), 36);
    assert_non_null(strstr(e.message, "TEN_SECONDLY_ROLLING"));
    assert_int_equal(hubspot_get_object(&io, g_api, &c, OBJECT_DEAL, 1001, &o, &e), -1);
    assert_int_equal(e.http_status, 0); /* held back locally, nothing sent */
    assert_int_equal(sb_count("/crm/v3/objects/deals/1001"), 4);

    /* Retry-After (seconds) is honoured when sent. */
    /* (hubspot options re-apply the hubspot_rate_10s setting: send both) */
    sb_config("{\"hubspot_rate_10s\":3,\"hubspot\":{\"retry_after_on_429\":true}}");
    assert_int_equal(testutil_redis_flush(&g_redis), 0);
    assert_int_equal(get_obj_err(OBJECT_DEAL, 1001, &e), -1);
    assert_int_equal(e.http_status, 429);
    assert_true(e.retry_after_ms >= 1000 && e.retry_after_ms <= 10000);
    assert_int_equal(e.retry_after_ms % 1000, 0);

    /* The daily limit: wait until the (UTC) day ends. */
    assert_int_equal(sb_admin(HTTP_POST, "/_sandbox/reset", NULL, NULL), 200);
    assert_int_equal(testutil_redis_flush(&g_redis), 0);
    sb_config("{\"hubspot\":{\"daily_limit\":1}}");
    o = get_obj(OBJECT_DEAL, 1001);
    hubspot_object_free(o);
    assert_int_equal(get_obj_err(OBJECT_DEAL, 1001, &e), -1);
    assert_int_equal(e.cls, API_THROTTLED);
    assert_int_equal(e.http_status, 429);
    assert_non_null(strstr(e.message, "DAILY"));
    assert_true(e.retry_after_ms > 0 && e.retry_after_ms <= 86400000);
}

static void test_transient_and_permanent_faults(void **state)
{
    struct hubspot_object *o;
    struct api_error e;
    (void)state;

    sb_fault("{\"path\":\"/crm/v3/objects/deals/1001\",\"times\":1,\"status\":500,"
             "\"body\":{\"status\":\"error\",\"message\":\"internal\",\"correlationId\":"
             "\"c-500\",\"category\":\"INTERNAL_ERROR\"}}");
    assert_int_equal(get_obj_err(OBJECT_DEAL, 1001, &e), -1);
    assert_int_equal(e.cls, API_TRANSIENT);
    assert_int_equal(e.http_status, 500);
    assert_string_equal(e.upstream_id, "c-500");
    assert_true(api_error_retryable(&e));
    o = get_obj(OBJECT_DEAL, 1001); /* the next attempt works */
    hubspot_object_free(o);

    /* (libcurl re-sends once by itself when a reused connection dies before any answer
     * byte, so drop twice.) */
    sb_fault("{\"path\":\"/crm/v3/objects/deals/1001\",\"times\":2,\"drop\":true}");
    assert_int_equal(get_obj_err(OBJECT_DEAL, 1001, &e), -1);
    assert_int_equal(e.cls, API_TRANSIENT);
    assert_int_equal(e.http_status, 0);

    sb_fault("{\"path\":\"/crm/v3/objects/deals/1001\",\"times\":1,\"status\":423}");
    assert_int_equal(get_obj_err(OBJECT_DEAL, 1001, &e), -1);
    assert_int_equal(e.cls, API_TRANSIENT);
    assert_true(e.retry_after_ms >= 2000);

    sb_fault("{\"path\":\"/crm/v3/objects/deals/1001\",\"times\":1,\"status\":200,"
             "\"body\":\"<html>gateway</html>\"}");
    assert_int_equal(get_obj_err(OBJECT_DEAL, 1001, &e), -1);
    assert_int_equal(e.cls, API_TRANSIENT);

    sb_fault("{\"path\":\"/crm/v3/objects/deals/1001\",\"times\":1,\"status\":400,"
             "\"body\":{\"status\":\"error\",\"message\":\"bad\",\"correlationId\":\"c-400\","
             "\"category\":\"VALIDATION_ERROR\"}}");
    assert_int_equal(get_obj_err(OBJECT_DEAL, 1001, &e), -1);
    assert_int_equal(e.cls, API_PERMANENT);
    assert_int_equal(e.code, HSQB_ERR_HUBSPOT_VALIDATION);
    assert_false(api_error_retryable(&e));

    /* A property that is not a string is not trusted. */
    sb_fault("{\"path\":\"/crm/v3/objects/deals/1001\",\"times\":1,\"status\":200,\"body\":"
             "{\"id\":\"1001\",\"properties\":{\"amount\":12.5},\"archived\":false}}");
    assert_int_equal(get_obj_err(OBJECT_DEAL, 1001, &e), -1);
    assert_int_equal(e.cls, API_TRANSIENT);
    /* An answer over the JSON values cap (4,096 here) is refused like an oversized one:
     * permanent, since asking again brings the same answer. */
    {
        char *rule = malloc(20000);
        int n = snprintf(rule, 20000, "{\"path\":\"/crm/v3/objects/deals/1001\",\"times\":1,"
                                      "\"status\":200,\"body\":{\"id\":\"1001\",\"z\":[0");

        assert_non_null(rule);
        for (int i = 1; i < 5000; i++)
            n += snprintf(rule + n, 20000 - (size_t)n, ",0");
        snprintf(rule + n, 20000 - (size_t)n, "]}}");
        sb_fault(rule);
        free(rule);
        jtape_set_max_values(4096);
        assert_int_equal(get_obj_err(OBJECT_DEAL, 1001, &e), -1);
        jtape_set_max_values(0);
        assert_int_equal(e.cls, API_PERMANENT);
        assert_int_equal(e.code, HSQB_ERR_HUBSPOT_VALIDATION);
        assert_non_null(strstr(e.message, "more than 4096 JSON values"));
    }
}

static void test_callback_completion(void **state)
{
    static const struct hubspot_output_field out[] = {{"qbo_id", "130"},
                                                      {"qbo_doc_number", "1037"}};
    struct hubspot_ctx c = ctx_for(PORTAL1);
    struct api_error e;
    char *body = NULL;
    (void)state;

    g_calls = 0;
    assert_int_equal(hubspot_complete_callback(
                         &g_io, g_api, &c,
                         &(struct hubspot_completion){"ap-102670506-56776413549-7-0", 1, out, 2},
                         &e),
                     0);
    assert_int_equal(g_calls, 1);
    assert_string_equal(g_last_endpoint, "complete_callback");
    assert_int_equal(g_last_status, 204);
    assert_int_equal(sb_admin(HTTP_GET, "/_sandbox/state?portal=102670506", NULL, &body), 200);
    assert_non_null(strstr(body, "\"completed_callbacks\":1"));
    assert_non_null(strstr(body, "\"qbo_doc_number\":\"1037\""));
    assert_non_null(strstr(body, "\"hs_execution_state\":\"SUCCESS\""));
    free(body);

    /* Completing it again, or an unknown callback: permanent, do not loop. */
    assert_int_equal(hubspot_complete_callback(
                         &g_io, g_api, &c,
                         &(struct hubspot_completion){"ap-102670506-56776413549-7-0", 0, NULL, 0},
                         &e),
                     -1);
    assert_int_equal(e.cls, API_PERMANENT);
    assert_int_equal(e.http_status, 400);
    assert_int_equal(e.source, API_SOURCE_HUBSPOT);
    assert_int_equal(
        hubspot_complete_callback(&g_io, g_api, &c,
                                  &(struct hubspot_completion){"ap-unknown", 0, NULL, 0}, &e),
        -1);
    assert_int_equal(e.cls, API_NOT_FOUND);
    assert_int_equal(hubspot_complete_callback(&g_io, g_api, &c,
                                               &(struct hubspot_completion){"", 1, NULL, 0}, &e),
                     -1);
    assert_int_equal(e.cls, API_PERMANENT);

    /* Ids "." and ".." are valid visible ASCII, but as a bare path segment they are dot
     * segments a client or server resolves away: "callbacks/./complete" became the batch
     * route, "callbacks/../complete" another one. As segments they must stay the id's. */
    {
        size_t batch = sb_count("/automation/v4/actions/callbacks/complete");
        static const char *const dots[] = {".", ".."};

        for (size_t i = 0; i < 2; i++) {
            assert_int_equal(
                hubspot_complete_callback(&g_io, g_api, &c,
                                          &(struct hubspot_completion){dots[i], 1, out, 2}, &e),
                -1);
            assert_int_equal(e.cls, API_NOT_FOUND); /* the one callback, unknown */
        }
        assert_int_equal(sb_count("/automation/v4/actions/callbacks/complete"), batch);
        assert_int_equal(sb_count("/automation/v4/actions/complete"), 0);
    }
}

/* One request completes a batch; HubSpot's answer is for the whole batch (the sandbox's
 * all-or-nothing), so a refused batch completes none of its callbacks. */
static void test_callback_batch_completion(void **state)
{
    static const struct hubspot_output_field out[] = {{"qbo_document_id", "130"},
                                                      {"qbo_total", "1250.00"}};
    static const struct hubspot_output_field why[] = {{"error_code", "NO_CONTACT"}};
    struct hubspot_completion two[] = {{"ap-102670506-56776413549-7-0", 1, out, 2},
                                       {"ap-102670506-56776413550-7-0", 0, why, 1}};
    struct hubspot_completion with_expired[] = {{"ap-102670506-expired-7-0", 1, out, 2},
                                                {"ap-102670506-56776413549-7-0", 1, out, 2}};
    struct hubspot_completion unknown[] = {{"ap-unknown", 1, NULL, 0}};
    struct hubspot_completion bad[] = {
        {"ap-102670506-56776413549-7-0", 1, why, 1},
        {"ap-x", 1, (struct hubspot_output_field[]){{"hs_execution_state", "BLOCK"}}, 1}};
    struct hubspot_completion many[HUBSPOT_CALLBACK_BATCH_MAX + 1];
    struct hubspot_ctx c = ctx_for(PORTAL1);
    struct api_error e;
    char *body = NULL;
    (void)state;

    g_calls = 0;
    assert_int_equal(hubspot_complete_callbacks_batch(&g_io, g_api, &c, with_expired, 2, &e), -1);
    assert_int_equal(e.cls, API_PERMANENT);
    assert_int_equal(e.http_status, 400);
    assert_int_equal(e.source, API_SOURCE_HUBSPOT);
    assert_int_equal(sb_admin(HTTP_GET, "/_sandbox/state?portal=102670506", NULL, &body), 200);
    assert_non_null(strstr(body, "\"completed_callbacks\":0"));
    free(body);

    assert_int_equal(hubspot_complete_callbacks_batch(&g_io, g_api, &c, two, 2, &e), 0);
    assert_int_equal(g_calls, 2);
    assert_string_equal(g_last_endpoint, "complete_callbacks");
    assert_int_equal(g_last_status, 204);
    assert_int_equal(sb_count("/automation/v4/actions/callbacks/complete"), 2);
    assert_int_equal(sb_admin(HTTP_GET, "/_sandbox/state?portal=102670506", NULL, &body), 200);
    assert_non_null(strstr(body, "\"completed_callbacks\":2"));
    assert_non_null(strstr(body, "\"qbo_total\":\"1250.00\""));
    assert_non_null(strstr(body, "\"hs_execution_state\":\"FAIL_CONTINUE\""));
    assert_non_null(strstr(body, "\"via\":\"batch\""));
    free(body);

    /* completed already: refused, not transient */
    assert_int_equal(hubspot_complete_callbacks_batch(&g_io, g_api, &c, two, 1, &e), -1);
    assert_int_equal(e.cls, API_PERMANENT);
    assert_int_equal(hubspot_complete_callbacks_batch(&g_io, g_api, &c, unknown, 1, &e), -1);
    assert_int_equal(e.cls, API_NOT_FOUND);

    /* ours to refuse, before any request */
    g_calls = 0;
    for (size_t i = 0; i < HUBSPOT_CALLBACK_BATCH_MAX + 1; i++)
        many[i] = unknown[0];
    assert_int_equal(hubspot_complete_callbacks_batch(&g_io, g_api, &c, many, 101, &e), -1);
    assert_int_equal(e.cls, API_PERMANENT);
    assert_int_equal(hubspot_complete_callbacks_batch(&g_io, g_api, &c, many, 0, &e), -1);
    assert_int_equal(hubspot_complete_callbacks_batch(&g_io, g_api, &c, NULL, 1, &e), -1);
    assert_int_equal(hubspot_complete_callbacks_batch(&g_io, g_api, &c, bad, 2, &e), -1);
    assert_int_equal(e.code, HSQB_ERR_INTERNAL);
    assert_int_equal(g_calls, 0);

    /* a 503: transient, the same batch may be sent again */
    sb_fault("{\"path\":\"/automation/v4/actions/callbacks/complete\",\"status\":503,"
             "\"times\":1}");
    assert_int_equal(hubspot_complete_callbacks_batch(&g_io, g_api, &c, unknown, 1, &e), -1);
    assert_int_equal(e.cls, API_TRANSIENT);
    assert_true(api_error_retryable(&e));
}

static void test_hooks_and_redis_down(void **state)
{
    struct hubspot_object *o;
    struct api_error e;
    char err[256];
    (void)state;

    g_calls = g_waits = 0;
    o = get_obj(OBJECT_DEAL, 1001);
    hubspot_object_free(o);
    assert_int_equal(g_calls, 1);
    assert_int_equal(g_waits, 0); /* nothing waited */
    assert_string_equal(g_last_endpoint, "get_object");
    assert_int_equal(g_last_status, 200);
    /* A portal backed off for 100 ms: the read waits, and says so. */
    assert_int_equal(ratelimit_penalize(g_rl, g_rc, RL_HUBSPOT, "102670506", 100, err, sizeof err),
                     0);
    o = get_obj(OBJECT_DEAL, 1001);
    hubspot_object_free(o);
    assert_int_equal(g_waits, 1);
    assert_true(g_last_wait >= 50);

    /* Redis down: transient (tokens and the limiter live there), nothing sent. */
    testutil_redis_kill(&g_redis);
    g_calls = 0;
    assert_int_equal(get_obj_err(OBJECT_DEAL, 1002, &e), -1);
    assert_int_equal(e.cls, API_TRANSIENT);
    assert_int_equal(g_calls, 0);
    assert_int_equal(testutil_redis_restart(&g_redis, err, sizeof err), 0);
    clock_sleep_ms(150);
}

/* ---- fixtures ------------------------------------------------------------------------ */

/* A fresh client (empty token cache) on a fresh sandbox and an empty Redis. */
static int reset(void **state)
{
    static const char *const served[] = {"102670506", NULL}; /* PORTAL1 */
    struct hubspot_opts ho = {
        .base_url = g_base, .token = TOKEN1, .token_portals = served, .timeout_ms = 5000};
    struct hubspot_hooks hooks = {.on_api_call = on_call, .on_ratelimit_wait = on_wait};
    char err[256];
    (void)state;

    hubspot_api_free(g_api);
    if (!(g_api = hubspot_api_new_opts(&ho, g_rl, &hooks, err, sizeof err))) {
        fprintf(stderr, "hubspot_api_new_opts: %s\n", err);
        return -1;
    }
    if (testutil_redis_flush(&g_redis) < 0)
        return -1;
    return sb_admin(HTTP_POST, "/_sandbox/reset", NULL, NULL) == 200 ? 0 : -1;
}

static int group_setup(void **state)
{
    struct ratelimit_opts ro;
    char err[256];
    (void)state;

    signal(SIGPIPE, SIG_IGN);
    if (testutil_redis_start(&g_redis, NULL, err, sizeof err) < 0 || sb_start() < 0) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    ratelimit_opts_default(&ro);
    ro.poll_ms = 10;
    if (!(g_http = http_client_new(NULL, err, sizeof err)) ||
        !(g_rc = testutil_redis_conn(&g_redis, 0, err, sizeof err)) ||
        !(g_rl = ratelimit_new_opts(&ro, err, sizeof err))) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    g_io = (struct ioctx){.http = g_http, .redis = g_rc};
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    hubspot_api_free(g_api);
    ratelimit_free(g_rl);
    redis_conn_free(g_rc);
    http_client_free(g_http);
    sb_stop();
    testutil_redis_stop(&g_redis);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_deal_with_three_contacts_and_spaced_key, reset),
        cmocka_unit_test_setup(test_zero_and_one_contact_quotes_payments, reset),
        cmocka_unit_test_setup(test_contacts, reset),
        cmocka_unit_test_setup(test_line_items_and_missing_ones, reset),
        cmocka_unit_test_setup(test_more_than_100_line_items, reset),
        cmocka_unit_test_setup(test_property_values_of_every_size, reset),
        cmocka_unit_test_setup(test_truncated_associations_use_v4, reset),
        cmocka_unit_test_setup(test_not_found_and_archived, reset),
        cmocka_unit_test_setup(test_tokens_and_auth_errors, reset),
        cmocka_unit_test_setup(test_default_token_serves_listed_portals, reset),
        cmocka_unit_test_setup(test_rate_limits, reset),
        cmocka_unit_test_setup(test_transient_and_permanent_faults, reset),
        cmocka_unit_test_setup(test_callback_completion, reset),
        cmocka_unit_test_setup(test_callback_batch_completion, reset),
        cmocka_unit_test_setup(test_hooks_and_redis_down, reset),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
