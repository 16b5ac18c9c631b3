/* resolve_refs.c - the references a document names by Id or by name rather than derives
 * from a HubSpot record: accounts, payment terms, expense vendors and payment methods
 * (rules in resolve.h). Customers, and the helpers the resolver's files share
 * (resolve_internal.h), live in resolve.c; items in resolve_items.c.
 *
 * Why this shape: an input of digits is an Id, read once to check it exists, so a wrong
 * Id fails as *_NOT_FOUND here instead of as a validation fault on the document; a name
 * is cached under hex128 of itself and matched by an exact-name query (lowest Id wins).
 * Accounts and terms follow that one shape (ref_resolve) and are never created. A vendor
 * missing by name is created like a customer in resolve.c: under its lock, re-queried
 * after taking it, with the requestid step "vendor" (never renamed on 6240). A payment
 * method is optional, so only looked up: one read of all of them on a miss.
 */
#include "worker/resolve.h"
#include "worker/resolve_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "common/utf8.h"
#include "worker/claim.h"

/* ---- accounts and terms ------------------------------------------------------------ */

/* Read entity/id to check it exists and is active: 0 found, 1 not found or inactive (a
 * document cannot use an inactive account or term: QBO answers 610), -1 other failure. */
static int exists_by_id(const struct resolve_ctx *rc, const char *entity, const char *id,
                        struct api_error *err)
{
    struct json_object *ent = NULL;
    int r = qbo_read(rc->io, rc->qbo, rc->realm, entity, id, &ent, err), active = 1;

    if (r == 0 && json_get_bool(ent, "Active", &active) == JGET_OK && !active)
        r = 1;
    json_object_put(ent);
    if (r == 0)
        return 0;
    if (r == 1)
        return 1;
    if (err->cls == API_NOT_FOUND || strcmp(err->qbo_fault_code, "610") == 0 ||
        strcmp(err->qbo_fault_code, "2030") == 0)
        return 1;
    return -1;
}

/* Lowest-Id row of `sql`; 0 with *found, -1 err. */
static int first_row(const struct resolve_ctx *rc, const char *sql, char *id, int *found,
                     struct api_error *err)
{
    struct json_object *rows = resolve_query_rows(rc, sql, err);
    const char *best = NULL;
    size_t i, n;

    *found = 0;
    if (!rows)
        return -1;
    n = json_object_array_length(rows);
    for (i = 0; i < n; i++) {
        const char *rid = resolve_row_id(json_object_array_get_idx(rows, i));
        if (rid && (!best || resolve_id_cmp(rid, best) < 0))
            best = rid;
    }
    if (best) {
        snprintf(id, RESOLVE_ID_MAX, "%s", best);
        *found = 1;
    }
    json_object_put(rows);
    return 0;
}

/* What tells an account lookup from a term lookup; everything else is ref_resolve. */
struct ref_kind {
    const char *entity;        /* qbo_read entity and cache-key prefix */
    const char *table;         /* the query's FROM */
    const char *fields[3];     /* matched in order until one finds a row; NULL-terminated */
    const char *what;          /* the input, in a "too long to quote" error */
    const char *noun;          /* the entity, in the not-found error */
    enum hsqb_error not_found; /* its code */
};

static const struct ref_kind account_kind = {
    .entity = "account",
    .table = "Account",
    .fields = {"FullyQualifiedName", "Name", NULL},
    .what = "account name",
    .noun = "account",
    .not_found = HSQB_ERR_ACCOUNT_NOT_FOUND,
};

static const struct ref_kind term_kind = {
    .entity = "term",
    .table = "Term",
    .fields = {"Name", NULL},
    .what = "payment terms",
    .noun = "payment term",
    .not_found = HSQB_ERR_TERM_NOT_FOUND,
};

/* input as k: digits = an Id that must exist; else the mapping <entity>:<hex128(input)>;
 * else the lowest-Id row whose k->fields[i] equals input, cached. Unknown -> k->not_found
 * (API_PERMANENT). id set only on 0. */
