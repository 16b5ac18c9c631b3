/* cmd_hubspot_actions.c - `hsqb-worker hubspot-actions sync` (see cmd_hubspot_actions.h).
 *
 * One pass, in the order an operator would check it by hand: read every body first (a
 * broken file stops the run before anything is written), list what the app has, then per
 * action create, update or leave alone. Matching by the actionUrl's path and comparing
 * normalised members (worker/actiondefs.h) is what makes a second run a no-op. A failed
 * request stops the run: what was done is printed, and running again resumes, since
 * every step is decided from what HubSpot has at that moment.
 *
 * The developer key rides in the query string (the v4 definitions API takes it only
 * there), so a URL is built in a stack buffer, used for one request and wiped; anything
 * printed names the method and path only, and HubSpot's own messages are masked.
 */
#include "worker/cmd_hubspot_actions.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/http.h"
#include "common/json.h"
#include "common/utf8.h"
#include "worker/actiondefs.h"
#include "worker/event.h"
#include "worker/exitcode.h"
#include "worker/settings.h"

#define HA_MAX_ARGS      256 /* setting flags passed through */
#define HA_APP_ID_MAX    18  /* digits of an app id (fits int64) */
#define HA_PAGE_SIZE     "100"
#define HA_MAX_PAGES     100 /* 10,000 definitions: far beyond any app */
#define HA_AFTER_MAX     256 /* bytes of a paging cursor */
#define HA_ID_MAX        64  /* bytes of a definition id */
#define HA_DIFF_LINES    40  /* difference lines shown per action (--dry-run) */
#define HA_MESSAGE_SHOWN 300 /* bytes of HubSpot's error message shown */
#define HA_URL_MAX       2048
#define HA_DEFAULT_DIR   "deploy/hubspot/actions"
#define HA_API_PATH      "/automation/v4/actions/"

static const char usage_text[] =
    "usage: hsqb-worker hubspot-actions sync --app-id N [--dry-run] [--dir DIR] [settings]\n"
    "Creates or updates the six workflow action definitions of HubSpot app N from DIR\n"
    "(default " HA_DEFAULT_DIR "). Needs hubspot.developer_key (give it through\n"
    "HSQB_HUBSPOT_DEVELOPER_KEY_FILE) and ingress.public_url. Settings (--config FILE,\n"
    "--hubspot.base_url=...) as for `run`. --dry-run shows the differences, writes nothing.\n";

struct opts {
    const char *app_id, *dir;
    int dry_run;
};

struct sync {
    struct opts o;
    const char *key;           /* hubspot.developer_key, borrowed from the config */
    char base[HA_URL_MAX + 1]; /* hubspot.base_url without a trailing '/' */
    char public_url[HA_URL_MAX + 1];
    struct http_client *http;
    struct http_response resp;
    struct json_object *want[ACTION_COUNT]; /* the bodies, owned */
    struct json_object *listed;             /* every definition of the app, owned */
    struct json_object *have[ACTION_COUNT]; /* ours among them, borrowed from listed */
    FILE *out, *err;
    size_t lines; /* difference lines of the current action */
    int created, updated, current;
};

static int usage(FILE *err, const char *why)
{
    if (why)
        fprintf(err, "hsqb-worker hubspot-actions: %s\n", why);
    fputs(usage_text, err);
    return EXIT_USAGE;
}

/* -1 to go on, else the exit status. Setting flags go to rest[1..], argv[0] first. */
static int parse_args(int argc, char **argv, struct opts *o, char **rest, int *nrest, FILE *out,
                      FILE *err)
{
    const char **dest;

    if (argc < 2)
        return usage(err, NULL);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage_text, out);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "sync") != 0)
        return usage(err, "unknown action (only sync)");
    *o = (struct opts){.dir = HA_DEFAULT_DIR};
    rest[(*nrest)++] = argv[0];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *eq = strchr(a, '=');
        size_t n = eq ? (size_t)(eq - a) : strlen(a);

        if (strcmp(a, "--dry-run") == 0) {
            o->dry_run = 1;
            continue;
        }
        dest = n == 8 && strncmp(a, "--app-id", n) == 0 ? &o->app_id
               : n == 5 && strncmp(a, "--dir", n) == 0  ? &o->dir
                                                        : NULL;
        if (!dest) {
            if (*nrest >= HA_MAX_ARGS)
                return usage(err, "too many arguments");
            rest[(*nrest)++] = argv[i];
        } else if (eq) {
            *dest = eq + 1;
        } else if (i + 1 < argc) {
            *dest = argv[++i];
        } else {
            return usage(err, "a flag lacks its value");
        }
    }
    rest[*nrest] = NULL;
    if (!o->app_id || !*o->app_id || strlen(o->app_id) > HA_APP_ID_MAX ||
        o->app_id[strspn(o->app_id, "0123456789")] != '\0')
        return usage(err, "--app-id wants the app's numeric id");
    if (!*o->dir)
        return usage(err, "--dir is empty");
    return -1;
}

