/* qbo.c - the QuickBooks Online Accounting API client (see qbo.h for the contract): the
 * client's lifecycle, fault parsing, the exchange, queries and the entity calls. What a
 * company is (CompanyInfo, Preferences, exchange rates and their caches) is
 * qbo_company.c's; the two share only what qbo_internal.h declares.
 *
 * One function, qbo_exchange() (qbo_internal.h), does what every call shares: URL with
 * minorversion (and requestid), bearer token from oauth, a rate limiter slot around the
 * exchange, the 401 cycle (below), the 429 tenant penalty, and the classification of
 * every other failure. The public calls only build the path and unwrap the response envelope
 * ({"Invoice":{…},"time":…}, {"QueryResponse":{"Customer":[…]}}). qbo_create_doc() has
 * qbo_exchange() parse into a tape (common/jtape.h) instead of a json-c tree: the actions
 * read three members of a 2-4 KB echoed document, and a tree of it (an allocation per
 * value, a hash table per object) cost ~5 % of the worker's CPU per event.
 *
 * The 401 cycle. The URL is reused verbatim, so every resend of a create carries the
 * same requestid and QBO replays instead of creating twice.
 *   send(T1) -401-> oauth_invalidate(T1) + oauth_get_access() -> T2   (a refresh, or the
 *                   newer token another replica already stored: then nothing is refreshed)
 *   send(T2) -401-> oauth_invalidate(T2) + oauth_get_access() -> T3   (now a real refresh,
 *                   single-flight across replicas, unless someone stored a newer one)
 *   send(T3) -401-> API_TRANSIENT, retried by the pipeline
 * Only the token endpoint's invalid_grant (from oauth_get_access) means the company must
 * be reconnected (QBO_REAUTH_REQUIRED): a rejected access token never does, because the
 * refresh token that produced it still works.
 *
 * Faults are parsed defensively because QBO answers in three shapes:
 * JSON {"Fault":{"Error":[…]}}, the lower-case 401 {"fault":{"error":[…]}}, and XML
 * (<Fault type=…><Error code=…>) for throttling even to JSON clients. The HTTP status
 * decides the class; the fault only refines it (code, message, ThrottleExceeded).
 */
#include "worker/qbo.h"
#include "worker/qbo_internal.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/jtape.h"
#include "common/log.h"
#include "common/money.h"

#define QBO_QUERY_GET_MAX  2000 /* longer encoded statements go by POST */
#define QBO_FAULT_TEXT_MAX 200  /* bytes of Message / Detail quoted in a message */

/* The resources the client knows: URL segment and response envelope key. */
static const struct {
    const char *path, *name;
} resources[] = {
    {"account", "Account"},
    {"companyinfo", "CompanyInfo"},
    {"creditmemo", "CreditMemo"},
    {"customer", "Customer"},
    {"employee", "Employee"},
    {"estimate", "Estimate"},
    {"invoice", "Invoice"},
    {"item", "Item"},
    {"payment", "Payment"},
    {"paymentmethod", "PaymentMethod"},
    {"preferences", "Preferences"},
    {"purchase", "Purchase"},
    {"refundreceipt", "RefundReceipt"},
    {"salesreceipt", "SalesReceipt"},
    {"taxcode", "TaxCode"},
    {"term", "Term"},
    {"vendor", "Vendor"},
};

static int resource_find(const char *entity)
{
    if (!entity)
        return -1;
    for (size_t i = 0; i < sizeof resources / sizeof resources[0]; i++)
        if (strcasecmp(entity, resources[i].path) == 0)
            return (int)i;
    return -1;
}

/* ---- lifecycle ------------------------------------------------------------------- */

struct qbo_api *qbo_api_new(const struct config *cfg, struct oauth *oauth, struct ratelimit *rl,
                            const struct qbo_hooks *hooks, char *errstr, size_t errsz)
{
    struct qbo_api *q;
    const char *base = config_get_str(cfg, "qbo.base_url");
    size_t n = strlen(base);

    if (!oauth) {
        snprintf(errstr, errsz, "qbo: an oauth instance is required");
        return NULL;
    }
    if (!(q = calloc(1, sizeof *q)) || !(q->base = strdup(base))) {
        free(q);
        snprintf(errstr, errsz, "qbo: out of memory");
        return NULL;
    }
    while (n > 0 && q->base[n - 1] == '/')
        q->base[--n] = 0;
    q->minorversion = (int)config_get_int(cfg, "qbo.minorversion");
    q->timeout_ms = config_get_ms(cfg, "http.timeout");
    q->max_response = (size_t)config_get_bytes(cfg, "http.max_response_bytes");
    q->oauth = oauth;
    q->rl = rl;
    if (hooks)
        q->hooks = *hooks;
    pthread_mutex_init(&q->mu, NULL);
    return q;
}

