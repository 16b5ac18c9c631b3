/* event.h - the action event on hsqb.actions: decoding, validation and its vocabulary.
 *
 * Owns: the decoded form of one input event (struct action_event) and the closed
 * vocabularies of the message contract: actions, enrolled object types, the inputs'
 * enums, and the result error codes. schemas/action-event.schema.json is the contract;
 * event_decode() implements exactly its rules plus the ones JSON Schema cannot express
 * (schemas/README.md, "Rules outside the schema"), and tests/schema/test_examples.py
 * holds the two to agreement on every example file.
 *
 * Invariants of a decoded event: every string is a NUL-terminated copy owned by the
 * event (nothing borrows from the input buffer or the parse); id is 1..200 visible
 * ASCII characters; ids are in 1..INT64_MAX; object_type is accepted by action; the
 * inputs the action requires are set; key is "<portal_id>:<OBJECT_TYPE>:<object_id>"
 * with the canonical upper-case type name, whatever spelling the event used.
 *
 * Thread-safety: all functions are reentrant; the tables are constant. A struct
 * action_event is plain data and may move between threads.
 */
#ifndef HSQB_EVENT_H
#define HSQB_EVENT_H

#include <stddef.h>
#include <stdint.h>

#define EVENT_MAX_BYTES  1048576 /* whole message value: 1 MiB */
#define EVENT_MAX_DEPTH  64      /* JSON nesting; the event object is depth 1 */
/* JSON values an event may hold: every value of valid JSON takes two bytes at least with
 * its separator, so no event of EVENT_MAX_BYTES is refused for its count. The decoder's
 * own cap, independent of http.max_response_bytes (which caps the vendors' answers). */
#define EVENT_MAX_VALUES (EVENT_MAX_BYTES / 2 + 2)
#define EVENT_ID_MAX     200     /* characters of id / data.callbackId */
#define EVENT_SOURCE_MAX 1024    /* characters of the CloudEvents source */
#define EVENT_TIME_MAX   40      /* bytes of an RFC 3339 time (9 fraction digits) */
/* The instants a time may name, in UTC: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z
 * (four-digit years; a local time's offset may not carry it outside). */
#define EVENT_TIME_MIN_MS (-62135596800000LL)
#define EVENT_TIME_MAX_MS 253402300799999LL
#define EVENT_REALM_MAX   32  /* digits of a QBO realm id */
#define EVENT_NAME_MAX    500 /* code points of an account/term/vendor input */
#define EVENT_KEY_MAX     64  /* bytes of a key, NUL included (longest is 57) */
#define EVENT_ERRSTR_SIZE 256 /* enough for any event_decode message */

/* ---- vocabularies ---------------------------------------------------------------- */

enum hsqb_action {
    ACTION_CREATE_INVOICE,
    ACTION_CREATE_ESTIMATE,
    ACTION_CREATE_SALES_RECEIPT,
    ACTION_CREATE_PAID_INVOICE,
    ACTION_CREATE_EXPENSE,
    ACTION_CREATE_REFUND_RECEIPT,
    ACTION_COUNT
};

/* "create_invoice" ... (the result's data.action); NULL for an out-of-range value. */
const char *event_action_name(enum hsqb_action a);
/* "hsqb.action.create_invoice" ... (the event type); NULL for an out-of-range value. */
const char *event_action_type(enum hsqb_action a);
/* The QBO entity the action creates: "Invoice", "Estimate", "SalesReceipt", "Invoice"
 * (paid invoice: plus a Payment), "Purchase", "RefundReceipt". */
const char *event_action_qbo_entity(enum hsqb_action a);
/* Parse a short name or a full type, exactly (case-sensitive). s may be NULL.
 * Returns 0 and sets *out, or -1. */
int event_action_from_name(const char *s, enum hsqb_action *out);
int event_action_from_type(const char *s, enum hsqb_action *out);

enum hsqb_object_type { OBJECT_DEAL, OBJECT_QUOTE, OBJECT_COMMERCE_PAYMENT, OBJECT_TYPE_COUNT };

