/* hubspot_actions.c - HubSpot's custom workflow action definitions (Automation Actions
 * v4, reference §3.1) and the developer apps that own them.
 *
 * Routes, both path families (§1; hubspot.c sends them here before any bearer check):
 *   POST   /automation/v4/actions/{appId}                      create       -> 201
 *   GET    /automation/v4/actions/{appId}                      list: limit, after, archived
 *   GET    /automation/v4/actions/{appId}/{definitionId}       read: archived
 *   PATCH  /automation/v4/actions/{appId}/{definitionId}       merge, revisionId + 1
 *   DELETE /automation/v4/actions/{appId}/{definitionId}       archive      -> 204
 *   GET    .../{definitionId}/revisions[/{revisionId}]         every revision, or one
 * and the same under /automation/actions/{YYYY-MM}/. Authentication is the app's
 * developer API key in ?hapikey=: none -> 401, a bearer token instead -> 403 (§1), a
 * wrong key or an unknown app -> 401. These routes are not rate limited.
 *
 * Why validate here at all: the sandbox is what `hsqb-worker hubspot-actions sync` and
 * deploy/hubspot/ are tested against, so a definition HubSpot would refuse must be
 * refused here too. The rules come from HubSpot's custom action reference and the
 * official Node client's models (PublicActionDefinitionEgg and friends): actionUrl,
 * objectTypes and labels.en.actionName required; input fields typed with HubSpot's
 * property type/fieldType pairs; enumeration inputs need options, an optionsUrl or a
 * referencedObjectType; field names unique; dependencies and execution rules well
 * formed. Where HubSpot is silent the choice is ours and listed in the README.
 *
 * Storage: a definition keeps its validated, normalised body (`doc`: known keys only,
 * isRequired/options/externalOptions filled in, function sources kept) plus a rendered
 * snapshot per revision. Reads render `doc` as PublicActionDefinition: string id and
 * revisionId, archivedAt (epoch ms) when archived, functions as identifiers only.
 * Everything here runs under hs.lock (reads shared, writes exclusive).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/clock.h"
#include "common/hash.h"
#include "tests/sandbox/hubspot_internal.h"

#define DEF_LIST_DEFAULT 10   /* GET list without ?limit= */
#define DEF_LIST_MAX     100  /* larger limits are clamped, like the CRM lists */
#define DEF_URL_MAX      2048 /* actionUrl, optionsUrl */
#define DEF_NAME_MAX     200  /* an input or output field name */
#define DEF_FIELDS_MAX   100  /* input fields, output fields, options lists... */
#define DEF_PER_APP_MAX  1000 /* definitions per app, archived included */
#define DEF_ERR_MAX      320

static int64_t next_def_id = 10646377; /* HubSpot-looking ids; never reused, even by reset */

static const char key_invalid_msg[] =
    "The API key provided is invalid. View or manage your API key here: "
    "https://app.hubspot.com/l/api-key/";

/* ---- developer apps ------------------------------------------------------------------ */

static void devapp_free(struct hs_devapp *a)
{
    if (!a)
        return;
    free(a->key);
    free(a->secret);
    free(a);
}

static void def_free(struct hs_def *d)
{
    json_object_put(d->doc);
    json_object_put(d->revisions);
    free(d);
}

void hs_actions_clear_locked(void)
{
    for (struct hs_devapp *a = hs.devapps, *nx; a; a = nx) {
        nx = a->next;
        devapp_free(a);
    }
    hs.devapps = NULL;
    for (struct hs_def *d = hs.defs, *nx; d; d = nx) {
        nx = d->next;
        def_free(d);
    }
    hs.defs = NULL;
}

const struct hs_devapp *hs_devapp_find(int64_t app_id)
{
    for (const struct hs_devapp *a = hs.devapps; a; a = a->next)
        if (a->app_id == app_id)
            return a;
    return NULL;
}

const struct hs_def *hs_def_find(int64_t app_id, int64_t def_id)
{
    for (const struct hs_def *d = hs.defs; d; d = d->next)
        if (d->id == def_id && d->app_id == app_id)
            return d;
    return NULL;
}

static const char *seed_string(struct json_object *o, const char *key)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string) ||
        json_object_get_string_len(v) == 0)
        return NULL;
    return json_object_get_string(v);
}

