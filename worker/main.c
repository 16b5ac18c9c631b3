/* main.c - hsqb-worker entry point: subcommand dispatch only.
 *
 * Each subcommand lives in its own module (cmd_*.c); this file parses nothing beyond the
 * subcommand name, so `--help` and every setting come from the one config table
 * (worker/settings.c). Process-wide setup that must happen before any thread exists is
 * done here: SIGPIPE ignored (hiredis and TLS writes can raise it on a dropped peer).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <json-c/json.h>
#include <librdkafka/rdkafka.h>
#include <openssl/opensslv.h>

#include "worker/cmd_config.h"
#include "worker/cmd_credentials.h"
#include "worker/cmd_hubspot_actions.h"
#include "worker/cmd_ingress.h"
#include "worker/cmd_replay.h"
#include "worker/cmd_run.h"
#include "worker/cmd_validate.h"
#include "worker/exitcode.h"
#include "worker/settings.h"

#ifndef HSQB_VERSION
#define HSQB_VERSION "0.1.0-dev"
#endif

static void usage(FILE *out)
{
    fprintf(out,
            "usage: hsqb-worker <command> [options]\n"
            "\n"
            "HubSpot workflow actions from Kafka -> QuickBooks Online documents.\n"
            "\n"
            "commands:\n"
            "  run          consume events, create QBO documents, publish results,\n"
            "               complete HubSpot workflow callbacks\n"
            "  ingress      HubSpot's actionUrl/optionsUrl: signed requests -> Kafka; the\n"
            "               pages that connect QuickBooks companies and install the app\n"
            "  hubspot-actions sync --app-id N [--dry-run]\n"
            "               create or update the workflow action definitions\n"
            "  replay       re-publish dead-lettered events (filters, --dry-run)\n"
            "  credentials  store a realm's QBO refresh token / a portal's HubSpot token,\n"
            "               bind realms to portals, print a portal's connect link\n"
            "  validate     decode input-event files and print a verdict per file\n"
            "  config       check | dump | markdown: the effective configuration\n"
            "  version      print version and library versions\n"
            "\n"
            "Settings come from defaults < --config FILE < HSQB_* environment < --key=value\n"
            "flags. Every setting:\n\n");
    settings_help(out);
}

static int cmd_version(void)
{
    printf("hsqb-worker %s\n", HSQB_VERSION);
    printf("librdkafka %s\n", rd_kafka_version_str());
    printf("libcurl %s\n", curl_version_info(CURLVERSION_NOW)->version);
    printf("json-c %s\n", json_c_version());
    printf("hiredis %d.%d.%d\n", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
    printf("%s\n", OPENSSL_VERSION_TEXT);
    return EXIT_OK;
}

/* Tokens, refresh tokens and the client secret live in this process's memory: no core
 * dump may carry them off (core size 0, soft and hard), and the process is not dumpable,
 * so another process of the same user cannot ptrace it or read /proc/<pid>/mem. Not in
 * sanitizer builds: LeakSanitizer stops the world from a ptrace-attached helper. */
static void protect_secrets_in_memory(void)
{
    const struct rlimit none = {0, 0};

    if (setrlimit(RLIMIT_CORE, &none) != 0)
        perror("hsqb-worker: setrlimit(RLIMIT_CORE)");
#if !defined(__SANITIZE_ADDRESS__)
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        perror("hsqb-worker: prctl(PR_SET_DUMPABLE)");
#endif
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    protect_secrets_in_memory();

    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0)
        return cmd_version();
    if (strcmp(cmd, "config") == 0)
        return cmd_config(argc - 1, argv + 1);
    if (strcmp(cmd, "validate") == 0)
        return cmd_validate(argc - 1, argv + 1);
    if (strcmp(cmd, "credentials") == 0)
        return cmd_credentials(argc - 1, argv + 1);
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 1, argv + 1, HSQB_VERSION);
    if (strcmp(cmd, "replay") == 0)
        return cmd_replay(argc - 1, argv + 1);
    if (strcmp(cmd, "ingress") == 0)
        return cmd_ingress(argc - 1, argv + 1, HSQB_VERSION);
    if (strcmp(cmd, "hubspot-actions") == 0)
        return cmd_hubspot_actions(argc - 1, argv + 1);

    fprintf(stderr, "hsqb-worker: unknown command '%s' (try --help)\n", cmd);
    return EXIT_USAGE;
}
