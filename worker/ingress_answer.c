/* ingress_answer.c - a request's answer (see ingress_internal.h): queued at once, or after
 * the request waited, its connection suspended, for Kafka's delivery report (an action)
 * or a job thread (an options fetch, a connect page).
 *
 * A waiting request holds a second reference, dropped by finish_answer() once its answer
 * is set and its connection resumed; in->pending counts the waiting sides, in->resuming
 * the MHD_resume_connection() calls under way, so ingress_stop() knows when no connection
 * is suspended any more. MHD_resume_connection() is called outside in->mu.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "worker/connect.h"
#include "worker/connect_page.h"
#include "worker/ingress_internal.h"
#include "worker/metrics.h"
#include "worker/producer.h"

static const char *const route_names[] = {"actions", "options", "connect", "other"};

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
int ingress_req_unref_locked(struct req *r)
{
    if (--r->refs > 0)
        return 0;
    req_free(r);
    return 1;
}

/* r's answer: status and a JSON body (copied). */
void ingress_req_set_answer(struct req *r, unsigned status, const char *json, size_t len)
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
void ingress_req_set_message(struct req *r, unsigned status, const char *msg)
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
        ingress_req_set_answer(r, status, jbuf_cstr(&jb), jb.len);
    else
        ingress_req_set_answer(r, status, "{}", 2);
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

enum MHD_Result ingress_queue_answer(struct req *r, struct MHD_Connection *c)
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
            ingress_req_set_answer(r, status, json, len);
        else
            ingress_req_set_message(r, status, msg);
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
    ingress_req_unref_locked(r); /* the connection's reference keeps r alive while suspended */
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
        ingress_req_set_message(r, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down; retry later");
        return -1;
    }
    if (in->nwaiting == in->capwaiting) {
        size_t cap = in->capwaiting ? in->capwaiting * 2 : 256;

        if ((w = realloc(in->waiting, cap * sizeof(*w))) == NULL) {
            pthread_mutex_unlock(&in->mu);
            ingress_req_set_message(r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory; retry later");
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
enum MHD_Result ingress_start_action(struct ingress *in, struct req *r, struct MHD_Connection *c)
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
        ingress_req_set_message(r, MHD_HTTP_BAD_REQUEST, msg);
        jbuf_release(&jb);
        return ingress_queue_answer(r, c);
    }
    pm = (struct producer_msg){in->topic, ev.key, strlen(ev.key), jbuf_cstr(&jb), jb.len, &ce, 1};
    if (start_waiting(in, r, c) < 0) {
        event_release(&ev);
        jbuf_release(&jb);
        return ingress_queue_answer(r, c);
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
        return ingress_queue_answer(r, c);
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

enum MHD_Result ingress_answer_options(struct ingress *in, struct req *r, struct MHD_Connection *c)
{
    if (!in->options) {
        ingress_req_set_message(r, MHD_HTTP_SERVICE_UNAVAILABLE, "options are not available");
        return ingress_queue_answer(r, c);
    }
    return start_job(in, r, c);
}

enum MHD_Result ingress_answer_connect(struct ingress *in, struct req *r, struct MHD_Connection *c)
{
    if (!in->connect) {
        ingress_req_set_message(r, MHD_HTTP_SERVICE_UNAVAILABLE,
                                "Connecting accounts is not available on this server.");
        return ingress_queue_answer(r, c);
    }
    return start_job(in, r, c);
}

int ingress_jobs_start(struct ingress *in, char *errstr, size_t errsz)
{
    for (size_t i = 0; (in->options || in->connect) && i < INGRESS_JOB_THREADS; i++) {
        int rc = pthread_create(&in->job_threads[i], NULL, jobs_main, in);

        if (rc != 0) {
            snprintf(errstr, errsz, "ingress: pthread_create: %s", strerror(rc));
            return -1;
        }
        in->njob_threads++;
    }
    return 0;
}

void ingress_jobs_stop(struct ingress *in)
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
