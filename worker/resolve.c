/* resolve.c - customers for a QBO document, and the helpers the whole resolver shares
 * (see resolve.h). Items live in resolve_items.c; account, term, vendor and
 * payment-method lookups in resolve_refs.c; the files share only what
 * resolve_internal.h declares.
 *
 * Why this shape: a mapping cache in Redis makes the common case (a contact or product
 * seen before) one GET, and the in-process layer in front of it (mapcache.h) none; a miss
 * falls back to a narrow QBO query, because QBO is the truth and a mapping may be stale.
 * Creation is the dangerous step (two replicas, two events for one contact, a crash
 * between create and cache write), so it runs under a Redis lock per (realm, identity),
 * re-queries after taking the lock, and sends a requestid derived from (event id, step):
 * a replay of the same step returns the original entity instead of a second one.
 * Disambiguated names are deterministic per identity, so a later event finds the
 * disambiguated record by querying that name before creating. Items (resolve_items.c)
 * are created the same way; vendors (resolve_refs.c) too, without the name variants.
 *
 *   lookup: map GET --hit--> id
 *             \--miss--> QBO query --match--> SET map, id
 *                           \--none--> lock --busy--> wait (bounded) --> TRANSIENT
 *                                        \--held--> query again --match--> id
 *                                                      \--none--> for v in 0..2:
 *                                                           v>0: query name_v --> id
 *                                                           create name_v --ok--> SET map
 *                                                              \--6240--> next v
 */
#include "worker/resolve.h"
#include "worker/resolve_internal.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/hash.h"
#include "common/json.h"
#include "common/log.h"
#include "common/utf8.h"
#include "worker/claim.h"

void resolve_opts_default(struct resolve_opts *o)
{
    memset(o, 0, sizeof *o);
    o->map_ttl_ms = RESOLVE_MAP_TTL_MS;
    o->lock_ttl_ms = RESOLVE_LOCK_TTL_MS;
    o->lock_wait_ms = RESOLVE_LOCK_WAIT_MS;
}

int resolve_opts_from_config(struct resolve_opts *o, const struct config *cfg, char *errstr,
                             size_t errsz)
{
    const char *acct;

    resolve_opts_default(o);
    acct = config_get_str(cfg, "items.income_account");
    if (acct && strlen(acct) > RESOLVE_ACCOUNT_NAME_MAX) {
        snprintf(errstr, errsz, "items.income_account: longer than %d bytes",
                 RESOLVE_ACCOUNT_NAME_MAX);
        return -1;
    }
    snprintf(o->income_account, sizeof o->income_account, "%s", acct ? acct : "");
    o->reactivate_inactive = config_get_bool(cfg, "resolve.reactivate_inactive") > 0;
    return settings_realm_pairs("items.income_account_by_realm",
                                config_get_str(cfg, "items.income_account_by_realm"),
                                o->by_realm, RESOLVE_REALM_ACCOUNTS_MAX, &o->nby_realm, errstr,
                                errsz);
}

/* ---- shared helpers (declared in resolve_internal.h) --------------------------------- */

int resolve_is_digits(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* Numeric comparison of two digit strings (QBO ids): <0, 0, >0. */
int resolve_id_cmp(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return la < lb ? -1 : 1;
    return strcmp(a, b);
}

void resolve_hex_of(const char *s, char out[HASH_HEX128_LEN + 1])
{
    if (hash_hex128(s, strlen(s), out) < 0)
        snprintf(out, HASH_HEX128_LEN + 1, "%s", "0");
}

int resolve_lost(const struct resolve_ctx *rc, struct api_error *err)
{
    if (ioctx_claim_lost(rc->io)) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 0,
                      "the event's claim was lost; another worker owns it now");
        return 1;
    }
    return 0;
}

static int map_key(const struct resolve_ctx *rc, const char *suffix, char *key, size_t keysz)
{
    int n =
        snprintf(key, keysz, "%smap:{%s}:%s", redis_conn_prefix(rc->io->redis), rc->realm, suffix);
    return n > 0 && (size_t)n < keysz ? 0 : -1;
}

