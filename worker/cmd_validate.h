/* cmd_validate.h - `hsqb-worker validate`: check message files against the input contract.
 *
 * Owns: nothing beyond one call. Each FILE (or "-" for standard input) is read up to
 * EVENT_MAX_BYTES + 1 bytes and decoded with event_decode(), exactly as the consumer
 * decodes a Kafka message value, so an operator can check a DLQ dump or a hand-written
 * fixture before replaying or producing it.
 *
 * Thread-safety: call from the main thread only (writes stdout/stderr).
 */
#ifndef HSQB_CMD_VALIDATE_H
#define HSQB_CMD_VALIDATE_H

/* argv[0] is the subcommand name ("validate"); the rest are options and files:
 *   hsqb-worker validate [-q|--quiet] [--json] [--] FILE...
 * Prints one line per file to stdout: "FILE: valid <action> key=<key>" or
 * "FILE: invalid: <reason>"; --json prints one JSON object per line instead
 * ({"file","valid",...}); --quiet omits the lines of valid files. I/O errors also go to
 * stderr. Returns the exit status: 0 all valid, 1 some invalid, 2 usage or I/O error
 * (2 wins over 1). argv is not modified. */
int cmd_validate(int argc, char **argv);

#endif
