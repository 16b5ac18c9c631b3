/* httpd.c - /metrics, /healthz and /readyz on one libmicrohttpd thread.
 *
 * One internal polling thread (epoll on Linux through MHD_USE_AUTO, because the worker
 * holds many sockets and select() breaks past FD_SETSIZE) serves a handful of scrapers
 * and probes; a connection cap and an idle timeout keep a misbehaving client from
 * holding it. Requests are answered from their headers alone: only GET and HEAD are
 * served and no body is ever read.
 *
 * Liveness and readiness are separate on purpose. /healthz asks "is the process stuck?"
 * (the poll loop stamps a heartbeat every iteration; a deadlocked loop stops stamping and
 * the orchestrator restarts the container). /readyz asks "should it get work?" (partitions
 * assigned and Redis reachable), which the caller knows; failing readiness never causes
 * a restart, so a Redis outage does not turn into a restart storm.
 */
#include "worker/httpd.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "worker/guard.h"

#define HTTPD_MAX_LISTEN 262 /* bytes of "host:port", as settings.c allows */
#define JSON_BODY_MAX    1024

struct httpd {
    struct MHD_Daemon *d;
    struct guard *guard;
    struct metrics *m;
    httpd_ready_fn ready;
    void *opaque;
    int port;
    _Atomic int64_t window_ms;
    _Atomic int started; /* 0 while starting: logger messages go to starterr */
    char starterr[256];
};

static void mhd_logger(void *opaque, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void mhd_logger(void *opaque, const char *fmt, va_list ap)
{
    struct httpd *h = opaque;
    char msg[256];
    size_t n;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    if (!atomic_load(&h->started)) {
        /* MHD names the port argument (0, since the address carries the port) */
        const char *why = strstr(msg, "Failed to bind to port ");
        if (why && (why = strstr(why, ": ")) != NULL)
            snprintf(h->starterr, sizeof(h->starterr), "bind: %s", why + 2);
        else if (h->starterr[0] == '\0')
            snprintf(h->starterr, sizeof(h->starterr), "%s", msg);
        return;
    }
    guard_log(h->guard, msg);
}

int httpd_parse_listen(const char *key, const char *listen, struct addrinfo **res, char *errstr,
                       size_t errsz)
{
    char host[HTTPD_MAX_LISTEN + 1];
    const char *colon, *port, *hs, *he;
    struct addrinfo hints = {0};
    int rc;

    if (!listen || strlen(listen) > HTTPD_MAX_LISTEN || (colon = strrchr(listen, ':')) == NULL ||
        colon[1] == '\0')
        goto bad;
    port = colon + 1;
    if (strspn(port, "0123456789") != strlen(port) || strlen(port) > 5 ||
        strtol(port, NULL, 10) > 65535)
        goto bad;
    hs = listen;
    he = colon;
    if (*hs == '[') {
        if (he - hs < 2 || he[-1] != ']')
            goto bad;
        hs++;
        he--;
    }
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host[0] != '\0' ? host : NULL, port, &hints, res);
    if (rc != 0) {
        snprintf(errstr, errsz, "%s \"%s\": %s", key, listen, gai_strerror(rc));
        return -1;
    }
    return 0;
bad:
    snprintf(errstr, errsz, "%s \"%.100s\" is not host:port", key, listen ? listen : "");
    return -1;
}

static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned status, const char *ctype,
                                char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    enum MHD_Result ret;

    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* {"status":st[,"reason":reason]} */
static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, const char *st,
                                 const char *reason)
{
    struct jbuf jb;
    const char *txt;
    enum MHD_Result ret;

    jbuf_init(&jb, JSON_BODY_MAX);
    jbuf_obj_open(&jb);
    jbuf_kv_str(&jb, "status", st);
    if (reason)
        jbuf_kv_str(&jb, "reason", reason);
    jbuf_obj_close(&jb);
    txt = jbuf_cstr(&jb);
    if (!txt)
        txt = "{\"status\":\"error\"}";
    ret = send_buf(c, status, "application/json", (char *)txt, strlen(txt), MHD_RESPMEM_MUST_COPY);
    jbuf_release(&jb);
    return ret;
}

static enum MHD_Result serve_metrics(struct httpd *h, struct MHD_Connection *c)
{
    char err[256], *text = NULL;
    size_t len = 0;

