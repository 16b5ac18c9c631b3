/* workflows_admin.c - the /_sandbox/hubspot/ routes of the workflow engine: a test (or the
 * demo) enrols an object in a workflow and the sandbox sends what HubSpot would send;
 * another call plays the workflow editor fetching a dropdown from an optionsUrl.
 *
 *   POST /_sandbox/hubspot/workflows/enroll   build, sign, queue an execution -> 202
 *                                             ("wait":true: answer when delivered)
 *   POST /_sandbox/hubspot/workflows/options  call a field's optionsUrl, check the answer
 *   GET  /_sandbox/hubspot/callbacks/{id}     one execution's record
 *   GET  /_sandbox/hubspot/executions         every record: portal, state, definition, app
 *
 * The execution request follows reference §3.2 and /work/spec17.md: the documented keys
 * plus what real calls carry (origin.extensionDefinition*, actionExecutionIndexIdentifier
 * in origin and context, context.actionId, `fields` duplicating inputFields); ids are
 * JSON numbers; object.properties holds the definition's objectRequestOptions properties
 * that have a value on the portal's record. The options request follows HubSpot's
 * "external data fields" section: origin, objectTypeId, inputFieldName, inputFields as
 * {"type":"STATIC_VALUE","value":…}, fetchOptions {q, after} when searching or paging.
 *
 * Both wait for a delivery thread without holding a pool thread of the HTTP server: the
 * answer is deferred (sb_response.poll) and the core asks again every SB_POLL_MS.
 * Errors are the admin API's {"error":"..."}: 400 bad input, 404 unknown app,
 * definition, portal, field or execution, 409 a callbackId that exists.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "tests/sandbox/hubspot_internal.h"
#include "tests/sandbox/workflows.h"

#define WF_DEFAULT_WORKFLOW   192814114 /* the docs' example workflow */
#define WF_DEFAULT_ACTION     1
#define WF_INPUT_MAX          100   /* input fields in one enrolment */
#define WF_INPUT_VALUE_MAX    65536 /* one input value */
#define WF_OPTIONS_PROBLEMS   20    /* problems listed per options answer */
#define WF_LIST_LIMIT_DEFAULT 100000

static int64_t next_enrollment = 60000000001LL; /* never reused, even by a reset */

static void wf_err(struct sb_response *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void wf_err(struct sb_response *resp, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sb_admin_error(resp, status, msg);
}

static struct json_object *body_object(const struct sb_request *req, struct sb_response *resp)
{
    struct json_object *o = sb_admin_body(req, resp);
    if (o && !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        o = NULL;
        wf_err(resp, 400, "request body must be a JSON object");
    }
    return o;
}

/* A positive integer given as a JSON integer or a digit string. */
static int get_id(struct json_object *o, const char *key, int64_t *out)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, key, &v))
        return -1;
    if (json_object_is_type(v, json_type_int))
        *out = json_object_get_int64(v);
    else if (!json_object_is_type(v, json_type_string) ||
             hs_parse_i64(json_object_get_string(v), out) != 0)
        return -1;
    return *out > 0 ? 0 : -1;
}

