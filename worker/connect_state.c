/* connect_state.c - signed, expiring tokens of the connect flows (see connect_state.h).
 *
 * Why text and not an encoded blob: every field has a grammar a strict parser can check
 * byte by byte before anything else is believed, the token stays URL-safe without
 * escaping, and an operator can read whose link or state it is. The MAC covers the text
 * exactly as sent, so there is no second encoding of the same fields to confuse.
 * Checks run grammar -> MAC -> purpose -> portal -> expiry: nothing about a token's
 * claims is used (or reported) before its MAC matched.
 */
#include "worker/connect_state.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "common/hash.h"

#define TOKEN_VERSION  "v1"
#define EXPIRES_DIGITS 15 /* epoch ms until the year 33658 */

static const char *const verdicts[] = {
    [CONNECT_OK] = "ok",
    [CONNECT_MALFORMED] = "malformed",
    [CONNECT_FORGED] = "forged",
    [CONNECT_WRONG_PURPOSE] = "wrong purpose",
    [CONNECT_WRONG_PORTAL] = "wrong portal",
    [CONNECT_EXPIRED] = "expired",
    [CONNECT_REPLAYED] = "replayed",
    [CONNECT_STORE_FAILED] = "store failed",
};

const char *connect_verdict_str(enum connect_verdict v)
{
    return (unsigned)v < sizeof verdicts / sizeof *verdicts ? verdicts[v] : "?";
}

/* ---- grammar ---------------------------------------------------------------------- */

static int purpose_ok(const char *s, size_t n)
{
    if (n == 0 || n > CONNECT_PURPOSE_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '-'))
            return 0;
    return 1;
}

static int b64url_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
            return 0;
    return 1;
}

/* Decimal digits s[0..n), 1..max of them, no leading zero (but "0"), into *out. */
static int decimal(const char *s, size_t n, size_t max, int64_t *out)
{
    int64_t v = 0;

    if (n == 0 || n > max || (n > 1 && s[0] == '0'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

enum { F_VERSION, F_PURPOSE, F_PORTAL, F_EXPIRES, F_NONCE, F_MAC, NFIELDS };

/* Splits token[0..len) at its dots into exactly NFIELDS fields and checks each one's
 * grammar. 1 with *c filled, else 0. */
static int parse(const char *token, size_t len, const char *f[NFIELDS], size_t fl[NFIELDS],
                 struct connect_claims *c)
{
    size_t k = 0, start = 0;

    if (!token || len == 0 || len > CONNECT_TOKEN_MAX)
        return 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && token[i] != '.')
            continue;
        if (k == NFIELDS)
            return 0;
        f[k] = token + start;
        fl[k++] = i - start;
        start = i + 1;
    }
    if (k != NFIELDS || fl[F_VERSION] != 2 || memcmp(f[F_VERSION], TOKEN_VERSION, 2) != 0 ||
        !purpose_ok(f[F_PURPOSE], fl[F_PURPOSE]) ||
        !decimal(f[F_PORTAL], fl[F_PORTAL], CONNECT_PORTAL_MAX, &c->portal) ||
        !decimal(f[F_EXPIRES], fl[F_EXPIRES], EXPIRES_DIGITS, &c->expires_ms) ||
        fl[F_NONCE] != CONNECT_NONCE_LEN || !b64url_ok(f[F_NONCE], fl[F_NONCE]) ||
        fl[F_MAC] != CONNECT_MAC_LEN || !b64url_ok(f[F_MAC], fl[F_MAC]))
        return 0;
    memcpy(c->purpose, f[F_PURPOSE], fl[F_PURPOSE]);
    c->purpose[fl[F_PURPOSE]] = '\0';
    memcpy(c->nonce, f[F_NONCE], CONNECT_NONCE_LEN);
    c->nonce[CONNECT_NONCE_LEN] = '\0';
    return 1;
}

/* base64url(HMAC(key, data[0..n))) into mac. 0, or -1 (libcrypto). */
static int mac_of(const struct connect_secret *k, const void *data, size_t n,
                  char mac[CONNECT_MAC_LEN + 1])
{
    unsigned char md[HASH_SHA256_LEN];

    if (hash_hmac_sha256(k->key, k->len, data, n, md) < 0)
        return -1;
    return hash_base64url(md, sizeof md, mac, CONNECT_MAC_LEN + 1);
}

/* ---- minting and checking ------------------------------------------------------------- */

int connect_token_mint(const struct connect_secret *k, const char *purpose, int64_t portal,
                       int64_t expires_ms, char *out, size_t outsz)
{
    unsigned char raw[CONNECT_NONCE_BYTES];
    char nonce[CONNECT_NONCE_LEN + 1], mac[CONNECT_MAC_LEN + 1];
    int n;

    if (!k || !k->key || !purpose || !purpose_ok(purpose, strlen(purpose)) || portal < 0 ||
        expires_ms <= 0 || expires_ms > 999999999999999LL)
        return -1;
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw ||
        hash_base64url(raw, sizeof raw, nonce, sizeof nonce) < 0)
        return -1;
    n = snprintf(out, outsz, TOKEN_VERSION ".%s.%lld.%lld.%s", purpose, (long long)portal,
                 (long long)expires_ms, nonce);
    if (n < 0 || (size_t)n + 1 + CONNECT_MAC_LEN >= outsz || mac_of(k, out, (size_t)n, mac) < 0) {
        if (outsz)
            out[0] = '\0';
        return -1;
    }
    snprintf(out + n, outsz - (size_t)n, ".%s", mac);
    return 0;
}

