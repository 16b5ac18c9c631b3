/* server.c - the HTTP core of hsqb-sandbox: libmicrohttpd daemon, per-request state
 * machine, routing to the vendor modules, injected latency and fault rules.
 *
 * Why this shape: the sandbox must hold hundreds of keep-alive connections that each
 * wait for injected latency, on a 2-core machine. Sleeping in a handler would pin one
 * pool thread per waiting request, so a delayed request is instead *suspended*
 * (MHD_suspend_connection) and put on a min-heap ordered by due time; one timer thread
 * resumes it when due, and MHD calls the access handler again. No thread ever waits on
 * a request, and no vendor lock is held across a delay.
 *
 * Per-request state machine (struct sb_conn.phase), all in on_access():
 *
 *   RECV --body complete--> [fault BEFORE + delay] --suspend--> PRE_WAIT --resume--+
 *     |                                                                             |
 *     +------------------------------ run_request() <------------------------------+
 *                                         |  handler (or fault response / qbo 429)
 *                                         |  [latency + jitter + fault AFTER delay]
 *                                         +--suspend--> POST_WAIT --resume--+
 *                                         |                                 |
 *                                         +--------> respond() <------------+
 *                                                    queue response, or MHD_NO (drop)
 *
 * An admin route may defer its answer (sb_response.poll): the connection is suspended
 * and put on the same heap every SB_POLL_MS, and asked again (PH_POLL) until it answers.
 *
 * Admin routes (/_sandbox/) bypass the log, fault rules and latency. QBO requests hold
 * a per-realm concurrency slot (qbo_admit) from body completion until their response is
 * queued, so injected latency counts as "in flight", as it does against real QuickBooks.
 */
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "common/clock.h"
#include "tests/sandbox/sandbox.h"
#include "tests/sandbox/sb_json.h"
#include "tests/sandbox/intuit.h"
#include "tests/sandbox/authorize.h"

#define SB_CONN_LIMIT       4096 /* simultaneous connections, all pool threads together */
#define SB_CONN_TIMEOUT_S   60   /* idle keep-alive connections are closed after this */
#define SB_QUERY_LOG_MAX    4096 /* reconstructed query string kept for the log */
#define SB_MAX_THREADS      64
#define SB_HEADER_VALUE_MAX                                                                        \
    4096 /* sb_resp_header() value (a consent page's Location); longer is cut */

enum sb_phase { PH_RECV = 0, PH_PRE_WAIT, PH_POST_WAIT, PH_POLL };

struct sb_conn {
    enum sb_phase phase;
    char *body;
    size_t len, cap;
    int too_big;
    int64_t start_mono, start_wall;
    const char *vendor; /* static: "hubspot", "qbo", "oauth", "admin", "none" */
    struct sb_request req;
    struct sb_response resp;
    struct sb_fault_action fault;
    int fault_fired;
    int qbo_slot; /* holds a qbo_admit() slot not yet released */
    int drop_at_end;
};

/* ---- time and random ---------------------------------------------------------------- */

uint64_t sb_rand(void)
{
    static __thread uint64_t s;
    if (s == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)(uintptr_t)&s ^ (uint64_t)ts.tv_sec;
        s |= 1;
    }
    /* xorshift64* */
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1DULL;
}

void sb_iso8601(int64_t wall_ms, char *buf, size_t bufsz)
{
    time_t t = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, bufsz, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(wall_ms % 1000));
}

/* ---- request and response helpers ---------------------------------------------------- */

