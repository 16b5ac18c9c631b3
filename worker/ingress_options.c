/* ingress_options.c - HubSpot optionsUrl answers (see ingress_options.h).
 *
 * One request, read top to bottom in ingress_options_answer():
 *
 *   parse (options_fetch.c) --not a fetch--> 400 "<why>"
 *     field known? --no--> 400            realm chosen? --no--> 400 "choose ... first"
 *     take a connection slot --none within OPTIONS_POOL_WAIT_MS--> 503
 *     list: Redis cache --hit--------------------------------------\
 *             \--miss--> qbo_realm_id: the portal's realms + CompanyInfo
 *                        else: one paged QBO query of the field's list
 *                        --> options, sorted --> cache (options.cache_ttl) --> page --> 200
 *     QBO_REAUTH_REQUIRED --> 400 "... needs to be reconnected"; other failures --> 503
 *
 * Why this way: the editor asks again on every keystroke and every scroll, so the whole
 * list (at most OPTIONS_MAX options) is cached once per realm and list, and search and
 * paging run on the cached copy; fields that offer the same list (paid_from_account and
 * refund_from_account) share its key. The keys follow the others' hash-tag rule:
 *   <prefix>options:{<realm>}:<list>        one realm's list (terms, accounts:bank, ...)
 *   <prefix>options:{hs:<portal>}:realms    the companies offered to one portal
 * The HTTP threads of the ingress call in concurrently; a libcurl handle and a Redis
 * connection belong to one thread at a time, so each call borrows a slot (both) from a
 * pool of at most INGRESS_OPTIONS_CONCURRENCY slots (one per options thread of the
 * ingress), made on first use and kept. The QBO calls share
 * the workers' rate limiter and token store through Redis, like any replica.
 *
 * What the actions accept decides the values: a term, account or vendor input is an Id
 * when it is all digits, else a name (resolve.h), so a value is the name, or the Id when
 * the name would not read back as that record (all digits, too long, control bytes).
 */
#include "worker/ingress_options.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/http.h"
#include "common/log.h"
#include "common/redis.h"
#include "worker/metrics.h"
#include "worker/oauth.h"
#include "worker/options_fetch.h"
#include "worker/qbo.h"
#include "worker/ratelimit.h"
#include "worker/settings.h"
#include "worker/tenancy.h"

#define OPTIONS_POOL_MAX       64    /* slots at most */
#define OPTIONS_POOL_WAIT_MS   5000  /* longest wait for a free slot */
#define OPTIONS_REALMS_WAIT_MS 3000  /* CompanyInfo lookups of one answer, then placeholders */
#define OPTIONS_SCAN_ROUNDS    10000 /* SCAN calls of one realm listing */
#define OPTIONS_MSG_MAX        320

/* ---- what is offered ---------------------------------------------------------------- */

/* One QuickBooks list: its query (no paging clauses) and how a row becomes an option. */
struct qbo_list {
    const char *key;  /* cache-key tail */
    const char *noun; /* in messages */
    const char *sql;
    void (*add)(struct options_list *l, struct json_object *row);
};

static void add_term(struct options_list *l, struct json_object *row);
static void add_account(struct options_list *l, struct json_object *row);
static void add_vendor(struct options_list *l, struct json_object *row);
static void add_payment_method(struct options_list *l, struct json_object *row);

static const struct qbo_list l_terms = {"terms", "payment terms",
                                        "SELECT * FROM Term WHERE Active = true", add_term};
static const struct qbo_list l_deposit = {
    "accounts:deposit", "deposit accounts",
    "SELECT * FROM Account WHERE AccountType IN ('Bank', 'Other Current Asset') AND Active = true",
    add_account};
static const struct qbo_list l_expense = {
    "accounts:expense", "expense accounts",
    "SELECT * FROM Account WHERE AccountType IN ('Expense', 'Other Expense', 'Cost of Goods Sold') "
    "AND Active = true",
    add_account};
static const struct qbo_list l_paying = {
    "accounts:paying", "bank and credit card accounts",
    "SELECT * FROM Account WHERE AccountType IN ('Bank', 'Credit Card') AND Active = true",
    add_account};
