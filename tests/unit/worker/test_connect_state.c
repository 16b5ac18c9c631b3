/* test_connect_state.c - the signed tokens of the connect flows (worker/connect_state.c):
 * what a forger, a replayer or a slow user would run into. A good state passes once and
 * says whose it is; a tampered byte anywhere, another secret, a state used for another
 * purpose or portal, an expired one and a replayed one are each refused with their own
 * verdict; the CSRF token of a form belongs to one link. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "worker/connect_state.h"

#define NOW    1796613700604LL /* 2026-12-07T03:21:40.604Z */
#define PORTAL 102670506

static const char secret[] = "0123456789abcdef0123456789abcdef-test-secret";
static const struct connect_secret K = {secret, sizeof secret - 1};

static void mint(const char *purpose, int64_t portal, int64_t expires,
                 char tok[CONNECT_TOKEN_MAX + 1])
{
    assert_int_equal(connect_token_mint(&K, purpose, portal, expires, tok, CONNECT_TOKEN_MAX + 1),
                     0);
}

static enum connect_verdict check(const char *tok, const char *purpose, int64_t portal,
                                  struct connect_claims *c)
{
    return connect_token_check(&K, tok, strlen(tok), purpose, portal, NOW, c);
}

static void test_good_state_says_whose_it_is(void **state)
{
    char tok[CONNECT_TOKEN_MAX + 1], again[CONNECT_TOKEN_MAX + 1];
    struct connect_claims c;
    (void)state;

    mint(CONNECT_PURPOSE_QBO, PORTAL, NOW + CONNECT_STATE_TTL_MS, tok);
    assert_true(strlen(tok) <= CONNECT_TOKEN_MAX);
    assert_int_equal(strncmp(tok, "v1.qbo-connect.102670506.", 25), 0);
    /* URL-safe as it is: nothing to escape in a query string */
    assert_int_equal(
        strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."),
        strlen(tok));
    assert_int_equal(check(tok, CONNECT_PURPOSE_QBO, PORTAL, &c), CONNECT_OK);
    assert_string_equal(c.purpose, CONNECT_PURPOSE_QBO);
    assert_int_equal(c.portal, PORTAL);
    assert_int_equal(c.expires_ms, NOW + CONNECT_STATE_TTL_MS);
    assert_int_equal(strlen(c.nonce), CONNECT_NONCE_LEN);
    /* any portal (-1): the HubSpot install learns it later */
    assert_int_equal(check(tok, CONNECT_PURPOSE_QBO, -1, NULL), CONNECT_OK);
    /* two states never share a nonce */
    mint(CONNECT_PURPOSE_QBO, PORTAL, NOW + CONNECT_STATE_TTL_MS, again);
    assert_string_not_equal(tok, again);
    /* portal 0: no portal yet */
    mint(CONNECT_PURPOSE_HUBSPOT, 0, NOW + 1, again);
    assert_int_equal(check(again, CONNECT_PURPOSE_HUBSPOT, 0, &c), CONNECT_OK);
    assert_int_equal(c.portal, 0);
}

static void test_tampered_or_foreign_is_forged(void **state)
{
    char tok[CONNECT_TOKEN_MAX + 1], t[CONNECT_TOKEN_MAX + 1], other[CONNECT_TOKEN_MAX + 1];
    static const char other_secret[] = "another-deployment-secret-0123456789abcdef";
    struct connect_secret k2 = {other_secret, sizeof other_secret - 1};
    size_t n;
    (void)state;

    mint(CONNECT_PURPOSE_QBO, PORTAL, NOW + CONNECT_STATE_TTL_MS, tok);
    n = strlen(tok);
    /* every byte changed to another byte of the same field's alphabet: still well formed,
     * never accepted */
    for (size_t i = 0; i < n; i++) {
        if (tok[i] == '.' || (i < 2))
            continue;
        memcpy(t, tok, n + 1);
        t[i] = tok[i] >= '0' && tok[i] <= '8' ? (char)(tok[i] + 1)
               : tok[i] == '9'                ? '8'
               : tok[i] == 'a'                ? 'b'
               : tok[i] == '-'                ? (i < 16 ? 'x' : '_')
                                              : 'a';
        if (strcmp(t, tok) == 0)
            t[i] = 'c';
        enum connect_verdict v = check(t, CONNECT_PURPOSE_QBO, PORTAL, NULL);
        if (v != CONNECT_FORGED && v != CONNECT_MALFORMED)
            fail_msg("byte %zu changed (%s): %s", i, t, connect_verdict_str(v));
    }
    /* another portal's id put in: the MAC no longer matches */
    snprintf(t, sizeof t, "v1.qbo-connect.243987001%s", tok + strlen("v1.qbo-connect.102670506"));
    assert_int_equal(check(t, CONNECT_PURPOSE_QBO, 243987001, NULL), CONNECT_FORGED);
    /* a later expiry put in */
    memcpy(t, tok, n + 1);
    t[strlen("v1.qbo-connect.102670506.")] = '9';
    assert_int_equal(check(t, CONNECT_PURPOSE_QBO, PORTAL, NULL), CONNECT_FORGED);
    /* minted with another secret */
    assert_int_equal(
        connect_token_mint(&k2, CONNECT_PURPOSE_QBO, PORTAL, NOW + 1000, other, sizeof other), 0);
    assert_int_equal(check(other, CONNECT_PURPOSE_QBO, PORTAL, NULL), CONNECT_FORGED);
}

