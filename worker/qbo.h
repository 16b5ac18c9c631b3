/* qbo.h - the QuickBooks Online Accounting API v3 client.
 *
 * Owns: the process-wide struct qbo_api (base URL, minorversion and limits copied from
 * the config; borrowed struct oauth and struct ratelimit; an in-process CompanyInfo
 * cache per realm) and the Redis cache key <prefix>map:{<realm>}:company (the company's
 * country, name and Preferences as JSON, QBO_COMPANY_REDIS_TTL_MS).
 *
 * Every request: <qbo.base_url>/v3/company/<realm>/<resource>[/<id>]?minorversion=<n>
 * [&requestid=<id>], Accept: application/json, Authorization: Bearer from
 * oauth_get_access(); around each exchange a slot of the shared rate limiter
 * (ratelimit_acquire/release, kind RL_QBO, tenant = the realm). Then:
 *   401 -> oauth_invalidate() + oauth_get_access() (a refresh, at most one per realm
 *          across replicas, or the newer token another replica already stored) + the
 *          SAME request once more (same URL, so the same requestid: QBO replays instead
 *          of creating twice). A second 401 (the reloaded token was rejected too)
 *          invalidates that token as well, which forces a real refresh, and resends
 *          once more; a third 401 is API_TRANSIENT (the pipeline retries the event).
 *          Only invalid_grant from the token endpoint gives QBO_REAUTH_REQUIRED.
 *   429 (or a 400/403 whose fault says ThrottleExceeded) -> ratelimit_penalize() the
 *          realm for Retry-After (or QBO_THROTTLE_DEFAULT_MS) and API_THROTTLED.
 * No other retries: the pipeline owns the retry loop (README "Retries, dead letters,
 * replay").
 *
 * Failures (struct api_error; qbo_fault_code = QBO's Fault.Error[0].code, upstream_id =
 * the intuit_tid response header). The HTTP status decides first, then the fault body
 * is parsed defensively: {"Fault":{"Error":[…],"type":…}}, the lower-case 401 shape
 * {"fault":{"error":[…]}}, or the XML <Fault type=…><Error code=…> (ThrottleExceeded).
 *   transport failure (connect, timeout, reset)   API_TRANSIENT  RETRIES_EXHAUSTED
 *   response over http.max_response_bytes        API_PERMANENT  INTERNAL
 *   2xx whose body is not the expected envelope   API_TRANSIENT  RETRIES_EXHAUSTED
 *       (qbo_create_doc: also an entity without a usable Id)
 *   400 fault (ValidationFault, 4001, 2xxx, 6xxx) API_PERMANENT  QBO_VALIDATION; callers
 *       disambiguate by qbo_fault_code: "6240" duplicate name, "6140" duplicate
 *       DocNumber, "5010" stale SyncToken (re-read, reapply), "610" reference gone
 *   401 after the forced refresh (3rd send)       API_TRANSIENT  RETRIES_EXHAUSTED
 *   403 (3100)                                    API_AUTH       QBO_REAUTH_REQUIRED
 *   oauth failures                                as oauth.h says (invalid_grant ->
 *                                                 API_AUTH QBO_REAUTH_REQUIRED)
 *   404                                           API_NOT_FOUND  QBO_VALIDATION
 *   429 / ThrottleExceeded                        API_THROTTLED  RETRIES_EXHAUSTED
 *   500, 502, 503, 504, other 5xx                 API_TRANSIENT  RETRIES_EXHAUSTED
 *   any other status                              API_PERMANENT  QBO_VALIDATION
 * Messages quote QBO's Message and Detail (redacted, never a token; 401 details, which
 * echo the token, are dropped).
 *
 * Thread-safety: one struct qbo_api is shared by all worker threads (the company cache
 * has its own mutex); each call takes the calling thread's struct ioctx.
 * Request bodies passed in are borrowed JSON text, only read; json_objects returned are
 * new references owned by the caller; struct qbo_created is a plain value (no pointers).
 */
#ifndef HSQB_QBO_H
#define HSQB_QBO_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "common/config.h"
#include "common/http.h"
#include "common/redis.h"
#include "worker/apierr.h"
#include "worker/ioctx.h"
#include "worker/oauth.h"
#include "worker/ratelimit.h"

