/* hubspot.c - the HubSpot side of hsqb-sandbox: request handling. CRM object reads (v3
 * single, list, batch read; v4 associations), automation callback completion, private-app
 * and OAuth bearer tokens, tax rates, account details
 * (time zone, currency), rate limiting with the X-HubSpot-RateLimit-* headers, and
 * HubSpot's error bodies. Facts come from ../shared/reference/hubspot-api.md; where that
 * page records a design choice (§9) the choice is implemented and switchable through
 * hubspot_configure().
 *
 * The state (portals, objects, associations, tokens, callbacks), seeding, the dump and
 * the rendering of records live in hubspot_store.c; hubspot_internal.h has the
 * structures and the locking rules. In short: one writer-preferring rwlock guards it
 * all; reads (the hot path) share it, callback completion / token issue / seeding /
 * configuration take it for writing; each portal's rate window has its own mutex, taken
 * inside the rwlock, because concurrent readers count against the same window.
 *
 * Request path: route -> bearer token -> rate limit (headers added to every answer)
 * -> scope -> handler. The OAuth routes (hubspot_oauth.c) need no bearer and are not rate
 * limited.
 * Rejected requests (401, 429) are not counted against the window.
 */
#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/clock.h"
#include "tests/sandbox/hubspot_internal.h"
#include "tests/sandbox/sb_json.h"

#define HS_BATCH_MAX      100  /* CRM batch read inputs */
#define HS_V4_BATCH_MAX   1000 /* v4 association batch read inputs */
#define HS_CB_BATCH_MAX   100  /* callback completions per batch (design choice) */
#define HS_V4_LIMIT_MAX   500
#define HS_LIST_LIMIT_MAX 100
#define HS_MAX_SEGS       12
#define HS_WINDOW_MS      10000
#define HS_PATH_MAX       1024 /* request path routed by hubspot_handle; longer -> 414 */

/* Switchable behaviours (reference §9); guarded by hs.lock (see hubspot_internal.h). */
static const struct hs_opts opts_default = {190, 1000000, 1800, 1, 0, 0, 400, 0, 0, 604800};
struct hs_opts hs_opt = {190, 1000000, 1800, 1, 0, 0, 400, 0, 0, 604800};
static const char *const order_names[] = {"insertion", "reverse", "shuffle"};

