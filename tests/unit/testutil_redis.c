/* testutil_redis.c - a private redis-server for component tests (see testutil_redis.h).
 *
 * Readiness is "answers PING" (NOAUTH counts as up), polled every 10 ms; a child that
 * exits early (missing binary, port taken) fails the start instead of timing out.
 */
#include "tests/unit/testutil_redis.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "common/clock.h"

int testutil_free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &al) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int answers_ping(int port)
{
    struct timeval tv = {.tv_usec = 200000};
    redisContext *x = redisConnectWithTimeout("127.0.0.1", port, tv);
    redisReply *r;
    int up = 0;

    if (!x)
        return 0;
    if (!x->err && (r = redisCommand(x, "PING")) != NULL) {
        up = r->type == REDIS_REPLY_STATUS ||
             (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOAUTH", 6) == 0);
        freeReplyObject(r);
    }
    redisFree(x);
    return up;
}

static int spawn(struct testutil_redis *s, char *errstr, size_t errsz)
{
    char port[16];
    long long deadline;

    snprintf(port, sizeof port, "%d", s->port);
    s->pid = fork();
    if (s->pid < 0) {
        s->pid = 0;
        snprintf(errstr, errsz, "fork: %s", strerror(errno));
        return -1;
    }
    if (s->pid == 0) {
        const char *argv[24];
        int n = 0, fd = open("/dev/null", O_RDWR);
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        argv[n++] = "redis-server";
        argv[n++] = "--port";
        argv[n++] = port;
        argv[n++] = "--bind";
        argv[n++] = "127.0.0.1";
        argv[n++] = "--save";
        argv[n++] = "";
        argv[n++] = "--appendonly";
        argv[n++] = "no";
        argv[n++] = "--dir";
        argv[n++] = s->dir;
        argv[n++] = "--unixsocket";
        argv[n++] = s->sock;
        argv[n++] = "--unixsocketperm";
        argv[n++] = "700";
        argv[n++] = "--enable-debug-command"; /* DEBUG SLEEP: command-timeout tests */
        argv[n++] = "yes";
        if (s->password) {
            argv[n++] = "--requirepass";
            argv[n++] = s->password;
        }
        argv[n] = NULL;
        execv(TESTUTIL_REDIS_SERVER, (char *const *)argv);
        _exit(127);
    }
    deadline = clock_mono_ms() + 5000;
    while (!answers_ping(s->port)) {
        if (waitpid(s->pid, NULL, WNOHANG) != 0) {
            s->pid = 0;
            snprintf(errstr, errsz, "redis-server exited at start (port %d)", s->port);
            return -1;
        }
        if (clock_mono_ms() > deadline) {
            testutil_redis_kill(s);
            snprintf(errstr, errsz, "redis-server did not answer within 5 s");
            return -1;
        }
        clock_sleep_ms(10);
    }
    return 0;
}

int testutil_redis_start(struct testutil_redis *s, const char *password, char *errstr, size_t errsz)
{
    memset(s, 0, sizeof *s);
    if (access(TESTUTIL_REDIS_SERVER, X_OK) != 0) {
        snprintf(errstr, errsz, "%s not found: install redis-server", TESTUTIL_REDIS_SERVER);
        return -1;
    }
    snprintf(s->dir, sizeof s->dir, "/tmp/hsqb-test-redis-XXXXXX");
    if (!mkdtemp(s->dir)) {
        snprintf(errstr, errsz, "mkdtemp: %s", strerror(errno));
        s->dir[0] = '\0';
        return -1;
    }
    snprintf(s->sock, sizeof s->sock, "%s/redis.sock", s->dir);
    s->password = password;
    s->port = testutil_free_port();
    if (s->port < 0) {
        snprintf(errstr, errsz, "no free port");
        return -1;
    }
    return spawn(s, errstr, errsz);
}

void testutil_redis_kill(struct testutil_redis *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

int testutil_redis_restart(struct testutil_redis *s, char *errstr, size_t errsz)
{
    testutil_redis_kill(s);
    return spawn(s, errstr, errsz);
}

void testutil_redis_stop(struct testutil_redis *s)
{
    if (!s)
        return;
    testutil_redis_kill(s);
    if (s->dir[0]) {
        unlink(s->sock);
        rmdir(s->dir);
        s->dir[0] = '\0';
    }
}

struct redis_conn *testutil_redis_conn(const struct testutil_redis *s, int cmd_timeout_ms,
                                       char *errstr, size_t errsz)
{
    struct redis_opts o;

    redis_opts_default(&o);
    o.port = s->port;
    o.connect_timeout_ms = 500;
    if (cmd_timeout_ms > 0)
        o.command_timeout_ms = cmd_timeout_ms;
    o.password = s->password;
    return redis_conn_new(&o, errstr, errsz);
}

int testutil_redis_flush(const struct testutil_redis *s)
{
    struct timeval tv = {.tv_sec = 1};
    redisContext *x = redisConnectWithTimeout("127.0.0.1", s->port, tv);
    redisReply *r = NULL;
    int rc = -1;

    if (!x)
        return -1;
    if (!x->err && s->password)
        freeReplyObject(redisCommand(x, "AUTH %s", s->password));
    if (!x->err && (r = redisCommand(x, "FLUSHALL")) != NULL)
        rc = r->type == REDIS_REPLY_STATUS ? 0 : -1;
    if (r)
        freeReplyObject(r);
    redisFree(x);
    return rc;
}

struct testutil_redis testutil_server;

int testutil_redis_group_setup(void **state)
{
    char err[256] = "";

    (void)state;
    signal(SIGPIPE, SIG_IGN);
    if (testutil_redis_start(&testutil_server, NULL, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

int testutil_redis_group_teardown(void **state)
{
    (void)state;
    testutil_redis_stop(&testutil_server);
    return 0;
}

int testutil_redis_flush_setup(void **state)
{
    (void)state;
    return testutil_redis_flush(&testutil_server);
}

const char *testutil_redis_get(struct redis_conn *c, const char *key)
{
    static char val[1024];
    char err[256];
    redisReply *r = redis_command(c, err, sizeof err, "GET %s", key);

    if (!r)
        snprintf(val, sizeof val, "(error)");
    else if (r->type == REDIS_REPLY_NIL)
        snprintf(val, sizeof val, "(nil)");
    else if (r->type == REDIS_REPLY_STRING)
        snprintf(val, sizeof val, "%s", r->str);
    else
        snprintf(val, sizeof val, "(error)");
    if (r)
        freeReplyObject(r);
    return val;
}

long long testutil_redis_pttl(struct redis_conn *c, const char *key)
{
    char err[256];
    redisReply *r = redis_command(c, err, sizeof err, "PTTL %s", key);
    long long v = -3;

    if (r && r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    if (r)
        freeReplyObject(r);
    return v;
}

long long testutil_redis_calls(struct redis_conn *c)
{
    char err[256];
    redisReply *r = redis_command(c, err, sizeof err, "INFO commandstats");
    long long sum = 0;

    if (!r || r->type != REDIS_REPLY_STRING) {
        if (r)
            freeReplyObject(r);
        return -1;
    }
    for (const char *p = r->str; (p = strstr(p, "calls=")) != NULL; p += 6)
        sum += strtoll(p + 6, NULL, 10);
    freeReplyObject(r);
    return sum;
}
