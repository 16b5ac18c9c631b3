/* test_http.c - the libcurl wrapper against a scripted HTTP/1.1 server on 127.0.0.1.
 *
 * The server runs in a thread of this program: one listening socket on an ephemeral
 * port, one connection served at a time (a new connection replaces the old one), keep-
 * alive honoured. Each request pops the next scripted response (status, headers, body,
 * delay, close without answering, oversized or chunked body) and is recorded so tests
 * can check what went over the wire.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/http.h"

#define MAX_SCRIPT 8
#define MAX_SEEN   8
#define REQ_MAX    (128 * 1024)

struct script {
    int status;
    const char *headers; /* extra raw lines, each ending in \r\n */
    const char *body;
    size_t huge; /* send this many 'x' bytes instead of body */
    int chunked; /* with huge: chunked encoding, no Content-Length */
    int delay_ms;
    int close_no_answer;
};

struct seen {
    char method[16];
    char path[2048];
    char headers[16384];
    char body[8192];
    size_t body_len;
};

struct srv {
    int lfd, port, stop[2];
    pthread_t th;
    pthread_mutex_t mu;
    struct script script[MAX_SCRIPT];
    int nscript, next;
    struct seen seen[MAX_SEEN];
    int nseen, accepts;
};

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* Sleep up to ms, returning 1 early when the server is told to stop. */
static int wait_or_stop(struct srv *s, int ms)
{
    struct pollfd p = {.fd = s->stop[0], .events = POLLIN};
    return poll(&p, 1, ms) > 0;
}

static void send_huge(int fd, const struct script *sc)
{
    static char chunk[65536];
    char line[64];
    size_t left = sc->huge;

    memset(chunk, 'x', sizeof(chunk));
    while (left > 0) {
        size_t n = left < sizeof(chunk) ? left : sizeof(chunk);
        if (sc->chunked) {
            int l = snprintf(line, sizeof(line), "%zx\r\n", n);
            if (send(fd, line, (size_t)l, MSG_NOSIGNAL) != l)
                return;
        }
        if (send(fd, chunk, n, MSG_NOSIGNAL) != (ssize_t)n)
            return;
        if (sc->chunked && send(fd, "\r\n", 2, MSG_NOSIGNAL) != 2)
            return;
        left -= n;
    }
    if (sc->chunked)
        send_all(fd, "0\r\n\r\n", 5);
}

/* Read and answer one request on fd. Returns 0 to keep the connection, -1 to close. */
static int serve_one(struct srv *s, int fd)
{
    static char buf[REQ_MAX + 1];
    size_t len = 0, hdr_end = 0, clen = 0;
    struct script sc = {.status = 200, .body = "ok"};
    struct seen *sn;
    char *p, head[1024];
    int n;

    for (;;) {
        ssize_t r = recv(fd, buf + len, REQ_MAX - len, 0);
        if (r <= 0)
            return -1;
        len += (size_t)r;
        buf[len] = '\0';
        if ((p = strstr(buf, "\r\n\r\n")) != NULL) {
            hdr_end = (size_t)(p - buf) + 4;
            break;
        }
        if (len == REQ_MAX)
            return -1;
    }
    if ((p = strcasestr(buf, "\r\ncontent-length:")) != NULL && p < buf + hdr_end)
        clen = strtoul(p + 17, NULL, 10);
    while (len < hdr_end + clen && len < REQ_MAX) {
        ssize_t r = recv(fd, buf + len, REQ_MAX - len, 0);
        if (r <= 0)
            return -1;
        len += (size_t)r;
    }

    pthread_mutex_lock(&s->mu);
    if (s->next < s->nscript)
        sc = s->script[s->next++];
    if (s->nseen < MAX_SEEN) {
        sn = &s->seen[s->nseen++];
        memset(sn, 0, sizeof(*sn));
        sscanf(buf, "%15s %2047s", sn->method, sn->path);
        p = strstr(buf, "\r\n") + 2;
        snprintf(sn->headers, sizeof(sn->headers), "%.*s", (int)(buf + hdr_end - p), p);
        sn->body_len = clen < sizeof(sn->body) ? clen : sizeof(sn->body) - 1;
        memcpy(sn->body, buf + hdr_end, sn->body_len);
    }
    pthread_mutex_unlock(&s->mu);

    if (sc.delay_ms && wait_or_stop(s, sc.delay_ms))
        return -1;
    if (sc.close_no_answer)
        return -1;
    if (sc.huge) {
        if (sc.chunked)
            n = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nTransfer-Encoding: chunked\r\n\r\n",
                         sc.status);
        else
            n = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n\r\n",
                         sc.status, sc.huge);
        send_all(fd, head, (size_t)n);
        send_huge(fd, &sc);
        return -1;
    }
    n = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n", sc.status,
                 strlen(sc.body));
    send_all(fd, head, (size_t)n);
    if (sc.headers)
        send_all(fd, sc.headers, strlen(sc.headers));
    send_all(fd, "\r\n", 2);
    send_all(fd, sc.body, strlen(sc.body));
    return 0;
}

