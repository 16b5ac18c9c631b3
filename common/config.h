/* config.h - a declarative settings table and the loader that fills it.
 *
 * Owns: a struct config holding one typed value per row of a caller's table of
 * struct config_def, plus the librdkafka properties passed through under "kafka.".
 * The engine knows nothing about any program's keys; the program supplies the table
 * (hsqb's lives in worker/settings.c) and an environment prefix such as "HSQB_".
 *
 * Sources, lowest to highest precedence; a later source overwrites an earlier one, and
 * a bad value is an error in whichever source it appears:
 *   1. the table's defaults
 *   2. the config file: --config FILE (or env <PREFIX>CONFIG when no flag is given)
 *   3. the environment: <PREFIX> + key upper-cased with '.' as '_'
 *      (kafka.group.id -> HSQB_KAFKA_GROUP_ID). For CONFIG_SECRET keys also
 *      <VAR>_FILE naming a file whose content (trailing CR/LF stripped) is the value;
 *      setting both is an error.
 *   4. command-line flags: --key=value or --key value.
 *
 * Config file: one "key = value" per line; blank lines and lines starting with '#' are
 * ignored. A value is either quoted ("..." with \" \\ \n \t escapes, or '...' taken
 * literally) or bare: the rest of the line, trimmed, ending at the first '#' that
 * follows whitespace (so "a#b" is one value, "a #b" is "a"). Unknown keys and a key
 * given twice are errors reported as FILE:LINE.
 *
 * librdkafka pass-through: a key "kafka.<prop>" that is not in the table is kept
 * verbatim and handed to rd_kafka_conf_set() by config_kafka_apply(). In the
 * environment such a key is <PREFIX>KAFKA__<PROP>: the double underscore marks the
 * pass-through, then '_' stands for '.' and "__" for a literal '_' (librdkafka's
 * names are dotted; log_level is the one settable name with '_'):
 *   HSQB_KAFKA__SECURITY_PROTOCOL -> security.protocol
 *   HSQB_KAFKA__LOG__LEVEL        -> log_level
 * Properties whose name looks secret (contains "password" or "secret", ends in
 * "key.pem", or is sasl.oauthbearer.config) are redacted like CONFIG_SECRET keys and
 * accept the _FILE variant (HSQB_KAFKA__SASL_PASSWORD_FILE).
 *
 * Unknown variables that merely start with the prefix are not errors: Kubernetes
 * injects <SERVICE>_PORT style variables for every service, so a service named
 * "hsqb" would stop the worker. They are recorded (config_ignored_env) for a warning.
 *
 * Messages name the key, the bad value (*** for secrets) and where it came from:
 *   worker.threads: value 0 out of range [1, 256] (from env HSQB_WORKER_THREADS)
 *
 * Thread-safety: build and load on one thread at start-up; afterwards every const
 * function may be called from any number of threads concurrently.
 */
#ifndef HSQB_CONFIG_H
#define HSQB_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <librdkafka/rdkafka.h>

enum config_type {
    CONFIG_STRING,   /* any text; min/max bound its length in bytes when max > 0 (a
                      * key without a default may also be empty, meaning unset) */
    CONFIG_INT,      /* int64 in [min, max] */
    CONFIG_BOOL,     /* true/false, yes/no, on/off, 1/0 (any case) */
    CONFIG_DURATION, /* milliseconds in [min, max]; "250ms", "30s", "5m", "1h", "7d",
                      * sums like "1h30m"; a bare number means ms. Units are lower-case. */
    CONFIG_SIZE,     /* bytes in [min, max]; "512", "512B", "64KiB", "1MiB", "2GiB", or
                      * SI "1kB"/"1MB"/"1GB" (powers of 1000); units in any case */
    CONFIG_ENUM,     /* one of choices (matched in any case, stored as spelled there) */
    CONFIG_LIST,     /* comma-separated, each item trimmed and non-empty; min/max
                      * bound the item count when max > 0 */
};

#define CONFIG_SECRET   0x1u /* never printed: *** in dumps and error messages */
#define CONFIG_REQUIRED 0x2u /* must be set non-empty by a file, env or flag */

struct config_def {
    const char *name;           /* lower-case [a-z0-9_.], e.g. "redis.port" */
    enum config_type type;      /* */
    const char *default_value;  /* text as a user would write it; NULL = unset (only for
                                 * strings and lists) */
    int64_t min, max;           /* see enum config_type */
    const char *help;           /* one or two sentences, no trailing newline */
    unsigned flags;             /* CONFIG_SECRET | CONFIG_REQUIRED */
    const char *const *choices; /* CONFIG_ENUM: NULL-terminated list; else NULL */
};

struct config;

/* Builds a config holding the defaults of `defs` (borrowed: must outlive the config,
 * normally a static table). `env_prefix` (copied) is e.g. "HSQB_". Checks the table
 * itself: valid names, no two keys with one environment name, every default parses
 * and lies within its bounds, enum choices present. Returns NULL and fills errstr on a
 * bad table (a programming error). Caller frees with config_free(). */
struct config *config_new(const struct config_def *defs, size_t ndefs, const char *env_prefix,
                          char *errstr, size_t errsz);

/* Frees cfg and everything it owns. cfg may be NULL. */
void config_free(struct config *cfg);

