/* hubspot_batch.c - HubSpot's batch reads (see hubspot.h): a deal's, quote's or payment's
 * line items and a quote's discounts, fees and taxes, by
 * POST /crm/v3/objects/<type>/batch/read in batches of HUBSPOT_BATCH_MAX ids, each answer
 * read as a tape and its properties copied into the result's string pool
 * (hubspot_copy_prop). Every id asked for must come back: one missing fails the read
 * (API_NOT_FOUND) naming it. Line items are put in their quote order
 * (hs_position_on_quote, then id) by hubspot_line_items_order().
 */
#include "worker/hubspot.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/jtape.h"
#include "worker/hubspot_internal.h"

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
                                              "hs_tax_rate",
                                              "hs_tax_amount",
                                              "hs_position_on_quote",
                                              NULL};
static const char *const term_props[] = {"hs_label", "hs_type", "hs_value", "hs_sort_order", NULL};

/* ---- batch reads: line items, discounts, fees, taxes ------------------------------ */

/* The string members of a line item, in line_item_props order. */
#define LINE_ITEM_NPROPS 15
static void line_item_fields(struct hubspot_line_item *li, char **f[LINE_ITEM_NPROPS])
{
    char **m[LINE_ITEM_NPROPS] = {
        &li->name,           &li->description,       &li->sku,
        &li->product_id,     &li->quantity,          &li->price,
        &li->amount,         &li->discount,          &li->discount_percentage,
        &li->total_discount, &li->tax_rate_group_id, &li->currency,
        &li->tax_rate,       &li->tax_amount,        &li->position};
    memcpy(f, m, sizeof m);
}

int64_t hubspot_order_key(const char *s)
{
    int64_t v = 0;

    if (!s || !*s)
        return INT64_MAX;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (INT64_MAX - 9) / 10)
            return INT64_MAX;
        v = v * 10 + (*s - '0');
    }
    return v;
}

static int cmp_line(const void *pa, const void *pb)
{
    const struct hubspot_line_item *a = pa, *b = pb;
    int64_t ka = hubspot_order_key(a->position), kb = hubspot_order_key(b->position);

    if (ka != kb)
        return ka < kb ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

void hubspot_line_items_order(struct hubspot_line_item *li, size_t n)
{
    if (n > 1)
        qsort(li, n, sizeof *li, cmp_line);
}

void hubspot_line_items_free(struct hubspot_line_items *l)
{
    if (!l)
        return;
    hubspot_strpool_free(l->strings);
    free(l->items);
    free(l);
}

#define TERM_NPROPS 4
static void term_fields(struct hubspot_price_term *t, char **f[TERM_NPROPS])
{
    f[0] = &t->label;
    f[1] = &t->type;
    f[2] = &t->value;
    f[3] = &t->sort_order;
}

void hubspot_price_terms_free(struct hubspot_price_terms *l)
{
    if (!l)
        return;
    hubspot_strpool_free(l->strings);
    free(l->items);
    free(l);
}

/* What one batch read fetches: the object path, the endpoint label, the properties, and
 * the string members of one element (elements of `size` bytes) they are copied into. */
struct batch_kind {
    const char *ep, *path;
    const char *const *props;
    size_t nprops, size;
    void (*fields)(void *elem, char ***f);
    void (*set_id)(void *elem, int64_t id);
};

static void li_fields(void *e, char ***f)
{
    line_item_fields(e, f);
}
static void li_set_id(void *e, int64_t id)
{
    ((struct hubspot_line_item *)e)->id = id;
}
static void tm_fields(void *e, char ***f)
{
    term_fields(e, f);
}
static void tm_set_id(void *e, int64_t id)
{
    ((struct hubspot_price_term *)e)->id = id;
}

static const struct batch_kind k_line_items = {
    "batch_read_line_items",          "line_items", line_item_props, LINE_ITEM_NPROPS,
    sizeof(struct hubspot_line_item), li_fields,    li_set_id};
static const struct batch_kind k_terms[3] = {
    {"batch_read_discounts", "discounts", term_props, TERM_NPROPS,
     sizeof(struct hubspot_price_term), tm_fields, tm_set_id},
    {"batch_read_fees", "fees", term_props, TERM_NPROPS, sizeof(struct hubspot_price_term),
     tm_fields, tm_set_id},
    {"batch_read_taxes", "taxes", term_props, TERM_NPROPS, sizeof(struct hubspot_price_term),
     tm_fields, tm_set_id}};

/* One batch of ids[0..n) into elems[0..n), their strings in *pool. filled[i] set when
 * returned. */
static int batch_read(const struct hubspot_call *c, const struct batch_kind *k, const int64_t *ids,
                      size_t n, char *elems, unsigned char *filled, struct hubspot_strpool **pool,
                      struct api_error *err)
{
    const char *ep = k->ep;
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
    for (const char *const *p = k->props; *p; p++)
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
    snprintf(url, sizeof url, "%s/crm/v3/objects/%s/batch/read?archived=false", c->api->base_url,
             k->path);
    if (!jbuf_cstr(&jb)) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 0, "hubspot %s: body", ep);
        goto out;
    }
    if (hubspot_exchange(c, &(struct hubspot_req){ep, HTTP_POST, url, jb.buf, jb.len}, &resp, err) <
        0)
        goto out;
    if (hubspot_parse_answer(&resp, ep, &t, err) < 0)
        goto out;
    if (jtape_get_array(&t, JTAPE_ROOT, "results", &results) != JGET_OK) {
        hubspot_bad_answer(err, ep, "no results array");
        goto out;
    }
    for (r = results + 1, m = 0; m < t.n[results].count; m++, r = t.n[r].next) {
        size_t jprops;
        int64_t id;
        if (jtape_get_int64_lenient(&t, r, "id", 1, INT64_MAX, &id) != JGET_OK ||
            jtape_get_obj(&t, r, "properties", &jprops) != JGET_OK) {
            hubspot_bad_answer(err, ep, "result without id or properties");
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            char **f[LINE_ITEM_NPROPS]; /* the widest kind */
            void *e = elems + i * k->size;
            if (ids[i] != id || filled[i])
                continue;
            k->fields(e, f);
            for (size_t p = 0; p < k->nprops; p++)
                if (hubspot_copy_prop(&t, jprops, k->props[p], pool, f[p], ep, err) < 0)
                    goto out;
            k->set_id(e, id);
            filled[i] = 1;
        }
    }
    rc = 0;
