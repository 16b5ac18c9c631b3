/* sandbox_harness.h - private redis-server + hsqb-sandbox for component tests.
 *
 * Included by the worker component tests (test_oauth.c, test_qbo.c), which link
 * tests/unit/testutil_redis.o; everything is static inline so a test that uses only part
 * of it still compiles warning-free. The redis-server comes from testutil_redis; the
 * sandbox is <BUILD>/hsqb-sandbox next to the test binary (build/tests/unit/worker/test_x
 * -> build/hsqb-sandbox; else build/hsqb-sandbox from the working directory), seeded
 * from tests/sandbox/seed. Both are stopped by h_stop().
 * Callers include cmocka before this file.
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

struct harness {
    struct testutil_redis rs;
    pid_t sb_pid;
    int redis_port, sb_port;
    char dir[64];
    char sb_url[64];
    struct http_client *admin; /* test thread's client for the admin API */
    struct redis_conn *redis;  /* test thread's connection */
};

static struct harness H;

static inline int64_t h_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void h_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0)
        ;
}

/* <BUILD>/hsqb-sandbox next to the test binary (<root>/<BUILD>/tests/unit/worker/test_x)
 * and <root>/tests/sandbox/seed; the paths relative to the working directory otherwise.
 * Both buffers hold PATH_MAX bytes. */
static inline void h_paths(char *sandbox, char *seed)
{
    char exe[PATH_MAX], cand[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    snprintf(sandbox, PATH_MAX, "build/hsqb-sandbox");
    snprintf(seed, PATH_MAX, "tests/sandbox/seed");
    if (n <= 0 || n > PATH_MAX - 64)
        return;
    exe[n] = 0;
    char *build = exe;
    for (int i = 0; i < 4; i++)
        build = dirname(build);
    if (snprintf(cand, sizeof cand, "%.*s/hsqb-sandbox", PATH_MAX - 64, build) > 0 &&
        access(cand, X_OK) == 0)
        memcpy(sandbox, cand, PATH_MAX);
    char *root = dirname(build);
    if (snprintf(cand, sizeof cand, "%.*s/tests/sandbox/seed", PATH_MAX - 64, root) > 0 &&
        access(cand, R_OK) == 0)
        memcpy(seed, cand, PATH_MAX);
}

static inline void h_start(void)
{
    char portfile[128], sandbox[PATH_MAX], seed[PATH_MAX], e[256];
    int64_t deadline;

    signal(SIGPIPE, SIG_IGN);
    snprintf(H.dir, sizeof H.dir, "/tmp/hsqb-test-XXXXXX");
    if (!mkdtemp(H.dir) || testutil_redis_start(&H.rs, NULL, e, sizeof e) < 0) {
        fprintf(stderr, "redis-server: %s\n", e);
        abort();
    }
    H.redis_port = H.rs.port;
    h_paths(sandbox, seed);
    snprintf(portfile, sizeof portfile, "%s/sb.port", H.dir);
    if ((H.sb_pid = fork()) == 0) {
        int fd = open("/dev/null", O_RDWR);
        dup2(fd, 0), dup2(fd, 1), dup2(fd, 2);
        execl(sandbox, "hsqb-sandbox", "--listen", "127.0.0.1:0", "--port-file", portfile, "--seed",
              seed, "--threads", "4", (char *)NULL);
        _exit(127);
    }
    deadline = h_now_ms() + 10000;
    for (;;) {
        FILE *f = fopen(portfile, "r");
        if (f) {
            int ok = fscanf(f, "%d", &H.sb_port) == 1;
            fclose(f);
            if (ok)
                break;
        }
        if (h_now_ms() > deadline || waitpid(H.sb_pid, NULL, WNOHANG) != 0) {
            fprintf(stderr, "hsqb-sandbox (%s) did not start\n", sandbox);
            abort();
        }
        h_sleep_ms(10);
    }
    snprintf(H.sb_url, sizeof H.sb_url, "http://127.0.0.1:%d", H.sb_port);
    if (!(H.admin = http_client_new(NULL, e, sizeof e))) {
        fprintf(stderr, "%s\n", e);
        abort();
    }
}

static inline void h_stop(void)
{
    char cmd[128];
    redis_conn_free(H.redis);
    H.redis = NULL;
    http_client_free(H.admin);
    H.admin = NULL;
    if (H.sb_pid > 0) {
        kill(H.sb_pid, SIGTERM);
        waitpid(H.sb_pid, NULL, 0);
    }
    testutil_redis_stop(&H.rs);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", H.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", H.dir);
}

