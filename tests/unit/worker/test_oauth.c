/* test_oauth.c - component tests of worker/oauth and `hsqb-worker credentials` against
 * a private redis-server and hsqb-sandbox (Intuit's token endpoint).
 *
 * What a user would notice: a refresh happens when the token is missing or about to
 * expire and not otherwise; a rotated refresh token is stored (the old one is dead at
 * Intuit); many threads in two "replicas" refresh a realm exactly once; invalid_grant
 * is a permanent QBO_REAUTH_REQUIRED that stops hitting Intuit; a 401 invalidation only
 * drops the token it names; a lock held by another replica is waited for; tokens never
 * reach the log; the credentials command round-trips.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>

#include "common/clock.h"
#include "common/log.h"
#include "worker/cmd_credentials.h"
#include "worker/oauth.h"

#include "tests/unit/worker/sandbox_harness.h"
#include "worker/tenancy.h"

static int oauth_calls(void)
{
    return h_count("vendor=oauth", NULL);
}

static struct oauth *new_oauth(const char *const *extra)
{
    char e[256];
    struct config *cfg = h_config(extra);
    struct oauth *o = oauth_new(cfg, e, sizeof e);
    config_free(cfg);
    assert_non_null(o);
    return o;
}

static void store_rt(const char *realm, const char *rt)
{
    char e[256];
    assert_int_equal(oauth_store_refresh_token(H.redis, realm, rt, 0, e, sizeof e), 0);
}

/* POST the token endpoint directly; returns the status. */
static long direct_refresh(const char *rt)
{
    char url[256], e[256];
    struct http_param form[2] = {{"grant_type", "refresh_token"}, {"refresh_token", rt}};
    struct http_request req = {.method = HTTP_POST,
                               .url = url,
                               .form = form,
                               .nform = 2,
                               .basic_user = H_CLIENT_ID,
                               .basic_pass = H_CLIENT_SECRET};
    struct http_response resp;
    long st;
    snprintf(url, sizeof url, "%s/oauth2/v1/tokens/bearer", H.sb_url);
    http_response_init(&resp);
    assert_int_equal(http_client_do(H.admin, &req, &resp, e, sizeof e), HTTP_OK);
    st = resp.status;
    http_response_release(&resp);
    return st;
}

static int setup(void **state)
{
    (void)state;
    h_reset();
    return 0;
}

/* ---- tests --------------------------------------------------------------------------- */

static void test_refresh_once_then_cached(void **state)
{
    struct oauth *o = new_oauth(NULL);
    struct http_client *http = h_http_new();
    struct api_error err;
    char t1[OAUTH_TOKEN_MAX], t2[OAUTH_TOKEN_MAX];
    (void)state;

    store_rt(H_REALM_US1, H_RT_US1);
    assert_int_equal(oauth_get_access(H_IO(http, H.redis), o, H_REALM_US1, t1, sizeof t1, &err), 0);
    assert_true(strlen(t1) > 100);
    assert_int_equal(oauth_calls(), 1);
    /* Stored for every replica, with its expiry. */
    char *at = h_hget(H_REALM_US1, "access_token"),
         *exp = h_hget(H_REALM_US1, "access_expires_at_ms");
    assert_string_equal(at, t1);
    assert_non_null(exp);
    assert_true(atoll(exp) > 0);
    free(at);
    free(exp);
    /* Fresh: no second refresh, from the cache or from Redis (a second instance). */
    assert_int_equal(oauth_get_access(H_IO(http, H.redis), o, H_REALM_US1, t2, sizeof t2, &err), 0);
    assert_string_equal(t1, t2);
    struct oauth *o2 = new_oauth(NULL);
    assert_int_equal(oauth_get_access(H_IO(http, H.redis), o2, H_REALM_US1, t2, sizeof t2, &err),
                     0);
    assert_string_equal(t1, t2);
    assert_int_equal(oauth_calls(), 1);
    /* Too small a buffer is an error, not a truncated token. */
    char small[8];
    assert_int_equal(
        oauth_get_access(H_IO(http, H.redis), o2, H_REALM_US1, small, sizeof small, &err), -1);
    oauth_free(o2);
    oauth_free(o);
    http_client_free(http);
}

