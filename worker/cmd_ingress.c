/* cmd_ingress.c - `hsqb-worker ingress`: wire the HubSpot-facing endpoint and run it.
 *
 *   settings -> log level, secrets registered -> libcurl -> metrics -> producer (its own:
 *   client.id hsqb-ingress, linger 2 ms, Nagle off, message.timeout.ms =
 *   ingress.produce_timeout, so every request gets its delivery report in time to answer)
 *   -> the actions topic's metadata -> options (QBO through the stored credentials) -> the
 *   connect pages (worker/connect.h; off without ingress.session_secret) -> ingress
 *   (ingress.listen) -> operations endpoint (metrics.listen: /metrics, /healthz, /readyz)
 *   -> signals.
 *
 * The main thread only stamps the liveness heartbeat until SIGTERM/SIGINT; then the
 * ingress stops accepting, lets requests waiting for Kafka finish within
 * shutdown.drain_timeout, and the producer is flushed.
 *
 * Readiness = the producer has no fatal error and can fetch the actions topic's metadata
 * (a broker answers); failing it takes the replica out of the load balancer without a
 * restart (a fatal producer error, e.g. of idempotence, needs one: the liveness probe does
 * not see it, so the replica also logs it as an error).
 */
#include "worker/cmd_ingress.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "common/clock.h"
#include "common/http.h"
#include "common/log.h"
#include "worker/connect.h"
#include "worker/exitcode.h"
#include "worker/httpd.h"
#include "worker/ingress.h"
#include "worker/ingress_options.h"
#include "worker/metrics.h"
#include "worker/producer.h"
#include "worker/settings.h"

#define INGRESS_LINGER_MS     2
#define INGRESS_WARM_MS       5000
#define INGRESS_READY_META_MS 1000

static atomic_int g_stop;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&g_stop, 1);
}

struct ingress_ready {
    struct producer *producer;
    const char *topic;
};

static int ready_check(void *opaque, char *why, size_t whysz)
{
    struct ingress_ready *rs = opaque;
    rd_kafka_t *rk = producer_handle(rs->producer);
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, rs->topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err;
    char fatal[256];

    if (rd_kafka_fatal_error(rk, fatal, sizeof fatal) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (t)
            rd_kafka_topic_destroy(t);
        snprintf(why, whysz, "kafka producer failed for good: %s", fatal);
        return 0;
    }
    if (!t) {
        snprintf(why, whysz, "kafka: cannot look up topic %s", rs->topic);
        return 0;
    }
    err = rd_kafka_metadata(rk, 0, t, &md, INGRESS_READY_META_MS);
    rd_kafka_topic_destroy(t);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(why, whysz, "kafka unreachable: %s", rd_kafka_err2str(err));
        return 0;
    }
    if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(why, whysz, "kafka topic %s: %s", rs->topic,
                 md->topic_cnt == 1 ? rd_kafka_err2str(md->topics[0].err) : "not found");
        rd_kafka_metadata_destroy(md);
        return 0;
    }
    rd_kafka_metadata_destroy(md);
    return 1;
}

int cmd_ingress(int argc, char **argv, const char *version)
{
    char err[512];
    int rc = EXIT_USAGE;
    struct config *cfg = NULL;
    struct metrics *metrics = NULL;
    struct producer *producer = NULL;
    struct ingress_options *options = NULL;
    struct connect *connect = NULL;
    struct ingress *in = NULL;
    struct httpd *httpd = NULL;
    struct ingress_ready rs;

    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: hsqb-worker ingress [--config FILE] [--key=value ...]\n"
               "Serves HubSpot's actionUrl (POST /hubspot/actions[/<action>]) and optionsUrl\n"
               "(POST /hubspot/options) on ingress.listen; needs ingress.public_url and\n"
               "ingress.client_secrets besides the worker's settings (hsqb-worker --help).\n"
               "With ingress.session_secret it also serves the pages that connect QuickBooks\n"
               "companies (/qbo/connect, /qbo/callback, /qbo/disconnect) and install the\n"
               "HubSpot app (/hubspot/install, /hubspot/oauth-callback).\n");
        return EXIT_OK;
    }
    if (settings_load(&cfg, argc, argv, (char **)config_environ(), err, sizeof err) != 0) {
        fprintf(stderr, "hsqb-worker ingress: %s\n", err);
        return EXIT_USAGE;
    }
    int lvl = log_level_parse(config_get_str(cfg, "log.level"));
    log_set_level(lvl < 0 ? LOG_INFO : (enum log_level)lvl);
    settings_register_secrets(cfg);
    settings_warn_unsealed(cfg);

    if (http_global_init(err, sizeof err) != 0)
        goto fail;
    if ((metrics = metrics_new(version, 0, err, sizeof err)) == NULL)
        goto fail;
    struct producer_tuning tune = {"hsqb-ingress", INGRESS_LINGER_MS,
                                   config_get_ms(cfg, "ingress.produce_timeout"), 1};
    if ((producer = producer_new_tuned(cfg, &tune, err, sizeof err)) == NULL)
        goto fail;
    const char *topic = config_get_str(cfg, "kafka.topic.actions");
    if (producer_warm(producer, &topic, 1, INGRESS_WARM_MS, err, sizeof err) < 0)
        log_warn("%s; requests wait until the topic is known (deploy/README.md)", err);
    options = ingress_options_new(cfg, metrics, err, sizeof err);
    if (!options)
        log_warn("ingress: options are not served (%s); POST /hubspot/options answers 503", err);
    if ((connect = connect_new(cfg, metrics, err, sizeof err)) == NULL)
        goto fail;
    if (!*config_get_str(cfg, "ingress.session_secret"))
        log_warn("ingress: ingress.session_secret is not set: the connect and install pages "
                 "answer 503");
    struct ingress_params ip = {cfg, metrics, producer, options, connect};
    if ((in = ingress_start(&ip, err, sizeof err)) == NULL)
        goto fail;
    log_info("ingress on %s (port %d) for %s", config_get_str(cfg, "ingress.listen"),
             ingress_port(in), config_get_str(cfg, "ingress.public_url"));

    const char *listen = config_get_str(cfg, "metrics.listen");
    struct httpd_limits lim;

    settings_httpd_limits(cfg, &lim);
    rs = (struct ingress_ready){producer, topic};
    if (listen && *listen) {
        if ((httpd = httpd_start_limited(listen, &lim, metrics, ready_check, &rs, err, sizeof err)) == NULL)
            goto fail;
        log_info("metrics endpoint on %s (port %d)", listen, httpd_port(httpd));
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    struct log_field f[] = {LF_STR("version", version), LF_STR("topic", topic),
                            LF_INT("port", ingress_port(in))};
    log_fields(LOG_INFO, "hsqb-worker ingress running", f, sizeof f / sizeof *f);
    while (!atomic_load(&g_stop)) {
        metrics_heartbeat(metrics);
        clock_sleep_ms(200);
    }
    log_info("ingress: stopping (%lld requests waiting for Kafka)", (long long)ingress_pending(in));
    rc = EXIT_OK;
    goto out;

fail:
    log_error("hsqb-worker ingress: start-up failed: %s", err);
    fprintf(stderr, "hsqb-worker ingress: %s\n", err);
    rc = EXIT_USAGE;
out:
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    ingress_stop(in, config_get_ms(cfg, "shutdown.drain_timeout"));
    httpd_stop(httpd);
    ingress_options_free(options);
    connect_free(connect);
    producer_free(producer);
    metrics_free(metrics);
    config_free(cfg);
    if (rc == EXIT_OK)
        log_info("hsqb-worker ingress stopped cleanly");
    return rc;
}
