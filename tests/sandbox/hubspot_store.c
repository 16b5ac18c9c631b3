/* hubspot_store.c - the HubSpot sandbox's state: portals, CRM objects and their
 * associations, bearer tokens, OAuth apps, automation callbacks and tax rates; how a seed
 * document becomes that state, how the state is dumped for tests, and how a stored
 * record is rendered as HubSpot's v3/v4 JSON. Request handling is in hubspot.c; the
 * structures and the locking rules are in hubspot_internal.h.
 *
 * Layout, chosen for the hot path (reads by id and paged lists under a shared lock):
 *   - objects sit in one hash keyed by (portal, type, id) for O(1) reads, and each
 *     portal keeps a list per type sorted by id, so `after` cursors are a binary search;
 *   - associations are stored on both ends (a link and its reverse type id), so reading
 *     either side needs no second lookup;
 *   - tokens and callbacks live in string hashes; callbacks also keep registration
 *     order for a stable dump.
 *
 * Seeding is two-pass per portal: every object is stored first and its associations
 * are queued (struct pending), then resolve_links() adds both ends once every target
 * can be found, so a seed may list associations in any order. A target that does not
 * exist is a seed error. Seeding merges: an existing id is replaced.
 *
 * Rendering never hands out a stored json object (json-c reference counts are not
 * atomic): property strings are copied into new objects, tax rates deep-copied.
 *
 * A portal's UTC offset (account details) comes from a small built-in zone table with
 * the US and EU daylight-saving rules, not from TZ/tzset/localtime_r: those read process
 * globals that one request would have to change while other pool threads read them. A
 * zone outside the table is seeded with a fixed utcOffset.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "tests/sandbox/hubspot_internal.h"
#include "tests/sandbox/sb_json.h"

#define HS_CALLBACKS_MAX 1000000 /* registered callbacks, all portals */

#define PRICING_PROPS "hs_label,hs_type,hs_value,hs_sort_order,hs_duration"

/* Object types (reference §4.1). */
const struct type_info hs_types[NT] = {
    {"contacts", "0-1", "contact", "CONTACT", "contacts", "crm.objects.contacts.read", NULL,
     "lastmodifieddate", "firstname,lastname,email",
     "email,firstname,lastname,company,phone,address,city,state,zip,country"},
    {"companies", "0-2", "company", "COMPANY", "companies", "crm.objects.companies.read", NULL,
     "hs_lastmodifieddate", "name,domain", "name,domain,phone,address,city,state,zip,country"},
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
     "hs_tax_rate_group_id,discount,hs_discount_percentage,hs_total_discount,hs_tax_rate,"
     "hs_tax_amount,hs_position_on_quote"},
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
    /* Quote pricing objects (discounts/fees/taxes guides): the discounts guide lists the
     * line-items scope; the default property sets are a choice (README). */
    {"discounts", "0-84", "discount", "DISCOUNT", "discounts", "crm.objects.line_items.read",
     "e-commerce", "hs_lastmodifieddate", "hs_label,hs_type,hs_value,hs_sort_order", PRICING_PROPS},
    {"fees", "0-85", "fee", "FEE", "fees", "crm.objects.line_items.read", "e-commerce",
     "hs_lastmodifieddate", "hs_label,hs_type,hs_value", PRICING_PROPS},
    {"taxes", "0-86", "tax", "TAX", "taxes", "crm.objects.line_items.read", "e-commerce",
     "hs_lastmodifieddate", "hs_label,hs_type,hs_value", PRICING_PROPS},
};

