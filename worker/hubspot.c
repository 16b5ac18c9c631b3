/* hubspot.c - HubSpot CRM reads and callback completion (see hubspot.h).
 *
 * Every request goes through hs_do(): token (cache, else Redis, else the default) ->
 * rate limiter -> one HTTP exchange -> hooks -> rate-limit header feedback ->
 * classification into struct api_error. Parsers then read the body as a tape
 * (common/jtape.h: the strict parser without a json-c tree, two allocations per answer)
 * with its typed, non-coercing getters and copy what they keep, so nothing borrows from
 * a tape or a response buffer once a call returns.
 *
 * Association ids are collected from every key that may carry them ("line_items" and
 * the real API's "line items"), then sorted and de-duplicated: HubSpot lists a target
 * once per association type and defines no order, so ascending ids are the one order
 * that does not depend on the response. An embedded list that announces more pages is
 * replaced by a complete read through the v4 associations API.
 */
#include "worker/hubspot.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/jtape.h"
#include "common/log.h"

#define HS_API             "hubspot"
#define HS_JSON_DEPTH      64
#define HS_TOKEN_CACHE_MAX 256                          /* portals cached at once */
#define HS_RAW_ASSOC_MAX   (8 * HUBSPOT_MAX_LINE_ITEMS) /* entries before de-duplication */
#define HS_AFTER_MAX       256                          /* bytes of a paging cursor */
#define HS_V4_PAGE         "500"
#define HS_DAY_MS          86400000LL
#define HS_LOCKED_MIN_MS   2000 /* "locks last 2 seconds" (reference §6) */

struct token_entry {
    int64_t portal;
    int64_t fetched_ms;
    char *token; /* NULL: no token of its own (use the default) */
};

struct hubspot_api {
    char *base_url;
    char *token; /* default; NULL when none */
    long timeout_ms;
    struct ratelimit *rl;
    struct hubspot_hooks hooks;
    pthread_mutex_t mu; /* guards cache */
    struct token_entry cache[HS_TOKEN_CACHE_MAX];
    size_t ncache;
};

/* One call: the thread's I/O, the client and the event's portal (all borrowed). */
struct hs_call {
    const struct ioctx *io;
    struct hubspot_api *api;
    const struct hubspot_ctx *hc;
};

/* One request of a call. */
struct hs_req {
    const char *endpoint; /* metrics name: "get_object", ... */
    enum http_method method;
    const char *url;
    const char *body; /* JSON, or NULL */
    size_t body_len;
};

static const char *const deal_props[] = {"dealname", "amount",    "closedate", "deal_currency_code",
                                         "pipeline", "dealstage", NULL};
static const char *const quote_props[] = {"hs_title",
                                          "hs_expiration_date",
                                          "hs_status",
                                          "hs_quote_amount",
                                          "hs_currency",
                                          "hs_quote_number",
                                          "hs_locked",
                                          "hs_esign_num_signers_required",
                                          "hs_esign_num_signers_completed",
                                          "hs_payment_status",
                                          "hs_payment_date",
                                          "hs_net_payment_terms",
                                          NULL};
static const char *const payment_props[] = {"hs_initial_amount", "hs_initiated_date",
                                            "hs_currency_code",  "hs_customer_email",
                                            "hs_fees_amount",    "hs_refunds_amount",
                                            "hs_net_amount",     "hs_reference_number",
                                            "hs_latest_status",  "hs_payment_method_type",
                                            "hs_processor_type", "hs_payment_source_app",
                                            "hs_payment_type",   NULL};
static const char *const line_item_props[] = {"name",
                                              "description",
                                              "hs_sku",
                                              "hs_product_id",
                                              "quantity",
                                              "price",
                                              "amount",
                                              "discount",
                                              "hs_discount_percentage",
                                              "hs_total_discount",
                                              "hs_tax_rate_group_id",
                                              "hs_line_item_currency_code",
                                              NULL};

const char *const *hubspot_object_properties(enum hsqb_object_type type)
{
    switch (type) {
    case OBJECT_DEAL:
        return deal_props;
    case OBJECT_QUOTE:
        return quote_props;
    case OBJECT_COMMERCE_PAYMENT:
        return payment_props;
    default:
        return NULL;
    }
}

/* ---- lifecycle ------------------------------------------------------------------- */

struct hubspot_api *hubspot_api_new_opts(const struct hubspot_opts *o, struct ratelimit *rl,
                                         const struct hubspot_hooks *hooks, char *errstr,
                                         size_t errsz)
{
    struct hubspot_api *api;
    size_t n;

    if (!o || !o->base_url ||
        (strncmp(o->base_url, "http://", 7) != 0 && strncmp(o->base_url, "https://", 8) != 0)) {
        snprintf(errstr, errsz, "hubspot: base URL must start with http:// or https://");
        return NULL;
    }
    if (!rl) {
        snprintf(errstr, errsz, "hubspot: a rate limiter is required");
        return NULL;
    }
    if (o->token && strlen(o->token) > HUBSPOT_MAX_TOKEN) {
        snprintf(errstr, errsz, "hubspot: hubspot.token longer than %d bytes", HUBSPOT_MAX_TOKEN);
        return NULL;
    }
    api = calloc(1, sizeof *api);
    if (!api)
        goto oom;
    api->base_url = strdup(o->base_url);
    if (!api->base_url)
        goto oom;
    n = strlen(api->base_url);
    while (n > 0 && api->base_url[n - 1] == '/')
        api->base_url[--n] = '\0';
    if (o->token && o->token[0] && !(api->token = strdup(o->token)))
        goto oom;
    api->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 0;
    api->rl = rl;
    if (hooks)
        api->hooks = *hooks;
    pthread_mutex_init(&api->mu, NULL);
    return api;
oom:
    if (api) {
        free(api->base_url);
        free(api);
    }
    snprintf(errstr, errsz, "hubspot: out of memory");
    return NULL;
}

