/* test_consumer.c - the Kafka runtime against a real Kafka-protocol broker (build/kafka-mock).
 *
 * What a user relies on: every event is handled, never before an earlier event of its
 * key was (no gap), never concurrently with one of its key, while partitions pause and
 * resume under the bounds and handlers ask for retries. A stop mid-stream (SIGTERM)
 * commits the completed prefix and the restarted member redelivers exactly the events
 * past it (at least once: the pipeline's Redis markers make that exactly once); the
 * offsets end up committed at the end of every partition, so a further restart gets
 * nothing. A member joining and leaving mid-stream (rebalances) loses nothing; the bounds
 * never pause a partition that has not delivered its first message. Also: the producer's
 * synchronous send with headers and its topic warm-up, and the consumer-lag hook.
 *
 * The mock refuses OffsetCommit while its group is joining (real Kafka accepts it while
 * preparing a rebalance), so a revoke's commit fails there and the rebalance test can
 * only bound the redeliveries. Its first join takes 3 s (the broker's initial rebalance
 * delay), a later one session.timeout.ms - 1 s: most of this test's ~20 s.
 *
 * Component test: it starts $BUILD/kafka-mock (default build/) on 127.0.0.1 in a private
 * directory and stops it at the end. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/log.h"
#include "worker/consumer.h"
#include "worker/producer.h"
#include "worker/settings.h"

#define NKEYS  24
#define MAXSEQ 64
#define NPART  6

static char tmpdir[256];
static char bootstrap[512];
static pid_t mock_pid = -1;
static struct producer *prod;

/* ---- the mock cluster and settings --------------------------------------------------- */

static const char *mock_path(void)
{
    static char path[512];
    const char *b = getenv("BUILD");

    snprintf(path, sizeof(path), "%s/kafka-mock", b != NULL && *b ? b : "build");
    if (access(path, X_OK) != 0)
        snprintf(path, sizeof(path), "build/kafka-mock");
    return path;
}

static int start_mock(void **state)
{
    char file[300], logf[300];
    int64_t end;
    FILE *f;

    (void)state;
    log_set_fd(2);
    log_set_level(LOG_ERROR); /* the mock's group refusals are expected warnings */
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/hsqb-test-consumer-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(file, sizeof(file), "%s/bootstrap", tmpdir);
    snprintf(logf, sizeof(logf), "%s/kafka-mock.log", tmpdir);
    mock_pid = fork();
    if (mock_pid == 0) {
        int out = open("/dev/null", O_WRONLY), err = open(logf, O_WRONLY | O_CREAT, 0600);

        prctl(PR_SET_PDEATHSIG, SIGTERM);
        dup2(out, 1);
        dup2(err, 2);
        execl(mock_path(), "kafka-mock", "--bootstrap-file", file, "--no-default-topics", "--topic",
              "t.basic:6", "--topic", "t.rebalance:6", "--topic", "t.results:1", "--topic",
              "t.fresh:6", (char *)NULL);
        _exit(127);
    }
    for (end = clock_mono_ms() + 10000; clock_mono_ms() < end; usleep(20000)) {
        f = fopen(file, "r");
        if (f == NULL)
            continue;
        if (fgets(bootstrap, sizeof(bootstrap), f) != NULL) {
            bootstrap[strcspn(bootstrap, "\r\n")] = '\0';
            fclose(f);
            break;
        }
        fclose(f);
    }
    if (bootstrap[0] == '\0') {
        fprintf(stderr, "kafka-mock (%s) did not start; see %s\n", mock_path(), logf);
        return -1;
    }
    return 0;
}

