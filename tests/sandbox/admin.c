/* admin.c - the sandbox's own control plane: runtime settings (one table), the request
 * log, fault rules, seeding, and the /_sandbox/ routes that expose them to tests.
 *
 * Why here and not in server.c: these are the parts a test talks to, with their own
 * locking, while server.c stays the HTTP plumbing. Hot-path costs are bounded: the
 * request log is a fixed ring whose entries are built outside the lock (one malloc per
 * entry) and swapped in under it; fault matching first reads an atomic count of rules
 * and takes no lock at all when there are none. Logged bodies and query strings have
 * the values of OAuth secrets (client_secret, refresh_token, code) masked, because tests
 * print the log to CI output.
 *
 * Settings: `settings_table` names every knob once; the CLI (--latency-ms 50), POST
 * /_sandbox/config ({"latency_ms":50}) and GET /_sandbox/config all go through it.
 */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "tests/sandbox/sandbox.h"
#include "tests/sandbox/sb_json.h"

#define SB_SEED_FILE_MAX     (64u << 20) /* one seed file */
#define SB_FAULTS_MAX        256
#define SB_FAULT_GLOB_MAX    1024
#define SB_LOG_LIMIT_DEFAULT 1000
#define SB_ERR_MAX           256

/* ---- settings ----------------------------------------------------------------------- */

struct setting_def {
    const char *name;
    size_t off;
    int min, max, def;
    const char *help;
};

#define S_OFF(f) offsetof(struct sb_settings, f)
static const struct setting_def settings_table[] = {
    {"latency_ms", S_OFF(latency_ms), 0, 600000, 0, "fixed delay added to vendor responses"},
    {"jitter_ms", S_OFF(jitter_ms), 0, 600000, 0, "uniform extra delay 0..N ms"},
    {"hubspot_rate_10s", S_OFF(hubspot_rate_10s), 0, 1000000, 190,
     "HubSpot requests per rolling 10 s per portal (0 = unlimited)"},
    {"qbo_rate_min", S_OFF(qbo_rate_min), 0, 1000000, 500,
     "QuickBooks requests per minute per realm (0 = unlimited)"},
    {"qbo_concurrent", S_OFF(qbo_concurrent), 0, 100000, 10,
     "QuickBooks concurrent requests per realm (0 = unlimited)"},
    {"requestid_retention_s", S_OFF(requestid_retention_s), 0, INT_MAX, 31536000,
     "how long QBO remembers a requestid"},
    {"access_ttl_s", S_OFF(access_ttl_s), 1, INT_MAX, 3600, "Intuit access-token lifetime"},
    {"refresh_ttl_s", S_OFF(refresh_ttl_s), 1, INT_MAX, 8726400, "Intuit refresh-token lifetime"},
    {"rotate_after_s", S_OFF(rotate_after_s), 0, INT_MAX, 86400,
     "Intuit refresh-token rotation period (0 = never)"},
    {"auth_code_ttl_s", S_OFF(auth_code_ttl_s), 1, 86400, 600,
     "lifetime of the authorization codes of the Intuit and HubSpot consent pages"},
    {"log_entries", S_OFF(log_entries), 1, 1000000, 10000, "request log ring size"},
    {"log_body_max", S_OFF(log_body_max), 0, (int)SB_MAX_BODY, 4096,
     "request body bytes kept per log entry"},
    {"workflow_retry_base_ms", S_OFF(workflow_retry_base_ms), 1, 86400000, 1000,
     "workflow engine: first retry delay of an actionUrl delivery, doubled per retry"},
    {"workflow_retry_max_ms", S_OFF(workflow_retry_max_ms), 1, 86400000, 600000,
     "workflow engine: longest retry delay (also caps a 429's Retry-After)"},
    {"workflow_retry_attempts", S_OFF(workflow_retry_attempts), 0, 1000, 10,
     "workflow engine: retries after the first delivery before the execution fails"},
    {"workflow_timeout_ms", S_OFF(workflow_timeout_ms), 1, 600000, 30000,
     "workflow engine: whole-exchange timeout of one actionUrl/optionsUrl call"},
    {"workflow_threads", S_OFF(workflow_threads), 1, 64, 4,
     "workflow engine: delivery threads (started on first use)"},
};
#define NSETTINGS (sizeof(settings_table) / sizeof(settings_table[0]))

static pthread_mutex_t settings_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sb_settings settings, startup_settings;
static int settings_ready;
static char *seed_dir;
static struct json_object *oauth_opts; /* last applied, for GET config */

static int *setting_ptr(struct sb_settings *s, const struct setting_def *d)
{
    return (int *)((char *)s + d->off);
}

static void settings_init_locked(void)
{
    if (settings_ready)
        return;
    for (size_t i = 0; i < NSETTINGS; i++)
        *setting_ptr(&settings, &settings_table[i]) = settings_table[i].def;
    settings_ready = 1;
}

static void log_resize(int entries);

/* Push settings to the vendor modules. Called without settings_mu held. */
static void settings_push(const struct sb_settings *s)
{
    hubspot_set_rate_limit(s->hubspot_rate_10s);
    qbo_set_limits(s->qbo_rate_min, s->qbo_concurrent, s->requestid_retention_s);
    oauth_set_config(s->access_ttl_s, s->refresh_ttl_s, s->rotate_after_s);
    log_resize(s->log_entries);
    workflows_configure(s);
}

