/* test_claim.c - component test of the event-key protocol (worker/claim.c) against a
 * private redis-server: claim, busy, done with its status, release, renew, take-over,
 * the replay retake, sent-step markers, done markers written before the status field
 * (the migration path), and the QBO request ids. */
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
#include "worker/claim.h"
#include "worker/event.h"

static struct redis_conn *conn(void)
{
    char err[256] = "";
    struct redis_conn *c = testutil_redis_conn(&testutil_server, 0, err, sizeof(err));

    if (!c)
        fail_msg("redis_conn_new: %s", err);
    return c;
}

static void set(struct redis_conn *c, const char *key, const char *value)
{
    char err[256];
    redisReply *r = redis_command(c, err, sizeof(err), "SET %s %s", key, value);

    assert_non_null(r);
    freeReplyObject(r);
}

static void test_claim_busy_done_release(void **state)
{
    struct redis_conn *a = conn(), *b = conn();
    struct redis_lease la, lb, la2, lb2;
    const char *result = "{\"status\":\"succeeded\",\"qbo\":{\"id\":\"130\"}}";
    struct claim_stored got = {0};
    char err[256] = "";

    (void)state;
    assert_int_equal(claim_prepare(a, &la, "cb-1", err, sizeof(err)), 0);
    assert_int_equal(claim_prepare(b, &lb, "cb-1", err, sizeof(err)), 0);
    assert_string_equal(la.key, "hsqb:evt:{cb-1}");
    assert_string_equal(la.key, lb.key);
    assert_int_equal(strlen(la.token), REDIS_TOKEN_LEN);
    assert_string_not_equal(la.token, lb.token);

    assert_int_equal(claim_take(a, &la, 30000, &got, err, sizeof(err)), CLAIM_OURS);
    assert_string_equal(testutil_redis_get(a, la.key), la.token);
    assert_true(testutil_redis_pttl(a, la.key) > 29000);
    assert_int_equal(claim_take(b, &lb, 30000, &got, err, sizeof(err)), CLAIM_BUSY);
    /* Claiming again with our own lease (a lost reply, retried) is still ours. */
    assert_int_equal(claim_take(a, &la, 30000, &got, err, sizeof(err)), CLAIM_OURS);
    assert_null(got.result);

    assert_int_equal(claim_done(a, &la, &(struct claim_record){0, result, strlen(result)},
                                7 * 86400000LL, err, sizeof(err)),
                     CLAIM_DONE_WRITTEN);
    assert_true(testutil_redis_pttl(a, la.key) > 6 * 86400000LL);
    assert_int_equal(claim_take(b, &lb, 30000, &got, err, sizeof(err)), CLAIM_DONE);
    assert_non_null(got.result);
    assert_string_equal(got.result, result);
    assert_int_equal(got.len, strlen(result));
    assert_int_equal(got.failed, 0);
    claim_stored_release(&got);
    assert_null(got.result);
    /* The first result wins; release never deletes a done marker. */
    assert_int_equal(claim_done(b, &lb, &(struct claim_record){1, "{}", 2}, 1000, err, sizeof(err)),
                     CLAIM_DONE_ALREADY);
    assert_int_equal(redis_lease_release(a, &la, err, sizeof(err)), REDIS_OWNER_LOST);
    /* the marker keeps the layout every release reads ("done:" + the result, so an
     * earlier release running beside this one re-publishes the result unchanged); the
     * status sits beside it, with the result's length */
    {
        char want[256], skey[REDIS_MAX_KEY + 16];

        snprintf(want, sizeof want, "done:%s", result);
        assert_string_equal(testutil_redis_get(a, la.key), want);
        snprintf(skey, sizeof skey, "%s:status", la.key);
        snprintf(want, sizeof want, "succeeded %zu", strlen(result));
        assert_string_equal(testutil_redis_get(a, skey), want);
        assert_true(testutil_redis_pttl(a, skey) > 6 * 86400000LL);
    }
    /* the stored outcome without claiming it (replay) */
    assert_int_equal(claim_take(b, &lb, 30000, NULL, err, sizeof(err)), CLAIM_DONE);
    assert_int_equal(claim_peek(b, "cb-1", &got, err, sizeof(err)), 1);
    assert_string_equal(got.result, result);
    claim_stored_release(&got);

    /* Claim then release frees the event for the next owner. */
    assert_int_equal(claim_prepare(a, &la2, "cb-2", err, sizeof(err)), 0);
    assert_int_equal(claim_prepare(b, &lb2, "cb-2", err, sizeof(err)), 0);
    assert_int_equal(claim_take(a, &la2, 30000, NULL, err, sizeof(err)), CLAIM_OURS);
    assert_int_equal(claim_peek(b, "cb-2", &got, err, sizeof(err)), 0); /* claimed, not done */
    assert_int_equal(redis_lease_release(a, &la2, err, sizeof(err)), REDIS_OWNER_OK);
    assert_string_equal(testutil_redis_get(a, la2.key), "(nil)");
    assert_int_equal(claim_peek(b, "cb-2", &got, err, sizeof(err)), 0);
    assert_int_equal(claim_take(b, &lb2, 30000, NULL, err, sizeof(err)), CLAIM_OURS);

    /* Bad input is refused locally. */
    assert_int_equal(claim_prepare(a, &la2, "", err, sizeof(err)), -1);
    assert_int_equal(claim_take(a, &la, 0, NULL, err, sizeof(err)), CLAIM_ERROR);
    assert_int_equal(claim_done(a, &la, &(struct claim_record){0, "{}", 2}, 0, err, sizeof(err)),
                     CLAIM_DONE_ERROR);
    assert_int_equal(claim_done(a, &la, &(struct claim_record){0, NULL, 0}, 1000, err, sizeof(err)),
                     CLAIM_DONE_ERROR);
    redis_conn_free(a);
    redis_conn_free(b);
}

