/* actiondefs.c - workflow action definitions: load, match, normalise, compare (see
 * actiondefs.h).
 *
 * Why normalise rather than compare what HubSpot answers byte for byte: the API echoes a
 * definition with its own defaults filled in and members in its own order, so a literal
 * comparison would "update" every definition on every run and a sync would never be
 * idempotent. Dropping empty values on both sides makes "absent" and "default" the same
 * thing, which is what they mean to HubSpot, while every value a body sets still has to
 * come back exactly. NEEDSWORK: what HubSpot echoes is known from its OpenAPI models and
 * the sandbox; a default that is not empty (say a displayOrder of -1) would show as a
 * difference against the real API until the body states it.
 */
#include "worker/actiondefs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/utf8.h"

#define PATH_SHOWN 400 /* bytes of a difference's path */

/* ---- loading --------------------------------------------------------------------- */

/* The whole file at path, at most max bytes, NUL-terminated; caller frees *buf. */
static int read_file(const char *path, size_t max, char **buf, size_t *len, char *errstr,
                     size_t errsz)
{
    FILE *f = fopen(path, "rb");
    char *b = NULL;
    size_t n;

    if (!f) {
        snprintf(errstr, errsz, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (!(b = malloc(max + 2))) {
        fclose(f);
        snprintf(errstr, errsz, "%s: out of memory", path);
        return -1;
    }
    n = fread(b, 1, max + 1, f);
    if (ferror(f) || n > max) {
        snprintf(errstr, errsz, ferror(f) ? "%s: read error" : "%s: larger than %zu bytes", path,
                 (size_t)max);
        fclose(f);
        free(b);
        return -1;
    }
    fclose(f);
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 0;
}

/* text[0..len) with every ACTIONDEFS_PLACEHOLDER replaced by url; caller frees. */
static char *substitute(const char *text, size_t len, const char *url, size_t *outlen)
{
    const size_t pl = strlen(ACTIONDEFS_PLACEHOLDER), ul = strlen(url);
    size_t count = 0, o = 0;
    const char *p = text, *q;
    char *out;

    while ((q = memmem(p, len - (size_t)(p - text), ACTIONDEFS_PLACEHOLDER, pl))) {
        count++;
        p = q + pl;
    }
    if (!(out = malloc(len + count * (ul > pl ? ul - pl : 0) + 1)))
        return NULL;
    for (p = text; (q = memmem(p, len - (size_t)(p - text), ACTIONDEFS_PLACEHOLDER, pl));
         p = q + pl) {
        memcpy(out + o, p, (size_t)(q - p));
        o += (size_t)(q - p);
        memcpy(out + o, url, ul);
        o += ul;
    }
    memcpy(out + o, p, len - (size_t)(p - text));
    o += len - (size_t)(p - text);
    out[o] = '\0';
    *outlen = o;
    return out;
}

/* Is body the definition of action a at public_url? NULL or what is wrong. */
static const char *not_a_body(struct json_object *body, enum hsqb_action a, const char *public_url)
{
    struct json_object *labels, *en;
    const char *url, *name;
    size_t n = strlen(public_url), pl = strlen(ACTIONDEFS_PATH_PREFIX);

    if (!json_object_is_type(body, json_type_object))
        return "not a JSON object";
    if (json_get_str(body, "actionUrl", &url) != JGET_OK)
        return "actionUrl missing or not a string";
    if (strncmp(url, public_url, n) != 0 || strncmp(url + n, ACTIONDEFS_PATH_PREFIX, pl) != 0 ||
        strcmp(url + n + pl, event_action_name(a)) != 0)
        return "actionUrl is not {{PUBLIC_URL}}/hubspot/actions/<this file's action>";
    if (json_get_obj(body, "labels", &labels) != JGET_OK ||
        json_get_obj(labels, "en", &en) != JGET_OK ||
        json_get_str(en, "actionName", &name) != JGET_OK || !*name)
        return "labels.en.actionName missing (HubSpot requires English labels)";
    return NULL;
}

int actiondefs_load(const char *dir, enum hsqb_action a, const char *public_url,
                    struct json_object **out, char *errstr, size_t errsz)
{
    char path[4096], e[256];
    char *raw = NULL, *text = NULL;
    size_t rawlen = 0, len = 0;
    struct json_object *body = NULL;
    const char *why;
    int rc = -1;

    if (snprintf(path, sizeof path, "%s/%s.json", dir, event_action_name(a)) >= (int)sizeof path) {
        snprintf(errstr, errsz, "definitions directory name too long");
        return -1;
    }
    if (read_file(path, ACTIONDEFS_FILE_MAX, &raw, &rawlen, errstr, errsz) < 0)
        return -1;
    if (!(text = substitute(raw, rawlen, public_url, &len))) {
        snprintf(errstr, errsz, "%s: out of memory", path);
        goto out;
    }
    if (!(body = json_parse_strict(text, len, 0, e, sizeof e))) {
        snprintf(errstr, errsz, "%s: not valid JSON: %s", path, e);
        goto out;
    }
    if ((why = not_a_body(body, a, public_url))) {
        snprintf(errstr, errsz, "%s: %s", path, why);
        goto out;
    }
    *out = body;
    body = NULL;
    rc = 0;
out:
    json_object_put(body);
    free(text);
    free(raw);
    return rc;
}

/* ---- matching -------------------------------------------------------------------- */

int actiondefs_action_of(struct json_object *def, enum hsqb_action *out)
{
    const char *url, *path, *name;
    char buf[64];
    size_t n, pl = strlen(ACTIONDEFS_PATH_PREFIX);

    if (json_get_str(def, "actionUrl", &url) != JGET_OK || !(path = strstr(url, "://")))
        return -1;
    path += 3;
    path += strcspn(path, "/?#");
    if (*path != '/' || strncmp(path, ACTIONDEFS_PATH_PREFIX, pl) != 0)
        return -1;
    name = path + pl;
    n = strcspn(name, "?#");
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, name, n);
    buf[n] = '\0';
    return event_action_from_name(buf, out);
}

int actiondefs_managed(const char *key)
{
    return key && strcmp(key, "published") != 0;
}

/* ---- normalising ----------------------------------------------------------------- */

static int empty(struct json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null:
        return 1;
    case json_type_boolean:
        return !json_object_get_boolean(v);
    case json_type_int:
        return json_object_get_int64(v) == 0;
    case json_type_double:
        return json_object_get_double(v) == 0.0;
    case json_type_string:
        return json_object_get_string_len(v) == 0;
    case json_type_array:
        return json_object_array_length(v) == 0;
    case json_type_object:
        return json_object_object_length(v) == 0;
    }
    return 0;
}