const char *sb_req_query(const struct sb_request *req, const char *key)
{
    if (!req || !req->conn)
        return NULL;
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *sb_req_header(const struct sb_request *req, const char *name)
{
    if (!req || !req->conn)
        return NULL;
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

struct join_ctx {
    const char *key;
    char *out;
    size_t len;
};

static enum MHD_Result join_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    struct join_ctx *j = cls;
    (void)kind;
    if (!key || strcmp(key, j->key) != 0 || !value)
        return MHD_YES;
    size_t vl = strlen(value);
    char *n = realloc(j->out, j->len + vl + 2);
    if (!n)
        return MHD_NO;
    j->out = n;
    if (j->len)
        j->out[j->len++] = ',';
    memcpy(j->out + j->len, value, vl + 1);
    j->len += vl;
    return MHD_YES;
}

char *sb_req_query_join(const struct sb_request *req, const char *key)
{
    struct join_ctx j = {key, NULL, 0};
    if (!req || !req->conn)
        return NULL;
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, join_iter, &j);
    return j.out;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int sb_form_get(const char *body, const char *key, char *out, size_t outsz)
{
    size_t klen = strlen(key);

    for (const char *p = body; p && *p;) {
        const char *amp = strchr(p, '&');
        const char *end = amp ? amp : p + strlen(p);
        if ((size_t)(end - p) > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
            size_t n = 0;
            for (const char *s = p + klen + 1; s < end; s++) {
                int c = (unsigned char)*s;
                if (c == '+') {
                    c = ' ';
                } else if (c == '%' && s + 2 < end && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
                    c = hexval(s[1]) * 16 + hexval(s[2]);
                    s += 2;
                }
                if (n + 1 >= outsz)
                    return -1;
                out[n++] = (char)c;
            }
            out[n] = 0;
            return 0;
        }
        p = amp ? amp + 1 : NULL;
    }
    return -1;
}

static void resp_set_body(struct sb_response *resp, int status, const char *ct, char *body,
                          size_t len)
{
    free(resp->body);
    resp->status = status;
    resp->content_type = ct;
    resp->body = body;
    resp->body_len = body ? len : 0;
}

void sb_resp_json(struct sb_response *resp, int status, struct json_object *obj)
{
    if (!obj) {
        resp_set_body(resp, status, NULL, NULL, 0);
        return;
    }
    size_t len = 0;
    const char *s = json_object_to_json_string_length(
        obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    char *copy = s ? strndup(s, len) : NULL;
    json_object_put(obj);
    if (!copy) {
        resp_set_body(resp, 500, NULL, NULL, 0);
        return;
    }
    resp_set_body(resp, status, "application/json;charset=utf-8", copy, len);
}

void sb_resp_sb_json(struct sb_response *resp, int status, struct sb_json *w)
{
    if (w->err || !w->buf) {
        sb_json_release(w);
        resp_set_body(resp, 500, NULL, NULL, 0);
        return;
    }
    resp_set_body(resp, status, "application/json;charset=utf-8", w->buf, w->len);
    sb_json_init(w); /* the response owns the buffer now */
}

void sb_resp_text(struct sb_response *resp, int status, const char *content_type, const char *text)
{
    char *copy = text ? strdup(text) : NULL;
    resp_set_body(resp, status, content_type, copy, copy ? strlen(copy) : 0);
}

void sb_resp_header(struct sb_response *resp, const char *name, const char *fmt, ...)
{
    char value[SB_HEADER_VALUE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    for (int i = 0; i < resp->nheaders; i++) {
        if (strcasecmp(resp->hname[i], name) == 0) {
            char *v = strdup(value);
            if (v) {
                free(resp->hvalue[i]);
                resp->hvalue[i] = v;
            }
            return;
        }
    }
    if (resp->nheaders >= SB_MAX_RESP_HEADERS)
        return;
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return;
    }
    resp->hname[resp->nheaders] = n;
    resp->hvalue[resp->nheaders] = v;
    resp->nheaders++;
}

static void resp_release(struct sb_response *resp)
{
    free(resp->body);
    for (int i = 0; i < resp->nheaders; i++) {
        free(resp->hname[i]);
        free(resp->hvalue[i]);
    }
    memset(resp, 0, sizeof(*resp));
}

/* ---- delay queue: a min-heap of suspended connections and one timer thread ------------ */

struct delay_item {
    int64_t due;
    struct MHD_Connection *conn;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct delay_item *heap;
    size_t n, cap;
    int stop, started;
    pthread_t thread;
} dq = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void heap_swap(size_t a, size_t b)
{
    struct delay_item t = dq.heap[a];
    dq.heap[a] = dq.heap[b];
    dq.heap[b] = t;
}

static int dq_push(struct MHD_Connection *conn, int64_t due)
{
    pthread_mutex_lock(&dq.mu);
    if (dq.stop) { /* shutting down: answer at once rather than stay suspended */
        pthread_mutex_unlock(&dq.mu);
        return -1;
    }
    if (dq.n == dq.cap) {
        size_t ncap = dq.cap ? dq.cap * 2 : 1024;
        struct delay_item *h = realloc(dq.heap, ncap * sizeof(*h));
        if (!h) {
            pthread_mutex_unlock(&dq.mu);
            return -1;
        }
        dq.heap = h;
        dq.cap = ncap;
    }
    size_t i = dq.n++;
    dq.heap[i] = (struct delay_item){due, conn};
    while (i > 0 && dq.heap[(i - 1) / 2].due > dq.heap[i].due) {
        heap_swap(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    if (i == 0)
        pthread_cond_signal(&dq.cv);
    pthread_mutex_unlock(&dq.mu);
    return 0;
}

static struct MHD_Connection *dq_pop_locked(void)
{
    struct MHD_Connection *c = dq.heap[0].conn;
    dq.heap[0] = dq.heap[--dq.n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < dq.n && dq.heap[l].due < dq.heap[m].due)
            m = l;
        if (r < dq.n && dq.heap[r].due < dq.heap[m].due)
            m = r;
        if (m == i)
            break;
        heap_swap(i, m);
        i = m;
    }
    return c;
}

static void *dq_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&dq.mu);
    while (!dq.stop) {
        if (dq.n == 0) {
            pthread_cond_wait(&dq.cv, &dq.mu);
            continue;
        }
        int64_t now = clock_mono_ms();
        if (dq.heap[0].due <= now) {
            struct MHD_Connection *c = dq_pop_locked();
            pthread_mutex_unlock(&dq.mu);
            MHD_resume_connection(c);
            pthread_mutex_lock(&dq.mu);
            continue;
        }
        struct timespec ts;
        clock_abstime(CLOCK_MONOTONIC, dq.heap[0].due - now, &ts);
        pthread_cond_timedwait(&dq.cv, &dq.mu, &ts);
    }
    /* Shutdown: MHD must not stop with suspended connections; resume them all now. */
    while (dq.n > 0) {
        struct MHD_Connection *c = dq_pop_locked();
        MHD_resume_connection(c);
    }
    pthread_mutex_unlock(&dq.mu);
    return NULL;
}

/* ---- routing ------------------------------------------------------------------------ */

static int has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static const char *route_vendor(const char *path)
{
    if (has_prefix(path, "/_sandbox/") || strcmp(path, "/_sandbox") == 0)
        return "admin";
    if (has_prefix(path, "/v3/company/"))
        return "qbo";
    if (has_prefix(path, "/oauth2/v1/tokens/") || has_prefix(path, "/v2/oauth2/tokens/") ||
        strcmp(path, "/connect/oauth2") == 0 || has_prefix(path, "/connect/oauth2/"))
        return "oauth";
    if (has_prefix(path, "/crm/") || has_prefix(path, "/automation/") ||
        has_prefix(path, "/oauth/") || has_prefix(path, "/tax-rates/") ||
        has_prefix(path, "/account-info/"))
        return "hubspot";
    return "none";
}

static void call_vendor(struct sb_conn *c)
{
    if (authorize_route(&c->req, &c->resp))
        return;
    if (strcmp(c->vendor, "hubspot") == 0)
        hubspot_handle(&c->req, &c->resp);
    else if (strcmp(c->vendor, "qbo") == 0)
        qbo_handle(&c->req, &c->resp);
    else if (strcmp(c->vendor, "oauth") == 0)
        oauth_handle(&c->req, &c->resp);
    else
        sb_resp_text(&c->resp, 404, "application/json;charset=utf-8",
                     "{\"status\":\"error\",\"message\":\"no such route in hsqb-sandbox\"}");
}

/* Realm id from /v3/company/{realm}/..., for the log when qbo.c did not set a tenant. */
static void fill_tenant(struct sb_conn *c)
{
    if (c->resp.tenant[0] || strcmp(c->vendor, "qbo") != 0)
        return;
    const char *p = c->req.path + strlen("/v3/company/");
    size_t n = strcspn(p, "/");
    if (n >= sizeof(c->resp.tenant))
        n = sizeof(c->resp.tenant) - 1;
    memcpy(c->resp.tenant, p, n);
    c->resp.tenant[n] = '\0';
}

/* ---- the request log hook ------------------------------------------------------------ */

struct qs_ctx {
    char buf[SB_QUERY_LOG_MAX];
    size_t len;
};

static enum MHD_Result qs_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    struct qs_ctx *q = cls;
    (void)kind;
    int n = snprintf(q->buf + q->len, sizeof(q->buf) - q->len, "%s%s%s%s", q->len ? "&" : "",
                     key ? key : "", value ? "=" : "", value ? value : "");
    if (n < 0 || (size_t)n >= sizeof(q->buf) - q->len) {
        q->len = sizeof(q->buf) - 1;
        return MHD_NO;
    }
    q->len += (size_t)n;
    return MHD_YES;
}