void qbo_api_free(struct qbo_api *q)
{
    if (!q)
        return;
    pthread_mutex_destroy(&q->mu);
    free(q->companies);
    free(q->base);
    free(q);
}

/* ---- faults ---------------------------------------------------------------------- */

struct fault {
    char type[48];
    char code[16];
    char message[QBO_FAULT_TEXT_MAX];
    char detail[QBO_FAULT_TEXT_MAX];
};

void qbo_copy_text(char *dst, size_t dstsz, const char *src, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < dstsz; i++) {
        unsigned char ch = (unsigned char)src[i];
        dst[k++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
    }
    dst[k] = 0;
}

static void jcopy(struct json_object *o, const char *k1, const char *k2, char *dst, size_t dstsz)
{
    const char *s;
    if (json_get_str(o, k1, &s) == JGET_OK || json_get_str(o, k2, &s) == JGET_OK)
        qbo_copy_text(dst, dstsz, s, strlen(s));
}

static void parse_json_fault(const char *body, size_t len, struct fault *f)
{
    char e[128];
    struct json_object *doc = json_parse_strict(body, len, QBO_JSON_DEPTH, e, sizeof e);
    struct json_object *fo, *errs;

    if (!doc)
        return;
    if (json_get_obj(doc, "Fault", &fo) == JGET_OK || json_get_obj(doc, "fault", &fo) == JGET_OK) {
        jcopy(fo, "type", "Type", f->type, sizeof f->type);
        if ((json_get_array(fo, "Error", &errs) == JGET_OK ||
             json_get_array(fo, "error", &errs) == JGET_OK) &&
            json_object_array_length(errs) > 0) {
            struct json_object *e0 = json_object_array_get_idx(errs, 0);
            jcopy(e0, "code", "Code", f->code, sizeof f->code);
            jcopy(e0, "Message", "message", f->message, sizeof f->message);
            jcopy(e0, "Detail", "detail", f->detail, sizeof f->detail);
        }
    }
    json_object_put(doc);
}

/* Text between `open` and the next '<' (an element's text) or the next '"' after an
 * attribute's opening quote; "" when absent. */
static void xml_text(const char *body, size_t len, const char *open, char end, char *dst,
                     size_t dstsz)
{
    const char *p = memmem(body, len, open, strlen(open)), *q;
    dst[0] = 0;
    if (!p)
        return;
    p += strlen(open);
    q = memchr(p, end, (size_t)(body + len - p));
    if (q)
        qbo_copy_text(dst, dstsz, p, (size_t)(q - p));
}

static void parse_xml_fault(const char *body, size_t len, struct fault *f)
{
    xml_text(body, len, "<Fault type=\"", '"', f->type, sizeof f->type);
    xml_text(body, len, "<Error code=\"", '"', f->code, sizeof f->code);
    xml_text(body, len, "<Message>", '<', f->message, sizeof f->message);
    xml_text(body, len, "<Detail>", '<', f->detail, sizeof f->detail);
}

