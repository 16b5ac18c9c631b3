/* test_ratelimit.c - component test of the shared per-tenant limiter against a private
 * redis-server (tests/unit/testutil_redis.h).
 *
 * "Replicas" are separate struct ratelimit instances (separate local tables) with their
 * own redis_conn, driven from their own threads: what they share is only Redis, as in
 * production. Limits are scaled down (a few requests per few hundred ms) to keep the
 * program fast; the rules are the same.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "tests/unit/testutil_redis.h"
#include "worker/ratelimit.h"
#include "worker/settings.h"

static struct redis_conn *conn(void)
{
    char err[256];
    struct redis_conn *c = testutil_redis_conn(&testutil_server, 0, err, sizeof err);
    if (!c)
        fail_msg("redis: %s", err);
    return c;
}

/* A limiter where QBO allows `limit` per `window` ms, `local` in flight per process and
 * `global` across replicas (lease `lease` ms); HubSpot keeps small defaults. */
static struct ratelimit *limiter(int64_t limit, int64_t window, int local, int global,
                                 int64_t lease)
{
    struct ratelimit_opts o;
    struct ratelimit *rl;
    char err[256];

    ratelimit_opts_default(&o);
    o.kind[RL_QBO] = (struct ratelimit_limits){.limit = limit,
                                               .window_ms = window,
                                               .local_concurrency = local,
                                               .global_concurrency = global,
                                               .lease_ms = lease};
    o.poll_ms = 10;
    rl = ratelimit_new_opts(&o, err, sizeof err);
    if (!rl)
        fail_msg("ratelimit_new_opts: %s", err);
    return rl;
}

static enum ratelimit_status acq(struct ratelimit *rl, struct redis_conn *c, const char *tenant,
                                 int64_t wait_ms, struct ratelimit_slot *slot, int64_t *retry)
{
    char err[256] = "";
    struct ratelimit_req rq = {RL_QBO, tenant, clock_mono_ms() + wait_ms};
    enum ratelimit_status st = ratelimit_acquire(rl, c, &rq, slot, err, sizeof err);

    if (retry)
        *retry = st == RL_TIMEOUT ? slot->retry_after_ms : -1;
    return st;
}

/* ---- rate across replicas ---------------------------------------------------------- */

#define REPLICA_REQS 6
#define RATE_LIMIT   5
#define RATE_WINDOW  400

struct replica {
    struct ratelimit *rl;
    struct redis_conn *c;
    int64_t times[REPLICA_REQS];
    int ok;
};

