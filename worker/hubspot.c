/* hubspot.c - HubSpot CRM reads (see hubspot.h): what the answers mean. How one request
 * goes out (token, rate limiter, exchange, classification) is hubspot_exchange.c's;
 * callback completion is hubspot_callbacks.c's; the batch reads (line items, a quote's
 * price terms) are hubspot_batch.c's, on this file's string pools and property copies.
 *
 * Every request goes through hubspot_exchange(); the answer is read as a tape
 * (common/jtape.h: the strict parser without a json-c tree, two allocations per answer)
 * with its typed, non-coercing getters, and what is kept is copied, so nothing borrows
 * from a tape or a response buffer once a call returns. The copies go to the result's
 * string pool (struct hubspot_strpool: blocks of STRPOOL_BLOCK bytes, freed together
 * with the result), not to a strdup each: a deal, its ten line items and a contact hold
 * some 150 property values, and a steady-state event read them all.
 *
 * Association ids are collected from every key that may carry them ("line_items" and
 * the real API's "line items"), then sorted and de-duplicated: HubSpot lists a target
 * once per association type and defines no order, so ascending ids are the one order
 * that does not depend on the response. An embedded list that announces more pages is
 * replaced by a complete read through the v4 associations API.
 */
#include "worker/hubspot.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/jtape.h"
#include "worker/hubspot_internal.h"

#define HS_RAW_ASSOC_MAX (8 * HUBSPOT_MAX_LINE_ITEMS) /* entries before de-duplication */
#define HS_AFTER_MAX     256                          /* bytes of a paging cursor */
#define HS_V4_PAGE       "500"
#define STRPOOL_BLOCK    4096 /* bytes of a string pool block, header included */

struct hubspot_strpool {
    struct hubspot_strpool *next; /* the blocks filled before this one */
    size_t used, cap;
    char data[];
};

/* A NUL-terminated copy of n bytes in *pool (a new block when the newest lacks room:
 * STRPOOL_BLOCK bytes, or n + 1 past that); NULL when out of memory. */
static char *strpool_dup(struct hubspot_strpool **pool, const char *s, size_t n)
{
    struct hubspot_strpool *b = *pool;
    char *out;

    if (!b || b->cap - b->used < n + 1) {
        size_t cap = STRPOOL_BLOCK - sizeof *b;
        if (n + 1 > cap)
            cap = n + 1;
        if (!(b = malloc(sizeof *b + cap)))
            return NULL;
        b->next = *pool;
        b->used = 0;
        b->cap = cap;
        *pool = b;
    }
    out = b->data + b->used;
    memcpy(out, s, n);
    out[n] = '\0';
    b->used += n + 1;
    return out;
}

void hubspot_strpool_free(struct hubspot_strpool *b)
{
    while (b) {
        struct hubspot_strpool *next = b->next;
        free(b);
        b = next;
    }
}

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
#define ADDRESS_NPROPS 5 /* address, city, state, zip, country */

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

/* ---- parsing helpers ---------------------------------------------------------------- */

/* Copy properties.<name> into *out (NULL when absent/null/""). -1 (err) on a
 * non-string or an oversized value. */
int hubspot_copy_prop(const struct jtape *t, size_t props, const char *name,
                     struct hubspot_strpool **pool, char **out, const char *endpoint,
                     struct api_error *err)
{
    const char *v;
    size_t len;
    enum jget_status st = jtape_get_strn(t, props, name, &v, &len);

