/* qbo.c - the QuickBooks Online Accounting API v3 under /v3/company/{realmId}/.
 *
 * Every request goes through the same gate before it touches a company:
 *
 *   qbo_admit (core, before latency): concurrent slot per realm, else 429
 *   qbo_handle: intuit_tid -> bearer token (oauth.c) else 401 -> per-minute / per-second
 *     window else 429 -> Accept -> requestid replay -> route -> store for replay
 *
 * State: one struct realm per company (CompanyInfo, Preferences, one json-c object per
 * entity kind used as an Id -> entity hash map, name and DocNumber indexes, requestid
 * store, throttle rings). Entities are kept exactly as they are answered, so a read is a
 * lookup plus one serialisation. All of it sits behind one mutex; the response text is
 * produced under it (json-c objects are not thread-safe) and the lock is never held
 * across I/O or injected latency.
 *
 * The write rules per entity (defaults, validation faults, payment application) live in
 * the second half of this file, each kind behind one build function; reference §12's
 * design choices are switches in struct qbo_opts (qbo_configure()).
 */
#include "tests/sandbox/sandbox.h"
#include "tests/sandbox/intuit.h"
#include "tests/sandbox/qbo_query.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define QBO_MAX_REALMS        256
#define QBO_REQUESTID_MAX_LEN 50
#define QBO_RING_MAX          1000000 /* per-minute limit cap (timestamps kept per realm) */
#define QBO_NAME_MAX          500     /* DisplayName, design choice #14 */
#define QBO_ITEM_NAME_MAX     100
#define QBO_JSON_DEPTH        32

/* ---- configuration ----------------------------------------------------------------- */

struct qbo_opts {
    int per_minute, concurrent, per_second; /* 0 = unlimited */
    int retention_s;                        /* requestid replay window, 0 = forever */
    int requestid_max_entries;              /* per realm; oldest dropped beyond */
    int requestid_reject_mismatch;          /* #2: 400 instead of replay on another body */
    int throttle_json;                      /* #6: JSON Fault instead of the XML body */
    int retry_after_s;                      /* #7: 0 = no Retry-After header */
    int auth_xml;                           /* #8: XML 401 instead of the lower-case JSON */
    int names_ci;                           /* uniqueness and query strings ignore ASCII case */
    int entity_ci;           /* query entity names case-insensitive (reference: sensitive) */
    int strict_fields;       /* unknown top-level properties -> 400/2010 */
    int require_accept_json; /* no Accept: application/json (or format=json) -> 406 */
    int hide_inactive;       /* #12: name-list queries show Active=true unless filtered */
    int docnum_max_len;      /* 6000 beyond; 0 = unchecked */
};

#define QBO_DEFAULT_OPTS                                                                           \
    {                                                                                              \
        .per_minute = 500, .concurrent = 10, .requestid_max_entries = 200000, .names_ci = 1,       \
        .strict_fields = 1, .require_accept_json = 1, .hide_inactive = 1, .docnum_max_len = 21     \
    }

static const struct qbo_opts default_opts = QBO_DEFAULT_OPTS;

/* ---- state ----------------------------------------------------------------------- */

/* Seeding follows this order: what later kinds reference comes first. */
enum kind {
    K_ACCOUNT,
    K_TERM,
    K_PAYMENTMETHOD,
    K_ITEM,
    K_CUSTOMER,
    K_VENDOR,
    K_EMPLOYEE,
    K_INVOICE,
    K_ESTIMATE,
    K_SALESRECEIPT,
    K_REFUNDRECEIPT,
    K_PAYMENT,
    K_PURCHASE,
    K_NKINDS
};

struct realm {
    char id[SB_TENANT_MAX];
    int utc_offset_min;
    struct json_object *company, *prefs;
    struct json_object *ents[K_NKINDS];    /* Id -> entity */
    struct json_object *names[K_NKINDS];   /* folded name -> "Kind/Id" (people share one) */
    struct json_object *docnums[K_NKINDS]; /* DocNumber -> Id */
    int64_t next_id[K_NKINDS], next_doc[K_NKINDS];
    struct json_object *reqids; /* requestid -> [status, body, hash, mono ms], oldest first */
    int64_t *ring;              /* per-minute window: admission times, ring buffer */
    int ring_cap, ring_len, ring_head;
    int64_t sec_start;
    int sec_count;
    int inflight;
    int64_t n_requests, n_throttled, n_replayed;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct qbo_opts g_opts = QBO_DEFAULT_OPTS;
static struct realm *g_realms[QBO_MAX_REALMS];
static int g_nrealms;

/* One handled request: what the routes produce. */
struct reply {
    int status;
    const char *ctype;
    char *body; /* malloc'd */
};

/* A fault to answer: status, Fault.type, Error.{Message, Detail, code, element}. */
struct fault {
    int status;
    const char *type;
    const char *code;
    char message[160];
    char detail[700];
    const char *element; /* NULL: no "element" key (as in the recorded 6240 body) */
};

#define CT_JSON     "application/json;charset=utf-8"
#define CT_JSON_ERR "application/json"

/* ---- small helpers ---------------------------------------------------------------- */

static struct realm *realm_find(const char *id)
{
    for (int i = 0; i < g_nrealms; i++)
        if (strcmp(g_realms[i]->id, id) == 0)
            return g_realms[i];
    return NULL;
}

static const char *jstr(struct json_object *o, const char *key)
{
    struct json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static struct json_object *jobj(struct json_object *o, const char *key)
{
    struct json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_object))
        return NULL;
    return v;
}

static const char *ref_value(struct json_object *o, const char *key)
{
    return jstr(jobj(o, key), "value");
}

static struct json_object *ref_new(const char *value, const char *name)
{
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "value", json_object_new_string(value));
    if (name)
        json_object_object_add(r, "name", json_object_new_string(name));
    return r;
}

static int jbool(struct json_object *o, const char *key, int dflt)
{
    struct json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_boolean))
        return dflt;
    return json_object_get_boolean(v);
}

static void set_if_absent(struct json_object *o, const char *key, struct json_object *val)
{
    if (json_object_object_get_ex(o, key, NULL))
        json_object_put(val);
    else
        json_object_object_add(o, key, val);
}

