/* hubspot.h - the HubSpot CRM client: the reads an action needs (the enrolled object,
 * its contact and line items) and the workflow callbacks' completion, over the numbered
 * path family (/crm/v3, /crm/v4, /automation/v4). Implemented in hubspot.c (the reads
 * and what their answers mean), hubspot_batch.c (the batch reads: line items, a quote's
 * discounts, fees and taxes), hubspot_account.c (tax rates, the account's time zone),
 * hubspot_callbacks.c (completions, one or a batch) and hubspot_exchange.c (lifecycle,
 * tokens, the rate limiter, one request and its error classification).
 *
 * Owns: the base URL, the default token (hubspot.token), a short in-process cache of
 * per-portal tokens read from Redis, and the metrics hooks. It borrows the shared rate
 * limiter. Every call also borrows the calling thread's struct ioctx (its http_client
 * and redis_conn) and does exactly one logical operation: no retries (the
 * pipeline owns them); paging and batching loops are part of the one operation.
 *
 * Tokens: a portal's own token is the string at <prefix>hstoken:{<portal>} (written by
 * `hsqb-worker credentials`, see hubspot_token_key()); without one, the default
 * hubspot.token is used, but only for the portals hubspot.token_portals lists ("*": any
 * portal), so one customer's portal never reads HubSpot with a token meant for another;
 * with neither, the call fails API_AUTH / PORTAL_NOT_CONNECTED before any request
 * (hubspot_portal_connected() asks the same question up front). Tokens are cached for
 * HUBSPOT_TOKEN_CACHE_MS; a 401 drops the portal's cache entry and re-reads Redis at
 * once: when the token there differs (another replica or `credentials hubspot` rotated
 * it), the request is sent once more with it, so only a 401 with the current token fails
 * (API_AUTH). Tokens never appear in messages, logs or api_error.
 *
 * OAuth installs (worker/hubspot_oauth.h): the cache keeps the access token's expiry, so
 * the token is refreshed before it expires (hubspot.oauth.refresh_margin) with no extra
 * Redis command per call, one refresh per portal across replicas; a 401 with an
 * install's token refreshes it (or takes another replica's newer one) and sends the
 * request once more. A refresh HubSpot refuses (app uninstalled, access revoked) fails
 * API_AUTH (HUBSPOT_AUTH); one that fails transiently is API_TRANSIENT / API_THROTTLED.
 *
 * Every request: ratelimit_acquire(RL_HUBSPOT, portal) before, ratelimit_release()
 * after; a 429 calls ratelimit_penalize() for the whole portal; a response whose
 * X-HubSpot-RateLimit-Remaining is 0 blocks the portal for Interval/Max ms (the
 * average spacing), since the next request would be refused.
 *
 * Errors (struct api_error; HubSpot's documented statuses and rate-limit policies):
 *   transport failure, 5xx, 423, 477     API_TRANSIENT  (code RETRIES_EXHAUSTED)
 *   limiter timeout, Redis down          API_TRANSIENT / API_THROTTLED
 *   429 TEN_SECONDLY_ROLLING / secondly  API_THROTTLED, retry_after_ms = Retry-After, else
 *                                        the window (10 s) / 1 s
 *   429 DAILY                            API_THROTTLED, retry_after_ms = until the next
 *                                        UTC midnight (HubSpot resets at the account's
 *                                        midnight, unknown to us)
 *   401, 403                             API_AUTH       (HUBSPOT_AUTH)
 *   404, batch ids missing (207)         API_NOT_FOUND  (OBJECT_NOT_FOUND)
 *   other 4xx                            API_PERMANENT  (HUBSPOT_VALIDATION)
 *   over a limit (HUBSPOT_MAX_*, body)   API_PERMANENT  (HUBSPOT_VALIDATION)
 *   no token for the portal (above)      API_AUTH       (PORTAL_NOT_CONNECTED), no request
 *   unparsable 2xx body                  API_TRANSIENT  (an edge proxy's page; bounded
 *                                        by the pipeline's retry budget)
 * http_status is the HTTP status (0 without a response), upstream_id the correlationId.
 *
 * Values: properties are strings, kept as HubSpot sent them (money and quantities are
 * parsed by the caller with common/money.h). An absent, null or empty property reads as
 * NULL (HubSpot treats absent, null and "" alike).
 *
 * Thread-safety: a struct hubspot_api is shared by all worker threads (the token cache
 * has a mutex); the struct ioctx and struct hubspot_ctx of a call are the calling
 * thread's.
 */
