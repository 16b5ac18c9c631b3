/* server.c - the HTTP core of hsqb-sandbox: libmicrohttpd daemon, per-request state
 * machine, routing to the vendor modules, injected latency and fault rules.
 *
 * Why this shape: the sandbox must hold hundreds of keep-alive connections that each
 * wait for injected latency, on a 2-core machine. Sleeping in a handler would pin one
 * thread per waiting request, so a delayed request is instead *suspended*
 * (MHD_suspend_connection) and put on a min-heap ordered by due time, and MHD calls
 * the access handler again once it is resumed. No thread ever waits on a request, and
 * no vendor lock is held across a delay.
 *
 * Threads: --threads event loops, each running its own MHD daemon (external epoll
 * mode) on one shared listening socket, with its own heap. A loop sleeps until the
 * network or its first due connection, resumes everything due in one pass and runs
 * MHD, so a delayed answer costs its loop one wake-up and no other thread any: with a
 * separate timer thread (before 2026-12-07) every answer woke the timer thread and
 * then, through MHD's eventfd, the pool thread (0.60 -> 0.41-0.49 ms of sandbox CPU
 * per event in tests/bench/sandbox_drain.py).
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
#include <limits.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "common/clock.h"
#include "tests/sandbox/sandbox.h"
#include "tests/sandbox/sb_json.h"
#include "tests/sandbox/intuit.h"
#include "tests/sandbox/authorize.h"

#define SB_CONN_LIMIT       4096 /* simultaneous connections, all loops together */
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

/* ---- per-thread helpers -------------------------------------------------------------- */

#define SB_TOKENER_SLOTS 4 /* distinct depths in use: 32 (bodies) and 64 (QBO's store) */

struct tokeners {
    int depth[SB_TOKENER_SLOTS];
    struct json_tokener *tok[SB_TOKENER_SLOTS];
};

static pthread_key_t tokener_key;
static pthread_once_t tokener_once = PTHREAD_ONCE_INIT;

static void tokeners_free(void *arg)
{
    struct tokeners *t = arg;
    for (int i = 0; i < SB_TOKENER_SLOTS; i++)
        if (t->tok[i])
            json_tokener_free(t->tok[i]);
    free(t);
}

static void tokener_key_init(void)
{
    if (pthread_key_create(&tokener_key, tokeners_free) != 0)
        abort(); /* at the first parse of the process: no key, no sandbox */
}

struct json_tokener *sb_tokener(int depth)
{
    struct tokeners *t;
    int i;
    pthread_once(&tokener_once, tokener_key_init);
    if (!(t = pthread_getspecific(tokener_key))) {
        if (!(t = calloc(1, sizeof(*t))) || pthread_setspecific(tokener_key, t) != 0) {
            free(t);
            return NULL;
        }
    }
    for (i = 0; i < SB_TOKENER_SLOTS && t->tok[i]; i++)
        if (t->depth[i] == depth) {
            json_tokener_reset(t->tok[i]);
            return t->tok[i];
        }
    if (i == SB_TOKENER_SLOTS) { /* more depths than slots: the last slot is recycled */
        json_tokener_free(t->tok[--i]);
        t->tok[i] = NULL;
    }
    if (!(t->tok[i] = json_tokener_new_ex(depth)))
        return NULL;
    t->depth[i] = depth;
    return t->tok[i];
}

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

#define SB_ISO_END_MS 253402300800000LL /* 10000-01-01T00:00:00Z: four-digit years below */

static char *put_digits(char *p, int v, int n)
{
    for (int i = n - 1; i >= 0; i--, v /= 10)
        p[i] = (char)('0' + v % 10);
    return p + n;
}

/* Every CRM record carries two stamps, so this is on the hot path: the date comes from
 * days-since-epoch arithmetic (H. Hinnant's civil_from_days) and the digits are written
 * by hand, with neither gmtime_r (glibc takes its time-zone lock for it) nor snprintf.
 * Times outside 1970..9999 or a short buffer take the general route, same bytes. */