static const struct qbo_list l_income = {
    "accounts:income", "income accounts",
    "SELECT * FROM Account WHERE AccountType = 'Income' AND Active = true", add_account};
static const struct qbo_list l_vendors = {"vendors", "vendors",
                                          "SELECT * FROM Vendor WHERE Active = true", add_vendor};
static const struct qbo_list l_methods = {"paymentmethods", "payment methods",
                                          "SELECT * FROM PaymentMethod WHERE Active = true",
                                          add_payment_method};

/* The input fields of the action definitions (worker/event.c reads the same names);
 * list NULL: qbo_realm_id, the companies. */
static const struct {
    const char *name;
    const struct qbo_list *list;
} fields[] = {
    {OPTIONS_REALM_FIELD, NULL},        /* every action */
    {"payment_terms", &l_terms},        /* create_invoice */
    {"deposit_to_account", &l_deposit}, /* create_sales_receipt, create_paid_invoice */
    {"expense_account", &l_expense},    /* create_expense */
    {"paid_from_account", &l_paying},   /* create_expense */
    {"refund_from_account", &l_paying}, /* create_refund_receipt */
    {"income_account", &l_income},      /* the items the sales and payment actions create */
    {"vendor", &l_vendors},             /* create_expense */
    {"payment_method", &l_methods},     /* no action input yet: issue 17's list */
};

/* ---- the object and its connection slots -------------------------------------------- */

struct slot {
    struct http_client *http;
    struct redis_conn *redis;
};

struct ingress_options {
    struct oauth *oauth;
    struct ratelimit *rl;
    struct qbo_api *qbo;
    struct redis_opts ro;       /* strings borrowed from the config */
    struct http_client_opts ho; /* likewise */
    int64_t ttl_ms;             /* options.cache_ttl; 0: no cache */
    int allow_unbound;          /* tenancy.allow_unbound */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct slot *idle[OPTIONS_POOL_MAX];
    size_t nidle, nopen, max; /* slots idle, made (idle or in use), allowed */
};

static void slot_free(struct slot *s)
{
    if (!s)
        return;
    redis_conn_free(s->redis);
    http_client_free(s->http);
    free(s);
}

static struct slot *slot_new(const struct ingress_options *o, char *errstr, size_t errsz)
{
    struct slot *s = calloc(1, sizeof *s);

    if (!s) {
        snprintf(errstr, errsz, "out of memory");
        return NULL;
    }
    if (!(s->http = http_client_new(&o->ho, errstr, errsz)) ||
        !(s->redis = redis_conn_new(&o->ro, errstr, errsz))) {
        slot_free(s);
        return NULL;
    }
    return s;
}

/* An idle slot, a new one while fewer than max exist, or NULL with errstr after waiting
 * OPTIONS_POOL_WAIT_MS for one to come back (or when making one fails). */
static struct slot *slot_take(struct ingress_options *o, char *errstr, size_t errsz)
{
    struct slot *s = NULL;
    struct timespec ts;
    int make = 0;

    clock_timespec(clock_deadline_ms(OPTIONS_POOL_WAIT_MS), &ts);
    pthread_mutex_lock(&o->mu);
    while (o->nidle == 0 && o->nopen == o->max)
        if (pthread_cond_timedwait(&o->cv, &o->mu, &ts) == ETIMEDOUT)
            break;
    if (o->nidle > 0)
        s = o->idle[--o->nidle];
    else if (o->nopen < o->max) {
        make = 1;
        o->nopen++;
    }
    pthread_mutex_unlock(&o->mu);
    if (!make) {
        if (!s)
            snprintf(errstr, errsz, "every connection is busy");
        return s;
    }
    if (!(s = slot_new(o, errstr, errsz))) {
        pthread_mutex_lock(&o->mu);
        o->nopen--;
        pthread_cond_signal(&o->cv);
        pthread_mutex_unlock(&o->mu);
    }
    return s;
}

