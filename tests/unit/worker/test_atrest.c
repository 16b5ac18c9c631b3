/* test_atrest.c - tokens encrypted at rest (worker/atrest.c through worker/oauth.c,
 * worker/hubspot_oauth.c and `credentials reencrypt`) against a private redis-server and
 * hsqb-sandbox.
 *
 * What an operator would notice: with redis.encryption_keys set, Redis (read here with
 * raw commands on a connection without keys) holds no token; the worker still refreshes
 * with them; tokens an older version stored in plain text are re-written encrypted when
 * read; after a rotation both keys open and `credentials reencrypt` moves everything to
 * the new key, after which the old key can go; a value copied to another realm's or
 * portal's key is refused with a clear error; redis.require_encryption refuses plain
 * text; redis.unix_socket reaches Redis without TCP.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/clock.h"
#include "common/config.h"
#include "worker/cmd_credentials.h"
#include "worker/hubspot_oauth.h"
#include "worker/oauth.h"

#include "tests/unit/worker/sandbox_harness.h"

#define K1     "k1 QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
#define K2     "k2 QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="
#define PORTAL 102670506
#define HS_TOK "pat-na1-11111111-1111-4111-8111-111111111111"

/* A connection built from the settings, as `run` builds one, with key ring keys ("" none)
 * and extra flags (NULL-terminated, may be NULL). */
static struct redis_conn *conn_with(const char *keys, int required, const char *extra)
{
    char env[512], req[64], e[256];
    const char *x[4] = {NULL};
    int n = 0;
    struct redis_opts ro;
    struct config *cfg;
    struct redis_conn *c;

    snprintf(env, sizeof env, "HSQB_REDIS_ENCRYPTION_KEYS=%s", keys);
    snprintf(req, sizeof req, "--redis.require_encryption=%s", required ? "true" : "false");
    if (*keys)
        x[n++] = env;
    x[n++] = req;
    if (extra)
        x[n++] = extra;
    cfg = h_config(x);
    settings_redis_opts(cfg, &ro);
    c = redis_conn_new(&ro, e, sizeof e);
    config_free(cfg);
    if (!c)
        fail_msg("redis_conn_new: %s", e);
    return c;
}

static struct oauth *new_oauth(void)
{
    char e[256];
    struct config *cfg = h_config(NULL);
    struct oauth *o = oauth_new(cfg, e, sizeof e);

    config_free(cfg);
    assert_non_null(o);
    return o;
}

/* A raw string reply as Redis holds it (malloc'd, or NULL). */
static char *raw(const char *fmt, const char *key, const char *field)
{
    char e[256], *v = NULL;
    redisReply *r = field ? redis_command(H.redis, e, sizeof e, fmt, key, field)
                          : redis_command(H.redis, e, sizeof e, fmt, key);

    assert_non_null(r);
    if (r->type == REDIS_REPLY_STRING)
        v = strdup(r->str);
    freeReplyObject(r);
    return v;
}

static char *oauth_raw(const char *realm, const char *field)
{
    char key[128];

    snprintf(key, sizeof key, "hsqb:oauth:{%s}", realm);
    return raw("HGET %s %s", key, field);
}

static char *hstoken_raw(int64_t portal)
{
    char key[128];

    snprintf(key, sizeof key, "hsqb:hstoken:{%lld}", (long long)portal);
    return raw("GET %s", key, NULL);
}

static void assert_sealed_with(char *v, const char *keyid, const char *not_this)
{
    char prefix[16];

    assert_non_null(v);
    snprintf(prefix, sizeof prefix, "v1:%s:", keyid);
    assert_memory_equal(v, prefix, strlen(prefix));
    if (not_this)
        assert_null(strstr(v, not_this));
    free(v);
}

static int run_cred(const char *keys, char *out, size_t outsz, const char *const *args)
{
    char *argv[16], port[32], env[512], errbuf[2048];
    int n = 0, rc;
    FILE *in = fmemopen((void *)"", 1, "r"), *o = fmemopen(out, outsz, "w"),
         *e = fmemopen(errbuf, sizeof errbuf, "w");

    snprintf(port, sizeof port, "--redis.port=%d", H.redis_port);
    snprintf(env, sizeof env, "HSQB_REDIS_ENCRYPTION_KEYS=%s", keys);
    argv[n++] = (char *)"credentials";
    for (; *args; args++)
        argv[n++] = (char *)*args;
    argv[n++] = port;
    argv[n] = NULL;
    memset(out, 0, outsz);
    rc = cmd_credentials_run(n, argv, (char *[]){env, NULL}, in, o, e);
    fclose(in);
    fclose(o);
    fclose(e);
    return rc;
}