static char *dup_json(struct json_object *o)
{
    return strdup(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* Company-local time: "2020-09-29T05:58:16.187-07:00" (ms = 1) or without fraction. */
static void fmt_time(const struct realm *r, int64_t wall_ms, int with_ms, char *buf, size_t bufsz)
{
    int off = r ? r->utc_offset_min : -420;
    time_t t = (time_t)(wall_ms / 1000 + off * 60);
    struct tm tm;
    char frac[8] = "";
    gmtime_r(&t, &tm);
    if (with_ms)
        snprintf(frac, sizeof(frac), ".%03d", (int)(wall_ms % 1000));
    snprintf(buf, bufsz, "%04d-%02d-%02dT%02d:%02d:%02d%s%c%02d:%02d", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac, off < 0 ? '-' : '+',
             abs(off) / 60, abs(off) % 60);
}

static void today(const struct realm *r, char *buf, size_t bufsz)
{
    time_t t = (time_t)(sb_now_ms() / 1000 + r->utc_offset_min * 60);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, bufsz, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

/* YYYY-MM-DD strictly (a real calendar day); 0 or -1. */
static int parse_date(const char *s, struct tm *out)
{
    struct tm tm = {0};
    int y, m, d;
    char tail;
    if (!s || strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    time_t t = timegm(&tm);
    gmtime_r(&t, &tm);
    if (tm.tm_year != y - 1900 || tm.tm_mon != m - 1 || tm.tm_mday != d)
        return -1;
    *out = tm;
    return 0;
}

static void date_add_days(const char *date, int days, char *buf, size_t bufsz)
{
    struct tm tm;
    if (parse_date(date, &tm) < 0) {
        snprintf(buf, bufsz, "%s", date);
        return;
    }
    time_t t = timegm(&tm) + (time_t)days * 86400;
    gmtime_r(&t, &tm);
    snprintf(buf, bufsz, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

static uint64_t fnv1a(const char *s, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* ---- replies ------------------------------------------------------------------------ */

static void reply_set(struct reply *rp, int status, const char *ctype, char *body)
{
    free(rp->body);
    rp->status = status;
    rp->ctype = ctype;
    rp->body = body;
}

/* {"<Name>": entity, "time": ...}; entity borrowed. */
static void reply_entity(struct reply *rp, const struct realm *r, const char *name,
                         struct json_object *ent)
{
    char ts[48];
    struct json_object *env = json_object_new_object();
    fmt_time(r, sb_now_ms(), 1, ts, sizeof(ts));
    json_object_object_add(env, name, json_object_get(ent));
    json_object_object_add(env, "time", json_object_new_string(ts));
    reply_set(rp, 200, CT_JSON, dup_json(env));
    json_object_put(env);
}

static void reply_fault(struct reply *rp, const struct realm *r, const struct fault *f)
{
    char ts[48];
    struct json_object *env = json_object_new_object(), *fo = json_object_new_object();
    struct json_object *errs = json_object_new_array(), *e = json_object_new_object();

    fmt_time(r, sb_now_ms(), 1, ts, sizeof(ts));
    json_object_object_add(e, "Message", json_object_new_string(f->message));
    json_object_object_add(e, "Detail", json_object_new_string(f->detail));
    json_object_object_add(e, "code", json_object_new_string(f->code));
    if (f->element)
        json_object_object_add(e, "element", json_object_new_string(f->element));
    json_object_array_add(errs, e);
    json_object_object_add(fo, "Error", errs);
    json_object_object_add(fo, "type",
                           json_object_new_string(f->type ? f->type : "ValidationFault"));
    json_object_object_add(env, "Fault", fo);
    json_object_object_add(env, "time", json_object_new_string(ts));
    reply_set(rp, f->status ? f->status : 400, f->status == 200 ? CT_JSON : CT_JSON_ERR,
              dup_json(env));
    json_object_put(env);
}

static int fault_set(struct fault *f, const char *code, const char *element, const char *msg,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Fill f (400 ValidationFault) and return -1, so rules read `return fault_set(...)`. */
static int fault_set(struct fault *f, const char *code, const char *element, const char *msg,
                     const char *fmt, ...)
{
    va_list ap;
    f->status = 400;
    f->type = "ValidationFault";
    f->code = code;
    f->element = element;
    snprintf(f->message, sizeof(f->message), "%s", msg);
    va_start(ap, fmt);
    vsnprintf(f->detail, sizeof(f->detail), fmt, ap);
    va_end(ap);
    return -1;
}

static void reply_throttled(struct reply *rp, const struct realm *r)
{
    char ts[48], body[700];
    fmt_time(r, sb_now_ms(), 1, ts, sizeof(ts));
    if (g_opts.throttle_json) {
        struct fault f;
        fault_set(&f, "3001", NULL, "message=ThrottleExceeded; errorCode=003001; statusCode=429",
                  "The request limit was reached.  Try again later");
        f.status = 429;
        f.type = "SERVICE";
        reply_fault(rp, r, &f);
        return;
    }
    snprintf(body, sizeof(body),
             "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
             "<IntuitResponse time=\"%s\" xmlns=\"http://schema.intuit.com/finance/v3\">"
             "<Fault type=\"SERVICE\"><Error code=\"3001\">"
             "<Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message>"
             "<Detail>The request limit was reached.  Try again later</Detail></Error>"
             "</Fault></IntuitResponse>",
             ts);
    reply_set(rp, 429, "application/xml", strdup(body));
}

/* 401: the lower-case body seen in real traffic (epoch-ms time), or the XML variant. */
static void reply_unauthorized(struct reply *rp, const char *detail)
{
    char body[1200];
    if (g_opts.auth_xml) {
        snprintf(body, sizeof(body),
                 "<Fault type=\"AuthenticationFault\"><Error code=\"100\"><Message>General "
                 "Authentication Error</Message><Detail>AuthenticationErrorGeneral: "
                 "SRV-110-Authentication Failure , statusCode: 401</Detail></Error></Fault>");
        reply_set(rp, 401, "application/xml", strdup(body));
        return;
    }
    struct json_object *o = json_object_new_object(), *fault = json_object_new_object();
    struct json_object *errs = json_object_new_array(), *e = json_object_new_object();
    json_object_object_add(o, "warnings", NULL);
    json_object_object_add(o, "intuitObject", NULL);
    json_object_object_add(
        e, "message",
        json_object_new_string("message=AuthenticationFailed; errorCode=003200; statusCode=401"));
    json_object_object_add(e, "detail", json_object_new_string(detail));
    json_object_object_add(e, "code", json_object_new_string("3200"));
    json_object_object_add(e, "element", NULL);
    json_object_array_add(errs, e);
    json_object_object_add(fault, "error", errs);
    json_object_object_add(fault, "type", json_object_new_string("AUTHENTICATION"));
    json_object_object_add(o, "fault", fault);
    json_object_object_add(o, "report", NULL);
    json_object_object_add(o, "queryResponse", NULL);
    json_object_object_add(o, "batchItemResponse", json_object_new_array());
    json_object_object_add(o, "attachableResponse", json_object_new_array());
    json_object_object_add(o, "syncErrorResponse", NULL);
    json_object_object_add(o, "requestId", NULL);
    json_object_object_add(o, "time", json_object_new_int64(sb_now_ms()));
    json_object_object_add(o, "status", NULL);
    json_object_object_add(o, "cdcresponse", json_object_new_array());
    reply_set(rp, 401, CT_JSON_ERR, dup_json(o));
    json_object_put(o);
}

static void reply_unsupported(struct reply *rp, const struct realm *r, const char *path)
{
    struct fault f;
    fault_set(&f, "500", NULL, "Unsupported Operation",
              "Operation Could not find resource for relative : %s of full path: "
              "https://sandbox-quickbooks.api.intuit.com%s is not supported.",
              path, path);
    reply_fault(rp, r, &f);
}

/* ---- throttling ------------------------------------------------------------------- */

static void ring_resize(struct realm *r)
{
    int cap = g_opts.per_minute > QBO_RING_MAX ? QBO_RING_MAX : g_opts.per_minute;
    if (cap == r->ring_cap)
        return;
    free(r->ring);
    r->ring = cap > 0 ? calloc((size_t)cap, sizeof(*r->ring)) : NULL;
    r->ring_cap = r->ring ? cap : 0;
    r->ring_len = r->ring_head = 0;
}

/* Sliding 60 s window (exact: the admission times of the last per_minute requests) and
 * an optional fixed 1 s window (design choice #4's "10/s"). 1 = admitted. */
static int throttle_admit(struct realm *r)
{
    int64_t now = sb_mono_ms();

    if (g_opts.per_second > 0) {
        if (now - r->sec_start >= 1000) {
            r->sec_start = now;
            r->sec_count = 0;
        }
        if (r->sec_count >= g_opts.per_second)
            return 0;
    }
    if (g_opts.per_minute > 0) {
        ring_resize(r);
        if (r->ring_cap > 0) {
            if (r->ring_len == r->ring_cap) {
                if (now - r->ring[r->ring_head] < 60000)
                    return 0;
                r->ring_head = (r->ring_head + 1) % r->ring_cap;
                r->ring_len--;
            }
            r->ring[(r->ring_head + r->ring_len) % r->ring_cap] = now;
            r->ring_len++;
        }
    }
    if (g_opts.per_second > 0)
        r->sec_count++;
    return 1;
}

/* Realm id of a /v3/company/{realm}/... path into buf; 0 or -1. */
static int path_realm(const char *path, char *buf, size_t bufsz)
{
    static const char pfx[] = "/v3/company/";
    if (strncmp(path, pfx, sizeof(pfx) - 1) != 0)
        return -1;
    path += sizeof(pfx) - 1;
    size_t n = strcspn(path, "/");
    if (n == 0 || n >= bufsz)
        return -1;
    memcpy(buf, path, n);
    buf[n] = 0;
    return 0;
}

static void resp_from_reply(struct sb_response *resp, struct reply *rp)
{
    sb_resp_text(resp, rp->status, rp->ctype, rp->body ? rp->body : "");
    free(rp->body);
    rp->body = NULL;
}

int qbo_admit(const struct sb_request *req, struct sb_response *resp)
{
    char id[SB_TENANT_MAX], tid[INTUIT_TID_LEN];
    struct reply rp = {0};
    int ok = 1, retry_after;

    if (path_realm(req->path, id, sizeof(id)) < 0)
        return 1;
    pthread_mutex_lock(&g_lock);
    retry_after = g_opts.retry_after_s;
    struct realm *r = realm_find(id);
    if (r && g_opts.concurrent > 0 && r->inflight >= g_opts.concurrent) {
        ok = 0;
        r->n_throttled++;
        reply_throttled(&rp, r);
    } else if (r) {
        r->inflight++;
    }
    pthread_mutex_unlock(&g_lock);
    if (!ok) {
        intuit_tid(tid, sizeof(tid));
        sb_resp_header(resp, "intuit_tid", "%s", tid);
        if (retry_after > 0)
            sb_resp_header(resp, "Retry-After", "%d", retry_after);
        snprintf(resp->tenant, sizeof(resp->tenant), "%s", id);
        resp_from_reply(resp, &rp);
    }
    return ok;
}

void qbo_release(const struct sb_request *req)
{
    char id[SB_TENANT_MAX];
    if (path_realm(req->path, id, sizeof(id)) < 0)
        return;
    pthread_mutex_lock(&g_lock);
    struct realm *r = realm_find(id);
    if (r && r->inflight > 0)
        r->inflight--;
    pthread_mutex_unlock(&g_lock);
}

/* ---- requestid store ----------------------------------------------------------------- */

static void reqid_purge(struct realm *r)
{
    int64_t now = sb_mono_ms();
    int over = json_object_object_length(r->reqids) - g_opts.requestid_max_entries;
    struct json_object *dead = NULL;

    if (g_opts.retention_s <= 0 && over <= 0)
        return;
    /* json-c objects keep insertion order: the oldest entries come first. */
    json_object_object_foreach(r->reqids, k, v)
    {
        int64_t t = json_object_get_int64(json_object_array_get_idx(v, 3));
        if (over <= 0 && (g_opts.retention_s <= 0 || now - t < g_opts.retention_s * 1000LL))
            break;
        if (!dead)
            dead = json_object_new_array();
        json_object_array_add(dead, json_object_new_string(k));
        over--;
    }
    for (size_t i = 0; dead && i < json_object_array_length(dead); i++)
        json_object_object_del(r->reqids,
                               json_object_get_string(json_object_array_get_idx(dead, i)));
    json_object_put(dead);
}

static uint64_t request_hash(const struct sb_request *req)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv1a(req->method, strlen(req->method), h);
    h = fnv1a(req->path, strlen(req->path), h);
    return fnv1a(req->body, req->body_len, h);
}

static void reqid_store(struct realm *r, const char *rid, uint64_t hash, const struct reply *rp)
{
    struct json_object *rec = json_object_new_array();
    json_object_array_add(rec, json_object_new_int(rp->status));
    json_object_array_add(rec, json_object_new_string(rp->body ? rp->body : ""));
    json_object_array_add(rec, json_object_new_int64((int64_t)hash));
    json_object_array_add(rec, json_object_new_int64(sb_mono_ms()));
    json_object_object_del(r->reqids, rid);
    json_object_object_add(r->reqids, rid, rec);
}

/* ---- forward declarations: routes and rules (second half) ------------------------ */

struct route_ctx {
    const struct sb_request *req;
    struct realm *r;
    const char *rest; /* path after /v3/company/{realm}/ */
    struct reply *rp;
};

static void route(struct route_ctx *c);
static struct realm *realm_new(const char *id);
static void realm_free(struct realm *r);

/* ---- the handler ----------------------------------------------------------------- */

/* requestid (reference §3): too long -> 400; seen before -> the stored answer (or 400 in
 * "reject" mode when the request differs). 1 when rp was filled, 0 to execute. */
static int requestid_gate(const struct sb_request *req, struct realm *r, const char *rid,
                          struct reply *rp)
{
    struct json_object *rec;
    struct fault f;

    if (strlen(rid) > QBO_REQUESTID_MAX_LEN) {
        fault_set(&f, "2020", "requestid",
                  "Required param missing, need to supply the required value for the API",
                  "requestid is longer than %d characters", QBO_REQUESTID_MAX_LEN);
        reply_fault(rp, r, &f);
        return 1;
    }
    reqid_purge(r);
    if (!json_object_object_get_ex(r->reqids, rid, &rec))
        return 0;
    int st = json_object_get_int(json_object_array_get_idx(rec, 0));
    uint64_t h = (uint64_t)json_object_get_int64(json_object_array_get_idx(rec, 2));
    if (h != request_hash(req) && g_opts.requestid_reject_mismatch) {
        fault_set(&f, "600", "", "Duplicate request",
                  "RequestId already exists : requestid %s was used for another request", rid);
        reply_fault(rp, r, &f);
        return 1;
    }
    r->n_replayed++;
    reply_set(rp, st, st == 200 ? CT_JSON : CT_JSON_ERR,
              strdup(json_object_get_string(json_object_array_get_idx(rec, 1))));
    return 1;
}

static int accept_json(const struct sb_request *req)
{
    const char *accept = sb_req_header(req, "Accept");
    const char *format = sb_req_query(req, "format");
    if (format && strcasecmp(format, "json") == 0)
        return 1;
    if (!g_opts.require_accept_json)
        return 1;
    return accept && (strcasestr(accept, "json") || strstr(accept, "*/*"));
}

static void bearer_check(const struct sb_request *req, const char *realm, char *detail,
                         size_t detailsz, int *ok)
{
    const char *auth = sb_req_header(req, "Authorization");
    const char *tok;
    *ok = 0;
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) {
        snprintf(detail, detailsz, "Authorization header missing or not a bearer token");
        return;
    }
    tok = auth + 7;
    while (*tok == ' ')
        tok++;
    if (strlen(tok) < 16 || strlen(tok) > 4096) {
        snprintf(detail, detailsz, "Malformed bearer token: too short or too long");
        return;
    }
    switch (oauth_access_token_state(realm, tok)) {
    case OAUTH_TOKEN_VALID:
        *ok = 1;
        return;
    case OAUTH_TOKEN_EXPIRED:
        snprintf(detail, detailsz, "Token expired: %.50s", tok);
        return;
    default:
        snprintf(detail, detailsz, "Token invalid: %.50s", tok);
        return;
    }
}

void qbo_handle(const struct sb_request *req, struct sb_response *resp)
{
    char id[SB_TENANT_MAX], tid[INTUIT_TID_LEN], detail[160];
    struct reply rp = {0};
    const char *rid = sb_req_query(req, "requestid");
    const char *rest;
    int auth_ok;

    intuit_tid(tid, sizeof(tid));
    sb_resp_header(resp, "intuit_tid", "%s", tid);
    if (path_realm(req->path, id, sizeof(id)) < 0) {
        pthread_mutex_lock(&g_lock);
        reply_unsupported(&rp, NULL, req->path);
        pthread_mutex_unlock(&g_lock);
        resp_from_reply(resp, &rp);
        return;
    }
    snprintf(resp->tenant, sizeof(resp->tenant), "%s", id);
    rest = req->path + strlen("/v3/company/") + strlen(id);
    rest += *rest == '/';

    bearer_check(req, id, detail, sizeof(detail), &auth_ok);
    pthread_mutex_lock(&g_lock);
    struct realm *r = realm_find(id);
    if (!auth_ok) {
        reply_unauthorized(&rp, detail);
        sb_resp_header(resp, "WWW-Authenticate",
                       "Bearer realm=\"Intuit\", error=\"invalid_token\"");
        goto out;
    }
    if (!r) {
        struct fault f;
        fault_set(&f, "610", "", "Object Not Found", "Object Not Found : company %s", id);
        f.status = 404;
        reply_fault(&rp, NULL, &f);
        goto out;
    }
    r->n_requests++;
    if (!throttle_admit(r)) {
        r->n_throttled++;
        reply_throttled(&rp, r);
        if (g_opts.retry_after_s > 0)
            sb_resp_header(resp, "Retry-After", "%d", g_opts.retry_after_s);
        goto out;
    }
    if (!accept_json(req)) {
        struct fault f;
        fault_set(&f, "406", NULL, "Not Acceptable",
                  "hsqb-sandbox emulates JSON only; real QuickBooks answers XML unless the "
                  "request sends Accept: application/json");
        f.status = 406;
        reply_fault(&rp, r, &f);
        goto out;
    }
    if (rid && *rid && requestid_gate(req, r, rid, &rp))
        goto out;
    struct route_ctx c = {req, r, rest, &rp};
    route(&c);
    if (rid && *rid)
        reqid_store(r, rid, request_hash(req), &rp);
out:
    pthread_mutex_unlock(&g_lock);
    if (!rp.body)
        reply_set(&rp, 500, CT_JSON_ERR, strdup("{}"));
    resp_from_reply(resp, &rp);
}

/* ---- entity kinds ------------------------------------------------------------------ */

#define KF_NAMELIST 0x01u /* no delete; Active; hidden from queries when inactive */
#define KF_PERSON   0x02u /* DisplayName shared by Customer, Vendor, Employee */
#define KF_TXN      0x04u /* TxnDate, DocNumber, deletable */
#define KF_DOCAUTO  0x08u /* DocNumber assigned when omitted */
#define KF_DOCUNIQ  0x10u /* duplicate DocNumber -> 6140 */

struct wctx;

struct kind_def {
    const char *path, *name;
    unsigned flags;
    const char *fields; /* writable top-level properties (strict_fields), words */
    int (*build)(struct wctx *w);
};

/* One write in progress: the entity being built and what it replaces. */
struct wctx {
    struct realm *r;
    enum kind k;
    struct json_object *ent; /* owned until committed */
    struct json_object *old; /* borrowed; NULL on create */
    const char *id;          /* Id once known (update, or explicit in a seed) */
    int allow_dup_doc;
    struct fault f;
};

/* Writable top-level properties per kind (strict_fields), as space-separated words. */
#define PERSON_FIELDS                                                                              \
    "Title GivenName MiddleName FamilyName Suffix DisplayName FullyQualifiedName CompanyName "     \
    "PrintOnCheckName Active PrimaryPhone AlternatePhone Mobile Fax PrimaryEmailAddr WebAddr "     \
    "OtherContactInfo CurrencyRef Balance Notes Source GSTIN GSTRegistrationType "                 \
    "BusinessNumber PrimaryAddr BillAddr OtherAddr "
#define TXN_FIELDS                                                                                 \
    "DocNumber TxnDate PrivateNote TxnStatus LinkedTxn Line TxnTaxDetail CurrencyRef "             \
    "ExchangeRate DepartmentRef TxnSource GlobalTaxCalculation ProjectRef HomeTotalAmt "           \
    "TotalAmt CustomField ClassRef RecurDataRef TransactionLocationType TaxExemptionRef "          \
    "AttachableRef "

static const char f_customer[] =
    PERSON_FIELDS "ShipAddr DefaultTaxCodeRef Taxable TaxExemptionReasonId Job BillWithParent "
                  "ParentRef Level SalesTermRef PaymentMethodRef OpenBalanceDate BalanceWithJobs "
                  "PreferredDeliveryMethod ResaleNum PrimaryTaxIdentifier SecondaryTaxIdentifier "
                  "ARAccountRef CustomerTypeRef IsProject ClientEntityId TaxRegimeRef";
static const char f_vendor[] =
    PERSON_FIELDS "TaxIdentifier TermRef AcctNum Vendor1099 APAccountRef BillRate CostRate "
                  "HasTPAR T4AEligible T5018Eligible VendorPaymentBankDetail TaxReportingBasis";
static const char f_employee[] = PERSON_FIELDS "EmployeeNumber SSN BillableTime BillRate CostRate "
                                               "BirthDate Gender HiredDate ReleasedDate "
                                               "Organization";
static const char f_item[] =
    "Name Sku Description Active SubItem ParentRef Level FullyQualifiedName Taxable "
    "SalesTaxIncluded UnitPrice Type IncomeAccountRef PurchaseDesc PurchaseTaxIncluded "
    "PurchaseCost ExpenseAccountRef AssetAccountRef TrackQtyOnHand QtyOnHand InvStartDate "
    "SalesTaxCodeRef PurchaseTaxCodeRef AbatementRate ReverseChargeRate ServiceType "
    "ItemCategoryType PrefVendorRef ReorderPoint ClassRef TaxClassificationRef UQCDisplayText "
    "UQCId Source ItemGroupDetail ItemAssemblyDetail";
static const char f_term[] = "Name Active Type DueDays DiscountPercent DiscountDays DayOfMonthDue "
                             "DueNextMonthDays DiscountDayOfMonth";
static const char f_account[] =
    "Name SubAccount ParentRef Description FullyQualifiedName Active Classification "
    "AccountType AccountSubType AcctNum CurrentBalance CurrentBalanceWithSubAccounts "
    "CurrencyRef TaxCodeRef TxnLocationType OpeningBalance OpeningBalanceDate AccountAlias";
static const char f_paymentmethod[] = "Name Active Type";
static const char f_sales[] =
    TXN_FIELDS "CustomerRef CustomerMemo BillAddr ShipAddr ShipFromAddr FreeFormAddress "
               "SalesTermRef DueDate ShipMethodRef ShipDate TrackingNum PrintStatus EmailStatus "
               "BillEmail BillEmailCc BillEmailBcc Balance HomeBalance ApplyTaxAfterDiscount "
               "DepositToAccountRef AllowIPNPayment AllowOnlinePayment "
               "AllowOnlineCreditCardPayment AllowOnlineACHPayment Deposit DeliveryInfo "
               "InvoiceLink PaymentMethodRef PaymentRefNum PaymentType CreditCardPayment "
               "CheckPayment ExpirationDate AcceptedBy AcceptedDate RemainingCredit";
static const char f_payment[] =
    TXN_FIELDS "CustomerRef DepositToAccountRef PaymentMethodRef PaymentRefNum PaymentType "
               "CreditCardPayment UnappliedAmt ProcessPayment ARAccountRef";
static const char f_purchase[] =
    TXN_FIELDS "AccountRef PaymentType EntityRef Credit RemitToAddr PrintStatus "
               "PaymentMethodRef PurchaseEx IncludeInAnnualTPAR";

static int build_person(struct wctx *w);
static int build_item(struct wctx *w);
static int build_term(struct wctx *w);
static int build_account(struct wctx *w);
static int build_paymentmethod(struct wctx *w);
static int build_sales(struct wctx *w);
static int build_payment(struct wctx *w);
static int build_purchase(struct wctx *w);

static const struct kind_def kinds[K_NKINDS] = {
    [K_CUSTOMER] = {"customer", "Customer", KF_NAMELIST | KF_PERSON, f_customer, build_person},
    [K_VENDOR] = {"vendor", "Vendor", KF_NAMELIST | KF_PERSON, f_vendor, build_person},
    [K_EMPLOYEE] = {"employee", "Employee", KF_NAMELIST | KF_PERSON, f_employee, build_person},
    [K_ITEM] = {"item", "Item", KF_NAMELIST, f_item, build_item},
    [K_TERM] = {"term", "Term", KF_NAMELIST, f_term, build_term},
    [K_ACCOUNT] = {"account", "Account", KF_NAMELIST, f_account, build_account},
    [K_PAYMENTMETHOD] = {"paymentmethod", "PaymentMethod", KF_NAMELIST, f_paymentmethod,
                         build_paymentmethod},
    [K_INVOICE] = {"invoice", "Invoice", KF_TXN | KF_DOCAUTO | KF_DOCUNIQ, f_sales, build_sales},
    [K_ESTIMATE] = {"estimate", "Estimate", KF_TXN | KF_DOCAUTO | KF_DOCUNIQ, f_sales, build_sales},
    [K_SALESRECEIPT] = {"salesreceipt", "SalesReceipt", KF_TXN | KF_DOCAUTO | KF_DOCUNIQ, f_sales,
                        build_sales},
    [K_REFUNDRECEIPT] = {"refundreceipt", "RefundReceipt", KF_TXN | KF_DOCAUTO | KF_DOCUNIQ,
                         f_sales, build_sales},
    [K_PAYMENT] = {"payment", "Payment", KF_TXN, f_payment, build_payment},
    [K_PURCHASE] = {"purchase", "Purchase", KF_TXN, f_purchase, build_purchase},
};

static int kind_by_path(const char *seg, size_t n)
{
    for (int k = 0; k < K_NKINDS; k++)
        if (strlen(kinds[k].path) == n && strncmp(kinds[k].path, seg, n) == 0)
            return k;
    return -1;
}

static int kind_by_name(const char *name)
{
    for (int k = 0; k < K_NKINDS; k++)
        if (strcmp(kinds[k].name, name) == 0)
            return k;
    return -1;
}

static struct json_object *ent_get(struct realm *r, enum kind k, const char *id)
{
    struct json_object *e;
    return id && json_object_object_get_ex(r->ents[k], id, &e) ? e : NULL;
}

static int is_numeric_id(const char *s)
{
    if (!s || !*s || strlen(s) > 18)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* ---- indexes --------------------------------------------------------------------- */

static struct json_object *name_index(struct realm *r, enum kind k)
{
    return r->names[(kinds[k].flags & KF_PERSON) ? K_CUSTOMER : k];
}

static const char *name_field(enum kind k)
{
    return (kinds[k].flags & KF_PERSON) ? "DisplayName" : "Name";
}

static void fold_name(const char *name, char *buf, size_t bufsz)
{
    size_t i;
    for (i = 0; name[i] && i + 1 < bufsz; i++)
        buf[i] = g_opts.names_ci ? (char)tolower((unsigned char)name[i]) : name[i];
    buf[i] = 0;
}

/* "Customer/12" of the record owning a name, or NULL. */
static const char *name_owner(struct realm *r, enum kind k, const char *name)
{
    char key[QBO_NAME_MAX * 2 + 8];
    fold_name(name, key, sizeof(key));
    return jstr(name_index(r, k), key);
}

static void index_add(struct realm *r, enum kind k, struct json_object *ent)
{
    const char *id = jstr(ent, "Id"), *name = jstr(ent, name_field(k)), *doc;
    char key[QBO_NAME_MAX * 2 + 8], owner[64];
    if (k < K_INVOICE && name) {
        fold_name(name, key, sizeof(key));
        snprintf(owner, sizeof(owner), "%s/%s", kinds[k].name, id);
        json_object_object_add(name_index(r, k), key, json_object_new_string(owner));
    }
    if ((doc = jstr(ent, "DocNumber")) && (kinds[k].flags & KF_DOCUNIQ))
        json_object_object_add(r->docnums[k], doc, json_object_new_string(id));
}

static void index_del(struct realm *r, enum kind k, struct json_object *ent)
{
    const char *id = jstr(ent, "Id"), *name = jstr(ent, name_field(k)), *doc;
    char key[QBO_NAME_MAX * 2 + 8], owner[64];
    if (k < K_INVOICE && name) {
        fold_name(name, key, sizeof(key));
        snprintf(owner, sizeof(owner), "%s/%s", kinds[k].name, id);
        const char *cur = jstr(name_index(r, k), key);
        if (cur && strcmp(cur, owner) == 0)
            json_object_object_del(name_index(r, k), key);
    }
    if ((doc = jstr(ent, "DocNumber")) && (kinds[k].flags & KF_DOCUNIQ)) {
        const char *cur = jstr(r->docnums[k], doc);
        if (cur && strcmp(cur, id) == 0)
            json_object_object_del(r->docnums[k], doc);
    }
}

/* ---- reads ------------------------------------------------------------------------ */

static const char obj_not_found[] =
    "Object Not Found : Something you're trying to use has been made inactive. Check the "
    "fields with accounts, customers, items, vendors or employees.";

static void do_read(struct route_ctx *c, enum kind k, const char *id)
{
    struct fault f;
    struct json_object *e;
    if (!is_numeric_id(id)) {
        fault_set(&f, "2030", "Id", "Invalid ID", "Id should be a valid number. Supplied value:%s",
                  id);
        reply_fault(c->rp, c->r, &f);
        return;
    }
    if (!(e = ent_get(c->r, k, id))) {
        fault_set(&f, "610", "", "Object Not Found", "%s", obj_not_found);
        reply_fault(c->rp, c->r, &f);
        return;
    }
    reply_entity(c->rp, c->r, kinds[k].name, e);
}

/* ---- queries ---------------------------------------------------------------------- */

struct sort_ctx {
    const struct qbo_query *q;
    const struct qbo_qctx *qc;
};

static int row_cmp(const void *a, const void *b, void *arg)
{
    const struct sort_ctx *s = arg;
    return qbo_query_cmp(s->q, s->qc, *(struct json_object *const *)a,
                         *(struct json_object *const *)b);
}

/* Statement text: ?query= (decoded by the HTTP layer) or the POST body; a body without
 * any space was URL-encoded by its client (%20 or +) and is decoded here. */
static char *query_text(const struct sb_request *req)
{
    const char *q = strcmp(req->method, "GET") == 0 ? sb_req_query(req, "query") : req->body;
    char *out, *o;
    if (!q)
        return NULL;
    if (strcmp(req->method, "GET") != 0 && strncmp(q, "query=", 6) == 0)
        q += 6;
    else if (strcmp(req->method, "GET") == 0 || strchr(q, ' '))
        return strdup(q);
    if (!(out = malloc(strlen(q) + 1)))
        return NULL;
    for (o = out; *q; q++) {
        if (*q == '+') {
            *o++ = ' ';
        } else if (*q == '%' && isxdigit((unsigned char)q[1]) && isxdigit((unsigned char)q[2])) {
            char hex[3] = {q[1], q[2], 0};
            *o++ = (char)strtol(hex, NULL, 16);
            q += 2;
        } else {
            *o++ = *q;
        }
    }
    *o = 0;
    return out;
}

/* Rows that can match: a direct lookup for Id = / IN and name equality, else all. */
static int query_candidates(struct realm *r, enum kind k, const struct qbo_query *q,
                            struct json_object ***rows, size_t *n)
{
    size_t cap = (size_t)json_object_object_length(r->ents[k]) + 1;
    struct json_object **v;

    for (int i = 0; i < q->nconds; i++) {
        const struct qbo_qcond *cd = &q->conds[i];
        if (strcmp(cd->field, "Id") == 0 && (cd->op == QOP_EQ || cd->op == QOP_IN)) {
            if (!(v = calloc((size_t)cd->nvals + 1, sizeof(*v))))
                return -1;
            *n = 0;
            for (int j = 0; j < cd->nvals; j++) {
                struct json_object *e = ent_get(r, k, cd->vals[j].s);
                int dup = 0;
                for (size_t x = 0; e && x < *n; x++)
                    dup |= v[x] == e;
                if (e && !dup)
                    v[(*n)++] = e;
            }
            *rows = v;
            return 0;
        }
        if (cd->op == QOP_EQ && strcmp(cd->field, name_field(k)) == 0) {
            const char *owner = name_owner(r, k, cd->vals[0].s);
            size_t plen = strlen(kinds[k].name);
            if (!(v = calloc(1, sizeof(*v))))
                return -1;
            *n = 0;
            if (owner && strncmp(owner, kinds[k].name, plen) == 0 && owner[plen] == '/') {
                struct json_object *e = ent_get(r, k, owner + plen + 1);
                if (e)
                    v[(*n)++] = e;
            }
            *rows = v;
            return 0;
        }
    }
    if (!(v = calloc(cap, sizeof(*v))))
        return -1;
    *n = 0;
    json_object_object_foreach(r->ents[k], id, e)
    {
        (void)id;
        v[(*n)++] = e;
    }
    *rows = v;
    return 0;
}

static void do_query(struct route_ctx *c)
{
    struct qbo_query *q = NULL;
    struct qbo_qerr qerr;
    struct fault f;
    struct json_object **rows = NULL, *single[1];
    size_t n = 0, matched = 0;
    char *text = query_text(c->req);
    const char *entity;
    struct qbo_qctx qc = {g_opts.names_ci, c->r->utc_offset_min};

    if (!text || !*text) {
        fault_set(&f, "4000", NULL, "Error parsing query", "QueryParserError: query is empty");
        reply_fault(c->rp, c->r, &f);
        goto out;
    }
    if (qbo_query_parse(text, &q, &qerr) < 0 ||
        !(entity = qbo_query_entity(q, g_opts.entity_ci, &qerr)) ||
        qbo_query_check(q, entity, &qerr) < 0) {
        fault_set(&f, qerr.code, NULL, qerr.message, "%s", qerr.detail);
        reply_fault(c->rp, c->r, &f);
        goto out;
    }
    int k = kind_by_name(entity);
    if (k >= 0) {
        if (query_candidates(c->r, (enum kind)k, q, &rows, &n) < 0)
            goto out;
    } else {
        single[0] = strcmp(entity, "CompanyInfo") == 0 ? c->r->company : c->r->prefs;
        rows = single;
        n = 1;
    }
    int hide = k >= 0 && (kinds[k].flags & KF_NAMELIST) && g_opts.hide_inactive &&
               !qbo_query_mentions(q, "Active");
    for (size_t i = 0; i < n; i++)
        if (qbo_query_match(q, &qc, rows[i]) && !(hide && !jbool(rows[i], "Active", 1)))
            rows[matched++] = rows[i];

    struct json_object *env = json_object_new_object(), *qr = json_object_new_object();
    char ts[48];
    if (q->is_count) {
        json_object_object_add(qr, "totalCount", json_object_new_int64((int64_t)matched));
    } else {
        struct sort_ctx sc = {q, &qc};
        size_t start = q->start > 1 ? (size_t)q->start - 1 : 0, i;
        qsort_r(rows, matched, sizeof(*rows), row_cmp, &sc);
        if (start < matched) {
            struct json_object *arr = json_object_new_array();
            for (i = start; i < matched && i - start < (size_t)q->max; i++)
                json_object_array_add(arr, json_object_get(rows[i]));
            json_object_object_add(qr, entity, arr);
            json_object_object_add(qr, "startPosition", json_object_new_int64(q->start));
            json_object_object_add(qr, "maxResults", json_object_new_int64((int64_t)(i - start)));
        }
    }
    fmt_time(c->r, sb_now_ms(), 1, ts, sizeof(ts));
    json_object_object_add(env, "QueryResponse", qr);
    json_object_object_add(env, "time", json_object_new_string(ts));
    reply_set(c->rp, 200, CT_JSON, dup_json(env));
    json_object_put(env);
out:
    if (rows != single)
        free(rows);
    qbo_query_free(q);
    free(text);
}

/* ---- write helpers --------------------------------------------------------------- */

static const char *const server_fields[] = {"Id",     "SyncToken", "MetaData",
                                            "domain", "sparse",    NULL};

static int missing(struct wctx *w, const char *element)
{
    return fault_set(&w->f, "2020", element,
                     "Required param missing, need to supply the required value for the API",
                     "Required parameter %s is missing in the request", element);
}

static int invalid_prop(struct wctx *w, const char *prop)
{
    return fault_set(&w->f, "2010", NULL, "Request has invalid or unsupported property",
                     "Property Name:%s specified is unsupported or invalid", prop);
}

static int business(struct wctx *w, const char *element, const char *detail)
{
    return fault_set(&w->f, "6000", element,
                     "A business validation error has occurred while processing your request",
                     "Business Validation Error: %s", detail);
}

static int in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return 1;
    return 0;
}

/* 1 when `word` is one of the space-separated words of `list`. */
static int in_words(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; n && (p = strstr(p, word)); p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0))
            return 1;
    return 0;
}

static int check_fields(struct wctx *w, struct json_object *body)
{
    if (!g_opts.strict_fields)
        return 0;
    json_object_object_foreach(body, key, val)
    {
        (void)val;
        if (!in_list(server_fields, key) && !in_words(kinds[w->k].fields, key))
            return fault_set(&w->f, "2010", NULL, "Request has invalid or unsupported property",
                             "Property Name:Unrecognized field \"%s\" (class "
                             "com.intuit.schema.finance.v3.%s), not marked as ignorable "
                             "specified is unsupported or invalid",
                             key, kinds[w->k].name);
    }
    return 0;
}

static int is_us(const struct realm *r)
{
    const char *c = jstr(r->company, "Country");
    return !c || strcmp(c, "US") == 0;
}

static struct json_object *currency_ref(const struct realm *r)
{
    static const char *const names[][2] = {{"USD", "United States Dollar"},
                                           {"CAD", "Canadian Dollar"},
                                           {"GBP", "British Pound Sterling"},
                                           {"EUR", "Euro"},
                                           {"AUD", "Australian Dollar"}};
    const char *cur = jstr(jobj(jobj(r->prefs, "CurrencyPrefs"), "HomeCurrency"), "value");
    if (!cur)
        cur = "USD";
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(names[i][0], cur) == 0)
            return ref_new(cur, names[i][1]);
    return ref_new(cur, NULL);
}

/* Check the reference member `key` of `holder` against entities of kind k and fill its
 * name. *out = the entity, or NULL when absent and optional. */
static int ref_check(struct wctx *w, struct json_object *holder, const char *key, enum kind k,
                     int required, struct json_object **out)
{
    struct json_object *ref, *e;
    const char *id, *name;

    *out = NULL;
    if (!json_object_object_get_ex(holder, key, &ref) || json_object_is_type(ref, json_type_null))
        return required ? missing(w, key) : 0;
    if (!json_object_is_type(ref, json_type_object))
        return invalid_prop(w, key);
    if (!(id = jstr(ref, "value")) || !*id)
        return missing(w, key);
    if (!(e = ent_get(w->r, k, id)))
        return fault_set(&w->f, "2500", key, "Invalid Reference Id",
                         "Invalid Reference Id : %s assigned to this transaction has been "
                         "deleted or does not exist: Id %s",
                         kinds[k].name, id);
    if (!jbool(e, "Active", 1))
        return fault_set(&w->f, "610", key, "Object Not Found", "%s", obj_not_found);
    if ((name = jstr(e, name_field(k))))
        json_object_object_add(ref, "name", json_object_new_string(name));
    *out = e;
    return 0;
}

/* A money-like member as exact decimal; 0 absent, 1 present, -1 fault. */
static int get_dec(struct wctx *w, struct json_object *o, const char *key, struct qbo_dec *d)
{
    struct json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
        return 0;
    if ((!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double) &&
         !json_object_is_type(v, json_type_string)) ||
        qbo_dec_from_json(v, d) < 0)
        return invalid_prop(w, key);
    return 1;
}

static int get_cents(struct wctx *w, struct json_object *o, const char *key, int64_t *cents)
{
    struct qbo_dec d;
    int rc = get_dec(w, o, key, &d);
    if (rc <= 0)
        return rc;
    if (qbo_dec_cents(d, cents) < 0)
        return invalid_prop(w, key);
    return 1;
}

static int64_t cents_of(struct json_object *o, const char *key)
{
    struct json_object *v;
    struct qbo_dec d;
    int64_t c = 0;
    if (o && json_object_object_get_ex(o, key, &v) && qbo_dec_from_json(v, &d) == 0)
        qbo_dec_cents(d, &c);
    return c;
}

static void set_money(struct json_object *o, const char *key, int64_t cents)
{
    json_object_object_add(o, key, qbo_money_json(cents));
}

static void set_str(struct json_object *o, const char *key, const char *s)
{
    json_object_object_add(o, key, json_object_new_string(s));
}

static int check_name(struct wctx *w, const char *field, const char *name, size_t max)
{
    char self[64];
    const char *owner;
    if (strlen(name) > max)
        return fault_set(&w->f, "2010", field, "Request has invalid or unsupported property",
                         "Property Name:%s specified is unsupported or invalid: length %zu "
                         "exceeds %zu",
                         field, strlen(name), max);
    if (strpbrk(name, ":\t\n"))
        return business(w, field, "The name cannot contain a colon, a tab or a newline.");
    owner = name_owner(w->r, w->k, name);
    snprintf(self, sizeof(self), "%s/%s", kinds[w->k].name, w->id ? w->id : "");
    if (owner && (!w->id || strcmp(owner, self) != 0))
        return fault_set(&w->f, "6240", NULL, "Duplicate Name Exists Error",
                         "The name supplied already exists. : null");
    return 0;
}

static void bump(struct realm *r, struct json_object *e)
{
    char ts[48];
    const char *st = jstr(e, "SyncToken");
    struct json_object *meta = jobj(e, "MetaData");
    char buf[24];
    snprintf(buf, sizeof(buf), "%lld", st ? atoll(st) + 1 : 1);
    set_str(e, "SyncToken", buf);
    fmt_time(r, sb_now_ms(), 0, ts, sizeof(ts));
    if (meta)
        set_str(meta, "LastUpdatedTime", ts);
}

/* ---- name lists ------------------------------------------------------------------ */

static int build_person(struct wctx *w)
{
    static const char *const parts[] = {"Title", "GivenName", "MiddleName", "FamilyName", "Suffix"};
    struct json_object *e = w->ent, *v, *term;
    const char *dn;
    char derived[QBO_NAME_MAX * 2 + 8] = "";

    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        if (!json_object_object_get_ex(e, parts[i], &v) || json_object_is_type(v, json_type_null))
            continue;
        if (!json_object_is_type(v, json_type_string))
            return invalid_prop(w, parts[i]);
        const char *s = json_object_get_string(v);
        if (*s && strlen(derived) + strlen(s) + 2 < sizeof(derived)) {
            if (*derived)
                strcat(derived, " ");
            strcat(derived, s);
        }
    }
    if (json_object_object_get_ex(e, "DisplayName", &v) &&
        !json_object_is_type(v, json_type_null) && !json_object_is_type(v, json_type_string))
        return invalid_prop(w, "DisplayName");
    dn = jstr(e, "DisplayName");
    if (!dn || !*dn) {
        if (!*derived)
            return fault_set(&w->f, "6080", "", "No Name Provided",
                             "No Name Provided : Please provide a DisplayName or at least one of "
                             "Title, GivenName, MiddleName, FamilyName, Suffix.");
        set_str(e, "DisplayName", derived);
        dn = jstr(e, "DisplayName");
    }
    if (check_name(w, "DisplayName", dn, QBO_NAME_MAX) < 0)
        return -1;
    if (w->k == K_CUSTOMER && ref_check(w, e, "SalesTermRef", K_TERM, 0, &term) < 0)
        return -1;
    if (w->k == K_CUSTOMER) {
        set_if_absent(e, "Taxable", json_object_new_boolean(is_us(w->r)));
        set_if_absent(e, "Job", json_object_new_boolean(0));
        set_if_absent(e, "BillWithParent", json_object_new_boolean(0));
        set_if_absent(e, "Balance", json_object_new_int(0));
        set_if_absent(e, "BalanceWithJobs", json_object_new_int(0));
        set_if_absent(e, "PreferredDeliveryMethod", json_object_new_string("Print"));
        if (is_us(w->r))
            set_if_absent(e, "DefaultTaxCodeRef", ref_new("2", NULL));
    } else if (w->k == K_VENDOR) {
        set_if_absent(e, "Vendor1099", json_object_new_boolean(0));
        set_if_absent(e, "Balance", json_object_new_int(0));
    } else {
        set_if_absent(e, "BillableTime", json_object_new_boolean(0));
    }
    if (w->k != K_EMPLOYEE)
        set_if_absent(e, "CurrencyRef", currency_ref(w->r));
    set_str(e, "FullyQualifiedName", dn);
    set_if_absent(e, "PrintOnCheckName", json_object_new_string(dn));
    set_if_absent(e, "Active", json_object_new_boolean(1));
    return 0;
}

/* Name member of an item, account, term or payment method: required, checked, unique. */
static int named(struct wctx *w, size_t max)
{
    struct json_object *v;
    if (!json_object_object_get_ex(w->ent, "Name", &v) || json_object_is_type(v, json_type_null))
        return missing(w, "Name");
    if (!json_object_is_type(v, json_type_string))
        return invalid_prop(w, "Name");
    if (!*json_object_get_string(v))
        return missing(w, "Name");
    if (check_name(w, "Name", json_object_get_string(v), max) < 0)
        return -1;
    set_if_absent(w->ent, "Active", json_object_new_boolean(1));
    return 0;
}

static int build_item(struct wctx *w)
{
    static const char *const types[] = {"Service",      "NonInventory", "Inventory", "Group",
                                        "Category",     "Bundle",       "Assembly",  "Fixed Asset",
                                        "Other Charge", "Payment",      "Subtotal",  "Discount",
                                        "Tax",          "Tax Group",    NULL};
    struct json_object *e = w->ent, *acct;
    const char *type, *sku;
    struct qbo_dec d;

    if (named(w, QBO_ITEM_NAME_MAX) < 0)
        return -1;
    if (!(type = jstr(e, "Type")))
        return json_object_object_get_ex(e, "Type", NULL) ? invalid_prop(w, "Type")
                                                          : missing(w, "Type");
    if (!in_list(types, type))
        return fault_set(&w->f, "2170", "Type", "Invalid Enumeration", "Invalid Enumeration : %s",
                         type);
    int needs_income =
        !strcmp(type, "Service") || !strcmp(type, "NonInventory") || !strcmp(type, "Inventory");
    if (ref_check(w, e, "IncomeAccountRef", K_ACCOUNT, needs_income, &acct) < 0)
        return -1;
    int inv = strcmp(type, "Inventory") == 0;
    if (ref_check(w, e, "ExpenseAccountRef", K_ACCOUNT, inv, &acct) < 0 ||
        ref_check(w, e, "AssetAccountRef", K_ACCOUNT, inv, &acct) < 0)
        return -1;
    if (inv) {
        if (!jbool(e, "TrackQtyOnHand", 0))
            return missing(w, "TrackQtyOnHand");
        if (get_dec(w, e, "QtyOnHand", &d) <= 0)
            return w->f.code ? -1 : missing(w, "QtyOnHand");
        if (!jstr(e, "InvStartDate"))
            return missing(w, "InvStartDate");
    }
    if (json_object_object_get_ex(e, "Sku", NULL) && (!(sku = jstr(e, "Sku")) || strlen(sku) > 100))
        return invalid_prop(w, "Sku");
    if (get_dec(w, e, "UnitPrice", &d) < 0 || get_dec(w, e, "PurchaseCost", &d) < 0)
        return -1;
    set_str(e, "FullyQualifiedName", jstr(e, "Name"));
    set_if_absent(e, "Taxable", json_object_new_boolean(0));
    set_if_absent(e, "SalesTaxIncluded", json_object_new_boolean(0));
    set_if_absent(e, "UnitPrice", json_object_new_int(0));
    set_if_absent(e, "PurchaseTaxIncluded", json_object_new_boolean(0));
    set_if_absent(e, "PurchaseCost", json_object_new_int(0));
    set_if_absent(e, "TrackQtyOnHand", json_object_new_boolean(inv));
    return 0;
}

static int build_term(struct wctx *w)
{
    struct json_object *e = w->ent, *v;
    static const char *const ints[] = {"DueDays",          "DiscountDays",       "DayOfMonthDue",
                                       "DueNextMonthDays", "DiscountDayOfMonth", NULL};
    if (named(w, 31) < 0)
        return -1;
    for (int i = 0; ints[i]; i++)
        if (json_object_object_get_ex(e, ints[i], &v) && !json_object_is_type(v, json_type_int))
            return invalid_prop(w, ints[i]);
    int date_driven = json_object_object_get_ex(e, "DayOfMonthDue", NULL);
    set_str(e, "Type", date_driven ? "DATE_DRIVEN" : "STANDARD");
    if (!date_driven)
        set_if_absent(e, "DueDays", json_object_new_int(0));
    return 0;
}

static const struct account_type {
    const char *type, *classification, *subtype;
} account_types[] = {
    {"Bank", "Asset", "Checking"},
    {"Accounts Receivable", "Asset", "AccountsReceivable"},
    {"Other Current Asset", "Asset", "OtherCurrentAssets"},
    {"Fixed Asset", "Asset", "OtherFixedAssets"},
    {"Other Asset", "Asset", "OtherLongTermAssets"},
    {"Accounts Payable", "Liability", "AccountsPayable"},
    {"Credit Card", "Liability", "CreditCard"},
    {"Other Current Liability", "Liability", "OtherCurrentLiabilities"},
    {"Long Term Liability", "Liability", "OtherLongTermLiabilities"},
    {"Equity", "Equity", "OwnersEquity"},
    {"Income", "Revenue", "SalesOfProductIncome"},
    {"Other Income", "Revenue", "OtherMiscellaneousIncome"},
    {"Cost of Goods Sold", "Expense", "SuppliesMaterialsCogs"},
    {"Expense", "Expense", "OtherMiscellaneousServiceCost"},
    {"Other Expense", "Expense", "OtherMiscellaneousExpense"},
};

static int build_account(struct wctx *w)
{
    struct json_object *e = w->ent;
    const char *type;
    size_t i;
    if (named(w, QBO_ITEM_NAME_MAX) < 0)
        return -1;
    if (!(type = jstr(e, "AccountType")))
        return missing(w, "AccountType");
    for (i = 0; i < sizeof(account_types) / sizeof(account_types[0]); i++)
        if (strcmp(account_types[i].type, type) == 0)
            break;
    if (i == sizeof(account_types) / sizeof(account_types[0]))
        return fault_set(&w->f, "2170", "AccountType", "Invalid Enumeration",
                         "Invalid Enumeration : %s", type);
    set_str(e, "Classification", account_types[i].classification);
    set_if_absent(e, "AccountSubType", json_object_new_string(account_types[i].subtype));
    set_str(e, "FullyQualifiedName", jstr(e, "Name"));
    set_if_absent(e, "SubAccount", json_object_new_boolean(0));
    set_if_absent(e, "CurrentBalance", json_object_new_int(0));
    set_if_absent(e, "CurrentBalanceWithSubAccounts", json_object_new_int(0));
    set_if_absent(e, "CurrencyRef", currency_ref(w->r));
    return 0;
}

static int build_paymentmethod(struct wctx *w)
{
    if (named(w, 31) < 0)
        return -1;
    set_if_absent(w->ent, "Type", json_object_new_string("NON_CREDIT_CARD"));
    return 0;
}

/* ---- transactions ------------------------------------------------------------------ */

static int custom_txn_numbers(const struct realm *r)
{
    return jbool(jobj(r->prefs, "SalesFormsPrefs"), "CustomTxnNumbers", 0);
}

/* DocNumber: length, uniqueness per kind (6140 unless include=allowduplicatedocnum), and
 * the next free number when omitted (unless the company types its own numbers). */
static int doc_number(struct wctx *w)
{
    struct json_object *v;
    const char *doc, *owner;
    char buf[32];

    if (json_object_object_get_ex(w->ent, "DocNumber", &v) &&
        !json_object_is_type(v, json_type_null) && !json_object_is_type(v, json_type_string))
        return invalid_prop(w, "DocNumber");
    doc = jstr(w->ent, "DocNumber");
    if (doc && *doc) {
        if (g_opts.docnum_max_len > 0 && strlen(doc) > (size_t)g_opts.docnum_max_len)
            return fault_set(&w->f, "6000", "DocNumber",
                             "A business validation error has occurred while processing your "
                             "request",
                             "Business Validation Error: String length is either shorter or "
                             "longer than supported by specification. Min:0 Max:%d supplied:%zu",
                             g_opts.docnum_max_len, strlen(doc));
        owner = (kinds[w->k].flags & KF_DOCUNIQ) ? jstr(w->r->docnums[w->k], doc) : NULL;
        if (owner && !w->allow_dup_doc && (!w->id || strcmp(owner, w->id) != 0))
            return fault_set(&w->f, "6140", "", "Duplicate Document Number Error",
                             "Duplicate Document Number Error : You must specify a different "
                             "number. This number has already been used. DocNumber=%s is "
                             "assigned to TxnType=%s with TxnId=%s",
                             doc, kinds[w->k].name, owner);
        return 0;
    }
    if (w->old && jstr(w->old, "DocNumber")) {
        set_str(w->ent, "DocNumber", jstr(w->old, "DocNumber"));
        return 0;
    }
    if (!(kinds[w->k].flags & KF_DOCAUTO) || custom_txn_numbers(w->r))
        return 0;
    do
        snprintf(buf, sizeof(buf), "%lld", (long long)w->r->next_doc[w->k]++);
    while (json_object_object_get_ex(w->r->docnums[w->k], buf, NULL));
    set_str(w->ent, "DocNumber", buf);
    return 0;
}

static int txn_date(struct wctx *w, const char *key, int dflt_today, char *out, size_t outsz)
{
    struct json_object *v;
    struct tm tm;
    const char *s;
    *out = 0;
    if (json_object_object_get_ex(w->ent, key, &v) && !json_object_is_type(v, json_type_null)) {
        if (!(s = jstr(w->ent, key)) || parse_date(s, &tm) < 0)
            return invalid_prop(w, key);
        snprintf(out, outsz, "%s", s);
        return 0;
    }
    if (dflt_today) {
        today(w->r, out, outsz);
        set_str(w->ent, key, out);
    }
    return 0;
}

/* Amount of a line, checked against Qty x UnitPrice (6070) when both are given. */
static int line_amount(struct wctx *w, struct json_object *l, struct json_object *d, int64_t *cents)
{
    struct qbo_dec amt, qty, price, prod;
    int has_a, has_q, has_p;
    char buf[40];

    if ((has_a = get_dec(w, l, "Amount", &amt)) < 0 || (has_q = get_dec(w, d, "Qty", &qty)) < 0 ||
        (has_p = get_dec(w, d, "UnitPrice", &price)) < 0)
        return -1;
    if (has_q && has_p) {
        if (qbo_dec_mul_round(qty, price, 2, &prod) < 0)
            return invalid_prop(w, "Amount");
        if (has_a && qbo_dec_cmp(amt, prod) != 0) {
            int64_t c = 0;
            qbo_dec_cents(amt, &c);
            qbo_cents_str(c, buf, sizeof(buf));
            return fault_set(&w->f, "6070", "", "Amount is not equal to UnitPrice * Qty",
                             "Amount is not equal to UnitPrice * Qty. Supplied value:%s", buf);
        }
        if (!has_a) {
            amt = prod;
            has_a = 1;
        }
    }
    if (!has_a)
        return missing(w, "Line.Amount");
    if (qbo_dec_cents(amt, cents) < 0)
        return invalid_prop(w, "Amount");
    set_money(l, "Amount", *cents);
    return 0;
}

static struct json_object *ensure_obj(struct json_object *o, const char *key)
{
    struct json_object *v = jobj(o, key);
    if (!v) {
        v = json_object_new_object();
        json_object_object_add(o, key, v);
    }
    return v;
}

/* Sales lines: ids, amounts, items, discounts; a trailing SubTotalLineDetail line. */
static int sales_lines(struct wctx *w, int64_t *subtotal, int64_t *discount)
{
    struct json_object *lines, *out, *pct[64];
    int npct = 0, lineno = 0;
    char idbuf[16];

    *subtotal = *discount = 0;
    if (!json_object_object_get_ex(w->ent, "Line", &lines) ||
        !json_object_is_type(lines, json_type_array) || json_object_array_length(lines) == 0)
        return missing(w, "Line");
    out = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(lines); i++) {
        struct json_object *l = json_object_array_get_idx(lines, i), *d, *item;
        const char *dt = jstr(l, "DetailType");
        int64_t c = 0;
        if (!json_object_is_type(l, json_type_object)) {
            json_object_put(out);
            return invalid_prop(w, "Line");
        }
        if (!dt) {
            json_object_put(out);
            return missing(w, "Line.DetailType");
        }
        if (strcmp(dt, "SubTotalLineDetail") == 0)
            continue; /* recomputed below */
        if (strcmp(dt, "SalesItemLineDetail") == 0) {
            d = ensure_obj(l, "SalesItemLineDetail");
            if (!json_object_object_get_ex(d, "ItemRef", NULL) && ent_get(w->r, K_ITEM, "1"))
                json_object_object_add(d, "ItemRef", ref_new("1", NULL));
            if (ref_check(w, d, "ItemRef", K_ITEM, 1, &item) < 0 || line_amount(w, l, d, &c) < 0) {
                json_object_put(out);
                return -1;
            }
            if (!json_object_object_get_ex(d, "TaxCodeRef", NULL)) {
                if (!is_us(w->r)) {
                    json_object_put(out);
                    return business(w, "TaxCodeRef",
                                    "Make sure all your transactions have a GST/HST rate before "
                                    "you save.");
                }
                json_object_object_add(d, "TaxCodeRef", ref_new("NON", NULL));
            }
            *subtotal += c;
        } else if (strcmp(dt, "GroupLineDetail") == 0 || strcmp(dt, "DescriptionOnly") == 0) {
            if (get_cents(w, l, "Amount", &c) < 0) {
                json_object_put(out);
                return -1;
            }
            if (json_object_object_get_ex(l, "Amount", NULL))
                set_money(l, "Amount", c);
            if (dt[0] == 'G')
                *subtotal += c;
        } else if (strcmp(dt, "DiscountLineDetail") == 0) {
            d = ensure_obj(l, "DiscountLineDetail");
            if (jbool(d, "PercentBased", 0) &&
                json_object_object_get_ex(d, "DiscountPercent", NULL)) {
                if (npct < (int)(sizeof(pct) / sizeof(pct[0])))
                    pct[npct++] = l;
            } else {
                int rc = get_cents(w, l, "Amount", &c);
                if (rc <= 0) {
                    json_object_put(out);
                    return rc < 0 ? -1 : missing(w, "Line.Amount");
                }
                set_money(l, "Amount", c);
                *discount += c;
            }
            json_object_array_add(out, json_object_get(l));
            continue; /* discount lines carry no Id / LineNum */
        } else {
            json_object_put(out);
            return fault_set(&w->f, "2170", "DetailType", "Invalid Enumeration",
                             "Invalid Enumeration : %s", dt);
        }
        snprintf(idbuf, sizeof(idbuf), "%d", ++lineno);
        set_str(l, "Id", idbuf);
        json_object_object_add(l, "LineNum", json_object_new_int(lineno));
        json_object_array_add(out, json_object_get(l));
    }
    for (int i = 0; i < npct; i++) {
        struct json_object *d = jobj(pct[i], "DiscountLineDetail");
        struct qbo_dec p, base = {*subtotal, 2}, amt;
        int64_t c = 0;
        if (get_dec(w, d, "DiscountPercent", &p) < 0 || qbo_dec_mul_round(base, p, 4, &amt) < 0) {
            json_object_put(out);
            return w->f.code ? -1 : invalid_prop(w, "DiscountPercent");
        }
        amt.scale += 2; /* divide by 100 */
        qbo_dec_cents(amt, &c);
        set_money(pct[i], "Amount", c);
        *discount += c;
    }
    struct json_object *st = json_object_new_object();
    set_money(st, "Amount", *subtotal);
    set_str(st, "DetailType", "SubTotalLineDetail");
    json_object_object_add(st, "SubTotalLineDetail", json_object_new_object());
    json_object_array_add(out, st);
    json_object_object_add(w->ent, "Line", out);
    return 0;
}