void qbo_error_from_response(int status, const char *content_type, const char *body, size_t len,
                             const char *intuit_tid, struct api_error *err)
{
    struct fault f = {0};
    size_t i = 0;
    int throttled;
    enum api_class cls;
    enum hsqb_error code;

    (void)content_type; /* QBO mislabels bodies; the first byte tells */
    api_error_clear(err);
    while (body && i < len && isspace((unsigned char)body[i]))
        i++;
    if (body && i < len && body[i] == '{')
        parse_json_fault(body, len, &f);
    else if (body && i < len && body[i] == '<')
        parse_xml_fault(body, len, &f);
    throttled = strcmp(f.code, "3001") == 0 || strstr(f.message, "ThrottleExceeded") ||
                strstr(f.detail, "ThrottleExceeded");

    if (status == 429 || (throttled && (status == 400 || status == 403))) {
        cls = API_THROTTLED;
        code = HSQB_ERR_RETRIES_EXHAUSTED;
    } else if (status == 401 || status >= 500) {
        /* 5xx: transient by definition. 401: a rejected access token; the refresh token
         * may well work (only invalid_grant from the token endpoint says it does not),
         * so this is retried too. */
        cls = API_TRANSIENT;
        code = HSQB_ERR_RETRIES_EXHAUSTED;
    } else if (status == 403) {
        cls = API_AUTH;
        code = HSQB_ERR_QBO_REAUTH_REQUIRED;
    } else if (status == 404) {
        cls = API_NOT_FOUND;
        code = HSQB_ERR_QBO_VALIDATION;
    } else {
        cls = API_PERMANENT;
        code = HSQB_ERR_QBO_VALIDATION;
    }
    if (status == 401) /* the Detail echoes the rejected token */
        f.detail[0] = 0;
    api_error_set(err, cls, code, status, "QBO %d%s%s%s%s%s%s%s%s", status, f.type[0] ? " " : "",
                  f.type, f.code[0] ? " " : "", f.code, f.message[0] ? ": " : "", f.message,
                  f.detail[0] ? ": " : "", f.detail);
    err->source = API_SOURCE_QBO;
    snprintf(err->qbo_fault_code, sizeof err->qbo_fault_code, "%s", f.code);
    if (intuit_tid)
        qbo_copy_text(err->upstream_id, sizeof err->upstream_id, intuit_tid, strlen(intuit_tid));
}

/* ---- the exchange ------------------------------------------------------------------- */

static void transport_error(enum http_error he, const char *e, struct api_error *err)
{
    if (he == HTTP_ETOOBIG) /* an answer QBO should not give: refused like HubSpot's */
        api_error_set(err, API_PERMANENT, HSQB_ERR_QBO_VALIDATION, 0,
                      "QBO response larger than http.max_response_bytes: %s", e);
    else
        api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 0, "QBO %s: %s",
                      http_error_str(he), e);
}

/* Sends of one request: the first, the resend with a reloaded token, and the resend
 * after a forced refresh (the 401 cycle in the file comment). */
#define QBO_AUTH_SENDS 3

/* A 2xx body: 0 when it is a JSON object, into c->tape or *out_doc; JTAPE_ETOOMANY when
 * it holds more values than the parser's cap (e filled); else -1. */
static int parse_answer(const struct qbo_call *c, const struct http_response *resp,
                        struct json_object **out_doc, char *e, size_t esz)
{
    struct jtape local = {0}, *t = c->tape ? c->tape : &local;
    struct json_object *doc = NULL;
    int rc = jtape_parse(t, resp->body, resp->body_len, QBO_JSON_DEPTH, e, esz);

    if (rc < 0)
        return rc;
    if (t->n[JTAPE_ROOT].type != JT_OBJECT) {
        jtape_release(t);
        return -1;
    }
    if (c->tape)
        return 0;
    doc = json_from_tape(t, QBO_JSON_DEPTH, e, esz);
    jtape_release(t);
    if (!doc)
        return -1;
    *out_doc = doc;
    return 0;
}