static void log_request(struct sb_conn *c, int status)
{
    if (strcmp(c->vendor, "admin") == 0)
        return;
    struct qs_ctx q;
    q.len = 0;
    q.buf[0] = '\0';
    MHD_get_connection_values(c->req.conn, MHD_GET_ARGUMENT_KIND, qs_iter, &q);
    fill_tenant(c);
    struct sb_log_entry_in e = {
        .method = c->req.method,
        .path = c->req.path,
        .query = q.buf,
        .body = c->req.body,
        .body_len = c->req.body_len,
        .vendor = c->vendor,
        .tenant = c->resp.tenant,
        .status = status,
        .fault_id = c->fault_fired ? c->fault.id : 0,
        .start_wall_ms = c->start_wall,
        .duration_ms = clock_mono_ms() - c->start_mono,
    };
    sb_log_record(&e);
}

/* ---- per-request state machine ------------------------------------------------------- */

static void release_qbo(struct sb_conn *c)
{
    if (c->qbo_slot) {
        c->qbo_slot = 0;
        qbo_release(&c->req);
    }
}

static int suspend_until(struct MHD_Connection *conn, int64_t delay_ms)
{
    MHD_suspend_connection(conn);
    if (dq_push(conn, clock_mono_ms() + delay_ms) != 0) {
        MHD_resume_connection(conn); /* out of memory: answer without the delay */
        return -1;
    }
    return 0;
}

