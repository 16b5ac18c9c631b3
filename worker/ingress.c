/* ingress.c - HubSpot's actionUrl and optionsUrl on libmicrohttpd (see ingress.h).
 *
 * One request's life: MHD's URI-log callback allocates its struct req (and keeps the raw
 * request target, path and query exactly as sent, which the signature covers); the
 * access handler checks route, method, content type and length on its first call,
 * gathers the body on the next ones, and on the last one verifies the signature and
 * either answers at once (options, errors) or builds the event, suspends the connection
 * and hands the event to the producer. The delivery report (producer poll thread) writes
 * the answer into the req and resumes the connection; MHD then calls the handler once
 * more, which queues the answer. So a request waiting for Kafka holds no thread, and a
 * small pool serves thousands of requests in flight.
 *
 * A req is reference-counted: the connection holds one reference until MHD's
 * completion callback, and a queued delivery holds one until its report. Both sides
 * touch the req under in->mu; MHD_resume_connection() is called outside it.
 *
 * Shutdown: MHD_quiesce_daemon() closes the listening socket (no new connections), the
 * deliveries in flight are waited for (their answers still go out), and any request
 * still suspended after the drain window is answered 503 so no connection is left
 * suspended when the daemon stops (MHD requires that).
 */
#include "worker/ingress.h"

#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "worker/connect.h"
#include "worker/connect_page.h"
#include "worker/connect_state.h"
#include "worker/event.h"
#include "worker/guard.h"
#include "worker/httpd.h"
#include "worker/ingress_options.h"
#include "worker/ingress_sign.h"
#include "worker/metrics.h"
#include "worker/producer.h"
#include "worker/settings.h"

#define INGRESS_MAX_DEFS        64
#define INGRESS_CONN_TIMEOUT    30 /* s a connection may sit idle */
#define INGRESS_STOP_GRACE_MS   200
#define INGRESS_MSG_MAX         512
#define INGRESS_JOB_THREADS     INGRESS_OPTIONS_CONCURRENCY /* each may call a vendor */
#define INGRESS_ANSWER_GRACE_MS 1000 /* at stop: resumed answers may go out meanwhile */
#define INGRESS_ACTIONS_PATH    "/hubspot/actions"
#define INGRESS_OPTIONS_PATH    "/hubspot/options"
#define INGRESS_FORM_MAX        (8 * 1024) /* body of a connect page's form */

enum route { ROUTE_ACTIONS, ROUTE_OPTIONS, ROUTE_CONNECT, ROUTE_OTHER };
static const char *const route_names[] = {"actions", "options", "connect", "other"};

enum req_state { ST_NEW, ST_READING, ST_WAITING, ST_ANSWER };

struct req {
    struct ingress *in;
    struct MHD_Connection *conn;
    enum req_state state;
    enum route route;
    int has_action; /* path named the action */
    enum hsqb_action action;
    int too_large;
    int close; /* answer with Connection: close (shutting down) */
    int suspended;
    int resumed; /* resumed, its answer not yet completed (on_completed) */
    int refs;
    char *uri;      /* raw request target */
    char *path;     /* a connect route's path (decoded by MHD) */
    char method[8]; /* a connect route's method ("OTHER" when longer) */
    char *body;
    size_t len, cap;
    int64_t t0_ms; /* mono ms when the body was complete */
    unsigned status;
    char *answer; /* JSON, or HTML when page */
    size_t answer_len;
    int page;             /* a connect page: HTML with connect_page_headers() */
    char *location;       /* a connect redirect's Location */
    char *session;        /* a connect route's session cookie, as sent (NULL: none) */
    char *flow;           /* a connect route's flow cookie, as sent (NULL: none) */
    char *set_cookie;     /* a connect answer's Set-Cookie */
    const char *allow;    /* a connect page's 405: the methods allowed (static) */
    struct req *next_job; /* the job queue (options fetches, connect pages) */
};

struct ingress {
    struct MHD_Daemon *d;
    struct guard *guard; /* ingress.request_deadline (worker/guard.h) */
    struct metrics *m;
    struct producer *producer;
    struct ingress_options *options;
    struct connect *connect;
    pthread_mutex_t mu;
    pthread_cond_t idle;  /* signalled when pending reaches 0 */
    int64_t pending;      /* waiting sides: deliveries and options jobs not yet finished */
    int64_t resuming;     /* MHD_resume_connection() calls under way */
    int64_t resumed;      /* requests resumed whose answers are not yet sent (completed) */
    int stopping;         /* new requests are answered 503 at once */
    struct req **waiting; /* suspended requests, for the forced answer at stop */
    size_t nwaiting, capwaiting;
    int port;
    size_t max_body;
    char topic[256];
    char expiration[65];
    struct ingress_signer sign; /* public URL, client secrets, refusal log */
    struct ingress_action_def defs[INGRESS_MAX_DEFS];
    size_t ndefs;
    pthread_mutex_t job_mu; /* the job queue: options fetches and connect pages */
    pthread_cond_t job_cv;
    struct req *job_head, *job_tail;
    int job_stop;
    pthread_t job_threads[INGRESS_JOB_THREADS];
    size_t njob_threads;
};

