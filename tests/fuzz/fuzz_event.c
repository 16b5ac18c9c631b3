/* fuzz_event.c - libFuzzer target for the action-event decoder.
 *
 * Kafka values are untrusted, and design section 4 step 1 says an invalid event must end
 * as INVALID_EVENT, never as a crash. Beyond "no crash, no leak" this checks the
 * decoder's contract on every input: a decoded event satisfies the header's invariants
 * (key rebuilt from the fields, ids in range, accepted object type, required inputs
 * present), and a failure leaves the output untouched and a message behind.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "worker/event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct action_event ev;
    char err[EVENT_ERRSTR_SIZE], key[EVENT_KEY_MAX], id[EVENT_ID_MAX + 1];
    enum event_status st;

    memset(&ev, 0xA5, sizeof ev);
    err[0] = '\0';
    st = event_decode((const char *)data, size, &ev, err, sizeof err);
    if (st != EVENT_OK) {
        if (((unsigned char *)&ev)[0] != 0xA5 || err[0] == '\0')
            abort();
    } else {
        if (ev.portal_id < 1 || ev.object_id < 1 || ev.workflow_id < 0 || !ev.source ||
            ev.id[0] == '\0' || ev.in.realm_id[0] == '\0' ||
            !event_action_accepts(ev.action, ev.object_type))
            abort();
        if (event_key(ev.portal_id, ev.object_type, ev.object_id, key, sizeof key) < 0 ||
            strcmp(key, ev.key) != 0)
            abort();
        if (ev.action == ACTION_CREATE_EXPENSE &&
            (!ev.in.expense_account || !ev.in.paid_from_account))
            abort();
        if (ev.action == ACTION_CREATE_REFUND_RECEIPT && !ev.in.refund_from_account)
            abort();
        /* a valid event always has a readable id */
        if (event_peek_id((const char *)data, size, id, sizeof id) != 0 || strcmp(id, ev.id) != 0)
            abort();
        event_release(&ev);
    }
    return 0;
}