/* Applies the config file, then `envp`, then the flags in argv[1..argc-1] (argv[0], a
 * program or subcommand name, is skipped). Every argument must be --key=value or
 * --key value (including --config FILE); anything else is an error. `envp` is a
 * NULL-terminated "NAME=value" array (borrowed; may be NULL for none): pass
 * config_environ() for the real environment. Call once per config. Does not check
 * CONFIG_REQUIRED; see config_check_required(). Returns 0, or -1 with errstr set (the
 * config is then partly loaded and should be freed). */
int config_load(struct config *cfg, int argc, char **argv, char *const *envp, char *errstr,
                size_t errsz);

/* Returns 0 when every CONFIG_REQUIRED key has a non-empty value, else -1 naming the
 * first missing key and how to set it. */
int config_check_required(const struct config *cfg, char *errstr, size_t errsz);

/* The process environment (environ), for config_load(). */
char *const *config_environ(void);

/* ---- typed access -------------------------------------------------------------------
 * The key must be in the table with a matching type; anything else is a programming
 * error and aborts with a message on stderr. Returned pointers are borrowed until
 * config_free(). Each call is a short linear search: read values once at start-up. */

/* CONFIG_STRING or CONFIG_ENUM; never NULL ("" when unset). */
const char *config_get_str(const struct config *cfg, const char *key);
int64_t config_get_int(const struct config *cfg, const char *key);
int config_get_bool(const struct config *cfg, const char *key);
int64_t config_get_ms(const struct config *cfg, const char *key);
int64_t config_get_bytes(const struct config *cfg, const char *key);
/* NULL-terminated array of items; *n (may be NULL) receives the count. */
const char *const *config_get_list(const struct config *cfg, const char *key, size_t *n);

/* Whether a file, env or flag set the key (false: the default applies). Aborts on an
 * unknown key. */
int config_is_set(const struct config *cfg, const char *key);
/* Where the value came from: "default", "FILE:LINE", "env VAR" or "flag --key". */
const char *config_where(const struct config *cfg, const char *key);
/* The value as text fit for messages: canonical form ("1MiB", "30s", "a,b"); "***"
 * for a secret set by a file, env or flag (its default is public). Aborts on an
 * unknown key. */
const char *config_shown(const struct config *cfg, const char *key);

/* The table this config was built from. */
const struct config_def *config_defs(const struct config *cfg, size_t *ndefs);
/* The environment variable for key (e.g. "HSQB_REDIS_PORT"); NULL if not in the table. */
const char *config_env_name(const struct config *cfg, const char *key);

/* The environment prefix given to config_new(), e.g. "HSQB_". */
const char *config_env_prefix(const struct config *cfg);
/* Variables starting with the prefix that name no setting; NULL-terminated, borrowed. */
const char *const *config_ignored_env(const struct config *cfg, size_t *n);

/* ---- librdkafka pass-through ---------------------------------------------------------- */

/* Value of pass-through property `prop` (without "kafka."), or NULL when not given. */
const char *config_kafka_get(const struct config *cfg, const char *prop);
/* Where `prop` came from (as config_where), or NULL when not given. */
const char *config_kafka_where(const struct config *cfg, const char *prop);
/* Number of pass-through properties, and the i-th (0 <= i < count) in the order first
 * given: *prop, *value, *where borrowed (each out-pointer may be NULL). Returns 0, or
 * -1 when i is out of range. */
size_t config_kafka_count(const struct config *cfg);
int config_kafka_at(const struct config *cfg, size_t i, const char **prop, const char **value,
                    const char **where);
/* Whether a librdkafka property name is treated as secret (redacted, *_FILE allowed). */
int config_kafka_is_secret(const char *prop);
/* Sets every pass-through property on `conf` (borrowed) in the order given. On the
 * first failure returns -1 with librdkafka's own text, the key and its source:
 *   kafka.foo.bar: No such configuration property: "foo.bar" (from env HSQB_KAFKA__FOO_BAR)
 * Secret values are scrubbed from librdkafka's text. conf may be partly modified. */
int config_kafka_apply(const struct config *cfg, rd_kafka_conf_t *conf, char *errstr, size_t errsz);

/* ---- output --------------------------------------------------------------------------- */

/* "key = value  # source" for every key in table order, then pass-through properties,
 * then ignored variables as comments. Values are quoted when needed so the output
 * reads back as a config file; secrets print as *** when set and "" when not. */
void config_dump(const struct config *cfg, FILE *out);
/* --help text for every key: flag, type, default, bounds or choices, env name, help. */
void config_help(const struct config *cfg, FILE *out);
/* A Markdown table: key, env var, type, default, range/choices, description. */
void config_markdown(const struct config *cfg, FILE *out);

/* ---- parsers shared with callers (e.g. list items that are durations) ------------------
 * Return 0 and set *out on success, -1 on malformed text or overflow. */
int config_parse_bool(const char *s, int *out);
int config_parse_duration(const char *s, int64_t *ms);
int config_parse_size(const char *s, int64_t *bytes);
/* Formats ms / bytes the way dumps show them ("7d", "90s", "250ms"; "1MiB", "1000B"). */
void config_format_duration(int64_t ms, char *buf, size_t bufsz);
void config_format_size(int64_t bytes, char *buf, size_t bufsz);

#endif
