/* apierr.h - how an upstream call (HubSpot, QuickBooks, OAuth) failed, classified.
 *
 * Every client call returns 0 or -1 and, on -1, fills a struct api_error. The class tells
 * the pipeline what to do; the code is what the result will say if this failure ends the
 * event; the rest is evidence for the operator (status, upstream id, message).
 *
 * Ownership: plain value type, no pointers; copy freely. Thread-safety: none needed.
 * The message never contains tokens or secrets (clients build it from status, fault
 * codes and the redacted upstream message; see log_redact in common/log.h).
 */
#ifndef HSQB_APIERR_H
#define HSQB_APIERR_H

#include <stdint.h>

#include "worker/event.h"

enum api_class {
    API_OK = 0,
    API_TRANSIENT, /* connect/timeout, 5xx, HubSpot 423, dropped connection: retry */
    API_THROTTLED, /* 429: retry after retry_after_ms, back off the whole tenant */
    API_AUTH,      /* 401/403 that a token refresh could not fix: permanent for now */
    API_NOT_FOUND, /* 404 / object gone: permanent (OBJECT_NOT_FOUND unless the caller maps) */
    API_PERMANENT, /* validation and business faults: permanent */
};

/* Which upstream answered (or failed to): the pipeline's circuit breaker charges a
 * failure to that API's tenant (the portal for HubSpot, the realm for QBO and OAuth). */
enum api_source {
    API_SOURCE_NONE = 0, /* not an upstream failure (a rule of ours, a local fault) */
    API_SOURCE_HUBSPOT,
    API_SOURCE_QBO,
    API_SOURCE_OAUTH, /* Intuit's token endpoint */
};

#define API_MSG_MAX         512
#define API_UPSTREAM_ID_MAX 96

struct api_error {
    enum api_class cls;
    enum api_source source; /* the client that reported it (api_error_tag); NONE otherwise */
    enum hsqb_error code;   /* result error code if this failure ends the event */
    int http_status;        /* 0 when the request never got a response */
    int64_t retry_after_ms; /* from Retry-After / rate-limit policy; 0 when none */
    char upstream_id[API_UPSTREAM_ID_MAX]; /* intuit_tid or HubSpot correlationId; "" */
    char qbo_fault_code[16];               /* QBO Fault.Error.code, e.g. "6240"; "" */
    char message[API_MSG_MAX];             /* human-readable, redacted */
};

/* Reset to API_OK with empty strings, source API_SOURCE_NONE. */
void api_error_clear(struct api_error *e);
/* Fill class, code, status and a printf-formatted message (redacted and truncated).
 * A new failure is ours until a client names itself: source becomes API_SOURCE_NONE, so
 * a struct reused across calls never carries an earlier call's source. */
void api_error_set(struct api_error *e, enum api_class cls, enum hsqb_error code, int status,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Return rc; when rc < 0 and no deeper client named the failure (source NONE), name src.
 * Every public HubSpot, QBO and OAuth call ends with it, so each of their failures names
 * its API, and a failure passed through keeps the source of the client that reported it
 * (a token-endpoint failure during a QBO call stays API_SOURCE_OAUTH). */
int api_error_tag(struct api_error *e, enum api_source src, int rc);
/* 1 when the pipeline may retry the same step (TRANSIENT, THROTTLED). */
int api_error_retryable(const struct api_error *e);
const char *api_class_name(enum api_class c);

#endif
