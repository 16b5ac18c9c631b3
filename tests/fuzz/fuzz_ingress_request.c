/* fuzz_ingress_request.c - libFuzzer target for the ingress's request -> event path.
 *
 * A signed request's body is still untrusted (a compromised or buggy HubSpot account, a
 * leaked secret): ingress_event_build() must end every body as an event or a 400 reason,
 * never as a crash. Beyond "no crash, no leak" it checks the contract on every input: an
 * event decodes to the action the request named, its id is the body's callbackId, its key
 * has the canonical shape, and its text ends with the body byte for byte; a refusal has a
 * non-empty one-line reason. The first input byte picks the action or the definition-id
 * route, so both are covered.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "worker/ingress.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct ingress_action_def defs[] = {{10646377, ACTION_CREATE_INVOICE},
                                                     {10646378, ACTION_CREATE_EXPENSE}};
    struct ingress_request rq = {"hsqb.example.com", defs, 2, 1, ACTION_CREATE_INVOICE, NULL,
                                 0, 1796613700604LL};
    struct action_event ev = {0};
    struct jbuf jb;
    char msg[512];

    if (size < 1)
        return 0;
    rq.has_action = data[0] % (ACTION_COUNT + 1) != ACTION_COUNT;
    rq.action = rq.has_action ? (enum hsqb_action)(data[0] % (ACTION_COUNT + 1)) : 0;
    rq.body = (const char *)data + 1;
    rq.len = size - 1;
    jbuf_init(&jb, EVENT_MAX_BYTES);
    msg[0] = '\0';
    if (ingress_event_build(&rq, &jb, &ev, msg, sizeof msg) == 0) {
        const char *text = jbuf_cstr(&jb);
        size_t tl = jb.len;

        if (rq.has_action && ev.action != rq.action)
            abort();
        if (strncmp(ev.key, "", 1) == 0 || !strchr(ev.key, ':'))
            abort();
        if (tl < rq.len + 1 || memcmp(text + tl - rq.len - 1, rq.body, rq.len) != 0 ||
            text[tl - 1] != '}')
            abort();
        if (strncmp(ev.source, "hsqb-ingress://hsqb.example.com/portal/", 39) != 0)
            abort();
        event_release(&ev);
    } else if (msg[0] == '\0' || strchr(msg, '\n')) {
        abort();
    }
    jbuf_release(&jb);
    return 0;
}
