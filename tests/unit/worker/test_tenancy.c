/* test_tenancy.c - tenant bindings and the pipeline's tenant check, against a private
 * redis-server (the sandbox harness's; no HubSpot or QBO call is ever made here).
 *
 * What an operator or a customer would notice: a realm binds to one portal and a second
 * portal cannot take it; unbinding frees it; `credentials list`-style listings show each
 * portal's realms; an event of a portal without credentials, or naming a realm bound to
 * another portal (or to none), is refused with a message that never names the other
 * portal; the upgrade setting lets unbound realms through and nothing else; a worker
 * answers from memory (no Redis command per event) yet sees an unbind made by another
 * process within about a second, and a new binding at once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/unit/worker/sandbox_harness.h"
#include "worker/hubspot.h"
#include "worker/ratelimit.h"
#include "worker/tenancy.h"

#define P1 102670506
#define P2 243987001
#define R1 "4620816365014867780"
#define R2 "9130357766554433"
#define R3 "4620816365014867781"

static struct config *g_cfg;
static struct ratelimit *g_rl;
static struct hubspot_api *g_hs;
static struct http_client *g_http;
static char e[512];

#define IO H_IO(g_http, H.redis)

/* A fresh Redis; a HubSpot client whose default token serves P1 only. */
static int setup(void **state)
{
    static const char *const served[] = {"102670506", NULL};
    struct hubspot_opts ho = {
        .base_url = H.sb_url, .token = "pat-na1-default", .token_portals = served};
    (void)state;

    h_reset();
    if (!g_cfg) {
        g_cfg = h_config(NULL);
        g_http = h_http_new();
        if (!(g_rl = ratelimit_new(g_cfg, e, sizeof e)))
            fail_msg("ratelimit: %s", e);
    }
    hubspot_api_free(g_hs);
    if (!(g_hs = hubspot_api_new_opts(&ho, g_rl, NULL, e, sizeof e)))
        fail_msg("hubspot: %s", e);
    return 0;
}

static struct tenancy *new_check(int allow_unbound, int64_t ttl_ms)
{
    struct tenancy_opts o = {
        .hubspot = g_hs, .allow_unbound = allow_unbound, .cache_ttl_ms = ttl_ms};
    struct tenancy *t = tenancy_new(&o, e, sizeof e);

    if (!t)
        fail_msg("tenancy_new: %s", e);
    return t;
}

static void bind_ok(int64_t portal, const char *realm)
{
    if (tenancy_bind(H.redis, portal, realm, e, sizeof e) < 0)
        fail_msg("bind %s: %s", realm, e);
}

/* Server-side commands processed so far (INFO itself counts one). */
static long long commands(void)
{
    redisReply *r = redis_command(H.redis, e, sizeof e, "INFO stats");
    const char *p;
    long long n;

    assert_non_null(r);
    p = strstr(r->str, "total_commands_processed:");
    assert_non_null(p);
    n = strtoll(p + strlen("total_commands_processed:"), NULL, 10);
    freeReplyObject(r);
    return n;
}

static void expect_refused(struct tenancy *t, int64_t portal, const char *realm,
                           enum hsqb_error code)
{
    struct api_error err;

    assert_int_equal(tenancy_admit(t, IO, portal, realm, &err), -1);
    assert_int_equal(err.cls, API_PERMANENT);
    if (err.code != code)
        fail_msg("%s: wanted %s", err.message, hsqb_error_name(code));
    assert_non_null(strstr(err.message, "no call was made"));
}

static void expect_admitted(struct tenancy *t, int64_t portal, const char *realm)
{
    struct api_error err;

    if (tenancy_admit(t, IO, portal, realm, &err) < 0)
        fail_msg("refused: %s %s", hsqb_error_name(err.code), err.message);
}

/* ---- the bindings -------------------------------------------------------------------- */