#define QBO_SQL_MAX              4096 /* bytes of one query statement */
#define QBO_PAGE_MAX             1000 /* QBO's largest MAXRESULTS */
#define QBO_REQUESTID_MAX        50   /* QBO refuses a longer requestid */
#define QBO_ID_MAX               64   /* bytes of an entity Id */
#define QBO_THROTTLE_DEFAULT_MS  5000 /* tenant back-off after a 429 without Retry-After */
/* Redis CompanyInfo + Preferences cache: an hour, so a changed preference (custom
 * transaction numbers, sales tax) reaches the books within about an hour */
#define QBO_COMPANY_REDIS_TTL_MS (3600 * 1000LL)
#define QBO_COMPANY_LOCAL_TTL_MS (10 * 60 * 1000LL)  /* in-process CompanyInfo cache */
#define QBO_JSON_DEPTH           64                  /* nesting accepted in a response */
/* Bytes of a create/update body. Above anything the body builders make from bounded
 * inputs (HUBSPOT_MAX_LINE_ITEMS lines with 4000-byte descriptions, every byte escaped
 * as \u00XX), so it never refuses a real document; callers size their jbuf with it. */
#define QBO_BODY_MAX (32u << 20)

struct qbo_api;

/* Optional observers (metrics), called from the worker threads; every member may be
 * NULL. The shapes are those of metrics_on_api_call() / metrics_on_ratelimit_wait()
 * (api "qbo"; endpoint a route template such as "POST /v3/company/{realm}/invoice" or
 * "GET /v3/company/{realm}/query"; status <= 0 for a transport failure). */
struct qbo_hooks {
    void *opaque;
    void (*api_call)(void *opaque, const char *api, const char *endpoint, int status,
                     int64_t duration_ms);
    void (*ratelimit_wait)(void *opaque, const char *api, int64_t ms);
};

/* Reads qbo.base_url, qbo.minorversion, http.timeout (also the longest wait for a rate
 * limiter slot) and http.max_response_bytes. oauth and rl are borrowed and must outlive
 * the client; rl may be NULL (no limiting: tools and tests). hooks may be NULL (copied).
 * Returns NULL with errstr on bad settings. Caller frees with qbo_api_free(). */
struct qbo_api *qbo_api_new(const struct config *cfg, struct oauth *oauth, struct ratelimit *rl,
                            const struct qbo_hooks *hooks, char *errstr, size_t errsz);
/* NULL-safe. No other thread may be inside a qbo_* call. */
void qbo_api_free(struct qbo_api *q);

/* In every call below: io is the calling thread's (struct ioctx, passed first like
 * hiredis's redisContext): io->http and io->redis are used, never NULL. io->deadline_ms
 * is not used: a QBO call waits at most http.timeout for a rate-limiter slot. A write
 * (create, update) is not sent once ioctx_claim_lost(io): it fails API_TRANSIENT. realm
 * is the company's realm id (digits); err (not NULL) is filled on -1 and cleared on 0.
 * Every failure names API_SOURCE_QBO, except a token-endpoint failure passed through
 * from oauth_get_access()/oauth_invalidate(), which stays API_SOURCE_OAUTH: the operator
 * sees which Intuit endpoint failed, and the breaker charges both to the realm. */

/* Run one query statement (GET /query, or POST application/text when long) and return
 * its rows: *out_rows is a new JSON array (caller puts it) holding the entities of the
 * QueryResponse (empty when QBO found none). sql is the whole statement, at most
 * QBO_SQL_MAX bytes; build literals with qbo_sql_quote(). */
int qbo_query(const struct ioctx *io, struct qbo_api *q, const char *realm, const char *sql,
              struct json_object **out_rows, struct api_error *err);

/* How qbo_query_all() pages: page_size 1..QBO_PAGE_MAX (0 = QBO_PAGE_MAX), max_rows >= 1
 * rows at most; more is an answer: set on 0 to 1 when it stopped at max_rows with rows
 * possibly left, else 0. */
struct qbo_paging {
    size_t page_size;
    size_t max_rows;
    int more; /* out */
};