/* Canonical name used in keys and results: "DEAL", "QUOTE", "COMMERCE_PAYMENT". */
const char *object_type_name(enum hsqb_object_type t);
/* HubSpot CRM path segment: "deals", "quotes", "commerce_payments". */
const char *object_type_path(enum hsqb_object_type t);
/* Accepts each type's three spellings: name ("DEAL"), type id ("0-3", "0-14", "0-101")
 * and path name ("deals"), case-sensitive. s may be NULL. 0 and *out, or -1. */
int object_type_parse(const char *s, enum hsqb_object_type *out);
/* 1 if the action may run on an enrolled object of this type: invoice and estimate on
 * deals and quotes, sales receipt on all three, the others on payments only. */
int event_action_accepts(enum hsqb_action a, enum hsqb_object_type t);

enum customer_source {
    CUSTOMER_FIRST_ASSOCIATED_CONTACT, /* default: the lowest associated contact id */
    CUSTOMER_CONTACT_ID,               /* "contact:<id>" */
};

enum expense_payment_type { PAYMENT_TYPE_CASH, PAYMENT_TYPE_CHECK, PAYMENT_TYPE_CREDIT_CARD };
/* QBO Purchase.PaymentType spelling: "Cash", "Check", "CreditCard". */
const char *payment_type_name(enum expense_payment_type p);

enum expense_amount_source { AMOUNT_SOURCE_FEES, AMOUNT_SOURCE_NET, AMOUNT_SOURCE_TOTAL };
/* "fees", "net", "total". */
const char *amount_source_name(enum expense_amount_source s);

/* Result error codes: the closed list of result-event.schema.json, documented with
 * meanings in schemas/README.md. */
enum hsqb_error {
    HSQB_ERR_INVALID_EVENT,
    HSQB_ERR_UNSUPPORTED_OBJECT_TYPE,
    HSQB_ERR_OBJECT_NOT_FOUND,
    HSQB_ERR_NO_CONTACT,
    HSQB_ERR_NO_LINE_ITEMS,
    HSQB_ERR_PRODUCT_NOT_FOUND,
    HSQB_ERR_TERM_NOT_FOUND,
    HSQB_ERR_ACCOUNT_NOT_FOUND,
    HSQB_ERR_VENDOR_NOT_FOUND,
    HSQB_ERR_TAXABLE_ITEMS_NOT_ALLOWED,
    HSQB_ERR_NOT_FULLY_REFUNDED,
    HSQB_ERR_PAYMENT_NOT_SUCCEEDED,
    HSQB_ERR_ZERO_AMOUNT,
    HSQB_ERR_QUOTE_STATUS_NOT_ALLOWED,
    HSQB_ERR_QUOTE_TOTAL_MISMATCH,
    HSQB_ERR_CURRENCY_NOT_SUPPORTED,
    HSQB_ERR_QBO_SALES_TAX_OFF,
    HSQB_ERR_QBO_TOTAL_MISMATCH,
    HSQB_ERR_QBO_RECORD_INACTIVE,
    HSQB_ERR_QBO_COMPANY_NOT_US,
    HSQB_ERR_QBO_REAUTH_REQUIRED,
    HSQB_ERR_QBO_VALIDATION,
    HSQB_ERR_HUBSPOT_AUTH,
    HSQB_ERR_HUBSPOT_VALIDATION,
    HSQB_ERR_REALM_NOT_ALLOWED,    /* the realm is not bound to the event's portal */
    HSQB_ERR_PORTAL_NOT_CONNECTED, /* the portal has no HubSpot credentials */
    HSQB_ERR_BUDGET_EXCEEDED,      /* more lines or QBO writes than budget.* allows */
    HSQB_ERR_RETRIES_EXHAUSTED,
    HSQB_ERR_INTERNAL,
    HSQB_ERR_COUNT
};

/* "INVALID_EVENT" ...; NULL for an out-of-range value. */
const char *hsqb_error_name(enum hsqb_error e);
/* The result's error.retryable: 1 when replaying the unchanged event later may succeed
 * without anyone fixing anything (transient causes), 0 when something must change first. */
int hsqb_error_retryable(enum hsqb_error e);
/* Exact, case-sensitive. s may be NULL. 0 and *out, or -1. */
int hsqb_error_from_name(const char *s, enum hsqb_error *out);

