/* http_cost.c - what one exchange of common/http.c costs the calling process, and what a
 * blocking wait costs after an idle time (issue 20: where the worker's CPU goes).
 *
 *   build/http-cost http PORT THREADS REQUESTS_PER_THREAD [LATENCY_MS]
 *       THREADS threads, each with its own client (as the worker's pipeline threads),
 *       send REQUESTS_PER_THREAD sequential keep-alive GETs of a seeded contact to the
 *       sandbox on 127.0.0.1:PORT, after setting its injected latency to LATENCY_MS
 *       (default 0; the sandbox's HubSpot rate limit is lifted). Prints the process's CPU
 *       (user + sys) and voluntary context switches per request.
 *   build/http-cost loop PORT CONCURRENCY REQUESTS_PER_SLOT [LATENCY_MS]
 *       The same GETs with the same request headers, CONCURRENCY at a time, from ONE
 *       thread: libcurl's multi-socket interface over epoll, each finished transfer's
 *       handle sent again until every slot made REQUESTS_PER_SLOT. What an exchange
 *       would cost an event-loop transport (one wake-up serves every answer that has
 *       arrived), against `http` above (one blocking thread per exchange in flight).
 *   build/http-cost wait ROUNDS IDLE_US
 *       Two threads ping-pong one byte over pipes; the answering one sleeps IDLE_US
 *       first. Prints the asking thread's CPU per round (a write and a blocking read):
 *       the price of one wake-up after that much idle time.
 *
 * The sandbox: build/hsqb-sandbox --listen 127.0.0.1:0 --port-file F --seed tests/sandbox/seed
 * (tests/bench/README.md, "Where the worker's CPU goes", has the figures of 2026-12-07).
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/http.h"

#define TOKEN "pat-na1-11111111-1111-4111-8111-111111111111"
#define MAX_THREADS 512
#define MAX_SLOTS 4096

static char g_url[256];
static int g_per;

static double process_cpu_s(long *nvcsw)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    if (nvcsw)
        *nvcsw = ru.ru_nvcsw;
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static double thread_cpu_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static void *http_thread(void *arg)
{
    struct http_request q = {.method = HTTP_GET, .url = g_url, .bearer = TOKEN};
    struct http_response r;
    struct http_client *c;
    char e[256];

    (void)arg;
    if (!(c = http_client_new(NULL, e, sizeof e))) {
        fprintf(stderr, "http-cost: %s\n", e);
        exit(1);
    }
    http_response_init(&r);
    for (int i = 0; i < g_per; i++) {
        if (http_client_do(c, &q, &r, e, sizeof e) != HTTP_OK || r.status != 200) {
            fprintf(stderr, "http-cost: request failed: %s (status %ld)\n", e, r.status);
            exit(1);
        }
    }
    http_response_release(&r);
    http_client_free(c);
    return NULL;
}

/* Point the sandbox's latency at latency_ms (and lift its HubSpot rate limit), then set
 * g_url to the contact every mode reads. 0, or 1 with a message. */
static int configure(const char *port, int latency_ms)
{
    char cfg[256], body[128], e[256];
    struct http_request q = {.method = HTTP_POST, .url = cfg, .content_type = "application/json"};
    struct http_response r;
    struct http_client *c;
    int rc = 0;

    if (http_global_init(e, sizeof e) < 0 || !(c = http_client_new(NULL, e, sizeof e))) {
        fprintf(stderr, "http-cost: %s\n", e);
        return 1;
    }
    snprintf(cfg, sizeof cfg, "http://127.0.0.1:%s/_sandbox/config", port);
    snprintf(body, sizeof body, "{\"latency_ms\":%d,\"jitter_ms\":0,\"hubspot_rate_10s\":1000000}",
             latency_ms);
    q.body = body;
    q.body_len = strlen(body);
    http_response_init(&r);
    if (http_client_do(c, &q, &r, e, sizeof e) != HTTP_OK || r.status != 200) {
        fprintf(stderr, "http-cost: configuring the sandbox: %s %s\n", e, r.body);
        rc = 1;
    }
    http_response_release(&r);
    http_client_free(c);
    snprintf(g_url, sizeof g_url,
             "http://127.0.0.1:%s/crm/v3/objects/contacts/301?properties=firstname,lastname,email",
             port);
    return rc;
}

