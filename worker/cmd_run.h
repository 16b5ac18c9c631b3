/* cmd_run.h - `hsqb-worker run`: consume events, create QBO documents, publish results.
 *
 * Owns the process for its lifetime: builds every module from the settings, installs
 * SIGTERM/SIGINT handlers that start a clean drain, and tears everything down.
 */
#ifndef HSQB_CMD_RUN_H
#define HSQB_CMD_RUN_H

/* argv[0] is "run"; the rest are settings flags (--config FILE, --key=value).
 * version is the build's version string (borrowed). Returns the process exit status:
 * 0 clean stop, 1 runtime failure, 2 bad configuration / start-up failure. */
int cmd_run(int argc, char **argv, const char *version);

#endif
