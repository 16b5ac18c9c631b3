/* cmd_replay.h - `hsqb-worker replay`: put dead letters back on the input topic.
 *
 * Owns nothing beyond one call: its own Kafka consumer (no consumer group: it assigns
 * every partition of the topic from its low watermark and reads up to the high watermark
 * seen at start, committing nothing), one idempotent producer and, unless --force, one
 * Redis connection.
 *
 *   hsqb-worker replay [filters] [--dry-run] [--force] [--topic T] [--to T] [settings]
 *
 * Filters (all given ones must match; a repeatable one matches any of its values):
 *   --since TIME / --until TIME  the record's hsqb-last-failure (else its Kafka
 *                               timestamp) in [since, until). TIME is epoch ms, an RFC
 *                               3339 UTC time (2026-03-01T10:00:00Z, fraction and
 *                               +hh:mm offsets accepted) or a duration meaning "that long
 *                               ago" (90m, 24h, 7d).
 *   --code C                    hsqb-error-code (repeatable)
 *   --portal P / --realm R      the event's portal (key prefix or data.origin.portalId)
 *                               / data.inputFields.qbo_realm_id (repeatable)
 *   --action A                  create_invoice or hsqb.action.create_invoice (repeatable)
 *   --event-id ID               hsqb-event-id, else the value's id (repeatable)
 *   --max N                     stop after N chosen records
 * Every chosen record is listed (one table row: coordinates, failure time, code, event
 * id, action, portal, realm, attempts, what was done), then a summary.
 *
 * Unless --dry-run, each chosen record is re-published with its original key and value
 * bytes to its hsqb-original-topic (--to overrides; default kafka.topic.actions), with
 * its headers except the DLQ-only ones (hsqb-error-*, hsqb-attempts, hsqb-first-failure,
 * hsqb-last-failure, hsqb-consumer-group, and the retry hop's hsqb-not-before /
 * hsqb-last-error: the replayed event starts a fresh retry budget), plus
 * hsqb-replay-of = "<topic>:<partition>:<offset>" and hsqb-replay-count = previous + 1.
 * Safe to run twice: an event Redis says already succeeded is skipped ("succeeded"),
 * the same event id is re-published at most once per run ("duplicate"), and in any
 * case the worker runs a replayed event only when its stored outcome is a failure.
 * --force re-publishes without asking Redis (Redis unreachable also means no check,
 * with a warning).
 *
 * Exit status: 0 every chosen record re-published (or listed, with --dry-run; or none
 * matched); 1 the topic could not be read to its end, or a re-publish failed (the
 * summary says which); 2 usage or configuration error.
 *
 * Thread-safety: start-up style, single-threaded.
 */
#ifndef HSQB_CMD_REPLAY_H
#define HSQB_CMD_REPLAY_H

#include <stdio.h>

/* argv[0] is the word "replay". Uses the process environment, stdout and stderr.
 * Returns the process exit status (worker/exitcode.h). */
int cmd_replay(int argc, char **argv);

/* As cmd_replay() with an injected environment (NULL-terminated "NAME=value", borrowed,
 * may be NULL) and streams (borrowed, not closed), for tests. */
int cmd_replay_run(int argc, char **argv, char **envp, FILE *out, FILE *err);

#endif