void hs_uuid4(char out[37])
{
    uint64_t a = sb_rand(), b = sb_rand();
    snprintf(out, 37, "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(a >> 32),
             (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xfff,
             (unsigned)((b >> 48) & 0x3fff) | 0x8000, (unsigned long long)(b & 0xffffffffffffULL));
}

/* ---- errors -------------------------------------------------------------------------- */

/* HubSpot's standard error body (reference §6). `extra` (may be NULL) is merged in. */
void hs_error(struct sb_response *resp, int status, const char *category, const char *message,
              struct json_object *extra)
{
    char cid[37];
    struct json_object *o = json_object_new_object();
    hs_uuid4(cid);
    jadd(o, "status", jstr("error"));
    jadd(o, "message", jstr(message));
    jadd(o, "correlationId", jstr(cid));
    if (extra) {
        json_object_object_foreach(extra, k, v) jadd(o, k, json_object_get(v));
        json_object_put(extra);
    }
    if (category)
        jadd(o, "category", jstr(category));
    sb_resp_json(resp, status, o);
}

void hs_errorf(struct sb_response *resp, int status, const char *category, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    hs_error(resp, status, category, msg, NULL);
}

/* ---- reset and the core rate setting ------------------------------------------------ */

void hubspot_reset(void)
{
    hs_init();
    pthread_rwlock_wrlock(&hs.lock);
    hs_store_clear_locked();
    wf_reset();
    int rate = hs_opt.rate_10s;
    hs_opt = opts_default;
    hs_opt.rate_10s = rate; /* owned by the core settings, re-pushed after a reset */
    pthread_rwlock_unlock(&hs.lock);
}

void hubspot_set_rate_limit(int per_10s)
{
    hs_init();
    pthread_rwlock_wrlock(&hs.lock);
    pthread_mutex_lock(&hs.rate_mu);
    hs_opt.rate_10s = per_10s < 0 ? 0 : per_10s;
    pthread_mutex_unlock(&hs.rate_mu);
    pthread_rwlock_unlock(&hs.lock);
}

/* ---- authentication, rate limits, scopes -------------------------------------------- */

const char hs_auth_msg[] =
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and "
    "you can find more details at https://developers.hubspot.com/docs/methods/auth/"
    "oauth-overview";

/* Bearer token -> token record, or a 401 in resp. Caller holds hs.lock. */
static const struct hs_token *authenticate(const struct sb_request *req, struct sb_response *resp)
{
    const char *h = sb_req_header(req, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
        hs_error(resp, 401, "INVALID_AUTHENTICATION", hs_auth_msg, NULL);
        return NULL;
    }
    const char *tok = h + 7;
    while (*tok == ' ')
        tok++;
    const struct hs_token *t = strlen(tok) <= HS_TOKEN_MAX ? hs_token_find(tok) : NULL;
    if (!t) {
        hs_error(resp, 401, "INVALID_AUTHENTICATION", hs_auth_msg, NULL);
        return NULL;
    }
    int64_t now = clock_wall_ms();
    if (t->expires_ms && now >= t->expires_ms) {
        hs_errorf(resp, 401, "EXPIRED_AUTHENTICATION",
                  "The OAuth token used to make this call expired %lld minute(s) ago.",
                  (long long)((now - t->expires_ms) / 60000));
        return NULL;
    }
    return t;
}

static void rate_429(struct sb_response *resp, const char *policy, const char *msg,
                     int64_t retry_ms)
{
    char cid[37], rid[37];
    hs_uuid4(cid);
    hs_uuid4(rid);
    struct json_object *o = json_object_new_object();
    jadd(o, "status", jstr("error"));
    jadd(o, "message", jstr(msg));
    jadd(o, "errorType", jstr("RATE_LIMIT"));
    jadd(o, "correlationId", jstr(cid));
    jadd(o, "policyName", jstr(policy));
    jadd(o, "requestId", jstr(rid));
    if (hs_opt.retry_after && retry_ms > 0)
        sb_resp_header(resp, "Retry-After", "%lld", (long long)((retry_ms + 999) / 1000));
    sb_resp_json(resp, 429, o);
}

/* Count this request against the portal's rolling 10-second window and daily allowance
 * (§5); add the X-HubSpot-RateLimit-* headers. Returns -1 with a 429 in resp when over.
 * Rejected requests are not counted. Caller holds hs.lock (read). */
static int rate_check(struct hs_portal *p, int kind, struct sb_response *resp)
{
    int rc = 0;
    pthread_mutex_lock(&hs.rate_mu);
    struct rate_state *r = &p->rate;
    int limit = hs_opt.rate_10s, daily_limit = hs_opt.daily_limit;
    int64_t now = clock_mono_ms(), day = clock_wall_ms() / 86400000;
    if (r->day != day) { /* NEEDSWORK: resets at UTC midnight, not the portal's zone */
        r->day = day;
        r->daily = 0;
    }
    if (limit > 0 && r->cap != limit) {
        int64_t *ts = realloc(r->ts, (size_t)limit * sizeof(*ts));
        if (ts) {
            r->ts = ts;
            r->cap = limit;
            r->head = r->count = 0;
        } else {
            limit = 0;
        }
    }
    if (limit > 0)
        while (r->count > 0 && r->ts[(r->head - r->count + r->cap) % r->cap] <= now - HS_WINDOW_MS)
            r->count--;
    if (daily_limit > 0 && r->daily >= daily_limit) {
        rate_429(resp, "DAILY", "You have reached your daily limit.",
                 86400000 - clock_wall_ms() % 86400000);
        rc = -1;
    } else if (limit > 0 && r->count >= limit) {
        int64_t oldest = r->ts[(r->head - r->count + r->cap) % r->cap];
        rate_429(resp, "TEN_SECONDLY_ROLLING", "You have reached your ten_secondly_rolling limit.",
                 oldest + HS_WINDOW_MS - now);
        rc = -1;
    } else {
        if (limit > 0) {
            r->ts[r->head] = now;
            r->head = (r->head + 1) % r->cap;
            r->count++;
        }
        r->daily++;
    }
    if (limit > 0) {
        int secondly = (limit + 9) / 10, last_second = 0;
        for (int i = 1; i <= r->count; i++) {
            if (r->ts[(r->head - i + r->cap) % r->cap] <= now - 1000)
                break;
            last_second++;
        }
        sb_resp_header(resp, "X-HubSpot-RateLimit-Interval-Milliseconds", "%d", HS_WINDOW_MS);
        sb_resp_header(resp, "X-HubSpot-RateLimit-Max", "%d", limit);
        sb_resp_header(resp, "X-HubSpot-RateLimit-Remaining", "%d", limit - r->count);
        sb_resp_header(resp, "X-HubSpot-RateLimit-Secondly", "%d", secondly);
        sb_resp_header(resp, "X-HubSpot-RateLimit-Secondly-Remaining", "%d",
                       secondly > last_second ? secondly - last_second : 0);
    }
    if (daily_limit > 0 && kind == TOK_PRIVATE) { /* not sent for OAuth requests (§5) */
        sb_resp_header(resp, "X-HubSpot-RateLimit-Daily", "%d", daily_limit);
        sb_resp_header(resp, "X-HubSpot-RateLimit-Daily-Remaining", "%ld",
                       daily_limit > r->daily ? daily_limit - r->daily : 0L);
    }
    pthread_mutex_unlock(&hs.rate_mu);
    return rc;
}

static int has_scope(const struct hs_token *t, const char *scope, const char *alt)
{
    if (!t->scopes)
        return 1;
    for (size_t i = 0; i < json_object_array_length(t->scopes); i++) {
        const char *s = json_object_get_string(json_object_array_get_idx(t->scopes, i));
        if (strcmp(s, scope) == 0 || (alt && strcmp(s, alt) == 0))
            return 1;
    }
    return 0;
}

static int check_scope(const struct hs_token *t, const char *scope, const char *alt,
                       struct sb_response *resp)
{
    if (has_scope(t, scope, alt))
        return 0;
    struct json_object *extra = json_object_new_object(), *errs = json_object_new_array();
    struct json_object *e = json_object_new_object(), *ctx = json_object_new_object();
    struct json_object *req = json_object_new_array(), *links = json_object_new_object();
    json_object_array_add(req, jstr(scope));
    jadd(ctx, "requiredGranularScopes", req);
    jadd(e, "message", jstr("One or more of the following scopes are required."));
    jadd(e, "context", ctx);
    json_object_array_add(errs, e);
    jadd(extra, "errors", errs);
    jadd(links, "scopes", jstr("https://developers.hubspot.com/scopes"));
    jadd(extra, "links", links);
    hs_error(resp, 403, "MISSING_SCOPES",
             "This app hasn't been granted all required scopes to make this call. Read more "
             "about required scopes here: https://developers.hubspot.com/scopes.",
             extra);
    return -1;
}

/* ---- routing ------------------------------------------------------------------------- */

enum route_kind {
    R_NONE,
    R_OBJ_GET,
    R_OBJ_LIST,
    R_BATCH_READ,
    R_V4_ASSOC,
    R_V4_BATCH,
    R_CB_ONE,
    R_CB_BATCH,
    R_TAX_ONE,
    R_TAX_LIST,
    R_ACCOUNT,
    R_OAUTH,         /* token endpoint */
    R_OAUTH_ACCESS,  /* access-token metadata */
    R_OAUTH_REFRESH, /* refresh-token metadata and delete */
    R_DEFS,          /* action definitions (hubspot_actions.c): developer key, any method */
    R_DEF_ONE,
    R_DEF_REVS,
    R_DEF_REV
};

struct route {
    enum route_kind kind;
    const char *method; /* expected */
    const char *type_s, *to_s, *id;
};

static int is_version(const char *s)
{
    return strlen(s) == 7 && isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[3]) &&
           s[4] == '-' && isdigit((unsigned char)s[5]) && isdigit((unsigned char)s[6]);
}

static int seg_is(char **s, int n, int i, const char *want)
{
    return i < n && strcmp(s[i], want) == 0;
}

