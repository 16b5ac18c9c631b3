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

/* A 127.0.0.1 TCP port free at the time of the call (nothing listens there), or -1. */
int testutil_free_port(void);

#endif
