/* qbo_internal.h - the private contract between qbo.c, qbo_rules.c, qbo_txn.c, qbo_tax.c
 * and qbo_currency.c, the QuickBooks Online part of hsqb-sandbox. Nothing else includes it.
 *
 * Owns the shapes of the QBO state: struct qbo_opts (the live switches, g_qbo_opts),
 * struct realm (one company: per kind an Id -> entity json-c map, name and DocNumber
 * indexes, the requestid store, throttle windows, counters, the seeded AST and exchange
 * rates), the money sums of a sales document (struct qbo_sums), the entity-kind table
 * (qbo_kinds), a write in progress (struct wctx) and the reply/fault every route fills.
 * Who defines what:
 *   qbo.c       options, realms, replies and faults, company-local time
 *   qbo_rules.c kind table, indexes, write helpers and faults, name-list builders, the
 *               write pipeline (create / update / delete / void), the requestid store
 *   qbo_store.c where entities live: trees, or text for transactions (qbo_ent_*)
 *   qbo_txn.c   transaction builders (sales documents, payments, purchases) and the
 *               payment -> invoice application
 *   qbo_tax.c   sales tax of sales documents: line tax codes, TxnTaxDetail, Automated
 *               Sales Tax
 *   qbo_currency.c  currencies: CurrencyRef rules of names and transactions, exchange
 *               rates, home-currency amounts
 *
 * Locking: one mutex, private to qbo.c, guards g_qbo_opts and every struct realm. Each
 * public qbo_*() entry point of sandbox.h takes it (never nested); every function declared
 * here expects it held and never takes it, so none may call a sandbox.h entry point.
 * Entities handed out (ent_get(), qbo_entity_write()'s *out) are borrowed from the realm:
 * valid while the lock is held and until the next write of that kind.
 *
 * Invariants: entities are stored exactly as they are answered (trees, or for the
 * transaction kinds their text: qbo_store.c); every stored entity has string Id and
 * SyncToken members; names[] and docnums[] point only at stored entities
 * (qbo_index_add/del on every change).
 * Faults: rule functions return -1 after filling a struct fault (qbo_fault_set); nothing
 * shared is changed before a write commits except the Id and DocNumber counters.
 */
#ifndef HSQB_SANDBOX_QBO_INTERNAL_H
#define HSQB_SANDBOX_QBO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "tests/sandbox/sandbox.h"
#include "tests/sandbox/qbo_query.h"

/* ---- configuration (qbo.c) --------------------------------------------------------- */

struct qbo_opts {
    int per_minute, concurrent, per_second; /* 0 = unlimited */
    int retention_s;                        /* requestid replay window, 0 = forever */
    int requestid_max_entries;              /* per realm; oldest dropped beyond */
    int requestid_reject_mismatch;          /* #2: 400 instead of replay on another body */
    int throttle_json;                      /* #6: JSON Fault instead of the XML body */
    int retry_after_s;                      /* #7: 0 = no Retry-After header */
    int auth_xml;                           /* #8: XML 401 instead of the lower-case JSON */
    int names_ci;                           /* uniqueness and query strings ignore ASCII case */
    int entity_ci;           /* query entity names case-insensitive (reference: sensitive) */
    int lexical_beyond_latin1; /* a literal with a code point > U+00FF: 400/4000 lexical */
    int strict_fields;       /* unknown top-level properties -> 400/2010 */
    int require_accept_json; /* no Accept: application/json (or format=json) -> 406 */
    int hide_inactive;       /* #12: name-list queries show Active=true unless filtered */
    int docnum_max_len;      /* 6000 beyond; 0 = unchecked */
    int ast_bill_addr;       /* AST destination: ShipAddr, then BillAddr (1) or not (0), then
                                the company address */
    int xrate_one;           /* no ExchangeRate sent: 1 (field reports) instead of the seed's */
};

extern struct qbo_opts g_qbo_opts;

/* ---- state ----------------------------------------------------------------------- */