/* The term that sets DueDate (design choice #19): SalesTermRef, the customer's term, the
 * company default (Preferences.SalesFormsPrefs.DefaultTerms), else "Net 30" by name. */
static int invoice_due(struct wctx *w, struct json_object *cust, const char *txn)
{
    struct json_object *e = w->ent, *term = NULL;
    char due[40];
    const char *tid = NULL;

    if (ref_check(w, e, "SalesTermRef", K_TERM, 0, &term) < 0)
        return -1;
    if (!term && (tid = ref_value(cust, "SalesTermRef")))
        term = ent_get(w->r, K_TERM, tid);
    if (!term && (tid = ref_value(jobj(w->r->prefs, "SalesFormsPrefs"), "DefaultTerms")))
        term = ent_get(w->r, K_TERM, tid);
    if (!term) {
        const char *owner = name_owner(w->r, K_TERM, "Net 30");
        if (owner && strncmp(owner, "Term/", 5) == 0)
            term = ent_get(w->r, K_TERM, owner + 5);
    }
    if (term && !json_object_object_get_ex(e, "SalesTermRef", NULL))
        json_object_object_add(e, "SalesTermRef", ref_new(jstr(term, "Id"), jstr(term, "Name")));
    if (txn_date(w, "DueDate", 0, due, sizeof(due)) < 0)
        return -1;
    if (*due)
        return 0;
    struct json_object *v;
    if (term && json_object_object_get_ex(term, "DayOfMonthDue", &v)) {
        struct tm tm;
        int dom = json_object_get_int(v);
        parse_date(txn, &tm);
        if (tm.tm_mday >= dom)
            tm.tm_mon++;
        tm.tm_mday = 1;
        time_t t = timegm(&tm);
        gmtime_r(&t, &tm);
        int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int y = tm.tm_year + 1900, last = mdays[tm.tm_mon];
        if (tm.tm_mon == 1 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
            last = 29;
        snprintf(due, sizeof(due), "%04d-%02d-%02d", y, tm.tm_mon + 1, dom < last ? dom : last);
    } else {
        int days = 30;
        if (term && json_object_object_get_ex(term, "DueDays", &v))
            days = json_object_get_int(v);
        date_add_days(txn, days, due, sizeof(due));
    }
    set_str(e, "DueDate", due);
    return 0;
}

static struct json_object *undeposited_funds(struct realm *r)
{
    json_object_object_foreach(r->ents[K_ACCOUNT], id, a)
    {
        const char *st = jstr(a, "AccountSubType");
        if (st && strcmp(st, "UndepositedFunds") == 0)
            return ref_new(id, jstr(a, "Name"));
    }
    return NULL;
}

static int deposit_account(struct wctx *w, int required, int cash_only)
{
    struct json_object *acct, *uf;
    if (!required && !json_object_object_get_ex(w->ent, "DepositToAccountRef", NULL) &&
        (uf = undeposited_funds(w->r)))
        json_object_object_add(w->ent, "DepositToAccountRef", uf);
    if (ref_check(w, w->ent, "DepositToAccountRef", K_ACCOUNT, required, &acct) < 0)
        return -1;
    if (acct && cash_only) {
        const char *t = jstr(acct, "AccountType");
        if (!t || (strcmp(t, "Bank") != 0 && strcmp(t, "Other Current Asset") != 0))
            return business(w, "DepositToAccountRef",
                            "A refund must come from a Bank or Other Current Asset account.");
    }
    return 0;
}

static int build_sales(struct wctx *w)
{
    struct json_object *e = w->ent, *cust, *pm, *tax, *v;
    int64_t subtotal, discount, taxc = 0, total;
    char txn[16];
    enum kind k = w->k;

    if (ref_check(w, e, "CustomerRef", K_CUSTOMER, k == K_INVOICE || k == K_ESTIMATE, &cust) < 0 ||
        sales_lines(w, &subtotal, &discount) < 0 || doc_number(w) < 0 ||
        txn_date(w, "TxnDate", 1, txn, sizeof(txn)) < 0)
        return -1;
    tax = ensure_obj(e, "TxnTaxDetail");
    if (get_cents(w, tax, "TotalTax", &taxc) < 0)
        return -1;
    set_money(tax, "TotalTax", taxc);
    total = subtotal - discount + taxc;
    if (json_object_object_get_ex(e, "BillEmail", &v) &&
        (!json_object_is_type(v, json_type_object) || !jstr(v, "Address")))
        return invalid_prop(w, "BillEmail");
    if (ref_check(w, e, "PaymentMethodRef", K_PAYMENTMETHOD, 0, &pm) < 0)
        return -1;
    if (k == K_INVOICE) {
        int64_t applied = w->old ? cents_of(w->old, "TotalAmt") - cents_of(w->old, "Balance") : 0;
        if (invoice_due(w, cust, txn) < 0)
            return -1;
        set_money(e, "Balance", total - applied);
        if (w->old && json_object_object_get_ex(w->old, "LinkedTxn", &v))
            json_object_object_add(e, "LinkedTxn", json_object_get(v));
        set_if_absent(e, "LinkedTxn", json_object_new_array());
        set_if_absent(e, "AllowOnlinePayment", json_object_new_boolean(0));
        set_if_absent(e, "PrintStatus", json_object_new_string("NeedToPrint"));
        set_if_absent(e, "EmailStatus", json_object_new_string("NotSet"));
    } else if (k == K_ESTIMATE) {
        set_if_absent(e, "TxnStatus", json_object_new_string("Pending"));
        set_if_absent(e, "PrintStatus", json_object_new_string("NeedToPrint"));
        set_if_absent(e, "EmailStatus", json_object_new_string("NotSet"));
    } else {
        if (deposit_account(w, k == K_REFUNDRECEIPT, k == K_REFUNDRECEIPT) < 0)
            return -1;
        set_money(e, "Balance", 0);
        if (k == K_REFUNDRECEIPT)
            set_money(e, "RemainingCredit", 0);
        set_if_absent(e, "PrintStatus", json_object_new_string("NotSet"));
        set_if_absent(e, "EmailStatus", json_object_new_string("NotSet"));
    }
    set_money(e, "TotalAmt", total);
    set_if_absent(e, "ApplyTaxAfterDiscount", json_object_new_boolean(0));
    set_if_absent(e, "CurrencyRef", currency_ref(w->r));
    if (cust && (v = jobj(cust, "BillAddr")))
        set_if_absent(e, "BillAddr", json_object_get(v));
    if (cust && (v = jobj(cust, "ShipAddr")))
        set_if_absent(e, "ShipAddr", json_object_get(v));
    return 0;
}

/* Invoice id -> cents a payment applies to it (first Invoice LinkedTxn of each line). */
static struct json_object *applied_map(struct json_object *pay)
{
    struct json_object *m = json_object_new_object(), *lines, *lts;
    if (!pay || !json_object_object_get_ex(pay, "Line", &lines) ||
        !json_object_is_type(lines, json_type_array))
        return m;
    for (size_t i = 0; i < json_object_array_length(lines); i++) {
        struct json_object *l = json_object_array_get_idx(lines, i);
        if (!json_object_object_get_ex(l, "LinkedTxn", &lts) ||
            !json_object_is_type(lts, json_type_array))
            continue;
        for (size_t j = 0; j < json_object_array_length(lts); j++) {
            struct json_object *lt = json_object_array_get_idx(lts, j), *cur;
            const char *tid = jstr(lt, "TxnId"), *tt = jstr(lt, "TxnType");
            if (!tid || !tt || strcmp(tt, "Invoice") != 0)
                continue;
            int64_t sum = cents_of(l, "Amount");
            if (json_object_object_get_ex(m, tid, &cur))
                sum += json_object_get_int64(cur);
            json_object_object_add(m, tid, json_object_new_int64(sum));
            break;
        }
    }
    return m;
}

static int build_payment(struct wctx *w)
{
    struct json_object *e = w->ent, *cust, *pm, *lines, *newm = NULL, *oldm = NULL;
    int64_t total, applied = 0;
    char txn[16];
    int rc = -1;

    if (ref_check(w, e, "CustomerRef", K_CUSTOMER, 1, &cust) < 0 ||
        ref_check(w, e, "PaymentMethodRef", K_PAYMENTMETHOD, 0, &pm) < 0)
        return -1;
    int got = get_cents(w, e, "TotalAmt", &total);
    if (got <= 0)
        return got < 0 ? -1 : missing(w, "TotalAmt");
    if (total < 0)
        return business(w, "TotalAmt", "The payment amount cannot be negative.");
    if (json_object_object_get_ex(e, "Line", &lines)) {
        if (!json_object_is_type(lines, json_type_array))
            return invalid_prop(w, "Line");
        for (size_t i = 0; i < json_object_array_length(lines); i++) {
            struct json_object *l = json_object_array_get_idx(lines, i), *lts;
            int64_t c;
            if (!json_object_is_type(l, json_type_object))
                return invalid_prop(w, "Line");
            int g = get_cents(w, l, "Amount", &c);
            if (g <= 0)
                return g < 0 ? -1 : missing(w, "Line.Amount");
            set_money(l, "Amount", c);
            applied += c;
            if (!json_object_object_get_ex(l, "LinkedTxn", &lts))
                continue;
            if (!json_object_is_type(lts, json_type_array))
                return invalid_prop(w, "LinkedTxn");
            for (size_t j = 0; j < json_object_array_length(lts); j++) {
                struct json_object *lt = json_object_array_get_idx(lts, j), *inv;
                const char *tid = jstr(lt, "TxnId"), *tt = jstr(lt, "TxnType");
                if (!tid || !tt)
                    return missing(w, "LinkedTxn.TxnId");
                if (strcmp(tt, "Invoice") != 0)
                    continue;
                if (!(inv = ent_get(w->r, K_INVOICE, tid)))
                    return fault_set(&w->f, "2500", "LinkedTxn", "Invalid Reference Id",
                                     "Invalid Reference Id : Invoice %s does not exist", tid);
                const char *ic = ref_value(inv, "CustomerRef"), *pc = ref_value(e, "CustomerRef");
                if (!ic || !pc || strcmp(ic, pc) != 0)
                    return business(w, "LinkedTxn",
                                    "The invoice belongs to another customer than the payment.");
            }
        }
    }
    if (applied > total)
        return business(w, "TotalAmt",
                        "The amount received must be at least the total applied to invoices.");
    newm = applied_map(e);
    oldm = applied_map(w->old);
    json_object_object_foreach(newm, invid, amt)
    {
        struct json_object *was;
        int64_t avail = cents_of(ent_get(w->r, K_INVOICE, invid), "Balance");
        if (json_object_object_get_ex(oldm, invid, &was))
            avail += json_object_get_int64(was);
        if (json_object_get_int64(amt) > avail) {
            char msg[160];
            snprintf(msg, sizeof(msg),
                     "The payment applied to invoice %s exceeds its open balance.", invid);
            business(w, "Line.Amount", msg);
            goto out;
        }
    }
    if (txn_date(w, "TxnDate", 1, txn, sizeof(txn)) < 0 || deposit_account(w, 0, 0) < 0)
        goto out;
    set_money(e, "TotalAmt", total);
    set_money(e, "UnappliedAmt", total - applied);
    set_if_absent(e, "ProcessPayment", json_object_new_boolean(0));
    set_if_absent(e, "CurrencyRef", currency_ref(w->r));
    rc = 0;
out:
    json_object_put(newm);
    json_object_put(oldm);
    return rc;
}

/* Move invoice balances and links from what `old` applied to what `neu` applies
 * (design choice #18: Balance drops, a Payment LinkedTxn appears, SyncToken bumps). */
static void apply_payment(struct realm *r, const char *pay_id, struct json_object *old,
                          struct json_object *neu)
{
    struct json_object *oldm = applied_map(old), *newm = applied_map(neu);
    struct json_object *all = json_object_new_object();

    json_object_object_foreach(oldm, k1, v1)
    {
        (void)v1;
        json_object_object_add(all, k1, NULL);
    }
    json_object_object_foreach(newm, k2, v2)
    {
        (void)v2;
        json_object_object_add(all, k2, NULL);
    }
    json_object_object_foreach(all, invid, unused)
    {
        (void)unused;
        struct json_object *inv = ent_get(r, K_INVOICE, invid), *o, *n, *links;
        if (!inv)
            continue;
        int64_t was = json_object_object_get_ex(oldm, invid, &o) ? json_object_get_int64(o) : 0;
        int64_t now = json_object_object_get_ex(newm, invid, &n) ? json_object_get_int64(n) : 0;
        links = json_object_object_get_ex(inv, "LinkedTxn", &links) &&
                        json_object_is_type(links, json_type_array)
                    ? links
                    : NULL;
        if (!links) {
            links = json_object_new_array();
            json_object_object_add(inv, "LinkedTxn", links);
        }
        int found = -1;
        for (size_t i = 0; i < json_object_array_length(links); i++) {
            struct json_object *lt = json_object_array_get_idx(links, i);
            const char *tid = jstr(lt, "TxnId"), *tt = jstr(lt, "TxnType");
            if (tid && tt && strcmp(tid, pay_id) == 0 && strcmp(tt, "Payment") == 0)
                found = (int)i;
        }
        if (was == now && (found >= 0) == (now > 0))
            continue;
        set_money(inv, "Balance", cents_of(inv, "Balance") - (now - was));
        if (now > 0 && found < 0) {
            struct json_object *lt = json_object_new_object();
            set_str(lt, "TxnId", pay_id);
            set_str(lt, "TxnType", "Payment");
            json_object_array_add(links, lt);
        } else if (now == 0 && found >= 0) {
            json_object_array_del_idx(links, (size_t)found, 1);
        }
        bump(r, inv);
    }
    json_object_put(all);
    json_object_put(oldm);
    json_object_put(newm);
}

static int build_purchase(struct wctx *w)
{
    static const char *const ptypes[] = {"Cash", "Check", "CreditCard", NULL};
    struct json_object *e = w->ent, *acct, *lines, *ent, *out;
    const char *pt = jstr(e, "PaymentType"), *at;
    int64_t total = 0;
    int lineno = 0;
    char txn[16], idbuf[16];

    if (!pt)
        return missing(w, "PaymentType");
    if (!in_list(ptypes, pt))
        return fault_set(&w->f, "2170", "PaymentType", "Invalid Enumeration",
                         "Invalid Enumeration : %s", pt);
    if (ref_check(w, e, "AccountRef", K_ACCOUNT, 1, &acct) < 0)
        return -1;
    at = jstr(acct, "AccountType");
    if (!at || (strcmp(pt, "CreditCard") == 0
                    ? strcmp(at, "Credit Card") != 0
                    : strcmp(at, "Bank") != 0 && strcmp(at, "Other Current Asset") != 0))
        return business(w, "AccountRef",
                        "The payment account does not match the PaymentType (Check/Cash: a Bank "
                        "account, CreditCard: a Credit Card account).");
    struct json_object *er = jobj(e, "EntityRef");
    if (er) {
        const char *type = jstr(er, "type");
        int k = type ? kind_by_name(type) : K_VENDOR;
        if (k != K_VENDOR && k != K_CUSTOMER && k != K_EMPLOYEE)
            return invalid_prop(w, "EntityRef");
        if (ref_check(w, e, "EntityRef", (enum kind)k, 1, &ent) < 0)
            return -1;
        set_str(er, "type", kinds[k].name);
    }
    if (!json_object_object_get_ex(e, "Line", &lines) ||
        !json_object_is_type(lines, json_type_array) || json_object_array_length(lines) == 0)
        return missing(w, "Line");
    out = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(lines); i++) {
        struct json_object *l = json_object_array_get_idx(lines, i), *d, *ref;
        const char *dt = jstr(l, "DetailType");
        int64_t c = 0;
        int rc = 0;
        if (!dt) {
            rc = missing(w, "Line.DetailType");
        } else if (strcmp(dt, "AccountBasedExpenseLineDetail") == 0) {
            d = ensure_obj(l, dt);
            if (ref_check(w, d, "AccountRef", K_ACCOUNT, 1, &ref) < 0 ||
                get_cents(w, l, "Amount", &c) <= 0)
                rc = w->f.code ? -1 : missing(w, "Line.Amount");
            set_if_absent(d, "BillableStatus", json_object_new_string("NotBillable"));
            set_if_absent(d, "TaxCodeRef", ref_new("NON", NULL));
        } else if (strcmp(dt, "ItemBasedExpenseLineDetail") == 0) {
            d = ensure_obj(l, dt);
            if (ref_check(w, d, "ItemRef", K_ITEM, 1, &ref) < 0 || line_amount(w, l, d, &c) < 0)
                rc = -1;
            set_if_absent(d, "BillableStatus", json_object_new_string("NotBillable"));
            set_if_absent(d, "TaxCodeRef", ref_new("NON", NULL));
        } else {
            rc = fault_set(&w->f, "2170", "DetailType", "Invalid Enumeration",
                           "Invalid Enumeration : %s", dt);
        }
        if (rc < 0) {
            json_object_put(out);
            return -1;
        }
        set_money(l, "Amount", c);
        total += c;
        snprintf(idbuf, sizeof(idbuf), "%d", ++lineno);
        set_str(l, "Id", idbuf);
        json_object_array_add(out, json_object_get(l));
    }
    json_object_object_add(e, "Line", out);
    if (doc_number(w) < 0 || txn_date(w, "TxnDate", 1, txn, sizeof(txn)) < 0)
        return -1;
    set_money(e, "TotalAmt", total);
    set_if_absent(e, "Credit", json_object_new_boolean(0));
    set_if_absent(e, "CurrencyRef", currency_ref(w->r));
    return 0;
}