static void test_refresh_on_expiry(void **state)
{
    struct oauth *o = new_oauth(NULL); /* margin 5m, capped at half a 1 s lifetime */
    struct http_client *http = h_http_new();
    struct api_error err;
    char t1[OAUTH_TOKEN_MAX], t2[OAUTH_TOKEN_MAX];
    (void)state;

    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/config", "{\"access_ttl_s\":1}", NULL), 200);
    store_rt(H_REALM_US1, H_RT_US1);
    assert_int_equal(oauth_get_access(H_IO(http, H.redis), o, H_REALM_US1, t1, sizeof t1, &err), 0);
    assert_int_equal(oauth_get_access(H_IO(http, H.redis), o, H_REALM_US1, t2, sizeof t2, &err), 0);
    assert_string_equal(t1, t2);
    assert_int_equal(oauth_calls(), 1);
    clock_sleep_ms(600); /* inside the margin now */
    assert_int_equal(oauth_get_access(H_IO(http, H.redis), o, H_REALM_US1, t2, sizeof t2, &err), 0);
    assert_string_not_equal(t1, t2);
    assert_int_equal(oauth_calls(), 2);
    oauth_free(o);
    http_client_free(http);
}

static void test_rotation_stored(void **state)
{
    struct oauth *o = new_oauth(NULL);
    struct http_client *http = h_http_new();
    struct api_error err;
    char t1[OAUTH_TOKEN_MAX], t2[OAUTH_TOKEN_MAX];
    (void)state;

    /* Every refresh rotates: the presented refresh token dies at once. */
    assert_int_equal(
        h_admin(HTTP_POST, "/_sandbox/config", "{\"oauth\":{\"rotate_after_ms\":1}}", NULL), 200);
    store_rt(H_REALM_US1, H_RT_US1);
    clock_sleep_ms(5);
    assert_int_equal(oauth_get_access(H_IO(http, H.redis), o, H_REALM_US1, t1, sizeof t1, &err), 0);
    char *rt1 = h_hget(H_REALM_US1, "refresh_token");
    assert_non_null(rt1);
    assert_string_not_equal(rt1, H_RT_US1);
    assert_int_equal(direct_refresh(H_RT_US1), 400); /* the old one: invalid_grant */

    /* The stored (rotated) token keeps working: a second refresh after a 401. */
    clock_sleep_ms(5);
    assert_int_equal(oauth_invalidate(H_IO(NULL, H.redis), o, H_REALM_US1, t1, &err), 0);
    assert_int_equal(oauth_get_access(H_IO(http, H.redis), o, H_REALM_US1, t2, sizeof t2, &err), 0);
    assert_string_not_equal(t1, t2);
    char *rt2 = h_hget(H_REALM_US1, "refresh_token");
    assert_string_not_equal(rt2, rt1);
    assert_int_equal(oauth_calls(), 3); /* ours, the direct one, ours */
    free(rt1);
    free(rt2);
    oauth_free(o);
    http_client_free(http);
}

struct worker_arg {
    struct oauth *o;
    pthread_barrier_t *barrier;
    char tok[OAUTH_TOKEN_MAX];
    int rc;
};

static void *worker(void *p)
{
    struct worker_arg *a = p;
    struct http_client *http = h_http_new();
    struct redis_conn *redis = h_redis_new();
    struct api_error err;
    pthread_barrier_wait(a->barrier);
    a->rc = oauth_get_access(H_IO(http, redis), a->o, H_REALM_US2, a->tok, sizeof a->tok, &err);
    redis_conn_free(redis);
    http_client_free(http);
    return NULL;
}