static const struct setting_def *setting_find(const char *name)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcmp(settings_table[i].name, name) == 0)
            return &settings_table[i];
    return NULL;
}

int sb_settings_set(const char *name, const char *value, char *errstr, size_t errsz)
{
    char key[64];
    size_t n = strlen(name);
    if (n >= sizeof(key)) {
        snprintf(errstr, errsz, "unknown setting '%s'", name);
        return -1;
    }
    for (size_t i = 0; i <= n; i++)
        key[i] = name[i] == '-' ? '_' : name[i];
    const struct setting_def *d = setting_find(key);
    if (!d) {
        snprintf(errstr, errsz, "unknown setting '%s'", name);
        return -1;
    }
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end || v < d->min || v > d->max) {
        snprintf(errstr, errsz, "%s: '%s' is not an integer in %d..%d", d->name, value, d->min,
                 d->max);
        return -1;
    }
    pthread_mutex_lock(&settings_mu);
    settings_init_locked();
    *setting_ptr(&settings, d) = (int)v;
    pthread_mutex_unlock(&settings_mu);
    return 0;
}

void sb_settings_get(struct sb_settings *out)
{
    pthread_mutex_lock(&settings_mu);
    settings_init_locked();
    *out = settings;
    pthread_mutex_unlock(&settings_mu);
}

void sb_settings_commit_startup(void)
{
    struct sb_settings s;
    pthread_mutex_lock(&settings_mu);
    settings_init_locked();
    startup_settings = settings;
    s = settings;
    pthread_mutex_unlock(&settings_mu);
    settings_push(&s);
}

void sb_set_seed_dir(const char *dir)
{
    free(seed_dir);
    seed_dir = dir ? strdup(dir) : NULL;
}

/* ---- seeding ------------------------------------------------------------------------ */

static int seed_doc(struct json_object *doc, char *errstr, size_t errsz)
{
    if (!json_object_is_type(doc, json_type_object)) {
        snprintf(errstr, errsz, "a seed document must be a JSON object");
        return -1;
    }
    if (hubspot_seed(doc, errstr, errsz) != 0 || qbo_seed(doc, errstr, errsz) != 0 ||
        oauth_seed(doc, errstr, errsz) != 0)
        return -1;
    return 0;
}

static int json_suffix(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return n > 5 && strcmp(d->d_name + n - 5, ".json") == 0;
}

int sb_seed_dir(const char *dir, char *errstr, size_t errsz)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, json_suffix, alphasort), rc = 0;
    if (n < 0) {
        snprintf(errstr, errsz, "%s: %s", dir, strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX], err[SB_ERR_MAX] = "";
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        struct stat stt;
        if (rc == 0 && stat(path, &stt) == 0 && stt.st_size > (off_t)SB_SEED_FILE_MAX) {
            snprintf(errstr, errsz, "%s: larger than %u bytes", path, SB_SEED_FILE_MAX);
            rc = -1;
        }
        struct json_object *doc = rc == 0 ? json_object_from_file(path) : NULL;
        if (rc == 0 && !doc) {
            snprintf(errstr, errsz, "%s: %s", path, json_util_get_last_err());
            rc = -1;
        }
        if (rc == 0 && seed_doc(doc, err, sizeof(err)) != 0) {
            snprintf(errstr, errsz, "%s: %s", path, err);
            rc = -1;
        }
        json_object_put(doc);
        free(names[i]);
    }
    free(names);
    return rc;
}

/* ---- request log -------------------------------------------------------------------- */

struct log_entry {
    uint64_t seq;
    int64_t time_ms, duration_ms;
    int status, fault_id;
    const char *vendor; /* static */
    size_t body_len;    /* original length */
    int body_truncated; /* body is not the whole request body (cut, or had a NUL) */
    char tenant[SB_TENANT_MAX];
    char *method, *path, *query, *body; /* all inside one allocation at `method` */
};

static struct {
    pthread_mutex_t mu;
    struct log_entry *ring;
    size_t cap, count, head; /* head = next slot to write */
    uint64_t seq, evicted;
} lg = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void log_clear_locked(void)
{
    for (size_t i = 0; i < lg.cap; i++) {
        free(lg.ring[i].method);
        lg.ring[i].method = NULL;
    }
    lg.count = lg.head = 0;
}

static void log_resize(int entries)
{
    pthread_mutex_lock(&lg.mu);
    if ((size_t)entries != lg.cap) {
        log_clear_locked();
        struct log_entry *r = calloc((size_t)entries, sizeof(*r));
        if (r) {
            free(lg.ring);
            lg.ring = r;
            lg.cap = (size_t)entries;
        }
    }
    pthread_mutex_unlock(&lg.mu);
}

/* Form parameters whose values the log never keeps: OAuth client secrets, refresh tokens
 * and authorization codes (Intuit and HubSpot token requests), developer API keys (the
 * query of HubSpot's action-definition routes); also the token of a JSON revoke body and
 * of a token-metadata path (log_mask_json_token, log_path_keep). A test that prints the log
 * to a CI job must not leak them, fake-looking or not. Keys match only at the start of a
 * parameter, so "grant_type=refresh_token" stays readable. */