static void test_malformed(void **state)
{
    char tok[CONNECT_TOKEN_MAX + 1], t[2 * CONNECT_TOKEN_MAX];
    (void)state;

    mint(CONNECT_PURPOSE_LINK, PORTAL, NOW + 1000, tok);
    assert_int_equal(check("", CONNECT_PURPOSE_LINK, PORTAL, NULL), CONNECT_MALFORMED);
    assert_int_equal(check("v1", CONNECT_PURPOSE_LINK, PORTAL, NULL), CONNECT_MALFORMED);
    assert_int_equal(check("v1.link.1.2.3.4", CONNECT_PURPOSE_LINK, 1, NULL), CONNECT_MALFORMED);
    /* a field too many, a missing one, a leading zero, the wrong version */
    snprintf(t, sizeof t, "%s.x", tok);
    assert_int_equal(check(t, CONNECT_PURPOSE_LINK, PORTAL, NULL), CONNECT_MALFORMED);
    snprintf(t, sizeof t, "v1.102670506%s", tok + strlen("v1.link.102670506"));
    assert_int_equal(check(t, CONNECT_PURPOSE_LINK, PORTAL, NULL), CONNECT_MALFORMED);
    snprintf(t, sizeof t, "v1.link.0102670506%s", tok + strlen("v1.link.102670506"));
    assert_int_equal(check(t, CONNECT_PURPOSE_LINK, PORTAL, NULL), CONNECT_MALFORMED);
    snprintf(t, sizeof t, "v2%s", tok + 2);
    assert_int_equal(check(t, CONNECT_PURPOSE_LINK, PORTAL, NULL), CONNECT_MALFORMED);
    /* base64url only: '=' padding, '+' or '/' are not ours */
    memcpy(t, tok, strlen(tok) + 1);
    t[strlen(t) - 1] = '=';
    assert_int_equal(check(t, CONNECT_PURPOSE_LINK, PORTAL, NULL), CONNECT_MALFORMED);
    /* a NUL inside the checked length */
    memcpy(t, tok, strlen(tok) + 1);
    t[5] = '\0';
    assert_int_equal(
        connect_token_check(&K, t, strlen(tok), CONNECT_PURPOSE_LINK, PORTAL, NOW, NULL),
        CONNECT_MALFORMED);
    /* longer than any token */
    memset(t, 'a', sizeof t - 1);
    t[sizeof t - 1] = '\0';
    assert_int_equal(check(t, CONNECT_PURPOSE_LINK, PORTAL, NULL), CONNECT_MALFORMED);
    assert_int_equal(connect_token_check(&K, NULL, 0, CONNECT_PURPOSE_LINK, PORTAL, NOW, NULL),
                     CONNECT_MALFORMED);
    /* minting refuses what it could not verify */
    assert_int_equal(connect_token_mint(&K, "Bad Purpose", 1, NOW, t, sizeof t), -1);
    assert_int_equal(connect_token_mint(&K, "link", -1, NOW, t, sizeof t), -1);
    assert_int_equal(connect_token_mint(&K, "link", 1, NOW, t, 40), -1);
}

static void test_wrong_purpose_or_portal(void **state)
{
    char link[CONNECT_TOKEN_MAX + 1], st[CONNECT_TOKEN_MAX + 1];
    (void)state;

    mint(CONNECT_PURPOSE_LINK, PORTAL, NOW + CONNECT_LINK_TTL_MS, link);
    mint(CONNECT_PURPOSE_HUBSPOT, 0, NOW + CONNECT_STATE_TTL_MS, st);
    /* a connect link is no OAuth state, and a HubSpot state no QuickBooks state */
    assert_int_equal(check(link, CONNECT_PURPOSE_QBO, PORTAL, NULL), CONNECT_WRONG_PURPOSE);
    assert_int_equal(check(st, CONNECT_PURPOSE_QBO, -1, NULL), CONNECT_WRONG_PURPOSE);
    assert_int_equal(check(st, NULL, -1, NULL), CONNECT_WRONG_PURPOSE);
    /* one portal's link does not open another's */
    assert_int_equal(check(link, CONNECT_PURPOSE_LINK, 243987001, NULL), CONNECT_WRONG_PORTAL);
}