/* Seeding follows this order: what later kinds reference comes first. */
enum kind {
    K_ACCOUNT,
    K_TERM,
    K_PAYMENTMETHOD,
    K_ITEM,
    K_CUSTOMER,
    K_VENDOR,
    K_EMPLOYEE,
    K_INVOICE,
    K_ESTIMATE,
    K_SALESRECEIPT,
    K_REFUNDRECEIPT,
    K_PAYMENT,
    K_PURCHASE,
    K_NKINDS
};

/* A transaction parsed from its stored text for the current locked section (qbo_store.c). */
struct qbo_open {
    enum kind k;
    char id[24];
    struct json_object *tree; /* owned; written back as text by qbo_settle() */
};

struct realm {
    char id[SB_TENANT_MAX];
    int utc_offset_min;
    struct json_object *company, *prefs;
    /* Id -> entity, in creation order: a tree, or for qbo_compact() kinds its JSON text as
     * a json-c string (read them through qbo_ent_get, never directly). */
    struct json_object *ents[K_NKINDS];
    struct qbo_open *open; /* transactions parsed since the last qbo_settle() */
    int nopen, capopen;
    struct json_object *names[K_NKINDS];   /* folded name -> "Kind/Id" (people share one) */
    struct json_object *docnums[K_NKINDS]; /* DocNumber -> Id */
    int64_t next_id[K_NKINDS], next_doc[K_NKINDS];
    struct json_object *reqids; /* requestid -> [status, body, hash, mono ms], oldest first */
    /* Sandbox-only seed keys, validated when seeded: state code (or "*") -> AST percent,
     * currency code -> home units per foreign unit; values are decimal strings. */
    struct json_object *ast_rates, *xrates;
    int64_t *ring; /* per-minute window: admission times, ring buffer */
    int ring_cap, ring_len, ring_head;
    int64_t sec_start;
    int sec_count;
    int inflight;
    int64_t n_requests, n_throttled, n_replayed;
};

/* One handled request: what the routes produce. */
struct reply {
    int status;
    const char *ctype;
    char *body; /* malloc'd */
    /* Set by qbo_reply_entity when the answer is {"<ent_kind>": <stored entity>, "time":
     * ent_time}: the requestid store then keeps the entity's stored text by reference.
     * For a transaction the body is NULL until qbo_reply_finish() writes it from the
     * settled text, so the entity is serialised once (by qbo_settle), not twice. */
    int ent_kind; /* enum kind + 1; 0 = none */
    int ent_deferred;
    char ent_id[24];
    char ent_time[48];
};

/* A fault to answer: status, Fault.type, Error.{Message, Detail, code, element}. */
struct fault {
    int status;
    const char *type;
    const char *code;
    char message[160];
    char detail[700];
    const char *element; /* NULL: no "element" key (as in the recorded 6240 body) */
};

#define CT_JSON     "application/json;charset=utf-8"
#define CT_JSON_ERR "application/json"

/* One routed request (qbo.c's route() and the write pipeline). */
struct route_ctx {
    const struct sb_request *req;
    struct realm *r;
    const char *rest; /* path after /v3/company/{realm}/ */
    struct reply *rp;
};

/* ---- entity kinds (qbo_rules.c) ----------------------------------------------------- */

#define KF_NAMELIST 0x01u /* no delete; Active; hidden from queries when inactive */
#define KF_PERSON   0x02u /* DisplayName shared by Customer, Vendor, Employee */
#define KF_TXN      0x04u /* TxnDate, DocNumber, deletable */
#define KF_DOCAUTO  0x08u /* DocNumber assigned when omitted */
#define KF_DOCUNIQ  0x10u /* duplicate DocNumber -> 6140 */

struct wctx;

struct kind_def {
    const char *path, *name;
    unsigned flags;
    const char *fields; /* writable top-level properties (strict_fields), words */
    int (*build)(struct wctx *w);
};

/* One write in progress: the entity being built and what it replaces. */
struct wctx {
    struct realm *r;
    enum kind k;
    struct json_object *ent; /* owned until committed */
    struct json_object *old; /* borrowed; NULL on create */
    const char *id;          /* Id once known (update, or explicit in a seed) */
    int allow_dup_doc;
    struct fault f;
};

extern const struct kind_def qbo_kinds[K_NKINDS];

