/* claim.c - the event-key protocol (see claim.h for the key layout and the state
 * diagram).
 *
 * Every transition that depends on the key's current value is atomic and costs one round
 * trip: claiming is SET NX GET (Redis >= 7.0), which writes the token when the key is
 * free and answers what was there otherwise ("ours, done or busy" at once, no racy GET
 * after a SET NX, one command where a script cost three); the done marker is one script
 * whose SET GET reads the value it replaces. The generic lease transitions (renew and
 * release: compare the token, then act) are common/redis.c's; what only an event key has
 * (the done marker, its status, the replay retake, the sent-step markers) is here.
 */
#include "worker/claim.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"

#define MARKER "done:"
/* How a result says it failed: its CloudEvent type. Read only for a marker without a
 * (consistent) status key: one written by an earlier release. */
#define FAILED_TYPE "\"type\":\"hsqb.result.failed\""

/* Lua: failed = the outcome recorded in v (a done marker) with status s (the status key's
 * value or false): s's word when its length matches the marker, else the result's type. */
#define STATUS_LUA                                                                                 \
    "local failed = nil\n"                                                                         \
    "if s then\n"                                                                                  \
    "  local w, n = string.match(s, '^(%a+) (%d+)$')\n"                                            \
    "  if w and tonumber(n) == string.len(v) - 5 then failed = (w == 'failed') end\n"              \
    "end\n"                                                                                        \
    "if failed == nil then failed = string.find(v, '" FAILED_TYPE "', 1, true) ~= nil end\n"

/* KEYS event key, status key; ARGV token, lease ms. Replaces a recorded failure (or
 * nothing) by our token and drops the status: 1, else 0. */