static const char *const log_secret_keys[] = {
    "client_secret=", "refresh_token=", "code=", "hapikey="};
#define LOG_SECRET_MASK "***"

/* Copy the form-encoded text in[0..n) to out (NULL: only measure), replacing every
 * non-empty value of a log_secret_keys parameter with LOG_SECRET_MASK. Text that is not a
 * form (JSON) passes unchanged unless it happens to hold such a parameter after a '&'.
 * Returns the output length (no terminator written). */
static size_t log_mask_secrets(const char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        const char *amp = memchr(in + i, '&', n - i);
        size_t end = amp ? (size_t)(amp - in) : n, copy = end - i, klen = 0;
        for (size_t k = 0; k < sizeof(log_secret_keys) / sizeof(log_secret_keys[0]); k++) {
            size_t kl = strlen(log_secret_keys[k]);
            if (copy > kl && memcmp(in + i, log_secret_keys[k], kl) == 0)
                klen = kl;
        }
        if (klen)
            copy = klen;
        if (out)
            memcpy(out + o, in + i, copy);
        o += copy;
        if (klen) {
            if (out)
                memcpy(out + o, LOG_SECRET_MASK, sizeof(LOG_SECRET_MASK) - 1);
            o += sizeof(LOG_SECRET_MASK) - 1;
        }
        if (amp) {
            if (out)
                out[o] = '&';
            o++;
        }
        i = end + (amp ? 1 : 0);
    }
    return o;
}

/* Paths that carry a token (HubSpot's token metadata routes): the log keeps the prefix
 * and LOG_SECRET_MASK instead of the token. Returns the prefix length to keep, or the
 * whole length when the path carries none. */
static size_t log_path_keep(const char *path)
{
    static const char *const prefixes[] = {"/oauth/v1/access-tokens/", "/oauth/v1/refresh-tokens/"};
    for (size_t k = 0; k < sizeof(prefixes) / sizeof(prefixes[0]); k++)
        if (strncmp(path, prefixes[k], strlen(prefixes[k])) == 0 && path[strlen(prefixes[k])])
            return strlen(prefixes[k]);
    return strlen(path);
}

static char *skip_json_ws(char *q, const char *end)
{
    while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
        q++;
    return q;
}

/* JSON bodies with a "token" member (Intuit's revoke request): its string value is
 * overwritten with '*' in place, so the entry keeps its length. */
static void log_mask_json_token(char *body, size_t n)
{
    static const char key[] = "\"token\"";
    char *end = body + n, *p = body, *q;
    while (p < end && (p = memmem(p, (size_t)(end - p), key, sizeof(key) - 1))) {
        q = skip_json_ws(p + sizeof(key) - 1, end);
        if (q < end && *q == ':' && (q = skip_json_ws(q + 1, end)) < end && *q == '"') {
            for (q++; q < end && *q != '"'; q++) {
                if (*q == '\\' && q + 1 < end)
                    *q++ = '*'; /* an escape: both bytes go */
                *q = '*';
            }
        }
        p = q;
    }
}

void sb_log_record(const struct sb_log_entry_in *e)
{
    struct sb_settings st;
    sb_settings_get(&st);
    size_t keep = e->body_len < (size_t)st.log_body_max ? e->body_len : (size_t)st.log_body_max;
    size_t lm = strlen(e->method), lkeep = log_path_keep(e->path);
    size_t lp = lkeep + (lkeep < strlen(e->path) ? sizeof(LOG_SECRET_MASK) - 1 : 0);
    size_t lq = log_mask_secrets(e->query, strlen(e->query), NULL);
    size_t lb = log_mask_secrets(e->body, keep, NULL);
    char *blob = malloc(lm + lp + lq + lb + 4);
    if (!blob)
        return;
    struct log_entry ent = {0};
    ent.method = blob;
    memcpy(ent.method, e->method, lm + 1);
    ent.path = ent.method + lm + 1;
    memcpy(ent.path, e->path, lkeep);
    memcpy(ent.path + lkeep, LOG_SECRET_MASK, lp - lkeep);
    ent.path[lp] = '\0';
    ent.query = ent.path + lp + 1;
    log_mask_secrets(e->query, strlen(e->query), ent.query);
    ent.query[lq] = '\0';
    ent.body = ent.query + lq + 1;
    log_mask_secrets(e->body, keep, ent.body);
    ent.body[lb] = '\0';
    log_mask_json_token(ent.body, lb);
    ent.body_len = e->body_len;
    ent.body_truncated = keep < e->body_len || (keep && memchr(e->body, '\0', keep));
    ent.time_ms = e->start_wall_ms;
    ent.duration_ms = e->duration_ms;
    ent.status = e->status;
    ent.fault_id = e->fault_id;
    ent.vendor = e->vendor;
    snprintf(ent.tenant, sizeof(ent.tenant), "%s", e->tenant ? e->tenant : "");

    char *old = NULL;
    pthread_mutex_lock(&lg.mu);
    if (lg.cap == 0) {
        pthread_mutex_unlock(&lg.mu);
        free(blob);
        return;
    }
    ent.seq = ++lg.seq;
    struct log_entry *slot = &lg.ring[lg.head];
    old = slot->method;
    if (lg.count == lg.cap)
        lg.evicted++;
    else
        lg.count++;
    *slot = ent;
    lg.head = (lg.head + 1) % lg.cap;
    pthread_mutex_unlock(&lg.mu);
    free(old);
}

