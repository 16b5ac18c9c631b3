/* hash.c - digests, MACs and the identifiers built on them.
 *
 * Messages are hashed as a list of parts (struct part) fed to one streaming EVP context,
 * so a signature over METHOD + URI + body + timestamp never copies the body; SHA-256
 * reuses one context per thread (sha256_parts). HMAC goes
 * through EVP_MAC (the OpenSSL 3 interface; HMAC_CTX is deprecated); the EVP_MAC handle
 * is fetched once and shared, which OpenSSL allows across threads, while each call has its
 * own context. base64 and hex are written here rather than through EVP_EncodeBlock,
 * whose int length would need its own overflow guard.
 */
#include "common/hash.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "common/spare.h"

struct part {
    const void *p;
    size_t n;
};

/* The SHA-256 implementation, fetched once (EVP_sha256() would make every init look it
 * up again), and one digest context per thread, reused: a context of its own per call
 * cost three to four allocations per hash, and the worker hashes several keys an event.
 * The thread's context is its spare (common/spare.h, kept in AddressSanitizer builds too:
 * it is not released memory), freed when the thread exits. */
static EVP_MD *g_sha256;
static pthread_once_t g_sha256_once = PTHREAD_ONCE_INIT;

static void md_ctx_free(void *ctx)
{
    EVP_MD_CTX_free(ctx);
}

static __thread struct spare_set md_spare = {.free_fn = md_ctx_free};

static void sha256_fetch(void)
{
    g_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static int sha256_parts(const struct part *parts, size_t nparts, unsigned char out[HASH_SHA256_LEN])
{
    EVP_MD_CTX *ctx;
    unsigned int outl = 0;
    size_t cap;
    int rc = -1;

    pthread_once(&g_sha256_once, sha256_fetch);
    if (!g_sha256)
        return -1;
    if (!(ctx = spare_take(&md_spare, 0, 0, &cap)) && !(ctx = EVP_MD_CTX_new()))
        return -1;
    if (EVP_DigestInit_ex(ctx, g_sha256, NULL) != 1)
        goto out;
    for (size_t i = 0; i < nparts; i++)
        if (parts[i].n && EVP_DigestUpdate(ctx, parts[i].p, parts[i].n) != 1)
            goto out;
    if (EVP_DigestFinal_ex(ctx, out, &outl) != 1 || outl != HASH_SHA256_LEN)
        goto out;
    rc = 0;
out:
    if (!spare_put(&md_spare, 0, ctx, 1, 0)) /* the thread keeps it for the next hash */
        EVP_MD_CTX_free(ctx);
    return rc;
}

static EVP_MAC *g_hmac;
static pthread_once_t g_hmac_once = PTHREAD_ONCE_INIT;

static void hmac_fetch(void)
{
    g_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

static int hmac_sha256_parts(const void *key, size_t keylen, const struct part *parts,
                             size_t nparts, unsigned char out[HASH_SHA256_LEN])
{
    static const unsigned char nokey[1];
    EVP_MAC_CTX *ctx = NULL;
    OSSL_PARAM params[2];
    size_t outl = 0;
    int rc = -1;

    pthread_once(&g_hmac_once, hmac_fetch);
    if (!g_hmac || !(ctx = EVP_MAC_CTX_new(g_hmac)))
        goto out;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    /* A NULL key means "keep the previous key" to EVP_MAC_init; an empty key is valid. */
    if (EVP_MAC_init(ctx, keylen ? key : nokey, keylen, params) != 1)
        goto out;
    for (size_t i = 0; i < nparts; i++)
        if (parts[i].n && EVP_MAC_update(ctx, parts[i].p, parts[i].n) != 1)
            goto out;
    if (EVP_MAC_final(ctx, out, &outl, HASH_SHA256_LEN) != 1 || outl != HASH_SHA256_LEN)
        goto out;
    rc = 0;
out:
    EVP_MAC_CTX_free(ctx);
    return rc;
}

int hash_sha256(const void *data, size_t len, unsigned char out[HASH_SHA256_LEN])
{
    struct part p = {data, len};
    return sha256_parts(&p, 1, out);
}

int hash_sha256_hex(const void *data, size_t len, char out[HASH_SHA256_HEX_LEN + 1])
{
    unsigned char md[HASH_SHA256_LEN];
    if (hash_sha256(data, len, md) < 0)
        return -1;
    hash_hex(md, sizeof md, out);
    return 0;
}

int hash_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                     unsigned char out[HASH_SHA256_LEN])
{
    struct part p = {data, len};
    return hmac_sha256_parts(key, keylen, &p, 1, out);
}

void hash_hex(const void *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *u = in;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[u[i] >> 4];
        out[2 * i + 1] = digits[u[i] & 0xF];
    }
    out[2 * n] = '\0';
}