/* ---- requests ------------------------------------------------------------------------ */

static void req_free(struct req *r)
{
    free(r->uri);
    free(r->body);
    free(r->answer);
    free(r->location);
    free(r->path);
    free(r->session);
    free(r->flow);
    free(r->set_cookie);
    free(r);
}

/* Drops one reference; the caller holds in->mu. Returns 1 when r was freed. */
static int req_unref_locked(struct req *r)
{
    if (--r->refs > 0)
        return 0;
    req_free(r);
    return 1;
}

/* r's answer: status and a JSON body (copied). */
static void req_set_answer(struct req *r, unsigned status, const char *json, size_t len)
{
    free(r->answer);
    r->answer = malloc(len + 1);
    if (r->answer) {
        memcpy(r->answer, json, len);
        r->answer[len] = '\0';
        r->answer_len = len;
    } else {
        r->answer_len = 0;
    }
    r->status = status;
    r->state = ST_ANSWER;
}

/* A connect page's answer as r's (taken: a is emptied). */
static void req_take_page(struct req *r, struct connect_answer *a)
{
    free(r->answer);
    free(r->location);
    r->answer = a->body;
    r->answer_len = a->body ? a->len : 0;
    r->location = a->location;
    free(r->set_cookie);
    r->set_cookie = a->set_cookie;
    r->allow = a->allow;
    r->status = (unsigned)a->status;
    r->page = 1;
    r->state = ST_ANSWER;
    a->body = a->location = a->set_cookie = NULL;
}

/* {"message": msg} as r's answer; on a connect route, a page saying msg. */
static void req_set_message(struct req *r, unsigned status, const char *msg)
{
    struct jbuf jb;

    if (r->route == ROUTE_CONNECT) {
        struct connect_answer a = {0};

        connect_error_page((int)status, status >= 500 ? "Try again in a moment" : "Not possible",
                           msg, &a);
        req_take_page(r, &a);
        connect_answer_release(&a);
        return;
    }

    jbuf_init(&jb, 4096);
    jbuf_obj_open(&jb);
    jbuf_kv_str(&jb, "message", msg);
    jbuf_obj_close(&jb);
    if ((jbuf_cstr(&jb) != NULL))
        req_set_answer(r, status, jbuf_cstr(&jb), jb.len);
    else
        req_set_answer(r, status, "{}", 2);
    jbuf_release(&jb);
}

/* A connect page's headers: its security set, Location, Allow. */
static void page_headers(const struct req *r, struct MHD_Response *resp)
{
    size_t n;
    const struct connect_header *h = connect_page_headers(&n);

    for (size_t i = 0; i < n; i++)
        MHD_add_response_header(resp, h[i].name, h[i].value);
    if (r->location)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, r->location);
    if (r->set_cookie)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, r->set_cookie);
    if (r->status == MHD_HTTP_METHOD_NOT_ALLOWED && r->allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
}

static enum MHD_Result queue_answer(struct req *r, struct MHD_Connection *c)
{
    static const char empty[] = "{}";
    struct MHD_Response *resp;
    enum MHD_Result ret;
    const char *body = r->answer ? r->answer : r->page ? "" : empty;
    size_t len = r->answer ? r->answer_len : strlen(body);

    resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    if (r->page) {
        page_headers(r, resp);
    } else {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    }
    if (r->status == MHD_HTTP_METHOD_NOT_ALLOWED && !r->page)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
                                r->route == ROUTE_OTHER ? "GET, HEAD" : "POST");
    if (r->close)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    ret = MHD_queue_response(c, r->status, resp);
    MHD_destroy_response(resp);
    metrics_ingress_request(r->in->m, route_names[r->route], (int)r->status,
                            r->t0_ms > 0 ? clock_mono_ms() - r->t0_ms : -1);
    return ret;
}

/* ---- signatures ------------------------------------------------------------------------ */

