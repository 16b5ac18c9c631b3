/* ingress.c - HubSpot's actionUrl and optionsUrl on libmicrohttpd (see ingress.h).
 *
 * One request's life: MHD's URI-log callback allocates its struct req (and keeps the raw
 * request target, path and query exactly as sent, which the signature covers); the
 * access handler checks route, method, content type and length on its first call,
 * gathers the body on the next ones, and on the last one verifies the signature and
 * either answers at once (options, errors) or builds the event, suspends the connection
 * and hands the event to the producer. The delivery report (producer poll thread) writes
 * the answer into the req and resumes the connection; MHD then calls the handler once
 * more, which queues the answer. So a request waiting for Kafka holds no thread, and a
 * small pool serves thousands of requests in flight.
 *
 * A req is reference-counted: the connection holds one reference until MHD's
 * completion callback, and a queued delivery holds one until its report. Both sides
 * touch the req under in->mu; MHD_resume_connection() is called outside it.
 *
 * Shutdown: MHD_quiesce_daemon() closes the listening socket (no new connections), the
 * deliveries in flight are waited for (their answers still go out), and any request
 * still suspended after the drain window is answered 503 so no connection is left
 * suspended when the daemon stops (MHD requires that).
 *
 * This file is the daemon; the answers are in ingress_answer.c and the checks before a
 * body is read in ingress_check.c (ingress_internal.h).
 */
#include "worker/ingress.h"

#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/clock.h"
#include "common/log.h"
#include "worker/guard.h"
#include "worker/httpd.h"
#include "worker/ingress_internal.h"
#include "worker/metrics.h"
#include "worker/producer.h"
#include "worker/settings.h"

#define INGRESS_CONN_TIMEOUT    30   /* s a connection may sit idle */
#define INGRESS_ANSWER_GRACE_MS 1000 /* at stop: resumed answers may go out meanwhile */

