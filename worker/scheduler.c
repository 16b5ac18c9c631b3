/* scheduler.c - key-ordered parallel dispatch with retry timers and flow control.
 *
 * One mutex guards everything; the work done under it is a few pointer moves per message,
 * while a handler runs for milliseconds to seconds of HTTP, so contention is not the
 * limit. Handlers and release callbacks always run with the mutex released.
 *
 * Structures: a job per accepted message, linked into its partition's job list (so a
 * revoke finds everything of the partition), and, when it has a key, into that key's
 * FIFO. A key entry (hash table on partition + key bytes) exists while any job of the
 * key is in flight; its head is the one job allowed to be active, the others wait.
 * Active jobs are READY (in the FIFO ready list), RUNNING (on a worker thread),
 * RETRY_WAIT (in the timer heap) or STOPPED (a handler said HANDLER_STOP). A HELD job
 * (scheduler_submit_delayed) is in the timer heap from its submit on, whether or not it
 * heads its key; when due it becomes READY if it heads its key, else WAIT_KEY.
 *
 *   submit --> WAIT_KEY (key busy) --head finished--> READY
 *   submit --> READY --worker picks--> RUNNING --HANDLER_DONE--> gone (offset complete,
 *                ^                        |                       next of key READY)
 *                |                        +--HANDLER_RETRY--> RETRY_WAIT --due--+
 *                +---------------------------------------------------------------+
 *                                         +--HANDLER_STOP--> STOPPED (until dropped)
 *   submit_delayed --> HELD --due, key head--> READY;  --due, key busy--> WAIT_KEY
 *   scheduler_partition_revoke / scheduler_free: every job not RUNNING is dropped.
 *
 * HANDLER_PENDING leaves the job RUNNING without a thread: whoever the handler handed it
 * to (a producer's delivery report) calls scheduler_complete() with the disposition it
 * would have returned, from any thread, and the job goes on from there. Jobs counted in
 * s->pending keep their partition alive (p->running) and scheduler_free() waits for them.
 *
 * Timers need no thread of their own: idle workers sleep on the condition variable until
 * the earliest due time and move due jobs to the ready list themselves. When all
 * workers are busy a due job waits for the next free one, which it would anyway.
 */
#include "worker/scheduler.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "worker/offsets.h"

#define SCHED_MIN_WINDOW    1024
#define SCHED_HARD_WINDOW_X 4 /* tracker hard limit = soft window x this */

enum job_state { JOB_WAIT_KEY, JOB_READY, JOB_RUNNING, JOB_RETRY_WAIT, JOB_STOPPED, JOB_HELD };

struct sched_job {
    struct inbound_msg msg; /* msg.key points at keybuf */
    void *owner;
    msg_release_fn release; /* NULL: opt.release */
    size_t held_bytes;      /* while JOB_HELD */
    struct sched_partition *part;
    struct sched_key *k;             /* NULL: unordered */
    struct sched_job *knext;         /* next of the same key */
    struct sched_job *rprev, *rnext; /* ready list; also the release list */
    struct sched_job *pprev, *pnext; /* partition's job list */
    enum job_state state;
    int64_t due_ms;
    size_t heap_idx;
    char keybuf[];
};

struct sched_key {
    struct sched_key *hnext;       /* hash bucket chain */
    struct sched_key *prev, *next; /* partition's key list */
    struct sched_partition *part;
    struct sched_job *head, *tail;
    uint64_t hash;
    size_t len;
    char key[];
};

struct sched_partition {
    struct sched_partition *prev, *next; /* s->parts (not removed) */
    char *topic;
    int32_t partition;
    struct offsets offsets;
    struct sched_job *jobs;
    struct sched_key *keys;
    size_t in_flight, running;
    size_t held, held_bytes; /* JOB_HELD jobs (part of in_flight) */
    int revoked, removed, self_paused;
    int holds; /* has held a job: subject to the total held bound, wider window */
};

