/* qbo_company.c - what QBO says a company is (see qbo.h): CompanyInfo and Preferences
 * (country, name, home currency, sales tax, multicurrency, custom numbering) and the
 * exchange rate of a currency on a date, over qbo_exchange() (qbo_internal.h).
 *
 * Why caches: every document needs the company's facts, which change rarely, so they are
 * read through two layers before QBO: the in-process table in struct qbo_api
 * (QBO_COMPANY_LOCAL_TTL_MS, at most QBO_COMPANY_CACHE_MAX realms, guarded by q->mu)
 * and the Redis key <prefix>map:{<realm>}:company shared by the replicas
 * (QBO_COMPANY_REDIS_TTL_MS, JSON of at most QBO_COMPANY_JSON_MAX bytes, version 2:
 * an entry without the Preferences is a miss). A miss at both reads CompanyInfo then
 * Preferences and fills both layers; a failing Redis is only a miss.
 *
 *   company_info: local hit --> out
 *                   \--miss--> Redis hit --> local put, out
 *                                \--miss--> GET companyinfo + GET preferences
 *                                             --> local put, Redis put, out
 *
 * Exchange rates are not cached here: each call is one GET /exchangerate, read from a
 * tape, its Rate checked to be a plain positive decimal before it is copied out.
 *
 * Thread-safety: as qbo.h says; the local table is only touched under q->mu.
 */
#include "worker/qbo.h"
#include "worker/qbo_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/jtape.h"
#include "common/log.h"

#define QBO_COMPANY_CACHE_MAX 4096 /* in-process CompanyInfo entries */
#define QBO_COMPANY_JSON_MAX  1024 /* cached CompanyInfo JSON in Redis */

/* ---- CompanyInfo --------------------------------------------------------------------- */

static int company_local_get(struct qbo_api *q, const char *realm, struct qbo_company *out)
{
    int hit = 0;
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&q->mu);
    for (size_t i = 0; i < q->ncompanies; i++) {
        if (strcmp(q->companies[i].realm, realm) == 0) {
            if (now < q->companies[i].until) {
                *out = q->companies[i].c;
                hit = 1;
            }
            break;
        }
    }
    pthread_mutex_unlock(&q->mu);
    return hit;
}

static void company_local_put(struct qbo_api *q, const char *realm, const struct qbo_company *c)
{
    struct company_entry *e = NULL;
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&q->mu);
    for (size_t i = 0; i < q->ncompanies && !e; i++)
        if (strcmp(q->companies[i].realm, realm) == 0 || q->companies[i].until <= now)
            e = &q->companies[i];
    if (!e && q->ncompanies == QBO_COMPANY_CACHE_MAX)
        e = &q->companies[now % QBO_COMPANY_CACHE_MAX]; /* full of live entries: replace one */
    if (!e) {
        if (q->ncompanies == q->capcompanies) {
            size_t cap = q->capcompanies ? q->capcompanies * 2 : 16;
            struct company_entry *n = realloc(q->companies, cap * sizeof *n);
            if (!n)
                goto out;
            q->companies = n;
            q->capcompanies = cap;
        }
        e = &q->companies[q->ncompanies++];
    }
    snprintf(e->realm, sizeof e->realm, "%s", realm);
    e->c = *c;
    e->until = now + QBO_COMPANY_LOCAL_TTL_MS;
out:
    pthread_mutex_unlock(&q->mu);
}

/* Country and name into c (the rest of c untouched). */
static void company_fill(struct qbo_company *c, const char *country, const char *name,
                         const char *addr_country)
{
    memset(c->country, 0, sizeof c->country);
    memset(c->name, 0, sizeof c->name);
    if (country && *country)
        qbo_copy_text(c->country, sizeof c->country, country, strlen(country));
    else if (addr_country)
        qbo_copy_text(c->country, sizeof c->country, addr_country, strlen(addr_country));
    if (name)
        qbo_copy_text(c->name, sizeof c->name, name, strlen(name));
    c->is_us = strcmp(c->country, "US") == 0 ||
               ((!country || !*country) && strcmp(c->country, "USA") == 0);
}

static int company_key(struct redis_conn *redis, const char *realm, char *key, size_t keysz)
{
    int n = snprintf(key, keysz, "%smap:{%s}:company", redis_conn_prefix(redis), realm);
    return n < 0 || (size_t)n >= keysz ? -1 : 0;
}

