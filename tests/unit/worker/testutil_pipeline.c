/* testutil_pipeline.c - the pipeline tests' shared helpers (contracts in
 * testutil_pipeline.h).
 *
 * Test code: a helper that cannot go on fails the running cmocka test rather than
 * returning an error, except tp_env_build(), which a forked child may call. Topics are
 * read back with a plain librdkafka consumer of the mock cluster, bounded by the
 * monotonic clock.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/unit/worker/testutil_pipeline.h"

#include "common/clock.h"

struct json_object *tp_at(struct json_object *o, const char *path)
{
    char buf[256], *key, *dot;
    struct json_object *cur = o, *child;

    snprintf(buf, sizeof buf, "%s", path);
    for (key = buf; key; key = dot ? dot + 1 : NULL) {
        dot = strchr(key, '.');
        if (dot)
            *dot = '\0';
        if (!json_object_is_type(cur, json_type_object) ||
            !json_object_object_get_ex(cur, key, &child))
            return NULL;
        cur = child;
    }
    return cur;
}

const char *tp_str_at(struct json_object *o, const char *path)
{
    struct json_object *v = tp_at(o, path);

    if (!v || !json_object_is_type(v, json_type_string))
        fail_msg("%s is not a string in %s", path, json_object_to_json_string(o));
    return json_object_get_string(v);
}

int tp_save_json(const char *name, const char *json)
{
    const char *build = getenv("BUILD");
    char dir[512], path[700];
    FILE *f;

    snprintf(dir, sizeof dir, "%s/test-results", build && *build ? build : "build");
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return -1;
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    if (!(f = fopen(path, "w")))
        return -1;
    fputs(json, f);
    fclose(f);
    return 0;
}

struct tp_kmsg *tp_read_topic(const char *bootstrap, const char *topic, size_t *n)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(1);
    struct tp_kmsg *out = NULL;
    int64_t lo = 0, hi = 0, deadline;
    char e[256];
    rd_kafka_t *c;

    *n = 0;
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, e, sizeof e), 0);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", "test-reader", e, sizeof e), 0);
    assert_int_equal(rd_kafka_conf_set(conf, "enable.auto.commit", "false", e, sizeof e), 0);
    assert_int_equal(rd_kafka_conf_set(conf, "fetch.wait.max.ms", "10", e, sizeof e), 0);
    assert_int_equal(
        rd_kafka_conf_set(conf, "topic.metadata.refresh.interval.ms", "100", e, sizeof e), 0);
    c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
    assert_non_null(c);
    assert_int_equal(rd_kafka_query_watermark_offsets(c, topic, 0, &lo, &hi, 5000), 0);
    if (hi > lo) {
        out = calloc((size_t)(hi - lo), sizeof *out);
        assert_non_null(out);
        rd_kafka_topic_partition_list_add(tp, topic, 0)->offset = lo;
        assert_int_equal(rd_kafka_assign(c, tp), 0);
        deadline = clock_mono_ms() + 10000;
        while (*n < (size_t)(hi - lo) && clock_mono_ms() < deadline) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
            rd_kafka_headers_t *h = NULL;
            if (!m)
                continue;
            if (!m->err) {
                out[*n].value = strndup(m->payload ? (const char *)m->payload : "", m->len);
                out[*n].len = m->len;
                if (rd_kafka_message_headers(m, &h) == 0)
                    out[*n].hdrs = rd_kafka_headers_copy(h);
                (*n)++;
            }
            rd_kafka_message_destroy(m);
        }
    }
    rd_kafka_topic_partition_list_destroy(tp);
    rd_kafka_destroy_flags(c, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    return out;
}

void tp_free_msgs(struct tp_kmsg *m, size_t n)
{
    for (size_t i = 0; m && i < n; i++) {
        free(m[i].value);
        if (m[i].hdrs)
            rd_kafka_headers_destroy(m[i].hdrs);
    }
    free(m);
}

struct json_object **tp_read_json(const char *bootstrap, const char *topic, size_t *n)
{
    struct tp_kmsg *m = tp_read_topic(bootstrap, topic, n);
    struct json_object **out = NULL;

    if (*n) {
        out = calloc(*n, sizeof *out);
        assert_non_null(out);
    }
    for (size_t i = 0; i < *n; i++)
        out[i] = json_tokener_parse(m[i].value);
    tp_free_msgs(m, *n);
    return out;
}

void tp_free_json(struct json_object **o, size_t n)
{
    for (size_t i = 0; o && i < n; i++)
        json_object_put(o[i]);
    free(o);
}

const char *tp_header(const rd_kafka_headers_t *hdrs, const char *name, char *buf, size_t bufsz)
{
    const void *v;
    size_t n;

    if (!hdrs || rd_kafka_header_get_last(hdrs, name, &v, &n) != 0)
        return NULL;
    snprintf(buf, bufsz, "%.*s", (int)n, (const char *)v);
    return buf;
}

const char *tp_hdr(const struct tp_kmsg *m, const char *name, char *buf, size_t bufsz)
{
    return tp_header(m->hdrs, name, buf, bufsz);
}

int tp_env_build(struct tp_env *v, struct config *cfg, char *errstr, size_t errsz)
{
    rd_kafka_mock_cluster_t *mc;
    struct pipeline_deps deps;

    memset(v, 0, sizeof *v);
    v->cfg = cfg;
    if (!(v->oauth = oauth_new(v->cfg, errstr, errsz)) ||
        !(v->rl = ratelimit_new(v->cfg, errstr, errsz)) ||
        !(v->q = qbo_api_new(v->cfg, v->oauth, v->rl, NULL, errstr, errsz)) ||
        !(v->hs = hubspot_api_new(v->cfg, v->rl, NULL, errstr, errsz)) ||
        !(v->pr = producer_new(v->cfg, errstr, errsz)))
        return -1;
    mc = rd_kafka_handle_mock_cluster(producer_handle(v->pr));
    if (!mc || rd_kafka_mock_topic_create(mc, TP_RESULTS, 1, 1) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_mock_topic_create(mc, TP_DLQ, 1, 1) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errsz, "mock cluster topics");
        return -1;
    }
    snprintf(v->bootstrap, sizeof v->bootstrap, "%s", rd_kafka_mock_cluster_bootstraps(mc));
    /* as `hsqb-worker run` does: the topics known before the first send, which would
     * otherwise wait for librdkafka's next metadata refresh (~1 s a topic) */
    if (producer_warm(v->pr, (const char *const[]){TP_RESULTS, TP_DLQ}, 2, 5000, errstr, errsz) <
        0)
        return -1;
    deps = (struct pipeline_deps){.hubspot = v->hs, .qbo = v->q, .producer = v->pr};
    if (!(v->p = pipeline_new(v->cfg, &deps, errstr, errsz)) ||
        !(v->t = pipeline_thread_new(v->p, errstr, errsz)))
        return -1;
    v->next_offset = 100;
    return 0;
}

