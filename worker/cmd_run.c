/* cmd_run.c - `hsqb-worker run`: build the process from its parts and run until stopped.
 *
 * This file only wires modules together, in dependency order, and tears them down in the
 * reverse order:
 *
 *   settings -> log level, secrets registered for redaction -> libcurl global init
 *   -> metrics -> rate limiter -> oauth -> HubSpot client -> QBO client -> producer (the
 *   output topics' metadata fetched, so the first results do not wait for it)
 *   -> pipeline (lease keeper, circuit breakers) -> callback completer (unless
 *   callbacks.complete is off: its own thread and consumer group on kafka.topic.results)
 *   -> consumer (worker threads, subscribed to kafka.topic.actions and kafka.topic.retry)
 *   -> HTTP endpoint (/metrics, /healthz, /readyz) -> signals -> consumer_run()
 *
 * On SIGTERM the consumer drains first (its last results are published), then the
 * completer gets shutdown.drain_timeout to complete what it holds.
 *
 * Readiness (/readyz) = partitions assigned, or the group formed with none for us (a
 * replica beyond the partition count is healthy but idle), and Redis answers PING on the
 * HTTP thread's own connection. Liveness (/healthz) = the poll loop's heartbeat.
 *
 * Exit statuses: 0 after SIGTERM/SIGINT and a clean drain; 1 after a runtime failure
 * (fatal Kafka error, a handler asked to stop); 2 for bad configuration or a start-up
 * failure that retrying will not fix (systemd's RestartPreventExitStatus=2).
 */
#include "worker/cmd_run.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "common/config.h"
#include "common/http.h"
#include "common/log.h"
#include "common/redis.h"
#include "worker/callbacks.h"
#include "worker/consumer.h"
#include "worker/exitcode.h"
#include "worker/httpd.h"
#include "worker/hubspot.h"
#include "worker/metrics.h"
#include "worker/oauth.h"
#include "worker/pipeline.h"
#include "worker/producer.h"
#include "worker/qbo.h"
#include "worker/ratelimit.h"
#include "worker/settings.h"

#define WARM_TIMEOUT_MS 5000
#define CALLBACKS_STOP_MS 5000 /* the completer's share of a SIGTERM stop */ /* output topics' metadata at start; Kafka down costs this once */

static struct consumer *volatile g_consumer;

static void on_signal(int sig)
{
    (void)sig;
    consumer_stop(g_consumer); /* one atomic store: async-signal-safe */
}

/* Readiness probe state: its own Redis connection, used only on the HTTP thread. */
struct ready_state {
    struct metrics *metrics;
    const struct config *cfg;
    struct redis_conn *redis;
    int redis_version_ok; /* checked once the Redis answered (REDIS_MIN_MAJOR.MINOR) */
    pthread_mutex_t mu;
};

static int ready_check(void *opaque, char *why, size_t whysz)
{
    struct ready_state *rs = opaque;
    char err[256] = "";
    int ok = 1;

    if (metrics_partitions_assigned(rs->metrics) <= 0) {
        /* NEEDSWORK: a replica beyond the partition count never gets any; the consumer
         * would need to report "group joined with an empty assignment" to say ready. */
        snprintf(why, whysz, "no partitions assigned yet");
        return 0;
    }
    pthread_mutex_lock(&rs->mu);
    if (!rs->redis) {
        struct redis_opts o;
        settings_redis_opts(rs->cfg, &o);
        rs->redis = redis_conn_new(&o, err, sizeof err);
    }
    if (!rs->redis) {
        ok = 0;
    } else {
        redisReply *r;
        /* once it passed: a Redis too old is named; one whose version cannot be read
         * (INFO renamed away by a managed service) is left to PING */
        if (!rs->redis_version_ok) {
            int v = redis_version_ok(rs->redis, err, sizeof err);
            if (v == 0) {
                pthread_mutex_unlock(&rs->mu);
                snprintf(why, whysz, "%s", err);
                return 0;
            }
            rs->redis_version_ok = v == 1;
        }
        r = redis_command(rs->redis, err, sizeof err, "PING");
        if (!r)
            ok = 0;
        else
            freeReplyObject(r);
    }
    pthread_mutex_unlock(&rs->mu);
    if (!ok)
        snprintf(why, whysz, "redis unreachable: %s", err);
    return ok;
}