/* Cached id for suffix, or 0 on a miss / Redis failure (the cache is only a cache). */
int resolve_map_get(const struct resolve_ctx *rc, const char *suffix, char *id)
{
    char key[REDIS_MAX_KEY + 1], e[256];
    redisReply *r;
    int hit = 0;

    if (mapcache_get(rc->opts->local, rc->realm, suffix, id, RESOLVE_ID_MAX))
        return 1;
    if (map_key(rc, suffix, key, sizeof key) < 0)
        return 0;
    r = redis_command(rc->io->redis, e, sizeof e, "GET %s", key);
    if (!r) {
        log_warn("resolve: cache read of %s failed: %s", suffix, e);
        return 0;
    }
    if (r->type == REDIS_REPLY_STRING && r->len > 0 && r->len < RESOLVE_ID_MAX &&
        !memchr(r->str, '\0', r->len)) {
        memcpy(id, r->str, r->len);
        id[r->len] = '\0';
        hit = resolve_is_digits(id);
    }
    freeReplyObject(r);
    if (hit)
        mapcache_put(rc->opts->local, rc->realm, suffix, id);
    return hit;
}

void resolve_map_set(const struct resolve_ctx *rc, const char *suffix, const char *id)
{
    char key[REDIS_MAX_KEY + 1], ttl[24], e[256];
    redisReply *r;

    mapcache_put(rc->opts->local, rc->realm, suffix, id);
    if (map_key(rc, suffix, key, sizeof key) < 0)
        return;
    snprintf(ttl, sizeof ttl, "%" PRId64, rc->opts->map_ttl_ms);
    r = redis_command(rc->io->redis, e, sizeof e, "SET %s %s PX %s", key, id, ttl);
    if (!r)
        log_warn("resolve: cache write of %s failed: %s", suffix, e);
    freeReplyObject(r);
}

void resolve_map_del(const struct resolve_ctx *rc, const char *suffix)
{
    char key[REDIS_MAX_KEY + 1], e[256];
    redisReply *r;

    mapcache_del(rc->opts->local, rc->realm, suffix);
    if (map_key(rc, suffix, key, sizeof key) < 0)
        return;
    r = redis_command(rc->io->redis, e, sizeof e, "DEL %s", key);
    freeReplyObject(r);
}

/* Take the lock <prefix>lock:{realm}:<name>, waiting up to lock_wait_ms. */
int resolve_lock_take(const struct resolve_ctx *rc, const char *name, struct redis_lease *l,
                      struct api_error *err)
{
    char e[256];
    int64_t until = clock_mono_ms() + rc->opts->lock_wait_ms, pause = 20;

    if (redis_lock_prepare(rc->io->redis, l, rc->realm, name, e, sizeof e) < 0) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "lock key: %s", e);
        return -1;
    }
    for (;;) {
        switch (redis_lock(rc->io->redis, l, rc->opts->lock_ttl_ms, e, sizeof e)) {
        case REDIS_LOCKED:
            return 0;
        case REDIS_LOCK_BUSY:
            break;
        default:
            api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 0,
                          "Redis unavailable taking the creation lock: %s", e);
            return -1;
        }
        if (clock_mono_ms() + pause > until) {
            api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 0,
                          "creation lock %s still held by another worker after %" PRId64 " ms",
                          name, rc->opts->lock_wait_ms);
            return -1;
        }
        clock_sleep_ms(pause);
        if (pause < 200)
            pause *= 2;
    }
}

void resolve_lock_drop(const struct resolve_ctx *rc, struct redis_lease *l)
{
    char e[256];
    if (redis_lease_release(rc->io->redis, l, e, sizeof e) == REDIS_OWNER_ERROR)
        log_warn("resolve: releasing lock failed (it expires by itself): %s", e);
}

int resolve_quote(const char *s, char *dst, size_t dstsz, const char *what, struct api_error *err)
{
    if (qbo_sql_quote(s, dst, dstsz) < 0) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_QBO_VALIDATION, 0,
                      "%s is too long for a QuickBooks query (%zu bytes)", what, strlen(s));
        return -1;
    }
    return 0;
}

