/* hubspot_account.c - what HubSpot says of the portal rather than of one record: the
 * rates of its tax rate groups (a line item's hs_tax_rate_group_id) and its account's time
 * zone (the company-local calendar documents are dated in), with the zones cached per
 * portal in the client (hubspot_internal.h). Requests go through hubspot_exchange() like
 * every other call (hubspot.h's classification). */
#include "worker/hubspot_internal.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/jtape.h"
#include "common/money.h"

/* ---- tax rates ----------------------------------------------------------------------- */

static int get_tax_rate(const struct hubspot_call *c, const char *rate_id, int64_t *pct7,
                        struct api_error *err)
{
    static const char ep[] = "get_tax_rate";
    char url[HTTP_MAX_URL];
    struct http_response resp;
    struct jtape t = {0};
    size_t len = rate_id ? strlen(rate_id) : 0, i;
    int rc = -1;

    api_error_clear(err);
    http_response_init(&resp);
    for (i = 0; i < len && len <= 64; i++)
        if (!isalnum((unsigned char)rate_id[i]) && rate_id[i] != '-' && rate_id[i] != '_')
            break;
    if (!len || len > 64 || i != len) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, 0,
                      "hubspot: hs_tax_rate_group_id \"%.40s\" is not a tax rate id",
                      rate_id ? rate_id : "");
        goto out;
    }
    snprintf(url, sizeof url, "%s/tax-rates/v1/tax-rates/%s", c->api->base_url, rate_id);
    if (hubspot_exchange(c, &(struct hubspot_req){ep, HTTP_GET, url, NULL, 0}, &resp, err) < 0)
        goto out;
    if (hubspot_parse_answer(&resp, ep, &t, err) < 0)
        goto out;
    i = jtape_member(&t, JTAPE_ROOT, "percentageRate");
    if (!i || (t.n[i].type != JT_NUMBER && t.n[i].type != JT_STRING) ||
        money_qty_parsen(t.arena + t.n[i].str, t.n[i].count, pct7, NULL, 0) != MONEY_OK ||
        *pct7 < 0) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_HUBSPOT_VALIDATION, (int)resp.status,
                      "hubspot: tax rate %s has no usable percentageRate", rate_id);
        goto out;
    }
    rc = 0;
out:
    jtape_release(&t);
    http_response_release(&resp);
    return rc;
}

/* ---- the portal's account ------------------------------------------------------------ */

static int tz_cached(struct hubspot_api *api, int64_t portal, char tz[HUBSPOT_TZ_MAX])
{
    int hit = 0;
    int64_t now = clock_mono_ms();

    pthread_mutex_lock(&api->mu);
    for (size_t i = 0; i < api->ntzs && !hit; i++)
        if (api->tzs[i].portal == portal && now - api->tzs[i].fetched_ms < HUBSPOT_TZ_CACHE_MS) {
            memcpy(tz, api->tzs[i].tz, HUBSPOT_TZ_MAX);
            hit = 1;
        }
    pthread_mutex_unlock(&api->mu);
    return hit;
}

static void tz_put(struct hubspot_api *api, int64_t portal, const char *tz)
{
    struct hubspot_tz_entry *e = NULL;

    pthread_mutex_lock(&api->mu);
    for (size_t i = 0; i < api->ntzs && !e; i++)
        if (api->tzs[i].portal == portal)
            e = &api->tzs[i];
    if (!e)
        e = api->ntzs < sizeof api->tzs / sizeof api->tzs[0] ? &api->tzs[api->ntzs++]
                                                             : &api->tzs[portal % api->ntzs];
    e->portal = portal;
    e->fetched_ms = clock_mono_ms();
    snprintf(e->tz, sizeof e->tz, "%s", tz);
    pthread_mutex_unlock(&api->mu);
}

static int account_time_zone(const struct hubspot_call *c, char tz[HUBSPOT_TZ_MAX],
                             struct api_error *err)
{
    static const char ep[] = "get_account_details";
    char url[HTTP_MAX_URL];
    struct http_response resp;
    struct jtape t = {0};
    const char *v;
    size_t len;
    int rc = -1;

    api_error_clear(err);
    tz[0] = '\0';
    if (tz_cached(c->api, c->hc->portal_id, tz))
        return 0;
    http_response_init(&resp);
    snprintf(url, sizeof url, "%s/account-info/v3/details", c->api->base_url);
    if (hubspot_exchange(c, &(struct hubspot_req){ep, HTTP_GET, url, NULL, 0}, &resp, err) < 0 ||
        hubspot_parse_answer(&resp, ep, &t, err) < 0)
        goto out;
    if (jtape_get_strn(&t, JTAPE_ROOT, "timeZone", &v, &len) == JGET_OK && len > 0 &&
        len < HUBSPOT_TZ_MAX && strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                          "0123456789_+-/") == len) {
        memcpy(tz, v, len);
        tz[len] = '\0';
    }
    tz_put(c->api, c->hc->portal_id, tz);
    rc = 0;
out:
    jtape_release(&t);
    http_response_release(&resp);
    return rc;
}

/* ---- the public calls: each failure names API_SOURCE_HUBSPOT ------------------------ */

int hubspot_account_time_zone(const struct ioctx *io, struct hubspot_api *api,
                              const struct hubspot_ctx *hc, char tz[HUBSPOT_TZ_MAX],
                              struct api_error *err)
{
    struct hubspot_call c = {io, api, hc};
    return api_error_tag(err, API_SOURCE_HUBSPOT, account_time_zone(&c, tz, err));
}

int hubspot_get_tax_rate(const struct ioctx *io, struct hubspot_api *api,
                         const struct hubspot_ctx *hc, const char *rate_id, int64_t *pct7,
                         struct api_error *err)
{
    struct hubspot_call c = {io, api, hc};
    return api_error_tag(err, API_SOURCE_HUBSPOT, get_tax_rate(&c, rate_id, pct7, err));
}
