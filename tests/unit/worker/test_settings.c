/* test_settings.c - hsqb-worker's real settings table: it loads with production
 * defaults, every default respects its own bounds, env and flags override, secrets
 * are flagged and never printed, cross-key checks catch inconsistent deployments, and
 * `hsqb-worker config check|dump|markdown` behave as documented. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/http.h"
#include "common/log.h"
#include "common/redis.h"
#include "worker/cmd_config.h"
#include "worker/settings.h"

#define REQUIRED_ENV                                                                               \
    "HSQB_KAFKA_BROKERS=127.0.0.1:9092", "HSQB_OAUTH_CLIENT_ID=app-id",                            \
        "HSQB_OAUTH_CLIENT_SECRET=app-secret-value"
#define ENVP(...) ((char *[]){REQUIRED_ENV, __VA_ARGS__, NULL})
#define ARGV(...) ((char *[]){"run", __VA_ARGS__, NULL})

static char err[1024];

static struct config *load(char **argv, char **envp)
{
    struct config *cfg = NULL;
    int argc = 0;

    while (argv != NULL && argv[argc] != NULL)
        argc++;
    err[0] = '\0';
    if (settings_load(&cfg, argc, argv, envp, err, sizeof(err)) < 0)
        return NULL;
    assert_non_null(cfg);
    return cfg;
}

static void expect_error(struct config *cfg, const char *needle)
{
    if (cfg != NULL)
        config_free(cfg);
    assert_null(cfg);
    if (strstr(err, needle) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", err, needle);
}

static void test_loads_with_production_defaults(void **state)
{
    struct config *cfg = load(NULL, ENVP("LANG=C"));
    size_t n;
    const char *const *sched;

    (void)state;
    if (cfg == NULL)
        fail_msg("%s", err);
    assert_string_equal(config_get_str(cfg, "kafka.brokers"), "127.0.0.1:9092");
    assert_string_equal(config_get_str(cfg, "kafka.group.id"), "hsqb-worker");
    assert_string_equal(config_get_str(cfg, "kafka.topic.actions"), "hsqb.actions");
    assert_string_equal(config_get_str(cfg, "kafka.topic.retry"), "hsqb.actions.retry");
    assert_string_equal(config_get_str(cfg, "kafka.topic.dlq"), "hsqb.actions.dlq");
    assert_string_equal(config_get_str(cfg, "kafka.topic.results"), "hsqb.results");
    assert_string_equal(config_get_str(cfg, "redis.key_prefix"), "hsqb:");
    assert_int_equal(config_get_ms(cfg, "dedup.window"), 7LL * 24 * 3600 * 1000);
    assert_string_equal(config_get_str(cfg, "hubspot.base_url"), "https://api.hubapi.com");
    assert_int_equal(config_get_int(cfg, "hubspot.rate_limit_per_10s"), 100);
    assert_string_equal(config_get_str(cfg, "qbo.base_url"), "https://quickbooks.api.intuit.com");
    assert_int_equal(config_get_int(cfg, "qbo.minorversion"), 75);
    assert_int_equal(config_get_int(cfg, "qbo.rate_limit_per_min"), 500);
    assert_int_equal(config_get_int(cfg, "qbo.max_concurrent_per_realm"), 10);
    assert_string_equal(config_get_str(cfg, "oauth.token_url"),
                        "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer");
    sched = config_get_list(cfg, "retry.schedule", &n);
    assert_int_equal(n, 5);
    assert_string_equal(sched[0], "30s");
    assert_string_equal(sched[4], "1h");
    assert_string_equal(config_get_str(cfg, "callbacks.complete"), "ingress");
    /* tenant checks on by default: the default token serves no portal, no unbound realm */
    config_get_list(cfg, "hubspot.token_portals", &n);
    assert_int_equal(n, 0);
    assert_false(config_get_bool(cfg, "tenancy.allow_unbound"));
    assert_string_equal(config_get_str(cfg, "log.level"), "info");
    assert_string_equal(config_get_str(cfg, "metrics.listen"), "127.0.0.1:9108");
    assert_int_equal(config_get_bytes(cfg, "event.max_bytes"), 1 << 20);
    assert_null(config_ignored_env(cfg, NULL)[0]);
    config_free(cfg);
}