/* Back to the pool, after sending what the rate limiter deferred on its connection. */
static void slot_give(struct ingress_options *o, struct slot *s)
{
    char e[256];

    if (redis_flush(s->redis, e, sizeof e) < 0)
        log_warn("options: redis: %s", e);
    pthread_mutex_lock(&o->mu);
    o->idle[o->nidle++] = s;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

struct ingress_options *ingress_options_new(const struct config *cfg, struct metrics *metrics,
                                            char *errstr, size_t errsz)
{
    struct ingress_options *o = calloc(1, sizeof *o);
    struct oauth_hooks oh = {
        .opaque = metrics, .api_call = metrics_on_api_call, .refresh = metrics_on_oauth_refresh};
    struct qbo_hooks qh = {.opaque = metrics,
                           .api_call = metrics_on_api_call,
                           .ratelimit_wait = metrics_on_ratelimit_wait};
    struct slot *first;
    int64_t threads = INGRESS_OPTIONS_CONCURRENCY; /* the ingress's options threads */

    if (!o) {
        snprintf(errstr, errsz, "options: out of memory");
        return NULL;
    }
    pthread_mutex_init(&o->mu, NULL);
    clock_cond_init(&o->cv);
    o->ttl_ms = config_get_ms(cfg, "options.cache_ttl");
    o->allow_unbound = config_get_bool(cfg, "tenancy.allow_unbound");
    o->max = threads < 1 ? 1 : threads > OPTIONS_POOL_MAX ? OPTIONS_POOL_MAX : (size_t)threads;
    settings_redis_opts(cfg, &o->ro);
    settings_http_opts(cfg, &o->ho);
    if (!(o->rl = ratelimit_new(cfg, errstr, errsz)) || !(o->oauth = oauth_new(cfg, errstr, errsz)))
        goto fail;
    oauth_set_hooks(o->oauth, &oh);
    if (!(o->qbo = qbo_api_new(cfg, o->oauth, o->rl, &qh, errstr, errsz)))
        goto fail;
    /* one slot now: a wrong Redis address or password is a start-up error */
    if (!(first = slot_take(o, errstr, errsz)))
        goto fail;
    slot_give(o, first);
    return o;
fail:
    ingress_options_free(o);
    return NULL;
}

void ingress_options_free(struct ingress_options *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->nidle; i++)
        slot_free(o->idle[i]);
    qbo_api_free(o->qbo);
    oauth_free(o->oauth);
    ratelimit_free(o->rl);
    pthread_cond_destroy(&o->cv);
    pthread_mutex_destroy(&o->mu);
    free(o);
}

/* ---- rows into options -------------------------------------------------------------- */

static const char *str_of(struct json_object *row, const char *key)
{
    const char *s = NULL;
    return json_get_str(row, key, &s) == JGET_OK ? s : NULL;
}

/* 1 when the action reads name back as this record: not all digits (an Id), no control
 * bytes (event.c refuses them), within OPTIONS_VALUE_MAX. */
static int name_usable(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > OPTIONS_VALUE_MAX || strspn(name, "0123456789") == n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return 0;
    return 1;
}

/* An option labelled name whose value is name, or the row's Id when the name is not
 * usable (only where the action takes Ids: by_id). Rows without either are left out. */
static void add_named(struct options_list *l, struct json_object *row, const char *name,
                      const char *desc, int by_id)
{
    const char *id = str_of(row, "Id");

    if (!name || !*name)
        return;
    if (name_usable(name))
        options_list_add(l, name, name, desc);
    else if (by_id && id && *id && strspn(id, "0123456789") == strlen(id))
        options_list_add(l, name, id, desc);
}

static void add_term(struct options_list *l, struct json_object *row)
{
    char desc[64] = "";
    int64_t d;

    if (json_get_int64(row, "DueDays", 0, 100000, &d) == JGET_OK)
        snprintf(desc, sizeof desc, d == 0 ? "due on receipt" : "due in %lld days", (long long)d);
    else if (json_get_int64(row, "DayOfMonthDue", 1, 31, &d) == JGET_OK)
        snprintf(desc, sizeof desc, "due on day %lld of the month", (long long)d);
    add_named(l, row, str_of(row, "Name"), desc, 1);
}

/* Label and value are FullyQualifiedName ("Parent:Child"), which the action matches
 * first and which, unlike Name, no sub-account shares. */
