/* resolve.h - find (or create) the QuickBooks records a document refers to: the customer
 * for a HubSpot contact, the item for each line item, the payment term, accounts given by
 * name or id, the income account of created items, and for the
 * payment family the expense's vendor and the payment method.
 * Implemented in resolve.c (customers), resolve_items.c (items) and resolve_refs.c
 * (accounts, terms, vendors, payment methods).
 *
 * Owns: the Redis mapping caches and creation locks below, all under the realm's
 * hash tag so one realm's keys share a cluster slot:
 *   <prefix>map:{<realm>}:contact:<portal>:<contact id>   QBO Customer Id
 *   <prefix>map:{<realm>}:item:sku:<hex128(sku)>          QBO Item Id (matched by Sku)
 *   <prefix>map:{<realm>}:item:name:<hex128(name)>        QBO Item Id (matched by Name)
 *   <prefix>map:{<realm>}:term:<hex128(name)>             QBO Term Id
 *   <prefix>map:{<realm>}:account:income                  QBO Account Id (discovered)
 *   <prefix>map:{<realm>}:vendor:<hex128(lower(name))>     QBO Vendor Id
 *   <prefix>map:{<realm>}:paymethod:<hex128(name)>         QBO PaymentMethod Id
 *   <prefix>lock:{<realm>}:customer:<hex128(lower(email))> (or of the name when the
 *                                                           contact has no email)
 *   <prefix>lock:{<realm>}:item:<hex128(item key)>
 *   <prefix>lock:{<realm>}:vendor:<hex128(lower(name))>
 * Untrusted text never goes into a key verbatim: hex128 bounds the key length and keeps
 * any byte out of it. Mappings live RESOLVE_MAP_TTL_MS; resolve_forget_*() drops them when
 * QuickBooks says an id is gone (fault 610), so the next attempt matches afresh.
 *
 * Matching rules (the README's "The rules, as an accountant would check them"):
 *  - Customer: the cached mapping (per currency on a multicurrency company: customers
 *    there are tied to one currency, so only rows in the document's currency match and
 *    the name variants say the currency, resolve_display_name_in()); else `Customer WHERE GivenName = .. AND FamilyName = ..`
 *    and the first (lowest Id) row whose PrimaryEmailAddr equals the contact's email
 *    ignoring ASCII case (QBO cannot filter on email). A contact without email matches a
 *    same-named customer that has no email either (documented decision: a name alone
 *    must not capture a customer whose email says it is someone else). A contact with
 *    neither first nor last name matches on DisplayName = its email. Else the customer
 *    is created under the lock (re-checked after taking it) with DisplayName "First Last";
 *    on 6240 (the name is taken by someone else) the DisplayName becomes
 *    "First Last (email)", then "First Last (email) #<8 hex of the contact>"; each
 *    variant has its own requestid step ("customer", "customer:1", "customer:2") so a
 *    retry replays exactly the request that may have succeeded.
 *  - Inactive records: names stay taken by inactive customers and items, so lookups see
 *    them too (Active IN (true,false)); an active match wins, else an inactive one fails
 *    QBO_RECORD_INACTIVE before any write, or is made active again (a sparse update,
 *    requestid step "reactivate:...") with resolve.reactivate_inactive. Sub-customers
 *    (Job, ParentRef) match only when no top-level customer does.
 *  - Items: by Sku (hs_sku) when the line item has one, then by Name; Category items are
 *    never matched. resolve_items_lookup() only reads, so an event that will fail
 *    PRODUCT_NOT_FOUND creates nothing; resolve_items_create() then creates the missing
 *    ones (Service, income account from items.income_account or the first active Income
 *    account) under per-key locks, requestid step "item:<line index>".
 *  - Term: payment_terms digits = a Term Id, else a Term Name (exact); unknown ->
 *    TERM_NOT_FOUND.
 *  - Vendor (expense payee): digits = a Vendor Id that must exist (VENDOR_NOT_FOUND);
 *    else the DisplayName (':' made '-', trimmed), matched by query; missing -> created
 *    like a customer: under the vendor lock, re-queried after taking it, requestid step
 *    "vendor". A name QBO refuses as taken (6240: a customer, employee or inactive vendor
 *    holds it) is VENDOR_NOT_FOUND naming it: a payee is never renamed behind the
 *    user's back.
 *  - Payment method: the first of a list of candidate Names the company has, looked up
 *    only (never created); absence is not an error.
 *
 * Errors: -1 with *err filled: the QBO client's classification, or API_PERMANENT with
 * NO_CONTACT / TERM_NOT_FOUND / PRODUCT_NOT_FOUND from the rules, or API_TRANSIENT
 * (RETRIES_EXHAUSTED) when Redis fails or a lock stays busy past lock_wait_ms.
 * A Redis failure on a cache read or write is not an error (the cache is only a cache);
 * on a lock it is (creation is never done without the lock).
 *
 * Thread-safety: struct resolve_opts is immutable after start and shared; a struct
 * resolve_ctx is built per event on the worker thread and borrows that thread's struct
 * ioctx.
 */