static int setup(void **state)
{
    (void)state;
    h_reset();
    return 0;
}

/* What most tests use: a connection with the key ring k1, the QBO token client and an
 * HTTP client; fx_close() frees them. */
struct fx {
    struct redis_conn *c;
    struct oauth *o;
    struct http_client *http;
};

static struct fx fx_open(void)
{
    return (struct fx){conn_with(K1, 0, NULL), new_oauth(), h_http_new()};
}

static void fx_close(struct fx *f)
{
    oauth_free(f->o);
    http_client_free(f->http);
    redis_conn_free(f->c);
}

/* ---- tests --------------------------------------------------------------------------- */

/* Sealed in Redis, and the worker still refreshes, rotates and invalidates with them. */
static void test_sealed_and_used(void **state)
{
    struct fx f = fx_open();
    struct redis_conn *c = f.c;
    struct oauth *o = f.o;
    struct http_client *http = f.http;
    struct api_error err;
    char t1[OAUTH_TOKEN_MAX], t2[OAUTH_TOKEN_MAX], rt[OAUTH_REFRESH_TOKEN_MAX], e[256];
    char *v;
    (void)state;

    assert_int_equal(oauth_store_refresh_token(c, H_REALM_US1, H_RT_US1, 0, e, sizeof e), 0);
    assert_sealed_with(oauth_raw(H_REALM_US1, "refresh_token"), "k1", H_RT_US1);
    assert_int_equal(oauth_get_access(H_IO(http, c), o, H_REALM_US1, t1, sizeof t1, &err), 0);
    assert_true(strlen(t1) > 100);
    assert_int_equal(h_count("vendor=oauth", NULL), 1);
    v = oauth_raw(H_REALM_US1, "access_token");
    assert_non_null(strstr(v, "v1:k1:") == v ? v : NULL);
    assert_null(strstr(v, t1));
    assert_null(strstr(v, t1 + 20)); /* no part of it either */
    free(v);
    /* the rotated refresh token was stored by the compare-and-set, sealed */
    assert_int_equal(oauth_refresh_token_get(c, H_REALM_US1, rt, sizeof rt, e, sizeof e), 1);
    assert_true(strlen(rt) > 10);
    assert_sealed_with(oauth_raw(H_REALM_US1, "refresh_token"), "k1", rt);
    /* a 401 drops exactly that token (compare-and-set on the sealed text) */
    assert_int_equal(oauth_invalidate(H_IO(http, c), o, H_REALM_US1, "not-the-token", &err), 0);
    v = oauth_raw(H_REALM_US1, "access_token");
    assert_true(strlen(v) > 0);
    free(v);
    assert_int_equal(oauth_invalidate(H_IO(http, c), o, H_REALM_US1, t1, &err), 0);
    v = oauth_raw(H_REALM_US1, "access_token");
    assert_string_equal(v, "");
    free(v);
    assert_int_equal(oauth_get_access(H_IO(http, c), o, H_REALM_US1, t2, sizeof t2, &err), 0);
    assert_string_not_equal(t1, t2);
    assert_int_equal(h_count("vendor=oauth", NULL), 2);

    /* HubSpot: an install's token and refresh token, both sealed */
    char out[2048];
    struct hubspot_install in = {"install-access-token-0001", clock_wall_ms() + 60000,
                                 "install-refresh-token-0001", "oauth", NULL};
    struct hubspot_portal_token pt;
    struct hubspot_token_reply *fresh = calloc(1, sizeof *fresh);
    assert_int_equal(hubspot_oauth_store(c, PORTAL, &in, e, sizeof e), 0);
    assert_sealed_with(hstoken_raw(PORTAL), "k1", "install-access-token");
    assert_sealed_with(raw("HGET %s %s", "hsqb:hsoauth:{102670506}", "refresh_token"), "k1",
                       "install-refresh");
    assert_int_equal(hubspot_oauth_token_get(c, PORTAL, &pt, e, sizeof e), 0);
    assert_string_equal(pt.token, "install-access-token-0001");
    assert_int_equal(hubspot_oauth_refresh_token_get(c, PORTAL, out, sizeof out, e, sizeof e), 1);
    assert_string_equal(out, "install-refresh-token-0001");
    /* the refresh's compare-and-set: a stale read loses, a fresh one stores */
    snprintf(fresh->access, sizeof fresh->access, "refreshed-access-token-2");
    snprintf(fresh->refresh, sizeof fresh->refresh, "install-refresh-token-0001");
    assert_int_equal(hubspot_oauth_refreshed(c, PORTAL, &pt, "another-refresh-token", fresh,
                                             clock_wall_ms() + 1800000, e, sizeof e),
                     0);
    assert_int_equal(hubspot_oauth_refreshed(c, PORTAL, &pt, "install-refresh-token-0001", fresh,
                                             clock_wall_ms() + 1800000, e, sizeof e),
                     1);
    assert_int_equal(hubspot_oauth_refreshed(c, PORTAL, &pt, "install-refresh-token-0001", fresh,
                                             clock_wall_ms() + 1800000, e, sizeof e),
                     0); /* pt holds the token replaced a moment ago */
    assert_int_equal(hubspot_oauth_token_get(c, PORTAL, &pt, e, sizeof e), 0);
    assert_string_equal(pt.token, "refreshed-access-token-2");
    assert_sealed_with(hstoken_raw(PORTAL), "k1", "refreshed-access");
    free(fresh);
    fx_close(&f);
}