/* Commands (inner ones included) between two testutil_redis_calls(): its own INFO off. */
static long long calls_since(struct redis_conn *c, long long before)
{
    return testutil_redis_calls(c) - before - 1;
}

/* Issue 20: an event's claim is one Redis command and its done marker three (the script,
 * the marker, the status), where they were three and four; a done over an existing
 * marker still leaves the first outcome, with at least the dedup window to live. */
static void test_claim_and_done_command_counts(void **state)
{
    struct redis_conn *a = conn(), *b = conn();
    struct redis_lease la, lb;
    const char *first = "{\"type\":\"hsqb.result.succeeded\"}";
    struct claim_stored got = {0};
    char err[256] = "", want[REDIS_MAX_KEY + 16];
    long long n;

    (void)state;
    assert_int_equal(claim_prepare(a, &la, "cb-count", err, sizeof(err)), 0);
    assert_int_equal(claim_prepare(b, &lb, "cb-count", err, sizeof(err)), 0);
    n = testutil_redis_calls(a);
    assert_true(n >= 0);
    assert_int_equal(claim_take(a, &la, 30000, &got, err, sizeof(err)), CLAIM_OURS);
    assert_int_equal(calls_since(a, n), 1);
    n = testutil_redis_calls(a);
    assert_int_equal(claim_done(a, &la, &(struct claim_record){0, first, strlen(first)}, 600000,
                                err, sizeof(err)),
                     CLAIM_DONE_WRITTEN);
    assert_int_equal(calls_since(a, n), 3);
    /* a busy claim answers at once, and a second outcome leaves the first in place */
    assert_int_equal(claim_take(b, &lb, 30000, &got, err, sizeof(err)), CLAIM_DONE);
    assert_string_equal(got.result, first);
    assert_int_equal(got.failed, 0);
    claim_stored_release(&got);
    assert_int_equal(claim_done(b, &lb, &(struct claim_record){1, "{}", 2}, 900000, err,
                                sizeof(err)),
                     CLAIM_DONE_ALREADY);
    snprintf(want, sizeof want, "done:%s", first);
    assert_string_equal(testutil_redis_get(a, la.key), want);
    assert_true(testutil_redis_pttl(a, la.key) > 600000);
    snprintf(want, sizeof want, "%s:status", la.key);
    assert_string_equal(testutil_redis_get(a, want), "succeeded 32");
    redis_conn_free(a);
    redis_conn_free(b);
}