static int run_http(const char *port, int threads, int per, int latency_ms)
{
    pthread_t th[MAX_THREADS];
    double c0, c1;
    long s0, s1;
    int n = threads * per;

    if (threads < 1 || threads > MAX_THREADS || per < 1 || latency_ms < 0) {
        fprintf(stderr, "http-cost: 1..%d threads, >= 1 request each, latency >= 0\n",
                MAX_THREADS);
        return 2;
    }
    if (configure(port, latency_ms) != 0)
        return 1;
    g_per = per;
    c0 = process_cpu_s(&s0);
    for (int i = 0; i < threads; i++)
        if (pthread_create(&th[i], NULL, http_thread, NULL) != 0) {
            fprintf(stderr, "http-cost: pthread_create failed\n");
            return 1;
        }
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    c1 = process_cpu_s(&s1);
    printf("http: %d threads x %d requests, latency %d ms: %.1f us CPU and %.2f voluntary "
           "switches per request (threads' set-up included)\n",
           threads, per, latency_ms, (c1 - c0) / n * 1e6, (double)(s1 - s0) / n);
    return 0;
}

/* ---- loop: one thread, libcurl's multi-socket interface over epoll ------------------- */

struct loop {
    CURLM *m;
    int ep;
    long timeout_ms; /* libcurl's timer: -1 none, 0 due now */
    int running;
};

static size_t discard(char *p, size_t size, size_t n, void *opaque)
{
    (void)p;
    (void)opaque;
    return size * n;
}

static int on_socket(CURL *h, curl_socket_t fd, int what, void *opaque, void *sockp)
{
    struct loop *l = opaque;
    struct epoll_event ev = {.data.fd = fd};

    (void)h;
    (void)sockp;
    if (what == CURL_POLL_REMOVE)
        return epoll_ctl(l->ep, EPOLL_CTL_DEL, fd, NULL), 0;
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
    if (epoll_ctl(l->ep, EPOLL_CTL_MOD, fd, &ev) < 0)
        epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev);
    return 0;
}

static int on_timer(CURLM *m, long timeout_ms, void *opaque)
{
    (void)m;
    ((struct loop *)opaque)->timeout_ms = timeout_ms;
    return 0;
}

/* The handle of one slot: the headers common/http.c sends for the same request. */
static CURL *slot_handle(struct curl_slist *hdrs)
{
    CURL *h = curl_easy_init();

    if (h && (curl_easy_setopt(h, CURLOPT_URL, g_url) != CURLE_OK ||
              curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
              curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard) != CURLE_OK ||
              curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
              curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L) != CURLE_OK)) {
        curl_easy_cleanup(h);
        h = NULL;
    }
    return h;
}

/* Finished transfers: check, and send the handle again while requests are left. Returns
 * how many are still in flight, or -1 when one failed. */
static int reap(struct loop *l, int *left, int inflight)
{
    CURLMsg *msg;
    int q;

    while ((msg = curl_multi_info_read(l->m, &q)) != NULL) {
        long status = 0;

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        if (msg->data.result != CURLE_OK || status != 200) {
            fprintf(stderr, "http-cost: request failed: %s (status %ld)\n",
                    curl_easy_strerror(msg->data.result), status);
            return -1;
        }
        curl_multi_remove_handle(l->m, msg->easy_handle);
        inflight--;
        if (*left > 0 && curl_multi_add_handle(l->m, msg->easy_handle) == CURLM_OK) {
            (*left)--;
            inflight++;
        }
    }
    return inflight;
}

static void fire_timer(struct loop *l)
{
    while (l->timeout_ms == 0) {
        l->timeout_ms = -1; /* on_timer sets the next one */
        curl_multi_socket_action(l->m, CURL_SOCKET_TIMEOUT, 0, &l->running);
    }
}

