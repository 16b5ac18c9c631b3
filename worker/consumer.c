/* consumer.c - the poll thread: librdkafka consumer, rebalances, flow control, offsets, stop.
 *
 * The poll thread never runs an event: it hands every message to the scheduler and only
 * does bookkeeping, so heartbeats, rebalances and pause/resume stay prompt however slow
 * QuickBooks is. Every polled rd_kafka_message_t has exactly one owner: error events and
 * refused messages are destroyed here at once; accepted ones belong to the scheduler,
 * which destroys them through release_msg() when it is done with them.
 *
 * A partition's life on this consumer:
 *
 *   rebalance ASSIGN --on_assign--> consuming <--sweep: resume-- paused
 *                                       |      --submit/sweep: pause-->
 *                                       |
 *   rebalance REVOKE or stop --on_revoke / shutdown-->
 *       revoked: queued work dropped, running handlers get kafka.revoke_timeout
 *       (shutdown.drain_timeout at stop) --> offsets stored + committed synchronously
 *       --> unassigned, forgotten (scheduler_partition_remove)
 *
 * Offsets: sweep() (every SWEEP_MS) stores each partition's contiguous completed prefix
 * with rd_kafka_offsets_store; librdkafka's auto-commit sends them to the group
 * coordinator; a revoke and the shutdown commit synchronously. A message polled while we
 * stop is destroyed undispatched: nothing after it is dispatched either, so its offset
 * can never be committed past.
 *
 * Retry-topic records (worker/delay.h) whose not-before time is still ahead are copied
 * off their fetch buffer (delay_msg_new) and handed to the scheduler as held messages:
 * they wait in its timer heap without a worker thread, under their own memory bounds,
 * so the main topic keeps flowing however full the retry topic is.
 */
#include "worker/consumer.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "common/clock.h"
#include "common/log.h"
#include "worker/delay.h"

#define POLL_MS          100 /* poll timeout while nothing is paused */
#define POLL_PAUSED_MS   20  /* ...and while something waits to be resumed */
#define SWEEP_MS         20  /* pause/resume and offset-store cadence */
#define STATS_DEFAULT_MS "10000"
#define FLUSH_MIN_MS     5000
#define STATS_MAX_BYTES  (16 * 1024 * 1024) /* larger statistics JSON is ignored */

struct cpart {
    char *topic;
    int32_t partition;
    struct sched_partition *sp;
    int paused;     /* as applied to librdkafka */
    int fetching;   /* a message arrived since the assignment: its fetch has started */
    int64_t stored; /* last offset stored, -1 none */
};

struct consumer {
    rd_kafka_t *rk;
    struct scheduler *sched;
    struct producer *producer;
    struct consumer_hooks hooks;
    struct delay_policy delay;
    int64_t revoke_timeout_ms, drain_timeout_ms;
    atomic_int stop;
    atomic_int fatal;
    char fatal_msg[512];
    int stopping, ran;
    struct cpart *parts;
    size_t nparts, capparts, last_hit;
    int64_t last_sweep;
};

