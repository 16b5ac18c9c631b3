/* httpd.h - the worker's operations endpoint: /metrics, /healthz, /readyz.
 *
 * Owns: one libmicrohttpd daemon with its single internal polling thread, bound to
 * metrics.listen. Routes (GET and HEAD only; any other method is 405 with an Allow
 * header; any other path is 404):
 *   GET /metrics  200 text/plain; version=0.0.4; charset=utf-8 (metrics_render()).
 *   GET /healthz  liveness: 200 {"status":"ok",...} when the main loop called
 *                 metrics_heartbeat() (or httpd_heartbeat()) within the liveness window,
 *                 else 503 {"status":"unhealthy","reason":"main loop made no progress for
 *                 N ms (window W ms)"}. Before the first heartbeat the window counts from
 *                 metrics_new(), so start-up gets one window of grace.
 *   GET /readyz   readiness: 200 {"status":"ready"} when the caller's ready callback
 *                 says so, else 503 {"status":"not ready","reason":"<its reason>"}.
 *                 A NULL callback means always ready.
 * Bounds (struct httpd_limits, from the metrics.* settings): at most max_connections
 * concurrent connections and max_per_ip from one client address, an absolute deadline
 * per request (worker/guard.h: a client trickling its headers is cut off however often
 * it sends a byte), HTTPD_CONN_TIMEOUT_S idle timeout, HTTPD_MEMORY_LIMIT bytes of
 * headers per connection, request bodies never read (only GET/HEAD are served). So
 * slow or idle clients cannot hold /healthz unanswered: the liveness probe needs one free
 * slot, and no address can take more than max_per_ip of them, or keep one longer than
 * the deadline.
 *
 * Thread-safety: httpd_start()/httpd_stop() on one thread (start-up / shutdown). The
 * ready callback and metrics_render() run on the MHD thread, one request at a time;
 * the callback must be thread-safe with respect to the rest of the process and return
 * quickly (e.g. read flags kept by the consumer and a Redis PING with a short timeout on
 * a connection owned by the callback's opaque, not a worker thread's). httpd_heartbeat()
 * and httpd_port() may be called from any thread while the server runs.
 */
#ifndef HSQB_HTTPD_H
#define HSQB_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "worker/metrics.h"

struct httpd;

#define HTTPD_MAX_CONNECTIONS     256 /* defaults of struct httpd_limits */
#define HTTPD_MAX_PER_IP          16
#define HTTPD_DEADLINE_MS         5000
#define HTTPD_CONN_TIMEOUT_S      10
#define HTTPD_MEMORY_LIMIT        (32u * 1024) /* bytes of one connection's headers */
#define HTTPD_DEFAULT_LIVENESS_MS 60000 /* /healthz window */
#define HTTPD_MAX_REASON          256   /* bytes of a readiness reason */

/* Readiness callback: return 1 when ready; otherwise 0 and write a short, secret-free
 * reason ("no partitions assigned yet", "redis unreachable: ...") into why (whysz
 * bytes, at most HTTPD_MAX_REASON). Runs on the HTTP thread. */
typedef int (*httpd_ready_fn)(void *opaque, char *why, size_t whysz);

/* Starts the server on listen = "host:port" ("127.0.0.1:9108", "0.0.0.0:9108",
 * "[::1]:9108", "localhost:0"); port 0 binds an ephemeral port (httpd_port() tells
 * which). An empty metrics.listen means "disabled": the caller then does not call this
 * (here "" is an error like any other malformed address).
 * m: borrowed, must outlive the server; may be NULL (then /metrics serves an empty body
 * and /healthz is always 200). ready/opaque: borrowed, ready may be NULL.
 * Returns the server (caller stops it with httpd_stop()), or NULL with errstr filled
 * (bad address, port in use, thread creation failed). */
struct httpd *httpd_start(const char *listen, struct metrics *m, httpd_ready_fn ready, void *opaque,
                          char *errstr, size_t errsz);

struct httpd_limits {
    unsigned max_connections; /* metrics.max_connections */
    unsigned max_per_ip;      /* metrics.max_connections_per_ip; 0 = no cap */
    int64_t deadline_ms;      /* metrics.request_deadline */
};
/* The defaults above into l. */
void httpd_limits_default(struct httpd_limits *l);
/* httpd_start() with limits (NULL: the defaults). */
struct httpd *httpd_start_limited(const char *listen, const struct httpd_limits *limits,
                                  struct metrics *m, httpd_ready_fn ready, void *opaque,
                                  char *errstr, size_t errsz);

struct addrinfo;
/* Splits listen = "host:port" / "[v6]:port" and resolves it (numeric port, no DNS for
 * literals); key names the setting in messages. On success *res is set (caller frees with
 * freeaddrinfo()); -1 with errstr otherwise. */
int httpd_parse_listen(const char *key, const char *listen, struct addrinfo **res, char *errstr,
                       size_t errsz);

/* Stops the daemon (joins its thread, closes the socket) and frees h. h may be NULL. */
void httpd_stop(struct httpd *h);

/* The bound TCP port (useful with port 0). */
int httpd_port(const struct httpd *h);

/* Liveness window for /healthz in ms (> 0; default HTTPD_DEFAULT_LIVENESS_MS). Set it
 * right after start; safe from any thread. */
void httpd_set_liveness_window(struct httpd *h, int64_t window_ms);

/* Same as metrics_heartbeat() on the server's metrics; h may be NULL (no-op). */
void httpd_heartbeat(struct httpd *h);

#endif
