/* claim.c - the event-key protocol (see claim.h for the key layout and the state
 * diagram).
 *
 * Every transition that depends on the key's current value is one Lua script, so it is
 * atomic and costs one round trip: claiming checks "free, ours, done or busy" at once
 * instead of SET NX followed by a racy GET. The generic lease transitions (renew and
 * release: compare the token, then act) are common/redis.c's; what only an event key has
 * (the done marker, its status, the replay retake, the sent-step markers) is here.
 */
#include "worker/claim.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"

#define MARKER        "done:"
#define MARKER_OK     "done:succeeded:"
#define MARKER_FAILED "done:failed:"
/* How a result from before the status field says it failed (its CloudEvent type). */
#define LEGACY_FAILED    "\"type\":\"hsqb.result.failed\""
#define LEGACY_SUCCEEDED "\"type\":\"hsqb.result.succeeded\""

/* KEYS[1] event key; ARGV token, lease ms. {0} ours, {1, value after "done:"}, {2} busy. */
static const char TAKE_SRC[] = "local v = redis.call('GET', KEYS[1])\n"
                               "if not v then\n"
                               "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
                               "  return {0}\n"
                               "end\n"
                               "if v == ARGV[1] then\n"
                               "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
                               "  return {0}\n"
                               "end\n"
                               "if string.sub(v, 1, 5) == '" MARKER "' then\n"
                               "  return {1, string.sub(v, 6)}\n"
                               "end\n"
                               "return {2}\n";

/* KEYS[1] event key; ARGV token, lease ms. Replaces a stored failure (or nothing) by our
 * token: 1, else 0. The second clause reads markers from before the status field. */
static const char RETAKE_SRC[] = "local v = redis.call('GET', KEYS[1])\n"
                                 "if (not v) or string.sub(v, 1, 12) == '" MARKER_FAILED "' or\n"
                                 "   (string.sub(v, 1, 6) == '" MARKER "{' and\n"
                                 "    string.find(v, '" LEGACY_FAILED "', 1, true)) then\n"
                                 "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
                                 "  return 1\n"
                                 "end\n"
                                 "return 0\n";

/* KEYS[1] event key; ARGV token, marker + result, ttl ms.
 * 0 written over our claim, 1 written without it, 2 already done. */
static const char DONE_SRC[] = "local v = redis.call('GET', KEYS[1])\n"
                               "if v and string.sub(v, 1, 5) == '" MARKER "' then return 2 end\n"
                               "redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])\n"
                               "if v == ARGV[1] then return 0 end\n"
                               "return 1\n";

static struct redis_script s_take, s_retake, s_done;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static int s_init_rc = -1;

static void scripts_init_once(void)
{
    char e[128];

    s_init_rc = redis_script_init(&s_take, TAKE_SRC, e, sizeof e) < 0 ||
                        redis_script_init(&s_retake, RETAKE_SRC, e, sizeof e) < 0 ||
                        redis_script_init(&s_done, DONE_SRC, e, sizeof e) < 0
                    ? -1
                    : 0;
}

static int scripts_ready(char *errstr, size_t errsz)
{
    pthread_once(&s_once, scripts_init_once);
    if (s_init_rc < 0)
        snprintf(errstr, errsz, "claim: cannot hash the event scripts");
    return s_init_rc;
}

void claim_stored_release(struct claim_stored *s)
{
    if (!s)
        return;
    free(s->result);
    memset(s, 0, sizeof *s);
}

static int event_key(const char *event_id, const char *step, char *out, size_t outsz, char *errstr,
                     size_t errsz)
{
    int n;

    if (!event_id || !*event_id) {
        snprintf(errstr, errsz, "claim: empty event id");
        return -1;
    }
    n = snprintf(out, outsz, "evt:{%s}%s%s", event_id, step ? ":sent:" : "", step ? step : "");
    if (n < 0 || (size_t)n >= outsz) {
        snprintf(errstr, errsz, "claim: event key longer than %d bytes", REDIS_MAX_KEY);
        return -1;
    }
    return 0;
}

int claim_prepare(struct redis_conn *c, struct redis_lease *l, const char *event_id, char *errstr,
                  size_t errsz)
{
    char key[REDIS_MAX_KEY + 1];

    if (event_key(event_id, NULL, key, sizeof key, errstr, errsz) < 0)
        return -1;
    return redis_lease_prepare(c, l, key, errstr, errsz);
}

