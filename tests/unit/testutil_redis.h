/* testutil_redis.h - a private redis-server for component tests.
 *
 * Owns: one child redis-server process per struct testutil_redis, listening on an
 * ephemeral 127.0.0.1 port (and a unix socket) inside a private temporary directory,
 * without persistence and with the DEBUG command enabled. Like hiredis's test.sh: the
 * test starts its own server and kills it at the end, so tests never touch a
 * developer's Redis.
 *
 * Functions return 0/-1 (errstr filled) rather than asserting, so they can be used from
 * cmocka group setups. Thread-safety: one thread drives a server's lifecycle.
 */
#ifndef HSQB_TESTUTIL_REDIS_H
#define HSQB_TESTUTIL_REDIS_H

#include <stddef.h>
#include <sys/types.h>

#include "common/redis.h"

#define TESTUTIL_REDIS_SERVER "/usr/bin/redis-server"

struct testutil_redis {
    pid_t pid; /* 0 when not running */
    int port;
    char dir[64];
    char sock[128];
    const char *password; /* borrowed; NULL = no requirepass */
};

/* Pick a free port, make the directory, start the server and wait (<= 5 s) until it
 * answers PING. password may be NULL. */
int testutil_redis_start(struct testutil_redis *s, const char *password, char *errstr,
                         size_t errsz);
/* SIGKILL the server (keeping port and directory, so restart() reuses them). */
void testutil_redis_kill(struct testutil_redis *s);
/* Start again on the same port after kill(). */
int testutil_redis_restart(struct testutil_redis *s, char *errstr, size_t errsz);
/* Kill and remove the directory. NULL-safe, idempotent. */
void testutil_redis_stop(struct testutil_redis *s);

/* A connection to s with the given command timeout (0 = default) and the server's
 * password; NULL with errstr on failure. Caller frees with redis_conn_free. */
struct redis_conn *testutil_redis_conn(const struct testutil_redis *s, int cmd_timeout_ms,
                                       char *errstr, size_t errsz);

/* FLUSHALL through a fresh hiredis context. Returns 0 or -1. */
int testutil_redis_flush(const struct testutil_redis *s);

/* The server of a test program that needs one, and cmocka fixtures for it (state is
 * unused): group setup ignores SIGPIPE (hiredis writes with write(2)) and starts it
 * without a password (a failure is printed on stderr); group teardown stops it; the
 * per-test setup empties it (FLUSHALL). Each returns 0, or -1 on failure. */
extern struct testutil_redis testutil_server;
int testutil_redis_group_setup(void **state);
int testutil_redis_group_teardown(void **state);
int testutil_redis_flush_setup(void **state);

/* GET key through c as text: the value, "(nil)" when absent, "(error)" when the GET
 * failed or the value is not a string. The buffer is static: one test thread. */
const char *testutil_redis_get(struct redis_conn *c, const char *key);
/* PTTL key through c; -3 when the command failed. */
long long testutil_redis_pttl(struct redis_conn *c, const char *key);

/* Commands the server has run so far (INFO commandstats: the sum of every command's
 * calls, those run inside scripts included, which is how the benchmark counts them), or
 * -1. The INFO itself counts at the next call: the difference between two calls, minus
 * one, is what ran between them. */
long long testutil_redis_calls(struct redis_conn *c);

/* A 127.0.0.1 TCP port free at the time of the call (nothing listens there), or -1. */
int testutil_free_port(void);

#endif
