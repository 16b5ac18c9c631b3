/* test_hubspot_actions.c - the action definitions as `hubspot-actions sync` compares them
 * (worker/actiondefs.h), and the command's refusals before and at its first request.
 * The sync against a definitions API is tests/sandbox/test_sandbox_actions_sync.py.
 * Runs from the repository root (tests/run-tests does): it reads deploy/hubspot/actions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/json.h"
#include "worker/actiondefs.h"
#include "worker/cmd_hubspot_actions.h"
#include "worker/exitcode.h"

#define BODIES "deploy/hubspot/actions"
#define URL    "https://hsqb.example.com"

static struct json_object *parse(const char *text)
{
    char e[256];
    struct json_object *j = json_parse_strict(text, strlen(text), 0, e, sizeof e);

    if (!j)
        fail_msg("bad test JSON: %s", e);
    return j;
}

static const char *compact(struct json_object *j)
{
    return j ? json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN |
                                                     JSON_C_TO_STRING_NOSLASHESCAPE)
             : "(null)";
}

/* ---- normalising and comparing ----------------------------------------------------- */

static void test_normalise_drops_empty_values(void **state)
{
    struct json_object *in =
        parse("{\"a\":null,\"b\":false,\"c\":0,\"d\":\"\",\"e\":[],\"f\":{},\"g\":{\"h\":null},"
              "\"i\":\"x\",\"j\":[{},1,true],\"k\":{\"l\":[],\"m\":2.5}}");
    struct json_object *n = actiondefs_normalise(in);

    (void)state;
    assert_string_equal(compact(n), "{\"i\":\"x\",\"j\":[null,1,true],\"k\":{\"m\":2.5}}");
    json_object_put(n);
    json_object_put(in);
    in = parse("{\"a\":{\"b\":[]},\"c\":false}");
    assert_null(actiondefs_normalise(in)); /* nothing but defaults: nothing */
    json_object_put(in);
    assert_null(actiondefs_normalise(NULL));
}

/* What HubSpot echoes: the body plus ids, defaults and its own member order. */
static const char want_text[] =
    "{\"actionUrl\":\"" URL "/hubspot/actions/create_invoice\",\"published\":false,"
    "\"objectTypes\":[\"DEAL\",\"QUOTE\"],"
    "\"inputFields\":[{\"typeDefinition\":{\"name\":\"qbo_realm_id\",\"type\":\"enumeration\","
    "\"fieldType\":\"select\",\"optionsUrl\":\"" URL "/hubspot/options\"},"
    "\"supportedValueTypes\":[\"STATIC_VALUE\"],\"isRequired\":true},"
    "{\"typeDefinition\":{\"name\":\"customer_source\",\"type\":\"string\",\"fieldType\":\"text\"},"
    "\"supportedValueTypes\":[\"STATIC_VALUE\"],\"isRequired\":false}],"
    "\"labels\":{\"en\":{\"actionName\":\"Create a QuickBooks invoice\"},"
    "\"fi\":{\"actionName\":\"Luo QuickBooks-lasku\"}}}";
static const char have_text[] =
    "{\"id\":\"101\",\"revisionId\":\"3\",\"functions\":[],\"objectRequestOptions\":null,"
    "\"labels\":{\"fi\":{\"actionName\":\"Luo QuickBooks-lasku\"},"
    "\"en\":{\"actionName\":\"Create a QuickBooks invoice\"}},"
    "\"published\":true,\"objectTypes\":[\"DEAL\",\"QUOTE\"],"
    "\"inputFields\":[{\"isRequired\":true,\"supportedValueTypes\":[\"STATIC_VALUE\"],"
    "\"typeDefinition\":{\"options\":[],\"externalOptions\":false,\"referencedObjectType\":null,"
    "\"name\":\"qbo_realm_id\",\"type\":\"enumeration\",\"fieldType\":\"select\","
    "\"optionsUrl\":\"" URL "/hubspot/options\"}},"
    "{\"typeDefinition\":{\"name\":\"customer_source\",\"type\":\"string\",\"fieldType\":\"text\","
    "\"optionsUrl\":null,\"options\":[]},\"supportedValueTypes\":[\"STATIC_VALUE\"]}],"
    "\"actionUrl\":\"" URL "/hubspot/actions/create_invoice\"}";

