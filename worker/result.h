/* result.h - the outcome of one action event: the result CloudEvent (hsqb.results) and
 * the header set of its dead-letter record (hsqb.actions.dlq).
 *
 * Owns: nothing long-lived. result_build() writes JSON into a caller's jbuf; the DLQ
 * header set owns the copies of the header values it holds until its release.
 *
 * Contracts implemented exactly: schemas/result-event.schema.json (result), and
 * schemas/headers.md (DLQ and the retry headers read back from an input).
 * Invariants of every result result_build() accepts to write:
 *  - type and data.status agree; success carries qbo{} and no error{}, failure the
 *    reverse; every failure but INVALID_EVENT names action/input_id/portal_id/object;
 *  - id = "<input id>:result", or "<topic>:<partition>:<offset>:result" when the input id
 *    is unknown (undecodable input), and subject = the input key when the subject is
 *    known;
 *  - error.message is one line, non-empty, at most RESULT_MESSAGE_MAX bytes (so at most
 *    that many code points), with secrets redacted (log_redact);
 *  - QBO ids are digit strings; doc_number longer than 21 characters is written null;
 *    money is integer cents; times are RFC 3339 UTC with milliseconds;
 *  - data.complete_callback is true or absent, and present only with input_id and
 *    portal_id (what a completion needs).
 * Anything else (a non-digit QBO id, a paid invoice without payment_id, an empty item
 * name) is refused with -1 so a bug never reaches the topic as an invalid result.
 *
 * Thread-safety: all functions are reentrant; no shared state.
 */
#ifndef HSQB_RESULT_H
#define HSQB_RESULT_H

#include <stddef.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

#include "common/json.h"
#include "worker/event.h"
#include "worker/producer.h"

#define RESULT_MESSAGE_MAX     2000         /* bytes of error.message (schema: 2000 code points) */
#define RESULT_DLQ_MESSAGE_MAX 1024         /* bytes of the hsqb-error-message header */
#define RESULT_UPSTREAM_ID_MAX 200          /* error.upstream_id */
#define RESULT_DOC_NUMBER_MAX  21           /* qbo.doc_number */
#define RESULT_QBO_ID_MAX      32           /* digits of a QBO id */
#define RESULT_ID_MAX          300          /* the result's CloudEvent id */
#define RESULT_MAX_BYTES       (256 * 1024) /* a whole result; well under REDIS_MAX_RESULT */
#define RESULT_CONTENT_TYPE    "application/cloudevents+json"

/* What the event was about. For an undecodable input everything but input_id (which may
 * be NULL too) is unknown: set known = 0. All strings borrowed. */
struct result_subject {
    int known;            /* 1: action, portal_id, object_type, object_id and key are valid */
    const char *input_id; /* may be NULL when the input id could not be read */
    enum hsqb_action action;
    int64_t portal_id;
    enum hsqb_object_type object_type;
    int64_t object_id;
    const char *key;      /* "<portal>:<TYPE>:<object>"; written as subject */
    const char *realm_id; /* NULL when unknown (written for failures only when set) */
};

/* Fill s from a decoded event (everything borrowed from ev). */
void result_subject_from_event(struct result_subject *s, const struct action_event *ev);

struct result_item {
    const char *id;   /* QBO item id, digits */
    const char *name; /* non-empty */
};

/* Success: the QBO document. All borrowed. */
struct result_qbo {
    const char *entity;      /* "Invoice", "Estimate", "SalesReceipt", ... */
    const char *id;          /* digits */
    const char *doc_number;  /* NULL -> null; longer than 21 -> null */
    int64_t total_cents;     /* >= 0 */
    const char *currency;    /* three upper-case letters, e.g. "USD" */
    const char *customer_id; /* NULL -> null (expense) */
    int created_customer;
    const struct result_item *created_items; /* may be NULL when ncreated_items == 0 */
    size_t ncreated_items;
    const char *payment_id; /* create_paid_invoice only (required there); else NULL */
};

/* Failure. All borrowed. */
struct result_error {
    enum hsqb_error code;
    const char *message;      /* sanitised as described above; NULL/"" -> the code name */
    int http_status;          /* 100..599, else written null */
    const char *upstream_id;  /* NULL or "" -> null; truncated to 200 bytes */
    const char *details_json; /* a serialised JSON object written as error.details, or
                                 NULL to omit (e.g. PRODUCT_NOT_FOUND's line_items) */
};

/* One result. Exactly one of qbo / error is non-NULL. */
struct result_info {
    /* 1 writes data.complete_callback: true, the marker the callback completer
     * (worker/callbacks.h) acts on; ignored when the subject is unknown (no execution to
     * complete). Set it with result_callback_wanted(). */
    int complete_callback;
    const char *worker_source; /* CloudEvents source, e.g. "hsqb-worker://<group>" */
    struct result_subject subject;
    const char *topic; /* where the input was consumed */
    int32_t partition;
    int64_t offset;
    int attempts;            /* >= 1, this one included */
    int64_t duration_ms;     /* >= 0 */
    int64_t completed_at_ms; /* wall clock, epoch ms: time and completed_at */
    const struct result_qbo *qbo;
    const struct result_error *error;
};