/* HubSpot-defined association types (reference §4.6). `dflt`: used when a seed lists a
 * plain id; `primary`: added for {"id":..,"primary":true}. Ids not in §4.6 (the reverse
 * of payment->contact, company reverses, discount/fee/tax -> quote 363/365/367) follow
 * HubSpot's pairing of adjacent ids. */
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
    {T_QUOTES, T_DISCOUNTS, 362, 363, 1, 0, "quote_to_discount", NULL},
    {T_DISCOUNTS, T_QUOTES, 363, 362, 1, 0, "discount_to_quote", NULL},
    {T_QUOTES, T_FEES, 364, 365, 1, 0, "quote_to_fee", NULL},
    {T_FEES, T_QUOTES, 365, 364, 1, 0, "fee_to_quote", NULL},
    {T_QUOTES, T_TAXES, 366, 367, 1, 0, "quote_to_tax", NULL},
    {T_TAXES, T_QUOTES, 367, 366, 1, 0, "tax_to_quote", NULL},
};
#define NASSOC_DEFS (sizeof(assoc_defs) / sizeof(assoc_defs[0]))

struct hs_state hs; /* rules in hubspot_internal.h */
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

int hs_parse_i64(const char *s, int64_t *out)
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

int hs_type_find(const char *s)
{
    if (!s)
        return -1;
    for (int t = 0; t < NT; t++)
        if (strcmp(s, hs_types[t].name) == 0 || strcmp(s, hs_types[t].id) == 0 ||
            strcmp(s, hs_types[t].singular) == 0 || strcmp(s, hs_types[t].assoc_key) == 0)
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
        known_add_list(t, hs_types[t].catalogue);
        known_add_list(t, hs_types[t].defaults);
        known_add_list(t, "hs_object_id,createdate");
        known_add_list(t, hs_types[t].modkey);
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

void hs_init(void)
{
    pthread_once(&hs_once, hs_init_once);
}

static void obj_free(struct hs_obj *o)
{
    hs_props_free(o->props);
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

void hs_app_free(struct hs_app *a)
{
    free(a->client_id);
    free(a->client_secret);
    free(a->name);
    free(a->refresh_token);
    json_object_put(a->scopes);
    json_object_put(a->codes);
    json_object_put(a->optional_scopes);
    json_object_put(a->redirect_uris);
    free(a);
}

void hs_store_clear_locked(void)
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
        hs_app_free(a);
    }
    hs.apps = NULL;
    json_object_put(hs.az_codes);
    hs.az_codes = NULL;
    hs_actions_clear_locked();
    shash_clear(&hs.tokens, token_free);
    shash_clear(&hs.cbs, cb_free);
    free(hs.cb_order);
    hs.cb_order = NULL;
    hs.ncb = hs.capcb = 0;
    known_init();
}

/* ---- object store -------------------------------------------------------------------- */

static size_t obj_slot(int64_t portal, int type, int64_t id, size_t nb)
{
    uint64_t h = (uint64_t)portal * 0x9E3779B97F4A7C15ULL ^ (uint64_t)id * 0xC2B2AE3D27D4EB4FULL ^
                 (uint64_t)type * 0x165667B19E3779F9ULL;
    h ^= h >> 29;
    return (size_t)(h & (nb - 1));
}

struct hs_obj *hs_obj_get(int64_t portal, int type, int64_t id)
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
size_t hs_list_lower_bound(const struct hs_portal *p, int t, int64_t min_id)
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

/* Split a comma list (owned copy) into unique, non-empty, trimmed names. */
void hs_names_parse(struct names *ns, char *csv)
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

/* Records are written as text (sb_json.h), byte for byte what the json-c trees gave: a
 * tree per record was most of the CPU of a CRM read. A property asked for twice (or also
 * one of the three always added) appears once, at its first place, as json-c's replacing
 * add did. */
struct written {
    const char *v[HS_MAX_NAMES + 3];
    int n;
};

static void iso_put(struct sb_json *w, const char *key, int64_t ms)
{
    char b[40];
    sb_iso8601(ms, b, sizeof(b));
    sb_json_kv_str(w, key, b);
}