static void test_echo_with_defaults_is_up_to_date(void **state)
{
    struct json_object *want = parse(want_text), *have = parse(have_text), *patch;
    char fields[ACTIONDEFS_FIELDS_SIZE];

    (void)state;
    /* published differs (the owner published it): not ours to change */
    assert_int_equal(actiondefs_diff(want, have, fields, sizeof fields, NULL, NULL), 0);
    assert_string_equal(fields, "");
    patch = actiondefs_patch(want, have);
    assert_string_equal(compact(patch), "{}");
    json_object_put(patch);
    assert_false(actiondefs_managed("published"));
    assert_true(actiondefs_managed("labels"));
    json_object_put(want);
    json_object_put(have);
}

struct seen {
    char lines[8][512];
    int n;
};

static void record(void *opaque, const char *path, const char *theirs, const char *ours)
{
    struct seen *s = opaque;

    if (s->n < 8)
        snprintf(s->lines[s->n++], sizeof s->lines[0], "%s: %s -> %s", path, theirs, ours);
}

static void test_differences_are_named_to_the_leaf(void **state)
{
    struct json_object *want = parse(want_text), *have = parse(have_text), *in, *td, *patch;
    char fields[ACTIONDEFS_FIELDS_SIZE];
    struct seen s = {0};

    (void)state;
    /* HubSpot has an old label, an old options URL and a help text we do not send */
    json_object_object_add(json_object_object_get(json_object_object_get(have, "labels"), "fi"),
                           "actionName", json_object_new_string("Luo lasku"));
    in = json_object_array_get_idx(json_object_object_get(have, "inputFields"), 0);
    td = json_object_object_get(in, "typeDefinition");
    json_object_object_add(td, "optionsUrl", json_object_new_string("https://old/hubspot/options"));
    json_object_object_add(td, "helpText", json_object_new_string("old help"));

    assert_int_equal(actiondefs_diff(want, have, fields, sizeof fields, record, &s), 2);
    assert_string_equal(fields, "inputFields, labels");
    assert_int_equal(s.n, 3);
    assert_string_equal(s.lines[0],
                        "inputFields[0].typeDefinition.optionsUrl: "
                        "\"https://old/hubspot/options\" -> \"" URL "/hubspot/options\"");
    assert_string_equal(s.lines[1], "inputFields[0].typeDefinition.helpText: \"old help\" -> "
                                    "(none)");
    assert_string_equal(s.lines[2],
                        "labels.fi.actionName: \"Luo lasku\" -> \"Luo QuickBooks-lasku\"");

    patch = actiondefs_patch(want, have);
    assert_true(json_object_object_get_ex(patch, "inputFields", NULL));
    assert_true(json_object_object_get_ex(patch, "labels", NULL));
    assert_int_equal(json_object_object_length(patch), 2);
    json_object_put(patch);
    json_object_put(want);
    json_object_put(have);
}

static void test_order_and_length_of_arrays_count(void **state)
{
    struct json_object *want = parse(want_text), *have = parse(want_text), *types;
    char fields[ACTIONDEFS_FIELDS_SIZE];
    struct seen s = {0};

    (void)state;
    types = json_object_object_get(have, "objectTypes");
    json_object_array_put_idx(types, 0, json_object_new_string("QUOTE"));
    json_object_array_put_idx(types, 1, json_object_new_string("DEAL"));
    json_object_array_add(json_object_object_get(have, "inputFields"), json_object_new_string("x"));
    assert_int_equal(actiondefs_diff(want, have, fields, sizeof fields, record, &s), 2);
    assert_string_equal(fields, "objectTypes, inputFields");
    assert_string_equal(s.lines[0], "objectTypes[0]: \"QUOTE\" -> \"DEAL\"");
    assert_string_equal(s.lines[2], "inputFields[2]: \"x\" -> (none)");
    /* a definition HubSpot does not have differs everywhere */
    assert_int_equal(actiondefs_diff(want, NULL, fields, sizeof fields, NULL, NULL), 4);
    assert_string_equal(fields, "actionUrl, objectTypes, inputFields, labels");
    /* a small buffer cuts the names, never the count */
    assert_int_equal(actiondefs_diff(want, NULL, fields, 12, NULL, NULL), 4);
    assert_string_equal(fields, "actionUrl, ");
    json_object_put(want);
    json_object_put(have);
}

