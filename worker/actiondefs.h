/* actiondefs.h - the six workflow action definitions (deploy/hubspot/actions/<action>.json) as
 * HubSpot's definitions API sees them: loading, matching, normalising, comparing.
 *
 * Owns: nothing beyond one call; every json_object returned is a new reference the caller
 * drops with json_object_put(). No I/O but reading the body files: the HTTP side is
 * `hsqb-worker hubspot-actions sync` (cmd_hubspot_actions.c).
 *
 * The bodies carry the placeholder "{{PUBLIC_URL}}" where the ingress's public URL goes
 * (actionUrl, every optionsUrl); loading replaces it. A definition HubSpot holds belongs
 * to an action when the path of its actionUrl is /hubspot/actions/<action>, whatever the
 * host: so moving the ingress to a new host updates the definitions instead of adding
 * six more.
 *
 * Comparison: sync manages the top-level members a body has, except "published" (it is
 * sent when a definition is created, false, and never changed afterwards: publishing is
 * the app owner's decision in HubSpot, and a sync must not withdraw a published action).
 * Both sides are normalised before comparing: a member whose value is empty (null,
 * false, 0, "", [] or {}, after its own members were normalised) is dropped, because
 * HubSpot answers with defaults for what a body leaves out ("optionsUrl": null,
 * "options": [], "externalOptions": false, ...) and a body may leave out what HubSpot
 * would default. Object members compare by name in any order; arrays in order (the
 * order of input fields is the order in the editor, the order of execution rules is
 * their priority).
 *
 * Thread-safety: pure functions over caller-owned trees.
 */
#ifndef HSQB_ACTIONDEFS_H
#define HSQB_ACTIONDEFS_H

#include <stddef.h>
#include <json-c/json.h>

#include "worker/event.h"

#define ACTIONDEFS_PLACEHOLDER "{{PUBLIC_URL}}"
#define ACTIONDEFS_FILE_MAX    (1024 * 1024) /* bytes of one body file */
#define ACTIONDEFS_PATH_PREFIX "/hubspot/actions/"
#define ACTIONDEFS_VALUE_SHOWN 100 /* bytes of a value a difference line shows */
#define ACTIONDEFS_FIELDS_SIZE 256 /* enough for every top-level member name */

/* Load <dir>/<action>.json, replace every "{{PUBLIC_URL}}" with public_url (an
 * scheme://host[:port] without a trailing slash, checked by the caller to hold no '"',
 * '\' or control characters), parse it strictly and check it is a body for action a:
 * an object whose actionUrl is public_url + "/hubspot/actions/<action>" and whose
 * labels.en.actionName is a non-empty string. Returns 0 with *out (caller drops it), or
 * -1 with errstr naming the file (missing, unreadable, over ACTIONDEFS_FILE_MAX, not
 * JSON, or not that action's body). */
int actiondefs_load(const char *dir, enum hsqb_action a, const char *public_url,
                    struct json_object **out, char *errstr, size_t errsz);

/* The action whose definition def is (its actionUrl's path is exactly
 * /hubspot/actions/<action>): 0 with *out, or -1 (no actionUrl, another path). def may
 * be NULL. */
int actiondefs_action_of(struct json_object *def, enum hsqb_action *out);

/* 1 when sync compares and sends top-level member key (any key a body has but
 * "published"), else 0. */
int actiondefs_managed(const char *key);

/* A normalised deep copy of v (see above): empty members dropped, recursively. Returns a
 * new reference, or NULL when v is NULL or itself empty (empty values normalise to
 * nothing). */
struct json_object *actiondefs_normalise(struct json_object *v);

/* Called once per difference found by actiondefs_diff: path such as
 * "inputFields[2].typeDefinition.optionsUrl", then HubSpot's value and ours as compact
 * JSON cut to ACTIONDEFS_VALUE_SHOWN bytes ("(none)" when a side has nothing). */
typedef void (*actiondefs_diff_fn)(void *opaque, const char *path, const char *theirs,
                                   const char *ours);

/* Compare body want with definition have over the managed members of want. Writes the
 * names of the members that differ, in want's order and separated by ", ", into fields
 * (fieldsz >= 1; cut when too small) and returns how many differ (0: up to date). When
 * fn is set it is called for each differing leaf, in order. have may be NULL (everything
 * differs). */
size_t actiondefs_diff(struct json_object *want, struct json_object *have, char *fields,
                       size_t fieldsz, actiondefs_diff_fn fn, void *opaque);

/* The PATCH body that brings have up to want: the managed members of want that differ,
 * copied from want. A new reference; an empty object when nothing differs. */
struct json_object *actiondefs_patch(struct json_object *want, struct json_object *have);

#endif