/* Money sums of one document, in cents (sales_lines and the tax rules fill them). */
struct qbo_sums {
    int64_t subtotal; /* sales and group lines */
    int64_t discount; /* discount lines, percent ones computed */
    int64_t taxable;  /* lines whose tax code is TAX */
};

/* Largest money magnitude a document may reach (10^17 - 1 cents, as common/money.h): sums
 * of hostile amounts fault instead of overflowing. */
#define QBO_CENTS_MAX 99999999999999999LL

/* ---- JSON accessors: borrowed results, NULL / the default when absent or mistyped ----- */

static inline const char *jstr(struct json_object *o, const char *key)
{
    struct json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static inline struct json_object *jobj(struct json_object *o, const char *key)
{
    struct json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_object))
        return NULL;
    return v;
}

static inline const char *ref_value(struct json_object *o, const char *key)
{
    return jstr(jobj(o, key), "value");
}

static inline struct json_object *ref_new(const char *value, const char *name)
{
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "value", json_object_new_string(value));
    if (name)
        json_object_object_add(r, "name", json_object_new_string(name));
    return r;
}

static inline int jbool(struct json_object *o, const char *key, int dflt)
{
    struct json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_boolean))
        return dflt;
    return json_object_get_boolean(v);
}

static inline void set_if_absent(struct json_object *o, const char *key, struct json_object *val)
{
    if (json_object_object_get_ex(o, key, NULL))
        json_object_put(val);
    else
        json_object_object_add(o, key, val);
}