static void prop_put(struct sb_json *w, const struct hs_obj *o, const char *name,
                     struct written *done)
{
    const char *v;
    for (int i = 0; i < done->n; i++)
        if (strcmp(done->v[i], name) == 0)
            return;
    if (done->n < (int)(sizeof(done->v) / sizeof(done->v[0])))
        done->v[done->n++] = name;
    if (hs_props_get(o->props, name, &v)) {
        sb_json_kv_str(w, name, v);
        return;
    }
    char buf[SB_JSON_INT_MAX];
    if (strcmp(name, "hs_object_id") == 0) {
        sb_json_fmt_int(buf, o->id);
        sb_json_kv_str(w, name, buf);
    } else if (strcmp(name, "createdate") == 0) {
        iso_put(w, name, o->created_ms);
    } else if (strcmp(name, hs_types[o->type].modkey) == 0) {
        iso_put(w, name, o->updated_ms);
    } else if (json_object_object_get_ex(hs.known[o->type], name, NULL)) {
        sb_json_kv_str(w, name, NULL); /* §9 #1: known but empty -> null */
    }
}

static void write_props(struct sb_json *w, const struct hs_obj *o, const struct names *props,
                        int all)
{
    struct written done = {.n = 0};
    char buf[512]; /* the defaults' names: done points into it until the end */
    struct names d;
    sb_json_open(w, '{');
    if (all) {
        size_t pos = 0;
        const char *k;
        while ((k = hs_props_next(o->props, &pos, NULL)))
            prop_put(w, o, k, &done);
    } else if (props && props->n) {
        for (int i = 0; i < props->n; i++)
            prop_put(w, o, props->v[i], &done);
    } else {
        snprintf(buf, sizeof(buf), "%s", hs_types[o->type].defaults);
        hs_names_parse(&d, buf);
        for (int i = 0; i < d.n; i++)
            prop_put(w, o, d.v[i], &done);
    }
    prop_put(w, o, "hs_object_id", &done);
    prop_put(w, o, "createdate", &done);
    prop_put(w, o, hs_types[o->type].modkey, &done);
    sb_json_close(w, '}');
}

/* The JSON text of w as a tree (callers that still build trees around a record); NULL
 * when w failed. Releases w. */
static struct json_object *tree_of(struct sb_json *w)
{
    struct json_object *t = w->err || !w->buf ? NULL : json_tokener_parse(w->buf);
    sb_json_release(w);
    return t;
}

static const char *assoc_key(int t)
{
    if (t == T_LINE_ITEMS && !hs_opt.line_items_spaced)
        return "line_items";
    return hs_types[t].assoc_key;
}

/* Indexes of o's links to `to`, in the configured order (§9 #4). Returns the count. */
int hs_links_ordered(const struct hs_obj *o, int to, int *idx)
{
    int n = 0;
    for (int i = 0; i < o->nlinks; i++)
        if (o->links[i].to_type == to)
            idx[n++] = i;
    if (hs_opt.order == 1) {
        for (int i = 0; i < n / 2; i++) {
            int t = idx[i];
            idx[i] = idx[n - 1 - i];
            idx[n - 1 - i] = t;
        }
    } else if (hs_opt.order == 2) {
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(sb_rand() % (uint64_t)(i + 1)), t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
    }
    return n;
}

/* v3 embedded associations (§4.3): one entry per (target, association type), under
 * "associations" when any requested type has links. */