void tp_env_free(struct tp_env *v)
{
    pipeline_thread_free(v->t);
    pipeline_free(v->p);
    producer_free(v->pr);
    hubspot_api_free(v->hs);
    qbo_api_free(v->q);
    ratelimit_free(v->rl);
    oauth_free(v->oauth);
    config_free(v->cfg);
    http_client_free(v->http);
    memset(v, 0, sizeof *v);
}

char *tp_event_json(const char *id, const char *action, int64_t portal, const char *type,
                    int64_t obj, const char *realm, const char *inputs)
{
    char *s = NULL;
    int n = asprintf(&s,
                     "{\"specversion\":\"1.0\",\"id\":\"%s\",\"type\":\"hsqb.action.%s\","
                     "\"source\":\"hubspot://portal/%lld/workflow/1\","
                     "\"time\":\"2026-03-01T10:00:00Z\",\"data\":{\"callbackId\":\"%s\","
                     "\"origin\":{\"portalId\":%lld},\"object\":{\"objectId\":%lld,"
                     "\"objectType\":\"%s\"},\"inputFields\":{\"qbo_realm_id\":\"%s\"%s%s}}}",
                     id, action, (long long)portal, id, (long long)portal, (long long)obj, type,
                     realm, inputs ? "," : "", inputs ? inputs : "");
    assert_true(n > 0);
    return s;
}

enum pipeline_disposition tp_handle(struct tp_env *v, struct pipeline_thread *t, const char *value,
                                    size_t len, rd_kafka_headers_t *hdrs, int64_t offset,
                                    int64_t *delay)
{
    struct inbound_msg m = {
        .topic = "hsqb.actions",
        .partition = 0,
        .offset = offset,
        .timestamp_ms = 1772359200000LL,
        .key = "k",
        .key_len = 1,
        .value = value,
        .value_len = len,
        .headers = hdrs,
        .dispatch_count = 1,
    };
    int64_t d = -1;
    enum pipeline_disposition r = pipeline_handle(v->p, t, &m, &d);

    if (delay)
        *delay = d;
    return r;
}