/* ---- librdkafka callbacks ----------------------------------------------------------- */

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct consumer *c = opaque;

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, c->fatal_msg, sizeof(c->fatal_msg));
        log_error("kafka consumer: fatal error: %s", c->fatal_msg);
        atomic_store(&c->fatal, 1);
        return;
    }
    log_warn("kafka consumer: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static struct cpart *part_find(struct consumer *c, const char *topic, int32_t partition)
{
    size_t i;

    if (c->last_hit < c->nparts && c->parts[c->last_hit].partition == partition &&
        strcmp(c->parts[c->last_hit].topic, topic) == 0)
        return &c->parts[c->last_hit];
    for (i = 0; i < c->nparts; i++) {
        if (c->parts[i].partition == partition && strcmp(c->parts[i].topic, topic) == 0) {
            c->last_hit = i;
            return &c->parts[i];
        }
    }
    return NULL;
}

/* Reports each assigned partition's consumer_lag from librdkafka's statistics JSON. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    struct consumer *c = opaque;
    struct json_tokener *tok;
    struct json_object *root, *topics;

    (void)rk;
    if (!c->hooks.lag || len > STATS_MAX_BYTES || (tok = json_tokener_new()) == NULL)
        return 0;
    root = json_tokener_parse_ex(tok, json, (int)len);
    json_tokener_free(tok);
    if (root && json_object_is_type(root, json_type_object) &&
        json_object_object_get_ex(root, "topics", &topics) &&
        json_object_is_type(topics, json_type_object)) {
        json_object_object_foreach(topics, tname, tobj)
        {
            struct json_object *parts;

            if (!json_object_is_type(tobj, json_type_object) ||
                !json_object_object_get_ex(tobj, "partitions", &parts) ||
                !json_object_is_type(parts, json_type_object))
                continue;
            json_object_object_foreach(parts, pname, pobj)
            {
                struct json_object *lag;
                char *end;
                long pid = strtol(pname, &end, 10);

                if (*end != '\0' || pid < 0 || pid > INT32_MAX ||
                    !json_object_is_type(pobj, json_type_object) ||
                    !json_object_object_get_ex(pobj, "consumer_lag", &lag) ||
                    !json_object_is_type(lag, json_type_int) || !part_find(c, tname, (int32_t)pid))
                    continue;
                c->hooks.lag(c->hooks.opaque, tname, (int32_t)pid, json_object_get_int64(lag));
            }
        }
    }
    json_object_put(root);
    return 0; /* librdkafka frees json */
}

/* ---- assignment --------------------------------------------------------------------- */

static void part_drop(struct consumer *c, struct cpart *cp)
{
    scheduler_partition_remove(c->sched, cp->sp);
    free(cp->topic);
    *cp = c->parts[--c->nparts];
}

static void on_assign(struct consumer *c, const rd_kafka_topic_partition_list_t *list)
{
    int i;

    for (i = 0; i < list->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &list->elems[i];
        struct cpart *cp = part_find(c, tp->topic, tp->partition);

        if (cp) /* assigned twice without a revoke: start it afresh */
            part_drop(c, cp);
        if (c->nparts == c->capparts) {
            size_t n = c->capparts ? 2 * c->capparts : 16;
            struct cpart *np = realloc(c->parts, n * sizeof(*np));

            if (!np)
                goto nomem;
            c->parts = np;
            c->capparts = n;
        }
        cp = &c->parts[c->nparts];
        cp->topic = strdup(tp->topic);
        cp->sp = cp->topic ? scheduler_partition_add(c->sched, tp->topic, tp->partition) : NULL;
        if (!cp->sp) {
            free(cp->topic);
            goto nomem;
        }
        cp->partition = tp->partition;
        cp->paused = 0;
        cp->fetching = 0;
        cp->stored = -1;
        c->nparts++;
    }
    log_info("kafka: assigned %d partition(s), %zu in total", list->cnt, c->nparts);
    return;

nomem:
    snprintf(c->fatal_msg, sizeof(c->fatal_msg), "out of memory tracking an assignment");
    atomic_store(&c->fatal, 1);
}

/* Stops the listed partitions (all when list is NULL), waits up to timeout_ms for their
 * running handlers, commits their completed prefix (unless the assignment was lost) and
 * forgets them. */