int claim_marker_parse(const char *v, size_t len, struct claim_stored *out)
{
    static const char ok[] = "succeeded:", failed[] = "failed:";
    size_t skip = 0;

    memset(out, 0, sizeof *out);
    if (len >= sizeof ok - 1 && memcmp(v, ok, sizeof ok - 1) == 0) {
        skip = sizeof ok - 1;
    } else if (len >= sizeof failed - 1 && memcmp(v, failed, sizeof failed - 1) == 0) {
        skip = sizeof failed - 1;
        out->failed = 1;
    } else {
        /* before the status field: a success only when the result says so */
        out->failed = !memmem(v, len, LEGACY_SUCCEEDED, sizeof LEGACY_SUCCEEDED - 1);
    }
    out->len = len - skip;
    out->result = malloc(out->len + 1);
    if (!out->result)
        return -1;
    memcpy(out->result, v + skip, out->len);
    out->result[out->len] = '\0';
    return 0;
}

static int ms_arg(int64_t ms, char *buf, size_t bufsz, char *errstr, size_t errsz)
{
    if (ms <= 0) {
        snprintf(errstr, errsz, "claim: lease/ttl must be > 0 ms");
        return -1;
    }
    snprintf(buf, bufsz, "%lld", (long long)ms);
    return 0;
}

enum claim_status claim_take(struct redis_conn *c, const struct redis_lease *l, int64_t lease_ms,
                             struct claim_stored *stored, char *errstr, size_t errsz)
{
    char ms[24];
    const char *keys[1] = {l->key}, *args[2] = {l->token, ms};
    enum claim_status st = CLAIM_ERROR;
    const redisReply *v;
    redisReply *r;

    if (scripts_ready(errstr, errsz) < 0 || ms_arg(lease_ms, ms, sizeof ms, errstr, errsz) < 0)
        return CLAIM_ERROR;
    r = redis_eval(c, &s_take, 1, keys, 2, args, NULL, errstr, errsz);
    if (!r)
        return CLAIM_ERROR;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[0]->integer < 0 ||
        r->element[0]->integer > 2)
        goto bad;
    st = (enum claim_status)r->element[0]->integer;
    if (st != CLAIM_DONE || !stored)
        goto out;
    v = r->elements == 2 ? r->element[1] : NULL;
    if (!v || v->type != REDIS_REPLY_STRING || v->len > CLAIM_MAX_RESULT + 16)
        goto bad;
    if (claim_marker_parse(v->str, v->len, stored) < 0) {
        snprintf(errstr, errsz, "claim: out of memory");
        st = CLAIM_ERROR;
    }
    goto out;
bad:
    snprintf(errstr, errsz, "claim: unexpected reply from the claim script");
    st = CLAIM_ERROR;
out:
    freeReplyObject(r);
    return st;
}

enum claim_status claim_retake_failed(struct redis_conn *c, const struct redis_lease *l,
                                      int64_t lease_ms, char *errstr, size_t errsz)
{
    char ms[24];
    const char *keys[1] = {l->key}, *args[2] = {l->token, ms};
    redisReply *r;
    enum claim_status st;

    if (scripts_ready(errstr, errsz) < 0 || ms_arg(lease_ms, ms, sizeof ms, errstr, errsz) < 0)
        return CLAIM_ERROR;
    r = redis_eval(c, &s_retake, 1, keys, 2, args, NULL, errstr, errsz);
    if (!r)
        return CLAIM_ERROR;
    if (r->type != REDIS_REPLY_INTEGER) {
        snprintf(errstr, errsz, "claim: unexpected reply from the retake script");
        st = CLAIM_ERROR;
    } else {
        st = r->integer == 1 ? CLAIM_OURS : CLAIM_BUSY;
    }
    freeReplyObject(r);
    return st;
}