static const char *resp_header(const struct sb_response *resp, const char *name)
{
    for (int i = 0; i < resp->nheaders; i++)
        if (strcasecmp(resp->hname[i], name) == 0)
            return resp->hvalue[i];
    return NULL;
}

/* A fault rule's response replaces the vendor's. Every Intuit response (QBO and the token
 * endpoint) carries intuit_tid, so the replacement does too: the rule's own header if it
 * sets one, else the handler's (phase "after": the request did run), else a fresh id. */
static void fault_to_response(struct sb_conn *c)
{
    struct sb_fault_action *f = &c->fault;
    char tenant[SB_TENANT_MAX], tid[INTUIT_TID_LEN] = "";
    int intuit = strcmp(c->vendor, "qbo") == 0 || strcmp(c->vendor, "oauth") == 0;
    const char *had = resp_header(&c->resp, "intuit_tid");
    if (had)
        snprintf(tid, sizeof(tid), "%s", had);
    memcpy(tenant, c->resp.tenant, sizeof(tenant));
    resp_release(&c->resp);
    memcpy(c->resp.tenant, tenant, sizeof(tenant));
    c->resp.status = f->status;
    c->resp.body = f->body;
    c->resp.body_len = f->body_len;
    c->resp.content_type = f->content_type;
    f->body = NULL;
    for (int i = 0; i < f->nheaders; i++) {
        c->resp.hname[i] = f->hname[i];
        c->resp.hvalue[i] = f->hvalue[i];
        f->hname[i] = f->hvalue[i] = NULL;
    }
    c->resp.nheaders = f->nheaders;
    f->nheaders = 0;
    if (intuit && !resp_header(&c->resp, "intuit_tid")) {
        if (!tid[0])
            intuit_tid(tid, sizeof(tid));
        sb_resp_header(&c->resp, "intuit_tid", "%s", tid);
    }
}

