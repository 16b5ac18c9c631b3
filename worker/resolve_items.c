/* resolve_items.c - the QBO item for each line item of a document (rules in resolve.h):
 * the lookup by Sku then Name, the reactivation of an inactive match, and the creation
 * of the missing ones. Customers and the helpers the resolver's files share
 * (resolve_internal.h) live in resolve.c; accounts, terms, vendors and payment methods
 * in resolve_refs.c.
 *
 * Why this shape: the lookup (resolve_items_lookup) only reads, so an event that will
 * fail PRODUCT_NOT_FOUND creates nothing; the writes come after, in the order
 * resolve_items_writes() counts: reactivations first, then creates. A match is cached
 * under hex128 of its Sku or Name (an inactive one is not: it is active only once
 * reactivated); Category items are never matched, and an active item beats an inactive
 * one before the lowest Id does. A create runs like a customer's in resolve.c: under the
 * item key's lock, re-queried after taking it, with requestid step "item:<line index>"
 * (and ":<variant>"); on 6240 (the Name is taken) the next of NAME_VARIANTS names is
 * queried, then created: the plain name, then "<name> (<sku>)" ("<name> #<hash>"
 * without a Sku), then "<name> #<hash>" (the hash of the Sku, else of the name).
 *
 * Thread-safety: like the rest of the resolver, one struct resolve_ctx per worker thread.
 */
#include "worker/resolve.h"
#include "worker/resolve_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/hash.h"
#include "common/json.h"
#include "common/log.h"
#include "common/utf8.h"
#include "worker/claim.h"

#define NAME_VARIANTS 3

void resolve_item_name(const struct hubspot_line_item *li, char *out, size_t outsz)
{
    char buf[RESOLVE_NAME_MAX + 1];

    resolve_clean_name(li->name, buf, sizeof buf);
    if (!buf[0])
        resolve_clean_name(li->sku, buf, sizeof buf);
    if (!buf[0])
        snprintf(buf, sizeof buf, "HubSpot line item %" PRId64, li->id);
    utf8_truncate(buf, RESOLVE_ITEM_NAME_MAX);
    snprintf(out, outsz, "%s", buf);
}

static void item_suffix(const char *kind, const char *v, char *out, size_t outsz)
{
    char h[HASH_HEX128_LEN + 1];
    resolve_hex_of(v, h);
    snprintf(out, outsz, "item:%s:%s", kind, h);
}

/* Lowest-Id non-Category item whose `field` equals v. 0 with *found, -1 err. */
/* The item whose field equals v: an active one (lowest Id) before an inactive one. On an
 * inactive match: QBO_RECORD_INACTIVE, or with resolve.reactivate_inactive *found with
 * out->inactive set (resolve_items_reactivate() makes it active before the document). */
static int item_query(const struct resolve_ctx *rc, const char *field, const char *v, char *id,
                      int *found, struct resolve_item *out, struct api_error *err)
{
    char q[RESOLVE_NAME_MAX * 2 + 8], sql[QBO_SQL_MAX];
    struct json_object *rows, *brow = NULL;
    const char *best = NULL, *type;
    int bactive = 0;
    size_t i, n;

    *found = 0;
    if (resolve_quote(v, q, sizeof q, field, err) < 0)
        return -1;
    snprintf(sql, sizeof sql, "SELECT * FROM Item WHERE %s = %s AND Active IN (true,false)", field,
             q);
    rows = resolve_query_rows(rc, sql, err);
    if (!rows)
        return -1;
    n = json_object_array_length(rows);
    for (i = 0; i < n; i++) {
        struct json_object *row = json_object_array_get_idx(rows, i);
        const char *rid = resolve_row_id(row);
        int active = 1;
        if (!rid || (json_get_str(row, "Type", &type) == JGET_OK && strcmp(type, "Category") == 0))
            continue;
        (void)json_get_bool(row, "Active", &active);
        if (!best || (active && !bactive) ||
            (active == bactive && resolve_id_cmp(rid, best) < 0)) {
            best = rid;
            brow = row;
            bactive = active;
        }
    }
    if (best && !bactive) {
        if (!rc->opts->reactivate_inactive) {
            const char *nm = NULL;
            (void)json_get_str(brow, "Name", &nm);
            api_error_set(err, API_PERMANENT, HSQB_ERR_QBO_RECORD_INACTIVE, 0,
                          "the QuickBooks product \"%.100s\" (Id %s) is inactive; reactivate it "
                          "in QuickBooks (or set resolve.reactivate_inactive) and replay",
                          nm ? nm : v, best);
            json_object_put(rows);
            return -1;
        }
        out->inactive = 1;
        resolve_row_sync_token(brow, out->sync_token, sizeof out->sync_token);
    }
    if (best) {
        snprintf(id, RESOLVE_ID_MAX, "%s", best);
        *found = 1;
    }
    json_object_put(rows);
    return 0;
}

