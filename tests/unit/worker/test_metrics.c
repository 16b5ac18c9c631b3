/* test_metrics.c - the Prometheus registry and the /metrics, /healthz, /readyz server.
 *
 * Every rendered text goes through check_exposition(), a small, independent checker of
 * the text format 0.0.4 rules a scraper depends on: each sample belongs to a family
 * declared by a preceding TYPE line, label values only use the \\ \" \n escapes, values
 * are numbers, and each histogram series has cumulative buckets ending in +Inf == _count.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "common/clock.h"
#include "common/http.h"
#include "worker/httpd.h"
#include "worker/metrics.h"

#define MAX_FAMILIES 64

/* ---- exposition checker -------------------------------------------------------------- */

struct fam_seen {
    char name[128];
    char type[16];
};

struct checker {
    struct fam_seen fam[MAX_FAMILIES];
    size_t nfam;
    /* current histogram series: labels without le, last cumulative value, +Inf seen */
    char hist_key[1024];
    double hist_last;
    double hist_inf;
    int hist_has_inf;
    int samples;
};

static void fail_line(const char *why, const char *line)
{
    fail_msg("exposition: %s: %s", why, line);
}

static const struct fam_seen *find_family(struct checker *ck, const char *name)
{
    size_t i;

    for (i = 0; i < ck->nfam; i++)
        if (strcmp(ck->fam[i].name, name) == 0)
            return &ck->fam[i];
    return NULL;
}

/* Parses "name{a="x",le="y"} value"; fills name, labels without le (key for histogram
 * series), the le value (or "") and the value. Fails the test on any syntax error. */
static void parse_sample(const char *line, char *name, size_t namesz, char *key, size_t keysz,
                         char *le, size_t lesz, double *value)
{
    const char *p = line;
    size_t n = 0, k = 0;
    char lname[64], lval[512];
    char *end;

    le[0] = '\0';
    while (*p == '_' || *p == ':' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
           (n > 0 && *p >= '0' && *p <= '9')) {
        assert_true(n + 1 < namesz);
        name[n++] = *p++;
    }
    name[n] = '\0';
    if (n == 0)
        fail_line("no metric name", line);
    key[0] = '\0';
    if (*p == '{') {
        p++;
        while (*p != '}') {
            size_t ln = 0, lv = 0;
            while ((*p >= 'a' && *p <= 'z') || *p == '_' || (*p >= 'A' && *p <= 'Z') ||
                   (ln > 0 && *p >= '0' && *p <= '9'))
                lname[ln++] = *p++;
            lname[ln] = '\0';
            if (ln == 0 || *p++ != '=' || *p++ != '"')
                fail_line("bad label", line);
            while (*p != '"') {
                if (*p == '\0' || *p == '\n')
                    fail_line("unterminated label value", line);
                if (*p == '\\') {
                    p++;
                    if (*p != '\\' && *p != '"' && *p != 'n')
                        fail_line("bad escape in label value", line);
                }
                assert_true(lv + 2 < sizeof(lval));
                lval[lv++] = *p++;
            }
            lval[lv] = '\0';
            p++;
            if (strcmp(lname, "le") == 0) {
                if (lv >= lesz)
                    fail_line("le too long", line);
                memcpy(le, lval, lv + 1);
            } else {
                k += (size_t)snprintf(key + k, keysz - k, "%s=%s;", lname, lval);
                assert_true(k < keysz);
            }
            if (*p == ',')
                p++;
            else if (*p != '}')
                fail_line("expected , or }", line);
        }
        p++;
    }
    if (*p++ != ' ')
        fail_line("expected one space before the value", line);
    if (strcmp(p, "+Inf") == 0 || strcmp(p, "-Inf") == 0 || strcmp(p, "NaN") == 0) {
        *value = strtod(p, NULL);
        return;
    }
    *value = strtod(p, &end);
    if (end == p || *end != '\0')
        fail_line("value is not a number", line);
}