static void test_every_default_within_its_bounds(void **state)
{
    size_t n, i;
    const struct config_def *t = settings_table(&n);
    struct config *cfg = config_new(t, n, SETTINGS_ENV_PREFIX, err, sizeof(err));

    (void)state;
    if (cfg == NULL)
        fail_msg("table rejected: %s", err);
    assert_true(n >= 50);
    for (i = 0; i < n; i++) {
        int64_t v = 0;
        assert_non_null(t[i].help);
        assert_true(strlen(t[i].help) > 10);
        switch (t[i].type) {
        case CONFIG_INT:
            v = config_get_int(cfg, t[i].name);
            break;
        case CONFIG_DURATION:
            v = config_get_ms(cfg, t[i].name);
            break;
        case CONFIG_SIZE:
            v = config_get_bytes(cfg, t[i].name);
            break;
        default:
            continue;
        }
        if (v < t[i].min || v > t[i].max)
            fail_msg("%s: default %lld outside [%lld, %lld]", t[i].name, (long long)v,
                     (long long)t[i].min, (long long)t[i].max);
    }
    /* keys are grouped: each prefix appears in one run */
    for (i = 1; i < n; i++) {
        size_t g = strcspn(t[i].name, "."), j;
        if (strncmp(t[i].name, t[i - 1].name, g + 1) == 0)
            continue;
        for (j = 0; j + 1 < i; j++)
            if (strncmp(t[j].name, t[i].name, g + 1) == 0)
                fail_msg("%s is apart from its group (%s)", t[i].name, t[j].name);
    }
    config_free(cfg);
}

static void test_env_and_flags_override(void **state)
{
    struct config *cfg = load(ARGV("--qbo.base_url=http://127.0.0.1:8081", "--log.level", "debug",
                                   "--http.allow_insecure=true"),
                              ENVP("HSQB_WORKER_THREADS=4", "HSQB_DEDUP_WINDOW=2d",
                                   "HSQB_KAFKA__SECURITY_PROTOCOL=plaintext"));

    (void)state;
    if (cfg == NULL)
        fail_msg("%s", err);
    assert_int_equal(config_get_int(cfg, "worker.threads"), 4);
    assert_string_equal(config_where(cfg, "worker.threads"), "env HSQB_WORKER_THREADS");
    assert_int_equal(config_get_ms(cfg, "dedup.window"), 2LL * 24 * 3600 * 1000);
    assert_string_equal(config_get_str(cfg, "qbo.base_url"), "http://127.0.0.1:8081");
    assert_string_equal(config_get_str(cfg, "log.level"), "debug");
    assert_string_equal(config_kafka_get(cfg, "security.protocol"), "plaintext");
    config_free(cfg);
    expect_error(load(NULL, ENVP("HSQB_WORKER_THREADS=0")),
                 "worker.threads: value 0 out of range [1, 256] (from env HSQB_WORKER_THREADS)");
}

static void test_required_keys(void **state)
{
    struct config *cfg = NULL;

    (void)state;
    assert_int_equal(settings_load(&cfg, 0, NULL, NULL, err, sizeof(err)), -1);
    assert_null(cfg);
    assert_non_null(strstr(err, "kafka.brokers: required but not set"));
    assert_int_equal(
        settings_load_flags(&cfg, 0, NULL, NULL, SETTINGS_SKIP_REQUIRED, err, sizeof(err)), 0);
    config_free(cfg);
}

static void test_secrets_are_flagged_and_hidden(void **state)
{
    static const char *const secrets[] = {"hubspot.token", "redis.password", "oauth.client_secret"};
    size_t n, i, j;
    const struct config_def *t = settings_table(&n);
    struct config *cfg;
    char *dump = NULL;
    size_t len = 0;
    FILE *f;

    (void)state;
    for (i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        for (j = 0; j < n && strcmp(t[j].name, secrets[i]) != 0; j++)
            ;
        assert_true(j < n);
        assert_true(t[j].flags & CONFIG_SECRET);
    }
    cfg = load(NULL, ENVP("HSQB_HUBSPOT_TOKEN=pat-na1-very-secret", "HSQB_REDIS_PASSWORD=redispw"));
    if (cfg == NULL)
        fail_msg("%s", err);
    f = open_memstream(&dump, &len);
    config_dump(cfg, f);
    fclose(f);
    assert_non_null(strstr(dump, "hubspot.token = ***  # env HSQB_HUBSPOT_TOKEN\n"));
    assert_non_null(strstr(dump, "oauth.client_secret = ***"));
    assert_null(strstr(dump, "very-secret"));
    assert_null(strstr(dump, "redispw"));
    assert_null(strstr(dump, "app-secret-value"));
    free(dump);
    config_free(cfg);
}