/* ---- the MHD handlers -------------------------------------------------------------------- */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    struct req *r = calloc(1, sizeof(*r));

    if (!r)
        return NULL;
    r->in = cls;
    r->conn = c;
    r->refs = 1;
    r->uri = strndup(uri ? uri : "", INGRESS_URI_MAX); /* longer: answered 414 */
    if (!r->uri) {
        free(r);
        return NULL;
    }
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct ingress *in = cls;
    struct req *r = *req_cls;

    (void)toe;
    guard_request_done(c); /* a keep-alive connection's next request gets the deadline */
    if (!r)
        return;
    pthread_mutex_lock(&in->mu);
    if (r->resumed) {
        r->resumed = 0;
        in->resumed--;
        pthread_cond_broadcast(&in->idle);
    }
    ingress_req_unref_locked(r);
    pthread_mutex_unlock(&in->mu);
    *req_cls = NULL;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **req_cls)
{
    struct ingress *in = cls;
    struct req *r = *req_cls;
    const char *reason = "mismatch";
    char why[256], msg[320];

    (void)version;
    if (!r)
        return MHD_NO; /* out of memory at the start: drop the connection */
    switch (r->state) {
    case ST_NEW:
        r->state = ST_READING;
        if (ingress_check_headers(in, r, c, url, method) < 0)
            return ingress_queue_answer(r, c);
        return MHD_YES;
    case ST_READING:
        break;
    case ST_WAITING:
        return MHD_YES; /* not reached: a suspended connection is not called */
    case ST_ANSWER:
        return ingress_queue_answer(r, c);
    }
    if (*upload_size > 0) {
        if (ingress_append_body(in, r, upload, *upload_size) < 0)
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    r->t0_ms = clock_mono_ms();
    guard_request_read(c); /* read whole: waiting for Kafka or a vendor is ours */
    if (r->too_large) {
        snprintf(msg, sizeof msg, "the body exceeds %zu bytes", ingress_body_max(in, r));
        ingress_req_set_message(r, MHD_HTTP_CONTENT_TOO_LARGE, msg);
        return ingress_queue_answer(r, c);
    }
    if (r->route == ROUTE_CONNECT) /* browsers sign nothing: the pages check links, states */
        return ingress_answer_connect(in, r, c);
    struct ingress_sig_headers sh = ingress_signature_headers(c);

    if (ingress_signer_verify(&in->sign, &sh, r->uri, r->body, r->len, clock_wall_ms(), &reason,
                              why, sizeof why) < 0) {
        metrics_ingress_signature_failure(in->m, reason);
        ingress_log_refusal(in, c, why);
        snprintf(msg, sizeof msg, "signature refused: %s", why);
        ingress_req_set_message(r, MHD_HTTP_UNAUTHORIZED, msg);
        return ingress_queue_answer(r, c);
    }
    if (r->route == ROUTE_OPTIONS)
        return ingress_answer_options(in, r, c);
    return ingress_start_action(in, r, c);
}

static void mhd_logger(void *opaque, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void mhd_logger(void *opaque, const char *fmt, va_list ap)
{
    char msg[256];
    size_t n;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    guard_log(((struct ingress *)opaque)->guard, msg);
}

/* ---- start / stop ------------------------------------------------------------------------ */

static int load_settings(struct ingress *in, const struct config *cfg, char *errstr, size_t errsz)
{
    struct settings_realm_pair pairs[INGRESS_MAX_DEFS];
    size_t n, i;

    if (ingress_signer_load(&in->sign, cfg, errstr, errsz) < 0)
        return -1;
    if (settings_realm_pairs("ingress.action_definitions",
                             config_get_str(cfg, "ingress.action_definitions"), pairs,
                             INGRESS_MAX_DEFS, &n, errstr, errsz) < 0)
        return -1;
    for (i = 0; i < n; i++) {
        struct ingress_action_def *d = &in->defs[in->ndefs];

        if (strlen(pairs[i].realm) > 18 || event_action_from_name(pairs[i].value, &d->action) < 0) {
            snprintf(errstr, errsz,
                     "ingress.action_definitions: \"%s=%s\" is not <definition id>=<action>",
                     pairs[i].realm, pairs[i].value);
            return -1;
        }
        d->id = strtoll(pairs[i].realm, NULL, 10);
        in->ndefs++;
    }
    snprintf(in->expiration, sizeof in->expiration, "%s",
             config_get_str(cfg, "ingress.expiration"));
    snprintf(in->topic, sizeof in->topic, "%s", config_get_str(cfg, "kafka.topic.actions"));
    in->max_body = (size_t)config_get_bytes(cfg, "ingress.max_body");
    return 0;
}

static void free_ingress(struct ingress *in)
{
    ingress_signer_release(&in->sign);
    free(in->waiting);
    guard_free(in->guard); /* the daemon stopped, or never started */
    pthread_mutex_destroy(&in->mu);
    pthread_cond_destroy(&in->idle);
    pthread_mutex_destroy(&in->job_mu);
    pthread_cond_destroy(&in->job_cv);
    free(in);
}

struct ingress *ingress_start(const struct ingress_params *p, char *errstr, size_t errsz)
{
    struct ingress *in = calloc(1, sizeof(*in));
    struct addrinfo *ai = NULL;
    const union MHD_DaemonInfo *info;
    const char *listen = config_get_str(p->cfg, "ingress.listen");
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;

    if (!in) {
        snprintf(errstr, errsz, "ingress: out of memory");
        return NULL;
    }
    pthread_mutex_init(&in->mu, NULL);
    clock_cond_init(&in->idle);
    pthread_mutex_init(&in->job_mu, NULL);
    pthread_cond_init(&in->job_cv, NULL);
    in->m = p->metrics;
    in->producer = p->producer;
    in->options = p->options;
    in->connect = p->connect;
    if (load_settings(in, p->cfg, errstr, errsz) < 0 ||
        httpd_parse_listen("ingress.listen", listen, &ai, errstr, errsz) < 0 ||
        !(in->guard = guard_new("ingress", config_get_ms(p->cfg, "ingress.request_deadline"),
                                errstr, errsz)))
        goto fail;
    if (ingress_jobs_start(in, errstr, errsz) < 0)
        goto fail;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    in->d = MHD_start_daemon(
        flags, 0, NULL, NULL, handle, in, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, in,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)config_get_int(p->cfg, "ingress.threads"), MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)config_get_int(p->cfg, "ingress.max_connections"),
        MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)config_get_int(p->cfg, "ingress.max_connections_per_ip"),
        MHD_OPTION_NOTIFY_CONNECTION, guard_on_connection, in->guard, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)INGRESS_CONN_TIMEOUT, MHD_OPTION_URI_LOG_CALLBACK, on_uri, in,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, in, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_END);
    if (!in->d) {
        snprintf(errstr, errsz, "ingress.listen \"%s\": cannot start the HTTP server", listen);
        goto fail;
    }
    info = MHD_get_daemon_info(in->d, MHD_DAEMON_INFO_BIND_PORT);
    in->port = info ? info->port : 0;
    freeaddrinfo(ai);
    return in;
