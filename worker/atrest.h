/* atrest.h - tokens at rest in Redis: sealed when written, opened when read, values from
 * older versions re-written sealed.
 *
 * Owns: the policy between the Redis helpers that keep tokens (worker/oauth.c,
 * worker/hubspot_oauth.c, `credentials`) and common/seal.h, with the key ring of the
 * connection they use (redis_conn_keyring(), from redis.encryption_keys):
 *
 *   write:  a non-empty value is sealed for (key without the prefix, field); "" stays ""
 *           (empty means "none" in every token field, and is not secret). Without a key
 *           ring the value is written as given (the plain-text upgrade path).
 *   read:   sealed text   -> opened (ATREST_OK), or refused (ATREST_ENOKEY, ATREST_EBAD)
 *           other text    -> a value stored in plain text by an older version (or without a
 *                            key ring): ATREST_UNSEALED, the caller re-writes it sealed
 *                            (atrest_migrate); refused when redis.require_encryption is set
 *
 * What a value is bound to: the Redis key without redis.key_prefix (so a deployment may
 * change its prefix) and the hash field ("" for a string key). A value copied into
 * another realm's or portal's key does not open.
 *
 * Compare-and-set: Lua scripts that check "the stored token is still the one I read"
 * compare the stored TEXT (what they read back), never a freshly sealed value: each seal
 * draws a new nonce, so equal tokens give different texts. Callers keep the raw text next
 * to the opened token for that.
 *
 * Thread-safety: every call uses the caller's connection only; the key ring is shared
 * read-only.
 */
#ifndef HSQB_ATREST_H
#define HSQB_ATREST_H

#include <stddef.h>

#include "common/redis.h"
#include "common/seal.h"

/* Characters of the stored text of a token of n bytes (sealed or not), without the NUL. */
#define ATREST_STORED_MAX(n) SEAL_TEXT_LEN(n)

enum atrest_status {
    ATREST_OK = 0,       /* sealed and opened, or empty */
    ATREST_UNSEALED = 1, /* stored in plain text; out holds it; re-write it sealed */
    ATREST_ENOKEY = -1,  /* sealed with a key the ring lacks, or no ring: configuration */
    ATREST_EBAD = -2,    /* does not open (tampered, copied from another key or field,
                            malformed, too long), or plain text refused by
                            redis.require_encryption */
};

/* The stored form of plain for field ("" for a string key) of key (the whole Redis key,
 * prefix included) into out (outsz > ATREST_STORED_MAX(strlen(plain)) is always enough).
 * 0, or -1 with errstr. */
int atrest_seal(struct redis_conn *r, const char *key, const char *field, const char *plain,
                char *out, size_t outsz, char *errstr, size_t errsz);

/* Opens stored (len bytes; NULL or len 0: nothing stored) into out, NUL-terminated ("" on
 * any failure). errstr says why it failed (never a secret). */
enum atrest_status atrest_open(struct redis_conn *r, const char *key, const char *field,
                               const char *stored, size_t len, char *out, size_t outsz,
                               char *errstr, size_t errsz);

/* After ATREST_UNSEALED: when the connection has a key ring, replaces the value stored at
 * key/field by plain sealed, only while it still holds was (compare-and-set; a string
 * key keeps its TTL). On success was (wassz bytes) is set to the new stored text, so the
 * caller's own compare-and-set still matches. 1 replaced, 0 not (no key ring, or the
 * value changed meanwhile: was untouched), -1 with errstr. */
int atrest_migrate(struct redis_conn *r, const char *key, const char *field, const char *plain,
                   char *was, size_t wassz, char *errstr, size_t errsz);

/* `credentials reencrypt`: the value stored at key/field re-written under the ring's
 * current key when it is in plain text or sealed with another key (compare-and-set).
 * Plain text is read here even with redis.require_encryption. */
enum atrest_reseal {
    ATREST_RESEAL_CURRENT = 0, /* already sealed with the current key, or nothing stored */
    ATREST_RESEAL_DONE = 1,    /* re-written */
    ATREST_RESEAL_RACE = 2,    /* changed meanwhile (written by a worker: sealed anew) */
    ATREST_RESEAL_ERROR = -1,  /* does not open, or Redis failed: errstr */
};
enum atrest_reseal atrest_reseal(struct redis_conn *r, const char *key, const char *field,
                                 char *errstr, size_t errsz);

#endif
