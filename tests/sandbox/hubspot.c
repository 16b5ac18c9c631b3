/* hubspot.c - the HubSpot side of hsqb-sandbox: CRM object reads (v3 single, list,
 * batch read; v4 associations), automation callback completion, private-app and OAuth
 * bearer tokens, HubSpot's OAuth token endpoint, tax rates, rate limiting with the
 * X-HubSpot-RateLimit-* headers, and HubSpot's error bodies. Facts come from
 * ../shared/reference/hubspot-api.md; where that page records a design choice (§9) the
 * choice is implemented and switchable through hubspot_configure().
 *
 * State: portals (each with a sorted id list per object type for paging and its rate
 * window), a hash of objects keyed by (portal, type, id), a hash of bearer tokens and a
 * hash of automation callbacks. One rwlock (writer-preferring) guards all of it: reads
 * (the hot path) share it, callback completion / token issue / seeding take it for
 * writing. The rate window has its own mutex, taken inside the read lock.
 *
 * json-c objects held in the state are never handed out or serialised directly: json-c
 * reference counts are not atomic, so responses copy stored strings into new objects.
 *
 * Request path: route -> bearer token -> rate limit (headers added to every answer)
 * -> scope -> handler. The OAuth token route needs no bearer and is not rate limited.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "tests/sandbox/sandbox.h"

#define HS_BATCH_MAX      100  /* CRM batch read inputs */
#define HS_V4_BATCH_MAX   1000 /* v4 association batch read inputs */
#define HS_CB_BATCH_MAX   100  /* callback completions per batch (design choice) */
#define HS_CALLBACKS_MAX  1000000
#define HS_V4_LIMIT_MAX   500
#define HS_LIST_LIMIT_MAX 100
#define HS_MAX_SEGS       12
#define HS_MAX_NAMES      256 /* properties / association types per request */
#define HS_LINK_TYPES     4
#define HS_TOKEN_MAX      512
#define HS_WINDOW_MS      10000
#define HS_PATH_MAX       1024 /* request path routed by hubspot_handle; longer -> 414 */
#define HS_FORM_MAX       512  /* one OAuth form/query parameter value */

enum { T_CONTACTS, T_COMPANIES, T_DEALS, T_PRODUCTS, T_LINE_ITEMS, T_QUOTES, T_PAYMENTS, NT };

struct type_info {
    const char *name, *id, *singular, *upper, *assoc_key, *scope, *alt_scope, *modkey;
    const char *defaults, *catalogue;
};

static const struct type_info types[NT] = {
    {"contacts", "0-1", "contact", "CONTACT", "contacts", "crm.objects.contacts.read", NULL,
     "lastmodifieddate", "firstname,lastname,email",
     "email,firstname,lastname,company,phone,address,city,state,zip,country"},
    {"companies", "0-2", "company", "COMPANY", "companies", "crm.objects.companies.read", NULL,
     "hs_lastmodifieddate", "name,domain", "name,domain,phone,city,state,country"},
    {"deals", "0-3", "deal", "DEAL", "deals", "crm.objects.deals.read", NULL, "hs_lastmodifieddate",
     "dealname,amount,closedate,pipeline,dealstage",
     "dealname,amount,closedate,pipeline,dealstage,hubspot_owner_id,deal_currency_code"},
    {"products", "0-7", "product", "PRODUCT", "products", "crm.objects.products.read", "e-commerce",
     "hs_lastmodifieddate", "name,description,price",
     "name,description,price,hs_sku,hs_folder,hs_cost_of_goods_sold"},
    {"line_items", "0-8", "line_item", "LINE_ITEM", "line items", "crm.objects.line_items.read",
     "e-commerce", "hs_lastmodifieddate", "name,price,quantity",
     "name,description,hs_sku,quantity,price,amount,hs_product_id,hs_line_item_currency_code,"
     "recurringbillingfrequency,hs_recurring_billing_period,hs_recurring_billing_start_date,"
     "hs_tax_rate_group_id,discount,hs_discount_percentage,hs_total_discount"},
    {"quotes", "0-14", "quote", "QUOTE", "quotes", "crm.objects.quotes.read", "e-commerce",
     "hs_lastmodifieddate", "hs_title,hs_expiration_date",
     "hs_title,hs_expiration_date,hs_quote_amount,hs_currency,hs_quote_number,hs_locked,"
     "hs_quote_link,hs_status,hs_esign_enabled,hs_acceptance_method,"
     "hs_esign_num_signers_required,hs_esign_num_signers_completed,hs_payment_enabled,"
     "hs_payment_status,hs_payment_date,hs_net_payment_terms"},
    {"commerce_payments", "0-101", "payment", "COMMERCE_PAYMENT", "payments",
     "crm.objects.commercepayments.read", NULL, "hs_lastmodifieddate",
     "hs_initial_amount,hs_latest_status,hs_currency_code",
     "hs_initial_amount,hs_initiated_date,hs_currency_code,hs_customer_email,hs_fees_amount,"
     "hs_refunds_amount,hs_reference_number,hs_latest_status,hs_payment_method_type,"
     "hs_processor_type,hs_net_amount,hs_payment_source_app,hs_payment_type"},
};

/* HubSpot-defined association types (reference §4.6). `dflt`: used when a seed lists a
 * plain id; `primary`: added for {"id":..,"primary":true}. Ids not in §4.6 (the reverse
 * of payment->contact, company reverses) follow HubSpot's pairing of adjacent ids. */
struct assoc_def {
    int from, to, id, rev, dflt, primary;
    const char *name, *label;
};
static const struct assoc_def assoc_defs[] = {
    {T_CONTACTS, T_COMPANIES, 279, 280, 1, 0, "contact_to_company_unlabeled", NULL},
    {T_CONTACTS, T_COMPANIES, 1, 2, 0, 1, "contact_to_company", "Primary"},
    {T_COMPANIES, T_CONTACTS, 280, 279, 1, 0, "company_to_contact_unlabeled", NULL},
    {T_COMPANIES, T_CONTACTS, 2, 1, 0, 1, "company_to_contact", "Primary"},
    {T_DEALS, T_COMPANIES, 341, 342, 1, 0, "deal_to_company_unlabeled", NULL},
    {T_DEALS, T_COMPANIES, 5, 6, 0, 1, "deal_to_company", "Primary"},
    {T_COMPANIES, T_DEALS, 342, 341, 1, 0, "company_to_deal_unlabeled", NULL},
    {T_COMPANIES, T_DEALS, 6, 5, 0, 1, "company_to_deal", "Primary"},
    {T_DEALS, T_CONTACTS, 3, 4, 1, 0, "deal_to_contact", NULL},
    {T_CONTACTS, T_DEALS, 4, 3, 1, 0, "contact_to_deal", NULL},
    {T_DEALS, T_LINE_ITEMS, 19, 20, 1, 0, "deal_to_line_item", NULL},
    {T_LINE_ITEMS, T_DEALS, 20, 19, 1, 0, "line_item_to_deal", NULL},
    {T_DEALS, T_QUOTES, 63, 64, 1, 0, "deal_to_quote", NULL},
    {T_QUOTES, T_DEALS, 64, 63, 1, 0, "quote_to_deal", NULL},
    {T_QUOTES, T_LINE_ITEMS, 67, 68, 1, 0, "quote_to_line_item", NULL},
    {T_LINE_ITEMS, T_QUOTES, 68, 67, 1, 0, "line_item_to_quote", NULL},
    {T_QUOTES, T_CONTACTS, 69, 70, 1, 0, "quote_to_contact", NULL},
    {T_CONTACTS, T_QUOTES, 70, 69, 1, 0, "contact_to_quote", NULL},
    {T_QUOTES, T_COMPANIES, 71, 72, 1, 0, "quote_to_company", NULL},
    {T_COMPANIES, T_QUOTES, 72, 71, 1, 0, "company_to_quote", NULL},
    {T_DEALS, T_PAYMENTS, 392, 391, 1, 0, "deal_to_payment", NULL},
    {T_PAYMENTS, T_DEALS, 391, 392, 1, 0, "payment_to_deal", NULL},
    {T_PAYMENTS, T_CONTACTS, 387, 388, 1, 0, "payment_to_contact", NULL},
    {T_CONTACTS, T_PAYMENTS, 388, 387, 1, 0, "contact_to_payment", NULL},
    {T_PAYMENTS, T_LINE_ITEMS, 395, 396, 1, 0, "payment_to_line_item", NULL},
    {T_LINE_ITEMS, T_PAYMENTS, 396, 395, 1, 0, "line_item_to_payment", NULL},
    {T_PAYMENTS, T_QUOTES, 397, 398, 1, 0, "payment_to_quote", NULL},
    {T_QUOTES, T_PAYMENTS, 398, 397, 1, 0, "quote_to_payment", NULL},
};
#define NASSOC_DEFS (sizeof(assoc_defs) / sizeof(assoc_defs[0]))