static void test_concurrent_one_refresh(void **state)
{
    enum { N = 8 };
    struct oauth *replica[2] = {new_oauth(NULL), new_oauth(NULL)};
    struct worker_arg *args = calloc(N, sizeof *args);
    pthread_t th[N];
    pthread_barrier_t barrier;
    (void)state;

    /* With rotation on, a second refresh would fail or poison the stored token. */
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/config",
                             "{\"latency_ms\":100,\"oauth\":{\"rotate_after_ms\":1}}", NULL),
                     200);
    store_rt(H_REALM_US2, H_RT_US2);
    clock_sleep_ms(5);
    pthread_barrier_init(&barrier, NULL, N);
    for (int i = 0; i < N; i++) {
        args[i].o = replica[i % 2];
        args[i].barrier = &barrier;
        assert_int_equal(pthread_create(&th[i], NULL, worker, &args[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++) {
        assert_int_equal(args[i].rc, 0);
        assert_string_equal(args[i].tok, args[0].tok);
    }
    assert_int_equal(oauth_calls(), 1);
    char *rt = h_hget(H_REALM_US2, "refresh_token");
    assert_string_not_equal(rt, H_RT_US2);
    free(rt);
    pthread_barrier_destroy(&barrier);
    free(args);
    oauth_free(replica[0]);
    oauth_free(replica[1]);
}

static void test_invalid_grant_reauth(void **state)
{
    struct oauth *o = new_oauth(NULL);
    struct http_client *http = h_http_new();
    struct api_error err;
    char t[OAUTH_TOKEN_MAX];
    (void)state;

    store_rt(H_REALM_US1, "RT1-99-H0-1900000000notarealrefreshtoken");
    assert_int_equal(oauth_get_access(H_IO(http, H.redis), o, H_REALM_US1, t, sizeof t, &err), -1);
    assert_int_equal(err.cls, API_AUTH);
    assert_int_equal(err.code, HSQB_ERR_QBO_REAUTH_REQUIRED);
    assert_string_equal(err.qbo_fault_code, "invalid_grant");
    assert_int_equal(err.source, API_SOURCE_OAUTH);
    assert_int_equal(api_error_retryable(&err), 0);
    assert_null(strstr(err.message, "notarealrefreshtoken"));
    assert_true(err.upstream_id[0] != 0); /* intuit_tid */
    assert_int_equal(oauth_calls(), 1);
    /* Marked in Redis: no replica hammers Intuit with the dead token again. */
    struct oauth *o2 = new_oauth(NULL);
    assert_int_equal(oauth_get_access(H_IO(http, H.redis), o2, H_REALM_US1, t, sizeof t, &err), -1);
    assert_int_equal(err.code, HSQB_ERR_QBO_REAUTH_REQUIRED);
    assert_int_equal(oauth_calls(), 1);
    /* Reconnecting (storing a good token) clears the mark. */
    store_rt(H_REALM_US1, H_RT_US1);
    assert_int_equal(oauth_get_access(H_IO(http, H.redis), o2, H_REALM_US1, t, sizeof t, &err), 0);
    /* No credentials at all: the same permanent error, without calling Intuit. */
    assert_int_equal(oauth_get_access(H_IO(http, H.redis), o2, H_REALM_CA, t, sizeof t, &err), -1);
    assert_int_equal(err.code, HSQB_ERR_QBO_REAUTH_REQUIRED);
    assert_int_equal(oauth_calls(), 2);
    oauth_free(o2);
    oauth_free(o);
    http_client_free(http);
}

static void test_invalidate_only_the_rejected_token(void **state)
{
    struct oauth *o = new_oauth(NULL);
    struct http_client *http = h_http_new();
    struct api_error err;
    char t1[OAUTH_TOKEN_MAX], t2[OAUTH_TOKEN_MAX];
    (void)state;

    store_rt(H_REALM_US1, H_RT_US1);
    assert_int_equal(oauth_get_access(H_IO(http, H.redis), o, H_REALM_US1, t1, sizeof t1, &err), 0);
    /* A 401 for a token that is no longer current (someone already refreshed). */
    assert_int_equal(
        oauth_invalidate(H_IO(NULL, H.redis), o, H_REALM_US1, "an-older-token-value", &err), 0);
    assert_int_equal(oauth_get_access(H_IO(http, H.redis), o, H_REALM_US1, t2, sizeof t2, &err), 0);
    assert_string_equal(t1, t2);
    assert_int_equal(oauth_calls(), 1);
    /* A 401 for the current token: the next get refreshes. */
    assert_int_equal(oauth_invalidate(H_IO(NULL, H.redis), o, H_REALM_US1, t1, &err), 0);
    assert_int_equal(oauth_get_access(H_IO(http, H.redis), o, H_REALM_US1, t2, sizeof t2, &err), 0);
    assert_string_not_equal(t1, t2);
    assert_int_equal(oauth_calls(), 2);
    oauth_free(o);
    http_client_free(http);
}

static void test_endpoint_failures(void **state)
{
    struct http_client *http = h_http_new();
    struct api_error err;
    char t[OAUTH_TOKEN_MAX];
    (void)state;

    store_rt(H_REALM_US1, H_RT_US1);
    /* 503 once: transient, nothing stored; the next attempt works. */
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults",
                             "{\"path\":\"/oauth2/v1/tokens/bearer\",\"status\":503,\"times\":1}",
                             NULL),
                     201);
    struct oauth *o = new_oauth(NULL);
    assert_int_equal(oauth_get_access(H_IO(http, H.redis), o, H_REALM_US1, t, sizeof t, &err), -1);
    assert_int_equal(err.cls, API_TRANSIENT);
    assert_int_equal(err.http_status, 503);
    assert_int_equal(err.source, API_SOURCE_OAUTH);
    assert_int_equal(api_error_retryable(&err), 1);
    oauth_free(o); /* (a fresh process: no failure shared with waiters) */
    o = new_oauth(NULL);
    assert_int_equal(oauth_get_access(H_IO(http, H.redis), o, H_REALM_US1, t, sizeof t, &err), 0);
    oauth_free(o);

    /* Wrong client secret: a configuration error, not a reconnect. */
    const char *bad[] = {"HSQB_OAUTH_CLIENT_SECRET=wrong-secret-value", NULL};
    assert_int_equal(
        oauth_invalidate(H_IO(NULL, H.redis), (o = new_oauth(bad)), H_REALM_US1, t, &err), 0);
    assert_int_equal(oauth_get_access(H_IO(http, H.redis), o, H_REALM_US1, t, sizeof t, &err), -1);
    assert_int_equal(err.cls, API_AUTH);
    assert_int_equal(err.code, HSQB_ERR_INTERNAL);
    assert_int_equal(err.source, API_SOURCE_OAUTH);
    assert_null(strstr(err.message, "wrong-secret-value"));
    oauth_free(o);

    /* Unreachable endpoint: transient. */
    const char *dead[] = {"--oauth.token_url=http://127.0.0.1:1/oauth2/v1/tokens/bearer", NULL};
    o = new_oauth(dead);
    assert_int_equal(oauth_get_access(H_IO(http, H.redis), o, H_REALM_US1, t, sizeof t, &err), -1);
    assert_int_equal(err.cls, API_TRANSIENT);
    oauth_free(o);
    http_client_free(http);
}