int hs_devapps_seed(struct json_object *arr, char *err, size_t errsz)
{
    if (!json_object_is_type(arr, json_type_array)) {
        snprintf(err, errsz, "'developer_apps' must be an array");
        return -1;
    }
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        struct json_object *e = json_object_array_get_idx(arr, i), *idv = NULL;
        int64_t id = 0;
        const char *key = seed_string(e, "developer_api_key"),
                   *sec = seed_string(e, "client_secret");
        if (!json_object_is_type(e, json_type_object) ||
            !json_object_object_get_ex(e, "app_id", &idv) ||
            (json_object_is_type(idv, json_type_int)
                 ? (id = json_object_get_int64(idv)) <= 0
                 : hs_parse_i64(json_object_get_string(idv), &id) != 0 || id <= 0) ||
            !key || !sec) {
            snprintf(err, errsz,
                     "developer_apps[%zu]: need a positive app_id and non-empty "
                     "developer_api_key and client_secret strings",
                     i);
            return -1;
        }
        struct hs_devapp *a = calloc(1, sizeof(*a));
        if (!a || !(a->key = strdup(key)) || !(a->secret = strdup(sec))) {
            devapp_free(a);
            snprintf(err, errsz, "out of memory");
            return -1;
        }
        a->app_id = id;
        struct hs_devapp **pp = &hs.devapps;
        while (*pp && (*pp)->app_id != id)
            pp = &(*pp)->next;
        if (*pp) { /* same app: replaced, its definitions stay */
            a->next = (*pp)->next;
            devapp_free(*pp);
        }
        *pp = a;
    }
    return 0;
}

/* ---- small helpers -------------------------------------------------------------------- */

int hs_type_of_object(const char *s)
{
    if (!s)
        return -1;
    for (int t = 0; t < NT; t++)
        if (strcmp(s, hs_types[t].upper) == 0)
            return t;
    return hs_type_find(s);
}

static int in_csv(const char *csv, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = csv; p && *p;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len == n && strncmp(p, word, n) == 0)
            return 1;
        p = c ? c + 1 : NULL;
    }
    return 0;
}

static struct json_object *copy_of(struct json_object *v)
{
    struct json_object *c = NULL;
    if (json_object_deep_copy(v, &c, NULL) != 0)
        return NULL;
    return c;
}

/* ---- validation ------------------------------------------------------------------------
 * Each v_* checks one part of a definition and, on success, adds its normalised copy to
 * `out`; on failure it writes the first problem to v->err and returns -1. */

struct vctx {
    char err[DEF_ERR_MAX];
    struct json_object *inputs; /* name -> 1, for dependency checks (borrowed) */
};

static int vfail(struct vctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int vfail(struct vctx *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->err, sizeof(v->err), fmt, ap);
    va_end(ap);
    return -1;
}

static const char *get_str(struct json_object *o, const char *key)
{
    struct json_object *x;
    return json_object_object_get_ex(o, key, &x) && json_object_is_type(x, json_type_string)
               ? json_object_get_string(x)
               : NULL;
}

/* Present (non-null) member of o; NULL when absent or JSON null. */
static struct json_object *member(struct json_object *o, const char *key)
{
    struct json_object *x = NULL;
    json_object_object_get_ex(o, key, &x);
    return x;
}

static int is_url(const char *s)
{
    if (!s || strlen(s) > DEF_URL_MAX ||
        !(strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0))
        return 0;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return 0;
    return strlen(s) > (s[4] == 's' ? 8u : 7u);
}

/* type -> the fieldTypes HubSpot pairs with it (CRM properties guide, "Property type and
 * fieldType values"); NULL = any fieldType. */
static const struct {
    const char *type, *field_types;
} type_pairs[] = {
    {"string", "text,textarea,file,html,phonenumber,calculation_equation"},
    {"number", "number,calculation_equation,calculation_rollup,calculation_score,"
               "calculation_read_time"},
    {"bool", "booleancheckbox,calculation_equation"},
    {"enumeration", "booleancheckbox,checkbox,radio,select,calculation_equation"},
    {"date", "date"},
    {"datetime", "date"},
    {"phone_number", "phonenumber"},
    {"currency_number", "number,calculation_equation"},
    {"json", NULL},
    {"object_coordinates", NULL},
};
static const char field_types[] =
    "booleancheckbox,checkbox,date,file,number,phonenumber,radio,select,text,textarea,"
    "calculation_equation,calculation_rollup,calculation_score,calculation_read_time,unknown,"
    "html";
static const char value_types[] =
    "STATIC_VALUE,OBJECT_PROPERTY,FIELD_DATA,FETCHED_OBJECT_PROPERTY,ENROLLMENT_EVENT_PROPERTY";
static const char function_types[] =
    "PRE_ACTION_EXECUTION,PRE_FETCH_OPTIONS,POST_FETCH_OPTIONS,POST_ACTION_EXECUTION";