static inline char *dup_json(struct json_object *o)
{
    return strdup(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

static inline int64_t cents_of(struct json_object *o, const char *key)
{
    struct json_object *v;
    struct qbo_dec d;
    int64_t c = 0;
    if (o && json_object_object_get_ex(o, key, &v) && qbo_dec_from_json(v, &d) == 0)
        qbo_dec_cents(d, &c);
    return c;
}

static inline void set_money(struct json_object *o, const char *key, int64_t cents)
{
    json_object_object_add(o, key, qbo_money_json(cents));
}

static inline void set_str(struct json_object *o, const char *key, const char *s)
{
    json_object_object_add(o, key, json_object_new_string(s));
}

/* ---- qbo_store.c: where entities live ---------------------------------------------------- */

/* 1 when entities of k are stored as text (the KF_TXN kinds), 0 when as trees. */
int qbo_compact(enum kind k);
/* The entity k/id as a tree, or NULL (id may be NULL). A stored text is parsed once per
 * locked section; the tree is borrowed and may be changed in place until qbo_settle(). */
struct json_object *qbo_ent_get(struct realm *r, enum kind k, const char *id);
/* Store tree (ownership taken) as k/id, replacing any entity of that Id in place (creation
 * order kept). Compact kinds: the tree stays open (borrowed by the caller) until
 * qbo_settle() turns it into text. */
void qbo_ent_put(struct realm *r, enum kind k, const char *id, struct json_object *tree);
/* Remove k/id (text and any open tree). */
void qbo_ent_del(struct realm *r, enum kind k, const char *id);
/* A compact kind's tree parsed by the caller from k/id's text (qbo_text_parse), made the
 * open tree of k/id as if qbo_ent_get had parsed it; takes ownership, returns the tree to
 * use (borrowed), NULL when out of memory. */
struct json_object *qbo_ent_adopt(struct realm *r, enum kind k, const char *id,
                                  struct json_object *tree);
/* A stored text as a fresh tree (caller puts), or NULL when it does not parse. */
struct json_object *qbo_text_parse(struct json_object *text);
/* The stored text of k/id (a json-c string, borrowed; json_object_get to keep it) when k
 * is compact and k/id is not open, else NULL. */
struct json_object *qbo_ent_text(struct realm *r, enum kind k, const char *id);
/* Write every open tree of r back as text (only when it changed) and free it. Every
 * public entry point calls it before it unlocks; r may be NULL. */
void qbo_settle(struct realm *r);
/* Free the open trees without writing them back (realm teardown). */
void qbo_store_free(struct realm *r);

static inline struct json_object *ent_get(struct realm *r, enum kind k, const char *id)
{
    return qbo_ent_get(r, k, id);
}

/* ---- qbo.c: replies, faults, time --------------------------------------------------- */

/* Message of the 610 faults (an id that does not exist or is inactive). */
extern const char qbo_obj_not_found[];

/* Company-local time: "2020-09-29T05:58:16.187-07:00" (with_ms = 1) or without fraction;
 * r may be NULL (the default offset, -07:00). */
void qbo_fmt_time(const struct realm *r, int64_t wall_ms, int with_ms, char *buf, size_t bufsz);
/* Replace rp's answer; takes ownership of body (malloc'd, may be NULL). */
void qbo_reply_set(struct reply *rp, int status, const char *ctype, char *body);
/* 200 {"<name>": ent, "time": ...}; ent borrowed. A stored transaction's answer is
 * completed by qbo_reply_finish() once the realm is settled, so nothing may change ent
 * after this call (every route answers last). */
void qbo_reply_entity(struct reply *rp, struct realm *r, const char *name,
                      struct json_object *ent);
/* Write the body of a deferred entity answer from the stored text (after qbo_settle). */
void qbo_reply_finish(struct realm *r, struct reply *rp);
/* The Fault envelope of f (status f->status, 400 when 0); r may be NULL. */
void qbo_reply_fault(struct reply *rp, const struct realm *r, const struct fault *f);
/* Fill f (400 ValidationFault) and return -1, so rules read `return qbo_fault_set(...)`.
 * element may be NULL (no "element" key); code and element must be static strings. */
int qbo_fault_set(struct fault *f, const char *code, const char *element, const char *msg,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* 400 "Unsupported Operation" naming path; r may be NULL. */
void qbo_reply_unsupported(struct reply *rp, const struct realm *r, const char *path);

/* ---- qbo_rules.c: requestid store (reference §3) ------------------------------------ */

/* requestid too long -> 400; seen before -> the stored answer (or 400 in "reject" mode
 * when the request differs). 1 when rp was filled, 0 to execute the request. */
int qbo_requestid_gate(const struct sb_request *req, struct realm *r, const char *rid,
                       struct reply *rp);
/* Remember rp as the answer to requestid rid of req (replacing an older one). */
void qbo_requestid_store(struct realm *r, const char *rid, const struct sb_request *req,
                         const struct reply *rp);

/* ---- qbo_rules.c: kinds and indexes -------------------------------------------------- */

/* Kind of a URL segment ("invoice", n bytes) or of an entity name ("Invoice"); -1. */
int qbo_kind_by_path(const char *seg, size_t n);
int qbo_kind_by_name(const char *name);
/* 1 when s is an Id QBO accepts (1..18 ASCII digits); s may be NULL. */
int qbo_is_numeric_id(const char *s);
/* "DisplayName" for people, "Name" for the other name lists. */
const char *qbo_name_field(enum kind k);
/* "Customer/12" of the entity owning name among k's name space, or NULL; borrowed. */
const char *qbo_name_owner(struct realm *r, enum kind k, const char *name);
/* Add / remove ent (stored or about to be) in the name and DocNumber indexes. */
void qbo_index_add(struct realm *r, enum kind k, struct json_object *ent);
void qbo_index_del(struct realm *r, enum kind k, struct json_object *ent);

/* ---- qbo_rules.c: write helpers for the builders (each fault returns -1) -------------- */

int qbo_missing(struct wctx *w, const char *element);                      /* 2020 */
int qbo_invalid_prop(struct wctx *w, const char *prop);                    /* 2010 */
int qbo_business(struct wctx *w, const char *element, const char *detail); /* 6000 */
/* *sum += c, or 2010 "Amount" when the result would leave +-QBO_CENTS_MAX (sum unchanged). */
int qbo_sum_add(struct wctx *w, int64_t *sum, int64_t c);
/* 1 when s is one of the NULL-terminated list. */
int qbo_in_list(const char *const *list, const char *s);
/* The company is a US one (sales tax defaults, no GST rate required). */
int qbo_is_us(const struct realm *r);
/* Check the reference member key of holder against entities of kind k (exists, active)
 * and fill its name. *out = the entity (borrowed), or NULL when absent and optional. */
int qbo_ref_check(struct wctx *w, struct json_object *holder, const char *key, enum kind k,
                  int required, struct json_object **out);
/* A money-like member as an exact decimal / cents: 0 absent, 1 present, -1 fault. */
int qbo_get_dec(struct wctx *w, struct json_object *o, const char *key, struct qbo_dec *d);
int qbo_get_cents(struct wctx *w, struct json_object *o, const char *key, int64_t *cents);
/* SyncToken + 1 and MetaData.LastUpdatedTime = now (e is changed in place). */
void qbo_bump(struct realm *r, struct json_object *e);

/* ---- qbo_tax.c: sales tax of sales documents ------------------------------------------ */

/* The tax code of one sales line (detail = its SalesItemLineDetail, item its Item, amount
 * its Amount): checked or assigned per the company's tax setup, amount added to
 * s->taxable when the line ends up TAX. 0 or -1 with w->f. */
int qbo_tax_line(struct wctx *w, struct json_object *detail, struct json_object *item,
                 int64_t amount, struct qbo_sums *s);
/* TxnTaxDetail of the document from the sums (addresses already filled, cust may be
 * NULL): TotalTax as given, or computed by AST; *tax = the TotalTax stored. 0 or -1. */
int qbo_tax_total(struct wctx *w, struct json_object *cust, const struct qbo_sums *s, int64_t *tax);

/* ---- qbo_currency.c: currencies ------------------------------------------------------ */

/* The home currency code ("USD" when Preferences name none); borrowed from r. */
const char *qbo_home_currency(const struct realm *r);
/* Preferences.CurrencyPrefs.MultiCurrencyEnabled. */
int qbo_multicurrency(const struct realm *r);
/* {"value":"USD","name":...} of the home currency; caller owns it. */
struct json_object *qbo_currency_ref(const struct realm *r);
/* CurrencyRef of a Customer or Vendor being built: checked against the company's
 * currencies, kept from the stored record on update (it cannot change), home by default. */
int qbo_party_currency(struct wctx *w);
/* CurrencyRef and, with multicurrency, ExchangeRate of a transaction being built: the
 * currency must be the party's (party: its customer, vendor or employee, of kind pk; may be
 * NULL: any currency of the company); absent, it is the stored one on update, else the
 * party's, else home. */
int qbo_txn_currency(struct wctx *w, struct json_object *party, enum kind pk);
/* e[dst] = e[src] x e.ExchangeRate in cents (multicurrency companies only; nothing
 * otherwise). 0, or -1 when the product overflows (e unchanged). */
int qbo_home_amount(const struct realm *r, struct json_object *e, const char *src, const char *dst);

/* ---- qbo_rules.c: the write pipeline ------------------------------------------------- */

/* Create (old NULL) or update old from body; seeding keeps a given Id, SyncToken and
 * MetaData. On success the stored entity is *out (borrowed from the realm); on failure
 * *f is filled and no stored entity changed. body is borrowed; unless seeding or
 * sparse, the entity is built on body itself (a reference of its own), so the caller
 * may only release body afterwards, success or not. */
int qbo_entity_write(struct realm *r, enum kind k, struct json_object *body,
                     struct json_object *old, int sparse, int seeding, int allow_dup,
                     struct json_object **out, struct fault *f);
/* POST /v3/company/{realm}/{kind}[?operation=...]: create, update, delete or void. */
void qbo_do_write(struct route_ctx *c, enum kind k);

/* ---- qbo_txn.c: transaction kinds ---------------------------------------------------- */

/* Writable top-level properties (strict_fields) of sales documents, payments and
 * purchases, as space-separated words. */
extern const char qbo_fields_sales[], qbo_fields_payment[], qbo_fields_purchase[];
/* Builders of the kind table: fill defaults, check the rules; 0 or -1 with w->f. */
int qbo_build_sales(struct wctx *w); /* Invoice, Estimate, SalesReceipt, RefundReceipt */
int qbo_build_payment(struct wctx *w);
int qbo_build_purchase(struct wctx *w);
/* Move invoice balances and links from what payment old applied to what neu applies
 * (either may be NULL: a create or a delete/void); bumps every invoice it changes. */
void qbo_apply_payment(struct realm *r, const char *pay_id, struct json_object *old,
                       struct json_object *neu);

#endif
