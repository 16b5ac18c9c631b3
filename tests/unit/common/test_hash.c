/* test_hash.c - digests, HMAC, base64, HubSpot signatures, hashed key parts (common/hash.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/hash.h"

/* reference/hubspot-api.md §3.3 */
#define HS_SECRET "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
#define HS_V1_BODY                                                                                 \
    "[{\"eventId\":1,\"subscriptionId\":12345,\"portalId\":62515,\"occurredAt\":1564113600000,"    \
    "\"subscriptionType\":\"contact.creation\",\"attemptNumber\":0,\"objectId\":123,"              \
    "\"changeSource\":\"CRM\",\"changeFlag\":\"NEW\",\"appId\":54321}]"
#define HS_V1_SIG "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
#define HS_URI    "https://example.com/hubspot/action"
#define HS_BODY   "{\"callbackId\":\"ap-1-2-3-0\"}"
#define HS_V2_SIG "6152fcdb22e0d0b605239fc0736d3953630a483e7a0da706b2e7bdffc86b438c"
#define HS_TS     "1700000000000"
#define HS_TS_MS  INT64_C(1700000000000)
#define HS_V3_SIG "TjsWBLAo3Ld2c9if+E8zHoN+HDWTbNqr/wHZlPmMW/Y="

static void hex_of(const unsigned char *md, char *out)
{
    hash_hex(md, HASH_SHA256_LEN, out);
}