static int ref_resolve(const struct resolve_ctx *rc, const struct ref_kind *k, const char *input,
                       char *id, struct api_error *err)
{
    char sfx[RESOLVE_KEY_SUFFIX_MAX], h[HASH_HEX128_LEN + 1], q[RESOLVE_NAME_MAX * 2 + 8];
    char sql[QBO_SQL_MAX], tmp[RESOLVE_ID_MAX];
    int found = 0, r;
    size_t i;

    api_error_clear(err);
    if (resolve_is_digits(input) && strlen(input) < RESOLVE_ID_MAX) {
        r = exists_by_id(rc, k->entity, input, err);
        if (r < 0)
            return -1;
        if (r == 0) {
            snprintf(id, RESOLVE_ID_MAX, "%s", input);
            return 0;
        }
        goto notfound;
    }
    resolve_hex_of(input, h);
    snprintf(sfx, sizeof sfx, "%s:%s", k->entity, h);
    if (resolve_map_get(rc, sfx, tmp)) {
        snprintf(id, RESOLVE_ID_MAX, "%s", tmp);
        return 0;
    }
    if (resolve_quote(input, q, sizeof q, k->what, err) < 0)
        return -1;
    for (i = 0; k->fields[i] && !found; i++) {
        snprintf(sql, sizeof sql, "SELECT * FROM %s WHERE %s = %s", k->table, k->fields[i], q);
        if (first_row(rc, sql, tmp, &found, err) < 0)
            return -1;
    }
    if (!found)
        goto notfound;
    resolve_map_set(rc, sfx, tmp);
    snprintf(id, RESOLVE_ID_MAX, "%s", tmp);
    return 0;
notfound:
    api_error_set(err, API_PERMANENT, k->not_found, 0,
                  "QuickBooks has no %s \"%.200s\" in realm %s", k->noun, input, rc->realm);
    return -1;
}

void resolve_forget_refs(const struct resolve_ctx *rc, const struct resolve_refs_used *u)
{
    char sfx[RESOLVE_KEY_SUFFIX_MAX], h[HASH_HEX128_LEN + 1];

    if (u->term && !resolve_is_digits(u->term)) {
        resolve_hex_of(u->term, h);
        snprintf(sfx, sizeof sfx, "%s:%s", term_kind.entity, h);
        resolve_map_del(rc, sfx);
    }
    for (size_t i = 0; i < 3; i++) {
        if (!u->accounts[i] || resolve_is_digits(u->accounts[i]))
            continue;
        resolve_hex_of(u->accounts[i], h);
        snprintf(sfx, sizeof sfx, "%s:%s", account_kind.entity, h);
        resolve_map_del(rc, sfx);
    }
    for (size_t i = 0; u->paymethods && u->paymethods[i]; i++) {
        resolve_hex_of(u->paymethods[i], h);
        snprintf(sfx, sizeof sfx, "paymethod:%s", h);
        resolve_map_del(rc, sfx);
    }
    if (u->income)
        resolve_map_del(rc, "account:income");
}

int resolve_account(const struct resolve_ctx *rc, const char *name, char *id, struct api_error *err)
{
    return ref_resolve(rc, &account_kind, name, id, err);
}

int resolve_income_account(const struct resolve_ctx *rc, char *id, struct api_error *err)
{
    char tmp[RESOLVE_ID_MAX];
    int found = 0;

    static const char *const discovery[] = {
        "SELECT * FROM Account WHERE AccountSubType = 'SalesOfProductIncome'",
        "SELECT * FROM Account WHERE AccountSubType = 'ServiceFeeIncome'",
        "SELECT * FROM Account WHERE AccountType = 'Income'"};

    api_error_clear(err);
    if (rc->income_account && *rc->income_account)
        return resolve_account(rc, rc->income_account, id, err);
    if (rc->company_income_account && *rc->company_income_account)
        return resolve_account(rc, rc->company_income_account, id, err);
    for (size_t i = 0; i < rc->opts->nby_realm; i++)
        if (strcmp(rc->opts->by_realm[i].realm, rc->realm) == 0)
            return resolve_account(rc, rc->opts->by_realm[i].value, id, err);
    if (rc->opts->income_account[0])
        return resolve_account(rc, rc->opts->income_account, id, err);
    if (resolve_map_get(rc, "account:income", tmp)) {
        snprintf(id, RESOLVE_ID_MAX, "%s", tmp);
        return 0;
    }
    /* the revenue account an accountant books products to, before any Income account */
    for (size_t i = 0; i < 3 && !found; i++)
        if (first_row(rc, discovery[i], tmp, &found, err) < 0)
            return -1;
    if (!found) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_ACCOUNT_NOT_FOUND, 0,
                      "realm %s has no active Income account for new items (set "
                      "items.income_account)",
                      rc->realm);
        return -1;
    }
    resolve_map_set(rc, "account:income", tmp);
    snprintf(id, RESOLVE_ID_MAX, "%s", tmp);
    return 0;
}