/* A secret on the command line shows in ps: refused, with the ways that do not. */
static void test_secret_flags_are_refused(void **state)
{
    (void)state;
    expect_error(load(ARGV("--oauth.client_secret=s3cr3t-value"), ENVP("LANG=C")),
                 "flag --oauth.client_secret: a secret is not accepted on the command line");
    assert_non_null(strstr(err, "HSQB_OAUTH_CLIENT_SECRET_FILE=<file>"));
    assert_null(strstr(err, "s3cr3t-value"));
    expect_error(load(ARGV("--hubspot.token", "pat-na1-x"), ENVP("LANG=C")),
                 "flag --hubspot.token: a secret is not accepted");
    expect_error(load(ARGV("--redis.password=pw"), ENVP("LANG=C")),
                 "flag --redis.password: a secret is not accepted");
    expect_error(load(ARGV("--kafka.sasl.password=pw"), ENVP("LANG=C")),
                 "flag --kafka.sasl.password: a secret is not accepted");
    assert_non_null(strstr(err, "HSQB_KAFKA__<PROPERTY>_FILE"));
    expect_error(load(ARGV("--kafka.ssl.key.password=pw"), ENVP("LANG=C")),
                 "flag --kafka.ssl.key.password: a secret is not accepted");
    /* not secrets: still fine as flags */
    struct config *cfg =
        load(ARGV("--kafka.sasl.username=hsqb", "--oauth.client_id=abc"), ENVP("LANG=C"));
    assert_non_null(cfg);
    config_free(cfg);
}

/* Every secret value, the kafka.* pass-through's included, is masked in log lines. */
static void test_secret_values_are_masked_in_logs(void **state)
{
    struct config *cfg;
    char out[512];

    (void)state;
    cfg = load(NULL, ENVP("HSQB_HUBSPOT_TOKEN=pat-na1-very-secret",
                          "HSQB_KAFKA__SASL_PASSWORD=kafka-sasl-pw-0123",
                          "HSQB_KAFKA__SSL_KEY_PASSWORD=kafka-key-pw-4567",
                          "HSQB_KAFKA__SASL_USERNAME=hsqb-user"));
    if (cfg == NULL)
        fail_msg("%s", err);
    log_clear_secrets();
    settings_register_secrets(cfg);
    log_redact("auth failed for hsqb-user with kafka-sasl-pw-0123, key kafka-key-pw-4567, "
               "token pat-na1-very-secret",
               out, sizeof(out));
    assert_null(strstr(out, "kafka-sasl-pw-0123"));
    assert_null(strstr(out, "kafka-key-pw-4567"));
    assert_null(strstr(out, "pat-na1-very-secret"));
    assert_non_null(strstr(out, "hsqb-user")); /* not a secret */
    log_clear_secrets();
    config_free(cfg);
}