static void *replica_run(void *opaque)
{
    struct replica *r = opaque;
    for (int i = 0; i < REPLICA_REQS; i++) {
        struct ratelimit_slot slot;
        if (acq(r->rl, r->c, "4620816365014867780", 5000, &slot, NULL) != RL_OK)
            return NULL;
        r->times[i] = clock_mono_ms();
        ratelimit_release(r->rl, r->c, &slot);
    }
    r->ok = 1;
    return NULL;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void test_rate_shared_by_two_replicas(void **state)
{
    struct replica rep[2];
    pthread_t th[2];
    int64_t all[2 * REPLICA_REQS], start = clock_mono_ms();
    (void)state;

    for (int i = 0; i < 2; i++) {
        memset(&rep[i], 0, sizeof rep[i]);
        rep[i].rl = limiter(RATE_LIMIT, RATE_WINDOW, 10, 0, 1000);
        rep[i].c = conn();
        assert_int_equal(pthread_create(&th[i], NULL, replica_run, &rep[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_true(rep[i].ok);
        memcpy(all + i * REPLICA_REQS, rep[i].times, sizeof rep[i].times);
    }
    qsort(all, 2 * REPLICA_REQS, sizeof all[0], cmp64);
    /* No rolling window holds more than RATE_LIMIT admissions (a few ms of scheduling
     * slack between Redis's clock and ours). */
    for (int i = 0; i + RATE_LIMIT < 2 * REPLICA_REQS; i++)
        assert_true(all[i + RATE_LIMIT] - all[i] >= RATE_WINDOW - 15);
    /* 12 requests at 5 per 400 ms: bursts at 0, 400 and 800 ms, and no slower. */
    assert_true(all[2 * REPLICA_REQS - 1] - start >= 2 * RATE_WINDOW - 15);
    assert_true(all[2 * REPLICA_REQS - 1] - start < 3 * RATE_WINDOW);
    for (int i = 0; i < 2; i++) {
        ratelimit_free(rep[i].rl);
        redis_conn_free(rep[i].c);
    }
}

static void test_burst_then_wait_and_timeout(void **state)
{
    struct ratelimit *rl = limiter(RATE_LIMIT, RATE_WINDOW, 10, 0, 1000);
    struct redis_conn *c = conn();
    struct ratelimit_slot slot;
    int64_t start = clock_mono_ms(), retry = 0;
    char err[256];
    redisReply *r;
    (void)state;

    /* A full burst after an idle window goes at once. */
    for (int i = 0; i < RATE_LIMIT; i++) {
        assert_int_equal(acq(rl, c, "r1", 1000, &slot, NULL), RL_OK);
        assert_true(slot.held);
        ratelimit_release(rl, c, &slot);
        assert_false(slot.held);
    }
    assert_true(clock_mono_ms() - start < 100);

    /* The next one does not fit a short deadline: refused at once, told how long. */
    assert_int_equal(acq(rl, c, "r1", 50, &slot, &retry), RL_TIMEOUT);
    assert_false(slot.held);
    /* (a stamp is an upper bound of the completion time: by a round trip at most) */
    assert_true(retry > 50 && retry <= RATE_WINDOW + 5);
    assert_true(clock_mono_ms() - start < 150);

    /* Another tenant is not affected. */
    assert_int_equal(acq(rl, c, "r2", 0, &slot, NULL), RL_OK);
    ratelimit_release(rl, c, &slot);

    /* With time to wait, it waits for the window and reports the wait. */
    assert_int_equal(acq(rl, c, "r1", 2000, &slot, NULL), RL_OK);
    assert_true(slot.waited_ms >= RATE_WINDOW - 150);
    assert_true(clock_mono_ms() - start >= RATE_WINDOW - 15);
    ratelimit_release(rl, c, &slot);

    /* The state lives at the documented key and expires a lease and a window after the
     * last admission. */
    r = redis_command(c, err, sizeof err, "PTTL hsqb:rate:{qbo:r1}");
    assert_non_null(r);
    assert_true(r->integer > 0 && r->integer <= 1000 + RATE_WINDOW);
    freeReplyObject(r);

    ratelimit_free(rl);
    redis_conn_free(c);
}

/* Regression (bench, issue 7): the log entry of a request must count from its completion,
 * not its admission, or the window frees a slot before the upstream's does (the upstream
 * counted the request when it arrived) and every window edge earns a 429. */
static void test_release_restamps_completion(void **state)
{
    struct ratelimit *rl = limiter(2, RATE_WINDOW, 10, 0, 1000);
    struct redis_conn *c = conn();
    struct ratelimit_slot a, b, d;
    int64_t start = clock_mono_ms();
    char err[256];
    redisReply *r;
    (void)state;

    assert_int_equal(acq(rl, c, "rs", 1000, &a, NULL), RL_OK);
    ratelimit_release(rl, c, &a);
    assert_int_equal(acq(rl, c, "rs", 1000, &b, NULL), RL_OK);
    assert_true(clock_mono_ms() - start < RATE_WINDOW / 2);
    clock_sleep_ms(250); /* b "in flight" for 250 ms */
    ratelimit_release(rl, c, &b);
    /* the third fits when a's entry leaves (t0 + window); the fourth only when b's does,
     * a window after b completed, not after it was admitted */
    assert_int_equal(acq(rl, c, "rs", 2000, &d, NULL), RL_OK);
    assert_true(clock_mono_ms() - start >= RATE_WINDOW - 15);
    ratelimit_release(rl, c, &d);
    assert_int_equal(acq(rl, c, "rs", 2000, &d, NULL), RL_OK);
    assert_true(clock_mono_ms() - start >= RATE_WINDOW + 250 - 15);
    ratelimit_release(rl, c, &d);

    /* The key still expires: a lease and a window after the last admission at most. */
    r = redis_command(c, err, sizeof err, "PTTL hsqb:rate:{qbo:rs}");
    assert_non_null(r);
    assert_true(r->integer > 0 && r->integer <= 1000 + RATE_WINDOW);
    freeReplyObject(r);
    ratelimit_free(rl);
    redis_conn_free(c);
}

static void test_penalize_blocks_every_replica(void **state)
{
    struct ratelimit *a = limiter(100, 1000, 10, 0, 1000), *b = limiter(100, 1000, 10, 0, 1000);
    struct redis_conn *ca = conn(), *cb = conn();
    struct ratelimit_slot slot;
    int64_t retry = 0, start;
    char err[256];
    (void)state;

    start = clock_mono_ms();
    assert_int_equal(ratelimit_penalize(a, ca, RL_QBO, "r1", 300, err, sizeof err), 0);
    /* A shorter penalty never shortens the block. */
    assert_int_equal(ratelimit_penalize(a, ca, RL_QBO, "r1", 20, err, sizeof err), 0);

    /* The other replica is blocked too, and told for how long. */
    assert_int_equal(acq(b, cb, "r1", 50, &slot, &retry), RL_TIMEOUT);
    assert_true(retry > 200 && retry <= 300);
    /* Other tenants are not. */
    assert_int_equal(acq(b, cb, "r2", 0, &slot, NULL), RL_OK);
    ratelimit_release(b, cb, &slot);
    /* Waiting long enough gets through after the block. */
    assert_int_equal(acq(b, cb, "r1", 2000, &slot, NULL), RL_OK);
    assert_true(clock_mono_ms() - start >= 290);
    ratelimit_release(b, cb, &slot);

    /* Bad arguments are errors, not silent no-ops. */
    assert_int_equal(ratelimit_penalize(a, ca, RL_QBO, "r1", 0, err, sizeof err), -1);
    assert_int_equal(ratelimit_penalize(a, ca, RL_QBO, "bad{tag}", 10, err, sizeof err), -1);
    assert_int_equal(acq(a, ca, "", 10, &slot, NULL), RL_ERROR);

    ratelimit_free(a);
    ratelimit_free(b);
    redis_conn_free(ca);
    redis_conn_free(cb);
}

struct delayed_release {
    struct ratelimit *rl;
    struct redis_conn *c;
    struct ratelimit_slot *slot;
    long after_ms;
};

static void *release_later(void *opaque)
{
    struct delayed_release *d = opaque;
    clock_sleep_ms(d->after_ms);
    ratelimit_release(d->rl, d->c, d->slot);
    redis_flush(d->c, NULL, 0); /* what the pipeline does before its thread goes idle */
    return NULL;
}

static void test_local_concurrency_cap(void **state)
{
    struct ratelimit *rl = limiter(100, 1000, 2, 0, 1000);
    struct redis_conn *c = conn(), *c2 = conn();
    struct ratelimit_slot s1, s2, s3;
    struct delayed_release d = {rl, c2, &s1, 60};
    pthread_t th;
    int64_t start;
    (void)state;

    assert_int_equal(acq(rl, c, "r1", 100, &s1, NULL), RL_OK);
    assert_int_equal(acq(rl, c, "r1", 100, &s2, NULL), RL_OK);
    /* The third waits for its deadline, then gives up holding nothing. */
    start = clock_mono_ms();
    assert_int_equal(acq(rl, c, "r1", 50, &s3, NULL), RL_TIMEOUT);
    assert_true(clock_mono_ms() - start >= 45);
    assert_false(s3.held);
    /* A release in another thread lets it in. */
    assert_int_equal(pthread_create(&th, NULL, release_later, &d), 0);
    start = clock_mono_ms();
    assert_int_equal(acq(rl, c, "r1", 2000, &s3, NULL), RL_OK);
    assert_true(clock_mono_ms() - start >= 40);
    pthread_join(th, NULL);
    ratelimit_release(rl, c, &s2);
    ratelimit_release(rl, c, &s3);
    ratelimit_release(rl, c, &s3); /* double release is a no-op */
    /* Everything came back: two at once again. */
    assert_int_equal(acq(rl, c, "r1", 0, &s1, NULL), RL_OK);
    assert_int_equal(acq(rl, c, "r1", 0, &s2, NULL), RL_OK);
    ratelimit_release(rl, c, &s1);
    ratelimit_release(rl, c, &s2);

    ratelimit_free(rl);
    redis_conn_free(c);
    redis_conn_free(c2);
}

/* Entries of key whose score is past Redis's clock: requests in flight (or admitted
 * ahead), as the admission script counts them. */
static long long in_flight(struct redis_conn *c, const char *key)
{
    char err[128];
    redisReply *r = redis_command(c, err, sizeof err,
                                  "EVAL %s 1 %s",
                                  "local t = redis.call('TIME') "
                                  "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
                                  "return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')",
                                  key);
    long long n;

    assert_non_null(r);
    n = r->integer;
    freeReplyObject(r);
    return n;
}

static void test_global_concurrency_across_replicas(void **state)
{
    struct ratelimit *a = limiter(100, 1000, 10, 3, 10000), *b = limiter(100, 1000, 10, 3, 300);
    struct redis_conn *ca = conn(), *cb = conn();
    struct ratelimit_slot sa[3], sb[3];
    struct delayed_release d = {a, ca, &sa[0], 60};
    pthread_t th;
    int64_t start;
    (void)state;

    for (int i = 0; i < 3; i++)
        assert_int_equal(acq(a, ca, "r1", 100, &sa[i], NULL), RL_OK);
    /* The Redis side of a release (the stamp) rides on the connection's next command:
     * until then the request still counts as in flight; the local slot is back at once. */
    {
        char err[128];
        ratelimit_release(a, ca, &sa[2]);
        assert_int_equal(redis_pending(ca), 1);
        assert_int_equal(in_flight(cb, "hsqb:rate:{qbo:r1}"), 3);
        assert_int_equal(redis_flush(ca, err, sizeof err), 0);
        assert_int_equal(redis_pending(ca), 0);
        clock_sleep_ms(5); /* a stamp is an upper bound of the completion: by a round trip */
        assert_int_equal(in_flight(cb, "hsqb:rate:{qbo:r1}"), 2);
        assert_int_equal(acq(a, ca, "r1", 100, &sa[2], NULL), RL_OK);
    }
    /* Replica b sees the cap although its own process holds nothing. */
    assert_int_equal(acq(b, cb, "r1", 40, &sb[0], NULL), RL_TIMEOUT);
    /* Released by a, taken by b within a poll interval or two. */
    assert_int_equal(pthread_create(&th, NULL, release_later, &d), 0);
    start = clock_mono_ms();
    assert_int_equal(acq(b, cb, "r1", 2000, &sb[0], NULL), RL_OK);
    assert_true(clock_mono_ms() - start < 200);
    pthread_join(th, NULL);

    /* A replica that dies holding leases (b, lease 300 ms) gives them back by expiry. */
    assert_int_equal(acq(a, ca, "r1", 0, &sa[0], NULL), RL_TIMEOUT);
    start = clock_mono_ms();
    assert_int_equal(acq(a, ca, "r1", 2000, &sa[0], NULL), RL_OK);
    assert_true(clock_mono_ms() - start >= 150);
    /* b "crashed": its local table goes with it, the Redis lease already expired. */
    ratelimit_free(b);
    for (int i = 0; i < 3; i++)
        ratelimit_release(a, ca, &sa[i]);
    ratelimit_free(a);
    redis_conn_free(ca);
    redis_conn_free(cb);
}

struct token_grab {
    struct ratelimit *rl;
    struct ratelimit_slot slot[8];
    char token[8][RATELIMIT_TOKEN_MAX];
};

static void *grab_tokens(void *opaque)
{
    struct token_grab *g = opaque;
    struct redis_conn *c = conn();
    for (int i = 0; i < 8; i++)
        if (acq(g->rl, c, "rt", 0, &g->slot[i], NULL) != RL_OK)
            fail_msg("admission %d refused", i);
    for (int i = 0; i < 8; i++) {
        memcpy(g->token[i], g->slot[i].token, RATELIMIT_TOKEN_MAX);
        ratelimit_release(g->rl, c, &g->slot[i]);
    }
    redis_conn_free(c);
    return NULL;
}

/* Lease tokens come from a per-thread seed and counter (no getrandom per admission): they
 * must still differ between admissions and between threads, and stay 32 hex digits. */
static void test_lease_tokens_unique(void **state)
{
    struct ratelimit *rl = limiter(1000, 1000, 64, 64, 10000);
    struct token_grab g[3] = {{.rl = rl}, {.rl = rl}, {.rl = rl}};
    pthread_t th[3];
    (void)state;

    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&th[i], NULL, grab_tokens, &g[i]), 0);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 24; i++) {
        const char *t = g[i / 8].token[i % 8];
        assert_int_equal(strspn(t, "0123456789abcdef"), 32); /* "<32 hex>:<n>" */
        assert_int_equal(t[32], ':');
        for (int j = 0; j < i; j++)
            assert_string_not_equal(t, g[j / 8].token[j % 8]);
    }
    ratelimit_free(rl);
}

static long long zcard(struct redis_conn *c, const char *key)
{
    char err[128];
    redisReply *r;
    long long n;

    assert_int_equal(redis_flush(c, err, sizeof err), 0);
    r = redis_command(c, err, sizeof err, "ZCARD %s", key);
    assert_non_null(r);
    n = r->integer;
    freeReplyObject(r);
    return n;
}

/* A limiter whose QBO allows `limit` per `window` ms (no global cap), with its sweeper
 * started: admissions then take a few entries at once. */
static struct ratelimit *pooled(int64_t limit, int64_t window, int global)
{
    struct ratelimit *rl = limiter(limit, window, 64, global, 10000);
    struct redis_opts o;
    char err[256];

    redis_opts_default(&o);
    o.port = testutil_server.port;
    if (ratelimit_start(rl, &o, err, sizeof err) < 0)
        fail_msg("ratelimit_start: %s", err);
    return rl;
}

/* Issue 20: with the sweeper, one script admits a sixteenth of the limit and the next
 * requests take those entries without Redis; completions are stamped later, together. */
static void test_pool_admits_a_few_at_once(void **state)
{
    struct ratelimit *rl = pooled(160, 5000, 0); /* 10 at once */
    struct redis_conn *c = conn();
    struct ratelimit_slot s;
    char err[256];
    long long n;
    (void)state;

    assert_int_equal(acq(rl, c, "warm", 1000, &s, NULL), RL_OK); /* the script loaded */
    ratelimit_release(rl, c, &s);
    n = testutil_redis_calls(c);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(acq(rl, c, "pool", 1000, &s, NULL), RL_OK);
        ratelimit_release(rl, c, &s);
    }
    assert_int_equal(redis_flush(c, err, sizeof err), 0);
    /* one script: EVALSHA, TIME, ZSCORE, ZREMRANGEBYSCORE, ZCARD, ZADD, PEXPIRE */
    assert_int_equal(testutil_redis_calls(c) - n - 1, 7);
    assert_int_equal(zcard(c, "hsqb:rate:{qbo:pool}"), 10);
    assert_int_equal(in_flight(c, "hsqb:rate:{qbo:pool}"), 10); /* not stamped yet */
    /* the eleventh admits the next ten, carrying the ten stamps */
    assert_int_equal(acq(rl, c, "pool", 1000, &s, NULL), RL_OK);
    assert_int_equal(zcard(c, "hsqb:rate:{qbo:pool}"), 20);
    assert_int_equal(in_flight(c, "hsqb:rate:{qbo:pool}"), 10);
    ratelimit_release(rl, c, &s);
    /* a sweep of everything stamps the last one and returns the nine unused, here and
     * for "warm": per tenant one ZADD XX LT and one ZREM, no script (issue 20: EVAL,
     * ZADD, ZREM before) */
    n = testutil_redis_calls(c);
    assert_int_equal(ratelimit_sweep(rl, c, 1, err, sizeof err), 0);
    assert_int_equal(testutil_redis_calls(c) - n - 1, 2 * 2);
    assert_int_equal(zcard(c, "hsqb:rate:{qbo:pool}"), 11);
    clock_sleep_ms(5); /* a stamp is an upper bound of the completion: by a round trip */
    assert_int_equal(in_flight(c, "hsqb:rate:{qbo:pool}"), 0);
    ratelimit_free(rl);
    redis_conn_free(c);
}

