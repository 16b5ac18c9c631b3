/* ingress_internal.h - what the ingress's three files share, and nothing else includes
 * (worker/ingress.h is its API): a request's state (struct req) and the server's (struct
 * ingress), and the functions one file calls in another.
 *
 *   ingress.c         the daemon: start, MHD's callbacks (a request's first call, its body,
 *                     its last call), the drain at stop
 *   ingress_answer.c  a request's answer: queued at once, or after it waited suspended for
 *                     Kafka's delivery report or a job thread (options fetch, connect page)
 *   ingress_check.c   what a request must carry before its body is read: route, method,
 *                     content type, length, a signature header; its body gathered
 *
 * Locking: in->mu guards the counters, the waiting list and every req's state once it may
 * wait (its references, suspended, resumed); in->job_mu the job queue.
 */
#ifndef HSQB_INGRESS_INTERNAL_H
#define HSQB_INGRESS_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "worker/event.h"
#include "worker/ingress.h"
#include "worker/ingress_options.h"
#include "worker/ingress_sign.h"

#define INGRESS_MAX_DEFS     64
#define INGRESS_MSG_MAX      512
#define INGRESS_JOB_THREADS  INGRESS_OPTIONS_CONCURRENCY /* each may call a vendor */
#define INGRESS_ACTIONS_PATH "/hubspot/actions"
#define INGRESS_OPTIONS_PATH "/hubspot/options"
#define INGRESS_FORM_MAX     (8 * 1024) /* body of a connect page's form */

enum route { ROUTE_ACTIONS, ROUTE_OPTIONS, ROUTE_CONNECT, ROUTE_OTHER };

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

/* ---- ingress_answer.c ---------------------------------------------------------------- */

/* Drops one reference; the caller holds in->mu. Returns 1 when r was freed. */
int ingress_req_unref_locked(struct req *r);
/* r's answer: status and a JSON body (copied). */
void ingress_req_set_answer(struct req *r, unsigned status, const char *json, size_t len);
/* {"message": msg} as r's answer; on a connect route, a page saying msg. */
void ingress_req_set_message(struct req *r, unsigned status, const char *msg);
/* Queues r's answer on c (and counts it in the metrics). */
enum MHD_Result ingress_queue_answer(struct req *r, struct MHD_Connection *c);
/* Suspends c and hands r's event to Kafka; the delivery report answers it. */
enum MHD_Result ingress_start_action(struct ingress *in, struct req *r, struct MHD_Connection *c);
/* Suspends c and queues r for a job thread (an options fetch, a connect page); answers
 * 503 at once when the ingress has no options (or no connect) service. */
enum MHD_Result ingress_answer_options(struct ingress *in, struct req *r, struct MHD_Connection *c);
enum MHD_Result ingress_answer_connect(struct ingress *in, struct req *r, struct MHD_Connection *c);
/* Starts the job threads (when there is an options or connect service): 0, or -1 with
 * errstr (the threads started are left for ingress_jobs_stop). */
int ingress_jobs_start(struct ingress *in, char *errstr, size_t errsz);
/* Lets the job threads finish what is queued (answered 503 once stopping), joins them. */
void ingress_jobs_stop(struct ingress *in);

/* ---- ingress_check.c ----------------------------------------------------------------- */

/* The first call of a request: route, method, type, declared length and a signature
 * header. 0 to go on reading the body, -1 when r already holds the answer. */
int ingress_check_headers(struct ingress *in, struct req *r, struct MHD_Connection *c,
                          const char *url, const char *method);
/* The signature headers c carries (borrowed from MHD). */
struct ingress_sig_headers ingress_signature_headers(struct MHD_Connection *c);
/* Logs a refused request (rate-limited by the signer) with the client's address. */
void ingress_log_refusal(struct ingress *in, struct MHD_Connection *c, const char *what);
/* The largest body r may carry. */
size_t ingress_body_max(const struct ingress *in, const struct req *r);
/* Appends n bytes of r's body (past ingress_body_max, r->too_large is set and they are
 * dropped). 0, or -1 out of memory. */
int ingress_append_body(struct ingress *in, struct req *r, const char *data, size_t n);

#endif
