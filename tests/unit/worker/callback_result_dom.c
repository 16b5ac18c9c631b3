/* callback_result_dom.c - the json-c reader of results that worker/callback_result.c
 * replaced with a tape, kept verbatim for tests only: tests/unit/worker/
 * test_callback_result.c and tests/fuzz/fuzz_callback_result.c run both readers on the
 * same bytes and require the same verdict, the same completion and the same reason, so
 * the tape reader is the json-c one minus the tree. Remove once nobody doubts that.
 */
#include "worker/callback_result.h"
#include "tests/unit/worker/callback_result_dom.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"

/* entity -> the QuickBooks web app's page of that document */
static const struct {
    const char *entity, *page;
} pages[] = {
    {"Invoice", "invoice"},  {"Estimate", "estimate"},           {"SalesReceipt", "salesreceipt"},
    {"Purchase", "expense"}, {"RefundReceipt", "refundreceipt"},
};

static int fail(char *why, size_t whysz, const char *what, enum jget_status st)
{
    if (why && whysz)
        snprintf(why, whysz, "%s: %s", what, st == JGET_OK ? "invalid" : jget_status_str(st));
    return -1;
}

static int printable_ascii(const char *s, size_t min, size_t max)
{
    size_t n = 0;

    for (; s[n]; n++)
        if ((unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7e)
            return 0;
    return n >= min && n <= max;
}

static int digits(const char *s, size_t max)
{
    size_t n = strspn(s, "0123456789");
    return n >= 1 && n <= max && s[n] == '\0';
}

static const char *page_of(const char *entity)
{
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++)
        if (strcmp(pages[i].entity, entity) == 0)
            return pages[i].page;
    return NULL;
}

static int read_success(struct json_object *data, const char *app_url, size_t app_len,
                        struct callback_completion *c, char *why, size_t whysz)
{
    struct json_object *q;
    const char *entity, *id, *num = NULL, *page;
    int64_t cents;
    enum jget_status st;

    if ((st = json_get_obj(data, "qbo", &q)) != JGET_OK)
        return fail(why, whysz, "data.qbo", st);
    if ((st = json_get_str(q, "entity", &entity)) != JGET_OK || !(page = page_of(entity)))
        return fail(why, whysz, "data.qbo.entity", st);
    if ((st = json_get_str(q, "id", &id)) != JGET_OK || !digits(id, RESULT_QBO_ID_MAX))
        return fail(why, whysz, "data.qbo.id", st);
    st = json_get_str(q, "doc_number", &num);
    if ((st != JGET_OK && st != JGET_MISSING) || (num && strlen(num) > RESULT_DOC_NUMBER_MAX))
        return fail(why, whysz, "data.qbo.doc_number", st);
    if ((st = json_get_int64(q, "total_cents", 0, MONEY_MAX_CENTS, &cents)) != JGET_OK ||
        money_format(cents, c->total, sizeof c->total) != MONEY_OK)
        return fail(why, whysz, "data.qbo.total_cents", st);
    snprintf(c->doc_id, sizeof c->doc_id, "%s", id);
    snprintf(c->doc_number, sizeof c->doc_number, "%s", num ? num : "");
    if (asprintf(&c->url, "%.*s/app/%s?txnId=%s", (int)app_len, app_url, page, id) < 0) {
        c->url = NULL;
        return fail(why, whysz, "out of memory", JGET_OK);
    }
    c->success = 1;
    return 0;
}

static int read_failure(struct json_object *data, struct callback_completion *c, char *why,
                        size_t whysz)
{
    struct json_object *e;
    const char *code, *msg = NULL;
    enum jget_status st;

    if ((st = json_get_obj(data, "error", &e)) != JGET_OK)
        return fail(why, whysz, "data.error", st);
    if ((st = json_get_str(e, "code", &code)) != JGET_OK ||
        strspn(code, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != strlen(code) || !*code ||
        strlen(code) > CALLBACK_CODE_MAX)
        return fail(why, whysz, "data.error.code", st);
    st = json_get_str(e, "message", &msg);
    if (st != JGET_OK && st != JGET_MISSING)
        return fail(why, whysz, "data.error.message", st);
    snprintf(c->error_code, sizeof c->error_code, "%s", code);
    c->error_message = malloc(RESULT_MESSAGE_MAX + 1);
    if (!c->error_message)
        return fail(why, whysz, "out of memory", JGET_OK);
    /* one line, redacted, capped on a UTF-8 boundary, as the worker writes it */
    result_one_line(msg, c->error_message, RESULT_MESSAGE_MAX + 1);
    if (!c->error_message[0])
        snprintf(c->error_message, RESULT_MESSAGE_MAX + 1, "%s", code);
    c->success = 0;
    return 0;
}

enum callback_read callback_result_read_dom(const char *buf, size_t len, const char *app_url,
                                        struct callback_completion *out, char *why, size_t whysz)
{
    struct json_object *root = NULL, *data, *mark;
    const char *id, *status;
    size_t app_len = app_url ? strlen(app_url) : 0;
    enum callback_read r = CALLBACK_READ_INVALID;
    enum jget_status st;
    char perr[160];
    int rc;

    memset(out, 0, sizeof *out);
    if (why && whysz)
        why[0] = '\0';
    while (app_len > 0 && app_url[app_len - 1] == '/')
        app_len--;
    if (!app_url || app_len > CALLBACK_APP_URL_MAX) {
        fail(why, whysz, "qbo.app_url", JGET_OK);
        return r;
    }
    if (len > CALLBACK_RESULT_MAX_BYTES) {
        if (why && whysz)
            snprintf(why, whysz, "(message): too large (%zu bytes, max %d)", len,
                     CALLBACK_RESULT_MAX_BYTES);
        return r;
    }
    root = json_parse_strict(buf ? buf : "", buf ? len : 0, EVENT_MAX_DEPTH, perr, sizeof perr);
    if (!root) {
        if (why && whysz)
            snprintf(why, whysz, "(message): %s", perr);
        return r;
    }
    if ((st = json_get_obj(root, "data", &data)) != JGET_OK) {
        fail(why, whysz, "data", st);
        goto out;
    }
    if (!json_object_object_get_ex(data, "complete_callback", &mark) ||
        !json_object_is_type(mark, json_type_boolean) || !json_object_get_boolean(mark)) {
        r = CALLBACK_READ_UNMARKED;
        goto out;
    }
    if ((st = json_get_str(data, "input_id", &id)) != JGET_OK ||
        !printable_ascii(id, 1, EVENT_ID_MAX)) {
        fail(why, whysz, "data.input_id", st);
        goto out;
    }
    if ((st = json_get_int64(data, "portal_id", 1, INT64_MAX, &out->portal_id)) != JGET_OK) {
        fail(why, whysz, "data.portal_id", st);
        goto out;
    }
    snprintf(out->callback_id, sizeof out->callback_id, "%s", id);
    if ((st = json_get_str(data, "status", &status)) != JGET_OK) {
        fail(why, whysz, "data.status", st);
        goto out;
    }
    if (strcmp(status, "succeeded") == 0)
        rc = read_success(data, app_url, app_len, out, why, whysz);
    else if (strcmp(status, "failed") == 0)
        rc = read_failure(data, out, why, whysz);
    else
        rc = fail(why, whysz, "data.status", JGET_OK);
    if (rc == 0)
        r = CALLBACK_READ_COMPLETE;
out:
    json_object_put(root);
    if (r != CALLBACK_READ_COMPLETE)
        callback_completion_release(out);
    return r;
}