static int stop_mock(void **state)
{
    char cmd[300];

    (void)state;
    if (mock_pid > 0) {
        kill(mock_pid, SIGTERM);
        waitpid(mock_pid, NULL, 0);
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        return -1;
    return 0;
}

/* Settings as `hsqb-worker run` would load them from the environment. */
static struct config *settings(const char *group, const char *threads, const char *per_part,
                               const char *total)
{
    char brokers[600], grp[128], thr[64], pp[80], tot[80];
    char *envp[] = {brokers,
                    grp,
                    thr,
                    pp,
                    tot,
                    "HSQB_KAFKA_REVOKE_TIMEOUT=5s",
                    "HSQB_SHUTDOWN_DRAIN_TIMEOUT=5s",
                    "HSQB_KAFKA__AUTO_COMMIT_INTERVAL_MS=200",
                    "HSQB_KAFKA__STATISTICS_INTERVAL_MS=300",
                    "HSQB_KAFKA__SESSION_TIMEOUT_MS=3200",
                    "HSQB_KAFKA__HEARTBEAT_INTERVAL_MS=300",
                    "HSQB_KAFKA__TOPIC_METADATA_REFRESH_INTERVAL_MS=1000",
                    "HSQB_KAFKA__FETCH_WAIT_MAX_MS=50",
                    NULL};
    char *argv[] = {"run", NULL};
    struct config *cfg = NULL;
    char err[512];

    snprintf(brokers, sizeof(brokers), "HSQB_KAFKA_BROKERS=%s", bootstrap);
    snprintf(grp, sizeof(grp), "HSQB_KAFKA_GROUP_ID=%s", group);
    snprintf(thr, sizeof(thr), "HSQB_WORKER_THREADS=%s", threads);
    snprintf(pp, sizeof(pp), "HSQB_WORKER_MAX_IN_FLIGHT_PER_PARTITION=%s", per_part);
    snprintf(tot, sizeof(tot), "HSQB_WORKER_MAX_IN_FLIGHT=%s", total);
    if (settings_load_flags(&cfg, 1, argv, envp, SETTINGS_SKIP_REQUIRED, err, sizeof(err)) < 0)
        fail_msg("settings: %s", err);
    return cfg;
}

/* ---- what the handler saw ------------------------------------------------------------ */

struct run {
    pthread_mutex_t mu;
    int highest[NKEYS];          /* highest sequence number handled per key, -1 none */
    int done[3][NKEYS][MAXSEQ];  /* HANDLER_DONE count per consumer (tag) and event */
    int32_t part[NKEYS][MAXSEQ]; /* where each event lives */
    int64_t off[NKEYS][MAXSEQ];
    atomic_int busy[NKEYS]; /* handlers of the key running now */
    int gaps, overlaps, bad;
    atomic_int handled;       /* HANDLER_DONE total, redeliveries included */
    atomic_int distinct;      /* events handled at least once */
    atomic_int handled_by[3]; /* per consumer (tag) */
    int retry_every;          /* seq % retry_every == 0: HANDLER_RETRY on the first run */
    int sleep_us;
    atomic_int ctx_made, ctx_freed;
    atomic_llong max_paused, lag_reports;
};

struct member {
    struct run *run;
    int tag;
    struct consumer *c;
    pthread_t tid;
    int rc;
    char err[512];
    atomic_llong assigned;
};

static enum handler_disposition handle(void *opaque, void *ctx, const struct inbound_msg *m,
                                       int64_t *retry_delay_ms)
{
    struct member *mb = opaque;
    struct run *r = mb->run;
    char buf[32];
    int k, seq;

    if (ctx == NULL || m->value_len == 0 || m->value_len >= sizeof(buf) || m->key == NULL) {
        pthread_mutex_lock(&r->mu);
        r->bad++;
        pthread_mutex_unlock(&r->mu);
        return HANDLER_DONE;
    }
    memcpy(buf, m->value, m->value_len);
    buf[m->value_len] = '\0';
    if (sscanf(buf, "k%d:%d", &k, &seq) != 2 || k < 0 || k >= NKEYS || seq < 0 || seq >= MAXSEQ ||
        strncmp(buf, m->key, m->key_len) != 0) {
        pthread_mutex_lock(&r->mu);
        r->bad++;
        pthread_mutex_unlock(&r->mu);
        return HANDLER_DONE;
    }
    if (r->retry_every > 0 && seq % r->retry_every == 0 && m->dispatch_count == 1) {
        *retry_delay_ms = 30;
        return HANDLER_RETRY;
    }
    if (atomic_fetch_add(&r->busy[k], 1) != 0) {
        pthread_mutex_lock(&r->mu);
        r->overlaps++;
        pthread_mutex_unlock(&r->mu);
    }
    if (r->sleep_us > 0)
        usleep((useconds_t)r->sleep_us);
    pthread_mutex_lock(&r->mu);
    if (seq > r->highest[k] + 1)
        r->gaps++; /* an earlier event of the key was never handled */
    if (seq > r->highest[k])
        r->highest[k] = seq;
    if (r->done[0][k][seq] + r->done[1][k][seq] + r->done[2][k][seq] == 0)
        atomic_fetch_add(&r->distinct, 1);
    r->done[mb->tag][k][seq]++;
    r->part[k][seq] = m->partition;
    r->off[k][seq] = m->offset;
    pthread_mutex_unlock(&r->mu);
    atomic_fetch_sub(&r->busy[k], 1);
    atomic_fetch_add(&r->handled_by[mb->tag], 1);
    atomic_fetch_add(&r->handled, 1);
    return HANDLER_DONE;
}

static int ctx_new(void *opaque, unsigned index, void **ctx, char *err, size_t errsz)
{
    struct member *mb = opaque;

    (void)err;
    (void)errsz;
    *ctx = malloc(16); /* stands for the pipeline's http client + redis connection */
    if (*ctx == NULL)
        return -1;
    snprintf(*ctx, 16, "thread %u", index);
    atomic_fetch_add(&mb->run->ctx_made, 1);
    return 0;
}

static void ctx_free(void *opaque, void *ctx)
{
    struct member *mb = opaque;

    free(ctx);
    atomic_fetch_add(&mb->run->ctx_freed, 1);
}

static void hook_paused(void *opaque, int64_t n)
{
    struct member *mb = opaque;

    if (n > atomic_load(&mb->run->max_paused))
        atomic_store(&mb->run->max_paused, n);
}

static void hook_assigned(void *opaque, int64_t n)
{
    struct member *mb = opaque;

    atomic_store(&mb->assigned, n);
}

static void hook_lag(void *opaque, const char *topic, int32_t partition, int64_t lag)
{
    struct member *mb = opaque;

    (void)topic;
    (void)partition;
    if (lag >= 0)
        atomic_fetch_add(&mb->run->lag_reports, 1);
}

static void *member_main(void *opaque)
{
    struct member *mb = opaque;

    mb->rc = consumer_run(mb->c, mb->err, sizeof(mb->err));
    return NULL;
}

static void member_start(struct member *mb, struct run *r, int tag, const char *group,
                         const char *topic, const char *threads, const char *per_part,
                         const char *total)
{
    const char *topics[] = {topic, NULL};
    struct consumer_hooks hooks = {
        .paused = hook_paused, .assigned = hook_assigned, .lag = hook_lag};
    struct config *cfg = settings(group, threads, per_part, total);
    struct consumer_params p = {.cfg = cfg,
                                .topics = topics,
                                .handler = handle,
                                .thread_new = ctx_new,
                                .thread_free = ctx_free,
                                .producer = prod,
                                .hooks = &hooks};
    char err[512];

    memset(mb, 0, sizeof(*mb));
    mb->run = r;
    mb->tag = tag;
    p.opaque = mb;
    hooks.opaque = mb;
    mb->c = consumer_new(&p, err, sizeof(err));
    config_free(cfg);
    if (mb->c == NULL)
        fail_msg("consumer_new: %s", err);
    assert_int_equal(pthread_create(&mb->tid, NULL, member_main, mb), 0);
}

static void member_stop(struct member *mb)
{
    consumer_stop(mb->c);
    pthread_join(mb->tid, NULL);
    if (mb->rc != 0)
        fail_msg("consumer_run: %s", mb->err);
    consumer_free(mb->c);
    mb->c = NULL;
}

/* Waits until n distinct events were handled and the total (redeliveries included)
 * reached total. */
static void wait_handled(struct run *r, int n, int total, int64_t timeout_ms)
{
    int64_t end = clock_mono_ms() + timeout_ms;

    while ((atomic_load(&r->distinct) < n || atomic_load(&r->handled) < total) &&
           clock_mono_ms() < end)
        usleep(5000);
    if (atomic_load(&r->distinct) < n || atomic_load(&r->handled) < total)
        fail_msg("handled %d distinct of %d, %d in total of %d, in %lld ms",
                 atomic_load(&r->distinct), n, atomic_load(&r->handled), total,
                 (long long)timeout_ms);
}

static void wait_assigned(struct member *mb, int64_t n)
{
    int64_t end = clock_mono_ms() + 10000;

    while (atomic_load(&mb->assigned) != n && clock_mono_ms() < end)
        usleep(10000);
    assert_int_equal(atomic_load(&mb->assigned), n);
}

static struct run R;
static struct member MA, MB; /* static: a failed assertion must not free what threads use */

static void run_init(struct run *r)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    for (int k = 0; k < NKEYS; k++)
        r->highest[k] = -1;
}