#ifndef HSQB_RESOLVE_H
#define HSQB_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/http.h"
#include "common/json.h"
#include "worker/mapcache.h"
#include "common/redis.h"
#include "worker/apierr.h"
#include "worker/hubspot.h"
#include "worker/ioctx.h"
#include "worker/qbo.h"
#include "worker/settings.h"

#define RESOLVE_MAP_TTL_MS       (6 * 3600 * 1000LL) /* mapping caches */
#define RESOLVE_LOCK_TTL_MS      30000 /* a creation lock; longer than one QBO create */
#define RESOLVE_LOCK_WAIT_MS     10000 /* how long to wait for a busy creation lock */
#define RESOLVE_ID_MAX           QBO_ID_MAX
#define RESOLVE_NAME_MAX         500  /* bytes of a customer DisplayName */
#define RESOLVE_ITEM_NAME_MAX    100  /* bytes of an Item Name (QBO: 100 characters) */
#define RESOLVE_MAX_CANDIDATES   1000 /* customers/items read for one match */
#define RESOLVE_ACCOUNT_NAME_MAX 200
#define RESOLVE_REALM_ACCOUNTS_MAX 32 /* entries of items.income_account_by_realm */

struct resolve_opts {
    int64_t map_ttl_ms;   /* default RESOLVE_MAP_TTL_MS */
    int64_t lock_ttl_ms;  /* default RESOLVE_LOCK_TTL_MS */
    int64_t lock_wait_ms; /* default RESOLVE_LOCK_WAIT_MS */
    /* items.income_account: an Id (digits) or an exact Name; "" = discover */
    char income_account[RESOLVE_ACCOUNT_NAME_MAX + 1];
    int reactivate_inactive; /* resolve.reactivate_inactive */
    /* items.income_account_by_realm, parsed: realm -> account (Id or Name) */
    struct settings_realm_pair by_realm[RESOLVE_REALM_ACCOUNTS_MAX];
    size_t nby_realm;
    /* The in-process layer in front of the Redis mappings (cache.local_ttl); borrowed
     * for the life of the opts, thread-safe. NULL = Redis only. */
    struct mapcache *local;
};

/* Defaults above, no income account. */
void resolve_opts_default(struct resolve_opts *o);
/* Defaults plus items.income_account from the configuration. 0, or -1 with errstr. */
int resolve_opts_from_config(struct resolve_opts *o, const struct config *cfg, char *errstr,
                             size_t errsz);

/* One event's view, passed first to every resolve call (the resolver's context, as
 * struct ioctx is the clients'): everything borrowed for the duration of the calls. */
struct resolve_ctx {
    /* The calling thread's I/O (io->http and io->redis not NULL). Once
     * ioctx_claim_lost(io), no create is sent: the call fails API_TRANSIENT. */
    const struct ioctx *io;
    const struct resolve_opts *opts;
    struct qbo_api *qbo;
    const char *realm; /* digits */
    int64_t portal_id;
    const char *event_id; /* requestid derivation (claim_request_id_gen) */
    int generation;       /* the event's replay generation (action_ctx.replay_generation) */
    /* Multicurrency companies: customers are matched and created per currency. NULL on
     * other companies (any customer matches, none is created with a CurrencyRef);
     * else the document's currency ("EUR"), home_currency the company's (a customer
     * without CurrencyRef is in it). */
    const char *currency;
    const char *home_currency;
    /* The CompanyName of a customer created for the contact: the deal's or quote's
     * company, else NULL (then the contact's own "company" property). */
    const char *company_name;
    /* The event's income_account input (items it creates), or NULL. */
    const char *income_account;
    /* The company's default from its settings page (worker/company.h), NULL or "" when
     * none: after the event's input, before items.income_account_by_realm. */
    const char *company_income_account;
};