int resolve_term(const struct resolve_ctx *rc, const char *terms, char *id, struct api_error *err)
{
    return ref_resolve(rc, &term_kind, terms, id, err);
}

/* ---- vendors and payment methods --------------------------------------------------- */

/* The cleaned vendor name and its cache / lock suffixes (hex of the lower-cased name:
 * QBO names compare without ASCII case). 0, or -1 when nothing is left of the name. */
static int vendor_keys(const char *input, char *name, size_t namesz, char *sfx, size_t sfxsz,
                       char *lockname, size_t locksz)
{
    char lower[RESOLVE_NAME_MAX + 1], h[HASH_HEX128_LEN + 1];
    size_t i;

    if (!input)
        return -1;
    memset(name, 0, namesz);
    resolve_clean_name(input, name, namesz);
    utf8_truncate(name, RESOLVE_NAME_MAX);
    if (!name[0])
        return -1;
    snprintf(lower, sizeof lower, "%s", name);
    for (i = 0; lower[i]; i++)
        lower[i] = (char)tolower((unsigned char)lower[i]);
    resolve_hex_of(lower, h);
    snprintf(sfx, sfxsz, "vendor:%s", h);
    snprintf(lockname, locksz, "vendor:%s", h);
    return 0;
}

static int vendor_query(const struct resolve_ctx *rc, const char *name, char *id, int *found,
                        struct api_error *err)
{
    char q[RESOLVE_NAME_MAX * 2 + 8], sql[QBO_SQL_MAX];

    if (resolve_quote(name, q, sizeof q, "vendor name", err) < 0)
        return -1;
    snprintf(sql, sizeof sql, "SELECT * FROM Vendor WHERE DisplayName = %s", q);
    return first_row(rc, sql, id, found, err);
}

static int vendor_create(const struct resolve_ctx *rc, const char *name, char *id,
                         struct api_error *err)
{
    char rid[CLAIM_REQUEST_ID_MAX + 1];
    struct json_object *ent = NULL;
    struct jbuf body;
    const char *nid;
    int r;

    if (resolve_lost(rc, err))
        return -1;
    if (claim_request_id_gen(rc->event_id, "vendor", rc->generation, rid) < 0) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "requestid derivation failed");
        return -1;
    }
    jbuf_init(&body, QBO_BODY_MAX);
    jbuf_obj_open(&body);
    jbuf_kv_str(&body, "DisplayName", name);
    jbuf_obj_close(&body);
    if (body.err) {
        jbuf_release(&body);
        api_error_clear(err);
        api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 0, "out of memory");
        return -1;
    }
    r = qbo_create(rc->io, rc->qbo,
                   &(struct qbo_req){rc->realm, "vendor", rid, jbuf_cstr(&body), body.len}, &ent,
                   err);
    jbuf_release(&body);
    if (r < 0) {
        if (strcmp(err->qbo_fault_code, "6240") == 0)
            api_error_set(err, API_PERMANENT, HSQB_ERR_VENDOR_NOT_FOUND, 400,
                          "QuickBooks has no active vendor \"%.200s\" in realm %s and cannot "
                          "create one: a customer, employee or inactive vendor holds the name",
                          name, rc->realm);
        return -1;
    }
    nid = resolve_row_id(ent);
    if (!nid) {
        json_object_put(ent);
        return qbo_error_no_id(err, "a", "vendor");
    }
    snprintf(id, RESOLVE_ID_MAX, "%s", nid);
    json_object_put(ent);
    return 0;
}