struct hs_link {
    int to_type, ntypes;
    int64_t to_id;
    int type_ids[HS_LINK_TYPES];
};

struct hs_obj {
    int64_t portal, id, created_ms, updated_ms, archived_ms;
    int type, archived;
    struct json_object *props; /* object of string (or null) values */
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
    struct rate_state rate;
    struct hs_portal *next;
};

enum { TOK_PRIVATE, TOK_OAUTH };
struct hs_token {
    struct hs_portal *portal;
    int kind;
    int64_t expires_ms;         /* wall clock; 0 = never */
    struct json_object *scopes; /* array of strings; NULL = every scope */
};

struct hs_app {
    char *client_id, *client_secret, *refresh_token;
    struct hs_portal *portal;
    struct json_object *scopes, *codes;
    struct hs_app *next;
};

struct hs_cb {
    char *id;
    int64_t portal, created_ms, expires_ms, completed_ms;
    int completed, completions, rejected;
    const char *via;
    struct json_object *outputs;
};

/* Chained string-keyed hash (tokens, callbacks). */
struct snode {
    char *key;
    void *val;
    struct snode *next;
};
struct shash {
    struct snode **b;
    size_t nb, n;
};

static struct {
    pthread_rwlock_t lock;
    pthread_mutex_t rate_mu;
    struct hs_portal *portals;
    struct hs_obj **ob; /* object hash */
    size_t onb, on;
    struct shash tokens, cbs;
    struct hs_cb **cb_order;
    size_t ncb, capcb;
    struct hs_app *apps;
    struct json_object *known[NT]; /* property names known per type (set) */
    int ready;
} hs;

/* Switchable behaviours (reference §9). */
struct hs_opts {
    int rate_10s, daily_limit, access_ttl_s, line_items_spaced, order, contact_dupes;
    int cb_done_status, cb_accept_unknown, retry_after, cb_expiry_s;
};
static const struct hs_opts opts_default = {190, 1000000, 1800, 1, 0, 0, 400, 0, 0, 604800};
static struct hs_opts opt = {190, 1000000, 1800, 1, 0, 0, 400, 0, 0, 604800};
static const char *const order_names[] = {"insertion", "reverse", "shuffle"};

static pthread_once_t hs_once = PTHREAD_ONCE_INIT;

/* ---- small helpers ------------------------------------------------------------------- */

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void *shash_get(const struct shash *h, const char *key)
{
    if (!h->nb)
        return NULL;
    for (struct snode *n = h->b[fnv1a(key) & (h->nb - 1)]; n; n = n->next)
        if (strcmp(n->key, key) == 0)
            return n->val;
    return NULL;
}

static int shash_put(struct shash *h, const char *key, void *val)
{
    if (h->n + 1 > h->nb) {
        size_t nb = h->nb ? h->nb * 2 : 64;
        struct snode **b = calloc(nb, sizeof(*b));
        if (!b)
            return -1;
        for (size_t i = 0; i < h->nb; i++) {
            for (struct snode *n = h->b[i], *nx; n; n = nx) {
                nx = n->next;
                size_t k = fnv1a(n->key) & (nb - 1);
                n->next = b[k];
                b[k] = n;
            }
        }
        free(h->b);
        h->b = b;
        h->nb = nb;
    }
    struct snode *n = malloc(sizeof(*n));
    if (!n || !(n->key = strdup(key))) {
        free(n);
        return -1;
    }
    size_t k = fnv1a(key) & (h->nb - 1);
    n->val = val;
    n->next = h->b[k];
    h->b[k] = n;
    h->n++;
    return 0;
}

static void shash_clear(struct shash *h, void (*fr)(void *))
{
    for (size_t i = 0; i < h->nb; i++) {
        for (struct snode *n = h->b[i], *nx; n; n = nx) {
            nx = n->next;
            if (fr)
                fr(n->val);
            free(n->key);
            free(n);
        }
    }
    free(h->b);
    memset(h, 0, sizeof(*h));
}

static struct json_object *jstr(const char *s)
{
    return json_object_new_string(s ? s : "");
}

static void jadd(struct json_object *o, const char *k, struct json_object *v)
{
    json_object_object_add(o, k, v);
}

static struct json_object *jiso(int64_t ms)
{
    char b[40];
    sb_iso8601(ms, b, sizeof(b));
    return jstr(b);
}

static void uuid4(char out[37])
{
    uint64_t a = sb_rand(), b = sb_rand();
    snprintf(out, 37, "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(a >> 32),
             (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xfff,
             (unsigned)((b >> 48) & 0x3fff) | 0x8000, (unsigned long long)(b & 0xffffffffffffULL));
}

static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    if (!s || !*s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < 0)
        return -1;
    *out = v;
    return 0;
}

/* "2024-01-01T00:00:00Z" / "...00.123Z" -> wall ms; -1 on a bad value. */
static int64_t parse_iso(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int ms = 0;
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -1;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (isdigit((unsigned char)*p)) {
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
            digits++;
            p++;
        }
        while (digits++ < 3)
            ms *= 10;
    }
    if (*p != 'Z' || p[1])
        return -1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

static int type_find(const char *s)
{
    if (!s)
        return -1;
    for (int t = 0; t < NT; t++)
        if (strcmp(s, types[t].name) == 0 || strcmp(s, types[t].id) == 0 ||
            strcmp(s, types[t].singular) == 0 || strcmp(s, types[t].assoc_key) == 0)
            return t;
    if (strcmp(s, "line_item") == 0 || strcmp(s, "commerce_payment") == 0)
        return strcmp(s, "line_item") == 0 ? T_LINE_ITEMS : T_PAYMENTS;
    return -1;
}

static const struct assoc_def *assoc_by_id(int type_id)
{
    for (size_t i = 0; i < NASSOC_DEFS; i++)
        if (assoc_defs[i].id == type_id)
            return &assoc_defs[i];
    return NULL;
}

/* ---- errors -------------------------------------------------------------------------- */

/* HubSpot's standard error body (reference §6). `extra` (may be NULL) is merged in. */
static void hs_error(struct sb_response *resp, int status, const char *category,
                     const char *message, struct json_object *extra)
{
    char cid[37];
    struct json_object *o = json_object_new_object();
    uuid4(cid);
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

static void hs_errorf(struct sb_response *resp, int status, const char *category, const char *fmt,
                      ...) __attribute__((format(printf, 4, 5)));
static void hs_errorf(struct sb_response *resp, int status, const char *category, const char *fmt,
                      ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    hs_error(resp, status, category, msg, NULL);
}

/* ---- state lifecycle ----------------------------------------------------------------- */

static void known_add_list(int t, const char *csv)
{
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", csv);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        jadd(hs.known[t], tok, NULL);
}

static void known_init(void)
{
    for (int t = 0; t < NT; t++) {
        json_object_put(hs.known[t]);
        hs.known[t] = json_object_new_object();
        known_add_list(t, types[t].catalogue);
        known_add_list(t, types[t].defaults);
        known_add_list(t, "hs_object_id,createdate");
        known_add_list(t, types[t].modkey);
    }
}

static void hs_init_once(void)
{
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&hs.lock, &a);
    pthread_rwlockattr_destroy(&a);
    pthread_mutex_init(&hs.rate_mu, NULL);
    known_init();
    hs.ready = 1;
}

static void hs_init(void)
{
    pthread_once(&hs_once, hs_init_once);
}

static void obj_free(struct hs_obj *o)
{
    json_object_put(o->props);
    free(o->links);
    free(o);
}

static void token_free(void *p)
{
    struct hs_token *t = p;
    json_object_put(t->scopes);
    free(t);
}

static void cb_free(void *p)
{
    struct hs_cb *c = p;
    free(c->id);
    json_object_put(c->outputs);
    free(c);
}

static void reset_locked(void)
{
    for (size_t i = 0; i < hs.onb; i++)
        for (struct hs_obj *o = hs.ob[i], *nx; o; o = nx) {
            nx = o->hnext;
            obj_free(o);
        }
    free(hs.ob);
    hs.ob = NULL;
    hs.onb = hs.on = 0;
    for (struct hs_portal *p = hs.portals, *nx; p; p = nx) {
        nx = p->next;
        for (int t = 0; t < NT; t++)
            free(p->list[t]);
        json_object_put(p->tax_rates);
        free(p->rate.ts);
        free(p);
    }
    hs.portals = NULL;
    for (struct hs_app *a = hs.apps, *nx; a; a = nx) {
        nx = a->next;
        free(a->client_id);
        free(a->client_secret);
        free(a->refresh_token);
        json_object_put(a->scopes);
        json_object_put(a->codes);
        free(a);
    }
    hs.apps = NULL;
    shash_clear(&hs.tokens, token_free);
    shash_clear(&hs.cbs, cb_free);
    free(hs.cb_order);
    hs.cb_order = NULL;
    hs.ncb = hs.capcb = 0;
    known_init();
}