#ifndef HSQB_HUBSPOT_H
#define HSQB_HUBSPOT_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/http.h"
#include "common/redis.h"
#include "worker/apierr.h"
#include "worker/event.h"
#include "worker/ioctx.h"
#include "worker/ratelimit.h"

#define HUBSPOT_MAX_LINE_ITEMS     1000  /* associated line items per event; more fails it */
#define HUBSPOT_MAX_CONTACTS       1000  /* associated contacts read per object */
#define HUBSPOT_MAX_TERMS          100   /* a quote's discounts, fees or taxes, each */
#define HUBSPOT_MAX_COMPANIES      100   /* associated companies read per object */
#define HUBSPOT_BATCH_MAX          100   /* inputs per batch read (HubSpot's limit) */
#define HUBSPOT_MAX_PROP           65536 /* bytes of one property value */
#define HUBSPOT_MAX_TOKEN          1024  /* bytes of an access token */
#define HUBSPOT_MAX_OUTPUT         64    /* callback output fields */
#define HUBSPOT_CALLBACK_BATCH_MAX 100   /* completions per batch request (HubSpot's limit) */
#define HUBSPOT_TOKEN_CACHE_MS     30000 /* a Redis token is re-read after this */
#define HUBSPOT_DEFAULT_WAIT_MS    30000 /* rate-limit wait bound when io->deadline_ms is 0 */

/* Optional metrics callbacks (NULL members are skipped). api is always "hubspot";
 * endpoint is one of "get_object", "get_contact", "get_company", "get_associations",
 * "batch_read_line_items", "batch_read_discounts", "batch_read_fees", "batch_read_taxes",
 * "get_tax_rate", "get_account_details", "complete_callback", "complete_callbacks"
 * (the batch); status is the HTTP status, 0 when no response arrived. on_ratelimit_wait
 * is called only when a request actually waited (ms > 0). Called on the worker thread;
 * must not block. The signatures are those of metrics_on_api_call /
 * metrics_on_ratelimit_wait (opaque = the struct metrics *). */
struct hubspot_hooks {
    void *opaque;
    void (*on_api_call)(void *opaque, const char *api, const char *endpoint, int status,
                        int64_t duration_ms);
    void (*on_ratelimit_wait)(void *opaque, const char *api, int64_t ms);
};

struct hubspot_opts {
    const char *base_url; /* e.g. "https://api.hubapi.com"; copied; no trailing '/' needed */
    const char *token;    /* default token; NULL or "" = none; copied, secret */
    /* The portals the default token serves: NULL-terminated decimal portal ids, or "*"
     * for any portal; NULL or empty = none (every portal needs a token of its own).
     * Parsed at creation (a bad item fails it); borrowed for the call only. */
    const char *const *token_portals;
    long timeout_ms; /* per request; 0 = the http_client's default */
    /* OAuth installs (worker/hubspot_oauth.h): the app's credentials for refreshing their
     * access tokens (NULL or "": not refreshed), copied, the secret is secret; refresh
     * when fewer than refresh_margin_ms remain (0: at expiry). */
    const char *oauth_client_id, *oauth_client_secret;
    int64_t refresh_margin_ms;
};