static void add_account(struct options_list *l, struct json_object *row)
{
    char desc[OPTIONS_DESC_MAX + 1];
    const char *name = str_of(row, "FullyQualifiedName"), *type = str_of(row, "AccountType");
    const char *num = str_of(row, "AcctNum");
    size_t n;

    if (!name || !*name)
        name = str_of(row, "Name");
    n = (size_t)snprintf(desc, sizeof desc, "%.60s", type ? type : "");
    if (num && *num && n < sizeof desc)
        snprintf(desc + n, sizeof desc - n, "%sno. %.40s", n ? ", " : "", num);
    add_named(l, row, name, desc, 1);
}

static void add_vendor(struct options_list *l, struct json_object *row)
{
    const char *name = str_of(row, "DisplayName"), *company = str_of(row, "CompanyName");

    add_named(l, row, name, company && name && strcmp(company, name) != 0 ? company : NULL, 1);
}

/* The payments match a method by its name only (resolve_payment_method): no Id values. */
static void add_payment_method(struct options_list *l, struct json_object *row)
{
    const char *type = str_of(row, "Type");

    add_named(l, row, str_of(row, "Name"),
              type && strcmp(type, "CREDIT_CARD") == 0 ? "credit card" : NULL, 0);
}

/* ---- cache -------------------------------------------------------------------------- */

static int cache_key(const struct slot *s, const char *tag, const char *tail, char *key,
                     size_t keysz)
{
    int n = snprintf(key, keysz, "%soptions:{%s}:%s", redis_conn_prefix(s->redis), tag, tail);
    return n > 0 && (size_t)n < keysz ? 0 : -1;
}

/* 1 and *l filled on a hit; 0 on a miss, a Redis failure or a damaged entry (the cache
 * is only a cache: the list is fetched again). */
static int cache_get(const struct ingress_options *o, struct slot *s, const char *key,
                     struct options_list *l)
{
    char e[256];
    redisReply *r;
    int hit = 0;

    if (o->ttl_ms <= 0)
        return 0;
    if (!(r = redis_command(s->redis, e, sizeof e, "GET %s", key))) {
        log_warn("options: cache read: %s", e);
        return 0;
    }
    if (r->type == REDIS_REPLY_STRING) {
        hit = options_list_load(l, r->str, r->len, e, sizeof e) == 0;
        if (!hit)
            log_warn("options: cache entry %s dropped: %s", key, e);
    }
    freeReplyObject(r);
    return hit;
}

static void cache_put(const struct ingress_options *o, struct slot *s, const char *key,
                      const struct options_list *l)
{
    struct jbuf jb;
    char e[256];
    redisReply *r;

    if (o->ttl_ms <= 0)
        return;
    jbuf_init(&jb, 0);
    options_list_dump(l, &jb);
    if (jb.err)
        log_warn("options: cache entry %s not written: out of memory", key);
    else if (!(r = redis_command(s->redis, e, sizeof e, "SET %s %b PX %lld", key, jb.buf, jb.len,
                                 (long long)o->ttl_ms)))
        log_warn("options: cache write: %s", e);
    else
        freeReplyObject(r);
    jbuf_release(&jb);
}

/* ---- failures ----------------------------------------------------------------------- */

/* What the editor is told when no list can be shown. */
struct failure {
    int status;
    char message[OPTIONS_MSG_MAX];
};

__attribute__((format(printf, 3, 4))) static int failed(struct failure *f, int status,
                                                        const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(f->message, sizeof f->message, fmt, ap);
    va_end(ap);
    f->status = status;
    return -1;
}

/* A failed QBO (or token) call for realm's list noun. */
static int qbo_failed(struct failure *f, const char *realm, const char *noun,
                      const struct api_error *err)
{
    if (err->code == HSQB_ERR_QBO_REAUTH_REQUIRED)
        return failed(f, 400, "QuickBooks company %s needs to be reconnected", realm);
    log_warn("options: listing the %s of realm %s failed (%s): %s", noun, realm,
             api_class_name(err->cls), err->message);
    if (err->cls == API_THROTTLED)
        return failed(f, 503, "QuickBooks asks us to slow down for company %s; try again shortly",
                      realm);
    if (api_error_retryable(err))
        return failed(f, 503, "QuickBooks did not answer for company %s; try again", realm);
    return failed(f, 503, "QuickBooks refused to list the %s of company %s: %.160s", noun, realm,
                  err->message);
}