/* Runs the slots until every request is answered. 0, or -1 when one failed. */
static int loop_drive(struct loop *l, int left, int inflight)
{
    struct epoll_event evs[256];

    l->timeout_ms = 0;
    fire_timer(l);
    while (inflight > 0) {
        int n = epoll_wait(l->ep, evs, 256, l->timeout_ms < 0 ? 1000 : (int)l->timeout_ms);

        if (n == 0)
            l->timeout_ms = 0;
        for (int i = 0; i < n; i++) {
            uint32_t e = evs[i].events;
            int f = (e & EPOLLIN ? CURL_CSELECT_IN : 0) | (e & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                    (e & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
            curl_multi_socket_action(l->m, evs[i].data.fd, f, &l->running);
        }
        fire_timer(l);
        if ((inflight = reap(l, &left, inflight)) < 0)
            return -1;
    }
    return 0;
}

static int run_loop(const char *port, int slots, int per, int latency_ms)
{
    static CURL *h[MAX_SLOTS];
    struct loop l = {.timeout_ms = -1};
    struct curl_slist *hdrs = NULL;
    double c0, c1;
    long s0, s1;
    int rc = 1, i = 0;

    if (slots < 1 || slots > MAX_SLOTS || per < 1 || latency_ms < 0) {
        fprintf(stderr, "http-cost: 1..%d slots, >= 1 request each, latency >= 0\n", MAX_SLOTS);
        return 2;
    }
    if (configure(port, latency_ms) != 0)
        return 1;
    hdrs = curl_slist_append(hdrs, "Expect:");
    hdrs = curl_slist_append(hdrs, "User-Agent: hsqb");
    hdrs = curl_slist_append(hdrs, "Authorization: Bearer " TOKEN);
    l.m = curl_multi_init();
    l.ep = epoll_create1(EPOLL_CLOEXEC);
    if (!hdrs || !l.m || l.ep < 0 ||
        curl_multi_setopt(l.m, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
        curl_multi_setopt(l.m, CURLMOPT_SOCKETDATA, &l) != CURLM_OK ||
        curl_multi_setopt(l.m, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
        curl_multi_setopt(l.m, CURLMOPT_TIMERDATA, &l) != CURLM_OK)
        goto out;
    c0 = process_cpu_s(&s0);
    for (i = 0; i < slots; i++)
        if (!(h[i] = slot_handle(hdrs)) || curl_multi_add_handle(l.m, h[i]) != CURLM_OK)
            goto out;
    if (loop_drive(&l, slots * (per - 1), slots) == 0) {
        c1 = process_cpu_s(&s1);
        printf("loop: %d at once x %d requests, latency %d ms: %.1f us CPU and %.2f voluntary "
               "switches per request (handles' set-up included)\n",
               slots, per, latency_ms, (c1 - c0) / ((double)slots * per) * 1e6,
               (double)(s1 - s0) / ((double)slots * per));
        rc = 0;
    }
out:
    if (rc)
        fprintf(stderr, "http-cost: the loop failed\n");
    while (i-- > 0) {
        if (h[i])
            curl_multi_remove_handle(l.m, h[i]);
        curl_easy_cleanup(h[i]);
    }
    if (l.m)
        curl_multi_cleanup(l.m);
    if (l.ep >= 0)
        close(l.ep);
    curl_slist_free_all(hdrs);
    return rc;
}

static int g_ask[2], g_answer[2], g_rounds, g_idle_us;

static void *answer_thread(void *arg)
{
    char b;

    (void)arg;
    for (int i = 0; i < g_rounds; i++) {
        if (read(g_ask[0], &b, 1) != 1)
            break;
        if (g_idle_us > 0)
            usleep((useconds_t)g_idle_us);
        if (write(g_answer[1], &b, 1) != 1)
            break;
    }
    return NULL;
}

static int run_wait(int rounds, int idle_us)
{
    pthread_t th;
    double c0, c1;
    char b = 'x';

    if (rounds < 1 || idle_us < 0 || pipe(g_ask) < 0 || pipe(g_answer) < 0) {
        fprintf(stderr, "http-cost: wait needs rounds >= 1 and idle >= 0\n");
        return 2;
    }
    g_rounds = rounds;
    g_idle_us = idle_us;
    if (pthread_create(&th, NULL, answer_thread, NULL) != 0)
        return 1;
    c0 = thread_cpu_s();
    for (int i = 0; i < rounds; i++)
        if (write(g_ask[1], &b, 1) != 1 || read(g_answer[0], &b, 1) != 1)
            return 1;
    c1 = thread_cpu_s();
    pthread_join(th, NULL);
    printf("wait: %d rounds, answer after %d us idle: %.2f us CPU per write + blocking read\n",
           rounds, idle_us, (c1 - c0) / rounds * 1e6);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 5 && strcmp(argv[1], "http") == 0)
        return run_http(argv[2], atoi(argv[3]), atoi(argv[4]), argc > 5 ? atoi(argv[5]) : 0);
    if (argc >= 5 && strcmp(argv[1], "loop") == 0)
        return run_loop(argv[2], atoi(argv[3]), atoi(argv[4]), argc > 5 ? atoi(argv[5]) : 0);
    if (argc == 4 && strcmp(argv[1], "wait") == 0)
        return run_wait(atoi(argv[2]), atoi(argv[3]));
    fprintf(stderr, "usage: http-cost http PORT THREADS REQUESTS_PER_THREAD [LATENCY_MS]\n"
                    "       http-cost loop PORT CONCURRENCY REQUESTS_PER_SLOT [LATENCY_MS]\n"
                    "       http-cost wait ROUNDS IDLE_US\n");
    return 2;
}