/* Page through a statement WITHOUT paging clauses: appends "STARTPOSITION s MAXRESULTS
 * page" until a page comes back short or pg->max_rows rows are collected. *out_rows: new
 * JSON array, at most pg->max_rows rows. pg (not NULL) is borrowed for the call. */
int qbo_query_all(const struct ioctx *io, struct qbo_api *q, const char *realm, const char *sql,
                  struct qbo_paging *pg, struct json_object **out_rows, struct api_error *err);

/* Write s as a QBO query string literal, quotes included, into dst: 'O\'Brien'.
 * Backslash-escapes ' and \ (QBO's query escaping); the result is meant for '=' and 'IN'
 * comparisons (for LIKE, '%' stays a wildcard). Returns the length written (excluding
 * the NUL), or -1 when dst is too small (dst is then ""). */
int qbo_sql_quote(const char *s, char *dst, size_t dstsz);

/* One write request (qbo_create, qbo_create_doc, qbo_update); every pointer borrowed for
 * the call.
 *   realm      the company's realm id (digits)
 *   entity     the resource name in any case: "invoice", "Invoice", "salesreceipt",
 *              "customer", "item", "payment", "estimate", "purchase", "refundreceipt",
 *              "vendor", "term", "account"
 *   requestid  may be NULL; at most QBO_REQUESTID_MAX characters. Makes the write
 *              idempotent: QBO answers a repeat with the original response.
 *   body       JSON text of body_len bytes, sent as is (no NUL needed, not parsed or
 *              checked here; at most QBO_BODY_MAX) */
struct qbo_req {
    const char *realm, *entity, *requestid;
    const char *body;
    size_t body_len;
};

/* POST /<resource>[?requestid=…] with w's body, and return the created entity (the
 * object under the response's entity key, e.g. {"Id":"130",…}) as a new reference in
 * *out_entity (may be NULL: not wanted). A NULL body, one over QBO_BODY_MAX, an unknown
 * entity or a bad requestid fail API_PERMANENT INTERNAL without sending anything. */
int qbo_create(const struct ioctx *io, struct qbo_api *q, const struct qbo_req *w,
               struct json_object **out_entity, struct api_error *err);

/* What the worker keeps of a created document (Invoice, SalesReceipt, Payment,
 * Purchase, ...): five members of the entity, copied, so no JSON outlives the call.
 *   id          "Id": required. Absent, not a string, "" or QBO_ID_MAX bytes or longer:
 *               the fill fails API_TRANSIENT RETRIES_EXHAUSTED, status 200, "QuickBooks
 *               returned a <Entity> without an Id" (the pipeline retries the event).
 *   doc_number  "DocNumber" (QBO allows 21 characters): "" when absent, not a string or
 *               QBO_DOCNUMBER_MAX bytes or longer.
 *   currency    "CurrencyRef"."value": "" unless a string of exactly 3 bytes.
 *   total       "TotalAmt" in cents (has_total 0 when absent or not a plain decimal
 *               number within money.h's range; half a cent or less rounds half up).
 *   balance     "Balance" likewise (has_balance): invoices only.
 * A string holding U+0000 counts as not a string (json.h's getter rule). */
#define QBO_DOCNUMBER_MAX 32 /* bytes of doc_number, NUL included */
struct qbo_created {
    char id[QBO_ID_MAX];
    char doc_number[QBO_DOCNUMBER_MAX];
    char currency[4];
    int64_t total_cents, balance_cents;
    int has_total, has_balance;
    int email_sent; /* "EmailStatus" is "EmailSent": QBO has emailed it already */
};

/* qbo_create() for a caller that needs only struct qbo_created: the same request, the
 * same failures (faults, 401 cycle, a 2xx that is not a JSON object holding the entity's
 * key), but the answer is read with the tape parser (common/jtape.h, two allocations)
 * instead of a json-c tree. Then *out (not NULL) is filled from the entity object by the
 * rules above: an entity without a usable Id is -1 with that error. *out is set only
 * on 0. */
int qbo_create_doc(const struct ioctx *io, struct qbo_api *q, const struct qbo_req *w,
                   struct qbo_created *out, struct api_error *err);

/* Fill *out from obj, an entity already held as json-c (a query row), by the same rules;
 * obj is only read (may be NULL: no Id). entity names it in the error ("Invoice", any
 * case). 0, or -1 with *err (out untouched). No request is made. */