int cmd_run(int argc, char **argv, const char *version)
{
    char err[1024] = "";
    int rc = EXIT_USAGE;
    struct config *cfg = NULL;
    struct metrics *metrics = NULL;
    struct ratelimit *rl = NULL;
    struct oauth *oauth = NULL;
    struct hubspot_api *hubspot = NULL;
    struct qbo_api *qbo = NULL;
    struct producer *producer = NULL;
    struct pipeline *pipeline = NULL;
    struct callbacks *callbacks = NULL;
    struct consumer *consumer = NULL;
    struct httpd *httpd = NULL;
    struct ready_state rs = {.mu = PTHREAD_MUTEX_INITIALIZER};

    if (settings_load(&cfg, argc, argv, (char **)config_environ(), err, sizeof err) != 0) {
        fprintf(stderr, "hsqb-worker run: %s\n", err);
        return EXIT_USAGE;
    }
    int lvl = log_level_parse(config_get_str(cfg, "log.level"));
    log_set_level(lvl < 0 ? LOG_INFO : (enum log_level)lvl);
    settings_register_secrets(cfg);
    settings_warn_unsealed(cfg);

    if (http_global_init(err, sizeof err) != 0)
        goto fail;
    metrics = metrics_new(version, 0, err, sizeof err);
    if (!metrics)
        goto fail;
    rl = ratelimit_new(cfg, err, sizeof err);
    if (!rl)
        goto fail;
    {
        struct redis_opts ro;
        settings_redis_opts(cfg, &ro);
        /* a Redis too old for the claim's one command is refused now, not event by
         * event; an unreachable one is not (it may come up later: /readyz says so) */
        struct redis_conn *vc = redis_conn_new(&ro, err, sizeof err);
        int v = vc ? redis_version_ok(vc, err, sizeof err) : -1;
        redis_conn_free(vc);
        if (v == 0)
            goto fail;
        err[0] = '\0';
        /* the limiter's sweeper: admissions a few at a time, stamps in the background */
        if (ratelimit_start(rl, &ro, err, sizeof err) < 0)
            goto fail;
    }
    oauth = oauth_new(cfg, err, sizeof err);
    if (!oauth)
        goto fail;
    struct oauth_hooks oh = {
        .opaque = metrics, .api_call = metrics_on_api_call, .refresh = metrics_on_oauth_refresh};
    oauth_set_hooks(oauth, &oh);
    struct hubspot_hooks hh = {.opaque = metrics,
                               .on_api_call = metrics_on_api_call,
                               .on_ratelimit_wait = metrics_on_ratelimit_wait};
    hubspot = hubspot_api_new(cfg, rl, &hh, err, sizeof err);
    if (!hubspot)
        goto fail;
    struct qbo_hooks qh = {.opaque = metrics,
                           .api_call = metrics_on_api_call,
                           .ratelimit_wait = metrics_on_ratelimit_wait};
    qbo = qbo_api_new(cfg, oauth, rl, &qh, err, sizeof err);
    if (!qbo)
        goto fail;
    producer = producer_new(cfg, err, sizeof err);
    if (!producer)
        goto fail;
    /* every topic the worker writes, known before the first event (producer.h) */
    const char *out_topics[] = {config_get_str(cfg, "kafka.topic.results"),
                                config_get_str(cfg, "kafka.topic.dlq"),
                                config_get_str(cfg, "kafka.topic.retry")};
    if (producer_warm(producer, out_topics, 3, WARM_TIMEOUT_MS, err, sizeof err) < 0)
        log_warn("%s; sends there wait until the topic is known (the topics must exist: "
                 "deploy/README.md)",
                 err);
    struct pipeline_deps deps = {
        .hubspot = hubspot, .qbo = qbo, .producer = producer, .metrics = metrics};
    pipeline = pipeline_new(cfg, &deps, err, sizeof err);
    if (!pipeline)
        goto fail;
    callbacks = callbacks_start(cfg, hubspot, metrics, err, sizeof err);
    if (!callbacks && err[0])
        goto fail;

    struct consumer_hooks ch = {.opaque = metrics,
                                .in_flight = metrics_on_in_flight,
                                .paused = metrics_on_paused,
                                .assigned = metrics_on_assigned,
                                .lag = metrics_on_lag,
                                .heartbeat = metrics_on_heartbeat,
                                .held = metrics_on_held};
    /* the same workers consume the retry topic (worker/delay.h; README "How a failure
     * travels") */
    const char *topics[] = {config_get_str(cfg, "kafka.topic.actions"),
                            config_get_str(cfg, "kafka.topic.retry"), NULL};
    struct consumer_params cp = {.cfg = cfg,
                                 .topics = topics,
                                 .handler = pipeline_sched_handler,
                                 .opaque = pipeline,
                                 .thread_new = pipeline_sched_thread_new,
                                 .thread_free = pipeline_sched_thread_free,
                                 .producer = producer,
                                 .hooks = &ch};
    consumer = consumer_new(&cp, err, sizeof err);
    if (!consumer)
        goto fail;

    const char *listen = config_get_str(cfg, "metrics.listen");
    struct httpd_limits lim;

    settings_httpd_limits(cfg, &lim);
    if (listen && *listen) {
        rs.metrics = metrics;
        rs.cfg = cfg;
        httpd = httpd_start_limited(listen, &lim, metrics, ready_check, &rs, err, sizeof err);
        if (!httpd)
            goto fail;
        log_info("metrics endpoint on %s (port %d)", listen, httpd_port(httpd));
    }

    g_consumer = consumer;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    struct log_field f[] = {LF_STR("version", version),
                            LF_STR("group", config_get_str(cfg, "kafka.group.id")),
                            LF_STR("topic", config_get_str(cfg, "kafka.topic.actions")),
                            LF_INT("threads", config_get_int(cfg, "worker.threads"))};
    log_fields(LOG_INFO, "hsqb-worker running", f, sizeof f / sizeof *f);

    if (consumer_run(consumer, err, sizeof err) == 0) {
        rc = EXIT_OK;
        log_info("hsqb-worker stopped cleanly");
    } else {
        rc = EXIT_FAIL;
        log_error("hsqb-worker stopping after a runtime failure: %s", err);
    }
    /* after the consumer's drain; briefly: what it holds is sent, what it cannot send (and
     * results it has not read yet) stays uncommitted and goes at the next start, and the
     * whole stop must fit the orchestrator's grace period (drain + this) */
    int64_t cb_drain = config_get_ms(cfg, "shutdown.drain_timeout");
    callbacks_stop(callbacks, cb_drain < CALLBACKS_STOP_MS ? cb_drain : CALLBACKS_STOP_MS);
    callbacks = NULL;
    goto out;

fail:
    log_error("hsqb-worker run: start-up failed: %s", err);
    fprintf(stderr, "hsqb-worker run: %s\n", err);
    rc = EXIT_USAGE;
out:
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    httpd_stop(httpd);
    g_consumer = NULL;
    consumer_free(consumer);
    callbacks_stop(callbacks, 0); /* start-up failed after it started */
    pipeline_free(pipeline);
    producer_free(producer);
    qbo_api_free(qbo);
    hubspot_api_free(hubspot);
    oauth_free(oauth);
    ratelimit_free(rl);
    metrics_free(metrics);
    redis_conn_free(rs.redis);
    config_free(cfg);
    return rc;
}