/* A config as `run` would load it, pointed at the sandbox and the private Redis, plus
 * extra "--key=value" flags (NULL-terminated). Caller frees with config_free. */
static inline struct config *h_config(const char *const *extra)
{
    char f[8][256], e[512];
    char *argv[32];
    int n = 0;
    struct config *cfg = NULL;

    snprintf(f[0], sizeof f[0], "--redis.port=%d", H.redis_port);
    snprintf(f[1], sizeof f[1], "--qbo.base_url=%s", H.sb_url);
    snprintf(f[2], sizeof f[2], "--oauth.token_url=%s/oauth2/v1/tokens/bearer", H.sb_url);
    snprintf(f[3], sizeof f[3], "--oauth.client_id=%s", H_CLIENT_ID);
    snprintf(f[4], sizeof f[4], "--oauth.client_secret=%s", H_CLIENT_SECRET);
    snprintf(f[5], sizeof f[5], "--http.timeout=5s");
    snprintf(f[6], sizeof f[6], "--hubspot.base_url=%s", H.sb_url);
    argv[n++] = (char *)"test";
    for (int i = 0; i < 7; i++)
        argv[n++] = f[i];
    for (; extra && *extra && n < 31; extra++)
        argv[n++] = (char *)*extra;
    argv[n] = NULL;
    if (settings_load_flags(&cfg, n, argv, NULL, SETTINGS_SKIP_REQUIRED, e, sizeof e) < 0) {
        fprintf(stderr, "settings: %s\n", e);
        abort();
    }
    return cfg;
}

static inline struct redis_conn *h_redis_new(void)
{
    char e[256];
    struct redis_conn *c = testutil_redis_conn(&H.rs, 5000, e, sizeof e);
    if (!c) {
        fprintf(stderr, "redis: %s\n", e);
        abort();
    }
    return c;
}

static inline struct http_client *h_http_new(void)
{
    char e[256];
    struct http_client_opts o;
    struct http_client *c;
    http_client_opts_default(&o);
    o.max_body = 64 * 1024 * 1024;
    if (!(c = http_client_new(&o, e, sizeof e)))
        abort();
    return c;
}

/* One admin call; returns the status and (when out != NULL and the body is JSON) the
 * parsed body. */
static inline long h_admin(enum http_method m, const char *path, const char *json,
                           struct json_object **out)
{
    char url[512], e[256];
    struct http_response resp;
    struct http_request req = {.method = m, .url = url};
    long status;
    if (json) {
        req.body = json;
        req.body_len = strlen(json);
        req.content_type = "application/json";
    }
    snprintf(url, sizeof url, "%s%s", H.sb_url, path);
    http_response_init(&resp);
    if (http_client_do(H.admin, &req, &resp, e, sizeof e) != HTTP_OK) {
        fprintf(stderr, "admin %s: %s\n", path, e);
        abort();
    }
    status = resp.status;
    if (out)
        *out = json_tokener_parse(resp.body);
    http_response_release(&resp);
    return status;
}

/* Fresh sandbox (seed) and an empty Redis; H.redis connected. */
static inline void h_reset(void)
{
    if (h_admin(HTTP_POST, "/_sandbox/reset", NULL, NULL) != 200 || testutil_redis_flush(&H.rs) < 0)
        abort();
    if (!H.redis)
        H.redis = h_redis_new();
}

/* Number of logged requests matching the query string (e.g. "vendor=oauth"). */
static inline int h_count(const char *filter, struct json_object **requests)
{
    char path[256];
    struct json_object *doc = NULL, *arr;
    int n;
    snprintf(path, sizeof path, "/_sandbox/requests?%s", filter);
    if (h_admin(HTTP_GET, path, NULL, &doc) != 200 || !doc ||
        !json_object_object_get_ex(doc, "requests", &arr))
        abort();
    n = (int)json_object_array_length(arr);
    if (requests)
        *requests = json_object_get(arr);
    json_object_put(doc);
    return n;
}

/* A string field of the realm's hash (malloc'd, or NULL). */
static inline char *h_hget(const char *realm, const char *field)
{
    char e[256], key[128];
    char *v = NULL;
    redisReply *r;
    snprintf(key, sizeof key, "hsqb:oauth:{%s}", realm);
    r = redis_command(H.redis, e, sizeof e, "HGET %s %s", key, field);
    if (r && r->type == REDIS_REPLY_STRING)
        v = strdup(r->str);
    if (r)
        freeReplyObject(r);
    return v;
}

#endif