static void test_renew_only_by_owner(void **state)
{
    struct redis_conn *a = conn(), *b = conn();
    struct redis_lease la, lb;
    char err[256] = "";

    (void)state;
    assert_int_equal(claim_prepare(a, &la, "cb-r", err, sizeof(err)), 0);
    lb = la;
    assert_int_equal(claim_prepare(b, &lb, "cb-r", err, sizeof(err)), 0);
    assert_int_equal(claim_take(a, &la, 1000, NULL, err, sizeof(err)), CLAIM_OURS);
    assert_int_equal(redis_lease_renew(b, &lb, 60000, err, sizeof(err)), REDIS_OWNER_LOST);
    assert_true(testutil_redis_pttl(a, la.key) <= 1000);
    assert_int_equal(redis_lease_renew(a, &la, 60000, err, sizeof(err)), REDIS_OWNER_OK);
    assert_true(testutil_redis_pttl(a, la.key) > 50000);
    assert_string_equal(testutil_redis_get(a, la.key), la.token);
    redis_conn_free(a);
    redis_conn_free(b);
}

static void test_release_keeps_foreign_claim(void **state)
{
    struct redis_conn *a = conn(), *b = conn();
    struct redis_lease la, lb;
    char err[256] = "";

    (void)state;
    assert_int_equal(claim_prepare(a, &la, "cb-f", err, sizeof(err)), 0);
    assert_int_equal(claim_prepare(b, &lb, "cb-f", err, sizeof(err)), 0);
    assert_int_equal(claim_take(a, &la, 30000, NULL, err, sizeof(err)), CLAIM_OURS);
    assert_int_equal(redis_lease_release(b, &lb, err, sizeof(err)), REDIS_OWNER_LOST);
    assert_string_equal(testutil_redis_get(a, la.key), la.token);
    redis_conn_free(a);
    redis_conn_free(b);
}

static void test_lease_expiry_and_takeover(void **state)
{
    struct redis_conn *a = conn(), *b = conn();
    struct redis_lease la, lb;
    struct claim_stored got = {0};
    char err[256] = "";

    (void)state;
    assert_int_equal(claim_prepare(a, &la, "cb-x", err, sizeof(err)), 0);
    assert_int_equal(claim_prepare(b, &lb, "cb-x", err, sizeof(err)), 0);
    assert_int_equal(claim_take(a, &la, 50, NULL, err, sizeof(err)), CLAIM_OURS);
    clock_sleep_ms(120); /* a's worker stalls past its lease */
    assert_int_equal(claim_take(b, &lb, 30000, NULL, err, sizeof(err)), CLAIM_OURS);
    assert_int_equal(redis_lease_renew(a, &la, 30000, err, sizeof(err)), REDIS_OWNER_LOST);
    assert_int_equal(redis_lease_release(a, &la, err, sizeof(err)), REDIS_OWNER_LOST);
    assert_string_equal(testutil_redis_get(b, lb.key), lb.token);

    /* a had already created the document: its done marker still lands (documented
     * decision), and b learns it from renew and claim. */
    assert_int_equal(claim_done(a, &la, &(struct claim_record){0, "{\"by\":\"a\"}", 10}, 60000, err,
                                sizeof(err)),
                     CLAIM_DONE_TAKEN_OVER);
    assert_int_equal(redis_lease_renew(b, &lb, 30000, err, sizeof(err)), REDIS_OWNER_LOST);
    assert_int_equal(claim_take(b, &lb, 30000, &got, err, sizeof(err)), CLAIM_DONE);
    assert_string_equal(got.result, "{\"by\":\"a\"}");
    claim_stored_release(&got);
    redis_conn_free(a);
    redis_conn_free(b);
}