static void check_line(struct checker *ck, const char *line)
{
    char name[128], key[1024], le[64], base[128];
    const struct fam_seen *f;
    double v;
    size_t n;

    if (strncmp(line, "# TYPE ", 7) == 0) {
        struct fam_seen *nf;
        assert_true(ck->nfam < MAX_FAMILIES);
        nf = &ck->fam[ck->nfam];
        if (sscanf(line + 7, "%127s %15s", nf->name, nf->type) != 2)
            fail_line("bad TYPE", line);
        if (find_family(ck, nf->name) != nf && find_family(ck, nf->name) != NULL)
            fail_line("TYPE repeated", line);
        if (strcmp(nf->type, "counter") && strcmp(nf->type, "gauge") &&
            strcmp(nf->type, "histogram") && strcmp(nf->type, "summary") &&
            strcmp(nf->type, "untyped"))
            fail_line("unknown TYPE", line);
        ck->nfam++;
        return;
    }
    if (strncmp(line, "# HELP ", 7) == 0 || line[0] == '#')
        return;
    parse_sample(line, name, sizeof(name), key, sizeof(key), le, sizeof(le), &v);
    ck->samples++;
    snprintf(base, sizeof(base), "%s", name);
    n = strlen(base);
    f = find_family(ck, base);
    if (f == NULL) {
        /* histogram children */
        const char *suf[] = {"_bucket", "_sum", "_count"};
        size_t i;
        for (i = 0; i < 3 && f == NULL; i++) {
            size_t sl = strlen(suf[i]);
            if (n > sl && strcmp(base + n - sl, suf[i]) == 0) {
                base[n - sl] = '\0';
                f = find_family(ck, base);
                if (f != NULL && strcmp(f->type, "histogram") != 0)
                    f = NULL;
                if (f == NULL)
                    base[n - sl] = suf[i][0];
            }
        }
    }
    if (f == NULL)
        fail_line("sample without a preceding TYPE", line);
    if (strcmp(f->type, "counter") == 0 && v < 0)
        fail_line("negative counter", line);
    if (strcmp(f->type, "histogram") != 0)
        return;
    n = strlen(name);
    if (n > 7 && strcmp(name + n - 7, "_bucket") == 0) {
        if (le[0] == '\0')
            fail_line("bucket without le", line);
        if (strcmp(key, ck->hist_key) != 0) {
            if (ck->hist_key[0] != '\0' && !ck->hist_has_inf)
                fail_line("previous histogram series had no +Inf bucket", line);
            snprintf(ck->hist_key, sizeof(ck->hist_key), "%s", key);
            ck->hist_last = 0;
            ck->hist_has_inf = 0;
        }
        if (ck->hist_has_inf)
            fail_line("bucket after +Inf", line);
        if (v < ck->hist_last)
            fail_line("buckets not cumulative", line);
        ck->hist_last = v;
        if (strcmp(le, "+Inf") == 0) {
            ck->hist_has_inf = 1;
            ck->hist_inf = v;
        }
    } else if (n > 6 && strcmp(name + n - 6, "_count") == 0) {
        if (strcmp(key, ck->hist_key) != 0 || !ck->hist_has_inf)
            fail_line("_count without its buckets", line);
        if (v != ck->hist_inf)
            fail_line("+Inf bucket != _count", line);
    }
}