/* ---- the callback marker ------------------------------------------------------------- */

/* The setting callbacks.complete: whose HubSpot workflow executions are completed. */
enum result_callbacks {
    RESULT_CALLBACKS_OFF = 0, /* "off", "false": none */
    RESULT_CALLBACKS_INGRESS, /* "ingress": events `hsqb-worker ingress` produced */
    RESULT_CALLBACKS_ALL,     /* "all", "true": every event */
};

/* The CloudEvents source of every event the ingress produces starts with this
 * ("hsqb-ingress://<host>/portal/<portalId>/workflow/<workflowId>"). */
#define RESULT_INGRESS_SOURCE_PREFIX "hsqb-ingress://"

/* The mode a callbacks.complete value names (s may be NULL; anything unknown is off: the
 * settings table admits only the five spellings). */
enum result_callbacks result_callbacks_mode(const char *s);

/* 1 when, in mode m, the execution behind an event whose CloudEvents source is source
 * (may be NULL) must be completed: its result carries the marker. */
int result_callback_wanted(enum result_callbacks m, const char *source);

/* Write the result CloudEvent into jb (which the caller initialised; its content is
 * replaced). Returns 0, or -1 with errstr when info breaks the contract or jb's cap is
 * hit (nothing usable in jb then). */
int result_build(const struct result_info *info, struct jbuf *jb, char *errstr, size_t errsz);

/* Copy text into out (outsz bytes) as a one-line message: CR/LF/TAB become spaces,
 * secrets are redacted, the cut falls on a UTF-8 boundary, at most outsz - 1 bytes.
 * Empty text gives "". Returns out. */
char *result_one_line(const char *text, char *out, size_t outsz);

/* ---- headers read back from an input (retry and replayed messages) ------------- */

/* The largest hsqb-replay-count read (a larger value is malformed); replay stops
 * counting there rather than write a count the worker would not read. */
#define RESULT_REPLAY_COUNT_MAX 999999

/* Values of the hsqb-* headers an input may carry (schemas/headers.md). Absent or
 * malformed headers read as 0 / "" (a malformed value is ignored, never fatal). */
struct result_inbound_meta {
    int attempts_before;        /* hsqb-attempts: attempts made before this delivery */
    int64_t first_failure_ms;   /* hsqb-first-failure; 0 when absent */
    char original_topic[256];   /* hsqb-original-topic; "" when absent */
    int32_t original_partition; /* valid when original_topic[0] */
    int64_t original_offset;
    int64_t original_timestamp_ms;
    int replayed;     /* hsqb-replay-of present */
    int replay_count; /* hsqb-replay-count (0..RESULT_REPLAY_COUNT_MAX); 0 when absent */
};

/* Read hdrs (may be NULL: all defaults). Never fails. */
void result_inbound_meta_read(const rd_kafka_headers_t *hdrs, struct result_inbound_meta *m);

/* Where an event was first consumed, as hsqb-original-* header text: the input's own
 * (meta, when it came through the retry topic), else this delivery's topic, partition,
 * offset and timestamp (negative values as 0). */
struct result_original {
    char topic[256], partition[16], offset[24], timestamp[24];
};
void result_original_fill(const struct result_inbound_meta *meta, const char *topic,
                          int32_t partition, int64_t offset, int64_t timestamp_ms,
                          struct result_original *out);

/* ---- the DLQ record's headers ------------------------------------------------------ */

struct result_dlq_info {
    const char *topic; /* where this delivery was consumed */
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;              /* the message timestamp (-1/0 when none) */
    const rd_kafka_headers_t *in_hdrs; /* input headers, may be NULL */
    enum hsqb_error code;
    const char *message;      /* sanitised to one line of <= RESULT_DLQ_MESSAGE_MAX bytes */
    int attempts;             /* >= 1 */
    int64_t first_failure_ms; /* 0: now_ms */
    int64_t now_ms;           /* wall clock: hsqb-last-failure */
    const char *group;        /* consumer group id */
    const char *event_id;     /* NULL when the input id is unknown */
};

/* The headers of one DLQ record into *out (any previous content is not freed): the
 * input's own headers minus every name this set writes (so each name occurs once:
 * "writers replace rather than append"), then hsqb-original-* (the input's own
 * hsqb-original-* when it came through the retry topic, else where it was consumed),
 * hsqb-error-code, hsqb-error-message, hsqb-attempts, hsqb-first-failure,
 * hsqb-last-failure, hsqb-consumer-group and hsqb-event-id (absent when the id is
 * unknown). Returns 0, or -1 with errstr (allocation failure). Release with
 * kafka_header_set_release(). */
int result_dlq_headers_build(const struct result_dlq_info *info, struct kafka_header_set *out,
                             char *errstr, size_t errsz);

#endif