struct json_object *actiondefs_normalise(struct json_object *v)
{
    struct json_object *out;

    if (!v || empty(v))
        return NULL;
    if (json_object_is_type(v, json_type_object)) {
        out = json_object_new_object();
        json_object_object_foreach(v, key, val)
        {
            struct json_object *n = actiondefs_normalise(val);
            if (n && out)
                json_object_object_add(out, key, n);
            else
                json_object_put(n);
        }
    } else if (json_object_is_type(v, json_type_array)) {
        out = json_object_new_array();
        for (size_t i = 0; out && i < json_object_array_length(v); i++)
            json_object_array_add(out, actiondefs_normalise(json_object_array_get_idx(v, i)));
    } else {
        return json_object_get(v); /* scalars are shared, never modified */
    }
    if (out && empty(out)) {
        json_object_put(out);
        return NULL;
    }
    return out;
}

/* ---- comparing ------------------------------------------------------------------- */

struct walk {
    actiondefs_diff_fn fn;
    void *opaque;
    char path[PATH_SHOWN];
};

static void shown(struct json_object *v, char *buf, size_t bufsz)
{
    const char *s = v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE)
                      : "(none)";
    size_t n = strlen(s), cut = utf8_cut_len(s, n, ACTIONDEFS_VALUE_SHOWN);

    snprintf(buf, bufsz, "%.*s%s", (int)cut, s, cut < n ? "..." : "");
}

/* Report the leaves where ours and theirs (both normalised, either may be NULL) differ,
 * w->path naming where they are. */
static void walk(struct walk *w, struct json_object *ours, struct json_object *theirs)
{
    size_t at = strlen(w->path);

    if (json_object_equal(ours, theirs))
        return;
    if (json_object_is_type(ours, json_type_object) &&
        json_object_is_type(theirs, json_type_object)) {
        json_object_object_foreach(ours, k, v)
        {
            snprintf(w->path + at, sizeof w->path - at, ".%s", k);
            walk(w, v, json_object_object_get(theirs, k));
        }
        json_object_object_foreach(theirs, k2, v2)
        {
            if (json_object_object_get_ex(ours, k2, NULL))
                continue;
            snprintf(w->path + at, sizeof w->path - at, ".%s", k2);
            walk(w, NULL, v2);
        }
    } else if (json_object_is_type(ours, json_type_array) &&
               json_object_is_type(theirs, json_type_array)) {
        size_t a = json_object_array_length(ours), b = json_object_array_length(theirs);
        for (size_t i = 0; i < (a > b ? a : b); i++) {
            snprintf(w->path + at, sizeof w->path - at, "[%zu]", i);
            walk(w, i < a ? json_object_array_get_idx(ours, i) : NULL,
                 i < b ? json_object_array_get_idx(theirs, i) : NULL);
        }
    } else {
        char o[ACTIONDEFS_VALUE_SHOWN + 8], t[ACTIONDEFS_VALUE_SHOWN + 8];
        shown(ours, o, sizeof o);
        shown(theirs, t, sizeof t);
        w->fn(w->opaque, w->path, t, o);
    }
    w->path[at] = '\0';
}

/* Does member key of want differ from have's? Reports the leaves through w when set. */
static int member_differs(struct json_object *want, struct json_object *have, const char *key,
                          struct walk *w)
{
    struct json_object *ours = actiondefs_normalise(json_object_object_get(want, key));
    struct json_object *theirs = actiondefs_normalise(json_object_object_get(have, key));
    int differs = !json_object_equal(ours, theirs);

    if (differs && w) {
        snprintf(w->path, sizeof w->path, "%s", key);
        walk(w, ours, theirs);
    }
    json_object_put(ours);
    json_object_put(theirs);
    return differs;
}

size_t actiondefs_diff(struct json_object *want, struct json_object *have, char *fields,
                       size_t fieldsz, actiondefs_diff_fn fn, void *opaque)
{
    struct walk w = {.fn = fn, .opaque = opaque};
    size_t n = 0, len = 0;

    fields[0] = '\0';
    json_object_object_foreach(want, key, val)
    {
        (void)val;
        if (!actiondefs_managed(key) || !member_differs(want, have, key, fn ? &w : NULL))
            continue;
        if (len < fieldsz) {
            int k = snprintf(fields + len, fieldsz - len, "%s%s", n ? ", " : "", key);
            len += k > 0 ? (size_t)k : 0;
        }
        n++;
    }
    return n;
}

struct json_object *actiondefs_patch(struct json_object *want, struct json_object *have)
{
    struct json_object *patch = json_object_new_object();

    if (!patch)
        return NULL;
    json_object_object_foreach(want, key, val)
    {
        if (actiondefs_managed(key) && member_differs(want, have, key, NULL))
            json_object_object_add(patch, key, json_object_get(val));
    }
    return patch;
}