static void on_revoke(struct consumer *c, const rd_kafka_topic_partition_list_t *list,
                      int64_t timeout_ms, int lost)
{
    rd_kafka_topic_partition_list_t *commit = rd_kafka_topic_partition_list_new(16);
    int64_t deadline = clock_mono_ms() + timeout_ms;
    struct cpart **victims;
    size_t nv = 0, i, late = 0;
    rd_kafka_resp_err_t err;

    victims = calloc(c->nparts + 1, sizeof(*victims));
    if (!victims || !commit) { /* cannot wait nor commit: drop everything */
        free(victims);
        if (commit)
            rd_kafka_topic_partition_list_destroy(commit);
        while (c->nparts > 0)
            part_drop(c, &c->parts[0]);
        return;
    }
    for (i = 0; i < c->nparts; i++) {
        int j;

        if (!list) {
            victims[nv++] = &c->parts[i];
            continue;
        }
        for (j = 0; j < list->cnt; j++)
            if (list->elems[j].partition == c->parts[i].partition &&
                strcmp(list->elems[j].topic, c->parts[i].topic) == 0) {
                victims[nv++] = &c->parts[i];
                break;
            }
    }
    for (i = 0; i < nv; i++)
        scheduler_partition_revoke(c->sched, victims[i]->sp);
    for (i = 0; i < nv && !lost; i++) {
        int64_t left = deadline - clock_mono_ms(), off;

        if (scheduler_wait_idle(c->sched, victims[i]->sp, left > 0 ? left : 0) < 0)
            late += scheduler_partition_in_flight(c->sched, victims[i]->sp);
        scheduler_partition_state(c->sched, victims[i]->sp, NULL, &off);
        if (off >= 0)
            rd_kafka_topic_partition_list_add(commit, victims[i]->topic, victims[i]->partition)
                ->offset = off;
    }
    if (late > 0)
        log_warn("kafka: %zu event(s) still running after the %lld ms revoke bound; they finish "
                 "uncommitted and may be redelivered",
                 late, (long long)timeout_ms);
    if (commit->cnt > 0) {
        /* stored too, so librdkafka's own commit at unassign carries them if ours fails */
        rd_kafka_offsets_store(c->rk, commit);
        err = rd_kafka_commit(c->rk, commit, 0);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
            log_warn("kafka: commit of revoked partitions failed: %s", rd_kafka_err2str(err));
    }
    /* Victims are in ascending array order and part_drop() moves the last element into
     * the hole: dropping from the back only ever moves non-victims. */
    for (i = nv; i > 0; i--)
        part_drop(c, victims[i - 1]);
    log_info("kafka: revoked %zu partition(s)%s, %zu left", nv, lost ? " (lost)" : "", c->nparts);
    free(victims);
    rd_kafka_topic_partition_list_destroy(commit);
}