static void *srv_main(void *opaque)
{
    struct srv *s = opaque;
    int conn = -1;

    for (;;) {
        struct pollfd p[3] = {{.fd = s->stop[0], .events = POLLIN},
                              {.fd = s->lfd, .events = POLLIN},
                              {.fd = conn, .events = POLLIN}};
        if (poll(p, conn >= 0 ? 3 : 2, 1000) < 0)
            break;
        if (p[0].revents)
            break;
        if (p[1].revents & POLLIN) {
            int fd = accept(s->lfd, NULL, NULL);
            struct timeval tv = {.tv_sec = 2};
            if (fd >= 0) {
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
                if (conn >= 0)
                    close(conn);
                conn = fd;
                pthread_mutex_lock(&s->mu);
                s->accepts++;
                pthread_mutex_unlock(&s->mu);
            }
            continue;
        }
        if (conn >= 0 && p[2].revents && serve_one(s, conn) < 0) {
            close(conn);
            conn = -1;
        }
    }
    if (conn >= 0)
        close(conn);
    return NULL;
}

static int listen_local(int *port, int do_listen)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    if (do_listen)
        assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static int setup(void **state)
{
    struct srv *s = calloc(1, sizeof(*s));

    assert_non_null(s);
    pthread_mutex_init(&s->mu, NULL);
    assert_int_equal(pipe(s->stop), 0);
    s->lfd = listen_local(&s->port, 1);
    assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    struct srv *s = *state;

    assert_int_equal(write(s->stop[1], "x", 1), 1);
    pthread_join(s->th, NULL);
    close(s->lfd);
    close(s->stop[0]);
    close(s->stop[1]);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return 0;
}

static void script(struct srv *s, struct script sc)
{
    pthread_mutex_lock(&s->mu);
    assert_true(s->nscript < MAX_SCRIPT);
    s->script[s->nscript++] = sc;
    pthread_mutex_unlock(&s->mu);
}

static struct seen *seen(struct srv *s, int i)
{
    struct seen *sn;
    pthread_mutex_lock(&s->mu);
    assert_true(i < s->nseen);
    sn = &s->seen[i];
    pthread_mutex_unlock(&s->mu);
    return sn;
}

static int nseen(struct srv *s)
{
    int n;
    pthread_mutex_lock(&s->mu);
    n = s->nseen;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Value of request header name as the server received it ("" when absent). */
static const char *seen_header(const struct seen *sn, const char *name)
{
    static char val[4096];
    const char *line = sn->headers;
    size_t nl = strlen(name);

    while (*line) {
        const char *eol = strstr(line, "\r\n");
        if (!eol)
            break;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            snprintf(val, sizeof(val), "%.*s", (int)(eol - v), v);
            return val;
        }
        line = eol + 2;
    }
    return "";
}