/* Every call takes, in this order: io, the calling thread's struct ioctx (io->http and
 * io->redis, for tokens and the rate limiter, not NULL; io->deadline_ms bounds rate-limit
 * waits, 0 = now + HUBSPOT_DEFAULT_WAIT_MS; claim_lost is not used: nothing here writes
 * to QuickBooks); the shared client; and a struct hubspot_ctx. Every failure names
 * API_SOURCE_HUBSPOT (the breaker charges it to the portal).
 *
 * struct hubspot_ctx keeps what the thread's ioctx does not know: which portal the call
 * acts for. It is kept apart from the ioctx because it differs per event on the same
 * thread. Borrowed for the call. */
struct hubspot_ctx {
    int64_t portal_id; /* > 0 */
};

/* From the settings hubspot.base_url, hubspot.token, hubspot.token_portals,
 * hubspot.oauth.client_id, hubspot.oauth.client_secret, hubspot.oauth.refresh_margin and
 * http.timeout (bounds the refresh lock and the wait for another's refresh). rl is borrowed (must
 * outlive the api); hooks may be NULL (copied). Returns NULL with errstr. Caller frees with
 * hubspot_api_free. */
struct hubspot_api *hubspot_api_new(const struct config *cfg, struct ratelimit *rl,
                                    const struct hubspot_hooks *hooks, char *errstr, size_t errsz);
/* Same from explicit options. */
struct hubspot_api *hubspot_api_new_opts(const struct hubspot_opts *o, struct ratelimit *rl,
                                         const struct hubspot_hooks *hooks, char *errstr,
                                         size_t errsz);
/* NULL-safe. */
void hubspot_api_free(struct hubspot_api *api);

/* The Redis key of a portal's token: "<prefix>hstoken:{<portal>}". Returns 0, or -1
 * when it does not fit in dstsz. For `hsqb-worker credentials`. */
int hubspot_token_key(char *dst, size_t dstsz, const char *prefix, int64_t portal_id);

/* 1 when the default token (hubspot.token) may serve portal: it is set and
 * hubspot.token_portals lists the portal or "*"; else 0. No I/O. */
int hubspot_default_serves(const struct hubspot_api *api, int64_t portal);

/* Whether portal has HubSpot credentials: 1 when the default token serves it
 * (hubspot_default_serves(), no I/O) or it has a token of its own (the in-process token
 * cache, else one GET of its Redis key: the token read is cached for the calls that
 * follow), 0 when it has neither, -1 with *err when Redis could not answer
 * (API_TRANSIENT). A "no token" answer is never taken from the cache: a portal connected
 * a moment ago is seen at once. For the pipeline's tenant check (worker/tenancy.h). */
int hubspot_portal_connected(const struct ioctx *io, struct hubspot_api *api, int64_t portal,
                             struct api_error *err);

/* ---- the enrolled object --------------------------------------------------------- */

struct hubspot_prop {
    char *name;
    char *value; /* NULL when absent, null or "" */
};

/* The text of an answer's property values: blocks holding them one after the other, so a
 * read costs an allocation per few KB rather than one per value (hubspot.c). */
struct hubspot_strpool;

struct hubspot_object {
    struct hubspot_strpool *strings; /* owns props' names and values */
    enum hsqb_object_type type;
    int64_t id;
    int archived;
    struct hubspot_prop *props; /* one per name of hubspot_object_properties(type) */
    size_t nprops;
    int64_t *contact_ids; /* associated contacts, unique, ascending: [0] is the "first
                             associated contact" of the README's action rules; NULL when none */
    size_t ncontacts;
    int64_t *line_item_ids; /* associated line items, unique, ascending; NULL when none */
    size_t nline_items;
    int64_t *company_ids; /* deals and quotes: associated companies, unique, ascending */
    size_t ncompanies;
    /* quotes: the associated discounts, fees and taxes (each unique, ascending) */
    int64_t *term_ids[3]; /* indexed by enum hubspot_term_kind */
    size_t nterms[3];
};