int resolve_vendor(const struct resolve_ctx *rc, const char *input, char *id, int *created,
                   struct api_error *err)
{
    char name[RESOLVE_NAME_MAX + 1], sfx[RESOLVE_KEY_SUFFIX_MAX], lockname[RESOLVE_KEY_SUFFIX_MAX];
    char tmp[RESOLVE_ID_MAX];
    struct redis_lease lease;
    int found = 0, made = 0, r;

    api_error_clear(err);
    if (resolve_is_digits(input) && strlen(input) < RESOLVE_ID_MAX) {
        r = exists_by_id(rc, "vendor", input, err);
        if (r < 0)
            return -1;
        if (r == 1) {
            api_error_set(err, API_PERMANENT, HSQB_ERR_VENDOR_NOT_FOUND, 0,
                          "QuickBooks has no vendor with Id %s in realm %s", input, rc->realm);
            return -1;
        }
        snprintf(id, RESOLVE_ID_MAX, "%s", input);
        *created = 0;
        return 0;
    }
    if (vendor_keys(input, name, sizeof name, sfx, sizeof sfx, lockname, sizeof lockname) < 0) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_VENDOR_NOT_FOUND, 0,
                      "the vendor input holds no usable name");
        return -1;
    }
    if (resolve_map_get(rc, sfx, tmp)) {
        snprintf(id, RESOLVE_ID_MAX, "%s", tmp);
        *created = 0;
        return 0;
    }
    if (vendor_query(rc, name, tmp, &found, err) < 0)
        return -1;
    if (!found) {
        if (resolve_lock_take(rc, lockname, &lease, err) < 0)
            return -1;
        r = vendor_query(rc, name, tmp, &found, err);
        if (r == 0 && !found) {
            r = vendor_create(rc, name, tmp, err);
            made = r == 0;
        }
        resolve_lock_drop(rc, &lease);
        if (r < 0)
            return -1;
    }
    resolve_map_set(rc, sfx, tmp);
    snprintf(id, RESOLVE_ID_MAX, "%s", tmp);
    *created = made;
    return 0;
}

void resolve_forget_vendor(const struct resolve_ctx *rc, const char *input)
{
    char name[RESOLVE_NAME_MAX + 1], sfx[RESOLVE_KEY_SUFFIX_MAX], lockname[RESOLVE_KEY_SUFFIX_MAX];

    if (vendor_keys(input, name, sizeof name, sfx, sizeof sfx, lockname, sizeof lockname) == 0)
        resolve_map_del(rc, sfx);
}

int resolve_payment_method(const struct resolve_ctx *rc, const char *const *names, char *id,
                           int *found, struct api_error *err)
{
    char sfx[RESOLVE_KEY_SUFFIX_MAX], h[HASH_HEX128_LEN + 1], tmp[RESOLVE_ID_MAX];
    struct json_object *rows;
    const char *best = NULL, *name = NULL;
    size_t i, j, n;

    api_error_clear(err);
    *found = 0;
    if (!names || !names[0])
        return 0;
    for (i = 0; names[i]; i++) {
        resolve_hex_of(names[i], h);
        snprintf(sfx, sizeof sfx, "paymethod:%s", h);
        if (resolve_map_get(rc, sfx, tmp)) {
            snprintf(id, RESOLVE_ID_MAX, "%s", tmp);
            *found = 1;
            return 0;
        }
    }
    /* a company has a handful of methods: read them all once, prefer the earlier name */
    rows = resolve_query_rows(rc, "SELECT * FROM PaymentMethod", err);
    if (!rows)
        return -1;
    n = json_object_array_length(rows);
    for (i = 0; names[i] && !best; i++)
        for (j = 0; j < n; j++) {
            struct json_object *row = json_object_array_get_idx(rows, j);
            const char *rid = resolve_row_id(row), *rname;
            if (rid && json_get_str(row, "Name", &rname) == JGET_OK &&
                strcasecmp(rname, names[i]) == 0 && (!best || resolve_id_cmp(rid, best) < 0)) {
                best = rid;
                name = names[i];
            }
        }
    if (best) {
        resolve_hex_of(name, h);
        snprintf(sfx, sizeof sfx, "paymethod:%s", h);
        resolve_map_set(rc, sfx, best);
        snprintf(id, RESOLVE_ID_MAX, "%s", best);
        *found = 1;
    }
    json_object_put(rows);
    return 0;
}