/* One request with the 401 cycle (qbo_internal.h). */
int qbo_exchange(const struct ioctx *io, struct qbo_api *q, const char *realm,
                 const struct qbo_call *c, struct json_object **out_doc, struct api_error *err)
{
    struct redis_conn *redis = io->redis;
    struct http_param params[8];
    char mv[16], base[HTTP_MAX_URL], e[256];
    char *url = NULL, *tok = NULL;
    struct http_response resp;
    int rc = -1;

    http_response_init(&resp);
    api_error_clear(err);
    if (!oauth_realm_valid(realm) || c->nparams > 6) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "qbo: bad realm id");
        goto out;
    }
    if (!(url = malloc(HTTP_MAX_URL + 1)) || !(tok = malloc(OAUTH_TOKEN_MAX))) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 0, "qbo: out of memory");
        goto out;
    }
    snprintf(mv, sizeof mv, "%d", q->minorversion);
    params[0] = (struct http_param){"minorversion", mv};
    for (size_t i = 0; i < c->nparams; i++)
        params[i + 1] = c->params[i];
    if ((size_t)snprintf(base, sizeof base, "%s/v3/company/%s/%s", q->base, realm, c->path) >=
            sizeof base ||
        http_url_build(url, HTTP_MAX_URL + 1, base, params, c->nparams + 1, e, sizeof e) < 0) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "qbo: URL too long");
        goto out;
    }

    for (int attempt = 0;; attempt++) {
        struct http_header hdrs[1] = {{"Accept", "application/json"}};
        struct http_request req = {.method = c->method,
                                   .url = url,
                                   .headers = hdrs,
                                   .nheaders = 1,
                                   .body = c->body,
                                   .body_len = c->body_len,
                                   .content_type = c->content_type,
                                   .bearer = tok,
                                   .timeout_ms = 0};
        struct ratelimit_slot slot = {0};
        enum http_error he;

        if (oauth_get_access(io, q->oauth, realm, tok, OAUTH_TOKEN_MAX, err) < 0)
            goto out;
        if (q->rl) {
            enum ratelimit_status st = ratelimit_acquire(
                q->rl, redis,
                &(struct ratelimit_req){RL_QBO, realm, clock_mono_ms() + q->timeout_ms},
                &slot, e, sizeof e);
            if (slot.waited_ms > 0 && q->hooks.ratelimit_wait)
                q->hooks.ratelimit_wait(q->hooks.opaque, "qbo", slot.waited_ms);
            if (st == RL_TIMEOUT) {
                api_error_set(err, API_THROTTLED, HSQB_ERR_RETRIES_EXHAUSTED, 0,
                              "QBO rate limit of realm %s: no slot within %lld ms", realm,
                              (long long)q->timeout_ms);
                err->retry_after_ms = slot.retry_after_ms;
                goto out;
            }
            if (st != RL_OK) {
                api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 0,
                              "QBO rate limiter: %s", e);
                goto out;
            }
        }
        he = http_client_do(io->http, &req, &resp, e, sizeof e);
        if (q->rl)
            ratelimit_release(q->rl, redis, &slot);
        if (q->hooks.api_call)
            q->hooks.api_call(q->hooks.opaque, "qbo", c->endpoint,
                              he == HTTP_OK ? (int)resp.status : 0, resp.total_ms);
        if (he != HTTP_OK) {
            transport_error(he, e, err);
            goto out;
        }
        if (resp.status == 401 && attempt + 1 < QBO_AUTH_SENDS) {
            /* Invalidating the rejected token makes the next oauth_get_access() refresh,
             * unless another thread or replica already stored a newer token (then that
             * one is used as is). The second time, the reloaded token was rejected as
             * well, so this forces a real refresh. */
            if (attempt == 0)
                log_info("qbo: 401 from realm %s; reloading the access token", realm);
            else
                log_warn("qbo: 401 from realm %s again with a reloaded access token; forcing "
                         "a token refresh",
                         realm);
            if (oauth_invalidate(io, q->oauth, realm, tok, err) < 0)
                goto out;
            continue;
        }
        break;
    }

    if (resp.body_len > q->max_response) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_QBO_VALIDATION, (int)resp.status,
                      "QBO response larger than http.max_response_bytes");
        goto out;
    }
    if (resp.status >= 200 && resp.status < 300) {
        int prc = parse_answer(c, &resp, out_doc, e, sizeof e);
        if (prc == JTAPE_ETOOMANY) { /* refused like an oversized answer */
            api_error_set(err, API_PERMANENT, HSQB_ERR_QBO_VALIDATION, (int)resp.status,
                          "QBO answer refused: %s (http.max_response_bytes / %d)", e,
                          JTAPE_BYTES_PER_VALUE);
            goto tid;
        }
        if (prc < 0) {
            api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, (int)resp.status,
                          "QBO answered %ld with a body that is not a JSON object", resp.status);
            goto tid;
        }
        rc = 0;
        goto out;
    }
    qbo_error_from_response((int)resp.status, http_response_header(&resp, "Content-Type"),
                            resp.body, resp.body_len, http_response_header(&resp, "intuit_tid"),
                            err);
    if (resp.status == 401) {
        char why[API_MSG_MAX];
        memcpy(why, err->message, sizeof why);
        api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 401,
                      "QBO rejected the access token twice after refreshing it (the refresh "
                      "token still works: retry later, no reconnect needed): %s",
                      why);
    }
    if (err->cls == API_THROTTLED) {
        int64_t ms = resp.retry_after_ms > 0 ? resp.retry_after_ms : QBO_THROTTLE_DEFAULT_MS;
        err->retry_after_ms = ms;
        if (q->rl && ratelimit_penalize(q->rl, redis, RL_QBO, realm, ms, e, sizeof e) < 0)
            log_warn("qbo: could not back off realm %s in Redis: %s", realm, e);
    }
    goto out;