/* Map a path onto a route; segments point into buf. Both path families (§1). */
static void route_parse(char *buf, struct route *r)
{
    char *s[HS_MAX_SEGS];
    int n = 0;
    memset(r, 0, sizeof(*r));
    for (char *save = NULL, *tok = strtok_r(buf, "/", &save); tok;
         tok = strtok_r(NULL, "/", &save)) {
        if (n == HS_MAX_SEGS)
            return;
        s[n++] = tok;
    }
    int b = -1; /* index of the object type segment in the objects family */
    if (seg_is(s, n, 0, "crm") && seg_is(s, n, 1, "v3") && seg_is(s, n, 2, "objects"))
        b = 3;
    else if (seg_is(s, n, 0, "crm") && seg_is(s, n, 1, "v4") && seg_is(s, n, 2, "objects"))
        b = 3;
    else if (seg_is(s, n, 0, "crm") && seg_is(s, n, 1, "objects") && n > 2 && is_version(s[2]))
        b = 3;
    int v4 = seg_is(s, n, 1, "v4");
    if (b > 0 && n == b + 1 && !v4) {
        *r = (struct route){R_OBJ_LIST, "GET", s[b], NULL, NULL};
    } else if (b > 0 && n == b + 2 && !v4) {
        *r = (struct route){R_OBJ_GET, "GET", s[b], NULL, s[b + 1]};
    } else if (b > 0 && n == b + 3 && !v4 && seg_is(s, n, b + 1, "batch") &&
               seg_is(s, n, b + 2, "read")) {
        *r = (struct route){R_BATCH_READ, "POST", s[b], NULL, NULL};
    } else if (b > 0 && n == b + 4 && !seg_is(s, n, 1, "v3") &&
               seg_is(s, n, b + 2, "associations")) {
        *r = (struct route){R_V4_ASSOC, "GET", s[b], s[b + 3], s[b + 1]};
    } else if (seg_is(s, n, 0, "crm") && n == 7 &&
               (seg_is(s, n, 1, "v4") || (seg_is(s, n, 1, "associations") && is_version(s[2]))) &&
               (seg_is(s, n, 2, "associations") || is_version(s[2])) && seg_is(s, n, 5, "batch") &&
               seg_is(s, n, 6, "read")) {
        *r = (struct route){R_V4_BATCH, "POST", s[3], s[4], NULL};
    } else if (seg_is(s, n, 0, "automation") &&
               ((seg_is(s, n, 1, "v4") && seg_is(s, n, 2, "actions") &&
                 seg_is(s, n, 3, "callbacks")) ||
                (seg_is(s, n, 1, "actions") && seg_is(s, n, 2, "callbacks") && n > 3 &&
                 is_version(s[3])))) {
        if (n == 5 && seg_is(s, n, 4, "complete"))
            *r = (struct route){R_CB_BATCH, "POST", NULL, NULL, NULL};
        else if (n == 6 && seg_is(s, n, 5, "complete"))
            *r = (struct route){R_CB_ONE, "POST", NULL, NULL, s[4]};
    } else if (seg_is(s, n, 0, "automation") && n >= 4 && n <= 7 &&
               ((seg_is(s, n, 1, "v4") && seg_is(s, n, 2, "actions")) ||
                (seg_is(s, n, 1, "actions") && is_version(s[2])))) {
        /* {appId}[/{definitionId}[/revisions[/{revisionId}]]] */
        if (n == 4)
            *r = (struct route){R_DEFS, NULL, s[3], NULL, NULL};
        else if (n == 5)
            *r = (struct route){R_DEF_ONE, NULL, s[3], NULL, s[4]};
        else if (seg_is(s, n, 5, "revisions"))
            *r = (struct route){n == 6 ? R_DEF_REVS : R_DEF_REV, NULL, s[3], n == 7 ? s[6] : NULL,
                                s[4]};
    } else if (seg_is(s, n, 0, "tax-rates") && seg_is(s, n, 1, "v1") &&
               seg_is(s, n, 2, "tax-rates")) {
        if (n == 3)
            *r = (struct route){R_TAX_LIST, "GET", NULL, NULL, NULL};
        else if (n == 4)
            *r = (struct route){R_TAX_ONE, "GET", NULL, NULL, s[3]};
    } else if (seg_is(s, n, 0, "account-info") && n == 3 && seg_is(s, n, 2, "details") &&
               (seg_is(s, n, 1, "v3") || is_version(s[1]))) {
        *r = (struct route){R_ACCOUNT, "GET", NULL, NULL, NULL};
    } else if (seg_is(s, n, 0, "oauth") && n == 3 && seg_is(s, n, 2, "token") &&
               (seg_is(s, n, 1, "v1") || seg_is(s, n, 1, "v3") || is_version(s[1]))) {
        *r = (struct route){R_OAUTH, "POST", NULL, NULL, NULL};
    } else if (seg_is(s, n, 0, "oauth") && seg_is(s, n, 1, "v1") && n == 4 &&
               seg_is(s, n, 2, "access-tokens")) {
        *r = (struct route){R_OAUTH_ACCESS, "GET", NULL, NULL, s[3]};
    } else if (seg_is(s, n, 0, "oauth") && seg_is(s, n, 1, "v1") && n == 4 &&
               seg_is(s, n, 2, "refresh-tokens")) {
        *r = (struct route){R_OAUTH_REFRESH, NULL, NULL, NULL, s[3]};
    }
}

/* ---- CRM handlers (caller holds hs.lock for reading) --------------------------------- */

static int query_names(const struct sb_request *req, const char *key, struct names *ns)
{
    hs_names_parse(ns, sb_req_query_join(req, key));
    return ns->n;
}

static int archived_param(const struct sb_request *req)
{
    const char *a = sb_req_query(req, "archived");
    return a && strcmp(a, "true") == 0;
}

static struct hs_obj *find_by_property(struct hs_portal *p, int t, const char *prop,
                                       const char *value)
{
    for (size_t i = 0; i < p->nlist[t]; i++) {
        const char *v;
        struct hs_obj *o = p->list[t][i];
        if (hs_props_get(o->props, prop, &v) && v &&
            (strcmp(prop, "email") == 0 ? strcasecmp(v, value) : strcmp(v, value)) == 0)
            return o;
    }
    return NULL;
}

static struct hs_obj *lookup(struct hs_portal *p, int t, const char *id, const char *id_prop)
{
    int64_t n;
    if (id_prop && strcmp(id_prop, "hs_object_id") != 0)
        return find_by_property(p, t, id_prop, id);
    return hs_parse_i64(id, &n) == 0 ? hs_obj_get(p->id, t, n) : NULL;
}