static void write_assoc_v3(struct sb_json *w, const struct hs_obj *o, const struct names *req)
{
    int seen[NT] = {0}, opened = 0;
    int *idx = o->nlinks ? malloc((size_t)o->nlinks * sizeof(int)) : NULL;
    for (int i = 0; i < req->n; i++) {
        int t = hs_type_find(req->v[i]);
        if (t < 0 || seen[t] || !idx)
            continue; /* unknown association types are ignored */
        seen[t] = 1;
        int n = hs_links_ordered(o, t, idx);
        if (!n)
            continue;
        if (!opened++) {
            sb_json_key(w, "associations");
            sb_json_open(w, '{');
        }
        sb_json_key(w, assoc_key(t));
        sb_json_open(w, '{');
        sb_json_key(w, "results");
        sb_json_open(w, '[');
        for (int k = 0; k < n; k++) {
            const struct hs_link *l = &o->links[idx[k]];
            char id[SB_JSON_INT_MAX];
            sb_json_fmt_int(id, l->to_id);
            for (int j = 0; j < l->ntypes; j++) {
                const struct assoc_def *d = assoc_by_id(l->type_ids[j]);
                const char *name = d ? d->name : "unknown";
                for (int rep = 0; rep < 2; rep++) {
                    char nm[96];
                    if (rep == 1) {
                        if (t != T_CONTACTS || !hs_opt.contact_dupes || strstr(name, "_unlabeled"))
                            break;
                        snprintf(nm, sizeof(nm), "%s_unlabeled", name);
                    } else {
                        snprintf(nm, sizeof(nm), "%s", name);
                    }
                    sb_json_open(w, '{');
                    sb_json_kv_str(w, "id", id);
                    sb_json_kv_str(w, "type", nm);
                    sb_json_close(w, '}');
                }
            }
        }
        sb_json_close(w, ']');
        sb_json_close(w, '}');
    }
    if (opened)
        sb_json_close(w, '}');
    free(idx);
}

void hs_write_obj(struct sb_json *w, const struct hs_obj *o, const struct names *props,
                  const struct names *assoc, const struct names *hist)
{
    char id[SB_JSON_INT_MAX];
    sb_json_fmt_int(id, o->id);
    sb_json_open(w, '{');
    sb_json_kv_str(w, "id", id);
    sb_json_key(w, "properties");
    write_props(w, o, props, 0);
    if (hist && hist->n) {
        sb_json_key(w, "propertiesWithHistory");
        sb_json_open(w, '{');
        for (int i = 0; i < hist->n; i++) {
            const char *v;
            if (!hs_props_get(o->props, hist->v[i], &v) || !v)
                continue;
            sb_json_key(w, hist->v[i]);
            sb_json_open(w, '[');
            sb_json_open(w, '{');
            sb_json_kv_str(w, "value", v);
            iso_put(w, "timestamp", o->updated_ms);
            sb_json_kv_str(w, "sourceType", "API");
            sb_json_close(w, '}');
            sb_json_close(w, ']');
        }
        sb_json_close(w, '}');
    }
    iso_put(w, "createdAt", o->created_ms);
    iso_put(w, "updatedAt", o->updated_ms);
    sb_json_key(w, "archived");
    sb_json_bool(w, o->archived);
    if (o->archived)
        iso_put(w, "archivedAt", o->archived_ms);
    if (assoc && assoc->n)
        write_assoc_v3(w, o, assoc);
    sb_json_close(w, '}');
}

struct json_object *hs_render_obj(const struct hs_obj *o, const struct names *props,
                                  const struct names *assoc, const struct names *hist)
{
    struct sb_json w;
    sb_json_init(&w);
    hs_write_obj(&w, o, props, assoc, hist);
    return tree_of(&w);
}

struct json_object *hs_render_v4_link(const struct hs_link *l)
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

/* ---- account details: time zones ----------------------------------------------------- */

enum { DST_NONE, DST_US, DST_EU };

/* The zones US portals are set to (the QuickBooks actions are US-only), a few more for
 * tests; std_min is the standard offset in minutes east of UTC. */
