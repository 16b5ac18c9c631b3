/* test_ingress.c - the ingress's request -> event path (ingress_event_build): the
 * CloudEvent it builds around a HubSpot execution request, the key and source, the action
 * by path or by definition id, and every reason a request is answered 400. The HTTP side
 * (signatures, statuses, Kafka) is exercised end to end in tests/integration/test_ingress.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "common/hash.h"
#include "worker/ingress.h"
#include "worker/ingress_sign.h"
#include "worker/settings.h"
#include "worker/result.h"

#define NOW 1796613700604LL /* 2026-12-07T03:21:40.604Z */

static const struct ingress_action_def defs[] = {{10646377, ACTION_CREATE_ESTIMATE},
                                                 {10646381, ACTION_CREATE_EXPENSE}};

static const char deal[] =
    "{\"callbackId\":\"ap-102670506-56776413549-7-0\","
    " \"origin\":{\"portalId\":102670506,\"actionDefinitionId\":10646377,"
    "\"actionDefinitionVersion\":1},"
    "\"context\":{\"source\":\"WORKFLOWS\",\"workflowId\":192814114},"
    "\"object\":{\"objectId\":1001,\"objectType\":\"DEAL\"},"
    "\"inputFields\":{\"qbo_realm_id\":\"4620816365014867780\",\"payment_terms\":\"Net 30\"}}";

/* Builds for body with the path's action (or by definition when action < 0); returns the
 * status and fills ev/jb (caller releases) or msg. */
static int build(const char *body, int action, struct jbuf *jb, struct action_event *ev, char *msg)
{
    struct ingress_request rq = {"hsqb.example.com",
                                 defs,
                                 2,
                                 action >= 0,
                                 action >= 0 ? (enum hsqb_action)action : ACTION_CREATE_INVOICE,
                                 body,
                                 strlen(body),
                                 NOW};

    jbuf_init(jb, EVENT_MAX_BYTES);
    msg[0] = '\0';
    return ingress_event_build(&rq, jb, ev, msg, 512);
}

static void test_event_around_the_body(void **state)
{
    struct action_event ev = {0};
    struct jbuf jb;
    char msg[512];
    struct json_object *o, *v;
    const char *text;
    (void)state;

    assert_int_equal(build(deal, ACTION_CREATE_INVOICE, &jb, &ev, msg), 0);
    assert_int_equal(ev.action, ACTION_CREATE_INVOICE);
    assert_string_equal(ev.id, "ap-102670506-56776413549-7-0");
    assert_string_equal(ev.key, "102670506:DEAL:1001");
    assert_string_equal(ev.source, RESULT_INGRESS_SOURCE_PREFIX
                        "hsqb.example.com/portal/102670506/workflow/192814114");
    assert_string_equal(ev.time, "2026-12-07T03:21:40.604Z");
    assert_string_equal(ev.in.payment_terms, "Net 30");
    text = jbuf_cstr(&jb);
    /* data is the body byte for byte, its odd space included */
    assert_non_null(
        strstr(text, "\"data\":{\"callbackId\":\"ap-102670506-56776413549-7-0\", \"origin\""));
    assert_int_equal(text[jb.len - 1], '}');
    assert_memory_equal(text + jb.len - 1 - strlen(deal), deal, strlen(deal));
    o = json_tokener_parse(text);
    assert_non_null(o);
    assert_true(json_object_object_get_ex(o, "type", &v));
    assert_string_equal(json_object_get_string(v), "hsqb.action.create_invoice");
    assert_true(json_object_object_get_ex(o, "datacontenttype", &v));
    assert_string_equal(json_object_get_string(v), "application/json");
    json_object_put(o);
    event_release(&ev);
    jbuf_release(&jb);
}

static void test_action_by_definition_and_no_workflow(void **state)
{
    static const char body[] =
        "{\"callbackId\":\"cb-1\",\"origin\":{\"portalId\":7,\"actionDefinitionId\":10646377},"
        "\"object\":{\"objectId\":2001,\"objectType\":\"QUOTE\"},"
        "\"inputFields\":{\"qbo_realm_id\":\"1\"}}";
    struct action_event ev = {0};
    struct jbuf jb;
    char msg[512];
    (void)state;

    assert_int_equal(build(body, -1, &jb, &ev, msg), 0);
    assert_int_equal(ev.action, ACTION_CREATE_ESTIMATE);
    assert_string_equal(ev.source, RESULT_INGRESS_SOURCE_PREFIX "hsqb.example.com/portal/7");
    assert_string_equal(ev.key, "7:QUOTE:2001");
    event_release(&ev);
    jbuf_release(&jb);
}