static char *url(const struct srv *s, const char *path)
{
    static char u[256];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d%s", s->port, path);
    return u;
}

static struct http_client *client(long timeout_ms, size_t max_body, size_t max_hdr)
{
    struct http_client_opts o;
    struct http_client *c;
    char err[256];

    http_client_opts_default(&o);
    if (timeout_ms)
        o.timeout_ms = timeout_ms;
    if (max_body)
        o.max_body = max_body;
    if (max_hdr)
        o.max_header_bytes = max_hdr;
    o.connect_timeout_ms = 1000;
    c = http_client_new(&o, err, sizeof(err));
    assert_non_null(c);
    return c;
}

static void test_get_round_trip(void **state)
{
    struct srv *s = *state;
    struct http_client *c = client(0, 0, 0);
    struct http_response r;
    struct http_header h[] = {{"Accept", "application/json"}, {"X-Trace", "t-1"}};
    struct http_request req = {.method = HTTP_GET,
                               .url = url(s, "/crm/v3/objects/deals/42?a=1"),
                               .headers = h,
                               .nheaders = 2,
                               .bearer = "tok-abc123"};
    char err[256] = "";

    http_response_init(&r);
    script(s, (struct script){.status = 200,
                              .headers = "X-Request-Id: abc\r\nContent-Type: text/plain\r\n",
                              .body = "hello"});
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_OK);
    assert_int_equal(r.error, HTTP_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 5);
    assert_string_equal(r.body, "hello");
    assert_true(r.total_ms >= 0);
    assert_int_equal(r.retry_after_ms, -1);
    /* Response headers, looked up whatever the case. */
    assert_string_equal(http_response_header(&r, "X-Request-Id"), "abc");
    assert_string_equal(http_response_header(&r, "x-request-id"), "abc");
    assert_string_equal(http_response_header(&r, "CONTENT-TYPE"), "text/plain");
    assert_null(http_response_header(&r, "X-Missing"));

    /* What the server received. */
    assert_string_equal(seen(s, 0)->method, "GET");
    assert_string_equal(seen(s, 0)->path, "/crm/v3/objects/deals/42?a=1");
    assert_string_equal(seen_header(seen(s, 0), "authorization"), "Bearer tok-abc123");
    assert_string_equal(seen_header(seen(s, 0), "accept"), "application/json");
    assert_string_equal(seen_header(seen(s, 0), "x-trace"), "t-1");
    assert_int_equal(seen(s, 0)->body_len, 0);

    http_response_release(&r);
    http_client_free(c);
}

/* Every request says who it is: the configured User-Agent (default "hsqb"), once, on a
 * reused connection too; a caller's own User-Agent header replaces it; CR/LF in the
 * configured one refuses the client. */
static void test_user_agent(void **state)
{
    struct srv *s = *state;
    struct http_client_opts o;
    struct http_client *c = client(0, 0, 0), *named;
    struct http_response r;
    struct http_header own[] = {{"User-Agent", "mine/2"}};
    struct http_request req = {.method = HTTP_GET, .url = url(s, "/ua")};
    char err[256] = "";

    http_response_init(&r);
    for (int i = 0; i < 4; i++)
        script(s, (struct script){.status = 200, .body = "ok"});
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_OK);
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_OK);
    assert_string_equal(seen_header(seen(s, 0), "user-agent"), "hsqb");
    assert_string_equal(seen_header(seen(s, 1), "user-agent"), "hsqb");
    req.headers = own;
    req.nheaders = 1;
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_OK);
    assert_string_equal(seen_header(seen(s, 2), "user-agent"), "mine/2");
    assert_null(strstr(seen(s, 2)->headers, "hsqb"));
    http_client_free(c);

    http_client_opts_default(&o);
    o.user_agent = "hsqb-worker/9.9";
    named = http_client_new(&o, err, sizeof(err));
    assert_non_null(named);
    req.headers = NULL;
    req.nheaders = 0;
    assert_int_equal(http_client_do(named, &req, &r, err, sizeof(err)), HTTP_OK);
    assert_string_equal(seen_header(seen(s, 3), "user-agent"), "hsqb-worker/9.9");
    http_client_free(named);
    o.user_agent = "x\r\nX-Injected: 1";
    assert_null(http_client_new(&o, err, sizeof(err)));
    assert_non_null(strstr(err, "user agent"));
    http_response_release(&r);
}