tid:
    if (http_response_header(&resp, "intuit_tid"))
        snprintf(err->upstream_id, sizeof err->upstream_id, "%s",
                 http_response_header(&resp, "intuit_tid"));
out:
    if (tok) {
        explicit_bzero(tok, OAUTH_TOKEN_MAX);
        free(tok);
    }
    free(url);
    http_response_release(&resp);
    return rc;
}

static int lacks_object(const char *key, struct api_error *err)
{
    api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 200,
                  "QBO answer lacks the %s object", key);
    return -1;
}

/* The object under key in doc, as a new reference (out may be NULL: only checked); -1
 * with a transient err if absent. */
static int unwrap(struct json_object *doc, const char *key, struct json_object **out,
                  struct api_error *err)
{
    struct json_object *o;
    if (json_get_obj(doc, key, &o) != JGET_OK)
        return lacks_object(key, err);
    if (out)
        *out = json_object_get(o);
    return 0;
}

/* ---- queries ------------------------------------------------------------------------ */

int qbo_sql_quote(const char *s, char *dst, size_t dstsz)
{
    size_t k = 0;
    if (dstsz < 3)
        goto small;
    dst[k++] = '\'';
    for (; *s; s++) {
        if (*s == '\'' || *s == '\\') {
            if (k + 1 >= dstsz)
                goto small;
            dst[k++] = '\\';
        }
        if (k + 1 >= dstsz)
            goto small;
        dst[k++] = *s;
    }
    if (k + 2 > dstsz)
        goto small;
    dst[k++] = '\'';
    dst[k] = 0;
    return (int)k;
small:
    if (dstsz)
        dst[0] = 0;
    return -1;
}

static int query(const struct ioctx *io, struct qbo_api *q, const char *realm, const char *sql,
                 struct json_object **out_rows, struct api_error *err)
{
    struct http_param p = {"query", sql};
    struct qbo_call c = {.method = HTTP_GET,
                     .path = "query",
                     .endpoint = "GET /v3/company/{realm}/query",
                     .params = &p,
                     .nparams = 1};
    struct json_object *doc = NULL, *qr, *rows = NULL;
    size_t n;

    api_error_clear(err);
    if (!sql || !*sql || (n = strlen(sql)) > QBO_SQL_MAX) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0,
                      "qbo: query statement empty or longer than %d bytes", QBO_SQL_MAX);
        return -1;
    }
    if (http_url_escape(NULL, 0, sql, n) > QBO_QUERY_GET_MAX) {
        /* Long statements: the SDKs' POST form (a long GET URL is refused). */
        c.method = HTTP_POST;
        c.endpoint = "POST /v3/company/{realm}/query";
        c.nparams = 0;
        c.body = sql;
        c.body_len = n;
        c.content_type = "application/text";
    }
    if (qbo_exchange(io, q, realm, &c, &doc, err) < 0)
        return -1;
    if (json_get_obj(doc, "QueryResponse", &qr) != JGET_OK) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 200,
                      "QBO query answer lacks QueryResponse");
        json_object_put(doc);
        return -1;
    }
    json_object_object_foreach(qr, k, v)
    {
        (void)k;
        if (json_object_is_type(v, json_type_array)) {
            rows = json_object_get(v);
            break;
        }
    }
    json_object_put(doc);
    *out_rows = rows ? rows : json_object_new_array();
    return 0;
}

int qbo_query(const struct ioctx *io, struct qbo_api *q, const char *realm, const char *sql,
              struct json_object **out_rows, struct api_error *err)
{
    return api_error_tag(err, API_SOURCE_QBO, query(io, q, realm, sql, out_rows, err));
}

static int query_all(const struct ioctx *io, struct qbo_api *q, const char *realm, const char *sql,
                     struct qbo_paging *pg, struct json_object **out_rows, struct api_error *err)
{
    struct json_object *acc;
    char *stmt;
    size_t start = 1, n = sql ? strlen(sql) : 0, page_size = pg->page_size, max_rows = pg->max_rows;
    int truncated = 0;