enum claim_done_status claim_done(struct redis_conn *c, const struct redis_lease *l,
                                  const struct claim_record *rec, int64_t ttl_ms, char *errstr,
                                  size_t errsz)
{
    const char *marker = rec->failed ? MARKER_FAILED : MARKER_OK;
    size_t mlen = strlen(marker), lens[3];
    const char *keys[1] = {l->key}, *args[3];
    enum claim_done_status st = CLAIM_DONE_ERROR;
    char ms[24], *value;
    redisReply *r;

    if (scripts_ready(errstr, errsz) < 0 || ms_arg(ttl_ms, ms, sizeof ms, errstr, errsz) < 0)
        return CLAIM_DONE_ERROR;
    if (!rec->result || rec->len > CLAIM_MAX_RESULT) {
        snprintf(errstr, errsz, "claim: result missing or over %d bytes", CLAIM_MAX_RESULT);
        return CLAIM_DONE_ERROR;
    }
    value = malloc(mlen + rec->len);
    if (!value) {
        snprintf(errstr, errsz, "claim: out of memory");
        return CLAIM_DONE_ERROR;
    }
    memcpy(value, marker, mlen);
    memcpy(value + mlen, rec->result, rec->len);
    args[0] = l->token;
    lens[0] = strlen(l->token);
    args[1] = value;
    lens[1] = mlen + rec->len;
    args[2] = ms;
    lens[2] = strlen(ms);
    r = redis_eval(c, &s_done, 1, keys, 3, args, lens, errstr, errsz);
    free(value);
    if (!r)
        return CLAIM_DONE_ERROR;
    if (r->type == REDIS_REPLY_INTEGER && r->integer >= 0 && r->integer <= 2)
        st = (enum claim_done_status)r->integer;
    else
        snprintf(errstr, errsz, "claim: unexpected reply from the done script");
    freeReplyObject(r);
    return st;
}

int claim_peek(struct redis_conn *c, const char *event_id, struct claim_stored *stored,
               char *errstr, size_t errsz)
{
    char key[REDIS_MAX_KEY + 1];
    redisReply *r;
    int rc = 0;

    if (event_key(event_id, NULL, key, sizeof key, errstr, errsz) < 0)
        return -1;
    r = redis_command(c, errstr, errsz, "GET %s%s", redis_conn_prefix(c), key);
    if (!r)
        return -1;
    if (r->type == REDIS_REPLY_STRING && r->len >= 5 && memcmp(r->str, MARKER, 5) == 0) {
        rc = claim_marker_parse(r->str + 5, r->len - 5, stored) < 0 ? -1 : 1;
        if (rc < 0)
            snprintf(errstr, errsz, "claim: out of memory");
    }
    freeReplyObject(r);
    return rc;
}

int claim_mark_sent(struct redis_conn *c, const char *event_id, const char *step, int64_t ttl_ms,
                    char *errstr, size_t errsz)
{
    char key[REDIS_MAX_KEY + 1], ms[24];
    redisReply *r;
    int rc;

    if (!step || !*step) {
        snprintf(errstr, errsz, "claim: empty step");
        return -1;
    }
    if (event_key(event_id, step, key, sizeof key, errstr, errsz) < 0 ||
        ms_arg(ttl_ms, ms, sizeof ms, errstr, errsz) < 0)
        return -1;
    r = redis_command(c, errstr, errsz, "SET %s%s 1 NX PX %s", redis_conn_prefix(c), key, ms);
    if (!r)
        return -1;
    rc = r->type == REDIS_REPLY_STATUS ? 0 : 1; /* OK: first; nil: marked before */
    freeReplyObject(r);
    return rc;
}

int claim_request_id(const char *event_id, const char *step, char out[CLAIM_REQUEST_ID_MAX + 1])
{
    static const char prefix[] = "hsqb-";
    unsigned char md[HASH_SHA256_LEN];
    size_t le, ls;
    char *buf;
    int rc;

    if (!event_id || !step)
        return -1;
    le = strlen(event_id);
    ls = strlen(step);
    buf = malloc(le + 1 + ls);
    if (!buf)
        return -1;
    memcpy(buf, event_id, le);
    buf[le] = '\0'; /* the separator */
    memcpy(buf + le + 1, step, ls);
    rc = hash_sha256(buf, le + 1 + ls, md);
    free(buf);
    if (rc < 0)
        return -1;
    memcpy(out, prefix, sizeof prefix - 1);
    hash_hex(md, 20, out + sizeof prefix - 1); /* 40 hex characters = 160 bits */
    return 0;
}