/* The sweeper thread returns entries unused for RATELIMIT_POOL_TTL_MS and sends stamps
 * a second old, without any request to carry them. */
static void test_sweeper_returns_and_stamps(void **state)
{
    struct ratelimit *rl = pooled(160, 5000, 0);
    struct redis_conn *c = conn();
    struct ratelimit_slot s;
    (void)state;

    assert_int_equal(acq(rl, c, "sw", 1000, &s, NULL), RL_OK);
    ratelimit_release(rl, c, &s);
    assert_int_equal(zcard(c, "hsqb:rate:{qbo:sw}"), 10);
    clock_sleep_ms(RATELIMIT_POOL_TTL_MS + 1000); /* the TTL, then a sweep or two */
    assert_int_equal(zcard(c, "hsqb:rate:{qbo:sw}"), 1);
    assert_int_equal(in_flight(c, "hsqb:rate:{qbo:sw}"), 0);
    ratelimit_free(rl);
    redis_conn_free(c);
}

/* A replica that dies before stamping: its entries hold the tenant until admission +
 * lease (they cover requests whose completion was never seen), then count a window. */
static void test_unstamped_entries_hold_until_the_lease(void **state)
{
    struct ratelimit *rl = limiter(2, 300, 10, 0, 400);
    struct redis_conn *c = conn();
    struct ratelimit_slot a, b, d;
    int64_t start = clock_mono_ms();
    (void)state;

    assert_int_equal(acq(rl, c, "dead", 100, &a, NULL), RL_OK);
    assert_int_equal(acq(rl, c, "dead", 100, &b, NULL), RL_OK);
    /* never released: the next waits for admission + lease (400) + window (300) */
    assert_int_equal(acq(rl, c, "dead", 3000, &d, NULL), RL_OK);
    assert_true(clock_mono_ms() - start >= 700 - 15);
    ratelimit_release(rl, c, &d);
    ratelimit_release(rl, c, &a);
    ratelimit_release(rl, c, &b);
    ratelimit_free(rl);
    redis_conn_free(c);
}