static int company_redis_get(struct redis_conn *redis, const char *realm, struct qbo_company *out)
{
    char key[REDIS_MAX_KEY + 1], e[256];
    struct json_object *doc;
    const char *country, *name;
    redisReply *r;
    int hit = 0;

    if (company_key(redis, realm, key, sizeof key) < 0 ||
        !(r = redis_command(redis, e, sizeof e, "GET %s", key)))
        return 0;
    if (r->type == REDIS_REPLY_STRING && r->len <= QBO_COMPANY_JSON_MAX &&
        (doc = json_parse_strict(r->str, r->len, 4, e, sizeof e)) != NULL) {
        int64_t v = 0;
        const char *home;
        struct qbo_company c = {{0}};
        /* v2 entries carry the Preferences; an older entry is a miss */
        if (json_get_int64(doc, "v", 0, 100, &v) == JGET_OK && v == 2 &&
            json_get_str(doc, "country", &country) == JGET_OK &&
            json_get_str(doc, "name", &name) == JGET_OK &&
            json_get_str(doc, "home", &home) == JGET_OK && strlen(home) == 3 &&
            json_get_bool(doc, "tax", &c.sales_tax) == JGET_OK &&
            json_get_bool(doc, "ast", &c.ast) == JGET_OK &&
            json_get_bool(doc, "mc", &c.multicurrency) == JGET_OK &&
            json_get_bool(doc, "ctn", &c.custom_txn_numbers) == JGET_OK) {
            company_fill(&c, country, name, NULL);
            memcpy(c.home_currency, home, 4);
            *out = c;
            hit = 1;
        }
        json_object_put(doc);
    }
    freeReplyObject(r);
    return hit;
}

static void company_redis_put(struct redis_conn *redis, const char *realm,
                              const struct qbo_company *c)
{
    char key[REDIS_MAX_KEY + 1], e[256], ttl[24];
    struct jbuf jb;
    redisReply *r;

    if (company_key(redis, realm, key, sizeof key) < 0)
        return;
    jbuf_init(&jb, QBO_COMPANY_JSON_MAX);
    jbuf_obj_open(&jb);
    jbuf_kv_int(&jb, "v", 2);
    jbuf_kv_str(&jb, "country", c->country);
    jbuf_kv_str(&jb, "name", c->name);
    jbuf_kv_str(&jb, "home", c->home_currency);
    jbuf_kv_bool(&jb, "tax", c->sales_tax);
    jbuf_kv_bool(&jb, "ast", c->ast);
    jbuf_kv_bool(&jb, "mc", c->multicurrency);
    jbuf_kv_bool(&jb, "ctn", c->custom_txn_numbers);
    jbuf_obj_close(&jb);
    snprintf(ttl, sizeof ttl, "%lld", (long long)QBO_COMPANY_REDIS_TTL_MS);
    if (jbuf_cstr(&jb)) {
        const char *argv[5] = {"SET", key, jbuf_cstr(&jb), "PX", ttl};
        if ((r = redis_command_argv(redis, 5, argv, NULL, e, sizeof e)) != NULL)
            freeReplyObject(r);
        else
            log_warn("qbo: caching CompanyInfo of realm %s failed: %s", realm, e);
    }
    jbuf_release(&jb);
}

static int pref_bool(struct json_object *o, const char *group, const char *key)
{
    struct json_object *g;
    int v = 0;
    if (json_get_obj(o, group, &g) != JGET_OK || json_get_bool(g, key, &v) != JGET_OK)
        return 0;
    return v;
}

/* GET /preferences: sales tax, currencies and numbering into c. */
static int preferences(const struct ioctx *io, struct qbo_api *q, const char *realm,
                       struct qbo_company *c, struct api_error *err)
{
    struct qbo_call call = {
        .method = HTTP_GET, .path = "preferences", .endpoint = "GET /v3/company/{realm}/preferences"};
    struct json_object *doc = NULL, *p, *cur, *home;
    const char *hc = NULL;

    if (qbo_exchange(io, q, realm, &call, &doc, err) < 0)
        return -1;
    if (json_get_obj(doc, "Preferences", &p) != JGET_OK) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 200,
                      "QBO answer lacks the Preferences object");
        json_object_put(doc);
        return -1;
    }
    c->sales_tax = pref_bool(p, "TaxPrefs", "UsingSalesTax");
    c->ast = pref_bool(p, "TaxPrefs", "PartnerTaxEnabled");
    c->multicurrency = pref_bool(p, "CurrencyPrefs", "MultiCurrencyEnabled");
    c->custom_txn_numbers = pref_bool(p, "SalesFormsPrefs", "CustomTxnNumbers");
    if (json_get_obj(p, "CurrencyPrefs", &cur) == JGET_OK &&
        json_get_obj(cur, "HomeCurrency", &home) == JGET_OK &&
        json_get_str(home, "value", &hc) == JGET_OK && strlen(hc) == 3)
        memcpy(c->home_currency, hc, 4);
    else
        memcpy(c->home_currency, "USD", 4);
    json_object_put(doc);
    return 0;
}