/* ---- the lists ---------------------------------------------------------------------- */

/* One realm's list through its cache: 0 with *l, or -1 with *f. */
static int qbo_list_get(struct ingress_options *o, struct slot *s, const char *realm,
                        const struct qbo_list *ql, struct options_list *l, struct failure *f)
{
    struct ioctx io = {.http = s->http, .redis = s->redis};
    struct qbo_paging pg = {.page_size = 0, .max_rows = OPTIONS_MAX};
    struct json_object *rows = NULL;
    struct api_error err;
    char key[REDIS_MAX_KEY + 1];
    size_t n;

    if (cache_key(s, realm, ql->key, key, sizeof key) < 0)
        return failed(f, 400, "qbo_realm_id is too long");
    if (cache_get(o, s, key, l))
        return 0;
    if (qbo_query_all(&io, o->qbo, realm, ql->sql, &pg, &rows, &err) < 0)
        return qbo_failed(f, realm, ql->noun, &err);
    n = json_object_array_length(rows);
    for (size_t i = 0; i < n; i++)
        ql->add(l, json_object_array_get_idx(rows, i));
    json_object_put(rows);
    /* NEEDSWORK: past OPTIONS_MAX rows, records beyond the first page are neither shown
     * nor found by search (search runs on the cached list, not in QuickBooks). */
    if (pg.more)
        log_warn("options: realm %s has more than %d %s; the list shows the first %d", realm,
                 OPTIONS_MAX, ql->noun, OPTIONS_MAX);
    options_list_sort(l);
    cache_put(o, s, key, l);
    return 0;
}

struct realm_ids {
    char (*id)[OPTIONS_REALM_MAX + 1];
    size_t n;
};

static int id_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The realm id between "{" and "}" of an oauth key into ids (when it is one and room
 * remains). */
static void realm_of_key(const char *key, size_t len, struct realm_ids *ids)
{
    const char *a = memchr(key, '{', len), *b;
    size_t n;

    if (!a || !(b = memchr(a, '}', (size_t)(key + len - a))) || ids->n == OPTIONS_MAX)
        return;
    n = (size_t)(b - a - 1);
    if (n == 0 || n > OPTIONS_REALM_MAX || strspn(a + 1, "0123456789") < n)
        return;
    memcpy(ids->id[ids->n], a + 1, n);
    ids->id[ids->n++][n] = 0;
}

/* Whether portal may see realm's lists: bound to it, or (tenancy.allow_unbound, the
 * upgrade path) bound to nobody, as the worker admits events. 1, 0, or -1 with errstr. */
static int realm_allowed(const struct ingress_options *o, struct slot *s, int64_t portal,
                         const char *realm, char *errstr, size_t errsz)
{
    int64_t owner = 0;
    int r = tenancy_portal_of(s->redis, realm, &owner, errstr, errsz);

    if (r < 0)
        return -1;
    return r == 1 ? owner == portal : o->allow_unbound;
}

/* The realms portal may offer, sorted, each once: those bound to it (tenancy), plus with
 * tenancy.allow_unbound every realm with stored credentials (the <prefix>oauth:{<realm>}
 * hashes, found by SCAN) that is bound to nobody; at most OPTIONS_MAX. Another
 * customer's company is never offered. 0, or -1 with errstr (Redis failed). */
static int portal_realms(const struct ingress_options *o, struct slot *s, int64_t portal,
                         struct realm_ids *ids, char *errstr, size_t errsz)
{
    char pattern[REDIS_MAX_KEY + 1], cursor[32] = "0";
    const char *p = redis_conn_prefix(s->redis);
    size_t k = 0, rounds = 0, n = 0;