struct hubspot_api *hubspot_api_new(const struct config *cfg, struct ratelimit *rl,
                                    const struct hubspot_hooks *hooks, char *errstr, size_t errsz)
{
    struct hubspot_opts o = {
        .base_url = config_get_str(cfg, "hubspot.base_url"),
        .token = config_get_str(cfg, "hubspot.token"),
    };
    return hubspot_api_new_opts(&o, rl, hooks, errstr, errsz);
}

void hubspot_api_free(struct hubspot_api *api)
{
    if (!api)
        return;
    for (size_t i = 0; i < api->ncache; i++) {
        if (api->cache[i].token) {
            explicit_bzero(api->cache[i].token, strlen(api->cache[i].token));
            free(api->cache[i].token);
        }
    }
    if (api->token) {
        explicit_bzero(api->token, strlen(api->token));
        free(api->token);
    }
    pthread_mutex_destroy(&api->mu);
    free(api->base_url);
    free(api);
}

int hubspot_token_key(char *dst, size_t dstsz, const char *prefix, int64_t portal_id)
{
    int n = snprintf(dst, dstsz, "%shstoken:{%" PRId64 "}", prefix ? prefix : "", portal_id);
    return n < 0 || (size_t)n >= dstsz ? -1 : 0;
}

/* ---- tokens ---------------------------------------------------------------------- */

static void cache_put(struct hubspot_api *api, int64_t portal, const char *token)
{
    struct token_entry *e = NULL;
    char *copy = token ? strdup(token) : NULL;

    if (token && !copy)
        return; /* not cached; read again next time */
    pthread_mutex_lock(&api->mu);
    for (size_t i = 0; i < api->ncache; i++)
        if (api->cache[i].portal == portal)
            e = &api->cache[i];
    if (!e && api->ncache < HS_TOKEN_CACHE_MAX)
        e = &api->cache[api->ncache++];
    if (!e) { /* full: replace the oldest */
        e = &api->cache[0];
        for (size_t i = 1; i < api->ncache; i++)
            if (api->cache[i].fetched_ms < e->fetched_ms)
                e = &api->cache[i];
    }
    if (e->token) {
        explicit_bzero(e->token, strlen(e->token));
        free(e->token);
    }
    e->portal = portal;
    e->token = copy;
    e->fetched_ms = clock_mono_ms();
    pthread_mutex_unlock(&api->mu);
}

static void cache_drop(struct hubspot_api *api, int64_t portal)
{
    pthread_mutex_lock(&api->mu);
    for (size_t i = 0; i < api->ncache; i++)
        if (api->cache[i].portal == portal)
            api->cache[i].fetched_ms = INT64_MIN / 2; /* stale: re-read next time */
    pthread_mutex_unlock(&api->mu);
}

/* Copy the portal's token into tok. 1 = found in cache, 0 = needs a Redis read. */
static int cache_get(struct hubspot_api *api, int64_t portal, char *tok, size_t toksz)
{
    int found = 0;
    int64_t now = clock_mono_ms();

    pthread_mutex_lock(&api->mu);
    for (size_t i = 0; i < api->ncache; i++) {
        struct token_entry *e = &api->cache[i];
        if (e->portal != portal || now - e->fetched_ms >= HUBSPOT_TOKEN_CACHE_MS)
            continue;
        snprintf(tok, toksz, "%s", e->token ? e->token : api->token ? api->token : "");
        found = 1;
    }
    pthread_mutex_unlock(&api->mu);
    return found;
}

static int get_token(const struct hs_call *c, char *tok, size_t toksz, struct api_error *err)
{
    struct hubspot_api *api = c->api;
    const struct hubspot_ctx *ctx = c->hc;
    char key[REDIS_MAX_KEY + 1], rerr[256];
    redisReply *r;

    if (!cache_get(api, ctx->portal_id, tok, toksz)) {
        if (hubspot_token_key(key, sizeof key, redis_conn_prefix(c->io->redis), ctx->portal_id) <
            0) {
            api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "hubspot: token key too long");
            return -1;
        }
        r = redis_command(c->io->redis, rerr, sizeof rerr, "GET %s", key);
        if (!r) {
            api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 0,
                          "hubspot: reading the portal's token from redis: %s", rerr);
            return -1;
        }
        if (r->type == REDIS_REPLY_STRING && r->len > 0 && r->len <= HUBSPOT_MAX_TOKEN &&
            strlen(r->str) == r->len) {
            snprintf(tok, toksz, "%s", r->str);
            cache_put(api, ctx->portal_id, r->str);
        } else if (r->type == REDIS_REPLY_NIL) {
            snprintf(tok, toksz, "%s", api->token ? api->token : "");
            cache_put(api, ctx->portal_id, NULL);
        } else {
            freeReplyObject(r);
            api_error_set(err, API_AUTH, HSQB_ERR_HUBSPOT_AUTH, 0,
                          "hubspot: the token stored for portal %" PRId64 " is unusable",
                          ctx->portal_id);
            return -1;
        }
        freeReplyObject(r);
    }
    if (!tok[0]) {
        api_error_set(err, API_AUTH, HSQB_ERR_HUBSPOT_AUTH, 0,
                      "hubspot: no token for portal %" PRId64
                      " (none in redis, hubspot.token unset)",
                      ctx->portal_id);
        return -1;
    }
    return 0;
}