/* The log is answered as text (sb_json.h): a json-c tree of a 20,000-entry page took
 * ~130 MB and most of the CPU of reading the log; the text is the same bytes. */
static void log_entry_write(struct sb_json *w, const struct log_entry *e)
{
    char iso[32];
    sb_iso8601(e->time_ms, iso, sizeof(iso));
    sb_json_open(w, '{');
    sb_json_kv_int(w, "seq", (int64_t)e->seq);
    sb_json_kv_str(w, "time", iso);
    sb_json_kv_int(w, "time_ms", e->time_ms);
    sb_json_kv_str(w, "method", e->method);
    sb_json_kv_str(w, "path", e->path);
    sb_json_kv_str(w, "query", e->query);
    sb_json_kv_str(w, "body", e->body);
    sb_json_kv_int(w, "body_len", (int64_t)e->body_len);
    sb_json_key(w, "body_truncated");
    sb_json_bool(w, e->body_truncated);
    sb_json_kv_int(w, "status", e->status);
    sb_json_kv_int(w, "duration_ms", e->duration_ms);
    sb_json_kv_str(w, "vendor", e->vendor);
    sb_json_kv_str(w, "tenant", e->tenant);
    if (e->fault_id)
        sb_json_kv_int(w, "fault_id", e->fault_id);
    sb_json_close(w, '}');
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static void log_query(const struct sb_request *req, struct sb_response *resp)
{
    const char *method = sb_req_query(req, "method"), *path = sb_req_query(req, "path");
    const char *vendor = sb_req_query(req, "vendor"), *tenant = sb_req_query(req, "tenant");
    const char *since_s = sb_req_query(req, "since"), *limit_s = sb_req_query(req, "limit");
    const char *status_s = sb_req_query(req, "status");
    long since = 0, limit = SB_LOG_LIMIT_DEFAULT, status = 0;
    if ((since_s && parse_long(since_s, 0, LONG_MAX, &since) != 0) ||
        (limit_s && parse_long(limit_s, 1, 1000000, &limit) != 0) ||
        (status_s && parse_long(status_s, 0, 999, &status) != 0)) {
        sb_resp_text(resp, 400, "application/json", "{\"error\":\"bad since/limit/status\"}");
        return;
    }
    struct sb_json w;
    uint64_t last = (uint64_t)since;
    long n = 0;
    sb_json_init(&w);
    sb_json_open(&w, '{');
    sb_json_key(&w, "requests");
    sb_json_open(&w, '[');
    pthread_mutex_lock(&lg.mu);
    size_t start = (lg.head + lg.cap - lg.count) % (lg.cap ? lg.cap : 1);
    for (size_t i = 0; i < lg.count && n < limit; i++) {
        const struct log_entry *e = &lg.ring[(start + i) % lg.cap];
        if (e->seq <= (uint64_t)since || (method && strcasecmp(method, e->method) != 0) ||
            (path && strncmp(e->path, path, strlen(path)) != 0) ||
            (vendor && strcmp(vendor, e->vendor) != 0) ||
            (tenant && strcmp(tenant, e->tenant) != 0) || (status_s && e->status != status))
            continue;
        log_entry_write(&w, e);
        last = e->seq;
        n++;
    }
    uint64_t total = lg.seq, evicted = lg.evicted;
    pthread_mutex_unlock(&lg.mu);
    sb_json_close(&w, ']');
    sb_json_kv_int(&w, "next_since", (int64_t)last);
    sb_json_kv_int(&w, "total_recorded", (int64_t)total);
    sb_json_kv_int(&w, "evicted", (int64_t)evicted);
    sb_json_close(&w, '}');
    sb_resp_sb_json(resp, 200, &w);
}

/* ---- fault rules -------------------------------------------------------------------- */

struct fault_rule {
    int id;
    char method[16], vendor[16];
    char *glob;
    int skip, times; /* times: remaining firings, -1 = unlimited */
    double probability;
    long matched, fired;
    struct sb_fault_action act; /* template, copied on every firing */
};

static struct {
    pthread_mutex_t mu;
    struct fault_rule *rules[SB_FAULTS_MAX];
    int n, next_id;
    int active; /* read without the lock (atomic): 0 = skip matching entirely */
} fr = {.mu = PTHREAD_MUTEX_INITIALIZER};

void sb_fault_action_release(struct sb_fault_action *a)
{
    free(a->body);
    for (int i = 0; i < a->nheaders; i++) {
        free(a->hname[i]);
        free(a->hvalue[i]);
    }
    memset(a, 0, sizeof(*a));
}

static void fault_rule_free(struct fault_rule *r)
{
    if (!r)
        return;
    free(r->glob);
    sb_fault_action_release(&r->act);
    free(r);
}

static int action_copy(const struct sb_fault_action *src, struct sb_fault_action *dst)
{
    *dst = *src;
    dst->body = NULL;
    dst->nheaders = 0;
    if (src->body) {
        dst->body = malloc(src->body_len + 1);
        if (!dst->body)
            return -1;
        memcpy(dst->body, src->body, src->body_len + 1);
    }
    for (int i = 0; i < src->nheaders; i++) {
        dst->hname[i] = strdup(src->hname[i]);
        dst->hvalue[i] = strdup(src->hvalue[i]);
        dst->nheaders++;
        if (!dst->hname[i] || !dst->hvalue[i]) {
            sb_fault_action_release(dst);
            return -1;
        }
    }
    return 0;
}

int sb_fault_match(const char *method, const char *path, const char *vendor,
                   struct sb_fault_action *out)
{
    int hit = 0;
    if (__atomic_load_n(&fr.active, __ATOMIC_ACQUIRE) == 0)
        return 0;
    pthread_mutex_lock(&fr.mu);
    for (int i = 0; i < fr.n && !hit; i++) {
        struct fault_rule *r = fr.rules[i];
        if (r->times == 0 || (r->method[0] && strcasecmp(r->method, method) != 0) ||
            (r->vendor[0] && strcmp(r->vendor, vendor) != 0) || fnmatch(r->glob, path, 0) != 0)
            continue;
        r->matched++;
        if (r->skip > 0) {
            r->skip--;
            continue;
        }
        if (r->probability < 1.0 &&
            (double)(sb_rand() >> 11) / (double)(1ULL << 53) >= r->probability)
            continue;
        if (action_copy(&r->act, out) != 0)
            break;
        out->id = r->id;
        if (r->times > 0)
            r->times--;
        r->fired++;
        hit = 1;
    }
    pthread_mutex_unlock(&fr.mu);
    return hit;
}

/* A fault rule's content_type: a short name (json, xml, text, html; as the README lists
 * them) or a full MIME type, parameters ignored; NULL when unknown. */
static const char *static_content_type(const char *ct)
{
    static const char *const known[] = {"application/json;charset=utf-8", "application/xml",
                                        "text/xml", "text/plain", "text/html"};
    static const struct {
        const char *name, *type;
    } shorts[] = {{"json", "application/json;charset=utf-8"},
                  {"xml", "application/xml"},
                  {"text", "text/plain"},
                  {"html", "text/html"}};
    for (size_t i = 0; i < sizeof(shorts) / sizeof(shorts[0]); i++)
        if (strcasecmp(ct, shorts[i].name) == 0)
            return shorts[i].type;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strncasecmp(ct, known[i], strcspn(known[i], ";")) == 0 &&
            (ct[strcspn(known[i], ";")] == '\0' || ct[strcspn(known[i], ";")] == ';'))
            return known[i];
    return NULL;
}

