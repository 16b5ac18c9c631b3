/* test_hubspot_refresh.c - component tests of the refresh of OAuth-installed portals'
 * HubSpot access tokens (worker/hubspot_refresh.c, worker/hubspot_oauth.c) against a
 * private redis-server and hsqb-sandbox playing HubSpot's API and token endpoint.
 *
 * What a user would notice: an installed portal keeps working past its access token's
 * 30 minutes (the token is replaced before it expires, without a 401); many threads of
 * two replicas needing a refresh at once cost HubSpot one token request; a token HubSpot
 * refuses (401) is refreshed once and the call sent once more; an uninstalled app (the
 * refresh refused) fails HUBSPOT_AUTH for good while a token endpoint outage is worth a
 * retry; a private-app token or a new install stored during a refresh stays; and no
 * token or secret reaches the logs or an error message. Steady state costs no Redis
 * command more than a private-app token does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "common/log.h"
#include "worker/hubspot.h"
#include "worker/hubspot_oauth.h"
#include "worker/ratelimit.h"

#include "tests/unit/worker/sandbox_harness.h"

#define PORTAL    102670506 /* the sandbox's seeded install of HS_CLIENT */
#define DEAL      1001
#define HS_CLIENT "hsqb-client-id-1"
#define HS_SECRET "hsqb-client-secret-1"
#define HS_RT     "na1-rt-11111111-aaaa-4bbb-8ccc-dddddddddddd"
#define PAT       "pat-na1-11111111-1111-4111-8111-111111111111" /* the portal's private app */
#define NTHREADS  8

static struct config *cfg;
static struct ratelimit *rl;
static struct hubspot_api *api, *api2; /* two replicas */
static char logpath[96];
static int logfd = -1;

/* ---- helpers ----------------------------------------------------------------------------- */

/* A live access token of the seeded install, straight from the sandbox (not counted by
 * the tests: they compare the install's refresh count before and after). */
static void sandbox_token(char *tok, size_t toksz)
{
    struct http_client *http = h_http_new();
    const struct hubspot_oauth_app app = {H.sb_url, HS_CLIENT, HS_SECRET};
    const struct http_param grant[] = {{"grant_type", "refresh_token"}, {"refresh_token", HS_RT}};
    struct hubspot_token_reply *r = calloc(1, sizeof *r);

    assert_non_null(r);
    assert_int_equal(hubspot_oauth_token(http, &app, grant, 2, r), HUBSPOT_TOKEN_OK);
    assert_int_equal(r->portal, PORTAL);
    snprintf(tok, toksz, "%s", r->access);
    free(r);
    http_client_free(http);
}

/* How many refresh grants the sandbox answered for the portal's seeded install. */
static int refreshes(void)
{
    struct json_object *doc = NULL, *hs, *p, *arr, *e, *v;
    char path[96];
    int n = -1;

    snprintf(path, sizeof path, "/_sandbox/state?portal=%d", PORTAL);
    assert_int_equal(h_admin(HTTP_GET, path, NULL, &doc), 200);
    assert_true(json_object_object_get_ex(doc, "hubspot", &hs));
    /* {"hubspot":{"portals":{"<portal>":{..., "oauth_installs":[...]}}}} */
    assert_true(json_object_object_get_ex(hs, "portals", &hs));
    snprintf(path, sizeof path, "%d", PORTAL);
    assert_true(json_object_object_get_ex(hs, path, &p));
    assert_true(json_object_object_get_ex(p, "oauth_installs", &arr));
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        e = json_object_array_get_idx(arr, i);
        if (json_object_object_get_ex(e, "source", &v) &&
            strcmp(json_object_get_string(v), "seed") == 0 &&
            json_object_object_get_ex(e, "refreshes", &v))
            n = json_object_get_int(v);
    }
    json_object_put(doc);
    assert_true(n >= 0);
    return n;
}

/* Installs the app as the install flow does: token tok expiring at exp, refresh token rt,
 * issued `age_ms` ago. */
