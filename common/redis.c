/* redis.c - hiredis wrapper: reconnecting blocking connection, EVALSHA with NOSCRIPT
 * fallback, and the lease / lock scripts.
 *
 * Connection states (one per struct redis_conn):
 *
 *     connected --I/O error or timeout (command fails)--> down
 *     down --next call: conn_open() succeeds--> connected
 *     down --next call: conn_open() fails--> backing off until retry_at
 *     backing off --call before retry_at: fails fast--> backing off
 *     backing off --call after retry_at--> down (tries again)
 *
 * A timed-out context is dropped rather than reused because its reply may still arrive
 * and would then be read as the answer to the next command.
 *
 * A leased key's life: absent --redis_lock--> token --redis_lease_renew--> token
 * --redis_lease_release--> absent; token --lease expires--> absent. Every transition
 * that depends on the current value is one Lua script, so it is atomic and costs one
 * round trip: taking a lock checks "free, ours or busy" at once instead of SET NX
 * followed by a racy GET. (An event's key adds a done state: worker/claim.c.)
 *
 * The built-in scripts are hashed once per process (pthread_once in redis_conn_new) and
 * are read-only afterwards; nothing on the request path takes a lock.
 */
#include "common/clock.h"
#include "common/redis.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/evp.h>

#include "common/log.h"

struct redis_conn {
    redisContext *ctx; /* NULL: (re)connect before the next command */
    struct redis_opts o;
    char *host, *unix_path, *username, *password, *prefix; /* owned copies */
    struct seal_keyring *keyring;                          /* NULL: none configured */
    int64_t retry_at_ms;    /* monotonic; calls fail fast before it */
    char last_err[160];     /* why the last connect failed */
    unsigned char rnd[256]; /* random bytes for tokens, refilled when used up */
    size_t rnd_off;
    int pending; /* deferred commands whose replies are still to be read (in order) */
};

/* KEYS[1] key; ARGV token, ms. Returns 0 ours, 2 busy. */
static const char ACQUIRE_SRC[] = "local v = redis.call('GET', KEYS[1])\n"
                                  "if not v then\n"
                                  "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
                                  "  return 0\n"
                                  "end\n"
                                  "if v == ARGV[1] then\n"
                                  "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
                                  "  return 0\n"
                                  "end\n"
                                  "return 2\n";