static int times_done(const struct run *r, int k, int s)
{
    return r->done[0][k][s] + r->done[1][k][s] + r->done[2][k][s];
}

/* Every event handled at least once, none before an earlier one of its key, none
 * concurrently with one of its key. Returns the number of redeliveries. */
static int assert_complete(struct run *r, int per_key)
{
    int k, s, dups = 0;

    assert_int_equal(r->bad, 0);
    assert_int_equal(r->overlaps, 0);
    assert_int_equal(r->gaps, 0);
    for (k = 0; k < NKEYS; k++) {
        for (s = 0; s < per_key; s++) {
            if (times_done(r, k, s) < 1)
                fail_msg("event k%02d:%d never handled", k, s);
            dups += times_done(r, k, s) - 1;
        }
    }
    assert_int_equal(atomic_load(&r->handled), NKEYS * per_key + dups);
    return dups;
}

/* ---- producing ------------------------------------------------------------------------ */

struct prod_job {
    const char *topic;
    int first_key, per_key;
};

static void *produce_keys(void *opaque)
{
    struct prod_job *j = opaque;
    char key[16], val[32], err[256];

    /* one thread owns a key, so each key's events are sent (and land) in order */
    for (int s = 0; s < j->per_key; s++) {
        for (int k = j->first_key; k < NKEYS; k += 4) {
            snprintf(key, sizeof(key), "k%02d", k);
            snprintf(val, sizeof(val), "k%02d:%d", k, s);
            if (producer_send_sync(
                    prod,
                    &(struct producer_msg){j->topic, key, strlen(key), val, strlen(val), NULL, 0},
                    10000, err, sizeof(err)) != 0) {
                fprintf(stderr, "produce: %s\n", err);
                return (void *)1;
            }
        }
    }
    return NULL;
}