static void test_failed_proactive_refresh_keeps_token(void **state)
{
    struct http_client *http = h_http_new();
    struct api_error err;
    char t[OAUTH_TOKEN_MAX], e[256];
    long long now = (long long)time(NULL) * 1000;
    redisReply *r;
    (void)state;

    /* An hour-long token with 10 s left: inside the 5 min margin, still accepted. */
    store_rt(H_REALM_US1, H_RT_US1);
    r = redis_command(H.redis, e, sizeof e,
                      "HSET hsqb:oauth:{" H_REALM_US1 "} access_token still-valid-token "
                      "access_expires_at_ms %lld updated_at %lld",
                      now + 10000, now - 3590000);
    assert_non_null(r);
    freeReplyObject(r);
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults",
                             "{\"path\":\"/oauth2/v1/tokens/bearer\",\"status\":503,\"times\":1}",
                             NULL),
                     201);
    struct oauth *o = new_oauth(NULL);
    assert_int_equal(oauth_get_access(H_IO(http, H.redis), o, H_REALM_US1, t, sizeof t, &err), 0);
    assert_string_equal(t, "still-valid-token");
    assert_int_equal(oauth_calls(), 1);
    oauth_free(o);
    /* Next time the refresh works. */
    o = new_oauth(NULL);
    assert_int_equal(oauth_get_access(H_IO(http, H.redis), o, H_REALM_US1, t, sizeof t, &err), 0);
    assert_string_not_equal(t, "still-valid-token");
    assert_int_equal(oauth_calls(), 2);
    oauth_free(o);
    http_client_free(http);
}

