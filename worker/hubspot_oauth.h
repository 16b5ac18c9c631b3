/* hubspot_oauth.h - a portal's HubSpot OAuth install: its refresh token and the access
 * token the worker uses, with its expiry.
 *
 * Owns: the install's Redis hash, next to the portal's token (worker/hubspot.h):
 *
 *   <prefix>hstoken:{<portal>}  string: the token the worker sends for the portal. A
 *                               private-app token (`credentials hubspot`), or after an
 *                               install the OAuth access token. Read as it always was.
 *   <prefix>hsoauth:{<portal>}  hash, present only for a portal installed through OAuth:
 *     refresh_token          HubSpot's refresh token (HubSpot does not rotate it)
 *     access_expires_at_ms   epoch ms when the access token in hstoken:{P} expires
 *     scopes                 the scopes granted, space separated
 *     hub_domain             the account's domain, as HubSpot names it ("" unknown)
 *     installed_at           epoch ms of the (last) install
 *     updated_at             epoch ms of the last write
 *
 * Invariants:
 *  - Both keys carry the hash tag {<portal>}: one Redis Cluster slot, so an install
 *    writes them in one Lua script and a reader never sees the access token of one
 *    install with the expiry of another.
 *  - hsoauth:{P} exists exactly while hstoken:{P} holds an OAuth access token: storing a
 *    private-app token (`credentials hubspot`) deletes the hash, so whatever refreshes
 *    OAuth tokens never overwrites a private-app token, and private-app tokens keep
 *    working as before.
 *  - Tokens never appear in logs or errstr.
 *
 * NEEDSWORK: the refresh of the 30-minute access tokens (before expiry, one refresh per
 * portal across replicas, as worker/oauth.c does for QuickBooks) is not written: an
 * installed portal's HubSpot calls fail HUBSPOT_AUTH once its access token expired,
 * until the portal is installed again or given a private-app token.
 *
 * Thread-safety: every call uses the caller's Redis connection only.
 */
#ifndef HSQB_HUBSPOT_OAUTH_H
#define HSQB_HUBSPOT_OAUTH_H

#include <stddef.h>
#include <stdint.h>

#include "common/redis.h"

#define HUBSPOT_OAUTH_KEY         "hsoauth:" /* after the prefix (credentials list) */
#define HUBSPOT_OAUTH_REFRESH_MAX 512        /* bytes of a refresh token */
#define HUBSPOT_OAUTH_SCOPES_MAX  2048       /* bytes of the scopes, space separated */
#define HUBSPOT_OAUTH_DOMAIN_MAX  253

/* What an install stores; every string borrowed for the call. */
struct hubspot_install {
    const char *access_token; /* 1..HUBSPOT_MAX_TOKEN bytes */
    int64_t access_expires_at_ms;
    const char *refresh_token; /* 1..HUBSPOT_OAUTH_REFRESH_MAX bytes */
    const char *scopes;        /* may be NULL */
    const char *hub_domain;    /* may be NULL */
};

/* "<prefix>hsoauth:{<portal>}" into dst: 0, or -1 when it does not fit. */
int hubspot_oauth_key(char *dst, size_t dstsz, const char *prefix, int64_t portal);

/* Stores an install of portal (> 0): the access token as the portal's token, the rest in
 * the hash (replacing a previous install's). 0, or -1 with errstr. */
int hubspot_oauth_store(struct redis_conn *r, int64_t portal, const struct hubspot_install *in,
                        char *errstr, size_t errsz);

/* What is stored for an installed portal, without the secrets (`credentials list`). */
struct hubspot_oauth_status {
    int has_refresh_token;
    int64_t access_expires_at_ms; /* 0 when unknown */
    int64_t installed_at_ms;      /* 0 when unknown */
    char hub_domain[HUBSPOT_OAUTH_DOMAIN_MAX + 1];
};

/* 1 with *st when portal has an install hash, 0 when not, -1 with errstr. */
int hubspot_oauth_status_get(struct redis_conn *r, int64_t portal, struct hubspot_oauth_status *st,
                             char *errstr, size_t errsz);

/* Deletes portal's install hash (the portal's token stays): the token stored next is a
 * private-app token. 0, or -1 with errstr. */
int hubspot_oauth_forget(struct redis_conn *r, int64_t portal, char *errstr, size_t errsz);

#endif
