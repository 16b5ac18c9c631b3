/* fuzz_callback_result.c - libFuzzer target for the callback completer's result reader.
 *
 * The results topic is untrusted input to the completer (worker/callbacks.h): a message
 * must end as a completion, "not marked" or "skipped with a warning", never as a crash.
 * Beyond "no crash, no leak" this checks the reader's contract on every input: a
 * completion names a valid execution (callback id of visible ASCII, portal >= 1) and
 * carries the output fields HubSpot gets (a success's total is a two-place decimal and
 * its URL starts with the app URL; a failure's message is one non-empty line), and
 * anything else leaves the output zeroed, with a reason for an invalid one. And the
 * tape reader says exactly what the json-c reader it replaced says (verdict, completion,
 * reason: tests/unit/worker/callback_result_dom.c).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/worker/callback_result_dom.h"
#include "worker/callback_result.h"

#define APP_URL "https://app.qbo.intuit.com"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_completion(const struct callback_completion *c)
{
    struct hubspot_output_field f[CALLBACK_FIELDS_MAX];
    size_t n = callback_completion_fields(c, f), len = strlen(c->callback_id);
    const char *dot;

    if (c->portal_id < 1 || len < 1 || len > EVENT_ID_MAX)
        abort();
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)c->callback_id[i] < 0x21 || (unsigned char)c->callback_id[i] > 0x7e)
            abort();
    if (n < 3 || n > CALLBACK_FIELDS_MAX)
        abort();
    for (size_t i = 0; i < n; i++)
        if (!f[i].name || !f[i].value)
            abort();
    if (c->success) {
        dot = strchr(c->total, '.');
        if (!c->doc_id[0] || !c->url || strncmp(c->url, APP_URL "/app/", sizeof APP_URL + 4) ||
            !dot || strlen(dot) != 3 || c->total[0] == '-')
            abort();
    } else if (!c->error_code[0] || !c->error_message || !c->error_message[0] ||
               strpbrk(c->error_message, "\r\n") || strlen(c->error_message) > RESULT_MESSAGE_MAX) {
        abort();
    }
}

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The json-c reader on the same bytes: what the tape reader said, to the byte. */
static void check_same_as_dom(const uint8_t *data, size_t size, enum callback_read r,
                              const struct callback_completion *c, const char *why)
{
    struct callback_completion d;
    char dwhy[256];

    memset(&d, 0x5A, sizeof d);
    dwhy[0] = 'x';
    if (callback_result_read_dom((const char *)data, size, APP_URL "/", &d, dwhy, sizeof dwhy) !=
            r ||
        (r == CALLBACK_READ_INVALID && strcmp(why, dwhy) != 0) ||
        strcmp(c->callback_id, d.callback_id) || c->portal_id != d.portal_id ||
        c->success != d.success || strcmp(c->doc_id, d.doc_id) ||
        strcmp(c->doc_number, d.doc_number) || strcmp(c->total, d.total) ||
        strcmp(c->error_code, d.error_code) || !same_str(c->url, d.url) ||
        !same_str(c->error_message, d.error_message))
        abort();
    callback_completion_release(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct callback_completion zero;
    struct callback_completion c;
    char why[256];
    enum callback_read r;

    memset(&c, 0xA5, sizeof c);
    why[0] = 'x';
    r = callback_result_read((const char *)data, size, APP_URL "/", &c, why, sizeof why);
    check_same_as_dom(data, size, r, &c, why);
    switch (r) {
    case CALLBACK_READ_COMPLETE:
        check_completion(&c);
        callback_completion_release(&c);
        break;
    case CALLBACK_READ_INVALID:
        if (!why[0] || memcmp(&c, &zero, sizeof c) != 0)
            abort();
        break;
    case CALLBACK_READ_UNMARKED:
        if (memcmp(&c, &zero, sizeof c) != 0)
            abort();
        break;
    default:
        abort();
    }
    return 0;
}