/* The property names read for each type (NULL-terminated, static):
 *   deal:             dealname amount closedate deal_currency_code pipeline dealstage
 *   quote:            hs_title hs_expiration_date hs_status hs_quote_amount hs_currency
 *                     hs_quote_number hs_locked hs_esign_num_signers_required
 *                     hs_esign_num_signers_completed hs_payment_status hs_payment_date
 *                     hs_net_payment_terms
 *   commerce payment: hs_initial_amount hs_initiated_date hs_currency_code
 *                     hs_customer_email hs_fees_amount hs_refunds_amount hs_net_amount
 *                     hs_reference_number hs_latest_status hs_payment_method_type
 *                     hs_processor_type hs_payment_source_app hs_payment_type */
const char *const *hubspot_object_properties(enum hsqb_object_type type);

/* GET /crm/v3/objects/{type}/{id}?properties=...&associations=contacts,line_items (deals
 * also companies; quotes also companies,discounts,fees,taxes).
 * Association keys "line_items" and "line items" are both read; ids are de-duplicated
 * (a target repeats once per association type) and sorted. When an embedded list says
 * it has more (paging.next), that type is re-read completely through the v4
 * associations API. More than HUBSPOT_MAX_LINE_ITEMS line items fails with API_PERMANENT /
 * BUDGET_EXCEEDED (the ceiling of budget.max_line_items); more than HUBSPOT_MAX_CONTACTS
 * contacts (or companies, or a quote's terms) with API_PERMANENT / HUBSPOT_VALIDATION.
 * An archived object reads as 404 (archived=false). On 0, *out is set (caller frees
 * with hubspot_object_free). */
int hubspot_get_object(const struct ioctx *io, struct hubspot_api *api,
                       const struct hubspot_ctx *hc, enum hsqb_object_type type, int64_t object_id,
                       struct hubspot_object **out, struct api_error *err);
void hubspot_object_free(struct hubspot_object *o);
/* Value of a property read for o's type; NULL when absent/null/empty or not read.
 * Borrowed from o. */
const char *hubspot_object_prop(const struct hubspot_object *o, const char *name);

/* ---- contacts -------------------------------------------------------------------- */

/* A postal address as HubSpot's contact and company properties give it (address, city,
 * state, zip, country); every member NULL when absent/null/empty. */
struct hubspot_address {
    char *line1, *city, *state, *zip, *country;
};

/* 1 when a has anything to send. */
int hubspot_address_present(const struct hubspot_address *a);

struct hubspot_contact {
    struct hubspot_strpool *strings; /* owns the strings below; NULL when built by hand */
    int64_t id;
    char *firstname; /* NULL when absent/null/empty */
    char *lastname;
    char *email;
    char *company; /* the contact's "company" (name) property */
    struct hubspot_address addr;
};

/* GET /crm/v3/objects/contacts/{id}?properties=firstname,lastname,email,company,address,
 * city,state,zip,country. 404 is API_NOT_FOUND / OBJECT_NOT_FOUND. On 0, *out is set
 * (hubspot_contact_free). */
int hubspot_get_contact(const struct ioctx *io, struct hubspot_api *api,
                        const struct hubspot_ctx *hc, int64_t contact_id,
                        struct hubspot_contact **out, struct api_error *err);
void hubspot_contact_free(struct hubspot_contact *c);

/* ---- line items ------------------------------------------------------------------ */

/* Every member is NULL when absent/null/empty. Money and quantities are decimal strings
 * as HubSpot sent them. */
struct hubspot_line_item {
    int64_t id;
    char *name;
    char *description;
    char *sku;                 /* hs_sku */
    char *product_id;          /* hs_product_id */
    char *quantity;            /* may be fractional */
    char *price;               /* unit price */
    char *amount;              /* net: qty x price after discount */
    char *discount;            /* per-unit discount amount */
    char *discount_percentage; /* hs_discount_percentage */
    char *total_discount;      /* hs_total_discount */
    char *tax_rate_group_id;   /* hs_tax_rate_group_id: non-empty = taxable */
    char *currency;            /* hs_line_item_currency_code */
    char *tax_rate;            /* hs_tax_rate: percent */
    char *tax_amount;          /* hs_tax_amount: the line's tax as HubSpot computed it */
    char *position;            /* hs_position_on_quote: the order the seller gave the lines */
};