/* base64 of in[0..n) with alphabet abc, '=' padding when pad. out holds enough. */
static void base64_with(const char *abc, int pad, const unsigned char *u, size_t n, char *out)
{
    size_t o = 0, i = 0;

    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)u[i] << 16 | (uint32_t)u[i + 1] << 8 | u[i + 2];
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = abc[(v >> 6) & 63];
        out[o++] = abc[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)u[i] << 16 | (i + 1 < n ? (uint32_t)u[i + 1] << 8 : 0);
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = abc[(v >> 6) & 63];
        else if (pad)
            out[o++] = '=';
        if (pad)
            out[o++] = '=';
    }
    out[o] = '\0';
}

int hash_base64(const void *in, size_t n, char *out, size_t outsz)
{
    if (n > (SIZE_MAX - 1) / 4 * 3 - 2 || outsz < HASH_B64_LEN(n) + 1)
        return -1;
    base64_with("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 1, in, n, out);
    return 0;
}

int hash_base64url(const void *in, size_t n, char *out, size_t outsz)
{
    if (n > (SIZE_MAX - 1) / 4 * 3 - 2 || outsz < HASH_B64URL_LEN(n) + 1)
        return -1;
    base64_with("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", 0, in, n, out);
    return 0;
}

/* Value of a base64 character in either alphabet; 64 for '+' '/', 65 for '-' '_'
 * marks which alphabet it came from, -1 for anything else. */
static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : c == '-' ? 62 + 64 : c == '_' ? 63 + 64 : -1;
}

int hash_base64_decode(const char *in, size_t n, unsigned char *out, size_t outsz,
                       size_t *outlen)
{
    size_t o = 0, bits = 0, pad = 0, i;
    uint32_t acc = 0;
    int std = 0, url = 0;

    while (n > 0 && in[n - 1] == '=') { /* padding: only at the end, only to a quad */
        n--;
        pad++;
    }
    if (n % 4 == 1 || pad > 2 || (pad && (n + pad) % 4 != 0))
        return -1;
    for (i = 0; i < n; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        if (v >= 64) {
            url = 1;
            v -= 64;
        } else if (v >= 62) {
            std = 1;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == outsz)
                return -1;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if ((std && url) || acc != 0)
        return -1;
    *outlen = o;
    return 0;
}

int hash_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    if (alen != blen)
        return 0;
    return alen == 0 || CRYPTO_memcmp(a, b, alen) == 0;
}

/* ---- HubSpot signatures ------------------------------------------------------------ */

int hash_hubspot_version(const char *s, enum hubspot_sig_version *out)
{
    static const char *const names[] = {"v1", "v2", "v3"};
    for (int i = 0; s && i < 3; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum hubspot_sig_version)(HUBSPOT_SIG_V1 + i);
            return 0;
        }
    }
    return -1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The v3 URI rule: decode exactly the twelve listed escapes. None of the decoded
 * characters is '%' or a hex digit, so one left-to-right pass equals HubSpot's sequence
 * of global replacements. out must hold strlen(uri) + 1 bytes. */