static const char RETAKE_SRC[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "local take = not v\n"
    "if v and string.sub(v, 1, 5) == '" MARKER "' then\n"
    "  local s = redis.call('GET', KEYS[2])\n" STATUS_LUA "  take = failed\n"
    "end\n"
    "if not take then return 0 end\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "redis.call('DEL', KEYS[2])\n"
    "return 1\n";

/* KEYS event key, status key; ARGV token, marker + result, ttl ms, status.
 * 0 written over our claim, 1 written without it, 2 already done (the marker found is put
 * back: nobody sees the swap, the script is atomic; its TTL restarts at ttl ms, the dedup
 * window, so it only lengthens). SET ... GET writes and reads in one command: a done
 * costs three (the script, the marker, the status) instead of a GET first. */
static const char DONE_SRC[] = "local v = redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3], 'GET')\n"
                               "if v and string.sub(v, 1, 5) == '" MARKER "' then\n"
                               "  redis.call('SET', KEYS[1], v, 'PX', ARGV[3])\n"
                               "  return 2\n"
                               "end\n"
                               "redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[3])\n"
                               "if v == ARGV[1] then return 0 end\n"
                               "return 1\n";

static struct redis_script s_retake, s_done;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static int s_init_rc = -1;

static void scripts_init_once(void)
{
    char e[128];

    s_init_rc = redis_script_init(&s_retake, RETAKE_SRC, e, sizeof e) < 0 ||
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

int claim_init(char *errstr, size_t errsz)
{
    return scripts_ready(errstr, errsz);
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
    char tag[REDIS_MAX_KEY + 1];
    int n;

    if (!event_id || !*event_id) {
        snprintf(errstr, errsz, "claim: empty event id");
        return -1;
    }
    /* the id is the hash tag of every key of the event, whatever bytes it holds */
    n = redis_tag_escape(tag, sizeof tag, event_id) >= sizeof tag
            ? -1
            : snprintf(out, outsz, "evt:{%s}%s%s", tag, step ? ":sent:" : "", step ? step : "");
    if (n < 0 || (size_t)n >= outsz) {
        snprintf(errstr, errsz, "claim: event key longer than %d bytes", REDIS_MAX_KEY);
        return -1;
    }
    return 0;
}

#define STATUS_SUFFIX ":status"

/* The status key of lease l: its key + ":status" (claim_prepare left room for it). */
static void status_key(const struct redis_lease *l, char out[REDIS_MAX_KEY + 1])
{
    size_t n = strnlen(l->key, REDIS_MAX_KEY + 1 - sizeof STATUS_SUFFIX);

    memcpy(out, l->key, n);
    memcpy(out + n, STATUS_SUFFIX, sizeof STATUS_SUFFIX); /* with its NUL */
}

int claim_prepare(struct redis_conn *c, struct redis_lease *l, const char *event_id, char *errstr,
                  size_t errsz)
{
    char key[REDIS_MAX_KEY + 1];

    if (event_key(event_id, NULL, key, sizeof key, errstr, errsz) < 0 ||
        redis_lease_prepare(c, l, key, errstr, errsz) < 0)
        return -1;
    if (strlen(l->key) + sizeof STATUS_SUFFIX - 1 > REDIS_MAX_KEY) {
        snprintf(errstr, errsz, "claim: event key longer than %d bytes", REDIS_MAX_KEY);
        return -1;
    }
    return 0;
}

/* The outcome a status value says for a result of len bytes: 1 failed, 0 succeeded, -1
 * when there is none or it does not belong to this result (the same rule as STATUS_LUA). */
static int status_says(const char *st, size_t slen, size_t len)
{
    char word[16], *end;
    size_t w = 0;
    unsigned long long n;

    if (!st)
        return -1;
    while (w < slen && w < sizeof word - 1 &&
           ((st[w] >= 'a' && st[w] <= 'z') || (st[w] >= 'A' && st[w] <= 'Z')))
        w++;
    if (w == 0 || w == sizeof word - 1 || w + 1 >= slen || st[w] != ' ' || st[w + 1] < '0' ||
        st[w + 1] > '9' || slen - w - 1 > 20)
        return -1;
    memcpy(word, st, w);
    word[w] = '\0';
    {
        char digits[24];
        memcpy(digits, st + w + 1, slen - w - 1);
        digits[slen - w - 1] = '\0';
        n = strtoull(digits, &end, 10);
        if (*end != '\0' || n != (unsigned long long)len)
            return -1;
    }
    return strcmp(word, "failed") == 0;
}

int claim_stored_parse(const char *json, size_t len, const char *status, size_t slen,
                       struct claim_stored *out)
{
    int says = status_says(status, slen, len);

    memset(out, 0, sizeof *out);
    /* no status of this result (an earlier release wrote the marker): its CloudEvent type */
    out->failed = says >= 0 ? says : memmem(json, len, FAILED_TYPE, sizeof FAILED_TYPE - 1) != NULL;
    out->len = len;
    out->result = malloc(len + 1);
    if (!out->result)
        return -1;
    memcpy(out->result, json, len);
    out->result[len] = '\0';
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

/* Run a script taking (event key, status key; token, lease ms), as TAKE and RETAKE do.
 * The reply (caller frees), or NULL with errstr. */
static redisReply *eval_claim(struct redis_conn *c, const struct redis_script *s,
                              const struct redis_lease *l, int64_t lease_ms, char *errstr,
                              size_t errsz)
{
    char ms[24], skey[REDIS_MAX_KEY + 1];
    const char *keys[2] = {l->key, skey}, *args[2] = {l->token, ms};

    if (scripts_ready(errstr, errsz) < 0 || ms_arg(lease_ms, ms, sizeof ms, errstr, errsz) < 0)
        return NULL;
    status_key(l, skey);
    return redis_eval(c, s, 2, keys, 2, args, NULL, errstr, errsz);
}

/* The stored outcome of done marker v (the event key's value, "done:" + result), with the
 * status key read beside it: CLAIM_DONE with *stored filled (when wanted), or CLAIM_ERROR. */
static enum claim_status take_stored(struct redis_conn *c, const struct redis_lease *l,
                                     const redisReply *v, struct claim_stored *stored,
                                     char *errstr, size_t errsz)
{
    char skey[REDIS_MAX_KEY + 1];
    const char *argv[2] = {"GET", skey};
    redisReply *sv;
    int rc;

    if (v->len - 5 > CLAIM_MAX_RESULT) {
        snprintf(errstr, errsz, "claim: stored result over %d bytes", CLAIM_MAX_RESULT);
        return CLAIM_ERROR;
    }
    if (!stored)
        return CLAIM_DONE;
    status_key(l, skey);
    if (!(sv = redis_command_argv(c, 2, argv, NULL, errstr, errsz)))
        return CLAIM_ERROR;
    rc = claim_stored_parse(v->str + 5, v->len - 5, sv->type == REDIS_REPLY_STRING ? sv->str : NULL,
                            sv->type == REDIS_REPLY_STRING ? sv->len : 0, stored);
    freeReplyObject(sv);
    if (rc < 0) {
        snprintf(errstr, errsz, "claim: out of memory");
        return CLAIM_ERROR;
    }
    return CLAIM_DONE;
}

/* One command in the usual case: SET NX GET (Redis >= 7.0) writes our token when the key
 * is free and answers what was there otherwise. Only the rare answers cost more: our own
 * token (a retried take after a lost reply: compare-and-renew) and a done marker (its
 * status key is read). */
enum claim_status claim_take(struct redis_conn *c, const struct redis_lease *l, int64_t lease_ms,
                             struct claim_stored *stored, char *errstr, size_t errsz)
{
    char ms[24];
    const char *argv[7] = {"SET", l->key, l->token, "NX", "PX", ms, "GET"};
    enum claim_status st = CLAIM_BUSY;
    redisReply *r;

    if (ms_arg(lease_ms, ms, sizeof ms, errstr, errsz) < 0)
        return CLAIM_ERROR;
    if (!(r = redis_command_argv(c, 7, argv, NULL, errstr, errsz)))
        return CLAIM_ERROR;
    if (r->type == REDIS_REPLY_NIL) {
        st = CLAIM_OURS;
    } else if (r->type != REDIS_REPLY_STRING) {
        snprintf(errstr, errsz, "claim: unexpected reply to the claim");
        st = CLAIM_ERROR;
    } else if (strcmp(r->str, l->token) == 0 && r->len == strlen(l->token)) {
        switch (redis_lease_renew(c, l, lease_ms, errstr, errsz)) {
        case REDIS_OWNER_OK:
            st = CLAIM_OURS;
            break;
        case REDIS_OWNER_LOST: /* gone between the two commands: let it come back later */
            st = CLAIM_BUSY;
            break;
        default:
            st = CLAIM_ERROR;
        }
    } else if (r->len >= 5 && memcmp(r->str, MARKER, 5) == 0) {
        st = take_stored(c, l, r, stored, errstr, errsz);
    }
    freeReplyObject(r);
    return st;
}

enum claim_status claim_retake_failed(struct redis_conn *c, const struct redis_lease *l,
                                      int64_t lease_ms, char *errstr, size_t errsz)
{
    redisReply *r = eval_claim(c, &s_retake, l, lease_ms, errstr, errsz);
    enum claim_status st;

    if (!r)
        return CLAIM_ERROR;
    /* any answer but 1 leaves the event to whoever holds it (as a busy claim would) */
    st = r->type == REDIS_REPLY_INTEGER && r->integer == 1 ? CLAIM_OURS : CLAIM_BUSY;
    freeReplyObject(r);
    return st;
}

enum claim_done_status claim_done(struct redis_conn *c, const struct redis_lease *l,
                                  const struct claim_record *rec, int64_t ttl_ms, char *errstr,
                                  size_t errsz)
{
    const size_t mlen = sizeof MARKER - 1;
    char ms[24], status[40], skey[REDIS_MAX_KEY + 1], *value;
    const char *keys[2] = {l->key, skey}, *args[4];
    enum claim_done_status st = CLAIM_DONE_ERROR;
    size_t lens[4];
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
    memcpy(value, MARKER, mlen);
    memcpy(value + mlen, rec->result, rec->len);
    status_key(l, skey);
    snprintf(status, sizeof status, "%s %zu", rec->failed ? "failed" : "succeeded", rec->len);
    args[0] = l->token;
    lens[0] = strlen(l->token);
    args[1] = value;
    lens[1] = mlen + rec->len;
    args[2] = ms;
    lens[2] = strlen(ms);
    args[3] = status;
    lens[3] = strlen(status);
    r = redis_eval(c, &s_done, 2, keys, 4, args, lens, errstr, errsz);
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
    char key[REDIS_MAX_KEY + 1], full[REDIS_MAX_KEY + 1], skey[REDIS_MAX_KEY + 1];
    const char *argv[3] = {"MGET", full, skey};
    const redisReply *v, *sv;
    redisReply *r;
    int rc = 0;

    if (event_key(event_id, NULL, key, sizeof key, errstr, errsz) < 0)
        return -1;
    if (snprintf(full, sizeof full, "%s%s", redis_conn_prefix(c), key) >= (int)sizeof full ||
        snprintf(skey, sizeof skey, "%s" STATUS_SUFFIX, full) >= (int)sizeof skey) {
        snprintf(errstr, errsz, "claim: event key longer than %d bytes", REDIS_MAX_KEY);
        return -1;
    }
    r = redis_command_argv(c, 3, argv, NULL, errstr, errsz);
    if (!r)
        return -1;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        snprintf(errstr, errsz, "claim: unexpected reply to MGET");
        rc = -1;
        goto out;
    }
    v = r->element[0];
    sv = r->element[1];
    if (v->type == REDIS_REPLY_STRING && v->len >= 5 && memcmp(v->str, MARKER, 5) == 0) {
        rc = claim_stored_parse(v->str + 5, v->len - 5,
                                sv->type == REDIS_REPLY_STRING ? sv->str : NULL,
                                sv->type == REDIS_REPLY_STRING ? sv->len : 0, stored) < 0
                 ? -1
                 : 1;
        if (rc < 0)
            snprintf(errstr, errsz, "claim: out of memory");
    }
out:
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

int claim_request_id_gen(const char *event_id, const char *step, int generation,
                         char out[CLAIM_REQUEST_ID_MAX + 1])
{
    char s[96];

    if (generation <= 0)
        return claim_request_id(event_id, step, out);
    if (!step || snprintf(s, sizeof s, "%s#r%d", step, generation) >= (int)sizeof s)
        return -1;
    return claim_request_id(event_id, s, out);
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