static int v_options(struct json_object *opts, const char *where, struct vctx *v)
{
    if (!json_object_is_type(opts, json_type_array) ||
        json_object_array_length(opts) > 10 * DEF_FIELDS_MAX)
        return vfail(v, "%s.options must be an array of at most %d options", where,
                     10 * DEF_FIELDS_MAX);
    for (size_t i = 0; i < json_object_array_length(opts); i++) {
        struct json_object *o = json_object_array_get_idx(opts, i);
        const char *label = get_str(o, "label");
        if (!json_object_is_type(o, json_type_object) || !label || !*label || !get_str(o, "value"))
            return vfail(v, "%s.options[%zu] needs a non-empty label and a string value", where, i);
        struct json_object *d = member(o, "description");
        if (d && !json_object_is_type(d, json_type_string))
            return vfail(v, "%s.options[%zu].description must be a string", where, i);
    }
    return 0;
}

/* typeDefinition of an input (input = 1) or output field -> normalised copy. */
static struct json_object *v_type_def(struct json_object *td, const char *where, int input,
                                      struct vctx *v)
{
    static const char *const strings[] = {"helpText", "description", "label",
                                          "referencedObjectType", "externalOptionsReferenceType"};
    if (!json_object_is_type(td, json_type_object)) {
        vfail(v, "%s.typeDefinition is required", where);
        return NULL;
    }
    const char *name = get_str(td, "name"), *type = get_str(td, "type");
    const char *ft = get_str(td, "fieldType"), *url = get_str(td, "optionsUrl");
    struct json_object *opts = member(td, "options"), *x;
    size_t k;
    if (!name || !*name || strlen(name) > DEF_NAME_MAX) {
        vfail(v, "%s.typeDefinition.name must be a string of 1..%d characters", where,
              DEF_NAME_MAX);
        return NULL;
    }
    for (k = 0; type && k < sizeof(type_pairs) / sizeof(type_pairs[0]); k++)
        if (strcmp(type, type_pairs[k].type) == 0)
            break;
    if (!type || k == sizeof(type_pairs) / sizeof(type_pairs[0])) {
        vfail(v,
              "%s.typeDefinition.type must be one of string, number, bool, datetime, "
              "enumeration, date, phone_number, currency_number, json, object_coordinates",
              where);
        return NULL;
    }
    if ((x = member(td, "fieldType")) && (!ft || !in_csv(field_types, ft))) {
        vfail(v, "%s.typeDefinition.fieldType '%s' is not a HubSpot field type", where,
              ft ? ft : json_object_to_json_string(x));
        return NULL;
    }
    if (ft && type_pairs[k].field_types && !in_csv(type_pairs[k].field_types, ft)) {
        vfail(v, "%s.typeDefinition: fieldType '%s' does not go with type '%s' (use one of %s)",
              where, ft, type, type_pairs[k].field_types);
        return NULL;
    }
    if (member(td, "optionsUrl") && !is_url(url)) {
        vfail(v, "%s.typeDefinition.optionsUrl must be an absolute http(s) URL", where);
        return NULL;
    }
    if (opts && v_options(opts, where, v))
        return NULL;
    if (url && opts && json_object_array_length(opts) > 0) {
        vfail(v, "%s.typeDefinition: options and optionsUrl exclude each other", where);
        return NULL;
    }
    if (input && strcmp(type, "enumeration") == 0 && !url && !get_str(td, "referencedObjectType") &&
        (!opts || json_object_array_length(opts) == 0)) {
        vfail(v,
              "%s.typeDefinition: an enumeration needs options, an optionsUrl or a "
              "referencedObjectType",
              where);
        return NULL;
    }
    for (k = 0; k < sizeof(strings) / sizeof(strings[0]); k++)
        if ((x = member(td, strings[k])) && !json_object_is_type(x, json_type_string)) {
            vfail(v, "%s.typeDefinition.%s must be a string", where, strings[k]);
            return NULL;
        }
    if ((x = member(td, "externalOptions")) && !json_object_is_type(x, json_type_boolean)) {
        vfail(v, "%s.typeDefinition.externalOptions must be a boolean", where);
        return NULL;
    }
    struct json_object *out = json_object_new_object();
    jadd(out, "name", jstr(name));
    jadd(out, "type", jstr(type));
    if (ft)
        jadd(out, "fieldType", jstr(ft));
    jadd(out, "options", opts ? copy_of(opts) : json_object_new_array());
    if (url)
        jadd(out, "optionsUrl", jstr(url));
    for (k = 0; k < sizeof(strings) / sizeof(strings[0]); k++)
        if ((x = member(td, strings[k])))
            jadd(out, strings[k], jstr(json_object_get_string(x)));
    x = member(td, "externalOptions");
    jadd(out, "externalOptions", json_object_new_boolean(x && json_object_get_boolean(x)));
    return out;
}