static void install(const char *tok, int64_t exp, const char *rt, int64_t age_ms)
{
    struct hubspot_install in = {tok, exp, rt, "oauth crm.objects.deals.read", NULL};
    char e[256];
    redisReply *r;

    assert_int_equal(hubspot_oauth_store(H.redis, PORTAL, &in, e, sizeof e), 0);
    r = redis_command(H.redis, e, sizeof e, "HSET hsqb:hsoauth:{%d} updated_at %lld", PORTAL,
                      (long long)(clock_wall_ms() - age_ms));
    assert_non_null(r);
    freeReplyObject(r);
}

static char *stored_token(void)
{
    char e[256], *v = NULL;
    redisReply *r = redis_command(H.redis, e, sizeof e, "GET hsqb:hstoken:{%d}", PORTAL);

    assert_non_null(r);
    if (r->type == REDIS_REPLY_STRING)
        v = strdup(r->str);
    freeReplyObject(r);
    return v;
}

static int64_t stored_expiry(void)
{
    struct hubspot_oauth_status st;
    char e[256];

    if (hubspot_oauth_status_get(H.redis, PORTAL, &st, e, sizeof e) != 1)
        return 0;
    return st.access_expires_at_ms;
}

/* One HubSpot read for the portal with api a, on this thread's own I/O. */
static int read_deal(struct hubspot_api *a, struct http_client *http, struct redis_conn *redis,
                     struct api_error *err)
{
    struct hubspot_ctx hc = {PORTAL};
    struct hubspot_object *o = NULL;
    int rc = hubspot_get_object(H_IO(http, redis), a, &hc, OBJECT_DEAL, DEAL, &o, err);

    hubspot_object_free(o);
    return rc;
}

static int read_deal_main(struct api_error *err)
{
    return read_deal(api, H.admin, H.redis, err);
}

static long long redis_calls(void)
{
    char e[256];
    long long n = 0;
    redisReply *r = redis_command(H.redis, e, sizeof e, "INFO commandstats");
    const char *p;

    assert_non_null(r);
    /* top-level commands only: a script's own commands count under their names too, and
     * the rate limiter's vary with the window; a token read would be an EVALSHA or GET */
    for (p = r->str; (p = strstr(p, "\ncmdstat_")); p++)
        if (strncmp(p + 9, "evalsha:", 8) == 0 || strncmp(p + 9, "eval:", 5) == 0 ||
            strncmp(p + 9, "get:", 4) == 0 || strncmp(p + 9, "hmget:", 6) == 0)
            n += atoll(strstr(p, "calls=") + 6);
    freeReplyObject(r);
    return n;
}

/* ---- tests --------------------------------------------------------------------------------- */

/* 10 of 30 minutes left, margin 15 min: replaced before use, with no 401 on the way. */
static void test_refresh_before_expiry(void **state)
{
    char tok[HUBSPOT_MAX_TOKEN + 1], *now_tok;
    struct api_error err;
    int before;
    (void)state;

    sandbox_token(tok, sizeof tok);
    install(tok, clock_wall_ms() + 10 * 60000, HS_RT, 20 * 60000);
    before = refreshes();
    assert_int_equal(read_deal_main(&err), 0);
    assert_int_equal(refreshes(), before + 1);
    assert_int_equal(h_count("status=401", NULL), 0);
    now_tok = stored_token();
    assert_string_not_equal(now_tok, tok);
    assert_in_range(stored_expiry(), clock_wall_ms() + 1790000, clock_wall_ms() + 1800000);
    free(now_tok);
    /* the new token is good for a while: no second refresh */
    for (int i = 0; i < 5; i++)
        assert_int_equal(read_deal_main(&err), 0);
    assert_int_equal(refreshes(), before + 1);
}

/* An install's token costs no Redis command per call more than a private-app token: the
 * expiry comes with the token into the cache. */