static void test_post_put_delete_patch(void **state)
{
    struct srv *s = *state;
    struct http_client *c = client(0, 0, 0);
    struct http_response r;
    const char *json = "{\"Line\":[{\"Amount\":10.5}]}";
    struct http_request req = {.method = HTTP_POST,
                               .url = url(s, "/v3/company/1/invoice?requestid=e1-s1"),
                               .body = json,
                               .body_len = strlen(json),
                               .content_type = "application/json"};
    char err[256] = "";

    http_response_init(&r);
    script(s, (struct script){.status = 201, .body = "{\"Invoice\":{}}"});
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_OK);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.body, "{\"Invoice\":{}}");
    assert_string_equal(seen(s, 0)->method, "POST");
    assert_string_equal(seen(s, 0)->body, json);
    assert_string_equal(seen_header(seen(s, 0), "content-type"), "application/json");
    assert_int_equal(atoi(seen_header(seen(s, 0), "content-length")), strlen(json));
    assert_string_equal(seen_header(seen(s, 0), "expect"), "");

    req.method = HTTP_PUT;
    req.body = "put-body";
    req.body_len = 8;
    req.content_type = "text/plain";
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_OK);
    assert_string_equal(seen(s, 1)->method, "PUT");
    assert_string_equal(seen(s, 1)->body, "put-body");

    req.method = HTTP_DELETE;
    req.body = NULL;
    req.body_len = 0;
    req.content_type = NULL;
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_OK);
    assert_string_equal(seen(s, 2)->method, "DELETE");
    assert_int_equal(seen(s, 2)->body_len, 0);

    req.method = HTTP_PATCH;
    req.body = "{\"labels\":{}}";
    req.body_len = strlen(req.body);
    req.content_type = "application/json";
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_OK);
    assert_string_equal(seen(s, 3)->method, "PATCH");
    assert_string_equal(seen(s, 3)->body, "{\"labels\":{}}");
    assert_string_equal(seen_header(seen(s, 3), "content-type"), "application/json");

    /* A GET after them carries no leftover body or verb. */
    req.method = HTTP_GET;
    req.body = NULL;
    req.body_len = 0;
    req.content_type = NULL;
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_OK);
    assert_string_equal(seen(s, 4)->method, "GET");
    assert_string_equal(seen_header(seen(s, 4), "content-length"), "");

    http_response_release(&r);
    http_client_free(c);
}

static void test_keep_alive_reuses_connection(void **state)
{
    struct srv *s = *state;
    struct http_client *c = client(0, 0, 0);
    struct http_response r;
    struct http_request req = {.method = HTTP_GET, .url = url(s, "/a")};
    char err[256] = "";

    http_response_init(&r);
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_OK);
    req.url = url(s, "/b");
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_OK);
    assert_int_equal(nseen(s), 2);
    assert_string_equal(seen(s, 1)->path, "/b");
    pthread_mutex_lock(&s->mu);
    assert_int_equal(s->accepts, 1);
    pthread_mutex_unlock(&s->mu);
    http_response_release(&r);
    http_client_free(c);
}

