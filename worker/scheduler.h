/* scheduler.h - key-ordered dispatch of Kafka messages onto a pool of worker threads.
 *
 * Owns: N worker threads (each with its own context built by a caller's constructor on
 * that thread), every message submitted until its handler finishes or it is dropped, the
 * per-partition offset trackers (worker/offsets.h), the per-key FIFO queues and the
 * retry timers.
 *
 * Ordering: messages of one partition with the same key run one at a time, in offset
 * order; different keys run concurrently. A message without a key (NULL or empty) has no
 * ordering constraint. A message whose handler asks for a retry (HANDLER_RETRY) stays in
 * flight and keeps blocking its key until it is re-run after the requested delay; while
 * it waits it holds no thread (idle threads sleep until the earliest timer is due).
 *
 * Held messages (scheduler_submit_delayed: retry-topic records waiting for their
 * not-before time) wait in the same timer heap without a thread and have bounds of their
 * own (max_held*), so a full retry topic pauses only the partitions holding messages.
 *
 * Flow control: the scheduler never refuses a message for being over a bound (messages
 * already fetched must be accepted); it computes, per partition, whether the consumer
 * should pause it: over worker.max_in_flight_per_partition, over worker.max_in_flight in
 * total, or when the uncommitted offset window of the partition is too wide (one stuck
 * message holding back thousands of finished ones). The pause is lifted at a low
 * watermark of half of each bound: wide hysteresis, because with librdkafka 2.0.2 a
 * resumed partition may wait up to ~1 s for its next fetch (its broker thread notices
 * the resume on its next wake-up), so each pause should cover a large batch. The
 * consumer reads that state with scheduler_partition_state() and applies it with
 * rd_kafka_pause/resume_partitions.
 *
 * Offsets: a message's offset is marked complete only when its handler returns
 * HANDLER_DONE; the partition's commit offset is the end of the contiguous completed
 * prefix (worker/offsets.h). Dropped (revoked, stopped) and stopped messages never
 * complete, so their offsets and everything after them are left for redelivery.
 *
 * Thread-safety: every function may be called from any thread (one internal mutex),
 * except scheduler_free(), which must not race with any other call. The handler and the
 * release callback run on worker threads (release also on the thread calling
 * scheduler_partition_revoke(), _remove() or scheduler_free()), never with the mutex
 * held.
 */
#ifndef HSQB_SCHEDULER_H
#define HSQB_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

/* One message as a handler sees it. Every pointer is borrowed until the handler returns
 * (the scheduler keeps the underlying rd_kafka_message_t alive that long). */
struct inbound_msg {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* message timestamp (create or log-append time); -1 if none */
    const char *key;      /* NUL-terminated copy of the key (key_len excludes the NUL);
                           * NULL when the message has no key */
    size_t key_len;
    const void *value; /* NULL for a tombstone (value_len 0) */
    size_t value_len;
    rd_kafka_headers_t *headers; /* borrowed, may be NULL; read-only */
    uint32_t dispatch_count;     /* 1 on the first run, +1 for each HANDLER_RETRY re-run */
    struct scheduler *sched;     /* the scheduler running it, for scheduler_complete() after
                                  * HANDLER_PENDING; NULL when a caller runs a handler itself */
};

enum handler_disposition {
    HANDLER_DONE = 0, /* finished (result published): the offset may be stored */
    HANDLER_RETRY,    /* run this same message again after *retry_delay_ms; its key stays
                       * blocked and its offset is not stored meanwhile */
    HANDLER_STOP,     /* unrecoverable: the offset is never stored, the key stays blocked,
                       * and scheduler_failed() turns true so the process shuts down */
    HANDLER_PENDING,  /* handed on (msg->sched set): the message stays running, holding its
                       * key, its offset and the message itself, until exactly one
                       * scheduler_complete() says how it ended; the thread is free now */
};

/* Runs one message on a worker thread. `thread_ctx` is what the thread constructor
 * returned for this thread (NULL without a constructor). For HANDLER_RETRY the handler
 * sets *retry_delay_ms (preset to 0; negative is taken as 0). Must not call
 * scheduler_free(). */
