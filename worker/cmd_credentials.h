/* cmd_credentials.h - `hsqb-worker credentials`: put API credentials into Redis.
 *
 * Owns nothing beyond one call. The worker reads every tenant's credentials from Redis
 * (QBO tokens per realm, HubSpot tokens per portal), so connecting a QuickBooks company
 * or a HubSpot portal is one command against the deployment's Redis, never a restart:
 *
 *   credentials qbo --realm R [--portal P] (--refresh-token-file F | --refresh-token - )
 *                   [--verify]
 *       Stores R's refresh token in <prefix>oauth:{R} (oauth_store_refresh_token: the
 *       access token and any reauth mark are cleared, so the next call refreshes).
 *       With --portal, binds R to HubSpot portal P first (worker/tenancy.h); a realm bound
 *       to another portal fails the command and nothing is stored. Without it, a note says
 *       when R is bound to no portal (the worker refuses its events: REALM_NOT_ALLOWED).
 *       The token comes from the file, from stdin ("-"), or from the environment
 *       variable HSQB_QBO_REFRESH_TOKEN; never from a flag value, which `ps` would show.
 *       --verify then performs one refresh through oauth (needs oauth.client_id and
 *       oauth.client_secret) and reports whether Intuit accepted the token; the rotated
 *       token is stored as usual.
 *   credentials hubspot --portal P (--token-file F | --token - )
 *       Stores P's HubSpot access token (private-app token) at <prefix>hstoken:{P}, a
 *       plain string without TTL, which the HubSpot client reads before falling back to
 *       hubspot.token. Also from HSQB_HUBSPOT_PORTAL_TOKEN. Replaces an OAuth install's
 *       token and drops the install (worker/hubspot_oauth.h): a private-app token is
 *       never refreshed over.
 *   credentials bind --realm R --portal P
 *       Binds R to P (tenancy_bind): P's events may write to R. Refused (exit 1) when R is
 *       bound to another portal: unbind it there first.
 *   credentials unbind --realm R [--portal P]
 *       Unbinds R from P (refused when R is bound to another portal), or without --portal
 *       from whichever portal it is bound to. The workers see it within about a second.
 *   credentials list
 *       Realms and portals that have credentials, with expiries and reauth marks, each
 *       realm's portal (and bound realms without credentials), and the portals the default
 *       hubspot.token serves; never a token.
 *   credentials delete (--realm R | --portal P)
 *       Removes the stored credentials; --realm also unbinds R, --portal also drops an
 *       OAuth install.
 *   credentials connect-link --portal P
 *       Prints the URLs of P's connect link (worker/connect_state.h: signed with
 *       ingress.session_secret, valid CONNECT_LINK_TTL_MS): the ingress's GET
 *       /qbo/connect, which starts Intuit's consent for P, and GET /qbo/disconnect, which
 *       lists P's companies with a disconnect button each. Needs ingress.public_url and
 *       ingress.session_secret (as the ingress has them), no Redis.
 *
 * Every other argument is a setting flag (--redis.host=…, --config FILE, …) handled by
 * worker/settings.h with SETTINGS_SKIP_REQUIRED (only --verify needs the OAuth keys).
 * Token files and stdin are read up to OAUTH_TOKEN_MAX bytes, trailing CR/LF stripped.
 * Exit status: 0 done, 1 failed (Redis, Intuit rejected the token), 2 usage.
 *
 * Thread-safety: start-up style, single-threaded.
 */
#ifndef HSQB_CMD_CREDENTIALS_H
#define HSQB_CMD_CREDENTIALS_H

#include <stdio.h>

/* argv[0] is the word "credentials", argv[1] the action. Uses the process environment,
 * stdin, stdout and stderr. Returns the process exit code. */
int cmd_credentials(int argc, char **argv);

/* As cmd_credentials() with an injected environment (NULL-terminated "NAME=value",
 * borrowed, may be NULL) and streams (borrowed, not closed), for tests. */
int cmd_credentials_run(int argc, char **argv, char **envp, FILE *in, FILE *out, FILE *err);

#endif
