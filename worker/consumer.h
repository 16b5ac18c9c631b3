/* consumer.h - the Kafka side of `hsqb-worker run`: poll, dispatch, rebalance, offsets, stop.
 *
 * Owns: one librdkafka consumer (polled on the thread that calls consumer_run()), the
 * scheduler (worker/scheduler.h) with its worker threads, and the flow control between
 * them. The consumer is a member of kafka.group.id, subscribed to the configured topics
 * (kafka.topic.actions by default), with
 *   enable.auto.offset.store=false  an offset is stored only when every earlier message
 *                                   of its partition was handled (HANDLER_DONE);
 *   enable.auto.commit=true         stored offsets are committed periodically, plus
 *                                   synchronously on revoke and at shutdown;
 *   auto.commit.interval.ms=1000    librdkafka's 5 s would leave up to 5 s of finished
 *                                   events uncommitted at a crash or a lost assignment,
 *                                   each re-delivered and its result published again;
 *                                   one commit request a second is cheap;
 *   partition.assignment.strategy=range,roundrobin  the eager protocol: librdkafka 2.0.2's
 *                                   cooperative-sticky can hang (librdkafka #4527, fixed
 *                                   in 2.6) and stalled on the mock cluster; on Apache
 *                                   Kafka 3.9 it ran the churn scenarios cleanly
 *                                   (tests/integration/test_kafka_broker.py), so it is a
 *                                   pass-through choice, not the default;
 *   auto.offset.reset=earliest      a new group starts at the oldest event, not after it;
 *   fetch.wait.max.ms=100           a resumed partition is fetched again soon (librdkafka
 *                                   2.0.2 re-examines paused partitions only when its
 *                                   broker thread wakes up: a fetch reply, or 1 s).
 * The last five are defaults that the kafka.* pass-through may override; a cooperative
 * assignor is handled with incremental assign/unassign.
 *
 * Rebalance (eager): on revoke, the revoked partitions stop dispatching, their running
 * handlers get kafka.revoke_timeout to finish, their offsets are stored and committed
 * synchronously, then they are unassigned; a handler still running after the timeout
 * finishes uncommitted (another member may redeliver it: Redis claims make that safe).
 * On assign, each partition starts with an empty offset tracker.
 *
 * Retry topic: a record of kafka.topic.retry whose hsqb-not-before lies ahead is held in
 * memory (worker/delay.h: copied, then parked in the scheduler's timer heap without a
 * thread) for at most retry.hold_max; retry.max_held* bound that memory by pausing the
 * retry partitions only.
 *
 * Flow control: over the scheduler's bounds a partition is paused
 * (rd_kafka_pause_partitions) while polling continues (rebalances, heartbeats); it is
 * resumed below the low watermark.
 *
 * Stop: consumer_stop() (async-signal-safe) makes consumer_run() stop dispatching, drop
 * queued work, give running handlers shutdown.drain_timeout, store and commit offsets,
 * flush the producer, close the consumer (leaving the group) and return.
 *
 * Thread-safety: consumer_run() runs on one thread; consumer_stop() may be called from
 * any thread or a signal handler; consumer_free() only after consumer_run() returned
 * (or was never called).
 */
#ifndef HSQB_CONSUMER_H
#define HSQB_CONSUMER_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "worker/producer.h"
#include "worker/scheduler.h"

/* Optional observers for metrics/health; any function may be NULL. They run on the poll
 * thread (consumer_run's thread), must be quick and must not call consumer functions. */
struct consumer_hooks {
    void *opaque;
    /* Messages in flight in total (gauge), reported every poll-loop sweep (~100 ms). */
    void (*in_flight)(void *opaque, int64_t n);
    /* Partitions currently paused by flow control (gauge), same cadence. */
    void (*paused)(void *opaque, int64_t n);
    /* Partitions currently assigned (gauge; readiness: > 0 means "consuming"). */
    void (*assigned)(void *opaque, int64_t n);
    /* Consumer lag of one partition from librdkafka statistics (statistics.interval.ms;
     * 10 s when this hook is set and the pass-through does not set it). lag is -1 when
     * librdkafka does not know it yet. */
    void (*lag)(void *opaque, const char *topic, int32_t partition, int64_t lag);
    /* The poll loop is alive (liveness: /healthz); called at least every 100 ms. */
    void (*heartbeat)(void *opaque);
    /* Retry-topic records held in memory waiting for their time (gauge), every sweep. */
    void (*held)(void *opaque, int64_t n);
};

struct consumer_params {
    const struct config *cfg;           /* required; borrowed during consumer_new() only */
    const char *const *topics;          /* NULL-terminated topic names to subscribe (copied);
                                         * NULL: just kafka.topic.actions */
    msg_handler_fn handler;             /* required; see worker/scheduler.h */
    void *opaque;                       /* passed to handler, thread_new, thread_free */
    thread_ctx_new_fn thread_new;       /* may be NULL */
    thread_ctx_free_fn thread_free;     /* may be NULL */
    struct producer *producer;          /* borrowed; flushed at shutdown; may be NULL */
    const struct consumer_hooks *hooks; /* copied; may be NULL */
};

struct consumer;

/* A consumer configuration with what every consumer of the worker relies on, applied in
 * this order: the defaults above (client.id = client_id), then extra (NULL-terminated
 * "key", "value" pairs; may be NULL), then the kafka.* pass-through, then what the offset
 * guarantees rest on and no pass-through may change: bootstrap.servers = kafka.brokers,
 * group.id = group, enable.auto.offset.store=false. The log callback is set (JSON log
 * lines); opaque, rebalance and error callbacks are the caller's. Returns NULL with
 * errstr on a refused property. For this consumer and the callback completer's
 * (worker/callbacks.h). */
rd_kafka_conf_t *consumer_conf_new(const struct config *cfg, const char *client_id,
                                   const char *group, const char *const *extra, char *errstr,
                                   size_t errsz);

/* Builds the consumer from the settings (kafka.brokers, kafka.group.id,
 * kafka.topic.actions, kafka.topic.retry, retry.schedule/hold_max/max_held*,
 * kafka.revoke_timeout, worker.threads, worker.max_in_flight,
 * worker.max_in_flight_per_partition, shutdown.drain_timeout and the kafka.*
 * pass-through), starts the worker threads (each runs thread_new) and subscribes.
 * Returns NULL with errstr filled on bad settings or a failed thread constructor.
 * Caller frees with consumer_free(). */
struct consumer *consumer_new(const struct consumer_params *p, char *errstr, size_t errsz);

/* Consumes until consumer_stop(), a fatal librdkafka error or a handler's HANDLER_STOP,
 * then shuts down as described above. Returns 0 after a requested stop, -1 with errstr
 * filled after a fatal error or HANDLER_STOP (offsets of unfinished work are not
 * committed either way). Call at most once. */
int consumer_run(struct consumer *c, char *errstr, size_t errsz);

/* Asks consumer_run() to stop; returns at once. Async-signal-safe (one atomic store);
 * taken into account within ~100 ms. c may be NULL. */
void consumer_stop(struct consumer *c);

/* Frees everything (joins the worker threads if consumer_run() did not). c may be NULL. */
void consumer_free(struct consumer *c);

#endif