/* Run sql (no paging clauses) and return all rows (new reference) or NULL with err. */

/* Id of a row; NULL when it has none that looks like an id. */
const char *resolve_row_id(struct json_object *row)
{
    const char *id;
    if (json_get_str(row, "Id", &id) != JGET_OK || !resolve_is_digits(id) ||
        strlen(id) >= RESOLVE_ID_MAX)
        return NULL;
    return id;
}

/* A copy of s trimmed of ASCII whitespace, with ':' '\t' '\r' '\n' made harmless. */
void resolve_clean_name(const char *s, char *out, size_t outsz)
{
    size_t n, i, j = 0;

    out[0] = '\0';
    if (!s)
        return;
    while (*s && isspace((unsigned char)*s))
        s++;
    n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    n = utf8_cut_len(s, n, outsz - 1);
    for (i = 0; i < n; i++) {
        char c = s[i];
        out[j++] = c == ':' ? '-' : (c == '\t' || c == '\r' || c == '\n') ? ' ' : c;
    }
    out[j] = '\0';
}

/* out = a + b, cut to outsz - 1 bytes (callers size the parts so nothing is cut). */
void resolve_join2(char *out, size_t outsz, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    if (la >= outsz)
        la = outsz - 1;
    memcpy(out, a, la);
    if (lb > outsz - 1 - la)
        lb = outsz - 1 - la;
    memcpy(out + la, b, lb);
    out[la + lb] = '\0';
}

/* A matched record that is inactive (row): made active again when the setting allows
 * (sparse update; its requestid step names the record), else QBO_RECORD_INACTIVE. */
int resolve_inactive_match(const struct resolve_ctx *rc, const char *entity, const char *noun,
                           const char *name, const char *id, const char *sync_token,
                           struct api_error *err)
{
    char body[256], step[96], rid[CLAIM_REQUEST_ID_MAX + 1];

    if (!rc->opts->reactivate_inactive) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_QBO_RECORD_INACTIVE, 0,
                      "the QuickBooks %s \"%.100s\" (Id %s) is inactive; reactivate it in "
                      "QuickBooks (or set resolve.reactivate_inactive) and replay",
                      noun, name, id);
        return -1;
    }
    if (resolve_lost(rc, err))
        return -1;
    snprintf(body, sizeof body, "{\"Id\":\"%s\",\"SyncToken\":\"%s\",\"sparse\":true,"
             "\"Active\":true}", id, sync_token);
    snprintf(step, sizeof step, "reactivate:%s:%s", entity, id);
    if (claim_request_id_gen(rc->event_id, step, rc->generation, rid) < 0) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "requestid derivation failed");
        return -1;
    }
    if (qbo_update(rc->io, rc->qbo,
                   &(struct qbo_req){rc->realm, entity, rid, body, strlen(body)}, NULL, err) < 0)
        return -1;
    log_info("resolve: reactivated inactive %s %s in realm %s", noun, id, rc->realm);
    return 0;
}

/* The row's SyncToken into out ("0" when absent). */
void resolve_row_sync_token(struct json_object *row, char *out, size_t outsz)
{
    const char *t = NULL;
    if (json_get_str(row, "SyncToken", &t) != JGET_OK || !t || strlen(t) >= outsz ||
        strspn(t, "0123456789") != strlen(t))
        t = "0";
    snprintf(out, outsz, "%s", t);
}

/* A create body could not be built: no stale fault code from an earlier attempt may
 * survive into err (callers test it for 6240). */
int resolve_body_oom(struct api_error *err)
{
    api_error_clear(err);
    api_error_set(err, API_TRANSIENT, HSQB_ERR_INTERNAL, 0, "out of memory");
    return -1;
}

/* ---- customers --------------------------------------------------------------------- */

#define RESOLVE_HASH_SUFFIX_LEN 10 /* " #" and 8 hex digits */

#define RESOLVE_CUR_SUFFIX_LEN 6 /* " (EUR)" */