    api_error_clear(err);
    if (page_size == 0)
        page_size = QBO_PAGE_MAX;
    if (!n || page_size > QBO_PAGE_MAX || max_rows == 0 || n + 64 > QBO_SQL_MAX) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "qbo: bad paged query");
        return -1;
    }
    if (!(stmt = malloc(n + 64)) || !(acc = json_object_new_array())) {
        free(stmt);
        api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 0, "qbo: out of memory");
        return -1;
    }
    for (;;) {
        struct json_object *rows;
        size_t got;
        snprintf(stmt, n + 64, "%s STARTPOSITION %zu MAXRESULTS %zu", sql, start, page_size);
        if (query(io, q, realm, stmt, &rows, err) < 0) {
            json_object_put(acc);
            free(stmt);
            return -1;
        }
        got = json_object_array_length(rows);
        for (size_t i = 0; i < got; i++) {
            if (json_object_array_length(acc) == max_rows) {
                truncated = 1;
                break;
            }
            json_object_array_add(acc, json_object_get(json_object_array_get_idx(rows, i)));
        }
        json_object_put(rows);
        if (got < page_size || truncated)
            break;
        if (json_object_array_length(acc) == max_rows) {
            truncated = 1; /* a full last page: rows may be left */
            break;
        }
        start += page_size;
    }
    free(stmt);
    pg->more = truncated;
    *out_rows = acc;
    return 0;
}

int qbo_query_all(const struct ioctx *io, struct qbo_api *q, const char *realm, const char *sql,
                  struct qbo_paging *pg, struct json_object **out_rows, struct api_error *err)
{
    return api_error_tag(err, API_SOURCE_QBO, query_all(io, q, realm, sql, pg, out_rows, err));
}

/* ---- entities ----------------------------------------------------------------------- */

/* Where write_entity() leaves the entity of the answer: as a new reference in *obj (obj
 * may be NULL: only checked), or, when tape is set (zeroed), as node `at` of *tape, which
 * the caller releases after a 0 (no json-c tree is built then). */
struct entity_answer {
    struct json_object **obj;
    struct jtape *tape;
    size_t at;
};

/* POST a create or update (operation "update", or NULL) and unwrap the entity into *ans.
 * Returns the entity's index in resources[], or -1 with *err. */
static int write_entity(const struct ioctx *io, struct qbo_api *q, const struct qbo_req *w,
                        const char *operation, struct entity_answer *ans, struct api_error *err)
{
    struct http_param p[2];
    char endpoint[96];
    struct qbo_call c = {
        .method = HTTP_POST, .params = p, .content_type = "application/json", .tape = ans->tape};
    struct json_object *doc = NULL;
    const char *body = w->body, *requestid = w->requestid;
    size_t body_len = w->body_len;
    int r = resource_find(w->entity), rc;
    size_t np = 0;

    api_error_clear(err);
    if (r < 0) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "qbo: unknown entity %.40s",
                      w->entity ? w->entity : "(null)");
        return -1;
    }
    if (ioctx_claim_lost(io)) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 0,
                      "the event's claim was lost before writing the %s", resources[r].name);
        return -1;
    }
    if (!body || body_len > QBO_BODY_MAX) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0,
                      "qbo: %s body missing or larger than %u bytes", resources[r].name,
                      QBO_BODY_MAX);
        return -1;
    }
    if (requestid && (!*requestid || strlen(requestid) > QBO_REQUESTID_MAX)) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0,
                      "qbo: requestid must be 1..%d characters", QBO_REQUESTID_MAX);
        return -1;
    }
    if (operation)
        p[np++] = (struct http_param){"operation", operation};
    if (requestid)
        p[np++] = (struct http_param){"requestid", requestid};
    c.nparams = np;
    c.path = resources[r].path;
    snprintf(endpoint, sizeof endpoint, "POST /v3/company/{realm}/%s%s", resources[r].path,
             operation ? "?operation=update" : "");
    c.endpoint = endpoint;
    c.body = body;
    c.body_len = body_len;
    if (qbo_exchange(io, q, w->realm, &c, &doc, err) < 0)
        return -1;
    if (ans->tape) {
        if (jtape_get_obj(ans->tape, JTAPE_ROOT, resources[r].name, &ans->at) == JGET_OK)
            return r;
        jtape_release(ans->tape);
        return lacks_object(resources[r].name, err);
    }
    rc = unwrap(doc, resources[r].name, ans->obj, err);
    json_object_put(doc);
    return rc < 0 ? -1 : r;
}