/* A replay may take back an event whose stored outcome is a failure, never a success. */
static void test_retake_failed_only(void **state)
{
    struct redis_conn *a = conn();
    struct redis_lease l, other;
    struct claim_stored got = {0};
    char err[256] = "";

    (void)state;
    assert_int_equal(claim_prepare(a, &l, "cb-f1", err, sizeof(err)), 0);
    assert_int_equal(claim_prepare(a, &other, "cb-f1", err, sizeof(err)), 0);
    assert_int_equal(claim_take(a, &other, 30000, NULL, err, sizeof(err)), CLAIM_OURS);
    assert_int_equal(
        claim_done(a, &other, &(struct claim_record){1, "{\"x\":1}", 7}, 60000, err, sizeof(err)),
        CLAIM_DONE_WRITTEN);
    assert_int_equal(claim_take(a, &l, 30000, &got, err, sizeof(err)), CLAIM_DONE);
    assert_int_equal(got.failed, 1);
    assert_string_equal(got.result, "{\"x\":1}");
    claim_stored_release(&got);
    assert_int_equal(claim_retake_failed(a, &l, 30000, err, sizeof(err)), CLAIM_OURS);
    assert_string_equal(testutil_redis_get(a, l.key), l.token);
    /* a live claim is not taken */
    assert_int_equal(claim_retake_failed(a, &other, 30000, err, sizeof(err)), CLAIM_BUSY);
    /* a success is never taken back */
    assert_int_equal(claim_done(a, &l, &(struct claim_record){0, "{}", 2}, 60000, err, sizeof(err)),
                     CLAIM_DONE_WRITTEN);
    assert_int_equal(claim_retake_failed(a, &other, 30000, err, sizeof(err)), CLAIM_BUSY);
    assert_string_equal(testutil_redis_get(a, l.key), "done:{}");
    assert_string_equal(testutil_redis_get(a, "hsqb:evt:{cb-f1}:status"), "succeeded 2");
    /* nothing stored: taken */
    assert_int_equal(claim_prepare(a, &l, "cb-f2", err, sizeof(err)), 0);
    assert_int_equal(claim_retake_failed(a, &l, 30000, err, sizeof(err)), CLAIM_OURS);
    assert_int_equal(claim_retake_failed(a, &l, 0, err, sizeof(err)), CLAIM_ERROR);
    redis_conn_free(a);
}

/* Done markers written by earlier releases (no status key) are still read right: the
 * outcome comes from the result's CloudEvent type; a replay retakes a stored failure. A
 * status that does not belong to the marker (a marker an earlier release rewrote after a
 * replay) is ignored the same way. */
static void test_done_markers_of_earlier_releases(void **state)
{
    static const char ok_json[] = "{\"type\":\"hsqb.result.succeeded\",\"id\":\"cb-o:result\"}",
                      failed_json[] = "{\"type\":\"hsqb.result.failed\",\"id\":\"cb-l:result\"}";
    struct redis_conn *a = conn();
    struct redis_lease l;
    struct claim_stored got = {0};
    char err[256] = "", v[256];

    (void)state;
    snprintf(v, sizeof v, "done:%s", ok_json);
    set(a, "hsqb:evt:{cb-o}", v);
    snprintf(v, sizeof v, "done:%s", failed_json);
    set(a, "hsqb:evt:{cb-l}", v);

    assert_int_equal(claim_prepare(a, &l, "cb-o", err, sizeof(err)), 0);
    assert_int_equal(claim_take(a, &l, 30000, &got, err, sizeof(err)), CLAIM_DONE);
    assert_int_equal(got.failed, 0);
    assert_string_equal(got.result, ok_json);
    claim_stored_release(&got);
    assert_int_equal(claim_retake_failed(a, &l, 30000, err, sizeof(err)), CLAIM_BUSY);
    assert_int_equal(claim_peek(a, "cb-o", &got, err, sizeof(err)), 1);
    assert_int_equal(got.failed, 0);
    claim_stored_release(&got);

    assert_int_equal(claim_prepare(a, &l, "cb-l", err, sizeof(err)), 0);
    assert_int_equal(claim_take(a, &l, 30000, &got, err, sizeof(err)), CLAIM_DONE);
    assert_int_equal(got.failed, 1);
    assert_string_equal(got.result, failed_json);
    claim_stored_release(&got);
    assert_int_equal(claim_done(a, &l, &(struct claim_record){0, "{}", 2}, 1000, err, sizeof(err)),
                     CLAIM_DONE_ALREADY);
    assert_int_equal(claim_retake_failed(a, &l, 30000, err, sizeof(err)), CLAIM_OURS);

    /* a stale status (length of another result) is not believed: the failed result is */
    snprintf(v, sizeof v, "done:%s", failed_json);
    set(a, "hsqb:evt:{cb-s}", v);
    set(a, "hsqb:evt:{cb-s}:status", "succeeded 2");
    assert_int_equal(claim_peek(a, "cb-s", &got, err, sizeof(err)), 1);
    assert_int_equal(got.failed, 1);
    claim_stored_release(&got);
    assert_int_equal(claim_prepare(a, &l, "cb-s", err, sizeof(err)), 0);
    assert_int_equal(claim_retake_failed(a, &l, 30000, err, sizeof(err)), CLAIM_OURS);
    assert_string_equal(testutil_redis_get(a, "hsqb:evt:{cb-s}:status"), "(nil)");

    /* the parser alone */
    assert_int_equal(claim_stored_parse("{}", 2, "failed 2", 8, &got), 0);
    assert_int_equal(got.failed, 1);
    assert_string_equal(got.result, "{}");
    claim_stored_release(&got);
    assert_int_equal(claim_stored_parse("{}", 2, "failed 3", 8, &got), 0); /* not its status */
    assert_int_equal(got.failed, 0);
    claim_stored_release(&got);
    assert_int_equal(claim_stored_parse(failed_json, strlen(failed_json), NULL, 0, &got), 0);
    assert_int_equal(got.failed, 1);
    claim_stored_release(&got);
    assert_int_equal(claim_stored_parse("", 0, "failed", 6, &got), 0); /* malformed status */
    assert_int_equal(got.failed, 0);
    assert_int_equal(got.len, 0);
    claim_stored_release(&got);
    assert_int_equal(claim_stored_parse("{}", 2, "failed 99999999999999999999999", 29, &got), 0);
    assert_int_equal(got.failed, 0);
    claim_stored_release(&got);
    redis_conn_free(a);
}