/* A name's base comes from the contact's own text, and must never end the way the
 * worker's hashed variant does (" #" and 8 hex digits, either case: QBO compares names
 * ignoring it). That suffix is what makes any holder of a name ours (customer_create);
 * a contact whose text imitates it (say another contact's whole hashed name) would
 * otherwise get a plain variant equal to it, a customer created under it, and that
 * customer handed to the other contact. Such a '#' is written '-'; anything else that
 * is not exactly this format ("Team #1") stays as the user wrote it. */
static void defuse_hash_suffix(char *base)
{
    size_t n = strlen(base);

    if (n >= RESOLVE_HASH_SUFFIX_LEN && base[n - 10] == ' ' && base[n - 9] == '#' &&
        strspn(base + n - 8, "0123456789abcdefABCDEF") == 8)
        base[n - 9] = '-';
}

int resolve_name_variants(const char *currency)
{
    return currency && *currency ? 4 : 3;
}

int resolve_display_name(int64_t portal_id, const struct hubspot_contact *c, int variant, char *out,
                         size_t outsz)
{
    return resolve_display_name_in(portal_id, c, NULL, variant, out, outsz);
}

int resolve_display_name_in(int64_t portal_id, const struct hubspot_contact *c,
                            const char *currency, int variant, char *out, size_t outsz)
{
    char first[RESOLVE_NAME_MAX + 1], last[RESOLVE_NAME_MAX + 1], email[RESOLVE_NAME_MAX + 1];
    char base[2 * RESOLVE_NAME_MAX + 2], tag[64], hex[HASH_SHA256_HEX_LEN + 1], suffix[600];
    char cur[RESOLVE_CUR_SUFFIX_LEN + 1] = "";
    int want_email, want_hash;
    size_t room;

    resolve_clean_name(c->firstname, first, sizeof first);
    resolve_clean_name(c->lastname, last, sizeof last);
    resolve_clean_name(c->email, email, sizeof email);
    if (first[0] && last[0])
        snprintf(base, sizeof base, "%s %s", first, last);
    else if (first[0] || last[0])
        snprintf(base, sizeof base, "%s", first[0] ? first : last);
    else if (email[0])
        snprintf(base, sizeof base, "%s", email);
    else
        return -1;
    /* Without a currency: v1 adds the email, v2 the email and the hash. With one (a
     * multicurrency company: customers are per currency): v1 adds " (EUR)", v2 the email
     * and the currency, v3 all three. No email: the hash stands in for it. */
    if (currency && *currency) {
        if (strlen(currency) != 3 || variant < 0 || variant > 3)
            return -1;
        if (variant >= 1)
            snprintf(cur, sizeof cur, " (%s)", currency);
        want_email = variant >= 2;
        want_hash = variant >= 3;
    } else {
        if (variant < 0 || variant > 2)
            return -1;
        want_email = variant >= 1;
        want_hash = variant >= 2;
    }
    if (!email[0] || strcmp(base, email) == 0) {
        want_hash = want_hash || want_email;
        want_email = 0;
    }
    suffix[0] = '\0';
    if (want_email) {
        /* the email in the suffix gives way before the name does: the base keeps up to
         * half the limit, the currency and hash parts stay whole */
        size_t keep = strlen(base) < RESOLVE_NAME_MAX / 2 ? strlen(base) : RESOLVE_NAME_MAX / 2;

        utf8_truncate(email, RESOLVE_NAME_MAX - keep - sizeof(" ()") + 1 - strlen(cur) -
                                 (want_hash ? RESOLVE_HASH_SUFFIX_LEN : 0));
        snprintf(suffix, sizeof suffix, " (%s)", email);
    }
    snprintf(suffix + strlen(suffix), sizeof suffix - strlen(suffix), "%s", cur);
    if (want_hash) {
        snprintf(tag, sizeof tag, "%" PRId64 ":%" PRId64, portal_id, c->id);
        if (hash_sha256_hex(tag, strlen(tag), hex) < 0)
            return -1;
        snprintf(suffix + strlen(suffix), sizeof suffix - strlen(suffix), " #%.8s", hex);
    }
    /* the suffix makes the name distinct: keep it whole, cut the base (the suffix is at
     * most RESOLVE_NAME_MAX - 1 bytes: an email part leaves the base room above) */
    room = strlen(suffix) < RESOLVE_NAME_MAX ? RESOLVE_NAME_MAX - strlen(suffix) : 0;
    utf8_truncate(base, room);
    defuse_hash_suffix(base); /* after the cut, which could leave such an ending */
    resolve_join2(out, outsz, base, suffix);
    return 0;
}