/* One line item: cache and QBO, by Sku then Name; caches what it finds. */
static int item_lookup_one(const struct resolve_ctx *rc, const struct hubspot_line_item *li,
                           struct resolve_item *out, struct api_error *err)
{
    char sfx[RESOLVE_KEY_SUFFIX_MAX], id[RESOLVE_ID_MAX];
    int found = 0;

    resolve_item_name(li, out->name, sizeof out->name);
    out->id[0] = '\0';
    out->inactive = 0;
    /* an inactive match is not cached: it is active only once reactivated */
    if (li->sku) {
        item_suffix("sku", li->sku, sfx, sizeof sfx);
        if (resolve_map_get(rc, sfx, id))
            found = 1;
        else if (item_query(rc, "Sku", li->sku, id, &found, out, err) < 0)
            return -1;
        else if (found && !out->inactive)
            resolve_map_set(rc, sfx, id);
    }
    if (!found) {
        item_suffix("name", out->name, sfx, sizeof sfx);
        if (resolve_map_get(rc, sfx, id))
            found = 1;
        else if (item_query(rc, "Name", out->name, id, &found, out, err) < 0)
            return -1;
        else if (found && !out->inactive)
            resolve_map_set(rc, sfx, id);
    }
    if (found)
        snprintf(out->id, sizeof out->id, "%s", id);
    return 0;
}

int resolve_items_lookup(const struct resolve_ctx *rc, const struct hubspot_line_item *li, size_t n,
                         struct resolve_item *out, size_t *nmissing, struct api_error *err)
{
    size_t i, j, miss = 0;

    api_error_clear(err);
    for (i = 0; i < n; i++) {
        out[i].created = 0;
        /* lines sharing a SKU (or, without SKUs, a name) share the lookup */
        for (j = 0; j < i; j++)
            if ((li[i].sku && li[j].sku && strcmp(li[i].sku, li[j].sku) == 0) ||
                (!li[i].sku && !li[j].sku && li[i].name && li[j].name &&
                 strcmp(li[i].name, li[j].name) == 0))
                break;
        if (j < i) {
            out[i] = out[j];
        } else if (item_lookup_one(rc, &li[i], &out[i], err) < 0) {
            return -1;
        }
        if (!out[i].id[0])
            miss++;
    }
    *nmissing = miss;
    return 0;
}

static void item_variant_name(const struct hubspot_line_item *li, const char *base, int v,
                              char *out, size_t outsz)
{
    char buf[RESOLVE_ITEM_NAME_MAX + 1], suffix[160], hex[HASH_SHA256_HEX_LEN + 1];
    const char *key = li->sku ? li->sku : base;

    snprintf(buf, sizeof buf, "%s", base);
    suffix[0] = '\0';
    if (v == 1 && li->sku) {
        char sku[RESOLVE_ITEM_NAME_MAX + 1];
        resolve_clean_name(li->sku, sku, sizeof sku);
        utf8_truncate(sku, 60);
        snprintf(suffix, sizeof suffix, " (%s)", sku);
    }
    if (v >= 2 || (v == 1 && !li->sku)) {
        if (hash_sha256_hex(key, strlen(key), hex) < 0)
            snprintf(hex, sizeof hex, "%s", "00000000");
        snprintf(suffix + strlen(suffix), sizeof suffix - strlen(suffix), " #%.8s", hex);
    }
    utf8_truncate(buf, RESOLVE_ITEM_NAME_MAX - strlen(suffix));
    resolve_join2(out, outsz, buf, suffix);
}

/* The Service Item to create, as one JSON object into out (empty): 0, or -1 when out
 * latched an error. A SKU or description over QBO's limit is left out, not cut. */
static int item_body(const struct hubspot_line_item *li, const char *name, const char *income,
                     struct jbuf *out)
{
    jbuf_obj_open(out);
    jbuf_kv_str(out, "Name", name);
    jbuf_kv_str(out, "Type", "Service");
    jbuf_key(out, "IncomeAccountRef");
    jbuf_obj_open(out);
    jbuf_kv_str(out, "value", income);
    jbuf_obj_close(out);
    if (li->sku && strlen(li->sku) <= 100)
        jbuf_kv_str(out, "Sku", li->sku);
    if (li->description && strlen(li->description) <= 4000)
        jbuf_kv_str(out, "Description", li->description);
    jbuf_obj_close(out);
    return out->err ? -1 : 0;
}