    if (tenancy_realms(s->redis, portal, ids->id, OPTIONS_MAX, &n, errstr, errsz) < 0)
        return -1;
    ids->n = n < OPTIONS_MAX ? n : OPTIONS_MAX;
    if (!o->allow_unbound)
        return 0;
    for (; *p && k + 3 < sizeof pattern - 16; p++) {
        if (strchr("*?[]\\", *p))
            pattern[k++] = '\\';
        pattern[k++] = *p;
    }
    snprintf(pattern + k, sizeof pattern - k, "oauth:{*}");
    do {
        redisReply *r =
            redis_command(s->redis, errstr, errsz, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
            if (r) {
                snprintf(errstr, errsz, "unexpected SCAN reply");
                freeReplyObject(r);
            }
            return -1;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const redisReply *kr = r->element[1]->element[i];
            if (kr->type == REDIS_REPLY_STRING)
                realm_of_key(kr->str, kr->len, ids);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0 && ++rounds < OPTIONS_SCAN_ROUNDS);
    /* what SCAN added beyond the bound ones: keep the unbound (another customer's never) */
    k = n < OPTIONS_MAX ? n : OPTIONS_MAX;
    for (size_t i = k; i < ids->n; i++) {
        int64_t owner;
        int r = tenancy_portal_of(s->redis, ids->id[i], &owner, errstr, errsz);

        if (r < 0)
            return -1;
        if (r == 0)
            memmove(ids->id[k++], ids->id[i], sizeof *ids->id);
    }
    ids->n = k;
    qsort(ids->id, ids->n, sizeof *ids->id, id_cmp);
    for (size_t i = k = 0; i < ids->n; i++) /* SCAN may return a key twice */
        if (k == 0 || strcmp(ids->id[k - 1], ids->id[i]) != 0)
            memmove(ids->id[k++], ids->id[i], sizeof *ids->id);
    ids->n = k;
    return 0;
}

/* One company's option. Returns 1 when it is final (cacheable), 0 when it is a
 * placeholder (CompanyInfo could not be read in time), -1 on a Redis failure (errstr). */
static int realm_option(struct ingress_options *o, struct slot *s, const char *realm,
                        int64_t deadline, struct options_list *l, char *errstr, size_t errsz)
{
    struct ioctx io = {.http = s->http, .redis = s->redis};
    struct oauth_status st;
    struct qbo_company co;
    struct api_error err;
    char label[sizeof co.name], desc[OPTIONS_DESC_MAX + 1]; /* the list cuts the label */
    int r = oauth_status_get(s->redis, realm, &st, errstr, errsz), final = 1, reauth;

    if (r <= 0 || !st.has_refresh_token)
        return r < 0 ? -1 : 1; /* gone meanwhile, or no credentials: not offered */
    reauth = st.reauth_required;
    snprintf(label, sizeof label, "QuickBooks company %s", realm);
    snprintf(desc, sizeof desc, "%s", realm);
    if (clock_left_ms(deadline) == 0) {
        final = 0;
    } else if (qbo_company_info(&io, o->qbo, realm, &co, &err) == 0) {
        if (co.name[0])
            snprintf(label, sizeof label, "%s", co.name);
        if (co.country[0])
            snprintf(desc, sizeof desc, "%s, %s", realm, co.country);
    } else if (err.code == HSQB_ERR_QBO_REAUTH_REQUIRED) {
        reauth = 1;
    } else {
        log_warn("options: CompanyInfo of realm %s: %s", realm, err.message);
        final = 0;
    }
    if (reauth)
        snprintf(desc, sizeof desc, "%s, needs to be reconnected", realm);
    options_list_add(l, label, realm, desc);
    return final;
}

/* The key of the companies offered to portal. */
static int realms_key(struct redis_conn *r, int64_t portal, char *key, size_t keysz)
{
    int n =
        snprintf(key, keysz, "%soptions:{hs:%lld}:realms", redis_conn_prefix(r), (long long)portal);
    return n > 0 && (size_t)n < keysz ? 0 : -1;
}

int ingress_options_forget_portal(struct redis_conn *r, int64_t portal, char *errstr, size_t errsz)
{
    char key[REDIS_MAX_KEY + 1];
    redisReply *rep;

    if (realms_key(r, portal, key, sizeof key) < 0) {
        snprintf(errstr, errsz, "key too long");
        return -1;
    }
    if (!(rep = redis_command(r, errstr, errsz, "DEL %s", key)))
        return -1;
    freeReplyObject(rep);
    return 0;
}

/* The companies offered to the request's portal, through their cache. */
static int realms_get(struct ingress_options *o, struct slot *s, int64_t portal,
                      struct options_list *l, struct failure *f)
{
    struct realm_ids ids = {0};
    char key[REDIS_MAX_KEY + 1], e[256];
    int64_t deadline = clock_deadline_ms(OPTIONS_REALMS_WAIT_MS);
    int complete = 1, r, rc = -1;

