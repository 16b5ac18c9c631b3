/* hubspot_callbacks.c - completing workflow executions (see hubspot.h): one at a time
 * (POST /automation/v4/actions/callbacks/{callbackId}/complete) or up to
 * HUBSPOT_CALLBACK_BATCH_MAX in one request (POST /automation/v4/actions/callbacks/complete).
 *
 * Both bodies carry the same outputFields object, written by one function that also
 * checks what the caller passed (hs_execution_state is ours to set). A request is one
 * hubspot_exchange(): one rate-limit admission of the portal however many executions it
 * completes, which is why the completer batches. HubSpot documents neither what a batch
 * does when one of its callbacks is refused nor a per-input answer; the sandbox treats a
 * batch as all-or-nothing, so a refused batch says nothing about which input was at
 * fault (worker/callbacks.c splits it).
 */
#include "worker/hubspot_internal.h"

#include <stdio.h>
#include <string.h>

#include "common/json.h"

#define HS_CALLBACK_BODY_MAX (2u << 20) /* bytes of one request body */

/* Check one completion and write its outputFields object. 0, or -1 with *err. */
static int write_outputs(struct jbuf *jb, const char *ep, const struct hubspot_completion *d,
                         struct api_error *err)
{
    size_t idlen = d->callback_id ? strlen(d->callback_id) : 0;

    if (idlen == 0 || idlen > EVENT_ID_MAX || d->nfields > HUBSPOT_MAX_OUTPUT ||
        (d->nfields && !d->fields)) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "hubspot %s: bad arguments", ep);
        return -1;
    }
    jbuf_obj_open(jb);
    jbuf_kv_str(jb, "hs_execution_state", d->success ? "SUCCESS" : "FAIL_CONTINUE");
    for (size_t i = 0; i < d->nfields; i++) {
        if (!d->fields[i].name || strcmp(d->fields[i].name, "hs_execution_state") == 0) {
            api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "hubspot %s: bad output field",
                          ep);
            return -1;
        }
        jbuf_kv_str(jb, d->fields[i].name, d->fields[i].value);
    }
    jbuf_obj_close(jb);
    return 0;
}

/* Send the body in jb to url: 0 on any 2xx (HubSpot answers 204), else -1 with *err. */
static int send_body(const struct hubspot_call *c, const char *ep, const char *url, struct jbuf *jb,
                     struct api_error *err)
{
    struct http_response resp;
    int rc;

    if (!jbuf_cstr(jb)) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "hubspot %s: body too large", ep);
        return -1;
    }
    http_response_init(&resp);
    rc = hubspot_exchange(c, &(struct hubspot_req){ep, HTTP_POST, url, jb->buf, jb->len}, &resp,
                          err);
    http_response_release(&resp);
    return rc;
}

static int complete_one(const struct hubspot_call *c, const struct hubspot_completion *done,
                        struct api_error *err)
{
    static const char ep[] = "complete_callback";
    char esc[3 * EVENT_ID_MAX + 1], url[HTTP_MAX_URL];
    struct jbuf jb;
    int rc = -1;

    api_error_clear(err);
    jbuf_init(&jb, HS_CALLBACK_BODY_MAX);
    if (!done) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "hubspot %s: bad arguments", ep);
        goto out;
    }
    jbuf_obj_open(&jb);
    jbuf_key(&jb, "outputFields");
    if (write_outputs(&jb, ep, done, err) < 0)
        goto out;
    jbuf_obj_close(&jb);
    http_path_escape(esc, sizeof esc, done->callback_id, strlen(done->callback_id));
    snprintf(url, sizeof url, "%s/automation/v4/actions/callbacks/%s/complete", c->api->base_url,
             esc);
    rc = send_body(c, ep, url, &jb, err);
out:
    jbuf_release(&jb);
    return rc;
}

static int complete_batch(const struct hubspot_call *c, const struct hubspot_completion *done,
                          size_t n, struct api_error *err)
{
    static const char ep[] = "complete_callbacks";
    char url[HTTP_MAX_URL];
    struct jbuf jb;
    int rc = -1;

    api_error_clear(err);
    jbuf_init(&jb, HS_CALLBACK_BODY_MAX);
    if (n == 0 || n > HUBSPOT_CALLBACK_BATCH_MAX || !done) {
        api_error_set(err, API_PERMANENT, HSQB_ERR_INTERNAL, 0, "hubspot %s: %zu inputs", ep, n);
        goto out;
    }
    jbuf_obj_open(&jb);
    jbuf_key(&jb, "inputs");
    jbuf_arr_open(&jb);
    for (size_t i = 0; i < n; i++) {
        jbuf_obj_open(&jb);
        jbuf_kv_str(&jb, "callbackId", done[i].callback_id);
        jbuf_key(&jb, "outputFields");
        if (write_outputs(&jb, ep, &done[i], err) < 0)
            goto out;
        jbuf_obj_close(&jb);
    }
    jbuf_arr_close(&jb);
    jbuf_obj_close(&jb);
    snprintf(url, sizeof url, "%s/automation/v4/actions/callbacks/complete", c->api->base_url);
    rc = send_body(c, ep, url, &jb, err);
out:
    jbuf_release(&jb);
    return rc;
}

int hubspot_complete_callback(const struct ioctx *io, struct hubspot_api *api,
                              const struct hubspot_ctx *hc, const struct hubspot_completion *done,
                              struct api_error *err)
{
    struct hubspot_call c = {io, api, hc};
    return api_error_tag(err, API_SOURCE_HUBSPOT, complete_one(&c, done, err));
}

int hubspot_complete_callbacks_batch(const struct ioctx *io, struct hubspot_api *api,
                                     const struct hubspot_ctx *hc,
                                     const struct hubspot_completion *done, size_t n,
                                     struct api_error *err)
{
    struct hubspot_call c = {io, api, hc};
    return api_error_tag(err, API_SOURCE_HUBSPOT, complete_batch(&c, done, n, err));
}