static const struct zone {
    const char *name;
    int std_min, rule;
} zones[] = {
    {"US/Eastern", -300, DST_US},
    {"America/New_York", -300, DST_US},
    {"America/Detroit", -300, DST_US},
    {"America/Toronto", -300, DST_US},
    {"US/Central", -360, DST_US},
    {"America/Chicago", -360, DST_US},
    {"US/Mountain", -420, DST_US},
    {"America/Denver", -420, DST_US},
    {"US/Arizona", -420, DST_NONE},
    {"America/Phoenix", -420, DST_NONE},
    {"US/Pacific", -480, DST_US},
    {"America/Los_Angeles", -480, DST_US},
    {"US/Alaska", -540, DST_US},
    {"America/Anchorage", -540, DST_US},
    {"US/Hawaii", -600, DST_NONE},
    {"Pacific/Honolulu", -600, DST_NONE},
    {"UTC", 0, DST_NONE},
    {"Etc/UTC", 0, DST_NONE},
    {"Europe/London", 0, DST_EU},
    {"Europe/Paris", 60, DST_EU},
    {"Europe/Berlin", 60, DST_EU},
};

#define DAY_MS  86400000LL
#define HOUR_MS 3600000LL

static const struct zone *zone_find(const char *name)
{
    for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++)
        if (strcmp(zones[i].name, name) == 0)
            return &zones[i];
    return NULL;
}

/* The first Sunday on or after day d (days since the epoch, which was a Thursday). */
static int64_t sunday_from(int64_t d)
{
    return d + (7 - (d + 4) % 7) % 7;
}

/* Whether UTC instant t (ms, >= 0) is in z's daylight time. US rule (since 2007): from
 * the second Sunday of March, 02:00 local standard time, to the first Sunday of
 * November, 02:00 local daylight time. EU rule: from the last Sunday of March to the
 * last Sunday of October, 01:00 UTC both. gmtime_r (thread-safe, no TZ) supplies the
 * year and the day of the year; the rest is day arithmetic. */
static int zone_dst(const struct zone *z, int64_t t)
{
    int64_t std_ms = (int64_t)z->std_min * 60000, local = t + std_ms;
    time_t secs = (time_t)(local / 1000);
    struct tm tm;
    if (z->rule == DST_NONE || local < 0 || !gmtime_r(&secs, &tm))
        return 0;
    int y = tm.tm_year + 1900, leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    int64_t jan1 = local / DAY_MS - tm.tm_yday;
    int64_t mar1 = jan1 + 59 + leap, oct1 = jan1 + 273 + leap, nov1 = jan1 + 304 + leap;
    int64_t from, to;
    if (z->rule == DST_US) {
        from = (sunday_from(mar1) + 7) * DAY_MS + 2 * HOUR_MS - std_ms;
        to = sunday_from(nov1) * DAY_MS + HOUR_MS - std_ms;
    } else {
        from = sunday_from(mar1 + 24) * DAY_MS + HOUR_MS;
        to = sunday_from(oct1 + 24) * DAY_MS + HOUR_MS;
    }
    return t >= from && t < to;
}