/* ---- one exchange ------------------------------------------------------------------ */

static int64_t header_int(const struct http_response *resp, const char *name, int64_t dflt)
{
    const char *v = http_response_header(resp, name);
    char *end;
    long long n;

    if (!v || !*v)
        return dflt;
    n = strtoll(v, &end, 10);
    return *end == '\0' && n >= 0 ? n : dflt;
}

static void penalize(const struct hs_call *c, int64_t ms)
{
    char tenant[24], perr[256];

    snprintf(tenant, sizeof tenant, "%" PRId64, c->hc->portal_id);
    if (ms > 0 &&
        ratelimit_penalize(c->api->rl, c->io->redis, RL_HUBSPOT, tenant, ms, perr, sizeof perr) < 0)
        log_warn("hubspot: could not back off portal %s: %s", tenant, perr);
    /* the portal's budget is spent: what was admitted ahead must not go out */
    if (ms > 0)
        ratelimit_prefetch_drop(c->api->rl, c->io->redis, c->hc->prefetch);
}

void hubspot_ctx_done(const struct ioctx *io, struct hubspot_api *api, const struct hubspot_ctx *hc)
{
    if (api && hc)
        ratelimit_prefetch_drop(api->rl, io->redis, hc->prefetch);
}

/* Fill err from a non-2xx answer (reference §6 and §7). */
static void classify(const struct hs_call *c, const char *endpoint,
                     const struct http_response *resp, struct api_error *err)
{
    struct jtape t = {0};
    const char *msg = NULL, *category = NULL, *policy = NULL, *cid = NULL;
    char perr[128];
    int status = (int)resp->status;
    int64_t ra = resp->retry_after_ms >= 0 ? resp->retry_after_ms : 0;

    if (jtape_parse(&t, resp->body, resp->body_len, HS_JSON_DEPTH, perr, sizeof perr) == 0) {
        (void)jtape_get_str(&t, JTAPE_ROOT, "message", &msg);
        (void)jtape_get_str(&t, JTAPE_ROOT, "category", &category);
        (void)jtape_get_str(&t, JTAPE_ROOT, "policyName", &policy);
        (void)jtape_get_str(&t, JTAPE_ROOT, "correlationId", &cid);
    }
    if (!category && policy)
        category = policy;
#define HS_SET(cls, code)                                                                          \
    api_error_set(err, cls, code, status, "hubspot %s: HTTP %d %s: %.200s", endpoint, status,      \
                  category ? category : "", msg ? msg : "(no message)")
    if (status == 429) {
        if (policy && strcmp(policy, "DAILY") == 0) {
            int64_t now = (int64_t)time(NULL) * 1000;
            ra = HS_DAY_MS - now % HS_DAY_MS;
        } else if (ra <= 0) {
            if (msg && strstr(msg, "secondly limit") && !strstr(msg, "ten_secondly"))
                ra = 1000;
            else
                ra = header_int(resp, "X-HubSpot-RateLimit-Interval-Milliseconds", 10000);
        }
        HS_SET(API_THROTTLED, HSQB_ERR_RETRIES_EXHAUSTED);
        penalize(c, ra);
    } else if (status == 401 || status == 403) {
        if (status == 401)
            cache_drop(c->api, c->hc->portal_id);
        HS_SET(API_AUTH, HSQB_ERR_HUBSPOT_AUTH);
    } else if (status == 404) {
        HS_SET(API_NOT_FOUND, HSQB_ERR_OBJECT_NOT_FOUND);
    } else if (status == 423) {
        if (ra < HS_LOCKED_MIN_MS)
            ra = HS_LOCKED_MIN_MS;
        HS_SET(API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED);
    } else if (status >= 500 || status == 477 || status == 408) {
        HS_SET(API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED);
    } else {
        HS_SET(API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION);
    }
#undef HS_SET
    err->retry_after_ms = ra;
    if (cid)
        snprintf(err->upstream_id, sizeof err->upstream_id, "%s", cid);
    jtape_release(&t);
}

/* Send one request for the call's portal and leave a 2xx answer in resp (0), or fill err
 * (-1). */
static int hs_do(const struct hs_call *c, const struct hs_req *rq, struct http_response *resp,
                 struct api_error *err)
{
    struct hubspot_api *api = c->api;
    const struct hubspot_ctx *ctx = c->hc;
    const char *endpoint = rq->endpoint;
    char tok[HUBSPOT_MAX_TOKEN + 1] = "", tenant[24], rerr[256];
    struct ratelimit_slot slot;
    struct http_header hdrs[1] = {{"Accept", "application/json"}};
    struct http_request req = {.method = rq->method,
                               .url = rq->url,
                               .headers = hdrs,
                               .nheaders = 1,
                               .body = rq->body,
                               .body_len = rq->body_len,
                               .content_type = rq->body ? "application/json" : NULL,
                               .timeout_ms = api->timeout_ms};
    int64_t deadline, retry = 0;
    enum ratelimit_status rs;
    enum http_error he;
    int rc = -1;

