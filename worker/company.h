/* company.h - what hsqb keeps about a connected QuickBooks company besides its tokens:
 * the facts the settings page shows, and the defaults its accountant chose there, which
 * the worker uses when an event leaves them empty.
 *
 * Owns: one Redis hash per company (realm), next to its tokens and binding (hash tag
 * {<realm>}), and one process's cache of the defaults (struct company_cache).
 *
 *   <prefix>company:{<realm>}  hash
 *     portal           the HubSpot portal that connected it (decimal); defaults saved by
 *                      one portal never apply to another's events
 *     name, country    CompanyInfo's CompanyName and Country when it was connected
 *     connected_at     epoch ms of the (last) connect through the ingress
 *     deposit_account  QBO account (Id or exact Name) sales receipts and paid invoices'
 *                      payments deposit to
 *     income_account   QBO income account (Id or exact Name) of the items the worker
 *                      creates
 *     fee_item         QBO item (exact Name) a quote's fees are booked on
 *     time_zone        IANA zone the company's documents are dated in
 *     updated_at       epoch ms of the last save from the settings page
 *
 * Precedence, for each default: the event's own input, then this hash, then the
 * per-company settings (dates.time_zone_by_realm, items.income_account_by_realm), then the
 * global settings (sales_receipt.deposit_account, items.income_account, quotes.fee_item),
 * then what QuickBooks or HubSpot says (the first income account, the portal's zone).
 *
 * Invalidation: every save and every delete bumps the tenancy epoch (worker/tenancy.h),
 * and the cache keeps each company's defaults under the tenancy generation they were read
 * in, so a save reaches every worker within about a second (TENANCY_EPOCH_POLL_MS) and a
 * warm worker spends no Redis command per event on them.
 *
 * Thread-safety: the Redis calls use the caller's connection only; struct company_cache
 * is shared by all worker threads (it locks itself).
 */
#ifndef HSQB_COMPANY_H
#define HSQB_COMPANY_H

#include <stddef.h>
#include <stdint.h>

#include "common/redis.h"

#define COMPANY_KEY          "company:" /* after the prefix */
#define COMPANY_NAME_MAX     255        /* bytes of a company's name we keep */
#define COMPANY_ACCOUNT_MAX  100        /* an account's Id or Name (QBO: 100 characters) */
#define COMPANY_ITEM_MAX     100        /* an item's Name (QBO: 100 characters) */
#define COMPANY_ZONE_MAX     64         /* an IANA zone name (common/tz.h TZ_NAME_MAX) */
#define COMPANY_CACHE_SLOTS  4096       /* companies one process keeps defaults of */

/* The defaults a company's settings page sets; "" = not set. */
struct company_defaults {
    char deposit_account[COMPANY_ACCOUNT_MAX + 1];
    char income_account[COMPANY_ACCOUNT_MAX + 1];
    char fee_item[COMPANY_ITEM_MAX + 1];
    char time_zone[COMPANY_ZONE_MAX + 1];
};

/* Everything the hash holds, for the settings page. */
struct company {
    int64_t portal; /* 0 when unknown */
    char name[COMPANY_NAME_MAX + 1];
    char country[8];
    int64_t connected_at_ms; /* 0 when unknown */
    int64_t updated_at_ms;   /* 0 when never saved */
    struct company_defaults d;
};

/* Checks d as the settings page's form gives it (blanks around values already trimmed):
 * printable UTF-8 without control characters, within the sizes above, a time zone this
 * machine knows. 0, or -1 with msg (what is wrong, naming the field in the page's words). */
int company_defaults_check(const struct company_defaults *d, char *msg, size_t msgsz);

/* Records that portal connected realm, with CompanyInfo's name and country (either may be
 * NULL or ""), at now_ms; the defaults already saved for the same portal stay, another
 * portal's are dropped. Bumps the tenancy epoch. 0, or -1 with errstr. */
int company_connected(struct redis_conn *r, const char *realm, int64_t portal, const char *name,
                      const char *country, int64_t now_ms, char *errstr, size_t errsz);

/* Saves d (checked by the caller) as realm's defaults for portal at now_ms, and bumps
 * the tenancy epoch. 0, or -1 with errstr. */
int company_defaults_save(struct redis_conn *r, const char *realm, int64_t portal,
                          const struct company_defaults *d, int64_t now_ms, char *errstr,
                          size_t errsz);

/* What is kept about realm: 1 with *out, 0 when nothing is (out zeroed), -1 with errstr. */
int company_get(struct redis_conn *r, const char *realm, struct company *out, char *errstr,
                size_t errsz);

/* Deletes what is kept about realm (a disconnect, an unbind) and bumps the tenancy epoch.
 * 0, or -1 with errstr. */
int company_forget(struct redis_conn *r, const char *realm, char *errstr, size_t errsz);

/* ---- the worker's view ------------------------------------------------------------- */

struct company_cache;

/* NULL when out of memory. Caller frees with company_cache_free(). */
struct company_cache *company_cache_new(void);
/* NULL-safe. */
void company_cache_free(struct company_cache *cc);

/* realm's defaults for portal's events into *out (zeroed when none, or when they were
 * saved by another portal), from the cache when it holds them under generation gen (the
 * tenancy generation the caller read, tenancy_generation()), else from Redis (one HMGET)
 * then cached. cc may be NULL and gen 0 (both: always Redis, nothing cached). 0, or -1 with errstr (Redis failed). */
int company_defaults_for(struct company_cache *cc, struct redis_conn *r, const char *realm,
                         int64_t portal, uint64_t gen, struct company_defaults *out, char *errstr,
                         size_t errsz);

#endif
