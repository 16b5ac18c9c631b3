/* seal.h - values sealed at rest: AES-256-GCM with a key ring, as compact text.
 *
 * Owns: a struct seal_keyring (key ids and 32-byte keys, wiped when freed) and the text
 * format of a sealed value:
 *
 *   v1:<key id>:<base64url(nonce[12] | ciphertext | tag[16]), no padding>
 *
 * Printable ASCII without spaces, quotes or braces: safe as a Redis string, a hash field,
 * a Lua argument and in a log line (though a sealed value is never logged either).
 *
 * Invariants:
 *  - The first key of the ring seals; every key of the ring opens. A value names the key
 *    that sealed it, so rotation is: add the new key (opens only), move it first (seals),
 *    re-seal what is stored, drop the old key.
 *  - Every seal draws a fresh random 96-bit nonce (OpenSSL's CSPRNG), so one plaintext
 *    sealed twice gives two different texts: compare stored texts, never re-seal to
 *    compare. Random nonces are safe for about 2^32 seals per key (NIST SP 800-38D);
 *    tokens are written a few times an hour per tenant.
 *  - The associated data binds a value to where it is stored: "hsqb-seal-v1", the key id,
 *    the caller's name and field (NUL-separated). A value moved to another name or field
 *    (another tenant's key), or whose key id was edited, does not open (SEAL_EAUTH).
 *  - Key material never reaches errstr; messages name line numbers and key ids only.
 *
 * Leaf code: knows no Redis key layout; callers choose name and field.
 *
 * Thread-safety: a keyring is read-only after seal_keyring_parse() and may be used by any
 * number of threads at once; each call has its own cipher context.
 */
#ifndef HSQB_SEAL_H
#define HSQB_SEAL_H

#include <stddef.h>

#include "common/hash.h"

#define SEAL_KEY_LEN   32    /* AES-256 */
#define SEAL_NONCE_LEN 12    /* 96 bits, GCM's native IV length */
#define SEAL_TAG_LEN   16    /* 128-bit tag */
#define SEAL_KEYID_MAX 32    /* characters of a key id: [A-Za-z0-9_.-] */
#define SEAL_MAX_KEYS  16    /* keys in one ring */
#define SEAL_MAX_PLAIN 65536 /* bytes of one value */
#define SEAL_PREFIX    "v1:"

/* Characters of a sealed text for n plaintext bytes (key id at its longest), without
 * the NUL: buffers of SEAL_TEXT_LEN(n) + 1 always hold it. */
#define SEAL_TEXT_LEN(n)                                                                          \
    (sizeof SEAL_PREFIX - 1 + SEAL_KEYID_MAX + 1 +                                                \
     HASH_B64URL_LEN(SEAL_NONCE_LEN + (n) + SEAL_TAG_LEN))

struct seal_keyring;

/* Parses a key ring: one key per line, "<key id> <key>" where the key is 32 bytes in
 * base64 (standard or url alphabet, padding optional: `openssl rand -base64 32`); blank
 * lines and lines starting with '#' are skipped, CR before LF is ignored. The first key
 * seals. At most SEAL_MAX_KEYS keys, key ids unique. Returns the ring, or NULL with
 * errstr naming the line (never its key). Caller frees with seal_keyring_free(). */
struct seal_keyring *seal_keyring_parse(const char *text, char *errstr, size_t errsz);
/* Wipes and frees. NULL-safe. */
void seal_keyring_free(struct seal_keyring *k);
/* The key id that seals; borrowed from k. */
const char *seal_keyring_current(const struct seal_keyring *k);
/* 1 when k holds a key named id. */
int seal_keyring_has(const struct seal_keyring *k, const char *id);

/* 1 when the n bytes at s start like a sealed text (SEAL_PREFIX); anything else is a
 * value stored without sealing (by an older version, or without a key ring). */
int seal_is_sealed(const char *s, size_t n);
/* The key id of a sealed text into buf (bufsz > SEAL_KEYID_MAX is always enough): 0, or
 * -1 when s is not a well-formed sealed text. */
int seal_keyid_of(const char *s, size_t n, char *buf, size_t bufsz);

/* Seals n bytes of plain (n <= SEAL_MAX_PLAIN) with k's current key, bound to name and
 * field (neither NULL; "" allowed), into out as NUL-terminated text. 0, or -1 with errstr
 * (out too small, libcrypto failure). */
int seal_seal(const struct seal_keyring *k, const char *name, const char *field,
              const void *plain, size_t n, char *out, size_t outsz, char *errstr, size_t errsz);

enum seal_status {
    SEAL_OK = 0,
    SEAL_EFORMAT = -1,   /* not a well-formed sealed text */
    SEAL_EKEYID = -2,    /* sealed with a key id the ring does not hold */
    SEAL_EAUTH = -3,     /* the tag does not verify: wrong key, name or field, or tampered */
    SEAL_ESPACE = -4,    /* out too small */
    SEAL_EINTERNAL = -5, /* libcrypto failed */
};

/* Opens the sealed text (n bytes at text) bound to name and field into out, NUL-
 * terminated; *outlen (may be NULL) receives the plaintext length. On any failure out
 * holds "" and errstr says which (the key id, never a secret). */
enum seal_status seal_open(const struct seal_keyring *k, const char *name, const char *field,
                           const char *text, size_t n, char *out, size_t outsz, size_t *outlen,
                           char *errstr, size_t errsz);

#endif