    if (get_token(c, tok, sizeof tok, err) < 0)
        return -1;
    snprintf(tenant, sizeof tenant, "%" PRId64, ctx->portal_id);
    deadline =
        c->io->deadline_ms > 0 ? c->io->deadline_ms : clock_mono_ms() + HUBSPOT_DEFAULT_WAIT_MS;
    rs = ratelimit_acquire_pf(api->rl, c->io->redis, RL_HUBSPOT, tenant, deadline, ctx->prefetch,
                              &slot, &retry, rerr, sizeof rerr);
    if (slot.waited_ms > 0 && api->hooks.on_ratelimit_wait)
        api->hooks.on_ratelimit_wait(api->hooks.ctx, HS_API, slot.waited_ms);
    if (rs == RL_ERROR) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 0, "hubspot %s: %s", endpoint,
                      rerr);
        goto out;
    }
    if (rs == RL_TIMEOUT) {
        api_error_set(err, API_THROTTLED, HSQB_ERR_RETRIES_EXHAUSTED, 0, "hubspot %s: %s", endpoint,
                      rerr);
        err->retry_after_ms = retry;
        goto out;
    }
    req.bearer = tok;
    he = http_client_do(c->io->http, &req, resp, rerr, sizeof rerr);
    ratelimit_release(api->rl, c->io->redis, &slot);
    if (api->hooks.on_api_call)
        api->hooks.on_api_call(api->hooks.ctx, HS_API, endpoint, (int)resp->status, resp->total_ms);
    if (he != HTTP_OK) {
        api_error_set(err, he == HTTP_ETOOBIG ? API_PERMANENT : API_TRANSIENT,
                      he == HTTP_ETOOBIG ? HSQB_ERR_HUBSPOT_VALIDATION : HSQB_ERR_RETRIES_EXHAUSTED,
                      0, "hubspot %s: %s: %s", endpoint, http_error_str(he), rerr);
        goto out;
    }
    /* The answer that spent the window's last request: hold everyone back for the
     * average spacing rather than earn a 429 with the next one. */
    if (resp->status != 429 && header_int(resp, "X-HubSpot-RateLimit-Remaining", -1) == 0) {
        int64_t iv = header_int(resp, "X-HubSpot-RateLimit-Interval-Milliseconds", 10000);
        int64_t max = header_int(resp, "X-HubSpot-RateLimit-Max", 0);
        penalize(c, max > 0 ? iv / max : iv);
    }
    if (resp->status >= 200 && resp->status < 300)
        rc = 0;
    else
        classify(c, endpoint, resp, err);
out:
    explicit_bzero(tok, sizeof tok);
    return rc;
}

/* ---- parsing helpers ---------------------------------------------------------------- */

/* A 2xx answer's body as a tape (jtape.h: two allocations whatever the answer's size,
 * where a json-c tree costs one per value). 0 with *t (caller releases), or -1 (err). */
static int parse_body(const struct http_response *resp, const char *endpoint, struct jtape *t,
                      struct api_error *err)
{
    char perr[160];
    int ok = jtape_parse(t, resp->body, resp->body_len, HS_JSON_DEPTH, perr, sizeof perr) == 0;

    if (!ok || t->n[JTAPE_ROOT].type != JT_OBJECT) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, (int)resp->status,
                      "hubspot %s: unreadable answer: %s", endpoint,
                      ok ? "not a JSON object" : perr);
        jtape_release(t);
        return -1;
    }
    return 0;
}

static void bad_answer(struct api_error *err, const char *endpoint, const char *what)
{
    api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 200,
                  "hubspot %s: unexpected answer: %s", endpoint, what);
}

/* Copy properties.<name> into *out (NULL when absent/null/""). -1 (err) on a
 * non-string or an oversized value. */
static int copy_prop(const struct jtape *t, size_t props, const char *name, char **out,
                     const char *endpoint, struct api_error *err)
{
    const char *v;
    size_t len;
    enum jget_status st = jtape_get_strn(t, props, name, &v, &len);

    *out = NULL;
    if (st == JGET_MISSING)
        return 0;
    if (st != JGET_OK || strlen(v) != len) {
        bad_answer(err, endpoint, "a property is not a string");
        return -1;
    }
    if (len > HUBSPOT_MAX_PROP) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, 200,
                      "hubspot %s: property %s longer than %d bytes", endpoint, name,
                      HUBSPOT_MAX_PROP);
        return -1;
    }
    if (len == 0)
        return 0;
    if (!(*out = strdup(v))) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 200, "hubspot: out of memory");
        return -1;
    }
    return 0;
}

struct idvec {
    int64_t *v;
    size_t n, cap;
};

static int idvec_push(struct idvec *iv, int64_t id)
{
    if (iv->n == iv->cap) {
        size_t cap = iv->cap ? 2 * iv->cap : 16;
        int64_t *v = realloc(iv->v, cap * sizeof *v);
        if (!v)
            return -1;
        iv->v = v;
        iv->cap = cap;
    }
    iv->v[iv->n++] = id;
    return 0;
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void idvec_sort_unique(struct idvec *iv)
{
    size_t w = 0;
    if (iv->n == 0)
        return;
    qsort(iv->v, iv->n, sizeof iv->v[0], cmp_id);
    for (size_t i = 1; i < iv->n; i++)
        if (iv->v[i] != iv->v[w])
            iv->v[++w] = iv->v[i];
    iv->n = w + 1;
}

/* ---- associations ------------------------------------------------------------------ */

/* Append the ids of one embedded association list; *more set when it has paging.next. */
static int embedded_ids(const struct jtape *t, size_t wrap, struct idvec *iv, int *more,
                        const char *endpoint, struct api_error *err)
{
    size_t results, paging, next, i, k;

    if (jtape_get_array(t, wrap, "results", &results) != JGET_OK) {
        bad_answer(err, endpoint, "association without results");
        return -1;
    }
    for (i = results + 1, k = 0; k < t->n[results].count; k++, i = t->n[i].next) {
        int64_t id;
        if (jtape_get_int64_lenient(t, i, "id", 1, INT64_MAX, &id) != JGET_OK) {
            bad_answer(err, endpoint, "association id is not a positive integer");
            return -1;
        }
        if (iv->n >= HS_RAW_ASSOC_MAX) {
            api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, 200,
                          "hubspot %s: more than %d association entries", endpoint,
                          HS_RAW_ASSOC_MAX);
            return -1;
        }
        if (idvec_push(iv, id) < 0) {
            api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 200, "hubspot: out of memory");
            return -1;
        }
    }
    if (jtape_get_obj(t, wrap, "paging", &paging) == JGET_OK &&
        jtape_get_obj(t, paging, "next", &next) == JGET_OK)
        *more = 1;
    return 0;
}