static void test_environment_proxy_ignored(void **state)
{
    struct srv *s = *state;
    struct http_client *c;
    struct http_response r;
    struct http_request req = {.method = HTTP_GET, .url = url(s, "/direct")};
    char err[256] = "";

    /* A stray proxy variable must not reroute API traffic (tokens included). */
    setenv("http_proxy", "http://127.0.0.1:9", 1);
    setenv("ALL_PROXY", "http://127.0.0.1:9", 1);
    c = client(0, 0, 0);
    http_response_init(&r);
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_OK);
    assert_string_equal(seen(s, 0)->path, "/direct");
    unsetenv("http_proxy");
    unsetenv("ALL_PROXY");
    http_response_release(&r);
    http_client_free(c);
}

static void test_total_timeout(void **state)
{
    struct srv *s = *state;
    struct http_client *c = client(0, 0, 0);
    struct http_response r;
    struct http_request req = {
        .method = HTTP_GET, .url = url(s, "/slow"), .bearer = "sekrit-token", .timeout_ms = 200};
    char err[256] = "";
    int64_t t0 = clock_mono_ms(), dt;

    http_response_init(&r);
    script(s, (struct script){.status = 200, .body = "late", .delay_ms = 3000});
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_ETIMEOUT);
    dt = clock_mono_ms() - t0;
    assert_true(dt >= 150 && dt < 1500);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.body_len, 0);
    assert_string_equal(r.body, "");
    assert_non_null(strstr(err, "timeout"));
    assert_null(strstr(err, "sekrit"));
    http_response_release(&r);
    http_client_free(c);
}

static void *set_flag_later(void *arg)
{
    clock_sleep_ms(200);
    __atomic_store_n((int *)arg, 1, __ATOMIC_RELAXED);
    return NULL;
}

/* The abort flag ends an exchange that would otherwise wait out its 10 s timeout, and
 * stops the next one at once while it stays set. */
static void test_abort_flag(void **state)
{
    struct srv *s = *state;
    struct http_client_opts o;
    struct http_client *c;
    struct http_response r;
    struct http_request req = {.method = HTTP_GET, .url = url(s, "/slow")};
    char err[256] = "";
    int flag = 0;
    pthread_t th;
    int64_t t0 = clock_mono_ms(), dt;

    http_client_opts_default(&o);
    o.timeout_ms = 10000;
    o.abort_flag = &flag;
    c = http_client_new(&o, err, sizeof(err));
    assert_non_null(c);
    http_response_init(&r);
    script(s, (struct script){.status = 200, .body = "late", .delay_ms = 5000});
    assert_int_equal(pthread_create(&th, NULL, set_flag_later, &flag), 0);
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_EOTHER);
    dt = clock_mono_ms() - t0;
    pthread_join(th, NULL);
    assert_true(dt >= 150 && dt < 2500);
    assert_string_equal(err, "other: aborted");
    assert_int_equal(r.status, 0);
    t0 = clock_mono_ms();
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_EOTHER);
    assert_true(clock_mono_ms() - t0 < 1500);
    http_response_release(&r);
    http_client_free(c);
}

static void test_connect_refused(void **state)
{
    struct http_client *c = client(0, 0, 0);
    struct http_response r;
    struct http_request req = {.method = HTTP_POST, .body = "x", .body_len = 1};
    char err[256] = "", u[64];
    int port, fd = listen_local(&port, 0); /* bound, never listening: refused */

    (void)state;
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/", port);
    req.url = u;
    http_response_init(&r);
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_ECONNECT);
    assert_int_equal(r.error, HTTP_ECONNECT);
    assert_int_equal(r.status, 0);
    assert_true(strlen(err) > 0);
    close(fd);
    http_response_release(&r);
    http_client_free(c);
}