static int email_eq(const char *a, const char *b)
{
    return a && b && strcasecmp(a, b) == 0;
}

static const char *row_email(struct json_object *row)
{
    struct json_object *e;
    const char *addr;

    if (json_get_obj(row, "PrimaryEmailAddr", &e) != JGET_OK ||
        json_get_str(e, "Address", &addr) != JGET_OK || !*addr)
        return NULL;
    return addr;
}

static int row_has(struct json_object *row, const char *field)
{
    const char *s;
    return json_get_str(row, field, &s) == JGET_OK && *s;
}

/* Among rows, the lowest-Id customer that is this contact: same email (ASCII case
 * ignored), or both without email. names_present: whether the query filtered on both
 * names; a one-name contact also requires the other name to be absent in QBO. */
/* 1 when row is a customer in the currency rc asks for (rc->currency NULL: any). A
 * customer without CurrencyRef is in the home currency. */
static int row_currency_ok(const struct resolve_ctx *rc, struct json_object *row)
{
    struct json_object *cur;
    const char *v = NULL;

    if (!rc->currency || !*rc->currency)
        return 1;
    if (json_get_obj(row, "CurrencyRef", &cur) != JGET_OK ||
        json_get_str(cur, "value", &v) != JGET_OK || !*v)
        v = rc->home_currency && *rc->home_currency ? rc->home_currency : "USD";
    return strcasecmp(v, rc->currency) == 0;
}

/* How good a match a row is: 0 an active top-level customer, 1 an active sub-customer or
 * project (Job, ParentRef), 2 and 3 the same inactive. */
static int customer_rank(struct json_object *row)
{
    struct json_object *parent;
    int job = 0, active = 1;

    (void)json_get_bool(row, "Job", &job);
    (void)json_get_bool(row, "Active", &active);
    job = job || json_get_obj(row, "ParentRef", &parent) == JGET_OK;
    return (active ? 0 : 2) + (job ? 1 : 0);
}

static struct json_object *pick_customer(const struct resolve_ctx *rc, struct json_object *rows,
                                         const struct hubspot_contact *c, int first_only,
                                         int last_only)
{
    struct json_object *best = NULL;
    const char *bid = NULL;
    int brank = 4;
    size_t i, n = json_object_array_length(rows);

    for (i = 0; i < n; i++) {
        struct json_object *row = json_object_array_get_idx(rows, i);
        const char *id = resolve_row_id(row), *em = row_email(row);
        int rank;
        if (!id)
            continue;
        if (first_only && row_has(row, "FamilyName"))
            continue;
        if (last_only && row_has(row, "GivenName"))
            continue;
        if (c->email ? !email_eq(em, c->email) : em != NULL)
            continue;
        if (!row_currency_ok(rc, row))
            continue;
        rank = customer_rank(row);
        if (!best || rank < brank || (rank == brank && resolve_id_cmp(id, bid) < 0)) {
            best = row;
            bid = id;
            brank = rank;
        }
    }
    return best;
}