/* ingress.public_url as the bodies need it: scheme://host[:port], https unless
 * http.allow_insecure; NULL or what is wrong. */
static const char *check_public_url(const char *url, int allow_http, char *buf, size_t bufsz)
{
    const char *host;
    size_t n = strlen(url);

    if (!*url)
        return "ingress.public_url is not set: it is the https URL HubSpot calls";
    host = strncmp(url, "https://", 8) == 0                ? url + 8
           : allow_http && strncmp(url, "http://", 7) == 0 ? url + 7
                                                           : NULL;
    if (!host)
        return "ingress.public_url must start with https:// (http:// only with "
               "http.allow_insecure)";
    while (n > 0 && url[n - 1] == '/')
        n--;
    if (n >= bufsz || (size_t)(host - url) >= n)
        return "ingress.public_url has no host";
    for (const char *p = host; p < url + n; p++)
        if (!isalnum((unsigned char)*p) && !strchr(".-:[]_~%", *p))
            return "ingress.public_url must be scheme://host[:port], without a path";
    memcpy(buf, url, n);
    buf[n] = '\0';
    return NULL;
}

/* s (len bytes) cut to HA_MESSAGE_SHOWN, control characters as '?', every occurrence of
 * key as "***"; into buf. */
static void masked(const char *s, size_t len, const char *key, char *buf, size_t bufsz)
{
    size_t kl = strlen(key), o = 0, i = 0;

    len = utf8_cut_len(s, len, HA_MESSAGE_SHOWN);
    while (i < len && o + 4 < bufsz) {
        if (kl && i + kl <= len && memcmp(s + i, key, kl) == 0) {
            memcpy(buf + o, "***", 3);
            o += 3;
            i += kl;
        } else {
            buf[o++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
            i++;
        }
    }
    buf[o] = '\0';
}

/* HubSpot's "message" of an error answer, else the start of the body. */
static void error_message(struct sync *S, char *buf, size_t bufsz)
{
    char e[64];
    const char *msg = NULL;
    struct json_object *j = json_parse_strict(S->resp.body, S->resp.body_len, 0, e, sizeof e);

    if (json_get_str(j, "message", &msg) == JGET_OK)
        masked(msg, strlen(msg), S->key, buf, bufsz);
    else
        masked(S->resp.body, S->resp.body_len, S->key, buf, bufsz);
    json_object_put(j);
}

/* One request to <base><path>?hapikey=...&<params>. 0 with *json (a new reference; NULL
 * for an empty body) on a 2xx answer; -1 after printing why. */
static int request(struct sync *S, enum http_method m, const char *path,
                   const struct http_param *extra, size_t nextra, const char *body,
                   struct json_object **json)
{
    static const char *const verbs[] = {"GET", "POST", "PUT", "DELETE", "PATCH"};
    struct http_param params[4] = {{"hapikey", S->key}};
    char base[HA_URL_MAX * 2], url[HTTP_MAX_URL + 1], e[512], msg[HA_MESSAGE_SHOWN * 2],
        shown[4 * 512]; /* what HubSpot or curl said, printable only */
    struct http_request req = {.method = m,
                               .url = url,
                               .body = body,
                               .body_len = body ? strlen(body) : 0,
                               .content_type = body ? "application/json" : NULL};
    enum http_error he;

    *json = NULL;
    for (size_t i = 0; i < nextra && i + 1 < sizeof params / sizeof params[0]; i++)
        params[i + 1] = extra[i];
    snprintf(base, sizeof base, "%s%s", S->base, path);
    if (http_url_build(url, sizeof url, base, params, nextra + 1, e, sizeof e) < 0) {
        fprintf(S->err, "hsqb-worker hubspot-actions: %s %s: URL too long\n", verbs[m], path);
        return -1;
    }
    he = http_client_do(S->http, &req, &S->resp, e, sizeof e);
    explicit_bzero(url, sizeof url);
    if (he != HTTP_OK) {
        masked(e, strlen(e), S->key, msg, sizeof msg); /* curl's text, names the class */
        fprintf(S->err, "hsqb-worker hubspot-actions: %s %s: %s\n", verbs[m], path,
                *msg ? utf8_printable(msg, shown, sizeof shown) : http_error_str(he));
        return -1;
    }
    if (S->resp.status < 200 || S->resp.status > 299) {
        error_message(S, msg, sizeof msg);
        fprintf(S->err, "hsqb-worker hubspot-actions: %s %s: HTTP %ld%s: %s\n", verbs[m], path,
                S->resp.status,
                S->resp.status == 401 || S->resp.status == 403
                    ? " (HubSpot refused the developer key: check hubspot.developer_key and "
                      "that the app belongs to its developer account)"
                    : "",
                utf8_printable(msg, shown, sizeof shown));
        return -1;
    }
    if (S->resp.body_len &&
        !(*json = json_parse_strict(S->resp.body, S->resp.body_len, 0, e, sizeof e))) {
        fprintf(S->err, "hsqb-worker hubspot-actions: %s %s: answer is not JSON: %s\n", verbs[m],
                path, utf8_printable(e, shown, sizeof shown));
        return -1;
    }
    return 0;
}

/* A definition's id as text (HubSpot sends a string; a number is taken too). */
static int id_of(struct json_object *def, char *buf, size_t bufsz)
{
    const char *s;
    int64_t v;

    if (json_get_str(def, "id", &s) == JGET_OK) {
        size_t n = strlen(s);
        if (n == 0 || n >= bufsz || n > HA_ID_MAX ||
            s[strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")])
            return -1;
        memcpy(buf, s, n + 1);
        return 0;
    }
    if (json_get_int64(def, "id", 0, INT64_MAX, &v) == JGET_OK) {
        snprintf(buf, bufsz, "%lld", (long long)v);
        return 0;
    }
    return -1;
}

/* ---- the steps --------------------------------------------------------------------- */

static int load_bodies(struct sync *S)
{
    char e[1024];

    for (int a = 0; a < ACTION_COUNT; a++)
        if (actiondefs_load(S->o.dir, (enum hsqb_action)a, S->public_url, &S->want[a], e,
                            sizeof e) < 0) {
            fprintf(S->err, "hsqb-worker hubspot-actions: %s\n", e);
            return -1;
        }
    return 0;
}

/* Every definition of the app, all pages, into S->listed. */
static int list(struct sync *S)
{
    char path[128], after[HA_AFTER_MAX + 1] = "";
    struct json_object *page = NULL, *results, *next;
    const char *cursor;
    int pages = 0;

    snprintf(path, sizeof path, HA_API_PATH "%s", S->o.app_id);
    if (!(S->listed = json_object_new_array()))
        return -1;
    do {
        struct http_param p[2] = {{"limit", HA_PAGE_SIZE}, {"after", after}};
        if (++pages > HA_MAX_PAGES) {
            fprintf(S->err, "hsqb-worker hubspot-actions: GET %s: more than %d pages\n", path,
                    HA_MAX_PAGES);
            return -1;
        }
        if (request(S, HTTP_GET, path, p, *after ? 2 : 1, NULL, &page) < 0)
            return -1;
        if (json_get_array(page, "results", &results) != JGET_OK) {
            fprintf(S->err, "hsqb-worker hubspot-actions: GET %s: answer has no results\n", path);
            json_object_put(page);
            return -1;
        }
        for (size_t i = 0; i < json_object_array_length(results); i++)
            json_object_array_add(S->listed,
                                  json_object_get(json_object_array_get_idx(results, i)));
        cursor = NULL;
        if (json_get_obj(page, "paging", &next) == JGET_OK &&
            json_get_obj(next, "next", &next) == JGET_OK)
            json_get_str(next, "after", &cursor);
        if (cursor && (!*cursor || strlen(cursor) > HA_AFTER_MAX || strcmp(cursor, after) == 0)) {
            fprintf(S->err, "hsqb-worker hubspot-actions: GET %s: bad paging cursor\n", path);
            json_object_put(page);
            return -1;
        }
        snprintf(after, sizeof after, "%s", cursor ? cursor : "");
        json_object_put(page);
    } while (*after);
    return 0;
}

/* The path of def's actionUrl, for naming a definition that is not ours. */
static void url_path(struct json_object *def, char *buf, size_t bufsz)
{
    const char *url = NULL, *p;

    json_get_str(def, "actionUrl", &url);
    p = url && strstr(url, "://") ? strstr(url, "://") + 3 : "";
    p += strcspn(p, "/?#");
    snprintf(buf, bufsz, "%.*s", (int)strcspn(p, "?#"), *p == '/' ? p : "(none)");
}

/* Our definitions among those listed, into S->have; the others named. */
static void match(struct sync *S)
{
    char id[HA_ID_MAX + 1], first[HA_ID_MAX + 1], p[256], shown[4 * 256];
    enum hsqb_action a;

    for (size_t i = 0; i < json_object_array_length(S->listed); i++) {
        struct json_object *def = json_object_array_get_idx(S->listed, i);

        if (id_of(def, id, sizeof id) < 0)
            snprintf(id, sizeof id, "(no id)");
        if (actiondefs_action_of(def, &a) < 0) {
            url_path(def, p, sizeof p);
            fprintf(S->out, "definition %s (%s): not one of ours, left alone\n", id,
                    utf8_printable(p, shown, sizeof shown));
        } else if (S->have[a]) {
            if (id_of(S->have[a], first, sizeof first) < 0)
                snprintf(first, sizeof first, "(no id)");
            fprintf(S->err,
                    "hsqb-worker hubspot-actions: warning: definitions %s and %s both serve "
                    "%s; keeping %s up to date, leaving %s alone (archive it in HubSpot)\n",
                    first, id, event_action_name(a), first, id);
        } else {
            S->have[a] = def;
        }
    }
}

static int create(struct sync *S, enum hsqb_action a)
{
    char path[128], id[HA_ID_MAX + 1];
    struct json_object *made = NULL;
    const char *body;

    if (S->o.dry_run) {
        fprintf(S->out, "%s: would be created\n", event_action_name(a));
        S->created++;
        return 0;
    }
    snprintf(path, sizeof path, HA_API_PATH "%s", S->o.app_id);
    body = json_object_to_json_string_ext(S->want[a],
                                          JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (request(S, HTTP_POST, path, NULL, 0, body, &made) < 0)
        return -1;
    if (id_of(made, id, sizeof id) < 0)
        snprintf(id, sizeof id, "(HubSpot sent no id)");
    fprintf(S->out, "%s: created id %s\n", event_action_name(a), id);
    json_object_put(made);
    S->created++;
    return 0;
}

static void show_difference(void *opaque, const char *path, const char *theirs, const char *ours)
{
    struct sync *S = opaque;
    char a[4 * 256], b[4 * 256], c[4 * 256]; /* HubSpot's text: printable only */

    if (S->lines++ < HA_DIFF_LINES)
        fprintf(S->out, "    %s: %s -> %s\n", utf8_printable(path, a, sizeof a),
                utf8_printable(theirs, b, sizeof b), utf8_printable(ours, c, sizeof c));
}

static int update(struct sync *S, enum hsqb_action a)
{
    char fields[ACTIONDEFS_FIELDS_SIZE], id[HA_ID_MAX + 1], path[192], *pid;
    struct json_object *patch = NULL, *answer = NULL;
    const char *name = event_action_name(a);
    int rc;

    if (id_of(S->have[a], id, sizeof id) < 0) {
        fprintf(S->err, "hsqb-worker hubspot-actions: %s: HubSpot's definition has no id\n", name);
        return -1;
    }
    if (!actiondefs_diff(S->want[a], S->have[a], fields, sizeof fields, NULL, NULL)) {
        fprintf(S->out, "%s: up to date (id %s)\n", name, id);
        S->current++;
        return 0;
    }
    S->updated++;
    if (S->o.dry_run) {
        fprintf(S->out, "%s: would be updated, id %s (%s)\n", name, id, fields);
        S->lines = 0;
        actiondefs_diff(S->want[a], S->have[a], fields, sizeof fields, show_difference, S);
        if (S->lines > HA_DIFF_LINES)
            fprintf(S->out, "    ... and %zu more\n", S->lines - HA_DIFF_LINES);
        return 0;
    }
    pid = path + snprintf(path, sizeof path, HA_API_PATH "%s/", S->o.app_id);
    http_path_escape(pid, sizeof path - (size_t)(pid - path), id, strlen(id));
    if (!(patch = actiondefs_patch(S->want[a], S->have[a])))
        return -1;
    rc = request(S, HTTP_PATCH, path, NULL, 0,
                 json_object_to_json_string_ext(patch, JSON_C_TO_STRING_PLAIN |
                                                           JSON_C_TO_STRING_NOSLASHESCAPE),
                 &answer);
    if (rc == 0)
        fprintf(S->out, "%s: updated id %s (%s)\n", name, id, fields);
    json_object_put(answer);
    json_object_put(patch);
    return rc;
}

static int sync_all(struct sync *S)
{
    if (list(S) < 0)
        return -1;
    match(S);
    for (int a = 0; a < ACTION_COUNT; a++)
        if ((S->have[a] ? update(S, (enum hsqb_action)a) : create(S, (enum hsqb_action)a)) < 0)
            return -1;
    return 0;
}

/* ---- the command ------------------------------------------------------------------- */

static int setup(struct sync *S, const struct config *cfg)
{
    const char *why, *base = config_get_str(cfg, "hubspot.base_url");
    struct http_client_opts ho;
    char e[512];
    size_t n = strlen(base);

    S->key = config_get_str(cfg, "hubspot.developer_key");
    if (!*S->key) {
        fprintf(S->err, "hsqb-worker hubspot-actions: hubspot.developer_key is not set (give "
                        "it through HSQB_HUBSPOT_DEVELOPER_KEY_FILE=<file>)\n");
        return EXIT_USAGE;
    }
    if ((why = check_public_url(config_get_str(cfg, "ingress.public_url"),
                                config_get_bool(cfg, "http.allow_insecure"), S->public_url,
                                sizeof S->public_url))) {
        fprintf(S->err, "hsqb-worker hubspot-actions: %s\n", why);
        return EXIT_USAGE;
    }
    while (n > 0 && base[n - 1] == '/')
        n--;
    snprintf(S->base, sizeof S->base, "%.*s", (int)n, base);
    if (load_bodies(S) < 0)
        return EXIT_USAGE;
    settings_http_opts(cfg, &ho);
    if (!(S->http = http_client_new(&ho, e, sizeof e))) {
        fprintf(S->err, "hsqb-worker hubspot-actions: %s\n", e);
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

int cmd_hubspot_actions_run(int argc, char **argv, char **envp, FILE *out, FILE *err)
{
    struct sync S = {.out = out, .err = err};
    char *rest[HA_MAX_ARGS + 1], e[1024];
    struct config *cfg = NULL;
    int nrest = 0, rc;

    if ((rc = parse_args(argc, argv, &S.o, rest, &nrest, out, err)) != -1)
        return rc;
    if (settings_load_flags(&cfg, nrest, rest, envp, SETTINGS_SKIP_REQUIRED, e, sizeof e) < 0) {
        fprintf(err, "hsqb-worker hubspot-actions: %s\n", e);
        return EXIT_USAGE;
    }
    settings_register_secrets(cfg);
    http_response_init(&S.resp);
    if ((rc = setup(&S, cfg)) != EXIT_OK)
        goto out;
    rc = sync_all(&S) < 0 ? EXIT_FAIL : EXIT_OK;
    if (rc != EXIT_OK && !S.created && !S.updated && !S.current)
        goto out; /* nothing done, the error says it all */
    if (S.o.dry_run)
        fprintf(out, "dry run: %d to create, %d to update, %d up to date; nothing written\n",
                S.created, S.updated, S.current);
    else
        fprintf(out, "%d created, %d updated, %d up to date%s\n", S.created, S.updated, S.current,
                rc == EXIT_OK ? "" : " before the failure");
out:
    for (int a = 0; a < ACTION_COUNT; a++)
        json_object_put(S.want[a]);
    json_object_put(S.listed);
    http_response_release(&S.resp);
    http_client_free(S.http);
    config_free(cfg);
    fflush(out);
    return rc;
}

int cmd_hubspot_actions(int argc, char **argv)
{
    return cmd_hubspot_actions_run(argc, argv, (char **)config_environ(), stdout, stderr);
}
