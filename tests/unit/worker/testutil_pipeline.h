/* testutil_pipeline.h - helpers shared by the pipeline component tests (test_pipeline,
 * test_payment_pipeline) and the result test (test_result).
 *
 * Owns: reading a result document by dotted path, saving a result for the schema test,
 * reading a topic of librdkafka's mock cluster back, building an action event, handing
 * one message to pipeline_handle(), and building (and freeing) the objects `run` wires
 * together. Defined in testutil_pipeline.c, which the Makefile links into the test
 * programs that include this header.
 *
 * The readers fail the running cmocka test (fail_msg, assert_*) on what a test cannot go
 * on without. tp_env_build() asserts nothing, so a forked child may call it.
 * Thread-safety: none (test code, one thread per tp_env).
 */
#ifndef HSQB_TESTUTIL_PIPELINE_H
#define HSQB_TESTUTIL_PIPELINE_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <json-c/json.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "common/config.h"
#include "common/http.h"
#include "worker/hubspot.h"
#include "worker/oauth.h"
#include "worker/pipeline.h"
#include "worker/producer.h"
#include "worker/qbo.h"
#include "worker/ratelimit.h"

#define TP_RESULTS "hsqb.results"
#define TP_DLQ     "hsqb.actions.dlq"

/* The settings every pipeline test runs with (after its own --hubspot.token, which serves
 * portal 102670506 only): the mock Kafka cluster, fast retries, a lease long enough for
 * one test. */
#define TP_ENV_FLAGS                                                                               \
    "--hubspot.token_portals=102670506", "--kafka.brokers=127.0.0.1:9",                            \
        "--kafka.test.mock.num.brokers=1", "--kafka.group.id=hsqb-test", "--retry.base=20ms",      \
        "--retry.cap=200ms", "--retry.budget=5s", "--claim.lease=5s"

/* ---- JSON documents ------------------------------------------------------------------ */

/* The value at a dotted path ("data.qbo.id"); NULL when absent. Borrowed from o. */
struct json_object *tp_at(struct json_object *o, const char *path);

/* The string at path; fails the test when it is absent or not a string. */
const char *tp_str_at(struct json_object *o, const char *path);

/* Keep json as $BUILD/test-results/<name>.json (BUILD defaults to "build") for
 * tests/schema/test_worker_results.py, which validates every file there against the
 * result schema. 0, or -1 when the file could not be written. */
int tp_save_json(const char *name, const char *json);

/* ---- Kafka --------------------------------------------------------------------------- */

/* One message read back: value (NUL-terminated copy, len bytes) and headers (or NULL). */
struct tp_kmsg {
    char *value;
    size_t len;
    rd_kafka_headers_t *hdrs;
};

/* Every message of topic (partition 0) on the cluster at bootstrap, from the beginning
 * (waiting up to 10 s for them); *n of them. Caller frees with tp_free_msgs (NULL when
 * there are none). */
struct tp_kmsg *tp_read_topic(const char *bootstrap, const char *topic, size_t *n);

/* NULL-safe. */
void tp_free_msgs(struct tp_kmsg *m, size_t n);

/* tp_read_topic() with every value parsed (an entry is NULL when it is not JSON); caller
 * frees with tp_free_json. */
struct json_object **tp_read_json(const char *bootstrap, const char *topic, size_t *n);

/* NULL-safe. */
void tp_free_json(struct json_object **o, size_t n);

/* The last value of header name of m into buf, or NULL when m has none. */
const char *tp_hdr(const struct tp_kmsg *m, const char *name, char *buf, size_t bufsz);
/* The same for any header list (may be NULL). */
const char *tp_header(const rd_kafka_headers_t *hdrs, const char *name, char *buf, size_t bufsz);

/* ---- the pipeline -------------------------------------------------------------------- */

/* Everything `run` builds for one worker thread, pointed at the sandbox. */
struct tp_env {
    struct config *cfg;
    struct oauth *oauth;
    struct ratelimit *rl;
    struct qbo_api *q;
    struct hubspot_api *hs;
    struct producer *pr;
    struct pipeline *p;
    struct pipeline_thread *t;
    struct http_client *http; /* the test's own, or NULL; tp_env_free frees it */
    char bootstrap[256];      /* of the producer's mock cluster */
    int64_t next_offset;      /* of the next message handed in; starts at 100 */
};

/* Build v from cfg (taken: freed by tp_env_free, also on failure), with the results
 * topic and the DLQ created on the mock cluster. 0, or -1 with errstr (v then holds what
 * was built: tp_env_free it). Asserts nothing. */
int tp_env_build(struct tp_env *v, struct config *cfg, char *errstr, size_t errsz);

/* Free what v holds and zero it; idempotent. */
void tp_env_free(struct tp_env *v);

/* An action event of portal on object obj of type (caller frees). inputs: extra
 * "key":"value" members of inputFields, or NULL. */
char *tp_event_json(const char *id, const char *action, int64_t portal, const char *type,
                    int64_t obj, const char *realm, const char *inputs);

/* Hand value (len bytes; hdrs may be NULL) to v's pipeline on thread t as the message at
 * offset of hsqb.actions partition 0; *delay (may be NULL) receives the retry delay. */
enum pipeline_disposition tp_handle(struct tp_env *v, struct pipeline_thread *t, const char *value,
                                    size_t len, rd_kafka_headers_t *hdrs, int64_t offset,
                                    int64_t *delay);

#endif