struct pooled_replica {
    struct ratelimit *rl;
    int64_t times[40];
    int ok;
};

static void *pooled_run(void *opaque)
{
    struct pooled_replica *r = opaque;
    struct redis_conn *c = conn();

    for (int i = 0; i < 40; i++) {
        struct ratelimit_slot slot;
        if (acq(r->rl, c, "pr", 5000, &slot, NULL) != RL_OK)
            break;
        r->times[i] = clock_mono_ms();
        ratelimit_release(r->rl, c, &slot);
        r->ok = i + 1;
    }
    redis_conn_free(c);
    return NULL;
}

/* Two replicas leasing a few entries at a time still never send more than the limit in
 * any rolling window (each request here completes when taken). */
static void test_pooled_replicas_keep_the_window(void **state)
{
    struct pooled_replica rep[2] = {{.rl = pooled(32, 400, 0)}, {.rl = pooled(32, 400, 0)}};
    pthread_t th[2];
    int64_t all[80];
    (void)state;

    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, pooled_run, &rep[i]), 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(rep[i].ok, 40);
        memcpy(all + 40 * i, rep[i].times, sizeof rep[i].times);
    }
    qsort(all, 80, sizeof all[0], cmp64);
    for (int i = 0; i + 32 < 80; i++)
        assert_true(all[i + 32] - all[i] >= 400 - 15);
    for (int i = 0; i < 2; i++)
        ratelimit_free(rep[i].rl);
}

