/* sandbox.h - the contract between the parts of hsqb-sandbox.
 *
 * hsqb-sandbox is one libmicrohttpd process emulating three vendors: HubSpot (CRM reads,
 * automation callbacks), QuickBooks Online (Accounting API v3) and Intuit OAuth. The
 * server core (server.c, main.c) owns the HTTP plumbing and everything that is generic
 * across vendors: request log, fault rules, injected latency, admin routes (admin.c).
 * Each vendor module owns its in-memory state and exposes:
 *   <vendor>_handle()  - serve one request it claimed by path prefix,
 *   <vendor>_reset()   - drop all state,
 *   <vendor>_seed()    - load state from a JSON document (the same shape as
 *                        tests/sandbox/seed/<file>.json, see tests/sandbox/README.md),
 *   <vendor>_dump()    - write state as JSON for tests (admin GET /_sandbox/state).
 *
 * Threading: libmicrohttpd runs handlers on several threads. Every vendor module
 * serialises access to its own state with its own mutex; handlers never block while
 * holding it (injected latency is applied by the core outside any vendor lock).
 *
 * Routing (server.c): /crm/..., /automation/..., /oauth/... (HubSpot OAuth)
 * -> hubspot_handle; /v3/company/... -> qbo_handle; /oauth2/v1/tokens/... and
 * /v2/oauth2/tokens/revoke -> oauth_handle; /_sandbox/... -> admin_handle. Also
 * /tax-rates/... and /account-info/... -> hubspot_handle. The consent pages of both
 * vendors (/connect/oauth2..., /oauth/authorize..., authorize.h) go to authorize_route()
 * first and are logged as vendor "oauth" (Intuit) or "hubspot".
 *
 * Seed documents: main.c (--seed DIR, every *.json in name order) and admin POST
 * /_sandbox/seed pass EVERY document to every <vendor>_seed(). A seed document is a JSON
 * object; each vendor reads only its own top-level key ("hubspot" for hubspot.c; qbo.c
 * and oauth.c choose theirs) and returns 0 without change when its key is absent.
 * Seeding merges into existing state (same ids are replaced).
 */
#ifndef HSQB_SANDBOX_H
#define HSQB_SANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#define SB_MAX_BODY (4u << 20)  /* request body cap; larger -> 413 */
#define SB_MAX_RESP_HEADERS 16
#define SB_TENANT_MAX 32        /* portal id / realm id in the request log */

struct sb_request {
    const char *method;       /* "GET", "POST", ... */
    const char *path;         /* decoded path, no query string */
    const char *body;         /* NUL-terminated; "" when none */
    size_t body_len;
    void *conn;               /* struct MHD_Connection *, for sb_req_query/header */
};

/* Query argument / request header lookup (header names case-insensitive); borrowed
 * until the handler returns; NULL when absent. */
const char *sb_req_query(const struct sb_request *req, const char *key);
const char *sb_req_header(const struct sb_request *req, const char *name);
/* Every value of a repeated query argument joined with ',' ("properties=a,b&properties=c"
 * -> "a,b,c"); NULL when absent. Caller frees. */
char *sb_req_query_join(const struct sb_request *req, const char *key);

/* The value of `key` in an application/x-www-form-urlencoded body (NUL-terminated; '+'
 * and %XX decoded) into out. -1 when the key is absent or its value does not fit in
 * outsz (out then undefined). */
int sb_form_get(const char *body, const char *key, char *out, size_t outsz);

struct sb_response {
    int status;
    char *body;               /* malloc'd, owned by the response; NULL = empty */
    size_t body_len;
    const char *content_type; /* static string */
    int nheaders;
    char *hname[SB_MAX_RESP_HEADERS], *hvalue[SB_MAX_RESP_HEADERS]; /* malloc'd */
    /* Optional: the portal or realm the request belonged to, for the request log. The
     * core fills it for /v3/company/{realm}/ paths when the handler leaves it empty. */
    char tenant[SB_TENANT_MAX];
    /* Optional, admin routes only: a deferred answer. A handler that must wait for work
     * done on another thread (a delivery of the workflow engine) leaves status 0 and sets
     * poll: the core suspends the connection (no pool thread waits) and calls
     * poll(poll_arg, resp, final) every SB_POLL_MS until it returns 1 with resp filled;
     * final = 1 (shutting down, out of memory) means "answer now" and must return 1.
     * poll_free(poll_arg), when set, runs exactly once when the request ends, answered
     * or not. */
    int (*poll)(void *arg, struct sb_response *resp, int final);
    void (*poll_free)(void *arg);
    void *poll_arg;
};
#define SB_POLL_MS 10

/* Set status + JSON body (serialised compactly; obj may be NULL for an empty body).
 * Takes ownership of obj (json_object_put after serialising). */
void sb_resp_json(struct sb_response *resp, int status, struct json_object *obj);
/* Set status + the JSON text of w (sb_json.h; content type as sb_resp_json), taking its
 * buffer (w is released); a failed writer gives 500. */