/* KEYS[1] key; ARGV token, ms. Returns 1 renewed, 0 not ours. */
static const char RENEW_SRC[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
                                "  return redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
                                "end\n"
                                "return 0\n";

/* KEYS[1] key; ARGV token. Returns 1 deleted, 0 not ours. */
static const char RELEASE_SRC[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
                                  "  return redis.call('DEL', KEYS[1])\n"
                                  "end\n"
                                  "return 0\n";

static struct redis_script s_acquire, s_renew, s_release;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static int s_init_rc = -1;

static void scripts_init_once(void)
{
    char err[128];

    s_init_rc = redis_script_init(&s_acquire, ACQUIRE_SRC, err, sizeof(err)) < 0 ||
                        redis_script_init(&s_renew, RENEW_SRC, err, sizeof(err)) < 0 ||
                        redis_script_init(&s_release, RELEASE_SRC, err, sizeof(err)) < 0
                    ? -1
                    : 0;
}

static struct timeval ms_tv(int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

void redis_opts_default(struct redis_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->host = "127.0.0.1";
    o->port = 6379;
    o->connect_timeout_ms = 1000;
    o->command_timeout_ms = 1000;
    o->reconnect_backoff_ms = 100;
    o->prefix = REDIS_DEFAULT_PREFIX;
}

const char *redis_conn_prefix(const struct redis_conn *c)
{
    return c->prefix;
}

const struct seal_keyring *redis_conn_keyring(const struct redis_conn *c)
{
    return c->keyring;
}

int redis_conn_seal_required(const struct redis_conn *c)
{
    return c->o.seal_required;
}

int redis_script_init(struct redis_script *s, const char *src, char *errstr, size_t errsz)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0, i;

    if (!EVP_Digest(src, strlen(src), md, &mdlen, EVP_sha1(), NULL) || mdlen != 20) {
        snprintf(errstr, errsz, "redis: SHA-1 of a script failed");
        return -1;
    }
    for (i = 0; i < 20; i++) {
        s->sha[2 * i] = hex[md[i] >> 4];
        s->sha[2 * i + 1] = hex[md[i] & 15];
    }
    s->sha[40] = '\0';
    s->src = src;
    return 0;
}

static void conn_drop(struct redis_conn *c)
{
    if (c->ctx) {
        redisFree(c->ctx);
        c->ctx = NULL;
    }
    if (c->pending > 0)
        log_warn("redis: connection dropped with %d deferred command(s) unanswered", c->pending);
    c->pending = 0;
}

/* Describe why ctx failed; saved_errno is errno right after the failing call. */
static void io_error(struct redis_conn *c, int saved_errno, const char *what, char *errstr,
                     size_t errsz)
{
    const redisContext *x = c->ctx;

    if (!x)
        snprintf(errstr, errsz, "redis %s: out of memory", what);
    else if (x->err == REDIS_ERR_IO && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK))
        snprintf(errstr, errsz, "redis %s: timeout after %d ms", what, c->o.command_timeout_ms);
    else if (x->err == REDIS_ERR_EOF)
        snprintf(errstr, errsz, "redis %s: server closed the connection", what);
    else
        snprintf(errstr, errsz, "redis %s: %s", what, x->errstr[0] ? x->errstr : "I/O error");
}

/* Run one command on a live context during connection set-up. */
static int setup_cmd(struct redis_conn *c, int argc, const char **argv, const char *what,
                     char *errstr, size_t errsz)
{
    redisReply *r = redisCommandArgv(c->ctx, argc, argv, NULL);
    int rc = 0;

    if (!r) {
        io_error(c, errno, what, errstr, errsz);
        return -1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        /* Server error texts (WRONGPASS, NOAUTH) never echo the password. */
        snprintf(errstr, errsz, "redis %s: %s", what, r->str);
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

static int conn_open(struct redis_conn *c, char *errstr, size_t errsz)
{
    int64_t now = clock_mono_ms();
    char db[16];

    if (c->retry_at_ms && now < c->retry_at_ms) {
        snprintf(errstr, errsz, "redis unavailable (reconnect backoff): %s", c->last_err);
        return -1;
    }
    if (c->unix_path)
        c->ctx = redisConnectUnixWithTimeout(c->unix_path, ms_tv(c->o.connect_timeout_ms));
    else
        c->ctx = redisConnectWithTimeout(c->host, c->o.port, ms_tv(c->o.connect_timeout_ms));
    if (!c->ctx || c->ctx->err) {
        io_error(c, errno, "connect", errstr, errsz);
        goto fail;
    }
    if (redisSetTimeout(c->ctx, ms_tv(c->o.command_timeout_ms)) != REDIS_OK) {
        io_error(c, errno, "set timeout", errstr, errsz);
        goto fail;
    }
    if (!c->unix_path)
        redisEnableKeepAlive(c->ctx); /* best effort: detects dead peers when idle */
    if (c->password) {
        const char *argv[3] = {"AUTH", c->username ? c->username : c->password, c->password};
        if (setup_cmd(c, c->username ? 3 : 2, argv, "AUTH", errstr, errsz) < 0)
            goto fail;
    }
    if (c->o.db != 0) {
        const char *argv[2] = {"SELECT", db};
        snprintf(db, sizeof(db), "%d", c->o.db);
        if (setup_cmd(c, 2, argv, "SELECT", errstr, errsz) < 0)
            goto fail;
    }
    c->retry_at_ms = 0;
    return 0;
fail:
    conn_drop(c);
    if (c->o.reconnect_backoff_ms > 0)
        c->retry_at_ms = now + c->o.reconnect_backoff_ms;
    snprintf(c->last_err, sizeof(c->last_err), "%s", errsz ? errstr : "connect failed");
    return -1;
}

struct redis_conn *redis_conn_new(const struct redis_opts *o, char *errstr, size_t errsz)
{
    struct redis_conn *c = NULL;
    struct redis_opts def;
    const char *prefix;
    char e[160];

    if (!o) {
        redis_opts_default(&def);
        o = &def;
    }
    prefix = o->prefix ? o->prefix : REDIS_DEFAULT_PREFIX;
    if (strlen(prefix) > REDIS_MAX_PREFIX || strpbrk(prefix, "{}")) {
        snprintf(errstr, errsz, "redis: prefix longer than %d bytes or with '{' or '}'",
                 REDIS_MAX_PREFIX);
        return NULL;
    }
    if (o->connect_timeout_ms <= 0 || o->command_timeout_ms <= 0 || o->db < 0 ||
        o->reconnect_backoff_ms < 0 || (!o->unix_path && (o->port <= 0 || o->port > 65535))) {
        snprintf(errstr, errsz, "redis: invalid port, db or timeouts");
        return NULL;
    }
    pthread_once(&s_once, scripts_init_once);
    if (s_init_rc < 0) {
        snprintf(errstr, errsz, "redis: cannot hash the built-in scripts");
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        goto oom;
    c->o = *o;
    c->rnd_off = sizeof(c->rnd);
    c->host = strdup(o->host ? o->host : "127.0.0.1");
    c->prefix = strdup(prefix);
    if (!c->host || !c->prefix || (o->unix_path && !(c->unix_path = strdup(o->unix_path))) ||
        (o->username && !(c->username = strdup(o->username))) ||
        (o->password && !(c->password = strdup(o->password))))
        goto oom;
    c->o.host = c->host;
    c->o.unix_path = c->unix_path;
    c->o.username = c->username;
    c->o.password = c->password;
    c->o.prefix = c->prefix;
    c->o.seal_keys = NULL; /* parsed below; the text is not kept */
    if (o->seal_keys && *o->seal_keys && !(c->keyring = seal_keyring_parse(o->seal_keys, e, sizeof e))) {
        snprintf(errstr, errsz, "redis: encryption keys: %s", e);
        goto fail;
    }
    c->o.reconnect_backoff_ms = 0; /* the first connect must really try */
    if (conn_open(c, errstr, errsz) < 0)
        goto fail;
    c->o.reconnect_backoff_ms = o->reconnect_backoff_ms;
    return c;
oom:
    snprintf(errstr, errsz, "redis: out of memory");
fail:
    redis_conn_free(c);
    return NULL;
}

void redis_conn_free(struct redis_conn *c)
{
    char e[160];

    if (!c)
        return;
    if (redis_flush(c, e, sizeof e) < 0)
        log_warn("redis: deferred commands lost at close: %s", e);
    conn_drop(c);
    if (c->password) {
        explicit_bzero(c->password, strlen(c->password));
        free(c->password);
    }
    free(c->host);
    free(c->unix_path);
    free(c->username);
    free(c->prefix);
    seal_keyring_free(c->keyring);
    explicit_bzero(c->rnd, sizeof(c->rnd));
    free(c);
}

/* Turn a NULL reply or (unless keep_err) an error reply into NULL + errstr. */
static redisReply *finish(struct redis_conn *c, redisReply *r, int saved_errno, int keep_err,
                          char *errstr, size_t errsz)
{
    if (!r) {
        io_error(c, saved_errno, "command", errstr, errsz);
        conn_drop(c);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR && !keep_err) {
        snprintf(errstr, errsz, "redis: %s", r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* Read (and drop) the replies of the deferred commands, which come before any other. 0, or
 * -1 with errstr when the connection failed (it is dropped). An error reply to a deferred
 * command is only logged: its caller chose not to wait for it. */
static int drain_pending(struct redis_conn *c, char *errstr, size_t errsz)
{
    while (c->pending > 0) {
        void *rv = NULL;
        if (redisGetReply(c->ctx, &rv) != REDIS_OK || !rv) {
            int saved = errno;
            c->pending--; /* this one is lost with the connection */
            io_error(c, saved, "command", errstr, errsz);
            conn_drop(c);
            return -1;
        }
        c->pending--;
        if (((redisReply *)rv)->type == REDIS_REPLY_ERROR)
            log_warn("redis: a deferred command failed: %.200s", ((redisReply *)rv)->str);
        freeReplyObject(rv);
    }
    return 0;
}

/* The reply to the command just appended, after those of the deferred ones. */
static redisReply *get_reply(struct redis_conn *c, int keep_err, char *errstr, size_t errsz)
{
    void *rv = NULL;

    if (drain_pending(c, errstr, errsz) < 0)
        return NULL;
    if (redisGetReply(c->ctx, &rv) != REDIS_OK)
        rv = NULL;
    return finish(c, rv, errno, keep_err, errstr, errsz);
}

static redisReply *argv_cmd(struct redis_conn *c, int argc, const char **argv,
                            const size_t *argvlen, int keep_err, char *errstr, size_t errsz)
{
    if (!c->ctx && conn_open(c, errstr, errsz) < 0)
        return NULL;
    if (redisAppendCommandArgv(c->ctx, argc, argv, argvlen) != REDIS_OK) {
        snprintf(errstr, errsz, "redis: out of memory");
        return NULL;
    }
    return get_reply(c, keep_err, errstr, errsz);
}

redisReply *redis_command_argv(struct redis_conn *c, int argc, const char **argv,
                               const size_t *argvlen, char *errstr, size_t errsz)
{
    return argv_cmd(c, argc, argv, argvlen, 0, errstr, errsz);
}

int redis_reply_str(const redisReply *r, char *buf, size_t bufsz)
{
    buf[0] = '\0';
    if (!r || r->type != REDIS_REPLY_STRING || r->len == 0)
        return 0;
    if (r->len >= bufsz || strlen(r->str) != r->len)
        return -1;
    memcpy(buf, r->str, r->len + 1);
    return 1;
}

/* A decimal number of at most 9 digits at s into *out, *end after it. 0, or -1. */
static int version_part(const char *s, const char **end, int *out)
{
    int n = 0, digits = 0;

    while (*s >= '0' && *s <= '9' && digits < 9) {
        n = n * 10 + (*s++ - '0');
        digits++;
    }
    if (!digits || (*s >= '0' && *s <= '9'))
        return -1;
    *out = n;
    *end = s;
    return 0;
}

int redis_version_parse(const char *info, int *major, int *minor)
{
    const char *v = info;

    /* a field at the start of a line, not a longer name ending in it */
    while ((v = strstr(v, "redis_version:")) && v != info && v[-1] != '\n')
        v++;
    if (!v || version_part(v + strlen("redis_version:"), &v, major) < 0 || *v++ != '.' ||
        version_part(v, &v, minor) < 0)
        return -1;
    return 0;
}

int redis_server_version(struct redis_conn *c, int *major, int *minor, char *errstr,
                         size_t errsz)
{
    redisReply *r = redis_command(c, errstr, errsz, "INFO server");
    int rc = -1;

    if (!r)
        return -1;
    if (r->type == REDIS_REPLY_STRING) /* hiredis 0.14 speaks RESP2: a bulk string */
        rc = redis_version_parse(r->str, major, minor);
    if (rc < 0)
        snprintf(errstr, errsz, "INFO server names no redis_version");
    freeReplyObject(r);
    return rc;
}

int redis_version_ok(struct redis_conn *c, char *errstr, size_t errsz)
{
    int major = 0, minor = 0;

    if (redis_server_version(c, &major, &minor, errstr, errsz) < 0)
        return -1;
    if (major > REDIS_MIN_MAJOR || (major == REDIS_MIN_MAJOR && minor >= REDIS_MIN_MINOR))
        return 1;
    snprintf(errstr, errsz,
             "Redis %d.%d is older than %d.%d, which the worker needs (the claim is one "
             "SET ... NX ... GET)",
             major, minor, REDIS_MIN_MAJOR, REDIS_MIN_MINOR);
    return 0;
}

redisReply *redis_command(struct redis_conn *c, char *errstr, size_t errsz, const char *fmt, ...)
{
    va_list ap;
    int rc;

    if (!c->ctx && conn_open(c, errstr, errsz) < 0)
        return NULL;
    va_start(ap, fmt);
    rc = redisvAppendCommand(c->ctx, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK) {
        snprintf(errstr, errsz, "redis: cannot format the command");
        return NULL;
    }
    return get_reply(c, 0, errstr, errsz);
}

int redis_command_argv_deferred(struct redis_conn *c, int argc, const char **argv,
                                const size_t *argvlen, char *errstr, size_t errsz)
{
    if (c->pending >= REDIS_MAX_DEFERRED && redis_flush(c, errstr, errsz) < 0)
        return -1;
    if (!c->ctx && conn_open(c, errstr, errsz) < 0)
        return -1;
    if (redisAppendCommandArgv(c->ctx, argc, argv, argvlen) != REDIS_OK) {
        snprintf(errstr, errsz, "redis: out of memory");
        return -1;
    }
    c->pending++;
    return 0;
}

/* Eight parameters: as redis_eval (two vectors), without lengths. */
int redis_eval_deferred(struct redis_conn *c, const struct redis_script *s, int nkeys,
                        const char **keys, int nargs, const char **args, char *errstr, size_t errsz)
{
    const char *argv[3 + REDIS_EVAL_MAX_ARGS];
    char nk[16];
    int i;

    if (nkeys < 0 || nargs < 0 || nkeys + nargs > REDIS_EVAL_MAX_ARGS) {
        snprintf(errstr, errsz, "redis: too many script keys/args (max %d)", REDIS_EVAL_MAX_ARGS);
        return -1;
    }
    snprintf(nk, sizeof(nk), "%d", nkeys);
    /* EVAL with the source, not EVALSHA: nobody waits for the reply, so a NOSCRIPT (after
     * a Redis restart) could not be answered with SCRIPT LOAD; Redis finds the compiled
     * script by the source's digest anyway. */
    argv[0] = "EVAL";
    argv[1] = s->src;
    argv[2] = nk;
    for (i = 0; i < nkeys; i++)
        argv[3 + i] = keys[i];
    for (i = 0; i < nargs; i++)
        argv[3 + nkeys + i] = args[i];
    return redis_command_argv_deferred(c, 3 + nkeys + nargs, argv, NULL, errstr, errsz);
}

int redis_flush(struct redis_conn *c, char *errstr, size_t errsz)
{
    if (!c || c->pending == 0 || !c->ctx)
        return 0;
    return drain_pending(c, errstr, errsz);
}

int redis_pending(const struct redis_conn *c)
{
    return c ? c->pending : 0;
}

/* Nine parameters: EVALSHA's two vectors (keys, args and their lengths), in hiredis's
 * redisCommandArgv style, plus the error buffer. */
redisReply *redis_eval(struct redis_conn *c, const struct redis_script *s, int nkeys,
                       const char **keys, int nargs, const char **args, const size_t *arglens,
                       char *errstr, size_t errsz)
{
    const char *argv[3 + REDIS_EVAL_MAX_ARGS];
    size_t lens[3 + REDIS_EVAL_MAX_ARGS];
    char nk[16];
    redisReply *r;
    int i, argc = 3 + nkeys + nargs;

    if (nkeys < 0 || nargs < 0 || nkeys + nargs > REDIS_EVAL_MAX_ARGS) {
        snprintf(errstr, errsz, "redis: too many script keys/args (max %d)", REDIS_EVAL_MAX_ARGS);
        return NULL;
    }
    snprintf(nk, sizeof(nk), "%d", nkeys);
    argv[0] = "EVALSHA";
    argv[1] = s->sha;
    argv[2] = nk;
    for (i = 0; i < 3; i++)
        lens[i] = strlen(argv[i]);
    for (i = 0; i < nkeys; i++) {
        argv[3 + i] = keys[i];
        lens[3 + i] = strlen(keys[i]);
    }
    for (i = 0; i < nargs; i++) {
        argv[3 + nkeys + i] = args[i];
        lens[3 + nkeys + i] = arglens ? arglens[i] : strlen(args[i]);
    }
    r = argv_cmd(c, argc, argv, lens, 1, errstr, errsz);
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        const char *load[3] = {"SCRIPT", "LOAD", s->src};
        redisReply *lr;

        freeReplyObject(r);
        lr = argv_cmd(c, 3, load, NULL, 0, errstr, errsz);
        if (!lr)
            return NULL;
        if (lr->type != REDIS_REPLY_STRING || strcmp(lr->str, s->sha) != 0) {
            snprintf(errstr, errsz, "redis: SCRIPT LOAD returned an unexpected digest");
            freeReplyObject(lr);
            return NULL;
        }
        freeReplyObject(lr);
        r = argv_cmd(c, argc, argv, lens, 1, errstr, errsz);
    }
    if (r && r->type == REDIS_REPLY_ERROR) {
        snprintf(errstr, errsz, "redis: %s", r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* 128 random bits as hex, from a per-connection pool refilled by getrandom(). */
static int make_token(struct redis_conn *c, char *out, char *errstr, size_t errsz)
{
    static const char hex[] = "0123456789abcdef";
    int i;

    if (c->rnd_off + REDIS_TOKEN_LEN / 2 > sizeof(c->rnd)) {
        size_t got = 0;
        while (got < sizeof(c->rnd)) {
            ssize_t n = getrandom(c->rnd + got, sizeof(c->rnd) - got, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                snprintf(errstr, errsz, "redis: getrandom: %s", strerror(errno));
                return -1;
            }
            got += (size_t)n;
        }
        c->rnd_off = 0;
    }
    for (i = 0; i < REDIS_TOKEN_LEN / 2; i++) {
        unsigned char b = c->rnd[c->rnd_off + (size_t)i];
        out[2 * i] = hex[b >> 4];
        out[2 * i + 1] = hex[b & 15];
    }
    explicit_bzero(c->rnd + c->rnd_off, REDIS_TOKEN_LEN / 2);
    c->rnd_off += REDIS_TOKEN_LEN / 2;
    out[REDIS_TOKEN_LEN] = '\0';
    return 0;
}

int redis_lease_prepare(struct redis_conn *c, struct redis_lease *l, const char *key, char *errstr,
                        size_t errsz)
{
    char token[REDIS_TOKEN_LEN + 1];
    int n;

    if (!key || !*key) {
        snprintf(errstr, errsz, "redis: empty lease key");
        return -1;
    }
    n = snprintf(l->key, sizeof(l->key), "%s%s", c->prefix, key);
    if (n < 0 || (size_t)n >= sizeof(l->key)) {
        snprintf(errstr, errsz, "redis: lease key longer than %d bytes", REDIS_MAX_KEY);
        l->key[0] = '\0';
        return -1;
    }
    if (make_token(c, token, errstr, errsz) < 0)
        return -1;
    memcpy(l->token, token, sizeof(token));
    return 0;
}

size_t redis_tag_escape(char *dst, size_t dstsz, const char *src)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t out = 0;

    for (; *src; src++) {
        unsigned char ch = (unsigned char)*src;
        size_t w = ch == '{' || ch == '}' || ch == '%' ? 3 : 1;

        if (out + w < dstsz) {
            if (w == 1) {
                dst[out] = (char)ch;
            } else {
                dst[out] = '%';
                dst[out + 1] = hex[ch >> 4];
                dst[out + 2] = hex[ch & 15];
            }
        } else if (out < dstsz) {
            dstsz = out + 1; /* no partial escapes: stop writing here */
        }
        out += w;
    }
    if (dstsz > 0)
        dst[out < dstsz ? out : dstsz - 1] = '\0';
    return out;
}

int redis_lock_prepare(struct redis_conn *c, struct redis_lease *l, const char *tag,
                       const char *name, char *errstr, size_t errsz)
{
    char key[REDIS_MAX_KEY + 1], t[REDIS_MAX_KEY + 1];
    int n;

    if (!tag || !*tag) {
        snprintf(errstr, errsz, "redis: empty lock id");
        return -1;
    }
    if (!name || !*name) {
        snprintf(errstr, errsz, "redis: empty lock name");
        return -1;
    }
    if (redis_tag_escape(t, sizeof t, tag) >= sizeof t) {
        snprintf(errstr, errsz, "redis: lock key longer than %d bytes", REDIS_MAX_KEY);
        return -1;
    }
    n = snprintf(key, sizeof(key), "lock:{%s}:%s", t, name);
    if (n < 0 || (size_t)n >= sizeof(key)) {
        snprintf(errstr, errsz, "redis: lock key longer than %d bytes", REDIS_MAX_KEY);
        return -1;
    }
    return redis_lease_prepare(c, l, key, errstr, errsz);
}

static int check_ms(int64_t ms, char *errstr, size_t errsz)
{
    if (ms <= 0) {
        snprintf(errstr, errsz, "redis: lease/ttl must be > 0 ms");
        return -1;
    }
    return 0;
}

enum redis_lock_status redis_lock(struct redis_conn *c, const struct redis_lease *l, int64_t ttl_ms,
                                  char *errstr, size_t errsz)
{
    char msbuf[24];
    const char *keys[1] = {l->key}, *args[2] = {l->token, msbuf};
    enum redis_lock_status st = REDIS_LOCK_ERROR;
    redisReply *r;

    if (check_ms(ttl_ms, errstr, errsz) < 0)
        return REDIS_LOCK_ERROR;
    snprintf(msbuf, sizeof(msbuf), "%lld", (long long)ttl_ms);
    r = redis_eval(c, &s_acquire, 1, keys, 2, args, NULL, errstr, errsz);
    if (!r)
        return REDIS_LOCK_ERROR;
    if (r->type == REDIS_REPLY_INTEGER && (r->integer == 0 || r->integer == 2))
        st = r->integer == 0 ? REDIS_LOCKED : REDIS_LOCK_BUSY;
    else
        snprintf(errstr, errsz, "redis: unexpected reply from the lock script");
    freeReplyObject(r);
    return st;
}

/* Run a lease script (KEYS[1] = the lease's key) answering 0 (not ours) or 1 (done). */
static enum redis_owner_status owner_script(struct redis_conn *c, const struct redis_script *s,
                                            const struct redis_lease *l, int nargs,
                                            const char **args, char *errstr, size_t errsz)
{
    const char *keys[1] = {l->key};
    redisReply *r = redis_eval(c, s, 1, keys, nargs, args, NULL, errstr, errsz);
    enum redis_owner_status st = REDIS_OWNER_ERROR;

    if (!r)
        return REDIS_OWNER_ERROR;
    if (r->type == REDIS_REPLY_INTEGER && (r->integer == 0 || r->integer == 1))
        st = r->integer == 1 ? REDIS_OWNER_OK : REDIS_OWNER_LOST;
    else
        snprintf(errstr, errsz, "redis: unexpected reply from a lease script");
    freeReplyObject(r);
    return st;
}

enum redis_owner_status redis_lease_renew(struct redis_conn *c, const struct redis_lease *l,
                                          int64_t ms, char *errstr, size_t errsz)
{
    char msbuf[24];
    const char *args[2] = {l->token, msbuf};

    if (check_ms(ms, errstr, errsz) < 0)
        return REDIS_OWNER_ERROR;
    snprintf(msbuf, sizeof(msbuf), "%lld", (long long)ms);
    return owner_script(c, &s_renew, l, 2, args, errstr, errsz);
}

enum redis_owner_status redis_lease_release(struct redis_conn *c, const struct redis_lease *l,
                                            char *errstr, size_t errsz)
{
    const char *args[1] = {l->token};

    return owner_script(c, &s_release, l, 1, args, errstr, errsz);
}
