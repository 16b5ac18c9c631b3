/* ingress_sign.h - who may call the ingress's HubSpot routes: the public URL the
 * signatures cover, the app's client secrets (rotation: every listed secret is tried),
 * the v3/v2 check of a request, and the rate-limited log of refusals.
 *
 * Owns: copies of the secrets (wiped when released) and the refusal log's counters. Pure
 * otherwise: the caller reads the headers (libmicrohttpd, a test) and passes them in.
 *
 * Rules (HubSpot's request validation, /work/shared/reference/hubspot-api.md): v3 when its
 * header is present (HMAC-SHA-256 over method + public URL + raw target + body +
 * timestamp, the timestamp within 5 minutes); else v2 (SHA-256 over secret + method + URL
 * + body); v1 is refused, since it covers the body only and a signed body could be
 * replayed to another URL. ingress.require_signature_v3 refuses v2 too.
 *
 * Thread-safety: after ingress_signer_load() the signer is read-only but for the log's
 * atomics; any number of threads may verify and log at once.
 */
#ifndef HSQB_INGRESS_SIGN_H
#define HSQB_INGRESS_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/log.h"

#define INGRESS_MAX_SECRETS 8
#define INGRESS_URI_MAX     4096 /* request target bytes kept for the signature */
#define INGRESS_PUBLIC_MAX  2048
#define INGRESS_HOST_MAX    900 /* the events' source (<= 1024) holds it */

struct ingress_signer {
    char public_url[INGRESS_PUBLIC_MAX + 1];  /* ingress.public_url */
    char public_host[INGRESS_PUBLIC_MAX + 1]; /* its host[:port] */
    char *secrets[INGRESS_MAX_SECRETS];       /* ingress.client_secrets */
    size_t nsecrets;
    int require_v3;        /* ingress.require_signature_v3 */
    struct log_limit log; /* refusals, one line a second */
};

/* The request's signature headers, as sent (NULL when absent). */
struct ingress_sig_headers {
    const char *v3;        /* X-HubSpot-Signature-v3 */
    const char *timestamp; /* X-HubSpot-Request-Timestamp */
    const char *v2;        /* X-HubSpot-Signature */
    const char *version;   /* X-HubSpot-Signature-Version */
};

/* ingress.public_url (https://, or http:// with http.allow_insecure; no path),
 * ingress.client_secrets (at least one), ingress.require_signature_v3 into s (zeroed
 * first). 0, or -1 with errstr; release with ingress_signer_release() either way. */
int ingress_signer_load(struct ingress_signer *s, const struct config *cfg, char *errstr,
                        size_t errsz);
/* Wipes and frees the secrets. NULL-safe. */
void ingress_signer_release(struct ingress_signer *s);

/* 1 when a request with headers h may be read at all: it carries a signature header the
 * settings accept (v3, or v2 unless v3 is required). Nothing unsigned is buffered. */
int ingress_signer_may_read(const struct ingress_signer *s, const struct ingress_sig_headers *h);

/* 0 when one of the secrets signed the POST of target (the raw request target) with body
 * (len bytes) at now_ms; else -1 with *reason (a metrics label: missing, mismatch,
 * bad_timestamp, expired) and why (for the log and the 401's message). */
int ingress_signer_verify(const struct ingress_signer *s, const struct ingress_sig_headers *h,
                          const char *target, const char *body, size_t len, int64_t now_ms,
                          const char **reason, char *why, size_t whysz);

/* Logs "request from <client> refused: <what>" at most once a second, with the count of
 * refusals not logged since (a flood must not flood the log). */
void ingress_signer_log_refusal(struct ingress_signer *s, const char *client, const char *what);

#endif