enum connect_verdict connect_token_check(const struct connect_secret *k, const char *token,
                                         size_t len, const char *purpose, int64_t portal,
                                         int64_t now_ms, struct connect_claims *out)
{
    const char *f[NFIELDS];
    size_t fl[NFIELDS];
    struct connect_claims c;
    char mac[CONNECT_MAC_LEN + 1];

    memset(&c, 0, sizeof c);
    if (!parse(token, len, f, fl, &c))
        return CONNECT_MALFORMED;
    /* the MAC covers everything before its dot */
    if (mac_of(k, token, (size_t)(f[F_MAC] - 1 - token), mac) < 0 ||
        !hash_ct_equal(mac, CONNECT_MAC_LEN, f[F_MAC], fl[F_MAC]))
        return CONNECT_FORGED;
    if (!purpose || strcmp(c.purpose, purpose) != 0)
        return CONNECT_WRONG_PURPOSE;
    if (portal >= 0 && c.portal != portal)
        return CONNECT_WRONG_PORTAL;
    if (c.expires_ms <= now_ms)
        return CONNECT_EXPIRED;
    if (out)
        *out = c;
    return CONNECT_OK;
}

enum connect_verdict connect_token_redeem(const struct connect_secret *k, const char *token,
                                          size_t len, const char *purpose, int64_t portal,
                                          int64_t now_ms, const struct connect_spend *sp,
                                          struct connect_claims *out, char *errstr, size_t errsz)
{
    struct connect_claims c;
    char e[256] = "";
    enum connect_verdict v = connect_token_check(k, token, len, purpose, portal, now_ms, &c);
    int r;

    if (v != CONNECT_OK)
        return v;
    r = sp->spend(sp->opaque, c.nonce, c.expires_ms, e, sizeof e);
    if (r < 0) {
        if (errstr && errsz)
            snprintf(errstr, errsz, "%s", e);
        return CONNECT_STORE_FAILED;
    }
    if (r == 0)
        return CONNECT_REPLAYED;
    if (out)
        *out = c;
    return CONNECT_OK;
}

/* ---- CSRF -------------------------------------------------------------------------- */

int connect_csrf(const struct connect_secret *k, const char *link, char out[CONNECT_CSRF_LEN + 1])
{
    char buf[CONNECT_TOKEN_MAX + 8];
    int n = snprintf(buf, sizeof buf, "csrf.%s", link ? link : "");

    out[0] = '\0';
    if (n < 0 || (size_t)n >= sizeof buf)
        return -1;
    return mac_of(k, buf, (size_t)n, out);
}

int connect_csrf_check(const struct connect_secret *k, const char *link, const char *csrf,
                       size_t len)
{
    char want[CONNECT_CSRF_LEN + 1];

    if (!csrf || connect_csrf(k, link, want) < 0)
        return 0;
    return hash_ct_equal(want, CONNECT_CSRF_LEN, csrf, len);
}
