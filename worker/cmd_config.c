/* cmd_config.c - the `config` subcommand: check, dump and markdown over the settings.
 *
 * check and dump go through settings_load_flags() exactly as `run` does, so "config ok"
 * means the worker would accept the same file, environment and flags. dump skips only
 * the required-key check (it is most useful when something is missing) and says what
 * is missing in a trailing comment.
 */
#include "worker/cmd_config.h"

#include <string.h>

#include "common/config.h"
#include "worker/exitcode.h"
#include "worker/settings.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: hsqb-worker config check [--config FILE] [--key=value ...]\n"
               "       hsqb-worker config dump [--config FILE] [--key=value ...]\n"
               "       hsqb-worker config markdown\n");
}

static void warn_ignored(const struct config *cfg, FILE *err)
{
    size_t n, i;
    const char *const *names = config_ignored_env(cfg, &n);

    for (i = 0; i < n; i++)
        fprintf(err, "hsqb-worker config: warning: ignoring %s: no such setting%s\n", names[i],
                strncmp(names[i], SETTINGS_ENV_PREFIX "KAFKA_", 11) == 0
                    ? " (librdkafka properties are " SETTINGS_ENV_PREFIX "KAFKA__<PROPERTY>)"
                    : "");
}

int cmd_config_run(int argc, char **argv, char **envp, FILE *out, FILE *err)
{
    struct config *cfg = NULL;
    char errstr[1024];
    const char *action = argc > 1 ? argv[1] : "";

    if (strcmp(action, "check") == 0) {
        if (settings_load(&cfg, argc - 1, argv + 1, envp, errstr, sizeof(errstr)) < 0) {
            fprintf(err, "hsqb-worker config check: %s\n", errstr);
            return EXIT_USAGE;
        }
        warn_ignored(cfg, err);
        fprintf(out, "config ok\n");
        config_free(cfg);
        return EXIT_OK;
    }
    if (strcmp(action, "dump") == 0) {
        if (settings_load_flags(&cfg, argc - 1, argv + 1, envp, SETTINGS_SKIP_REQUIRED, errstr,
                                sizeof(errstr)) < 0) {
            fprintf(err, "hsqb-worker config dump: %s\n", errstr);
            return EXIT_USAGE;
        }
        config_dump(cfg, out);
        if (config_check_required(cfg, errstr, sizeof(errstr)) < 0)
            fprintf(out, "# incomplete: %s\n", errstr);
        config_free(cfg);
        return EXIT_OK;
    }
    if (strcmp(action, "markdown") == 0 && argc == 2) {
        if (settings_load_flags(&cfg, 1, argv + 1, NULL, SETTINGS_SKIP_REQUIRED, errstr,
                                sizeof(errstr)) < 0) {
            fprintf(err, "hsqb-worker config markdown: %s\n", errstr);
            return EXIT_USAGE;
        }
        config_markdown(cfg, out);
        config_free(cfg);
        return EXIT_OK;
    }
    if (strcmp(action, "help") == 0 || strcmp(action, "--help") == 0 || strcmp(action, "-h") == 0) {
        usage(out);
        return EXIT_OK;
    }
    usage(err);
    return EXIT_USAGE;
}

int cmd_config(int argc, char **argv)
{
    return cmd_config_run(argc, argv, (char **)config_environ(), stdout, stderr);
}