static void test_body_cap(void **state)
{
    struct srv *s = *state;
    struct http_client *c = client(0, 1024, 0);
    struct http_response r;
    struct http_request req = {.method = HTTP_GET, .url = url(s, "/big")};
    char err[256] = "";

    http_response_init(&r);
    /* Announced too big (Content-Length), streamed too big (chunked), exactly the cap. */
    script(s, (struct script){.status = 200, .huge = 4096});
    script(s, (struct script){.status = 200, .huge = 10 * 1024 * 1024, .chunked = 1});
    script(s, (struct script){.status = 200, .huge = 1024});
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_ETOOBIG);
    assert_non_null(strstr(err, "too big"));
    assert_int_equal(r.body_len, 0);
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_ETOOBIG);
    assert_int_equal(r.error, HTTP_ETOOBIG);
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_OK);
    assert_int_equal(r.body_len, 1024);
    assert_int_equal(r.body[1023], 'x');
    assert_int_equal(r.body[1024], '\0');
    http_response_release(&r);
    http_client_free(c);
}

/* Bodies larger than the first buffer arrive whole, whether their length is announced
 * (the buffer is sized from it) or not (chunked: it grows as they come). */
static void test_large_bodies_whole(void **state)
{
    static const size_t sizes[] = {1, 1025, 5000, 300000}; /* 2 x 4 = MAX_SCRIPT answers */
    struct srv *s = *state;
    struct http_client *c = client(0, 1024 * 1024, 0);
    struct http_response r;
    struct http_request req = {.method = HTTP_GET, .url = url(s, "/big")};
    char err[256] = "";

    http_response_init(&r);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (int chunked = 0; chunked < 2; chunked++) {
            script(s, (struct script){.status = 200, .huge = sizes[i], .chunked = chunked});
            assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_OK);
            assert_int_equal(r.body_len, sizes[i]);
            assert_true(r.body_cap > sizes[i]);
            assert_int_equal(strspn(r.body, "x"), sizes[i]);
            assert_int_equal(r.body[sizes[i]], '\0');
        }
    http_response_release(&r);
    http_client_free(c);
}

/* A response made after another was released (the thread's buffers are reused) holds
 * only its own answer: no byte or header of the previous one, on this thread or another. */
static void *fresh_response(void *arg)
{
    struct srv *s = arg;
    struct http_client *c = client(0, 0, 0);
    struct http_response r;
    struct http_request req = {.method = HTTP_GET, .url = url(s, "/again")};
    char err[256] = "";

    http_response_init(&r);
    if (http_client_do(c, &req, &r, err, sizeof(err)) != HTTP_OK || strcmp(r.body, "ok") != 0)
        abort();
    http_response_release(&r);
    http_client_free(c);
    return NULL;
}

static void test_released_responses_leave_nothing(void **state)
{
    struct srv *s = *state;
    struct http_client *c = client(0, 0, 0);
    struct http_response r;
    struct http_request req = {.method = HTTP_GET, .url = url(s, "/secret")};
    char err[256] = "";
    pthread_t th;

    script(s, (struct script){.status = 200,
                              .headers = "X-Secret: s3cr3t\r\n",
                              .body = "{\"access_token\":\"tok-0123456789abcdef\"}"});
    script(s, (struct script){.status = 200, .body = "ok"});
    script(s, (struct script){.status = 200, .body = "ok"});
    http_response_init(&r);
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_OK);
    assert_non_null(strstr(r.body, "tok-0123456789abcdef"));
    http_response_release(&r);

    http_response_init(&r);
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_OK);
    assert_int_equal(r.body_len, 2);
    assert_string_equal(r.body, "ok");
    assert_null(http_response_header(&r, "X-Secret"));
    /* the whole buffers, past what this answer wrote too */
    assert_null(memmem(r.body, r.body_cap, "tok-0123456789abcdef", 20));
    assert_null(memmem(r.hdrs, r.hdrs_cap, "s3cr3t", 6));
    http_response_release(&r);
    assert_int_equal(pthread_create(&th, NULL, fresh_response, s), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    http_client_free(c);
}

