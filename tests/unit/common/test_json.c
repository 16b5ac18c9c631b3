/* test_json.c - typed getters, the strict parser and the builder (common/json.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"

static struct json_object *parse_ok(const char *s)
{
    char err[256] = "";
    struct json_object *o = json_parse_strict(s, strlen(s), 0, err, sizeof err);
    if (!o)
        fail_msg("expected to parse: %s (error: %s)", s, err);
    return o;
}

/* Parses n bytes and expects a failure whose message contains want. */
static void parse_fails_n(const char *s, size_t n, int depth, const char *want)
{
    char err[256] = "";
    struct json_object *o = json_parse_strict(s, n, depth, err, sizeof err);
    if (o) {
        json_object_put(o);
        fail_msg("expected a parse failure for: %.*s", (int)n, s);
    }
    if (!strstr(err, want))
        fail_msg("error for %.*s is \"%s\", expected \"%s\"", (int)n, s, err, want);
}

static void parse_fails(const char *s, const char *want)
{
    parse_fails_n(s, strlen(s), 0, want);
}

/* ---- getters --------------------------------------------------------------------- */

static void test_get_str(void **state)
{
    (void)state;
    struct json_object *o =
        parse_ok("{\"s\":\"hi\",\"n\":1,\"o\":{},\"z\":null,\"nul\":\"a\\u0000b\","
                 "\"e\":\"\"}");
    const char *s = "untouched";
    size_t len = 99;

    assert_int_equal(json_get_str(o, "s", &s), JGET_OK);
    assert_string_equal(s, "hi");
    assert_int_equal(json_get_str(o, "e", &s), JGET_OK);
    assert_string_equal(s, "");
    s = "untouched";
    assert_int_equal(json_get_str(o, "absent", &s), JGET_MISSING);
    assert_int_equal(json_get_str(o, "z", &s), JGET_MISSING);
    assert_int_equal(json_get_str(o, "n", &s), JGET_WRONG_TYPE);
    assert_int_equal(json_get_str(o, "o", &s), JGET_WRONG_TYPE);
    /* A C string would silently cut "a\0b" to "a". */
    assert_int_equal(json_get_str(o, "nul", &s), JGET_RANGE);
    assert_string_equal(s, "untouched");
    assert_int_equal(json_get_str(o, NULL, &s), JGET_MISSING);
    assert_int_equal(json_get_str(NULL, "s", &s), JGET_WRONG_TYPE);

    assert_int_equal(json_get_strn(o, "nul", &s, &len), JGET_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "a\0b", 3);
    assert_int_equal(json_get_strn(o, "s", &s, NULL), JGET_OK);
    assert_int_equal(json_get_strn(o, "n", &s, &len), JGET_WRONG_TYPE);
    assert_int_equal(json_get_strn(o, "z", &s, &len), JGET_MISSING);

    json_object_put(o);
}

static void test_get_str_on_non_object(void **state)
{
    (void)state;
    struct json_object *a = parse_ok("[\"s\"]");
    struct json_object *s = parse_ok("\"s\"");
    const char *out = NULL;
    assert_int_equal(json_get_str(a, "0", &out), JGET_WRONG_TYPE);
    assert_int_equal(json_get_str(s, "s", &out), JGET_WRONG_TYPE);
    assert_null(out);
    json_object_put(a);
    json_object_put(s);
}