    if (realms_key(s->redis, portal, key, sizeof key) == 0 && cache_get(o, s, key, l))
        return 0;
    if (!(ids.id = calloc(OPTIONS_MAX, sizeof *ids.id)))
        return failed(f, 503, "out of memory");
    if (portal_realms(o, s, portal, &ids, e, sizeof e) < 0)
        goto redis_failed;
    for (size_t i = 0; i < ids.n; i++) {
        if ((r = realm_option(o, s, ids.id[i], deadline, l, e, sizeof e)) < 0)
            goto redis_failed;
        complete &= r;
    }
    options_list_sort(l);
    if (complete)
        cache_put(o, s, key, l);
    rc = 0;
    goto out;
redis_failed:
    log_warn("options: listing the QuickBooks companies: redis: %s", e);
    failed(f, 503, "the list of QuickBooks companies is unavailable; try again");
out:
    free(ids.id);
    return rc;
}

/* ---- the answer --------------------------------------------------------------------- */

static int answer_message(struct jbuf *out, int status, const char *message)
{
    jbuf_obj_open(out);
    jbuf_kv_str(out, "message", message);
    jbuf_obj_close(out);
    return status;
}

/* The request's list into *l: 0, or -1 with *f. */
static int list_for(struct ingress_options *o, const struct options_request *rq,
                    const struct qbo_list *ql, struct options_list *l, struct failure *f)
{
    char e[256];
    struct slot *s = slot_take(o, e, sizeof e);
    int rc;

    if (!s) {
        log_warn("options: no connection: %s", e);
        return failed(f, 503, "the options service is busy; try again");
    }
    if (ql && (rc = realm_allowed(o, s, rq->portal_id, rq->realm, e, sizeof e)) != 1) {
        slot_give(o, s);
        if (rc < 0) {
            log_warn("options: redis: %s", e);
            return failed(f, 503, "the options service cannot read its store; try again");
        }
        /* the worker's REALM_NOT_ALLOWED wording: whether another customer holds the
         * company is not this portal's business */
        return failed(f, 400, "this QuickBooks company is not connected to this HubSpot "
                              "account");
    }
    rc = ql ? qbo_list_get(o, s, rq->realm, ql, l, f) : realms_get(o, s, rq->portal_id, l, f);
    slot_give(o, s);
    return rc;
}

int ingress_options_answer(struct ingress_options *o, const char *body, size_t len,
                           struct jbuf *out)
{
    struct options_request rq;
    struct options_list l;
    struct failure f = {0};
    const struct qbo_list *ql = NULL;
    char e[OPTIONS_MSG_MAX];
    size_t i, nf = sizeof fields / sizeof fields[0];

    if (options_request_parse(body, len, &rq, e, sizeof e) < 0)
        return answer_message(out, 400, e);
    for (i = 0; i < nf && strcmp(fields[i].name, rq.field) != 0; i++)
        ;
    if (i == nf) {
        snprintf(e, sizeof e, "no options for the input field \"%s\"", rq.field);
        return answer_message(out, 400, e);
    }
    if ((ql = fields[i].list) && rq.realm_state == OPTIONS_REALM_NONE)
        return answer_message(out, 400, "choose the QuickBooks company first");
    if (ql && rq.realm_state == OPTIONS_REALM_BAD)
        return answer_message(out, 400, "qbo_realm_id is not a QuickBooks company id (digits)");
    options_list_init(&l);
    if (list_for(o, &rq, ql, &l, &f) < 0) {
        options_list_release(&l);
        return answer_message(out, f.status, f.message);
    }
    options_list_page(&l, rq.q, rq.after, out);
    options_list_release(&l);
    return out->err ? 503 : 200;
}