static void test_sent_markers(void **state)
{
    struct redis_conn *a = conn();
    char err[256] = "";

    (void)state;
    assert_int_equal(claim_mark_sent(a, "cb-s", "doc", 60000, err, sizeof(err)), 0);
    assert_string_equal(testutil_redis_get(a, "hsqb:evt:{cb-s}:sent:doc"), "1");
    assert_true(testutil_redis_pttl(a, "hsqb:evt:{cb-s}:sent:doc") > 59000);
    assert_int_equal(claim_mark_sent(a, "cb-s", "doc", 60000, err, sizeof(err)), 1);
    assert_int_equal(claim_mark_sent(a, "cb-s", "payment", 60000, err, sizeof(err)), 0);
    assert_int_equal(claim_mark_sent(a, "", "doc", 60000, err, sizeof(err)), -1);
    assert_int_equal(claim_mark_sent(a, "cb-s", "", 60000, err, sizeof(err)), -1);
    assert_int_equal(claim_mark_sent(a, "cb-s", "doc", 0, err, sizeof(err)), -1);
    redis_conn_free(a);
}

/* The hash tag Redis Cluster hashes a key by: from the first '{' to the next '}', when
 * that is not empty; else the whole key. */
static void cluster_tag(const char *key, char *out, size_t outsz)
{
    const char *o = strchr(key, '{'), *c = o ? strchr(o + 1, '}') : NULL;

    if (o && c && c > o + 1)
        snprintf(out, outsz, "%.*s", (int)(c - o - 1), o + 1);
    else
        snprintf(out, outsz, "%s", key);
}

/* Every key of an event hashes by the event's id alone, so a Redis Cluster keeps them in
 * one slot (the scripts touch several), and two ids never share a tag. Ids may hold any
 * visible ASCII, '{' and '}' included; ordinary ids keep the keys they always had. */
static void test_keys_keep_the_id_as_hash_tag(void **state)
{
    static const char *const ids[] = {"a}b", "a}c", "}", "{", "{x}", "a%7Db", "100%"};
    struct redis_conn *a = conn();
    struct redis_lease l;
    char err[256] = "", tags[7][REDIS_MAX_KEY + 1], t2[REDIS_MAX_KEY + 1], sent[REDIS_MAX_KEY + 16];
    size_t i, j;

    (void)state;
    assert_int_equal(claim_prepare(a, &l, "ap-102670506-56776413549-7-0", err, sizeof err), 0);
    assert_string_equal(l.key, "hsqb:evt:{ap-102670506-56776413549-7-0}");
    for (i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        assert_int_equal(claim_prepare(a, &l, ids[i], err, sizeof err), 0);
        cluster_tag(l.key, tags[i], sizeof tags[i]);
        assert_ptr_equal(strchr(tags[i], '{'), NULL);
        /* the sent marker of the same event: the same slot */
        assert_int_equal(claim_mark_sent(a, ids[i], "doc", 60000, err, sizeof err), 0);
        snprintf(sent, sizeof sent, "%s:sent:doc", l.key);
        assert_string_equal(testutil_redis_get(a, sent), "1");
        cluster_tag(sent, t2, sizeof t2);
        assert_string_equal(t2, tags[i]);
        for (j = 0; j < i; j++)
            assert_string_not_equal(tags[i], tags[j]);
    }
    assert_string_equal(tags[0], "a%7Db");
    /* the longest id of braces still has keys */
    {
        char big[EVENT_ID_MAX + 1];

        memset(big, '}', EVENT_ID_MAX);
        big[EVENT_ID_MAX] = '\0';
        assert_int_equal(claim_prepare(a, &l, big, err, sizeof err), 0);
        assert_int_equal(claim_mark_sent(a, big, "payment:r1", 60000, err, sizeof err), 0);
    }
    redis_conn_free(a);
}

