/* qbo.c - the QuickBooks Online Accounting API v3 under /v3/company/{realmId}/: the gate
 * every request passes, routing, reads and queries, and the companies' lifecycle
 * (options, realms, seed, dump).
 *
 * Every request goes through the same gate before it touches a company:
 *
 *   qbo_admit (core, before latency): concurrent slot per realm, else 429
 *   qbo_handle: intuit_tid -> bearer token (oauth.c) else 401 -> per-minute / per-second
 *     window else 429 -> Accept -> requestid replay -> route -> store for replay
 *
 * State (qbo_internal.h): one struct realm per company (CompanyInfo, Preferences, one
 * json-c object per entity kind used as an Id -> entity hash map, name and DocNumber
 * indexes, requestid store, throttle rings). Entities are kept exactly as they are
 * answered: name lists as trees, transactions as their text (qbo_store.c, parsed when a
 * request needs them and settled back before g_lock is released). All of it sits behind
 * g_lock, which only this file takes, once per public entry point; the response text is
 * produced under it (json-c objects are not thread-safe) and it is never held across I/O
 * or injected latency.
 *
 * Writes and their rules live elsewhere: qbo_rules.c (the write pipeline, name lists,
 * requestid store) and qbo_txn.c (transactions). Reference §12's design choices are
 * switches in struct qbo_opts (qbo_configure()).
 */
#include "common/clock.h"
#include "tests/sandbox/sandbox.h"
#include "tests/sandbox/intuit.h"
#include "tests/sandbox/qbo_internal.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define QBO_MAX_REALMS 256
#define QBO_RING_MAX   1000000 /* per-minute limit cap (timestamps kept per realm) */

/* ---- state ----------------------------------------------------------------------- */

#define QBO_DEFAULT_OPTS                                                                           \
    {                                                                                              \
        .per_minute = 500, .concurrent = 10, .requestid_max_entries = 200000, .names_ci = 1,       \
        .strict_fields = 1, .require_accept_json = 1, .hide_inactive = 1, .docnum_max_len = 21,    \
        .ast_bill_addr = 1, .xrate_one = 1, .entity_ci = 1, .lexical_beyond_latin1 = 1             \
    }

static const struct qbo_opts default_opts = QBO_DEFAULT_OPTS;

/* The live switches (qbo_configure, qbo_set_limits); read and written under g_lock. */
struct qbo_opts g_qbo_opts = QBO_DEFAULT_OPTS;

/* Guards g_qbo_opts and every realm; taken only by the public entry points of this file,
 * never around I/O, latency or another vendor's call. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct realm *g_realms[QBO_MAX_REALMS];
static int g_nrealms;

const char qbo_obj_not_found[] =
    "Object Not Found : Something you're trying to use has been made inactive. Check the "
    "fields with accounts, customers, items, vendors or employees.";

static struct realm *realm_find(const char *id)
{
    for (int i = 0; i < g_nrealms; i++)
        if (strcmp(g_realms[i]->id, id) == 0)
            return g_realms[i];
    return NULL;
}

void qbo_fmt_time(const struct realm *r, int64_t wall_ms, int with_ms, char *buf, size_t bufsz)
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

/* ---- replies ------------------------------------------------------------------------ */

void qbo_reply_set(struct reply *rp, int status, const char *ctype, char *body)
{
    free(rp->body);
    rp->status = status;
    rp->ctype = ctype;
    rp->body = body;
    rp->ent_kind = rp->ent_deferred = 0;
}

void qbo_reply_entity(struct reply *rp, struct realm *r, const char *name,
                      struct json_object *ent)
{
    char ts[48];
    int k = qbo_kind_by_name(name);
    const char *id = jstr(ent, "Id");
    qbo_fmt_time(r, clock_wall_ms(), 1, ts, sizeof(ts));
    if (k >= 0 && id && strlen(id) < sizeof(rp->ent_id) && qbo_compact((enum kind)k) &&
        qbo_ent_get(r, (enum kind)k, id) == ent) { /* a stored transaction: text after settle */
        qbo_reply_set(rp, 200, CT_JSON, NULL);
        rp->ent_deferred = 1;
    } else {
        struct json_object *env = json_object_new_object();
        json_object_object_add(env, name, json_object_get(ent));
        json_object_object_add(env, "time", json_object_new_string(ts));
        qbo_reply_set(rp, 200, CT_JSON, dup_json(env));
        json_object_put(env);
    }
    if (k >= 0 && id && strlen(id) < sizeof(rp->ent_id)) {
        rp->ent_kind = k + 1;
        snprintf(rp->ent_id, sizeof(rp->ent_id), "%s", id);
        snprintf(rp->ent_time, sizeof(rp->ent_time), "%s", ts);
    }
}

