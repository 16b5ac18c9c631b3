/* producer.c - one idempotent producer shared by every worker thread, with synchronous sends.
 *
 * Why synchronous: a worker thread may store its input offset only after the result (or
 * DLQ record) is acknowledged, and it has nothing else to do meanwhile; many threads
 * sending at once still batch together within linger.ms. Each send carries a small
 * heap-allocated completion as the message opaque; the delivery-report callback (run by
 * our poll thread) fills it and wakes the sender. The completion is reference-counted
 * (sender + delivery report) because a sender that times out leaves while librdkafka
 * still owns the message: whichever side finishes last frees it.
 *
 * At shutdown the producer is flushed, whatever is still queued is purged (its delivery
 * reports fire with a purge error, freeing their completions), and only then is the
 * poll thread stopped and the handle destroyed.
 */
#include "worker/producer.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"

#define PRODUCER_POLL_MS          100
#define PRODUCER_QUEUE_FULL_SLEEP 5000 /* us between attempts while the queue is full */
#define PRODUCER_FREE_FLUSH_MS    10000

struct producer {
    rd_kafka_t *rk;
    pthread_t poller;
    atomic_bool stop;
    rd_kafka_topic_t *warm[PRODUCER_MAX_WARM]; /* topics producer_warm() made known */
    size_t nwarm;
};

struct send_wait {
    uint32_t magic; /* 0: never SEND_ASYNC_MAGIC */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs; /* sender + delivery report */
    int done;
    rd_kafka_resp_err_t err;
};

/* The opaque of an asynchronous send: the delivery report calls done and frees it. */
struct send_async {
    uint32_t magic;
    producer_done_fn done;
    void *opaque;
};
#define SEND_ASYNC_MAGIC 0x4153594eu /* tells a send_async from a send_wait */

/* Drops one reference; the caller holds d->mu, which this releases. */
static void send_wait_unref(struct send_wait *d)
{
    int last = --d->refs == 0;

    pthread_mutex_unlock(&d->mu);
    if (last) {
        pthread_mutex_destroy(&d->mu);
        pthread_cond_destroy(&d->cv);
        free(d);
    }
}

static struct send_wait *send_wait_new(void)
{
    struct send_wait *d = calloc(1, sizeof(*d));

    if (!d)
        return NULL;
    pthread_mutex_init(&d->mu, NULL);
    clock_cond_init(&d->cv);
    d->refs = 2;
    return d;
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct send_wait *d = m->_private;
    struct send_async *a = m->_private;

    (void)rk;
    (void)opaque;
    if (!d)
        return;
    if (a->magic == SEND_ASYNC_MAGIC) {
        a->done(a->opaque, m->err == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1,
                m->err == RD_KAFKA_RESP_ERR_NO_ERROR ? NULL : rd_kafka_err2str(m->err));
        free(a);
        return;
    }
    pthread_mutex_lock(&d->mu);
    d->done = 1;
    d->err = m->err;
    pthread_cond_signal(&d->cv);
    send_wait_unref(d);
}