static void test_steady_state_costs_nothing_more(void **state)
{
    char tok[HUBSPOT_MAX_TOKEN + 1], e[256];
    struct api_error err;
    long long pat_cost, oauth_cost, n0;
    redisReply *r;
    (void)state;

    r = redis_command(H.redis, e, sizeof e, "SET hsqb:hstoken:{%d} %s", PORTAL, PAT);
    freeReplyObject(r);
    assert_int_equal(read_deal_main(&err), 0); /* cached */
    n0 = redis_calls();
    for (int i = 0; i < 10; i++)
        assert_int_equal(read_deal_main(&err), 0);
    pat_cost = redis_calls() - n0;

    hubspot_api_free(api);
    assert_non_null(api = hubspot_api_new(cfg, rl, NULL, e, sizeof e));
    sandbox_token(tok, sizeof tok);
    install(tok, clock_wall_ms() + 30 * 60000, HS_RT, 0);
    assert_int_equal(read_deal_main(&err), 0); /* cached */
    n0 = redis_calls();
    for (int i = 0; i < 10; i++)
        assert_int_equal(read_deal_main(&err), 0);
    oauth_cost = redis_calls() - n0;
    assert_int_equal(oauth_cost, pat_cost);
}

struct racer {
    struct hubspot_api *api;
    pthread_barrier_t *go;
    int rc;
    struct api_error err;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    struct http_client *http = h_http_new();
    struct redis_conn *redis = h_redis_new();

    pthread_barrier_wait(r->go);
    r->rc = read_deal(r->api, http, redis, &r->err);
    redis_conn_free(redis);
    http_client_free(http);
    return NULL;
}

/* Expired token, 8 threads over two replicas at once: one token request, all served. */
static void test_concurrent_refreshers_one_request(void **state)
{
    pthread_t t[NTHREADS];
    struct racer rs[NTHREADS];
    pthread_barrier_t go;
    int before;
    (void)state;

    install("expired-access-token", clock_wall_ms() - 1000, HS_RT, 30 * 60000);
    before = refreshes();
    /* a slow token endpoint: every thread arrives while the refresh is under way */
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults",
                             "{\"path\":\"/oauth/v1/token\",\"delay_ms\":300,\"times\":1}", NULL),
                     201);
    pthread_barrier_init(&go, NULL, NTHREADS);
    for (int i = 0; i < NTHREADS; i++) {
        rs[i] = (struct racer){i % 2 ? api2 : api, &go, -1, {0}};
        assert_int_equal(pthread_create(&t[i], NULL, race, &rs[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(t[i], NULL);
        if (rs[i].rc != 0)
            fail_msg("thread %d: %s", i, rs[i].err.message);
    }
    pthread_barrier_destroy(&go);
    assert_int_equal(refreshes(), before + 1);
    assert_int_equal(h_count("status=401", NULL), 0);
}

/* A token HubSpot refuses although it should live on: one refresh, the call once more. */
static void test_401_refreshes_once_and_retries(void **state)
{
    struct api_error err;
    char *tok;
    int before;
    (void)state;

    install("revoked-access-token", clock_wall_ms() + 25 * 60000, HS_RT, 5 * 60000);
    before = refreshes();
    assert_int_equal(read_deal_main(&err), 0);
    assert_int_equal(refreshes(), before + 1);
    assert_int_equal(h_count("status=401", NULL), 1);
    tok = stored_token();
    assert_string_not_equal(tok, "revoked-access-token");
    free(tok);
    /* a 401 with the fresh token too: one refresh, one retry, then HUBSPOT_AUTH */
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults",
                             "{\"path\":\"/crm/v3/objects/*\",\"status\":401,\"times\":2,"
                             "\"body\":{\"status\":\"error\",\"message\":\"no\","
                             "\"category\":\"INVALID_AUTHENTICATION\"}}",
                             NULL),
                     201);
    assert_int_equal(read_deal_main(&err), -1);
    assert_int_equal(err.cls, API_AUTH);
    assert_int_equal(err.code, HSQB_ERR_HUBSPOT_AUTH);
    assert_int_equal(refreshes(), before + 2);
}

