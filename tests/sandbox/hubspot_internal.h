/* hubspot_internal.h - private to the HubSpot side of the sandbox: hubspot.c,
 * hubspot_store.c, hubspot_pricing.c, hubspot_actions.c and the workflow engine
 * (workflows.c, workflows_admin.c); nothing else includes it.
 *
 * Who owns what:
 *   hubspot_store.c owns the state below (`hs`): portals with their sorted id lists and
 *   account details (time zone, currency), the object hash, associations, bearer
 *   tokens, OAuth apps, automation callbacks and the set of known property names;
 *   seeding (hubspot_seed), the state dump (hubspot_dump), the JSON rendering of stored
 *   records and the built-in time zone table behind a portal's UTC offset.
 *   hubspot_pricing.c owns the figures HubSpot derives from other records (a line
 *   item's tax, a quote's hs_quote_amount, a deal's amount); it writes them into the
 *   stored properties after every seed (hs_price_portal).
 *   hubspot.c owns request handling: routing, bearer authentication and scopes, rate
 *   windows (the contents of each portal's `rate`), the handlers, and the switchable
 *   behaviours `hs_opt` (hubspot_configure, hubspot_reset).
 *   hubspot_oauth.c owns HubSpot's authorization server: the token endpoint, token
 *   metadata and deletion, the codes of the consent page (`hs.az_codes`) and the
 *   installations it creates (hs_app records with `from_flow`).
 *   hubspot_actions.c owns the developer apps (`hs.devapps`, seeded) and the custom
 *   workflow action definitions (`hs.defs`) with their API (developer API key).
 *   workflows.c / workflows_admin.c own the executions of the workflow engine and its
 *   delivery threads, behind their own mutex (workflows.h), taken after hs.lock.
 *
 * Locking rules (lock order: hs.lock, then hs.rate_mu or the engine's mutex; nothing
 * else is held):
 *   - hs.lock, a writer-preferring rwlock, guards every field of `hs` except `rate_mu`
 *     and every portal's `rate`, plus `hs_opt`. Read lock: CRM reads, tax rates,
 *     account details, dump, hubspot_options. Write lock: seeding, reset, callback
 *     completion, OAuth token issue and every OAuth route, hubspot_configure,
 *     hubspot_set_rate_limit.
 *   - hs.rate_mu guards every portal's `rate`; it is taken only while hs.lock is held
 *     (either mode), because many readers share hs.lock and count against one window.
 *   - hs_opt is written only under the write lock (configure also takes rate_mu), so
 *     holding hs.lock in either mode is enough to read it.
 *   - Every hs_* function below that touches state expects its caller to hold hs.lock
 *     in the mode noted; none takes it itself except hs_init (which takes no lock).
 *   - json-c reference counts are not atomic: stored json objects are never shared with a
 *     response; rendering copies strings into new objects.
 *
 * Invariants: each portal's list[t] is sorted by id and holds exactly the objects of
 * that (portal, type) in the hash; a link and its reverse are always both present;
 * tokens and callbacks are keyed by their full string.
 */
#ifndef HSQB_SANDBOX_HUBSPOT_INTERNAL_H
#define HSQB_SANDBOX_HUBSPOT_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "tests/sandbox/sandbox.h"

#define HS_MAX_NAMES  256 /* properties / association types per request */
#define HS_LINK_TYPES 4   /* association type ids per (object, target) pair */
#define HS_TOKEN_MAX  512 /* bearer token length */
#define HS_TZ_MAX     64  /* IANA time zone name, with its NUL */

/* Object types, in the order of hs_types[]. */
enum {
    T_CONTACTS,
    T_COMPANIES,
    T_DEALS,
    T_PRODUCTS,
    T_LINE_ITEMS,
    T_QUOTES,
    T_PAYMENTS,
    T_DISCOUNTS,
    T_FEES,
    T_TAXES,
    NT
};

struct type_info {
    const char *name, *id, *singular, *upper, *assoc_key, *scope, *alt_scope, *modkey;
    const char *defaults, *catalogue;
};
extern const struct type_info hs_types[NT];

struct hs_link {
    int to_type, ntypes;
    int64_t to_id;
    int type_ids[HS_LINK_TYPES];
};

/* Properties hubspot_pricing.c wrote (bits of hs_obj.derived). A property present in
 * props without its bit was seeded and is never recomputed. */
enum {
    HS_DERIVED_TAX_RATE = 1,   /* line item hs_tax_rate, from the seeded tax rate */
    HS_DERIVED_TAX_AMOUNT = 2, /* line item hs_tax_amount */
    HS_DERIVED_TOTAL = 4,      /* quote hs_quote_amount, deal amount */
};

/* ---- hubspot_props.c: an object's properties, compact ------------------------------------ */

