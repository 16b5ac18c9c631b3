/* test_redis.c - component test of the hiredis wrapper against a private redis-server.
 *
 * Like hiredis's own test.sh, the test starts its own server (testutil_redis: an
 * ephemeral 127.0.0.1 port plus a unix socket in a private directory, no persistence,
 * DEBUG enabled) and kills it at the end. Tests that need a different
 * server (a password) start another one. The restart test kills and restarts the
 * shared server on the same port.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/redis.h"
#include "tests/unit/testutil_redis.h"

static struct testutil_redis g_auth; /* g_auth: the password server of one test */

static void rs_init(struct testutil_redis *s, const char *password)
{
    char err[256] = "";

    if (testutil_redis_start(s, password, err, sizeof(err)) < 0)
        fail_msg("redis-server: %s", err);
}

static void rs_restart(struct testutil_redis *s)
{
    char err[256] = "";

    if (testutil_redis_restart(s, err, sizeof(err)) < 0)
        fail_msg("redis-server: %s", err);
}

static struct redis_conn *conn_with(int cmd_timeout_ms)
{
    char err[256] = "";
    struct redis_conn *c = testutil_redis_conn(&testutil_server, cmd_timeout_ms, err, sizeof(err));

    if (!c)
        fail_msg("redis_conn_new: %s", err);
    return c;
}

static struct redis_conn *conn(void)
{
    return conn_with(0);
}

static int group_teardown(void **state)
{
    (void)state;
    testutil_redis_group_teardown(state);
    testutil_redis_stop(&g_auth); /* a failed test left it running; else a no-op */
    return 0;
}

static int flush(void **state)
{
    struct redis_conn *c = conn();
    char err[256];
    redisReply *r = redis_command(c, err, sizeof(err), "FLUSHALL");

    (void)state;
    assert_non_null(r);
    freeReplyObject(r);
    redis_conn_free(c);
    return 0;
}

static void test_command_round_trip(void **state)
{
    struct redis_conn *c = conn();
    const char *argv[] = {"HSET", "h", "f", "v"};
    const char bin[] = {'a', '\0', 'b'};
    char err[256] = "";
    redisReply *r;

    (void)state;
    r = redis_command(c, err, sizeof(err), "SET %s %b", "k", bin, sizeof(bin));
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    r = redis_command(c, err, sizeof(err), "GET k");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_int_equal(r->len, 3);
    assert_memory_equal(r->str, bin, 3);
    freeReplyObject(r);

    r = redis_command_argv(c, 4, argv, NULL, err, sizeof(err));
    assert_non_null(r);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);

    /* An error reply is an error for the caller; the connection stays usable. */
    r = redis_command(c, err, sizeof(err), "INCR h");
    assert_null(r);
    assert_non_null(strstr(err, "WRONGTYPE"));
    r = redis_command(c, err, sizeof(err), "INCR n");
    assert_non_null(r);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    assert_string_equal(redis_conn_prefix(c), "hsqb:");
    redis_conn_free(c);
}

/* The worker needs Redis 7.0 (the claim's SET NX GET): INFO's redis_version read, the
 * test server (Debian 12's 7.0) passes, older versions are named and refused. */