static int get_int(struct json_object *o, const char *k, int lo, int hi, int *out, char *err,
                   size_t errsz)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, k, &v))
        return 0;
    if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < lo ||
        json_object_get_int64(v) > hi) {
        snprintf(err, errsz, "'%s' must be an integer in %d..%d", k, lo, hi);
        return -1;
    }
    *out = (int)json_object_get_int64(v);
    return 0;
}

static int get_str(struct json_object *o, const char *k, const char **out, char *err, size_t errsz)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, k, &v))
        return 0;
    if (!json_object_is_type(v, json_type_string)) {
        snprintf(err, errsz, "'%s' must be a string", k);
        return -1;
    }
    *out = json_object_get_string(v);
    return 0;
}

static struct fault_rule *fault_parse(struct json_object *o, char *err, size_t errsz)
{
    struct fault_rule *r = calloc(1, sizeof(*r));
    const char *method = "", *path = NULL, *vendor = "", *phase = "before", *ct = NULL;
    struct json_object *v;
    int drop = 0;
    if (!r)
        return NULL;
    r->times = -1;
    r->probability = 1.0;
    if (!json_object_is_type(o, json_type_object)) {
        snprintf(err, errsz, "a fault rule must be a JSON object");
        goto fail;
    }
    if (get_str(o, "method", &method, err, errsz) || get_str(o, "path", &path, err, errsz) ||
        get_str(o, "vendor", &vendor, err, errsz) || get_str(o, "phase", &phase, err, errsz) ||
        get_str(o, "content_type", &ct, err, errsz) ||
        get_int(o, "times", 1, INT_MAX, &r->times, err, errsz) ||
        get_int(o, "skip", 0, INT_MAX, &r->skip, err, errsz) ||
        get_int(o, "status", 100, 599, &r->act.status, err, errsz) ||
        get_int(o, "delay_ms", 0, 600000, &r->act.delay_ms, err, errsz))
        goto fail;
    if (!path || !*path || strlen(path) > SB_FAULT_GLOB_MAX) {
        snprintf(err, errsz, "'path' (a glob such as /v3/company/*/invoice) is required");
        goto fail;
    }
    if (strcmp(method, "*") == 0)
        method = "";
    if (strlen(method) >= sizeof(r->method)) {
        snprintf(err, errsz, "bad 'method'");
        goto fail;
    }
    if (*vendor && strcmp(vendor, "hubspot") && strcmp(vendor, "qbo") && strcmp(vendor, "oauth")) {
        snprintf(err, errsz, "'vendor' must be hubspot, qbo or oauth");
        goto fail;
    }
    if (strcmp(phase, "before") && strcmp(phase, "after")) {
        snprintf(err, errsz, "'phase' must be before or after");
        goto fail;
    }
    r->act.phase = strcmp(phase, "after") == 0 ? SB_FAULT_AFTER : SB_FAULT_BEFORE;
    if (json_object_object_get_ex(o, "probability", &v)) {
        if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)) {
            snprintf(err, errsz, "'probability' must be a number in 0..1");
            goto fail;
        }
        r->probability = json_object_get_double(v);
        if (!(r->probability >= 0.0 && r->probability <= 1.0)) {
            snprintf(err, errsz, "'probability' must be a number in 0..1");
            goto fail;
        }
    }
    if (json_object_object_get_ex(o, "drop", &v)) {
        if (!json_object_is_type(v, json_type_boolean)) {
            snprintf(err, errsz, "'drop' must be a boolean");
            goto fail;
        }
        drop = json_object_get_boolean(v);
    }
    r->act.drop = drop;
    if (drop && r->act.status) {
        snprintf(err, errsz, "'drop' and 'status' exclude each other");
        goto fail;
    }
    if (!drop && !r->act.status && !r->act.delay_ms) {
        snprintf(err, errsz, "a rule needs 'status', 'drop' or 'delay_ms'");
        goto fail;
    }
    if (json_object_object_get_ex(o, "body", &v)) {
        const char *b;
        size_t bl;
        if (json_object_is_type(v, json_type_string)) {
            b = json_object_get_string(v);
            bl = (size_t)json_object_get_string_len(v);
            if (!ct)
                ct = "text/plain";
        } else {
            b = json_object_to_json_string_length(
                v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &bl);
            if (!ct)
                ct = "application/json";
        }
        /* the bytes as given, NULs included (strndup would stop at the first one while
         * body_len kept the whole length: a body "\u0000..." was read past its copy) */
        if (!(r->act.body = malloc(bl + 1)))
            goto fail;
        memcpy(r->act.body, b, bl);
        r->act.body[bl] = '\0';
        r->act.body_len = bl;
    }
    if (ct && !(r->act.content_type = static_content_type(ct))) {
        snprintf(err, errsz,
                 "content_type must be json, xml, text, html, application/json, "
                 "application/xml, text/xml, text/plain or text/html");
        goto fail;
    }
    if (json_object_object_get_ex(o, "headers", &v)) {
        if (!json_object_is_type(v, json_type_object) ||
            json_object_object_length(v) > SB_MAX_RESP_HEADERS) {
            snprintf(err, errsz, "'headers' must be an object of at most %d strings",
                     SB_MAX_RESP_HEADERS);
            goto fail;
        }
        json_object_object_foreach(v, hk, hv)
        {
            if (!json_object_is_type(hv, json_type_string) || strpbrk(hk, "\r\n:") ||
                strpbrk(json_object_get_string(hv), "\r\n")) {
                snprintf(err, errsz, "header '%s' must be a single-line string", hk);
                goto fail;
            }
            r->act.hname[r->act.nheaders] = strdup(hk);
            r->act.hvalue[r->act.nheaders] = strdup(json_object_get_string(hv));
            r->act.nheaders++;
        }
    }
    snprintf(r->method, sizeof(r->method), "%s", method);
    snprintf(r->vendor, sizeof(r->vendor), "%s", vendor);
    r->glob = strdup(path);
    if (!r->glob)
        goto fail;
    return r;