/* Values an older version stored in plain text keep working and are re-written sealed
 * the first time they are read; a string key keeps its TTL. */
static void test_plaintext_migrated_on_read(void **state)
{
    struct fx f = fx_open();
    struct redis_conn *c = f.c;
    struct oauth *o = f.o;
    struct http_client *http = f.http;
    struct hubspot_portal_token pt;
    struct api_error err;
    char t[OAUTH_TOKEN_MAX], e[256], *v;
    redisReply *r;
    (void)state;

    /* H.redis has no key ring: it stores as the old version did */
    assert_int_equal(oauth_store_refresh_token(H.redis, H_REALM_US1, H_RT_US1, 0, e, sizeof e), 0);
    v = oauth_raw(H_REALM_US1, "refresh_token");
    assert_string_equal(v, H_RT_US1);
    free(v);
    assert_int_equal(oauth_get_access(H_IO(http, c), o, H_REALM_US1, t, sizeof t, &err), 0);
    assert_sealed_with(oauth_raw(H_REALM_US1, "refresh_token"), "k1", "RT1-");
    assert_sealed_with(oauth_raw(H_REALM_US1, "access_token"), "k1", t);
    assert_int_equal(h_count("vendor=oauth", NULL), 1);

    /* an access token stored in plain text (and still valid) is used and re-written */
    assert_non_null(r = redis_command(H.redis, e, sizeof e,
                                      "HSET hsqb:oauth:{%s} access_token %s access_expires_at_ms "
                                      "%lld updated_at %lld",
                                      H_REALM_US2, "plain-access-token", (long long)(clock_wall_ms() + 3600000),
                                      (long long)clock_wall_ms()));
    freeReplyObject(r);
    assert_int_equal(oauth_get_access(H_IO(http, c), o, H_REALM_US2, t, sizeof t, &err), 0);
    assert_string_equal(t, "plain-access-token");
    assert_sealed_with(oauth_raw(H_REALM_US2, "access_token"), "k1", "plain-access");

    /* HubSpot: hstoken in plain text with a TTL */
    assert_non_null(r = redis_command(H.redis, e, sizeof e, "SET hsqb:hstoken:{%d} %s PX 600000",
                                      PORTAL, HS_TOK));
    freeReplyObject(r);
    assert_int_equal(hubspot_oauth_token_get(c, PORTAL, &pt, e, sizeof e), 0);
    assert_string_equal(pt.token, HS_TOK);
    assert_sealed_with(hstoken_raw(PORTAL), "k1", "pat-na1");
    assert_non_null(r = redis_command(H.redis, e, sizeof e, "PTTL hsqb:hstoken:{%d}", PORTAL));
    assert_true(r->integer > 500000);
    freeReplyObject(r);
    assert_int_equal(hubspot_oauth_token_get(c, PORTAL, &pt, e, sizeof e), 0);
    assert_string_equal(pt.token, HS_TOK);

    /* require_encryption refuses plain text instead, with a pointer to reencrypt */
    struct redis_conn *strict = conn_with(K1, 1, NULL);
    assert_non_null(r = redis_command(H.redis, e, sizeof e, "SET hsqb:hstoken:{%d} %s", PORTAL,
                                      HS_TOK));
    freeReplyObject(r);
    assert_int_equal(hubspot_oauth_token_get(strict, PORTAL, &pt, e, sizeof e), 1);
    assert_non_null(strstr(e, "reencrypt"));
    v = hstoken_raw(PORTAL);
    assert_string_equal(v, HS_TOK); /* left as it was */
    free(v);
    redis_conn_free(strict);
    fx_close(&f);
}