struct late_writer {
    int delay_ms;
};

static void *write_token_later(void *p)
{
    struct late_writer *w = p;
    struct redis_conn *redis = h_redis_new();
    char e[256], exp[32];
    redisReply *r;
    clock_sleep_ms(w->delay_ms);
    snprintf(exp, sizeof exp, "%lld", (long long)time(NULL) * 1000 + 3600 * 1000LL);
    r = redis_command(redis, e, sizeof e,
                      "HSET hsqb:oauth:{" H_REALM_US1 "} access_token from-the-other-replica "
                      "access_expires_at_ms %s updated_at %lld",
                      exp, (long long)time(NULL) * 1000);
    if (r)
        freeReplyObject(r);
    redis_conn_free(redis);
    return NULL;
}

static void test_waits_for_another_replica(void **state)
{
    struct oauth *o = new_oauth(NULL);
    struct http_client *http = h_http_new();
    struct api_error err;
    char t[OAUTH_TOKEN_MAX], e[256];
    struct late_writer w = {.delay_ms = 200};
    pthread_t th;
    redisReply *r;
    int64_t t0;
    (void)state;

    store_rt(H_REALM_US1, H_RT_US1);
    /* Another replica holds the refresh lock and stores its token 200 ms later. */
    r = redis_command(H.redis, e, sizeof e, "SET hsqb:lock:{" H_REALM_US1 "}:oauth other PX 5000");
    assert_non_null(r);
    freeReplyObject(r);
    pthread_create(&th, NULL, write_token_later, &w);
    t0 = clock_mono_ms();
    assert_int_equal(oauth_get_access(H_IO(http, H.redis), o, H_REALM_US1, t, sizeof t, &err), 0);
    pthread_join(th, NULL);
    assert_string_equal(t, "from-the-other-replica");
    assert_true(clock_mono_ms() - t0 >= 150);
    assert_int_equal(oauth_calls(), 0);

    /* A lock left by a dead replica: we wait for it to lapse, then refresh ourselves. */
    assert_int_equal(oauth_invalidate(H_IO(NULL, H.redis), o, H_REALM_US1, t, &err), 0);
    r = redis_command(H.redis, e, sizeof e, "SET hsqb:lock:{" H_REALM_US1 "}:oauth dead PX 300");
    freeReplyObject(r);
    t0 = clock_mono_ms();
    assert_int_equal(oauth_get_access(H_IO(http, H.redis), o, H_REALM_US1, t, sizeof t, &err), 0);
    assert_string_not_equal(t, "from-the-other-replica");
    assert_true(clock_mono_ms() - t0 >= 250);
    assert_int_equal(oauth_calls(), 1);
    oauth_free(o);
    http_client_free(http);
}

/* ---- credentials ------------------------------------------------------------------- */

static int run_cred(const char *stdin_text, char *out, size_t outsz, const char *const *args)
{
    char *argv[32], port[32], url[160], id[96], secret[96];
    char errbuf[2048];
    int n = 0, rc;
    FILE *in = fmemopen((void *)(stdin_text ? stdin_text : ""),
                        stdin_text && *stdin_text ? strlen(stdin_text) : 1, "r");
    FILE *o = fmemopen(out, outsz, "w"), *e = fmemopen(errbuf, sizeof errbuf, "w");

    snprintf(port, sizeof port, "--redis.port=%d", H.redis_port);
    snprintf(url, sizeof url, "--oauth.token_url=%s/oauth2/v1/tokens/bearer", H.sb_url);
    snprintf(id, sizeof id, "--oauth.client_id=%s", H_CLIENT_ID);
    snprintf(secret, sizeof secret, "HSQB_OAUTH_CLIENT_SECRET=%s", H_CLIENT_SECRET);
    argv[n++] = (char *)"credentials";
    for (; *args; args++)
        argv[n++] = (char *)*args;
    argv[n++] = port;
    argv[n++] = url;
    argv[n++] = id;
    argv[n++] = (char *)"--http.allow_insecure=true"; /* the sandbox is plain http */
    argv[n] = NULL;
    memset(out, 0, outsz);
    memset(errbuf, 0, sizeof errbuf);
    rc = cmd_credentials_run(n, argv, (char *[]){secret, NULL}, in, o, e);
    fclose(in);
    fclose(o);
    fclose(e);
    return rc;
}