static void h_obj_get(struct hs_portal *p, int t, const char *id, const struct sb_request *req,
                      struct sb_response *resp)
{
    struct hs_obj *o = lookup(p, t, id, sb_req_query(req, "idProperty"));
    if (!o || o->archived != archived_param(req)) {
        hs_error(resp, 404, "OBJECT_NOT_FOUND", "resource not found", NULL);
        return;
    }
    struct names props, assoc, hist;
    query_names(req, "properties", &props);
    query_names(req, "associations", &assoc);
    query_names(req, "propertiesWithHistory", &hist);
    struct sb_json w;
    sb_json_init(&w);
    hs_write_obj(&w, o, &props, &assoc, &hist);
    sb_resp_sb_json(resp, 200, &w);
    free(props.buf);
    free(assoc.buf);
    free(hist.buf);
}

void hs_paging_next(struct json_object *out, const struct sb_request *req, const char *after)
{
    char link[1024];
    const char *host = sb_req_header(req, "Host");
    snprintf(link, sizeof(link), "http://%s%s?after=%s", host ? host : "api.hubapi.com", req->path,
             after);
    struct json_object *paging = json_object_new_object(), *next = json_object_new_object();
    jadd(next, "after", jstr(after));
    jadd(next, "link", jstr(link));
    jadd(paging, "next", next);
    jadd(out, "paging", paging);
}

int hs_limit_param(const struct sb_request *req, int dflt, int max, int *out,
                   struct sb_response *resp)
{
    const char *l = sb_req_query(req, "limit");
    int64_t v = dflt;
    if (l && (hs_parse_i64(l, &v) != 0 || v < 1)) {
        hs_errorf(resp, 400, "VALIDATION_ERROR", "limit must be a positive integer, got '%s'", l);
        return -1;
    }
    *out = v > max ? max : (int)v; /* design choice: clamp rather than reject */
    return 0;
}

static void h_list(struct hs_portal *p, int t, const struct sb_request *req,
                   struct sb_response *resp)
{
    int limit, archived = archived_param(req);
    int64_t after = 0;
    const char *a = sb_req_query(req, "after");
    if (hs_limit_param(req, 10, HS_LIST_LIMIT_MAX, &limit, resp))
        return;
    if (a && hs_parse_i64(a, &after) != 0) {
        hs_errorf(resp, 400, "VALIDATION_ERROR", "Invalid 'after' cursor: %s", a);
        return;
    }
    struct names props, assoc;
    query_names(req, "properties", &props);
    query_names(req, "associations", &assoc);
    struct json_object *out = json_object_new_object(), *res = json_object_new_array();
    int n = 0;
    size_t i = hs_list_lower_bound(p, t, after);
    for (; i < p->nlist[t]; i++) {
        struct hs_obj *o = p->list[t][i];
        if (o->archived != archived)
            continue;
        if (n == limit)
            break;
        json_object_array_add(res, hs_render_obj(o, &props, &assoc, NULL));
        n++;
    }
    jadd(out, "results", res);
    if (i < p->nlist[t]) {
        char next[32];
        snprintf(next, sizeof(next), "%lld", (long long)p->list[t][i]->id);
        hs_paging_next(out, req, next);
    }
    free(props.buf);
    free(assoc.buf);
    sb_resp_json(resp, 200, out);
}

struct json_object *hs_json_body(const struct sb_request *req, struct sb_response *resp)
{
    struct json_tokener *tok = sb_tokener(JSON_TOKENER_DEFAULT_DEPTH);
    struct json_object *o = NULL;
    enum json_tokener_error e = json_tokener_error_parse_eof;
    if (tok) {
        o = json_tokener_parse_ex(tok, req->body, (int)req->body_len);
        e = json_tokener_get_error(tok);
        if (e == json_tokener_continue)
            e = json_tokener_error_parse_eof;
        if (e != json_tokener_success || !json_object_is_type(o, json_type_object)) {
            json_object_put(o);
            o = NULL;
        }
    }
    if (!o)
        hs_errorf(resp, 400, "VALIDATION_ERROR", "Invalid input JSON: %s",
                  e == json_tokener_success ? "expected an object" : json_tokener_error_desc(e));
    return o;
}

/* Names from a JSON array of strings (batch "properties"); ns->buf owns the copy. */
static int json_names(struct json_object *arr, struct names *ns)
{
    size_t total = 1;
    ns->n = 0;
    ns->buf = NULL;
    if (!arr)
        return 0;
    if (!json_object_is_type(arr, json_type_array))
        return -1;
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        struct json_object *s = json_object_array_get_idx(arr, i);
        if (!json_object_is_type(s, json_type_string))
            return -1;
        total += (size_t)json_object_get_string_len(s) + 1;
    }
    char *buf = malloc(total), *w = buf;
    if (!buf)
        return -1;
    *w = '\0';
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        const char *sv = json_object_get_string(json_object_array_get_idx(arr, i));
        w += sprintf(w, "%s%s", i ? "," : "", sv);
    }
    hs_names_parse(ns, buf);
    return 0;
}