/* ---- the write pipeline ------------------------------------------------------------ */

/* Create (old NULL) or update `old` from body; on success the stored entity is *out
 * (borrowed from the realm). Body is borrowed. */
static int entity_write(struct realm *r, enum kind k, struct json_object *body,
                        struct json_object *old, int sparse, int seeding, int allow_dup,
                        struct json_object **out, struct fault *f)
{
    struct wctx w = {.r = r, .k = k, .old = old, .allow_dup_doc = allow_dup};
    char idbuf[24], ts[48], st[24];
    struct json_object *meta = NULL, *v;
    const char *sid;

    if (check_fields(&w, body) < 0)
        goto fail;
    if (old && sparse) {
        json_object_deep_copy(old, &w.ent, NULL);
        json_object_object_foreach(body, key, val)
        {
            struct json_object *cp = NULL;
            if (in_list(server_fields, key))
                continue;
            json_object_deep_copy(val, &cp, NULL);
            json_object_object_add(w.ent, key, cp);
        }
    } else {
        json_object_deep_copy(body, &w.ent, NULL);
    }
    if (seeding && !old && jobj(body, "MetaData"))
        json_object_deep_copy(jobj(body, "MetaData"), &meta, NULL);
    for (int i = 0; server_fields[i]; i++)
        json_object_object_del(w.ent, server_fields[i]);
    if (old) {
        snprintf(idbuf, sizeof(idbuf), "%s", jstr(old, "Id"));
        w.id = idbuf;
    } else if (seeding && (sid = jstr(body, "Id"))) {
        if (!is_numeric_id(sid) || ent_get(r, k, sid)) {
            fault_set(&w.f, "2030", "Id", "Invalid ID",
                      "Id should be a valid, unused number. "
                      "Supplied value:%s",
                      sid);
            goto fail;
        }
        snprintf(idbuf, sizeof(idbuf), "%s", sid);
        w.id = idbuf;
    }
    if (kinds[k].build(&w) < 0)
        goto fail;
    if (!w.id) {
        do
            snprintf(idbuf, sizeof(idbuf), "%lld", (long long)r->next_id[k]++);
        while (ent_get(r, k, idbuf));
        w.id = idbuf;
    } else if (atoll(idbuf) >= r->next_id[k]) {
        r->next_id[k] = atoll(idbuf) + 1;
    }
    if (kinds[k].flags & KF_NAMELIST)
        set_if_absent(w.ent, "Active", json_object_new_boolean(1));
    set_str(w.ent, "domain", "QBO");
    json_object_object_add(w.ent, "sparse", json_object_new_boolean(0));
    set_str(w.ent, "Id", w.id);
    fmt_time(r, sb_now_ms(), 0, ts, sizeof(ts));
    if (old) {
        snprintf(st, sizeof(st), "%lld",
                 atoll(jstr(old, "SyncToken") ? jstr(old, "SyncToken") : "0") + 1);
        meta = NULL;
        json_object_deep_copy(jobj(old, "MetaData"), &meta, NULL);
        if (!meta)
            meta = json_object_new_object();
        set_str(meta, "LastUpdatedTime", ts);
    } else {
        snprintf(st, sizeof(st), "%s",
                 seeding && jstr(body, "SyncToken") ? jstr(body, "SyncToken") : "0");
        if (!meta)
            meta = json_object_new_object();
        if (!json_object_object_get_ex(meta, "CreateTime", &v))
            set_str(meta, "CreateTime", ts);
        if (!json_object_object_get_ex(meta, "LastUpdatedTime", &v))
            set_str(meta, "LastUpdatedTime", jstr(meta, "CreateTime"));
    }
    set_str(w.ent, "SyncToken", st);
    json_object_object_add(w.ent, "MetaData", meta);
    /* Commit: nothing above touched shared state except id/doc counters. */
    if (k == K_PAYMENT)
        apply_payment(r, w.id, old, w.ent);
    if (old)
        index_del(r, k, old);
    index_add(r, k, w.ent);
    json_object_object_add(r->ents[k], w.id, w.ent); /* frees old */
    *out = w.ent;
    return 0;
fail:
    json_object_put(w.ent);
    *f = w.f;
    return -1;
}