static void test_credentials_round_trip(void **state)
{
    char out[4096], path[128], e[256];
    FILE *f;
    redisReply *r;
    (void)state;

    /* QBO from stdin, verified by one refresh. */
    const char *qbo[] = {"qbo", "--realm", H_REALM_US1, "--refresh-token", "-", "--verify", NULL};
    assert_int_equal(run_cred(H_RT_US1 "\n", out, sizeof out, qbo), 0);
    assert_non_null(strstr(out, "verified"));
    assert_int_equal(oauth_calls(), 1);
    char *at = h_hget(H_REALM_US1, "access_token");
    assert_non_null(at);
    assert_true(strlen(at) > 100);

    /* HubSpot from a file. */
    snprintf(path, sizeof path, "%s/hs.token", H.dir);
    assert_non_null(f = fopen(path, "w"));
    fputs("pat-na1-11111111-1111-4111-8111-111111111111\r\n", f);
    fclose(f);
    const char *hs[] = {"hubspot", "--portal", "102670506", "--token-file", path, NULL};
    assert_int_equal(run_cred(NULL, out, sizeof out, hs), 0);
    r = redis_command(H.redis, e, sizeof e, "GET hsqb:hstoken:{102670506}");
    assert_non_null(r);
    assert_string_equal(r->str, "pat-na1-11111111-1111-4111-8111-111111111111");
    freeReplyObject(r);

    /* list names both, shows no secret. */
    const char *list[] = {"list", NULL};
    assert_int_equal(run_cred(NULL, out, sizeof out, list), 0);
    assert_non_null(strstr(out, "qbo realm " H_REALM_US1 ": NO PORTAL"));
    assert_non_null(strstr(out, "refresh token stored"));
    assert_non_null(strstr(out, "hubspot portal 102670506: token stored"));
    assert_null(strstr(out, "pat-na1"));
    assert_null(strstr(out, "RT1-"));
    assert_null(strstr(out, at));
    free(at);

    /* A token as a plain flag value is refused (it would show in ps). */
    const char *plain[] = {"qbo", "--realm", H_REALM_US1, "--refresh-token", H_RT_US1, NULL};
    assert_int_equal(run_cred(NULL, out, sizeof out, plain), 2);
    const char *bad_realm[] = {"qbo", "--realm", "12ab", "--refresh-token", "-", NULL};
    assert_int_equal(run_cred(H_RT_US1, out, sizeof out, bad_realm), 2);

    /* A refused token fails --verify and is marked. */
    const char *qbo2[] = {"qbo", "--realm", H_REALM_US2, "--refresh-token", "-", "--verify", NULL};
    assert_int_equal(run_cred("RT1-00-H0-bogus\n", out, sizeof out, qbo2), 1);
    assert_int_equal(run_cred(NULL, out, sizeof out, list), 0);
    assert_non_null(strstr(out, "REAUTH REQUIRED"));

    /* delete */
    const char *del[] = {"delete", "--portal", "102670506", NULL};
    assert_int_equal(run_cred(NULL, out, sizeof out, del), 0);
    assert_non_null(strstr(out, "credentials deleted"));
    assert_int_equal(run_cred(NULL, out, sizeof out, list), 0);
    assert_null(strstr(out, "hubspot portal"));
}

/* Bindings by hand: qbo --portal stores and binds, bind/unbind for stored tokens, list
 * shows each realm's portal, delete --realm unbinds; a realm bound to another portal is
 * refused (exit 1) and nothing is stored or changed. */