/* Query QBO for the contact's customer. 0 with *found set (and id when found), -1 err. */
static int customer_query(const struct resolve_ctx *rc, const struct hubspot_contact *c, char *id,
                          int *found, struct api_error *err)
{
    char first[RESOLVE_NAME_MAX + 1], last[RESOLVE_NAME_MAX + 1], email[RESOLVE_NAME_MAX + 1];
    char q1[1100], q2[1100], sql[QBO_SQL_MAX];
    struct json_object *rows, *best;

    *found = 0;
    resolve_clean_name(c->firstname, first, sizeof first);
    resolve_clean_name(c->lastname, last, sizeof last);
    resolve_clean_name(c->email, email, sizeof email);
    if (first[0] && last[0]) {
        if (resolve_quote(first, q1, sizeof q1, "first name", err) < 0 ||
            resolve_quote(last, q2, sizeof q2, "last name", err) < 0)
            return -1;
        snprintf(sql, sizeof sql, "SELECT * FROM Customer WHERE GivenName = %s AND FamilyName = %s",
                 q1, q2);
    } else if (first[0] || last[0]) {
        if (resolve_quote(first[0] ? first : last, q1, sizeof q1, "name", err) < 0)
            return -1;
        snprintf(sql, sizeof sql, "SELECT * FROM Customer WHERE %s = %s",
                 first[0] ? "GivenName" : "FamilyName", q1);
    } else {
        if (resolve_quote(email, q1, sizeof q1, "email", err) < 0)
            return -1;
        snprintf(sql, sizeof sql, "SELECT * FROM Customer WHERE DisplayName = %s", q1);
    }
    /* inactive customers too: their names stay taken, so a match must see them */
    snprintf(sql + strlen(sql), sizeof sql - strlen(sql), " AND Active IN (true,false)");
    rows = resolve_query_rows(rc, sql, err);
    if (!rows)
        return -1;
    best = pick_customer(rc, rows, c, first[0] && !last[0], last[0] && !first[0]);
    if (best) {
        int active = 1, r = 0;
        char tok[24];
        const char *bid = resolve_row_id(best), *dn = NULL;
        (void)json_get_bool(best, "Active", &active);
        if (!active) {
            (void)json_get_str(best, "DisplayName", &dn);
            resolve_row_sync_token(best, tok, sizeof tok);
            r = resolve_inactive_match(rc, "customer", "customer", dn ? dn : "", bid, tok,
                                       err);
        }
        if (r == 0) {
            snprintf(id, RESOLVE_ID_MAX, "%s", bid);
            *found = 1;
        }
        json_object_put(rows);
        return r;
    }
    json_object_put(rows);
    return 0;
}

/* The customer holding DisplayName name, if it is this contact's (same email, or for a
 * hashed variant any holder: the name embeds the contact's own hash). */
static int customer_by_display(const struct resolve_ctx *rc, const struct hubspot_contact *c,
                               const char *name, int any_holder, char *id, int *found,
                               struct api_error *err)
{
    char q[RESOLVE_NAME_MAX * 2 + 8], sql[QBO_SQL_MAX];
    struct json_object *rows;
    size_t i, n;

    *found = 0;
    if (resolve_quote(name, q, sizeof q, "display name", err) < 0)
        return -1;
    snprintf(sql, sizeof sql, "SELECT * FROM Customer WHERE DisplayName = %s", q);
    rows = resolve_query_rows(rc, sql, err);
    if (!rows)
        return -1;
    n = json_object_array_length(rows);
    for (i = 0; i < n && !*found; i++) {
        struct json_object *row = json_object_array_get_idx(rows, i);
        const char *rid = resolve_row_id(row), *em = row_email(row);
        if (rid && (any_holder || (c->email ? email_eq(em, c->email) : em == NULL)) &&
            row_currency_ok(rc, row)) {
            snprintf(id, RESOLVE_ID_MAX, "%s", rid);
            *found = 1;
        }
    }
    json_object_put(rows);
    return 0;
}

/* The Customer to create, as one JSON object into out (empty): 0, or -1 when out
 * latched an error. */
void resolve_address_json(struct jbuf *out, const char *key, const struct hubspot_address *a)
{
    /* QBO's PhysicalAddress limits: Line1 500, City 255, CountrySubDivisionCode 255,
     * PostalCode 30, Country 255 characters */
    static const size_t max[] = {500, 255, 255, 30, 255};
    static const char *const names[] = {"Line1", "City", "CountrySubDivisionCode", "PostalCode",
                                        "Country"};
    const char *v[] = {a->line1, a->city, a->state, a->zip, a->country};
    char buf[501];

    if (!hubspot_address_present(a))
        return;
    jbuf_key(out, key);
    jbuf_obj_open(out);
    for (size_t i = 0; i < 5; i++) {
        if (!v[i])
            continue;
        utf8_copy(buf, sizeof buf, v[i], max[i]);
        jbuf_kv_str(out, names[i], buf);
    }
    jbuf_obj_close(out);
}

