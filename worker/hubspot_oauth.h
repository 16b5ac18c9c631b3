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
 *  - Tokens never appear in logs or errstr. hstoken:{P} and refresh_token are sealed at
 *    rest when redis.encryption_keys is set (worker/atrest.h), re-written sealed when read
 *    in plain text; the refresh's compare-and-set compares the stored texts it read.
 *
 * The token endpoint call (hubspot_oauth_token) is shared by the install (a code's
 * exchange, worker/connect_hubspot.c) and the refresh of the 30-minute access tokens
 * (worker/hubspot_refresh.c, one refresh per portal across replicas), which stores its
 * result with hubspot_oauth_refreshed(): a compare-and-set that never overwrites a
 * private-app token or a newer install.
 *
 * NEEDSWORK: an install whose refresh token HubSpot refused stays in Redis: every event
 * of the portal tries one refresh (single-flight) and fails HUBSPOT_AUTH, until the app
 * is installed again or a private-app token is stored. A "reauth required" mark (as
 * worker/oauth.c keeps for QuickBooks) would spare HubSpot those calls.
 *
 * Thread-safety: every call uses the caller's Redis connection (and HTTP client) only.
 */
#ifndef HSQB_HUBSPOT_OAUTH_H
#define HSQB_HUBSPOT_OAUTH_H

#include <stddef.h>
#include <stdint.h>

#include "common/http.h"
#include "common/json.h"
#include "common/redis.h"
#include "worker/hubspot.h"

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

/* ---- HubSpot's token endpoint ---------------------------------------------------- */

#define HUBSPOT_OAUTH_ANSWER_MAX (64 * 1024) /* bytes of a token endpoint answer read */

/* The app: hubspot.base_url, hubspot.oauth.client_id and client_secret; borrowed. */
struct hubspot_oauth_app {
    const char *base_url; /* no trailing '/' */
    const char *client_id;
    const char *client_secret; /* secret */
};

enum hubspot_token_result {
    HUBSPOT_TOKEN_OK = 0,
    HUBSPOT_TOKEN_DOWN,       /* no answer, 5xx, 429, or a 200 that is not a JSON object */
    HUBSPOT_TOKEN_REFUSED,    /* another status: the grant or the app's credentials */
    HUBSPOT_TOKEN_BAD_ANSWER, /* a 200 object without usable tokens */
};

/* What POST <base_url>/oauth/v1/token answered. Secrets: the caller wipes it
 * (explicit_bzero) when done. */
struct hubspot_token_reply {
    enum http_error he;     /* HTTP_OK when an answer came */
    long status;            /* HTTP status, 0 without an answer */
    int64_t retry_after_ms; /* Retry-After of a 429/503, 0 when none */
    char error[64];         /* HubSpot's "status" (BAD_REFRESH_TOKEN, ...), else the OAuth
                               "error" (invalid_grant, ...); "" when none */
    char message[256];      /* HubSpot's "message" (an error's words), "" when none */
    char detail[256];       /* the transport error (he != HTTP_OK), "" */
    /* HUBSPOT_TOKEN_OK only: */
    char access[HUBSPOT_MAX_TOKEN + 1];
    char refresh[HUBSPOT_OAUTH_REFRESH_MAX + 1];
    int64_t expires_in_s; /* 1800 when the answer does not say */
    int64_t portal;       /* hub_id, 0 when absent */
    char scopes[HUBSPOT_OAUTH_SCOPES_MAX + 1]; /* space separated, as many as fit */
};

/* One grant at the token endpoint: the app's client_id and client_secret plus grant
 * (grant_type and its parameters, borrowed), form-encoded, with http (the caller's).
 * Returns what came back and fills *out (always, zeroed first). No logging: the caller
 * knows what it was doing. */
enum hubspot_token_result hubspot_oauth_token(struct http_client *http,
                                              const struct hubspot_oauth_app *app,
                                              const struct http_param *grant, size_t ngrant,
                                              struct hubspot_token_reply *out);

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

/* An answer's "scopes" (an array of strings; doc borrowed) joined by spaces into dst, as
 * many as fit in dstsz; dst is left as it was when there are none. */
void hubspot_oauth_join_scopes(struct json_object *doc, char *dst, size_t dstsz);

/* ---- the portal's token and its refresh ------------------------------------------------ */

/* A portal's token as the worker reads it: hstoken:{P} and the install's expiry, in one
 * round trip. */
struct hubspot_portal_token {
    char token[HUBSPOT_MAX_TOKEN + 1]; /* "" when none; secret */
    int oauth;                                /* the install hash exists */
    int64_t expires_at_ms;                    /* epoch ms; 0 unknown (oauth only) */
    int64_t updated_at_ms;                    /* epoch ms of the last write; 0 unknown */
    int64_t installed_at_ms;                  /* epoch ms; 0 unknown */
};

/* Reads portal's token (and, when installed, the install's dates) into *out in one
 * command. 0 (out->token "" when none is stored), 1 when a token is stored but unusable
 * (too long, or holding a NUL), -1 with errstr (Redis failed). */
int hubspot_oauth_token_get(struct redis_conn *r, int64_t portal, struct hubspot_portal_token *out,
                            char *errstr, size_t errsz);

/* The install's refresh token into buf (bufsz > HUBSPOT_OAUTH_REFRESH_MAX is always
 * enough): 1, 0 when the portal has no install (buf ""), -1 with errstr. Secret: the
 * caller wipes buf. */
int hubspot_oauth_refresh_token_get(struct redis_conn *r, int64_t portal, char *buf, size_t bufsz,
                                    char *errstr, size_t errsz);

/* Stores a refresh's new access token (and the refresh token HubSpot sent back, the same
 * one today) in one Lua compare-and-set: only while the install hash still holds
 * sent_refresh and installed_at_ms of was, and hstoken:{P} still holds was->token. So a
 * private-app token stored meanwhile (`credentials hubspot`), an uninstall or a new
 * install is never overwritten. 1 stored, 0 not (changed meanwhile), -1 with errstr. */
int hubspot_oauth_refreshed(struct redis_conn *r, int64_t portal,
                            const struct hubspot_portal_token *was, const char *sent_refresh,
                            const struct hubspot_token_reply *fresh, int64_t expires_at_ms,
                            char *errstr, size_t errsz);

#endif
