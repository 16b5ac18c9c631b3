/* ingress_options.h - answers HubSpot's optionsUrl requests (POST /hubspot/options) for
 * the workflow editor's dropdowns (issue 17 item 4).
 *
 * A request (already signature-checked by the ingress) is HubSpot's options fetch:
 *   {"origin":{"portalId":N,"actionDefinitionId":N,"actionDefinitionVersion":N},
 *    "inputFieldName":"qbo_realm_id","inputFields":{...},
 *    "fetchOptions":{"q":"search text","after":"paging cursor"}}
 * and the answer is
 *   {"options":[{"label":"…","value":"…","description":"…"}],"after":"…","searchable":true}
 * Fields served: qbo_realm_id (the QuickBooks companies the portal may use: those bound
 * to it (worker/tenancy.h), plus with tenancy.allow_unbound those with stored credentials
 * bound to nobody; labelled by CompanyName), payment_terms (Term names), the account
 * fields (deposit_to_account: Bank / Other Current Asset; expense_account: Expense, Other
 * Expense, Cost of Goods Sold; paid_from_account and refund_from_account: Bank, Credit
 * Card), vendor (Vendor DisplayName), payment_method (PaymentMethod Name); every field
 * but qbo_realm_id reads the realm chosen in inputFields.qbo_realm_id, which the portal
 * must be allowed (else 400, in the words of the worker's REALM_NOT_ALLOWED). Lists come
 * from QBO through the stored credentials and are cached in Redis for options.cache_ttl;
 * `q` filters case-insensitively on the label, `after` pages (a decimal offset).
 *
 * Thread-safety: ingress_options_answer() may be called from any number of threads.
 */
#ifndef HSQB_INGRESS_OPTIONS_H
#define HSQB_INGRESS_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/json.h"
#include "common/redis.h"

struct ingress_options;
struct metrics;

/* Options fetches answered at once: the ingress runs this many options threads, and the
 * module keeps as many HTTP/Redis slots. */
#define INGRESS_OPTIONS_CONCURRENCY 4

/* cfg and metrics borrowed; they must outlive ingress_options_free(). NULL with errstr
 * filled on failure. */
struct ingress_options *ingress_options_new(const struct config *cfg, struct metrics *metrics,
                                            char *errstr, size_t errsz);
void ingress_options_free(struct ingress_options *o);

/* Answers one verified request body. Writes the JSON answer into out (initialised by the
 * caller) and returns the HTTP status: 200 with options; 400 with {"message":"…"} for a
 * body that is not an options fetch, an unknown field or a missing realm; 503 with
 * {"message":"…"} when QBO or Redis failed transiently (HubSpot shows an error and the
 * editor asks again). */
int ingress_options_answer(struct ingress_options *o, const char *body, size_t len,
                           struct jbuf *out);

/* Drops the cached list of the QuickBooks companies offered to portal, so a company
 * connected or disconnected a moment ago shows at once (the connect flows call it).
 * Uses the caller's Redis connection r. 0, or -1 with errstr. */
int ingress_options_forget_portal(struct redis_conn *r, int64_t portal, char *errstr, size_t errsz);

#endif