void hubspot_reset(void)
{
    hs_init();
    pthread_rwlock_wrlock(&hs.lock);
    reset_locked();
    int rate = opt.rate_10s;
    opt = opts_default;
    opt.rate_10s = rate; /* owned by the core settings, re-pushed after a reset */
    pthread_rwlock_unlock(&hs.lock);
}

void hubspot_set_rate_limit(int per_10s)
{
    hs_init();
    pthread_rwlock_wrlock(&hs.lock);
    pthread_mutex_lock(&hs.rate_mu);
    opt.rate_10s = per_10s < 0 ? 0 : per_10s;
    pthread_mutex_unlock(&hs.rate_mu);
    pthread_rwlock_unlock(&hs.lock);
}

/* ---- object store -------------------------------------------------------------------- */

static size_t obj_slot(int64_t portal, int type, int64_t id, size_t nb)
{
    uint64_t h = (uint64_t)portal * 0x9E3779B97F4A7C15ULL ^ (uint64_t)id * 0xC2B2AE3D27D4EB4FULL ^
                 (uint64_t)type * 0x165667B19E3779F9ULL;
    h ^= h >> 29;
    return (size_t)(h & (nb - 1));
}

static struct hs_obj *obj_get(int64_t portal, int type, int64_t id)
{
    if (!hs.onb)
        return NULL;
    for (struct hs_obj *o = hs.ob[obj_slot(portal, type, id, hs.onb)]; o; o = o->hnext)
        if (o->id == id && o->type == type && o->portal == portal)
            return o;
    return NULL;
}

static int obj_insert(struct hs_portal *p, struct hs_obj *o)
{
    if (hs.on + 1 > hs.onb) {
        size_t nb = hs.onb ? hs.onb * 2 : 1024;
        struct hs_obj **b = calloc(nb, sizeof(*b));
        if (!b)
            return -1;
        for (size_t i = 0; i < hs.onb; i++)
            for (struct hs_obj *x = hs.ob[i], *nx; x; x = nx) {
                nx = x->hnext;
                size_t k = obj_slot(x->portal, x->type, x->id, nb);
                x->hnext = b[k];
                b[k] = x;
            }
        free(hs.ob);
        hs.ob = b;
        hs.onb = nb;
    }
    int t = o->type;
    if (p->nlist[t] == p->caplist[t]) {
        size_t nc = p->caplist[t] ? p->caplist[t] * 2 : 16;
        struct hs_obj **l = realloc(p->list[t], nc * sizeof(*l));
        if (!l)
            return -1;
        p->list[t] = l;
        p->caplist[t] = nc;
    }
    size_t lo = 0, hi = p->nlist[t];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (p->list[t][mid]->id < o->id)
            lo = mid + 1;
        else
            hi = mid;
    }
    memmove(&p->list[t][lo + 1], &p->list[t][lo], (p->nlist[t] - lo) * sizeof(void *));
    p->list[t][lo] = o;
    p->nlist[t]++;
    size_t k = obj_slot(o->portal, o->type, o->id, hs.onb);
    o->hnext = hs.ob[k];
    hs.ob[k] = o;
    hs.on++;
    return 0;
}