static int json_id_str(struct json_object *body, const char *key, char *buf, size_t bufsz)
{
    struct json_object *v;
    if (!json_object_object_get_ex(body, key, &v))
        return -1;
    if (json_object_is_type(v, json_type_string))
        snprintf(buf, bufsz, "%s", json_object_get_string(v));
    else if (json_object_is_type(v, json_type_int))
        snprintf(buf, bufsz, "%lld", (long long)json_object_get_int64(v));
    else
        return -1;
    return 0;
}

/* The entity an update/delete/void names, if its SyncToken is current (else 5010). */
static struct json_object *locate(struct realm *r, enum kind k, struct json_object *body,
                                  struct fault *f)
{
    char id[64], st[64];
    struct json_object *e;
    struct wctx w = {.r = r, .k = k};

    if (json_id_str(body, "Id", id, sizeof(id)) < 0) {
        missing(&w, "Id");
        goto fail;
    }
    if (!is_numeric_id(id)) {
        fault_set(&w.f, "2030", "Id", "Invalid ID",
                  "Id should be a valid number. Supplied value:%s", id);
        goto fail;
    }
    if (!(e = ent_get(r, k, id))) {
        fault_set(&w.f, "610", "", "Object Not Found", "%s", obj_not_found);
        goto fail;
    }
    if (json_id_str(body, "SyncToken", st, sizeof(st)) < 0) {
        missing(&w, "SyncToken");
        goto fail;
    }
    if (strcmp(st, jstr(e, "SyncToken")) != 0) {
        fault_set(&w.f, "5010", "", "Stale Object Error",
                  "Stale Object Error : You and root were working on this at the same time. root "
                  "finished before you did, so your work was not saved.");
        goto fail;
    }
    return e;
fail:
    *f = w.f;
    return NULL;
}