void sb_iso8601(int64_t wall_ms, char *buf, size_t bufsz)
{
    if (wall_ms < 0 || wall_ms >= SB_ISO_END_MS || bufsz < 25) {
        time_t t = (time_t)(wall_ms / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        snprintf(buf, bufsz, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)(wall_ms % 1000));
        return;
    }
    int64_t z = wall_ms / 86400000 + 719468, ms = wall_ms % 86400000;
    int64_t era = z / 146097, doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int d = (int)(doy - (153 * mp + 2) / 5 + 1), m = (int)(mp < 10 ? mp + 3 : mp - 9);
    int y = (int)(yoe + era * 400) + (m <= 2);
    char *p = buf;
    p = put_digits(p, y, 4);
    *p++ = '-';
    p = put_digits(p, m, 2);
    *p++ = '-';
    p = put_digits(p, d, 2);
    *p++ = 'T';
    p = put_digits(p, (int)(ms / 3600000), 2);
    *p++ = ':';
    p = put_digits(p, (int)(ms / 60000 % 60), 2);
    *p++ = ':';
    p = put_digits(p, (int)(ms / 1000 % 60), 2);
    *p++ = '.';
    p = put_digits(p, (int)(ms % 1000), 3);
    *p++ = 'Z';
    *p = '\0';
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

/* ---- event loops: one MHD daemon per thread, each with its own delay heap ------------- */

struct delay_item {
    int64_t due;
    struct MHD_Connection *conn;
};

/* One loop thread: it alone runs its daemon (MHD_run), so the daemon's access handler,
 * its suspends and its resumes all happen on this thread, and the heap needs no lock. */
struct sb_loop {
    struct MHD_Daemon *daemon;
    int epfd;     /* our epoll set: the daemon's epoll fd and wake_fd */
    int wake_fd;  /* eventfd: written once by sb_server_stop() */
    int stop;     /* atomic: set by sb_server_stop() before it writes wake_fd */
    int stopping; /* this thread only: no more suspends, answer at once */
    struct delay_item *heap;
    size_t n, cap;
    pthread_t thread;
    int running;
};

static struct sb_loop loops[SB_MAX_THREADS];
static int nloops;
static int listen_fd = -1;
static __thread struct sb_loop *cur_loop; /* the loop this thread runs, NULL elsewhere */

static void heap_swap(struct sb_loop *l, size_t a, size_t b)
{
    struct delay_item t = l->heap[a];
    l->heap[a] = l->heap[b];
    l->heap[b] = t;
}

static int heap_push(struct sb_loop *l, struct MHD_Connection *conn, int64_t due)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 1024;
        struct delay_item *h = realloc(l->heap, ncap * sizeof(*h));
        if (!h)
            return -1;
        l->heap = h;
        l->cap = ncap;
    }
    size_t i = l->n++;
    l->heap[i] = (struct delay_item){due, conn};
    while (i > 0 && l->heap[(i - 1) / 2].due > l->heap[i].due) {
        heap_swap(l, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    return 0;
}

static struct MHD_Connection *heap_pop(struct sb_loop *l)
{
    struct MHD_Connection *c = l->heap[0].conn;
    l->heap[0] = l->heap[--l->n];
    size_t i = 0;
    for (;;) {
        size_t a = 2 * i + 1, b = a + 1, m = i;
        if (a < l->n && l->heap[a].due < l->heap[m].due)
            m = a;
        if (b < l->n && l->heap[b].due < l->heap[m].due)
            m = b;
        if (m == i)
            break;
        heap_swap(l, i, m);
        i = m;
    }
    return c;
}

/* How long the loop may sleep: until the first due connection or MHD's own deadline
 * (a connection timeout, or 0 when it has work pending), whichever is first; -1 = no
 * deadline. */
static int loop_timeout(struct sb_loop *l)
{
    int64_t t = -1;
    MHD_UNSIGNED_LONG_LONG mto;
    if (MHD_get_timeout(l->daemon, &mto) == MHD_YES)
        t = mto > INT_MAX ? INT_MAX : (int64_t)mto;
    if (l->n > 0) {
        int64_t left = clock_left_ms(l->heap[0].due);
        if (t < 0 || left < t)
            t = left;
    }
    return (int)t;
}

/* Sleep until the network, a due connection or sb_server_stop(); resume every
 * connection due by then in one pass; let MHD answer them and whatever else is ready.
 * Requests due in the same millisecond cost one wake-up together, and none costs a
 * second thread's. */
static void *loop_main(void *arg)
{
    struct sb_loop *l = arg;
    struct epoll_event ev[2];
    cur_loop = l;
    while (!__atomic_load_n(&l->stop, __ATOMIC_ACQUIRE)) {
        if (epoll_wait(l->epfd, ev, 2, loop_timeout(l)) < 0 && errno != EINTR)
            break;
        int64_t now = clock_mono_ms();
        while (l->n > 0 && l->heap[0].due <= now)
            MHD_resume_connection(heap_pop(l));
        MHD_run(l->daemon);
    }
    /* Shutdown: MHD must not stop with suspended connections; answer them all now. */
    l->stopping = 1;
    while (l->n > 0)
        MHD_resume_connection(heap_pop(l));
    MHD_run(l->daemon);
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

/* Append s to q, cut (and 0 returned) when it does not fit; q->buf stays terminated. */
static int qs_put(struct qs_ctx *q, const char *s)
{
    size_t n = strlen(s), room = sizeof(q->buf) - 1 - q->len;
    int fits = n <= room;
    if (!fits)
        n = room;
    memcpy(q->buf + q->len, s, n);
    q->len += n;
    q->buf[q->len] = '\0';
    return fits;
}

static enum MHD_Result qs_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    struct qs_ctx *q = cls;
    int fits = 1;
    (void)kind;
    if (q->len)
        fits = qs_put(q, "&");
    fits = fits && qs_put(q, key ? key : "");
    if (fits && value)
        fits = qs_put(q, "=") && qs_put(q, value);
    return fits ? MHD_YES : MHD_NO;
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

/* Called from the access handler, so on the loop thread that owns conn. -1 when the
 * loop is shutting down or out of memory: the caller answers without the delay. */
static int suspend_until(struct MHD_Connection *conn, int64_t delay_ms)
{
    struct sb_loop *l = cur_loop;
    if (!l || l->stopping || heap_push(l, conn, clock_mono_ms() + delay_ms) != 0)
        return -1;
    MHD_suspend_connection(conn);
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

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* The one listening socket every loop's daemon accepts from (non-blocking: the daemons
 * race for each new connection and the losers see EAGAIN). */
static int open_listener(const struct sockaddr_in *sa, int *bound_port, char *errstr, size_t errsz)
{
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in got;
    socklen_t glen = sizeof(got);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0 || listen(fd, 1024) != 0 ||
        getsockname(fd, (struct sockaddr *)&got, &glen) != 0) {
        char ip[INET_ADDRSTRLEN] = "?";
        inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof(ip));
        snprintf(errstr, errsz, "cannot listen on %s:%d: %s", ip, ntohs(sa->sin_port),
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *bound_port = ntohs(got.sin_port);
    return fd;
}

static int loop_start(struct sb_loop *l, unsigned conn_limit, char *errstr, size_t errsz)
{
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    struct epoll_event ev = {.events = EPOLLIN};
    const union MHD_DaemonInfo *di;

    memset(l, 0, sizeof(*l));
    l->epfd = l->wake_fd = -1;
    l->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_access, NULL, MHD_OPTION_LISTEN_SOCKET,
                                 listen_fd, MHD_OPTION_CONNECTION_LIMIT, conn_limit,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)SB_CONN_TIMEOUT_S,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    di = l->daemon ? MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    if (!di) {
        snprintf(errstr, errsz, "cannot start the HTTP daemon: %s", strerror(errno));
        return -1;
    }
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->epfd < 0 || l->wake_fd < 0 ||
        epoll_ctl(l->epfd, EPOLL_CTL_ADD, di->epoll_fd, &ev) != 0 ||
        epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wake_fd, &ev) != 0) {
        snprintf(errstr, errsz, "cannot set up an event loop: %s", strerror(errno));
        return -1;
    }
    if (pthread_create(&l->thread, NULL, loop_main, l) != 0) {
        snprintf(errstr, errsz, "cannot start an event loop thread");
        return -1;
    }
    l->running = 1;
    return 0;
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
    listen_fd = open_listener(&sa, bound_port, errstr, errsz);
    if (listen_fd < 0)
        return -1;
    for (nloops = 0; nloops < threads; nloops++) {
        if (loop_start(&loops[nloops], (unsigned)(SB_CONN_LIMIT / threads), errstr, errsz) != 0) {
            nloops++; /* sb_server_stop() releases what it got */
            sb_server_stop();
            return -1;
        }
    }
    return 0;
}

void sb_server_stop(void)
{
    uint64_t one = 1;
    for (int i = 0; i < nloops; i++) {
        struct sb_loop *l = &loops[i];
        __atomic_store_n(&l->stop, 1, __ATOMIC_RELEASE);
        if (l->wake_fd >= 0 && write(l->wake_fd, &one, sizeof(one)) < 0)
            continue; /* cannot fail on a fresh eventfd; the loop sees stop anyway */
    }
    for (int i = 0; i < nloops; i++) {
        struct sb_loop *l = &loops[i];
        if (l->running)
            pthread_join(l->thread, NULL);
        if (l->daemon) {
            MHD_quiesce_daemon(l->daemon); /* the listening socket is ours, closed once */
            MHD_stop_daemon(l->daemon);
        }
        if (l->epfd >= 0)
            close(l->epfd);
        if (l->wake_fd >= 0)
            close(l->wake_fd);
        free(l->heap);
        memset(l, 0, sizeof(*l));
    }
    nloops = 0;
    if (listen_fd >= 0)
        close(listen_fd);
    listen_fd = -1;
}
