/* cmd_config.h - `hsqb-worker config check|dump|markdown`.
 *
 * Owns nothing beyond one call: it loads the settings (worker/settings.h) the way
 * `run` would and reports on them, so an operator can validate a deployment's file,
 * environment and flags before starting the worker.
 *
 *   config check [--config FILE] [--key=value ...]   "config ok", exit 0; or the
 *                                                    validation error, exit 2
 *   config dump  [--config FILE] [--key=value ...]   every value and its source,
 *                                                    secrets as ***, exit 0 (2 on a
 *                                                    bad value; missing required keys
 *                                                    are reported as a comment)
 *   config markdown                                  the README reference table
 *
 * Unknown HSQB_* variables are reported as warnings on the error stream by check.
 * Thread-safety: start-up only, single-threaded.
 */
#ifndef HSQB_CMD_CONFIG_H
#define HSQB_CMD_CONFIG_H

#include <stdio.h>

/* argv[0] is the word "config", argv[1] the action, the rest its arguments. Uses the
 * process environment, stdout and stderr. Returns the process exit code (0 or 2). */
int cmd_config(int argc, char **argv);

/* As cmd_config() with an injected environment (NULL-terminated "NAME=value", borrowed,
 * may be NULL) and output streams (borrowed, not closed), for tests. */
int cmd_config_run(int argc, char **argv, char **envp, FILE *out, FILE *err);

#endif