static void do_delete(struct route_ctx *c, enum kind k, struct json_object *body)
{
    struct fault f;
    struct json_object *e, *res, *env;
    char id[24], ts[48];

    if (kinds[k].flags & KF_NAMELIST) {
        fault_set(&f, "500", NULL, "Unsupported Operation",
                  "Operation Delete is not supported for %s; set Active to false instead.",
                  kinds[k].name);
        reply_fault(c->rp, c->r, &f);
        return;
    }
    if (!(e = locate(c->r, k, body, &f))) {
        reply_fault(c->rp, c->r, &f);
        return;
    }
    snprintf(id, sizeof(id), "%s", jstr(e, "Id"));
    if (k == K_PAYMENT)
        apply_payment(c->r, id, e, NULL);
    index_del(c->r, k, e);
    json_object_object_del(c->r->ents[k], id);
    res = json_object_new_object();
    set_str(res, "domain", "QBO");
    set_str(res, "status", "Deleted");
    set_str(res, "Id", id);
    env = json_object_new_object();
    json_object_object_add(env, kinds[k].name, res);
    fmt_time(c->r, sb_now_ms(), 1, ts, sizeof(ts));
    set_str(env, "time", ts);
    reply_set(c->rp, 200, CT_JSON, dup_json(env));
    json_object_put(env);
}

