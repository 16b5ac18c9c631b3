/* settings.h - every setting of hsqb-worker: the table, loading and cross-checks.
 *
 * Owns the one declarative table (worker/settings.c) that drives parsing, validation,
 * --help, `hsqb-worker config dump` and the README's reference table, on top of the
 * generic engine in common/config.h. Keys are grouped by prefix (kafka., redis.,
 * worker., hubspot., qbo., oauth., http., retry., ...); the environment prefix is
 * HSQB_ (kafka.group.id -> HSQB_KAFKA_GROUP_ID) and "kafka.<prop>" keys not in the
 * table pass through to librdkafka (HSQB_KAFKA__<PROP>).
 *
 * Beyond each key's own type and bounds, settings_load() checks what only the whole
 * set can show: per-partition in-flight <= total in-flight, retry.base <= retry.cap,
 * retry.max_age <= dedup.window (a second copy of an event must still find the first
 * one's done marker), retry.schedule items are durations, URLs have a scheme,
 * metrics.listen is host:port, redis.key_prefix has no hash-tag braces, and the
 * librdkafka pass-through is accepted by librdkafka and does not override a property
 * the worker owns (bootstrap.servers, group.id, enable.auto.offset.store, ...).
 *
 * Thread-safety: load once at start-up on one thread; the returned config is then
 * read-only and may be read from any thread (the worker copies values into its own
 * structs at start-up).
 */
#ifndef HSQB_SETTINGS_H
#define HSQB_SETTINGS_H

#include <stddef.h>
#include <stdio.h>

#include "common/config.h"

#define SETTINGS_ENV_PREFIX "HSQB_"

/* settings_load_flags() flags. */
#define SETTINGS_SKIP_REQUIRED 0x1u /* allow required keys to be unset (dump, help) */

/* The table; *n (may be NULL) receives its length. Static, never freed. */
const struct config_def *settings_table(size_t *n);

/* Loads defaults < --config FILE (or HSQB_CONFIG) < envp < flags in argv[1..argc-1]
 * (argv[0], the subcommand name, is skipped) and validates everything, including
 * required keys. envp is a NULL-terminated "NAME=value" array (borrowed; NULL means an
 * empty environment; the real one is config_environ()). On success returns 0 and sets
 * *out (caller frees with config_free()); on failure returns -1, leaves *out alone and
 * fills errstr with one line naming the key, the (redacted) value and its source.
 * Success also sets the process-wide limit derived from the settings: the JSON parser's
 * values cap (jtape_set_max_values(http.max_response_bytes / JTAPE_BYTES_PER_VALUE)). */
int settings_load(struct config **out, int argc, char **argv, char **envp, char *errstr,
                  size_t errsz);

/* As settings_load(), with SETTINGS_* flags. */
int settings_load_flags(struct config **out, int argc, char **argv, char **envp, unsigned flags,
                        char *errstr, size_t errsz);

/* Writes the settings part of `hsqb-worker --help` (every key with its type, default,
 * bounds, environment variable and help) to out. The caller prints the usage line and
 * the list of subcommands before it. */
void settings_help(FILE *out);

/* Registers every secret setting's value with log_register_secret(), the secret kafka.*
 * pass-through properties' (config_kafka_is_secret) included: from then on they are masked
 * wherever a log line would show them. */
void settings_register_secrets(const struct config *cfg);

struct redis_opts;
/* Fill o (common/redis.h) from redis.*: host, port or unix socket, username, password,
 * db, timeouts, key prefix, the encryption key ring and whether it is required. Strings are borrowed from cfg, so cfg must outlive every use of o. Empty
 * username/password mean none. */
void settings_redis_opts(const struct config *cfg, struct redis_opts *o);
/* Logs a warning when redis.encryption_keys is not set (tokens stored in plain text);
 * once, at the start of the commands that keep tokens in Redis (run, ingress). */
void settings_warn_unsealed(const struct config *cfg);

struct http_client_opts;
/* Fill o (common/http.h) from http.*: connect_timeout, timeout, max_response_bytes and
 * user_agent; every other member keeps http_client_opts_default()'s value. user_agent is
 * borrowed from cfg (http_client_new() copies it). */
void settings_http_opts(const struct config *cfg, struct http_client_opts *o);

struct httpd_limits;
/* metrics.max_connections, metrics.max_connections_per_ip, metrics.request_deadline. */
void settings_httpd_limits(const struct config *cfg, struct httpd_limits *l);

/* One entry of a per-company setting (items.income_account_by_realm,
 * dates.time_zone_by_realm): "<realm id>=<value>" entries separated by ';'. */
#define SETTINGS_PAIR_VALUE_MAX 200
struct settings_realm_pair {
    char realm[33];                             /* 1..32 digits */
    char value[SETTINGS_PAIR_VALUE_MAX + 1];    /* 1..SETTINGS_PAIR_VALUE_MAX bytes */
};

/* Parse s (NULL or "" = no entries) into at most max pairs, blanks around entries and
 * values trimmed, empty entries skipped: 0 with *n, or -1 with errstr naming key. */
int settings_realm_pairs(const char *key, const char *s, struct settings_realm_pair *out,
                         size_t max, size_t *n, char *errstr, size_t errsz);

#endif