/* ---- the decoded event ----------------------------------------------------------- */

/* The action's inputs, read from data.inputFields (or data.fields when inputFields is
 * absent or null). Optional inputs that were absent, null or "" read as NULL / default.
 * Members that do not belong to the action stay NULL / default. */
struct event_inputs {
    char realm_id[EVENT_REALM_MAX + 1];       /* qbo_realm_id, digits; always set */
    enum customer_source customer_source;     /* not expense */
    int64_t customer_contact_id;              /* when CUSTOMER_CONTACT_ID, else 0 */
    int create_missing_products;              /* 0/1; default 0; not expense */
    char *income_account;                     /* items it creates; NULL = the default */
    int email_document;                       /* invoice, estimate: 0/1; default 0 */
    char *payment_terms;                      /* invoice; NULL = QBO default */
    char *deposit_to_account;                 /* sales receipt, paid invoice; NULL = default */
    char *expense_account;                    /* expense; required */
    char *paid_from_account;                  /* expense; required */
    enum expense_payment_type payment_type;   /* expense; required */
    char *vendor;                             /* expense; NULL = no payee */
    enum expense_amount_source amount_source; /* expense; default fees */
    char *refund_from_account;                /* refund receipt; required */
};

struct action_event {
    char id[EVENT_ID_MAX + 1]; /* the callbackId: dedup key */
    enum hsqb_action action;
    int64_t portal_id;
    enum hsqb_object_type object_type;
    int64_t object_id;
    int64_t workflow_id;           /* data.context.workflowId; 0 when absent */
    char *source;                  /* CloudEvents source; always set */
    char time[EVENT_TIME_MAX + 1]; /* CloudEvents time as sent; "" when absent */
    int64_t time_ms;               /* time as epoch ms (UTC); 0 when absent */
    int inputs_from_fields;        /* 1 when the inputs came from data.fields */
    char key[EVENT_KEY_MAX];       /* "<portal_id>:<OBJECT_TYPE>:<object_id>" */
    struct event_inputs in;
};

enum event_status {
    EVENT_OK = 0,
    EVENT_INVALID,            /* result code INVALID_EVENT */
    EVENT_UNSUPPORTED_OBJECT, /* well formed, but the action does not take this object
                               * type (e.g. a contact workflow): UNSUPPORTED_OBJECT_TYPE */
};

/* The result error code for a non-OK status (HSQB_ERR_INVALID_EVENT or
 * HSQB_ERR_UNSUPPORTED_OBJECT_TYPE). */
enum hsqb_error event_status_error(enum event_status st);

/* Decode and validate len bytes of a message value (buf need not be NUL-terminated; it
 * may be NULL when len is 0). On EVENT_OK, *ev is filled (any previous content is
 * overwritten, not freed) and the caller releases it with event_release(). Otherwise
 * *ev is untouched and errstr (may be NULL) receives one line naming the JSON path and
 * the fault, e.g. "data.origin.portalId: wrong type (string)"; quoted input is
 * sanitised and truncated. Never crashes on any input (fuzzed). */
enum event_status event_decode(const char *buf, size_t len, struct action_event *ev, char *errstr,
                               size_t errsz);

/* Free what the event owns and zero it. ev may be NULL; a zeroed event is fine; safe
 * to call twice. */
void event_release(struct action_event *ev);

/* Best effort for failures: copy the top-level "id" of an undecodable or invalid event
 * into id (idsz >= EVENT_ID_MAX + 1) when the text parses and the id itself is valid,
 * so the failure result and logs can name the event. Returns 0, or -1 (id untouched). */
int event_peek_id(const char *buf, size_t len, char *id, size_t idsz);

/* Write the Kafka key "<portal>:<OBJECT_TYPE>:<object>" into buf. The type is always the
 * canonical name, so one HubSpot object maps to one key (and one ordering lane) whatever
 * spelling its events use. Returns the length, or -1 if bufsz is too small or an argument
 * is out of range (ids must be >= 1). */
int event_key(int64_t portal_id, enum hsqb_object_type t, int64_t object_id, char *buf,
              size_t bufsz);

#endif