static int item_create(const struct resolve_ctx *rc, const struct hubspot_line_item *li,
                       size_t index, const char *income, struct resolve_item *out,
                       struct api_error *err)
{
    char name[RESOLVE_ITEM_NAME_MAX + 1], step[48], rid[CLAIM_REQUEST_ID_MAX + 1];
    struct json_object *ent = NULL;
    struct jbuf body;
    int v, found, r;

    for (v = 0; v < NAME_VARIANTS; v++) {
        item_variant_name(li, out->name, v, name, sizeof name);
        if (v > 0) {
            if (item_query(rc, "Name", name, out->id, &found, out, err) < 0)
                return -1;
            if (found) {
                snprintf(out->name, sizeof out->name, "%s", name);
                return 0;
            }
        }
        if (resolve_lost(rc, err))
            return -1;
        if (v)
            snprintf(step, sizeof step, "item:%zu:%d", index, v);
        else
            snprintf(step, sizeof step, "item:%zu", index);
        if (claim_request_id_gen(rc->event_id, step, rc->generation, rid) < 0) {
            api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "requestid derivation failed");
            return -1;
        }
        jbuf_init(&body, QBO_BODY_MAX);
        if (item_body(li, name, income, &body) < 0) {
            jbuf_release(&body);
            return resolve_body_oom(err);
        }
        r = qbo_create(rc->io, rc->qbo,
                       &(struct qbo_req){rc->realm, "item", rid, jbuf_cstr(&body), body.len}, &ent,
                       err);
        jbuf_release(&body);
        if (r == 0) {
            const char *nid = resolve_row_id(ent);
            if (!nid) {
                json_object_put(ent);
                return qbo_error_no_id(err, "an", "item");
            }
            snprintf(out->id, sizeof out->id, "%s", nid);
            snprintf(out->name, sizeof out->name, "%s", name);
            out->created = 1;
            json_object_put(ent);
            return 0;
        }
        if (strcmp(err->qbo_fault_code, "6240") != 0)
            return -1;
        log_info("resolve: item name \"%s\" is taken in realm %s; disambiguating", name, rc->realm);
    }
    api_error_set(err, API_PERMANENT, HSQB_ERR_QBO_VALIDATION, 400,
                  "every Name variant for line item %" PRId64 " is taken in QuickBooks", li->id);
    snprintf(err->qbo_fault_code, sizeof err->qbo_fault_code, "6240");
    return -1;
}

int resolve_items_reactivate(const struct resolve_ctx *rc, struct resolve_item *out, size_t n,
                             struct api_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (!out[i].inactive)
            continue;
        for (size_t j = 0; j < i; j++)
            if (strcmp(out[j].id, out[i].id) == 0)
                goto done; /* two lines, one item: reactivated once */
        if (resolve_inactive_match(rc, "item", "product", out[i].name, out[i].id,
                                   out[i].sync_token, err) < 0)
            return -1;
    done:
        out[i].inactive = 0;
    }
    return 0;
}

/* 1 when line items i and j get one created item: the same SKU, or no SKUs and the same
 * Name. */
static int same_item_key(const struct hubspot_line_item *li, const struct resolve_item *out,
                         size_t i, size_t j)
{
    return (li[i].sku && li[j].sku && strcmp(li[i].sku, li[j].sku) == 0) ||
           (!li[i].sku && !li[j].sku && strcmp(out[i].name, out[j].name) == 0);
}

size_t resolve_items_writes(const struct hubspot_line_item *li, size_t n,
                            const struct resolve_item *out)
{
    size_t i, j, w = 0;

    for (i = 0; i < n; i++) {
        if (out[i].id[0] && !out[i].inactive)
            continue;
        for (j = 0; j < i; j++)
            if (out[i].id[0] ? strcmp(out[j].id, out[i].id) == 0
                             : !out[j].id[0] && same_item_key(li, out, i, j))
                break;
        w += j == i;
    }
    return w;
}

int resolve_items_create(const struct resolve_ctx *rc, const struct hubspot_line_item *li, size_t n,
                         struct resolve_item *out, struct api_error *err)
{
    char income[RESOLVE_ID_MAX], lockname[RESOLVE_KEY_SUFFIX_MAX], h[HASH_HEX128_LEN + 1];
    char key[RESOLVE_NAME_MAX + 8], sfx[RESOLVE_KEY_SUFFIX_MAX];
    struct redis_lease lease;
    int have_income = 0, r;
    size_t i, j;