static void test_get_int64(void **state)
{
    (void)state;
    struct json_object *o =
        parse_ok("{\"i\":42,\"neg\":-7,\"max\":9223372036854775807,\"min\":-9223372036854775808,"
                 "\"over\":9223372036854775808,\"under\":-9223372036854775809,"
                 "\"u64\":18446744073709551615,\"huge\":123456789012345678901234567890,"
                 "\"hugeneg\":-123456789012345678901234567890,\"dbl\":5.0,\"exp\":1e2,\"frac\":1.5,"
                 "\"str\":\"5\",\"b\":true,\"z\":null,\"o\":{},\"a\":[],\"zero\":0,\"nzero\":-0}");
    int64_t v = 1234;

    assert_int_equal(json_get_int64(o, "i", 0, 100, &v), JGET_OK);
    assert_int_equal(v, 42);
    assert_int_equal(json_get_int64(o, "neg", INT64_MIN, INT64_MAX, &v), JGET_OK);
    assert_int_equal(v, -7);
    assert_int_equal(json_get_int64(o, "max", INT64_MIN, INT64_MAX, &v), JGET_OK);
    assert_true(v == INT64_MAX);
    assert_int_equal(json_get_int64(o, "min", INT64_MIN, INT64_MAX, &v), JGET_OK);
    assert_true(v == INT64_MIN);
    assert_int_equal(json_get_int64(o, "zero", 0, 0, &v), JGET_OK);
    assert_int_equal(v, 0);
    assert_int_equal(json_get_int64(o, "nzero", 0, 0, &v), JGET_OK);
    assert_int_equal(v, 0);

    /* Bounds are inclusive; one past either end is out of range. */
    assert_int_equal(json_get_int64(o, "i", 42, 42, &v), JGET_OK);
    v = 1234;
    assert_int_equal(json_get_int64(o, "i", 43, 100, &v), JGET_RANGE);
    assert_int_equal(json_get_int64(o, "i", 0, 41, &v), JGET_RANGE);
    assert_int_equal(json_get_int64(o, "neg", 0, INT64_MAX, &v), JGET_RANGE);
    /* Beyond int64, whichever way json-c would have stored or clamped it. */
    assert_int_equal(json_get_int64(o, "over", INT64_MIN, INT64_MAX, &v), JGET_RANGE);
    assert_int_equal(json_get_int64(o, "under", INT64_MIN, INT64_MAX, &v), JGET_RANGE);
    assert_int_equal(json_get_int64(o, "u64", INT64_MIN, INT64_MAX, &v), JGET_RANGE);
    assert_int_equal(json_get_int64(o, "huge", INT64_MIN, INT64_MAX, &v), JGET_RANGE);
    assert_int_equal(json_get_int64(o, "hugeneg", INT64_MIN, INT64_MAX, &v), JGET_RANGE);
    /* Integral doubles are still not integers: ids must be sent as integers. */
    assert_int_equal(json_get_int64(o, "dbl", INT64_MIN, INT64_MAX, &v), JGET_WRONG_TYPE);
    assert_int_equal(json_get_int64(o, "exp", INT64_MIN, INT64_MAX, &v), JGET_WRONG_TYPE);
    assert_int_equal(json_get_int64(o, "frac", INT64_MIN, INT64_MAX, &v), JGET_WRONG_TYPE);
    assert_int_equal(json_get_int64(o, "str", INT64_MIN, INT64_MAX, &v), JGET_WRONG_TYPE);
    assert_int_equal(json_get_int64(o, "b", INT64_MIN, INT64_MAX, &v), JGET_WRONG_TYPE);
    assert_int_equal(json_get_int64(o, "o", INT64_MIN, INT64_MAX, &v), JGET_WRONG_TYPE);
    assert_int_equal(json_get_int64(o, "a", INT64_MIN, INT64_MAX, &v), JGET_WRONG_TYPE);
    assert_int_equal(json_get_int64(o, "z", INT64_MIN, INT64_MAX, &v), JGET_MISSING);
    assert_int_equal(json_get_int64(o, "absent", INT64_MIN, INT64_MAX, &v), JGET_MISSING);
    assert_int_equal(v, 1234);
    json_object_put(o);
}

static void test_get_int64_lenient(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        enum jget_status st;
        int64_t v;
    } cases[] = {
        {"\"123\"", JGET_OK, 123},
        {"\"-5\"", JGET_OK, -5},
        {"\"0\"", JGET_OK, 0},
        {"\"-0\"", JGET_OK, 0},
        {"\"9223372036854775807\"", JGET_OK, INT64_MAX},
        {"\"-9223372036854775808\"", JGET_OK, INT64_MIN},
        {"\"9223372036854775808\"", JGET_RANGE, 0},
        {"\"-9223372036854775809\"", JGET_RANGE, 0},
        {"\"99999999999999999999999999\"", JGET_RANGE, 0},
        {"\"007\"", JGET_WRONG_TYPE, 0},
        {"\"+5\"", JGET_WRONG_TYPE, 0},
        {"\" 5\"", JGET_WRONG_TYPE, 0},
        {"\"5 \"", JGET_WRONG_TYPE, 0},
        {"\"\"", JGET_WRONG_TYPE, 0},
        {"\"-\"", JGET_WRONG_TYPE, 0},
        {"\"12abc\"", JGET_WRONG_TYPE, 0},
        {"\"1.0\"", JGET_WRONG_TYPE, 0},
        {"\"1e3\"", JGET_WRONG_TYPE, 0},
        {"\"0x10\"", JGET_WRONG_TYPE, 0},
        {"\"99999999999999999999x\"", JGET_WRONG_TYPE, 0},
        {"\"1\\u00002\"", JGET_WRONG_TYPE, 0},
        {"904", JGET_OK, 904},
        {"-904", JGET_OK, -904},
        {"9223372036854775808", JGET_RANGE, 0},
        {"5.0", JGET_WRONG_TYPE, 0},
        {"true", JGET_WRONG_TYPE, 0},
        {"{}", JGET_WRONG_TYPE, 0},
        {"null", JGET_MISSING, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char doc[128];
        snprintf(doc, sizeof doc, "{\"id\":%s}", cases[i].json);
        struct json_object *o = parse_ok(doc);
        int64_t v = 777;
        enum jget_status st = json_get_int64_lenient(o, "id", INT64_MIN, INT64_MAX, &v);
        if (st != cases[i].st)
            fail_msg("%s: got %s, want %s", doc, jget_status_str(st), jget_status_str(cases[i].st));
        assert_true(v == (st == JGET_OK ? cases[i].v : 777));
        json_object_put(o);
    }
    struct json_object *o = parse_ok("{\"id\":\"50\"}");
    int64_t v;
    assert_int_equal(json_get_int64_lenient(o, "id", 1, 49, &v), JGET_RANGE);
    assert_int_equal(json_get_int64_lenient(o, "id", 50, 50, &v), JGET_OK);
    json_object_put(o);
}

