/* sandbox_harness.c - the private redis-server + hsqb-sandbox of the component tests
 * (contracts in sandbox_harness.h).
 *
 * One harness per test program (H), started by a group setup and stopped by its
 * teardown. The sandbox is a child process on an ephemeral port that it writes to a
 * port file; start-up waits on that file, bounded by the monotonic clock. Any failure
 * aborts: a component test has nothing to assert without its servers.
 */
#include "tests/unit/worker/sandbox_harness.h"

#include "worker/tenancy.h"

struct harness H;

/* <BUILD>/hsqb-sandbox next to the test binary (<root>/<BUILD>/tests/unit/worker/test_x)
 * and <root>/tests/sandbox/seed; the paths relative to the working directory otherwise.
 * Both buffers hold PATH_MAX bytes. */
static void h_paths(char *sandbox, char *seed)
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

void h_start(void)
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
    deadline = clock_mono_ms() + 10000;
    for (;;) {
        FILE *f = fopen(portfile, "r");
        if (f) {
            int ok = fscanf(f, "%d", &H.sb_port) == 1;
            fclose(f);
            if (ok)
                break;
        }
        if (clock_mono_ms() > deadline || waitpid(H.sb_pid, NULL, WNOHANG) != 0) {
            fprintf(stderr, "hsqb-sandbox (%s) did not start\n", sandbox);
            abort();
        }
        clock_sleep_ms(10);
    }
    snprintf(H.sb_url, sizeof H.sb_url, "http://127.0.0.1:%d", H.sb_port);
    if (!(H.admin = http_client_new(NULL, e, sizeof e))) {
        fprintf(stderr, "%s\n", e);
        abort();
    }
}

void h_stop(void)
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

struct config *h_config(const char *const *extra)
{
    char f[8][256], e[512], secret[256];
    char *argv[32], *envp[16];
    int n = 0, ne = 0, own_secret = 0;
    struct config *cfg = NULL;

    snprintf(f[0], sizeof f[0], "--redis.port=%d", H.redis_port);
    snprintf(f[1], sizeof f[1], "--qbo.base_url=%s", H.sb_url);
    snprintf(f[2], sizeof f[2], "--oauth.token_url=%s/oauth2/v1/tokens/bearer", H.sb_url);
    snprintf(f[3], sizeof f[3], "--oauth.client_id=%s", H_CLIENT_ID);
    snprintf(f[4], sizeof f[4], "--http.timeout=5s");
    snprintf(f[5], sizeof f[5], "--hubspot.base_url=%s", H.sb_url);
    snprintf(f[6], sizeof f[6], "--http.allow_insecure=true"); /* the sandbox is plain http */
    argv[n++] = (char *)"test";
    for (int i = 0; i < 7; i++)
        argv[n++] = f[i];
    /* secrets are refused as flags: "HSQB_...=" extras are the environment */
    for (; extra && *extra; extra++) {
        if (strncmp(*extra, "HSQB_", 5) == 0 && ne < 14) {
            own_secret |= strncmp(*extra, "HSQB_OAUTH_CLIENT_SECRET=", 25) == 0;
            envp[ne++] = (char *)*extra;
        } else if (n < 31) {
            argv[n++] = (char *)*extra;
        }
    }
    if (!own_secret) {
        snprintf(secret, sizeof secret, "HSQB_OAUTH_CLIENT_SECRET=%s", H_CLIENT_SECRET);
        envp[ne++] = secret;
    }
    argv[n] = NULL;
    envp[ne] = NULL;
    if (settings_load_flags(&cfg, n, argv, envp, SETTINGS_SKIP_REQUIRED, e, sizeof e) < 0) {
        fprintf(stderr, "settings: %s\n", e);
        abort();
    }
    return cfg;
}

struct redis_conn *h_redis_new(void)
{
    char e[256];
    struct redis_conn *c = testutil_redis_conn(&H.rs, 5000, e, sizeof e);
    if (!c) {
        fprintf(stderr, "redis: %s\n", e);
        abort();
    }
    return c;
}

struct http_client *h_http_new(void)
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

long h_admin(enum http_method m, const char *path, const char *json, struct json_object **out)
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

void h_reset(void)
{
    if (h_admin(HTTP_POST, "/_sandbox/reset", NULL, NULL) != 200 || testutil_redis_flush(&H.rs) < 0)
        abort();
    if (!H.redis)
        H.redis = h_redis_new();
}

int h_count(const char *filter, struct json_object **requests)
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

char *h_hget(const char *realm, const char *field)
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

void h_bind(int64_t portal, const char *const *realms)
{
    char e[256];

    for (; realms && *realms; realms++)
        if (tenancy_bind(H.redis, portal, *realms, e, sizeof e) < 0) {
            fprintf(stderr, "h_bind %s: %s\n", *realms, e);
            abort();
        }
}