static int company_info(const struct ioctx *io, struct qbo_api *q, const char *realm,
                        struct qbo_company *out, struct api_error *err)
{
    struct redis_conn *redis = io->redis;
    char path[64];
    struct qbo_call c = {
        .method = HTTP_GET, .path = path, .endpoint = "GET /v3/company/{realm}/companyinfo/{id}"};
    struct json_object *doc = NULL, *ci, *addr;
    const char *country = NULL, *name = NULL, *addr_country = NULL;
    struct qbo_company got;

    api_error_clear(err);
    if (!oauth_realm_valid(realm)) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "qbo: bad realm id");
        return -1;
    }
    if (company_local_get(q, realm, out))
        return 0;
    if (company_redis_get(redis, realm, &got)) {
        company_local_put(q, realm, &got);
        *out = got;
        return 0;
    }
    snprintf(path, sizeof path, "companyinfo/%s", realm);
    if (qbo_exchange(io, q, realm, &c, &doc, err) < 0)
        return -1;
    if (json_get_obj(doc, "CompanyInfo", &ci) != JGET_OK) {
        api_error_set(err, API_TRANSIENT, HSQB_ERR_RETRIES_EXHAUSTED, 200,
                      "QBO answer lacks the CompanyInfo object");
        json_object_put(doc);
        return -1;
    }
    if (json_get_str(ci, "Country", &country) != JGET_OK)
        country = NULL;
    if (json_get_str(ci, "CompanyName", &name) != JGET_OK)
        name = NULL;
    if ((json_get_obj(ci, "CompanyAddr", &addr) == JGET_OK ||
         json_get_obj(ci, "LegalAddr", &addr) == JGET_OK) &&
        json_get_str(addr, "Country", &addr_country) != JGET_OK)
        addr_country = NULL;
    memset(&got, 0, sizeof got);
    company_fill(&got, country, name, addr_country);
    json_object_put(doc);
    if (preferences(io, q, realm, &got, err) < 0)
        return -1;
    company_local_put(q, realm, &got);
    company_redis_put(redis, realm, &got);
    *out = got;
    return 0;
}

/* ---- exchange rates ------------------------------------------------------------------ */

/* A plain positive decimal ("1.0812"): digits, at most one '.', not all zeros. */
static int rate_text_ok(const char *s, size_t n)
{
    size_t dots = 0, nonzero = 0;

    if (n == 0 || n >= QBO_RATE_MAX || s[0] == '.' || s[n - 1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.')
            dots++;
        else if (s[i] < '0' || s[i] > '9')
            return 0;
        else
            nonzero += s[i] != '0';
    }
    return dots <= 1 && nonzero > 0;
}

static int exchange_rate(const struct ioctx *io, struct qbo_api *q, const char *realm,
                         const char *code, const char *date, char rate[QBO_RATE_MAX],
                         struct api_error *err)
{
    struct http_param p[2] = {{"sourcecurrencycode", code}, {"asofdate", date}};
    struct jtape t = {0};
    struct qbo_call c = {.method = HTTP_GET,
                     .path = "exchangerate",
                     .endpoint = "GET /v3/company/{realm}/exchangerate",
                     .params = p,
                     .nparams = 2,
                     .tape = &t};
    size_t x, r;
    int rc = -1;

    api_error_clear(err);
    if (!oauth_realm_valid(realm) || !code || strlen(code) != 3 || !date || strlen(date) != 10) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "qbo: bad exchange rate query");
        return -1;
    }
    if (qbo_exchange(io, q, realm, &c, NULL, err) < 0)
        return -1;
    if (jtape_get_obj(&t, JTAPE_ROOT, "ExchangeRate", &x) != JGET_OK ||
        !(r = jtape_member(&t, x, "Rate")) ||
        (t.n[r].type != JT_NUMBER && t.n[r].type != JT_STRING) ||
        !rate_text_ok(t.arena + t.n[r].str, t.n[r].count)) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_QBO_VALIDATION, 200,
                      "QuickBooks has no usable exchange rate for %s on %s", code, date);
        goto out;
    }
    memcpy(rate, t.arena + t.n[r].str, t.n[r].count);
    rate[t.n[r].count] = '\0';
    rc = 0;
out:
    jtape_release(&t);
    return rc;
}

int qbo_exchange_rate(const struct ioctx *io, struct qbo_api *q, const char *realm,
                      const char *code, const char *date, char rate[QBO_RATE_MAX],
                      struct api_error *err)
{
    return api_error_tag(err, API_SOURCE_QBO, exchange_rate(io, q, realm, code, date, rate, err));
}

int qbo_company_info(const struct ioctx *io, struct qbo_api *q, const char *realm,
                     struct qbo_company *out, struct api_error *err)
{
    return api_error_tag(err, API_SOURCE_QBO, company_info(io, q, realm, out, err));
}