static void test_get_bool_obj_array(void **state)
{
    (void)state;
    struct json_object *o = parse_ok("{\"t\":true,\"f\":false,\"one\":1,\"s\":\"true\",\"z\":null,"
                                     "\"o\":{\"x\":1},\"a\":[1,2]}");
    int b = 5;
    struct json_object *c = NULL;

    assert_int_equal(json_get_bool(o, "t", &b), JGET_OK);
    assert_int_equal(b, 1);
    assert_int_equal(json_get_bool(o, "f", &b), JGET_OK);
    assert_int_equal(b, 0);
    b = 5;
    assert_int_equal(json_get_bool(o, "one", &b), JGET_WRONG_TYPE);
    assert_int_equal(json_get_bool(o, "s", &b), JGET_WRONG_TYPE);
    assert_int_equal(json_get_bool(o, "z", &b), JGET_MISSING);
    assert_int_equal(json_get_bool(o, "absent", &b), JGET_MISSING);
    assert_int_equal(b, 5);

    assert_int_equal(json_get_obj(o, "o", &c), JGET_OK);
    int64_t x;
    assert_int_equal(json_get_int64(c, "x", 0, 10, &x), JGET_OK);
    assert_int_equal(x, 1);
    c = NULL;
    assert_int_equal(json_get_obj(o, "a", &c), JGET_WRONG_TYPE);
    assert_int_equal(json_get_obj(o, "z", &c), JGET_MISSING);
    assert_int_equal(json_get_obj(o, "absent", &c), JGET_MISSING);
    assert_null(c);
    assert_int_equal(json_get_array(o, "a", &c), JGET_OK);
    assert_int_equal(json_object_array_length(c), 2);
    c = NULL;
    assert_int_equal(json_get_array(o, "o", &c), JGET_WRONG_TYPE);
    assert_int_equal(json_get_array(o, "z", &c), JGET_MISSING);
    assert_null(c);
    json_object_put(o);
}