/* Logs a refused request (rate-limited by the signer) with the client's address. */
static void log_refusal(struct ingress *in, struct MHD_Connection *c, const char *what)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char host[NI_MAXHOST] = "?";

    if (ci && ci->client_addr)
        getnameinfo(ci->client_addr,
                    ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                           : sizeof(struct sockaddr_in),
                    host, sizeof host, NULL, 0, NI_NUMERICHOST);
    ingress_signer_log_refusal(&in->sign, host, what);
}

static struct ingress_sig_headers sig_headers(struct MHD_Connection *c)
{
    return (struct ingress_sig_headers){
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-HubSpot-Signature-v3"),
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-HubSpot-Request-Timestamp"),
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-HubSpot-Signature"),
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-HubSpot-Signature-Version")};
}

/* ---- action requests ------------------------------------------------------------------- */

/* A waiting request's answer is ready (a connect page, status and JSON, or msg as
 * {"message"}): set it, unless the stop already answered it, resume its connection, and
 * drop the waiting side's reference. Any thread (MHD allows resuming from the handler
 * too). */
static void finish_answer(struct req *r, struct connect_answer *page, unsigned status,
                          const char *json, size_t len, const char *msg)
{
    struct ingress *in = r->in;
    struct MHD_Connection *resume = NULL;
    size_t i;

    pthread_mutex_lock(&in->mu);
    if (r->state == ST_WAITING) {
        if (page)
            req_take_page(r, page);
        else if (json)
            req_set_answer(r, status, json, len);
        else
            req_set_message(r, status, msg);
    }
    if (r->suspended) {
        r->suspended = 0;
        r->resumed = 1;
        in->resumed++;
        in->resuming++;
        resume = r->conn;
        for (i = 0; i < in->nwaiting; i++)
            if (in->waiting[i] == r) {
                in->waiting[i] = in->waiting[--in->nwaiting];
                break;
            }
    }
    pthread_mutex_unlock(&in->mu);
    if (resume)
        MHD_resume_connection(resume);
    /* pending and resuming drop only now: ingress_stop() waits for both before it stops
     * the daemon, so no connection is still suspended (or being resumed) then */
    pthread_mutex_lock(&in->mu);
    if (resume)
        in->resuming--;
    req_unref_locked(r); /* the connection's reference keeps r alive while suspended */
    in->pending--;
    pthread_cond_broadcast(&in->idle);
    pthread_mutex_unlock(&in->mu);
}

static void finish_waiting(struct req *r, unsigned status, const char *json, size_t len,
                           const char *msg)
{
    finish_answer(r, NULL, status, json, len, msg);
}

/* Suspends c until finish_waiting(r): 0, or -1 with r's answer set (shutting down, out of
 * memory: r is not waiting). Called from the access handler, as MHD requires. */
static int start_waiting(struct ingress *in, struct req *r, struct MHD_Connection *c)
{
    struct req **w;

    pthread_mutex_lock(&in->mu);
    if (in->stopping) {
        pthread_mutex_unlock(&in->mu);
        req_set_message(r, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down; retry later");
        return -1;
    }
    if (in->nwaiting == in->capwaiting) {
        size_t cap = in->capwaiting ? in->capwaiting * 2 : 256;

        if ((w = realloc(in->waiting, cap * sizeof(*w))) == NULL) {
            pthread_mutex_unlock(&in->mu);
            req_set_message(r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory; retry later");
            return -1;
        }
        in->waiting = w;
        in->capwaiting = cap;
    }
    MHD_suspend_connection(c);
    r->state = ST_WAITING;
    r->suspended = 1;
    r->refs++;
    in->pending++;
    in->waiting[in->nwaiting++] = r;
    pthread_mutex_unlock(&in->mu);
    return 0;
}

static void on_delivery(void *opaque, int ok, const char *why)
{
    struct req *r = opaque;
    struct ingress *in = r->in;
    char msg[INGRESS_MSG_MAX];
    struct jbuf jb;

    if (ok != 0) {
        snprintf(msg, sizeof msg, "Kafka did not acknowledge the event: %s; retry later",
                 why ? why : "unknown error");
        log_warn("ingress: %s", msg);
        finish_waiting(r, MHD_HTTP_SERVICE_UNAVAILABLE, NULL, 0, msg);
        return;
    }
    jbuf_init(&jb, 1024);
    jbuf_obj_open(&jb);
    jbuf_key(&jb, "outputFields");
    jbuf_obj_open(&jb);
    jbuf_kv_str(&jb, "hs_execution_state", "BLOCK");
    if (in->expiration[0] != '\0')
        jbuf_kv_str(&jb, "hs_expiration_duration", in->expiration);
    jbuf_obj_close(&jb);
    jbuf_obj_close(&jb);
    finish_waiting(r, MHD_HTTP_OK, jbuf_cstr(&jb), jb.len, NULL);
    jbuf_release(&jb);
}

/* Suspends c and hands the event to Kafka; the answer comes from on_delivery(). */
static enum MHD_Result start_action(struct ingress *in, struct req *r, struct MHD_Connection *c)
{
    static const struct kafka_header ce = {"content-type", "application/cloudevents+json"};
    struct action_event ev = {0};
    struct producer_msg pm;
    struct jbuf jb;
    char msg[INGRESS_MSG_MAX], e[256];

    struct ingress_request rq = {
        in->sign.public_host,   in->defs, in->ndefs,      r->has_action, r->action,
        r->body ? r->body : "", r->len,   clock_wall_ms()};

    jbuf_init(&jb, EVENT_MAX_BYTES);
    if (ingress_event_build(&rq, &jb, &ev, msg, sizeof msg) < 0) {
        req_set_message(r, MHD_HTTP_BAD_REQUEST, msg);
        jbuf_release(&jb);
        return queue_answer(r, c);
    }
    pm = (struct producer_msg){in->topic, ev.key, strlen(ev.key), jbuf_cstr(&jb), jb.len, &ce, 1};
    if (start_waiting(in, r, c) < 0) {
        event_release(&ev);
        jbuf_release(&jb);
        return queue_answer(r, c);
    }
    if (producer_send_async(in->producer, &pm, on_delivery, r, e, sizeof e) < 0) {
        snprintf(msg, sizeof msg, "Kafka did not take the event: %s; retry later", e);
        log_warn("ingress: %s", msg);
        finish_waiting(r, MHD_HTTP_SERVICE_UNAVAILABLE, NULL, 0, msg); /* resumes c */
    }
    event_release(&ev);
    jbuf_release(&jb);
    return MHD_YES;
}

/* ---- jobs: options fetches and connect pages ------------------------------------------ */

/* An options fetch reads QuickBooks, a connect page Redis, Intuit and HubSpot (seconds at
 * worst): both run on the job threads, their connections suspended meanwhile, so a slow
 * vendor never holds an HTTP thread that action requests need. */

static void run_options(struct ingress *in, struct req *r)
{
    struct jbuf jb;
    int status;

    jbuf_init(&jb, 4u << 20);
    status = ingress_options_answer(in->options, r->body ? r->body : "", r->len, &jb);
    if (jbuf_cstr(&jb) != NULL && jb.len > 0)
        finish_waiting(r, (unsigned)status, jbuf_cstr(&jb), jb.len, NULL);
    else
        finish_waiting(r, MHD_HTTP_SERVICE_UNAVAILABLE, NULL, 0,
                       "the options answer could not be built");
    jbuf_release(&jb);
}

static void run_connect(struct ingress *in, struct req *r)
{
    const char *q = strchr(r->uri, '?');
    struct connect_answer a = {0};
    struct connect_request rq = {r->method,      r->path ? r->path : "",
                                 q ? q + 1 : "", r->body ? r->body : "",
                                 r->len,         r->session,
                                 r->flow};

    connect_handle(in->connect, &rq, &a);
    finish_answer(r, &a, 0, NULL, 0, NULL);
    connect_answer_release(&a);
}

static void *jobs_main(void *opaque)
{
    struct ingress *in = opaque;
    struct req *r;
    int stopping;

    for (;;) {
        pthread_mutex_lock(&in->job_mu);
        while (!in->job_head && !in->job_stop)
            pthread_cond_wait(&in->job_cv, &in->job_mu);
        if (!in->job_head) { /* stopping and nothing queued */
            pthread_mutex_unlock(&in->job_mu);
            return NULL;
        }
        r = in->job_head;
        in->job_head = r->next_job;
        if (!in->job_head)
            in->job_tail = NULL;
        stopping = in->job_stop;
        pthread_mutex_unlock(&in->job_mu);
        if (stopping) /* its connection is answered or gone: no vendor call */
            finish_waiting(r, MHD_HTTP_SERVICE_UNAVAILABLE, NULL, 0, "shutting down");
        else if (r->route == ROUTE_CONNECT)
            run_connect(in, r);
        else
            run_options(in, r);
    }
}

/* Suspends r and queues it for the job threads. */
static enum MHD_Result start_job(struct ingress *in, struct req *r, struct MHD_Connection *c)
{
    if (start_waiting(in, r, c) < 0)
        return queue_answer(r, c);
    pthread_mutex_lock(&in->job_mu);
    r->next_job = NULL;
    if (in->job_tail)
        in->job_tail->next_job = r;
    else
        in->job_head = r;
    in->job_tail = r;
    pthread_cond_signal(&in->job_cv);
    pthread_mutex_unlock(&in->job_mu);
    return MHD_YES;
}

static enum MHD_Result answer_options(struct ingress *in, struct req *r, struct MHD_Connection *c)
{
    if (!in->options) {
        req_set_message(r, MHD_HTTP_SERVICE_UNAVAILABLE, "options are not available");
        return queue_answer(r, c);
    }
    return start_job(in, r, c);
}

static enum MHD_Result answer_connect(struct ingress *in, struct req *r, struct MHD_Connection *c)
{
    if (!in->connect) {
        req_set_message(r, MHD_HTTP_SERVICE_UNAVAILABLE,
                        "Connecting accounts is not available on this server.");
        return queue_answer(r, c);
    }
    return start_job(in, r, c);
}

/* ---- the MHD handlers -------------------------------------------------------------------- */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    struct req *r = calloc(1, sizeof(*r));

    if (!r)
        return NULL;
    r->in = cls;
    r->conn = c;
    r->refs = 1;
    r->uri = strndup(uri ? uri : "", INGRESS_URI_MAX); /* longer: answered 414 */
    if (!r->uri) {
        free(r);
        return NULL;
    }
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct ingress *in = cls;
    struct req *r = *req_cls;

    (void)toe;
    guard_request_done(c); /* a keep-alive connection's next request gets the deadline */
    if (!r)
        return;
    pthread_mutex_lock(&in->mu);
    if (r->resumed) {
        r->resumed = 0;
        in->resumed--;
        pthread_cond_broadcast(&in->idle);
    }
    req_unref_locked(r);
    pthread_mutex_unlock(&in->mu);
    *req_cls = NULL;
}

/* application/json, with or without parameters (charset=utf-8). */
static int is_json(const char *ct)
{
    size_t n = strlen("application/json");

    if (!ct)
        return 0;
    while (*ct == ' ')
        ct++;
    return strncasecmp(ct, "application/json", n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* The first call of a connect page's request (browsers: no signature, forms instead of
 * JSON): 0 to go on reading, -1 when r already holds the answer. */
static int check_connect(struct req *r, struct MHD_Connection *c, const char *url,
                         const char *method)
{
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

    r->route = ROUTE_CONNECT;
    snprintf(r->method, sizeof r->method, "%s",
             strlen(method) < sizeof r->method ? method : "OTHER");
    const char *session = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, CONNECT_SESSION_COOKIE);
    const char *flow = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, CONNECT_FLOW_COOKIE);

    if (!(r->path = strdup(url)) ||
        (session && strlen(session) <= CONNECT_TOKEN_MAX && !(r->session = strdup(session))) ||
        (flow && strlen(flow) <= CONNECT_NONCE_LEN && !(r->flow = strdup(flow)))) {
        req_set_message(r, MHD_HTTP_SERVICE_UNAVAILABLE, "This server ran out of memory.");
        return -1;
    }
    if (strcmp(method, MHD_HTTP_METHOD_POST) == 0 &&
        (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0 ||
         (ct[33] != '\0' && ct[33] != ';'))) {
        req_set_message(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "This page takes forms only.");
        return -1;
    }
    if (cl && strtoull(cl, NULL, 10) > INGRESS_FORM_MAX) {
        req_set_message(r, MHD_HTTP_CONTENT_TOO_LARGE, "The form is too large.");
        return -1;
    }
    return 0;
}

/* The first call of a request: route, method, type and declared length. 0 to go on
 * reading, -1 when r already holds the answer. */
static int check_headers(struct ingress *in, struct req *r, struct MHD_Connection *c,
                         const char *url, const char *method)
{
    size_t plen = strlen(INGRESS_ACTIONS_PATH);
    const char *cl;
    char msg[160];
    int stopping;

    pthread_mutex_lock(&in->mu);
    stopping = in->stopping;
    pthread_mutex_unlock(&in->mu);
    if (stopping) {
        r->close = 1;
        req_set_message(r, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down; retry later");
        return -1;
    }
    if (strlen(r->uri) >= INGRESS_URI_MAX) {
        req_set_message(r, MHD_HTTP_URI_TOO_LONG, "the request target is too long");
        return -1;
    }

    if (connect_is_route(url))
        return check_connect(r, c, url, method);
    if (strcmp(url, INGRESS_OPTIONS_PATH) == 0) {
        r->route = ROUTE_OPTIONS;
    } else if (strncmp(url, INGRESS_ACTIONS_PATH, plen) == 0 &&
               (url[plen] == '\0' || url[plen] == '/')) {
        r->route = ROUTE_ACTIONS;
        if (url[plen] == '/') {
            if (event_action_from_name(url + plen + 1, &r->action) < 0) {
                req_set_message(r, MHD_HTTP_NOT_FOUND, "no such action");
                return -1;
            }
            r->has_action = 1;
        }
    } else {
        r->route = ROUTE_OTHER;
        if (strcmp(url, "/healthz") == 0 && (strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
                                             strcmp(method, MHD_HTTP_METHOD_HEAD) == 0)) {
            req_set_answer(r, MHD_HTTP_OK, "{\"status\":\"ok\"}", 15);
            return -1;
        }
        req_set_message(
            r, strcmp(url, "/healthz") == 0 ? MHD_HTTP_METHOD_NOT_ALLOWED : MHD_HTTP_NOT_FOUND,
            strcmp(url, "/healthz") == 0 ? "method not allowed" : "not found");
        return -1;
    }
    if (strcmp(method, MHD_HTTP_METHOD_POST) != 0) {
        req_set_message(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed: use POST");
        return -1;
    }
    if (!is_json(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE))) {
        req_set_message(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "the body must be application/json");
        return -1;
    }
    /* nothing unsigned is read: a body is buffered only when a signature may cover it */
    struct ingress_sig_headers sh = sig_headers(c);

    if (!ingress_signer_may_read(&in->sign, &sh)) {
        metrics_ingress_signature_failure(in->m, "missing");
        log_refusal(in, c,
                    in->sign.require_v3
                        ? "no X-HubSpot-Signature-v3 header (v3 required)"
                        : "no X-HubSpot-Signature-v3 or X-HubSpot-Signature header");
        req_set_message(r, MHD_HTTP_UNAUTHORIZED,
                        in->sign.require_v3 ? "signature refused: X-HubSpot-Signature-v3 required"
                                            : "signature refused: no X-HubSpot-Signature-v3 or "
                                              "X-HubSpot-Signature header");
        return -1;
    }
    cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > in->max_body) {
        snprintf(msg, sizeof msg, "the body exceeds %zu bytes", in->max_body);
        req_set_message(r, MHD_HTTP_CONTENT_TOO_LARGE, msg);
        return -1;
    }
    return 0;
}

/* The largest body r may carry. */
static size_t body_max(const struct ingress *in, const struct req *r)
{
    return r->route == ROUTE_CONNECT && in->max_body > INGRESS_FORM_MAX ? INGRESS_FORM_MAX
                                                                        : in->max_body;
}

static int append_body(struct ingress *in, struct req *r, const char *data, size_t n)
{
    size_t cap, max = body_max(in, r);
    char *p;

    if (r->too_large || r->len + n > max) {
        r->too_large = 1;
        return 0;
    }
    if (r->len + n + 1 > r->cap) {
        cap = r->cap ? r->cap * 2 : 4096;
        while (cap < r->len + n + 1)
            cap *= 2;
        if (cap > max + 1)
            cap = max + 1;
        if ((p = realloc(r->body, cap)) == NULL)
            return -1;
        r->body = p;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return 0;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **req_cls)
{
    struct ingress *in = cls;
    struct req *r = *req_cls;
    const char *reason = "mismatch";
    char why[256], msg[320];

    (void)version;
    if (!r)
        return MHD_NO; /* out of memory at the start: drop the connection */
    switch (r->state) {
    case ST_NEW:
        r->state = ST_READING;
        if (check_headers(in, r, c, url, method) < 0)
            return queue_answer(r, c);
        return MHD_YES;
    case ST_READING:
        break;
    case ST_WAITING:
        return MHD_YES; /* not reached: a suspended connection is not called */
    case ST_ANSWER:
        return queue_answer(r, c);
    }
    if (*upload_size > 0) {
        if (append_body(in, r, upload, *upload_size) < 0)
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    r->t0_ms = clock_mono_ms();
    guard_request_read(c); /* read whole: waiting for Kafka or a vendor is ours */
    if (r->too_large) {
        snprintf(msg, sizeof msg, "the body exceeds %zu bytes", body_max(in, r));
        req_set_message(r, MHD_HTTP_CONTENT_TOO_LARGE, msg);
        return queue_answer(r, c);
    }
    if (r->route == ROUTE_CONNECT) /* browsers sign nothing: the pages check links, states */
        return answer_connect(in, r, c);
    struct ingress_sig_headers sh = sig_headers(c);

    if (ingress_signer_verify(&in->sign, &sh, r->uri, r->body, r->len, clock_wall_ms(), &reason,
                              why, sizeof why) < 0) {
        metrics_ingress_signature_failure(in->m, reason);
        log_refusal(in, c, why);
        snprintf(msg, sizeof msg, "signature refused: %s", why);
        req_set_message(r, MHD_HTTP_UNAUTHORIZED, msg);
        return queue_answer(r, c);
    }
    if (r->route == ROUTE_OPTIONS)
        return answer_options(in, r, c);
    return start_action(in, r, c);
}

static void mhd_logger(void *opaque, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void mhd_logger(void *opaque, const char *fmt, va_list ap)
{
    char msg[256];
    size_t n;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    guard_log(((struct ingress *)opaque)->guard, msg);
}

/* ---- start / stop ------------------------------------------------------------------------ */

static int load_settings(struct ingress *in, const struct config *cfg, char *errstr, size_t errsz)
{
    struct settings_realm_pair pairs[INGRESS_MAX_DEFS];
    size_t n, i;

    if (ingress_signer_load(&in->sign, cfg, errstr, errsz) < 0)
        return -1;
    if (settings_realm_pairs("ingress.action_definitions",
                             config_get_str(cfg, "ingress.action_definitions"), pairs,
                             INGRESS_MAX_DEFS, &n, errstr, errsz) < 0)
        return -1;
    for (i = 0; i < n; i++) {
        struct ingress_action_def *d = &in->defs[in->ndefs];

        if (strlen(pairs[i].realm) > 18 || event_action_from_name(pairs[i].value, &d->action) < 0) {
            snprintf(errstr, errsz,
                     "ingress.action_definitions: \"%s=%s\" is not <definition id>=<action>",
                     pairs[i].realm, pairs[i].value);
            return -1;
        }
        d->id = strtoll(pairs[i].realm, NULL, 10);
        in->ndefs++;
    }
    snprintf(in->expiration, sizeof in->expiration, "%s",
             config_get_str(cfg, "ingress.expiration"));
    snprintf(in->topic, sizeof in->topic, "%s", config_get_str(cfg, "kafka.topic.actions"));
    in->max_body = (size_t)config_get_bytes(cfg, "ingress.max_body");
    return 0;
}

static void free_ingress(struct ingress *in)
{
    ingress_signer_release(&in->sign);
    free(in->waiting);
    guard_free(in->guard); /* the daemon stopped, or never started */
    pthread_mutex_destroy(&in->mu);
    pthread_cond_destroy(&in->idle);
    pthread_mutex_destroy(&in->job_mu);
    pthread_cond_destroy(&in->job_cv);
    free(in);
}

/* Lets the job threads finish what is queued, then joins them. */
static void stop_jobs(struct ingress *in)
{
    size_t i;

    pthread_mutex_lock(&in->job_mu);
    in->job_stop = 1;
    pthread_cond_broadcast(&in->job_cv);
    pthread_mutex_unlock(&in->job_mu);
    for (i = 0; i < in->njob_threads; i++)
        pthread_join(in->job_threads[i], NULL);
    in->njob_threads = 0;
}

struct ingress *ingress_start(const struct ingress_params *p, char *errstr, size_t errsz)
{
    struct ingress *in = calloc(1, sizeof(*in));
    struct addrinfo *ai = NULL;
    const union MHD_DaemonInfo *info;
    const char *listen = config_get_str(p->cfg, "ingress.listen");
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;

    if (!in) {
        snprintf(errstr, errsz, "ingress: out of memory");
        return NULL;
    }
    pthread_mutex_init(&in->mu, NULL);
    clock_cond_init(&in->idle);
    pthread_mutex_init(&in->job_mu, NULL);
    pthread_cond_init(&in->job_cv, NULL);
    in->m = p->metrics;
    in->producer = p->producer;
    in->options = p->options;
    in->connect = p->connect;
    if (load_settings(in, p->cfg, errstr, errsz) < 0 ||
        httpd_parse_listen("ingress.listen", listen, &ai, errstr, errsz) < 0 ||
        !(in->guard = guard_new("ingress", config_get_ms(p->cfg, "ingress.request_deadline"),
                                errstr, errsz)))
        goto fail;
    for (size_t i = 0; (in->options || in->connect) && i < INGRESS_JOB_THREADS; i++) {
        int rc = pthread_create(&in->job_threads[i], NULL, jobs_main, in);

        if (rc != 0) {
            snprintf(errstr, errsz, "ingress: pthread_create: %s", strerror(rc));
            goto fail;
        }
        in->njob_threads++;
    }
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    in->d = MHD_start_daemon(
        flags, 0, NULL, NULL, handle, in, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, in,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)config_get_int(p->cfg, "ingress.threads"), MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)config_get_int(p->cfg, "ingress.max_connections"),
        MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)config_get_int(p->cfg, "ingress.max_connections_per_ip"),
        MHD_OPTION_NOTIFY_CONNECTION, guard_on_connection, in->guard, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)INGRESS_CONN_TIMEOUT, MHD_OPTION_URI_LOG_CALLBACK, on_uri, in,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, in, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_END);
    if (!in->d) {
        snprintf(errstr, errsz, "ingress.listen \"%s\": cannot start the HTTP server", listen);
        goto fail;
    }
    info = MHD_get_daemon_info(in->d, MHD_DAEMON_INFO_BIND_PORT);
    in->port = info ? info->port : 0;
    freeaddrinfo(ai);
    return in;
fail:
    if (ai)
        freeaddrinfo(ai);
    stop_jobs(in);
    free_ingress(in);
    return NULL;
}