/* The app uninstalled (refresh token refused): HUBSPOT_AUTH, permanent, saying so; the
 * token endpoint down: retryable. */
static void test_refused_refresh_is_hubspot_auth(void **state)
{
    struct api_error err;
    (void)state;

    install("expired-access-token", clock_wall_ms() - 1000, "na1-rt-revoked-0000", 30 * 60000);
    assert_int_equal(read_deal_main(&err), -1);
    assert_int_equal(err.cls, API_AUTH);
    assert_int_equal(err.code, HSQB_ERR_HUBSPOT_AUTH);
    assert_false(api_error_retryable(&err));
    assert_non_null(strstr(err.message, "uninstalled or its access revoked"));
    assert_null(strstr(err.message, "na1-rt-revoked"));
    assert_int_equal(h_count("path=/crm/v3/objects", NULL), 0); /* never sent expired */

    install("expired-access-token", clock_wall_ms() - 1000, HS_RT, 30 * 60000);
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults",
                             "{\"path\":\"/oauth/v1/token\",\"status\":503,\"times\":1}", NULL),
                     201);
    assert_int_equal(read_deal_main(&err), -1);
    assert_int_equal(err.cls, API_TRANSIENT);
    assert_true(api_error_retryable(&err));
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults",
                             "{\"path\":\"/oauth/v1/token\",\"status\":429,\"times\":1}", NULL),
                     201);
    assert_int_equal(read_deal_main(&err), -1);
    assert_int_equal(err.cls, API_THROTTLED);
    assert_int_equal(read_deal_main(&err), 0); /* and then it works */
}

/* `credentials hubspot` (SET the token, DEL the install) while HubSpot answers the
 * refresh slowly: the private-app token stays, and the call uses it. */
static void test_private_token_stored_mid_refresh_stays(void **state)
{
    pthread_barrier_t go;
    struct racer b = {NULL, &go, -1, {0}};
    pthread_t t;
    char e[256], *tok;
    redisReply *r;
    (void)state;

    install("expired-access-token", clock_wall_ms() - 1000, HS_RT, 30 * 60000);
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults",
                             "{\"path\":\"/oauth/v1/token\",\"delay_ms\":800,\"times\":1}", NULL),
                     201);
    b.api = api;
    pthread_barrier_init(&go, NULL, 1);
    assert_int_equal(pthread_create(&t, NULL, race, &b), 0);
    clock_sleep_ms(300);
    r = redis_command(H.redis, e, sizeof e, "SET hsqb:hstoken:{%d} %s", PORTAL, PAT);
    freeReplyObject(r);
    pthread_join(t, NULL); /* the refresh answered in the meantime: DEL not yet done */
    pthread_barrier_destroy(&go);
    tok = stored_token();
    assert_string_equal(tok, PAT);
    free(tok);
    if (b.rc != 0)
        fail_msg("read: %s", b.err.message);
    assert_int_equal(hubspot_oauth_forget(H.redis, PORTAL, e, sizeof e), 0);
    tok = stored_token();
    assert_string_equal(tok, PAT);
    free(tok);
}

/* A new install between a refresh's read and its store wins (same refresh token, since
 * HubSpot does not rotate them, but another install time). */
static void test_reinstall_wins(void **state)
{
    struct hubspot_portal_token was;
    struct hubspot_token_reply *fresh = calloc(1, sizeof *fresh);
    char e[256], *tok;
    (void)state;

    install("first-install-token", clock_wall_ms() + 60000, HS_RT, 0);
    assert_int_equal(hubspot_oauth_token_get(H.redis, PORTAL, &was, e, sizeof e), 0);
    assert_true(was.oauth);
    clock_sleep_ms(5);
    install("second-install-token", clock_wall_ms() + 60000, HS_RT, 0);
    snprintf(fresh->access, sizeof fresh->access, "refreshed-token");
    snprintf(fresh->refresh, sizeof fresh->refresh, HS_RT);
    for (int pass = 0; pass < 2; pass++) {
        /* pass 0: read before the new install, refused; pass 1: read again, stored */
        if (pass)
            assert_int_equal(hubspot_oauth_token_get(H.redis, PORTAL, &was, e, sizeof e), 0);
        assert_int_equal(hubspot_oauth_refreshed(H.redis, PORTAL, &was, HS_RT, fresh,
                                                 clock_wall_ms() + 1800000, e, sizeof e),
                         pass);
        tok = stored_token();
        assert_string_equal(tok, pass ? "refreshed-token" : "second-install-token");
        free(tok);
    }
    free(fresh);
}