int qbo_create(const struct ioctx *io, struct qbo_api *q, const struct qbo_req *w,
               struct json_object **out_entity, struct api_error *err)
{
    struct entity_answer ans = {.obj = out_entity};
    int r = write_entity(io, q, w, NULL, &ans, err);
    return api_error_tag(err, API_SOURCE_QBO, r < 0 ? -1 : 0);
}

int qbo_update(const struct ioctx *io, struct qbo_api *q, const struct qbo_req *w,
               struct json_object **out_entity, struct api_error *err)
{
    struct entity_answer ans = {.obj = out_entity};
    int r = write_entity(io, q, w, "update", &ans, err);
    return api_error_tag(err, API_SOURCE_QBO, r < 0 ? -1 : 0);
}

/* The member rules of struct qbo_created (qbo.h), shared by both readers: each value is
 * the member's text, NULL when absent or not a string. */
/* A money literal (the JSON number's own text: never through a double) into cents. */
static int money_text(const char *s, size_t len, int64_t *cents)
{
    return s && money_parsen(s, len, MONEY_ROUND_HALF_UP, cents, NULL, 0) == MONEY_OK;
}

static int money_of_tape(const struct jtape *t, size_t obj, const char *key, int64_t *cents)
{
    size_t i = jtape_member(t, obj, key);
    return i && t->n[i].type == JT_NUMBER &&
           money_text(t->arena + t->n[i].str, t->n[i].count, cents);
}

static int money_of_json(struct json_object *obj, const char *key, int64_t *cents)
{
    struct json_object *v;
    const char *s;
    if (!json_object_object_get_ex(obj, key, &v) ||
        (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)))
        return 0;
    s = json_object_get_string(v); /* json-c keeps a parsed number's own text */
    return s && money_text(s, strlen(s), cents);
}

int qbo_error_no_id(struct api_error *err, const char *article, const char *entity)
{
    api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 200,
                  "QuickBooks returned %s %s without an Id", article, entity);
    return api_error_tag(err, API_SOURCE_QBO, -1);
}

static int created_fill(const char *name, const char *id, const char *doc_number,
                        const char *currency, struct qbo_created *out, struct api_error *err)
{
    struct qbo_created c = {{0}};

    if (!id || !*id || strlen(id) >= sizeof c.id)
        return qbo_error_no_id(err, "a", name);
    memcpy(c.id, id, strlen(id));
    if (doc_number && strlen(doc_number) < sizeof c.doc_number)
        memcpy(c.doc_number, doc_number, strlen(doc_number));
    if (currency && strlen(currency) == 3)
        memcpy(c.currency, currency, 3);
    *out = c;
    return 0;
}

int qbo_created_from_json(struct json_object *obj, const char *entity, struct qbo_created *out,
                          struct api_error *err)
{
    const char *id = NULL, *doc_number = NULL, *currency = NULL, *name = entity;
    struct json_object *cur;
    int r = resource_find(entity);

    if (r >= 0)
        name = resources[r].name;
    (void)json_get_str(obj, "Id", &id);
    (void)json_get_str(obj, "DocNumber", &doc_number);
    if (json_get_obj(obj, "CurrencyRef", &cur) == JGET_OK)
        (void)json_get_str(cur, "value", &currency);
    if (created_fill(name ? name : "document", id, doc_number, currency, out, err) < 0)
        return api_error_tag(err, API_SOURCE_QBO, -1);
    out->has_total = money_of_json(obj, "TotalAmt", &out->total_cents);
    out->has_balance = money_of_json(obj, "Balance", &out->balance_cents);
    {
        const char *es = NULL;
        out->email_sent = json_get_str(obj, "EmailStatus", &es) == JGET_OK && es &&
                          strcmp(es, "EmailSent") == 0;
    }
    return 0;
}

int qbo_create_doc(const struct ioctx *io, struct qbo_api *q, const struct qbo_req *w,
                   struct qbo_created *out, struct api_error *err)
{
    const char *id = NULL, *doc_number = NULL, *currency = NULL;
    struct jtape t = {0};
    struct entity_answer ans = {.tape = &t};
    size_t obj, cur;
    int r, rc;

