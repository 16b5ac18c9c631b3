/* hash.h - SHA-256, HMAC-SHA-256, base64, constant-time comparison, HubSpot request
 * signatures, and fixed-size key parts derived from hashes.
 *
 * Owns: nothing the caller sees. All functions write into caller buffers; what outlives
 * a call is one SHA-256 context per thread that hashed (reused by its next hash, freed
 * when the thread exits) and the SHA-256 and HMAC implementations, fetched once. Built on OpenSSL 3 libcrypto's EVP interfaces (no deprecated SHA256_*
 * or HMAC_CTX calls).
 *
 * Invariants: hex output is lowercase; base64 is RFC 4648 standard alphabet with '='
 * padding, base64url its URL-safe alphabet without padding; every output string is
 * NUL-terminated. Secrets are never copied into errstr.
 *
 * Thread-safety: every function may be called from any thread concurrently.
 */
#ifndef HSQB_HASH_H
#define HSQB_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_SHA256_LEN     32
#define HASH_SHA256_HEX_LEN 64
/* Characters of base64 for n input bytes, excluding the NUL. */
#define HASH_B64_LEN(n) (4 * (((n) + 2) / 3))

/* SHA-256 of len bytes (data may be NULL when len is 0). 0 ok, -1 on a libcrypto failure. */
int hash_sha256(const void *data, size_t len, unsigned char out[HASH_SHA256_LEN]);
/* The same as 64 lowercase hex characters + NUL. */
int hash_sha256_hex(const void *data, size_t len, char out[HASH_SHA256_HEX_LEN + 1]);
/* HMAC-SHA-256 with a key of keylen bytes (empty keys are allowed). 0 ok / -1. */
int hash_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                     unsigned char out[HASH_SHA256_LEN]);

/* n bytes as 2n lowercase hex characters + NUL; out must hold 2n + 1 bytes. */
void hash_hex(const void *in, size_t n, char *out);
/* Standard base64 with padding. out must hold HASH_B64_LEN(n) + 1 bytes, else -1 and
 * nothing is written. Returns 0. */
int hash_base64(const void *in, size_t n, char *out, size_t outsz);
/* Characters of unpadded base64url for n input bytes, excluding the NUL. */
#define HASH_B64URL_LEN(n) ((4 * (n) + 2) / 3)
/* base64url (RFC 4648 section 5: '-' and '_' for '+' and '/'), without padding, for
 * values that travel in URLs and forms as they are. out must hold HASH_B64URL_LEN(n) + 1
 * bytes, else -1 and nothing is written. Returns 0. */
int hash_base64url(const void *in, size_t n, char *out, size_t outsz);
/* Decodes base64 (n characters of in): the standard alphabet with or without '='
 * padding, or base64url (either alphabet is accepted, not both in one text). Anything
 * else (whitespace, stray padding, leftover bits that are not zero) is refused. Writes
 * at most outsz bytes; *outlen receives the decoded length. 0, or -1 (nothing usable in
 * out). */
int hash_base64_decode(const char *in, size_t n, unsigned char *out, size_t outsz,
                       size_t *outlen);

/* 1 when the two buffers have the same length and bytes, else 0. Time depends only on the
 * lengths (which are treated as public), never on the contents. */
int hash_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* ---- HubSpot request signatures (as HubSpot documents them for app requests) -------
 * v1: hex(SHA-256(secret + body))
 * v2: hex(SHA-256(secret + METHOD + URI + body)), URI exactly as sent
 * v3: base64(HMAC-SHA-256(key = secret, METHOD + URI' + body + timestamp)), where URI'
 *     is the URI with %3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B decoded (hex digits
 *     in either case); no other escape is touched. */
enum hubspot_sig_version {
    HUBSPOT_SIG_V1 = 1,
    HUBSPOT_SIG_V2,
    HUBSPOT_SIG_V3,
};

/* Signatures older (or newer) than this, against the caller's clock, are refused. */
#define HUBSPOT_SIG_MAX_SKEW_MS 300000
/* Longest signature text (v1/v2 hex) + NUL. */
#define HUBSPOT_SIG_MAX 65

/* The signed parts of one request; all borrowed. method and uri must not be NULL for v2
 * and v3; body may be NULL when body_len is 0; timestamp (the X-HubSpot-Request-Timestamp
 * header, epoch milliseconds as decimal digits) is used by v3 only. */
struct hubspot_sig_req {
    const char *method;
    const char *uri;
    const void *body;
    size_t body_len;
    const char *timestamp;
};

/* "v1" / "v2" / "v3" (the X-HubSpot-Signature-Version values; exact, lowercase) to the
 * enum. 0 ok, -1 for anything else. */
int hash_hubspot_version(const char *s, enum hubspot_sig_version *out);

/* Compute the signature text of version v into out (outsz >= HUBSPOT_SIG_MAX is always
 * enough). 0 ok, -1 on a bad argument, a short buffer or a libcrypto failure. */
int hash_hubspot_sign(enum hubspot_sig_version v, const char *secret,
                      const struct hubspot_sig_req *req, char *out, size_t outsz);

/* Verify `signature` (the header value) for version string `version` ("v1", "v2", "v3").
 * For v3 the timestamp must be within HUBSPOT_SIG_MAX_SKEW_MS of now_ms (epoch ms) in
 * either direction; HubSpot's own clients only refuse old ones, we also refuse ones from
 * the future, which no honest sender produces with a sane clock. v1/v2 hex compares
 * case-insensitively. The final comparison is constant-time.
 * Returns 0 when valid; -1 with errstr one of: "unsupported signature version",
 * "missing secret", "missing signature", "missing or malformed timestamp",
 * "stale timestamp", "timestamp in the future", "signature mismatch", or an internal
 * failure. */
int hash_hubspot_verify(const char *version, const char *secret, const struct hubspot_sig_req *req,
                        const char *signature, int64_t now_ms, char *errstr, size_t errsz);

/* ---- derived identifiers ---------------------------------------------------------- */

/* Fixed-size key part for unbounded or untrusted text (e.g. an email in a Redis key):
 * the first 128 bits of SHA-256(data) as 32 lowercase hex characters + NUL. 128 bits keeps
 * the chance that two different inputs meet (which would map one contact to another's
 * customer) negligible: N^2 / 2^129. 0 ok / -1. */
#define HASH_HEX128_LEN 32
int hash_hex128(const void *data, size_t len, char out[HASH_HEX128_LEN + 1]);

#endif