/* Names of fields seen so far (duplicates refused); `seen` is an object used as a set. */
static int v_fields(struct json_object *arr, const char *key, int input, struct json_object *out,
                    struct json_object *seen, struct vctx *v)
{
    if (!json_object_is_type(arr, json_type_array) ||
        json_object_array_length(arr) > DEF_FIELDS_MAX)
        return vfail(v, "%s must be an array of at most %d fields", key, DEF_FIELDS_MAX);
    struct json_object *res = json_object_new_array();
    jadd(out, key, res);
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        struct json_object *f = json_object_array_get_idx(arr, i), *x, *td;
        char where[64];
        snprintf(where, sizeof(where), "%s[%zu]", key, i);
        if (!json_object_is_type(f, json_type_object))
            return vfail(v, "%s must be an object", where);
        if (!(td = v_type_def(member(f, "typeDefinition"), where, input, v)))
            return -1;
        json_object_array_add(res, json_object_new_object());
        struct json_object *nf = json_object_array_get_idx(res, i);
        const char *name = get_str(td, "name");
        if (json_object_object_get_ex(seen, name, NULL)) {
            vfail(v, "%s: duplicate field name '%s'", where, name);
            json_object_put(td);
            return -1;
        }
        jadd(seen, name, json_object_new_boolean(1));
        jadd(nf, "typeDefinition", td);
        if (!input)
            continue;
        if ((x = member(f, "supportedValueTypes"))) {
            size_t n = json_object_is_type(x, json_type_array) ? json_object_array_length(x) : 0;
            for (size_t k = 0; k < n; k++) {
                const char *s = json_object_get_string(json_object_array_get_idx(x, k));
                if (!json_object_is_type(json_object_array_get_idx(x, k), json_type_string) ||
                    !in_csv(value_types, s))
                    n = 0;
            }
            if (n == 0)
                return vfail(v, "%s.supportedValueTypes must be a non-empty array of %s", where,
                             value_types);
            jadd(nf, "supportedValueTypes", copy_of(x));
        }
        if ((x = member(f, "isRequired")) && !json_object_is_type(x, json_type_boolean))
            return vfail(v, "%s.isRequired must be a boolean", where);
        jadd(nf, "isRequired", json_object_new_boolean(x && json_object_get_boolean(x)));
        if ((x = member(f, "automationFieldType"))) {
            if (!json_object_is_type(x, json_type_string))
                return vfail(v, "%s.automationFieldType must be a string", where);
            jadd(nf, "automationFieldType", jstr(json_object_get_string(x)));
        }
    }
    return 0;
}

static int v_string_map(struct json_object *m, const char *where, struct vctx *v)
{
    if (!json_object_is_type(m, json_type_object))
        return vfail(v, "%s must be an object of strings", where);
    json_object_object_foreach(m, k, x)
    {
        (void)k;
        if (!json_object_is_type(x, json_type_string))
            return vfail(v, "%s must be an object of strings", where);
    }
    return 0;
}

static int v_labels(struct json_object *labels, struct json_object *out, struct vctx *v)
{
    static const char *const strs[] = {"actionName", "actionDescription", "appDisplayName",
                                       "actionCardContent"};
    static const char *const maps[] = {"inputFieldLabels", "outputFieldLabels",
                                       "inputFieldDescriptions", "executionRules"};
    struct json_object *en = member(labels, "en"), *x;
    const char *name = en ? get_str(en, "actionName") : NULL;
    if (!json_object_is_type(labels, json_type_object) || !name || !*name)
        return vfail(v, "labels.en.actionName is required (English labels are required)");
    json_object_object_foreach(labels, lang, l)
    {
        char where[96];
        if (!json_object_is_type(l, json_type_object))
            return vfail(v, "labels.%s must be an object", lang);
        for (size_t k = 0; k < sizeof(strs) / sizeof(strs[0]); k++)
            if ((x = member(l, strs[k])) && !json_object_is_type(x, json_type_string))
                return vfail(v, "labels.%s.%s must be a string", lang, strs[k]);
        for (size_t k = 0; k < sizeof(maps) / sizeof(maps[0]); k++) {
            snprintf(where, sizeof(where), "labels.%s.%s", lang, maps[k]);
            if ((x = member(l, maps[k])) && v_string_map(x, where, v))
                return -1;
        }
        if ((x = member(l, "inputFieldOptionLabels"))) {
            snprintf(where, sizeof(where), "labels.%s.inputFieldOptionLabels", lang);
            if (!json_object_is_type(x, json_type_object))
                return vfail(v, "%s must be an object of objects of strings", where);
            json_object_object_foreach(x, fk, fm)
            {
                (void)fk;
                if (v_string_map(fm, where, v))
                    return -1;
            }
        }
    }
    jadd(out, "labels", copy_of(labels));
    return 0;
}