static int customer_body(const struct resolve_ctx *rc, const struct hubspot_contact *c,
                         const char *display, struct jbuf *out)
{
    char first[RESOLVE_NAME_MAX + 1], last[RESOLVE_NAME_MAX + 1];

    resolve_clean_name(c->firstname, first, sizeof first);
    resolve_clean_name(c->lastname, last, sizeof last);
    utf8_truncate(first, 100);
    utf8_truncate(last, 100);
    jbuf_obj_open(out);
    if (first[0])
        jbuf_kv_str(out, "GivenName", first);
    if (last[0])
        jbuf_kv_str(out, "FamilyName", last);
    jbuf_kv_str(out, "DisplayName", display);
    {
        /* QBO's CompanyName holds 100 characters */
        const char *co = rc->company_name ? rc->company_name : c->company;
        char cut[401];
        if (co) {
            utf8_copy(cut, sizeof cut, co, 100);
            jbuf_kv_str(out, "CompanyName", cut);
        }
    }
    if (c->email) {
        jbuf_key(out, "PrimaryEmailAddr");
        jbuf_obj_open(out);
        jbuf_kv_str(out, "Address", c->email);
        jbuf_obj_close(out);
    }
    resolve_address_json(out, "BillAddr", &c->addr);
    if (rc->currency && *rc->currency) {
        jbuf_key(out, "CurrencyRef");
        jbuf_obj_open(out);
        jbuf_kv_str(out, "value", rc->currency);
        jbuf_obj_close(out);
    }
    jbuf_obj_close(out);
    return out->err ? -1 : 0;
}

/* Create under the lock: variants of the DisplayName until one is free or ours. */
static int customer_create(const struct resolve_ctx *rc, const struct hubspot_contact *c, char *id,
                           int *created, struct api_error *err)
{
    char name[RESOLVE_NAME_MAX + 1], step[32], rid[CLAIM_REQUEST_ID_MAX + 1];
    struct json_object *ent = NULL;
    struct jbuf body;
    char hashed[RESOLVE_NAME_MAX + 1];
    int v, found, rc_, nv = resolve_name_variants(rc->currency);

    /* the last variant always carries this contact's own hash */
    if (resolve_display_name_in(rc->portal_id, c, rc->currency, nv - 1, hashed, sizeof hashed) < 0) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_NO_CONTACT, 0,
                      "contact %" PRId64 " has no name and no email", c->id);
        return -1;
    }
    for (v = 0; v < nv; v++) {
        if (resolve_display_name_in(rc->portal_id, c, rc->currency, v, name, sizeof name) < 0) {
            api_error_set(err, API_PERMANENT, HSQB_ERR_NO_CONTACT, 0,
                          "contact %" PRId64 " has no name and no email", c->id);
            return -1;
        }
        if (v > 0) {
            /* a name carrying this contact's own hash is ours whoever holds it (decided
             * by the variant, never by what the user's text happens to contain) */
            if (customer_by_display(rc, c, name, strcmp(name, hashed) == 0, id, &found, err) < 0)
                return -1;
            if (found) {
                *created = 0;
                return 0;
            }
        }
        if (resolve_lost(rc, err))
            return -1;
        snprintf(step, sizeof step, v ? "customer:%d" : "customer", v);
        if (claim_request_id_gen(rc->event_id, step, rc->generation, rid) < 0) {
            api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "requestid derivation failed");
            return -1;
        }
        jbuf_init(&body, QBO_BODY_MAX);
        if (customer_body(rc, c, name, &body) < 0) {
            jbuf_release(&body);
            return resolve_body_oom(err);
        }
        rc_ = qbo_create(rc->io, rc->qbo,
                         &(struct qbo_req){rc->realm, "customer", rid, jbuf_cstr(&body), body.len},
                         &ent, err);
        jbuf_release(&body);
        if (rc_ == 0) {
            const char *nid = resolve_row_id(ent);
            if (!nid) {
                json_object_put(ent);
                return qbo_error_no_id(err, "a", "customer");
            }
            snprintf(id, RESOLVE_ID_MAX, "%s", nid);
            json_object_put(ent);
            *created = 1;
            return 0;
        }
        if (strcmp(err->qbo_fault_code, "6240") != 0)
            return -1;
        log_info("resolve: customer name \"%s\" is taken in realm %s; disambiguating", name,
                 rc->realm);
    }
    api_error_set(err, API_PERMANENT, HSQB_ERR_QBO_VALIDATION, 400,
                  "every DisplayName variant for contact %" PRId64 " is taken in QuickBooks",
                  c->id);
    snprintf(err->qbo_fault_code, sizeof err->qbo_fault_code, "6240");
    return -1;
}

