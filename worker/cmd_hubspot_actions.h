/* cmd_hubspot_actions.h - `hsqb-worker hubspot-actions sync`: create or update the six
 * workflow action definitions (deploy/hubspot/actions/) in a HubSpot app.
 *
 * Owns nothing beyond one call: one HTTP client.
 *
 *   hsqb-worker hubspot-actions sync --app-id N [--dry-run]
 *       [--dir deploy/hubspot/actions] [settings]
 *
 * Reads the six bodies from --dir, with "{{PUBLIC_URL}}" replaced by ingress.public_url
 * (required here: it is the URL HubSpot calls), lists the app's definitions
 * (GET <hubspot.base_url>/automation/v4/actions/<N>?hapikey=<hubspot.developer_key>, all
 * pages), and matches each body to the definition whose actionUrl path is
 * /hubspot/actions/<action> (worker/actiondefs.h: how definitions are compared). Then,
 * per action in the order of event.h, one line on stdout:
 *   "create_invoice: created id 123"                      POST (published false)
 *   "create_invoice: updated id 123 (inputFields, labels)"  PATCH of those members
 *   "create_invoice: up to date (id 123)"
 * and a summary. A second run changes nothing. Definitions of the app that are not one of
 * ours are listed and left alone; a second definition of the same action is reported on
 * stderr and left alone (the first one listed is the one kept up to date).
 * --dry-run writes nothing: "would be created" / "would be updated", each difference on
 * an indented line (path, HubSpot's value -> ours; at most HA_DIFF_LINES per action).
 *
 * The developer key is a secret setting: give it through
 * HSQB_HUBSPOT_DEVELOPER_KEY_FILE (or a config file), never a flag. It travels in the
 * query string, as HubSpot's definitions API wants, so nothing printed carries a URL's
 * query: requests are named by method and path, and HubSpot's messages are printed with
 * the key masked.
 *
 * Every other argument is a setting flag (--hubspot.base_url=..., --config FILE, ...)
 * handled by worker/settings.h with SETTINGS_SKIP_REQUIRED.
 * Exit status: 0 done (or, with --dry-run, the differences shown); 1 HubSpot refused or
 * could not be reached (the run stops at the first failed request: run it again); 2 usage,
 * configuration (no developer key or public URL) or a definition file that cannot be read.
 *
 * Thread-safety: start-up style, single-threaded.
 */
#ifndef HSQB_CMD_HUBSPOT_ACTIONS_H
#define HSQB_CMD_HUBSPOT_ACTIONS_H

#include <stdio.h>

/* argv[0] is "hubspot-actions". Uses the process environment, stdout and stderr.
 * Returns an exit status (worker/exitcode.h). */
int cmd_hubspot_actions(int argc, char **argv);

/* As cmd_hubspot_actions() with an injected environment (NULL-terminated "NAME=value",
 * borrowed, may be NULL) and streams (borrowed, not closed), for tests. */
int cmd_hubspot_actions_run(int argc, char **argv, char **envp, FILE *out, FILE *err);

#endif