/* Everything above logged: no refresh token, access token or client secret in it. */
static void test_no_secret_in_logs(void **state)
{
    char buf[1 << 16], tok[HUBSPOT_MAX_TOKEN + 1], *now_tok;
    struct api_error err;
    FILE *f;
    size_t n;
    (void)state;

    /* one more refresh (and a refused one) to be sure something was logged */
    sandbox_token(tok, sizeof tok);
    install(tok, clock_wall_ms() - 1000, HS_RT, 30 * 60000);
    assert_int_equal(read_deal_main(&err), 0);
    now_tok = stored_token();
    install("expired-access-token", clock_wall_ms() - 1000, "na1-rt-revoked-0000", 30 * 60000);
    hubspot_api_free(api); /* another replica: nothing cached */
    assert_non_null(api = hubspot_api_new(cfg, rl, NULL, buf, sizeof buf));
    assert_int_equal(read_deal_main(&err), -1);
    assert_non_null(f = fopen(logpath, "r"));
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    assert_non_null(strstr(buf, "refused the refresh")); /* the log is the right one */
    assert_null(strstr(buf, HS_RT));
    assert_null(strstr(buf, "na1-rt-revoked"));
    assert_null(strstr(buf, HS_SECRET));
    assert_null(strstr(buf, tok));
    assert_null(strstr(buf, now_tok));
    free(now_tok);
}

/* ---- fixtures ------------------------------------------------------------------------------ */

static int setup(void **state)
{
    char e[256];
    (void)state;

    h_reset();
    hubspot_api_free(api);
    hubspot_api_free(api2);
    api = hubspot_api_new(cfg, rl, NULL, e, sizeof e);
    api2 = hubspot_api_new(cfg, rl, NULL, e, sizeof e);
    if (!api || !api2)
        fail_msg("hubspot_api_new: %s", e);
    return 0;
}

static int group_setup(void **state)
{
    static const char *const extra[] = {"--hubspot.oauth.client_id=" HS_CLIENT,
                                        "HSQB_HUBSPOT_OAUTH_CLIENT_SECRET=" HS_SECRET,
                                        "--hubspot.oauth.refresh_margin=15m", NULL};
    char e[256];
    (void)state;

    h_start();
    cfg = h_config(extra);
    if (!(rl = ratelimit_new(cfg, e, sizeof e)))
        fail_msg("ratelimit_new: %s", e);
    snprintf(logpath, sizeof logpath, "%s/worker.log", H.dir);
    logfd = open(logpath, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    if (logfd < 0)
        fail_msg("log file");
    log_set_fd(logfd);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    log_set_fd(1);
    close(logfd);
    hubspot_api_free(api);
    hubspot_api_free(api2);
    ratelimit_free(rl);
    config_free(cfg);
    h_stop();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_refresh_before_expiry, setup),
        cmocka_unit_test_setup(test_steady_state_costs_nothing_more, setup),
        cmocka_unit_test_setup(test_concurrent_refreshers_one_request, setup),
        cmocka_unit_test_setup(test_401_refreshes_once_and_retries, setup),
        cmocka_unit_test_setup(test_refused_refresh_is_hubspot_auth, setup),
        cmocka_unit_test_setup(test_private_token_stored_mid_refresh_stays, setup),
        cmocka_unit_test_setup(test_reinstall_wins, setup),
        cmocka_unit_test_setup(test_no_secret_in_logs, setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