static int v_rules(struct json_object *rules, struct json_object *out, struct vctx *v)
{
    if (!json_object_is_type(rules, json_type_array) ||
        json_object_array_length(rules) > DEF_FIELDS_MAX)
        return vfail(v, "executionRules must be an array of at most %d rules", DEF_FIELDS_MAX);
    for (size_t i = 0; i < json_object_array_length(rules); i++) {
        struct json_object *r = json_object_array_get_idx(rules, i);
        const char *label = get_str(r, "labelName");
        if (!label || !*label || !json_object_is_type(member(r, "conditions"), json_type_object))
            return vfail(v, "executionRules[%zu] needs a labelName string and a conditions object",
                         i);
    }
    jadd(out, "executionRules", copy_of(rules));
    return 0;
}

static int v_dependencies(struct json_object *deps, struct json_object *out, struct vctx *v)
{
    if (!json_object_is_type(deps, json_type_array))
        return vfail(v, "inputFieldDependencies must be an array");
    for (size_t i = 0; i < json_object_array_length(deps); i++) {
        struct json_object *d = json_object_array_get_idx(deps, i);
        const char *type = get_str(d, "dependencyType"), *ctl = get_str(d, "controllingFieldName");
        struct json_object *names = member(d, "dependentFieldNames");
        int cond = type && strcmp(type, "CONDITIONAL_SINGLE_FIELD") == 0;
        if (!type || (!cond && strcmp(type, "SINGLE_FIELD") != 0))
            return vfail(v,
                         "inputFieldDependencies[%zu].dependencyType must be SINGLE_FIELD or "
                         "CONDITIONAL_SINGLE_FIELD",
                         i);
        if (!ctl || !json_object_object_get_ex(v->inputs, ctl, NULL))
            return vfail(v,
                         "inputFieldDependencies[%zu].controllingFieldName must name an input "
                         "field",
                         i);
        if (cond && !get_str(d, "controllingFieldValue"))
            return vfail(v, "inputFieldDependencies[%zu].controllingFieldValue is required", i);
        size_t n =
            json_object_is_type(names, json_type_array) ? json_object_array_length(names) : 0;
        for (size_t k = 0; k < n; k++) {
            const char *s = json_object_get_string(json_object_array_get_idx(names, k));
            if (!json_object_is_type(json_object_array_get_idx(names, k), json_type_string) ||
                !json_object_object_get_ex(v->inputs, s, NULL))
                n = 0;
        }
        if (n == 0)
            return vfail(v,
                         "inputFieldDependencies[%zu].dependentFieldNames must name input "
                         "fields",
                         i);
    }
    jadd(out, "inputFieldDependencies", copy_of(deps));
    return 0;
}

static int v_functions(struct json_object *fns, struct json_object *out, struct vctx *v)
{
    if (!json_object_is_type(fns, json_type_array) || json_object_array_length(fns) > 20)
        return vfail(v, "functions must be an array of at most 20 functions");
    for (size_t i = 0; i < json_object_array_length(fns); i++) {
        struct json_object *f = json_object_array_get_idx(fns, i), *id = member(f, "id");
        const char *t = get_str(f, "functionType");
        if (!t || !in_csv(function_types, t) || !get_str(f, "functionSource") ||
            (id && !json_object_is_type(id, json_type_string)))
            return vfail(v, "functions[%zu] needs a functionType (%s) and a functionSource string",
                         i, function_types);
    }
    jadd(out, "functions", copy_of(fns));
    return 0;
}

static int v_object_types(struct json_object *ot, struct json_object *out, struct vctx *v)
{
    size_t n = json_object_is_type(ot, json_type_array) ? json_object_array_length(ot) : 0;
    for (size_t i = 0; i < n; i++) {
        struct json_object *s = json_object_array_get_idx(ot, i);
        if (!json_object_is_type(s, json_type_string) || json_object_get_string_len(s) == 0 ||
            json_object_get_string_len(s) > 64)
            n = 0;
    }
    if (n == 0)
        return vfail(v, "objectTypes must be a non-empty array of object types (e.g. [\"DEAL\"])");
    jadd(out, "objectTypes", copy_of(ot));
    return 0;
}

