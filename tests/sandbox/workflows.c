/* workflows.c - the sandbox's HubSpot workflow engine: executions, the delivery threads
 * that POST them to actionUrls, HubSpot's retry policy, and optionsUrl calls.
 *
 * What HubSpot documents (reference §3.4): 2xx is success unless its outputFields say
 * otherwise (BLOCK waits for a callback, FAIL_CONTINUE fails); a 4xx fails the action,
 * except 429, which is retried honouring Retry-After; 5xx are retried with exponential
 * backoff for up to three days. A 200 with a body that is not JSON counts as success.
 * What we chose where it is silent (README "Workflow engine"): timeouts and connection
 * errors are retried like 5xx; the schedule is base * 2^n capped at a maximum, without
 * jitter, so tests can predict it; Retry-After is integer milliseconds (the unit of
 * HubSpot's webhook caller) and is capped by the same maximum; three days shrink to
 * workflow_retry_attempts retries; 3xx and answers whose outputFields HubSpot could not
 * use (an unknown hs_execution_state, a malformed hs_expiration_duration) fail.
 *
 * Threads: a small pool (workflow_threads, started on first use) sleeps on one condition
 * variable; each takes the next optionsUrl call (interactive, so first) or the earliest
 * due delivery from a min-heap, performs it with its own libcurl client (keep-alive to
 * the app) outside every lock, and records the outcome. No thread ever waits on a retry
 * delay: a delivery that must be retried goes back on the heap with its due time. The
 * clients share an abort flag, so shutdown does not wait out a 30 s timeout.
 *
 * The state machine and the locking rules are drawn in workflows.h.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/hash.h"
#include "common/http.h"
#include "tests/sandbox/hubspot_internal.h"
#include "tests/sandbox/workflows.h"

#define WF_MAX_THREADS    64
#define WF_CONNECT_MS     3000 /* HubSpot's webhook caller: 3 s connect (§3.4) */
#define WF_USER_AGENT     "HubSpot Connect 2.0 (http://dev.hubspot.com/) - hsqb-sandbox"
#define WF_DELIVERIES_MAX 1001 /* recorded per execution: 1 + the most retries allowed */

struct wf_cfg {
    int64_t base_ms, max_ms, timeout_ms;
    int attempts;
};

struct wf_job {
    struct wf_call call;
    int refs, done, status;
    char *body;
    size_t body_len;
    int64_t duration_ms;
    char error[WF_ERR_MAX];
    struct wf_job *next;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* work queued, settings changed, stop */
    struct wf_exec **hash;
    size_t nb;
    struct wf_exec **order; /* enrolment order */
    size_t n, cap;
    struct wf_exec **heap; /* DELIVERING, not in flight, by due_mono */
    size_t nheap, capheap;
    struct wf_job *jobs, *jobs_tail;
    int stop; /* also every client's abort flag (atomic) */
    int want, nthreads;
    pthread_t threads[WF_MAX_THREADS];
    struct wf_cfg cfg;
} wf = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .want = 4,
    .cfg = {1000, 600000, 30000, 10},
};
static pthread_once_t wf_once = PTHREAD_ONCE_INIT;

static void wf_init_once(void)
{
    clock_cond_init(&wf.cv);
}

void wf_lock(void)
{
    pthread_once(&wf_once, wf_init_once);
    pthread_mutex_lock(&wf.mu);
}

void wf_unlock(void)
{
    pthread_mutex_unlock(&wf.mu);
}

/* ---- the execution store ------------------------------------------------------------ */

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

void wf_call_release(struct wf_call *call)
{
    free(call->url);
    free(call->body);
    free(call->secret);
    memset(call, 0, sizeof(*call));
}

void wf_exec_free(struct wf_exec *e)
{
    if (!e)
        return;
    wf_call_release(&e->call);
    json_object_put(e->request);
    json_object_put(e->response);
    json_object_put(e->outputs);
    free(e->dl);
    free(e);
}

struct wf_exec *wf_exec_find(const char *id)
{
    if (!wf.nb)
        return NULL;
    for (struct wf_exec *e = wf.hash[fnv1a(id) & (wf.nb - 1)]; e; e = e->hnext)
        if (strcmp(e->id, id) == 0)
            return e;
    return NULL;
}