static const char *get_str(struct json_object *o, const char *key)
{
    struct json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

/* Every key of o must be in the comma list `allowed` (typos fail loudly). */
static int known_keys(struct json_object *o, const char *allowed, struct sb_response *resp)
{
    json_object_object_foreach(o, k, v)
    {
        (void)v;
        const char *p = strstr(allowed, k);
        size_t n = strlen(k);
        while (p && !((p == allowed || p[-1] == ',') && (p[n] == ',' || p[n] == '\0')))
            p = strstr(p + 1, k);
        if (!p) {
            wf_err(resp, 400, "unknown key '%s' (known: %s)", k, allowed);
            return -1;
        }
    }
    return 0;
}

/* "sign" (default both) -> WF_SIGN_* bits, or -1. */
static int sign_bits(struct json_object *body)
{
    struct json_object *v;
    if (!json_object_object_get_ex(body, "sign", &v))
        return WF_SIGN_V2 | WF_SIGN_V3;
    const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
    return strcmp(s, "both") == 0   ? WF_SIGN_V2 | WF_SIGN_V3
           : strcmp(s, "v2") == 0   ? WF_SIGN_V2
           : strcmp(s, "v3") == 0   ? WF_SIGN_V3
           : strcmp(s, "none") == 0 ? 0
                                    : -1;
}

static int get_bool(struct json_object *body, const char *key, int dflt, int *out)
{
    struct json_object *v;
    if (!json_object_object_get_ex(body, key, &v)) {
        *out = dflt;
        return 0;
    }
    if (!json_object_is_type(v, json_type_boolean))
        return -1;
    *out = json_object_get_boolean(v);
    return 0;
}

/* The app, its live definition and the portal, under hs.lock; 404 in resp when one is
 * missing. */
static int lookup(struct json_object *body, const struct hs_devapp **app, const struct hs_def **def,
                  int64_t *portal, struct sb_response *resp)
{
    int64_t app_id, def_id;
    if (get_id(body, "app_id", &app_id) || get_id(body, "definition_id", &def_id) ||
        get_id(body, "portal_id", portal)) {
        wf_err(resp, 400, "app_id, definition_id and portal_id are required positive ids");
        return -1;
    }
    if (!(*app = hs_devapp_find(app_id))) {
        wf_err(resp, 404, "no developer app %lld (seed hubspot.developer_apps)", (long long)app_id);
        return -1;
    }
    *def = hs_def_find(app_id, def_id);
    if (!*def || (*def)->archived) {
        wf_err(resp, 404, "app %lld has no %sdefinition %lld", (long long)app_id,
               *def ? "live " : "", (long long)def_id);
        return -1;
    }
    if (!hs_portal_find(*portal)) {
        wf_err(resp, 404, "no portal %lld", (long long)*portal);
        return -1;
    }
    return 0;
}

static int fill_call(struct wf_call *call, const char *url, struct json_object *req,
                     const struct hs_devapp *app, struct json_object *body, int sign)
{
    size_t len;
    const char *s = json_object_to_json_string_length(
        req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    const char *secret = get_str(body, "client_secret");
    call->url = strdup(url);
    call->body = s ? strndup(s, len) : NULL;
    call->body_len = len;
    call->secret = strdup(secret ? secret : app->secret);
    call->sign = sign;
    return call->url && call->body && call->secret ? 0 : -1;
}

/* ---- enrolment ------------------------------------------------------------------------ */

/* input_fields -> the string map HubSpot sends, checked against the definition unless
 * "validate": false. NULL with 400 in resp. */
static struct json_object *enroll_inputs(struct json_object *body, const struct hs_def *d,
                                         int validate, struct sb_response *resp)
{
    struct json_object *in = NULL, *out = json_object_new_object(), *ins, *f;
    if (!json_object_object_get_ex(body, "input_fields", &in) || !in)
        in = out; /* none: an empty object to walk */
    if (in && (!json_object_is_type(in, json_type_object) ||
               json_object_object_length(in) > WF_INPUT_MAX)) {
        wf_err(resp, 400, "input_fields must be an object of at most %d values", WF_INPUT_MAX);
        goto fail;
    }
    json_object_object_foreach(in, k, v)
    {
        if (validate && !hs_def_input(d, k, NULL)) {
            wf_err(resp, 400, "input field '%s' is not defined by definition %lld", k,
                   (long long)d->id);
            goto fail;
        }
        if (json_object_is_type(v, json_type_string) || json_object_is_type(v, json_type_int) ||
            json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_boolean)) {
            const char *s = json_object_get_string(v);
            if (strlen(s) > WF_INPUT_VALUE_MAX) {
                wf_err(resp, 400, "input field '%s' is longer than %d bytes", k,
                       WF_INPUT_VALUE_MAX);
                goto fail;
            }
            jadd(out, k, jstr(s)); /* values are strings (§3.2) */
        } else {
            wf_err(resp, 400, "input field '%s' must be a string, number or boolean", k);
            goto fail;
        }
    }
    ins = NULL;
    json_object_object_get_ex(d->doc, "inputFields", &ins);
    for (size_t i = 0; validate && i < json_object_array_length(ins); i++) {
        struct json_object *td, *req, *name;
        f = json_object_array_get_idx(ins, i);
        json_object_object_get_ex(f, "typeDefinition", &td);
        json_object_object_get_ex(td, "name", &name);
        if (json_object_object_get_ex(f, "isRequired", &req) && json_object_get_boolean(req) &&
            !json_object_object_get_ex(out, json_object_get_string(name), NULL)) {
            wf_err(resp, 400, "input field '%s' is required by definition %lld",
                   json_object_get_string(name), (long long)d->id);
            goto fail;
        }
    }
    return out;
fail:
    json_object_put(out);
    return NULL;
}

/* object.properties: the objectRequestOptions properties with a value on the record (an
 * object not in the portal is enrolled with none, as if deleted after enrolment). NULL
 * when the definition asks for no properties. */
static struct json_object *object_props(const struct hs_def *d, int64_t portal, int t, int64_t id)
{
    struct json_object *ro, *props, *out;
    if (!json_object_object_get_ex(d->doc, "objectRequestOptions", &ro) ||
        !json_object_object_get_ex(ro, "properties", &props))
        return NULL;
    out = json_object_new_object();
    struct hs_obj *o = t >= 0 ? hs_obj_get(portal, t, id) : NULL;
    if (!o || o->archived)
        return out;
    struct names ns = {0};
    for (size_t i = 0; i < json_object_array_length(props) && ns.n < HS_MAX_NAMES; i++)
        ns.v[ns.n++] = (char *)json_object_get_string(json_object_array_get_idx(props, i));
    struct json_object *rec = hs_render_obj(o, &ns, NULL, NULL), *rp, *v;
    json_object_object_get_ex(rec, "properties", &rp);
    for (int i = 0; i < ns.n; i++)
        if (json_object_object_get_ex(rp, ns.v[i], &v) && json_object_is_type(v, json_type_string))
            jadd(out, ns.v[i], jstr(json_object_get_string(v)));
    json_object_put(rec);
    return out;
}

static struct json_object *index_id(int64_t enrollment)
{
    struct json_object *o = json_object_new_object();
    jadd(o, "enrollmentId", json_object_new_int64(enrollment));
    jadd(o, "actionExecutionIndex", json_object_new_int(0));
    return o;
}

struct enroll {
    int64_t portal, enrollment, workflow, action, object_id;
    const char *object_type;
    struct json_object *props, *inputs; /* taken by exec_request */
};

/* The execution request (§3.2). */
static struct json_object *exec_request(const char *cbid, const struct hs_def *d, struct enroll *en)
{
    struct json_object *r = json_object_new_object(), *origin = json_object_new_object();
    struct json_object *ctx = json_object_new_object(), *obj = json_object_new_object();
    struct json_object *fields = NULL;
    jadd(r, "callbackId", jstr(cbid));
    jadd(origin, "portalId", json_object_new_int64(en->portal));
    jadd(origin, "actionDefinitionId", json_object_new_int64(d->id));
    jadd(origin, "actionDefinitionVersion", json_object_new_int(d->revision));
    jadd(origin, "extensionDefinitionId", json_object_new_int64(d->id));
    jadd(origin, "extensionDefinitionVersionId", json_object_new_int(d->revision));
    jadd(origin, "actionExecutionIndexIdentifier", index_id(en->enrollment));
    jadd(r, "origin", origin);
    jadd(ctx, "source", jstr("WORKFLOWS"));
    jadd(ctx, "workflowId", json_object_new_int64(en->workflow));
    jadd(ctx, "actionId", json_object_new_int64(en->action));
    jadd(ctx, "actionExecutionIndexIdentifier", index_id(en->enrollment));
    jadd(r, "context", ctx);
    jadd(obj, "objectId", json_object_new_int64(en->object_id));
    jadd(obj, "objectType", jstr(en->object_type));
    if (en->props)
        jadd(obj, "properties", en->props);
    jadd(r, "object", obj);
    json_object_deep_copy(en->inputs, &fields, NULL);
    jadd(r, "inputFields", en->inputs);
    jadd(r, "fields", fields);
    en->props = en->inputs = NULL;
    return r;
}

/* The definition lists the object's type (by name or type id)? -> the name HubSpot sends. */
static const char *allowed_type(const struct hs_def *d, const char *given)
{
    struct json_object *ots;
    int t = hs_type_of_object(given);
    json_object_object_get_ex(d->doc, "objectTypes", &ots);
    for (size_t i = 0; i < json_object_array_length(ots); i++) {
        const char *s = json_object_get_string(json_object_array_get_idx(ots, i));
        if (strcmp(s, given) == 0 || (t >= 0 && hs_type_of_object(s) == t))
            return t >= 0 ? hs_types[t].upper : given;
    }
    return NULL;
}

static int enroll_poll(void *arg, struct sb_response *resp, int final)
{
    const char *id = arg;
    pthread_rwlock_rdlock(&hs.lock);
    wf_lock();
    struct wf_exec *e = wf_exec_find(id);
    int delivering = e && e->state == WF_DELIVERING;
    struct json_object *doc = e && (!delivering || final) ? wf_exec_render(e, 1) : NULL;
    wf_unlock();
    pthread_rwlock_unlock(&hs.lock);
    if (!e) {
        wf_err(resp, 409, "execution %s was dropped by a reset", id);
        return 1;
    }
    if (!doc)
        return 0;
    sb_resp_json(resp, delivering ? 503 : 200, doc);
    return 1;
}

static int enroll_parse(struct json_object *body, struct enroll *en, int *validate, int *wait,
                        int *sign, struct sb_response *resp)
{
    struct json_object *obj;
    if (known_keys(body,
                   "app_id,definition_id,portal_id,object,input_fields,workflow_id,action_id,"
                   "enrollment_id,wait,sign,client_secret,validate",
                   resp))
        return -1;
    if (!json_object_object_get_ex(body, "object", &obj) ||
        !(en->object_type = get_str(obj, "objectType")) ||
        get_id(obj, "objectId", &en->object_id)) {
        wf_err(resp, 400, "object must be {\"objectType\":\"DEAL\",\"objectId\":1001}");
        return -1;
    }
    en->workflow = WF_DEFAULT_WORKFLOW;
    en->action = WF_DEFAULT_ACTION;
    en->enrollment = 0;
    if ((json_object_object_get_ex(body, "workflow_id", NULL) &&
         get_id(body, "workflow_id", &en->workflow)) ||
        (json_object_object_get_ex(body, "action_id", NULL) &&
         get_id(body, "action_id", &en->action)) ||
        (json_object_object_get_ex(body, "enrollment_id", NULL) &&
         get_id(body, "enrollment_id", &en->enrollment))) {
        wf_err(resp, 400, "workflow_id, action_id and enrollment_id must be positive ids");
        return -1;
    }
    if (get_bool(body, "validate", 1, validate) || get_bool(body, "wait", 0, wait) ||
        (*sign = sign_bits(body)) < 0 ||
        (json_object_object_get_ex(body, "client_secret", NULL) &&
         !get_str(body, "client_secret"))) {
        wf_err(resp, 400,
               "validate and wait are booleans, sign is both, v2, v3 or none, "
               "client_secret a string");
        return -1;
    }
    return 0;
}

static void enroll(const struct sb_request *req, struct sb_response *resp)
{
    struct json_object *body = body_object(req, resp), *request = NULL, *answer = NULL;
    struct enroll en = {0};
    struct wf_exec *e = NULL;
    const struct hs_devapp *app;
    const struct hs_def *d;
    int validate, wait, sign;
    char id[WF_ID_MAX], err[256];
    if (!body)
        return;
    if (enroll_parse(body, &en, &validate, &wait, &sign, resp))
        goto out_body;
    pthread_rwlock_wrlock(&hs.lock);
    if (lookup(body, &app, &d, &en.portal, resp))
        goto out;
    const char *otype = allowed_type(d, en.object_type);
    if (!otype) {
        wf_err(resp, 400, "definition %lld does not take objectType %s (see its objectTypes)",
               (long long)d->id, en.object_type);
        goto out;
    }
    en.object_type = otype;
    if (!(en.inputs = enroll_inputs(body, d, validate, resp)))
        goto out;
    if (!en.enrollment)
        en.enrollment = next_enrollment++;
    snprintf(id, sizeof(id), "ap-%lld-%lld-%lld-0", (long long)en.portal, (long long)en.enrollment,
             (long long)en.action);
    if (hs_cb_find(id)) {
        wf_err(resp, 409, "callbackId %s exists already", id);
        goto out;
    }
    en.props = object_props(d, en.portal, hs_type_of_object(otype), en.object_id);
    request = exec_request(id, d, &en);
    if (!(e = calloc(1, sizeof(*e))) ||
        fill_call(&e->call, get_str(d->doc, "actionUrl"), request, app, body, sign) ||
        json_object_deep_copy(request, &answer, NULL) != 0) {
        wf_err(resp, 500, "out of memory");
        goto out;
    }
    snprintf(e->id, sizeof(e->id), "%s", id);
    e->portal = en.portal;
    e->app_id = app->app_id;
    e->def_id = d->id;
    e->enrolled_ms = clock_wall_ms();
    e->request = request;
    request = NULL;
    if (!hs_cb_register(id, en.portal, e->enrolled_ms,
                        e->enrolled_ms + (int64_t)hs_opt.cb_expiry_s * 1000)) {
        wf_err(resp, 500, "cannot register callback %s", id);
        goto out;
    }
    if (wf_exec_add(e, err, sizeof(err)) != 0) {
        e = NULL;
        hs_cb_find(id)->closed = 1;
        wf_err(resp, 503, "%s", err);
        goto out;
    }
    e = NULL;
    char *wait_id = wait ? strdup(id) : NULL;
    if (wait_id) {
        resp->poll = enroll_poll;
        resp->poll_free = free;
        resp->poll_arg = wait_id;
    } else {
        struct json_object *o = json_object_new_object();
        jadd(o, "callbackId", jstr(id));
        jadd(o, "request", answer);
        answer = NULL;
        sb_resp_json(resp, 202, o);
    }
out:
    pthread_rwlock_unlock(&hs.lock);
    json_object_put(en.props);
    json_object_put(en.inputs);
    json_object_put(request);
    json_object_put(answer);
    wf_exec_free(e);
out_body:
    json_object_put(body);
}

/* ---- options --------------------------------------------------------------------------- */

struct options_wait {
    struct wf_job *job;
    struct json_object *request; /* what was sent, for the answer */
};

static void options_free(void *arg)
{
    struct options_wait *w = arg;
    wf_job_release(w->job);
    json_object_put(w->request);
    free(w);
}

static void problem(struct json_object *problems, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void problem(struct json_object *problems, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    if (json_object_array_length(problems) >= WF_OPTIONS_PROBLEMS)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_object_array_add(problems, jstr(msg));
}

/* HubSpot's options answer: {"options":[{"label","value"[,"description"]}],"after"?,
 * "searchable"?}; every deviation is a problem. */
static void check_options(struct json_object *o, struct json_object *problems)
{
    struct json_object *opts, *v, *seen = json_object_new_object();
    if (!json_object_is_type(o, json_type_object)) {
        problem(problems, "the answer is not a JSON object");
        goto out;
    }
    if (!json_object_object_get_ex(o, "options", &opts) ||
        !json_object_is_type(opts, json_type_array)) {
        problem(problems, "options must be an array");
        goto out;
    }
    for (size_t i = 0; i < json_object_array_length(opts); i++) {
        struct json_object *op = json_object_array_get_idx(opts, i);
        const char *label = get_str(op, "label"), *value = get_str(op, "value");
        if (!json_object_is_type(op, json_type_object)) {
            problem(problems, "options[%zu] is not an object", i);
            continue;
        }
        if (!label || !*label)
            problem(problems, "options[%zu].label must be a non-empty string", i);
        if (!value)
            problem(problems, "options[%zu].value must be a string", i);
        else if (json_object_object_get_ex(seen, value, NULL))
            problem(problems, "options[%zu].value '%s' repeats an earlier option", i, value);
        else
            jadd(seen, value, NULL);
        if (json_object_object_get_ex(op, "description", &v) &&
            !json_object_is_type(v, json_type_string))
            problem(problems, "options[%zu].description must be a string", i);
    }
    if (json_object_object_get_ex(o, "after", &v) && !json_object_is_type(v, json_type_string))
        problem(problems, "after must be a string");
    if (json_object_object_get_ex(o, "searchable", &v) &&
        !json_object_is_type(v, json_type_boolean))
        problem(problems, "searchable must be a boolean");
out:
    json_object_put(seen);
}

static int options_poll(void *arg, struct sb_response *resp, int final)
{
    struct options_wait *w = arg;
    int status;
    const char *body, *error;
    size_t len;
    int64_t dur;
    if (!wf_job_result(w->job, &status, &body, &len, &error, &dur)) {
        if (final)
            wf_err(resp, 503, "the sandbox is shutting down");
        return final;
    }
    struct json_object *o = json_object_new_object(), *problems = json_object_new_array();
    struct json_object *parsed = len ? json_tokener_parse(body) : NULL, *request = NULL;
    if (*error)
        problem(problems, "no answer: %s", error);
    else if (status != 200)
        problem(problems, "HTTP %d, expected 200", status);
    if (!*error)
        check_options(parsed, problems);
    jadd(o, "status", json_object_new_int(status));
    jadd(o, "response",
         parsed ? parsed : (*error ? NULL : json_object_new_string_len(body, (int)len)));
    jadd(o, "valid", json_object_new_boolean(json_object_array_length(problems) == 0));
    jadd(o, "problems", problems);
    if (*error)
        jadd(o, "error", jstr(error));
    jadd(o, "duration_ms", json_object_new_int64(dur));
    json_object_deep_copy(w->request, &request, NULL);
    jadd(o, "request", request);
    sb_resp_json(resp, 200, o);
    return 1;
}

/* input_fields of the editor -> {"name":{"type":"STATIC_VALUE","value":…}} (typed, the
 * default) or plain strings; an object value is passed as it is. */
static struct json_object *options_inputs(struct json_object *in, int typed,
                                          struct sb_response *resp)
{
    struct json_object *out = json_object_new_object();
    if (in && !json_object_is_type(in, json_type_object)) {
        wf_err(resp, 400, "input_fields must be an object");
        json_object_put(out);
        return NULL;
    }
    if (!in)
        return out;
    json_object_object_foreach(in, k, v)
    {
        struct json_object *x = NULL;
        if (json_object_is_type(v, json_type_object) || json_object_is_type(v, json_type_null)) {
            json_object_deep_copy(v, &x, NULL);
        } else if (typed) {
            x = json_object_new_object();
            jadd(x, "type", jstr("STATIC_VALUE"));
            jadd(x, "value", jstr(json_object_get_string(v)));
        } else {
            x = jstr(json_object_get_string(v));
        }
        jadd(out, k, x);
    }
    return out;
}

static void options(const struct sb_request *req, struct sb_response *resp)
{
    struct json_object *body = body_object(req, resp), *request = NULL, *inputs, *in = NULL, *fo;
    const struct hs_devapp *app;
    const struct hs_def *d;
    struct wf_call call = {0};
    int64_t portal;
    int typed, sign;
    if (!body)
        return;
    const char *name = get_str(body, "input_field_name"), *q = get_str(body, "q");
    const char *after = get_str(body, "after"), *ot = get_str(body, "object_type");
    json_object_object_get_ex(body, "input_fields", &in);
    if (known_keys(body,
                   "app_id,definition_id,portal_id,input_field_name,input_fields,q,after,"
                   "object_type,typed,sign,client_secret",
                   resp))
        goto out_body;
    if (!name || get_bool(body, "typed", 1, &typed) || (sign = sign_bits(body)) < 0 ||
        (json_object_object_get_ex(body, "q", NULL) && !q) ||
        (json_object_object_get_ex(body, "after", NULL) && !after)) {
        wf_err(resp, 400,
               "input_field_name is required; q, after, object_type are strings, "
               "typed a boolean, sign both, v2, v3 or none");
        goto out_body;
    }
    if (!(inputs = options_inputs(in, typed, resp)))
        goto out_body;
    pthread_rwlock_rdlock(&hs.lock);
    if (lookup(body, &app, &d, &portal, resp)) {
        json_object_put(inputs);
        goto out;
    }
    struct json_object *td = hs_def_input(d, name, NULL), *ots;
    const char *url = td ? get_str(td, "optionsUrl") : NULL;
    if (!url) {
        json_object_put(inputs);
        wf_err(resp, 404, "definition %lld has no input field '%s' with an optionsUrl",
               (long long)d->id, name);
        goto out;
    }
    if (!ot) {
        json_object_object_get_ex(d->doc, "objectTypes", &ots);
        ot = json_object_get_string(json_object_array_get_idx(ots, 0));
    }
    int t = hs_type_of_object(ot);
    request = json_object_new_object();
    struct json_object *origin = json_object_new_object();
    jadd(origin, "portalId", json_object_new_int64(portal));
    jadd(origin, "actionDefinitionId", json_object_new_int64(d->id));
    jadd(origin, "actionDefinitionVersion", json_object_new_int(d->revision));
    jadd(request, "origin", origin);
    jadd(request, "objectTypeId", jstr(t >= 0 ? hs_types[t].id : ot));
    jadd(request, "inputFieldName", jstr(name));
    jadd(request, "inputFields", inputs);
    if (q || after) {
        fo = json_object_new_object();
        if (q)
            jadd(fo, "q", jstr(q));
        if (after)
            jadd(fo, "after", jstr(after));
        jadd(request, "fetchOptions", fo);
    }
    if (fill_call(&call, url, request, app, body, sign)) {
        wf_call_release(&call);
        wf_err(resp, 500, "out of memory");
        goto out;
    }
    struct options_wait *w = calloc(1, sizeof(*w));
    if (!w || !(w->job = wf_job_submit(&call))) {
        free(w);
        wf_err(resp, 500, "out of memory");
        goto out;
    }
    w->request = request;
    request = NULL;
    resp->poll = options_poll;
    resp->poll_free = options_free;
    resp->poll_arg = w;
out:
    pthread_rwlock_unlock(&hs.lock);
    json_object_put(request);
out_body:
    json_object_put(body);
}

/* ---- records ----------------------------------------------------------------------------- */

/* A callback registered by a seed (no execution): what the callback store knows. */
static struct json_object *seeded_callback(const struct hs_cb *c)
{
    struct json_object *o = json_object_new_object(), *copy = NULL, *st;
    const char *state = clock_wall_ms() >= c->expires_ms ? "EXPIRED" : "BLOCKED";
    if (c->completed && json_object_object_get_ex(c->outputs, "hs_execution_state", &st))
        state = json_object_get_string(st);
    jadd(o, "callbackId", jstr(c->id));
    jadd(o, "portalId", json_object_new_int64(c->portal));
    jadd(o, "state", jstr(state));
    if (c->completed && json_object_deep_copy(c->outputs, &copy, NULL) == 0)
        jadd(o, "outputFields", copy);
    else
        jadd(o, "outputFields", NULL);
    jadd(o, "deliveries", json_object_new_array());
    jadd(o, "completions", json_object_new_int(c->completions));
    jadd(o, "refused_completions", json_object_new_int(c->rejected));
    jadd(o, "expiresAt", jiso(c->expires_ms));
    jadd(o, "request", NULL);
    jadd(o, "response", NULL);
    return o;
}

static void callback_get(const char *id, struct sb_response *resp)
{
    struct json_object *doc = NULL;
    pthread_rwlock_rdlock(&hs.lock);
    wf_lock();
    struct wf_exec *e = wf_exec_find(id);
    const struct hs_cb *c = e ? NULL : hs_cb_find(id);
    if (e)
        doc = wf_exec_render(e, 1);
    else if (c)
        doc = seeded_callback(c);
    wf_unlock();
    pthread_rwlock_unlock(&hs.lock);
    if (doc)
        sb_resp_json(resp, 200, doc);
    else
        wf_err(resp, 404, "no execution or callback %s", id);
}

static void executions(const struct sb_request *req, struct sb_response *resp)
{
    const char *portal = sb_req_query(req, "portal"), *state = sb_req_query(req, "state");
    const char *def = sb_req_query(req, "definition"), *app = sb_req_query(req, "app");
    const char *lim = sb_req_query(req, "limit");
    int64_t portal_id = 0, def_id = 0, app_id = 0, limit = WF_LIST_LIMIT_DEFAULT;
    if ((portal && hs_parse_i64(portal, &portal_id)) || (def && hs_parse_i64(def, &def_id)) ||
        (app && hs_parse_i64(app, &app_id)) || (lim && (hs_parse_i64(lim, &limit) || !limit))) {
        wf_err(resp, 400, "portal, definition, app and limit must be numbers");
        return;
    }
    struct json_object *arr = json_object_new_array(), *o = json_object_new_object();
    int64_t total = 0;
    pthread_rwlock_rdlock(&hs.lock);
    wf_lock();
    for (size_t i = 0; i < wf_exec_count(); i++) {
        const struct wf_exec *e = wf_exec_at(i);
        if ((portal && e->portal != portal_id) || (def && e->def_id != def_id) ||
            (app && e->app_id != app_id) || (state && strcmp(state, wf_state_name(e)) != 0))
            continue;
        if (total++ < limit)
            json_object_array_add(arr, wf_exec_render(e, 0));
    }
    wf_unlock();
    pthread_rwlock_unlock(&hs.lock);
    jadd(o, "executions", arr);
    jadd(o, "total", json_object_new_int64(total));
    sb_resp_json(resp, 200, o);
}

void workflows_admin(const struct sb_request *req, const char *rest, struct sb_response *resp)
{
    int get = strcmp(req->method, "GET") == 0, post = strcmp(req->method, "POST") == 0;
    hs_init();
    if (strcmp(rest, "/workflows/enroll") == 0 && post)
        enroll(req, resp);
    else if (strcmp(rest, "/workflows/options") == 0 && post)
        options(req, resp);
    else if (strncmp(rest, "/callbacks/", 11) == 0 && rest[11] && !strchr(rest + 11, '/') && get)
        callback_get(rest + 11, resp);
    else if (strcmp(rest, "/executions") == 0 && get)
        executions(req, resp);
    else
        wf_err(resp, 404, "unknown admin route or method");
}