static enum MHD_Result respond(struct sb_conn *c, struct MHD_Connection *conn)
{
    if (c->drop_at_end) {
        log_request(c, 0);
        release_qbo(c);
        return MHD_NO;
    }
    struct MHD_Response *r;
    if (c->resp.body)
        r = MHD_create_response_from_buffer(c->resp.body_len, c->resp.body, MHD_RESPMEM_MUST_FREE);
    else
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r) {
        release_qbo(c);
        return MHD_NO;
    }
    c->resp.body = NULL; /* MHD owns it now */
    if (c->resp.content_type && c->resp.body_len)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, c->resp.content_type);
    for (int i = 0; i < c->resp.nheaders; i++)
        MHD_add_response_header(r, c->resp.hname[i], c->resp.hvalue[i]);
    int status = c->resp.status ? c->resp.status : 500;
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    log_request(c, status);
    release_qbo(c);
    return ret;
}

static enum MHD_Result run_request(struct sb_conn *c, struct MHD_Connection *conn)
{
    struct sb_settings st;
    int before = c->fault_fired && c->fault.phase == SB_FAULT_BEFORE;
    int after = c->fault_fired && c->fault.phase == SB_FAULT_AFTER;

    if (before && c->fault.drop) {
        c->drop_at_end = 1;
        return respond(c, conn);
    }
    if (c->resp.status == 0) { /* not already answered by qbo_admit */
        if (before && c->fault.status)
            fault_to_response(c);
        else
            call_vendor(c);
    }
    int64_t delay = 0;
    if (after) {
        if (c->fault.status)
            fault_to_response(c);
        if (c->fault.drop)
            c->drop_at_end = 1;
        delay += c->fault.delay_ms;
    }
    sb_settings_get(&st);
    delay += st.latency_ms;
    if (st.jitter_ms > 0)
        delay += (int64_t)(sb_rand() % ((uint64_t)st.jitter_ms + 1));
    if (delay > 0) {
        c->phase = PH_POST_WAIT;
        if (suspend_until(conn, delay) == 0)
            return MHD_YES;
    }
    return respond(c, conn);
}

/* A deferred admin answer (sb_response.poll): ask again every SB_POLL_MS, suspended in
 * between, until the handler's poll says it answered; when the connection cannot be
 * suspended (shutdown, no memory) it must answer at once. */
static enum MHD_Result poll_step(struct sb_conn *c, struct MHD_Connection *conn)
{
    if (c->resp.poll(c->resp.poll_arg, &c->resp, 0))
        return respond(c, conn);
    c->phase = PH_POLL;
    if (suspend_until(conn, SB_POLL_MS) == 0)
        return MHD_YES;
    c->resp.poll(c->resp.poll_arg, &c->resp, 1);
    return respond(c, conn);
}