static void test_long_values_are_cut(void **state)
{
    struct json_object *want = parse(want_text), *have = parse(want_text);
    char fields[ACTIONDEFS_FIELDS_SIZE], longer[400];
    struct seen s = {0};

    (void)state;
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    json_object_object_add(have, "actionUrl", json_object_new_string(longer));
    assert_int_equal(actiondefs_diff(want, have, fields, sizeof fields, record, &s), 1);
    assert_non_null(strstr(s.lines[0], "aaa... -> \"" URL));
    assert_true(strlen(s.lines[0]) < 2 * ACTIONDEFS_VALUE_SHOWN + 80);
    json_object_put(want);
    json_object_put(have);
}

/* ---- matching ------------------------------------------------------------------------ */

static int action_of(const char *url)
{
    struct json_object *def = json_object_new_object();
    enum hsqb_action a;
    int rc;

    if (url)
        json_object_object_add(def, "actionUrl", json_object_new_string(url));
    rc = actiondefs_action_of(def, &a) < 0 ? -1 : (int)a;
    json_object_put(def);
    return rc;
}

static void test_definitions_match_by_path(void **state)
{
    struct json_object *def;
    enum hsqb_action a;

    (void)state;
    assert_int_equal(action_of(URL "/hubspot/actions/create_invoice"), ACTION_CREATE_INVOICE);
    assert_int_equal(action_of("https://old-host:8443/hubspot/actions/create_expense?x=1"),
                     ACTION_CREATE_EXPENSE);
    assert_int_equal(action_of("http://h/hubspot/actions/create_refund_receipt#f"),
                     ACTION_CREATE_REFUND_RECEIPT);
    assert_int_equal(action_of(URL "/hubspot/actions/create_invoicex"), -1);
    assert_int_equal(action_of(URL "/hubspot/actions/"), -1);
    assert_int_equal(action_of(URL "/hubspot/actions"), -1);
    assert_int_equal(action_of(URL "/other/hubspot/actions/create_invoice"), -1);
    assert_int_equal(action_of(URL "/hubspot/actions/create_invoice/extra"), -1);
    assert_int_equal(action_of("/hubspot/actions/create_invoice"), -1);
    assert_int_equal(action_of(URL "?/hubspot/actions/create_invoice"), -1);
    assert_int_equal(action_of(NULL), -1);
    assert_int_equal(actiondefs_action_of(NULL, &a), -1);
    def = parse("{\"actionUrl\":42}");
    assert_int_equal(actiondefs_action_of(def, &a), -1);
    json_object_put(def);
}

/* ---- loading ------------------------------------------------------------------------- */

static void test_committed_bodies_load(void **state)
{
    char e[512];

    (void)state;
    for (int a = 0; a < ACTION_COUNT; a++) {
        struct json_object *body = NULL;
        enum hsqb_action back;

        assert_int_equal(actiondefs_load(BODIES, (enum hsqb_action)a, URL, &body, e, sizeof e), 0);
        assert_null(strstr(compact(body), "{{PUBLIC_URL}}"));
        assert_non_null(strstr(compact(body), URL "/hubspot/options"));
        assert_int_equal(actiondefs_action_of(body, &back), 0);
        assert_int_equal(back, a);
        json_object_put(body);
    }
}

static char tmpdir[64];

static int make_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/hsqb-actiondefs-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void put_file(const char *name, const char *text, size_t len)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    assert_non_null(f = fopen(path, "wb"));
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
}