int hs_portal_utc_offset(const struct hs_portal *p, int64_t now_ms)
{
    const struct zone *z = p->fixed_offset ? NULL : zone_find(p->time_zone);
    if (!z)
        return p->utc_offset_min;
    return z->std_min + (zone_dst(z, now_ms) ? 60 : 0);
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

struct hs_portal *hs_portal_find(int64_t id)
{
    for (struct hs_portal *p = hs.portals; p; p = p->next)
        if (p->id == id)
            return p;
    return NULL;
}

static struct hs_portal *portal_get(int64_t id)
{
    struct hs_portal *p = hs_portal_find(id);
    if (p)
        return p;
    p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->id = id;
    p->tax_rates = json_object_new_object();
    snprintf(p->time_zone, sizeof(p->time_zone), "US/Eastern"); /* HubSpot's example */
    snprintf(p->currency, sizeof(p->currency), "USD");
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
        return hs_parse_i64(json_object_get_string(v), out);
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
        int to = hs_type_find(tname);
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
                                     tname, i, hs_types[o->type].name, hs_types[to].name);
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
                         hs_types[o->type].name, hs_types[to].name);
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
    struct json_object *v;
    struct hs_props *props = NULL;
    int64_t id;
    if (!json_object_is_type(e, json_type_object) || !json_object_object_get_ex(e, "id", &v) ||
        json_id(v, &id)) {
        snprintf(err, errsz, "%s: every object needs a numeric \"id\"", hs_types[t].name);
        return -1;
    }
    struct hs_obj *o = hs_obj_get(p->id, t, id);
    int fresh = !o;
    if (fresh) {
        o = calloc(1, sizeof(*o));
        if (!o)
            return seed_fail(err, errsz, "out of memory");
        o->portal = p->id;
        o->type = t;
        o->id = id;
    }
    if (json_object_object_get_ex(e, "properties", &v)) {
        if (!json_object_is_type(v, json_type_object)) {
            snprintf(err, errsz, "%s %lld: 'properties' must be an object", hs_types[t].name,
                     (long long)id);
            goto fail;
        }
        json_object_object_foreach(v, k, pv)
        {
            const char *sv = NULL;
            if (!pv)
                sv = NULL;
            else if (json_object_is_type(pv, json_type_string))
                sv = json_object_get_string(pv);
            else if (json_object_is_type(pv, json_type_int) ||
                     json_object_is_type(pv, json_type_double) ||
                     json_object_is_type(pv, json_type_boolean))
                sv = json_object_to_json_string_ext(pv, JSON_C_TO_STRING_PLAIN);
            else {
                snprintf(err, errsz,
                         "%s %lld: property '%s' must be a string, number, "
                         "boolean or null",
                         hs_types[t].name, (long long)id, k);
                goto fail;
            }
            if (hs_props_set(&props, k, sv) != 0) {
                snprintf(err, errsz, "out of memory");
                goto fail;
            }
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
    hs_props_free(o->props);
    o->props = props;
    o->derived = 0;
    o->stamp = hs.stamp;
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
    hs_props_free(props);
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

int hs_token_add(struct hs_portal *p, const char *tok, int kind, int64_t expires,
                 struct json_object *scopes, struct hs_app *app)
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
    t->app = app;
    return 0;
}

struct hs_cb *hs_cb_register(const char *id, int64_t portal, int64_t created, int64_t expires)
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

/* "-08:00" -> -480: a sign, two digits, a colon, two digits; at most 14 hours. */
static int utc_offset_parse(const char *s, int *out)
{
    if (strlen(s) != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':' ||
        !isdigit((unsigned char)s[1]) || !isdigit((unsigned char)s[2]) ||
        !isdigit((unsigned char)s[4]) || !isdigit((unsigned char)s[5]))
        return -1;
    int min = ((s[1] - '0') * 10 + s[2] - '0') * 60 + (s[4] - '0') * 10 + s[5] - '0';
    if (s[4] > '5' || min > 14 * 60)
        return -1;
    *out = s[0] == '-' ? -min : min;
    return 0;
}

/* 0 when v is a string of 1..max-1 bytes, each alphanumeric or in `allowed`, and with
 * `upper` each a capital letter; else -1 (also for NULL, a JSON null). */
static int seed_word(struct json_object *v, size_t max, const char *allowed, int upper)
{
    const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || strchr(allowed, s[i])) ||
            (upper && !isupper((unsigned char)s[i])))
            return -1;
    return n > 0 && n < max ? 0 : -1;
}

/* The account-details keys of a portal: timeZone, companyCurrency, utcOffset. Checked
 * before anything changes. A timeZone without utcOffset must be in the zone table and
 * drops an earlier fixed offset; utcOffset fixes the offset all year. */