/* ---- customer ------------------------------------------------------------------- */

/* The QBO customer for contact c (the first write of a run). On 0: id (RESOLVE_ID_MAX bytes) is
 * set and *created is 1 when this call created it (a requestid replay of this event's
 * own earlier create counts as created). A contact with no name and no email is
 * NO_CONTACT (API_PERMANENT). */
int resolve_customer(const struct resolve_ctx *rc, const struct hubspot_contact *c, char *id,
                     int *created, struct api_error *err);

/* The DisplayName variant number `variant` (0, 1, 2) for a contact, into out (outsz >=
 * RESOLVE_NAME_MAX + 1): "First Last", "First Last (email)", "First Last (email) #h"
 * where h = 8 hex of SHA-256 of "<portal>:<contact id>". Names are trimmed, ':' (which
 * QBO refuses) becomes '-', and without names the email stands in. Pure; exposed for
 * tests. Returns 0, or -1 when the contact has no name and no email. */
int resolve_display_name(int64_t portal_id, const struct hubspot_contact *c, int variant, char *out,
                         size_t outsz);

/* resolve_display_name() for a company whose customers are per currency (currency not
 * NULL): variants 0..3 are "First Last", "First Last (EUR)", "First Last (email) (EUR)"
 * and "First Last (email) (EUR) #h"; with currency NULL exactly resolve_display_name().
 * -1 also for a variant out of range. */
int resolve_display_name_in(int64_t portal_id, const struct hubspot_contact *c,
                            const char *currency, int variant, char *out, size_t outsz);
/* How many variants there are: 3, or 4 with a currency. */
int resolve_name_variants(const char *currency);

/* Write "<key>":{Line1,City,CountrySubDivisionCode,PostalCode,Country} for a HubSpot
 * address into the object open in out (each part cut to QBO's length on a character
 * boundary); nothing when the address is empty. */
void resolve_address_json(struct jbuf *out, const char *key, const struct hubspot_address *a);

/* Drop the cached mapping of (portal, contact) in realm (fault 610 on the customer). */
void resolve_forget_customer(const struct resolve_ctx *rc, int64_t contact_id);

/* ---- items ---------------------------------------------------------------------- */

/* Per line item, in the order of the line items given. */
struct resolve_item {
    char id[RESOLVE_ID_MAX];              /* QBO Item Id; "" while unmatched */
    int created;                          /* created by resolve_items_create() */
    char name[RESOLVE_ITEM_NAME_MAX + 1]; /* the Name we match and create with */
    /* matched an inactive item (only with resolve.reactivate_inactive: else the lookup
     * fails QBO_RECORD_INACTIVE): resolve_items_create() makes it active again */
    int inactive;
    char sync_token[24];
};

/* The Name used for a line item: its name with tab/CR/LF/':' replaced by spaces/'-',
 * trimmed and cut to RESOLVE_ITEM_NAME_MAX bytes on a UTF-8 boundary; else its SKU;
 * else "HubSpot line item <id>". Pure. */
void resolve_item_name(const struct hubspot_line_item *li, char *out, size_t outsz);

/* Match every line item (cache, Sku, Name) without creating anything. out has n
 * entries (caller-owned). On 0, *nmissing is the number left unmatched (out[i].id ""). */
int resolve_items_lookup(const struct resolve_ctx *rc, const struct hubspot_line_item *li, size_t n,
                         struct resolve_item *out, size_t *nmissing, struct api_error *err);

/* Make the inactive items resolve_items_lookup() matched (with resolve.reactivate_inactive)
 * active again: the first write of the items, before any create. 0, or -1 with *err. */