size_t wf_exec_count(void)
{
    return wf.n;
}

struct wf_exec *wf_exec_at(size_t i)
{
    return i < wf.n ? wf.order[i] : NULL;
}

static int hash_grow(void)
{
    size_t nb = wf.nb ? wf.nb * 2 : 1024;
    struct wf_exec **h = calloc(nb, sizeof(*h));
    if (!h)
        return -1;
    for (size_t i = 0; i < wf.n; i++) {
        struct wf_exec *e = wf.order[i];
        size_t b = fnv1a(e->id) & (nb - 1);
        e->hnext = h[b];
        h[b] = e;
    }
    free(wf.hash);
    wf.hash = h;
    wf.nb = nb;
    return 0;
}

static int heap_less(size_t a, size_t b)
{
    return wf.heap[a]->due_mono < wf.heap[b]->due_mono;
}

static void heap_swap(size_t a, size_t b)
{
    struct wf_exec *t = wf.heap[a];
    wf.heap[a] = wf.heap[b];
    wf.heap[b] = t;
}

/* Capacity for every execution is reserved in wf_exec_add, so this cannot fail. */
static void heap_push(struct wf_exec *e)
{
    size_t i = wf.nheap++;
    wf.heap[i] = e;
    while (i > 0 && heap_less(i, (i - 1) / 2)) {
        heap_swap(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static struct wf_exec *heap_pop(void)
{
    struct wf_exec *top = wf.heap[0];
    wf.heap[0] = wf.heap[--wf.nheap];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < wf.nheap && heap_less(l, m))
            m = l;
        if (r < wf.nheap && heap_less(r, m))
            m = r;
        if (m == i)
            break;
        heap_swap(i, m);
        i = m;
    }
    return top;
}

static void *wf_main(void *arg);

/* Start delivery threads up to the configured count. wf.mu held. They start from
 * whichever thread enrols (a libmicrohttpd thread), so every signal is blocked around
 * pthread_create: SIGTERM must stay for main.c's sigwait(). */
static void threads_ensure(void)
{
    sigset_t all, old;
    if (wf.stop || wf.nthreads >= wf.want)
        return;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    while (wf.nthreads < wf.want && wf.nthreads < WF_MAX_THREADS) {
        if (pthread_create(&wf.threads[wf.nthreads], NULL, wf_main,
                           (void *)(intptr_t)wf.nthreads) != 0)
            break;
        wf.nthreads++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

int wf_exec_add(struct wf_exec *e, char *errstr, size_t errsz)
{
    int rc = -1;
    wf_lock();
    if (wf_exec_find(e->id)) {
        snprintf(errstr, errsz, "callbackId %s exists already", e->id);
        goto out;
    }
    if (wf.n >= WF_EXECS_MAX) {
        snprintf(errstr, errsz, "the sandbox keeps at most %d executions (reset it)", WF_EXECS_MAX);
        goto out;
    }
    if (wf.n == wf.cap) {
        size_t cap = wf.cap ? wf.cap * 2 : 1024;
        struct wf_exec **o = realloc(wf.order, cap * sizeof(*o));
        if (o)
            wf.order = o;
        struct wf_exec **h = o ? realloc(wf.heap, cap * sizeof(*h)) : NULL;
        if (h)
            wf.heap = h;
        if (!o || !h) {
            snprintf(errstr, errsz, "out of memory");
            goto out;
        }
        wf.cap = wf.capheap = cap;
    }
    if (wf.n >= wf.nb && hash_grow() != 0) {
        snprintf(errstr, errsz, "out of memory");
        goto out;
    }
    size_t b = fnv1a(e->id) & (wf.nb - 1);
    e->hnext = wf.hash[b];
    wf.hash[b] = e;
    wf.order[wf.n++] = e;
    e->state = WF_DELIVERING;
    e->due_mono = clock_mono_ms();
    heap_push(e);
    threads_ensure();
    pthread_cond_broadcast(&wf.cv);
    e = NULL;
    rc = 0;
out:
    wf_unlock();
    wf_exec_free(e);
    return rc;
}

/* Drop every execution; one a thread is delivering is freed by that thread. wf.mu held. */
static void execs_clear_locked(void)
{
    for (size_t i = 0; i < wf.n; i++) {
        if (wf.order[i]->in_flight)
            wf.order[i]->orphan = 1;
        else
            wf_exec_free(wf.order[i]);
    }
    wf.n = wf.nheap = 0;
    if (wf.nb)
        memset(wf.hash, 0, wf.nb * sizeof(*wf.hash));
}

void wf_reset(void)
{
    wf_lock();
    execs_clear_locked();
    wf_unlock();
}

void workflows_configure(const struct sb_settings *s)
{
    wf_lock();
    wf.cfg.base_ms = s->workflow_retry_base_ms;
    wf.cfg.max_ms = s->workflow_retry_max_ms;
    wf.cfg.attempts = s->workflow_retry_attempts;
    wf.cfg.timeout_ms = s->workflow_timeout_ms;
    wf.want = s->workflow_threads;
    if (wf.nthreads > 0) /* grow a running pool now; an idle one starts on first use */
        threads_ensure();
    pthread_cond_broadcast(&wf.cv);
    wf_unlock();
}

void workflows_shutdown(void)
{
    wf_lock();
    __atomic_store_n(&wf.stop, 1, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&wf.cv);
    int n = wf.nthreads;
    wf_unlock();
    for (int i = 0; i < n; i++)
        pthread_join(wf.threads[i], NULL);
    wf_lock();
    wf.nthreads = 0;
    execs_clear_locked();
    for (struct wf_job *j = wf.jobs, *nx; j; j = nx) {
        nx = j->next;
        j->next = NULL;
        j->done = 1;
        snprintf(j->error, sizeof(j->error), "the sandbox is shutting down");
        wf_unlock();
        wf_job_release(j);
        wf_lock();
    }
    wf.jobs = wf.jobs_tail = NULL;
    free(wf.hash);
    free(wf.order);
    free(wf.heap);
    wf.hash = wf.order = wf.heap = NULL;
    wf.nb = wf.cap = wf.capheap = 0;
    wf_unlock();
}

/* ---- one signed POST --------------------------------------------------------------- */

struct wf_answer {
    enum http_error err;
    int status;
    const char *body; /* borrowed from the thread's response */
    size_t body_len;
    const char *retry_after; /* header value or NULL */
    int64_t duration_ms, at_ms;
    char error[WF_ERR_MAX];
};

/* Sign (v2 and/or v3, a fresh timestamp per attempt) and POST call; fill *a. */
static void post_signed(struct http_client **hc, struct http_response *r,
                        const struct wf_call *call, int64_t timeout_ms, struct wf_answer *a)
{
    struct http_header h[4];
    size_t nh = 0;
    char v2[HUBSPOT_SIG_MAX], v3[HUBSPOT_SIG_MAX], ts[24];
    struct hubspot_sig_req sr = {"POST", call->url, call->body, call->body_len, ts};
    memset(a, 0, sizeof(*a));
    a->at_ms = clock_wall_ms();
    snprintf(ts, sizeof(ts), "%lld", (long long)a->at_ms);
    if ((call->sign & WF_SIGN_V2) &&
        hash_hubspot_sign(HUBSPOT_SIG_V2, call->secret, &sr, v2, sizeof(v2)) == 0) {
        h[nh++] = (struct http_header){"X-HubSpot-Signature", v2};
        h[nh++] = (struct http_header){"X-HubSpot-Signature-Version", "v2"};
    }
    if ((call->sign & WF_SIGN_V3) &&
        hash_hubspot_sign(HUBSPOT_SIG_V3, call->secret, &sr, v3, sizeof(v3)) == 0) {
        h[nh++] = (struct http_header){"X-HubSpot-Signature-v3", v3};
        h[nh++] = (struct http_header){"X-HubSpot-Request-Timestamp", ts};
    }
    if (!*hc) {
        struct http_client_opts o;
        http_client_opts_default(&o);
        o.connect_timeout_ms = WF_CONNECT_MS;
        o.max_body = WF_RESP_MAX;
        o.user_agent = WF_USER_AGENT;
        o.abort_flag = &wf.stop;
        *hc = http_client_new(&o, a->error, sizeof(a->error));
    }
    int64_t t0 = clock_mono_ms();
    if (!*hc) {
        a->err = HTTP_EOTHER;
        return;
    }
    struct http_request req = {.method = HTTP_POST,
                               .url = call->url,
                               .headers = h,
                               .nheaders = nh,
                               .body = call->body,
                               .body_len = call->body_len,
                               .content_type = "application/json",
                               .timeout_ms = timeout_ms};
    a->err = http_client_do(*hc, &req, r, a->error, sizeof(a->error));
    a->duration_ms = clock_mono_ms() - t0;
    if (a->err == HTTP_OK) {
        a->status = (int)r->status;
        a->body = r->body;
        a->body_len = r->body_len;
        a->retry_after = http_response_header(r, "Retry-After");
    }
}

/* ---- outcomes ---------------------------------------------------------------------- */

/* The answer as kept in a record: {"status","body"}: parsed JSON, else the text (cut at
 * WF_KEEP_BODY_MAX). */
static struct json_object *answer_json(const struct wf_answer *a)
{
    struct json_object *o = json_object_new_object(), *b = NULL;
    size_t n = a->body_len < WF_KEEP_BODY_MAX ? a->body_len : WF_KEEP_BODY_MAX;
    jadd(o, "status", json_object_new_int(a->status));
    if (a->body_len && a->body_len <= WF_KEEP_BODY_MAX &&
        memchr(a->body, '\0', a->body_len) == NULL)
        b = json_tokener_parse(a->body);
    jadd(o, "body", b ? b : json_object_new_string_len(a->body ? a->body : "", (int)n));
    return o;
}

/* A 2xx answer -> the final delivery state; *outputs (caller puts) its outputFields;
 * *expiry_ms the BLOCK duration (-1 = HubSpot's default). */
static enum wf_state sync_state(const struct wf_answer *a, struct json_object **outputs,
                                int64_t *expiry_ms, char *err, size_t errsz)
{
    struct json_object *o = NULL, *of, *st, *dur;
    enum wf_state s = WF_SUCCESS;
    *outputs = NULL;
    *expiry_ms = -1;
    if (a->body_len && memchr(a->body, '\0', a->body_len) == NULL)
        o = json_tokener_parse(a->body);
    if (!json_object_is_type(o, json_type_object) ||
        !json_object_object_get_ex(o, "outputFields", &of)) /* not JSON: success (§3.4) */
        goto out;
    if (!json_object_is_type(of, json_type_object)) {
        snprintf(err, errsz, "outputFields must be an object");
        s = WF_FAILED;
        goto out;
    }
    *outputs = json_object_get(of);
    if (!json_object_object_get_ex(of, "hs_execution_state", &st))
        goto out;
    const char *v = json_object_is_type(st, json_type_string) ? json_object_get_string(st) : "";
    if (strcmp(v, "SUCCESS") == 0) {
        s = WF_SUCCESS;
    } else if (strcmp(v, "FAIL_CONTINUE") == 0) {
        s = WF_FAIL_CONTINUE;
    } else if (strcmp(v, "BLOCK") == 0 || strcmp(v, "ASYNC") == 0) { /* ASYNC: §9 #10 */
        s = WF_BLOCKED;
        if (json_object_object_get_ex(of, "hs_expiration_duration", &dur) &&
            (!json_object_is_type(dur, json_type_string) ||
             (*expiry_ms = wf_duration_ms(json_object_get_string(dur))) <= 0)) {
            snprintf(err, errsz, "hs_expiration_duration %s is not an ISO-8601 duration",
                     json_object_to_json_string(dur));
            s = WF_FAILED;
        }
    } else {
        snprintf(err, errsz, "unknown hs_execution_state %s", json_object_to_json_string(st));
        s = WF_FAILED;
    }
out:
    json_object_put(o);
    return s;
}

/* Integer milliseconds, else -1 (an HTTP date or garbage is ignored: the backoff applies). */
static int64_t retry_after_ms(const char *v)
{
    int64_t ms = 0;
    if (!v || !*v)
        return -1;
    for (; *v; v++) {
        if (*v < '0' || *v > '9' || ms > 86400000LL * 7)
            return -1;
        ms = ms * 10 + (*v - '0');
    }
    return ms;
}

static int retryable(const struct wf_answer *a)
{
    if (a->err != HTTP_OK)
        return a->err != HTTP_ETOOBIG;
    return a->status == 429 || a->status >= 500;
}

static int64_t retry_delay(const struct wf_cfg *c, const struct wf_answer *a, int attempt)
{
    int64_t ra = a->status == 429 ? retry_after_ms(a->retry_after) : -1, d = c->base_ms;
    if (ra >= 0)
        return ra < c->max_ms ? ra : c->max_ms;
    for (int i = 1; i < attempt && d < c->max_ms; i++)
        d *= 2;
    return d < c->max_ms ? d : c->max_ms;
}

static void record(struct wf_exec *e, const struct wf_answer *a, int attempt)
{
    if (e->ndl == e->capdl && e->ndl < WF_DELIVERIES_MAX) {
        int cap = e->capdl ? e->capdl * 2 : 4;
        struct wf_delivery *d = realloc(e->dl, (size_t)cap * sizeof(*d));
        if (d) {
            e->dl = d;
            e->capdl = cap;
        }
    }
    if (e->ndl < e->capdl) {
        struct wf_delivery *d = &e->dl[e->ndl++];
        d->attempt = attempt;
        d->status = a->status;
        d->duration_ms = a->duration_ms;
        d->at_ms = a->at_ms;
        snprintf(d->error, sizeof(d->error), "%s", a->err == HTTP_OK ? "" : a->error);
    }
    if (a->err == HTTP_OK) {
        e->last_status = a->status;
        json_object_put(e->response);
        e->response = answer_json(a);
    }
}

/* The last word on an execution: its delivery state, and its callback closed (no
 * completion will be accepted) or re-timed (BLOCK). hs.lock (write) and wf.mu held. */
static void finish(struct wf_exec *e, enum wf_state s, struct json_object *outputs,
                   int64_t expiry_ms, const char *why)
{
    struct hs_cb *cb = hs_cb_find(e->id);
    int64_t now = clock_wall_ms();
    e->state = s;
    e->finished_ms = now;
    json_object_put(e->outputs);
    e->outputs = outputs;
    snprintf(e->error, sizeof(e->error), "%s", why ? why : "");
    if (!cb || cb->portal != e->portal)
        return;
    if (s == WF_BLOCKED)
        cb->expires_ms = now + (expiry_ms > 0 ? expiry_ms : (int64_t)hs_opt.cb_expiry_s * 1000);
    else
        cb->closed = 1;
}

/* After one delivery of e (owned by this thread: in_flight). */
static void deliver_done(struct wf_exec *e, const struct wf_answer *a, int attempt,
                         const struct wf_cfg *c)
{
    char why[WF_ERR_MAX] = "";
    struct json_object *outputs = NULL;
    int64_t expiry = -1;
    enum wf_state s = WF_FAILED;
    if (retryable(a) && attempt - 1 < c->attempts) {
        wf_lock();
        e->in_flight = 0;
        record(e, a, attempt);
        if (e->orphan) {
            wf_exec_free(e);
        } else {
            e->due_mono = clock_mono_ms() + retry_delay(c, a, attempt);
            heap_push(e);
        }
        wf_unlock();
        return;
    }
    if (retryable(a) && a->err == HTTP_OK)
        snprintf(why, sizeof(why), "gave up after %d deliveries: HTTP %d", attempt, a->status);
    else if (retryable(a))
        snprintf(why, sizeof(why), "gave up after %d deliveries: %.200s", attempt, a->error);
    else if (a->err == HTTP_ETOOBIG)
        snprintf(why, sizeof(why), "answer larger than %u bytes", WF_RESP_MAX);
    else if (a->err == HTTP_OK && a->status >= 200 && a->status < 300)
        s = sync_state(a, &outputs, &expiry, why, sizeof(why));
    else if (a->err == HTTP_OK)
        snprintf(why, sizeof(why), "HTTP %d from the actionUrl", a->status);
    pthread_rwlock_wrlock(&hs.lock);
    wf_lock();
    e->in_flight = 0;
    record(e, a, attempt);
    if (e->orphan) {
        wf_exec_free(e);
        json_object_put(outputs);
    } else {
        finish(e, s, outputs, expiry, why);
    }
    wf_unlock();
    pthread_rwlock_unlock(&hs.lock);
}

/* ---- optionsUrl calls ------------------------------------------------------------- */

struct wf_job *wf_job_submit(struct wf_call *call)
{
    struct wf_job *j = calloc(1, sizeof(*j));
    if (!j) {
        wf_call_release(call);
        return NULL;
    }
    j->call = *call;
    j->refs = 2;
    wf_lock();
    if (wf.stop) {
        j->done = 1;
        j->refs = 1;
        snprintf(j->error, sizeof(j->error), "the sandbox is shutting down");
    } else {
        if (wf.jobs_tail)
            wf.jobs_tail->next = j;
        else
            wf.jobs = j;
        wf.jobs_tail = j;
        threads_ensure();
        pthread_cond_broadcast(&wf.cv);
    }
    wf_unlock();
    return j;
}

int wf_job_result(struct wf_job *j, int *status, const char **body, size_t *body_len,
                  const char **error, int64_t *duration_ms)
{
    wf_lock();
    int done = j->done;
    if (done) {
        *status = j->status;
        *body = j->body ? j->body : "";
        *body_len = j->body_len;
        *error = j->error;
        *duration_ms = j->duration_ms;
    }
    wf_unlock();
    return done;
}

void wf_job_release(struct wf_job *j)
{
    if (!j)
        return;
    wf_lock();
    int last = --j->refs == 0;
    wf_unlock();
    if (!last)
        return;
    wf_call_release(&j->call);
    free(j->body);
    free(j);
}

static void run_job(struct http_client **hc, struct http_response *r, struct wf_job *j,
                    int64_t timeout_ms)
{
    struct wf_answer a;
    post_signed(hc, r, &j->call, timeout_ms, &a);
    char *body = a.err == HTTP_OK ? malloc(a.body_len + 1) : NULL;
    if (body) {
        memcpy(body, a.body, a.body_len);
        body[a.body_len] = '\0';
    }
    wf_lock();
    j->status = a.status;
    j->body = body;
    j->body_len = body ? a.body_len : 0;
    j->duration_ms = a.duration_ms;
    snprintf(j->error, sizeof(j->error), "%s", a.err == HTTP_OK ? "" : a.error);
    j->done = 1;
    wf_unlock();
    wf_job_release(j);
}

/* ---- the delivery threads ------------------------------------------------------------ */

static void *wf_main(void *arg)
{
    int idx = (int)(intptr_t)arg;
    struct http_client *hc = NULL;
    struct http_response r;
    http_response_init(&r);
    wf_lock();
    while (!wf.stop) {
        int64_t now = clock_mono_ms();
        struct wf_cfg c = wf.cfg;
        if (idx < wf.want && wf.jobs) {
            struct wf_job *j = wf.jobs;
            if (!(wf.jobs = j->next))
                wf.jobs_tail = NULL;
            wf_unlock();
            run_job(&hc, &r, j, c.timeout_ms);
            wf_lock();
        } else if (idx < wf.want && wf.nheap && wf.heap[0]->due_mono <= now) {
            struct wf_exec *e = heap_pop();
            struct wf_answer a;
            int attempt = e->ndl + 1;
            e->in_flight = 1;
            wf_unlock();
            post_signed(&hc, &r, &e->call, c.timeout_ms, &a);
            deliver_done(e, &a, attempt, &c);
            wf_lock();
        } else if (idx < wf.want && wf.nheap) {
            struct timespec ts;
            clock_abstime(CLOCK_MONOTONIC, wf.heap[0]->due_mono - now, &ts);
            pthread_cond_timedwait(&wf.cv, &wf.mu, &ts);
        } else {
            pthread_cond_wait(&wf.cv, &wf.mu);
        }
    }
    wf_unlock();
    http_response_release(&r);
    http_client_free(hc);
    return NULL;
}

/* ---- the record ---------------------------------------------------------------------- */

static const char *const state_names[] = {"DELIVERING", "BLOCKED", "SUCCESS", "FAIL_CONTINUE",
                                          "FAILED"};

static const struct hs_cb *exec_cb(const struct wf_exec *e)
{
    const struct hs_cb *cb = hs_cb_find(e->id);
    return cb && cb->portal == e->portal ? cb : NULL;
}

const char *wf_state_name(const struct wf_exec *e)
{
    const struct hs_cb *cb = exec_cb(e);
    struct json_object *st;
    if (cb && cb->completed && json_object_object_get_ex(cb->outputs, "hs_execution_state", &st))
        return strcmp(json_object_get_string(st), "FAIL_CONTINUE") == 0 ? "FAIL_CONTINUE"
                                                                        : "SUCCESS";
    if (e->state == WF_BLOCKED && cb && clock_wall_ms() >= cb->expires_ms)
        return "EXPIRED";
    return state_names[e->state];
}

static struct json_object *copy_or_null(struct json_object *v)
{
    struct json_object *c = NULL;
    if (v && json_object_deep_copy(v, &c, NULL) != 0)
        c = NULL;
    return c;
}

struct json_object *wf_exec_render(const struct wf_exec *e, int with_request)
{
    const struct hs_cb *cb = exec_cb(e);
    struct json_object *o = json_object_new_object(), *dl = json_object_new_array();
    char num[32];
    jadd(o, "callbackId", jstr(e->id));
    jadd(o, "portalId", json_object_new_int64(e->portal));
    jadd(o, "appId", json_object_new_int64(e->app_id));
    snprintf(num, sizeof(num), "%lld", (long long)e->def_id);
    jadd(o, "definitionId", jstr(num));
    jadd(o, "state", jstr(wf_state_name(e)));
    jadd(o, "delivery_state", jstr(state_names[e->state]));
    jadd(o, "outputFields", copy_or_null(cb && cb->completed ? cb->outputs : e->outputs));
    if (e->error[0])
        jadd(o, "error", jstr(e->error));
    for (int i = 0; i < e->ndl; i++) {
        const struct wf_delivery *d = &e->dl[i];
        struct json_object *x = json_object_new_object();
        jadd(x, "attempt", json_object_new_int(d->attempt));
        jadd(x, "status", json_object_new_int(d->status));
        jadd(x, "error", d->error[0] ? jstr(d->error) : NULL);
        jadd(x, "duration_ms", json_object_new_int64(d->duration_ms));
        jadd(x, "at_ms", json_object_new_int64(d->at_ms));
        json_object_array_add(dl, x);
    }
    jadd(o, "deliveries", dl);
    jadd(o, "completions", json_object_new_int(cb ? cb->completions : 0));
    jadd(o, "refused_completions", json_object_new_int(cb ? cb->rejected : 0));
    if (cb && cb->completed) {
        jadd(o, "completedAt", jiso(cb->completed_ms));
        jadd(o, "completedVia", jstr(cb->via));
    }
    if (cb && e->state == WF_BLOCKED)
        jadd(o, "expiresAt", jiso(cb->expires_ms));
    jadd(o, "enrolledAt", jiso(e->enrolled_ms));
    if (with_request)
        jadd(o, "request", copy_or_null(e->request));
    jadd(o, "response", copy_or_null(e->response));
    return o;
}

/* ---- ISO-8601 durations ------------------------------------------------------------------ */

int64_t wf_duration_ms(const char *s)
{
    static const struct {
        char unit;
        int time;
        int64_t ms;
    } units[] = {{'Y', 0, 365LL * 86400000},
                 {'M', 0, 30LL * 86400000},
                 {'W', 0, 7LL * 86400000},
                 {'D', 0, 86400000},
                 {'H', 1, 3600000},
                 {'M', 1, 60000},
                 {'S', 1, 1000}};
    int64_t total = 0;
    size_t next = 0; /* units must come in order */
    int in_time = 0, any = 0, any_time = 0;
    if (!s || *s++ != 'P')
        return -1;
    while (*s) {
        if (*s == 'T') {
            if (in_time)
                return -1;
            in_time = 1;
            s++;
            continue;
        }
        int64_t n = 0;
        const char *d = s;
        for (; *s >= '0' && *s <= '9'; s++) {
            if (n > 1000000)
                return -1;
            n = n * 10 + (*s - '0');
        }
        if (s == d)
            return -1;
        while (next < sizeof(units) / sizeof(units[0]) &&
               (units[next].unit != *s || units[next].time != in_time))
            next++;
        if (next == sizeof(units) / sizeof(units[0]))
            return -1;
        total += n * units[next++].ms;
        any = 1;
        any_time |= in_time;
        s++;
    }
    if (!any || (in_time && !any_time))
        return -1;
    return total;
}
