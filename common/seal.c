/* seal.c - AES-256-GCM sealing of values at rest (see seal.h for the format).
 *
 * GCM because it is authenticated (a flipped bit, a swapped key id or a value copied to
 * another tenant's slot is refused rather than decrypted into garbage) and libcrypto,
 * already linked for hashing, does it in hardware. The associated data is built per call
 * from the version, the key id and the caller's name and field, each NUL-terminated, so
 * no two different (key id, name, field) triples give one byte string.
 *
 * Each call makes its own EVP_CIPHER_CTX: cheap next to a Redis round trip, and it keeps
 * the ring immutable and shareable between threads.
 */
#include "common/seal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#define SEAL_AD_TAG   "hsqb-seal-v1"
#define SEAL_LINE_MAX 256 /* characters of one key ring line */

struct seal_key {
    char id[SEAL_KEYID_MAX + 1];
    unsigned char key[SEAL_KEY_LEN];
};

struct seal_keyring {
    struct seal_key keys[SEAL_MAX_KEYS];
    size_t n;
};

/* ---- the key ring ------------------------------------------------------------------- */

static int keyid_ok(const char *s, size_t n)
{
    if (n == 0 || n > SEAL_KEYID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", s[i]) ||
            !s[i])
            return 0;
    return 1;
}

/* One non-comment line (len characters, CR stripped) into k->keys[k->n]. */
static int parse_line(struct seal_keyring *k, const char *line, size_t len, int lineno,
                      char *errstr, size_t errsz)
{
    struct seal_key *key = &k->keys[k->n];
    size_t idlen = strcspn(line, " \t"), at = idlen, klen, got = 0;
    unsigned char raw[SEAL_KEY_LEN + 3];

    if (idlen > len)
        idlen = at = len;
    while (at < len && (line[at] == ' ' || line[at] == '\t'))
        at++;
    klen = len - at;
    while (klen && (line[at + klen - 1] == ' ' || line[at + klen - 1] == '\t'))
        klen--;
    if (!keyid_ok(line, idlen)) {
        snprintf(errstr, errsz,
                 "line %d: the key id must be 1..%d characters of [A-Za-z0-9_.-], then a "
                 "space and the key",
                 lineno, SEAL_KEYID_MAX);
        return -1;
    }
    if (k->n == SEAL_MAX_KEYS) {
        snprintf(errstr, errsz, "line %d: more than %d keys", lineno, SEAL_MAX_KEYS);
        return -1;
    }
    memcpy(key->id, line, idlen);
    key->id[idlen] = '\0';
    for (size_t i = 0; i < k->n; i++)
        if (strcmp(k->keys[i].id, key->id) == 0) {
            snprintf(errstr, errsz, "line %d: key id %s given twice", lineno, key->id);
            return -1;
        }
    if (hash_base64_decode(line + at, klen, raw, sizeof raw, &got) < 0 || got != SEAL_KEY_LEN) {
        explicit_bzero(raw, sizeof raw);
        snprintf(errstr, errsz,
                 "line %d (key %s): the key must be %d bytes in base64 (openssl rand -base64 "
                 "%d)",
                 lineno, key->id, SEAL_KEY_LEN, SEAL_KEY_LEN);
        return -1;
    }
    memcpy(key->key, raw, SEAL_KEY_LEN);
    explicit_bzero(raw, sizeof raw);
    k->n++;
    return 0;
}

struct seal_keyring *seal_keyring_parse(const char *text, char *errstr, size_t errsz)
{
    struct seal_keyring *k = calloc(1, sizeof *k);
    int lineno = 0;

    if (!k) {
        snprintf(errstr, errsz, "out of memory");
        return NULL;
    }
    for (const char *p = text ? text : ""; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p), skip = 0;

        lineno++;
        if (len && p[len - 1] == '\r')
            len--;
        while (skip < len && (p[skip] == ' ' || p[skip] == '\t'))
            skip++;
        if (skip < len && p[skip] != '#') {
            if (len - skip > SEAL_LINE_MAX) {
                snprintf(errstr, errsz, "line %d: longer than %d characters", lineno,
                         SEAL_LINE_MAX);
                goto fail;
            }
            if (parse_line(k, p + skip, len - skip, lineno, errstr, errsz) < 0)
                goto fail;
        }
        p += nl ? (size_t)(nl - p) + 1 : strlen(p);
    }
    if (k->n == 0) {
        snprintf(errstr, errsz, "no key (expected lines \"<key id> <base64 of %d bytes>\")",
                 SEAL_KEY_LEN);
        goto fail;
    }
    return k;
