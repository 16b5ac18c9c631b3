/* ingress_event.c - the event of one ingress request (see ingress.h,
 * ingress_event_build()): HubSpot's execution request wrapped, byte for byte, in the
 * CloudEvent schemas/action-event.schema.json defines and checked by the worker's own
 * decoder. Pure: no I/O, so it is unit-tested (tests/unit/worker/test_ingress.c) and
 * fuzzed (tests/fuzz/fuzz_ingress_request.c) on its own.
 */
#include "worker/ingress.h"

#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/jtape.h"
#include "worker/result.h"

/* The action of a request to /hubspot/actions without one in the path. */
static int action_by_definition(const struct ingress_request *rq, const struct jtape *t,
                                enum hsqb_action *out)
{
    size_t origin;
    int64_t id;
    size_t i;

    if (jtape_get_obj(t, JTAPE_ROOT, "origin", &origin) != JGET_OK ||
        jtape_get_int64(t, origin, "actionDefinitionId", 1, INT64_MAX, &id) != JGET_OK)
        return -1;
    for (i = 0; i < rq->ndefs; i++)
        if (rq->defs[i].id == id) {
            *out = rq->defs[i].action;
            return 0;
        }
    return -1;
}

int ingress_event_build(const struct ingress_request *rq, struct jbuf *jb,
                        struct action_event *ev, char *msg, size_t msgsz)
{
    struct jtape t = {0};
    const char *cb;
    size_t origin, context;
    int64_t portal = 0, workflow = 0;
    enum hsqb_action action = rq->action;
    char e[EVENT_ERRSTR_SIZE], src[EVENT_SOURCE_MAX + 1], now[CLOCK_RFC3339_MAX];
    enum event_status st;
    int rc = -1, n;

    if (jtape_parse_max(&t, rq->body, rq->len, EVENT_MAX_DEPTH - 1, EVENT_MAX_VALUES, e,
                        sizeof e) < 0) {
        snprintf(msg, msgsz, "the body is not JSON: %s", e);
        goto out;
    }
    if (t.n[JTAPE_ROOT].type != JT_OBJECT) {
        snprintf(msg, msgsz, "the body is not a JSON object");
        goto out;
    }
    if (jtape_get_str(&t, JTAPE_ROOT, "callbackId", &cb) != JGET_OK) {
        snprintf(msg, msgsz, "callbackId: missing or not a string");
        goto out;
    }
    if (jtape_get_obj(&t, JTAPE_ROOT, "origin", &origin) != JGET_OK ||
        jtape_get_int64(&t, origin, "portalId", 1, INT64_MAX, &portal) != JGET_OK) {
        snprintf(msg, msgsz, "origin.portalId: missing or not a positive integer");
        goto out;
    }
    if (jtape_get_obj(&t, JTAPE_ROOT, "context", &context) == JGET_OK &&
        jtape_get_int64(&t, context, "workflowId", 1, INT64_MAX, &workflow) != JGET_OK)
        workflow = 0;
    if (!rq->has_action && action_by_definition(rq, &t, &action) < 0) {
        snprintf(msg, msgsz,
                 "origin.actionDefinitionId: not a definition this ingress knows "
                 "(ingress.action_definitions), and the URL names no action");
        goto out;
    }
    if (workflow > 0)
        n = snprintf(src, sizeof src, RESULT_INGRESS_SOURCE_PREFIX "%s/portal/%lld/workflow/%lld",
                     rq->public_host, (long long)portal, (long long)workflow);
    else
        n = snprintf(src, sizeof src, RESULT_INGRESS_SOURCE_PREFIX "%s/portal/%lld",
                     rq->public_host, (long long)portal);
    if (n < 0 || (size_t)n >= sizeof src) {
        snprintf(msg, msgsz, "the event's source would exceed %d characters", EVENT_SOURCE_MAX);
        goto out;
    }
    clock_rfc3339_ms(rq->now_ms, now);
    jbuf_obj_open(jb);
    jbuf_kv_str(jb, "specversion", "1.0");
    jbuf_kv_str(jb, "id", cb);
    jbuf_kv_str(jb, "type", event_action_type(action));
    jbuf_kv_str(jb, "source", src);
    jbuf_kv_str(jb, "time", now);
    jbuf_kv_str(jb, "datacontenttype", "application/json");
    jbuf_key(jb, "data");
    jbuf_raw(jb, rq->body, rq->len);
    jbuf_obj_close(jb);
    if (jbuf_cstr(jb) == NULL) {
        snprintf(msg, msgsz, "the event would exceed %d bytes", EVENT_MAX_BYTES);
        goto out;
    }
    st = event_decode(jbuf_cstr(jb), jb->len, ev, e, sizeof e);
    if (st == EVENT_UNSUPPORTED_OBJECT) {
        snprintf(msg, msgsz, "%s does not take this object type: %s", event_action_name(action), e);
        goto out;
    }
    if (st != EVENT_OK) {
        snprintf(msg, msgsz, "%s", e);
        goto out;
    }
    rc = 0;
out:
    jtape_release(&t);
    return rc;
}