static void resume_copy(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *list)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_copy(list);

    if (!l)
        return;
    rd_kafka_resume_partitions(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *list, void *opaque)
{
    struct consumer *c = opaque;
    int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *e = NULL;
    rd_kafka_resp_err_t r = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (!c->sched) { /* consumer_new failed half-way: nothing to track */
        rd_kafka_assign(rk, NULL);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        on_assign(c, list);
        /* No pause of ours carried over (librdkafka keeps a partition's pause flag when it
         * is revoked and assigned again), and resumed BEFORE the assignment: every pause or
         * resume takes a new version of the partition, and librdkafka 2.0 drops an op with
         * an older one. A resume right after the assign could outdate the fetch start the
         * assignment queues once its committed offset is known, leaving that partition
         * assigned but never fetched (seen once in a benchmark run: one partition of six
         * delivered nothing for the whole run; confluentinc/librdkafka#5591). On a copy:
         * partitions librdkafka does not know yet come back with an error set. */
        resume_copy(rk, list);
        if (coop)
            e = rd_kafka_incremental_assign(rk, list);
        else
            r = rd_kafka_assign(rk, list);
    } else {
        if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
            log_error("kafka: rebalance error: %s", rd_kafka_err2str(err));
        on_revoke(c, err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS ? list : NULL,
                  c->stopping ? 0 : c->revoke_timeout_ms, rd_kafka_assignment_lost(rk) == 1);
        if (coop && err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
            e = rd_kafka_incremental_unassign(rk, list);
        else
            r = rd_kafka_assign(rk, NULL);
    }
    if (e) {
        log_error("kafka: incremental (un)assign: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    } else if (r != RD_KAFKA_RESP_ERR_NO_ERROR) {
        log_error("kafka: (un)assign: %s", rd_kafka_err2str(r));
    }
}

/* ---- the poll loop ------------------------------------------------------------------ */

static void release_msg(void *owner)
{
    rd_kafka_message_destroy(owner);
}

static void set_paused(struct consumer *c, struct cpart *cp, int pause)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t err;

    rd_kafka_topic_partition_list_add(l, cp->topic, cp->partition);
    err = pause ? rd_kafka_pause_partitions(c->rk, l) : rd_kafka_resume_partitions(c->rk, l);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR && l->elems[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        cp->paused = pause;
        log_debug("kafka: %s %s/%d", pause ? "paused" : "resumed", cp->topic, (int)cp->partition);
    } else {
        log_warn("kafka: %s %s/%d: %s", pause ? "pause" : "resume", cp->topic, (int)cp->partition,
                 rd_kafka_err2str(err ? err : l->elems[0].err));
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* Applies pause/resume decisions, stores advanced offsets, feeds the gauges. */
static void sweep(struct consumer *c)
{
    rd_kafka_topic_partition_list_t *store = NULL;
    int64_t npaused = 0;
    size_t i;

    for (i = 0; i < c->nparts; i++) {
        struct cpart *cp = &c->parts[i];
        int want;
        int64_t off;

        scheduler_partition_state(c->sched, cp->sp, &want, &off);
        /* A partition whose fetch has not started yet is not paused: the pause could
         * outdate the fetch start librdkafka is about to queue (see rebalance_cb) and leave
         * it never fetched. Until its first message it holds nothing of ours anyway; the
         * bounds then apply from that message on (at most one fetch over them). */
        if (!c->stopping && want != cp->paused && (cp->fetching || !want))
            set_paused(c, cp, want);
        npaused += cp->paused;
        if (off > cp->stored) {
            if (!store)
                store = rd_kafka_topic_partition_list_new((int)c->nparts);
            rd_kafka_topic_partition_list_add(store, cp->topic, cp->partition)->offset = off;
        }
    }
    if (store) {
        rd_kafka_resp_err_t err = rd_kafka_offsets_store(c->rk, store);
        int j;

        for (j = 0; j < store->cnt; j++) {
            const rd_kafka_topic_partition_t *tp = &store->elems[j];
            struct cpart *cp = part_find(c, tp->topic, tp->partition);

            if (tp->err == RD_KAFKA_RESP_ERR_NO_ERROR && cp)
                cp->stored = tp->offset;
            else if (tp->err != RD_KAFKA_RESP_ERR_NO_ERROR)
                log_warn("kafka: storing offset %lld of %s/%d: %s", (long long)tp->offset,
                         tp->topic, (int)tp->partition, rd_kafka_err2str(tp->err));
        }
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR && store->cnt == 0)
            log_warn("kafka: storing offsets: %s", rd_kafka_err2str(err));
        rd_kafka_topic_partition_list_destroy(store);
    }
    if (c->hooks.in_flight)
        c->hooks.in_flight(c->hooks.opaque, (int64_t)scheduler_in_flight(c->sched));
    if (c->hooks.paused)
        c->hooks.paused(c->hooks.opaque, npaused);
    if (c->hooks.assigned)
        c->hooks.assigned(c->hooks.opaque, (int64_t)c->nparts);
    if (c->hooks.held)
        c->hooks.held(c->hooks.opaque, (int64_t)scheduler_held(c->sched));
    c->last_sweep = clock_mono_ms();
}

static void on_message(struct consumer *c, rd_kafka_message_t *rkm)
{
    const char *topic = rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "-";
    struct inbound_msg m = {0};
    rd_kafka_headers_t *hdrs = NULL;
    struct cpart *cp;
    struct delay_msg *held = NULL;
    enum sched_submit r;
    int want = 0;
    char err[256];
    int64_t hold;

    if (rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            log_warn("kafka: consume error on %s/%d: %s", topic, (int)rkm->partition,
                     rd_kafka_message_errstr(rkm));
        rd_kafka_message_destroy(rkm);
        return;
    }
    cp = part_find(c, topic, rkm->partition);
    if (!cp || c->stopping) {
        log_debug("kafka: dropping %s/%d offset %lld (%s)", topic, (int)rkm->partition,
                  (long long)rkm->offset, c->stopping ? "stopping" : "not assigned");
        rd_kafka_message_destroy(rkm);
        return;
    }
    cp->fetching = 1;
    m.topic = topic;
    m.partition = rkm->partition;
    m.offset = rkm->offset;
    m.timestamp_ms = rd_kafka_message_timestamp(rkm, NULL);
    m.key = rkm->key;
    m.key_len = rkm->key ? rkm->key_len : 0;
    m.value = rkm->payload;
    m.value_len = rkm->payload ? rkm->len : 0;
    /* parsed here, once, on the poll thread: the lazy parse is not thread-safe */
    if (rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR)
        m.headers = hdrs;
    hold = delay_hold_ms(&c->delay, topic, m.headers, clock_wall_ms());
    if (hold > 0 && (held = delay_msg_new(&m)) != NULL) {
        /* the copy is self-contained: the fetch buffer behind rkm is not pinned */
        struct sched_held sh = {held, delay_msg_free, hold, held->bytes};

        r = scheduler_submit_delayed(c->sched, cp->sp, &held->msg, &sh, &want, err, sizeof(err));
        if (r != SCHED_ACCEPTED)
            delay_msg_free(held);
        else
            log_debug("kafka: holding %s/%d offset %lld for %lld ms", topic, (int)rkm->partition,
                      (long long)rkm->offset, (long long)hold);
    } else {
        /* out of memory for the copy: run it now; the pipeline re-checks not-before */
        r = scheduler_submit(c->sched, cp->sp, &m, rkm, &want, err, sizeof(err));
    }
    if (held && r != SCHED_REFUSED) {
        rd_kafka_message_destroy(rkm);
        rkm = NULL;
    }
    switch (r) {
    case SCHED_ACCEPTED:
        if (want && !cp->paused)
            set_paused(c, cp, 1);
        break;
    case SCHED_REFUSED:
        log_info("kafka: skipping %s/%d offset %lld: at or below one already dispatched", topic,
                 (int)rkm->partition, (long long)rkm->offset);
        rd_kafka_message_destroy(rkm);
        break;
    case SCHED_ERROR:
        if (rkm)
            rd_kafka_message_destroy(rkm);
        snprintf(c->fatal_msg, sizeof(c->fatal_msg), "%s", err);
        atomic_store(&c->fatal, 1);
        break;
    }
}

/* ---- construction ------------------------------------------------------------------- */

static int conf_set(rd_kafka_conf_t *conf, const char *k, const char *v, char *errstr, size_t errsz)
{
    char e[256];

    if (rd_kafka_conf_set(conf, k, v, e, sizeof(e)) == RD_KAFKA_CONF_OK)
        return 0;
    snprintf(errstr, errsz, "kafka consumer: %s=%s: %s", k, v, e);
    return -1;
}

rd_kafka_conf_t *consumer_conf_new(const struct config *cfg, const char *client_id,
                                   const char *group, const char *const *extra, char *errstr,
                                   size_t errsz)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    /* defaults the pass-through may override (consumer.h says why) */
    if (conf_set(conf, "client.id", client_id, errstr, errsz) < 0 ||
        conf_set(conf, "partition.assignment.strategy", "range,roundrobin", errstr, errsz) < 0 ||
        conf_set(conf, "auto.offset.reset", "earliest", errstr, errsz) < 0 ||
        conf_set(conf, "enable.auto.commit", "true", errstr, errsz) < 0 ||
        conf_set(conf, "auto.commit.interval.ms", "1000", errstr, errsz) < 0 ||
        conf_set(conf, "fetch.wait.max.ms", "100", errstr, errsz) < 0)
        goto fail;
    for (size_t i = 0; extra && extra[i] && extra[i + 1]; i += 2)
        if (conf_set(conf, extra[i], extra[i + 1], errstr, errsz) < 0)
            goto fail;
    if (config_kafka_apply(cfg, conf, errstr, errsz) < 0)
        goto fail;
    /* what the offset guarantees rest on */
    if (conf_set(conf, "bootstrap.servers", config_get_str(cfg, "kafka.brokers"), errstr, errsz) <
            0 ||
        conf_set(conf, "group.id", group, errstr, errsz) < 0 ||
        conf_set(conf, "enable.auto.offset.store", "false", errstr, errsz) < 0)
        goto fail;
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    return conf;

fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static rd_kafka_conf_t *make_conf(struct consumer *c, const struct config *cfg, char *errstr,
                                  size_t errsz)
{
    static const char *const stats[] = {"statistics.interval.ms", STATS_DEFAULT_MS, NULL};
    int want_stats = c->hooks.lag && !config_kafka_get(cfg, "statistics.interval.ms");
    rd_kafka_conf_t *conf =
        consumer_conf_new(cfg, "hsqb-worker", config_get_str(cfg, "kafka.group.id"),
                          want_stats ? stats : NULL, errstr, errsz);

    if (!conf)
        return NULL;
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    if (c->hooks.lag)
        rd_kafka_conf_set_stats_cb(conf, stats_cb);
    return conf;
}

static int subscribe(struct consumer *c, const struct consumer_params *p, const struct config *cfg,
                     char *errstr, size_t errsz)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    rd_kafka_resp_err_t err;
    size_t i;

    if (!p->topics)
        rd_kafka_topic_partition_list_add(l, config_get_str(cfg, "kafka.topic.actions"),
                                          RD_KAFKA_PARTITION_UA);
    for (i = 0; p->topics && p->topics[i]; i++)
        rd_kafka_topic_partition_list_add(l, p->topics[i], RD_KAFKA_PARTITION_UA);
    err = l->cnt > 0 ? rd_kafka_subscribe(c->rk, l) : RD_KAFKA_RESP_ERR__INVALID_ARG;
    rd_kafka_topic_partition_list_destroy(l);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    snprintf(errstr, errsz, "kafka consumer: subscribe: %s", rd_kafka_err2str(err));
    return -1;
}

struct consumer *consumer_new(const struct consumer_params *p, char *errstr, size_t errsz)
{
    struct consumer *c = calloc(1, sizeof(*c));
    const struct config *cfg = p->cfg;
    struct scheduler_options so = {0};
    rd_kafka_conf_t *conf = NULL;
    char e[512];

    if (!c) {
        snprintf(errstr, errsz, "kafka consumer: out of memory");
        return NULL;
    }
    if (p->hooks)
        c->hooks = *p->hooks;
    c->producer = p->producer;
    c->revoke_timeout_ms = config_get_ms(cfg, "kafka.revoke_timeout");
    c->drain_timeout_ms = config_get_ms(cfg, "shutdown.drain_timeout");
    so.threads = (unsigned)config_get_int(cfg, "worker.threads");
    so.max_in_flight = (size_t)config_get_int(cfg, "worker.max_in_flight");
    so.max_in_flight_per_partition =
        (size_t)config_get_int(cfg, "worker.max_in_flight_per_partition");
    so.handler = p->handler;
    so.opaque = p->opaque;
    so.thread_new = p->thread_new;
    so.thread_free = p->thread_free;
    so.release = release_msg;
    if (delay_policy_from_config(&c->delay, cfg, errstr, errsz) < 0)
        goto fail;
    so.max_held = c->delay.max_held;
    so.max_held_per_partition = c->delay.max_held_per_partition;
    so.max_held_bytes = c->delay.max_held_bytes;

    conf = make_conf(c, cfg, errstr, errsz);
    if (!conf)
        goto fail;
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof(e));
    if (!c->rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(errstr, errsz, "kafka consumer: %s", e);
        goto fail;
    }
    rd_kafka_poll_set_consumer(c->rk); /* error/stats/rebalance callbacks on the poll thread */
    c->sched = scheduler_new(&so, errstr, errsz);
    if (!c->sched || subscribe(c, p, cfg, errstr, errsz) < 0)
        goto fail;
    return c;

fail:
    consumer_free(c);
    return NULL;
}