static size_t v3_decode_uri(const char *uri, char *out)
{
    static const char decoded[] = ":/?@!$'()*,;";
    size_t o = 0;
    for (const char *p = uri; *p; p++) {
        int hi, lo;
        if (*p == '%' && (hi = hexval(p[1])) >= 0 && (lo = hexval(p[2])) >= 0 &&
            memchr(decoded, hi << 4 | lo, sizeof decoded - 1)) {
            out[o++] = (char)(hi << 4 | lo);
            p += 2;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    return o;
}

int hash_hubspot_sign(enum hubspot_sig_version v, const char *secret,
                      const struct hubspot_sig_req *req, char *out, size_t outsz)
{
    unsigned char md[HASH_SHA256_LEN];
    struct part parts[4];
    char *uri = NULL;
    int rc = -1;

    if (!secret || !req || !out || (req->body_len && !req->body))
        return -1;
    if (v != HUBSPOT_SIG_V1 && (!req->method || !req->uri))
        return -1;
    switch (v) {
    case HUBSPOT_SIG_V1:
    case HUBSPOT_SIG_V2:
        if (outsz < HASH_SHA256_HEX_LEN + 1)
            return -1;
        parts[0] = (struct part){secret, strlen(secret)};
        parts[1] = (struct part){req->body, req->body_len};
        if (v == HUBSPOT_SIG_V2) {
            parts[1] = (struct part){req->method, strlen(req->method)};
            parts[2] = (struct part){req->uri, strlen(req->uri)};
            parts[3] = (struct part){req->body, req->body_len};
        }
        if (sha256_parts(parts, v == HUBSPOT_SIG_V1 ? 2 : 4, md) < 0)
            return -1;
        hash_hex(md, sizeof md, out);
        return 0;
    case HUBSPOT_SIG_V3:
        if (!req->timestamp || outsz < HASH_B64_LEN(HASH_SHA256_LEN) + 1)
            return -1;
        uri = malloc(strlen(req->uri) + 1);
        if (!uri)
            return -1;
        parts[0] = (struct part){req->method, strlen(req->method)};
        parts[1] = (struct part){uri, v3_decode_uri(req->uri, uri)};
        parts[2] = (struct part){req->body, req->body_len};
        parts[3] = (struct part){req->timestamp, strlen(req->timestamp)};
        if (hmac_sha256_parts(secret, strlen(secret), parts, 4, md) == 0)
            rc = hash_base64(md, sizeof md, out, outsz);
        free(uri);
        return rc;
    }
    return -1;
}

/* Epoch milliseconds: 1 to 15 decimal digits (until the year 33658), nothing else. */
static int parse_ms(const char *s, int64_t *out)
{
    int64_t v = 0;
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 15)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int hash_hubspot_verify(const char *version, const char *secret, const struct hubspot_sig_req *req,
                        const char *signature, int64_t now_ms, char *errstr, size_t errsz)
{
    enum hubspot_sig_version v;
    char want[HUBSPOT_SIG_MAX], got[HUBSPOT_SIG_MAX];
    int64_t ts;
    size_t n;

    if (hash_hubspot_version(version, &v) < 0) {
        snprintf(errstr, errsz, "unsupported signature version");
        return -1;
    }
    if (!secret || !*secret) {
        snprintf(errstr, errsz, "missing secret");
        return -1;
    }
    if (!signature || !*signature) {
        snprintf(errstr, errsz, "missing signature");
        return -1;
    }
    if (v == HUBSPOT_SIG_V3) {
        if (!req || parse_ms(req->timestamp, &ts) < 0) {
            snprintf(errstr, errsz, "missing or malformed timestamp");
            return -1;
        }
        if (now_ms - ts > HUBSPOT_SIG_MAX_SKEW_MS) {
            snprintf(errstr, errsz, "stale timestamp");
            return -1;
        }
        if (ts - now_ms > HUBSPOT_SIG_MAX_SKEW_MS) {
            snprintf(errstr, errsz, "timestamp in the future");
            return -1;
        }
    }
    if (hash_hubspot_sign(v, secret, req, want, sizeof want) < 0) {
        snprintf(errstr, errsz, "cannot compute the signature (bad request parts or libcrypto)");
        return -1;
    }
    /* Hex is case-insensitive; base64 is not. Copying at most sizeof got - 1 bytes keeps
     * an over-long header a plain mismatch. */
    n = strnlen(signature, sizeof got);
    if (n >= sizeof got) {
        snprintf(errstr, errsz, "signature mismatch");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char c = signature[i];
        got[i] = (v != HUBSPOT_SIG_V3 && c >= 'A' && c <= 'F') ? (char)(c | 0x20) : c;
    }
    got[n] = '\0';
    if (!hash_ct_equal(want, strlen(want), got, n)) {
        snprintf(errstr, errsz, "signature mismatch");
        return -1;
    }
    return 0;
}

/* ---- derived identifiers ------------------------------------------------------------ */

int hash_hex128(const void *data, size_t len, char out[HASH_HEX128_LEN + 1])
{
    unsigned char md[HASH_SHA256_LEN];
    if (hash_sha256(data, len, md) < 0)
        return -1;
    hash_hex(md, HASH_HEX128_LEN / 2, out);
    return 0;
}