static int v_request_options(struct json_object *ro, struct json_object *out, struct vctx *v)
{
    struct json_object *props = member(ro, "properties");
    size_t n = json_object_is_type(props, json_type_array) ? json_object_array_length(props) : 0;
    int ok = json_object_is_type(ro, json_type_object) && n <= HS_MAX_NAMES &&
             json_object_is_type(props, json_type_array);
    for (size_t i = 0; ok && i < n; i++)
        ok = json_object_is_type(json_object_array_get_idx(props, i), json_type_string) &&
             json_object_get_string_len(json_object_array_get_idx(props, i)) > 0;
    if (!ok)
        return vfail(v,
                     "objectRequestOptions.properties must be an array of at most %d property "
                     "names",
                     HS_MAX_NAMES);
    struct json_object *o = json_object_new_object();
    jadd(o, "properties", copy_of(props));
    jadd(out, "objectRequestOptions", o);
    return 0;
}

/* A whole definition (create, or the result of a PATCH merge) -> normalised doc, or NULL
 * with v->err. Unknown top-level keys are dropped; id, revisionId and archivedAt are the
 * server's. */
static struct json_object *def_validate(struct json_object *in, struct vctx *v)
{
    struct json_object *out = json_object_new_object(), *x, *seen_out = json_object_new_object();
    struct json_object *none = json_object_new_array();
    const char *url = get_str(in, "actionUrl");
    v->inputs = json_object_new_object();
    int rc = -1;
    if (!is_url(url)) {
        vfail(v, "actionUrl is required and must be an absolute http(s) URL");
        goto out;
    }
    jadd(out, "actionUrl", jstr(url));
    if ((x = member(in, "published")) && !json_object_is_type(x, json_type_boolean)) {
        vfail(v, "published must be a boolean");
        goto out;
    }
    jadd(out, "published", json_object_new_boolean(x && json_object_get_boolean(x)));
    if (v_object_types(member(in, "objectTypes"), out, v) ||
        v_fields((x = member(in, "inputFields")) ? x : none, "inputFields", 1, out, v->inputs, v) ||
        ((x = member(in, "outputFields")) && v_fields(x, "outputFields", 0, out, seen_out, v)) ||
        v_labels(member(in, "labels"), out, v) ||
        ((x = member(in, "objectRequestOptions")) && v_request_options(x, out, v)) ||
        ((x = member(in, "executionRules")) && v_rules(x, out, v)) ||
        ((x = member(in, "inputFieldDependencies")) && v_dependencies(x, out, v)))
        goto out;
    if ((x = member(in, "functions")) ? v_functions(x, out, v)
                                      : (jadd(out, "functions", json_object_new_array()), 0))
        goto out;
    rc = 0;
out:
    json_object_put(none);
    json_object_put(seen_out);
    json_object_put(v->inputs);
    v->inputs = NULL;
    if (rc) {
        json_object_put(out);
        return NULL;
    }
    return out;
}

/* ---- rendering -------------------------------------------------------------------------- */

/* PublicActionDefinition: id and revisionId as strings first, functions as identifiers
 * (no source), archivedAt when archived. Caller puts. */
static struct json_object *def_render(const struct hs_def *d)
{
    struct json_object *o = json_object_new_object();
    char buf[32];
    snprintf(buf, sizeof(buf), "%lld", (long long)d->id);
    jadd(o, "id", jstr(buf));
    snprintf(buf, sizeof(buf), "%d", d->revision);
    jadd(o, "revisionId", jstr(buf));
    json_object_object_foreach(d->doc, k, v)
    {
        if (strcmp(k, "functions") != 0) {
            jadd(o, k, copy_of(v));
            continue;
        }
        struct json_object *ids = json_object_new_array();
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            struct json_object *f = json_object_array_get_idx(v, i), *id = json_object_new_object();
            const char *fid = get_str(f, "id");
            jadd(id, "functionType", jstr(get_str(f, "functionType")));
            if (fid)
                jadd(id, "id", jstr(fid));
            json_object_array_add(ids, id);
        }
        jadd(o, "functions", ids);
    }
    if (d->archived)
        jadd(o, "archivedAt", json_object_new_int64(d->archived_ms));
    return o;
}

static void def_snapshot(struct hs_def *d)
{
    struct json_object *r = json_object_new_object();
    char buf[32];
    snprintf(buf, sizeof(buf), "%d", d->revision);
    jadd(r, "id", jstr(buf));
    jadd(r, "revisionId", jstr(buf));
    jadd(r, "createdAt", jiso(clock_wall_ms()));
    jadd(r, "definition", def_render(d));
    json_object_array_add(d->revisions, r);
}