static void test_version(void **state)
{
    struct redis_conn *c = conn();
    char err[256] = "";
    int major = -1, minor = -1;

    (void)state;
    assert_int_equal(redis_version_parse("# Server\r\nredis_version:6.2.14\r\n", &major, &minor),
                     0);
    assert_int_equal(major, 6);
    assert_int_equal(minor, 2);
    assert_int_equal(redis_version_parse("redis_version:7.0.15\r\n", &major, &minor), 0);
    assert_int_equal(major, 7);
    /* a longer field ending in the name is not it */
    assert_int_equal(redis_version_parse("x_redis_version:9.9\r\n", &major, &minor), -1);
    assert_int_equal(redis_version_parse("# Server\r\nredis_mode:standalone\r\n", &major,
                                         &minor),
                     -1);
    assert_int_equal(redis_version_parse("redis_version:garbage\r\n", &major, &minor), -1);
    /* no minor, a sign, or a number too long for an int is not a version */
    assert_int_equal(redis_version_parse("redis_version:7\r\n", &major, &minor), -1);
    assert_int_equal(redis_version_parse("redis_version:7.\r\n", &major, &minor), -1);
    assert_int_equal(redis_version_parse("redis_version:-1.2\r\n", &major, &minor), -1);
    assert_int_equal(redis_version_parse("redis_version:99999999999.0\r\n", &major, &minor), -1);
    assert_int_equal(redis_version_parse("redis_version:8.99999999999\r\n", &major, &minor), -1);
    assert_int_equal(redis_version_parse("redis_version:123456789.1-rc\r\n", &major, &minor),
                     0);
    assert_int_equal(major, 123456789);

    assert_int_equal(redis_server_version(c, &major, &minor, err, sizeof err), 0);
    assert_true(major >= REDIS_MIN_MAJOR);
    assert_int_equal(redis_version_ok(c, err, sizeof err), 1);
    redis_conn_free(c);
}

static void test_locks(void **state)
{
    struct redis_conn *a = conn(), *b = conn();
    struct redis_lease la, lb;
    char err[256] = "";

    (void)state;
    assert_int_equal(
        redis_lock_prepare(a, &la, "9130", "customer:ann@example.com", err, sizeof(err)), 0);
    assert_int_equal(
        redis_lock_prepare(b, &lb, "9130", "customer:ann@example.com", err, sizeof(err)), 0);
    assert_string_equal(la.key, "hsqb:lock:{9130}:customer:ann@example.com");
    assert_int_equal(redis_lock(a, &la, 5000, err, sizeof(err)), REDIS_LOCKED);
    assert_true(testutil_redis_pttl(a, la.key) > 4000);
    assert_int_equal(redis_lock(a, &la, 9000, err, sizeof(err)), REDIS_LOCKED); /* retaken */
    assert_true(testutil_redis_pttl(a, la.key) > 8000);
    assert_int_equal(redis_lock(b, &lb, 5000, err, sizeof(err)), REDIS_LOCK_BUSY);
    assert_int_equal(redis_lease_release(b, &lb, err, sizeof(err)), REDIS_OWNER_LOST);
    assert_string_equal(testutil_redis_get(a, la.key), la.token);
    assert_int_equal(redis_lease_renew(a, &la, 9000, err, sizeof(err)), REDIS_OWNER_OK);
    assert_int_equal(redis_lease_release(a, &la, err, sizeof(err)), REDIS_OWNER_OK);
    assert_int_equal(redis_lock(b, &lb, 5000, err, sizeof(err)), REDIS_LOCKED);
    assert_int_equal(redis_lock_prepare(a, &la, "9130", "", err, sizeof(err)), -1);
    assert_int_equal(redis_lock_prepare(a, &la, "", "x", err, sizeof(err)), -1);
    /* a tag is the whole tag, whatever it holds; plain tags are left as they are */
    assert_int_equal(redis_lock_prepare(a, &la, "a}b{%", "x", err, sizeof(err)), 0);
    assert_string_equal(la.key, "hsqb:lock:{a%7Db%7B%25}:x");
    {
        char t[8];
        assert_int_equal(redis_tag_escape(t, sizeof t, "ab}"), 5);
        assert_string_equal(t, "ab%7D");
        assert_int_equal(redis_tag_escape(t, 5, "ab}"), 5); /* no half escape */
        assert_string_equal(t, "ab");
        assert_int_equal(redis_tag_escape(NULL, 0, "{}"), 6);
    }
    /* any key the caller names: the prefix is added, tokens are fresh */
    assert_int_equal(redis_lease_prepare(a, &la, "x:{1}", err, sizeof(err)), 0);
    assert_string_equal(la.key, "hsqb:x:{1}");
    assert_int_equal(redis_lease_prepare(a, &lb, "x:{1}", err, sizeof(err)), 0);
    assert_string_not_equal(la.token, lb.token);
    assert_int_equal(redis_lease_prepare(a, &la, "", err, sizeof(err)), -1);
    {
        char longkey[REDIS_MAX_KEY + 8];
        memset(longkey, 'k', sizeof longkey - 1);
        longkey[sizeof longkey - 1] = '\0';
        assert_int_equal(redis_lease_prepare(a, &la, longkey, err, sizeof(err)), -1);
    }
    redis_conn_free(a);
    redis_conn_free(b);
}

