/* authorize.h - the consent pages of Intuit's and HubSpot's authorization servers
 * (authorize.c) and what they need from the two vendors' OAuth state.
 *
 * Owns the contract, not the state: authorize.c renders the pages and reads the user's
 * decision; oauth.c (Intuit) and hubspot_oauth.c (HubSpot) own the apps, their
 * registered redirect URIs, and the codes they later exchange at their token endpoints.
 * A code is minted only through these functions, after the page's checks passed twice
 * (on the page and again on the decision, whose hidden fields the browser could change).
 *
 * Thread-safety: every function takes its vendor's own lock, never two at once, and does
 * no I/O; any thread may call them.
 */
#ifndef HSQB_SANDBOX_AUTHORIZE_H
#define HSQB_SANDBOX_AUTHORIZE_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "tests/sandbox/sandbox.h"

#define AZ_URI_MAX   1024 /* a redirect URI (seeded or requested), bytes */
#define AZ_STATE_MAX 512  /* the state echoed back; longer is invalid_request */
#define AZ_SCOPE_MAX 2048 /* scope / optional_scope parameter */
#define AZ_CODE_MAX  64   /* buffer for a code, with its NUL */
#define AZ_NAME_MAX  128  /* an app's display name, with its NUL */

enum az_verdict {
    AZ_OK = 0,
    AZ_BAD_CLIENT,   /* no such client_id: error page, no redirect */
    AZ_BAD_REDIRECT, /* redirect_uri not registered for it: error page, no redirect */
    AZ_BAD_SCOPE,    /* HubSpot: scopes do not match the app's: error page */
};

/* Serve the consent routes (README "Authorization servers"): GET /connect/oauth2, POST
 * /connect/oauth2/decision (Intuit); GET /oauth/authorize, GET /oauth/{portalId}/authorize,
 * POST /oauth/authorize/decision (HubSpot). Returns 1 when path is one of them (resp
 * filled), 0 otherwise (resp untouched). */
int authorize_route(const struct sb_request *req, struct sb_response *resp);

/* ---- Intuit (oauth.c) ---------------------------------------------------------------- */

/* Is client_id a seeded client and redirect_uri (exactly) one of its redirect_uris?
 * Either may be NULL. name gets the client's display name (its seeded "name", else the
 * client_id) unless AZ_BAD_CLIENT. */
enum az_verdict oauth_az_check(const char *client_id, const char *redirect_uri, char *name,
                               size_t namesz);
/* Mint a code for the connection (client_id, realm_id), usable once, within ttl_s
 * seconds, with exactly redirect_uri (all copied). code gets it (codesz >= AZ_CODE_MAX).
 * 0, or -1 when codesz is too small. */
int oauth_az_code(const char *client_id, const char *redirect_uri, const char *realm_id, int ttl_s,
                  char *code, size_t codesz);

/* ---- HubSpot (hubspot_oauth.c) ------------------------------------------------------- */

/* Check an authorization request against the app with this client_id (the newest seeded
 * oauth_apps entry): redirect_uri one of its redirect_uris; scope (space-separated)
 * holding every scope of its "scopes" and nothing outside "scopes" + "optional_scopes";
 * optional_scope (may be NULL or empty) only scopes of that union. AZ_OK: *granted (caller
 * puts) = scope + optional_scope, in that order without repeats, and name = the app's
 * "name" or client_id. Otherwise errstr says why, in words for the error page. */
enum az_verdict hubspot_az_check(const char *client_id, const char *redirect_uri, const char *scope,
                                 const char *optional_scope, char *name, size_t namesz,
                                 struct json_object **granted, char *errstr, size_t errsz);
/* The accounts the picker offers: [{"portalId":N,"timeZone":"…"}] by id; only = 0 for
 * every portal, else that portal alone ([] when it does not exist). Caller puts. */
struct json_object *hubspot_az_portals(int64_t only);
/* Mint a code installing client_id into portal with the granted scopes (borrowed),
 * usable once, within ttl_s seconds, with exactly redirect_uri. 0, or -1 when the portal
 * or app is gone or codesz < AZ_CODE_MAX. */
int hubspot_az_code(const char *client_id, const char *redirect_uri, int64_t portal,
                    struct json_object *granted, int ttl_s, char *code, size_t codesz);

#endif
