/* test_sb_json.c - the sandbox's text writer writes what json-c writes.
 *
 * The sandbox answers HubSpot records and its request log through sb_json.h instead of
 * json-c trees; clients and tests compare those answers byte for byte, so every byte
 * value, in keys and in values, must come out as json_object_to_json_string_ext() with
 * PLAIN | NOSLASHESCAPE makes it (sb_resp_json's flags).
 */
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "tests/sandbox/sb_json.h"

#define FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

static void test_every_byte_escapes_as_json_c(void **state)
{
    (void)state;
    for (int c = 1; c < 256; c++) {
        char s[4] = {'a', (char)c, 'z', 0};
        struct json_object *o = json_object_new_object();
        struct sb_json w;
        json_object_object_add(o, s, json_object_new_string(s));
        sb_json_init(&w);
        sb_json_open(&w, '{');
        sb_json_kv_str(&w, s, s);
        sb_json_close(&w, '}');
        assert_int_equal(w.err, 0);
        assert_string_equal(w.buf, json_object_to_json_string_ext(o, FLAGS));
        sb_json_release(&w);
        json_object_put(o);
    }
}

static void test_nesting_and_values_as_json_c(void **state)
{
    (void)state;
    const char *text = "{\"a\":[1,-2,{\"b\":null,\"c\":true,\"d\":false},[],{}],"
                       "\"e\":\"caf\xc3\xa9 \xff/\\\"\\\\\\n\",\"f\":{\"g\":[\"x\",\"y\"]}}";
    struct json_object *o = json_tokener_parse(text);
    struct sb_json w;
    assert_non_null(o);
    sb_json_init(&w);
    sb_json_open(&w, '{');
    sb_json_key(&w, "a");
    sb_json_open(&w, '[');
    sb_json_int(&w, 1);
    sb_json_int(&w, -2);
    sb_json_open(&w, '{');
    sb_json_kv_str(&w, "b", NULL);
    sb_json_key(&w, "c");
    sb_json_bool(&w, 1);
    sb_json_key(&w, "d");
    sb_json_bool(&w, 0);
    sb_json_close(&w, '}');
    sb_json_open(&w, '[');
    sb_json_close(&w, ']');
    sb_json_open(&w, '{');
    sb_json_close(&w, '}');
    sb_json_close(&w, ']');
    sb_json_kv_str(&w, "e", "caf\xc3\xa9 \xff/\"\\\n");
    sb_json_key(&w, "f");
    sb_json_raw(&w, "{\"g\":[\"x\",\"y\"]}", 15);
    sb_json_close(&w, '}');
    assert_int_equal(w.err, 0);
    assert_string_equal(w.buf, json_object_to_json_string_ext(o, FLAGS));
    sb_json_release(&w);
    json_object_put(o);
}

static void test_integers_as_printf(void **state)
{
    static const int64_t v[] = {0,  1,         -1,         9,         10,        -10,
                                99, 100,       123456789,  INT32_MAX, INT32_MIN, INT64_MAX,
                                INT64_MIN,     INT64_MIN + 1, -999999999999LL};
    char got[SB_JSON_INT_MAX], want[32];
    (void)state;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        snprintf(want, sizeof(want), "%" PRId64, v[i]);
        assert_int_equal(sb_json_fmt_int(got, v[i]), strlen(want));
        assert_string_equal(got, want);
    }
}

static void assert_tree_as_json_c(struct json_object *o)
{
    struct sb_json w;
    sb_json_init(&w);
    sb_json_tree(&w, o);
    assert_int_equal(w.err, 0);
    assert_string_equal(w.buf, json_object_to_json_string_ext(o, FLAGS));
    sb_json_release(&w);
}

static void test_trees_as_json_c(void **state)
{
    (void)state;
    /* Parsed numbers keep their text in json-c (doubles) or are reprinted (integers). */
    const char *text = "{\"a\":[1.50,1e3,-0.0,300.00,0.1,-7,0,18446744073709551615,"
                       "-9223372036854775808,9223372036854775807],\"b\":{\"c\":null,\"d\":[],"
                       "\"e\":{},\"f\":[null,true,false,\"x\\u0001\\\"/\\\\\"]},"
                       "\"caf\u00e9\\n\":\"\xff\"}";
    struct json_object *o = json_tokener_parse(text), *a;
    assert_non_null(o);
    assert_tree_as_json_c(o);
    /* Built values: doubles without text, a string with a NUL, a money double_s. */
    a = json_object_new_array();
    json_object_array_add(a, json_object_new_double(0.1));
    json_object_array_add(a, json_object_new_double(1e300));
    json_object_array_add(a, json_object_new_double(-2.5));
    json_object_array_add(a, json_object_new_double_s(3.0, "3.00"));
    json_object_array_add(a, json_object_new_string_len("a\0b", 3));
    json_object_array_add(a, json_object_new_int64(INT64_MIN));
    json_object_array_add(a, json_object_new_uint64(UINT64_MAX));
    json_object_array_add(a, NULL);
    json_object_object_add(o, "built", a);
    assert_tree_as_json_c(o);
    assert_tree_as_json_c(NULL);
    json_object_put(o);
}

static void test_tree_deeper_than_the_writer_fails(void **state)
{
    struct json_object *o = json_object_new_array();
    struct sb_json w;
    (void)state;
    for (int i = 0; i < SB_JSON_DEPTH; i++) { /* SB_JSON_DEPTH + 1 levels */
        struct json_object *outer = json_object_new_array();
        json_object_array_add(outer, o);
        o = outer;
    }
    sb_json_init(&w);
    sb_json_tree(&w, o);
    assert_int_equal(w.err, 1);
    sb_json_release(&w);
    json_object_put(o);
}

static void test_misuse_latches_an_error(void **state)
{
    struct sb_json w;
    (void)state;
    sb_json_init(&w);
    sb_json_close(&w, '}'); /* nothing open */
    assert_int_equal(w.err, 1);
    sb_json_release(&w);
    sb_json_init(&w);
    for (int i = 0; i <= SB_JSON_DEPTH; i++)
        sb_json_open(&w, '[');
    assert_int_equal(w.err, 1);
    sb_json_release(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_byte_escapes_as_json_c),
        cmocka_unit_test(test_nesting_and_values_as_json_c),
        cmocka_unit_test(test_integers_as_printf),
        cmocka_unit_test(test_trees_as_json_c),
        cmocka_unit_test(test_tree_deeper_than_the_writer_fails),
        cmocka_unit_test(test_misuse_latches_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
