/* test_seal.c - values sealed at rest (common/seal.c): key ring parsing, round trips, a
 * text sealed by an independent implementation, and every way a sealed value must be
 * refused. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/seal.h"

/* Key 00 01 .. 1f; the text below was sealed by Python's cryptography AESGCM with nonce
 * a0..ab and the associated data seal.c builds for (k1, "oauth:{123}", "refresh_token"):
 * the format is a contract with every value already stored. */
#define KEY1     "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define KEY2     "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY" /* url alphabet, unpadded */
#define KNOWN    "v1:k1:oKGio6SlpqeoqaqrtExRXSmqa9FPEei4YhQuLCLfyibZdoAB2ANIMvRd"
#define NAME     "oauth:{123}"
#define FIELD    "refresh_token"
#define TEXT_MAX SEAL_TEXT_LEN(256)

static struct seal_keyring *ring(const char *text)
{
    char e[256];
    struct seal_keyring *k = seal_keyring_parse(text, e, sizeof e);
    if (!k)
        fail_msg("seal_keyring_parse: %s", e);
    return k;
}

static void test_keyring_parse(void **state)
{
    char e[256];
    struct seal_keyring *k;
    (void)state;

    k = ring("# rotation: new key first\r\n\n  k2 " KEY2 "\r\nk1\t" KEY1 "  \n");
    assert_string_equal(seal_keyring_current(k), "k2");
    assert_true(seal_keyring_has(k, "k1"));
    assert_false(seal_keyring_has(k, "k3"));
    seal_keyring_free(k);

    const char *bad[] = {
        "",                                             /* no key */
        "# only a comment\n",                           /* no key */
        "k1\n",                                         /* no key text */
        "k1 AAEC\n",                                    /* too short */
        "k1 " KEY1 "AAAA\n",                            /* too long */
        "k/1 " KEY1 "\n",                               /* bad id */
        "k1 " KEY1 "\nk1 " KEY2 "\n",                   /* id twice */
        "k1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh",  /* 31 bytes + leftover bits */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        e[0] = 0;
        assert_null(seal_keyring_parse(bad[i], e, sizeof e));
        assert_true(e[0]);
        assert_null(strstr(e, "AAECAwQF")); /* never the key */
    }
}

static void test_round_trip(void **state)
{
    struct seal_keyring *k = ring("k1 " KEY1 "\n");
    char text[TEXT_MAX + 1], out[300], e[256], id[SEAL_KEYID_MAX + 1];
    size_t len = 0;
    (void)state;

    assert_int_equal(seal_seal(k, NAME, FIELD, "RT-secret", 9, text, sizeof text, e, sizeof e), 0);
    assert_true(seal_is_sealed(text, strlen(text)));
    assert_null(strstr(text, "RT-secret"));
    assert_true(strlen(text) <= SEAL_TEXT_LEN(9));
    assert_true(strspn(text, "v1:k-_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") ==
                strlen(text));
    assert_int_equal(seal_keyid_of(text, strlen(text), id, sizeof id), 0);
    assert_string_equal(id, "k1");
    assert_int_equal(seal_open(k, NAME, FIELD, text, strlen(text), out, sizeof out, &len, e, sizeof e),
                     SEAL_OK);
    assert_string_equal(out, "RT-secret");
    assert_int_equal(len, 9);

    /* the empty value and the largest one */
    assert_int_equal(seal_seal(k, NAME, "", "", 0, text, sizeof text, e, sizeof e), 0);
    assert_int_equal(seal_open(k, NAME, "", text, strlen(text), out, sizeof out, &len, e, sizeof e),
                     SEAL_OK);
    assert_int_equal(len, 0);
    char *big = malloc(SEAL_MAX_PLAIN + 1), *bt = malloc(SEAL_TEXT_LEN(SEAL_MAX_PLAIN + 1) + 1);
    char *bo = malloc(SEAL_MAX_PLAIN + 1);
    assert_non_null(big);
    assert_non_null(bt);
    assert_non_null(bo);
    memset(big, 'x', SEAL_MAX_PLAIN + 1);
    assert_int_equal(seal_seal(k, NAME, FIELD, big, SEAL_MAX_PLAIN, bt,
                               SEAL_TEXT_LEN(SEAL_MAX_PLAIN) + 1, e, sizeof e),
                     0);
    assert_int_equal(seal_open(k, NAME, FIELD, bt, strlen(bt), bo, SEAL_MAX_PLAIN + 1, &len, e,
                               sizeof e),
                     SEAL_OK);
    assert_int_equal(len, SEAL_MAX_PLAIN);
    assert_memory_equal(bo, big, SEAL_MAX_PLAIN);
    assert_int_equal(seal_seal(k, NAME, FIELD, big, SEAL_MAX_PLAIN + 1, bt,
                               SEAL_TEXT_LEN(SEAL_MAX_PLAIN + 1) + 1, e, sizeof e),
                     -1);
    /* too small an output buffer: refused, nothing half-written */
    assert_int_equal(seal_seal(k, NAME, FIELD, "RT-secret", 9, text, 20, e, sizeof e), -1);
    assert_int_equal(seal_seal(k, NAME, FIELD, "RT-secret", 9, text, sizeof text, e, sizeof e), 0);
    assert_int_equal(seal_open(k, NAME, FIELD, text, strlen(text), out, 9, &len, e, sizeof e),
                     SEAL_ESPACE);
    assert_string_equal(out, "");
    free(big);
    free(bt);
    free(bo);
    seal_keyring_free(k);
}

