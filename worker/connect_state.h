/* connect_state.h - the signed values of the connect flows: OAuth `state`, connect links
 * and the CSRF tokens of their forms. Pure: no I/O but getrandom() for nonces.
 *
 * Owns: the token format and its checks. A token is
 *
 *   v1.<purpose>.<portal>.<expires_ms>.<nonce>.<mac>
 *     purpose     [a-z-], 1..CONNECT_PURPOSE_MAX: what the token may be used for
 *                 (CONNECT_PURPOSE_*); a token of one purpose never passes for another
 *     portal      the HubSpot portal id, decimal without leading zeros; 0 = none yet
 *                 (the HubSpot install learns it from HubSpot)
 *     expires_ms  epoch milliseconds, decimal
 *     nonce       CONNECT_NONCE_BYTES random bytes, base64url (CONNECT_NONCE_LEN chars)
 *     mac         base64url(HMAC-SHA-256(secret, every byte before ".<mac>"))
 *
 * Every character is URL-safe, so a token goes into a query string or a form as it is.
 * The portal is readable on purpose (it is no secret, and an operator reading a log or a
 * URL should see whose link it is); the MAC makes every field tamper-evident.
 *
 * Verification (connect_token_check), in this order, each answer its own verdict: the
 * grammar of every field (CONNECT_MALFORMED), the MAC compared in constant time
 * (CONNECT_FORGED), the purpose, the portal, the expiry. Single use (the OAuth states):
 * connect_token_redeem() then spends the nonce through the caller's store (the ingress:
 * Redis SET NX, worker/connect.c); a nonce spent before is CONNECT_REPLAYED. Links are
 * not spent: one link serves the connect button and the disconnect form for its 15
 * minutes.
 *
 * CSRF: a form reached through a link carries base64url(HMAC-SHA-256(secret, "csrf." +
 * link)): bound to that one link, valid as long as it is, and worthless without it.
 *
 * Thread-safety: every function may be called from any thread; nothing is shared.
 */
#ifndef HSQB_CONNECT_STATE_H
#define HSQB_CONNECT_STATE_H

#include <stddef.h>
#include <stdint.h>

#define CONNECT_SECRET_MIN   32 /* bytes of ingress.session_secret */
#define CONNECT_PURPOSE_MAX  16
#define CONNECT_NONCE_BYTES  16
#define CONNECT_NONCE_LEN    22 /* base64url of CONNECT_NONCE_BYTES */
#define CONNECT_MAC_LEN      43 /* base64url of HMAC-SHA-256 */
#define CONNECT_CSRF_LEN     43
#define CONNECT_PORTAL_MAX   18  /* digits of a portal id (fits int64) */
#define CONNECT_TOKEN_MAX    160 /* characters of a token; more is CONNECT_MALFORMED */
#define CONNECT_STATE_TTL_MS (10 * 60 * 1000LL) /* an OAuth state */
#define CONNECT_LINK_TTL_MS  (15 * 60 * 1000LL) /* a connect link */
#define CONNECT_SESSION_TTL_MS (60 * 60 * 1000LL) /* a settings page's session */

/* The purposes the ingress mints. */
#define CONNECT_PURPOSE_QBO     "qbo-connect"     /* state of Intuit's consent round trip */
#define CONNECT_PURPOSE_HUBSPOT "hubspot-install" /* state of HubSpot's */
#define CONNECT_PURPOSE_LINK    "link"            /* proves the portal to /qbo/connect */
#define CONNECT_PURPOSE_SIGNIN  "hubspot-signin"  /* state of a settings page's sign-in */
#define CONNECT_PURPOSE_SESSION "session"         /* a settings page's session cookie */

/* The key: ingress.session_secret's bytes, borrowed. */
struct connect_secret {
    const void *key;
    size_t len;
};

/* What a token says once it verified. */
struct connect_claims {
    char purpose[CONNECT_PURPOSE_MAX + 1];
    int64_t portal;
    int64_t expires_ms;
    char nonce[CONNECT_NONCE_LEN + 1];
};

enum connect_verdict {
    CONNECT_OK = 0,
    CONNECT_MALFORMED,     /* not a token at all (empty, too long, a field's grammar) */
    CONNECT_FORGED,        /* the MAC does not match: tampered, or another secret */
    CONNECT_WRONG_PURPOSE, /* a genuine token meant for something else */
    CONNECT_WRONG_PORTAL,  /* a genuine token of another portal */
    CONNECT_EXPIRED,
    CONNECT_REPLAYED,     /* its nonce was spent before */
    CONNECT_STORE_FAILED, /* the spend store could not answer (retry later) */
};

/* "ok", "malformed", "forged", "wrong purpose", "wrong portal", "expired", "replayed",
 * "store failed". */
const char *connect_verdict_str(enum connect_verdict v);

/* Mints a token for purpose (CONNECT_PURPOSE_* or any [a-z-]{1,16}), portal (>= 0) and
 * expires_ms into out (outsz > CONNECT_TOKEN_MAX is always enough), with a fresh random
 * nonce. 0, or -1 on a bad argument, a short buffer or no randomness. */
int connect_token_mint(const struct connect_secret *k, const char *purpose, int64_t portal,
                       int64_t expires_ms, char *out, size_t outsz);

/* Verifies token[0..len) (untrusted bytes, not NUL-terminated; never crashes: fuzzed by
 * tests/fuzz/fuzz_connect_state.c): it must be well formed, carry our MAC, name purpose
 * and, when portal >= 0, that portal, and expire after now_ms. CONNECT_OK fills *out
 * (may be NULL); any other verdict leaves it untouched. Does not spend the nonce. */
enum connect_verdict connect_token_check(const struct connect_secret *k, const char *token,
                                         size_t len, const char *purpose, int64_t portal,
                                         int64_t now_ms, struct connect_claims *out);

/* Where single-use tokens spend their nonces. spend() records nonce until expires_ms
 * (epoch ms) and returns 1 when it was not recorded before, 0 when it was (a replay), -1
 * with errstr when the store failed. */
struct connect_spend {
    void *opaque;
    int (*spend)(void *opaque, const char *nonce, int64_t expires_ms, char *errstr, size_t errsz);
};

/* connect_token_check(), then spends the nonce through sp: CONNECT_OK exactly once per
 * token. CONNECT_STORE_FAILED copies the store's error into errstr (may be NULL). */
enum connect_verdict connect_token_redeem(const struct connect_secret *k, const char *token,
                                          size_t len, const char *purpose, int64_t portal,
                                          int64_t now_ms, const struct connect_spend *sp,
                                          struct connect_claims *out, char *errstr, size_t errsz);

/* The CSRF token of forms reached through link into out. 0, or -1 (libcrypto failed). */
int connect_csrf(const struct connect_secret *k, const char *link, char out[CONNECT_CSRF_LEN + 1]);
/* 1 when csrf[0..len) is link's CSRF token (constant-time compare), else 0. */
int connect_csrf_check(const struct connect_secret *k, const char *link, const char *csrf,
                       size_t len);

#endif