static void test_evalsha_noscript_fallback(void **state)
{
    struct redis_conn *c = conn();
    struct redis_script s;
    struct redis_lease l;
    const char *keys[] = {"k1"}, *args[] = {"v1"};
    char err[256] = "";
    redisReply *r;

    (void)state;
    assert_int_equal(redis_script_init(&s, "return ARGV[1] .. ':' .. KEYS[1]", err, sizeof(err)),
                     0);
    assert_int_equal(strlen(s.sha), 40);
    r = redis_eval(c, &s, 1, keys, 1, args, NULL, err, sizeof(err));
    assert_non_null(r);
    assert_string_equal(r->str, "v1:k1");
    freeReplyObject(r);
    /* The locally computed digest is the server's. */
    r = redis_command(c, err, sizeof(err), "SCRIPT EXISTS %s", s.sha);
    assert_non_null(r);
    assert_int_equal(r->element[0]->integer, 1);
    freeReplyObject(r);

    r = redis_command(c, err, sizeof(err), "SCRIPT FLUSH");
    assert_non_null(r);
    freeReplyObject(r);
    r = redis_eval(c, &s, 1, keys, 1, args, NULL, err, sizeof(err));
    assert_non_null(r);
    assert_string_equal(r->str, "v1:k1");
    freeReplyObject(r);

    /* The built-in scripts recover the same way. */
    r = redis_command(c, err, sizeof(err), "SCRIPT FLUSH");
    freeReplyObject(r);
    assert_int_equal(redis_lock_prepare(c, &l, "cb-s", "x", err, sizeof(err)), 0);
    assert_int_equal(redis_lock(c, &l, 1000, err, sizeof(err)), REDIS_LOCKED);

    /* A script error is an error, not a reply. */
    assert_int_equal(redis_script_init(&s, "return redis.call('NOPE')", err, sizeof(err)), 0);
    assert_null(redis_eval(c, &s, 0, NULL, 0, NULL, NULL, err, sizeof(err)));
    assert_true(strlen(err) > 0);
    redis_conn_free(c);
}

/* Deferred script calls (rate-limit releases): they ride on the next command, in order,
 * without disturbing its reply; a failing one is only logged; a flush sends them; the
 * queue is bounded; a dropped connection loses them and says so. */
