/* main.c - hsqb-sandbox command line: parse flags, seed, serve until SIGTERM/SIGINT.
 *
 * Every runtime setting is a flag named after its entry in admin.c's settings table
 * (--latency-ms 50 sets latency_ms), so the CLI, POST /_sandbox/config and the README
 * cannot drift apart. Signals are blocked before any thread starts and taken with
 * sigwait(), so no handler runs on a libmicrohttpd thread.
 */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/sandbox/sandbox.h"

#define LISTEN_MAX 128

static void usage(FILE *f)
{
    fprintf(f, "usage: hsqb-sandbox [--listen 127.0.0.1:PORT] [--seed DIR] [--threads N]\n"
               "                    [--port-file PATH] [--SETTING VALUE ...]\n"
               "  --listen HOST:PORT   IPv4 address to serve on; port 0 picks a free port\n"
               "                       (default 127.0.0.1:0). The base URL is printed on stdout.\n"
               "  --seed DIR           load every DIR/*.json at startup and on /_sandbox/reset\n"
               "  --threads N          event-loop threads, one libmicrohttpd daemon each\n"
               "                       (default: online CPUs, >= 2)\n"
               "  --port-file PATH     write the bound port there (atomically, via rename)\n"
               "settings (also POST /_sandbox/config with underscores):\n"
               "  --latency-ms --jitter-ms --hubspot-rate-10s --qbo-rate-min --qbo-concurrent\n"
               "  --requestid-retention-s --access-ttl-s --refresh-ttl-s --rotate-after-s\n"
               "  --log-entries --log-body-max --workflow-retry-base-ms --workflow-retry-max-ms\n"
               "  --workflow-retry-attempts --workflow-timeout-ms --workflow-threads\n");
}

static int write_port_file(const char *path, int port)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
        return -1;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    int ok = fprintf(f, "%d\n", port) > 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int parse_listen(const char *s, char *host, size_t hostsz, int *port)
{
    const char *colon = strrchr(s, ':');
    char *end;
    if (!colon || (size_t)(colon - s) >= hostsz || colon == s)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || p < 0 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

int main(int argc, char **argv)
{
    char host[LISTEN_MAX] = "127.0.0.1", err[512] = "";
    const char *seed = NULL, *port_file = NULL;
    int port = 0, bound = 0;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = ncpu < 2 ? 2 : (int)(ncpu > 16 ? 16 : ncpu);

    /* One malloc arena for every thread: the event loops allocate what others free (a
     * stored document outlives its request), and per-thread arenas held ~15 MB more at
     * the bench's peak for no measurable CPU. */
    mallopt(M_ARENA_MAX, 1);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        char name[64];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strncmp(a, "--", 2) != 0) {
            usage(stderr);
            return 2;
        }
        const char *eq = strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (nl >= sizeof(name)) {
            fprintf(stderr, "hsqb-sandbox: unknown option %s\n", a);
            return 2;
        }
        memcpy(name, a + 2, nl);
        name[nl] = '\0';
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        if (!val) {
            fprintf(stderr, "hsqb-sandbox: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(name, "listen") == 0) {
            if (parse_listen(val, host, sizeof(host), &port) != 0) {
                fprintf(stderr, "hsqb-sandbox: --listen wants HOST:PORT, got '%s'\n", val);
                return 2;
            }
        } else if (strcmp(name, "seed") == 0) {
            seed = val;
        } else if (strcmp(name, "port-file") == 0) {
            port_file = val;
        } else if (strcmp(name, "threads") == 0) {
            char *end;
            long t = strtol(val, &end, 10);
            if (*end || end == val || t < 1 || t > 64) {
                fprintf(stderr, "hsqb-sandbox: --threads must be 1..64\n");
                return 2;
            }
            threads = (int)t;
        } else if (sb_settings_set(name, val, err, sizeof(err)) != 0) {
            fprintf(stderr, "hsqb-sandbox: %s\n", err);
            usage(stderr);
            return 2;
        }
    }

    /* Block the signals we wait for before any thread exists; threads inherit it. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    sb_settings_commit_startup();
    sb_set_seed_dir(seed);
    if (seed && sb_seed_dir(seed, err, sizeof(err)) != 0) {
        fprintf(stderr, "hsqb-sandbox: seed: %s\n", err);
        return 1;
    }
    if (sb_server_start(host, port, threads, &bound, err, sizeof(err)) != 0) {
        fprintf(stderr, "hsqb-sandbox: %s\n", err);
        return 1;
    }
    if (port_file && write_port_file(port_file, bound) != 0) {
        fprintf(stderr, "hsqb-sandbox: cannot write %s: %s\n", port_file, strerror(errno));
        sb_server_stop();
        return 1;
    }
    printf("http://%s:%d\n", host, bound);
    fflush(stdout);

    int sig = 0;
    sigwait(&set, &sig);
    sb_server_stop();
    workflows_shutdown();
    hubspot_reset();
    qbo_reset();
    oauth_reset();
    sb_admin_shutdown();
    return 0;
}
