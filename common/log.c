/* log.c - JSON-lines logger.
 *
 * A line is built in a per-call buffer (jbuf, capped at LOG_MAX_LINE) and written with
 * one write(2), which keeps concurrent lines whole without a lock on the hot path. The
 * level and fd are atomics. Redaction runs on every string that reaches the line (the
 * message and each field value) before escaping, so the escaper never sees a secret.
 * The registered-secret list is small and rarely written; a mutex guards it.
 */
#include "common/log.h"
#include "common/clock.h"
#include "common/json.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static _Atomic int g_level = LOG_INFO;
static _Atomic int g_fd = 1;

static pthread_mutex_t g_secrets_mu = PTHREAD_MUTEX_INITIALIZER;
static char *g_secrets[LOG_MAX_SECRETS];
static size_t g_nsecrets;
static unsigned char g_secret_first[256]; /* first bytes of g_secrets */

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

int log_level_parse(const char *s)
{
    if (!s)
        return -1;
    for (int i = 0; i <= LOG_OFF; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return LOG_WARN;
    return -1;
}

const char *log_level_name(enum log_level lvl)
{
    if ((int)lvl < 0 || lvl > LOG_OFF)
        return "?";
    return level_names[lvl];
}

void log_set_level(enum log_level lvl)
{
    g_level = (int)lvl;
}

enum log_level log_get_level(void)
{
    return (enum log_level)g_level;
}

void log_set_fd(int fd)
{
    g_fd = fd;
}

int log_register_secret(const char *value)
{
    int rc = 0;
    if (!value || strlen(value) < 4)
        return 0;
    pthread_mutex_lock(&g_secrets_mu);
    for (size_t i = 0; i < g_nsecrets; i++)
        if (strcmp(g_secrets[i], value) == 0)
            goto out;
    if (g_nsecrets == LOG_MAX_SECRETS) {
        rc = -1;
        goto out;
    }
    g_secrets[g_nsecrets] = strdup(value);
    if (!g_secrets[g_nsecrets]) {
        rc = -1;
    } else {
        g_nsecrets++;
        g_secret_first[(unsigned char)value[0]] = 1;
    }
out:
    pthread_mutex_unlock(&g_secrets_mu);
    return rc;
}

void log_clear_secrets(void)
{
    pthread_mutex_lock(&g_secrets_mu);
    for (size_t i = 0; i < g_nsecrets; i++)
        free(g_secrets[i]);
    g_nsecrets = 0;
    memset(g_secret_first, 0, sizeof g_secret_first);
    pthread_mutex_unlock(&g_secrets_mu);
}

/* Field keys whose values are always masked. Matched as case-insensitive substrings. */
static const char *const secret_key_parts[] = {"token", "secret", "password", "passwd",
                                               "authorization", "api_key", "apikey",
                                               "refresh", "cookie", "credential"};

static int key_is_secret(const char *key)
{
    if (!key)
        return 0;
    for (size_t i = 0; i < sizeof secret_key_parts / sizeof *secret_key_parts; i++)
        if (strcasestr(key, secret_key_parts[i]))
            return 1;
    return 0;
}

/* Text prefixes after which the value up to a delimiter is a secret. */
static const char *const secret_prefixes[] = {
    "bearer ",        "basic ",          "access_token=", "refresh_token=", "client_secret=",
    "password=",      "\"access_token\"", "\"refresh_token\"", "\"client_secret\"",
    "\"password\"",   "\"authorization\"", "\"token\""};

/* First bytes worth a closer look: a prefix's (either case) or a registered secret's
 * (g_secret_first, under g_secrets_mu). Any other byte is copied without comparing. */
static unsigned char g_prefix_first[256];
static pthread_once_t g_prefix_once = PTHREAD_ONCE_INIT;

static void prefix_first_init(void)
{
    for (size_t i = 0; i < sizeof secret_prefixes / sizeof *secret_prefixes; i++) {
        unsigned char c = (unsigned char)secret_prefixes[i][0];
        g_prefix_first[c] = g_prefix_first[(unsigned char)tolower(c)] =
            g_prefix_first[(unsigned char)toupper(c)] = 1;
    }
}

static int is_token_char(unsigned char c)
{
    return c > 0x20 && c != '"' && c != '\'' && c != '&' && c != ',' && c != ';' && c != '}' &&
           c != ']' && c != '\\' && c < 0x7f;
}

static void out_put(char *out, size_t outsz, size_t *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n && *o + 1 < outsz; i++)
        out[(*o)++] = s[i];
}

/* Length of the secret value that starts at p after a matched prefix (which ended in
 * '"' for the JSON forms: skip `: "`), and where the masked part begins. */
static size_t secret_span(const char *p, const char *prefix, size_t *skip)
{
    size_t i = 0;
    *skip = 0;
    if (prefix[0] == '"') {
        while (p[i] == ' ' || p[i] == ':')
            i++;
        if (p[i] != '"')
            return 0;
        i++;
        *skip = i;
        size_t j = i;
        while (p[j] && p[j] != '"')
            j += (p[j] == '\\' && p[j + 1]) ? 2 : 1;
        return j - i;
    }
    while (is_token_char((unsigned char)p[i]))
        i++;
    return i;
}

