/* test_scheduler.c - what the worker promises about ordering and flow: events with one
 * key run one at a time in offset order, different keys run at once, a retry waits its
 * delay without holding a thread and keeps its key blocked, bounds ask the consumer to
 * pause (and to resume below the low watermark), a revoke or shutdown drops what has
 * not started and waits for what has, and every message is released exactly once. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "worker/offsets.h"
#include "worker/scheduler.h"

#define MAXMSG 512
#define MAXREC 2048

struct tmsg {
    struct inbound_msg m;
    char key[16];
    atomic_int released;
};

enum mode { M_ORDER, M_PARALLEL, M_GATE, M_RETRY, M_STOP, M_PENDING };

/* Shared by the fake handler and the tests; reset by setup(). */
static struct {
    enum mode mode;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct tmsg msgs[MAXMSG];
    /* M_ORDER */
    atomic_int running_per_key[8];
    atomic_int overlap;
    int64_t seen[8][MAXMSG];
    int nseen[8];
    /* M_PARALLEL */
    int concurrent, max_concurrent;
    /* M_GATE: handlers whose key starts with 'g' wait for a permit */
    int permits;
    /* M_RETRY / M_STOP / generic record of runs */
    struct {
        int64_t offset;
        uint32_t dispatch;
        int64_t at_ms;
        void *ctx;
    } rec[MAXREC];
    int nrec;
    int64_t stop_offset;
    int64_t retry_offset; /* M_RETRY: this offset asks for a 200 ms retry once */
    /* M_PENDING: every run is handed on; the test completes them from its own thread */
    const struct inbound_msg *handed[MAXMSG];
    int nhanded;
} T;

static void record(const struct inbound_msg *m, void *ctx)
{
    pthread_mutex_lock(&T.mu);
    if (T.nrec < MAXREC) {
        T.rec[T.nrec].offset = m->offset;
        T.rec[T.nrec].dispatch = m->dispatch_count;
        T.rec[T.nrec].at_ms = clock_mono_ms();
        T.rec[T.nrec].ctx = ctx;
        T.nrec++;
    }
    pthread_mutex_unlock(&T.mu);
}

static enum handler_disposition handler(void *opaque, void *ctx, const struct inbound_msg *m,
                                        int64_t *delay)
{
    (void)opaque;
    record(m, ctx);
    switch (T.mode) {
    case M_ORDER: {
        int k = m->key[1] - '0';

        if (atomic_fetch_add(&T.running_per_key[k], 1) != 0)
            atomic_store(&T.overlap, 1);
        usleep((useconds_t)(rand() % 200));
        pthread_mutex_lock(&T.mu);
        T.seen[k][T.nseen[k]++] = m->offset;
        pthread_mutex_unlock(&T.mu);
        atomic_fetch_sub(&T.running_per_key[k], 1);
        return HANDLER_DONE;
    }
    case M_PARALLEL: {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 3;
        pthread_mutex_lock(&T.mu);
        T.concurrent++;
        if (T.concurrent > T.max_concurrent)
            T.max_concurrent = T.concurrent;
        pthread_cond_broadcast(&T.cv);
        while (T.max_concurrent < 4 && pthread_cond_timedwait(&T.cv, &T.mu, &ts) == 0)
            ;
        T.concurrent--;
        pthread_mutex_unlock(&T.mu);
        return HANDLER_DONE;
    }
    case M_GATE:
        if (m->key != NULL && m->key[0] == 'g') {
            pthread_mutex_lock(&T.mu);
            while (T.permits == 0)
                pthread_cond_wait(&T.cv, &T.mu);
            T.permits--;
            pthread_mutex_unlock(&T.mu);
        }
        return HANDLER_DONE;
    case M_RETRY:
        if (m->offset == T.retry_offset && m->dispatch_count == 1) {
            *delay = 200;
            return HANDLER_RETRY;
        }
        return HANDLER_DONE;
    case M_STOP:
        return m->offset == T.stop_offset ? HANDLER_STOP : HANDLER_DONE;
    case M_PENDING:
        assert_non_null(m->sched);
        pthread_mutex_lock(&T.mu);
        T.handed[T.nhanded++] = m;
        pthread_cond_broadcast(&T.cv);
        pthread_mutex_unlock(&T.mu);
        return HANDLER_PENDING;
    }
    return HANDLER_DONE;
}

static void release(void *owner)
{
    struct tmsg *t = owner;

    atomic_fetch_add(&t->released, 1);
}