static int seed_account(struct hs_portal *p, struct json_object *po, char *err, size_t errsz)
{
    struct json_object *tz, *cur, *off; /* NULL for a JSON null, which is refused */
    int min = 0;
    int has_tz = json_object_object_get_ex(po, "timeZone", &tz);
    int has_cur = json_object_object_get_ex(po, "companyCurrency", &cur);
    int has_off = json_object_object_get_ex(po, "utcOffset", &off);
    if (has_tz && seed_word(tz, sizeof(p->time_zone), "/_+-", 0))
        return seed_fail(err, errsz, "'timeZone' must be a zone name like \"America/New_York\"");
    if (has_cur &&
        (seed_word(cur, sizeof(p->currency), "", 1) || json_object_get_string_len(cur) != 3))
        return seed_fail(err, errsz, "'companyCurrency' must be a currency code like \"USD\"");
    if (has_off && (!json_object_is_type(off, json_type_string) ||
                    utc_offset_parse(json_object_get_string(off), &min)))
        return seed_fail(err, errsz, "'utcOffset' must look like \"-08:00\"");
    if (has_tz && !has_off && !zone_find(json_object_get_string(tz)))
        return seed_fail(err, errsz,
                         "timeZone \"%s\" is not in the sandbox's table: seed "
                         "\"utcOffset\" with it",
                         json_object_get_string(tz));
    if (has_tz) {
        snprintf(p->time_zone, sizeof(p->time_zone), "%s", json_object_get_string(tz));
        p->fixed_offset = 0;
    }
    if (has_cur)
        snprintf(p->currency, sizeof(p->currency), "%s", json_object_get_string(cur));
    if (has_off) {
        p->fixed_offset = 1;
        p->utc_offset_min = min;
    }
    return 0;
}

/* One oauth_apps entry (client_id, client_secret, refresh_token given in val): the app's
 * definition and its installation in p. Optional: scopes, optional_scopes,
 * redirect_uris, auth_codes (arrays of strings), app_id (a positive id), name. */
static int seed_oauth_app(struct hs_portal *p, struct json_object *e, const char *val[3], char *err,
                          size_t errsz)
{
    struct json_object *v;
    struct hs_app *a = calloc(1, sizeof(*a));
    if (!a)
        return seed_fail(err, errsz, "out of memory");
    a->client_id = strdup(val[0]);
    a->client_secret = strdup(val[1]);
    a->refresh_token = strdup(val[2]);
    a->portal = p;
    a->next = hs.apps;
    hs.apps = a;
    static const char *const lists[] = {"scopes", "auth_codes", "optional_scopes", "redirect_uris"};
    struct json_object **dst[] = {&a->scopes, &a->codes, &a->optional_scopes, &a->redirect_uris};
    for (int k = 0; k < 4; k++) {
        v = NULL;
        json_object_object_get_ex(e, lists[k], &v);
        if (seed_strings(v, dst[k], lists[k], err, errsz))
            return -1;
    }
    if (json_object_object_get_ex(e, "app_id", &v) && (json_id(v, &a->app_id) || a->app_id == 0))
        return seed_fail(err, errsz, "oauth_apps: 'app_id' must be a positive id");
    if (json_object_object_get_ex(e, "name", &v)) {
        if (!json_object_is_type(v, json_type_string))
            return seed_fail(err, errsz, "oauth_apps: 'name' must be a string");
        a->name = strdup(json_object_get_string(v));
    }
    return 0;
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
            if (hs_token_add(p, json_object_get_string(tv), TOK_PRIVATE, exp, scopes, NULL))
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
            if (seed_oauth_app(p, e, val, err, errsz))
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
            int64_t now = clock_wall_ms(), created = now, exp;
            if (json_object_is_type(e, json_type_object)) {
                json_object_object_get_ex(e, "callbackId", &x);
                if (seed_time(e, "createdAt", now, &created, err, errsz))
                    return -1;
            }
            if (!x || !json_object_is_type(x, json_type_string) ||
                json_object_get_string_len(x) == 0)
                return seed_fail(err, errsz, "callbacks[%zu]: need a callbackId string", i);
            exp = created + (int64_t)hs_opt.cb_expiry_s * 1000;
            if (json_object_is_type(e, json_type_object) &&
                seed_time(e, "expiresAt", exp, &exp, err, errsz))
                return -1;
            if (!hs_cb_register(json_object_get_string(x), p->id, created, exp))
                return seed_fail(err, errsz, "cannot register callback");
        }
    }
    return 0;
}