/* ---- run and stop ------------------------------------------------------------------- */

#define FINAL_COMMIT_ATTEMPTS   10
#define FINAL_COMMIT_BACKOFF_MS 500

/* Commit errors that mean "not now" rather than "never": the group is rebalancing or
 * the coordinator is moving. */
static int commit_retryable(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
        return 1;
    default:
        return 0;
    }
}

/* Stop dispatching, let running handlers finish within the drain bound (while still
 * polling, so the group sees us alive), then store and commit what completed. */
static void drain_and_commit(struct consumer *c)
{
    int64_t deadline = clock_mono_ms() + c->drain_timeout_ms;
    rd_kafka_resp_err_t err;
    size_t i;

    c->stopping = 1;
    for (i = 0; i < c->nparts; i++) {
        if (!c->parts[i].paused)
            set_paused(c, &c->parts[i], 1);
        scheduler_partition_revoke(c->sched, c->parts[i].sp);
    }
    log_info("kafka: stopping; waiting for %zu running event(s)", scheduler_in_flight(c->sched));
    while (scheduler_wait_idle(c->sched, NULL, 100) < 0 && clock_mono_ms() < deadline) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, 0);

        if (rkm)
            on_message(c, rkm); /* destroyed undispatched: we are stopping */
        if (c->hooks.heartbeat)
            c->hooks.heartbeat(c->hooks.opaque);
    }
    if (scheduler_in_flight(c->sched) > 0)
        log_warn("kafka: %zu event(s) still running after shutdown.drain_timeout; they finish "
                 "uncommitted and may be redelivered",
                 scheduler_in_flight(c->sched));
    sweep(c);
    /* A commit refused because the group is rebalancing (another member joined or left
     * as we stop) is retried after polling, which lets the rebalance run: its revoke
     * callback commits the revoked partitions itself. Giving up here would make the
     * next owner redeliver events we already finished. */
    for (int attempt = 0;; attempt++) {
        err = rd_kafka_commit(c->rk, NULL, 0);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET)
            break;
        if (!commit_retryable(err) || attempt >= FINAL_COMMIT_ATTEMPTS) {
            log_warn("kafka: final commit failed: %s", rd_kafka_err2str(err));
            break;
        }
        int64_t until = clock_mono_ms() + FINAL_COMMIT_BACKOFF_MS;
        while (clock_mono_ms() < until) {
            rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, 50);
            if (rkm)
                on_message(c, rkm); /* destroyed undispatched: we are stopping */
        }
    }
}