struct json_object *hs_def_input(const struct hs_def *d, const char *name, int *required)
{
    struct json_object *ins = member(d->doc, "inputFields");
    for (size_t i = 0; ins && i < json_object_array_length(ins); i++) {
        struct json_object *f = json_object_array_get_idx(ins, i),
                           *td = member(f, "typeDefinition");
        const char *n = get_str(td, "name");
        if (n && strcmp(n, name) == 0) {
            if (required)
                *required = json_object_get_boolean(member(f, "isRequired"));
            return td;
        }
    }
    return NULL;
}

/* ---- handlers ----------------------------------------------------------------------------- */

static void validation_error(struct sb_response *resp, const char *msg)
{
    hs_errorf(resp, 400, "VALIDATION_ERROR", "Invalid input JSON: %s", msg);
}

static void h_create(const struct hs_devapp *a, const struct sb_request *req,
                     struct sb_response *resp)
{
    struct json_object *body = hs_json_body(req, resp), *doc;
    struct vctx v = {""};
    size_t n = 0;
    if (!body)
        return;
    for (struct hs_def *d = hs.defs; d; d = d->next)
        n += d->app_id == a->app_id;
    if (n >= DEF_PER_APP_MAX) {
        hs_errorf(resp, 400, "VALIDATION_ERROR", "An app may have at most %d action definitions",
                  DEF_PER_APP_MAX);
    } else if (!(doc = def_validate(body, &v))) {
        validation_error(resp, v.err);
    } else {
        struct hs_def *d = calloc(1, sizeof(*d)), **pp = &hs.defs;
        if (!d) {
            json_object_put(doc);
            hs_error(resp, 500, "INTERNAL_ERROR", "out of memory", NULL);
            goto out;
        }
        d->id = next_def_id++;
        d->app_id = a->app_id;
        d->revision = 1;
        d->doc = doc;
        d->revisions = json_object_new_array();
        def_snapshot(d);
        while (*pp)
            pp = &(*pp)->next;
        *pp = d;
        sb_resp_json(resp, 201, def_render(d));
    }
out:
    json_object_put(body);
}

static int archived_q(const struct sb_request *req)
{
    const char *a = sb_req_query(req, "archived");
    return a && strcmp(a, "true") == 0;
}

/* ?limit= and ?after= (a number) of a list; -1 with a 400 in resp. */
static int page_params(const struct sb_request *req, int *limit, int64_t *after,
                       struct sb_response *resp)
{
    const char *as = sb_req_query(req, "after");
    *after = 0;
    if (hs_limit_param(req, DEF_LIST_DEFAULT, DEF_LIST_MAX, limit, resp))
        return -1;
    if (as && hs_parse_i64(as, after) != 0) {
        hs_errorf(resp, 400, "VALIDATION_ERROR", "Invalid 'after' cursor: %s", as);
        return -1;
    }
    return 0;
}

static void h_list(const struct hs_devapp *a, const struct sb_request *req,
                   struct sb_response *resp)
{
    int limit, archived = archived_q(req), n = 0;
    int64_t after;
    if (page_params(req, &limit, &after, resp))
        return;
    struct json_object *out = json_object_new_object(), *res = json_object_new_array();
    const struct hs_def *d = hs.defs;
    for (; d; d = d->next) {
        if (d->app_id != a->app_id || d->archived != archived || d->id < after)
            continue;
        if (n == limit)
            break;
        json_object_array_add(res, def_render(d));
        n++;
    }
    jadd(out, "results", res);
    if (d) {
        char next[32];
        snprintf(next, sizeof(next), "%lld", (long long)d->id);
        hs_paging_next(out, req, next);
    }
    sb_resp_json(resp, 200, out);
}

/* Keys a PATCH may change (PublicActionDefinitionPatch); each replaces the stored value. */
static const char *const patch_keys[] = {"actionUrl",
                                         "published",
                                         "objectTypes",
                                         "inputFields",
                                         "outputFields",
                                         "labels",
                                         "executionRules",
                                         "objectRequestOptions",
                                         "inputFieldDependencies",
                                         "functions"};

static void h_patch(struct hs_def *d, const struct sb_request *req, struct sb_response *resp)
{
    struct json_object *body = hs_json_body(req, resp), *merged, *doc;
    struct vctx v = {""};
    if (!body)
        return;
    merged = copy_of(d->doc);
    for (size_t k = 0; merged && k < sizeof(patch_keys) / sizeof(patch_keys[0]); k++) {
        struct json_object *x;
        if (json_object_object_get_ex(body, patch_keys[k], &x))
            jadd(merged, patch_keys[k], copy_of(x));
    }
    if (!merged) {
        hs_error(resp, 500, "INTERNAL_ERROR", "out of memory", NULL);
    } else if (!(doc = def_validate(merged, &v))) {
        validation_error(resp, v.err);
    } else {
        json_object_put(d->doc);
        d->doc = doc;
        d->revision++;
        def_snapshot(d);
        sb_resp_json(resp, 200, def_render(d));
    }
    json_object_put(merged);
    json_object_put(body);
}