struct hubspot_line_items {
    struct hubspot_strpool *strings; /* owns the items' strings */
    struct hubspot_line_item *items; /* in the order of the ids asked for */
    size_t n;
};

/* Sort line items into the order a document shows them: hs_position_on_quote ascending
 * (a plain non-negative integer; absent or anything else after all positioned ones),
 * then id. HubSpot returns associations in no order, so this is the only order that is
 * the seller's and the same on every replica. */
void hubspot_line_items_order(struct hubspot_line_item *li, size_t n);

/* An ordering property (hs_position_on_quote, hs_sort_order) as a number: a plain
 * non-negative integer, else INT64_MAX (sorts after every real position). s may be NULL. */
int64_t hubspot_order_key(const char *s);

/* POST /crm/v3/objects/line_items/batch/read, HUBSPOT_BATCH_MAX ids per call. ids
 * (borrowed) must be unique and n <= HUBSPOT_MAX_LINE_ITEMS (else API_PERMANENT /
 * HUBSPOT_VALIDATION); n == 0 gives an empty list without a request. Any id HubSpot
 * does not return (207 OBJECT_NOT_FOUND, or simply absent) fails the whole read with
 * API_NOT_FOUND / OBJECT_NOT_FOUND naming the ids: the document would silently miss
 * lines otherwise. On 0, *out is set (hubspot_line_items_free). */
int hubspot_get_line_items(const struct ioctx *io, struct hubspot_api *api,
                           const struct hubspot_ctx *hc, const int64_t *ids, size_t n,
                           struct hubspot_line_items **out, struct api_error *err);
void hubspot_line_items_free(struct hubspot_line_items *li);

/* ---- companies ------------------------------------------------------------------- */

struct hubspot_company {
    struct hubspot_strpool *strings; /* owns the strings below */
    int64_t id;
    char *name;
    struct hubspot_address addr;
};

/* GET /crm/v3/objects/companies/{id}?properties=name,address,city,state,zip,country. 404
 * is API_NOT_FOUND / OBJECT_NOT_FOUND. On 0, *out is set (hubspot_company_free). */
int hubspot_get_company(const struct ioctx *io, struct hubspot_api *api,
                        const struct hubspot_ctx *hc, int64_t company_id,
                        struct hubspot_company **out, struct api_error *err);
void hubspot_company_free(struct hubspot_company *c);

/* ---- the portal's account -------------------------------------------------------- */

#define HUBSPOT_TZ_MAX      65                  /* an IANA zone name, NUL included */
#define HUBSPOT_TZ_CACHE_MS (3600 * 1000LL)     /* a portal's zone is re-read after this */

/* The portal's time zone (the IANA name its account settings use), from GET
 * /account-info/v3/details ("timeZone"), cached in the process per portal for
 * HUBSPOT_TZ_CACHE_MS. tz gets "" when HubSpot names none or one that is not 1..64
 * bytes of [A-Za-z0-9_+-/]. 0, or -1 with *err (the classification of every call). */
int hubspot_account_time_zone(const struct ioctx *io, struct hubspot_api *api,
                              const struct hubspot_ctx *hc, char tz[HUBSPOT_TZ_MAX],
                              struct api_error *err);

/* ---- tax rates ------------------------------------------------------------------- */

/* GET /tax-rates/v1/tax-rates/{id} (scope tax_rates.read): the percentageRate of the tax
 * rate a line item's hs_tax_rate_group_id names, in units of 10^-7 percent (7.25% is
 * 72500000), read from the number's own text. 404 is API_NOT_FOUND / OBJECT_NOT_FOUND;
 * an id that is not 1..64 bytes of [A-Za-z0-9_-], or a rate that is missing, negative or
 * has more than 7 decimals, API_PERMANENT / HUBSPOT_VALIDATION. */