/* The mapping of (portal, contact), per currency on a multicurrency company. */
static void customer_map_suffix(const struct resolve_ctx *rc, int64_t contact_id, char *out,
                                size_t outsz)
{
    if (rc->currency && *rc->currency)
        snprintf(out, outsz, "contact:%" PRId64 ":%" PRId64 ":%.3s", rc->portal_id, contact_id,
                 rc->currency);
    else
        snprintf(out, outsz, "contact:%" PRId64 ":%" PRId64, rc->portal_id, contact_id);
}

int resolve_customer(const struct resolve_ctx *rc, const struct hubspot_contact *c, char *id,
                     int *created, struct api_error *err)
{
    char suffix[RESOLVE_KEY_SUFFIX_MAX], lockname[RESOLVE_KEY_SUFFIX_MAX], h[HASH_HEX128_LEN + 1];
    char lower[RESOLVE_NAME_MAX + 1], tmp[RESOLVE_ID_MAX], name[RESOLVE_NAME_MAX + 1];
    struct redis_lease lease;
    int found = 0, rc_;
    size_t i;

    api_error_clear(err);
    if (resolve_display_name(rc->portal_id, c, 0, name, sizeof name) < 0) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_NO_CONTACT, 0,
                      "contact %" PRId64 " has no first name, last name or email", c->id);
        return -1;
    }
    customer_map_suffix(rc, c->id, suffix, sizeof suffix);
    if (resolve_map_get(rc, suffix, tmp)) {
        snprintf(id, RESOLVE_ID_MAX, "%s", tmp);
        *created = 0;
        return 0;
    }
    if (customer_query(rc, c, tmp, &found, err) < 0)
        return -1;
    if (!found) {
        /* one lock per identity: the lower-cased email, else the name */
        if (c->email) {
            snprintf(lower, sizeof lower, "%s", c->email);
            for (i = 0; lower[i]; i++)
                lower[i] = (char)tolower((unsigned char)lower[i]);
            resolve_hex_of(lower, h);
        } else {
            resolve_hex_of(name, h);
        }
        snprintf(lockname, sizeof lockname, "customer:%s%s%.3s", h,
                 rc->currency && *rc->currency ? ":" : "", rc->currency ? rc->currency : "");
        if (resolve_lock_take(rc, lockname, &lease, err) < 0)
            return -1;
        rc_ = customer_query(rc, c, tmp, &found, err);
        if (rc_ == 0 && !found)
            rc_ = customer_create(rc, c, tmp, created, err);
        resolve_lock_drop(rc, &lease);
        if (rc_ < 0)
            return -1;
    }
    if (found)
        *created = 0;
    resolve_map_set(rc, suffix, tmp);
    snprintf(id, RESOLVE_ID_MAX, "%s", tmp);
    return 0;
}

void resolve_forget_customer(const struct resolve_ctx *rc, int64_t contact_id)
{
    char suffix[RESOLVE_KEY_SUFFIX_MAX];
    customer_map_suffix(rc, contact_id, suffix, sizeof suffix);
    resolve_map_del(rc, suffix);
}
