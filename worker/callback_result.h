/* callback_result.h - a result read back from the results topic as the completion of its
 * HubSpot workflow execution (the callback completer's input, worker/callbacks.h).
 *
 * Owns: the decoded completion (struct callback_completion) and the mapping from a result
 * to HubSpot output fields:
 *   succeeded -> SUCCESS: qbo_document_id (qbo.id), qbo_doc_number (qbo.doc_number, ""
 *                when null), qbo_total (qbo.total_cents as a decimal with two places,
 *                "1250.00"), qbo_document_url (<qbo.app_url>/app/<page>?txnId=<qbo.id>,
 *                page by qbo.entity: Invoice -> invoice (a paid invoice too), Estimate ->
 *                estimate, SalesReceipt -> salesreceipt, Purchase -> expense,
 *                RefundReceipt -> refundreceipt), status "succeeded";
 *   failed    -> FAIL_CONTINUE: error_code, error_message (one line, redacted, at most
 *                RESULT_MESSAGE_MAX bytes), status "failed".
 *
 * The topic is untrusted input (anyone who may write to it, any version of the worker):
 * callback_result_read() never crashes on any bytes (fuzzed: tests/fuzz/
 * fuzz_callback_result.c), reads only what a completion needs, checks each member's type
 * and range, and ignores everything else, so results of a newer contract still complete.
 *
 * Thread-safety: reentrant; a struct callback_completion is plain data owned by one
 * thread at a time.
 */
#ifndef HSQB_CALLBACK_RESULT_H
#define HSQB_CALLBACK_RESULT_H

#include <stddef.h>
#include <stdint.h>

#include "common/money.h"
#include "worker/event.h"
#include "worker/hubspot.h"
#include "worker/result.h"

#define CALLBACK_RESULT_MAX_BYTES (1024 * 1024) /* a larger message is not read */
#define CALLBACK_CODE_MAX         64            /* bytes of error.code */
#define CALLBACK_APP_URL_MAX      2048          /* bytes of qbo.app_url */
#define CALLBACK_FIELDS_MAX       5             /* output fields of one completion */

struct callback_completion {
    char callback_id[EVENT_ID_MAX + 1]; /* data.input_id */
    int64_t portal_id;                  /* data.portal_id */
    int success;                        /* 1: SUCCESS, 0: FAIL_CONTINUE */
    /* success */
    char doc_id[RESULT_QBO_ID_MAX + 1];
    char doc_number[RESULT_DOC_NUMBER_MAX + 1];
    char total[MONEY_FMT_SIZE];
    char *url; /* owned */
    /* failure */
    char error_code[CALLBACK_CODE_MAX + 1];
    char *error_message; /* owned */
};

enum callback_read {
    CALLBACK_READ_COMPLETE = 0, /* a marked result: *out filled */
    CALLBACK_READ_UNMARKED,     /* a result without data.complete_callback: true */
    CALLBACK_READ_INVALID,      /* not a result, or marked without what a completion needs */
};

/* Read len bytes of a message value (buf need not be NUL-terminated; NULL with len 0).
 * app_url is qbo.app_url (trailing '/' ignored; NULL or longer than CALLBACK_APP_URL_MAX
 * is INVALID). On CALLBACK_READ_COMPLETE *out is filled (previous content overwritten,
 * not freed; release with callback_completion_release); otherwise *out is zeroed and,
 * for INVALID, why (may be NULL) names the fault in one line that quotes no input. */
enum callback_read callback_result_read(const char *buf, size_t len, const char *app_url,
                                        struct callback_completion *out, char *why, size_t whysz);

/* Free what c owns and zero it; NULL-safe, idempotent. */
void callback_completion_release(struct callback_completion *c);

/* c's output fields into f (borrowing c's strings, valid while c is): returns how many
 * (at most CALLBACK_FIELDS_MAX). hs_execution_state is not one of them (the HubSpot
 * client sets it from c->success). */
size_t callback_completion_fields(const struct callback_completion *c,
                                  struct hubspot_output_field f[CALLBACK_FIELDS_MAX]);

#endif