static void h_batch_read(struct hs_portal *p, int t, const struct sb_request *req,
                         struct sb_response *resp)
{
    struct json_object *body = hs_json_body(req, resp), *inputs, *v;
    struct names props = {0}, hist = {0};
    const char *id_prop = NULL;
    int archived = archived_param(req);
    if (!body)
        return;
    if (!json_object_object_get_ex(body, "inputs", &inputs) ||
        !json_object_is_type(inputs, json_type_array)) {
        hs_error(resp, 400, "VALIDATION_ERROR", "Invalid input JSON: 'inputs' is required", NULL);
        goto out;
    }
    size_t n = json_object_array_length(inputs);
    if (n > HS_BATCH_MAX) {
        hs_errorf(resp, 400, "VALIDATION_ERROR",
                  "Batch input limit exceeded: got %zu inputs, the maximum is %d", n, HS_BATCH_MAX);
        goto out;
    }
    if ((json_object_object_get_ex(body, "properties", &v) && json_names(v, &props)) ||
        (json_object_object_get_ex(body, "propertiesWithHistory", &v) && json_names(v, &hist))) {
        hs_error(resp, 400, "VALIDATION_ERROR", "'properties' must be an array of strings", NULL);
        goto out;
    }
    if (json_object_object_get_ex(body, "idProperty", &v) && v) {
        if (!json_object_is_type(v, json_type_string)) {
            hs_error(resp, 400, "VALIDATION_ERROR", "'idProperty' must be a string", NULL);
            goto out;
        }
        id_prop = json_object_get_string(v);
    }
    struct json_object *missing = json_object_new_array();
    struct hs_obj **done = calloc(n ? n : 1, sizeof(*done));
    size_t ndone = 0;
    struct sb_json w; /* the answer, written as text (sb_json.h) */
    sb_json_init(&w);
    sb_json_open(&w, '{');
    sb_json_kv_str(&w, "status", "COMPLETE");
    sb_json_key(&w, "results");
    sb_json_open(&w, '[');
    for (size_t i = 0; i < n; i++) {
        struct json_object *in = json_object_array_get_idx(inputs, i), *idv;
        const char *id;
        char num[32];
        if (!json_object_is_type(in, json_type_object) ||
            !json_object_object_get_ex(in, "id", &idv) ||
            !(json_object_is_type(idv, json_type_string) ||
              json_object_is_type(idv, json_type_int))) {
            sb_json_release(&w);
            json_object_put(missing);
            free(done);
            hs_errorf(resp, 400, "VALIDATION_ERROR", "inputs[%zu].id must be a string", i);
            goto out;
        }
        if (json_object_is_type(idv, json_type_int)) {
            snprintf(num, sizeof(num), "%lld", (long long)json_object_get_int64(idv));
            id = num;
        } else {
            id = json_object_get_string(idv);
        }
        struct hs_obj *o = lookup(p, t, id, id_prop);
        if (!o || o->archived != archived) {
            json_object_array_add(missing, jstr(id));
            continue;
        }
        int dup = 0;
        for (size_t k = 0; k < ndone && !dup; k++)
            dup = done[k] == o;
        if (dup)
            continue;
        done[ndone++] = o;
        hs_write_obj(&w, o, &props, NULL, &hist);
    }
    free(done);
    sb_json_close(&w, ']');
    int nmissing = (int)json_object_array_length(missing);
    if (nmissing) {
        char msg[256];
        struct json_object *errs = json_object_new_array(), *e = json_object_new_object();
        struct json_object *ctx = json_object_new_object();
        snprintf(msg, sizeof(msg),
                 "Could not get some %s objects, they may be deleted or not exist. Check that "
                 "ids are valid.",
                 hs_types[t].upper);
        jadd(e, "status", jstr("error"));
        jadd(e, "category", jstr("OBJECT_NOT_FOUND"));
        jadd(e, "message", jstr(msg));
        jadd(ctx, "ids", missing);
        jadd(e, "context", ctx);
        json_object_array_add(errs, e);
        sb_json_kv_int(&w, "numErrors", 1);
        sb_json_key(&w, "errors");
        size_t len = 0;
        const char *text = json_object_to_json_string_length(
            errs, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        sb_json_raw(&w, text, len);
        json_object_put(errs);
    } else {
        json_object_put(missing);
    }
    char now[40];
    sb_iso8601(clock_wall_ms(), now, sizeof(now));
    sb_json_kv_str(&w, "startedAt", now);
    sb_json_kv_str(&w, "completedAt", now);
    sb_json_close(&w, '}');
    sb_resp_sb_json(resp, nmissing ? 207 : 200, &w);
out:
    free(props.buf);
    free(hist.buf);
    json_object_put(body);
}

static void h_v4_assoc(struct hs_portal *p, int t, int to, const char *id,
                       const struct sb_request *req, struct sb_response *resp)
{
    int64_t oid, after = 0;
    int limit;
    const char *a = sb_req_query(req, "after");
    struct hs_obj *o = hs_parse_i64(id, &oid) == 0 ? hs_obj_get(p->id, t, oid) : NULL;
    if (!o || o->archived) {
        hs_error(resp, 404, "OBJECT_NOT_FOUND", "resource not found", NULL);
        return;
    }
    if (hs_limit_param(req, HS_V4_LIMIT_MAX, HS_V4_LIMIT_MAX, &limit, resp))
        return;
    if (a && hs_parse_i64(a, &after) != 0) {
        hs_errorf(resp, 400, "VALIDATION_ERROR", "Invalid 'after' cursor: %s", a);
        return;
    }
    int *idx = malloc((size_t)(o->nlinks ? o->nlinks : 1) * sizeof(int));
    if (!idx) {
        hs_error(resp, 500, "INTERNAL_ERROR", "out of memory", NULL);
        return;
    }
    int n = hs_links_ordered(o, to, idx), k = (int)(after < n ? after : n), emitted = 0;
    struct json_object *out = json_object_new_object(), *res = json_object_new_array();
    for (; k < n && emitted < limit; k++, emitted++)
        json_object_array_add(res, hs_render_v4_link(&o->links[idx[k]]));
    free(idx);
    jadd(out, "results", res);
    if (k < n) {
        char next[32];
        snprintf(next, sizeof(next), "%d", k);
        hs_paging_next(out, req, next);
    }
    sb_resp_json(resp, 200, out);
}

static void h_v4_batch(struct hs_portal *p, int t, int to, const struct sb_request *req,
                       struct sb_response *resp)
{
    struct json_object *body = hs_json_body(req, resp), *inputs;
    if (!body)
        return;
    if (!json_object_object_get_ex(body, "inputs", &inputs) ||
        !json_object_is_type(inputs, json_type_array) ||
        json_object_array_length(inputs) > HS_V4_BATCH_MAX) {
        hs_errorf(resp, 400, "VALIDATION_ERROR", "'inputs' must be an array of at most %d",
                  HS_V4_BATCH_MAX);
        json_object_put(body);
        return;
    }
    struct json_object *results = json_object_new_array(), *errs = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(inputs); i++) {
        struct json_object *in = json_object_array_get_idx(inputs, i), *idv;
        int64_t id;
        const char *ids = "";
        struct hs_obj *o = NULL;
        if (json_object_is_type(in, json_type_object) &&
            json_object_object_get_ex(in, "id", &idv) &&
            json_object_is_type(idv, json_type_string)) {
            ids = json_object_get_string(idv);
            if (hs_parse_i64(ids, &id) == 0)
                o = hs_obj_get(p->id, t, id);
        }
        int nl = 0;
        for (int k = 0; o && k < o->nlinks; k++)
            nl += o->links[k].to_type == to;
        if (!o || o->archived || !nl) {
            char msg[256];
            struct json_object *e = json_object_new_object(), *ctx = json_object_new_object();
            struct json_object *fid = json_object_new_array();
            snprintf(msg, sizeof(msg), "No %s is associated with %s %s.", hs_types[to].singular,
                     hs_types[t].singular, ids);
            jadd(e, "status", jstr("error"));
            jadd(e, "category", jstr("OBJECT_NOT_FOUND"));
            jadd(e, "subCategory", jstr("crm.associations.NO_ASSOCIATIONS_FOUND"));
            jadd(e, "message", jstr(msg));
            json_object_array_add(fid, jstr(ids));
            jadd(ctx, "fromObjectId", fid);
            jadd(e, "context", ctx);
            json_object_array_add(errs, e);
            continue;
        }
        int *idx = malloc((size_t)o->nlinks * sizeof(int));
        struct json_object *r = json_object_new_object(), *from = json_object_new_object();
        struct json_object *tos = json_object_new_array();
        int n = idx ? hs_links_ordered(o, to, idx) : 0;
        for (int k = 0; k < n; k++)
            json_object_array_add(tos, hs_render_v4_link(&o->links[idx[k]]));
        free(idx);
        jadd(from, "id", jstr(ids));
        jadd(r, "from", from);
        jadd(r, "to", tos);
        json_object_array_add(results, r);
    }
    struct json_object *out = json_object_new_object();
    int nerr = (int)json_object_array_length(errs);
    int64_t now = clock_wall_ms();
    jadd(out, "status", jstr("COMPLETE"));
    jadd(out, "results", results);
    if (nerr) {
        jadd(out, "numErrors", json_object_new_int(nerr));
        jadd(out, "errors", errs);
    } else {
        json_object_put(errs);
    }
    jadd(out, "startedAt", jiso(now));
    jadd(out, "completedAt", jiso(now));
    sb_resp_json(resp, nerr ? 207 : 200, out);
    json_object_put(body);
}