/* Name -> string or null, in the order first set; NULL is the empty set. */
struct hs_props;
/* 1 when name is present (*value = its string, or NULL for a null; value may be NULL),
 * 0 when absent. */
int hs_props_get(const struct hs_props *p, const char *name, const char **value);
/* Set name to value (NULL = null), in place when present, else last. -1: out of memory,
 * *p unchanged. */
int hs_props_set(struct hs_props **p, const char *name, const char *value);
/* Remove name when present. */
void hs_props_del(struct hs_props **p, const char *name);
/* Iterate: start with *pos = 0; each call returns the next name (borrowed) and its value
 * as hs_props_get, NULL after the last. */
const char *hs_props_next(const struct hs_props *p, size_t *pos, const char **value);
void hs_props_free(struct hs_props *p);

struct hs_obj {
    int64_t portal, id, created_ms, updated_ms, archived_ms;
    int type, archived;
    unsigned derived;          /* HS_DERIVED_* bits; 0 after every (re)seed */
    unsigned stamp;            /* hs.stamp of the last seed document that stored or linked it */
    struct hs_props *props;    /* string (or null) values; NULL = none (hubspot_props.c) */
    struct hs_link *links;
    int nlinks, caplinks;
    struct hs_obj *hnext;
};

struct rate_state {
    int64_t *ts; /* ring of accepted request times (mono ms), capacity = limit */
    int cap, head, count;
    int64_t day;
    long daily;
};

struct hs_portal {
    int64_t id;
    struct hs_obj **list[NT]; /* sorted by id */
    size_t nlist[NT], caplist[NT];
    struct json_object *tax_rates; /* id -> stored record */
    /* Account details (GET /account-info/v3/details): seeded, else the defaults. */
    char time_zone[HS_TZ_MAX]; /* "US/Eastern" */
    char currency[4];          /* companyCurrency, "USD" */
    int fixed_offset;          /* 1: utc_offset_min was seeded and applies all year */
    int utc_offset_min;        /* minutes east of UTC; only when fixed_offset */
    struct rate_state rate;    /* hs.rate_mu */
    struct hs_portal *next;
};

enum { TOK_PRIVATE, TOK_OAUTH };
struct hs_app;
struct hs_token {
    struct hs_portal *portal;
    int kind;
    int64_t expires_ms;         /* wall clock; 0 = never */
    struct json_object *scopes; /* array of strings; NULL = every scope */
    struct hs_app *app;         /* TOK_OAUTH: the installation that issued it */
};

/* An OAuth app installed in one portal. A seeded record (hubspot.portals[].oauth_apps[])
 * is also the app's definition: the newest seeded record of a client_id says its secret,
 * required `scopes`, `optional_scopes`, `redirect_uris`, `app_id` and `name`. A record
 * the consent flow created (`from_flow`) is an installation only: its `scopes` are what
 * the user granted, and it copies client_id, client_secret, app_id and name. */
struct hs_app {
    char *client_id, *client_secret, *name;
    char *refresh_token; /* NULL once deleted (DELETE /oauth/v1/refresh-tokens/{token}) */
    int64_t app_id;      /* 0 when not seeded */
    int from_flow;
    int refreshes, code_grants; /* token requests answered 200, per grant type */
    struct hs_portal *portal;
    struct json_object *scopes, *codes;                  /* codes: seeded auth_codes */
    struct json_object *optional_scopes, *redirect_uris; /* arrays of strings, or NULL */
    struct hs_app *next;
};

struct hs_cb {
    char *id;
    int64_t portal, created_ms, expires_ms, completed_ms;
    int completed, completions, rejected;
    int closed;      /* the engine's execution ended without waiting (SUCCESS, FAIL_CONTINUE
                        or FAILED in the synchronous answer): completions are refused */
    const char *via; /* static: "single" or "batch" */
    struct json_object *outputs;
};

/* Chained string-keyed hash (tokens, callbacks); bucket count a power of two. */
struct snode {
    char *key;
    void *val;
    struct snode *next;
};
struct shash {
    struct snode **b;
    size_t nb, n;
};

/* A developer app (seed hubspot.developer_apps; global, not per portal). */
struct hs_devapp {
    int64_t app_id;
    char *key, *secret; /* developer API key, client secret (signs engine requests) */
    struct hs_devapp *next;
};

/* A custom workflow action definition (hubspot_actions.c). `doc` is the validated
 * definition without id, revisionId and archivedAt (added when rendered); `revisions`
 * holds the rendered definition of every revision, oldest first. */
struct hs_def {
    int64_t id, app_id;
    int revision; /* revisionId, from 1; PATCH bumps it */
    int archived;
    int64_t archived_ms;
    struct json_object *doc;
    struct json_object *revisions; /* [{"id","revisionId","createdAt","definition"}] */
    struct hs_def *next;
};