fail:
    fault_rule_free(r);
    return NULL;
}

static struct json_object *fault_json(const struct fault_rule *r)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_int(r->id));
    json_object_object_add(o, "method", json_object_new_string(r->method[0] ? r->method : "*"));
    json_object_object_add(o, "path", json_object_new_string(r->glob));
    if (r->vendor[0])
        json_object_object_add(o, "vendor", json_object_new_string(r->vendor));
    json_object_object_add(
        o, "phase", json_object_new_string(r->act.phase == SB_FAULT_AFTER ? "after" : "before"));
    if (r->times >= 0)
        json_object_object_add(o, "remaining", json_object_new_int(r->times));
    json_object_object_add(o, "skip", json_object_new_int(r->skip));
    json_object_object_add(o, "probability", json_object_new_double(r->probability));
    if (r->act.status)
        json_object_object_add(o, "status", json_object_new_int(r->act.status));
    if (r->act.drop)
        json_object_object_add(o, "drop", json_object_new_boolean(1));
    if (r->act.delay_ms)
        json_object_object_add(o, "delay_ms", json_object_new_int(r->act.delay_ms));
    json_object_object_add(o, "matched", json_object_new_int64(r->matched));
    json_object_object_add(o, "fired", json_object_new_int64(r->fired));
    return o;
}

static void faults_clear(void)
{
    pthread_mutex_lock(&fr.mu);
    for (int i = 0; i < fr.n; i++)
        fault_rule_free(fr.rules[i]);
    fr.n = 0;
    __atomic_store_n(&fr.active, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&fr.mu);
}

void sb_admin_error(struct sb_response *resp, int status, const char *msg)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "error", json_object_new_string(msg));
    sb_resp_json(resp, status, o);
}