int resolve_items_reactivate(const struct resolve_ctx *rc, struct resolve_item *out, size_t n,
                             struct api_error *err);

/* The QBO writes resolve_items_reactivate() and resolve_items_create() would make for
 * out as resolve_items_lookup() left it: one per distinct inactive item, one per distinct
 * key (SKU, else Name) among the unmatched. Pure; for the event's budget (action.h). */
size_t resolve_items_writes(const struct hubspot_line_item *li, size_t n,
                            const struct resolve_item *out);

/* Create the unmatched items of out (after resolve_items_lookup): Service items with the
 * income account, one per distinct key, under the item lock (re-checked after taking it).
 * Line items sharing a key share the item. On 0 every out[i].id is set. */
int resolve_items_create(const struct resolve_ctx *rc, const struct hubspot_line_item *li, size_t n,
                         struct resolve_item *out, struct api_error *err);

/* The PRODUCT_NOT_FOUND failure for the unmatched entries of out: *err (API_PERMANENT,
 * PRODUCT_NOT_FOUND, message naming every one), and *details_json (malloc'd, caller
 * frees): {"line_items":[{"id":"7001","name":"Gold plan","sku":"GOLD-1"|null},...]}.
 * Returns 0, or -1 on allocation failure (details NULL, err still set). */
int resolve_items_missing(const struct hubspot_line_item *li, size_t n,
                          const struct resolve_item *out, struct api_error *err,
                          char **details_json);

/* Drop the cached mappings of these line items (fault 610 on an item). */
void resolve_forget_items(const struct resolve_ctx *rc, const struct hubspot_line_item *li,
                          size_t n);

/* ---- accounts ------------------------------------------------------------------ */

/* An account input: digits = an Account Id (read to check it exists), else the exact
 * FullyQualifiedName, else the exact Name (cached). Unknown -> ACCOUNT_NOT_FOUND. */
int resolve_account(const struct resolve_ctx *rc, const char *name_or_id, char *id,
                    struct api_error *err);

/* The income account for created items, the first of: the event's income_account input,
 * the company's default (rc->company_income_account), the realm's entry of items.income_account_by_realm, items.income_account (each as
 * resolve_account), else discovery: the lowest-Id active account of subtype
 * SalesOfProductIncome, then ServiceFeeIncome, then any Income account (cached). None ->
 * ACCOUNT_NOT_FOUND. */
int resolve_income_account(const struct resolve_ctx *rc, char *id, struct api_error *err);

/* ---- vendors and payment methods --------------------------------------------------- */

/* The vendor for an expense input (rules above). On 0, id is set and *created is 1 when
 * this call created it (a requestid replay of this event's own create counts). */
int resolve_vendor(const struct resolve_ctx *rc, const char *name_or_id, char *id, int *created,
                   struct api_error *err);

/* Drop the cached mapping of a vendor input (fault 610 on the vendor). */
void resolve_forget_vendor(const struct resolve_ctx *rc, const char *name_or_id);

/* The account, term and payment-method mappings one document used (every member may be
 * NULL): what a 610 on it makes the worker forget besides customer and items. */
struct resolve_refs_used {
    const char *term;               /* a payment_terms input */
    const char *accounts[3];        /* account inputs (deposit, refund, ...) */
    const char *const *paymethods;  /* resolve_payment_method()'s candidate names */
    int income;                     /* the discovered income account of created items */
};

/* Drop those mappings, so the next lookup reads QBO again (fault 610: one of the records
 * is now inactive or deleted). */
void resolve_forget_refs(const struct resolve_ctx *rc, const struct resolve_refs_used *u);

/* The active PaymentMethod named like the first of names (NULL-terminated candidates,
 * ASCII case ignored) that the company has; cached per name, one query on a miss. 0 with
 * *found (and id when 1), -1 err. */
int resolve_payment_method(const struct resolve_ctx *rc, const char *const *names, char *id,
                           int *found, struct api_error *err);

/* ---- term ----------------------------------------------------------------------- */

/* payment_terms -> Term Id (cached). Unknown -> TERM_NOT_FOUND (API_PERMANENT). */
int resolve_term(const struct resolve_ctx *rc, const char *payment_terms, char *id,
                 struct api_error *err);

#endif