static void test_credentials_bindings(void **state)
{
    char out[4096], e[256];
    int64_t portal = 0;
    (void)state;

    const char *qbo[] = {"qbo",       "--realm",         H_REALM_US1, "--portal",
                         "102670506", "--refresh-token", "-",         NULL};
    assert_int_equal(run_cred(H_RT_US1 "\n", out, sizeof out, qbo), 0);
    assert_non_null(strstr(out, "realm " H_REALM_US1 " is bound to HubSpot portal 102670506"));
    assert_int_equal(tenancy_portal_of(H.redis, H_REALM_US1, &portal, e, sizeof e), 1);
    assert_int_equal(portal, 102670506);
    /* another portal cannot take it, not even with a new token */
    const char *steal[] = {"qbo",       "--realm",         H_REALM_US1, "--portal",
                           "243987001", "--refresh-token", "-",         NULL};
    assert_int_equal(run_cred("RT1-00-H0-another\n", out, sizeof out, steal), 1);
    {
        char *rt = h_hget(H_REALM_US1, "refresh_token");
        assert_string_equal(rt, H_RT_US1);
        free(rt);
    }
    const char *bind2[] = {"bind", "--realm", H_REALM_US1, "--portal", "243987001", NULL};
    assert_int_equal(run_cred(NULL, out, sizeof out, bind2), 1);
    /* a token stored without --portal is noted as unbound; bind binds it */
    const char *qbo2[] = {"qbo", "--realm", H_REALM_US2, "--refresh-token", "-", NULL};
    assert_int_equal(run_cred(H_RT_US2 "\n", out, sizeof out, qbo2), 0);
    assert_non_null(strstr(out, "note: realm " H_REALM_US2 " is bound to no HubSpot portal"));
    const char *bind_us2[] = {"bind", "--realm", H_REALM_US2, "--portal", "243987001", NULL};
    assert_int_equal(run_cred(NULL, out, sizeof out, bind_us2), 0);
    /* a binding without a token yet is listed too */
    const char *bind_ca[] = {"bind", "--realm", H_REALM_CA, "--portal", "243987001", NULL};
    assert_int_equal(run_cred(NULL, out, sizeof out, bind_ca), 0);
    assert_non_null(strstr(out, "note: no QuickBooks credentials are stored for realm"));
    const char *list[] = {"list", NULL};
    assert_int_equal(run_cred(NULL, out, sizeof out, list), 0);
    assert_non_null(strstr(out, "qbo realm " H_REALM_US1 ": portal 102670506, refresh token"));
    assert_non_null(strstr(out, "qbo realm " H_REALM_US2 ": portal 243987001, refresh token"));
    assert_non_null(
        strstr(out, "qbo realm " H_REALM_CA ": portal 243987001, no QuickBooks credentials"));
    /* unbind: from the wrong portal refused, then from its own */
    const char *unbind_wrong[] = {"unbind", "--realm", H_REALM_US2, "--portal", "102670506", NULL};
    assert_int_equal(run_cred(NULL, out, sizeof out, unbind_wrong), 1);
    const char *unbind[] = {"unbind", "--realm", H_REALM_US2, NULL};
    assert_int_equal(run_cred(NULL, out, sizeof out, unbind), 0);
    assert_non_null(strstr(out, "no longer bound to HubSpot portal 243987001"));
    assert_int_equal(tenancy_portal_of(H.redis, H_REALM_US2, &portal, e, sizeof e), 0);
    /* delete --realm also unbinds */
    const char *del[] = {"delete", "--realm", H_REALM_US1, NULL};
    assert_int_equal(run_cred(NULL, out, sizeof out, del), 0);
    assert_non_null(strstr(out, "credentials deleted"));
    assert_non_null(strstr(out, "no longer bound to HubSpot portal 102670506"));
    assert_int_equal(tenancy_portal_of(H.redis, H_REALM_US1, &portal, e, sizeof e), 0);
    /* usage */
    const char *bad[] = {"bind", "--realm", H_REALM_US1, NULL};
    assert_int_equal(run_cred(NULL, out, sizeof out, bad), 2);
}