struct sched_worker {
    struct scheduler *s;
    pthread_t tid;
    unsigned index;
};

struct scheduler {
    struct scheduler_options opt;
    size_t window, low_window, low_pp, low_total;
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* workers: ready job or earlier timer */
    pthread_cond_t idle_cv; /* start-up and wait_idle */
    struct sched_partition *parts;
    struct sched_job *ready_head, *ready_tail;
    struct sched_job **heap;
    size_t heap_len, heap_cap;
    struct sched_key **buckets;
    size_t nbuckets;
    size_t in_flight;
    size_t held, held_bytes, max_held, max_held_pp, max_held_bytes;
    int total_paused, held_paused, stopping, failed;
    unsigned idle_waiters;
    long pending; /* HANDLER_PENDING not completed yet (may dip below 0 for a moment: a
                   * completion can come before its handler's return is seen) */
    struct sched_worker *workers;
    unsigned nstarted, nready;
    char start_err[256];
};

/* ---- keys --------------------------------------------------------------------------- */

static uint64_t key_hash(const struct sched_partition *p, const char *key, size_t len)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)(uintptr_t)p;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

static struct sched_key *key_find(struct scheduler *s, struct sched_partition *p, uint64_t h,
                                  const char *key, size_t len)
{
    struct sched_key *k;

    for (k = s->buckets[h & (s->nbuckets - 1)]; k; k = k->hnext)
        if (k->hash == h && k->part == p && k->len == len && memcmp(k->key, key, len) == 0)
            return k;
    return NULL;
}

static void key_insert(struct scheduler *s, struct sched_key *k)
{
    struct sched_key **b = &s->buckets[k->hash & (s->nbuckets - 1)];
    struct sched_partition *p = k->part;

    k->hnext = *b;
    *b = k;
    k->prev = NULL;
    k->next = p->keys;
    if (p->keys)
        p->keys->prev = k;
    p->keys = k;
}

static void key_delete(struct scheduler *s, struct sched_key *k)
{
    struct sched_key **pp = &s->buckets[k->hash & (s->nbuckets - 1)];

    while (*pp != k)
        pp = &(*pp)->hnext;
    *pp = k->hnext;
    if (k->prev)
        k->prev->next = k->next;
    else
        k->part->keys = k->next;
    if (k->next)
        k->next->prev = k->prev;
    free(k);
}

/* ---- ready list and timer heap ------------------------------------------------------ */

static void ready_push(struct scheduler *s, struct sched_job *j)
{
    j->state = JOB_READY;
    j->rnext = NULL;
    j->rprev = s->ready_tail;
    if (s->ready_tail)
        s->ready_tail->rnext = j;
    else
        s->ready_head = j;
    s->ready_tail = j;
    pthread_cond_signal(&s->work_cv);
}

static void ready_unlink(struct scheduler *s, struct sched_job *j)
{
    if (j->rprev)
        j->rprev->rnext = j->rnext;
    else
        s->ready_head = j->rnext;
    if (j->rnext)
        j->rnext->rprev = j->rprev;
    else
        s->ready_tail = j->rprev;
    j->rprev = j->rnext = NULL;
}

static void heap_set(struct scheduler *s, size_t i, struct sched_job *j)
{
    s->heap[i] = j;
    j->heap_idx = i;
}