static void test_cross_key_checks(void **state)
{
    struct config *cfg;

    (void)state;
    expect_error(load(ARGV("--worker.max_in_flight=10", "--worker.max_in_flight_per_partition=20"),
                      ENVP("LANG=C")),
                 "worker.max_in_flight_per_partition: value 20 exceeds worker.max_in_flight (10) "
                 "(from flag --worker.max_in_flight_per_partition)");
    expect_error(load(ARGV("--retry.base=20s"), ENVP("LANG=C")),
                 "retry.base: value 20s exceeds retry.cap (10s)");
    expect_error(load(NULL, ENVP("HSQB_RETRY_MAX_AGE=8d")),
                 "retry.max_age: value 8d exceeds dedup.window (7d)");
    expect_error(load(ARGV("--redis.key_prefix={x}:"), ENVP("LANG=C")),
                 "redis.key_prefix: must not contain { or }");
    expect_error(load(ARGV("--hubspot.base_url=api.hubapi.com"), ENVP("LANG=C")),
                 "hubspot.base_url: \"api.hubapi.com\" is not an http:// or https:// URL");
    /* plain http carries tokens in clear text: refused unless explicitly allowed */
    expect_error(load(ARGV("--qbo.base_url=http://quickbooks.api.intuit.com"), ENVP("LANG=C")),
                 "qbo.base_url: \"http://quickbooks.api.intuit.com\" is plain http");
    expect_error(load(NULL, ENVP("HSQB_OAUTH_TOKEN_URL=http://oauth.example/t")),
                 "oauth.token_url: \"http://oauth.example/t\" is plain http");
    expect_error(
        load(ARGV("--hubspot.base_url=http://api.hubapi.com", "--http.allow_insecure=false"),
             ENVP("LANG=C")),
        "hubspot.base_url: \"http://api.hubapi.com\" is plain http");
    cfg = load(ARGV("--hubspot.base_url=http://127.0.0.1:1", "--http.allow_insecure=true"),
               ENVP("LANG=C"));
    assert_non_null(cfg);
    config_free(cfg);
    expect_error(load(ARGV("--metrics.listen=9108"), ENVP("LANG=C")),
                 "metrics.listen: \"9108\" is not host:port");
    expect_error(load(ARGV("--ingress.listen=localhost"), ENVP("LANG=C")),
                 "ingress.listen: \"localhost\" is not host:port");
    expect_error(load(ARGV("--ingress.public_url=http://hsqb.example.com"), ENVP("LANG=C")),
                 "ingress.public_url: \"http://hsqb.example.com\" is plain http");
    expect_error(load(ARGV("--ingress.public_url=hsqb.example.com"), ENVP("LANG=C")),
                 "ingress.public_url: \"hsqb.example.com\" is not an http:// or https:// URL");
    expect_error(load(ARGV("--retry.schedule=30s,soon"), ENVP("LANG=C")),
                 "retry.schedule: item \"soon\" is not a duration in [1s, 30d]");
    expect_error(load(ARGV("--hubspot.token_portals=102670506,portal-2"), ENVP("LANG=C")),
                 "hubspot.token_portals: item \"portal-2\" is not a HubSpot portal id or *");
    expect_error(load(ARGV("--hubspot.token_portals=0"), ENVP("LANG=C")),
                 "hubspot.token_portals: item \"0\" is not a HubSpot portal id or *");
    cfg = load(ARGV("--hubspot.token_portals=102670506, *"), ENVP("LANG=C"));
    assert_non_null(cfg);
    config_free(cfg);
    expect_error(load(ARGV("--kafka.bootstrap.servers=x:9092"), ENVP("LANG=C")),
                 "kafka.bootstrap.servers: may not be overridden: use kafka.brokers");
    expect_error(load(NULL, ENVP("HSQB_KAFKA__ENABLE_AUTO_OFFSET_STORE=true")),
                 "kafka.enable.auto.offset.store: may not be overridden");
    expect_error(load(ARGV("--kafka.securty.protocol=ssl"), ENVP("LANG=C")),
                 "kafka.securty.protocol: No such configuration property");
}

static char *run_cmd(char **argv, char **envp, int *rc, char **errout)
{
    char *out = NULL, *e = NULL;
    size_t olen = 0, elen = 0;
    FILE *fo = open_memstream(&out, &olen), *fe = open_memstream(&e, &elen);
    int argc = 0;

    while (argv[argc] != NULL)
        argc++;
    *rc = cmd_config_run(argc, argv, envp, fo, fe);
    fclose(fo);
    fclose(fe);
    *errout = e;
    return out;
}