typedef enum handler_disposition (*msg_handler_fn)(void *opaque, void *thread_ctx,
                                                   const struct inbound_msg *msg,
                                                   int64_t *retry_delay_ms);

/* Builds one worker thread's context, on that thread, before it takes any work
 * (e.g. pipeline_thread_new: an HTTP client and a Redis connection). `index` is 0..N-1.
 * Returns 0 and sets *ctx (may be NULL), or -1 with errstr filled, which makes
 * scheduler_new() fail. */
typedef int (*thread_ctx_new_fn)(void *opaque, unsigned index, void **ctx, char *errstr,
                                 size_t errsz);
/* Frees a context built by the constructor, on the same thread, when the thread ends. */
typedef void (*thread_ctx_free_fn)(void *opaque, void *ctx);

/* Called exactly once for every message scheduler_submit() accepted, when the scheduler
 * is done with it (handled, dropped by a revoke, or dropped at scheduler_free()). The
 * consumer passes rd_kafka_message_destroy's adapter here. */
typedef void (*msg_release_fn)(void *owner);

struct scheduler_options {
    unsigned threads;                   /* >= 1 (worker.threads) */
    size_t max_in_flight;               /* >= 1 (worker.max_in_flight) */
    size_t max_in_flight_per_partition; /* >= 1 (worker.max_in_flight_per_partition) */
    size_t max_window;              /* pause a partition whose uncommitted offset window (finished
                                     * but not committable + in flight) reaches this; 0 picks
                                     * max(4 * max_in_flight_per_partition, 1024) */
    msg_handler_fn handler;         /* required */
    void *opaque;                   /* passed to handler and ctx callbacks */
    thread_ctx_new_fn thread_new;   /* may be NULL: contexts are NULL */
    thread_ctx_free_fn thread_free; /* may be NULL */
    msg_release_fn release;         /* may be NULL (tests with static messages) */
    /* Held messages (scheduler_submit_delayed) waiting for their time; 0 picks the
     * SCHED_DEFAULT_* value. Reaching max_held_per_partition pauses that partition;
     * reaching max_held or max_held_bytes in total pauses every partition holding
     * messages; each resumes at half. */
    size_t max_held;               /* retry.max_held */
    size_t max_held_per_partition; /* retry.max_held_per_partition */
    size_t max_held_bytes;         /* retry.max_held_bytes */
};

#define SCHED_DEFAULT_MAX_HELD      10000
#define SCHED_DEFAULT_MAX_HELD_PP   5000
#define SCHED_DEFAULT_MAX_HELD_SIZE (64u << 20)

struct scheduler;
struct sched_partition;

/* Starts the worker threads and waits until each built its context. Returns NULL with
 * errstr filled when an option is invalid, a thread cannot start or a constructor
 * fails (contexts already built are freed). Caller frees with scheduler_free(). */
struct scheduler *scheduler_new(const struct scheduler_options *opt, char *errstr, size_t errsz);

/* Stops the threads: messages not running are dropped (released, never completed),
 * running handlers are waited for, each thread frees its context, and every partition
 * is freed. s may be NULL. */
void scheduler_free(struct scheduler *s);

/* Starts tracking a newly assigned partition (empty tracker, nothing paused). `topic`
 * is copied. The handle is valid until scheduler_partition_remove(). Returns NULL on
 * out-of-memory, or when the partition is already tracked (remove it first). */
struct sched_partition *scheduler_partition_add(struct scheduler *s, const char *topic,
                                                int32_t partition);

/* The tracked, not-removed partition, or NULL. */
struct sched_partition *scheduler_partition_find(struct scheduler *s, const char *topic,
                                                 int32_t partition);

/* Stops dispatching the partition: every message of it that is not running right now
 * (waiting for its key, queued, waiting for a retry, stopped) is dropped and released
 * before this returns; later submits to it are refused. Running handlers are left to
 * finish (a HANDLER_DONE still completes its offset; a HANDLER_RETRY is dropped).
 * Idempotent. */
void scheduler_partition_revoke(struct scheduler *s, struct sched_partition *p);