void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    enum log_level l = level <= 3   ? LOG_ERROR
                       : level == 4 ? LOG_WARN
                       : level <= 6 ? LOG_INFO
                                    : LOG_DEBUG;

    /* kafka.* pass-through properties go to both clients; each warns about the other's */
    if (strcmp(fac, "CONFWARN") == 0 && strstr(buf, "will be ignored by this"))
        l = LOG_DEBUG;
    if (log_enabled(l)) {
        struct log_field f[] = {LF_STR("client", rd_kafka_name(rk)), LF_STR("facility", fac)};

        log_fields(l, buf, f, 2);
    }
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    char fatal[512];

    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        log_error("kafka producer: fatal error: %s; results can no longer be published", fatal);
        return;
    }
    log_warn("kafka producer: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void *poller_main(void *opaque)
{
    struct producer *pr = opaque;

    while (!atomic_load(&pr->stop))
        rd_kafka_poll(pr->rk, PRODUCER_POLL_MS);
    return NULL;
}

static int conf_set(rd_kafka_conf_t *conf, const char *k, const char *v, char *errstr, size_t errsz)
{
    char e[256];

    if (rd_kafka_conf_set(conf, k, v, e, sizeof(e)) == RD_KAFKA_CONF_OK)
        return 0;
    snprintf(errstr, errsz, "kafka producer: %s=%s: %s", k, v, e);
    return -1;
}

struct producer *producer_new(const struct config *cfg, char *errstr, size_t errsz)
{
    return producer_new_tuned(cfg, NULL, errstr, errsz);
}

struct producer *producer_new_tuned(const struct config *cfg, const struct producer_tuning *t,
                                    char *errstr, size_t errsz)
{
    struct producer *pr = calloc(1, sizeof(*pr));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char e[512], num[32];
    int rc;

    if (!pr)
        goto fail;
    /* defaults the pass-through may tune */
    /* message.max.bytes: a dead letter carries the original value byte for byte plus
     * headers, and oversized inputs are exactly what gets dead-lettered, so the producer
     * must not refuse what the input topic accepted; the brokers' own limits still apply. */
    /* allow.auto.create.topics: the topics are the operator's (deploy/README.md); a typo
     * in kafka.topic.* must not create a one-partition topic on a broker that allows it. */
    snprintf(num, sizeof num, "%d", t && t->linger_ms >= 0 ? t->linger_ms : 5);
    if (conf_set(conf, "linger.ms", num, errstr, errsz) < 0 ||
        conf_set(conf, "client.id", t && t->client_id ? t->client_id : "hsqb-worker", errstr,
                 errsz) < 0 ||
        conf_set(conf, "allow.auto.create.topics", "false", errstr, errsz) < 0 ||
        conf_set(conf, "message.max.bytes", "16777216", errstr, errsz) < 0 ||
        (t && t->nagle_off && conf_set(conf, "socket.nagle.disable", "true", errstr, errsz) < 0) ||
        config_kafka_apply(cfg, conf, errstr, errsz) < 0)
        goto fail;
    if (t && t->message_timeout_ms > 0) {
        snprintf(num, sizeof num, "%lld", (long long)t->message_timeout_ms);
        if (conf_set(conf, "message.timeout.ms", num, errstr, errsz) < 0)
            goto fail;
    }
    /* what the worker's guarantees rest on */
    if (conf_set(conf, "bootstrap.servers", config_get_str(cfg, "kafka.brokers"), errstr, errsz) <
            0 ||
        conf_set(conf, "enable.idempotence", "true", errstr, errsz) < 0 ||
        conf_set(conf, "acks", "all", errstr, errsz) < 0)
        goto fail;
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    pr->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
    if (!pr->rk) {
        snprintf(errstr, errsz, "kafka producer: %s", e);
        goto fail;
    }
    conf = NULL; /* taken by rd_kafka_new */
    rc = pthread_create(&pr->poller, NULL, poller_main, pr);
    if (rc != 0) {
        snprintf(errstr, errsz, "kafka producer: pthread_create: %s", strerror(rc));
        rd_kafka_destroy(pr->rk);
        goto fail;
    }
    return pr;

fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (!pr)
        snprintf(errstr, errsz, "kafka producer: out of memory");
    free(pr);
    return NULL;
}

static rd_kafka_error_t *produce(struct producer *pr, const struct producer_msg *m,
                                 rd_kafka_headers_t *hdrs, struct send_wait *d)
{
    rd_kafka_vu_t vu[7];
    size_t n = 0;

    vu[n].vtype = RD_KAFKA_VTYPE_TOPIC;
    vu[n++].u.cstr = m->topic;
    vu[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vu[n++].u.i = RD_KAFKA_MSG_F_COPY;
    vu[n].vtype = RD_KAFKA_VTYPE_KEY;
    vu[n].u.mem.ptr = (void *)m->key;
    vu[n++].u.mem.size = m->key ? m->keylen : 0;
    vu[n].vtype = RD_KAFKA_VTYPE_VALUE;
    vu[n].u.mem.ptr = (void *)m->value;
    vu[n++].u.mem.size = m->value ? m->vallen : 0;
    vu[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vu[n++].u.ptr = d;
    if (hdrs) {
        vu[n].vtype = RD_KAFKA_VTYPE_HEADERS;
        vu[n++].u.headers = hdrs;
    }
    return rd_kafka_produceva(pr->rk, vu, n);
}

int producer_send_sync(struct producer *pr, const struct producer_msg *m, int64_t timeout_ms,
                       char *errstr, size_t errsz)
{
    const char *topic = m->topic;
    const struct kafka_header *hdrs = m->hdrs;
    size_t nhdrs = m->nhdrs;
    int64_t deadline = clock_mono_ms() + timeout_ms;
    rd_kafka_headers_t *h = NULL;
    rd_kafka_error_t *kerr = NULL;
    struct send_wait *d = NULL;
    struct timespec ts;
    char fatal[512];
    size_t i;
    int rc = -1;

    if (nhdrs > PRODUCER_MAX_HEADERS || (nhdrs > 0 && !hdrs) || timeout_ms <= 0) {
        snprintf(errstr, errsz, "produce to %s: bad arguments", topic);
        return -1;
    }
    if (rd_kafka_fatal_error(pr->rk, fatal, sizeof(fatal)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errsz, "produce to %s: producer failed: %s", topic, fatal);
        return -1;
    }
    d = send_wait_new();
    if (!d) {
        snprintf(errstr, errsz, "produce to %s: out of memory", topic);
        return -1;
    }
    if (nhdrs > 0) {
        h = rd_kafka_headers_new(nhdrs);
        for (i = 0; i < nhdrs; i++)
            rd_kafka_header_add(h, hdrs[i].name, -1, hdrs[i].value, -1);
    }
    for (;;) {
        kerr = produce(pr, m, h, d);
        if (!kerr || rd_kafka_error_code(kerr) != RD_KAFKA_RESP_ERR__QUEUE_FULL ||
            clock_mono_ms() >= deadline)
            break;
        rd_kafka_error_destroy(kerr);
        usleep(PRODUCER_QUEUE_FULL_SLEEP); /* the poll thread drains delivery reports */
    }
    if (kerr) {
        /* not enqueued: the headers and the delivery's second reference are still ours */
        snprintf(errstr, errsz, "produce to %s: %s", topic, rd_kafka_error_string(kerr));
        rd_kafka_error_destroy(kerr);
        if (h)
            rd_kafka_headers_destroy(h);
        pthread_mutex_lock(&d->mu);
        d->refs--;
        send_wait_unref(d);
        return -1;
    }
    clock_timespec(deadline, &ts);
    pthread_mutex_lock(&d->mu);
    while (!d->done && pthread_cond_timedwait(&d->cv, &d->mu, &ts) != ETIMEDOUT)
        ;
    if (!d->done)
        snprintf(errstr, errsz,
                 "produce to %s: no delivery report within %lld ms (may still be delivered)", topic,
                 (long long)timeout_ms);
    else if (d->err != RD_KAFKA_RESP_ERR_NO_ERROR)
        snprintf(errstr, errsz, "produce to %s: %s", topic, rd_kafka_err2str(d->err));
    else
        rc = 0;
    send_wait_unref(d);
    return rc;
}

int producer_send_async(struct producer *pr, const struct producer_msg *m, producer_done_fn done,
                        void *opaque, char *errstr, size_t errsz)
{
    rd_kafka_headers_t *h = NULL;
    rd_kafka_error_t *kerr;
    struct send_async *a;
    char fatal[512];
    size_t i;

    if (m->nhdrs > PRODUCER_MAX_HEADERS || (m->nhdrs > 0 && !m->hdrs) || !done) {
        snprintf(errstr, errsz, "produce to %s: bad arguments", m->topic);
        return -1;
    }
    if (rd_kafka_fatal_error(pr->rk, fatal, sizeof(fatal)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errsz, "produce to %s: producer failed: %s", m->topic, fatal);
        return -1;
    }
    if ((a = malloc(sizeof(*a))) == NULL) {
        snprintf(errstr, errsz, "produce to %s: out of memory", m->topic);
        return -1;
    }
    *a = (struct send_async){SEND_ASYNC_MAGIC, done, opaque};
    if (m->nhdrs > 0) {
        h = rd_kafka_headers_new(m->nhdrs);
        for (i = 0; i < m->nhdrs; i++)
            rd_kafka_header_add(h, m->hdrs[i].name, -1, m->hdrs[i].value, -1);
    }
    kerr = produce(pr, m, h, (struct send_wait *)(void *)a);
    if (kerr) {
        snprintf(errstr, errsz, "produce to %s: %s", m->topic, rd_kafka_error_string(kerr));
        rd_kafka_error_destroy(kerr);
        if (h)
            rd_kafka_headers_destroy(h);
        free(a);
        return -1;
    }
    return 0;
}

void producer_purge(struct producer *pr)
{
    rd_kafka_purge(pr->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
}

int producer_flush(struct producer *pr, int64_t timeout_ms)
{
    return rd_kafka_flush(pr->rk, (int)timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

rd_kafka_t *producer_handle(struct producer *pr)
{
    return pr->rk;
}

/* librdkafka learns an unknown topic's partitions from its next metadata refresh, so the
 * first send to a topic the handle has not seen waits about a second (measured against
 * kafka-mock: 1,000 ms for the first delivery, 6 ms after this). At start that stalls
 * every worker thread's first result at once. A topic handle kept for the producer's
 * life plus one metadata request per topic puts them in its cache before any event. */
int producer_warm(struct producer *pr, const char *const *topics, size_t n, int64_t timeout_ms,
                  char *errstr, size_t errsz)
{
    int64_t deadline = clock_mono_ms() + timeout_ms;
    int rc = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err;
        rd_kafka_topic_t *rkt;
        int64_t left = deadline - clock_mono_ms();

        if (pr->nwarm == PRODUCER_MAX_WARM) {
            snprintf(errstr, errsz, "kafka producer: more than %d topics to warm",
                     PRODUCER_MAX_WARM);
            return -1;
        }
        rkt = rd_kafka_topic_new(pr->rk, topics[i], NULL);
        if (!rkt) {
            snprintf(errstr, errsz, "kafka producer: topic %s: %s", topics[i],
                     rd_kafka_err2str(rd_kafka_last_error()));
            return -1;
        }
        pr->warm[pr->nwarm++] = rkt;
        err = left > 0 ? rd_kafka_metadata(pr->rk, 0, rkt, &md, (int)left)
                       : RD_KAFKA_RESP_ERR__TIMED_OUT;
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (md->topic_cnt == 1 && md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR)
                err = md->topics[0].err;
            else if (md->topic_cnt != 1 || md->topics[0].partition_cnt <= 0)
                err = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
        }
        if (md)
            rd_kafka_metadata_destroy(md);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR && rc == 0) {
            snprintf(errstr, errsz, "kafka producer: metadata of %s: %s", topics[i],
                     rd_kafka_err2str(err));
            rc = -1;
        }
    }
    return rc;
}

void producer_free(struct producer *pr)
{
    size_t i;

    if (!pr)
        return;
    if (producer_flush(pr, PRODUCER_FREE_FLUSH_MS) < 0) {
        log_warn("kafka producer: %d messages undelivered at shutdown; purging",
                 rd_kafka_outq_len(pr->rk));
        rd_kafka_purge(pr->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(pr->rk, 1000); /* serves the purge delivery reports */
    }
    atomic_store(&pr->stop, 1);
    pthread_join(pr->poller, NULL);
    for (i = 0; i < pr->nwarm; i++)
        rd_kafka_topic_destroy(pr->warm[i]);
    rd_kafka_destroy(pr->rk);
    free(pr);
}

/* ---- header sets --------------------------------------------------------------------- */

size_t kafka_headers_gather(const rd_kafka_headers_t *hdrs, const char *const *skip, size_t nskip,
                            struct kafka_header_ref *p, size_t max)
{
    size_t np = 0, idx, i, vlen;
    const char *name;
    const void *val;

    for (idx = 0; hdrs && rd_kafka_header_get_all(hdrs, idx, &name, &val, &vlen) ==
                              RD_KAFKA_RESP_ERR_NO_ERROR;
         idx++) {
        int skipped = 0;

        for (i = 0; name && i < nskip; i++)
            skipped |= strcmp(name, skip[i]) == 0;
        if (!name || skipped)
            continue;
        if (!val) {
            val = "";
            vlen = 0;
        }
        if (memchr(val, '\0', vlen))
            continue;
        for (i = 0; i < np; i++)
            if (strcmp(p[i].name, name) == 0)
                break;
        if (i == np) {
            if (np == max)
                continue; /* beyond the room: dropped */
            np++;
        }
        p[i] = (struct kafka_header_ref){name, val, vlen};
    }
    return np;
}

int kafka_header_set_build(const struct kafka_header_ref *p, size_t np,
                           struct kafka_header_set *out, char *errstr, size_t errsz)
{
    size_t total = 1, i;
    char *w;

    memset(out, 0, sizeof *out);
    if (np > KAFKA_HEADER_SET_MAX) {
        snprintf(errstr, errsz, "too many headers (%zu, at most %d)", np, KAFKA_HEADER_SET_MAX);
        return -1;
    }
    for (i = 0; i < np; i++)
        total += strlen(p[i].name) + 1 + p[i].vlen + 1;
    if (!(out->mem = malloc(total))) {
        snprintf(errstr, errsz, "out of memory building headers");
        return -1;
    }
    w = out->mem;
    for (i = 0; i < np; i++) {
        size_t nl = strlen(p[i].name);

        memcpy(w, p[i].name, nl + 1);
        out->h[i].name = w;
        w += nl + 1;
        memcpy(w, p[i].value, p[i].vlen);
        w[p[i].vlen] = '\0';
        out->h[i].value = w;
        w += p[i].vlen + 1;
    }
    out->n = np;
    return 0;
}

void kafka_header_set_release(struct kafka_header_set *s)
{
    if (!s)
        return;
    free(s->mem);
    memset(s, 0, sizeof *s);
}