int consumer_run(struct consumer *c, char *errstr, size_t errsz)
{
    rd_kafka_resp_err_t err;
    int failed;

    if (c->ran) {
        snprintf(errstr, errsz, "consumer_run called twice");
        return -1;
    }
    c->ran = 1;
    log_info("kafka: consuming");
    while (!atomic_load(&c->stop) && !atomic_load(&c->fatal) && !scheduler_failed(c->sched)) {
        int any_paused = 0;
        rd_kafka_message_t *rkm;
        size_t i;

        for (i = 0; i < c->nparts && !any_paused; i++)
            any_paused = c->parts[i].paused;
        rkm = rd_kafka_consumer_poll(c->rk, any_paused ? POLL_PAUSED_MS : POLL_MS);
        if (rkm)
            on_message(c, rkm);
        if (clock_mono_ms() - c->last_sweep >= SWEEP_MS)
            sweep(c);
        if (c->hooks.heartbeat)
            c->hooks.heartbeat(c->hooks.opaque);
    }
    failed = atomic_load(&c->fatal) || scheduler_failed(c->sched);
    if (atomic_load(&c->fatal))
        snprintf(errstr, errsz, "kafka consumer: %s", c->fatal_msg);
    else if (failed)
        snprintf(errstr, errsz, "an event handler asked the worker to stop");

    drain_and_commit(c);
    if (c->producer &&
        producer_flush(c->producer,
                       c->drain_timeout_ms > FLUSH_MIN_MS ? c->drain_timeout_ms : FLUSH_MIN_MS) < 0) {
        /* what is left fails now: a result still on its way completes its event (as a
         * retry: uncommitted, re-published from its done marker at the next start), so
         * scheduler_free() below does not wait for message.timeout.ms */
        log_warn("kafka: producer not flushed at shutdown");
        producer_purge(c->producer);
    }
    err = rd_kafka_consumer_close(c->rk); /* leaves the group; revoke commits once more */
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        log_warn("kafka: consumer close: %s", rd_kafka_err2str(err));
    while (c->nparts > 0) /* only if close could not run the revoke */
        part_drop(c, &c->parts[0]);
    scheduler_free(c->sched); /* joins the threads: every message is destroyed after this */
    c->sched = NULL;
    log_info("kafka: stopped");
    return failed ? -1 : 0;
}

void consumer_stop(struct consumer *c)
{
    if (c)
        atomic_store(&c->stop, 1);
}

void consumer_free(struct consumer *c)
{
    size_t i;

    if (!c)
        return;
    if (c->rk && !c->ran) {
        c->stopping = 1;
        rd_kafka_consumer_close(c->rk);
    }
    if (c->sched) {
        while (c->nparts > 0)
            part_drop(c, &c->parts[0]);
        scheduler_free(c->sched);
        c->sched = NULL;
    }
    for (i = 0; i < c->nparts; i++)
        free(c->parts[i].topic);
    free(c->parts);
    if (c->rk)
        rd_kafka_destroy(c->rk);
    free(c);
}