static void refused(const char *body, int action, const char *why)
{
    struct action_event ev = {0};
    struct jbuf jb;
    char msg[512];

    assert_int_equal(build(body, action, &jb, &ev, msg), -1);
    if (!strstr(msg, why))
        fail_msg("reason \"%s\" lacks \"%s\" (body %s)", msg, why, body);
    assert_null(strchr(msg, '\n'));
    assert_null(ev.source); /* untouched */
    jbuf_release(&jb);
}

static void test_every_refusal_has_a_reason(void **state)
{
    (void)state;
    refused("", ACTION_CREATE_INVOICE, "not JSON");
    refused("{\"callbackId\":", ACTION_CREATE_INVOICE, "not JSON");
    refused("[1,2]", ACTION_CREATE_INVOICE, "not a JSON object");
    refused("{}", ACTION_CREATE_INVOICE, "callbackId");
    refused("{\"callbackId\":5}", ACTION_CREATE_INVOICE, "callbackId");
    refused("{\"callbackId\":\"x\"}", ACTION_CREATE_INVOICE, "origin.portalId");
    refused("{\"callbackId\":\"x\",\"origin\":{\"portalId\":\"7\"}}", ACTION_CREATE_INVOICE,
            "origin.portalId");
    refused("{\"callbackId\":\"x\",\"origin\":{\"portalId\":0}}", ACTION_CREATE_INVOICE,
            "origin.portalId");
    /* no action in the path and a definition this ingress does not know */
    refused("{\"callbackId\":\"x\",\"origin\":{\"portalId\":7,\"actionDefinitionId\":1}}", -1,
            "actionDefinitionId");
    /* what the worker's decoder refuses, in its words */
    refused("{\"callbackId\":\"x y\",\"origin\":{\"portalId\":7},\"object\":{\"objectId\":1,"
            "\"objectType\":\"DEAL\"},\"inputFields\":{\"qbo_realm_id\":\"1\"}}",
            ACTION_CREATE_INVOICE, "id");
    refused("{\"callbackId\":\"x\",\"origin\":{\"portalId\":7},\"object\":{\"objectId\":1,"
            "\"objectType\":\"DEAL\"},\"inputFields\":{}}",
            ACTION_CREATE_INVOICE, "qbo_realm_id");
    refused("{\"callbackId\":\"x\",\"origin\":{\"portalId\":7},\"object\":{\"objectId\":1,"
            "\"objectType\":\"CONTACT\"},\"inputFields\":{\"qbo_realm_id\":\"1\"}}",
            ACTION_CREATE_INVOICE, "create_invoice does not take this object type");
    /* an expense needs its accounts */
    refused("{\"callbackId\":\"x\",\"origin\":{\"portalId\":7},\"object\":{\"objectId\":1,"
            "\"objectType\":\"COMMERCE_PAYMENT\"},\"inputFields\":{\"qbo_realm_id\":\"1\"}}",
            ACTION_CREATE_EXPENSE, "expense_account");
}

/* ---- the signer (worker/ingress_sign.h) ---------------------------------------------- */

static struct config *signer_config(const char *extra)
{
    char *argv[] = {"ingress", (char *)extra, NULL};
    char *envp[] = {"HSQB_KAFKA_BROKERS=127.0.0.1:9092",
                    "HSQB_OAUTH_CLIENT_ID=app-id",
                    "HSQB_OAUTH_CLIENT_SECRET=app-secret-value",
                    "HSQB_INGRESS_PUBLIC_URL=https://hsqb.example.com",
                    "HSQB_INGRESS_CLIENT_SECRETS=old-secret,new-secret",
                    NULL};
    struct config *cfg = NULL;
    char e[512];

    if (settings_load(&cfg, extra ? 2 : 1, argv, envp, e, sizeof e) < 0)
        fail_msg("settings: %s", e);
    return cfg;
}

/* The headers HubSpot sends for version v signed with secret over target and body. */
static void sign(enum hubspot_sig_version v, const char *secret, const char *target, const char *ts,
                 struct ingress_sig_headers *h, char *buf, size_t bufsz)
{
    char uri[512];
    struct hubspot_sig_req sr = {"POST", uri, deal, strlen(deal), ts};