/* First index in a portal's sorted list with id >= min_id. */
static size_t list_lower_bound(const struct hs_portal *p, int t, int64_t min_id)
{
    size_t lo = 0, hi = p->nlist[t];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (p->list[t][mid]->id < min_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int link_add(struct hs_obj *o, int to_type, int64_t to_id, int type_id)
{
    for (int i = 0; i < o->nlinks; i++) {
        struct hs_link *l = &o->links[i];
        if (l->to_type != to_type || l->to_id != to_id)
            continue;
        for (int j = 0; j < l->ntypes; j++)
            if (l->type_ids[j] == type_id)
                return 0;
        if (l->ntypes < HS_LINK_TYPES)
            l->type_ids[l->ntypes++] = type_id;
        return 0;
    }
    if (o->nlinks == o->caplinks) {
        int nc = o->caplinks ? o->caplinks * 2 : 4;
        struct hs_link *l = realloc(o->links, (size_t)nc * sizeof(*l));
        if (!l)
            return -1;
        o->links = l;
        o->caplinks = nc;
    }
    struct hs_link *l = &o->links[o->nlinks++];
    memset(l, 0, sizeof(*l));
    l->to_type = to_type;
    l->to_id = to_id;
    l->type_ids[l->ntypes++] = type_id;
    return 0;
}

/* ---- rendering ----------------------------------------------------------------------- */

struct names {
    int n;
    char *v[HS_MAX_NAMES];
    char *buf;
};

/* Split a comma list (owned copy) into unique, non-empty, trimmed names. */
static void names_parse(struct names *ns, char *csv)
{
    ns->n = 0;
    ns->buf = csv;
    if (!csv)
        return;
    for (char *save = NULL, *tok = strtok_r(csv, ",", &save); tok && ns->n < HS_MAX_NAMES;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        size_t l = strlen(tok);
        while (l && tok[l - 1] == ' ')
            tok[--l] = '\0';
        int dup = !*tok;
        for (int i = 0; i < ns->n && !dup; i++)
            dup = strcmp(ns->v[i], tok) == 0;
        if (!dup)
            ns->v[ns->n++] = tok;
    }
}

static void prop_put(struct json_object *out, const struct hs_obj *o, const char *name)
{
    struct json_object *v;
    if (json_object_object_get_ex(o->props, name, &v)) {
        if (v && json_object_is_type(v, json_type_string))
            jadd(out, name,
                 json_object_new_string_len(json_object_get_string(v),
                                            json_object_get_string_len(v)));
        else
            jadd(out, name, NULL);
        return;
    }
    char buf[32];
    if (strcmp(name, "hs_object_id") == 0) {
        snprintf(buf, sizeof(buf), "%lld", (long long)o->id);
        jadd(out, name, jstr(buf));
    } else if (strcmp(name, "createdate") == 0) {
        jadd(out, name, jiso(o->created_ms));
    } else if (strcmp(name, types[o->type].modkey) == 0) {
        jadd(out, name, jiso(o->updated_ms));
    } else if (json_object_object_get_ex(hs.known[o->type], name, NULL)) {
        jadd(out, name, NULL); /* §9 #1: known but empty -> null */
    }
}

static struct json_object *render_props(const struct hs_obj *o, const struct names *props, int all)
{
    struct json_object *out = json_object_new_object();
    if (all) {
        json_object_object_foreach(o->props, k, v)
        {
            (void)v;
            prop_put(out, o, k);
        }
    } else if (props && props->n) {
        for (int i = 0; i < props->n; i++)
            prop_put(out, o, props->v[i]);
    } else {
        char buf[512];
        struct names d;
        snprintf(buf, sizeof(buf), "%s", types[o->type].defaults);
        names_parse(&d, buf);
        for (int i = 0; i < d.n; i++)
            prop_put(out, o, d.v[i]);
    }
    prop_put(out, o, "hs_object_id");
    prop_put(out, o, "createdate");
    prop_put(out, o, types[o->type].modkey);
    return out;
}

static const char *assoc_key(int t)
{
    if (t == T_LINE_ITEMS && !opt.line_items_spaced)
        return "line_items";
    return types[t].assoc_key;
}

/* Indexes of o's links to `to`, in the configured order (§9 #4). Returns the count. */
static int links_ordered(const struct hs_obj *o, int to, int *idx)
{
    int n = 0;
    for (int i = 0; i < o->nlinks; i++)
        if (o->links[i].to_type == to)
            idx[n++] = i;
    if (opt.order == 1) {
        for (int i = 0; i < n / 2; i++) {
            int t = idx[i];
            idx[i] = idx[n - 1 - i];
            idx[n - 1 - i] = t;
        }
    } else if (opt.order == 2) {
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(sb_rand() % (uint64_t)(i + 1)), t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
    }
    return n;
}

/* v3 embedded associations (§4.3): one entry per (target, association type). */
static struct json_object *render_assoc_v3(const struct hs_obj *o, const struct names *req)
{
    struct json_object *out = NULL;
    int seen[NT] = {0};
    int *idx = o->nlinks ? malloc((size_t)o->nlinks * sizeof(int)) : NULL;
    for (int i = 0; i < req->n; i++) {
        int t = type_find(req->v[i]);
        if (t < 0 || seen[t] || !idx)
            continue; /* unknown association types are ignored */
        seen[t] = 1;
        int n = links_ordered(o, t, idx);
        if (!n)
            continue;
        struct json_object *res = json_object_new_array();
        for (int k = 0; k < n; k++) {
            const struct hs_link *l = &o->links[idx[k]];
            char id[32];
            snprintf(id, sizeof(id), "%lld", (long long)l->to_id);
            for (int j = 0; j < l->ntypes; j++) {
                const struct assoc_def *d = assoc_by_id(l->type_ids[j]);
                const char *name = d ? d->name : "unknown";
                for (int rep = 0; rep < 2; rep++) {
                    char nm[96];
                    if (rep == 1) {
                        if (t != T_CONTACTS || !opt.contact_dupes || strstr(name, "_unlabeled"))
                            break;
                        snprintf(nm, sizeof(nm), "%s_unlabeled", name);
                    } else {
                        snprintf(nm, sizeof(nm), "%s", name);
                    }
                    struct json_object *e = json_object_new_object();
                    jadd(e, "id", jstr(id));
                    jadd(e, "type", jstr(nm));
                    json_object_array_add(res, e);
                }
            }
        }
        struct json_object *wrap = json_object_new_object();
        jadd(wrap, "results", res);
        if (!out)
            out = json_object_new_object();
        jadd(out, assoc_key(t), wrap);
    }
    free(idx);
    return out;
}

static struct json_object *render_obj(const struct hs_obj *o, const struct names *props,
                                      const struct names *assoc, const struct names *hist)
{
    struct json_object *r = json_object_new_object();
    char id[32];
    snprintf(id, sizeof(id), "%lld", (long long)o->id);
    jadd(r, "id", jstr(id));
    jadd(r, "properties", render_props(o, props, 0));
    if (hist && hist->n) {
        struct json_object *h = json_object_new_object();
        for (int i = 0; i < hist->n; i++) {
            struct json_object *v;
            if (!json_object_object_get_ex(o->props, hist->v[i], &v) ||
                !json_object_is_type(v, json_type_string))
                continue;
            struct json_object *e = json_object_new_object();
            jadd(e, "value", jstr(json_object_get_string(v)));
            jadd(e, "timestamp", jiso(o->updated_ms));
            jadd(e, "sourceType", jstr("API"));
            struct json_object *arr = json_object_new_array();
            json_object_array_add(arr, e);
            jadd(h, hist->v[i], arr);
        }
        jadd(r, "propertiesWithHistory", h);
    }
    jadd(r, "createdAt", jiso(o->created_ms));
    jadd(r, "updatedAt", jiso(o->updated_ms));
    jadd(r, "archived", json_object_new_boolean(o->archived));
    if (o->archived)
        jadd(r, "archivedAt", jiso(o->archived_ms));
    if (assoc && assoc->n) {
        struct json_object *a = render_assoc_v3(o, assoc);
        if (a)
            jadd(r, "associations", a);
    }
    return r;
}

/* ---- seeding ------------------------------------------------------------------------- */

/* Seed error: format into err and return -1 (keeps the many checks below one line). */
static int seed_fail(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int seed_fail(char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
    return -1;
}

static struct hs_portal *portal_find(int64_t id)
{
    for (struct hs_portal *p = hs.portals; p; p = p->next)
        if (p->id == id)
            return p;
    return NULL;
}

static struct hs_portal *portal_get(int64_t id)
{
    struct hs_portal *p = portal_find(id);
    if (p)
        return p;
    p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->id = id;
    p->tax_rates = json_object_new_object();
    p->next = hs.portals;
    hs.portals = p;
    return p;
}

/* A record id given as a digit string or a non-negative integer. */
static int json_id(struct json_object *v, int64_t *out)
{
    if (json_object_is_type(v, json_type_int)) {
        int64_t x = json_object_get_int64(v);
        if (x < 0)
            return -1;
        *out = x;
        return 0;
    }
    if (json_object_is_type(v, json_type_string))
        return parse_i64(json_object_get_string(v), out);
    return -1;
}

static int seed_time(struct json_object *o, const char *key, int64_t dflt, int64_t *out, char *err,
                     size_t errsz)
{
    struct json_object *v;
    *out = dflt;
    if (!json_object_object_get_ex(o, key, &v) || !v)
        return 0;
    if (!json_object_is_type(v, json_type_string) ||
        (*out = parse_iso(json_object_get_string(v))) < 0) {
        snprintf(err, errsz, "'%s' must be an ISO-8601 UTC time like 2024-01-01T00:00:00Z", key);
        return -1;
    }
    return 0;
}

struct pending_link {
    struct hs_obj *from;
    int to_type, ntypes;
    int64_t to_id;
    int type_ids[HS_LINK_TYPES];
};

struct pending {
    struct pending_link *v;
    size_t n, cap;
};

static int pending_add(struct pending *pd, const struct pending_link *l)
{
    if (pd->n == pd->cap) {
        size_t nc = pd->cap ? pd->cap * 2 : 64;
        struct pending_link *v = realloc(pd->v, nc * sizeof(*v));
        if (!v)
            return -1;
        pd->v = v;
        pd->cap = nc;
    }
    pd->v[pd->n++] = *l;
    return 0;
}

/* Parse one object's "associations" into pending links (resolved once every object of
 * the portal exists). Entries: "301", 301, or {"id":"301","types":[3],"primary":true}. */
static int seed_links(struct hs_obj *o, struct json_object *assoc, struct pending *pd, char *err,
                      size_t errsz)
{
    if (!json_object_is_type(assoc, json_type_object)) {
        snprintf(err, errsz, "'associations' must be an object of arrays");
        return -1;
    }
    json_object_object_foreach(assoc, tname, arr)
    {
        int to = type_find(tname);
        if (to < 0 || !json_object_is_type(arr, json_type_array)) {
            snprintf(err, errsz, "associations: unknown type '%s' or not an array", tname);
            return -1;
        }
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
            struct json_object *e = json_object_array_get_idx(arr, i), *v;
            struct pending_link l = {.from = o, .to_type = to};
            int primary = 0;
            if (json_object_is_type(e, json_type_object)) {
                if (!json_object_object_get_ex(e, "id", &v) || json_id(v, &l.to_id)) {
                    snprintf(err, errsz, "associations.%s[%zu]: bad id", tname, i);
                    return -1;
                }
                if (json_object_object_get_ex(e, "primary", &v))
                    primary =
                        json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
                if (json_object_object_get_ex(e, "types", &v)) {
                    if (!json_object_is_type(v, json_type_array))
                        return seed_fail(err, errsz, "'types' must be an array");
                    for (size_t k = 0; k < json_object_array_length(v) && l.ntypes < HS_LINK_TYPES;
                         k++) {
                        struct json_object *ti = json_object_array_get_idx(v, k);
                        const struct assoc_def *d =
                            json_object_is_type(ti, json_type_int)
                                ? assoc_by_id((int)json_object_get_int64(ti))
                                : NULL;
                        if (!d || d->from != o->type || d->to != to) {
                            snprintf(err, errsz,
                                     "associations.%s[%zu]: type id not valid for "
                                     "%s -> %s",
                                     tname, i, types[o->type].name, types[to].name);
                            return -1;
                        }
                        l.type_ids[l.ntypes++] = d->id;
                    }
                }
            } else if (json_id(e, &l.to_id)) {
                snprintf(err, errsz, "associations.%s[%zu]: bad id", tname, i);
                return -1;
            }
            for (size_t k = 0; k < NASSOC_DEFS && !l.ntypes; k++)
                if (assoc_defs[k].from == o->type && assoc_defs[k].to == to && assoc_defs[k].dflt)
                    l.type_ids[l.ntypes++] = assoc_defs[k].id;
            for (size_t k = 0; k < NASSOC_DEFS && primary; k++)
                if (assoc_defs[k].from == o->type && assoc_defs[k].to == to &&
                    assoc_defs[k].primary && l.ntypes < HS_LINK_TYPES)
                    l.type_ids[l.ntypes++] = assoc_defs[k].id;
            if (!l.ntypes) {
                snprintf(err, errsz, "no association type defined for %s -> %s",
                         types[o->type].name, types[to].name);
                return -1;
            }
            if (pending_add(pd, &l))
                return seed_fail(err, errsz, "out of memory");
        }
    }
    return 0;
}

static int seed_object(struct hs_portal *p, int t, struct json_object *e, struct pending *pd,
                       char *err, size_t errsz)
{
    struct json_object *v, *props = NULL;
    int64_t id;
    if (!json_object_is_type(e, json_type_object) || !json_object_object_get_ex(e, "id", &v) ||
        json_id(v, &id)) {
        snprintf(err, errsz, "%s: every object needs a numeric \"id\"", types[t].name);
        return -1;
    }
    struct hs_obj *o = obj_get(p->id, t, id);
    int fresh = !o;
    if (fresh) {
        o = calloc(1, sizeof(*o));
        if (!o)
            return seed_fail(err, errsz, "out of memory");
        o->portal = p->id;
        o->type = t;
        o->id = id;
    }
    props = json_object_new_object();
    if (json_object_object_get_ex(e, "properties", &v)) {
        if (!json_object_is_type(v, json_type_object)) {
            snprintf(err, errsz, "%s %lld: 'properties' must be an object", types[t].name,
                     (long long)id);
            goto fail;
        }
        json_object_object_foreach(v, k, pv)
        {
            struct json_object *sv = NULL;
            if (!pv)
                sv = NULL;
            else if (json_object_is_type(pv, json_type_string))
                sv = jstr(json_object_get_string(pv));
            else if (json_object_is_type(pv, json_type_int) ||
                     json_object_is_type(pv, json_type_double) ||
                     json_object_is_type(pv, json_type_boolean))
                sv = jstr(json_object_to_json_string_ext(pv, JSON_C_TO_STRING_PLAIN));
            else {
                snprintf(err, errsz,
                         "%s %lld: property '%s' must be a string, number, "
                         "boolean or null",
                         types[t].name, (long long)id, k);
                goto fail;
            }
            jadd(props, k, sv);
            jadd(hs.known[t], k, NULL);
        }
    }
    int64_t created, updated;
    if (seed_time(e, "createdAt", 1704067200000LL, &created, err, errsz) ||
        seed_time(e, "updatedAt", created, &updated, err, errsz) ||
        seed_time(e, "archivedAt", updated, &o->archived_ms, err, errsz))
        goto fail;
    o->archived = json_object_object_get_ex(e, "archived", &v) &&
                  json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
    o->created_ms = created;
    o->updated_ms = updated;
    json_object_put(o->props);
    o->props = props;
    props = NULL;
    if (fresh && obj_insert(p, o) != 0) {
        snprintf(err, errsz, "out of memory");
        obj_free(o);
        return -1;
    }
    fresh = 0;
    if (json_object_object_get_ex(e, "associations", &v) && seed_links(o, v, pd, err, errsz))
        return -1;
    return 0;
fail:
    json_object_put(props);
    if (fresh)
        obj_free(o);
    return -1;
}

static int seed_strings(struct json_object *v, struct json_object **out, const char *what,
                        char *err, size_t errsz)
{
    if (!v)
        return 0;
    if (!json_object_is_type(v, json_type_array)) {
        snprintf(err, errsz, "'%s' must be an array of strings", what);
        return -1;
    }
    struct json_object *a = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(v); i++) {
        struct json_object *s = json_object_array_get_idx(v, i);
        if (!json_object_is_type(s, json_type_string)) {
            json_object_put(a);
            snprintf(err, errsz, "'%s' must be an array of strings", what);
            return -1;
        }
        json_object_array_add(a, jstr(json_object_get_string(s)));
    }
    json_object_put(*out);
    *out = a;
    return 0;
}

static int token_add(struct hs_portal *p, const char *tok, int kind, int64_t expires,
                     struct json_object *scopes)
{
    struct hs_token *t = shash_get(&hs.tokens, tok);
    if (!t) {
        t = calloc(1, sizeof(*t));
        if (!t || shash_put(&hs.tokens, tok, t)) {
            free(t);
            json_object_put(scopes);
            return -1;
        }
    }
    json_object_put(t->scopes);
    t->portal = p;
    t->kind = kind;
    t->expires_ms = expires;
    t->scopes = scopes;
    return 0;
}

static struct hs_cb *cb_register(const char *id, int64_t portal, int64_t created, int64_t expires)
{
    struct hs_cb *c = shash_get(&hs.cbs, id);
    if (c) {
        c->portal = portal;
        c->created_ms = created;
        c->expires_ms = expires;
        return c;
    }
    if (hs.ncb >= HS_CALLBACKS_MAX)
        return NULL;
    if (hs.ncb == hs.capcb) {
        size_t nc = hs.capcb ? hs.capcb * 2 : 256;
        struct hs_cb **v = realloc(hs.cb_order, nc * sizeof(*v));
        if (!v)
            return NULL;
        hs.cb_order = v;
        hs.capcb = nc;
    }
    c = calloc(1, sizeof(*c));
    if (!c || !(c->id = strdup(id)) || shash_put(&hs.cbs, id, c)) {
        if (c)
            free(c->id);
        free(c);
        return NULL;
    }
    c->portal = portal;
    c->created_ms = created;
    c->expires_ms = expires;
    hs.cb_order[hs.ncb++] = c;
    return c;
}

static int seed_portal_extras(struct hs_portal *p, struct json_object *po, char *err, size_t errsz)
{
    struct json_object *v;
    if (json_object_object_get_ex(po, "tokens", &v)) {
        if (!json_object_is_type(v, json_type_array))
            return seed_fail(err, errsz, "'tokens' must be an array");
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            struct json_object *e = json_object_array_get_idx(v, i), *tv = NULL, *sv = NULL;
            struct json_object *scopes = NULL;
            int64_t exp = 0;
            if (json_object_is_type(e, json_type_string))
                tv = e;
            else if (json_object_is_type(e, json_type_object)) {
                json_object_object_get_ex(e, "token", &tv);
                json_object_object_get_ex(e, "scopes", &sv);
                if (seed_time(e, "expiresAt", 0, &exp, err, errsz))
                    return -1;
            }
            if (!tv || !json_object_is_type(tv, json_type_string) ||
                json_object_get_string_len(tv) == 0 ||
                json_object_get_string_len(tv) > HS_TOKEN_MAX)
                return seed_fail(err, errsz, "tokens[%zu]: need a \"token\" string", i);
            if (seed_strings(sv, &scopes, "scopes", err, errsz))
                return -1;
            if (token_add(p, json_object_get_string(tv), TOK_PRIVATE, exp, scopes))
                return seed_fail(err, errsz, "out of memory");
        }
    }
    if (json_object_object_get_ex(po, "oauth_apps", &v)) {
        if (!json_object_is_type(v, json_type_array))
            return seed_fail(err, errsz, "'oauth_apps' must be an array");
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            struct json_object *e = json_object_array_get_idx(v, i), *x;
            const char *f[3] = {"client_id", "client_secret", "refresh_token"};
            const char *val[3] = {NULL, NULL, NULL};
            for (int k = 0; k < 3; k++) {
                if (!json_object_is_type(e, json_type_object) ||
                    !json_object_object_get_ex(e, f[k], &x) ||
                    !json_object_is_type(x, json_type_string))
                    return seed_fail(err, errsz, "oauth_apps[%zu]: need string '%s'", i, f[k]);
                val[k] = json_object_get_string(x);
            }
            struct hs_app *a = calloc(1, sizeof(*a));
            if (!a)
                return seed_fail(err, errsz, "out of memory");
            a->client_id = strdup(val[0]);
            a->client_secret = strdup(val[1]);
            a->refresh_token = strdup(val[2]);
            a->portal = p;
            a->next = hs.apps;
            hs.apps = a;
            struct json_object *sv = NULL, *cv = NULL;
            json_object_object_get_ex(e, "scopes", &sv);
            json_object_object_get_ex(e, "auth_codes", &cv);
            if (seed_strings(sv, &a->scopes, "scopes", err, errsz) ||
                seed_strings(cv, &a->codes, "auth_codes", err, errsz))
                return -1;
        }
    }
    if (json_object_object_get_ex(po, "tax_rates", &v)) {
        if (!json_object_is_type(v, json_type_array))
            return seed_fail(err, errsz, "'tax_rates' must be an array");
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            struct json_object *e = json_object_array_get_idx(v, i), *x;
            int64_t id;
            if (!json_object_is_type(e, json_type_object) ||
                !json_object_object_get_ex(e, "id", &x) || json_id(x, &id))
                return seed_fail(err, errsz, "tax_rates[%zu]: need a numeric id", i);
            char ids[32];
            snprintf(ids, sizeof(ids), "%lld", (long long)id);
            struct json_object *rec = NULL;
            if (json_object_deep_copy(e, &rec, NULL) != 0)
                return seed_fail(err, errsz, "out of memory");
            jadd(rec, "id", jstr(ids));
            if (!json_object_object_get_ex(rec, "createdAt", NULL))
                jadd(rec, "createdAt", jiso(1704067200000LL));
            if (!json_object_object_get_ex(rec, "updatedAt", NULL))
                jadd(rec, "updatedAt", jiso(1704067200000LL));
            jadd(p->tax_rates, ids, rec);
        }
    }
    if (json_object_object_get_ex(po, "callbacks", &v)) {
        if (!json_object_is_type(v, json_type_array))
            return seed_fail(err, errsz, "'callbacks' must be an array");
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            struct json_object *e = json_object_array_get_idx(v, i), *x = e;
            int64_t now = sb_now_ms(), created = now, exp;
            if (json_object_is_type(e, json_type_object)) {
                json_object_object_get_ex(e, "callbackId", &x);
                if (seed_time(e, "createdAt", now, &created, err, errsz))
                    return -1;
            }
            if (!x || !json_object_is_type(x, json_type_string) ||
                json_object_get_string_len(x) == 0)
                return seed_fail(err, errsz, "callbacks[%zu]: need a callbackId string", i);
            exp = created + (int64_t)opt.cb_expiry_s * 1000;
            if (json_object_is_type(e, json_type_object) &&
                seed_time(e, "expiresAt", exp, &exp, err, errsz))
                return -1;
            if (!cb_register(json_object_get_string(x), p->id, created, exp))
                return seed_fail(err, errsz, "cannot register callback");
        }
    }
    return 0;
}