static void test_val_getters(void **state)
{
    (void)state;
    struct json_object *a = parse_ok("[\"33451\",33452,null,1.5,\"x\",\"a\\u0000\"]");
    int64_t v;
    const char *s;

    assert_int_equal(json_val_int64_lenient(json_object_array_get_idx(a, 0), 1, INT64_MAX, &v),
                     JGET_OK);
    assert_int_equal(v, 33451);
    assert_int_equal(json_val_int64(json_object_array_get_idx(a, 1), 1, INT64_MAX, &v), JGET_OK);
    assert_int_equal(v, 33452);
    assert_int_equal(json_val_int64(json_object_array_get_idx(a, 2), 1, 2, &v), JGET_MISSING);
    assert_int_equal(json_val_int64(json_object_array_get_idx(a, 3), 1, 2, &v), JGET_WRONG_TYPE);
    assert_int_equal(json_val_int64(json_object_array_get_idx(a, 0), 1, 2, &v), JGET_WRONG_TYPE);
    assert_int_equal(json_val_str(json_object_array_get_idx(a, 4), &s), JGET_OK);
    assert_string_equal(s, "x");
    assert_int_equal(json_val_str(json_object_array_get_idx(a, 5), &s), JGET_RANGE);
    assert_int_equal(json_val_str(json_object_array_get_idx(a, 1), &s), JGET_WRONG_TYPE);
    assert_int_equal(json_val_str(NULL, &s), JGET_MISSING);
    json_object_put(a);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(jget_status_str(JGET_OK), "ok");
    assert_string_equal(jget_status_str(JGET_MISSING), "missing");
    assert_string_equal(jget_status_str(JGET_WRONG_TYPE), "wrong type");
    assert_string_equal(jget_status_str(JGET_RANGE), "out of range");
    struct json_object *o = parse_ok("{\"o\":{},\"a\":[],\"s\":\"\",\"i\":1,\"d\":1.5,\"b\":false,"
                                     "\"big\":99999999999999999999}");
    static const char *const want[][2] = {{"o", "object"},  {"a", "array"},  {"s", "string"},
                                          {"i", "number"},  {"d", "number"}, {"b", "boolean"},
                                          {"big", "number"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        struct json_object *v = NULL;
        json_object_object_get_ex(o, want[i][0], &v);
        assert_string_equal(json_type_str(v), want[i][1]);
    }
    assert_string_equal(json_type_str(NULL), "null");
    json_object_put(o);
}

/* ---- strict parser --------------------------------------------------------------- */

static void test_parse_valid(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "{}",
        "[]",
        "0",
        "-0",
        "1.5",
        "-1.5e10",
        "1E+5",
        "1e-5",
        "0.0",
        "true",
        "false",
        "\"\"",
        " \t\r\n{ \"a\" : [ 1 , 2 ] } \t\r\n",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\"",
        "\"\\ud83d\\ude00\"",
        "{\"a\":{\"a\":{\"a\":1}}}",
        "[{\"k\":1},{\"k\":2}]",
        "{\"callbackId\":\"ap-102670506-56776413549-7-0\",\"origin\":{\"portalId\":102670506,"
        "\"actionDefinitionId\":10646377},\"object\":{\"objectId\":904,\"objectType\":"
        "\"CONTACT\"},\"inputFields\":{\"staticInput\":\"My Static Input\"}}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++)
        json_object_put(parse_ok(docs[i]));

    /* No NUL terminator needed: only len bytes are read. */
    char buf[] = {'[', '1', ']', 'x'};
    char err[128];
    struct json_object *o = json_parse_strict(buf, 3, 0, err, sizeof err);
    assert_non_null(o);
    json_object_put(o);
}

static void test_parse_duplicate_keys(void **state)
{
    (void)state;
    parse_fails("{\"a\":1,\"a\":2}", "duplicate key \"a\"");
    parse_fails("{\"a\":1,\"b\":2,\"a\":3}", "duplicate key");
    /* Same key after unescaping. */
    parse_fails("{\"a\":1,\"\\u0061\":2}", "duplicate key \"a\"");
    parse_fails("{\"\\n\":1,\"\\u000a\":2}", "duplicate key");
    parse_fails("{\"/\":1,\"\\/\":2}", "duplicate key");
    parse_fails("{\"\xc3\xa9\":1,\"\\u00e9\":2}", "duplicate key");
    parse_fails("{\"\xf0\x9f\x98\x80\":1,\"\\ud83d\\ude00\":2}", "duplicate key");
    parse_fails("{\"\\u00E9\":1,\"\\u00e9\":2}", "duplicate key");
    /* Nested objects have their own key sets, and they do not hide the outer ones. */
    json_object_put(parse_ok("{\"a\":{\"a\":1},\"b\":{\"a\":2}}"));
    json_object_put(parse_ok("[{\"a\":1},{\"a\":2}]"));
    parse_fails("{\"a\":{\"b\":1,\"c\":2},\"a\":2}", "duplicate key \"a\"");
    parse_fails("{\"x\":[{\"k\":1,\"k\":1}]}", "duplicate key \"k\"");
    /* Prefixes and near misses are different keys. */
    json_object_put(parse_ok("{\"a\":1,\"ab\":2,\"A\":3,\"\\u0062\":4,\"\":5}"));
    parse_fails("{\"\":1,\"\":2}", "duplicate key \"\"");
}

static void test_parse_many_keys(void **state)
{
    (void)state;
    const size_t n = 20000;
    char *doc = malloc(n * 16 + 16);
    size_t off = 0;
    doc[off++] = '{';
    for (size_t i = 0; i < n; i++)
        off += (size_t)sprintf(doc + off, "%s\"k%zu\":%zu", i ? "," : "", i, i);
    doc[off++] = '}';
    char err[128];
    struct json_object *o = json_parse_strict(doc, off, 0, err, sizeof err);
    assert_non_null(o);
    assert_int_equal(json_object_object_length(o), n);
    json_object_put(o);
    /* Replace the last key with a repeat of the first. */
    off--;
    off += (size_t)sprintf(doc + off, ",\"k0\":1}");
    parse_fails_n(doc, off, 0, "duplicate key \"k0\"");
    free(doc);
}

static void test_parse_key_with_nul(void **state)
{
    (void)state;
    /* json-c would cut both keys at the NUL and merge them. */
    parse_fails("{\"a\\u0000b\":1,\"a\\u0000c\":2}", "U+0000");
    json_object_put(parse_ok("{\"a\":\"x\\u0000y\"}"));
}

static void test_parse_trailing(void **state)
{
    (void)state;
    parse_fails("{} {}", "trailing");
    parse_fails("{}x", "trailing");
    parse_fails("1 2", "trailing");
    parse_fails("[1]]", "trailing");
    parse_fails("\"a\"\"b\"", "trailing");
    parse_fails_n("{}\0", 3, 0, "trailing");
    parse_fails_n("1\0", 2, 0, "trailing");
    json_object_put(parse_ok("{}\n\n  \t"));
}

static void test_parse_utf8(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\xc0\x80",         /* overlong NUL */
        "\xc1\xbf",         /* overlong 2-byte */
        "\xe0\x80\x80",     /* overlong 3-byte */
        "\xe0\x9f\xbf",     /* overlong U+07FF */
        "\xf0\x8f\xbf\xbf", /* overlong U+FFFF */
        "\xed\xa0\x80",     /* surrogate U+D800 */
        "\xed\xbf\xbf",     /* surrogate U+DFFF */
        "\xf4\x90\x80\x80", /* U+110000 */
        "\xf5\x80\x80\x80", /* past F4 */
        "\xff",
        "\xfe",
        "\x80",         /* lone continuation */
        "\xe2\x82",     /* truncated */
        "\xe2\x82x",    /* bad continuation */
        "\xf0\x9f\x98", /* truncated 4-byte */
    };
    static const char *const good[] = {
        "\x7f",         "\xc2\x80",     "\xdf\xbf",         "\xe0\xa0\x80",     "\xed\x9f\xbf",
        "\xee\x80\x80", "\xef\xbf\xbf", "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf", "\xc3\xa9t\xc3\xa9",
    };
    char doc[64];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(doc, sizeof doc, "[\"%s\"]", bad[i]);
        parse_fails(doc, "invalid UTF-8");
        snprintf(doc, sizeof doc, "{\"%s\":1}", bad[i]);
        parse_fails(doc, "invalid UTF-8");
    }
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        snprintf(doc, sizeof doc, "[\"%s\"]", good[i]);
        struct json_object *o = parse_ok(doc);
        assert_string_equal(json_object_get_string(json_object_array_get_idx(o, 0)), good[i]);
        json_object_put(o);
    }
    /* Outside strings only ASCII tokens exist. */
    parse_fails("[\xc3\xa9]", "unexpected character");
    parse_fails("\xef\xbb\xbf{}", "unexpected character"); /* a BOM is not JSON */
}

/* Escaped supplemental code points whose low 16 bits fall in D800..DFFF (U+1D800..U+1DFFF,
 * U+2D800.. CJK Extension C/D, ... U+10D800..U+10DFFF) decode to themselves: json-c 0.16's
 * tokener turns them into U+FFFD (json-c PR #893), which is one reason untrusted JSON goes
 * through json_parse_strict, never json_tokener. Found by fuzz_json's json-c oracle. */