int ingress_port(const struct ingress *in)
{
    return in ? in->port : 0;
}

int64_t ingress_pending(const struct ingress *in)
{
    int64_t n;

    if (!in)
        return 0;
    pthread_mutex_lock((pthread_mutex_t *)&in->mu);
    n = in->pending;
    pthread_mutex_unlock((pthread_mutex_t *)&in->mu);
    return n;
}

void ingress_stop(struct ingress *in, int64_t drain_ms)
{
    struct timespec ts;
    MHD_socket s;
    struct MHD_Connection *resume[64];
    size_t n, i, forced = 0;

    if (!in)
        return;
    pthread_mutex_lock(&in->mu);
    in->stopping = 1; /* requests on kept-alive connections: 503 and Connection: close */
    pthread_mutex_unlock(&in->mu);
    s = MHD_quiesce_daemon(in->d);
    if (s != MHD_INVALID_SOCKET)
        close(s);
    clock_timespec(clock_mono_ms() + (drain_ms > 0 ? drain_ms : 0), &ts);
    pthread_mutex_lock(&in->mu);
    while (in->pending > 0 && pthread_cond_timedwait(&in->idle, &in->mu, &ts) == 0)
        ;
    /* still waiting for Kafka or QuickBooks: answer 503 (HubSpot retries) so nothing stays
     * suspended; their delivery reports and jobs only drop their reference later */
    do {
        n = 0;
        while (in->nwaiting > 0 && n < sizeof resume / sizeof *resume) {
            struct req *r = in->waiting[--in->nwaiting];

            req_set_message(r, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down; retry later");
            r->close = 1;
            r->suspended = 0;
            r->resumed = 1;
            in->resumed++;
            resume[n++] = r->conn;
        }
        in->resuming += (int64_t)n;
        pthread_mutex_unlock(&in->mu);
        for (i = 0; i < n; i++)
            MHD_resume_connection(resume[i]);
        pthread_mutex_lock(&in->mu);
        in->resuming -= (int64_t)n;
        forced += n;
    } while (in->nwaiting > 0);
    /* every resume has returned, and the answers resumed go out (bounded) */
    clock_timespec(clock_mono_ms() + INGRESS_ANSWER_GRACE_MS, &ts);
    while (in->resuming > 0 ||
           (in->resumed > 0 && pthread_cond_timedwait(&in->idle, &in->mu, &ts) == 0)) {
        if (in->resuming > 0) {
            struct timespec brief;

            clock_timespec(clock_mono_ms() + 10, &brief);
            pthread_cond_timedwait(&in->idle, &in->mu, &brief);
        }
    }
    pthread_mutex_unlock(&in->mu);
    if (forced > 0)
        log_warn("ingress: %zu requests still waiting at the end of the drain were answered 503",
                 forced);
    MHD_stop_daemon(in->d);
    stop_jobs(in);
    /* the delivery reports still to come use in: every request is answered, so fail what
     * is still queued now rather than after ingress.produce_timeout (HubSpot got 503 and
     * retries; a purged message that reached the broker anyway is deduplicated) */
    if (forced > 0)
        producer_purge(in->producer);
    pthread_mutex_lock(&in->mu);
    while (in->pending > 0) {
        clock_timespec(clock_mono_ms() + 1000, &ts);
        pthread_cond_timedwait(&in->idle, &in->mu, &ts);
    }
    pthread_mutex_unlock(&in->mu);
    free_ingress(in);
}