static void test_redis_down_is_an_error(void **state)
{
    struct ratelimit *rl = limiter(100, 1000, 1, 0, 1000);
    struct redis_conn *c = conn();
    struct ratelimit_slot slot;
    char err[256] = "";
    int64_t start;
    (void)state;

    testutil_redis_kill(&testutil_server);
    start = clock_mono_ms();
    assert_int_equal(ratelimit_acquire(
                         rl, c, &(struct ratelimit_req){RL_QBO, "r1", clock_mono_ms() + 1000},
                         &slot, err, sizeof err),
                     RL_ERROR);
    assert_false(slot.held);
    assert_non_null(strstr(err, "redis"));
    assert_true(clock_mono_ms() - start < 900); /* fails fast, does not wait it out */
    assert_int_equal(ratelimit_penalize(rl, c, RL_QBO, "r1", 100, err, sizeof err), -1);

    assert_int_equal(testutil_redis_restart(&testutil_server, err, sizeof err), 0);
    clock_sleep_ms(150); /* the connection's reconnect back-off */
    /* The failed acquire did not leak the single local slot. */
    assert_int_equal(acq(rl, c, "r1", 500, &slot, NULL), RL_OK);
    ratelimit_release(rl, c, &slot);
    ratelimit_free(rl);
    redis_conn_free(c);
}