    api_error_clear(err);
    for (i = 0; i < n; i++) {
        if (out[i].id[0])
            continue;
        for (j = 0; j < i; j++) /* a line sharing the key was created just now */
            if (same_item_key(li, out, i, j))
                break;
        if (j < i && out[j].id[0]) {
            memcpy(out[i].id, out[j].id, sizeof out[i].id);
            memcpy(out[i].name, out[j].name, sizeof out[i].name);
            continue; /* created stays 0: reported once */
        }
        if (!have_income) {
            if (resolve_income_account(rc, income, err) < 0)
                return -1;
            have_income = 1;
        }
        snprintf(key, sizeof key, "%s:%s", li[i].sku ? "sku" : "name",
                 li[i].sku ? li[i].sku : out[i].name);
        resolve_hex_of(key, h);
        snprintf(lockname, sizeof lockname, "item:%s", h);
        if (resolve_lock_take(rc, lockname, &lease, err) < 0)
            return -1;
        r = item_lookup_one(rc, &li[i], &out[i], err);
        if (r == 0 && !out[i].id[0])
            r = item_create(rc, &li[i], i, income, &out[i], err);
        resolve_lock_drop(rc, &lease);
        if (r < 0)
            return -1;
        if (li[i].sku) {
            item_suffix("sku", li[i].sku, sfx, sizeof sfx);
            resolve_map_set(rc, sfx, out[i].id);
        }
        {
            char base[RESOLVE_ITEM_NAME_MAX + 1];
            resolve_item_name(&li[i], base, sizeof base);
            item_suffix("name", base, sfx, sizeof sfx);
            resolve_map_set(rc, sfx, out[i].id);
        }
    }
    return 0;
}

int resolve_items_missing(const struct hubspot_line_item *li, size_t n,
                          const struct resolve_item *out, struct api_error *err,
                          char **details_json)
{
    struct jbuf jb, msg;
    size_t i, miss = 0;
    char idbuf[24];
    int rc = 0;

    *details_json = NULL;
    jbuf_init(&jb, 64 * 1024);
    jbuf_init(&msg, 0);
    jbuf_obj_open(&jb);
    jbuf_key(&jb, "line_items");
    jbuf_arr_open(&jb);
    for (i = 0; i < n; i++) {
        if (out[i].id[0])
            continue;
        snprintf(idbuf, sizeof idbuf, "%" PRId64, li[i].id);
        jbuf_obj_open(&jb);
        jbuf_kv_str(&jb, "id", idbuf);
        jbuf_kv_str(&jb, "name", out[i].name);
        jbuf_kv_str(&jb, "sku", li[i].sku);
        jbuf_obj_close(&jb);
        /* the message text: "Gold plan (sku GOLD-1), Setup fee" */
        if (miss)
            jbuf_escape(&msg, ", ", 2);
        jbuf_escape(&msg, out[i].name, strlen(out[i].name));
        if (li[i].sku) {
            jbuf_escape(&msg, " (sku ", 6);
            jbuf_escape(&msg, li[i].sku, strlen(li[i].sku));
            jbuf_escape(&msg, ")", 1);
        }
        miss++;
    }
    jbuf_arr_close(&jb);
    jbuf_obj_close(&jb);
    api_error_set(err, API_PERMANENT, HSQB_ERR_PRODUCT_NOT_FOUND, 0,
                  "%zu line item%s no QuickBooks product: %s", miss, miss == 1 ? " has" : "s have",
                  jbuf_cstr(&msg) ? jbuf_cstr(&msg) : "");
    if (jb.err || !jbuf_cstr(&jb) || !(*details_json = strdup(jbuf_cstr(&jb))))
        rc = -1;
    jbuf_release(&jb);
    jbuf_release(&msg);
    return rc;
}

void resolve_forget_items(const struct resolve_ctx *rc, const struct hubspot_line_item *li,
                          size_t n)
{
    char sfx[RESOLVE_KEY_SUFFIX_MAX], name[RESOLVE_ITEM_NAME_MAX + 1];
    size_t i;

    for (i = 0; i < n; i++) {
        if (li[i].sku) {
            item_suffix("sku", li[i].sku, sfx, sizeof sfx);
            resolve_map_del(rc, sfx);
        }
        resolve_item_name(&li[i], name, sizeof name);
        item_suffix("name", name, sfx, sizeof sfx);
        resolve_map_del(rc, sfx);
    }
}