struct sb_json;
void sb_resp_sb_json(struct sb_response *resp, int status, struct sb_json *w);
/* Set status + body copied from text with the given content type. */
void sb_resp_text(struct sb_response *resp, int status, const char *content_type,
                  const char *text);
/* Add a response header, or replace one of the same name (case-insensitive); both
 * strings copied, value printf-style and cut at 4095 bytes; at most SB_MAX_RESP_HEADERS. */
void sb_resp_header(struct sb_response *resp, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Milliseconds: wall clock (timestamps written out) and monotonic (rate windows). */
/* Fast per-thread pseudo-random numbers (not cryptographic): ids, jitter, shuffles. */
uint64_t sb_rand(void);
/* Format wall-clock ms as "2024-01-01T00:00:00.000Z" into buf (>= 25 bytes). */
void sb_iso8601(int64_t wall_ms, char *buf, size_t bufsz);
/* This thread's json-c tokener for bodies nested at most depth deep, reset for a new
 * parse: borrowed (never freed by the caller), valid until this thread's next
 * sb_tokener() call; NULL when out of memory. A tokener costs a few KB of allocation
 * (and of malloc's consolidation) per parse when made afresh, once per thread here. */
struct json_tokener *sb_tokener(int depth);

/* Server core (server.c). Start serving on host:port (port 0 = ephemeral) with
 * `threads` event-loop threads; *bound_port receives the port actually bound. */
int sb_server_start(const char *host, int port, int threads, int *bound_port, char *errstr,
                    size_t errsz);
/* Stop accepting, resume every delayed connection, stop the daemon. Idempotent. */
void sb_server_stop(void);

/* Vendor modules. */
void hubspot_handle(const struct sb_request *req, struct sb_response *resp);
void hubspot_reset(void);
int hubspot_seed(struct json_object *doc, char *errstr, size_t errsz);
struct json_object *hubspot_dump(const char *portal_id /* NULL = all */);
/* Runtime config (admin API): per-portal requests per 10 s (0 = unlimited). */
void hubspot_set_rate_limit(int per_10s);
/* Switchable HubSpot behaviours (reference §9 design choices) from a JSON object such as
 * {"line_items_key":"line items","daily_limit":0}; keys in tests/sandbox/README.md.
 * Unknown keys or bad types -> -1 with errstr and nothing changed. Borrows opts.
 * hubspot_options() returns the current values (caller puts). */
int hubspot_configure(struct json_object *opts, char *errstr, size_t errsz);
struct json_object *hubspot_options(void);

void qbo_handle(const struct sb_request *req, struct sb_response *resp);
void qbo_reset(void);
int qbo_seed(struct json_object *doc, char *errstr, size_t errsz);
struct json_object *qbo_dump(const char *realm_id /* NULL = all */);
/* Runtime config (admin API): per-realm requests per minute and concurrent requests
 * (0 = unlimited); requestid retention in seconds. */
void qbo_set_limits(int per_minute, int concurrent, int requestid_retention_s);
/* Concurrent-request admission for /v3/company/... (QBO's "10 concurrent requests per
 * realm"). The core calls qbo_admit() once a QBO request is complete, BEFORE any injected
 * latency. Returns 1: the request holds one in-flight slot of its realm; the core then
 * calls qbo_handle() as usual and qbo_release(req) once the response has been queued
 * (after latency), exactly once, even if a fault rule answered instead of qbo_handle.
 * Returns 0: over the limit; resp is filled (429 ThrottleExceeded + intuit_tid) and the
 * core sends it without calling qbo_handle or qbo_release. Without these calls there is
 * no concurrency limit (the per-minute limit lives in qbo_handle). */
int qbo_admit(const struct sb_request *req, struct sb_response *resp);
void qbo_release(const struct sb_request *req);
/* Switchable behaviours (reference §12 design choices) from a JSON object such as
 * {"per_second":10,"retry_after_s":5,"throttle_body":"json"}; keys are listed in
 * tests/sandbox/README.md (QBO section). Also applied from the seed's "options". Unknown
 * keys or bad types -> -1 with errstr and nothing changed. Borrows opts. qbo_options()
 * returns the current values (caller puts). qbo_reset() restores the defaults of every
 * option except the three qbo_set_limits() values (negative arguments there = unchanged). */
int qbo_configure(struct json_object *opts, char *errstr, size_t errsz);
struct json_object *qbo_options(void);

void oauth_handle(const struct sb_request *req, struct sb_response *resp);
void oauth_reset(void);
int oauth_seed(struct json_object *doc, char *errstr, size_t errsz);
struct json_object *oauth_dump(void);
/* Token TTLs (seconds) and rotation period of refresh tokens (seconds, 0 = never). */
void oauth_set_config(int access_ttl_s, int refresh_ttl_s, int rotate_after_s);
/* Same as qbo_configure for the token endpoint, e.g. {"rotate_after_ms":1,
 * "hard_ttl_s":3600}; keys in tests/sandbox/README.md. Borrows opts. oauth_set_config:
 * TTLs <= 0 and a negative rotation period leave the value unchanged; oauth_reset() keeps
 * these three and restores the other options. */
int oauth_configure(struct json_object *opts, char *errstr, size_t errsz);
/* The companies Intuit's consent page offers: [{"realmId","CompanyName","Country"}] in
 * seed order, from each realm's CompanyInfo. Caller puts. */
struct json_object *qbo_companies(void);

/* QBO access-token check used by qbo.c: 1 valid for realm, 0 expired/unknown. */
int oauth_access_token_valid(const char *realm_id, const char *bearer_token);

void admin_handle(const struct sb_request *req, struct sb_response *resp);
/* The admin API's error answer {"error": msg} (msg copied). */
void sb_admin_error(struct sb_response *resp, int status, const char *msg);
/* The whole request body as JSON (any type; caller puts), or NULL with a 400 in resp. */
struct json_object *sb_admin_body(const struct sb_request *req, struct sb_response *resp);

/* HubSpot's workflow engine (workflows.c, workflows_admin.c; README "Workflow engine").
 * workflows_admin() serves /_sandbox/hubspot/<rest> (rest starts with '/').
 * workflows_configure() applies the workflow_* settings (any thread; delivery threads
 * start lazily, up to workflow_threads). workflows_shutdown() stops and joins the
 * delivery threads (an exchange in progress is aborted within about a second) and frees
 * every execution; call it after sb_server_stop(), before hubspot_reset(). */
void workflows_admin(const struct sb_request *req, const char *rest, struct sb_response *resp);
struct sb_settings;
void workflows_configure(const struct sb_settings *s);
void workflows_shutdown(void);

/* ---- core services owned by admin.c, used by server.c and main.c ----
 * Runtime settings: one table (admin.c) drives the CLI flags (--name-with-dashes), POST
 * /_sandbox/config and GET /_sandbox/config. */
struct sb_settings {
    int latency_ms, jitter_ms;                 /* injected on every vendor response */
    int hubspot_rate_10s;                      /* per portal, 0 = unlimited */
    int qbo_rate_min, qbo_concurrent;          /* per realm, 0 = unlimited */
    int requestid_retention_s;                 /* QBO requestid replay window */
    int access_ttl_s, refresh_ttl_s, rotate_after_s; /* Intuit OAuth */
    int auth_code_ttl_s;                       /* codes of the consent pages (authorize.c) */
    int log_entries, log_body_max;             /* request log bounds */
    /* HubSpot workflow engine (workflows.c): delivery retries and timeouts. */
    int workflow_retry_base_ms, workflow_retry_max_ms, workflow_retry_attempts;
    int workflow_timeout_ms, workflow_threads;
};
/* Set one setting by name from text (CLI). -1 + errstr on unknown name or bad value. */
int sb_settings_set(const char *name, const char *value, char *errstr, size_t errsz);
/* Copy of the current settings (thread-safe). */
void sb_settings_get(struct sb_settings *out);
/* Push the current settings to the vendor modules; remember them as the startup state
 * that POST /_sandbox/reset restores. Called once by main.c before serving. */
void sb_settings_commit_startup(void);
/* Startup seed directory for POST /_sandbox/reset (NULL = none; string copied). */
void sb_set_seed_dir(const char *dir);
/* Load every *.json in dir (name order) into every vendor. */
int sb_seed_dir(const char *dir, char *errstr, size_t errsz);

/* Request log (bounded ring). `tenant` may be "". Bodies are copied up to
 * log_body_max bytes. status 0 = connection dropped by a fault rule. */
struct sb_log_entry_in {
    const char *method, *path, *query, *body, *vendor, *tenant;
    size_t body_len;
    int status, fault_id;
    int64_t start_wall_ms, duration_ms;
};
void sb_log_record(const struct sb_log_entry_in *e);

/* Fault rules. sb_fault_match() is called by the core for every vendor request once
 * its body is complete; on a match it fills *out and returns 1 (0 = no rule fired).
 * out->body is malloc'd (caller frees) or NULL; header strings likewise. */
enum sb_fault_phase { SB_FAULT_BEFORE = 0, SB_FAULT_AFTER = 1 };
struct sb_fault_action {
    int id;
    enum sb_fault_phase phase;  /* BEFORE: instead of the handler; AFTER: handler runs */
    int status;                 /* 0 = no replacement response */
    int drop;                   /* close the connection without a response */
    int delay_ms;               /* added before the response */
    char *body;
    size_t body_len;
    const char *content_type;   /* static */
    int nheaders;
    char *hname[SB_MAX_RESP_HEADERS], *hvalue[SB_MAX_RESP_HEADERS];
};
int sb_fault_match(const char *method, const char *path, const char *vendor,
                   struct sb_fault_action *out);
void sb_fault_action_release(struct sb_fault_action *a);
/* Free the log, rules and settings copies (exit path; keeps leak checkers quiet). */
void sb_admin_shutdown(void);

#endif