int log_limit_take(struct log_limit *l, uint64_t *dropped)
{
    int64_t now_s = clock_mono_ms() / 1000, last = atomic_load(&l->last_s);

    if (now_s == last || !atomic_compare_exchange_strong(&l->last_s, &last, now_s)) {
        atomic_fetch_add(&l->dropped, 1);
        return 0;
    }
    *dropped = atomic_exchange(&l->dropped, 0);
    return 1;
}

char *log_redact(const char *text, char *out, size_t outsz)
{
    size_t o = 0;
    if (!out || outsz == 0)
        return out;
    if (!text) {
        out[0] = '\0';
        return out;
    }
    pthread_once(&g_prefix_once, prefix_first_init);
    pthread_mutex_lock(&g_secrets_mu);
    for (const char *p = text; *p && o + 1 < outsz;) {
        size_t matched = 0;
        if (!g_prefix_first[(unsigned char)*p] && !g_secret_first[(unsigned char)*p]) {
            out[o++] = *p++;
            continue;
        }
        for (size_t i = 0; i < g_nsecrets && !matched; i++) {
            size_t n = strlen(g_secrets[i]);
            if (strncmp(p, g_secrets[i], n) == 0) {
                out_put(out, outsz, &o, "***", 3);
                matched = n;
            }
        }
        for (size_t i = 0; !matched && i < sizeof secret_prefixes / sizeof *secret_prefixes;
             i++) {
            size_t n = strlen(secret_prefixes[i]);
            if (strncasecmp(p, secret_prefixes[i], n) != 0)
                continue;
            size_t skip, span = secret_span(p + n, secret_prefixes[i], &skip);
            if (span == 0)
                continue;
            out_put(out, outsz, &o, p, n + skip);
            out_put(out, outsz, &o, "***", 3);
            matched = n + skip + span;
        }
        if (matched) {
            p += matched;
        } else {
            out[o++] = *p++;
        }
    }
    pthread_mutex_unlock(&g_secrets_mu);
    out[o] = '\0';
    return out;
}

static void put_timestamp(struct jbuf *jb)
{
    int64_t now = clock_wall_ms();
    time_t secs = (time_t)(now / 1000);
    struct tm tm;
    char buf[96];

    gmtime_r(&secs, &tm);
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(now % 1000));
    jbuf_kv_str(jb, "ts", buf);
}

/* Redaction runs before any cut, so a cut can never leave half a secret visible. */
static void put_redacted(struct jbuf *jb, const char *key, const char *value, size_t maxlen)
{
    char red[LOG_MAX_LINE];
    jbuf_key(jb, key);
    if (!value) {
        jbuf_null(jb);
        return;
    }
    if (key_is_secret(key)) {
        jbuf_str(jb, "***");
        return;
    }
    log_redact(value, red, sizeof red);
    size_t n = strlen(red);
    jbuf_strn(jb, red, n < maxlen ? n : maxlen);
}

static void write_line(struct jbuf *jb)
{
    const char *line = jbuf_cstr(jb);
    if (!line)
        return;
    size_t len = strlen(line);
    char *buf = malloc(len + 1);
    if (!buf)
        return;
    memcpy(buf, line, len);
    buf[len] = '\n';
    size_t off = 0;
    int fd = g_fd;
    while (off < len + 1) {
        ssize_t w = write(fd, buf + off, len + 1 - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    free(buf);
}

/* Build and write a line; when it would exceed the cap, rebuild with the message cut and
 * a "truncated" marker so the line is still valid JSON. */
static void emit(enum log_level lvl, const char *msg, const struct log_field *fields, size_t n)
{
    struct jbuf jb;
    size_t maxlen = LOG_MAX_LINE;
    for (int attempt = 0; attempt < 2; attempt++) {
        jbuf_init(&jb, LOG_MAX_LINE - 1);
        jbuf_obj_open(&jb);
        put_timestamp(&jb);
        jbuf_kv_str(&jb, "level", log_level_name(lvl));
        put_redacted(&jb, "msg", msg, maxlen);
        for (size_t i = 0; i < n; i++) {
            if (!fields[i].key || strcmp(fields[i].key, "ts") == 0 ||
                strcmp(fields[i].key, "level") == 0 || strcmp(fields[i].key, "msg") == 0)
                continue;
            if (fields[i].is_int && !key_is_secret(fields[i].key))
                jbuf_kv_int(&jb, fields[i].key, fields[i].num);
            else
                put_redacted(&jb, fields[i].key, fields[i].is_int ? "" : fields[i].str, maxlen);
        }
        if (attempt == 1)
            jbuf_kv_bool(&jb, "truncated", 1);
        jbuf_obj_close(&jb);
        if (!jb.err) {
            write_line(&jb);
            jbuf_release(&jb);
            return;
        }
        jbuf_release(&jb);
        /* Second try: at most 8 fields and every value cut so that even the worst
         * escaping (6 bytes per input byte) fits in the line. */
        n = n > 8 ? 8 : n;
        maxlen = LOG_MAX_LINE / (8 * (n + 2));
    }
}

void log_fields(enum log_level lvl, const char *msg, const struct log_field *fields, size_t n)
{
    if (!log_enabled(lvl) || lvl >= LOG_OFF)
        return;
    emit(lvl, msg, fields, fields ? n : 0);
}

void log_printf(enum log_level lvl, const char *fmt, ...)
{
    char msg[LOG_MAX_LINE];
    va_list ap;
    if (!log_enabled(lvl) || lvl >= LOG_OFF)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    emit(lvl, msg, NULL, 0);
}