    *out = NULL;
    if (st == JGET_MISSING)
        return 0;
    if (st != JGET_OK || strlen(v) != len) {
        hubspot_bad_answer(err, endpoint, "a property is not a string");
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
    if (!(*out = strpool_dup(pool, v, len))) {
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

/* One association type read with an object: the embedded keys that carry it, the v4
 * name of the target type, the most targets accepted, and whether more is the event's
 * line budget (BUDGET_EXCEEDED, as budget.max_line_items documents) rather than an
 * object HubSpot should not have (HUBSPOT_VALIDATION). */
struct assoc_want {
    const char *const *keys;
    const char *to_type;
    size_t max;
    int is_line_budget;
};

/* The error for an object with more than w->max targets (`count`: how many were seen,
 * 0 when the reading stopped at the cap). */
static void assoc_too_many(const struct hubspot_object *o, const struct assoc_want *w,
                           size_t count, struct api_error *err)
{
    char seen[48] = "more than";

    if (count)
        snprintf(seen, sizeof seen, "%zu, more than", count);
    if (w->is_line_budget)
        api_error_set(err, API_PERMANENT, HSQB_ERR_BUDGET_EXCEEDED, 200,
                      "%s %" PRId64 " has %s %zu line items, the most one document may have "
                      "(budget.max_line_items cannot exceed it); nothing was created",
                      object_type_name(o->type), o->id, seen, w->max);
    else
        api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, 200,
                      "hubspot: %s %" PRId64 " has %s %zu associated %s",
                      object_type_name(o->type), o->id, seen, w->max, w->to_type);
}

/* Append the ids of one embedded association list; *more set when it has paging.next.
 * Entries are counted before de-duplication, up to HS_RAW_ASSOC_MAX. */
static int embedded_ids(const struct jtape *t, size_t wrap, const struct hubspot_object *o,
                        const struct assoc_want *w, struct idvec *iv, int *more,
                        const char *endpoint, struct api_error *err)
{
    size_t results, paging, next, i, k;

    if (jtape_get_array(t, wrap, "results", &results) != JGET_OK) {
        hubspot_bad_answer(err, endpoint, "association without results");
        return -1;
    }
    for (i = results + 1, k = 0; k < t->n[results].count; k++, i = t->n[i].next) {
        int64_t id;
        if (jtape_get_int64_lenient(t, i, "id", 1, INT64_MAX, &id) != JGET_OK) {
            hubspot_bad_answer(err, endpoint, "association id is not a positive integer");
            return -1;
        }
        /* a pair is listed once per association label: eight times the cap is past it */
        if (iv->n >= HS_RAW_ASSOC_MAX) {
            assoc_too_many(o, w, 0, err);
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

/* Every association of o to w->to_type through the v4 API, replacing iv. */
static int v4_associations(const struct hubspot_call *c, const struct hubspot_object *o,
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
        if (hubspot_exchange(c, &(struct hubspot_req){ep, HTTP_GET, url, NULL, 0}, &resp, err) < 0)
            goto out;
        jtape_release(&t);
        if (hubspot_parse_answer(&resp, ep, &t, err) < 0)
            goto out;
        if (jtape_get_array(&t, JTAPE_ROOT, "results", &results) != JGET_OK) {
            hubspot_bad_answer(err, ep, "no results array");
            goto out;
        }
        n = t.n[results].count;
        i = results + 1;
        for (size_t k = 0; k < n; k++, i = t.n[i].next) {
            int64_t to;
            if (jtape_get_int64_lenient(&t, i, "toObjectId", 1, INT64_MAX, &to) != JGET_OK) {
                hubspot_bad_answer(err, ep, "toObjectId is not a positive integer");
                goto out;
            }
            if (iv->n >= max) {
                assoc_too_many(o, w, 0, err);
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
            hubspot_bad_answer(err, ep, "bad paging cursor");
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
static int read_assoc(const struct hubspot_call *c, const struct hubspot_object *o,
                      const struct jtape *t, size_t assoc, const struct assoc_want *w,
                      struct idvec *out, struct api_error *err)
{
    struct idvec iv = {0};
    const char *const *keys = w->keys;
    size_t max = w->max;
    size_t wrap;
    int more = 0;

    for (; assoc && *keys; keys++) {
        if (jtape_get_obj(t, assoc, *keys, &wrap) != JGET_OK)
            continue;
        if (embedded_ids(t, wrap, o, w, &iv, &more, "get_object", err) < 0)
            goto fail;
    }
    if (more && v4_associations(c, o, w, &iv, err) < 0)
        goto fail;
    idvec_sort_unique(&iv);
    if (iv.n > max) {
        assoc_too_many(o, w, iv.n, err);
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
    hubspot_strpool_free(o->strings);
    free(o->props);
    free(o->contact_ids);
    free(o->line_item_ids);
    free(o->company_ids);
    for (size_t k = 0; k < 3; k++)
        free(o->term_ids[k]);
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

static int get_object(const struct hubspot_call *c, enum hsqb_object_type type, int64_t object_id,
                      struct hubspot_object **out, struct api_error *err)
{
    static const char ep[] = "get_object";
    static const char *const contact_keys[] = {"contacts", NULL};
    static const char *const li_keys[] = {"line_items", "line items", NULL};
    static const struct assoc_want contacts = {contact_keys, "contacts", HUBSPOT_MAX_CONTACTS};
    static const struct assoc_want lines = {li_keys, "line_items", HUBSPOT_MAX_LINE_ITEMS, 1};
    static const char *const company_keys[] = {"companies", NULL};
    static const struct assoc_want companies = {company_keys, "companies",
                                                HUBSPOT_MAX_COMPANIES};
    static const char *const term_keys[3][2] = {{"discounts", NULL}, {"fees", NULL},
                                                {"taxes", NULL}};
    static const struct assoc_want terms[3] = {
        {term_keys[0], "discounts", HUBSPOT_MAX_TERMS},
        {term_keys[1], "fees", HUBSPOT_MAX_TERMS},
        {term_keys[2], "taxes", HUBSPOT_MAX_TERMS}};
    struct hubspot_api *api = c->api;
    const struct hubspot_ctx *ctx = c->hc;
    struct idvec ids;
    const char *const *names = hubspot_object_properties(type);
    char props[1024], base[HTTP_MAX_URL], url[HTTP_MAX_URL], uerr[128];
    struct http_param q[3] = {
        {"properties", props},
        {"associations", type == OBJECT_QUOTE  ? "contacts,line_items,companies,discounts,fees,taxes"
                         : type == OBJECT_DEAL ? "contacts,line_items,companies"
                                               : "contacts,line_items"},
        {"archived", "false"}};
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
    if (hubspot_exchange(c, &(struct hubspot_req){ep, HTTP_GET, url, NULL, 0}, &resp, err) < 0)
        goto out;
    if (hubspot_parse_answer(&resp, ep, &t, err) < 0)
        goto out;
    if (jtape_get_int64_lenient(&t, JTAPE_ROOT, "id", 1, INT64_MAX, &id) != JGET_OK ||
        id != object_id || jtape_get_obj(&t, JTAPE_ROOT, "properties", &jprops) != JGET_OK) {
        hubspot_bad_answer(err, ep, "missing id or properties");
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
        if (!(o->props[i].name = strpool_dup(&o->strings, names[i], strlen(names[i]))))
            goto oom;
        o->nprops++;
        if (hubspot_copy_prop(&t, jprops, names[i], &o->strings, &o->props[i].value, ep, err) < 0)
            goto out;
    }
    if (jtape_get_obj(&t, JTAPE_ROOT, "associations", &assoc) == JGET_WRONG_TYPE) {
        hubspot_bad_answer(err, ep, "associations is not an object");
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
    if (type != OBJECT_COMMERCE_PAYMENT) {
        if (read_assoc(c, o, &t, assoc, &companies, &ids, err) < 0)
            goto out;
        o->company_ids = ids.v;
        o->ncompanies = ids.n;
    }
    for (size_t k = 0; type == OBJECT_QUOTE && k < 3; k++) {
        if (read_assoc(c, o, &t, assoc, &terms[k], &ids, err) < 0)
            goto out;
        o->term_ids[k] = ids.v;
        o->nterms[k] = ids.n;
    }
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

/* ---- contacts and companies ------------------------------------------------------ */

int hubspot_address_present(const struct hubspot_address *a)
{
    return a && (a->line1 || a->city || a->state || a->zip || a->country);
}

/* The address members in address_props order. */
static void address_fields(struct hubspot_address *a, char **f[ADDRESS_NPROPS])
{
    f[0] = &a->line1;
    f[1] = &a->city;
    f[2] = &a->state;
    f[3] = &a->zip;
    f[4] = &a->country;
}

void hubspot_contact_free(struct hubspot_contact *c)
{
    if (!c)
        return;
    hubspot_strpool_free(c->strings);
    free(c);
}

void hubspot_company_free(struct hubspot_company *c)
{
    if (!c)
        return;
    hubspot_strpool_free(c->strings);
    free(c);
}

/* One record read by id: GET /crm/v3/objects/<path>/<id>?properties=<names>, each
 * property copied into *fields[i] (names and fields parallel, n of them) in *pool. */
static int get_record(const struct hubspot_call *c, const char *ep, const char *path, int64_t id,
                      const char *const *names, char **const *fields, size_t n,
                      struct hubspot_strpool **pool, struct api_error *err)
{
    char props[512], base[HTTP_MAX_URL], url[HTTP_MAX_URL], uerr[128];
    struct http_param q[2] = {{"properties", props}, {"archived", "false"}};
    struct http_response resp;
    struct jtape t = {0};
    size_t jprops, len = 0;
    int rc = -1;
    int64_t got;

    api_error_clear(err);
    http_response_init(&resp);
    props[0] = '\0';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(props + len, sizeof props - len, "%s%s", i ? "," : "", names[i]);
    if (id < 1 || c->hc->portal_id < 1 || len >= sizeof props) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "hubspot %s: bad arguments", ep);
        goto out;
    }
    snprintf(base, sizeof base, "%s/crm/v3/objects/%s/%" PRId64, c->api->base_url, path, id);
    if (http_url_build(url, sizeof url, base, q, 2, uerr, sizeof uerr) < 0) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "hubspot %s: %s", ep, uerr);
        goto out;
    }
    if (hubspot_exchange(c, &(struct hubspot_req){ep, HTTP_GET, url, NULL, 0}, &resp, err) < 0)
        goto out;
    if (hubspot_parse_answer(&resp, ep, &t, err) < 0)
        goto out;
    if (jtape_get_int64_lenient(&t, JTAPE_ROOT, "id", 1, INT64_MAX, &got) != JGET_OK ||
        got != id || jtape_get_obj(&t, JTAPE_ROOT, "properties", &jprops) != JGET_OK) {
        hubspot_bad_answer(err, ep, "missing id or properties");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (hubspot_copy_prop(&t, jprops, names[i], pool, fields[i], ep, err) < 0)
            goto out;
    rc = 0;
out:
    jtape_release(&t);
    http_response_release(&resp);
    return rc;
}

static int get_contact(const struct hubspot_call *c_, int64_t contact_id,
                       struct hubspot_contact **out, struct api_error *err)
{
    static const char *const names[] = {"firstname", "lastname", "email",   "company", "address",
                                        "city",      "state",    "zip",     "country"};
    struct hubspot_contact *c = calloc(1, sizeof *c);
    char **f[9];

    if (!c) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 0, "hubspot: out of memory");
        return -1;
    }
    f[0] = &c->firstname;
    f[1] = &c->lastname;
    f[2] = &c->email;
    f[3] = &c->company;
    address_fields(&c->addr, f + 4);
    if (get_record(c_, "get_contact", "contacts", contact_id, names, f, 9, &c->strings, err) < 0) {
        hubspot_contact_free(c);
        return -1;
    }
    c->id = contact_id;
    *out = c;
    return 0;
}

static int get_company(const struct hubspot_call *c_, int64_t company_id,
                       struct hubspot_company **out, struct api_error *err)
{
    static const char *const names[] = {"name", "address", "city", "state", "zip", "country"};
    struct hubspot_company *c = calloc(1, sizeof *c);
    char **f[6];

    if (!c) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 0, "hubspot: out of memory");
        return -1;
    }
    f[0] = &c->name;
    address_fields(&c->addr, f + 1);
    if (get_record(c_, "get_company", "companies", company_id, names, f, 6, &c->strings, err) < 0) {
        hubspot_company_free(c);
        return -1;
    }
    c->id = company_id;
    *out = c;
    return 0;
}

/* ---- the public calls: each failure names API_SOURCE_HUBSPOT ------------------------ */

int hubspot_get_object(const struct ioctx *io, struct hubspot_api *api,
                       const struct hubspot_ctx *hc, enum hsqb_object_type type, int64_t object_id,
                       struct hubspot_object **out, struct api_error *err)
{
    struct hubspot_call c = {io, api, hc};
    return api_error_tag(err, API_SOURCE_HUBSPOT, get_object(&c, type, object_id, out, err));
}

int hubspot_get_contact(const struct ioctx *io, struct hubspot_api *api,
                        const struct hubspot_ctx *hc, int64_t contact_id,
                        struct hubspot_contact **out, struct api_error *err)
{
    struct hubspot_call c = {io, api, hc};
    return api_error_tag(err, API_SOURCE_HUBSPOT, get_contact(&c, contact_id, out, err));
}

int hubspot_get_company(const struct ioctx *io, struct hubspot_api *api,
                        const struct hubspot_ctx *hc, int64_t company_id,
                        struct hubspot_company **out, struct api_error *err)
{
    struct hubspot_call c = {io, api, hc};
    return api_error_tag(err, API_SOURCE_HUBSPOT, get_company(&c, company_id, out, err));
}