static void h_tax(struct hs_portal *p, const char *id, struct sb_response *resp)
{
    struct json_object *rec, *copy = NULL;
    if (!id) {
        struct json_object *out = json_object_new_object(), *res = json_object_new_array();
        json_object_object_foreach(p->tax_rates, k, v)
        {
            (void)k;
            copy = NULL;
            if (json_object_deep_copy(v, &copy, NULL) == 0)
                json_object_array_add(res, copy);
        }
        jadd(out, "results", res);
        sb_resp_json(resp, 200, out);
        return;
    }
    if (!json_object_object_get_ex(p->tax_rates, id, &rec) ||
        json_object_deep_copy(rec, &copy, NULL) != 0) {
        hs_error(resp, 404, "OBJECT_NOT_FOUND", "resource not found", NULL);
        return;
    }
    sb_resp_json(resp, 200, copy);
}

/* GET /account-info/v3/details: HubSpot's documented shape; the time zone and currency
 * are seeded per portal, the offset is the zone's at this instant (hs_portal_utc_offset),
 * the rest is what a standard na1 account answers. */
static void h_account(const struct hs_portal *p, struct sb_response *resp)
{
    int off = hs_portal_utc_offset(p, clock_wall_ms());
    char utc[16]; /* "-05:00"; the offset is within ±14:00 (seeding) */
    snprintf(utc, sizeof(utc), "%c%02d:%02d", off < 0 ? '-' : '+', abs(off) / 60, abs(off) % 60);
    struct json_object *o = json_object_new_object();
    jadd(o, "portalId", json_object_new_int64(p->id));
    jadd(o, "accountType", jstr("STANDARD"));
    jadd(o, "timeZone", jstr(p->time_zone));
    jadd(o, "companyCurrency", jstr(p->currency));
    jadd(o, "additionalCurrencies", json_object_new_array());
    jadd(o, "utcOffset", jstr(utc));
    jadd(o, "utcOffsetMilliseconds", json_object_new_int64((int64_t)off * 60000));
    jadd(o, "uiDomain", jstr("app.hubspot.com"));
    jadd(o, "dataHostingLocation", jstr("na1"));
    sb_resp_json(resp, 200, o);
}

/* ---- automation callbacks (caller holds hs.lock for writing) ------------------------- */

/* Validate one completion; on error fill resp and return -1. *cb_out may stay NULL when
 * unknown callbacks are accepted (then created on apply). */
static int cb_check(int64_t portal, const char *id, struct json_object *outputs,
                    struct hs_cb **cb_out, struct sb_response *resp)
{
    struct json_object *st;
    if (!json_object_is_type(outputs, json_type_object) ||
        !json_object_object_get_ex(outputs, "hs_execution_state", &st) ||
        !json_object_is_type(st, json_type_string) ||
        (strcmp(json_object_get_string(st), "SUCCESS") != 0 &&
         strcmp(json_object_get_string(st), "FAIL_CONTINUE") != 0)) {
        hs_errorf(resp, 400, "VALIDATION_ERROR",
                  "Callback %s: outputFields.hs_execution_state must be SUCCESS or "
                  "FAIL_CONTINUE",
                  id);
        return -1;
    }
    struct hs_cb *c = hs_cb_find(id);
    if (c && c->portal != portal)
        c = NULL; /* another portal's callback is invisible */
    *cb_out = c;
    if (!c) {
        if (hs_opt.cb_accept_unknown)
            return 0;
        hs_errorf(resp, 404, "OBJECT_NOT_FOUND", "Callback %s not found", id);
        return -1;
    }
    int expired = clock_wall_ms() >= c->expires_ms, done = c->completed || c->closed;
    if ((done || expired) && hs_opt.cb_done_status != 204) {
        c->rejected++;
        hs_errorf(resp, 400, "VALIDATION_ERROR", "Callback %s %s", id,
                  done ? "has already been completed" : "has expired");
        return -1;
    }
    return 0;
}

static int cb_apply(int64_t portal, const char *id, struct hs_cb *c, struct json_object *outputs,
                    const char *via)
{
    int64_t now = clock_wall_ms();
    if (!c && !(c = hs_cb_register(id, portal, now, now + (int64_t)hs_opt.cb_expiry_s * 1000)))
        return -1;
    if (c->completed || c->closed || now >= c->expires_ms) { /* 204 by configuration */
        c->rejected++;
        return 0;
    }
    struct json_object *copy = NULL;
    if (json_object_deep_copy(outputs, &copy, NULL) != 0)
        return -1;
    json_object_put(c->outputs);
    c->outputs = copy;
    c->completed = 1;
    c->completed_ms = now;
    c->completions++;
    c->via = via;
    return 0;
}