out:
    jtape_release(&t);
    jbuf_release(&jb);
    http_response_release(&resp);
    return rc;
}

/* Where a batch read lands: n elements (zeroed by the caller) and the pool their
 * strings are copied into. */
struct batch_dest {
    char *elems;
    struct hubspot_strpool **strings;
};

/* Read the n ids (unique, positive, n <= max) in batches of HUBSPOT_BATCH_MAX into
 * dst; any id not returned fails the whole read naming it (`what`: "line item"). */
static int batch_read_all(const struct hubspot_call *c, const struct batch_kind *k,
                          const int64_t *ids, size_t n, size_t max, const char *what,
                          const struct batch_dest *dst, struct api_error *err)
{
    unsigned char *filled = NULL;
    char missing[256] = "";
    size_t nmissing = 0, mlen = 0;
    int rc = -1;

    api_error_clear(err);
    if (n > max) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, 0,
                      "hubspot: %zu %ss, more than the %zu an event may have", n, what, max);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i && ids[i] > 0; j++)
            if (ids[j] == ids[i])
                goto bad;
        if (ids[i] < 1)
            goto bad;
    }
    if (n && !(filled = calloc(n, 1))) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 0, "hubspot: out of memory");
        return -1;
    }
    for (size_t off = 0; off < n; off += HUBSPOT_BATCH_MAX) {
        size_t m = n - off < HUBSPOT_BATCH_MAX ? n - off : HUBSPOT_BATCH_MAX;
        if (batch_read(c, k, ids + off, m, dst->elems + off * k->size, filled + off, dst->strings,
                       err) < 0)
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
                      "hubspot: %zu %s(s) not found: %s%s", nmissing, what, missing,
                      nmissing > 20 ? ", ..." : "");
        goto out;
    }
    rc = 0;
    goto out;
bad:
    api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0,
                  "hubspot: %s ids must be unique and positive", what);
out:
    free(filled);
    return rc;
}

static int get_line_items(const struct hubspot_call *c, const int64_t *ids, size_t n,
                          struct hubspot_line_items **out, struct api_error *err)
{
    struct hubspot_line_items *l = calloc(1, sizeof *l);

    if (!l || (n && !(l->items = calloc(n, sizeof *l->items)))) {
        free(l);
        api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 0, "hubspot: out of memory");
        return -1;
    }
    l->n = n;
    if (batch_read_all(c, &k_line_items, ids, n, HUBSPOT_MAX_LINE_ITEMS, "line item",
                       &(struct batch_dest){(char *)l->items, &l->strings}, err) < 0) {
        hubspot_line_items_free(l);
        return -1;
    }
    *out = l;
    return 0;
}

static int get_price_terms(const struct hubspot_call *c, const struct hubspot_object *q,
                           struct hubspot_price_terms **out, struct api_error *err)
{
    static const char *const what[3] = {"discount", "fee", "tax"};
    struct hubspot_price_terms *l = calloc(1, sizeof *l);
    size_t total = 0, at = 0;

    api_error_clear(err);
    for (size_t k = 0; k < 3; k++)
        total += q->nterms[k];
    if (!l || (total && !(l->items = calloc(total, sizeof *l->items)))) {
        free(l);
        api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 0, "hubspot: out of memory");
        return -1;
    }
    for (size_t k = 0; k < 3; k++) {
        size_t n = q->nterms[k];
        if (!n)
            continue;
        if (batch_read_all(c, &k_terms[k], q->term_ids[k], n, HUBSPOT_MAX_TERMS, what[k],
                           &(struct batch_dest){(char *)(l->items + at), &l->strings}, err) < 0) {
            l->n = at + n; /* free what this batch filled too */
            hubspot_price_terms_free(l);
            return -1;
        }
        for (size_t i = at; i < at + n; i++)
            l->items[i].kind = (enum hubspot_term_kind)k;
        at += n;
        l->n = at;
    }
    *out = l;
    return 0;
}

/* ---- the public calls: each failure names API_SOURCE_HUBSPOT ------------------------ */

int hubspot_get_price_terms(const struct ioctx *io, struct hubspot_api *api,
                            const struct hubspot_ctx *hc, const struct hubspot_object *q,
                            struct hubspot_price_terms **out, struct api_error *err)
{
    struct hubspot_call c = {io, api, hc};
    return api_error_tag(err, API_SOURCE_HUBSPOT, get_price_terms(&c, q, out, err));
}

int hubspot_get_line_items(const struct ioctx *io, struct hubspot_api *api,
                           const struct hubspot_ctx *hc, const int64_t *ids, size_t n,
                           struct hubspot_line_items **out, struct api_error *err)
{
    struct hubspot_call c = {io, api, hc};
    return api_error_tag(err, API_SOURCE_HUBSPOT, get_line_items(&c, ids, n, out, err));
}