/* One association type read with an object: the embedded keys that carry it, the v4
 * name of the target type, and the most targets accepted. */
struct assoc_want {
    const char *const *keys;
    const char *to_type;
    size_t max;
};

/* Every association of o to w->to_type through the v4 API, replacing iv. */
static int v4_associations(const struct hs_call *c, const struct hubspot_object *o,
                           const struct assoc_want *w, struct idvec *iv, struct api_error *err)
{
    static const char ep[] = "get_associations";
    enum hsqb_object_type type = o->type;
    int64_t id = o->id;
    const char *to_type = w->to_type;
    size_t max = w->max;
    char base[HTTP_MAX_URL], url[HTTP_MAX_URL], after[HS_AFTER_MAX + 1] = "", uerr[128];
    struct http_response resp;
    struct jtape t = {0};
    int rc = -1;

    iv->n = 0;
    http_response_init(&resp);
    snprintf(base, sizeof base, "%s/crm/v4/objects/%s/%" PRId64 "/associations/%s",
             c->api->base_url, object_type_path(type), id, to_type);
    for (;;) {
        struct http_param q[2] = {{"limit", HS_V4_PAGE}, {"after", after[0] ? after : NULL}};
        size_t results, paging, next, i, n;
        const char *a;

        if (http_url_build(url, sizeof url, base, q, 2, uerr, sizeof uerr) < 0) {
            api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "hubspot %s: %s", ep, uerr);
            goto out;
        }
        if (hs_do(c, &(struct hs_req){ep, HTTP_GET, url, NULL, 0}, &resp, err) < 0)
            goto out;
        jtape_release(&t);
        if (parse_body(&resp, ep, &t, err) < 0)
            goto out;
        if (jtape_get_array(&t, JTAPE_ROOT, "results", &results) != JGET_OK) {
            bad_answer(err, ep, "no results array");
            goto out;
        }
        n = t.n[results].count;
        i = results + 1;
        for (size_t k = 0; k < n; k++, i = t.n[i].next) {
            int64_t to;
            if (jtape_get_int64_lenient(&t, i, "toObjectId", 1, INT64_MAX, &to) != JGET_OK) {
                bad_answer(err, ep, "toObjectId is not a positive integer");
                goto out;
            }
            if (iv->n >= max) {
                api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, 200,
                              "hubspot: %s %" PRId64 " has more than %zu associated %s",
                              object_type_name(type), id, max, to_type);
                goto out;
            }
            if (idvec_push(iv, to) < 0) {
                api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 200, "hubspot: out of memory");
                goto out;
            }
        }
        if (n == 0 || jtape_get_obj(&t, JTAPE_ROOT, "paging", &paging) != JGET_OK ||
            jtape_get_obj(&t, paging, "next", &next) != JGET_OK)
            break;
        if (jtape_get_str(&t, next, "after", &a) != JGET_OK || !*a || strlen(a) > HS_AFTER_MAX) {
            bad_answer(err, ep, "bad paging cursor");
            goto out;
        }
        snprintf(after, sizeof after, "%s", a);
    }
    rc = 0;
out:
    jtape_release(&t);
    http_response_release(&resp);
    return rc;
}

/* One association type of the object: embedded keys, else the v4 API when truncated.
 * On 0 *out holds the ids, sorted and unique (out->v NULL when none; caller frees). */
static int read_assoc(const struct hs_call *c, const struct hubspot_object *o,
                      const struct jtape *t, size_t assoc, const struct assoc_want *w,
                      struct idvec *out, struct api_error *err)
{
    struct idvec iv = {0};
    const char *const *keys = w->keys;
    const char *to_type = w->to_type;
    size_t max = w->max;
    size_t wrap;
    int more = 0;

    for (; assoc && *keys; keys++) {
        if (jtape_get_obj(t, assoc, *keys, &wrap) != JGET_OK)
            continue;
        if (embedded_ids(t, wrap, &iv, &more, "get_object", err) < 0)
            goto fail;
    }
    if (more && v4_associations(c, o, w, &iv, err) < 0)
        goto fail;
    idvec_sort_unique(&iv);
    if (iv.n > max) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, 200,
                      "hubspot: %s %" PRId64 " has %zu associated %s, more than %zu",
                      object_type_name(o->type), o->id, iv.n, to_type, max);
        goto fail;
    }
    if (!iv.n) {
        free(iv.v);
        iv.v = NULL;
    }
    *out = iv;
    return 0;
fail:
    free(iv.v);
    return -1;
}

/* ---- the enrolled object ----------------------------------------------------------- */

void hubspot_object_free(struct hubspot_object *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->nprops; i++) {
        free(o->props[i].name);
        free(o->props[i].value);
    }
    free(o->props);
    free(o->contact_ids);
    free(o->line_item_ids);
    free(o);
}

const char *hubspot_object_prop(const struct hubspot_object *o, const char *name)
{
    for (size_t i = 0; o && name && i < o->nprops; i++)
        if (strcmp(o->props[i].name, name) == 0)
            return o->props[i].value;
    return NULL;
}

