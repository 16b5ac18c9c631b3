/* connect_internal.h - private to the connect flows' files (connect.c, connect_qbo.c,
 * connect_hubspot.c): the object, one request's call context and the helpers every
 * handler answers with.
 *
 * Owns nothing of its own: struct connect is defined here so the handlers read its
 * settings; connect.c creates and frees it. No other file may include this header: the
 * ingress sees only worker/connect.h.
 *
 * Thread-safety: everything in struct connect but the slot pool (guarded by mu) is
 * immutable after connect_new(); a struct connect_call belongs to the calling thread.
 */
#ifndef HSQB_CONNECT_INTERNAL_H
#define HSQB_CONNECT_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "common/http.h"
#include "common/redis.h"
#include "worker/connect.h"
#include "worker/connect_page.h"
#include "worker/connect_state.h"
#include "worker/ioctx.h"

#define CONNECT_SLOTS_IDLE_MAX 8    /* HTTP/Redis pairs kept between requests */
#define CONNECT_URL_MAX        4096 /* a URL we build (redirects, token endpoints) */
#define CONNECT_MSG_MAX        512

struct oauth;
struct qbo_api;
struct ratelimit;

/* One thread's HTTP client and Redis connection, borrowed for one request. */
struct connect_slot {
    struct http_client *http;
    struct redis_conn *redis;
};

struct connect {
    int configured; /* ingress.session_secret is set */
    char *secret;   /* owned, wiped on free */
    struct connect_secret key;
    char *public_url; /* ingress.public_url, no trailing '/' */

    /* Intuit (oauth.*) */
    char *qbo_client_id, *qbo_client_secret, *qbo_token_url, *qbo_authorize_url, *qbo_revoke_url;
    struct ratelimit *rl; /* CompanyInfo through the stored tokens, like any replica */
    struct oauth *oauth;
    struct qbo_api *qbo;

    /* HubSpot (hubspot.oauth.*, hubspot.base_url) */
    char *hs_client_id, *hs_client_secret, *hs_authorize_url, *hs_base_url;
    char *hs_scopes, *hs_optional_scopes; /* space separated */

    struct redis_opts ro;       /* strings borrowed from the config */
    struct http_client_opts ho; /* likewise */
    pthread_mutex_t mu;
    struct connect_slot *idle[CONNECT_SLOTS_IDLE_MAX];
    size_t nidle;
};

/* One request being answered. */
struct connect_call {
    struct connect *c;
    const struct connect_request *rq;
    struct connect_answer *out;
    struct connect_slot *slot; /* taken on first use (connect_io), given back at the end */
    struct ioctx io;
    char *set_cookie; /* the answer's Set-Cookie (malloc'd), moved into out at the end */
    char session[CONNECT_TOKEN_MAX + 1]; /* the request's session once verified, else "" */
};

/* The request's parameter key (the query of a GET, the form body of a POST) into buf:
 * 1, 0 when absent (buf ""), -1 when the request is malformed (see connect_form_get). */
int connect_param(const struct connect_call *k, const char *key, char *buf, size_t bufsz);

/* The calling thread's HTTP client and Redis connection for this request: NULL after
 * answering 503 (none could be made). */
const struct ioctx *connect_io(struct connect_call *k);

/* Answers with a page: title as heading, then the formatted paragraph (escaped). */
void connect_fail(struct connect_call *k, int status, const char *title, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Answers with the page p (taken; a page that failed becomes a 500). */
void connect_answer_page(struct connect_call *k, int status, struct connect_page *p);
/* Answers 302 to base + "?" + params (percent-encoded). */
void connect_redirect(struct connect_call *k, const char *base, const struct http_param *params,
                      size_t nparams);

/* Verifies and spends an OAuth state (single use, Redis SET NX on its nonce). CONNECT_OK
 * with *claims, else the verdict, the failure page already answered. */
enum connect_verdict connect_redeem_state(struct connect_call *k, const char *purpose,
                                          struct connect_claims *claims);
/* Verifies the request's portal and link parameters (not spent: a link serves for its
 * lifetime). 0 with *portal and link (the token, CONNECT_TOKEN_MAX + 1 bytes) filled,
 * else -1 with the failure page answered. */
int connect_check_link(struct connect_call *k, int64_t *portal, char *link);
/* 0 when realm is bound to portal; else -1 with the page answered (503 when the store did
 * not answer, else 404 titled title, in the worker's REALM_NOT_ALLOWED wording: whose it
 * is instead is none of this portal's business). Needs connect_io(k). */
int connect_realm_owned(struct connect_call *k, int64_t portal, const char *realm,
                        const char *title);
/* A fresh link for portal into link (CONNECT_TOKEN_MAX + 1 bytes): 0, or -1. */
int connect_mint_link(const struct connect *c, int64_t portal, char *link);

/* The answer will set the flow cookie to state's nonce (state: a token just minted for
 * purpose and portal), binding the flow to this browser: 0, or -1. */
int connect_flow_bind(struct connect_call *k, const char *state, const char *purpose,
                      int64_t portal);

/* ---- sessions (the settings pages) ---- */
/* 1 with *portal when the request's cookie holds a session of ours that has not expired
 * (k->session keeps it), else 0. */
int connect_session(struct connect_call *k, int64_t *portal);
/* The answer will set a fresh session for portal: 0, or -1 (no randomness). */
int connect_session_start(struct connect_call *k, int64_t portal);
/* The answer will clear the session cookie. */
void connect_session_end(struct connect_call *k);
/* 1 when the request's csrf parameter is the CSRF token of its session (k->session). */
int connect_session_csrf_ok(struct connect_call *k);
/* 1 when the HubSpot app's OAuth settings are set (sign-in and install possible). */
int connect_hubspot_ready(const struct connect *c);

/* A failed HTTP exchange with a vendor as a page: transport failures and 5xx 502, with
 * what was being done ("exchanging the authorization code") in the words. */
void connect_vendor_down(struct connect_call *k, const char *vendor, const char *doing,
                         enum http_error he, long status);

/* Disconnects realm from portal (bound to it: the caller checked): its refresh token
 * revoked at oauth.revoke_url, its tokens and company record deleted, the realm unbound.
 * 0, or -1 with the failure page answered (nothing changed when Intuit refused). */
int connect_qbo_drop(struct connect_call *k, const struct ioctx *io, int64_t portal,
                     const char *realm);
/* 302 to HubSpot's consent with a sign-in state: after it, the callback starts a session
 * and sends the browser to /settings. */
void connect_hubspot_signin(struct connect_call *k);

/* The routes' handlers. */
void connect_qbo_start(struct connect_call *k);
void connect_qbo_callback(struct connect_call *k);
void connect_qbo_manage(struct connect_call *k);
void connect_qbo_disconnect(struct connect_call *k);
void connect_hubspot_install(struct connect_call *k);
void connect_hubspot_callback(struct connect_call *k);
void connect_settings_page(struct connect_call *k);
void connect_settings_save(struct connect_call *k);
void connect_settings_disconnect(struct connect_call *k);
void connect_settings_signout(struct connect_call *k);

#endif