static void load_fails(const char *text, const char *why)
{
    struct json_object *body = NULL;
    char e[512];

    put_file("create_invoice.json", text, strlen(text));
    assert_int_equal(actiondefs_load(tmpdir, ACTION_CREATE_INVOICE, URL, &body, e, sizeof e), -1);
    assert_null(body);
    if (!strstr(e, why) || !strstr(e, "create_invoice.json"))
        fail_msg("\"%s\" lacks \"%s\"", e, why);
}

static void test_broken_files_are_refused(void **state)
{
    struct json_object *body = NULL;
    char e[512], *big;

    (void)state;
    assert_int_equal(actiondefs_load(tmpdir, ACTION_CREATE_ESTIMATE, URL, &body, e, sizeof e), -1);
    assert_non_null(strstr(e, "create_estimate.json: No such file"));
    load_fails("{\"actionUrl\":", "not valid JSON");
    load_fails("{\"a\":1,\"a\":2}", "not valid JSON"); /* strict: duplicate keys */
    load_fails("[]", "not a JSON object");
    load_fails("{\"labels\":{}}", "actionUrl missing");
    load_fails("{\"actionUrl\":\"{{PUBLIC_URL}}/hubspot/actions/create_estimate\"}",
               "this file's action");
    load_fails("{\"actionUrl\":\"https://elsewhere/hubspot/actions/create_invoice\"}",
               "this file's action");
    load_fails("{\"actionUrl\":\"{{PUBLIC_URL}}/hubspot/actions/create_invoice\","
               "\"labels\":{\"fi\":{\"actionName\":\"Luo lasku\"}}}",
               "labels.en.actionName");
    assert_non_null(big = malloc(ACTIONDEFS_FILE_MAX + 1));
    memset(big, ' ', ACTIONDEFS_FILE_MAX + 1);
    put_file("create_invoice.json", big, ACTIONDEFS_FILE_MAX + 1);
    free(big);
    assert_int_equal(actiondefs_load(tmpdir, ACTION_CREATE_INVOICE, URL, &body, e, sizeof e), -1);
    assert_non_null(strstr(e, "larger than"));
}

static void test_placeholder_replaced_everywhere(void **state)
{
    static const char text[] =
        "{\"actionUrl\":\"{{PUBLIC_URL}}/hubspot/actions/create_invoice\","
        "\"x\":\"{{PUBLIC_URL}}{{PUBLIC_URL}}\",\"labels\":{\"en\":{\"actionName\":\"n\"}}}";
    struct json_object *body = NULL;
    char e[512];
    const char *x;

    (void)state;
    put_file("create_invoice.json", text, strlen(text));
    assert_int_equal(
        actiondefs_load(tmpdir, ACTION_CREATE_INVOICE, "http://h:1", &body, e, sizeof e), 0);
    assert_int_equal(json_get_str(body, "x", &x), JGET_OK);
    assert_string_equal(x, "http://h:1http://h:1");
    json_object_put(body);
}

/* ---- the command's refusals ---------------------------------------------------------- */

struct run {
    int rc;
    char out[8192], err[8192];
};

static void run(struct run *r, char **envp, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    FILE *o, *e;

    argv[argc++] = "hubspot-actions";
    va_start(ap, envp);
    for (char *a; argc < 31 && (a = va_arg(ap, char *));)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    memset(r, 0, sizeof *r);
    o = fmemopen(r->out, sizeof r->out - 1, "w");
    e = fmemopen(r->err, sizeof r->err - 1, "w");
    r->rc = cmd_hubspot_actions_run(argc, argv, envp, o, e);
    fclose(o);
    fclose(e);
}

#define KEY "devkey-secret-abcdef"
static char env_key[] = "HSQB_HUBSPOT_DEVELOPER_KEY=" KEY;
static char env_url[] = "HSQB_INGRESS_PUBLIC_URL=" URL;
static char env_insecure[] = "HSQB_HTTP_ALLOW_INSECURE=true";