static void test_known_text(void **state)
{
    struct seal_keyring *k = ring("k1 " KEY1);
    char out[64], e[256];
    (void)state;

    assert_int_equal(seal_open(k, NAME, FIELD, KNOWN, strlen(KNOWN), out, sizeof out, NULL, e,
                               sizeof e),
                     SEAL_OK);
    assert_string_equal(out, "RT-plain-token");
    seal_keyring_free(k);
}

/* Every change to a sealed value, its key id, or where it is said to live is refused. */
static void test_refused(void **state)
{
    struct seal_keyring *k = ring("k1 " KEY1), *other = ring("k1 " KEY2), *k2 = ring("k2 " KEY1);
    char t[sizeof KNOWN], out[64], e[256];
    size_t n = strlen(KNOWN);
    (void)state;

    /* wrong associated data: another realm's key, another field */
    assert_int_equal(seal_open(k, "oauth:{124}", FIELD, KNOWN, n, out, sizeof out, NULL, e, sizeof e),
                     SEAL_EAUTH);
    assert_string_equal(out, "");
    assert_non_null(strstr(e, "does not verify"));
    assert_int_equal(seal_open(k, NAME, "access_token", KNOWN, n, out, sizeof out, NULL, e, sizeof e),
                     SEAL_EAUTH);
    /* another key under the same id; an id the ring does not hold */
    assert_int_equal(seal_open(other, NAME, FIELD, KNOWN, n, out, sizeof out, NULL, e, sizeof e),
                     SEAL_EAUTH);
    assert_int_equal(seal_open(k2, NAME, FIELD, KNOWN, n, out, sizeof out, NULL, e, sizeof e),
                     SEAL_EKEYID);
    assert_non_null(strstr(e, "k1"));
    /* the same key under another id: the id is bound too */
    memcpy(t, KNOWN, sizeof t);
    t[4] = '2';
    assert_int_equal(seal_open(k2, NAME, FIELD, t, n, out, sizeof out, NULL, e, sizeof e),
                     SEAL_EAUTH);
    /* a flipped character in the nonce, the ciphertext, the tag */
    size_t at[] = {7, 6 + 20, n - 2};
    for (size_t i = 0; i < 3; i++) {
        memcpy(t, KNOWN, sizeof t);
        t[at[i]] = t[at[i]] == 'A' ? 'B' : 'A';
        assert_int_equal(seal_open(k, NAME, FIELD, t, n, out, sizeof out, NULL, e, sizeof e),
                         SEAL_EAUTH);
        assert_string_equal(out, "");
    }
    /* truncated (the tag cut short), too short for a tag, not base64, not sealed */
    assert_true(seal_open(k, NAME, FIELD, KNOWN, n - 4, out, sizeof out, NULL, e, sizeof e) < 0);
    assert_int_equal(seal_open(k, NAME, FIELD, "v1:k1:AAAA", 10, out, sizeof out, NULL, e, sizeof e),
                     SEAL_EFORMAT);
    assert_int_equal(seal_open(k, NAME, FIELD, "v1:k1:@@@@", 10, out, sizeof out, NULL, e, sizeof e),
                     SEAL_EFORMAT);
    assert_int_equal(seal_open(k, NAME, FIELD, "RT-plain", 8, out, sizeof out, NULL, e, sizeof e),
                     SEAL_EFORMAT);
    assert_false(seal_is_sealed("RT-plain", 8));
    assert_int_equal(seal_open(k, NAME, FIELD, "v1:", 3, out, sizeof out, NULL, e, sizeof e),
                     SEAL_EFORMAT);
    seal_keyring_free(k);
    seal_keyring_free(other);
    seal_keyring_free(k2);
}

/* Fresh nonces: one plaintext sealed many times never repeats a nonce or a text. */
static void test_nonce_unique(void **state)
{
    enum { N = 2000 };
    struct seal_keyring *k = ring("k1 " KEY1);
    char (*texts)[SEAL_TEXT_LEN(16) + 1] = calloc(N, sizeof *texts), e[256];
    (void)state;

    assert_non_null(texts);
    for (int i = 0; i < N; i++)
        assert_int_equal(seal_seal(k, NAME, FIELD, "same", 4, texts[i], sizeof texts[i], e, sizeof e),
                         0);
    /* the nonce is the first 16 base64url characters after "v1:k1:" (12 bytes) */
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            assert_true(memcmp(texts[i] + 6, texts[j] + 6, 16) != 0);
    free(texts);
    seal_keyring_free(k);
}

/* After rotation: the new key seals, the old one still opens its values. */
static void test_rotation(void **state)
{
    struct seal_keyring *old = ring("k1 " KEY1), *both = ring("k2 " KEY2 "\nk1 " KEY1);
    char t1[TEXT_MAX + 1], t2[TEXT_MAX + 1], out[64], e[256], id[SEAL_KEYID_MAX + 1];
    (void)state;

    assert_int_equal(seal_seal(old, NAME, FIELD, "tok", 3, t1, sizeof t1, e, sizeof e), 0);
    assert_int_equal(seal_seal(both, NAME, FIELD, "tok", 3, t2, sizeof t2, e, sizeof e), 0);
    assert_int_equal(seal_keyid_of(t2, strlen(t2), id, sizeof id), 0);
    assert_string_equal(id, "k2");
    assert_int_equal(seal_open(both, NAME, FIELD, t1, strlen(t1), out, sizeof out, NULL, e, sizeof e),
                     SEAL_OK);
    assert_string_equal(out, "tok");
    assert_int_equal(seal_open(old, NAME, FIELD, t2, strlen(t2), out, sizeof out, NULL, e, sizeof e),
                     SEAL_EKEYID);
    seal_keyring_free(old);
    seal_keyring_free(both);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keyring_parse), cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_known_text),    cmocka_unit_test(test_refused),
        cmocka_unit_test(test_nonce_unique),  cmocka_unit_test(test_rotation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