/* "a,b,c" from a NULL-terminated list. */
static int join_names(char *dst, size_t dstsz, const char *const *names)
{
    size_t len = 0;
    dst[0] = '\0';
    for (; *names; names++) {
        int n = snprintf(dst + len, dstsz - len, "%s%s", len ? "," : "", *names);
        if (n < 0 || (size_t)n >= dstsz - len)
            return -1;
        len += (size_t)n;
    }
    return 0;
}

static int get_object(const struct hs_call *c, enum hsqb_object_type type, int64_t object_id,
                      struct hubspot_object **out, struct api_error *err)
{
    static const char ep[] = "get_object";
    static const char *const contact_keys[] = {"contacts", NULL};
    static const char *const li_keys[] = {"line_items", "line items", NULL};
    static const struct assoc_want contacts = {contact_keys, "contacts", HUBSPOT_MAX_CONTACTS};
    static const struct assoc_want lines = {li_keys, "line_items", HUBSPOT_MAX_LINE_ITEMS};
    struct hubspot_api *api = c->api;
    const struct hubspot_ctx *ctx = c->hc;
    struct idvec ids;
    const char *const *names = hubspot_object_properties(type);
    char props[1024], base[HTTP_MAX_URL], url[HTTP_MAX_URL], uerr[128];
    struct http_param q[3] = {
        {"properties", props}, {"associations", "contacts,line_items"}, {"archived", "false"}};
    struct http_response resp;
    struct jtape t = {0};
    size_t jprops, assoc = 0;
    struct hubspot_object *o = NULL;
    int archived = 0, rc = -1;
    int64_t id;
    size_t n = 0;

    api_error_clear(err);
    http_response_init(&resp);
    if (!names || object_id < 1 || ctx->portal_id < 1 || join_names(props, sizeof props, names)) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "hubspot %s: bad arguments", ep);
        goto out;
    }
    snprintf(base, sizeof base, "%s/crm/v3/objects/%s/%" PRId64, api->base_url,
             object_type_path(type), object_id);
    if (http_url_build(url, sizeof url, base, q, 3, uerr, sizeof uerr) < 0) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "hubspot %s: %s", ep, uerr);
        goto out;
    }
    if (hs_do(c, &(struct hs_req){ep, HTTP_GET, url, NULL, 0}, &resp, err) < 0)
        goto out;
    if (parse_body(&resp, ep, &t, err) < 0)
        goto out;
    if (jtape_get_int64_lenient(&t, JTAPE_ROOT, "id", 1, INT64_MAX, &id) != JGET_OK ||
        id != object_id || jtape_get_obj(&t, JTAPE_ROOT, "properties", &jprops) != JGET_OK) {
        bad_answer(err, ep, "missing id or properties");
        goto out;
    }
    if (jtape_get_bool(&t, JTAPE_ROOT, "archived", &archived) == JGET_OK && archived) {
        api_error_set(err, API_NOT_FOUND, HSQB_ERR_OBJECT_NOT_FOUND, (int)resp.status,
                      "hubspot: %s %" PRId64 " is archived", object_type_name(type), object_id);
        goto out;
    }
    if (!(o = calloc(1, sizeof *o)))
        goto oom;
    o->type = type;
    o->id = object_id;
    while (names[n])
        n++;
    if (!(o->props = calloc(n, sizeof *o->props)))
        goto oom;
    for (size_t i = 0; i < n; i++) {
        if (!(o->props[i].name = strdup(names[i])))
            goto oom;
        o->nprops++;
        if (copy_prop(&t, jprops, names[i], &o->props[i].value, ep, err) < 0)
            goto out;
    }
    if (jtape_get_obj(&t, JTAPE_ROOT, "associations", &assoc) == JGET_WRONG_TYPE) {
        bad_answer(err, ep, "associations is not an object");
        goto out;
    }
    if (read_assoc(c, o, &t, assoc, &contacts, &ids, err) < 0)
        goto out;
    o->contact_ids = ids.v;
    o->ncontacts = ids.n;
    if (read_assoc(c, o, &t, assoc, &lines, &ids, err) < 0)
        goto out;
    o->line_item_ids = ids.v;
    o->nline_items = ids.n;
    *out = o;
    o = NULL;
    rc = 0;
    goto out;
oom:
    api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 0, "hubspot: out of memory");
out:
    hubspot_object_free(o);
    jtape_release(&t);
    http_response_release(&resp);
    return rc;
}

/* ---- contacts ------------------------------------------------------------------------ */

void hubspot_contact_free(struct hubspot_contact *c)
{
    if (!c)
        return;
    free(c->firstname);
    free(c->lastname);
    free(c->email);
    free(c);
}

static int get_contact(const struct hs_call *c_, int64_t contact_id, struct hubspot_contact **out,
                       struct api_error *err)
{
    static const char ep[] = "get_contact";
    struct hubspot_api *api = c_->api;
    const struct hubspot_ctx *ctx = c_->hc;
    char base[HTTP_MAX_URL], url[HTTP_MAX_URL], uerr[128];
    struct http_param q[2] = {{"properties", "firstname,lastname,email"}, {"archived", "false"}};
    struct http_response resp;
    struct jtape t = {0};
    size_t jprops;
    struct hubspot_contact *c = NULL;
    int rc = -1;
    int64_t id;