static void heap_up(struct scheduler *s, size_t i)
{
    struct sched_job *j = s->heap[i];

    while (i > 0 && s->heap[(i - 1) / 2]->due_ms > j->due_ms) {
        heap_set(s, i, s->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(s, i, j);
}

static void heap_down(struct scheduler *s, size_t i)
{
    struct sched_job *j = s->heap[i];

    for (;;) {
        size_t c = 2 * i + 1;

        if (c >= s->heap_len)
            break;
        if (c + 1 < s->heap_len && s->heap[c + 1]->due_ms < s->heap[c]->due_ms)
            c++;
        if (s->heap[c]->due_ms >= j->due_ms)
            break;
        heap_set(s, i, s->heap[c]);
        i = c;
    }
    heap_set(s, i, j);
}

/* Capacity is reserved at submit (heap_reserve), so a push cannot fail. */
static void heap_push(struct scheduler *s, struct sched_job *j)
{
    s->heap[s->heap_len++] = j;
    heap_up(s, s->heap_len - 1);
}

static void heap_remove(struct scheduler *s, struct sched_job *j)
{
    size_t i = j->heap_idx;

    struct sched_job *m;

    s->heap_len--;
    if (i == s->heap_len)
        return;
    m = s->heap[s->heap_len];
    heap_set(s, i, m);
    heap_down(s, i);
    heap_up(s, m->heap_idx);
}

static int heap_reserve(struct scheduler *s, size_t n)
{
    struct sched_job **h;
    size_t cap;

    if (n <= s->heap_cap)
        return 0;
    cap = s->heap_cap ? s->heap_cap * 2 : 64;
    while (cap < n)
        cap *= 2;
    h = realloc(s->heap, cap * sizeof(*h));
    if (!h)
        return -1;
    s->heap = h;
    s->heap_cap = cap;
    return 0;
}

static void flow_update(struct scheduler *s, struct sched_partition *p);

/* j leaves JOB_HELD: it no longer counts against the held bounds. */
static void unhold(struct scheduler *s, struct sched_job *j)
{
    struct sched_partition *p = j->part;

    p->held--;
    p->held_bytes -= j->held_bytes;
    s->held--;
    s->held_bytes -= j->held_bytes;
    j->held_bytes = 0;
    flow_update(s, p);
}

/* Moves every due timer to the ready list; returns the next due time or -1. */
static int64_t fire_timers(struct scheduler *s, int64_t now)
{
    while (s->heap_len > 0 && s->heap[0]->due_ms <= now) {
        struct sched_job *j = s->heap[0];

        heap_remove(s, j);
        if (j->state == JOB_HELD) {
            unhold(s, j);
            if (j->k && j->k->head != j) {
                j->state = JOB_WAIT_KEY; /* its key's head finishing makes it ready */
                continue;
            }
        }
        ready_push(s, j);
    }
    return s->heap_len > 0 ? s->heap[0]->due_ms : -1;
}

/* ---- flow control and bookkeeping --------------------------------------------------- */

/* Held jobs count against their own bounds, not the in-flight ones: a retry partition
 * full of records waiting for their time must not pause the main topic. A partition that
 * holds jobs gets a wider offset window (held jobs keep it open for up to hold_max). */
static void flow_update(struct scheduler *s, struct sched_partition *p)
{
    size_t w = offsets_window(&p->offsets);
    size_t active = p->in_flight - p->held, total = s->in_flight - s->held;
    size_t window = s->window + (p->holds ? s->max_held_pp : 0);

    if (active >= s->opt.max_in_flight_per_partition || w >= window || p->held >= s->max_held_pp)
        p->self_paused = 1;
    else if (active <= s->low_pp && w <= window / 2 && p->held <= s->max_held_pp / 2)
        p->self_paused = 0;
    if (total >= s->opt.max_in_flight)
        s->total_paused = 1;
    else if (total <= s->low_total)
        s->total_paused = 0;
    if (s->held >= s->max_held || s->held_bytes >= s->max_held_bytes)
        s->held_paused = 1;
    else if (s->held <= s->max_held / 2 && s->held_bytes <= s->max_held_bytes / 2)
        s->held_paused = 0;
}

static int want_pause_locked(const struct scheduler *s, const struct sched_partition *p)
{
    return p->self_paused || s->total_paused || (p->holds && s->held_paused);
}

static void part_destroy(struct sched_partition *p)
{
    offsets_release(&p->offsets);
    free(p->topic);
    free(p);
}

/* Takes j out of flight (not its key chain) and puts it on *rel for release. */
static void job_retire(struct scheduler *s, struct sched_job *j, struct sched_job **rel)
{
    struct sched_partition *p = j->part;

    if (j->pprev)
        j->pprev->pnext = j->pnext;
    else
        p->jobs = j->pnext;
    if (j->pnext)
        j->pnext->pprev = j->pprev;
    p->in_flight--;
    s->in_flight--;
    flow_update(s, p);
    j->rnext = *rel;
    *rel = j;
    if (s->idle_waiters > 0)
        pthread_cond_broadcast(&s->idle_cv);
}

static void release_all(struct scheduler *s, struct sched_job *rel)
{
    while (rel) {
        struct sched_job *next = rel->rnext;

        if (rel->release)
            rel->release(rel->owner);
        else if (s->opt.release)
            s->opt.release(rel->owner);
        free(rel);
        rel = next;
    }
}

/* Drops every job of p that is not running (they go on *rel); see the state diagram. */
static void drop_idle_jobs(struct scheduler *s, struct sched_partition *p, struct sched_job **rel)
{
    struct sched_key *k, *knext;
    struct sched_job *j, *jnext;

    for (k = p->keys; k; k = knext) {
        knext = k->next;
        if (k->head->state == JOB_RUNNING) {
            k->head->knext = NULL;
            k->tail = k->head;
        } else {
            key_delete(s, k);
        }
    }
    for (j = p->jobs; j; j = jnext) {
        jnext = j->pnext;
        if (j->state == JOB_RUNNING)
            continue;
        if (j->state == JOB_READY) {
            ready_unlink(s, j);
        } else if (j->state == JOB_RETRY_WAIT) {
            heap_remove(s, j);
        } else if (j->state == JOB_HELD) {
            heap_remove(s, j);
            unhold(s, j);
        }
        j->k = NULL;
        job_retire(s, j, rel);
    }
}

/* A running job's handler returned d. Called with the lock held. */
static void job_finish(struct scheduler *s, struct sched_job *j, enum handler_disposition d,
                       int64_t delay_ms, struct sched_job **rel)
{
    struct sched_partition *p = j->part;
    int live = !p->revoked && !s->stopping;

    p->running--;
    if (d == HANDLER_STOP && live) {
        j->state = JOB_STOPPED;
        s->failed = 1;
        log_error("handler stopped the worker at %s/%d offset %lld; its offset is not committed",
                  p->topic, (int)p->partition, (long long)j->msg.offset);
        return;
    }
    if (d == HANDLER_RETRY && live) {
        j->state = JOB_RETRY_WAIT;
        j->due_ms = clock_mono_ms() + (delay_ms > 0 ? delay_ms : 0);
        heap_push(s, j);
        if (s->heap[0] == j)
            pthread_cond_signal(&s->work_cv); /* an idle worker re-arms its timed wait */
        return;
    }
    if (d == HANDLER_DONE && !p->removed &&
        offsets_complete(&p->offsets, j->msg.offset) != OFFSETS_OK)
        log_error("offset tracker: %s/%d offset %lld completed but was not in flight", p->topic,
                  (int)p->partition, (long long)j->msg.offset);
    if (j->k) {
        struct sched_key *k = j->k;

        k->head = j->knext;
        if (!k->head)
            key_delete(s, k);
        else if (live && k->head->state == JOB_WAIT_KEY) /* a HELD one waits its time */
            ready_push(s, k->head);
    }
    job_retire(s, j, rel);
    if (p->removed && p->in_flight == 0)
        part_destroy(p);
}

/* ---- worker threads ----------------------------------------------------------------- */

static void *worker_main(void *opaque)
{
    struct sched_worker *w = opaque;
    struct scheduler *s = w->s;
    void *ctx = NULL;
    char err[256] = "";
    int rc = 0;

    if (s->opt.thread_new)
        rc = s->opt.thread_new(s->opt.opaque, w->index, &ctx, err, sizeof(err));
    pthread_mutex_lock(&s->mu);
    s->nstarted++;
    if (rc == 0)
        s->nready++;
    else if (s->start_err[0] == '\0')
        snprintf(s->start_err, sizeof(s->start_err), "worker thread %u: %.200s", w->index,
                 err[0] ? err : "context constructor failed");
    pthread_cond_broadcast(&s->idle_cv);
    if (rc != 0) {
        pthread_mutex_unlock(&s->mu);
        return NULL;
    }
    while (!s->stopping) {
        int64_t next = fire_timers(s, clock_mono_ms());
        struct sched_job *j = s->ready_head, *rel = NULL;
        enum handler_disposition d;
        int64_t delay = 0;

        if (!j) {
            if (next < 0) {
                pthread_cond_wait(&s->work_cv, &s->mu);
            } else {
                struct timespec ts;

                clock_timespec(next, &ts);
                pthread_cond_timedwait(&s->work_cv, &s->mu, &ts);
            }
            continue;
        }
        ready_unlink(s, j);
        j->state = JOB_RUNNING;
        j->msg.dispatch_count++;
        j->part->running++;
        pthread_mutex_unlock(&s->mu);

        j->msg.sched = s;
        d = s->opt.handler(s->opt.opaque, ctx, &j->msg, &delay);

        pthread_mutex_lock(&s->mu);
        if (d == HANDLER_PENDING) { /* j may be completed, even freed, already */
            s->pending++;
            continue;
        }
        job_finish(s, j, d, delay, &rel);
        if (rel) {
            pthread_mutex_unlock(&s->mu);
            release_all(s, rel);
            pthread_mutex_lock(&s->mu);
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (s->opt.thread_free)
        s->opt.thread_free(s->opt.opaque, ctx);
    return NULL;
}

void scheduler_complete(struct scheduler *s, const struct inbound_msg *msg,
                        enum handler_disposition d, int64_t delay_ms)
{
    struct sched_job *j = (struct sched_job *)(void *)((char *)(uintptr_t)msg -
                                                       offsetof(struct sched_job, msg));
    struct sched_job *rel = NULL;

    if (d == HANDLER_PENDING) { /* a bug of the caller: never leave it running */
        log_error("scheduler_complete called with HANDLER_PENDING; stopping");
        d = HANDLER_STOP;
    }
    pthread_mutex_lock(&s->mu);
    job_finish(s, j, d, delay_ms, &rel);
    pthread_mutex_unlock(&s->mu);
    release_all(s, rel);
    /* only now may scheduler_free() go on: release_all() still used s */
    pthread_mutex_lock(&s->mu);
    s->pending--;
    if (s->idle_waiters > 0)
        pthread_cond_broadcast(&s->idle_cv);
    pthread_mutex_unlock(&s->mu);
}

/* ---- public API --------------------------------------------------------------------- */

static void stop_and_join(struct scheduler *s, unsigned nthreads)
{
    struct sched_partition *p;
    struct sched_job *rel = NULL;
    unsigned i;

    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    for (p = s->parts; p; p = p->next)
        drop_idle_jobs(s, p, &rel);
    pthread_cond_broadcast(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
    release_all(s, rel);
    for (i = 0; i < nthreads; i++)
        pthread_join(s->workers[i].tid, NULL);
    /* handed-on messages: their owners complete them (an asynchronous send's report
     * comes within its timeout, at once after a purge) */
    pthread_mutex_lock(&s->mu);
    s->idle_waiters++;
    while (s->pending > 0)
        pthread_cond_wait(&s->idle_cv, &s->mu);
    s->idle_waiters--;
    pthread_mutex_unlock(&s->mu);
}

static void destroy(struct scheduler *s)
{
    while (s->parts) {
        struct sched_partition *p = s->parts;

        s->parts = p->next;
        part_destroy(p); /* no jobs left: every thread is joined and idle jobs dropped */
    }
    pthread_cond_destroy(&s->work_cv);
    pthread_cond_destroy(&s->idle_cv);
    pthread_mutex_destroy(&s->mu);
    free(s->heap);
    free(s->buckets);
    free(s->workers);
    free(s);
}

struct scheduler *scheduler_new(const struct scheduler_options *opt, char *errstr, size_t errsz)
{
    struct scheduler *s = NULL;
    unsigned i, created = 0;

    if (opt->threads < 1 || opt->max_in_flight < 1 || opt->max_in_flight_per_partition < 1 ||
        !opt->handler) {
        snprintf(errstr, errsz, "scheduler: threads, bounds and handler are required");
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (!s)
        goto nomem;
    s->opt = *opt;
    s->window = opt->max_window;
    if (s->window == 0) {
        s->window = 4 * opt->max_in_flight_per_partition;
        if (s->window < SCHED_MIN_WINDOW)
            s->window = SCHED_MIN_WINDOW;
    }
    s->low_window = s->window / 2;
    s->low_pp = opt->max_in_flight_per_partition / 2;
    s->max_held = opt->max_held ? opt->max_held : SCHED_DEFAULT_MAX_HELD;
    s->max_held_pp =
        opt->max_held_per_partition ? opt->max_held_per_partition : SCHED_DEFAULT_MAX_HELD_PP;
    s->max_held_bytes = opt->max_held_bytes ? opt->max_held_bytes : SCHED_DEFAULT_MAX_HELD_SIZE;
    s->low_total = opt->max_in_flight / 2;
    for (s->nbuckets = 64; s->nbuckets < 2 * opt->max_in_flight && s->nbuckets < (1u << 20);)
        s->nbuckets *= 2;
    s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
    s->workers = calloc(opt->threads, sizeof(*s->workers));
    if (!s->buckets || !s->workers || heap_reserve(s, 64) < 0) {
        free(s->buckets);
        free(s->workers);
        free(s->heap);
        free(s);
        goto nomem;
    }
    pthread_mutex_init(&s->mu, NULL);
    clock_cond_init(&s->work_cv);
    clock_cond_init(&s->idle_cv);

    for (i = 0; i < opt->threads; i++) {
        int rc;

        s->workers[i].s = s;
        s->workers[i].index = i;
        rc = pthread_create(&s->workers[i].tid, NULL, worker_main, &s->workers[i]);
        if (rc != 0) {
            pthread_mutex_lock(&s->mu);
            snprintf(s->start_err, sizeof(s->start_err), "pthread_create: %s", strerror(rc));
            pthread_mutex_unlock(&s->mu);
            break;
        }
        created++;
    }
    pthread_mutex_lock(&s->mu);
    while (s->nstarted < created)
        pthread_cond_wait(&s->idle_cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    if (created < opt->threads || s->nready < created) {
        snprintf(errstr, errsz, "%s", s->start_err);
        stop_and_join(s, created);
        destroy(s);
        return NULL;
    }
    return s;

nomem:
    snprintf(errstr, errsz, "scheduler: out of memory");
    return NULL;
}

void scheduler_free(struct scheduler *s)
{
    if (!s)
        return;
    stop_and_join(s, s->opt.threads);
    destroy(s);
}

static struct sched_partition *part_find_locked(struct scheduler *s, const char *topic,
                                                int32_t partition)
{
    struct sched_partition *p;

    for (p = s->parts; p; p = p->next)
        if (p->partition == partition && strcmp(p->topic, topic) == 0)
            break;
    return p;
}

struct sched_partition *scheduler_partition_find(struct scheduler *s, const char *topic,
                                                 int32_t partition)
{
    struct sched_partition *p;

    pthread_mutex_lock(&s->mu);
    p = part_find_locked(s, topic, partition);
    pthread_mutex_unlock(&s->mu);
    return p;
}

struct sched_partition *scheduler_partition_add(struct scheduler *s, const char *topic,
                                                int32_t partition)
{
    struct sched_partition *p = calloc(1, sizeof(*p));

    if (!p || (p->topic = strdup(topic)) == NULL) {
        free(p);
        return NULL;
    }
    p->partition = partition;
    offsets_init(&p->offsets, (s->window + s->max_held_pp) * SCHED_HARD_WINDOW_X);
    pthread_mutex_lock(&s->mu);
    if (part_find_locked(s, topic, partition)) {
        pthread_mutex_unlock(&s->mu);
        part_destroy(p);
        return NULL;
    }
    p->next = s->parts;
    if (s->parts)
        s->parts->prev = p;
    s->parts = p;
    pthread_mutex_unlock(&s->mu);
    return p;
}

void scheduler_partition_revoke(struct scheduler *s, struct sched_partition *p)
{
    struct sched_job *rel = NULL;

    pthread_mutex_lock(&s->mu);
    p->revoked = 1;
    drop_idle_jobs(s, p, &rel);
    pthread_mutex_unlock(&s->mu);
    release_all(s, rel);
}

int scheduler_wait_idle(struct scheduler *s, struct sched_partition *p, int64_t timeout_ms)
{
    struct timespec ts;
    int rc = 0;

    clock_timespec(clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0), &ts);
    pthread_mutex_lock(&s->mu);
    s->idle_waiters++;
    while ((p ? p->in_flight : s->in_flight) > 0) {
        if (pthread_cond_timedwait(&s->idle_cv, &s->mu, &ts) == ETIMEDOUT) {
            rc = (p ? p->in_flight : s->in_flight) > 0 ? -1 : 0;
            break;
        }
    }
    s->idle_waiters--;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void scheduler_partition_remove(struct scheduler *s, struct sched_partition *p)
{
    struct sched_job *rel = NULL;
    int now;

    pthread_mutex_lock(&s->mu);
    p->revoked = 1;
    drop_idle_jobs(s, p, &rel);
    if (p->prev)
        p->prev->next = p->next;
    else
        s->parts = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->removed = 1;
    now = p->in_flight == 0;
    pthread_mutex_unlock(&s->mu);
    release_all(s, rel);
    if (now)
        part_destroy(p);
}

static enum sched_submit submit(struct scheduler *s, struct sched_partition *p,
                                const struct inbound_msg *msg, const struct sched_held *held,
                                int *want_pause, char *errstr, size_t errsz)
{
    void *owner = held->owner;
    msg_release_fn release = held->release;
    int64_t delay_ms = held->delay_ms > 0 ? held->delay_ms : 0;
    size_t bytes = held->bytes;
    size_t klen = msg->key ? msg->key_len : 0;
    struct sched_job *j = malloc(sizeof(*j) + klen + 1);
    struct sched_key *k = NULL, *newk = NULL;
    enum offsets_result r;
    uint64_t h = 0;

    if (!j) {
        snprintf(errstr, errsz, "scheduler: out of memory");
        return SCHED_ERROR;
    }
    memset(j, 0, sizeof(*j));
    j->msg = *msg;
    j->msg.dispatch_count = 0;
    if (msg->key) {
        memcpy(j->keybuf, msg->key, klen);
        j->keybuf[klen] = '\0';
        j->msg.key = j->keybuf;
    }
    j->owner = owner;
    j->release = release;
    j->part = p;

    pthread_mutex_lock(&s->mu);
    if (p->revoked || s->stopping) {
        pthread_mutex_unlock(&s->mu);
        free(j);
        return SCHED_REFUSED;
    }
    if (klen > 0) {
        h = key_hash(p, j->keybuf, klen);
        k = key_find(s, p, h, j->keybuf, klen);
        if (!k) {
            newk = malloc(sizeof(*newk) + klen);
            if (!newk)
                goto nomem;
        }
    }
    if (heap_reserve(s, s->in_flight + 1) < 0)
        goto nomem;
    r = offsets_dispatch(&p->offsets, msg->offset);
    if (r == OFFSETS_STALE) {
        pthread_mutex_unlock(&s->mu);
        free(newk);
        free(j);
        return SCHED_REFUSED;
    }
    if (r != OFFSETS_OK) {
        pthread_mutex_unlock(&s->mu);
        snprintf(errstr, errsz, "%s/%d offset %lld: offset window %s", p->topic, (int)p->partition,
                 (long long)msg->offset,
                 r == OFFSETS_FULL ? "full (one message is holding back too many)"
                                   : "out of memory");
        free(newk);
        free(j);
        return SCHED_ERROR;
    }
    j->pnext = p->jobs;
    if (p->jobs)
        p->jobs->pprev = j;
    p->jobs = j;
    p->in_flight++;
    s->in_flight++;
    if (delay_ms > 0) {
        j->held_bytes = bytes;
        p->held++;
        p->held_bytes += bytes;
        p->holds = 1;
        s->held++;
        s->held_bytes += bytes;
    }
    if (k) {
        j->k = k;
        j->state = JOB_WAIT_KEY;
        k->tail->knext = j;
        k->tail = j;
    } else {
        if (newk) {
            memset(newk, 0, sizeof(*newk));
            newk->part = p;
            newk->hash = h;
            newk->len = klen;
            memcpy(newk->key, j->keybuf, klen);
            newk->head = newk->tail = j;
            key_insert(s, newk);
            j->k = newk;
        }
        if (delay_ms <= 0)
            ready_push(s, j);
    }
    if (delay_ms > 0) {
        j->state = JOB_HELD;
        j->due_ms = clock_mono_ms() + delay_ms;
        heap_push(s, j);
        if (s->heap[0] == j)
            pthread_cond_signal(&s->work_cv); /* an idle worker re-arms its timed wait */
    }
    flow_update(s, p);
    if (want_pause)
        *want_pause = want_pause_locked(s, p);
    pthread_mutex_unlock(&s->mu);
    return SCHED_ACCEPTED;

nomem:
    pthread_mutex_unlock(&s->mu);
    free(newk);
    free(j);
    snprintf(errstr, errsz, "scheduler: out of memory");
    return SCHED_ERROR;
}

enum sched_submit scheduler_submit(struct scheduler *s, struct sched_partition *p,
                                   const struct inbound_msg *msg, void *owner, int *want_pause,
                                   char *errstr, size_t errsz)
{
    struct sched_held now = {.owner = owner};

    return submit(s, p, msg, &now, want_pause, errstr, errsz);
}

enum sched_submit scheduler_submit_delayed(struct scheduler *s, struct sched_partition *p,
                                           const struct inbound_msg *msg,
                                           const struct sched_held *h, int *want_pause,
                                           char *errstr, size_t errsz)
{
    return submit(s, p, msg, h, want_pause, errstr, errsz);
}

size_t scheduler_held(struct scheduler *s)
{
    size_t n;

    pthread_mutex_lock(&s->mu);
    n = s->held;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void scheduler_partition_state(struct scheduler *s, struct sched_partition *p, int *want_pause,
                               int64_t *commit_offset)
{
    pthread_mutex_lock(&s->mu);
    if (want_pause)
        *want_pause = want_pause_locked(s, p);
    if (commit_offset)
        *commit_offset = offsets_committable(&p->offsets);
    pthread_mutex_unlock(&s->mu);
}

size_t scheduler_in_flight(struct scheduler *s)
{
    size_t n;

    pthread_mutex_lock(&s->mu);
    n = s->in_flight;
    pthread_mutex_unlock(&s->mu);
    return n;
}

size_t scheduler_partition_in_flight(struct scheduler *s, struct sched_partition *p)
{
    size_t n;

    pthread_mutex_lock(&s->mu);
    n = p->in_flight;
    pthread_mutex_unlock(&s->mu);
    return n;
}

int scheduler_failed(struct scheduler *s)
{
    int f;

    pthread_mutex_lock(&s->mu);
    f = s->failed;
    pthread_mutex_unlock(&s->mu);
    return f;
}