    r = write_entity(io, q, w, NULL, &ans, err);
    if (r < 0)
        return api_error_tag(err, API_SOURCE_QBO, -1);
    obj = ans.at;
    (void)jtape_get_str(&t, obj, "Id", &id);
    (void)jtape_get_str(&t, obj, "DocNumber", &doc_number);
    if (jtape_get_obj(&t, obj, "CurrencyRef", &cur) == JGET_OK)
        (void)jtape_get_str(&t, cur, "value", &currency);
    rc = created_fill(resources[r].name, id, doc_number, currency, out, err);
    if (rc == 0) {
        const char *es = NULL;
        out->has_total = money_of_tape(&t, obj, "TotalAmt", &out->total_cents);
        out->has_balance = money_of_tape(&t, obj, "Balance", &out->balance_cents);
        out->email_sent = jtape_get_str(&t, obj, "EmailStatus", &es) == JGET_OK && es &&
                          strcmp(es, "EmailSent") == 0;
    }
    jtape_release(&t);
    return api_error_tag(err, API_SOURCE_QBO, rc);
}

static int read_entity(const struct ioctx *io, struct qbo_api *q, const char *realm,
                       const char *entity, const char *id, struct json_object **out_entity,
                       struct api_error *err)
{
    char path[3 * QBO_ID_MAX + 64], esc[3 * QBO_ID_MAX + 1], endpoint[96];
    struct qbo_call c = {.method = HTTP_GET, .path = path, .endpoint = endpoint};
    struct json_object *doc = NULL;
    int r = resource_find(entity), rc;

    api_error_clear(err);
    if (r < 0 || !id || !*id || strlen(id) > QBO_ID_MAX) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "qbo: bad read of %.40s",
                      entity ? entity : "(null)");
        return -1;
    }
    http_path_escape(esc, sizeof esc, id, strlen(id));
    snprintf(path, sizeof path, "%s/%s", resources[r].path, esc);
    snprintf(endpoint, sizeof endpoint, "GET /v3/company/{realm}/%s/{id}", resources[r].path);
    if (qbo_exchange(io, q, realm, &c, &doc, err) < 0)
        return -1;
    rc = unwrap(doc, resources[r].name, out_entity, err);
    json_object_put(doc);
    return rc;
}

static int send_doc(const struct ioctx *io, struct qbo_api *q, const char *realm,
                    const char *entity, const char *id, const char *email, struct api_error *err)
{
    char path[3 * QBO_ID_MAX + 64], esc[3 * QBO_ID_MAX + 1], endpoint[96];
    struct http_param p[1] = {{"sendTo", email}};
    struct qbo_call c = {.method = HTTP_POST,
                     .path = path,
                     .endpoint = endpoint,
                     .params = p,
                     .nparams = email ? 1 : 0,
                     .body = "",
                     .body_len = 0,
                     .content_type = "application/octet-stream"};
    struct json_object *doc = NULL;
    int r = resource_find(entity);

    api_error_clear(err);
    if (r < 0 || !id || !*id || strlen(id) > QBO_ID_MAX) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "qbo: bad send of %.40s",
                      entity ? entity : "(null)");
        return -1;
    }
    if (ioctx_claim_lost(io)) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 0,
                      "the event's claim was lost before sending the %s", resources[r].name);
        return -1;
    }
    http_path_escape(esc, sizeof esc, id, strlen(id));
    snprintf(path, sizeof path, "%s/%s/send", resources[r].path, esc);
    snprintf(endpoint, sizeof endpoint, "POST /v3/company/{realm}/%s/{id}/send",
             resources[r].path);
    if (qbo_exchange(io, q, realm, &c, &doc, err) < 0)
        return -1;
    json_object_put(doc);
    return 0;
}

int qbo_send(const struct ioctx *io, struct qbo_api *q, const char *realm, const char *entity,
             const char *id, const char *email, struct api_error *err)
{
    return api_error_tag(err, API_SOURCE_QBO, send_doc(io, q, realm, entity, id, email, err));
}

int qbo_read(const struct ioctx *io, struct qbo_api *q, const char *realm, const char *entity,
             const char *id, struct json_object **out_entity, struct api_error *err)
{
    return api_error_tag(err, API_SOURCE_QBO,
                         read_entity(io, q, realm, entity, id, out_entity, err));
}
