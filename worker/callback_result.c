/* callback_result.c - a result read back as a completion (see callback_result.h).
 *
 * The reader asks only what a completion needs and in the order a result answers it:
 * marked? then whose execution (input_id, portal_id), then the outcome (status, then qbo
 * or error). Everything goes through the strict parser's tape and its typed getters
 * (common/jtape.h, the rules of common/json.h), so a duplicated key, a number where a
 * string belongs or an id out of range is refused rather than coerced. A tape, not a
 * json-c tree: the completer reads every result the workers publish, and a tree of one
 * cost ~85 allocations (a value each, a hash table per object); a tape costs three. The rules follow the result contract
 * (schemas/result-event.schema.json) where a completion depends on them, and nothing
 * else: an unknown member, a newer error code or a missing currency does not stop a
 * completion HubSpot is waiting for.
 */
#include "worker/callback_result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/jtape.h"

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

static int read_success(const struct jtape *t, size_t data, const char *app_url, size_t app_len,
                        struct callback_completion *c, char *why, size_t whysz)
{
    size_t q;
    const char *entity, *id, *num = NULL, *page;
    int64_t cents;
    enum jget_status st;

    if ((st = jtape_get_obj(t, data, "qbo", &q)) != JGET_OK)
        return fail(why, whysz, "data.qbo", st);
    if ((st = jtape_get_str(t, q, "entity", &entity)) != JGET_OK || !(page = page_of(entity)))
        return fail(why, whysz, "data.qbo.entity", st);
    if ((st = jtape_get_str(t, q, "id", &id)) != JGET_OK || !digits(id, RESULT_QBO_ID_MAX))
        return fail(why, whysz, "data.qbo.id", st);
    st = jtape_get_str(t, q, "doc_number", &num);
    if ((st != JGET_OK && st != JGET_MISSING) || (num && strlen(num) > RESULT_DOC_NUMBER_MAX))
        return fail(why, whysz, "data.qbo.doc_number", st);
    if ((st = jtape_get_int64(t, q, "total_cents", 0, MONEY_MAX_CENTS, &cents)) != JGET_OK ||
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

static int read_failure(const struct jtape *t, size_t data, struct callback_completion *c,
                        char *why, size_t whysz)
{
    size_t e;
    const char *code, *msg = NULL;
    enum jget_status st;

    if ((st = jtape_get_obj(t, data, "error", &e)) != JGET_OK)
        return fail(why, whysz, "data.error", st);
    if ((st = jtape_get_str(t, e, "code", &code)) != JGET_OK ||
        strspn(code, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != strlen(code) || !*code ||
        strlen(code) > CALLBACK_CODE_MAX)
        return fail(why, whysz, "data.error.code", st);
    st = jtape_get_str(t, e, "message", &msg);
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

enum callback_read callback_result_read(const char *buf, size_t len, const char *app_url,
                                        struct callback_completion *out, char *why, size_t whysz)
{
    struct jtape t = {0};
    size_t data;
    const char *id, *status;
    size_t app_len = app_url ? strlen(app_url) : 0;
    enum callback_read r = CALLBACK_READ_INVALID;
    enum jget_status st;
    char perr[160];
    int rc, mark;

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
    if (jtape_parse(&t, buf ? buf : "", buf ? len : 0, EVENT_MAX_DEPTH, perr, sizeof perr) < 0) {
        if (why && whysz)
            snprintf(why, whysz, "(message): %s", perr);
        goto out;
    }
    if (t.n[JTAPE_ROOT].type == JT_NULL) { /* a valid tape; json_parse_strict's refusal */
        if (why && whysz)
            snprintf(why, whysz, "(message): document is null");
        goto out;
    }
    if ((st = jtape_get_obj(&t, JTAPE_ROOT, "data", &data)) != JGET_OK) {
        fail(why, whysz, "data", st);
        goto out;
    }
    if (jtape_get_bool(&t, data, "complete_callback", &mark) != JGET_OK || !mark) {
        r = CALLBACK_READ_UNMARKED;
        goto out;
    }
    if ((st = jtape_get_str(&t, data, "input_id", &id)) != JGET_OK ||
        !printable_ascii(id, 1, EVENT_ID_MAX)) {
        fail(why, whysz, "data.input_id", st);
        goto out;
    }
    if ((st = jtape_get_int64(&t, data, "portal_id", 1, INT64_MAX, &out->portal_id)) != JGET_OK) {
        fail(why, whysz, "data.portal_id", st);
        goto out;
    }
    snprintf(out->callback_id, sizeof out->callback_id, "%s", id);
    if ((st = jtape_get_str(&t, data, "status", &status)) != JGET_OK) {
        fail(why, whysz, "data.status", st);
        goto out;
    }
    if (strcmp(status, "succeeded") == 0)
        rc = read_success(&t, data, app_url, app_len, out, why, whysz);
    else if (strcmp(status, "failed") == 0)
        rc = read_failure(&t, data, out, why, whysz);
    else
        rc = fail(why, whysz, "data.status", JGET_OK);
    if (rc == 0)
        r = CALLBACK_READ_COMPLETE;
out:
    jtape_release(&t);
    if (r != CALLBACK_READ_COMPLETE)
        callback_completion_release(out);
    return r;
}

void callback_completion_release(struct callback_completion *c)
{
    if (!c)
        return;
    free(c->url);
    free(c->error_message);
    memset(c, 0, sizeof *c);
}

size_t callback_completion_fields(const struct callback_completion *c,
                                  struct hubspot_output_field f[CALLBACK_FIELDS_MAX])
{
    size_t n = 0;

    if (c->success) {
        f[n++] = (struct hubspot_output_field){"qbo_document_id", c->doc_id};
        f[n++] = (struct hubspot_output_field){"qbo_doc_number", c->doc_number};
        f[n++] = (struct hubspot_output_field){"qbo_total", c->total};
        f[n++] = (struct hubspot_output_field){"qbo_document_url", c->url ? c->url : ""};
        f[n++] = (struct hubspot_output_field){"status", "succeeded"};
    } else {
        f[n++] = (struct hubspot_output_field){"error_code", c->error_code};
        f[n++] = (struct hubspot_output_field){"error_message",
                                               c->error_message ? c->error_message : ""};
        f[n++] = (struct hubspot_output_field){"status", "failed"};
    }
    return n;
}