static void test_parse_supplemental_like_surrogates(void **state)
{
    static const struct {
        const char *json, *utf8;
    } cases[] = {
        {"\"\\ud836\\ude0a\"", "\xf0\x9d\xa8\x8a"},         /* U+1DA0A */
        {"\"\\u20ac\\ud836\\ude0a\"", "\xe2\x82\xac\xf0\x9d\xa8\x8a"},
        {"\"\\ud876\\udc00\"", "\xf0\xad\xa0\x80"},         /* U+2D800 */
        {"\"\\udbf7\\udfff\"", "\xf4\x8d\xbf\xbf"},         /* U+10DFFF */
    };
    (void)state;

    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct json_object *o = parse_ok(cases[i].json);
        assert_string_equal(json_object_get_string(o), cases[i].utf8);
        json_object_put(o);
    }
}

static void test_parse_escapes(void **state)
{
    (void)state;
    parse_fails("\"\\ud800\"", "unpaired surrogate");
    parse_fails("\"\\udc00\"", "unpaired surrogate");
    parse_fails("\"\\ud800\\u0041\"", "unpaired surrogate");
    parse_fails("\"\\ud800\\ud800\"", "unpaired surrogate");
    parse_fails("\"\\ud800x\"", "unpaired surrogate");
    parse_fails("\"\\ud83d\\ude0\"", "unpaired surrogate");
    parse_fails("\"\\u12\"", "invalid \\u escape");
    parse_fails("\"\\u12g4\"", "invalid \\u escape");
    parse_fails("\"\\x41\"", "invalid escape");
    parse_fails("\"\\'\"", "invalid escape");
    parse_fails("\"\\", "unterminated string");
    parse_fails("\"abc", "unterminated string");
    parse_fails_n("\"\\\0\"", 4, 0, "invalid escape");
    struct json_object *o = parse_ok("\"\\u0041\\u00e9\\u20ac\\ud83d\\ude00\"");
    assert_string_equal(json_object_get_string(o), "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    json_object_put(o);
}

static void test_parse_control_and_nul(void **state)
{
    (void)state;
    char doc[8];
    for (int c = 1; c < 0x20; c++) {
        snprintf(doc, sizeof doc, "\"a%cb\"", c);
        parse_fails(doc, "raw control character");
    }
    parse_fails_n("\"a\0b\"", 5, 0, "NUL byte in string");
    parse_fails_n("[1,\0 2]", 7, 0, "NUL byte");
    parse_fails_n("\0", 1, 0, "NUL byte");
    parse_fails_n("{\"a\":1\0}", 8, 0, "expected ','");
}

static void test_parse_numbers_and_literals(void **state)
{
    (void)state;
    static const char *const bad[] = {"01",        "-01",        "1.",
                                      ".5",        "-",          "+1",
                                      "1e",        "1e+",        "1.e5",
                                      "0x10",      "NaN",        "Infinity",
                                      "-Infinity", "tru",        "nul",
                                      "True",      "nulll",      "'a'",
                                      "[1,]",      "{\"a\":1,}", "{,}",
                                      "[,1]",      "{\"a\"}",    "{\"a\" 1}",
                                      "{1:2}",     "[1 2]",      "{\"a\":1 \"b\":2}",
                                      "[",         "{",          "[1",
                                      "{\"a\":",   "]",          "}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        parse_fails(bad[i], "at byte");
    parse_fails("", "empty document");
    parse_fails(" \n\t", "empty document");
    /* A bare null is valid JSON but gives no object to return. */
    parse_fails("null", "null");
    parse_fails("1e", "invalid number exponent");
    parse_fails("01", "leading zero");
}

static void test_parse_depth(void **state)
{
    (void)state;
    parse_fails_n("[[[[[1]]]]]", 11, 4, "nesting deeper than 4");
    struct json_object *o = json_parse_strict("[[[[1]]]]", 9, 4, NULL, 0);
    assert_non_null(o);
    json_object_put(o);
    parse_fails_n("{\"a\":{\"b\":{}}}", 14, 2, "nesting deeper than 2");
    o = json_parse_strict("{\"a\":{\"b\":{}}}", 14, 3, NULL, 0);
    assert_non_null(o);
    json_object_put(o);
    o = json_parse_strict("7", 1, 1, NULL, 0);
    assert_non_null(o);
    json_object_put(o);

    /* Default 64, and nothing past JSON_PARSE_DEPTH_MAX whatever is asked. */
    size_t n = 200000;
    char *deep = malloc(2 * n);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    o = json_parse_strict(deep + n - 64, 128, 0, NULL, 0); /* 64 '[' then 64 ']' */
    assert_non_null(o);
    json_object_put(o);
    parse_fails_n(deep + n - 65, 130, 0, "nesting deeper than 64");
    parse_fails_n(deep, 2 * n, 1 << 30, "nesting deeper than 1000");
    o = json_parse_strict(deep + n - 1000, 2000, 1 << 30, NULL, 0);
    assert_non_null(o);
    json_object_put(o);
    free(deep);
}

static void test_parse_big_integers_keep_order(void **state)
{
    (void)state;
    struct json_object *o =
        parse_ok("{\"a\":1,\"big\":99999999999999999999,\"b\":2,\"arr\":[3,-99999999999999999999,"
                 "4,{\"c\":5,\"u\":18446744073709551616,\"d\":6}],\"e\":7}");
    int64_t v;
    struct json_object *arr, *inner;
    assert_int_equal(json_get_int64(o, "a", 0, 100, &v), JGET_OK);
    assert_int_equal(v, 1);
    assert_int_equal(json_get_int64(o, "big", INT64_MIN, INT64_MAX, &v), JGET_RANGE);
    assert_int_equal(json_get_int64(o, "b", 0, 100, &v), JGET_OK);
    assert_int_equal(v, 2);
    assert_int_equal(json_get_array(o, "arr", &arr), JGET_OK);
    assert_int_equal(json_val_int64(json_object_array_get_idx(arr, 0), 0, 9, &v), JGET_OK);
    assert_int_equal(v, 3);
    assert_int_equal(json_val_int64(json_object_array_get_idx(arr, 1), INT64_MIN, 9, &v),
                     JGET_RANGE);
    assert_int_equal(json_val_int64(json_object_array_get_idx(arr, 2), 0, 9, &v), JGET_OK);
    assert_int_equal(v, 4);
    inner = json_object_array_get_idx(arr, 3);
    assert_int_equal(json_get_int64(inner, "c", 0, 9, &v), JGET_OK);
    assert_int_equal(v, 5);
    assert_int_equal(json_get_int64(inner, "u", 0, INT64_MAX, &v), JGET_RANGE);
    assert_int_equal(json_get_int64(inner, "d", 0, 9, &v), JGET_OK);
    assert_int_equal(v, 6);
    assert_int_equal(json_get_int64(o, "e", 0, 9, &v), JGET_OK);
    assert_int_equal(v, 7);
    /* Re-serialising keeps the original digits, sign included. */
    const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    assert_non_null(strstr(text, "\"big\":99999999999999999999"));
    assert_non_null(strstr(text, "-99999999999999999999"));
    assert_non_null(strstr(text, "18446744073709551616"));
    json_object_put(o);

    o = parse_ok("-99999999999999999999");
    assert_int_equal(json_val_int64(o, INT64_MIN, INT64_MAX, &v), JGET_RANGE);
    json_object_put(o);
}

/* Pass two builds the tree itself; json-c's tokener is the reference it must agree with
 * on every document both accept (integers beyond int64 aside, see above). */
static void test_parse_matches_json_c(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "{}",
        "[]",
        "[{},[],{\"a\":[]}]",
        "  {\"a\" : 1 , \"b\":[ true ,false, null ],\"c\":{\"d\":\"e\"} }  ",
        "{\"k\\u00e9y\":\"v\\u00e9\",\"\\ud83d\\ude00\":\"\\ud83d\\ude00x\",\"t\\tab\":"
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}",
        "\"nul \\u0000 inside\"",
        "{\"s\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}",
        "[0,-0,1,-1,9223372036854775807,-9223372036854775808,0.5,-0.0,1e3,1E-3,2.5e+10,1e400]",
        "{\"amount\":\"12.34\",\"n\":12.340,\"id\":\"4500\",\"arr\":[[[[1]]]]}",
        "123",
        "-4.5e-2",
        "true",
        "\"\"",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        struct json_object *ours = parse_ok(docs[i]);
        struct json_tokener *tok = json_tokener_new();
        struct json_object *ref = json_tokener_parse_ex(tok, docs[i], (int)strlen(docs[i]));
        if (!ref && json_tokener_get_error(tok) == json_tokener_continue)
            ref = json_tokener_parse_ex(tok, "", 1);
        assert_non_null(ref);
        if (!json_object_equal(ours, ref))
            fail_msg("tree differs from json-c's for %s: %s vs %s", docs[i],
                     json_object_to_json_string(ours), json_object_to_json_string(ref));
        /* Doubles keep their text, as json-c's tokener keeps it. */
        assert_string_equal(json_object_to_json_string_ext(ours, JSON_C_TO_STRING_PLAIN),
                            json_object_to_json_string_ext(ref, JSON_C_TO_STRING_PLAIN));
        json_object_put(ref);
        json_tokener_free(tok);
        json_object_put(ours);
    }
    /* A string with U+0000 keeps its length; an escaped key is stored unescaped. */
    struct json_object *o = parse_ok("{\"a\\u0062\":\"x\\u0000y\"}"), *v;
    assert_true(json_object_object_get_ex(o, "ab", &v));
    assert_int_equal(json_object_get_string_len(v), 3);
    assert_memory_equal(json_object_get_string(v), "x\0y", 3);
    json_object_put(o);
}