static int resolve_links(struct hs_portal *p, struct pending *pd, char *err, size_t errsz)
{
    for (size_t i = 0; i < pd->n; i++) {
        struct pending_link *l = &pd->v[i];
        struct hs_obj *to = hs_obj_get(p->id, l->to_type, l->to_id);
        if (!to) {
            snprintf(err, errsz, "%s %lld is associated with %s %lld, which does not exist",
                     hs_types[l->from->type].name, (long long)l->from->id,
                     hs_types[l->to_type].name, (long long)l->to_id);
            return -1;
        }
        l->from->stamp = to->stamp = hs.stamp; /* both ends are repriced */
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
    if (++hs.stamp == 0)
        hs.stamp = 1;
    if (seed_account(p, po, err, errsz) || seed_portal_extras(p, po, err, errsz))
        goto out;
    if (json_object_object_get_ex(po, "objects", &v)) {
        if (!json_object_is_type(v, json_type_object)) {
            snprintf(err, errsz, "'objects' must be an object keyed by object type");
            goto out;
        }
        json_object_object_foreach(v, tname, arr)
        {
            int t = hs_type_find(tname);
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
    /* Also after a failed seed: what did load stays consistent. A tax rate may reprice
     * any line item, so it reprices everything. */
    hs_price_portal(p, json_object_object_get_ex(po, "tax_rates", NULL) ? 0 : hs.stamp);
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
    if (json_object_object_get_ex(h, "developer_apps", &v))
        rc = hs_devapps_seed(v, err, sizeof(err));
    if (rc == 0 && json_object_object_get_ex(h, "portals", &v)) {
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

/* ---- token and callback lookups for hubspot.c --------------------------------------- */

const struct hs_token *hs_token_find(const char *tok)
{
    return shash_get(&hs.tokens, tok);
}

struct hs_cb *hs_cb_find(const char *id)
{
    return shash_get(&hs.cbs, id);
}

/* ---- dump (admin GET /_sandbox/state) ------------------------------------------------ */

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
            struct sb_json w;
            sb_json_init(&w);
            write_props(&w, x, NULL, 1);
            jadd(r, "properties", tree_of(&w));
            jadd(r, "archived", json_object_new_boolean(x->archived));
            for (int k = 0; k < x->nlinks; k++) {
                struct json_object *ids;
                const char *key = hs_types[x->links[k].to_type].name;
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
        jadd(objs, hs_types[t].name, arr);
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
             jstr(c->completed                       ? "COMPLETED"
                  : c->closed                        ? "CLOSED"
                  : clock_wall_ms() >= c->expires_ms ? "EXPIRED"
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
    struct json_object *installs = json_object_new_array();
    for (const struct hs_app *a = hs.apps; a; a = a->next) {
        if (a->portal != p)
            continue;
        struct json_object *e = json_object_new_object(), *copy = NULL;
        jadd(e, "client_id", jstr(a->client_id));
        jadd(e, "refresh_token", a->refresh_token ? jstr(a->refresh_token) : NULL);
        if (a->scopes && json_object_deep_copy(a->scopes, &copy, NULL) == 0)
            jadd(e, "scopes", copy);
        jadd(e, "source", jstr(a->from_flow ? "authorize" : "seed"));
        jadd(e, "refreshes", json_object_new_int(a->refreshes));
        jadd(e, "code_grants", json_object_new_int(a->code_grants));
        json_object_array_add(installs, e);
    }
    jadd(o, "oauth_installs", installs);
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
    if (portal_id && hs_parse_i64(portal_id, &want) != 0)
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
