/* sandbox_harness.h - private redis-server + hsqb-sandbox for component tests.
 *
 * Used by the worker component tests that talk to the sandbox (test_oauth.c, test_qbo.c,
 * test_resolve.c, test_pipeline.c, test_payment_pipeline.c, test_retry.c); the Makefile
 * links sandbox_harness.o and tests/unit/testutil_redis.o into each. The redis-server
 * comes from testutil_redis; the sandbox is <BUILD>/hsqb-sandbox next to the test binary
 * (build/tests/unit/worker/test_x -> build/hsqb-sandbox; else build/hsqb-sandbox from
 * the working directory), seeded from tests/sandbox/seed. Both are stopped by h_stop().
 * Failures to start or to reach either process abort(): a test cannot go on without
 * them. Thread-safety: the test thread only (H is one global).
 */
#ifndef HSQB_TEST_SANDBOX_HARNESS_H
#define HSQB_TEST_SANDBOX_HARNESS_H

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/http.h"
#include "common/json.h"
#include "common/redis.h"
#include "tests/unit/testutil_redis.h"
#include "worker/ioctx.h"
#include "worker/settings.h"

/* A struct ioctx of the test thread's HTTP client and Redis connection (the clients'
 * default deadline, a claim that cannot be lost), as a compound literal for one call. */
#define H_IO(http_, redis_) (&(struct ioctx){(http_), (redis_), 0, NULL})

#define H_REDIS_SERVER  "/usr/bin/redis-server"
#define H_CLIENT_ID     "ABhsqbSandboxClientId0000000000000000000000000000"
#define H_CLIENT_SECRET "hsqbSandboxClientSecret000000000000000000"
#define H_REALM_US1     "4620816365014867780"
#define H_REALM_US2     "4620816365014867781"
#define H_REALM_CA      "9130357766554433"
#define H_RT_US1        "RT1-11-H0-1900000000us1seedrefreshtoken01"
#define H_RT_US2        "RT1-12-H0-1900000000us2seedrefreshtoken02"
#define H_RT_CA         "RT1-13-H0-1900000000ca1seedrefreshtoken03"
#define H_REALM_AST1    "4620816365014867790" /* Automated Sales Tax on */
#define H_REALM_MC1     "4620816365014867791" /* multicurrency on, home USD, AST on */
#define H_RT_AST1       "RT1-14-H0-1900000000ast1seedrefreshtoken4"
#define H_RT_MC1        "RT1-15-H0-1900000000mc1seedrefreshtoken05"

struct harness {
    struct testutil_redis rs;
    pid_t sb_pid;
    int redis_port, sb_port;
    char dir[64];
    char sb_url[64];
    struct http_client *admin; /* test thread's client for the admin API */
    struct redis_conn *redis;  /* test thread's connection */
};

/* The one harness of the test program (defined in sandbox_harness.c). */
extern struct harness H;

/* Start the redis-server and the sandbox (waiting up to 10 s for its port), ignore
 * SIGPIPE, fill H (H.redis stays NULL until h_reset()). Aborts on failure. */
void h_start(void);
/* Stop both processes, free H's client and connection, remove the temporary directory. */
void h_stop(void);

/* A config as `run` would load it, pointed at the sandbox and the private Redis, plus
 * extra "--key=value" flags (NULL-terminated). Caller frees with config_free. */
struct config *h_config(const char *const *extra);

/* A new connection to the private Redis (5 s command timeout); caller frees with
 * redis_conn_free. Aborts on failure. */
struct redis_conn *h_redis_new(void);
/* A new HTTP client with a 64 MiB body cap; caller frees with http_client_free. Aborts
 * on failure. */
struct http_client *h_http_new(void);

/* One admin call on H.sb_url + path (json: request body or NULL); returns the status
 * and, when out != NULL, the parsed body (NULL when not JSON; caller puts it). Aborts on
 * a transport failure. */
long h_admin(enum http_method m, const char *path, const char *json, struct json_object **out);

/* Fresh sandbox (seed) and an empty Redis; H.redis connected. */
void h_reset(void);

/* Number of logged requests matching the query string (e.g. "vendor=oauth"); when
 * requests != NULL, *requests gets a reference to their array (caller puts it). */
int h_count(const char *filter, struct json_object **requests);

/* A string field of the realm's hash (malloc'd, or NULL). */
char *h_hget(const char *realm, const char *field);

/* Bind each realm (NULL-terminated list) to portal, as `credentials qbo --portal` would
 * (worker/tenancy.h): the pipeline refuses an event whose realm is not bound to its
 * portal. Aborts on failure. */
void h_bind(int64_t portal, const char *const *realms);

#endif
