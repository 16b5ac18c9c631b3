/* connect.h - the browser pages of `hsqb-worker ingress` that connect accounts: a
 * QuickBooks company to a HubSpot portal (Intuit's OAuth authorization-code flow), and the
 * HubSpot app into a portal (HubSpot's install flow). Issue 18 items 1 and 2.
 *
 * Routes (the ingress hands every request for these paths to connect_handle()):
 *   GET  /qbo/connect?portal=P&link=L     302 to Intuit's consent page (oauth.authorize_url)
 *                                         with a state for P; L is P's connect link
 *                                         (`hsqb-worker credentials connect-link`)
 *   GET  /qbo/callback?code&state&realmId the consent's answer (or error=…): the state
 *                                         redeemed, the code exchanged at oauth.token_url,
 *                                         the tokens stored where `credentials qbo`
 *                                         stores them, the realm bound to P, a page
 *                                         naming the company (CompanyInfo)
 *   GET  /qbo/disconnect?portal=P&link=L  a page of P's companies, a disconnect form each
 *   POST /qbo/disconnect                  portal, link, csrf, realm: the refresh token
 *                                         revoked at oauth.revoke_url, the tokens deleted,
 *                                         the realm unbound
 *   GET  /hubspot/install                 302 to HubSpot's consent page
 *                                         (hubspot.oauth.authorize_url) with a state
 *   GET  /hubspot/oauth-callback?code&state  the code exchanged at hubspot.base_url
 *                                         /oauth/v1/token, the portal from the answer's
 *                                         hub_id (else the token's metadata), its tokens
 *                                         stored (worker/hubspot_oauth.h), a session for
 *                                         that portal; an install's page links to the
 *                                         settings, a sign-in goes to them
 *   GET  /settings                        the portal's settings page (connect_settings.c):
 *                                         its companies, their token health, connect and
 *                                         disconnect, per-company defaults. With
 *                                         portal&link: starts a session, 302 /settings.
 *                                         Without a session: 302 to HubSpot's consent
 *                                         (sign in with HubSpot), or a 401 page when the
 *                                         HubSpot app is not configured
 *   POST /settings/company                session, csrf, realm, the four defaults
 *   POST /settings/disconnect             session, csrf, realm: as POST /qbo/disconnect
 *   POST /settings/signout                session, csrf: the session cookie cleared
 *
 * Sessions: HubSpot signs its requests to an app's backend (workflow actions, webhooks,
 * UI extensions' hubspot.fetch), but not a browser's visit to an app's own pages, so a
 * settings page outside HubSpot learns who is visiting through HubSpot's OAuth: the
 * user signs in to HubSpot and picks the account, and the code exchange names it. The
 * ingress then keeps a signed session (CONNECT_PURPOSE_SESSION, CONNECT_SESSION_TTL_MS)
 * in an HttpOnly, SameSite=Lax cookie (Secure when ingress.public_url is https); its
 * forms carry the session's CSRF token. A connect link starts a session too.
 *
 * Every answer is a page (or a redirect) with connect_page_headers(): strict CSP, no
 * framing, no referrer, no-store. Every failure (Intuit's or HubSpot's error on the
 * redirect, a forged, expired or replayed state, an expired link, a vendor down, a realm
 * bound to another portal) is a page saying what happened and what to do, with a 4xx
 * or 5xx status. Without ingress.session_secret every route answers 503 "not
 * configured"; without hubspot.oauth.client_id/client_secret the HubSpot routes do.
 *
 * Who may do what: a state is single use (its nonce spent in Redis), names the portal it
 * was issued for, and belongs to the browser that started the flow: starting one sets a
 * CONNECT_FLOW_COOKIE cookie holding the state's nonce (HttpOnly, SameSite=Lax, 10
 * minutes), and a callback without it is refused before anything is spent (RFC 6749
 * 10.12: otherwise an attacker could send a victim the callback of a sign-in the
 * attacker started, and the victim's browser would end up in the attacker's account); /qbo/connect and /qbo/disconnect need the portal's connect link
 * (15 minutes, signed with the same secret), the POST also the CSRF token bound to that
 * link. A realm bound to another portal is refused and left as it is. Codes, tokens and
 * the secret never reach a log line or a page.
 *
 * Thread-safety: connect_handle() may be called from any number of threads at once (the
 * ingress calls it from its job threads: it blocks on Redis, Intuit and HubSpot).
 */
#ifndef HSQB_CONNECT_H
#define HSQB_CONNECT_H

#include <stddef.h>

#include "common/config.h"

#define CONNECT_SESSION_COOKIE "hsqb_session"
#define CONNECT_FLOW_COOKIE    "hsqb_flow"

struct connect;
struct metrics;

/* Reads the settings above (ingress.public_url, ingress.session_secret, oauth.*,
 * hubspot.base_url, hubspot.oauth.*, the Redis and HTTP settings); cfg is read during the
 * call only, metrics borrowed (may be NULL). Succeeds without ingress.session_secret
 * (the routes then answer 503). NULL with errstr on bad settings or out of memory. Caller
 * frees with connect_free(). */
struct connect *connect_new(const struct config *cfg, struct metrics *metrics, char *errstr,
                            size_t errsz);
/* NULL-safe; no connect_handle() may be running. */
void connect_free(struct connect *c);

/* 1 when path (without the query) is one of the routes above, else 0. */
int connect_is_route(const char *path);

/* One request, as the ingress read it; everything borrowed for the call. */
struct connect_request {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* without the query */
    const char *query;  /* the raw query string after '?', "" when none */
    const char *body;   /* the POST's application/x-www-form-urlencoded body, len bytes */
    size_t len;
    const char *session; /* the CONNECT_SESSION_COOKIE cookie's value, or NULL */
    const char *flow;    /* the CONNECT_FLOW_COOKIE cookie's value, or NULL */
};

/* The answer: status, then a page or a redirect. Release with connect_answer_release(). */
struct connect_answer {
    int status;
    char *body; /* HTML (malloc'd), len bytes; NULL for a redirect */
    size_t len;
    char *location;    /* a redirect's Location (malloc'd), else NULL */
    const char *allow; /* with 405: the methods allowed (static) */
    char *set_cookie;  /* a Set-Cookie header's value (malloc'd), else NULL */
};

/* Answers rq into *out (always filled: every failure is a page). Blocks on Redis and
 * the vendors' token endpoints (bounded by http.timeout and redis.command_timeout). */
void connect_handle(struct connect *c, const struct connect_request *rq,
                    struct connect_answer *out);
/* A page of the ingress's own (shutting down, 413, 415...) in the connect pages' style,
 * message escaped. */
void connect_error_page(int status, const char *title, const char *message,
                        struct connect_answer *out);
/* Frees what out holds. NULL-safe. */
void connect_answer_release(struct connect_answer *out);

#endif