fail:
    seal_keyring_free(k);
    return NULL;
}

void seal_keyring_free(struct seal_keyring *k)
{
    if (!k)
        return;
    explicit_bzero(k, sizeof *k);
    free(k);
}

const char *seal_keyring_current(const struct seal_keyring *k)
{
    return k->keys[0].id;
}

static const struct seal_key *find(const struct seal_keyring *k, const char *id)
{
    for (size_t i = 0; i < k->n; i++)
        if (strcmp(k->keys[i].id, id) == 0)
            return &k->keys[i];
    return NULL;
}

int seal_keyring_has(const struct seal_keyring *k, const char *id)
{
    return find(k, id) != NULL;
}

/* ---- the text format ----------------------------------------------------------------- */

int seal_is_sealed(const char *s, size_t n)
{
    return n >= sizeof SEAL_PREFIX - 1 && memcmp(s, SEAL_PREFIX, sizeof SEAL_PREFIX - 1) == 0;
}

/* Splits a sealed text: key id (into id) and where the base64 starts. */
static int split(const char *s, size_t n, char *id, size_t idsz, const char **b64, size_t *b64len)
{
    const char *p, *colon;
    size_t idlen;

    if (!seal_is_sealed(s, n))
        return -1;
    p = s + sizeof SEAL_PREFIX - 1;
    if (!(colon = memchr(p, ':', n - (size_t)(p - s))))
        return -1;
    idlen = (size_t)(colon - p);
    if (!keyid_ok(p, idlen) || idlen >= idsz)
        return -1;
    memcpy(id, p, idlen);
    id[idlen] = '\0';
    *b64 = colon + 1;
    *b64len = n - (size_t)(*b64 - s);
    return 0;
}

int seal_keyid_of(const char *s, size_t n, char *buf, size_t bufsz)
{
    const char *b64;
    size_t b64len;

    return split(s, n, buf, bufsz, &b64, &b64len);
}

/* The associated data: tag, key id, name, field, each with its NUL. */
static unsigned char *make_ad(const char *id, const char *name, const char *field, size_t *len)
{
    size_t a = sizeof SEAL_AD_TAG, b = strlen(id) + 1, c = strlen(name) + 1, d = strlen(field) + 1;
    unsigned char *ad = malloc(a + b + c + d);

    if (!ad)
        return NULL;
    memcpy(ad, SEAL_AD_TAG, a);
    memcpy(ad + a, id, b);
    memcpy(ad + a + b, name, c);
    memcpy(ad + a + b + c, field, d);
    *len = a + b + c + d;
    return ad;
}

/* ---- AES-256-GCM ------------------------------------------------------------------------ */

/* enc 1: in = plaintext, out = ciphertext, tag written; enc 0: tag checked. 0, -1 on a
 * libcrypto failure, -2 when the tag does not verify. */
