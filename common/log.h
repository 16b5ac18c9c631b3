/* log.h - JSON-lines logging, level-gated, printf-checked, secrets redacted.
 *
 * Every line is one JSON object written with a single write(2) to the sink (stdout by
 * default), so lines from concurrent threads never interleave:
 *   {"ts":"2026-11-26T18:51:38.123Z","level":"info","msg":"...", <fields...>}
 *
 * Rules this module enforces so callers cannot get them wrong:
 *  - Arguments are not evaluated below the current level (the macros test first).
 *  - The message and every field value are escaped: untrusted bytes (Kafka payloads,
 *    HTTP bodies) can never break the line or inject fields; invalid UTF-8 becomes
 *    U+FFFD.
 *  - Redaction: a field whose key looks secret (token, secret, password, authorization,
 *    api_key, refresh, cookie) is written as "***"; inside any text, the value after
 *    "Bearer ", "access_token=", "refresh_token=", "client_secret=", "password=" (and the
 *    JSON forms "access_token":"...") is masked; and every value registered with
 *    log_register_secret() is masked wherever it appears.
 *  - Lines are capped at LOG_MAX_LINE bytes; longer messages are truncated and marked.
 *
 * Thread-safety: all functions may be called from any thread. log_set_level() and
 * log_set_fd() are meant for start-up but are safe (atomics) at any time.
 */
#ifndef HSQB_LOG_H
#define HSQB_LOG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define LOG_MAX_LINE 16384   /* bytes per line, newline included */
#define LOG_MAX_SECRETS 64   /* registered secret values */

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

/* Parse "debug"/"info"/"warn"/"warning"/"error"/"off"; -1 when unknown. */
int log_level_parse(const char *s);
const char *log_level_name(enum log_level lvl);

void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
/* Redirect output (tests, or stderr for CLI tools). fd is borrowed, not closed. */
void log_set_fd(int fd);

/* Mask this exact value wherever it appears in later log lines (copied; values shorter
 * than 4 bytes are ignored because masking them would garble ordinary text). Returns 0,
 * or -1 when the registry is full. */
int log_register_secret(const char *value);
void log_clear_secrets(void);

/* A structured field. Use the LF_STR/LF_INT helpers to build arrays of them. */
struct log_field {
    const char *key;
    const char *str; /* used when is_int == 0; NULL writes null */
    int64_t num;
    int is_int;
};
#define LF_STR(k, v) ((struct log_field){.key = (k), .str = (v)})
#define LF_INT(k, v) ((struct log_field){.key = (k), .num = (int64_t)(v), .is_int = 1})

/* Write one line: msg plus n fields (fields may be NULL when n == 0). Callers normally
 * go through the macros below, which skip the call below the level. */
void log_fields(enum log_level lvl, const char *msg, const struct log_field *fields, size_t n);
/* printf-style message; the formatted text is escaped and redacted like any value. */
void log_printf(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* At most one line a second for a flood (refused requests, a listener's messages): zero
 * it, or LOG_LIMIT_INIT. log_limit_take() is 1 when a line may be written now, with
 * *dropped = the lines refused since the last one (to say so in it); else 0, counting
 * this one as dropped. Any thread. */
struct log_limit {
    _Atomic int64_t last_s;
    _Atomic uint64_t dropped;
};
#define LOG_LIMIT_INIT {INT64_MIN, 0}
int log_limit_take(struct log_limit *l, uint64_t *dropped);

/* Redact secrets in text (same rules as the log lines) into out (always terminated,
 * truncated to outsz). Exposed for error strings that leave the process (results, DLQ
 * headers). Returns out. */
char *log_redact(const char *text, char *out, size_t outsz);

#define log_enabled(lvl) ((lvl) >= log_get_level())
#define LOG_AT(lvl, ...)                                                                        \
    do {                                                                                       \
        if (log_enabled(lvl))                                                                  \
            log_printf((lvl), __VA_ARGS__);                                                    \
    } while (0)
#define log_debug(...) LOG_AT(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  LOG_AT(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  LOG_AT(LOG_WARN, __VA_ARGS__)
#define log_error(...) LOG_AT(LOG_ERROR, __VA_ARGS__)

#endif
