/* test_log.c - JSON lines, level gating, escaping and redaction as a reader sees them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>

#include "common/clock.h"
#include "common/log.h"

static char captured[1 << 16];

/* Run the logger into a temp file, return everything written. */
static FILE *g_tmp;

static int setup(void **state)
{
    (void)state;
    g_tmp = tmpfile();
    assert_non_null(g_tmp);
    log_set_fd(fileno(g_tmp));
    log_set_level(LOG_INFO);
    log_clear_secrets();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    log_set_fd(1);
    fclose(g_tmp);
    log_clear_secrets();
    return 0;
}

static const char *output(void)
{
    long n = lseek(fileno(g_tmp), 0, SEEK_CUR);
    assert_true(n >= 0 && (size_t)n < sizeof captured);
    assert_int_equal(pread(fileno(g_tmp), captured, (size_t)n, 0), n);
    captured[n] = '\0';
    return captured;
}

/* Parse the only line written so far; fails the test if it is not one JSON object. */
static struct json_object *only_line(void)
{
    const char *out = output();
    const char *nl = strchr(out, '\n');
    assert_non_null(nl);
    assert_int_equal(nl[1], '\0');
    struct json_object *obj = json_tokener_parse(out);
    assert_non_null(obj);
    assert_true(json_object_is_type(obj, json_type_object));
    return obj;
}

static const char *member(struct json_object *obj, const char *key)
{
    struct json_object *v;
    if (!json_object_object_get_ex(obj, key, &v))
        return NULL;
    return json_object_get_string(v);
}

static int evaluated;
static int side_effect(void)
{
    evaluated++;
    return 1;
}

static void test_line_shape(void **state)
{
    (void)state;
    log_info("hello %s %d", "world", 42);
    struct json_object *o = only_line();
    assert_string_equal(member(o, "level"), "info");
    assert_string_equal(member(o, "msg"), "hello world 42");
    const char *ts = member(o, "ts");
    assert_non_null(ts);
    assert_int_equal(strlen(ts), 24); /* 2026-11-26T18:51:38.123Z */
    assert_int_equal(ts[23], 'Z');
    json_object_put(o);
}

static void test_level_gating_skips_arguments(void **state)
{
    (void)state;
    evaluated = 0;
    log_debug("never %d", side_effect());
    assert_int_equal(evaluated, 0);
    assert_string_equal(output(), "");
    log_set_level(LOG_DEBUG);
    log_debug("now %d", side_effect());
    assert_int_equal(evaluated, 1);
    json_object_put(only_line());
}

static void test_levels_parse(void **state)
{
    (void)state;
    assert_int_equal(log_level_parse("debug"), LOG_DEBUG);
    assert_int_equal(log_level_parse("WARNING"), LOG_WARN);
    assert_int_equal(log_level_parse("error"), LOG_ERROR);
    assert_int_equal(log_level_parse("off"), LOG_OFF);
    assert_int_equal(log_level_parse("loud"), -1);
    assert_int_equal(log_level_parse(NULL), -1);
    log_set_level(LOG_OFF);
    log_error("silenced");
    assert_string_equal(output(), "");
}

static void test_untrusted_bytes_escaped(void **state)
{
    (void)state;
    /* Quotes, newlines, control bytes and invalid UTF-8 must not break the line. */
    const char evil[] = "a\"b\nc\\d\x01\xff\xfe\"},\"level\":\"error";
    log_warn("payload %s", evil);
    struct json_object *o = only_line();
    assert_string_equal(member(o, "level"), "warn");
    const char *msg = member(o, "msg");
    assert_non_null(strstr(msg, "a\"b\nc\\d\x01"));
    assert_non_null(strstr(msg, "\xef\xbf\xbd")); /* U+FFFD for the bad bytes */
    json_object_put(o);
}

static void test_fields(void **state)
{
    (void)state;
    struct log_field f[] = {LF_STR("event_id", "ap-1-2"), LF_INT("partition", 3),
                            LF_INT("offset", 9007199254740993LL), LF_STR("key", NULL),
                            LF_STR("level", "forged")};
    log_fields(LOG_INFO, "event done", f, 5);
    struct json_object *o = only_line();
    assert_string_equal(member(o, "event_id"), "ap-1-2");
    struct json_object *v;
    assert_true(json_object_object_get_ex(o, "offset", &v));
    assert_int_equal(json_object_get_int64(v), 9007199254740993LL);
    assert_true(json_object_object_get_ex(o, "key", &v));
    assert_null(v);
    assert_string_equal(member(o, "level"), "info"); /* a field cannot forge the level */
    json_object_put(o);
}

