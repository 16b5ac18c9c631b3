/* producer.h - the worker's one shared, idempotent Kafka producer (results, DLQ, retry).
 *
 * Owns: one librdkafka producer handle (enable.idempotence=true, acks=all, small
 * linger, no topic auto-creation) and a thread that polls it for delivery reports, plus
 * the topic handles producer_warm() keeps. Settings: kafka.brokers plus
 * the kafka.* pass-through properties (worker/settings.c); the pass-through may tune
 * linger.ms, message.timeout.ms, compression etc. but never the idempotence or the
 * bootstrap list.
 *
 * producer_send_sync() blocks the calling thread until the broker acknowledged the
 * message (all in-sync replicas) or delivery failed, so a caller may store an input
 * offset right after it returns 0 (an offset is stored only after the result is
 * delivered). A send that times out on the caller's side may still be
 * delivered later by librdkafka (at least once): consumers of results deduplicate on
 * the CloudEvent id.
 *
 * Also the header sets the worker writes (retry hops, dead letters, replays): gathered
 * from an input's headers and the worker's own, owned in one allocation
 * (struct kafka_header_set), so delay.c and result.c build them one way.
 *
 * Thread-safety: producer_send_sync() and producer_flush() may be called from any number
 * of threads at once. producer_warm() and producer_free() must not race with any other
 * call (the worker warms once, before its threads start).
 */
#ifndef HSQB_PRODUCER_H
#define HSQB_PRODUCER_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "common/config.h"

/* One Kafka header; both strings borrowed for the call, value NUL-terminated. */
struct kafka_header {
    const char *name;
    const char *value; /* NULL sends a header with a null value */
};

#define PRODUCER_MAX_HEADERS 64 /* headers per message */

/* ---- header sets the worker writes (retry hops, dead letters, replays) -------------- */

#define KAFKA_HEADER_SET_MAX 48 /* headers of one record the worker builds */

/* A header set that owns its strings (one allocation), ready for producer_send_sync(). */
struct kafka_header_set {
    struct kafka_header h[KAFKA_HEADER_SET_MAX];
    size_t n;
    char *mem;
};

/* A header being gathered: both borrowed; value has vlen bytes and no NUL among them. */
struct kafka_header_ref {
    const char *name;
    const char *value;
    size_t vlen;
};

/* Gather into p[0..max) the headers of hdrs (may be NULL) whose name is not in
 * skip[0..nskip) (skip may be NULL when nskip is 0): a repeated name keeps its last value;
 * a value holding a NUL byte cannot travel as a kafka_header and is dropped; names beyond
 * max are dropped. The pointers are borrowed from hdrs. Returns how many were gathered. */
size_t kafka_headers_gather(const rd_kafka_headers_t *hdrs, const char *const *skip, size_t nskip,
                            struct kafka_header_ref *p, size_t max);
/* Copy p[0..np) (np <= KAFKA_HEADER_SET_MAX) into *out, whose previous content is not
 * freed. 0, or -1 with errstr (out of memory, too many). Release with
 * kafka_header_set_release(). */
int kafka_header_set_build(const struct kafka_header_ref *p, size_t np,
                           struct kafka_header_set *out, char *errstr, size_t errsz);
/* NULL-safe, idempotent. */
void kafka_header_set_release(struct kafka_header_set *s);

/* ---- every librdkafka client of the worker -------------------------------------------- */

/* The rd_kafka_conf_set_log_cb() callback of every librdkafka client the worker creates
 * (producer, consumers): librdkafka's syslog levels become our log levels, each line a
 * JSON log line naming the client and the facility; a pass-through property meant for the
 * other kind of client (kafka.* go to all of them) is a debug line, not a warning. */
void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

struct producer;

/* Creates the producer from cfg (borrowed; read only during the call) and starts the
 * delivery-report thread. Returns NULL with errstr filled on bad settings. Caller frees
 * with producer_free(). */
struct producer *producer_new(const struct config *cfg, char *errstr, size_t errsz);

