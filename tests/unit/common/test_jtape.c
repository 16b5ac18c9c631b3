/* test_jtape.c - the tape parser and its getters (common/jtape.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/jtape.h"

static void tape_ok(struct jtape *t, const char *s)
{
    char err[256] = "";
    if (jtape_parse(t, s, strlen(s), 0, err, sizeof err) < 0)
        fail_msg("expected to parse: %s (error: %s)", s, err);
}

static void tape_fails(const char *s, int depth, const char *want)
{
    char err[256] = "";
    struct jtape t;
    if (jtape_parse(&t, s, strlen(s), depth, err, sizeof err) == 0) {
        jtape_release(&t);
        fail_msg("expected a parse failure for: %s", s);
    }
    if (!strstr(err, want))
        fail_msg("for %s: error \"%s\" lacks \"%s\"", s, err, want);
    /* a failed parse leaves nothing to free */
    assert_null(t.n);
    assert_null(t.arena);
    assert_int_equal(t.count, 0);
}

static void test_getters_follow_json_rules(void **state)
{
    (void)state;
    struct jtape t;
    const char *s;
    size_t n, o;
    int64_t v;
    int b;

    tape_ok(&t, "{\"s\":\"hi\",\"nul\":\"a\\u0000b\",\"i\":42,\"neg\":-7,\"f\":5.0,\"e\":1e2,"
                "\"big\":99999999999999999999,\"is\":\"123\",\"bad\":\"007\",\"t\":true,"
                "\"no\":null,\"o\":{\"k\":\"v\"},\"a\":[1,2]}");
    assert_int_equal(jtape_get_str(&t, JTAPE_ROOT, "s", &s), JGET_OK);
    assert_string_equal(s, "hi");
    assert_int_equal(jtape_get_str(&t, JTAPE_ROOT, "nul", &s), JGET_RANGE);
    assert_int_equal(jtape_get_strn(&t, JTAPE_ROOT, "nul", &s, &n), JGET_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(s, "a\0b", 3);
    assert_int_equal(jtape_get_str(&t, JTAPE_ROOT, "i", &s), JGET_WRONG_TYPE);
    assert_int_equal(jtape_get_str(&t, JTAPE_ROOT, "absent", &s), JGET_MISSING);
    assert_int_equal(jtape_get_str(&t, JTAPE_ROOT, "no", &s), JGET_MISSING);
    assert_int_equal(jtape_get_int64(&t, JTAPE_ROOT, "i", 0, 100, &v), JGET_OK);
    assert_int_equal(v, 42);
    assert_int_equal(jtape_get_int64(&t, JTAPE_ROOT, "i", 0, 10, &v), JGET_RANGE);
    assert_int_equal(jtape_get_int64(&t, JTAPE_ROOT, "neg", INT64_MIN, 0, &v), JGET_OK);
    assert_int_equal(v, -7);
    assert_int_equal(jtape_get_int64(&t, JTAPE_ROOT, "f", 0, 100, &v), JGET_WRONG_TYPE);
    assert_int_equal(jtape_get_int64(&t, JTAPE_ROOT, "e", 0, 1000, &v), JGET_WRONG_TYPE);
    assert_int_equal(jtape_get_int64(&t, JTAPE_ROOT, "big", INT64_MIN, INT64_MAX, &v), JGET_RANGE);
    assert_int_equal(jtape_get_int64(&t, JTAPE_ROOT, "is", 0, 1000, &v), JGET_WRONG_TYPE);
    assert_int_equal(jtape_get_int64_lenient(&t, JTAPE_ROOT, "is", 0, 1000, &v), JGET_OK);
    assert_int_equal(v, 123);
    assert_int_equal(jtape_get_int64_lenient(&t, JTAPE_ROOT, "i", 0, 1000, &v), JGET_OK);
    assert_int_equal(jtape_get_int64_lenient(&t, JTAPE_ROOT, "bad", 0, 1000, &v), JGET_WRONG_TYPE);
    assert_int_equal(jtape_get_int64_lenient(&t, JTAPE_ROOT, "is", 0, 100, &v), JGET_RANGE);
    assert_int_equal(jtape_get_bool(&t, JTAPE_ROOT, "t", &b), JGET_OK);
    assert_int_equal(b, 1);
    assert_int_equal(jtape_get_bool(&t, JTAPE_ROOT, "i", &b), JGET_WRONG_TYPE);
    assert_int_equal(jtape_get_obj(&t, JTAPE_ROOT, "o", &o), JGET_OK);
    assert_int_equal(jtape_get_str(&t, o, "k", &s), JGET_OK);
    assert_string_equal(s, "v");
    assert_int_equal(jtape_get_obj(&t, JTAPE_ROOT, "a", &o), JGET_WRONG_TYPE);
    assert_int_equal(jtape_get_array(&t, JTAPE_ROOT, "a", &o), JGET_OK);
    assert_int_equal(t.n[o].count, 2);
    /* a getter on something that is not an object */
    assert_int_equal(jtape_get_str(&t, o, "k", &s), JGET_WRONG_TYPE);
    assert_int_equal(jtape_get_str(&t, 9999, "k", &s), JGET_WRONG_TYPE);
    assert_int_equal(jtape_member(&t, o, "k"), 0);
    assert_int_equal(jtape_val_int64(&t, o + 2, 0, 9, &v), JGET_OK);
    assert_int_equal(v, 2);
    /* numbers as doubles from their literal; anything else is 0 */
    assert_true(jtape_val_double(&t, jtape_member(&t, JTAPE_ROOT, "f")) == 5.0);
    assert_true(jtape_val_double(&t, jtape_member(&t, JTAPE_ROOT, "e")) == 100.0);
    assert_true(jtape_val_double(&t, jtape_member(&t, JTAPE_ROOT, "big")) > 9.9e19);
    assert_true(jtape_val_double(&t, jtape_member(&t, JTAPE_ROOT, "s")) == 0.0);
    jtape_release(&t);
    jtape_release(&t); /* released twice is fine */
    jtape_release(NULL);
}

/* The iteration idiom walks siblings over nested subtrees. */
static void test_iteration_skips_subtrees(void **state)
{
    (void)state;
    struct jtape t;
    const char *want[] = {"a", "b", "c"}, *s;
    size_t k = 0, i, arr;
    int64_t id;

    tape_ok(&t, "{\"results\":[{\"id\":\"1\",\"p\":{\"name\":\"a\",\"x\":[[],{},[1,[2]]]}},"
                "{\"id\":2,\"p\":{\"name\":\"b\"}},{\"p\":{\"x\":{\"y\":{}},\"name\":\"c\"},"
                "\"id\":\"3\"}],\"after\":true}");
    assert_int_equal(jtape_get_array(&t, JTAPE_ROOT, "results", &arr), JGET_OK);
    for (i = arr + 1; k < t.n[arr].count; k++, i = t.n[i].next) {
        size_t p;
        assert_int_equal(jtape_get_int64_lenient(&t, i, "id", 1, 9, &id), JGET_OK);
        assert_int_equal(id, (int64_t)k + 1);
        assert_int_equal(jtape_get_obj(&t, i, "p", &p), JGET_OK);
        assert_int_equal(jtape_get_str(&t, p, "name", &s), JGET_OK);
        assert_string_equal(s, want[k]);
    }
    assert_int_equal(k, 3);
    assert_int_equal(i, t.n[arr].next);
    assert_int_equal(t.n[JTAPE_ROOT].next, t.count);
    int b = 0;
    assert_int_equal(jtape_get_bool(&t, JTAPE_ROOT, "after", &b), JGET_OK);
    assert_int_equal(b, 1);
    jtape_release(&t);
}

static void test_scalars_and_escapes(void **state)
{
    (void)state;
    struct jtape t;
    const char *s;
    int64_t v;

    tape_ok(&t, "5");
    assert_int_equal(jtape_val_int64(&t, JTAPE_ROOT, 0, 9, &v), JGET_OK);
    assert_int_equal(v, 5);
    jtape_release(&t);
    tape_ok(&t, "\"\"");
    assert_int_equal(jtape_val_str(&t, JTAPE_ROOT, &s), JGET_OK);
    assert_string_equal(s, "");
    jtape_release(&t);
    tape_ok(&t, "null");
    assert_int_equal(t.n[JTAPE_ROOT].type, JT_NULL);
    assert_int_equal(jtape_val_str(&t, JTAPE_ROOT, &s), JGET_MISSING);
    jtape_release(&t);
    tape_ok(&t, "{\"k\\u00e9\\n\":\"\\ud83d\\ude00\\\"\\\\\\/\\t\"}");
    assert_int_equal(jtape_get_str(&t, JTAPE_ROOT, "k\xc3\xa9\n", &s), JGET_OK);
    assert_string_equal(s, "\xf0\x9f\x98\x80\"\\/\t");
    jtape_release(&t);
    /* the arena bound: the shortest tokens, packed */
    tape_ok(&t, "[1,2,\"\",3,{\"\":0},[0],-0]");
    assert_int_equal(t.n[JTAPE_ROOT].count, 7);
    jtape_release(&t);
}

static void test_rejects_like_json_parse_strict(void **state)
{
    (void)state;
    tape_fails("{\"a\":1,\"a\":2}", 0, "duplicate key \"a\"");
    tape_fails("{\"a\":1,\"\\u0061\":2}", 0, "duplicate key \"a\"");
    tape_fails("{\"\xc3\xa9\":1,\"\\u00e9\":2}", 0, "duplicate key \"?\"");
    tape_fails("{\"a\\u0000\":1}", 0, "U+0000");
    tape_fails("[[[1]]]", 2, "nesting deeper than 2");
    tape_fails("{\"a\":1,}", 0, "expected a string key");
    tape_fails("[1 2]", 0, "expected ','");
    tape_fails("\"\xc0\xaf\"", 0, "invalid UTF-8");
    tape_fails("01", 0, "leading zero");
    tape_fails("{} x", 0, "trailing characters");
    tape_fails("", 0, "empty document");
    tape_fails("nul", 0, "invalid literal");
}

/* Objects past the pairwise limit are checked by sorting: a duplicate anywhere is found,
 * and many distinct keys of one length are not mistaken for one. */
static void test_duplicates_in_large_objects(void **state)
{
    (void)state;
    char doc[8192];
    size_t len = 0;
    struct jtape t;
    int64_t v;

    len += (size_t)snprintf(doc + len, sizeof doc - len, "{");
    for (int i = 0; i < 300; i++)
        len += (size_t)snprintf(doc + len, sizeof doc - len, "%s\"k%03d\":%d", i ? "," : "", i, i);
    snprintf(doc + len, sizeof doc - len, "}");
    tape_ok(&t, doc);
    assert_int_equal(t.n[JTAPE_ROOT].count, 300);
    assert_int_equal(jtape_get_int64(&t, JTAPE_ROOT, "k299", 0, 1000, &v), JGET_OK);
    assert_int_equal(v, 299);
    jtape_release(&t);
    /* the same with the first key repeated, escaped, at the end */
    snprintf(doc + len, sizeof doc - len, ",\"\\u006b000\":1}");
    tape_fails(doc, 0, "duplicate key \"k000\"");
}

/* The node array starts at one node per 16 input bytes: denser documents grow it, and
 * every value is still there, in order. Objects on both sides of the duplicate check's
 * stack scratch (64 keys), several in one document, find their duplicates. */
static void test_dense_documents_and_large_objects(void **state)
{
    static const int sizes[] = {9, 63, 64, 65, 200, 64, 9};
    char *doc = malloc(64 * 1024);
    size_t len = 0, i, k;
    struct jtape t;
    int64_t v;
    (void)state;

    assert_non_null(doc);
    len += (size_t)snprintf(doc + len, 64 * 1024 - len, "[");
    for (i = 0; i < 5000; i++)
        len += (size_t)snprintf(doc + len, 64 * 1024 - len, "%s%zu", i ? "," : "", i % 10);
    snprintf(doc + len, 64 * 1024 - len, "]");
    tape_ok(&t, doc);
    assert_int_equal(t.count, 5001);
    for (i = JTAPE_ROOT + 1, k = 0; k < t.n[JTAPE_ROOT].count; k++, i = t.n[i].next) {
        assert_int_equal(jtape_val_int64(&t, i, 0, 9, &v), JGET_OK);
        assert_int_equal(v, (int64_t)(k % 10));
    }
    assert_int_equal(k, 5000);
    jtape_release(&t);

    for (int dup = 0; dup < 2; dup++) {
        len = 0;
        len += (size_t)snprintf(doc + len, 64 * 1024 - len, "[");
        for (size_t o = 0; o < sizeof sizes / sizeof sizes[0]; o++) {
            len += (size_t)snprintf(doc + len, 64 * 1024 - len, "%s{", o ? "," : "");
            for (int j = 0; j < sizes[o]; j++)
                len += (size_t)snprintf(doc + len, 64 * 1024 - len, "%s\"k%d\":%d", j ? "," : "",
                                        dup && o == 4 && j == sizes[o] - 1 ? 7 : j, j);
            len += (size_t)snprintf(doc + len, 64 * 1024 - len, "}");
        }
        snprintf(doc + len, 64 * 1024 - len, "]");
        if (dup) {
            tape_fails(doc, 0, "duplicate key \"k7\"");
            continue;
        }
        tape_ok(&t, doc);
        for (i = JTAPE_ROOT + 1, k = 0; k < t.n[JTAPE_ROOT].count; k++, i = t.n[i].next)
            assert_int_equal(t.n[i].count, sizes[k]);
        jtape_release(&t);
    }
    /* the 65-key object's duplicate too, past the stack scratch */
    len = (size_t)snprintf(doc, 64 * 1024, "{");
    for (int j = 0; j < 65; j++)
        len += (size_t)snprintf(doc + len, 64 * 1024 - len, "%s\"k%d\":0", j ? "," : "",
                                j == 64 ? 0 : j);
    snprintf(doc + len, 64 * 1024 - len, "}");
    tape_fails(doc, 0, "duplicate key \"k0\"");
    free(doc);
}

/* Tapes reuse the buffers of the ones released before them on the thread: whatever the
 * order of sizes (a spare too small, one larger than the next document, one over the
 * values cap), every parse reads right, and tapes released by another thread are fine. */
static void *release_tape(void *arg)
{
    jtape_release(arg);
    return NULL;
}

static void test_spare_buffers(void **state)
{
    static const size_t counts[] = {3, 400, 2, 1000, 5, 5, 3000, 1};
    char *doc = malloc(64 * 1024), err[128];
    struct jtape t, other;
    pthread_t th;
    int64_t v;
    (void)state;

    assert_non_null(doc);
    for (size_t r = 0; r < sizeof counts / sizeof counts[0]; r++) {
        size_t len = (size_t)snprintf(doc, 64 * 1024, "{\"n\":%zu,\"a\":[", counts[r]);
        for (size_t i = 0; i < counts[r]; i++)
            len += (size_t)snprintf(doc + len, 64 * 1024 - len, "%s\"v%zu\"", i ? "," : "", i);
        snprintf(doc + len, 64 * 1024 - len, "]}");
        tape_ok(&t, doc);
        assert_int_equal(t.count, counts[r] + 3);
        assert_int_equal(jtape_get_int64(&t, JTAPE_ROOT, "n", 0, 10000, &v), JGET_OK);
        assert_int_equal(v, (int64_t)counts[r]);
        {
            size_t a, last = 0;
            const char *s;
            assert_int_equal(jtape_get_array(&t, JTAPE_ROOT, "a", &a), JGET_OK);
            assert_int_equal(t.n[a].count, counts[r]);
            for (size_t i = a + 1, k = 0; k < t.n[a].count; k++, i = t.n[i].next)
                last = i;
            assert_int_equal(jtape_val_str(&t, last, &s), JGET_OK);
            snprintf(err, sizeof err, "v%zu", counts[r] - 1);
            assert_string_equal(s, err);
        }
        /* a small values cap right after a large spare: still refused at the cap */
        assert_int_equal(jtape_parse_max(&other, doc, strlen(doc), 0, 2, err, sizeof err),
                         JTAPE_ETOOMANY);
        if (r % 2) {
            assert_int_equal(pthread_create(&th, NULL, release_tape, &t), 0);
            assert_int_equal(pthread_join(th, NULL), 0);
        } else {
            jtape_release(&t);
        }
        assert_null(t.n);
        assert_null(t.arena);
    }
    free(doc);
}

/* ---- the values cap ---------------------------------------------------------------- */

/* Exactly at the cap parses, one value over is JTAPE_ETOOMANY with a clear message, and
 * the node array never grows past the cap. */
static void test_values_cap(void **state)
{
    const char *s = "{\"a\":[0,1,2],\"b\":\"x\"}"; /* 6 values */
    char err[256] = "";
    struct jtape t;
    (void)state;

    assert_int_equal(jtape_parse_max(&t, s, strlen(s), 0, 6, err, sizeof err), 0);
    assert_int_equal(t.count, 6);
    assert_true(t.cap <= 6);
    jtape_release(&t);
    assert_int_equal(jtape_parse_max(&t, s, strlen(s), 0, 5, err, sizeof err), JTAPE_ETOOMANY);
    assert_string_equal(err, "more than 5 JSON values at byte 20");
    assert_null(t.n);
    /* the process-wide cap is what jtape_parse applies */
    jtape_set_max_values(5);
    assert_int_equal(jtape_parse(&t, s, strlen(s), 0, err, sizeof err), JTAPE_ETOOMANY);
    jtape_set_max_values(0);
    assert_int_equal(jtape_max_values(), JTAPE_MAX_VALUES_DEFAULT);
    assert_int_equal(jtape_parse(&t, s, strlen(s), 0, err, sizeof err), 0);
    jtape_release(&t);
    /* other failures stay -1 */
    assert_int_equal(jtape_parse_max(&t, "[0,", 3, 0, 5, err, sizeof err), -1);
}

/* Peak resident memory (KiB) a child adds while parsing text with the values cap max. */
static long parse_peak_kib(const char *text, size_t len, size_t max)
{
    int fd[2], st;
    long kib = -1;
    pid_t pid;

    assert_int_equal(pipe(fd), 0);
    if ((pid = fork()) == 0) {
        struct rusage a, b;
        struct jtape t;
        char err[128];
        long d;
        getrusage(RUSAGE_SELF, &a);
        int rc = jtape_parse_max(&t, text, len, 0, max, err, sizeof err);
        getrusage(RUSAGE_SELF, &b);
        d = rc == JTAPE_ETOOMANY ? b.ru_maxrss - a.ru_maxrss : -2;
        if (write(fd[1], &d, sizeof d) != (ssize_t)sizeof d)
            _exit(1);
        _exit(0);
    }
    assert_true(pid > 0);
    close(fd[1]);
    assert_int_equal(read(fd[0], &kib, sizeof kib), (ssize_t)sizeof kib);
    close(fd[0]);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return kib;
}

/* The answer the cap is for: 8 MiB (the default http.max_response_bytes) of "[0,0,...]",
 * 4 Mi one-byte values. With the default cap it is refused within the cap's memory (12
 * MiB of nodes, plus the arena's touched pages), where an uncapped parse takes ~100 MB. */
static void test_values_cap_bounds_memory(void **state)
{
    size_t len = 8u << 20, i;
    char *text = malloc(len);
    long capped, uncapped;
    (void)state;

    assert_non_null(text);
    text[0] = '[';
    for (i = 1; i + 1 < len; i += 2) {
        text[i] = '0';
        text[i + 1] = ',';
    }
    text[len - 1] = ']';
    text[len - 2] = '0';
    capped = parse_peak_kib(text, len, JTAPE_MAX_VALUES_DEFAULT);
    /* one value short of all of them: it fails at the very end, at the uncapped cost */
    uncapped = parse_peak_kib(text, len, (4u << 20) - 1);
    print_message("8 MiB of [0,0,...]: +%ld KiB with the default cap, +%ld KiB uncapped\n",
                  capped, uncapped);
    free(text);
    assert_true(capped >= 0 && uncapped >= 0);
    assert_true(uncapped >= 64 * 1024); /* the measure sees what the cap prevents */
    assert_true(capped * 4 <= uncapped); /* the cap saves three quarters at least */
#ifndef __SANITIZE_ADDRESS__ /* AddressSanitizer's redzones and quarantine add their own */
    assert_true(capped <= 24 * 1024); /* 12 MiB of nodes + 1 MiB of arena + slack */
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_getters_follow_json_rules),
        cmocka_unit_test(test_iteration_skips_subtrees),
        cmocka_unit_test(test_scalars_and_escapes),
        cmocka_unit_test(test_rejects_like_json_parse_strict),
        cmocka_unit_test(test_duplicates_in_large_objects),
        cmocka_unit_test(test_dense_documents_and_large_objects),
        cmocka_unit_test(test_spare_buffers),
        cmocka_unit_test(test_values_cap),
        cmocka_unit_test(test_values_cap_bounds_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