struct json_object *sb_admin_body(const struct sb_request *req, struct sb_response *resp)
{
    struct json_tokener *tok = sb_tokener(JSON_TOKENER_DEFAULT_DEPTH);
    struct json_object *o = NULL;
    if (tok) {
        o = json_tokener_parse_ex(tok, req->body, (int)req->body_len);
        if (json_tokener_get_error(tok) != json_tokener_success || !o ||
            tok->char_offset != (int)req->body_len) {
            json_object_put(o);
            o = NULL;
        }
    }
    if (!o)
        sb_admin_error(resp, 400, "request body must be valid JSON");
    return o;
}

static void faults_route(const struct sb_request *req, const char *rest, struct sb_response *resp)
{
    char err[SB_ERR_MAX] = "";
    if (strcmp(req->method, "GET") == 0 && !*rest) {
        struct json_object *arr = json_object_new_array();
        pthread_mutex_lock(&fr.mu);
        for (int i = 0; i < fr.n; i++)
            json_object_array_add(arr, fault_json(fr.rules[i]));
        pthread_mutex_unlock(&fr.mu);
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "faults", arr);
        sb_resp_json(resp, 200, o);
    } else if (strcmp(req->method, "DELETE") == 0 && !*rest) {
        faults_clear();
        sb_resp_json(resp, 204, NULL);
    } else if (strcmp(req->method, "DELETE") == 0 && *rest == '/') {
        long id;
        int found = 0;
        if (parse_long(rest + 1, 1, INT_MAX, &id) == 0) {
            pthread_mutex_lock(&fr.mu);
            for (int i = 0; i < fr.n; i++) {
                if (fr.rules[i]->id != id)
                    continue;
                fault_rule_free(fr.rules[i]);
                memmove(&fr.rules[i], &fr.rules[i + 1], (size_t)(fr.n - i - 1) * sizeof(void *));
                fr.n--;
                found = 1;
                break;
            }
            __atomic_store_n(&fr.active, fr.n, __ATOMIC_RELEASE);
            pthread_mutex_unlock(&fr.mu);
        }
        if (found)
            sb_resp_json(resp, 204, NULL);
        else
            sb_admin_error(resp, 404, "no such fault rule");
    } else if (strcmp(req->method, "POST") == 0 && !*rest) {
        struct json_object *body = sb_admin_body(req, resp);
        if (!body)
            return;
        struct fault_rule *r = fault_parse(body, err, sizeof(err));
        json_object_put(body);
        if (!r) {
            sb_admin_error(resp, 400, err[0] ? err : "out of memory");
            return;
        }
        pthread_mutex_lock(&fr.mu);
        if (fr.n >= SB_FAULTS_MAX) {
            pthread_mutex_unlock(&fr.mu);
            fault_rule_free(r);
            sb_admin_error(resp, 400, "too many fault rules");
            return;
        }
        r->id = ++fr.next_id;
        fr.rules[fr.n++] = r;
        __atomic_store_n(&fr.active, fr.n, __ATOMIC_RELEASE);
        struct json_object *o = fault_json(r);
        pthread_mutex_unlock(&fr.mu);
        sb_resp_json(resp, 201, o);
    } else {
        sb_admin_error(resp, 405, "use GET, POST or DELETE");
    }
}

/* ---- config, state, reset ----------------------------------------------------------- */

static struct json_object *config_json(void)
{
    struct sb_settings s;
    sb_settings_get(&s);
    struct json_object *o = json_object_new_object();
    for (size_t i = 0; i < NSETTINGS; i++)
        json_object_object_add(o, settings_table[i].name,
                               json_object_new_int(*setting_ptr(&s, &settings_table[i])));
    json_object_object_add(o, "hubspot", hubspot_options());
    json_object_object_add(o, "qbo", qbo_options());
    pthread_mutex_lock(&settings_mu);
    json_object_object_add(o, "oauth",
                           oauth_opts ? json_object_get(oauth_opts) : json_object_new_object());
    pthread_mutex_unlock(&settings_mu);
    return o;
}

/* Remember the vendor options last applied (merged), for GET /_sandbox/config. */
static void remember_opts(struct json_object **slot, struct json_object *opts)
{
    pthread_mutex_lock(&settings_mu);
    if (!*slot)
        *slot = json_object_new_object();
    json_object_object_foreach(opts, k, v) json_object_object_add(*slot, k, json_object_get(v));
    pthread_mutex_unlock(&settings_mu);
}