/* Settings a caller tunes beyond the configuration (producer_new_tuned()). */
struct producer_tuning {
    const char *client_id;      /* NULL: "hsqb-worker" */
    int linger_ms;              /* < 0: 5 */
    int64_t message_timeout_ms; /* > 0: message.timeout.ms, the longest a message waits for
                                 * its acknowledgement before its delivery report fails */
    int nagle_off;              /* socket.nagle.disable=true: small produce requests go out at
                                 * once instead of waiting for the broker's delayed ACK */
};
/* As producer_new(), with t (may be NULL) applied after the kafka.* pass-through. */
struct producer *producer_new_tuned(const struct config *cfg, const struct producer_tuning *t,
                                    char *errstr, size_t errsz);

/* Sends message m (all borrowed) and waits for its delivery report, at most timeout_ms
 * (> 0). At most PRODUCER_MAX_HEADERS headers; every buffer is copied before it returns.
 * Returns 0 when the broker acknowledged the message, -1 with errstr filled otherwise:
 * delivery failed, the local queue stayed full, the producer hit a fatal error, or the
 * timeout passed (the message may still be delivered later). */
struct producer_msg {
    const char *topic;
    const char *key; /* NULL: no key (keylen 0) */
    size_t keylen;
    const void *value; /* NULL: a tombstone */
    size_t vallen;
    const struct kafka_header *hdrs; /* NULL when nhdrs is 0 */
    size_t nhdrs;
};
int producer_send_sync(struct producer *pr, const struct producer_msg *m, int64_t timeout_ms,
                       char *errstr, size_t errsz);

/* Delivery outcome of an asynchronous send: ok 0 when the broker acknowledged it (all
 * in-sync replicas), -1 with why (a static librdkafka string) otherwise. Runs on the
 * producer's poll thread: return quickly, never call back into the producer's free. */
typedef void (*producer_done_fn)(void *opaque, int ok, const char *why);

/* Hands message m (all borrowed; buffers copied) to librdkafka without waiting. Returns 0
 * when queued: done(opaque, …) then runs exactly once, on the poll thread, when the
 * delivery succeeded or failed (message.timeout.ms bounds the wait; producer_free() purges
 * what is left, which reports a failure). Returns -1 with errstr when not queued (queue
 * full, fatal producer error): done is then never called. */
int producer_send_async(struct producer *pr, const struct producer_msg *m, producer_done_fn done,
                        void *opaque, char *errstr, size_t errsz);

#define PRODUCER_MAX_WARM 8 /* topics producer_warm() keeps known */

/* Makes topics[0..n) known to the producer before the first send: a topic handle held
 * until producer_free() and one metadata request each, all within timeout_ms. Without
 * it the first send to each topic waits for librdkafka's next metadata refresh (about a
 * second). Every topic is tried; returns 0, or -1 with errstr naming the first failure
 * (topic absent, broker unreachable, timeout). A failure is not fatal to sending: the
 * topic is still looked up on first use (or auto-created where the cluster does so). */
int producer_warm(struct producer *pr, const char *const *topics, size_t n, int64_t timeout_ms,
                  char *errstr, size_t errsz);

/* Fails every message still queued or in flight at once (rd_kafka_purge): their delivery
 * reports (and producer_send_async() callbacks) come with a purge error on the poll
 * thread instead of after message.timeout.ms. A purged in-flight message may still have
 * reached the broker. For shutdown paths that answered their callers already. */
void producer_purge(struct producer *pr);

/* Waits until every message handed to the producer is delivered or failed, at most
 * timeout_ms. Returns 0, or -1 when messages were still outstanding. */
int producer_flush(struct producer *pr, int64_t timeout_ms);

/* The librdkafka handle, borrowed until producer_free() (for rd_kafka_* queries such as
 * metadata in tests or readiness checks; never destroy or poll it). */
rd_kafka_t *producer_handle(struct producer *pr);

/* Flushes (up to 10 s), stops the delivery-report thread and destroys the handle. pr may
 * be NULL. */
void producer_free(struct producer *pr);

#endif