/* Void: amounts to zero, "Voided" note, payment applications undone; the record stays. */
static void do_void(struct route_ctx *c, enum kind k, struct json_object *body)
{
    struct fault f;
    struct json_object *e, *cp = NULL, *lines;
    char id[24];

    if (!(e = locate(c->r, k, body, &f))) {
        reply_fault(c->rp, c->r, &f);
        return;
    }
    snprintf(id, sizeof(id), "%s", jstr(e, "Id"));
    json_object_deep_copy(e, &cp, NULL);
    if (json_object_object_get_ex(cp, "Line", &lines) &&
        json_object_is_type(lines, json_type_array))
        for (size_t i = 0; i < json_object_array_length(lines); i++)
            set_money(json_object_array_get_idx(lines, i), "Amount", 0);
    set_money(cp, "TotalAmt", 0);
    if (json_object_object_get_ex(cp, "Balance", NULL))
        set_money(cp, "Balance", 0);
    if (json_object_object_get_ex(cp, "UnappliedAmt", NULL))
        set_money(cp, "UnappliedAmt", 0);
    set_str(cp, "PrivateNote", "Voided");
    if (k == K_PAYMENT)
        apply_payment(c->r, id, e, NULL);
    bump(c->r, cp);
    json_object_object_add(c->r->ents[k], id, cp);
    reply_entity(c->rp, c->r, kinds[k].name, cp);
}

static void do_write(struct route_ctx *c, enum kind k)
{
    const char *op = sb_req_query(c->req, "operation");
    const char *inc = sb_req_query(c->req, "include");
    struct json_tokener *tok = json_tokener_new_ex(QBO_JSON_DEPTH);
    struct json_object *body = NULL, *old, *ent;
    struct fault f;

    if (tok)
        body = json_tokener_parse_ex(tok, c->req->body, (int)c->req->body_len);
    if (!tok || json_tokener_get_error(tok) != json_tokener_success ||
        (size_t)json_tokener_get_parse_end(tok) != c->req->body_len ||
        !json_object_is_type(body, json_type_object)) {
        fault_set(&f, "2010", NULL, "Request has invalid or unsupported property",
                  "Property Name:Can not parse the request body as a JSON object specified is "
                  "unsupported or invalid");
        reply_fault(c->rp, c->r, &f);
        goto out;
    }
    int allow_dup = inc && strstr(inc, "allowduplicatedocnum");
    int has_id = json_object_object_get_ex(body, "Id", NULL);
    if (op && strcmp(op, "delete") == 0) {
        do_delete(c, k, body);
    } else if (op && strcmp(op, "void") == 0) {
        if (k == K_INVOICE)
            do_void(c, k, body);
        else
            reply_unsupported(c->rp, c->r, c->req->path);
    } else if ((op && strcmp(op, "update") == 0) || (!op && has_id)) {
        if (inc && strstr(inc, "void") && (k == K_PAYMENT || k == K_SALESRECEIPT)) {
            do_void(c, k, body);
        } else if (!(old = locate(c->r, k, body, &f)) ||
                   entity_write(c->r, k, body, old, jbool(body, "sparse", 0), 0, allow_dup, &ent,
                                &f) < 0) {
            reply_fault(c->rp, c->r, &f);
        } else {
            reply_entity(c->rp, c->r, kinds[k].name, ent);
        }
    } else if (!op || strcmp(op, "create") == 0) {
        if (entity_write(c->r, k, body, NULL, 0, 0, allow_dup, &ent, &f) < 0)
            reply_fault(c->rp, c->r, &f);
        else
            reply_entity(c->rp, c->r, kinds[k].name, ent);
    } else {
        reply_unsupported(c->rp, c->r, c->req->path);
    }
out:
    json_object_put(body);
    if (tok)
        json_tokener_free(tok);
}

static void route(struct route_ctx *c)
{
    const char *rest = c->rest, *m = c->req->method;
    size_t n = strcspn(rest, "/");
    const char *sub = rest[n] == '/' ? rest + n + 1 : NULL;
    int get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0, k;

    if (n == 5 && strncmp(rest, "query", 5) == 0 && !sub && (get || post)) {
        do_query(c);
    } else if (n == 11 && strncmp(rest, "companyinfo", 11) == 0 && sub && !strchr(sub, '/') &&
               get) {
        if (strcmp(sub, c->r->id) == 0 ||
            (jstr(c->r->company, "Id") && strcmp(sub, jstr(c->r->company, "Id")) == 0)) {
            reply_entity(c->rp, c->r, "CompanyInfo", c->r->company);
        } else {
            struct fault f;
            fault_set(&f, "610", "", "Object Not Found", "%s", obj_not_found);
            reply_fault(c->rp, c->r, &f);
        }
    } else if (n == 11 && strncmp(rest, "preferences", 11) == 0 && !sub && get) {
        reply_entity(c->rp, c->r, "Preferences", c->r->prefs);
    } else if ((k = kind_by_path(rest, n)) >= 0 && !sub && post) {
        do_write(c, (enum kind)k);
    } else if (k >= 0 && sub && *sub && !strchr(sub, '/') && get) {
        do_read(c, (enum kind)k, sub);
    } else {
        reply_unsupported(c->rp, c->r, c->req->path);
    }
}

/* ---- realms ---------------------------------------------------------------------- */

static struct json_object *default_company(void)
{
    struct json_object *c = json_object_new_object(), *addr = json_object_new_object();
    set_str(c, "CompanyName", "Sandbox Company");
    set_str(c, "LegalName", "Sandbox Company");
    set_str(addr, "Country", "USA");
    json_object_object_add(c, "CompanyAddr", addr);
    set_str(c, "Country", "US");
    set_str(c, "FiscalYearStartMonth", "January");
    set_str(c, "SupportedLanguages", "en");
    set_str(c, "Id", "1");
    return c;
}

static struct json_object *default_prefs(void)
{
    return json_tokener_parse(
        "{\"CurrencyPrefs\":{\"MultiCurrencyEnabled\":false,\"HomeCurrency\":{\"value\":\"USD\"}},"
        "\"SalesFormsPrefs\":{\"CustomTxnNumbers\":false},\"TaxPrefs\":{\"UsingSalesTax\":false}}");
}

static void finish_singleton(struct realm *r, struct json_object *o, const char *id)
{
    char ts[48];
    fmt_time(r, sb_now_ms(), 0, ts, sizeof(ts));
    set_if_absent(o, "Id", json_object_new_string(id));
    set_if_absent(o, "SyncToken", json_object_new_string("0"));
    set_if_absent(o, "domain", json_object_new_string("QBO"));
    set_if_absent(o, "sparse", json_object_new_boolean(0));
    if (!jobj(o, "MetaData")) {
        struct json_object *m = json_object_new_object();
        set_str(m, "CreateTime", ts);
        set_str(m, "LastUpdatedTime", ts);
        json_object_object_add(o, "MetaData", m);
    }
}