static int resolve_links(struct hs_portal *p, struct pending *pd, char *err, size_t errsz)
{
    for (size_t i = 0; i < pd->n; i++) {
        struct pending_link *l = &pd->v[i];
        struct hs_obj *to = obj_get(p->id, l->to_type, l->to_id);
        if (!to) {
            snprintf(err, errsz, "%s %lld is associated with %s %lld, which does not exist",
                     types[l->from->type].name, (long long)l->from->id, types[l->to_type].name,
                     (long long)l->to_id);
            return -1;
        }
        for (int k = 0; k < l->ntypes; k++) {
            const struct assoc_def *d = assoc_by_id(l->type_ids[k]);
            if (link_add(l->from, l->to_type, l->to_id, d->id) ||
                link_add(to, l->from->type, l->from->id, d->rev))
                return seed_fail(err, errsz, "out of memory");
        }
    }
    return 0;
}

static int seed_portal(struct json_object *po, char *err, size_t errsz)
{
    struct json_object *v;
    int64_t pid;
    struct pending pd = {0};
    int rc = -1;
    if (!json_object_is_type(po, json_type_object) ||
        !json_object_object_get_ex(po, "portalId", &v) || json_id(v, &pid)) {
        snprintf(err, errsz, "every portal needs a numeric \"portalId\"");
        return -1;
    }
    struct hs_portal *p = portal_get(pid);
    if (!p)
        return seed_fail(err, errsz, "out of memory");
    if (seed_portal_extras(p, po, err, errsz))
        goto out;
    if (json_object_object_get_ex(po, "objects", &v)) {
        if (!json_object_is_type(v, json_type_object)) {
            snprintf(err, errsz, "'objects' must be an object keyed by object type");
            goto out;
        }
        json_object_object_foreach(v, tname, arr)
        {
            int t = type_find(tname);
            if (t < 0 || !json_object_is_type(arr, json_type_array)) {
                snprintf(err, errsz, "objects: unknown type '%s' or not an array", tname);
                goto out;
            }
            for (size_t i = 0; i < json_object_array_length(arr); i++)
                if (seed_object(p, t, json_object_array_get_idx(arr, i), &pd, err, errsz))
                    goto out;
        }
    }
    rc = resolve_links(p, &pd, err, errsz);
out:
    free(pd.v);
    return rc;
}