    if (!h->m)
        return send_buf(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", (char *)"", 0,
                        MHD_RESPMEM_PERSISTENT);
    if (metrics_render(h->m, &text, &len, err, sizeof(err)) < 0) {
        log_warn("httpd: %s", err);
        return send_json(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "error", err);
    }
    return send_buf(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len,
                    MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result serve_healthz(struct httpd *h, struct MHD_Connection *c)
{
    int64_t last = metrics_last_heartbeat_ms(h->m), window = atomic_load(&h->window_ms);
    int64_t age = last < 0 ? 0 : clock_mono_ms() - last;
    char why[160];

    if (age <= window)
        return send_json(c, MHD_HTTP_OK, "ok", NULL);
    snprintf(why, sizeof(why), "main loop made no progress for %lld ms (window %lld ms)",
             (long long)age, (long long)window);
    return send_json(c, MHD_HTTP_SERVICE_UNAVAILABLE, "unhealthy", why);
}

static enum MHD_Result serve_readyz(struct httpd *h, struct MHD_Connection *c)
{
    char why[HTTPD_MAX_REASON] = "";

    if (!h->ready || h->ready(h->opaque, why, sizeof(why)) == 1)
        return send_json(c, MHD_HTTP_OK, "ready", NULL);
    why[sizeof(why) - 1] = '\0';
    return send_json(c, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready",
                     why[0] != '\0' ? why : "not ready");
}

/* Eight parameters: libmicrohttpd's MHD_AccessHandlerCallback shape. */
static enum MHD_Result handle(void *opaque, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **req_cls)
{
    static int seen; /* address used as "headers already seen" marker */
    struct httpd *h = opaque;
    int get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    int head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;

    (void)version;
    (void)upload;
    if (!get && !head)
        return send_json(c, MHD_HTTP_METHOD_NOT_ALLOWED, "error", "method not allowed");
    if (!*req_cls) {
        *req_cls = &seen;
        return MHD_YES;
    }
    if (*upload_size != 0) {
        *upload_size = 0; /* a GET with a body: ignore it */
        return MHD_YES;
    }
    if (strcmp(url, "/metrics") == 0)
        return serve_metrics(h, c);
    if (strcmp(url, "/healthz") == 0)
        return serve_healthz(h, c);
    if (strcmp(url, "/readyz") == 0)
        return serve_readyz(h, c);
    return send_json(c, MHD_HTTP_NOT_FOUND, "error", "not found");
}

/* MHD_OPTION_NOTIFY_COMPLETED: the next request on the connection gets its deadline. */
static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)req_cls;
    (void)toe;
    guard_request_done(c);
}

void httpd_limits_default(struct httpd_limits *l)
{
    *l = (struct httpd_limits){HTTPD_MAX_CONNECTIONS, HTTPD_MAX_PER_IP, HTTPD_DEADLINE_MS};
}

struct httpd *httpd_start(const char *listen, struct metrics *m, httpd_ready_fn ready, void *opaque,
                          char *errstr, size_t errsz)
{
    return httpd_start_limited(listen, NULL, m, ready, opaque, errstr, errsz);
}

struct httpd *httpd_start_limited(const char *listen, const struct httpd_limits *limits,
                                  struct metrics *m, httpd_ready_fn ready, void *opaque,
                                  char *errstr, size_t errsz)
{
    struct httpd_limits lim;
    struct httpd *h = NULL;
    struct addrinfo *ai = NULL;
    const union MHD_DaemonInfo *info;
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;

    if (httpd_parse_listen("metrics.listen", listen, &ai, errstr, errsz) < 0)
        goto fail;
    if ((h = calloc(1, sizeof(*h))) == NULL) {
        snprintf(errstr, errsz, "httpd: out of memory");
        goto fail;
    }
    if (limits)
        lim = *limits;
    else
        httpd_limits_default(&lim);
    if (!(h->guard = guard_new("metrics", lim.deadline_ms, errstr, errsz)))
        goto fail;
    h->m = m;
    h->ready = ready;
    h->opaque = opaque;
    atomic_init(&h->window_ms, HTTPD_DEFAULT_LIVENESS_MS);
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* the logger must be the first option, or MHD prints earlier messages to stderr */
    h->d = MHD_start_daemon(
        flags, 0, NULL, NULL, handle, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, h,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT, lim.max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, lim.max_per_ip, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)HTTPD_CONN_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)HTTPD_MEMORY_LIMIT, MHD_OPTION_NOTIFY_CONNECTION, guard_on_connection, h->guard,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (!h->d) {
        snprintf(errstr, errsz, "metrics.listen \"%s\": cannot start the HTTP server: %s", listen,
                 h->starterr[0] != '\0' ? h->starterr : "unknown error");
        goto fail;
    }
    atomic_store(&h->started, 1);
    info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    freeaddrinfo(ai);
    return h;
fail:
    if (ai)
        freeaddrinfo(ai);
    if (h)
        guard_free(h->guard);
    free(h);
    return NULL;
}

void httpd_stop(struct httpd *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    guard_free(h->guard);
    free(h);
}

int httpd_port(const struct httpd *h)
{
    return h ? h->port : 0;
}

void httpd_set_liveness_window(struct httpd *h, int64_t window_ms)
{
    if (h && window_ms > 0)
        atomic_store(&h->window_ms, window_ms);
}

void httpd_heartbeat(struct httpd *h)
{
    if (h)
        metrics_heartbeat(h->m);
}