static struct realm *realm_new(const char *id)
{
    struct realm *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    snprintf(r->id, sizeof(r->id), "%s", id);
    r->utc_offset_min = -420;
    for (int k = 0; k < K_NKINDS; k++) {
        r->ents[k] = json_object_new_object();
        r->names[k] = json_object_new_object();
        r->docnums[k] = json_object_new_object();
        r->next_id[k] = 1;
        r->next_doc[k] = 1001;
    }
    r->reqids = json_object_new_object();
    r->company = default_company();
    r->prefs = default_prefs();
    finish_singleton(r, r->company, "1");
    finish_singleton(r, r->prefs, "1");
    return r;
}

static void realm_free(struct realm *r)
{
    if (!r)
        return;
    for (int k = 0; k < K_NKINDS; k++) {
        json_object_put(r->ents[k]);
        json_object_put(r->names[k]);
        json_object_put(r->docnums[k]);
    }
    json_object_put(r->reqids);
    json_object_put(r->company);
    json_object_put(r->prefs);
    free(r->ring);
    free(r);
}

void qbo_reset(void)
{
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < g_nrealms; i++)
        realm_free(g_realms[i]);
    g_nrealms = 0;
    struct qbo_opts keep = g_opts;
    g_opts = default_opts;
    g_opts.per_minute = keep.per_minute;
    g_opts.concurrent = keep.concurrent;
    g_opts.retention_s = keep.retention_s;
    pthread_mutex_unlock(&g_lock);
}

void qbo_set_limits(int per_minute, int concurrent, int requestid_retention_s)
{
    pthread_mutex_lock(&g_lock);
    if (per_minute >= 0)
        g_opts.per_minute = per_minute;
    if (concurrent >= 0)
        g_opts.concurrent = concurrent;
    if (requestid_retention_s >= 0)
        g_opts.retention_s = requestid_retention_s;
    pthread_mutex_unlock(&g_lock);
}

/* ---- configuration ---------------------------------------------------------------- */

struct opt_def {
    const char *key;
    size_t off; /* of an int in struct qbo_opts */
    int min, max;
    const char *const *choices; /* string options: index stored */
};

static const char *const xml_json[] = {"xml", "json", NULL};
static const char *const json_xml[] = {"json", "xml", NULL};
static const char *const replay_reject[] = {"replay", "reject", NULL};

#define OPT_INT(k, f, lo, hi)                                                                      \
    {                                                                                              \
        k, offsetof(struct qbo_opts, f), lo, hi, NULL                                              \
    }
#define OPT_ENUM(k, f, ch)                                                                         \
    {                                                                                              \
        k, offsetof(struct qbo_opts, f), 0, 0, ch                                                  \
    }
#define OPT_BOOL(k, f)                                                                             \
    {                                                                                              \
        k, offsetof(struct qbo_opts, f), -1, -1, NULL                                              \
    }

static const struct opt_def opt_defs[] = {
    /* per_minute, concurrent and the requestid retention come from qbo_set_limits()
     * (the admin settings), so they have one source of truth. */
    OPT_INT("per_second", per_second, 0, 1000000),
    OPT_INT("requestid_max_entries", requestid_max_entries, 1, 100000000),
    OPT_ENUM("requestid_mismatch", requestid_reject_mismatch, replay_reject),
    OPT_ENUM("throttle_body", throttle_json, xml_json),
    OPT_INT("retry_after_s", retry_after_s, 0, 3600),
    OPT_ENUM("auth_fault_body", auth_xml, json_xml),
    OPT_BOOL("names_case_insensitive", names_ci),
    OPT_BOOL("query_entity_case_insensitive", entity_ci),
    OPT_BOOL("strict_fields", strict_fields),
    OPT_BOOL("require_accept_json", require_accept_json),
    OPT_BOOL("hide_inactive", hide_inactive),
    OPT_INT("docnum_max_len", docnum_max_len, 0, 1000),
};

static int apply_opts(struct qbo_opts *o, struct json_object *opts, char *errstr, size_t errsz)
{
    if (!json_object_is_type(opts, json_type_object)) {
        snprintf(errstr, errsz, "qbo options: object expected");
        return -1;
    }
    json_object_object_foreach(opts, key, val)
    {
        const struct opt_def *d = NULL;
        for (size_t i = 0; i < sizeof(opt_defs) / sizeof(opt_defs[0]); i++)
            if (strcmp(opt_defs[i].key, key) == 0)
                d = &opt_defs[i];
        if (!d) {
            snprintf(errstr, errsz, "qbo options: unknown key \"%s\"", key);
            return -1;
        }
        int *field = (int *)((char *)o + d->off);
        if (d->choices) {
            int idx = -1;
            for (int i = 0; json_object_is_type(val, json_type_string) && d->choices[i]; i++)
                if (strcmp(d->choices[i], json_object_get_string(val)) == 0)
                    idx = i;
            if (idx < 0) {
                snprintf(errstr, errsz, "qbo option %s: one of %s|%s expected", key, d->choices[0],
                         d->choices[1]);
                return -1;
            }
            *field = idx;
        } else if (d->min == -1) {
            if (!json_object_is_type(val, json_type_boolean)) {
                snprintf(errstr, errsz, "qbo option %s: boolean expected", key);
                return -1;
            }
            *field = json_object_get_boolean(val);
        } else {
            int64_t v = json_object_get_int64(val);
            if (!json_object_is_type(val, json_type_int) || v < d->min || v > d->max) {
                snprintf(errstr, errsz, "qbo option %s: integer %d..%d expected", key, d->min,
                         d->max);
                return -1;
            }
            *field = (int)v;
        }
    }
    return 0;
}

/* Name keys are folded per names_ci: rebuild every index when it changes. */
static void reindex_all(void)
{
    for (int i = 0; i < g_nrealms; i++) {
        struct realm *r = g_realms[i];
        for (int k = 0; k < K_NKINDS; k++) {
            json_object_put(r->names[k]);
            json_object_put(r->docnums[k]);
            r->names[k] = json_object_new_object();
            r->docnums[k] = json_object_new_object();
        }
        for (int k = 0; k < K_NKINDS; k++) {
            json_object_object_foreach(r->ents[k], id, e)
            {
                (void)id;
                index_add(r, (enum kind)k, e);
            }
        }
    }
}

int qbo_configure(struct json_object *opts, char *errstr, size_t errsz)
{
    int rc;
    pthread_mutex_lock(&g_lock);
    struct qbo_opts o = g_opts;
    if ((rc = apply_opts(&o, opts, errstr, errsz)) == 0) {
        int refold = o.names_ci != g_opts.names_ci;
        g_opts = o;
        if (refold)
            reindex_all();
    }
    pthread_mutex_unlock(&g_lock);
    return rc;
}

struct json_object *qbo_options(void)
{
    struct json_object *o = json_object_new_object();
    pthread_mutex_lock(&g_lock);
    for (size_t i = 0; i < sizeof(opt_defs) / sizeof(opt_defs[0]); i++) {
        const struct opt_def *d = &opt_defs[i];
        int v = *(const int *)((const char *)&g_opts + d->off);
        if (d->choices)
            set_str(o, d->key, d->choices[v]);
        else if (d->min == -1)
            json_object_object_add(o, d->key, json_object_new_boolean(v));
        else
            json_object_object_add(o, d->key, json_object_new_int(v));
    }
    pthread_mutex_unlock(&g_lock);
    return o;
}

/* ---- seed and dump ------------------------------------------------------------------- */

static int parse_offset(const char *s, int *out)
{
    int h, m;
    char sign;
    if (!s || sscanf(s, "%c%2d:%2d", &sign, &h, &m) != 3 || (sign != '+' && sign != '-') ||
        h > 14 || m > 59)
        return -1;
    *out = (sign == '-' ? -1 : 1) * (h * 60 + m);
    return 0;
}

static int seed_realm(struct json_object *rj, char *errstr, size_t errsz)
{
    const char *id = jstr(rj, "realm_id");
    struct json_object *v, *arr, *ent;
    struct realm *r;
    struct fault f;

    if (!id || !*id || strlen(id) >= SB_TENANT_MAX || strchr(id, '/')) {
        snprintf(errstr, errsz, "qbo.realms[]: realm_id (string) required");
        return -1;
    }
    if (!(r = realm_find(id))) {
        if (g_nrealms == QBO_MAX_REALMS || !(r = realm_new(id))) {
            snprintf(errstr, errsz, "qbo: too many realms");
            return -1;
        }
        g_realms[g_nrealms++] = r;
    }
    if (json_object_object_get_ex(rj, "utc_offset", &v) &&
        parse_offset(json_object_get_string(v), &r->utc_offset_min) < 0) {
        snprintf(errstr, errsz, "qbo realm %s: utc_offset like \"-07:00\" expected", id);
        return -1;
    }
    if ((v = jobj(rj, "CompanyInfo"))) {
        json_object_put(r->company);
        r->company = NULL;
        json_object_deep_copy(v, &r->company, NULL);
        finish_singleton(r, r->company, "1");
    }
    if ((v = jobj(rj, "Preferences"))) {
        json_object_put(r->prefs);
        r->prefs = NULL;
        json_object_deep_copy(v, &r->prefs, NULL);
        finish_singleton(r, r->prefs, "1");
    }
    if (json_object_object_get_ex(rj, "next_doc_number", &v) &&
        json_object_is_type(v, json_type_int))
        for (int k = 0; k < K_NKINDS; k++)
            r->next_doc[k] = json_object_get_int64(v);
    for (int k = 0; k < K_NKINDS; k++) {
        if (!json_object_object_get_ex(rj, kinds[k].name, &arr))
            continue;
        if (!json_object_is_type(arr, json_type_array)) {
            snprintf(errstr, errsz, "qbo realm %s: %s must be an array", id, kinds[k].name);
            return -1;
        }
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
            struct json_object *e = json_object_array_get_idx(arr, i), *old;
            const char *eid = jstr(e, "Id");
            if (!json_object_is_type(e, json_type_object)) {
                snprintf(errstr, errsz, "qbo realm %s: %s[%zu] must be an object", id,
                         kinds[k].name, i);
                return -1;
            }
            if ((old = ent_get(r, (enum kind)k, eid))) { /* same id: replaced */
                if (k == K_PAYMENT)
                    apply_payment(r, eid, old, NULL);
                index_del(r, (enum kind)k, old);
                json_object_object_del(r->ents[k], eid);
            }
            if (entity_write(r, (enum kind)k, e, NULL, 0, 1, 0, &ent, &f) < 0) {
                snprintf(errstr, errsz, "qbo realm %s: %s[%zu]: %s %s: %s", id, kinds[k].name, i,
                         f.code, f.message, f.detail);
                return -1;
            }
        }
    }
    return 0;
}

int qbo_seed(struct json_object *doc, char *errstr, size_t errsz)
{
    struct json_object *part, *v;
    int rc = 0;

    if (!json_object_object_get_ex(doc, "qbo", &part))
        return 0;
    if (!json_object_is_type(part, json_type_object)) {
        snprintf(errstr, errsz, "qbo: object expected");
        return -1;
    }
    if (json_object_object_get_ex(part, "options", &v) && qbo_configure(v, errstr, errsz) < 0)
        return -1;
    pthread_mutex_lock(&g_lock);
    if (json_object_object_get_ex(part, "realms", &v)) {
        if (!json_object_is_type(v, json_type_array)) {
            snprintf(errstr, errsz, "qbo.realms: array expected");
            rc = -1;
        }
        for (size_t i = 0; rc == 0 && i < json_object_array_length(v); i++)
            rc = seed_realm(json_object_array_get_idx(v, i), errstr, errsz);
    }
    pthread_mutex_unlock(&g_lock);
    return rc;
}

static int id_cmp(const void *a, const void *b)
{
    long long x = atoll(jstr(*(struct json_object *const *)a, "Id"));
    long long y = atoll(jstr(*(struct json_object *const *)b, "Id"));
    return x < y ? -1 : x > y;
}

static struct json_object *realm_dump(struct realm *r)
{
    struct json_object *o = json_object_new_object(), *cp = NULL, *stats;
    json_object_deep_copy(r->company, &cp, NULL);
    json_object_object_add(o, "CompanyInfo", cp);
    cp = NULL;
    json_object_deep_copy(r->prefs, &cp, NULL);
    json_object_object_add(o, "Preferences", cp);
    for (int k = 0; k < K_NKINDS; k++) {
        size_t n = 0, cap = (size_t)json_object_object_length(r->ents[k]);
        struct json_object **v = calloc(cap + 1, sizeof(*v)), *arr = json_object_new_array();
        json_object_object_foreach(r->ents[k], id, e)
        {
            (void)id;
            if (v)
                v[n++] = e;
        }
        if (v)
            qsort(v, n, sizeof(*v), id_cmp);
        for (size_t i = 0; i < n; i++) {
            cp = NULL;
            json_object_deep_copy(v[i], &cp, NULL);
            json_object_array_add(arr, cp);
        }
        free(v);
        json_object_object_add(o, kinds[k].name, arr);
    }
    stats = json_object_new_object();
    json_object_object_add(stats, "requests", json_object_new_int64(r->n_requests));
    json_object_object_add(stats, "throttled", json_object_new_int64(r->n_throttled));
    json_object_object_add(stats, "replayed", json_object_new_int64(r->n_replayed));
    json_object_object_add(stats, "requestids",
                           json_object_new_int(json_object_object_length(r->reqids)));
    json_object_object_add(stats, "inflight", json_object_new_int(r->inflight));
    json_object_object_add(o, "stats", stats);
    return o;
}

struct json_object *qbo_dump(const char *realm_id)
{
    struct json_object *o = json_object_new_object();
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < g_nrealms; i++)
        if (!realm_id || strcmp(realm_id, g_realms[i]->id) == 0)
            json_object_object_add(o, g_realms[i]->id, realm_dump(g_realms[i]));
    pthread_mutex_unlock(&g_lock);
    return o;
}
