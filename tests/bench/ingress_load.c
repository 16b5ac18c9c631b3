/* ingress_load.c - a load generator for `hsqb-worker ingress` (make bench, scenario ingress).
 *
 * Plays HubSpot's workflow engine at volume: N distinct execution requests (callbackIds
 * bench-<run>-<i>, deals cycling over --objects ids), each signed with v3 (HMAC-SHA-256,
 * millisecond timestamp) by this program, sent over C keep-alive HTTP/1.1 connections,
 * closed loop (each connection sends its next request when the answer arrived) or paced
 * at --rate requests/s overall. Everything is prepared before the clock starts, so the
 * generator spends its time on sockets only.
 *
 * Output: one JSON line on stdout {sent, ok, status{code:n}, seconds, rps, p50_ms, p90_ms,
 * p99_ms, max_ms, errors} and, with --ok-file, the callbackIds answered 200 (one per line)
 * so the caller can check each is durable in Kafka.
 *
 *   ingress_load --url http://127.0.0.1:8080/hubspot/actions/create_invoice \
 *       --public-url http://127.0.0.1:8080 --secret S --requests 20000 --connections 64
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/hash.h"

#define MAX_CONN 4096
#define RBUF     8192

struct conn {
    int fd;
    long cur;         /* request index in flight, -1 none */
    int64_t sent_us;  /* when it was written */
    size_t woff;      /* bytes of the request written */
    char rbuf[RBUF];
    size_t rlen;
};

static char **reqs;    /* full HTTP request text per index */
static size_t *reqlen;
static int *status_of; /* answer status per index */
static int64_t *lat_us;
static char host[256], path[1024];
static int port;

static int64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

static int parse_url(const char *url)
{
    const char *p = url;

    if (strncmp(p, "http://", 7) != 0)
        return -1;
    p += 7;
    const char *colon = strchr(p, ':'), *slash = strchr(p, '/');
    if (!colon || !slash || colon > slash)
        return -1;
    snprintf(host, sizeof host, "%.*s", (int)(colon - p), p);
    port = atoi(colon + 1);
    snprintf(path, sizeof path, "%s", slash);
    return 0;
}