static void test_sha256_known_answers(void **state)
{
    (void)state;
    char hex[HASH_SHA256_HEX_LEN + 1];
    unsigned char md[HASH_SHA256_LEN];

    assert_int_equal(hash_sha256_hex("abc", 3, hex), 0);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(hash_sha256_hex(NULL, 0, hex), 0);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* FIPS 180-2 two-block message. */
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_int_equal(hash_sha256(m, strlen(m), md), 0);
    hex_of(md, hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* Threads hashing at once, each with its own reused context, and threads that exit and
 * are replaced (their contexts freed): every digest right, one after another on a thread
 * as well (a reused context starts clean). */
struct hash_job {
    int ok;
};

static void *hash_many(void *arg)
{
    struct hash_job *j = arg;
    char hex[HASH_SHA256_HEX_LEN + 1];
    unsigned char md[HASH_SHA256_LEN];

    j->ok = 1;
    for (int i = 0; i < 200; i++) {
        if (hash_sha256_hex("abc", 3, hex) != 0 ||
            strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") ||
            hash_sha256("", 0, md) != 0)
            j->ok = 0;
        hash_hex(md, sizeof md, hex);
        if (strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"))
            j->ok = 0;
    }
    return NULL;
}

static void test_sha256_threads(void **state)
{
    pthread_t th[8];
    struct hash_job jobs[8];
    (void)state;

    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 8; i++)
            assert_int_equal(pthread_create(&th[i], NULL, hash_many, &jobs[i]), 0);
        for (int i = 0; i < 8; i++) {
            assert_int_equal(pthread_join(th[i], NULL), 0);
            assert_true(jobs[i].ok);
        }
    }
}

static void test_hmac_rfc4231(void **state)
{
    (void)state;
    unsigned char md[HASH_SHA256_LEN], key[131];
    char hex[HASH_SHA256_HEX_LEN + 1];

    /* Test case 1 */
    memset(key, 0x0b, 20);
    assert_int_equal(hash_hmac_sha256(key, 20, "Hi There", 8, md), 0);
    hex_of(md, hex);
    assert_string_equal(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    /* Test case 2 */
    const char *d2 = "what do ya want for nothing?";
    assert_int_equal(hash_hmac_sha256("Jefe", 4, d2, strlen(d2), md), 0);
    hex_of(md, hex);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* Test case 6: a key longer than the block is hashed first. */
    memset(key, 0xaa, sizeof key);
    const char *d6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    assert_int_equal(hash_hmac_sha256(key, sizeof key, d6, strlen(d6), md), 0);
    hex_of(md, hex);
    assert_string_equal(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    /* Empty key and message are legal HMAC inputs. */
    assert_int_equal(hash_hmac_sha256(NULL, 0, NULL, 0, md), 0);
    hex_of(md, hex);
    assert_string_equal(hex, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

static void test_base64_rfc4648(void **state)
{
    (void)state;
    static const char *const want[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                       "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    char out[16];
    for (size_t n = 0; n < 7; n++) {
        memset(out, 'X', sizeof out);
        assert_int_equal(hash_base64("foobar", n, out, sizeof out), 0);
        assert_string_equal(out, want[n]);
        assert_int_equal(strlen(out), HASH_B64_LEN(n));
    }
    unsigned char all[3] = {0xfb, 0xff, 0xbf};
    assert_int_equal(hash_base64(all, 3, out, sizeof out), 0);
    assert_string_equal(out, "+/+/");
    /* Exactly enough room, then one byte short. */
    assert_int_equal(hash_base64("foo", 3, out, 5), 0);
    memset(out, 'X', sizeof out);
    assert_int_equal(hash_base64("foo", 3, out, 4), -1);
    assert_int_equal(out[0], 'X');
}

static void test_base64url_unpadded(void **state)
{
    (void)state;
    static const char *const want[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    unsigned char all[3] = {0xfb, 0xff, 0xbf};
    char out[16];

    for (size_t n = 0; n < 7; n++) {
        assert_int_equal(hash_base64url("foobar", n, out, sizeof out), 0);
        assert_string_equal(out, want[n]);
        assert_int_equal(strlen(out), HASH_B64URL_LEN(n));
    }
    assert_int_equal(hash_base64url(all, 3, out, sizeof out), 0);
    assert_string_equal(out, "-_-_");
    assert_int_equal(HASH_B64URL_LEN(32), 43);
    assert_int_equal(hash_base64url("fo", 2, out, 4), 0);
    memset(out, 'X', sizeof out);
    assert_int_equal(hash_base64url("fo", 2, out, 3), -1);
    assert_int_equal(out[0], 'X');
}

static void test_base64_decode(void **state)
{
    unsigned char out[16];
    size_t n = 0;
    (void)state;

    assert_int_equal(hash_base64_decode("Zm9vYmE=", 8, out, sizeof out, &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(out, "fooba", 5);
    assert_int_equal(hash_base64_decode("Zm9vYmE", 7, out, sizeof out, &n), 0); /* unpadded */
    assert_int_equal(n, 5);
    assert_int_equal(hash_base64_decode("-_-_", 4, out, sizeof out, &n), 0); /* url alphabet */
    assert_int_equal(n, 3);
    assert_memory_equal(out, "\xfb\xff\xbf", 3);
    assert_int_equal(hash_base64_decode("+/+/", 4, out, sizeof out, &n), 0);
    assert_memory_equal(out, "\xfb\xff\xbf", 3);
    assert_int_equal(hash_base64_decode("", 0, out, sizeof out, &n), 0);
    assert_int_equal(n, 0);
    const char *bad[] = {"+/-_", "Zm9v YmE=", "Zm9vY", "Zm9vYmE==", "Zm9vYm===", "Zm=9", "Zm9vYmF="};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(hash_base64_decode(bad[i], strlen(bad[i]), out, sizeof out, &n), -1);
    assert_int_equal(hash_base64_decode("Zm9vYmE=", 8, out, 4, &n), -1); /* does not fit */
}

static void test_hex_and_ct_equal(void **state)
{
    (void)state;
    char out[9];
    hash_hex("\x00\x7f\xab\xff", 4, out);
    assert_string_equal(out, "007fabff");
    hash_hex("", 0, out);
    assert_string_equal(out, "");

    assert_int_equal(hash_ct_equal("abc", 3, "abc", 3), 1);
    assert_int_equal(hash_ct_equal("abc", 3, "abd", 3), 0);
    assert_int_equal(hash_ct_equal("abc", 3, "abcd", 4), 0);
    assert_int_equal(hash_ct_equal("", 0, "", 0), 1);
    assert_int_equal(hash_ct_equal(NULL, 0, NULL, 0), 1);
    assert_int_equal(hash_ct_equal("a\0b", 3, "a\0c", 3), 0);
}

static const struct hubspot_sig_req v1_req = {.body = HS_V1_BODY,
                                              .body_len = sizeof HS_V1_BODY - 1};
static const struct hubspot_sig_req req = {.method = "POST",
                                           .uri = HS_URI,
                                           .body = HS_BODY,
                                           .body_len = sizeof HS_BODY - 1,
                                           .timestamp = HS_TS};

static void test_hubspot_vectors(void **state)
{
    (void)state;
    char sig[HUBSPOT_SIG_MAX];
    assert_int_equal(hash_hubspot_sign(HUBSPOT_SIG_V1, HS_SECRET, &v1_req, sig, sizeof sig), 0);
    assert_string_equal(sig, HS_V1_SIG);
    assert_int_equal(hash_hubspot_sign(HUBSPOT_SIG_V2, HS_SECRET, &req, sig, sizeof sig), 0);
    assert_string_equal(sig, HS_V2_SIG);
    assert_int_equal(hash_hubspot_sign(HUBSPOT_SIG_V3, HS_SECRET, &req, sig, sizeof sig), 0);
    assert_string_equal(sig, HS_V3_SIG);
    /* Short output buffers and missing parts are errors, never truncated output. */
    assert_int_equal(hash_hubspot_sign(HUBSPOT_SIG_V2, HS_SECRET, &req, sig, 64), -1);
    assert_int_equal(hash_hubspot_sign(HUBSPOT_SIG_V3, HS_SECRET, &req, sig, 44), -1);
    assert_int_equal(hash_hubspot_sign(HUBSPOT_SIG_V2, HS_SECRET, &v1_req, sig, sizeof sig), -1);
    struct hubspot_sig_req nots = req;
    nots.timestamp = NULL;
    assert_int_equal(hash_hubspot_sign(HUBSPOT_SIG_V3, HS_SECRET, &nots, sig, sizeof sig), -1);
    assert_int_equal(hash_hubspot_sign(HUBSPOT_SIG_V1, NULL, &req, sig, sizeof sig), -1);
}

static void test_hubspot_v3_uri_decoding(void **state)
{
    (void)state;
    char a[HUBSPOT_SIG_MAX], b[HUBSPOT_SIG_MAX];
    struct hubspot_sig_req enc = req, dec = req;

    /* The twelve listed escapes, in both hex cases, sign like their characters. */
    enc.uri = "https://example.com/a%3Ab%2fc%3F%40%21%24%27%28%29%2A%2c%3B?q=%3a";
    dec.uri = "https://example.com/a:b/c?@!$'()*,;?q=:";
    assert_int_equal(hash_hubspot_sign(HUBSPOT_SIG_V3, HS_SECRET, &enc, a, sizeof a), 0);
    assert_int_equal(hash_hubspot_sign(HUBSPOT_SIG_V3, HS_SECRET, &dec, b, sizeof b), 0);
    assert_string_equal(a, b);
    /* Independent vector (Python hmac/base64): other escapes stay as sent. */
    enc.uri = "https://example.com/hubspot/action?x=a%3Ab%2fc%20d%25e";
    assert_int_equal(hash_hubspot_sign(HUBSPOT_SIG_V3, HS_SECRET, &enc, a, sizeof a), 0);
    assert_string_equal(a, "4NOdkMJxVBClFh9Xjem0PebeDKMk6r+voiH6p1vYBAA=");
    dec.uri = "https://example.com/hubspot/action?x=a:b/c d%e";
    assert_int_equal(hash_hubspot_sign(HUBSPOT_SIG_V3, HS_SECRET, &dec, b, sizeof b), 0);
    assert_string_not_equal(a, b);
    /* Truncated escapes at the end are kept literally. */
    enc.uri = "https://example.com/%3";
    assert_int_equal(hash_hubspot_sign(HUBSPOT_SIG_V3, HS_SECRET, &enc, a, sizeof a), 0);
    /* v2 signs the URI exactly as sent. */
    enc.uri = "https://example.com/a%3Ab";
    dec.uri = "https://example.com/a:b";
    assert_int_equal(hash_hubspot_sign(HUBSPOT_SIG_V2, HS_SECRET, &enc, a, sizeof a), 0);
    assert_int_equal(hash_hubspot_sign(HUBSPOT_SIG_V2, HS_SECRET, &dec, b, sizeof b), 0);
    assert_string_not_equal(a, b);
}

static void verify_fails(const char *version, const char *secret, const struct hubspot_sig_req *r,
                         const char *sig, int64_t now, const char *want)
{
    char err[128] = "";
    assert_int_equal(hash_hubspot_verify(version, secret, r, sig, now, err, sizeof err), -1);
    assert_string_equal(err, want);
}

static void test_hubspot_verify(void **state)
{
    (void)state;
    char err[128];
    int64_t now = HS_TS_MS + 1000;

    assert_int_equal(hash_hubspot_verify("v1", HS_SECRET, &v1_req, HS_V1_SIG, 0, err, sizeof err),
                     0);
    assert_int_equal(hash_hubspot_verify("v2", HS_SECRET, &req, HS_V2_SIG, 0, err, sizeof err), 0);
    assert_int_equal(hash_hubspot_verify("v3", HS_SECRET, &req, HS_V3_SIG, now, err, sizeof err),
                     0);
    /* Hex is accepted in upper case too; base64 is case-sensitive. */
    assert_int_equal(hash_hubspot_verify("v2", HS_SECRET, &req,
                                         "6152FCDB22E0D0B605239FC0736D3953630A483E7A0DA706B2E7BD"
                                         "FFC86B438C",
                                         0, err, sizeof err),
                     0);
    verify_fails("v3", HS_SECRET, &req, "tJSwblaO3lD2C9IF+e8ZhOn+hdwTBnQR/Whzlpmmw/y=", now,
                 "signature mismatch");

    verify_fails("v4", HS_SECRET, &req, HS_V2_SIG, 0, "unsupported signature version");
    verify_fails("V2", HS_SECRET, &req, HS_V2_SIG, 0, "unsupported signature version");
    verify_fails("", HS_SECRET, &req, HS_V2_SIG, 0, "unsupported signature version");
    verify_fails(NULL, HS_SECRET, &req, HS_V2_SIG, 0, "unsupported signature version");
    verify_fails("v2", "", &req, HS_V2_SIG, 0, "missing secret");
    verify_fails("v2", NULL, &req, HS_V2_SIG, 0, "missing secret");
    verify_fails("v2", HS_SECRET, &req, "", 0, "missing signature");
    verify_fails("v2", HS_SECRET, &req, NULL, 0, "missing signature");

    /* Mismatches: another secret, body, method, URI; truncated, extended, flipped. */
    verify_fails("v2", "other", &req, HS_V2_SIG, 0, "signature mismatch");
    struct hubspot_sig_req r = req;
    r.body_len--;
    verify_fails("v2", HS_SECRET, &r, HS_V2_SIG, 0, "signature mismatch");
    verify_fails("v3", HS_SECRET, &r, HS_V3_SIG, now, "signature mismatch");
    r = req;
    r.method = "PUT";
    verify_fails("v3", HS_SECRET, &r, HS_V3_SIG, now, "signature mismatch");
    r = req;
    r.uri = "https://example.com/hubspot/action?x=1";
    verify_fails("v2", HS_SECRET, &r, HS_V2_SIG, 0, "signature mismatch");
    verify_fails("v1", HS_SECRET, &v1_req, HS_V2_SIG, 0, "signature mismatch");
    char sig[160];
    snprintf(sig, sizeof sig, "%.63s", HS_V2_SIG);
    verify_fails("v2", HS_SECRET, &req, sig, 0, "signature mismatch");
    snprintf(sig, sizeof sig, "%s0", HS_V2_SIG);
    verify_fails("v2", HS_SECRET, &req, sig, 0, "signature mismatch");
    snprintf(sig, sizeof sig, "%s%s", HS_V2_SIG, HS_V2_SIG);
    verify_fails("v2", HS_SECRET, &req, sig, 0, "signature mismatch");
    snprintf(sig, sizeof sig, "%s", HS_V2_SIG);
    sig[10] = sig[10] == '0' ? '1' : '0';
    verify_fails("v2", HS_SECRET, &req, sig, 0, "signature mismatch");
    /* v2 and v3 need the method and the URI. */
    verify_fails("v2", HS_SECRET, &v1_req, HS_V1_SIG, 0,
                 "cannot compute the signature "
                 "(bad request parts or libcrypto)");
}

static void test_hubspot_v3_timestamp_window(void **state)
{
    (void)state;
    char err[128];
    const int64_t ts = HS_TS_MS, w = HUBSPOT_SIG_MAX_SKEW_MS;

    assert_int_equal(w, 300000);
    assert_int_equal(hash_hubspot_verify("v3", HS_SECRET, &req, HS_V3_SIG, ts, err, sizeof err), 0);
    assert_int_equal(hash_hubspot_verify("v3", HS_SECRET, &req, HS_V3_SIG, ts + w, err, sizeof err),
                     0);
    assert_int_equal(hash_hubspot_verify("v3", HS_SECRET, &req, HS_V3_SIG, ts - w, err, sizeof err),
                     0);
    verify_fails("v3", HS_SECRET, &req, HS_V3_SIG, ts + w + 1, "stale timestamp");
    verify_fails("v3", HS_SECRET, &req, HS_V3_SIG, ts + 86400000, "stale timestamp");
    verify_fails("v3", HS_SECRET, &req, HS_V3_SIG, ts - w - 1, "timestamp in the future");
    /* Seconds instead of milliseconds look 53 years old. */
    struct hubspot_sig_req r = req;
    r.timestamp = "1700000000";
    verify_fails("v3", HS_SECRET, &r, HS_V3_SIG, ts, "stale timestamp");
    static const char *const bad[] = {
        "", "abc", "17000000000x", "-1700000000000", " 1700000000000", "1234567890123456", NULL};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r.timestamp = bad[i];
        verify_fails("v3", HS_SECRET, &r, HS_V3_SIG, ts, "missing or malformed timestamp");
    }
    /* The window is v3 only: v2 has no timestamp. */
    assert_int_equal(hash_hubspot_verify("v2", HS_SECRET, &req, HS_V2_SIG, 0, err, sizeof err), 0);
}

static void test_hubspot_version_parse(void **state)
{
    (void)state;
    enum hubspot_sig_version v = 0;
    assert_int_equal(hash_hubspot_version("v1", &v), 0);
    assert_int_equal(v, HUBSPOT_SIG_V1);
    assert_int_equal(hash_hubspot_version("v3", &v), 0);
    assert_int_equal(v, HUBSPOT_SIG_V3);
    assert_int_equal(hash_hubspot_version("v3 ", &v), -1);
    assert_int_equal(hash_hubspot_version(NULL, &v), -1);
    assert_int_equal(v, HUBSPOT_SIG_V3);
}

static void test_hex128(void **state)
{
    (void)state;
    char k[HASH_HEX128_LEN + 1], full[HASH_SHA256_HEX_LEN + 1];
    const char *email = "Ada.Lovelace@example.com";
    assert_int_equal(hash_hex128(email, strlen(email), k), 0);
    assert_string_equal(k, "9dee375ca4ae804ee58c8935ebe66318");
    assert_int_equal(hash_sha256_hex(email, strlen(email), full), 0);
    assert_memory_equal(k, full, HASH_HEX128_LEN);
    assert_int_equal(strlen(k), HASH_HEX128_LEN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_known_answers),
        cmocka_unit_test(test_sha256_threads),
        cmocka_unit_test(test_hmac_rfc4231),
        cmocka_unit_test(test_base64_rfc4648),
        cmocka_unit_test(test_base64url_unpadded),
        cmocka_unit_test(test_base64_decode),
        cmocka_unit_test(test_hex_and_ct_equal),
        cmocka_unit_test(test_hubspot_vectors),
        cmocka_unit_test(test_hubspot_v3_uri_decoding),
        cmocka_unit_test(test_hubspot_verify),
        cmocka_unit_test(test_hubspot_v3_timestamp_window),
        cmocka_unit_test(test_hubspot_version_parse),
        cmocka_unit_test(test_hex128),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