    api_error_clear(err);
    http_response_init(&resp);
    if (contact_id < 1 || ctx->portal_id < 1) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "hubspot %s: bad arguments", ep);
        goto out;
    }
    snprintf(base, sizeof base, "%s/crm/v3/objects/contacts/%" PRId64, api->base_url, contact_id);
    if (http_url_build(url, sizeof url, base, q, 2, uerr, sizeof uerr) < 0) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "hubspot %s: %s", ep, uerr);
        goto out;
    }
    if (hs_do(c_, &(struct hs_req){ep, HTTP_GET, url, NULL, 0}, &resp, err) < 0)
        goto out;
    if (parse_body(&resp, ep, &t, err) < 0)
        goto out;
    if (jtape_get_int64_lenient(&t, JTAPE_ROOT, "id", 1, INT64_MAX, &id) != JGET_OK ||
        id != contact_id || jtape_get_obj(&t, JTAPE_ROOT, "properties", &jprops) != JGET_OK) {
        bad_answer(err, ep, "missing id or properties");
        goto out;
    }
    if (!(c = calloc(1, sizeof *c))) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 0, "hubspot: out of memory");
        goto out;
    }
    c->id = contact_id;
    if (copy_prop(&t, jprops, "firstname", &c->firstname, ep, err) < 0 ||
        copy_prop(&t, jprops, "lastname", &c->lastname, ep, err) < 0 ||
        copy_prop(&t, jprops, "email", &c->email, ep, err) < 0)
        goto out;
    *out = c;
    c = NULL;
    rc = 0;
out:
    hubspot_contact_free(c);
    jtape_release(&t);
    http_response_release(&resp);
    return rc;
}

/* ---- line items ---------------------------------------------------------------------- */

static void line_item_release(struct hubspot_line_item *li)
{
    char **f[] = {&li->name,           &li->description,       &li->sku,
                  &li->product_id,     &li->quantity,          &li->price,
                  &li->amount,         &li->discount,          &li->discount_percentage,
                  &li->total_discount, &li->tax_rate_group_id, &li->currency};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        free(*f[i]);
        *f[i] = NULL;
    }
}

void hubspot_line_items_free(struct hubspot_line_items *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        line_item_release(&l->items[i]);
    free(l->items);
    free(l);
}

/* Fill li from one batch result; props in line_item_props order. */
static int parse_line_item(const struct jtape *t, size_t jprops, struct hubspot_line_item *li,
                           struct api_error *err)
{
    char **f[] = {&li->name,           &li->description,       &li->sku,
                  &li->product_id,     &li->quantity,          &li->price,
                  &li->amount,         &li->discount,          &li->discount_percentage,
                  &li->total_discount, &li->tax_rate_group_id, &li->currency};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (copy_prop(t, jprops, line_item_props[i], f[i], "batch_read_line_items", err) < 0)
            return -1;
    return 0;
}

/* One batch of ids[0..n) into items[0..n). filled[i] set when returned. */
static int batch_read(const struct hs_call *c, const int64_t *ids, size_t n,
                      struct hubspot_line_item *items, unsigned char *filled, struct api_error *err)
{
    static const char ep[] = "batch_read_line_items";
    char url[HTTP_MAX_URL];
    struct http_response resp;
    struct jtape t = {0};
    size_t results, r, m;
    struct jbuf jb;
    int rc = -1;

    http_response_init(&resp);
    jbuf_init(&jb, 64 * 1024);
    jbuf_obj_open(&jb);
    jbuf_key(&jb, "properties");
    jbuf_arr_open(&jb);
    for (const char *const *p = line_item_props; *p; p++)
        jbuf_str(&jb, *p);
    jbuf_arr_close(&jb);
    jbuf_key(&jb, "propertiesWithHistory");
    jbuf_arr_open(&jb);
    jbuf_arr_close(&jb);
    jbuf_key(&jb, "inputs");
    jbuf_arr_open(&jb);
    for (size_t i = 0; i < n; i++) {
        char id[24];
        snprintf(id, sizeof id, "%" PRId64, ids[i]);
        jbuf_obj_open(&jb);
        jbuf_kv_str(&jb, "id", id);
        jbuf_obj_close(&jb);
    }
    jbuf_arr_close(&jb);
    jbuf_obj_close(&jb);
    snprintf(url, sizeof url, "%s/crm/v3/objects/line_items/batch/read?archived=false",
             c->api->base_url);
    if (!jbuf_cstr(&jb)) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 0, "hubspot %s: body", ep);
        goto out;
    }
    if (hs_do(c, &(struct hs_req){ep, HTTP_POST, url, jb.buf, jb.len}, &resp, err) < 0)
        goto out;
    if (parse_body(&resp, ep, &t, err) < 0)
        goto out;
    if (jtape_get_array(&t, JTAPE_ROOT, "results", &results) != JGET_OK) {
        bad_answer(err, ep, "no results array");
        goto out;
    }
    for (r = results + 1, m = 0; m < t.n[results].count; m++, r = t.n[r].next) {
        size_t jprops;
        int64_t id;
        if (jtape_get_int64_lenient(&t, r, "id", 1, INT64_MAX, &id) != JGET_OK ||
            jtape_get_obj(&t, r, "properties", &jprops) != JGET_OK) {
            bad_answer(err, ep, "result without id or properties");
            goto out;
        }
        for (size_t k = 0; k < n; k++) {
            if (ids[k] != id || filled[k])
                continue;
            if (parse_line_item(&t, jprops, &items[k], err) < 0)
                goto out;
            items[k].id = id;
            filled[k] = 1;
        }
    }
    rc = 0;
out:
    jtape_release(&t);
    jbuf_release(&jb);
    http_response_release(&resp);
    return rc;
}

static int get_line_items(const struct hs_call *c, const int64_t *ids, size_t n,
                          struct hubspot_line_items **out, struct api_error *err)
{
    struct hubspot_line_items *l = NULL;
    unsigned char *filled = NULL;
    char missing[256] = "";
    size_t nmissing = 0, mlen = 0;
    int rc = -1;