static void test_parse_errstr_optional(void **state)
{
    (void)state;
    assert_null(json_parse_strict("{", 1, 0, NULL, 0));
    assert_null(json_parse_strict(NULL, 0, 0, NULL, 0));
    char small[8];
    assert_null(json_parse_strict("{\"a\":1,\"a\":1}", 13, 0, small, sizeof small));
    assert_true(strlen(small) < sizeof small);
}

/* ---- builder --------------------------------------------------------------------- */

static void test_builder_structure(void **state)
{
    (void)state;
    struct jbuf jb;
    jbuf_init(&jb, 0);
    assert_string_equal(jbuf_cstr(&jb), "");
    jbuf_obj_open(&jb);
    jbuf_kv_str(&jb, "s", "v");
    jbuf_kv_int(&jb, "i", -42);
    jbuf_kv_int(&jb, "min", INT64_MIN);
    jbuf_kv_bool(&jb, "t", 1);
    jbuf_kv_bool(&jb, "f", 0);
    jbuf_kv_str(&jb, "n", NULL);
    jbuf_key(&jb, "a");
    jbuf_arr_open(&jb);
    jbuf_int(&jb, 1);
    jbuf_str(&jb, "x");
    jbuf_null(&jb);
    jbuf_arr_open(&jb);
    jbuf_arr_close(&jb);
    jbuf_obj_open(&jb);
    jbuf_obj_close(&jb);
    jbuf_raw(&jb, "{\"r\":[1]}", 9);
    jbuf_strn(&jb, NULL, 3);
    jbuf_arr_close(&jb);
    jbuf_key(&jb, "e");
    jbuf_obj_open(&jb);
    jbuf_obj_close(&jb);
    jbuf_obj_close(&jb);
    assert_int_equal(jb.err, 0);
    assert_string_equal(jbuf_cstr(&jb),
                        "{\"s\":\"v\",\"i\":-42,\"min\":-9223372036854775808,\"t\":true,"
                        "\"f\":false,\"n\":null,\"a\":[1,\"x\",null,[],{},{\"r\":[1]},null],"
                        "\"e\":{}}");
    json_object_put(parse_ok(jbuf_cstr(&jb)));

    jbuf_reset(&jb);
    assert_string_equal(jbuf_cstr(&jb), "");
    jbuf_int(&jb, 5);
    assert_string_equal(jbuf_cstr(&jb), "5");
    jbuf_release(&jb);
    assert_null(jb.buf);
    jbuf_str(&jb, "again");
    assert_string_equal(jbuf_cstr(&jb), "\"again\"");
    jbuf_release(&jb);
}