/* Waits until no handler of partition p (or of any partition when p is NULL) is
 * running and nothing of it is queued, for at most timeout_ms (monotonic). Returns 0
 * when idle, -1 on timeout. Meant after scheduler_partition_revoke(). The release
 * callbacks of the last messages may still be running on worker threads when it
 * returns (scheduler_free() waits for them). */
int scheduler_wait_idle(struct scheduler *s, struct sched_partition *p, int64_t timeout_ms);

/* Forgets the partition; the handle is invalid afterwards. If handlers of it are still
 * running, their completions are ignored and the memory is freed after the last one. */
void scheduler_partition_remove(struct scheduler *s, struct sched_partition *p);

enum sched_submit {
    SCHED_ACCEPTED = 0, /* the scheduler owns `owner` and will call release(owner) once */
    SCHED_REFUSED,      /* not taken (partition revoked, or the offset is at or below one
                         * already dispatched, e.g. after an offset reset): the caller
                         * still owns `owner` and must release it */
    SCHED_ERROR,        /* not taken: out of memory or the partition's tracker is full;
                         * errstr filled. The caller must stop consuming the partition:
                         * skipping a message here would lose it. */
};

/* Queues one message of partition p. `msg` is copied except for the bytes its pointers
 * reference, which must stay valid until release(owner) (the key is copied). The
 * message's topic/partition must be p's. msg->dispatch_count is ignored. *want_pause
 * (may be NULL) receives the partition's pause state after this submit. */
enum sched_submit scheduler_submit(struct scheduler *s, struct sched_partition *p,
                                   const struct inbound_msg *msg, void *owner, int *want_pause,
                                   char *errstr, size_t errsz);

/* As scheduler_submit(), for a message that must not start before delay_ms from now
 * (the retry topic's not-before, worker/delay.h), described by h (borrowed for the call).
 * Until then it is "held": it waits in the timer heap, holds no thread, keeps its key
 * blocked behind it (a later message of its key waits for it), and counts against the
 * max_held* bounds instead of max_in_flight*; its offset is in flight (not committable)
 * meanwhile. h->release (may be NULL) is called for this message instead of
 * options.release. Same return values as scheduler_submit(). */
struct sched_held {
    void *owner;            /* as scheduler_submit()'s */
    msg_release_fn release; /* NULL: options.release */
    int64_t delay_ms;       /* from now; <= 0 runs it at once */
    size_t bytes;           /* its memory, for max_held_bytes */
};
enum sched_submit scheduler_submit_delayed(struct scheduler *s, struct sched_partition *p,
                                           const struct inbound_msg *msg,
                                           const struct sched_held *h, int *want_pause,
                                           char *errstr, size_t errsz);

/* Messages held (submitted delayed and not yet due), in total. */
size_t scheduler_held(struct scheduler *s);

/* The partition's flow-control and offset state for the consumer: *want_pause whether
 * it should be paused now (bounds with hysteresis), *commit_offset the next offset to
 * store/commit (end of the contiguous completed prefix) or -1 when nothing of this
 * assignment completed yet. Either out-pointer may be NULL. */
void scheduler_partition_state(struct scheduler *s, struct sched_partition *p, int *want_pause,
                               int64_t *commit_offset);

/* Messages accepted and not yet finished or dropped, in total. */
size_t scheduler_in_flight(struct scheduler *s);
/* Same, for one partition. */
size_t scheduler_partition_in_flight(struct scheduler *s, struct sched_partition *p);

/* True once any handler returned HANDLER_STOP: the process should shut down. */
int scheduler_failed(struct scheduler *s);

/* Ends a message whose handler returned HANDLER_PENDING, from any thread, exactly once,
 * with d (DONE, RETRY after delay_ms, or STOP) as if the handler had returned it then.
 * msg is the pointer the handler got; it and everything it points to may be freed before
 * this returns. scheduler_free() waits for every pending message's completion. */
void scheduler_complete(struct scheduler *s, const struct inbound_msg *msg,
                        enum handler_disposition d, int64_t delay_ms);

#endif