    api_error_clear(err);
    if (n > HUBSPOT_MAX_LINE_ITEMS) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, 0,
                      "hubspot: %zu line items, more than the %d an event may have", n,
                      HUBSPOT_MAX_LINE_ITEMS);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < i && ids[i] > 0; k++)
            if (ids[k] == ids[i])
                goto bad;
        if (ids[i] < 1)
            goto bad;
    }
    if (!(l = calloc(1, sizeof *l)) || (n && !(l->items = calloc(n, sizeof *l->items))) ||
        (n && !(filled = calloc(n, 1)))) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 0, "hubspot: out of memory");
        goto out;
    }
    l->n = n;
    for (size_t off = 0; off < n; off += HUBSPOT_BATCH_MAX) {
        size_t k = n - off < HUBSPOT_BATCH_MAX ? n - off : HUBSPOT_BATCH_MAX;
        if (batch_read(c, ids + off, k, l->items + off, filled + off, err) < 0)
            goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (filled[i])
            continue;
        if (nmissing++ < 20 && mlen < sizeof missing - 24)
            mlen += (size_t)snprintf(missing + mlen, sizeof missing - mlen, "%s%" PRId64,
                                     mlen ? ", " : "", ids[i]);
    }
    if (nmissing) {
        api_error_set(err, API_NOT_FOUND, HSQB_ERR_OBJECT_NOT_FOUND, 207,
                      "hubspot: %zu line item(s) not found: %s%s", nmissing, missing,
                      nmissing > 20 ? ", ..." : "");
        goto out;
    }
    *out = l;
    l = NULL;
    rc = 0;
    goto out;
bad:
    api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0,
                  "hubspot: line item ids must be unique and positive");
out:
    free(filled);
    hubspot_line_items_free(l);
    return rc;
}

/* ---- callback completion ------------------------------------------------------------- */

static int complete_callback(const struct hs_call *c, const struct hubspot_completion *done,
                             struct api_error *err)
{
    static const char ep[] = "complete_callback";
    const char *callback_id = done->callback_id;
    const struct hubspot_output_field *fields = done->fields;
    size_t nfields = done->nfields;
    int success = done->success;
    char esc[3 * EVENT_ID_MAX + 1], url[HTTP_MAX_URL];
    struct http_response resp;
    struct jbuf jb;
    size_t idlen = callback_id ? strlen(callback_id) : 0;
    int rc = -1;

    api_error_clear(err);
    http_response_init(&resp);
    jbuf_init(&jb, 256 * 1024);
    if (idlen == 0 || idlen > EVENT_ID_MAX || nfields > HUBSPOT_MAX_OUTPUT ||
        (nfields && !fields)) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "hubspot %s: bad arguments", ep);
        goto out;
    }
    http_url_escape(esc, sizeof esc, callback_id, idlen);
    snprintf(url, sizeof url, "%s/automation/v4/actions/callbacks/%s/complete", c->api->base_url,
             esc);
    jbuf_obj_open(&jb);
    jbuf_key(&jb, "outputFields");
    jbuf_obj_open(&jb);
    jbuf_kv_str(&jb, "hs_execution_state", success ? "SUCCESS" : "FAIL_CONTINUE");
    for (size_t i = 0; i < nfields; i++) {
        if (!fields[i].name || strcmp(fields[i].name, "hs_execution_state") == 0) {
            api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "hubspot %s: bad output field",
                          ep);
            goto out;
        }
        jbuf_kv_str(&jb, fields[i].name, fields[i].value);
    }
    jbuf_obj_close(&jb);
    jbuf_obj_close(&jb);
    if (!jbuf_cstr(&jb)) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "hubspot %s: body too large", ep);
        goto out;
    }
    rc = hs_do(c, &(struct hs_req){ep, HTTP_POST, url, jb.buf, jb.len}, &resp, err);
out:
    jbuf_release(&jb);
    http_response_release(&resp);
    return rc;
}

/* ---- the public calls: each failure names API_SOURCE_HUBSPOT ------------------------ */

int hubspot_get_object(const struct ioctx *io, struct hubspot_api *api,
                       const struct hubspot_ctx *hc, enum hsqb_object_type type, int64_t object_id,
                       struct hubspot_object **out, struct api_error *err)
{
    struct hs_call c = {io, api, hc};
    return api_error_tag(err, API_SOURCE_HUBSPOT, get_object(&c, type, object_id, out, err));
}

int hubspot_get_contact(const struct ioctx *io, struct hubspot_api *api,
                        const struct hubspot_ctx *hc, int64_t contact_id,
                        struct hubspot_contact **out, struct api_error *err)
{
    struct hs_call c = {io, api, hc};
    return api_error_tag(err, API_SOURCE_HUBSPOT, get_contact(&c, contact_id, out, err));
}

int hubspot_get_line_items(const struct ioctx *io, struct hubspot_api *api,
                           const struct hubspot_ctx *hc, const int64_t *ids, size_t n,
                           struct hubspot_line_items **out, struct api_error *err)
{
    struct hs_call c = {io, api, hc};
    return api_error_tag(err, API_SOURCE_HUBSPOT, get_line_items(&c, ids, n, out, err));
}

int hubspot_complete_callback(const struct ioctx *io, struct hubspot_api *api,
                              const struct hubspot_ctx *hc, const struct hubspot_completion *done,
                              struct api_error *err)
{
    struct hs_call c = {io, api, hc};
    return api_error_tag(err, API_SOURCE_HUBSPOT, complete_callback(&c, done, err));
}