int hubspot_seed(struct json_object *doc, char *errstr, size_t errsz)
{
    struct json_object *h, *v;
    char err[256] = "";
    int rc = 0;
    hs_init();
    if (!json_object_object_get_ex(doc, "hubspot", &h))
        return 0;
    if (!json_object_is_type(h, json_type_object)) {
        snprintf(errstr, errsz, "hubspot: must be an object");
        return -1;
    }
    if (json_object_object_get_ex(h, "options", &v) && hubspot_configure(v, errstr, errsz) != 0)
        return -1;
    pthread_rwlock_wrlock(&hs.lock);
    if (json_object_object_get_ex(h, "portals", &v)) {
        if (!json_object_is_type(v, json_type_array)) {
            snprintf(err, sizeof(err), "'portals' must be an array");
            rc = -1;
        }
        for (size_t i = 0; rc == 0 && i < json_object_array_length(v); i++)
            rc = seed_portal(json_object_array_get_idx(v, i), err, sizeof(err));
    }
    pthread_rwlock_unlock(&hs.lock);
    if (rc)
        snprintf(errstr, errsz, "hubspot: %s", err);
    return rc;
}

/* ---- authentication, rate limits, scopes -------------------------------------------- */

static const char hs_auth_msg[] =
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
    const struct hs_token *t = strlen(tok) <= HS_TOKEN_MAX ? shash_get(&hs.tokens, tok) : NULL;
    if (!t) {
        hs_error(resp, 401, "INVALID_AUTHENTICATION", hs_auth_msg, NULL);
        return NULL;
    }
    int64_t now = sb_now_ms();
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
    uuid4(cid);
    uuid4(rid);
    struct json_object *o = json_object_new_object();
    jadd(o, "status", jstr("error"));
    jadd(o, "message", jstr(msg));
    jadd(o, "errorType", jstr("RATE_LIMIT"));
    jadd(o, "correlationId", jstr(cid));
    jadd(o, "policyName", jstr(policy));
    jadd(o, "requestId", jstr(rid));
    if (opt.retry_after && retry_ms > 0)
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
    int limit = opt.rate_10s, daily_limit = opt.daily_limit;
    int64_t now = sb_mono_ms(), day = sb_now_ms() / 86400000;
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
                 86400000 - sb_now_ms() % 86400000);
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
    R_OAUTH
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
    } else if (seg_is(s, n, 0, "tax-rates") && seg_is(s, n, 1, "v1") &&
               seg_is(s, n, 2, "tax-rates")) {
        if (n == 3)
            *r = (struct route){R_TAX_LIST, "GET", NULL, NULL, NULL};
        else if (n == 4)
            *r = (struct route){R_TAX_ONE, "GET", NULL, NULL, s[3]};
    } else if (seg_is(s, n, 0, "oauth") && n == 3 && seg_is(s, n, 2, "token") &&
               (seg_is(s, n, 1, "v1") || seg_is(s, n, 1, "v3") || is_version(s[1]))) {
        *r = (struct route){R_OAUTH, "POST", NULL, NULL, NULL};
    }
}

/* ---- CRM handlers (caller holds hs.lock for reading) --------------------------------- */

static int query_names(const struct sb_request *req, const char *key, struct names *ns)
{
    names_parse(ns, sb_req_query_join(req, key));
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
        struct json_object *v;
        struct hs_obj *o = p->list[t][i];
        if (json_object_object_get_ex(o->props, prop, &v) &&
            json_object_is_type(v, json_type_string) &&
            (strcmp(prop, "email") == 0 ? strcasecmp(json_object_get_string(v), value)
                                        : strcmp(json_object_get_string(v), value)) == 0)
            return o;
    }
    return NULL;
}

static struct hs_obj *lookup(struct hs_portal *p, int t, const char *id, const char *id_prop)
{
    int64_t n;
    if (id_prop && strcmp(id_prop, "hs_object_id") != 0)
        return find_by_property(p, t, id_prop, id);
    return parse_i64(id, &n) == 0 ? obj_get(p->id, t, n) : NULL;
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
    sb_resp_json(resp, 200, render_obj(o, &props, &assoc, &hist));
    free(props.buf);
    free(assoc.buf);
    free(hist.buf);
}

static void paging_next(struct json_object *out, const struct sb_request *req, const char *after)
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