static void test_expired(void **state)
{
    char tok[CONNECT_TOKEN_MAX + 1];
    (void)state;

    mint(CONNECT_PURPOSE_QBO, PORTAL, NOW, tok);
    assert_int_equal(check(tok, CONNECT_PURPOSE_QBO, PORTAL, NULL), CONNECT_EXPIRED);
    mint(CONNECT_PURPOSE_QBO, PORTAL, NOW + 1, tok);
    assert_int_equal(check(tok, CONNECT_PURPOSE_QBO, PORTAL, NULL), CONNECT_OK);
    assert_int_equal(
        connect_token_check(&K, tok, strlen(tok), CONNECT_PURPOSE_QBO, PORTAL, NOW + 1, NULL),
        CONNECT_EXPIRED);
}

/* An in-memory spend store: the nonces seen, and a switch to make it fail. */
struct seen {
    char nonce[8][CONNECT_NONCE_LEN + 1];
    size_t n;
    int broken;
    int64_t last_expiry;
};

static int spend(void *opaque, const char *nonce, int64_t expires_ms, char *errstr, size_t errsz)
{
    struct seen *s = opaque;

    if (s->broken) {
        snprintf(errstr, errsz, "store down");
        return -1;
    }
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->nonce[i], nonce) == 0)
            return 0;
    snprintf(s->nonce[s->n++], sizeof s->nonce[0], "%s", nonce);
    s->last_expiry = expires_ms;
    return 1;
}

static void test_replayed(void **state)
{
    struct seen s = {0};
    struct connect_spend sp = {&s, spend};
    char tok[CONNECT_TOKEN_MAX + 1], forged[CONNECT_TOKEN_MAX + 1], e[64] = "";
    struct connect_claims c;
    (void)state;

    mint(CONNECT_PURPOSE_QBO, PORTAL, NOW + CONNECT_STATE_TTL_MS, tok);
    assert_int_equal(connect_token_redeem(&K, tok, strlen(tok), CONNECT_PURPOSE_QBO, PORTAL, NOW,
                                          &sp, &c, e, sizeof e),
                     CONNECT_OK);
    assert_int_equal(s.last_expiry, NOW + CONNECT_STATE_TTL_MS);
    assert_int_equal(connect_token_redeem(&K, tok, strlen(tok), CONNECT_PURPOSE_QBO, PORTAL, NOW,
                                          &sp, &c, e, sizeof e),
                     CONNECT_REPLAYED);
    /* nothing is spent for a token that does not verify */
    memcpy(forged, tok, sizeof tok);
    forged[strlen(forged) - 2] = forged[strlen(forged) - 2] == 'A' ? 'B' : 'A';
    assert_int_equal(connect_token_redeem(&K, forged, strlen(forged), CONNECT_PURPOSE_QBO, PORTAL,
                                          NOW, &sp, &c, e, sizeof e),
                     CONNECT_FORGED);
    assert_int_equal(s.n, 1);
    /* the store down: neither accepted nor called a replay */
    s.broken = 1;
    mint(CONNECT_PURPOSE_QBO, PORTAL, NOW + CONNECT_STATE_TTL_MS, tok);
    assert_int_equal(connect_token_redeem(&K, tok, strlen(tok), CONNECT_PURPOSE_QBO, PORTAL, NOW,
                                          &sp, &c, e, sizeof e),
                     CONNECT_STORE_FAILED);
    assert_string_equal(e, "store down");
}

static void test_csrf_belongs_to_one_link(void **state)
{
    char link[CONNECT_TOKEN_MAX + 1], other[CONNECT_TOKEN_MAX + 1], csrf[CONNECT_CSRF_LEN + 1];
    (void)state;

    mint(CONNECT_PURPOSE_LINK, PORTAL, NOW + CONNECT_LINK_TTL_MS, link);
    mint(CONNECT_PURPOSE_LINK, PORTAL, NOW + CONNECT_LINK_TTL_MS, other);
    assert_int_equal(connect_csrf(&K, link, csrf), 0);
    assert_int_equal(strlen(csrf), CONNECT_CSRF_LEN);
    assert_true(connect_csrf_check(&K, link, csrf, strlen(csrf)));
    assert_false(connect_csrf_check(&K, other, csrf, strlen(csrf)));
    assert_false(connect_csrf_check(&K, link, csrf, strlen(csrf) - 1));
    assert_false(connect_csrf_check(&K, link, "", 0));
    assert_false(connect_csrf_check(&K, link, NULL, 0));
    csrf[0] = csrf[0] == 'A' ? 'B' : 'A';
    assert_false(connect_csrf_check(&K, link, csrf, strlen(csrf)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_state_says_whose_it_is),
        cmocka_unit_test(test_tampered_or_foreign_is_forged),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_wrong_purpose_or_portal),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_replayed),
        cmocka_unit_test(test_csrf_belongs_to_one_link),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