typedef void (*misuse_fn)(struct jbuf *jb);
static void mis_value_without_key(struct jbuf *jb)
{
    jbuf_obj_open(jb);
    jbuf_int(jb, 1);
}
static void mis_key_in_array(struct jbuf *jb)
{
    jbuf_arr_open(jb);
    jbuf_key(jb, "k");
}
static void mis_key_at_top(struct jbuf *jb)
{
    jbuf_key(jb, "k");
}
static void mis_wrong_close(struct jbuf *jb)
{
    jbuf_obj_open(jb);
    jbuf_arr_close(jb);
}
static void mis_close_at_top(struct jbuf *jb)
{
    jbuf_obj_close(jb);
}
static void mis_two_top_values(struct jbuf *jb)
{
    jbuf_int(jb, 1);
    jbuf_int(jb, 2);
}
static void mis_key_then_close(struct jbuf *jb)
{
    jbuf_obj_open(jb);
    jbuf_key(jb, "k");
    jbuf_obj_close(jb);
}
static void mis_two_keys(struct jbuf *jb)
{
    jbuf_obj_open(jb);
    jbuf_key(jb, "k");
    jbuf_key(jb, "l");
}
static void mis_null_key(struct jbuf *jb)
{
    jbuf_obj_open(jb);
    jbuf_key(jb, NULL);
}

/* A caller that cannot write what it meant to (jbuf_fail) latches like a misuse. */
static void mis_caller_fails(struct jbuf *jb)
{
    jbuf_obj_open(jb);
    jbuf_key(jb, "Amount");
    jbuf_fail(jb);
}

static void test_builder_misuse_latches(void **state)
{
    (void)state;
    static const misuse_fn fns[] = {mis_value_without_key, mis_key_in_array, mis_key_at_top,
                                    mis_wrong_close,       mis_close_at_top, mis_two_top_values,
                                    mis_key_then_close,    mis_two_keys,     mis_null_key,
                                    mis_caller_fails};
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        struct jbuf jb;
        jbuf_init(&jb, 0);
        fns[i](&jb);
        assert_int_equal(jb.err, -1);
        assert_null(jbuf_cstr(&jb));
        /* Latched: nothing later clears or appends. */
        size_t len = jb.len;
        jbuf_str(&jb, "more");
        assert_int_equal(jb.len, len);
        assert_null(jbuf_cstr(&jb));
        jbuf_release(&jb);
    }
}

static void test_builder_depth(void **state)
{
    (void)state;
    struct jbuf jb;
    jbuf_init(&jb, 0);
    for (int i = 0; i < JBUF_MAX_DEPTH; i++)
        jbuf_arr_open(&jb);
    for (int i = 0; i < JBUF_MAX_DEPTH; i++)
        jbuf_arr_close(&jb);
    assert_int_equal(jb.err, 0);
    assert_int_equal(jb.len, 2 * JBUF_MAX_DEPTH);
    jbuf_release(&jb);

    jbuf_init(&jb, 0);
    for (int i = 0; i <= JBUF_MAX_DEPTH; i++) {
        jbuf_obj_open(&jb);
        jbuf_key(&jb, "k");
    }
    assert_int_equal(jb.err, -1);
    jbuf_release(&jb);
}