static int limit_param(const struct sb_request *req, int dflt, int max, int *out,
                       struct sb_response *resp)
{
    const char *l = sb_req_query(req, "limit");
    int64_t v = dflt;
    if (l && (parse_i64(l, &v) != 0 || v < 1)) {
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
    if (limit_param(req, 10, HS_LIST_LIMIT_MAX, &limit, resp))
        return;
    if (a && parse_i64(a, &after) != 0) {
        hs_errorf(resp, 400, "VALIDATION_ERROR", "Invalid 'after' cursor: %s", a);
        return;
    }
    struct names props, assoc;
    query_names(req, "properties", &props);
    query_names(req, "associations", &assoc);
    struct json_object *out = json_object_new_object(), *res = json_object_new_array();
    int n = 0;
    size_t i = list_lower_bound(p, t, after);
    for (; i < p->nlist[t]; i++) {
        struct hs_obj *o = p->list[t][i];
        if (o->archived != archived)
            continue;
        if (n == limit)
            break;
        json_object_array_add(res, render_obj(o, &props, &assoc, NULL));
        n++;
    }
    jadd(out, "results", res);
    if (i < p->nlist[t]) {
        char next[32];
        snprintf(next, sizeof(next), "%lld", (long long)p->list[t][i]->id);
        paging_next(out, req, next);
    }
    free(props.buf);
    free(assoc.buf);
    sb_resp_json(resp, 200, out);
}

static struct json_object *parse_json_body(const struct sb_request *req, struct sb_response *resp)
{
    struct json_tokener *tok = json_tokener_new();
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
        json_tokener_free(tok);
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
    names_parse(ns, buf);
    return 0;
}

static void h_batch_read(struct hs_portal *p, int t, const struct sb_request *req,
                         struct sb_response *resp)
{
    struct json_object *body = parse_json_body(req, resp), *inputs, *v;
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
    struct json_object *results = json_object_new_array(), *missing = json_object_new_array();
    struct hs_obj **done = calloc(n ? n : 1, sizeof(*done));
    size_t ndone = 0;
    for (size_t i = 0; i < n; i++) {
        struct json_object *in = json_object_array_get_idx(inputs, i), *idv;
        const char *id;
        char num[32];
        if (!json_object_is_type(in, json_type_object) ||
            !json_object_object_get_ex(in, "id", &idv) ||
            !(json_object_is_type(idv, json_type_string) ||
              json_object_is_type(idv, json_type_int))) {
            json_object_put(results);
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
        json_object_array_add(results, render_obj(o, &props, NULL, &hist));
    }
    free(done);
    struct json_object *out = json_object_new_object();
    jadd(out, "status", jstr("COMPLETE"));
    jadd(out, "results", results);
    int nmissing = (int)json_object_array_length(missing);
    if (nmissing) {
        char msg[256];
        struct json_object *errs = json_object_new_array(), *e = json_object_new_object();
        struct json_object *ctx = json_object_new_object();
        snprintf(msg, sizeof(msg),
                 "Could not get some %s objects, they may be deleted or not exist. Check that "
                 "ids are valid.",
                 types[t].upper);
        jadd(e, "status", jstr("error"));
        jadd(e, "category", jstr("OBJECT_NOT_FOUND"));
        jadd(e, "message", jstr(msg));
        jadd(ctx, "ids", missing);
        jadd(e, "context", ctx);
        json_object_array_add(errs, e);
        jadd(out, "numErrors", json_object_new_int(1));
        jadd(out, "errors", errs);
    } else {
        json_object_put(missing);
    }
    int64_t now = sb_now_ms();
    jadd(out, "startedAt", jiso(now));
    jadd(out, "completedAt", jiso(now));
    sb_resp_json(resp, nmissing ? 207 : 200, out);
out:
    free(props.buf);
    free(hist.buf);
    json_object_put(body);
}

static struct json_object *v4_entry(const struct hs_link *l)
{
    struct json_object *e = json_object_new_object(), *ts = json_object_new_array();
    jadd(e, "toObjectId", json_object_new_int64(l->to_id)); /* a number (§9 #5) */
    for (int j = 0; j < l->ntypes; j++) {
        const struct assoc_def *d = assoc_by_id(l->type_ids[j]);
        struct json_object *x = json_object_new_object();
        jadd(x, "category", jstr("HUBSPOT_DEFINED"));
        jadd(x, "typeId", json_object_new_int(l->type_ids[j]));
        jadd(x, "label", d && d->label ? jstr(d->label) : NULL);
        json_object_array_add(ts, x);
    }
    jadd(e, "associationTypes", ts);
    return e;
}

static void h_v4_assoc(struct hs_portal *p, int t, int to, const char *id,
                       const struct sb_request *req, struct sb_response *resp)
{
    int64_t oid, after = 0;
    int limit;
    const char *a = sb_req_query(req, "after");
    struct hs_obj *o = parse_i64(id, &oid) == 0 ? obj_get(p->id, t, oid) : NULL;
    if (!o || o->archived) {
        hs_error(resp, 404, "OBJECT_NOT_FOUND", "resource not found", NULL);
        return;
    }
    if (limit_param(req, HS_V4_LIMIT_MAX, HS_V4_LIMIT_MAX, &limit, resp))
        return;
    if (a && parse_i64(a, &after) != 0) {
        hs_errorf(resp, 400, "VALIDATION_ERROR", "Invalid 'after' cursor: %s", a);
        return;
    }
    int *idx = malloc((size_t)(o->nlinks ? o->nlinks : 1) * sizeof(int));
    if (!idx) {
        hs_error(resp, 500, "INTERNAL_ERROR", "out of memory", NULL);
        return;
    }
    int n = links_ordered(o, to, idx), k = (int)(after < n ? after : n), emitted = 0;
    struct json_object *out = json_object_new_object(), *res = json_object_new_array();
    for (; k < n && emitted < limit; k++, emitted++)
        json_object_array_add(res, v4_entry(&o->links[idx[k]]));
    free(idx);
    jadd(out, "results", res);
    if (k < n) {
        char next[32];
        snprintf(next, sizeof(next), "%d", k);
        paging_next(out, req, next);
    }
    sb_resp_json(resp, 200, out);
}

static void h_v4_batch(struct hs_portal *p, int t, int to, const struct sb_request *req,
                       struct sb_response *resp)
{
    struct json_object *body = parse_json_body(req, resp), *inputs;
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
            if (parse_i64(ids, &id) == 0)
                o = obj_get(p->id, t, id);
        }
        int nl = 0;
        for (int k = 0; o && k < o->nlinks; k++)
            nl += o->links[k].to_type == to;
        if (!o || o->archived || !nl) {
            char msg[256];
            struct json_object *e = json_object_new_object(), *ctx = json_object_new_object();
            struct json_object *fid = json_object_new_array();
            snprintf(msg, sizeof(msg), "No %s is associated with %s %s.", types[to].singular,
                     types[t].singular, ids);
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
        int n = idx ? links_ordered(o, to, idx) : 0;
        for (int k = 0; k < n; k++)
            json_object_array_add(tos, v4_entry(&o->links[idx[k]]));
        free(idx);
        jadd(from, "id", jstr(ids));
        jadd(r, "from", from);
        jadd(r, "to", tos);
        json_object_array_add(results, r);
    }
    struct json_object *out = json_object_new_object();
    int nerr = (int)json_object_array_length(errs);
    int64_t now = sb_now_ms();
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
    struct hs_cb *c = shash_get(&hs.cbs, id);
    if (c && c->portal != portal)
        c = NULL; /* another portal's callback is invisible */
    *cb_out = c;
    if (!c) {
        if (opt.cb_accept_unknown)
            return 0;
        hs_errorf(resp, 404, "OBJECT_NOT_FOUND", "Callback %s not found", id);
        return -1;
    }
    int expired = sb_now_ms() >= c->expires_ms;
    if ((c->completed || expired) && opt.cb_done_status != 204) {
        c->rejected++;
        hs_errorf(resp, 400, "VALIDATION_ERROR", "Callback %s %s", id,
                  c->completed ? "has already been completed" : "has expired");
        return -1;
    }
    return 0;
}

static int cb_apply(int64_t portal, const char *id, struct hs_cb *c, struct json_object *outputs,
                    const char *via)
{
    int64_t now = sb_now_ms();
    if (!c && !(c = cb_register(id, portal, now, now + (int64_t)opt.cb_expiry_s * 1000)))
        return -1;
    if (c->completed || now >= c->expires_ms) { /* repeat answered 204 by configuration */
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
    struct json_object *body = parse_json_body(req, resp), *outputs = NULL;
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
    struct json_object *body = parse_json_body(req, resp), *inputs;
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

/* ---- HubSpot OAuth token endpoint (§1; no bearer, not rate limited) ------------------ */

static int hexval(int c)
{
    return isdigit(c)                                 ? c - '0'
           : (tolower(c) >= 'a' && tolower(c) <= 'f') ? tolower(c) - 'a' + 10
                                                      : -1;
}

/* Value of `key` in an application/x-www-form-urlencoded body, decoded into out. */
static int form_get(const char *body, const char *key, char *out, size_t outsz)
{
    size_t kl = strlen(key);
    for (const char *p = body; p && *p;) {
        const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);
        if ((size_t)(end - p) > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            size_t o = 0;
            for (const char *q = p + kl + 1; q < end && o + 1 < outsz; q++) {
                if (*q == '+') {
                    out[o++] = ' ';
                } else if (*q == '%' && q + 2 < end + 0 + 1 && hexval(q[1]) >= 0 &&
                           hexval(q[2]) >= 0) {
                    out[o++] = (char)(hexval(q[1]) * 16 + hexval(q[2]));
                    q += 2;
                } else {
                    out[o++] = *q;
                }
            }
            out[o] = '\0';
            return 0;
        }
        p = amp ? amp + 1 : NULL;
    }
    return -1;
}

static const char *oauth_param(const struct sb_request *req, const char *key, char *buf,
                               size_t bufsz)
{
    if (form_get(req->body, key, buf, bufsz) == 0)
        return buf;
    const char *q = sb_req_query(req, key); /* v1 also takes parameters in the query */
    if (!q)
        return NULL;
    snprintf(buf, bufsz, "%s", q);
    return buf;
}

static void oauth_error(struct sb_response *resp, const char *status, const char *msg)
{
    char cid[37];
    struct json_object *o = json_object_new_object();
    uuid4(cid);
    jadd(o, "status", jstr(status));
    jadd(o, "message", jstr(msg));
    jadd(o, "correlationId", jstr(cid));
    sb_resp_json(resp, 400, o);
}

static void h_oauth(const struct sb_request *req, struct sb_response *resp)
{
    char grant[64], cid[HS_FORM_MAX], secret[HS_FORM_MAX], rt[HS_FORM_MAX], code[HS_FORM_MAX];
    const char *g = oauth_param(req, "grant_type", grant, sizeof(grant));
    const char *ci = oauth_param(req, "client_id", cid, sizeof(cid));
    const char *cs = oauth_param(req, "client_secret", secret, sizeof(secret));
    if (!g || (strcmp(g, "refresh_token") != 0 && strcmp(g, "authorization_code") != 0)) {
        oauth_error(resp, "BAD_GRANT_TYPE", "missing or unknown grant type");
        return;
    }
    pthread_rwlock_wrlock(&hs.lock);
    struct hs_app *a = hs.apps;
    while (a && (!ci || strcmp(a->client_id, ci) != 0))
        a = a->next;
    if (!a) {
        oauth_error(resp, "BAD_CLIENT_ID", "missing or invalid client_id");
        goto out;
    }
    if (!cs || strcmp(a->client_secret, cs) != 0) {
        oauth_error(resp, "BAD_CLIENT_SECRET", "missing or invalid client_secret");
        goto out;
    }
    if (strcmp(g, "refresh_token") == 0) {
        const char *r = oauth_param(req, "refresh_token", rt, sizeof(rt));
        struct hs_app *m = a;
        /* the refresh token identifies the installation; it must belong to this app */
        for (m = hs.apps; m; m = m->next)
            if (r && strcmp(m->refresh_token, r) == 0 && strcmp(m->client_id, a->client_id) == 0)
                break;
        if (!m) {
            oauth_error(resp, "BAD_REFRESH_TOKEN", "missing or unknown refresh token");
            goto out;
        }
        a = m;
    } else {
        const char *c = oauth_param(req, "code", code, sizeof(code));
        size_t i = 0, nc = a->codes ? json_object_array_length(a->codes) : 0;
        for (; c && i < nc; i++)
            if (strcmp(json_object_get_string(json_object_array_get_idx(a->codes, i)), c) == 0)
                break;
        if (!c || i == nc) {
            oauth_error(resp, "BAD_AUTH_CODE", "missing or unknown auth code");
            goto out;
        }
        json_object_array_del_idx(a->codes, i, 1); /* codes are single use */
    }
    /* Access tokens vary in length up to 300 characters (§1). */
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char tok[301];
    size_t len = 150 + (size_t)(sb_rand() % 151);
    memcpy(tok, "CN", 2);
    for (size_t i = 2; i < len; i++)
        tok[i] = alphabet[sb_rand() % 64];
    tok[len] = '\0';
    struct json_object *scopes = NULL;
    if (a->scopes && json_object_deep_copy(a->scopes, &scopes, NULL) != 0)
        scopes = NULL;
    if (token_add(a->portal, tok, TOK_OAUTH, sb_now_ms() + (int64_t)opt.access_ttl_s * 1000,
                  scopes)) {
        hs_error(resp, 500, "INTERNAL_ERROR", "out of memory", NULL);
        goto out;
    }
    struct json_object *o = json_object_new_object(), *sc = json_object_new_array();
    for (size_t i = 0; a->scopes && i < json_object_array_length(a->scopes); i++)
        json_object_array_add(
            sc, jstr(json_object_get_string(json_object_array_get_idx(a->scopes, i))));
    if (!a->scopes) {
        json_object_array_add(sc, jstr("oauth"));
        json_object_array_add(sc, jstr("automation"));
    }
    jadd(o, "token_type", jstr("bearer"));
    jadd(o, "refresh_token", jstr(a->refresh_token)); /* same token back (§9 #17) */
    jadd(o, "access_token", jstr(tok));
    jadd(o, "hub_id", json_object_new_int64(a->portal->id));
    jadd(o, "scopes", sc);
    jadd(o, "expires_in", json_object_new_int(opt.access_ttl_s));
    snprintf(resp->tenant, sizeof(resp->tenant), "%lld", (long long)a->portal->id);
    sb_resp_json(resp, 200, o);
out:
    pthread_rwlock_unlock(&hs.lock);
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
    if (strcmp(req->method, r.method) != 0) {
        hs_errorf(resp, 405, NULL, "HTTP %s is not supported by this endpoint", req->method);
        return;
    }
    if (r.kind == R_OAUTH) {
        h_oauth(req, resp);
        return;
    }
    int t = r.type_s ? type_find(r.type_s) : -1, to = r.to_s ? type_find(r.to_s) : -1;
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
    if (r.kind == R_TAX_ONE || r.kind == R_TAX_LIST) {
        if (check_scope(tok, "tax_rates.read", NULL, resp) == 0)
            h_tax(p, r.kind == R_TAX_ONE ? r.id : NULL, resp);
        goto out;
    }
    if (check_scope(tok, types[t].scope, types[t].alt_scope, resp))
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

/* ---- dump and options ---------------------------------------------------------------- */

static struct json_object *dump_portal(const struct hs_portal *p)
{
    struct json_object *o = json_object_new_object(), *objs = json_object_new_object();
    for (int t = 0; t < NT; t++) {
        struct json_object *arr = json_object_new_array();
        for (size_t i = 0; i < p->nlist[t]; i++) {
            const struct hs_obj *x = p->list[t][i];
            struct json_object *r = json_object_new_object(), *as = json_object_new_object();
            char id[32];
            snprintf(id, sizeof(id), "%lld", (long long)x->id);
            jadd(r, "id", jstr(id));
            jadd(r, "properties", render_props(x, NULL, 1));
            jadd(r, "archived", json_object_new_boolean(x->archived));
            for (int k = 0; k < x->nlinks; k++) {
                struct json_object *ids;
                const char *key = types[x->links[k].to_type].name;
                if (!json_object_object_get_ex(as, key, &ids)) {
                    ids = json_object_new_array();
                    jadd(as, key, ids);
                }
                snprintf(id, sizeof(id), "%lld", (long long)x->links[k].to_id);
                json_object_array_add(ids, jstr(id));
            }
            jadd(r, "associations", as);
            json_object_array_add(arr, r);
        }
        jadd(objs, types[t].name, arr);
    }
    jadd(o, "objects", objs);
    struct json_object *cbs = json_object_new_array();
    int ncompleted = 0;
    for (size_t i = 0; i < hs.ncb; i++) {
        const struct hs_cb *c = hs.cb_order[i];
        if (c->portal != p->id)
            continue;
        struct json_object *e = json_object_new_object(), *copy = NULL;
        jadd(e, "callbackId", jstr(c->id));
        jadd(e, "state",
             jstr(c->completed                   ? "COMPLETED"
                  : sb_now_ms() >= c->expires_ms ? "EXPIRED"
                                                 : "PENDING"));
        jadd(e, "expiresAt", jiso(c->expires_ms));
        if (c->completed) {
            if (c->outputs && json_object_deep_copy(c->outputs, &copy, NULL) == 0)
                jadd(e, "outputFields", copy);
            jadd(e, "completedAt", jiso(c->completed_ms));
            jadd(e, "via", jstr(c->via));
            ncompleted++;
        }
        jadd(e, "completions", json_object_new_int(c->completions));
        jadd(e, "rejected", json_object_new_int(c->rejected));
        json_object_array_add(cbs, e);
    }
    jadd(o, "callbacks", cbs);
    jadd(o, "completed_callbacks", json_object_new_int(ncompleted));
    pthread_mutex_lock(&hs.rate_mu);
    struct json_object *rate = json_object_new_object();
    jadd(rate, "window_count", json_object_new_int(p->rate.count));
    jadd(rate, "daily_count", json_object_new_int64(p->rate.daily));
    pthread_mutex_unlock(&hs.rate_mu);
    jadd(o, "rate", rate);
    return o;
}

struct json_object *hubspot_dump(const char *portal_id)
{
    hs_init();
    struct json_object *out = json_object_new_object(), *ps = json_object_new_object();
    int64_t want = -1;
    if (portal_id && parse_i64(portal_id, &want) != 0)
        want = -2; /* matches nothing */
    pthread_rwlock_rdlock(&hs.lock);
    for (const struct hs_portal *p = hs.portals; p; p = p->next) {
        if (want != -1 && p->id != want)
            continue;
        char id[32];
        snprintf(id, sizeof(id), "%lld", (long long)p->id);
        jadd(ps, id, dump_portal(p));
    }
    pthread_rwlock_unlock(&hs.lock);
    jadd(out, "portals", ps);
    return out;
}

struct json_object *hubspot_options(void)
{
    hs_init();
    struct json_object *o = json_object_new_object();
    pthread_rwlock_rdlock(&hs.lock);
    struct hs_opts c = opt;
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
    struct hs_opts n = opt;
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
        opt = n;
        pthread_mutex_unlock(&hs.rate_mu);
    }
    pthread_rwlock_unlock(&hs.lock);
    return rc;
}