static void test_cmd_config(void **state)
{
    char *out, *e;
    int rc;
    size_t n, i;
    const struct config_def *t = settings_table(&n);

    (void)state;
    out = run_cmd((char *[]){"config", "check", "--worker.threads=8", NULL}, ENVP("HSQB_NO_SUCH=1"),
                  &rc, &e);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "config ok\n");
    assert_non_null(strstr(e, "warning: ignoring HSQB_NO_SUCH: no such setting"));
    free(out);
    free(e);

    out =
        run_cmd((char *[]){"config", "check", "--worker.threads=0", NULL}, ENVP("LANG=C"), &rc, &e);
    assert_int_equal(rc, 2);
    assert_string_equal(e, "hsqb-worker config check: worker.threads: value 0 out of range [1, "
                           "256] (from flag --worker.threads)\n");
    free(out);
    free(e);

    out = run_cmd((char *[]){"config", "dump", NULL}, (char *[]){"HSQB_HUBSPOT_TOKEN=t0k", NULL},
                  &rc, &e);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "hubspot.token = ***  # env HSQB_HUBSPOT_TOKEN\n"));
    assert_non_null(strstr(out, "# incomplete: kafka.brokers: required but not set"));
    assert_null(strstr(out, "t0k"));
    free(out);
    free(e);

    out = run_cmd((char *[]){"config", "markdown", NULL}, NULL, &rc, &e);
    assert_int_equal(rc, 0);
    for (i = 0; i < n; i++) {
        char cell[128];
        snprintf(cell, sizeof(cell), "| `%s` |", t[i].name);
        if (strstr(out, cell) == NULL)
            fail_msg("markdown lacks %s", t[i].name);
    }
    free(out);
    free(e);

    out = run_cmd((char *[]){"config", "frobnicate", NULL}, NULL, &rc, &e);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(e, "usage: hsqb-worker config check"));
    free(out);
    free(e);
}

/* The option builders carry every connection setting a subcommand needs, so `credentials`
 * reaches the same Redis and speaks HTTP with the same limits as `run`. */
static void test_option_builders(void **state)
{
    struct config *cfg =
        load(ARGV("--redis.host=cache.internal", "--redis.port=6380", "--redis.db=3",
                  "--redis.connect_timeout=700ms", "--redis.command_timeout=900ms",
                  "--redis.key_prefix=t1:", "--http.connect_timeout=2s", "--http.timeout=7s",
                  "--http.max_response_bytes=1MiB", "--http.user_agent=hsqb-test"),
             ENVP("HSQB_REDIS_PASSWORD=pw"));
    struct redis_opts ro;
    struct http_client_opts ho, def;

    (void)state;
    if (cfg == NULL)
        fail_msg("%s", err);
    settings_redis_opts(cfg, &ro);
    assert_string_equal(ro.host, "cache.internal");
    assert_int_equal(ro.port, 6380);
    assert_null(ro.username); /* empty means none */
    assert_string_equal(ro.password, "pw");
    assert_int_equal(ro.db, 3);
    assert_int_equal(ro.connect_timeout_ms, 700);
    assert_int_equal(ro.command_timeout_ms, 900);
    assert_string_equal(ro.prefix, "t1:");
    settings_http_opts(cfg, &ho);
    http_client_opts_default(&def);
    assert_int_equal(ho.connect_timeout_ms, 2000);
    assert_int_equal(ho.timeout_ms, 7000);
    assert_int_equal(ho.max_body, 1024 * 1024);
    assert_string_equal(ho.user_agent, "hsqb-test");
    assert_int_equal(ho.max_header_bytes, def.max_header_bytes);
    assert_int_equal(ho.accept_gzip, def.accept_gzip);
    config_free(cfg);
}

static void test_help_lists_every_key(void **state)
{
    char *help = NULL, flag[128];
    size_t len = 0, n, i;
    const struct config_def *t = settings_table(&n);
    FILE *f = open_memstream(&help, &len);

    (void)state;
    settings_help(f);
    fclose(f);
    for (i = 0; i < n; i++) {
        snprintf(flag, sizeof(flag), "  --%s=", t[i].name);
        if (strstr(help, flag) == NULL)
            fail_msg("--help lacks %s", t[i].name);
    }
    assert_non_null(strstr(help, "env HSQB_OAUTH_CLIENT_SECRET or HSQB_OAUTH_CLIENT_SECRET_FILE"));
    free(help);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loads_with_production_defaults),
        cmocka_unit_test(test_every_default_within_its_bounds),
        cmocka_unit_test(test_env_and_flags_override),
        cmocka_unit_test(test_required_keys),
        cmocka_unit_test(test_secrets_are_flagged_and_hidden),
        cmocka_unit_test(test_secret_values_are_masked_in_logs),
        cmocka_unit_test(test_secret_flags_are_refused),
        cmocka_unit_test(test_cross_key_checks),
        cmocka_unit_test(test_cmd_config),
        cmocka_unit_test(test_option_builders),
        cmocka_unit_test(test_help_lists_every_key),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