    snprintf(uri, sizeof uri, "https://hsqb.example.com%s", target);
    assert_int_equal(hash_hubspot_sign(v, secret, &sr, buf, bufsz), 0);
    *h = (struct ingress_sig_headers){NULL, NULL, NULL, NULL};
    if (v == HUBSPOT_SIG_V3) {
        h->v3 = buf;
        h->timestamp = ts;
    } else {
        h->v2 = buf;
        h->version = v == HUBSPOT_SIG_V2 ? "v2" : "v1";
    }
}

static void test_signer(void **state)
{
    struct config *cfg = signer_config(NULL),
                  *v3only = signer_config("--ingress.require_signature_v3=true");
    struct ingress_signer s, s3;
    struct ingress_sig_headers h;
    const char *reason = NULL, *target = "/hubspot/actions/create_invoice?x=%2Fy";
    char sig[128], why[256], ts[24], old[24];
    (void)state;

    assert_int_equal(ingress_signer_load(&s, cfg, why, sizeof why), 0);
    assert_int_equal(ingress_signer_load(&s3, v3only, why, sizeof why), 0);
    assert_string_equal(s.public_host, "hsqb.example.com");
    snprintf(ts, sizeof ts, "%lld", (long long)NOW);
    snprintf(old, sizeof old, "%lld", (long long)(NOW - HUBSPOT_SIG_MAX_SKEW_MS - 1000));

    /* v3 with either listed secret (rotation), the raw target covered */
    sign(HUBSPOT_SIG_V3, "new-secret", target, ts, &h, sig, sizeof sig);
    assert_true(ingress_signer_may_read(&s3, &h));
    assert_int_equal(
        ingress_signer_verify(&s, &h, target, deal, strlen(deal), NOW, &reason, why, sizeof why),
        0);
    sign(HUBSPOT_SIG_V3, "old-secret", target, ts, &h, sig, sizeof sig);
    assert_int_equal(
        ingress_signer_verify(&s, &h, target, deal, strlen(deal), NOW, &reason, why, sizeof why),
        0);
    /* another target, another secret, an old timestamp */
    assert_int_equal(ingress_signer_verify(&s, &h, "/hubspot/actions/create_estimate", deal,
                                           strlen(deal), NOW, &reason, why, sizeof why),
                     -1);
    assert_string_equal(reason, "mismatch");
    sign(HUBSPOT_SIG_V3, "a-stranger", target, ts, &h, sig, sizeof sig);
    assert_int_equal(
        ingress_signer_verify(&s, &h, target, deal, strlen(deal), NOW, &reason, why, sizeof why),
        -1);
    assert_string_equal(reason, "mismatch");
    sign(HUBSPOT_SIG_V3, "new-secret", target, old, &h, sig, sizeof sig);
    assert_int_equal(
        ingress_signer_verify(&s, &h, target, deal, strlen(deal), NOW, &reason, why, sizeof why),
        -1);
    assert_string_equal(reason, "expired");

    /* v2 unless v3 is required; v1 never (it does not cover the URL) */
    sign(HUBSPOT_SIG_V2, "new-secret", target, NULL, &h, sig, sizeof sig);
    assert_true(ingress_signer_may_read(&s, &h));
    assert_false(ingress_signer_may_read(&s3, &h));
    assert_int_equal(
        ingress_signer_verify(&s, &h, target, deal, strlen(deal), NOW, &reason, why, sizeof why),
        0);
    sign(HUBSPOT_SIG_V1, "new-secret", target, NULL, &h, sig, sizeof sig);
    assert_int_equal(
        ingress_signer_verify(&s, &h, target, deal, strlen(deal), NOW, &reason, why, sizeof why),
        -1);
    assert_non_null(strstr(why, "must be v2"));
    h = (struct ingress_sig_headers){NULL, NULL, NULL, NULL};
    assert_false(ingress_signer_may_read(&s, &h));
    assert_int_equal(
        ingress_signer_verify(&s, &h, target, deal, strlen(deal), NOW, &reason, why, sizeof why),
        -1);
    assert_string_equal(reason, "missing");

    ingress_signer_release(&s);
    ingress_signer_release(&s3);
    config_free(cfg);
    config_free(v3only);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_around_the_body),
        cmocka_unit_test(test_action_by_definition_and_no_workflow),
        cmocka_unit_test(test_every_refusal_has_a_reason),
        cmocka_unit_test(test_signer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