static void permit(int n)
{
    pthread_mutex_lock(&T.mu);
    T.permits += n;
    pthread_cond_broadcast(&T.cv);
    pthread_mutex_unlock(&T.mu);
}

static int setup(void **state)
{
    (void)state;
    memset(&T, 0, sizeof(T));
    pthread_mutex_init(&T.mu, NULL);
    pthread_cond_init(&T.cv, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pthread_mutex_destroy(&T.mu);
    pthread_cond_destroy(&T.cv);
    return 0;
}

static struct scheduler *start(unsigned threads, size_t total, size_t per_part, size_t window)
{
    struct scheduler_options o = {
        .threads = threads,
        .max_in_flight = total,
        .max_in_flight_per_partition = per_part,
        .max_window = window,
        .handler = handler,
        .release = release,
    };
    char err[256];
    struct scheduler *s = scheduler_new(&o, err, sizeof(err));

    assert_non_null(s);
    return s;
}

/* Submits T.msgs[i] as offset `offset` of p with `key` (NULL: no key). */
static enum sched_submit submit(struct scheduler *s, struct sched_partition *p, int i,
                                int64_t offset, const char *key, int *want_pause)
{
    struct tmsg *t = &T.msgs[i];
    char err[256];

    memset(&t->m, 0, sizeof(t->m));
    t->m.topic = "hsqb.actions";
    t->m.partition = 0;
    t->m.offset = offset;
    t->m.timestamp_ms = -1;
    if (key != NULL) {
        snprintf(t->key, sizeof(t->key), "%s", key);
        t->m.key = t->key;
        t->m.key_len = strlen(t->key);
    }
    t->m.value = "{}";
    t->m.value_len = 2;
    return scheduler_submit(s, p, &t->m, t, want_pause, err, sizeof(err));
}

static int64_t commit_of(struct scheduler *s, struct sched_partition *p)
{
    int64_t c;

    scheduler_partition_state(s, p, NULL, &c);
    return c;
}

static int paused(struct scheduler *s, struct sched_partition *p)
{
    int w;

    scheduler_partition_state(s, p, &w, NULL);
    return w;
}

static void wait_in_flight(struct scheduler *s, struct sched_partition *p, size_t n)
{
    int64_t end = clock_mono_ms() + 5000;

    while (scheduler_partition_in_flight(s, p) != n && clock_mono_ms() < end)
        usleep(1000);
    assert_int_equal(scheduler_partition_in_flight(s, p), n);
}

static void assert_released_once(int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(atomic_load(&T.msgs[i].released), 1);
}

static void test_same_key_in_offset_order_one_at_a_time(void **state)
{
    struct scheduler *s = start(6, 1000, 1000, 0);
    struct sched_partition *p = scheduler_partition_add(s, "hsqb.actions", 0);
    char key[16];
    int i, k, total = 0;

    (void)state;
    T.mode = M_ORDER;
    srand(3);
    for (i = 0; i < 400; i++) {
        snprintf(key, sizeof(key), "k%d", rand() % 6);
        assert_int_equal(submit(s, p, i, 1000 + i, key, NULL), SCHED_ACCEPTED);
    }
    assert_int_equal(scheduler_wait_idle(s, p, 10000), 0);
    assert_int_equal(atomic_load(&T.overlap), 0);
    for (k = 0; k < 6; k++) {
        for (i = 1; i < T.nseen[k]; i++)
            assert_true(T.seen[k][i - 1] < T.seen[k][i]);
        total += T.nseen[k];
    }
    assert_int_equal(total, 400);
    assert_int_equal(commit_of(s, p), 1400);
    scheduler_free(s);
    assert_released_once(400);
}

static void test_different_keys_run_concurrently(void **state)
{
    struct scheduler *s = start(4, 100, 100, 0);
    struct sched_partition *p = scheduler_partition_add(s, "hsqb.actions", 0);

    (void)state;
    T.mode = M_PARALLEL;
    assert_int_equal(submit(s, p, 0, 0, "a", NULL), SCHED_ACCEPTED);
    assert_int_equal(submit(s, p, 1, 1, "b", NULL), SCHED_ACCEPTED);
    assert_int_equal(submit(s, p, 2, 2, NULL, NULL), SCHED_ACCEPTED); /* no key: unordered */
    assert_int_equal(submit(s, p, 3, 3, NULL, NULL), SCHED_ACCEPTED);
    assert_int_equal(scheduler_wait_idle(s, p, 5000), 0);
    assert_int_equal(T.max_concurrent, 4);
    assert_int_equal(commit_of(s, p), 4);
    scheduler_free(s);
    assert_released_once(4);
}

static void test_partition_bound_pauses_with_hysteresis(void **state)
{
    struct scheduler *s = start(8, 100, 8, 0);
    struct sched_partition *p = scheduler_partition_add(s, "hsqb.actions", 0);
    struct sched_partition *q = scheduler_partition_add(s, "hsqb.actions", 1);
    int want;
    char key[16];
    int i;

    (void)state;
    T.mode = M_GATE;
    for (i = 0; i < 8; i++) {
        snprintf(key, sizeof(key), "g%d", i);
        assert_int_equal(submit(s, p, i, i, key, &want), SCHED_ACCEPTED);
        assert_int_equal(want, i == 7); /* the 8th reaches the bound */
    }
    assert_true(paused(s, p));
    assert_false(paused(s, q)); /* other partitions keep flowing */
    /* a message fetched before the pause took effect is still accepted */
    assert_int_equal(submit(s, p, 8, 8, "g8", &want), SCHED_ACCEPTED);
    assert_true(want);
    permit(2);
    wait_in_flight(s, p, 7);
    assert_true(paused(s, p)); /* below the bound, above the low watermark 4 */
    permit(2);
    wait_in_flight(s, p, 5);
    assert_true(paused(s, p));
    permit(1);
    wait_in_flight(s, p, 4);
    assert_false(paused(s, p));
    permit(100);
    assert_int_equal(scheduler_wait_idle(s, NULL, 5000), 0);
    assert_int_equal(commit_of(s, p), 9);
    scheduler_free(s);
    assert_released_once(9);
}

static void test_total_bound_pauses_every_partition(void **state)
{
    struct scheduler *s = start(4, 4, 4, 0);
    struct sched_partition *p = scheduler_partition_add(s, "hsqb.actions", 0);
    struct sched_partition *q = scheduler_partition_add(s, "hsqb.actions", 1);
    struct sched_partition *r = scheduler_partition_add(s, "hsqb.actions", 2);
    int want;

    (void)state;
    T.mode = M_GATE;
    assert_int_equal(submit(s, p, 0, 0, "g0", &want), SCHED_ACCEPTED);
    assert_int_equal(submit(s, p, 1, 1, "g1", &want), SCHED_ACCEPTED);
    assert_int_equal(submit(s, q, 2, 0, "g2", &want), SCHED_ACCEPTED);
    assert_false(want);
    assert_int_equal(submit(s, q, 3, 1, "g3", &want), SCHED_ACCEPTED);
    assert_true(want);
    assert_true(paused(s, p));
    assert_true(paused(s, r)); /* even one with nothing in flight */
    permit(1);
    assert_int_equal(scheduler_wait_idle(s, NULL, 100), -1);
    assert_true(paused(s, r)); /* 3 in flight, low watermark 2 */
    permit(1);
    assert_int_equal(scheduler_wait_idle(s, NULL, 100), -1);
    assert_false(paused(s, r));
    permit(100);
    assert_int_equal(scheduler_wait_idle(s, NULL, 5000), 0);
    scheduler_free(s);
    assert_released_once(4);
}

/* One stuck event must not let thousands of finished ones pile up uncommitted. */
static void test_window_bound_pauses_behind_a_stuck_message(void **state)
{
    struct scheduler *s = start(2, 100, 100, 8);
    struct sched_partition *p = scheduler_partition_add(s, "hsqb.actions", 0);
    char key[16];
    int i;

    (void)state;
    T.mode = M_GATE;
    assert_int_equal(submit(s, p, 0, 0, "g-stuck", NULL), SCHED_ACCEPTED);
    for (i = 1; i < 8; i++) {
        snprintf(key, sizeof(key), "f%d", i);
        assert_int_equal(submit(s, p, i, i, key, NULL), SCHED_ACCEPTED);
    }
    wait_in_flight(s, p, 1);
    assert_true(paused(s, p)); /* in flight 1, but the window holds 8 */
    assert_int_equal(commit_of(s, p), OFFSETS_NONE);
    permit(1);
    wait_in_flight(s, p, 0);
    assert_false(paused(s, p));
    assert_int_equal(commit_of(s, p), 8);
    scheduler_free(s);
    assert_released_once(8);
}

static void test_retry_waits_without_a_thread_and_blocks_its_key(void **state)
{
    struct scheduler *s = start(1, 100, 100, 0);
    struct sched_partition *p = scheduler_partition_add(s, "hsqb.actions", 0);
    int64_t t0 = clock_mono_ms(), first_b = -1, second_r = -1, r2 = -1;
    int i;

    (void)state;
    T.mode = M_RETRY;
    T.retry_offset = 10;
    assert_int_equal(submit(s, p, 0, 10, "r", NULL), SCHED_ACCEPTED); /* retried once */
    assert_int_equal(submit(s, p, 1, 11, "r", NULL), SCHED_ACCEPTED); /* same key: waits */
    assert_int_equal(submit(s, p, 2, 12, "b", NULL), SCHED_ACCEPTED); /* runs meanwhile */
    wait_in_flight(s, p, 2);
    assert_int_equal(commit_of(s, p), OFFSETS_NONE); /* 10 not done: nothing committable */
    assert_int_equal(scheduler_wait_idle(s, p, 5000), 0);
    for (i = 0; i < T.nrec; i++) {
        if (T.rec[i].offset == 12 && first_b < 0)
            first_b = T.rec[i].at_ms;
        if (T.rec[i].offset == 10 && T.rec[i].dispatch == 2)
            second_r = T.rec[i].at_ms;
        if (T.rec[i].offset == 11)
            r2 = T.rec[i].at_ms;
    }
    assert_int_equal(T.nrec, 4);
    /* the single thread was free for b while r waited its 200 ms */
    assert_true(first_b >= 0 && first_b - t0 < 150);
    assert_true(second_r - t0 >= 195);
    assert_true(r2 >= second_r);
    assert_int_equal(T.rec[3].offset, 11); /* r's follower ran last */
    assert_int_equal(commit_of(s, p), 13);
    scheduler_free(s);
    assert_released_once(3);
}

/* The n-th message handed on (waits for it). */
static const struct inbound_msg *handed(int n)
{
    struct timespec ts;
    const struct inbound_msg *m;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 5;
    pthread_mutex_lock(&T.mu);
    while (T.nhanded <= n && pthread_cond_timedwait(&T.cv, &T.mu, &ts) == 0)
        ;
    m = T.nhanded > n ? T.handed[n] : NULL;
    pthread_mutex_unlock(&T.mu);
    assert_non_null(m);
    return m;
}

/* Issue 20: a handler that hands its message on (an asynchronous result send) frees its
 * thread at once, while the message keeps its key, its offset and its place in flight
 * until scheduler_complete() from another thread; RETRY runs it again, DONE commits. */
static void test_pending_holds_key_and_offset_until_completed(void **state)
{
    struct scheduler *s = start(1, 100, 100, 0);
    struct sched_partition *p = scheduler_partition_add(s, "hsqb.actions", 0);

    (void)state;
    T.mode = M_PENDING;
    assert_int_equal(submit(s, p, 0, 20, "a", NULL), SCHED_ACCEPTED);
    assert_int_equal(submit(s, p, 1, 21, "a", NULL), SCHED_ACCEPTED); /* same key: waits */
    assert_int_equal(submit(s, p, 2, 22, "b", NULL), SCHED_ACCEPTED);
    /* the one thread handed 20 on and is free for b; 21 waits for 20's key */
    assert_int_equal(handed(0)->offset, 20);
    assert_int_equal(handed(1)->offset, 22);
    usleep(50 * 1000);
    assert_int_equal(T.nhanded, 2);
    assert_int_equal(scheduler_partition_in_flight(s, p), 3);
    scheduler_complete(s, handed(1), HANDLER_DONE, 0);
    assert_int_equal(commit_of(s, p), OFFSETS_NONE); /* 20 still pending */
    scheduler_complete(s, handed(0), HANDLER_RETRY, 10); /* runs again, key still held */
    assert_int_equal(handed(2)->offset, 20);
    assert_int_equal(handed(2)->dispatch_count, 2);
    scheduler_complete(s, handed(2), HANDLER_DONE, 0);
    assert_int_equal(handed(3)->offset, 21); /* the key's next, only now */
    scheduler_complete(s, handed(3), HANDLER_DONE, 0);
    assert_int_equal(scheduler_wait_idle(s, p, 5000), 0);
    assert_int_equal(commit_of(s, p), 23);
    scheduler_free(s);
    assert_released_once(3);
}

static void *complete_later(void *arg)
{
    usleep(200 * 1000);
    scheduler_complete(((const struct inbound_msg *)arg)->sched, arg, HANDLER_DONE, 0);
    return NULL;
}

/* scheduler_free() waits for a handed-on message's completion (its owner may complete it
 * after the threads are joined: a delivery report on the producer's thread). */
static void test_free_waits_for_pending(void **state)
{
    struct scheduler *s = start(2, 100, 100, 0);
    struct sched_partition *p = scheduler_partition_add(s, "hsqb.actions", 0);
    pthread_t th;

    (void)state;
    T.mode = M_PENDING;
    assert_int_equal(submit(s, p, 0, 5, "k", NULL), SCHED_ACCEPTED);
    assert_int_equal(pthread_create(&th, NULL, complete_later, (void *)handed(0)), 0);
    scheduler_free(s);
    assert_int_equal(atomic_load(&T.msgs[0].released), 1); /* released before free returned */
    pthread_join(th, NULL);
}

static void test_revoke_drops_queued_and_waits_for_running(void **state)
{
    struct scheduler *s = start(1, 100, 100, 0);
    struct sched_partition *p = scheduler_partition_add(s, "hsqb.actions", 0);
    int want;

    (void)state;
    T.mode = M_GATE;
    assert_int_equal(submit(s, p, 0, 0, "g", NULL), SCHED_ACCEPTED);     /* running */
    assert_int_equal(submit(s, p, 1, 1, "g", NULL), SCHED_ACCEPTED);     /* waits for key */
    assert_int_equal(submit(s, p, 2, 2, "other", NULL), SCHED_ACCEPTED); /* waits for thread */
    while (T.nrec == 0)
        usleep(1000);
    scheduler_partition_revoke(s, p);
    assert_int_equal(atomic_load(&T.msgs[1].released), 1);
    assert_int_equal(atomic_load(&T.msgs[2].released), 1);
    assert_int_equal(atomic_load(&T.msgs[0].released), 0);
    assert_int_equal(scheduler_wait_idle(s, p, 50), -1); /* still running */
    assert_int_equal(submit(s, p, 3, 3, "x", &want), SCHED_REFUSED);
    permit(1);
    assert_int_equal(scheduler_wait_idle(s, p, 5000), 0);
    assert_int_equal(commit_of(s, p), 1); /* the running one finished; 1 and 2 redelivered */
    assert_int_equal(T.nrec, 1);
    scheduler_partition_remove(s, p);
    scheduler_free(s);
    assert_released_once(3);
}

/* A partition removed while its handler runs is freed once the handler returns. */
static void test_remove_while_running(void **state)
{
    struct scheduler *s = start(1, 100, 100, 0);
    struct sched_partition *p = scheduler_partition_add(s, "hsqb.actions", 0), *p2;

    (void)state;
    T.mode = M_GATE;
    assert_int_equal(submit(s, p, 0, 0, "g", NULL), SCHED_ACCEPTED);
    while (T.nrec == 0)
        usleep(1000);
    scheduler_partition_remove(s, p);
    assert_null(scheduler_partition_find(s, "hsqb.actions", 0));
    p2 = scheduler_partition_add(s, "hsqb.actions", 0); /* reassigned at once */
    assert_non_null(p2);
    assert_int_equal(scheduler_in_flight(s), 1);
    permit(1);
    assert_int_equal(scheduler_wait_idle(s, NULL, 5000), 0);
    assert_int_equal(commit_of(s, p2), OFFSETS_NONE);
    scheduler_free(s);
    assert_released_once(1);
}

static void test_stop_blocks_commit_and_fails_the_scheduler(void **state)
{
    struct scheduler *s = start(2, 100, 100, 0);
    struct sched_partition *p = scheduler_partition_add(s, "hsqb.actions", 0);

    (void)state;
    T.mode = M_STOP;
    T.stop_offset = 1;
    assert_int_equal(submit(s, p, 0, 0, "a", NULL), SCHED_ACCEPTED);
    assert_int_equal(submit(s, p, 1, 1, "a", NULL), SCHED_ACCEPTED);
    assert_int_equal(submit(s, p, 2, 2, "a", NULL), SCHED_ACCEPTED);
    assert_int_equal(submit(s, p, 3, 3, "b", NULL), SCHED_ACCEPTED);
    for (int64_t end = clock_mono_ms() + 5000; !scheduler_failed(s) && clock_mono_ms() < end;)
        usleep(1000);
    assert_true(scheduler_failed(s));
    wait_in_flight(s, p, 2);
    assert_int_equal(commit_of(s, p), 1);
    assert_int_equal(atomic_load(&T.msgs[2].released), 0); /* key a blocked after the stop */
    scheduler_free(s);                                     /* drops the rest */
    assert_released_once(4);
}

static void test_rewound_offset_is_refused(void **state)
{
    struct scheduler *s = start(1, 100, 100, 0);
    struct sched_partition *p = scheduler_partition_add(s, "hsqb.actions", 0);

    (void)state;
    T.mode = M_GATE;
    assert_null(scheduler_partition_add(s, "hsqb.actions", 0)); /* already tracked */
    assert_int_equal(submit(s, p, 0, 5, "a", NULL), SCHED_ACCEPTED);
    assert_int_equal(submit(s, p, 1, 5, "a", NULL), SCHED_REFUSED);
    assert_int_equal(submit(s, p, 2, 3, "a", NULL), SCHED_REFUSED);
    assert_int_equal(scheduler_wait_idle(s, p, 5000), 0);
    scheduler_free(s);
    assert_int_equal(atomic_load(&T.msgs[0].released), 1);
    assert_int_equal(atomic_load(&T.msgs[1].released), 0);
}

/* Shutdown with work queued, waiting on a key and waiting on a retry timer. */
static void test_free_releases_everything(void **state)
{
    struct scheduler *s = start(2, 100, 100, 0);
    struct sched_partition *p = scheduler_partition_add(s, "hsqb.actions", 0);

    (void)state;
    T.mode = M_RETRY;
    T.retry_offset = 0;
    assert_int_equal(submit(s, p, 0, 0, "r", NULL), SCHED_ACCEPTED);
    assert_int_equal(submit(s, p, 1, 1, "r", NULL), SCHED_ACCEPTED);
    assert_int_equal(submit(s, p, 2, 2, "b", NULL), SCHED_ACCEPTED);
    wait_in_flight(s, p, 2);
    scheduler_free(s);
    assert_released_once(3);
}

static atomic_int ctx_freed;
static int ctx_slots[4];

static int ctx_new(void *opaque, unsigned index, void **ctx, char *err, size_t errsz)
{
    (void)opaque;
    if (index == 3 && T.mode == M_STOP) {
        snprintf(err, errsz, "redis unreachable");
        return -1;
    }
    *ctx = &ctx_slots[index];
    return 0;
}

static void ctx_free(void *opaque, void *ctx)
{
    (void)opaque;
    assert_non_null(ctx);
    atomic_fetch_add(&ctx_freed, 1);
}

static void test_thread_contexts(void **state)
{
    struct scheduler_options o = {.threads = 4,
                                  .max_in_flight = 100,
                                  .max_in_flight_per_partition = 100,
                                  .handler = handler,
                                  .release = release,
                                  .thread_new = ctx_new,
                                  .thread_free = ctx_free};
    struct scheduler *s;
    struct sched_partition *p;
    char err[256];
    int i;

    (void)state;
    T.mode = M_PARALLEL;
    s = scheduler_new(&o, err, sizeof(err));
    assert_non_null(s);
    p = scheduler_partition_add(s, "hsqb.actions", 0);
    for (i = 0; i < 4; i++) {
        char key[4] = {'k', (char)('0' + i), 0};

        assert_int_equal(submit(s, p, i, i, key, NULL), SCHED_ACCEPTED);
    }
    assert_int_equal(scheduler_wait_idle(s, p, 5000), 0);
    for (i = 0; i < T.nrec; i++) /* each handler saw its own thread's context */
        for (int j = i + 1; j < T.nrec; j++)
            assert_ptr_not_equal(T.rec[i].ctx, T.rec[j].ctx);
    scheduler_free(s);
    assert_int_equal(atomic_load(&ctx_freed), 4);

    /* a failing constructor fails the start and frees the contexts already built */
    atomic_store(&ctx_freed, 0);
    T.mode = M_STOP;
    assert_null(scheduler_new(&o, err, sizeof(err)));
    assert_non_null(strstr(err, "redis unreachable"));
    assert_int_equal(atomic_load(&ctx_freed), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_same_key_in_offset_order_one_at_a_time, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_different_keys_run_concurrently, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partition_bound_pauses_with_hysteresis, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_total_bound_pauses_every_partition, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_bound_pauses_behind_a_stuck_message, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_retry_waits_without_a_thread_and_blocks_its_key, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_revoke_drops_queued_and_waits_for_running, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_remove_while_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_blocks_commit_and_fails_the_scheduler, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rewound_offset_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_releases_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_holds_key_and_offset_until_completed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_free_waits_for_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thread_contexts, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