struct hs_state {
    pthread_rwlock_t lock;
    pthread_mutex_t rate_mu;
    struct hs_portal *portals;
    struct hs_obj **ob; /* object hash keyed by (portal, type, id) */
    size_t onb, on;
    struct shash tokens, cbs; /* token -> struct hs_token, callbackId -> struct hs_cb */
    struct hs_cb **cb_order;  /* callbacks in registration order (dump) */
    size_t ncb, capcb;
    struct hs_app *apps;
    struct json_object *az_codes; /* code -> {client_id, redirect_uri, portal, scopes, expires} */
    struct hs_devapp *devapps;
    struct hs_def *defs;           /* id order (ids only grow) */
    struct json_object *known[NT]; /* property names known per type (set) */
    unsigned stamp;                /* seed documents (per portal) so far; never 0 */
    int ready;
};
extern struct hs_state hs; /* hubspot_store.c */

/* Switchable behaviours (reference §9); hubspot.c. */
struct hs_opts {
    int rate_10s, daily_limit, access_ttl_s, line_items_spaced, order, contact_dupes;
    int cb_done_status, cb_accept_unknown, retry_after, cb_expiry_s;
};
extern struct hs_opts hs_opt;

/* A parsed comma list: up to HS_MAX_NAMES unique, non-empty, trimmed names pointing into
 * buf (owned; free(buf) when done). */
struct names {
    int n;
    char *v[HS_MAX_NAMES];
    char *buf;
};

/* ---- tiny json-c helpers shared by both files --------------------------------------- */

static inline struct json_object *jstr(const char *s)
{
    return json_object_new_string(s ? s : "");
}

/* Takes ownership of v (may be NULL for a JSON null). */
static inline void jadd(struct json_object *o, const char *k, struct json_object *v)
{
    json_object_object_add(o, k, v);
}

static inline struct json_object *jiso(int64_t ms)
{
    char b[40];
    sb_iso8601(ms, b, sizeof(b));
    return jstr(b);
}

/* ---- hubspot_store.c ----------------------------------------------------------------- */

/* Initialise the locks and known property names once; every public entry point calls
 * it first. Thread-safe (pthread_once). */
void hs_init(void);
/* Free every portal, object, token, app and callback; known names back to the catalogue.
 * Leaves hs_opt alone. Write lock. */
void hs_store_clear_locked(void);

/* Object type from a plural name, type id ("0-3"), singular or association key; -1 when
 * unknown; s may be NULL. No lock. */
int hs_type_find(const char *s);
/* Non-negative decimal digits only (no sign, no spaces) -> 0 and *out; else -1. */
int hs_parse_i64(const char *s, int64_t *out);
/* Split csv (takes ownership; may be NULL) into ns; see struct names. */
void hs_names_parse(struct names *ns, char *csv);

/* The portal or NULL; borrowed until hs.lock is released. Lock held. */
struct hs_portal *hs_portal_find(int64_t id);
/* The object or NULL; borrowed until hs.lock is released. Read lock. */
struct hs_obj *hs_obj_get(int64_t portal, int type, int64_t id);
/* First index in p->list[t] whose id is >= min_id. Read lock. */
size_t hs_list_lower_bound(const struct hs_portal *p, int t, int64_t min_id);
/* Indexes into o->links of its links to type `to`, in the configured association order
 * (hs_opt.order); idx must hold o->nlinks entries. Returns the count. Read lock. */
int hs_links_ordered(const struct hs_obj *o, int to, int *idx);

/* A v3 record ({"id","properties",...}) written into w (sb_json.h) as the value that
 * comes next; props/assoc/hist may be NULL (= defaults / none). Read lock. */
struct sb_json;
void hs_write_obj(struct sb_json *w, const struct hs_obj *o, const struct names *props,
                  const struct names *assoc, const struct names *hist);
/* The same record as a json-c tree (routes that build one around it). Caller puts the
 * result. Read lock. */
struct json_object *hs_render_obj(const struct hs_obj *o, const struct names *props,
                                  const struct names *assoc, const struct names *hist);
/* One v4 association result ({"toObjectId", "associationTypes"}). Caller puts. */
struct json_object *hs_render_v4_link(const struct hs_link *l);

/* p's offset from UTC at wall-clock time now_ms, in minutes east of UTC: the seeded
 * utcOffset, else the built-in zone table with its daylight-saving rule (seeding
 * guarantees one of the two). Uses no TZ/tzset, so any number of readers may call it.
 * Read lock. */
int hs_portal_utc_offset(const struct hs_portal *p, int64_t now_ms);

/* Token record for a bearer string, or NULL; borrowed until hs.lock is released. */
const struct hs_token *hs_token_find(const char *tok);
/* Add or replace a token; takes ownership of scopes (NULL = every scope) even on
 * failure; app (may be NULL) is the installation an OAuth token came from. -1 when out
 * of memory. Write lock. */