/* Checks the whole text; returns the number of samples. */
static int check_exposition(const char *text)
{
    struct checker *ck = calloc(1, sizeof(*ck));
    char *copy = strdup(text), *line, *save = NULL;
    int samples;

    assert_non_null(ck);
    assert_non_null(copy);
    assert_true(text[0] == '\0' || text[strlen(text) - 1] == '\n');
    for (line = strtok_r(copy, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
        check_line(ck, line);
    samples = ck->samples;
    free(copy);
    free(ck);
    return samples;
}

static char *render(struct metrics *m)
{
    char err[256], *out = NULL;
    size_t len = 0;

    assert_int_equal(metrics_render(m, &out, &len, err, sizeof(err)), 0);
    assert_non_null(out);
    assert_int_equal(strlen(out), len);
    check_exposition(out);
    return out;
}

/* Value of the sample line starting with exactly `series` followed by a space. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    const char *p = text;

    while ((p = strstr(p, series)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p += n;
    }
    return NAN;
}

static struct metrics *new_metrics(size_t max)
{
    char err[256];
    struct metrics *m = metrics_new("1.2.3-test", max, err, sizeof(err));

    assert_non_null(m);
    return m;
}

/* ---- registry tests ------------------------------------------------------------------ */

static void test_render_is_valid_exposition(void **state)
{
    struct metrics *m = new_metrics(0);
    char *t;

    (void)state;
    metrics_event(m, "create_invoice", METRICS_OUTCOME_SUCCEEDED, 40);
    metrics_event(m, "create_invoice", METRICS_OUTCOME_SUCCEEDED, 1200);
    metrics_event(m, "create_invoice", METRICS_OUTCOME_DUPLICATE, 3);
    metrics_event(m, "create_estimate", METRICS_OUTCOME_RETRIED, -1);
    metrics_api_call(m, METRICS_API_QBO, "POST /v3/company/{realm}/invoice", 200, 120);
    metrics_api_call(m, METRICS_API_QBO, "POST /v3/company/{realm}/invoice", 429, 15);
    metrics_api_call(m, METRICS_API_HUBSPOT, "GET /crm/v3/objects/{type}/{id}", 0, 3000);
    metrics_retry(m, METRICS_API_QBO);
    metrics_dlq(m, "PRODUCT_NOT_FOUND");
    metrics_result(m, "succeeded");
    metrics_oauth_refresh(m, "ok");
    metrics_inflight_add(m, 3);
    metrics_inflight_add(m, -1);
    metrics_set_partitions_paused(m, 2);
    metrics_set_lag(m, "hsqb.actions", 3, 17);
    /* label values a scraper must receive escaped */
    metrics_dlq(m, "we\\ird \"code\"\nnext");
    t = render(m);

    assert_int_equal(sample(t, "hsqb_build_info{version=\"1.2.3-test\"}"), 1);
    assert_int_equal(
        sample(t, "hsqb_events_total{action=\"create_invoice\",outcome=\"succeeded\"}"), 2);
    assert_int_equal(sample(t, "hsqb_events_total{action=\"create_estimate\",outcome=\"retried\"}"),
                     1);
    /* 40 ms and 3 ms are <= 0.05 s; 1.2 s falls in le=2.5; the retried one is not timed */
    assert_int_equal(
        sample(t, "hsqb_event_duration_seconds_bucket{action=\"create_invoice\",le=\"0.05\"}"), 2);
    assert_int_equal(
        sample(t, "hsqb_event_duration_seconds_bucket{action=\"create_invoice\",le=\"1\"}"), 2);
    assert_int_equal(
        sample(t, "hsqb_event_duration_seconds_bucket{action=\"create_invoice\",le=\"2.5\"}"), 3);
    assert_int_equal(sample(t, "hsqb_event_duration_seconds_count{action=\"create_invoice\"}"), 3);
    assert_true(fabs(sample(t, "hsqb_event_duration_seconds_sum{action=\"create_invoice\"}") -
                     1.243) < 1e-9);
    assert_true(isnan(sample(t, "hsqb_event_duration_seconds_count{action=\"create_estimate\"}")));
    assert_int_equal(sample(t, "hsqb_api_calls_total{api=\"qbo\",endpoint=\"POST "
                               "/v3/company/{realm}/invoice\",status=\"429\"}"),
                     1);
    assert_int_equal(sample(t, "hsqb_api_calls_total{api=\"hubspot\",endpoint=\"GET "
                               "/crm/v3/objects/{type}/{id}\",status=\"error\"}"),
                     1);
    assert_int_equal(sample(t, "hsqb_429_total{api=\"qbo\"}"), 1);
    assert_true(isnan(sample(t, "hsqb_429_total{api=\"hubspot\"}")));
    assert_int_equal(sample(t, "hsqb_api_call_duration_seconds_count{api=\"qbo\"}"), 2);
    assert_int_equal(sample(t, "hsqb_retries_total{api=\"qbo\"}"), 1);
    assert_int_equal(sample(t, "hsqb_dlq_total{code=\"PRODUCT_NOT_FOUND\"}"), 1);
    assert_int_equal(sample(t, "hsqb_dlq_total{code=\"we\\\\ird \\\"code\\\"\\nnext\"}"), 1);
    assert_int_equal(sample(t, "hsqb_results_total{status=\"succeeded\"}"), 1);
    assert_int_equal(sample(t, "hsqb_oauth_refresh_total{result=\"ok\"}"), 1);
    assert_int_equal(sample(t, "hsqb_in_flight"), 2);
    assert_int_equal(sample(t, "hsqb_partitions_paused"), 2);
    assert_int_equal(sample(t, "hsqb_consumer_lag{topic=\"hsqb.actions\",partition=\"3\"}"), 17);
    assert_non_null(strstr(t, "# HELP hsqb_events_total "));
    assert_non_null(strstr(t, "# TYPE hsqb_event_duration_seconds histogram\n"));
    free(t);
    metrics_free(m);
}

static void test_seconds_are_exact(void **state)
{
    struct metrics *m = new_metrics(0);
    char *t;

    (void)state;
    metrics_ratelimit_wait(m, METRICS_API_QBO, 1500);
    metrics_ratelimit_wait(m, METRICS_API_QBO, 1);
    metrics_ratelimit_wait(m, METRICS_API_QBO, 0);
    metrics_ratelimit_wait(m, METRICS_API_HUBSPOT, 250);
    t = render(m);
    assert_non_null(strstr(t, "\nhsqb_ratelimit_wait_seconds_total{api=\"qbo\"} 1.501\n"));
    assert_non_null(strstr(t, "\nhsqb_ratelimit_wait_seconds_total{api=\"hubspot\"} 0.250\n"));
    assert_int_equal(sample(t, "hsqb_ratelimit_waits_total{api=\"qbo\"}"), 3);
    free(t);
    metrics_free(m);
}

static void test_empty_registry_and_process_metrics(void **state)
{
    struct metrics *m = new_metrics(0);
    char *t;
    double start;

    (void)state;
    t = render(m);
    assert_true(sample(t, "process_resident_memory_bytes") > 1024 * 1024);
    assert_true(sample(t, "process_cpu_seconds_total") >= 0);
    start = sample(t, "process_start_time_seconds");
    assert_true(start > (double)time(NULL) - 3600 && start <= (double)time(NULL) + 1);
    assert_int_equal(sample(t, "hsqb_in_flight"), 0);
    assert_int_equal(sample(t, "hsqb_mapping_cache_lookups_total{result=\"hit\"}"), 0);
    free(t);
    metrics_set_mapping_cache(m, 41, 7);
    t = render(m);
    assert_int_equal(sample(t, "hsqb_mapping_cache_lookups_total{result=\"hit\"}"), 41);
    assert_int_equal(sample(t, "hsqb_mapping_cache_lookups_total{result=\"miss\"}"), 7);
    free(t);
    metrics_free(m);
}

static void test_null_registry_is_a_no_op(void **state)
{
    struct metrics_hooks h = metrics_hooks(NULL);
    char err[64], *out = NULL;

    (void)state;
    metrics_event(NULL, "a", "b", 1);
    metrics_api_call(NULL, "a", "b", 200, 1);
    metrics_inflight_add(NULL, 1);
    metrics_heartbeat(NULL);
    metrics_set_mapping_cache(NULL, 1, 1);
    h.on_api_call(h.opaque, "qbo", "x", 200, 1);
    assert_int_equal(metrics_kafka_stats(NULL, "{}", 2), 0);
    assert_int_equal(metrics_last_heartbeat_ms(NULL), -1);
    assert_int_equal(metrics_render(NULL, &out, NULL, err, sizeof(err)), -1);
    assert_null(out);
    metrics_free(NULL);
}

static void test_hooks_feed_the_registry(void **state)
{
    struct metrics *m = new_metrics(0);
    struct metrics_hooks h = metrics_hooks(m);
    char *t;

    (void)state;
    assert_ptr_equal(h.opaque, m);
    h.on_api_call(h.opaque, "hubspot", "POST /crm/v3/objects/line_items/batch/read", 200, 80);
    h.on_ratelimit_wait(h.opaque, "hubspot", 2000);
    h.on_retry(h.opaque, "hubspot");
    metrics_on_api_call(m, "hubspot", "POST /crm/v3/objects/line_items/batch/read", 200, 20);
    /* consumer and oauth hook shapes */
    assert_int_equal(metrics_partitions_assigned(m), -1);
    metrics_on_assigned(m, 4);
    metrics_on_paused(m, 1);
    metrics_on_in_flight(m, 7);
    metrics_on_oauth_refresh(m, "invalid_grant");
    assert_int_equal(metrics_partitions_assigned(m), 4);
    t = render(m);
    assert_int_equal(sample(t, "hsqb_partitions_assigned"), 4);
    assert_int_equal(sample(t, "hsqb_partitions_paused"), 1);
    assert_int_equal(sample(t, "hsqb_in_flight"), 7);
    assert_int_equal(sample(t, "hsqb_oauth_refresh_total{result=\"invalid_grant\"}"), 1);
    assert_int_equal(sample(t, "hsqb_api_calls_total{api=\"hubspot\",endpoint=\"POST "
                               "/crm/v3/objects/line_items/batch/read\",status=\"200\"}"),
                     2);
    assert_int_equal(sample(t, "hsqb_ratelimit_waits_total{api=\"hubspot\"}"), 1);
    assert_int_equal(sample(t, "hsqb_retries_total{api=\"hubspot\"}"), 1);
    free(t);
    metrics_free(m);
}

static void test_cardinality_cap_folds_into_other(void **state)
{
    struct metrics *m = new_metrics(4);
    char ep[128], *t;
    int i;

    (void)state;
    for (i = 0; i < 10; i++) {
        snprintf(ep, sizeof(ep), "GET /raw/path/%d", i);
        metrics_api_call(m, "qbo", ep, 200, 1);
        metrics_api_call(m, "qbo", ep, 200, 1);
    }
    t = render(m);
    for (i = 0; i < 4; i++) {
        snprintf(ep, sizeof(ep),
                 "hsqb_api_calls_total{api=\"qbo\",endpoint=\"GET /raw/path/%d\",status=\"200\"}",
                 i);
        assert_int_equal(sample(t, ep), 2);
    }
    assert_true(isnan(sample(
        t, "hsqb_api_calls_total{api=\"qbo\",endpoint=\"GET /raw/path/4\",status=\"200\"}")));
    assert_int_equal(
        sample(t, "hsqb_api_calls_total{api=\"other\",endpoint=\"other\",status=\"other\"}"), 12);
    assert_int_equal(
        sample(t, "hsqb_metrics_series_overflow_total{metric=\"hsqb_api_calls_total\"}"), 12);
    assert_int_equal(sample(t, "hsqb_metrics_series_overflow_total{metric=\"hsqb_events_total\"}"),
                     0);
    /* an existing label set keeps counting normally after the cap */
    free(t);
    metrics_api_call(m, "qbo", "GET /raw/path/0", 200, 1);
    t = render(m);
    assert_int_equal(
        sample(t, "hsqb_api_calls_total{api=\"qbo\",endpoint=\"GET /raw/path/0\",status=\"200\"}"),
        3);
    free(t);
    metrics_free(m);
}

static void test_label_values_bounded_and_utf8(void **state)
{
    struct metrics *m = new_metrics(0);
    char longv[400], want[200], *t;

    (void)state;
    memset(longv, 'x', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    memcpy(longv + METRICS_MAX_LABEL_LEN - 1, "\xc3\xa9", 2); /* é across the cut */
    metrics_dlq(m, longv);
    metrics_dlq(m, "bad\xff\xc0utf8 caf\xc3\xa9");
    t = render(m);
    memset(want, 'x', METRICS_MAX_LABEL_LEN - 1);
    snprintf(want + METRICS_MAX_LABEL_LEN - 1, sizeof(want) - METRICS_MAX_LABEL_LEN + 1, "\"} 1\n");
    assert_non_null(strstr(t, want));
    assert_int_equal(sample(t, "hsqb_dlq_total{code=\"bad??utf8 caf\xc3\xa9\"}"), 1);
    free(t);
    metrics_free(m);
}

struct hammer {
    struct metrics *m;
    int id;
};

#define THREADS    8
#define ITERATIONS 100000

static void *hammer_run(void *opaque)
{
    struct hammer *hm = opaque;
    static const char *const eps[] = {"GET /a/{id}", "GET /b/{id}", "POST /c"};
    char own[32];
    int i;

    snprintf(own, sizeof(own), "thread-%d", hm->id);
    for (i = 0; i < ITERATIONS; i++) {
        metrics_event(hm->m, "create_invoice", METRICS_OUTCOME_SUCCEEDED, i % 100);
        metrics_api_call(hm->m, "qbo", eps[i % 3], 200, 5);
        metrics_retry(hm->m, own);
        metrics_inflight_add(hm->m, 1);
        metrics_inflight_add(hm->m, -1);
    }
    return NULL;
}

static void test_concurrent_updates_are_exact(void **state)
{
    struct metrics *m = new_metrics(0);
    pthread_t th[THREADS];
    struct hammer hm[THREADS];
    char series[128], *t;
    int i;
    double per_ep = 0;

    (void)state;
    for (i = 0; i < THREADS; i++) {
        hm[i].m = m;
        hm[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, hammer_run, &hm[i]), 0);
    }
    for (i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    t = render(m);
    assert_int_equal(
        sample(t, "hsqb_events_total{action=\"create_invoice\",outcome=\"succeeded\"}"),
        THREADS * ITERATIONS);
    assert_int_equal(sample(t, "hsqb_event_duration_seconds_count{action=\"create_invoice\"}"),
                     THREADS * ITERATIONS);
    /* 0..49 ms land in le=0.05 (50 ms inclusive too): 51 of every 100 */
    assert_int_equal(
        sample(t, "hsqb_event_duration_seconds_bucket{action=\"create_invoice\",le=\"0.05\"}"),
        THREADS * ITERATIONS / 100 * 51);
    per_ep +=
        sample(t, "hsqb_api_calls_total{api=\"qbo\",endpoint=\"GET /a/{id}\",status=\"200\"}");
    per_ep +=
        sample(t, "hsqb_api_calls_total{api=\"qbo\",endpoint=\"GET /b/{id}\",status=\"200\"}");
    per_ep += sample(t, "hsqb_api_calls_total{api=\"qbo\",endpoint=\"POST /c\",status=\"200\"}");
    assert_int_equal(per_ep, THREADS * ITERATIONS);
    assert_true(fabs(sample(t, "hsqb_api_call_duration_seconds_sum{api=\"qbo\"}") -
                     THREADS * ITERATIONS * 0.005) < 1e-6);
    for (i = 0; i < THREADS; i++) {
        snprintf(series, sizeof(series), "hsqb_retries_total{api=\"thread-%d\"}", i);
        assert_int_equal(sample(t, series), ITERATIONS);
    }
    assert_int_equal(sample(t, "hsqb_in_flight"), 0);
    free(t);
    metrics_free(m);
}

static const char stats_doc[] =
    "{\"name\":\"rdkafka#consumer-1\",\"type\":\"consumer\",\"ts\":1,\"topics\":{"
    "\"hsqb.actions\":{\"topic\":\"hsqb.actions\",\"partitions\":{"
    "\"0\":{\"partition\":0,\"consumer_lag\":12},"
    "\"1\":{\"partition\":1,\"consumer_lag\":0},"
    "\"2\":{\"partition\":2,\"consumer_lag\":-1},"
    "\"-1\":{\"partition\":-1,\"consumer_lag\":-1}}},"
    "\"hsqb.actions.retry\":{\"partitions\":{\"0\":{\"consumer_lag\":5}}}}}";

static const char stats_doc2[] =
    "{\"type\":\"consumer\",\"topics\":{\"hsqb.actions\":{\"partitions\":{"
    "\"0\":{\"consumer_lag\":3}}}}}";

static void test_consumer_lag_from_kafka_statistics(void **state)
{
    struct metrics *m = new_metrics(0);
    const char *producer = "{\"type\":\"producer\",\"topics\":{}}";
    char *t;

    (void)state;
    assert_int_equal(metrics_kafka_stats(m, stats_doc, strlen(stats_doc)), 0);
    t = render(m);
    assert_int_equal(sample(t, "hsqb_consumer_lag{topic=\"hsqb.actions\",partition=\"0\"}"), 12);
    assert_int_equal(sample(t, "hsqb_consumer_lag{topic=\"hsqb.actions\",partition=\"1\"}"), 0);
    assert_true(isnan(sample(t, "hsqb_consumer_lag{topic=\"hsqb.actions\",partition=\"2\"}")));
    assert_true(isnan(sample(t, "hsqb_consumer_lag{topic=\"hsqb.actions\",partition=\"-1\"}")));
    assert_int_equal(sample(t, "hsqb_consumer_lag{topic=\"hsqb.actions.retry\",partition=\"0\"}"),
                     5);
    free(t);

    /* partition 1 and the retry topic were revoked: their series disappear */
    assert_int_equal(metrics_kafka_stats(m, stats_doc2, strlen(stats_doc2)), 0);
    /* a producer's statistics and garbage change nothing */
    assert_int_equal(metrics_kafka_stats(m, producer, strlen(producer)), 0);
    assert_int_equal(metrics_kafka_stats(m, "{\"type\":", 8), -1);
    t = render(m);
    assert_int_equal(sample(t, "hsqb_consumer_lag{topic=\"hsqb.actions\",partition=\"0\"}"), 3);
    assert_true(isnan(sample(t, "hsqb_consumer_lag{topic=\"hsqb.actions\",partition=\"1\"}")));
    assert_true(
        isnan(sample(t, "hsqb_consumer_lag{topic=\"hsqb.actions.retry\",partition=\"0\"}")));
    free(t);

    /* the consumer hook's -1 (unknown) hides a series too, a later value shows it */
    metrics_on_lag(m, "hsqb.actions", 0, -1);
    t = render(m);
    assert_true(isnan(sample(t, "hsqb_consumer_lag{topic=\"hsqb.actions\",partition=\"0\"}")));
    free(t);
    metrics_on_lag(m, "hsqb.actions", 0, 9);
    t = render(m);
    assert_int_equal(sample(t, "hsqb_consumer_lag{topic=\"hsqb.actions\",partition=\"0\"}"), 9);
    free(t);

    /* reassigned: it comes back */
    assert_int_equal(metrics_kafka_stats(m, stats_doc, strlen(stats_doc)), 0);
    t = render(m);
    assert_int_equal(sample(t, "hsqb_consumer_lag{topic=\"hsqb.actions\",partition=\"1\"}"), 0);
    free(t);
    metrics_free(m);
}

/* ---- HTTP server ----------------------------------------------------------------------- */

struct readiness {
    int ready;
    int calls;
};

static int ready_cb(void *opaque, char *why, size_t whysz)
{
    struct readiness *r = opaque;

    r->calls++;
    if (r->ready)
        return 1;
    snprintf(why, whysz, "no partitions assigned yet; redis \"127.0.0.1:1\" unreachable");
    return 0;
}

struct fetched {
    long status;
    char body[65536];
    char ctype[128];
    char allow[64];
};

static void fetch(struct http_client *c, int port, enum http_method method, const char *path,
                  struct fetched *out)
{
    struct http_response r;
    struct http_request rq = {0};
    char url[128], err[256];
    const char *h;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    rq.method = method;
    rq.url = url;
    if (method == HTTP_POST) {
        rq.body = "x=1";
        rq.body_len = 3;
    }
    http_response_init(&r);
    assert_int_equal(http_client_do(c, &rq, &r, err, sizeof(err)), HTTP_OK);
    out->status = r.status;
    snprintf(out->body, sizeof(out->body), "%s", r.body);
    h = http_response_header(&r, "Content-Type");
    snprintf(out->ctype, sizeof(out->ctype), "%s", h != NULL ? h : "");
    h = http_response_header(&r, "Allow");
    snprintf(out->allow, sizeof(out->allow), "%s", h != NULL ? h : "");
    http_response_release(&r);
}

static void test_httpd_endpoints(void **state)
{
    struct metrics *m = new_metrics(0);
    struct readiness rd = {0};
    struct http_client *c;
    struct httpd *h;
    struct fetched *f = calloc(1, sizeof(*f));
    char err[256];

    (void)state;
    assert_non_null(f);
    h = httpd_start("127.0.0.1:0", m, ready_cb, &rd, err, sizeof(err));
    assert_non_null(h);
    assert_true(httpd_port(h) > 0);
    c = http_client_new(NULL, err, sizeof(err));
    assert_non_null(c);

    metrics_event(m, "create_invoice", METRICS_OUTCOME_FAILED, 10);
    fetch(c, httpd_port(h), HTTP_GET, "/metrics", f);
    assert_int_equal(f->status, 200);
    assert_string_equal(f->ctype, "text/plain; version=0.0.4; charset=utf-8");
    check_exposition(f->body);
    assert_int_equal(sample(f->body, "hsqb_events_total{action=\"create_invoice\",outcome="
                                     "\"failed\"}"),
                     1);

    fetch(c, httpd_port(h), HTTP_GET, "/healthz", f);
    assert_int_equal(f->status, 200);
    assert_string_equal(f->ctype, "application/json");
    assert_string_equal(f->body, "{\"status\":\"ok\"}");

    /* no heartbeat within the window: 503 with the reason */
    httpd_set_liveness_window(h, 100);
    usleep(250 * 1000);
    fetch(c, httpd_port(h), HTTP_GET, "/healthz", f);
    assert_int_equal(f->status, 503);
    assert_non_null(strstr(f->body, "\"status\":\"unhealthy\""));
    assert_non_null(strstr(f->body, "no progress"));
    httpd_heartbeat(NULL);
    metrics_on_heartbeat(m); /* the consumer hook */
    httpd_set_liveness_window(h, 60000);
    fetch(c, httpd_port(h), HTTP_GET, "/healthz", f);
    assert_int_equal(f->status, 200);

    fetch(c, httpd_port(h), HTTP_GET, "/readyz", f);
    assert_int_equal(f->status, 503);
    assert_string_equal(f->body, "{\"status\":\"not ready\",\"reason\":\"no partitions assigned "
                                 "yet; redis \\\"127.0.0.1:1\\\" unreachable\"}");
    rd.ready = 1;
    fetch(c, httpd_port(h), HTTP_GET, "/readyz", f);
    assert_int_equal(f->status, 200);
    assert_string_equal(f->body, "{\"status\":\"ready\"}");
    assert_int_equal(rd.calls, 2);

    fetch(c, httpd_port(h), HTTP_GET, "/nope", f);
    assert_int_equal(f->status, 404);
    fetch(c, httpd_port(h), HTTP_GET, "/metrics/extra", f);
    assert_int_equal(f->status, 404);
    fetch(c, httpd_port(h), HTTP_POST, "/metrics", f);
    assert_int_equal(f->status, 405);
    assert_string_equal(f->allow, "GET, HEAD");
    fetch(c, httpd_port(h), HTTP_DELETE, "/readyz", f);
    assert_int_equal(f->status, 405);
    assert_int_equal(rd.calls, 2);

    http_client_free(c);
    httpd_stop(h);
    metrics_free(m);
    free(f);
}

static void test_httpd_without_metrics_or_readiness(void **state)
{
    struct http_client *c;
    struct httpd *h;
    struct fetched *f = calloc(1, sizeof(*f));
    char err[256];

    (void)state;
    h = httpd_start("localhost:0", NULL, NULL, NULL, err, sizeof(err));
    assert_non_null(h);
    c = http_client_new(NULL, err, sizeof(err));
    assert_non_null(c);
    fetch(c, httpd_port(h), HTTP_GET, "/readyz", f);
    assert_int_equal(f->status, 200);
    fetch(c, httpd_port(h), HTTP_GET, "/healthz", f);
    assert_int_equal(f->status, 200);
    fetch(c, httpd_port(h), HTTP_GET, "/metrics", f);
    assert_int_equal(f->status, 200);
    assert_string_equal(f->body, "");
    http_client_free(c);
    httpd_stop(h);
    free(f);
}

/* ---- slow clients (issue 19 item 4) ------------------------------------------------------ */

/* A TCP connection from the loopback address src to port: the fd (non-blocking after the
 * connect), or -1 when it could not be made. */
static int dial_from(const char *src, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET}, to = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    inet_pton(AF_INET, src, &a.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    to.sin_port = htons((uint16_t)port);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        connect(fd, (struct sockaddr *)&to, sizeof to) < 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* GET /healthz from src within one second (a kubelet probe's default timeoutSeconds): the
 * status, or -1 when no answer came in time. */
static int probe(const char *src, int port)
{
    static const char rq[] = "GET /healthz HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n";
    struct timeval tv = {1, 0};
    char buf[64] = "";
    int fd = dial_from(src, port), status = -1;
    ssize_t n;

    if (fd < 0)
        return -1;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (send(fd, rq, sizeof rq - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof rq - 1) &&
        (n = recv(fd, buf, sizeof buf - 1, 0)) > 12 && strncmp(buf, "HTTP/1.1 ", 9) == 0)
        status = atoi(buf + 9);
    close(fd);
    return status;
}

/* 1 when the server ended the connection fd (EOF or reset), 0 while it is open. */
static int ended(int fd)
{
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);

    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/* 200 clients that open a request and never finish it, from one address and from a
 * hundred: /healthz still answers in time, no address holds more than its share, and a
 * client that keeps sending a byte now and then (which resets the idle timeout forever)
 * is cut off at the deadline. */
static void test_httpd_slow_clients_cannot_starve_healthz(void **state)
{
    struct httpd_limits lim = {256, 16, 1500};
    static const char start[] = "GET /healthz HTTP/1.1\r\nHost: slow\r\n";
    int fds[200], port, open_one = 0, left;
    struct httpd *h;
    char err[256], src[32];
    int64_t t0;
    (void)state;

    assert_non_null(h = httpd_start_limited("127.0.0.1:0", &lim, NULL, NULL, NULL, err, sizeof err));
    port = httpd_port(h);
    for (int i = 0; i < 200; i++) {
        if (i < 100)
            snprintf(src, sizeof src, "127.0.0.2");
        else
            snprintf(src, sizeof src, "127.0.2.%d", i - 99);
        assert_true((fds[i] = dial_from(src, port)) >= 0);
        send(fds[i], start, sizeof start - 1, MSG_NOSIGNAL);
    }
    assert_int_equal(probe("127.0.0.1", port), 200);
    usleep(200 * 1000);
    for (int i = 0; i < 100; i++)
        open_one += !ended(fds[i]);
    assert_in_range(open_one, 1, 16); /* one address: its share, the rest turned away */
    for (int i = 100; i < 200; i++)
        assert_false(ended(fds[i])); /* a hundred addresses: each within its share */
    assert_int_equal(probe("127.0.0.1", port), 200);

    /* trickling: a header line every 250 ms, well inside the 10 s idle timeout */
    t0 = clock_mono_ms();
    do {
        left = 0;
        for (int i = 0; i < 200; i++) {
            if (fds[i] < 0)
                continue;
            if (ended(fds[i])) {
                close(fds[i]);
                fds[i] = -1;
                continue;
            }
            send(fds[i], "X-Slow: 1\r\n", 11, MSG_NOSIGNAL);
            left++;
        }
        if (left)
            usleep(250 * 1000);
    } while (left && clock_mono_ms() - t0 < lim.deadline_ms + 3000);
    assert_int_equal(left, 0); /* every one cut at the deadline, long before the idle timeout */
    assert_int_equal(probe("127.0.0.1", port), 200);
    httpd_stop(h);
}

static void test_httpd_start_errors(void **state)
{
    struct httpd *h, *h2;
    char listen[64], err[256];
    static const char *const bad[] = {"",
                                      "9108",
                                      "127.0.0.1:",
                                      "127.0.0.1:http",
                                      "127.0.0.1:70000",
                                      "[::1:9108",
                                      "no.such.host.invalid:0"};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_null(httpd_start(bad[i], NULL, NULL, NULL, err, sizeof(err)));
        assert_non_null(strstr(err, "metrics.listen"));
    }
    /* the port is taken: the error says why */
    h = httpd_start("127.0.0.1:0", NULL, NULL, NULL, err, sizeof(err));
    assert_non_null(h);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", httpd_port(h));
    h2 = httpd_start(listen, NULL, NULL, NULL, err, sizeof(err));
    assert_null(h2);
    assert_non_null(strstr(err, listen));
    assert_non_null(strstr(err, "in use"));
    httpd_stop(h);
    httpd_stop(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_is_valid_exposition),
        cmocka_unit_test(test_seconds_are_exact),
        cmocka_unit_test(test_empty_registry_and_process_metrics),
        cmocka_unit_test(test_null_registry_is_a_no_op),
        cmocka_unit_test(test_hooks_feed_the_registry),
        cmocka_unit_test(test_cardinality_cap_folds_into_other),
        cmocka_unit_test(test_label_values_bounded_and_utf8),
        cmocka_unit_test(test_concurrent_updates_are_exact),
        cmocka_unit_test(test_consumer_lag_from_kafka_statistics),
        cmocka_unit_test(test_httpd_endpoints),
        cmocka_unit_test(test_httpd_without_metrics_or_readiness),
        cmocka_unit_test(test_httpd_start_errors),
        cmocka_unit_test(test_httpd_slow_clients_cannot_starve_healthz),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