static void h_cb_one(int64_t portal, const char *id, const struct sb_request *req,
                     struct sb_response *resp)
{
    struct json_object *body = hs_json_body(req, resp), *outputs = NULL;
    struct hs_cb *c;
    if (!body)
        return;
    json_object_object_get_ex(body, "outputFields", &outputs);
    if (cb_check(portal, id, outputs, &c, resp) == 0) {
        if (cb_apply(portal, id, c, outputs, "single") == 0)
            sb_resp_json(resp, 204, NULL);
        else
            hs_error(resp, 500, "INTERNAL_ERROR", "cannot record the completion", NULL);
    }
    json_object_put(body);
}

/* Batch completion: all-or-nothing (design choice; the docs are silent). */
static void h_cb_batch(int64_t portal, const struct sb_request *req, struct sb_response *resp)
{
    struct json_object *body = hs_json_body(req, resp), *inputs;
    struct hs_cb **cbs = NULL;
    size_t n;
    if (!body)
        return;
    if (!json_object_object_get_ex(body, "inputs", &inputs) ||
        !json_object_is_type(inputs, json_type_array) ||
        (n = json_object_array_length(inputs)) == 0 || n > HS_CB_BATCH_MAX) {
        hs_errorf(resp, 400, "VALIDATION_ERROR", "'inputs' must be an array of 1..%d items",
                  HS_CB_BATCH_MAX);
        goto out;
    }
    cbs = calloc(n, sizeof(*cbs));
    if (!cbs)
        goto out;
    for (size_t i = 0; i < n; i++) {
        struct json_object *in = json_object_array_get_idx(inputs, i), *idv, *outputs = NULL;
        if (!json_object_is_type(in, json_type_object) ||
            !json_object_object_get_ex(in, "callbackId", &idv) ||
            !json_object_is_type(idv, json_type_string)) {
            hs_errorf(resp, 400, "VALIDATION_ERROR", "inputs[%zu].callbackId must be a string", i);
            goto out;
        }
        for (size_t k = 0; k < i; k++) {
            struct json_object *prev;
            json_object_object_get_ex(json_object_array_get_idx(inputs, k), "callbackId", &prev);
            if (strcmp(json_object_get_string(prev), json_object_get_string(idv)) == 0) {
                hs_errorf(resp, 400, "VALIDATION_ERROR", "Duplicate callbackId %s",
                          json_object_get_string(idv));
                goto out;
            }
        }
        json_object_object_get_ex(in, "outputFields", &outputs);
        if (cb_check(portal, json_object_get_string(idv), outputs, &cbs[i], resp))
            goto out;
    }
    for (size_t i = 0; i < n; i++) {
        struct json_object *in = json_object_array_get_idx(inputs, i), *idv, *outputs;
        json_object_object_get_ex(in, "callbackId", &idv);
        json_object_object_get_ex(in, "outputFields", &outputs);
        if (cb_apply(portal, json_object_get_string(idv), cbs[i], outputs, "batch")) {
            hs_error(resp, 500, "INTERNAL_ERROR", "cannot record the completion", NULL);
            goto out;
        }
    }
    sb_resp_json(resp, 204, NULL);
out:
    free(cbs);
    json_object_put(body);
}

/* ---- entry point --------------------------------------------------------------------- */

void hubspot_handle(const struct sb_request *req, struct sb_response *resp)
{
    char buf[HS_PATH_MAX];
    struct route r;
    hs_init();
    if (strlen(req->path) >= sizeof(buf)) {
        hs_error(resp, 414, NULL, "URI too long", NULL);
        return;
    }
    snprintf(buf, sizeof(buf), "%s", req->path);
    route_parse(buf, &r);
    if (r.kind == R_NONE) {
        hs_errorf(resp, 404, NULL, "No HubSpot route for %s %s", req->method, req->path);
        return;
    }
    if (r.kind >= R_DEFS) {
        static const enum hs_def_kind kinds[] = {HS_DEFS, HS_DEF_ONE, HS_DEF_REVS, HS_DEF_REV};
        struct hs_def_route d = {kinds[r.kind - R_DEFS], r.type_s, r.id, r.to_s};
        hs_actions_handle(req, resp, &d);
        return;
    }
    if (r.kind == R_OAUTH_REFRESH && strcmp(req->method, "GET") != 0 &&
        strcmp(req->method, "DELETE") != 0) {
        hs_errorf(resp, 405, NULL, "HTTP %s is not supported by this endpoint", req->method);
        return;
    }
    if (r.method && strcmp(req->method, r.method) != 0) {
        hs_errorf(resp, 405, NULL, "HTTP %s is not supported by this endpoint", req->method);
        return;
    }
    if (r.kind == R_OAUTH || r.kind == R_OAUTH_ACCESS || r.kind == R_OAUTH_REFRESH) {
        static const enum hs_oauth_route kinds[] = {HS_OAUTH_TOKEN, HS_OAUTH_ACCESS,
                                                    HS_OAUTH_REFRESH};
        hs_oauth_handle(req, resp, kinds[r.kind - R_OAUTH], r.id);
        return;
    }
    int t = r.type_s ? hs_type_find(r.type_s) : -1, to = r.to_s ? hs_type_find(r.to_s) : -1;
    if ((r.type_s && t < 0) || (r.to_s && to < 0)) {
        hs_errorf(resp, 400, "VALIDATION_ERROR", "Unable to infer object type from: %s",
                  r.type_s && t < 0 ? r.type_s : r.to_s);
        return;
    }
    int write = r.kind == R_CB_ONE || r.kind == R_CB_BATCH;
    if (write)
        pthread_rwlock_wrlock(&hs.lock);
    else
        pthread_rwlock_rdlock(&hs.lock);
    const struct hs_token *tok = authenticate(req, resp);
    if (!tok)
        goto out;
    struct hs_portal *p = tok->portal;
    snprintf(resp->tenant, sizeof(resp->tenant), "%lld", (long long)p->id);
    if (rate_check(p, tok->kind, resp))
        goto out;
    if (write) {
        if (check_scope(tok, "automation", NULL, resp) == 0) {
            if (r.kind == R_CB_ONE)
                h_cb_one(p->id, r.id, req, resp);
            else
                h_cb_batch(p->id, req, resp);
        }
        goto out;
    }
    if (r.kind == R_ACCOUNT) {
        /* No scope check: any valid token of the portal reads its account (README). */
        h_account(p, resp);
        goto out;
    }
    if (r.kind == R_TAX_ONE || r.kind == R_TAX_LIST) {
        if (check_scope(tok, "tax_rates.read", NULL, resp) == 0)
            h_tax(p, r.kind == R_TAX_ONE ? r.id : NULL, resp);
        goto out;
    }
    if (check_scope(tok, hs_types[t].scope, hs_types[t].alt_scope, resp))
        goto out;
    switch (r.kind) {
    case R_OBJ_GET:
        h_obj_get(p, t, r.id, req, resp);
        break;
    case R_OBJ_LIST:
        h_list(p, t, req, resp);
        break;
    case R_BATCH_READ:
        h_batch_read(p, t, req, resp);
        break;
    case R_V4_ASSOC:
        h_v4_assoc(p, t, to, r.id, req, resp);
        break;
    case R_V4_BATCH:
        h_v4_batch(p, t, to, req, resp);
        break;
    default:
        hs_error(resp, 500, "INTERNAL_ERROR", "unrouted", NULL);
        break;
    }
out:
    pthread_rwlock_unlock(&hs.lock);
}