static int connect_one(void)
{
    struct sockaddr_in sa = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    if (fd < 0)
        return -1;
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, host, &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* One complete answer at the start of c->rbuf: its status, and bytes consumed; 0 when
 * incomplete. */
static size_t parse_answer(struct conn *c, int *status)
{
    char *end, *cl;
    size_t hlen, blen = 0;

    c->rbuf[c->rlen < RBUF ? c->rlen : RBUF - 1] = '\0';
    end = strstr(c->rbuf, "\r\n\r\n");
    if (!end)
        return 0;
    hlen = (size_t)(end - c->rbuf) + 4;
    cl = strcasestr(c->rbuf, "\r\nContent-Length:");
    if (cl && cl < end)
        blen = (size_t)strtoul(cl + 17, NULL, 10);
    if (c->rlen < hlen + blen)
        return 0;
    *status = atoi(c->rbuf + 9);
    return hlen + blen;
}

static void build_requests(long n, const char *public_url, const char *secret, const char *run,
                           long objects, long portal, const char *realm)
{
    char body[2048], uri[2048], ts[32], sig[HUBSPOT_SIG_MAX + 64];
    long i;

    snprintf(uri, sizeof uri, "%s%s", public_url, path);
    snprintf(ts, sizeof ts, "%lld", (long long)(time(NULL) * 1000LL));
    for (i = 0; i < n; i++) {
        int bl = snprintf(body, sizeof body,
                          "{\"callbackId\":\"bench-%s-%ld\",\"origin\":{\"portalId\":%ld,"
                          "\"actionDefinitionId\":10646377,\"actionDefinitionVersion\":1},"
                          "\"context\":{\"source\":\"WORKFLOWS\",\"workflowId\":192814114},"
                          "\"object\":{\"objectId\":%ld,\"objectType\":\"DEAL\"},"
                          "\"inputFields\":{\"qbo_realm_id\":\"%s\",\"payment_terms\":\"Net 30\"}}",
                          run, i, portal, 1001 + i % objects, realm);
        struct hubspot_sig_req sr = {"POST", uri, body, (size_t)bl, ts};

        if (hash_hubspot_sign(HUBSPOT_SIG_V3, secret, &sr, sig, sizeof sig) < 0) {
            fprintf(stderr, "ingress_load: signing failed\n");
            exit(2);
        }
        size_t cap = (size_t)bl + 1024;
        reqs[i] = malloc(cap);
        reqlen[i] = (size_t)snprintf(reqs[i], cap,
                                     "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: "
                                     "application/json\r\nContent-Length: %d\r\n"
                                     "X-HubSpot-Signature-v3: %s\r\nX-HubSpot-Request-Timestamp: %s"
                                     "\r\n\r\n%s",
                                     path, host, port, bl, sig, ts, body);
    }
}

int main(int argc, char **argv)
{
    const char *url = NULL, *public_url = NULL, *secret = NULL, *ok_file = NULL,
               *run = "r", *realm = "4620816365014867780";
    long n = 1000, nconn = 32, objects = 8, portal = 102670506, next = 0, done = 0, errors = 0;
    double rate = 0;
    static const struct option opts[] = {
        {"url", 1, 0, 'u'},       {"public-url", 1, 0, 'p'}, {"secret", 1, 0, 's'},
        {"requests", 1, 0, 'n'},  {"connections", 1, 0, 'c'}, {"rate", 1, 0, 'r'},
        {"ok-file", 1, 0, 'o'},   {"run", 1, 0, 'R'},        {"objects", 1, 0, 'O'},
        {"portal", 1, 0, 'P'},    {"realm", 1, 0, 'm'},      {0, 0, 0, 0}};
    int o, ep, i;

    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'u': url = optarg; break;
        case 'p': public_url = optarg; break;
        case 's': secret = optarg; break;
        case 'n': n = atol(optarg); break;
        case 'c': nconn = atol(optarg); break;
        case 'r': rate = atof(optarg); break;
        case 'o': ok_file = optarg; break;
        case 'R': run = optarg; break;
        case 'O': objects = atol(optarg); break;
        case 'P': portal = atol(optarg); break;
        case 'm': realm = optarg; break;
        default: return 2;
        }
    }
    if (!url || !public_url || !secret || n < 1 || nconn < 1 || nconn > MAX_CONN || objects < 1 ||
        parse_url(url) < 0) {
        fprintf(stderr, "usage: ingress_load --url http://HOST:PORT/PATH --public-url U "
                        "--secret S [--requests N] [--connections C] [--rate R] [--ok-file F]\n");
        return 2;
    }
    reqs = calloc((size_t)n, sizeof *reqs);
    reqlen = calloc((size_t)n, sizeof *reqlen);
    status_of = calloc((size_t)n, sizeof *status_of);
    lat_us = calloc((size_t)n, sizeof *lat_us);
    build_requests(n, public_url, secret, run, objects, portal, realm);

    struct conn *cs = calloc((size_t)nconn, sizeof *cs);
    ep = epoll_create1(0);
    for (i = 0; i < nconn; i++) {
        cs[i].fd = connect_one();
        cs[i].cur = -1;
        if (cs[i].fd < 0) {
            fprintf(stderr, "ingress_load: connect: %s\n", strerror(errno));
            return 1;
        }
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
    }
    int64_t t0 = now_us();
    struct epoll_event evs[256];
    while (done < n) {
        int k = epoll_wait(ep, evs, 256, rate > 0 ? 1 : 1000);
        for (int e = 0; e < k; e++) {
            struct conn *c = &cs[evs[e].data.u32];

            if (c->cur < 0 && next < n &&
                (rate <= 0 || (double)(now_us() - t0) >= (double)next * 1e6 / rate)) {
                c->cur = next++;
                c->woff = 0;
                c->sent_us = now_us();
            }
            if (c->cur >= 0 && c->woff < reqlen[c->cur]) {
                ssize_t w = write(c->fd, reqs[c->cur] + c->woff, reqlen[c->cur] - c->woff);
                if (w > 0)
                    c->woff += (size_t)w;
            }
            if (evs[e].events & EPOLLIN) {
                ssize_t r = read(c->fd, c->rbuf + c->rlen, RBUF - 1 - c->rlen);
                if (r <= 0) {
                    if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                        /* connection closed: count the request as an error, reconnect */
                        if (c->cur >= 0) {
                            status_of[c->cur] = 0;
                            done++;
                            errors++;
                        }
                        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                        close(c->fd);
                        c->fd = connect_one();
                        c->cur = -1;
                        c->rlen = 0;
                        if (c->fd >= 0) {
                            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT,
                                                     .data.u32 = evs[e].data.u32};
                            epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
                        }
                    }
                    continue;
                }
                c->rlen += (size_t)r;
                int st;
                size_t used = parse_answer(c, &st);
                if (used > 0 && c->cur >= 0) {
                    status_of[c->cur] = st;
                    lat_us[c->cur] = now_us() - c->sent_us;
                    done++;
                    c->cur = -1;
                    memmove(c->rbuf, c->rbuf + used, c->rlen - used);
                    c->rlen -= used;
                    if (next < n && (rate <= 0 || (double)(now_us() - t0) >=
                                                      (double)next * 1e6 / rate)) {
                        c->cur = next++;
                        c->woff = 0;
                        c->sent_us = now_us();
                        ssize_t w = write(c->fd, reqs[c->cur], reqlen[c->cur]);
                        if (w > 0)
                            c->woff = (size_t)w;
                    }
                }
            }
        }
        if (rate > 0) /* paced: idle connections pick up work on the next wake-up */
            for (i = 0; i < nconn && next < n; i++) {
                struct conn *c = &cs[i];
                if (c->cur < 0 && (double)(now_us() - t0) >= (double)next * 1e6 / rate) {
                    c->cur = next++;
                    c->sent_us = now_us();
                    ssize_t w = write(c->fd, reqs[c->cur], reqlen[c->cur]);
                    c->woff = w > 0 ? (size_t)w : 0;
                }
            }
    }
    double secs = (double)(now_us() - t0) / 1e6;
    long ok = 0, counts[600] = {0};
    int64_t *sorted = malloc((size_t)n * sizeof *sorted);
    FILE *okf = ok_file ? fopen(ok_file, "w") : NULL;
    for (long j = 0; j < n; j++) {
        sorted[j] = lat_us[j];
        if (status_of[j] >= 0 && status_of[j] < 600)
            counts[status_of[j]]++;
        if (status_of[j] == 200) {
            ok++;
            if (okf)
                fprintf(okf, "bench-%s-%ld\n", run, j);
        }
    }
    if (okf)
        fclose(okf);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp64);
    printf("{\"sent\":%ld,\"ok\":%ld,\"errors\":%ld,\"seconds\":%.3f,\"rps\":%.1f,"
           "\"p50_ms\":%.2f,\"p90_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f,\"status\":{",
           n, ok, errors, secs, (double)n / secs, sorted[n / 2] / 1000.0,
           sorted[(long)(n * 0.9)] / 1000.0, sorted[(long)(n * 0.99)] / 1000.0,
           sorted[n - 1] / 1000.0);
    int first = 1;
    for (i = 0; i < 600; i++)
        if (counts[i]) {
            printf("%s\"%d\":%ld", first ? "" : ",", i, counts[i]);
            first = 0;
        }
    printf("}}\n");
    return 0;
}