static int gcm(int enc, const unsigned char *key, const unsigned char *nonce,
               const unsigned char *ad, size_t adlen, const unsigned char *in, size_t n,
               unsigned char *out, unsigned char *tag)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int l = 0, rc = -1;

    if (!ctx || EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SEAL_NONCE_LEN, NULL) != 1 ||
        EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, enc) != 1 ||
        EVP_CipherUpdate(ctx, NULL, &l, ad, (int)adlen) != 1 ||
        (n && EVP_CipherUpdate(ctx, out, &l, in, (int)n) != 1))
        goto out;
    if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG_LEN, tag) != 1)
        goto out;
    if (EVP_CipherFinal_ex(ctx, out + n, &l) != 1) {
        rc = enc ? -1 : -2;
        goto out;
    }
    if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG_LEN, tag) != 1)
        goto out;
    rc = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int seal_seal(const struct seal_keyring *k, const char *name, const char *field,
              const void *plain, size_t n, char *out, size_t outsz, char *errstr, size_t errsz)
{
    const struct seal_key *key = &k->keys[0];
    size_t hdr = sizeof SEAL_PREFIX - 1 + strlen(key->id) + 1, rawlen = SEAL_NONCE_LEN + n +
                                                                       SEAL_TAG_LEN, adlen = 0;
    unsigned char *raw = NULL, *ad = NULL;
    int rc = -1;

    if (n > SEAL_MAX_PLAIN || outsz < hdr + HASH_B64URL_LEN(rawlen) + 1) {
        snprintf(errstr, errsz, "seal: value of %zu bytes does not fit", n);
        return -1;
    }
    if (!(raw = malloc(rawlen)) || !(ad = make_ad(key->id, name, field, &adlen))) {
        snprintf(errstr, errsz, "seal: out of memory");
        goto out;
    }
    if (RAND_bytes(raw, SEAL_NONCE_LEN) != 1 ||
        gcm(1, key->key, raw, ad, adlen, plain, n, raw + SEAL_NONCE_LEN,
            raw + SEAL_NONCE_LEN + n) < 0) {
        snprintf(errstr, errsz, "seal: libcrypto failed");
        goto out;
    }
    snprintf(out, outsz, SEAL_PREFIX "%s:", key->id);
    rc = hash_base64url(raw, rawlen, out + hdr, outsz - hdr);
    if (rc < 0)
        snprintf(errstr, errsz, "seal: value does not fit");
out:
    if (raw)
        explicit_bzero(raw, rawlen);
    free(raw);
    free(ad);
    return rc;
}

enum seal_status seal_open(const struct seal_keyring *k, const char *name, const char *field,
                           const char *text, size_t n, char *out, size_t outsz, size_t *outlen,
                           char *errstr, size_t errsz)
{
    char id[SEAL_KEYID_MAX + 1];
    const char *b64;
    const struct seal_key *key;
    size_t b64len, rawlen = 0, adlen = 0, plen;
    unsigned char *raw = NULL, *ad = NULL;
    enum seal_status st = SEAL_EFORMAT;
    int g;

    if (outsz)
        out[0] = '\0';
    if (split(text, n, id, sizeof id, &b64, &b64len) < 0) {
        snprintf(errstr, errsz, "not a sealed value");
        return SEAL_EFORMAT;
    }
    if (!(key = find(k, id))) {
        snprintf(errstr, errsz, "sealed with key %s, which the key ring does not hold", id);
        return SEAL_EKEYID;
    }
    if (b64len > HASH_B64URL_LEN(SEAL_NONCE_LEN + SEAL_MAX_PLAIN + SEAL_TAG_LEN) ||
        !(raw = malloc(b64len)) ||
        hash_base64_decode(b64, b64len, raw, b64len, &rawlen) < 0 ||
        rawlen < SEAL_NONCE_LEN + SEAL_TAG_LEN) {
        snprintf(errstr, errsz, "sealed value (key %s) is malformed", id);
        goto out;
    }
    plen = rawlen - SEAL_NONCE_LEN - SEAL_TAG_LEN;
    if (plen + 1 > outsz) {
        snprintf(errstr, errsz, "sealed value (key %s) too long for its buffer", id);
        st = SEAL_ESPACE;
        goto out;
    }
    if (!(ad = make_ad(id, name, field, &adlen))) {
        snprintf(errstr, errsz, "seal: out of memory");
        st = SEAL_EINTERNAL;
        goto out;
    }
    g = gcm(0, key->key, raw, ad, adlen, raw + SEAL_NONCE_LEN, plen, (unsigned char *)out,
            raw + SEAL_NONCE_LEN + plen);
    if (g < 0) {
        explicit_bzero(out, plen + 1);
        st = g == -2 ? SEAL_EAUTH : SEAL_EINTERNAL;
        snprintf(errstr, errsz, "%s (key %s)",
                 g == -2 ? "sealed value does not verify: tampered, or copied from another "
                           "key or field"
                         : "seal: libcrypto failed",
                 id);
        goto out;
    }
    out[plen] = '\0';
    if (outlen)
        *outlen = plen;
    st = SEAL_OK;
out:
    if (raw)
        explicit_bzero(raw, b64len);
    free(raw);
    free(ad);
    return st;
}