void qbo_reply_finish(struct realm *r, struct reply *rp)
{
    if (!rp->ent_deferred)
        return;
    rp->ent_deferred = 0;
    struct json_object *text = qbo_ent_text(r, (enum kind)(rp->ent_kind - 1), rp->ent_id);
    const char *name = qbo_kinds[rp->ent_kind - 1].name;
    size_t tlen = text ? (size_t)json_object_get_string_len(text) : 0;
    size_t len = strlen(name) + tlen + strlen(rp->ent_time) + 16;
    char *body = text ? malloc(len) : NULL;
    if (body)
        snprintf(body, len, "{\"%s\":%s,\"time\":\"%s\"}", name, json_object_get_string(text),
                 rp->ent_time);
    rp->body = body; /* NULL (out of memory): qbo_handle answers 500 */
}

void qbo_reply_fault(struct reply *rp, const struct realm *r, const struct fault *f)
{
    char ts[48];
    struct json_object *env = json_object_new_object(), *fo = json_object_new_object();
    struct json_object *errs = json_object_new_array(), *e = json_object_new_object();

    qbo_fmt_time(r, clock_wall_ms(), 1, ts, sizeof(ts));
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
    qbo_reply_set(rp, f->status ? f->status : 400, f->status == 200 ? CT_JSON : CT_JSON_ERR,
                  dup_json(env));
    json_object_put(env);
}