/* Rotation: new key first → new writes use it, old values still open; reencrypt moves
 * everything to it; then the old key can be removed. */
static void test_rotation(void **state)
{
    struct redis_conn *c1 = conn_with(K1, 0, NULL), *c21 = conn_with(K2 "\n" K1, 0, NULL), *c2;
    struct oauth *o = new_oauth();
    struct http_client *http = h_http_new();
    struct hubspot_portal_token pt;
    struct api_error err;
    char t[OAUTH_TOKEN_MAX], rt[OAUTH_REFRESH_TOKEN_MAX], e[256], out[4096], *v;
    redisReply *r;
    (void)state;

    assert_int_equal(oauth_store_refresh_token(c1, H_REALM_US1, H_RT_US1, 0, e, sizeof e), 0);
    struct hubspot_install in = {"install-access-token-0001", clock_wall_ms() + 600000,
                                 "install-refresh-token-0001", "oauth", NULL};
    assert_int_equal(hubspot_oauth_store(c1, PORTAL, &in, e, sizeof e), 0);
    assert_non_null(r = redis_command(H.redis, e, sizeof e, "SET hsqb:hstoken:{7} plain-token"));
    freeReplyObject(r);
    /* the rotated ring opens k1's values and writes with k2 */
    assert_int_equal(oauth_refresh_token_get(c21, H_REALM_US1, rt, sizeof rt, e, sizeof e), 1);
    assert_string_equal(rt, H_RT_US1);
    assert_int_equal(oauth_store_refresh_token(c21, H_REALM_US2, H_RT_US2, 0, e, sizeof e), 0);
    assert_sealed_with(oauth_raw(H_REALM_US2, "refresh_token"), "k2", NULL);
    /* a replica still on k1 alone cannot open k2's: a configuration error, said so */
    assert_int_equal(oauth_get_access(H_IO(http, c1), o, H_REALM_US2, t, sizeof t, &err), -1);
    assert_true(api_error_retryable(&err));
    assert_non_null(strstr(err.message, "k2"));
    assert_int_equal(h_count("vendor=oauth", NULL), 0);

    /* reencrypt: everything under k2, plain text included */
    const char *re[] = {"reencrypt", NULL};
    assert_int_equal(run_cred(K2 "\n" K1, out, sizeof out, re), 0);
    assert_non_null(strstr(out, "under key k2"));
    assert_non_null(strstr(out, "0 failed"));
    assert_sealed_with(oauth_raw(H_REALM_US1, "refresh_token"), "k2", NULL);
    assert_sealed_with(hstoken_raw(PORTAL), "k2", NULL);
    assert_sealed_with(hstoken_raw(7), "k2", "plain-token");
    assert_sealed_with(raw("HGET %s %s", "hsqb:hsoauth:{102670506}", "refresh_token"), "k2",
                       NULL);
    v = oauth_raw(H_REALM_US1, "access_token");
    assert_string_equal(v, ""); /* "none" stays "none" */
    free(v);
    assert_int_equal(run_cred(K2 "\n" K1, out, sizeof out, re), 0);
    assert_non_null(strstr(out, "0 tokens re-encrypted"));

    /* k1 removed: everything still opens and works */
    c2 = conn_with(K2, 0, NULL);
    assert_int_equal(oauth_get_access(H_IO(http, c2), o, H_REALM_US1, t, sizeof t, &err), 0);
    assert_int_equal(hubspot_oauth_token_get(c2, PORTAL, &pt, e, sizeof e), 0);
    assert_string_equal(pt.token, "install-access-token-0001");
    assert_int_equal(hubspot_oauth_token_get(c2, 7, &pt, e, sizeof e), 0);
    assert_string_equal(pt.token, "plain-token");
    /* without any key ring, reencrypt refuses */
    assert_int_equal(run_cred("", out, sizeof out, re), 2);
    redis_conn_free(c1);
    redis_conn_free(c21);
    redis_conn_free(c2);
    oauth_free(o);
    http_client_free(http);
}

/* A sealed value copied into another realm's or portal's key does not open there: a
 * clear error, no crash, no call to Intuit. */