/* Redis keys are text anyone with Redis access may have written: `credentials list`
 * shows the tags it finds printable only, never an escape sequence, a bidi override or
 * invalid UTF-8 reaching the operator's terminal. */
static void test_credentials_list_prints_hostile_keys_printable(void **state)
{
    char out[4096], e[256];
    redisReply *r;
    size_t i;
    (void)state;

    r = redis_command(H.redis, e, sizeof e, "SET %s x",
                      "hsqb:hstoken:{\x1b]0;pwned\x07\x1b[2J\xe2\x80\xae\xff\\}");
    assert_non_null(r);
    freeReplyObject(r);
    const char *list[] = {"list", NULL};
    assert_int_equal(run_cred(NULL, out, sizeof out, list), 0);
    for (i = 0; out[i]; i++)
        if (out[i] != '\n' && (out[i] < 0x20 || out[i] > 0x7e))
            fail_msg("byte 0x%02x at %zu of the list:\n%s", (unsigned char)out[i], i, out);
    assert_non_null(
        strstr(out, "hubspot portal \\x1b]0;pwned\\x07\\x1b[2J\\xe2\\x80\\xae\\xff\\\\:"));
}

static void test_tokens_never_logged(void **state)
{
    char path[128], buf[65536];
    struct oauth *o = new_oauth(NULL);
    struct http_client *http = h_http_new();
    struct api_error err;
    char t[OAUTH_TOKEN_MAX];
    int fd;
    ssize_t n;
    (void)state;

    snprintf(path, sizeof path, "%s/log", H.dir);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    log_set_level(LOG_DEBUG);
    log_set_fd(fd);
    assert_int_equal(
        h_admin(HTTP_POST, "/_sandbox/config", "{\"oauth\":{\"rotate_after_ms\":1}}", NULL), 200);
    store_rt(H_REALM_US1, H_RT_US1);
    clock_sleep_ms(5);
    assert_int_equal(oauth_get_access(H_IO(http, H.redis), o, H_REALM_US1, t, sizeof t, &err), 0);
    char *rt = h_hget(H_REALM_US1, "refresh_token");
    store_rt(H_REALM_US2, "RT1-77-H0-neverlogthisrefreshtoken");
    assert_int_equal(oauth_get_access(H_IO(http, H.redis), o, H_REALM_US2, t, sizeof t, &err), -1);
    log_set_fd(1);
    log_set_level(LOG_WARN);
    n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    assert_true(n > 0); /* something was logged (the refresh) */
    buf[n] = 0;
    assert_null(strstr(buf, t));
    assert_null(strstr(buf, rt));
    assert_null(strstr(buf, H_RT_US1));
    assert_null(strstr(buf, "neverlogthis"));
    assert_null(strstr(buf, H_CLIENT_SECRET));
    free(rt);
    oauth_free(o);
    http_client_free(http);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_refresh_once_then_cached, setup),
        cmocka_unit_test_setup(test_refresh_on_expiry, setup),
        cmocka_unit_test_setup(test_rotation_stored, setup),
        cmocka_unit_test_setup(test_concurrent_one_refresh, setup),
        cmocka_unit_test_setup(test_invalid_grant_reauth, setup),
        cmocka_unit_test_setup(test_invalidate_only_the_rejected_token, setup),
        cmocka_unit_test_setup(test_endpoint_failures, setup),
        cmocka_unit_test_setup(test_failed_proactive_refresh_keeps_token, setup),
        cmocka_unit_test_setup(test_waits_for_another_replica, setup),
        cmocka_unit_test_setup(test_credentials_round_trip, setup),
        cmocka_unit_test_setup(test_credentials_bindings, setup),
        cmocka_unit_test_setup(test_credentials_list_prints_hostile_keys_printable, setup),
        cmocka_unit_test_setup(test_tokens_never_logged, setup),
    };
    int rc;
    log_set_level(LOG_WARN);
    h_start();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    h_stop();
    return rc;
}