static void config_post(const struct sb_request *req, struct sb_response *resp)
{
    char err[SB_ERR_MAX] = "";
    struct json_object *body = sb_admin_body(req, resp);
    struct sb_settings s;
    if (!body)
        return;
    if (!json_object_is_type(body, json_type_object)) {
        sb_admin_error(resp, 400, "config must be a JSON object");
        goto out;
    }
    sb_settings_get(&s);
    json_object_object_foreach(body, key, val)
    {
        if (strcmp(key, "hubspot") == 0 || strcmp(key, "qbo") == 0 || strcmp(key, "oauth") == 0) {
            if (!json_object_is_type(val, json_type_object)) {
                snprintf(err, sizeof(err), "'%s' must be an object", key);
                sb_admin_error(resp, 400, err);
                goto out;
            }
            continue;
        }
        const struct setting_def *d = setting_find(key);
        if (!d) {
            snprintf(err, sizeof(err), "unknown setting '%s'", key);
            sb_admin_error(resp, 400, err);
            goto out;
        }
        if (get_int(body, key, d->min, d->max, setting_ptr(&s, d), err, sizeof(err))) {
            sb_admin_error(resp, 400, err);
            goto out;
        }
    }
    pthread_mutex_lock(&settings_mu);
    settings = s;
    pthread_mutex_unlock(&settings_mu);
    settings_push(&s);
    struct json_object *v;
    if (json_object_object_get_ex(body, "hubspot", &v) && hubspot_configure(v, err, sizeof(err))) {
        sb_admin_error(resp, 400, err);
        goto out;
    }
    if (json_object_object_get_ex(body, "qbo", &v) && qbo_configure(v, err, sizeof(err))) {
        sb_admin_error(resp, 400, err);
        goto out;
    }
    if (json_object_object_get_ex(body, "oauth", &v)) {
        if (oauth_configure(v, err, sizeof(err))) {
            sb_admin_error(resp, 400, err);
            goto out;
        }
        remember_opts(&oauth_opts, v);
    }
    sb_resp_json(resp, 200, config_json());
out:
    json_object_put(body);
}

static void do_reset(const struct sb_request *req, struct sb_response *resp)
{
    const char *seed = sb_req_query(req, "seed");
    char err[SB_ERR_MAX] = "";
    struct sb_settings s;
    hubspot_reset();
    qbo_reset();
    oauth_reset();
    faults_clear();
    pthread_mutex_lock(&settings_mu);
    settings = startup_settings;
    s = settings;
    json_object_put(oauth_opts);
    oauth_opts = NULL;
    pthread_mutex_unlock(&settings_mu);
    settings_push(&s);
    pthread_mutex_lock(&lg.mu);
    log_clear_locked();
    pthread_mutex_unlock(&lg.mu);
    if (seed_dir && !(seed && strcmp(seed, "0") == 0) &&
        sb_seed_dir(seed_dir, err, sizeof(err)) != 0) {
        sb_admin_error(resp, 500, err);
        return;
    }
    sb_resp_text(resp, 200, "application/json;charset=utf-8", "{\"status\":\"ok\"}");
}

static void state_get(const struct sb_request *req, struct sb_response *resp)
{
    const char *portal = sb_req_query(req, "portal"), *realm = sb_req_query(req, "realm");
    struct json_object *o = json_object_new_object();
    if (portal || !realm)
        json_object_object_add(o, "hubspot", hubspot_dump(portal));
    if (realm || !portal) {
        json_object_object_add(o, "qbo", qbo_dump(realm));
        json_object_object_add(o, "oauth", oauth_dump());
    }
    sb_resp_json(resp, 200, o);
}

void admin_handle(const struct sb_request *req, struct sb_response *resp)
{
    const char *p = req->path + strlen("/_sandbox");
    const char *m = req->method;
    char err[SB_ERR_MAX] = "";
    if (strcmp(p, "/health") == 0 && strcmp(m, "GET") == 0) {
        sb_resp_text(resp, 200, "application/json;charset=utf-8", "{\"status\":\"ok\"}");
    } else if (strcmp(p, "/reset") == 0 && strcmp(m, "POST") == 0) {
        do_reset(req, resp);
    } else if (strcmp(p, "/seed") == 0 && strcmp(m, "POST") == 0) {
        struct json_object *body = sb_admin_body(req, resp);
        if (!body)
            return;
        if (seed_doc(body, err, sizeof(err)) != 0)
            sb_admin_error(resp, 400, err);
        else
            sb_resp_text(resp, 200, "application/json;charset=utf-8", "{\"status\":\"ok\"}");
        json_object_put(body);
    } else if (strcmp(p, "/requests") == 0 && strcmp(m, "GET") == 0) {
        log_query(req, resp);
    } else if (strcmp(p, "/requests") == 0 && strcmp(m, "DELETE") == 0) {
        pthread_mutex_lock(&lg.mu);
        log_clear_locked();
        pthread_mutex_unlock(&lg.mu);
        sb_resp_json(resp, 204, NULL);
    } else if (strncmp(p, "/faults", 7) == 0 && (p[7] == '\0' || p[7] == '/')) {
        faults_route(req, p + 7, resp);
    } else if (strcmp(p, "/config") == 0 && strcmp(m, "GET") == 0) {
        sb_resp_json(resp, 200, config_json());
    } else if (strcmp(p, "/config") == 0 && strcmp(m, "POST") == 0) {
        config_post(req, resp);
    } else if (strcmp(p, "/state") == 0 && strcmp(m, "GET") == 0) {
        state_get(req, resp);
    } else if (strncmp(p, "/hubspot/", 9) == 0) {
        workflows_admin(req, p + 8, resp);
    } else {
        sb_admin_error(resp, 404, "unknown admin route or method");
    }
}

void sb_admin_shutdown(void)
{
    faults_clear();
    pthread_mutex_lock(&lg.mu);
    log_clear_locked();
    free(lg.ring);
    lg.ring = NULL;
    lg.cap = 0;
    pthread_mutex_unlock(&lg.mu);
    pthread_mutex_lock(&settings_mu);
    json_object_put(oauth_opts);
    oauth_opts = NULL;
    free(seed_dir);
    seed_dir = NULL;
    pthread_mutex_unlock(&settings_mu);
}