static void produce_events(const char *topic, int per_key)
{
    pthread_t t[4];
    struct prod_job j[4];
    void *rv;
    int i;

    for (i = 0; i < 4; i++) {
        j[i] = (struct prod_job){.topic = topic, .first_key = i, .per_key = per_key};
        assert_int_equal(pthread_create(&t[i], NULL, produce_keys, &j[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], &rv), 0);
        assert_null(rv);
    }
}

/* The group's committed offset (-1001 when none) and the end offset of each partition. */
static void committed_offsets(const char *group, const char *topic, int64_t committed[NPART],
                              int64_t end[NPART])
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(NPART);
    char err[256];
    rd_kafka_t *rk;
    int i;

    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    assert_non_null(rk);
    for (i = 0; i < NPART; i++)
        rd_kafka_topic_partition_list_add(l, topic, i);
    assert_int_equal(rd_kafka_committed(rk, l, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    for (i = 0; i < NPART; i++) {
        int64_t lo;

        assert_int_equal(rd_kafka_query_watermark_offsets(rk, topic, i, &lo, &end[i], 10000),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
        committed[i] = l->elems[i].offset;
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
}

static void assert_committed_at_end(const char *group, const char *topic)
{
    int64_t committed[NPART], end[NPART];

    committed_offsets(group, topic, committed, end);
    for (int i = 0; i < NPART; i++)
        if (end[i] > 0 && committed[i] != end[i])
            fail_msg("%s/%d committed %lld, end offset %lld", topic, i, (long long)committed[i],
                     (long long)end[i]);
}

/* ---- tests ---------------------------------------------------------------------------- */

/* Events flow with pauses, resumes and retries; a stop mid-stream (SIGTERM) commits the
 * completed prefix; the restarted member redelivers exactly the events past it and
 * finishes; the offsets end up committed at the end of every partition; a third start
 * finds nothing to do. */
static void test_stop_restart_in_key_order_committed_to_the_end(void **state)
{
    struct run *r = &R;
    int64_t committed[NPART], end[NPART];
    int k, s, expect_dups = 0;
    const int per_key = 16, n = NKEYS * 16; /* 384 events */

    (void)state;
    run_init(r);
    r->retry_every = 7;
    r->sleep_us = 2000;
    produce_events("t.basic", per_key);
    /* 4 threads and small bounds: partitions pause and resume a lot */
    member_start(&MA, r, 0, "g.basic", "t.basic", "4", "16", "64");
    wait_handled(r, 150, 0, 15000);
    member_stop(&MA);
    assert_true(atomic_load(&r->distinct) < n);
    committed_offsets("g.basic", "t.basic", committed, end);
    for (k = 0; k < NKEYS; k++)
        for (s = 0; s < per_key; s++)
            if (r->done[0][k][s] > 0 && r->off[k][s] >= committed[r->part[k][s]])
                expect_dups++; /* done, but behind an unfinished event: delivered again */

    member_start(&MB, r, 1, "g.basic", "t.basic", "4", "16", "64");
    wait_handled(r, n, n + expect_dups, 15000);
    member_stop(&MB);
    assert_int_equal(assert_complete(r, per_key), expect_dups);
    for (k = 0; k < NKEYS; k++)
        for (s = 0; s < per_key; s++)
            if (r->done[1][k][s] > 0 && r->off[k][s] < committed[r->part[k][s]])
                fail_msg("k%02d:%d, below the committed offset, was delivered again", k, s);
    assert_true(atomic_load(&r->max_paused) > 0);
    assert_true(atomic_load(&r->lag_reports) > 0);
    assert_int_equal(atomic_load(&r->ctx_made), 8);
    assert_int_equal(atomic_load(&r->ctx_freed), 8);
    assert_committed_at_end("g.basic", "t.basic");

    /* a restarted member of the group finds nothing left to do */
    member_start(&MA, r, 2, "g.basic", "t.basic", "2", "16", "64");
    wait_assigned(&MA, NPART);
    usleep(500 * 1000);
    member_stop(&MA);
    assert_int_equal(atomic_load(&r->handled_by[2]), 0);
}

/* A second member joins mid-stream and takes half the partitions, then leaves again. */
static void test_rebalance_hands_over_without_loss(void **state)
{
    struct run *r = &R;
    const int per_key = 12, n = NKEYS * 12; /* 288 events */
    int dups, last;

    (void)state;
    run_init(r);
    r->sleep_us = 5000;
    r->retry_every = 11;
    produce_events("t.rebalance", per_key);
    member_start(&MA, r, 0, "g.rebalance", "t.rebalance", "4", "16", "64");
    wait_handled(r, 40, 0, 10000);
    member_start(&MB, r, 1, "g.rebalance", "t.rebalance", "4", "16", "64");
    wait_handled(r, n, 0, 15000);
    member_stop(&MB);
    wait_assigned(&MA, NPART); /* A takes everything back, redelivers what B left */
    do {
        last = atomic_load(&r->handled);
        usleep(300 * 1000);
    } while (atomic_load(&r->handled) != last);
    member_stop(&MA);
    dups = assert_complete(r, per_key);
    assert_true(atomic_load(&r->handled_by[1]) > 0); /* the newcomer got partitions */
    assert_true(dups <= n / 2); /* only what was uncommitted at each handover */
    assert_committed_at_end("g.rebalance", "t.rebalance");
}

/* The in-flight bound pauses what is fetching, never a partition that has delivered
 * nothing yet: pausing it could outdate the fetch start librdkafka queues for it (the
 * partition then stays assigned and never fetched). Every event here has one key, so one
 * partition of six is busy; the total bound (4) wants them all paused. */
static void test_bound_pauses_only_partitions_that_fetch(void **state)
{
    const int n = 40;
    char val[32], err[256];
    struct run *r = &R;
    long long paused;
    int s;

    (void)state;
    run_init(r);
    r->sleep_us = 20000;
    for (s = 0; s < n; s++) {
        snprintf(val, sizeof(val), "k00:%d", s);
        assert_int_equal(producer_send_sync(
                             prod,
                             &(struct producer_msg){"t.fresh", "k00", 3, val, strlen(val), NULL, 0},
                             10000, err, sizeof(err)),
                         0);
    }
    member_start(&MA, r, 0, "g.fresh", "t.fresh", "1", "4", "4");
    wait_assigned(&MA, NPART);
    wait_handled(r, n, 0, 20000);
    paused = atomic_load(&r->max_paused); /* before the stop, which pauses everything */
    member_stop(&MA);
    assert_int_equal(r->bad, 0);
    assert_int_equal(r->gaps, 0);
    assert_int_equal(paused, 1); /* the busy one, and only it */
}

/* producer_send_sync returns only once the broker has the message, headers included. */
static void test_producer_send_sync_with_headers(void **state)
{
    const struct kafka_header h[] = {
        {"hsqb-error-code", "RETRIES_EXHAUSTED"}, {"hsqb-attempts", "3"}, {"hsqb-empty", NULL}};
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_message_t *m = NULL;
    rd_kafka_headers_t *hdrs;
    const void *v;
    size_t vlen;
    int64_t lo, hi, end;
    char err[256];
    rd_kafka_t *rk;

    (void)state;
    assert_int_equal(
        producer_send_sync(prod,
                           &(struct producer_msg){"t.results", "k", 1, "{\"ok\":true}", 11, h, 3},
                           5000, err, sizeof(err)),
        0);
    assert_int_equal(producer_send_sync(prod,
                                        &(struct producer_msg){"t.results", "k", 1, "x", 1, h, 65},
                                        5000, err, sizeof(err)),
                     -1); /* over PRODUCER_MAX_HEADERS */

    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err));
    rd_kafka_conf_set(conf, "group.id", "g.results", err, sizeof(err));
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    assert_non_null(rk);
    assert_int_equal(rd_kafka_query_watermark_offsets(rk, "t.results", 0, &lo, &hi, 5000), 0);
    assert_int_equal(hi, 1); /* acknowledged means stored by the broker */
    rd_kafka_topic_partition_list_add(l, "t.results", 0)->offset = 0;
    assert_int_equal(rd_kafka_assign(rk, l), 0);
    for (end = clock_mono_ms() + 10000; m == NULL && clock_mono_ms() < end;) {
        m = rd_kafka_consumer_poll(rk, 100);
        if (m != NULL && m->err) {
            rd_kafka_message_destroy(m);
            m = NULL;
        }
    }
    assert_non_null(m);
    assert_int_equal(m->len, 11);
    assert_int_equal(rd_kafka_message_headers(m, &hdrs), 0);
    assert_int_equal(rd_kafka_header_get_last(hdrs, "hsqb-error-code", &v, &vlen), 0);
    assert_memory_equal(v, "RETRIES_EXHAUSTED", vlen);
    assert_int_equal(rd_kafka_header_get_last(hdrs, "hsqb-attempts", &v, &vlen), 0);
    assert_memory_equal(v, "3", vlen);
    assert_int_equal(rd_kafka_header_get_last(hdrs, "hsqb-empty", &v, &vlen), 0);
    assert_null(v);
    rd_kafka_message_destroy(m);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

/* producer_warm fetches each output topic's metadata up front (the first send to a topic
 * would otherwise wait for librdkafka's next refresh) and says which one failed; a send
 * after it is delivered as before. */
static void test_producer_warm_knows_topics_and_names_failures(void **state)
{
    const char *ok[] = {"t.results", "t.basic"};
    const char *many[PRODUCER_MAX_WARM + 1];
    char err[256];
    size_t i;

    (void)state;
    err[0] = '\0';
    assert_int_equal(producer_warm(prod, ok, 2, 5000, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_int_equal(
        producer_send_sync(prod, &(struct producer_msg){"t.results", "k", 1, "w", 1, NULL, 0}, 5000,
                           err, sizeof(err)),
        0);
    /* (a topic the cluster lacks cannot be shown here: kafka-mock creates any topic a
     * metadata request names, whatever allow.auto.create.topics says) */
    /* no time left: every topic is still registered, the failure says timed out */
    const char *late[] = {"t.rebalance"};
    assert_int_equal(producer_warm(prod, late, 1, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "t.rebalance"));
    /* the handles it keeps are bounded */
    for (i = 0; i < PRODUCER_MAX_WARM + 1; i++)
        many[i] = "t.results";
    assert_int_equal(producer_warm(prod, many, PRODUCER_MAX_WARM + 1, 5000, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "more than"));
}

static int group_setup(void **state)
{
    struct config *cfg;
    char err[512];

    if (start_mock(state) < 0)
        return -1;
    cfg = settings("unused", "1", "1", "1");
    prod = producer_new(cfg, err, sizeof(err));
    config_free(cfg);
    if (prod == NULL) {
        fprintf(stderr, "producer_new: %s\n", err);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    producer_free(prod);
    rd_kafka_wait_destroyed(5000);
    return stop_mock(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_producer_send_sync_with_headers),
        cmocka_unit_test(test_producer_warm_knows_topics_and_names_failures),
        cmocka_unit_test(test_stop_restart_in_key_order_committed_to_the_end),
        cmocka_unit_test(test_rebalance_hands_over_without_loss),
        cmocka_unit_test(test_bound_pauses_only_partitions_that_fetch),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