static void test_header_cap(void **state)
{
    struct srv *s = *state;
    struct http_client *c = client(0, 0, 512);
    struct http_response r;
    struct http_request req = {.method = HTTP_GET, .url = url(s, "/h")};
    static char hdrs[4096];
    char err[256] = "";
    size_t i;

    for (i = 0; i < 40; i++)
        snprintf(hdrs + strlen(hdrs), sizeof(hdrs) - strlen(hdrs), "X-Pad-%02zu: %s\r\n", i,
                 "0123456789012345678901234567890123456789");
    http_response_init(&r);
    script(s, (struct script){.status = 200, .headers = hdrs, .body = "x"});
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_ETOOBIG);
    assert_non_null(strstr(err, "headers"));
    http_response_release(&r);
    http_client_free(c);
}

static void test_form_post_and_basic_auth(void **state)
{
    struct srv *s = *state;
    struct http_client *c = client(0, 0, 0);
    struct http_response r;
    struct http_param form[] = {{"grant_type", "refresh_token"},
                                {"refresh_token", "a b&c=d/\xc3\xa9+~"},
                                {"skipped", NULL}};
    struct http_request req = {.method = HTTP_POST,
                               .url = url(s, "/oauth2/v1/tokens/bearer"),
                               .form = form,
                               .nform = 3,
                               .basic_user = "client",
                               .basic_pass = "s3cret"};
    char err[256] = "";

    http_response_init(&r);
    script(s, (struct script){.status = 200, .body = "{\"access_token\":\"x\"}"});
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_OK);
    assert_string_equal(seen(s, 0)->method, "POST");
    assert_string_equal(seen_header(seen(s, 0), "content-type"),
                        "application/x-www-form-urlencoded");
    assert_string_equal(seen(s, 0)->body,
                        "grant_type=refresh_token&refresh_token=a%20b%26c%3Dd%2F%C3%A9%2B~");
    assert_string_equal(seen_header(seen(s, 0), "authorization"), "Basic Y2xpZW50OnMzY3JldA==");

    /* The next request on the same client carries neither the form nor the credentials. */
    req = (struct http_request){.method = HTTP_GET, .url = url(s, "/next")};
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_OK);
    assert_string_equal(seen_header(seen(s, 1), "authorization"), "");
    assert_int_equal(seen(s, 1)->body_len, 0);
    http_response_release(&r);
    http_client_free(c);
}

static void test_429_is_data(void **state)
{
    struct srv *s = *state;
    struct http_client *c = client(0, 0, 0);
    struct http_response r;
    struct http_request req = {.method = HTTP_GET, .url = url(s, "/limited")};
    char err[256] = "";

    http_response_init(&r);
    script(s, (struct script){.status = 429,
                              .headers = "retry-after: 7\r\n",
                              .body = "{\"status\":\"error\",\"category\":\"RATE_LIMITS\"}"});
    script(s, (struct script){.status = 503, .body = "down"});
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_OK);
    assert_int_equal(r.status, 429);
    assert_string_equal(http_response_header(&r, "Retry-After"), "7");
    assert_int_equal(r.retry_after_ms, 7000);
    assert_non_null(strstr(r.body, "RATE_LIMITS"));
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_OK);
    assert_int_equal(r.status, 503);
    assert_int_equal(r.retry_after_ms, -1);
    assert_null(http_response_header(&r, "Retry-After")); /* previous headers gone */
    http_response_release(&r);
    http_client_free(c);
}

static void test_close_without_response(void **state)
{
    struct srv *s = *state;
    struct http_client *c = client(0, 0, 0);
    struct http_response r;
    struct http_request req = {.method = HTTP_GET, .url = url(s, "/drop"), .bearer = "tok-xyz9"};
    char err[256] = "";

    http_response_init(&r);
    script(s, (struct script){.close_no_answer = 1});
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_EOTHER);
    assert_true(strlen(err) > 0);
    assert_null(strstr(err, "tok-xyz9"));
    assert_int_equal(r.status, 0);
    /* The client recovers on a new connection. */
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_OK);
    assert_int_equal(r.status, 200);
    http_response_release(&r);
    http_client_free(c);
}