static void test_builder_escaping(void **state)
{
    (void)state;
    static const char *const want[32] = {
        "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007",
        "\\b",     "\\t",     "\\n",     "\\u000b", "\\f",     "\\r",     "\\u000e", "\\u000f",
        "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017",
        "\\u0018", "\\u0019", "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
    };
    struct jbuf jb;
    char expect[16];
    jbuf_init(&jb, 0);
    for (int c = 0; c < 32; c++) {
        char ch = (char)c;
        jbuf_reset(&jb);
        jbuf_strn(&jb, &ch, 1);
        snprintf(expect, sizeof expect, "\"%s\"", want[c]);
        assert_string_equal(jbuf_cstr(&jb), expect);
        /* Every escape decodes back to the same byte. */
        struct json_object *o = parse_ok(jbuf_cstr(&jb));
        assert_int_equal(json_object_get_string_len(o), 1);
        assert_int_equal(json_object_get_string(o)[0], c);
        json_object_put(o);
    }
    static const struct {
        const char *in;
        size_t n;
        const char *out;
    } cases[] = {
        {"\"", 1, "\"\\\"\""},
        {"\\", 1, "\"\\\\\""},
        {"/", 1, "\"/\""},
        {"\x7f", 1, "\"\x7f\""},
        {"a\"b\\c\nd", 7, "\"a\\\"b\\\\c\\nd\""},
        {"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9, "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""},
        /* Invalid UTF-8: one U+FFFD per byte that starts no valid sequence. */
        {"\xff", 1, "\"\xef\xbf\xbd\""},
        {"a\x80z", 3, "\"a\xef\xbf\xbdz\""},
        {"\xc0\x80", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\""},
        {"\xed\xa0\x80", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""},
        {"\xf4\x90\x80\x80", 4, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""},
        {"\xe2\x82", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\""},
        {"\xe2\x82\"", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\\\"\""},
        {"ok\xc3", 3, "\"ok\xef\xbf\xbd\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        jbuf_reset(&jb);
        jbuf_strn(&jb, cases[i].in, cases[i].n);
        assert_string_equal(jbuf_cstr(&jb), cases[i].out);
        json_object_put(parse_ok(jbuf_cstr(&jb)));
    }
    /* Keys are escaped the same way. */
    jbuf_reset(&jb);
    jbuf_obj_open(&jb);
    jbuf_kv_int(&jb, "k\"\x01\xff", 1);
    jbuf_obj_close(&jb);
    assert_string_equal(jbuf_cstr(&jb), "{\"k\\\"\\u0001\xef\xbf\xbd\":1}");
    /* jbuf_escape writes a bare body, outside the structure. */
    jbuf_reset(&jb);
    jbuf_escape(&jb, "a\tb", 3);
    assert_string_equal(jbuf_cstr(&jb), "a\\tb");
    jbuf_release(&jb);
}

static void test_builder_cap(void **state)
{
    (void)state;
    struct jbuf jb;
    jbuf_init(&jb, 9);
    jbuf_str(&jb, "1234567"); /* 9 bytes with quotes: exactly the cap */
    assert_int_equal(jb.err, 0);
    assert_string_equal(jbuf_cstr(&jb), "\"1234567\"");
    jbuf_release(&jb);

    jbuf_init(&jb, 9);
    jbuf_str(&jb, "12345678");
    assert_int_equal(jb.err, -1);
    assert_null(jbuf_cstr(&jb));
    assert_true(jb.len <= 9);
    jbuf_reset(&jb);
    assert_int_equal(jb.err, 0);
    jbuf_int(&jb, 1);
    assert_string_equal(jbuf_cstr(&jb), "1");
    jbuf_release(&jb);

    /* Escaping expands: 2 input bytes become 12 output bytes. */
    jbuf_init(&jb, 12);
    jbuf_escape(&jb, "\x01\x02", 2);
    assert_int_equal(jb.err, 0);
    jbuf_escape(&jb, "x", 1);
    assert_int_equal(jb.err, -1);
    jbuf_release(&jb);

    /* Default cap: growth is fine well past the initial allocation. */
    jbuf_init(&jb, 0);
    assert_int_equal(jb.max, JBUF_DEFAULT_MAX);
    jbuf_arr_open(&jb);
    for (int i = 0; i < 100000; i++)
        jbuf_int(&jb, i);
    jbuf_arr_close(&jb);
    assert_int_equal(jb.err, 0);
    struct json_object *o = parse_ok(jbuf_cstr(&jb));
    assert_int_equal(json_object_array_length(o), 100000);
    json_object_put(o);
    jbuf_release(&jb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_str),
        cmocka_unit_test(test_get_str_on_non_object),
        cmocka_unit_test(test_get_int64),
        cmocka_unit_test(test_get_int64_lenient),
        cmocka_unit_test(test_get_bool_obj_array),
        cmocka_unit_test(test_val_getters),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_duplicate_keys),
        cmocka_unit_test(test_parse_many_keys),
        cmocka_unit_test(test_parse_key_with_nul),
        cmocka_unit_test(test_parse_trailing),
        cmocka_unit_test(test_parse_utf8),
        cmocka_unit_test(test_parse_escapes),
        cmocka_unit_test(test_parse_supplemental_like_surrogates),
        cmocka_unit_test(test_parse_control_and_nul),
        cmocka_unit_test(test_parse_numbers_and_literals),
        cmocka_unit_test(test_parse_depth),
        cmocka_unit_test(test_parse_big_integers_keep_order),
        cmocka_unit_test(test_parse_matches_json_c),
        cmocka_unit_test(test_parse_errstr_optional),
        cmocka_unit_test(test_builder_structure),
        cmocka_unit_test(test_builder_misuse_latches),
        cmocka_unit_test(test_builder_depth),
        cmocka_unit_test(test_builder_escaping),
        cmocka_unit_test(test_builder_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