static void test_defaults_and_names(void **state)
{
    struct ratelimit_opts o;
    struct ratelimit *rl;
    char err[256];
    (void)state;

    ratelimit_opts_default(&o);
    assert_int_equal(o.kind[RL_QBO].limit, 500);
    assert_int_equal(o.kind[RL_QBO].window_ms, 60000);
    assert_int_equal(o.kind[RL_QBO].global_concurrency, 10);
    assert_int_equal(o.kind[RL_HUBSPOT].window_ms, 10000);
    assert_string_equal(ratelimit_kind_name(RL_QBO), "qbo");
    assert_string_equal(ratelimit_kind_name(RL_HUBSPOT), "hs");
    assert_null(ratelimit_kind_name(RL_KIND_COUNT));
    o.kind[RL_HUBSPOT].limit = 0;
    assert_null(ratelimit_new_opts(&o, err, sizeof err));
    assert_non_null(strstr(err, "hs"));
    ratelimit_opts_default(&o);
    rl = ratelimit_new_opts(&o, err, sizeof err);
    assert_non_null(rl);
    ratelimit_release(rl, NULL, NULL);
    ratelimit_free(rl);
    ratelimit_free(NULL);
}

/* The limits come from the settings table. */
static void test_limits_from_settings(void **state)
{
    char *envp[] = {"HSQB_QBO_RATE_LIMIT_PER_MIN=3", "HSQB_QBO_MAX_CONCURRENT_PER_REALM=2", NULL};
    struct config *cfg = NULL;
    struct ratelimit *rl;
    struct redis_conn *c = conn();
    struct ratelimit_slot s[4];
    char err[256];
    int64_t retry = 0;
    (void)state;

    assert_int_equal(
        settings_load_flags(&cfg, 0, NULL, envp, SETTINGS_SKIP_REQUIRED, err, sizeof err), 0);
    rl = ratelimit_new(cfg, err, sizeof err);
    assert_non_null(rl);
    config_free(cfg);
    assert_int_equal(acq(rl, c, "r1", 0, &s[0], NULL), RL_OK);
    assert_int_equal(acq(rl, c, "r1", 0, &s[1], NULL), RL_OK);
    assert_int_equal(acq(rl, c, "r1", 20, &s[2], NULL), RL_TIMEOUT); /* 2 in flight */
    ratelimit_release(rl, c, &s[0]);
    assert_int_equal(acq(rl, c, "r1", 0, &s[2], NULL), RL_OK);
    ratelimit_release(rl, c, &s[1]);
    assert_int_equal(acq(rl, c, "r1", 0, &s[3], &retry), RL_TIMEOUT); /* 3 per minute */
    assert_true(retry > 50000 && retry <= 60000 + 5);
    ratelimit_release(rl, c, &s[2]);
    ratelimit_free(rl);
    redis_conn_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults_and_names, testutil_redis_flush_setup),
        cmocka_unit_test_setup(test_limits_from_settings, testutil_redis_flush_setup),
        cmocka_unit_test_setup(test_rate_shared_by_two_replicas, testutil_redis_flush_setup),
        cmocka_unit_test_setup(test_burst_then_wait_and_timeout, testutil_redis_flush_setup),
        cmocka_unit_test_setup(test_release_restamps_completion, testutil_redis_flush_setup),
        cmocka_unit_test_setup(test_penalize_blocks_every_replica, testutil_redis_flush_setup),
        cmocka_unit_test_setup(test_local_concurrency_cap, testutil_redis_flush_setup),
        cmocka_unit_test_setup(test_global_concurrency_across_replicas, testutil_redis_flush_setup),
        cmocka_unit_test_setup(test_lease_tokens_unique, testutil_redis_flush_setup),
        cmocka_unit_test_setup(test_pool_admits_a_few_at_once, testutil_redis_flush_setup),
        cmocka_unit_test_setup(test_sweeper_returns_and_stamps, testutil_redis_flush_setup),
        cmocka_unit_test_setup(test_unstamped_entries_hold_until_the_lease, testutil_redis_flush_setup),
        cmocka_unit_test_setup(test_pooled_replicas_keep_the_window, testutil_redis_flush_setup),
        cmocka_unit_test_setup(test_redis_down_is_an_error, testutil_redis_flush_setup),
    };
    return cmocka_run_group_tests(tests, testutil_redis_group_setup, testutil_redis_group_teardown);
}