fail:
    if (ai)
        freeaddrinfo(ai);
    ingress_jobs_stop(in);
    free_ingress(in);
    return NULL;
}

int ingress_port(const struct ingress *in)
{
    return in ? in->port : 0;
}

int64_t ingress_pending(const struct ingress *in)
{
    int64_t n;

    if (!in)
        return 0;
    pthread_mutex_lock((pthread_mutex_t *)&in->mu);
    n = in->pending;
    pthread_mutex_unlock((pthread_mutex_t *)&in->mu);
    return n;
}

void ingress_stop(struct ingress *in, int64_t drain_ms)
{
    struct timespec ts;
    MHD_socket s;
    struct MHD_Connection *resume[64];
    size_t n, i, forced = 0;

    if (!in)
        return;
    pthread_mutex_lock(&in->mu);
    in->stopping = 1; /* requests on kept-alive connections: 503 and Connection: close */
    pthread_mutex_unlock(&in->mu);
    s = MHD_quiesce_daemon(in->d);
    if (s != MHD_INVALID_SOCKET)
        close(s);
    clock_timespec(clock_mono_ms() + (drain_ms > 0 ? drain_ms : 0), &ts);
    pthread_mutex_lock(&in->mu);
    while (in->pending > 0 && pthread_cond_timedwait(&in->idle, &in->mu, &ts) == 0)
        ;
    /* still waiting for Kafka or QuickBooks: answer 503 (HubSpot retries) so nothing stays
     * suspended; their delivery reports and jobs only drop their reference later */
    do {
        n = 0;
        while (in->nwaiting > 0 && n < sizeof resume / sizeof *resume) {
            struct req *r = in->waiting[--in->nwaiting];

            ingress_req_set_message(r, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down; retry later");
            r->close = 1;
            r->suspended = 0;
            r->resumed = 1;
            in->resumed++;
            resume[n++] = r->conn;
        }
        in->resuming += (int64_t)n;
        pthread_mutex_unlock(&in->mu);
        for (i = 0; i < n; i++)
            MHD_resume_connection(resume[i]);
        pthread_mutex_lock(&in->mu);
        in->resuming -= (int64_t)n;
        forced += n;
    } while (in->nwaiting > 0);
    /* every resume has returned, and the answers resumed go out (bounded) */
    clock_timespec(clock_mono_ms() + INGRESS_ANSWER_GRACE_MS, &ts);
    while (in->resuming > 0 ||
           (in->resumed > 0 && pthread_cond_timedwait(&in->idle, &in->mu, &ts) == 0)) {
        if (in->resuming > 0) {
            struct timespec brief;

            clock_timespec(clock_mono_ms() + 10, &brief);
            pthread_cond_timedwait(&in->idle, &in->mu, &brief);
        }
    }
    pthread_mutex_unlock(&in->mu);
    if (forced > 0)
        log_warn("ingress: %zu requests still waiting at the end of the drain were answered 503",
                 forced);
    MHD_stop_daemon(in->d);
    ingress_jobs_stop(in);
    /* the delivery reports still to come use in: every request is answered, so fail what
     * is still queued now rather than after ingress.produce_timeout (HubSpot got 503 and
     * retries; a purged message that reached the broker anyway is deduplicated) */
    if (forced > 0)
        producer_purge(in->producer);
    pthread_mutex_lock(&in->mu);
    while (in->pending > 0) {
        clock_timespec(clock_mono_ms() + 1000, &ts);
        pthread_cond_timedwait(&in->idle, &in->mu, &ts);
    }
    pthread_mutex_unlock(&in->mu);
    free_ingress(in);
}