static void test_bind_rebind_unbind(void **state)
{
    char out[4][TENANCY_REALM_MAX + 1];
    int64_t portal = 0;
    size_t n = 99;
    (void)state;

    bind_ok(P1, R1);
    bind_ok(P1, R1); /* idempotent */
    bind_ok(P1, R2);
    /* one portal per realm: another portal cannot take it, and nothing changes */
    assert_int_equal(tenancy_bind(H.redis, P2, R1, e, sizeof e), -1);
    assert_string_equal(e, "realm " R1 " is bound to portal 102670506");
    assert_int_equal(tenancy_portal_of(H.redis, R1, &portal, e, sizeof e), 1);
    assert_int_equal(portal, P1);
    assert_int_equal(tenancy_realms(H.redis, P1, out, 4, &n, e, sizeof e), 0);
    assert_int_equal(n, 2);
    assert_string_equal(out[0], R2); /* ascending: the shorter id first */
    assert_string_equal(out[1], R1);
    assert_int_equal(tenancy_realms(H.redis, P2, out, 4, &n, e, sizeof e), 0);
    assert_int_equal(n, 0);

    /* only the portal it is bound to may unbind it */
    assert_int_equal(tenancy_unbind(H.redis, P2, R1, e, sizeof e), -1);
    assert_string_equal(e, "realm " R1 " is bound to portal 102670506");
    assert_int_equal(tenancy_unbind(H.redis, P1, R1, e, sizeof e), 0);
    assert_int_equal(tenancy_unbind(H.redis, P1, R1, e, sizeof e), 0); /* idempotent */
    assert_int_equal(tenancy_portal_of(H.redis, R1, &portal, e, sizeof e), 0);
    assert_int_equal(tenancy_realms(H.redis, P1, out, 4, &n, e, sizeof e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(out[0], R2);
    /* free again: the other portal may have it now */
    bind_ok(P2, R1);
    assert_int_equal(tenancy_realms(H.redis, P2, out, 1, &n, e, sizeof e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(out[0], R1);

    /* bad arguments touch nothing */
    assert_int_equal(tenancy_bind(H.redis, P1, "12ab", e, sizeof e), -1);
    assert_non_null(strstr(e, "1 to 32 digits"));
    assert_int_equal(tenancy_bind(H.redis, 0, R3, e, sizeof e), -1);
    assert_int_equal(tenancy_bind(H.redis, P1, "123456789012345678901234567890123", e, sizeof e),
                     -1);
    assert_int_equal(tenancy_portal_of(H.redis, R3, &portal, e, sizeof e), 0);
}

/* The portal's set is an index: an entry its realm's key contradicts (a failure between
 * the two writes, a hand edit) is not listed, and is dropped; *n counts past max. */
static void test_realms_index_is_checked(void **state)
{
    char out[1][TENANCY_REALM_MAX + 1];
    size_t n;
    redisReply *r;
    (void)state;

    bind_ok(P1, R1);
    bind_ok(P1, R2);
    bind_ok(P2, R3);
    r = redis_command(H.redis, e, sizeof e, "SADD hsqb:tenancy:portal:{102670506} %s %s", R3,
                      "not-a-realm");
    assert_non_null(r);
    freeReplyObject(r);
    assert_int_equal(tenancy_realms(H.redis, P1, out, 1, &n, e, sizeof e), 0);
    assert_int_equal(n, 2); /* R3 belongs to P2 */
    assert_string_equal(out[0], R2);
    r = redis_command(H.redis, e, sizeof e, "SISMEMBER hsqb:tenancy:portal:{102670506} %s", R3);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
}

/* ---- the check ----------------------------------------------------------------------- */

static void test_admit_and_refusals(void **state)
{
    struct tenancy *t = new_check(0, 60000);
    char key[128];
    redisReply *r;
    struct api_error err;
    (void)state;

    bind_ok(P1, R1);
    bind_ok(P2, R3);
    expect_admitted(t, P1, R1);
    /* P2 has no token of its own and the default token is not for it */
    expect_refused(t, P2, R3, HSQB_ERR_PORTAL_NOT_CONNECTED);
    assert_int_equal(hubspot_token_key(key, sizeof key, "hsqb:", P2), 0);
    r = redis_command(H.redis, e, sizeof e, "SET %s pat-na1-p2", key);
    freeReplyObject(r);
    expect_admitted(t, P2, R3); /* connected: seen at once */
    /* another portal's company: refused, and the message does not even say that another
     * portal holds it (the same words as for a realm bound to nobody) */
    assert_int_equal(tenancy_admit(t, IO, P2, R1, &err), -1);
    assert_int_equal(err.code, HSQB_ERR_REALM_NOT_ALLOWED);
    assert_false(api_error_retryable(&err));
    assert_null(strstr(err.message, "102670506"));
    assert_string_equal(err.message, "QuickBooks realm " R1 " is not bound to HubSpot portal "
                                     "243987001: connect the company to this portal "
                                     "(hsqb-worker credentials bind --realm " R1
                                     " --portal 243987001); no call was made");
    /* a realm bound to nobody */
    expect_refused(t, P1, R2, HSQB_ERR_REALM_NOT_ALLOWED);
    assert_int_equal(tenancy_admit(t, IO, P1, R2, &err), -1);
    assert_non_null(strstr(err.message, "credentials bind --realm " R2 " --portal 102670506"));
    /* bound a moment later: refusals are not cached */
    bind_ok(P1, R2);
    expect_admitted(t, P1, R2);
    tenancy_free(t);
}

/* tenancy.allow_unbound: unbound realms pass, another portal's realm still does not, and
 * a portal without credentials still does not. */
static void test_allow_unbound(void **state)
{
    struct tenancy *t = new_check(1, 60000);
    (void)state;

    bind_ok(P1, R1);
    expect_admitted(t, P1, R2);
    expect_admitted(t, P1, R2); /* from the cache */
    expect_admitted(t, P1, R1);
    expect_refused(t, P2, R1, HSQB_ERR_PORTAL_NOT_CONNECTED);
    {
        char key[128];
        redisReply *r;
        assert_int_equal(hubspot_token_key(key, sizeof key, "hsqb:", P2), 0);
        r = redis_command(H.redis, e, sizeof e, "SET %s pat-na1-p2", key);
        freeReplyObject(r);
    }
    expect_refused(t, P2, R1, HSQB_ERR_REALM_NOT_ALLOWED);
    expect_admitted(t, P2, R2); /* unbound: any connected portal */
    tenancy_free(t);
}

/* Steady state costs no Redis command; an unbind by another process is seen within
 * about a second (the epoch), a local forget at once, a refusal is re-read every time. */
static void test_cache_and_invalidation(void **state)
{
    struct tenancy *t = new_check(0, 60000);
    struct redis_conn *other = h_redis_new(); /* `credentials` or the ingress */
    long long before;
    redisReply *r;
    (void)state;

    bind_ok(P1, R1);
    expect_admitted(t, P1, R1); /* reads the epoch and the binding */
    before = commands();
    for (int i = 0; i < 200; i++)
        expect_admitted(t, P1, R1);
    /* 200 events, at most one epoch poll (and the INFO itself) */
    assert_true(commands() - before <= 2);

    assert_int_equal(tenancy_unbind(other, P1, R1, e, sizeof e), 0);
    clock_sleep_ms(TENANCY_EPOCH_POLL_MS + 100);
    expect_refused(t, P1, R1, HSQB_ERR_REALM_NOT_ALLOWED);
    before = commands();
    expect_refused(t, P1, R1, HSQB_ERR_REALM_NOT_ALLOWED);
    assert_true(commands() - before >= 2); /* a refusal reads Redis again */
    assert_int_equal(tenancy_bind(other, P1, R1, e, sizeof e), 0);
    expect_admitted(t, P1, R1); /* at once */

    /* A binding removed behind the epoch's back (no bump): the cache keeps it until
     * tenancy_forget (or the TTL, or the next bump). */
    r = redis_command(H.redis, e, sizeof e, "DEL hsqb:tenancy:realm:{" R1 "}");
    freeReplyObject(r);
    expect_admitted(t, P1, R1);
    tenancy_forget(t, R1);
    expect_refused(t, P1, R1, HSQB_ERR_REALM_NOT_ALLOWED);

    /* A binding cached for another portal is re-read, not trusted: rebound meanwhile. */
    bind_ok(P1, R1);
    expect_admitted(t, P1, R1);
    r = redis_command(H.redis, e, sizeof e, "SET hsqb:tenancy:realm:{" R1 "} 102670507");
    freeReplyObject(r);
    {
        static const char *const any[] = {"*", NULL};
        struct hubspot_opts ho = {.base_url = H.sb_url, .token = "x", .token_portals = any};
        struct hubspot_api *hs = hubspot_api_new_opts(&ho, g_rl, NULL, e, sizeof e);
        struct tenancy_opts o = {.hubspot = hs, .cache_ttl_ms = 60000};
        struct tenancy *t2 = tenancy_new(&o, e, sizeof e);
        assert_non_null(t2);
        expect_admitted(t2, 102670507, R1);
        tenancy_free(t2);
        hubspot_api_free(hs);
    }
    redis_conn_free(other);
    tenancy_free(t);
}

/* tenancy.cache_ttl = 0: every check reads Redis, and an unbind is seen at once. */
static void test_no_cache(void **state)
{
    struct tenancy *t = new_check(0, 0);
    (void)state;

    bind_ok(P1, R1);
    expect_admitted(t, P1, R1);
    assert_int_equal(tenancy_unbind(H.redis, P1, R1, e, sizeof e), 0);
    expect_refused(t, P1, R1, HSQB_ERR_REALM_NOT_ALLOWED);
    tenancy_free(t);
}

/* Redis down: the question has no answer (transient), never "refused". */
static void test_redis_down(void **state)
{
    struct tenancy *t = new_check(0, 60000);
    struct api_error err;
    (void)state;

    testutil_redis_kill(&H.rs);
    assert_int_equal(tenancy_admit(t, IO, P1, R1, &err), -1);
    assert_int_equal(err.cls, API_TRANSIENT);
    assert_int_equal(tenancy_bind(H.redis, P1, R1, e, sizeof e), -1);
    assert_int_equal(testutil_redis_restart(&H.rs, e, sizeof e), 0);
    clock_sleep_ms(150);
    tenancy_free(t);
}

static int group_teardown(void **state)
{
    (void)state;
    hubspot_api_free(g_hs);
    ratelimit_free(g_rl);
    http_client_free(g_http);
    config_free(g_cfg);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_bind_rebind_unbind, setup),
        cmocka_unit_test_setup(test_realms_index_is_checked, setup),
        cmocka_unit_test_setup(test_admit_and_refusals, setup),
        cmocka_unit_test_setup(test_allow_unbound, setup),
        cmocka_unit_test_setup(test_cache_and_invalidation, setup),
        cmocka_unit_test_setup(test_no_cache, setup),
        cmocka_unit_test_setup(test_redis_down, setup),
    };
    int rc;

    h_start();
    rc = cmocka_run_group_tests(tests, NULL, group_teardown);
    h_stop();
    return rc;
}