static void test_moved_value_refused(void **state)
{
    struct fx f = fx_open();
    struct redis_conn *c = f.c;
    struct oauth *o = f.o;
    struct http_client *http = f.http;
    struct hubspot_portal_token pt;
    struct api_error err;
    char t[OAUTH_TOKEN_MAX], e[256], *v;
    redisReply *r;
    (void)state;

    assert_int_equal(oauth_store_refresh_token(c, H_REALM_US1, H_RT_US1, 0, e, sizeof e), 0);
    v = oauth_raw(H_REALM_US1, "refresh_token");
    assert_non_null(r = redis_command(H.redis, e, sizeof e,
                                      "HSET hsqb:oauth:{%s} refresh_token %s", H_REALM_US2, v));
    freeReplyObject(r);
    /* ... and into the other field of its own hash */
    assert_non_null(r = redis_command(H.redis, e, sizeof e,
                                      "HSET hsqb:oauth:{%s} access_token %s access_expires_at_ms "
                                      "%lld",
                                      H_REALM_US1, v, (long long)(clock_wall_ms() + 3600000)));
    freeReplyObject(r);
    free(v);
    assert_int_equal(oauth_get_access(H_IO(http, c), o, H_REALM_US2, t, sizeof t, &err), -1);
    assert_int_equal(err.code, HSQB_ERR_QBO_REAUTH_REQUIRED);
    assert_non_null(strstr(err.message, "do not open"));
    assert_int_equal(oauth_get_access(H_IO(http, c), o, H_REALM_US1, t, sizeof t, &err), -1);
    assert_int_equal(err.code, HSQB_ERR_QBO_REAUTH_REQUIRED);
    assert_int_equal(h_count("vendor=oauth", NULL), 0);

    struct hubspot_install in = {"install-access-token-0001", clock_wall_ms() + 60000,
                                 "install-refresh-token-0001", "oauth", NULL};
    assert_int_equal(hubspot_oauth_store(c, PORTAL, &in, e, sizeof e), 0);
    v = hstoken_raw(PORTAL);
    assert_non_null(r = redis_command(H.redis, e, sizeof e, "SET hsqb:hstoken:{8} %s", v));
    freeReplyObject(r);
    free(v);
    assert_int_equal(hubspot_oauth_token_get(c, 8, &pt, e, sizeof e), 1);
    assert_non_null(strstr(e, "does not verify"));
    assert_string_equal(pt.token, "");
    fx_close(&f);
}

/* Settings: a bad ring or require without one stops the start, without echoing a key;
 * redis.unix_socket reaches the server through its socket. */
static void test_settings_and_unix_socket(void **state)
{
    char e[512], sock[200];
    struct config *cfg = NULL;
    char *bad[] = {(char *)"HSQB_REDIS_ENCRYPTION_KEYS=k1 QUFBQUFB", NULL};
    char *argv[] = {(char *)"run", (char *)"--redis.db=0", NULL};
    char *req[] = {(char *)"run", (char *)"--redis.db=0", (char *)"--redis.require_encryption=true",
                   NULL};
    char *flag[] = {(char *)"run", (char *)"--redis.db=0", (char *)"--redis.encryption_keys=" K1,
                    NULL};
    redisReply *r;
    (void)state;

    assert_int_equal(settings_load_flags(&cfg, 2, argv, bad, SETTINGS_SKIP_REQUIRED, e, sizeof e), -1);
    assert_non_null(strstr(e, "redis.encryption_keys"));
    assert_null(strstr(e, "QUFB"));
    assert_int_equal(settings_load_flags(&cfg, 3, req, NULL, SETTINGS_SKIP_REQUIRED, e, sizeof e), -1);
    assert_non_null(strstr(e, "redis.require_encryption"));
    assert_int_equal(settings_load_flags(&cfg, 3, flag, NULL, SETTINGS_SKIP_REQUIRED, e, sizeof e), -1); /* ps would show it */
    assert_null(strstr(e, "QUFB"));

    snprintf(sock, sizeof sock, "--redis.unix_socket=%s", H.rs.sock);
    struct redis_conn *c = conn_with(K1, 0, sock);
    r = redis_command(c, e, sizeof e, "CLIENT INFO");
    assert_non_null(r);
    assert_non_null(strstr(r->str, H.rs.sock)); /* laddr: the socket, not 127.0.0.1:port */
    freeReplyObject(r);
    redis_conn_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_sealed_and_used, setup),
        cmocka_unit_test_setup(test_plaintext_migrated_on_read, setup),
        cmocka_unit_test_setup(test_rotation, setup),
        cmocka_unit_test_setup(test_moved_value_refused, setup),
        cmocka_unit_test_setup(test_settings_and_unix_socket, setup),
    };
    int rc;

    h_start();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    h_stop();
    return rc;
}