int hubspot_get_tax_rate(const struct ioctx *io, struct hubspot_api *api,
                         const struct hubspot_ctx *hc, const char *rate_id, int64_t *pct7,
                         struct api_error *err);

/* ---- a quote's discounts, fees and taxes ------------------------------------------- */

enum hubspot_term_kind { HUBSPOT_DISCOUNT, HUBSPOT_FEE, HUBSPOT_TAX };

/* One discount, fee or tax object (properties as sent; NULL when absent/null/empty). */
struct hubspot_price_term {
    enum hubspot_term_kind kind;
    int64_t id;
    char *label;      /* hs_label */
    char *type;       /* hs_type: PERCENT or FIXED */
    char *value;      /* hs_value: a percentage or an amount */
    char *sort_order; /* hs_sort_order (discounts) */
};

struct hubspot_price_terms {
    struct hubspot_strpool *strings; /* owns the items' strings */
    struct hubspot_price_term *items; /* discounts, then fees, then taxes, ids ascending */
    size_t n;
};

/* The discounts, fees and taxes the quote q names (q->term_ids): one batch read per kind
 * that has any (POST /crm/v3/objects/{discounts|fees|taxes}/batch/read), none when q has
 * none. A missing id fails like a missing line item (API_NOT_FOUND / OBJECT_NOT_FOUND):
 * the quote's total would silently change otherwise. On 0, *out is set
 * (hubspot_price_terms_free). */
int hubspot_get_price_terms(const struct ioctx *io, struct hubspot_api *api,
                            const struct hubspot_ctx *hc, const struct hubspot_object *q,
                            struct hubspot_price_terms **out, struct api_error *err);
void hubspot_price_terms_free(struct hubspot_price_terms *t);

/* ---- callback completion (worker/callbacks.c) --------------------------------------- */

struct hubspot_output_field {
    const char *name; /* e.g. "qbo_id" */
    const char *value;
};

/* What a callback completion says; everything borrowed for the call. */
struct hubspot_completion {
    const char *callback_id; /* the event's callbackId */
    int success;             /* != 0 sends SUCCESS, else FAIL_CONTINUE */
    /* may be NULL when nfields == 0; at most HUBSPOT_MAX_OUTPUT, names other than
     * hs_execution_state */
    const struct hubspot_output_field *fields;
    size_t nfields;
};

/* POST /automation/v4/actions/callbacks/{callback_id}/complete with
 * {"outputFields":{"hs_execution_state":"SUCCESS"|"FAIL_CONTINUE", <fields>}}.
 * 204 (any 2xx) is 0. 404 unknown callback: API_NOT_FOUND; 400 expired/completed:
 * API_PERMANENT; the caller must not loop on those (HubSpot refuses a second
 * completion). */
int hubspot_complete_callback(const struct ioctx *io, struct hubspot_api *api,
                              const struct hubspot_ctx *hc, const struct hubspot_completion *done,
                              struct api_error *err);

/* POST /automation/v4/actions/callbacks/complete with
 * {"inputs":[{"callbackId":…,"outputFields":{…}}, …]}: done[0..n-1] (n in
 * 1..HUBSPOT_CALLBACK_BATCH_MAX, callback ids distinct: HubSpot refuses duplicates) in
 * one request, one admission of hc's portal rate limit. 204 (any 2xx) is 0: every one is
 * completed. A refusal (4xx) is of the whole batch and does not say which input caused
 * it: complete them one by one to find out. Errors are classified as for every call
 * (transient 5xx/429/transport: retry the same batch). */
int hubspot_complete_callbacks_batch(const struct ioctx *io, struct hubspot_api *api,
                                     const struct hubspot_ctx *hc,
                                     const struct hubspot_completion *done, size_t n,
                                     struct api_error *err);

#endif