static void test_bad_requests_rejected_locally(void **state)
{
    struct srv *s = *state;
    struct http_client *c = client(0, 0, 0);
    struct http_response r;
    struct http_header inj[] = {{"X-A", "v\r\nX-Injected: 1"}};
    struct http_request req = {
        .method = HTTP_GET, .url = url(s, "/x"), .headers = inj, .nheaders = 1};
    char err[256] = "";

    http_response_init(&r);
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_EOTHER);
    req = (struct http_request){.method = HTTP_GET, .url = url(s, "/x"), .bearer = "a\nb"};
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_EOTHER);
    assert_null(strstr(err, "a\nb"));
    req =
        (struct http_request){.method = HTTP_GET, .url = url(s, "/x"), .body = "b", .body_len = 1};
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_EOTHER);
    req = (struct http_request){.method = HTTP_GET, .url = "file:///etc/passwd"};
    assert_int_equal(http_client_do(c, &req, &r, err, sizeof(err)), HTTP_EOTHER);
    assert_int_equal(nseen(s), 0);
    http_response_release(&r);
    http_client_free(c);
}

static void test_url_helpers(void **state)
{
    char buf[128], err[128];
    struct http_param p[] = {{"q", "select * from Item where Name = 'A&B'"}};
    struct http_param p2[] = {{"minorversion", "75"}, {"skip", NULL}, {"requestid", "e:1/2"}};

    (void)state;
    assert_int_equal(http_url_escape(buf, sizeof(buf), "aZ09-._~", 8), 8);
    assert_string_equal(buf, "aZ09-._~");
    assert_int_equal(http_url_escape(buf, sizeof(buf), "a b/\xff", 5), 11);
    assert_string_equal(buf, "a%20b%2F%FF");
    /* Truncation never leaves half an escape, and reports the full length. */
    assert_int_equal(http_url_escape(buf, 4, "ab cd", 5), 7);
    assert_string_equal(buf, "ab");
    assert_int_equal(http_url_escape(NULL, 0, "a b", 3), 5);
    /* A path segment: dot segments stay the id's (ids "." and ".." are valid); a buffer
     * too small for the whole escape gets none of it. */
    {
        static const struct {
            const char *in, *want;
            size_t room, need;
        } seg[] = {{".", "%2E", 128, 3},
                   {"..", "%2E%2E", 128, 6},
                   {"..", "", 4, 6},
                   {"...", "...", 128, 3},
                   {"a.b/{}", "a.b%2F%7B%7D", 128, 12}};

        for (size_t i = 0; i < sizeof seg / sizeof seg[0]; i++) {
            assert_int_equal(http_path_escape(buf, seg[i].room, seg[i].in, strlen(seg[i].in)),
                             seg[i].need);
            assert_string_equal(buf, seg[i].want);
        }
    }

    assert_int_equal(
        http_url_build(buf, sizeof(buf), "http://h/v3/company/1/invoice", p2, 3, err, sizeof(err)),
        0);
    assert_string_equal(buf, "http://h/v3/company/1/invoice?minorversion=75&requestid=e%3A1%2F2");
    assert_int_equal(http_url_build(buf, sizeof(buf), "http://h/q?a=1", p2, 1, err, sizeof(err)),
                     0);
    assert_string_equal(buf, "http://h/q?a=1&minorversion=75");
    assert_int_equal(http_url_build(buf, 48, "http://h/query", p, 1, err, sizeof(err)), -1);
    assert_string_equal(buf, "");
    assert_true(strlen(err) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_put_delete_patch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_alive_reuses_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_environment_proxy_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_total_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_flag, setup, teardown),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test_setup_teardown(test_body_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_bodies_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_agent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_released_responses_leave_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_form_post_and_basic_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_429_is_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_without_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests_rejected_locally, setup, teardown),
        cmocka_unit_test(test_url_helpers),
    };
    char err[256];

    signal(SIGPIPE, SIG_IGN);
    if (http_global_init(err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