static void test_deferred_eval(void **state)
{
    struct redis_conn *c = conn(), *other = conn();
    struct redis_script inc, bad;
    const char *keys[] = {"dfr:n"};
    char err[256] = "";
    redisReply *r;

    (void)state;
    assert_int_equal(redis_script_init(&inc, "return redis.call('INCR', KEYS[1])", err, sizeof err),
                     0);
    assert_int_equal(redis_script_init(&bad, "return redis.call('NOPE')", err, sizeof err), 0);
    assert_int_equal(redis_eval_deferred(c, &inc, 1, keys, 0, NULL, err, sizeof err), 0);
    assert_int_equal(redis_eval_deferred(c, &bad, 0, NULL, 0, NULL, err, sizeof err), 0);
    assert_int_equal(redis_eval_deferred(c, &inc, 1, keys, 0, NULL, err, sizeof err), 0);
    assert_int_equal(redis_pending(c), 3);
    /* nothing has left the process yet */
    r = redis_command(other, err, sizeof err, "GET dfr:n");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    /* the next command carries them; its own reply is its own */
    r = redis_command(c, err, sizeof err, "GET dfr:n");
    assert_non_null(r);
    assert_string_equal(r->str, "2");
    freeReplyObject(r);
    assert_int_equal(redis_pending(c), 0);

    /* a flush sends them without another command; an empty flush is a no-op */
    assert_int_equal(redis_eval_deferred(c, &inc, 1, keys, 0, NULL, err, sizeof err), 0);
    assert_int_equal(redis_flush(c, err, sizeof err), 0);
    assert_int_equal(redis_flush(c, err, sizeof err), 0);
    assert_int_equal(redis_flush(NULL, err, sizeof err), 0);
    r = redis_command(other, err, sizeof err, "GET dfr:n");
    assert_string_equal(r->str, "3");
    freeReplyObject(r);

    /* bounded: the one past the bound flushes the others first */
    for (int i = 0; i < REDIS_MAX_DEFERRED + 5; i++)
        assert_int_equal(redis_eval_deferred(c, &inc, 1, keys, 0, NULL, err, sizeof err), 0);
    assert_true(redis_pending(c) <= REDIS_MAX_DEFERRED);
    /* closing the connection sends what is left */
    redis_conn_free(c);
    r = redis_command(other, err, sizeof err, "GET dfr:n");
    assert_int_equal(atoi(r->str), 3 + REDIS_MAX_DEFERRED + 5);
    freeReplyObject(r);

    /* the server goes away with commands queued: the flush fails and forgets them */
    c = conn();
    assert_int_equal(redis_eval_deferred(c, &inc, 1, keys, 0, NULL, err, sizeof err), 0);
    testutil_redis_kill(&testutil_server);
    assert_int_equal(redis_flush(c, err, sizeof err), -1);
    assert_true(strlen(err) > 0);
    assert_int_equal(redis_pending(c), 0);
    redis_conn_free(c);
    redis_conn_free(other);
    rs_restart(&testutil_server);
}

static void test_reconnect_after_restart(void **state)
{
    struct redis_opts o;
    struct redis_conn *c;
    struct redis_lease l;
    char err[256] = "";
    redisReply *r;
    int64_t t0;

    (void)state;
    redis_opts_default(&o);
    o.port = testutil_server.port;
    o.reconnect_backoff_ms = 200;
    c = redis_conn_new(&o, err, sizeof(err));
    assert_non_null(c);
    r = redis_command(c, err, sizeof(err), "PING");
    assert_non_null(r);
    freeReplyObject(r);

    /* Restarted behind our back: the first command may fail, the next one works. */
    rs_restart(&testutil_server);
    r = redis_command(c, err, sizeof(err), "PING");
    if (r)
        freeReplyObject(r);
    else
        assert_true(strlen(err) > 0);
    r = redis_command(c, err, sizeof(err), "PING");
    assert_non_null(r);
    assert_string_equal(r->str, "PONG");
    freeReplyObject(r);

    /* Down for a while: the connect failure is reported, then calls fail fast until the
     * backoff has passed, and the connection comes back with the server. */
    testutil_redis_kill(&testutil_server);
    r = redis_command(c, err, sizeof(err), "PING"); /* the dead connection */
    if (r)
        freeReplyObject(r);
    assert_null(redis_command(c, err, sizeof(err), "PING"));
    assert_non_null(strstr(err, "connect"));
    t0 = clock_mono_ms();
    assert_null(redis_command(c, err, sizeof(err), "PING"));
    assert_non_null(strstr(err, "backoff"));
    assert_true(clock_mono_ms() - t0 < 50);
    rs_restart(&testutil_server);
    clock_sleep_ms(220);
    /* The fresh server has no scripts: the lock goes through the NOSCRIPT path. */
    assert_int_equal(redis_lock_prepare(c, &l, "cb-rc", "x", err, sizeof(err)), 0);
    assert_int_equal(redis_lock(c, &l, 1000, err, sizeof(err)), REDIS_LOCKED);
    redis_conn_free(c);
}

