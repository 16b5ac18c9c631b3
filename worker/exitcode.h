/* exitcode.h - the process exit statuses of every hsqb-worker subcommand.
 *
 * Owns: the three numbers an operator or a supervisor sees. One set for all subcommands,
 * so "2" means the same thing after `run`, `config check`, `credentials`, `replay` and
 * `validate`:
 *   EXIT_OK     0  done (run: stopped cleanly after SIGTERM/SIGINT and a drain)
 *   EXIT_FAIL   1  a runtime failure (run: fatal Kafka error; replay: a re-publish
 *                  failed; credentials: Redis or Intuit refused; validate: some file
 *                  is invalid)
 *   EXIT_USAGE  2  usage error, bad configuration, or a start-up failure that retrying
 *                  will not fix (systemd's RestartPreventExitStatus=2); validate: an
 *                  I/O error, which wins over 1
 * The README ("Exit status of run") and each cmd_*.h state what their command returns.
 *
 * Thread-safety: constants only.
 */
#ifndef HSQB_EXITCODE_H
#define HSQB_EXITCODE_H

enum exit_status { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

#endif
