/* workflows.h - HubSpot's workflow engine inside the sandbox, shared by workflows.c
 * (executions, the delivery threads, HubSpot's retry policy, the execution record) and
 * workflows_admin.c (the /_sandbox/hubspot/ routes that enrol objects and call an
 * optionsUrl, and build what HubSpot sends).
 *
 * Owns: every execution (struct wf_exec) from enrolment until a reset or shutdown, the
 * min-heap of due deliveries, the queue of optionsUrl calls and the delivery threads with
 * one libcurl client each (keep-alive per thread).
 *
 * An execution's delivery state (wf_exec.state), driven by the synchronous answers:
 *
 *   DELIVERING --2xx BLOCK/ASYNC--> BLOCKED ...(expiry, from the callback)
 *       |  ^    --2xx SUCCESS, no state--> SUCCESS
 *       |  |    --2xx FAIL_CONTINUE--> FAIL_CONTINUE
 *       |  |    --4xx (not 429), 3xx, a bad answer--> FAILED
 *       +--+ 5xx, 429, timeout, connection error: retry (wf_deliver_done), until
 *            workflow_retry_attempts retries were spent --> FAILED
 *
 * The state shown to tests (wf_state_name) also reads the callback store: a completion
 * through /automation/v4/actions/callbacks/... wins (SUCCESS / FAIL_CONTINUE, whenever it
 * came), and BLOCKED past the callback's expiry is EXPIRED.
 *
 * Locking: wf.mu (workflows.c) guards everything here. Lock order: hs.lock, then wf.mu;
 * nobody takes hs.lock while holding wf.mu. The final transition of an execution takes
 * both (write), because it also closes or re-times its callback. The strings of an
 * execution's call (url, body, secret) never change after enrolment, so a delivery
 * thread reads them without the lock while it owns the execution (in_flight).
 */
#ifndef HSQB_SANDBOX_WORKFLOWS_H
#define HSQB_SANDBOX_WORKFLOWS_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#define WF_ID_MAX        96          /* callbackId */
#define WF_ERR_MAX       256         /* a delivery's error text */
#define WF_RESP_MAX      (1u << 20)  /* an answer read from an actionUrl/optionsUrl */
#define WF_KEEP_BODY_MAX (64u << 10) /* answer body kept in an execution record */
#define WF_EXECS_MAX     1000000     /* executions kept, all portals */

enum wf_state { WF_DELIVERING, WF_BLOCKED, WF_SUCCESS, WF_FAIL_CONTINUE, WF_FAILED };
enum { WF_SIGN_V2 = 1, WF_SIGN_V3 = 2 }; /* wf_call.sign bits */

/* One signed POST the engine makes (immutable once queued). */
struct wf_call {
    char *url;  /* signed exactly as written */
    char *body; /* the JSON sent, byte for byte */
    size_t body_len;
    char *secret; /* the app's client secret */
    int sign;     /* WF_SIGN_* bits; 0 = unsigned */
};

/* Free the call's strings (the struct itself is embedded). */
void wf_call_release(struct wf_call *call);

struct wf_delivery {
    int attempt;         /* 1 = first */
    int status;          /* HTTP status; 0 = no answer (transport error) */
    int64_t duration_ms; /* monotonic */
    int64_t at_ms;       /* wall clock, when it started */
    char error[WF_ERR_MAX];
};

struct wf_exec {
    char id[WF_ID_MAX]; /* callbackId */
    int64_t portal, app_id, def_id, enrolled_ms, finished_ms;
    struct wf_call call;
    struct json_object *request; /* the parsed request, for the record (wf.mu) */
    enum wf_state state;
    struct wf_delivery *dl;
    int ndl, capdl;
    int64_t due_mono;             /* next delivery, while DELIVERING and not in flight */
    int in_flight;                /* a delivery thread owns the call right now */
    int orphan;                   /* dropped by a reset while in flight: the thread frees it */
    int last_status;              /* of the last answer (0: none) */
    struct json_object *response; /* last answer: {"status","body"} or NULL */
    struct json_object *outputs;  /* outputFields of the final synchronous answer */
    char error[WF_ERR_MAX];       /* why FAILED */
    struct wf_exec *hnext;        /* hash chain */
};

/* ---- workflows.c -------------------------------------------------------------------- */

/* Queue a new execution for delivery now; takes ownership of e (also on failure, when it
 * is freed). -1: the id is taken or the store is full (errstr says which). Caller holds
 * hs.lock for writing (the callback was just registered). */
int wf_exec_add(struct wf_exec *e, char *errstr, size_t errsz);
void wf_exec_free(struct wf_exec *e);

/* Execution lookups and listing; caller holds hs.lock (either mode) and wf_lock(). */
void wf_lock(void);
void wf_unlock(void);
struct wf_exec *wf_exec_find(const char *id);
size_t wf_exec_count(void);
struct wf_exec *wf_exec_at(size_t i); /* enrolment order */
/* The state a test sees (see the diagram above): "DELIVERING", "BLOCKED", "EXPIRED",
 * "SUCCESS", "FAIL_CONTINUE", "FAILED". */
const char *wf_state_name(const struct wf_exec *e);
/* GET /_sandbox/hubspot/callbacks/{id} document; with_request adds "request". Caller
 * puts. */
struct json_object *wf_exec_render(const struct wf_exec *e, int with_request);

/* An optionsUrl call run by a delivery thread (no retries). Refcounted: the queue and the
 * waiting admin request each hold one reference. */
struct wf_job;
/* Queue a call (takes ownership of its strings). NULL when out of memory. */
struct wf_job *wf_job_submit(struct wf_call *call);
/* 1 when done, filling *status (0 = transport error), *body (borrowed until release; may
 * be "" ) and *error; 0 while pending. Takes wf.mu. */
int wf_job_result(struct wf_job *j, int *status, const char **body, size_t *body_len,
                  const char **error, int64_t *duration_ms);
void wf_job_release(struct wf_job *j);

/* ISO-8601 duration ("P1W", "PT1H", "P1WT1H", "P2DT30M") -> milliseconds: Y = 365 days,
 * M = 30 days, W, D, and after T: H, M, S; integers only. -1 when malformed. */
int64_t wf_duration_ms(const char *s);

#endif