static void test_command_timeout(void **state)
{
    struct redis_conn *c = conn_with(100);
    char err[256] = "";
    redisReply *r;
    int64_t t0 = clock_mono_ms(), dt;

    (void)state;
    r = redis_command(c, err, sizeof(err), "DEBUG SLEEP 0.4");
    dt = clock_mono_ms() - t0;
    assert_null(r);
    assert_non_null(strstr(err, "timeout"));
    assert_true(dt >= 80 && dt < 350);
    clock_sleep_ms(400); /* the server is single-threaded: let the sleep finish */
    r = redis_command(c, err, sizeof(err), "PING");
    assert_non_null(r);
    assert_string_equal(r->str, "PONG");
    freeReplyObject(r);
    redis_conn_free(c);
}

static void test_auth_and_db(void **state)
{
    struct testutil_redis *s = &g_auth;
    struct redis_opts o;
    struct redis_conn *c, *c0;
    char err[256] = "";
    redisReply *r;

    (void)state;
    rs_init(s, "pw-Secret-42");
    redis_opts_default(&o);
    o.port = s->port;

    /* No password: connects, but commands are refused. */
    c = redis_conn_new(&o, err, sizeof(err));
    assert_non_null(c);
    assert_null(redis_command(c, err, sizeof(err), "PING"));
    assert_non_null(strstr(err, "NOAUTH"));
    redis_conn_free(c);

    /* Wrong password: refused at start-up, and the password is not echoed. */
    o.password = "wrong-Guess-7";
    assert_null(redis_conn_new(&o, err, sizeof(err)));
    assert_non_null(strstr(err, "AUTH"));
    assert_null(strstr(err, "wrong-Guess-7"));

    o.password = "pw-Secret-42";
    o.db = 3;
    c = redis_conn_new(&o, err, sizeof(err));
    assert_non_null(c);
    r = redis_command(c, err, sizeof(err), "SET only-in-3 x");
    assert_non_null(r);
    freeReplyObject(r);
    o.db = 0;
    c0 = redis_conn_new(&o, err, sizeof(err));
    assert_non_null(c0);
    assert_string_equal(testutil_redis_get(c0, "only-in-3"), "(nil)");
    assert_string_equal(testutil_redis_get(c, "only-in-3"), "x");
    redis_conn_free(c0);
    redis_conn_free(c);
    testutil_redis_stop(s);
}

static void test_unix_socket_and_bad_options(void **state)
{
    struct redis_opts o;
    struct redis_conn *c;
    char err[256] = "";
    redisReply *r;

    (void)state;
    redis_opts_default(&o);
    o.unix_path = testutil_server.sock;
    o.prefix = "t1:";
    c = redis_conn_new(&o, err, sizeof(err));
    assert_non_null(c);
    r = redis_command(c, err, sizeof(err), "PING");
    assert_non_null(r);
    freeReplyObject(r);
    assert_string_equal(redis_conn_prefix(c), "t1:");
    redis_conn_free(c);

    o.prefix = "bad{";
    assert_null(redis_conn_new(&o, err, sizeof(err)));
    redis_opts_default(&o);
    o.port = testutil_free_port(); /* nothing listens there */
    assert_true(o.port > 0);
    assert_null(redis_conn_new(&o, err, sizeof(err)));
    assert_non_null(strstr(err, "connect"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_command_round_trip, flush),
        cmocka_unit_test_setup(test_locks, flush),
        cmocka_unit_test(test_version),
        cmocka_unit_test_setup(test_evalsha_noscript_fallback, flush),
        cmocka_unit_test_setup(test_deferred_eval, flush),
        cmocka_unit_test_setup(test_reconnect_after_restart, flush),
        cmocka_unit_test_setup(test_command_timeout, flush),
        cmocka_unit_test(test_auth_and_db),
        cmocka_unit_test_setup(test_unix_socket_and_bad_options, flush),
    };
    return cmocka_run_group_tests(tests, testutil_redis_group_setup, group_teardown);
}