static void h_revisions(const struct hs_def *d, const char *rev, const struct sb_request *req,
                        struct sb_response *resp)
{
    size_t n = json_object_array_length(d->revisions);
    if (rev) {
        int64_t r;
        if (hs_parse_i64(rev, &r) != 0 || r < 1 || (size_t)r > n) {
            hs_error(resp, 404, "OBJECT_NOT_FOUND", "resource not found", NULL);
            return;
        }
        sb_resp_json(resp, 200, copy_of(json_object_array_get_idx(d->revisions, (size_t)r - 1)));
        return;
    }
    int limit;
    int64_t after;
    if (page_params(req, &limit, &after, resp))
        return;
    struct json_object *out = json_object_new_object(), *res = json_object_new_array();
    size_t i = after > 0 ? (size_t)(after - 1) : 0;
    for (; i < n && json_object_array_length(res) < (size_t)limit; i++)
        json_object_array_add(res, copy_of(json_object_array_get_idx(d->revisions, i)));
    jadd(out, "results", res);
    if (i < n) {
        char next[32];
        snprintf(next, sizeof(next), "%zu", i + 1);
        hs_paging_next(out, req, next);
    }
    sb_resp_json(resp, 200, out);
}

/* The app of the path, authenticated by its developer key; NULL with 401/403 in resp. */
static const struct hs_devapp *dev_auth(const struct sb_request *req, const char *app_s,
                                        struct sb_response *resp)
{
    const char *key = sb_req_query(req, "hapikey"), *h = sb_req_header(req, "Authorization");
    int64_t id;
    if (!key) {
        if (h && strncasecmp(h, "Bearer ", 7) == 0)
            hs_error(resp, 403, "INVALID_AUTHENTICATION",
                     "This endpoint requires a developer API key (hapikey); OAuth and "
                     "private app access tokens are not accepted.",
                     NULL);
        else
            hs_error(resp, 401, "INVALID_AUTHENTICATION", hs_auth_msg, NULL);
        return NULL;
    }
    const struct hs_devapp *a = hs_parse_i64(app_s, &id) == 0 ? hs_devapp_find(id) : NULL;
    if (!a || !hash_ct_equal(a->key, strlen(a->key), key, strlen(key))) {
        hs_error(resp, 401, "INVALID_AUTHENTICATION", key_invalid_msg, NULL);
        return NULL;
    }
    return a;
}

void hs_actions_handle(const struct sb_request *req, struct sb_response *resp,
                       const struct hs_def_route *r)
{
    const char *m = req->method;
    int get = strcmp(m, "GET") == 0, write = !get;
    int allowed = r->kind == HS_DEFS ? get || strcmp(m, "POST") == 0
                  : r->kind == HS_DEF_ONE
                      ? get || strcmp(m, "PATCH") == 0 || strcmp(m, "DELETE") == 0
                      : get;
    if (!allowed) {
        hs_errorf(resp, 405, NULL, "HTTP %s is not supported by this endpoint", m);
        return;
    }
    if (write)
        pthread_rwlock_wrlock(&hs.lock);
    else
        pthread_rwlock_rdlock(&hs.lock);
    const struct hs_devapp *a = dev_auth(req, r->app, resp);
    if (!a)
        goto out;
    if (r->kind == HS_DEFS) {
        if (get)
            h_list(a, req, resp);
        else
            h_create(a, req, resp);
        goto out;
    }
    int64_t id;
    struct hs_def *d = NULL;
    if (hs_parse_i64(r->def, &id) == 0)
        d = (struct hs_def *)hs_def_find(a->app_id, id);
    int want_archived = get && archived_q(req);
    if (!d || (d->archived && !want_archived && r->kind == HS_DEF_ONE) || (!get && d->archived)) {
        hs_error(resp, 404, "OBJECT_NOT_FOUND", "resource not found", NULL);
        goto out;
    }
    if (r->kind == HS_DEF_REVS || r->kind == HS_DEF_REV) {
        h_revisions(d, r->rev, req, resp);
    } else if (get) {
        sb_resp_json(resp, 200, def_render(d));
    } else if (strcmp(m, "PATCH") == 0) {
        h_patch(d, req, resp);
    } else {
        d->archived = 1;
        d->archived_ms = clock_wall_ms();
        sb_resp_json(resp, 204, NULL);
    }
out:
    pthread_rwlock_unlock(&hs.lock);
}