int qbo_fault_set(struct fault *f, const char *code, const char *element, const char *msg,
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
    qbo_fmt_time(r, clock_wall_ms(), 1, ts, sizeof(ts));
    if (g_qbo_opts.throttle_json) {
        struct fault f;
        qbo_fault_set(&f, "3001", NULL,
                      "message=ThrottleExceeded; errorCode=003001; statusCode=429",
                      "The request limit was reached.  Try again later");
        f.status = 429;
        f.type = "SERVICE";
        qbo_reply_fault(rp, r, &f);
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
    qbo_reply_set(rp, 429, "application/xml", strdup(body));
}

/* 401: the lower-case body seen in real traffic (epoch-ms time), or the XML variant. */
static void reply_unauthorized(struct reply *rp, const char *detail)
{
    char body[1200];
    if (g_qbo_opts.auth_xml) {
        snprintf(body, sizeof(body),
                 "<Fault type=\"AuthenticationFault\"><Error code=\"100\"><Message>General "
                 "Authentication Error</Message><Detail>AuthenticationErrorGeneral: "
                 "SRV-110-Authentication Failure , statusCode: 401</Detail></Error></Fault>");
        qbo_reply_set(rp, 401, "application/xml", strdup(body));
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
    json_object_object_add(o, "time", json_object_new_int64(clock_wall_ms()));
    json_object_object_add(o, "status", NULL);
    json_object_object_add(o, "cdcresponse", json_object_new_array());
    qbo_reply_set(rp, 401, CT_JSON_ERR, dup_json(o));
    json_object_put(o);
}

void qbo_reply_unsupported(struct reply *rp, const struct realm *r, const char *path)
{
    struct fault f;
    qbo_fault_set(&f, "500", NULL, "Unsupported Operation",
                  "Operation Could not find resource for relative : %s of full path: "
                  "https://sandbox-quickbooks.api.intuit.com%s is not supported.",
                  path, path);
    qbo_reply_fault(rp, r, &f);
}

/* ---- throttling ------------------------------------------------------------------- */

static void ring_resize(struct realm *r)
{
    int cap = g_qbo_opts.per_minute > QBO_RING_MAX ? QBO_RING_MAX : g_qbo_opts.per_minute;
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
    int64_t now = clock_mono_ms();

    if (g_qbo_opts.per_second > 0) {
        if (now - r->sec_start >= 1000) {
            r->sec_start = now;
            r->sec_count = 0;
        }
        if (r->sec_count >= g_qbo_opts.per_second)
            return 0;
    }
    if (g_qbo_opts.per_minute > 0) {
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
    if (g_qbo_opts.per_second > 0)
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
    retry_after = g_qbo_opts.retry_after_s;
    struct realm *r = realm_find(id);
    if (r && g_qbo_opts.concurrent > 0 && r->inflight >= g_qbo_opts.concurrent) {
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

/* ---- the handler ----------------------------------------------------------------- */

static void route(struct route_ctx *c);

static int accept_json(const struct sb_request *req)
{
    const char *accept = sb_req_header(req, "Accept");
    const char *format = sb_req_query(req, "format");
    if (format && strcasecmp(format, "json") == 0)
        return 1;
    if (!g_qbo_opts.require_accept_json)
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
        qbo_reply_unsupported(&rp, NULL, req->path);
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
        qbo_fault_set(&f, "610", "", "Object Not Found", "Object Not Found : company %s", id);
        f.status = 404;
        qbo_reply_fault(&rp, NULL, &f);
        goto out;
    }
    r->n_requests++;
    if (!throttle_admit(r)) {
        r->n_throttled++;
        reply_throttled(&rp, r);
        if (g_qbo_opts.retry_after_s > 0)
            sb_resp_header(resp, "Retry-After", "%d", g_qbo_opts.retry_after_s);
        goto out;
    }
    if (!accept_json(req)) {
        struct fault f;
        qbo_fault_set(&f, "406", NULL, "Not Acceptable",
                      "hsqb-sandbox emulates JSON only; real QuickBooks answers XML unless the "
                      "request sends Accept: application/json");
        f.status = 406;
        qbo_reply_fault(&rp, r, &f);
        goto out;
    }
    if (rid && *rid && qbo_requestid_gate(req, r, rid, &rp))
        goto out;
    struct route_ctx c = {req, r, rest, &rp};
    route(&c);
    qbo_settle(r);
    qbo_reply_finish(r, &rp);
    if (rid && *rid)
        qbo_requestid_store(r, rid, req, &rp);
out:
    pthread_mutex_unlock(&g_lock);
    if (!rp.body)
        qbo_reply_set(&rp, 500, CT_JSON_ERR, strdup("{}"));
    resp_from_reply(resp, &rp);
}

/* ---- reads ------------------------------------------------------------------------ */

static void do_read(struct route_ctx *c, enum kind k, const char *id)
{
    struct fault f;
    struct json_object *e;
    if (!qbo_is_numeric_id(id)) {
        qbo_fault_set(&f, "2030", "Id", "Invalid ID",
                      "Id should be a valid number. Supplied value:%s", id);
        qbo_reply_fault(c->rp, c->r, &f);
        return;
    }
    if (!(e = ent_get(c->r, k, id))) {
        qbo_fault_set(&f, "610", "", "Object Not Found", "%s", qbo_obj_not_found);
        qbo_reply_fault(c->rp, c->r, &f);
        return;
    }
    qbo_reply_entity(c->rp, c->r, qbo_kinds[k].name, e);
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

/* One stored row of a scan, when it matches q: transactions are parsed from their text
 * and only the matching ones kept open, so a query over thousands of documents does not
 * hold a tree of each. */
static struct json_object *scan_row(struct realm *r, enum kind k, const char *id,
                                    struct json_object *stored, const struct qbo_query *q,
                                    const struct qbo_qctx *qc)
{
    struct json_object *t;
    if (!qbo_compact(k) || !qbo_ent_text(r, k, id))
        return ent_get(r, k, id); /* a tree already (filtered by the caller) */
    if (!qbo_query_text_may_match(q, json_object_get_string(stored)))
        return NULL;
    if (!(t = qbo_text_parse(stored)))
        return NULL;
    if (!qbo_query_match(q, qc, t)) {
        json_object_put(t);
        return NULL;
    }
    return qbo_ent_adopt(r, k, id, t);
}

/* Rows that can match: a direct lookup for Id = / IN and name equality, else all (of a
 * transaction kind: all that match). */
static int query_candidates(struct realm *r, enum kind k, const struct qbo_query *q,
                            const struct qbo_qctx *qc, struct json_object ***rows, size_t *n)
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
        if (cd->op == QOP_EQ && strcmp(cd->field, qbo_name_field(k)) == 0) {
            const char *owner = qbo_name_owner(r, k, cd->vals[0].s);
            size_t plen = strlen(qbo_kinds[k].name);
            if (!(v = calloc(1, sizeof(*v))))
                return -1;
            *n = 0;
            if (owner && strncmp(owner, qbo_kinds[k].name, plen) == 0 && owner[plen] == '/') {
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
        struct json_object *row = scan_row(r, k, id, e, q, qc);
        if (row)
            v[(*n)++] = row;
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
    struct qbo_qctx qc = {g_qbo_opts.names_ci, c->r->utc_offset_min};

    if (!text || !*text) {
        qbo_fault_set(&f, "4000", NULL, "Error parsing query", "QueryParserError: query is empty");
        qbo_reply_fault(c->rp, c->r, &f);
        goto out;
    }
    if (g_qbo_opts.lexical_beyond_latin1) {
        /* field reports: characters past U+00FF in a literal (ł ’ “ ” –) are a lexical
         * error of QBO's query parser (README "Evidence (query literals)") */
        for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
            if (*p >= 0xC4 && (*p < 0xF8)) {
                size_t len = *p >= 0xF0 ? 4 : *p >= 0xE0 ? 3 : 2;
                qbo_fault_set(&f, "4000", NULL, "Error parsing query",
                              "QueryParserError: Encountered \" <LEXICAL ERROR> \"%.*s\" at line "
                              "1, column %d.",
                              (int)strnlen((const char *)p, len), (const char *)p,
                              (int)((const char *)p - text) + 1);
                qbo_reply_fault(c->rp, c->r, &f);
                goto out;
            }
        }
    }
    if (qbo_query_parse(text, &q, &qerr) < 0 ||
        !(entity = qbo_query_entity(q, g_qbo_opts.entity_ci, &qerr)) ||
        qbo_query_check(q, entity, &qerr) < 0) {
        qbo_fault_set(&f, qerr.code, NULL, qerr.message, "%s", qerr.detail);
        qbo_reply_fault(c->rp, c->r, &f);
        goto out;
    }
    int k = qbo_kind_by_name(entity);
    if (k >= 0) {
        if (query_candidates(c->r, (enum kind)k, q, &qc, &rows, &n) < 0)
            goto out;
    } else {
        single[0] = strcmp(entity, "CompanyInfo") == 0 ? c->r->company : c->r->prefs;
        rows = single;
        n = 1;
    }
    int hide = k >= 0 && (qbo_kinds[k].flags & KF_NAMELIST) && g_qbo_opts.hide_inactive &&
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
    qbo_fmt_time(c->r, clock_wall_ms(), 1, ts, sizeof(ts));
    json_object_object_add(env, "QueryResponse", qr);
    json_object_object_add(env, "time", json_object_new_string(ts));
    qbo_reply_set(c->rp, 200, CT_JSON, dup_json(env));
    json_object_put(env);
out:
    if (rows != single)
        free(rows);
    qbo_query_free(q);
    free(text);
}

/* GET /exchangerate?sourcecurrencycode=EUR[&asofdate=YYYY-MM-DD]: the company's rate of a
 * foreign currency into its home currency (the seeded `exchange_rates`; one rate for
 * every date here). Not multicurrency, the home currency or an unknown code: 400. */
static void do_exchange_rate(struct route_ctx *c)
{
    const char *code = sb_req_query(c->req, "sourcecurrencycode");
    const char *date = sb_req_query(c->req, "asofdate");
    const char *home = qbo_home_currency(c->r), *rate = NULL;
    struct json_object *e;
    struct qbo_dec d;
    struct fault f;
    char today[48];

    if (code && qbo_multicurrency(c->r) && strcmp(code, home) != 0)
        rate = jstr(c->r->xrates, code);
    if (!rate || !*rate || qbo_dec_parse(rate, &d) < 0) {
        qbo_fault_set(&f, "2010", "sourcecurrencycode", "Invalid Request Parameter",
                      "No exchange rate for currency %.8s into %s", code ? code : "(none)",
                      home);
        qbo_reply_fault(c->rp, c->r, &f);
        return;
    }
    if (!date || strlen(date) != 10) {
        qbo_fmt_time(c->r, clock_wall_ms(), 0, today, sizeof today);
        today[10] = '\0';
        date = today;
    }
    e = json_object_new_object();
    json_object_object_add(e, "SourceCurrencyCode", json_object_new_string(code));
    json_object_object_add(e, "TargetCurrencyCode", json_object_new_string(home));
    json_object_object_add(e, "Rate", qbo_dec_json(d));
    json_object_object_add(e, "AsOfDate", json_object_new_string(date));
    qbo_reply_entity(c->rp, c->r, "ExchangeRate", e);
    json_object_put(e);
}

/* POST /<invoice|estimate|salesreceipt>/<id>/send[?sendTo=a@b]: "emails" the document
 * (Intuit's send endpoint): sendTo replaces BillEmail, EmailStatus becomes EmailSent and
 * DeliveryInfo records the time; every send is in the request log. No address: 400. */
static void do_send(struct route_ctx *c, enum kind k, const char *id)
{
    const char *to = sb_req_query(c->req, "sendTo");
    struct json_object *e = ent_get(c->r, k, id), *bill, *info;
    struct fault f;
    char ts[48];
    long long sync;

    if (!e) {
        qbo_fault_set(&f, "610", "", "Object Not Found", "%s", qbo_obj_not_found);
        qbo_reply_fault(c->rp, c->r, &f);
        return;
    }
    if (to && *to) {
        bill = json_object_new_object();
        json_object_object_add(bill, "Address", json_object_new_string(to));
        json_object_object_add(e, "BillEmail", bill);
    }
    if (!jstr(jobj(e, "BillEmail"), "Address") || !*jstr(jobj(e, "BillEmail"), "Address")) {
        qbo_fault_set(&f, "6000", "BillEmail", "A business validation error has occurred",
                      "Business Validation Error: no email address to send the document to");
        qbo_reply_fault(c->rp, c->r, &f);
        return;
    }
    qbo_fmt_time(c->r, clock_wall_ms(), 0, ts, sizeof ts);
    info = json_object_new_object();
    json_object_object_add(info, "DeliveryType", json_object_new_string("Email"));
    json_object_object_add(info, "DeliveryTime", json_object_new_string(ts));
    json_object_object_add(e, "DeliveryInfo", info);
    json_object_object_add(e, "EmailStatus", json_object_new_string("EmailSent"));
    sync = strtoll(jstr(e, "SyncToken") ? jstr(e, "SyncToken") : "0", NULL, 10) + 1;
    snprintf(ts, sizeof ts, "%lld", sync);
    json_object_object_add(e, "SyncToken", json_object_new_string(ts));
    qbo_reply_entity(c->rp, c->r, qbo_kinds[k].name, e);
}

/* ---- routing ---------------------------------------------------------------------- */

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
            qbo_reply_entity(c->rp, c->r, "CompanyInfo", c->r->company);
        } else {
            struct fault f;
            qbo_fault_set(&f, "610", "", "Object Not Found", "%s", qbo_obj_not_found);
            qbo_reply_fault(c->rp, c->r, &f);
        }
    } else if (n == 11 && strncmp(rest, "preferences", 11) == 0 && !sub && get) {
        qbo_reply_entity(c->rp, c->r, "Preferences", c->r->prefs);
    } else if (n == 12 && strncmp(rest, "exchangerate", 12) == 0 && !sub && get) {
        do_exchange_rate(c);
    } else if ((k = qbo_kind_by_path(rest, n)) >= 0 && !sub && post) {
        qbo_do_write(c, (enum kind)k);
    } else if (k >= 0 && sub && *sub && !strchr(sub, '/') && get) {
        do_read(c, (enum kind)k, sub);
    } else if ((k == K_INVOICE || k == K_ESTIMATE || k == K_SALESRECEIPT) && sub && post &&
               strlen(sub) > 5 && strcmp(sub + strlen(sub) - 5, "/send") == 0) {
        char id[32];
        snprintf(id, sizeof id, "%.*s", (int)(strlen(sub) - 5), sub);
        do_send(c, (enum kind)k, id);
    } else {
        qbo_reply_unsupported(c->rp, c->r, c->req->path);
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
    qbo_fmt_time(r, clock_wall_ms(), 0, ts, sizeof(ts));
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
    r->ast_rates = json_object_new_object();
    r->xrates = json_object_new_object();
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
    qbo_store_free(r);
    json_object_put(r->reqids);
    json_object_put(r->ast_rates);
    json_object_put(r->xrates);
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
    struct qbo_opts keep = g_qbo_opts;
    g_qbo_opts = default_opts;
    g_qbo_opts.per_minute = keep.per_minute;
    g_qbo_opts.concurrent = keep.concurrent;
    g_qbo_opts.retention_s = keep.retention_s;
    pthread_mutex_unlock(&g_lock);
}

void qbo_set_limits(int per_minute, int concurrent, int requestid_retention_s)
{
    pthread_mutex_lock(&g_lock);
    if (per_minute >= 0)
        g_qbo_opts.per_minute = per_minute;
    if (concurrent >= 0)
        g_qbo_opts.concurrent = concurrent;
    if (requestid_retention_s >= 0)
        g_qbo_opts.retention_s = requestid_retention_s;
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
static const char *const seeded_one[] = {"seeded", "one", NULL};

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
    OPT_BOOL("query_lexical_error_beyond_latin1", lexical_beyond_latin1),
    OPT_BOOL("strict_fields", strict_fields),
    OPT_BOOL("require_accept_json", require_accept_json),
    OPT_BOOL("hide_inactive", hide_inactive),
    OPT_INT("docnum_max_len", docnum_max_len, 0, 1000),
    OPT_BOOL("ast_bill_addr_fallback", ast_bill_addr),
    OPT_ENUM("exchange_rate_default", xrate_one, seeded_one),
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
                qbo_index_add(r, (enum kind)k, ent_get(r, (enum kind)k, id));
                (void)e;
            }
            qbo_settle(r); /* one kind's trees at a time */
        }
    }
}