int qbo_created_from_json(struct json_object *obj, const char *entity, struct qbo_created *out,
                          struct api_error *err);

/* QuickBooks answered a write without a usable Id: a transient failure of QuickBooks's
 * own (source QBO, so it counts toward the realm's circuit), "QuickBooks returned <article>
 * <entity> without an Id". Returns -1. */
int qbo_error_no_id(struct api_error *err, const char *article, const char *entity);

/* POST /<resource>?operation=update: body carries Id and SyncToken (and "sparse":true
 * for a partial update). Otherwise as qbo_create(). */
int qbo_update(const struct ioctx *io, struct qbo_api *q, const struct qbo_req *w,
               struct json_object **out_entity, struct api_error *err);

/* GET /<resource>/<id>: *out_entity as qbo_create() (not NULL here). */
int qbo_read(const struct ioctx *io, struct qbo_api *q, const char *realm, const char *entity,
             const char *id, struct json_object **out_entity, struct api_error *err);

/* The company facts the worker needs before any write: CompanyInfo (the US-company
 * check) and Preferences (sales tax, currencies, numbering). */
struct qbo_company {
    char country[8]; /* CompanyInfo.Country ("US"), else the company address's */
    char name[256];  /* CompanyName, truncated */
    int is_us;       /* Country "US", or an address country "US"/"USA" when absent */
    int sales_tax;   /* Preferences.TaxPrefs.UsingSalesTax */
    int ast;         /* TaxPrefs.PartnerTaxEnabled: Automated Sales Tax decides tax codes */
    int multicurrency;       /* CurrencyPrefs.MultiCurrencyEnabled */
    char home_currency[4];   /* CurrencyPrefs.HomeCurrency.value; "USD" when absent */
    int custom_txn_numbers;  /* SalesFormsPrefs.CustomTxnNumbers */
};

/* CompanyInfo and Preferences for realm: the in-process cache (QBO_COMPANY_LOCAL_TTL_MS),
 * then Redis (QBO_COMPANY_REDIS_TTL_MS), then GET /companyinfo/<realm> and GET
 * /preferences. A Redis failure only skips the cache. A preference QBO does not send
 * reads as off (home currency USD). Returns 0 and fills *out, or -1 with *err.
 * Preferences change rarely (turning multicurrency on cannot be undone); a change is
 * seen within the cache lifetimes. */
int qbo_company_info(const struct ioctx *io, struct qbo_api *q, const char *realm,
                     struct qbo_company *out, struct api_error *err);

/* The company's exchange rate of currency code (3 letters) into its home currency on date
 * (YYYY-MM-DD): GET /exchangerate?sourcecurrencycode=<code>&asofdate=<date>, the Rate
 * as the decimal text QBO sent (home units per foreign unit; a plain positive decimal of
 * at most QBO_RATE_MAX - 1 bytes) into rate. QBO books a foreign document sent without
 * ExchangeRate at 1:1 (field reports, tests/sandbox/README.md), so documents carry this
 * one. A Rate that is missing or not such a decimal is API_PERMANENT / QBO_VALIDATION.
 * 0, or -1 with *err. */
#define QBO_RATE_MAX 24
int qbo_exchange_rate(const struct ioctx *io, struct qbo_api *q, const char *realm,
                      const char *code, const char *date, char rate[QBO_RATE_MAX],
                      struct api_error *err);

/* POST /<entity>/<id>/send?sendTo=<email>: QBO emails the invoice or estimate (or sales
 * receipt) to email (NULL: its BillEmail). entity as in qbo_req. The answer is the entity
 * (EmailStatus EmailSent). 0, or -1 with *err (the write rules of qbo_create). */
int qbo_send(const struct ioctx *io, struct qbo_api *q, const char *realm, const char *entity,
             const char *id, const char *email, struct api_error *err);

/* Classify a non-2xx QBO response (the table above) into *err. body may be NULL when len
 * is 0; content_type and intuit_tid may be NULL. Exposed for tests and for callers that
 * inspect batch item faults (pass status 400 for a per-item Fault). */
void qbo_error_from_response(int status, const char *content_type, const char *body, size_t len,
                             const char *intuit_tid, struct api_error *err);

#endif