static void test_secret_field_keys_masked(void **state)
{
    (void)state;
    struct log_field f[] = {LF_STR("access_token", "eyJhbGciOi.secret"),
                            LF_STR("client_secret", "s3cr3t-value"),
                            LF_STR("Authorization", "Bearer abc.def"),
                            LF_INT("refresh_token_len", 12), LF_STR("realm", "123")};
    log_fields(LOG_INFO, "tokens", f, 5);
    const char *out = output();
    assert_null(strstr(out, "eyJhbGciOi"));
    assert_null(strstr(out, "s3cr3t"));
    assert_null(strstr(out, "abc.def"));
    struct json_object *o = only_line();
    assert_string_equal(member(o, "access_token"), "***");
    assert_string_equal(member(o, "refresh_token_len"), "***");
    assert_string_equal(member(o, "realm"), "123");
    json_object_put(o);
}

static void test_secret_patterns_in_text(void **state)
{
    (void)state;
    log_error("curl said: Authorization: Bearer pat-na1-11111111-2222 failed; "
              "body grant_type=refresh_token&refresh_token=RT-xyz-789&client_id=abc "
              "json {\"access_token\": \"AT-123456\",\"x\":1}");
    const char *out = output();
    assert_null(strstr(out, "pat-na1-1111"));
    assert_null(strstr(out, "RT-xyz-789"));
    assert_null(strstr(out, "AT-123456"));
    assert_non_null(strstr(out, "client_id=abc")); /* not a secret */
    assert_non_null(strstr(out, "Bearer ***"));
    json_object_put(only_line());
}

static void test_registered_secret_masked_anywhere(void **state)
{
    (void)state;
    assert_int_equal(log_register_secret("hunter2-redis-pass"), 0);
    assert_int_equal(log_register_secret("ab"), 0); /* too short: ignored, not an error */
    struct log_field f[] = {LF_STR("detail", "AUTH hunter2-redis-pass refused")};
    log_fields(LOG_WARN, "redis ab: hunter2-redis-pass", f, 1);
    const char *out = output();
    assert_null(strstr(out, "hunter2"));
    assert_non_null(strstr(out, "AUTH *** refused"));
    assert_non_null(strstr(out, "ab")); /* "ab" was not registered */
}

static void test_redact_api(void **state)
{
    (void)state;
    char out[64];
    assert_string_equal(log_redact("Bearer abc", out, sizeof out), "Bearer ***");
    assert_string_equal(log_redact(NULL, out, sizeof out), "");
    /* truncation keeps the buffer terminated */
    char small[8];
    log_redact("0123456789abcdef", small, sizeof small);
    assert_string_equal(small, "0123456");
}

static void test_oversized_message_truncated_but_valid(void **state)
{
    (void)state;
    size_t n = LOG_MAX_LINE * 2;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, '"', n); /* every byte doubles when escaped */
    big[n] = '\0';
    struct log_field f[] = {LF_STR("blob", big)};
    log_fields(LOG_INFO, "big", f, 1);
    free(big);
    struct json_object *o = only_line();
    struct json_object *v;
    assert_true(json_object_object_get_ex(o, "truncated", &v));
    assert_true(json_object_get_boolean(v));
    assert_true(strlen(output()) <= LOG_MAX_LINE);
    json_object_put(o);
}

/* A flood logs one line a second, which says how many it stood for. */
static void test_log_limit(void **state)
{
    struct log_limit l = LOG_LIMIT_INIT;
    uint64_t dropped = 99;
    (void)state;

    while (clock_mono_ms() % 1000 > 500) /* the first five calls stay in one second */
        usleep(10 * 1000);
    assert_int_equal(log_limit_take(&l, &dropped), 1);
    assert_int_equal(dropped, 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(log_limit_take(&l, &dropped), 0);
    usleep(1100 * 1000);
    assert_int_equal(log_limit_take(&l, &dropped), 1);
    assert_int_equal(dropped, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_line_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_gating_skips_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_levels_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_untrusted_bytes_escaped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_field_keys_masked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_patterns_in_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registered_secret_masked_anywhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redact_api, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_message_truncated_but_valid, setup,
                                        teardown),
        cmocka_unit_test(test_log_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