/* ---- options ------------------------------------------------------------------------- */

struct json_object *hubspot_options(void)
{
    hs_init();
    struct json_object *o = json_object_new_object();
    pthread_rwlock_rdlock(&hs.lock);
    struct hs_opts c = hs_opt;
    pthread_rwlock_unlock(&hs.lock);
    jadd(o, "rate_10s", json_object_new_int(c.rate_10s));
    jadd(o, "daily_limit", json_object_new_int(c.daily_limit));
    jadd(o, "access_ttl_s", json_object_new_int(c.access_ttl_s));
    jadd(o, "line_items_key", jstr(c.line_items_spaced ? "line items" : "line_items"));
    jadd(o, "association_order", jstr(order_names[c.order]));
    jadd(o, "contact_unlabeled_duplicates", json_object_new_boolean(c.contact_dupes));
    jadd(o, "callback_repeat_status", json_object_new_int(c.cb_done_status));
    jadd(o, "callback_accept_unknown", json_object_new_boolean(c.cb_accept_unknown));
    jadd(o, "callback_expiry_s", json_object_new_int(c.cb_expiry_s));
    jadd(o, "retry_after_on_429", json_object_new_boolean(c.retry_after));
    return o;
}

static int opt_int(struct json_object *v, const char *k, int lo, int hi, int *out, char *err,
                   size_t errsz)
{
    if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < lo ||
        json_object_get_int64(v) > hi) {
        snprintf(err, errsz, "hubspot option '%s' must be an integer in %d..%d", k, lo, hi);
        return -1;
    }
    *out = (int)json_object_get_int64(v);
    return 0;
}

static int opt_bool(struct json_object *v, const char *k, int *out, char *err, size_t errsz)
{
    if (!json_object_is_type(v, json_type_boolean)) {
        snprintf(err, errsz, "hubspot option '%s' must be a boolean", k);
        return -1;
    }
    *out = json_object_get_boolean(v);
    return 0;
}

int hubspot_configure(struct json_object *opts, char *errstr, size_t errsz)
{
    hs_init();
    if (!json_object_is_type(opts, json_type_object)) {
        snprintf(errstr, errsz, "hubspot options must be an object");
        return -1;
    }
    pthread_rwlock_wrlock(&hs.lock);
    struct hs_opts n = hs_opt;
    int rc = 0;
    json_object_object_foreach(opts, k, v)
    {
        if (rc)
            break;
        if (strcmp(k, "rate_10s") == 0)
            rc = opt_int(v, k, 0, 1000000, &n.rate_10s, errstr, errsz);
        else if (strcmp(k, "daily_limit") == 0)
            rc = opt_int(v, k, 0, INT_MAX, &n.daily_limit, errstr, errsz);
        else if (strcmp(k, "access_ttl_s") == 0)
            rc = opt_int(v, k, 1, INT_MAX / 1000, &n.access_ttl_s, errstr, errsz);
        else if (strcmp(k, "callback_expiry_s") == 0)
            rc = opt_int(v, k, 1, INT_MAX / 1000, &n.cb_expiry_s, errstr, errsz);
        else if (strcmp(k, "contact_unlabeled_duplicates") == 0)
            rc = opt_bool(v, k, &n.contact_dupes, errstr, errsz);
        else if (strcmp(k, "callback_accept_unknown") == 0)
            rc = opt_bool(v, k, &n.cb_accept_unknown, errstr, errsz);
        else if (strcmp(k, "retry_after_on_429") == 0)
            rc = opt_bool(v, k, &n.retry_after, errstr, errsz);
        else if (strcmp(k, "callback_repeat_status") == 0) {
            rc = opt_int(v, k, 204, 400, &n.cb_done_status, errstr, errsz);
            if (!rc && n.cb_done_status != 204 && n.cb_done_status != 400) {
                snprintf(errstr, errsz, "hubspot option '%s' must be 400 or 204", k);
                rc = -1;
            }
        } else if (strcmp(k, "line_items_key") == 0) {
            const char *s =
                json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
            if (strcmp(s, "line items") == 0 || strcmp(s, "line_items") == 0)
                n.line_items_spaced = s[4] == ' ';
            else {
                snprintf(errstr, errsz,
                         "hubspot option '%s' must be \"line items\" or "
                         "\"line_items\"",
                         k);
                rc = -1;
            }
        } else if (strcmp(k, "association_order") == 0) {
            const char *s =
                json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
            int found = -1;
            for (int i = 0; i < 3; i++)
                if (strcmp(s, order_names[i]) == 0)
                    found = i;
            if (found < 0) {
                snprintf(errstr, errsz,
                         "hubspot option '%s' must be insertion, reverse or "
                         "shuffle",
                         k);
                rc = -1;
            } else {
                n.order = found;
            }
        } else {
            snprintf(errstr, errsz, "unknown hubspot option '%s'", k);
            rc = -1;
        }
    }
    if (rc == 0) {
        pthread_mutex_lock(&hs.rate_mu);
        hs_opt = n;
        pthread_mutex_unlock(&hs.rate_mu);
    }
    pthread_rwlock_unlock(&hs.lock);
    return rc;
}