int hs_token_add(struct hs_portal *p, const char *tok, int kind, int64_t expires,
                 struct json_object *scopes, struct hs_app *app);
/* Free one hs_app record (not linked anywhere any more). */
void hs_app_free(struct hs_app *a);
/* Callback by id (any portal), or NULL. Lock held (either mode). */
struct hs_cb *hs_cb_find(const char *id);
/* Register a pending callback, or re-time an existing one; NULL when out of memory or
 * at the callback cap. Write lock. */
struct hs_cb *hs_cb_register(const char *id, int64_t portal, int64_t created, int64_t expires);

/* ---- hubspot.c: answers shared with hubspot_actions.c ------------------------------- */

/* A random (not cryptographic) UUID v4 string, as HubSpot's correlationIds. */
void hs_uuid4(char out[37]);
/* HubSpot's error body (§6): status, message, correlationId, category (may be NULL);
 * `extra` (may be NULL; taken) is merged in. */
void hs_error(struct sb_response *resp, int status, const char *category, const char *message,
              struct json_object *extra);
void hs_errorf(struct sb_response *resp, int status, const char *category, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The request body as a JSON object (caller puts), or NULL with a 400 in resp. */
struct json_object *hs_json_body(const struct sb_request *req, struct sb_response *resp);
/* "paging":{"next":{"after","link"}} added to out. */
void hs_paging_next(struct json_object *out, const struct sb_request *req, const char *after);
/* ?limit= (default dflt, clamped to max) -> 0 and *out, else -1 with a 400 in resp. */
int hs_limit_param(const struct sb_request *req, int dflt, int max, int *out,
                   struct sb_response *resp);
/* hs_auth_msg: the 401 message of a request without credentials. */
extern const char hs_auth_msg[];

/* ---- hubspot_oauth.c ---------------------------------------------------------------- */

enum hs_oauth_route {
    HS_OAUTH_TOKEN,   /* POST /oauth/v1|v3|YYYY-MM/token */
    HS_OAUTH_ACCESS,  /* GET /oauth/v1/access-tokens/{token} */
    HS_OAUTH_REFRESH, /* GET|DELETE /oauth/v1/refresh-tokens/{token} */
};
/* Serve one OAuth route (method already checked); token is the path's {token} (NULL for
 * the token endpoint). Takes hs.lock itself. */
void hs_oauth_handle(const struct sb_request *req, struct sb_response *resp,
                     enum hs_oauth_route route, const char *token);

/* ---- hubspot_actions.c -------------------------------------------------------------- */

/* Which definition route (both families, §1): {appId}, {appId}/{definitionId},
 * .../revisions, .../revisions/{revisionId}. Strings borrowed from the routed path. */
enum hs_def_kind { HS_DEFS, HS_DEF_ONE, HS_DEF_REVS, HS_DEF_REV };
struct hs_def_route {
    enum hs_def_kind kind;
    const char *app, *def, *rev;
};
/* Serve one action-definition request; takes hs.lock itself. */
void hs_actions_handle(const struct sb_request *req, struct sb_response *resp,
                       const struct hs_def_route *r);
/* Merge seed `developer_apps` (array) into hs.devapps; same app_id replaced. Write lock. */
int hs_devapps_seed(struct json_object *arr, char *err, size_t errsz);
/* Free every developer app and definition. Write lock. */
void hs_actions_clear_locked(void);
/* Lookups; borrowed until hs.lock is released; NULL when absent. Lock held. */
const struct hs_devapp *hs_devapp_find(int64_t app_id);
const struct hs_def *hs_def_find(int64_t app_id, int64_t def_id); /* archived included */
/* The input field definition named `name` in d (its "typeDefinition" object), or NULL;
 * *required (may be NULL) gets its isRequired. Lock held. */
struct json_object *hs_def_input(const struct hs_def *d, const char *name, int *required);
/* A workflow object type ("DEAL", "0-3", "deals", "deal") -> hs_types index, or -1. */
int hs_type_of_object(const char *s);

/* ---- workflows.c ------------------------------------------------------------------------ */

/* Drop every execution of the workflow engine (deliveries in progress finish and are
 * discarded). Called by hubspot_reset() with the write lock held. */
void wf_reset(void);

/* ---- hubspot_pricing.c ---------------------------------------------------------------- */

/* Recompute the derived figures of portal p from scratch: line items' tax first, then
 * quotes' hs_quote_amount and deals' amount (model and choices in hubspot_pricing.c).
 * stamp 0: every record; else only what a seed document stamped (stored, or linked) and
 * the quotes and deals those records belong to. Seeded values are kept; a figure that
 * cannot be computed (a non-numeric or out-of-range input, an overflow) is stored as
 * null. Never fails. Write lock. */
void hs_price_portal(struct hs_portal *p, unsigned stamp);

#endif