int qbo_configure(struct json_object *opts, char *errstr, size_t errsz)
{
    int rc;
    pthread_mutex_lock(&g_lock);
    struct qbo_opts o = g_qbo_opts;
    if ((rc = apply_opts(&o, opts, errstr, errsz)) == 0) {
        int refold = o.names_ci != g_qbo_opts.names_ci;
        g_qbo_opts = o;
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
        int v = *(const int *)((const char *)&g_qbo_opts + d->off);
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

/* A sandbox-only rate table (ast_rates, exchange_rates) merged into dst: keys of at most
 * 7 characters accepted by key_ok, values decimal strings or numbers in (min, max]
 * (min itself too when min_ok), stored as their exact decimal text. */
static int seed_rates(struct json_object *rj, const char *name, struct json_object *dst,
                      int (*key_ok)(const char *), struct qbo_dec min, int min_ok,
                      struct qbo_dec max, char *errstr, size_t errsz)
{
    struct json_object *tbl;
    struct qbo_dec d;

    if (!json_object_object_get_ex(rj, name, &tbl))
        return 0;
    if (!json_object_is_type(tbl, json_type_object)) {
        snprintf(errstr, errsz, "qbo realm: %s must be an object", name);
        return -1;
    }
    json_object_object_foreach(tbl, key, val)
    {
        int c;
        if (strlen(key) > 7 || !key_ok(key) || json_object_is_type(val, json_type_boolean) ||
            qbo_dec_from_json(val, &d) < 0 || (c = qbo_dec_cmp(d, min)) < 0 ||
            (c == 0 && !min_ok) || qbo_dec_cmp(d, max) > 0) {
            snprintf(errstr, errsz, "qbo realm: %s.%.20s: a decimal in range expected", name, key);
            return -1;
        }
        struct json_object *num = qbo_dec_json(d);
        json_object_object_add(dst, key, json_object_new_string(json_object_to_json_string(num)));
        json_object_put(num);
    }
    return 0;
}

/* "CA", "NY", ... (1-7 capital letters) or "*". */
static int state_key(const char *k)
{
    if (strcmp(k, "*") == 0)
        return 1;
    for (const char *p = k; *p; p++)
        if (*p < 'A' || *p > 'Z')
            return 0;
    return *k != 0;
}

/* ISO 4217: three capital letters. */
static int currency_key(const char *k)
{
    return strlen(k) == 3 && state_key(k);
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
    if (seed_rates(rj, "ast_rates", r->ast_rates, state_key, (struct qbo_dec){0, 0}, 1,
                   (struct qbo_dec){100, 0}, errstr, errsz) < 0 ||
        seed_rates(rj, "exchange_rates", r->xrates, currency_key, (struct qbo_dec){0, 0}, 0,
                   (struct qbo_dec){1000000, 0}, errstr, errsz) < 0)
        return -1;
    if (json_object_object_get_ex(rj, "next_doc_number", &v) &&
        json_object_is_type(v, json_type_int))
        for (int k = 0; k < K_NKINDS; k++)
            r->next_doc[k] = json_object_get_int64(v);
    for (int k = 0; k < K_NKINDS; k++) {
        if (!json_object_object_get_ex(rj, qbo_kinds[k].name, &arr))
            continue;
        if (!json_object_is_type(arr, json_type_array)) {
            snprintf(errstr, errsz, "qbo realm %s: %s must be an array", id, qbo_kinds[k].name);
            return -1;
        }
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
            struct json_object *e = json_object_array_get_idx(arr, i), *old;
            const char *eid = jstr(e, "Id");
            if (!json_object_is_type(e, json_type_object)) {
                snprintf(errstr, errsz, "qbo realm %s: %s[%zu] must be an object", id,
                         qbo_kinds[k].name, i);
                return -1;
            }
            if ((old = ent_get(r, (enum kind)k, eid))) { /* same id: replaced */
                if (k == K_PAYMENT)
                    qbo_apply_payment(r, eid, old, NULL);
                qbo_index_del(r, (enum kind)k, old);
                qbo_ent_del(r, (enum kind)k, eid);
            }
            if (qbo_entity_write(r, (enum kind)k, e, NULL, 0, 1, 0, &ent, &f) < 0) {
                snprintf(errstr, errsz, "qbo realm %s: %s[%zu]: %s %s: %s", id, qbo_kinds[k].name,
                         i, f.code, f.message, f.detail);
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
        for (int i = 0; i < g_nrealms; i++)
            qbo_settle(g_realms[i]);
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
    cp = NULL;
    json_object_deep_copy(r->ast_rates, &cp, NULL);
    json_object_object_add(o, "ast_rates", cp);
    cp = NULL;
    json_object_deep_copy(r->xrates, &cp, NULL);
    json_object_object_add(o, "exchange_rates", cp);
    for (int k = 0; k < K_NKINDS; k++) {
        size_t n = 0, cap = (size_t)json_object_object_length(r->ents[k]);
        struct json_object **v = calloc(cap + 1, sizeof(*v)), *arr = json_object_new_array();
        json_object_object_foreach(r->ents[k], id, e)
        {
            (void)id;
            cp = NULL;
            if (qbo_compact((enum kind)k)) /* settled: parse a copy of the text */
                cp = qbo_text_parse(e);
            else
                json_object_deep_copy(e, &cp, NULL);
            if (v && cp)
                v[n++] = cp;
            else
                json_object_put(cp);
        }
        if (v)
            qsort(v, n, sizeof(*v), id_cmp);
        for (size_t i = 0; i < n; i++)
            json_object_array_add(arr, v[i]);
        free(v);
        json_object_object_add(o, qbo_kinds[k].name, arr);
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

struct json_object *qbo_companies(void)
{
    struct json_object *out = json_object_new_array();
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < g_nrealms; i++) {
        struct json_object *c = json_object_new_object();
        const char *name = jstr(g_realms[i]->company, "CompanyName");
        const char *country = jstr(g_realms[i]->company, "Country");
        json_object_object_add(c, "realmId", json_object_new_string(g_realms[i]->id));
        json_object_object_add(c, "CompanyName", json_object_new_string(name ? name : ""));
        json_object_object_add(c, "Country", json_object_new_string(country ? country : ""));
        json_object_array_add(out, c);
    }
    pthread_mutex_unlock(&g_lock);
    return out;
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