static void refused(char **envp, const char *why, ...)
{
    char *argv[16];
    int argc = 0;
    va_list ap;
    struct run r;

    va_start(ap, why);
    for (char *a; argc < 15 && (a = va_arg(ap, char *));)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    run(&r, envp, argc > 0 ? argv[0] : NULL, argc > 1 ? argv[1] : NULL, argc > 2 ? argv[2] : NULL,
        argc > 3 ? argv[3] : NULL, argc > 4 ? argv[4] : NULL, argc > 5 ? argv[5] : NULL, NULL);
    assert_int_equal(r.rc, EXIT_USAGE);
    if (!strstr(r.err, why))
        fail_msg("stderr \"%s\" lacks \"%s\"", r.err, why);
    assert_null(strstr(r.err, KEY));
    assert_string_equal(r.out, "");
}

static void test_usage_and_configuration_errors(void **state)
{
    char *full[] = {env_key, env_url, NULL}, *no_key[] = {env_url, NULL},
         *no_url[] = {env_key, NULL};
    char http_url[] = "HSQB_INGRESS_PUBLIC_URL=http://hsqb.example.com";
    char path_url[] = "HSQB_INGRESS_PUBLIC_URL=https://hsqb.example.com/hooks";
    char *http_env[] = {env_key, http_url, NULL}, *path_env[] = {env_key, path_url, NULL};
    struct run r;

    (void)state;
    refused(full, "usage:", NULL);
    refused(full, "unknown action", "frobnicate", NULL);
    refused(full, "--app-id wants", "sync", NULL);
    refused(full, "--app-id wants", "sync", "--app-id", "12ab", NULL);
    refused(full, "--app-id wants", "sync", "--app-id=1234567890123456789", NULL);
    refused(full, "lacks its value", "sync", "--app-id", NULL);
    refused(full, "--dir is empty", "sync", "--app-id", "1", "--dir=", NULL);
    refused(full, "unknown", "sync", "--app-id", "1", "--no.such.setting=1", NULL);
    refused(full, "not accepted on the command line", "sync", "--app-id", "1",
            "--hubspot.developer_key=" KEY, NULL);
    refused(no_key, "hubspot.developer_key is not set", "sync", "--app-id", "1", NULL);
    refused(no_url, "ingress.public_url is not set", "sync", "--app-id", "1", NULL);
    refused(http_env, "is plain http", "sync", "--app-id", "1", NULL);
    refused(path_env, "without a path", "sync", "--app-id", "1", NULL);
    refused(full, "/nonexistent/create_invoice.json", "sync", "--app-id", "1", "--dir",
            "/nonexistent", NULL);

    run(&r, full, "--help", NULL);
    assert_int_equal(r.rc, EXIT_OK);
    assert_non_null(strstr(r.out, "usage: hsqb-worker hubspot-actions sync"));
}

static void test_unreachable_hubspot_fails_without_the_key(void **state)
{
    char base[] = "HSQB_HUBSPOT_BASE_URL=http://127.0.0.1:1";
    char *envp[] = {env_key, env_url, env_insecure, base, NULL};
    struct run r;

    (void)state;
    run(&r, envp, "sync", "--app-id", "1234567", "--dry-run", NULL);
    assert_int_equal(r.rc, EXIT_FAIL);
    assert_non_null(strstr(r.err, "GET /automation/v4/actions/1234567: "));
    assert_null(strstr(r.err, KEY));
    assert_null(strstr(r.err, "hapikey"));
    assert_string_equal(r.out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalise_drops_empty_values),
        cmocka_unit_test(test_echo_with_defaults_is_up_to_date),
        cmocka_unit_test(test_differences_are_named_to_the_leaf),
        cmocka_unit_test(test_order_and_length_of_arrays_count),
        cmocka_unit_test(test_long_values_are_cut),
        cmocka_unit_test(test_definitions_match_by_path),
        cmocka_unit_test(test_committed_bodies_load),
        cmocka_unit_test_setup_teardown(test_broken_files_are_refused, make_tmpdir, remove_tmpdir),
        cmocka_unit_test_setup_teardown(test_placeholder_replaced_everywhere, make_tmpdir,
                                        remove_tmpdir),
        cmocka_unit_test(test_usage_and_configuration_errors),
        cmocka_unit_test(test_unreachable_hubspot_fails_without_the_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