static enum MHD_Result body_complete(struct sb_conn *c, struct MHD_Connection *conn)
{
    c->req.body = c->body ? c->body : "";
    c->req.body_len = c->len;
    if (c->too_big) {
        sb_resp_text(&c->resp, 413, "application/json;charset=utf-8",
                     "{\"status\":\"error\",\"message\":\"request body too large\"}");
        return respond(c, conn);
    }
    if (strcmp(c->vendor, "admin") == 0) {
        admin_handle(&c->req, &c->resp);
        if (c->resp.status == 0 && c->resp.poll)
            return poll_step(c, conn);
        return respond(c, conn);
    }
    if (strcmp(c->vendor, "none") != 0)
        c->fault_fired = sb_fault_match(c->req.method, c->req.path, c->vendor, &c->fault);
    if (strcmp(c->vendor, "qbo") == 0) {
        if (qbo_admit(&c->req, &c->resp))
            c->qbo_slot = 1;
    }
    if (c->fault_fired && c->fault.phase == SB_FAULT_BEFORE && c->fault.delay_ms > 0) {
        c->phase = PH_PRE_WAIT;
        if (suspend_until(conn, c->fault.delay_ms) == 0)
            return MHD_YES;
    }
    return run_request(c, conn);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    struct sb_conn *c = *con_cls;
    (void)cls;
    (void)version;
    if (!c) {
        c = calloc(1, sizeof(*c));
        if (!c)
            return MHD_NO;
        *con_cls = c;
        c->start_mono = clock_mono_ms();
        c->start_wall = clock_wall_ms();
        c->req.method = method;
        c->req.path = url;
        c->req.conn = conn;
        c->vendor = route_vendor(url);
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > SB_MAX_BODY) {
            c->too_big = 1;
            return body_complete(c, conn); /* answer before reading the body */
        }
        return MHD_YES;
    }
    switch (c->phase) {
    case PH_RECV:
        if (*upload_data_size > 0) {
            size_t n = *upload_data_size;
            *upload_data_size = 0;
            if (c->too_big || c->len + n > SB_MAX_BODY) {
                c->too_big = 1;
                return MHD_YES;
            }
            if (c->len + n + 1 > c->cap) {
                size_t ncap = c->cap ? c->cap : 1024;
                while (ncap < c->len + n + 1)
                    ncap *= 2;
                char *b = realloc(c->body, ncap);
                if (!b)
                    return MHD_NO;
                c->body = b;
                c->cap = ncap;
            }
            memcpy(c->body + c->len, upload_data, n);
            c->len += n;
            c->body[c->len] = '\0';
            return MHD_YES;
        }
        return body_complete(c, conn);
    case PH_PRE_WAIT:
        return run_request(c, conn);
    case PH_POST_WAIT:
        return respond(c, conn);
    case PH_POLL:
        return poll_step(c, conn);
    }
    return MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct sb_conn *c = *con_cls;
    (void)cls;
    (void)conn;
    (void)toe;
    if (!c)
        return;
    release_qbo(c); /* connection died between admission and response */
    if (c->resp.poll_free)
        c->resp.poll_free(c->resp.poll_arg);
    resp_release(&c->resp);
    sb_fault_action_release(&c->fault);
    free(c->body);
    free(c);
    *con_cls = NULL;
}

/* ---- daemon lifecycle ---------------------------------------------------------------- */

static struct MHD_Daemon *daemon_;

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int sb_server_start(const char *host, int port, int threads, int *bound_port, char *errstr,
                    size_t errsz)
{
    struct sockaddr_in sa;
    if (port < 0 || port > 65535) {
        snprintf(errstr, errsz, "bad port %d", port);
        return -1;
    }
    if (threads < 1 || threads > SB_MAX_THREADS) {
        snprintf(errstr, errsz, "threads must be 1..%d", SB_MAX_THREADS);
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        snprintf(errstr, errsz, "bad IPv4 listen address '%s'", host);
        return -1;
    }
    raise_fd_limit();
    if (!dq.started) {
        clock_cond_init(&dq.cv);
        dq.stop = 0;
        if (pthread_create(&dq.thread, NULL, dq_main, NULL) != 0) {
            snprintf(errstr, errsz, "cannot start the timer thread");
            return -1;
        }
        dq.started = 1;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    daemon_ = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)SB_CONN_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)SB_CONN_TIMEOUT_S,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        NULL, MHD_OPTION_END);
    if (!daemon_) {
        snprintf(errstr, errsz, "cannot listen on %s:%d: %s", host, port, strerror(errno));
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
    *bound_port = di ? di->port : port;
    return 0;
}

void sb_server_stop(void)
{
    int lfd = daemon_ ? MHD_quiesce_daemon(daemon_) : -1;
    if (dq.started) {
        pthread_mutex_lock(&dq.mu);
        dq.stop = 1;
        pthread_cond_signal(&dq.cv);
        pthread_mutex_unlock(&dq.mu);
        pthread_join(dq.thread, NULL);
        dq.started = 0;
    }
    if (daemon_) {
        MHD_stop_daemon(daemon_);
        daemon_ = NULL;
    }
    if (lfd >= 0)
        close(lfd); /* quiesce handed the listening socket to us */
    free(dq.heap);
    dq.heap = NULL;
    dq.n = dq.cap = 0;
}