static void test_request_id(void **state)
{
    (void)state;
    char a[CLAIM_REQUEST_ID_MAX + 1], b[CLAIM_REQUEST_ID_MAX + 1];

    assert_int_equal(claim_request_id("ap-102670506-56776413549-7-0", "invoice", a), 0);
    /* Independent vector: "hsqb-" + hex(SHA-256(id || 0x00 || step))[:40] (Python). */
    assert_string_equal(a, "hsqb-13e7181b0b29c179886661dbb333500312d10f42");
    assert_true(strlen(a) <= CLAIM_REQUEST_ID_MAX);
    assert_int_equal(strlen(a), 45);
    /* Stable, and different per step and per event. */
    assert_int_equal(claim_request_id("ap-102670506-56776413549-7-0", "invoice", b), 0);
    assert_string_equal(a, b);
    assert_int_equal(claim_request_id("ap-102670506-56776413549-7-0", "payment", b), 0);
    assert_string_not_equal(a, b);
    assert_int_equal(claim_request_id("ap-102670506-56776413549-7-1", "invoice", b), 0);
    assert_string_not_equal(a, b);
    /* The separator keeps ("ab","c") and ("a","bc") apart. */
    assert_int_equal(claim_request_id("ab", "c", a), 0);
    assert_int_equal(claim_request_id("a", "bc", b), 0);
    assert_string_not_equal(a, b);
    /* Very long event ids still give a 45-character id. */
    char longid[4096];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    assert_int_equal(claim_request_id(longid, "", a), 0);
    assert_int_equal(strlen(a), 45);
    assert_int_equal(claim_request_id(NULL, "x", a), -1);
    assert_int_equal(claim_request_id("x", NULL, a), -1);

    /* Replays: generation 0 is exactly the id above; a replay's is the step "doc#r<n>" */
    assert_int_equal(claim_request_id_gen("ev", "doc", 0, a), 0);
    assert_int_equal(claim_request_id("ev", "doc", b), 0);
    assert_string_equal(a, b);
    assert_int_equal(claim_request_id_gen("ev", "doc", 2, a), 0);
    assert_int_equal(claim_request_id("ev", "doc#r2", b), 0);
    assert_string_equal(a, b);
    assert_int_equal(claim_request_id_gen("ev", "doc", 1, b), 0);
    assert_string_not_equal(a, b);
    assert_int_equal(claim_request_id_gen("ev", NULL, 1, a), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_claim_busy_done_release, testutil_redis_flush_setup),
        cmocka_unit_test_setup(test_claim_and_done_command_counts, testutil_redis_flush_setup),
        cmocka_unit_test_setup(test_renew_only_by_owner, testutil_redis_flush_setup),
        cmocka_unit_test_setup(test_release_keeps_foreign_claim, testutil_redis_flush_setup),
        cmocka_unit_test_setup(test_lease_expiry_and_takeover, testutil_redis_flush_setup),
        cmocka_unit_test_setup(test_retake_failed_only, testutil_redis_flush_setup),
        cmocka_unit_test_setup(test_done_markers_of_earlier_releases, testutil_redis_flush_setup),
        cmocka_unit_test_setup(test_sent_markers, testutil_redis_flush_setup),
        cmocka_unit_test_setup(test_keys_keep_the_id_as_hash_tag, testutil_redis_flush_setup),
        cmocka_unit_test(test_request_id),
    };
    return cmocka_run_group_tests(tests, testutil_redis_group_setup, testutil_redis_group_teardown);
}
